"""The ONVIF backend without ROS: WS-Security and HTTP digest against published worked examples,
the request bodies on the wire against hand-written XML from ptz.wsdl / onvif.xsd, parser fuzz,
and faults of the emulated camera over real loopback HTTP."""

import base64
import logging
import math
import time
import xml.etree.ElementTree as ET

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ptz_calibration.drivers import DriverConnectionError, DriverError, DriverTimeout, create_driver
from ptz_calibration.drivers import onvif_soap as soap
from ptz_calibration.drivers.onvif import OnvifDriver
from ptz_calibration.drivers.onvif_http import HttpStatusError, digest_response, parse_challenge
from ptz_calibration.emulators.onvif import OnvifEmulator, Ranges

PASSWORD = "pa55&<w0rd>!"  # XML specials: must survive escaping and never show up anywhere
USER = "operator"
ENV = "http://www.w3.org/2003/05/soap-envelope"
TPTZ = "http://www.onvif.org/ver20/ptz/wsdl"
TT = "http://www.onvif.org/ver10/schema"


# -- authentication: worked examples ---------------------------------------------------------------

def test_password_digest_matches_the_onvif_programmers_guide_example():
    # ONVIF Application Programmer's Guide 1.0 (May 2011), section 6.1.1.3
    nonce = base64.b64decode("LKqI6G/AikKCQrN0zqZFlg==")
    assert soap.password_digest(nonce, "2010-09-16T07:50:45Z", "userpassword") == "tuOSpGlFlIXsozq4HFNeeGeFLEI="
    header = ET.fromstring(f'<h xmlns:s="{ENV}">' + soap.security_header("user", "userpassword", nonce,
                                                                            "2010-09-16T07:50:45Z") + "</h>")
    wsse, wsu = soap.WSSE, soap.WSU
    token = header.find(f"{{{wsse}}}Security/{{{wsse}}}UsernameToken")
    assert token.findtext(f"{{{wsse}}}Username") == "user"
    password = token.find(f"{{{wsse}}}Password")
    assert password.text == "tuOSpGlFlIXsozq4HFNeeGeFLEI="
    assert password.get("Type") == ("http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-"
                                    "profile-1.0#PasswordDigest")
    nonce_el = token.find(f"{{{wsse}}}Nonce")
    assert nonce_el.text == "LKqI6G/AikKCQrN0zqZFlg=="
    assert nonce_el.get("EncodingType").endswith("#Base64Binary")
    assert token.findtext(f"{{{wsu}}}Created") == "2010-09-16T07:50:45Z"
    assert "userpassword" not in ET.tostring(header, encoding="unicode")


def test_http_digest_matches_the_rfc_2617_example():
    # RFC 2617 section 3.5 (user Mufasa, password "Circle Of Life")
    challenge = parse_challenge('Digest realm="testrealm@host.com", qop="auth,auth-int", '
                                'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"')
    assert challenge["realm"] == "testrealm@host.com" and challenge["qop"] == "auth,auth-int"
    header = digest_response(challenge, "GET", "/dir/index.html", "Mufasa", "Circle Of Life", 1, "0a4f113b")
    assert 'response="6629fae49393a05397450978507c4ef1"' in header
    assert "nc=00000001" in header and 'cnonce="0a4f113b"' in header and 'opaque="5ccc069c403ebaf9f0171e9517f40e41"' in header
    assert "Circle Of Life" not in header
    assert parse_challenge('Basic realm="x"') == {}


# -- helpers -------------------------------------------------------------------------------------------

@pytest.fixture
def emulator():
    emu = OnvifEmulator(user=USER, password=PASSWORD).start()
    yield emu
    emu.stop()


def make_driver(emu, **kw):
    kw.setdefault("timeout", 0.5)
    return OnvifDriver(emu.url, USER, PASSWORD, **kw)


@pytest.fixture
def driver(emulator):
    drv = make_driver(emulator)
    drv.connect()
    yield drv
    drv.close()


