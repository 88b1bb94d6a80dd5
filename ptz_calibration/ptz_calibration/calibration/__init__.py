"""Calibration of one camera (pure Python: no rclpy): target descriptions and target detection."""

from .detection import (
    Detection,
    DetectionOptions,
    DetectionResult,
    ImageReadError,
    NotFound,
    NotFoundReason,
    as_gray8,
    detect,
    detect_charuco,
    detect_checkerboard,
    detect_file,
    detect_files,
    read_image,
)
from .targets import (
    CharucoTarget,
    Checkerboard,
    Target,
    TargetSpecError,
    describe_target,
    parse_target,
    target_from_dict,
    target_to_dict,
)

__all__ = [
    "Detection", "DetectionOptions", "DetectionResult", "ImageReadError", "NotFound", "NotFoundReason",
    "as_gray8", "detect", "detect_charuco", "detect_checkerboard", "detect_file", "detect_files",
    "read_image",
    "CharucoTarget", "Checkerboard", "Target", "TargetSpecError", "describe_target", "parse_target",
    "target_from_dict", "target_to_dict",
]
