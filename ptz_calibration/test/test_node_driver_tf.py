"""ptz_driver (sim backend, the rig's true model as calibration) over real DDS.

For every PtzState received, the TF chain on /tf with the same stamp composes to the model pose
of the reported feedback, and the CameraInfo with the same stamp has the model's K at the
reported zoom. Commands go through ~/cmd and the ~/move_to action.
"""

import math
import time

import numpy as np
import pytest

from conftest import Recorder, unique_name, wait_until

pytestmark = pytest.mark.ros

CAMERA = "left"
MOUNT_XYZ = [0.0, 0.25, 0.0]
MOUNT_RPY = [0.0015, -0.0021, 0.0032]
POSE_TOL = 1e-9  # composed TF vs the model pose (m and rotation matrix entries)


def stamp_key(stamp):
    return (stamp.sec, stamp.nanosec)


@pytest.fixture(scope="module")
def rig():
    from ptz_calibration.drivers.simulated import default_rig_file
    from ptz_calibration.simulation import load_rig

    return load_rig(default_rig_file())


@pytest.fixture(scope="module")
def model(rig):
    return rig.cameras[CAMERA].model


@pytest.fixture(scope="module")
def driver(ros_context, spinner, probe, rig):
    """A running ptz_driver and recorders of everything it publishes."""
    from ptz_calibration_msgs.action import MoveTo
    from ptz_calibration_msgs.msg import PtzCommand, PtzState
    from rclpy.action import ActionClient
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import CameraInfo, JointState
    from tf2_msgs.msg import TFMessage

    from ptz_calibration.drivers.simulated import package_config_file
    from ptz_calibration.nodes.ptz_driver import PtzDriverNode
    from ptz_calibration.nodes.tf_broadcaster import TF_QOS

    prefix = unique_name("tf") + "_"  # our frames only: other runs may share the DDS domain
    name = unique_name("driver")
    node = spinner.add(PtzDriverNode(name, context=ros_context, parameter_overrides=[
        Parameter("camera_name", value=CAMERA),
        Parameter("backend", value="sim"),
        Parameter("calibration_url", value=f"file://{package_config_file('sim_left_model.yaml')}"),
        Parameter("frame_prefix", value=prefix),
        Parameter("parent_frame", value=prefix + "rig"),
        Parameter("mount.xyz", value=MOUNT_XYZ),
        Parameter("mount.rpy", value=MOUNT_RPY),
        Parameter("publish_images", value=False),
        Parameter("state_rate", value=50.0),
    ]))
    mine = prefix + CAMERA
    ns = f"/{name}"

    class D:
        pass
    d = D()
    d.node, d.ns, d.frames = node, ns, node.camera.frames
    d.tf = Recorder(probe, TFMessage, "/tf", TF_QOS,
                    keep=lambda m: any(t.header.frame_id.startswith(mine) for t in m.transforms))
    d.states = Recorder(probe, PtzState, f"{ns}/ptz_state", 100)
    d.infos = Recorder(probe, CameraInfo, f"{ns}/camera_info", 100)
    d.joints = Recorder(probe, JointState, f"{ns}/joint_states", 100)
    d.cmd = probe.create_publisher(PtzCommand, f"{ns}/cmd", 10)
    d.move_to = ActionClient(probe, MoveTo, f"{ns}/move_to")
    assert d.states.wait_for(count=5, timeout=30.0), "no ptz_state from the driver"
    assert d.move_to.wait_for_server(timeout_sec=20.0)
    assert wait_until(lambda: d.cmd.get_subscription_count() > 0, 20.0)
    return d


def command(mode, pan=math.nan, tilt=math.nan, zoom=math.nan, magnification=False, **kw):
    from ptz_calibration_msgs.msg import PtzCommand

    msg = PtzCommand(mode=mode, pan=float(pan), tilt=float(tilt), zoom=float(zoom), zoom_is_magnification=magnification)
    for key, value in kw.items():
        setattr(msg, key, float(value))
    return msg


def settled_at(d, pan, tilt, zoom=None, tol=3e-3, ztol=25.0, timeout=30.0):
    """Wait until the reported state is still and within tolerance of (pan, tilt, zoom)."""
    def ok():
        msgs = d.states.messages
        if not msgs:
            return False
        s = msgs[-1]
        return (not s.moving and abs(s.pan - pan) <= tol and abs(s.tilt - tilt) <= tol
                and (zoom is None or abs(s.zoom_raw - zoom) <= ztol))
    return wait_until(ok, timeout)


