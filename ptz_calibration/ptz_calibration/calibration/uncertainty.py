"""Standard deviations of a calibration that stay honest when the problem is ill-conditioned.

``cv2.calibrateCameraExtended`` inverts the unscaled normal matrix with a pseudo-inverse
(``DECOMP_SVD``): parameters whose scales differ by many orders (fx ~ 1e4 px, k3 acting as
``r^7`` with ``r`` ~ 0.03) put the unobservable directions below its singular-value cut-off, which
are then dropped, so it reports *small* (or NaN) deviations exactly for the parameters the views do
not determine (seen at 20x zoom: k3 = -8e3 +- 0.09). Here the full Jacobian (``cv2.projectPoints``
derivatives of every view, intrinsics and extrinsics) is column-equilibrated before its SVD, and
a direction with no information gives an infinite deviation. Where the problem is well conditioned
the two agree (checked in the tests).
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
from numpy.typing import NDArray

from .detection import Detection

__all__ = ["free_intrinsics", "calibration_std"]

_NAMES = ("fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2", "k3", "k4", "k5", "k6", "s1", "s2", "s3",
          "s4", "tau_x", "tau_y")


def free_intrinsics(flags: int, n_dist: int) -> list[str]:
    """Names of the intrinsics ``calibrateCamera`` estimates under ``flags`` (``f`` = fx, fy tied)."""
    fixed: set[str] = set()
    if flags & cv2.CALIB_FIX_FOCAL_LENGTH:
        fixed |= {"fx", "fy"}
    elif flags & cv2.CALIB_FIX_ASPECT_RATIO:
        fixed.add("fy")  # fy = fx * (fy0 / fx0): one focal parameter
    if flags & cv2.CALIB_FIX_PRINCIPAL_POINT:
        fixed |= {"cx", "cy"}
    if flags & (cv2.CALIB_ZERO_TANGENT_DIST | cv2.CALIB_FIX_TANGENT_DIST):
        fixed |= {"p1", "p2"}
    for k in range(1, 7):
        if flags & getattr(cv2, f"CALIB_FIX_K{k}"):
            fixed.add(f"k{k}")
    if flags & cv2.CALIB_FIX_S1_S2_S3_S4:
        fixed |= {"s1", "s2", "s3", "s4"}
    if flags & cv2.CALIB_FIX_TAUX_TAUY:
        fixed |= {"tau_x", "tau_y"}
    return [n for n in _NAMES[: 4 + n_dist] if n not in fixed]


def _inverse_parts(normal: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Eigenvectors and inverse eigenvalues of an equilibrated normal matrix (inf: no information)."""
    if normal.size == 0:  # every intrinsic fixed
        return np.zeros((0, 0)), np.zeros(0)
    lam, vec = np.linalg.eigh(normal)
    tiny = lam <= max(lam.max(), 0.0) * 1e-13
    with np.errstate(divide="ignore"):
        inv = np.where(tiny, np.inf, 1.0 / np.where(tiny, 1.0, lam))
    return vec, inv


def _variances(vec: NDArray[np.float64], inv: NDArray[np.float64], rows: NDArray[np.float64]) -> NDArray[np.float64]:
    """Diagonal of ``rows @ (V diag(inv) V^T) @ rows^T`` (inf where a row meets a null direction)."""
    proj = (rows @ vec) ** 2  # (m, directions)
    null = ~np.isfinite(inv)
    finite = (proj[:, ~null] * inv[~null]).sum(axis=1)
    return np.where(proj[:, null].sum(axis=1) > 1e-20 * np.maximum((rows**2).sum(axis=1), 1e-300), np.inf, finite)


def calibration_std(views: Sequence[Detection], camera_matrix: NDArray[np.float64],
                    distortion: NDArray[np.float64], rvecs: NDArray[np.float64],
                    tvecs: NDArray[np.float64], flags: int
                    ) -> tuple[dict[str, float], NDArray[np.float64]]:
    """Standard deviations of the intrinsics (by name; 0 where fixed, inf where undetermined) and of
    each view's (rvec, tvec), from the residual and the equilibrated Jacobian at the solution.

    The extrinsics are eliminated view by view (Schur complement), so the cost is linear in the
    number of views.
    """
    K = np.asarray(camera_matrix, dtype=float)
    D = np.asarray(distortion, dtype=float).ravel()
    free = free_intrinsics(flags, len(D))
    column = {n: i for i, n in enumerate(_NAMES[: 4 + len(D)])}
    tied = "fx" in free and "fy" not in free  # FIX_ASPECT_RATIO: fy = fx * (fy / fx)
    p = len(free)
    per_view = []
    sq_sum, n_rows = 0.0, 0
    for view, r, t in zip(views, rvecs, tvecs):
        uv, jac = cv2.projectPoints(view.object_points, np.asarray(r, float), np.asarray(t, float), K, D)
        res = uv.reshape(-1, 2) - view.image_points
        sq_sum += float((res**2).sum())
        n_rows += res.size
        a = jac[:, 6:][:, [column[n] for n in free]].copy()  # intrinsics: fx fy cx cy dist...
        if tied:
            a[:, free.index("fx")] += jac[:, 6 + column["fy"]] * (K[1, 1] / K[0, 0])
        b = jac[:, :6]
        per_view.append((a, b))
    sigma2 = sq_sum / max(n_rows - p - 6 * len(views), 1)
    # column scales: equilibrate intrinsics over all views, extrinsics per view
    a_scale = np.sqrt(sum((a**2).sum(axis=0) for a, _ in per_view))
    a_scale[a_scale == 0] = 1.0
    schur = np.zeros((p, p))
    gains = []
    for a, b in per_view:
        an = a / a_scale
        b_scale = np.linalg.norm(b, axis=0)
        b_scale[b_scale == 0] = 1.0
        bn = b / b_scale
        btb_inv = np.linalg.inv(bn.T @ bn)
        g = btb_inv @ (bn.T @ an)  # (6, p): extrinsic response to the intrinsics
        schur += an.T @ an - (an.T @ bn) @ g
        gains.append((btb_inv, g, b_scale))
    vec, inv = _inverse_parts(schur)
    std_int = np.sqrt(_variances(vec, inv, np.eye(p)) * sigma2) / a_scale
    std_ext = np.empty((len(per_view), 6))
    for k, (btb_inv, g, b_scale) in enumerate(gains):
        var = np.diag(btb_inv) + _variances(vec, inv, g)
        std_ext[k] = np.sqrt(var * sigma2) / b_scale
    out = {n: 0.0 for n in _NAMES}
    for j, name in enumerate(free):
        out[name] = float(std_int[j])
    if tied:
        out["fy"] = float(out["fx"] * K[1, 1] / K[0, 0])
    return out, std_ext
