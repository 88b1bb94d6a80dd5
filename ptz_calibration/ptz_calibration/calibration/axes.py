"""Rotation axes and rotation radius vectors from pan and tilt sweeps (Mao et al. 2022, 5.1, 5.2).

A sweep turns ONE joint through angles ``q_i`` with the other joint fixed; each view gives the
camera pose ``(R_i, T_i)`` (camera-to-home, ``X_H = R X_C + T``, e.g. from the target's extrinsics
expressed relative to the home view). For every pair of views ``i, j`` the relative motion
``x -> R_ij x + t_ij`` with ``R_ij = R_j R_i^T``, ``t_ij = T_j - R_ij T_i`` is the joint turned by
``q_j - q_i``: a rotation about the joint's axis line.

* **Axis direction**: the rotation vectors of all pairs (ordered so that ``q_j > q_i``, i.e.
  sign-aligned with the reported angle difference) stacked; the axis is the principal eigenvector
  of ``sum w w^T``, signed so positive reported angles turn right-handed about it.
* **Axis line**: a point ``p`` on the line satisfies ``(I - R_ij) p = t_ij`` for every pair. ``I - R``
  is singular along the axis (the paper inverts it): ``p`` is solved by least squares over all
  pairs restricted to the plane perpendicular to the axis (2 unknowns). Its component along the
  axis is unobservable from rotations about that axis and is reported as such. The rotation
  radius vector is ``m = -p_perp`` (the line passes through ``-m``, ``m`` perpendicular to the axis).
* **Angle scale check**: each pair's rotation angle about the estimated axis against the reported
  angle difference (scale, offset-free RMS).
* **Uncertainty**: the pair equations share views, so their residuals are correlated. The standard
  deviations propagate per-view pose noise (isotropic rotation ``sigma_rot``, translation
  ``sigma_trans``; both estimated from the pair residuals) through the whole estimator by a
  numerical Jacobian (delta method): the least-squares covariance with the correct correlations.

```python
from ptz_calibration.calibration.axes import Sweep, estimate_joint, estimate_kinematics
est = estimate_joint((R, T), pan_angles)            # R (N,3,3), T (N,3) camera-to-home
est.axis, est.radius, est.axis_std, est.radius_std, est.unobservable
kin, report = estimate_kinematics(Sweep((Rp, Tp), pans), Sweep((Rt, Tt), tilts))
```
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import nnls
from scipy.spatial.transform import Rotation

from ..model.kinematics import AxisOrder, Joint, PtzKinematics

Poses = Union[tuple[ArrayLike, ArrayLike], Sequence[tuple[ArrayLike, ArrayLike]]]

#: Pairs turned by more than this are left out of the axis direction (rotation vectors near pi
#: are ill-defined); they still enter the axis line.
MAX_PAIR_ANGLE_FOR_AXIS = np.radians(150.0)
#: Smallest spread of the reported angles (rad) that defines a sweep.
MIN_ANGLE_SPREAD = np.radians(0.5)

UNOBSERVABLE_TEXT = ("position of the axis line along its own direction: rotations about an axis "
                     "do not see it (I - R is singular along the axis); the radius vector is "
                     "taken perpendicular to the axis")


class AxisEstimationError(ValueError):
    """A sweep cannot determine a joint (too few views, no rotation, bad input)."""


@dataclass(frozen=True)
class JointEstimate:
    """One joint estimated from a sweep, in the frame of the poses (the home optical frame H)."""

    axis: NDArray[np.float64]                 # unit direction, right-handed for positive angles
    radius: NDArray[np.float64]               # m = -p_perp: from the axis to the optical centre (m)
    line_point: NDArray[np.float64]           # p_perp = -radius: the line's point nearest the origin
    axis_cov: NDArray[np.float64]             # 3x3 (rad^2, perpendicular to the axis)
    radius_cov: NDArray[np.float64]           # 3x3 (m^2, in the plane perpendicular to the axis)
    angle_scale: float                        # estimated / reported angle difference (1 ideally)
    angle_rms: float                          # rad, RMS of estimated - reported pair angles
    rotation_rms: float                       # rad, RMS off-axis part of the pair rotations
    translation_rms: float                    # m, RMS of (I - R_ij) p - t_ij over the pairs
    sigma_rotation: float                     # rad, per-view rotation noise estimated from residuals
    sigma_translation: float                  # m, per-view translation noise estimated from residuals
    n_views: int
    n_pairs: int
    unobservable: str = UNOBSERVABLE_TEXT
    along_axis_observable: bool = False

    @property
    def axis_std(self) -> float:
        """Standard deviation of the axis direction (rad, total over both perpendicular directions)."""
        return float(np.sqrt(max(np.trace(self.axis_cov), 0.0)))

    @property
    def radius_std(self) -> NDArray[np.float64]:
        """Per-component standard deviation of the radius vector (m)."""
        return np.sqrt(np.clip(np.diag(self.radius_cov), 0.0, None))

    def joint(self, name: str) -> Joint:
        return Joint(name, self.axis, self.radius)

    def to_dict(self) -> dict[str, Any]:
        """Plain-type summary (degrees and millimetres) for reports."""
        return {
            "axis": self.axis.tolist(),
            "axis_std_deg": float(np.degrees(self.axis_std)),
            "radius_mm": (1e3 * self.radius).tolist(),
            "radius_std_mm": (1e3 * self.radius_std).tolist(),
            "angle_scale": self.angle_scale,
            "angle_rms_deg": float(np.degrees(self.angle_rms)),
            "rotation_rms_deg": float(np.degrees(self.rotation_rms)),
            "translation_rms_mm": 1e3 * self.translation_rms,
            "sigma_rotation_deg": float(np.degrees(self.sigma_rotation)),
            "sigma_translation_mm": 1e3 * self.sigma_translation,
            "n_views": self.n_views,
            "n_pairs": self.n_pairs,
            "unobservable": self.unobservable,
        }


@dataclass(frozen=True)
class Sweep:
    """Views of one joint's sweep: poses (camera-to-home), reported angles, the other joint's angle."""

    poses: Any
    angles: Any
    other_angle: float = 0.0


def as_pose_arrays(poses: Poses) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``(R (N,3,3), T (N,3))`` from that tuple or from a sequence of ``(R, T)`` pairs."""
    if isinstance(poses, tuple) and len(poses) == 2 and np.ndim(poses[0]) == 3:
        r, t = np.asarray(poses[0], float), np.asarray(poses[1], float)
    else:
        items = list(poses)
        if not items:
            raise AxisEstimationError("no poses given")
        r = np.stack([np.asarray(p[0], float) for p in items])
        t = np.stack([np.asarray(p[1], float).reshape(3) for p in items])
    if r.ndim != 3 or r.shape[1:] != (3, 3) or t.shape != (r.shape[0], 3):
        raise AxisEstimationError(f"poses must be R (N,3,3) and T (N,3), got {r.shape} and {t.shape}")
    return r, t


