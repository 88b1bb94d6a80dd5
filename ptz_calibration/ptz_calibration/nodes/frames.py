"""TF frame names and the TF chain of a PTZ head in ROS (REP-103) axes. Pure numpy, no messages.

The model's chain is expressed in the home optical frame H (x right, y down, z forward). The
mount frame has REP-103 body axes (x forward, y left, z up) at the home optical centre:
``X_mount = B X_H`` with ``B = BODY_FROM_OPTICAL``. Each model link ``(R_i, t_i)`` becomes the
body-axes link ``(B R_i B^T, B t_i)``; the last link additionally turns body axes back into
optical axes, so that::

    mount_T_pan_link * pan_link_T_tilt_link * tilt_link_T_optical = [B | 0] * model.pose(...)

At pan = tilt = 0 (and the reference zoom) the pan and tilt link frames coincide with the mount
frame; the optical frame keeps the optical axes (x right, y down, z forward) as sensor_msgs
expects. For ``tilt_pan`` heads the first link is the tilt link.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from numpy.typing import NDArray

from ..model import BODY_FROM_OPTICAL, AxisOrder, PtzCameraModel, rpy_matrix

Link = tuple[str, str, NDArray[np.float64], NDArray[np.float64]]  # parent, child, R, t

_B = BODY_FROM_OPTICAL
_BT = BODY_FROM_OPTICAL.T.copy()


@dataclass(frozen=True)
class FrameNames:
    """The TF frame ids of one PTZ camera."""

    parent: str
    mount: str
    pan_link: str
    tilt_link: str
    optical: str

    @classmethod
    def for_camera(cls, camera_name: str, parent: str = "base_link", prefix: str = "") -> "FrameNames":
        """Default names: ``{prefix}{camera}_mount``, ``_pan_link``, ``_tilt_link``, ``_optical_frame``."""
        base = f"{prefix}{camera_name}"
        return cls(parent, f"{base}_mount", f"{base}_pan_link", f"{base}_tilt_link", f"{base}_optical_frame")

    def moving_order(self, order: AxisOrder) -> tuple[str, str, str, str]:
        """Frame ids of the moving chain, mount first, optical last, in the order of the head."""
        if AxisOrder(order) is AxisOrder.PAN_TILT:
            return (self.mount, self.pan_link, self.tilt_link, self.optical)
        return (self.mount, self.tilt_link, self.pan_link, self.optical)


def mount_transform(xyz: Sequence[float], rpy: Sequence[float]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(R, t) of the static parent -> mount transform from URDF-style xyz (m) and rpy (rad)."""
    xyz = np.asarray(xyz, dtype=float).reshape(3)
    rpy = np.asarray(rpy, dtype=float).reshape(3)
    if not (np.all(np.isfinite(xyz)) and np.all(np.isfinite(rpy))):
        raise ValueError(f"mount pose must be finite, got xyz={xyz.tolist()} rpy={rpy.tolist()}")
    return rpy_matrix(*rpy), xyz


def body_chain(model: PtzCameraModel, pan: float, tilt: float, zoom: float) -> list[tuple[NDArray, NDArray]]:
    """The three moving links (R, t), parent-to-child, in TF (body) axes; last one ends in optical axes."""
    (_, r1, t1), (_, r2, t2), (_, r3, t3) = model.kinematics.chain(pan, tilt, zoom)
    return [
        (_B @ r1 @ _BT, _B @ t1),
        (_B @ r2 @ _BT, _B @ t2),
        (_B @ r3, _B @ t3),
    ]


def mount_from_optical(model: PtzCameraModel, pan: float, tilt: float, zoom: float) -> tuple[NDArray, NDArray]:
    """The composed mount -> optical transform ``[B | 0] * model.pose`` (for checks and tools)."""
    r, t = model.pose(pan, tilt, zoom)
    return _B @ r, _B @ t
