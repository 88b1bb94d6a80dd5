"""Stereo triangulation of pixel pairs of two PTZ cameras, with covariance.

Per pair: both pixels are undistorted (``cv2.undistortPoints``) into rays of their optical
frames; the initial point is the midpoint of the shortest segment between the rays (closed
form), then a few Gauss-Newton steps (3 unknowns per point, all points at once) minimize the two
reprojection errors in distorted pixels. The covariance is ``(J^T J)^-1 pixel_sigma^2`` with
``J`` the Jacobian of the 4 pixel coordinates w.r.t. the point, plus, when given, the
propagation of the extrinsics' covariance through the solution (implicit function theorem):
``B C_ext B^T``, ``B = -(J^T J)^-1 J_right^T d pixels_right / d extrinsics``.

Extrinsics perturbation convention (for ``extrinsics_cov``, 6x6): ``(dw, dt)`` with
``R -> expm([dw]x) R`` (rotation vector in rad, in the right optical frame) and ``t -> t + dt``
(m), for ``X_right = R X_left + t``. To first order ``dw`` is the change of the rotation vector
of ``R`` when ``R`` is near the identity.

Points are returned in the LEFT optical frame (x right, y down, z forward).

Speed: the points go in chunks of 8192, both cameras stacked in every array operation, the
refinement writing into buffers it reuses: with numpy, large temporaries cost more (fresh memory
pages) than the arithmetic on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..corrections.apply import setting_camera_matrix
from ..model.stereo_rig import StereoRigModel
from .projection import Lens, project_components, undistort

__all__ = ["TriangulationError", "Localization", "BatchLocalization", "triangulate", "triangulate_pixels",
           "localize"]

DEFAULT_MIN_ANGLE = 1e-4  # rad
DEFAULT_ITERATIONS = 2  # Gauss-Newton steps: a 3rd moves a point by < 1e-7 of its standard deviation
_STEP_TOL = 1e-12  # relative step size at which the refinement stops early
_CHUNK = 8192  # points per chunk

# why a row is invalid (0: valid)
(_OK, _LEFT_PIXEL, _RIGHT_PIXEL, _UNDISTORT, _PARALLEL, _DIVERGE_LEFT, _DIVERGE_RIGHT, _NON_FINITE,
 _BEHIND_LEFT, _BEHIND_RIGHT, _BAD_CAMERAS) = range(11)


class TriangulationError(ValueError):
    """A pixel pair gives no point: parallel or diverging rays, a point behind a camera, or
    non-finite input."""


@dataclass(frozen=True)
class Localization:
    """One triangulated point, in the left optical frame."""

    point: NDArray[np.float64]  # (3,) m
    covariance: NDArray[np.float64]  # (3, 3) m^2
    reprojection_error_px: NDArray[np.float64]  # (2,) left, right
    ray_distance: float  # m, closest distance between the two viewing rays
    ray_angle: float  # rad, angle between the rays (triangulation angle)

    @property
    def range(self) -> float:
        """Distance from the left optical centre (m)."""
        return float(np.linalg.norm(self.point))


@dataclass(frozen=True)
class BatchLocalization:
    """N triangulated points; rows with ``valid`` False are NaN (except where the rays gave a
    distance and angle) and ``reasons`` says why ("" when valid)."""

    points: NDArray[np.float64]  # (N, 3) m, left optical frame
    covariances: NDArray[np.float64]  # (N, 3, 3) m^2
    reprojection_error_px: NDArray[np.float64]  # (N, 2) left, right
    ray_distance: NDArray[np.float64]  # (N,) m
    ray_angle: NDArray[np.float64]  # (N,) rad
    valid: NDArray[np.bool_]  # (N,)
    reasons: list[str]

    def __len__(self) -> int:
        return len(self.valid)

    def localization(self, i: int) -> Localization:
        """Row ``i`` as a :class:`Localization`; :class:`TriangulationError` if it is invalid."""
        if not self.valid[i]:
            raise TriangulationError(self.reasons[i])
        return Localization(self.points[i].copy(), self.covariances[i].copy(), self.reprojection_error_px[i].copy(),
                            float(self.ray_distance[i]), float(self.ray_angle[i]))


def _reason(code: int, angle: float, along: float, min_angle: float) -> str:
    if code == _PARALLEL:
        return (f"parallel rays: angle {angle:.3g} rad < min_angle {min_angle:.3g} rad (point at infinity "
                "or identical rays)")
    if code in (_DIVERGE_LEFT, _DIVERGE_RIGHT):
        side = "left" if code == _DIVERGE_LEFT else "right"
        return (f"rays diverge: their closest points lie behind the {side} camera (at {along:.3g} m along its "
                "ray), the point would be behind it")
    return {_LEFT_PIXEL: "non-finite input: the left pixel is not finite",
            _RIGHT_PIXEL: "non-finite input: the right pixel is not finite",
            _UNDISTORT: "non-finite input: a pixel could not be undistorted",
            _NON_FINITE: "the refinement gave a non-finite point or covariance",
            _BEHIND_LEFT: "the point is behind the left camera",
            _BEHIND_RIGHT: "the point is behind the right camera",
            _BAD_CAMERAS: "non-finite input: the extrinsics or intrinsics are not finite"}[code]


def _setting(value: ArrayLike, name: str) -> NDArray[np.float64]:
    q = np.asarray(value, dtype=float)
    if q.shape not in ((3,), (4,)):
        raise ValueError(f"{name} must be one (pan, tilt, zoom[, temperature]) setting of shape (3,) or (4,), "
                         f"got shape {q.shape}")
    return q


def _pixels(value: ArrayLike, name: str) -> NDArray[np.float64]:
    p = np.asarray(value, dtype=float)
    if p.shape == (2,):
        p = p[None, :]
    elif p.size == 0:
        p = p.reshape(0, 2)
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"{name} must have shape (N, 2), got shape {p.shape}")
    return p


# ---------------------------------------------------------------------------------------------
# the refinement


def _inverse_sym3(h: NDArray[np.float64], out: NDArray[np.float64]) -> NDArray[np.float64]:
    """Inverses (3, 3, n) of symmetric 3x3 matrices (3, 3, n), by cofactors (NaN/inf where singular)."""
    h00, h01, h02, h11, h12, h22 = h[0, 0], h[0, 1], h[0, 2], h[1, 1], h[1, 2], h[2, 2]
    out[0, 0] = h11 * h22 - h12 * h12
    out[0, 1] = out[1, 0] = h02 * h12 - h01 * h22
    out[0, 2] = out[2, 0] = h01 * h12 - h02 * h11
    out[1, 1] = h00 * h22 - h02 * h02
    out[1, 2] = out[2, 1] = h01 * h02 - h00 * h12
    out[2, 2] = h00 * h11 - h01 * h01
    out *= 1.0 / (h00 * out[0, 0] + h01 * out[0, 1] + h02 * out[0, 2])
    return out


class _Cameras:
    """The constants of a triangulation, both cameras stacked (index 0 left, 1 right): lenses,
    and the transforms left optical -> camera (identity, then the extrinsics)."""

    def __init__(self, K_l, D_l, K_r, D_r, R, t) -> None:
        self.lens = Lens.of(np.stack([K_l, K_r]), np.stack([D_l, D_r]))
        self.R, self.t = R, t
        self.centre = -R.T @ t  # the right optical centre in the left optical frame
        self.Rs = np.stack([np.eye(3), R])  # (2, 3, 3)
        self.RsT = np.ascontiguousarray(np.swapaxes(self.Rs, 1, 2))[:, None]  # (2, 1, 3, 3)
        self.ts = np.stack([np.zeros(3), t])[:, :, None]  # (2, 3, 1)


class _Evaluation:
    """At points P (3, n) in the left optical frame: the reprojection residuals ``res`` (2 cameras,
    u/v, n), their Jacobian w.r.t. the point in each camera's frame ``jc`` and in the left frame
    ``jx`` (2, 2, 3, n), the points in each camera frame ``xc`` (2, 3, n) and the ``cost`` (n,)."""

    FIELDS = ("P", "res", "jc", "jx", "xc", "cost")

    def __init__(self, n: int) -> None:
        self.P = np.empty((3, n))
        self.xc = np.empty((2, 3, n))
        self.res = np.empty((2, 2, n))
        self.jc = np.empty((2, 2, 3, n))
        self.jx = np.empty((2, 2, 3, n))
        self.cost = np.empty(n)

    def update(self, P: NDArray, meas: NDArray, cams: _Cameras) -> "_Evaluation":
        self.P[...] = P
        np.matmul(cams.Rs, P, out=self.xc)
        self.xc += cams.ts
        jc = self.jc
        project_components(self.xc[:, 0], self.xc[:, 1], self.xc[:, 2], cams.lens,
                           out=(self.res[:, 0], self.res[:, 1], jc[:, 0, 0], jc[:, 0, 1], jc[:, 0, 2],
                                jc[:, 1, 0], jc[:, 1, 1], jc[:, 1, 2]))
        self.res -= meas
        np.matmul(cams.RsT, jc, out=self.jx)  # d pixels / d X_left = d pixels / d X_cam @ R_cam
        np.einsum("crn,crn->n", self.res, self.res, out=self.cost)
        return self

    def take(self, other: "_Evaluation", mask: NDArray[np.bool_]) -> None:
        """Replace the points where ``mask`` by ``other``'s."""
        for name in self.FIELDS:
            np.copyto(getattr(self, name), getattr(other, name), where=mask)

    def normal(self, h: NDArray, g: NDArray) -> None:
        """``J^T J`` into h (3, 3, n) and ``J^T r`` into g (3, n)."""
        np.einsum("crin,crjn->ijn", self.jx, self.jx, out=h)
        np.einsum("crin,crn->in", self.jx, self.res, out=g)


