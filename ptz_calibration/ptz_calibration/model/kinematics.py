"""Kinematics of a general PTZ head (Mao et al. 2022), as a product of exponentials.

Geometry is expressed in the *home optical frame* H (the camera's optical frame at pan = tilt = 0
and the reference zoom). A joint rotates about the line with unit direction ``axis`` through the
point ``-radius``; ``radius`` (the rotation radius vector, perpendicular to the axis) points from
the axis to the optical centre at home. The motion of a joint by ``q`` is
``x -> Rot(axis, q) (x + radius) - radius``.

With order ``pan_tilt`` (tilt carried by pan, the usual PTZ) the camera-to-home pose is
``J_pan(pan) * J_tilt(tilt) * Z(zoom)``; with ``tilt_pan`` it is ``J_tilt(tilt) * J_pan(pan) * Z(zoom)``.
``Z`` moves the optical centre by ``zoom_translation(zoom)`` metres along the optical axis.
The ideal PTZ (axes through the optical centre, perpendicular) and the model of Sanchez-Riera et
al. 2009 (a rotation centre on the optical axis) are special cases.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .curves import ConstantCurve, ZoomCurve
from .rotations import skew, unit

#: Pan axis (up) and tilt axis (right) of an ideal camera, in the home optical frame.
IDEAL_PAN_AXIS = np.array([0.0, -1.0, 0.0])
IDEAL_TILT_AXIS = np.array([1.0, 0.0, 0.0])

Transform = tuple[NDArray[np.float64], NDArray[np.float64]]


class AxisOrder(str, Enum):
    """Which axis carries the other."""

    PAN_TILT = "pan_tilt"  # the tilt axis is driven by the pan axis (the "slave" is tilt)
    TILT_PAN = "tilt_pan"  # the pan axis is driven by the tilt axis


@dataclass(frozen=True)
class Joint:
    """A revolute joint: a unit axis direction and the radius vector from the axis to the optical centre."""

    name: str
    axis: NDArray[np.float64]
    radius: NDArray[np.float64]

    def __post_init__(self) -> None:
        a = unit(self.axis, f"{self.name} axis")
        m = np.asarray(self.radius, dtype=float).reshape(3)
        if not np.all(np.isfinite(m)):
            raise ValueError(f"{self.name} radius must be finite, got {m.tolist()}")
        # Only the component perpendicular to the axis defines the axis line.
        object.__setattr__(self, "axis", a)
        object.__setattr__(self, "radius", m - np.dot(m, a) * a)
        k = skew(a)
        object.__setattr__(self, "_k", k)
        object.__setattr__(self, "_k2", k @ k)

    def transform(self, angle: ArrayLike) -> Transform:
        """Rigid motion (R, t), x -> R x + t, of this joint turned by ``angle`` (batched)."""
        if np.ndim(angle) == 0:  # fast path for the per-sample TF publisher
            q = float(angle)
            r = np.eye(3) + math.sin(q) * self._k + (1.0 - math.cos(q)) * self._k2
        else:
            q = np.asarray(angle, dtype=float)
            r = np.eye(3) + np.sin(q)[..., None, None] * self._k + (1.0 - np.cos(q))[..., None, None] * self._k2
        t = r @ self.radius - self.radius
        return r, t


@dataclass(frozen=True)
class PtzKinematics:
    """Pan and tilt joints, their order, and the zoom translation of the optical centre."""

    pan_axis: NDArray[np.float64] = field(default_factory=lambda: IDEAL_PAN_AXIS.copy())
    tilt_axis: NDArray[np.float64] = field(default_factory=lambda: IDEAL_TILT_AXIS.copy())
    pan_radius: NDArray[np.float64] = field(default_factory=lambda: np.zeros(3))
    tilt_radius: NDArray[np.float64] = field(default_factory=lambda: np.zeros(3))
    order: AxisOrder = AxisOrder.PAN_TILT
    zoom_translation: ZoomCurve = field(default_factory=lambda: ConstantCurve(0.0))

    def __post_init__(self) -> None:
        pan = Joint("pan", self.pan_axis, self.pan_radius)
        tilt = Joint("tilt", self.tilt_axis, self.tilt_radius)
        if abs(float(np.dot(pan.axis, tilt.axis))) > np.cos(np.radians(10.0)):
            raise ValueError("pan and tilt axes are within 10 deg of parallel; the head is degenerate")
        object.__setattr__(self, "order", AxisOrder(self.order))
        object.__setattr__(self, "pan_axis", pan.axis)
        object.__setattr__(self, "tilt_axis", tilt.axis)
        object.__setattr__(self, "pan_radius", pan.radius)
        object.__setattr__(self, "tilt_radius", tilt.radius)
        object.__setattr__(self, "_pan_joint", pan)
        object.__setattr__(self, "_tilt_joint", tilt)

    @property
    def pan_joint(self) -> Joint:
        return self._pan_joint  # type: ignore[attr-defined]

    @property
    def tilt_joint(self) -> Joint:
        return self._tilt_joint  # type: ignore[attr-defined]

    @property
    def axis_angle(self) -> float:
        """Angle between the pan and tilt axes (rad); pi/2 for a perpendicular head."""
        return float(np.arccos(np.clip(np.dot(self.pan_axis, self.tilt_axis), -1.0, 1.0)))

    def _broadcast(self, pan: ArrayLike, tilt: ArrayLike, zoom: ArrayLike) -> tuple[NDArray, NDArray, NDArray]:
        return np.broadcast_arrays(np.asarray(pan, float), np.asarray(tilt, float), np.asarray(zoom, float))

    def chain(self, pan: ArrayLike, tilt: ArrayLike, zoom: ArrayLike = 0.0) -> list[tuple[str, NDArray, NDArray]]:
        """The three links of the TF chain, each (name, R, t) parent-to-child in H coordinates.

        Names are ``pan``/``tilt`` in the order of the head, then ``optical`` (zoom translation).
        Their composition is :meth:`pose`.
        """
        if np.ndim(pan) == 0 and np.ndim(tilt) == 0 and np.ndim(zoom) == 0:
            p, t, z = float(pan), float(tilt), np.asarray(float(zoom))
        else:
            p, t, z = self._broadcast(pan, tilt, zoom)
        pan_link = ("pan",) + self.pan_joint.transform(p)
        tilt_link = ("tilt",) + self.tilt_joint.transform(t)
        first, second = (pan_link, tilt_link) if self.order is AxisOrder.PAN_TILT else (tilt_link, pan_link)
        r_opt = np.broadcast_to(np.eye(3), z.shape + (3, 3)).copy()
        t_opt = np.zeros(z.shape + (3,))
        t_opt[..., 2] = self.zoom_translation.evaluate(z)
        return [first, second, ("optical", r_opt, t_opt)]

    def pose(self, pan: ArrayLike, tilt: ArrayLike, zoom: ArrayLike = 0.0) -> Transform:
        """Camera-to-home pose (R, T), ``X_H = R X_C + T``, at (pan, tilt, zoom) (broadcast, batched)."""
        (_, r1, t1), (_, r2, t2), (_, _, t3) = self.chain(pan, tilt, zoom)
        r = r1 @ r2
        t = np.einsum("...ij,...j->...i", r1, t2) + t1
        return r, np.einsum("...ij,...j->...i", r, t3) + t

    def optical_centre(self, pan: ArrayLike, tilt: ArrayLike, zoom: ArrayLike = 0.0) -> NDArray[np.float64]:
        """Position of the optical centre in H (metres)."""
        return self.pose(pan, tilt, zoom)[1]

    @classmethod
    def ideal(cls) -> "PtzKinematics":
        """Perpendicular axes through the optical centre, no zoom translation."""
        return cls()

    @classmethod
    def sanchez_riera(cls, offset: float, zoom_translation: ZoomCurve | None = None) -> "PtzKinematics":
        """Sanchez-Riera et al. 2009: ideal axes through one rotation centre on the optical axis.

        ``offset`` is the distance (m) from the rotation centre forward to the optical centre
        (positive when the centre lies behind the lens).
        """
        m = np.array([0.0, 0.0, float(offset)])
        return cls(pan_radius=m, tilt_radius=m.copy(),
                   zoom_translation=zoom_translation or ConstantCurve(0.0))
