"""Pan-tilt correction map: the systematic difference between reported and actual joint angles.

Per axis, ``actual - reported = offset + sum_k (s_k sin(k q) + c_k cos(k q)) - d * backlash / 2``
with ``q`` the reported angle and ``d`` the direction of the last motion of that axis (+1 after
moving towards larger angles, -1 towards smaller, 0 when unknown): gear eccentricity gives the
harmonic series, the gear dead band makes the load lag the motor by half its width after each
move. Fitted by linear least squares from measured (reported, actual, direction) triples
(:func:`fit_axis_map`); the direction comes from the feedback stream (:class:`DirectionTracker`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray


@dataclass(frozen=True)
class AxisMap:
    """Correction of one axis (rad): offset, harmonics ``(order, sin, cos)``, backlash width."""

    offset: float = 0.0
    harmonics: tuple[tuple[int, float, float], ...] = ()
    backlash: float = 0.0

    def error(self, angle: ArrayLike, direction: ArrayLike = 0.0) -> NDArray[np.float64]:
        """``actual - reported`` at the reported ``angle`` after a motion in ``direction``."""
        q = np.asarray(angle, dtype=float)
        e = np.full(q.shape, self.offset) - 0.5 * self.backlash * np.asarray(direction, dtype=float)
        for order, s, c in self.harmonics:
            e = e + s * np.sin(order * q) + c * np.cos(order * q)
        return e

    def amplitude(self) -> float:
        """Peak-to-peak bound of the correction (rad): what it moves the angle by at most."""
        return abs(self.offset) + 0.5 * self.backlash + sum(math.hypot(s, c) for _, s, c in self.harmonics)

    def to_dict(self) -> dict[str, Any]:
        return {"offset": float(self.offset), "backlash": float(self.backlash),
                "harmonics": [[int(k), float(s), float(c)] for k, s, c in self.harmonics]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "AxisMap":
        raw = data.get("harmonics", []) or []
        if any(not isinstance(h, (list, tuple)) or len(h) != 3 or int(h[0]) < 1 for h in raw):
            raise ValueError("harmonics must be [order >= 1, sin, cos] triples")
        harmonics = tuple((int(h[0]), float(h[1]), float(h[2])) for h in raw)
        out = cls(float(data.get("offset", 0.0)), harmonics, float(data.get("backlash", 0.0)))
        if not all(math.isfinite(v) for v in (out.offset, out.backlash, *(x for h in harmonics for x in h[1:]))):
            raise ValueError("pointing map coefficients must be finite")
        if out.backlash < 0:
            raise ValueError(f"backlash must be >= 0, got {out.backlash}")
        return out


@dataclass(frozen=True)
class PointingMap:
    """Pan and tilt corrections (see the module docstring); ``rms`` = fit residuals (rad)."""

    pan: AxisMap = field(default_factory=AxisMap)
    tilt: AxisMap = field(default_factory=AxisMap)
    rms: tuple[float, float] = (math.nan, math.nan)
    samples: int = 0

    def correct(self, pan: ArrayLike, tilt: ArrayLike, pan_direction: ArrayLike = 0.0,
                tilt_direction: ArrayLike = 0.0) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Actual (pan, tilt) from reported angles and the directions of the last motions."""
        return (np.asarray(pan, float) + self.pan.error(pan, pan_direction),
                np.asarray(tilt, float) + self.tilt.error(tilt, tilt_direction))

    def to_dict(self) -> dict[str, Any]:
        return {"pan": self.pan.to_dict(), "tilt": self.tilt.to_dict(),
                "fit_rms_rad": [float(v) for v in self.rms], "samples": int(self.samples)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "PointingMap":
        rms = data.get("fit_rms_rad", [math.nan, math.nan])
        return cls(AxisMap.from_dict(data.get("pan", {}) or {}), AxisMap.from_dict(data.get("tilt", {}) or {}),
                   (float(rms[0]), float(rms[1])), int(data.get("samples", 0)))


def fit_axis_map(reported: ArrayLike, actual: ArrayLike, direction: ArrayLike,
                 orders: Sequence[int] = (1, 2), backlash: bool = True, offset: bool = True
                 ) -> tuple[AxisMap, float]:
    """Least-squares :class:`AxisMap` from measured angles; returns it and the residual RMS (rad).

    Needs samples approached from both directions to separate the backlash from the offset, and
    a spread of angles wide enough for the requested harmonic orders (a harmonic whose period
    the samples do not cover is badly determined: the fit raises ``ValueError`` when the design
    is rank-deficient).
    """
    q = np.asarray(reported, float).ravel()
    y = np.asarray(actual, float).ravel() - q
    d = np.asarray(direction, float).ravel()
    if not (q.shape == y.shape == d.shape) or q.size == 0:
        raise ValueError("reported, actual and direction must be non-empty and of one length")
    cols, names = [], []
    if offset:
        cols.append(np.ones_like(q))
        names.append("offset")
    for k in orders:
        cols += [np.sin(k * q), np.cos(k * q)]
        names += [f"s{k}", f"c{k}"]
    if backlash:
        cols.append(-0.5 * d)
        names.append("backlash")
    A = np.stack(cols, axis=1)
    if q.size < A.shape[1] or np.linalg.matrix_rank(A, tol=1e-6 * max(1.0, np.abs(A).max())) < A.shape[1]:
        raise ValueError(f"cannot fit {names} from {q.size} samples: add samples over more angles "
                         "or from both directions")
    x, *_ = np.linalg.lstsq(A, y, rcond=None)
    coef = dict(zip(names, x))
    harmonics = tuple((int(k), float(coef[f"s{k}"]), float(coef[f"c{k}"])) for k in orders)
    amap = AxisMap(float(coef.get("offset", 0.0)), harmonics, max(0.0, float(coef.get("backlash", 0.0))))
    rms = float(np.sqrt(np.mean((y - amap.error(q, d)) ** 2)))
    return amap, rms


class DirectionTracker:
    """Direction of the last motion of one axis from its feedback stream, with hysteresis.

    The direction changes only once the angle has moved more than ``threshold`` (rad: a few
    encoder steps) away from the extreme reached in the current direction, so encoder noise at
    rest never flips it. ``velocity`` (when the device reports one) decides at once.
    """

    def __init__(self, threshold: float = 2e-3, direction: int = 0) -> None:
        self.threshold = float(threshold)
        self.direction = int(direction)
        self._extreme = math.nan

    def update(self, angle: float, velocity: float = math.nan) -> int:
        """Feed one sample; the current direction (+1, -1 or 0 = not known yet)."""
        if not math.isfinite(angle):
            return self.direction
        if math.isfinite(velocity) and abs(velocity) > 1e-4:
            self.direction = 1 if velocity > 0 else -1
            self._extreme = angle
            return self.direction
        if math.isnan(self._extreme):
            self._extreme = angle
        elif self.direction > 0 and angle > self._extreme:
            self._extreme = angle
        elif self.direction < 0 and angle < self._extreme:
            self._extreme = angle
        if angle - self._extreme > self.threshold:
            self.direction, self._extreme = 1, angle
        elif self._extreme - angle > self.threshold:
            self.direction, self._extreme = -1, angle
        return self.direction
