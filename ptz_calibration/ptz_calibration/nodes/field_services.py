"""Field services of ``ptz_driver``: landmarks, one-click recalibration, self-tests, drift monitoring.

``~/store_landmark`` (StoreLandmark), ``~/recalibrate`` (Recalibrate) and ``~/repeatability_test``
(RepeatabilityTest); an opt-in drift monitor; their results on ``/diagnostics`` (status
``<node>: <camera> field checks``). The maths is in :mod:`..calibration.landmarks`.

Motion: every landmark is approached from below on both axes by ``recalibration.approach`` rad
(as the calibration protocol does, so backlash is the same each time), then the node waits until
the feedback is at rest at the target, ``recalibration.settle_time`` s more, and takes the first
frame exposed after that. Only one field operation runs at a time (others are refused).

Repeatability test: look at the landmark (or the current view) at maximum zoom, approached from
below; capture; pan a full circle and back: a head with 360 deg of pan travel turns +360 deg then
-360 deg (in 120 deg steps); a head with less (the simulator: +-170 deg) goes to its lower end
of travel, then its upper end, then back to the start. Either way the return arrives from above,
so the backlash of pan is crossed: the measured offset includes it. The model's pointing map
(backlash by direction), when present, predicts that part (``expected_px``); the test passes when
the remainder ``|offset - expected|`` is below ``repeatability.threshold_px``.

Drift monitor (``drift_monitor.enabled``, default false): every ``drift_monitor.period`` s, when
the head has not moved for ``drift_monitor.idle_time`` s, the landmarks are re-observed (nothing is
written), the head is put back where it was, and the per-landmark offsets (px) are published, with
WARN "recalibration recommended" past ``drift_monitor.threshold_px``.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from ptz_calibration_msgs.srv import Recalibrate, RepeatabilityTest, StoreLandmark
from rclpy.node import Node

from ..calibration import landmarks as L
from ..corrections.apply import layers_of
from ..drivers import DriverError, PtzDriver
from ..drivers.interface import Frame, PtzFeedback
from ..model import ModelFileError
from . import diagnostics as diag
from .feedback_history import FeedbackHistory, FeedbackUnavailable
from .params import declare, positive
from .set_camera_info import default_model_file, writable_calibration_file


class FieldError(RuntimeError):
    """A field operation that cannot be done (the message says why); nothing was changed."""


@dataclass
class _Seen:
    frame: Frame
    feedback: PtzFeedback


class FieldServices:
    """The services and the monitor above, on ``node`` (a :class:`~.ptz_driver.PtzDriverNode`)."""

    def __init__(self, node: Node, group) -> None:
        self.node = node
        self.driver: PtzDriver = node.driver
        self.history: FeedbackHistory = node.history
        self.folder_param = declare(node, "landmarks.folder", "",
                                    "landmark set folder (empty = <calibration file stem>_landmarks next to "
                                    "the calibration file)")
        self.patch_size = int(declare(node, "landmarks.patch_size", 96, "landmark patch side (px)"))
        self.max_correction = declare(node, "recalibration.max_correction", math.radians(1.0),
                                      "largest head rotation ~/recalibrate corrects (rad); beyond: failure, "
                                      "nothing changed", **positive())
        self.approach = declare(node, "recalibration.approach", math.radians(1.0),
                                "landmarks are approached from below by this much on pan and tilt (rad)", **positive())
        self.settle_time = declare(node, "recalibration.settle_time", 0.3,
                                   "wait after the head stops before a landmark frame (s)", **positive())
        self.min_score = declare(node, "recalibration.min_score", 0.6,
                                 "lowest normalized correlation accepted for a landmark", **positive(1.0))
        self.move_timeout = declare(node, "recalibration.move_timeout", 30.0, "longest wait for one move (s)",
                                    **positive())
        self.threshold_px = declare(node, "repeatability.threshold_px", 2.0,
                                    "repeatability test passes below this offset (px)", **positive())
        self.rep_patch = int(declare(node, "repeatability.patch_size", 128, "repeatability patch side (px)"))
        self.rep_radius = declare(node, "repeatability.search_radius_px", 300.0,
                                  "repeatability: search radius in the second frame (px)", **positive())
        self.drift_enabled = declare(node, "drift_monitor.enabled", False, "re-observe landmarks when idle")
        self.drift_period = declare(node, "drift_monitor.period", 600.0, "drift check period (s)", **positive())
        self.drift_idle = declare(node, "drift_monitor.idle_time", 30.0,
                                  "the head must be at rest this long before a drift check (s)", **positive())
        self.drift_threshold = declare(node, "drift_monitor.threshold_px", 2.0,
                                       "drift past this landmark offset (px) recommends ~/recalibrate", **positive())
        self._busy = threading.Lock()
        self._values: dict[str, Any] = {}
        self._problems: dict[str, tuple[int, str]] = {}
        self._last_check = time.monotonic()
        node.create_service(StoreLandmark, "~/store_landmark", self._on_store, callback_group=group)
        node.create_service(Recalibrate, "~/recalibrate", self._on_recalibrate, callback_group=group)
        node.create_service(RepeatabilityTest, "~/repeatability_test", self._on_repeatability, callback_group=group)
        self._diag_pub = node.create_publisher(DiagnosticArray, "/diagnostics", 10)
        node.create_timer(1.0, self._on_timer, callback_group=group)

    # -- where things are ----------------------------------------------------------------------------

    def calibration_file(self) -> Optional[Path]:
        return writable_calibration_file(self.node.get_parameter("calibration_url").value,
                                         self.node.camera.camera_name)

    def folder(self) -> Path:
        if self.folder_param:
            return Path(self.folder_param).expanduser()
        path = self.calibration_file() or default_model_file(self.node.camera.camera_name)
        return path.with_name(f"{path.stem}_landmarks")

    def load_set(self) -> L.LandmarkSet:
        folder = self.folder()
        if not (folder / "landmarks.yaml").exists():
            return L.LandmarkSet((), self.node.camera.camera_name)
        return L.LandmarkSet.load(folder)

    # -- motion and frames ---------------------------------------------------------------------------

    def _rest(self, pan: float, tilt: float, zoom: float, since: float) -> Optional[PtzFeedback]:
        fb = self.history.latest()
        if fb is None or fb.stamp < since or fb.moving:
            return None
        tol = max(self.node.motion.angle_tolerance, 1e-4)
        ok = ((math.isnan(pan) or abs(fb.pan - pan) < tol) and (math.isnan(tilt) or abs(fb.tilt - tilt) < tol)
              and (math.isnan(zoom) or abs(fb.zoom_raw - zoom) < self.node.motion.zoom_tolerance))
        return fb if ok else None

    def _move(self, pan: float, tilt: float, zoom: float = math.nan, pan_speed: float = math.nan) -> float:
        """Move and wait until at rest at the target; returns the time it came to rest."""
        caps = self.driver.capabilities
        pan = min(max(pan, caps.pan_min), caps.pan_max) if math.isfinite(pan) else math.nan
        tilt = min(max(tilt, caps.tilt_min), caps.tilt_max) if math.isfinite(tilt) else math.nan
        start = time.time()
        self.driver.move_absolute(pan, tilt, zoom, pan_speed, math.nan)
        deadline = time.monotonic() + self.move_timeout
        time.sleep(0.05)
        while time.monotonic() < deadline:
            if self._rest(pan, tilt, zoom, start + 0.05) is not None:
                return time.time()
            time.sleep(0.02)
        raise FieldError(f"the head did not come to rest at pan {pan:.4f} tilt {tilt:.4f} rad zoom {zoom:g} "
                         f"within {self.move_timeout:g} s")

    def _goto(self, pan: float, tilt: float, zoom: float) -> None:
        """Approach (pan, tilt, zoom) from below on both axes (see the module docstring)."""
        caps = self.driver.capabilities
        below_p = max(pan - self.approach, caps.pan_min)
        below_t = max(tilt - self.approach, caps.tilt_min)
        self._move(below_p, below_t, zoom)
        self._move(pan, tilt, zoom)

    def _frame_after(self, t_rest: float) -> _Seen:
        """The first frame exposed ``settle_time`` after ``t_rest``, with the feedback at its stamp."""
        not_before = t_rest + self.settle_time
        deadline = time.monotonic() + 5.0
        while True:
            wait = not_before - time.time()
            if wait > 0:
                time.sleep(wait)
            frame = self.driver.capture()
            if frame.stamp >= not_before:
                break
            if time.monotonic() > deadline:
                raise FieldError("no frame exposed after the head settled")
            time.sleep(0.02)
        try:
            fb = self.history.at(frame.stamp, timeout=1.0)
        except FeedbackUnavailable as exc:
            raise FieldError(f"no feedback at the frame's exposure: {exc}") from None
        if fb.moving:
            raise FieldError("the head moved during the landmark frame")
        return _Seen(frame, fb)

    def _mean_state(self, seconds: float = 0.3) -> PtzFeedback:
        """The mean of the last ``seconds`` of feedback at rest (less encoder noise)."""
        latest = self.history.latest()
        if latest is None or time.time() - latest.stamp > 1.0:
            raise FieldError("no current feedback")
        samples = [s for s in self.history.since(latest.stamp - seconds)]
        if any(s.moving for s in samples):
            raise FieldError("the head is moving; store a landmark at rest (or with move = true)")
        from dataclasses import replace
        return replace(latest, pan=float(np.mean([s.pan for s in samples])),
                       tilt=float(np.mean([s.tilt for s in samples])),
                       zoom_raw=float(np.mean([s.zoom_raw for s in samples])))

    def _observe(self, lm: L.Landmark) -> L.Observation:
        self._goto(lm.pan, lm.tilt, lm.zoom_raw)
        seen = self._frame_after(time.time())
        model = self.node.geometry.model
        radius = L.search_radius_px(model, lm.zoom_raw, self.max_correction)
        try:
            px, score = L.register(lm.patch, seen.frame.image, lm.px, radius, self.min_score)
        except L.RegistrationError as exc:
            raise FieldError(f"landmark {lm.name} not found: {exc}") from None
        fb = seen.feedback
        return L.Observation(lm.name, float(px[0]), float(px[1]), score, fb.pan, fb.tilt, fb.zoom_raw, fb.temperature)

    def _exclusive(self, what: str) -> bool:
        if not self._busy.acquire(blocking=False):
            return False
        self._values["busy with"] = what
        return True

    def _release(self) -> None:
        self._values["busy with"] = ""
        self._busy.release()

    def _log(self, ok: bool, message: str) -> None:
        if ok:
            self.node.get_logger().info(message)
        else:
            self.node.get_logger().error(message)

    # -- ~/store_landmark ------------------------------------------------------------------------------

    def _on_store(self, req: StoreLandmark.Request, res: StoreLandmark.Response) -> StoreLandmark.Response:
        if not self._exclusive("store_landmark"):
            res.success, res.message = False, "refused: another field operation is running"
            return res
        try:
            res.success, res.message = True, self._store(req, res)
        except (FieldError, L.LandmarkError, DriverError, OSError) as exc:
            res.success, res.message = False, f"landmark not stored: {exc}"
        finally:
            self._release()
        self._log(res.success, f"~/store_landmark: {res.message}")
        return res

    def _store(self, req: StoreLandmark.Request, res: StoreLandmark.Response) -> str:
        if not self.node.geometry.calibrated:
            raise FieldError("the camera is uncalibrated: landmarks refer to a calibrated model")
        lset = self.load_set()
        name = req.name or lset.next_name()
        size = int(req.patch_size) if req.patch_size > 0 else self.patch_size
        if req.move:
            self._goto(float(req.pan), float(req.tilt), float(req.zoom_raw))
            time.sleep(max(self.settle_time, 0.3) + 0.05)  # the mean state below is of samples at rest
        state = self._mean_state()
        seen = self._frame_after(time.time() - self.settle_time)
        img = seen.frame.image
        model = self.node.geometry.model
        radius = int(L.search_radius_px(model, state.zoom_raw, self.max_correction))
        if req.u < 0 or req.v < 0:
            h, w = img.shape[:2]
            u, v, texture = L.pick_patch(img, size, radius, near=((w - 1) / 2, (h - 1) / 2), max_distance=0.35 * min(w, h))
        else:
            u, v, texture = float(req.u), float(req.v), float("nan")
        patch, u, v = L.cut_patch(img, u, v, size)
        field = layers_of(model).active("field")
        lm = L.Landmark(name, state.pan, state.tilt, state.zoom_raw, patch, u, v, seen.feedback.temperature,
                        seen.frame.stamp, self.approach if req.move else self.approach,
                        tuple(field.rotation_vector) if field is not None else (0.0, 0.0, 0.0))
        lset = lset.with_landmark(lm)
        folder = self.folder()
        lset.save(folder)
        res.name, res.u, res.v, res.texture, res.count, res.folder = name, u, v, texture, len(lset), str(folder)
        return (f"landmark {name} at pan {state.pan:.5f} tilt {state.tilt:.5f} rad zoom {state.zoom_raw:g}, "
                f"patch {size} px at ({u:.1f}, {v:.1f}); {len(lset)} landmark(s) in {folder}")

    # -- ~/recalibrate ---------------------------------------------------------------------------------

    def _on_recalibrate(self, req: Recalibrate.Request, res: Recalibrate.Response) -> Recalibrate.Response:
        t0 = time.monotonic()
        if not self._exclusive("recalibrate"):
            res.success, res.message = False, "refused: another field operation is running"
            return res
        try:
            res.success, res.message = True, self._recalibrate(req, res)
        except L.RecalibrationError as exc:
            res.success, res.message = False, f"calibration failure: {exc}"
            self._fill_offsets(res, exc.offsets)
            res.correction_angle, res.residual_px = exc.angle, exc.residual_px
        except (FieldError, L.LandmarkError, DriverError, ModelFileError, OSError) as exc:
            res.success, res.message = False, f"recalibration failed, nothing changed: {exc}"
        finally:
            self._release()
        res.duration = time.monotonic() - t0
        self._values["recalibration"] = res.message
        self._values["recalibration duration (s)"] = res.duration
        if res.success:
            self._problems.pop("recalibrate", None)
            self._problems.pop("drift", None)
        else:
            self._problems["recalibrate"] = (diag.WARN, "last ~/recalibrate failed")
        self._log(res.success, f"~/recalibrate: {res.message}")
        return res

    @staticmethod
    def _fill_offsets(res: Recalibrate.Response, offsets) -> None:
        res.names = [o.name for o in offsets]
        res.offset_x_px = [float(o.dx) for o in offsets]
        res.offset_y_px = [float(o.dy) for o in offsets]
        res.score = [float(o.score) for o in offsets]
        res.residual_px_each = [float(o.residual_px) for o in offsets]

    def _selected(self, names) -> list[L.Landmark]:
        lset = self.load_set()
        if not len(lset):
            raise FieldError(f"no landmarks in {self.folder()} (store some with ~/store_landmark)")
        return [lset.get(n) for n in names] if names else list(lset.landmarks)

    def _recalibrate(self, req: Recalibrate.Request, res: Recalibrate.Response) -> str:
        node = self.node
        if not node.geometry.calibrated:
            raise FieldError("the camera is uncalibrated")
        path = self.calibration_file()
        if path is None and not req.dry_run:
            raise FieldError(f"calibration_url {node.get_parameter('calibration_url').value!r} is not a writable file")
        landmarks = self._selected(list(req.landmarks))
        t0 = time.monotonic()
        observations = [self._observe(lm) for lm in landmarks]
        per = (time.monotonic() - t0) / len(landmarks)
        with node._calibration_lock:
            if req.dry_run:
                result = L.recalibrate(node.geometry.model, landmarks, observations, self.max_correction)
                new, backup = None, None
            else:
                result, new, backup = L.recalibrate_file(path, landmarks, observations, self.max_correction)
                node.geometry.set_model(new, True)
                node._calibration_note = f"{path} (field layer {math.degrees(result.correction.angle):.3f} deg)"
        self._fill_offsets(res, result.offsets)
        res.correction_angle = result.angle
        res.rotation_vector = [float(x) for x in result.correction.rotation_vector]
        res.residual_px = result.residual_px
        res.model_file = "" if new is None else str(path)
        res.backup_file = "" if backup is None else str(backup)
        what = "measured (dry run, nothing written)" if req.dry_run else f"written to {path}"
        return (f"head rotation {math.degrees(result.angle):.4f} deg from {len(landmarks)} landmark(s) "
                f"(residual {result.residual_px:.3f} px, {per:.2f} s per landmark); field layer now "
                f"{math.degrees(result.correction.angle):.4f} deg, {what}")

    # -- ~/repeatability_test --------------------------------------------------------------------------

    def _on_repeatability(self, req: RepeatabilityTest.Request,
                          res: RepeatabilityTest.Response) -> RepeatabilityTest.Response:
        t0 = time.monotonic()
        res.threshold_px = float(self.threshold_px)
        if not self._exclusive("repeatability_test"):
            res.success, res.message = False, "refused: another field operation is running"
            return res
        try:
            res.message = self._repeatability(req, res)
            res.success = True
        except (FieldError, L.LandmarkError, DriverError) as exc:
            res.success, res.passed, res.message = False, False, f"repeatability test could not run: {exc}"
        finally:
            self._release()
        res.duration = time.monotonic() - t0
        self._values.update({"repeatability": res.message, "repeatability offset (px)": res.offset_px,
                             "repeatability residual (px)": res.residual_px,
                             "repeatability passed": bool(res.success and res.passed)})
        if res.success and not res.passed:
            self._problems["repeatability"] = (diag.WARN, f"repeatability test failed: {res.residual_px:.2f} px "
                                               f">= {res.threshold_px:g} px")
        elif res.success:
            self._problems.pop("repeatability", None)
        self._publish()
        self._log(res.success, f"~/repeatability_test: {res.message}")
        return res

    def _repeatability(self, req: RepeatabilityTest.Request, res: RepeatabilityTest.Response) -> str:
        caps = self.driver.capabilities
        zoom = float(req.zoom_raw) if req.zoom_raw >= 0 else float(caps.zoom_max)
        centre = None
        if req.landmark:
            lm = self.load_set().get(req.landmark)
            pan, tilt = lm.pan, lm.tilt
        else:
            state = self._mean_state()
            pan, tilt = state.pan, state.tilt
        self._goto(pan, tilt, zoom)
        a = self._frame_after(time.time())
        speed = float(caps.max_pan_speed) if caps.max_pan_speed > 0 else math.nan
        if caps.pan_max - caps.pan_min >= 2 * math.pi - 1e-6:
            for step in (1, 1, 1, -1, -1, -1):  # +360 then -360 deg in 120 deg steps
                self.driver.move_relative(step * 2 * math.pi / 3, math.nan, math.nan, speed, math.nan)
                time.sleep(0.1)
                self._wait_rest()
            t_rest = time.time()
        else:
            self._move(caps.pan_min, tilt, zoom, speed)
            self._move(caps.pan_max, tilt, zoom, speed)
            t_rest = self._move(pan, tilt, zoom, speed)
        b = self._frame_after(t_rest)
        r = L.repeatability(a.frame.image, b.frame.image, centre, self.rep_patch, self.rep_radius, self.min_score)
        model = self.node.geometry.model
        fa = a.feedback
        expected = L.expected_shift_px(model, (r.u, r.v), fa.pan, fa.tilt, fa.zoom_raw, fa.temperature, (1, 1), (-1, 1))
        residual = math.hypot(r.dx - expected[0], r.dy - expected[1])
        res.offset_px, res.offset_x_px, res.offset_y_px = r.offset_px, r.dx, r.dy
        res.expected_px = float(np.hypot(*expected))
        res.residual_px, res.score, res.zoom_raw = residual, r.score, zoom
        res.passed = residual < self.threshold_px
        return (f"{'PASSED' if res.passed else 'FAILED'}: offset {r.offset_px:.2f} px ({r.dx:+.2f}, {r.dy:+.2f}) after "
                f"a full pan circle and back at zoom {zoom:g}; the pointing map predicts {res.expected_px:.2f} px, "
                f"residual {residual:.2f} px (threshold {self.threshold_px:g} px)")

    def _wait_rest(self) -> None:
        deadline = time.monotonic() + self.move_timeout
        while time.monotonic() < deadline:
            fb = self.history.latest()
            if fb is not None and not fb.moving and time.time() - fb.stamp < 0.5:
                return
            time.sleep(0.02)
        raise FieldError("the head did not come to rest")

    # -- drift monitor and diagnostics -----------------------------------------------------------------

    def _idle_for(self) -> float:
        latest = self.history.latest()
        if latest is None:
            return 0.0
        samples = self.history.since(latest.stamp - self.drift_idle)
        if not samples or any(s.moving for s in samples):
            return 0.0
        span = max(max(s.pan for s in samples) - min(s.pan for s in samples),
                   max(s.tilt for s in samples) - min(s.tilt for s in samples))
        return latest.stamp - samples[0].stamp if span < 1e-3 else 0.0

    def _on_timer(self) -> None:
        if self.drift_enabled and time.monotonic() - self._last_check >= self.drift_period \
                and self._idle_for() >= 0.9 * self.drift_idle and self.node.geometry.calibrated:
            self._last_check = time.monotonic()
            self.check_drift()
        self._publish()

    def check_drift(self) -> Optional[list[L.LandmarkOffset]]:
        """Re-observe every landmark (nothing written), put the head back, report the offsets."""
        if not self._exclusive("drift check"):
            return None
        try:
            back = self._mean_state()
            landmarks = self._selected([])
            obs = [self._observe(lm) for lm in landmarks]
            offsets = L.measure_offsets(landmarks, obs)
            self._goto(back.pan, back.tilt, back.zoom_raw)
        except (FieldError, L.LandmarkError, DriverError) as exc:
            self._values["drift check"] = f"failed: {exc}"
            return None
        finally:
            self._release()
        worst = max(o.offset_px for o in offsets)
        self._values["drift check"] = time.strftime("%Y-%m-%d %H:%M:%S")
        self._values["drift max offset (px)"] = worst
        for o in offsets:
            self._values[f"drift {o.name} (px)"] = o.offset_px
        if worst > self.drift_threshold:
            self._problems["drift"] = (diag.WARN, f"landmarks drifted up to {worst:.2f} px (> "
                                       f"{self.drift_threshold:g} px): recalibration recommended (~/recalibrate)")
        else:
            self._problems.pop("drift", None)
        return offsets

    def _publish(self) -> None:
        node = self.node
        level, message = diag.worst(list(self._problems.values()))
        values = {"landmarks folder": str(self.folder()), "drift monitor": self.drift_enabled, **self._values}
        msg = DiagnosticArray()
        msg.header.stamp = node.get_clock().now().to_msg()
        msg.status = [diag.status(f"{node.get_fully_qualified_name()}: {node.camera.camera_name} field checks",
                                  node.camera.camera_name, level, message, values)]
        self._diag_pub.publish(msg)
