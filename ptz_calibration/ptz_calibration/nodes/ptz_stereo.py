"""The ``ptz_stereo`` node: two PTZ cameras (two ``ptz_driver`` nodes) as one calibrated stereo rig.

* ``~/extrinsics`` (``StereoExtrinsics``): left optical -> right optical from the rig calibration
  and both cameras' feedback, each interpolated at the SAME stamp (the latest both histories
  serve, :func:`~ptz_calibration.stereo.common_stamp`); never the newest sample of one camera
  paired with the newest of the other. Published on every new common stamp (``publish_rate`` 0)
  or at ``publish_rate``; when the feedback stops or grows older than ``max_state_age`` a message
  with ``valid: false`` and the reason is published once a second.
* ``/tf_static``: ``left_mount -> right_mount`` from the rig calibration (one latched message), so
  that a TF lookup between the two optical frames equals ``~/extrinsics``. The right driver must
  then not publish its own ``parent -> right_mount`` (its ``publish_mount_tf: false``; the node
  reports a second parent of the right mount as an error in its diagnostics).
* ``~/localize`` (``srv/Localize``): one pixel pair at a stamp -> a point with covariance in any
  frame of the rig (optical, mount, parent). The covariance: pixel noise plus, with
  ``model_uncertainty``, the rig file's uncertainty through the extrinsics at the current settings
  (:mod:`..model.rig_uncertainty`; ~2 ms per request or array) and, outside the left optical frame,
  the left head's pointing error.
* ``~/pixel_pairs`` (``PixelPairArray``) -> ``~/points`` (``PointStamped``), ``~/points_with_covariance``
  (``PoseWithCovarianceStamped``: orientation identity with variance
  :data:`~.stereo_geometry.ORIENTATION_VARIANCE_UNKNOWN`, i.e. meaningless), one message per
  localized pair, and ``~/localized`` (``LocalizedPointArray``, every pair with its status, ids
  kept). Pairs newer than the feedback wait for it (up to ``max_state_age``).
* ``~/sync_capture`` (``srv/SyncCapture``): one image of each camera through both drivers'
  ``~/capture``: hardware-triggered at the same time (``trigger_lead`` ahead) or, in software
  mode, both newest stream frames at once; refused when the exposure times differ by more than
  ``max_skew``. The driver calls are asynchronous: their answers arrive on a helper node spun by
  its own thread while the service callback waits on an event (so this node itself runs in a
  SingleThreadedExecutor, as :func:`main` does).
* ``~/markers`` (``MarkerArray``): both cameras' frustums at their current zoom, the baseline and
  the recently localized points; ``/diagnostics``.
* ``~/reload_calibration`` (``std_srvs/Trigger``): load the ``rig_file`` parameter's file again
  (set the parameter first to switch files), as the drivers' service of the same name: on any
  error the previous rig stays in use and the answer says why. A new rig re-sends the mount
  transform on ``/tf_static`` and drops the feedback kept so far (it was corrected by the previous
  model's correction layers); ~/extrinsics resumes with the next samples of both cameras.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Point, PointStamped, PoseWithCovarianceStamped
from ptz_calibration_msgs.msg import (
    LocalizedPoint,
    LocalizedPointArray,
    PixelPairArray,
    PtzState,
    StereoExtrinsics,
)
from ptz_calibration_msgs.srv import Capture, Localize, SyncCapture
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_srvs.srv import Trigger
from tf2_msgs.msg import TFMessage
from visualization_msgs.msg import MarkerArray

from ..fileio import FileFieldError
from ..corrections import DirectionTracker
from ..corrections.apply import corrected_angles, layers_of
from ..model import ModelFileError, matrix_to_quaternion
from ..model.rig_uncertainty import pointing_covariance
from ..model.stereo_rig import StereoRigModel, load_rig_model
from ..stereo import (
    PtzSample,
    StateHistory,
    StateOutOfRange,
    TriangulationError,
    common_stamp,
    localize,
    triangulate,
)
from . import conversions as conv
from . import diagnostics as diag
from . import stereo_markers as markers
from .calibration import resolve_url
from .params import declare, positive
from .runner import run_node
from .stereo_geometry import (
    FrameUnavailable,
    StereoFrames,
    Transform,
    from_left_optical,
    pose_covariance,
    tf_from_extrinsics,
    transform_covariances,
    transform_points,
)
from .tf_broadcaster import for_node

STATE_QOS = QoSProfile(depth=100)
#: /tf_static as tf2_ros's static listener reads it: transient local with a deep history (each
#: broadcaster latches one message; with depth 1 a late reader would keep only one of them)
TF_STATIC_LISTENER_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                                    durability=DurabilityPolicy.TRANSIENT_LOCAL)
TRUE_RIG_WARNING = "using the simulator's true rig, not a calibration"
NO_TRIGGER = "no hardware trigger"  # how ptz_driver's ~/capture refuses a trigger it cannot serve


@dataclass(frozen=True)
class StereoState:
    """Both cameras' states at one stamp and the extrinsics there."""

    stamp: float
    left: PtzSample
    right: PtzSample
    R: np.ndarray  # OpenCV convention: X_right_optical = R X_left_optical + t
    t: np.ndarray
    left_newest: float  # stamps of each camera's newest sample when computed
    right_newest: float


