"""The stereo rig: home extrinsics of two calibrated PTZ cameras from synchronized views, and the
rig's error figures (Mao et al. 2022, Table 5 metrics).

**Home extrinsics** (``X_LH = home_R X_RH + home_t``). A synchronized pair shows one board to both
cameras. With each camera's model fixed as the nodes apply it (intrinsics at the reported zoom and
temperature, pose at the reported pan/tilt through the model's correction layers: pointing map,
zoom offsets, thermal, field; see :mod:`..corrections.apply`), the board's pose in each camera
(solvePnP) gives one estimate
``T_LH<-RH = P_L T_L<-board (P_R T_R<-board)^-1``; the start is their rotation mean and median
translation. Then a least-squares refinement of the home transform and one board pose per pair
(in LH) over the corners of both images of every pair (robust loss), with two nuisances:

* **each pair's pointing error** (``pair_turns``): a small turn of the right camera per pair with
  the heads' pointing error as its prior std (``pointing_sigma``, or the pointing maps' residual;
  sqrt(2) for two heads). Without it the zoomed-in pairs, where 1 mdeg is 0.35 px, push their
  pointing errors into the home roll and pitch (runtime rotation median in 3-4 model realizations:
  5-12 mdeg with tele pairs on the two far checkerboards, 3-7 mdeg with the far ChArUco too;
  3-4 mdeg with the turns);
* **each camera's focal scale** at every zoom of the pairs (``focal_sigma``, relative prior std).
  The board's depth comes from its size in the image, so a common focal error e turns the fitted
  home about the vertical by e * baseline / distance: 0.04 % at the widest zoom and boards at 1.7
  and 4 m turned it 4-8 mdeg in every realization, which is 0.4-0.8 % of the range at 30 m;
* **each pair's optical-centre error** (``centre_sigma``): a small shift of the right camera per
  pair (in the left home frame), with prior std ``hypot(s_L, s_R)``, each camera's ``s`` being
  ``centre_sigma`` times the angle it is turned from home, combined with its zoom translation std at
  the pair's zoom. A camera's radius vectors are known to a few tenths of a mm along its optical
  axis (0.13-0.57 mm in one simulated dataset of the default protocol); at the near board's pairs
  (1.9 m, tilt -15 to -20 deg) that puts each optical centre 0.1-0.2 mm off, mostly vertically.
  Without the shifts the home translation, which these pairs set best, took it up: 0.19-0.30 mm
  vertically in six simulated datasets, where the true models give 0.1 mm or less from the same
  pairs. With them the pairs near home set the home translation (0.02-0.17 mm off vertically) and
  the turned pairs still set the rotation.

The tele pairs of the capture protocol (boards at 8-18 m, zoomed in) shrink baseline / distance
4-10x. Its covariance is the Jacobian's (without the pairs' turns, the heads' pointing error
averaged over the pairs is added to it). Pairs whose residual is far above the rest are reported
and left out. The rig keeps this
covariance, the pointing error and each camera's zoom-translation std (from its report) as its
:class:`..model.rig_uncertainty.RigUncertainty`, which the stereo node propagates into the points'
covariances.

**Correction layers.** The home transform must be fitted through the same layers ``ptz_stereo``
applies at run time, or it absorbs the difference. A pointing map's offset and gear harmonics
move each head by a few hundredths of a degree at the pairs' settings; fitted with the reported
angles and used with the corrected ones, the home rotation kept that difference (demo rig, runtime
evaluation at 300 held-out settings with the simulator's mechanics: rotation about the optical
y axis, which sets the range of far points, median 0.016 deg; fitted through the maps 0.002 deg).
The pointing map's backlash term needs the direction of the last motion of each axis before a
capture (``RigOptions.approach``; the capture protocol approaches every pose from below: +1).
So calibrate the rig after the correction layers are measured, or again once they are.

The cameras' models are not refined with the pairs. Tried on the default rig (seed 2, scratch
study): freeing each camera's focal scale and radius vectors (with its calibration's std as prior,
with and without per-pair pointing corrections) against these pairs at the widest zoom, pans within
+-26 deg (16 pairs, or 32 with 15 deg offsets), made the translation error at held-out settings
worse (median 0.27-0.31 % -> 0.41-0.44 %, radius vectors 1-2 mm further off). Near home, a pair
tells a turn of the head from a shift of its optical centre no better than the cameras' own
sweeps do, while the heads' 0.03 deg pointing error is ~1 mm at these distances. A focal scale
alone moved the result by < 0.03 %.

Measured on the default rig (0.2 px corner noise, each camera calibrated by the pipeline, noise
seeds 1-4): at home 0.015 deg and 0.11 % of the 0.5 m baseline; at 200 held-out pairs of settings
(pans within +-60 deg, zooms over the range) rotation <= 0.035 deg, translation median 0.18-0.39 %,
max 0.34-1.02 %: away from home the cameras' zoom translation at long focal lengths (1-2 mm) and
their radius vectors (0.5-1.9 mm) dominate the translation.

**Error figures** at pairs of (pan, tilt, zoom) settings of both cameras
(:func:`extrinsics_errors`): rotation angle error, cosine similarity of the rotation matrices
(``trace(R_e^T R_t) / 3``, Mao et al.), per-axis Euler angle errors (roll, pitch, yaw of each, in
the optical frame's x, y, z), translation error (% of the true baseline).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import least_squares
from scipy.sparse import lil_matrix
from scipy.spatial.transform import Rotation

from ..corrections import LAYERS, apply
from ..model import PtzCameraModel
from ..model.rotations import matrix_to_rpy, rotation_angle
from ..model.rig_uncertainty import RigUncertainty, ZoomStd
from ..model.stereo_rig import StereoRigModel
from .dataset import Capture, Dataset
from .detection import Detection, DetectionOptions, board_pose, detect_file
from .evaluate import true_model_in_reported_home

__all__ = ["RigOptions", "RigCalibrationError", "RigCalibration", "stereo_pairs", "calibrate_rig",
           "zoom_translation_std", "true_rig_in_reported_home", "extrinsics_errors", "extrinsics_metrics"]


class RigCalibrationError(ValueError):
    """The rig cannot be calibrated from these data (the message says why)."""


@dataclass(frozen=True)
class RigOptions:
    pair_tolerance: float = 1e-3  # s: captures of the two cameras this close in time are a pair
    min_pairs: int = 3
    pixel_sigma: float = 0.25  # px
    loss: str = "soft_l1"
    loss_scale: float = 3.0  # in pixel_sigma
    outlier_factor: float = 4.0  # pair RMS above this x the median (and 1 px) is left out
    detection: DetectionOptions = DetectionOptions()
    # rad: pointing accuracy of each head (see bundle.BundleOptions.feedback_sigma): the camera poses
    # come from the reported angles, so each pair's estimate carries the heads' pointing error;
    # added to the reported uncertainty (the corners alone understated it 10x). With a pointing map
    # on both heads the pairs carry only the maps' residual (their fit RMS) instead.
    pointing_sigma: float = math.radians(0.03)
    # direction of the last motion of pan and tilt before every capture, for the pointing map's
    # backlash term: +1 from below (the capture protocol's approach), -1 from above, 0 unknown
    approach: tuple[float, float] = (1.0, 1.0)
    # fit each pair's pointing error (a small turn per pair, with pointing_sigma or the maps' residual
    # per head as its prior std) instead of adding it to the covariance afterwards; see the module notes
    pair_turns: bool = True
    # relative std of each camera's focal length at the pairs' zooms: fitted as one scale per camera
    # and zoom with this prior (0: fixed). The board's depth comes from its size, so a focal error e
    # turns the rig about the vertical by e * baseline / distance (module notes).
    focal_sigma: float = 5e-4
    # m per rad: the optical centres' position error away from home per radian the camera is turned
    # from home (the radius vectors' error); with the cameras' zoom translation std, the prior std of
    # each pair's shift of the right camera (0: no shifts; module notes). About 3-5x the radius
    # vectors' reported std; on four simulated datasets 2-5 mm/rad gave the same translation within 0.03 %
    centre_sigma: float = 3e-3
    corner_noise: float = 0.0  # sensitivity studies: Gaussian px noise added to detected corners
    noise_seed: int = 0


@dataclass
class RigCalibration:
    rig: StereoRigModel
    report: dict[str, Any]
    home_cov: NDArray[np.float64] = field(repr=False, default_factory=lambda: np.zeros((6, 6)))


def stereo_pairs(dataset: Dataset, left: str, right: str, tolerance: float = 1e-3) -> list[tuple[Capture, Capture]]:
    """Captures of ``left`` and ``right`` with stamps within ``tolerance`` and the same board."""
    lefts = [c for c in dataset.captures if c.camera == left and c.stamp is not None]
    rights = [c for c in dataset.captures if c.camera == right and c.stamp is not None]
    pairs = []
    used: set[int] = set()
    for a in lefts:
        best = None
        for b in rights:
            if b.index in used or dataset.target_name(b) != dataset.target_name(a):
                continue
            dt = abs(float(b.stamp) - float(a.stamp))  # type: ignore[arg-type]
            if dt <= tolerance and (best is None or dt < best[0]):
                best = (dt, b)
        if best is not None:
            used.add(best[1].index)
            pairs.append((a, best[1]))
    return pairs


def zoom_translation_std(camera_report: dict[str, Any]) -> ZoomStd:
    """The std of the zoom translation over zoom from a camera calibration's report (``report.json``
    of :func:`.pipeline.calibrate_camera`: ``kinematics.zoom_translation``, mm; none: zeros)."""
    rows = (camera_report.get("kinematics") or {}).get("zoom_translation") or []
    rows = sorted((float(r["zoom"]), 1e-3 * float(r.get("std_mm") or 0.0)) for r in rows)
    return ZoomStd(tuple(z for z, _ in rows), tuple(s for _, s in rows))


def _temperature(capture: Capture) -> float:
    return math.nan if capture.temperature is None else float(capture.temperature)


def _pose(model: PtzCameraModel, capture: Capture, approach: tuple[float, float]) -> tuple[NDArray, NDArray]:
    """Camera-to-home pose of a capture through the model's correction layers."""
    return apply.reported_pose(model, capture.pan, capture.tilt, capture.zoom, _temperature(capture), *approach)


