"""Simulated camera temperature and thermal drift."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ptz_calibration.model import rotation_angle
from ptz_calibration.simulation.thermal import SetPoint, ThermalConfig, ThermalModel

T0 = 1000.0


def test_warm_up_follows_first_order_lag():
    cfg = ThermalConfig(ambient=18.0, self_heating=10.0, time_constant=600.0)
    th = ThermalModel(cfg, T0)
    assert th.temperature(T0) == pytest.approx(18.0)
    assert th.temperature(T0 + 600.0) == pytest.approx(18.0 + 10.0 * (1 - math.exp(-1)))
    assert th.temperature(T0 + 1e6) == pytest.approx(28.0)
    temps = [th.temperature(T0 + s) for s in np.linspace(0, 3000, 50)]
    assert np.all(np.diff(temps) > 0)


def test_setpoint_changes_are_continuous_and_settle():
    cfg = ThermalConfig(ambient=20.0, initial=25.0, self_heating=5.0, time_constant=100.0,
                        setpoints=(SetPoint(500.0, 10.0), SetPoint(200.0, 30.0)))
    th = ThermalModel(cfg, T0)
    assert th.temperature(T0) == pytest.approx(25.0)
    for ts in (200.0, 500.0):  # no jump at a set-point change
        assert th.temperature(T0 + ts - 1e-9) == pytest.approx(th.temperature(T0 + ts), abs=1e-6)
    # at 200 s still at equilibrium 25 (= 20 + 5), then three time constants towards 35
    assert th.temperature(T0 + 500.0) == pytest.approx(35.0 - 10.0 * math.exp(-3.0))
    assert th.temperature(T0 + 5000.0) == pytest.approx(15.0)


@pytest.mark.parametrize("delta", [-10.0, -1.0, 0.0, 2.5, 12.0])
def test_drift_is_linear_in_temperature(delta):
    bx, by, ppm = 2e-6, -3e-6, 15.0
    cfg = ThermalConfig(ambient=20.0 + delta, calibration_temperature=20.0,
                        boresight_x=bx, boresight_y=by, focal_ppm=ppm)
    th = ThermalModel(cfg, T0)
    assert th.delta(T0 + 5.0) == pytest.approx(delta)
    r = th.rotation(T0 + 5.0)
    assert np.allclose(r @ r.T, np.eye(3), atol=1e-14)
    assert float(rotation_angle(r)) == pytest.approx(math.hypot(bx, by) * abs(delta), rel=1e-6, abs=1e-15)
    # small-angle components: rotation about optical x, then y
    assert r[2, 1] == pytest.approx(bx * delta, rel=1e-6, abs=1e-15)
    assert r[0, 2] == pytest.approx(by * delta, rel=1e-6, abs=1e-15)
    assert th.focal_scale(T0 + 5.0) == pytest.approx(1.0 + ppm * 1e-6 * delta, rel=1e-15)


def test_reported_temperature_quantized_and_noisy():
    cfg = ThermalConfig(ambient=21.37, sensor_step=0.5, sensor_noise=0.0)
    th = ThermalModel(cfg, T0)
    assert th.reported(T0 + 1.0) == 21.5
    noisy = ThermalModel(ThermalConfig(ambient=21.37, sensor_noise=0.2), T0)
    rng = np.random.default_rng(0)
    values = np.array([noisy.reported(T0, rng) for _ in range(2000)])
    assert values.std() == pytest.approx(0.2, rel=0.1)
    assert values.mean() == pytest.approx(21.37, abs=0.02)
