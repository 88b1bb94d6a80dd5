"""The calibration report (``ptz_calibration/calibration_report``, written by
``calibration.pipeline``) as one self-contained HTML page: inline CSS, the plots as PNG data URIs,
no external resources.

The page opens with a summary (camera, dataset, RMS reprojection error, views used / dropped /
outliers, zoom steps, warnings), then one section per part of the report. Every key but
``camera`` is optional: a section without data says so, and a section whose data cannot be read
says that instead of failing the page.

```python
write_html(calibration.report, "out/report.html")
```
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import struct
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

from ..fileio import atomic_write_text
from .plots import GREY, PALETTE, RED, Series, bar_plot, color_scatter_plot, density_plot, line_plot

PARAMETERS = ("fx", "fy", "cx", "cy", "k1", "k2")
"""The intrinsic parameters whose curves over zoom the report holds."""

_SHAPES = ("o", "s")  # markers of the first and second parameter of a plot (the second smaller:
# fx and fy samples coincide where the aspect ratio is 1)

TIMING_STAGES = ("detection", "zhang", "link", "fit", "axes", "bundle", "curves")
"""The pipeline's stages in their order (``total`` comes last in the table)."""

_CSS = """
body { font: 15px/1.45 -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color: #222;
       margin: 0; background: #f4f5f7; }
main { max-width: 1060px; margin: 0 auto; padding: 18px 24px 40px; background: #fff; }
h1 { font-size: 24px; margin: 6px 0 4px; }
h2 { font-size: 19px; margin: 34px 0 8px; padding-bottom: 4px; border-bottom: 2px solid #e3e5e8; }
h3 { font-size: 15px; margin: 18px 0 6px; }
.meta { color: #555; margin: 0 0 14px; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 10px 0 14px; }
.card { flex: 1 1 140px; border: 1px solid #dfe2e6; border-radius: 6px; padding: 8px 12px; }
.card .value { font-size: 24px; font-weight: 600; }
.card .label { color: #555; font-size: 13px; }
.card.bad { border-color: #d62728; background: #fdf0f0; }
.warnings { border-left: 5px solid #e8a200; background: #fff6dc; padding: 8px 14px; margin: 12px 0;
            border-radius: 4px; }
.warnings ul { margin: 4px 0; padding-left: 20px; }
.ok { border-left: 5px solid #2ca02c; background: #eef8ee; padding: 8px 14px; margin: 12px 0;
      border-radius: 4px; }
nav { font-size: 14px; margin: 8px 0; }
nav a { margin-right: 12px; color: #1f5fa8; text-decoration: none; }
figure { margin: 12px 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eceef0; }
figcaption { color: #555; font-size: 13px; max-width: 720px; }
table { border-collapse: collapse; margin: 8px 0 12px; font-size: 14px; }
th, td { border: 1px solid #dfe2e6; padding: 3px 9px; text-align: left; vertical-align: top; }
th { background: #f0f2f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr:nth-child(even) td { background: #fafbfc; }
td.chosen, tr:nth-child(even) td.chosen { background: #dcecff; font-weight: 600; }
tr.outlier td, tr:nth-child(even).outlier td { background: #fdecec; }
.missing { color: #777; font-style: italic; }
.error { color: #b00020; }
.bar { display: inline-block; height: 10px; background: #1f77b4; vertical-align: middle; }
.small { color: #666; font-size: 13px; }
"""


class Markup(str):
    """HTML that is already safe: table cells and page parts passed through without escaping."""


def _esc(value: Any) -> str:
    """``value`` as escaped HTML text (Markup as it is)."""
    return value if isinstance(value, Markup) else html.escape(str(value))


# -- reading the report leniently --------------------------------------------------------------


def _dict(value: Any) -> dict[str, Any]:
    """``value`` if it is a dict, else an empty one."""
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    """``value`` if it is a list or tuple, else an empty list."""
    return list(value) if isinstance(value, (list, tuple)) else []


