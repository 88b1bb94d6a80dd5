"""Stereo triangulation of pixel pairs of two PTZ cameras, with covariance.

Per pair: both pixels are undistorted (``cv2.undistortPoints``) into rays of their optical
frames; the initial point is the midpoint of the shortest segment between the rays (closed
form), then a few Gauss-Newton steps (3 unknowns per point, all points at once) minimize the two
reprojection errors in distorted pixels. The covariance is ``(J^T J)^-1 pixel_sigma^2`` with
``J`` the Jacobian of the 4 pixel coordinates w.r.t. the point (at the last linearization point:
with two or more steps the one before the last step, which moves the point by second-order
amounts; see :func:`_refine`), plus, when given, the propagation of the extrinsics' covariance
through the solution (implicit function theorem): ``B C_ext B^T``,
``B = -(J^T J)^-1 J_right^T d pixels_right / d extrinsics``.

Extrinsics perturbation convention (for ``extrinsics_cov``, 6x6): ``(dw, dt)`` with
``R -> expm([dw]x) R`` (rotation vector in rad, in the right optical frame) and ``t -> t + dt``
(m), for ``X_right = R X_left + t``. To first order ``dw`` is the change of the rotation vector
of ``R`` when ``R`` is near the identity.

Points are returned in the LEFT optical frame (x right, y down, z forward).

Speed (``bench/bench_stereo.py``: faster than ``cv2.undistortPoints`` + ``cv2.triangulatePoints``
from 1e3 points on): the points go in equal chunks of at most 2048, both cameras stacked in every
array operation (:func:`.projection.project_stacked`), the refinement writing into buffers that
each thread keeps between calls (fresh memory pages cost more than the arithmetic on them), the
3x3 inverses by adjugate, the last residuals without their Jacobian. About 200 numpy calls per
chunk remain, ~0.3 ms whatever the chunk's size: below a few hundred points OpenCV is faster.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..corrections.apply import setting_camera_matrix
from ..model.stereo_rig import StereoRigModel
from .projection import StackedLens, project_stacked, undistort

__all__ = ["TriangulationError", "Localization", "BatchLocalization", "triangulate", "triangulate_pixels",
           "localize"]

DEFAULT_MIN_ANGLE = 1e-4  # rad
DEFAULT_ITERATIONS = 2  # Gauss-Newton steps: a 3rd moves a point by < 1e-7 of its standard deviation
_STEP_TOL = 1e-12  # relative step size at which the refinement stops early
_CHUNK = 2048  # points per chunk at most: the temporaries stay below 128 KiB (glibc maps larger ones
#               fresh from the OS, page faults every time) and the working set in the L2 cache


def _chunks(n: int) -> list[slice]:
    """n points in chunks of equal size (at most ``_CHUNK``; few sizes, so workspaces are reused)."""
    if n == 0:
        return []
    size = -(-n // -(-n // _CHUNK))
    return [slice(k, min(k + size, n)) for k in range(0, n, size)]

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

def _adjugate_terms() -> NDArray[np.intp]:
    """Indices into a flattened 3x3 matrix ``h`` of the four factors of each adjugate entry:
    ``adj[k, l] = h[k+1, l+1] h[k+2, l+2] - h[k+1, l+2] h[k+2, l+1]`` (indices mod 3), (4, 9)."""
    idx = np.empty((4, 3, 3), np.intp)
    for k in range(3):
        for l in range(3):
            k1, k2, l1, l2 = (k + 1) % 3, (k + 2) % 3, (l + 1) % 3, (l + 2) % 3
            idx[:, k, l] = (3 * k1 + l1, 3 * k2 + l2, 3 * k1 + l2, 3 * k2 + l1)
    return idx.reshape(4, 9)


_ADJUGATE = _adjugate_terms()


def _inverse_sym3(h: NDArray[np.float64], out: NDArray[np.float64]) -> NDArray[np.float64]:
    """Inverses (3, 3, n) of 3x3 matrices (3, 3, n, contiguous) into ``out`` (contiguous), by
    the adjugate (NaN/inf where singular)."""
    f = np.take(h.reshape(9, -1), _ADJUGATE, axis=0)  # (4, 9, n)
    adj = out.reshape(9, -1)
    np.multiply(f[0], f[1], out=adj)
    adj -= np.multiply(f[2], f[3], out=f[0])
    out *= 1.0 / np.einsum("in,in->n", h[0], out[0])  # 1 / determinant
    return out


class _Cameras:
    """The constants of a triangulation, both cameras stacked (index 0 left, 1 right)."""

    def __init__(self, K_l, D_l, K_r, D_r, R, t) -> None:
        self.lens = StackedLens.of((K_l, K_r), (D_l, D_r))
        self.R, self.t = R, t
        self.RT = np.ascontiguousarray(R.T)
        self.centre = -self.RT @ t  # the right optical centre in the left optical frame
        rt = np.zeros((3, 2, 4))  # left optical (homogeneous) -> (x, y, z) of both camera frames
        rt[(0, 1, 2), 0, (0, 1, 2)] = 1.0
        rt[:, 1, :3], rt[:, 1, 3] = R, t
        self.transform = rt.reshape(6, 4)


class _Evaluation:
    """At points ``P`` (4, m) (homogeneous, left optical frame): the points in both camera frames
    ``xc`` (xyz, camera, m), the reprojection residuals ``res`` (u/v, camera, m), their
    Jacobians ``jac`` (u/v, xyz, 3, m) (index 0 and 1 on the third axis: left and right camera
    w.r.t. the point in their own frame, 2: right w.r.t. the point in the left frame) and the
    ``cost`` (m,)."""

    FIELDS = ("P", "xc", "res", "jac", "cost")

    def __init__(self, m: int) -> None:
        self.P = np.ones((4, m))
        self.xc = np.empty((3, 2, m))
        self.res = np.empty((2, 2, m))
        self.jac = np.empty((2, 3, 3, m))
        self.cost = np.empty(m)

    @property
    def jx(self) -> NDArray[np.float64]:
        """d residuals / d point in the left frame (u/v, xyz, camera, m), a view."""
        return self.jac[:, :, 0::2]

    def update(self, cams: _Cameras, offset: NDArray, jacobian: bool = True) -> "_Evaluation":
        """Everything at the current ``P`` (``jac`` only with ``jacobian``); ``offset`` (u/v,
        camera, m): the principal points less the measured pixels."""
        np.matmul(cams.transform, self.P, out=self.xc.reshape(6, -1))
        project_stacked(self.xc, cams.lens, self.res, self.jac[:, :, :2] if jacobian else None, offset=offset)
        if jacobian:
            np.matmul(cams.RT, self.jac[:, :, 1], out=self.jac[:, :, 2])  # d / d X_left = d / d X_right @ R
        np.einsum("rcn,rcn->n", self.res, self.res, out=self.cost)
        return self

    def take(self, other: "_Evaluation", mask: NDArray[np.bool_], fields: tuple[str, ...] = FIELDS) -> None:
        """Replace the points where ``mask`` by ``other``'s."""
        for name in fields:
            np.copyto(getattr(self, name), getattr(other, name), where=mask)

    def normal(self, h: NDArray, g: NDArray) -> None:
        """``J^T J`` into h (3, 3, m) and ``J^T r`` into g (3, m)."""
        jx = self.jx
        np.einsum("rkcn,rlcn->kln", jx, jx, out=h)
        np.einsum("rkcn,rcn->kn", jx, self.res, out=g)


