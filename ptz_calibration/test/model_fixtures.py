"""Shared model instances for the pure-model tests (no rclpy)."""

from __future__ import annotations

import numpy as np

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
)

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
