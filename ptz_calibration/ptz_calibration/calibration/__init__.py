"""Calibration of PTZ cameras and stereo pairs (pure Python: no rclpy): targets, detection,
intrinsics, datasets, the capture protocol and intrinsics over zoom.

Modules: ``targets`` (descriptions), ``detection`` (corners), ``flags`` (calibrateCamera flags by
name), ``intrinsics`` (Zhang's method), ``uncertainty`` (standard deviations that stay honest when
ill-conditioned), ``conditioning`` (what the views cannot determine, e.g. at long focal lengths),
``dataset`` (the on-disk dataset: manifest + images, docs/dataset.md), ``capture_protocol`` (drive
a simulated camera through the protocol and write a dataset with its ground truth), ``zoom_fit``
(per-step Zhang, linked steps, curves over zoom chosen by leave-one-zoom-out cross-validation).
The whole camera: ``pipeline`` (sweeps, bundle adjustment, report); the stereo pair:
``rig_calibration`` (home extrinsics), ``dual`` (a dual dataset to both models and the rig, or the
rig again from model files).

```python
from ptz_calibration.calibration import (
    parse_target, target_from_dict, detect_file, detect, DetectionOptions,
    calibrate_intrinsics, CalibrationOptions, parse_flags)
board = parse_target("checkerboard:9x6:0.025")       # or target_from_dict(manifest["target"])
results = [detect_file(p, board) for p in paths]     # Detection, or NotFound(reason, message)
calib = calibrate_intrinsics(results, CalibrationOptions(flags=parse_flags("FIX_ASPECT_RATIO")))
calib.camera_matrix, calib.distortion, calib.rms, calib.std_intrinsics, calib.fixed
write_camera_info("cam.yaml", calib.camera_info("cam"))   # ptz_calibration.model

result = simulate_dataset(None, "data/sim", "left", ProtocolOptions(zoom_steps=20))  # default rig
ds = load_dataset("data/sim")                 # usable captures; ds.dropped says what was left out
fit = calibrate_zoom(ds, "left")              # ZoomFit: .intrinsics, .mapping, .report, .model()
fit.intrinsics.camera_matrix(8000.0), fit.parameters["fx"].family, fit.report["steps"]
```
"""

from .capture_protocol import (
    ProtocolOptions,
    ProtocolPlan,
    SimClock,
    SimulationResult,
    load_truth,
    plan_protocol,
    run_protocol,
    simulate_dataset,
)
from .conditioning import TERMS, IllConditioned, Term, corner_radius, effect_std, find_ill_conditioned
from .detection import (
    Detection,
    DetectionOptions,
    DetectionResult,
    ImageReadError,
    NotFound,
    NotFoundReason,
    as_gray8,
    detect,
    detect_charuco,
    detect_checkerboard,
    detect_file,
    detect_files,
    read_image,
)
from .dataset import Capture, Dataset, DatasetError, DroppedCapture, load_dataset, manifest_dict, save_manifest
from .flags import CALIB_FLAGS, flag_names, parse_flags
from .intrinsics import (
    INTRINSIC_NAMES,
    CalibrationError,
    CalibrationOptions,
    IntrinsicCalibration,
    calibrate_intrinsics,
)
from .targets import (
    CharucoTarget,
    Checkerboard,
    Target,
    TargetSpecError,
    describe_target,
    parse_target,
    target_from_dict,
    target_to_dict,
)
from .uncertainty import calibration_std, free_intrinsics
from .zoom_fit import (
    FAMILIES,
    ZOOM_PARAMETERS,
    ParameterFit,
    ZoomFit,
    ZoomFitError,
    ZoomFitOptions,
    ZoomStep,
    calibrate_zoom,
    fit_parameter,
    group_zoom_steps,
)

__all__ = [
    "TERMS", "IllConditioned", "Term", "corner_radius", "effect_std", "find_ill_conditioned",
    "Detection", "DetectionOptions", "DetectionResult", "ImageReadError", "NotFound", "NotFoundReason",
    "as_gray8", "detect", "detect_charuco", "detect_checkerboard", "detect_file", "detect_files",
    "read_image",
    "CALIB_FLAGS", "flag_names", "parse_flags",
    "INTRINSIC_NAMES", "CalibrationError", "CalibrationOptions", "IntrinsicCalibration",
    "calibrate_intrinsics",
    "CharucoTarget", "Checkerboard", "Target", "TargetSpecError", "describe_target", "parse_target",
    "target_from_dict", "target_to_dict",
    "calibration_std", "free_intrinsics",
    "Capture", "Dataset", "DatasetError", "DroppedCapture", "load_dataset", "manifest_dict", "save_manifest",
    "ProtocolOptions", "ProtocolPlan", "SimClock", "SimulationResult", "load_truth", "plan_protocol",
    "run_protocol", "simulate_dataset",
    "FAMILIES", "ZOOM_PARAMETERS", "ParameterFit", "ZoomFit", "ZoomFitError", "ZoomFitOptions", "ZoomStep",
    "calibrate_zoom", "fit_parameter", "group_zoom_steps",
]
