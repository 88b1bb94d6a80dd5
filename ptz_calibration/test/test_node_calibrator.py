"""ptz_calibrator over DDS: the Calibrate action drives a simulated ptz_driver through a small
capture protocol (~/move_to, ~/capture), runs the pipeline in a child process and installs the
result for the driver; cancel and failures change nothing. Plus the protocol-file loader."""

import math
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import Recorder, unique_name, wait_until

CAMERA = "left"
SMALL = {"zoom_steps": 3, "views_per_step": 4, "pan_sweep": 5, "tilt_sweep": 5}  # ~30 views, ~40 s


# -- protocol files (no ROS) ---------------------------------------------------------------------

def write(path, data):
    path.write_text(yaml.safe_dump(data))
    return path


def test_protocol_file_loads_views_and_targets(tmp_path):
    from ptz_calibration.calibration.targets import Checkerboard
    from ptz_calibration.nodes.calibration_job import load_protocol_file

    path = write(tmp_path / "p.yaml", {
        "targets": {"big": {"type": "checkerboard", "rows": 7, "cols": 10, "square": 0.1},
                    "far": {"type": "charuco", "squares_x": 7, "squares_y": 5, "square": 0.04, "marker": 0.03}},
        "zoom_range": [0, 16384],
        "views": [{"pan": 0.05, "tilt": -0.02, "zoom": 0, "target": "big", "tag": "zoom_sweep"},
                  {"pan": 0.1, "tilt": 0.0, "zoom": 16384, "target": "far"},
                  {"pan": -0.2, "tilt": 0.0, "zoom": 0, "target": "big", "tag": "pan_sweep"}]})
    plan = load_protocol_file(path)
    assert [(v.pan, v.tilt, v.zoom, v.target, v.tag) for v in plan.views] == [
        (0.05, -0.02, 0.0, "big", "zoom_sweep"), (0.1, 0.0, 16384.0, "far", "zoom_sweep"),
        (-0.2, 0.0, 0.0, "big", "pan_sweep")]
    assert isinstance(plan.targets["big"], Checkerboard) and plan.targets["big"].rows == 7
    assert plan.zoom_range == (0.0, 16384.0) and plan.source == str(path)

    one = load_protocol_file(write(tmp_path / "one.yaml", {   # one board: views need no target
        "targets": {"b": {"type": "checkerboard", "rows": 6, "cols": 9, "square": 0.025}},
        "views": [{"pan": 0, "tilt": 0, "zoom": 100}]}))
    assert one.views[0].target == "b" and one.zoom_range is None


@pytest.mark.parametrize("data,field,problem", [
    ({"views": [{"pan": 0, "tilt": 0, "zoom": 0}]}, "targets", "missing"),
    ({"targets": {"b": {"type": "checkerboard", "rows": 6, "cols": 9}}, "views": []}, "targets.b.square", "missing"),
    ({"targets": {"b": {"type": "checkerboard", "rows": 6, "cols": 9, "square": 0.02}}, "views": []},
     "views", "empty"),
    ({"targets": {"b": {"type": "checkerboard", "rows": 6, "cols": 9, "square": 0.02}},
      "views": [{"pan": 0, "tilt": "up", "zoom": 0}]}, "views[0].tilt", "finite number"),
    ({"targets": {"b": {"type": "checkerboard", "rows": 6, "cols": 9, "square": 0.02},
                  "c": {"type": "checkerboard", "rows": 5, "cols": 8, "square": 0.02}},
      "views": [{"pan": 0, "tilt": 0, "zoom": 0}]}, "views[0].target", "missing"),
    ({"targets": {"b": {"type": "checkerboard", "rows": 6, "cols": 9, "square": 0.02}},
      "views": [{"pan": 0, "tilt": 0, "zoom": 0, "target": "x"}]}, "views[0].target", "unknown target 'x'"),
    ({"targets": {"b": {"type": "checkerboard", "rows": 6, "cols": 9, "square": 0.02}}, "zoom_range": [0, 100],
      "views": [{"pan": 0, "tilt": 0, "zoom": 200}]}, "views[0].zoom", "outside zoom_range"),
    ({"targets": {"b": {"type": "checkerboard", "rows": 6, "cols": 9, "square": 0.02}},
      "views": [{"pan": 0, "tilt": 0, "zoom": 0, "pan_deg": 3}]}, "views[0].pan_deg", "unknown field"),
])
def test_protocol_file_errors_name_the_file_and_field(tmp_path, data, field, problem):
    from ptz_calibration.nodes.calibration_job import ProtocolFileError, load_protocol_file

    path = write(tmp_path / "bad.yaml", data)
    with pytest.raises(ProtocolFileError) as info:
        load_protocol_file(path)
    assert info.value.field == field and problem in str(info.value) and str(path) in str(info.value), str(info.value)


