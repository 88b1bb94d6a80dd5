"""Which intrinsic parameters a set of views cannot determine, judged in pixels.

At long focal lengths the field of view is a few degrees: the normalized radius ``r`` of the image
corner is ~0.03 at 20x, so the radial terms ``k1 r^3, k2 r^5, k3 r^7`` are nearly collinear and
tiny, the tangential terms trade off against the principal point, and the principal point trades
off against the target's rotation (a narrow view is almost an orthographic one: shifting the image
and turning the board look the same). Zhang's method then returns large, noise-driven values.

A distortion term is *ill-conditioned* when the standard deviation of its effect at the farthest
image corner (the coefficient's standard deviation from ``calibrateCameraExtended`` times its
displacement per unit there) exceeds a limit in pixels AND its value is not significantly non-zero
(``|k| < significance * std``): a strong, well-measured distortion of a wide lens is kept even when
the views leave its extrapolation to the corners uncertain. The principal point is ill-conditioned
when ``hypot(std cx, std cy)`` exceeds its limit. Standard deviations are scaled so the residual is
never taken below a noise floor (noise-free renders would otherwise make everything look well
determined). Terms are tested in the order of :data:`TERMS` (the least observable first); the
caller fixes the first one found (at zero; the principal point at its initial value) and
calibrates again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional

import cv2
import numpy as np

__all__ = ["Term", "TERMS", "IllConditioned", "find_ill_conditioned", "corner_radius", "effect_std"]


@dataclass(frozen=True)
class Term:
    """A group of intrinsics fixed together by one ``calibrateCamera`` flag."""

    name: str
    flag: int
    params: tuple[str, ...]
    what: str  # how it is fixed, for the report


TERMS: tuple[Term, ...] = (
    Term("k3", cv2.CALIB_FIX_K3, ("k3",), "k3 fixed at 0"),
    Term("tangential", cv2.CALIB_ZERO_TANGENT_DIST, ("p1", "p2"), "p1 = p2 = 0"),
    Term("k2", cv2.CALIB_FIX_K2, ("k2",), "k2 fixed at 0"),
    Term("principal_point", cv2.CALIB_FIX_PRINCIPAL_POINT, ("cx", "cy"),
         "principal point fixed at its initial value"),
    Term("k1", cv2.CALIB_FIX_K1, ("k1",), "k1 fixed at 0"),
)


@dataclass(frozen=True)
class IllConditioned:
    """A term whose effect the views do not determine."""

    term: Term
    std_px: float  # standard deviation of its effect, px
    limit_px: float
    z: float = float("nan")  # |value| / std of its coefficient(s) (NaN for the principal point)

    @property
    def reason(self) -> str:
        if self.term.name == "principal_point":
            return (f"{self.term.what}: not determined by these views (std {self.std_px:.3g} px "
                    f"> {self.limit_px:g} px)")
        return (f"{self.term.what}: not determined by these views (std of its effect at the image "
                f"corner {self.std_px:.3g} px > {self.limit_px:g} px; value {self.z:.2g} std from 0)")


def corner_radius(camera_matrix: np.ndarray, image_size: tuple[int, int]) -> tuple[float, float]:
    """Normalized (x, y) of the image corner farthest from the principal point."""
    K = np.asarray(camera_matrix, dtype=float)
    w, h = image_size
    u = np.array([-0.5, w - 0.5, -0.5, w - 0.5])
    v = np.array([-0.5, -0.5, h - 0.5, h - 0.5])
    x, y = (u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1]
    k = int(np.argmax(x * x + y * y))
    return float(x[k]), float(y[k])


def effect_std(term: Term, std: Mapping[str, float], camera_matrix: np.ndarray,
               image_size: tuple[int, int]) -> float:
    """Standard deviation (px) of the displacement a term causes at the farthest image corner."""
    if term.name == "principal_point":
        return float(np.hypot(std["cx"], std["cy"]))
    K = np.asarray(camera_matrix, dtype=float)
    f = 0.5 * (K[0, 0] + K[1, 1])
    x, y = corner_radius(K, image_size)
    r2 = x * x + y * y
    if term.name == "tangential":  # d(xd, yd)/dp1 = (2xy, r2 + 2y2), d/dp2 = (r2 + 2x2, 2xy)
        d1 = np.hypot(2 * x * y, r2 + 2 * y * y)
        d2 = np.hypot(r2 + 2 * x * x, 2 * x * y)
        return float(f * np.hypot(std["p1"] * d1, std["p2"] * d2))
    power = {"k1": 1, "k2": 2, "k3": 3}[term.name]  # displacement k * r^(2n + 1)
    return float(f * np.sqrt(r2) ** (2 * power + 1) * std[term.name])


def find_ill_conditioned(values: Mapping[str, float], std: Mapping[str, float],
                         camera_matrix: np.ndarray, image_size: tuple[int, int], flags: int,
                         residual_px: float, noise_floor_px: float = 0.05,
                         distortion_limit_px: float = 0.2, principal_point_limit_px: float = 3.0,
                         significance: float = 2.0) -> Optional[IllConditioned]:
    """The first free term of :data:`TERMS` that the views do not determine, or None.

    ``values`` and ``std`` hold the estimates and OpenCV's standard deviations by name (fx, fy,
    cx, cy, k1, k2, p1, p2, k3), computed with the per-coordinate residual ``residual_px``; the
    deviations are scaled up as if the residual were at least ``noise_floor_px``.
    """
    scale = max(1.0, noise_floor_px / max(residual_px, 1e-12))
    scaled = {k: v * scale for k, v in std.items()}
    for term in TERMS:
        if flags & term.flag or (term.name == "tangential" and flags & cv2.CALIB_FIX_TANGENT_DIST):
            continue
        if term.name == "principal_point":
            spread = effect_std(term, scaled, camera_matrix, image_size)
            if not spread <= principal_point_limit_px:  # NaN counts as ill-conditioned
                return IllConditioned(term, spread, principal_point_limit_px)
            continue
        spread = effect_std(term, scaled, camera_matrix, image_size)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = max(abs(values[p]) / scaled[p] if scaled[p] > 0 else np.inf for p in term.params)
        if not spread <= distortion_limit_px and not z >= significance:
            return IllConditioned(term, spread, distortion_limit_px, float(z))
    return None
