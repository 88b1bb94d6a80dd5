"""Target detection with sub-pixel corners: checkerboards and ChArUco boards.

Checkerboard: ``cv2.findChessboardCorners`` (with FAST_CHECK; falling back to
``findChessboardCornersSB``), then ``cv2.cornerSubPix`` with a half-window of ``subpix_fraction``
(0.3) times the smallest distance between neighbouring corners. Measured against the simulator's
exact corners (8 views of a 10x7 board, 1280x720, k1 = -0.24, 2x2 supersampled renders):

=====================================  ===============  ==============  =======
method                                 RMS, noise-free  RMS, rig noise  time
=====================================  ===============  ==============  =======
findChessboardCorners, no refinement   0.074 px         0.083 px        4 ms
  + cornerSubPix, fixed 11 px          0.021 px         0.027 px        4 ms
  + cornerSubPix, 0.3 x spacing        0.021 px         0.027 px        4 ms
findChessboardCornersSB (ACCURACY)     0.042-0.076 px   0.044-0.076 px  70 ms
  + cornerSubPix, 0.3 x spacing        0.021 px         0.027 px        70 ms
=====================================  ===============  ==============  =======

(SB alone also has a bias of up to 0.02 px.) A fixed window is not safe: once it reaches the
outer edges of the outer squares it is biased. On OpenCV's sample images (squares 22-37 px) an
11 px half-window gives a calibration RMS of 0.393 px where 0.3 x spacing gives 0.178 px (0.5 x
spacing, the ROS camera_calibration rule: 1.32 px).

ChArUco: ``cv2.aruco.CharucoDetector`` with ``minMarkers = 1`` (a corner next to a single decoded
marker is kept: that is what keeps a board that overfills the view usable, its other neighbouring
marker being cut by the image edge), then ``cornerSubPix`` with a half-window of 0.8 times the
clearance between a corner and its markers (a larger window reaches into the markers). On 12 views
of a board twice as wide as the field (168 corners visible): OpenCV's defaults find 45 corners and
6 views with >= 4 corners at 0.029 px RMS; these settings 130 corners and 9 views at 0.027 px.
Partial views whose corners lie on one line of the board are rejected (``DEGENERATE``).

Corner order: checkerboard corners are put in the board's order (row-major from the corner whose
outer square is black, :class:`~ptz_calibration.simulation.Checkerboard`), using the colour of the
squares; boards with ``rows + cols`` even are symmetric under a half turn and keep OpenCV's order.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable, Optional, Union

import cv2
import numpy as np
from numpy.typing import NDArray

from .targets import CharucoTarget, Checkerboard, Target

__all__ = [
    "board_pose",
    "Detection",
    "NotFound",
    "NotFoundReason",
    "DetectionResult",
    "DetectionOptions",
    "ImageReadError",
    "read_image",
    "as_gray8",
    "detect",
    "detect_checkerboard",
    "detect_charuco",
    "detect_file",
    "detect_files",
]


@dataclass(frozen=True)
class Detection:
    """Corners of one target found in one image.

    ``ids[i]`` indexes ``target.object_points()``: ``object_points[i]`` is the board point seen at
    ``image_points[i]`` (pixels, OpenCV convention: pixel centres at integer coordinates).
    """

    image_points: NDArray[np.float64]  # (N, 2)
    object_points: NDArray[np.float64]  # (N, 3), target frame, z = 0
    ids: NDArray[np.int64]  # (N,)
    image_size: tuple[int, int]  # (width, height)
    total: int  # corners on the whole target
    source: str = ""  # file name or label

    def __post_init__(self) -> None:
        ip = np.asarray(self.image_points, dtype=np.float64).reshape(-1, 2)
        op = np.asarray(self.object_points, dtype=np.float64).reshape(-1, 3)
        ids = np.asarray(self.ids, dtype=np.int64).reshape(-1)
        if not len(ip) == len(op) == len(ids):
            raise ValueError(f"{self.source or 'detection'}: {len(ip)} image points, {len(op)} object "
                             f"points and {len(ids)} ids")
        object.__setattr__(self, "image_points", ip)
        object.__setattr__(self, "object_points", op)
        object.__setattr__(self, "ids", ids)
        object.__setattr__(self, "image_size", (int(self.image_size[0]), int(self.image_size[1])))

    @property
    def count(self) -> int:
        """Number of corners found."""
        return len(self.ids)

    @property
    def complete(self) -> bool:
        """True if every corner of the target was found."""
        return self.count == self.total

    @classmethod
    def from_points(cls, image_points: np.ndarray, object_points: np.ndarray,
                    image_size: tuple[int, int], source: str = "") -> "Detection":
        """A detection from corresponding points measured elsewhere (all points, in order)."""
        n = len(np.asarray(image_points).reshape(-1, 2))
        return cls(image_points, object_points, np.arange(n), image_size, n, source)


class NotFoundReason(str, Enum):
    """Why an image gave no usable detection."""

    UNREADABLE = "unreadable"  # missing file, not an image, empty image
    NO_TARGET = "no_target"  # the target was not found
    TOO_FEW_CORNERS = "too_few_corners"  # a partial ChArUco view below ``min_corners``
    DEGENERATE = "degenerate"  # the corners found lie on one line of the board


@dataclass(frozen=True)
class NotFound:
    """No usable detection in an image, with the reason. Falsy, so ``if result:`` works."""

    reason: NotFoundReason
    message: str
    image_size: Optional[tuple[int, int]] = None
    source: str = ""

    def __bool__(self) -> bool:
        return False

    def __str__(self) -> str:
        return f"{self.source}: {self.message}" if self.source else self.message


DetectionResult = Union[Detection, NotFound]


@dataclass(frozen=True)
class DetectionOptions:
    """Detection settings (defaults are the measured best; see the module notes)."""

    method: str = "auto"  # checkerboard: "classic" (findChessboardCorners), "sb", "auto" (both)
    subpix_window: Optional[int] = None  # cornerSubPix half-window, px; None = automatic; 0 = off
    subpix_fraction: float = 0.3  # automatic window: fraction of the smallest corner spacing
    charuco_fraction: float = 0.8  # ChArUco: fraction of the corner-to-marker clearance
    subpix_iterations: int = 40
    subpix_eps: float = 1e-3  # px, cornerSubPix stops when a step is smaller
    min_corners: int = 6  # partial ChArUco detections with fewer corners are rejected
    charuco_min_markers: int = 1  # decoded markers next to a ChArUco corner for it to count

    def __post_init__(self) -> None:
        if self.method not in ("auto", "classic", "sb"):
            raise ValueError(f"method must be 'auto', 'classic' or 'sb', got {self.method!r}")
        if self.subpix_window is not None and self.subpix_window < 0:
            raise ValueError(f"subpix_window must be >= 0 (0 = no refinement), got {self.subpix_window}")
        if not 0 < self.subpix_fraction < 1 or not 0 < self.charuco_fraction <= 1:
            raise ValueError("subpix_fraction must be in (0, 1), charuco_fraction in (0, 1]")
        if self.subpix_iterations < 1 or not self.subpix_eps > 0:
            raise ValueError("subpix_iterations must be >= 1 and subpix_eps > 0")
        if self.min_corners < 4:
            raise ValueError(f"min_corners must be >= 4 (a homography needs 4), got {self.min_corners}")
        if self.charuco_min_markers not in (1, 2):
            raise ValueError(f"charuco_min_markers must be 1 or 2, got {self.charuco_min_markers}")


class ImageReadError(OSError):
    """An image file that cannot be used: missing, unreadable or not an image."""


# -- images --------------------------------------------------------------------------------------
def read_image(path: str | os.PathLike) -> NDArray[np.uint8]:
    """Read an image file as 8-bit grayscale; :class:`ImageReadError` names the file and the problem."""
    p = Path(path)
    if not p.exists():
        raise ImageReadError(f"{p}: file not found")
    if not p.is_file():
        raise ImageReadError(f"{p}: not a file")
    try:
        data = np.fromfile(p, dtype=np.uint8)
    except OSError as exc:
        raise ImageReadError(f"{p}: cannot read: {exc.strerror or exc}") from None
    if data.size == 0:
        raise ImageReadError(f"{p}: empty file")
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ImageReadError(f"{p}: not an image OpenCV can decode")
    return as_gray8(image)


def as_gray8(image: np.ndarray) -> NDArray[np.uint8]:
    """Grayscale uint8 view of an image (BGR/BGRA converted, 16-bit and float scaled)."""
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim == 3:
        code = cv2.COLOR_BGRA2GRAY if img.shape[2] == 4 else cv2.COLOR_BGR2GRAY
        img = cv2.cvtColor(img, code)
    if img.ndim != 2 or img.size == 0:
        raise ValueError(f"expected a 2-D grayscale or 3-channel image, got shape {np.shape(image)}")
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.uint16:
        return cv2.convertScaleAbs(img, alpha=255.0 / max(int(img.max()), 1))
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)  # float levels in DN


# -- helpers -------------------------------------------------------------------------------------
def _criteria(o: DetectionOptions) -> tuple[int, int, float]:
    return (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_COUNT, o.subpix_iterations, o.subpix_eps)


def _refine(image: np.ndarray, points: np.ndarray, half: int, o: DetectionOptions) -> np.ndarray:
    pts = np.ascontiguousarray(points, dtype=np.float32).reshape(-1, 1, 2)
    return cv2.cornerSubPix(image, pts, (half, half), (-1, -1), _criteria(o)).reshape(-1, 2).astype(np.float64)


def _grid_spacing(grid: np.ndarray) -> float:
    """Smallest distance (px) between neighbouring corners of a (rows, cols, 2) grid."""
    d_cols = np.linalg.norm(np.diff(grid, axis=1), axis=2)
    d_rows = np.linalg.norm(np.diff(grid, axis=0), axis=2)
    return float(min(d_cols.min(), d_rows.min()))


def _spread_ok(board_xy: np.ndarray, square: float) -> bool:
    """False if the board points lie (nearly) on one line: RMS distance to it < square / 4."""
    centred = board_xy - board_xy.mean(axis=0)
    s = np.linalg.svd(centred, compute_uv=False)
    return len(board_xy) >= 3 and s[-1] / np.sqrt(len(board_xy)) > 0.25 * square


def _canonical_order(image: np.ndarray, corners: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Corners in the board's row-major order: right-handed, outer square of corner 0 black."""
    g = corners.reshape(rows, cols, 2)
    along_row = (g[:, -1] - g[:, 0]).mean(axis=0)
    down_col = (g[-1] - g[0]).mean(axis=0)
    if along_row[0] * down_col[1] - along_row[1] * down_col[0] < 0:
        g = g[::-1]  # mirrored order: the board seen from the front is right-handed
    if (rows + cols) % 2 == 1:  # otherwise a half turn maps the board onto itself
        centres = 0.25 * (g[:-1, :-1] + g[1:, :-1] + g[:-1, 1:] + g[1:, 1:])
        level = cv2.remap(image.astype(np.float32), centres[..., 0].astype(np.float32),
                          centres[..., 1].astype(np.float32), cv2.INTER_LINEAR)
        i, j = np.indices(level.shape)
        black = (i + j) % 2 == 0  # square (i+1, j+1) of the board: black when i + j is even
        if level[black].mean() > level[~black].mean():
            g = g[::-1, ::-1]
    return g.reshape(-1, 2)