def run_goal(probe_client, goal, cancel_after=None, timeout=30.0):
    """Send a MoveTo goal; return (status, result, feedback list)."""
    feedback = []
    future = probe_client.send_goal_async(goal, feedback_callback=lambda f: feedback.append(f.feedback))
    assert wait_until(future.done, 20.0), "goal not answered"
    handle = future.result()
    assert handle.accepted
    if cancel_after is not None:
        time.sleep(cancel_after)
        cancel = handle.cancel_goal_async()
        assert wait_until(cancel.done, 20.0)
    result = handle.get_result_async()
    assert wait_until(result.done, timeout), "no result"
    return result.result().status, result.result().result, feedback


@pytest.fixture(scope="module")
def moves(driver, model):
    """Drive the head through several pan/tilt/zoom settings with ~/cmd and ~/move_to."""
    from ptz_calibration_msgs.action import MoveTo
    from ptz_calibration_msgs.msg import PtzCommand

    d = driver
    d.cmd.publish(command(PtzCommand.MODE_ABSOLUTE, 0.35, 0.15, 6000.0))
    assert settled_at(d, 0.35, 0.15, 6000.0), f"did not reach the ~/cmd target: {d.states.messages[-1]}"
    goal = MoveTo.Goal(pan=-0.2, tilt=0.4, zoom=3.0, zoom_is_magnification=True)
    status, result, feedback = run_goal(d.move_to, goal)
    d.goal_outcome = (status, result, feedback)
    d.cmd.publish(command(PtzCommand.MODE_RELATIVE, 0.1, math.nan, -2000.0))
    target_zoom = model.zoom_mapping.raw(3.0) - 2000.0
    assert settled_at(d, -0.1, 0.4, target_zoom), f"relative move: {d.states.messages[-1]}"
    time.sleep(0.3)  # let the last TF and CameraInfo arrive
    return d


def test_tf_chain_of_every_state_is_the_model_pose(moves, model):
    from ptz_calibration.model import BODY_FROM_OPTICAL, compose
    from ptz_calibration.nodes.conversions import transform_to_matrix

    d = moves
    chain = d.frames.moving_order(model.kinematics.order)
    links = {}
    for msg in d.tf.messages:
        for tf in msg.transforms:
            links.setdefault(stamp_key(tf.header.stamp), {})[(tf.header.frame_id, tf.child_frame_id)] = tf
    states = d.states.messages
    assert len(states) >= 40, f"{len(states)} states over the moves (50 Hz expected), {d.node.geometry.stats}"
    checked, zooms, worst = 0, set(), 0.0
    for state in states:
        got = links.get(stamp_key(state.header.stamp))
        if got is None:
            continue
        r, t = np.eye(3), np.zeros(3)
        for parent, child in zip(chain[:-1], chain[1:]):
            r, t = compose(r, t, *transform_to_matrix(got[(parent, child)]))
        r_model, t_model = model.pose(state.pan, state.tilt, state.zoom_raw)
        worst = max(worst, np.abs(r - BODY_FROM_OPTICAL @ r_model).max(), np.abs(t - BODY_FROM_OPTICAL @ t_model).max())
        checked += 1
        zooms.add(state.zoom_raw)
    assert checked >= 0.98 * len(states), f"only {checked} of {len(states)} states have their TF chain"
    assert worst <= POSE_TOL, f"composed TF differs from the model pose by {worst:.3g}"
    assert len(zooms) >= 8, "the moves should cover many zoom settings"
    pans = [s.pan for s in states]
    assert max(pans) - min(pans) > 0.5
    assert all(s.header.frame_id == d.frames.mount and s.camera_name == CAMERA for s in states)


