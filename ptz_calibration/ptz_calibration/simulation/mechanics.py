"""Mechanics of a pan-tilt-zoom head: per-axis motion profiles, gear backlash, periodic error, encoders.

Each axis has a *motor* side (what the encoder measures and the controller drives) and a *load*
side (where the camera actually points):

* the motor follows time-optimal trapezoidal profiles under a speed and an acceleration limit
  (absolute and relative moves, velocity mode, stop), always inside the travel limits;
* the load follows the motor through a gear dead band of width ``backlash`` (on a reversal the
  motor turns ``backlash`` before the load moves again) and then carries a periodic pointing error
  ``sum_k A_k sin(k * angle + phi_k)`` (gear eccentricity);
* feedback is the motor angle quantized to ``encoder_step`` plus Gaussian ``encoder_noise``:
  it does not show backlash or the periodic error.

The motor path is piecewise quadratic in time, so every state is evaluated exactly (no numerical
integration): commands must come in non-decreasing time order; states can be queried at any time
since the axis was created.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

__all__ = [
    "HarmonicError",
    "AxisConfig",
    "Axis",
    "MechanicsConfig",
    "PtzMechanics",
]

_EPS = 1e-12


@dataclass(frozen=True)
class HarmonicError:
    """One harmonic of a periodic pointing error: ``amplitude * sin(order * angle + phase)``."""

    order: int  # cycles per revolution of the axis
    amplitude: float  # axis units (rad)
    phase: float = 0.0  # rad


@dataclass(frozen=True)
class AxisConfig:
    """Mechanical properties of one axis (units: rad for pan/tilt, raw device units for zoom)."""

    min: float  # lower travel limit
    max: float  # upper travel limit
    max_speed: float  # units/s
    max_accel: float  # units/s^2
    default_speed: Optional[float] = None  # speed of moves given no speed (default: max_speed)
    backlash: float = 0.0  # dead-band width between motor and load, units
    periodic_error: tuple[HarmonicError, ...] = ()  # error of the load vs its own angle
    encoder_step: float = 0.0  # feedback quantization step, units (0 = none)
    encoder_noise: float = 0.0  # feedback noise standard deviation, units
    command_step: float = 0.0  # resolution of position targets, units (0 = continuous)
    home: float = 0.0  # home position, units

    def __post_init__(self) -> None:
        if not (math.isfinite(self.min) and math.isfinite(self.max) and self.min <= self.max):
            raise ValueError(f"axis limits must be finite with min <= max, got [{self.min}, {self.max}]")
        for name in ("max_speed", "max_accel"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("backlash", "encoder_step", "encoder_noise", "command_step"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.default_speed is not None and not 0 < self.default_speed <= self.max_speed:
            raise ValueError("default_speed must be in (0, max_speed]")
        if not self.min <= self.home <= self.max:
            raise ValueError(f"home {self.home} outside the limits [{self.min}, {self.max}]")
        object.__setattr__(self, "periodic_error", tuple(self.periodic_error))

    @property
    def speed(self) -> float:
        """Speed of moves given without a speed."""
        return self.max_speed if self.default_speed is None else self.default_speed

    def periodic(self, angle: float) -> float:
        """Periodic pointing error at the (load) angle."""
        return float(sum(h.amplitude * math.sin(h.order * angle + h.phase) for h in self.periodic_error))

    def settled_load(self, motor: "np.ndarray | float", direction: "np.ndarray | float") -> np.ndarray:
        """Load angle at rest with the motor at ``motor`` reached moving in ``direction`` (+1 up,
        -1 down; batched): the dead band leaves the load ``backlash / 2`` behind the motor, then
        the periodic error at that angle (what :meth:`Axis.load` gives once a move has ended)."""
        lag = np.asarray(motor, dtype=float) - np.sign(direction) * 0.5 * self.backlash
        return lag + sum(h.amplitude * np.sin(h.order * lag + h.phase) for h in self.periodic_error)


@dataclass
class _Plan:
    """A motor trajectory from ``t[0]``: piecewise constant acceleration, ending at rest.

    The velocity never changes sign inside a segment, so the motor is monotone on each one.
    """

    t: list[float]  # segment start times (the last segment is the final rest)
    p: list[float]  # position at each segment start
    v: list[float]  # velocity at each segment start
    a: list[float]  # acceleration during each segment
    load0: float  # load angle (before the periodic error) at t[0]

    def state(self, t: float) -> tuple[float, float, float]:
        """Motor (position, velocity, acceleration) at ``t >= self.t[0]``."""
        i = max(bisect.bisect_right(self.t, t) - 1, 0)
        tau = t - self.t[i]
        a = self.a[i]
        return self.p[i] + self.v[i] * tau + 0.5 * a * tau * tau, self.v[i] + a * tau, a

    @property
    def end_time(self) -> float:
        return self.t[-1]

    @property
    def end_position(self) -> float:
        return self.p[-1]


def _trapezoid(t0: float, p0: float, v0: float, target: float, vmax: float,
               amax: float) -> tuple[list[float], list[float], list[float], list[float]]:
    """Time-optimal profile from (p0, v0) to rest at ``target`` with |v| <= vmax, |a| <= amax."""
    ts, ps, vs, accs = [], [], [], []
    t, p, v = t0, p0, v0

    def push(a: float, dt: float) -> None:
        nonlocal t, p, v
        if dt <= 0:
            return
        ts.append(t), ps.append(p), vs.append(v), accs.append(a)
        p = p + v * dt + 0.5 * a * dt * dt
        v = v + a * dt
        t = t + dt

    # 1. too fast for the requested speed: slow down to it first
    if abs(v) > vmax:
        s = math.copysign(1.0, v)
        push(-s * amax, (abs(v) - vmax) / amax)
        v = s * vmax
    # 2. moving away from the target, or unable to stop before it: brake to rest first
    if abs(v) > _EPS:
        s = math.copysign(1.0, v)
        stop = v * abs(v) / (2 * amax)
        if (target - p - stop) * s < -1e-12:
            push(-s * amax, abs(v) / amax)
            v = 0.0
    # 3. accelerate towards the target, cruise, decelerate to rest exactly at it
    d = target - p
    if abs(v) > _EPS:
        s = math.copysign(1.0, v)
    else:
        v = 0.0
        s = math.copysign(1.0, d) if d != 0 else 1.0
    dist, u = max(d * s, 0.0), abs(v)
    peak = min(vmax, math.sqrt(amax * dist + 0.5 * u * u))
    peak = max(peak, u)
    d_acc = (peak * peak - u * u) / (2 * amax)
    d_dec = peak * peak / (2 * amax)
    push(s * amax, (peak - u) / amax)
    if peak > 0:
        push(0.0, max(dist - d_acc - d_dec, 0.0) / peak)
    push(-s * amax, peak / amax)
    ts.append(t), ps.append(target), vs.append(0.0), accs.append(0.0)  # rest, exactly on target
    return ts, ps, vs, accs


class Axis:
    """One axis of the head: motor trajectory, load angle through backlash, encoder feedback."""

    def __init__(self, config: AxisConfig, t0: float, position: Optional[float] = None):
        self.config = config
        p = config.home if position is None else float(np.clip(position, config.min, config.max))
        self._plans: list[_Plan] = [_Plan([t0], [p], [0.0], [0.0], p)]
        self._starts: list[float] = [t0]
        self._last_command = t0
        self.target = p  # position the motor is heading to (or resting at)

    # -- commands -------------------------------------------------------------------------
    def move_absolute(self, t: float, target: float, speed: Optional[float] = None) -> None:
        """From time ``t``, move to ``target`` (clamped to the limits) at ``speed`` (units/s)."""
        c = self.config
        target = float(np.clip(target, c.min, c.max))
        if c.command_step > 0:
            target = float(np.clip(round(target / c.command_step) * c.command_step, c.min, c.max))
        vmax = c.speed if speed is None or not speed > 0 else min(abs(speed), c.max_speed)
        self._replan(t, target, vmax)

    def move_relative(self, t: float, delta: float, speed: Optional[float] = None) -> None:
        """From time ``t``, move by ``delta`` from the current motor position."""
        self._check_time(t)
        self.move_absolute(t, self.state(t)[0] + delta, speed)

    def move_velocity(self, t: float, velocity: float, duration: Optional[float] = None) -> None:
        """From time ``t``, run at ``velocity`` (units/s, clamped) until stopped or at a limit.

        With ``duration`` (s), the axis brakes by itself at ``t + duration``.
        """
        c = self.config
        if abs(velocity) <= _EPS:
            self.stop(t)
            return
        self._replan(t, c.max if velocity > 0 else c.min, min(abs(velocity), c.max_speed))
        if duration is not None and duration >= 0:
            plan = self._plans[-1]
            t_stop = t + duration
            if t_stop < plan.end_time:
                p, v, _ = plan.state(t_stop)
                ts, ps, vs, accs = _trapezoid(t_stop, p, v, p + v * abs(v) / (2 * c.max_accel),
                                              max(abs(v), _EPS), c.max_accel)
                keep = bisect.bisect_left(plan.t, t_stop)
                plan.t[keep:], plan.p[keep:], plan.v[keep:], plan.a[keep:] = ts, ps, vs, accs
                self.target = ps[-1]

    def stop(self, t: float) -> None:
        """From time ``t``, brake at the maximum deceleration and hold."""
        self._check_time(t)
        p, v, _ = self.state(t)
        stop = v * abs(v) / (2 * self.config.max_accel)
        self._replan(t, float(np.clip(p + stop, self.config.min, self.config.max)),
                     max(abs(v), _EPS))

    def _check_time(self, t: float) -> None:
        if t < self._last_command:
            raise ValueError(f"command at t={t} before the previous command at t={self._last_command}")

    def _replan(self, t: float, target: float, vmax: float) -> None:
        self._check_time(t)
        p, v, _ = self.state(t)
        load = self._load_no_periodic(t)
        ts, ps, vs, accs = _trapezoid(t, p, v, target, vmax, self.config.max_accel)
        plan = _Plan(ts, ps, vs, accs, load)
        # the new plan replaces the old one from t on
        if self._starts[-1] == t:
            self._plans[-1] = plan
        else:
            self._plans.append(plan)
            self._starts.append(t)
        self._last_command = t
        self.target = target

    # -- state ----------------------------------------------------------------------------
    def _plan_at(self, t: float) -> _Plan:
        if t < self._starts[0]:
            raise ValueError(f"t={t} is before the start of the axis history ({self._starts[0]})")
        return self._plans[bisect.bisect_right(self._starts, t) - 1]

    def state(self, t: float) -> tuple[float, float, float]:
        """Motor (position, velocity, acceleration) at time ``t``."""
        return self._plan_at(t).state(t)

    def moving(self, t: float) -> bool:
        """True while the motor is in motion."""
        return t < self._plan_at(t).end_time

    def arrival_time(self) -> float:
        """Time at which the current command's motion ends."""
        return self._plans[-1].end_time

    def _load_no_periodic(self, t: float) -> float:
        """Load angle through the backlash dead band.

        Exact: on a monotone piece of the motor path the dead band leaves the load at
        ``clip(load_before, m_end - b/2, m_end + b/2)``, and the motor is monotone per segment.
        """
        plan = self._plan_at(t)
        half = 0.5 * self.config.backlash
        if half == 0.0:
            return plan.state(t)[0]
        load = plan.load0
        for i in range(1, len(plan.t)):
            if plan.t[i] >= t:
                break
            load = min(max(load, plan.p[i] - half), plan.p[i] + half)
        m = plan.state(t)[0]
        return min(max(load, m - half), m + half)

    def load(self, t: float) -> float:
        """True angle of the load (camera) at ``t``: backlash and periodic error included."""
        angle = self._load_no_periodic(t)
        return angle + self.config.periodic(angle)

    def feedback(self, t: float, rng: Optional[np.random.Generator] = None) -> float:
        """Reported position at ``t``: motor angle, quantized, plus noise (needs ``rng`` if noisy)."""
        c = self.config
        value = self.state(t)[0]
        if c.encoder_step > 0:
            value = round(value / c.encoder_step) * c.encoder_step
        if c.encoder_noise > 0:
            if rng is None:
                raise ValueError("feedback with encoder noise needs an rng")
            value += c.encoder_noise * rng.standard_normal()
        return float(value)

    def prune(self, before: float) -> None:
        """Forget the history before ``before`` (states can no longer be queried there)."""
        i = bisect.bisect_right(self._starts, before) - 1
        if i > 0:
            del self._plans[:i]
            del self._starts[:i]


