"""ptz_driver (sim backend) with correction layers in its model, over real DDS: the TF chain it
publishes at maximum zoom points where the simulated camera really points, closer than the same
model without its layers (backlash by direction of approach, gear error, thermal drift)."""

import dataclasses
import math
import time

import numpy as np
import pytest

from conftest import Recorder, unique_name, wait_until

pytestmark = [pytest.mark.ros, pytest.mark.slow]

CAMERA = "left"


@pytest.fixture(scope="module")
def setup(ros_context, spinner, probe, tmp_path_factory):
    from ptz_calibration_msgs.msg import PtzState
    from rclpy.parameter import Parameter
    from tf2_msgs.msg import TFMessage

    from ptz_calibration.calibration.correction_sweeps import correct_on_simulator
    from ptz_calibration.drivers.simulated import default_rig_file
    from ptz_calibration.model import save_model
    from ptz_calibration.nodes.ptz_driver import PtzDriverNode
    from ptz_calibration.nodes.tf_broadcaster import TF_QOS
    from ptz_calibration.simulation import load_rig

    rig = load_rig(default_rig_file())
    spec = rig.cameras[CAMERA]
    measured = correct_on_simulator(spec, rig.scene, spec.model, held_out=10)  # the true model as base
    model = dataclasses.replace(spec.model, corrections=measured.layers)
    path = save_model(model, tmp_path_factory.mktemp("corr") / "left_corrected.yaml")
    prefix = unique_name("corr") + "_"
    node = spinner.add(PtzDriverNode(unique_name("driver"), context=ros_context, parameter_overrides=[
        Parameter("camera_name", value=CAMERA),
        Parameter("backend", value="sim"),
        Parameter("calibration_url", value=f"file://{path}"),
        Parameter("frame_prefix", value=prefix),
        Parameter("publish_images", value=False),
    ]))
    mine = prefix + CAMERA

    class S:
        pass
    s = S()
    s.node, s.model, s.plain = node, model, spec.model
    s.frames = node.camera.frames
    s.sim = node.driver._cam()  # the simulated camera behind the backend: the ground truth
    s.tf = Recorder(probe, TFMessage, "/tf", TF_QOS,
                    keep=lambda m: any(t.header.frame_id.startswith(mine) for t in m.transforms))
    s.states = Recorder(probe, PtzState, f"/{node.get_name()}/ptz_state", 100)
    assert s.states.wait_for(count=5, timeout=30.0)
    return s


def optical_axis_errors(s, state, chain_links):
    """(published chain, plain model) optical-axis angles to the truth at the state's stamp, rad."""
    from ptz_calibration.model import BODY_FROM_OPTICAL, compose
    from ptz_calibration.nodes.conversions import transform_to_matrix

    order = s.frames.moving_order(s.model.kinematics.order)
    r = np.eye(3)
    t = np.zeros(3)
    for parent, child in zip(order[:-1], order[1:]):
        r, t = compose(r, t, *transform_to_matrix(chain_links[(parent, child)]))
    stamp = state.header.stamp.sec + state.header.stamp.nanosec * 1e-9
    r_world, _ = s.sim.true_pose_world(stamp)
    true_axis = s.sim.spec.home_R.T @ r_world[:, 2]  # in the home frame
    published = BODY_FROM_OPTICAL.T @ r[:, 2]
    plain = s.plain.pose(state.pan, state.tilt, state.zoom_raw)[0][:, 2]
    angle = lambda a, b: math.acos(min(1.0, float(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b))))  # noqa: E731
    return angle(published, true_axis), angle(plain, true_axis)


def test_published_tf_with_layers_is_closer_to_the_truth(setup):
    s = setup
    rng = np.random.default_rng(4)
    zmax = s.plain.zoom_mapping.raw_max
    step = s.sim.spec.mechanics.pan.command_step
    corrected, plain = [], []
    for _ in range(8):
        pan = round(rng.uniform(-2.5, 2.5) / step) * step
        tilt = round(rng.uniform(-0.2, 0.8) / step) * step
        dp, dt = rng.choice([-1, 1]), rng.choice([-1, 1])
        # approach from the chosen side of each axis, as a tracker's moves do
        s.node.driver.move_absolute(pan - dp * 0.02, tilt - dt * 0.02, zmax)
        time.sleep(max(0.0, s.sim.arrival_time() - time.time()) + 0.2)
        s.node.driver.move_absolute(pan, tilt, zmax)
        time.sleep(max(0.0, s.sim.arrival_time() - time.time()) + 0.4)
        state = s.states.messages[-1]
        assert not state.moving
        key = (state.header.stamp.sec, state.header.stamp.nanosec)

        def links():
            out = {}
            for msg in s.tf.messages:
                for tf in msg.transforms:
                    if (tf.header.stamp.sec, tf.header.stamp.nanosec) == key:
                        out[(tf.header.frame_id, tf.child_frame_id)] = tf
            return out if len(out) == 3 else None
        assert wait_until(links, 5.0), "no TF chain with the state's stamp"
        a, b = optical_axis_errors(s, state, links())
        corrected.append(a)
        plain.append(b)
    corrected, plain = np.degrees(corrected), np.degrees(plain)
    # measured: plain model 0.02-0.06 deg (backlash, gear error, thermal drift at ~21 deg C against
    # a model exact at 30 deg C); with the layers <= 0.01 deg (encoder noise 0.004 deg per axis)
    assert np.sqrt(np.mean(corrected ** 2)) <= np.sqrt(np.mean(plain ** 2)) / 3.0, (corrected, plain)
    assert corrected.max() < 0.02, corrected
