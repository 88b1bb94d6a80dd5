"""Ray-casting renderer: the image of a scene of planar targets seen by a distorted pinhole camera.

For every supersample of every pixel that may see a target, the pixel is undistorted to a
normalized ray (plumb_bob model, Newton iterations solved exactly on a grid every ``grid_step`` px
and interpolated bilinearly inside the grid cells: < 0.004 px error even in the corners of a
k1 = -0.3 wide-angle image), intersected with every target plane (a homography per target), the
piecewise-constant texture is averaged exactly over an axis-aligned box bounding the sample's
footprint (a centrally symmetric prefilter: edges and corners do not move), and the nearest hit is
composited over the background. The supersampled image is convolved with a Gaussian lens PSF and
area-averaged down to pixels, then sensor noise is added. Only grid cells whose rays can hit a
target (plus the PSF margin) are ray cast; the rest of the image is background.

Pixel convention (OpenCV): pixel ``(col, row)`` has its centre at image coordinates ``(col, row)``.
Pose convention: ``X_world = R @ X_optical + t`` (world_from_optical).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Optional, Sequence

import cv2
import numpy as np

from ..model.camera_model import distort_xy
from .targets import PlacedTarget, Scene, Target, Texture

__all__ = [
    "ImageNoise",
    "RenderOptions",
    "distort_normalized",
    "undistort_normalized",
    "project_points",
    "render",
    "look_at",
]


@dataclass(frozen=True)
class ImageNoise:
    """Sensor noise: per-pixel Gaussian with variance ``read_noise**2 + shot_noise * level``."""

    read_noise: float = 0.0  # DN (standard deviation)
    shot_noise: float = 0.0  # DN of variance per DN of signal (1 / conversion gain)

    @property
    def enabled(self) -> bool:
        """True if any noise is added."""
        return self.read_noise > 0.0 or self.shot_noise > 0.0


@dataclass(frozen=True)
class RenderOptions:
    """Quality settings of the renderer."""

    supersample: int = 2  # samples per pixel along each axis
    psf_sigma: float = 0.8  # Gaussian lens blur (standard deviation), px (0 = none)
    grid_step: int = 4  # px between exact undistortion nodes
    texture_filter: str = "box"  # "box": exact area average over the sample footprint; "nearest"


def distort_normalized(x: np.ndarray, y: np.ndarray, D: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Apply plumb_bob distortion ``(k1, k2, p1, p2, k3)`` (missing terms 0) to normalized coordinates."""
    return distort_xy(x, y, _dist5(D))


