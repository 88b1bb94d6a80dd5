"""The TF chain in REP-103 axes (pure numpy: no rclpy)."""

import numpy as np
import pytest

from model_fixtures import general_model
from ptz_calibration.model import BODY_FROM_OPTICAL, AxisOrder, compose, rpy_matrix
from ptz_calibration.nodes.frames import FrameNames, body_chain, mount_from_optical, mount_transform

RNG = np.random.default_rng(11)
SETTINGS = list(zip(RNG.uniform(-2.9, 2.9, 8), RNG.uniform(-0.5, 1.5, 8), RNG.uniform(0, 16384, 8)))


@pytest.mark.parametrize("order", list(AxisOrder))
@pytest.mark.parametrize("pan,tilt,zoom", SETTINGS)
def test_composed_chain_is_the_model_pose_in_body_axes(order, pan, tilt, zoom):
    model = general_model(order)
    r, t = np.eye(3), np.zeros(3)
    for r_i, t_i in body_chain(model, pan, tilt, zoom):
        r, t = compose(r, t, r_i, t_i)
    r_model, t_model = model.pose(pan, tilt, zoom)
    np.testing.assert_allclose(r, BODY_FROM_OPTICAL @ r_model, atol=1e-14)
    np.testing.assert_allclose(t, BODY_FROM_OPTICAL @ t_model, atol=1e-14)
    r_m, t_m = mount_from_optical(model, pan, tilt, zoom)
    np.testing.assert_allclose(r, r_m, atol=1e-14)
    np.testing.assert_allclose(t, t_m, atol=1e-14)


@pytest.mark.parametrize("order", list(AxisOrder))
def test_link_frames_coincide_with_the_mount_at_home(order):
    model = general_model(order)
    (r1, t1), (r2, t2), (r3, t3) = body_chain(model, 0.0, 0.0, 0.0)
    for r, t in ((r1, t1), (r2, t2)):
        np.testing.assert_allclose(r, np.eye(3), atol=1e-15)
        np.testing.assert_allclose(t, np.zeros(3), atol=1e-15)
    # The optical frame looks along the mount's x (forward) with x right (-y body) and y down (-z body).
    np.testing.assert_allclose(r3, BODY_FROM_OPTICAL, atol=1e-15)
    np.testing.assert_allclose(t3, np.zeros(3), atol=1e-15)


def test_ideal_pan_turns_left_and_tilt_turns_up_in_body_axes():
    from ptz_calibration.nodes.calibration import ideal_model
    from ptz_calibration.model import JointLimits

    model = ideal_model("cam", 640, 480, JointLimits())
    r, _ = mount_from_optical(model, np.radians(30), 0.0, 0.0)
    forward = r @ np.array([0.0, 0.0, 1.0])  # optical z in mount (body) axes
    np.testing.assert_allclose(forward, [np.cos(np.radians(30)), np.sin(np.radians(30)), 0.0], atol=1e-15)
    r, _ = mount_from_optical(model, 0.0, np.radians(20), 0.0)
    forward = r @ np.array([0.0, 0.0, 1.0])
    np.testing.assert_allclose(forward, [np.cos(np.radians(20)), 0.0, np.sin(np.radians(20))], atol=1e-15)


def test_frame_names_follow_the_camera_and_the_head_order():
    names = FrameNames.for_camera("left", parent="world", prefix="rig/")
    assert names.mount == "rig/left_mount" and names.optical == "rig/left_optical_frame"
    assert names.moving_order(AxisOrder.PAN_TILT) == ("rig/left_mount", "rig/left_pan_link",
                                                      "rig/left_tilt_link", "rig/left_optical_frame")
    assert names.moving_order(AxisOrder.TILT_PAN)[1] == "rig/left_tilt_link"


def test_mount_transform_is_urdf_rpy():
    r, t = mount_transform([0.1, -0.2, 1.5], [0.1, 0.2, -0.3])
    np.testing.assert_allclose(r, rpy_matrix(0.1, 0.2, -0.3), atol=1e-15)
    np.testing.assert_allclose(t, [0.1, -0.2, 1.5])
    with pytest.raises(ValueError):
        mount_transform([np.nan, 0, 0], [0, 0, 0])


@pytest.mark.parametrize("order", list(AxisOrder))
def test_fast_chain_equals_the_model_chain(order):
    from ptz_calibration.model import matrix_to_quaternion
    from ptz_calibration.nodes.frames import FastChain

    model = general_model(order)
    fast = FastChain(model)
    angles = list(SETTINGS) + [(3.1, -0.5, 0.0), (-3.1, 1.5, 16384.0), (0.0, 0.0, 0.0)]
    for pan, tilt, zoom in angles + angles[::-1]:  # the reverse pass hits the zoom cache
        links = fast.links(pan, tilt, zoom)
        for (q, t), (r_ref, t_ref) in zip(links, body_chain(model, pan, tilt, zoom)):
            np.testing.assert_allclose(q, matrix_to_quaternion(r_ref), atol=1e-15)
            np.testing.assert_allclose(t, t_ref, atol=1e-15)
