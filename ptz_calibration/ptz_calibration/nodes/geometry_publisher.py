"""Turn validated pan/tilt/zoom feedback of one camera into TF, CameraInfo, PtzState and JointState.

Per sample (:meth:`GeometryPublisher.publish`) the messages are pre-built and only their stamps
and values change; nothing is logged and no publisher is created. A sample that is not finite,
outside the head's range (``model.validate_feedback``), older than ``stale_timeout`` or not newer
than the last published one produces no message at all; it is counted in :attr:`stats` (the
owning node reports the counts in its diagnostics). Every published PtzState therefore has a TF
chain and a CameraInfo with the same stamp.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Callable, Optional, Sequence

from builtin_interfaces.msg import Time
from ptz_calibration_msgs.msg import PtzState
from rclpy.node import Node
from rclpy.qos import QoSProfile
from sensor_msgs.msg import CameraInfo, JointState

from ..drivers.interface import PtzFeedback
from ..model import FeedbackError, PtzCameraModel
from . import conversions as conv
from . import tf_broadcaster
from ..corrections import DirectionTracker
from ..corrections import apply as corrections
from .frames import CorrectedChain, FrameNames

STATE_QOS = QoSProfile(depth=10)


@dataclass
class GeometryStats:
    """Counters of one camera's feedback samples (read by the node's diagnostics)."""

    published: int = 0
    invalid: int = 0
    stale: int = 0
    last_problem: str = ""
    last_stamp: float = math.nan  # sample time of the last published sample (s, system clock)


class _Snapshot:
    """The model in use and the messages pre-built for it (swapped as a whole by set_model)."""

    __slots__ = ("model", "calibrated", "chain", "links", "info", "info_zoom", "pointing", "thermal")

    def __init__(self, model: PtzCameraModel, calibrated: bool, frames: FrameNames) -> None:
        self.model = model
        self.calibrated = calibrated
        self.chain = conv.empty_chain(frames, model.kinematics.order)
        self.links = CorrectedChain(model)
        layers = corrections.layers_of(model)
        self.pointing = layers.active("pointing") if calibrated else None
        self.thermal = layers.active("thermal") is not None and calibrated
        self.info = conv.camera_info(model if calibrated else None, model.zoom_mapping.raw_min, 0.0,
                                     frames.optical, model.image_width, model.image_height)
        self.info_zoom = (model.zoom_mapping.raw_min, math.nan) if calibrated else (math.nan, math.nan)


class GeometryPublisher:
    """Publishes the TF chain, CameraInfo, PtzState and JointState of one PTZ camera.

    ``state_topic`` / ``joint_topic`` None: that message is not published (e.g. a node that
    receives the PtzState of another driver does not echo it). With ``calibrated`` false
    the model is an ideal stand-in: the TF chain comes from it, but CameraInfo has K = P = 0 and
    the magnification in PtzState is NaN. ``publish_mount_tf`` false: the static parent -> mount
    transform is not published (another node places the mount, e.g. ptz_stereo puts the right
    camera's mount under the left camera's mount from the stereo calibration).
    """

    def __init__(self, node: Node, camera_name: str, frames: FrameNames, model: PtzCameraModel,
                 calibrated: bool = True, *, mount_xyz: Sequence[float] = (0.0, 0.0, 0.0),
                 mount_rpy: Sequence[float] = (0.0, 0.0, 0.0), info_topic: str = "~/camera_info",
                 state_topic: Optional[str] = "~/ptz_state", joint_topic: Optional[str] = "~/joint_states",
                 stale_timeout: float = 0.5, publish_mount_tf: bool = True,
                 clock: Callable[[], float] = time.time) -> None:
        self.camera_name = camera_name
        self.frames = frames
        self.stale_timeout = float(stale_timeout)
        self.stats = GeometryStats()
        self._clock = clock
        self._tf, self._tf_static = tf_broadcaster.for_node(node)
        self._info_pub = node.create_publisher(CameraInfo, info_topic, STATE_QOS)
        self._state_pub = node.create_publisher(PtzState, state_topic, STATE_QOS) if state_topic else None
        self._joint_pub = node.create_publisher(JointState, joint_topic, STATE_QOS) if joint_topic else None
        self._state_msg = conv.ptz_state(PtzFeedback(0.0, 0.0, 0.0, 0.0), camera_name, frames.mount)
        self._joint_msg = conv.joint_state(PtzFeedback(0.0, 0.0, 0.0, 0.0), camera_name)
        self._snapshot = _Snapshot(model, calibrated, self.frames)
        # directions of the last motion of each axis, for the backlash term of a pointing map
        self._pan_direction = DirectionTracker()
        self._tilt_direction = DirectionTracker()
        if publish_mount_tf:
            self._tf_static.send([conv.mount_transform_stamped(frames, mount_xyz, mount_rpy, clock())])

    # -- model ---------------------------------------------------------------------------------

    def set_model(self, model: PtzCameraModel, calibrated: bool = True) -> None:
        """Use ``model`` from the next sample on (thread-safe: one reference swap)."""
        self._snapshot = _Snapshot(model, calibrated, self.frames)

    @property
    def model(self) -> PtzCameraModel:
        return self._snapshot.model

    @property
    def calibrated(self) -> bool:
        return self._snapshot.calibrated

    # -- per sample -----------------------------------------------------------------------------

    def check(self, feedback: PtzFeedback, model: Optional[PtzCameraModel] = None) -> Optional[str]:
        """Why ``feedback`` must not be published (None when it is fine)."""
        if feedback.error:
            return f"device error: {feedback.error}"
        if not math.isfinite(feedback.stamp):
            return f"non-finite stamp {feedback.stamp}"
        try:
            (model or self._snapshot.model).validate_feedback(feedback.pan, feedback.tilt, feedback.zoom_raw)
        except FeedbackError as exc:
            return str(exc)
        return None

    def publish(self, feedback: PtzFeedback) -> bool:
        """Publish the messages of ``feedback`` if it is valid and fresh; return whether it was."""
        snap = self._snapshot
        stats = self.stats
        problem = self.check(feedback, snap.model)
        if problem is not None:
            stats.invalid += 1
            stats.last_problem = problem
            return False
        stamp = feedback.stamp
        age = self._clock() - stamp
        if age > self.stale_timeout:
            stats.stale += 1
            stats.last_problem = f"sample {age:.3f} s old (stale_timeout {self.stale_timeout} s)"
            return False
        if age < -self.stale_timeout:
            stats.invalid += 1
            stats.last_problem = f"sample stamp {-age:.3f} s in the future"
            return False
        if stamp <= stats.last_stamp:
            stats.stale += 1
            stats.last_problem = "sample not newer than the last published one"
            return False
        pan, tilt, zoom = feedback.pan, feedback.tilt, feedback.zoom_raw
        pan_dir = self._pan_direction.update(pan, feedback.pan_velocity)
        tilt_dir = self._tilt_direction.update(tilt, feedback.tilt_velocity)
        if snap.pointing is not None:  # reported -> actual joint angles (pan-tilt correction map)
            p, t = snap.pointing.correct(pan, tilt, pan_dir, tilt_dir)
            pan, tilt = float(p), float(t)
        temperature = feedback.temperature if snap.thermal and math.isfinite(feedback.temperature) else math.nan
        sec, nanosec = divmod(int(round(stamp * 1e9)), 1_000_000_000)
        stamp_msg = Time(sec=sec, nanosec=nanosec)  # shared by every message of this sample
        conv.fill_links(snap.chain, snap.links.links(pan, tilt, zoom, temperature), stamp_msg)
        self._tf.send(snap.chain)
        info = snap.info
        info.header.stamp = stamp_msg
        key = (zoom, temperature if math.isfinite(temperature) else math.nan)
        if snap.calibrated and (key[0] != snap.info_zoom[0] or not _same(key[1], snap.info_zoom[1])):
            conv.fill_camera_info(info, snap.model, zoom, stamp, temperature)
            snap.info_zoom = key
        self._info_pub.publish(info)
        if self._state_pub is not None:
            state = self._state_msg
            mag = float(snap.model.zoom_mapping.magnification(zoom)) if snap.calibrated else math.nan
            conv.fill_ptz_state(state, feedback, mag)
            self._state_pub.publish(state)
        if self._joint_pub is not None:  # the joint angles of the TF chain (after the pointing map)
            joints = feedback if snap.pointing is None else replace(feedback, pan=pan, tilt=tilt)
            self._joint_pub.publish(conv.fill_joint_state(self._joint_msg, joints))
        stats.published += 1
        stats.last_stamp = stamp
        return True


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))
