"""Intrinsics over zoom: Zhang's method at every zoom step, the steps linked through views of the
same board at the same pan/tilt, and a curve per parameter chosen by leave-one-zoom-out
cross-validation.

1. **Zoom steps.** The captures of one camera are grouped by reported raw zoom (values within
   ``zoom_tolerance`` are one step). Images are detected against the target each capture names.
   A step with fewer than ``min_views`` usable views is dropped, and the report says why.

2. **Zhang at every step** (:func:`~.intrinsics.calibrate_intrinsics` with ``auto_fix``), widest
   first. The widest step starts from the best of a grid of focal lengths (OpenCV's own
   initialization converges to fx +55 % on the default rig's near-fronto-parallel wide views of a
   k1 = -0.24 lens). Every further step starts from its neighbour: focal length scaled by the
   magnification measured on same-pose views (below), principal point and distortion carried
   over. What auto-fix fixes stays at that initial value: a principal point the views cannot
   determine is held at the inverse-variance weighted mean of the principal points determined so
   far (not at the image centre), the tangential terms at the neighbour's values (zeroing them
   shifts the principal point by ~3 p f: 2-3 px at 3x on the default rig).

3. **Linking the steps.** With the scenes one can set up for a PTZ camera, every board is seen
   almost fronto-parallel at long focal lengths, and Zhang's method alone leaves the focal length
   uncertain by several percent there (the image scale f/Z is measured, f and the distance Z are
   not separated; on the default rig: up to 31 % off at 20x, std 18 %). Two images of the same
   board at the same pan/tilt and two zoom steps a, b are, after removing each step's
   distortion, related by a similarity whose scale is ``rho = (f_b / f_a) * (Z - d_a) / (Z - d_b)``,
   with ``d`` the forward motion of the optical centre with zoom and ``Z`` the board's distance:
   measured to ~30 ppm on checkerboards with >= 27 px squares. A weighted least-squares problem
   over ``log f`` and ``d`` at every step combines these ratios with Zhang's focal lengths
   (weighted by their standard deviations: they fix the absolute scale where they are good, at
   the wide end), a weak smoothness prior on ``d`` (``translation_curvature``), and drops links
   more than 6 sigma off. Boards at different distances seen at the same pair of steps separate
   the focal length ratio from ``d``; over zoom ranges where only one distance is seen, ``d``
   rests on Zhang's focal lengths and the smoothness prior. ``d`` (relative to the widest step) is
   reported as a by-product (the kinematic calibration estimates it properly). fy is the linked
   focal length times each step's Zhang aspect ratio fy/fx, which the views determine even where
   they do not determine f. Each step is then calibrated again with its focal length fixed at the
   linked value, which sharpens its principal point and distortion, and the links are solved again.
   On the default dataset the linked focal lengths are within 0.13 % of the truth at every step
   (reported std 0.08-0.13 %).

4. **Curves.** fx, fy, cx, cy, k1, k2 are each fitted over raw zoom with every family
   (piecewise_linear, polynomial of degree 1-4, exp2, and cubic_spline: an interpolating cubic
   spline, of log f for the focal lengths, stored as a dense piecewise-linear table since the
   model has no spline curve) and the family with the smallest leave-one-zoom-out
   cross-validation error wins: ``sqrt(sum(e_j^2 / std_j^2) / sum(1 / std_j^2))`` over the left-out
   zooms j. Steps where a parameter was held take part in the fit at the held value but are not
   scored; a held k1 or k2 is weighted by the std that moves the image corner by 0.2 px, so the
   curve may go anywhere that changes the image less. None of the analytic families follows a
   20x zoom lens' focal length: on the default rig exp2 misses it by up to 1.7 % and a degree-4
   polynomial by 7 % even with exact samples, piecewise-linear interpolation of 20 steps by 0.75 %,
   the cubic spline of log f by 0.23 % (12 steps: 0.31 %). p1, p2 are the weighted means of the
   steps that determine them, k3 is 0. The zoom mapping is magnification = fx / fx(widest).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Optional, Sequence

import cv2
import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..model import (
    ConstantCurve,
    PiecewiseLinearCurve,
    PtzCameraModel,
    PtzKinematics,
    TwoTermExponentialCurve,
    ZoomCurve,
    ZoomIntrinsics,
    ZoomMapping,
    fit_curve,
)
from .conditioning import corner_radius
from .dataset import Capture, Dataset
from .detection import Detection, DetectionOptions, DetectionResult, NotFound, detect_file
from .intrinsics import CalibrationError, CalibrationOptions, IntrinsicCalibration, calibrate_intrinsics

__all__ = [
    "ZOOM_PARAMETERS",
    "FAMILIES",
    "ZoomFitOptions",
    "ZoomFitError",
    "View",
    "ZoomStep",
    "StepLink",
    "ParameterFit",
    "ZoomFit",
    "group_zoom_steps",
    "curvature_prior",
    "fit_parameter",
    "calibrate_zoom",
]

#: Parameters fitted over zoom with model selection.
ZOOM_PARAMETERS: tuple[str, ...] = ("fx", "fy", "cx", "cy", "k1", "k2")
#: Curve families tried for every parameter.
FAMILIES: tuple[str, ...] = ("piecewise_linear", "polynomial_1", "polynomial_2", "polynomial_3",
                             "polynomial_4", "exp2", "cubic_spline")

Progress = Callable[[int, int, str], None]


class ZoomFitError(ValueError):
    """Intrinsics over zoom cannot be estimated from this dataset (the message says why)."""


@dataclass(frozen=True)
class ZoomFitOptions:
    """Settings of :func:`calibrate_zoom`."""

    detection: DetectionOptions = DetectionOptions()
    zoom_tolerance: float = 0.5  # raw units: captures closer in zoom are one step
    min_views: int = 3  # per zoom step
    auto_fix: bool = True
    link_steps: bool = True  # link the steps through same-pose views (3. in the module notes)
    pose_tolerance: float = math.radians(0.05)  # rad: "same pan/tilt" for a link
    min_link_points: int = 12  # common corners of a link
    ratio_floor: float = 2e-5  # relative std added to every measured scale ratio
    translation_curvature: float = 0.05  # m per (zoom range)^2: std of d'' (smoothness prior on d)
    refine: bool = True  # second Zhang pass with the linked focal length fixed
    families: tuple[str, ...] = FAMILIES
    spline_knots: int = 129  # knots of a cubic_spline curve's piecewise-linear table
    focal_grid: int = 16  # focal lengths tried to initialize the widest step
    # sensitivity studies: Gaussian noise (px std) added to every detected corner, and its seed
    corner_noise: float = 0.0
    noise_seed: int = 0

    def __post_init__(self) -> None:
        unknown = [f for f in self.families if f not in FAMILIES]
        if unknown or not self.families:
            raise ValueError(f"unknown curve family {unknown[0] if unknown else '(none)'!r} "
                             f"(families: {', '.join(FAMILIES)})")
        if self.min_views < 2:
            raise ValueError(f"min_views must be >= 2, got {self.min_views}")
        if not self.zoom_tolerance >= 0 or not self.pose_tolerance > 0:
            raise ValueError("zoom_tolerance must be >= 0 and pose_tolerance > 0")
        if self.spline_knots < 2:
            raise ValueError("spline_knots must be >= 2")


@dataclass(frozen=True)
class View:
    """A usable view: a capture and its detection."""

    capture: Capture
    target: str
    detection: Detection


@dataclass
class ZoomStep:
    """One zoom step: its captures, views, calibrations and final estimates."""

    zoom: float
    captures: list[Capture]
    views: list[View] = field(default_factory=list)
    rejected: list[tuple[Capture, str]] = field(default_factory=list)  # capture, why no view
    zhang: Optional[IntrinsicCalibration] = None  # first pass (free focal length)
    refined: Optional[IntrinsicCalibration] = None  # second pass (linked focal length fixed)
    error: Optional[str] = None  # why the step was dropped
    estimates: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> value, std, source

    @property
    def ok(self) -> bool:
        return self.zhang is not None

    @property
    def final(self) -> Optional[IntrinsicCalibration]:
        return self.refined or self.zhang


@dataclass(frozen=True)
class StepLink:
    """Scale ratio between the same-pose images of a board at two zoom steps."""

    target: str
    a: int  # step indices (into the calibrated steps, zoom order)
    b: int
    capture_a: int  # manifest indices
    capture_b: int
    ratio: float
    std: float  # of log(ratio)
    points: int
    residual_px: float


@dataclass
class ParameterFit:
    """A parameter's curve, chosen among the families by cross-validation."""

    name: str
    curve: ZoomCurve
    family: str
    cv_error: dict[str, Optional[float]]  # family -> weighted RMS error (parameter units), None: failed
    cv_failures: dict[str, str]
    samples: list[dict[str, Any]]  # zoom, value, std, fixed
    cv_relative: dict[str, float] = field(default_factory=dict)  # fx, fy: the same for relative errors

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "cv_error": dict(self.cv_error), "cv_relative": dict(self.cv_relative),
                "cv_failures": dict(self.cv_failures),
                "curve": self.curve.to_dict() if self.family != "cubic_spline" else
                {"type": "piecewise_linear", "knots": int(len(self.curve.x))},  # type: ignore[attr-defined]
                "samples": self.samples}


