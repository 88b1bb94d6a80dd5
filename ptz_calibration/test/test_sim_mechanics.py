"""PTZ head mechanics: motion profiles, backlash, periodic error, encoder feedback."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ptz_calibration.simulation.mechanics import Axis, AxisConfig, HarmonicError

VMAX, AMAX = 1.5, 3.0
DEG = math.pi / 180


def config(**kw) -> AxisConfig:
    base = dict(min=-170 * DEG, max=170 * DEG, max_speed=VMAX, max_accel=AMAX)
    base.update(kw)
    return AxisConfig(**base)


def sample(axis: Axis, t0: float, t1: float, n: int = 2001):
    ts = np.linspace(t0, t1, n)
    st_ = np.array([axis.state(t) for t in ts])
    return ts, st_[:, 0], st_[:, 1]


def check_limits(ts, p, v, vmax=VMAX, amax=AMAX):
    """Velocity and acceleration bounds and continuity of a sampled motor path."""
    dt = np.diff(ts)
    assert np.all(np.abs(v) <= vmax * (1 + 1e-9))
    # positions and velocities continuous (no jumps beyond the bounds)
    assert np.all(np.abs(np.diff(p)) <= vmax * dt * (1 + 1e-6) + 1e-12)
    assert np.all(np.abs(np.diff(v)) <= amax * dt * (1 + 1e-6) + 1e-12)


@pytest.mark.parametrize("distance", [0.05, 0.5, 2.0, -1.2])
def test_trapezoid_respects_limits_and_arrives(distance):
    axis = Axis(config(), t0=10.0)
    axis.move_absolute(10.0, distance)
    ts, p, v = sample(axis, 10.0, 13.0)
    check_limits(ts, p, v)
    d = abs(distance)
    expected = d / VMAX + VMAX / AMAX if d > VMAX**2 / AMAX else 2 * math.sqrt(d / AMAX)
    assert axis.arrival_time() - 10.0 == pytest.approx(expected, rel=1e-9)
    assert axis.state(axis.arrival_time()) == (pytest.approx(distance, abs=1e-12), 0.0, 0.0)
    assert not axis.moving(axis.arrival_time() + 1e-9) and axis.moving(10.0 + expected / 2)
    if d > VMAX**2 / AMAX:  # long move reaches the speed limit in the middle
        assert abs(axis.state(10.0 + expected / 2)[1]) == pytest.approx(VMAX)


def test_requested_speed_is_used():
    axis = Axis(config(), 0.0)
    axis.move_absolute(0.0, 1.0, speed=0.3)
    ts, p, v = sample(axis, 0.0, 5.0)
    assert np.abs(v).max() == pytest.approx(0.3)
    assert axis.arrival_time() == pytest.approx(1.0 / 0.3 + 0.3 / AMAX)
    axis.move_absolute(5.0, 0.0, speed=99.0)  # capped at the maximum
    ts, p, v = sample(axis, 5.0, 8.0)
    assert np.abs(v).max() == pytest.approx(VMAX)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0.0, 1.5), st.sampled_from(["abs", "rel", "vel", "stop"]),
                          st.floats(-4.0, 4.0)), min_size=1, max_size=6))
def test_random_command_sequences_stay_within_limits(commands):
    """Any sequence of commands, given at any time, gives a continuous bounded path in range."""
    cfg = config(min=-1.0, max=1.0)
    axis = Axis(cfg, 0.0)
    t = 0.0
    for gap, kind, value in commands:
        t += gap
        if kind == "abs":
            axis.move_absolute(t, value)
        elif kind == "rel":
            axis.move_relative(t, value, speed=0.7)
        elif kind == "vel":
            axis.move_velocity(t, value)
        else:
            axis.stop(t)
    ts, p, v = sample(axis, 0.0, axis.arrival_time() + 0.5, 4001)
    check_limits(ts, p, v)
    assert np.all(p >= cfg.min - 1e-9) and np.all(p <= cfg.max + 1e-9)
    assert axis.state(axis.arrival_time())[1] == 0.0


def test_reversal_mid_move_brakes_then_returns():
    axis = Axis(config(), 0.0)
    axis.move_absolute(0.0, 2.0)
    axis.move_absolute(1.0, -1.0)  # at full speed in the other direction
    ts, p, v = sample(axis, 0.0, 6.0)
    check_limits(ts, p, v)
    assert axis.state(axis.arrival_time())[0] == pytest.approx(-1.0, abs=1e-12)
    # the turning point: where braking from full speed at t=1 ends
    p1, v1, _ = axis.state(1.0)
    assert p.max() == pytest.approx(p1 + v1**2 / (2 * AMAX), abs=1e-6)


def test_velocity_mode_and_limit():
    axis = Axis(config(min=-1.0, max=1.0), 0.0)
    axis.move_velocity(0.0, 0.5)
    assert axis.state(0.5 / AMAX + 0.5) == (pytest.approx(0.5 * (0.5 / AMAX) / 2 + 0.25), 0.5, 0.0)
    # runs on to the travel limit and stops exactly there, never beyond
    ts, p, v = sample(axis, 0.0, 5.0)
    check_limits(ts, p, v)
    assert p.max() == pytest.approx(1.0, abs=1e-12) and axis.state(5.0) == (pytest.approx(1.0), 0.0, 0.0)
    axis.move_velocity(5.0, -9.0)  # clamped to max speed
    assert axis.state(5.0 + VMAX / AMAX + 0.01)[1] == pytest.approx(-VMAX)


def test_stop_brakes_at_max_deceleration():
    axis = Axis(config(), 0.0)
    axis.move_velocity(0.0, 1.2)
    axis.stop(2.0)
    p2, v2, _ = axis.state(2.0)
    assert axis.arrival_time() == pytest.approx(2.0 + v2 / AMAX)
    assert axis.state(10.0)[0] == pytest.approx(p2 + v2**2 / (2 * AMAX))
    assert axis.state(2.0 + 0.5 * v2 / AMAX)[1] == pytest.approx(0.5 * v2)


def test_limits_clamp_and_relative_moves():
    cfg = config(min=-0.5, max=0.5)
    axis = Axis(cfg, 0.0)
    axis.move_absolute(0.0, 3.0)
    assert axis.target == 0.5
    axis.move_relative(5.0, -0.3)
    assert axis.state(10.0)[0] == pytest.approx(0.2)
    with pytest.raises(ValueError):
        axis.move_absolute(4.0, 0.0)  # commands must not go back in time


def test_backlash_only_on_direction_reversal():
    b = 0.05 * DEG
    axis = Axis(config(backlash=b), 0.0)
    axis.move_absolute(0.0, 0.3)
    t = axis.arrival_time() + 0.1
    lag_up = axis.load(t) - axis.state(t)[0]
    assert lag_up == pytest.approx(-b / 2, abs=1e-15)
    # a second move in the same direction keeps the same lag: no backlash without reversal
    axis.move_absolute(t, 0.6)
    t = axis.arrival_time() + 0.1
    assert axis.load(t) - axis.state(t)[0] == pytest.approx(-b / 2, abs=1e-15)
    # reversing: the load stays put until the motor has turned by the dead band
    axis.move_absolute(t, 0.3)
    t_rev = t
    ts = np.linspace(t_rev, axis.arrival_time(), 2000)
    motor = np.array([axis.state(x)[0] for x in ts])
    load = np.array([axis.load(x) for x in ts])
    still = motor > 0.6 - b
    assert np.all(load[still] == pytest.approx(0.6 - b / 2, abs=1e-15))
    t = axis.arrival_time() + 0.1
    lag_down = axis.load(t) - axis.state(t)[0]
    assert lag_down - lag_up == pytest.approx(b, abs=1e-15)
    # same target approached from both sides: true angles differ by the backlash width
    axis.move_absolute(t, 0.5)
    t = axis.arrival_time() + 0.1
    from_below = axis.load(t)
    axis.move_absolute(t, 0.7)
    axis.move_absolute(axis.arrival_time() + 0.1, 0.5)
    t = axis.arrival_time() + 0.1
    assert axis.load(t) - from_below == pytest.approx(b, abs=1e-15)


def test_periodic_error_amplitude():
    harmonics = (HarmonicError(1, 0.03 * DEG, 0.4), HarmonicError(2, 0.01 * DEG, -1.1))
    axis = Axis(config(periodic_error=harmonics, min=-math.pi, max=math.pi), 0.0)
    angles = np.linspace(-math.pi, math.pi, 73)
    err = []
    t = 0.0
    for a in angles:
        axis.move_absolute(t, a)
        t = axis.arrival_time() + 0.01
        err.append(axis.load(t) - axis.state(t)[0])
    err = np.array(err)
    # least-squares fit of the first two harmonics recovers the configured amplitudes
    A = np.column_stack([np.sin(angles), np.cos(angles), np.sin(2 * angles), np.cos(2 * angles)])
    c, *_ = np.linalg.lstsq(A, err, rcond=None)
    assert math.hypot(c[0], c[1]) == pytest.approx(0.03 * DEG, rel=1e-9)
    assert math.hypot(c[2], c[3]) == pytest.approx(0.01 * DEG, rel=1e-9)
    assert math.atan2(c[1], c[0]) == pytest.approx(0.4, abs=1e-9)
    assert np.abs(A @ c - err).max() < 1e-15


def test_encoder_quantization_and_noise_statistics():
    step, sigma = 0.075 * DEG, 0.01 * DEG
    rng = np.random.default_rng(11)
    quant = Axis(config(encoder_step=step), 0.0)
    noisy = Axis(config(encoder_step=step, encoder_noise=sigma), 0.0)
    q_err, n_err = [], []
    t = 0.0
    for target in rng.uniform(-2.0, 2.0, 400):
        for axis in (quant, noisy):
            axis.move_absolute(t, target)
        t = max(quant.arrival_time(), noisy.arrival_time()) + 0.01
        q = quant.feedback(t)
        assert round(q / step) * step == pytest.approx(q, abs=1e-15)  # on the encoder grid
        q_err.append(q - quant.state(t)[0])
        n_err.append(noisy.feedback(t, rng) - q)
    q_err, n_err = np.array(q_err), np.array(n_err)
    assert np.abs(q_err).max() <= step / 2 + 1e-15
    assert q_err.std() == pytest.approx(step / math.sqrt(12), rel=0.15)  # uniform quantization error
    assert n_err.std() == pytest.approx(sigma, rel=0.15)
    assert abs(n_err.mean()) < 4 * sigma / math.sqrt(len(n_err))


def test_feedback_is_motor_side():
    """Feedback shows neither backlash nor periodic error (no quantization, no noise here)."""
    axis = Axis(config(backlash=0.05 * DEG, periodic_error=(HarmonicError(1, 0.03 * DEG),)), 0.0)
    axis.move_absolute(0.0, 1.0)
    axis.move_absolute(0.5, -0.4)
    for t in np.linspace(0.0, 3.0, 31):
        assert axis.feedback(t) == axis.state(t)[0]
    t = axis.arrival_time() + 1
    assert axis.feedback(t) == pytest.approx(-0.4, abs=1e-12)
    assert abs(axis.load(t) - axis.feedback(t)) > 0.0


def test_velocity_with_duration_brakes_by_itself():
    axis = Axis(config(), 0.0)
    axis.move_velocity(1.0, 0.8, duration=2.0)
    p3, v3, _ = axis.state(3.0)
    assert v3 == pytest.approx(0.8)
    assert axis.arrival_time() == pytest.approx(3.0 + 0.8 / AMAX)
    assert axis.state(10.0)[0] == pytest.approx(p3 + 0.8**2 / (2 * AMAX))
    ts, p, v = sample(axis, 1.0, 5.0)
    check_limits(ts, p, v)
    # a new command before the scheduled stop supersedes it
    axis.move_velocity(3.5, -0.5, duration=None)
    assert axis.state(6.0)[1] == pytest.approx(-0.5)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.floats(0.05, 1.0), st.floats(-1.0, 1.0)), min_size=1, max_size=5),
       st.floats(0.0, 0.05))
def test_backlash_matches_brute_force_play_operator(moves, backlash):
    """The exact dead band equals a dense step-by-step play operator on the motor path."""
    axis = Axis(config(backlash=backlash), 0.0)
    t = 0.0
    for gap, target in moves:
        axis.move_absolute(t, target)
        t += gap
    ts = np.linspace(0.0, axis.arrival_time() + 0.1, 20001)
    load = 0.0
    for x in ts:
        m = axis.state(x)[0]
        load = min(max(load, m - backlash / 2), m + backlash / 2)
    # the dense operator converges to the exact one (the path is monotone between samples)
    assert axis.load(ts[-1]) == pytest.approx(load, abs=1e-6)  # samples may miss a turning point by a*dt^2
    for x in ts[::997]:
        assert abs(axis.load(x) - axis.state(x)[0]) <= backlash / 2 + 1e-15