def _float(value: Any) -> Optional[float]:
    """``value`` as a finite float, or None."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _num(value: Any, spec: str = ".4g", unit: str = "") -> str:
    """A number formatted with ``spec`` (and ``unit``), "–" when there is none."""
    f = _float(value)
    if f is None:
        return "–" if value is None or isinstance(value, (int, float)) else str(value)
    if spec == ".4g" and (isinstance(value, int) or 1e4 <= abs(f) < 1e9):
        text = f"{f:.0f}"  # 22034, not 2.203e+04
    else:
        text = format(f, spec)
    return f"{text} {unit}" if unit else text


def _vec(values: Any, spec: str = ".4f") -> str:
    """A vector as ``[a, b, c]``."""
    items = _list(values)
    return "[" + ", ".join(_num(v, spec) for v in items) + "]" if items else "–"


# -- page parts ------------------------------------------------------------------------------


def _png_size(png: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    return struct.unpack(">II", png[16:24])


def _figure(png: bytes, alt: str, caption: str = "") -> str:
    """An ``<img>`` of ``png`` as a base64 data URI, with its caption."""
    w, h = _png_size(png)
    data = base64.b64encode(png).decode("ascii")
    cap = f"<figcaption>{_esc(caption)}</figcaption>" if caption else ""
    return (f'<figure><img src="data:image/png;base64,{data}" width="{w}" height="{h}" '
            f'alt="{_esc(alt)}">{cap}</figure>')


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Sequence[int] = (),
           row_class: Optional[Sequence[str]] = None,
           cell_class: Optional[Callable[[int, int], str]] = None) -> str:
    """A table; cells are escaped unless Markup; columns ``numeric`` are right-aligned."""
    head = "".join(f"<th>{_esc(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{_esc(row_class[i])}"' if row_class and i < len(row_class) and row_class[i] else ""
        cells = []
        for j, cell in enumerate(row):
            extra = cell_class(i, j) if cell_class else ""
            classes = " ".join(c for c in ("num" if j in numeric else "", extra) if c)
            cells.append(f'<td class="{classes}">{_esc(cell)}</td>' if classes else f"<td>{_esc(cell)}</td>")
        body.append(f"<tr{cls}>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _missing(what: str) -> str:
    """The note of a section without data."""
    return f'<p class="missing">No {_esc(what)} in this report.</p>'


# -- summary -----------------------------------------------------------------------------------


def _summary_numbers(report: Mapping[str, Any]) -> dict[str, Any]:
    """The summary figures, falling back on the bundle and lists where ``summary`` lacks them."""
    summary = dict(_dict(report.get("summary")))
    bundle = _dict(report.get("bundle"))
    summary.setdefault("rms_px", bundle.get("rms_px"))
    if "views_used" not in summary and _list(bundle.get("views")):
        summary["views_used"] = sum(1 for v in _list(bundle["views"]) if not _dict(v).get("outlier"))
    if "views_dropped" not in summary and isinstance(report.get("dropped"), list):
        summary["views_dropped"] = len(report["dropped"])
    if "outlier_views" not in summary and isinstance(bundle.get("outliers"), list):
        summary["outlier_views"] = len(bundle["outliers"])
    if "zoom_steps" not in summary and isinstance(bundle.get("steps"), list):
        summary["zoom_steps"] = len(bundle["steps"])
    return summary


def _summary(report: Mapping[str, Any]) -> str:
    """The head of the page: title, what was calibrated, the main figures and the warnings."""
    camera = report.get("camera")
    camera_text = str(camera) if camera not in (None, "") else "(unnamed camera)"
    meta = []
    if report.get("dataset") is not None:
        meta.append(f"dataset <code>{_esc(report['dataset'])}</code>")
    size = _list(report.get("image_size"))
    if len(size) == 2:
        meta.append(f"image {_esc(_num(size[0], '.0f'))} × {_esc(_num(size[1], '.0f'))} px")
    if report.get("created") is not None:
        meta.append(f"created {_esc(report['created'])}")
    total = _float(_dict(report.get("timing_s")).get("total"))
    if total is not None:
        meta.append(f"computed in {_esc(_num(total, '.1f'))} s")
    s = _summary_numbers(report)
    cards = [("RMS reprojection error", _num(s.get("rms_px"), ".3f", "px"), False),
             ("views used", _num(s.get("views_used")), False),
             ("views dropped", _num(s.get("views_dropped")), bool(_float(s.get("views_dropped")))),
             ("outlier views", _num(s.get("outlier_views")), bool(_float(s.get("outlier_views")))),
             ("zoom steps", _num(s.get("zoom_steps")), False)]
    if _float(s.get("zoom_steps_dropped")):
        cards.append(("zoom steps dropped", _num(s.get("zoom_steps_dropped")), True))
    card_html = "".join(f'<div class="card{" bad" if bad else ""}"><div class="value">{_esc(value)}</div>'
                        f'<div class="label">{_esc(label)}</div></div>' for label, value, bad in cards)
    warnings = [w for w in _list(report.get("warnings")) if w not in (None, "")]
    if warnings:
        items = "".join(f"<li>{_esc(w)}</li>" for w in warnings)
        noun = "warning" if len(warnings) == 1 else "warnings"
        box = f'<div class="warnings"><strong>{len(warnings)} {noun}</strong><ul>{items}</ul></div>'
    elif "warnings" in report:
        box = '<div class="ok">No warnings.</div>'
    else:
        box = ""
    return (f"<h1>PTZ calibration report: {_esc(camera_text)}</h1>"
            f'<p class="meta">{" · ".join(meta)}</p><div class="cards">{card_html}</div>{box}')


# -- intrinsics over zoom ----------------------------------------------------------------------


def _samples(entry: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The samples of a curve entry with a numeric zoom and value, sorted by zoom."""
    out = []
    for s in _list(entry.get("samples")):
        s = _dict(s)
        if _float(s.get("zoom")) is not None and _float(s.get("value")) is not None:
            out.append(s)
    return sorted(out, key=lambda s: float(s["zoom"]))


