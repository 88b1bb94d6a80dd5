"""A PTZ camera's whole model: kinematics, intrinsics over zoom, zoom mapping and joint limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..corrections.layers import CorrectionLayers
from .intrinsics import ZoomIntrinsics, ZoomMapping
from .kinematics import PtzKinematics, Transform


class FeedbackError(ValueError):
    """Pan/tilt/zoom feedback that must not be turned into geometry (NaN, out of range)."""


@dataclass(frozen=True)
class JointLimits:
    """Mechanical range of the head (rad)."""

    pan_min: float = -np.pi
    pan_max: float = np.pi
    tilt_min: float = -np.pi / 2
    tilt_max: float = np.pi / 2

    def __post_init__(self) -> None:
        values = (self.pan_min, self.pan_max, self.tilt_min, self.tilt_max)
        if not np.all(np.isfinite(values)) or self.pan_min > self.pan_max or self.tilt_min > self.tilt_max:
            raise ValueError(f"joint limits must be finite with min <= max, got {values}")

    def clamp(self, pan: float, tilt: float) -> tuple[float, float]:
        """(pan, tilt) clamped into the range."""
        return (float(np.clip(pan, self.pan_min, self.pan_max)), float(np.clip(tilt, self.tilt_min, self.tilt_max)))


def distort_xy(x: NDArray[np.float64], y: NDArray[np.float64], dist: ArrayLike) -> tuple[NDArray, NDArray]:
    """Apply plumb_bob distortion (k1, k2, p1, p2, k3) to normalized coordinates ``x``, ``y``."""
    k1, k2, p1, p2, k3 = np.asarray(dist, dtype=float).reshape(5)
    r2 = x * x + y * y
    radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
    xd = x * radial + 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x)
    yd = y * radial + p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y
    return xd, yd


def distort_normalized(xy: NDArray[np.float64], dist: ArrayLike) -> NDArray[np.float64]:
    """Apply plumb_bob distortion (k1, k2, p1, p2, k3) to normalized image points (..., 2)."""
    return np.stack(distort_xy(xy[..., 0], xy[..., 1], dist), axis=-1)


@dataclass(frozen=True)
class PtzCameraModel:
    """Everything needed to turn (pan, tilt, raw zoom) feedback into pose and intrinsics."""

    camera_name: str
    image_width: int
    image_height: int
    intrinsics: ZoomIntrinsics
    kinematics: PtzKinematics = field(default_factory=PtzKinematics)
    zoom_mapping: ZoomMapping = field(default_factory=ZoomMapping.fixed)
    limits: JointLimits = field(default_factory=JointLimits)
    metadata: dict[str, Any] = field(default_factory=dict)
    corrections: CorrectionLayers = field(default_factory=CorrectionLayers)  # see ptz_calibration.corrections

    def pose(self, pan: ArrayLike, tilt: ArrayLike, zoom: ArrayLike = 0.0) -> Transform:
        """Camera-to-home pose (R, T) at (pan, tilt, raw zoom); see :class:`PtzKinematics`."""
        return self.kinematics.pose(pan, tilt, zoom)

    def camera_matrix(self, zoom: ArrayLike) -> NDArray[np.float64]:
        """K at the raw zoom value(s)."""
        return self.intrinsics.camera_matrix(zoom)

    def distortion(self, zoom: ArrayLike) -> NDArray[np.float64]:
        """plumb_bob (k1, k2, p1, p2, k3) at the raw zoom value(s)."""
        return self.intrinsics.distortion(zoom)

    def projection_matrix(self, zoom: ArrayLike) -> NDArray[np.float64]:
        """P = [K | 0] of a monocular camera (as in sensor_msgs/CameraInfo)."""
        k = self.camera_matrix(zoom)
        return np.concatenate([k, np.zeros(k.shape[:-1] + (1,))], axis=-1)

    def project(self, points_home: ArrayLike, pan: float, tilt: float, zoom: float) -> NDArray[np.float64]:
        """Distorted pixel coordinates (M, 2) of points (M, 3) given in the home optical frame.

        Points behind the camera give NaN.
        """
        x_h = np.asarray(points_home, dtype=float).reshape(-1, 3)
        r, t = self.pose(pan, tilt, zoom)
        x_c = (x_h - t) @ r  # R^T (x - T) for each row
        with np.errstate(divide="ignore", invalid="ignore"):
            xy = x_c[:, :2] / x_c[:, 2:3]
        xy[x_c[:, 2] <= 0] = np.nan
        xyd = distort_normalized(xy, self.distortion(zoom))
        k = self.camera_matrix(zoom)
        return np.stack([k[0, 0] * xyd[:, 0] + k[0, 2], k[1, 1] * xyd[:, 1] + k[1, 2]], axis=-1)

    def validate_feedback(self, pan: float, tilt: float, zoom: float, angle_margin: float = np.radians(2.0)) -> None:
        """Raise :class:`FeedbackError` if the feedback is not finite or outside the head's range.

        ``angle_margin`` tolerates overshoot and encoder noise at the ends of travel.
        """
        values = {"pan": pan, "tilt": tilt, "zoom": zoom}
        bad = [name for name, v in values.items() if not np.isfinite(v)]
        if bad:
            raise FeedbackError(f"{self.camera_name}: non-finite feedback for {', '.join(bad)}: {values}")
        lim = self.limits
        if not lim.pan_min - angle_margin <= pan <= lim.pan_max + angle_margin:
            raise FeedbackError(f"{self.camera_name}: pan {pan:.6f} rad outside [{lim.pan_min:.6f}, {lim.pan_max:.6f}]")
        if not lim.tilt_min - angle_margin <= tilt <= lim.tilt_max + angle_margin:
            raise FeedbackError(f"{self.camera_name}: tilt {tilt:.6f} rad outside [{lim.tilt_min:.6f}, {lim.tilt_max:.6f}]")
        if not self.zoom_mapping.contains(zoom):
            zm = self.zoom_mapping
            raise FeedbackError(f"{self.camera_name}: zoom {zoom} outside [{zm.raw_min}, {zm.raw_max}]")