@dataclass
class ZoomFit:
    """Result of :func:`calibrate_zoom`."""

    camera: str
    image_size: tuple[int, int]
    intrinsics: ZoomIntrinsics
    mapping: ZoomMapping
    steps: list[ZoomStep]
    parameters: dict[str, ParameterFit]
    links: list[StepLink]
    report: dict[str, Any]

    def model(self, metadata: Optional[dict[str, Any]] = None) -> PtzCameraModel:
        """A camera model with these intrinsics and ideal kinematics (no axis offsets, no zoom
        translation): the stepping stone before the kinematic calibration."""
        return PtzCameraModel(self.camera, self.image_size[0], self.image_size[1], self.intrinsics,
                              PtzKinematics(), self.mapping, metadata=dict(metadata or {}))


# -- zoom steps and detection --------------------------------------------------------------------
def group_zoom_steps(captures: Sequence[Capture], tolerance: float = 0.5) -> list[tuple[float, list[Capture]]]:
    """Captures grouped by reported raw zoom (sorted; a gap > ``tolerance`` starts a new step).

    A step's zoom is the median of its captures' zooms.
    """
    ordered = sorted(captures, key=lambda c: c.zoom)
    groups: list[list[Capture]] = []
    for c in ordered:
        if groups and c.zoom - groups[-1][-1].zoom <= tolerance:
            groups[-1].append(c)
        else:
            groups.append([c])
    return [(float(np.median([c.zoom for c in g])), sorted(g, key=lambda c: c.index)) for g in groups]


def _detect(dataset: Dataset, captures: Sequence[Capture], options: DetectionOptions,
            progress: Optional[Progress], corner_noise: float = 0.0, noise_seed: int = 0) -> dict[int, DetectionResult]:
    out = {}
    rng = np.random.default_rng(noise_seed)
    for k, c in enumerate(captures):
        found = detect_file(dataset.image_path(c), dataset.target_of(c), options)
        if corner_noise > 0 and isinstance(found, Detection):
            found = replace(found, image_points=found.image_points
                            + rng.normal(0.0, corner_noise, found.image_points.shape))
        out[c.index] = found
        if progress is not None:
            progress(k + 1, len(captures), c.image)
    return out


