"""The whole calibration of one PTZ camera from a dataset: what ``ptz-calib calibrate`` and the
``Calibrate`` action run.

1. Detection and intrinsics per zoom step, the steps linked, curves over zoom (:mod:`.zoom_fit`).
2. Rotation axes and radius vectors from the pan and tilt sweeps at the widest zoom
   (:mod:`.axes`, Mao et al. 5.1-5.2): each sweep view's pose relative to the board by solvePnP
   with that step's intrinsics; the joints come out in the board's frame and are brought into
   the home optical frame H (the camera at reported pan = tilt = 0) with the home pose that the
   sweep views imply. Without sweeps: an ideal head as the starting point.
3. Zoom translation of the optical centre: from the linked zoom steps (:mod:`.zoom_fit`) as the start.
4. Bundle adjustment of everything over all views (:mod:`.bundle`).
5. The curves over zoom fitted again to the adjusted per-step values (family per parameter by
   leave-one-zoom-out cross-validation), and the zoom translation curve likewise.

```python
from ptz_calibration.calibration.pipeline import calibrate_camera, write_calibration
result = calibrate_camera(load_dataset("data/sim_left"), "left")
files = write_calibration(result, "out/left")   # model.yaml, camera_info, report.json, report.html
```
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
from scipy.spatial.transform import Rotation

from ..fileio import atomic_write_text
from ..model import (
    ConstantCurve,
    PtzCameraModel,
    PtzKinematics,
    ZoomCurve,
    ZoomIntrinsics,
    camera_info_dict,
    save_model,
    write_camera_info,
)
from ..model.kinematics import AxisOrder
from .axes import AxisEstimationError, KinematicsReport, Sweep, estimate_kinematics
from .bundle import STEP_PARAMETERS, BundleError, BundleOptions, BundleResult, BundleStep, BundleView, bundle_adjust
from .dataset import Dataset
from .detection import board_pose
from .zoom_fit import ZOOM_PARAMETERS, ParameterFit, ZoomFit, ZoomFitError, ZoomFitOptions, _json, calibrate_zoom, fit_parameter

__all__ = [
    "REPORT_FORMAT",
    "PipelineOptions",
    "PipelineError",
    "Cancelled",
    "CameraCalibration",
    "calibrate_camera",
    "write_calibration",
    "kinematics_from_sweeps",
]

REPORT_FORMAT = "ptz_calibration/calibration_report"

#: progress(stage, fraction of the whole job 0..1, info) with optional info keys views_accepted,
#: views_total, rms_px.
Progress = Callable[[str, float, dict[str, Any]], None]

_STAGES = (("detection", 0.0, 0.45), ("intrinsics", 0.45, 0.55), ("axes", 0.55, 0.6),
           ("bundle", 0.6, 0.95), ("curves", 0.95, 1.0))


class PipelineError(ValueError):
    """The dataset cannot be calibrated (the message says why)."""


class Cancelled(Exception):
    """The caller's ``cancel()`` asked to stop."""


@dataclass(frozen=True)
class PipelineOptions:
    """Settings of :func:`calibrate_camera`."""

    zoom: ZoomFitOptions = ZoomFitOptions()
    bundle: BundleOptions = BundleOptions()
    order: str = "pan_tilt"  # which joint carries the other
    bundle_adjust: bool = True
    curve_samples: int = 200  # points of each fitted curve in the report (for plots)
    coverage_points: int = 4000  # detected corners kept in the report (subsampled)


@dataclass
class CameraCalibration:
    """Result of :func:`calibrate_camera`."""

    camera: str
    model: PtzCameraModel
    report: dict[str, Any]
    rms_px: float
    zoom_fit: ZoomFit = field(repr=False)
    bundle: Optional[BundleResult] = field(default=None, repr=False)


