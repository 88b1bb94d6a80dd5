"""The simulated PTZ camera: truth vs feedback, determinism, frame timing and triggers."""

from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np
import pytest

from ptz_calibration.model import rotation_angle
from ptz_calibration.simulation import (
    ImageNoise,
    SimulatedPtzCamera,
    ThermalConfig,
    load_rig,
    make_cameras,
)

DEG = math.pi / 180
T_START = 1.7e9


class FakeClock:
    """Injectable clock: the test sets the time."""

    def __init__(self, t: float = T_START) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="module")
def rig():
    return load_rig()


def quiet(spec, **changes):
    """The spec with no encoder noise (and optional other changes to the axes and spec)."""
    mech = spec.mechanics
    axes = {name: dataclasses.replace(getattr(mech, name), encoder_noise=0.0) for name in ("pan", "tilt", "zoom")}
    spec = dataclasses.replace(spec, mechanics=dataclasses.replace(mech, **axes))
    return dataclasses.replace(spec, **changes)


def no_drift(spec):
    th = spec.thermal
    return dataclasses.replace(spec, thermal=dataclasses.replace(th, boresight_x=0.0, boresight_y=0.0, focal_ppm=0.0))


def settle(cam, clock, extra=0.2):
    clock.t = cam.arrival_time() + extra


def test_true_pose_equals_model_pose_at_actual_angles(rig):
    """Without thermal drift the camera's truth is the true model at the load angles."""
    spec = no_drift(rig.cameras["left"])
    clock = FakeClock()
    cam = SimulatedPtzCamera(spec, rig.scene, seed=3, clock=clock)
    points = rig.scene.target("big_checkerboard").object_points_world()
    for pan, tilt, zoom in ((0.1, 0.05, 0.0), (-0.4, 0.2, 6000.0), (0.25, -0.1, 16000.0)):
        cam.move_absolute(pan, tilt, zoom)
        for t in (clock.t + 0.3, cam.arrival_time() + 0.1):  # while moving and at rest
            s = cam.true_state(t)
            R_m, T_m = spec.model.pose(s.pan, s.tilt, s.zoom_raw)
            R, tr = cam.true_pose_world(t)
            R_h = spec.mount_R @ np.array([[0, 0, 1], [-1, 0, 0], [0, -1, 0]], float)
            assert np.allclose(R, R_h @ R_m, atol=1e-15)
            assert np.allclose(tr, R_h @ T_m + spec.mount_t, atol=1e-15)
            # independently through the model's own projection of points in the home frame
            home = (points - spec.mount_t) @ R_h
            expected = spec.model.project(home, s.pan, s.tilt, s.zoom_raw)
            got = cam.project(points, t)
            assert np.allclose(got, expected, atol=1e-7, equal_nan=True)
            assert np.allclose(cam.true_camera_matrix(t), spec.model.camera_matrix(s.zoom_raw), atol=1e-12)
        settle(cam, clock)


def test_thermal_drift_rotates_boresight_and_scales_focal(rig):
    spec = rig.cameras["right"]
    th = ThermalConfig(ambient=25.0, calibration_temperature=30.0, boresight_x=2e-5, boresight_y=-1e-5,
                       focal_ppm=50.0)
    clock = FakeClock()
    hot = SimulatedPtzCamera(dataclasses.replace(spec, thermal=th), rig.scene, clock=clock)
    cold = SimulatedPtzCamera(no_drift(spec), rig.scene, clock=clock)
    clock.t += 10.0
    R_hot, t_hot = hot.true_pose_world()
    R_cold, t_cold = cold.true_pose_world()
    assert np.allclose(t_hot, t_cold)
    assert float(rotation_angle(R_cold.T @ R_hot)) == pytest.approx(math.hypot(2e-5, 1e-5) * 5.0, rel=1e-6)
    assert hot.true_camera_matrix()[0, 0] / cold.true_camera_matrix()[0, 0] == pytest.approx(1 - 50e-6 * 5.0)


