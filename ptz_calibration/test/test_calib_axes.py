"""Rotation axes and radius vectors from pan and tilt sweeps (``calibration.axes``) against the
simulator's TRUE kinematics (default rig, left camera: axes tilted by tenths of a degree, radii
of 31-59 mm, of which the along-axis parts are not part of the model).

Poses come from the true model at the sweep angles (pan -60..60 deg in 9 steps at tilt 0; tilt
-20..40 deg in 7 steps at pan 0), perturbed per view like Zhang extrinsics at the widest zoom
(rotation 0.005 deg, translation 0.3 mm per axis) and the reported angles by 0.01 deg of feedback
noise. Targets (the issue's): axis direction 0.05 deg, radius vector 2 mm, over 20 seeds.
Measured over 200 seeds: axis RMS 0.004 deg (pan) / 0.008 deg (tilt), worst 0.010 / 0.018 deg;
radius RMS 0.23 / 0.46 mm, worst 0.47 / 1.16 mm (the tilt sweep is shorter: 60 deg, 7 views).
Error / reported std has RMS 1.11 (axis) and 1.03 (radius). About 24 ms per estimate_kinematics.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from ptz_calibration.calibration.axes import (
    AxisEstimationError,
    Sweep,
    estimate_joint,
    estimate_kinematics,
    to_home,
)
from ptz_calibration.model import AxisOrder, PtzKinematics
from ptz_calibration.simulation import load_rig

PAN = np.radians(np.linspace(-60.0, 60.0, 9))
TILT = np.radians(np.linspace(-20.0, 40.0, 7))
ROT_NOISE = math.radians(0.005)
TRANS_NOISE = 0.3e-3
FEEDBACK_NOISE = math.radians(0.01)
SEEDS = range(20)


@pytest.fixture(scope="module")
def truth() -> PtzKinematics:
    return load_rig().cameras["left"].model.kinematics


def noisy(poses, angles, rng):
    r, t = poses
    n = len(angles)
    r = Rotation.from_rotvec(rng.normal(0.0, ROT_NOISE, (n, 3))).as_matrix() @ r
    t = t + rng.normal(0.0, TRANS_NOISE, (n, 3))
    return (r, t), angles + rng.normal(0.0, FEEDBACK_NOISE, n)


def axis_error_deg(a, b) -> float:
    return math.degrees(math.acos(min(1.0, abs(float(a @ b)))))


def test_noise_free_exact(truth):
    pan = estimate_joint(truth.pose(PAN, 0.0), PAN)
    tilt = estimate_joint(truth.pose(0.0, TILT), TILT)
    np.testing.assert_allclose(pan.axis, truth.pan_axis, atol=1e-9)
    np.testing.assert_allclose(pan.radius, truth.pan_radius, atol=1e-9)
    np.testing.assert_allclose(tilt.axis, truth.tilt_axis, atol=1e-9)
    np.testing.assert_allclose(tilt.radius, truth.tilt_radius, atol=1e-9)
    assert pan.angle_scale == pytest.approx(1.0, abs=1e-9) and pan.angle_rms < 1e-9
    assert pan.translation_rms < 1e-12 and pan.rotation_rms < 1e-12
    assert pan.axis_std < 1e-9 and np.all(pan.radius_std < 1e-9)
    assert pan.n_views == 9 and pan.n_pairs == 36


def test_noise_free_kinematics(truth):
    kin, report = estimate_kinematics(Sweep(truth.pose(PAN, 0.0), PAN), Sweep(truth.pose(0.0, TILT), TILT))
    q = np.radians([[-100.0, 70.0], [35.0, -25.0], [150.0, 80.0]])
    r_est, t_est = kin.pose(q[:, 0], q[:, 1])
    r_true, t_true = truth.pose(q[:, 0], q[:, 1])
    np.testing.assert_allclose(r_est, r_true, atol=1e-9)
    np.testing.assert_allclose(t_est, t_true, atol=1e-9)
    assert report.axis_angle == pytest.approx(truth.axis_angle, abs=1e-9)
    assert math.degrees(abs(report.non_perpendicularity)) > 0.05   # the rig's axes are not perpendicular
    assert report.to_dict()["order"] == "pan_tilt"


def test_noisy_sweeps_meet_targets(truth):
    errs = {"pan_axis": [], "tilt_axis": [], "pan_radius": [], "tilt_radius": []}
    z_axis, z_radius = [], []
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        pan_poses, pan_q = noisy(truth.pose(PAN, 0.0), PAN, rng)
        tilt_poses, tilt_q = noisy(truth.pose(0.0, TILT), TILT, rng)
        kin, report = estimate_kinematics(Sweep(pan_poses, pan_q), Sweep(tilt_poses, tilt_q))
        for name in ("pan", "tilt"):
            est = getattr(report, name)
            a_true, m_true = getattr(truth, f"{name}_axis"), getattr(truth, f"{name}_radius")
            errs[f"{name}_axis"].append(axis_error_deg(est.axis, a_true))
            errs[f"{name}_radius"].append(1e3 * np.linalg.norm(est.radius - m_true))
            z_axis.append(math.radians(errs[f"{name}_axis"][-1]) / est.axis_std)
            z_radius.append(1e-3 * errs[f"{name}_radius"][-1] / np.linalg.norm(est.radius_std))
            # per-view noise recovered from the pair residuals
            assert est.sigma_rotation == pytest.approx(ROT_NOISE, rel=0.5)
            assert est.sigma_translation == pytest.approx(TRANS_NOISE, rel=0.5)
            assert est.angle_scale == pytest.approx(1.0, abs=1e-3)
    worst = {k: max(v) for k, v in errs.items()}
    print("worst over seeds:", {k: round(v, 4) for k, v in worst.items()})
    assert worst["pan_axis"] <= 0.05 and worst["tilt_axis"] <= 0.05
    assert worst["pan_radius"] <= 2.0 and worst["tilt_radius"] <= 2.0
    # errors / reported std: RMS near 1 (2-D errors: E[|e|^2] = trace of the covariance)
    for z in (z_axis, z_radius):
        assert 0.6 <= math.sqrt(np.mean(np.square(z))) <= 1.5


def test_pose_frame_is_any_reference(truth):
    """Poses relative to a target (camera-to-world) brought to home with the home view's pose."""
    world_r = Rotation.from_rotvec([0.3, -1.2, 0.4]).as_matrix()
    world_t = np.array([1.0, -0.5, 4.0])
    r, t = truth.pose(PAN, 0.0)
    r_w, t_w = world_r @ r, t @ world_r.T + world_t
    home = (world_r, world_t)                             # the view at pan = tilt = 0
    est = estimate_joint(to_home((r_w, t_w), home), PAN)
    np.testing.assert_allclose(est.axis, truth.pan_axis, atol=1e-9)
    np.testing.assert_allclose(est.radius, truth.pan_radius, atol=1e-9)
    # a list of (R, T) pairs is accepted too
    est2 = estimate_joint(list(zip(r, t)), PAN)
    np.testing.assert_allclose(est2.radius, truth.pan_radius, atol=1e-9)


