"""Correction layers on top of a calibrated PTZ model (pure Python: no rclpy, no messages).

* :mod:`.pointing`: pan-tilt correction map (harmonic gear error, backlash by direction);
* :mod:`.thermal`: temperature compensation of boresight and focal length;
* :mod:`.zoom_offset`: per-zoom optical offset table;
* :mod:`.field`: the head rotation measured by the one-click recalibration;
* :mod:`.layers`: the set a model carries (``model.corrections``), stored in its YAML;
* :mod:`.apply`: reported feedback -> actual angles, pose and K with the layers applied.
"""

from .field import FieldCorrection, solve_field_rotation
from .layers import LAYERS, CorrectionLayers
from .pointing import AxisMap, DirectionTracker, PointingMap, fit_axis_map
from .thermal import ThermalCompensation, fit_thermal
from .zoom_offset import ZoomOffsetTable, measure_zoom_offsets

__all__ = ["AxisMap", "CorrectionLayers", "DirectionTracker", "FieldCorrection", "LAYERS", "PointingMap",
           "ThermalCompensation", "ZoomOffsetTable", "fit_axis_map", "fit_thermal", "measure_zoom_offsets",
           "solve_field_rotation"]
