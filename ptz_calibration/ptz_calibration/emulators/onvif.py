"""An ONVIF PTZ camera (SOAP 1.2 over HTTP) on loopback, driven by a simulated head.

Serves, on ``127.0.0.1`` at an ephemeral port (threading HTTP/1.1 server with keep-alive):

* device service ``/onvif/device_service``: GetSystemDateAndTime (no authentication, as the
  ONVIF Core Specification allows), GetCapabilities;
* media service ``/onvif/media_service``: GetProfiles (``Profile_0`` without PTZ, ``Profile_1``
  with PTZ configuration ``PtzConf_1`` on node ``PtzNode_1``);
* PTZ service ``/onvif/ptz_service``: GetNode, GetConfigurationOptions, GetStatus,
  ContinuousMove (with Timeout), AbsoluteMove, RelativeMove, Stop, GotoHomePosition.

Written from the ONVIF WSDL/XSD element names (devicemgmt.wsdl, media.wsdl, ptz.wsdl,
onvif.xsd) and the SOAP 1.2 fault format, NOT with the driver's encoder or parsers. The generic
spaces map linearly onto the simulated head's travel (position), its maximum speeds (velocity,
speed) and its full span (translation = 1). Authentication: WS-Security UsernameToken with
PasswordDigest (wrong digest, user, replayed nonce or a Created time off by more than
``max_clock_skew`` -> SOAP fault ``env:Sender / ter:NotAuthorized``) and/or HTTP digest
(RFC 7616, MD5, qop=auth). Faults can be switched at run time (:class:`Faults`).

``python -m ptz_calibration.emulators.onvif`` serves one camera until Ctrl-C.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import math
import os
import re
import socket
import struct
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional
from xml.sax.saxutils import escape

ENV = "http://www.w3.org/2003/05/soap-envelope"
NS = {
    "env": ENV,
    "tds": "http://www.onvif.org/ver10/device/wsdl",
    "trt": "http://www.onvif.org/ver10/media/wsdl",
    "tptz": "http://www.onvif.org/ver20/ptz/wsdl",
    "tt": "http://www.onvif.org/ver10/schema",
    "ter": "http://www.onvif.org/ver10/error",
    "wsse": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd",
    "wsu": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd",
}
SPACE = "http://www.onvif.org/ver10/tptz/"
SERVICES = {"device": "/onvif/device_service", "media": "/onvif/media_service", "ptz": "/onvif/ptz_service"}
OPERATION_SERVICE = {
    (NS["tds"], "GetSystemDateAndTime"): "device", (NS["tds"], "GetCapabilities"): "device",
    (NS["trt"], "GetProfiles"): "media",
    **{(NS["tptz"], op): "ptz" for op in ("GetNode", "GetConfigurationOptions", "GetStatus", "ContinuousMove",
                                          "AbsoluteMove", "RelativeMove", "Stop", "GotoHomePosition")},
}
NO_AUTH = {"GetSystemDateAndTime"}
PROFILE, PTZ_CONF, PTZ_NODE = "Profile_1", "PtzConf_1", "PtzNode_1"
REALM = "ptz-emulator"


def _q(prefix: str, name: str) -> str:
    return f"{{{NS[prefix]}}}{name}"


class Fault(Exception):
    """A SOAP fault to send: code (env:Sender/env:Receiver), subcodes (ter:...), reason, HTTP status."""

    def __init__(self, code: str, subcodes: tuple[str, ...], reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.code, self.subcodes, self.reason, self.status = code, subcodes, reason, status


def fault_xml(code: str, subcodes: tuple[str, ...], reason: str) -> bytes:
    sub = ""
    for s in reversed(subcodes):
        sub = f"<env:Subcode><env:Value>{s}</env:Value>{sub}</env:Subcode>"
    return (f'<?xml version="1.0" encoding="UTF-8"?><env:Envelope xmlns:env="{ENV}" xmlns:ter="{NS["ter"]}">'
            f"<env:Body><env:Fault><env:Code><env:Value>{code}</env:Value>{sub}</env:Code>"
            f'<env:Reason><env:Text xml:lang="en">{escape(reason)}</env:Text></env:Reason></env:Fault></env:Body>'
            f"</env:Envelope>").encode()


def response_xml(inner: str) -> bytes:
    ns = " ".join(f'xmlns:{p}="{u}"' for p, u in NS.items() if p in ("tds", "trt", "tptz", "tt"))
    return (f'<?xml version="1.0" encoding="UTF-8"?><env:Envelope xmlns:env="{ENV}" {ns}>'
            f"<env:Body>{inner}</env:Body></env:Envelope>").encode()


def _duration(text: str) -> float:
    """Seconds of an xs:duration limited to days/hours/minutes/seconds (PT1.5S, PT1M30S, P1DT2H)."""
    m = re.fullmatch(r"\s*P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?\s*", text or "")
    if not m or text.strip() in ("P", "PT"):
        raise Fault("env:Sender", ("ter:InvalidArgVal", "ter:InvalidTimeout"), f"bad duration {text[:30]!r}")
    d, h, mi, s = m.groups()
    return int(d or 0) * 86400 + int(h or 0) * 3600 + int(mi or 0) * 60 + float(s or 0)


@dataclass
class Faults:
    """Run-time fault switches. ``operations`` limits them to some operations (None = all)."""

    drop: bool = False  # read the request, never answer (until the switch is cleared or the client goes)
    malformed: bool = False  # 200 with truncated XML
    soap_fault: Optional[str] = None  # e.g. "ter:InvalidArgVal": a receiver fault with that subcode
    delay: float = 0.0  # seconds before answering
    http_error: Optional[int] = None  # e.g. 500 with an HTML body
    reset: bool = False  # close the connection with a TCP RST instead of answering
    reason: str = "injected fault"  # reason text of soap_fault
    operations: Optional[set[str]] = None
    count: Optional[int] = None  # apply to this many more requests, then stop (None = until cleared)

    def applies(self, operation: str) -> bool:
        return self.operations is None or operation in self.operations

    def take(self, operation: str) -> bool:
        """True when a switched-on fault applies to this request (counts it down)."""
        if not self.applies(operation):
            return False
        if self.count is None:
            return True
        if self.count <= 0:
            return False
        self.count -= 1
        return True


@dataclass
class Ranges:
    """The device's reported generic ranges."""

    pan: tuple[float, float] = (-1.0, 1.0)
    tilt: tuple[float, float] = (-1.0, 1.0)
    zoom: tuple[float, float] = (0.0, 1.0)
    velocity: tuple[float, float] = (-1.0, 1.0)
    translation: tuple[float, float] = (-1.0, 1.0)
    speed: tuple[float, float] = (0.0, 1.0)


