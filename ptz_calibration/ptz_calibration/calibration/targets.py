"""Calibration target descriptions: from a dict (dataset manifest), to a dict, and from a short string.

The targets themselves are the simulator's classes (:class:`Checkerboard`, :class:`CharucoTarget`),
so a board printed for the simulator and one described in a dataset are the same object.

Dict form (the ``target`` block of a dataset manifest; the same fields as a rig's scene targets,
without the pose)::

    {type: checkerboard, rows: 6, cols: 9, square: 0.025}           # inner corners, metres
    {type: charuco, squares_x: 10, squares_y: 7, square: 0.09, marker: 0.07,
     dictionary: DICT_5X5_100}                                       # optional: legacy_pattern

``rows`` x ``cols`` are *inner corners* (OpenCV's pattern size is ``(cols, rows)``), ChArUco
``squares_x`` x ``squares_y`` are *squares*. Optional for both: ``margin`` (white quiet zone, m).

Short form (command line): ``checkerboard:COLSxROWS:SQUARE`` (OpenCV's order, e.g.
``checkerboard:9x6:0.025``) and ``charuco:SQUARES_XxSQUARES_Y:SQUARE:MARKER[:DICTIONARY]``.
"""

from __future__ import annotations

import math
import re
from typing import Any, Mapping

import cv2

from ..simulation.targets import CharucoTarget, Checkerboard, Target

__all__ = [
    "Target",
    "Checkerboard",
    "CharucoTarget",
    "TargetSpecError",
    "target_from_dict",
    "target_to_dict",
    "parse_target",
    "describe_target",
]

_CHECKERBOARD_KEYS = ("type", "rows", "cols", "square", "margin")
_CHARUCO_KEYS = ("type", "squares_x", "squares_y", "square", "marker", "dictionary", "margin",
                 "legacy_pattern")


class TargetSpecError(ValueError):
    """An invalid target description; the message names the source and the field."""

    def __init__(self, source: str, field: str, problem: str) -> None:
        self.source, self.field, self.problem = source, field, problem
        where = f"field '{field}': " if field else ""
        super().__init__(f"{source}: {where}{problem}")


