"""Intrinsics of a zoom lens as functions of the raw zoom value, and the zoom-to-magnification map."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .curves import ConstantCurve, PiecewiseLinearCurve, ZoomCurve

#: plumb_bob distortion coefficients, in the order of sensor_msgs/CameraInfo and OpenCV.
DISTORTION_NAMES: tuple[str, ...] = ("k1", "k2", "p1", "p2", "k3")


def _zero() -> ConstantCurve:
    return ConstantCurve(0.0)


@dataclass(frozen=True)
class ZoomIntrinsics:
    """Pinhole + plumb_bob intrinsics whose every parameter is a :class:`ZoomCurve`."""

    fx: ZoomCurve
    fy: ZoomCurve
    cx: ZoomCurve
    cy: ZoomCurve
    k1: ZoomCurve = field(default_factory=_zero)
    k2: ZoomCurve = field(default_factory=_zero)
    p1: ZoomCurve = field(default_factory=_zero)
    p2: ZoomCurve = field(default_factory=_zero)
    k3: ZoomCurve = field(default_factory=_zero)

    def curves(self) -> dict[str, ZoomCurve]:
        """All curves by parameter name (fx, fy, cx, cy, k1, k2, p1, p2, k3)."""
        return {name: getattr(self, name) for name in ("fx", "fy", "cx", "cy") + DISTORTION_NAMES}

    def camera_matrix(self, zoom: ArrayLike) -> NDArray[np.float64]:
        """K at ``zoom``: (3, 3) for a scalar, (*zoom.shape, 3, 3) for an array."""
        z = np.asarray(zoom, dtype=float)
        k = np.zeros(z.shape + (3, 3))
        k[..., 0, 0] = self.fx.evaluate(z)
        k[..., 1, 1] = self.fy.evaluate(z)
        k[..., 0, 2] = self.cx.evaluate(z)
        k[..., 1, 2] = self.cy.evaluate(z)
        k[..., 2, 2] = 1.0
        return k

    def distortion(self, zoom: ArrayLike) -> NDArray[np.float64]:
        """plumb_bob coefficients (k1, k2, p1, p2, k3) at ``zoom``: (5,) or (*zoom.shape, 5)."""
        z = np.asarray(zoom, dtype=float)
        return np.stack([getattr(self, n).evaluate(z) for n in DISTORTION_NAMES], axis=-1)

    @classmethod
    def constant(cls, fx: float, fy: float, cx: float, cy: float, dist: ArrayLike = (0, 0, 0, 0, 0)) -> "ZoomIntrinsics":
        """Intrinsics that do not change with zoom (a fixed-focal camera)."""
        d = np.zeros(5)
        given = np.asarray(dist, dtype=float).reshape(-1)[:5]
        d[: given.size] = given
        return cls(*(ConstantCurve(v) for v in (fx, fy, cx, cy)),
                   **{n: ConstantCurve(v) for n, v in zip(DISTORTION_NAMES, d)})


@dataclass(frozen=True)
class ZoomMapping:
    """Maps the raw device zoom value to optical magnification (1.0 at the widest zoom) and back.

    The magnification curve must increase monotonically over [raw_min, raw_max].
    """

    raw_min: float
    raw_max: float
    curve: ZoomCurve

    def __post_init__(self) -> None:
        if not (np.isfinite(self.raw_min) and np.isfinite(self.raw_max)) or self.raw_max < self.raw_min:
            raise ValueError(f"zoom range must be finite with raw_min <= raw_max, got [{self.raw_min}, {self.raw_max}]")
        raw, mag = self._table()
        if np.any(np.diff(mag) <= 0) and self.raw_max > self.raw_min:
            raise ValueError("magnification must increase strictly with the raw zoom value")

    def _table(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        raw = np.linspace(self.raw_min, self.raw_max, 1025)
        return raw, self.curve.evaluate(raw)

    def magnification(self, raw: ArrayLike) -> Any:
        """Magnification at raw zoom value(s)."""
        return self.curve(raw)

    def raw(self, magnification: ArrayLike) -> Any:
        """Raw zoom value(s) giving ``magnification`` (clamped to the range), by inverse interpolation."""
        table_raw, table_mag = self._table()
        if self.raw_max == self.raw_min:
            out = np.full(np.shape(magnification), self.raw_min)
        else:
            out = np.interp(np.asarray(magnification, dtype=float), table_mag, table_raw)
        return float(out) if np.ndim(magnification) == 0 else out

    def contains(self, raw: ArrayLike, tolerance: float = 1e-9) -> Any:
        """True where ``raw`` lies within [raw_min, raw_max] (NaN is outside)."""
        r = np.asarray(raw, dtype=float)
        span = tolerance * max(1.0, abs(self.raw_max - self.raw_min))
        return (r >= self.raw_min - span) & (r <= self.raw_max + span)

    @classmethod
    def fixed(cls) -> "ZoomMapping":
        """The mapping of a camera without zoom (raw 0, magnification 1)."""
        return cls(0.0, 0.0, ConstantCurve(1.0))

    @classmethod
    def from_focal_lengths(cls, raw: ArrayLike, focal: ArrayLike) -> "ZoomMapping":
        """Magnification as focal length over the widest focal length, tabulated."""
        r = np.asarray(raw, dtype=float)
        f = np.asarray(focal, dtype=float)
        order = np.argsort(r)
        r, f = r[order], f[order]
        return cls(float(r[0]), float(r[-1]), PiecewiseLinearCurve(r, f / f[0]))

    def to_dict(self) -> dict[str, Any]:
        return {"raw_min": self.raw_min, "raw_max": self.raw_max, "magnification": self.curve.to_dict()}
