"""PNG charts drawn with OpenCV and numpy only (no matplotlib).

Every chart function returns the bytes of a PNG image: line/scatter plots with error bars and an
optional log y axis (:func:`line_plot`), grouped bar charts (:func:`bar_plot`), scatter plots
coloured by a third value (:func:`color_scatter_plot`) and the density of points over an image
(:func:`density_plot`). Non-finite values are skipped; an empty chart says "no data".

```python
png = line_plot([Series(zoom, fx, "fx", marker=True, line=False, yerr=std),
                 Series(zc, fc, "fx curve")], title="Focal length", xlabel="zoom", log_y=True)
```
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import cv2
import numpy as np

Color = tuple[int, int, int]
"""A colour as OpenCV wants it: (blue, green, red), 0-255."""


def rgb(hex_code: str) -> Color:
    """The BGR colour of a ``#rrggbb`` string."""
    value = int(hex_code.lstrip("#"), 16)
    return (value & 0xFF, (value >> 8) & 0xFF, value >> 16)


PALETTE: tuple[Color, ...] = tuple(rgb(c) for c in (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf"))
"""Series colours (the tab10 palette), used in turn when a series has none."""

RED: Color = rgb("#d62728")
GREY: Color = rgb("#7f7f7f")
BLACK: Color = (0, 0, 0)
_WHITE: Color = (255, 255, 255)
_GRID: Color = (232, 232, 232)
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_TEXT_SCALE = 0.42
_TITLE_SCALE = 0.55
_SHIFT = 4  # sub-pixel bits of the drawing calls
_ONE = 1 << _SHIFT


@dataclass(frozen=True)
class Series:
    """One data series of a :func:`line_plot`: a line and/or markers, optional y error bars."""

    x: Sequence[float]
    y: Sequence[float]
    label: str = ""
    color: Optional[Color] = None
    line: bool = True
    marker: bool = False
    yerr: Optional[Sequence[Optional[float]]] = None
    hollow: bool = False
    shape: str = "o"  # marker: o circle, s square, d diamond, ^ triangle
    size: float = 3.5  # marker radius in pixels
    thickness: int = 2  # line width in pixels


# -- ticks ------------------------------------------------------------------------------------


def nice_ticks(lo: float, hi: float, count: int = 6) -> list[float]:
    """About ``count`` round tick values (steps of 1, 2, 2.5 or 5 times a power of ten) from at
    or below ``lo`` to at or above ``hi``."""
    lo, hi = float(lo), float(hi)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0, 1.0]
    lo, hi = min(lo, hi), max(lo, hi)
    if hi - lo <= 1e-12 * max(1.0, abs(lo), abs(hi)):
        pad = abs(lo) * 0.1 if lo != 0.0 else 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(count - 1, 1)
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * magnitude >= raw * (1 - 1e-9))
    first = math.floor(lo / step + 1e-9)
    last = math.ceil(hi / step - 1e-9)
    return [_clean(i * step) for i in range(first, last + 1)]


def log_ticks(lo: float, hi: float) -> list[float]:
    """Tick values 1, 2, 5 times powers of ten (powers of ten only beyond 3 decades), from at or
    below ``lo`` to at or above ``hi``; both must be positive."""
    lo, hi = float(lo), float(hi)
    if not (lo > 0.0 and hi > 0.0 and math.isfinite(lo) and math.isfinite(hi)):
        return [1.0, 10.0]
    lo, hi = min(lo, hi), max(lo, hi)
    if hi <= lo * (1 + 1e-12):
        lo, hi = lo / 2.0, hi * 2.0
    k0, k1 = math.floor(math.log10(lo) + 1e-9), math.ceil(math.log10(hi) - 1e-9)
    mantissas = (1, 2, 5) if k1 - k0 <= 3 else (1,)
    candidates = sorted(float(f"{m}e{k}") for k in range(k0, k1 + 1) for m in mantissas)
    start = max(c for c in candidates if c <= lo * (1 + 1e-9))
    end = min(c for c in candidates if c >= hi * (1 - 1e-9))
    return [c for c in candidates if start <= c <= end]


