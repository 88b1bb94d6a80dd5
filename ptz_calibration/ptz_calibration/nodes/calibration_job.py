"""The parts of the ``ptz_calibrator`` node that need no ROS: what to capture (the simulator's
protocol plan or a protocol file), where results go, and the calibration pipeline run in a
child process.

No rclpy here: the child process (``multiprocessing`` "spawn" context: never fork a process
that runs rclpy threads) imports this module and the pipeline only.

Protocol file (YAML; docs/dataset.md, "Protocol files")::

    targets:                  # the boards, by name (the dataset's target dict form)
      big: {type: checkerboard, rows: 7, cols: 10, square: 0.1}
    zoom_range: [0, 16384]    # optional: raw zoom at the widest and longest setting
    views:                    # in order; pan, tilt in rad, zoom raw (as ~/move_to takes them)
      - {pan: 0.05, tilt: -0.02, zoom: 0, target: big, tag: zoom_sweep}
"""

from __future__ import annotations

import multiprocessing
import os
import queue as queue_module
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional

from ..calibration.capture_protocol import PlannedView, ProtocolOptions, plan_protocol
from ..calibration.targets import Target, TargetSpecError, target_from_dict
from ..fields import FieldReader
from ..fileio import FileFieldError, read_structured
from .calibration import ros_home

#: tags the calibration pipeline knows (a protocol file may use others; they are kept as given)
KNOWN_TAGS = ("zoom_sweep", "pan_sweep", "tilt_sweep")
_VIEW_KEYS = {"pan", "tilt", "zoom", "target", "tag"}
_TOP_KEYS = {"targets", "views", "zoom_range", "metadata"}


class ProtocolFileError(FileFieldError):
    """A protocol file that cannot be used; the message names the file and the field."""


class _Reader(FieldReader):
    error = ProtocolFileError


@dataclass
class CapturePlan:
    """What the calibrator captures: the views in order and the boards they show."""

    views: list[PlannedView]
    targets: dict[str, Target]
    zoom_range: Optional[tuple[float, float]] = None
    source: str = ""
    notes: list[str] = field(default_factory=list)


def load_protocol_file(path: str | os.PathLike) -> CapturePlan:
    """Read a protocol file (module notes); :class:`ProtocolFileError` naming the file and field."""
    source = str(path)
    top = _Reader(read_structured(Path(path).expanduser(), ProtocolFileError), source)
    top.check_keys(_TOP_KEYS)
    block = top.get("targets")
    if not isinstance(block, Mapping) or not block:
        raise top.fail("targets", f"expected a non-empty mapping of names to target descriptions, got {block!r}")
    targets: dict[str, Target] = {}
    for name, spec in block.items():
        if not isinstance(name, str) or not name:
            raise top.fail("targets", f"target names must be non-empty strings, got {name!r}")
        try:
            targets[name] = target_from_dict(spec, source, f"targets.{name}")
        except TargetSpecError as exc:
            raise ProtocolFileError(source, exc.field, exc.problem) from None
    zoom_range = None
    if top.has("zoom_range"):
        lo, hi = top.vector("zoom_range", 2)
        if lo > hi:
            raise top.fail("zoom_range", f"expected [raw_min, raw_max] with raw_min <= raw_max, got {[lo, hi]}")
        zoom_range = (float(lo), float(hi))
    views = []
    items = top.items("views")
    if not items:
        raise top.fail("views", "the list is empty")
    for item in items:
        item.check_keys(_VIEW_KEYS)
        target = item.string("target", next(iter(targets)) if len(targets) == 1 else ...)
        if target not in targets:
            raise item.fail("target", f"unknown target {target!r} (targets: {', '.join(targets)})")
        tag = item.string("tag", "zoom_sweep")
        zoom = item.number("zoom")
        if zoom_range is not None and not zoom_range[0] <= zoom <= zoom_range[1]:
            raise item.fail("zoom", f"{zoom:g} is outside zoom_range {list(zoom_range)}")
        views.append(PlannedView(tag=tag, target=target, pan=item.number("pan"), tilt=item.number("tilt"),
                                 zoom=zoom, role="file"))
    return CapturePlan(views, targets, zoom_range, source)


def protocol_options(zoom_steps: int = 0, views_per_step: int = 0, pan_sweep: int = 0, tilt_sweep: int = 0,
                     **fixed: Any) -> ProtocolOptions:
    """:class:`ProtocolOptions` with the goal's settings; 0 keeps the default."""
    d = ProtocolOptions()
    return ProtocolOptions(zoom_steps=zoom_steps or d.zoom_steps, views_per_step=views_per_step or d.views_per_step,
                           pan_sweep=pan_sweep or d.pan_sweep, tilt_sweep=tilt_sweep or d.tilt_sweep, **fixed)


def simulator_plan(rig_file: str, camera: str, options: ProtocolOptions) -> CapturePlan:
    """The capture protocol of ``camera`` of a rig file ('' = the package's sim rig)."""
    from ..drivers.simulated import default_rig_file
    from ..simulation import load_rig

    rig = load_rig(rig_file or default_rig_file())
    if camera not in rig.cameras:
        raise ValueError(f"camera {camera!r} is not in the rig {rig.source} (cameras: {', '.join(rig.cameras)})")
    spec = rig.cameras[camera]
    plan = plan_protocol(spec, rig, options)
    if not plan.views:
        raise ValueError("the protocol has no views: " + "; ".join(plan.skipped))
    names = sorted({v.target for v in plan.views})
    zm = spec.model.zoom_mapping
    return CapturePlan(plan.views, {n: rig.scene.target(n).target for n in names}, (zm.raw_min, zm.raw_max),
                       str(rig.source), list(plan.skipped))


