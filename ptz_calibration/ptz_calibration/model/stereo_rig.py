"""Two PTZ cameras as one stereo rig: each camera's model plus the fixed transform between their
home optical frames, and the left-to-right extrinsics at any (pan, tilt, zoom) of both.

Frames: ``LH``, ``RH`` the home optical frames of the left and right camera (each camera's model
is expressed in its own). The rig calibration gives ``X_LH = home_R @ X_RH + home_t`` (right home
to left home; ``home_t`` is the right camera's home optical centre in LH). With the camera poses
``(R_L, T_L)`` (left optical to LH) and ``(R_R, T_R)`` (right optical to RH) from the models, the
extrinsics in OpenCV's stereo convention, ``X_right_optical = R @ X_left_optical + t``, are::

    left optical -> LH -> RH -> right optical
    R = R_R^T  home_R^T  R_L
    t = R_R^T (home_R^T (T_L - home_t) - T_R)

(composed from the two models and the home extrinsics, not from Mao et al.'s printed formulas).
The mount frames (REP-103 body axes at the home optical centres) are related by
``left_mount_T_right_mount = (B home_R B^T, B home_t)``, ``B = BODY_FROM_OPTICAL``.

File (``format_version`` 1)::

    format: ptz_calibration/stereo_rig
    format_version: 1
    rig_name: stereo
    home: {R: [[...], [...], [...]], t: [x, y, z]}   # right home optical -> left home optical
    left: <camera model, the model file's content>
    right: <camera model>
    metadata: {...}
    uncertainty:                                     # optional (rig_uncertainty.RigUncertainty)
      home_cov: [[...] x 6]                          # 6x6: home rotation (rad, right home), translation (m)
      pointing_sigma: 0.0005                         # rad, each joint of each head
      left_zoom_translation: {zoom: [...], std: [...]}   # m, std of the optical centre along z
      right_zoom_translation: {zoom: [...], std: [...]}
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import yaml
from numpy.typing import ArrayLike, NDArray

from ..corrections.apply import setting_pose
from ..fileio import FileFieldError, atomic_write_text, read_structured
from .camera_model import PtzCameraModel
from .model_io import model_from_dict, model_to_dict
from .rig_uncertainty import RigUncertainty, extrinsics_covariance
from .rotations import BODY_FROM_OPTICAL

__all__ = ["RIG_FORMAT", "StereoRigFileError", "StereoRigModel", "compose_extrinsics", "rig_model_from_dict",
           "rig_model_to_dict", "load_rig_model", "save_rig_model"]

RIG_FORMAT = "ptz_calibration/stereo_rig"
RIG_FORMAT_VERSION = 1

Transform = tuple[NDArray[np.float64], NDArray[np.float64]]


class StereoRigFileError(FileFieldError):
    """A stereo rig file (or dict) is missing, unreadable or invalid."""


def _check_rotation(r: NDArray, what: str) -> NDArray:
    r = np.asarray(r, dtype=float).reshape(3, 3)
    if not np.all(np.isfinite(r)) or not np.allclose(r @ r.T, np.eye(3), atol=1e-6) or np.linalg.det(r) < 0:
        raise ValueError(f"{what} is not a rotation matrix")
    # re-orthonormalize what a YAML round trip rounded
    u, _, vt = np.linalg.svd(r)
    return u @ vt


def compose_extrinsics(left_pose: Transform, right_pose: Transform, home_R: NDArray[np.float64],
                       home_t: NDArray[np.float64]) -> Transform:
    """Left optical -> right optical ``(R, t)`` from the camera poses (optical -> own home frame;
    batched) and the home transform (right home -> left home): the formula of the module notes."""
    (r_l, t_l), (r_r, t_r) = left_pose, right_pose
    r = np.swapaxes(r_r, -1, -2) @ home_R.T @ r_l
    x = np.einsum("ij,...j->...i", home_R.T, t_l - home_t) - t_r
    return r, np.einsum("...ji,...j->...i", r_r, x)


@dataclass(frozen=True)
class StereoRigModel:
    """Left and right PTZ camera models and the transform right home -> left home."""

    left: PtzCameraModel
    right: PtzCameraModel
    home_R: NDArray[np.float64] = field(default_factory=lambda: np.eye(3))
    home_t: NDArray[np.float64] = field(default_factory=lambda: np.zeros(3))
    rig_name: str = "stereo"
    metadata: dict[str, Any] = field(default_factory=dict)
    uncertainty: Optional[RigUncertainty] = None  # for the localization covariance (rig_uncertainty)

    def __post_init__(self) -> None:
        object.__setattr__(self, "home_R", _check_rotation(self.home_R, "home.R"))
        t = np.asarray(self.home_t, dtype=float).reshape(3)
        if not np.all(np.isfinite(t)):
            raise ValueError("home.t must be finite")
        object.__setattr__(self, "home_t", t)

    @property
    def home_baseline(self) -> float:
        """Distance between the two home optical centres (m)."""
        return float(np.linalg.norm(self.home_t))

    def extrinsics(self, left: ArrayLike, right: ArrayLike) -> Transform:
        """Left optical -> right optical ``(R, t)`` (``X_R = R X_L + t``) at ``left = (pan, tilt, zoom)``
        and ``right = (pan, tilt, zoom)`` (each may be (N, 3) for a batch). The models' correction
        layers apply; a 4th element per setting is the camera's temperature (thermal layer)."""
        left_pose = setting_pose(self.left, np.asarray(left, dtype=float))
        right_pose = setting_pose(self.right, np.asarray(right, dtype=float))
        return compose_extrinsics(left_pose, right_pose, self.home_R, self.home_t)

    def extrinsics_covariance(self, left: ArrayLike, right: ArrayLike) -> NDArray[np.float64]:
        """6x6 covariance of :meth:`extrinsics` at one setting per camera from :attr:`uncertainty`
        (zeros without it); convention of :mod:`..stereo.triangulation`."""
        return extrinsics_covariance(self, left, right)

    def baseline(self, left: ArrayLike, right: ArrayLike) -> NDArray[np.float64]:
        """Distance between the two optical centres (m) at these settings."""
        return np.linalg.norm(self.extrinsics(left, right)[1], axis=-1)

    def right_in_left_home(self, right: ArrayLike) -> Transform:
        """Right optical -> left home (LH) pose at ``right = (pan, tilt, zoom)``."""
        rq = np.asarray(right, dtype=float)
        r_r, t_r = setting_pose(self.right, rq)
        return self.home_R @ r_r, np.einsum("ij,...j->...i", self.home_R, t_r) + self.home_t

    def left_mount_from_right_mount(self) -> Transform:
        """The static transform between the two mount frames (REP-103 body axes)."""
        b = BODY_FROM_OPTICAL
        return b @ self.home_R @ b.T, b @ self.home_t


