"""VISCA backend without ROS: wire bytes against the Sony documents, parser fuzzing, unit table,
and the driver against the emulator over a real pty and a real loopback UDP socket with faults.

Expected bytes are written out by hand from the EVI-D70 command list and the SRG-300H
"VISCA over IP" section (not produced by the encoder under test)."""

import math
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ptz_calibration.drivers import DriverConnectionError, DriverError, DriverTimeout, backend_settings
from ptz_calibration.drivers import visca_protocol as vp
from ptz_calibration.drivers.visca import ViscaDriver
from ptz_calibration.drivers.visca_units import TABLE_SETTINGS, ViscaUnits
from ptz_calibration.emulators.visca import ViscaCameraCore, ViscaIpEmulator, ViscaSerialEmulator, make_sim

CONFIG = Path(__file__).resolve().parents[1] / "config"
UNIT = math.radians(170.0 / 2267)  # one EVI-D70 pan/tilt position unit (0.075 deg)
H = bytes.fromhex


# -- wire format: encoders ------------------------------------------------------------------------

@pytest.mark.parametrize("frame, expected", [
    (vp.pan_tilt_absolute(1, 0x18, 0x17, 0x08DB, -400), "81 01 06 02 18 17 00 08 0D 0B 0F 0E 07 00 FF"),
    (vp.pan_tilt_absolute(2, 0x01, 0x01, -2267, 1200), "82 01 06 02 01 01 0F 07 02 05 00 04 0B 00 FF"),
    (vp.pan_tilt_relative(1, 0x05, 0x06, -1, 16), "81 01 06 03 05 06 0F 0F 0F 0F 00 00 01 00 FF"),
    (vp.pan_tilt_drive(1, 0x10, 0x08, vp.AXIS_STOP, vp.TILT_UP), "81 01 06 01 10 08 03 01 FF"),
    (vp.pan_tilt_drive(1, 0x10, 0x08, vp.AXIS_STOP, vp.TILT_DOWN), "81 01 06 01 10 08 03 02 FF"),
    (vp.pan_tilt_drive(1, 0x10, 0x08, vp.PAN_LEFT, vp.AXIS_STOP), "81 01 06 01 10 08 01 03 FF"),
    (vp.pan_tilt_drive(1, 0x10, 0x08, vp.PAN_RIGHT, vp.AXIS_STOP), "81 01 06 01 10 08 02 03 FF"),
    (vp.pan_tilt_stop(1), "81 01 06 01 01 01 03 03 FF"),
    (vp.pan_tilt_home(1), "81 01 06 04 FF"),
    (vp.zoom_direct(1, 0x4000), "81 01 04 47 04 00 00 00 FF"),
    (vp.zoom_direct(7, 0x1234), "87 01 04 47 01 02 03 04 FF"),
    (vp.zoom_stop(1), "81 01 04 07 00 FF"),
    (vp.zoom_tele(1, 7), "81 01 04 07 27 FF"),
    (vp.zoom_wide(1, 0), "81 01 04 07 30 FF"),
    (vp.pan_tilt_position_inquiry(1), "81 09 06 12 FF"),
    (vp.zoom_position_inquiry(1), "81 09 04 47 FF"),
    (vp.if_clear(1), "81 01 00 01 FF"),
    (vp.cancel(1, 2), "81 22 FF"),
])
def test_command_bytes_match_the_command_list(frame, expected):
    assert frame == H(expected)


def test_encoders_refuse_values_outside_the_protocol():
    for bad in (lambda: vp.message(0, 1), lambda: vp.message(8, 1), lambda: vp.zoom_direct(1, 0x10000),
                lambda: vp.pan_tilt_absolute(1, 0, 1, 0, 0), lambda: vp.zoom_tele(1, 8),
                lambda: vp.pan_tilt_absolute(1, 1, 1, 40000, 0), lambda: vp.pan_tilt_drive(1, 1, 1, 4, 3)):
        with pytest.raises(ValueError):
            bad()