# -- per-step Zhang ------------------------------------------------------------------------------
def _grid_initialization(views: Sequence[Detection], size: tuple[int, int], n: int) -> Optional[IntrinsicCalibration]:
    """The calibration of lowest RMS over a grid of initial focal lengths (principal point at the
    image centre, no distortion)."""
    w, h = size
    best = None
    for f in np.geomspace(0.2 * w, 40.0 * w, n):
        K0 = np.array([[f, 0.0, (w - 1) / 2], [0.0, f, (h - 1) / 2], [0.0, 0.0, 1.0]])
        try:
            c = calibrate_intrinsics(views, CalibrationOptions(
                flags=cv2.CALIB_USE_INTRINSIC_GUESS | cv2.CALIB_FIX_K3, camera_matrix=K0, min_views=2))
        except CalibrationError:
            continue
        if best is None or c.rms < best.rms:
            best = c
    return best


def _weighted_centre(history: list[tuple[float, float, float, float]], size: tuple[int, int]) -> tuple[float, float, float]:
    """Inverse-variance weighted mean (cx, cy) of determined principal points, and its std."""
    if not history:  # no step determined it: the image centre, known to a tenth of the image
        return (size[0] - 1) / 2, (size[1] - 1) / 2, max(size) / 10.0
    cx, cy, sx, sy = (np.array(v) for v in zip(*history))
    wx, wy = 1 / np.maximum(sx, 1e-3) ** 2, 1 / np.maximum(sy, 1e-3) ** 2
    return (float(np.sum(wx * cx) / np.sum(wx)), float(np.sum(wy * cy) / np.sum(wy)),
            float(math.hypot(1 / math.sqrt(np.sum(wx)), 1 / math.sqrt(np.sum(wy)))))


def _free(calib: IntrinsicCalibration, name: str) -> bool:
    s = calib.std_intrinsics.get(name, 0.0)
    return bool(s > 0 and math.isfinite(s))


def _calibrate_step(step: ZoomStep, guess: Optional[tuple[NDArray, NDArray]], size: tuple[int, int],
                    options: ZoomFitOptions, fix_focal: bool = False) -> IntrinsicCalibration:
    dets = [v.detection for v in step.views]
    flags = cv2.CALIB_USE_INTRINSIC_GUESS | (cv2.CALIB_FIX_FOCAL_LENGTH if fix_focal else 0)
    if guess is None:
        init = _grid_initialization(dets, size, options.focal_grid)
        if init is None:
            raise CalibrationError(f"no initial focal length in [{0.2 * size[0]:.0f}, {40 * size[0]:.0f}] px "
                                   "gives a calibration")
        K0, D0 = init.camera_matrix, init.distortion
    else:
        K0, D0 = guess
    return calibrate_intrinsics(dets, CalibrationOptions(flags=flags, camera_matrix=np.asarray(K0, float),
                                                         distortion=np.asarray(D0, float)[:5],
                                                         auto_fix=options.auto_fix, min_views=options.min_views,
                                                         keep_initial_tangential=True),
                                image_size=size)


# -- links ---------------------------------------------------------------------------------------
def _similarity_scale(x: NDArray, y: NDArray) -> tuple[float, float, float]:
    """Least-squares similarity y ~ s R x + t: (s, std of log s, RMS residual px)."""
    xc, yc = x - x.mean(axis=0), y - y.mean(axis=0)
    cov = yc.T @ xc / len(x)
    u, sv, vt = np.linalg.svd(cov)
    d = np.diag([1.0, np.sign(np.linalg.det(u @ vt))])
    r = u @ d @ vt
    s = float(np.trace(np.diag(sv) @ d) / np.mean(np.sum(xc**2, axis=1)))
    res = yc - s * xc @ r.T
    sigma = math.sqrt(float(np.sum(res**2)) / max(2 * len(x) - 4, 1))
    return s, sigma / math.sqrt(float(np.sum(yc**2))), math.sqrt(float(np.mean(np.sum(res**2, axis=1))))


def _undistort(det: Detection, calib: IntrinsicCalibration) -> NDArray:
    K = calib.camera_matrix
    pts = det.image_points.reshape(-1, 1, 2).astype(np.float64)
    return cv2.undistortPoints(pts, K, calib.distortion, P=K).reshape(-1, 2)


def _links(steps: list[ZoomStep], options: ZoomFitOptions) -> list[StepLink]:
    """Same-pose links between consecutive steps (in zoom order) that see the same board."""
    links = []
    by_target: dict[str, list[int]] = {}
    for i, s in enumerate(steps):
        for name in sorted({v.target for v in s.views}):
            by_target.setdefault(name, []).append(i)
    for name, idx in by_target.items():
        for a, b in zip(idx[:-1], idx[1:]):
            best = None
            for va in steps[a].views:
                if va.target != name:
                    continue
                for vb in steps[b].views:
                    if vb.target != name:
                        continue
                    dp = max(abs(va.capture.pan - vb.capture.pan), abs(va.capture.tilt - vb.capture.tilt))
                    if dp <= options.pose_tolerance and (best is None or dp < best[0]):
                        best = (dp, va, vb)
            if best is None:
                continue
            _, va, vb = best
            common, ia, ib = np.intersect1d(va.detection.ids, vb.detection.ids, return_indices=True)
            if len(common) < options.min_link_points:
                continue
            ca, cb = steps[a].final, steps[b].final
            assert ca is not None and cb is not None
            xa = _undistort(va.detection, ca)[ia]
            xb = _undistort(vb.detection, cb)[ib]
            s, std, rms = _similarity_scale(xa, xb)
            links.append(StepLink(name, a, b, va.capture.index, vb.capture.index, s,
                                  math.hypot(std, options.ratio_floor), len(common), rms))
    return links


def _board_centre(target: Any) -> NDArray:
    x0, y0, x1, y1 = target.extent
    return np.array([(x0 + x1) / 2, (y0 + y1) / 2, 0.0])