@dataclass
class _CameraFeed:
    """One camera's feedback as the node receives it."""

    name: str
    history: StateHistory
    last_wall: float = math.nan
    # directions of the last motions, for the backlash term of the model's pointing map (the same
    # tracking as the driver's, on the same feedback stream, so TF and ~/extrinsics agree)
    pan_direction: DirectionTracker = field(default_factory=DirectionTracker)
    tilt_direction: DirectionTracker = field(default_factory=DirectionTracker)


@dataclass
class _Pending:
    """Pixel pairs waiting for feedback at their stamp."""

    stamp: float
    frame_stamp: Time
    ids: list[int]
    left_px: np.ndarray
    right_px: np.ndarray
    deadline: float


class StereoRigUnavailable(RuntimeError):
    """The rig calibration could not be loaded (the message says why)."""


def load_stereo_rig(rig_file: str) -> tuple[StereoRigModel, str, bool]:
    """(rig, description, is_simulator_truth) of the ``rig_file`` parameter ('' = the simulator's
    true rig of the package's default simulated rig)."""
    if not rig_file.strip():
        from ..simulation import load_rig
        from ..simulation.rig import true_stereo_rig

        sim = load_rig()
        return true_stereo_rig(sim), f"simulator truth of {sim.source}", True
    try:
        path = resolve_url(rig_file)
        return load_rig_model(path), str(path), False
    except (FileFieldError, ModelFileError, OSError, ValueError) as exc:
        raise StereoRigUnavailable(f"rig_file {rig_file!r}: {exc}") from None


