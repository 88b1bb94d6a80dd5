"""Pelco-D framing, parsing and unit conversion: pure functions and classes, no I/O.

Source: Pelco "D" Protocol Manual, Pelco Engineering Design Standard TF-0002, version 2
revision 1 (2003-08-15): "The Message Format", "The Standard Command Set", "Extended
Commands", "Responses". The 4-byte general response and its checksum ("the transmitted check
sum added to the alarm information") are from Pelco manual C466M-E (6/99), section 5.2.4.
The absolute position and query opcodes (0x4B/0x4D/0x4F, 0x51/0x53/0x55 answered by
0x59/0x5B/0x5D) are the extended set of TF-0002 as reproduced in many vendors' command lists.

A message is 7 bytes: ``FF address command1 command2 data1 data2 checksum`` with
``checksum = (address + command1 + command2 + data1 + data2) % 256``. Positions are 16-bit
``data1`` (MSB) ``data2`` (LSB): pan and tilt in hundredths of a degree (0..35999), zoom as a
fraction ``value / 65535`` of the lens range.

Bad input raises :class:`PelcoDFrameError` (a :class:`~.interface.DriverError`) or one of its
subclasses, never anything else (see ``test_driver_pelco_d.py``: a hypothesis test feeds random
bytes into every parser).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Generic, Optional, Sequence, TypeVar

from .interface import DriverError

SYNC = 0xFF
FRAME_LENGTH = 7
GENERAL_RESPONSE_LENGTH = 4

# command 2 bits of the standard command set
RIGHT, LEFT, UP, DOWN, ZOOM_TELE, ZOOM_WIDE = 0x02, 0x04, 0x08, 0x10, 0x20, 0x40
MAX_SPEED = 0x3F  # data1 / data2 speed bytes 0x00..0x3F
TURBO = 0xFF  # data1 pan "turbo" speed

# extended commands (command 2, command 1 = 0)
SET_PRESET, CLEAR_PRESET, GOTO_PRESET = 0x03, 0x05, 0x07
SET_PAN, SET_TILT, SET_ZOOM = 0x4B, 0x4D, 0x4F
QUERY_PAN, QUERY_TILT, QUERY_ZOOM = 0x51, 0x53, 0x55
PAN_REPLY, TILT_REPLY, ZOOM_REPLY = 0x59, 0x5B, 0x5D
REPLY_OF = {QUERY_PAN: PAN_REPLY, QUERY_TILT: TILT_REPLY, QUERY_ZOOM: ZOOM_REPLY}

ANGLE_UNITS = 36000  # hundredths of a degree per turn
ZOOM_FULL_SCALE = 65535

#: general response checksum rules: "command_plus_alarm" (C466M-E 5.2.4) or "sum" (address + alarm)
CHECKSUM_RULES = ("command_plus_alarm", "sum")


class PelcoDFrameError(DriverError):
    """A received Pelco-D frame is malformed: wrong sync, length or an invalid value."""


class PelcoDChecksumError(PelcoDFrameError):
    """A received frame's checksum does not match its bytes."""


class PelcoDAddressError(PelcoDFrameError):
    """A received frame comes from another receiver address than the one asked."""


class PelcoDUnexpectedReply(PelcoDFrameError):
    """A well-formed frame that is not the answer expected (e.g. a late reply to an earlier query)."""


def checksum(body: Sequence[int]) -> int:
    """The Pelco-D checksum of the bytes after the sync byte: their sum modulo 256."""
    return sum(body) & 0xFF


def _byte(value: int, name: str, lo: int = 0, hi: int = 0xFF) -> int:
    if not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"Pelco-D {name} must be an integer in [{lo}, {hi}], got {value!r}")
    return value


def encode(address: int, command1: int, command2: int, data1: int = 0, data2: int = 0) -> bytes:
    """One 7-byte message to receiver ``address`` (1..255)."""
    body = [_byte(address, "address", 1), _byte(command1, "command 1"), _byte(command2, "command 2"),
            _byte(data1, "data 1"), _byte(data2, "data 2")]
    return bytes([SYNC, *body, checksum(body)])


