"""Zoom curves, intrinsics over zoom, the zoom mapping and projection."""

import numpy as np
import pytest

from model_fixtures import RAW_MAX, general_model
from ptz_calibration.model import (
    ConstantCurve,
    CurveError,
    PiecewiseLinearCurve,
    PolynomialCurve,
    TwoTermExponentialCurve,
    ZoomIntrinsics,
    ZoomMapping,
    curve_from_dict,
    fit_curve,
)

ZOOMS = np.linspace(0, RAW_MAX, 21)


def test_polynomial_fit_recovers_the_generating_polynomial():
    truth = PolynomialCurve([1100.0, 2500.0, 9000.0, 4000.0], (0, RAW_MAX))
    fitted = fit_curve("polynomial", ZOOMS, truth(ZOOMS), degree=3, domain=(0, RAW_MAX))
    np.testing.assert_allclose(fitted.coefficients, truth.coefficients, rtol=1e-9)
    with pytest.raises(ValueError, match="distinct zooms"):
        fit_curve("polynomial", [0, 1, 2], [1, 2, 3], degree=3)


def test_exp2_fit_recovers_a_focal_length_curve():
    truth = TwoTermExponentialCurve(1050.0, 2.6, 50.0, -3.0, (0, RAW_MAX))
    rng = np.random.default_rng(3)
    noisy = truth(ZOOMS) * (1 + rng.normal(0, 1e-4, ZOOMS.size))
    fitted = fit_curve("exp2", ZOOMS, noisy, domain=(0, RAW_MAX))
    dense = np.linspace(0, RAW_MAX, 200)
    rel = np.abs(fitted(dense) / truth(dense) - 1)
    assert rel.max() < 5e-4


def test_piecewise_linear_interpolates_averages_and_clamps():
    curve = fit_curve("piecewise_linear", [0, 10, 10, 20], [1.0, 2.0, 4.0, 5.0])
    assert curve(10) == pytest.approx(3.0)
    assert curve(5) == pytest.approx(2.0)
    assert curve(-5) == pytest.approx(1.0) and curve(99) == pytest.approx(5.0)
    assert isinstance(curve(3), float) and curve(np.array([1.0, 2.0])).shape == (2,)


@pytest.mark.parametrize("curve", [
    ConstantCurve(2.5),
    PiecewiseLinearCurve([0, 5, 16384], [1, 3, 20]),
    PolynomialCurve([1, -2, 0.5], (0, 16384)),
    TwoTermExponentialCurve(1.0, 2.0, -0.5, -1.0, (100, 16000)),
])
def test_curve_dict_round_trip(curve):
    again = curve_from_dict(curve.to_dict())
    assert type(again) is type(curve)
    np.testing.assert_array_equal(again(ZOOMS), curve(ZOOMS))


@pytest.mark.parametrize("data,match", [
    ({"type": "spline"}, "'type' must be one of"),
    ({"type": "polynomial", "coefficients": [1]}, "missing 'domain'"),
    ({"type": "polynomial", "coefficients": [1], "domain": [5, 1]}, "domain"),
    ({"type": "piecewise_linear", "x": [0, 0], "y": [1, 2]}, "strictly increasing"),
    ({"type": "constant", "value": 1, "extra": 2}, "unknown keys"),
    ("fast", "expected a number"),
])
def test_invalid_curves_are_rejected_with_the_reason(data, match):
    with pytest.raises(CurveError, match=match):
        curve_from_dict(data)


def test_camera_matrix_and_distortion_follow_the_curves():
    model = general_model()
    intr = model.intrinsics
    k = model.camera_matrix(ZOOMS)
    d = model.distortion(ZOOMS)
    assert k.shape == (21, 3, 3) and d.shape == (21, 5)
    np.testing.assert_allclose(k[:, 0, 0], intr.fx(ZOOMS))
    np.testing.assert_allclose(k[:, 1, 1], intr.fy(ZOOMS))
    np.testing.assert_allclose(k[:, 0, 2], intr.cx(ZOOMS))
    np.testing.assert_allclose(k[:, 1, 2], intr.cy(ZOOMS))
    np.testing.assert_allclose(d[:, 0], intr.k1(ZOOMS))
    np.testing.assert_allclose(d[7], model.distortion(ZOOMS[7]))
    # 20x zoom: the focal length grows ~20 times, non-linearly in the raw value.
    assert k[-1, 0, 0] / k[0, 0, 0] == pytest.approx(20.0, rel=1e-9)
    assert intr.fx(RAW_MAX / 2) < (intr.fx(0) + intr.fx(RAW_MAX)) / 2 * 0.6
    const = ZoomIntrinsics.constant(500, 501, 320, 240, [-0.1, 0.01])
    np.testing.assert_allclose(const.distortion(123.0), [-0.1, 0.01, 0, 0, 0])


def test_zoom_mapping_round_trip_and_range():
    mapping = general_model().zoom_mapping
    assert mapping.magnification(0) == pytest.approx(1.0)
    assert mapping.magnification(RAW_MAX) == pytest.approx(20.0)
    mags = mapping.magnification(ZOOMS)
    np.testing.assert_allclose(mapping.raw(mags), ZOOMS, atol=RAW_MAX * 2e-4)
    assert mapping.contains(100.0) and not mapping.contains(RAW_MAX + 10) and not mapping.contains(np.nan)
    with pytest.raises(ValueError, match="increase"):
        ZoomMapping(0, 10, PolynomialCurve([2.0, -1.0], (0, 10)))


def test_projection_matches_opencv():
    cv2 = pytest.importorskip("cv2")
    model = general_model()
    rng = np.random.default_rng(11)
    for pan, tilt, zoom in [(0.2, 0.1, 0.0), (-1.0, 0.4, 6000.0), (2.0, -0.2, RAW_MAX)]:
        r, t = model.pose(pan, tilt, zoom)
        # Points in front of the camera, within its view.
        pts_cam = np.column_stack([rng.uniform(-0.1, 0.1, 50), rng.uniform(-0.05, 0.05, 50), rng.uniform(4, 9, 50)])
        pts_home = pts_cam @ r.T + t
        uv = model.project(pts_home, pan, tilt, zoom)
        ref, _ = cv2.projectPoints(pts_cam, np.zeros(3), np.zeros(3), model.camera_matrix(zoom), model.distortion(zoom))
        np.testing.assert_allclose(uv, ref.reshape(-1, 2), atol=1e-6)
    behind = model.project([[0, 0, -5.0]], 0, 0, 0)
    assert np.all(np.isnan(behind))