class _Scratch:
    """Buffers of one refinement of n points: two evaluations (current, trial) and the normal
    equations."""

    def __init__(self, n: int) -> None:
        self.ev, self.trial = _Evaluation(n), _Evaluation(n)
        self.h, self.h_inv = np.empty((3, 3, n)), np.empty((3, 3, n))
        self.g, self.step = np.empty((3, n)), np.empty((3, n))


def _refine(P: NDArray, meas: NDArray, cams: _Cameras, sigma: float, cov_ext: Optional[NDArray],
            iterations: int) -> tuple[NDArray, NDArray, NDArray, NDArray]:
    """Gauss-Newton on the reprojection errors from the points P (3, n), the pixels ``meas``
    (2, 2, n); returns the points (n, 3), covariances (n, 3, 3), reprojection errors (n, 2) and
    the depths in both cameras (2, n), all new arrays."""
    w = _Scratch(P.shape[1])
    ev, trial, h, h_inv, g, step = w.ev, w.trial, w.h, w.h_inv, w.g, w.step
    ev.update(P, meas, cams).normal(h, g)
    for _ in range(max(0, int(iterations))):
        np.einsum("ijn,jn->in", _inverse_sym3(h, h_inv), g, out=step)
        np.subtract(ev.P, step, out=step)  # the new point
        trial.update(step, meas, cams)
        better = trial.cost <= ev.cost * (1.0 + 1e-9)  # False for NaN; rounding at convergence passes
        moved = np.abs(trial.P - ev.P)
        if better.all():
            ev, trial = trial, ev
        else:
            ev.take(trial, better)
        ev.normal(h, g)
        if not np.any(moved[:, better] > _STEP_TOL * np.abs(ev.P[:, better]).max(initial=1.0)):
            break
    h_inv = np.transpose(_inverse_sym3(h, h_inv), (2, 0, 1))  # (n, 3, 3)
    cov = h_inv * sigma**2
    if cov_ext is not None:
        cov += _extrinsics_part(h_inv, ev, cams, cov_ext)
    err = np.sqrt(ev.res[:, 0] ** 2 + ev.res[:, 1] ** 2).T
    return ev.P.T.copy(), cov, err, ev.xc[:, 2].copy()