# -- checkerboard --------------------------------------------------------------------------------
def _find_checkerboard(image: np.ndarray, board: Checkerboard, method: str) -> Optional[np.ndarray]:
    size = board.pattern_size
    if method in ("auto", "classic"):
        # FAST_CHECK: 1.0-1.3 s -> 15 ms on a 1280x720 image without the board
        flags = cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE | cv2.CALIB_CB_FAST_CHECK
        ok, corners = cv2.findChessboardCorners(image, size, None, flags)
        if ok:
            return corners.reshape(-1, 2).astype(np.float64)
    if method in ("auto", "sb"):
        flags = cv2.CALIB_CB_NORMALIZE_IMAGE | cv2.CALIB_CB_EXHAUSTIVE | cv2.CALIB_CB_ACCURACY
        ok, corners = cv2.findChessboardCornersSB(image, size, flags)
        if ok:
            return corners.reshape(-1, 2).astype(np.float64)
    return None


def detect_checkerboard(image: np.ndarray, board: Checkerboard,
                        options: DetectionOptions = DetectionOptions(), source: str = "") -> DetectionResult:
    """All inner corners of a checkerboard, refined to sub-pixel accuracy, in the board's order."""
    img = as_gray8(image)
    size = (img.shape[1], img.shape[0])
    corners = _find_checkerboard(img, board, options.method)
    if corners is None:
        return NotFound(NotFoundReason.NO_TARGET,
                        f"no {board.cols}x{board.rows} checkerboard found", size, source)
    grid = corners.reshape(board.rows, board.cols, 2)
    half = options.subpix_window
    if half is None:
        half = max(2, int(np.ceil(options.subpix_fraction * _grid_spacing(grid))))
    if half > 0:
        corners = _refine(img, corners, half, options)
    corners = _canonical_order(img, corners, board.rows, board.cols)
    n = board.rows * board.cols
    return Detection(corners, board.object_points(), np.arange(n), size, n, source)