def _curve(entry: Mapping[str, Any]) -> tuple[list[float], list[float]]:
    """The densely sampled fitted curve (zoom, value), sorted by zoom, finite points only."""
    cs = _dict(entry.get("curve_samples"))
    pairs = [(_float(z), _float(v)) for z, v in zip(_list(cs.get("zoom")), _list(cs.get("value")))]
    pairs = sorted((z, v) for z, v in pairs if z is not None and v is not None)
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _parameter_series(curves: Mapping[str, Any], names: Sequence[str], scale: float = 1.0) -> list[Series]:
    """Samples (error bars; held values hollow) and fitted curves of the parameters ``names``."""
    series = []
    for k, name in enumerate(names):
        entry = _dict(curves.get(name))
        if not entry:
            continue
        color, shape, size = PALETTE[k % len(PALETTE)], _SHAPES[k % len(_SHAPES)], 3.5 - 1.0 * (k % 2)
        samples = _samples(entry)
        free = [s for s in samples if not s.get("fixed")]
        held = [s for s in samples if s.get("fixed")]
        zc, vc = _curve(entry)
        if zc:
            family = entry.get("family")
            series.append(Series(zc, [v * scale for v in vc], f"{name} curve" + (f" ({family})" if family else ""),
                                 color))
        if free:
            series.append(Series([s["zoom"] for s in free], [float(s["value"]) * scale for s in free],
                                 f"{name} samples", color, line=False, marker=True, shape=shape, size=size,
                                 yerr=[None if _float(s.get("std")) is None else float(s["std"]) * scale
                                       for s in free]))
        if held:
            series.append(Series([s["zoom"] for s in held], [float(s["value"]) * scale for s in held],
                                 f"{name} held", color, line=False, marker=True, hollow=True, shape=shape,
                                 size=size))
    return series


def _residual_series(curves: Mapping[str, Any], names: Sequence[str]) -> list[Series]:
    """Relative residuals (percent) of the samples to their fitted curve, with error bars."""
    series = []
    for k, name in enumerate(names):
        entry = _dict(curves.get(name))
        zc, vc = _curve(entry)
        samples = [s for s in _samples(entry) if not s.get("fixed")]
        if len(zc) < 2 or not samples:
            continue
        zs, res, err = [], [], []
        for s in samples:
            fitted = _interp(float(s["zoom"]), zc, vc)
            if fitted is None or fitted == 0.0:
                continue
            zs.append(float(s["zoom"]))
            res.append(100.0 * (float(s["value"]) - fitted) / fitted)
            std = _float(s.get("std"))
            err.append(None if std is None else 100.0 * std / abs(fitted))
        if zs:
            series.append(Series(zs, res, f"{name} − curve", PALETTE[k % len(PALETTE)], line=False,
                                 marker=True, yerr=err, shape=_SHAPES[k % len(_SHAPES)], size=3.5 - 1.0 * (k % 2)))
    if series:
        lo = min(min(s.x) for s in series)
        hi = max(max(s.x) for s in series)
        series.insert(0, Series([lo, hi], [0.0, 0.0], "", GREY, thickness=1))
    return series


