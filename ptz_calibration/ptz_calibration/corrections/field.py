"""Field correction: a rotation of the whole head measured from reference landmarks.

A knock to the mount, or a slow settling of it, turns the housing as a whole. The one-click
recalibration re-observes landmarks stored at calibration time (an image patch and the PTZ
setting that sees it) and measures where they appear now; :func:`solve_field_rotation` turns the
bearings into the rotation ``R_f`` of the home frame (``actual pose = R_f @ model pose``), by
Kabsch/Wahba with two or more landmarks in different directions, or the smallest rotation with
one (which leaves the roll about that landmark's direction unobserved).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Optional

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial.transform import Rotation


@dataclass(frozen=True)
class FieldCorrection:
    """``rotation_vector`` (rad, home frame) of ``R_f``; when and how it was measured."""

    rotation_vector: tuple[float, float, float] = (0.0, 0.0, 0.0)
    created: str = ""
    landmarks: int = 0
    residual_px: float = math.nan

    @property
    def matrix(self) -> NDArray[np.float64]:
        return Rotation.from_rotvec(self.rotation_vector).as_matrix()

    @property
    def angle(self) -> float:
        """Rotation angle (rad)."""
        return float(np.linalg.norm(self.rotation_vector))

    def to_dict(self) -> dict[str, Any]:
        return {"rotation_vector_rad": [float(v) for v in self.rotation_vector], "created": self.created,
                "landmarks": int(self.landmarks), "residual_px": float(self.residual_px)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "FieldCorrection":
        rv = tuple(float(v) for v in data.get("rotation_vector_rad", (0.0, 0.0, 0.0)))
        if len(rv) != 3 or not all(math.isfinite(v) for v in rv):
            raise ValueError("rotation_vector_rad must be three finite numbers")
        return cls(rv, str(data.get("created", "")), int(data.get("landmarks", 0)),
                   float(data.get("residual_px", math.nan)))


def solve_field_rotation(reference: ArrayLike, current: ArrayLike,
                         weights: Optional[ArrayLike] = None) -> NDArray[np.float64]:
    """Rotation ``R`` (3x3) with ``reference_i ~= R @ current_i`` for unit bearings (N, 3) in the home frame.

    ``reference``: where each landmark was (home frame, from the calibration-time observation);
    ``current``: the bearing of its observation now, mapped to the home frame with the model at
    the same reported PTZ setting.
    """
    a = np.asarray(reference, float).reshape(-1, 3)
    b = np.asarray(current, float).reshape(-1, 3)
    if a.shape != b.shape or len(a) == 0:
        raise ValueError("need one current bearing per reference bearing, at least one")
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    w = np.ones(len(a)) if weights is None else np.asarray(weights, float).ravel()
    if len(a) == 1 or np.linalg.matrix_rank(np.cross(a[0], a), tol=1e-3) == 0:
        # one direction: the smallest rotation taking the mean current bearing onto the reference
        ma, mb = (w[:, None] * a).sum(0), (w[:, None] * b).sum(0)
        ma, mb = ma / np.linalg.norm(ma), mb / np.linalg.norm(mb)
        axis = np.cross(mb, ma)
        s, c = np.linalg.norm(axis), float(np.dot(ma, mb))
        if s < 1e-15:
            return np.eye(3)
        return Rotation.from_rotvec(axis / s * math.atan2(s, c)).as_matrix()
    rot, _ = Rotation.align_vectors(a, b, weights=w)
    return rot.as_matrix()