def default_output_dir(camera: str) -> Path:
    """A new ``$ROS_HOME/ptz_calibration/calibrations/<camera>_<YYYYmmdd-HHMMSS>[_n]`` folder name."""
    base = Path(ros_home()) / "ptz_calibration" / "calibrations" / f"{camera}_{time.strftime('%Y%m%d-%H%M%S')}"
    out, n = base, 1
    while out.exists():
        n += 1
        out = base.with_name(f"{base.name}_{n}")
    return out


# -- report figures ------------------------------------------------------------------------------


def _figure(value: Any) -> Optional[str]:
    if isinstance(value, bool) or isinstance(value, str):
        return str(value)
    if isinstance(value, (int, float)):
        return f"{value:.6g}" if isinstance(value, float) else str(value)
    if isinstance(value, (list, tuple)) and 0 < len(value) <= 6 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return "[" + ", ".join(f"{float(v):.6g}" for v in value) + "]"
    return None


def _flatten(prefix: str, value: Any, depth: int) -> Iterator[tuple[str, str]]:
    if isinstance(value, Mapping):
        if depth <= 0:
            return
        for key, item in value.items():
            yield from _flatten(f"{prefix}.{key}", item, depth - 1)
        return
    text = _figure(value)
    if text is not None:
        yield prefix, text


def report_figures(report: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(key, value) of the scalar error figures of a report's ``summary`` and ``kinematics``
    (dotted keys, e.g. ``kinematics.pan.axis_std_deg``; short number lists as ``[a, b, c]``)."""
    out: list[tuple[str, str]] = []
    for section in ("summary", "kinematics"):
        if isinstance(report.get(section), Mapping):
            out += list(_flatten(section, report[section], 3))
    return out


# -- the pipeline in a child process ------------------------------------------------------------


def _plain_info(info: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for key in ("views_accepted", "views_total", "rms_px"):
        value = info.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = float(value) if key == "rms_px" else int(value)
    return out


def run_pipeline(dataset_dir: str, out_dir: str, camera: str, messages: Any, cancel: Any) -> None:
    """Child process body: load the dataset, calibrate, write the results; report on ``messages``.

    Messages: ``("progress", stage, fraction, info)``, then one of ``("done", result dict)``,
    ``("error", message)``, ``("cancelled", message)``.
    """
    try:
        from ..calibration.dataset import DatasetError, load_dataset
        from ..calibration.pipeline import (Cancelled, PipelineError, PipelineOptions, calibrate_camera,
                                            write_calibration)
    except ImportError as exc:
        messages.put(("error", f"the calibration pipeline is not available: {exc}"))
        return
    try:
        dataset = load_dataset(dataset_dir)
        messages.put(("progress", "load", 0.0, {"views_total": len(dataset.captures)}))
        name = camera if camera in dataset.cameras else None
        result = calibrate_camera(dataset, name, PipelineOptions(),
                                  progress=lambda stage, f, info: messages.put(("progress", stage, float(f),
                                                                                _plain_info(info or {}))),
                                  cancel=cancel.is_set)
        if cancel.is_set():
            raise Cancelled("calibration cancelled")
        files = write_calibration(result, out_dir)
        summary = result.report.get("summary", {}) if isinstance(result.report, Mapping) else {}
        messages.put(("done", {"rms_px": float(result.rms_px), "files": dict(files), "camera": result.camera,
                               "figures": report_figures(result.report),
                               "views_used": int(summary.get("views_used", 0) or 0),
                               "views_total": len(dataset.captures)}))
    except Cancelled as exc:
        messages.put(("cancelled", str(exc) or "calibration cancelled"))
    except (PipelineError, DatasetError) as exc:
        messages.put(("error", str(exc)))
    except Exception as exc:  # noqa: BLE001 - everything goes back to the node as a message
        messages.put(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=6)}"))


class PipelineProcess:
    """:func:`run_pipeline` in a "spawn" child process, its messages read by the caller."""

    def __init__(self, dataset_dir: str, out_dir: str, camera: str) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.messages = ctx.Queue()
        self.cancel_event = ctx.Event()
        self.process = ctx.Process(target=run_pipeline, name=f"ptz_calibration pipeline {camera}",
                                   args=(dataset_dir, out_dir, camera, self.messages, self.cancel_event),
                                   daemon=True)

    def start(self) -> None:
        self.process.start()

    def next_message(self, timeout: float) -> Optional[tuple]:
        """The next message, or None after ``timeout`` s; ``("error", ...)`` if the child died silently."""
        try:
            return self.messages.get(timeout=timeout)
        except queue_module.Empty:
            pass
        if self.process.is_alive():
            return None
        try:  # it may have put its last message just before exiting
            return self.messages.get(timeout=0.5)
        except queue_module.Empty:
            return ("error", f"the calibration process ended without a result (exit code {self.process.exitcode})")

    def stop(self, grace: float) -> None:
        """Ask the pipeline to stop; terminate the child if it has not ended after ``grace`` s."""
        self.cancel_event.set()
        self.process.join(grace)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5.0)
        if self.process.is_alive():  # pragma: no cover - terminate() is SIGTERM; last resort
            self.process.kill()
            self.process.join(5.0)

    def close(self) -> None:
        """Release the queue (after the child has ended)."""
        self.messages.close()
        self.messages.join_thread()

