"""Model YAML and camera_info YAML files: round trips, atomic writes, errors naming file and field."""

import copy
import math

import numpy as np
import pytest
import yaml

from model_fixtures import RAW_MAX, general_model
from ptz_calibration.model import (
    AxisOrder,
    FeedbackError,
    ModelFileError,
    camera_info_dict,
    load_model,
    model_from_dict,
    model_to_dict,
    read_camera_info,
    save_model,
    write_camera_info,
)


@pytest.mark.parametrize("order", list(AxisOrder))
def test_model_yaml_round_trip_is_exact_to_rounding(tmp_path, order):
    model = general_model(order)
    path = save_model(model, tmp_path / "cam.yaml")
    again = load_model(path)
    assert again.camera_name == model.camera_name and again.kinematics.order is order
    rng = np.random.default_rng(0)
    pans, tilts, zooms = rng.uniform(-2, 2, 30), rng.uniform(-0.5, 1.5, 30), rng.uniform(0, RAW_MAX, 30)
    for a, b in zip(model.pose(pans, tilts, zooms), again.pose(pans, tilts, zooms)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-15)  # axes are re-normalized on load
    np.testing.assert_array_equal(model.camera_matrix(zooms), again.camera_matrix(zooms))
    np.testing.assert_array_equal(model.distortion(zooms), again.distortion(zooms))
    assert again.limits == model.limits
    assert yaml.safe_load(path.read_text())["format_version"] == 1


def test_save_is_atomic_and_keeps_a_backup(tmp_path):
    path = tmp_path / "cam.yaml"
    first = general_model()
    save_model(first, path)
    second = model_from_dict({**model_to_dict(first), "camera_name": "renamed"})
    save_model(second, path)
    assert load_model(path).camera_name == "renamed"
    assert load_model(tmp_path / "cam.yaml.bak").camera_name == first.camera_name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cam.yaml", "cam.yaml.bak"]  # no temp files left


def test_atomic_write_keeps_normal_permissions(tmp_path):
    """Not mkstemp's 0600: a new file gets 0666 less the umask, a replaced file keeps its mode."""
    import os

    from ptz_calibration.fileio import atomic_write_text

    umask = os.umask(0o022)
    try:
        fresh = atomic_write_text(tmp_path / "new.yaml", "a: 1\n")
        assert fresh.stat().st_mode & 0o777 == 0o644
        os.chmod(fresh, 0o640)
        atomic_write_text(fresh, "a: 2\n")
        assert fresh.stat().st_mode & 0o777 == 0o640 and fresh.read_text() == "a: 2\n"
    finally:
        os.umask(umask)


def _broken(mutate):
    data = copy.deepcopy(model_to_dict(general_model()))
    mutate(data)
    return data


@pytest.mark.parametrize("mutate,field,problem", [
    (lambda d: d.pop("camera_name"), "camera_name", "missing"),
    (lambda d: d.update(format_version=7), "format_version", "unsupported version"),
    (lambda d: d["kinematics"].update(pan_axis=[0, 1]), "kinematics.pan_axis", "3 finite numbers"),
    (lambda d: d["kinematics"].update(tilt_axis=[0, 0, 0]), "kinematics.tilt_axis", "zero vector"),
    (lambda d: d["kinematics"].update(order="sideways"), "kinematics.order", "expected one of"),
    (lambda d: d["intrinsics"].pop("fx"), "intrinsics.fx", "missing"),
    (lambda d: d["intrinsics"].update(fy={"type": "spline"}), "intrinsics.fy", "'type' must be one of"),
    (lambda d: d["intrinsics"].update(k9=0.1), "intrinsics.k9", "unknown intrinsic"),
    (lambda d: d["zoom"].update(raw_max=float("nan")), "zoom.raw_max", "finite number"),
    (lambda d: d.update(image_width=-4), "image_width", "positive integer"),
    (lambda d: d["limits"].update(pan=[1.0, -1.0]), "limits.pan", "min must not exceed max"),
    (lambda d: d.update(distortion_model="equidistant"), "distortion_model", "plumb_bob"),
])
def test_invalid_model_names_file_and_field(mutate, field, problem):
    with pytest.raises(ModelFileError) as info:
        model_from_dict(_broken(mutate), "cam.yaml")
    assert info.value.field == field
    assert problem in str(info.value) and str(info.value).startswith("cam.yaml: field '" + field)


def test_unreadable_files_name_the_file(tmp_path):
    with pytest.raises(ModelFileError, match="missing.yaml: file: file not found"):
        load_model(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("camera_name: [unclosed\n")
    with pytest.raises(ModelFileError, match=r"bad.yaml: file: not valid YAML at line"):
        load_model(bad)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(ModelFileError, match="empty"):
        load_model(empty)


def test_camera_info_yaml_has_the_standard_layout_and_round_trips(tmp_path):
    model = general_model()
    zoom = 5000.0
    info = camera_info_dict(model, zoom)
    assert list(info) == ["image_width", "image_height", "camera_name", "camera_matrix", "distortion_model",
                          "distortion_coefficients", "rectification_matrix", "projection_matrix"]
    path = write_camera_info(tmp_path / "left.yaml", info)
    # camera_calibration_parsers' layout: plain YAML with rows/cols/data blocks.
    raw = yaml.safe_load(path.read_text())
    assert raw["camera_matrix"]["rows"] == 3 and raw["camera_matrix"]["cols"] == 3
    assert raw["distortion_coefficients"]["cols"] == 5
    back = read_camera_info(path)
    np.testing.assert_array_equal(back["camera_matrix"], model.camera_matrix(zoom))
    np.testing.assert_array_equal(back["distortion_coefficients"][0], model.distortion(zoom))
    np.testing.assert_array_equal(back["projection_matrix"][:, :3], model.camera_matrix(zoom))
    raw["camera_matrix"]["data"] = raw["camera_matrix"]["data"][:8]
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ModelFileError, match="field 'camera_matrix.data'"):
        read_camera_info(path)


@pytest.mark.parametrize("pan,tilt,zoom,match", [
    (math.nan, 0.0, 0.0, "non-finite feedback for pan"),
    (0.0, math.inf, 0.0, "non-finite feedback for tilt"),
    (4.0, 0.0, 0.0, "pan 4.000000 rad outside"),
    (0.0, -1.2, 0.0, "tilt"),
    (0.0, 0.0, RAW_MAX + 100, "zoom"),
])
def test_invalid_feedback_is_rejected(pan, tilt, zoom, match):
    with pytest.raises(FeedbackError, match=match):
        general_model().validate_feedback(pan, tilt, zoom)
    general_model().validate_feedback(0.1, 0.2, 300.0)