def _interp(z: float, zs: Sequence[float], vs: Sequence[float]) -> Optional[float]:
    """Linear interpolation of the curve (zs, vs) at z; None outside its range."""
    if not zs or z < zs[0] or z > zs[-1]:
        return None
    for i in range(1, len(zs)):
        if z <= zs[i]:
            a, b = zs[i - 1], zs[i]
            t = 0.0 if b == a else (z - a) / (b - a)
            return vs[i - 1] + t * (vs[i] - vs[i - 1])
    return vs[-1]


def _section_intrinsics(report: Mapping[str, Any]) -> str:
    """Curves of the intrinsics over raw zoom: table, focal length, residuals, distortion, centre."""
    curves = _dict(report.get("curves"))
    if not curves:
        return _missing("intrinsic curves")
    rows = []
    for name in [p for p in PARAMETERS if p in curves] + sorted(set(curves) - set(PARAMETERS)):
        e = _dict(curves[name])
        samples = _samples(e)
        family = e.get("family")
        cv = _dict(e.get("cv_error")).get(family) if family is not None else None
        rel = _dict(e.get("cv_relative")).get(family) if family is not None else None
        values = [float(s["value"]) for s in samples]
        rows.append([name, family if family is not None else "–", _num(cv),
                     _num(100.0 * rel, ".3f", "%") if _float(rel) is not None else "–",
                     len(samples), sum(1 for s in samples if s.get("fixed")),
                     f"{_num(min(values))} … {_num(max(values))}" if values else "–"])
    parts = [_table(["parameter", "curve family", "CV error", "CV error (relative)", "samples", "held",
                     "sample values"], rows, numeric=(2, 3, 4, 5)),
             '<p class="small">Samples: per-zoom-step estimates with their standard deviation as error bars; '
             "hollow markers: values held (not determined by the views at that step). Curves: the fitted "
             "curve of each parameter over raw zoom.</p>"]
    plots = [(("fx", "fy"), "Focal length over zoom", "focal length (px)", True,
              "Focal lengths fx and fy (log scale) with the fitted curves."),
             (("k1", "k2"), "Radial distortion over zoom", "coefficient", False,
              "Radial distortion k1 and k2 with the fitted curves."),
             (("cx", "cy"), "Principal point over zoom", "principal point (px)", False,
              "Principal point cx and cy with the fitted curves.")]
    for names, title, ylabel, log_y, caption in plots:
        series = _parameter_series(curves, names)
        if not series:
            parts.append(_missing(f"{' / '.join(names)} data"))
            continue
        parts.append(_figure(line_plot(series, title=title, xlabel="raw zoom", ylabel=ylabel, log_y=log_y),
                             title, caption))
        if names == ("fx", "fy"):
            residuals = _residual_series(curves, names)
            if residuals:
                parts.append(_figure(line_plot(residuals, title="Focal length samples relative to the curve",
                                               xlabel="raw zoom", ylabel="sample − curve (%)"),
                                     "focal length residuals",
                                     "How far each focal length sample lies from the fitted curve, in percent "
                                     "of the curve; error bars: the sample's standard deviation."))
    return "".join(parts)