def _pair_pointing_sigma(models: tuple[PtzCameraModel, ...], default: float) -> float:
    """Per-joint pointing error at the pairs: the pointing maps' fit residual when both heads have
    an active map (what the map leaves of the gear error), ``default`` otherwise."""
    maps = [apply.layers_of(m).active("pointing") for m in models]
    rms = [v for pm in maps if pm is not None for v in pm.rms if math.isfinite(v)]
    return max(rms) if rms and all(pm is not None for pm in maps) else default


def _centre_std(rotation: NDArray, zoom: float, centre_sigma: float, zoom_std: ZoomStd) -> float:
    """Std (m) of a camera's optical centre relative to home, at a pose turned by ``rotation``
    (camera to home) and ``zoom``: the radius vectors' error times the turn, and the zoom
    translation's std."""
    return math.hypot(centre_sigma * float(rotation_angle(rotation)), zoom_std(zoom)) + 1e-6


def _project(model: PtzCameraModel, points_home: NDArray, capture: Capture, approach: tuple[float, float]) -> NDArray:
    return apply.project(model, points_home, capture.pan, capture.tilt, capture.zoom, _temperature(capture), *approach)


def calibrate_rig(dataset: Dataset, left_model: PtzCameraModel, right_model: PtzCameraModel,
                  left: Optional[str] = None, right: Optional[str] = None,
                  options: RigOptions = RigOptions(),
                  zoom_std: tuple[ZoomStd, ZoomStd] = (ZoomStd(), ZoomStd())) -> RigCalibration:
    """Home extrinsics of the pair from the synchronized captures of ``dataset`` (module notes).
    The rig's :class:`RigUncertainty` gets the home covariance, ``options.pointing_sigma`` and
    ``zoom_std``, the cameras' zoom translation std (:func:`zoom_translation_std`)."""
    left = left or left_model.camera_name
    right = right or right_model.camera_name
    pairs = stereo_pairs(dataset, left, right, options.pair_tolerance)
    if len(pairs) < options.min_pairs:
        raise RigCalibrationError(
            f"{dataset.source}: {len(pairs)} synchronized pair(s) of cameras {left!r} and {right!r} (captures of "
            f"the same board with stamps within {options.pair_tolerance * 1e3:g} ms), at least {options.min_pairs} "
            "needed")
    rng = np.random.default_rng(options.noise_seed)
    data, dropped = [], []
    for a, b in pairs:
        dets = []
        for c in (a, b):
            d = detect_file(dataset.image_path(c), dataset.target_of(c), options.detection)
            if isinstance(d, Detection) and options.corner_noise > 0:
                d = Detection(d.image_points + rng.normal(0, options.corner_noise, d.image_points.shape),
                              d.object_points, d.ids, d.image_size, d.total, d.source)
            dets.append(d)
        if not all(isinstance(d, Detection) for d in dets):
            why = "; ".join(str(getattr(d, "message", d)) for d in dets if not isinstance(d, Detection))
            dropped.append({"left": a.image, "right": b.image, "reason": f"board not found: {why}"})
            continue
        sol = [board_pose(d, apply.corrected_camera_matrix(m, c.zoom, _temperature(c)), m.distortion(c.zoom))
               for d, m, c in zip(dets, (left_model, right_model), (a, b))]
        if any(s is None for s in sol):
            dropped.append({"left": a.image, "right": b.image, "reason": "solvePnP failed"})
            continue
        data.append((a, b, dets[0], dets[1], sol[0], sol[1]))
    if len(data) < options.min_pairs:
        raise RigCalibrationError(f"{dataset.source}: {len(data)} usable synchronized pair(s), at least "
                                  f"{options.min_pairs} needed: " + "; ".join(d["reason"] for d in dropped[:3]))
    # per-pair estimates and the start
    rots, trans, boards, centre_stds = [], [], [], []
    for a, b, _, _, (r_lb, t_lb), (r_rb, t_rb) in data:
        rl, tl = _pose(left_model, a, options.approach)
        rr, tr = _pose(right_model, b, options.approach)
        # the error of both optical centres' positions, for the pair's shift of the right camera
        centre_stds.append(math.hypot(_centre_std(rl, a.zoom, options.centre_sigma, zoom_std[0]),
                                      _centre_std(rr, b.zoom, options.centre_sigma, zoom_std[1])))
        r_lh_b, t_lh_b = rl @ r_lb, rl @ t_lb + tl  # board in LH
        r_rh_b, t_rh_b = rr @ r_rb, rr @ t_rb + tr  # board in RH
        r = r_lh_b @ r_rh_b.T
        rots.append(r)
        trans.append(t_lh_b - r @ t_rh_b)
        boards.append((r_lh_b, t_lh_b))
    r0 = Rotation.from_matrix(np.array(rots)).mean().as_matrix()
    t0 = np.median(np.array(trans), axis=0)
    spread_deg = float(np.degrees(np.max(rotation_angle(np.einsum("nji,jk->nik", np.array(rots), r0)))))
    spread_mm = float(1e3 * np.max(np.linalg.norm(np.array(trans) - t0, axis=1)))

    pair_sigma = _pair_pointing_sigma((left_model, right_model), options.pointing_sigma)
    # per pair, the heads' pointing error as a random turn of the right camera (both heads: sqrt(2))
    turn_sigma = math.sqrt(2.0) * pair_sigma if options.pair_turns else 0.0
    turns = turn_sigma > 0
    shifts = options.centre_sigma > 0
    per = 6 + 3 * turns + 3 * shifts  # board pose (6), the pair's turn (3), the pair's shift (3)
    o_shift = 6 + 3 * turns
    # per camera and zoom of the pairs, a focal scale with prior std focal_sigma (module notes)
    groups: dict[tuple[int, int], int] = {}
    scale_index = [[-1, -1] for _ in data]  # per pair and camera: its focal scale's parameter (-1: none)
    if options.focal_sigma > 0:
        for i, (a, b, *_) in enumerate(data):
            for cam, c in enumerate((a, b)):
                scale_index[i][cam] = 6 + groups.setdefault((cam, int(round(c.zoom))), len(groups))
    centres = [[apply.corrected_camera_matrix(m, c.zoom, _temperature(c))[:2, 2] for m, c in
                zip((left_model, right_model), d[:2])] for d in data]
    g0 = 6 + len(groups)  # first pair parameter

    def solve(keep: list[int]) -> tuple[Any, NDArray, NDArray]:
        use = [data[i] for i in keep]
        n = g0 + per * len(use)
        scale_of = [scale_index[i] for i in keep]

        def unpack(x: NDArray) -> tuple[NDArray, NDArray]:
            return r0 @ Rotation.from_rotvec(x[:3]).as_matrix(), t0 + x[3:6]

        def scaled(uv: NDArray, k: int, cam: int, x: NDArray) -> NDArray:
            j = scale_of[k][cam]
            if j < 0:
                return uv
            c = centres[keep[k]][cam]
            return c + (1.0 + x[j]) * (uv - c)

        def residuals(x: NDArray) -> NDArray:
            hr, ht = unpack(x)
            out = []
            for k, (a, b, dl, dr, _, _) in enumerate(use):
                p = x[g0 + per * k: g0 + per * (k + 1)]
                rb = boards[keep[k]][0] @ Rotation.from_rotvec(p[:3]).as_matrix()
                tb = boards[keep[k]][1] + p[3:6]
                x_lh = dl.object_points @ rb.T + tb
                uv = _project(left_model, x_lh, a, options.approach)
                out.append((scaled(uv, k, 0, x) - dl.image_points).ravel())
                x_lh_r = dr.object_points @ rb.T + tb - ht
                if shifts:  # the optical centres' error: the right camera shifted (in LH)
                    x_lh_r = x_lh_r - p[o_shift:o_shift + 3]
                x_rh = x_lh_r @ hr  # RH = home^-1 LH
                if turns:  # the pair's pointing error: RH seen through a small turn
                    x_rh = x_rh @ Rotation.from_rotvec(p[6:9]).as_matrix()
                uv = _project(right_model, x_rh, b, options.approach)
                out.append((scaled(uv, k, 1, x) - dr.image_points).ravel())
            out = [np.concatenate(out) / options.pixel_sigma]
            if groups:
                out.append(x[6:g0] / options.focal_sigma)
            if turns:
                out.append(np.concatenate([x[g0 + 6 + per * k: g0 + 9 + per * k] for k in range(len(use))]) / turn_sigma)
            if shifts:
                out.append(np.concatenate([x[g0 + o_shift + per * k: g0 + o_shift + 3 + per * k] / centre_stds[i]
                                           for k, i in enumerate(keep)]))
            return np.concatenate(out)

        sizes = [2 * (len(u[2].image_points) + len(u[3].image_points)) for u in use]
        rows = sum(sizes) + len(groups) + 3 * len(use) * (turns + shifts)
        sparsity = lil_matrix((rows, n), dtype=np.int8)
        row = 0
        for k, u in enumerate(use):
            m_l, m_r = 2 * len(u[2].image_points), 2 * len(u[3].image_points)
            sparsity[row:row + m_l + m_r, :6] = 1
            sparsity[row:row + m_l + m_r, g0 + per * k: g0 + per * (k + 1)] = 1
            for cam, (lo, hi) in enumerate(((row, row + m_l), (row + m_l, row + m_l + m_r))):
                if scale_of[k][cam] >= 0:
                    sparsity[lo:hi, scale_of[k][cam]] = 1
            row += m_l + m_r
        for j in range(len(groups)):
            sparsity[row + j, 6 + j] = 1
        row += len(groups)
        for o in [6] * turns + [o_shift] * shifts:
            for k in range(len(use)):
                sparsity[row + 3 * k: row + 3 * k + 3, g0 + o + per * k: g0 + o + 3 + per * k] = np.eye(3, dtype=np.int8)
            row += 3 * len(use)
        res = least_squares(residuals, np.zeros(n), jac_sparsity=sparsity, method="trf", loss=options.loss,
                            f_scale=options.loss_scale, x_scale="jac")
        hr, ht = unpack(res.x)
        r_all = residuals(res.x)[:sum(sizes)] * options.pixel_sigma
        per_pair, row = [], 0
        for m in sizes:
            e = r_all[row:row + m].reshape(-1, 2)
            per_pair.append(float(np.sqrt(np.mean(np.sum(e**2, axis=1)))))
            row += m
        return res, np.array(per_pair), np.concatenate([hr.ravel(), ht])

    keep = list(range(len(data)))
    res, per_pair, _ = solve(keep)
    med = float(np.median(per_pair))
    limit = max(options.outlier_factor * med, 1.0)
    outliers = [{"left": data[i][0].image, "right": data[i][1].image, "rms_px": float(r),
                 "why": f"RMS {r:.2f} px > {limit:.2f} px"} for i, r in zip(keep, per_pair) if r > limit]
    if outliers:
        keep = [i for i, r in zip(keep, per_pair) if r <= limit]
        if len(keep) < options.min_pairs:
            raise RigCalibrationError(f"{dataset.source}: only {len(keep)} pairs left after removing outliers")
        res, per_pair, _ = solve(keep)
    hr = r0 @ Rotation.from_rotvec(res.x[:3]).as_matrix()
    ht = t0 + res.x[3:6]
    jac = res.jac.toarray() if hasattr(res.jac, "toarray") else np.asarray(res.jac)
    r_pix = res.fun
    s2 = max(float(r_pix @ r_pix) / max(len(r_pix) - len(res.x), 1), 0.01)
    try:
        cov = np.linalg.inv(jac.T @ jac)[:6, :6] * s2  # residuals are in pixel_sigma units
    except np.linalg.LinAlgError:
        cov = np.full((6, 6), np.nan)
    if not turns:  # the heads' pointing error, averaged over the pairs: rotation, and its lever arm
        distance = float(np.mean([np.linalg.norm(d[5][1]) for d in (data[i] for i in keep)]))
        point_var = 2.0 * pair_sigma**2 / len(keep)  # both heads
        cov = cov + np.diag([point_var] * 3 + [point_var * distance**2] * 3)
    cov = 0.5 * (cov + cov.T)
    uncertainty = RigUncertainty(cov, options.pointing_sigma, *zoom_std) if np.all(np.isfinite(cov)) else None
    rig = StereoRigModel(left_model, right_model, hr, ht, rig_name=f"{left}_{right}",
                         metadata={"dataset": str(dataset.source), "pairs": len(keep),
                                   "rms_px": float(np.sqrt(np.mean(per_pair**2)))}, uncertainty=uncertainty)
    rpy = np.degrees(matrix_to_rpy(hr))
    report = {
        "cameras": [left, right], "dataset": str(dataset.source),
        "pairs": len(pairs), "pairs_used": len(keep), "dropped": dropped, "outliers": outliers,
        "rms_px": float(np.sqrt(np.mean(per_pair**2))), "per_pair_rms_px": per_pair.tolist(),
        "home": {"R": hr.tolist(), "t": ht.tolist(), "rpy_deg": list(map(float, rpy)),
                 "baseline_m": float(np.linalg.norm(ht)),
                 "rotation_std_deg": (np.degrees(np.sqrt(np.clip(np.diag(cov)[:3], 0, None)))).tolist(),
                 "translation_std_mm": (1e3 * np.sqrt(np.clip(np.diag(cov)[3:], 0, None))).tolist()},
        "corrections": {name: [n for n in LAYERS if apply.layers_of(m).active(n) is not None]
                        for name, m in ((left, left_model), (right, right_model))},
        "approach": list(map(float, options.approach)), "pair_pointing_sigma_deg": math.degrees(pair_sigma),
        "per_pair_spread": {"rotation_deg": spread_deg, "translation_mm": spread_mm,
                            "note": "largest difference of a single pair's estimate from the start"},
    }
    return RigCalibration(rig, report, cov)