def test_feedback_differs_from_truth_by_backlash_and_periodic_error(rig):
    spec = quiet(rig.cameras["left"])
    pan_cfg = spec.mechanics.pan
    clock = FakeClock()
    cam = SimulatedPtzCamera(spec, rig.scene, seed=1, clock=clock)
    step = pan_cfg.encoder_step
    for target, direction in ((0.3, +1), (0.1, -1), (0.2, +1), (-0.2, -1)):
        cam.move_absolute(target, None)
        settle(cam, clock)
        fb, truth = cam.feedback(), cam.true_state()
        assert fb.pan == pytest.approx(round(target / step) * step, abs=1e-12)  # motor on the command grid
        load = fb.pan - direction * pan_cfg.backlash / 2
        assert truth.pan - fb.pan == pytest.approx(
            -direction * pan_cfg.backlash / 2 + pan_cfg.periodic(load), abs=1e-12)


def test_feedback_quantization_and_noise(rig):
    spec = rig.cameras["left"]
    clock = FakeClock()
    cam = SimulatedPtzCamera(spec, rig.scene, seed=5, clock=clock)
    cam.move_velocity(0.3, 0.2, 500.0)
    cfg = spec.mechanics
    errs = []
    for i in range(300):
        clock.t += 0.013
        fb = cam.feedback()
        pan_motor = cam.mechanics.pan.state(fb.stamp)[0]
        errs.append(fb.pan - pan_motor)
        assert fb.zoom_raw == round(fb.zoom_raw)
        assert fb.stamp == pytest.approx(clock.t - spec.timing.feedback_latency)
    errs = np.array(errs)
    expected = math.sqrt(cfg.pan.encoder_step**2 / 12 + cfg.pan.encoder_noise**2)
    assert errs.std() == pytest.approx(expected, rel=0.2)
    assert np.abs(errs).max() < cfg.pan.encoder_step / 2 + 5 * cfg.pan.encoder_noise


def test_velocity_mode_duration_and_stop(rig):
    spec = quiet(rig.cameras["left"])
    clock = FakeClock()
    cam = SimulatedPtzCamera(spec, rig.scene, clock=clock)
    cam.move_velocity(0.4, -0.2, 0.0, duration=1.0)
    t_cmd = clock.t + spec.timing.command_latency
    clock.t += 0.7
    fb = cam.feedback()
    assert fb.moving and fb.pan_velocity == pytest.approx(0.4) and fb.tilt_velocity == pytest.approx(-0.2)
    clock.t = t_cmd + 1.0 + 0.4 / spec.mechanics.pan.max_accel + spec.timing.feedback_latency + 1e-6
    fb = cam.feedback()
    assert not fb.moving and fb.pan_velocity == 0.0
    cam.move_velocity(-1.0, 0.0)
    clock.t += 0.5
    cam.stop()
    settle(cam, clock)
    assert not cam.feedback().moving


def test_determinism_with_seed(rig):
    def run(seed):
        clock = FakeClock()
        cam = make_cameras(rig, seed=seed, clock=clock)["left"]
        cam.move_absolute(0.05, 0.02, 2000)
        clock.t += 0.4
        fbs = [cam.feedback() for _ in range(3)]
        settle(cam, clock)
        frame = cam.capture()
        return fbs, frame
    (fa, ia), (fb, ib), (fc, ic) = run(7), run(7), run(8)
    assert fa == fb and np.array_equal(ia.image, ib.image) and ia.stamp == ib.stamp
    assert fa != fc and not np.array_equal(ia.image, ic.image)


def test_capture_timing(rig):
    spec = rig.cameras["left"]
    timing = spec.timing
    clock = FakeClock()
    cam = SimulatedPtzCamera(dataclasses.replace(spec, noise=ImageNoise()), rig.scene, clock=clock)
    period = 1.0 / timing.frame_rate
    stamp_err = []
    last = -1
    for i in range(40):
        clock.t += 0.5 + 0.0137 * i
        k = cam.latest_frame_index()
        assert k > last
        t_exp = cam.frame_time(k)
        assert clock.t - timing.latency - period < t_exp <= clock.t - timing.latency
        stamp_err.append(cam.frame_stamp(k) - t_exp)
        last = k
    frame = cam.capture()
    assert frame.exposure_time == cam.frame_time(frame.sequence)
    assert frame.stamp == cam.frame_stamp(frame.sequence)
    stamp_err = np.array(stamp_err + [cam.frame_stamp(k) - cam.frame_time(k) for k in range(400)])
    assert np.abs(stamp_err).max() < 6 * timing.stamp_jitter
    assert np.std(stamp_err) == pytest.approx(timing.stamp_jitter, rel=0.15)
    assert abs(np.mean(stamp_err) - timing.stamp_offset) < 4 * timing.stamp_jitter / math.sqrt(len(stamp_err))