def _section_selection(report: Mapping[str, Any]) -> str:
    """Leave-one-zoom-out cross-validation error of every curve family, the chosen one marked."""
    curves = {n: _dict(e) for n, e in _dict(report.get("curves")).items() if _dict(_dict(e).get("cv_error"))}
    if not curves:
        return _missing("cross-validation results")
    names = [p for p in PARAMETERS if p in curves] + sorted(set(curves) - set(PARAMETERS))
    families: list[str] = []
    for n in names:
        families += [str(f) for f in _dict(curves[n].get("cv_error")) if str(f) not in families]
    rows, chosen = [], []
    for n in names:
        cv, rel = _dict(curves[n].get("cv_error")), _dict(curves[n].get("cv_relative"))
        row: list[Any] = [n]
        for f in families:
            text = _num(cv.get(f)) if f in cv else ""
            if _float(rel.get(f)) is not None:
                text += f" ({100.0 * float(rel[f]):.3g} %)"
            row.append(text if f in cv else "")
        rows.append(row)
        chosen.append(str(curves[n].get("family")))

    def marked(i: int, j: int) -> str:
        return "chosen" if j > 0 and families[j - 1] == chosen[i] else ""

    parts = [_table(["parameter"] + families, rows, numeric=range(1, len(families) + 1), cell_class=marked),
             '<p class="small">Weighted RMS error of each family when every zoom step is left out in turn '
             "(parameter units; focal lengths also relative). Highlighted: the chosen family; –: the fit "
             "failed.</p>"]
    ratios: dict[str, list[Optional[float]]] = {f: [] for f in families}
    for n in names:
        cv = _dict(curves[n].get("cv_error"))
        best = min((v for v in (_float(x) for x in cv.values()) if v is not None and v > 0), default=None)
        for f in families:
            v = _float(cv.get(f))
            ratios[f].append(v / best if v is not None and best else None)
    finite = [v for vs in ratios.values() for v in vs if v is not None]
    if finite:
        parts.append(_figure(bar_plot(names, ratios, highlight=chosen, log_y=max(finite) > 20,
                                      title="Cross-validation error relative to the best family",
                                      ylabel="CV error / best"),
                             "cross-validation error per family",
                             "1 is the best family of each parameter; * and black outline: the chosen family."))
    return "".join(parts)


# -- reprojection --------------------------------------------------------------------------------


def _section_reprojection(report: Mapping[str, Any]) -> str:
    """Reprojection RMS per zoom step and per view, the outliers, the bundle adjustment's figures."""
    bundle = _dict(report.get("bundle"))
    if not bundle:
        return _missing("bundle adjustment results")
    facts = []
    if bundle.get("rms_px") is not None:
        facts.append(f"RMS {_esc(_num(bundle.get('rms_px'), '.3f', 'px'))}")
    if bundle.get("robust_loss") is not None:
        facts.append(f"robust loss {_esc(bundle['robust_loss'])}")
    if bundle.get("iterations") is not None:
        facts.append(f"{_esc(_num(bundle['iterations']))} iterations")
    parts = [f"<p>Bundle adjustment over all views: {', '.join(facts)}.</p>" if facts else ""]
    steps = [_dict(s) for s in _list(bundle.get("steps"))]
    steps = [s for s in steps if _float(s.get("zoom")) is not None]
    if steps:
        steps.sort(key=lambda s: float(s["zoom"]))
        parts.append(_figure(line_plot([Series([s["zoom"] for s in steps], [_float(s.get("rms_px")) for s in steps],
                                               "RMS per zoom step", PALETTE[0], marker=True)],
                                       title="Reprojection error per zoom step", xlabel="raw zoom",
                                       ylabel="RMS (px)"), "reprojection error per zoom step"))
    else:
        parts.append(_missing("per-step reprojection errors"))
    views = [_dict(v) for v in _list(bundle.get("views"))]
    if views:
        idx = list(range(len(views)))
        inl = [i for i in idx if not views[i].get("outlier")]
        out = [i for i in idx if views[i].get("outlier")]
        series = [Series(inl, [_float(views[i].get("rms_px")) for i in inl], "view", PALETTE[0], line=False)]
        if out:
            series.append(Series(out, [_float(views[i].get("rms_px")) for i in out], "outlier", RED, line=False))
        parts.append(_figure(line_plot(series, title="Reprojection error per view", xlabel="view index",
                                       ylabel="RMS (px)"), "reprojection error per view",
                             "Views in the order of the bundle adjustment (by zoom step); red: outliers."))
    else:
        parts.append(_missing("per-view reprojection errors"))
    outliers = [_dict(o) for o in _list(bundle.get("outliers"))]
    if outliers:
        parts.append("<h3>Outlier views</h3>" + _table(
            ["image", "RMS (px)", "why"],
            [[o.get("image", ""), _num(o.get("rms_px"), ".3f"), o.get("why", "")] for o in outliers], numeric=(1,)))
    if views:
        worst = sorted(views, key=lambda v: -(_float(v.get("rms_px")) or 0.0))[:10]
        parts.append("<h3>Worst views</h3>" + _table(
            ["image", "zoom", "pan (deg)", "tilt (deg)", "tag", "points", "RMS (px)"],
            [[v.get("image", ""), _num(v.get("zoom"), ".0f"), _deg(v.get("pan")), _deg(v.get("tilt")),
              v.get("tag", ""), _num(v.get("points")), _num(v.get("rms_px"), ".3f")] for v in worst],
            numeric=(1, 2, 3, 5, 6), row_class=["outlier" if v.get("outlier") else "" for v in worst]))
    return "".join(parts)