def stop(address: int) -> bytes:
    """Stop every axis (all command and data bytes zero)."""
    return encode(address, 0, 0, 0, 0)


def motion(address: int, pan: int = 0, pan_speed: int = 0, tilt: int = 0, tilt_speed: int = 0,
           zoom: int = 0) -> bytes:
    """A standard pan/tilt/zoom drive command in the DEVICE's directions.

    ``pan`` +1 = right, -1 = left, 0 = none; ``tilt`` +1 = up, -1 = down; ``zoom`` +1 = tele,
    -1 = wide. Speeds are bytes 0x00..0x3F (pan also 0xFF = turbo); an axis without a
    direction gets speed 0.
    """
    pan_speed = _byte(pan_speed, "pan speed") if pan else 0
    tilt_speed = _byte(tilt_speed, "tilt speed", 0, MAX_SPEED) if tilt else 0
    if pan_speed > MAX_SPEED and pan_speed != TURBO:
        raise ValueError(f"Pelco-D pan speed must be 0x00..0x3F or 0xFF (turbo), got {pan_speed:#x}")
    command2 = ((RIGHT if pan > 0 else LEFT if pan < 0 else 0) | (UP if tilt > 0 else DOWN if tilt < 0 else 0)
                | (ZOOM_TELE if zoom > 0 else ZOOM_WIDE if zoom < 0 else 0))
    return encode(address, 0, command2, pan_speed, tilt_speed)


def preset(address: int, opcode: int, number: int) -> bytes:
    """Set (0x03), clear (0x05) or go to (0x07) preset ``number`` (1..255)."""
    if opcode not in (SET_PRESET, CLEAR_PRESET, GOTO_PRESET):
        raise ValueError(f"not a preset opcode: {opcode:#x}")
    return encode(address, 0, opcode, 0, _byte(number, "preset number", 1))


def set_position(address: int, opcode: int, value: int) -> bytes:
    """Set Pan (0x4B), Tilt (0x4D) or Zoom (0x4F) Position to the 16-bit ``value``."""
    if opcode not in (SET_PAN, SET_TILT, SET_ZOOM):
        raise ValueError(f"not a set-position opcode: {opcode:#x}")
    hi = ANGLE_UNITS - 1 if opcode != SET_ZOOM else ZOOM_FULL_SCALE
    value = _byte(value, "position", 0, hi)
    return encode(address, 0, opcode, value >> 8, value & 0xFF)


def query(address: int, opcode: int) -> bytes:
    """Query Pan (0x51), Tilt (0x53) or Zoom (0x55) Position."""
    if opcode not in REPLY_OF:
        raise ValueError(f"not a query opcode: {opcode:#x}")
    return encode(address, 0, opcode, 0, 0)


# -- parsing ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Message:
    """A checked 7-byte message: address, command 1/2, data 1/2."""

    address: int
    command1: int
    command2: int
    data1: int
    data2: int

    @property
    def value(self) -> int:
        """data1 (MSB) and data2 (LSB) as one 16-bit number."""
        return (self.data1 << 8) | self.data2


def parse_message(data: bytes, address: Optional[int] = None) -> Message:
    """Check sync, length, checksum (and ``address`` if given) of one 7-byte message."""
    if len(data) != FRAME_LENGTH:
        raise PelcoDFrameError(f"Pelco-D message must be {FRAME_LENGTH} bytes, got {len(data)}: {bytes(data).hex(' ')}")
    if data[0] != SYNC:
        raise PelcoDFrameError(f"Pelco-D message without sync byte 0xFF: {bytes(data).hex(' ')}")
    if checksum(data[1:6]) != data[6]:
        raise PelcoDChecksumError(f"Pelco-D checksum {data[6]:#04x} should be {checksum(data[1:6]):#04x}: "
                                  f"{bytes(data).hex(' ')}")
    if address is not None and data[1] != address:
        raise PelcoDAddressError(f"Pelco-D reply from address {data[1]}, expected {address}: {bytes(data).hex(' ')}")
    return Message(*data[1:6])