def undistort_normalized(
    xd: np.ndarray, yd: np.ndarray, D: Sequence[float], tol: float = 1e-13, max_iter: int = 30
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Invert plumb_bob distortion by Newton iterations (float64).

    Returns ``(x, y, ok)``; ``ok`` is False where the iteration did not converge or the solution
    lies beyond the distortion model's monotone range (those rays are not valid).
    """
    k1, k2, p1, p2, k3 = _dist5(D)
    xd = np.asarray(xd, dtype=float)
    yd = np.asarray(yd, dtype=float)
    x, y = xd.copy(), yd.copy()
    for _ in range(max_iter):
        r2 = x * x + y * y
        radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
        dradial = k1 + r2 * (2.0 * k2 + 3.0 * k3 * r2)  # d radial / d r2
        ex = x * radial + 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x) - xd
        ey = y * radial + p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y - yd
        j11 = radial + 2.0 * x * x * dradial + 2.0 * p1 * y + 6.0 * p2 * x
        j12 = 2.0 * x * y * dradial + 2.0 * p1 * x + 2.0 * p2 * y
        j22 = radial + 2.0 * y * y * dradial + 6.0 * p1 * y + 2.0 * p2 * x
        det = j11 * j22 - j12 * j12
        with np.errstate(divide="ignore", invalid="ignore"):
            dx = (j22 * ex - j12 * ey) / det
            dy = (j11 * ey - j12 * ex) / det
        x = x - dx
        y = y - dy
        if np.all(np.abs(dx) + np.abs(dy) < tol) or not np.all(np.isfinite(x)):
            break
    r2 = x * x + y * y
    radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
    # d(r * radial)/dr > 0: still on the monotone branch of the radial distortion
    slope = radial + 2.0 * r2 * (k1 + r2 * (2.0 * k2 + 3.0 * k3 * r2))
    xr, yr = distort_normalized(x, y, D)
    ok = (
        np.isfinite(x) & np.isfinite(y) & (slope > 0.0)
        & (np.abs(xr - xd) + np.abs(yr - yd) < 1e-9)
    )
    return x, y, ok


def project_points(points_world: np.ndarray, K: np.ndarray, D: Sequence[float],
                   R: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project world points with pose world_from_optical ``(R, t)``.

    Returns ``(uv (N, 2), z (N,))`` with ``z`` the depth in the optical frame (uv is meaningless
    where ``z <= 0``). Same maths as ``cv2.projectPoints``.
    """
    pc = (np.asarray(points_world, dtype=float) - t) @ R
    z = pc[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        x, y = pc[:, 0] / z, pc[:, 1] / z
    xd, yd = distort_normalized(x, y, D)
    uv = np.stack([K[0, 0] * xd + K[0, 1] * yd + K[0, 2], K[1, 1] * yd + K[1, 2]], axis=1)
    return uv, z


def look_at(eye: Sequence[float], target: Sequence[float],
            up: Sequence[float] = (0.0, 0.0, 1.0)) -> tuple[np.ndarray, np.ndarray]:
    """Pose world_from_optical ``(R, t)`` of a camera at ``eye`` looking at ``target``.

    The optical x axis is horizontal (perpendicular to ``up``), y points down, z at the target.
    """
    eye = np.asarray(eye, dtype=float)
    z = np.asarray(target, dtype=float) - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, np.asarray(up, dtype=float))
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return np.column_stack([x, y, z]), eye


def _dist5(D: Sequence[float]) -> tuple[float, float, float, float, float]:
    d = np.zeros(5)
    dd = np.asarray(D, dtype=float).ravel()[:5]
    d[: dd.size] = dd
    return tuple(float(v) for v in d)  # type: ignore[return-value]


@dataclass
class _Prepared:
    """A target expressed for ray casting in one camera: homography and texture in DN."""

    H: np.ndarray  # (3, 3) normalized ray (x, y, 1) -> ~ (u, v, 1) target plane
    normal: np.ndarray  # (3,) target z axis in the optical frame
    tex: np.ndarray  # (h, w) float32 front-side levels, DN
    origin: tuple[float, float]
    texel: float
    back: float


@lru_cache(maxsize=64)
def _texture(target: Target) -> Texture:
    return target.texture()


def _prepare(placed: PlacedTarget, R: np.ndarray, t: np.ndarray) -> Optional[_Prepared]:
    R_ct = R.T @ placed.R
    t_ct = R.T @ (placed.t - t)
    M = np.column_stack([R_ct[:, 0], R_ct[:, 1], t_ct])
    if abs(np.linalg.det(M)) < 1e-12 * max(1.0, np.abs(M).max() ** 3):
        return None  # camera in the target plane: sees it edge-on
    texture = _texture(placed.target)
    levels = placed.black + (placed.white - placed.black) * texture.image
    return _Prepared(np.linalg.inv(M), R_ct[:, 2], levels.astype(np.float32),
                     texture.origin, texture.texel, placed.back)


def _cast_into(p: _Prepared, x: np.ndarray, y: np.ndarray, au: np.ndarray, av: np.ndarray,
               out: np.ndarray, best: np.ndarray, texture_filter: str) -> None:
    """Composite target ``p`` seen along rays ``(x, y, 1)`` into ``out`` where it is nearest.

    ``au, av`` are the half-widths (texels) of the sample footprint's bounding box in texture
    space. With the "box" filter a sample is the exact mean of the piecewise-constant texture
    over that box (capped at one texel): a centrally symmetric prefilter, so edges and corners
    keep their exact positions. ``out`` and ``best`` (1 / depth of the nearest hit) are updated
    in place.
    """
    H = p.H.astype(np.float32)
    s = np.float32(1.0 / p.texel)
    th, tw = p.tex.shape
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        w = H[2, 0] * x + H[2, 1] * y + H[2, 2]  # = 1 / depth (> 0 in front of the camera)
        inv = s / w
        # texel coordinates (texel k spans [k, k + 1))
        u = (H[0, 0] * x + H[0, 1] * y + (H[0, 2] - np.float32(p.origin[0]) * w)) * inv
        v = (H[1, 0] * x + H[1, 1] * y + (H[1, 2] - np.float32(p.origin[1]) * w)) * inv
        hit = w > best
        hit &= u >= 0
        hit &= v >= 0
        hit &= u < tw
        hit &= v < th
    if not hit.any():
        return
    tex = p.tex.ravel()
    with np.errstate(invalid="ignore"):
        if texture_filter == "box":
            cu = np.floor(u + au)
            cv = np.floor(v + av)
            fu = np.clip((u + au - cu) / (2 * au), 0, 1)
            fv = np.clip((v + av - cv) / (2 * av), 0, 1)
            c1 = np.clip(cu, 0, tw - 1).astype(np.int32)
            r1 = np.clip(cv, 0, th - 1).astype(np.int32)
            c0 = np.maximum(c1 - 1, 0)
            i11 = r1 * tw
            i01 = np.maximum(i11 - tw, 0)
            i10 = i11 + c0
            i11 += c1
            i00 = i01 + c0
            i01 += c1
            top = np.take(tex, i00)
            top += (np.take(tex, i01) - top) * fu
            val = np.take(tex, i10)
            val += (np.take(tex, i11) - val) * fu
            val += (top - val) * (1 - fv)
        else:
            iu = np.clip(u, 0, tw - 1).astype(np.int32)
            iv = np.clip(v, 0, th - 1).astype(np.int32)
            val = np.take(tex, iv * tw + iu)
    # back side: the ray runs against the target normal
    n = p.normal
    back = (n[0] * x + n[1] * y + n[2]) <= 0
    if back.any():
        val[back] = p.back
    np.copyto(out, val, where=hit)
    np.copyto(best, w, where=hit)


class _RayGrid:
    """Exact undistorted rays at grid nodes every ``step`` px, covering the whole image.

    Node ``(i, j)`` sits at image coordinates ``(j * step - 0.5, i * step - 0.5)``, so grid cells
    are blocks of ``step x step`` whole pixels.
    """

    def __init__(self, K: np.ndarray, D: Sequence[float], width: int, height: int, step: int):
        self.step = step
        self.nx = -(-width // step) + 1
        self.ny = -(-height // step) + 1
        gx = np.arange(self.nx) * step - 0.5
        gy = np.arange(self.ny) * step - 0.5
        u, v = np.meshgrid(gx, gy)
        yd = (v - K[1, 2]) / K[1, 1]
        xd = (u - K[0, 2] - K[0, 1] * yd) / K[0, 0]
        x, y, self.ok = undistort_normalized(xd, yd, D)
        # rays beyond the lens model's valid range are sent far outside every target
        self.x = np.where(self.ok, x, 1e6)
        self.y = np.where(self.ok, y, 1e6)
        r2 = x[self.ok] ** 2 + y[self.ok] ** 2
        self.r2_max = float(r2.max()) if r2.size else 0.0
        # per cell: centre ray and the size of one pixel in normalized units
        self.cx = 0.25 * (self.x[:-1, :-1] + self.x[1:, :-1] + self.x[:-1, 1:] + self.x[1:, 1:])
        self.cy = 0.25 * (self.y[:-1, :-1] + self.y[1:, :-1] + self.y[:-1, 1:] + self.y[1:, 1:])
        scale = 0.5 * (
            np.abs(np.diff(self.x, axis=1)[:-1]) + np.abs(np.diff(self.y, axis=1)[:-1])
            + np.abs(np.diff(self.x, axis=0)[:, :-1]) + np.abs(np.diff(self.y, axis=0)[:, :-1])
        ) / step
        self.cell_ok = self.ok[:-1, :-1] & self.ok[1:, :-1] & self.ok[:-1, 1:] & self.ok[1:, 1:]
        self.scale = np.where(self.cell_ok, scale, 0.0)

    def interpolate(self, x0: int, y0: int, w: int, h: int, ss: int) -> tuple[np.ndarray, np.ndarray]:
        """Rays (float32) of the ``ss x ss`` supersamples of pixels [x0, x0+w) x [y0, y0+h)."""
        off = (np.arange(ss) + 0.5) / ss - 0.5
        px = (np.arange(x0, x0 + w)[:, None] + off[None, :]).ravel()
        py = (np.arange(y0, y0 + h)[:, None] + off[None, :]).ravel()
        fx = (px + 0.5) / self.step
        fy = (py + 0.5) / self.step
        jx = np.minimum(fx.astype(np.int64), self.nx - 2)
        iy = np.minimum(fy.astype(np.int64), self.ny - 2)
        ax = (fx - jx)[None, :]
        ay = (fy - iy)[:, None]
        res = []
        for g in (self.x, self.y):
            rows = g[iy[0] : iy[-1] + 2]  # along x on the needed node rows, then along y
            tx = rows[:, jx] * (1.0 - ax) + rows[:, jx + 1] * ax
            r0 = tx[iy - iy[0]]
            r1 = tx[iy - iy[0] + 1]
            res.append((r0 + (r1 - r0) * ay).astype(np.float32))
        return res[0], res[1]


def _target_cells(grid: _RayGrid, p: _Prepared, placed: PlacedTarget, K: np.ndarray,
                  D: Sequence[float], R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Boolean (ny-1, nx-1) mask of the grid cells that may see the target."""
    cells = np.zeros((grid.ny - 1, grid.nx - 1), dtype=bool)
    x, y = grid.x, grid.y
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        w = p.H[2, 0] * x + p.H[2, 1] * y + p.H[2, 2]
        u = (p.H[0, 0] * x + p.H[0, 1] * y + p.H[0, 2]) / w
        v = (p.H[1, 0] * x + p.H[1, 1] * y + p.H[1, 2]) / w
        x0, y0, x1, y1 = placed.target.extent
        node = grid.ok & (w > 0) & (u >= x0) & (u <= x1) & (v >= y0) & (v <= y1)
    cells |= node[:-1, :-1] | node[1:, :-1] | node[:-1, 1:] | node[1:, 1:]
    # parts smaller than a cell can fall between nodes: mark the cells of the projected outline
    pts = np.vstack([placed.outline_world(64), placed.t[None, :]])
    pc = (pts - t) @ R
    front = pc[:, 2] > 1e-9
    if front.any():
        xn, yn = pc[front, 0] / pc[front, 2], pc[front, 1] / pc[front, 2]
        inside_lens = xn * xn + yn * yn <= grid.r2_max * 1.05
        uv, _ = project_points(pts[front][inside_lens], K, D, R, t)
        ci = np.floor((uv[:, 0] + 0.5) / grid.step).astype(int)
        ri = np.floor((uv[:, 1] + 0.5) / grid.step).astype(int)
        keep = (ci >= 0) & (ri >= 0) & (ci < cells.shape[1]) & (ri < cells.shape[0])
        cells[ri[keep], ci[keep]] = True
    if cells.any():
        cells = cv2.dilate(cells.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    return cells


def _footprint(grid: _RayGrid, p: _Prepared, ss: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell half-widths (texels) of a supersample's footprint bounding box in texture space."""
    H = p.H
    x, y = grid.cx, grid.cy
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        w = H[2, 0] * x + H[2, 1] * y + H[2, 2]
        um = (H[0, 0] * x + H[0, 1] * y + H[0, 2]) / w
        vm = (H[1, 0] * x + H[1, 1] * y + H[1, 2]) / w
        k = 0.5 / ss * grid.scale / (np.abs(w) * p.texel)
        au = k * (np.abs(H[0, 0] - um * H[2, 0]) + np.abs(H[0, 1] - um * H[2, 1]))
        av = k * (np.abs(H[1, 0] - vm * H[2, 0]) + np.abs(H[1, 1] - vm * H[2, 1]))
    au = np.clip(np.nan_to_num(au, nan=0.5), 1e-6, 0.5).astype(np.float32)
    av = np.clip(np.nan_to_num(av, nan=0.5), 1e-6, 0.5).astype(np.float32)
    return au, av


def _boxes(mask: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Disjoint bounding boxes (c0, r0, c1, r1) covering the True cells of ``mask``."""
    if not mask.any():
        return []
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    boxes = [(int(s[0]), int(s[1]), int(s[0] + s[2]), int(s[1] + s[3])) for s in stats[1:n]]
    merged = True
    while merged:  # merge overlapping boxes so that the PSF never straddles two blocks
        merged = False
        out: list[tuple[int, int, int, int]] = []
        for b in boxes:
            for i, o in enumerate(out):
                if b[0] < o[2] and o[0] < b[2] and b[1] < o[3] and o[1] < b[3]:
                    out[i] = (min(b[0], o[0]), min(b[1], o[1]), max(b[2], o[2]), max(b[3], o[3]))
                    merged = True
                    break
            else:
                out.append(b)
        boxes = out
    return boxes


def _bbox(mask: np.ndarray) -> Optional[tuple[int, int, int, int]]:
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def render(
    scene: Scene,
    K: np.ndarray,
    D: Sequence[float],
    image_size: tuple[int, int],
    R: np.ndarray,
    t: np.ndarray,
    options: RenderOptions = RenderOptions(),
    noise: Optional[ImageNoise] = None,
    rng: Optional[np.random.Generator] = None,
    as_float: bool = False,
) -> np.ndarray:
    """Render the scene as an 8-bit grayscale image.

    Args:
        scene: targets and background.
        K: (3, 3) camera matrix (skew allowed).
        D: plumb_bob distortion ``(k1, k2, p1, p2, k3)``.
        image_size: ``(width, height)`` in pixels.
        R, t: pose world_from_optical (``X_world = R @ X_optical + t``).
        options: supersampling, lens PSF, texture filter.
        noise: sensor noise (None or disabled = noise-free).
        rng: random generator for the noise (required if noise is enabled).
        as_float: return the unquantized float32 levels (DN) instead.
    Returns:
        (height, width) uint8 image (float32 if ``as_float``).
    """
    K = np.asarray(K, dtype=float)
    R = np.asarray(R, dtype=float)
    t = np.asarray(t, dtype=float).reshape(3)
    width, height = int(image_size[0]), int(image_size[1])
    ss = int(options.supersample)
    img = np.full((height, width), scene.background, dtype=np.float32)

    pairs = [(p, pl) for pl in scene.targets if (p := _prepare(pl, R, t)) is not None]
    if pairs:
        grid = _RayGrid(K, D, width, height, options.grid_step)
        step = grid.step
        cells = [_target_cells(grid, p, pl, K, D, R, t) for p, pl in pairs]
        feet = [_footprint(grid, p, ss) for p, _ in pairs]
        margin = 1 + int(np.ceil((3.0 * options.psf_sigma + 1.0) / step))
        union = np.logical_or.reduce(cells)
        k = 2 * margin + 1
        union = cv2.dilate(union.astype(np.uint8), np.ones((k, k), np.uint8)).astype(bool)
        n = step * ss
        for c0, r0, c1, r1 in _boxes(union):
            x0, y0 = c0 * step, r0 * step
            x1, y1 = min(c1 * step, width), min(r1 * step, height)
            xs, ys = grid.interpolate(x0, y0, x1 - x0, y1 - y0, ss)
            buf = np.full(xs.shape, scene.background, dtype=np.float32)
            best = np.zeros(xs.shape, dtype=np.float32)
            for (p, _), cell, (au, av) in zip(pairs, cells, feet):
                box = _bbox(cell[r0:r1, c0:c1])
                if box is None:
                    continue
                bc0, br0, bc1, br1 = box
                sl = np.s_[br0 * n : br1 * n, bc0 * n : bc1 * n]
                fa = np.s_[r0 + br0 : r0 + br1, c0 + bc0 : c0 + bc1]
                sub_u = np.repeat(np.repeat(au[fa], n, axis=0), n, axis=1)
                sub_v = np.repeat(np.repeat(av[fa], n, axis=0), n, axis=1)
                hs, ws = buf[sl].shape  # the last block row/column may be cut by the image edge
                _cast_into(p, xs[sl], ys[sl], sub_u[:hs, :ws], sub_v[:hs, :ws], buf[sl], best[sl],
                           options.texture_filter)
            if options.psf_sigma > 0:
                buf = cv2.GaussianBlur(buf, (0, 0), options.psf_sigma * ss,
                                       borderType=cv2.BORDER_REPLICATE)
            h, w = y1 - y0, x1 - x0
            img[y0:y1, x0:x1] = buf.reshape(h, ss, w, ss).mean(axis=(1, 3))

    if noise is not None and noise.enabled:
        if rng is None:
            raise ValueError("render: noise needs an rng")
        sigma = np.sqrt(noise.read_noise**2 + noise.shot_noise * np.maximum(img, 0.0))
        img = img + sigma * rng.standard_normal(img.shape, dtype=np.float32)
    if as_float:
        return img
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)