def test_along_axis_component_unobservable(truth):
    """Shifting the axis line along itself changes no pose: the estimate reports it, radius is perpendicular."""
    a, m = truth.pan_axis, truth.pan_radius
    shifted = PtzKinematics(pan_axis=a, tilt_axis=truth.tilt_axis, pan_radius=m + 0.2 * a,
                            tilt_radius=truth.tilt_radius)
    np.testing.assert_allclose(shifted.pose(PAN, 0.0)[1], truth.pose(PAN, 0.0)[1], atol=1e-12)
    est = estimate_joint(truth.pose(PAN, 0.0), PAN)
    assert est.along_axis_observable is False
    assert "along its own direction" in est.unobservable
    assert abs(est.radius @ est.axis) < 1e-12
    # the covariance has nothing along the axis either
    assert abs(est.axis @ est.radius_cov @ est.axis) < 1e-20
    _, report = estimate_kinematics(Sweep(truth.pose(PAN, 0.0), PAN), Sweep(truth.pose(0.0, TILT), TILT))
    assert any("along its own direction" in n for n in report.notes)


def test_tilt_sweep_away_from_pan_home(truth):
    """pan_tilt: a tilt sweep at pan 30 deg is brought back with the estimated pan joint; a pan
    sweep at tilt 10 deg measures the pan joint directly."""
    pan_sweep = Sweep(truth.pose(PAN, math.radians(10.0)), PAN, other_angle=math.radians(10.0))
    tilt_sweep = Sweep(truth.pose(math.radians(30.0), TILT), TILT, other_angle=math.radians(30.0))
    kin, report = estimate_kinematics(pan_sweep, tilt_sweep)
    np.testing.assert_allclose(kin.tilt_axis, truth.tilt_axis, atol=1e-9)
    np.testing.assert_allclose(kin.tilt_radius, truth.tilt_radius, atol=1e-9)
    np.testing.assert_allclose(kin.pan_radius, truth.pan_radius, atol=1e-9)
    assert any("brought back" in n for n in report.notes)


