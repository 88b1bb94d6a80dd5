"""The ``onvif`` backend: an ONVIF Profile S PTZ device over SOAP 1.2 / HTTP.

Connect: GetSystemDateAndTime (device clock, for the WS-Security ``Created`` time),
GetCapabilities (media and PTZ service paths), GetProfiles (the profile: setting
``profile_token``, default the first profile with a PTZConfiguration), GetConfigurationOptions
and GetNode (ranges of the position, translation, velocity and speed spaces; HomeSupported).
Then ContinuousMove / AbsoluteMove / RelativeMove / Stop / GotoHomePosition for commands and
GetStatus for feedback.

Units: the device speaks its *generic* spaces (pan/tilt position -1..1, zoom 0..1, velocities
-1..1, speeds 0..1 by default; the ranges it reports are used). They are mapped linearly to
radians and raw zoom with the per-model table of the params file (``pan_min_deg`` ... the
angles at the ends of the device's reported range; see ``config/onvif_generic.yaml``).

Feedback stamps (``stamp_source``): ``midpoint`` (default) = middle of the GetStatus
request/response exchange; ``device`` = the PTZStatus ``UtcTime`` moved onto our clock with an
offset estimated from the exchange with the smallest round trip of the last 64 (an NTP-like
filter). ``device`` is only used when the device gives sub-second UtcTime; many devices report
whole seconds, or the time the reply was built rather than the time the position was sampled,
which is why the midpoint is the default.

Credentials: settings ``user``/``password``, else the environment variables
``PTZ_ONVIF_USER``/``PTZ_ONVIF_PASSWORD``. The password is scrubbed from every error message;
it is never part of ``repr``, logs or :meth:`link_statistics`.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Mapping, Optional
from urllib.parse import urlsplit

from . import onvif_soap as soap
from .interface import (
    NAN,
    DriverConnectionError,
    DriverError,
    DriverTimeout,
    Frame,
    PtzCapabilities,
    PtzDriver,
    PtzFeedback,
)
from .onvif_http import HttpStatusError, SoapHttpClient

ENV_USER = "PTZ_ONVIF_USER"
ENV_PASSWORD = "PTZ_ONVIF_PASSWORD"
AUTH_MODES = ("auto", "wsse", "digest", "none")
STAMP_SOURCES = ("midpoint", "device")


@dataclass(frozen=True)
class AxisMap:
    """Linear map between a device range [dev_lo, dev_hi] and SI values [si_lo, si_hi]."""

    dev_lo: float
    dev_hi: float
    si_lo: float
    si_hi: float

    def to_si(self, v: float) -> float:
        return self.si_lo + (v - self.dev_lo) * (self.si_hi - self.si_lo) / (self.dev_hi - self.dev_lo)

    def to_device(self, si: float) -> float:
        v = self.dev_lo + (si - self.si_lo) * (self.dev_hi - self.dev_lo) / (self.si_hi - self.si_lo)
        return min(max(v, min(self.dev_lo, self.dev_hi)), max(self.dev_lo, self.dev_hi))

    @property
    def si_span(self) -> float:
        return abs(self.si_hi - self.si_lo)


class DeviceClock:
    """Offset of the device clock from ours, from (device time, request sent, reply received).

    The device read its clock somewhere inside [sent, received]; the exchange with the smallest
    round trip bounds the offset best, so its midpoint estimate is used (window of 64)."""

    def __init__(self, window: int = 64) -> None:
        self._samples: deque[tuple[float, float]] = deque(maxlen=window)

    def update(self, device_time: float, sent: float, received: float) -> None:
        self._samples.append((received - sent, device_time - 0.5 * (sent + received)))

    @property
    def offset(self) -> float:
        """Device minus local time (s); NaN before the first sample."""
        return min(self._samples)[1] if self._samples else NAN

    def to_local(self, device_time: float) -> float:
        return device_time - self.offset


def _credential(value: Any, env: str) -> str:
    value = "" if value is None else str(value)
    return value if value else os.environ.get(env, "")


class OnvifDriver(PtzDriver):
    """An ONVIF PTZ device (see the module docstring)."""

    SETTINGS: dict[str, tuple[Any, str]] = {
        "url": ("http://127.0.0.1:8080/onvif/device_service", "device service address (http://host:port/path)"),
        "user": ("", f"user name (empty = environment variable {ENV_USER})"),
        "password": ("", f"password (empty = environment variable {ENV_PASSWORD}); never logged"),
        "auth": ("auto", "auto (WS-Security UsernameToken digest, and HTTP digest when the server asks), "
                 "wsse, digest or none"),
        "profile_token": ("", "media profile token (empty = the first profile with a PTZConfiguration)"),
        "use_capabilities": (True, "take the media and PTZ service paths from GetCapabilities (false: send "
                             "every request to url)"),
        "timeout": (1.0, "seconds to wait for each HTTP reply"),
        "retries": (1, "extra attempts of idempotent commands after a timeout or lost connection "
                    "(never RelativeMove, never GetStatus)"),
        "max_timeouts": (3, "consecutive timeouts after which the link counts as lost (node reconnects)"),
        "pan_min_deg": (-170.0, "pan angle (deg) at the low end of the device's pan position range"),
        "pan_max_deg": (170.0, "pan angle (deg) at the high end of the device's pan position range"),
        "tilt_min_deg": (-30.0, "tilt angle (deg) at the low end of the tilt position range"),
        "tilt_max_deg": (90.0, "tilt angle (deg) at the high end of the tilt position range"),
        "zoom_raw_min": (0.0, "raw zoom at the low (wide) end of the zoom position range"),
        "zoom_raw_max": (16384.0, "raw zoom at the high (tele) end of the zoom position range"),
        "max_pan_speed_deg": (85.9437, "pan speed (deg/s) at the end of the velocity and speed ranges"),
        "max_tilt_speed_deg": (68.7549, "tilt speed (deg/s) at the end of the velocity and speed ranges"),
        "max_zoom_speed": (6000.0, "zoom speed (raw/s) at the end of the zoom velocity range"),
        "continuous_timeout": (0.0, "ContinuousMove Timeout (s) of velocity commands without a duration "
                               "(0 = omit: the device's default PTZ timeout applies)"),
        "stamp_source": ("midpoint", "feedback stamp: midpoint (of the GetStatus exchange) or device "
                         "(PTZStatus UtcTime with an estimated clock offset)"),
    }

    def __init__(self, url: str, user: str = "", password: str = "", *, auth: str = "auto",
                 profile_token: str = "", use_capabilities: bool = True, timeout: float = 1.0,
                 retries: int = 1, max_timeouts: int = 3, pan_deg: tuple[float, float] = (-170.0, 170.0),
                 tilt_deg: tuple[float, float] = (-30.0, 90.0), zoom_raw: tuple[float, float] = (0.0, 16384.0),
                 max_speed_deg: tuple[float, float] = (85.9437, 68.7549), max_zoom_speed: float = 6000.0,
                 continuous_timeout: float = 0.0, stamp_source: str = "midpoint") -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise DriverError(f"onvif: url must be http://host[:port]/path, got scheme {parts.scheme!r}"
                              + (" (https is not supported)" if parts.scheme == "https" else ""))
        # credentials in the URL (http://user:pass@host) are used when none are given, never shown
        self._user = user or (parts.username or "")
        self._password = password or (parts.password or "")
        self._host, self._port = parts.hostname, parts.port or 80
        self._device_path = parts.path or "/onvif/device_service"
        self.url = f"http://{self._host}:{self._port}{self._device_path}"
        if auth not in AUTH_MODES:
            raise DriverError(f"onvif: auth must be one of {', '.join(AUTH_MODES)}, got {auth!r}")
        if stamp_source not in STAMP_SOURCES:
            raise DriverError(f"onvif: stamp_source must be one of {', '.join(STAMP_SOURCES)}, got {stamp_source!r}")
        for name, (lo, hi) in (("pan", pan_deg), ("tilt", tilt_deg), ("zoom_raw", zoom_raw)):
            if not (math.isfinite(lo) and math.isfinite(hi) and lo != hi):
                raise DriverError(f"onvif: {name} range must be two different finite numbers, got {lo}, {hi}")
        if not all(math.isfinite(v) and v > 0 for v in (*max_speed_deg, max_zoom_speed, timeout)):
            raise DriverError("onvif: maximum speeds and timeout must be positive")
        self.auth = auth
        self.profile_token = profile_token
        self.use_capabilities = bool(use_capabilities)
        self.timeout = float(timeout)
        self.retries = max(0, int(retries))
        self.max_timeouts = max(1, int(max_timeouts))
        self._pan_rad = tuple(math.radians(v) for v in pan_deg)
        self._tilt_rad = tuple(math.radians(v) for v in tilt_deg)
        self._zoom_raw = tuple(float(v) for v in zoom_raw)
        self._max_pan_speed, self._max_tilt_speed = (math.radians(v) for v in max_speed_deg)
        self._max_zoom_speed = float(max_zoom_speed)
        self.continuous_timeout = float(continuous_timeout)
        self.stamp_source = stamp_source

        self._lock = threading.RLock()
        self._client: Optional[SoapHttpClient] = None
        self._paths = {"device": self._device_path, "media": self._device_path, "ptz": self._device_path}
        self._connected = False
        self._caps: Optional[PtzCapabilities] = None
        self._profile: Optional[soap.Profile] = None
        self._spaces = soap.Spaces()
        self._pan = self._tilt = self._zoom = AxisMap(-1, 1, -1, 1)
        self._clock_offset = 0.0  # device - local (s), from GetSystemDateAndTime, for Created
        self._device_clock = DeviceClock()
        self._consecutive_timeouts = 0
        self._stats: dict[str, Any] = {
            "requests": 0, "timeouts": 0, "connection errors": 0, "soap faults": 0, "malformed replies": 0,
            "http errors": 0, "auth failures": 0, "retries": 0, "last round trip (ms)": NAN,
            "mean round trip (ms)": NAN, "last error": "",
        }
        self._rtt_sum = 0.0
        self._rtt_count = 0
        self._stamp_note = ""

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> "OnvifDriver":
        s = {k: v[0] for k, v in cls.SETTINGS.items()}
        s.update({k: v for k, v in settings.items() if v is not None})
        return cls(str(s["url"]), _credential(s["user"], ENV_USER), _credential(s["password"], ENV_PASSWORD),
                   auth=str(s["auth"]), profile_token=str(s["profile_token"]),
                   use_capabilities=bool(s["use_capabilities"]), timeout=float(s["timeout"]),
                   retries=int(s["retries"]), max_timeouts=int(s["max_timeouts"]),
                   pan_deg=(float(s["pan_min_deg"]), float(s["pan_max_deg"])),
                   tilt_deg=(float(s["tilt_min_deg"]), float(s["tilt_max_deg"])),
                   zoom_raw=(float(s["zoom_raw_min"]), float(s["zoom_raw_max"])),
                   max_speed_deg=(float(s["max_pan_speed_deg"]), float(s["max_tilt_speed_deg"])),
                   max_zoom_speed=float(s["max_zoom_speed"]),
                   continuous_timeout=float(s["continuous_timeout"]), stamp_source=str(s["stamp_source"]))

    def __repr__(self) -> str:
        return (f"OnvifDriver(url={self.url!r}, user={'<set>' if self._user else '<none>'}, auth={self.auth!r}, "
                f"profile={self._profile.token if self._profile else self.profile_token!r})")

    # -- exchanges -----------------------------------------------------------------------------------

    def _secrets(self) -> tuple[str, ...]:
        return (self._password,)

    def _scrubbed(self, exc: DriverError) -> DriverError:
        """``exc`` with the password removed from its message and fault reason (in place)."""
        text = str(exc)
        clean = soap.scrub(text, self._secrets())
        if clean != text:
            exc.args = (clean,)
        if isinstance(exc, soap.SoapFault):
            exc.reason = soap.scrub(exc.reason, self._secrets())
        return exc

    def _header(self) -> str:
        if self.auth not in ("auto", "wsse") or not self._user:
            return ""
        created = soap.utc_text(time.time() + self._clock_offset)
        return soap.security_header(self._user, self._password, os.urandom(16), created)

    def _http(self) -> SoapHttpClient:
        if self._client is None:
            self._client = SoapHttpClient(self._host, self._port, self.timeout, self._user, self._password,
                                          use_digest=self.auth in ("auto", "digest"))
        return self._client

    def _call(self, operation: str, body: str, *, retry: bool = True, authenticate: bool = True):
        """(reply element, :class:`Reply`) of one operation; typed, scrubbed errors."""
        with self._lock:
            attempts = 1 + (self.retries if retry and operation in soap.IDEMPOTENT else 0)
            for attempt in range(attempts):
                try:
                    return self._call_once(operation, body, authenticate)
                except (DriverTimeout, DriverConnectionError) as exc:
                    self._stats["last error"] = soap.scrub(str(exc), self._secrets())
                    if attempt + 1 >= attempts:
                        raise self._scrubbed(self._lost_link(exc)) from None
                    self._stats["retries"] += 1
                except DriverError as exc:
                    self._consecutive_timeouts = 0
                    self._stats["last error"] = soap.scrub(str(exc), self._secrets())
                    raise self._scrubbed(exc) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _lost_link(self, exc: DriverError) -> DriverError:
        """A timeout stays a timeout until ``max_timeouts`` in a row; then, like a lost connection,
        the driver disconnects (the node reconnects with back-off)."""
        if isinstance(exc, DriverTimeout):
            self._consecutive_timeouts += 1
            if self._consecutive_timeouts < self.max_timeouts:
                return exc
            exc = DriverConnectionError(f"{exc}; {self._consecutive_timeouts} timeouts in a row: link lost")
        self._connected = False
        if self._client is not None:
            self._client.close()
        return exc

    def _call_once(self, operation: str, body: str, authenticate: bool):
        service = soap.OPERATIONS[operation][1]
        envelope = soap.envelope(body, self._header() if authenticate else "")
        self._stats["requests"] += 1
        try:
            reply = self._http().post(self._paths[service], envelope, soap.soap_action(operation), operation)
        except DriverTimeout:
            self._stats["timeouts"] += 1
            raise
        except DriverConnectionError:
            self._stats["connection errors"] += 1
            raise
        except soap.OnvifAuthError:
            self._stats["auth failures"] += 1
            raise
        self._consecutive_timeouts = 0
        rtt = 1e3 * (reply.received - reply.sent)
        self._rtt_sum += rtt
        self._rtt_count += 1
        self._stats["last round trip (ms)"] = round(rtt, 3)
        self._stats["mean round trip (ms)"] = round(self._rtt_sum / self._rtt_count, 3)
        try:
            element = soap.parse_reply(reply.body, operation)
        except soap.OnvifAuthError:
            self._stats["auth failures"] += 1
            raise
        except soap.SoapFault:
            self._stats["soap faults"] += 1
            raise
        except soap.OnvifParseError:
            if reply.status != 200:
                self._stats["http errors"] += 1
                raise HttpStatusError(reply.status, "without a SOAP fault", operation) from None
            self._stats["malformed replies"] += 1
            raise
        if reply.status != 200:  # a response element with an error status: believe the status
            self._stats["http errors"] += 1
            raise HttpStatusError(reply.status, "", operation)
        return element, reply

    # -- connection ----------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def capabilities(self) -> PtzCapabilities:
        if self._caps is None:
            raise DriverConnectionError("onvif: capabilities are known after connect()")
        return self._caps

    def connect(self) -> None:
        with self._lock:
            self._consecutive_timeouts = 0
            try:
                self._connect()
            except DriverError as exc:
                self._connected = False
                if self._client is not None:
                    self._client.close()
                if isinstance(exc, DriverConnectionError):
                    raise self._scrubbed(exc) from None
                raise self._scrubbed(DriverConnectionError(f"onvif connect to {self.url}: {exc}")) from None
            self._connected = True

    def _connect(self) -> None:
        self._paths = {"device": self._device_path, "media": self._device_path, "ptz": self._device_path}
        # the device's clock, for the WS-Security Created time (ONVIF lets this call go unauthenticated)
        try:
            element, reply = self._call("GetSystemDateAndTime", soap.get_system_date_and_time(), authenticate=False)
            device = soap.parse_system_date_and_time(element)
            offset = device - 0.5 * (reply.sent + reply.received)
            self._clock_offset = offset if abs(offset) > 1.0 else 0.0  # 1 s resolution: ignore jitter
        except (soap.SoapFault, soap.OnvifParseError, HttpStatusError):
            self._clock_offset = 0.0
        if self.use_capabilities:
            element, _ = self._call("GetCapabilities", soap.get_capabilities())
            for service, addr in soap.parse_capabilities(element).items():
                path = urlsplit(addr).path
                if path:
                    self._paths[service] = path  # the path only: devices behind NAT report unreachable hosts
        element, _ = self._call("GetProfiles", soap.get_profiles())
        profile = soap.choose_profile(soap.parse_profiles(element), self.profile_token)
        try:
            element, _ = self._call("GetConfigurationOptions", soap.get_configuration_options(profile.ptz_configuration))
            spaces = soap.parse_configuration_options(element)
        except (soap.SoapFault, soap.OnvifParseError):
            spaces = None
        home = True
        if profile.node:
            try:
                element, _ = self._call("GetNode", soap.get_node(profile.node))
                node_spaces = soap.parse_node(element)
                home = node_spaces.home_supported
                spaces = spaces or node_spaces
            except (soap.SoapFault, soap.OnvifParseError):
                pass
        if spaces is None:
            raise soap.OnvifError("neither GetConfigurationOptions nor GetNode gave the PTZ spaces")
        self._spaces = soap.Spaces(**{**spaces.__dict__, "home_supported": home})
        self._profile = profile
        self._build_maps(profile)

    def _build_maps(self, profile: soap.Profile) -> None:
        sp = self._spaces
        self._pan = AxisMap(sp.pan.lo, sp.pan.hi, *self._pan_rad)
        self._tilt = AxisMap(sp.tilt.lo, sp.tilt.hi, *self._tilt_rad)
        self._zoom = AxisMap(sp.zoom.lo, sp.zoom.hi, *self._zoom_raw)

        def limits(axis: AxisMap, lim: Optional[soap.Range]) -> tuple[float, float]:
            lo, hi = (lim.lo, lim.hi) if lim is not None else (axis.dev_lo, axis.dev_hi)
            a, b = axis.to_si(max(lo, min(axis.dev_lo, axis.dev_hi))), axis.to_si(min(hi, max(axis.dev_lo, axis.dev_hi)))
            return min(a, b), max(a, b)
        pan, tilt, zoom = (limits(self._pan, profile.pan_limits), limits(self._tilt, profile.tilt_limits),
                           limits(self._zoom, profile.zoom_limits))
        self._caps = PtzCapabilities(pan_min=pan[0], pan_max=pan[1], tilt_min=tilt[0], tilt_max=tilt[1],
                                     zoom_min=zoom[0], zoom_max=zoom[1], max_pan_speed=self._max_pan_speed,
                                     max_tilt_speed=self._max_tilt_speed, max_zoom_speed=self._max_zoom_speed)

    def close(self) -> None:
        with self._lock:
            self._connected = False
            if self._client is not None:
                self._client.close()

    def _require(self) -> soap.Profile:
        if not self._connected or self._profile is None:
            raise DriverConnectionError(f"onvif device {self.url} is not connected")
        return self._profile

    # -- feedback --------------------------------------------------------------------------------------

    def read_state(self) -> PtzFeedback:
        """GetStatus (never retried: the next sample is the retry)."""
        profile = self._require()
        element, reply = self._call("GetStatus", soap.get_status(profile.token), retry=False)
        try:
            status = soap.parse_status(element)
        except soap.OnvifParseError as exc:
            self._stats["malformed replies"] += 1
            raise self._scrubbed(exc) from None
        stamp = 0.5 * (reply.sent + reply.received)
        if status.utc_time is not None:
            self._device_clock.update(status.utc_time, reply.sent, reply.received)
        if self.stamp_source == "device":
            if status.utc_time is not None and status.utc_fractional:
                stamp = self._device_clock.to_local(status.utc_time)
                self._stamp_note = "device UtcTime"
            else:
                self._stamp_note = "midpoint (the device gives no sub-second UtcTime)"
        else:
            self._stamp_note = "midpoint"
        return PtzFeedback(pan=self._pan.to_si(status.pan), tilt=self._tilt.to_si(status.tilt),
                           zoom_raw=self._zoom.to_si(status.zoom), stamp=stamp,
                           moving=status.pan_tilt_moving or status.zoom_moving,
                           error=soap.scrub(status.error, self._secrets()) if status.error else None)

    # -- motion ------------------------------------------------------------------------------------------

    def _speed(self, pan_speed: Optional[float], tilt_speed: Optional[float]) -> Optional[tuple[float, float]]:
        """Normalized (pan, tilt) speeds of the speed space, None when neither is given."""
        def norm(v: Optional[float], vmax: float) -> Optional[float]:
            if v is None or math.isnan(v) or v <= 0:
                return None
            r = self._spaces.pan_tilt_speed
            return min(max(r.lo, v / vmax * r.hi), r.hi)
        p, t = norm(pan_speed, self._max_pan_speed), norm(tilt_speed, self._max_tilt_speed)
        if p is None and t is None:
            return None
        return (p if p is not None else t, t if t is not None else p)  # type: ignore[return-value]

    def move_absolute(self, pan: float, tilt: float, zoom_raw: Optional[float] = None,
                      pan_speed: Optional[float] = None, tilt_speed: Optional[float] = None) -> None:
        profile = self._require()
        pan_nan = pan is None or math.isnan(pan)
        tilt_nan = tilt is None or math.isnan(tilt)
        pan_tilt = None
        if not (pan_nan and tilt_nan):
            if pan_nan or tilt_nan:  # PanTilt needs both: keep the other axis where it is
                current = self.read_state()
                pan = current.pan if pan_nan else pan
                tilt = current.tilt if tilt_nan else tilt
            pan_tilt = (self._pan.to_device(pan), self._tilt.to_device(tilt))
        zoom = None if zoom_raw is None or math.isnan(zoom_raw) else self._zoom.to_device(zoom_raw)
        if pan_tilt is None and zoom is None:
            return
        self._call("AbsoluteMove", soap.absolute_move(profile.token, pan_tilt, zoom,
                                                      self._speed(pan_speed, tilt_speed) if pan_tilt else None))

    def move_relative(self, pan: float, tilt: float, zoom_raw: Optional[float] = None,
                      pan_speed: Optional[float] = None, tilt_speed: Optional[float] = None) -> None:
        """RelativeMove: the generic translation space spans the full range with 1 (never retried)."""
        profile = self._require()
        sp = self._spaces

        def translation(delta: Optional[float], axis: AxisMap, r: soap.Range) -> float:
            if delta is None or math.isnan(delta):
                return 0.0
            sign = 1.0 if (axis.dev_hi - axis.dev_lo) * (axis.si_hi - axis.si_lo) > 0 else -1.0
            return min(max(sign * delta / axis.si_span * r.hi, r.lo), r.hi)
        pan_tilt = None
        if not all(v is None or math.isnan(v) for v in (pan, tilt)):
            pan_tilt = (translation(pan, self._pan, sp.pan_translation),
                        translation(tilt, self._tilt, sp.tilt_translation))
        zoom = None
        if zoom_raw is not None and not math.isnan(zoom_raw):
            zoom = translation(zoom_raw, self._zoom, sp.zoom_translation)
        if pan_tilt is None and zoom is None:
            return
        self._call("RelativeMove", soap.relative_move(profile.token, pan_tilt, zoom,
                                                      self._speed(pan_speed, tilt_speed) if pan_tilt else None))

    def move_velocity(self, pan_rate: float, tilt_rate: float, zoom_rate: float = 0.0,
                      duration: Optional[float] = None) -> None:
        profile = self._require()
        sp = self._spaces

        def norm(rate: Optional[float], vmax: float, axis: AxisMap, r: soap.Range) -> float:
            if rate is None or math.isnan(rate):
                return 0.0
            sign = 1.0 if (axis.dev_hi - axis.dev_lo) * (axis.si_hi - axis.si_lo) > 0 else -1.0
            return min(max(sign * rate / vmax * r.hi, r.lo), r.hi)
        p = norm(pan_rate, self._max_pan_speed, self._pan, sp.pan_velocity)
        t = norm(tilt_rate, self._max_tilt_speed, self._tilt, sp.tilt_velocity)
        z = norm(zoom_rate, self._max_zoom_speed, self._zoom, sp.zoom_velocity)
        if p == 0.0 and t == 0.0 and z == 0.0:
            self.stop()
            return
        timeout = duration if duration else (self.continuous_timeout or None)
        self._call("ContinuousMove", soap.continuous_move(profile.token, p, t, z, timeout))

    def stop(self) -> None:
        profile = self._require()
        self._call("Stop", soap.stop(profile.token, True, True))

    def home(self) -> None:
        profile = self._require()
        if self._spaces.home_supported:
            self._call("GotoHomePosition", soap.goto_home_position(profile.token))
        else:
            self.move_absolute(0.0, 0.0, self.capabilities.zoom_min)

    def capture(self) -> Frame:
        raise DriverError("onvif backend: no image capture (the RTSP stream is not part of this backend)")

    def link_statistics(self) -> dict[str, object]:
        with self._lock:
            stats = dict(self._stats)
        stats.update({
            "url": self.url,
            "profile": self._profile.token if self._profile else "",
            "auth": ("ws-security" if self.auth in ("auto", "wsse") and self._user else "none")
                    + (" + http digest" if self._client is not None and self._client.digest_used else ""),
            "device clock offset (s)": round(self._clock_offset, 3),
            "status clock offset (s)": round(self._device_clock.offset, 6),
            "stamp source": self._stamp_note or self.stamp_source,
        })
        return stats
