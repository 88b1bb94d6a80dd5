"""The ``ptz_driver`` node: one PTZ camera through a :class:`PtzDriver` backend.

Publishes ``~/ptz_state``, ``~/joint_states``, ``~/camera_info``, ``~/image_raw``, ``/tf``,
``/tf_static`` and ``/diagnostics``; subscribes ``~/cmd``; serves the ``~/move_to`` action,
``~/capture`` (one image with the head's state and CameraInfo at its exposure, optionally
hardware-triggered), ``~/set_camera_info`` (a single-zoom calibration from ROS's
camera_calibration, applied at the current zoom: see :mod:`.set_camera_info`) and
``~/reload_calibration``, and the field services of :mod:`.field_services` (``~/store_landmark``,
``~/recalibrate``, ``~/repeatability_test``, opt-in drift monitoring). State publishing, image capture and commands run in separate callback
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
import threading
import time
from typing import Optional

from diagnostic_msgs.msg import DiagnosticArray
from ptz_calibration_msgs.action import MoveTo
from ptz_calibration_msgs.msg import PtzCommand, PtzState
from ptz_calibration_msgs.srv import Capture
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import Image
from sensor_msgs.srv import SetCameraInfo
from std_srvs.srv import Trigger

from ..drivers import DriverConnectionError, DriverError, PtzDriver, backend_settings, create_driver
from ..drivers.command import CommandError
from ..drivers.interface import Frame, PtzFeedback
from ..model import JointLimits, PtzCameraModel
from . import conversions as conv
from . import diagnostics as diag
from .calibration import ideal_model, reload_calibration, start_calibration
from .feedback_history import FeedbackHistory, FeedbackUnavailable
from .field_services import FieldServices
from .geometry_publisher import GeometryPublisher
from .runner import run_node
from .motion import MotionController
from .params import declare, declare_camera_params, positive
from .set_camera_info import (
    CameraInfoRejected,
    default_model_file,
    describe,
    intrinsics_from_camera_info,
    single_zoom_model,
    store,
    with_intrinsics_at,
    writable_calibration_file,
)


class CaptureRefused(RuntimeError):
    """A ~/capture request that cannot be served (the message says why)."""


class PtzDriverNode(Node):
    """See the module docstring. ``driver`` overrides the ``backend`` parameter (tests, embedding)."""

    def __init__(self, node_name: str = "ptz_driver", *, driver: Optional[PtzDriver] = None, **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self.camera = declare_camera_params(self)
        backend = declare(self, "backend", "sim", "driver backend: sim, mock, visca, pelco_d or onvif")
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
        publish_mount_tf = declare(self, "publish_mount_tf", True,
                                   "publish the static parent_frame -> mount transform on /tf_static (false when "
                                   "another node places the mount, e.g. ptz_stereo for the right camera)")
        self.reconnect_interval = declare(self, "reconnect_interval", 2.0,
                                          "seconds before the first reconnection attempt after a lost link; "
                                          "doubles after each failed attempt up to reconnect_max_interval",
                                          **positive())
        self.reconnect_max_interval = declare(self, "reconnect_max_interval", 30.0,
                                              "longest wait between reconnection attempts (s)", **positive())
        self._reconnect_wait = self.reconnect_interval
        angle_tol = declare(self, "move.angle_tolerance", 2e-3, "default ~/move_to angle tolerance (rad)",
                            **positive())
        zoom_tol = declare(self, "move.zoom_tolerance", 20.0, "default ~/move_to zoom tolerance (raw)", **positive())
        margin = declare(self, "move.timeout_margin", 3.0,
                         "default ~/move_to timeout = 1.5 x estimated travel time + this (s)", **positive())
        self.max_trigger_delay = declare(self, "capture.max_trigger_delay", 10.0,
                                         "~/capture: latest trigger_time accepted, seconds ahead of now",
                                         **positive())
        self.feedback_timeout = declare(self, "capture.feedback_timeout", 1.0,
                                        "~/capture: how long to wait for feedback past the exposure (s)",
                                        **positive())

        self.driver = driver if driver is not None else create_driver(backend, settings)
        self._connect_error = ""
        self._last_connect_try = -math.inf
        self._reconnects = 0
        self._try_connect()
        # valid samples of the last seconds: the head's state at an exposure (~/capture), the zoom
        # of ~/set_camera_info; two samples further apart than this do not bracket an exposure
        self.history = FeedbackHistory(5.0, max(self.camera.stale_timeout, 3.0 / state_rate))
        self._calibration_lock = threading.Lock()

        model, calibrated, self._calibration_note = self._initial_model()
        self.geometry = GeometryPublisher(
            self, self.camera.camera_name, self.camera.frames, model, calibrated,
            mount_xyz=self.camera.mount_xyz, mount_rpy=self.camera.mount_rpy,
            stale_timeout=self.camera.stale_timeout, publish_mount_tf=publish_mount_tf)
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
        self._captures_served = 0
        self._last_driver_error = ""
        self._last_valid_wall = math.nan

        self.create_timer(1.0 / state_rate, self._on_state_timer, callback_group=self._state_group)
        self.create_subscription(PtzCommand, "~/cmd", self._on_cmd, 10, callback_group=self._command_group)
        self._action = ActionServer(self, MoveTo, "~/move_to", execute_callback=self._execute_move,
                                    goal_callback=lambda _goal: GoalResponse.ACCEPT,
                                    cancel_callback=lambda _goal: CancelResponse.ACCEPT,
                                    callback_group=self._command_group)
        self.create_service(Trigger, "~/reload_calibration", self._on_reload, callback_group=self._command_group)
        self.create_service(SetCameraInfo, "~/set_camera_info", self._on_set_camera_info,
                            callback_group=self._command_group)
        self.create_service(Capture, "~/capture", self._on_capture, callback_group=self._command_group)
        # ~/store_landmark, ~/recalibrate, ~/repeatability_test, drift monitor (see .field_services)
        self.field = FieldServices(self, self._command_group)
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
            # back-off: a device that stays away is not hammered (and the log stays quiet)
            self._reconnect_wait = min(2.0 * self._reconnect_wait, max(self.reconnect_max_interval,
                                                                        self.reconnect_interval))
            return False
        self._reconnect_wait = self.reconnect_interval
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
        with self._calibration_lock:
            return self._reload(response)

    def _reload(self, response: Trigger.Response) -> Trigger.Response:
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
            if time.monotonic() - self._last_connect_try >= self._reconnect_wait and self._try_connect() \
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
            self.history.add(feedback)
            self.motion.on_feedback(feedback)

    def _on_image_timer(self) -> None:
        if not self.driver.connected:
            return
        try:
            if not self.driver.capabilities.can_capture:
                # a PTZ head without a camera stream (e.g. Pelco-D, ONVIF PTZ only): images come
                # from another driver; nothing to capture, nothing to count as an error
                return
        except DriverError:
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

    # -- ~/set_camera_info ------------------------------------------------------------------------

    def _device_size(self) -> tuple[int, int]:
        """The image size of the device (or of the model when the device does not say)."""
        try:
            caps = self.driver.capabilities
            if caps.image_width > 0 and caps.image_height > 0:
                return caps.image_width, caps.image_height
        except DriverError:
            pass
        model = self.geometry.model
        return model.image_width, model.image_height

    def _on_set_camera_info(self, request: SetCameraInfo.Request,
                            response: SetCameraInfo.Response) -> SetCameraInfo.Response:
        with self._calibration_lock:
            response.success, response.status_message = self._set_camera_info(request.camera_info)
        if response.success:
            self.get_logger().info(f"~/set_camera_info: {response.status_message}")
        else:
            self.get_logger().error(f"~/set_camera_info: {response.status_message}")
        return response

    def _set_camera_info(self, msg) -> tuple[bool, str]:
        """Store a single-zoom calibration at the current zoom (see :mod:`.set_camera_info`)."""
        camera = self.camera.camera_name
        try:
            K, D = intrinsics_from_camera_info(msg, *self._device_size())
        except CameraInfoRejected as exc:
            return False, f"refused, nothing changed: {exc}"
        latest = self.history.latest()
        if latest is None or time.time() - latest.stamp > self.camera.stale_timeout:
            return False, "refused, nothing changed: no current feedback, so the zoom it applies to is unknown"
        zooms = [s.zoom_raw for s in self.history.since(latest.stamp - 0.5)]
        if max(zooms) - min(zooms) > self.motion.zoom_tolerance:
            return False, (f"refused, nothing changed: the zoom is changing ({min(zooms):g} to {max(zooms):g} raw "
                           "in the last 0.5 s); calibrate at a fixed zoom")
        zoom = latest.zoom_raw
        model, calibrated = self.geometry.model, self.geometry.calibrated
        try:
            new = with_intrinsics_at(model, zoom, K, D) if calibrated else single_zoom_model(self._ideal(), zoom, K, D)
        except (ValueError, RuntimeError) as exc:
            return False, f"refused, nothing changed: {exc}"
        url = self.get_parameter("calibration_url").value
        path = writable_calibration_file(url, camera)
        move_url = path is None
        if move_url:
            path = default_model_file(camera)
        try:
            info, backup, problem = store(new, path, zoom, camera)
        except OSError as exc:
            return False, f"cannot write {path}: {exc}; nothing changed"
        notes = [f"stored {describe(K, zoom)} in {path}",
                 f"previous file kept as {backup}" if backup else "no previous file",
                 problem or f"camera_info YAML {info}"]
        if move_url:
            new_url = f"file://{path}"
            result = self.set_parameters([Parameter("calibration_url", value=new_url)])[0]
            notes.append(f"calibration_url set to {new_url}" if result.successful
                         else f"calibration_url NOT changed ({result.reason})")
        self._check_model(new)
        self.geometry.set_model(new, True)
        self._calibration_note = str(path)
        return True, "; ".join(notes)

    # -- ~/capture ---------------------------------------------------------------------------------

    def _grab(self, trigger_time: float) -> Frame:
        """A frame of the stream now (``trigger_time`` 0) or triggered at ``trigger_time``."""
        if not self.driver.connected:
            raise CaptureRefused(f"backend disconnected: {self._connect_error or 'not connected'}")
        caps = self.driver.capabilities
        if not caps.can_capture:
            raise CaptureRefused(f"the {self.backend} backend cannot capture images")
        if trigger_time == 0.0:
            return self.driver.capture()
        if not math.isfinite(trigger_time) or trigger_time < 0:
            raise CaptureRefused(f"trigger_time must be 0 (now) or a time in seconds, got {trigger_time}")
        if not caps.has_hardware_trigger:
            raise CaptureRefused(f"the {self.backend} backend has no hardware trigger (use trigger_time 0)")
        ahead = trigger_time - time.time()
        if ahead < 0:
            raise CaptureRefused(f"trigger_time is {-ahead:.3f} s in the past")
        if ahead > self.max_trigger_delay:
            raise CaptureRefused(f"trigger_time is {ahead:.3f} s ahead (capture.max_trigger_delay "
                                 f"{self.max_trigger_delay:g} s)")
        try:
            return self.driver.trigger(trigger_time)
        except NotImplementedError as exc:
            raise CaptureRefused(str(exc)) from None

    def _on_capture(self, request: Capture.Request, response: Capture.Response) -> Capture.Response:
        optical = self.camera.frames.optical
        try:
            frame = self._grab(float(request.trigger_time))
            wait = self.feedback_timeout + max(0.0, frame.stamp - time.time())
            feedback = self.history.at(frame.stamp, timeout=wait)
        except (CaptureRefused, DriverError, FeedbackUnavailable) as exc:
            response.success = False
            response.message = f"capture failed: {exc}"
            self.get_logger().warning(f"~/capture: {response.message}")
            return response
        model, calibrated = self.geometry.model, self.geometry.calibrated
        width, height = self._device_size()
        if request.include_image:
            response.image = conv.image_msg(frame, optical)
        else:
            conv.fill_time(response.image.header.stamp, frame.stamp)
            response.image.header.frame_id = optical
        response.camera_info = conv.camera_info(model if calibrated else None, feedback.zoom_raw, frame.stamp,
                                                optical, width, height)
        response.state = self.state_message(feedback)
        response.exposure_time = float(frame.stamp)
        response.success = True
        response.message = (f"frame {frame.sequence}{' (triggered)' if request.trigger_time else ''} exposed at "
                            f"{frame.stamp:.6f}: pan {feedback.pan:.6f} tilt {feedback.tilt:.6f} rad, zoom "
                            f"{feedback.zoom_raw:g}{', moving' if feedback.moving else ''}")
        self._captures_served += 1
        return response

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
            "captures served (~/capture)": self._captures_served,
            "reconnects": self._reconnects,
            "next reconnect in (s)": (max(0.0, self._last_connect_try + self._reconnect_wait - now)
                                      if not connected else 0.0),
        }
        try:
            values.update({f"link: {key}": value for key, value in self.driver.link_statistics().items()})
        except Exception as exc:  # noqa: BLE001 - a diagnostics hook must never stop diagnostics
            values["link"] = f"statistics unavailable: {type(exc).__name__}"
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