@dataclass
class Recorded:
    """One request as received: operation, path, headers and raw body bytes."""

    operation: str
    path: str
    headers: dict
    body: bytes
    time: float = field(default_factory=time.time)


class OnvifEmulator:
    """The emulated camera (see the module docstring). ``camera``: a SimulatedPtzCamera (default:
    camera ``left`` of the package's simulated rig)."""

    def __init__(self, camera=None, user: str = "admin", password: str = "emulator", auth: str = "wsse",
                 port: int = 0, clock_offset: float = 0.0, utc_fraction: bool = True,
                 ranges: Optional[Ranges] = None, max_clock_skew: float = 10.0) -> None:
        if auth not in ("wsse", "digest", "both", "none"):
            raise ValueError(f"auth must be wsse, digest, both or none, got {auth!r}")
        if camera is None:
            from ..drivers.simulated import default_rig_file
            from ..simulation import SimulatedPtzCamera, load_rig
            rig = load_rig(default_rig_file())
            camera = SimulatedPtzCamera(rig.cameras["left"], rig.scene, 0)
        self.camera = camera
        self.user, self.password, self.auth = user, password, auth
        self.clock_offset = clock_offset  # the device clock runs this far ahead of the system clock
        self.utc_fraction = utc_fraction  # UtcTime with milliseconds (else whole seconds)
        self.ranges = ranges or Ranges()
        self.max_clock_skew = max_clock_skew
        self.faults = Faults()
        self.requests: list[Recorded] = []
        self.executed: list[tuple[str, dict]] = []  # commands applied to the head, in order
        self.auth_failures = 0
        self._lock = threading.Lock()
        self._nonces: dict[str, float] = {}
        self._digest_nonces: set[str] = set()
        self._port = int(port)
        self._server: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None
        self._connections: set[socket.socket] = set()
        self._running = threading.Event()

    # -- server life ----------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}{SERVICES['device']}"

    @property
    def running(self) -> bool:
        return self._running.is_set()

    def start(self) -> "OnvifEmulator":
        """Listen (again) on 127.0.0.1, on the same port as before if it was started already."""
        if self._server is not None:
            return self
        emulator = self

        class Handler(_Handler):
            pass
        Handler.emulator = emulator
        server = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        server.daemon_threads = True
        self._server = server
        self._port = server.server_address[1]
        self._running.set()
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True,
                                        name=f"onvif-emulator-{self._port}")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and drop every open connection (the camera is 'down'); :meth:`start` again."""
        server, self._server = self._server, None
        self._running.clear()
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            conns = list(self._connections)
            self._connections.clear()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    close = stop

    def __enter__(self) -> "OnvifEmulator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- device state ------------------------------------------------------------------------------------

    def device_time(self) -> float:
        return time.time() + self.clock_offset

    def _mech(self):
        return self.camera.spec.mechanics

    def _to_sim(self, x: float, rng: tuple[float, float], axis) -> float:
        return axis.min + (x - rng[0]) / (rng[1] - rng[0]) * (axis.max - axis.min)

    def _from_sim(self, v: float, rng: tuple[float, float], axis) -> float:
        return rng[0] + (v - axis.min) / (axis.max - axis.min) * (rng[1] - rng[0])

    def generic_state(self) -> tuple[float, float, float, float]:
        """(stamp, pan, tilt, zoom) of the head now in the device's generic position spaces."""
        fb = self.camera.feedback()
        m, r = self._mech(), self.ranges
        return (fb.stamp, self._from_sim(fb.pan, r.pan, m.pan), self._from_sim(fb.tilt, r.tilt, m.tilt),
                self._from_sim(fb.zoom_raw, r.zoom, m.zoom))

    # -- request handling ------------------------------------------------------------------------------

    def _check_wsse(self, header: Optional[ET.Element]) -> None:
        token = header.find(f"{_q('wsse', 'Security')}/{_q('wsse', 'UsernameToken')}") if header is not None else None
        denied = Fault("env:Sender", ("ter:NotAuthorized",), "Sender not Authorized")
        if token is None:
            raise denied
        user = (token.findtext(_q("wsse", "Username")) or "").strip()
        password_el = token.find(_q("wsse", "Password"))
        nonce_text = (token.findtext(_q("wsse", "Nonce")) or "").strip()
        created = (token.findtext(_q("wsu", "Created")) or "").strip()
        if password_el is None or not (password_el.get("Type") or "").endswith("#PasswordDigest"):
            raise denied
        try:
            nonce = base64.b64decode(nonce_text, validate=True)
        except ValueError:
            raise denied from None
        expected = base64.b64encode(hashlib.sha1(nonce + created.encode() + self.password.encode()).digest()).decode()
        if user != self.user or (password_el.text or "").strip() != expected:
            raise denied
        m = re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.\d+)?Z", created)
        if not m:
            raise denied
        t = calendar.timegm(tuple(int(g) for g in m.groups()) + (0, 0, 0))
        if abs(t - self.device_time()) > self.max_clock_skew:
            raise denied
        now = time.time()
        with self._lock:
            if nonce_text in self._nonces:
                raise denied  # replay
            self._nonces[nonce_text] = now
            if len(self._nonces) > 10000:
                self._nonces = {k: v for k, v in self._nonces.items() if now - v < 2 * self.max_clock_skew}

    def _check_digest(self, authorization: str, path: str) -> bool:
        if not authorization.lower().startswith("digest "):
            return False
        p = {k.lower(): v.strip('"') for k, v in re.findall(r'(\w+)=("[^"]*"|[^,\s]*)', authorization[7:])}
        if p.get("username") != self.user or p.get("nonce") not in self._digest_nonces or p.get("uri") != path:
            return False
        md5 = lambda s: hashlib.md5(s.encode()).hexdigest()  # noqa: E731
        ha1, ha2 = md5(f"{self.user}:{REALM}:{self.password}"), md5(f"POST:{path}")
        if p.get("qop") == "auth":
            expected = md5(f"{ha1}:{p['nonce']}:{p.get('nc', '')}:{p.get('cnonce', '')}:auth:{ha2}")
        else:
            expected = md5(f"{ha1}:{p['nonce']}:{ha2}")
        return p.get("response") == expected

    def new_digest_challenge(self) -> str:
        nonce = base64.b64encode(os.urandom(12)).decode()
        with self._lock:
            self._digest_nonces.add(nonce)
        return f'Digest realm="{REALM}", qop="auth", nonce="{nonce}", algorithm=MD5'

    def handle(self, path: str, headers: dict, body: bytes) -> tuple[int, bytes, dict]:
        """(HTTP status, body, extra headers) of one request (faults excluded)."""
        try:
            root = ET.fromstring(body)
        except ET.ParseError:
            raise Fault("env:Sender", ("ter:WellFormed",), "the request is not well-formed XML")
        if root.tag != f"{{{ENV}}}Envelope":
            raise Fault("env:VersionMismatch", (), "not a SOAP 1.2 envelope")
        soap_body = root.find(f"{{{ENV}}}Body")
        if soap_body is None or len(soap_body) != 1:
            raise Fault("env:Sender", ("ter:InvalidArgs",), "the Body must hold one request element")
        request = soap_body[0]
        ns, _, op = request.tag[1:].partition("}")
        service = OPERATION_SERVICE.get((ns, op))
        if service is None or SERVICES[service] != path:
            raise Fault("env:Receiver", ("ter:ActionNotSupported",), f"{op} is not supported at {path}", 500)
        if op not in NO_AUTH:
            if self.auth in ("digest", "both") and not self._check_digest(headers.get("authorization", ""), path):
                return 401, b"", {"WWW-Authenticate": self.new_digest_challenge()}
            if self.auth in ("wsse", "both"):
                self._check_wsse(root.find(f"{{{ENV}}}Header"))
        return 200, response_xml(getattr(self, f"_op_{op}")(request)), {}

    # -- operations ----------------------------------------------------------------------------------------

    def _profile(self, request: ET.Element) -> None:
        if (request.findtext(_q("tptz", "ProfileToken")) or "").strip() != PROFILE:
            raise Fault("env:Sender", ("ter:InvalidArgVal", "ter:NoProfile"), "no such profile")

    def _vec(self, el: Optional[ET.Element], rng: tuple[float, float], axes: str) -> Optional[tuple[float, ...]]:
        if el is None:
            return None
        try:
            values = tuple(float(el.attrib[a]) for a in axes)
        except (KeyError, ValueError):
            raise Fault("env:Sender", ("ter:InvalidArgVal",), f"{el.tag}: bad or missing {axes}") from None
        lo, hi = rng
        if not all(math.isfinite(v) and lo - 1e-6 <= v <= hi + 1e-6 for v in values):
            raise Fault("env:Sender", ("ter:InvalidArgVal", "ter:InvalidPosition"), f"{values} outside [{lo}, {hi}]")
        return values

    def _op_GetSystemDateAndTime(self, request: ET.Element) -> str:
        t = time.gmtime(self.device_time())
        return ("<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:DateTimeType>NTP</tt:DateTimeType>"
                "<tt:DaylightSavings>false</tt:DaylightSavings><tt:TimeZone><tt:TZ>UTC0</tt:TZ></tt:TimeZone>"
                f"<tt:UTCDateTime><tt:Time><tt:Hour>{t.tm_hour}</tt:Hour><tt:Minute>{t.tm_min}</tt:Minute>"
                f"<tt:Second>{t.tm_sec}</tt:Second></tt:Time><tt:Date><tt:Year>{t.tm_year}</tt:Year>"
                f"<tt:Month>{t.tm_mon}</tt:Month><tt:Day>{t.tm_mday}</tt:Day></tt:Date></tt:UTCDateTime>"
                "</tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>")

    def _op_GetCapabilities(self, request: ET.Element) -> str:
        base = f"http://127.0.0.1:{self._port}"
        return (f"<tds:GetCapabilitiesResponse><tds:Capabilities>"
                f"<tt:Device><tt:XAddr>{base}{SERVICES['device']}</tt:XAddr></tt:Device>"
                f"<tt:Media><tt:XAddr>{base}{SERVICES['media']}</tt:XAddr></tt:Media>"
                f"<tt:PTZ><tt:XAddr>{base}{SERVICES['ptz']}</tt:XAddr></tt:PTZ>"
                f"</tds:Capabilities></tds:GetCapabilitiesResponse>")

    def _op_GetProfiles(self, request: ET.Element) -> str:
        r = self.ranges
        return ('<trt:GetProfilesResponse><trt:Profiles token="Profile_0" fixed="true"><tt:Name>metadata</tt:Name>'
                '</trt:Profiles>'
                f'<trt:Profiles token="{PROFILE}" fixed="true"><tt:Name>main</tt:Name>'
                f'<tt:PTZConfiguration token="{PTZ_CONF}"><tt:Name>ptz</tt:Name><tt:UseCount>1</tt:UseCount>'
                f"<tt:NodeToken>{PTZ_NODE}</tt:NodeToken>"
                f"<tt:DefaultAbsolutePantTiltPositionSpace>{SPACE}PanTiltSpaces/PositionGenericSpace"
                f"</tt:DefaultAbsolutePantTiltPositionSpace>"
                f"<tt:DefaultPTZTimeout>PT5S</tt:DefaultPTZTimeout>"
                f"<tt:PanTiltLimits><tt:Range><tt:URI>{SPACE}PanTiltSpaces/PositionGenericSpace</tt:URI>"
                f"{self._fr('XRange', r.pan)}{self._fr('YRange', r.tilt)}</tt:Range></tt:PanTiltLimits>"
                f"<tt:ZoomLimits><tt:Range><tt:URI>{SPACE}ZoomSpaces/PositionGenericSpace</tt:URI>"
                f"{self._fr('XRange', r.zoom)}</tt:Range></tt:ZoomLimits>"
                "</tt:PTZConfiguration></trt:Profiles></trt:GetProfilesResponse>")

    @staticmethod
    def _fr(name: str, rng: tuple[float, float]) -> str:
        return f"<tt:{name}><tt:Min>{rng[0]:g}</tt:Min><tt:Max>{rng[1]:g}</tt:Max></tt:{name}>"

    def _spaces(self) -> str:
        r = self.ranges

        def two(name: str, uri: str, x, y) -> str:
            return f"<tt:{name}><tt:URI>{SPACE}{uri}</tt:URI>{self._fr('XRange', x)}{self._fr('YRange', y)}</tt:{name}>"

        def one(name: str, uri: str, x) -> str:
            return f"<tt:{name}><tt:URI>{SPACE}{uri}</tt:URI>{self._fr('XRange', x)}</tt:{name}>"
        return (two("AbsolutePanTiltPositionSpace", "PanTiltSpaces/PositionGenericSpace", r.pan, r.tilt)
                + one("AbsoluteZoomPositionSpace", "ZoomSpaces/PositionGenericSpace", r.zoom)
                + two("RelativePanTiltTranslationSpace", "PanTiltSpaces/TranslationGenericSpace", r.translation,
                      r.translation)
                + one("RelativeZoomTranslationSpace", "ZoomSpaces/TranslationGenericSpace", r.translation)
                + two("ContinuousPanTiltVelocitySpace", "PanTiltSpaces/VelocityGenericSpace", r.velocity, r.velocity)
                + one("ContinuousZoomVelocitySpace", "ZoomSpaces/VelocityGenericSpace", r.velocity)
                + one("PanTiltSpeedSpace", "PanTiltSpaces/GenericSpeedSpace", r.speed)
                + one("ZoomSpeedSpace", "ZoomSpaces/ZoomGenericSpeedSpace", r.speed))

    def _op_GetConfigurationOptions(self, request: ET.Element) -> str:
        if (request.findtext(_q("tptz", "ConfigurationToken")) or "").strip() != PTZ_CONF:
            raise Fault("env:Sender", ("ter:InvalidArgVal", "ter:NoConfig"), "no such configuration")
        return ("<tptz:GetConfigurationOptionsResponse><tptz:PTZConfigurationOptions>"
                f"<tt:Spaces>{self._spaces()}</tt:Spaces>"
                "<tt:PTZTimeout><tt:Min>PT1S</tt:Min><tt:Max>PT60S</tt:Max></tt:PTZTimeout>"
                "</tptz:PTZConfigurationOptions></tptz:GetConfigurationOptionsResponse>")

    def _op_GetNode(self, request: ET.Element) -> str:
        if (request.findtext(_q("tptz", "NodeToken")) or "").strip() != PTZ_NODE:
            raise Fault("env:Sender", ("ter:InvalidArgVal", "ter:NoEntity"), "no such node")
        return (f'<tptz:GetNodeResponse><tptz:PTZNode token="{PTZ_NODE}" FixedHomePosition="true">'
                f"<tt:Name>head</tt:Name><tt:SupportedPTZSpaces>{self._spaces()}</tt:SupportedPTZSpaces>"
                "<tt:MaximumNumberOfPresets>0</tt:MaximumNumberOfPresets><tt:HomeSupported>true</tt:HomeSupported>"
                "</tptz:PTZNode></tptz:GetNodeResponse>")

    def _op_GetStatus(self, request: ET.Element) -> str:
        self._profile(request)
        fb = self.camera.feedback()
        m, r = self._mech(), self.ranges
        pan, tilt = self._from_sim(fb.pan, r.pan, m.pan), self._from_sim(fb.tilt, r.tilt, m.tilt)
        zoom = self._from_sim(fb.zoom_raw, r.zoom, m.zoom)
        pt_moving = abs(fb.pan_velocity) > 1e-9 or abs(fb.tilt_velocity) > 1e-9
        z_moving = abs(fb.zoom_velocity) > 1e-9
        t = fb.stamp + self.clock_offset
        whole = math.floor(t)
        utc = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        utc += f".{int(round((t - whole) * 1e6)) // 1000:03d}Z" if self.utc_fraction else "Z"
        return ("<tptz:GetStatusResponse><tptz:PTZStatus><tt:Position>"
                f'<tt:PanTilt x="{pan:.7f}" y="{tilt:.7f}" space="{SPACE}PanTiltSpaces/PositionGenericSpace"/>'
                f'<tt:Zoom x="{zoom:.7f}" space="{SPACE}ZoomSpaces/PositionGenericSpace"/></tt:Position>'
                f"<tt:MoveStatus><tt:PanTilt>{'MOVING' if pt_moving else 'IDLE'}</tt:PanTilt>"
                f"<tt:Zoom>{'MOVING' if z_moving else 'IDLE'}</tt:Zoom></tt:MoveStatus>"
                f"<tt:UtcTime>{utc}</tt:UtcTime></tptz:PTZStatus></tptz:GetStatusResponse>")

    def _speeds(self, speed_el: Optional[ET.Element]) -> tuple[Optional[float], Optional[float]]:
        if speed_el is None:
            return None, None
        pt = self._vec(speed_el.find(_q("tt", "PanTilt")), self.ranges.speed, "xy")
        if pt is None:
            return None, None
        m, top = self._mech(), self.ranges.speed[1]
        return (pt[0] / top * m.pan.max_speed or None, pt[1] / top * m.tilt.max_speed or None)

    def _op_ContinuousMove(self, request: ET.Element) -> str:
        self._profile(request)
        velocity = request.find(_q("tptz", "Velocity"))
        if velocity is None:
            raise Fault("env:Sender", ("ter:InvalidArgVal",), "no Velocity")
        r, m = self.ranges, self._mech()
        pt = self._vec(velocity.find(_q("tt", "PanTilt")), r.velocity, "xy") or (0.0, 0.0)
        z = self._vec(velocity.find(_q("tt", "Zoom")), r.velocity, "x") or (0.0,)
        timeout_text = request.findtext(_q("tptz", "Timeout"))
        duration = _duration(timeout_text) if timeout_text is not None else None
        top = r.velocity[1]
        rates = (pt[0] / top * m.pan.max_speed, pt[1] / top * m.tilt.max_speed, z[0] / top * m.zoom.max_speed)
        self.camera.move_velocity(*rates, duration=duration)
        self._executed("ContinuousMove", pan_rate=rates[0], tilt_rate=rates[1], zoom_rate=rates[2], duration=duration)
        return "<tptz:ContinuousMoveResponse/>"

    def _op_AbsoluteMove(self, request: ET.Element) -> str:
        self._profile(request)
        position = request.find(_q("tptz", "Position"))
        if position is None:
            raise Fault("env:Sender", ("ter:InvalidArgVal",), "no Position")
        r, m = self.ranges, self._mech()
        pt = self._vec(position.find(_q("tt", "PanTilt")), (min(r.pan[0], r.tilt[0]), max(r.pan[1], r.tilt[1])), "xy")
        z = self._vec(position.find(_q("tt", "Zoom")), r.zoom, "x")
        pan = self._to_sim(pt[0], r.pan, m.pan) if pt else None
        tilt = self._to_sim(pt[1], r.tilt, m.tilt) if pt else None
        zoom = self._to_sim(z[0], r.zoom, m.zoom) if z else None
        ps, ts = self._speeds(request.find(_q("tptz", "Speed")))
        self.camera.move_absolute(pan, tilt, zoom, ps, ts)
        self._executed("AbsoluteMove", pan=pan, tilt=tilt, zoom=zoom, pan_speed=ps, tilt_speed=ts)
        return "<tptz:AbsoluteMoveResponse/>"

    def _op_RelativeMove(self, request: ET.Element) -> str:
        self._profile(request)
        translation = request.find(_q("tptz", "Translation"))
        if translation is None:
            raise Fault("env:Sender", ("ter:InvalidArgVal",), "no Translation")
        r, m = self.ranges, self._mech()
        pt = self._vec(translation.find(_q("tt", "PanTilt")), r.translation, "xy")
        z = self._vec(translation.find(_q("tt", "Zoom")), r.translation, "x")
        top = r.translation[1]
        dp = pt[0] / top * (m.pan.max - m.pan.min) if pt else None
        dt = pt[1] / top * (m.tilt.max - m.tilt.min) if pt else None
        dz = z[0] / top * (m.zoom.max - m.zoom.min) if z else None
        ps, ts = self._speeds(request.find(_q("tptz", "Speed")))
        self.camera.move_relative(dp, dt, dz, ps, ts)
        self._executed("RelativeMove", pan=dp, tilt=dt, zoom=dz, pan_speed=ps, tilt_speed=ts)
        return "<tptz:RelativeMoveResponse/>"

    def _op_Stop(self, request: ET.Element) -> str:
        self._profile(request)
        # the simulated head brakes every axis (PanTilt/Zoom false is not modelled)
        self.camera.stop()
        self._executed("Stop", pan_tilt=request.findtext(_q("tptz", "PanTilt")),
                       zoom=request.findtext(_q("tptz", "Zoom")))
        return "<tptz:StopResponse/>"

    def _op_GotoHomePosition(self, request: ET.Element) -> str:
        self._profile(request)
        self.camera.home()
        self._executed("GotoHomePosition")
        return "<tptz:GotoHomePositionResponse/>"

    def _executed(self, op: str, **params) -> None:
        with self._lock:
            self.executed.append((op, params))

    def record(self, rec: Recorded) -> None:
        with self._lock:
            self.requests.append(rec)
            del self.requests[:-2000]

    def requests_of(self, operation: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.operation == operation]