def _num(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def assert_same_xml(actual: ET.Element, expected: ET.Element, tol: float = 1e-6, where: str = ""):
    """Same tags (namespaces included), attributes (numbers within tol), text and child order."""
    where = f"{where}/{actual.tag.split('}')[-1]}"
    assert actual.tag == expected.tag, where
    assert set(actual.attrib) == set(expected.attrib), (where, actual.attrib, expected.attrib)
    for key, value in expected.attrib.items():
        a, e = _num(actual.attrib[key]), _num(value)
        if e is not None and a is not None:
            assert a == pytest.approx(e, abs=tol), (where, key, actual.attrib[key], value)
        else:
            assert actual.attrib[key] == value, (where, key)
    assert (actual.text or "").strip() == (expected.text or "").strip(), where
    assert len(actual) == len(expected), (where, [c.tag for c in actual], [c.tag for c in expected])
    for a, e in zip(actual, expected):
        assert_same_xml(a, e, tol, where)


def body_of(recorded) -> ET.Element:
    root = ET.fromstring(recorded.body)
    assert root.tag == f"{{{ENV}}}Envelope"
    (element,) = root.find(f"{{{ENV}}}Body")
    return element


def expected(xml: str) -> ET.Element:
    return ET.fromstring(f'<w xmlns:tptz="{TPTZ}" xmlns:tt="{TT}" '
                         f'xmlns:trt="http://www.onvif.org/ver10/media/wsdl" '
                         f'xmlns:tds="http://www.onvif.org/ver10/device/wsdl">{xml}</w>')[0]


# -- the wire: request bodies against ptz.wsdl / media.wsdl / devicemgmt.wsdl ------------------------------

def test_connect_sequence_and_bodies(emulator, driver):
    ops = [r.operation for r in emulator.requests]
    assert ops == ["GetSystemDateAndTime", "GetCapabilities", "GetProfiles", "GetConfigurationOptions", "GetNode"]
    paths = {r.operation: r.path for r in emulator.requests}
    assert paths["GetProfiles"] == "/onvif/media_service" and paths["GetNode"] == "/onvif/ptz_service"
    bodies = {r.operation: body_of(r) for r in emulator.requests}
    assert_same_xml(bodies["GetSystemDateAndTime"], expected("<tds:GetSystemDateAndTime/>"))
    assert_same_xml(bodies["GetCapabilities"], expected("<tds:GetCapabilities><tds:Category>All</tds:Category>"
                                                        "</tds:GetCapabilities>"))
    assert_same_xml(bodies["GetProfiles"], expected("<trt:GetProfiles/>"))
    # the first profile WITH a PTZConfiguration (Profile_0 has none)
    assert_same_xml(bodies["GetConfigurationOptions"], expected(
        "<tptz:GetConfigurationOptions><tptz:ConfigurationToken>PtzConf_1</tptz:ConfigurationToken>"
        "</tptz:GetConfigurationOptions>"))
    assert_same_xml(bodies["GetNode"], expected("<tptz:GetNode><tptz:NodeToken>PtzNode_1</tptz:NodeToken></tptz:GetNode>"))
    # SOAP 1.2 binding: Content-Type application/soap+xml with the action
    headers = emulator.requests_of("GetNode")[0].headers
    assert headers["content-type"] == 'application/soap+xml; charset=utf-8; action="http://www.onvif.org/ver20/ptz/wsdl/GetNode"'
    # GetSystemDateAndTime goes without credentials, everything else with a UsernameToken
    assert b"UsernameToken" not in emulator.requests[0].body
    assert all(b"UsernameToken" in r.body for r in emulator.requests[1:])


def test_security_header_on_the_wire_verifies(emulator, driver):
    driver.read_state()
    rec = emulator.requests_of("GetStatus")[-1]
    root = ET.fromstring(rec.body)
    wsse, wsu = soap.WSSE, soap.WSU
    token = root.find(f"{{{ENV}}}Header/{{{wsse}}}Security/{{{wsse}}}UsernameToken")
    nonce = base64.b64decode(token.findtext(f"{{{wsse}}}Nonce"))
    created = token.findtext(f"{{{wsu}}}Created")
    assert len(nonce) == 16 and token.findtext(f"{{{wsse}}}Username") == USER
    assert abs(soap.parse_datetime(created)[0] - time.time()) < 3.0
    # recomputed here by hand: Base64(SHA1(nonce + created + password))
    import hashlib
    digest = base64.b64encode(hashlib.sha1(nonce + created.encode() + PASSWORD.encode()).digest()).decode()
    assert token.findtext(f"{{{wsse}}}Password") == digest
    assert PASSWORD.encode() not in rec.body and b"pa55" not in rec.body
    nonces = {ET.fromstring(r.body).find(f".//{{{wsse}}}Nonce").text for r in emulator.requests[1:]}
    assert len(nonces) == len(emulator.requests) - 1, "every request carries a fresh nonce"


def test_command_bodies_against_the_spec(emulator, driver):
    """Generic spaces: pan -170..170 deg <-> -1..1, tilt -30..90 deg <-> -1..1, zoom 0..16384 <-> 0..1,
    velocity 1 = 85.9437 deg/s pan, 68.7549 deg/s tilt, 6000 raw/s zoom; translation 1 = full span."""
    n = len(emulator.requests)
    driver.move_absolute(math.radians(85.0), math.radians(30.0), 4096.0, pan_speed=math.radians(85.9437) / 2)
    driver.move_velocity(math.radians(85.9437) / 2, -math.radians(68.7549) / 2, 3000.0, duration=1.5)
    driver.move_relative(math.radians(34.0), math.radians(-12.0), None)
    driver.stop()
    driver.home()
    driver.read_state()
    sent = {r.operation: body_of(r) for r in emulator.requests[n:]}
    assert list(sent) == ["AbsoluteMove", "ContinuousMove", "RelativeMove", "Stop", "GotoHomePosition", "GetStatus"]
    token = "<tptz:ProfileToken>Profile_1</tptz:ProfileToken>"
    assert_same_xml(sent["AbsoluteMove"], expected(
        f'<tptz:AbsoluteMove>{token}<tptz:Position><tt:PanTilt x="0.5" y="0"/><tt:Zoom x="0.25"/></tptz:Position>'
        '<tptz:Speed><tt:PanTilt x="0.5" y="0.5"/></tptz:Speed></tptz:AbsoluteMove>'))
    assert_same_xml(sent["ContinuousMove"], expected(
        f'<tptz:ContinuousMove>{token}<tptz:Velocity><tt:PanTilt x="0.5" y="-0.5"/><tt:Zoom x="0.5"/>'
        '</tptz:Velocity><tptz:Timeout>PT1.5S</tptz:Timeout></tptz:ContinuousMove>'))
    assert_same_xml(sent["RelativeMove"], expected(
        f'<tptz:RelativeMove>{token}<tptz:Translation><tt:PanTilt x="0.1" y="-0.1"/></tptz:Translation>'
        '</tptz:RelativeMove>'))
    assert_same_xml(sent["Stop"], expected(
        f"<tptz:Stop>{token}<tptz:PanTilt>true</tptz:PanTilt><tptz:Zoom>true</tptz:Zoom></tptz:Stop>"))
    assert_same_xml(sent["GotoHomePosition"], expected(f"<tptz:GotoHomePosition>{token}</tptz:GotoHomePosition>"))
    assert_same_xml(sent["GetStatus"], expected(f"<tptz:GetStatus>{token}</tptz:GetStatus>"))
    # and the emulated head got the same numbers back (its own decoding of the spec)
    ops = dict((op, p) for op, p in emulator.executed)
    assert ops["AbsoluteMove"]["pan"] == pytest.approx(math.radians(85.0), abs=1e-6)
    assert ops["AbsoluteMove"]["zoom"] == pytest.approx(4096.0, abs=1e-3)
    assert ops["ContinuousMove"]["duration"] == 1.5
    assert ops["RelativeMove"]["tilt"] == pytest.approx(math.radians(-12.0), abs=1e-6)


def test_nan_axes_and_zero_velocity(emulator, driver):
    n = len(emulator.requests)
    driver.move_absolute(math.nan, math.nan, 8192.0)  # zoom only: no PanTilt element
    driver.move_velocity(0.0, 0.0, 0.0)  # all zero: a Stop
    ops = [(r.operation, body_of(r)) for r in emulator.requests[n:]]
    assert [o for o, _ in ops] == ["AbsoluteMove", "Stop"]
    position = ops[0][1].find(f"{{{TPTZ}}}Position")
    assert [c.tag.split("}")[1] for c in position] == ["Zoom"] and float(position[0].get("x")) == pytest.approx(0.5)
    assert ops[0][1].find(f"{{{TPTZ}}}Speed") is None


def test_duration_and_datetime_texts():
    assert soap.duration_text(1.5) == "PT1.5S" and soap.duration_text(2) == "PT2S" and soap.duration_text(0) == "PT0S"
    assert soap.parse_datetime("2010-09-16T07:50:45Z") == (1284623445.0, False)
    assert soap.parse_datetime("2010-09-16T09:50:45.250+02:00") == (1284623445.25, True)
    with pytest.raises(ValueError):
        soap.duration_text(-1)


# -- units and feedback --------------------------------------------------------------------------------------

def test_feedback_matches_the_head_and_uses_reported_ranges():
    """A device reporting non-default ranges (pan/tilt -0.5..0.5, zoom 0..100): the driver maps
    them onto the params-file angles, so radians come out right."""
    emu = OnvifEmulator(user=USER, password=PASSWORD,
                        ranges=Ranges(pan=(-0.5, 0.5), tilt=(-0.5, 0.5), zoom=(0.0, 100.0))).start()
    try:
        drv = make_driver(emu)
        drv.connect()
        caps = drv.capabilities
        assert caps.pan_max == pytest.approx(math.radians(170.0), abs=1e-9)
        assert caps.tilt_min == pytest.approx(math.radians(-30.0), abs=1e-9) and caps.zoom_max == 16384.0
        drv.move_absolute(1.0, 0.3, 10000.0)
        assert emu.executed[-1][1]["pan"] == pytest.approx(1.0, abs=1e-6)
        assert drv.read_state().moving or emu.camera.arrival_time() > time.time()
        time.sleep(max(0.0, emu.camera.arrival_time() - time.time()) + 0.1)
        fb = drv.read_state()
        truth = emu.camera.feedback()
        mech = emu.camera.spec.mechanics
        # at rest: encoder quantization + 6 sigma of its noise (+ the 1e-7 of the 7 printed digits)
        tol = mech.pan.encoder_step + 6 * mech.pan.encoder_noise
        assert abs(fb.pan - truth.pan) <= tol and abs(fb.pan - 1.0) <= tol + mech.pan.command_step
        assert abs(fb.tilt - truth.tilt) <= tol and abs(fb.tilt - 0.3) <= tol + mech.tilt.command_step
        assert fb.zoom_raw == pytest.approx(truth.zoom_raw, abs=0.01) and fb.zoom_raw == pytest.approx(10000, abs=1)
        assert not fb.moving
        drv.close()
    finally:
        emu.stop()


def test_stamp_midpoint_and_device_clock():
    emu = OnvifEmulator(user=USER, password=PASSWORD, clock_offset=100.0).start()  # device clock 100 s ahead
    try:
        # WS-Security Created must follow the device clock (GetSystemDateAndTime) or auth fails
        drv = make_driver(emu, stamp_source="device")
        drv.connect()
        assert drv.link_statistics()["device clock offset (s)"] == pytest.approx(100.0, abs=1.1)
        for _ in range(30):
            before = time.time()
            fb = drv.read_state()
            after = time.time()
            assert before - 0.05 <= fb.stamp <= after + 0.05
        stats = drv.link_statistics()
        assert stats["stamp source"] == "device UtcTime"
        # the device stamps its sample feedback_latency (8 ms) before answering: the offset
        # estimate is 100 s minus that latency, within the shortest round trip
        latency = emu.camera.spec.timing.feedback_latency
        assert stats["status clock offset (s)"] == pytest.approx(100.0 - latency, abs=0.005)
        drv.close()
        emu.utc_fraction = False  # whole-second UtcTime: not trusted, the midpoint is used
        drv = make_driver(emu, stamp_source="device")
        drv.connect()
        before = time.time()
        fb = drv.read_state()
        after = time.time()
        assert before <= fb.stamp <= after and drv.link_statistics()["stamp source"].startswith("midpoint")
        drv.close()
    finally:
        emu.stop()


# -- parsers: fuzz ----------------------------------------------------------------------------------------------

VALID_STATUS = (
    f'<?xml version="1.0"?><env:Envelope xmlns:env="{ENV}" xmlns:tptz="{TPTZ}" xmlns:tt="{TT}"><env:Body>'
    '<tptz:GetStatusResponse><tptz:PTZStatus><tt:Position><tt:PanTilt x="0.25" y="-0.5"/><tt:Zoom x="0.75"/>'
    "</tt:Position><tt:MoveStatus><tt:PanTilt>MOVING</tt:PanTilt><tt:Zoom>IDLE</tt:Zoom></tt:MoveStatus>"
    "<tt:UtcTime>2026-01-02T03:04:05.678Z</tt:UtcTime></tptz:PTZStatus></tptz:GetStatusResponse></env:Body>"
    "</env:Envelope>").encode()


def test_valid_status_parses():
    status = soap.parse_status(soap.parse_reply(VALID_STATUS, "GetStatus"))
    assert (status.pan, status.tilt, status.zoom) == (0.25, -0.5, 0.75)
    assert status.pan_tilt_moving and not status.zoom_moving and status.utc_fractional
    assert status.utc_time == pytest.approx(1767323045.678, abs=1e-6)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_random_bytes_only_raise_typed_errors(data):
    with pytest.raises(soap.OnvifError):
        soap.parse_status(soap.parse_reply(data, "GetStatus"))


@settings(max_examples=400, deadline=None)
@given(st.integers(0, len(VALID_STATUS)), st.integers(0, len(VALID_STATUS) - 1), st.integers(0, 255),
       st.sampled_from(["truncate", "flip", "both"]))
def test_mutated_replies_parse_or_raise_typed_errors(cut, pos, value, how):
    data = bytearray(VALID_STATUS)
    if how in ("flip", "both"):
        data[pos] = value
    if how in ("truncate", "both"):
        data = data[:cut]
    try:
        status = soap.parse_status(soap.parse_reply(bytes(data), "GetStatus"))
    except soap.OnvifError:
        return
    assert all(math.isfinite(v) for v in (status.pan, status.tilt, status.zoom))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40), st.text(max_size=40))
