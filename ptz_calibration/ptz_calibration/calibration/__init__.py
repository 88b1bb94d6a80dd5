"""Calibration of one camera (pure Python: no rclpy): target descriptions."""

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
    "CharucoTarget", "Checkerboard", "Target", "TargetSpecError", "describe_target", "parse_target",
    "target_from_dict", "target_to_dict",
]