def parse_position_reply(data: bytes, address: int, reply_opcode: int) -> int:
    """The 16-bit position of a query response ``FF addr 00 <reply_opcode> MSB LSB sum``."""
    msg = parse_message(data, address)
    if msg.command1 != 0 or msg.command2 != reply_opcode:
        raise PelcoDUnexpectedReply(f"expected a {reply_opcode:#04x} response, got command "
                                    f"{msg.command1:#04x} {msg.command2:#04x}: {bytes(data).hex(' ')}")
    return msg.value


def general_response_checksum(address: int, alarm: int, sent_checksum: int, rule: str = "command_plus_alarm") -> int:
    """Checksum byte of the 4-byte general response (see :data:`CHECKSUM_RULES`)."""
    if rule == "command_plus_alarm":
        return (sent_checksum + alarm) & 0xFF
    if rule == "sum":
        return (address + alarm) & 0xFF
    raise ValueError(f"unknown general response checksum rule {rule!r}; one of {', '.join(CHECKSUM_RULES)}")


def parse_general_response(data: bytes, address: int, sent_checksum: int, rule: str = "command_plus_alarm") -> int:
    """The alarm byte of a general response ``FF addr alarm checksum`` to a command with ``sent_checksum``."""
    if len(data) != GENERAL_RESPONSE_LENGTH:
        raise PelcoDFrameError(f"Pelco-D general response must be {GENERAL_RESPONSE_LENGTH} bytes, got "
                               f"{len(data)}: {bytes(data).hex(' ')}")
    if data[0] != SYNC:
        raise PelcoDFrameError(f"Pelco-D general response without sync byte: {bytes(data).hex(' ')}")
    expected = general_response_checksum(data[1], data[2], sent_checksum, rule)
    if data[3] != expected:
        raise PelcoDChecksumError(f"Pelco-D general response checksum {data[3]:#04x} should be {expected:#04x}: "
                                  f"{bytes(data).hex(' ')}")
    if data[1] != address:
        raise PelcoDAddressError(f"Pelco-D general response from address {data[1]}, expected {address}")
    return data[2]


T = TypeVar("T")


@dataclass(frozen=True)
class ScanResult(Generic[T]):
    """What :func:`scan` found: the value (None = not yet), bytes consumed, rejected frames, and the
    bytes dropped that did not start a candidate frame (garbage, and the rest of rejected frames)."""

    value: Optional[T]
    consumed: int
    errors: tuple[PelcoDFrameError, ...] = ()
    skipped: int = 0


def scan(buffer: bytes, length: int, check: Callable[[bytes], T]) -> ScanResult[T]:
    """Find the first ``length``-byte frame starting with 0xFF in ``buffer`` that ``check`` accepts.

    Bytes before a sync byte are skipped (garbage on the line); a candidate that ``check``
    rejects with :class:`PelcoDFrameError` is recorded and the search resumes at the next sync
    byte. When no frame is complete yet, ``consumed`` keeps the unfinished tail in the buffer.
    """
    errors: list[PelcoDFrameError] = []
    skipped = 0
    i = 0
    while True:
        j = buffer.find(bytes([SYNC]), i)
        if j < 0:
            return ScanResult(None, len(buffer), tuple(errors), skipped + len(buffer) - i)
        skipped += j - i
        if len(buffer) - j < length:
            return ScanResult(None, j, tuple(errors), skipped)
        try:
            return ScanResult(check(bytes(buffer[j:j + length])), j + length, tuple(errors), skipped)
        except PelcoDFrameError as exc:
            errors.append(exc)
            i = j + 1