class _Fields:
    """Typed access to a target mapping; errors carry the dotted field name."""

    def __init__(self, data: Mapping[str, Any], source: str, prefix: str) -> None:
        self.data, self.source, self.prefix = data, source, prefix

    def fail(self, key: str, problem: str) -> TargetSpecError:
        return TargetSpecError(self.source, f"{self.prefix}.{key}" if self.prefix else key, problem)

    def integer(self, key: str, minimum: int) -> int:
        if key not in self.data:
            raise self.fail(key, "missing")
        value = self.data[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(key, f"expected an integer >= {minimum}, got {value!r}")
        return int(value)

    def number(self, key: str, optional: bool = False, minimum: float = 0.0,
               strict: bool = True) -> float | None:
        if key not in self.data or (optional and self.data[key] is None):
            if optional:
                return None
            raise self.fail(key, "missing")
        value = self.data[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or value < minimum or (strict and value == minimum):
            bound = f"> {minimum}" if strict else f">= {minimum}"
            raise self.fail(key, f"expected a finite number {bound} (metres), got {value!r}")
        return float(value)

    def check_keys(self, allowed: tuple[str, ...]) -> None:
        unknown = sorted(str(k) for k in self.data if k not in allowed)
        if unknown:
            raise self.fail(unknown[0], f"unknown field (allowed: {', '.join(allowed)})")


def target_from_dict(data: Any, source: str = "<target>", prefix: str = "") -> Target:
    """Build a target from its dict form; errors name ``source`` and the field (``prefix.key``)."""
    if not isinstance(data, Mapping):
        raise TargetSpecError(source, prefix, f"expected a mapping, got {type(data).__name__}")
    f = _Fields(data, source, prefix)
    kind = data.get("type")
    if kind == "checkerboard":
        f.check_keys(_CHECKERBOARD_KEYS)
        rows, cols = f.integer("rows", 2), f.integer("cols", 2)
        return Checkerboard(rows, cols, f.number("square"),  # type: ignore[arg-type]
                            f.number("margin", optional=True, strict=False))
    if kind == "charuco":
        f.check_keys(_CHARUCO_KEYS)
        sx, sy = f.integer("squares_x", 2), f.integer("squares_y", 2)
        square, marker = f.number("square"), f.number("marker")
        if marker >= square:  # type: ignore[operator]
            raise f.fail("marker", f"must be smaller than the square ({square}), got {marker}")
        dictionary = data.get("dictionary", "DICT_5X5_100")
        if not isinstance(dictionary, str) or not dictionary.startswith("DICT_") \
                or not hasattr(cv2.aruco, dictionary):
            raise f.fail("dictionary", f"unknown ArUco dictionary {dictionary!r} "
                                       "(an OpenCV name such as DICT_5X5_100)")
        legacy = data.get("legacy_pattern", False)
        if not isinstance(legacy, bool):
            raise f.fail("legacy_pattern", f"expected true or false, got {legacy!r}")
        try:
            return CharucoTarget(sx, sy, square, marker, dictionary,  # type: ignore[arg-type]
                                 f.number("margin", optional=True, strict=False), legacy)
        except ValueError as exc:  # e.g. too few markers in the dictionary
            raise f.fail("dictionary", str(exc)) from None
    raise f.fail("type", f"expected 'checkerboard' or 'charuco', got {kind!r}")


def target_to_dict(target: Target) -> dict[str, Any]:
    """The dict form of a target (inverse of :func:`target_from_dict`)."""
    if isinstance(target, Checkerboard):
        out: dict[str, Any] = {"type": "checkerboard", "rows": target.rows, "cols": target.cols,
                               "square": target.square}
    elif isinstance(target, CharucoTarget):
        out = {"type": "charuco", "squares_x": target.squares_x, "squares_y": target.squares_y,
               "square": target.square, "marker": target.marker, "dictionary": target.dictionary}
        if target.legacy_pattern:
            out["legacy_pattern"] = True
    else:
        raise TypeError(f"not a calibration target: {type(target).__name__}")
    if target.margin is not None:
        out["margin"] = target.margin
    return out


_SIZE = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")


def parse_target(text: str, source: str = "--board") -> Target:
    """Parse the short form ``checkerboard:9x6:0.025`` or ``charuco:10x7:0.09:0.07[:DICT]``."""
    parts = [p.strip() for p in text.split(":")]
    kind = parts[0].lower()
    usage = {"checkerboard": "checkerboard:COLSxROWS:SQUARE (inner corners, metres), "
                             "e.g. checkerboard:9x6:0.025",
             "charuco": "charuco:SQUARES_XxSQUARES_Y:SQUARE:MARKER[:DICTIONARY], "
                        "e.g. charuco:10x7:0.09:0.07:DICT_5X5_100"}
    if kind not in usage:
        raise TargetSpecError(source, "", f"{text!r}: expected {usage['checkerboard']} or {usage['charuco']}")
    counts = (3,) if kind == "checkerboard" else (4, 5)
    size = _SIZE.match(parts[1]) if len(parts) > 1 else None
    if len(parts) not in counts or size is None:
        raise TargetSpecError(source, "", f"{text!r}: expected {usage[kind]}")
    a, b = int(size.group(1)), int(size.group(2))
    try:
        numbers = [float(p) for p in parts[2:4]]
    except ValueError:
        raise TargetSpecError(source, "", f"{text!r}: sizes must be numbers; expected {usage[kind]}") from None
    if kind == "checkerboard":
        data: dict[str, Any] = {"type": kind, "cols": a, "rows": b, "square": numbers[0]}
    else:
        data = {"type": kind, "squares_x": a, "squares_y": b, "square": numbers[0], "marker": numbers[1]}
        if len(parts) == 5:
            data["dictionary"] = parts[4].upper()
    return target_from_dict(data, f"{source} {text!r}")


def describe_target(target: Target) -> str:
    """One line for reports, e.g. ``checkerboard 9x6 inner corners, 25.0 mm squares``."""
    if isinstance(target, Checkerboard):
        return (f"checkerboard {target.cols}x{target.rows} inner corners, "
                f"{target.square * 1e3:g} mm squares")
    return (f"ChArUco {target.squares_x}x{target.squares_y} squares ({target.dictionary}), "
            f"{target.square * 1e3:g} mm squares, {target.marker * 1e3:g} mm markers")
