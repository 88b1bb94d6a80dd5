"""ptz_driver with backend visca against the VISCA-over-IP emulator on a loopback UDP socket
(real rclpy, real DDS on the loopback, real sockets): commands move the emulated head, the
published state matches it, faults show in /diagnostics, the node recovers, and an
acknowledged command is not lost. A serial (pty) smoke test goes through the same node."""

import math
import time

import pytest

from conftest import Recorder, diag_values, stamp_of, unique_name, wait_until

pytestmark = pytest.mark.ros

UNIT = math.radians(170.0 / 2267)  # EVI-D70 position unit


def make_node(ros_context, spinner, probe, params):
    from diagnostic_msgs.msg import DiagnosticArray
    from ptz_calibration_msgs.msg import PtzCommand, PtzState
    from rclpy.parameter import Parameter

    from ptz_calibration.nodes.ptz_driver import PtzDriverNode

    camera = unique_name("visca")
    node = spinner.add(PtzDriverNode(unique_name("driver"), context=ros_context, parameter_overrides=[
        Parameter("camera_name", value=camera), Parameter("backend", value="visca"),
        Parameter("publish_images", value=False), Parameter("reconnect_interval", value=0.2),
        Parameter("reconnect_max_interval", value=0.5), Parameter("visca.timeout", value=0.1),
        *[Parameter(k, value=v) for k, v in params.items()]]))
    ns = "/" + node.get_name()

    class S:
        pass
    s = S()
    s.node, s.camera = node, camera
    s.states = Recorder(probe, PtzState, f"{ns}/ptz_state", 200)
    name = f"{node.get_fully_qualified_name()}: {camera}"
    s.diag = Recorder(probe, DiagnosticArray, "/diagnostics", 50,
                      keep=lambda m: any(st.name == name for st in m.status))
    s.cmd = probe.create_publisher(PtzCommand, f"{ns}/cmd", 10)
    assert s.states.wait_for(count=3, timeout=30.0)
    assert wait_until(lambda: s.cmd.get_subscription_count() > 0, 20.0)
    return s


@pytest.fixture(scope="module")
def setup(ros_context, spinner, probe):
    from ptz_calibration.emulators.visca import ViscaCameraCore, ViscaIpEmulator, make_sim

    core = ViscaCameraCore(make_sim())
    server = ViscaIpEmulator(core)
    s = make_node(ros_context, spinner, probe, {"visca.transport": "ip", "visca.host": "127.0.0.1",
                                               "visca.ip_port": server.port})
    s.core, s.server = core, server
    yield s
    core.faults.mute = False
    server.close()


def absolute(pan, tilt, zoom=math.nan):
    from ptz_calibration_msgs.msg import PtzCommand

    return PtzCommand(mode=PtzCommand.MODE_ABSOLUTE, pan=pan, tilt=tilt, zoom=zoom)


def test_cmd_moves_the_emulated_head_and_state_matches(setup):
    s = setup
    sim = s.core.sim
    s.cmd.publish(absolute(0.3, 0.2, 6000.0))
    assert wait_until(lambda: abs(sim.feedback().pan - 0.3) < 2e-3 and not sim.feedback().moving, 10.0)
    t = time.time()
    msgs = s.states.wait_for(lambda m: stamp_of(m) > t, count=10, timeout=10.0)
    assert len(msgs) >= 10
    for m in msgs[-5:]:
        truth = sim.feedback(stamp_of(m) + sim.spec.timing.feedback_latency)
        # half a device unit of quantization + 4 sigma of the sim's encoder noise
        assert abs(m.pan - truth.pan) <= 0.5 * UNIT + math.radians(0.016)
        assert abs(m.tilt - truth.tilt) <= 0.5 * UNIT + math.radians(0.016)
        assert abs(m.zoom_raw - truth.zoom_raw) <= 1.0
    assert abs(msgs[-1].pan - 0.3) < 2e-3 and abs(msgs[-1].tilt - 0.2) < 2e-3 and msgs[-1].zoom_raw == 6000.0
    # feedback rate the node reaches against the emulator (nominal 50 Hz)
    window = [m for m in s.states.messages if stamp_of(m) > t]
    span = stamp_of(window[-1]) - stamp_of(window[0])
    rate = (len(window) - 1) / span
    print(f"feedback rate {rate:.1f} Hz")
    assert rate > 20.0
    # link statistics reach /diagnostics
    msg = s.diag.wait_for(lambda m: "link: round trip (ms)" in diag_values(m)[1], timeout=5.0)
    assert msg and int(diag_values(msg[-1])[1]["link: acks"]) >= 2


