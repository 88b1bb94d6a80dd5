"""ptz_driver calibration handling over DDS: a missing or corrupt calibration file runs the
camera uncalibrated (CameraInfo K = P = 0, TF from an ideal gimbal, a diagnostic naming the
file and field); ~/reload_calibration keeps the previous model when the new file is bad."""

import math
import shutil

import numpy as np
import pytest
import yaml

from conftest import Recorder, diag_values, unique_name, wait_until

pytestmark = pytest.mark.ros


def make_node(ros_context, spinner, probe, url):
    """A ptz_driver (mock device) with ``calibration_url``; returns (node, recorders)."""
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import CameraInfo
    from tf2_msgs.msg import TFMessage

    from ptz_calibration.drivers.mock import MockPtzDriver
    from ptz_calibration.nodes.ptz_driver import PtzDriverNode
    from ptz_calibration.nodes.tf_broadcaster import TF_QOS

    camera = unique_name("cam")
    node = spinner.add(PtzDriverNode(unique_name("driver"), context=ros_context, driver=MockPtzDriver(),
                                     parameter_overrides=[Parameter("camera_name", value=camera),
                                                          Parameter("calibration_url", value=url),
                                                          Parameter("publish_images", value=False)]))
    ns = "/" + node.get_name()
    name = f"{node.get_fully_qualified_name()}: {camera}"
    rec = {
        "info": Recorder(probe, CameraInfo, f"{ns}/camera_info", 100),
        "tf": Recorder(probe, TFMessage, "/tf", TF_QOS,
                       keep=lambda m: any(t.header.frame_id.startswith(camera) for t in m.transforms)),
        "diag": Recorder(probe, DiagnosticArray, "/diagnostics", 20,
                         keep=lambda m: any(s.name == name for s in m.status)),
    }
    assert rec["info"].wait_for(count=3, timeout=30.0)
    return node, rec


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    from ptz_calibration.drivers.simulated import package_config_file

    path = tmp_path_factory.mktemp("calib") / "cam.yaml"
    shutil.copy(package_config_file("sim_left_model.yaml"), path)
    return path


@pytest.fixture(scope="module")
def corrupt_file(model_file):
    path = model_file.with_name("corrupt.yaml")
    path.write_text(model_file.read_text().replace("image_width: 1280", "image_width: -3"))
    return path


@pytest.mark.parametrize("case", ["missing", "corrupt"])
def test_bad_calibration_runs_uncalibrated_with_a_diagnostic(ros_context, spinner, probe, corrupt_file, case):
    from diagnostic_msgs.msg import DiagnosticStatus

    from ptz_calibration.model import BODY_FROM_OPTICAL, compose
    from ptz_calibration.nodes.calibration import ideal_model
    from ptz_calibration.nodes.conversions import transform_to_matrix

    path = corrupt_file.with_name("missing.yaml") if case == "missing" else corrupt_file
    node, rec = make_node(ros_context, spinner, probe, f"file://{path}")
    assert not node.geometry.calibrated
    info = rec["info"].messages[-1]
    np.testing.assert_array_equal(info.k, np.zeros(9))
    np.testing.assert_array_equal(info.p, np.zeros(12))
    assert (info.width, info.height) == (320, 240)  # the device's image size
    msgs = rec["diag"].wait_for(timeout=20.0)
    assert msgs
    status, v = diag_values(msgs[-1])
    assert status.level == DiagnosticStatus.WARN and "uncalibrated" in status.message
    assert v["calibration loaded"] == "false" and v["tf source"] == "ideal gimbal (uncalibrated)"
    expected = "file not found" if case == "missing" else "field 'image_width'"
    assert str(path) in v["calibration"] and expected in v["calibration"], v["calibration"]
    # TF from the ideal gimbal; the mock head rests exactly at pan = tilt = 0: the optical frame
    # looks along the mount's x axis from the mount's origin.
    r, t = np.eye(3), np.zeros(3)
    for tf in rec["tf"].wait_for(timeout=20.0)[-1].transforms:
        r, t = compose(r, t, *transform_to_matrix(tf))
    r_i, t_i = ideal_model("x", 0, 0, node.geometry.model.limits).pose(0.0, 0.0, 0.0)
    np.testing.assert_allclose(r, BODY_FROM_OPTICAL @ r_i, atol=1e-15)
    np.testing.assert_allclose(t, t_i, atol=1e-15)
    spinner.destroy(node)


def test_reload_keeps_the_previous_model_on_a_bad_file(ros_context, spinner, probe, model_file, corrupt_file):
    from rclpy.parameter import Parameter
    from std_srvs.srv import Trigger

    from ptz_calibration.model import load_model, model_from_dict

    node, rec = make_node(ros_context, spinner, probe, f"file://{model_file}")
    model_a = load_model(model_file)
    assert node.geometry.calibrated
    zoom = 0.0  # the mock head rests at the wide end
    np.testing.assert_allclose(np.reshape(rec["info"].messages[-1].k, (3, 3)), model_a.camera_matrix(zoom), rtol=1e-12)

    client = probe.create_client(Trigger, f"/{node.get_name()}/reload_calibration")
    assert client.wait_for_service(timeout_sec=20.0)

    def reload(url):
        node.set_parameters([Parameter("calibration_url", value=url)])
        future = client.call_async(Trigger.Request())
        assert wait_until(future.done, 20.0)
        return future.result()

    answer = reload(f"file://{corrupt_file}")
    assert not answer.success
    assert str(corrupt_file) in answer.message and "image_width" in answer.message and "kept" in answer.message
    rec["info"].clear()
    info = rec["info"].wait_for(count=3, timeout=20.0)[-1]
    np.testing.assert_allclose(np.reshape(info.k, (3, 3)), model_a.camera_matrix(zoom), rtol=1e-12)

    data = yaml.safe_load(model_file.read_text())
    data["intrinsics"]["fx"]["y"] = [1.1 * v for v in data["intrinsics"]["fx"]["y"]]
    model_b_file = model_file.with_name("b.yaml")
    model_b_file.write_text(yaml.safe_dump(data))
    model_b = model_from_dict(data)
    answer = reload(str(model_b_file))
    assert answer.success, answer.message
    assert wait_until(lambda: rec["info"].messages and math.isclose(
        rec["info"].messages[-1].k[0], model_b.camera_matrix(zoom)[0, 0], rel_tol=1e-12), 20.0)
    np.testing.assert_allclose(np.reshape(rec["info"].messages[-1].k, (3, 3)), model_b.camera_matrix(zoom),
                               rtol=1e-12)
    probe.destroy_client(client)
    spinner.destroy(node)