@dataclass(frozen=True)
class MechanicsConfig:
    """The three axes of a PTZ head."""

    pan: AxisConfig
    tilt: AxisConfig
    zoom: AxisConfig


class PtzMechanics:
    """Pan, tilt and zoom axes moving independently from a common start time."""

    def __init__(self, config: MechanicsConfig, t0: float):
        self.config = config
        self.pan = Axis(config.pan, t0)
        self.tilt = Axis(config.tilt, t0)
        self.zoom = Axis(config.zoom, t0)

    @property
    def axes(self) -> tuple[Axis, Axis, Axis]:
        """(pan, tilt, zoom)."""
        return (self.pan, self.tilt, self.zoom)

    def move_absolute(self, t: float, pan: Optional[float], tilt: Optional[float],
                      zoom: Optional[float], speeds: Sequence[Optional[float]] = (None, None, None)) -> None:
        """Move each axis whose target is given (None or NaN leaves it alone)."""
        for axis, target, speed in zip(self.axes, (pan, tilt, zoom), speeds):
            if target is not None and math.isfinite(target):
                axis.move_absolute(t, target, speed)

    def move_relative(self, t: float, pan: Optional[float], tilt: Optional[float],
                      zoom: Optional[float], speeds: Sequence[Optional[float]] = (None, None, None)) -> None:
        """Move each axis whose delta is given by that delta."""
        for axis, delta, speed in zip(self.axes, (pan, tilt, zoom), speeds):
            if delta is not None and math.isfinite(delta):
                axis.move_relative(t, delta, speed)

    def move_velocity(self, t: float, pan: Optional[float], tilt: Optional[float],
                      zoom: Optional[float], duration: Optional[float] = None) -> None:
        """Run each axis at its velocity (None or NaN = 0: stop that axis), for ``duration`` s."""
        for axis, vel in zip(self.axes, (pan, tilt, zoom)):
            axis.move_velocity(t, vel if vel is not None and math.isfinite(vel) else 0.0, duration)

    def stop(self, t: float) -> None:
        """Brake every axis."""
        for axis in self.axes:
            axis.stop(t)

    def moving(self, t: float) -> bool:
        """True while any axis moves."""
        return any(axis.moving(t) for axis in self.axes)