# -- ChArUco -------------------------------------------------------------------------------------
@lru_cache(maxsize=16)
def _charuco_detector(target: CharucoTarget, min_markers: int) -> "cv2.aruco.CharucoDetector":
    params = cv2.aruco.CharucoParameters()
    params.minMarkers = min_markers
    return cv2.aruco.CharucoDetector(target.board(), params)


def detect_charuco(image: np.ndarray, target: CharucoTarget,
                   options: DetectionOptions = DetectionOptions(), source: str = "") -> DetectionResult:
    """The ChArUco corners visible in an image (a partial set with ids), refined to sub-pixel."""
    img = as_gray8(image)
    size = (img.shape[1], img.shape[0])
    n_total = (target.squares_x - 1) * (target.squares_y - 1)
    corners, ids, markers, _ = _charuco_detector(target, options.charuco_min_markers).detectBoard(img)
    n_markers = 0 if markers is None else len(markers)
    if ids is None or len(ids) == 0:
        why = "no ArUco markers" if n_markers == 0 else f"{n_markers} markers but no corners"
        return NotFound(NotFoundReason.NO_TARGET, f"no ChArUco board found ({why} of "
                        f"{target.dictionary})", size, source)
    ids = ids.reshape(-1).astype(np.int64)
    pts = corners.reshape(-1, 2).astype(np.float64)
    # sub-pixel window: within the clearance between a corner and its markers
    quads = np.asarray(markers, dtype=np.float64).reshape(-1, 4, 2)
    px_per_m = float(np.linalg.norm(quads - np.roll(quads, 1, axis=1), axis=2).min()) / target.marker
    clearance = 0.5 * (target.square - target.marker) * px_per_m
    half = options.subpix_window
    if half is None:
        half = max(2, int(options.charuco_fraction * clearance))
    if half > 0:
        w, h = size
        inside = (pts[:, 0] >= half + 1) & (pts[:, 1] >= half + 1) & \
                 (pts[:, 0] <= w - half - 2) & (pts[:, 1] <= h - half - 2)
        ids, pts = ids[inside], pts[inside]
        if len(ids):
            refined = _refine(img, pts, half, options)
            kept = np.linalg.norm(refined - pts, axis=1) <= 0.5 * max(clearance, 1.0)
            ids, pts = ids[kept], refined[kept]
    order = np.argsort(ids)
    ids, pts = ids[order], pts[order]
    obj = target.object_points()[ids]
    if len(ids) < options.min_corners:
        return NotFound(NotFoundReason.TOO_FEW_CORNERS, f"only {len(ids)} ChArUco corners "
                        f"(of {n_total}; at least {options.min_corners} needed)", size, source)
    if not _spread_ok(obj[:, :2], target.square):
        return NotFound(NotFoundReason.DEGENERATE, f"the {len(ids)} ChArUco corners found lie on "
                        "one line of the board", size, source)
    return Detection(pts, obj, ids, size, n_total, source)


