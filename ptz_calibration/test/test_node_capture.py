"""ptz_driver ~/capture over DDS: one image with the head's state and CameraInfo at its exposure,
from the stream or hardware-triggered; refusals say why."""

import math
import time

import numpy as np
import pytest

from conftest import unique_name, wait_until

pytestmark = pytest.mark.ros

CAMERA = "left"


@pytest.fixture(scope="module")
def model():
    from ptz_calibration.drivers.simulated import package_config_file
    from ptz_calibration.model import load_model

    return load_model(package_config_file("sim_left_model.yaml"))


def start_driver(ros_context, spinner, driver=None, **params):
    from rclpy.parameter import Parameter

    from ptz_calibration.drivers.simulated import package_config_file
    from ptz_calibration.nodes.ptz_driver import PtzDriverNode

    values = {"camera_name": CAMERA, "backend": "sim", "publish_images": False,
              "calibration_url": f"file://{package_config_file('sim_left_model.yaml')}"}
    values.update(params)
    node = spinner.add(PtzDriverNode(unique_name("driver"), context=ros_context, driver=driver,
                                     parameter_overrides=[Parameter(k, value=v) for k, v in values.items()]))
    start = time.time()  # the state at an exposure needs feedback from before it
    assert wait_until(lambda: len(node.history.since(start)) > 0 and node.history.latest().stamp > start + 0.5, 20.0)
    return node


@pytest.fixture(scope="module")
def sim(ros_context, spinner):
    return start_driver(ros_context, spinner)


def call(probe, node, trigger_time=0.0, include_image=True, timeout=20.0):
    from ptz_calibration_msgs.srv import Capture

    client = probe.create_client(Capture, f"/{node.get_name()}/capture")
    try:
        assert client.wait_for_service(timeout_sec=20.0)
        future = client.call_async(Capture.Request(trigger_time=trigger_time, include_image=include_image))
        assert wait_until(future.done, timeout)
        return future.result()
    finally:
        probe.destroy_client(client)


def stamp(t):
    return t.sec + t.nanosec * 1e-9


def test_capture_now_gives_image_state_and_camera_info_at_the_exposure(probe, sim, model):
    from ptz_calibration.nodes.conversions import image_to_array

    before = time.time()
    answer = call(probe, sim)
    assert answer.success, answer.message
    assert before - 0.5 < answer.exposure_time < time.time()
    image = image_to_array(answer.image)
    assert image.shape == (720, 1280) and answer.image.encoding == "mono8" and image.std() > 5
    assert answer.image.header.frame_id == f"{CAMERA}_optical_frame"
    for header in (answer.image.header, answer.camera_info.header, answer.state.header):
        assert math.isclose(stamp(header.stamp), answer.exposure_time, abs_tol=1e-9)
    state = answer.state
    assert state.camera_name == CAMERA and not state.moving
    truth = sim.driver.read_state()  # the head rests at home
    assert abs(state.pan - truth.pan) < 3e-3 and abs(state.tilt - truth.tilt) < 3e-3
    assert state.zoom_raw == truth.zoom_raw
    assert math.isclose(state.zoom_magnification, float(model.zoom_mapping.magnification(state.zoom_raw)))
    info = answer.camera_info
    assert (info.width, info.height, info.distortion_model) == (1280, 720, "plumb_bob")
    np.testing.assert_allclose(np.reshape(info.k, (3, 3)), model.camera_matrix(state.zoom_raw), rtol=1e-12)
    np.testing.assert_allclose(info.d, model.distortion(state.zoom_raw), rtol=1e-12)


def test_capture_without_image(probe, sim):
    answer = call(probe, sim, include_image=False)
    assert answer.success, answer.message
    assert len(answer.image.data) == 0 and answer.image.width == 0
    assert math.isclose(stamp(answer.image.header.stamp), answer.exposure_time, abs_tol=1e-9)
    assert answer.camera_info.k[0] > 0


def test_state_is_interpolated_at_the_exposure_while_moving(probe, sim):
    """While panning at 0.5 rad/s the newest sample is ~0.1 s (0.05 rad) past the exposure; the
    state returned is the feedback at the exposure time itself."""
    sim.driver.move_velocity(0.5, 0.0, 0.0, duration=3.0)
    try:
        assert wait_until(lambda: (s := sim.history.latest()) is not None and abs(s.pan_velocity) > 0.45, 10.0)
        answer = call(probe, sim, include_image=False)
        newest = sim.history.latest()
    finally:
        sim.driver.stop()
    assert answer.success, answer.message
    state = answer.state
    assert state.moving and newest.pan - state.pan > 0.02  # not the newest sample
    latency = sim.driver.simulation.spec.timing.feedback_latency
    reported = sim.driver.simulation.feedback(answer.exposure_time + latency)  # sampled at the exposure
    assert abs(reported.stamp - answer.exposure_time) < 1e-9
    assert abs(state.pan - reported.pan) < 3e-3, (state.pan, reported.pan)


def test_hardware_trigger(probe, sim):
    timing = sim.driver.simulation.spec.timing
    t = time.time() + 0.3
    answer = call(probe, sim, trigger_time=t)
    assert answer.success, answer.message
    assert "triggered" in answer.message
    assert math.isclose(answer.exposure_time, t + timing.trigger_latency + timing.exposure / 2, abs_tol=1e-6)
    assert math.isclose(stamp(answer.state.header.stamp), answer.exposure_time, abs_tol=1e-9)
    assert time.time() > answer.exposure_time  # answered once the feedback at the exposure existed
    assert answer.image.width == 1280


@pytest.mark.parametrize("delay,expected", [(-1.0, "in the past"), (60.0, "capture.max_trigger_delay")])
def test_trigger_time_out_of_range_is_refused(probe, sim, delay, expected):
    answer = call(probe, sim, trigger_time=time.time() + delay)
    assert not answer.success and expected in answer.message, answer.message
    assert len(answer.image.data) == 0


def test_no_hardware_trigger_is_refused_and_stream_capture_works(ros_context, spinner, probe):
    from ptz_calibration.drivers.mock import MockPtzDriver

    node = start_driver(ros_context, spinner, driver=MockPtzDriver(), calibration_url="")
    answer = call(probe, node, trigger_time=time.time() + 0.2)
    assert not answer.success and "no hardware trigger" in answer.message, answer.message
    answer = call(probe, node)
    assert answer.success, answer.message
    assert (answer.image.width, answer.image.height) == (320, 240)
    info = answer.camera_info  # uncalibrated: K = P = 0, the device's size
    assert (info.width, info.height) == (320, 240)
    np.testing.assert_array_equal(info.k, np.zeros(9))
    assert math.isnan(answer.state.zoom_magnification)
    spinner.destroy(node)
