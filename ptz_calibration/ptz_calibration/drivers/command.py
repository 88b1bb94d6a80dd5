"""Checking and clamping move commands against a device's capabilities (pure, no I/O).

Nodes turn a ROS command into one of these plans and hand it to the driver; every adjustment
(clamping) is reported as a human-readable note for the log, every refusal as a
:class:`CommandError`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

from .interface import PtzCapabilities, PtzFeedback


class CommandError(ValueError):
    """A command that cannot be executed (NaN where a number is required, negative speed...)."""


@dataclass(frozen=True)
class AbsoluteMove:
    """A move to (pan, tilt, zoom_raw); NaN keeps the axis where it is; speeds None = device default."""

    pan: float
    tilt: float
    zoom_raw: float
    pan_speed: Optional[float] = None
    tilt_speed: Optional[float] = None
    notes: tuple[str, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class VelocityMove:
    """Constant rates (rad/s, raw/s) for ``duration`` s (None = until the next command)."""

    pan_rate: float
    tilt_rate: float
    zoom_rate: float
    duration: Optional[float] = None
    notes: tuple[str, ...] = field(default=(), compare=False)


def _clip(value: float, lo: float, hi: float, name: str, unit: str, notes: list[str]) -> float:
    if math.isnan(value):
        return value
    clipped = min(max(value, lo), hi)
    if clipped != value:
        notes.append(f"{name} {value:.6g} {unit} clamped to {clipped:.6g} (limits [{lo:.6g}, {hi:.6g}])")
    return clipped


def _speed(value: Optional[float], limit: float, name: str, notes: list[str]) -> Optional[float]:
    """0/None = device default; negative or NaN refused; above the maximum clamped."""
    if value is None or value == 0.0:
        return None
    if math.isnan(value) or value < 0.0:
        raise CommandError(f"{name} must be a positive number or 0 (device default), got {value}")
    if math.isfinite(limit) and value > limit:
        notes.append(f"{name} {value:.6g} rad/s clamped to the maximum {limit:.6g}")
        return limit
    return value


def plan_absolute(caps: PtzCapabilities, pan: float, tilt: float, zoom_raw: float,
                  pan_speed: Optional[float] = None, tilt_speed: Optional[float] = None) -> AbsoluteMove:
    """An absolute move clamped into the device's range. NaN leaves an axis alone; inf is refused."""
    for name, value in (("pan", pan), ("tilt", tilt), ("zoom", zoom_raw)):
        if math.isinf(value):
            raise CommandError(f"{name} must be finite or NaN (keep), got {value}")
    if all(math.isnan(v) for v in (pan, tilt, zoom_raw)):
        raise CommandError("every axis is NaN: nothing to move")
    notes: list[str] = []
    return AbsoluteMove(
        pan=_clip(pan, caps.pan_min, caps.pan_max, "pan", "rad", notes),
        tilt=_clip(tilt, caps.tilt_min, caps.tilt_max, "tilt", "rad", notes),
        zoom_raw=_clip(zoom_raw, caps.zoom_min, caps.zoom_max, "zoom", "raw", notes),
        pan_speed=_speed(pan_speed, caps.max_pan_speed, "pan_speed", notes),
        tilt_speed=_speed(tilt_speed, caps.max_tilt_speed, "tilt_speed", notes),
        notes=tuple(notes),
    )


def plan_relative(caps: PtzCapabilities, current: PtzFeedback, pan: float, tilt: float, zoom_raw: float,
                  pan_speed: Optional[float] = None, tilt_speed: Optional[float] = None) -> AbsoluteMove:
    """A relative move from ``current``, as a clamped absolute move (NaN = keep the axis)."""
    if not current.is_finite():
        raise CommandError("relative move refused: the current position is unknown")

    def add(base: float, delta: float) -> float:
        return math.nan if math.isnan(delta) else base + delta
    return plan_absolute(caps, add(current.pan, pan), add(current.tilt, tilt), add(current.zoom_raw, zoom_raw),
                         pan_speed, tilt_speed)


def plan_velocity(caps: PtzCapabilities, pan_rate: float, tilt_rate: float, zoom_rate: float,
                  duration: Optional[float] = None) -> VelocityMove:
    """A velocity move with rates clamped to the maximum speeds (NaN = 0); duration 0/None = until the next command."""
    notes: list[str] = []

    def rate(value: float, limit: float, name: str, unit: str) -> float:
        if math.isnan(value):
            return 0.0
        if math.isinf(value) and not math.isfinite(limit):
            raise CommandError(f"{name} must be finite, got {value}")
        if math.isfinite(limit):
            return _clip(value, -limit, limit, name, unit, notes)
        return value
    if duration is not None and (math.isnan(duration) or duration < 0.0):
        raise CommandError(f"duration must be >= 0 (0 = until the next command), got {duration}")
    return VelocityMove(
        pan_rate=rate(pan_rate, caps.max_pan_speed, "pan rate", "rad/s"),
        tilt_rate=rate(tilt_rate, caps.max_tilt_speed, "tilt rate", "rad/s"),
        zoom_rate=rate(zoom_rate, caps.max_zoom_speed, "zoom rate", "raw/s"),
        duration=duration if duration else None,
        notes=tuple(notes),
    )


def remaining_angle(current: PtzFeedback, pan: float, tilt: float) -> float:
    """Angular distance (rad) still to go: the Euclidean norm of the pan and tilt errors (NaN axes ignored)."""
    dp = 0.0 if math.isnan(pan) else pan - current.pan
    dt = 0.0 if math.isnan(tilt) else tilt - current.tilt
    return math.hypot(dp, dt)


def travel_time(caps: PtzCapabilities, current: PtzFeedback, move: AbsoluteMove) -> float:
    """A generous estimate (s) of how long ``move`` takes at the device's (or the requested) speeds."""
    def axis(delta: float, speed: Optional[float], limit: float) -> float:
        v = speed or limit
        return 0.0 if math.isnan(delta) or not (math.isfinite(v) and v > 0) else abs(delta) / v
    return max(
        axis(move.pan - current.pan, move.pan_speed, caps.max_pan_speed),
        axis(move.tilt - current.tilt, move.tilt_speed, caps.max_tilt_speed),
        axis(move.zoom_raw - current.zoom_raw, None, caps.max_zoom_speed),
    )
