"""The ``mock`` backend: an ideal head that moves at constant speed, with injectable feedback.

No device, no rendering: for tests and for trying nodes without the simulator. Axes move
linearly towards their targets at the (requested or maximum) speed; time is the system clock.
:meth:`MockPtzDriver.inject` queues samples that :meth:`read_state` returns instead of the
true state (to exercise NaN, out-of-range, stale or error feedback).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import replace
from typing import Any, Callable, Mapping, Optional

import numpy as np

from .interface import DriverConnectionError, DriverError, Frame, PtzCapabilities, PtzDriver, PtzFeedback


class _Axis:
    """Position of one axis moving at constant speed towards a target, or at a constant rate."""

    def __init__(self, position: float, lo: float, hi: float, max_speed: float) -> None:
        self.lo, self.hi, self.max_speed = lo, hi, max_speed
        self.start, self.t0 = position, 0.0
        self.target: Optional[float] = None
        self.rate = 0.0
        self.until = math.inf

    def position(self, t: float) -> float:
        dt = max(0.0, min(t, self.until) - self.t0)
        if self.target is not None:
            step = self.rate * dt
            gap = self.target - self.start
            return self.target if abs(step) >= abs(gap) else self.start + math.copysign(step, gap)
        return min(max(self.start + self.rate * dt, self.lo), self.hi)

    def velocity(self, t: float) -> float:
        if t >= self.until:
            return 0.0
        if self.target is not None:
            gap = self.target - self.position(t)
            return 0.0 if gap == 0.0 else math.copysign(abs(self.rate), gap)
        p = self.position(t)
        return 0.0 if (p <= self.lo and self.rate < 0) or (p >= self.hi and self.rate > 0) else self.rate

    def go_to(self, t: float, target: float, speed: Optional[float]) -> None:
        self.start, self.t0, self.until = self.position(t), t, math.inf
        self.target = min(max(target, self.lo), self.hi)
        self.rate = abs(speed) if speed else self.max_speed

    def run(self, t: float, rate: float, duration: Optional[float]) -> None:
        self.start, self.t0, self.target, self.rate = self.position(t), t, None, rate
        self.until = t + duration if duration else math.inf

    def halt(self, t: float) -> None:
        self.run(t, 0.0, None)


class MockPtzDriver(PtzDriver):
    """An ideal PTZ head (see the module docstring)."""

    SETTINGS: dict[str, tuple[Any, str]] = {
        "max_pan_speed": (1.5, "rad/s"),
        "max_tilt_speed": (1.0, "rad/s"),
        "max_zoom_speed": (8000.0, "raw units/s"),
        "zoom_max": (16384.0, "raw zoom at the tele end"),
        "image_width": (320, "px of the synthetic image (0 = no capture)"),
        "image_height": (240, "px"),
    }

    def __init__(self, capabilities: Optional[PtzCapabilities] = None, clock: Callable[[], float] = time.time) -> None:
        self._caps = capabilities or PtzCapabilities(
            pan_min=-math.pi, pan_max=math.pi, tilt_min=-math.pi / 2, tilt_max=math.pi / 2,
            zoom_min=0.0, zoom_max=16384.0, max_pan_speed=1.5, max_tilt_speed=1.0, max_zoom_speed=8000.0,
            can_capture=True, image_width=320, image_height=240)
        self._clock = clock
        self._lock = threading.Lock()
        self._connected = False
        self._injected: deque[PtzFeedback] = deque()
        self._fail_reads = 0
        self._sequence = 0
        c = self._caps
        self._pan = _Axis(0.0, c.pan_min, c.pan_max, c.max_pan_speed)
        self._tilt = _Axis(0.0, c.tilt_min, c.tilt_max, c.max_tilt_speed)
        self._zoom = _Axis(c.zoom_min, c.zoom_min, c.zoom_max, c.max_zoom_speed)
        self.commands: list[tuple[str, tuple]] = []  # every command received, for tests

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> "MockPtzDriver":
        s = {k: v[0] for k, v in cls.SETTINGS.items()}
        s.update({k: v for k, v in settings.items() if v is not None})
        width, height = int(s["image_width"]), int(s["image_height"])
        return cls(PtzCapabilities(
            pan_min=-math.pi, pan_max=math.pi, tilt_min=-math.pi / 2, tilt_max=math.pi / 2,
            zoom_min=0.0, zoom_max=float(s["zoom_max"]), max_pan_speed=float(s["max_pan_speed"]),
            max_tilt_speed=float(s["max_tilt_speed"]), max_zoom_speed=float(s["max_zoom_speed"]),
            can_capture=width > 0 and height > 0, image_width=width, image_height=height))

    # -- test hooks ---------------------------------------------------------------------------

    def inject(self, *samples: PtzFeedback) -> None:
        """Queue samples that the next reads return instead of the true state."""
        with self._lock:
            self._injected.extend(samples)

    def fail_reads(self, count: int) -> None:
        """Make the next ``count`` reads raise :class:`DriverConnectionError`."""
        with self._lock:
            self._fail_reads = int(count)

    # -- PtzDriver ----------------------------------------------------------------------------

    @property
    def capabilities(self) -> PtzCapabilities:
        return self._caps

    @property
    def connected(self) -> bool:
        return self._connected

    def connect(self) -> None:
        self._connected = True

    def close(self) -> None:
        self._connected = False

    def _require(self) -> float:
        if not self._connected:
            raise DriverConnectionError("mock PTZ is not connected")
        return self._clock()

    def read_state(self) -> PtzFeedback:
        with self._lock:
            t = self._require()
            if self._fail_reads > 0:
                self._fail_reads -= 1
                raise DriverConnectionError("mock PTZ: injected read failure")
            if self._injected:
                sample = self._injected.popleft()
                return sample if math.isfinite(sample.stamp) and sample.stamp > 0 else replace(sample, stamp=t)
            pv, tv, zv = self._pan.velocity(t), self._tilt.velocity(t), self._zoom.velocity(t)
            return PtzFeedback(pan=self._pan.position(t), tilt=self._tilt.position(t), zoom_raw=self._zoom.position(t),
                               stamp=t, pan_velocity=pv, tilt_velocity=tv,
                               moving=bool(pv or tv or zv))

    def move_absolute(self, pan: float, tilt: float, zoom_raw: Optional[float] = None,
                      pan_speed: Optional[float] = None, tilt_speed: Optional[float] = None) -> None:
        with self._lock:
            t = self._require()
            self.commands.append(("absolute", (pan, tilt, zoom_raw, pan_speed, tilt_speed)))
            if pan is not None and not math.isnan(pan):
                self._pan.go_to(t, pan, pan_speed)
            if tilt is not None and not math.isnan(tilt):
                self._tilt.go_to(t, tilt, tilt_speed)
            if zoom_raw is not None and not math.isnan(zoom_raw):
                self._zoom.go_to(t, zoom_raw, None)

    def move_velocity(self, pan_rate: float, tilt_rate: float, zoom_rate: float = 0.0,
                      duration: Optional[float] = None) -> None:
        with self._lock:
            t = self._require()
            self.commands.append(("velocity", (pan_rate, tilt_rate, zoom_rate, duration)))
            self._pan.run(t, pan_rate, duration)
            self._tilt.run(t, tilt_rate, duration)
            self._zoom.run(t, zoom_rate, duration)

    def stop(self) -> None:
        with self._lock:
            t = self._require()
            self.commands.append(("stop", ()))
            for axis in (self._pan, self._tilt, self._zoom):
                axis.halt(t)

    def home(self) -> None:
        with self._lock:
            self.commands.append(("home", ()))
        self.move_absolute(0.0, 0.0, self._caps.zoom_min)

    def capture(self) -> Frame:
        c = self._caps
        if not c.can_capture:
            raise DriverError("mock PTZ configured without images")
        with self._lock:
            t = self._require()
            self._sequence += 1
            seq, pan = self._sequence, self._pan.position(t)
        # A horizontal gradient that shifts with pan: enough to see motion in a viewer.
        cols = (np.arange(c.image_width) + int(pan * 100)) % 256
        image = np.broadcast_to(cols.astype(np.uint8), (c.image_height, c.image_width)).copy()
        return Frame(image=image, stamp=t, sequence=seq)