# -- units ---------------------------------------------------------------------------------------

def _wrap_degrees(deg: float) -> float:
    """An angle in degrees wrapped into (-180, 180]."""
    w = math.fmod(deg, 360.0)
    if w <= -180.0:
        w += 360.0
    elif w > 180.0:
        w -= 360.0
    return w


@dataclass(frozen=True)
class SpeedTable:
    """Speed byte -> speed (deg/s) of one axis: piecewise linear through (byte, deg/s) points."""

    bytes_: tuple[int, ...]
    deg_s: tuple[float, ...]
    turbo_deg_s: float = 0.0  # speed of the 0xFF turbo byte; 0 = no turbo

    def __post_init__(self) -> None:
        if len(self.bytes_) != len(self.deg_s) or len(self.bytes_) < 2:
            raise ValueError("speed table: give at least two (byte, deg/s) points, as many bytes as speeds")
        if list(self.bytes_) != sorted(set(self.bytes_)) or not all(0 <= b <= MAX_SPEED for b in self.bytes_):
            raise ValueError(f"speed table bytes must increase within 0..0x3F, got {list(self.bytes_)}")
        if any(b > a for a, b in zip(self.deg_s[1:], self.deg_s[:-1])) or min(self.deg_s) < 0:
            raise ValueError(f"speed table speeds must be >= 0 and not decrease, got {list(self.deg_s)}")
        if not (self.turbo_deg_s == 0.0 or self.turbo_deg_s >= self.deg_s[-1]):
            raise ValueError("turbo speed must be 0 (none) or at least the speed of the fastest byte")

    def speed(self, byte: int) -> float:
        """deg/s of a speed byte (0xFF: turbo)."""
        if byte == TURBO and self.turbo_deg_s > 0:
            return self.turbo_deg_s
        byte = min(max(byte, self.bytes_[0]), self.bytes_[-1])
        for (b0, s0), (b1, s1) in zip(zip(self.bytes_, self.deg_s), zip(self.bytes_[1:], self.deg_s[1:])):
            if b0 <= byte <= b1:
                return s0 + (s1 - s0) * (byte - b0) / (b1 - b0)
        return self.deg_s[-1]  # pragma: no cover - the loop covers the clamped range

    @property
    def max_deg_s(self) -> float:
        return max(self.deg_s[-1], self.turbo_deg_s)

    def byte_for(self, deg_s: float) -> int:
        """The speed byte whose speed is nearest to ``|deg_s|`` (0 = stop that axis)."""
        target = abs(deg_s)
        candidates = list(range(self.bytes_[0], self.bytes_[-1] + 1)) + ([TURBO] if self.turbo_deg_s > 0 else [])
        return min(candidates, key=lambda b: (abs(self.speed(b) - target), b))