def _deg(radians: Any) -> str:
    """Radians shown in degrees."""
    f = _float(radians)
    return "–" if f is None else f"{math.degrees(f):.2f}"


# -- coverage ------------------------------------------------------------------------------------


def _section_coverage(report: Mapping[str, Any]) -> str:
    """Where the detected corners fell on the image, and the views' pan/tilt coloured by zoom."""
    parts = []
    corners = [c for c in _list(_dict(report.get("coverage")).get("corners_px"))
               if isinstance(c, (list, tuple)) and len(c) == 2 and None not in (_float(c[0]), _float(c[1]))]
    size = _list(report.get("image_size"))
    if corners:
        w, h = (_float(size[0]), _float(size[1])) if len(size) == 2 else (None, None)
        if not w or not h:  # no image size: the corners' extent
            w, h = max(float(c[0]) for c in corners), max(float(c[1]) for c in corners)
        parts.append(_figure(density_plot([[float(c[0]), float(c[1])] for c in corners], w, h,
                                          title="Detected corners over the image"),
                             "corner coverage",
                             f"{len(corners)} detected corners (subsampled) over all views; cells: corners "
                             "per cell. Corners near the image border constrain the distortion."))
    else:
        parts.append(_missing("corner coverage data"))
    views = [_dict(v) for v in _list(_dict(report.get("bundle")).get("views"))]
    views = [v for v in views if _float(v.get("pan")) is not None and _float(v.get("tilt")) is not None]
    if views:
        parts.append(_figure(color_scatter_plot([math.degrees(float(v["pan"])) for v in views],
                                                [math.degrees(float(v["tilt"])) for v in views],
                                                [_float(v.get("zoom")) for v in views],
                                                title="Pan and tilt of the views", xlabel="pan (deg)",
                                                ylabel="tilt (deg)", value_label="zoom"),
                             "pan and tilt of the views", "Each view's pan and tilt, coloured by raw zoom."))
    else:
        parts.append(_missing("view pan/tilt data"))
    return "".join(parts)


# -- kinematics ----------------------------------------------------------------------------------


def _joint_rows(kin: Mapping[str, Any]) -> list[list[Any]]:
    """Table rows of the pan and tilt joints: axis, its std, radius vector and its std."""
    rows = []
    for name in ("pan", "tilt"):
        j = _dict(kin.get(name))
        if j:
            rows.append([name, _vec(j.get("axis"), ".5f"), _num(j.get("axis_std_deg"), ".3f"),
                         _vec(j.get("radius_mm"), ".2f"), _vec(j.get("radius_std_mm"), ".2f")])
    return rows


def _section_kinematics(report: Mapping[str, Any]) -> str:
    """Axes and radius vectors with their uncertainties, the angle between the axes, zoom translation."""
    kin = _dict(report.get("kinematics"))
    if not kin:
        return _missing("kinematics")
    headers = ["joint", "axis (unit, in H)", "axis std (deg)", "radius vector (mm)", "radius std (mm)"]
    parts = []
    facts = []
    if kin.get("order") is not None:
        facts.append(f"axis order <code>{_esc(kin['order'])}</code>")
    angle = _float(kin.get("axes_angle_deg"))
    if angle is not None:
        facts.append(f"angle between the axes {angle:.3f}° ({angle - 90.0:+.3f}° from perpendicular)")
    if facts:
        parts.append(f"<p>{'; '.join(facts)}.</p>")
    rows = _joint_rows(kin)
    parts.append(_table(headers, rows, numeric=(2,)) if rows else _missing("joint estimates"))
    sweeps = _dict(kin.get("from_sweeps"))
    if _joint_rows(sweeps):
        parts.append("<h3>First estimate, from the pan and tilt sweeps</h3>"
                     + _table(headers, _joint_rows(sweeps), numeric=(2,)))
    notes = [n for n in _list(kin.get("notes")) if n not in (None, "")]
    if notes:
        parts.append("<ul>" + "".join(f"<li>{_esc(n)}</li>" for n in notes) + "</ul>")
    zt = [_dict(t) for t in _list(kin.get("zoom_translation"))]
    zt = sorted((t for t in zt if _float(t.get("zoom")) is not None), key=lambda t: float(t["zoom"]))
    if zt:
        parts.append(_figure(line_plot([Series([t["zoom"] for t in zt], [_float(t.get("d_mm")) for t in zt],
                                               "d (zoom)", PALETTE[0], marker=True,
                                               yerr=[_float(t.get("std_mm")) for t in zt])],
                                       title="Zoom translation of the optical centre", xlabel="raw zoom",
                                       ylabel="d (mm)"), "zoom translation",
                             "Forward motion of the optical centre along the optical axis relative to the "
                             "widest zoom, with its standard deviation."))
    else:
        parts.append(_missing("zoom translation data"))
    return "".join(parts)


