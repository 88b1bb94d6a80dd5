"""ptz_driver ~/set_camera_info over DDS (sensor_msgs/SetCameraInfo, as camera_calibration calls it):
the received K, D apply at the current zoom, the model file is rewritten atomically with a .bak,
a camera_info YAML is written beside it, ~/camera_info follows at once; bad requests change
nothing; a package:// or empty calibration_url moves the calibration to $ROS_HOME."""

import math
import shutil
import time

import numpy as np
import pytest

from conftest import Recorder, unique_name, wait_until

ros = pytest.mark.ros

CAMERA = "left"
ZOOM = 5000.0


def start_driver(ros_context, spinner, probe, url, driver=None):
    """A ptz_driver (sim backend unless ``driver``) with ``calibration_url``; (node, CameraInfo recorder)."""
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import CameraInfo

    from ptz_calibration.nodes.ptz_driver import PtzDriverNode

    node = spinner.add(PtzDriverNode(unique_name("driver"), context=ros_context, driver=driver, parameter_overrides=[
        Parameter("camera_name", value=CAMERA), Parameter("backend", value="sim"),
        Parameter("calibration_url", value=url), Parameter("publish_images", value=False)]))
    infos = Recorder(probe, CameraInfo, f"/{node.get_name()}/camera_info", 100)
    assert infos.wait_for(count=3, timeout=30.0)
    return node, infos


def zoom_to(node, zoom):
    node.driver.move_absolute(math.nan, math.nan, zoom)
    assert wait_until(lambda: (s := node.history.latest()) is not None and s.zoom_raw == zoom
                      and time.time() - s.stamp < 0.2 and len({x.zoom_raw for x in node.history.since(s.stamp - 0.6)}) == 1,
                      20.0)


def request_of(k, d, width=1280, height=720, model="plumb_bob"):
    from sensor_msgs.srv import SetCameraInfo

    req = SetCameraInfo.Request()
    info = req.camera_info
    info.width, info.height, info.distortion_model = width, height, model
    info.k = np.asarray(k, dtype=float).reshape(9)
    info.d = [float(v) for v in d]
    info.r = np.eye(3).reshape(9)
    p = np.zeros((3, 4))
    p[:, :3] = np.reshape(k, (3, 3))
    info.p = p.reshape(12)
    return req


def call(probe, node, req):
    from sensor_msgs.srv import SetCameraInfo

    client = probe.create_client(SetCameraInfo, f"/{node.get_name()}/set_camera_info")
    try:
        assert client.wait_for_service(timeout_sec=20.0)
        future = client.call_async(req)
        assert wait_until(future.done, 20.0)
        return future.result()
    finally:
        probe.destroy_client(client)


def new_intrinsics(model, zoom):
    k = model.camera_matrix(zoom).copy()
    k[0, 0] *= 1.03
    k[1, 1] *= 1.025
    k[0, 2] += 4.0
    k[1, 2] -= 3.0
    d = model.distortion(zoom) + np.array([0.01, -0.02, 0.0005, -0.0003, 0.01])
    return k, d


def info_k(rec):
    return np.reshape(rec.messages[-1].k, (3, 3))


@pytest.fixture
def model_file(tmp_path):
    from ptz_calibration.drivers.simulated import package_config_file

    path = tmp_path / "calib" / "left.yaml"
    path.parent.mkdir()
    shutil.copy(package_config_file("sim_left_model.yaml"), path)
    return path


