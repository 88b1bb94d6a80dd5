"""The HTML calibration report and its PNG plots (pure Python, no ROS)."""

import base64
import math
import re
from html.parser import HTMLParser

import cv2
import numpy as np
import pytest

from ptz_calibration.report import (
    SECTIONS,
    Series,
    bar_plot,
    color_scatter_plot,
    density_plot,
    line_plot,
    log_ticks,
    nice_ticks,
    render_html,
    tick_labels,
    write_html,
)

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _Page(HTMLParser):
    """Checks that elements nest properly; collects images, headings, text and links."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors, self.images, self.headings, self.text = [], [], [], [], []
        self.external = []
        self._heading = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs)
        for key in ("src", "href"):
            value = attrs.get(key)
            if value and not (value.startswith("data:") or value.startswith("#")):
                self.external.append(value)
        if tag in ("h1", "h2", "h3"):
            self._heading = []
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            return
        self.stack.pop()
        if tag in ("h1", "h2", "h3") and self._heading is not None:
            self.headings.append("".join(self._heading))
            self._heading = None

    def handle_data(self, data):
        self.text.append(data)
        if self._heading is not None:
            self._heading.append(data)


def parse(page):
    p = _Page()
    p.feed(page)
    p.close()
    assert not p.errors, p.errors[:5]
    assert p.stack == [], p.stack
    return p


def decode_png(png: bytes):
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def realistic_report(n_steps=20, seed=3):
    """A report as calibration.pipeline writes it, with synthetic numbers."""
    rng = np.random.default_rng(seed)
    zooms = np.linspace(0.0, 16384.0, n_steps)
    zc = np.linspace(0.0, 16384.0, 200)
    truth = {
        "fx": lambda z: 1100.0 * np.exp(z / 5500.0),
        "fy": lambda z: 1101.5 * np.exp(z / 5500.0),
        "cx": lambda z: 960.0 + 4.0 * np.sin(z / 4000.0),
        "cy": lambda z: 540.0 - 3.0 * z / 16384.0,
        "k1": lambda z: -0.24 + 0.2 * z / 16384.0,
        "k2": lambda z: 0.08 - 0.07 * z / 16384.0,
    }
    families = ["piecewise_linear", "poly1", "poly2", "poly3", "exp2", "cubic_spline"]
    curves = {}
    for name, f in truth.items():
        rel_std = {"fx": 1e-3, "fy": 1e-3}.get(name)
        samples = []
        for k, z in enumerate(zooms):
            value = float(f(z))
            std = value * rel_std if rel_std else {"cx": 2.0, "cy": 2.0}.get(name, 0.004)
            fixed = name in ("k2", "cx", "cy") and k >= n_steps - 3
            noisy = value + (0.0 if fixed else float(rng.normal(0.0, std)))
            samples.append({"zoom": float(z), "value": noisy, "std": None if fixed else std, "fixed": fixed})
        cv = {fam: float(abs(rng.normal(1.0, 0.5)) * (truth[name](0) * 1e-3 if name in ("fx", "fy") else 0.01))
              for fam in families}
        cv["poly3"] = None  # a failed fit
        chosen = "cubic_spline" if name in ("fx", "fy") else "poly2"
        cv[chosen] = min(v for v in cv.values() if v is not None) * 0.9
        entry = {"family": chosen, "cv_error": cv, "samples": samples,
                 "curve_samples": {"zoom": zc.tolist(), "value": f(zc).tolist()}}
        if name in ("fx", "fy"):
            entry["cv_relative"] = {fam: v / 1100.0 for fam, v in cv.items() if v is not None}
        curves[name] = entry
    views = []
    for k, z in enumerate(zooms):
        for j in range(6):
            views.append({"image": f"images/z{k:02d}_v{j}.png", "zoom": float(z),
                          "pan": float(rng.uniform(-1.5, 1.5)), "tilt": float(rng.uniform(-0.4, 1.0)),
                          "tag": "grid", "rms_px": float(abs(rng.normal(0.25, 0.05))), "points": 54,
                          "outlier": False})
    outliers = [i for i in (17, 88) if i < len(views)]
    for i in outliers:
        views[i]["outlier"] = True
        views[i]["rms_px"] = 2.4
    corners = np.column_stack([rng.uniform(40, 1880, 3000), rng.uniform(30, 1050, 3000)])
    return {
        "format": "ptz_calibration/calibration_report",
        "camera": "left",
        "dataset": "data/sim_left",
        "image_size": [1920, 1080],
        "created": "2025-01-02T03:04:05+00:00",
        "timing_s": {"detection": 2.1, "zhang": 1.4, "link": 0.2, "fit": 0.3, "axes": 0.4, "bundle": 1.6,
                     "curves": 0.1, "total": 6.3},
        "corrections": {
            "layers": {"pointing": {"enabled": True, "pan": {"offset": 0.0, "backlash": 8.7e-4,
                                                              "harmonics": [[1, 4e-4, 3e-4]]},
                                    "tilt": {"offset": 0.0, "backlash": 7e-4, "harmonics": []},
                                    "fit_rms_rad": [7e-5, 7e-5], "samples": 276},
                       "thermal": {"enabled": False, "reference_temperature": 21.5,
                                   "boresight_x_rad_per_degc": 1.5e-5, "boresight_y_rad_per_degc": -8e-6,
                                   "focal_ppm_per_degc": 39.0}},
            "measured": {"held_out": {"settings": 120, "zoom": 16384, "none_px": {"rms": 15.5, "median": 13.9,
                                                                                  "max": 33.2},
                                      "both_px": {"rms": 2.2, "median": 1.7, "max": 5.6}}}},
        "summary": {"rms_px": 0.2871, "views_used": 118, "views_dropped": 3, "outlier_views": 2,
                    "zoom_steps": n_steps},
        "warnings": ["zoom step 16384 has only 4 views <script>alert(1)</script>", "k2 held at 3 steps"],
        "dropped": [{"image": "images/a.png", "reason": "board not found"},
                    {"image": "images/b.png", "reason": "board not found"},
                    {"image": "images/c.png", "reason": "blurred & dark"}],
        "curves": curves,
        "kinematics": {
            "order": "pan_tilt",
            "pan": {"axis": [0.0012, -0.99998, 0.0051], "axis_std_deg": 0.012, "radius_mm": [12.1, 0.0, -30.2],
                    "radius_std_mm": [0.4, 0.0, 0.6]},
            "tilt": {"axis": [0.99995, 0.0087, 0.001], "axis_std_deg": 0.02, "radius_mm": [0.0, 25.3, -18.8],
                     "radius_std_mm": [0.0, 0.5, 0.7]},
            "axes_angle_deg": 89.5012,
            "zoom_translation": [{"zoom": float(z), "d_mm": float(40.0 * z / 16384.0),
                                  "std_mm": None if k == 0 else 0.8} for k, z in enumerate(zooms)],
            "notes": ["tilt axis from one sweep only"],
        },
        "bundle": {"rms_px": 0.2871, "robust_loss": "huber", "iterations": 23, "views": views,
                   "steps": [{"zoom": float(z), "rms_px": float(0.22 + 0.01 * k), "views": 6}
                             for k, z in enumerate(zooms)],
                   "outliers": [{"image": views[i]["image"], "rms_px": 2.4, "why": "rms > 4 x median"}
                                for i in outliers]},
        "coverage": {"corners_px": np.round(corners, 1).tolist()},
        "evaluation": {"truth": {"fx_rel_max": 0.0013, "pose": {"rotation_deg": 0.031, "translation_mm": 0.42}},
                       "held_out": {"rms_px": 0.31, "views": 40}, "per_zoom": [0.1, 0.2, 0.3]},
    }


# -- plots ---------------------------------------------------------------------------------------


def test_nice_ticks_round_and_covering():
    assert nice_ticks(0, 1000) == [0, 200, 400, 600, 800, 1000]
    for lo, hi in [(0.0013, 0.0871), (-3.7, 12.2), (1100.0, 41234.0), (-0.24, -0.04), (17.0, 17.5)]:
        ticks = nice_ticks(lo, hi)
        assert ticks[0] <= lo and ticks[-1] >= hi
        assert 4 <= len(ticks) <= 12
        steps = np.diff(ticks)
        assert np.allclose(steps, steps[0])
        mantissa = steps[0] / 10 ** math.floor(math.log10(steps[0]))
        assert any(math.isclose(mantissa, m) for m in (1, 2, 2.5, 5))
        assert all(math.isclose(t / steps[0], round(t / steps[0]), abs_tol=1e-9) for t in ticks)
    assert nice_ticks(0.1, 0.7, count=7) == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]  # no 0.30000000000000004
    const = nice_ticks(5.0, 5.0)
    assert const[0] < 5.0 < const[-1]
    assert nice_ticks(float("nan"), 1.0) == [0.0, 1.0]


def test_log_ticks():
    assert log_ticks(1100, 42000) == [1000, 2000, 5000, 10000, 20000, 50000]
    assert log_ticks(1, 1e6) == [1, 10, 100, 1000, 10000, 100000, 1000000]  # beyond 3 decades: 10^k only
    assert log_ticks(3, 3)[0] <= 3 <= log_ticks(3, 3)[-1]
    assert log_ticks(-1, 10) == [1.0, 10.0]


def test_tick_labels_share_decimals():
    assert tick_labels([0, 0.5, 1.0]) == ["0.0", "0.5", "1.0"]
    assert tick_labels([0, 200, 400]) == ["0", "200", "400"]
    assert tick_labels([-0.25, 0.0, 0.25]) == ["-0.25", "0.00", "0.25"]
    assert tick_labels([0.0, 2e-5]) == ["0", "2e-05"]


@pytest.mark.parametrize("size", [(720, 400), (500, 300)])
def test_line_plot_png_has_requested_size(size):
    z = np.linspace(0, 16000, 20)
    png = line_plot([Series(z, 1100 * np.exp(z / 5500), "fx", marker=True, yerr=np.full(20, 5.0)),
                     Series(z, 1101 * np.exp(z / 5500), "fy")], title="f", xlabel="zoom", ylabel="px",
                    log_y=True, size=size)
    image = decode_png(png)
    assert image.shape == (size[1], size[0], 3)
    assert (image == 255).all(axis=2).mean() > 0.6  # white background
    colored = np.abs(image.astype(int) - image.mean(axis=2, keepdims=True)).max(axis=2) > 40
    assert colored.sum() > 500  # the series are drawn in colour


def test_line_plot_draws_data_where_it_belongs():
    """A horizontal red line at y = 1 over y in [0, 2] lies in the middle of the plot."""
    png = line_plot([Series([0, 10], [1, 1], "", (0, 0, 255)), Series([0, 10], [0, 2], "", (255, 255, 255),
                                                                       line=False)], size=(600, 400))
    image = decode_png(png)
    red = (image[:, :, 2] > 200) & (image[:, :, 0] < 80) & (image[:, :, 1] < 80)
    rows = np.nonzero(red.any(axis=1))[0]
    assert rows.size and rows.max() - rows.min() <= 4
    assert 150 < rows.mean() < 250


@pytest.mark.parametrize("series", [
    [Series([1, 2, float("nan"), 4], [1, float("nan"), 3, 4], "nan")],
    [Series([5.0], [7.0], "one point", marker=True, yerr=[1.0])],
    [Series([1, 2, 3], [2.0, 2.0, 2.0], "constant")],
    [Series([], [], "empty")],
    [Series([float("nan")], [float("nan")], "all nan")],
    [],
])
@pytest.mark.parametrize("log_y", [False, True])
def test_line_plot_degenerate_data(series, log_y):
    assert decode_png(line_plot(series, title="t", log_y=log_y)).shape == (400, 720, 3)


def test_line_plot_log_skips_nonpositive():
    png = line_plot([Series([1, 2, 3], [-1.0, 0.0, 10.0], "x", yerr=[5.0, 5.0, 20.0])], log_y=True)
    assert decode_png(png).shape == (400, 720, 3)


def test_other_plots_decode():
    bars = bar_plot(["fx", "k1"], {"a": [1.0, None], "b": [2.0, float("nan")]}, highlight=["a", None],
                    title="cv", log_y=True)
    assert decode_png(bars).shape == (400, 720, 3)
    assert decode_png(bar_plot([], {})).shape == (400, 720, 3)
    scatter = color_scatter_plot([0, 10, 20], [1, 2, float("nan")], [0, 5000, None], value_label="zoom")
    assert decode_png(scatter).shape == (400, 720, 3)
    assert decode_png(color_scatter_plot([], [], [])).shape == (400, 720, 3)
    dens = decode_png(density_plot([[10, 10], [1900, 1000], [float("nan"), 3]], 1920, 1080))
    assert dens.shape[1] == 720 and 300 < dens.shape[0] < 500
    assert decode_png(density_plot([], 0, 0)).shape[1] == 720


def test_density_plot_marks_where_the_points_are():
    """Points only in the left half of the image: the heat map is coloured there only."""
    rng = np.random.default_rng(0)
    pts = np.column_stack([rng.uniform(0, 900, 2000), rng.uniform(0, 1080, 2000)])
    image = decode_png(density_plot(pts, 1920, 1080, plot_width=720)).astype(int)
    colored = np.abs(image - image.mean(axis=2, keepdims=True)).max(axis=2) > 25
    cols = np.nonzero(colored[60:-60, :560].any(axis=0))[0]  # the plot area, without the colour bar
    assert cols.size
    left_edge = np.nonzero((image[200, :, :] < 200).any(axis=1))[0][0]  # first non-white column
    width = 560 - left_edge
    assert cols.max() < left_edge + 0.6 * width


# -- the page -----------------------------------------------------------------------------------


def test_full_report_page():
    report = realistic_report()
    page = render_html(report)
    p = parse(page)
    text = " ".join(p.text)
    assert p.headings[0] == "PTZ calibration report: left"
    for _key, title, _render in SECTIONS:
        assert title in p.headings
    assert "could not be rendered" not in page
    assert "No " not in text.replace("No warnings", "")  # every section had its data
    assert not p.external  # self-contained
    # Summary figures.
    for figure in ("0.287 px", "118", "data/sim_left", "1920 × 1080", "2025-01-02T03:04:05+00:00"):
        assert figure in text, figure
    assert "2 warnings" in text and "k2 held at 3 steps" in text
    # Escaping.
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "blurred &amp; dark" in page
    # Plots: (1) focal, (2) residuals, (3) k1/k2, (4) cx/cy, (5) CV bars, (6) per step + per view,
    # (7) coverage + pan/tilt, (8) zoom translation.
    assert len(p.images) == 10
    for img in p.images:
        src = img["src"]
        assert src.startswith("data:image/png;base64,")
        image = decode_png(base64.b64decode(src.split(",", 1)[1], validate=True))
        assert image.shape[:2] == (int(img["height"]), int(img["width"]))
        assert img["alt"]
    sizes = [(int(i["width"]), int(i["height"])) for i in p.images]
    assert sizes.count((720, 400)) == 9
    # Tables: kinematics, timing, evaluation flattened with dotted keys, chosen family highlighted.
    assert "89.501" in text and "[12.10, 0.00, -30.20]" in text
    assert "truth.pose.rotation_deg" in text and "held_out.views" in text
    assert len(re.findall(r'class="num chosen"', page)) == 6
    assert re.search(r"<td>bundle</td><td class=\"num\">1.60</td>", page)
    assert "rms &gt; 4 x median" in page


def test_minimal_report_says_what_is_missing():
    page = render_html({"camera": "x"})
    p = parse(page)
    assert p.headings[0] == "PTZ calibration report: x"
    assert not p.images
    assert "could not be rendered" not in page
    for key, _title, _render in SECTIONS:
        section = re.search(f'<section id="{key}">(.*?)</section>', page).group(1)
        assert re.search(r'<p class="missing">No [^<]+ in this report\.</p>', section), key
    assert "–" in page  # the summary cards without figures


def test_partial_and_malformed_reports_render():
    report = realistic_report(n_steps=3)
    report["curves"]["fx"]["curve_samples"] = {"zoom": [0, 1], "value": [None, "x"]}
    report["curves"]["k1"] = "not a dict"
    report["bundle"]["views"] = [{"rms_px": None}, {"pan": "a"}]
    report["kinematics"]["pan"] = {"axis": None}
    report["coverage"] = {"corners_px": [[1, 2, 3], [float("nan"), 1], [5, 5]]}
    report["image_size"] = None
    report["timing_s"] = {"total": "fast"}
    report["warnings"] = []
    page = render_html(report)
    parse(page)
    assert "could not be rendered" not in page
    assert "No warnings." in page
    assert render_html({}).startswith("<!DOCTYPE html>")


def test_write_html_is_atomic(tmp_path):
    report = realistic_report(n_steps=4)
    target = tmp_path / "out" / "report.html"
    path = write_html(report, target)
    assert path == target and target.exists()
    assert target.read_text(encoding="utf-8") == render_html(report)
    write_html({"camera": "y"}, target)  # replaced, no temporary files left behind
    assert "PTZ calibration report: y" in target.read_text(encoding="utf-8")
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.html"]
