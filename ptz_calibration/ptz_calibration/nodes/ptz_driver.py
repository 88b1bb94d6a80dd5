"""The ``ptz_driver`` node: one PTZ camera through a :class:`PtzDriver` backend.

Publishes ``~/ptz_state``, ``~/joint_states``, ``~/camera_info``, ``~/image_raw``, ``/tf``,
``/tf_static`` and ``/diagnostics``; subscribes ``~/cmd``; serves the ``~/move_to`` action and
``~/reload_calibration``. State publishing, image capture and commands run in separate callback
groups so that a slow capture never delays a feedback sample (spin it with a
MultiThreadedExecutor, as :func:`main` does).

Uncalibrated operation (empty, missing or invalid ``calibration_url``): CameraInfo carries
K = P = 0 (the ROS convention for "uncalibrated"), the TF chain comes from an *ideal gimbal*
(axes through the optical centre, no offsets) with the device's ranges, PtzState has NaN
magnification, and diagnostics say WARN "uncalibrated: TF from an ideal gimbal".
"""

from __future__ import annotations

import math
import sys
import time
from typing import Optional

from diagnostic_msgs.msg import DiagnosticArray
from ptz_calibration_msgs.action import MoveTo
from ptz_calibration_msgs.msg import PtzCommand, PtzState
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger

from ..drivers import DriverConnectionError, DriverError, PtzDriver, backend_settings, create_driver
from ..drivers.command import CommandError
from ..drivers.interface import PtzFeedback
from ..model import JointLimits, PtzCameraModel
from . import conversions as conv
from . import diagnostics as diag
from .calibration import ideal_model, reload_calibration, start_calibration
from .geometry_publisher import GeometryPublisher
from .runner import run_node
from .motion import MotionController
from .params import declare, declare_camera_params, positive


