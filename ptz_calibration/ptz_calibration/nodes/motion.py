"""Motion commands of the driver node: ``~/cmd`` (PtzCommand) and the ``~/move_to`` action.

The checks and clamping are in :mod:`..drivers.command`; this module converts units (zoom
magnification to raw values with the model's zoom mapping), keeps the latest valid feedback for
the action, and makes the newest command win (a running goal is aborted as preempted).
"""

from __future__ import annotations

import math
import threading
import time
from typing import Callable, Optional

from ptz_calibration_msgs.action import MoveTo
from ptz_calibration_msgs.msg import PtzCommand, PtzState

from ..drivers.command import (
    AbsoluteMove,
    CommandError,
    plan_absolute,
    plan_relative,
    plan_velocity,
    remaining_angle,
    travel_time,
)
from ..drivers.interface import PtzDriver, PtzFeedback
from ..model import PtzCameraModel

ModelSource = Callable[[], tuple[PtzCameraModel, bool]]


def _opt(value: float) -> Optional[float]:
    return None if math.isnan(value) else value


class MotionController:
    """Executes commands on ``driver``; ``model_source()`` gives (model, calibrated) for zoom units."""

    def __init__(self, driver: PtzDriver, model_source: ModelSource, log: Callable[[str], None],
                 angle_tolerance: float = 2e-3, zoom_tolerance: float = 20.0, timeout_margin: float = 3.0) -> None:
        self._driver = driver
        self._model_source = model_source
        self._log = log
        self.angle_tolerance = angle_tolerance
        self.zoom_tolerance = zoom_tolerance
        self.timeout_margin = timeout_margin
        self._cond = threading.Condition()
        self._latest: Optional[PtzFeedback] = None
        self._seq = 0
        self._generation = 0

    # -- feedback -------------------------------------------------------------------------------

    def on_feedback(self, feedback: PtzFeedback) -> None:
        """Record a valid feedback sample (called by the state loop)."""
        with self._cond:
            self._latest = feedback
            self._seq += 1
            self._cond.notify_all()

    def _wait(self, after: int, timeout: float) -> Optional[tuple[int, PtzFeedback]]:
        with self._cond:
            if self._seq <= after:
                self._cond.wait(timeout)
            if self._seq > after and self._latest is not None:
                return self._seq, self._latest
        return None

    def _current(self) -> PtzFeedback:
        with self._cond:
            latest = self._latest
        return latest if latest is not None else self._driver.read_state()

    def _preempt(self) -> int:
        with self._cond:
            self._generation += 1
            return self._generation

    # -- zoom units -------------------------------------------------------------------------------

    def _zoom_raw(self, value: float, magnification: bool, relative: bool = False) -> float:
        """Raw zoom of an absolute (or relative) zoom command in raw units or magnification."""
        if math.isnan(value) or not magnification:
            return value
        model, calibrated = self._model_source()
        if not calibrated:
            raise CommandError("zoom given as magnification but the camera is uncalibrated (no zoom mapping)")
        mapping = model.zoom_mapping
        if relative:
            value = float(mapping.magnification(self._current().zoom_raw)) + value
        lo, hi = float(mapping.magnification(mapping.raw_min)), float(mapping.magnification(mapping.raw_max))
        if not lo <= value <= hi:
            self._log(f"zoom magnification {value:.6g} clamped to the lens range [{lo:.6g}, {hi:.6g}]")
        return float(mapping.raw(min(max(value, lo), hi)))

    def _zoom_rate_raw(self, rate: float, magnification: bool) -> float:
        """Raw zoom rate of a rate in raw units/s or magnification/s (slope at the current zoom)."""
        if math.isnan(rate) or not magnification or rate == 0.0:
            return rate
        model, calibrated = self._model_source()
        if not calibrated:
            raise CommandError("zoom rate given as magnification but the camera is uncalibrated (no zoom mapping)")
        m = model.zoom_mapping
        span = m.raw_max - m.raw_min
        if span <= 0:
            return 0.0
        z = self._current().zoom_raw
        h = span * 1e-3
        a, b = max(m.raw_min, z - h), min(m.raw_max, z + h)
        slope = (float(m.magnification(b)) - float(m.magnification(a))) / (b - a)
        return rate / slope

    # -- ~/cmd ----------------------------------------------------------------------------------

    def command(self, msg: PtzCommand) -> str:
        """Execute one ``PtzCommand``; returns a summary. Raises CommandError / DriverError."""
        caps = self._driver.capabilities
        mode = msg.mode
        self._preempt()
        if mode == PtzCommand.MODE_STOP:
            self._driver.stop()
            return "stop"
        if mode == PtzCommand.MODE_HOME:
            self._driver.home()
            return "home"
        if mode == PtzCommand.MODE_VELOCITY:
            move = plan_velocity(caps, msg.pan, msg.tilt, self._zoom_rate_raw(msg.zoom, msg.zoom_is_magnification),
                                 msg.duration)
            self._notes(move.notes)
            self._driver.move_velocity(move.pan_rate, move.tilt_rate, move.zoom_rate, move.duration)
            return f"velocity pan {move.pan_rate:.6g} tilt {move.tilt_rate:.6g} rad/s zoom {move.zoom_rate:.6g} raw/s"
        if mode == PtzCommand.MODE_ABSOLUTE:
            move = plan_absolute(caps, msg.pan, msg.tilt, self._zoom_raw(msg.zoom, msg.zoom_is_magnification),
                                 msg.pan_speed, msg.tilt_speed)
        elif mode == PtzCommand.MODE_RELATIVE:
            zoom = msg.zoom
            if msg.zoom_is_magnification:
                zoom = self._zoom_raw(msg.zoom, True, relative=True) - self._current().zoom_raw
            move = plan_relative(caps, self._current(), msg.pan, msg.tilt, zoom, msg.pan_speed, msg.tilt_speed)
        else:
            raise CommandError(f"unknown mode {mode}")
        self._notes(move.notes)
        self._start(move)
        return f"move to pan {move.pan:.6g} tilt {move.tilt:.6g} rad zoom {move.zoom_raw:.6g} raw"

    def _notes(self, notes: tuple[str, ...]) -> None:
        for note in notes:
            self._log(note)

    def _start(self, move: AbsoluteMove) -> None:
        self._driver.move_absolute(move.pan, move.tilt, _opt(move.zoom_raw), move.pan_speed, move.tilt_speed)

    # -- ~/move_to ------------------------------------------------------------------------------

    def execute(self, goal_handle, to_state: Callable[[PtzFeedback], PtzState]) -> MoveTo.Result:
        """Run a ``MoveTo`` goal to the end (success, abort, cancel); blocks the calling thread."""
        goal = goal_handle.request
        generation = self._preempt()
        result = MoveTo.Result()
        try:
            move = plan_absolute(self._driver.capabilities, goal.pan, goal.tilt,
                                 self._zoom_raw(goal.zoom, goal.zoom_is_magnification), goal.pan_speed, goal.tilt_speed)
            self._notes(move.notes)
            start = self._current()
            self._start(move)
        except Exception as exc:  # CommandError, DriverError: the goal cannot start
            goal_handle.abort()
            result.message = f"refused: {exc}"
            return result
        tol = goal.angle_tolerance if goal.angle_tolerance > 0 else self.angle_tolerance
        ztol = goal.zoom_tolerance if goal.zoom_tolerance > 0 else self.zoom_tolerance
        timeout = goal.timeout if goal.timeout > 0 else \
            1.5 * travel_time(self._driver.capabilities, start, move) + self.timeout_margin
        deadline = time.monotonic() + timeout
        feedback = MoveTo.Feedback()
        with self._cond:
            seq = self._seq
        last: Optional[PtzFeedback] = None
        remaining, zoom_error = math.inf, math.inf
        while True:
            if goal_handle.is_cancel_requested:
                self._driver.stop()
                goal_handle.canceled()
                result.message = "canceled: the head was stopped"
                break
            if self._generation != generation:
                goal_handle.abort()
                result.message = "preempted by a newer command"
                break
            got = self._wait(seq, 0.1)
            if got is not None:
                seq, last = got
                remaining = remaining_angle(last, move.pan, move.tilt)
                zoom_error = 0.0 if math.isnan(move.zoom_raw) else abs(last.zoom_raw - move.zoom_raw)
                feedback.state = to_state(last)
                feedback.remaining_angle = remaining
                goal_handle.publish_feedback(feedback)
                if remaining <= tol and zoom_error <= ztol and not last.moving:
                    goal_handle.succeed()
                    result.success = True
                    result.message = f"arrived: {remaining:.3g} rad and {zoom_error:.3g} raw from the goal"
                    break
            if time.monotonic() > deadline:
                self._driver.stop()
                goal_handle.abort()
                result.message = (f"timeout after {timeout:.2f} s: {remaining:.4g} rad and {zoom_error:.4g} raw "
                                  f"still to go (tolerances {tol:.3g} rad, {ztol:.3g} raw); the head was stopped")
                break
        if last is not None:
            result.final_state = to_state(last)
        return result
