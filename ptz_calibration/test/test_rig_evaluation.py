"""The rig evaluated as the nodes use it (``calibration.rig_evaluation``), and the simulator pieces
under it: the settled load of a head (backlash and gear error), the feedback averaged at rest in
the capture protocol, the thermal drift in a calibrated model's home frame.

* The evaluation is exact where it must be: the simulator's true models with their true pointing
  maps (built from the heads' mechanics) and true thermal layers give the same extrinsics as the
  truth at 200 reported settings (within 1e-4 deg: the gear error taken at the reported instead of
  the load angle), and without pixel noise the same points; the true models WITHOUT maps show the
  heads' gear error and backlash (0.05 deg median), and a home turned by 0.01 deg is seen at
  20-30 m as > 0.5 % of the range.
* One feedback read carries the encoder noise (0.004 deg); the protocol's 10 reads at rest cut it
  by ~3 (measured std ratio 0.3).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from calib_fixtures import true_pointing_map
from ptz_calibration.calibration.capture_protocol import ProtocolOptions, SimClock, feedback_at_rest
from ptz_calibration.calibration.correction_sweeps import reported_home_frame
from ptz_calibration.calibration.rig_evaluation import (
    SimulatedRigTruth,
    localization_at_rest,
    runtime_extrinsics_errors,
)
from ptz_calibration.corrections import CorrectionLayers, apply
from ptz_calibration.model.rotations import axis_angle_matrix, rotation_angle
from ptz_calibration.simulation import SimulatedPtzCamera, load_rig


@pytest.fixture(scope="module")
def sim():
    return load_rig(None)


@pytest.fixture(scope="module")
def truth(sim):
    return SimulatedRigTruth.of(sim, "left", "right")


@pytest.fixture(scope="module")
def ideal(sim, truth):
    """The true rig with each head's true pointing map and thermal drift: what a perfect
    calibration and characterization would give."""
    def mapped(model):
        layers = CorrectionLayers(pointing=true_pointing_map(sim, model.camera_name), thermal=apply.layers_of(model).thermal)
        return dataclasses.replace(model, corrections=layers)

    return dataclasses.replace(truth.rig, left=mapped(truth.rig.left), right=mapped(truth.rig.right))


def test_settled_load_is_where_the_simulated_head_stops(sim):
    clock = SimClock()
    cam = SimulatedPtzCamera(sim.cameras["left"], sim.scene, seed=0, clock=clock)
    pan_axis = sim.cameras["left"].mechanics.pan
    for target, direction in ((0.3, 1.0), (-0.2, -1.0), (0.5, 1.0), (0.1, -1.0)):
        cam.move_absolute(target - direction * 0.02, None, None)
        clock.advance_to(cam.arrival_time())
        cam.move_absolute(target, None, None)
        clock.advance_to(cam.arrival_time() + 0.5)
        state = cam.true_state()  # the motor stops on the command grid
        assert float(pan_axis.settled_load(state.pan_motor, direction)) == pytest.approx(state.pan, abs=1e-12)
    # batched, and the dead band's two sides are a backlash apart (plus the gear error's change)
    both = pan_axis.settled_load(np.array([0.3, 0.3]), np.array([1.0, -1.0]))
    assert abs(both[1] - both[0] - pan_axis.backlash) < 1e-5


def test_the_true_rig_with_its_true_layers_evaluates_as_exact(sim, truth, ideal):
    ev = runtime_extrinsics_errors(ideal, truth)
    print(f"\ntrue layers: rotation max {ev['rotation_error_deg']['max']:.2e} deg, translation max "
          f"{ev['translation_error_pct']['max']:.2e} %")
    assert ev["pairs"] == 200 and len(ev["per_pair"][0]["left"]) == 6  # pan, tilt, zoom, directions, temperature
    assert ev["rotation_error_deg"]["max"] < 1e-4 and ev["translation_error_pct"]["max"] < 1e-3
    # without the maps the heads' backlash and gear error show (0.05 deg backlash, 0.03 deg harmonics)
    bare = runtime_extrinsics_errors(truth.rig, truth)
    assert bare["rotation_error_deg"]["median"] > 0.02
    # and the true angles come from the mechanics: a head reporting home is at its load home offset
    np.testing.assert_allclose(truth.true_angles("left", np.zeros((1, 2)), np.ones((1, 2))), 0.0, atol=1e-12)


def test_localization_at_rest_of_the_true_rig_and_of_a_turned_home(truth, ideal):
    exact = localization_at_rest(ideal, truth, n=60, pixel_sigma=1e-6)
    assert exact["localized"] == 60 and exact["error_pct"]["max"] < 0.01
    noisy = localization_at_rest(ideal, truth, n=150)
    print(f"\n0.3 px noise alone: {noisy['error_pct']}")
    assert noisy["error_pct"]["median"] < 0.2 and noisy["error_pct"]["max"] < 0.6
    # the same targets with their true pixels: the rig's own share, none for the true rig
    assert noisy["exact_pixels_error_pct"]["max"] < 0.01
    # the home turned by 0.01 deg about the optical y axis: the depth at 25 m moves by ~0.5 m (2 %)
    turned = dataclasses.replace(ideal, home_R=ideal.home_R @ axis_angle_matrix([0.0, 1.0, 0.0], math.radians(0.01)))
    far = localization_at_rest(turned, truth, n=60, range_m=(20.0, 30.0))
    assert far["error_pct"]["median"] > 0.5


def test_feedback_at_rest_averages_the_encoder_noise(sim):
    clock = SimClock()
    cam = SimulatedPtzCamera(sim.cameras["left"], sim.scene, seed=4, clock=clock)
    cam.move_absolute(0.2, 0.1, None)
    clock.advance_to(cam.arrival_time() + 1.0)
    t0 = clock()
    single = np.array([cam.feedback(t0 + 0.5 * k).pan for k in range(200)])
    averaged = np.array([feedback_at_rest(cam, t0 + 0.5 * k, ProtocolOptions().feedback_readings).pan
                         for k in range(200)])
    ratio = averaged.std() / single.std()
    print(f"\nencoder noise of one read {math.degrees(single.std()):.4f} deg, of 10 averaged reads: ratio {ratio:.2f}")
    assert single.std() > 0.5 * sim.cameras["left"].mechanics.pan.encoder_noise
    assert ratio < 0.45  # 1 / sqrt(10) = 0.32


def test_a_calibrated_models_home_frame_holds_its_images_thermal_drift(sim):
    config = sim.cameras["right"].thermal
    r_cold, t_cold = reported_home_frame(sim, "right", 21.0)
    r_ref, t_ref = reported_home_frame(sim, "right", None)
    np.testing.assert_allclose(t_cold, config.drift_rotation(21.0).T @ t_ref, atol=1e-12)
    turn = math.degrees(rotation_angle(r_cold @ r_ref.T))
    expected = math.degrees(math.hypot(config.boresight_x, config.boresight_y) * (config.calibration_temperature - 21.0))
    assert turn == pytest.approx(expected, rel=1e-3)
    assert reported_home_frame(sim, "right", config.calibration_temperature)[0] == pytest.approx(r_ref, abs=1e-15)


def test_corrected_angles_of_a_batch_match_one_by_one(ideal):
    rng = np.random.default_rng(2)
    pan, tilt = rng.uniform(-1, 1, 5), rng.uniform(-0.3, 0.5, 5)
    d = rng.choice([-1.0, 1.0], (5, 2))
    p, t = apply.corrected_angles(ideal.left, pan, tilt, d[:, 0], d[:, 1])
    for k in range(5):
        one = apply.corrected_angles(ideal.left, pan[k], tilt[k], d[k, 0], d[k, 1])
        assert isinstance(one[0], float) and (p[k], t[k]) == pytest.approx(one, abs=1e-15)