class PtzDriverNode(Node):
    """See the module docstring. ``driver`` overrides the ``backend`` parameter (tests, embedding)."""

    def __init__(self, node_name: str = "ptz_driver", *, driver: Optional[PtzDriver] = None, **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self.camera = declare_camera_params(self)
        backend = declare(self, "backend", "sim", "driver backend (sim, mock; later visca, pelco_d, onvif)")
        settings = {"camera_name": self.camera.camera_name}
        if driver is None:
            for key, (default, description) in backend_settings(backend).items():
                settings[key] = declare(self, f"{backend}.{key}", default, description)
        self.backend = backend if driver is None else type(driver).__name__
        state_rate = declare(self, "state_rate", 50.0, "feedback sampling and publishing rate (Hz)", **positive(1000.0))
        self.publish_images = declare(self, "publish_images", True, "capture and publish ~/image_raw")
        image_rate = declare(self, "image_rate", 5.0, "image capture rate (Hz)", **positive(200.0))
        reliability = declare(self, "image_reliability", "best_effort",
                              "~/image_raw QoS reliability: best_effort (sensor data QoS) or reliable")
        self.reconnect_interval = declare(self, "reconnect_interval", 2.0,
                                          "seconds between reconnection attempts", **positive())
        angle_tol = declare(self, "move.angle_tolerance", 2e-3, "default ~/move_to angle tolerance (rad)",
                            **positive())
        zoom_tol = declare(self, "move.zoom_tolerance", 20.0, "default ~/move_to zoom tolerance (raw)", **positive())
        margin = declare(self, "move.timeout_margin", 3.0,
                         "default ~/move_to timeout = 1.5 x estimated travel time + this (s)", **positive())

        self.driver = driver if driver is not None else create_driver(backend, settings)
        self._connect_error = ""
        self._last_connect_try = -math.inf
        self._reconnects = 0
        self._try_connect()

        model, calibrated, self._calibration_note = self._initial_model()
        self.geometry = GeometryPublisher(
            self, self.camera.camera_name, self.camera.frames, model, calibrated,
            mount_xyz=self.camera.mount_xyz, mount_rpy=self.camera.mount_rpy,
            stale_timeout=self.camera.stale_timeout)
        self.motion = MotionController(self.driver, lambda: (self.geometry.model, self.geometry.calibrated),
                                       self.get_logger().warning, angle_tol, zoom_tol, margin)

        self._state_group = MutuallyExclusiveCallbackGroup()
        self._image_group = MutuallyExclusiveCallbackGroup()
        self._command_group = ReentrantCallbackGroup()
        self._reads = diag.Counter()
        self._read_errors = diag.Counter()
        self._published = diag.Counter()
        self._invalid = diag.Counter()
        self._stale = diag.Counter()
        self._images = diag.Counter()
        self._capture_errors = diag.Counter()
        self._last_driver_error = ""
        self._last_valid_wall = math.nan

        self.create_timer(1.0 / state_rate, self._on_state_timer, callback_group=self._state_group)
        self.create_subscription(PtzCommand, "~/cmd", self._on_cmd, 10, callback_group=self._command_group)
        self._action = ActionServer(self, MoveTo, "~/move_to", execute_callback=self._execute_move,
                                    goal_callback=lambda _goal: GoalResponse.ACCEPT,
                                    cancel_callback=lambda _goal: CancelResponse.ACCEPT,
                                    callback_group=self._command_group)
        self.create_service(Trigger, "~/reload_calibration", self._on_reload, callback_group=self._command_group)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._diag_period = 1.0
        self._last_diag = time.monotonic()
        self.create_timer(self._diag_period, self._on_diagnostics, callback_group=self._command_group)

        self._image_pub = None
        if self.publish_images:
            if reliability not in ("best_effort", "reliable"):
                self.get_logger().error(f"image_reliability {reliability!r} unknown; using best_effort")
                reliability = "best_effort"
            qos = qos_profile_sensor_data if reliability == "best_effort" else \
                QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
            self._image_pub = self.create_publisher(Image, "~/image_raw", qos)
            self.create_timer(1.0 / image_rate, self._on_image_timer, callback_group=self._image_group)
        self.get_logger().info(
            f"camera {self.camera.camera_name!r}, backend {self.backend}, {state_rate:g} Hz feedback, "
            f"{'calibrated' if calibrated else 'UNCALIBRATED'}: {self._calibration_note}")

    # -- connection and calibration -------------------------------------------------------------

    def _try_connect(self) -> bool:
        self._last_connect_try = time.monotonic()
        try:
            self.driver.connect()
        except DriverError as exc:
            if str(exc) != self._connect_error:
                self.get_logger().error(f"cannot connect to the PTZ device: {exc}")
            self._connect_error = str(exc)
            return False
        if self._connect_error:
            self._reconnects += 1
            self.get_logger().info("PTZ device connected")
        self._connect_error = ""
        return True

    def _ideal(self) -> PtzCameraModel:
        try:
            caps = self.driver.capabilities
            limits = JointLimits(caps.pan_min, caps.pan_max, caps.tilt_min, caps.tilt_max)
            return ideal_model(self.camera.camera_name, caps.image_width, caps.image_height, limits,
                               caps.zoom_min, caps.zoom_max)
        except DriverError:
            return ideal_model(self.camera.camera_name, 0, 0, JointLimits())

    def _initial_model(self) -> tuple[PtzCameraModel, bool, str]:
        model, calibrated, note = start_calibration(self.camera.calibration_url, self.camera.camera_name, self._ideal)
        if calibrated:
            self._check_model(model)
        elif self.camera.calibration_url.strip():
            self.get_logger().error(note)
        else:
            self.get_logger().warning(note)
        return model, calibrated, note

    def _check_model(self, model: PtzCameraModel) -> None:
        if model.camera_name != self.camera.camera_name:
            self.get_logger().warning(f"calibration file is for camera {model.camera_name!r}, this is "
                                      f"{self.camera.camera_name!r}; using it anyway")

    def _on_reload(self, _request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        model, note = reload_calibration(self.get_parameter("calibration_url").value, self.camera.camera_name)
        if model is None:
            response.success = False
            response.message = f"kept the previous {'model' if self.geometry.calibrated else 'ideal gimbal'}: {note}"
            self.get_logger().error(f"reload_calibration failed: {response.message}")
            return response
        self._check_model(model)
        self.geometry.set_model(model, True)
        self._calibration_note = note
        response.success = True
        response.message = f"loaded {note}"
        self.get_logger().info(f"reload_calibration: {response.message}")
        return response

    # -- state, images -----------------------------------------------------------------------------

    def _on_state_timer(self) -> None:
        if not self.driver.connected:
            if time.monotonic() - self._last_connect_try >= self.reconnect_interval and self._try_connect() \
                    and not self.geometry.calibrated:
                self.geometry.set_model(self._ideal(), False)
            return
        try:
            feedback = self.driver.read_state()
        except DriverError as exc:
            self._read_errors.total += 1
            self._last_driver_error = str(exc)
            if isinstance(exc, DriverConnectionError):
                self._connect_error = str(exc)
                self.driver.close()
            return
        self._reads.total += 1
        if self.geometry.publish(feedback):
            self._last_valid_wall = time.monotonic()
            self.motion.on_feedback(feedback)

    def _on_image_timer(self) -> None:
        if not self.driver.connected:
            return
        try:
            frame = self.driver.capture()
        except DriverError as exc:
            self._capture_errors.total += 1
            self._last_driver_error = f"capture: {exc}"
            return
        self._image_pub.publish(conv.image_msg(frame, self.camera.frames.optical))
        self._images.total += 1

    def state_message(self, feedback: PtzFeedback) -> PtzState:
        """A PtzState of ``feedback`` as published on ~/ptz_state."""
        geometry = self.geometry
        mag = float(geometry.model.zoom_mapping.magnification(feedback.zoom_raw)) if geometry.calibrated else math.nan
        return conv.ptz_state(feedback, self.camera.camera_name, self.camera.frames.mount, mag)

    # -- commands -----------------------------------------------------------------------------------

    def _on_cmd(self, msg: PtzCommand) -> None:
        try:
            summary = self.motion.command(msg)
        except CommandError as exc:
            self.get_logger().error(f"~/cmd refused: {exc}")
            return
        except DriverError as exc:
            self.get_logger().error(f"~/cmd failed in the driver: {exc}")
            return
        self.get_logger().debug(f"~/cmd: {summary}")

    def _execute_move(self, goal_handle) -> MoveTo.Result:
        result = self.motion.execute(goal_handle, self.state_message)
        if result.success:
            self.get_logger().info(f"~/move_to: {result.message}")
        else:
            self.get_logger().warning(f"~/move_to: {result.message}")
        return result

    # -- diagnostics ----------------------------------------------------------------------------------

    def _on_diagnostics(self) -> None:
        now = time.monotonic()
        period = max(now - self._last_diag, 1e-3)
        self._last_diag = now
        stats = self.geometry.stats
        published = self._published.delta(stats.published)
        invalid = self._invalid.delta(stats.invalid)
        stale = self._stale.delta(stats.stale)
        reads, read_errors = self._reads.delta(), self._read_errors.delta()
        images, capture_errors = self._images.delta(), self._capture_errors.delta()
        age = now - self._last_valid_wall if math.isfinite(self._last_valid_wall) else math.inf
        problems: list[tuple[int, str]] = []
        connected = self.driver.connected
        if not connected:
            problems.append((diag.ERROR, f"backend disconnected: {self._connect_error or 'not connected'}"))
        elif age > self.camera.stale_timeout:
            problems.append((diag.ERROR, "no valid feedback yet" if math.isinf(age)
                             else f"no valid feedback for {age:.2f} s"))
        if invalid or stale:
            problems.append((diag.WARN, f"{invalid} invalid and {stale} stale feedback samples dropped"))
            self.get_logger().warning(f"{invalid} invalid and {stale} stale feedback samples in the last "
                                      f"{period:.1f} s not published; last: {stats.last_problem}")
        if read_errors:
            problems.append((diag.WARN, f"{read_errors} failed feedback reads"))
        if capture_errors:
            problems.append((diag.WARN, f"{capture_errors} failed captures"))
        if not self.geometry.calibrated:
            problems.append((diag.WARN, "uncalibrated: CameraInfo K = 0, TF from an ideal gimbal"))
        level, message = diag.worst(problems)
        values = {
            "backend": self.backend,
            "backend connected": connected,
            "feedback rate (Hz)": published / period,
            "read rate (Hz)": reads / period,
            "published samples": stats.published,
            "invalid samples": stats.invalid,
            "stale samples": stats.stale,
            "invalid samples (period)": invalid,
            "stale samples (period)": stale,
            "last rejected sample": stats.last_problem,
            "failed reads": self._read_errors.total,
            "last driver error": self._last_driver_error,
            "feedback age (s)": age,
            "calibration loaded": self.geometry.calibrated,
            "calibration": self._calibration_note,
            "tf source": "calibrated model" if self.geometry.calibrated else "ideal gimbal (uncalibrated)",
            "image rate (Hz)": images / period,
            "capture errors": self._capture_errors.total,
            "reconnects": self._reconnects,
        }
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.status = [diag.status(f"{self.get_fully_qualified_name()}: {self.camera.camera_name}",
                                  self.camera.camera_name, level, message, values)]
        self._diag_pub.publish(msg)

    def destroy_node(self) -> None:
        self._action.destroy()
        try:
            self.driver.close()
        except DriverError:
            pass
        super().destroy_node()


def main(args: Optional[list[str]] = None) -> int:
    """Entry point ``ptz_driver``: one camera, spun by a 4-thread MultiThreadedExecutor."""
    return run_node(PtzDriverNode, lambda: MultiThreadedExecutor(num_threads=4), args)


if __name__ == "__main__":
    sys.exit(main())