def test_random_attribute_values_only_raise_typed_errors(x, utc):
    from xml.sax.saxutils import quoteattr, escape
    data = VALID_STATUS.replace(b'x="0.25"', f"x={quoteattr(x)}".encode()).replace(
        b"2026-01-02T03:04:05.678Z", escape(utc).encode())
    try:
        soap.parse_status(soap.parse_reply(data, "GetStatus"))
    except soap.OnvifError:
        pass


def test_fault_parsing_and_doctype_refused():
    fault = (f'<e:Envelope xmlns:e="{ENV}"><e:Body><e:Fault><e:Code><e:Value>e:Sender</e:Value><e:Subcode>'
             "<e:Value>ter:InvalidArgVal</e:Value><e:Subcode><e:Value>ter:NoProfile</e:Value></e:Subcode></e:Subcode>"
             '</e:Code><e:Reason><e:Text xml:lang="en">no such profile</e:Text></e:Reason></e:Fault></e:Body>'
             "</e:Envelope>").encode()
    with pytest.raises(soap.SoapFault) as info:
        soap.parse_reply(fault, "GetStatus")
    assert info.value.code == "e:Sender" and info.value.subcode == "ter:InvalidArgVal/ter:NoProfile"
    assert info.value.reason == "no such profile" and not isinstance(info.value, soap.OnvifAuthError)
    with pytest.raises(soap.OnvifAuthError):
        soap.parse_reply(fault.replace(b"ter:NoProfile", b"ter:NotAuthorized"), "GetStatus")
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>'
    with pytest.raises(soap.OnvifParseError):
        soap.parse_reply(bomb, "GetStatus")


