"""Pelco-D backend without ROS: wire bytes against the protocol manual, parser fuzzing, unit
conversion, and the driver against the emulator over a real pseudo-terminal with faults.

Expected bytes are written out by hand from the Pelco "D" Protocol Manual (TF-0002 v2.1):
``FF address cmd1 cmd2 data1 data2 sum(address..data2) % 256``."""

import math
import time

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import wait_until
from ptz_calibration.drivers import DriverConnectionError, DriverError, DriverTimeout, create_driver
from ptz_calibration.drivers import pelco_d_protocol as proto
from ptz_calibration.drivers.simulated import package_config_file
from ptz_calibration.emulators.pelco_d import PelcoDEmulator, make_camera


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# -- wire format: every command against hand-written bytes ------------------------------------------

@pytest.mark.parametrize("frame, expected", [
    (lambda: proto.stop(1), "ff 01 00 00 00 00 01"),
    (lambda: proto.stop(255), "ff ff 00 00 00 00 ff"),
    (lambda: proto.motion(1, pan=+1, pan_speed=0x20), "ff 01 00 02 20 00 23"),          # pan right
    (lambda: proto.motion(1, pan=-1, pan_speed=0xFF), "ff 01 00 04 ff 00 04"),          # left, turbo
    (lambda: proto.motion(1, tilt=+1, tilt_speed=0x3F), "ff 01 00 08 00 3f 48"),        # tilt up
    (lambda: proto.motion(2, tilt=-1, tilt_speed=0x10), "ff 02 00 10 00 10 22"),        # tilt down
    (lambda: proto.motion(1, pan=-1, pan_speed=0x08, tilt=+1, tilt_speed=0x04), "ff 01 00 0c 08 04 19"),
    (lambda: proto.motion(1, zoom=+1), "ff 01 00 20 00 00 21"),                         # zoom tele
    (lambda: proto.motion(1, zoom=-1), "ff 01 00 40 00 00 41"),                         # zoom wide
    (lambda: proto.preset(2, proto.SET_PRESET, 3), "ff 02 00 03 00 03 08"),
    (lambda: proto.preset(1, proto.CLEAR_PRESET, 2), "ff 01 00 05 00 02 08"),
    (lambda: proto.preset(1, proto.GOTO_PRESET, 5), "ff 01 00 07 00 05 0d"),
    (lambda: proto.set_position(1, proto.SET_PAN, 9000), "ff 01 00 4b 23 28 97"),       # 90.00 deg
    (lambda: proto.set_position(1, proto.SET_TILT, 35999), "ff 01 00 4d 8c 9f 79"),
    (lambda: proto.set_position(1, proto.SET_ZOOM, 65535), "ff 01 00 4f ff ff 4e"),
    (lambda: proto.query(1, proto.QUERY_PAN), "ff 01 00 51 00 00 52"),
    (lambda: proto.query(1, proto.QUERY_TILT), "ff 01 00 53 00 00 54"),
    (lambda: proto.query(3, proto.QUERY_ZOOM), "ff 03 00 55 00 00 58"),
])
def test_encoder_bytes_match_the_manual(frame, expected):
    assert frame() == h(expected)


def test_encoder_refuses_out_of_range_values():
    for bad in (lambda: proto.stop(0), lambda: proto.stop(256), lambda: proto.set_position(1, proto.SET_PAN, 36000),
                lambda: proto.motion(1, pan=1, pan_speed=0x40), lambda: proto.motion(1, tilt=1, tilt_speed=0xFF),
                lambda: proto.preset(1, proto.GOTO_PRESET, 0), lambda: proto.query(1, 0x4B)):
        with pytest.raises(ValueError):
            bad()