def _operation_name(body: bytes) -> str:
    m = re.search(rb"<(?:\w+:)?Body[^>]*>\s*<(?:\w+:)?(\w+)", body)
    return m.group(1).decode() if m else ""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    emulator: OnvifEmulator
    timeout = 30

    def setup(self) -> None:
        super().setup()
        # headers and body go out in two writes: without this, Nagle + delayed ACK add ~40 ms
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.emulator._lock:
            self.emulator._connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.emulator._lock:
                self.emulator._connections.discard(self.connection)

    def log_message(self, *args) -> None:  # quiet
        pass

    def _send(self, status: int, body: bytes, headers: Optional[dict] = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/soap+xml; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802 (http.server API)
        emu = self.emulator
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = 0
        body = self.rfile.read(min(max(length, 0), 1 << 20))
        op = _operation_name(body)
        headers = {k.lower(): v for k, v in self.headers.items()}
        emu.record(Recorded(op, self.path, headers, body))
        f = emu.faults
        faulty = f.take(op) if (f.drop or f.malformed or f.soap_fault or f.delay or f.http_error or f.reset) else False
        if faulty:
            if f.delay > 0:
                time.sleep(f.delay)
            if f.drop:
                deadline = time.monotonic() + 60.0
                while emu.faults.drop and emu.running and time.monotonic() < deadline:
                    time.sleep(0.01)
                self.close_connection = True
                return
            if f.reset:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                return
            if f.http_error:
                page = b"<html><body>Internal Server Error</body></html>"
                self.send_response(f.http_error)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)
                return
            if f.soap_fault:
                self._send(500, fault_xml("env:Receiver", (f.soap_fault,), f.reason))
                return
        try:
            status, reply, extra = emu.handle(self.path, headers, body)
        except Fault as fault:
            if "ter:NotAuthorized" in fault.subcodes:
                emu.auth_failures += 1
            self._send(fault.status, fault_xml(fault.code, fault.subcodes, fault.reason))
            return
        except Exception as exc:  # noqa: BLE001 - a device answers a fault, it does not hang up
            self._send(500, fault_xml("env:Receiver", ("ter:Action",), f"internal error: {type(exc).__name__}"))
            return
        if faulty and f.malformed and status == 200:
            reply = reply[: max(1, len(reply) // 2)]
        self._send(status, reply, extra)


def main(argv: Optional[list[str]] = None) -> int:
    """``python -m ptz_calibration.emulators.onvif [--port P] [--camera left] [--auth wsse]``."""
    import argparse

    from ..drivers.simulated import default_rig_file
    from ..simulation import SimulatedPtzCamera, load_rig

    parser = argparse.ArgumentParser(description="Serve one emulated ONVIF PTZ camera on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=0, help="TCP port (0 = any free port)")
    parser.add_argument("--camera", default="left", help="camera of the simulated rig")
    parser.add_argument("--user", default=os.environ.get("PTZ_ONVIF_USER") or "admin")
    parser.add_argument("--auth", default="wsse", choices=("wsse", "digest", "both", "none"))
    args = parser.parse_args(argv)
    password = os.environ.get("PTZ_ONVIF_PASSWORD") or "emulator"
    rig = load_rig(default_rig_file())
    emulator = OnvifEmulator(SimulatedPtzCamera(rig.cameras[args.camera], rig.scene, 0), user=args.user,
                             password=password, auth=args.auth, port=args.port).start()
    print(f"ONVIF emulator of camera {args.camera!r} at {emulator.url} (user {args.user!r}, password from "
          f"PTZ_ONVIF_PASSWORD or the default 'emulator', auth {args.auth})\n"
          f"try: PTZ_ONVIF_USER={args.user} PTZ_ONVIF_PASSWORD=... ros2 run ptz_calibration ptz_driver --ros-args "
          f"--params-file <share>/config/onvif_generic.yaml -p onvif.url:={emulator.url} -p camera_name:={args.camera}",
          flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