# -- evaluation, dropped images, timing ------------------------------------------------------------


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested dicts as (dotted key, value) pairs; lists of scalars stay lists."""
    if isinstance(value, dict):
        out: list[tuple[str, Any]] = []
        for k, v in value.items():
            out += _flatten(v, f"{prefix}.{k}" if prefix else str(k))
        return out
    return [(prefix, value)]


def _cell(value: Any) -> str:
    """A value of the evaluation table as text."""
    if isinstance(value, (list, tuple)):
        if all(isinstance(v, (int, float)) or v is None for v in value) and len(value) <= 12:
            return "[" + ", ".join(_num(v) for v in value) + "]"
        text = json.dumps(value, default=str)
        return text if len(text) <= 300 else text[:297] + "…"
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, (int, float)):
        return _num(value)
    return str(value)


def _section_evaluation(report: Mapping[str, Any]) -> str:
    """The evaluation's error figures as a key/value table."""
    evaluation = report.get("evaluation")
    if not isinstance(evaluation, dict) or not evaluation:
        return _missing("evaluation")
    rows = [[k, _cell(v)] for k, v in _flatten(evaluation)]
    return _table(["figure", "value"], rows, numeric=(1,))


def _section_dropped(report: Mapping[str, Any]) -> str:
    """The images left out, and why."""
    dropped = [_dict(d) for d in _list(report.get("dropped"))]
    if not dropped:
        return _missing("dropped images") if "dropped" not in report else "<p>No image was dropped.</p>"
    counts: dict[str, int] = {}
    for d in dropped:
        reason = str(d.get("reason", "") or "(no reason given)")
        counts[reason] = counts.get(reason, 0) + 1
    parts = [f"<p>{len(dropped)} image{'s' if len(dropped) != 1 else ''} left out.</p>"]
    if len(counts) < len(dropped):
        parts.append(_table(["reason", "images"], sorted(([r, n] for r, n in counts.items()), key=lambda rn: -rn[1]),
                            numeric=(1,)))
    parts.append(_table(["image", "reason"], [[d.get("image", ""), d.get("reason", "")] for d in dropped]))
    return "".join(parts)


def _deg4(radians: Any) -> str:
    f = _float(radians)
    return "–" if f is None else f"{math.degrees(f):.4f} deg"


def _section_corrections(report: Mapping[str, Any]) -> str:
    block = _dict(report.get("corrections"))
    layers = _dict(block.get("layers"))
    if not layers:
        return _missing("correction layers (none stored with this model; see `ptz-calib corrections`)")
    rows = []
    for name, layer in layers.items():
        layer = _dict(layer)
        state = "on" if layer.get("enabled", True) else "off"
        if name == "pointing":
            pan, tilt = _dict(layer.get("pan")), _dict(layer.get("tilt"))
            rms = (_list(layer.get("fit_rms_rad")) + [None, None])[:2]
            what = (f"backlash pan {_deg4(pan.get('backlash'))}, tilt {_deg4(tilt.get('backlash'))}; "
                    f"{len(_list(pan.get('harmonics')))} pan / {len(_list(tilt.get('harmonics')))} tilt harmonics; "
                    f"fit RMS {_deg4(rms[0])} / {_deg4(rms[1])}")
        elif name == "thermal":
            what = (f"reference {_num(layer.get('reference_temperature'), '.1f', ' deg C')}, boresight "
                    f"{_num(layer.get('boresight_x_rad_per_degc'), '.3g')} / {_num(layer.get('boresight_y_rad_per_degc'), '.3g')}"
                    f" rad per deg C, focal {_num(layer.get('focal_ppm_per_degc'), '.1f')} ppm per deg C")
        elif name == "zoom_offset":
            what = f"{len(_list(layer.get('zoom')))} zoom steps"
        elif name == "field":
            what = (f"rotation {_vec(layer.get('rotation_vector_rad'), '.2e')} rad from "
                    f"{_esc(layer.get('landmarks'))} landmarks, {_esc(layer.get('created'))}")
        else:
            what = ""
        rows.append([name, state, what])
    html = _table(["layer", "state", "values"], rows)
    held = _dict(_dict(block.get("measured")).get("held_out"))
    if held:
        rows = [[k[:-3], _num(_dict(v).get("rms"), ".2f"), _num(_dict(v).get("median"), ".2f"), _num(_dict(v).get("max"), ".2f")]
                for k, v in held.items() if k.endswith("_px")]
        html += (f"<p>Pointing error at zoom {_num(held.get('zoom'), '.0f')}, {_esc(held.get('settings'))} held-out "
                 "pan/tilt/temperature settings (px), by the layers switched on:</p>"
                 + _table(["layers", "RMS", "median", "max"], rows, numeric=(1, 2, 3)))
    return html


