"""Frames of a stereo PTZ rig in TF terms, for the ``ptz_stereo`` node (pure numpy, no messages).

The TF tree of a stereo rig::

    parent -> left_mount      (static, the left driver: its mount.xyz / mount.rpy)
    left_mount -> right_mount (static, ptz_stereo: the rig calibration, left_mount_from_right_mount)
    <camera>_mount -> ... -> <camera>_optical_frame   (each driver, from its pan/tilt/zoom feedback)

A localized point comes out of the maths in the LEFT optical frame; :func:`from_left_optical`
gives the transform into any frame of that tree at the cameras' states ``(pan, tilt, zoom)``.
Transforms are ``(R, t)`` with ``X_target = R X_source + t``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from numpy.typing import NDArray

from ..model import BODY_FROM_OPTICAL, compose, invert
from ..corrections.apply import setting_pose
from ..model.stereo_rig import StereoRigModel

Transform = tuple[NDArray[np.float64], NDArray[np.float64]]

#: Variance (rad^2) put on the orientation of a PoseWithCovariance that carries a point only:
#: ROS has no "unknown" marker there (the -1 convention is for Imu/NavSatFix), so a variance so
#: large that any filter ignores the orientation. Documented in the README and the node.
ORIENTATION_VARIANCE_UNKNOWN = 1.0e6


class FrameUnavailable(ValueError):
    """A frame that cannot be served (unknown id, or its transform was not received)."""


@dataclass(frozen=True)
class StereoFrames:
    """The TF frame ids the stereo node works with."""

    parent: str
    left_mount: str
    right_mount: str
    left_optical: str
    right_optical: str

    def names(self) -> tuple[str, ...]:
        return (self.left_optical, self.right_optical, self.left_mount, self.right_mount, self.parent)


def tf_from_extrinsics(r: NDArray, t: NDArray) -> Transform:
    """OpenCV stereo extrinsics (``X_right = r X_left + t``) as the TF transform parent = left
    optical, child = right optical (the right optical frame's pose in the left one)."""
    return invert(np.asarray(r, float), np.asarray(t, float))


def left_mount_from_left_optical(rig: StereoRigModel, left: tuple[float, float, float]) -> Transform:
    """The left optical frame in the left mount frame: ``[B | 0] * left.pose``."""
    r, t = setting_pose(rig.left, left)
    return BODY_FROM_OPTICAL @ r, BODY_FROM_OPTICAL @ t


def from_left_optical(rig: StereoRigModel, frames: StereoFrames, frame_id: str,
                      left: tuple[float, float, float], right: tuple[float, float, float],
                      parent_from_left_mount: Optional[Transform] = None) -> Transform:
    """``(R, t)`` taking left optical coordinates into ``frame_id`` ('' = the left optical frame)
    with the cameras at ``left`` / ``right`` = (pan, tilt, zoom).

    Raises :class:`FrameUnavailable` for any other frame, or for the parent frame while its
    transform to the left mount is unknown (``parent_from_left_mount`` None).
    """
    if frame_id in ("", frames.left_optical):
        return np.eye(3), np.zeros(3)
    if frame_id == frames.right_optical:
        return rig.extrinsics(left, right)
    mount = left_mount_from_left_optical(rig, left)
    if frame_id == frames.left_mount:
        return mount
    if frame_id == frames.right_mount:
        return compose(*invert(*rig.left_mount_from_right_mount()), *mount)
    if frame_id == frames.parent:
        if parent_from_left_mount is None:
            raise FrameUnavailable(f"the transform {frames.parent} -> {frames.left_mount} has not been received "
                                   "on /tf_static (is the left driver running?)")
        return compose(*parent_from_left_mount, *mount)
    raise FrameUnavailable(f"unknown frame {frame_id!r}; known: '' (= {frames.left_optical}), "
                           + ", ".join(frames.names()))


def transform_points(tf: Transform, points: NDArray) -> NDArray:
    """Points (N, 3) or (3,) through ``tf``."""
    r, t = tf
    return np.asarray(points, float) @ r.T + t


def transform_covariances(tf: Transform, covariances: NDArray) -> NDArray:
    """Covariances (N, 3, 3) or (3, 3) rotated by ``tf``: ``R C R^T``."""
    r = tf[0]
    return r @ np.asarray(covariances, float) @ r.T


def pose_covariance(cov3: NDArray) -> list[float]:
    """The 6x6 row-major covariance of a PoseWithCovariance holding a point: ``cov3`` for x, y, z,
    :data:`ORIENTATION_VARIANCE_UNKNOWN` on the orientation diagonal, zero correlations."""
    out = np.zeros((6, 6))
    out[:3, :3] = cov3
    out[3:, 3:] = np.eye(3) * ORIENTATION_VARIANCE_UNKNOWN
    return out.reshape(36).tolist()


def frustum_corners(k: NDArray, width: int, height: int, length: float) -> NDArray:
    """The four image corners' rays (pinhole K, no distortion) at depth ``length`` along the
    optical axis, in the optical frame: (4, 3), order top-left, top-right, bottom-right, bottom-left."""
    fx, fy, cx, cy = k[0, 0], k[1, 1], k[0, 2], k[1, 2]
    us = np.array([0.0, width, width, 0.0])
    vs = np.array([0.0, 0.0, height, height])
    return np.stack([(us - cx) / fx * length, (vs - cy) / fy * length, np.full(4, length)], axis=1)


def frustum_lines(k: NDArray, width: int, height: int, length: float) -> NDArray:
    """Line segments (pairs of points, (16, 3)) of a frustum: 4 edges from the optical centre,
    the 4 sides of the far rectangle."""
    c = frustum_corners(k, width, height, length)
    o = np.zeros(3)
    segments = []
    for i in range(4):
        segments += [o, c[i], c[i], c[(i + 1) % 4]]
    return np.array(segments)