def tick_labels(ticks: Sequence[float]) -> list[str]:
    """Labels of tick values, all with the same number of decimals (the fewest that show them)."""
    values = [float(t) for t in ticks]
    if not values:
        return []
    largest = max(abs(v) for v in values)
    if largest >= 1e6 or 0.0 < largest < 1e-3:
        return [f"{v:.3g}" for v in values]
    decimals = next((d for d in range(7) if all(abs(round(v, d) - v) <= 1e-9 * max(1.0, largest)
                                                 for v in values)), 6)
    labels = [f"{v:.{decimals}f}" for v in values]
    return [label.lstrip("-") if float(label) == 0.0 else label for label in labels]


def _clean(value: float) -> float:
    """``value`` without floating-point dust (0.30000000000000004 -> 0.3), never -0.0."""
    cleaned = float(f"{value:.12g}")
    return 0.0 if cleaned == 0.0 else cleaned


# -- axes -------------------------------------------------------------------------------------


def _finite(*arrays: np.ndarray) -> np.ndarray:
    """Mask of the entries finite in every array."""
    mask = np.ones(len(arrays[0]), dtype=bool)
    for a in arrays:
        mask &= np.isfinite(a)
    return mask


def _as_array(values: Optional[Sequence[Optional[float]]], n: int) -> np.ndarray:
    """``values`` as a float array of length ``n``; None entries (or no values) become NaN."""
    out = np.full(n, np.nan)
    if values is None:
        return out
    for i, v in enumerate(list(values)[:n]):
        try:
            out[i] = float(v) if v is not None else np.nan
        except (TypeError, ValueError):
            pass
    return out


@dataclass
class _Axis:
    """One axis: its limits, ticks and whether it is logarithmic."""

    lo: float
    hi: float
    ticks: list[float]
    log: bool = False

    def unit(self, values: np.ndarray) -> np.ndarray:
        """Values mapped to 0 (``lo``) .. 1 (``hi``)."""
        f = (lambda v: np.log10(np.where(v > 0, v, np.nan))) if self.log else (lambda v: v)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (f(np.asarray(values, float)) - f(np.float64(self.lo))) / (
                f(np.float64(self.hi)) - f(np.float64(self.lo)))


def _axis(values: np.ndarray, log: bool = False, margin: float = 0.04,
          include: Sequence[float] = ()) -> _Axis:
    """An axis covering ``values`` (and ``include``) with a small margin and round ticks."""
    v = np.concatenate([np.asarray(values, float).ravel(), np.asarray(include, float)])
    v = v[np.isfinite(v) & ((v > 0) if log else True)]
    if v.size == 0:
        return _Axis(1.0, 10.0, [1.0, 10.0], True) if log else _Axis(0.0, 1.0, nice_ticks(0, 1))
    lo, hi = float(v.min()), float(v.max())
    if log:
        llo, lhi = math.log10(lo), math.log10(hi)
        if lhi - llo < 1e-9:
            llo, lhi = llo - 0.1, lhi + 0.1
        pad = (lhi - llo) * margin
        return _limits(10.0 ** (llo - pad), 10.0 ** (lhi + pad), True)
    if hi - lo <= 1e-12 * max(1.0, abs(lo), abs(hi)):
        ticks = nice_ticks(lo, hi)
        return _Axis(ticks[0], ticks[-1], ticks)
    pad = (hi - lo) * margin
    return _limits(lo - pad, hi + pad)


def _limits(lo: float, hi: float, log: bool = False) -> _Axis:
    """An axis from ``lo`` to ``hi`` with the round ticks between them."""
    tol = 1e-9 * (hi - lo)
    if log:
        ticks = [t for t in log_ticks(lo, hi) if lo <= t <= hi]
        if len(ticks) < 2:  # less than a decade: round linear values read fine on a log axis
            ticks = [t for t in nice_ticks(lo, hi, 5) if lo <= t <= hi and t > 0]
        return _Axis(lo, hi, ticks, True)
    return _Axis(lo, hi, [t for t in nice_ticks(lo, hi) if lo - tol <= t <= hi + tol])


def _headroom(axis: _Axis, fraction: float) -> _Axis:
    """``axis`` extended upwards so that its old range fills the lower ``1 - fraction``."""
    fraction = min(max(fraction, 0.0), 0.6)
    if axis.log:
        llo, lhi = math.log10(axis.lo), math.log10(axis.hi)
        return _limits(axis.lo, 10.0 ** (llo + (lhi - llo) / (1.0 - fraction)), True)
    return _limits(axis.lo, axis.lo + (axis.hi - axis.lo) / (1.0 - fraction))


