"""The ``visca`` backend: Sony VISCA block cameras over a serial line or VISCA over IP (UDP).

Framing is in :mod:`.visca_protocol`, the per-model unit table in :mod:`.visca_units`; this
module does the I/O: one exchange at a time (a lock), a timeout on each, and the reply
bookkeeping of the protocol:

* A command is done for the driver when the camera ACKs it (``y0 4z FF``, z = the socket 1/2
  that executes it); the completion (``y0 5z FF``) comes later, often while another exchange
  runs, and only frees the socket. Inquiry answers are completions of socket 0 with data.
* Serial: replies carry no request id, so pending input is dropped before each request and an
  inquiry answer must have its expected length; stray completions / cancellations of earlier
  commands are counted and skipped.
* IP: 8-byte header with a sequence number; replies to an older sequence number (late) are
  discarded. The sequence number is reset (control RESET) at connect and after timeouts,
  error replies and sequence errors. A request without a reply is resent with the *same*
  sequence number (Sony's delivery confirmation): a camera that executed it already answers
  "abnormal sequence number" instead of executing it twice, so every IP request is safe to retry.
* Retries: a request without a reply is resent ``retries`` times, except a relative move over a
  serial line (the camera may have executed it; repeating it would move twice: it raises
  :class:`DriverTimeout` instead). "Command buffer full" is retried after ``busy_backoff`` s,
  ``busy_retries`` times. Other error replies raise their typed error at once.
* ``max_failures`` failed requests in a row mean the link is gone: :class:`DriverConnectionError`
  (the node then reconnects with back-off).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

from . import visca_protocol as vp
from .interface import (
    DriverConnectionError,
    DriverError,
    DriverTimeout,
    Frame,
    PtzCapabilities,
    PtzDriver,
    PtzFeedback,
)
from .links import SerialLink, UdpLink
from .visca_units import TABLE_SETTINGS, ViscaUnits


@dataclass
class _Stats:
    requests: int = 0
    acks: int = 0
    completions: int = 0
    timeouts: int = 0
    retries: int = 0
    bad_frames: int = 0
    error_replies: int = 0
    buffer_full: int = 0
    late_replies: int = 0
    sequence_resets: int = 0
    sequence_errors: int = 0
    duplicates_detected: int = 0
    last_error: str = ""
    rtt_last_ms: float = math.nan
    rtt_sum_ms: float = 0.0
    rtt_count: int = 0


class _Retransmitted(Exception):
    """IP: the camera saw this sequence number already (control ERROR 0F01 on a resend)."""


class _Transport:
    """One request/reply exchange over a link; subclasses know the framing."""

    name = "?"

    def __init__(self, address: int, stats: _Stats) -> None:
        self.address = address
        self.stats = stats
        self.on_completion: Callable[[int], None] = lambda socket: None

    def open(self) -> None: ...
    def close(self) -> None: ...
    def exchange(self, frame: bytes, inquiry: bool, data_len: int, resend: bool, timeout: float) -> vp.Reply:
        """Send ``frame`` and return the camera's answer to it (ACK or socket-0 completion)."""
        raise NotImplementedError

    def after_failure(self) -> None:
        """Called after a timeout or an error reply (IP: reset the sequence number next time)."""

    def _stray(self, reply: vp.Reply) -> None:
        """A reply that is not the answer we wait for: a late completion, cancellation, ..."""
        if reply.kind is vp.ReplyKind.COMPLETION and reply.socket:
            self.stats.completions += 1
            self.on_completion(reply.socket)
        elif reply.kind is vp.ReplyKind.ERROR and reply.code == 0x04 and reply.socket:
            self.on_completion(reply.socket)  # a running command was cancelled: its socket is free
            self.stats.late_replies += 1
        else:
            self.stats.late_replies += 1

    def _answer(self, reply: vp.Reply, inquiry: bool, data_len: int) -> Optional[vp.Reply]:
        """``reply`` if it answers the request, None if it is stray; raises error replies that are ours."""
        if reply.sender != self.address:
            self.stats.late_replies += 1
            return None
        if reply.kind is vp.ReplyKind.ERROR and (reply.code in (0x01, 0x02, 0x03, 0x41) or reply.socket == 0):
            self.stats.error_replies += 1
            raise reply.error()
        if inquiry:
            if reply.kind is vp.ReplyKind.COMPLETION and reply.socket == 0 and len(reply.data) == data_len:
                return reply
        elif reply.kind is vp.ReplyKind.ACK and reply.socket:
            return reply
        self._stray(reply)
        return None


