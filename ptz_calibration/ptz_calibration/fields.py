"""Typed access to nested configuration mappings, with errors naming the file and the field."""

from __future__ import annotations

import math
from typing import Any, Mapping, Optional

import numpy as np

from .fileio import FileFieldError


class FieldReader:
    """One mapping of a parsed file; ``error`` is the exception class its failures raise.

    A key whose value is null counts as missing. Children and list items are readers of the same
    class, with dotted field names (``cameras.left.mechanics.pan.max_speed``, ``targets[2].type``).
    """

    error: type[FileFieldError] = FileFieldError

    def __init__(self, data: Any, source: str, prefix: str = "") -> None:
        self.source, self.prefix = source, prefix
        if not isinstance(data, Mapping):
            raise self.error(source, prefix, f"expected a mapping, got {type(data).__name__}")
        self.data = data

    def name(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else key

    def fail(self, key: str, problem: str) -> FileFieldError:
        return self.error(self.source, self.name(key), problem)

    def has(self, key: str) -> bool:
        return key in self.data and self.data[key] is not None

    def get(self, key: str, default: Any = ...) -> Any:
        if not self.has(key):
            if default is ...:
                raise self.fail(key, "missing")
            return default
        return self.data[key]

    def child(self, key: str, default: Any = ...) -> "FieldReader":
        return type(self)(self.get(key, default), self.source, self.name(key))

    def items(self, key: str, default: Any = ...) -> list["FieldReader"]:
        value = self.get(key, default)
        if not isinstance(value, list):
            raise self.fail(key, f"expected a list, got {type(value).__name__}")
        return [type(self)(v, self.source, f"{self.name(key)}[{i}]") for i, v in enumerate(value)]

    def number(self, key: str, default: Any = ..., minimum: Optional[float] = None,
               positive: bool = False) -> float:
        value = self.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.fail(key, f"expected a finite number, got {value!r}")
        if positive and not value > 0:
            raise self.fail(key, f"must be > 0, got {value!r}")
        if minimum is not None and value < minimum:
            raise self.fail(key, f"must be >= {minimum}, got {value!r}")
        return float(value)

    def optional_number(self, key: str, **kw: Any) -> Optional[float]:
        return self.number(key, **kw) if self.has(key) else None

    def integer(self, key: str, default: Any = ..., minimum: int = 1) -> int:
        value = self.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            wanted = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
            raise self.fail(key, f"expected {wanted}, got {value!r}")
        return int(value)

    def string(self, key: str, default: Any = ...) -> str:
        value = self.get(key, default)
        if not isinstance(value, str) or not value:
            raise self.fail(key, f"expected a non-empty string, got {value!r}")
        return value

    def vector(self, key: str, length: int, default: Any = ...) -> np.ndarray:
        value = self.get(key, default)
        if (not isinstance(value, (list, tuple)) or len(value) != length
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                           and math.isfinite(v) for v in value)):
            raise self.fail(key, f"expected {length} finite numbers, got {value!r}")
        return np.asarray(value, dtype=float)

    def check_keys(self, allowed: set[str]) -> None:
        unknown = sorted(set(self.data) - allowed)
        if unknown:
            raise self.fail(unknown[0], f"unknown field (expected one of {sorted(allowed)})")
