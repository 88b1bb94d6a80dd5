"""Planar calibration targets and the scene that places them in the world.

Target frame (both kinds, OpenCV convention): origin on the board plane, x to the right along the
board's columns, y down along its rows, z = x cross y pointing *into* the board (away from a camera
that sees the printed side). Printed points have z = 0.

A target's *texture* is a piecewise-constant reflectance image (0 = black, 1 = white) whose texels
are aligned with every edge of the printed pattern, so sampling it with nearest-texel lookup
reproduces the printed board exactly (no resampling error at any magnification).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence, Union

import cv2
import numpy as np

from ..model.rotations import rpy_matrix

__all__ = [
    "Texture",
    "Checkerboard",
    "CharucoTarget",
    "Target",
    "PlacedTarget",
    "Scene",
    "rpy_matrix",
]


@dataclass(frozen=True)
class Texture:
    """Reflectance image of a target.

    ``image[i, j]`` covers the target-frame square ``x in origin[0] + [j, j+1) * texel``,
    ``y in origin[1] + [i, i+1) * texel``.
    """

    image: np.ndarray  # (H, W) float32 reflectance in [0, 1]
    origin: tuple[float, float]  # target-frame (x, y) of the top-left corner of texel (0, 0), m
    texel: float  # texel side, m

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """(x_min, y_min, x_max, y_max) covered by the texture, m."""
        h, w = self.image.shape
        return (
            self.origin[0],
            self.origin[1],
            self.origin[0] + w * self.texel,
            self.origin[1] + h * self.texel,
        )


def _texels_per_unit(lengths: Sequence[float], unit: float, multiple_of: Sequence[int] = (),
                     limit: int = 4096) -> int:
    """Smallest n such that every ``length / (unit / n)`` is an integer (with the given multiples).

    ``multiple_of[i]`` (if given) requires the texel count of ``lengths[i]`` to be a multiple of
    it. Raises ValueError if no n up to ``limit`` works (incommensurate dimensions).
    """
    for n in range(1, limit + 1):
        texel = unit / n
        counts = [length / texel for length in lengths]
        if all(abs(c - round(c)) < 1e-6 for c in counts) and all(
            round(c) % m == 0 for c, m in zip(counts, multiple_of) if m
        ):
            return n
    raise ValueError(
        f"target dimensions {list(lengths)} are not commensurate with {unit} "
        f"(no texel grid with <= {limit} texels per square)"
    )


@dataclass(frozen=True)
class Checkerboard:
    """Chessboard with ``rows x cols`` inner corners (OpenCV pattern size ``(cols, rows)``).

    Object points are the inner corners, ``(j * square, i * square, 0)`` for row ``i`` and column
    ``j`` (row-major), so the origin is the top-left inner corner. The top-left square is black.
    A white quiet zone ``margin`` (m) surrounds the ``(rows + 1) x (cols + 1)`` squares.
    """

    rows: int
    cols: int
    square: float
    margin: float | None = None  # m, default: one square

    def __post_init__(self) -> None:
        if self.rows < 2 or self.cols < 2:
            raise ValueError("checkerboard needs at least 2 x 2 inner corners")
        if not self.square > 0:
            raise ValueError("checkerboard square must be > 0")
        if self.margin is not None and self.margin < 0:
            raise ValueError("checkerboard margin must be >= 0")

    @property
    def pattern_size(self) -> tuple[int, int]:
        """OpenCV ``patternSize`` (points per row, points per column)."""
        return (self.cols, self.rows)

    @property
    def quiet_zone(self) -> float:
        """White border width, m."""
        return self.square if self.margin is None else self.margin

    def object_points(self) -> np.ndarray:
        """(rows * cols, 3) inner corners in the target frame, row-major."""
        i, j = np.mgrid[0 : self.rows, 0 : self.cols]
        pts = np.zeros((self.rows * self.cols, 3))
        pts[:, 0] = j.ravel() * self.square
        pts[:, 1] = i.ravel() * self.square
        return pts

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """(x_min, y_min, x_max, y_max) of the physical board including the quiet zone, m."""
        m = self.quiet_zone
        return (
            -self.square - m,
            -self.square - m,
            self.cols * self.square + m,
            self.rows * self.square + m,
        )

    def texture(self) -> Texture:
        """Exact texture: square and quiet-zone edges lie on texel boundaries."""
        n = _texels_per_unit([self.quiet_zone], self.square)
        texel = self.square / n
        mt = int(round(self.quiet_zone / texel))
        sq = np.indices((self.rows + 1, self.cols + 1)).sum(axis=0) % 2  # 0 = black top-left
        img = np.kron(sq, np.ones((n, n))).astype(np.float32)
        img = np.pad(img, mt, constant_values=1.0)
        x0, y0, _, _ = self.extent
        return Texture(img, (x0, y0), texel)


@dataclass(frozen=True)
class CharucoTarget:
    """ChArUco board (OpenCV >= 4.7 layout, ``cv2.aruco.CharucoBoard``).

    Target frame = OpenCV's board frame: origin at the top-left outer corner of the squares, x
    along the ``squares_x`` columns, y down. Object points are the chessboard corners in the order
    of the ChArUco corner ids. A white quiet zone ``margin`` (m) surrounds the squares.
    """

    squares_x: int
    squares_y: int
    square: float
    marker: float
    dictionary: str = "DICT_5X5_100"
    margin: float | None = None  # m, default: half a square
    legacy_pattern: bool = False

    def __post_init__(self) -> None:
        if self.squares_x < 2 or self.squares_y < 2:
            raise ValueError("ChArUco board needs at least 2 x 2 squares")
        if not 0 < self.marker < self.square:
            raise ValueError("ChArUco marker must be > 0 and smaller than the square")
        if not hasattr(cv2.aruco, self.dictionary):
            raise ValueError(f"unknown ArUco dictionary {self.dictionary!r}")
        if self.margin is not None and self.margin < 0:
            raise ValueError("ChArUco margin must be >= 0")
        n_markers = (self.squares_x * self.squares_y) // 2
        if n_markers > self.aruco_dictionary().bytesList.shape[0]:
            raise ValueError(f"{self.dictionary} has fewer than the {n_markers} markers needed")

    @property
    def quiet_zone(self) -> float:
        """White border width, m."""
        return 0.5 * self.square if self.margin is None else self.margin

    def aruco_dictionary(self) -> "cv2.aruco.Dictionary":
        """The OpenCV dictionary object."""
        return cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, self.dictionary))

    def board(self) -> "cv2.aruco.CharucoBoard":
        """The equivalent ``cv2.aruco.CharucoBoard`` (for detection)."""
        b = cv2.aruco.CharucoBoard(
            (self.squares_x, self.squares_y), self.square, self.marker, self.aruco_dictionary()
        )
        b.setLegacyPattern(self.legacy_pattern)
        return b

    def object_points(self) -> np.ndarray:
        """((squares_x - 1) * (squares_y - 1), 3) chessboard corners, index = ChArUco id."""
        return np.asarray(self.board().getChessboardCorners(), dtype=float).reshape(-1, 3)

    def marker_ids(self) -> np.ndarray:
        """(M,) ArUco ids of the markers on the board."""
        return np.asarray(self.board().getIds()).ravel()

    def marker_corners(self) -> np.ndarray:
        """(M, 4, 3) marker corners (clockwise from top-left), in the order of ``marker_ids``."""
        return np.asarray(self.board().getObjPoints(), dtype=float).reshape(-1, 4, 3)

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """(x_min, y_min, x_max, y_max) of the physical board including the quiet zone, m."""
        m = self.quiet_zone
        return (-m, -m, self.squares_x * self.square + m, self.squares_y * self.square + m)

    def texture(self) -> Texture:
        """Exact texture from ``CharucoBoard.generateImage``.

        The texel is chosen so that squares, markers, marker bits and the quiet zone all span an
        integer number of texels (the marker side a multiple of its bit count), so OpenCV's
        nearest-neighbour marker drawing lands exactly on the printed geometry.
        """
        bits = self.aruco_dictionary().markerSize + 2  # one border bit each side
        # offset of the marker inside its square must be an integer texel count as well
        offset = 0.5 * (self.square - self.marker)
        n = _texels_per_unit(
            [self.marker, offset, self.quiet_zone], self.square, multiple_of=[bits, 0, 0]
        )
        texel = self.square / n
        size = (self.squares_x * n, self.squares_y * n)
        img = self.board().generateImage(size, marginSize=0, borderBits=1)
        img = img.astype(np.float32) / 255.0
        mt = int(round(self.quiet_zone / texel))
        img = np.pad(img, mt, constant_values=1.0)
        x0, y0, _, _ = self.extent
        return Texture(img, (x0, y0), texel)


Target = Union[Checkerboard, CharucoTarget]


@dataclass
class PlacedTarget:
    """A target at a pose in the world: ``X_world = R @ X_target + t``."""

    name: str
    target: Target
    R: np.ndarray  # (3, 3) world_from_target rotation
    t: np.ndarray  # (3,) target origin in the world, m
    black: float = 20.0  # image level (DN, 0..255) of the printed black
    white: float = 230.0  # image level (DN) of the paper white
    back: float = 90.0  # image level (DN) of the board's back side

    def __post_init__(self) -> None:
        self.R = np.asarray(self.R, dtype=float).reshape(3, 3)
        self.t = np.asarray(self.t, dtype=float).reshape(3)
        if not np.allclose(self.R @ self.R.T, np.eye(3), atol=1e-9):
            raise ValueError(f"target {self.name!r}: R is not a rotation matrix")

    def object_points_world(self) -> np.ndarray:
        """(N, 3) object points in the world frame."""
        return self.target.object_points() @ self.R.T + self.t

    def outline_world(self, per_edge: int = 16) -> np.ndarray:
        """(4 * per_edge, 3) points along the physical border, world frame."""
        x0, y0, x1, y1 = self.target.extent
        s = np.linspace(0.0, 1.0, per_edge, endpoint=False)
        xs = np.concatenate([x0 + (x1 - x0) * s, np.full_like(s, x1),
                             x1 - (x1 - x0) * s, np.full_like(s, x0)])
        ys = np.concatenate([np.full_like(s, y0), y0 + (y1 - y0) * s,
                             np.full_like(s, y1), y1 - (y1 - y0) * s])
        pts = np.stack([xs, ys, np.zeros_like(xs)], axis=1)
        return pts @ self.R.T + self.t


@dataclass
class Scene:
    """Targets in the world, over a uniform background."""

    targets: list[PlacedTarget] = field(default_factory=list)
    background: float = 110.0  # image level (DN) where no target is hit

    def target(self, name: str) -> PlacedTarget:
        """The placed target called ``name`` (KeyError if none)."""
        for placed in self.targets:
            if placed.name == name:
                return placed
        raise KeyError(name)

