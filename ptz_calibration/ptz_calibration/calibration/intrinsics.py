"""Single-camera calibration (a fixed camera, or one zoom step) with Zhang's method.

``cv2.calibrateCameraExtended`` on the detections of several views of a planar target: camera
matrix, distortion, per-view poses, RMS and per-view reprojection errors, and the standard
deviations of every parameter: both OpenCV's and those of :mod:`.uncertainty` (equal when the
problem is well conditioned; only the latter are right when it is not, and they drive ``auto_fix``).

What long focal lengths cannot determine (see :mod:`.conditioning`): k3, then the tangential
terms, then k2 (the radial terms are nearly collinear over a field of a few degrees), and the
principal point (a narrow view is nearly orthographic, so an image shift and a board rotation look
the same; likewise when every view is nearly fronto-parallel, Zhang's degenerate case, which also
leaves the focal length unconstrained). With ``auto_fix`` such terms are fixed one at a time (the
least observable first) and the calibration repeated; the result says what was fixed and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Optional, Sequence

import cv2
import numpy as np
from numpy.typing import NDArray

from ..model import PtzCameraModel, ZoomIntrinsics, camera_info_dict
from .conditioning import find_ill_conditioned
from .uncertainty import calibration_std
from .detection import Detection, DetectionResult, NotFound
from .flags import flag_names

__all__ = [
    "INTRINSIC_NAMES",
    "CalibrationError",
    "CalibrationOptions",
    "IntrinsicCalibration",
    "calibrate_intrinsics",
]

#: Order of ``calibrateCameraExtended``'s ``stdDeviationsIntrinsics``.
INTRINSIC_NAMES: tuple[str, ...] = ("fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2", "k3", "k4", "k5",
                                    "k6", "s1", "s2", "s3", "s4", "tau_x", "tau_y")


class CalibrationError(ValueError):
    """The views cannot give a calibration (too few, inconsistent, or the solver failed)."""


@dataclass(frozen=True)
class CalibrationOptions:
    """Settings of :func:`calibrate_intrinsics`."""

    flags: int = 0  # cv2.CALIB_* (see .flags.parse_flags)
    camera_matrix: Optional[NDArray[np.float64]] = None  # initial K: aspect ratio, principal point, guess
    distortion: Optional[NDArray[np.float64]] = None  # initial distortion (with USE_INTRINSIC_GUESS)
    min_views: int = 3  # Zhang: 3 views for 5 intrinsics (2 with zero skew)
    auto_fix: bool = False  # fix what the views cannot determine, and say so
    # auto_fix holds p1, p2 at the initial ``distortion`` (FIX_TANGENT_DIST) instead of zeroing them
    # (ZERO_TANGENT_DIST): a zoom step starting from its neighbour keeps the neighbour's values
    keep_initial_tangential: bool = False
    noise_floor_px: float = 0.05  # per-coordinate residual assumed at least, when judging conditioning
    distortion_limit_px: float = 0.2  # max std of a distortion term's effect at the image corner
    principal_point_limit_px: float = 3.0  # max std of the principal point
    significance: float = 2.0  # a distortion term |value| >= this many std is kept regardless
    max_iterations: int = 30  # Levenberg-Marquardt (OpenCV's default criteria)
    epsilon: float = float(np.finfo(float).eps)

    def __post_init__(self) -> None:
        if self.min_views < 1:
            raise ValueError(f"min_views must be >= 1, got {self.min_views}")
        if self.flags & cv2.CALIB_USE_INTRINSIC_GUESS and self.camera_matrix is None:
            raise ValueError("USE_INTRINSIC_GUESS needs an initial camera_matrix")
        if self.camera_matrix is not None and np.shape(self.camera_matrix) != (3, 3):
            raise ValueError(f"camera_matrix must be 3x3, got shape {np.shape(self.camera_matrix)}")
        for name in ("noise_floor_px", "distortion_limit_px", "principal_point_limit_px", "significance"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class IntrinsicCalibration:
    """The result of :func:`calibrate_intrinsics`."""

    camera_matrix: NDArray[np.float64]  # (3, 3)
    distortion: NDArray[np.float64]  # (5,) plumb_bob k1 k2 p1 p2 k3 (8 with RATIONAL_MODEL, ...)
    image_size: tuple[int, int]  # (width, height)
    rms: float  # px, sqrt(mean squared reprojection error over all points)
    per_view_errors: NDArray[np.float64]  # (V,) px, RMS per view
    rvecs: NDArray[np.float64]  # (V, 3) target-to-camera rotation vectors
    tvecs: NDArray[np.float64]  # (V, 3) target origin in the camera frame (target units)
    std_intrinsics: dict[str, float]  # standard deviations by name (0 fixed, inf undetermined)
    std_extrinsics: NDArray[np.float64]  # (V, 6): rvec, tvec
    flags: int  # the flags of the final solve (user's + auto-fixed)
    std_intrinsics_opencv: dict[str, float] = field(default_factory=dict)  # calibrateCameraExtended's
    std_extrinsics_opencv: Optional[NDArray[np.float64]] = None  # (V, 6), calibrateCameraExtended's
    fixed: dict[str, str] = field(default_factory=dict)  # auto-fixed term -> reason
    warnings: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()  # per view
    point_counts: tuple[int, ...] = ()  # per view

    @property
    def fx(self) -> float:
        return float(self.camera_matrix[0, 0])

    @property
    def fy(self) -> float:
        return float(self.camera_matrix[1, 1])

    @property
    def cx(self) -> float:
        return float(self.camera_matrix[0, 2])

    @property
    def cy(self) -> float:
        return float(self.camera_matrix[1, 2])

    @property
    def distortion_model(self) -> str:
        """camera_info distortion model name."""
        return {5: "plumb_bob", 8: "rational_polynomial"}.get(len(self.distortion), f"opencv_{len(self.distortion)}")

    def view_tilts_deg(self) -> NDArray[np.float64]:
        """(V,) angle between each view's target normal and the optical axis, degrees."""
        return np.array([np.degrees(np.arccos(min(1.0, abs(cv2.Rodrigues(r)[0][2, 2]))))
                         for r in self.rvecs])

    def camera_info(self, camera_name: str = "camera") -> dict[str, Any]:
        """Standard camera_info YAML content (as :func:`ptz_calibration.model.write_camera_info` writes)."""
        d = self.distortion
        if len(d) not in (5, 8):
            raise CalibrationError(f"camera_info holds plumb_bob (5) or rational_polynomial (8) "
                                   f"distortion, not {len(d)} coefficients")
        w, h = self.image_size
        model = PtzCameraModel(camera_name, w, h, ZoomIntrinsics.constant(self.fx, self.fy, self.cx, self.cy, d[:5]))
        info = camera_info_dict(model, 0.0)
        if len(d) == 8:
            info["distortion_model"] = "rational_polynomial"
            info["distortion_coefficients"] = {"rows": 1, "cols": 8, "data": [float(v) for v in d]}
        return info

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-ready): intrinsics, errors, standard deviations, views, what was fixed."""
        names = INTRINSIC_NAMES[4:4 + len(self.distortion)]  # k1 k2 p1 p2 k3 [k4 k5 k6 ...]
        tilts = self.view_tilts_deg()
        views = [{"source": s, "points": n, "rms": float(e), "tilt_deg": float(t),
                  "rvec": [float(v) for v in r], "tvec": [float(v) for v in tv],
                  "std_rvec": [_json_float(v) for v in sd[:3]], "std_tvec": [_json_float(v) for v in sd[3:]]}
                 for s, n, e, t, r, tv, sd in zip(self.sources, self.point_counts, self.per_view_errors,
                                                   tilts, self.rvecs, self.tvecs, self.std_extrinsics)]
        return {
            "image_width": self.image_size[0],
            "image_height": self.image_size[1],
            "fx": self.fx, "fy": self.fy, "cx": self.cx, "cy": self.cy,
            "camera_matrix": self.camera_matrix.tolist(),
            "distortion_model": self.distortion_model,
            "distortion": {n: float(v) for n, v in zip(names, self.distortion)},
            "rms": self.rms,
            "std": {k: _json_float(v) for k, v in self.std_intrinsics.items() if k in ("fx", "fy", "cx", "cy") + names},
            "std_opencv": {k: _json_float(v) for k, v in self.std_intrinsics_opencv.items()
                           if k in ("fx", "fy", "cx", "cy") + names},
            "flags": flag_names(self.flags),
            "flags_value": int(self.flags),
            "fixed": dict(self.fixed),
            "warnings": list(self.warnings),
            "views": views,
        }


def _json_float(value: float) -> float | None:
    """A float for JSON: None where infinite or NaN (undetermined)."""
    return float(value) if np.isfinite(value) else None


def _usable_views(results: Sequence[DetectionResult], options: CalibrationOptions,
                  image_size: Optional[tuple[int, int]]) -> tuple[list[Detection], tuple[int, int]]:
    views = [r for r in results if isinstance(r, Detection)]
    dropped = [r for r in results if isinstance(r, NotFound)]
    if len(views) < options.min_views:
        detail = "".join(f"\n  {r}" for r in dropped)
        raise CalibrationError(f"{len(views)} usable view{'s' * (len(views) != 1)} of {len(results)}, "
                               f"at least {options.min_views} needed" + (f"; dropped:{detail}" if detail else ""))
    size = image_size or views[0].image_size
    other = [v for v in views if v.image_size != tuple(size)]
    if other:
        names = ", ".join(f"{v.source or '#' + str(views.index(v))} {v.image_size[0]}x{v.image_size[1]}"
                          for v in other[:5])
        raise CalibrationError(f"views differ in image size: expected {size[0]}x{size[1]}, got {names}")
    few = [v for v in views if v.count < 4]
    if few:
        raise CalibrationError(f"a view needs at least 4 points: {few[0].source or 'view'} has {few[0].count}")
    return views, (int(size[0]), int(size[1]))


def _solve(views: list[Detection], size: tuple[int, int], flags: int, options: CalibrationOptions):
    n_dist = 14 if flags & cv2.CALIB_TILTED_MODEL else 12 if flags & cv2.CALIB_THIN_PRISM_MODEL \
        else 8 if flags & cv2.CALIB_RATIONAL_MODEL else 5
    K0 = np.eye(3) if options.camera_matrix is None else np.array(options.camera_matrix, dtype=float)
    D0 = np.zeros(n_dist)
    if options.distortion is not None:
        given = np.asarray(options.distortion, dtype=float).ravel()[:n_dist]
        D0[: given.size] = given
    obj = [v.object_points.astype(np.float32) for v in views]
    img = [v.image_points.astype(np.float32).reshape(-1, 1, 2) for v in views]
    criteria = (cv2.TERM_CRITERIA_COUNT + cv2.TERM_CRITERIA_EPS, options.max_iterations, options.epsilon)
    try:
        out = cv2.calibrateCameraExtended(obj, img, size, K0, D0, flags=flags, criteria=criteria)
    except cv2.error as exc:
        raise CalibrationError(f"cv2.calibrateCamera failed on {len(views)} views: "
                               f"{exc.err or exc}".strip()) from None
    rms, K, D, rvecs, tvecs, std_in, std_ex, per_view = out
    if not (np.isfinite(rms) and np.all(np.isfinite(K)) and np.all(np.isfinite(D))):
        raise CalibrationError(f"calibration diverged on {len(views)} views (non-finite result); "
                               "check the detections and the flags")
    D = np.asarray(D, dtype=float).ravel()[:n_dist]  # OpenCV may pad the rational model to 14
    return float(rms), K, D, rvecs, tvecs, std_in.ravel(), std_ex.ravel(), per_view.ravel()


def _initial_centre(options: CalibrationOptions, size: tuple[int, int]) -> str:
    """Where ``CALIB_FIX_PRINCIPAL_POINT`` keeps the principal point, in words."""
    if options.camera_matrix is not None and options.flags & cv2.CALIB_USE_INTRINSIC_GUESS:
        K = np.asarray(options.camera_matrix, dtype=float)
        return f"at ({K[0, 2]:.1f}, {K[1, 2]:.1f}), the initial camera matrix's"
    return f"at ({(size[0] - 1) / 2:.1f}, {(size[1] - 1) / 2:.1f}), the image centre"


def _fix(found: Any, options: CalibrationOptions, size: tuple[int, int]) -> tuple[int, str]:
    """The flag that fixes an ill-conditioned term, and the reason with the value it is held at.

    With ``USE_INTRINSIC_GUESS`` OpenCV holds a fixed k1..k3 at the initial ``distortion`` (not at
    0), and ``keep_initial_tangential`` holds p1, p2 there too; the reason says so.
    """
    term, reason = found.term, found.reason
    if term.name == "principal_point":
        return term.flag, reason.replace("at its initial value", _initial_centre(options, size))
    guess = options.distortion is not None and bool(options.flags & cv2.CALIB_USE_INTRINSIC_GUESS)
    d0 = np.zeros(5)
    if guess:
        given = np.asarray(options.distortion, dtype=float).ravel()[:5]
        d0[: given.size] = given
    if term.name == "tangential":
        if options.keep_initial_tangential:
            held = d0 if guess else np.zeros(5)
            return (cv2.CALIB_FIX_TANGENT_DIST,
                    reason.replace(term.what, f"p1, p2 held at their initial values ({held[2]:.3g}, {held[3]:.3g})"))
        return term.flag, reason
    k = {"k1": 0, "k2": 1, "k3": 4}[term.name]
    if guess and d0[k] != 0.0:
        reason = reason.replace(term.what, f"{term.name} held at its initial value {d0[k]:.4g}")
    return term.flag, reason


def _warnings(result: IntrinsicCalibration) -> tuple[str, ...]:
    out = []
    rel = result.std_intrinsics["fx"] / result.fx
    if rel > 0.01:
        out.append(f"focal length poorly determined: fx = {result.fx:.1f} +- {result.std_intrinsics['fx']:.1f} px "
                   f"({100 * rel:.1f} %)")
    tilts = result.view_tilts_deg()
    if tilts.max() < 15.0:
        out.append(f"every view is within {tilts.max():.0f} deg of fronto-parallel: focal length and "
                   "principal point are poorly constrained; tilt the target by 20-45 deg in some views")
    med = float(np.median(result.per_view_errors))
    for s, e in zip(result.sources, result.per_view_errors):
        if e > 3 * med and e > 0.5:
            out.append(f"view {s}: reprojection RMS {e:.2f} px is over 3x the median ({med:.2f} px); "
                       "check its detection")
    return tuple(out)


def calibrate_intrinsics(results: Sequence[DetectionResult], options: CalibrationOptions = CalibrationOptions(),
                         image_size: Optional[tuple[int, int]] = None) -> IntrinsicCalibration:
    """Calibrate one camera from detections (:class:`NotFound` entries are skipped).

    Raises :class:`CalibrationError` with too few usable views (naming those dropped and why),
    mixed image sizes, views with fewer than 4 points, or a failed solve.
    """
    views, size = _usable_views(results, options, image_size)
    flags = options.flags
    fixed: dict[str, str] = {}
    while True:
        rms, K, D, rvecs, tvecs, std_in, std_ex, per_view = _solve(views, size, flags, options)
        std_cv = {n: float(v) for n, v in zip(INTRINSIC_NAMES, std_in)}
        std, std_views = calibration_std(views, K, D, np.asarray(rvecs, float).reshape(-1, 3),
                                         np.asarray(tvecs, float).reshape(-1, 3), flags)
        if not options.auto_fix:
            break
        values = {"fx": K[0, 0], "fy": K[1, 1], "cx": K[0, 2], "cy": K[1, 2],
                  **dict(zip(INTRINSIC_NAMES[4:], D))}
        found = find_ill_conditioned(values, std, K, size, flags, rms / np.sqrt(2.0),  # per coordinate
                                     options.noise_floor_px, options.distortion_limit_px,
                                     options.principal_point_limit_px, options.significance)
        if found is None:
            break
        flag, reason = _fix(found, options, size)
        flags |= flag
        fixed[found.term.name] = reason
    result = IntrinsicCalibration(
        camera_matrix=np.asarray(K, dtype=float), distortion=D, image_size=size, rms=rms,
        per_view_errors=np.asarray(per_view, dtype=float),
        rvecs=np.asarray(rvecs, dtype=float).reshape(-1, 3), tvecs=np.asarray(tvecs, dtype=float).reshape(-1, 3),
        std_intrinsics=std, std_extrinsics=std_views, flags=flags,
        std_intrinsics_opencv=std_cv, std_extrinsics_opencv=np.asarray(std_ex, dtype=float).reshape(-1, 6),
        fixed=fixed, sources=tuple(v.source or f"view {i}" for i, v in enumerate(views)),
        point_counts=tuple(v.count for v in views),
    )
    return replace(result, warnings=_warnings(result))
