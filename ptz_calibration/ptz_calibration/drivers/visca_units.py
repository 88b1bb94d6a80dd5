"""Per-model VISCA unit table: device position / speed codes <-> radians, rad/s and raw zoom.

The numbers come from a params file (``config/visca_<model>.yaml``, keys ``visca.<name>``,
see :data:`TABLE_SETTINGS`) with the source of each. Positions map linearly between two
documented end points (e.g. EVI-D70 pan F725h..08DBh = -170..+170 deg); ``*_direction`` = -1
when the device's positive direction is this project's negative one (pan: positive = left,
counter-clockwise about up; tilt: positive = up). Speed codes map linearly between the
documented slowest and fastest code speeds; a rate is sent as the nearest code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from .interface import DriverError, PtzCapabilities

#: name -> (default: Sony EVI-D70, description). Defaults must match config/visca_sony_evi_d70.yaml.
TABLE_SETTINGS: dict[str, tuple[Any, str]] = {
    "model": ("sony_evi_d70", "camera model (diagnostics only)"),
    "pan_units": ([-2267, 2267], "device pan position at the two ends [units]"),
    "pan_degrees": ([-170.0, 170.0], "pan angle at those ends [deg, device direction]"),
    "pan_direction": (-1, "+1: device positive pan = project positive pan (left); -1: opposite"),
    "tilt_units": ([-400, 1200], "device tilt position at the two ends [units]"),
    "tilt_degrees": ([-30.0, 90.0], "tilt angle at those ends [deg, device direction]"),
    "tilt_direction": (1, "+1: device positive tilt = up (project positive tilt); -1: opposite"),
    "zoom_units": ([0, 16384], "device zoom position at wide and tele end [units]"),
    "zoom_raw": ([0.0, 16384.0], "raw zoom of the driver interface at those ends"),
    "pan_speed_codes": ([1, 24], "slowest and fastest pan speed code VV"),
    "pan_speeds_deg_s": ([2.0, 100.0], "pan speed of those codes [deg/s], linear in between"),
    "tilt_speed_codes": ([1, 23], "slowest and fastest tilt speed code WW"),
    "tilt_speeds_deg_s": ([2.0, 90.0], "tilt speed of those codes [deg/s], linear in between"),
    "zoom_speeds_raw_s": ([1000.0, 8000.0], "zoom speed of variable codes p=0 and p=7 [raw/s]"),
}


def _pair(settings: Mapping[str, Any], name: str) -> tuple[float, float]:
    value = settings.get(name, TABLE_SETTINGS[name][0])
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise DriverError(f"visca.{name}: expected two numbers, got {value!r}") from None
    if not (math.isfinite(a) and math.isfinite(b)):
        raise DriverError(f"visca.{name}: expected finite numbers, got {value!r}")
    return a, b


@dataclass(frozen=True)
class LinearMap:
    """Device value <-> interface value through two points; device values are rounded and clamped."""

    device: tuple[float, float]
    value: tuple[float, float]

    def to_value(self, device: float) -> float:
        (d0, d1), (v0, v1) = self.device, self.value
        return v0 + (device - d0) * (v1 - v0) / (d1 - d0)

    def to_device(self, value: float) -> int:
        (d0, d1), (v0, v1) = self.device, self.value
        d = d0 + (value - v0) * (d1 - d0) / (v1 - v0)
        lo, hi = min(d0, d1), max(d0, d1)
        return int(round(min(max(d, lo), hi)))

    def to_device_delta(self, delta: float) -> int:
        (d0, d1), (v0, v1) = self.device, self.value
        return int(round(delta * (d1 - d0) / (v1 - v0)))

    @property
    def value_range(self) -> tuple[float, float]:
        return min(self.value), max(self.value)


@dataclass(frozen=True)
class SpeedCodes:
    """Speed codes ``lo..hi`` with linear speeds ``slow..fast`` (rad/s or raw/s)."""

    lo: int
    hi: int
    slow: float
    fast: float

    def speed(self, code: int) -> float:
        if self.hi == self.lo:
            return self.fast
        return self.slow + (code - self.lo) * (self.fast - self.slow) / (self.hi - self.lo)

    def code(self, speed: float) -> int:
        """The code whose speed is nearest to ``speed`` (>= 0), within lo..hi."""
        if self.hi == self.lo or self.fast == self.slow:
            return self.hi
        c = self.lo + (abs(speed) - self.slow) * (self.hi - self.lo) / (self.fast - self.slow)
        return int(min(max(round(c), self.lo), self.hi))


@dataclass(frozen=True)
class ViscaUnits:
    """The unit table of one camera model (see the module docstring)."""

    model: str
    pan: LinearMap  # device units <-> rad (project direction)
    tilt: LinearMap
    zoom: LinearMap  # device units <-> raw zoom
    pan_speeds: SpeedCodes  # rad/s
    tilt_speeds: SpeedCodes
    zoom_speeds: SpeedCodes  # raw/s, codes 0..7

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> "ViscaUnits":
        def direction(name: str) -> float:
            value = int(settings.get(name, TABLE_SETTINGS[name][0]))
            if value not in (1, -1):
                raise DriverError(f"visca.{name} must be 1 or -1, got {value}")
            return float(value)

        def angle_map(axis: str) -> LinearMap:
            units, degrees = _pair(settings, f"{axis}_units"), _pair(settings, f"{axis}_degrees")
            if units[0] == units[1] or degrees[0] == degrees[1]:
                raise DriverError(f"visca.{axis}_units / {axis}_degrees: the two ends must differ")
            sign = direction(f"{axis}_direction")
            return LinearMap(units, (sign * math.radians(degrees[0]), sign * math.radians(degrees[1])))

        def codes(name: str, speeds: str, scale: float) -> SpeedCodes:
            lo, hi = (int(v) for v in _pair(settings, name))
            slow, fast = _pair(settings, speeds)
            if not (1 <= lo <= hi <= 0x7F and 0 < slow <= fast):
                raise DriverError(f"visca.{name} / {speeds}: need 1 <= lo <= hi <= 127 and 0 < slow <= fast")
            return SpeedCodes(lo, hi, slow * scale, fast * scale)

        zoom_units, zoom_raw = _pair(settings, "zoom_units"), _pair(settings, "zoom_raw")
        if zoom_units[0] == zoom_units[1] or zoom_raw[0] == zoom_raw[1] or min(zoom_units) < 0 \
                or max(zoom_units) > 0xFFFF:
            raise DriverError("visca.zoom_units / zoom_raw: two different ends, units within 0..FFFFh")
        z_slow, z_fast = _pair(settings, "zoom_speeds_raw_s")
        if not 0 < z_slow <= z_fast:
            raise DriverError("visca.zoom_speeds_raw_s: need 0 < slow <= fast")
        return cls(
            model=str(settings.get("model") or TABLE_SETTINGS["model"][0]),
            pan=angle_map("pan"), tilt=angle_map("tilt"), zoom=LinearMap(zoom_units, zoom_raw),
            pan_speeds=codes("pan_speed_codes", "pan_speeds_deg_s", math.pi / 180.0),
            tilt_speeds=codes("tilt_speed_codes", "tilt_speeds_deg_s", math.pi / 180.0),
            zoom_speeds=SpeedCodes(0, 7, z_slow, z_fast))

    def capabilities(self) -> PtzCapabilities:
        pan, tilt, zoom = self.pan.value_range, self.tilt.value_range, self.zoom.value_range
        return PtzCapabilities(
            pan_min=pan[0], pan_max=pan[1], tilt_min=tilt[0], tilt_max=tilt[1],
            zoom_min=zoom[0], zoom_max=zoom[1], max_pan_speed=self.pan_speeds.fast,
            max_tilt_speed=self.tilt_speeds.fast, max_zoom_speed=self.zoom_speeds.fast)