def test_ip_header_bytes():
    # type 0100 (command), length 0005, sequence 0000_00ff, then the VISCA message
    assert vp.encode_ip(vp.PayloadType.COMMAND, 255, H("81 01 06 04 FF")) == \
        H("01 00 00 05 00 00 00 ff 81 01 06 04 FF")
    assert vp.encode_ip(vp.PayloadType.INQUIRY, 2**32 + 1, H("81 09 04 47 FF")) == \
        H("01 10 00 05 00 00 00 01 81 09 04 47 FF")
    assert vp.encode_ip(vp.PayloadType.CONTROL, 0, vp.CONTROL_RESET) == H("02 00 00 01 00 00 00 00 01")
    packet = vp.decode_ip(H("01 11 00 03 00 00 12 34 90 41 FF"))
    assert (packet.payload_type, packet.sequence, packet.payload) == (0x0111, 0x1234, H("90 41 FF"))
    err = vp.decode_ip(H("02 00 00 02 00 00 00 07 0F 01")).control_error()
    assert isinstance(err, vp.ViscaSequenceError) and err.code == 1 and err.sequence == 7
    for bad in ("01 11 00 04 00 00 00 01 90 41 FF", "09 99 00 03 00 00 00 01 90 41 FF", "01 11 00"):
        with pytest.raises(vp.ViscaFrameError):
            vp.decode_ip(H(bad))


# -- replies ----------------------------------------------------------------------------------------

def test_replies_parse_to_kinds_and_typed_errors():
    assert vp.parse_reply(H("90 41 FF")) == vp.Reply(1, vp.ReplyKind.ACK, 1)
    assert vp.parse_reply(H("A0 52 FF")) == vp.Reply(2, vp.ReplyKind.COMPLETION, 2)
    reply = vp.parse_reply(H("90 50 0F 07 02 05 00 04 0B 00 FF"))
    assert reply.kind is vp.ReplyKind.COMPLETION and reply.socket == 0
    assert vp.decode_pan_tilt_position(reply.data) == (-2267, 1200)
    assert vp.decode_zoom_position(vp.parse_reply(H("90 50 04 00 00 00 FF")).data) == 0x4000
    for frame, kind, code, socket in (("90 60 02 FF", vp.ViscaSyntaxError, 2, 0),
                                      ("90 60 03 FF", vp.ViscaBufferFull, 3, 0),
                                      ("90 61 04 FF", vp.ViscaCancelled, 4, 1),
                                      ("90 62 05 FF", vp.ViscaNoSocket, 5, 2),
                                      ("90 61 41 FF", vp.ViscaNotExecutable, 0x41, 1),
                                      ("90 60 01 FF", vp.ViscaMessageLengthError, 1, 0),
                                      ("90 60 77 FF", vp.ViscaReplyError, 0x77, 0)):
        err = vp.parse_reply(H(frame)).error()
        assert type(err) is kind and err.code == code and err.socket == socket
        assert isinstance(err, DriverError)
    for bad in ("90 41", "90 41 00", "80 41 FF", "91 41 FF", "90 FF 41 FF", "90 71 FF", "90 60 FF", "FF"):
        with pytest.raises(vp.ViscaFrameError):
            vp.parse_reply(H(bad))
    with pytest.raises(vp.ViscaFrameError):
        vp.decode_pan_tilt_position(H("0F 1F 00 00 00 00 00 00"))  # a data byte > 0F
    with pytest.raises(vp.ViscaFrameError):
        vp.decode_zoom_position(H("00 00 00"))


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=40))
def test_random_bytes_only_raise_the_typed_frame_error(data):
    for parse in (vp.parse_reply, vp.decode_ip, vp.decode_pan_tilt_position, vp.decode_zoom_position):
        try:
            parse(data)
        except vp.ViscaFrameError:
            pass


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=14))
def test_random_payloads_in_a_valid_ip_header_only_raise_the_typed_errors(payload):
    packet = vp.decode_ip(vp.encode_ip(vp.PayloadType.REPLY, 3, payload))
    assert packet.payload == payload
    try:
        reply = vp.parse_reply(packet.payload)
    except vp.ViscaFrameError:
        return
    if reply.kind is vp.ReplyKind.ERROR:
        assert isinstance(reply.error(), vp.ViscaReplyError)