def _solve_links(steps: list[ZoomStep], links: list[StepLink], dataset: Dataset,
                 options: ZoomFitOptions) -> dict[str, Any]:
    """Joint log-focal and zoom-translation estimate (module notes, 3.)."""
    from scipy.optimize import least_squares

    n = len(steps)
    zoom = np.array([s.zoom for s in steps])
    calib = [s.zhang for s in steps]
    log_f = np.array([math.log(c.fx) for c in calib])  # type: ignore[union-attr]
    rel = np.array([c.std_intrinsics["fx"] / c.fx for c in calib])  # type: ignore[union-attr]
    prior = np.isfinite(rel) & (rel > 0)
    if not prior.any():
        raise ZoomFitError("no zoom step determines its focal length (every standard deviation is "
                           "infinite): the absolute scale is unknown")
    # board distances from the home optical centre: Zhang's distance scaled by the focal correction
    names = sorted({lk.target for lk in links})

    def distances(phi: NDArray, d: NDArray) -> dict[str, float]:
        out = {}
        for name in names:
            best = None
            for i, s in enumerate(steps):
                c = calib[i]
                for k, v in enumerate(s.views):
                    if v.target != name or k >= len(c.tvecs):  # type: ignore[union-attr]
                        continue
                    R = cv2.Rodrigues(c.rvecs[k])[0]  # type: ignore[union-attr]
                    dist = float(np.linalg.norm(R @ _board_centre(dataset.targets[name]) + c.tvecs[k]))  # type: ignore[union-attr]
                    z = dist * math.exp(phi[i] - log_f[i]) + d[i]
                    if best is None or rel[i] < best[0]:
                        best = (rel[i], z)
            out[name] = best[1] if best else float("nan")
        return out

    la = np.array([lk.a for lk in links], dtype=int)
    lb = np.array([lk.b for lk in links], dtype=int)
    lr = np.log([lk.ratio for lk in links])
    ls = np.array([lk.std for lk in links])
    curv_idx, curv_w = curvature_prior(zoom, options.translation_curvature)
    n_prior = int(prior.sum())

    def unpack(x: NDArray) -> tuple[NDArray, NDArray]:
        return x[:n], np.concatenate([[0.0], x[n:]])

    def link_residuals(x: NDArray, zt: NDArray) -> NDArray:
        phi, d = unpack(x)
        return (phi[lb] - phi[la] + np.log(zt - d[la]) - np.log(zt - d[lb]) - lr) / ls

    def residuals(x: NDArray, zt: NDArray, keep: NDArray) -> NDArray:
        phi, d = unpack(x)
        # smoothness of d: its second derivative over the zoom range, ~ N(0, sigma_dd)
        smooth = np.sum(curv_w * d[curv_idx], axis=1)
        return np.concatenate([(phi[prior] - log_f[prior]) / rel[prior], link_residuals(x, zt)[keep], d[1:] / 1.0,
                               smooth])

    x = np.concatenate([log_f, np.zeros(n - 1)])
    used = np.ones(len(links), dtype=bool)
    for _ in range(4):  # solve, drop links more than 6 sigma off, solve again
        zmap = distances(*unpack(x))
        zt = np.array([zmap[lk.target] for lk in links])
        keep = used & np.isfinite(zt)
        sol = least_squares(residuals, x, method="trf", x_scale="jac", args=(zt, keep))
        x = sol.x
        r_links = link_residuals(x, zt)
        worst = np.where(keep, np.abs(r_links), 0.0)
        if worst.max(initial=0.0) <= 6.0:
            break
        used[int(np.argmax(worst))] = False
    dof = max(len(sol.fun) - len(x), 1)
    chi2 = float(np.sum(sol.fun**2)) / dof
    std = _std(sol.jac) * math.sqrt(max(1.0, chi2))
    phi, d = unpack(x)
    return {"phi": phi, "phi_std": std[:n], "d": d, "d_std": np.concatenate([[0.0], std[n:]]),
            "chi2": chi2, "distances": distances(phi, d), "used": used, "link_residuals": r_links,
            "priors": int(n_prior)}


def curvature_prior(zoom: ArrayLike, sigma: float) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """A smoothness prior on a per-step value ``v`` over zoom: ``v''`` ~ N(0, ``sigma``) with zoom as
    a fraction of the steps' range, discretized like a smoothing spline's penalty.

    Returns the neighbouring triples (K, 3) of step indices in zoom order and their weights (K, 3):
    the prior rows are ``sum(weights * v[triples], axis=1)``, i.e. ``v'' * sqrt((h1 + h2) / 2) /
    sigma`` (a second difference between steps h apart gets the std ``sigma * h**1.5``).
    """
    z = np.asarray(zoom, dtype=float).ravel()
    order = np.argsort(z, kind="stable")
    idx = np.stack([order[:-2], order[1:-1], order[2:]], axis=1) if len(z) >= 3 else np.zeros((0, 3), dtype=np.int64)
    span = max(float(z.max() - z.min()), 1.0) if len(z) else 1.0
    h1 = np.maximum((z[idx[:, 1]] - z[idx[:, 0]]) / span, 1e-9)
    h2 = np.maximum((z[idx[:, 2]] - z[idx[:, 1]]) / span, 1e-9)
    w = 2.0 / (h1 + h2) * np.sqrt((h1 + h2) / 2.0) / sigma
    return idx.astype(np.int64), np.stack([w / h1, -w * (1.0 / h1 + 1.0 / h2), w / h2], axis=1)


def _std(jac: NDArray) -> NDArray:
    """Standard deviations of least-squares parameters from the Jacobian (inf where the data leave a
    parameter undetermined, instead of the 0 a pseudo-inverse would give)."""
    jac = np.asarray(jac.toarray() if hasattr(jac, "toarray") else jac, dtype=float)
    scale = np.linalg.norm(jac, axis=0)
    scale[scale == 0] = 1.0
    lam, vec = np.linalg.eigh((jac / scale).T @ (jac / scale))
    null = lam <= max(lam.max(initial=0.0), 0.0) * 1e-12
    var = (vec[:, ~null] ** 2 / lam[~null]).sum(axis=1)
    var[(vec[:, null] ** 2).sum(axis=1) > 1e-12] = np.inf
    return np.sqrt(var) / scale


