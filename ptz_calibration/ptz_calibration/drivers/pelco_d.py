"""The ``pelco_d`` backend: a Pelco-D receiver (RS-485, addressable) through :class:`SerialLink`.

Framing and units are in :mod:`.pelco_d_protocol`; this module does the I/O, one exchange at a
time under a lock. The port is anything pyserial's ``serial_for_url`` opens: ``/dev/ttyUSB0``, a
pseudo-terminal (the emulator) or ``socket://host:port`` (an RS-485-to-Ethernet gateway).

Commands and acknowledgement policy
  Many Pelco-D receivers do not answer motion commands. ``ack_mode``:

  * ``general_response``: the receiver answers every non-query command with the 4-byte
    general response (sync, address, alarm, checksum), which we take as its ACK. A command
    not acknowledged within ``timeout`` is re-sent up to ``retries`` times. Every Pelco-D
    command we send sets a state (Set Pan/Tilt/Zoom Position, go to / set / clear preset,
    stop, "pan left at speed s"), so the same bytes twice leave the device where once would:
    re-sending is safe. We never send a relative move: :meth:`move_relative` is resolved on
    the host, once, from one position query, into an absolute target, and only that absolute
    command is ever re-sent. A command still unacknowledged after the retries raises
    :class:`~.interface.DriverTimeout` (the node logs it); an acknowledged one has reached
    the device and is never re-sent or lost.
  * ``none``: commands are sent once and not retried (nothing tells whether one arrived;
    the node's ``~/move_to`` action watches the feedback and reports a move that does not
    arrive). Queries are always answered and always retried.

Feedback
  :meth:`read_state` sends Query Pan, Query Tilt (and Query Zoom) Position. The stamp is the
  midpoint between sending the pan query and receiving the tilt reply, less the model's
  ``feedback_latency``. Replies with a wrong checksum or address, truncated replies, late
  replies to an earlier query and garbage between frames are typed errors
  (:class:`~.pelco_d_protocol.PelcoDFrameError`), counted in :meth:`link_statistics`; the
  reader resynchronises on the next sync byte. ``max_failed_reads`` failed reads in a row
  mean the link is gone: :class:`~.interface.DriverConnectionError`, so the node reconnects.

Absolute moves cannot carry a speed in Pelco-D (the receiver uses its own positioning
speed): ``pan_speed``/``tilt_speed`` of :meth:`move_absolute` are ignored and counted.
"""

from __future__ import annotations

import math
import termios
import threading
import time
from typing import Any, Callable, Mapping, Optional, TypeVar

from . import pelco_d_protocol as proto
from .interface import (
    DriverConnectionError,
    DriverError,
    DriverTimeout,
    Frame,
    PtzCapabilities,
    PtzDriver,
    PtzFeedback,
)
from .links import SerialLink

T = TypeVar("T")

BAUDRATES = (2400, 4800, 9600)
ACK_MODES = ("none", "general_response")


def _rad(deg: float) -> float:
    return math.radians(float(deg))