def test_trigger_skew_between_two_cameras(rig):
    clock = FakeClock()
    cams = make_cameras(rig, seed=2, clock=clock)
    left, right = cams["left"], cams["right"]
    skews = []
    for i in range(500):
        t = T_START + 1.0 + 0.1 * i
        (sl, el), (sr, er) = left.trigger_times(t), right.trigger_times(t)  # as trigger() draws them
        assert sl == sr
        skews.append(el - er)
    assert np.abs(skews).max() < 1e-3
    jitter = left.spec.timing.trigger_jitter
    assert np.std(skews) == pytest.approx(math.sqrt(2) * jitter, rel=0.15)
    clock.t += 1.0
    fl, fr = left.trigger(clock.t), right.trigger(clock.t)
    assert fl.triggered and fr.triggered
    assert abs(fl.exposure_time - fr.exposure_time) < 1e-3
    assert fl.stamp == pytest.approx(clock.t + left.spec.timing.trigger_latency + left.spec.timing.exposure / 2)


def test_captured_image_matches_true_projection(rig):
    """End to end: corners found in a noisy captured frame sit on the true projections."""
    clock = FakeClock()
    cam = make_cameras(rig, seed=4, clock=clock)["left"]
    cam.move_absolute(0.02, -0.03, 1500)
    settle(cam, clock, 0.5)
    frame = cam.capture()
    target = rig.scene.target("big_checkerboard")
    truth = cam.project(target.object_points_world(), frame.exposure_time)
    ok, corners = cv2.findChessboardCorners(frame.image, target.target.pattern_size)
    assert ok
    crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 100, 1e-4)
    corners = cv2.cornerSubPix(frame.image, corners, (7, 7), (-1, -1), crit).reshape(-1, 2)
    if np.linalg.norm(corners[0] - truth[0]) > np.linalg.norm(corners[0] - truth[-1]):
        corners = corners[::-1]
    rms = np.sqrt(np.mean(np.sum((corners - truth) ** 2, axis=1)))
    assert rms < 0.1, f"corner RMS {rms:.3f} px with sensor noise"


def test_motion_blur_while_moving(rig):
    spec = dataclasses.replace(rig.cameras["left"], noise=ImageNoise(), motion_samples=3)
    clock = FakeClock()
    cam = SimulatedPtzCamera(spec, rig.scene, clock=clock)
    cam.move_velocity(1.0, 0.0, 0.0)
    clock.t += 0.5
    t = clock.t
    assert cam.feedback(t).pan_velocity == pytest.approx(1.0)
    sharp = cam.render_at(t, exposure=0.0).astype(float)
    blurred = cam.render_at(t, exposure=0.02).astype(float)
    # a 20 ms exposure at 1 rad/s smears ~22 px horizontally: horizontal edges stay, vertical go
    gx = lambda img: np.abs(np.diff(img, axis=1)).max()
    gy = lambda img: np.percentile(np.abs(np.diff(img, axis=0)), 99.9)
    assert gx(blurred) < 0.25 * gx(sharp)
    assert gy(blurred) > 0.3 * gy(sharp)
    assert blurred.mean() == pytest.approx(sharp.mean(), rel=0.02)


def test_axis_limits_follow_the_model(rig):
    spec = quiet(rig.cameras["left"])
    clock = FakeClock()
    cam = SimulatedPtzCamera(spec, rig.scene, clock=clock)
    cam.move_absolute(10.0, -10.0, 99999.0)
    settle(cam, clock)
    fb = cam.feedback()
    lim = spec.model.limits
    assert fb.pan == pytest.approx(lim.pan_max, abs=spec.mechanics.pan.encoder_step)
    assert fb.tilt == pytest.approx(lim.tilt_min, abs=spec.mechanics.tilt.encoder_step)
    assert fb.zoom_raw == spec.model.zoom_mapping.raw_max