class _Workspace:
    """The buffers of the refinement of m points: two evaluations (current, trial) and the normal
    equations. Kept per thread and size (:func:`_workspace`) and reused: with numpy, fresh memory
    (page faults) costs more than the arithmetic on it."""

    def __init__(self, m: int) -> None:
        self.ev, self.trial = _Evaluation(m), _Evaluation(m)
        self.h, self.h_inv = np.empty((3, 3, m)), np.empty((3, 3, m))
        self.g, self.step = np.empty((3, m)), np.empty((3, m))


_local = threading.local()
_WORKSPACES = 3  # sizes kept per thread: the chunk size, a remainder, one more


def _workspace(m: int) -> _Workspace:
    """This thread's workspace for m points (the least recently used size dropped beyond
    ``_WORKSPACES``)."""
    cache = getattr(_local, "workspaces", None)
    if cache is None:
        cache = _local.workspaces = {}
    ws = cache.pop(m, None) or _Workspace(m)
    cache[m] = ws  # most recent last
    while len(cache) > _WORKSPACES:
        del cache[next(iter(cache))]
    return ws


def _refine(ws: _Workspace, cams: _Cameras, offset: NDArray, iterations: int,
            covariance: Callable[[_Evaluation, NDArray], NDArray]) -> tuple[_Evaluation, NDArray]:
    """Gauss-Newton on the reprojection errors from the points in ``ws.ev.P`` (``offset``: see
    :meth:`_Evaluation.update`); returns the evaluation at the solution and
    ``covariance(evaluation, (J^T J)^-1)`` at the last linearization point (``ws.h_inv`` then
    still holding that ``(J^T J)^-1``, (3, 3, m)).

    With two or more steps, the last linearization point is the one before the last step: that
    step moves a point by second-order amounts (on the bench's data < 4e-4 of its standard
    deviation, the covariance by < 3e-5 of itself), and the residuals at the new point then need
    no Jacobian, a third of an iteration saved. (With one step, the midpoint would be the last
    linearization point, its covariance off by up to 8 %: the Jacobian is evaluated after it.)"""
    ev, trial, h, h_inv, g, step = ws.ev, ws.trial, ws.h, ws.h_inv, ws.g, ws.step
    ev.update(cams, offset).normal(h, g)
    _inverse_sym3(h, h_inv)
    for k in range(max(0, int(iterations))):
        last = k + 1 == iterations and k > 0
        if last:
            cov = covariance(ev, h_inv)
        np.einsum("ijn,jn->in", h_inv, g, out=step)
        np.subtract(ev.P[:3], step, out=trial.P[:3])  # the new point
        trial.update(cams, offset, jacobian=not last)
        better = trial.cost <= ev.cost * (1.0 + 1e-9)  # False for NaN; rounding at convergence passes
        if better.all():
            ev, trial = trial, ev
            moved, kept = step, ev.P[:3]
        else:
            ev.take(trial, better, ("P", "xc", "res", "cost") if last else _Evaluation.FIELDS)
            moved, kept = step[:, better], ev.P[:3, better]
        if last:
            return ev, cov
        ev.normal(h, g)
        _inverse_sym3(h, h_inv)
        if not np.abs(moved).max(initial=0.0) > _STEP_TOL * np.abs(kept).max(initial=1.0):
            break
    return ev, covariance(ev, h_inv)