def true_rig_in_reported_home(truth: StereoRigModel, left_home: tuple[float, float],
                              right_home: tuple[float, float]) -> StereoRigModel:
    """The true rig expressed in the frames where each head REPORTS home (see
    :func:`.evaluate.true_model_in_reported_home`): what a calibration can observe at best."""
    kl = true_model_in_reported_home(truth.left, *left_home)
    kr = true_model_in_reported_home(truth.right, *right_home)
    rl0, tl0 = truth.left.pose(*left_home, 0.0)
    rr0, tr0 = truth.right.pose(*right_home, 0.0)
    # X_LH = home (X_RH); X_LH = P_L0 X_LH'; X_RH = P_R0 X_RH'
    r = rl0.T @ truth.home_R @ rr0
    t = rl0.T @ (truth.home_R @ tr0 + truth.home_t - tl0)
    from dataclasses import replace

    return StereoRigModel(replace(truth.left, kinematics=kl), replace(truth.right, kinematics=kr), r, t,
                          rig_name=truth.rig_name, metadata={"frame": "reported home"})


def extrinsics_errors(estimate: StereoRigModel, truth: StereoRigModel, left: NDArray, right: NDArray) -> dict[str, Any]:
    """Mao et al.'s Table 5 metrics at pairs of settings ``left``, ``right`` ((N, 3) pan, tilt, zoom),
    the same angles for both rigs (actual = reported; see :mod:`.rig_evaluation` for a rig with
    correction layers as the nodes use it)."""
    return extrinsics_metrics(estimate.extrinsics(left, right), truth.extrinsics(left, right), left, right)