@dataclass(frozen=True)
class PelcoDUnits:
    """Per-model conversion between Pelco-D device units and ours (rad, raw zoom, rad/s).

    Our pan is positive counter-clockwise seen from above, our tilt positive up (the model's
    kinematics). ``pan_sign`` = -1: the device's pan position grows clockwise (to the right);
    ``tilt_sign`` = -1: the device counts tilt downwards from 0 = horizontal, so 0..9000 is
    0..90 deg below and 35999..27000 is 0.01..90 deg above the horizon. ``*_zero`` is the
    device position (1/100 deg) of our 0. Zoom: device 0..``zoom_position_max`` maps linearly
    onto our ``zoom_raw_min``..``zoom_raw_max``.
    """

    pan_sign: int = -1
    pan_zero: int = 0
    tilt_sign: int = -1
    tilt_zero: int = 0
    zoom_position_max: int = ZOOM_FULL_SCALE
    zoom_raw_min: float = 0.0
    zoom_raw_max: float = float(ZOOM_FULL_SCALE)
    pan_speeds: SpeedTable = SpeedTable((0, MAX_SPEED), (0.0, 40.0), 80.0)
    tilt_speeds: SpeedTable = SpeedTable((0, MAX_SPEED), (0.0, 30.0))

    def __post_init__(self) -> None:
        if self.pan_sign not in (-1, 1) or self.tilt_sign not in (-1, 1):
            raise ValueError("pan_sign and tilt_sign must be +1 or -1")
        if not 0 <= self.pan_zero < ANGLE_UNITS or not 0 <= self.tilt_zero < ANGLE_UNITS:
            raise ValueError("pan_zero and tilt_zero must be device positions 0..35999")
        if not 0 < self.zoom_position_max <= ZOOM_FULL_SCALE:
            raise ValueError("zoom_position_max must be in 1..65535")
        if not self.zoom_raw_max > self.zoom_raw_min:
            raise ValueError("zoom_raw_max must be greater than zoom_raw_min")

    def _to_device(self, rad: float, sign: int, zero: int) -> int:
        return int(round(sign * math.degrees(rad) * 100.0 + zero)) % ANGLE_UNITS

    def _from_device(self, value: int, sign: int, zero: int, axis: str) -> float:
        if not 0 <= value < ANGLE_UNITS:
            raise PelcoDFrameError(f"{axis} position {value} outside 0..35999 (1/100 deg)")
        return math.radians(sign * _wrap_degrees((value - zero) / 100.0))

    def pan_to_device(self, pan: float) -> int:
        """Our pan (rad) as a Set Pan Position value (1/100 deg, 0..35999)."""
        return self._to_device(pan, self.pan_sign, self.pan_zero)

    def pan_from_device(self, value: int) -> float:
        """A pan position response as our pan (rad, (-pi, pi])."""
        return self._from_device(value, self.pan_sign, self.pan_zero, "pan")

    def tilt_to_device(self, tilt: float) -> int:
        return self._to_device(tilt, self.tilt_sign, self.tilt_zero)

    def tilt_from_device(self, value: int) -> float:
        return self._from_device(value, self.tilt_sign, self.tilt_zero, "tilt")

    def zoom_to_device(self, zoom_raw: float) -> int:
        """Our raw zoom as a Set Zoom Position value (clamped into the lens range)."""
        f = (zoom_raw - self.zoom_raw_min) / (self.zoom_raw_max - self.zoom_raw_min)
        return int(round(min(max(f, 0.0), 1.0) * self.zoom_position_max))

    def zoom_from_device(self, value: int) -> float:
        if not 0 <= value <= self.zoom_position_max:
            raise PelcoDFrameError(f"zoom position {value} outside 0..{self.zoom_position_max}")
        return self.zoom_raw_min + (self.zoom_raw_max - self.zoom_raw_min) * value / self.zoom_position_max

    @property
    def pan_step(self) -> float:
        """Resolution of a pan/tilt position (rad)."""
        return math.radians(0.01)

    @property
    def zoom_step(self) -> float:
        """Resolution of a zoom position in our raw units."""
        return (self.zoom_raw_max - self.zoom_raw_min) / self.zoom_position_max

    def pan_drive(self, rate: float) -> tuple[int, int]:
        """Our pan rate (rad/s) as (device direction +1 right / -1 left / 0, speed byte)."""
        byte = self.pan_speeds.byte_for(math.degrees(rate)) if math.isfinite(rate) else 0
        # "right" turns clockwise seen from above: our pan decreases (whatever way the position counts)
        direction = 0 if byte == 0 or rate == 0 else (1 if rate < 0 else -1)
        return direction, byte if direction else 0

    def tilt_drive(self, rate: float) -> tuple[int, int]:
        """Our tilt rate (rad/s) as (device direction +1 up / -1 down / 0, speed byte)."""
        byte = self.tilt_speeds.byte_for(math.degrees(rate)) if math.isfinite(rate) else 0
        direction = 0 if byte == 0 or rate == 0 else (1 if rate > 0 else -1)
        return direction, byte if direction else 0