# -- curves --------------------------------------------------------------------------------------
def _spline_curve(z: NDArray, v: NDArray, log: bool, knots: int) -> PiecewiseLinearCurve:
    from scipy.interpolate import CubicSpline

    ux, inv = np.unique(z, return_inverse=True)
    uv = np.bincount(inv, weights=v) / np.bincount(inv)
    if len(ux) < 3:
        raise ValueError("a cubic spline needs at least 3 distinct zooms")
    y = np.log(uv) if log else uv
    spline = CubicSpline(ux, y)
    x = np.union1d(np.linspace(ux[0], ux[-1], knots), ux)
    out = spline(x)
    return PiecewiseLinearCurve(x, np.exp(out) if log else out)


def _spline_predict(z: NDArray, v: NDArray, log: bool, at: float) -> float:
    from scipy.interpolate import CubicSpline

    ux, inv = np.unique(z, return_inverse=True)
    uv = np.bincount(inv, weights=v) / np.bincount(inv)
    if len(ux) < 3:
        raise ValueError("a cubic spline needs at least 3 distinct zooms")
    y = CubicSpline(ux, np.log(uv) if log else uv)(at)
    return float(np.exp(y) if log else y)


def _exp2_refit(full: TwoTermExponentialCurve, z: NDArray, v: NDArray, w: NDArray, at: float) -> float:
    """A leave-one-out exp2 fit started from the fit on all zooms (a few iterations instead of
    ``fit_curve``'s cold starts, which take seconds when the data are not exponential)."""
    from scipy.optimize import least_squares

    s = full.normalized(z)

    def residual(p: NDArray) -> NDArray:
        return w * (p[0] * np.exp(p[1] * s) + p[2] * np.exp(p[3] * s) - v)

    sol = least_squares(residual, np.array([full.a, full.b, full.c, full.d]), method="lm", max_nfev=100)
    a, b, c, d = sol.x
    t = float(full.normalized(np.asarray(at)))
    return float(a * np.exp(b * t) + c * np.exp(d * t))


def _fit_family(family: str, z: NDArray, v: NDArray, w: NDArray, domain: tuple[float, float],
                log: bool, knots: int) -> ZoomCurve:
    if family == "cubic_spline":
        return _spline_curve(z, v, log, knots)
    if family.startswith("polynomial_"):
        return fit_curve("polynomial", z, v, degree=int(family.rsplit("_", 1)[1]), domain=domain, weights=w)
    return fit_curve(family, z, v, domain=domain, weights=w)


def fit_parameter(name: str, zoom: Sequence[float], value: Sequence[float], std: Sequence[float],
                  fixed: Optional[Sequence[bool]] = None, families: Sequence[str] = FAMILIES,
                  domain: Optional[tuple[float, float]] = None, log: Optional[bool] = None,
                  knots: int = 129) -> ParameterFit:
    """Fit one parameter over zoom with every family; choose by leave-one-zoom-out CV.

    ``std`` weights the samples (1/std); ``fixed`` samples (held at a value, not measured) are
    always in the training set and never scored. The CV error of a family is
    ``sqrt(sum(e_j^2 / std_j^2) / sum(1 / std_j^2))`` over the scored zooms, ``e_j`` the error at
    zoom j of the curve fitted without it. ``log`` (default: for fx and fy) makes the cubic
    spline interpolate the logarithm.
    """
    z = np.asarray(zoom, dtype=float)
    v = np.asarray(value, dtype=float)
    s = np.asarray(std, dtype=float)
    fx = np.zeros(len(z), dtype=bool) if fixed is None else np.asarray(fixed, dtype=bool)
    ok = np.isfinite(z) & np.isfinite(v) & np.isfinite(s) & (s > 0)
    z, v, s, fx = z[ok], v[ok], s[ok], fx[ok]
    if len(z) == 0:
        raise ZoomFitError(f"{name}: no zoom step has a usable estimate")
    log = name in ("fx", "fy") if log is None else log
    if domain is None:
        domain = (float(z.min()), float(z.max()) if z.max() > z.min() else float(z.min()) + 1.0)
    w = 1.0 / s
    samples = [{"zoom": float(a), "value": float(b), "std": float(c), "fixed": bool(d)}
               for a, b, c, d in zip(z, v, s, fx)]
    scored = np.flatnonzero(~fx)
    with np.errstate(all="ignore"):  # exp2 fits overflow on the way to failing
        return _select(name, z, v, s, w, fx, scored, families, domain, log, knots, samples)