def extrinsics_metrics(estimated: tuple[NDArray, NDArray], true: tuple[NDArray, NDArray], left: NDArray,
                       right: NDArray) -> dict[str, Any]:
    """Table 5 metrics of estimated against true extrinsics ``(R, t)`` (batched) at the pairs of
    settings ``left``, ``right`` (listed per pair)."""
    (re, te), (rt, tt) = estimated, true
    angle = np.degrees(rotation_angle(np.einsum("nji,njk->nik", re, rt)))
    cosine = np.einsum("nij,nij->n", re, rt) / 3.0
    euler_e = np.degrees(np.array([matrix_to_rpy(r) for r in re]))
    euler_t = np.degrees(np.array([matrix_to_rpy(r) for r in rt]))
    d_euler = np.abs((euler_e - euler_t + 180.0) % 360.0 - 180.0)
    trans = 100.0 * np.linalg.norm(te - tt, axis=1) / np.linalg.norm(tt, axis=1)
    return {
        "pairs": int(len(angle)),
        "rotation_error_deg": {"median": float(np.median(angle)), "max": float(angle.max())},
        "cosine_similarity": {"min": float(cosine.min()), "median": float(np.median(cosine))},
        "euler_error_deg": {"roll_max": float(d_euler[:, 0].max()), "pitch_max": float(d_euler[:, 1].max()),
                            "yaw_max": float(d_euler[:, 2].max())},
        "translation_error_pct": {"median": float(np.median(trans)), "max": float(trans.max())},
        "per_pair": [{"left": list(map(float, a)), "right": list(map(float, b)), "rotation_error_deg": float(e),
                      "translation_error_pct": float(p)} for a, b, e, p in zip(left, right, angle, trans)],
    }
