"""The ``ptz_geometry`` node: TF and CameraInfo for PTZ cameras driven by other ROS drivers.

Subscribes the ``PtzState`` of a third-party driver (``state_topic``) and publishes, through the
same :class:`GeometryPublisher` as ``ptz_driver``, the TF chain on ``/tf``, the mount on
``/tf_static``, ``CameraInfo`` (``camera_info_topic``) and, if ``joint_states_topic`` is set,
``JointState``. Invalid, stale or out-of-order states are dropped and reported on
``/diagnostics``. Serves ``~/reload_calibration``. Uncalibrated behaviour as ``ptz_driver``
(ideal gimbal, K = 0), with the ranges from the ``uncalibrated.*`` parameters.

One node can serve several cameras (``cameras: [a, b, ...]``): every per-camera parameter is
then prefixed with the camera name (``a.calibration_url``, ``a.state_topic`` (default
``a/ptz_state``), ``a.camera_info_topic`` (default ``a/camera_info``), ``a.mount.xyz``...).
One node for N cameras costs the executor far less than N nodes (rclpy rebuilds its wait set
from every entity of every node on each wake-up).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Optional

from diagnostic_msgs.msg import DiagnosticArray
from ptz_calibration_msgs.msg import PtzState
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_srvs.srv import Trigger

from ..model import JointLimits, PtzCameraModel
from . import conversions as conv
from . import diagnostics as diag
from .calibration import ideal_model, reload_calibration, start_calibration
from .geometry_publisher import GeometryPublisher
from .runner import run_node
from .params import CameraParams, declare, declare_camera_params, float_vector


@dataclass
class _Channel:
    """One camera served by the node."""

    camera: CameraParams
    geometry: GeometryPublisher
    note: str
    received: diag.Counter = field(default_factory=diag.Counter)
    published: diag.Counter = field(default_factory=diag.Counter)
    dropped: diag.Counter = field(default_factory=diag.Counter)


class PtzGeometryNode(Node):
    """See the module docstring. ``camera``/``geometry`` are those of the (first) camera."""

    def __init__(self, node_name: str = "ptz_geometry", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        names = list(declare(self, "cameras", [""], "cameras served by this node (empty: one, camera_name)"))
        names = [n for n in names if n]
        reliability = declare(self, "state_reliability", "reliable",
                              "QoS reliability of the PtzState subscriptions: reliable or best_effort")
        self._pan_limits = float_vector(declare(self, "uncalibrated.pan_limits", [-math.pi, math.pi],
                                                "pan range (rad) when uncalibrated", dynamic=True),
                                        2, "uncalibrated.pan_limits")
        self._tilt_limits = float_vector(declare(self, "uncalibrated.tilt_limits", [-math.pi / 2, math.pi / 2],
                                                 "tilt range (rad) when uncalibrated", dynamic=True),
                                         2, "uncalibrated.tilt_limits")
        self._zoom_range = float_vector(declare(self, "uncalibrated.zoom_range", [0.0, 16384.0],
                                                "raw zoom range when uncalibrated", dynamic=True),
                                        2, "uncalibrated.zoom_range")
        self._image_size = (declare(self, "uncalibrated.image_width", 0, "image width (px) when uncalibrated"),
                            declare(self, "uncalibrated.image_height", 0, "image height (px) when uncalibrated"))
        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.BEST_EFFORT if reliability == "best_effort"
                         else ReliabilityPolicy.RELIABLE)
        self.channels: dict[str, _Channel] = {}
        for name in names or [None]:
            channel = self._add_camera(name)
            self.channels[channel.camera.camera_name] = channel
            self.create_subscription(PtzState, self._state_topic,
                                     lambda msg, c=channel: self._on_state(c, msg), qos)
        first = next(iter(self.channels.values()))
        self.camera, self.geometry = first.camera, first.geometry
        self.create_service(Trigger, "~/reload_calibration", self._on_reload)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(1.0, self._on_diagnostics)

    def _add_camera(self, name: Optional[str]) -> _Channel:
        prefix = f"{name}." if name else ""
        camera = declare_camera_params(self, prefix=prefix, camera_name=name)
        base = f"{name}/" if name else ""
        self._state_topic = declare(self, f"{prefix}state_topic", f"{base}ptz_state", "PtzState input topic")
        info_topic = declare(self, f"{prefix}camera_info_topic", f"{base}camera_info", "CameraInfo output topic")
        joint_topic = declare(self, f"{prefix}joint_states_topic", "",
                              "JointState output topic (empty = none: the third-party driver usually has its own)")
        model, calibrated, note = start_calibration(camera.calibration_url, camera.camera_name,
                                                    lambda: self._ideal(camera.camera_name))
        if not calibrated and camera.calibration_url.strip():
            self.get_logger().error(note)
        elif not calibrated:
            self.get_logger().warning(note)
        geometry = GeometryPublisher(
            self, camera.camera_name, camera.frames, model, calibrated,
            mount_xyz=camera.mount_xyz, mount_rpy=camera.mount_rpy, info_topic=info_topic,
            state_topic=None, joint_topic=joint_topic or None, stale_timeout=camera.stale_timeout)
        return _Channel(camera, geometry, note)

    def _ideal(self, camera_name: str) -> PtzCameraModel:
        limits = JointLimits(*self._pan_limits, *self._tilt_limits)
        return ideal_model(camera_name, *self._image_size, limits, *self._zoom_range)

    def _on_state(self, channel: _Channel, msg: PtzState) -> None:
        channel.received.total += 1
        channel.geometry.publish(conv.feedback_from_state(msg))

    def _on_reload(self, _request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        multi = len(self.channels) > 1
        ok, notes = True, []
        for name, channel in self.channels.items():
            key = f"{name}.calibration_url" if multi else "calibration_url"
            model, note = reload_calibration(self.get_parameter(key).value, name)
            if model is None:
                ok = False
                kept = "model" if channel.geometry.calibrated else "ideal gimbal"
                notes.append(f"{name}: kept the previous {kept}: {note}")
            else:
                channel.geometry.set_model(model, True)
                channel.note = note
                notes.append(f"{name}: loaded {note}")
        response.success, response.message = ok, "; ".join(notes)
        if ok:
            self.get_logger().info(f"reload_calibration: {response.message}")
        else:
            self.get_logger().error(f"reload_calibration failed: {response.message}")
        return response

    def _on_diagnostics(self) -> None:
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        for name, channel in self.channels.items():
            stats = channel.geometry.stats
            received = channel.received.delta()
            published = channel.published.delta(stats.published)
            dropped = channel.dropped.delta(stats.invalid + stats.stale)
            problems: list[tuple[int, str]] = []
            if received == 0:
                problems.append((diag.WARN, "no PtzState received in the last second"))
            if dropped:
                problems.append((diag.WARN, f"{dropped} invalid or stale states dropped"))
                self.get_logger().warning(f"{name}: {dropped} invalid or stale PtzState samples in the last "
                                          f"second not published; last: {stats.last_problem}")
            if not channel.geometry.calibrated:
                problems.append((diag.WARN, "uncalibrated: CameraInfo K = 0, TF from an ideal gimbal"))
            level, message = diag.worst(problems)
            msg.status.append(diag.status(f"{self.get_fully_qualified_name()}: {name}", name, level, message, {
                "received rate (Hz)": float(received),
                "feedback rate (Hz)": float(published),
                "published samples": stats.published,
                "invalid samples": stats.invalid,
                "stale samples": stats.stale,
                "last rejected sample": stats.last_problem,
                "calibration loaded": channel.geometry.calibrated,
                "calibration": channel.note,
                "tf source": "calibrated model" if channel.geometry.calibrated else "ideal gimbal (uncalibrated)",
            }))
        self._diag_pub.publish(msg)


def main(args: Optional[list[str]] = None) -> int:
    """Entry point ``ptz_geometry``."""
    return run_node(PtzGeometryNode, SingleThreadedExecutor, args)


if __name__ == "__main__":
    sys.exit(main())