def test_report_figures_flatten_summary_and_kinematics():
    from ptz_calibration.nodes.calibration_job import report_figures

    report = {"summary": {"rms_px": 0.0293, "views_used": 22}, "other": {"x": 1},
              "kinematics": {"order": "pan_tilt", "pan": {"axis": [0.0, -1.0, 0.001], "axis_std_deg": 0.01},
                             "notes": ["a note"], "zoom_translation": [{"zoom": 0}]}}
    assert dict(report_figures(report)) == {
        "summary.rms_px": "0.0293", "summary.views_used": "22", "kinematics.order": "pan_tilt",
        "kinematics.pan.axis": "[0, -1, 0.001]", "kinematics.pan.axis_std_deg": "0.01"}


# -- over DDS --------------------------------------------------------------------------------------

class Setup:
    pass


@pytest.fixture(scope="module")
def nodes(ros_context, spinner, probe, tmp_path_factory):
    from ptz_calibration_msgs.action import Calibrate
    from ptz_calibration_msgs.msg import PtzState
    from rclpy.action import ActionClient
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import CameraInfo

    from ptz_calibration.drivers.simulated import package_config_file
    from ptz_calibration.model import model_from_dict, save_model
    from ptz_calibration.nodes.calibrator import CalibratorNode
    from ptz_calibration.nodes.ptz_driver import PtzDriverNode

    home = tmp_path_factory.mktemp("ros_home")
    mp = pytest.MonkeyPatch()
    mp.setenv("ROS_HOME", str(home))
    s = Setup()
    # the driver starts with a poor calibration (fx +4 %); install_file holds an earlier install
    data = yaml.safe_load(package_config_file("sim_left_model.yaml").read_text())
    data["intrinsics"]["fx"]["y"] = [1.04 * v for v in data["intrinsics"]["fx"]["y"]]
    initial = save_model(model_from_dict(data), home / "initial" / f"{CAMERA}.yaml", backup=False)
    s.install_file = home / "installed" / f"{CAMERA}.yaml"
    s.install_file.parent.mkdir()
    s.install_file.write_text(initial.read_text())
    s.previous_text = s.install_file.read_text()
    s.url = f"file://{initial}"
    s.driver = spinner.add(PtzDriverNode(unique_name("driver"), context=ros_context, parameter_overrides=[
        Parameter("camera_name", value=CAMERA), Parameter("backend", value="sim"),
        Parameter("calibration_url", value=s.url), Parameter("publish_images", value=False)]))
    s.calibrator = spinner.add(CalibratorNode(unique_name("calibrator"), context=ros_context, parameter_overrides=[
        Parameter("driver", value=s.driver.get_name()), Parameter("camera_name", value=CAMERA),
        Parameter("install_file", value=str(s.install_file)), Parameter("settle", value=0.1)]))
    s.infos = Recorder(probe, CameraInfo, f"/{s.driver.get_name()}/camera_info", 100)
    s.states = Recorder(probe, PtzState, f"/{s.driver.get_name()}/ptz_state", 100)
    s.client = ActionClient(probe, Calibrate, f"/{s.calibrator.get_name()}/calibrate")
    assert s.client.wait_for_server(timeout_sec=20.0)
    assert s.infos.wait_for(count=3, timeout=30.0)
    s.home = home
    yield s
    mp.undo()


