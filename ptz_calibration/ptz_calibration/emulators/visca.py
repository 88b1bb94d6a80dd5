"""A Sony VISCA camera (EVI-D70 units) in front of a :class:`SimulatedPtzCamera`: serial or IP.

Written from the protocol documents (Sony EVI-D70 Technical Manual, VISCA command list; Sony
SRG-300H Technical Manual, "VISCA over IP"), not from the driver's code. Camera behaviour:

* Commands take a socket (1 or 2) and are ACKed ``y0 4z FF``. Moves that take time (absolute,
  relative, home, zoom direct) keep their socket until the move ends, then send ``y0 5z FF``;
  a new command of the same kind (pan-tilt or zoom) ends the older one at once (its
  completion is sent when the new one is accepted). Drives (velocity) and zoom variable
  complete at once. With both sockets held a command gets ``y0 60 03 FF`` (buffer full).
* Inquiries are answered ``y0 50 data FF``; IF_Clear ``y0 50 FF``; cancel ``8x 2p FF`` gets
  ``y0 6p 04 FF`` (cancelled, motion stopped) or ``y0 6p 05 FF`` (no socket).
* IP: replies carry the request's sequence number; control RESET is acknowledged with a control
  reply 01; a message repeating the last sequence number is not executed and gets the control
  ERROR ``0F 01`` (Sony's delivery confirmation).

Fault switches (:class:`ViscaFaults`, set at run time) drop, corrupt, truncate, delay and
duplicate replies, answer error codes or sequence errors, or mute the camera.
Run ``python -m ptz_calibration.emulators.visca --help`` to serve one camera.
"""

from __future__ import annotations

import heapq
import itertools
import math
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

from .serial_port import PtyPort

Send = Callable[[bytes], None]


@dataclass(frozen=True)
class EmulatedModel:
    """The emulated camera's units: Sony EVI-D70 (Technical Manual: pan F725h..08DBh = 170 deg
    left..right, tilt FE70h..04B0h = -30..+90 deg, zoom 0000h..4000h optical; speed codes
    pan 01h..18h, tilt 01h..17h, zoom variable p 0..7). Speeds per code: linear, an assumption."""

    pan_limit: int = 0x08DB  # units at 170 deg
    pan_degrees: float = 170.0
    tilt_low: int = -0x0190  # FE70h, -30 deg
    tilt_high: int = 0x04B0  # +90 deg
    tilt_degrees: float = 90.0
    zoom_max: int = 0x4000
    pan_codes: tuple[int, int] = (0x01, 0x18)
    tilt_codes: tuple[int, int] = (0x01, 0x17)
    pan_speeds: tuple[float, float] = (2.0, 100.0)  # deg/s of the slowest, fastest code
    tilt_speeds: tuple[float, float] = (2.0, 90.0)
    zoom_speeds: tuple[float, float] = (1000.0, 8000.0)  # raw/s of p = 0, 7

    def pan_rad(self, units: int) -> float:
        """Device pan is positive to the right; the simulator's pan is positive to the left."""
        return -math.radians(units * self.pan_degrees / self.pan_limit)

    def pan_units(self, rad: float) -> int:
        return int(round(-math.degrees(rad) * self.pan_limit / self.pan_degrees))

    def tilt_rad(self, units: int) -> float:
        return math.radians(units * self.tilt_degrees / self.tilt_high)

    def tilt_units(self, rad: float) -> int:
        return int(round(math.degrees(rad) * self.tilt_high / self.tilt_degrees))

    @staticmethod
    def _speed(code: int, codes: tuple[int, int], speeds: tuple[float, float]) -> float:
        return speeds[0] + (code - codes[0]) * (speeds[1] - speeds[0]) / (codes[1] - codes[0])

    def pan_speed(self, code: int) -> float:
        return math.radians(self._speed(code, self.pan_codes, self.pan_speeds))

    def tilt_speed(self, code: int) -> float:
        return math.radians(self._speed(code, self.tilt_codes, self.tilt_speeds))

    def zoom_speed(self, p: int) -> float:
        return self._speed(p, (0, 7), self.zoom_speeds)


EVI_D70 = EmulatedModel()