def test_tilt_pan_order(truth):
    """tilt_pan: the roles swap; the pan sweep at a non-zero tilt is brought back with the tilt joint."""
    true = PtzKinematics(pan_axis=truth.pan_axis, tilt_axis=truth.tilt_axis, pan_radius=truth.pan_radius,
                         tilt_radius=truth.tilt_radius, order=AxisOrder.TILT_PAN)
    tilt0 = math.radians(25.0)
    pan_sweep = Sweep(true.pose(PAN, tilt0), PAN, other_angle=tilt0)
    tilt_sweep = Sweep(true.pose(math.radians(40.0), TILT), TILT, other_angle=math.radians(40.0))
    kin, report = estimate_kinematics(pan_sweep, tilt_sweep, order="tilt_pan")
    assert kin.order is AxisOrder.TILT_PAN
    np.testing.assert_allclose(kin.pan_axis, true.pan_axis, atol=1e-9)
    np.testing.assert_allclose(kin.pan_radius, true.pan_radius, atol=1e-9)
    np.testing.assert_allclose(kin.tilt_axis, true.tilt_axis, atol=1e-9)
    np.testing.assert_allclose(kin.tilt_radius, true.tilt_radius, atol=1e-9)
    # ignoring the order gets the pan joint wrong (the pan axis moved with the tilt)
    wrong, _ = estimate_kinematics(pan_sweep, tilt_sweep, order="pan_tilt")
    assert axis_error_deg(wrong.pan_axis, true.pan_axis) > 10.0


def test_negative_angle_scale_and_sign(truth):
    """Angles reported in the opposite sense flip the axis (right-handed for positive angles)."""
    est = estimate_joint(truth.pose(PAN, 0.0), -PAN)
    np.testing.assert_allclose(est.axis, -truth.pan_axis, atol=1e-9)
    np.testing.assert_allclose(est.radius, truth.pan_radius, atol=1e-9)
    # a feedback scale error shows in the angle scale check
    est = estimate_joint(truth.pose(PAN, 0.0), 1.02 * PAN)
    assert est.angle_scale == pytest.approx(1 / 1.02, rel=1e-9)


@pytest.mark.parametrize(
    "n_views, angles, match",
    [
        (2, np.radians([0.0, 10.0]), "at least 3 views"),
        (5, np.zeros(5), "angles span"),
        (4, np.full(4, 0.3), "angles span"),
    ],
)
def test_bad_sweeps(truth, n_views, angles, match):
    poses = truth.pose(np.radians(np.linspace(-10, 10, n_views)), 0.0)
    with pytest.raises(AxisEstimationError, match=match):
        estimate_joint(poses, angles)


def test_bad_input(truth):
    r, t = truth.pose(PAN, 0.0)
    with pytest.raises(AxisEstimationError, match="9 poses but 8 angles"):
        estimate_joint((r, t), PAN[:-1])
    t_nan = t.copy()
    t_nan[3, 1] = np.nan
    with pytest.raises(AxisEstimationError, match="finite"):
        estimate_joint((r, t_nan), PAN)
    still = (np.repeat(r[:1], 9, axis=0), np.repeat(t[:1], 9, axis=0))
    with pytest.raises(AxisEstimationError, match="do not rotate"):
        estimate_joint(still, PAN)
    assert issubclass(AxisEstimationError, ValueError)



