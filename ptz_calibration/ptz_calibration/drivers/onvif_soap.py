"""ONVIF PTZ over SOAP 1.2: request bodies, WS-Security, reply parsers (pure, no I/O).

Element names and namespaces are those of the ONVIF WSDLs (``devicemgmt.wsdl`` ver10,
``media.wsdl`` ver10, ``ptz.wsdl`` ver20, types of ``onvif.xsd``); the UsernameToken is the
OASIS WS-Security UsernameToken Profile 1.0 with ``PasswordDigest =
Base64(SHA1(nonce + created + password))`` (ONVIF Core Specification, "User-based access
control"; worked example in the ONVIF Application Programmer's Guide 1.0, section 6.1.1.3).

Every parser raises only :class:`OnvifError` subclasses: :class:`OnvifParseError` for bytes that
are not the expected SOAP reply, :class:`SoapFault` (with code, subcode and reason) for a fault.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Iterable, Optional
from xml.sax.saxutils import escape, quoteattr

from .interface import DriverError

# -- namespaces ------------------------------------------------------------------------------------
SOAP_ENV = "http://www.w3.org/2003/05/soap-envelope"
TDS = "http://www.onvif.org/ver10/device/wsdl"
TRT = "http://www.onvif.org/ver10/media/wsdl"
TPTZ = "http://www.onvif.org/ver20/ptz/wsdl"
TT = "http://www.onvif.org/ver10/schema"
TER = "http://www.onvif.org/ver10/error"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
PASSWORD_DIGEST = ("http://docs.oasis-open.org/wss/2004/01/"
                   "oasis-200401-wss-username-token-profile-1.0#PasswordDigest")
BASE64_BINARY = ("http://docs.oasis-open.org/wss/2004/01/"
                 "oasis-200401-wss-soap-message-security-1.0#Base64Binary")

# generic spaces of the PTZ service specification (every PTZ node supports them)
PT_POSITION_GENERIC = "http://www.onvif.org/ver10/tptz/PanTiltSpaces/PositionGenericSpace"
ZOOM_POSITION_GENERIC = "http://www.onvif.org/ver10/tptz/ZoomSpaces/PositionGenericSpace"
PT_TRANSLATION_GENERIC = "http://www.onvif.org/ver10/tptz/PanTiltSpaces/TranslationGenericSpace"
ZOOM_TRANSLATION_GENERIC = "http://www.onvif.org/ver10/tptz/ZoomSpaces/TranslationGenericSpace"
PT_VELOCITY_GENERIC = "http://www.onvif.org/ver10/tptz/PanTiltSpaces/VelocityGenericSpace"
ZOOM_VELOCITY_GENERIC = "http://www.onvif.org/ver10/tptz/ZoomSpaces/VelocityGenericSpace"
PT_SPEED_GENERIC = "http://www.onvif.org/ver10/tptz/PanTiltSpaces/GenericSpeedSpace"
ZOOM_SPEED_GENERIC = "http://www.onvif.org/ver10/tptz/ZoomSpaces/ZoomGenericSpeedSpace"

#: operation -> (service namespace, service name used to pick the endpoint)
OPERATIONS: dict[str, tuple[str, str]] = {
    "GetSystemDateAndTime": (TDS, "device"),
    "GetCapabilities": (TDS, "device"),
    "GetProfiles": (TRT, "media"),
    "GetNode": (TPTZ, "ptz"),
    "GetConfigurationOptions": (TPTZ, "ptz"),
    "GetStatus": (TPTZ, "ptz"),
    "ContinuousMove": (TPTZ, "ptz"),
    "AbsoluteMove": (TPTZ, "ptz"),
    "RelativeMove": (TPTZ, "ptz"),
    "Stop": (TPTZ, "ptz"),
    "GotoHomePosition": (TPTZ, "ptz"),
}

#: operations that may be sent again when the first attempt got no reply: executing them twice
#: has the same effect as once. RelativeMove is NOT (twice = twice the offset).
IDEMPOTENT = frozenset(OPERATIONS) - {"RelativeMove"}


class OnvifError(DriverError):
    """An ONVIF exchange failed (base of the typed errors of this module)."""


class OnvifParseError(OnvifError):
    """The reply is not the expected SOAP message (malformed, truncated, wrong element)."""


class SoapFault(OnvifError):
    """The device answered with a SOAP fault."""

    def __init__(self, code: str, subcode: str, reason: str, operation: str = "") -> None:
        self.code, self.subcode, self.reason, self.operation = code, subcode, reason, operation
        what = f"{operation}: " if operation else ""
        super().__init__(f"{what}SOAP fault {code}{'/' + subcode if subcode else ''}: {reason}")


class OnvifAuthError(SoapFault):
    """The device refused the credentials (ter:NotAuthorized or HTTP 401)."""


# -- WS-Security -----------------------------------------------------------------------------------

def password_digest(nonce: bytes, created: str, password: str) -> str:
    """``Base64(SHA1(nonce + created + password))`` of the UsernameToken profile."""
    return base64.b64encode(hashlib.sha1(nonce + created.encode() + password.encode()).digest()).decode()


def utc_text(t: float) -> str:
    """``xs:dateTime`` in UTC with whole seconds (``2010-09-16T07:50:45Z``)."""
    return _time_format(int(math.floor(t)))


def _time_format(seconds: int) -> str:
    import time as _time
    return _time.strftime("%Y-%m-%dT%H:%M:%SZ", _time.gmtime(seconds))


def security_header(user: str, password: str, nonce: bytes, created: str) -> str:
    """The ``wsse:Security`` header element (UsernameToken with PasswordDigest) as XML text."""
    return (f'<wsse:Security xmlns:wsse="{WSSE}" xmlns:wsu="{WSU}" s:mustUnderstand="true">'
            f"<wsse:UsernameToken><wsse:Username>{escape(user)}</wsse:Username>"
            f'<wsse:Password Type="{PASSWORD_DIGEST}">{password_digest(nonce, created, password)}</wsse:Password>'
            f'<wsse:Nonce EncodingType="{BASE64_BINARY}">{base64.b64encode(nonce).decode()}</wsse:Nonce>'
            f"<wsu:Created>{created}</wsu:Created></wsse:UsernameToken></wsse:Security>")


def envelope(body: str, header: str = "") -> bytes:
    """A SOAP 1.2 envelope around ``body`` (and ``header``), UTF-8 bytes."""
    head = f"<s:Header>{header}</s:Header>" if header else ""
    return (f'<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="{SOAP_ENV}">{head}'
            f"<s:Body>{body}</s:Body></s:Envelope>").encode()


def soap_action(operation: str) -> str:
    """The ``action`` parameter of the SOAP 1.2 Content-Type (service namespace + operation)."""
    return f"{OPERATIONS[operation][0]}/{operation}"


# -- request bodies ----------------------------------------------------------------------------------

def _num(v: float) -> str:
    """An ``xs:float`` attribute value (9 significant digits, no exponent surprises for +-1e-5)."""
    if not math.isfinite(v):
        raise ValueError(f"not a finite number: {v}")
    text = format(float(v), ".9g")
    return "0" if text in ("-0", "0") else text


def duration_text(seconds: float) -> str:
    """``xs:duration`` of ``seconds`` (``PT1.5S``)."""
    if not (math.isfinite(seconds) and seconds >= 0):
        raise ValueError(f"duration must be finite and >= 0, got {seconds}")
    text = format(round(seconds, 3), "f").rstrip("0").rstrip(".")
    return f"PT{text or '0'}S"


def _pt(tag: str, x: float, y: float, space: Optional[str] = None) -> str:
    space_attr = f" space={quoteattr(space)}" if space else ""
    return f'<tt:{tag} x="{_num(x)}" y="{_num(y)}"{space_attr}/>'


def _z(tag: str, x: float, space: Optional[str] = None) -> str:
    space_attr = f" space={quoteattr(space)}" if space else ""
    return f'<tt:{tag} x="{_num(x)}"{space_attr}/>'


def _vector(tag: str, pan_tilt: Optional[tuple[float, float]], zoom: Optional[float],
            pt_space: Optional[str] = None, zoom_space: Optional[str] = None) -> str:
    inner = (_pt("PanTilt", *pan_tilt, pt_space) if pan_tilt is not None else "") + \
            (_z("Zoom", zoom, zoom_space) if zoom is not None else "")
    return f"<tptz:{tag}>{inner}</tptz:{tag}>"


def _token(tag: str, token: str) -> str:
    return f"<tptz:{tag}>{escape(token)}</tptz:{tag}>"


def get_system_date_and_time() -> str:
    return f'<tds:GetSystemDateAndTime xmlns:tds="{TDS}"/>'


def get_capabilities() -> str:
    return f'<tds:GetCapabilities xmlns:tds="{TDS}"><tds:Category>All</tds:Category></tds:GetCapabilities>'


def get_profiles() -> str:
    return f'<trt:GetProfiles xmlns:trt="{TRT}"/>'


def _ptz(operation: str, inner: str) -> str:
    return f'<tptz:{operation} xmlns:tptz="{TPTZ}" xmlns:tt="{TT}">{inner}</tptz:{operation}>'


def get_node(node_token: str) -> str:
    return _ptz("GetNode", _token("NodeToken", node_token))


def get_configuration_options(configuration_token: str) -> str:
    return _ptz("GetConfigurationOptions", _token("ConfigurationToken", configuration_token))


def get_status(profile: str) -> str:
    return _ptz("GetStatus", _token("ProfileToken", profile))


def continuous_move(profile: str, pan: float, tilt: float, zoom: Optional[float] = None,
                    timeout: Optional[float] = None) -> str:
    """``ContinuousMove``: velocity (generic velocity space) and an optional ``Timeout`` (s)."""
    inner = _token("ProfileToken", profile) + _vector("Velocity", (pan, tilt), zoom)
    if timeout is not None:
        inner += f"<tptz:Timeout>{duration_text(timeout)}</tptz:Timeout>"
    return _ptz("ContinuousMove", inner)


def absolute_move(profile: str, pan_tilt: Optional[tuple[float, float]], zoom: Optional[float],
                  speed: Optional[tuple[float, float]] = None, zoom_speed: Optional[float] = None) -> str:
    """``AbsoluteMove`` to a position of the generic position spaces (None = axis left alone)."""
    inner = _token("ProfileToken", profile) + _vector("Position", pan_tilt, zoom)
    if speed is not None or zoom_speed is not None:
        inner += _vector("Speed", speed, zoom_speed)
    return _ptz("AbsoluteMove", inner)


def relative_move(profile: str, pan_tilt: Optional[tuple[float, float]], zoom: Optional[float],
                  speed: Optional[tuple[float, float]] = None) -> str:
    """``RelativeMove`` by a translation of the generic translation spaces."""
    inner = _token("ProfileToken", profile) + _vector("Translation", pan_tilt, zoom)
    if speed is not None:
        inner += _vector("Speed", speed, None)
    return _ptz("RelativeMove", inner)


def stop(profile: str, pan_tilt: bool = True, zoom: bool = True) -> str:
    return _ptz("Stop", _token("ProfileToken", profile) + f"<tptz:PanTilt>{str(pan_tilt).lower()}</tptz:PanTilt>"
                f"<tptz:Zoom>{str(zoom).lower()}</tptz:Zoom>")


def goto_home_position(profile: str) -> str:
    return _ptz("GotoHomePosition", _token("ProfileToken", profile))


# -- replies -----------------------------------------------------------------------------------------

def _q(ns: str, name: str) -> str:
    return f"{{{ns}}}{name}"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _prefixed_local(text: str) -> str:
    return text.strip().rsplit(":", 1)[-1]


def parse_reply(data: bytes, operation: str) -> ET.Element:
    """The ``<operation>Response`` element of a SOAP reply; :class:`SoapFault` for a fault.

    Raises :class:`OnvifParseError` for anything else (not XML, a DOCTYPE, no Body, another element).
    """
    if not isinstance(data, (bytes, bytearray)) or not data.strip():
        raise OnvifParseError(f"{operation}: empty reply")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise OnvifParseError(f"{operation}: reply with a DOCTYPE/ENTITY declaration refused")
    try:
        root = ET.fromstring(bytes(data))
    except (ET.ParseError, ValueError, UnicodeError) as exc:
        raise OnvifParseError(f"{operation}: malformed XML reply ({exc})") from None
    except RecursionError:
        raise OnvifParseError(f"{operation}: XML reply nested too deeply") from None
    if root.tag != _q(SOAP_ENV, "Envelope"):
        raise OnvifParseError(f"{operation}: the reply is not a SOAP 1.2 envelope (root {root.tag[:80]!r})")
    body = root.find(_q(SOAP_ENV, "Body"))
    if body is None:
        raise OnvifParseError(f"{operation}: SOAP envelope without a Body")
    fault = body.find(_q(SOAP_ENV, "Fault"))
    if fault is not None:
        raise fault_from_element(fault, operation)
    expected = f"{operation}Response"
    for child in body:
        if _local(child.tag) == expected:
            return child
    found = [_local(c.tag) for c in body][:3]
    raise OnvifParseError(f"{operation}: no {expected} in the reply (found {found})")


def fault_from_element(fault: ET.Element, operation: str = "") -> SoapFault:
    """A :class:`SoapFault` (or :class:`OnvifAuthError`) of a ``env:Fault`` element."""
    code = fault.findtext(f"{_q(SOAP_ENV, 'Code')}/{_q(SOAP_ENV, 'Value')}") or ""
    sub = fault.find(f"{_q(SOAP_ENV, 'Code')}/{_q(SOAP_ENV, 'Subcode')}")
    subcodes = []
    while sub is not None:
        subcodes.append((sub.findtext(_q(SOAP_ENV, "Value")) or "").strip())
        sub = sub.find(_q(SOAP_ENV, "Subcode"))
    reason = fault.findtext(f"{_q(SOAP_ENV, 'Reason')}/{_q(SOAP_ENV, 'Text')}") or ""
    code, subcode = code.strip()[:80], "/".join(s for s in subcodes if s)[:160]
    reason = " ".join(reason.split())[:300]
    cls = OnvifAuthError if any(_prefixed_local(s) == "NotAuthorized" for s in subcodes) else SoapFault
    return cls(code, subcode, reason, operation)


def _float(el: Optional[ET.Element], attr: str, what: str) -> float:
    if el is None:
        raise OnvifParseError(f"missing {what}")
    text = el.get(attr)
    try:
        value = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise OnvifParseError(f"{what}: {attr}={str(text)[:40]!r} is not a number") from None
    if not math.isfinite(value):
        raise OnvifParseError(f"{what}: {attr}={text!r} is not finite")
    return value


def _text_float(el: Optional[ET.Element], what: str) -> float:
    try:
        value = float((el.text or "").strip())  # type: ignore[union-attr]
    except (AttributeError, ValueError):
        raise OnvifParseError(f"{what} is missing or not a number") from None
    if not math.isfinite(value):
        raise OnvifParseError(f"{what} is not finite")
    return value


@dataclass(frozen=True)
class Range:
    """A ``tt:FloatRange``."""

    lo: float
    hi: float


@dataclass(frozen=True)
class Spaces:
    """Ranges of the spaces the driver uses (from GetConfigurationOptions or GetNode)."""

    pan: Range = Range(-1.0, 1.0)
    tilt: Range = Range(-1.0, 1.0)
    zoom: Range = Range(0.0, 1.0)
    pan_velocity: Range = Range(-1.0, 1.0)
    tilt_velocity: Range = Range(-1.0, 1.0)
    zoom_velocity: Range = Range(-1.0, 1.0)
    pan_translation: Range = Range(-1.0, 1.0)
    tilt_translation: Range = Range(-1.0, 1.0)
    zoom_translation: Range = Range(-1.0, 1.0)
    pan_tilt_speed: Range = Range(0.0, 1.0)
    zoom_speed: Range = Range(0.0, 1.0)
    home_supported: bool = True


def _range(el: Optional[ET.Element], name: str, what: str) -> Range:
    r = el.find(_q(TT, name)) if el is not None else None
    if r is None:
        raise OnvifParseError(f"{what}: no {name}")
    lo = _text_float(r.find(_q(TT, "Min")), f"{what} {name} Min")
    hi = _text_float(r.find(_q(TT, "Max")), f"{what} {name} Max")
    if not lo < hi:
        raise OnvifParseError(f"{what} {name}: empty range [{lo}, {hi}]")
    return Range(lo, hi)


def _space(parent: ET.Element, name: str, generic: str) -> Optional[ET.Element]:
    """The space description ``name`` with the generic URI (else the first one), None if absent."""
    spaces = parent.findall(_q(TT, name))
    for s in spaces:
        if (s.findtext(_q(TT, "URI")) or "").strip() == generic:
            return s
    return spaces[0] if spaces else None


def parse_spaces(spaces_el: Optional[ET.Element], home_supported: bool = True) -> Spaces:
    """:class:`Spaces` of a ``tt:PTZSpaces`` element; missing spaces keep the generic defaults."""
    if spaces_el is None:
        raise OnvifParseError("no PTZ spaces in the reply")
    d = Spaces()
    out = {}
    for name, generic, axes in (
            ("AbsolutePanTiltPositionSpace", PT_POSITION_GENERIC, ("pan", "tilt")),
            ("AbsoluteZoomPositionSpace", ZOOM_POSITION_GENERIC, ("zoom",)),
            ("RelativePanTiltTranslationSpace", PT_TRANSLATION_GENERIC, ("pan_translation", "tilt_translation")),
            ("RelativeZoomTranslationSpace", ZOOM_TRANSLATION_GENERIC, ("zoom_translation",)),
            ("ContinuousPanTiltVelocitySpace", PT_VELOCITY_GENERIC, ("pan_velocity", "tilt_velocity")),
            ("ContinuousZoomVelocitySpace", ZOOM_VELOCITY_GENERIC, ("zoom_velocity",)),
            ("PanTiltSpeedSpace", PT_SPEED_GENERIC, ("pan_tilt_speed",)),
            ("ZoomSpeedSpace", ZOOM_SPEED_GENERIC, ("zoom_speed",))):
        space = _space(spaces_el, name, generic)
        if space is None:
            continue
        out[axes[0]] = _range(space, "XRange", name)
        if len(axes) == 2:
            out[axes[1]] = _range(space, "YRange", name)
    return Spaces(**{**d.__dict__, **out, "home_supported": home_supported})


def parse_configuration_options(response: ET.Element) -> Spaces:
    """Spaces of a ``GetConfigurationOptionsResponse``."""
    options = response.find(_q(TPTZ, "PTZConfigurationOptions"))
    if options is None:
        raise OnvifParseError("GetConfigurationOptions: no PTZConfigurationOptions")
    return parse_spaces(options.find(_q(TT, "Spaces")))


def parse_node(response: ET.Element) -> Spaces:
    """Spaces and HomeSupported of a ``GetNodeResponse``."""
    node = response.find(_q(TPTZ, "PTZNode"))
    if node is None:
        raise OnvifParseError("GetNode: no PTZNode")
    home = (node.findtext(_q(TT, "HomeSupported")) or "true").strip().lower() in ("true", "1")
    return parse_spaces(node.find(_q(TT, "SupportedPTZSpaces")), home)


@dataclass(frozen=True)
class Profile:
    """A media profile and its PTZ configuration (tokens and limits)."""

    token: str
    name: str = ""
    ptz_configuration: str = ""
    node: str = ""
    pan_limits: Optional[Range] = None
    tilt_limits: Optional[Range] = None
    zoom_limits: Optional[Range] = None


def parse_profiles(response: ET.Element) -> list[Profile]:
    """The profiles of a ``GetProfilesResponse`` (those without a PTZConfiguration included)."""
    profiles = []
    for p in response.findall(_q(TRT, "Profiles")):
        token = p.get("token")
        if not token:
            raise OnvifParseError("GetProfiles: a profile without a token")
        ptz = p.find(_q(TT, "PTZConfiguration"))
        kw: dict = {}
        if ptz is not None:
            kw["ptz_configuration"] = ptz.get("token") or ""
            kw["node"] = (ptz.findtext(_q(TT, "NodeToken")) or "").strip()
            ptl = ptz.find(f"{_q(TT, 'PanTiltLimits')}/{_q(TT, 'Range')}")
            if ptl is not None:
                kw["pan_limits"], kw["tilt_limits"] = _range(ptl, "XRange", "PanTiltLimits"), \
                    _range(ptl, "YRange", "PanTiltLimits")
            zl = ptz.find(f"{_q(TT, 'ZoomLimits')}/{_q(TT, 'Range')}")
            if zl is not None:
                kw["zoom_limits"] = _range(zl, "XRange", "ZoomLimits")
        profiles.append(Profile(token=token, name=(p.findtext(_q(TT, "Name")) or "").strip(), **kw))
    return profiles


def choose_profile(profiles: Iterable[Profile], wanted: str = "") -> Profile:
    """The profile ``wanted`` (a token), or the first one with a PTZ configuration."""
    profiles = list(profiles)
    if wanted:
        for p in profiles:
            if p.token == wanted:
                if not p.ptz_configuration:
                    raise OnvifError(f"profile {wanted!r} has no PTZConfiguration")
                return p
        raise OnvifError(f"no profile {wanted!r} (profiles: {', '.join(p.token for p in profiles) or 'none'})")
    for p in profiles:
        if p.ptz_configuration:
            return p
    raise OnvifError(f"no media profile with a PTZConfiguration (profiles: "
                     f"{', '.join(p.token for p in profiles) or 'none'})")


def parse_capabilities(response: ET.Element) -> dict[str, str]:
    """Service addresses of a ``GetCapabilitiesResponse``: {"media": XAddr, "ptz": XAddr} when given."""
    caps = response.find(_q(TDS, "Capabilities"))
    if caps is None:
        raise OnvifParseError("GetCapabilities: no Capabilities")
    out = {}
    for name, key in (("Media", "media"), ("PTZ", "ptz"), ("Device", "device")):
        addr = caps.findtext(f"{_q(TT, name)}/{_q(TT, 'XAddr')}")
        if addr and addr.strip():
            out[key] = addr.strip()
    return out


_DATETIME = re.compile(r"^\s*(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})?\s*$")


def parse_datetime(text: str) -> tuple[float, bool]:
    """(epoch seconds, has a fractional part) of an ``xs:dateTime`` (no zone = UTC)."""
    m = _DATETIME.match(text or "")
    if not m:
        raise OnvifParseError(f"not an xs:dateTime: {str(text)[:40]!r}")
    y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    try:
        t = float(calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)))
    except (ValueError, OverflowError):
        raise OnvifParseError(f"not an xs:dateTime: {text[:40]!r}") from None
    if not (1 <= mo <= 12 and 1 <= d <= 31 and h <= 24 and mi <= 59 and s <= 60):
        raise OnvifParseError(f"xs:dateTime out of range: {text[:40]!r}")
    frac = m.group(7)
    if frac:
        t += float(frac)
    zone = m.group(8)
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        t -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return t, bool(frac)


def parse_system_date_and_time(response: ET.Element) -> float:
    """Epoch seconds of the UTCDateTime of a ``GetSystemDateAndTimeResponse`` (1 s resolution)."""
    utc = response.find(f"{_q(TDS, 'SystemDateAndTime')}/{_q(TT, 'UTCDateTime')}")
    if utc is None:
        raise OnvifParseError("GetSystemDateAndTime: no UTCDateTime")
    date, time_ = utc.find(_q(TT, "Date")), utc.find(_q(TT, "Time"))
    try:
        y, mo, d = (int((date.findtext(_q(TT, n)) or "").strip()) for n in ("Year", "Month", "Day"))  # type: ignore[union-attr]
        h, mi, s = (int((time_.findtext(_q(TT, n)) or "").strip()) for n in ("Hour", "Minute", "Second"))  # type: ignore[union-attr]
    except (AttributeError, ValueError):
        raise OnvifParseError("GetSystemDateAndTime: incomplete UTCDateTime") from None
    if not (1 <= mo <= 12 and 1 <= d <= 31 and 0 <= h <= 23 and 0 <= mi <= 59 and 0 <= s <= 60):
        raise OnvifParseError("GetSystemDateAndTime: UTCDateTime out of range")
    return float(calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)))


@dataclass(frozen=True)
class Status:
    """A ``tt:PTZStatus`` in device units (generic spaces)."""

    pan: float
    tilt: float
    zoom: float
    pan_tilt_moving: bool = False
    zoom_moving: bool = False
    error: Optional[str] = None
    utc_time: Optional[float] = None  # epoch s as the device reports it (its own clock)
    utc_fractional: bool = False  # the UtcTime has sub-second digits
    extra: dict = field(default_factory=dict, compare=False)


def parse_status(response: ET.Element) -> Status:
    """:class:`Status` of a ``GetStatusResponse`` (Position PanTilt x/y and Zoom x are required)."""
    status = response.find(_q(TPTZ, "PTZStatus"))
    if status is None:
        raise OnvifParseError("GetStatus: no PTZStatus")
    position = status.find(_q(TT, "Position"))
    if position is None:
        raise OnvifParseError("GetStatus: no Position (the device does not report its position)")
    pt = position.find(_q(TT, "PanTilt"))
    zoom = position.find(_q(TT, "Zoom"))
    move = status.find(_q(TT, "MoveStatus"))

    def moving(name: str) -> bool:
        text = (move.findtext(_q(TT, name)) if move is not None else None) or "IDLE"
        return text.strip().upper() == "MOVING"
    error = (status.findtext(_q(TT, "Error")) or "").strip()
    utc, frac = None, False
    utc_text_ = status.findtext(_q(TT, "UtcTime"))
    if utc_text_ and utc_text_.strip():
        utc, frac = parse_datetime(utc_text_)
    return Status(pan=_float(pt, "x", "GetStatus Position PanTilt"), tilt=_float(pt, "y", "GetStatus Position PanTilt"),
                  zoom=_float(zoom, "x", "GetStatus Position Zoom"), pan_tilt_moving=moving("PanTilt"),
                  zoom_moving=moving("Zoom"), error=(error[:200] or None) if error.upper() not in ("", "NONE") else None,
                  utc_time=utc, utc_fractional=frac)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every non-empty secret (and its XML-escaped form) replaced by ``***``."""
    for secret in secrets:
        if secret:
            for form in {secret, escape(secret)}:
                text = text.replace(form, "***")
    return text