def test_camera_info_follows_the_zoom_curve(moves, model):
    d = moves
    infos = {stamp_key(m.header.stamp): m for m in d.infos.messages}
    states = d.states.messages
    matched = [(s, infos[stamp_key(s.header.stamp)]) for s in states if stamp_key(s.header.stamp) in infos]
    assert len(matched) >= 0.98 * len(states)
    fx = []
    for state, info in matched:
        k = model.camera_matrix(state.zoom_raw)
        np.testing.assert_allclose(np.reshape(info.k, (3, 3)), k, rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(np.reshape(info.p, (3, 4))[:, :3], k, rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(np.reshape(info.p, (3, 4))[:, 3], 0.0, atol=0.0)
        np.testing.assert_allclose(info.d, model.distortion(state.zoom_raw), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(info.r, np.eye(3).reshape(9), atol=0.0)
        fx.append(k[0, 0])
        if not math.isnan(state.zoom_magnification):
            assert abs(state.zoom_magnification - model.zoom_mapping.magnification(state.zoom_raw)) < 1e-12
    info = matched[-1][1]
    assert (info.width, info.height) == (model.image_width, model.image_height)
    assert info.distortion_model == "plumb_bob" and info.header.frame_id == d.frames.optical
    assert max(fx) / min(fx) > 1.5, "K must follow the zoom: several focal lengths expected"


def test_joint_states_carry_the_feedback(moves):
    d = moves
    joints = {stamp_key(m.header.stamp): m for m in d.joints.messages}
    matched = 0
    for state in d.states.messages:
        j = joints.get(stamp_key(state.header.stamp))
        if j is None:
            continue
        assert list(j.name) == [f"{CAMERA}_pan_joint", f"{CAMERA}_tilt_joint"]
        assert list(j.position) == [state.pan, state.tilt]
        matched += 1
    assert matched >= 0.98 * len(d.states.messages)


def test_move_to_succeeds_with_decreasing_remaining_angle(moves, model):
    from action_msgs.msg import GoalStatus

    status, result, feedback = moves.goal_outcome
    assert status == GoalStatus.STATUS_SUCCEEDED, result.message
    assert result.success and result.message.startswith("arrived")
    final = result.final_state
    assert abs(final.pan + 0.2) <= 2e-3 and abs(final.tilt - 0.4) <= 2e-3
    assert abs(final.zoom_raw - model.zoom_mapping.raw(3.0)) <= 20.0
    assert abs(final.zoom_magnification - 3.0) < 0.01
    remaining = [f.remaining_angle for f in feedback]
    assert len(remaining) >= 5 and remaining[0] > 0.3 and remaining[-1] <= 2e-3
    assert remaining[len(remaining) // 2] < remaining[0]


def test_move_to_cancel_stops_the_head(moves):
    from action_msgs.msg import GoalStatus
    from ptz_calibration_msgs.action import MoveTo

    d = moves
    start = d.states.messages[-1].pan
    status, result, _ = run_goal(d.move_to, MoveTo.Goal(pan=start + 1.0, tilt=0.4, zoom=math.nan, pan_speed=0.3),
                                 cancel_after=0.4)
    assert status == GoalStatus.STATUS_CANCELED and not result.success
    time.sleep(0.5)  # braking
    a = d.states.messages[-1].pan
    time.sleep(0.3)
    b = d.states.messages[-1].pan
    assert abs(b - a) < 3e-3, "the head must stand still after a cancel"
    assert a - start < 0.9, "it stopped before the goal"


def test_move_to_times_out_and_aborts(moves):
    from action_msgs.msg import GoalStatus
    from ptz_calibration_msgs.action import MoveTo

    d = moves
    start = d.states.messages[-1].pan
    status, result, _ = run_goal(d.move_to, MoveTo.Goal(pan=start - 1.0, tilt=0.4, zoom=math.nan, timeout=0.3))
    assert status == GoalStatus.STATUS_ABORTED and "timeout" in result.message, result.message


def test_tf_static_has_the_mount_in_one_latched_message(moves, probe):
    from tf2_msgs.msg import TFMessage

    from ptz_calibration.model import rpy_matrix
    from ptz_calibration.nodes.conversions import transform_to_matrix
    from ptz_calibration.nodes.tf_broadcaster import TF_STATIC_QOS

    d = moves
    # A late subscriber (the node has been up for seconds) still gets it: transient local.
    late = Recorder(probe, TFMessage, "/tf_static", TF_STATIC_QOS,
                    keep=lambda m: any(t.child_frame_id == d.frames.mount for t in m.transforms))
    msgs = late.wait_for(timeout=20.0)
    probe.destroy_subscription(late.subscription)
    assert len(msgs) == 1, "one latched message with all static transforms of the node"
    (tf,) = msgs[0].transforms
    assert tf.header.frame_id == d.frames.parent and tf.child_frame_id == d.frames.mount
    r, t = transform_to_matrix(tf)
    np.testing.assert_allclose(t, MOUNT_XYZ, atol=1e-15)
    np.testing.assert_allclose(r, rpy_matrix(*MOUNT_RPY), atol=1e-15)
