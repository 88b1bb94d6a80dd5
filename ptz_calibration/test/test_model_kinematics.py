"""Kinematics of the general PTZ model against independent constructions."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from model_fixtures import RAW_MAX, general_kinematics
from ptz_calibration.model import AxisOrder, PolynomialCurve, PtzKinematics

RNG = np.random.default_rng(7)
SETTINGS = [(p, t, z) for p, t, z in zip(RNG.uniform(-3, 3, 12), RNG.uniform(-0.5, 1.5, 12),
                                         RNG.uniform(0, RAW_MAX, 12))]


def rotate_about_line(points, direction, through, angle):
    """Rotate points (N,3) about the line through ``through`` with ``direction`` (scipy, not our code)."""
    rot = Rotation.from_rotvec(np.asarray(direction) / np.linalg.norm(direction) * angle)
    return rot.apply(np.asarray(points) - through) + through


def physical_pose(kin: PtzKinematics, pan, tilt, zoom):
    """Move a physical camera step by step: the base joint moves the whole head (including the
    other joint's axis line), then the carried joint turns about its moved axis line.

    The camera is represented by its optical centre and the tips of its three unit axes.
    """
    d = kin.zoom_translation(zoom)
    cam = np.array([[0, 0, d], [1, 0, d], [0, 1, d], [0, 0, d + 1.0]])  # centre, x, y, z tips in H
    pan_line = (kin.pan_axis, -kin.pan_radius)
    tilt_line = (kin.tilt_axis, -kin.tilt_radius)
    if kin.order is AxisOrder.PAN_TILT:
        base, base_q, carried, carried_q = pan_line, pan, tilt_line, tilt
    else:
        base, base_q, carried, carried_q = tilt_line, tilt, pan_line, pan
    # Step 1: the base joint turns the camera and carries the other axis line with it.
    cam = rotate_about_line(cam, base[0], base[1], base_q)
    moved_point = rotate_about_line(carried[1][None], base[0], base[1], base_q)[0]
    moved_dir = Rotation.from_rotvec(base[0] * base_q).apply(carried[0])
    # Step 2: the carried joint turns the camera about its moved axis line.
    cam = rotate_about_line(cam, moved_dir, moved_point, carried_q)
    centre = cam[0]
    r = np.stack([cam[1] - centre, cam[2] - centre, cam[3] - centre], axis=1)
    return r, centre


@pytest.mark.parametrize("order", list(AxisOrder))
@pytest.mark.parametrize("pan,tilt,zoom", SETTINGS)
def test_pose_equals_step_by_step_physical_rotation(order, pan, tilt, zoom):
    kin = general_kinematics(order)
    r, t = kin.pose(pan, tilt, zoom)
    r_ref, t_ref = physical_pose(kin, pan, tilt, zoom)
    np.testing.assert_allclose(r, r_ref, atol=1e-12)
    np.testing.assert_allclose(t, t_ref, atol=1e-12)


def test_orders_differ_for_a_general_head():
    a = general_kinematics(AxisOrder.PAN_TILT).pose(1.0, 0.7, 5000)
    b = general_kinematics(AxisOrder.TILT_PAN).pose(1.0, 0.7, 5000)
    assert np.linalg.norm(a[1] - b[1]) > 1e-3


def test_ideal_camera_turns_left_and_up_about_its_centre():
    kin = PtzKinematics.ideal()
    r, t = kin.pose(np.pi / 2, 0.0)
    np.testing.assert_allclose(r[:, 2], [-1, 0, 0], atol=1e-15)  # optical axis now points left (-x in H)
    np.testing.assert_allclose(t, 0, atol=1e-15)
    r, t = kin.pose(0.0, np.radians(30))
    np.testing.assert_allclose(r[:, 2], [0, -np.sin(np.radians(30)), np.cos(np.radians(30))], atol=1e-15)
    assert kin.axis_angle == pytest.approx(np.pi / 2)
    # Pure rotation: R = Ry(pan) Rx(tilt) in the optical frame (y down).
    ref = Rotation.from_euler("YX", [-0.4, 0.25]).as_matrix()
    np.testing.assert_allclose(kin.pose(0.4, 0.25)[0], ref, atol=1e-14)


@pytest.mark.parametrize("offset", [-0.05, 0.0, 0.08])
def test_sanchez_riera_rotation_centre_on_the_optical_axis(offset):
    kin = PtzKinematics.sanchez_riera(offset)
    centre = np.array([0.0, 0.0, -offset])  # rotation centre, `offset` behind the lens
    for pan, tilt, _ in SETTINGS:
        r, t = kin.pose(pan, tilt)
        ideal_r, _ = PtzKinematics.ideal().pose(pan, tilt)
        np.testing.assert_allclose(r, ideal_r, atol=1e-14)
        # The optical centre stays on the sphere of radius |offset| about the rotation centre,
        # along the rotated optical axis.
        np.testing.assert_allclose(t, centre + r @ (np.zeros(3) - centre), atol=1e-14)
        assert np.linalg.norm(t - centre) == pytest.approx(abs(offset), abs=1e-14)


def test_zoom_translation_moves_along_the_current_optical_axis():
    kin = general_kinematics()
    curve = kin.zoom_translation
    for pan, tilt, zoom in SETTINGS:
        r, t = kin.pose(pan, tilt, zoom)
        r0, t0 = kin.pose(pan, tilt, 0.0)
        np.testing.assert_allclose(r, r0, atol=1e-15)
        np.testing.assert_allclose(t - t0, r[:, 2] * (curve(zoom) - curve(0.0)), atol=1e-14)


def test_radius_component_along_the_axis_does_not_change_the_axis_line():
    kin = general_kinematics()
    shifted = PtzKinematics(kin.pan_axis, kin.tilt_axis, kin.pan_radius + 0.3 * kin.pan_axis,
                            kin.tilt_radius - 0.2 * kin.tilt_axis, kin.order, kin.zoom_translation)
    for pan, tilt, zoom in SETTINGS:
        for a, b in zip(kin.pose(pan, tilt, zoom), shifted.pose(pan, tilt, zoom)):
            np.testing.assert_allclose(a, b, atol=1e-14)


def test_batched_pose_equals_scalar_poses_and_broadcasts():
    kin = general_kinematics()
    pans, tilts, zooms = (np.array(v) for v in zip(*SETTINGS))
    r, t = kin.pose(pans, tilts, zooms)
    assert r.shape == (len(SETTINGS), 3, 3) and t.shape == (len(SETTINGS), 3)
    for i, (p, q, z) in enumerate(SETTINGS):
        rs, ts = kin.pose(p, q, z)
        np.testing.assert_allclose(r[i], rs, atol=1e-15)
        np.testing.assert_allclose(t[i], ts, atol=1e-15)
    rb, tb = kin.pose(pans[:, None], tilts[None, :], 1000.0)
    assert rb.shape == (12, 12, 3, 3)
    np.testing.assert_allclose(tb[3, 5], kin.pose(pans[3], tilts[5], 1000.0)[1], atol=1e-15)


def test_chain_composes_to_pose_and_is_orthonormal():
    kin = general_kinematics(AxisOrder.TILT_PAN)
    links = kin.chain(0.3, -0.2, 9000)
    assert [name for name, _, _ in links] == ["tilt", "pan", "optical"]
    r, t = np.eye(3), np.zeros(3)
    for _, rl, tl in links:
        np.testing.assert_allclose(rl @ rl.T, np.eye(3), atol=1e-14)
        assert np.linalg.det(rl) == pytest.approx(1.0)
        r, t = r @ rl, r @ tl + t
    pr, pt = kin.pose(0.3, -0.2, 9000)
    np.testing.assert_allclose(r, pr, atol=1e-15)
    np.testing.assert_allclose(t, pt, atol=1e-15)


def test_non_perpendicular_axes_are_kept():
    kin = general_kinematics()
    assert abs(np.degrees(kin.axis_angle) - 90.0) > 0.1
    with pytest.raises(ValueError, match="parallel"):
        PtzKinematics(pan_axis=[0, -1, 0], tilt_axis=[0.01, -1, 0])
    with pytest.raises(ValueError, match="non-zero"):
        PtzKinematics(pan_axis=[0, 0, 0])


def test_zoom_translation_curve_zero_at_reference():
    kin = PtzKinematics(zoom_translation=PolynomialCurve([0.0, 0.04], (0, RAW_MAX)))
    np.testing.assert_allclose(kin.pose(0, 0, 0)[1], 0, atol=1e-15)
    np.testing.assert_allclose(kin.pose(0, 0, RAW_MAX)[1], [0, 0, 0.04], atol=1e-15)


def test_rpy_round_trip():
    from ptz_calibration.model import matrix_to_rpy, rpy_matrix

    for rpy in [(0.0015, -0.0021, 0.0032), (0.4, -1.2, 2.9), (-3.0, 0.7, -0.1)]:
        np.testing.assert_allclose(matrix_to_rpy(rpy_matrix(*rpy)), rpy, atol=1e-12)
