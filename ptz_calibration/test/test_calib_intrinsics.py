"""Zhang calibration on exact projections of the simulator's camera: recovery, standard deviations,
ill-conditioning at long focal lengths, bad input, flags, camera_info output."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from calib_fixtures import BOARD, SIZE, synthetic_detections, true_camera
from ptz_calibration.calibration import (
    CalibrationError,
    CalibrationOptions,
    Detection,
    NotFound,
    NotFoundReason,
    calibrate_intrinsics,
    flag_names,
    parse_flags,
)
from ptz_calibration.calibration.conditioning import TERMS, effect_std
from ptz_calibration.model import read_camera_info, write_camera_info


def test_exact_points_give_the_exact_camera():
    dets, K, D = synthetic_detections(zoom=0.0, n=8, noise_px=0.0)
    c = calibrate_intrinsics(dets)
    assert c.rms < 1e-4  # OpenCV takes float32 points: 1280 px to ~4e-5 px
    np.testing.assert_allclose(c.camera_matrix, K, rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(c.distortion, D, atol=1e-4)
    assert c.image_size == SIZE and len(c.rvecs) == 8 and c.point_counts == (70,) * 8
    assert c.sources == tuple(f"view{k}" for k in range(8))


def test_noisy_points_within_their_standard_deviations():
    """0.2 px corner noise, 12 views: every error within 4.5 std, and the std is right (Monte Carlo)."""
    K, D = true_camera(0.0)
    errors, stds = [], []
    for seed in range(12):
        dets, _, _ = synthetic_detections(zoom=0.0, n=12, noise_px=0.2, seed=seed, fill=0.7, max_tilt=0.7)
        c = calibrate_intrinsics(dets, CalibrationOptions(flags=cv2.CALIB_FIX_K3))
        s = c.std_intrinsics
        errors.append([c.fx - K[0, 0], c.fy - K[1, 1], c.cx - K[0, 2], c.cy - K[1, 2],
                       c.distortion[0] - D[0], c.distortion[1] - D[1]])
        stds.append([s["fx"], s["fy"], s["cx"], s["cy"], s["k1"], s["k2"]])
        assert 0.2 < c.rms < 0.35  # sqrt(2) x 0.2 px, less the fitted degrees of freedom
    e, s = np.array(errors), np.array(stds)
    assert np.all(np.abs(e) < 4.5 * s)
    ratio = e.std(axis=0) / s.mean(axis=0)  # empirical spread / predicted std
    assert np.all((ratio > 0.5) & (ratio < 1.6)), ratio


def test_our_standard_deviations_equal_opencvs_when_well_conditioned():
    dets, _, _ = synthetic_detections(zoom=0.0, n=10, noise_px=0.2, seed=1)
    for flags in (0, cv2.CALIB_FIX_K3 | cv2.CALIB_ZERO_TANGENT_DIST):
        c = calibrate_intrinsics(dets, CalibrationOptions(flags=flags))
        for name in ("fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2", "k3"):
            np.testing.assert_allclose(c.std_intrinsics[name], c.std_intrinsics_opencv[name], rtol=1e-3)
        np.testing.assert_allclose(c.std_extrinsics, c.std_extrinsics_opencv, rtol=1e-3)
    c = calibrate_intrinsics(dets, CalibrationOptions(flags=cv2.CALIB_FIX_ASPECT_RATIO))
    # OpenCV puts the shared focal length's std on fy (0 on fx); both are given here
    assert c.std_intrinsics_opencv["fx"] == 0.0
    np.testing.assert_allclose(c.std_intrinsics["fy"], c.std_intrinsics_opencv["fy"], rtol=1e-3)
    np.testing.assert_allclose(c.std_intrinsics["fx"] * c.fy / c.fx, c.std_intrinsics["fy"])


def test_long_focal_length_ill_conditioning_is_found_and_fixed():
    """At 20x (fx = 22040 px, 3.3 deg field) k3, the tangential terms, k2 and the principal point
    are not determined by a single-zoom calibration. OpenCV's pseudo-inverse reports tiny (or NaN)
    deviations for exactly those; ours are huge, and auto_fix fixes them."""
    dets, K, D = synthetic_detections(zoom=16384.0, n=12, noise_px=0.2, seed=0, fill=0.7, max_tilt=0.7)
    free = calibrate_intrinsics(dets)
    assert not free.std_intrinsics_opencv["k3"] > 1.0  # < 0.1 or NaN, depending on the noise
    assert free.std_intrinsics["k3"] > 1e3
    assert free.std_intrinsics["cx"] > 10.0  # the principal point is not determined
    fixed = calibrate_intrinsics(dets, CalibrationOptions(auto_fix=True))
    assert {"k3", "tangential", "k2", "principal_point"} <= set(fixed.fixed)
    assert fixed.flags & cv2.CALIB_FIX_K3 and fixed.flags & cv2.CALIB_ZERO_TANGENT_DIST
    assert fixed.flags & cv2.CALIB_FIX_K2 and fixed.flags & cv2.CALIB_FIX_PRINCIPAL_POINT
    assert np.all(fixed.distortion[1:] == 0.0)
    assert fixed.cx == (SIZE[0] - 1) / 2 and fixed.cy == (SIZE[1] - 1) / 2
    assert "fixed at (639.5, 359.5), the image centre" in fixed.fixed["principal_point"]
    assert "k3 fixed at 0: not determined by these views (std of its effect at the image corner" in fixed.fixed["k3"]
    # the true principal point is 4.3 px from the image centre; fx is limited by the weak
    # perspective of a 3 deg view: std ~1 % (the PTZ model pins it down with rotations)
    assert abs(fixed.cx - K[0, 2]) < 5 and abs(fixed.cy - K[1, 2]) < 5
    assert abs(fixed.fx / K[0, 0] - 1) < 4 * fixed.std_intrinsics["fx"] / K[0, 0]
    assert fixed.rms < 0.35


def test_wide_zoom_auto_fix_keeps_the_real_distortion():
    dets, K, D = synthetic_detections(zoom=0.0, n=12, noise_px=0.2, seed=2, fill=0.7, max_tilt=0.7)
    c = calibrate_intrinsics(dets, CalibrationOptions(auto_fix=True))
    assert set(c.fixed) <= {"k3"}  # k1 = -0.24 and k2 = 0.06 are kept
    assert abs(c.distortion[0] - D[0]) < 0.01 and abs(c.distortion[1] - D[1]) < 0.05


def test_effect_std_scales_with_the_corner_radius():
    K, _ = true_camera(0.0)
    std = {"k1": 0.01, "k2": 0.01, "k3": 0.01, "p1": 1e-4, "p2": 1e-4, "cx": 3.0, "cy": 4.0}
    by_name = {t.name: effect_std(t, std, K, SIZE) for t in TERMS}
    assert by_name["principal_point"] == pytest.approx(5.0)
    # farthest image corner from the principal point (641.8, 358.6): the pixel edge (-0.5, 719.5)
    r = np.hypot((641.8 + 0.5) / K[0, 0], (719.5 - 358.6) / K[1, 1])
    f = (K[0, 0] + K[1, 1]) / 2
    assert by_name["k1"] == pytest.approx(f * r**3 * 0.01, rel=1e-9)
    assert by_name["k3"] == pytest.approx(f * r**7 * 0.01, rel=1e-9)


def test_fronto_parallel_views_are_warned_about():
    dets, _, _ = synthetic_detections(zoom=0.0, n=6, noise_px=0.1, seed=4, max_tilt=0.08)
    c = calibrate_intrinsics(dets, CalibrationOptions(flags=cv2.CALIB_FIX_K3))
    assert any("fronto-parallel" in w for w in c.warnings), c.warnings
    assert c.view_tilts_deg().max() < 15


def test_outlier_view_is_warned_about():
    dets, _, _ = synthetic_detections(zoom=0.0, n=8, noise_px=0.1, seed=5)
    bad = dets[3]
    dets[3] = Detection(bad.image_points + np.random.default_rng(0).normal(0, 2.0, bad.image_points.shape),
                        bad.object_points, bad.ids, bad.image_size, bad.total, "bad.png")
    c = calibrate_intrinsics(dets)
    assert any(w.startswith("view bad.png: reprojection RMS") for w in c.warnings), c.warnings


def test_too_few_views_names_what_was_dropped():
    dets, _, _ = synthetic_detections(zoom=0.0, n=2, noise_px=0.1)
    missing = NotFound(NotFoundReason.UNREADABLE, "file not found", None, "a.png")
    empty = NotFound(NotFoundReason.NO_TARGET, "no 10x7 checkerboard found", SIZE, "b.png")
    with pytest.raises(CalibrationError) as info:
        calibrate_intrinsics(dets + [missing, empty])
    msg = str(info.value)
    assert msg.startswith("2 usable views of 4, at least 3 needed; dropped:")
    assert "a.png: file not found" in msg and "b.png: no 10x7 checkerboard found" in msg
    with pytest.raises(CalibrationError, match="^0 usable views of 0"):
        calibrate_intrinsics([])
    assert calibrate_intrinsics(dets, CalibrationOptions(min_views=2, flags=cv2.CALIB_FIX_K3)).rms < 0.2


def test_inconsistent_views_are_rejected():
    dets, _, _ = synthetic_detections(zoom=0.0, n=4, noise_px=0.1)
    d = dets[1]
    dets[1] = Detection(d.image_points, d.object_points, d.ids, (640, 480), d.total, "small.png")
    with pytest.raises(CalibrationError, match="views differ in image size: expected 1280x720, got small.png 640x480"):
        calibrate_intrinsics(dets)
    three = Detection.from_points(d.image_points[:3], d.object_points[:3], SIZE, "three.png")
    with pytest.raises(CalibrationError, match="at least 4 points: three.png has 3"):
        calibrate_intrinsics([dets[0], dets[2], dets[3], three])


def test_options_are_checked():
    with pytest.raises(ValueError, match="USE_INTRINSIC_GUESS needs an initial camera_matrix"):
        CalibrationOptions(flags=cv2.CALIB_USE_INTRINSIC_GUESS)
    with pytest.raises(ValueError, match="camera_matrix must be 3x3"):
        CalibrationOptions(camera_matrix=np.eye(2))
    with pytest.raises(ValueError, match="min_views"):
        CalibrationOptions(min_views=0)


def test_intrinsic_guess_and_fixed_principal_point():
    dets, K, D = synthetic_detections(zoom=8192.0, n=10, noise_px=0.2, seed=1)
    guess = K.copy()
    guess[0, 0] *= 1.1
    c = calibrate_intrinsics(dets, CalibrationOptions(
        flags=parse_flags("USE_INTRINSIC_GUESS,FIX_PRINCIPAL_POINT,FIX_K3"), camera_matrix=guess))
    assert (c.cx, c.cy) == (K[0, 2], K[1, 2])
    assert abs(c.fx / K[0, 0] - 1) < 0.01
    assert c.std_intrinsics["cx"] == 0.0 and c.std_intrinsics["k3"] == 0.0


def test_rational_model_has_eight_coefficients():
    dets, _, _ = synthetic_detections(zoom=0.0, n=8, noise_px=0.0)
    c = calibrate_intrinsics(dets, CalibrationOptions(flags=cv2.CALIB_RATIONAL_MODEL))
    assert len(c.distortion) == 8 and c.distortion_model == "rational_polynomial"
    assert c.camera_info()["distortion_coefficients"]["cols"] == 8
    assert list(c.to_dict()["distortion"]) == ["k1", "k2", "p1", "p2", "k3", "k4", "k5", "k6"]


def test_flags_by_name():
    assert parse_flags("FIX_ASPECT_RATIO") == cv2.CALIB_FIX_ASPECT_RATIO
    assert parse_flags("calib_fix_k3, zero_tangent_dist|CALIB_FIX_K4") == \
        cv2.CALIB_FIX_K3 | cv2.CALIB_ZERO_TANGENT_DIST | cv2.CALIB_FIX_K4
    assert parse_flags("14464") == 14464 == parse_flags(14464)  # calib1.dat's FIX_K3..K6
    assert flag_names(14464) == ["FIX_K3", "FIX_K4", "FIX_K5", "FIX_K6"]
    assert parse_flags(["FIX_K1", "FIX_K2"]) == cv2.CALIB_FIX_K1 | cv2.CALIB_FIX_K2
    assert parse_flags("") == 0 == parse_flags(None)
    with pytest.raises(ValueError, match="unknown calibration flag 'FIX_K7'"):
        parse_flags("FIX_K7")
    with pytest.raises(ValueError, match="not calibrateCamera flags"):
        parse_flags(1 << 40)


def test_camera_info_round_trip_and_json(tmp_path):
    dets, K, D = synthetic_detections(zoom=0.0, n=6, noise_px=0.0)
    c = calibrate_intrinsics(dets)
    path = write_camera_info(tmp_path / "cam.yaml", c.camera_info("left"))
    info = read_camera_info(path)
    assert info["camera_name"] == "left" and (info["image_width"], info["image_height"]) == SIZE
    assert info["distortion_model"] == "plumb_bob"
    np.testing.assert_allclose(info["camera_matrix"], c.camera_matrix)
    np.testing.assert_allclose(info["distortion_coefficients"].ravel(), c.distortion)
    np.testing.assert_allclose(info["projection_matrix"][:, :3], c.camera_matrix)
    data = json.loads(json.dumps(c.to_dict(), allow_nan=False))
    assert data["fx"] == c.fx and data["distortion"]["k1"] == c.distortion[0]
    assert len(data["views"]) == 6 and data["views"][0]["points"] == len(BOARD.object_points())
    assert data["flags"] == [] and data["fixed"] == {}


def test_undetermined_std_is_null_in_json():
    dets, _, _ = synthetic_detections(zoom=16384.0, n=6, noise_px=0.2)
    c = calibrate_intrinsics(dets, CalibrationOptions(flags=cv2.CALIB_RATIONAL_MODEL))
    text = json.dumps(c.to_dict(), allow_nan=False)  # inf/NaN never reach JSON
    assert json.loads(text)["std"].keys() >= {"fx", "k6"}