class _SerialTransport(_Transport):
    name = "serial"

    def __init__(self, link: SerialLink, address: int, stats: _Stats) -> None:
        super().__init__(address, stats)
        self.link = link

    def open(self) -> None:
        self.link.open()

    def close(self) -> None:
        self.link.close()

    def _drain(self) -> None:
        """Handle the replies that came in since the last exchange (completions, late answers)."""
        pending = self.link.read_available()
        *frames, rest = pending.split(bytes((vp.TERMINATOR,)))
        if rest:
            self.stats.bad_frames += 1  # an unterminated fragment
        for body in frames:
            try:
                self._stray(vp.parse_reply(body + bytes((vp.TERMINATOR,))))
            except vp.ViscaFrameError:
                self.stats.bad_frames += 1

    def exchange(self, frame: bytes, inquiry: bool, data_len: int, resend: bool, timeout: float) -> vp.Reply:
        self._drain()  # replies of earlier requests cannot be told from ours: handle them now
        self.link.write(frame)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise DriverTimeout(f"no VISCA reply to {frame.hex()} within {timeout:g} s")
            raw = self.link.read_until(bytes((vp.TERMINATOR,)), vp.MAX_MESSAGE, timeout=left)
            try:
                reply = vp.parse_reply(raw)
            except vp.ViscaFrameError as exc:
                self.stats.bad_frames += 1
                self.stats.last_error = str(exc)
                continue
            answer = self._answer(reply, inquiry, data_len)
            if answer is not None:
                return answer


