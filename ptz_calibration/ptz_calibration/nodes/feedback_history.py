"""Recent feedback samples of one head, to give the head's state at an image's exposure time.

Pure Python (no rclpy). The driver node records every valid, published sample; ``~/capture``
asks for the state at the exposure (mid-exposure stamp), which lies between two samples:
pan, tilt, zoom and velocities are interpolated linearly, the temperature is the nearer
sample's, ``moving`` is true if either sample moved.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import deque
from dataclasses import replace
from typing import Optional

from ..drivers.interface import PtzFeedback


class FeedbackUnavailable(RuntimeError):
    """No feedback brackets the requested time (too old, too new, or a gap in the samples)."""


def _lerp(a: float, b: float, w: float) -> float:
    return a + (b - a) * w


def interpolate(a: PtzFeedback, b: PtzFeedback, t: float) -> PtzFeedback:
    """The state at ``t`` between samples ``a`` (earlier) and ``b`` (later), stamped ``t``."""
    span = b.stamp - a.stamp
    w = 0.0 if span <= 0 else min(max((t - a.stamp) / span, 0.0), 1.0)
    near = a if w < 0.5 else b
    return PtzFeedback(pan=_lerp(a.pan, b.pan, w), tilt=_lerp(a.tilt, b.tilt, w),
                       zoom_raw=_lerp(a.zoom_raw, b.zoom_raw, w), stamp=t,
                       pan_velocity=_lerp(a.pan_velocity, b.pan_velocity, w),
                       tilt_velocity=_lerp(a.tilt_velocity, b.tilt_velocity, w),
                       temperature=near.temperature, moving=a.moving or b.moving)


class FeedbackHistory:
    """A thread-safe, time-ordered buffer of the last ``duration`` seconds of samples."""

    def __init__(self, duration: float = 5.0, max_gap: float = 0.5) -> None:
        self.duration = float(duration)
        self.max_gap = float(max_gap)  # s, two samples further apart than this do not bracket a time
        self._samples: deque[PtzFeedback] = deque()
        self._cond = threading.Condition()

    def add(self, feedback: PtzFeedback) -> None:
        """Record a sample (samples not newer than the last one are ignored)."""
        with self._cond:
            if self._samples and feedback.stamp <= self._samples[-1].stamp:
                return
            self._samples.append(feedback)
            while self._samples and self._samples[0].stamp < feedback.stamp - self.duration:
                self._samples.popleft()
            self._cond.notify_all()

    def latest(self) -> Optional[PtzFeedback]:
        """The newest sample, or None."""
        with self._cond:
            return self._samples[-1] if self._samples else None

    def since(self, t: float) -> list[PtzFeedback]:
        """Samples with a stamp at or after ``t``, oldest first."""
        with self._cond:
            return [s for s in self._samples if s.stamp >= t]

    def at(self, t: float, timeout: float = 0.0) -> PtzFeedback:
        """The state at time ``t``; waits up to ``timeout`` s for a sample at or after ``t``.

        Raises :class:`FeedbackUnavailable` when no two samples within ``max_gap`` bracket ``t``.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cond:
            while not self._samples or self._samples[-1].stamp < t:
                left = deadline - time.monotonic()
                if left <= 0:
                    newest = f"{t - self._samples[-1].stamp:.3f} s before it" if self._samples else "none at all"
                    raise FeedbackUnavailable(f"no feedback sample at or after t = {t:.6f} (newest: {newest})")
                self._cond.wait(left)
            samples = list(self._samples)
        stamps = [s.stamp for s in samples]
        i = bisect.bisect_left(stamps, t)
        if stamps[i] == t:
            return replace(samples[i], stamp=t)
        if i == 0:
            raise FeedbackUnavailable(f"t = {t:.6f} is older than the feedback kept "
                                      f"({stamps[0] - t:.3f} s before the oldest sample)")
        a, b = samples[i - 1], samples[i]
        if b.stamp - a.stamp > self.max_gap:
            raise FeedbackUnavailable(f"gap of {b.stamp - a.stamp:.3f} s in the feedback around t = {t:.6f} "
                                      f"(more than {self.max_gap:g} s)")
        return interpolate(a, b, t)