def send(s, timeout=20.0, **fields):
    """Send a goal; (goal handle, feedback list)."""
    from ptz_calibration_msgs.action import Calibrate

    feedback = []
    future = s.client.send_goal_async(Calibrate.Goal(**fields), feedback_callback=lambda m: feedback.append(m.feedback))
    assert wait_until(future.done, timeout)
    return future.result(), feedback


def finish(handle, timeout):
    future = handle.get_result_async()
    assert wait_until(future.done, timeout), "no result in time"
    return future.result()


@pytest.mark.ros
def test_missing_dataset_dir_fails_cleanly(nodes, tmp_path):
    from action_msgs.msg import GoalStatus

    missing = tmp_path / "no_such_dataset"
    handle, _ = send(nodes, dataset_dir=str(missing), output_dir=str(tmp_path / "out"), install=True)
    assert handle.accepted
    answer = finish(handle, 30.0)
    assert answer.status == GoalStatus.STATUS_ABORTED
    assert not answer.result.success and str(missing) in answer.result.message, answer.result.message
    assert "does not exist" in answer.result.message and "nothing installed" in answer.result.message
    assert math.isnan(answer.result.rms_px) and not answer.result.model_file
    assert nodes.install_file.read_text() == nodes.previous_text


@pytest.mark.ros
def test_cancel_mid_capture_changes_nothing(nodes, tmp_path):
    from action_msgs.msg import GoalStatus

    out = tmp_path / "cancelled"
    handle, feedback = send(nodes, output_dir=str(out), install=True, **SMALL)
    assert handle.accepted
    assert wait_until(lambda: feedback and feedback[-1].stage == "capture" and feedback[-1].views_accepted >= 2, 60.0)
    second, _ = send(nodes, output_dir=str(tmp_path / "second"), install=True)  # one goal at a time
    assert not second.accepted
    cancel = handle.cancel_goal_async()
    assert wait_until(cancel.done, 10.0)
    answer = finish(handle, 30.0)
    assert answer.status == GoalStatus.STATUS_CANCELED, answer.result.message
    assert "canceled" in answer.result.message and "nothing installed" in answer.result.message
    assert str(out / "dataset") in answer.result.message  # the partial dataset is kept, and said so
    assert (out / "dataset" / "manifest.yaml").exists()
    assert nodes.driver.get_parameter("calibration_url").value == nodes.url
    assert nodes.install_file.read_text() == nodes.previous_text
    assert not nodes.install_file.with_name(nodes.install_file.name + ".bak").exists()
    assert not feedback[-1].stage.startswith("calibrate")


