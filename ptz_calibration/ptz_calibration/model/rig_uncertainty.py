"""Uncertainty of a stereo rig's model, and its propagation into the left-to-right extrinsics at any
(pan, tilt, zoom) of both cameras.

What a calibrated rig is unsure of, as independent Gaussian parts:

* the home transform (``home_cov``, 6x6 from the rig calibration): ``home_R -> home_R expm([dw]x)``
  (``dw`` in the right home frame, rad), ``home_t -> home_t + dt`` (m, left home frame), the order
  of :func:`..calibration.rig_calibration.calibrate_rig`'s unknowns;
* each head's pointing (``pointing_sigma``, rad, per joint): the reported pan and tilt are off from
  the real ones by gear periodic error and encoder steps (0.03 deg on the default rig);
* each camera's zoom translation (the std of the optical centre's position along its optical axis,
  a table over raw zoom from the camera's bundle adjustment, interpolated; 0 at the reference zoom).

:func:`extrinsics_covariance` maps them into the 6x6 covariance of the extrinsics in the convention
of :mod:`..stereo.triangulation` (``R -> expm([dw]x) R``, ``t -> t + dt``) with a numerical Jacobian
(central differences, 12 unknowns: 13 pose evaluations per camera). Left out: the radius vectors'
and axes' uncertainty (their effect grows with the pan and tilt angles; the rig file does not carry
their covariance).

:func:`pointing_covariance` is the part a frame other than the left optical frame adds: a point
localized relative to the left camera moves with the left head's pointing error. It is taken as
independent of the extrinsics' part (which holds the same pointing error through the relative
transform), so in such a frame the covariance errs on the large side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial.transform import Rotation

from ..corrections.apply import setting_pose

if TYPE_CHECKING:  # pragma: no cover
    from .camera_model import PtzCameraModel
    from .stereo_rig import StereoRigModel

__all__ = ["ZoomStd", "RigUncertainty", "extrinsics_covariance", "pointing_covariance"]

_STEP_ROT = 1e-6  # rad: central-difference steps
_STEP_LEN = 1e-6  # m


@dataclass(frozen=True)
class ZoomStd:
    """A standard deviation over raw zoom (linear interpolation, held at the ends)."""

    zoom: tuple[float, ...] = ()
    std: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        z = tuple(float(v) for v in self.zoom)
        s = tuple(float(v) for v in self.std)
        if len(z) != len(s):
            raise ValueError(f"zoom and std need the same length, got {len(z)} and {len(s)}")
        if not all(np.isfinite(z)) or not all(np.isfinite(s)) or any(v < 0 for v in s):
            raise ValueError("zoom values must be finite and std values finite and >= 0")
        if any(b <= a for a, b in zip(z, z[1:])):
            raise ValueError("zoom values must increase")
        object.__setattr__(self, "zoom", z)
        object.__setattr__(self, "std", s)

    def __call__(self, zoom: float) -> float:
        return float(np.interp(zoom, self.zoom, self.std)) if self.zoom else 0.0

    def to_dict(self) -> dict[str, list[float]]:
        return {"zoom": list(self.zoom), "std": list(self.std)}

    @classmethod
    def from_dict(cls, data: Any) -> "ZoomStd":
        if not isinstance(data, dict) or set(data) - {"zoom", "std"}:
            raise ValueError("expected {zoom: [...], std: [...]}")
        return cls(tuple(data.get("zoom") or ()), tuple(data.get("std") or ()))


@dataclass(frozen=True)
class RigUncertainty:
    """The parts of a rig's uncertainty that :func:`extrinsics_covariance` propagates (module notes)."""

    home_cov: NDArray[np.float64] = field(default_factory=lambda: np.zeros((6, 6)))
    pointing_sigma: float = 0.0  # rad, each joint of each head
    left_zoom_translation: ZoomStd = field(default_factory=ZoomStd)  # m
    right_zoom_translation: ZoomStd = field(default_factory=ZoomStd)  # m

    def __post_init__(self) -> None:
        c = np.asarray(self.home_cov, dtype=float)
        if c.shape != (6, 6) or not np.all(np.isfinite(c)):
            raise ValueError(f"home_cov must be a finite 6x6 matrix, got shape {c.shape}")
        c = 0.5 * (c + c.T)
        if np.linalg.eigvalsh(c).min() < -1e-12 * max(float(np.abs(c).max()), 1e-30):
            raise ValueError("home_cov must be positive semi-definite")
        if not (np.isfinite(self.pointing_sigma) and self.pointing_sigma >= 0):
            raise ValueError(f"pointing_sigma must be finite and >= 0, got {self.pointing_sigma}")
        object.__setattr__(self, "home_cov", c)

    def to_dict(self) -> dict[str, Any]:
        return {"home_cov": [[float(v) for v in row] for row in self.home_cov],
                "pointing_sigma": float(self.pointing_sigma),
                "left_zoom_translation": self.left_zoom_translation.to_dict(),
                "right_zoom_translation": self.right_zoom_translation.to_dict()}

    @classmethod
    def from_dict(cls, data: Any) -> "RigUncertainty":
        """Parse; ValueError naming the field."""
        if not isinstance(data, dict):
            raise ValueError("expected a mapping")
        unknown = set(data) - {"home_cov", "pointing_sigma", "left_zoom_translation", "right_zoom_translation"}
        if unknown:
            raise ValueError(f"unknown field {sorted(unknown)[0]!r}")
        kw: dict[str, Any] = {}
        for key in ("left_zoom_translation", "right_zoom_translation"):
            if key in data:
                try:
                    kw[key] = ZoomStd.from_dict(data[key])
                except (TypeError, ValueError) as exc:
                    raise ValueError(f"{key}: {exc}") from None
        try:
            cov = np.asarray(data.get("home_cov", np.zeros((6, 6))), dtype=float)
            return cls(cov, float(data.get("pointing_sigma", 0.0)), **kw)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"home_cov/pointing_sigma: {exc}") from None


