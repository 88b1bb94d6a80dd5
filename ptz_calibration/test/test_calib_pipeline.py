"""The whole calibration of one PTZ camera (``calibration.pipeline``, ``calibration.bundle``,
``calibration.evaluate``, ``ptz-calib calibrate`` / ``evaluate``).

Accuracy (slow): the default protocol on the default rig's left camera (20 zoom steps x 8 views,
15 + 11 pan and tilt sweep views of each of two boards at 1.8 m and 4 m: 212 images with the rig's sensor noise,
encoder steps and noise, backlash, gear periodic error and thermal drift; rendered with 1 sample
per pixel for time), calibrated with 0.2 px of Gaussian noise added to every detected corner
(the issue's condition), and measured against the simulator's truth at pan/tilt/zoom settings NOT
used for calibration (zooms midway between the steps, 60 random poses over +-60 deg pan), and on
a held-out dataset at other zooms. Targets (issue 3) and measured values [seed 3]:

* focal length <= 0.5 % over the whole zoom range [0.11 %]; principal point <= 3 px [0.8 px];
* axis directions <= 0.05 deg [0.024 / 0.010 deg]; radius vectors <= 2 mm [1.6 / 1.3 mm]
  (6 noise seeds on the default dataset: worst 1.6 / 1.3 mm, reported std ~1-2 mm);
* reprojection RMS on the held-out dataset <= 0.5 px [0.04 px].
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math

import numpy as np
import pytest
import yaml

from calib_fixtures import fast_rig
from ptz_calibration import cli
from ptz_calibration.calibration import Detection, load_dataset
from ptz_calibration.calibration.bundle import BundleError, BundleOptions, BundleStep, BundleView, bundle_adjust
from ptz_calibration.calibration.capture_protocol import ProtocolOptions, run_protocol
from ptz_calibration.calibration.evaluate import (
    evaluate_against_truth,
    evaluate_on_dataset,
    home_offset,
    true_model_in_reported_home,
)
from ptz_calibration.calibration.pipeline import (
    Cancelled,
    PipelineError,
    PipelineOptions,
    calibrate_camera,
    write_calibration,
)
from ptz_calibration.calibration.targets import Checkerboard
from ptz_calibration.calibration.zoom_fit import ZoomFitOptions
from ptz_calibration.model import PtzKinematics, load_model, read_camera_info
from ptz_calibration.model.rotations import rpy_matrix
from ptz_calibration.simulation import load_rig

NOISE = ZoomFitOptions(corner_noise=0.2, noise_seed=3)


def _cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return code, out.getvalue(), err.getvalue()


# -- bundle adjustment on synthetic views -------------------------------------------------------
def _synthetic(truth_model, n_poses: int = 14, seed: int = 0, feedback_error: float = 0.0):
    """Views of two boards (2 m and 5 m) at three zoom steps, projected exactly through the truth;
    reported pan/tilt off by ``feedback_error`` (rad std, repeatable per pose)."""
    rng = np.random.default_rng(seed)
    board = Checkerboard(6, 8, 0.06)
    obj = board.object_points()
    boards = {}
    for name, dist, pan, tilt in (("near", 2.0, 0.25, -0.15), ("far", 5.0, -0.2, 0.05)):
        r, t = truth_model.pose(pan, tilt, 0.0)
        r_b = r @ rpy_matrix(0.1, -0.15, 0.05)
        centre = obj.mean(axis=0)
        boards[name] = (r_b, t + r @ np.array([0.0, 0.0, dist]) - r_b @ centre)
    zooms = [0.0, 3000.0, 6000.0]
    views, truth_angles = [], []
    for name, (r_b, t_b) in boards.items():
        x_h = obj @ r_b.T + t_b
        for _ in range(n_poses):
            # look at the board with an offset of up to a quarter of the field of view
            d = (x_h.mean(axis=0))
            pan0 = math.atan2(-d[0], d[2])
            tilt0 = math.atan2(-d[1], math.hypot(d[0], d[2]))
            pan, tilt = pan0 + rng.uniform(-0.3, 0.3), tilt0 + rng.uniform(-0.2, 0.2)
            err = rng.normal(0.0, feedback_error, 2) if feedback_error else np.zeros(2)
            for k, z in enumerate(zooms):
                px = truth_model.project(x_h, pan, tilt, z)
                w, h = truth_model.image_width, truth_model.image_height
                inside = np.all(np.isfinite(px), axis=1) & (px[:, 0] > 0) & (px[:, 0] < w) & (px[:, 1] > 0) & (px[:, 1] < h)
                if inside.sum() < 12:
                    continue
                det = Detection(px[inside], obj[inside], np.flatnonzero(inside), (w, h), len(obj), f"{name}_{z}")
                views.append(BundleView(f"{name}_{len(views)}", k, name, pan - err[0], tilt - err[1], det))
                truth_angles.append((pan, tilt))
    steps = []
    for z in zooms:
        K, D = truth_model.camera_matrix(z), truth_model.distortion(z)
        steps.append(BundleStep(z, {"fx": K[0, 0], "fy": K[1, 1], "cx": K[0, 2], "cy": K[1, 2], "k1": D[0],
                                    "k2": D[1], "p1": D[2], "p2": D[3]},
                                translation=float(truth_model.kinematics.zoom_translation.evaluate(z))))
    return views, steps


@pytest.fixture(scope="module")
def left_truth():
    return load_rig().cameras["left"].model


def test_bundle_recovers_a_perturbed_model_exactly(left_truth):
    """Exact projections, a start 0.5 deg / 5 mm / 1 % / 3 px off: the adjustment returns the truth.
    (The widest step's zoom translation is 0 by definition: the home frame is the camera there.)"""
    views, steps = _synthetic(left_truth)
    true_k = left_truth.kinematics
    start_kin = PtzKinematics(pan_axis=true_k.pan_axis + [0.006, 0.0, 0.004], tilt_axis=true_k.tilt_axis + [0.0, 0.008, 0.0],
                              pan_radius=true_k.pan_radius + [0.004, 0.0, -0.005],
                              tilt_radius=true_k.tilt_radius + [0.0, 0.003, 0.005])
    start = [dataclasses.replace(s, values={**s.values, "fx": s.values["fx"] * 1.01, "cx": s.values["cx"] + 3.0},
                                 translation=s.translation + (0.002 if s.zoom > 0 else 0.0)) for s in steps]
    res = bundle_adjust(views, start, start_kin, BundleOptions(loss="linear", pixel_sigma=0.01))
    assert res.rms_px < 1e-3 and res.converged
    # stopped at an iteration limit short of the optimum: said, not silent
    short = bundle_adjust(views, start, start_kin, BundleOptions(loss="linear", pixel_sigma=0.01, max_iterations=1))
    assert not short.converged and short.rms_px > 10 * res.rms_px
    assert any("iteration limit" in n for n in short.notes)
    for name in ("pan", "tilt"):
        est = getattr(res.kinematics, f"{name}_joint")
        tru = getattr(true_k, f"{name}_joint")
        assert math.degrees(math.acos(min(1.0, float(est.axis @ tru.axis)))) < 1e-3  # priors: ~3e-4
        np.testing.assert_allclose(est.radius, tru.radius, atol=5e-5)
    for st, s0 in zip(res.steps, steps):
        assert st.values["fx"] == pytest.approx(s0.values["fx"], rel=5e-5)
        assert st.values["cx"] == pytest.approx(s0.values["cx"], abs=0.05)  # the priors pull ~0.01 px
        assert st.translation == pytest.approx(s0.translation, abs=2e-5)
    assert np.abs(res.corrections).max() < 1e-5


def test_bundle_absorbs_feedback_error_and_reports_outliers(left_truth):
    """Reported angles off by 0.03 deg (repeatable per pose): the per-pose corrections take it up
    (axes within 4 of their reported standard deviations); one view with corners moved by 5 px is found as an outlier."""
    views, steps = _synthetic(left_truth, feedback_error=math.radians(0.03), seed=2)
    bad = views[5]
    moved = dataclasses.replace(bad.detection, image_points=bad.detection.image_points + 5.0)
    views[5] = dataclasses.replace(bad, detection=moved)
    res = bundle_adjust(views, steps, left_truth.kinematics, BundleOptions())
    assert [i for i, _, _ in res.outliers] == [5]
    assert "outlier" in res.notes[0]
    for name in ("pan", "tilt"):  # within 4 reported standard deviations
        est, tru = getattr(res.kinematics, f"{name}_axis"), getattr(left_truth.kinematics, f"{name}_axis")
        std = math.degrees(math.sqrt(np.trace(res.joint_std[name]["axis_cov"])))
        assert math.degrees(math.acos(min(1.0, float(est @ tru)))) < 4 * std + 0.005, name
    assert res.rms_px < 0.01


def test_bundle_solvers_agree(left_truth):
    """The normal-equation solver and scipy's least_squares (trf + lsmr) reach the same answer."""
    views, steps = _synthetic(left_truth, n_poses=5, feedback_error=math.radians(0.02), seed=4)
    # a well-posed problem: with 3 zoom steps the default curvature prior allows 14 mm per second
    # difference, and with 5 poses the tilt radius' z then trades against d: where each solver stops
    # in that flat valley depends on the BLAS kernel (1.2-1.8e-5 m apart with OpenBLAS' default
    # kernel, against 1e-5 asserted). A tight prior (0.18 mm per second difference here) pins d:
    # 4.6e-6 m with either kernel
    opts = BundleOptions(translation_curvature=0.0005)
    a = bundle_adjust(views, steps, left_truth.kinematics, dataclasses.replace(opts, solver="lm"))
    b = bundle_adjust(views, steps, left_truth.kinematics, dataclasses.replace(opts, solver="scipy"))
    np.testing.assert_allclose(a.kinematics.pan_axis, b.kinematics.pan_axis, atol=1e-6)
    np.testing.assert_allclose(a.kinematics.tilt_radius, b.kinematics.tilt_radius, atol=1e-5)
    assert a.steps[1].values["fx"] == pytest.approx(b.steps[1].values["fx"], rel=2e-5)  # each to its own tolerance


def test_bundle_bad_input(left_truth):
    views, steps = _synthetic(left_truth, n_poses=2)
    with pytest.raises(BundleError, match="no views"):
        bundle_adjust([], steps, left_truth.kinematics)
    with pytest.raises(BundleError, match="non-finite"):
        bundle_adjust([dataclasses.replace(views[0], pan=math.nan)] + views[1:], steps, left_truth.kinematics)
    with pytest.raises(BundleError, match="unknown zoom steps"):
        bundle_adjust([dataclasses.replace(views[0], step=7)], steps, left_truth.kinematics)
    with pytest.raises(ValueError, match="solver"):
        BundleOptions(solver="magic")


@pytest.mark.parametrize("order", ["pan_tilt", "tilt_pan"])
def test_true_model_in_reported_home_is_the_same_camera(left_truth, order):
    """The truth re-expressed in the frame at load angles (p0, t0) gives the same camera poses:
    truth(p0 + p, t0 + t) = P0 * moved(p, t) for any (p, t)."""
    k = left_truth.kinematics
    truth = dataclasses.replace(left_truth, kinematics=PtzKinematics(
        pan_axis=k.pan_axis, tilt_axis=k.tilt_axis, pan_radius=k.pan_radius, tilt_radius=k.tilt_radius,
        order=order, zoom_translation=k.zoom_translation))
    p0, t0 = math.radians(-0.3), math.radians(0.2)
    moved = true_model_in_reported_home(truth, p0, t0)
    r0, t_0 = truth.pose(p0, t0, 0.0)
    for pan, tilt, zoom in ((0.3, 0.1, 0.0), (-0.5, -0.2, 5000.0), (1.2, 0.6, 16384.0)):
        r, t = truth.pose(p0 + pan, t0 + tilt, zoom)
        r1, t1 = moved.pose(pan, tilt, zoom)
        np.testing.assert_allclose(r0 @ r1, r, atol=1e-12)
        np.testing.assert_allclose(r0 @ t1 + t_0, t, atol=1e-12)


# -- the default protocol, end to end -----------------------------------------------------------
@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    rig = fast_rig()
    run_protocol(rig, "left", root / "data", ProtocolOptions())
    run_protocol(rig, "left", root / "held_out", ProtocolOptions(
        zoom_values=(431.0, 3880.0, 7330.0, 10779.0, 14228.0, 15953.0), views_per_step=5, pan_sweep=0,
        tilt_sweep=0, seed=11))
    stages = []
    result = calibrate_camera(load_dataset(root / "data"), "left", PipelineOptions(zoom=NOISE),
                              progress=lambda s, f, i: stages.append((s, f, dict(i))))
    files = write_calibration(result, root / "out")
    return {"root": root, "rig": rig, "result": result, "files": files, "stages": stages}


@pytest.mark.slow
def test_accuracy_against_the_truth(calibrated):
    rig = calibrated["rig"]
    model = calibrated["result"].model
    ev = evaluate_against_truth(model, rig.cameras["left"].model, home_offset(rig, "left"))
    figures = {"focal_pct": ev["focal_error_pct"]["max_abs"], "pp_px": ev["principal_point_error_px"]["max"],
               "pan_axis_deg": ev["pan_axis_error_deg"], "tilt_axis_deg": ev["tilt_axis_error_deg"],
               "pan_radius_mm": ev["pan_radius_error_mm"], "tilt_radius_mm": ev["tilt_radius_error_mm"],
               "distortion_px": ev["distortion_error_px"]["max"], "rotation_deg": ev["pose"]["rotation_error_deg"]["max"]}
    print("accuracy:", figures)
    assert figures["focal_pct"] <= 0.5
    assert figures["pp_px"] <= 3.0
    assert figures["pan_axis_deg"] <= 0.05 and figures["tilt_axis_deg"] <= 0.05
    assert figures["pan_radius_mm"] <= 2.0 and figures["tilt_radius_mm"] <= 2.0
    assert figures["distortion_px"] <= 2.0
    assert figures["rotation_deg"] <= 0.05


@pytest.mark.slow
def test_reprojection_on_held_out_data(calibrated):
    held = evaluate_on_dataset(calibrated["result"].model, load_dataset(calibrated["root"] / "held_out"))
    print("held out:", {k: v for k, v in held.items() if k != "per_view"})
    assert held["views_used"] == held["views"] >= 25
    assert held["reprojection_rms_px"] <= 0.5
    # from feedback alone the pose carries the head's pointing error: px grow with the focal length
    assert held["model_rms_px"]["median"] < 5.0


@pytest.mark.slow
def test_report_progress_and_files(calibrated):
    result, files, stages = calibrated["result"], calibrated["files"], calibrated["stages"]
    report = result.report
    assert report["summary"]["zoom_steps"] == 20 and report["summary"]["views_used"] >= 180
    assert report["summary"]["rms_px"] == pytest.approx(0.28, abs=0.05)  # the added 0.2 px noise, per axis
    fractions = [f for _, f, _ in stages]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert [s for s, _, _ in stages][-1] == "curves" and "bundle" in {s for s, _, _ in stages}
    for name in ("fx", "fy", "cx", "cy", "k1", "k2"):
        c = report["curves"][name]
        assert c["family"] and len(c["curve_samples"]["zoom"]) == 200 and c["samples"]
    assert len(report["bundle"]["views"]) >= 180 and report["kinematics"]["pan"]["axis_std_deg"] > 0
    assert report["bundle"]["converged"] and not any("iteration limit" in w for w in report["warnings"])
    # the joints' start comes from the pan and tilt sweeps of one board (the protocol sweeps two)
    assert any(n.startswith("axes from the sweeps of") for n in report["kinematics"]["notes"])
    model = load_model(files["model"])
    np.testing.assert_allclose(model.camera_matrix(5000.0), result.model.camera_matrix(5000.0), rtol=1e-9)
    info = read_camera_info(files["camera_info"])
    np.testing.assert_allclose(np.asarray(info["camera_matrix"]).reshape(3, 3),
                               result.model.camera_matrix(0.0), rtol=1e-6)
    assert json.loads(open(files["report_json"]).read())["camera"] == "left"
    # writing again keeps the previous model as a backup
    write_calibration(result, calibrated["root"] / "out", html=False)
    assert (calibrated["root"] / "out" / "left_model.yaml.bak").exists()


@pytest.mark.slow
def test_cli_calibrate_and_evaluate(calibrated, tmp_path):
    code, out, err = _cli(["calibrate", str(calibrated["root"] / "data"), str(tmp_path / "cli"), "--json",
                           "--no-html"])
    assert code == 0, err
    summary = json.loads(out)
    assert summary["summary"]["zoom_steps"] == 20 and set(summary["files"]) >= {"model", "report_json"}
    code, out, err = _cli(["evaluate", summary["files"]["model"], "--truth", "default", "--json"])
    assert code == 0, err
    ev = json.loads(out)
    assert ev["against"] == "truth" and ev["focal_error_pct"]["max_abs"] < 0.5
    code, out, err = _cli(["evaluate", summary["files"]["model"], "--dataset", str(calibrated["root"] / "held_out")])
    assert code == 0 and "reprojection RMS" in out
    code, _, err = _cli(["evaluate", str(tmp_path / "missing.yaml"), "--truth", "default"])
    assert code == 1 and "missing.yaml" in err


# -- bad input ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """3 zoom steps x 4 views and small sweeps of one board: a few seconds."""
    root = tmp_path_factory.mktemp("tiny")
    run_protocol(fast_rig(), "left", root / "data", ProtocolOptions(
        zoom_values=(0.0, 1500.0, 3000.0), views_per_step=4, pan_sweep=4, tilt_sweep=3, sweep_boards=1, seed=2))
    return root / "data"


def test_cancel_stops_and_writes_nothing(tiny, tmp_path):
    calls = []

    def cancel() -> bool:
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(Cancelled):
        calibrate_camera(load_dataset(tiny), "left", cancel=cancel)
    assert not (tmp_path / "out").exists()


def test_target_in_no_image_fails_clearly(tiny):
    """Every image blank: the message says the target was found in none of them."""
    import cv2

    folder = tiny.parent / "blank"
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "manifest.yaml").write_text((tiny / "manifest.yaml").read_text())
    for path in (tiny / "images").iterdir():
        cv2.imwrite(str(folder / "images" / path.name), np.full((720, 1280), 128, np.uint8))
    with pytest.raises(PipelineError, match="found in none"):
        calibrate_camera(load_dataset(folder), "left")


