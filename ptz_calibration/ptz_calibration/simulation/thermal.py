"""Camera temperature over time and the small geometric drift it causes.

The housing temperature follows a first-order lag towards ``ambient + self_heating`` with time
constant ``time_constant``; the ambient may step at given times (set-point changes). Relative to
the calibration temperature ``T_cal`` the camera then shows

* a boresight rotation of the optical frame: ``Rx(boresight_x * dT) @ Ry(boresight_y * dT)``,
  ``X_nominal_optical = R_drift @ X_actual_optical`` (rad per deg C about optical x and y);
* a focal-length scale ``1 + focal_ppm * 1e-6 * dT`` (fx and fy).

Both are linear in ``dT = T - T_cal``. Time is in seconds, relative to the start ``t0``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..model.rotations import axis_angle_matrix

__all__ = ["SetPoint", "ThermalConfig", "ThermalModel"]


@dataclass(frozen=True)
class SetPoint:
    """A step of the ambient temperature at ``time`` seconds after the start."""

    time: float  # s after start
    ambient: float  # deg C


@dataclass(frozen=True)
class ThermalConfig:
    """Temperature behaviour and thermal drift coefficients of one camera."""

    ambient: float = 20.0  # deg C at the start
    initial: Optional[float] = None  # camera temperature at the start, deg C (None: ambient)
    self_heating: float = 0.0  # steady-state rise over ambient, deg C
    time_constant: float = 600.0  # warm-up time constant, s
    setpoints: tuple[SetPoint, ...] = ()  # later ambient changes
    calibration_temperature: float = 20.0  # temperature at which the model is exact, deg C
    boresight_x: float = 0.0  # rad per deg C about the optical x axis (pointing up/down)
    boresight_y: float = 0.0  # rad per deg C about the optical y axis (pointing left/right)
    focal_ppm: float = 0.0  # focal length change, ppm per deg C
    sensor_step: float = 0.0  # quantization of the reported temperature, deg C (0 = none)
    sensor_noise: float = 0.0  # noise of the reported temperature, deg C

    def __post_init__(self) -> None:
        if not self.time_constant > 0:
            raise ValueError(f"time_constant must be > 0, got {self.time_constant}")
        if self.sensor_step < 0 or self.sensor_noise < 0:
            raise ValueError("sensor_step and sensor_noise must be >= 0")
        points = tuple(sorted(self.setpoints, key=lambda s: s.time))
        if any(s.time < 0 for s in points):
            raise ValueError("set-point times must be >= 0")
        object.__setattr__(self, "setpoints", points)

    @property
    def drifts(self) -> bool:
        """True if temperature changes move the geometry at all."""
        return bool(self.boresight_x or self.boresight_y or self.focal_ppm)

    def drift_rotation(self, temperature: float) -> np.ndarray:
        """Boresight drift ``R_drift`` at a camera temperature (identity at the calibration
        temperature; ``X_nominal_optical = R_drift @ X_actual_optical``)."""
        d = float(temperature) - self.calibration_temperature
        return axis_angle_matrix([1.0, 0.0, 0.0], self.boresight_x * d) @ axis_angle_matrix(
            [0.0, 1.0, 0.0], self.boresight_y * d)


class ThermalModel:
    """Temperature and drift of one camera as functions of (absolute) time."""

    def __init__(self, config: ThermalConfig, t0: float):
        self.config = config
        self.t0 = t0
        c = config
        # piecewise exponential: (start time, start temperature, ambient) per interval
        temp = c.ambient if c.initial is None else c.initial
        self._pieces = [(0.0, temp, c.ambient)]
        for sp in c.setpoints:
            start, t_start, amb = self._pieces[-1]
            self._pieces.append((sp.time, self._lag(t_start, amb, sp.time - start), sp.ambient))

    def _lag(self, temp0: float, ambient: float, dt: float) -> float:
        target = ambient + self.config.self_heating
        return target + (temp0 - target) * math.exp(-dt / self.config.time_constant)

    def temperature(self, t: float) -> float:
        """Camera temperature at absolute time ``t``, deg C."""
        rel = max(t - self.t0, 0.0)
        start, temp0, amb = self._pieces[0]
        for piece in self._pieces[1:]:
            if piece[0] > rel:
                break
            start, temp0, amb = piece
        return self._lag(temp0, amb, rel - start)

    def delta(self, t: float) -> float:
        """Temperature minus the calibration temperature, deg C."""
        return self.temperature(t) - self.config.calibration_temperature

    def rotation(self, t: float) -> np.ndarray:
        """Boresight drift ``R_drift`` at ``t`` (:meth:`ThermalConfig.drift_rotation`)."""
        return self.config.drift_rotation(self.temperature(t))

    def focal_scale(self, t: float) -> float:
        """Factor applied to fx and fy."""
        return 1.0 + self.config.focal_ppm * 1e-6 * self.delta(t)

    def reported(self, t: float, rng: Optional[np.random.Generator] = None) -> float:
        """What the camera's temperature sensor reports (quantized, noisy)."""
        c = self.config
        value = self.temperature(t)
        if c.sensor_noise > 0:
            if rng is None:
                raise ValueError("a noisy temperature sensor needs an rng")
            value += c.sensor_noise * rng.standard_normal()
        if c.sensor_step > 0:
            value = round(value / c.sensor_step) * c.sensor_step
        return float(value)
