"""Pixels <-> camera rays for a pinhole camera with plumb_bob distortion, vectorized over points.

:func:`undistort` turns distorted pixels into normalized image coordinates (OpenCV's
``undistortPoints``); :func:`project` maps points to distorted pixels together with the
Jacobian of the pixels with respect to the point, which the triangulation refinement and its
covariance need (same formulas as ``model.camera_model.distort_xy``, differentiated).

:func:`project_components` is the same on separate coordinate arrays (contiguous, faster than
(N, 3) rows), for one camera or several stacked (:class:`Lens`). :func:`project_stacked` is the
same again for points of several cameras in one ``(cameras, xyz, n)`` array, the two image
coordinates handled together in each numpy call (about half the calls of
:func:`project_components`): what the triangulation's refinement uses.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import cv2
import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["Lens", "StackedLens", "Projection", "project", "project_components", "project_stacked", "undistort",
           "UNDISTORT_CRITERIA"]

Array = NDArray[np.float64]

#: Criteria for an accurate :func:`undistort` (``cv2.undistortPointsIter`` until the reprojection
#: error is below 1e-8 px, at most 20 iterations): ~1e-11 in normalized coordinates at the widest
#: zoom, where the default 5 iterations of ``cv2.undistortPoints`` leave up to 1e-5 (0.01 px) at
#: the image corners, at 2-4 times the cost.
UNDISTORT_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 20, 1e-8)


def undistort(pixels: ArrayLike, K: ArrayLike, D: ArrayLike, criteria: Optional[tuple] = None) -> Array:
    """Normalized image coordinates (N, 2) of distorted pixels (N, 2): ``cv2.undistortPoints``, or
    ``cv2.undistortPointsIter`` with ``criteria`` (e.g. :data:`UNDISTORT_CRITERIA`); non-finite
    rows stay NaN."""
    px = np.asarray(pixels, dtype=np.float64).reshape(-1, 2)
    if not len(px):
        return np.empty((0, 2))
    bad = ~np.isfinite(px[:, 0] + px[:, 1])  # (inf + -inf is NaN)
    if bad.any():
        px = np.where(bad[:, None], 0.0, px)
    K = np.asarray(K, dtype=np.float64)
    D = np.asarray(D, dtype=np.float64)
    if criteria is None:
        xy = cv2.undistortPoints(px.reshape(-1, 1, 2), K, D).reshape(-1, 2)
    else:
        xy = cv2.undistortPointsIter(px.reshape(-1, 1, 2), K, D, None, None, criteria).reshape(-1, 2)
    if bad.any():
        xy[bad] = np.nan
    return xy


class Lens(NamedTuple):
    """K and plumb_bob D as coefficients for :func:`project_components`: floats for one camera,
    or (m, 1) arrays for m cameras at once (points then (m, n)); derived factors precomputed."""

    fx: Any
    s: Any
    cx: Any
    fy: Any
    cy: Any
    k1: Any
    k2: Any
    k3: Any
    p1: Any
    p2: Any
    p1x2: Any  # 2 p1
    p2x2: Any
    p1x6: Any
    p2x6: Any
    k1x2: Any  # 2 k1, 4 k2, 6 k3: 2 d radial / d r2 = k1x2 + r2 (k2x4 + r2 k3x6)
    k2x4: Any
    k3x6: Any
    skew: bool  # any s != 0

    @classmethod
    def of(cls, K: ArrayLike, D: ArrayLike) -> "Lens":
        """One camera (K 3x3, D 5 plumb_bob), or several: K (m, 3, 3), D (m, 5)."""
        K = np.asarray(K, dtype=float)
        D = np.asarray(D, dtype=float)
        if K.ndim == 2:
            k = [float(K[0, 0]), float(K[0, 1]), float(K[0, 2]), float(K[1, 1]), float(K[1, 2])]
            d = [float(v) for v in D.reshape(5)]
        else:
            k = [K[:, 0, 0:1], K[:, 0, 1:2], K[:, 0, 2:3], K[:, 1, 1:2], K[:, 1, 2:3]]
            d = [D[:, i:i + 1] for i in range(5)]
        k1, k2, p1, p2, k3 = d
        return cls(*k, k1, k2, k3, p1, p2, 2.0 * p1, 2.0 * p2, 6.0 * p1, 6.0 * p2, 2.0 * k1, 4.0 * k2, 6.0 * k3,
                   bool(np.any(np.asarray(k[1]) != 0.0)))


class Components(NamedTuple):
    """Pixels and their Jacobian w.r.t. the camera-frame point, one array per component."""

    u: Array
    v: Array
    du: Optional[tuple[Array, Array, Array]]  # d u / d (x, y, z)
    dv: Optional[tuple[Array, Array, Array]]  # d v / d (x, y, z)


def project_components(x: Array, y: Array, z: Array, lens: Lens, jacobian: bool = True,
                       out: Optional[tuple[Array, ...]] = None) -> Components:
    """Distorted pixels of camera-frame points given as coordinate arrays (n,) each (or (m, n)
    for the m cameras of a stacked :class:`Lens`).

    ``out``: arrays to write u, v and (with ``jacobian``) du/dx, du/dy, du/dz, dv/dx, dv/dy, dv/dz
    into (views of a caller's buffers: fewer allocations, which for large n cost more than the
    arithmetic)."""
    L = lens
    mul = np.multiply
    if out is None:
        out = tuple(np.empty(np.broadcast_shapes(x.shape, np.shape(L.fx))) for _ in range(8 if jacobian else 2))
    u, v = out[0], out[1]
    iz = 1.0 / z
    xn, yn = x * iz, y * iz
    xn2, yn2, xyn = xn * xn, yn * yn, xn * yn
    r2 = xn2 + yn2
    tmp = np.empty_like(r2)
    radial = r2 * L.k3
    radial += L.k2
    radial *= r2
    radial += L.k1
    radial *= r2
    radial += 1.0
    # u = fx xd + s yd + cx, v = fy yd + cy with xd = xn radial + 2 p1 xn yn + p2 (r2 + 2 xn^2),
    # yd = yn radial + p1 (r2 + 2 yn^2) + 2 p2 xn yn
    mul(xn, radial, out=u)
    u += mul(xyn, L.p1x2, out=tmp)
    mul(xn2, 2.0, out=tmp)
    tmp += r2
    tmp *= L.p2
    u += tmp
    mul(yn, radial, out=v)
    v += mul(xyn, L.p2x2, out=tmp)
    mul(yn2, 2.0, out=tmp)
    tmp += r2
    tmp *= L.p1
    v += tmp
    if L.skew:
        u *= L.fx
        u += mul(v, L.s, out=tmp)
    else:
        u *= L.fx
    u += L.cx
    v *= L.fy
    v += L.cy
    if not jacobian:
        return Components(u, v, None, None)
    ux, uy, uz, vx, vy, vz = out[2:8]
    dr2 = r2 * L.k3x6  # 2 d radial / d r2
    dr2 += L.k2x4
    dr2 *= r2
    dr2 += L.k1x2
    b = xyn * dr2  # d xd / d yn = d yd / d xn
    b += mul(xn, L.p1x2, out=tmp)
    b += mul(yn, L.p2x2, out=tmp)
    a = xn2 * dr2  # d xd / d xn
    a += radial
    a += mul(yn, L.p1x2, out=tmp)
    a += mul(xn, L.p2x6, out=tmp)
    c = mul(yn2, dr2, out=yn2)  # d yd / d yn
    c += radial
    c += mul(yn, L.p1x6, out=tmp)
    c += mul(xn, L.p2x2, out=tmp)
    fxz = mul(iz, L.fx, out=radial)
    mul(a, fxz, out=ux)
    mul(b, fxz, out=uy)
    if L.skew:
        sz = mul(iz, L.s, out=tmp)
        ux += mul(b, sz, out=a)
        uy += mul(c, sz, out=a)
    fyz = mul(iz, L.fy, out=iz)
    mul(b, fyz, out=vx)
    mul(c, fyz, out=vy)
    for dx, dy, dz in ((ux, uy, uz), (vx, vy, vz)):  # d / dz = -(d / dx xn + d / dy yn)
        mul(dx, xn, out=dz)
        dz += mul(dy, yn, out=tmp)
        np.negative(dz, out=dz)
    return Components(u, v, (ux, uy, uz), (vx, vy, vz))


class StackedLens(NamedTuple):
    """K and plumb_bob D of c cameras as coefficient arrays shaped for :func:`project_stacked`:
    (k, c, 1) for k numbers per camera, broadcast against (k, c, n) arrays."""

    f: Array  # (2, c, 1) fx, fy
    centre: Array  # (2, c, 1) cx, cy
    s: Array  # (c, 1) skew
    poly: Array  # (2, c, 1) k3, 6 k3 \
    poly1: Array  # (2, c, 1) k2, 4 k2  | Horner: (radial - 1) / r2 and 2 d radial / d r2 at once
    poly0: Array  # (2, c, 1) k1, 2 k1 /
    tangential: Array  # (2, c, 1) p2, p1: the factors of r2 + 2 xn^2 in xd, of r2 + 2 yn^2 in yd
    mixed: Array  # (2, c, 1) 2 p1, 2 p2: the factors of xn yn in xd, yd
    linear_x: Array  # (3, c, 1), the terms of (a, b, c) = d (xd, yd) / d (xn, yn) (see project_stacked)
    linear_y: Array  # linear in (xn, yn): linear_x xn + linear_y yn
    skew: bool  # any s != 0

    @classmethod
    def of(cls, K: ArrayLike, D: ArrayLike) -> "StackedLens":
        """c cameras: K (c, 3, 3), D (c, 5) plumb_bob."""
        K = np.asarray(K, dtype=float).reshape(-1, 3, 3)
        params = np.concatenate([K[:, (0, 1, 0, 1), (0, 1, 2, 2)], np.asarray(D, dtype=float).reshape(-1, 5)], axis=1)
        c = (_STACKED_COEFFICIENTS @ params.T)[..., None]  # (20, c, 1)
        return cls(c[0:2], c[2:4], K[:, 0, 1:2], c[4:6], c[6:8], c[8:10], c[10:12], c[12:14], c[14:17], c[17:20],
                   bool(np.any(K[:, 0, 1] != 0.0)))


def _stacked_coefficients() -> Array:
    """The coefficients of :class:`StackedLens`, rows in field order, as linear combinations of
    (fx, fy, cx, cy, k1, k2, p1, p2, k3). With (xd, yd) the distorted normalized point:
    a = d xd / d xn = radial + xn^2 dr2 + 6 p2 xn + 2 p1 yn, b = d xd / d yn = d yd / d xn =
    xn yn dr2 + 2 p1 xn + 2 p2 yn, c = d yd / d yn = radial + yn^2 dr2 + 2 p2 xn + 6 p1 yn."""
    names = ("fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2", "k3")
    rows = ["fx", "fy", "cx", "cy", "k3", "6 k3", "k2", "4 k2", "k1", "2 k1", "p2", "p1", "2 p1", "2 p2",
            "6 p2", "2 p1", "2 p2", "2 p1", "2 p2", "6 p1"]  # f, centre, poly, poly1, poly0, tangential, mixed,
    #                                                           linear_x (a, b, c), linear_y (a, b, c)
    m = np.zeros((len(rows), len(names)))
    for i, row in enumerate(rows):
        factor, _, name = row.rpartition(" ")
        m[i, names.index(name)] = float(factor or 1.0)
    return m


_STACKED_COEFFICIENTS = _stacked_coefficients()


def project_stacked(xc: Array, lens: StackedLens, out: Array, jac: Optional[Array] = None,
                    offset: Optional[Array] = None) -> Array:
    """Distorted pixels of camera-frame points ``xc`` (3, c, n) (x, y, z of the points of c
    cameras, camera k with ``lens``'s coefficients k) into ``out`` (2, c, n) (u, v); with ``jac``
    (2, 3, c, n), also the Jacobian d (u, v) / d (x, y, z) into it. ``offset`` (2, c, n), when
    given, replaces the principal point: e.g. ``centre - measured pixels`` gives the residuals.
    Same formulas as :func:`project_components`; returns ``out``.

    The layout puts the coordinate axis first so that (c, n) arrays broadcast against (k, c, n)
    ones along the outer axis (numpy is slow when a middle axis broadcasts)."""
    L = lens
    mul = np.multiply
    iz = 1.0 / xc[2]
    xy = mul(xc[:2], iz)  # (2, c, n) xn, yn
    sq = mul(xy, xy)
    r2 = np.add(sq[0], sq[1])
    xyn = mul(xy[0], xy[1])
    poly = mul(L.poly, r2)  # Horner, both rows at once: row 0 (radial - 1) / r2, row 1 dr2 = 2 d radial / d r2
    poly += L.poly1
    poly *= r2
    poly += L.poly0
    radial = mul(poly[0], r2)
    radial += 1.0
    # (xd, yd) = (xn, yn) radial + (p2, p1) (r2 + 2 (xn^2, yn^2)) + (2 p1, 2 p2) xn yn
    dist = mul(xy, radial)
    tmp = mul(sq, 2.0)
    tmp += r2
    tmp *= L.tangential
    dist += tmp
    dist += mul(L.mixed, xyn, out=tmp)
    # u = fx xd + s yd + cx, v = fy yd + cy
    mul(dist, L.f, out=out)
    if L.skew:
        out[0] += mul(dist[1], L.s, out=tmp[0])
    out += L.centre if offset is None else offset
    if jac is None:
        return out
    dr2 = poly[1]
    # abc = (a, b, c): d (xd, yd) / d (xn, yn) = [[a, b], [b, c]] = radial I + (xn^2, xn yn, yn^2) dr2
    # + linear_x xn + linear_y yn
    abc = mul(L.linear_x, xy[0])
    abc += mul(L.linear_y, xy[1])
    abc[0::2] += mul(sq, dr2, out=tmp)
    abc[0::2] += radial
    abc[1] += mul(xyn, dr2, out=xyn)
    # d u / d (x, y) = (fx (a, b) + s (b, c)) / z, d v / d (x, y) = fy (b, c) / z
    fz = mul(L.f, iz, out=dist)  # (2, c, n)
    mul(abc[0:2], fz[0], out=jac[0, :2])
    mul(abc[1:3], fz[1], out=jac[1, :2])
    if L.skew:
        jac[0, :2] += mul(abc[1:3], mul(iz, L.s, out=iz), out=tmp)
    # d / dz = -(xn d / dx + yn d / dy)
    dz = jac[:, 2]
    mul(jac[:, 0], xy[0], out=dz)
    dz += mul(jac[:, 1], xy[1], out=tmp)
    np.negative(dz, out=dz)
    return out


class Projection(NamedTuple):
    """Result of :func:`project` for N points."""

    pixels: Array  # (N, 2) distorted pixels
    depth: Array  # (N,) z in the camera frame
    d_pixels_d_camera: Optional[Array]  # (N, 2, 3) w.r.t. the point in the CAMERA frame
    d_pixels_d_point: Optional[Array]  # (N, 2, 3) w.r.t. the point in the input frame
    camera_points: Array  # (N, 3) the points in the camera frame


def project(points: ArrayLike, K: ArrayLike, D: ArrayLike, R: Optional[ArrayLike] = None,
            t: Optional[ArrayLike] = None, jacobian: bool = True) -> Projection:
    """Distorted pixels of points (N, 3) given in a frame with ``X_cam = R X + t`` (default
    identity), and their Jacobians. Points at z <= 0 give meaningless (mirrored) pixels: check
    ``depth``."""
    X = np.asarray(points, dtype=float).reshape(-1, 3)
    K = np.asarray(K, dtype=float)
    x_c = X if R is None else X @ np.asarray(R, dtype=float).T + np.asarray(t, dtype=float)
    x, y, z = (np.ascontiguousarray(x_c[:, i]) for i in range(3))
    p = project_components(x, y, z, Lens.of(K, D), jacobian)
    uv = np.stack([p.u, p.v], axis=1)
    if not jacobian:
        return Projection(uv, z, None, None, x_c)
    j = np.stack([np.stack(p.du, axis=1), np.stack(p.dv, axis=1)], axis=1)
    return Projection(uv, z, j, j if R is None else j @ np.asarray(R, dtype=float), x_c)