def _turned_poses(model: "PtzCameraModel", q: NDArray) -> dict[tuple[int, float], tuple[NDArray, NDArray]]:
    """The camera's pose at ``q`` with each joint turned by +-``_STEP_ROT``: {(joint, sign): pose}."""
    poses = {}
    for j in (0, 1):
        for sign in (1.0, -1.0):
            dq = q.copy()
            dq[j] += sign * _STEP_ROT
            poses[(j, sign)] = setting_pose(model, dq)
    return poses


def extrinsics_covariance(rig: "StereoRigModel", left: ArrayLike, right: ArrayLike,
                          uncertainty: Optional[RigUncertainty] = None) -> NDArray[np.float64]:
    """6x6 covariance of the extrinsics at ``left``, ``right`` = (pan, tilt, zoom[, temperature])
    (one setting each) from ``uncertainty`` (default ``rig.uncertainty``; zeros without one)."""
    from .stereo_rig import compose_extrinsics

    u = uncertainty if uncertainty is not None else rig.uncertainty
    if u is None:
        return np.zeros((6, 6))
    lq = np.asarray(left, dtype=float).reshape(-1)
    rq = np.asarray(right, dtype=float).reshape(-1)
    poses: dict = {}
    for name, model, q in (("l", rig.left, lq), ("r", rig.right, rq)):
        poses.update({(name, *k): pose for k, pose in _turned_poses(model, q).items()})
        poses[name] = setting_pose(model, q)
    hr, ht = rig.home_R, rig.home_t
    r0, t0 = compose_extrinsics(poses["l"], poses["r"], hr, ht)

    def delta(r: NDArray, t: NDArray) -> NDArray:
        return np.r_[Rotation.from_matrix(r @ r0.T).as_rotvec(), t - t0]

    def diff(plus: tuple[NDArray, NDArray], minus: tuple[NDArray, NDArray], step: float) -> NDArray:
        return (delta(*plus) - delta(*minus)) / (2.0 * step)

    cols, sig = [], []
    for k in range(3):  # home rotation, right-multiplied
        e = np.zeros(3)
        e[k] = _STEP_ROT
        rp, rm = hr @ Rotation.from_rotvec(e).as_matrix(), hr @ Rotation.from_rotvec(-e).as_matrix()
        cols.append(diff(compose_extrinsics(poses["l"], poses["r"], rp, ht),
                         compose_extrinsics(poses["l"], poses["r"], rm, ht), _STEP_ROT))
    for k in range(3):  # home translation
        e = np.zeros(3)
        e[k] = _STEP_LEN
        cols.append(diff(compose_extrinsics(poses["l"], poses["r"], hr, ht + e),
                         compose_extrinsics(poses["l"], poses["r"], hr, ht - e), _STEP_LEN))
    jac_home = np.stack(cols, axis=1)
    cov = jac_home @ u.home_cov @ jac_home.T
    cols = []
    for j in (0, 1):  # pointing, left then right
        cols.append(diff(compose_extrinsics(poses[("l", j, 1.0)], poses["r"], hr, ht),
                         compose_extrinsics(poses[("l", j, -1.0)], poses["r"], hr, ht), _STEP_ROT))
    for j in (0, 1):
        cols.append(diff(compose_extrinsics(poses["l"], poses[("r", j, 1.0)], hr, ht),
                         compose_extrinsics(poses["l"], poses[("r", j, -1.0)], hr, ht), _STEP_ROT))
    sig += [u.pointing_sigma] * 4
    # zoom translation: each optical centre along its own optical axis (linear: exact)
    (rl, tl), (rr, tr) = poses["l"], poses["r"]
    cols.append(delta(*compose_extrinsics((rl, tl + rl[:, 2]), (rr, tr), hr, ht)))
    cols.append(delta(*compose_extrinsics((rl, tl), (rr, tr + rr[:, 2]), hr, ht)))
    sig += [u.left_zoom_translation(float(lq[2])), u.right_zoom_translation(float(rq[2]))]
    jac = np.stack(cols, axis=1) * np.asarray(sig)
    cov = cov + jac @ jac.T
    return 0.5 * (cov + cov.T)


def pointing_covariance(model: "PtzCameraModel", setting: ArrayLike, points: ArrayLike,
                        sigma: float) -> NDArray[np.float64]:
    """(N, 3, 3) covariance, in the camera's optical frame, of points (N, 3) given in that frame from
    the head's pointing error (``sigma`` rad per joint): a point fixed in the home frame, seen from
    the camera turned by ``dq`` about each joint (central differences)."""
    q = np.asarray(setting, dtype=float).reshape(-1)
    x = np.asarray(points, dtype=float).reshape(-1, 3)
    r0, t0 = setting_pose(model, q)
    x_home = x @ r0.T + t0
    out = np.zeros((len(x), 3, 3))
    turned = _turned_poses(model, q)
    for j in (0, 1):
        seen = [(x_home - t) @ r for r, t in (turned[(j, 1.0)], turned[(j, -1.0)])]
        v = (seen[0] - seen[1]) * (sigma / (2.0 * _STEP_ROT))
        out += v[:, :, None] * v[:, None, :]
    return out