def _select(name: str, z: NDArray, v: NDArray, s: NDArray, w: NDArray, fx: NDArray, scored: NDArray,
            families: Sequence[str], domain: tuple[float, float], log: bool, knots: int,
            samples: list[dict[str, Any]]) -> ParameterFit:
    cv: dict[str, Optional[float]] = {}
    cv_rel: dict[str, float] = {}
    failures: dict[str, str] = {}
    finals: dict[str, ZoomCurve] = {}
    for family in families:
        errors, weights = [], []
        try:
            if family == "exp2":  # fitted once on all zooms, each fold starts from that fit
                finals[family] = _fit_family(family, z, v, w, domain, log, knots)
            for j in scored:
                train = np.arange(len(z)) != j
                if family == "cubic_spline":
                    pred = _spline_predict(z[train], v[train], log, z[j])
                elif family == "exp2":
                    pred = _exp2_refit(finals[family], z[train], v[train], w[train], z[j])  # type: ignore[arg-type]
                else:
                    pred = float(_fit_family(family, z[train], v[train], w[train], domain, log, knots)(z[j]))
                errors.append(pred - v[j])
                weights.append(1.0 / s[j] ** 2)
        except (ValueError, np.linalg.LinAlgError) as exc:
            cv[family] = None
            failures[family] = str(exc)
            continue
        if not errors:
            cv[family] = None
            failures[family] = "no measured zoom step to leave out"
            continue
        e, wt = np.array(errors), np.array(weights)
        cv[family] = float(np.sqrt(np.sum(wt * e**2) / np.sum(wt))) if np.all(np.isfinite(e)) else None
        if cv[family] is None:
            failures[family] = "non-finite prediction"
        elif log:
            rel = e / v[scored]
            cv_rel[family] = float(np.sqrt(np.sum(wt * rel**2) / np.sum(wt)))
    ranked = sorted((err, FAMILIES.index(f), f) for f, err in cv.items() if err is not None)
    if len(z) == 1 or not ranked:
        curve: ZoomCurve = ConstantCurve(float(np.average(v, weights=w**2)))
        return ParameterFit(name, curve, "constant", cv, failures, samples, cv_rel)
    for _, _, family in ranked:
        try:
            curve = finals[family] if family in finals else _fit_family(family, z, v, w, domain, log, knots)
        except (ValueError, np.linalg.LinAlgError) as exc:
            failures[family] = f"final fit: {exc}"
            continue
        return ParameterFit(name, curve, family, cv, failures, samples, cv_rel)
    curve = ConstantCurve(float(np.average(v, weights=w**2)))
    return ParameterFit(name, curve, "constant", cv, failures, samples, cv_rel)


# -- pipeline ------------------------------------------------------------------------------------
def _estimates(step: ZoomStep, link: Optional[dict[str, Any]], i: int, centre: tuple[float, float, float]
               ) -> dict[str, dict[str, Any]]:
    c = step.final
    z = step.zhang
    assert c is not None and z is not None
    out: dict[str, dict[str, Any]] = {}
    if link is not None:
        f = math.exp(link["phi"][i])
        rel = float(link["phi_std"][i])
        out["fx"] = {"value": f, "std": f * rel, "source": "linked"}
        aspect = z.fy / z.fx
        out["fy"] = {"value": f * aspect, "std": f * aspect * rel, "source": "linked"}
    else:
        for n in ("fx", "fy"):
            out[n] = {"value": getattr(z, n), "std": z.std_intrinsics[n], "source": "zhang"}
    cx0, cy0, cstd = centre
    for n, value in (("cx", c.cx), ("cy", c.cy)):
        if _free(c, n):
            out[n] = {"value": value, "std": c.std_intrinsics[n], "source": "zhang"}
        else:
            out[n] = {"value": value, "std": max(cstd / math.sqrt(2), 0.05), "source": "fixed",
                      "why": c.fixed.get("principal_point", "fixed")}
    for k, n in enumerate(("k1", "k2", "p1", "p2", "k3")):
        value = float(c.distortion[k]) if k < len(c.distortion) else 0.0
        if _free(c, n):
            out[n] = {"value": value, "std": c.std_intrinsics[n], "source": "zhang"}
        else:
            why = c.fixed.get(n) or c.fixed.get("tangential" if n in ("p1", "p2") else n) or "fixed"
            out[n] = {"value": value, "std": None, "source": "fixed", "why": why}
    return out