class _IpTransport(_Transport):
    name = "ip"

    def __init__(self, link: UdpLink, stats: _Stats) -> None:
        super().__init__(1, stats)  # VISCA over IP always addresses camera 1
        self.link = link
        self.sequence = 0
        self.need_reset = True

    def open(self) -> None:
        self.link.open()
        self.need_reset = True

    def close(self) -> None:
        self.link.close()

    def after_failure(self) -> None:
        self.need_reset = True

    def reset_sequence(self, timeout: float) -> None:
        """Control command RESET; the camera acknowledges with a control reply 01."""
        self._drain()
        self.link.write(vp.encode_ip(vp.PayloadType.CONTROL, 0, vp.CONTROL_RESET))
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise DriverTimeout(f"no answer to the VISCA-over-IP RESET within {timeout:g} s")
            packet = self._receive(left)
            if packet is not None and packet.payload_type == vp.PayloadType.CONTROL_REPLY \
                    and packet.payload == vp.CONTROL_RESET:
                break
            if packet is not None:
                self.stats.late_replies += 1
        self.sequence = 0
        self.need_reset = False
        self.stats.sequence_resets += 1

    def _drain(self) -> None:
        """Count (and drop) the datagrams that came in since the last exchange: late replies."""
        while True:
            try:
                self.link.receive(1e-4)
            except DriverTimeout:
                return
            self.stats.late_replies += 1

    def _receive(self, timeout: float) -> Optional[vp.IpPacket]:
        data = self.link.receive(timeout)
        try:
            return vp.decode_ip(data)
        except vp.ViscaFrameError as exc:
            self.stats.bad_frames += 1
            self.stats.last_error = str(exc)
            return None

    def exchange(self, frame: bytes, inquiry: bool, data_len: int, resend: bool, timeout: float) -> vp.Reply:
        if self.need_reset:
            self.reset_sequence(timeout)
            resend = False
        if not resend:
            self.sequence = (self.sequence + 1) % vp.SEQUENCE_MODULUS
        seq = self.sequence
        kind = vp.PayloadType.INQUIRY if inquiry else vp.PayloadType.COMMAND
        self.link.write(vp.encode_ip(kind, seq, frame))
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise DriverTimeout(f"no VISCA-over-IP reply to {frame.hex()} (sequence {seq}) within {timeout:g} s")
            packet = self._receive(left)
            if packet is None:
                continue
            error = packet.control_error()
            if packet.sequence != seq:
                if error is None and packet.payload_type == vp.PayloadType.REPLY:
                    try:
                        self._stray(vp.parse_reply(packet.payload))
                    except vp.ViscaFrameError:
                        self.stats.bad_frames += 1
                else:
                    self.stats.late_replies += 1
                continue
            if error is not None:
                self.stats.sequence_errors += 1
                if error.code == 0x01 and resend:
                    raise _Retransmitted()  # the camera got the first transmission: do not repeat it
                self.need_reset = True
                raise error
            if packet.payload_type != vp.PayloadType.REPLY:
                self.stats.late_replies += 1
                continue
            try:
                reply = vp.parse_reply(packet.payload)
            except vp.ViscaFrameError as exc:
                self.stats.bad_frames += 1
                self.stats.last_error = str(exc)
                continue
            if not inquiry and reply.kind is vp.ReplyKind.COMPLETION and reply.socket:
                # our ACK was lost but the completion of our sequence number came: done
                self.stats.completions += 1
                self.on_completion(reply.socket)
                return reply
            answer = self._answer(reply, inquiry, data_len)
            if answer is not None:
                return answer


