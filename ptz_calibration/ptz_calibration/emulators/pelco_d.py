"""A Pelco-D receiver on a pseudo-terminal, with the mechanics of a simulated PTZ camera.

Written from the Pelco "D" Protocol Manual (TF-0002 v2.1: message format, standard command set,
extended commands, query responses) and Pelco manual C466M-E 5.2.4 (the 4-byte general
response, checksum = the command's checksum + the alarm byte); it does not import the driver's
encoder, so the wire tests compare two independent readings of the specification.

The emulated device ("datasheet"):

* address :attr:`PelcoDEmulator.address` (default 1); messages to other addresses are ignored,
  as on an RS-485 bus; messages with a bad checksum are ignored and counted;
* pan position in 1/100 deg growing clockwise seen from above (our pan is counter-clockwise);
  tilt position in 1/100 deg counted downwards from horizontal (0..9000 below, 27000..35999
  above); zoom position 0..65535 over the simulated lens' raw range;
* speed bytes: pan ``byte * 1.25`` deg/s (0x3F = 78.75 deg/s), turbo 0xFF = 85 deg/s; tilt
  ``byte * 1.0`` deg/s; zoom tele/wide at the lens' maximum speed (see
  ``config/pelco_d_sim.yaml``, the driver's table of this device);
* a general response after every non-query command (``general_response=False`` for the many
  devices that answer queries only);
* presets 1..255 (set, clear, go to).

Faults (:class:`Faults`, settable at run time): drop replies, wrong checksum, wrong address,
truncated replies, garbage bytes before replies, slow replies, and :meth:`disconnect`.

Disconnect: a pseudo-terminal's slave path cannot be re-created with the same name, so the
emulator publishes a stable *symbolic link* (like ``/dev/serial/by-id/...``), :attr:`device`,
to the current pty. :meth:`disconnect` stops answering, closes the pty (the driver's next read
or write fails with a serial error, EIO) and removes the link (reopening fails: no such file);
:meth:`reconnect` creates a new pty and points the link at it, so the driver's reconnection
finds the "device" again at the same path.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import signal
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..simulation import SimulatedPtzCamera
from .serial_port import PtyPort

PAN_DEG_PER_BYTE = 1.25
PAN_TURBO_DEG_S = 85.0
TILT_DEG_PER_BYTE = 1.0


@dataclass
class Faults:
    """Fault switches. Counts apply to the next N replies (-1 = every reply); times in s."""

    drop: int = 0  # replies not sent (the command is still executed)
    bad_checksum: int = 0  # replies with a wrong checksum
    wrong_address: int = 0  # replies from another address
    truncate: int = 0  # replies cut short
    garbage: int = 0  # replies preceded by random bytes
    delay: float = 0.0  # s before each reply
    ignore_commands: bool = False  # commands are answered but not executed


def _sum(body) -> int:
    return sum(body) % 256


class PelcoDEmulator:
    """The camera side of Pelco-D over a pty (see the module docstring). Use as a context manager."""

    def __init__(self, camera: SimulatedPtzCamera, address: int = 1, general_response: bool = True,
                 baudrate: int = 9600, link: Optional[str | Path] = None, seed: int = 0) -> None:
        self.camera = camera
        self.address = address
        self.general_response = general_response
        self.baudrate = baudrate  # line time of replies is simulated (0 = instant)
        self.faults = Faults()
        self._rng = random.Random(seed)
        if link is None:
            self._tmpdir: Optional[str] = tempfile.mkdtemp(prefix="pelco_d_")
            link = Path(self._tmpdir) / "ttyPELCO"
        else:
            self._tmpdir = None
        self.device = str(link)
        m = camera.spec.mechanics
        self._zoom_min, self._zoom_max, self._zoom_speed = m.zoom.min, m.zoom.max, m.zoom.max_speed
        self.presets: dict[int, tuple[float, float, float]] = {}
        self.received: list[bytes] = []  # every valid message to our address, in order
        self.replies: list[bytes] = []  # every reply sent (after faults)
        self.bad_checksums = 0
        self.other_addresses = 0
        self.garbage_bytes = 0
        self._lock = threading.Lock()
        self._buffer = b""
        self._port: Optional[PtyPort] = None
        self._running = False
        self._thread: Optional[threading.Thread] = None

    # -- life cycle ----------------------------------------------------------------------------------

    def start(self) -> "PelcoDEmulator":
        self._running = True
        self._open()
        self._thread = threading.Thread(target=self._serve, name="pelco_d_emulator", daemon=True)
        self._thread.start()
        return self

    def _open(self) -> None:
        port = PtyPort()
        tmp = f"{self.device}.new"
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(port.device, tmp)
        os.replace(tmp, self.device)  # atomic: the path always names a pty or nothing
        with self._lock:
            self._port, self._buffer = port, b""

    def disconnect(self) -> None:
        """Stop answering, close the pty (serial error on the driver's side) and remove the link."""
        with self._lock:
            port, self._port = self._port, None
        if os.path.lexists(self.device):
            os.unlink(self.device)
        if port is not None:
            port.close()

    def reconnect(self) -> None:
        """A new pty behind the same :attr:`device` path."""
        if self._port is None:
            self._open()

    @property
    def connected(self) -> bool:
        return self._port is not None

    def close(self) -> None:
        self._running = False
        self.disconnect()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        if self._tmpdir is not None:
            try:
                os.rmdir(self._tmpdir)
            except OSError:
                pass

    def __enter__(self) -> "PelcoDEmulator":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- serving -------------------------------------------------------------------------------------

    def _serve(self) -> None:
        while self._running:
            port = self._port
            if port is None:
                time.sleep(0.01)
                continue
            try:
                data = port.read(4096, timeout=0.05)
            except (OSError, ValueError):  # closed under us by disconnect()
                continue
            if not data:
                continue
            self._buffer += data
            for message in self._frames():
                self._handle(message, port)

    def _frames(self) -> list[bytes]:
        """Complete, checked 7-byte messages in the buffer (garbage and bad frames skipped)."""
        out = []
        buf = self._buffer
        while True:
            start = buf.find(b"\xff")
            if start < 0:
                self.garbage_bytes += len(buf)
                buf = b""
                break
            self.garbage_bytes += start
            buf = buf[start:]
            if len(buf) < 7:
                break
            candidate = buf[:7]
            if _sum(candidate[1:6]) != candidate[6]:
                self.bad_checksums += 1
                buf = buf[1:]
                continue
            buf = buf[7:]
            if candidate[1] != self.address:
                self.other_addresses += 1
                continue
            out.append(candidate)
        self._buffer = buf
        return out

    def _handle(self, message: bytes, port: PtyPort) -> None:
        self.received.append(message)
        _, _, cmd1, cmd2, data1, data2, checksum = message
        value = (data1 << 8) | data2
        if cmd2 in (0x51, 0x53, 0x55):  # queries
            fb = self.camera.feedback()
            position = {0x51: self._pan_to_device(fb.pan), 0x53: self._tilt_to_device(fb.tilt),
                        0x55: self._zoom_to_device(fb.zoom_raw)}[cmd2]
            reply_code = cmd2 + 8  # 0x59, 0x5B, 0x5D
            body = [self.address, 0x00, reply_code, position >> 8, position & 0xFF]
            self._reply(port, bytes([0xFF, *body, _sum(body)]))
            return
        if not self.faults.ignore_commands:
            self._execute(cmd1, cmd2, data1, data2, value)
        if self.general_response:
            alarm = 0
            self._reply(port, bytes([0xFF, self.address, alarm, (checksum + alarm) % 256]))

    def _execute(self, cmd1: int, cmd2: int, data1: int, data2: int, value: int) -> None:
        cam = self.camera
        if cmd2 & 0x01:  # extended command
            if cmd2 == 0x03 and data2:
                fb = cam.feedback()
                self.presets[data2] = (fb.pan, fb.tilt, fb.zoom_raw)
            elif cmd2 == 0x05:
                self.presets.pop(data2, None)
            elif cmd2 == 0x07 and data2 in self.presets:
                cam.move_absolute(*self.presets[data2])
            elif cmd2 == 0x4B and value < 36000:
                cam.move_absolute(self._pan_from_device(value), None, None)
            elif cmd2 == 0x4D and value < 36000:
                cam.move_absolute(None, self._tilt_from_device(value), None)
            elif cmd2 == 0x4F:
                cam.move_absolute(None, None, self._zoom_min + (self._zoom_max - self._zoom_min) * value / 65535)
            return
        # standard command: bit 1 right, bit 2 left, bit 3 up, bit 4 down, bit 5 tele, bit 6 wide
        if cmd1 == 0 and cmd2 == 0:
            cam.stop()
            return
        pan_deg_s = PAN_TURBO_DEG_S if data1 == 0xFF else min(data1, 0x3F) * PAN_DEG_PER_BYTE
        tilt_deg_s = min(data2, 0x3F) * TILT_DEG_PER_BYTE
        pan = -pan_deg_s if cmd2 & 0x02 else pan_deg_s if cmd2 & 0x04 else 0.0  # right = clockwise = our -
        tilt = tilt_deg_s if cmd2 & 0x08 else -tilt_deg_s if cmd2 & 0x10 else 0.0
        zoom = self._zoom_speed if cmd2 & 0x20 else -self._zoom_speed if cmd2 & 0x40 else 0.0
        cam.move_velocity(math.radians(pan), math.radians(tilt), zoom)

    def _reply(self, port: PtyPort, reply: bytes) -> None:
        f = self.faults
        if f.delay > 0:
            time.sleep(f.delay)
        if self._take("drop"):
            return
        if self._take("bad_checksum"):
            reply = reply[:-1] + bytes([(reply[-1] + 1) % 256])
        if self._take("wrong_address"):
            other = self.address % 255 + 1
            body = bytearray(reply[1:-1])
            body[0] = other
            # a query reply's checksum covers the address; a general response's does not (C466M-E)
            fixed = (reply[-1] - self.address + other) % 256 if len(reply) == 7 else reply[-1]
            reply = bytes([0xFF, *body, fixed])
        if self._take("truncate"):
            reply = reply[:len(reply) - 2]
        if self._take("garbage"):
            junk = bytes(self._rng.randrange(256) for _ in range(self._rng.randint(1, 6)))
            reply = junk + reply
        if self.baudrate:
            time.sleep(len(reply) * 10.0 / self.baudrate)  # 8N1: 10 bits a byte
        self.replies.append(reply)
        try:
            port.write(reply)
        except OSError:
            pass  # disconnected meanwhile

    def _take(self, name: str) -> bool:
        n = getattr(self.faults, name)
        if n == 0:
            return False
        if n > 0:
            setattr(self.faults, name, n - 1)
        return True

    # -- units of this device -------------------------------------------------------------------------

    @staticmethod
    def _pan_to_device(pan: float) -> int:
        return int(round(-math.degrees(pan) * 100.0)) % 36000

    @staticmethod
    def _pan_from_device(value: int) -> float:
        deg = value / 100.0
        return -math.radians(deg if deg <= 180.0 else deg - 360.0)

    _tilt_to_device = _pan_to_device  # counted downwards: the same sign flip
    _tilt_from_device = _pan_from_device

    def _zoom_to_device(self, zoom_raw: float) -> int:
        f = (zoom_raw - self._zoom_min) / (self._zoom_max - self._zoom_min)
        return int(round(min(max(f, 0.0), 1.0) * 65535))


def make_camera(camera: str = "left", rig_file: Optional[str] = None, seed: int = 0) -> SimulatedPtzCamera:
    """A simulated camera of the package's rig (or ``rig_file``)."""
    from ..drivers.simulated import default_rig_file
    from ..simulation import load_rig

    rig = load_rig(rig_file or default_rig_file())
    return SimulatedPtzCamera(rig.cameras[camera], rig.scene, seed)


def _interrupt(*_args: object) -> None:
    raise KeyboardInterrupt


def main(argv: Optional[list[str]] = None) -> int:
    """``python -m ptz_calibration.emulators.pelco_d``: serve one emulated camera until Ctrl-C."""
    parser = argparse.ArgumentParser(description="A Pelco-D receiver on a pseudo-terminal (simulated camera).")
    parser.add_argument("--camera", default="left", help="camera of the rig (default: left)")
    parser.add_argument("--rig", default=None, help="rig YAML (default: the package's sim_rig.yaml)")
    parser.add_argument("--address", type=int, default=1)
    parser.add_argument("--link", default=None, help="path of the stable device link (default: a temporary one)")
    parser.add_argument("--baudrate", type=int, default=9600, help="simulated line speed of replies (0 = instant)")
    parser.add_argument("--no-general-response", action="store_true", help="answer queries only")
    args = parser.parse_args(argv)
    emulator = PelcoDEmulator(make_camera(args.camera, args.rig), args.address, not args.no_general_response,
                              args.baudrate, args.link)
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` cleans up the device link like Ctrl-C
    with emulator:
        print(f"Pelco-D emulator (camera {args.camera!r}, address {args.address}) on {emulator.device}", flush=True)
        print("try: ros2 run ptz_calibration ptz_driver --ros-args -p backend:=pelco_d "
              f"--params-file config/pelco_d_sim.yaml -p pelco_d.port:={emulator.device} "
              f"-p pelco_d.address:={args.address} -p camera_name:={args.camera} -p publish_images:=false", flush=True)
        try:
            while True:
                time.sleep(1.0)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