_ASCII = {"\u2212": "-", "\u2013": "-", "\u2014": "-", "\u00d7": "x", "\u00b0": " deg", "\u00b5": "u",
          "\u03bc": "u", "\u2026": "...", "\u00b1": "+/-", "\u2248": "~", "\u2264": "<=", "\u2265": ">="}


def _ascii(text: str) -> str:
    """``text`` in the ASCII the Hershey fonts can draw (common symbols spelled out, others "?")."""
    return "".join(_ASCII.get(c, c if " " <= c <= "~" else "?") for c in str(text))


LegendEntry = tuple[str, Color, bool, bool, bool, str]
"""A legend row: label, colour, line, marker, hollow marker, marker shape."""


class _Canvas:
    """A white image with a plot rectangle, the x/y axes mapping data into it, and text helpers."""

    def __init__(self, size: tuple[int, int], x: _Axis, y: _Axis, right: int = 16,
                 flip_y: bool = False, plot_rect: Optional[tuple[int, int, int, int]] = None):
        width, height = int(size[0]), int(size[1])
        self.image = np.full((height, width, 3), 255, np.uint8)
        self.x, self.y, self.flip_y = x, y, flip_y
        ylabels = tick_labels(y.ticks)
        left = 26 + max([self.text_size(t)[0] for t in ylabels] + [10]) + 10
        self.rect = plot_rect or (left, 34, width - right, height - 44)  # x0, y0, x1, y1

    def to_px(self, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        """Data points -> (N, 2) pixel coordinates (float; NaN where not drawable)."""
        x0, y0, x1, y1 = self.rect
        u, v = self.x.unit(xs), self.y.unit(ys)
        if self.flip_y:
            v = 1.0 - v
        return np.stack([x0 + u * (x1 - x0), y1 - v * (y1 - y0)], axis=-1)

    @staticmethod
    def text_size(text: str, scale: float = _TEXT_SCALE) -> tuple[int, int]:
        """Width and height of ``text`` in pixels."""
        (w, h), _ = cv2.getTextSize(_ascii(text), _FONT, scale, 1)
        return w, h

    def text(self, text: str, x: float, y: float, anchor: str = "lb", scale: float = _TEXT_SCALE,
             color: Color = BLACK, thickness: int = 1) -> None:
        """Draw ``text``; ``anchor`` is horizontal l/c/r then vertical t/c/b of the point x, y."""
        w, h = self.text_size(text, scale)
        dx = {"l": 0, "c": -w / 2, "r": -w}[anchor[0]]
        dy = {"t": h, "c": h / 2, "b": 0}[anchor[1]]
        cv2.putText(self.image, _ascii(text), (int(round(x + dx)), int(round(y + dy))), _FONT, scale, color,
                    thickness, cv2.LINE_AA)

    def vertical_text(self, text: str, x: float, y: float) -> None:
        """Draw ``text`` rotated by 90 degrees (reading upwards) centred on x, y."""
        w, h = self.text_size(text)
        strip = np.full((h + 8, w + 4, 3), 255, np.uint8)
        cv2.putText(strip, _ascii(text), (2, h + 2), _FONT, _TEXT_SCALE, BLACK, 1, cv2.LINE_AA)
        strip = cv2.rotate(strip, cv2.ROTATE_90_COUNTERCLOCKWISE)
        top, left = int(round(y - strip.shape[0] / 2)), int(round(x - strip.shape[1] / 2))
        top, left = max(top, 0), max(left, 0)
        region = self.image[top:top + strip.shape[0], left:left + strip.shape[1]]
        region[...] = np.minimum(region, strip[:region.shape[0], :region.shape[1]])

    def grid(self) -> None:
        """Light grid lines at the ticks."""
        x0, y0, x1, y1 = self.rect
        for t in self.x.ticks:
            px = self.to_px(np.array([t]), np.array([np.nan]))[0, 0]
            cv2.line(self.image, (int(round(px)), y0), (int(round(px)), y1), _GRID, 1)
        for t in self.y.ticks:
            py = self.to_px(np.array([np.nan]), np.array([t]))[0, 1]
            cv2.line(self.image, (x0, int(round(py))), (x1, int(round(py))), _GRID, 1)

    def frame(self, title: str, xlabel: str, ylabel: str, x_ticks: bool = True) -> None:
        """Blank the margins (clips the data), then draw the frame, ticks, labels and title."""
        x0, y0, x1, y1 = self.rect
        height, width = self.image.shape[:2]
        for a, b in (((0, 0), (width, y0 - 1)), ((0, y1 + 1), (width, height)),
                     ((0, 0), (x0 - 1, height)), ((x1 + 1, 0), (width, height))):
            cv2.rectangle(self.image, a, b, _WHITE, -1)
        cv2.rectangle(self.image, (x0, y0), (x1, y1), GREY, 1)
        if x_ticks:
            for t, label in zip(self.x.ticks, tick_labels(self.x.ticks)):
                px = int(round(self.to_px(np.array([t]), np.array([np.nan]))[0, 0]))
                cv2.line(self.image, (px, y1), (px, y1 + 4), GREY, 1)
                self.text(label, px, y1 + 7, "ct")
        for t, label in zip(self.y.ticks, tick_labels(self.y.ticks)):
            py = int(round(self.to_px(np.array([np.nan]), np.array([t]))[0, 1]))
            cv2.line(self.image, (x0 - 4, py), (x0, py), GREY, 1)
            self.text(label, x0 - 7, py, "rc")
        if xlabel:
            self.text(xlabel, (x0 + x1) / 2, height - 6, "cb")
        if ylabel:
            self.vertical_text(ylabel, 10, (y0 + y1) / 2)
        if title:
            self.text(title, width / 2, 8, "ct", _TITLE_SCALE)

    def no_data(self) -> None:
        """Say that there is nothing to plot."""
        x0, y0, x1, y1 = self.rect
        self.text("no data", (x0 + x1) / 2, (y0 + y1) / 2, "cc", _TITLE_SCALE, GREY)

    def legend_size(self, entries: Sequence[LegendEntry]) -> tuple[int, int, int]:
        """Width, height and row height of the legend box of ``entries`` (0, 0, 0 without labels)."""
        labels = [e[0] for e in entries if e[0]]
        if not labels:
            return 0, 0, 0
        row = self.text_size("Ag")[1] + 9
        return max(self.text_size(t)[0] for t in labels) + 42, row * len(labels) + 6, row

    def legend_place(self, entries: Sequence[LegendEntry], avoid: np.ndarray) -> tuple[int, int, int]:
        """The corner (x, y) of the legend box with the fewest ``avoid`` pixel points under it,
        and their number; top corners first."""
        w, h, _ = self.legend_size(entries)
        x0, y0, x1, y1 = self.rect
        corners = [(x1 - w - 6, y0 + 6), (x0 + 6, y0 + 6), (x1 - w - 6, y1 - h - 6), (x0 + 6, y1 - h - 6)]
        pts = avoid[_finite(avoid[:, 0], avoid[:, 1])] if len(avoid) else np.zeros((0, 2))
        pad = 4
        crowd = [int(np.sum((pts[:, 0] >= cx - pad) & (pts[:, 0] <= cx + w + pad) & (pts[:, 1] >= cy - pad)
                            & (pts[:, 1] <= cy + h + pad))) for cx, cy in corners]
        best = int(np.argmin(crowd))
        return corners[best][0], corners[best][1], crowd[best]

    def legend(self, entries: Sequence[LegendEntry], avoid: np.ndarray) -> None:
        """A legend box in the corner with the fewest ``avoid`` pixel points."""
        entries = [e for e in entries if e[0]]
        if not entries:
            return
        w, h, row = self.legend_size(entries)
        lx, ly, _ = self.legend_place(entries, avoid)
        cv2.rectangle(self.image, (lx, ly), (lx + w, ly + h), _WHITE, -1)
        cv2.rectangle(self.image, (lx, ly), (lx + w, ly + h), (200, 200, 200), 1)
        for i, (label, color, line, marker, hollow, shape) in enumerate(entries):
            cy = ly + 3 + row * i + row // 2
            if line:
                cv2.line(self.image, (lx + 8, cy), (lx + 30, cy), color, 2, cv2.LINE_AA)
            if marker:
                _marker(self.image, np.array([[lx + 19.0, cy]]), color, hollow, shape=shape)
            self.text(label, lx + 36, cy, "lc")

    def room_for_legend(self, entries: Sequence[LegendEntry], avoid: np.ndarray) -> Optional[float]:
        """None if the legend fits in a corner free of ``avoid`` points, else the fraction of the
        plot height to add on top for it."""
        w, h, _ = self.legend_size(entries)
        if not h or self.legend_place(entries, avoid)[2] == 0:
            return None
        return (h + 14) / max(self.rect[3] - self.rect[1], 1)

    def png(self) -> bytes:
        """The image encoded as PNG."""
        ok, buffer = cv2.imencode(".png", self.image)
        if not ok:  # pragma: no cover - imencode fails only on invalid images
            raise RuntimeError("cv2.imencode failed")
        return buffer.tobytes()


def _fixed(points: np.ndarray) -> np.ndarray:
    """Pixel coordinates as the fixed-point integers of the drawing calls."""
    return np.round(points * _ONE).astype(np.int32)


def _polyline(image: np.ndarray, points: np.ndarray, color: Color, thickness: int) -> None:
    """An antialiased line through ``points``, broken where a point is NaN."""
    ok = _finite(points[:, 0], points[:, 1])
    runs, current = [], []
    for p, good in zip(points, ok):
        if good:
            current.append(p)
        elif current:
            runs.append(current)
            current = []
    runs.append(current)
    pieces = [_fixed(np.array(r)) for r in runs if len(r) >= 2]
    if pieces:
        cv2.polylines(image, pieces, False, color, thickness, cv2.LINE_AA, _SHIFT)


_SHAPES = {"s": [(-1, -1), (1, -1), (1, 1), (-1, 1)], "d": [(0, -1.3), (1.3, 0), (0, 1.3), (-1.3, 0)],
           "^": [(0, -1.3), (1.2, 0.9), (-1.2, 0.9)]}


def _marker(image: np.ndarray, points: np.ndarray, color: Color, hollow: bool = False,
            radius: float = 3.5, shape: str = "o") -> None:
    """Markers at the finite ``points``: circles ("o"), squares ("s"), diamonds ("d") or
    triangles ("^"), filled or ``hollow``."""
    for p in points[_finite(points[:, 0], points[:, 1])]:
        if shape in _SHAPES:
            poly = _fixed(p + radius * np.array(_SHAPES[shape], float))
            cv2.fillConvexPoly(image, poly, _WHITE if hollow else color, cv2.LINE_AA, _SHIFT)
            if hollow:
                cv2.polylines(image, [poly], True, color, 1, cv2.LINE_AA, _SHIFT)
            continue
        center = tuple(int(v) for v in _fixed(p))
        cv2.circle(image, center, int(radius * _ONE), _WHITE if hollow else color, -1, cv2.LINE_AA, _SHIFT)
        if hollow:
            cv2.circle(image, center, int(radius * _ONE), color, 1, cv2.LINE_AA, _SHIFT)


def _segment(image: np.ndarray, a: Sequence[float], b: Sequence[float], color: Color,
             thickness: int = 1) -> None:
    """An antialiased segment from a to b (pixels, float)."""
    if not all(math.isfinite(v) for v in (*a, *b)):
        return
    pa, pb = _fixed(np.array([a, b], float))
    cv2.line(image, (int(pa[0]), int(pa[1])), (int(pb[0]), int(pb[1])), color, thickness,
             cv2.LINE_AA, _SHIFT)


# -- charts -----------------------------------------------------------------------------------


def line_plot(series: Sequence[Series], *, title: str = "", xlabel: str = "", ylabel: str = "",
              log_y: bool = False, size: tuple[int, int] = (720, 400)) -> bytes:
    """Lines and/or markers with optional y error bars, several series, legend; PNG bytes."""
    data = []
    for i, s in enumerate(series):
        x = _as_array(list(s.x), len(s.x))
        y = _as_array(list(s.y), len(x))
        err = np.abs(_as_array(s.yerr, len(x)))
        data.append((s, x, y, err, s.color or PALETTE[i % len(PALETTE)]))
    xs = np.concatenate([d[1] for d in data]) if data else np.zeros(0)
    ys = np.concatenate([np.concatenate([d[2], d[2] - np.nan_to_num(d[3]), d[2] + np.nan_to_num(d[3])])
                         for d in data]) if data else np.zeros(0)
    if log_y:  # error bars reaching zero or below do not set the range
        ys = ys[ys > 0]
    x_axis, y_axis = _axis(xs), _axis(ys, log=log_y)
    entries = [(s.label, c, s.line, s.marker or not s.line, s.hollow, s.shape) for s, *_, c in data]
    canvas = _Canvas(size, x_axis, y_axis)
    extra = canvas.room_for_legend(entries, _footprint(canvas, data))
    if extra:
        canvas = _Canvas(size, x_axis, _headroom(y_axis, extra))
    canvas.grid()
    drawn = []
    for s, x, y, err, color in data:
        pts = canvas.to_px(x, y)
        if s.yerr is not None:
            lo = canvas.to_px(x, np.where(y - err > 0, y - err, np.nan) if log_y else y - err)
            hi = canvas.to_px(x, y + err)
            for (ax, ay), (_, by), ok in zip(lo, hi, np.isfinite(err)):
                if ok:
                    y_lo = ay if math.isfinite(ay) else canvas.rect[3] + 2.0
                    _segment(canvas.image, (ax, y_lo), (ax, by), color)
                    _segment(canvas.image, (ax - 3, by), (ax + 3, by), color)
                    _segment(canvas.image, (ax - 3, y_lo), (ax + 3, y_lo), color)
        if s.line:
            _polyline(canvas.image, pts, color, s.thickness)
        if s.marker or (not s.line):
            _marker(canvas.image, pts, color, s.hollow, s.size, s.shape)
        drawn.append(pts)
    if not any(_finite(p[:, 0], p[:, 1]).any() for p in drawn):
        canvas.no_data()
    canvas.frame(title, xlabel, ylabel)
    canvas.legend(entries, _footprint(canvas, data))
    return canvas.png()


def _footprint(canvas: _Canvas, data: Sequence[tuple[Series, np.ndarray, np.ndarray, np.ndarray, Color]]
               ) -> np.ndarray:
    """Pixel points covered by the series (markers, error bar ends, lines every few pixels): what
    the legend should not hide."""
    out = [np.zeros((0, 2))]
    for s, x, y, err, _ in data:
        pts = canvas.to_px(x, y)
        out += [pts, canvas.to_px(x, y + err), canvas.to_px(x, y - err)]
        if s.line:
            for a, b in zip(pts[:-1], pts[1:]):
                n = int(min(np.nan_to_num(np.hypot(*(b - a)) / 4.0), 400))
                if n > 1:
                    out.append(a + (b - a) * np.linspace(0.0, 1.0, n)[:, None])
    return np.concatenate(out)


def bar_plot(categories: Sequence[str], groups: Mapping[str, Sequence[Optional[float]]], *,
             highlight: Optional[Sequence[Optional[str]]] = None, title: str = "",
             ylabel: str = "", log_y: bool = False, size: tuple[int, int] = (720, 400)) -> bytes:
    """Grouped bars: one group of bars per category, one bar per key of ``groups`` (its values per
    category; None or NaN: no bar, marked "-"). ``highlight[i]`` names the bar of category i drawn
    with a black outline; PNG bytes."""
    names = list(groups)
    values = np.array([_as_array(groups[n], len(categories)) for n in names]).reshape(len(names), len(categories))
    shown = values[values > 0] if log_y else values
    axis = _axis(shown, log=log_y, include=() if log_y else (0.0,))
    if not log_y and axis.lo > 0:
        axis.lo = 0.0
    x_axis = _Axis(0.0, max(len(categories), 1), [])
    entries = [(n, PALETTE[j % len(PALETTE)], False, True, False, "s") for j, n in enumerate(names)]
    canvas = _Canvas(size, x_axis, axis)
    extra = canvas.room_for_legend(entries, _bar_footprint(canvas, values))
    if extra:
        canvas = _Canvas(size, x_axis, _headroom(axis, extra))
    canvas.grid()
    x0, _, x1, y1 = canvas.rect
    slot, width = _bar_layout(canvas, len(names), len(categories))
    base = y1 if log_y else float(canvas.to_px(np.array([0.0]), np.array([0.0]))[0, 1])
    centers: list[float] = []
    for i, _category in enumerate(categories):
        centers.append(x0 + slot * (i + 0.5))
        for j, name in enumerate(names):
            left = x0 + slot * (i + 0.1) + width * j
            v = values[j, i]
            top = float(canvas.to_px(np.array([0.0]), np.array([v]))[0, 1]) if np.isfinite(v) else math.nan
            color = PALETTE[j % len(PALETTE)]
            if not math.isfinite(top):
                canvas.text("-", left + width / 2, y1 - 4, "cb", color=GREY)
                continue
            top = min(max(top, canvas.rect[1]), y1)
            a = (int(round(left + 1)), int(round(min(top, base))))
            b = (int(round(left + width - 1)), int(round(max(top, base))))
            cv2.rectangle(canvas.image, a, b, color, -1)
            if highlight is not None and i < len(highlight) and highlight[i] == name:
                cv2.rectangle(canvas.image, a, b, BLACK, 2)
                canvas.text("*", (a[0] + b[0]) / 2, a[1] - 3, "cb", _TITLE_SCALE)
    if not np.isfinite(values).any():
        canvas.no_data()
    canvas.frame(title, "", ylabel, x_ticks=False)
    for c, label in zip(centers, categories):
        fit = min(1.0, (slot - 4) / max(canvas.text_size(str(label))[0], 1))
        canvas.text(str(label), c, y1 + 8, "ct", _TEXT_SCALE * max(fit, 0.6))
    canvas.legend(entries, _bar_footprint(canvas, values))
    return canvas.png()


def _bar_layout(canvas: _Canvas, n_groups: int, n_categories: int) -> tuple[float, float]:
    """Width of a category's slot and of one bar, in pixels."""
    x0, _, x1, _ = canvas.rect
    slot = (x1 - x0) / max(n_categories, 1)
    return slot, slot * 0.8 / max(n_groups, 1)


def _bar_footprint(canvas: _Canvas, values: np.ndarray) -> np.ndarray:
    """Pixel points inside the bars of ``values`` (groups x categories) and just above them."""
    slot, width = _bar_layout(canvas, *values.shape)
    out = [np.zeros((0, 2))]
    for (j, i), v in np.ndenumerate(values):
        top = canvas.to_px(np.array([0.0]), np.array([v]))[0, 1]
        if math.isfinite(top):
            xs = canvas.rect[0] + slot * (i + 0.1) + width * (j + np.array([0.0, 0.5, 1.0]))
            ys = np.linspace(top - 14, canvas.rect[3], 10)
            out.append(np.array([(x, y) for x in xs for y in ys]))
    return np.concatenate(out)


def _colormap(values: np.ndarray, lo: float, hi: float) -> list[Color]:
    """Viridis colours of ``values`` scaled from lo to hi (grey where not finite)."""
    if np.size(values) == 0:
        return []
    unit = np.clip((np.asarray(values, float) - lo) / (hi - lo if hi > lo else 1.0), 0.0, 1.0)
    codes = np.nan_to_num(unit * 255.0).astype(np.uint8).reshape(-1, 1)
    colors = cv2.applyColorMap(codes, cv2.COLORMAP_VIRIDIS).reshape(-1, 3)
    return [tuple(int(c) for c in col) if np.isfinite(u) else GREY for col, u in zip(colors, unit)]


def _lighten(color: Sequence[int], amount: float = 0.6) -> Color:
    """``color`` mixed with white: ``amount`` of the way from white to the colour."""
    return tuple(int(round(255 - amount * (255 - c))) for c in color)  # type: ignore[return-value]


def _colorbar(canvas: _Canvas, lo: float, hi: float, label: str, light: bool = False) -> None:
    """A vertical viridis colour bar right of the plot rectangle with ticks from lo to hi
    (``light``: lightened as the cells of :func:`density_plot`)."""
    _, y0, x1, y1 = canvas.rect
    left = x1 + 14
    ramp = np.linspace(1.0, 0.0, y1 - y0 + 1)
    strip = cv2.applyColorMap((ramp * 255).astype(np.uint8).reshape(-1, 1), cv2.COLORMAP_VIRIDIS)
    if light:
        strip = np.array([_lighten(c) for c in strip.reshape(-1, 3)], np.uint8)
    canvas.image[y0:y1 + 1, left:left + 14] = strip.reshape(-1, 1, 3)
    cv2.rectangle(canvas.image, (left, y0), (left + 14, y1), GREY, 1)
    ticks = [t for t in nice_ticks(lo, hi, 5) if lo - 1e-9 * abs(hi - lo) <= t <= hi + 1e-9 * abs(hi - lo)]
    for t, text in zip(ticks, tick_labels(ticks)):
        py = y1 - (t - lo) / (hi - lo if hi > lo else 1.0) * (y1 - y0)
        cv2.line(canvas.image, (left + 14, int(round(py))), (left + 18, int(round(py))), GREY, 1)
        canvas.text(text, left + 21, py, "lc")
    if label:
        canvas.text(label, left + 7, y0 - 6, "cb")


def color_scatter_plot(x: Sequence[float], y: Sequence[float], values: Sequence[float], *,
                       title: str = "", xlabel: str = "", ylabel: str = "", value_label: str = "",
                       size: tuple[int, int] = (720, 400)) -> bytes:
    """Markers at (x, y) coloured by ``values`` (viridis) with a colour bar; PNG bytes."""
    xa = _as_array(list(x), len(x))
    ya, va = _as_array(list(y), len(xa)), _as_array(list(values), len(xa))
    canvas = _Canvas(size, _axis(xa), _axis(ya), right=96)
    canvas.grid()
    pts = canvas.to_px(xa, ya)
    finite_v = va[np.isfinite(va)]
    lo, hi = (float(finite_v.min()), float(finite_v.max())) if finite_v.size else (0.0, 1.0)
    order = np.argsort(np.nan_to_num(va, nan=-np.inf), kind="stable")
    colors = _colormap(va, lo, hi)
    for i in order:
        _marker(canvas.image, pts[i:i + 1], colors[i], radius=4.0)
    if not _finite(pts[:, 0], pts[:, 1]).any():
        canvas.no_data()
    canvas.frame(title, xlabel, ylabel)
    _colorbar(canvas, lo, hi, value_label)
    return canvas.png()


def density_plot(points: Sequence[Sequence[float]], width: float, height: float, *,
                 title: str = "", bins: int = 32, plot_width: int = 720) -> bytes:
    """Points in a width x height image frame (pixels, y down): their density as a heat map of
    ``bins`` columns of square cells, the points on top, a colour bar of points per cell. The PNG is
    ``plot_width`` wide and as high as the frame's aspect ratio needs."""
    pts = np.asarray(points, float).reshape(-1, 2) if len(points) else np.zeros((0, 2))
    w = float(width) if width and float(width) > 0 else 1.0
    h = float(height) if height and float(height) > 0 else 1.0
    x_axis = _Axis(0.0, w, [t for t in nice_ticks(0, w) if t <= w])
    y_axis = _Axis(0.0, h, [t for t in nice_ticks(0, h, 5) if t <= h])
    probe = _Canvas((plot_width, 100), x_axis, y_axis, right=96)
    left, right = probe.rect[0], plot_width - 96
    plot_h = max(int(round((right - left) * h / w)), 40)
    canvas = _Canvas((plot_width, plot_h + 34 + 44), x_axis, y_axis, right=96, flip_y=True)
    ok = _finite(pts[:, 0], pts[:, 1]) & (pts[:, 0] >= 0) & (pts[:, 0] <= w) & (pts[:, 1] >= 0) & (pts[:, 1] <= h)
    inside = pts[ok]
    nx = max(int(bins), 1)
    ny = max(int(round(nx * h / w)), 1)
    counts, _, _ = np.histogram2d(inside[:, 0], inside[:, 1], bins=(nx, ny), range=((0, w), (0, h)))
    peak = float(counts.max()) if counts.size else 0.0
    if peak > 0:
        colors = _colormap(counts.ravel(), 0.0, peak)
        for k, (i, j) in enumerate(np.ndindex(nx, ny)):
            if counts[i, j] > 0:
                a = canvas.to_px(np.array([i * w / nx]), np.array([j * h / ny]))[0]
                b = canvas.to_px(np.array([(i + 1) * w / nx]), np.array([(j + 1) * h / ny]))[0]
                color = _lighten(colors[k])  # the dots stay visible on top
                cv2.rectangle(canvas.image, (int(round(a[0])), int(round(a[1]))),
                              (int(round(b[0])) - 1, int(round(b[1])) - 1), color, -1)
    canvas.grid()
    step = max(1, len(inside) // 4000)
    for p in _fixed(canvas.to_px(inside[::step, 0], inside[::step, 1])):
        cv2.circle(canvas.image, (int(p[0]), int(p[1])), _ONE, (60, 60, 60), -1, cv2.LINE_AA, _SHIFT)
    if len(inside) == 0:
        canvas.no_data()
    canvas.frame(title, "x (px)", "y (px)")
    _colorbar(canvas, 0.0, max(peak, 1.0), "per cell", light=True)
    return canvas.png()