@ros
def test_set_camera_info_updates_the_model_at_the_current_zoom(ros_context, spinner, probe, model_file):
    from ptz_calibration.model import load_model, read_camera_info

    original = model_file.read_text()
    old = load_model(model_file)
    node, infos = start_driver(ros_context, spinner, probe, f"file://{model_file}")
    zoom_to(node, ZOOM)
    k, d = new_intrinsics(old, ZOOM)
    answer = call(probe, node, request_of(k, d))
    assert answer.success, answer.status_message
    assert str(model_file) in answer.status_message and "5000" in answer.status_message

    # ~/camera_info at the current zoom carries the sent K and D from now on
    assert wait_until(lambda: math.isclose(infos.messages[-1].k[0], k[0, 0], rel_tol=1e-9), 10.0)
    np.testing.assert_allclose(info_k(infos), k, rtol=1e-9)
    np.testing.assert_allclose(infos.messages[-1].d, d, rtol=1e-9, atol=1e-12)
    assert node.get_parameter("calibration_url").value == f"file://{model_file}"  # written in place

    # the file: reloads, K/D at this zoom, fx/fy scaled and cx/cy/D offset elsewhere, kinematics kept
    new = load_model(model_file)
    np.testing.assert_allclose(new.camera_matrix(ZOOM), k, rtol=1e-9)
    np.testing.assert_allclose(new.distortion(ZOOM), d, rtol=1e-9, atol=1e-12)
    for z in (0.0, 12000.0, 16384.0):
        kn, ko = new.camera_matrix(z), old.camera_matrix(z)
        assert math.isclose(kn[0, 0] / ko[0, 0], 1.03, rel_tol=1e-9)
        assert math.isclose(kn[1, 1] / ko[1, 1], 1.025, rel_tol=1e-9)
        assert math.isclose(kn[0, 2] - ko[0, 2], 4.0, abs_tol=1e-9)
        assert math.isclose(kn[1, 2] - ko[1, 2], -3.0, abs_tol=1e-9)
        np.testing.assert_allclose(new.distortion(z) - old.distortion(z), [0.01, -0.02, 0.0005, -0.0003, 0.01],
                                   atol=1e-12)
    R0, T0 = old.pose(0.3, 0.1, 8000.0)
    R1, T1 = new.pose(0.3, 0.1, 8000.0)
    np.testing.assert_array_equal(R0, R1)
    np.testing.assert_array_equal(T0, T1)
    assert new.metadata["set_camera_info"]["zoom_raw"] == ZOOM
    assert model_file.with_name("left.yaml.bak").read_text() == original

    info = read_camera_info(model_file.with_name(f"{CAMERA}_camera_info.yaml"))
    np.testing.assert_allclose(info["camera_matrix"], k, rtol=1e-9)
    np.testing.assert_allclose(info["distortion_coefficients"].reshape(-1), d, rtol=1e-9, atol=1e-12)
    assert (info["image_width"], info["image_height"]) == (1280, 720)

    # ~/reload_calibration reads the same model back
    from std_srvs.srv import Trigger

    client = probe.create_client(Trigger, f"/{node.get_name()}/reload_calibration")
    assert client.wait_for_service(timeout_sec=20.0)
    future = client.call_async(Trigger.Request())
    assert wait_until(future.done, 20.0) and future.result().success, future.result().message
    probe.destroy_client(client)
    np.testing.assert_allclose(node.geometry.model.camera_matrix(ZOOM), k, rtol=1e-9)
    spinner.destroy(node)


@ros
def test_bad_requests_change_nothing(ros_context, spinner, probe, model_file):
    from ptz_calibration.model import load_model

    node, infos = start_driver(ros_context, spinner, probe, f"file://{model_file}")
    zoom_to(node, ZOOM)
    model = load_model(model_file)
    good_k, good_d = new_intrinsics(model, ZOOM)
    before_text = model_file.read_text()
    before_k = info_k(infos)
    nan_k = good_k.copy()
    nan_k[0, 2] = math.nan
    zero_fx = good_k.copy()
    zero_fx[0, 0] = 0.0
    negative_fy = good_k.copy()
    negative_fy[1, 1] = -10.0
    skewed = good_k.copy()
    skewed[0, 1] = 2.0
    cases = {
        "model": (request_of(good_k, good_d, model="rational_polynomial"), "rational_polynomial"),
        "length": (request_of(good_k, list(good_d) + [0.0, 0.0, 0.0]), "5 distortion coefficients"),
        "nan": (request_of(nan_k, good_d), "finite"),
        "nan_d": (request_of(good_k, [math.inf, 0, 0, 0, 0]), "finite"),
        "size": (request_of(good_k, good_d, width=640, height=480), "640x480 does not match the device's 1280x720"),
        "fx": (request_of(zero_fx, good_d), "fx and fy must be positive"),
        "fy": (request_of(negative_fy, good_d), "fx and fy must be positive"),
        "skew": (request_of(skewed, good_d), "skew"),
    }
    for name, (req, expected) in cases.items():
        answer = call(probe, node, req)
        assert not answer.success, name
        assert expected in answer.status_message and "nothing changed" in answer.status_message, \
            (name, answer.status_message)
    assert model_file.read_text() == before_text
    assert not model_file.with_name("left.yaml.bak").exists()
    assert not model_file.with_name(f"{CAMERA}_camera_info.yaml").exists()
    infos.clear()
    assert infos.wait_for(count=3, timeout=10.0)
    np.testing.assert_array_equal(info_k(infos), before_k)
    assert node.get_parameter("calibration_url").value == f"file://{model_file}"
    spinner.destroy(node)


