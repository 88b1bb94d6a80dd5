"""The PTZ driver interface: what every backend (simulated, VISCA, Pelco-D, ONVIF) provides.

Pure Python (no rclpy). Angles in radians, speeds in rad/s, zoom in raw device units, times in
seconds of the system clock (``time.time()`` base) so that a ROS node can stamp messages with
them directly.
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

NAN = float("nan")


class DriverError(RuntimeError):
    """A PTZ device refused, failed or answered nonsense."""


class DriverConnectionError(DriverError):
    """The device cannot be reached (not connected, link lost, refused)."""


class DriverTimeout(DriverError):
    """The device did not answer in time."""


@dataclass(frozen=True)
class PtzFeedback:
    """One pan/tilt/zoom sample read from the device.

    ``stamp`` is the time the device *sampled* the position (system clock, seconds); when the
    device gives no time it is the midpoint of the request/response exchange. ``error`` is set
    when the device flagged the sample as faulty: its position must then not be used.
    """

    pan: float
    tilt: float
    zoom_raw: float
    stamp: float
    pan_velocity: float = NAN
    tilt_velocity: float = NAN
    temperature: float = NAN
    moving: bool = False
    error: Optional[str] = None

    def is_finite(self) -> bool:
        """True when pan, tilt, zoom and stamp are all finite numbers."""
        return all(math.isfinite(v) for v in (self.pan, self.tilt, self.zoom_raw, self.stamp))


@dataclass(frozen=True)
class PtzCapabilities:
    """What a device can do and its ranges (rad, rad/s, raw zoom units)."""

    pan_min: float
    pan_max: float
    tilt_min: float
    tilt_max: float
    zoom_min: float
    zoom_max: float
    max_pan_speed: float
    max_tilt_speed: float
    max_zoom_speed: float = NAN  # raw units/s, NaN when unknown
    has_hardware_trigger: bool = False
    has_temperature: bool = False
    can_capture: bool = False
    image_width: int = 0
    image_height: int = 0

    def clamp(self, pan: float, tilt: float, zoom_raw: float) -> tuple[float, float, float]:
        """(pan, tilt, zoom) clamped into the device's range (NaN stays NaN)."""
        def clip(v: float, lo: float, hi: float) -> float:
            return v if math.isnan(v) else min(max(v, lo), hi)
        return (clip(pan, self.pan_min, self.pan_max), clip(tilt, self.tilt_min, self.tilt_max),
                clip(zoom_raw, self.zoom_min, self.zoom_max))


@dataclass(frozen=True)
class Frame:
    """One captured image and the time of its exposure (system clock, seconds, mid-exposure)."""

    image: np.ndarray  # (H, W) uint8 for mono8
    stamp: float
    encoding: str = "mono8"
    sequence: int = 0
    metadata: dict = field(default_factory=dict)


class PtzDriver(abc.ABC):
    """A pan/tilt/zoom head (and optionally its camera).

    Backends must be thread-safe: a node reads state and captures images from different threads.
    Every method may raise :class:`DriverError` (or its subclasses).
    """

    @property
    @abc.abstractmethod
    def capabilities(self) -> PtzCapabilities:
        """Ranges and features of the device (valid after :meth:`connect`)."""

    @property
    def connected(self) -> bool:
        """True between a successful :meth:`connect` and :meth:`close`."""
        return False

    @abc.abstractmethod
    def connect(self) -> None:
        """Open the link to the device; raise :class:`DriverConnectionError` on failure."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close the link (idempotent)."""

    @abc.abstractmethod
    def read_state(self) -> PtzFeedback:
        """Sample the current pan/tilt/zoom."""

    @abc.abstractmethod
    def move_absolute(self, pan: float, tilt: float, zoom_raw: Optional[float] = None,
                      pan_speed: Optional[float] = None, tilt_speed: Optional[float] = None) -> None:
        """Start a move to an absolute position; NaN/None leaves that axis alone. Returns at once."""

    def move_relative(self, pan: float, tilt: float, zoom_raw: Optional[float] = None,
                      pan_speed: Optional[float] = None, tilt_speed: Optional[float] = None) -> None:
        """Start a move by an offset from the current position (default: via :meth:`move_absolute`)."""
        state = self.read_state()

        def add(base: float, delta: Optional[float]) -> float:
            return NAN if delta is None or math.isnan(delta) else base + delta
        zoom = None if zoom_raw is None or math.isnan(zoom_raw) else state.zoom_raw + zoom_raw
        self.move_absolute(add(state.pan, pan), add(state.tilt, tilt), zoom, pan_speed, tilt_speed)

    @abc.abstractmethod
    def move_velocity(self, pan_rate: float, tilt_rate: float, zoom_rate: float = 0.0,
                      duration: Optional[float] = None) -> None:
        """Move at constant rates (rad/s, raw/s) until another command, :meth:`stop` or ``duration`` s."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop every axis now."""

    def home(self) -> None:
        """Move to pan = tilt = 0 and the widest zoom."""
        self.move_absolute(0.0, 0.0, self.capabilities.zoom_min)

    @abc.abstractmethod
    def capture(self) -> Frame:
        """Capture one image; raise :class:`DriverError` when ``capabilities.can_capture`` is false."""

    def link_statistics(self) -> dict[str, object]:
        """Counters and state of the link for diagnostics (timeouts, bad frames, retries...); optional.

        Values must never contain credentials.
        """
        return {}

    def trigger(self, at_time: float) -> Frame:
        """A hardware-triggered exposure latched at ``at_time`` (system clock); its frame. Optional."""
        raise NotImplementedError(f"{type(self).__name__} has no hardware trigger")

    def __enter__(self) -> "PtzDriver":
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