def test_acknowledged_command_is_not_lost_when_its_ack_is_dropped(setup):
    s = setup
    sim = s.core.sim
    n = len(s.core.executed)
    s.core.faults.drop_acks = 1
    s.cmd.publish(absolute(-0.25, 0.1))
    assert wait_until(lambda: abs(sim.feedback().pan + 0.25) < 2e-3 and not sim.feedback().moving, 10.0)
    pt = [m for m in s.core.executed[n:] if m[1:4] == bytes((0x01, 0x06, 0x02))]
    assert len(pt) == 1  # executed exactly once although it was sent twice
    assert s.node.driver.link_statistics()["duplicates detected"] >= 1


def test_faults_in_diagnostics_and_recovery(setup):
    s = setup
    s.core.faults.drop_replies = 2  # two lost answers: retried, the node does not even notice
    s.core.faults.malformed_replies = 1
    time.sleep(0.3)
    s.core.faults.mute = True
    t_mute = time.time()
    msgs = s.diag.wait_for(lambda m: diag_values(m)[1]["backend connected"] == "false", timeout=10.0)
    assert msgs, "a silent camera must show as disconnected"
    status, values = diag_values(msgs[-1])
    from diagnostic_msgs.msg import DiagnosticStatus

    assert status.level == DiagnosticStatus.ERROR and "disconnected" in status.message
    assert int(values["failed reads"]) >= 1 and int(values["link: timeouts"]) >= 3
    assert int(values["link: bad frames"]) >= 1
    t_lost = time.time()
    s.core.faults.mute = False
    t_back = time.time()
    assert s.states.wait_for(lambda m: stamp_of(m) > t_back, count=3, timeout=10.0), "publishing resumes"
    recovered = [m for m in s.states.messages if stamp_of(m) > t_back][0]
    print(f"lost after {t_lost - t_mute:.2f} s; first state {stamp_of(recovered) - t_back:.2f} s after the camera came back")
    assert stamp_of(recovered) - t_back < 3.0
    assert wait_until(lambda: s.node._reconnects >= 1, 5.0)
    # commands work again
    s.cmd.publish(absolute(0.05, 0.0))
    assert wait_until(lambda: abs(s.core.sim.feedback().pan - 0.05) < 2e-3, 10.0)


def test_serial_smoke(ros_context, spinner, probe):
    from ptz_calibration.emulators.visca import ViscaCameraCore, ViscaSerialEmulator, make_sim

    core = ViscaCameraCore(make_sim())
    server = ViscaSerialEmulator(core)
    try:
        s = make_node(ros_context, spinner, probe, {"visca.transport": "serial", "visca.port": server.device})
        s.cmd.publish(absolute(-0.1, 0.15))
        assert wait_until(lambda: abs(core.sim.feedback().pan + 0.1) < 2e-3 and not core.sim.feedback().moving, 10.0)
        t = time.time()
        (m, *_) = s.states.wait_for(lambda m: stamp_of(m) > t + 0.05, timeout=5.0)
        assert abs(m.pan + 0.1) < 2e-3 and abs(m.tilt - 0.15) < 2e-3
        assert core.received[0] == bytes.fromhex("81 01 00 01 FF")  # IF_Clear at connect
        spinner.destroy(s.node)
    finally:
        server.close()