def to_home(poses: Poses, reference: tuple[ArrayLike, ArrayLike]) -> tuple[NDArray, NDArray]:
    """Express camera-to-world poses relative to the home view's pose ``reference`` (camera-to-world)."""
    r, t = as_pose_arrays(poses)
    r0, t0 = np.asarray(reference[0], float), np.asarray(reference[1], float).reshape(3)
    return r0.T @ r, (t - t0) @ r0


def _pairs(angles: NDArray) -> tuple[NDArray, NDArray]:
    """All pairs (i, j) ordered so that angles[j] >= angles[i], skipping equal angles."""
    i, j = np.triu_indices(len(angles), k=1)
    swap = angles[j] < angles[i]
    i, j = np.where(swap, j, i), np.where(swap, i, j)
    keep = angles[j] - angles[i] > 1e-12
    return i[keep], j[keep]


def _perp_basis(a: NDArray) -> NDArray:
    """3x2 orthonormal basis of the plane perpendicular to the unit vector ``a``."""
    u, _, _ = np.linalg.svd(a.reshape(3, 1))
    return u[:, 1:]


def _solve(r: NDArray, t: NDArray, angles: NDArray, pi: NDArray, pj: NDArray) -> tuple[NDArray, ...]:
    """Core estimator: (axis, line point, rotation residuals, translation residuals, pair angles)."""
    rij = r[pj] @ np.swapaxes(r[pi], 1, 2)
    tij = t[pj] - np.einsum("nab,nb->na", rij, t[pi])
    w = Rotation.from_matrix(rij).as_rotvec()
    dq = angles[pj] - angles[pi]
    use = np.abs(dq) <= MAX_PAIR_ANGLE_FOR_AXIS
    wu = w[use]
    _, vecs = np.linalg.eigh(wu.T @ wu)
    a = vecs[:, -1]
    if np.sum(wu @ a) < 0:
        a = -a
    b = _perp_basis(a)
    ia = np.eye(3) - rij                                   # (n,3,3)
    amat = (ia @ b).reshape(-1, 2)
    u, *_ = np.linalg.lstsq(amat, tij.reshape(-1), rcond=None)
    p = b @ u
    res_t = (np.einsum("nab,b->na", ia, p) - tij).reshape(-1)
    theta = w @ a
    res_r = (w - theta[:, None] * a).reshape(-1)
    return a, p, res_r, res_t, theta, dq


