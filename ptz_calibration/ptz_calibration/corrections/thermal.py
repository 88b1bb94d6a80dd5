"""Temperature compensation: boresight rotation and focal-length scale linear in temperature.

Relative to ``reference_temperature`` (where the base model is exact) the camera's optical frame
turns by ``boresight_x * dT`` about its x axis and ``boresight_y * dT`` about its y axis, and fx,
fy scale by ``1 + focal_ppm * 1e-6 * dT``. :func:`fit_thermal` characterizes it from a thermal
sweep: the image of a fixed target at a fixed pan/tilt/zoom, observed at several temperatures,
moves (boresight) and scales (focal length) with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
from numpy.typing import ArrayLike, NDArray

from scipy.spatial.transform import Rotation


@dataclass(frozen=True)
class ThermalCompensation:
    """See the module docstring (rad per deg C, ppm per deg C, deg C)."""

    reference_temperature: float
    boresight_x: float = 0.0
    boresight_y: float = 0.0
    focal_ppm: float = 0.0
    rms_px: float = math.nan  # residual of the fit at the sweep's zoom
    samples: int = 0

    def delta(self, temperature: float) -> float:
        """Temperature minus the reference; 0 when the temperature is unknown (NaN)."""
        return 0.0 if not math.isfinite(temperature) else float(temperature) - self.reference_temperature

    def rotation(self, temperature: float) -> NDArray[np.float64]:
        """``R`` with ``X_model_optical = R @ X_actual_optical``: the actual pose is ``pose @ R``."""
        d = self.delta(temperature)
        return _axis_angle([1.0, 0.0, 0.0], self.boresight_x * d) @ _axis_angle(
            [0.0, 1.0, 0.0], self.boresight_y * d)

    def focal_scale(self, temperature: float) -> float:
        """Factor on fx and fy at ``temperature``."""
        return 1.0 + self.focal_ppm * 1e-6 * self.delta(temperature)

    def to_dict(self) -> dict[str, Any]:
        return {"reference_temperature": float(self.reference_temperature),
                "boresight_x_rad_per_degc": float(self.boresight_x),
                "boresight_y_rad_per_degc": float(self.boresight_y),
                "focal_ppm_per_degc": float(self.focal_ppm), "fit_rms_px": float(self.rms_px),
                "samples": int(self.samples)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ThermalCompensation":
        out = cls(float(data["reference_temperature"]), float(data.get("boresight_x_rad_per_degc", 0.0)),
                  float(data.get("boresight_y_rad_per_degc", 0.0)), float(data.get("focal_ppm_per_degc", 0.0)),
                  float(data.get("fit_rms_px", math.nan)), int(data.get("samples", 0)))
        if not all(math.isfinite(v) for v in (out.reference_temperature, out.boresight_x, out.boresight_y,
                                               out.focal_ppm)):
            raise ValueError("thermal compensation coefficients must be finite")
        return out


def similarity_to(reference: ArrayLike, points: ArrayLike, centre: ArrayLike) -> tuple[float, float, float]:
    """(scale, du, dv) with ``points - centre ~= scale * (reference - centre) + (du, dv)`` (least squares)."""
    a = np.asarray(reference, float).reshape(-1, 2) - np.asarray(centre, float)
    b = np.asarray(points, float).reshape(-1, 2) - np.asarray(centre, float)
    ok = np.all(np.isfinite(a), axis=1) & np.all(np.isfinite(b), axis=1)
    a, b = a[ok], b[ok]
    if len(a) < 2:
        raise ValueError("need at least two points seen at both temperatures")
    A = np.zeros((2 * len(a), 3))
    A[0::2, 0], A[1::2, 0] = a[:, 0], a[:, 1]
    A[0::2, 1] = 1.0
    A[1::2, 2] = 1.0
    x, *_ = np.linalg.lstsq(A, b.reshape(-1), rcond=None)
    return float(x[0]), float(x[1]), float(x[2])


def fit_thermal(temperatures: ArrayLike, image_points: ArrayLike, K: ArrayLike,
                reference_temperature: float) -> ThermalCompensation:
    """Fit the compensation from images of a fixed target at a fixed PTZ setting.

    ``image_points`` (M, N, 2): the target's N points in each of M images, taken at
    ``temperatures`` (M,); ``K`` the camera matrix at that zoom. Each image is compared with the
    mean of all by a similarity (scale, shift about the principal point); the scale gives the
    focal change, the shift divided by the focal length the boresight rotation (small angles: a
    drift ``Rx(a)`` of the optical frame moves a fixed point's image by ``+fy * a`` in v, ``Ry(b)``
    by ``-fx * b`` in u). Slopes over temperature by least squares.
    """
    T = np.asarray(temperatures, float).ravel()
    P = np.asarray(image_points, float)
    K = np.asarray(K, float)
    if P.ndim != 3 or P.shape[0] != T.size or T.size < 3:
        raise ValueError("need image points (M, N, 2) at M >= 3 temperatures")
    if np.ptp(T) < 1.0:
        raise ValueError(f"the sweep covers only {np.ptp(T):.2f} deg C: too little to fit a slope")
    ref = np.nanmean(P, axis=0)
    c = K[:2, 2]
    sim = np.array([similarity_to(ref, p, c) for p in P])
    A = np.stack([np.ones_like(T), T - reference_temperature], axis=1)
    # scale = 1 + ppm*1e-6*dT (relative to the mean image); du = -fx * by * dT; dv = fy * bx * dT
    coef_s, *_ = np.linalg.lstsq(A, sim[:, 0], rcond=None)
    coef_u, *_ = np.linalg.lstsq(A, sim[:, 1], rcond=None)
    coef_v, *_ = np.linalg.lstsq(A, sim[:, 2], rcond=None)
    ppm = coef_s[1] / coef_s[0] * 1e6
    by = -coef_u[1] / K[0, 0]
    bx = coef_v[1] / K[1, 1]
    # residual: points predicted from the mean image by the fitted drift, in px
    pred_s = coef_s[0] + coef_s[1] * (T - reference_temperature)
    pred_u = coef_u[0] + coef_u[1] * (T - reference_temperature)
    pred_v = coef_v[0] + coef_v[1] * (T - reference_temperature)
    res = []
    for m in range(T.size):
        q = pred_s[m] * (ref - c) + c + [pred_u[m], pred_v[m]]
        res.append(np.nanmean(np.sum((q - P[m]) ** 2, axis=1)))
    return ThermalCompensation(float(reference_temperature), float(bx), float(by), float(ppm),
                               float(np.sqrt(np.mean(res))), T.size)


def _axis_angle(axis: list[float], angle: float) -> NDArray[np.float64]:
    return Rotation.from_rotvec(np.asarray(axis, float) * float(angle)).as_matrix()