# -- faults of the device, over real HTTP ---------------------------------------------------------------------

def test_soap_fault_malformed_and_http_error_are_typed_and_counted(emulator, driver):
    f = emulator.faults
    f.operations = {"GetStatus"}
    f.soap_fault = "ter:InvalidArgVal"
    with pytest.raises(soap.SoapFault) as info:
        driver.read_state()
    assert info.value.subcode == "ter:InvalidArgVal" and info.value.code == "env:Receiver"
    f.soap_fault = None
    f.malformed = True
    with pytest.raises(soap.OnvifParseError):
        driver.read_state()
    f.malformed = False
    f.http_error = 500
    with pytest.raises(HttpStatusError) as http_info:
        driver.read_state()
    assert http_info.value.status == 500
    f.http_error = None
    stats = driver.link_statistics()
    assert (stats["soap faults"], stats["malformed replies"], stats["http errors"]) == (1, 1, 1)
    assert driver.connected and math.isfinite(driver.read_state().pan), "faults of one reply keep the link"


def test_drop_times_out_then_the_link_counts_as_lost(emulator):
    drv = make_driver(emulator, timeout=0.2, max_timeouts=2)
    drv.connect()
    emulator.faults.operations = {"GetStatus"}
    emulator.faults.drop = True
    t0 = time.monotonic()
    with pytest.raises(DriverTimeout):
        drv.read_state()
    elapsed = time.monotonic() - t0
    assert 0.18 <= elapsed < 0.6, elapsed  # the request timeout, no retry of GetStatus
    assert drv.connected
    with pytest.raises(DriverConnectionError):
        drv.read_state()
    assert not drv.connected and drv.link_statistics()["timeouts"] == 2
    emulator.faults.drop = False
    drv.connect()
    assert math.isfinite(drv.read_state().pan)
    drv.close()


