"""Command checking and clamping, and the mock device (pure: no rclpy)."""

import math

import pytest

from ptz_calibration.drivers import DriverConnectionError, PtzCapabilities, PtzFeedback, create_driver
from ptz_calibration.drivers.command import (
    CommandError,
    plan_absolute,
    plan_relative,
    plan_velocity,
    remaining_angle,
    travel_time,
)

CAPS = PtzCapabilities(pan_min=-3.0, pan_max=3.0, tilt_min=-0.5, tilt_max=1.5, zoom_min=0.0, zoom_max=16384.0,
                       max_pan_speed=1.5, max_tilt_speed=1.2, max_zoom_speed=6000.0)
NAN = math.nan


def test_absolute_moves_are_clamped_with_notes():
    move = plan_absolute(CAPS, 3.5, -1.0, 20000.0, pan_speed=2.0, tilt_speed=0.5)
    assert (move.pan, move.tilt, move.zoom_raw) == (3.0, -0.5, 16384.0)
    assert (move.pan_speed, move.tilt_speed) == (1.5, 0.5)
    assert len(move.notes) == 4 and "pan 3.5 rad clamped to 3" in move.notes[0]
    inside = plan_absolute(CAPS, 0.2, NAN, NAN)
    assert inside.pan == 0.2 and math.isnan(inside.tilt) and math.isnan(inside.zoom_raw) and not inside.notes
    assert inside.pan_speed is None  # 0/None = the device default


@pytest.mark.parametrize("args,match", [
    ((math.inf, 0.0, 0.0), "pan must be finite"),
    ((NAN, NAN, NAN), "nothing to move"),
    ((0.0, 0.0, 0.0, -1.0), "pan_speed must be a positive"),
    ((0.0, 0.0, 0.0, NAN), "pan_speed"),
])
def test_absolute_moves_refused(args, match):
    with pytest.raises(CommandError, match=match):
        plan_absolute(CAPS, *args)


def test_relative_moves_start_from_the_current_position():
    here = PtzFeedback(pan=2.9, tilt=0.1, zoom_raw=1000.0, stamp=1.0)
    move = plan_relative(CAPS, here, 0.3, NAN, 500.0)
    assert move.pan == 3.0 and math.isnan(move.tilt) and move.zoom_raw == 1500.0 and len(move.notes) == 1
    with pytest.raises(CommandError, match="current position is unknown"):
        plan_relative(CAPS, PtzFeedback(pan=NAN, tilt=0.0, zoom_raw=0.0, stamp=1.0), 0.1, 0.0, 0.0)


def test_velocity_rates_nan_is_zero_and_clamped():
    move = plan_velocity(CAPS, NAN, -5.0, 100.0, duration=0.0)
    assert (move.pan_rate, move.tilt_rate, move.zoom_rate, move.duration) == (0.0, -1.2, 100.0, None)
    assert plan_velocity(CAPS, 0.1, 0.0, 0.0, duration=2.5).duration == 2.5
    for bad in (-1.0, NAN):
        with pytest.raises(CommandError, match="duration"):
            plan_velocity(CAPS, 0.1, 0.0, 0.0, duration=bad)


def test_remaining_angle_and_travel_time():
    here = PtzFeedback(pan=0.0, tilt=0.0, zoom_raw=0.0, stamp=1.0)
    assert remaining_angle(here, 0.3, 0.4) == pytest.approx(0.5, abs=1e-15)
    assert remaining_angle(here, NAN, 0.4) == pytest.approx(0.4, abs=1e-15)
    move = plan_absolute(CAPS, 1.5, 0.0, 12000.0)
    assert travel_time(CAPS, here, move) == pytest.approx(2.0, abs=1e-12)  # zoom: 12000 / 6000


def test_mock_device_moves_at_constant_speed_and_replays_injected_samples():
    t = [100.0]
    from ptz_calibration.drivers.mock import MockPtzDriver

    dev = MockPtzDriver(clock=lambda: t[0])
    with pytest.raises(DriverConnectionError):
        dev.read_state()
    dev.connect()
    dev.move_absolute(0.75, NAN, 4000.0, pan_speed=0.5)
    t[0] += 1.0
    fb = dev.read_state()
    assert (fb.pan, fb.tilt, fb.zoom_raw, fb.stamp) == (0.5, 0.0, 4000.0, 101.0)
    assert fb.moving and fb.pan_velocity == 0.5
    t[0] += 1.0
    assert dev.read_state().pan == 0.75 and not dev.read_state().moving
    dev.inject(PtzFeedback(pan=NAN, tilt=0.0, zoom_raw=0.0, stamp=0.0))
    injected = dev.read_state()
    assert math.isnan(injected.pan) and injected.stamp == 102.0  # stamp 0 = now
    assert dev.read_state().pan == 0.75
    dev.fail_reads(1)
    with pytest.raises(DriverConnectionError):
        dev.read_state()
    frame = dev.capture()
    assert frame.image.shape == (240, 320) and frame.stamp == 102.0
    assert create_driver("mock", {"max_pan_speed": 0.3}).capabilities.max_pan_speed == 0.3
