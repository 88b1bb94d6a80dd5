"""Stereo maths of two PTZ cameras (pure Python: no rclpy, no message types).

```python
from ptz_calibration.stereo import PtzSample, StateHistory, common_stamp, triangulate, localize
left, right = StateHistory(), StateHistory()
left.add(PtzSample(stamp, pan, tilt, zoom_raw))              # per feedback sample
t = common_stamp(left, right)                                # latest stamp both can serve
R, T = rig.extrinsics(left.at(t).setting, right.at(t).setting)
loc = localize(rig, left.at(t).setting, right.at(t).setting, (u_l, v_l), (u_r, v_r))
loc.point, loc.covariance                                    # left optical frame, m, m^2
```
"""

from .interpolation import PtzSample, StateHistory, StateOutOfRange, common_stamp
from .projection import (
    UNDISTORT_CRITERIA,
    Lens,
    Projection,
    StackedLens,
    project,
    project_components,
    project_stacked,
    undistort,
)
from .triangulation import (
    BatchLocalization,
    Localization,
    TriangulationError,
    localize,
    triangulate,
    triangulate_pixels,
)

__all__ = [
    "PtzSample", "StateHistory", "StateOutOfRange", "common_stamp",
    "UNDISTORT_CRITERIA", "Lens", "Projection", "StackedLens", "project", "project_components", "project_stacked",
    "undistort",
    "BatchLocalization", "Localization", "TriangulationError", "localize", "triangulate", "triangulate_pixels",
]
