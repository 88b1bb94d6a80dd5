"""VISCA framing: command encoders, reply parsing and the VISCA-over-IP header (pure, no I/O).

Sources: Sony EVI-D70 Technical Manual, "VISCA Command List" (message format, ACK / completion /
error replies, Pan-tiltDrive, CAM_Zoom, PanTiltPosInq, CAM_ZoomPosInq); Sony SRG-300H
Technical Manual, "VISCA over IP" (8-byte header, payload types, control command RESET and
ERROR, delivery confirmation by resending with the same sequence number).

A message is ``header, body..., 0xFF``. The controller sends ``8x`` (x = camera address 1..7);
the camera answers ``y0`` with y = address + 8. Numeric parameters are sent one nibble per
byte (``0p 0q 0r 0s``), so 0xFF only ever appears as the terminator.

Everything malformed raises :class:`ViscaFrameError`; error replies become
:class:`ViscaReplyError` subclasses. Both are :class:`~.interface.DriverError`.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import Optional

from .interface import DriverError

TERMINATOR = 0xFF
MAX_MESSAGE = 16  # bytes, VISCA messages are 3..16 bytes


class ViscaFrameError(DriverError):
    """A frame that is not valid VISCA (truncated, bad header or terminator, bad length)."""


class ViscaReplyError(DriverError):
    """The camera answered ``y0 6z EE FF``; ``code`` is EE, ``socket`` is z."""

    code = 0
    meaning = "error"

    def __init__(self, code: int, socket: int, detail: str = "") -> None:
        self.code, self.socket = code, socket
        super().__init__(f"VISCA error {code:02x} ({self.meaning}) in socket {socket}"
                         + (f": {detail}" if detail else ""))


class ViscaMessageLengthError(ViscaReplyError):
    meaning = "message length error"


class ViscaSyntaxError(ViscaReplyError):
    meaning = "syntax error"


class ViscaBufferFull(ViscaReplyError):
    meaning = "command buffer full"


class ViscaCancelled(ViscaReplyError):
    meaning = "command cancelled"


class ViscaNoSocket(ViscaReplyError):
    meaning = "no socket (to be cancelled)"


class ViscaNotExecutable(ViscaReplyError):
    meaning = "command not executable"


ERROR_TYPES: dict[int, type[ViscaReplyError]] = {
    0x01: ViscaMessageLengthError, 0x02: ViscaSyntaxError, 0x03: ViscaBufferFull,
    0x04: ViscaCancelled, 0x05: ViscaNoSocket, 0x41: ViscaNotExecutable,
}


class ViscaSequenceError(DriverError):
    """VISCA over IP control ERROR ``0F yy``: 01 = sequence number abnormal, 02 = message type abnormal."""

    def __init__(self, code: int, sequence: int) -> None:
        self.code, self.sequence = code, sequence
        what = {1: "abnormal sequence number", 2: "abnormal message type"}.get(code, "unknown control error")
        super().__init__(f"VISCA over IP control error 0f{code:02x} ({what}) for sequence number {sequence}")


class ReplyKind(enum.Enum):
    ACK = "ack"
    COMPLETION = "completion"
    ERROR = "error"
    NETWORK_CHANGE = "network change"


@dataclass(frozen=True)
class Reply:
    """One reply message of camera ``sender`` (1..7)."""

    sender: int
    kind: ReplyKind
    socket: int
    data: bytes = b""  # completion: the bytes between ``5z`` and FF (inquiry answers)
    code: int = 0  # error code (ERROR only)

    def error(self) -> ViscaReplyError:
        """The typed exception of an ERROR reply."""
        return ERROR_TYPES.get(self.code, ViscaReplyError)(self.code, self.socket)


def parse_reply(frame: bytes) -> Reply:
    """Parse one reply message (header ... FF); :class:`ViscaFrameError` when it is not one."""
    frame = bytes(frame)
    if len(frame) < 3 or len(frame) > MAX_MESSAGE:
        raise ViscaFrameError(f"VISCA reply of {len(frame)} bytes (3..{MAX_MESSAGE}): {frame.hex()}")
    if frame[-1] != TERMINATOR or TERMINATOR in frame[:-1]:
        raise ViscaFrameError(f"VISCA reply not terminated by a single FF: {frame.hex()}")
    header, kind_byte = frame[0], frame[1]
    sender, receiver = (header >> 4) - 8, header & 0x0F
    if not 1 <= sender <= 7 or receiver != 0:
        raise ViscaFrameError(f"bad VISCA reply header {header:02x} (expected 90..f0): {frame.hex()}")
    kind, socket = kind_byte >> 4, kind_byte & 0x0F
    if kind == 0x4 and len(frame) == 3:
        return Reply(sender, ReplyKind.ACK, socket)
    if kind == 0x5:
        data = frame[2:-1]
        return Reply(sender, ReplyKind.COMPLETION, socket, data)
    if kind == 0x6 and len(frame) == 4:
        return Reply(sender, ReplyKind.ERROR, socket, code=frame[2])
    if kind_byte == 0x38 and len(frame) == 3:
        return Reply(sender, ReplyKind.NETWORK_CHANGE, 0)
    raise ViscaFrameError(f"unknown VISCA reply {frame.hex()}")


# -- nibble-coded numbers ----------------------------------------------------------------------

def nibbles(value: int, count: int = 4, signed: bool = False) -> bytes:
    """``value`` as ``count`` bytes 0p 0q ... (big-endian nibbles; two's complement when signed)."""
    bits = 4 * count
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if not lo <= value <= hi:
        raise ValueError(f"{value} does not fit {count} nibbles{' (signed)' if signed else ''}")
    value &= (1 << bits) - 1
    return bytes((value >> (4 * (count - 1 - i))) & 0x0F for i in range(count))


def from_nibbles(data: bytes, signed: bool = False) -> int:
    """The number coded in ``data`` (bytes 0p 0q ...); :class:`ViscaFrameError` if a byte is > 0F."""
    if not data or any(b > 0x0F for b in data):
        raise ViscaFrameError(f"bad nibble-coded number {bytes(data).hex()}")
    value = 0
    for b in data:
        value = (value << 4) | b
    if signed and value >= 1 << (4 * len(data) - 1):
        value -= 1 << (4 * len(data))
    return value


# -- commands (controller -> camera) -------------------------------------------------------------

def message(address: int, *body: int) -> bytes:
    """``8x body... FF`` for camera ``address`` (1..7)."""
    if not 1 <= address <= 7:
        raise ValueError(f"VISCA camera address must be 1..7, got {address}")
    return bytes((0x80 | address, *body, TERMINATOR))


def _speeds(pan_speed: int, tilt_speed: int) -> tuple[int, int]:
    if not (1 <= pan_speed <= 0x7F and 1 <= tilt_speed <= 0x7F):
        raise ValueError(f"VISCA pan/tilt speed codes must be 1..0x7f, got {pan_speed}, {tilt_speed}")
    return pan_speed, tilt_speed


def pan_tilt_absolute(address: int, pan_speed: int, tilt_speed: int, pan: int, tilt: int) -> bytes:
    """Pan-tiltDrive AbsolutePosition: ``8x 01 06 02 VV WW 0Y 0Y 0Y 0Y 0Z 0Z 0Z 0Z FF``."""
    return message(address, 0x01, 0x06, 0x02, *_speeds(pan_speed, tilt_speed),
                   *nibbles(pan, signed=True), *nibbles(tilt, signed=True))


def pan_tilt_relative(address: int, pan_speed: int, tilt_speed: int, pan: int, tilt: int) -> bytes:
    """Pan-tiltDrive RelativePosition: ``8x 01 06 03 VV WW 0Y 0Y 0Y 0Y 0Z 0Z 0Z 0Z FF``."""
    return message(address, 0x01, 0x06, 0x03, *_speeds(pan_speed, tilt_speed),
                   *nibbles(pan, signed=True), *nibbles(tilt, signed=True))


#: Pan-tiltDrive direction bytes: pan 01 left, 02 right, 03 stop; tilt 01 up, 02 down, 03 stop.
PAN_LEFT, PAN_RIGHT, TILT_UP, TILT_DOWN, AXIS_STOP = 0x01, 0x02, 0x01, 0x02, 0x03


def pan_tilt_drive(address: int, pan_speed: int, tilt_speed: int, pan_dir: int, tilt_dir: int) -> bytes:
    """Pan-tiltDrive Up/Down/Left/Right/.../Stop: ``8x 01 06 01 VV WW 0p 0t FF``."""
    if pan_dir not in (1, 2, 3) or tilt_dir not in (1, 2, 3):
        raise ValueError(f"VISCA drive directions must be 1..3, got {pan_dir}, {tilt_dir}")
    return message(address, 0x01, 0x06, 0x01, *_speeds(pan_speed, tilt_speed), pan_dir, tilt_dir)


def pan_tilt_stop(address: int, pan_speed: int = 1, tilt_speed: int = 1) -> bytes:
    """Pan-tiltDrive Stop: ``8x 01 06 01 VV WW 03 03 FF``."""
    return pan_tilt_drive(address, pan_speed, tilt_speed, AXIS_STOP, AXIS_STOP)


def pan_tilt_home(address: int) -> bytes:
    """Pan-tiltDrive Home: ``8x 01 06 04 FF``."""
    return message(address, 0x01, 0x06, 0x04)


def zoom_direct(address: int, position: int) -> bytes:
    """CAM_Zoom Direct: ``8x 01 04 47 0p 0q 0r 0s FF``."""
    return message(address, 0x01, 0x04, 0x47, *nibbles(position))


def zoom_stop(address: int) -> bytes:
    """CAM_Zoom Stop: ``8x 01 04 07 00 FF``."""
    return message(address, 0x01, 0x04, 0x07, 0x00)


def zoom_tele(address: int, speed: int) -> bytes:
    """CAM_Zoom Tele (Variable): ``8x 01 04 07 2p FF``, p = 0 (low) .. 7 (high)."""
    if not 0 <= speed <= 7:
        raise ValueError(f"VISCA zoom speed must be 0..7, got {speed}")
    return message(address, 0x01, 0x04, 0x07, 0x20 | speed)


def zoom_wide(address: int, speed: int) -> bytes:
    """CAM_Zoom Wide (Variable): ``8x 01 04 07 3p FF``, p = 0 (low) .. 7 (high)."""
    if not 0 <= speed <= 7:
        raise ValueError(f"VISCA zoom speed must be 0..7, got {speed}")
    return message(address, 0x01, 0x04, 0x07, 0x30 | speed)


def if_clear(address: int) -> bytes:
    """IF_Clear: ``8x 01 00 01 FF`` (answered by ``y0 50 FF``): empties the camera's command buffers."""
    return message(address, 0x01, 0x00, 0x01)


def cancel(address: int, socket: int) -> bytes:
    """Command cancel of ``socket`` (1, 2): ``8x 2p FF``."""
    if socket not in (1, 2):
        raise ValueError(f"VISCA socket must be 1 or 2, got {socket}")
    return bytes((0x80 | address, 0x20 | socket, TERMINATOR))


def pan_tilt_position_inquiry(address: int) -> bytes:
    """PanTiltPosInq: ``8x 09 06 12 FF`` -> ``y0 50 0w 0w 0w 0w 0z 0z 0z 0z FF``."""
    return message(address, 0x09, 0x06, 0x12)


def zoom_position_inquiry(address: int) -> bytes:
    """CAM_ZoomPosInq: ``8x 09 04 47 FF`` -> ``y0 50 0p 0q 0r 0s FF``."""
    return message(address, 0x09, 0x04, 0x47)


def decode_pan_tilt_position(data: bytes) -> tuple[int, int]:
    """(pan, tilt) device units of a PanTiltPosInq answer's data (8 nibble bytes, signed)."""
    if len(data) != 8:
        raise ViscaFrameError(f"PanTiltPosInq answer has {len(data)} data bytes, expected 8: {bytes(data).hex()}")
    return from_nibbles(data[:4], signed=True), from_nibbles(data[4:], signed=True)


def decode_zoom_position(data: bytes) -> int:
    """Zoom device units of a CAM_ZoomPosInq answer's data (4 nibble bytes)."""
    if len(data) != 4:
        raise ViscaFrameError(f"CAM_ZoomPosInq answer has {len(data)} data bytes, expected 4: {bytes(data).hex()}")
    return from_nibbles(data)


# -- VISCA over IP -----------------------------------------------------------------------------

class PayloadType(enum.IntEnum):
    """Payload types of the VISCA-over-IP header (Sony SRG-300H manual, "VISCA over IP")."""

    COMMAND = 0x0100
    INQUIRY = 0x0110
    REPLY = 0x0111
    DEVICE_SETTING = 0x0120
    CONTROL = 0x0200
    CONTROL_REPLY = 0x0201


CONTROL_RESET = b"\x01"  # control command RESET (and its acknowledge, in a control reply)
SEQUENCE_MODULUS = 1 << 32
_HEADER = struct.Struct(">HHI")


@dataclass(frozen=True)
class IpPacket:
    """One VISCA-over-IP datagram: payload type, sequence number, payload (1..16 bytes)."""

    payload_type: int
    sequence: int
    payload: bytes

    def control_error(self) -> Optional[ViscaSequenceError]:
        """The control ERROR (``0F yy``) this packet carries, if any."""
        if self.payload_type in (PayloadType.CONTROL, PayloadType.CONTROL_REPLY) and len(self.payload) == 2 \
                and self.payload[0] == 0x0F:
            return ViscaSequenceError(self.payload[1], self.sequence)
        return None


def encode_ip(payload_type: int, sequence: int, payload: bytes) -> bytes:
    """The datagram: type (2 bytes), payload length (2), sequence number (4), payload; big-endian."""
    if not 1 <= len(payload) <= MAX_MESSAGE:
        raise ValueError(f"VISCA-over-IP payload of {len(payload)} bytes (1..{MAX_MESSAGE})")
    return _HEADER.pack(int(payload_type), len(payload), sequence % SEQUENCE_MODULUS) + bytes(payload)


def decode_ip(datagram: bytes) -> IpPacket:
    """Parse one datagram; :class:`ViscaFrameError` when the header is bad or the length disagrees."""
    datagram = bytes(datagram)
    if len(datagram) < _HEADER.size + 1:
        raise ViscaFrameError(f"VISCA-over-IP datagram of {len(datagram)} bytes is too short: {datagram.hex()}")
    payload_type, length, sequence = _HEADER.unpack_from(datagram)
    if payload_type not in PayloadType.__members__.values():
        raise ViscaFrameError(f"unknown VISCA-over-IP payload type {payload_type:04x}")
    payload = datagram[_HEADER.size:]
    if length != len(payload) or not 1 <= length <= MAX_MESSAGE:
        raise ViscaFrameError(f"VISCA-over-IP payload length field {length} but {len(payload)} bytes follow")
    return IpPacket(payload_type, sequence, payload)