def estimate_joint(poses: Poses, angles: ArrayLike, *, covariance: bool = True) -> JointEstimate:
    """Estimate one joint's axis direction and radius vector from a sweep of that joint alone.

    ``poses``: camera-to-home ``(R (N,3,3), T (N,3))`` (or a list of ``(R, T)``); ``angles``: the
    reported joint angles (rad). At least 3 views at different angles are needed.
    """
    r, t = as_pose_arrays(poses)
    q = np.asarray(angles, dtype=float).reshape(-1)
    n = r.shape[0]
    if q.shape[0] != n:
        raise AxisEstimationError(f"{n} poses but {q.shape[0]} angles")
    if n < 3:
        raise AxisEstimationError(f"a sweep needs at least 3 views, got {n}")
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(t)) and np.all(np.isfinite(q))):
        raise AxisEstimationError("poses and angles must be finite (NaN or inf given)")
    if np.ptp(q) < MIN_ANGLE_SPREAD:
        raise AxisEstimationError(
            f"the reported angles span {np.degrees(np.ptp(q)):.3g} deg: a sweep needs angles that "
            f"differ by at least {np.degrees(MIN_ANGLE_SPREAD):.3g} deg")
    pi, pj = _pairs(q)
    a, p, res_r, res_t, theta, dq = _solve(r, t, q, pi, pj)
    if np.max(np.abs(theta)) < 0.1 * MIN_ANGLE_SPREAD:
        raise AxisEstimationError("the poses do not rotate: every view has the same orientation")
    npair = len(pi)
    scale = float(theta @ dq / (dq @ dq))
    angle_rms = float(np.sqrt(np.mean((theta - dq) ** 2)))
    rot_rms = float(np.sqrt(np.mean(res_r.reshape(-1, 3) ** 2) * 3))
    trans_rms = float(np.sqrt(np.mean(res_t.reshape(-1, 3) ** 2) * 3))

    axis_cov = np.zeros((3, 3))
    p_cov = np.zeros((3, 3))
    s_rot = s_trans = 0.0
    if covariance:
        axis_cov, p_cov, s_rot, s_trans = _propagate(r, t, q, pi, pj, a, p, res_r, res_t)
    return JointEstimate(
        axis=a, radius=-p, line_point=p, axis_cov=axis_cov, radius_cov=p_cov,
        angle_scale=scale, angle_rms=angle_rms, rotation_rms=rot_rms, translation_rms=trans_rms,
        sigma_rotation=s_rot, sigma_translation=s_trans, n_views=n, n_pairs=npair)


def _propagate(r: NDArray, t: NDArray, q: NDArray, pi: NDArray, pj: NDArray, a: NDArray, p: NDArray,
               res_r: NDArray, res_t: NDArray) -> tuple[NDArray, NDArray, float, float]:
    """Delta-method covariance of (axis, line point) from per-view isotropic pose noise.

    Central differences of the estimator and of its residuals with respect to a rotation
    perturbation (left, in H) and a translation perturbation of every view; the two noise levels
    are those that explain the observed residual sums of squares.
    """
    n = r.shape[0]
    h_rot, h_trans = 1e-6, 1e-6
    cols_out: list[list[NDArray]] = [[], []]   # [rotation inputs, translation inputs]
    cols_rr: list[list[NDArray]] = [[], []]
    cols_rt: list[list[NDArray]] = [[], []]
    for kind, h in ((0, h_rot), (1, h_trans)):
        for view in range(n):
            for c in range(3):
                outs = []
                for sgn in (1.0, -1.0):
                    rr, tt = r.copy(), t.copy()
                    d = np.zeros(3)
                    d[c] = sgn * h
                    if kind == 0:
                        rr[view] = Rotation.from_rotvec(d).as_matrix() @ rr[view]
                    else:
                        tt[view] = tt[view] + d
                    a2, p2, r_r, r_t, *_ = _solve(rr, tt, q, pi, pj)
                    if a2 @ a < 0:
                        a2 = -a2
                    outs.append((np.concatenate([a2, p2]), r_r, r_t))
                cols_out[kind].append((outs[0][0] - outs[1][0]) / (2 * h))
                cols_rr[kind].append((outs[0][1] - outs[1][1]) / (2 * h))
                cols_rt[kind].append((outs[0][2] - outs[1][2]) / (2 * h))
    j_out = [np.stack(c, axis=1) for c in cols_out]
    j_rr = [np.stack(c, axis=1) for c in cols_rr]
    j_rt = [np.stack(c, axis=1) for c in cols_rt]
    # E|res_r|^2 = s_rot^2 tr(J_rr,rot J^T) + s_trans^2 tr(J_rr,trans J^T); likewise res_t.
    m = np.array([[np.sum(j_rr[0] ** 2), np.sum(j_rr[1] ** 2)],
                  [np.sum(j_rt[0] ** 2), np.sum(j_rt[1] ** 2)]])
    y = np.array([res_r @ res_r, res_t @ res_t])
    scale = np.maximum(np.abs(m).max(axis=1, keepdims=True), 1e-300)
    var, _ = nnls(m / scale, y / scale[:, 0])
    cov = var[0] * j_out[0] @ j_out[0].T + var[1] * j_out[1] @ j_out[1].T
    return cov[:3, :3], cov[3:, 3:], float(np.sqrt(var[0])), float(np.sqrt(var[1]))


