"""PTZ feedback history of one camera and its state at any recent stamp (linear interpolation).

Two cameras report their feedback at their own times; a stereo measurement needs both states at
one common stamp. :class:`StateHistory` keeps the last ``horizon`` seconds of one camera's
samples and interpolates between the two samples bracketing a stamp; :func:`common_stamp` is the
latest stamp both histories can serve.

Angles are interpolated linearly without wrapping (a head's pan range is below 2 pi; a head that
reports a continuous 0 / 2 pi pan must unwrap before :meth:`StateHistory.add`).
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, replace
from typing import Optional

import numpy as np

__all__ = ["PtzSample", "StateOutOfRange", "StateHistory", "common_stamp"]


@dataclass(frozen=True)
class PtzSample:
    """One camera state: ``stamp`` (s), ``pan``, ``tilt`` (rad), ``zoom`` (raw device value) and the
    camera's ``temperature`` (deg C, NaN when unknown; used by a thermal correction layer)."""

    stamp: float
    pan: float
    tilt: float
    zoom: float
    temperature: float = math.nan
    pan_velocity: float = math.nan  # rad/s as the device reports it (NaN: unknown)
    tilt_velocity: float = math.nan

    @property
    def setting(self) -> tuple[float, ...]:
        """``(pan, tilt, zoom)`` or ``(pan, tilt, zoom, temperature)``: what :meth:`StereoRigModel.extrinsics` takes."""
        if math.isnan(self.temperature):
            return (self.pan, self.tilt, self.zoom)
        return (self.pan, self.tilt, self.zoom, self.temperature)

    def finite(self) -> bool:
        return all(math.isfinite(v) for v in (self.stamp, self.pan, self.tilt, self.zoom))


class StateOutOfRange(ValueError):
    """No state at the requested stamp: history empty, stamp too old or too new, or a gap."""


_STALL_FACTOR = 2.5  # a sample interval this many times the usual one is a stall of the feedback
_MOVED_ANGLE = 2e-3  # rad: a turn larger than encoder noise and one 0.075 deg step
_MOVED_VELOCITY = 1e-4  # rad/s


