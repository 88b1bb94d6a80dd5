"""diagnostic_msgs helpers: rates over a reporting period and one camera's status."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

#: Levels as ints (the message constants are single bytes).
OK, WARN, ERROR, STALE = (ord(level) for level in (DiagnosticStatus.OK, DiagnosticStatus.WARN,
                                                    DiagnosticStatus.ERROR, DiagnosticStatus.STALE))


@dataclass
class Counter:
    """A monotonically increasing count and its increase since the last :meth:`delta` call."""

    total: int = 0
    _seen: int = field(default=0, repr=False)

    def delta(self, current: int | None = None) -> int:
        """Increase since the previous call (``current`` updates ``total`` first)."""
        if current is not None:
            self.total = current
        d, self._seen = self.total - self._seen, self.total
        return d


def status(name: str, hardware_id: str, level: int, message: str, values: dict[str, Any]) -> DiagnosticStatus:
    """A ``DiagnosticStatus`` with ``values`` as string key-values (floats with 6 significant digits)."""
    def text(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, float):
            return f"{v:.6g}"
        return str(v)
    return DiagnosticStatus(level=bytes([level]), name=name, hardware_id=hardware_id, message=message,
                            values=[KeyValue(key=k, value=text(v)) for k, v in values.items()])


def worst(levels: list[tuple[int, str]]) -> tuple[int, str]:
    """The highest level and every message, those of that level first, joined with '; ' (OK 'ok'
    when empty): a lesser problem (failed reads) is not hidden by a worse one (stale feedback)."""
    if not levels:
        return OK, "ok"
    top = max(level for level, _ in levels)
    ordered = sorted(levels, key=lambda item: -item[0])  # stable: same-level messages keep their order
    return top, "; ".join(msg for _, msg in ordered)
