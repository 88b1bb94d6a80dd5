"""ptz_driver with a device that misbehaves (the ``mock`` backend is the faked *device*; rclpy,
DDS and the node are real): invalid or stale feedback never becomes TF, CameraInfo or PtzState
and is reported on /diagnostics; failed reads reconnect; ~/cmd clamps and refuses."""

import math
import time

import numpy as np
import pytest

from conftest import Recorder, diag_values, stamp_of, unique_name, wait_until

pytestmark = pytest.mark.ros


@pytest.fixture(scope="module")
def setup(ros_context, spinner, probe):
    from diagnostic_msgs.msg import DiagnosticArray
    from ptz_calibration_msgs.msg import PtzCommand, PtzState
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import CameraInfo
    from tf2_msgs.msg import TFMessage

    from ptz_calibration.drivers.mock import MockPtzDriver
    from ptz_calibration.drivers.simulated import package_config_file
    from ptz_calibration.model import load_model
    from ptz_calibration.nodes.ptz_driver import PtzDriverNode
    from ptz_calibration.nodes.tf_broadcaster import TF_QOS

    camera = unique_name("cam")
    model_file = package_config_file("sim_left_model.yaml")
    device = MockPtzDriver()
    node = spinner.add(PtzDriverNode(
        unique_name("driver"), context=ros_context, driver=device, parameter_overrides=[
            Parameter("camera_name", value=camera),
            Parameter("calibration_url", value=str(model_file)),
            Parameter("publish_images", value=False),
            Parameter("reconnect_interval", value=0.2),
        ]))
    ns = "/" + node.get_name()

    class S:
        pass
    s = S()
    s.node, s.device, s.model, s.camera = node, device, load_model(model_file), camera
    s.tf = Recorder(probe, TFMessage, "/tf", TF_QOS,
                    keep=lambda m: any(t.header.frame_id.startswith(camera) for t in m.transforms))
    s.states = Recorder(probe, PtzState, f"{ns}/ptz_state", 100)
    s.infos = Recorder(probe, CameraInfo, f"{ns}/camera_info", 100)
    name = f"{node.get_fully_qualified_name()}: {camera}"
    s.diag = Recorder(probe, DiagnosticArray, "/diagnostics", 50,
                      keep=lambda m: any(st.name == name for st in m.status))
    s.cmd = probe.create_publisher(PtzCommand, f"{ns}/cmd", 10)
    assert s.states.wait_for(count=3, timeout=30.0)
    assert wait_until(lambda: s.cmd.get_subscription_count() > 0, 20.0)
    return s


def test_invalid_and_stale_feedback_is_never_published(setup):
    from ptz_calibration.drivers import PtzFeedback

    s = setup
    now = time.time()
    bad = [
        PtzFeedback(pan=math.nan, tilt=0.0, zoom_raw=0.0, stamp=now + 0.001),        # NaN
        PtzFeedback(pan=0.0, tilt=-1.0, zoom_raw=0.0, stamp=now + 0.002),            # tilt below -30 deg
        PtzFeedback(pan=0.0, tilt=0.0, zoom_raw=20000.0, stamp=now + 0.003),         # zoom past raw_max
        PtzFeedback(pan=0.0, tilt=0.0, zoom_raw=0.0, stamp=now + 0.004, error="motor fault"),
        PtzFeedback(pan=0.0, tilt=0.0, zoom_raw=0.0, stamp=now + 5.0),               # future
        PtzFeedback(pan=0.0, tilt=0.0, zoom_raw=0.0, stamp=now - 5.0),               # stale
    ]
    before = s.node.geometry.stats
    invalid0, stale0 = before.invalid, before.stale
    s.device.inject(*bad)
    assert wait_until(lambda: s.node.geometry.stats.invalid - invalid0 >= 5 and
                      s.node.geometry.stats.stale - stale0 >= 1, 20.0), s.node.geometry.stats
    # valid samples go on after the bad ones
    t_after = time.time()
    assert s.states.wait_for(lambda m: stamp_of(m) > t_after, count=5, timeout=20.0)
    time.sleep(0.2)
    bad_stamps = {round(b.stamp, 6) for b in bad}
    for rec in (s.states, s.infos):
        assert not {round(stamp_of(m), 6) for m in rec.messages} & bad_stamps
    tf_stamps = {round(stamp_of(t), 6) for m in s.tf.messages for t in m.transforms}
    assert not tf_stamps & bad_stamps
    for m in s.states.messages:
        assert all(math.isfinite(v) for v in (m.pan, m.tilt, m.zoom_raw))
    assert s.node.geometry.stats.invalid - invalid0 == 5 and s.node.geometry.stats.stale - stale0 >= 1