def test_slow_answers_within_the_timeout_succeed(emulator, driver):
    emulator.faults.delay = 0.15
    fb = driver.read_state()
    assert driver.link_statistics()["last round trip (ms)"] >= 150.0 and math.isfinite(fb.pan)
    emulator.faults.delay = 0.0


def test_idempotent_commands_are_retried_relative_moves_are_not(emulator, driver):
    emulator.faults.operations = {"AbsoluteMove", "RelativeMove"}
    emulator.faults.count = 1
    emulator.faults.reset = True  # the first AbsoluteMove is answered with a TCP RST
    driver.move_absolute(0.2, 0.1, None)
    assert len(emulator.requests_of("AbsoluteMove")) == 2 and driver.link_statistics()["retries"] == 1
    assert [op for op, _ in emulator.executed].count("AbsoluteMove") == 1
    emulator.faults.count = 1
    with pytest.raises(DriverConnectionError):
        driver.move_relative(0.1, 0.0, None)  # not idempotent: the caller decides
    assert len(emulator.requests_of("RelativeMove")) == 1
    assert "RelativeMove" not in [op for op, _ in emulator.executed]
    emulator.faults.reset = False


def test_server_down_and_back_on_the_same_port(emulator, driver):
    port = emulator.port
    emulator.stop()
    with pytest.raises(DriverConnectionError):
        driver.read_state()
    assert not driver.connected
    with pytest.raises(DriverConnectionError):
        driver.connect()
    emulator.start()
    assert emulator.port == port
    driver.connect()
    assert driver.connected and math.isfinite(driver.read_state().pan)


