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


def test_one_node_serves_several_cameras(ros_context, spinner, probe):
    from diagnostic_msgs.msg import DiagnosticArray
    from ptz_calibration_msgs.msg import PtzState
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import CameraInfo
    from tf2_msgs.msg import TFMessage

    from ptz_calibration.drivers.simulated import package_config_file
    from ptz_calibration.model import BODY_FROM_OPTICAL, compose, load_model
    from ptz_calibration.nodes.conversions import fill_time, transform_to_matrix
    from ptz_calibration.nodes.ptz_geometry import PtzGeometryNode
    from ptz_calibration.nodes.tf_broadcaster import TF_QOS

    cams = [unique_name("a"), unique_name("b"), unique_name("c")]
    models = {cams[0]: load_model(package_config_file("sim_left_model.yaml")),
              cams[1]: load_model(package_config_file("sim_right_model.yaml")), cams[2]: None}
    params = [Parameter("cameras", value=cams)]
    for cam, model in models.items():
        if model is not None:
            params.append(Parameter(f"{cam}.calibration_url", value=str(package_config_file(
                "sim_left_model.yaml" if cam == cams[0] else "sim_right_model.yaml"))))
        params.append(Parameter(f"{cam}.stale_timeout", value=30.0))
    node = spinner.add(PtzGeometryNode(unique_name("geometry"), context=ros_context, parameter_overrides=params))
    assert set(node.channels) == set(cams)
    assert [node.channels[c].geometry.calibrated for c in cams] == [True, True, False]
    tf = Recorder(probe, TFMessage, "/tf", TF_QOS,
                  keep=lambda m: any(t.header.frame_id.split("_mount")[0] in cams for t in m.transforms))
    infos = {c: Recorder(probe, CameraInfo, f"/{c}/camera_info", 100) for c in cams}
    name = node.get_fully_qualified_name()
    diags = Recorder(probe, DiagnosticArray, "/diagnostics", 10,
                     keep=lambda m: any(s.name.startswith(name + ":") for s in m.status))
    pubs = {c: probe.create_publisher(PtzState, f"/{c}/ptz_state", 100) for c in cams}
    assert wait_until(lambda: all(p.get_subscription_count() > 0 for p in pubs.values()), 20.0)
    assert wait_until(lambda: all(node.count_subscribers(f"/{c}/camera_info") > 0 for c in cams), 20.0)
    # warm-up until the new node's /tf writer has matched our reader (discovery takes a moment)
    def warm():
        for cam in cams:
            msg = PtzState(camera_name=cam)
            fill_time(msg.header.stamp, time.time())
            pubs[cam].publish(msg)
        return len(tf.messages) >= 3
    assert wait_until(warm, 20.0, period=0.2)
    time.sleep(0.1)
    sent = {}
    for k in range(1, 11):
        for i, cam in enumerate(cams):
            msg = PtzState(camera_name=cam, pan=0.1 * k - 0.3 * i, tilt=0.05 * k, zoom_raw=1000.0 * k + i)
            fill_time(msg.header.stamp, time.time())
            sent.setdefault(cam, []).append(msg)
            pubs[cam].publish(msg)
    def tf_links():
        out = {}
        for m in tf.messages:
            for t in m.transforms:
                out[(key(t.header.stamp), t.header.frame_id, t.child_frame_id)] = t
        return out
    wanted = {(key(m.header.stamp), node.channels[c].camera.frames.mount) for c in cams for m in sent[c]}
    assert wait_until(lambda: wanted <= {k[:2] for k in tf_links()}, 20.0), "TF of every sample"
    assert wait_until(lambda: all(len(infos[c].messages) >= 11 for c in cams), 20.0)
    links = tf_links()
    for cam, model in models.items():
        ch = node.channels[cam]
        reference = model or ch.geometry.model  # the ideal gimbal when uncalibrated
        chain = ch.camera.frames.moving_order(reference.kinematics.order)
        by_stamp = {key(m.header.stamp): m for m in infos[cam].messages}
        for state in sent[cam]:
            r, t = np.eye(3), np.zeros(3)
            for parent, child in zip(chain[:-1], chain[1:]):
                r, t = compose(r, t, *transform_to_matrix(links[(key(state.header.stamp), parent, child)]))
            r_m, t_m = reference.pose(state.pan, state.tilt, state.zoom_raw)
            np.testing.assert_allclose(r, BODY_FROM_OPTICAL @ r_m, atol=1e-9)
            np.testing.assert_allclose(t, BODY_FROM_OPTICAL @ t_m, atol=1e-9)
            k = np.reshape(by_stamp[key(state.header.stamp)].k, (3, 3))
            np.testing.assert_allclose(k, model.camera_matrix(state.zoom_raw) if model else np.zeros((3, 3)),
                                       rtol=1e-12)
    (msg,) = diags.wait_for(timeout=20.0)[-1:]
    assert {s.hardware_id for s in msg.status} == set(cams)
