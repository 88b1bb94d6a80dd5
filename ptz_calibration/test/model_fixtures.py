"""Shared model instances for the pure-model tests (no rclpy)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy.spatial.transform import Rotation

from ptz_calibration.model import (
    AxisOrder,
    JointLimits,
    PiecewiseLinearCurve,
    PolynomialCurve,
    PtzCameraModel,
    PtzKinematics,
    TwoTermExponentialCurve,
    ZoomIntrinsics,
    ZoomMapping,
    axis_angle_matrix,
    curve_from_dict,
)
from ptz_calibration.model.rig_uncertainty import RigUncertainty, ZoomStd

RAW_MAX = 16384.0


def tilted(axis, deg_x: float, deg_z: float) -> np.ndarray:
    """``axis`` rotated by small angles about x then z (to make non-ideal axes)."""
    r = axis_angle_matrix([0, 0, 1], np.radians(deg_z)) @ axis_angle_matrix([1, 0, 0], np.radians(deg_x))
    return r @ np.asarray(axis, float)


def general_kinematics(order: AxisOrder = AxisOrder.PAN_TILT) -> PtzKinematics:
    """Non-perpendicular axes (~0.4 deg), optical centre tens of mm off both axes, zoom translation."""
    return PtzKinematics(
        pan_axis=tilted([0, -1, 0], 0.3, 0.2),
        tilt_axis=tilted([1, 0, 0], 0.0, 0.4) + np.array([0, 0.004, 0.002]),
        pan_radius=np.array([0.012, -0.030, 0.045]),
        tilt_radius=np.array([0.003, 0.021, 0.038]),
        order=order,
        zoom_translation=PolynomialCurve([0.0, 0.025, 0.012], (0.0, RAW_MAX)),
    )


def general_model(order: AxisOrder = AxisOrder.PAN_TILT) -> PtzCameraModel:
    """A 20x-like camera model with every non-ideal feature switched on."""
    raw = np.linspace(0, RAW_MAX, 17)
    focal = 1100.0 * np.exp(np.log(20.0) * (raw / RAW_MAX) ** 1.6)
    intr = ZoomIntrinsics(
        fx=PiecewiseLinearCurve(raw, focal),
        fy=PiecewiseLinearCurve(raw, focal * 1.002),
        cx=PolynomialCurve([641.5, 3.0, -1.2], (0, RAW_MAX)),
        cy=PolynomialCurve([358.0, -2.0, 0.5], (0, RAW_MAX)),
        k1=TwoTermExponentialCurve(-0.27, -4.0, 0.02, 0.5, (0, RAW_MAX)),
        k2=PolynomialCurve([0.08, -0.1, 0.03], (0, RAW_MAX)),
        p1=PolynomialCurve([0.0004], (0, RAW_MAX)),
        p2=PolynomialCurve([-0.0002], (0, RAW_MAX)),
    )
    return PtzCameraModel(
        camera_name="test_cam",
        image_width=1280,
        image_height=720,
        intrinsics=intr,
        kinematics=general_kinematics(order),
        zoom_mapping=ZoomMapping.from_focal_lengths(raw, focal),
        limits=JointLimits(np.radians(-170), np.radians(170), np.radians(-30), np.radians(90)),
    )


def perturbed_extrinsics(rig, uncertainty, left, right, rng):
    """One draw of the TRUE left -> right extrinsics of ``rig`` at settings ``left``, ``right``
    (pan, tilt, zoom) when its parts are off as ``uncertainty`` says (rig_uncertainty's model), made
    by perturbing the rig itself: home transform, reported angles, each camera's zoom translation."""
    d = rng.multivariate_normal(np.zeros(6), uncertainty.home_cov)
    home_r = rig.home_R @ Rotation.from_rotvec(d[:3]).as_matrix()
    models = []
    for model, std, q in ((rig.left, uncertainty.left_zoom_translation, left),
                          (rig.right, uncertainty.right_zoom_translation, right)):
        curve = model.kinematics.zoom_translation.to_dict()
        shift = rng.normal(0.0, std(float(q[2])))
        if curve["type"] == "constant":
            curve["value"] = curve["value"] + shift
        elif curve["type"] == "piecewise_linear":
            curve["y"] = [v + shift for v in curve["y"]]
        else:
            raise ValueError(f"shift a {curve['type']} curve: not written")
        kin = dataclasses.replace(model.kinematics, zoom_translation=curve_from_dict(curve))
        models.append(dataclasses.replace(model, kinematics=kin))
    truth = dataclasses.replace(rig, left=models[0], right=models[1], home_R=home_r, home_t=rig.home_t + d[3:],
                                uncertainty=None)
    lq, rq = np.array(left, float), np.array(right, float)
    lq[:2] += rng.normal(0.0, uncertainty.pointing_sigma, 2)
    rq[:2] += rng.normal(0.0, uncertainty.pointing_sigma, 2)
    return truth.extrinsics(lq, rq)


def example_uncertainty() -> RigUncertainty:
    """Of the size a calibration reports (0.01 deg, 0.6 mm at home; 0.03 deg pointing; zoom
    translation std growing to 2 mm at 20x), with a correlation in the home part."""
    sig = np.array([2e-4, 1.8e-4, 2.2e-4, 6e-4, 6.5e-4, 6e-4])
    corr = np.eye(6)
    corr[1, 3] = corr[3, 1] = -0.4
    return RigUncertainty(corr * np.outer(sig, sig), math.radians(0.03), ZoomStd((0.0, 8000.0, 16384.0), (0.0, 5e-4, 2e-3)),
                          ZoomStd((0.0, 16384.0), (0.0, 1.5e-3)))
