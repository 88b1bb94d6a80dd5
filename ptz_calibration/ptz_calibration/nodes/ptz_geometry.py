"""The ``ptz_geometry`` node: TF and CameraInfo for a PTZ camera driven by another ROS driver.

Subscribes the ``PtzState`` of a third-party driver (``state_topic``) and publishes, through the
same :class:`GeometryPublisher` as ``ptz_driver``, the TF chain on ``/tf``, the mount on
``/tf_static``, ``CameraInfo`` (``camera_info_topic``) and, if ``joint_states_topic`` is set,
``JointState``. Invalid,
stale or out-of-order states are dropped and reported on ``/diagnostics``. Serves
``~/reload_calibration``. Uncalibrated behaviour as ``ptz_driver`` (ideal gimbal, K = 0), with
the ranges from the ``uncalibrated.*`` parameters.
"""

from __future__ import annotations

import math
import sys
from typing import Optional

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from ptz_calibration_msgs.msg import PtzState
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_srvs.srv import Trigger

from ..model import JointLimits, PtzCameraModel
from . import conversions as conv
from . import diagnostics as diag
from .calibration import ideal_model, reload_calibration, start_calibration
from .geometry_publisher import GeometryPublisher
from .params import declare, declare_camera_params, float_vector


class PtzGeometryNode(Node):
    """See the module docstring."""

    def __init__(self, node_name: str = "ptz_geometry", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self.camera = declare_camera_params(self)
        state_topic = declare(self, "state_topic", "ptz_state", "PtzState input topic")
        info_topic = declare(self, "camera_info_topic", "camera_info", "CameraInfo output topic")
        joint_topic = declare(self, "joint_states_topic", "",
                              "JointState output topic (empty = none: the third-party driver usually has its own)")
        reliability = declare(self, "state_reliability", "reliable",
                              "QoS reliability of the PtzState subscription: reliable or best_effort")
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

        model, calibrated, self._calibration_note = start_calibration(
            self.camera.calibration_url, self.camera.camera_name, self._ideal)
        if not calibrated and self.camera.calibration_url.strip():
            self.get_logger().error(self._calibration_note)
        elif not calibrated:
            self.get_logger().warning(self._calibration_note)
        self.geometry = GeometryPublisher(
            self, self.camera.camera_name, self.camera.frames, model, calibrated,
            mount_xyz=self.camera.mount_xyz, mount_rpy=self.camera.mount_rpy, info_topic=info_topic,
            state_topic=None, joint_topic=joint_topic or None, stale_timeout=self.camera.stale_timeout)
        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.BEST_EFFORT if reliability == "best_effort"
                         else ReliabilityPolicy.RELIABLE)
        self.create_subscription(PtzState, state_topic, self._on_state, qos)
        self.create_service(Trigger, "~/reload_calibration", self._on_reload)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._received = diag.Counter()
        self._published = diag.Counter()
        self._dropped = diag.Counter()
        self.create_timer(1.0, self._on_diagnostics)

    def _ideal(self) -> PtzCameraModel:
        limits = JointLimits(*self._pan_limits, *self._tilt_limits)
        return ideal_model(self.camera.camera_name, *self._image_size, limits, *self._zoom_range)

    def _on_state(self, msg: PtzState) -> None:
        self._received.total += 1
        self.geometry.publish(conv.feedback_from_state(msg))

    def _on_reload(self, _request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        model, note = reload_calibration(self.get_parameter("calibration_url").value, self.camera.camera_name)
        response.success = model is not None
        if model is None:
            response.message = f"kept the previous {'model' if self.geometry.calibrated else 'ideal gimbal'}: {note}"
            self.get_logger().error(f"reload_calibration failed: {response.message}")
        else:
            self.geometry.set_model(model, True)
            self._calibration_note = note
            response.message = f"loaded {note}"
            self.get_logger().info(f"reload_calibration: {response.message}")
        return response

    def _on_diagnostics(self) -> None:
        stats = self.geometry.stats
        received = self._received.delta()
        published = self._published.delta(stats.published)
        dropped = self._dropped.delta(stats.invalid + stats.stale)
        problems: list[tuple[int, str]] = []
        if received == 0:
            problems.append((diag.WARN, "no PtzState received in the last second"))
        if dropped:
            problems.append((diag.WARN, f"{dropped} invalid or stale states dropped"))
            self.get_logger().warning(f"{dropped} invalid or stale PtzState samples in the last second not "
                                      f"published; last: {stats.last_problem}")
        if not self.geometry.calibrated:
            problems.append((diag.WARN, "uncalibrated: CameraInfo K = 0, TF from an ideal gimbal"))
        level, message = diag.worst(problems)
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.status = [diag.status(f"{self.get_fully_qualified_name()}: {self.camera.camera_name}",
                                  self.camera.camera_name, level, message, {
                                      "received rate (Hz)": float(received),
                                      "feedback rate (Hz)": float(published),
                                      "published samples": stats.published,
                                      "invalid samples": stats.invalid,
                                      "stale samples": stats.stale,
                                      "last rejected sample": stats.last_problem,
                                      "calibration loaded": self.geometry.calibrated,
                                      "calibration": self._calibration_note,
                                      "tf source": "calibrated model" if self.geometry.calibrated
                                      else "ideal gimbal (uncalibrated)",
                                  })]
        self._diag_pub.publish(msg)


def main(args: Optional[list[str]] = None) -> int:
    """Entry point ``ptz_geometry``."""
    rclpy.init(args=args)
    node = None
    try:
        node = PtzGeometryNode()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