def test_nan_feedback_and_a_step_without_views_are_dropped_and_said(tiny):
    """A capture with NaN pan and a zoom step whose images show no target: the calibration
    completes with the rest and the report names what it dropped and why."""
    import cv2

    manifest = yaml.safe_load((tiny / "manifest.yaml").read_text())
    caps = manifest["captures"]
    caps[1]["pan"] = float("nan")
    folder = tiny.parent / "nan"
    (folder / "images").mkdir(parents=True, exist_ok=True)
    for c in caps:
        src = tiny / c["image"]
        img = cv2.imread(str(src), cv2.IMREAD_UNCHANGED)
        if 1000 < c["zoom"] < 2000:  # the 1500 step: blank images
            img = np.full_like(img, 128)
        cv2.imwrite(str(folder / c["image"]), img)
    (folder / "manifest.yaml").write_text(yaml.safe_dump(manifest))
    result = calibrate_camera(load_dataset(folder), "left")
    report = result.report
    assert any("captures[1]" in d["reason"] and "pan" in d["reason"] for d in report["dropped"]), report["dropped"]
    assert report["summary"]["zoom_steps"] == 2 and report["summary"]["zoom_steps_dropped"] == 1
    assert any("zoom step 1500 dropped" in w for w in report["warnings"]), report["warnings"]
    assert result.model.camera_matrix(0.0)[0, 0] > 0
