"""ptz_geometry over DDS: the PtzState of another driver in, the same TF chain and CameraInfo
out (equal to the model), invalid states dropped, no JointState unless asked for."""

import math
import time

import numpy as np
import pytest

from conftest import Recorder, unique_name, wait_until

pytestmark = pytest.mark.ros


def key(stamp):
    return (stamp.sec, stamp.nanosec)


def test_states_of_another_driver_become_tf_and_camera_info(ros_context, spinner, probe):
    from ptz_calibration_msgs.msg import PtzState
    from rclpy.parameter import Parameter
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo
    from tf2_msgs.msg import TFMessage

    from ptz_calibration.drivers.simulated import package_config_file
    from ptz_calibration.model import BODY_FROM_OPTICAL, compose, load_model
    from ptz_calibration.nodes.conversions import fill_time, transform_to_matrix
    from ptz_calibration.nodes.ptz_geometry import PtzGeometryNode
    from ptz_calibration.nodes.tf_broadcaster import TF_QOS

    model_file = package_config_file("sim_right_model.yaml")
    model = load_model(model_file)
    camera = unique_name("cam")
    base = f"/{unique_name('ns')}"
    node = spinner.add(PtzGeometryNode(unique_name("geometry"), context=ros_context, parameter_overrides=[
        Parameter("camera_name", value=camera),
        Parameter("calibration_url", value=f"file://{model_file}"),
        Parameter("state_topic", value=f"{base}/ptz_state"),
        Parameter("camera_info_topic", value=f"{base}/camera_info"),
        Parameter("stale_timeout", value=30.0),  # a loaded machine may deliver late: only "stale" is stale
    ]))
    tf = Recorder(probe, TFMessage, "/tf", TF_QOS,
                  keep=lambda m: any(t.header.frame_id.startswith(camera) for t in m.transforms))
    infos = Recorder(probe, CameraInfo, f"{base}/camera_info", 100)
    pub = probe.create_publisher(PtzState, f"{base}/ptz_state", QoSProfile(depth=100,
                                                                          reliability=ReliabilityPolicy.RELIABLE))
    assert wait_until(lambda: pub.get_subscription_count() > 0 and infos.subscription is not None, 20.0)
    assert wait_until(lambda: node.count_subscribers(f"{base}/camera_info") > 0, 20.0)

    rng = np.random.default_rng(5)
    sent, bad = [], []
    for k in range(60):
        msg = PtzState(camera_name=camera, pan=float(rng.uniform(-2.9, 2.9)), tilt=float(rng.uniform(-0.5, 1.5)),
                       zoom_raw=float(rng.uniform(0, 16384)), zoom_magnification=math.nan, temperature=math.nan,
                       pan_velocity=math.nan, tilt_velocity=math.nan)
        if k % 10 == 9:  # every tenth is invalid: NaN, out of range, or stale
            msg.pan = [math.nan, 3.5, 0.0][k // 10 % 3]
        fill_time(msg.header.stamp, time.time() - (120.0 if k % 10 == 9 and k // 10 % 3 == 2 else 0.0))
        (bad if k % 10 == 9 else sent).append(msg)
        pub.publish(msg)
        time.sleep(0.01)
    assert wait_until(lambda: len(infos.messages) >= len(sent), 20.0), f"{len(infos.messages)} of {len(sent)}"
    time.sleep(0.2)

    links = {}
    for m in tf.messages:
        for t in m.transforms:
            links.setdefault(key(t.header.stamp), {})[(t.header.frame_id, t.child_frame_id)] = t
    info_by = {key(m.header.stamp): m for m in infos.messages}
    chain = node.camera.frames.moving_order(model.kinematics.order)
    for state in sent:
        got = links[key(state.header.stamp)]
        r, t = np.eye(3), np.zeros(3)
        for parent, child in zip(chain[:-1], chain[1:]):
            r, t = compose(r, t, *transform_to_matrix(got[(parent, child)]))
        r_m, t_m = model.pose(state.pan, state.tilt, state.zoom_raw)
        np.testing.assert_allclose(r, BODY_FROM_OPTICAL @ r_m, atol=1e-9)
        np.testing.assert_allclose(t, BODY_FROM_OPTICAL @ t_m, atol=1e-9)
        np.testing.assert_allclose(np.reshape(info_by[key(state.header.stamp)].k, (3, 3)),
                                   model.camera_matrix(state.zoom_raw), rtol=1e-12)
    for state in bad:
        assert key(state.header.stamp) not in links and key(state.header.stamp) not in info_by
    stats = node.geometry.stats
    assert (stats.published, stats.invalid, stats.stale) == (len(sent), 4, 2)
    # joint states are the third-party driver's business unless joint_states_topic is set
    assert node.count_publishers(f"{base}/joint_states") == 0
    spinner.destroy(node)
