"""Calibration URLs (as camera_info_manager resolves them) and the uncalibrated stand-in model.

URL forms: ``package://<pkg>/<path>`` (the package's share folder via ament_index),
``file:///abs/path``, a plain path; ``${ROS_HOME}`` (default ``~/.ros``), ``${NAME}`` (the
camera name) and a leading ``~`` are expanded. An empty URL means uncalibrated.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional

from ..model import (
    ConstantCurve,
    JointLimits,
    ModelFileError,
    PiecewiseLinearCurve,
    PtzCameraModel,
    PtzKinematics,
    ZoomIntrinsics,
    ZoomMapping,
    load_model,
)


def ros_home() -> str:
    """``$ROS_HOME``, default ``~/.ros``."""
    return os.environ.get("ROS_HOME") or os.path.join(os.path.expanduser("~"), ".ros")


def resolve_url(url: str, camera_name: str = "") -> Optional[Path]:
    """The file a calibration URL names, or None for an empty URL.

    Raises :class:`ModelFileError` (field ``calibration_url``) for an unsupported scheme or an
    unknown package.
    """
    url = url.strip()
    if not url:
        return None
    expanded = url.replace("${ROS_HOME}", ros_home()).replace("${NAME}", camera_name)
    if expanded.startswith("package://"):
        package, _, rest = expanded[len("package://"):].partition("/")
        if not package or not rest:
            raise ModelFileError(url, "calibration_url", "expected package://<package>/<path>")
        try:
            from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
        except ImportError:  # pragma: no cover - ament_index is part of every ROS install
            raise ModelFileError(url, "calibration_url", "ament_index_python is not available") from None
        try:
            share = get_package_share_directory(package)
        except (PackageNotFoundError, LookupError, ValueError):
            raise ModelFileError(url, "calibration_url", f"package {package!r} not found") from None
        return Path(share) / rest
    if expanded.startswith("file://"):
        expanded = expanded[len("file://"):]
    elif "://" in expanded:
        raise ModelFileError(url, "calibration_url",
                             "unsupported URL scheme (expected package://, file:// or a path)")
    return Path(os.path.expanduser(expanded))


def load_calibration(url: str, camera_name: str = "") -> Optional[PtzCameraModel]:
    """Load the model file ``url`` names; None for an empty URL; :class:`ModelFileError` otherwise."""
    path = resolve_url(url, camera_name)
    if path is None:
        return None
    return load_model(path)


def ideal_model(camera_name: str, width: int, height: int, limits: JointLimits,
                zoom_min: float = 0.0, zoom_max: float = 0.0) -> PtzCameraModel:
    """The stand-in for an uncalibrated camera: an ideal gimbal with the device's ranges.

    Its kinematics (pan axis up, tilt axis right, both through the optical centre, no zoom
    translation) give the nominal TF chain; its intrinsics are zero and must not be published
    (the CameraInfo of an uncalibrated camera has K = P = 0). Its magnification curve is a
    placeholder that only makes the zoom range checkable.
    """
    if zoom_max > zoom_min:
        mapping = ZoomMapping(zoom_min, zoom_max, PiecewiseLinearCurve([zoom_min, zoom_max], [1.0, 2.0]))
    else:
        mapping = ZoomMapping(zoom_min, zoom_min, ConstantCurve(1.0))
    return PtzCameraModel(
        camera_name=camera_name,
        image_width=int(width),
        image_height=int(height),
        intrinsics=ZoomIntrinsics.constant(0.0, 0.0, 0.0, 0.0),
        kinematics=PtzKinematics.ideal(),
        zoom_mapping=mapping,
        limits=limits,
        metadata={"uncalibrated": True},
    )


def start_calibration(url: str, camera_name: str, ideal: Callable[[], PtzCameraModel]
                      ) -> tuple[PtzCameraModel, bool, str]:
    """(model, calibrated, note) at start: the model ``url`` names, or ``ideal()`` with the reason.

    Never raises for a bad file: the node runs uncalibrated and the note (naming the file and
    field) goes to the log and the diagnostics.
    """
    if not url.strip():
        return ideal(), False, "no calibration_url: CameraInfo K = 0, TF from an ideal gimbal"
    try:
        model = load_calibration(url, camera_name)
    except ModelFileError as exc:
        return ideal(), False, f"calibration not loaded ({exc}); CameraInfo K = 0, TF from an ideal gimbal"
    return model, True, str(resolve_url(url, camera_name))


def reload_calibration(url: str, camera_name: str) -> tuple[Optional[PtzCameraModel], str]:
    """(model, note) for ``~/reload_calibration``; model None (keep the previous one) on any error."""
    if not url.strip():
        return None, "calibration_url is empty"
    try:
        model = load_calibration(url, camera_name)
    except ModelFileError as exc:
        return None, str(exc)
    return model, str(resolve_url(url, camera_name))
