"""Conversions between the model / driver types and ROS messages (no node, no publishing).

``fill_*`` functions write into an existing message (the per-sample path reuses pre-built
messages); the other functions build new ones.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import TransformStamped
from numpy.typing import NDArray
from ptz_calibration_msgs.msg import PtzState
from sensor_msgs.msg import CameraInfo, Image, JointState

from ..corrections.apply import corrected_camera_matrix
from ..drivers.interface import Frame, PtzFeedback
from ..model import PtzCameraModel, matrix_to_quaternion
from .frames import FrameNames, QuatLink, body_chain, mount_transform

NAN = float("nan")
_ZEROS9 = np.zeros(9)
_ZEROS12 = np.zeros(12)
_ZEROS5 = np.zeros(5)
_IDENTITY9 = np.eye(3).reshape(9)

#: bytes per pixel of the image encodings the drivers produce (as cv_bridge maps them).
_ENCODINGS = {"mono8": (np.uint8, 1), "mono16": (np.uint16, 1), "bgr8": (np.uint8, 3), "rgb8": (np.uint8, 3)}


# -- time ---------------------------------------------------------------------------------


def fill_time(msg: Time, stamp: float) -> Time:
    """Write ``stamp`` (seconds, system clock) into ``msg`` with nanosecond rounding."""
    sec, nanosec = divmod(int(round(stamp * 1e9)), 1_000_000_000)
    msg.sec, msg.nanosec = sec, nanosec
    return msg


def to_time(stamp: float) -> Time:
    """A ``builtin_interfaces/Time`` of ``stamp`` seconds."""
    return fill_time(Time(), stamp)


def from_time(msg: Time) -> float:
    """Seconds of a ``builtin_interfaces/Time``."""
    return msg.sec + msg.nanosec * 1e-9


# -- PTZ state and joints --------------------------------------------------------------------


def fill_ptz_state(msg: PtzState, feedback: PtzFeedback, magnification: float = NAN) -> PtzState:
    """Write ``feedback`` into ``msg`` (header.frame_id and camera_name are left as they are)."""
    fill_time(msg.header.stamp, feedback.stamp)
    msg.pan = float(feedback.pan)
    msg.tilt = float(feedback.tilt)
    msg.pan_velocity = float(feedback.pan_velocity)
    msg.tilt_velocity = float(feedback.tilt_velocity)
    msg.zoom_raw = float(feedback.zoom_raw)
    msg.zoom_magnification = float(magnification)
    msg.temperature = float(feedback.temperature)
    msg.moving = bool(feedback.moving)
    return msg


def ptz_state(feedback: PtzFeedback, camera_name: str, frame_id: str, magnification: float = NAN) -> PtzState:
    """A ``PtzState`` of ``feedback``; ``frame_id`` is the mount frame."""
    msg = PtzState()
    msg.header.frame_id = frame_id
    msg.camera_name = camera_name
    return fill_ptz_state(msg, feedback, magnification)


def feedback_from_state(msg: PtzState) -> PtzFeedback:
    """The driver-side view of a ``PtzState`` (e.g. from a third-party driver)."""
    return PtzFeedback(pan=msg.pan, tilt=msg.tilt, zoom_raw=msg.zoom_raw, stamp=from_time(msg.header.stamp),
                       pan_velocity=msg.pan_velocity, tilt_velocity=msg.tilt_velocity,
                       temperature=msg.temperature, moving=msg.moving)


def joint_names(camera_name: str) -> list[str]:
    """``[{camera}_pan_joint, {camera}_tilt_joint]``."""
    return [f"{camera_name}_pan_joint", f"{camera_name}_tilt_joint"]


def fill_joint_state(msg: JointState, feedback: PtzFeedback) -> JointState:
    """Write pan/tilt position and velocity of ``feedback`` into a two-joint ``msg``."""
    fill_time(msg.header.stamp, feedback.stamp)
    msg.position = [float(feedback.pan), float(feedback.tilt)]
    msg.velocity = [float(feedback.pan_velocity), float(feedback.tilt_velocity)]
    return msg


def joint_state(feedback: PtzFeedback, camera_name: str) -> JointState:
    """A ``sensor_msgs/JointState`` with joints ``{camera}_pan_joint`` and ``{camera}_tilt_joint``."""
    msg = JointState()
    msg.name = joint_names(camera_name)
    return fill_joint_state(msg, feedback)


# -- camera info -------------------------------------------------------------------------------


def fill_camera_info(msg: CameraInfo, model: Optional[PtzCameraModel], zoom_raw: float, stamp: float,
                     temperature: float = math.nan) -> CameraInfo:
    """Write K, D, P of ``model`` at ``zoom_raw`` (all zeros when ``model`` is None: uncalibrated).

    With a finite ``temperature`` and a thermal layer in the model, K carries its focal scale.
    """
    fill_time(msg.header.stamp, stamp)
    if model is None:
        msg.k, msg.p, msg.d = _ZEROS9, _ZEROS12, _ZEROS5.tolist()
        return msg
    k = corrected_camera_matrix(model, zoom_raw, temperature)
    msg.k = k.reshape(9)
    p = np.zeros((3, 4))
    p[:, :3] = k
    msg.p = p.reshape(12)
    msg.d = model.distortion(zoom_raw).tolist()
    return msg


def camera_info(model: Optional[PtzCameraModel], zoom_raw: float, stamp: float, frame_id: str,
                width: int = 0, height: int = 0) -> CameraInfo:
    """A plumb_bob ``CameraInfo`` (R identity, P = [K | 0]); K and P zero when uncalibrated.

    ``width``/``height`` default to the model's image size.
    """
    msg = CameraInfo()
    msg.header.frame_id = frame_id
    msg.width = int(width or (model.image_width if model else 0))
    msg.height = int(height or (model.image_height if model else 0))
    msg.distortion_model = "plumb_bob"
    msg.r = _IDENTITY9
    return fill_camera_info(msg, model, zoom_raw, stamp)


# -- transforms --------------------------------------------------------------------------------


def fill_transform(msg: TransformStamped, r: NDArray, t: NDArray, quaternion: Optional[NDArray] = None) -> TransformStamped:
    """Write rotation ``r`` (or its precomputed (x, y, z, w) ``quaternion``) and translation ``t``."""
    q = matrix_to_quaternion(r) if quaternion is None else quaternion
    tr = msg.transform.translation
    tr.x, tr.y, tr.z = float(t[0]), float(t[1]), float(t[2])
    rot = msg.transform.rotation
    rot.x, rot.y, rot.z, rot.w = float(q[0]), float(q[1]), float(q[2]), float(q[3])
    return msg


def transform_stamped(parent: str, child: str, r: NDArray, t: NDArray, stamp: float) -> TransformStamped:
    """A ``TransformStamped`` parent -> child (the child's pose in the parent frame)."""
    msg = TransformStamped()
    msg.header.frame_id = parent
    msg.child_frame_id = child
    fill_time(msg.header.stamp, stamp)
    return fill_transform(msg, r, t)


def transform_to_matrix(msg: TransformStamped) -> tuple[NDArray, NDArray]:
    """(R, t) of a ``TransformStamped``."""
    from ..model import quaternion_to_matrix

    q = msg.transform.rotation
    tr = msg.transform.translation
    return quaternion_to_matrix([q.x, q.y, q.z, q.w]), np.array([tr.x, tr.y, tr.z])


def fill_links(msgs: Sequence[TransformStamped], links: Sequence[QuatLink], stamp: Time) -> None:
    """Write (quaternion, translation) ``links`` and the shared ``stamp`` into ``msgs``."""
    for msg, ((qx, qy, qz, qw), (x, y, z)) in zip(msgs, links):
        msg.header.stamp = stamp
        tr = msg.transform.translation
        tr.x, tr.y, tr.z = x, y, z
        rot = msg.transform.rotation
        rot.x, rot.y, rot.z, rot.w = qx, qy, qz, qw


def fill_chain(msgs: Sequence[TransformStamped], model: PtzCameraModel, pan: float, tilt: float, zoom: float,
               stamp: float) -> Sequence[TransformStamped]:
    """Write the three moving links (see :mod:`.frames`) into ``msgs`` (frame ids already set)."""
    links = body_chain(model, pan, tilt, zoom)
    quats = matrix_to_quaternion(np.stack([r for r, _ in links]))
    fill_links(msgs, [(tuple(map(float, q)), tuple(map(float, t))) for (_, t), q in zip(links, quats)],
               to_time(stamp))
    return msgs


def empty_chain(frames: FrameNames, order) -> list[TransformStamped]:
    """Three ``TransformStamped`` with the frame ids of the moving chain in the head's order."""
    ids = frames.moving_order(order)
    out = []
    for parent, child in zip(ids[:-1], ids[1:]):
        msg = TransformStamped()
        msg.header.frame_id, msg.child_frame_id = parent, child
        out.append(msg)
    return out


def chain_transforms(model: PtzCameraModel, frames: FrameNames, pan: float, tilt: float, zoom: float,
                     stamp: float) -> list[TransformStamped]:
    """mount -> first link -> second link -> optical frame, stamped ``stamp``."""
    msgs = empty_chain(frames, model.kinematics.order)
    fill_chain(msgs, model, pan, tilt, zoom, stamp)
    return msgs


def mount_transform_stamped(frames: FrameNames, xyz: Sequence[float], rpy: Sequence[float],
                            stamp: float) -> TransformStamped:
    """The static parent -> mount transform from URDF-style ``xyz`` and ``rpy``."""
    r, t = mount_transform(xyz, rpy)
    return transform_stamped(frames.parent, frames.mount, r, t, stamp)


# -- images ------------------------------------------------------------------------------------


def image_msg(frame: Frame, frame_id: str) -> Image:
    """A ``sensor_msgs/Image`` of ``frame`` laid out as cv_bridge's ``cv2_to_imgmsg`` does.

    ``header.stamp`` is the exposure time; ``step`` = width x channels x bytes per channel,
    little-endian data.
    """
    try:
        dtype, channels = _ENCODINGS[frame.encoding]
    except KeyError:
        raise ValueError(f"unsupported image encoding {frame.encoding!r}; known: {sorted(_ENCODINGS)}") from None
    image = np.ascontiguousarray(frame.image, dtype=np.dtype(dtype).newbyteorder("<"))
    if image.ndim != (2 if channels == 1 else 3) or (channels > 1 and image.shape[2] != channels):
        raise ValueError(f"image of shape {image.shape} does not match encoding {frame.encoding}")
    msg = Image()
    fill_time(msg.header.stamp, frame.stamp)
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(image.shape[0]), int(image.shape[1])
    msg.encoding = frame.encoding
    msg.is_bigendian = 0
    msg.step = int(image.shape[1] * channels * image.itemsize)
    msg.data = image.tobytes()
    return msg


def image_to_array(msg: Image) -> NDArray:
    """The numpy view of a ``sensor_msgs/Image`` of a known encoding (inverse of :func:`image_msg`)."""
    dtype, channels = _ENCODINGS[msg.encoding]
    dt = np.dtype(dtype).newbyteorder(">" if msg.is_bigendian else "<")
    flat = np.frombuffer(bytes(msg.data), dtype=dt)
    rows = flat.reshape(msg.height, msg.step // dt.itemsize)[:, : msg.width * channels]
    return rows.reshape(msg.height, msg.width, channels) if channels > 1 else rows


def finite_or_nan(value: Optional[float]) -> float:
    """``value`` as a float, NaN when None."""
    return NAN if value is None else float(value)


def is_finite(*values: float) -> bool:
    """True when every value is finite."""
    return all(math.isfinite(v) for v in values)
