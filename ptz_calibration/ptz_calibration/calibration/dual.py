"""A dual dataset (``ptz-calib simulate --stereo``) to a calibrated stereo rig: each camera's model
from its folder, or given model files, then the rig's home transform from the synchronized pairs.

The rig is fitted through the correction layers the models carry (:mod:`.rig_calibration`'s
notes), so after ``ptz-calib corrections`` has measured them the rig is fitted again from the
corrected model files: ``models=`` below, ``ptz-calib calibrate DIR OUT --models L.yaml R.yaml``.

```python
from ptz_calibration.calibration.dual import calibrate_dual, load_camera_model
cal = calibrate_dual("data/dual", "out")            # out/left, out/right, out/rig.yaml
cal = calibrate_dual("data/dual", "out", models=[load_camera_model("left_corrected.yaml"), ...])
cal.rig.rig, cal.files["rig"], cal.notes
```
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from ..fileio import atomic_write_text
from ..model import ModelFileError, PtzCameraModel, load_model
from ..model.rig_uncertainty import ZoomStd
from ..model.stereo_rig import save_rig_model
from .dataset import DatasetError, load_dataset
from .pipeline import CameraCalibration, PipelineError, PipelineOptions, calibrate_camera, write_calibration
from .rig_calibration import RigCalibration, RigCalibrationError, RigOptions, calibrate_rig, zoom_translation_std

__all__ = ["DualCalibrationError", "CameraModelFile", "DualCalibration", "load_camera_model", "calibrate_dual"]


class DualCalibrationError(ValueError):
    """The dual dataset or the given models cannot be calibrated into a rig (the message says why)."""


@dataclass(frozen=True)
class CameraModelFile:
    """A calibrated model read from a file, with the zoom translation std of its calibration."""

    model: PtzCameraModel
    zoom_std: ZoomStd
    source: str
    note: str = ""  # why the std is missing, if it is


@dataclass
class DualCalibration:
    """Result of :func:`calibrate_dual`."""

    cameras: tuple[str, str]  # left, right: the stereo dataset's order
    results: dict[str, CameraCalibration]  # the cameras calibrated now (none for given models)
    rig: RigCalibration  # its rig holds the models it was fitted through
    files: dict[str, Any]  # camera -> its files (calibrated now) or {"model": source}; rig, rig_report
    notes: list[str] = field(default_factory=list)


def load_camera_model(path: str | Path) -> CameraModelFile:
    """A model file and the zoom translation std from the calibration report beside it
    (``report.json`` of ``ptz-calib calibrate``; without it the rig's covariance leaves that std
    out, and ``note`` says so)."""
    try:
        model = load_model(path)
    except ModelFileError as exc:
        raise DualCalibrationError(str(exc)) from None
    report_file = Path(path).expanduser().parent / "report.json"
    note = ""
    std = ZoomStd()
    try:
        report = json.loads(report_file.read_text())
        if report.get("camera") not in (None, model.camera_name):
            note = f"{report_file} is camera {report.get('camera')!r}'s report"
        else:
            std = zoom_translation_std(report)
    except FileNotFoundError:
        note = f"no {report_file}"
    except (OSError, ValueError, TypeError, AttributeError, KeyError) as exc:
        note = f"{report_file}: {exc}"
    if note:
        note += f": the rig's covariance leaves {model.camera_name}'s zoom translation uncertainty out"
    return CameraModelFile(model, std, str(path), note)


def calibrate_dual(root: str | Path, out: str | Path, options: PipelineOptions = PipelineOptions(),
                   rig_options: RigOptions = RigOptions(), models: Optional[Sequence[CameraModelFile]] = None,
                   html: bool = True, progress: Optional[Callable[[str, float, dict[str, Any]], None]] = None,
                   ) -> DualCalibration:
    """Calibrate each camera of the dual dataset ``root`` (``root/<camera>``, written to
    ``out/<camera>``; previous model files kept as ``.bak``) or take ``models`` (matched to the
    cameras by ``camera_name``; no camera is calibrated then), and fit the rig from
    ``root/stereo`` through them: ``out/rig.yaml`` (previous kept as ``.bak``) and
    ``out/rig_report.json``. Nothing is written when a step fails."""
    root, out = Path(root).expanduser(), Path(out).expanduser()
    try:
        stereo = load_dataset(root / "stereo")
    except DatasetError as exc:
        raise DualCalibrationError(str(exc)) from None
    names = sorted(stereo.cameras)
    if len(names) != 2:
        raise DualCalibrationError(f"{stereo.source}: expected two cameras, found {', '.join(names) or 'none'}")
    order = tuple((stereo.metadata or {}).get("cameras") or names)
    if sorted(order) != names:
        raise DualCalibrationError(f"{stereo.source}: metadata cameras {list(order)} are not its cameras {names}")
    notes: list[str] = []
    chosen: dict[str, PtzCameraModel] = {}
    zoom_std: dict[str, ZoomStd] = {}
    results: dict[str, CameraCalibration] = {}
    files: dict[str, Any] = {}
    if models is not None:
        given = {m.model.camera_name: m for m in models}
        if sorted(given) != names or len(models) != 2:
            raise DualCalibrationError(
                f"the models are of camera(s) {', '.join(m.model.camera_name for m in models) or 'none'}; "
                f"{stereo.source} has {', '.join(names)}: one model per camera")
        for name in order:
            chosen[name], zoom_std[name] = given[name].model, given[name].zoom_std
            files[name] = {"model": given[name].source}
            notes += [given[name].note] if given[name].note else []
    else:
        for name in order:
            try:
                results[name] = calibrate_camera(load_dataset(root / name), name, options, progress)
            except (DatasetError, PipelineError) as exc:
                raise DualCalibrationError(f"camera {name}: {exc}") from None
            chosen[name] = results[name].model
            zoom_std[name] = zoom_translation_std(results[name].report)
    try:
        rig = calibrate_rig(stereo, chosen[order[0]], chosen[order[1]], options=rig_options,
                            zoom_std=(zoom_std[order[0]], zoom_std[order[1]]))
    except RigCalibrationError as exc:
        raise DualCalibrationError(str(exc)) from None
    for name, result in results.items():  # only now: a failed rig leaves the previous files alone
        files[name] = write_calibration(result, out / name, html=html)
    files["rig"] = str(save_rig_model(rig.rig, out / "rig.yaml"))
    files["rig_report"] = str(atomic_write_text(out / "rig_report.json",
                                                json.dumps(rig.report, indent=1, allow_nan=False) + "\n"))
    return DualCalibration((order[0], order[1]), results, rig, files, notes)