class PtzStereoNode(Node):
    """See the module docstring."""

    def __init__(self, node_name: str = "ptz_stereo", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        rig_file = declare(self, "rig_file", "",
                           "stereo rig YAML (model.stereo_rig format; package://, file:// or a path); '' = the "
                           "simulator's ground truth of the package's default simulated rig (may be changed "
                           "at run time; ~/reload_calibration then loads it)", read_only=False)
        left_topic = declare(self, "left_state_topic", "left/ptz_driver/ptz_state", "PtzState of the left camera")
        right_topic = declare(self, "right_state_topic", "right/ptz_driver/ptz_state", "PtzState of the right camera")
        left_capture = declare(self, "left_capture_service", "left/ptz_driver/capture",
                               "~/capture service of the left driver")
        right_capture = declare(self, "right_capture_service", "right/ptz_driver/capture",
                                "~/capture service of the right driver")
        self.frames = StereoFrames(
            parent=declare(self, "parent_frame", "rig", "parent frame of the left mount (the left driver's "
                           "parent_frame)"),
            left_mount=declare(self, "left_mount_frame", "left_mount", "mount frame of the left camera"),
            right_mount=declare(self, "right_mount_frame", "right_mount", "mount frame of the right camera"),
            left_optical=declare(self, "left_optical_frame", "left_optical_frame", "optical frame of the left camera"),
            right_optical=declare(self, "right_optical_frame", "right_optical_frame",
                                  "optical frame of the right camera"))
        self.publish_rate = declare(self, "publish_rate", 0.0,
                                    "~/extrinsics rate (Hz); 0 = on every new common stamp of the feedback")
        self.max_state_age = declare(self, "max_state_age", 0.5,
                                     "s: feedback older than this (vs now) makes ~/extrinsics invalid and "
                                     "~/localize at the latest stamp fail", **positive())
        horizon = declare(self, "state_horizon", 5.0, "s of feedback kept per camera (oldest stamp localizable)",
                          **positive())
        max_gap = declare(self, "state_max_gap", 0.25, "s: no interpolation between samples further apart",
                          **positive())
        max_extrapolation = declare(self, "state_max_extrapolation", 0.02,
                                    "s: a stamp up to this much past a camera's newest sample gets that sample")
        smoothing = declare(self, "state_smoothing_window", 0.0,
                            "s: average each camera's encoder steps over this window while it moves, carried "
                            "by the reported velocities (0 = plain interpolation, as the drivers' TF; > 0 makes "
                            "~/extrinsics and ~/localize more accurate than a TF lookup while the heads move)")
        self.pixel_sigma = declare(self, "pixel_sigma", 0.5, "px, default std of a pixel coordinate (covariances)",
                                   **positive())
        self.model_uncertainty = declare(self, "model_uncertainty", True,
                                         "add the rig model's uncertainty (its file's 'uncertainty': home transform, "
                                         "heads' pointing, zoom translation) to the pixel noise in the covariances")
        self.default_max_skew = declare(self, "default_max_skew", 0.01,
                                        "s, ~/sync_capture: largest exposure time difference accepted by default",
                                        **positive())
        self.trigger_lead = declare(self, "trigger_lead", 0.1,
                                    "s, ~/sync_capture hardware mode: trigger time ahead of the request", **positive())
        self.capture_timeout = declare(self, "capture_timeout", 5.0,
                                       "s to wait for the drivers' ~/capture answers", **positive())
        self.points_frame = declare(self, "points_frame", "",
                                    "frame of ~/points, ~/points_with_covariance, ~/localized ('' = the left "
                                    "optical frame; also the right optical, either mount or the parent frame)")
        self.marker_rate = declare(self, "marker_rate", 5.0, "~/markers rate (Hz); 0 = no markers")
        self.frustum_length = declare(self, "frustum_length", 3.0, "m, length of the frustum markers",
                                      **positive())
        self.marker_points = declare(self, "marker_points", 200, "localized points kept in ~/markers")

        self.rig: Optional[StereoRigModel] = None
        self.rig_note = ""
        self.rig_is_truth = False
        try:
            self.rig, self.rig_note, self.rig_is_truth = load_stereo_rig(rig_file)
        except StereoRigUnavailable as exc:
            self.rig_note = str(exc)
            self.get_logger().error(f"no stereo calibration, nothing will be computed: {exc}")
        if self.rig_is_truth:
            self.get_logger().warning(f"rig_file is empty: {TRUE_RIG_WARNING} ({self.rig_note})")

        self._lock = threading.Lock()
        self._left = _CameraFeed("left", StateHistory(horizon, max_gap, max_extrapolation, smoothing))
        self._right = _CameraFeed("right", StateHistory(horizon, max_gap, max_extrapolation, smoothing))
        self._latest: Optional[StereoState] = None  # of the last published valid ~/extrinsics
        self._last_valid_wall = -math.inf
        self._published = diag.Counter()
        self._invalid_published = diag.Counter()
        self._pending: list[_Pending] = []
        self._points_marker: deque = deque(maxlen=max(int(self.marker_points), 1))
        self._parent_from_left_mount: Optional[Transform] = None
        self._right_mount_parents: set[str] = set()
        self._localize_ok = diag.Counter()
        self._localize_failed = diag.Counter()
        self._pairs_ok = diag.Counter()
        self._pairs_failed = diag.Counter()
        self._syncs_ok = diag.Counter()
        self._syncs_refused = diag.Counter()
        self._last_problem = ""
        self._last_skew = math.nan
        self._last_diag = time.monotonic()

        self._state_group = MutuallyExclusiveCallbackGroup()
        self._pixel_group = MutuallyExclusiveCallbackGroup()
        self._service_group = ReentrantCallbackGroup()
        self._sync_group = MutuallyExclusiveCallbackGroup()
        self._client_group = ReentrantCallbackGroup()

        self._extrinsics_pub = self.create_publisher(StereoExtrinsics, "~/extrinsics", 10)
        self._points_pub = self.create_publisher(PointStamped, "~/points", 100)
        self._points_cov_pub = self.create_publisher(PoseWithCovarianceStamped, "~/points_with_covariance", 100)
        self._localized_pub = self.create_publisher(LocalizedPointArray, "~/localized", 10)
        self._markers_pub = self.create_publisher(MarkerArray, "~/markers", 1)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        _, self._tf_static = for_node(self)
        self._send_mount_transform()

        self.create_subscription(PtzState, left_topic, lambda m: self._on_state(self._left, m), STATE_QOS,
                                 callback_group=self._state_group)
        self.create_subscription(PtzState, right_topic, lambda m: self._on_state(self._right, m), STATE_QOS,
                                 callback_group=self._state_group)
        self.create_subscription(TFMessage, "/tf_static", self._on_tf_static, TF_STATIC_LISTENER_QOS,
                                 callback_group=self._service_group)
        self.create_subscription(PixelPairArray, "~/pixel_pairs", self._on_pixel_pairs, 100,
                                 callback_group=self._pixel_group)
        self.create_service(Localize, "~/localize", self._on_localize, callback_group=self._service_group)
        self.create_service(SyncCapture, "~/sync_capture", self._on_sync_capture, callback_group=self._sync_group)
        self.create_service(Trigger, "~/reload_calibration", self._on_reload, callback_group=self._service_group)
        # The drivers' ~/capture clients live on a helper node spun by its own executor thread: the
        # ~/sync_capture callback waits for their answers (so this node also runs in a
        # SingleThreadedExecutor), and rclpy's MultiThreadedExecutor busy-spins with clients in it
        # (measured: two drivers and this node in one 4-thread executor got 11 Hz of feedback at
        # 100 % CPU; with the clients apart, 50 Hz at 46 %)
        self._client_node = Node(f"{self.get_name()}_capture_client", namespace=self.get_namespace(),
                                 context=self.context, start_parameter_services=False)
        self._client_executor = SingleThreadedExecutor(context=self.context)
        self._client_executor.add_node(self._client_node)
        self._client_thread = threading.Thread(target=self._spin_clients, daemon=True)
        self._client_thread.start()
        self._left_capture = self._client_node.create_client(Capture, left_capture)
        self._right_capture = self._client_node.create_client(Capture, right_capture)

        if self.publish_rate > 0:
            self.create_timer(1.0 / self.publish_rate, self._publish_latest, callback_group=self._state_group)
        self.create_timer(1.0, self._on_watchdog, callback_group=self._state_group)
        if self.marker_rate > 0:
            self.create_timer(1.0 / self.marker_rate, self._on_markers, callback_group=self._service_group)
        self.create_timer(1.0, self._on_diagnostics, callback_group=self._service_group)
        self.get_logger().info(
            f"stereo rig {self.rig_note}; feedback {left_topic} + {right_topic}; ~/extrinsics "
            + ("on every new common stamp" if self.publish_rate <= 0 else f"at {self.publish_rate:g} Hz"))

    # -- calibration ------------------------------------------------------------------------------

    def _send_mount_transform(self) -> None:
        """``left_mount -> right_mount`` of the rig on ``/tf_static`` (nothing without a rig)."""
        if self.rig is not None:
            r, t = self.rig.left_mount_from_right_mount()
            self._tf_static.send([conv.transform_stamped(self.frames.left_mount, self.frames.right_mount, r, t,
                                                         time.time())])

    def _on_reload(self, _request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        try:
            rig, note, is_truth = load_stereo_rig(self.get_parameter("rig_file").value)
        except StereoRigUnavailable as exc:
            response.success = False
            response.message = (f"kept the previous rig ({self.rig_note}): {exc}" if self.rig is not None
                                else f"still no stereo calibration: {exc}")
            self._last_problem = f"reload_calibration: {response.message}"
            self.get_logger().error(f"reload_calibration failed: {response.message}")
            return response
        with self._lock:
            self.rig, self.rig_note, self.rig_is_truth = rig, note, is_truth
            self._left.history.clear()
            self._right.history.clear()
            self._latest = None
        self._send_mount_transform()
        response.success = True
        response.message = f"loaded {note}" + (f" ({TRUE_RIG_WARNING})" if is_truth else "")
        self.get_logger().info(f"reload_calibration: {response.message}")
        return response

    # -- feedback and ~/extrinsics ----------------------------------------------------------------

    def _on_state(self, feed: _CameraFeed, msg: PtzState) -> None:
        pan, tilt = float(msg.pan), float(msg.tilt)
        pan_dir = feed.pan_direction.update(pan, float(msg.pan_velocity))
        tilt_dir = feed.tilt_direction.update(tilt, float(msg.tilt_velocity))
        temperature = math.nan
        rig = self.rig
        if rig is not None:  # the model's correction layers: actual joint angles, temperature
            model = rig.left if feed.name == "left" else rig.right
            pan, tilt = corrected_angles(model, pan, tilt, pan_dir, tilt_dir)
            if layers_of(model).active("thermal") is not None:
                temperature = float(msg.temperature)
        sample = PtzSample(conv.from_time(msg.header.stamp), pan, tilt, float(msg.zoom_raw), temperature,
                           float(msg.pan_velocity), float(msg.tilt_velocity))
        with self._lock:
            if not feed.history.add(sample):
                self._last_problem = f"{feed.name}: sample at {sample.stamp:.6f} rejected (not finite or not newer)"
                return
            feed.last_wall = time.monotonic()
        if self.publish_rate <= 0:
            self._publish_latest()
        if self._pending:
            self._flush_pending()

    def state_at(self, stamp: float) -> StereoState:
        """Both states at ``stamp`` and the extrinsics there; StateOutOfRange names the camera."""
        if self.rig is None:
            raise StateOutOfRange(f"no stereo calibration: {self.rig_note}")
        with self._lock:
            left, right = self._left.history, self._right.history
            try:
                a = left.at(stamp)
            except StateOutOfRange as exc:
                raise StateOutOfRange(f"left camera: {exc}") from None
            try:
                b = right.at(stamp)
            except StateOutOfRange as exc:
                raise StateOutOfRange(f"right camera: {exc}") from None
            left_newest, right_newest = left.newest.stamp, right.newest.stamp
        r, t = self.rig.extrinsics(a.setting, b.setting)
        return StereoState(stamp, a, b, np.asarray(r), np.asarray(t), left_newest, right_newest)

    def latest_common_stamp(self) -> float:
        """The latest stamp both cameras' feedback can serve (StateOutOfRange when none)."""
        with self._lock:
            try:
                return common_stamp(self._left.history, self._right.history)
            except StateOutOfRange:
                missing = [f.name for f in (self._left, self._right) if f.history.newest is None]
                if missing:
                    raise StateOutOfRange(f"no feedback yet from the {' and '.join(missing)} camera") from None
                raise

    def _publish_latest(self) -> None:
        """Publish ~/extrinsics at the latest common stamp if it is newer than the last one."""
        if self.rig is None:
            return
        try:
            stamp = self.latest_common_stamp()
        except StateOutOfRange:
            return  # the watchdog reports it
        latest = self._latest
        if latest is not None and stamp <= latest.stamp:
            return
        try:
            state = self.state_at(stamp)
        except StateOutOfRange as exc:
            self._last_problem = str(exc)
            return
        age = time.time() - stamp
        if age > self.max_state_age:
            return  # the watchdog reports it
        self._latest = state
        self._last_valid_wall = time.monotonic()
        self._extrinsics_pub.publish(self._extrinsics_msg(state, stamp, True, "ok",
                                                          (state.left_newest, state.right_newest)))
        self._published.total += 1

    def _extrinsics_msg(self, state: Optional[StereoState], stamp: float, valid: bool, status: str,
                        newest: tuple[float, float]) -> StereoExtrinsics:
        """The message of ``state`` (None: identity) at ``stamp``; ``newest`` = each camera's
        newest sample stamp (NaN: none)."""
        msg = StereoExtrinsics()
        conv.fill_time(msg.header.stamp, stamp)
        msg.header.frame_id = self.frames.left_optical
        msg.child_frame_id = self.frames.right_optical
        msg.valid, msg.status = valid, status
        if state is not None:
            r, t = tf_from_extrinsics(state.R, state.t)
            q = matrix_to_quaternion(r)
            tr, rot = msg.left_to_right.translation, msg.left_to_right.rotation
            tr.x, tr.y, tr.z = (float(v) for v in t)
            rot.x, rot.y, rot.z, rot.w = (float(v) for v in q)
            msg.baseline = float(np.linalg.norm(t))
        else:
            msg.left_to_right.rotation.w = 1.0
        for which, sample_stamp in zip(("left", "right"), newest):
            if math.isfinite(sample_stamp):
                conv.fill_time(getattr(msg, f"{which}_state_stamp"), sample_stamp)
            setattr(msg, f"{which}_state_age", float(sample_stamp - stamp))
        return msg

    def _newest_stamps(self) -> tuple[float, float]:
        with self._lock:
            return tuple(f.history.newest.stamp if f.history.newest is not None else math.nan
                         for f in (self._left, self._right))

    def _on_watchdog(self) -> None:
        """Once a second: an invalid ~/extrinsics with the reason when none was valid lately."""
        if time.monotonic() - self._last_valid_wall <= max(self.max_state_age, 1.0):
            return
        status = self._why_not_valid()
        self._extrinsics_pub.publish(self._extrinsics_msg(self._latest, time.time(), False, status,
                                                          self._newest_stamps()))
        self._invalid_published.total += 1

    def _why_not_valid(self) -> str:
        if self.rig is None:
            return f"no stereo calibration: {self.rig_note}"
        try:
            stamp = self.latest_common_stamp()
        except StateOutOfRange as exc:
            return str(exc)
        now = time.time()
        with self._lock:
            ages = {f.name: now - f.history.newest.stamp for f in (self._left, self._right)}
        stale = [f"{name} {age:.3f} s" for name, age in ages.items() if age > self.max_state_age]
        return (f"stale feedback: newest sample {', '.join(stale) or 'of both'} old, common stamp "
                f"{now - stamp:.3f} s old (max_state_age {self.max_state_age:g} s)")

    # -- points ---------------------------------------------------------------------------------------

    def _frame_transform(self, frame_id: str, state: StereoState) -> Transform:
        return from_left_optical(self.rig, self.frames, frame_id, state.left.setting, state.right.setting,
                                 self._parent_from_left_mount)

    def _on_localize(self, request: Localize.Request, response: Localize.Response) -> Localize.Response:
        try:
            self._localize(request, response)
            response.success = True
            self._localize_ok.total += 1
        except (StateOutOfRange, TriangulationError, FrameUnavailable, ValueError) as exc:
            response.success = False
            response.message = f"localize failed: {exc}"
            self._localize_failed.total += 1
            self._last_problem = response.message
            self.get_logger().warning(f"~/localize: {response.message}")
        return response

    def _localize(self, request: Localize.Request, response: Localize.Response) -> None:
        sigma = float(request.pixel_sigma) or self.pixel_sigma
        if not (math.isfinite(sigma) and sigma > 0):
            raise ValueError(f"pixel_sigma must be > 0, got {request.pixel_sigma}")
        pixels = [request.left_u, request.left_v, request.right_u, request.right_v]
        if not all(math.isfinite(v) for v in pixels):
            raise ValueError(f"pixels must be finite, got left ({pixels[0]}, {pixels[1]}) right ({pixels[2]}, "
                             f"{pixels[3]})")
        stamp = conv.from_time(request.stamp)
        if stamp == 0.0:
            stamp = self.latest_common_stamp()
            age = time.time() - stamp
            if age > self.max_state_age:
                raise StateOutOfRange(f"the latest feedback of both cameras is {age:.3f} s old "
                                      f"(max_state_age {self.max_state_age:g} s): {self._why_not_valid()}")
        state = self.state_at(stamp)
        frame_id = request.frame_id or self.frames.left_optical
        tf = self._frame_transform(frame_id, state)  # before the maths: a bad frame fails fast
        loc = localize(self.rig, state.left.setting, state.right.setting, np.array(pixels[:2]),
                       np.array(pixels[2:]), pixel_sigma=sigma, extrinsics_cov=self._extrinsics_cov(state))
        point = transform_points(tf, loc.point)
        cov = transform_covariances(tf, loc.covariance + self._left_pointing_cov(frame_id, state, loc.point)[0])
        response.point.header.frame_id = frame_id
        conv.fill_time(response.point.header.stamp, stamp)
        response.point.point = Point(x=float(point[0]), y=float(point[1]), z=float(point[2]))
        response.covariance = [float(v) for v in cov.reshape(9)]
        response.left_reprojection_error = float(loc.reprojection_error_px[0])
        response.right_reprojection_error = float(loc.reprojection_error_px[1])
        response.ray_distance = float(loc.ray_distance)
        sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
        response.message = (f"point ({point[0]:.4f}, {point[1]:.4f}, {point[2]:.4f}) m in {frame_id}, std "
                            f"({sd[0]:.4f}, {sd[1]:.4f}, {sd[2]:.4f}) m, range {np.linalg.norm(loc.point):.3f} m, "
                            f"reprojection {loc.reprojection_error_px[0]:.3f} / {loc.reprojection_error_px[1]:.3f} px, "
                            f"ray distance {loc.ray_distance * 1e3:.2f} mm")
        self._remember_points(state, loc.point[None])

    def _on_pixel_pairs(self, msg: PixelPairArray) -> None:
        default = conv.from_time(msg.header.stamp)
        groups: dict[float, list] = {}
        for pair in msg.pairs:
            own = conv.from_time(pair.header.stamp)
            groups.setdefault(own if own != 0.0 else default, []).append(pair)
        deadline = time.monotonic() + self.max_state_age
        for stamp, pairs in groups.items():
            item = _Pending(stamp, conv.to_time(stamp), [int(p.id) for p in pairs],
                            np.array([[p.left_u, p.left_v] for p in pairs], float).reshape(-1, 2),
                            np.array([[p.right_u, p.right_v] for p in pairs], float).reshape(-1, 2), deadline)
            if not self._ready(item.stamp):
                with self._lock:
                    self._pending.append(item)
                continue
            self._localize_group(item)

    def _ready(self, stamp: float) -> bool:
        """Whether both cameras' feedback reaches ``stamp`` (else the pairs wait for it)."""
        try:
            return self.latest_common_stamp() >= stamp
        except StateOutOfRange:
            return False

    def _flush_pending(self) -> None:
        now = time.monotonic()
        with self._lock:
            pending, self._pending = self._pending, []
        keep = []
        for item in pending:
            if self._ready(item.stamp) or now > item.deadline:
                self._localize_group(item)
            else:
                keep.append(item)
        if keep:
            with self._lock:
                self._pending = keep + self._pending

    def _extrinsics_cov(self, state: StereoState) -> Optional[np.ndarray]:
        """The extrinsics' covariance at the state's settings from the rig's uncertainty (None: not wanted
        or not known)."""
        if not self.model_uncertainty or self.rig is None or self.rig.uncertainty is None:
            return None
        return self.rig.extrinsics_covariance(state.left.setting, state.right.setting)

    def _left_pointing_cov(self, frame_id: str, state: StereoState, points: np.ndarray) -> np.ndarray:
        """In a frame other than the left optical one, the points also move with the left head's
        pointing error (:func:`..model.rig_uncertainty.pointing_covariance`); 0 otherwise."""
        u = self.rig.uncertainty if self.rig is not None else None
        if not self.model_uncertainty or u is None or u.pointing_sigma == 0 or frame_id == self.frames.left_optical:
            return np.zeros((1, 3, 3))
        x = np.nan_to_num(np.asarray(points, dtype=float).reshape(-1, 3))
        return pointing_covariance(self.rig.left, state.left.setting, x, u.pointing_sigma)

    def _localize_group(self, item: _Pending) -> None:
        """Localize pixel pairs of one stamp; publish the points and the array with every status."""
        frame_id = self.points_frame or self.frames.left_optical
        out = LocalizedPointArray()
        out.header.stamp = item.frame_stamp
        out.header.frame_id = frame_id
        n = len(item.ids)
        try:
            state = self.state_at(item.stamp)
            tf = self._frame_transform(frame_id, state)
            batch = triangulate(self.rig, state.left.setting, state.right.setting, item.left_px, item.right_px,
                                pixel_sigma=self.pixel_sigma, extrinsics_cov=self._extrinsics_cov(state))
        except (StateOutOfRange, FrameUnavailable, ValueError) as exc:
            reason = f"not localized: {exc}"
            out.points = [_failed(i, reason) for i in item.ids]
            self._pairs_failed.total += n
            self._last_problem = reason
            self._localized_pub.publish(out)
            return
        points = transform_points(tf, batch.points)
        covs = transform_covariances(tf, batch.covariances + self._left_pointing_cov(frame_id, state, batch.points))
        for k, pid in enumerate(item.ids):
            if not batch.valid[k]:
                out.points.append(_failed(pid, batch.reasons[k] or "not localized"))
                continue
            p, c = points[k], covs[k]
            lp = LocalizedPoint(id=pid, valid=True, status="ok",
                                point=Point(x=float(p[0]), y=float(p[1]), z=float(p[2])),
                                covariance=[float(v) for v in c.reshape(9)],
                                left_reprojection_error=float(batch.reprojection_error_px[k, 0]),
                                right_reprojection_error=float(batch.reprojection_error_px[k, 1]),
                                ray_distance=float(batch.ray_distance[k]), ray_angle=float(batch.ray_angle[k]))
            out.points.append(lp)
            stamped = PointStamped()
            stamped.header = out.header
            stamped.point = lp.point
            self._points_pub.publish(stamped)
            pose = PoseWithCovarianceStamped()
            pose.header = out.header
            pose.pose.pose.position = lp.point
            pose.pose.pose.orientation.w = 1.0
            pose.pose.covariance = pose_covariance(c)
            self._points_cov_pub.publish(pose)
        valid = int(np.count_nonzero(batch.valid))
        self._pairs_ok.total += valid
        self._pairs_failed.total += n - valid
        self._localized_pub.publish(out)
        self._remember_points(state, batch.points[batch.valid])

    def _remember_points(self, state: StereoState, points_left_optical: np.ndarray) -> None:
        """Keep localized points for ~/markers, in the left mount frame (fixed to the rig)."""
        if self.marker_rate <= 0 or len(points_left_optical) == 0:
            return
        tf = self._frame_transform(self.frames.left_mount, state)
        for p in transform_points(tf, points_left_optical):
            self._points_marker.append(p)

    # -- /tf_static -------------------------------------------------------------------------------------

    def _on_tf_static(self, msg: TFMessage) -> None:
        for tf in msg.transforms:
            if tf.child_frame_id == self.frames.left_mount and tf.header.frame_id == self.frames.parent:
                self._parent_from_left_mount = conv.transform_to_matrix(tf)
            elif tf.child_frame_id == self.frames.right_mount and tf.header.frame_id != self.frames.left_mount:
                if tf.header.frame_id not in self._right_mount_parents:
                    self.get_logger().error(
                        f"{tf.header.frame_id} -> {self.frames.right_mount} on /tf_static: the right mount has two "
                        f"parents in TF; set publish_mount_tf: false on the right driver")
                self._right_mount_parents.add(tf.header.frame_id)

    def _spin_clients(self) -> None:
        try:
            self._client_executor.spin()
        except (ExternalShutdownException, RuntimeError):
            pass

    def destroy_node(self) -> None:
        self._client_executor.shutdown(timeout_sec=1.0)
        self._client_thread.join(timeout=2.0)
        self._client_node.destroy_node()
        super().destroy_node()

    # -- ~/sync_capture ---------------------------------------------------------------------------------

    def _call_both(self, trigger_time: float, include_images: bool) -> tuple[list, list[str]]:
        """Call both drivers' ~/capture at once; ([left, right] responses or None, [problems])."""
        clients = (("left", self._left_capture), ("right", self._right_capture))
        problems = []
        for name, client in clients:
            if not client.wait_for_service(timeout_sec=min(self.capture_timeout, 2.0)):
                problems.append(f"the {name} driver's ~/capture ({client.srv_name}) is not available")
        if problems:
            return [None, None], problems
        request = Capture.Request(trigger_time=float(trigger_time), include_image=bool(include_images))
        futures = [client.call_async(request) for _, client in clients]
        events = []
        for future in futures:
            event = threading.Event()
            future.add_done_callback(lambda _f, e=event: e.set())
            events.append(event)
        deadline = time.monotonic() + self.capture_timeout + max(0.0, trigger_time - time.time())
        answers = []
        for (name, client), future, event in zip(clients, futures, events):
            if not event.wait(max(0.0, deadline - time.monotonic())) or future.result() is None:
                client.remove_pending_request(future)
                problems.append(f"no answer from the {name} driver's ~/capture in {self.capture_timeout:g} s")
                answers.append(None)
                continue
            answer = future.result()
            if not answer.success:
                problems.append(f"{name}: {answer.message}")
            answers.append(answer)
        return answers, problems

    def _on_sync_capture(self, request: SyncCapture.Request, response: SyncCapture.Response) -> SyncCapture.Response:
        max_skew = float(request.max_skew) if request.max_skew > 0 else self.default_max_skew
        notes = []
        mode = "software"
        answers: list = [None, None]
        problems: list[str] = []
        if request.hardware_trigger:
            trigger_time = time.time() + self.trigger_lead
            answers, problems = self._call_both(trigger_time, request.include_images)
            if not problems:
                mode = "hardware"
            elif any(NO_TRIGGER in p for p in problems):
                notes.append(f"software mode: {'; '.join(p for p in problems if NO_TRIGGER in p)}")
                problems = []
            else:
                return self._sync_failed(response, "hardware", "; ".join(problems))
        if mode == "software":
            answers, problems = self._call_both(0.0, request.include_images)
            if problems:
                return self._sync_failed(response, mode, "; ".join(problems))
        left, right = answers
        skew = float(right.exposure_time - left.exposure_time)
        self._last_skew = skew
        response.skew, response.mode = skew, mode
        response.left_state, response.right_state = left.state, right.state
        response.left_camera_info, response.right_camera_info = left.camera_info, right.camera_info
        summary = (f"{mode} capture, skew {skew * 1e3:.3f} ms (right - left exposure), left exposed at "
                   f"{left.exposure_time:.6f}")
        if not math.isfinite(skew) or abs(skew) > max_skew:
            return self._sync_failed(response, mode, f"refused: skew {skew * 1e3:.3f} ms exceeds max_skew "
                                                     f"{max_skew * 1e3:.3f} ms ({summary})")
        response.left_image, response.right_image = left.image, right.image
        response.success = True
        response.message = "; ".join([summary] + notes)
        self._syncs_ok.total += 1
        return response

    def _sync_failed(self, response: SyncCapture.Response, mode: str, message: str) -> SyncCapture.Response:
        response.success = False
        response.mode = mode
        response.message = f"sync_capture failed: {message}" if not message.startswith("refused") \
            else f"sync_capture {message}"
        if response.skew == 0.0 and not message.startswith("refused"):
            response.skew = math.nan
        self._syncs_refused.total += 1
        self._last_problem = response.message
        self.get_logger().warning(f"~/sync_capture: {response.message}")
        return response

    # -- markers, diagnostics -----------------------------------------------------------------------

    def _on_markers(self) -> None:
        state = self._latest
        if state is None or self.rig is None:
            return
        msg = markers.stereo_markers(self.rig, self.frames, state.stamp, state.left.zoom, state.right.zoom,
                                     tf_from_extrinsics(state.R, state.t)[1], self.frustum_length,
                                     list(self._points_marker))
        self._markers_pub.publish(msg)

    def _on_diagnostics(self) -> None:
        now_mono = time.monotonic()
        period = max(now_mono - self._last_diag, 1e-3)
        self._last_diag = now_mono
        now = time.time()
        problems: list[tuple[int, str]] = []
        values: dict = {"calibration": f"{TRUE_RIG_WARNING} ({self.rig_note})" if self.rig_is_truth
                        else self.rig_note}
        if self.rig is None:
            problems.append((diag.ERROR, f"no stereo calibration: {self.rig_note}"))
        elif self.rig_is_truth:
            problems.append((diag.WARN, TRUE_RIG_WARNING))
        with self._lock:
            feeds = [(f, f.history.newest, f.history.rejected, len(f.history), f.history.rate())
                     for f in (self._left, self._right)]
        for feed, newest, rejected, kept, rate in feeds:
            age = now - newest.stamp if newest is not None else math.inf
            values.update({f"{feed.name} feedback rate (Hz)": rate, f"{feed.name} state age (s)": age,
                           f"{feed.name} rejected samples": rejected, f"{feed.name} samples kept": kept})
            if newest is None:
                problems.append((diag.ERROR, f"no feedback from the {feed.name} camera"))
            elif age > self.max_state_age:
                problems.append((diag.ERROR, f"{feed.name} feedback {age:.2f} s old"))
        if self._right_mount_parents:
            problems.append((diag.ERROR, f"{self.frames.right_mount} has another parent on /tf_static "
                                         f"({', '.join(sorted(self._right_mount_parents))}): set publish_mount_tf: "
                                         "false on the right driver"))
        latest = self._latest
        values.update({
            "extrinsics rate (Hz)": self._published.delta() / period,
            "extrinsics published": self._published.total,
            "invalid extrinsics published": self._invalid_published.total,
            "extrinsics stamp age (s)": now - latest.stamp if latest is not None else math.inf,
            "baseline (m)": float(np.linalg.norm(latest.t)) if latest is not None else math.nan,
            "localize ok": self._localize_ok.total,
            "localize failed": self._localize_failed.total,
            "pixel pairs localized": self._pairs_ok.total,
            "pixel pairs failed": self._pairs_failed.total,
            "pixel pairs waiting": len(self._pending),
            "sync captures": self._syncs_ok.total,
            "sync captures failed or refused": self._syncs_refused.total,
            "last sync skew (s)": self._last_skew,
            "parent -> left mount received": self._parent_from_left_mount is not None,
            "last problem": self._last_problem,
        })
        level, message = diag.worst(problems)
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.status = [diag.status(f"{self.get_fully_qualified_name()}: stereo", "stereo", level, message, values)]
        self._diag_pub.publish(msg)


def _failed(pid: int, reason: str) -> LocalizedPoint:
    nan = math.nan
    return LocalizedPoint(id=pid, valid=False, status=reason, point=Point(x=nan, y=nan, z=nan),
                          covariance=[nan] * 9, left_reprojection_error=nan, right_reprojection_error=nan,
                          ray_distance=nan, ray_angle=nan)


def main(args: Optional[list[str]] = None) -> int:
    """Entry point ``ptz_stereo``: a SingleThreadedExecutor (the drivers' ~/capture answers that
    ~/sync_capture waits for arrive on the node's own client thread)."""
    return run_node(PtzStereoNode, SingleThreadedExecutor, args)


if __name__ == "__main__":
    sys.exit(main())