@given(st.integers(-0x8000, 0x7FFF))
def test_signed_nibbles_round_trip(value):
    assert vp.from_nibbles(vp.nibbles(value, signed=True), signed=True) == value


# -- unit table and params files ---------------------------------------------------------------------

def test_evi_d70_table_maps_the_documented_ends():
    u = ViscaUnits.from_settings({})
    assert u.pan.to_device(math.radians(-170.0)) == 2267  # project -170 deg (right) = device 08DBh
    assert u.pan.to_device(math.radians(170.0)) == -2267
    assert u.tilt.to_device(math.radians(90.0)) == 1200 and u.tilt.to_device(math.radians(-30.0)) == -400
    assert u.pan.to_device(10.0) == -2267  # far left: clamped to the left end
    assert u.tilt.to_value(1200) == pytest.approx(math.pi / 2)
    assert u.pan_speeds.code(math.radians(100.0)) == 0x18 and u.pan_speeds.code(0.0) == 1
    assert u.tilt_speeds.code(math.radians(90.0)) == 0x17
    caps = u.capabilities()
    assert caps.pan_min == pytest.approx(-math.radians(170)) and caps.tilt_max == pytest.approx(math.pi / 2)
    assert (caps.zoom_min, caps.zoom_max) == (0.0, 16384.0)


@pytest.mark.parametrize("name", ["visca_sony_evi_d70.yaml", "visca_generic.yaml"])
def test_params_files_match_the_declared_settings(name):
    doc = yaml.safe_load((CONFIG / name).read_text())["/**"]["ros__parameters"]
    assert doc["backend"] == "visca"
    values = doc["visca"]
    declared = backend_settings("visca")
    assert set(values) == set(declared), set(values) ^ set(declared)
    for key, value in values.items():
        default = declared[key][0]
        # ROS refuses a params-file value whose type differs from the declared default
        assert type(value) is type(default), (key, value, default)
        if isinstance(default, list):
            assert all(type(v) is type(default[0]) for v in value), (key, value)
    ViscaDriver.from_settings({**values, "port": values["port"] or "/dev/null"})
    if name == "visca_sony_evi_d70.yaml":
        assert {k: values[k] for k in TABLE_SETTINGS} == {k: v[0] for k, v in TABLE_SETTINGS.items()}


# -- driver against the emulator ------------------------------------------------------------------------

class Rig:
    def __init__(self, transport: str, **driver_kwargs):
        self.core = ViscaCameraCore(make_sim())
        if transport == "ip":
            self.server = ViscaIpEmulator(self.core)
            self.driver = ViscaDriver("ip", ip_port=self.server.port, **driver_kwargs)
        else:
            self.server = ViscaSerialEmulator(self.core)
            self.driver = ViscaDriver("serial", port=self.server.device, **driver_kwargs)
        self.driver.connect()
        self.core.received.clear()

    def commands(self):
        return [m for m in self.core.received if m[1] == 0x01]

    def close(self):
        self.driver.close()
        self.server.close()


@pytest.fixture(params=["ip", "serial"])
def rig(request):
    r = Rig(request.param, timeout=0.15)
    yield r
    r.close()


def test_driver_sends_the_documented_bytes(rig):
    d = rig.driver
    # +10 deg pan (left) = device -133 (FF7Bh), +20 deg tilt = device +267 (010Bh); no speed = fastest codes
    d.move_absolute(math.radians(10.0), math.radians(20.0), 8000.0)
    d.move_relative(math.radians(-1.5), 0.0)  # 1.5 deg right = +20 units
    d.move_velocity(-math.radians(100.0), math.radians(2.0), 0.0)  # right at VV 18h, up at WW 01h
    d.stop()
    d.home()
    assert rig.commands() == [
        H("81 01 06 02 18 17 0F 0F 07 0B 00 01 00 0B FF"),
        H("81 01 04 47 01 0F 04 00 FF"),
        H("81 01 06 03 18 17 00 00 01 04 00 00 00 00 FF"),
        H("81 01 06 01 18 01 02 01 FF"),
        H("81 01 04 07 00 FF"),
        H("81 01 06 01 01 01 03 03 FF"),
        H("81 01 04 07 00 FF"),
        H("81 01 06 04 FF"),
        H("81 01 04 47 00 00 00 00 FF"),
    ]
    assert rig.driver.link_statistics()["acks"] >= 9