@pytest.mark.slow
def test_end_to_end_rendered_sweeps(truth):
    """Rendered images at the widest zoom (rig sensor noise), detection, solvePnP with the true
    intrinsics (Zhang's, in the pipeline), the full sweeps. Each view sees its own surveyed board
    (10x7, 60 mm squares, 1.5 m away, turned 0.3 rad): its pose in H is known, so camera-to-home =
    board-to-home * camera-to-board (in the pipeline the bundle adjustment provides the board
    poses). Targets: 0.05 deg, 2 mm. Measured (pan/tilt): 0.008/0.017 deg, 0.15/0.09 mm; PnP pose
    noise estimated from the residuals 0.006-0.008 deg, 0.19-0.23 mm. At 2.5 m the PnP noise is
    0.7-1.5 mm and the tilt radius misses 2 mm (2.04 mm, reported std 2.4 mm). With ONE unsurveyed board (poses relative to the home view)
    the sweeps must stay inside the view (pan +-20, tilt +-10 deg): measured 0.03/0.06 deg and
    2.7/8.1 mm (pan/tilt), consistent with the reported std (4.5/8.7 mm)."""
    import cv2

    from calib_fixtures import RIG_NOISE, SIZE, true_camera
    from ptz_calibration.calibration import Detection, detect
    from ptz_calibration.model.rotations import rpy_matrix
    from ptz_calibration.simulation import Checkerboard, PlacedTarget, RenderOptions, Scene, render

    board = Checkerboard(7, 10, 0.06)
    x0, y0, x1, y1 = board.extent
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2, 0.0])
    K, D = true_camera(0.0)
    rng = np.random.default_rng(7)

    def home_poses(pans, tilts):
        r_out, t_out = [], []
        for pan, tilt in zip(pans, tilts):
            r, t = truth.pose(pan, tilt)
            r_b = r @ rpy_matrix(*rng.uniform(-0.3, 0.3, 2), 0.0)
            t_b = t + r @ np.array([0.0, 0.0, 1.5]) - r_b @ centre
            scene = Scene([PlacedTarget("board", board, r_b, t_b)])
            img = render(scene, K, D, SIZE, r, t, RenderOptions(supersample=1), noise=RIG_NOISE, rng=rng)
            det = detect(img, board)
            assert isinstance(det, Detection), str(det)
            ok, rvec, tvec = cv2.solvePnP(det.object_points, det.image_points, K, D)
            assert ok
            r_cb = cv2.Rodrigues(rvec)[0]               # board-to-camera
            r_out.append(r_b @ r_cb.T)                  # camera-to-home
            t_out.append(t_b - r_b @ r_cb.T @ tvec.reshape(3))
        return np.array(r_out), np.array(t_out)

    feedback = lambda q: q + rng.normal(0.0, FEEDBACK_NOISE, q.shape)  # noqa: E731
    kin, report = estimate_kinematics(Sweep(home_poses(PAN, np.zeros(9)), feedback(PAN)),
                                      Sweep(home_poses(np.zeros(7), TILT), feedback(TILT)))
    errors = {}
    for name in ("pan", "tilt"):
        est = getattr(report, name)
        errors[f"{name}_axis_deg"] = axis_error_deg(est.axis, getattr(truth, f"{name}_axis"))
        errors[f"{name}_radius_mm"] = 1e3 * float(np.linalg.norm(est.radius - getattr(truth, f"{name}_radius")))
        errors[f"{name}_std_deg_mm"] = (math.degrees(est.axis_std), 1e3 * float(np.linalg.norm(est.radius_std)))
        errors[f"{name}_sigma_deg_mm"] = (math.degrees(est.sigma_rotation), 1e3 * est.sigma_translation)
    print("end to end:", errors)
    assert errors["pan_axis_deg"] <= 0.05 and errors["tilt_axis_deg"] <= 0.05
    assert errors["pan_radius_mm"] <= 2.0 and errors["tilt_radius_mm"] <= 2.0