def _extrinsics_part(h_inv: NDArray, ev: _Evaluation, cams: _Cameras, cov_ext: NDArray) -> NDArray:
    """``B C_ext B^T`` (n, 3, 3) with ``B = -H^-1 J_right^T d pixels_right / d (dw, dt)``."""
    m = np.transpose(ev.jc[1], (2, 0, 1))  # (n, 2, 3) d pixels_right / d X_right
    rx = (ev.xc[1] - cams.t[:, None]).T  # (n, 3) R X_left
    j_ext = np.concatenate([np.cross(rx[:, None, :], m), m], axis=2)  # rows m^T (-[R X]x), m^T
    j_right = np.transpose(ev.jx[1], (2, 0, 1))  # (n, 2, 3)
    B = -h_inv @ (np.swapaxes(j_right, 1, 2) @ j_ext)  # (n, 3, 6)
    return (B @ cov_ext) @ np.swapaxes(B, 1, 2)


# ---------------------------------------------------------------------------------------------
# one chunk: rays, midpoint, refinement


def _chunk(dl, dr, lp, rp, cams: _Cameras, code, along, out, pixel_sigma, cov_ext, min_angle, iterations) -> None:
    """Triangulate one chunk of m pairs: ray directions ``dl``, ``dr`` (3, m) in the left optical
    frame, from the left optical centre and from the right one; pixels (m, 2). Writes ``code``,
    ``along`` (m,) and the output views ``out`` = (points, covariances, reprojection, ray
    distance, ray angle)."""
    points, covariances, reproj, ray_distance, ray_angle = out
    c = cams.centre
    with np.errstate(divide="ignore", invalid="ignore"):
        # the shortest segment between the rays s dl and c + u dr, its midpoint
        a, b, cc = (np.einsum("in,in->n", p, q) for p, q in ((dl, dl), (dl, dr), (dr, dr)))
        d, e = c @ dl, c @ dr
        inv_denom = 1.0 / (a * cc - b * b)
        s = (cc * d - b * e) * inv_denom
        u = (b * d - a * e) * inv_denom
        p_l = dl * s
        p_r = dr * u
        p_r += c[:, None]
        gap = p_l - p_r
        np.sqrt(np.einsum("in,in->n", gap, gap), out=ray_distance)
        cross = np.cross(dl, dr, axis=0)
        np.arctan2(np.sqrt(np.einsum("in,in->n", cross, cross)), b, out=ray_angle)
        degenerate = np.minimum(ray_angle, np.pi - ray_angle)
        code[(code == _OK) & ~np.isfinite(dl[0] + dl[1] + dr[0] + dr[1] + dr[2])] = _UNDISTORT
        for failed, why in ((~(degenerate >= min_angle), _PARALLEL), (~(s > 0), _DIVERGE_LEFT),
                            (~(u > 0), _DIVERGE_RIGHT)):
            code[failed & (code == _OK)] = why
        for which, signed, norm2 in ((_DIVERGE_LEFT, s, a), (_DIVERGE_RIGHT, u, cc)):
            rows = code == which
            if rows.any():
                along[rows] = signed[rows] * np.sqrt(norm2[rows])
    ok = code == _OK
    everything = bool(ok.all())
    if not everything and not ok.any():
        return
    sel = slice(None) if everything else ok
    start = p_l[:, sel]
    start += p_r[:, sel]
    start *= 0.5
    meas = np.stack([lp[sel].T, rp[sel].T])  # (2 cameras, u/v, k)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # such points are marked invalid
        X, cov, err, depth = _refine(start, meas, cams, pixel_sigma, cov_ext, iterations)
    result = np.zeros(len(X), np.int8)
    for failed, why in ((~(depth[1] > 0), _BEHIND_RIGHT), (~(depth[0] > 0), _BEHIND_LEFT),
                        (~np.isfinite(X.sum(axis=1) + cov.sum(axis=(1, 2))), _NON_FINITE)):
        result[failed] = why
    code[sel] = result
    points[sel], covariances[sel], reproj[sel] = X, cov, err