def test_wrong_password_is_refused_with_not_authorized(emulator):
    drv = OnvifDriver(emulator.url, USER, "wrong-" + PASSWORD, timeout=0.5)
    with pytest.raises(DriverConnectionError) as info:
        drv.connect()
    assert "NotAuthorized" in str(info.value) and emulator.auth_failures >= 1
    assert "wrong-" not in str(info.value)


@pytest.mark.parametrize("mode", ["digest", "both"])
def test_http_digest(mode):
    emu = OnvifEmulator(user=USER, password=PASSWORD, auth=mode).start()
    try:
        drv = make_driver(emu)
        drv.connect()
        drv.read_state()
        assert "http digest" in drv.link_statistics()["auth"]
        auths = [r.headers.get("authorization", "") for r in emu.requests_of("GetStatus")]
        assert auths[-1].startswith("Digest ") and PASSWORD not in auths[-1]
        drv.close()
        bad = OnvifDriver(emu.url, USER, "nope", timeout=0.5)
        with pytest.raises(DriverConnectionError, match="401|NotAuthorized"):
            bad.connect()
    finally:
        emu.stop()


def test_credentials_from_the_environment(emulator, monkeypatch):
    monkeypatch.setenv("PTZ_ONVIF_USER", USER)
    monkeypatch.setenv("PTZ_ONVIF_PASSWORD", PASSWORD)
    drv = create_driver("onvif", {"url": emulator.url, "user": "", "password": "", "camera_name": "x"})
    drv.connect()
    assert math.isfinite(drv.read_state().pan)
    drv.close()
    monkeypatch.setenv("PTZ_ONVIF_PASSWORD", "not-it")
    with pytest.raises(DriverConnectionError):
        create_driver("onvif", {"url": emulator.url, "camera_name": "x"}).connect()
    # a parameter wins over the environment
    drv = create_driver("onvif", {"url": emulator.url, "user": USER, "password": PASSWORD})
    drv.connect()
    drv.close()


