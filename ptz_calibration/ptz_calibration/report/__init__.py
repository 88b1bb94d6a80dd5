"""The calibration report as a self-contained HTML page with PNG plots (pure Python: no rclpy,
no plotting library; the plots are drawn with OpenCV).

```python
from ptz_calibration.report import render_html, write_html
write_html(calibration.report, "out/report.html")   # atomic; returns the path
page = render_html({"camera": "left"})                # every key but camera is optional
```

Modules: ``plots`` (PNG charts: :func:`line_plot`, :func:`bar_plot`, :func:`color_scatter_plot`,
:func:`density_plot`, round :func:`nice_ticks` and :func:`log_ticks`), ``html`` (the page).
"""

from .html import SECTIONS, render_html, write_html
from .plots import (
    PALETTE,
    Series,
    bar_plot,
    color_scatter_plot,
    density_plot,
    line_plot,
    log_ticks,
    nice_ticks,
    tick_labels,
)

__all__ = [
    "PALETTE",
    "SECTIONS",
    "Series",
    "bar_plot",
    "color_scatter_plot",
    "density_plot",
    "line_plot",
    "log_ticks",
    "nice_ticks",
    "render_html",
    "tick_labels",
    "write_html",
]