def triangulate_pixels(R: ArrayLike, t: ArrayLike, left_K: ArrayLike, left_D: ArrayLike, right_K: ArrayLike,
                       right_D: ArrayLike, left_px: ArrayLike, right_px: ArrayLike, pixel_sigma: float = 0.5,
                       extrinsics_cov: Optional[ArrayLike] = None, *, min_angle: float = DEFAULT_MIN_ANGLE,
                       iterations: int = DEFAULT_ITERATIONS) -> BatchLocalization:
    """:func:`triangulate` with the extrinsics ``X_right = R X_left + t`` and each camera's
    ``K`` (3x3) and plumb_bob ``D`` (5) given directly (e.g. from CameraInfo messages).

    ``iterations`` = 0: midpoint only (the covariance and reprojection errors are still those
    at the midpoint)."""
    lp, rp = _pixels(left_px, "left_px"), _pixels(right_px, "right_px")
    if lp.shape != rp.shape:
        raise ValueError(f"left_px and right_px differ in shape: {lp.shape} vs {rp.shape}")
    if not (np.isfinite(pixel_sigma) and pixel_sigma > 0):
        raise ValueError(f"pixel_sigma must be finite and > 0, got {pixel_sigma}")
    if not (np.isfinite(min_angle) and 0 <= min_angle < np.pi / 2):
        raise ValueError(f"min_angle must be in [0, pi/2), got {min_angle}")
    cov_ext = None
    if extrinsics_cov is not None:
        cov_ext = np.asarray(extrinsics_cov, dtype=float)
        if cov_ext.shape != (6, 6) or not np.all(np.isfinite(cov_ext)):
            raise ValueError(f"extrinsics_cov must be a finite 6x6 matrix, got shape {cov_ext.shape}")
    R = np.asarray(R, dtype=float).reshape(3, 3)
    t = np.asarray(t, dtype=float).reshape(3)
    K_l, K_r = np.asarray(left_K, dtype=float).reshape(3, 3), np.asarray(right_K, dtype=float).reshape(3, 3)
    D_l, D_r = np.asarray(left_D, dtype=float).reshape(-1), np.asarray(right_D, dtype=float).reshape(-1)
    for name, d in (("left_D", D_l), ("right_D", D_r)):
        if d.shape != (5,):
            raise ValueError(f"{name} must hold the 5 plumb_bob coefficients, got {d.size}")

    n = len(lp)
    points = np.full((n, 3), np.nan)
    covariances = np.full((n, 3, 3), np.nan)
    reproj = np.full((n, 2), np.nan)
    ray_distance = np.full(n, np.nan)
    ray_angle = np.full(n, np.nan)
    code = np.zeros(n, np.int8)
    along = np.full(n, np.nan)
    if not np.isfinite(R.sum() + t.sum() + K_l.sum() + K_r.sum() + D_l.sum() + D_r.sum()):
        code[:] = _BAD_CAMERAS
    elif n:
        code[~np.isfinite(lp[:, 0] + lp[:, 1])] = _LEFT_PIXEL
        code[(code == _OK) & ~np.isfinite(rp[:, 0] + rp[:, 1])] = _RIGHT_PIXEL
        # rays: from the left optical centre along dl = (xl, yl, 1), from the right one along
        # dr = R^T (xr, yr, 1) (left optical frame)
        dl, dr = np.ones((3, n)), np.ones((3, n))
        dl[:2] = undistort(lp, K_l, D_l).T
        dr[:2] = undistort(rp, K_r, D_r).T
        dr = R.T @ dr
        cams = _Cameras(K_l, D_l, K_r, D_r, R, t)
        for k in range(0, n, _CHUNK):
            c = slice(k, k + _CHUNK)
            _chunk(dl[:, c], dr[:, c], lp[c], rp[c], cams, code[c], along[c],
                   (points[c], covariances[c], reproj[c], ray_distance[c], ray_angle[c]),
                   pixel_sigma, cov_ext, min_angle, iterations)
    valid = code == _OK
    reasons = [""] * n
    if not valid.all():
        for i in np.flatnonzero(~valid):
            reasons[i] = _reason(int(code[i]), float(ray_angle[i]), float(along[i]), min_angle)
        points[~valid] = np.nan
        covariances[~valid] = np.nan
        reproj[~valid] = np.nan
    return BatchLocalization(points, covariances, reproj, ray_distance, ray_angle, valid, reasons)