def test_the_password_never_appears(emulator, caplog):
    """Every text the backend produces (errors of every kind, repr, statistics, log records) is
    checked for the password, also when the device echoes it in a fault reason."""
    caplog.set_level(logging.DEBUG)
    texts = []
    drv = make_driver(emulator, timeout=0.2, max_timeouts=1)
    texts.append(repr(drv))
    drv.connect()
    f = emulator.faults
    f.operations = {"GetStatus"}
    for switch in ("soap_fault", "malformed", "http_error", "drop", "reset"):
        setattr(f, switch, {"soap_fault": "ter:InvalidArgVal", "http_error": 500}.get(switch, True))
        f.reason = f"bad password {PASSWORD} for {USER}"  # a device that echoes secrets
        try:
            drv.read_state()
        except DriverError as exc:
            texts += [str(exc), repr(exc), str(getattr(exc, "reason", ""))]
        setattr(f, switch, None if switch in ("soap_fault", "http_error") else False)
        texts.append(str(drv.link_statistics()))
        if not drv.connected:
            drv.connect()
    wrong = OnvifDriver(emulator.url.replace("http://", f"http://{USER}:{PASSWORD}@"), timeout=0.2)
    texts.append(repr(wrong))
    emulator.password = "changed"
    try:
        wrong.connect()
    except DriverError as exc:
        texts += [str(exc), repr(exc)]
    texts.append(str(wrong.link_statistics()))
    texts += [r.getMessage() for r in caplog.records]
    joined = "\n".join(texts)
    assert "NotAuthorized" in joined and "InvalidArgVal" in joined and "***" in joined  # the texts were made
    for secret in (PASSWORD, "pa55", "pa55&amp;&lt;w0rd&gt;!"):
        assert secret not in joined


def test_settings_are_complete_and_registry_builds_it():
    from ptz_calibration.drivers import backend_settings
    keys = set(backend_settings("onvif"))
    assert {"url", "user", "password", "auth", "profile_token", "timeout", "pan_min_deg", "stamp_source"} <= keys
    with pytest.raises(DriverError):
        OnvifDriver("https://camera/onvif/device_service")
    with pytest.raises(DriverError):
        OnvifDriver("http://camera/onvif/device_service", stamp_source="ntp")