def test_replies_parse_and_bad_replies_are_typed():
    assert proto.parse_position_reply(h("ff 01 00 59 23 28 a5"), 1, proto.PAN_REPLY) == 9000
    assert proto.parse_position_reply(h("ff 01 00 5b 8c 9f 87"), 1, proto.TILT_REPLY) == 35999
    with pytest.raises(proto.PelcoDChecksumError):
        proto.parse_position_reply(h("ff 01 00 59 23 28 a6"), 1, proto.PAN_REPLY)
    with pytest.raises(proto.PelcoDAddressError):
        proto.parse_position_reply(h("ff 02 00 59 23 28 a6"), 1, proto.PAN_REPLY)
    with pytest.raises(proto.PelcoDUnexpectedReply):
        proto.parse_position_reply(h("ff 01 00 5b 23 28 a7"), 1, proto.PAN_REPLY)  # tilt reply to a pan query
    with pytest.raises(proto.PelcoDFrameError):
        proto.parse_position_reply(h("ff 01 00 59 23 28"), 1, proto.PAN_REPLY)  # truncated
    # general response to "ff 01 00 4b 23 28 97": alarm 0 -> checksum 0x97; alarm 2 -> 0x99 (C466M-E 5.2.4)
    assert proto.parse_general_response(h("ff 01 00 97"), 1, 0x97) == 0
    assert proto.parse_general_response(h("ff 01 02 99"), 1, 0x97) == 2
    assert proto.parse_general_response(h("ff 01 00 01"), 1, 0x97, rule="sum") == 0
    with pytest.raises(proto.PelcoDChecksumError):
        proto.parse_general_response(h("ff 01 00 98"), 1, 0x97)


def test_scan_resynchronises_over_garbage_and_bad_frames():
    good = h("ff 01 00 59 23 28 a5")
    bad = h("ff 01 00 59 23 28 00")
    check = lambda b: proto.parse_position_reply(b, 1, proto.PAN_REPLY)  # noqa: E731
    found = proto.scan(h("12 ff 34") + bad + good + h("ff 01"), 7, check)
    assert found.value == 9000
    assert len(found.errors) == 2 and isinstance(found.errors[1], proto.PelcoDChecksumError)
    # skipped: 12, the 34 after a rejected sync, the 6 bytes after the bad frame's sync
    assert found.consumed == 3 + 7 + 7 and found.skipped == 1 + 1 + 6
    partial = proto.scan(h("00 00 ff 01 00"), 7, check)
    assert partial.value is None and partial.consumed == 2 and partial.skipped == 2


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=40), st.integers(1, 255), st.sampled_from([0x59, 0x5B, 0x5D]), st.integers(0, 255))
def test_random_bytes_give_a_value_or_a_typed_error(data, address, reply, sent):
    units = proto.PelcoDUnits()
    for parse in (lambda b: proto.parse_position_reply(b, address, reply),
                  lambda b: proto.parse_general_response(b, address, sent),
                  lambda b: proto.parse_message(b),
                  lambda b: units.pan_from_device(proto.parse_position_reply(b, address, reply))):
        try:
            parse(data)
        except proto.PelcoDFrameError:
            pass
    found = proto.scan(data, 7, lambda b: proto.parse_position_reply(b, address, reply))
    assert 0 <= found.consumed <= len(data)
    assert all(isinstance(e, proto.PelcoDFrameError) for e in found.errors)


# -- units -----------------------------------------------------------------------------------------------

def test_tilt_mapping_pelco_counts_downwards():
    u = proto.PelcoDUnits()
    assert u.tilt_from_device(0) == 0.0
    assert u.tilt_from_device(9000) == pytest.approx(-math.pi / 2)      # 90 deg down
    assert u.tilt_from_device(27000) == pytest.approx(math.pi / 2)      # 90 deg up
    assert u.tilt_from_device(35000) == pytest.approx(math.radians(10))
    assert u.tilt_to_device(math.radians(10)) == 35000 and u.tilt_to_device(math.radians(-45)) == 4500
    assert u.pan_to_device(math.radians(-90)) == 9000                   # right = clockwise = device +
    with pytest.raises(proto.PelcoDFrameError):
        u.pan_from_device(36000)
    up = proto.PelcoDUnits(tilt_sign=1, tilt_zero=9000)                 # a model counting up from straight down
    assert up.tilt_from_device(9000) == 0.0 and up.tilt_from_device(0) == pytest.approx(-math.pi / 2)


@given(st.floats(-math.pi + 1e-6, math.pi - 1e-6), st.floats(0.0, 16384.0))
def test_unit_round_trips_within_one_step(angle, zoom):
    u = proto.PelcoDUnits(zoom_raw_max=16384.0)
    def gap(a, b):  # modulo a turn: +180 and -180 deg are one device position
        return abs(math.remainder(a - b, 2 * math.pi))
    assert gap(u.pan_from_device(u.pan_to_device(angle)), angle) <= u.pan_step / 2 + 1e-12
    assert gap(u.tilt_from_device(u.tilt_to_device(angle)), angle) <= u.pan_step / 2 + 1e-12
    assert abs(u.zoom_from_device(u.zoom_to_device(zoom)) - zoom) <= u.zoom_step / 2 + 1e-9