@dataclass
class ViscaFaults:
    """Fault switches; counts apply to the next N replies (or messages), then reset to 0."""

    mute: bool = False  # ignore everything (link down); nothing is executed
    drop_replies: int = 0  # the camera executes but the next N replies are lost
    drop_acks: int = 0  # only ACKs lost (completion still sent)
    malformed_replies: int = 0  # replaced by a frame with a bad header byte
    truncated_replies: int = 0  # cut short (serial: the FF is missing)
    bad_data_replies: int = 0  # inquiry answers with a data byte > 0Fh
    bad_header_replies: int = 0  # IP: payload length field wrong
    error_replies: list[int] = field(default_factory=list)  # next messages answered y0 6z <code> FF
    sequence_errors: int = 0  # IP: next N messages answered with control ERROR 0F01
    buffer_full: int = 0  # next N commands answered y0 60 03 FF (command buffer full)
    delay: float = 0.0  # s before every reply (slow camera)
    late_duplicates: float = 0.0  # s: > 0 sends every reply again this much later

    def take(self, name: str) -> bool:
        value = getattr(self, name)
        if value > 0:
            setattr(self, name, value - 1)
            return True
        return False


class _Scheduler:
    """Runs callbacks at wall-clock times on one thread."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._count = itertools.count()
        self._cond = threading.Condition()
        self._running = True
        self._thread = threading.Thread(target=self._run, daemon=True, name="visca-emulator-scheduler")
        self._thread.start()

    def at(self, when: float, fn: Callable[[], None]) -> None:
        with self._cond:
            heapq.heappush(self._heap, (when, next(self._count), fn))
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._running and (not self._heap or self._heap[0][0] > time.time()):
                    self._cond.wait(None if not self._heap else max(0.0, self._heap[0][0] - time.time()))
                if not self._running:
                    return
                _, _, fn = heapq.heappop(self._heap)
            try:
                fn()
            except OSError:
                pass  # the transport went away

    def close(self) -> None:
        with self._cond:
            self._running = False
            self._cond.notify()
        self._thread.join(timeout=2.0)


@dataclass
class _Socket:
    kind: str  # "pan-tilt" or "zoom"
    send: Send
    token: int


class ViscaCameraCore:
    """The camera's VISCA logic, independent of the transport (see the module docstring)."""

    def __init__(self, sim, address: int = 1, model: EmulatedModel = EVI_D70,
                 faults: Optional[ViscaFaults] = None) -> None:
        self.sim = sim
        self.address = address
        self.model = model
        self.faults = faults or ViscaFaults()
        self.received: list[bytes] = []  # every VISCA message received, in order
        self.executed: list[bytes] = []  # every command executed
        self._sockets: dict[int, _Socket] = {}
        self._tokens = itertools.count(1)
        self._lock = threading.RLock()
        self.scheduler = _Scheduler()

    @property
    def header(self) -> int:
        return (self.address + 8) << 4  # y0 with y = address + 8

    def close(self) -> None:
        self.scheduler.close()

    # -- replies with faults -----------------------------------------------------------------

    def emit(self, send: Send, frame: bytes, at: Optional[float] = None, ack: bool = False,
             inquiry: bool = False) -> None:
        """Send ``frame`` (a VISCA reply) through ``send`` now or at ``at``, with the faults applied."""
        f = self.faults
        if f.take("drop_replies") or (ack and f.take("drop_acks")):
            return
        if f.take("malformed_replies"):
            frame = bytes((0x10,)) + frame[1:]
        elif f.take("truncated_replies"):
            frame = frame[:-1] if len(frame) > 3 else frame[:2]
        elif inquiry and f.take("bad_data_replies"):
            frame = frame[:2] + bytes((0x1F,)) + frame[3:]
        when = (at if at is not None else time.time()) + f.delay
        if when <= time.time() + 1e-4:
            send(frame)
        else:
            self.scheduler.at(when, lambda: send(frame))
        if f.late_duplicates > 0:
            self.scheduler.at(when + f.late_duplicates, lambda: send(frame))

    def _reply(self, *body: int) -> bytes:
        return bytes((self.header, *body, 0xFF))

    # -- messages ---------------------------------------------------------------------------

    def handle(self, msg: bytes, send: Send) -> None:
        """One message from the controller; replies go through ``send`` (now or later)."""
        with self._lock:
            self.received.append(bytes(msg))
            if len(msg) < 3 or msg[-1] != 0xFF:
                self.emit(send, self._reply(0x60, 0x02))
                return
            if msg[0] != 0x80 + self.address:
                return  # for another camera on the chain
            if self.faults.error_replies:
                code = self.faults.error_replies.pop(0)
                self.emit(send, self._reply(0x60 if code in (1, 2, 3) else 0x61, code))
                return
            body = msg[1:-1]
            if body[0] == 0x09:
                self._inquiry(body, send)
            elif body[0] == 0x01:
                self._command(msg, body, send)
            elif len(body) == 1 and body[0] in (0x21, 0x22):
                self._cancel(body[0] & 0x0F, send)
            else:
                self.emit(send, self._reply(0x60, 0x02))

    def _nibbles(self, value: int, count: int = 4) -> tuple[int, ...]:
        value &= (1 << (4 * count)) - 1
        return tuple((value >> (4 * (count - 1 - i))) & 0x0F for i in range(count))

    def _number(self, data: bytes, signed: bool) -> Optional[int]:
        if any(b > 0x0F for b in data):
            return None
        value = 0
        for b in data:
            value = value * 16 + b
        return value - 0x10000 if signed and value >= 0x8000 else value

    def _inquiry(self, body: bytes, send: Send) -> None:
        fb = self.sim.feedback()
        m = self.model
        if body == b"\x09\x06\x12":
            pan = max(-m.pan_limit, min(m.pan_limit, m.pan_units(fb.pan)))
            tilt = max(m.tilt_low, min(m.tilt_high, m.tilt_units(fb.tilt)))
            self.emit(send, self._reply(0x50, *self._nibbles(pan), *self._nibbles(tilt)), inquiry=True)
        elif body == b"\x09\x04\x47":
            zoom = max(0, min(m.zoom_max, int(round(fb.zoom_raw))))
            self.emit(send, self._reply(0x50, *self._nibbles(zoom)), inquiry=True)
        else:
            self.emit(send, self._reply(0x60, 0x02))

    def _cancel(self, socket_no: int, send: Send) -> None:
        held = self._sockets.pop(socket_no, None)
        if held is None:
            self.emit(send, self._reply(0x60 + socket_no, 0x05))
            return
        axes = self.sim.mechanics.axes
        self._axis_command(lambda t: [axes[i].stop(t) for i in ((0, 1) if held.kind == "pan-tilt" else (2,))])
        self.emit(send, self._reply(0x60 + socket_no, 0x04))

    def _axis_command(self, fn: Callable[[float], object]) -> None:
        """Run ``fn(t)`` on the simulator's mechanics at its command time (per-axis commands that
        SimulatedPtzCamera has no public method for: drive one axis, stop one axis)."""
        with self.sim._lock:  # noqa: SLF001 - the emulator is the simulated camera's firmware
            fn(self.sim._command_time())  # noqa: SLF001

    def _command(self, msg: bytes, body: bytes, send: Send) -> None:
        m = self.model
        axes = self.sim.mechanics.axes
        if body == b"\x01\x00\x01":  # IF_Clear
            self._sockets.clear()
            self.emit(send, self._reply(0x50))
            return
        kind: Optional[str] = None
        action: Optional[Callable[[], None]] = None
        lasting = False  # keeps its socket until the move ends
        if body[:3] == b"\x01\x06\x01" and len(body) == 7:  # Pan-tiltDrive
            vv, ww, pd, td = body[3:7]
            if not (m.pan_codes[0] <= vv <= m.pan_codes[1] and m.tilt_codes[0] <= ww <= m.tilt_codes[1]
                    and pd in (1, 2, 3) and td in (1, 2, 3)):
                self.emit(send, self._reply(0x60, 0x02))
                return
            pan_rate = {1: 1.0, 2: -1.0, 3: 0.0}[pd] * m.pan_speed(vv)  # 01 left = positive sim pan
            tilt_rate = {1: 1.0, 2: -1.0, 3: 0.0}[td] * m.tilt_speed(ww)  # 01 up = positive tilt

            def action() -> None:
                self._axis_command(lambda t: [axes[i].move_velocity(t, r) if r else axes[i].stop(t)
                                              for i, r in ((0, pan_rate), (1, tilt_rate))])
            kind = "pan-tilt"
        elif body[:3] in (b"\x01\x06\x02", b"\x01\x06\x03") and len(body) == 13:  # Absolute / Relative
            vv, ww = body[3], body[4]
            pan, tilt = self._number(body[5:9], True), self._number(body[9:13], True)
            if pan is None or tilt is None or not (m.pan_codes[0] <= vv <= m.pan_codes[1]
                                                   and m.tilt_codes[0] <= ww <= m.tilt_codes[1]):
                self.emit(send, self._reply(0x60, 0x02))
                return
            speeds = (m.pan_speed(vv), m.tilt_speed(ww))
            if body[2] == 0x02:
                if not (-m.pan_limit <= pan <= m.pan_limit and m.tilt_low <= tilt <= m.tilt_high):
                    self.emit(send, self._reply(0x61, 0x41))  # out of the movable range
                    return

                def action() -> None:
                    self.sim.move_absolute(m.pan_rad(pan), m.tilt_rad(tilt), None, *speeds)
            else:
                def action() -> None:
                    self.sim.move_relative(m.pan_rad(pan), m.tilt_rad(tilt), None, *speeds)
            kind, lasting = "pan-tilt", True
        elif body == b"\x01\x06\x04":  # Home
            def action() -> None:
                self.sim.move_absolute(0.0, 0.0, None)
            kind, lasting = "pan-tilt", True
        elif body[:3] == b"\x01\x04\x47" and len(body) == 7:  # CAM_Zoom Direct
            zoom = self._number(body[3:7], False)
            if zoom is None:
                self.emit(send, self._reply(0x60, 0x02))
                return
            if zoom > m.zoom_max:
                self.emit(send, self._reply(0x61, 0x41))
                return

            def action() -> None:
                self.sim.move_absolute(None, None, float(zoom))
            kind, lasting = "zoom", True
        elif body[:3] == b"\x01\x04\x07" and len(body) == 4 and (body[3] in (0, 2, 3)
                                                                  or body[3] >> 4 in (2, 3)):
            code = body[3]  # 00 stop, 02 / 03 tele / wide (standard), 2p / 3p tele / wide (variable)
            tele = code == 0x02 or code >> 4 == 2
            speed = m.zoom_speed(code & 0x07 if code >> 4 else 3)
            rate = 0.0 if code == 0 else (speed if tele else -speed)

            def action() -> None:
                self._axis_command(lambda t: axes[2].move_velocity(t, rate) if rate else axes[2].stop(t))
            kind = "zoom"
        else:
            self.emit(send, self._reply(0x60, 0x02))
            return
        # sockets: a newer command of the same kind ends the older one
        for number, held in list(self._sockets.items()):
            if held.kind == kind:
                del self._sockets[number]
                self.emit(held.send, self._reply(0x50 + number))
        free = [n for n in (1, 2) if n not in self._sockets]
        if not free or self.faults.take("buffer_full"):
            self.emit(send, self._reply(0x60, 0x03))
            return
        number = free[0]
        action()
        self.executed.append(bytes(msg))
        self.emit(send, self._reply(0x40 + number), ack=True)
        if not lasting:
            self.emit(send, self._reply(0x50 + number))
            return
        token = next(self._tokens)
        self._sockets[number] = _Socket(kind, send, token)
        idx = (0, 1) if kind == "pan-tilt" else (2,)
        end = max(axes[i].arrival_time() for i in idx)
        self.scheduler.at(end, lambda: self._complete(number, token))

    def _complete(self, number: int, token: int) -> None:
        with self._lock:
            held = self._sockets.get(number)
            if held is None or held.token != token:
                return  # superseded or cancelled
            del self._sockets[number]
            self.emit(held.send, self._reply(0x50 + number))

    def hold_sockets(self) -> None:
        """Test hook: occupy both sockets (as if two long commands ran) until IF_Clear or :meth:`release_sockets`."""
        with self._lock:
            for n in (1, 2):
                self._sockets[n] = _Socket(f"held{n}", lambda frame: None, -1)

    def release_sockets(self) -> None:
        with self._lock:
            for n in (1, 2):
                if self._sockets.get(n) and self._sockets[n].token == -1:
                    del self._sockets[n]