def _covariance(ev: _Evaluation, h_inv: NDArray, cams: _Cameras, pixel_sigma: float, cov_ext: Optional[NDArray],
                out: Optional[NDArray]) -> NDArray:
    """``pixel_sigma^2 (J^T J)^-1`` (plus the extrinsics' part with ``cov_ext``) at the points of
    ``ev``, (m, 3, 3), into ``out`` when given; ``h_inv``: ``(J^T J)^-1`` (3, 3, m)."""
    h_inv = np.transpose(h_inv, (2, 0, 1))
    cov = np.multiply(h_inv, pixel_sigma**2, out=out)
    if cov_ext is not None:
        cov += _extrinsics_part(h_inv, ev, cams, cov_ext)
    return cov


def _extrinsics_part(h_inv: NDArray, ev: _Evaluation, cams: _Cameras, cov_ext: NDArray) -> NDArray:
    """``B C_ext B^T`` (m, 3, 3) with ``B = -H^-1 J_right^T d pixels_right / d (dw, dt)``;
    ``h_inv`` (m, 3, 3)."""
    m = np.transpose(ev.jac[:, :, 1], (2, 0, 1))  # (m, 2, 3) d pixels_right / d X_right
    rx = (ev.xc[:, 1] - cams.t[:, None]).T  # (m, 3) R X_left
    j_ext = np.concatenate([np.cross(rx[:, None, :], m), m], axis=2)  # rows m^T (-[R X]x), m^T
    j_right = np.transpose(ev.jac[:, :, 2], (2, 0, 1))  # (m, 2, 3)
    B = -h_inv @ (np.swapaxes(j_right, 1, 2) @ j_ext)  # (m, 3, 6)
    return (B @ cov_ext) @ np.swapaxes(B, 1, 2)