def test_speed_table_picks_the_nearest_byte():
    table = proto.SpeedTable((0, 63), (0.0, 78.75), 85.0)
    assert table.byte_for(12.5) == 10 and table.byte_for(-12.5) == 10
    assert table.byte_for(84.0) == proto.TURBO and table.byte_for(0.3) == 0
    u = proto.PelcoDUnits(pan_speeds=table)
    assert u.pan_drive(math.radians(12.5)) == (-1, 10)                  # our + pan = left
    assert u.pan_drive(math.radians(-12.5)) == (1, 10)
    assert u.pan_drive(0.001) == (0, 0)
    with pytest.raises(ValueError):
        proto.SpeedTable((0, 63), (10.0, 5.0))


# -- the driver against the emulator over a pty ------------------------------------------------------------

def sim_settings():
    return yaml.safe_load(package_config_file("pelco_d_sim.yaml").read_text())["/**"]["ros__parameters"]["pelco_d"]


@pytest.fixture
def rig():
    emulator = PelcoDEmulator(make_camera("left")).start()
    driver = create_driver("pelco_d", sim_settings(), port=emulator.device)
    driver.connect()
    yield emulator, driver
    driver.close()
    emulator.close()


def sent_since(emulator, n):
    return [m.hex(" ") for m in emulator.received[n:]]


def test_params_files_build_drivers():
    for name in ("pelco_d_generic.yaml", "pelco_d_sim.yaml"):
        params = yaml.safe_load(package_config_file(name).read_text())["/**"]["ros__parameters"]
        assert params["backend"] == "pelco_d"
        assert set(params["pelco_d"]) <= set(create_driver.__globals__["backend_settings"]("pelco_d"))
        driver = create_driver("pelco_d", params["pelco_d"], port="/dev/null")
        assert driver.capabilities.max_pan_speed > 0
    with pytest.raises(DriverError):
        create_driver("pelco_d", {"port": "/dev/null", "baudrate": 19200})


def test_driver_commands_on_the_wire(rig):
    emu, drv = rig
    n = len(emu.received)
    drv.move_absolute(math.radians(-90.0), math.radians(10.0), 16384.0)
    assert sent_since(emu, n) == ["ff 01 00 4b 23 28 97",   # pan 9000 (90 deg right)
                                  "ff 01 00 4d 88 b8 8e",   # tilt 35000 (10 deg up)
                                  "ff 01 00 4f ff ff 4e"]   # zoom tele end
    n = len(emu.received)
    drv.move_velocity(math.radians(12.5), math.radians(-20.0), -100.0)
    drv.stop()
    drv.goto_preset(5)
    assert sent_since(emu, n) == ["ff 01 00 54 0a 14 73",   # left 0x0a, down 0x14, wide
                                  "ff 01 00 00 00 00 01", "ff 01 00 07 00 05 0d"]
    n = len(emu.received)
    drv.read_state()
    assert sent_since(emu, n) == ["ff 01 00 51 00 00 52", "ff 01 00 53 00 00 54", "ff 01 00 55 00 00 56"]
    assert drv.link_statistics()["commands acknowledged"] == 6


def test_feedback_matches_the_simulated_head_while_moving(rig):
    emu, drv = rig
    cam = emu.camera
    drv.move_velocity(0.5, 0.2, 0.0)
    time.sleep(0.4)  # past the acceleration
    errors = []
    for _ in range(20):
        fb = drv.read_state()
        truth = cam.feedback(fb.stamp + drv.feedback_latency)  # what the device reported for that sample time
        errors.append((abs(fb.pan - truth.pan), abs(fb.tilt - truth.tilt)))
    drv.stop()
    rtt = drv.link_statistics()["round trip (ms)"] * 1e-3
    # tolerance: half a 0.01 deg step + the motion during half of the two-query exchange (+ its jitter)
    pan_tol = math.radians(0.005) + 0.5 * (4 * rtt + 0.01)
    tilt_tol = math.radians(0.005) + 0.2 * (4 * rtt + 0.01)
    assert max(e[0] for e in errors) < pan_tol, (errors, rtt)
    assert max(e[1] for e in errors) < tilt_tol, (errors, rtt)