def _section_timing(report: Mapping[str, Any]) -> str:
    """Seconds per pipeline stage, with their share of the total."""
    timing = {k: _float(v) for k, v in _dict(report.get("timing_s")).items()}
    timing = {k: v for k, v in timing.items() if v is not None}
    if not timing:
        return _missing("timing data")
    stages = [s for s in TIMING_STAGES if s in timing] + sorted(set(timing) - set(TIMING_STAGES) - {"total"})
    total = timing.get("total") or sum(timing[s] for s in stages) or 1.0
    rows = [[s, _num(timing[s], ".2f"), _num(100.0 * timing[s] / total, ".1f"),
             Markup(f'<span class="bar" style="width:{max(0.0, min(1.0, timing[s] / total)) * 240:.0f}px"></span>')]
            for s in stages]
    if "total" in timing:
        rows.append(["total", _num(timing["total"], ".2f"), "100.0", ""])
    return _table(["stage", "seconds", "% of total", ""], rows, numeric=(1, 2))


SECTIONS: tuple[tuple[str, str, Callable[[Mapping[str, Any]], str]], ...] = (
    ("intrinsics", "Intrinsics over zoom", _section_intrinsics),
    ("selection", "Curve selection (cross-validation)", _section_selection),
    ("reprojection", "Reprojection error", _section_reprojection),
    ("coverage", "Coverage", _section_coverage),
    ("kinematics", "Kinematics", _section_kinematics),
    ("evaluation", "Evaluation", _section_evaluation),
    ("corrections", "Correction layers", _section_corrections),
    ("dropped", "Dropped images", _section_dropped),
    ("timing", "Timing", _section_timing),
)
"""The sections of the page after the summary: (anchor, heading, renderer)."""


def render_html(report: Mapping[str, Any]) -> str:
    """The report as one self-contained HTML page."""
    report = report if isinstance(report, Mapping) else {}
    try:
        head = _summary(report)
    except Exception as error:  # noqa: BLE001 - a malformed summary must not hide the rest
        head = ('<h1>PTZ calibration report</h1><p class="error">The summary could not be rendered: '
                f"{_esc(type(error).__name__)}: {_esc(error)}</p>")
    nav = "<nav>" + "".join(f'<a href="#{key}">{_esc(title)}</a>' for key, title, _ in SECTIONS) + "</nav>"
    body = []
    for key, title, render in SECTIONS:
        try:
            content = render(report)
        except Exception as error:  # noqa: BLE001 - one bad section must not lose the others
            content = ('<p class="error">This section could not be rendered: '
                       f"{_esc(type(error).__name__)}: {_esc(error)}</p>")
        body.append(f'<section id="{key}"><h2>{_esc(title)}</h2>{content}</section>')
    title = f"PTZ calibration report: {report.get('camera', '')}"
    fmt = report.get("format")
    footer = f'<p class="small">Report format: {_esc(fmt)}</p>' if fmt else ""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{_esc(title)}</title>"
            f"<style>{_CSS}</style></head><body><main>{head}{nav}{''.join(body)}{footer}</main></body></html>\n")


def write_html(report: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Write :func:`render_html` of ``report`` to ``path`` atomically; returns the path."""
    return atomic_write_text(path, render_html(report))