# ---------------------------------------------------------------------------------------------
# one chunk: rays, midpoint, refinement


def _closest(rays: NDArray, centre: NDArray, ray_distance: NDArray, ray_angle: NDArray
             ) -> tuple[NDArray, NDArray, NDArray]:
    """The shortest segments between the rays ``s dl`` and ``centre + u dr``, ``rays`` (xyz,
    camera, m) = (dl, dr): writes ``ray_distance`` and ``ray_angle`` (m,); returns their midpoints
    (3, m), ``(s, u)`` (2, m) and the squared ray lengths (2, m)."""
    dl, dr = rays[:, 0], rays[:, 1]
    norm2 = np.einsum("icn,icn->cn", rays, rays)  # dl.dl, dr.dr
    b = np.einsum("in,in->n", dl, dr)
    de = np.einsum("i,icn->cn", centre, rays)  # centre.dl, centre.dr
    cross2 = norm2[0] * norm2[1]  # |dl x dr|^2 (Lagrange)
    cross2 -= b * b
    np.arctan2(np.sqrt(np.maximum(cross2, 0.0)), b, out=ray_angle)
    su = np.multiply(norm2[::-1], de[0])  # s = (|dr|^2 d - b e) / cross2, u = (b d - |dl|^2 e) / cross2
    su[0] -= b * de[1]
    su[1] = b * de[0] - norm2[0] * de[1]
    su /= cross2
    feet = np.multiply(rays, su)  # (xyz, camera, m)
    feet[:, 1] += centre[:, None]
    gap = feet[:, 0] - feet[:, 1]
    np.sqrt(np.einsum("in,in->n", gap, gap), out=ray_distance)
    mid = np.add(feet[:, 0], feet[:, 1], out=gap)
    mid *= 0.5
    return mid, su, norm2


def _ray_codes(code: NDArray, rays: NDArray, su: NDArray, norm2: NDArray, ray_angle: NDArray,
               along: NDArray, min_angle: float) -> NDArray[np.bool_]:
    """Mark rows without a midpoint in front of both cameras in ``code`` (and the distance
    ``along`` the ray for diverging ones); returns the rows still valid."""
    with np.errstate(invalid="ignore"):
        ok = (su[0] > 0) & (su[1] > 0) & (ray_angle >= min_angle) & (ray_angle <= np.pi - min_angle)
        if ok.all():
            return ok
        degenerate = np.minimum(ray_angle, np.pi - ray_angle)
        code[(code == _OK) & ~np.isfinite(rays.sum(axis=(0, 1)))] = _UNDISTORT
        for failed, why in ((~(degenerate >= min_angle), _PARALLEL), (~(su[0] > 0), _DIVERGE_LEFT),
                            (~(su[1] > 0), _DIVERGE_RIGHT)):
            code[failed & (code == _OK)] = why
        for which, cam in ((_DIVERGE_LEFT, 0), (_DIVERGE_RIGHT, 1)):
            rows = code == which
            if rows.any():
                along[rows] = su[cam, rows] * np.sqrt(norm2[cam, rows])
    return code == _OK


