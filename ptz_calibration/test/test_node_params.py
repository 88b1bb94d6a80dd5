"""ptz_driver parameters from params files in `/**: ros__parameters:` form (rclpy
`--ros-args --params-file`), and ~/image_raw as configured there."""

import math
import numpy as np
import pytest

from conftest import Recorder, unique_name

pytestmark = pytest.mark.ros


def node_with_params(ros_context, spinner, *args):
    from ptz_calibration.nodes.ptz_driver import PtzDriverNode

    return spinner.add(PtzDriverNode(unique_name("driver"), context=ros_context,
                                     cli_args=["--ros-args", *args], use_global_arguments=False))


def test_a_params_file_configures_the_node(ros_context, spinner, probe, tmp_path):
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image
    from tf2_msgs.msg import TFMessage

    from ptz_calibration.drivers.simulated import package_config_file
    from ptz_calibration.model import rpy_matrix
    from ptz_calibration.nodes.conversions import image_to_array, transform_to_matrix
    from ptz_calibration.nodes.tf_broadcaster import TF_STATIC_QOS

    camera = unique_name("cam")
    path = tmp_path / "params.yaml"
    path.write_text(f"""\
/**:
  ros__parameters:
    camera_name: {camera}
    backend: mock
    mock:
      max_pan_speed: 0.7
      image_width: 64
      image_height: 48
    calibration_url: file://{package_config_file('sim_left_model.yaml')}
    parent_frame: {camera}_base
    optical_frame: {camera}_custom_optical
    mount:
      xyz: [1, 2, 3]              # integers are fine
      rpy: [0.0, 0.0, 1.5707963267948966]
    state_rate: 20.0
    stale_timeout: 0.25
    publish_images: true
    image_rate: 10.0
    image_reliability: reliable
""")
    static = Recorder(probe, TFMessage, "/tf_static", TF_STATIC_QOS,
                      keep=lambda m: any(t.child_frame_id == f"{camera}_mount" for t in m.transforms))
    node = node_with_params(ros_context, spinner, "--params-file", str(path))
    assert node.get_parameter("camera_name").value == camera
    assert node.get_parameter("backend").value == "mock"
    assert node.get_parameter("state_rate").value == 20.0
    assert node.get_parameter("image_reliability").value == "reliable"
    assert node.driver.capabilities.max_pan_speed == 0.7  # backend settings reach the driver
    assert node.geometry.calibrated and node.geometry.stale_timeout == 0.25
    frames = node.camera.frames
    assert (frames.parent, frames.mount, frames.pan_link, frames.optical) == (
        f"{camera}_base", f"{camera}_mount", f"{camera}_pan_link", f"{camera}_custom_optical")

    (msg,) = static.wait_for(timeout=20.0)
    (tf,) = msg.transforms
    r, t = transform_to_matrix(tf)
    assert tf.header.frame_id == f"{camera}_base"
    np.testing.assert_allclose(t, [1.0, 2.0, 3.0], atol=0.0)
    np.testing.assert_allclose(r, rpy_matrix(0.0, 0.0, math.pi / 2), atol=1e-15)

    images = Recorder(probe, Image, f"/{node.get_name()}/image_raw",
                      QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE))
    got = images.wait_for(count=2, timeout=20.0)
    assert len(got) >= 2
    for arrival, img in images.timed:
        assert (img.width, img.height, img.encoding, img.step, img.is_bigendian) == (64, 48, "mono8", 64, 0)
        assert img.header.frame_id == f"{camera}_custom_optical"
        stamp = img.header.stamp.sec + img.header.stamp.nanosec * 1e-9
        assert 0.0 <= arrival - stamp < 5.0  # exposure time (the mock exposes when asked)
        array = image_to_array(img)
        assert array.shape == (48, 64) and array.dtype == np.uint8
        np.testing.assert_array_equal(array[0], array[-1])  # the mock's vertical stripes
    spinner.destroy(node)


def test_the_sim_params_file_runs_the_calibrated_simulated_camera(ros_context, spinner, probe):
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import CameraInfo, Image

    from ptz_calibration.drivers.simulated import package_config_file
    from ptz_calibration.nodes.calibration import resolve_url
    from ptz_calibration.simulation import load_rig

    url = "package://ptz_calibration/config/sim_left_model.yaml"
    try:
        resolve_url(url)
    except ValueError as exc:
        pytest.fail(f"the package is not installed (make build, source scripts/env.sh): {exc}")
    prefix = unique_name("p") + "_"
    node = node_with_params(ros_context, spinner, "--params-file", str(package_config_file("sim_left.yaml")),
                            "-p", f"frame_prefix:={prefix}", "-p", "image_rate:=4.0")
    assert node.get_parameter("calibration_url").value == url
    assert node.geometry.calibrated, "the factory calibration must load through ament_index"
    assert node.backend == "sim" and node.camera.frames.parent == "rig"
    assert node.camera.frames.optical == f"{prefix}left_optical_frame"
    ns = f"/{node.get_name()}"
    info = Recorder(probe, CameraInfo, f"{ns}/camera_info", 10).wait_for(timeout=20.0)[-1]
    assert (info.width, info.height) == (1280, 720) and info.k[0] > 1000.0

    timing = load_rig(package_config_file("sim_rig.yaml")).cameras["left"].timing
    images = Recorder(probe, Image, f"{ns}/image_raw", qos_profile_sensor_data)
    assert images.wait_for(count=1, timeout=30.0)
    arrival, img = images.timed[0]
    assert (img.width, img.height, img.encoding, img.step) == (1280, 720, "mono8", 1280)
    assert img.header.frame_id == f"{prefix}left_optical_frame"
    stamp = img.header.stamp.sec + img.header.stamp.nanosec * 1e-9
    # the stamp is the (reported) mid-exposure time: at least the camera latency before arrival
    assert arrival - stamp >= timing.latency - 5 * timing.stamp_jitter
    assert arrival - stamp < 5.0
    spinner.destroy(node)
