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

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from numpy.typing import NDArray

from ..corrections import apply
from ..model import BODY_FROM_OPTICAL, AxisOrder, PtzCameraModel, matrix_to_quaternion, rpy_matrix

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


#: A link as TF wants it: (qx, qy, qz, qw) and (x, y, z).
QuatLink = tuple[tuple[float, float, float, float], tuple[float, float, float]]


class _JointTerms:
    """Constants of one revolute joint in body axes, for closed-form per-sample links.

    For a unit axis ``a`` and a radius ``m`` perpendicular to it (as the model stores them), the
    joint motion ``x -> Rot(a, q) (x + m) - m`` has ``t = (cos q - 1) m + sin q (a x m)``
    (Rodrigues with ``a . m = 0``) and the quaternion ``(sin(q/2) a, cos(q/2))``; in body axes
    ``a, m, a x m`` are simply rotated by B.
    """

    __slots__ = ("axis", "m", "axm")

    def __init__(self, axis: NDArray, radius: NDArray) -> None:
        self.axis = tuple(float(v) for v in _B @ axis)
        self.m = tuple(float(v) for v in _B @ radius)
        self.axm = tuple(float(v) for v in _B @ np.cross(axis, radius))

    def link(self, q: float) -> QuatLink:
        half = 0.5 * q
        s, w = math.sin(half), math.cos(half)
        if w < 0.0:  # the same rotation with w >= 0, as matrix_to_quaternion returns it
            s, w = -s, -w
        a, m, c = self.axis, self.m, self.axm
        cm1, sq = math.cos(q) - 1.0, math.sin(q)
        return ((s * a[0], s * a[1], s * a[2], w),
                (cm1 * m[0] + sq * c[0], cm1 * m[1] + sq * c[1], cm1 * m[2] + sq * c[2]))


class FastChain:
    """:func:`body_chain` as quaternions, in closed form with plain floats (the per-sample path).

    Equal to ``body_chain`` + ``matrix_to_quaternion`` to rounding (checked by the tests); the
    zoom translation is cached for an unchanged zoom value.
    """

    def __init__(self, model: PtzCameraModel) -> None:
        kin = model.kinematics
        pan = _JointTerms(kin.pan_joint.axis, kin.pan_joint.radius)
        tilt = _JointTerms(kin.tilt_joint.axis, kin.tilt_joint.radius)
        self._pan_first = kin.order is AxisOrder.PAN_TILT
        self._pan, self._tilt = pan, tilt
        self._zoom_curve = kin.zoom_translation
        self._optical_q = tuple(float(v) for v in matrix_to_quaternion(_B))
        self._optical_dir = tuple(float(v) for v in _B[:, 2])  # the optical axis in body axes
        self._zoom = math.nan
        self._optical: QuatLink = (self._optical_q, (0.0, 0.0, 0.0))

    def links(self, pan: float, tilt: float, zoom: float) -> tuple[QuatLink, QuatLink, QuatLink]:
        """The three links (quaternion, translation) in the order of the head."""
        if zoom != self._zoom:
            d = float(self._zoom_curve.evaluate(np.asarray(float(zoom))))
            v = self._optical_dir
            self._optical = (self._optical_q, (d * v[0], d * v[1], d * v[2]))
            self._zoom = zoom
        p, t = self._pan.link(pan), self._tilt.link(tilt)
        return (p, t, self._optical) if self._pan_first else (t, p, self._optical)


def _quat_mul(a: tuple[float, ...], b: tuple[float, ...]) -> tuple[float, float, float, float]:
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    q = (aw * bx + ax * bw + ay * bz - az * by, aw * by - ax * bz + ay * bw + az * bx,
         aw * bz + ax * by - ay * bx + az * bw, aw * bw - ax * bx - ay * by - az * bz)
    return q if q[3] >= 0.0 else (-q[0], -q[1], -q[2], -q[3])


class CorrectedChain:
    """:class:`FastChain` with the model's correction layers (:mod:`ptz_calibration.corrections`).

    ``links(pan, tilt, zoom, temperature)`` takes the *actual* joint angles (the pointing map is
    applied by the caller, which tracks the directions of motion) and adds the field rotation
    to the first link and the zoom-offset and temperature rotations to the optical link, so that
    the chain equals ``[B | 0] * corrected_pose(...)``. Without active layers it is FastChain.
    """

    def __init__(self, model: PtzCameraModel) -> None:
        self._fast = FastChain(model)
        self._model = model
        layers = apply.layers_of(model)
        self._optical_layers = layers.active("zoom_offset") is not None or layers.active("thermal") is not None
        field = layers.active("field")
        self._field = None
        if field is not None:
            rf = _B @ field.matrix @ _BT
            self._field = (tuple(float(v) for v in matrix_to_quaternion(rf)), rf)
        self._key = (math.nan, math.nan)
        self._optical_q: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)

    @property
    def active(self) -> bool:
        """True when any layer changes the chain."""
        return self._optical_layers or self._field is not None

    def links(self, pan: float, tilt: float, zoom: float, temperature: float = math.nan
              ) -> tuple[QuatLink, QuatLink, QuatLink]:
        first, second, optical = self._fast.links(pan, tilt, zoom)
        if self._field is not None:
            q, rf = self._field
            t = first[1]
            first = (_quat_mul(q, first[0]), tuple(float(v) for v in rf @ np.asarray(t)))
        if self._optical_layers:
            key = (zoom, temperature if math.isfinite(temperature) else None)
            if key != self._key:
                r = apply.optical_rotation(self._model, zoom, temperature)
                self._optical_q = tuple(float(v) for v in matrix_to_quaternion(r))
                self._key = key
            optical = (_quat_mul(optical[0], self._optical_q), optical[1])
        return first, second, optical


def mount_from_optical(model: PtzCameraModel, pan: float, tilt: float, zoom: float) -> tuple[NDArray, NDArray]:
    """The composed mount -> optical transform ``[B | 0] * model.pose`` (for checks and tools)."""
    r, t = model.pose(pan, tilt, zoom)
    return _B @ r, _B @ t