# -- transports -----------------------------------------------------------------------------------

class ViscaSerialEmulator:
    """The camera on a pseudo-terminal: the driver opens :attr:`device`."""

    def __init__(self, core: ViscaCameraCore) -> None:
        self.core = core
        self.pty = PtyPort()
        self.device = self.pty.device
        self._running = True
        self._thread = threading.Thread(target=self._run, daemon=True, name="visca-serial-emulator")
        self._thread.start()

    def _send(self, frame: bytes) -> None:
        if self._running:
            self.pty.write(frame)

    def _run(self) -> None:
        buf = bytearray()
        while self._running:
            data = self.pty.read(256, timeout=0.05)
            if not data:
                continue
            for byte in data:
                buf.append(byte)
                if byte == 0xFF or len(buf) > 16:
                    msg, buf = bytes(buf), bytearray()
                    if not self.core.faults.mute:
                        self.core.handle(msg, self._send)

    def close(self) -> None:
        self._running = False
        self._thread.join(timeout=2.0)
        self.core.close()
        self.pty.close()


_HEADER = struct.Struct(">HHI")


class ViscaIpEmulator:
    """The camera as a VISCA-over-IP UDP server on ``host`` (port 0 = an ephemeral port)."""

    def __init__(self, core: ViscaCameraCore, host: str = "127.0.0.1", port: int = 0) -> None:
        self.core = core
        self.host = host
        self.port = port
        self.resets = 0
        self.sequence_numbers: list[int] = []
        self._last_seq: Optional[int] = None
        self._sock: Optional[socket.socket] = None
        self._thread: Optional[threading.Thread] = None
        self.start()

    def start(self) -> None:
        """(Re)open the socket on the same port: the camera comes back."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.settimeout(0.05)
        self.port = sock.getsockname()[1]
        self._sock = sock
        self._last_seq = None
        self._thread = threading.Thread(target=self._run, args=(sock,), daemon=True, name="visca-ip-emulator")
        self._thread.start()

    def stop(self) -> None:
        """Close the socket (the camera disappears: the driver gets ICMP "port unreachable")."""
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
        if self._thread is not None:
            self._thread.join(timeout=2.0)

    def close(self) -> None:
        self.stop()
        self.core.close()

    def _sender(self, sock: socket.socket, peer, payload_type: int, seq: int) -> Send:
        faults = self.core.faults

        def send(payload: bytes) -> None:
            if self._sock is not sock:
                return
            length = len(payload) + (1 if faults.take("bad_header_replies") else 0)
            sock.sendto(_HEADER.pack(payload_type, length, seq) + payload, peer)
        return send

    def _run(self, sock: socket.socket) -> None:
        while self._sock is sock:
            try:
                data, peer = sock.recvfrom(2048)
            except socket.timeout:
                continue
            except OSError:
                return
            if self.core.faults.mute or len(data) < 9:
                continue
            ptype, length, seq = _HEADER.unpack_from(data)
            payload = data[8:]
            if length != len(payload):
                continue  # a broken datagram is ignored
            control = self._sender(sock, peer, 0x0200, seq)
            if ptype == 0x0200:
                if payload == b"\x01":
                    self.resets += 1
                    self._last_seq = None
                    self._sender(sock, peer, 0x0201, seq)(b"\x01")
                continue
            if ptype not in (0x0100, 0x0110):
                control(b"\x0f\x02")
                continue
            self.sequence_numbers.append(seq)
            if self.core.faults.take("sequence_errors") or seq == self._last_seq:
                control(b"\x0f\x01")
                continue
            self._last_seq = seq
            self.core.handle(payload, self._sender(sock, peer, 0x0111, seq))


def make_sim(camera: str = "left", seed: int = 0):
    """A :class:`SimulatedPtzCamera` of the package's rig (``config/sim_rig.yaml``)."""
    from ..drivers.simulated import default_rig_file
    from ..simulation import SimulatedPtzCamera, load_rig

    rig = load_rig(default_rig_file())
    return SimulatedPtzCamera(rig.cameras[camera], rig.scene, seed)