@ros
def test_package_url_moves_the_calibration_to_ros_home(ros_context, spinner, probe, tmp_path, monkeypatch):
    from ptz_calibration.drivers.simulated import package_config_file
    from ptz_calibration.model import load_model

    monkeypatch.setenv("ROS_HOME", str(tmp_path / "ros_home"))
    package_file = package_config_file("sim_left_model.yaml")
    original = package_file.read_text()
    node, infos = start_driver(ros_context, spinner, probe, "package://ptz_calibration/config/sim_left_model.yaml")
    zoom_to(node, ZOOM)
    k, d = new_intrinsics(load_model(package_file), ZOOM)
    answer = call(probe, node, request_of(k, d))
    assert answer.success, answer.status_message
    target = tmp_path / "ros_home" / "ptz_calibration" / f"{CAMERA}.yaml"
    assert node.get_parameter("calibration_url").value == f"file://{target}"
    assert "calibration_url set to" in answer.status_message and "no previous file" in answer.status_message
    np.testing.assert_allclose(load_model(target).camera_matrix(ZOOM), k, rtol=1e-9)
    assert (target.parent / f"{CAMERA}_camera_info.yaml").exists()
    assert package_file.read_text() == original  # the package's file is never written
    assert wait_until(lambda: math.isclose(infos.messages[-1].k[0], k[0, 0], rel_tol=1e-9), 10.0)

    # a second calibration goes to the same file and keeps the first as .bak
    k2 = k.copy()
    k2[0, 0] *= 1.01
    answer = call(probe, node, request_of(k2, d))
    assert answer.success, answer.status_message
    assert "calibration_url set to" not in answer.status_message
    np.testing.assert_allclose(load_model(target.with_name(target.name + ".bak")).camera_matrix(ZOOM), k, rtol=1e-9)
    np.testing.assert_allclose(load_model(target).camera_matrix(ZOOM), k2, rtol=1e-9)
    spinner.destroy(node)


@ros
def test_uncalibrated_camera_gets_a_constant_intrinsics_model(ros_context, spinner, probe, tmp_path, monkeypatch):
    from ptz_calibration.drivers.mock import MockPtzDriver
    from ptz_calibration.model import PtzKinematics, load_model

    monkeypatch.setenv("ROS_HOME", str(tmp_path / "ros_home"))
    node, infos = start_driver(ros_context, spinner, probe, "", driver=MockPtzDriver())
    assert not node.geometry.calibrated
    zoom_to(node, 3000.0)
    k = np.array([[400.0, 0, 161.0], [0, 401.0, 119.0], [0, 0, 1]])
    d = [-0.1, 0.02, 0.001, -0.001, 0.0]
    answer = call(probe, node, request_of(k, d, 320, 240))
    assert answer.success, answer.status_message
    target = tmp_path / "ros_home" / "ptz_calibration" / f"{CAMERA}.yaml"
    assert node.get_parameter("calibration_url").value == f"file://{target}"
    model = load_model(target)
    for z in (0.0, 3000.0, 16384.0):
        np.testing.assert_allclose(model.camera_matrix(z), k, rtol=1e-12)
        np.testing.assert_allclose(model.distortion(z), d, rtol=1e-12)
    ideal = PtzKinematics.ideal()
    np.testing.assert_array_equal(model.kinematics.pan_axis, ideal.pan_axis)
    assert "uncalibrated" not in model.metadata
    assert node.geometry.calibrated
    assert wait_until(lambda: infos.messages[-1].k[0] == 400.0, 10.0)
    np.testing.assert_allclose(info_k(infos), k, rtol=1e-12)
    spinner.destroy(node)


@pytest.mark.parametrize("kind", ["constant", "piecewise_linear", "polynomial", "exp2", "exp2_constant_term"])
def test_curve_scale_and_offset_keep_the_shape(kind):
    """fx/fy curves are scaled, the others offset; exact at the zoom for every kind, of the same kind
    where possible (a two-term exponential with two varying terms is tabulated for an offset)."""
    from ptz_calibration.model import (ConstantCurve, PiecewiseLinearCurve, PolynomialCurve,
                                       TwoTermExponentialCurve)
    from ptz_calibration.nodes.set_camera_info import offset, scaled

    curve = {
        "constant": ConstantCurve(2.0),
        "piecewise_linear": PiecewiseLinearCurve([0, 8000, 16384], [1.0, 3.0, 2.5]),
        "polynomial": PolynomialCurve([1.0, 0.5, -0.2], [0, 16384]),
        "exp2": TwoTermExponentialCurve(1.0, 2.0, 0.5, -1.0, [0, 16384]),
        "exp2_constant_term": TwoTermExponentialCurve(1.0, 2.0, 0.5, 0.0, [0, 16384]),
    }[kind]
    zoom, grid = 5000.0, np.linspace(0, 16384, 101)
    s = scaled(curve, 1.07, (0.0, 16384.0), zoom)
    assert type(s) is type(curve)
    np.testing.assert_allclose(s.evaluate(grid), 1.07 * curve.evaluate(grid), rtol=1e-12)
    o = offset(curve, -0.3, (0.0, 16384.0), zoom)
    assert type(o) is (PiecewiseLinearCurve if kind == "exp2" else type(curve))
    assert math.isclose(o(zoom), curve(zoom) - 0.3, rel_tol=1e-12)
    tol = 1e-4 if kind == "exp2" else 1e-12  # tabulated: 257 knots
    np.testing.assert_allclose(o.evaluate(grid), curve.evaluate(grid) - 0.3, rtol=tol, atol=tol)
