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
from bisect import bisect_left
from dataclasses import dataclass
from typing import Optional

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


class StateHistory:
    """Recent PTZ feedback of one camera; the state at any stamp in it by linear interpolation.

    ``horizon`` (s): samples older than the newest minus this are dropped. ``max_gap`` (s): no
    interpolation between samples further apart (feedback lost meanwhile). ``max_extrapolation``
    (s): a stamp up to this much past the newest sample gets the newest state (held).
    """

    def __init__(self, horizon: float = 2.0, max_gap: float = 0.25, max_extrapolation: float = 0.02) -> None:
        for name, value in (("horizon", horizon), ("max_gap", max_gap), ("max_extrapolation", max_extrapolation)):
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be finite and >= 0, got {value}")
        self.horizon = float(horizon)
        self.max_gap = float(max_gap)
        self.max_extrapolation = float(max_extrapolation)
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
        """The state at ``stamp``: linear between the bracketing samples, the newest held up to
        ``max_extrapolation`` past it; :class:`StateOutOfRange` otherwise."""
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
            return s if stamp == newest else PtzSample(stamp, s.pan, s.tilt, s.zoom, s.temperature)
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
        w = (stamp - a.stamp) / gap
        temperature = a.temperature if w < 0.5 else b.temperature  # the nearer sample's reading
        return PtzSample(stamp, a.pan + w * (b.pan - a.pan), a.tilt + w * (b.tilt - a.tilt),
                         a.zoom + w * (b.zoom - a.zoom), temperature)


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