# -- sweeps --------------------------------------------------------------------------------------
def kinematics_from_sweeps(fit: ZoomFit, order: AxisOrder | str = AxisOrder.PAN_TILT
                           ) -> tuple[Optional[PtzKinematics], Optional[KinematicsReport], list[str]]:
    """Joints from the pan and tilt sweeps (views tagged ``pan_sweep`` / ``tilt_sweep``) of one board
    at one zoom step, in H; ``(None, None, notes)`` when the dataset has no usable sweeps."""
    notes: list[str] = []
    good = [s for s in fit.steps if s.ok]
    candidates = []  # (step, board, sweeps): a pan and a tilt sweep of one board at one step
    for step in good:
        boards = {v.target for v in step.views if v.capture.tag in ("pan_sweep", "tilt_sweep")}
        for board in boards:
            sweeps = {tag: [v for v in step.views if v.capture.tag == tag and v.target == board]
                      for tag in ("pan_sweep", "tilt_sweep")}
            if sweeps["pan_sweep"] and sweeps["tilt_sweep"]:
                candidates.append((step, board, sweeps))
    # the board with the most sweep views first (the protocol sweeps the largest board widest)
    candidates.sort(key=lambda c: -sum(len(v) for v in c[2].values()))
    for step, board, sweeps in candidates:
        c = step.final
        assert c is not None
        poses: dict[str, tuple[list, list, list]] = {}
        for tag, views in sweeps.items():
            rs, ts, used = [], [], []
            for v in views:
                pose = board_pose(v.detection, c.camera_matrix, c.distortion)
                if pose is not None:  # camera-to-board
                    rs.append(pose[0].T)
                    ts.append(-pose[0].T @ pose[1])
                    used.append(v)
            poses[tag] = (rs, ts, used)
        pr, pt, pv = poses["pan_sweep"]
        tr, tt, tv = poses["tilt_sweep"]
        try:
            kin_b, report = estimate_kinematics(
                Sweep((np.array(pr), np.array(pt)), np.array([v.capture.pan for v in pv]),
                      other_angle=float(np.median([v.capture.tilt for v in pv]))),
                Sweep((np.array(tr), np.array(tt)), np.array([v.capture.tilt for v in tv]),
                      other_angle=float(np.median([v.capture.pan for v in tv]))),
                order=order)
        except AxisEstimationError as exc:
            notes.append(f"zoom {step.zoom:g}: sweeps unusable: {exc}")
            continue
        # the home pose in the board frame from every sweep view: P_i = K_B(p_i, t_i) B^-1
        rots, trans = [], []
        for r, t, v in zip(pr + tr, pt + tt, pv + tv):
            rk, tk = kin_b.pose(v.capture.pan, v.capture.tilt, 0.0)
            rh = rk.T @ r
            rots.append(rh)
            trans.append(rk.T @ (t - tk))
        r_hb = Rotation.from_matrix(np.array(rots)).mean().as_matrix()  # home-to-board
        t_hb = np.mean(np.array(trans), axis=0)
        r_bh, t_bh = r_hb.T, -r_hb.T @ t_hb  # board-to-home
        joints = {}
        for name, joint in (("pan", kin_b.pan_joint), ("tilt", kin_b.tilt_joint)):
            a = r_bh @ joint.axis
            p = r_bh @ (-joint.radius) + t_bh
            joints[name] = (a, -(p - (p @ a) * a))
        kin = PtzKinematics(pan_axis=joints["pan"][0], tilt_axis=joints["tilt"][0], pan_radius=joints["pan"][1],
                            tilt_radius=joints["tilt"][1], order=AxisOrder(order))
        notes.append(f"axes from the sweeps of {board!r} at zoom {step.zoom:g} "
                     f"({len(pv)} pan, {len(tv)} tilt views)")
        return kin, report, notes
    notes.append("no pan and tilt sweeps of one board at one zoom step: the bundle adjustment starts "
                 "from an ideal head")
    return None, None, notes


# -- pipeline ------------------------------------------------------------------------------------
def _stage_progress(progress: Optional[Progress], stage: str) -> Callable[[float, dict[str, Any]], None]:
    lo, hi = next((a, b) for s, a, b in _STAGES if s == stage)

    def report(fraction: float, info: dict[str, Any]) -> None:
        if progress is not None:
            progress(stage, lo + (hi - lo) * min(max(fraction, 0.0), 1.0), info)
    return report


def _check(cancel: Optional[Callable[[], bool]]) -> None:
    if cancel is not None and cancel():
        raise Cancelled("calibration cancelled")