def rig_model_to_dict(rig: StereoRigModel) -> dict[str, Any]:
    return {
        "format": RIG_FORMAT,
        "format_version": RIG_FORMAT_VERSION,
        "rig_name": rig.rig_name,
        "home": {"R": [[float(v) for v in row] for row in rig.home_R], "t": [float(v) for v in rig.home_t]},
        "left": model_to_dict(rig.left),
        "right": model_to_dict(rig.right),
        "metadata": dict(rig.metadata),
        **({"uncertainty": rig.uncertainty.to_dict()} if rig.uncertainty is not None else {}),
    }


def rig_model_from_dict(data: Any, source: str = "<stereo rig>") -> StereoRigModel:
    """Parse a rig dict; raise :class:`StereoRigFileError` naming the source and the field."""
    if not isinstance(data, dict):
        raise StereoRigFileError(source, "", "expected a mapping at the top level")
    fmt = data.get("format", RIG_FORMAT)
    if fmt != RIG_FORMAT:
        raise StereoRigFileError(source, "format", f"expected {RIG_FORMAT!r}, got {fmt!r}")
    if data.get("format_version", RIG_FORMAT_VERSION) != RIG_FORMAT_VERSION:
        raise StereoRigFileError(source, "format_version", f"unsupported version {data.get('format_version')!r}")
    unknown = set(data) - {"format", "format_version", "rig_name", "home", "left", "right", "metadata",
                         "uncertainty"}
    if unknown:
        raise StereoRigFileError(source, sorted(unknown)[0], "unknown field")
    for key in ("home", "left", "right"):
        if key not in data:
            raise StereoRigFileError(source, key, "missing")
    home = data["home"]
    if not isinstance(home, dict) or "R" not in home or "t" not in home:
        raise StereoRigFileError(source, "home", "needs R (3x3) and t (3)")
    try:
        r = np.asarray(home["R"], dtype=float)
        t = np.asarray(home["t"], dtype=float)
        if r.shape != (3, 3):
            raise ValueError(f"home.R must be 3x3, got shape {r.shape}")
        if t.shape != (3,):
            raise ValueError(f"home.t must have 3 values, got shape {t.shape}")
        left = model_from_dict(data["left"], f"{source}: left")
        right = model_from_dict(data["right"], f"{source}: right")
        uncertainty = None
        if data.get("uncertainty") is not None:
            try:
                uncertainty = RigUncertainty.from_dict(data["uncertainty"])
            except (TypeError, ValueError) as exc:
                raise StereoRigFileError(source, "uncertainty", str(exc)) from None
        return StereoRigModel(left, right, r, t, str(data.get("rig_name", "stereo")), dict(data.get("metadata") or {}),
                              uncertainty)
    except FileFieldError:
        raise
    except (TypeError, ValueError) as exc:
        raise StereoRigFileError(source, "home", str(exc)) from None


def load_rig_model(path: str | os.PathLike) -> StereoRigModel:
    return rig_model_from_dict(read_structured(path, StereoRigFileError), str(path))


def save_rig_model(rig: StereoRigModel, path: str | os.PathLike, backup: bool = True) -> Path:
    """Write atomically, keeping the previous file as ``.bak`` when ``backup``."""
    text = "# PTZ stereo rig written by ptz_calibration\n" + yaml.safe_dump(
        rig_model_to_dict(rig), sort_keys=False, default_flow_style=None, width=100)
    return atomic_write_text(path, text, backup=backup)