def _transport(est: JointEstimate, carrier: Joint, angle: float) -> JointEstimate:
    """Bring a joint estimated at ``carrier`` angle ``angle`` back to the carrier's home position."""
    if angle == 0.0:
        return est
    rc, tc = carrier.transform(-angle)
    a = rc @ est.axis
    p = rc @ est.line_point + tc
    p = p - (p @ a) * a
    return JointEstimate(
        axis=a, radius=-p, line_point=p, axis_cov=rc @ est.axis_cov @ rc.T,
        radius_cov=rc @ est.radius_cov @ rc.T, angle_scale=est.angle_scale, angle_rms=est.angle_rms,
        rotation_rms=est.rotation_rms, translation_rms=est.translation_rms,
        sigma_rotation=est.sigma_rotation, sigma_translation=est.sigma_translation,
        n_views=est.n_views, n_pairs=est.n_pairs)


@dataclass
class KinematicsReport:
    """What the sweeps determined: both joints, the angle between the axes, what stays unknown."""

    pan: JointEstimate
    tilt: JointEstimate
    order: AxisOrder
    axis_angle: float                          # rad, between the pan and tilt axes
    notes: list[str] = field(default_factory=list)

    @property
    def non_perpendicularity(self) -> float:
        """Axis angle minus 90 deg (rad)."""
        return self.axis_angle - np.pi / 2

    def to_dict(self) -> dict[str, Any]:
        return {
            "order": self.order.value,
            "pan": self.pan.to_dict(),
            "tilt": self.tilt.to_dict(),
            "axis_angle_deg": float(np.degrees(self.axis_angle)),
            "non_perpendicularity_deg": float(np.degrees(self.non_perpendicularity)),
            "notes": list(self.notes),
        }


def estimate_kinematics(pan_sweep: Sweep, tilt_sweep: Sweep,
                        order: AxisOrder | str = AxisOrder.PAN_TILT) -> tuple[PtzKinematics, KinematicsReport]:
    """Pan and tilt joints from their sweeps; the kinematics has no zoom translation.

    The carrying joint (pan for ``pan_tilt``) is measured directly in H whatever the other
    joint's fixed angle. The carried joint is measured where the carrier put it; a sweep at a
    non-zero carrier angle is brought back with the estimated carrier joint.
    """
    order = AxisOrder(order)
    pan = estimate_joint(pan_sweep.poses, pan_sweep.angles)
    tilt = estimate_joint(tilt_sweep.poses, tilt_sweep.angles)
    notes = [f"pan, tilt: {UNOBSERVABLE_TEXT}"]
    if order is AxisOrder.PAN_TILT and tilt_sweep.other_angle != 0.0:
        tilt = _transport(tilt, pan.joint("pan"), float(tilt_sweep.other_angle))
        notes.append(f"tilt sweep at pan {np.degrees(tilt_sweep.other_angle):.3g} deg, "
                     "brought back to pan 0 with the estimated pan joint")
    elif order is AxisOrder.TILT_PAN and pan_sweep.other_angle != 0.0:
        pan = _transport(pan, tilt.joint("tilt"), float(pan_sweep.other_angle))
        notes.append(f"pan sweep at tilt {np.degrees(pan_sweep.other_angle):.3g} deg, "
                     "brought back to tilt 0 with the estimated tilt joint")
    kin = PtzKinematics(pan_axis=pan.axis, tilt_axis=tilt.axis, pan_radius=pan.radius,
                        tilt_radius=tilt.radius, order=order)
    report = KinematicsReport(pan=pan, tilt=tilt, order=order, axis_angle=kin.axis_angle, notes=notes)
    return kin, report