@pytest.mark.ros
@pytest.mark.slow
def test_calibrate_captures_calibrates_and_installs(nodes, tmp_path):
    from action_msgs.msg import GoalStatus

    from ptz_calibration.calibration.dataset import load_dataset
    from ptz_calibration.model import load_model
    from ptz_calibration.nodes.calibration_job import protocol_options, simulator_plan

    planned = len(simulator_plan("", CAMERA, protocol_options(**SMALL)).views)
    before = nodes.infos.messages[-1]
    out = tmp_path / "run"
    start = time.monotonic()
    nodes.states.clear()
    handle, feedback = send(nodes, output_dir=str(out), install=True, **SMALL)
    assert handle.accepted
    answer = finish(handle, 600.0)
    elapsed = time.monotonic() - start
    rate = len(nodes.states.messages) / elapsed
    assert rate > 40.0, f"the driver's feedback fell to {rate:.1f} Hz during the goal"  # 50 Hz configured
    result = answer.result
    assert answer.status == GoalStatus.STATUS_SUCCEEDED, result.message
    assert result.success
    print(f"\n[calibrator] {elapsed:.1f} s, rms {result.rms_px:.4f} px, {len(feedback)} feedback messages, "
          f"driver feedback {rate:.1f} Hz: {result.message}")

    # feedback: increasing progress over the stages, the capture counted view by view
    progress = [f.progress for f in feedback]
    assert progress == sorted(progress) and progress[-1] == pytest.approx(1.0)
    stages = [f.stage for f in feedback]
    assert stages[0] == "capture" and "install" in stages and stages[-1] == "done"
    assert any(s.startswith("calibrate: detection") for s in stages) and any(s.startswith("calibrate: bundle")
                                                                                 for s in stages)
    captures = [f for f in feedback if f.stage == "capture"]
    assert captures[-1].views_accepted == captures[-1].views_total == planned
    assert all(math.isnan(f.rms_px) for f in captures) and math.isfinite(feedback[-1].rms_px)

    # result: figures, files, the dataset as captured (reported state per view)
    assert 0 < result.rms_px < 0.5
    figures = {kv.key: kv.value for kv in result.figures}
    assert float(figures["summary.rms_px"]) == pytest.approx(result.rms_px, rel=1e-5)
    assert "kinematics.pan.axis" in figures, sorted(figures)
    names = {Path(p).name for p in result.files}
    assert {"manifest.yaml", "left_model.yaml", "report.json", "left.yaml"} <= names, names
    assert all(Path(p).exists() for p in result.files)
    dataset = load_dataset(out / "dataset")
    assert len(dataset.captures) == planned and dataset.cameras == [CAMERA]
    assert {c.tag for c in dataset.captures} == {"zoom_sweep", "pan_sweep", "tilt_sweep"}
    assert all(c.temperature is not None and c.stamp > 1e9 for c in dataset.captures)

    # installed: model file, backup of the previous one, the driver's parameter and CameraInfo
    assert result.model_file == str(nodes.install_file)
    assert result.backup_file == str(nodes.install_file) + ".bak"
    assert open(result.backup_file).read() == nodes.previous_text
    model = load_model(result.model_file)
    assert nodes.driver.get_parameter("calibration_url").value == f"file://{nodes.install_file}"
    nodes.infos.clear()
    info = nodes.infos.wait_for(count=3, timeout=10.0)[-1]
    zoom = nodes.driver.history.latest().zoom_raw
    np.testing.assert_allclose(np.reshape(info.k, (3, 3)), model.camera_matrix(zoom), rtol=1e-9)
    assert abs(info.k[0] / before.k[0] - 1) > 0.01  # the poor calibration (fx +4 %) is gone

    # again from the dataset just captured, without installing: nothing of the driver changes
    installed = nodes.install_file.read_text()
    handle, feedback = send(nodes, dataset_dir=str(out / "dataset"), output_dir=str(tmp_path / "again"))
    answer = finish(handle, 300.0)
    assert answer.status == GoalStatus.STATUS_SUCCEEDED, answer.result.message
    assert answer.result.model_file == str(tmp_path / "again" / "left_model.yaml") and not answer.result.backup_file
    assert answer.result.rms_px == pytest.approx(result.rms_px, rel=1e-3)  # same data (solver round-off)
    assert feedback[0].stage.startswith("calibrate") and "install" not in [f.stage for f in feedback]
    assert nodes.install_file.read_text() == installed
    assert nodes.driver.get_parameter("calibration_url").value == f"file://{nodes.install_file}"

    # a dataset the pipeline cannot calibrate (two views): aborted with its reason, nothing installed
    from ptz_calibration.calibration.dataset import save_manifest

    few = tmp_path / "few"
    (few / "images").mkdir(parents=True)
    for c in dataset.captures[:2]:
        (few / c.image).write_bytes((out / "dataset" / c.image).read_bytes())
    save_manifest(few, dataset.targets, dataset.captures[:2], dataset.zoom_range)
    handle, _ = send(nodes, dataset_dir=str(few), output_dir=str(tmp_path / "few_out"), install=True)
    answer = finish(handle, 300.0)
    assert answer.status == GoalStatus.STATUS_ABORTED
    assert answer.result.message.startswith("calibration failed: ") and "nothing installed" in answer.result.message
    assert nodes.install_file.read_text() == installed

    # cancel while the pipeline runs in its child process: the child is stopped, nothing installed
    import multiprocessing

    handle, feedback = send(nodes, dataset_dir=str(out / "dataset"), output_dir=str(tmp_path / "cancel"), install=True)
    assert wait_until(lambda: feedback and feedback[-1].stage.startswith("calibrate"), 30.0)
    cancel = handle.cancel_goal_async()
    assert wait_until(cancel.done, 10.0)
    answer = finish(handle, 60.0)
    assert answer.status == GoalStatus.STATUS_CANCELED, answer.result.message
    assert nodes.install_file.read_text() == installed
    assert not multiprocessing.active_children()


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    from ptz_calibration.calibration.capture_protocol import ProtocolOptions, simulate_dataset

    folder = tmp_path_factory.mktemp("small_dataset")
    simulate_dataset(None, folder, CAMERA, ProtocolOptions(**SMALL))
    return folder