def _json(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    if isinstance(value, np.generic):
        return _json(value.item())
    return value


def calibrate_zoom(dataset: Dataset, camera: Optional[str] = None, options: ZoomFitOptions = ZoomFitOptions(),
                   progress: Optional[Progress] = None) -> ZoomFit:
    """Intrinsics over zoom of one camera of ``dataset`` (see the module notes).

    Raises :class:`ZoomFitError` when nothing usable is left (every zoom step dropped, mixed
    image sizes, no step determining the focal length); otherwise completes with the usable steps
    and reports what was dropped and why.
    """
    t_start = time.perf_counter()
    try:
        data = dataset.for_camera(camera)
    except ValueError as exc:
        raise ZoomFitError(str(exc)) from None
    name = data.cameras[0]
    groups = group_zoom_steps(data.captures, options.zoom_tolerance)
    results = _detect(data, [c for _, g in groups for c in g], options.detection, progress,
                      options.corner_noise, options.noise_seed)
    t_detect = time.perf_counter()
    steps = []
    sizes = set()
    for zoom, captures in groups:
        step = ZoomStep(zoom, captures)
        for c in captures:
            r = results[c.index]
            if isinstance(r, Detection):
                step.views.append(View(c, data.target_name(c), r))
                sizes.add(r.image_size)
            else:
                step.rejected.append((c, str(r.message if isinstance(r, NotFound) else r)))
        steps.append(step)
    if len(sizes) > 1:
        raise ZoomFitError(f"{data.source}: images of camera {name!r} differ in size: "
                           f"{', '.join(f'{w}x{h}' for w, h in sorted(sizes))}")
    if not sizes:
        raise ZoomFitError(f"{data.source}: the target was found in none of the {len(data.captures)} images "
                           f"of camera {name!r}" + "".join(f"\n  {s.rejected[0][0].image}: {s.rejected[0][1]}"
                                                           for s in steps[:5] if s.rejected))
    size = sizes.pop()

    # 2. Zhang, widest first, each step starting from its neighbour
    history: list[tuple[float, float, float, float]] = []  # determined principal points
    prev: Optional[ZoomStep] = None
    for step in steps:
        if len(step.views) < options.min_views:
            step.error = (f"{len(step.views)} usable view{'s' * (len(step.views) != 1)} of "
                          f"{len(step.captures)}, at least {options.min_views} needed")
            continue
        guess = None
        if prev is not None:
            assert prev.zhang is not None
            scale = _step_scale(prev, step, options)
            cx, cy, _ = _weighted_centre(history, size)
            K = prev.zhang.camera_matrix.copy()
            K[0, 0] *= scale
            K[1, 1] *= scale
            K[0, 2], K[1, 2] = cx, cy
            guess = (K, prev.zhang.distortion)
        try:
            step.zhang = _calibrate_step(step, guess, size, options)
            if guess is not None and step.zhang.rms > 1.0:  # a poor start: try the grid as well
                alt = _calibrate_step(step, None, size, options)
                if alt.rms < 0.8 * step.zhang.rms:
                    step.zhang = alt
        except CalibrationError as exc:
            step.error = f"calibration failed: {exc}"
            continue
        if _free(step.zhang, "cx") and _free(step.zhang, "cy"):
            history.append((step.zhang.cx, step.zhang.cy, step.zhang.std_intrinsics["cx"],
                            step.zhang.std_intrinsics["cy"]))
        prev = step
    good = [s for s in steps if s.ok]
    dropped = [s for s in steps if not s.ok]
    if not good:
        raise ZoomFitError(f"{data.source}: no usable zoom step:" + "".join(
            f"\n  zoom {s.zoom:g}: {s.error}" for s in dropped))
    t_zhang = time.perf_counter()

    # 3. links between steps, joint focal length and zoom translation, second pass
    links: list[StepLink] = []
    link: Optional[dict[str, Any]] = None
    if options.link_steps and len(good) > 1:
        links = _links(good, options)
        if links:
            link = _solve_links(good, links, data, options)
            if options.refine:
                history = []
                for i, step in enumerate(good):
                    assert step.zhang is not None
                    K = step.zhang.camera_matrix.copy()
                    f = math.exp(link["phi"][i])
                    K[1, 1] = f * step.zhang.fy / step.zhang.fx
                    K[0, 0] = f
                    if not (_free(step.zhang, "cx") and _free(step.zhang, "cy")):
                        K[0, 2], K[1, 2], _ = _weighted_centre(history, size)
                    try:
                        step.refined = _calibrate_step(step, (K, step.zhang.distortion), size, options,
                                                       fix_focal=True)
                    except CalibrationError:
                        step.refined = None
                    c = step.final
                    assert c is not None
                    if _free(c, "cx") and _free(c, "cy"):
                        history.append((c.cx, c.cy, c.std_intrinsics["cx"], c.std_intrinsics["cy"]))
                links = _links(good, options)
                link = _solve_links(good, links, data, options)
    t_link = time.perf_counter()

    # 4. per-step estimates and curves
    history = []
    for i, step in enumerate(good):
        c = step.final
        assert c is not None
        step.estimates = _estimates(step, link, i, _weighted_centre(history, size))
        if _free(c, "cx") and _free(c, "cy"):
            history.append((c.cx, c.cy, c.std_intrinsics["cx"], c.std_intrinsics["cy"]))
    # a held principal point is reported at the final weighted centre it was meant to be held at
    z_lo, z_hi = min(s.zoom for s in good), max(s.zoom for s in good)
    lo, hi = data.zoom_range or (z_lo, z_hi)
    domain = (float(lo), float(hi) if hi > lo else float(lo) + 1.0)
    range_warning = None
    if lo < z_lo or hi > z_hi:
        range_warning = (f"the zoom range [{lo:g}, {hi:g}] extends beyond the calibrated steps "
                         f"[{z_lo:g}, {z_hi:g}]: the curves are extrapolated there")
    fits: dict[str, ParameterFit] = {}
    for pname in ZOOM_PARAMETERS:
        zs, vs, ss, fixed = [], [], [], []
        free_std = [e[pname]["std"] for e in (s.estimates for s in good) if e[pname]["source"] != "fixed"]
        for s in good:
            e = s.estimates[pname]
            zs.append(s.zoom)
            vs.append(e["value"])
            if e["source"] == "fixed":
                fixed.append(True)
                ss.append(e["std"] if e["std"] is not None else _held_std(pname, s, free_std))
            else:
                fixed.append(False)
                ss.append(e["std"])
        fits[pname] = fit_parameter(pname, zs, vs, ss, fixed, options.families, domain,
                                    knots=options.spline_knots)
    curves: dict[str, ZoomCurve] = {p: f.curve for p, f in fits.items()}
    for pname in ("p1", "p2"):
        free = [(s.estimates[pname]["value"], s.estimates[pname]["std"]) for s in good
                if s.estimates[pname]["source"] != "fixed"]
        if free:
            v, sd = np.array(free).T
            curves[pname] = ConstantCurve(float(np.average(v, weights=1 / sd**2)))
        else:
            curves[pname] = ConstantCurve(0.0)
    curves["k3"] = ConstantCurve(0.0)
    intrinsics = ZoomIntrinsics(**curves)  # type: ignore[arg-type]
    mapping, mapping_warning = _mapping(curves["fx"], domain)
    t_fit = time.perf_counter()

    report = _report(name, data, size, steps, good, links, link, fits, curves, mapping, options,
                     {"detection": t_detect - t_start, "zhang": t_zhang - t_detect, "link": t_link - t_zhang,
                      "fit": t_fit - t_link, "total": t_fit - t_start})
    report["warnings"] += [w for w in (range_warning, mapping_warning) if w]
    return ZoomFit(name, size, intrinsics, mapping, steps, fits, links, report)


def _held_std(name: str, step: ZoomStep, free_std: list[float]) -> float:
    """Weight of a held distortion term in the curve fit: the std that moves the image corner by
    the auto-fix limit (0.2 px), so the curve may go anywhere that changes the image by less."""
    c = step.final
    assert c is not None
    if name in ("k1", "k2"):
        x, y = corner_radius(c.camera_matrix, c.image_size)
        r = math.hypot(x, y)
        power = 3 if name == "k1" else 5
        return 0.2 / (0.5 * (c.fx + c.fy) * r**power)
    return 3 * max(free_std) if free_std else 1.0


def _step_scale(prev: ZoomStep, step: ZoomStep, options: ZoomFitOptions) -> float:
    """Magnification from ``prev`` to ``step`` measured on same-pose views (1.0 if none)."""
    assert prev.zhang is not None
    ratios = []
    for va in prev.views:
        for vb in step.views:
            if va.target != vb.target:
                continue
            if max(abs(va.capture.pan - vb.capture.pan), abs(va.capture.tilt - vb.capture.tilt)) > options.pose_tolerance:
                continue
            common, ia, ib = np.intersect1d(va.detection.ids, vb.detection.ids, return_indices=True)
            if len(common) < options.min_link_points:
                continue
            xa = _undistort(va.detection, prev.zhang)[ia]
            xb = _undistort(vb.detection, prev.zhang)[ib]
            ratios.append(_similarity_scale(xa, xb)[0])
    return float(np.median(ratios)) if ratios else 1.0


def _mapping(fx: ZoomCurve, domain: tuple[float, float]) -> tuple[ZoomMapping, Optional[str]]:
    lo, hi = domain
    if hi <= lo:
        return ZoomMapping(lo, lo, ConstantCurve(1.0)), None
    x = np.linspace(lo, hi, 257)
    if isinstance(fx, PiecewiseLinearCurve):
        x = np.union1d(x, fx.x[(fx.x >= lo) & (fx.x <= hi)])
    f = np.asarray(fx(x), dtype=float)
    mag = f / f[0]
    warning = None
    if np.any(np.diff(mag) <= 0):
        fixed = np.maximum.accumulate(mag) + np.arange(len(mag)) * 1e-9
        warning = (f"the fitted fx does not increase with zoom everywhere (largest dip "
                   f"{float(np.max(fixed - mag - np.arange(len(mag)) * 1e-9)):.3g}); "
                   "the magnification mapping was made monotonic")
        mag = fixed
    return ZoomMapping(lo, hi, PiecewiseLinearCurve(x, mag)), warning


def _report(camera: str, data: Dataset, size: tuple[int, int], steps: list[ZoomStep], good: list[ZoomStep],
            links: list[StepLink], link: Optional[dict[str, Any]], fits: dict[str, ParameterFit],
            curves: dict[str, ZoomCurve], mapping: ZoomMapping, options: ZoomFitOptions,
            timing: dict[str, float]) -> dict[str, Any]:
    index = {id(s): i for i, s in enumerate(good)}
    step_reports = []
    for s in steps:
        entry: dict[str, Any] = {"zoom": s.zoom, "captures": len(s.captures), "views": len(s.views),
                                 "targets": sorted({v.target for v in s.views}),
                                 "status": "ok" if s.ok else "dropped"}
        if s.error:
            entry["reason"] = s.error
        entry["rejected"] = [{"index": c.index, "image": c.image, "reason": why} for c, why in s.rejected]
        if s.zhang is not None:
            z = s.zhang
            entry["zhang"] = {"fx": z.fx, "fy": z.fy, "cx": z.cx, "cy": z.cy,
                              "distortion": [float(v) for v in z.distortion[:5]], "rms": z.rms,
                              "std": {k: z.std_intrinsics[k] for k in ("fx", "fy", "cx", "cy", "k1", "k2")},
                              "fixed": dict(z.fixed), "warnings": list(z.warnings),
                              "max_view_tilt_deg": float(z.view_tilts_deg().max())}
        if s.refined is not None:
            entry["refined"] = {"rms": s.refined.rms, "fixed": dict(s.refined.fixed)}
        if s.ok:
            entry["estimates"] = s.estimates
            if link is not None:
                i = index[id(s)]
                entry["zoom_translation"] = {"value": float(link["d"][i]), "std": float(link["d_std"][i])}
        step_reports.append(entry)
    dropped_captures = [d.to_dict() for d in data.dropped]
    rejected = [{"index": c.index, "image": c.image, "zoom": s.zoom, "reason": why}
                for s in steps for c, why in s.rejected]
    warnings = list(data.warnings)
    for s in steps:
        if not s.ok:
            warnings.append(f"zoom step {s.zoom:g} dropped: {s.error}")
    link_report: dict[str, Any] = {"used": link is not None, "links": []}
    if link is not None:
        link_report.update({
            "chi2_per_dof": link["chi2"],
            "board_distances_m": link["distances"],
            "links": [{"target": lk.target, "zoom_a": good[lk.a].zoom, "zoom_b": good[lk.b].zoom,
                       "captures": [lk.capture_a, lk.capture_b], "ratio": lk.ratio, "std": lk.std,
                       "points": lk.points, "residual_px": lk.residual_px,
                       "normalized_residual": float(r), "used": bool(u)}
                      for lk, r, u in zip(links, link["link_residuals"], link["used"])],
            "zoom_translation_note": "forward motion of the optical centre relative to the widest step, "
                                     "a by-product (the model written keeps ideal kinematics)",
        })
    return _json({
        "camera": camera,
        "image_size": list(size),
        "dataset": data.source,
        "zoom_range": [mapping.raw_min, mapping.raw_max],
        "captures": len(data.captures),  # usable captures of this camera
        "manifest_captures": data.total,
        "steps": step_reports,
        "steps_used": len(good),
        "steps_dropped": len(steps) - len(good),
        "dropped_captures": dropped_captures,
        "rejected_images": rejected,
        "linking": link_report,
        "parameters": {p: f.to_dict() for p, f in fits.items()},
        "constant": {p: curves[p].to_dict() for p in ("p1", "p2", "k3")},
        "magnification": {"at_raw_max": float(mapping.magnification(mapping.raw_max))},
        "options": {"zoom_tolerance": options.zoom_tolerance, "min_views": options.min_views,
                    "auto_fix": options.auto_fix, "link_steps": options.link_steps, "refine": options.refine,
                    "families": list(options.families)},
        "warnings": warnings,
        "timing_s": {k: round(v, 3) for k, v in timing.items()},
    })