class StateHistory:
    """Recent PTZ feedback of one camera; the state at any stamp in it by linear interpolation.

    ``horizon`` (s): samples older than the newest minus this are dropped. ``max_gap`` (s): no
    interpolation between samples further apart (feedback lost meanwhile). ``max_extrapolation``
    (s): a stamp up to this much past the newest sample gets the newest state (held). A *stall*
    (two samples more than 2.5x the usual interval apart, an executor or link hiccup) across which
    the head turned is not interpolated either: where the head was meanwhile is unknown (a 0.1 s
    stall during a tracker's re-centring move put a straight line 0.23 deg off the true path).

    ``smoothing_window`` (s, 0 = off): encoders report angles in steps, so while a head moves
    each sample is off by up to half a step. With a window, the pan and tilt at a stamp are the
    median over the samples within +-window/2 of each sample's angle carried to the stamp by the
    integral of the reported velocity (trapezoids between samples): the quantization errors
    average out and motion does not bias it. The median, not the mean: the trapezoids miss the
    acceleration changes between samples of short stop-and-go moves, which shift a few carried
    samples. Used only where every sample in the window has a finite velocity and no gap;
    otherwise (and at rest, where it changes nothing) the plain interpolation.
    """

    def __init__(self, horizon: float = 2.0, max_gap: float = 0.25, max_extrapolation: float = 0.02,
                 smoothing_window: float = 0.0) -> None:
        for name, value in (("horizon", horizon), ("max_gap", max_gap), ("max_extrapolation", max_extrapolation)):
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be finite and >= 0, got {value}")
        self.horizon = float(horizon)
        self.max_gap = float(max_gap)
        self.max_extrapolation = float(max_extrapolation)
        if not (math.isfinite(smoothing_window) and smoothing_window >= 0):
            raise ValueError(f"smoothing_window must be finite and >= 0, got {smoothing_window}")
        self.smoothing_window = float(smoothing_window)
        self._stamps: list[float] = []
        self._samples: list[PtzSample] = []
        self.rejected = 0

    def __len__(self) -> int:
        return len(self._samples)

    @property
    def newest(self) -> Optional[PtzSample]:
        return self._samples[-1] if self._samples else None

    @property
    def oldest(self) -> Optional[PtzSample]:
        return self._samples[0] if self._samples else None

    def rate(self, window: float = 2.0) -> float:
        """Sample rate (Hz) over the last ``window`` s of sample stamps (0 with fewer than 2):
        the device's rate, unaffected by how late the samples were delivered."""
        stamps = self._stamps
        if len(stamps) < 2:
            return 0.0
        i = bisect_left(stamps, stamps[-1] - window)
        span = stamps[-1] - stamps[i]
        return (len(stamps) - 1 - i) / span if span > 0 else 0.0

    def _mean_interval(self) -> float:
        """Mean interval between the samples held (inf with fewer than 2)."""
        n = len(self._stamps)
        return (self._stamps[-1] - self._stamps[0]) / (n - 1) if n >= 2 else math.inf

    def clear(self) -> None:
        """Forget every sample (e.g. after a reconnection); ``rejected`` is kept."""
        self._stamps.clear()
        self._samples.clear()

    def add(self, sample: PtzSample) -> bool:
        """Append a sample; False (counted in ``rejected``) if a value is not finite or its stamp
        is not newer than the newest. Drops samples older than ``newest - horizon``."""
        if not sample.finite() or (self._stamps and sample.stamp <= self._stamps[-1]):
            self.rejected += 1
            return False
        self._stamps.append(float(sample.stamp))
        self._samples.append(sample)
        cut = bisect_left(self._stamps, sample.stamp - self.horizon)
        if cut:
            del self._stamps[:cut]
            del self._samples[:cut]
        return True

    def at(self, stamp: float) -> PtzSample:
        """The state at ``stamp``: linear between the bracketing samples (refined over the
        smoothing window, see the class docstring), the newest held up to ``max_extrapolation``
        past it; :class:`StateOutOfRange` otherwise."""
        base = self._interpolate(stamp)
        if self.smoothing_window <= 0.0:
            return base
        smoothed = self._smoothed(stamp)
        return base if smoothed is None else replace(base, pan=smoothed[0], tilt=smoothed[1])

    def _smoothed(self, stamp: float) -> Optional[tuple[float, float]]:
        half = 0.5 * self.smoothing_window
        lo = bisect_left(self._stamps, stamp - half)
        hi = bisect_right(self._stamps, stamp + half)
        if hi - lo < 2:
            return None
        seg = self._samples[lo:hi]
        t = np.array(self._stamps[lo:hi])
        if np.any(np.diff(t) > self.max_gap):
            return None
        v = np.array([(s.pan_velocity, s.tilt_velocity) for s in seg])
        if not np.all(np.isfinite(v)):
            return None
        q = np.array([(s.pan, s.tilt) for s in seg])
        # integral of the velocity from the first sample, at every sample and at the stamp
        steps = 0.5 * (v[1:] + v[:-1]) * np.diff(t)[:, None]
        integral = np.vstack([np.zeros((1, 2)), np.cumsum(steps, axis=0)])
        k = min(max(int(np.searchsorted(t, stamp)) - 1, 0), len(t) - 2)
        dt = stamp - t[k]
        w = dt / (t[k + 1] - t[k])
        v_at = v[k] + w * (v[k + 1] - v[k])
        at = integral[k] + 0.5 * (v[k] + v_at) * dt  # also right for a stamp just outside [t0, tn]
        est = np.median(q - integral, axis=0) + at
        return float(est[0]), float(est[1])

    def _interpolate(self, stamp: float) -> PtzSample:
        stamps = self._stamps
        if not stamps:
            raise StateOutOfRange("no PTZ state: the history is empty")
        if not math.isfinite(stamp):
            raise StateOutOfRange(f"stamp {stamp} is not finite")
        newest = stamps[-1]
        if stamp >= newest:
            if stamp - newest > self.max_extrapolation:
                raise StateOutOfRange(
                    f"stamp {stamp:.6f} is too new: {stamp - newest:.4f} s past the newest sample "
                    f"(max extrapolation {self.max_extrapolation} s)")
            s = self._samples[-1]
            return s if stamp == newest else replace(s, stamp=stamp)
        if stamp < stamps[0]:
            raise StateOutOfRange(
                f"stamp {stamp:.6f} is too old: {stamps[0] - stamp:.4f} s before the oldest sample "
                f"(history {newest - stamps[0]:.3f} s, horizon {self.horizon} s)")
        i = bisect_left(stamps, stamp)  # stamps[i - 1] < stamp <= stamps[i]
        b = self._samples[i]
        if stamps[i] == stamp:
            return b
        a = self._samples[i - 1]
        gap = b.stamp - a.stamp
        if gap > self.max_gap:
            raise StateOutOfRange(
                f"gap too large at stamp {stamp:.6f}: the samples around it are {gap:.4f} s apart "
                f"(max gap {self.max_gap} s)")
        if gap > _STALL_FACTOR * self._mean_interval() and _moved(a, b):
            raise StateOutOfRange(
                f"feedback stalled at stamp {stamp:.6f}: {gap:.4f} s between samples (usually "
                f"{self._mean_interval():.4f} s) while the head moved {math.degrees(_turn(a, b)):.3f} deg")
        w = (stamp - a.stamp) / gap
        temperature = a.temperature if w < 0.5 else b.temperature  # the nearer sample's reading
        return PtzSample(stamp, a.pan + w * (b.pan - a.pan), a.tilt + w * (b.tilt - a.tilt),
                         a.zoom + w * (b.zoom - a.zoom), temperature,
                         a.pan_velocity + w * (b.pan_velocity - a.pan_velocity),
                         a.tilt_velocity + w * (b.tilt_velocity - a.tilt_velocity))


def _turn(a: PtzSample, b: PtzSample) -> float:
    return max(abs(b.pan - a.pan), abs(b.tilt - a.tilt))


def _moved(a: PtzSample, b: PtzSample) -> bool:
    """The head turned between two samples: more than encoder noise and a quantization step, or
    a reported velocity at either end."""
    velocities = (a.pan_velocity, a.tilt_velocity, b.pan_velocity, b.tilt_velocity)
    return _turn(a, b) > _MOVED_ANGLE or any(math.isfinite(v) and abs(v) > _MOVED_VELOCITY for v in velocities)


def common_stamp(a: StateHistory, b: StateHistory) -> float:
    """The latest stamp both histories can serve, ``min(newest a, newest b)``;
    :class:`StateOutOfRange` if either is empty or their time spans do not overlap."""
    na, nb = a.newest, b.newest
    if na is None or nb is None:
        raise StateOutOfRange(f"no common stamp: the {'first' if na is None else 'second'} history is empty")
    stamp = min(na.stamp, nb.stamp)
    start = max(a.oldest.stamp, b.oldest.stamp)  # type: ignore[union-attr]
    if stamp < start:
        raise StateOutOfRange(
            f"no common stamp: the histories do not overlap (one ends at {stamp:.6f}, "
            f"the other starts at {start:.6f})")
    return stamp