def test_absolute_move_and_presets_reach_the_targets(rig):
    emu, drv = rig
    drv.move_absolute(0.4, -0.2, 4000.0)
    time.sleep(1.2)
    fb = drv.read_state()
    assert fb.pan == pytest.approx(0.4, abs=0.003) and fb.tilt == pytest.approx(-0.2, abs=0.003)
    assert fb.zoom_raw == pytest.approx(4000.0, abs=1.5)
    drv.set_preset(7)
    drv.move_absolute(-0.3, 0.1, None)
    time.sleep(1.0)
    drv.goto_preset(7)
    time.sleep(1.6)  # 0.7 rad at the default 0.8 rad/s
    assert drv.read_state().pan == pytest.approx(0.4, abs=0.003)
    drv.clear_preset(7)
    assert 7 not in emu.presets


def test_timed_velocity_stops_by_itself(rig):
    emu, drv = rig
    drv.move_velocity(-0.3, 0.0, 0.0, duration=0.3)
    time.sleep(0.6)
    assert emu.received[-1] == h("ff 01 00 00 00 00 01")
    a = drv.read_state().pan
    time.sleep(0.2)
    assert drv.read_state().pan == pytest.approx(a, abs=0.002)


@pytest.mark.parametrize("fault, counter", [("bad_checksum", "checksum errors"), ("wrong_address", "address errors"),
                                            ("truncate", "truncated replies"), ("drop", "timeouts")])
def test_a_bad_reply_is_counted_and_retried(rig, fault, counter):
    emu, drv = rig
    before = drv.link_statistics()
    setattr(emu.faults, fault, 1)
    fb = drv.read_state()  # the retry succeeds
    stats = drv.link_statistics()
    assert math.isfinite(fb.pan)
    assert stats[counter] == before[counter] + 1 and stats["query retries"] == before["query retries"] + 1


def test_garbage_between_frames_is_skipped(rig):
    emu, drv = rig
    emu.faults.garbage = -1
    for _ in range(10):
        assert math.isfinite(drv.read_state().pan)
    emu.faults.garbage = 0
    stats = drv.link_statistics()
    assert stats["garbage bytes"] > 0 and stats["query retries"] == 0


def test_every_bad_reply_ends_in_a_typed_error_and_then_a_lost_link(rig):
    emu, drv = rig
    emu.faults.bad_checksum = -1
    for _ in range(drv.max_failed_reads - 1):
        with pytest.raises(proto.PelcoDChecksumError):
            drv.read_state()
    with pytest.raises(DriverConnectionError):
        drv.read_state()
    assert not drv.connected
    emu.faults.bad_checksum = 0
    drv.connect()
    assert math.isfinite(drv.read_state().pan)


def test_slow_answers_time_out(rig):
    emu, drv = rig
    emu.faults.delay = 0.15  # > timeout 0.1 s
    t = time.monotonic()
    with pytest.raises(DriverTimeout):
        drv.read_state()
    assert time.monotonic() - t < (drv.retries + 1) * (drv.timeout + 0.05) + 0.2
    emu.faults.delay = 0.0
    time.sleep(0.8)  # let the late replies drain
    assert math.isfinite(drv.read_state().pan)


def test_an_unacknowledged_command_is_resent_and_not_lost(rig):
    emu, drv = rig
    emu.faults.drop = 2  # the first two ACKs are lost
    n = len(emu.received)
    drv.move_absolute(math.radians(-67.5), float("nan"), None)
    assert sent_since(emu, n) == ["ff 01 00 4b 1a 5e c4"] * 3  # 6750 = 67.50 deg right, three times
    assert drv.link_statistics()["command retries"] == 2
    time.sleep(2.2)
    assert drv.read_state().pan == pytest.approx(math.radians(-67.5), abs=0.003)
    emu.faults.drop = -1
    with pytest.raises(DriverTimeout, match="not acknowledged"):
        drv.stop()
    assert drv.link_statistics()["commands unacknowledged"] == 1


def test_no_ack_mode_sends_once(rig):
    emu, _ = rig
    emu.general_response = False
    drv = create_driver("pelco_d", dict(sim_settings(), ack_mode="none"), port=emu.device)
    drv.connect()
    n = len(emu.received)
    drv.stop()
    assert wait_until(lambda: len(emu.received) > n, 2.0)
    time.sleep(0.1)
    assert sent_since(emu, n) == ["ff 01 00 00 00 00 01"]
    drv.close()


def test_disconnect_is_a_connection_error_and_reconnect_works(rig):
    emu, drv = rig
    emu.disconnect()
    with pytest.raises(DriverConnectionError):
        drv.read_state()
    assert not drv.connected
    drv.close()
    with pytest.raises(DriverConnectionError):
        drv.connect()
    emu.reconnect()
    drv.connect()
    assert math.isfinite(drv.read_state().pan)
