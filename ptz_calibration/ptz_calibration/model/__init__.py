"""The PTZ camera model (pure Python: no rclpy, no message types)."""

from .camera_model import FeedbackError, JointLimits, PtzCameraModel, distort_normalized, distort_xy
from .curves import (
    ConstantCurve,
    CurveError,
    PiecewiseLinearCurve,
    PolynomialCurve,
    TwoTermExponentialCurve,
    ZoomCurve,
    curve_from_dict,
    fit_curve,
)
from .intrinsics import DISTORTION_NAMES, ZoomIntrinsics, ZoomMapping
from .kinematics import AxisOrder, Joint, PtzKinematics
from .model_io import (
    ModelFileError,
    camera_info_dict,
    load_model,
    model_from_dict,
    model_to_dict,
    read_camera_info,
    save_model,
    write_camera_info,
)
from .rotations import (
    BODY_FROM_OPTICAL,
    OPTICAL_FROM_BODY,
    axis_angle_matrix,
    compose,
    invert,
    matrix_to_quaternion,
    quaternion_to_matrix,
    rotation_angle,
    matrix_to_rpy,
    rpy_matrix,
)

import types as _types

__all__ = [n for n, v in dict(globals()).items() if not n.startswith("_") and not isinstance(v, _types.ModuleType)]