class PelcoDDriver(PtzDriver):
    """A Pelco-D pan/tilt/zoom receiver (see the module docstring)."""

    SETTINGS: dict[str, tuple[Any, str]] = {
        "port": ("", "serial device, pseudo-terminal or socket://host:port of an RS-485 gateway"),
        "baudrate": (9600, "2400, 4800 or 9600 baud (8N1)"),
        "address": (1, "receiver address 1..255"),
        "timeout": (0.1, "s to wait for each reply"),
        "retries": (2, "re-sends of an unanswered query or unacknowledged command (see ack_mode)"),
        "ack_mode": ("none", "'general_response': the receiver acknowledges every command with the 4-byte "
                             "general response (commands are re-sent until acknowledged); 'none': it does not "
                             "(commands sent once)"),
        "general_response_checksum": ("command_plus_alarm", "checksum of the general response: "
                                      "'command_plus_alarm' (C466M-E 5.2.4) or 'sum' (address + alarm)"),
        "max_failed_reads": (5, "failed feedback reads in a row that count as a lost link (reconnect)"),
        "pan_sign": (-1, "-1: the device's pan position grows clockwise seen from above (ours: counter-clockwise)"),
        "pan_zero": (0, "device pan position (1/100 deg) of our pan 0"),
        "tilt_sign": (-1, "-1: the device counts tilt downwards from horizontal (ours: up positive)"),
        "tilt_zero": (0, "device tilt position (1/100 deg) of our tilt 0"),
        "pan_min": (-math.pi, "rad, lowest pan we command"),
        "pan_max": (math.pi, "rad, highest pan we command"),
        "tilt_min": (-math.pi / 2, "rad, lowest tilt (down) we command"),
        "tilt_max": (0.0, "rad, highest tilt (up) we command"),
        "zoom_position_max": (65535, "device zoom position at the tele end (Set/Query Zoom Position full scale)"),
        "zoom_raw_min": (0.0, "our raw zoom at device zoom position 0 (wide end)"),
        "zoom_raw_max": (65535.0, "our raw zoom at zoom_position_max (tele end)"),
        "zoom_speed": (0.0, "raw zoom units/s of the zoom tele/wide drive (0 = unknown)"),
        "max_zoom_ratio": (0.0, "optical magnification at the tele end, for the record (0 = unknown)"),
        "pan_speed_bytes": ([0, 63], "pan speed table: speed bytes (integers, increasing, 0..63)"),
        "pan_speed_deg_s": ([0.0, 40.0], "pan speed table: deg/s of each byte (linear in between)"),
        "pan_turbo_deg_s": (0.0, "deg/s of the pan turbo byte 0xFF (0 = do not use turbo)"),
        "tilt_speed_bytes": ([0, 63], "tilt speed table: speed bytes"),
        "tilt_speed_deg_s": ([0.0, 30.0], "tilt speed table: deg/s of each byte"),
        "feedback_latency": (0.0, "s by which a position reply lags the moment it was sampled"),
        "query_zoom": (True, "query the zoom position (false: devices without Query Zoom Position 0x55)"),
    }

    def __init__(self, port: str, address: int = 1, baudrate: int = 9600, timeout: float = 0.1,
                 retries: int = 2, ack_mode: str = "none", units: Optional[proto.PelcoDUnits] = None,
                 limits: tuple[float, float, float, float] = (-math.pi, math.pi, -math.pi / 2, 0.0),
                 zoom_speed: float = 0.0, max_zoom_ratio: float = 0.0, feedback_latency: float = 0.0,
                 query_zoom: bool = True, max_failed_reads: int = 5,
                 general_response_checksum: str = "command_plus_alarm",
                 clock: Callable[[], float] = time.time) -> None:
        if not port:
            raise DriverError("pelco_d backend: no port given (setting 'port')")
        if int(baudrate) not in BAUDRATES:
            raise DriverError(f"pelco_d backend: baudrate {baudrate} not one of {BAUDRATES}")
        if not 1 <= int(address) <= 255:
            raise DriverError(f"pelco_d backend: address {address} outside 1..255")
        if ack_mode not in ACK_MODES:
            raise DriverError(f"pelco_d backend: ack_mode {ack_mode!r} not one of {ACK_MODES}")
        if general_response_checksum not in proto.CHECKSUM_RULES:
            raise DriverError(f"pelco_d backend: general_response_checksum {general_response_checksum!r} not one "
                              f"of {proto.CHECKSUM_RULES}")
        if not timeout > 0 or int(retries) < 0:
            raise DriverError("pelco_d backend: timeout must be > 0 and retries >= 0")
        self.port = port
        self.address = int(address)
        self.ack_mode = ack_mode
        self.retries = int(retries)
        self.timeout = float(timeout)
        self.units = units or proto.PelcoDUnits()
        self.feedback_latency = float(feedback_latency)
        self.query_zoom = bool(query_zoom)
        self.max_failed_reads = max(1, int(max_failed_reads))
        self.max_zoom_ratio = float(max_zoom_ratio)
        self._checksum_rule = general_response_checksum
        self._clock = clock
        self._link = SerialLink(port, int(baudrate), self.timeout)
        u = self.units
        pan_min, pan_max, tilt_min, tilt_max = limits
        self._caps = PtzCapabilities(
            pan_min=pan_min, pan_max=pan_max, tilt_min=tilt_min, tilt_max=tilt_max,
            zoom_min=u.zoom_raw_min, zoom_max=u.zoom_raw_max,
            max_pan_speed=_rad(u.pan_speeds.max_deg_s), max_tilt_speed=_rad(u.tilt_speeds.max_deg_s),
            max_zoom_speed=float(zoom_speed) if zoom_speed > 0 else math.nan)
        self._lock = threading.RLock()
        self._connected = False
        self._failed_reads = 0
        self._last_zoom = math.nan
        self._stop_timer: Optional[threading.Timer] = None
        self._generation = 0
        self._stats: dict[str, int] = {k: 0 for k in (
            "commands sent", "commands acknowledged", "command retries", "commands unacknowledged",
            "queries", "query retries", "timeouts", "checksum errors", "address errors", "malformed frames",
            "unexpected replies", "garbage bytes", "truncated replies", "ignored speeds", "alarms")}
        self._last_error = ""
        self._rtt = math.nan
        self._rtt_max = 0.0  # s, the slowest exchange so far

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> "PelcoDDriver":
        s = {k: v[0] for k, v in cls.SETTINGS.items()}
        s.update({k: v for k, v in settings.items() if v is not None})
        try:
            units = proto.PelcoDUnits(
                pan_sign=int(s["pan_sign"]), pan_zero=int(s["pan_zero"]), tilt_sign=int(s["tilt_sign"]),
                tilt_zero=int(s["tilt_zero"]), zoom_position_max=int(s["zoom_position_max"]),
                zoom_raw_min=float(s["zoom_raw_min"]), zoom_raw_max=float(s["zoom_raw_max"]),
                pan_speeds=proto.SpeedTable(tuple(int(b) for b in s["pan_speed_bytes"]),
                                            tuple(float(v) for v in s["pan_speed_deg_s"]),
                                            float(s["pan_turbo_deg_s"])),
                tilt_speeds=proto.SpeedTable(tuple(int(b) for b in s["tilt_speed_bytes"]),
                                             tuple(float(v) for v in s["tilt_speed_deg_s"])))
        except (TypeError, ValueError) as exc:
            raise DriverError(f"pelco_d backend: bad model settings: {exc}") from None
        return cls(str(s["port"]), int(s["address"]), int(s["baudrate"]), float(s["timeout"]), int(s["retries"]),
                   str(s["ack_mode"]), units,
                   (float(s["pan_min"]), float(s["pan_max"]), float(s["tilt_min"]), float(s["tilt_max"])),
                   float(s["zoom_speed"]), float(s["max_zoom_ratio"]), float(s["feedback_latency"]),
                   bool(s["query_zoom"]), int(s["max_failed_reads"]), str(s["general_response_checksum"]))

    # -- connection ------------------------------------------------------------------------------

    @property
    def capabilities(self) -> PtzCapabilities:
        return self._caps

    @property
    def connected(self) -> bool:
        return self._connected

    def connect(self) -> None:
        """Open the port and ask the receiver for its pan position: no answer = not connected."""
        with self._lock:
            self._link.open()
            try:
                self._query(proto.QUERY_PAN, self.units.pan_from_device)
            except DriverError as exc:
                self._link.close()
                raise DriverConnectionError(f"pelco_d: no answer from address {self.address} on {self.port}: "
                                            f"{exc}") from None
            self._failed_reads = 0
            self._connected = True

    def close(self) -> None:
        with self._lock:
            self._cancel_stop_timer()
            self._connected = False
            self._link.close()

    def link_statistics(self) -> dict[str, object]:
        with self._lock:
            stats: dict[str, object] = dict(self._stats)
            stats.update({"port": self.port, "address": self.address, "ack mode": self.ack_mode,
                          "round trip (ms)": self._rtt * 1e3,
                          "max round trip (ms)": self._rtt_max * 1e3, "failed reads in a row": self._failed_reads,
                          "last error": self._last_error})
            return stats

    def _count(self, key: str, n: int = 1) -> None:
        self._stats[key] += n

    def _count_error(self, exc: DriverError) -> None:
        key = {proto.PelcoDChecksumError: "checksum errors", proto.PelcoDAddressError: "address errors",
               proto.PelcoDUnexpectedReply: "unexpected replies"}.get(type(exc), "malformed frames")
        self._count(key)
        self._last_error = str(exc)

    # -- exchanges ---------------------------------------------------------------------------------

    def _read_frame(self, length: int, check: Callable[[bytes], T]) -> T:
        """Read until a ``length``-byte frame passes ``check`` or the timeout passes."""
        deadline = time.monotonic() + self.timeout
        buf = b""
        last_error: Optional[DriverError] = None
        while True:
            try:
                # byte by byte, so that a truncated reply's bytes are seen (and counted) before the timeout
                buf += self._link.read_exact(1, timeout=max(0.0, deadline - time.monotonic()))
            except DriverTimeout as exc:
                if buf:
                    self._count("truncated replies")
                self._count("timeouts")
                if last_error is not None:
                    raise last_error from None
                self._last_error = str(exc)
                raise
            found = proto.scan(buf, length, check)
            for error in found.errors:
                self._count_error(error)
                last_error = error
            self._count("garbage bytes", found.skipped)
            buf = buf[found.consumed:]
            if found.value is not None:
                return found.value

    def _write(self, message: bytes) -> None:
        """Drop stale input, then send ``message``.

        pyserial's flush (tcdrain) and input reset (tcflush) on a hung-up line raise
        ``termios.error``, which is no OSError and gets past :class:`SerialLink`; that is a lost
        link too.
        """
        try:
            self._link.discard_input()
            self._link.write(message)
        except termios.error as exc:
            self._link.close()
            raise DriverConnectionError(f"pelco_d: serial port {self.port!r} lost: {exc}") from None

    def _exchange(self, message: bytes, length: int, check: Callable[[bytes], T], retries: int,
                  retry_key: str) -> T:
        """Send ``message`` and read its reply, re-sending up to ``retries`` times."""
        error: Optional[DriverError] = None
        for attempt in range(retries + 1):
            if attempt:
                self._count(retry_key)
            t0 = time.monotonic()
            try:
                self._write(message)
                value = self._read_frame(length, check)
            except DriverConnectionError as exc:
                self._connected = False
                self._last_error = str(exc)
                raise
            except DriverError as exc:
                error = exc
                continue
            self._rtt = time.monotonic() - t0
            self._rtt_max = max(self._rtt_max, self._rtt)
            return value
        assert error is not None
        raise error

    def _query(self, opcode: int, convert: Callable[[int], T]) -> T:
        """Ask a position; ``convert`` turns it into our units (an out-of-range value is a bad frame)."""
        reply = proto.REPLY_OF[opcode]
        self._count("queries")
        return self._exchange(proto.query(self.address, opcode), proto.FRAME_LENGTH,
                              lambda b: convert(proto.parse_position_reply(b, self.address, reply)),
                              self.retries, "query retries")

    def _command(self, message: bytes) -> None:
        """Send one command; in ``general_response`` mode wait for its ACK (re-sending, see the module)."""
        with self._lock:
            if not self._connected:
                raise DriverConnectionError(f"pelco_d: {self.port} is not connected")
            self._count("commands sent")
            if self.ack_mode == "none":
                try:
                    self._write(message)
                except DriverConnectionError:
                    self._connected = False
                    raise
                return
            sent = message[-1]
            try:
                alarm = self._exchange(message, proto.GENERAL_RESPONSE_LENGTH,
                                       lambda b: proto.parse_general_response(b, self.address, sent,
                                                                              self._checksum_rule),
                                       self.retries, "command retries")
            except DriverConnectionError:
                raise
            except DriverError as exc:
                self._count("commands unacknowledged")
                raise DriverTimeout(f"pelco_d: command {message.hex(' ')} not acknowledged after "
                                    f"{self.retries + 1} tries: {exc}") from None
            self._count("commands acknowledged")
            if alarm:
                self._count("alarms")
                self._last_error = f"alarm byte {alarm:#04x} in a general response"

    # -- state --------------------------------------------------------------------------------------

    def read_state(self) -> PtzFeedback:
        with self._lock:
            if not self._connected:
                raise DriverConnectionError(f"pelco_d: {self.port} is not connected")
            try:
                t0 = self._clock()
                pan = self._query(proto.QUERY_PAN, self.units.pan_from_device)
                tilt = self._query(proto.QUERY_TILT, self.units.tilt_from_device)
                t1 = self._clock()
                if self.query_zoom:
                    self._last_zoom = self._query(proto.QUERY_ZOOM, self.units.zoom_from_device)
            except DriverConnectionError:
                self._connected = False
                raise
            except DriverError as exc:
                self._failed_reads += 1
                if self._failed_reads >= self.max_failed_reads:
                    self._connected = False
                    self._link.close()
                    raise DriverConnectionError(f"pelco_d: {self._failed_reads} failed reads in a row, link "
                                                f"considered lost: {exc}") from None
                raise
            self._failed_reads = 0
            return PtzFeedback(pan=pan, tilt=tilt, zoom_raw=self._last_zoom,
                               stamp=0.5 * (t0 + t1) - self.feedback_latency)

    # -- motion ---------------------------------------------------------------------------------------

    def _cancel_stop_timer(self) -> None:
        self._generation += 1
        if self._stop_timer is not None:
            self._stop_timer.cancel()
            self._stop_timer = None

    def move_absolute(self, pan: float, tilt: float, zoom_raw: Optional[float] = None,
                      pan_speed: Optional[float] = None, tilt_speed: Optional[float] = None) -> None:
        u = self.units
        messages = []
        if pan is not None and not math.isnan(pan):
            messages.append(proto.set_position(self.address, proto.SET_PAN, u.pan_to_device(pan)))
        if tilt is not None and not math.isnan(tilt):
            messages.append(proto.set_position(self.address, proto.SET_TILT, u.tilt_to_device(tilt)))
        if zoom_raw is not None and not math.isnan(zoom_raw):
            messages.append(proto.set_position(self.address, proto.SET_ZOOM, u.zoom_to_device(zoom_raw)))
        with self._lock:
            self._cancel_stop_timer()
            if pan_speed or tilt_speed:
                self._count("ignored speeds")
            for message in messages:
                self._command(message)

    def move_velocity(self, pan_rate: float, tilt_rate: float, zoom_rate: float = 0.0,
                      duration: Optional[float] = None) -> None:
        u = self.units
        pan_dir, pan_byte = u.pan_drive(0.0 if pan_rate is None or math.isnan(pan_rate) else pan_rate)
        tilt_dir, tilt_byte = u.tilt_drive(0.0 if tilt_rate is None or math.isnan(tilt_rate) else tilt_rate)
        zoom = 0 if zoom_rate is None or math.isnan(zoom_rate) or zoom_rate == 0 else (1 if zoom_rate > 0 else -1)
        message = proto.motion(self.address, pan_dir, pan_byte, tilt_dir, tilt_byte, zoom)
        with self._lock:
            self._cancel_stop_timer()
            self._command(message)
            if duration and (pan_dir or tilt_dir or zoom):
                generation = self._generation
                timer = threading.Timer(duration, self._timed_stop, args=(generation,))
                timer.daemon = True
                self._stop_timer = timer
                timer.start()

    def _timed_stop(self, generation: int) -> None:
        with self._lock:
            if generation != self._generation or not self._connected:
                return  # a newer command replaced the timed move
            try:
                self._command(proto.stop(self.address))
            except DriverError as exc:
                self._last_error = f"stop after a timed velocity move failed: {exc}"

    def stop(self) -> None:
        with self._lock:
            self._cancel_stop_timer()
            self._command(proto.stop(self.address))

    def set_preset(self, number: int) -> None:
        """Store the current position as preset ``number`` (1..255)."""
        self._command(proto.preset(self.address, proto.SET_PRESET, number))

    def clear_preset(self, number: int) -> None:
        self._command(proto.preset(self.address, proto.CLEAR_PRESET, number))

    def goto_preset(self, number: int) -> None:
        """Move to preset ``number`` (1..255)."""
        with self._lock:
            self._cancel_stop_timer()
            self._command(proto.preset(self.address, proto.GOTO_PRESET, number))

    def capture(self) -> Frame:
        raise DriverError("pelco_d backend: Pelco-D carries no images (capabilities.can_capture is false)")