def test_diagnostics_report_dropped_samples(setup):
    from diagnostic_msgs.msg import DiagnosticStatus

    s = setup
    def reported(m):
        _, values = diag_values(m)
        return int(values["invalid samples"]) >= 5 and int(values["stale samples"]) >= 1
    msgs = s.diag.wait_for(reported, timeout=20.0)
    assert msgs, "no diagnostics with the dropped samples"
    status, values = diag_values(msgs[-1])
    assert values["calibration loaded"] == "true" and values["backend connected"] == "true"
    assert values["tf source"] == "calibrated model"
    assert float(values["feedback rate (Hz)"]) > 0.0  # (50 Hz nominal; a loaded machine gives less)
    # the period in which they were dropped is a WARN with the counts
    warned = [m for m in s.diag.messages if diag_values(m)[0].level == DiagnosticStatus.WARN
              and "invalid" in diag_values(m)[0].message]
    assert warned, [diag_values(m)[0].message for m in s.diag.messages]


def test_failed_reads_reconnect_and_are_reported(setup):
    s = setup
    s.device.fail_reads(3)
    assert wait_until(lambda: s.node._reconnects >= 1, 20.0), "the node must reconnect after a lost link"
    msgs = s.diag.wait_for(lambda m: int(diag_values(m)[1]["failed reads"]) >= 1 and
                           int(diag_values(m)[1]["reconnects"]) >= 1, timeout=20.0)
    assert msgs
    t = time.time()
    assert s.states.wait_for(lambda m: stamp_of(m) > t, count=3, timeout=20.0), "publishing resumes"


def test_cmd_clamps_converts_and_refuses(setup):
    from ptz_calibration_msgs.msg import PtzCommand

    s = setup
    dev = s.device

    def send(msg):
        n = len(dev.commands)
        s.cmd.publish(msg)
        wait_until(lambda: len(dev.commands) > n, 5.0)
        time.sleep(0.05)
        return dev.commands[n:]

    nan = math.nan
    # out of the device's range: clamped
    (cmd,) = send(PtzCommand(mode=PtzCommand.MODE_ABSOLUTE, pan=0.1, tilt=2.0, zoom=nan))
    assert cmd[0] == "absolute" and cmd[1][0] == 0.1 and cmd[1][1] == pytest.approx(math.pi / 2, abs=1e-15)
    assert cmd[1][2] is None  # NaN zoom: leave it
    # magnification through the model's zoom mapping
    (cmd,) = send(PtzCommand(mode=PtzCommand.MODE_ABSOLUTE, pan=nan, tilt=nan, zoom=4.0, zoom_is_magnification=True))
    assert cmd[1][2] == pytest.approx(s.model.zoom_mapping.raw(4.0), abs=1e-9)
    assert abs(s.model.zoom_mapping.magnification(cmd[1][2]) - 4.0) < 1e-6
    # velocity: NaN = 0, rates clamped to the maximum speed
    (cmd,) = send(PtzCommand(mode=PtzCommand.MODE_VELOCITY, pan=10.0, tilt=nan, zoom=0.0, duration=0.2))
    assert cmd == ("velocity", (dev.capabilities.max_pan_speed, 0.0, 0.0, 0.2))
    assert send(PtzCommand(mode=PtzCommand.MODE_STOP))[0] == ("stop", ())
    assert send(PtzCommand(mode=PtzCommand.MODE_HOME))[0] == ("home", ())
    # refused: nothing reaches the device
    for bad in (PtzCommand(mode=PtzCommand.MODE_ABSOLUTE, pan=math.inf, tilt=0.0, zoom=nan),
                PtzCommand(mode=PtzCommand.MODE_ABSOLUTE, pan=nan, tilt=nan, zoom=nan),
                PtzCommand(mode=PtzCommand.MODE_VELOCITY, pan=0.1, tilt=0.0, zoom=0.0, duration=-1.0),
                PtzCommand(mode=9)):
        n = len(dev.commands)
        s.cmd.publish(bad)
        time.sleep(0.3)
        assert len(dev.commands) == n, f"{bad} must be refused"
    # relative: from the current position, clamped
    state = s.states.messages[-1]
    (cmd,) = send(PtzCommand(mode=PtzCommand.MODE_RELATIVE, pan=0.25, tilt=nan, zoom=nan))
    assert cmd[1][0] == pytest.approx(state.pan + 0.25, abs=0.05)  # the head may still move a little
    np.testing.assert_equal(cmd[1][1], nan)