class ViscaDriver(PtzDriver):
    """A VISCA camera (see the module docstring). Cannot capture images (no video path here)."""

    SETTINGS: dict[str, tuple[Any, str]] = {
        "transport": ("ip", "'ip' (VISCA over IP, UDP) or 'serial' (RS-232/RS-422)"),
        "host": ("127.0.0.1", "camera IP address (transport ip)"),
        "ip_port": (52381, "camera UDP port (transport ip; Sony: 52381)"),
        "port": ("", "serial device or pyserial URL, e.g. /dev/ttyUSB0 (transport serial)"),
        "baudrate": (9600, "serial baud rate (EVI-D70: 9600 or 38400)"),
        "address": (1, "camera address 1..7 on the serial daisy chain (always 1 over IP)"),
        "timeout": (0.3, "seconds to wait for each ACK or inquiry answer"),
        "retries": (2, "resends of a request without reply (never for relative moves over serial)"),
        "busy_retries": (5, "resends after 'command buffer full'"),
        "busy_backoff": (0.05, "seconds before resending after 'command buffer full'"),
        "max_failures": (3, "failed requests in a row after which the link counts as lost"),
        **TABLE_SETTINGS,
    }

    def __init__(self, transport: str = "ip", *, host: str = "127.0.0.1", ip_port: int = 52381, port: str = "",
                 baudrate: int = 9600, address: int = 1, timeout: float = 0.3, retries: int = 2,
                 busy_retries: int = 5, busy_backoff: float = 0.05, max_failures: int = 3,
                 units: Optional[ViscaUnits] = None) -> None:
        if transport not in ("ip", "serial"):
            raise DriverError(f"visca.transport must be 'ip' or 'serial', got {transport!r}")
        if not 1 <= int(address) <= 7:
            raise DriverError(f"visca.address must be 1..7, got {address}")
        if transport == "serial" and not port:
            raise DriverError("visca.port (serial device) is empty but visca.transport is 'serial'")
        self.units = units or ViscaUnits.from_settings({})
        self.stats = _Stats()
        self.timeout = float(timeout)
        self.retries = max(0, int(retries))
        self.busy_retries = max(0, int(busy_retries))
        self.busy_backoff = float(busy_backoff)
        self.max_failures = max(1, int(max_failures))
        self.address = 1 if transport == "ip" else int(address)
        if transport == "ip":
            self._transport: _Transport = _IpTransport(UdpLink(host, int(ip_port), self.timeout), self.stats)
            self._where = f"udp://{host}:{int(ip_port)}"
        else:
            self._transport = _SerialTransport(SerialLink(port, int(baudrate), self.timeout), self.address,
                                               self.stats)
            self._where = f"{port}@{int(baudrate)}"
        self._transport.on_completion = self._socket_done
        self._caps = self.units.capabilities()
        self._lock = threading.RLock()
        self._connected = False
        self._failures = 0
        self._sockets: dict[int, str] = {}
        self._last_position: Optional[tuple[int, int, int]] = None
        self._velocity_generation = 0
        self._stop_timer: Optional[threading.Timer] = None
        self.exchange_times = (math.nan, math.nan)  # wall-clock send / answer times of the last request

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> "ViscaDriver":
        s = {k: v[0] for k, v in cls.SETTINGS.items()}
        s.update({k: v for k, v in settings.items() if v is not None})
        return cls(str(s["transport"]).strip().lower(), host=str(s["host"]), ip_port=int(s["ip_port"]),
                   port=str(s["port"]), baudrate=int(s["baudrate"]), address=int(s["address"]),
                   timeout=float(s["timeout"]), retries=int(s["retries"]), busy_retries=int(s["busy_retries"]),
                   busy_backoff=float(s["busy_backoff"]), max_failures=int(s["max_failures"]),
                   units=ViscaUnits.from_settings(s))

    def __repr__(self) -> str:
        return f"ViscaDriver({self._transport.name} {self._where}, model {self.units.model})"

    # -- connection ----------------------------------------------------------------------------

    @property
    def capabilities(self) -> PtzCapabilities:
        return self._caps

    @property
    def connected(self) -> bool:
        return self._connected

    def connect(self) -> None:
        """Open the link, clear the camera's interface (serial: IF_Clear; IP: sequence RESET) and
        check that it answers a position inquiry."""
        with self._lock:
            if self._connected:
                return
            self._transport.open()
            try:
                if isinstance(self._transport, _SerialTransport):
                    self._request(vp.if_clear(self.address), "IF_Clear", inquiry=True, data_len=0)
                self._sockets.clear()
                self._inquire_position()
            except DriverError as exc:
                self._transport.close()
                raise DriverConnectionError(f"VISCA camera at {self._where} does not answer: {exc}") from None
            self._failures = 0
            self._connected = True

    def close(self) -> None:
        with self._lock:
            self._cancel_stop_timer()
            self._connected = False
            self._transport.close()

    # -- requests --------------------------------------------------------------------------------

    def _socket_done(self, socket: int) -> None:
        self._sockets.pop(socket, None)

    def _request(self, frame: bytes, name: str, inquiry: bool = False, data_len: int = 0,
                 retry_safe: bool = True) -> vp.Reply:
        """One request with retries (see the module docstring); its answer."""
        stats = self.stats
        stats.requests += 1
        attempt = busy = 0
        resend = False
        ip = isinstance(self._transport, _IpTransport)
        while True:
            t0, t0_wall = time.monotonic(), time.time()
            try:
                reply = self._transport.exchange(frame, inquiry, data_len, resend, self.timeout)
            except _Retransmitted:
                stats.duplicates_detected += 1  # the first transmission arrived and was executed
                if inquiry:  # Sony: ask again with a new sequence number to get the answer
                    resend = False
                    continue
                reply = vp.Reply(self.address, vp.ReplyKind.ACK, 0)
            except DriverTimeout as exc:
                stats.timeouts += 1
                stats.last_error = f"{name}: {exc}"
                if attempt < self.retries and (retry_safe or ip):
                    attempt += 1
                    stats.retries += 1
                    resend = True
                    continue
                self._transport.after_failure()
                self._failed()
                note = "" if retry_safe or ip else " (not resent: a relative move may have been executed)"
                raise DriverTimeout(f"VISCA {name}: no reply from {self._where} after {attempt + 1} "
                                    f"tr{'ies' if attempt else 'y'}{note}") from None
            except vp.ViscaBufferFull as exc:
                stats.buffer_full += 1
                stats.last_error = f"{name}: {exc}"
                if busy < self.busy_retries:
                    busy += 1
                    stats.retries += 1
                    resend = False
                    time.sleep(self.busy_backoff)
                    continue
                self._transport.after_failure()
                raise
            except vp.ViscaSequenceError as exc:
                stats.last_error = f"{name}: {exc}"
                if attempt < self.retries:  # the RESET comes first on the next exchange
                    attempt += 1
                    stats.retries += 1
                    resend = False
                    continue
                self._failed()
                raise
            except (vp.ViscaReplyError, vp.ViscaFrameError) as exc:
                stats.last_error = f"{name}: {exc}"
                self._transport.after_failure()
                self._failures = 0  # the camera answered: the link is fine
                raise
            except DriverConnectionError as exc:
                stats.last_error = f"{name}: {exc}"
                self._lost(str(exc))
                raise
            self.exchange_times = (t0_wall, time.time())
            rtt = (time.monotonic() - t0) * 1e3
            stats.rtt_last_ms = rtt
            stats.rtt_sum_ms += rtt
            stats.rtt_count += 1
            self._failures = 0
            if reply.kind is vp.ReplyKind.ACK:
                stats.acks += 1
                if reply.socket:
                    self._sockets[reply.socket] = name
            return reply

    def _failed(self) -> None:
        self._failures += 1
        if self._failures >= self.max_failures:
            self._lost(f"{self._failures} requests in a row failed")
            raise DriverConnectionError(f"VISCA camera at {self._where} lost: {self.stats.last_error}") from None

    def _lost(self, why: str) -> None:
        self._cancel_stop_timer()
        self._connected = False
        self._transport.close()

    def _require(self) -> None:
        if not self._connected:
            raise DriverConnectionError(f"VISCA camera at {self._where} is not connected")

    def _inquire_position(self) -> tuple[int, int, int, float]:
        """(pan, tilt, zoom) device units and the midpoint time of the pan/tilt exchange."""
        reply = self._request(vp.pan_tilt_position_inquiry(self.address), "PanTiltPosInq", inquiry=True,
                              data_len=8)
        t0, t1 = self.exchange_times  # of the attempt that was answered
        pan, tilt = vp.decode_pan_tilt_position(reply.data)
        reply = self._request(vp.zoom_position_inquiry(self.address), "CAM_ZoomPosInq", inquiry=True, data_len=4)
        zoom = vp.decode_zoom_position(reply.data)
        return pan, tilt, zoom, 0.5 * (t0 + t1)

    # -- PtzDriver ---------------------------------------------------------------------------------

    def read_state(self) -> PtzFeedback:
        """Pan/tilt and zoom inquiries; stamp = midpoint of the pan/tilt exchange (the camera gives no time)."""
        with self._lock:
            self._require()
            try:
                pan, tilt, zoom, stamp = self._inquire_position()
            except vp.ViscaFrameError as exc:  # a malformed answer (bad nibbles, wrong length)
                self.stats.bad_frames += 1
                self.stats.last_error = str(exc)
                raise
            moved = self._last_position is not None and self._last_position != (pan, tilt, zoom)
            self._last_position = (pan, tilt, zoom)
            u = self.units
            return PtzFeedback(pan=u.pan.to_value(pan), tilt=u.tilt.to_value(tilt), zoom_raw=u.zoom.to_value(zoom),
                               stamp=stamp, moving=bool(moved or self._sockets))

    def _speed_codes(self, pan_speed: Optional[float], tilt_speed: Optional[float]) -> tuple[int, int]:
        u = self.units
        vv = u.pan_speeds.hi if not pan_speed or math.isnan(pan_speed) else u.pan_speeds.code(pan_speed)
        ww = u.tilt_speeds.hi if not tilt_speed or math.isnan(tilt_speed) else u.tilt_speeds.code(tilt_speed)
        return vv, ww

    def move_absolute(self, pan: float, tilt: float, zoom_raw: Optional[float] = None,
                      pan_speed: Optional[float] = None, tilt_speed: Optional[float] = None) -> None:
        """Absolute pan/tilt (a NaN axis keeps its current position, read first) and zoom direct."""
        with self._lock:
            self._require()
            self._supersede_velocity()
            pan_nan = pan is None or math.isnan(pan)
            tilt_nan = tilt is None or math.isnan(tilt)
            if not (pan_nan and tilt_nan):
                u = self.units
                if pan_nan or tilt_nan:
                    cur_pan, cur_tilt, _, _ = self._inquire_position()
                p = cur_pan if pan_nan else u.pan.to_device(pan)
                t = cur_tilt if tilt_nan else u.tilt.to_device(tilt)
                vv, ww = self._speed_codes(pan_speed, tilt_speed)
                self._request(vp.pan_tilt_absolute(self.address, vv, ww, p, t), "AbsolutePosition")
            if zoom_raw is not None and not math.isnan(zoom_raw):
                self._request(vp.zoom_direct(self.address, self.units.zoom.to_device(zoom_raw)), "CAM_Zoom Direct")

    def move_relative(self, pan: float, tilt: float, zoom_raw: Optional[float] = None,
                      pan_speed: Optional[float] = None, tilt_speed: Optional[float] = None) -> None:
        """RelativePosition for pan/tilt (NaN = 0); zoom by a zoom direct to current + offset.

        Over a serial line a relative move without ACK is *not* resent (see the module docstring).
        """
        with self._lock:
            self._require()
            self._supersede_velocity()
            dp = 0.0 if pan is None or math.isnan(pan) else pan
            dt = 0.0 if tilt is None or math.isnan(tilt) else tilt
            u = self.units
            if dp or dt:
                vv, ww = self._speed_codes(pan_speed, tilt_speed)
                self._request(vp.pan_tilt_relative(self.address, vv, ww, u.pan.to_device_delta(dp),
                                                   u.tilt.to_device_delta(dt)), "RelativePosition", retry_safe=False)
            if zoom_raw is not None and not math.isnan(zoom_raw) and zoom_raw:
                _, _, zoom, _ = self._inquire_position()
                target = u.zoom.to_value(zoom) + zoom_raw
                self._request(vp.zoom_direct(self.address, u.zoom.to_device(target)), "CAM_Zoom Direct")

    def move_velocity(self, pan_rate: float, tilt_rate: float, zoom_rate: float = 0.0,
                      duration: Optional[float] = None) -> None:
        """Pan-tiltDrive at the nearest speed codes and CAM_Zoom Tele/Wide (Variable); a rate below
        half the slowest code's speed stops that axis. ``duration``: a stop is sent after it."""
        u = self.units

        def direction(rate: Optional[float], codes, positive: int, negative: int, sign: float) -> tuple[int, int]:
            if rate is None or math.isnan(rate) or abs(rate) < 0.5 * codes.slow:
                return vp.AXIS_STOP, codes.lo
            device_positive = rate * sign > 0
            return (positive if device_positive else negative), codes.code(abs(rate))

        pan_sign = (u.pan.value[1] - u.pan.value[0]) * (u.pan.device[1] - u.pan.device[0])
        tilt_sign = (u.tilt.value[1] - u.tilt.value[0]) * (u.tilt.device[1] - u.tilt.device[0])
        # VISCA: pan 01 = left, 02 = right; tilt 01 = up, 02 = down. Device positive pan = right,
        # device positive tilt = up (Sony position tables).
        pan_dir, vv = direction(pan_rate, u.pan_speeds, vp.PAN_RIGHT, vp.PAN_LEFT, pan_sign)
        tilt_dir, ww = direction(tilt_rate, u.tilt_speeds, vp.TILT_UP, vp.TILT_DOWN, tilt_sign)
        with self._lock:
            self._require()
            self._supersede_velocity()
            self._request(vp.pan_tilt_drive(self.address, vv, ww, pan_dir, tilt_dir), "Pan-tiltDrive")
            z = 0.0 if zoom_rate is None or math.isnan(zoom_rate) else zoom_rate
            if abs(z) < 0.5 * u.zoom_speeds.slow:
                self._request(vp.zoom_stop(self.address), "CAM_Zoom Stop")
            else:
                zoom_sign = (u.zoom.value[1] - u.zoom.value[0]) * (u.zoom.device[1] - u.zoom.device[0])
                tele = z * zoom_sign > 0  # tele = device zoom position increasing
                p = u.zoom_speeds.code(abs(z))
                self._request(vp.zoom_tele(self.address, p) if tele else vp.zoom_wide(self.address, p),
                              "CAM_Zoom Variable")
            if duration and duration > 0:
                generation = self._velocity_generation
                timer = threading.Timer(duration, self._timed_stop, args=(generation,))
                timer.daemon = True
                self._stop_timer = timer
                timer.start()

    def _timed_stop(self, generation: int) -> None:
        with self._lock:
            if generation != self._velocity_generation or not self._connected:
                return
            try:
                self.stop()
            except DriverError as exc:
                self.stats.last_error = f"timed stop: {exc}"

    def _cancel_stop_timer(self) -> None:
        timer, self._stop_timer = self._stop_timer, None
        if timer is not None:
            timer.cancel()

    def _supersede_velocity(self) -> None:
        self._velocity_generation += 1
        self._cancel_stop_timer()

    def stop(self) -> None:
        """Pan-tiltDrive Stop and CAM_Zoom Stop."""
        with self._lock:
            self._require()
            self._supersede_velocity()
            u = self.units
            self._request(vp.pan_tilt_stop(self.address, u.pan_speeds.lo, u.tilt_speeds.lo), "Pan-tiltDrive Stop")
            self._request(vp.zoom_stop(self.address), "CAM_Zoom Stop")

    def home(self) -> None:
        """Pan-tiltDrive Home and zoom direct to the wide end."""
        with self._lock:
            self._require()
            self._supersede_velocity()
            self._request(vp.pan_tilt_home(self.address), "Home")
            self._request(vp.zoom_direct(self.address, self.units.zoom.to_device(self._caps.zoom_min)),
                          "CAM_Zoom Direct")

    def capture(self) -> Frame:
        raise DriverError("the visca backend has no image path (use a separate camera driver for video)")

    def link_statistics(self) -> dict[str, object]:
        s = self.stats
        return {
            "transport": f"{self._transport.name} {self._where}",
            "model": self.units.model,
            "requests": s.requests,
            "acks": s.acks,
            "completions": s.completions,
            "timeouts": s.timeouts,
            "retries": s.retries,
            "bad frames": s.bad_frames,
            "error replies": s.error_replies,
            "buffer full": s.buffer_full,
            "late replies discarded": s.late_replies,
            "sequence resets": s.sequence_resets,
            "sequence errors": s.sequence_errors,
            "duplicates detected": s.duplicates_detected,
            "busy sockets": ",".join(f"{k}:{v}" for k, v in sorted(self._sockets.items())),
            "round trip (ms)": s.rtt_last_ms,
            "mean round trip (ms)": s.rtt_sum_ms / s.rtt_count if s.rtt_count else math.nan,
            "last error": s.last_error,
        }
