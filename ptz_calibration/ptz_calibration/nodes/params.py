"""Parameters shared by the PTZ nodes: declaration with descriptors, and typed reading.

All of them can come from a params file (``/**: ros__parameters:`` form) given with
``--ros-args --params-file``. Frame ids left empty default from ``camera_name``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from rcl_interfaces.msg import FloatingPointRange, ParameterDescriptor
from rclpy.node import Node

from .frames import FrameNames


def declare(node: Node, name: str, default: Any, description: str, read_only: bool = True,
            dynamic: bool = False, **descriptor: Any) -> Any:
    """Declare one parameter with a descriptor and return its value."""
    desc = ParameterDescriptor(description=description, read_only=read_only, dynamic_typing=dynamic, **descriptor)
    return node.declare_parameter(name, default, desc).value


def positive(upper: float = 1e6) -> dict[str, Any]:
    """Descriptor keywords of a positive float range (rclpy enforces it on set)."""
    return {"floating_point_range": [FloatingPointRange(from_value=1e-6, to_value=upper, step=0.0)]}


def float_vector(value: Any, length: int, name: str) -> list[float]:
    """``value`` as ``length`` finite floats (integers accepted); ValueError naming ``name``."""
    try:
        out = [float(v) for v in value]
    except (TypeError, ValueError):
        raise ValueError(f"parameter {name}: expected {length} numbers, got {value!r}") from None
    if len(out) != length or not all(math.isfinite(v) for v in out):
        raise ValueError(f"parameter {name}: expected {length} finite numbers, got {value!r}")
    return out


@dataclass(frozen=True)
class CameraParams:
    """What every PTZ node needs to publish one camera's geometry."""

    camera_name: str
    calibration_url: str
    frames: FrameNames
    mount_xyz: Sequence[float]
    mount_rpy: Sequence[float]
    stale_timeout: float


def declare_camera_params(node: Node, default_camera: str = "camera", prefix: str = "",
                          camera_name: str | None = None) -> CameraParams:
    """Declare the camera, calibration, frame and mount parameters and read them.

    With ``prefix`` (e.g. ``"left."``, for nodes serving several cameras) every name gets it and
    ``camera_name`` is given instead of declared.
    """
    camera = camera_name or declare(node, "camera_name", default_camera,
                                    "camera name: default frame ids, joint names, ${NAME}")
    p = prefix
    url = declare(node, f"{p}calibration_url", "",
                  "model YAML: package://pkg/path, file:///abs/path, a path; ${ROS_HOME}, ${NAME}, ~ expanded; "
                  "empty = uncalibrated", read_only=False)
    parent = declare(node, f"{p}parent_frame", "base_link", "parent frame of the static mount transform")
    frame_prefix = declare(node, f"{p}frame_prefix", "", "prefix of the default frame ids (e.g. 'rig/')")
    defaults = FrameNames.for_camera(camera, parent, frame_prefix)
    frames = FrameNames(
        parent=parent,
        mount=declare(node, f"{p}mount_frame", "", "mount frame id (empty = {prefix}{camera}_mount)")
        or defaults.mount,
        pan_link=declare(node, f"{p}pan_frame", "", "pan link frame id (empty = {prefix}{camera}_pan_link)")
        or defaults.pan_link,
        tilt_link=declare(node, f"{p}tilt_frame", "", "tilt link frame id (empty = {prefix}{camera}_tilt_link)")
        or defaults.tilt_link,
        optical=declare(node, f"{p}optical_frame", "", "optical frame id (empty = {prefix}{camera}_optical_frame)")
        or defaults.optical,
    )
    xyz = float_vector(declare(node, f"{p}mount.xyz", [0.0, 0.0, 0.0], "mount position in parent_frame (m)",
                               dynamic=True), 3, f"{p}mount.xyz")
    rpy = float_vector(declare(node, f"{p}mount.rpy", [0.0, 0.0, 0.0],
                               "mount orientation in parent_frame, URDF roll pitch yaw (rad)", dynamic=True),
                       3, f"{p}mount.rpy")
    stale = declare(node, f"{p}stale_timeout", 0.5, "feedback older than this (s) is not published", **positive())
    return CameraParams(camera, url, frames, xyz, rpy, float(stale))
