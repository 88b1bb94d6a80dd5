"""Per-zoom optical offset table: where the optical axis of a lens sits, in pixels, at each zoom.

Two lenses looking the same way (a visible and a thermal lens in one housing, or two cameras of
a rig) never share their optical axis exactly, and the offset changes with zoom as lens groups
move. The table stores the measured (dx, dy) offset (px) of this camera's axis relative to its
model (or to the other lens) at every zoom step of a sweep and interpolates linearly between
steps. Applied as a small zoom-dependent rotation of the optical frame, so a target centred in
one lens is predicted, and can be commanded, centred in the other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
from numpy.typing import ArrayLike, NDArray

from scipy.spatial.transform import Rotation


@dataclass(frozen=True)
class ZoomOffsetTable:
    """Offsets ``dx``, ``dy`` (px, image right / down) at raw ``zoom`` steps (increasing)."""

    zoom: tuple[float, ...]
    dx: tuple[float, ...]
    dy: tuple[float, ...]

    def __post_init__(self) -> None:
        z = np.asarray(self.zoom, float)
        if not (len(self.zoom) == len(self.dx) == len(self.dy) >= 1):
            raise ValueError("zoom, dx and dy must have one length >= 1")
        if not np.all(np.isfinite(np.concatenate([z, self.dx, self.dy]))):
            raise ValueError("zoom offset table values must be finite")
        if np.any(np.diff(z) <= 0):
            raise ValueError("zoom steps must increase")

    def offset(self, zoom: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(dx, dy) px at raw ``zoom`` (linear between steps, constant beyond the ends)."""
        return (np.interp(zoom, self.zoom, self.dx), np.interp(zoom, self.zoom, self.dy))

    def rotation(self, zoom: float, fx: float, fy: float) -> NDArray[np.float64]:
        """``R`` with ``X_model_optical = R @ X_actual_optical`` (the actual pose is ``pose @ R``).

        The table holds where a target on the model's optical axis is actually seen:
        with ``pose @ R`` it projects at ``(cx + dx, cy + dy)``.
        """
        dx, dy = (float(v) for v in self.offset(zoom))
        return (_axis_angle([0.0, 1.0, 0.0], math.atan2(dx, fx)) @ _axis_angle(
            [1.0, 0.0, 0.0], -math.atan2(dy, fy))).T

    def to_dict(self) -> dict[str, Any]:
        return {"zoom": [float(v) for v in self.zoom], "dx_px": [float(v) for v in self.dx],
                "dy_px": [float(v) for v in self.dy]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ZoomOffsetTable":
        return cls(tuple(float(v) for v in data["zoom"]), tuple(float(v) for v in data["dx_px"]),
                   tuple(float(v) for v in data["dy_px"]))


def measure_zoom_offsets(zoom: ArrayLike, predicted: ArrayLike, observed: ArrayLike) -> ZoomOffsetTable:
    """The table from a sweep: per zoom step, the mean of ``observed - predicted`` pixels.

    ``zoom`` (M,), ``predicted`` / ``observed`` (M, 2) pixel positions of a far target (or of
    the target centred in the other lens); repeated zoom values are averaged.
    """
    z = np.asarray(zoom, float).ravel()
    d = np.asarray(observed, float).reshape(-1, 2) - np.asarray(predicted, float).reshape(-1, 2)
    ok = np.isfinite(z) & np.all(np.isfinite(d), axis=1)
    z, d = z[ok], d[ok]
    if z.size == 0:
        raise ValueError("no finite measurement in the zoom sweep")
    steps = np.unique(z)
    mean = np.array([d[z == s].mean(axis=0) for s in steps])
    return ZoomOffsetTable(tuple(steps), tuple(mean[:, 0]), tuple(mean[:, 1]))


def _axis_angle(axis: list[float], angle: float) -> NDArray[np.float64]:
    return Rotation.from_rotvec(np.asarray(axis, float) * float(angle)).as_matrix()
