"""Rotations and rigid transforms, vectorized over leading batch dimensions."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

#: Rotation taking vectors from the optical frame (x right, y down, z forward) to the
#: REP-103 body frame (x forward, y left, z up): ``v_body = BODY_FROM_OPTICAL @ v_optical``.
BODY_FROM_OPTICAL: NDArray[np.float64] = np.array(
    [[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]
)
OPTICAL_FROM_BODY: NDArray[np.float64] = BODY_FROM_OPTICAL.T.copy()


def unit(vector: ArrayLike, name: str = "vector") -> NDArray[np.float64]:
    """Return ``vector`` normalized to unit length; raise ValueError on a zero or non-finite vector."""
    v = np.asarray(vector, dtype=float).reshape(3)
    norm = float(np.linalg.norm(v))
    if not np.isfinite(norm) or norm < 1e-12:
        raise ValueError(f"{name} must be a finite non-zero 3-vector, got {v.tolist()}")
    return v / norm


def skew(v: ArrayLike) -> NDArray[np.float64]:
    """Cross-product matrix of a 3-vector (or a batch (..., 3))."""
    v = np.asarray(v, dtype=float)
    out = np.zeros(v.shape[:-1] + (3, 3))
    out[..., 0, 1], out[..., 0, 2] = -v[..., 2], v[..., 1]
    out[..., 1, 0], out[..., 1, 2] = v[..., 2], -v[..., 0]
    out[..., 2, 0], out[..., 2, 1] = -v[..., 1], v[..., 0]
    return out


def axis_angle_matrix(axis: ArrayLike, angle: ArrayLike) -> NDArray[np.float64]:
    """Rodrigues' formula: rotation by ``angle`` (scalar or array) about the unit ``axis``.

    Returns (3, 3) for a scalar angle, (*angle.shape, 3, 3) otherwise.
    """
    a = np.asarray(axis, dtype=float).reshape(3)
    theta = np.asarray(angle, dtype=float)
    k = skew(a)
    k2 = k @ k
    s = np.sin(theta)[..., None, None]
    c = (1.0 - np.cos(theta))[..., None, None]
    return np.eye(3) + s * k + c * k2


def compose(
    ra: NDArray[np.float64], ta: NDArray[np.float64], rb: NDArray[np.float64], tb: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Compose rigid transforms ``(ra, ta) o (rb, tb)``: x -> ra (rb x + tb) + ta (batched)."""
    return ra @ rb, np.einsum("...ij,...j->...i", ra, tb) + ta


def invert(r: NDArray[np.float64], t: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Inverse of the rigid transform x -> r x + t (batched)."""
    rt = np.swapaxes(r, -1, -2)
    return rt, -np.einsum("...ij,...j->...i", rt, t)


def rotation_angle(r: ArrayLike) -> NDArray[np.float64]:
    """Angle (rad) of rotation matrices (..., 3, 3), accurate for small angles too."""
    r = np.asarray(r, dtype=float)
    cos = (np.trace(r, axis1=-2, axis2=-1) - 1.0) / 2.0
    vee = np.stack(
        [r[..., 2, 1] - r[..., 1, 2], r[..., 0, 2] - r[..., 2, 0], r[..., 1, 0] - r[..., 0, 1]], axis=-1
    )
    sin = np.linalg.norm(vee, axis=-1) / 2.0
    return np.arctan2(sin, cos)


def matrix_to_quaternion(r: ArrayLike) -> NDArray[np.float64]:
    """Quaternions (x, y, z, w), w >= 0, of rotation matrices (..., 3, 3) (Shepperd's method)."""
    m = np.asarray(r, dtype=float)
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    # Four candidate solutions, each well conditioned where its pivot is largest.
    cand = np.stack(
        [
            np.stack([m21 - m12, m02 - m20, m10 - m01, 1.0 + m00 + m11 + m22], axis=-1),
            np.stack([1.0 + m00 - m11 - m22, m01 + m10, m02 + m20, m21 - m12], axis=-1),
            np.stack([m01 + m10, 1.0 + m11 - m00 - m22, m12 + m21, m02 - m20], axis=-1),
            np.stack([m02 + m20, m12 + m21, 1.0 + m22 - m00 - m11, m10 - m01], axis=-1),
        ],
        axis=-2,
    )
    pivots = np.stack([1.0 + m00 + m11 + m22, 1.0 + m00 - m11 - m22, 1.0 + m11 - m00 - m22,
                       1.0 + m22 - m00 - m11], axis=-1)
    best = np.argmax(pivots, axis=-1)
    q = np.take_along_axis(cand, best[..., None, None], axis=-2)[..., 0, :]
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return np.where(q[..., 3:4] < 0.0, -q, q)


def quaternion_to_matrix(q: ArrayLike) -> NDArray[np.float64]:
    """Rotation matrices (..., 3, 3) of quaternions (..., 4) in (x, y, z, w) order."""
    q = np.asarray(q, dtype=float)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    x, y, z, w = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    out = np.empty(q.shape[:-1] + (3, 3))
    out[..., 0, 0] = 1 - 2 * (y * y + z * z)
    out[..., 0, 1] = 2 * (x * y - z * w)
    out[..., 0, 2] = 2 * (x * z + y * w)
    out[..., 1, 0] = 2 * (x * y + z * w)
    out[..., 1, 1] = 1 - 2 * (x * x + z * z)
    out[..., 1, 2] = 2 * (y * z - x * w)
    out[..., 2, 0] = 2 * (x * z - y * w)
    out[..., 2, 1] = 2 * (y * z + x * w)
    out[..., 2, 2] = 1 - 2 * (x * x + y * y)
    return out


def rpy_matrix(roll: float, pitch: float, yaw: float) -> NDArray[np.float64]:
    """Rotation of fixed-axis roll (x), pitch (y), yaw (z) as in URDF/REP-103: Rz Ry Rx."""
    rx = axis_angle_matrix([1.0, 0.0, 0.0], roll)
    ry = axis_angle_matrix([0.0, 1.0, 0.0], pitch)
    rz = axis_angle_matrix([0.0, 0.0, 1.0], yaw)
    return rz @ ry @ rx


def matrix_to_rpy(r: ArrayLike) -> tuple[float, float, float]:
    """Roll, pitch, yaw (rad) of ``R = Rz(yaw) Ry(pitch) Rx(roll)``: the inverse of :func:`rpy_matrix`."""
    m = np.asarray(r, dtype=float).reshape(3, 3)
    pitch = float(np.arcsin(-np.clip(m[2, 0], -1.0, 1.0)))
    return float(np.arctan2(m[2, 1], m[2, 2])), pitch, float(np.arctan2(m[1, 0], m[0, 0]))