def _chunk(rays, offset, cams: _Cameras, code, along, out, pixel_sigma, cov_ext, min_angle, iterations) -> None:
    """Triangulate one chunk of m pairs: ray directions ``rays`` (xyz, camera, m) in the left
    optical frame, from the left optical centre and from the right one; ``offset`` (u/v, camera,
    m): the principal points less the pixels. Writes ``code``, ``along`` (m,) and the output views ``out`` = (points,
    covariances, reprojection, ray distance, ray angle)."""
    points, covariances, reproj, ray_distance, ray_angle = out
    with np.errstate(divide="ignore", invalid="ignore"):
        mid, su, norm2 = _closest(rays, cams.centre, ray_distance, ray_angle)
    ok = _ray_codes(code, rays, su, norm2, ray_angle, along, min_angle)
    everything = bool(ok.all())
    if not everything and not ok.any():
        return
    sel = slice(None) if everything else ok
    ws = _workspace(len(ok) if everything else int(ok.sum()))
    ws.ev.P[:3] = mid[:, sel]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # such points are marked invalid
        ev, cov = _refine(ws, cams, offset if everything else offset[..., ok], iterations,
                          lambda e, h_inv: _covariance(e, h_inv, cams, pixel_sigma, cov_ext,
                                                       covariances[sel] if everything else None))
        err = np.sqrt(np.einsum("rcn,rcn->nc", ev.res, ev.res), out=reproj[sel] if everything else None)
        finite = np.isfinite(ev.P[:3].sum(axis=0) + ws.h_inv.sum(axis=(0, 1)))
        if cov_ext is not None:
            finite &= np.isfinite(cov.sum(axis=(1, 2)))
        depth = ev.xc[2]
        fine = finite & (depth[0] > 0) & (depth[1] > 0)
    if everything:
        points[:] = ev.P[:3].T
    else:
        points[sel], covariances[sel], reproj[sel] = ev.P[:3].T, cov, err
    if not fine.all():
        result = np.zeros(len(fine), np.int8)
        for failed, why in ((~(depth[1] > 0), _BEHIND_RIGHT), (~(depth[0] > 0), _BEHIND_LEFT), (~finite, _NON_FINITE)):
            result[failed] = why
        code[sel] = result


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
    points = np.empty((n, 3))  # the invalid rows set to NaN at the end
    covariances = np.empty((n, 3, 3))
    reproj = np.empty((n, 2))
    ray_distance = np.full(n, np.nan)
    ray_angle = np.full(n, np.nan)
    code = np.zeros(n, np.int8)
    along = np.full(n, np.nan)
    if not np.isfinite(R.sum() + t.sum() + K_l.sum() + K_r.sum() + D_l.sum() + D_r.sum()):
        code[:] = _BAD_CAMERAS
    elif n:
        if not np.isfinite(lp.sum() + rp.sum()):
            code[~np.isfinite(lp[:, 0] + lp[:, 1])] = _LEFT_PIXEL
            code[(code == _OK) & ~np.isfinite(rp[:, 0] + rp[:, 1])] = _RIGHT_PIXEL
        # rays: from the left optical centre along dl = (xl, yl, 1), from the right one along
        # dr = R^T (xr, yr, 1) (left optical frame); rays (xyz, camera, n), pixels (u/v, camera, n)
        rays = np.empty((3, 2, n))
        rays[:2, 0] = undistort(lp, K_l, D_l).T
        rays[2, 0] = 1.0
        np.matmul(R.T[:, :2], undistort(rp, K_r, D_r).T, out=rays[:, 1])
        rays[:, 1] += R.T[:, 2:3]
        cams = _Cameras(K_l, D_l, K_r, D_r, R, t)
        offset = cams.lens.centre - np.stack([lp.T, rp.T], axis=1)  # residuals = f (xd, yd) + offset
        for c in _chunks(n):
            _chunk(rays[..., c], offset[..., c], cams, code[c], along[c],
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