# ---------------------------------------------------------------------------------------------
# the API on a rig


def triangulate(rig: StereoRigModel, left_ptz: ArrayLike, right_ptz: ArrayLike, left_px: ArrayLike,
                right_px: ArrayLike, pixel_sigma: float = 0.5, extrinsics_cov: Optional[ArrayLike] = None, *,
                min_angle: float = DEFAULT_MIN_ANGLE, iterations: int = DEFAULT_ITERATIONS) -> BatchLocalization:
    """Triangulate N pixel pairs seen at one (pan, tilt, raw zoom) setting per camera.

    ``left_px``, ``right_px``: (N, 2) DISTORTED pixels; ``pixel_sigma``: std of each pixel
    coordinate (px); ``extrinsics_cov``: 6x6 covariance of the left -> right extrinsics (see the
    module docstring for the convention). Rows are invalid (``reasons``) for parallel rays
    (angle < ``min_angle``), diverging rays, a point behind a camera or non-finite input.
    ``iterations``: Gauss-Newton steps after the midpoint (0: midpoint only).
    """
    lq, rq = _setting(left_ptz, "left_ptz"), _setting(right_ptz, "right_ptz")
    bad = [name for name, q in (("left", lq), ("right", rq)) if not np.all(np.isfinite(q[:3]))]
    if bad:
        n = len(_pixels(left_px, "left_px"))
        why = f"non-finite input: the {' and '.join(bad)} PTZ setting is not finite"
        return BatchLocalization(np.full((n, 3), np.nan), np.full((n, 3, 3), np.nan), np.full((n, 2), np.nan),
                                 np.full(n, np.nan), np.full(n, np.nan), np.zeros(n, bool), [why] * n)
    R, t = rig.extrinsics(lq, rq)
    return triangulate_pixels(R, t, setting_camera_matrix(rig.left, lq), rig.left.distortion(lq[2]),
                              setting_camera_matrix(rig.right, rq), rig.right.distortion(rq[2]), left_px, right_px,
                              pixel_sigma, extrinsics_cov, min_angle=min_angle, iterations=iterations)


def localize(rig: StereoRigModel, left_ptz: ArrayLike, right_ptz: ArrayLike, left_px: ArrayLike,
             right_px: ArrayLike, pixel_sigma: float = 0.5, extrinsics_cov: Optional[ArrayLike] = None, *,
             min_angle: float = DEFAULT_MIN_ANGLE, iterations: int = DEFAULT_ITERATIONS) -> Localization:
    """One pixel pair (each (2,)) -> :class:`Localization`; :class:`TriangulationError` saying
    why when there is no valid point."""
    lp, rp = np.asarray(left_px, dtype=float), np.asarray(right_px, dtype=float)
    if lp.shape != (2,) or rp.shape != (2,):
        raise ValueError(f"localize takes one pixel per camera, shape (2,); got {lp.shape} and {rp.shape}")
    batch = triangulate(rig, left_ptz, right_ptz, lp, rp, pixel_sigma, extrinsics_cov, min_angle=min_angle,
                        iterations=iterations)
    return batch.localization(0)