@pytest.mark.ros
@pytest.mark.parametrize("refusal", ["parameter", "reload"])
def test_install_is_rolled_back_when_the_driver_refuses(ros_context, spinner, probe, small_dataset, tmp_path,
                                                        refusal):
    """A stand-in driver refuses the new calibration_url (read-only) or fails the reload: the
    install file and the driver's calibration_url are put back."""
    from action_msgs.msg import GoalStatus
    from ptz_calibration_msgs.action import Calibrate
    from rcl_interfaces.msg import ParameterDescriptor
    from rclpy.action import ActionClient
    from rclpy.parameter import Parameter
    from std_srvs.srv import Trigger

    from ptz_calibration.nodes.calibrator import CalibratorNode

    import rclpy

    fake = spinner.add(rclpy.create_node(unique_name("fake_driver"), context=ros_context))
    fake.declare_parameter("calibration_url", "file:///old/left.yaml",
                           ParameterDescriptor(read_only=refusal == "parameter"))
    reloads = []

    def reload(_req, res):
        reloads.append(fake.get_parameter("calibration_url").value)
        res.success, res.message = False, "simulated failure"
        return res
    fake.create_service(Trigger, "~/reload_calibration", reload)
    install_file = tmp_path / "installed.yaml"
    install_file.write_text("previous install\n")
    calibrator = spinner.add(CalibratorNode(unique_name("calibrator"), context=ros_context, parameter_overrides=[
        Parameter("driver", value=fake.get_name()), Parameter("camera_name", value=CAMERA),
        Parameter("install_file", value=str(install_file)), Parameter("service_timeout", value=10.0)]))
    client = ActionClient(probe, Calibrate, f"/{calibrator.get_name()}/calibrate")
    assert client.wait_for_server(timeout_sec=20.0)
    future = client.send_goal_async(Calibrate.Goal(dataset_dir=str(small_dataset), output_dir=str(tmp_path / "out"),
                                                   install=True))
    assert wait_until(future.done, 20.0) and future.result().accepted
    result_future = future.result().get_result_async()
    assert wait_until(result_future.done, 120.0)
    answer = result_future.result()
    assert answer.status == GoalStatus.STATUS_ABORTED
    message = answer.result.message
    assert "installation failed, rolled back" in message and "nothing installed" in message, message
    assert ("simulated failure" if refusal == "reload" else "refused calibration_url") in message, message
    assert install_file.read_text() == "previous install\n"
    assert fake.get_parameter("calibration_url").value == "file:///old/left.yaml"
    assert reloads == ([f"file://{install_file}"] if refusal == "reload" else [])
    assert answer.result.model_file == str(tmp_path / "out" / "left_model.yaml")  # calibrated, not installed
    assert not answer.result.backup_file and f"the calibration results are in {tmp_path / 'out'}" in message
    client.destroy()
    spinner.destroy(calibrator)
    spinner.destroy(fake)
