"""Calibration URL resolution and loading errors (pure: ament_index only when installed)."""

from pathlib import Path

import pytest

from model_fixtures import general_model
from ptz_calibration.model import ModelFileError, save_model
from ptz_calibration.nodes.calibration import load_calibration, resolve_url


def test_empty_url_means_uncalibrated():
    assert resolve_url("") is None and load_calibration("   ") is None


def test_file_url_plain_path_home_and_ros_home(tmp_path, monkeypatch):
    monkeypatch.setenv("ROS_HOME", str(tmp_path / "roshome"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_url("file:///abs/cam.yaml") == Path("/abs/cam.yaml")
    assert resolve_url("/abs/cam.yaml") == Path("/abs/cam.yaml")
    assert resolve_url("~/cams/x.yaml") == tmp_path / "home" / "cams" / "x.yaml"
    assert resolve_url("file://${ROS_HOME}/camera_info/${NAME}.yaml", "left") == \
        tmp_path / "roshome" / "camera_info" / "left.yaml"
    monkeypatch.delenv("ROS_HOME")
    assert resolve_url("${ROS_HOME}/a.yaml") == tmp_path / "home" / ".ros" / "a.yaml"


def test_unsupported_scheme_and_unknown_package_name_the_field():
    with pytest.raises(ModelFileError, match="calibration_url.*scheme"):
        resolve_url("http://example.invalid/cam.yaml")
    with pytest.raises(ModelFileError, match="calibration_url"):
        resolve_url("package://no_such_package_xyz/cam.yaml")


def test_load_round_trip_and_errors_name_file_and_field(tmp_path):
    model = general_model()
    path = save_model(model, tmp_path / "cam.yaml")
    loaded = load_calibration(f"file://{path}")
    assert loaded.camera_name == model.camera_name
    with pytest.raises(ModelFileError, match="missing.yaml.*file not found"):
        load_calibration(str(tmp_path / "missing.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text(path.read_text().replace("image_width: 1280", "image_width: -3"))
    with pytest.raises(ModelFileError, match="bad.yaml.*image_width"):
        load_calibration(str(bad))