def test_feedback_matches_the_emulated_head(rig):
    d, sim = rig.driver, rig.core.sim
    d.move_absolute(math.radians(-20.0), math.radians(15.0), 4000.0)
    time.sleep(0.05)  # the sim's command latency (20 ms): the move has started
    assert sim.arrival_time() < time.time() + 3.0
    time.sleep(max(0.0, sim.arrival_time() - time.time()) + 0.1)
    fb, truth = d.read_state(), sim.feedback()
    # quantization: half a device unit (0.0375 deg) + the sim's encoder noise (0.004 deg, 4 sigma)
    tol = 0.5 * UNIT + math.radians(0.016)
    assert abs(fb.pan - truth.pan) <= tol and abs(fb.tilt - truth.tilt) <= tol
    assert abs(fb.pan - math.radians(-20.0)) < math.radians(0.2)  # arrived (command grid 0.075 deg)
    assert fb.zoom_raw == pytest.approx(truth.zoom_raw, abs=1.0)
    assert abs(fb.stamp - time.time()) < 0.1
    # while moving: the stamp is the exchange midpoint, so the error stays within the motion
    # during half an exchange (+ the sim's 8 ms feedback latency)
    d.move_velocity(0.5, 0.0)
    time.sleep(0.3)
    fb = d.read_state()
    truth = sim.feedback(fb.stamp + sim.spec.timing.feedback_latency)
    rtt = d.link_statistics()["round trip (ms)"] * 1e-3
    assert abs(fb.pan - truth.pan) <= tol + 0.5 * (rtt + 0.016) * 0.5 + 1e-3
    d.stop()


def test_dropped_and_malformed_replies_are_retried_and_counted(rig):
    d, f = rig.driver, rig.core.faults
    f.drop_replies = 1
    d.read_state()
    f.malformed_replies = 1
    d.read_state()
    f.truncated_replies = 1
    d.read_state()
    s = d.link_statistics()
    # serial: a truncated frame has no FF, so it is only a timeout (its bytes go with the timeout)
    assert s["timeouts"] >= 3 and s["retries"] >= 3 and s["bad frames"] >= (2 if "ip" in s["transport"] else 1)
    f.bad_data_replies = 1
    with pytest.raises(vp.ViscaFrameError):
        d.read_state()
    assert d.connected


def test_error_replies_raise_typed_errors_and_buffer_full_is_retried(rig):
    d, f = rig.driver, rig.core.faults
    f.error_replies = [0x41]
    with pytest.raises(vp.ViscaNotExecutable):
        d.move_absolute(0.1, 0.1)
    f.error_replies = [0x02]
    with pytest.raises(vp.ViscaSyntaxError):
        d.home()
    f.buffer_full = 2
    n = len(rig.core.executed)
    d.move_absolute(0.2, 0.1)
    assert len(rig.core.executed) == n + 1 and d.link_statistics()["buffer full"] == 2
    rig.core.hold_sockets()
    with pytest.raises(vp.ViscaBufferFull):
        d.move_absolute(0.3, 0.1)
    rig.core.release_sockets()
    d.move_absolute(0.3, 0.1)
    assert d.connected and d.link_statistics()["error replies"] >= 3


def test_slow_and_silent_camera(rig):
    d, f = rig.driver, rig.core.faults
    f.delay = 0.05  # slower than usual, within the timeout
    d.read_state()
    f.delay = 0.6  # slower than the 3 tries (3 x 0.15 s): every try times out
    with pytest.raises(DriverTimeout):
        d.read_state()
    f.delay = 0.0
    time.sleep(0.7)  # the late answers arrive and are discarded
    d.read_state()
    assert d.link_statistics()["late replies discarded"] >= 1
    f.mute = True
    with pytest.raises(DriverError):
        for _ in range(5):
            try:
                d.read_state()
            except DriverTimeout:
                continue
    assert not d.connected
    with pytest.raises(DriverConnectionError):
        d.connect()
    f.mute = False
    d.connect()
    d.read_state()