# -- dispatch ------------------------------------------------------------------------------------
def detect(image: np.ndarray, target: Target, options: DetectionOptions = DetectionOptions(),
           source: str = "") -> DetectionResult:
    """Detect ``target`` in ``image`` (grayscale or BGR array)."""
    if isinstance(target, Checkerboard):
        return detect_checkerboard(image, target, options, source)
    if isinstance(target, CharucoTarget):
        return detect_charuco(image, target, options, source)
    raise TypeError(f"not a calibration target: {type(target).__name__}")


def detect_file(path: str | os.PathLike, target: Target,
                options: DetectionOptions = DetectionOptions()) -> DetectionResult:
    """Read an image file and detect ``target``; an unreadable file gives ``NotFound(UNREADABLE)``."""
    source = str(path)
    try:
        image = read_image(path)
    except ImageReadError as exc:
        return NotFound(NotFoundReason.UNREADABLE, str(exc).removeprefix(f"{source}: "), None, source)
    return detect(image, target, options, source)


def detect_files(paths: Iterable[str | os.PathLike], target: Target,
                 options: DetectionOptions = DetectionOptions(),
                 progress: Optional[Callable[[int, int, str], None]] = None) -> list[DetectionResult]:
    """:func:`detect_file` on every path, in order; ``progress(done, total, path)`` after each."""
    paths = list(paths)
    results = []
    for k, p in enumerate(paths):
        results.append(detect_file(p, target, options))
        if progress is not None:
            progress(k + 1, len(paths), str(p))
    return results


def board_pose(det: Detection, K: NDArray[np.float64], D: NDArray[np.float64]
               ) -> Optional[tuple[NDArray[np.float64], NDArray[np.float64]]]:
    """Board-to-camera pose ``(R, t)`` (``X_cam = R X_board + t``) of a detection by solvePnP with
    the camera matrix ``K`` and distortion ``D``; None when solvePnP fails."""
    ok, rvec, tvec = cv2.solvePnP(det.object_points, det.image_points, K, D)
    if not ok:
        return None
    return cv2.Rodrigues(rvec)[0], tvec.reshape(3)