def main(argv: Optional[list[str]] = None) -> int:
    """``python -m ptz_calibration.emulators.visca [--transport ip|serial] [--port N]``."""
    import argparse

    parser = argparse.ArgumentParser(description="Serve one emulated VISCA camera (EVI-D70 units).")
    parser.add_argument("--transport", choices=("ip", "serial"), default="ip")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=52381, help="UDP port (transport ip; 0 = any)")
    parser.add_argument("--camera", default="left", help="camera of config/sim_rig.yaml")
    args = parser.parse_args(argv)
    core = ViscaCameraCore(make_sim(args.camera))
    if args.transport == "ip":
        server = ViscaIpEmulator(core, args.host, args.port)
        print(f"VISCA-over-IP camera emulator listening on udp://{args.host}:{server.port}\n"
              f"  ros2 run ptz_calibration ptz_driver --ros-args -p backend:=visca -p visca.transport:=ip "
              f"-p visca.host:={args.host} -p visca.ip_port:={server.port} -p publish_images:=false", flush=True)
    else:
        server = ViscaSerialEmulator(core)
        print(f"VISCA serial camera emulator on {server.device}\n"
              f"  ros2 run ptz_calibration ptz_driver --ros-args -p backend:=visca -p visca.transport:=serial "
              f"-p visca.port:={server.device} -p publish_images:=false", flush=True)
    try:
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
