"""The rig YAML: the default rig and the errors of malformed rigs."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import yaml

from ptz_calibration.model import BODY_FROM_OPTICAL, rotation_angle
from ptz_calibration.simulation import (
    CharucoTarget,
    Checkerboard,
    RigFileError,
    default_rig_path,
    facing_rotation,
    load_rig,
    project_points,
    rig_from_dict,
)

DEG = math.pi / 180


@pytest.fixture(scope="module")
def rig_data():
    return yaml.safe_load(default_rig_path().read_text())


@pytest.fixture(scope="module")
def rig():
    return load_rig()


def test_default_rig_loads(rig):
    assert set(rig.cameras) == {"left", "right"}
    assert rig.world_frame == "rig"
    names = [t.name for t in rig.scene.targets]
    assert {"big_checkerboard", "charuco_board", "far_checkerboard", "far_charuco"} <= set(names)
    assert any(isinstance(t.target, CharucoTarget) for t in rig.scene.targets)
    assert any(isinstance(t.target, Checkerboard) for t in rig.scene.targets)


def test_default_cameras_are_realistic_20x_blocks(rig):
    for cam in rig.cameras.values():
        m = cam.model
        assert (m.image_width, m.image_height) == (1280, 720)
        raw = np.linspace(0, 16384, 65)
        fx = np.array([m.camera_matrix(z)[0, 0] for z in raw])
        assert 1050 < fx[0] < 1150 and 20000 < fx[-1] < 24000
        assert np.all(np.diff(fx) > 0)
        # not linear in raw zoom: mid-range focal far below the straight line
        assert fx[32] < 0.5 * (fx[0] + fx[-1]) * 0.5
        K0, K1 = m.camera_matrix(0.0), m.camera_matrix(16384.0)
        assert 0 < abs(K0[1, 1] / K0[0, 0] - 1) < 0.005  # small aspect
        assert 0.5 < np.hypot(*(K1[:2, 2] - K0[:2, 2])) < 10  # principal point drifts a few px
        d0, d1 = m.distortion(0.0), m.distortion(16384.0)
        assert -0.3 < d0[0] < -0.15 and abs(d1[0]) < 0.05
        kin = m.kinematics
        assert 0.05 * DEG < abs(kin.axis_angle - math.pi / 2) < 1.0 * DEG  # non-perpendicular
        assert 0.01 < np.linalg.norm(kin.pan_radius) < 0.1
        assert 0.01 < np.linalg.norm(kin.tilt_radius) < 0.1
        assert 0.01 < abs(kin.zoom_translation(16384.0) - kin.zoom_translation(0.0)) < 0.1
        mech = cam.mechanics
        assert mech.pan.min == pytest.approx(-170 * DEG) and mech.pan.max == pytest.approx(170 * DEG)
        assert mech.tilt.min == pytest.approx(-30 * DEG) and mech.tilt.max == pytest.approx(90 * DEG)
        assert 0.01 * DEG < mech.pan.backlash < 0.1 * DEG
        assert mech.pan.periodic_error and mech.pan.encoder_step > 0
        assert (mech.zoom.min, mech.zoom.max) == (0.0, 16384.0)
        assert cam.thermal.drifts and cam.timing.stamp_jitter > 0
        assert cam.noise.enabled


def test_default_cameras_differ_and_sit_half_a_metre_apart(rig):
    left, right = rig.cameras["left"], rig.cameras["right"]
    assert 0.45 < np.linalg.norm(left.mount_t - right.mount_t) < 0.55
    assert left.mount_t[1] > right.mount_t[1]  # left is on the +y (left) side
    # both look the same way (within a degree), yet not identically
    assert 0 < float(rotation_angle(left.mount_R.T @ right.mount_R)) < 1.0 * DEG
    assert left.model.camera_matrix(0.0)[0, 0] != right.model.camera_matrix(0.0)[0, 0]
    assert not np.allclose(left.model.kinematics.pan_axis, right.model.kinematics.pan_axis)
    assert left.mechanics.pan.backlash != right.mechanics.pan.backlash


def _visible(rig, cam, target, pan, tilt, zoom, margin=10):
    """True if every object point of the target is inside the image of the ideal-ish pose."""
    m = cam.model
    R_m, T_m = m.pose(pan, tilt, zoom)
    R = cam.home_R @ R_m
    t = cam.home_R @ T_m + cam.mount_t
    uv, z = project_points(target.object_points_world(), m.camera_matrix(zoom), m.distortion(zoom), R, t)
    return bool(np.all(z > 0) and np.all((uv > margin) & (uv < [m.image_width - margin, m.image_height - margin])))


def _aim(cam, point):
    d = cam.mount_R.T @ (point - cam.mount_t)
    return math.atan2(d[1], d[0]), math.atan2(d[2], math.hypot(d[0], d[1]))


def test_scene_targets_visible_where_intended(rig):
    for cam in rig.cameras.values():
        for name in ("big_checkerboard", "charuco_board"):
            target = rig.scene.target(name)
            assert _visible(rig, cam, target, 0.0, 0.0, 0.0), f"{cam.name}: {name} not visible at home"
            pan, tilt = _aim(cam, target.object_points_world().mean(axis=0))
            assert _visible(rig, cam, target, pan, tilt, 0.0), f"{cam.name}: {name} not visible aimed"
        for name, zoom in (("far_checkerboard", 16384.0), ("far_charuco", 16384.0), ("mid_checkerboard", 11000.0)):
            target = rig.scene.target(name)
            pan, tilt = _aim(cam, target.object_points_world().mean(axis=0))
            assert _visible(rig, cam, target, pan, tilt, zoom), f"{cam.name}: {name} not visible at zoom {zoom}"


def test_facing_rotation_faces_the_viewer():
    R = facing_rotation(np.array([4.0, 0.0, 0.0]), np.zeros(3))
    # a board straight ahead of a camera looking along +x: target = optical axes of that camera
    assert np.allclose(R, BODY_FROM_OPTICAL, atol=1e-12)
    R = facing_rotation(np.array([3.0, 2.0, 1.0]), np.zeros(3), roll=0.3)
    assert np.allclose(R @ R.T, np.eye(3), atol=1e-12) and np.linalg.det(R) == pytest.approx(1.0)
    assert R[:, 2] @ np.array([3.0, 2.0, 1.0]) > 0  # z points away from the viewer


def mutate(data, path, value):
    """Deep copy of ``data`` with the dotted ``path`` set to ``value`` (``...`` deletes it)."""
    out = copy.deepcopy(data)
    node = out
    keys = path.split(".")
    for k in keys[:-1]:
        node = node[int(k)] if isinstance(node, list) else node[k]
    last = keys[-1]
    if value is ...:
        del node[int(last) if isinstance(node, list) else last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return out


@pytest.mark.parametrize("path, value, field, words", [
    ("cameras.left.mechanics.pan.max_speed", ..., "cameras.left.mechanics.pan.max_speed", "missing"),
    ("cameras.left.mechanics.pan.max_speed", -1.0, "cameras.left.mechanics.pan.max_speed", "> 0"),
    ("cameras.left.mechanics.tilt.backlash", "big", "cameras.left.mechanics.tilt.backlash", "number"),
    ("cameras.left.mechanics.pan.periodic_error.0.order", 0, "cameras.left.mechanics.pan.periodic_error[0].order", "integer"),
    ("cameras.right.mechanics.pan.speed", 1.0, "cameras.right.mechanics.pan.speed", "unknown"),
    ("cameras.left.mount.xyz", [0, 1], "cameras.left.mount.xyz", "3 finite numbers"),
    ("cameras.left.model.intrinsics.fx", ..., "cameras.left.model.intrinsics.fx", "missing"),
    ("cameras.left.model.kinematics.order", "sideways", "cameras.left.model.kinematics.order", "pan_tilt"),
    ("cameras.left.thermal.time_constant", 0, "cameras.left.thermal.time_constant", "> 0"),
    ("cameras.left.timing.frame_rate", 0, "cameras.left.timing.frame_rate", "> 0"),
    ("cameras.left.image_noise.read_noise", -2, "cameras.left.image_noise.read_noise", ">= 0"),
    ("cameras.left.mechanics.zoom.max", 20000, "cameras.left.mechanics.zoom", "zoom range"),
    ("scene.targets.0.type", "circles", "scene.targets[0].type", "checkerboard"),
    ("scene.targets.0.rows", 1, "scene.targets[0].rows", ">= 2"),
    ("scene.targets.2.marker", 0.2, "scene.targets[2].type", "marker"),
    ("scene.targets.2.facing", ..., "scene.targets[2].pose", "exactly one"),
    ("scene.targets.2.name", "big_checkerboard", "scene.targets", "duplicate"),
    ("scene.background", 300, "scene.background", "255"),
    ("format_version", 7, "format_version", "unsupported"),
    ("cameras", {}, "cameras", "no cameras"),
])
def test_malformed_rig_errors_name_field_and_file(rig_data, path, value, field, words):
    with pytest.raises(RigFileError) as info:
        rig_from_dict(mutate(rig_data, path, value), "my_rig.yaml")
    err = info.value
    assert err.source == "my_rig.yaml" and err.field == field, str(err)
    assert str(err).startswith("my_rig.yaml: ") and field in str(err)
    assert words in str(err), str(err)


def test_rig_file_errors(tmp_path):
    with pytest.raises(RigFileError, match="file not found"):
        load_rig(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("cameras: [1, 2\n")
    with pytest.raises(RigFileError, match=r"bad.yaml: file: not valid YAML at line"):
        load_rig(bad)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(RigFileError, match="empty"):
        load_rig(empty)
    # a minimal rig in a file: errors carry the path
    data = yaml.safe_load(default_rig_path().read_text())
    data["cameras"]["left"]["mechanics"]["pan"]["max_accel"] = "fast"
    path = tmp_path / "rig.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(RigFileError) as info:
        load_rig(path)
    assert str(path) in str(info.value) and "cameras.left.mechanics.pan.max_accel" in str(info.value)