def test_completions_free_the_sockets(rig):
    d = rig.driver
    d.move_absolute(math.radians(5.0), 0.0)
    assert d.link_statistics()["busy sockets"]
    time.sleep(0.6)
    d.read_state()
    assert d.link_statistics()["busy sockets"] == "" and d.link_statistics()["completions"] >= 1


def test_relative_move_without_ack_is_not_repeated_over_serial():
    r = Rig("serial", timeout=0.15)
    try:
        r.core.faults.drop_acks = 1
        with pytest.raises(DriverTimeout, match="not resent"):
            r.driver.move_relative(math.radians(2.0), 0.0)
        assert len(r.commands()) == 1  # executed once, never sent twice
        r.core.faults.drop_acks = 1
        r.driver.move_absolute(0.0, 0.0)  # an absolute move is resent: same target, harmless
        assert len(r.commands()) == 3
    finally:
        r.close()


def test_ip_lost_ack_is_resent_with_the_same_sequence_number_and_executed_once():
    r = Rig("ip", timeout=0.15)
    try:
        r.core.faults.drop_acks = 1
        n = len(r.core.executed)
        r.driver.move_relative(math.radians(2.0), 0.0)  # safe over IP: the camera detects the repeat
        assert len(r.core.executed) == n + 1
        seqs = r.server.sequence_numbers
        assert seqs[-1] == seqs[-2]  # the resend carried the same sequence number
        assert r.driver.link_statistics()["duplicates detected"] == 1
        # a sequence error on a first transmission: RESET, then a new number
        resets, errors = r.server.resets, r.driver.link_statistics()["sequence errors"]
        r.core.faults.sequence_errors = 1
        r.driver.read_state()
        assert r.server.resets == resets + 1 and r.driver.link_statistics()["sequence errors"] == errors + 1
        # late duplicates of older replies are discarded by their sequence number
        r.core.faults.late_duplicates = 0.02
        for _ in range(5):
            r.driver.read_state()
            time.sleep(0.03)
        r.core.faults.late_duplicates = 0.0
        assert r.driver.link_statistics()["late replies discarded"] >= 4
        # a datagram whose length field lies is a bad frame, then the resend works
        r.core.faults.bad_header_replies = 1
        r.driver.read_state()
        assert r.driver.link_statistics()["bad frames"] >= 1
    finally:
        r.close()


def test_ip_camera_gone_and_back():
    r = Rig("ip", timeout=0.15, max_failures=2)
    try:
        r.server.stop()
        with pytest.raises(DriverError):
            for _ in range(4):
                try:
                    r.driver.read_state()
                except DriverTimeout:
                    continue
        assert not r.driver.connected
        r.server.start()
        t0 = time.monotonic()
        r.driver.connect()
        assert time.monotonic() - t0 < 0.5
        r.driver.read_state()
    finally:
        r.close()


def test_velocity_with_duration_stops_by_itself(rig):
    d, sim = rig.driver, rig.core.sim
    d.move_velocity(0.5, 0.0, 0.0, duration=0.2)
    time.sleep(0.8)
    assert not sim.feedback().moving
    assert rig.commands()[-2:] == [H("81 01 06 01 01 01 03 03 FF"), H("81 01 04 07 00 FF")]


def test_settings_and_repr_and_capture():
    with pytest.raises(DriverError):
        ViscaDriver.from_settings({"transport": "serial"})
    with pytest.raises(DriverError):
        ViscaDriver.from_settings({"transport": "usb"})
    with pytest.raises(DriverError):
        ViscaDriver.from_settings({"pan_direction": 2})
    d = ViscaDriver.from_settings({"camera_name": "x", "host": "10.1.2.3"})
    assert "10.1.2.3" in repr(d) and not d.connected
    with pytest.raises(DriverError):
        d.capture()
    with pytest.raises(DriverConnectionError):
        d.read_state()
