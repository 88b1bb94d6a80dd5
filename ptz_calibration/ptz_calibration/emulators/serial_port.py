"""A pseudo-terminal pair standing in for a serial line: the emulator holds the master side,
the driver opens :attr:`PtyPort.device` (the slave side) like any ``/dev/tty*``."""

from __future__ import annotations

import os
import select
import termios
import tty
from typing import Optional


class PtyPort:
    """The master side of a raw pseudo-terminal (see the module docstring)."""

    def __init__(self) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave, termios.TCSANOW)
        tty.setraw(self._master, termios.TCSANOW)
        self.device = os.ttyname(self._slave)

    def read(self, max_size: int = 4096, timeout: Optional[float] = None) -> bytes:
        """Bytes the driver wrote (b"" when none came within ``timeout`` s; None = wait)."""
        ready, _, _ = select.select([self._master], [], [], timeout)
        if not ready:
            return b""
        try:
            return os.read(self._master, max_size)
        except OSError:  # the slave side was closed
            return b""

    def write(self, data: bytes) -> None:
        """Send ``data`` to the driver."""
        os.write(self._master, data)

    def fileno(self) -> int:
        return self._master

    def close(self) -> None:
        """Close both sides (idempotent)."""
        for fd in (self._master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass
        self._master = self._slave = -1