def _bundle_inputs(fit: ZoomFit) -> tuple[list[BundleView], list[BundleStep]]:
    good = [s for s in fit.steps if s.ok]
    steps, views = [], []
    d0 = fit.report.get("steps", [])
    d_by_zoom = {e["zoom"]: e.get("zoom_translation", {}).get("value", 0.0) for e in d0 if e.get("status") == "ok"}
    for i, s in enumerate(good):
        c = s.final
        assert c is not None
        values = {"fx": c.fx, "fy": c.fy, "cx": c.cx, "cy": c.cy}
        for k, n in enumerate(("k1", "k2", "p1", "p2")):
            values[n] = float(c.distortion[k]) if k < len(c.distortion) else 0.0
        # use the linked focal lengths where the zoom fit has them
        est = s.estimates
        for n in ("fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2"):
            if n in est and est[n].get("value") is not None:
                values[n] = float(est[n]["value"])
        held = frozenset(n for n in STEP_PARAMETERS if n not in ("fx", "fy")
                         and est.get(n, {}).get("source") == "fixed")
        steps.append(BundleStep(s.zoom, values, held, float(d_by_zoom.get(s.zoom, 0.0) or 0.0)))
        for v in s.views:
            views.append(BundleView(v.capture.image, i, v.target, v.capture.pan, v.capture.tilt, v.detection,
                                    v.capture.tag or ""))
    return views, steps


def _curve_samples(curve: ZoomCurve, domain: tuple[float, float], n: int) -> dict[str, list[float]]:
    z = np.linspace(domain[0], domain[1], n)
    return {"zoom": z.tolist(), "value": np.asarray(curve.evaluate(z), float).tolist()}


def calibrate_camera(dataset: Dataset, camera: Optional[str] = None, options: PipelineOptions = PipelineOptions(),
                     progress: Optional[Progress] = None, cancel: Optional[Callable[[], bool]] = None
                     ) -> CameraCalibration:
    """Calibrate one camera of ``dataset`` (see the module notes).

    Raises :class:`PipelineError` when the data cannot be calibrated, :class:`Cancelled` when
    ``cancel()`` returns True (polled between stages and views).
    """
    t0 = time.perf_counter()
    _check(cancel)
    det_progress = _stage_progress(progress, "detection")

    def zoom_progress(i: int, n: int, _msg: str) -> None:
        det_progress(i / max(n, 1), {"views_total": n})
        _check(cancel)

    try:
        fit = calibrate_zoom(dataset, camera, options.zoom, progress=zoom_progress)
    except ZoomFitError as exc:
        raise PipelineError(str(exc)) from None
    _check(cancel)
    t_zoom = time.perf_counter()
    name = fit.camera
    views_total = fit.report.get("captures", 0)
    _stage_progress(progress, "intrinsics")(1.0, {"views_total": views_total})

    kin0, sweep_report, notes = kinematics_from_sweeps(fit, options.order)
    t_axes = time.perf_counter()
    _stage_progress(progress, "axes")(1.0, {})
    _check(cancel)
    if kin0 is None:
        kin0 = PtzKinematics(order=AxisOrder(options.order))
    views, steps = _bundle_inputs(fit)
    bundle: Optional[BundleResult] = None
    warnings = list(fit.report.get("warnings", []))
    if options.bundle_adjust:
        bprog = _stage_progress(progress, "bundle")
        try:
            bundle = bundle_adjust(views, steps, kin0, options.bundle,
                                   progress=lambda f, info: bprog(f, dict(info, views_total=views_total)))
        except BundleError as exc:
            warnings.append(f"bundle adjustment not possible: {exc}; the model keeps the zoom fit and sweeps")
        notes += bundle.notes if bundle else []
        if bundle is not None and not bundle.converged:
            warnings.append("the bundle adjustment stopped at its iteration limit while still improving: check the "
                            "focal length and radius vectors (raise bundle.max_iterations, or add views)")
    _check(cancel)
    t_bundle = time.perf_counter()

    domain = (fit.mapping.raw_min, fit.mapping.raw_max)
    fits: dict[str, ParameterFit] = {}
    if bundle is not None:
        for pname in ZOOM_PARAMETERS:
            zs, vs, ss, fixed = [], [], [], []
            for st in bundle.steps:
                zs.append(st.zoom)
                vs.append(st.values[pname])
                sd = st.std[pname]
                held = sd is None or not sd > 0
                fixed.append(held)
                ss.append(sd if not held else _held_std(fit, st.zoom, pname))
            fits[pname] = fit_parameter(pname, zs, vs, ss, fixed, options.zoom.families, domain,
                                        knots=options.zoom.spline_knots)
        curves: dict[str, ZoomCurve] = {p: f.curve for p, f in fits.items()}
        for pname in ("p1", "p2"):
            free = [(st.values[pname], st.std[pname]) for st in bundle.steps if st.std[pname]]
            curves[pname] = ConstantCurve(float(np.average([v for v, _ in free], weights=[1 / s**2 for _, s in free]))
                                          if free else 0.0)
        curves["k3"] = ConstantCurve(0.0)
        intrinsics = ZoomIntrinsics(**curves)  # type: ignore[arg-type]
        d_std = [st.translation_std if st.translation_std else 1e-4 for st in bundle.steps]
        d_fit = fit_parameter("zoom_translation", [st.zoom for st in bundle.steps],
                              [st.translation for st in bundle.steps], d_std,
                              [st.translation_std is None for st in bundle.steps], options.zoom.families, domain,
                              log=False, knots=options.zoom.spline_knots)
        fits["zoom_translation"] = d_fit
        k = bundle.kinematics
        kinematics = PtzKinematics(pan_axis=k.pan_axis, tilt_axis=k.tilt_axis, pan_radius=k.pan_radius,
                                   tilt_radius=k.tilt_radius, order=k.order, zoom_translation=d_fit.curve)
        rms = bundle.rms_px
    else:
        intrinsics = fit.intrinsics
        fits = dict(fit.parameters)
        kinematics = kin0
        rms = float(np.sqrt(np.mean([s.final.rms ** 2 for s in fit.steps if s.ok])))  # type: ignore[union-attr]
    t_curves = time.perf_counter()
    _stage_progress(progress, "curves")(1.0, {"rms_px": rms})

    metadata = {"calibrated": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "dataset": str(dataset.source), "rms_px": round(rms, 4), "tool": "ptz-calib calibrate"}
    temps = [c.temperature for c in dataset.for_camera(name).captures
             if c.temperature is not None and math.isfinite(c.temperature)]
    if temps:  # where the model is exact: the reference of a later temperature compensation
        metadata["temperature_degc"] = round(float(np.mean(temps)), 2)
    model = PtzCameraModel(name, fit.image_size[0], fit.image_size[1], intrinsics, kinematics, fit.mapping,
                           metadata=metadata)
    timing = dict(fit.report.get("timing_s", {}))
    timing.update({"axes": t_axes - t_zoom, "bundle": t_bundle - t_axes, "curves": t_curves - t_bundle,
                   "total": t_curves - t0})
    report = _report(fit, bundle, sweep_report, model, fits, notes, warnings, timing, rms, options)
    return CameraCalibration(name, model, report, rms, fit, bundle)


