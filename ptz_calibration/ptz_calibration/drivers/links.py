"""Byte links to PTZ devices: serial lines (pyserial) and UDP datagrams, with timeouts.

Every protocol backend talks through one of these, so that timeouts and lost links surface as
:class:`~.interface.DriverTimeout` / :class:`~.interface.DriverConnectionError` everywhere, and
tests can put an emulator on a pseudo-terminal or a loopback socket behind the same code.

* :class:`SerialLink` opens anything ``serial.serial_for_url`` opens: a device (``/dev/ttyUSB0``),
  a pseudo-terminal (emulators), ``socket://host:port`` (serial-over-TCP servers, common for
  RS-485 gateways) or ``loop://``.
* :class:`UdpLink` is a connected UDP socket (VISCA over IP).

Pure Python (no rclpy). Not thread-safe by themselves: a backend serializes its exchanges with
its own lock.
"""

from __future__ import annotations

import abc
import socket
import termios
import time
from typing import Optional

from .interface import DriverConnectionError, DriverTimeout


class Link(abc.ABC):
    """A byte link that can be opened, closed, written and read with a deadline."""

    @property
    @abc.abstractmethod
    def is_open(self) -> bool:
        """True while the link is open."""

    @abc.abstractmethod
    def open(self) -> None:
        """Open the link; :class:`DriverConnectionError` when that fails."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close the link (idempotent)."""

    @abc.abstractmethod
    def write(self, data: bytes) -> None:
        """Send ``data``; :class:`DriverConnectionError` when the link is gone."""

    @abc.abstractmethod
    def discard_input(self) -> None:
        """Drop whatever has been received and not read (stale replies)."""


class SerialLink(Link):
    """A serial line through pyserial (see the module docstring)."""

    def __init__(self, port: str, baudrate: int = 9600, timeout: float = 0.2) -> None:
        self.port = port
        self.baudrate = int(baudrate)
        self.timeout = float(timeout)
        self._serial = None

    @property
    def is_open(self) -> bool:
        return self._serial is not None and self._serial.is_open

    def open(self) -> None:
        if self.is_open:
            return
        try:
            import serial  # pyserial
        except ImportError as exc:  # pragma: no cover - pyserial is a dependency
            raise DriverConnectionError("pyserial is not installed (pip install pyserial)") from exc
        try:
            self._serial = serial.serial_for_url(self.port, baudrate=self.baudrate, timeout=self.timeout,
                                                 write_timeout=self.timeout)
        except (serial.SerialException, OSError, ValueError, termios.error) as exc:
            self._serial = None
            raise DriverConnectionError(f"cannot open serial port {self.port!r}: {exc}") from None

    def close(self) -> None:
        ser, self._serial = self._serial, None
        if ser is not None:
            try:
                ser.close()
            except Exception:  # noqa: BLE001 - closing a broken port must not raise
                pass

    def _port(self):
        if not self.is_open:
            raise DriverConnectionError(f"serial port {self.port!r} is not open")
        return self._serial

    def write(self, data: bytes) -> None:
        import serial

        try:
            self._port().write(data)
            self._port().flush()
        except serial.SerialTimeoutException:
            raise DriverTimeout(f"write to {self.port!r} timed out") from None
        except (serial.SerialException, OSError, termios.error) as exc:
            self.close()
            raise DriverConnectionError(f"serial port {self.port!r} lost: {exc}") from None

    def read_until(self, terminator: bytes, max_size: int, timeout: Optional[float] = None) -> bytes:
        """Bytes up to and including ``terminator`` (at most ``max_size``); :class:`DriverTimeout` if none."""
        return self._read(lambda buf: buf.endswith(terminator) or len(buf) >= max_size, timeout,
                          f"a reply ending in {terminator.hex()}")

    def read_exact(self, size: int, timeout: Optional[float] = None) -> bytes:
        """Exactly ``size`` bytes; :class:`DriverTimeout` if they do not all come in time."""
        return self._read(lambda buf: len(buf) >= size, timeout, f"{size} bytes")

    def _read(self, done, timeout: Optional[float], what: str) -> bytes:
        import serial

        ser = self._port()
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        buf = bytearray()
        try:
            while not done(buf):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise DriverTimeout(f"no {what} from {self.port!r} within "
                                        f"{self.timeout if timeout is None else timeout:g} s"
                                        + (f" (got {bytes(buf).hex()})" if buf else ""))
                ser.timeout = left
                chunk = ser.read(1)
                if chunk:
                    buf += chunk
        except (serial.SerialException, OSError, termios.error) as exc:
            self.close()
            raise DriverConnectionError(f"serial port {self.port!r} lost: {exc}") from None
        return bytes(buf)

    def read_available(self) -> bytes:
        """Whatever has been received and not read yet, without waiting (b"" when nothing)."""
        import serial

        try:
            ser = self._port()
            waiting = ser.in_waiting
            return ser.read(waiting) if waiting else b""
        except (serial.SerialException, OSError, termios.error) as exc:
            self.close()
            raise DriverConnectionError(f"serial port {self.port!r} lost: {exc}") from None

    def discard_input(self) -> None:
        import serial

        try:
            self._port().reset_input_buffer()
        except (serial.SerialException, OSError, termios.error) as exc:
            self.close()
            raise DriverConnectionError(f"serial port {self.port!r} lost: {exc}") from None


class UdpLink(Link):
    """A UDP socket connected to ``(host, port)``: datagrams out, datagrams in."""

    def __init__(self, host: str, port: int, timeout: float = 0.2, local_port: int = 0) -> None:
        self.host = host
        self.port = int(port)
        self.timeout = float(timeout)
        self.local_port = int(local_port)
        self._sock: Optional[socket.socket] = None

    @property
    def is_open(self) -> bool:
        return self._sock is not None

    def open(self) -> None:
        if self._sock is not None:
            return
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            if self.local_port:
                sock.bind(("", self.local_port))
            sock.connect((self.host, self.port))
        except OSError as exc:
            raise DriverConnectionError(f"cannot open UDP link to {self.host}:{self.port}: {exc}") from None
        self._sock = sock

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def _socket(self) -> socket.socket:
        if self._sock is None:
            raise DriverConnectionError(f"UDP link to {self.host}:{self.port} is not open")
        return self._sock

    def write(self, data: bytes) -> None:
        try:
            self._socket().send(data)
        except OSError as exc:
            raise DriverConnectionError(f"UDP send to {self.host}:{self.port} failed: {exc}") from None

    def receive(self, timeout: Optional[float] = None, max_size: int = 2048) -> bytes:
        """One datagram; :class:`DriverTimeout` when none comes in time.

        An ICMP "port unreachable" from the peer (nothing listening) surfaces as
        :class:`DriverConnectionError`.
        """
        sock = self._socket()
        sock.settimeout(self.timeout if timeout is None else max(timeout, 1e-4))
        try:
            return sock.recv(max_size)
        except socket.timeout:
            raise DriverTimeout(f"no datagram from {self.host}:{self.port} within "
                                f"{self.timeout if timeout is None else timeout:g} s") from None
        except ConnectionRefusedError:
            raise DriverConnectionError(f"{self.host}:{self.port} refused (nothing listening?)") from None
        except OSError as exc:
            raise DriverConnectionError(f"UDP receive from {self.host}:{self.port} failed: {exc}") from None

    def discard_input(self) -> None:
        sock = self._socket()
        sock.setblocking(False)
        try:
            while True:
                sock.recv(2048)
        except (BlockingIOError, OSError):
            pass
        finally:
            sock.setblocking(True)