def _held_std(fit: ZoomFit, zoom: float, name: str) -> float:
    for s in fit.steps:
        if s.ok and s.zoom == zoom:
            e = s.estimates.get(name, {})
            if e.get("std"):
                return float(e["std"])
    return {"cx": 3.0, "cy": 3.0, "k1": 0.05, "k2": 0.05}.get(name, 1.0)


def _joint_dict(kin: PtzKinematics, name: str, std: Optional[dict[str, Any]]) -> dict[str, Any]:
    joint = kin.pan_joint if name == "pan" else kin.tilt_joint
    out: dict[str, Any] = {"axis": joint.axis.tolist(), "radius_mm": (1e3 * joint.radius).tolist()}
    if std is not None:
        out["axis_std_deg"] = float(np.degrees(np.sqrt(max(np.trace(std["axis_cov"]), 0.0))))
        out["radius_std_mm"] = (1e3 * np.sqrt(np.clip(np.diag(std["radius_cov"]), 0, None))).tolist()
    return out


def _report(fit: ZoomFit, bundle: Optional[BundleResult], sweeps: Optional[KinematicsReport],
            model: PtzCameraModel, fits: dict[str, ParameterFit], notes: list[str], warnings: list[str],
            timing: dict[str, float], rms: float, options: PipelineOptions) -> dict[str, Any]:
    domain = (model.zoom_mapping.raw_min, model.zoom_mapping.raw_max)
    curves = {}
    for pname, f in fits.items():
        entry = f.to_dict()
        entry.pop("curve", None)
        entry["curve_samples"] = _curve_samples(f.curve, domain, options.curve_samples)
        curves[pname] = entry
    kin = model.kinematics
    kin_report: dict[str, Any] = {
        "order": kin.order.value,
        "pan": _joint_dict(kin, "pan", bundle.joint_std.get("pan") if bundle else None),
        "tilt": _joint_dict(kin, "tilt", bundle.joint_std.get("tilt") if bundle else None),
        "axes_angle_deg": float(np.degrees(kin.axis_angle)),
        "notes": list(notes) + (list(sweeps.notes) if sweeps else []),
    }
    if sweeps is not None:
        kin_report["from_sweeps"] = sweeps.to_dict()
    dropped = [{"image": d.get("image") or "", "reason": d.get("message") or d.get("problem", "")}
               for d in fit.report.get("dropped_captures", [])]
    dropped += [{"image": r["image"], "reason": r["reason"]} for r in fit.report.get("rejected_images", [])]
    good = [s for s in fit.steps if s.ok]
    used = sum(len(s.views) for s in good)
    report: dict[str, Any] = {
        "format": REPORT_FORMAT,
        "camera": fit.camera,
        "dataset": fit.report.get("dataset"),
        "image_size": list(fit.image_size),
        "created": model.metadata.get("calibrated"),
        "timing_s": {k: round(float(v), 3) for k, v in timing.items()},
        "summary": {"rms_px": rms, "views_used": used - (len(bundle.outliers) if bundle else 0),
                    "views_dropped": len(dropped), "outlier_views": len(bundle.outliers) if bundle else 0,
                    "zoom_steps": len(good), "zoom_steps_dropped": len(fit.steps) - len(good)},
        "warnings": warnings,
        "dropped": dropped,
        "curves": curves,
        "kinematics": kin_report,
        "zoom": {k: v for k, v in fit.report.items() if k not in ("parameters",)},
        "options": {"bundle": {k: getattr(options.bundle, k) for k in options.bundle.__dataclass_fields__},
                    "order": options.order, "bundle_adjust": options.bundle_adjust},
    }
    if bundle is not None:
        kin_report["zoom_translation"] = [{"zoom": st.zoom, "d_mm": 1e3 * st.translation,
                                           "std_mm": None if st.translation_std is None else 1e3 * st.translation_std}
                                          for st in bundle.steps]
        view_list = []
        labels = [(v.capture.image, s.zoom, v.capture.pan, v.capture.tilt, v.capture.tag or "")
                  for s in good for v in s.views]
        outlier_idx = {i for i, _, _ in bundle.outliers}
        for i, (img, z, p, t, tag) in enumerate(labels):
            view_list.append({"image": img, "zoom": z, "pan": p, "tilt": t, "tag": tag,
                              "rms_px": float(bundle.view_rms_px[i]), "points": int(bundle.view_points[i]),
                              "outlier": i in outlier_idx,
                              "correction_deg": np.degrees(bundle.corrections[i]).tolist()})
        report["bundle"] = {
            "rms_px": bundle.rms_px, "robust_loss": options.bundle.loss, "iterations": bundle.iterations,
            "converged": bundle.converged,
            "seconds": bundle.seconds, "views": view_list,
            "steps": [{"zoom": st.zoom, "rms_px": st.rms_px, "views": st.views,
                       "values": st.values, "std": st.std, "held": sorted(st.held)} for st in bundle.steps],
            "outliers": [{"image": labels[i][0], "rms_px": r, "why": why} for i, r, why in bundle.outliers],
            "boards": {n: {"R": r.tolist(), "t": t.tolist()} for n, (r, t) in bundle.boards.items()},
        }
    pts = np.concatenate([v.detection.image_points for s in good for v in s.views]) if good else np.zeros((0, 2))
    if len(pts) > options.coverage_points:
        pts = pts[np.linspace(0, len(pts) - 1, options.coverage_points).astype(int)]
    report["coverage"] = {"corners_px": np.round(pts, 1).tolist()}
    return _json(report)


# -- output --------------------------------------------------------------------------------------
def write_calibration(result: CameraCalibration, out_dir: str | Path, html: bool = True) -> dict[str, str]:
    """Write the model YAML, camera_info YAMLs (widest and longest zoom), the report as JSON and
    (``html``) as a page; atomically, file by file. Returns name -> path."""
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    m = result.model
    files["model"] = str(save_model(m, out / f"{result.camera}_model.yaml", backup=True))
    zm = m.zoom_mapping
    files["camera_info"] = str(write_camera_info(out / f"{result.camera}_camera_info_widest.yaml",
                                                 camera_info_dict(m, zm.raw_min)))
    files["camera_info_longest"] = str(write_camera_info(out / f"{result.camera}_camera_info_longest.yaml",
                                                         camera_info_dict(m, zm.raw_max)))
    files["report_json"] = str(atomic_write_text(out / "report.json", json.dumps(result.report, indent=1)))
    if html:
        try:
            from ..report import write_html
        except ImportError:  # the report package is optional for the pipeline
            write_html = None
        if write_html is not None:
            files["report_html"] = str(write_html(result.report, out / "report.html"))
    return files
