"""The on-disk calibration dataset: a folder of images and a manifest listing every capture.

Layout (see ``docs/dataset.md`` for the full description)::

    DATASET_DIR/
      manifest.yaml          # or manifest.json (same content)
      images/...             # image files, any layout; paths in the manifest are relative
      truth.yaml             # optional, simulator ground truth (not read by calibration)

Manifest (``format_version`` 1; SI units, radians, raw zoom)::

    format: ptz_calibration/dataset
    format_version: 1
    targets:                        # named target descriptions (calibration.targets dict form)
      board: {type: checkerboard, rows: 7, cols: 10, square: 0.1}
    # or a single unnamed target:   target: {type: charuco, squares_x: 10, ...}
    zoom_range: [0, 16384]          # optional: raw zoom of the widest and the longest setting
    metadata: {...}                 # optional, free form (generator, rig, seed, protocol, ...)
    captures:
      - image: images/left_000.png  # relative to the manifest's folder
        camera: left                # camera name
        pan: 0.0349                 # rad, REPORTED by the head (feedback)
        tilt: -0.0524               # rad, reported
        zoom: 4096                  # raw device zoom, reported
        temperature: 23.5           # deg C, or null if the camera has no sensor
        stamp: 1712.034             # s, image time stamp, or null
        target: board               # which target the image shows (optional with one target)
        tag: zoom_sweep             # optional: which part of the protocol took it

:func:`load_dataset` validates everything. A problem with the manifest as a whole (not YAML,
wrong format, a bad target description, no capture list) raises :class:`DatasetError` naming the
file and the field. A problem with one capture (a missing or non-finite field, an unknown target
or camera, a missing image file) drops that capture: the loaded :class:`Dataset` holds what is
usable and ``dropped`` says what was left out and why (file, capture index, field). If no
capture is usable, :class:`DatasetError` lists the reasons. :func:`save_manifest` writes
atomically (a reader never sees half a manifest).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Mapping, Optional, Sequence

import yaml

from ..fileio import FileFieldError, atomic_write_text, read_structured
from .targets import Target, TargetSpecError, target_from_dict, target_to_dict

__all__ = [
    "DATASET_FORMAT",
    "DATASET_FORMAT_VERSION",
    "MANIFEST_NAMES",
    "DatasetError",
    "Capture",
    "DroppedCapture",
    "Dataset",
    "load_dataset",
    "find_manifest",
    "manifest_dict",
    "save_manifest",
]

DATASET_FORMAT = "ptz_calibration/dataset"
DATASET_FORMAT_VERSION = 1
#: Manifest file names looked for in a dataset folder, in this order.
MANIFEST_NAMES = ("manifest.yaml", "manifest.yml", "manifest.json")
#: Name of the target of a manifest with a single ``target:`` block.
SINGLE_TARGET = "target"

_TOP_KEYS = {"format", "format_version", "targets", "target", "zoom_range", "metadata", "captures"}
_CAPTURE_KEYS = ("image", "camera", "pan", "tilt", "zoom", "temperature", "stamp", "target", "tag")


class DatasetError(FileFieldError):
    """A dataset that cannot be used; the message names the file and, where known, the field."""

    NO_FIELD = ""


@dataclass(frozen=True)
class Capture:
    """One image with the head's reported state when it was taken."""

    image: str  # path relative to the dataset folder (POSIX separators)
    camera: str
    pan: float  # rad, reported
    tilt: float  # rad, reported
    zoom: float  # raw zoom, reported
    temperature: Optional[float] = None  # deg C
    stamp: Optional[float] = None  # s
    target: Optional[str] = None  # target name (None: the dataset's only target)
    tag: Optional[str] = None  # protocol part, e.g. "zoom_sweep", "pan_sweep"
    index: int = -1  # position in the manifest's capture list (set by the loader)

    def to_dict(self) -> dict[str, Any]:
        """Manifest form (``index`` is implied by the position)."""
        out: dict[str, Any] = {"image": self.image, "camera": self.camera, "pan": float(self.pan),
                               "tilt": float(self.tilt), "zoom": _plain_number(self.zoom),
                               "temperature": None if self.temperature is None else float(self.temperature),
                               "stamp": None if self.stamp is None else float(self.stamp)}
        if self.target is not None:
            out["target"] = self.target
        if self.tag is not None:
            out["tag"] = self.tag
        return out


@dataclass(frozen=True)
class DroppedCapture:
    """A capture of the manifest that cannot be used, and why."""

    source: str  # manifest file
    index: int  # position in the capture list
    image: Optional[str]  # its image entry, if readable
    field: str  # the offending field ("" for the capture as a whole)
    problem: str

    def __str__(self) -> str:
        what = f"captures[{self.index}]" + (f" ({self.image})" if self.image else "")
        where = f" field '{self.field}':" if self.field else ""
        return f"{self.source}: {what}:{where} {self.problem}"

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "image": self.image, "field": self.field, "problem": self.problem,
                "message": str(self)}


@dataclass
class Dataset:
    """A loaded dataset: usable captures, targets by name, and what was dropped."""

    root: Path  # folder the image paths are relative to
    source: str  # the manifest file
    targets: dict[str, Target]
    captures: list[Capture]
    dropped: list[DroppedCapture] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    zoom_range: Optional[tuple[float, float]] = None
    metadata: dict[str, Any] = field(default_factory=dict)
    total: int = 0  # captures listed in the manifest (usable + dropped)

    @property
    def cameras(self) -> list[str]:
        """Camera names of the usable captures, in order of first appearance."""
        return list(dict.fromkeys(c.camera for c in self.captures))

    def image_path(self, capture: Capture) -> Path:
        """Absolute path of a capture's image."""
        return self.root / capture.image

    def target_of(self, capture: Capture) -> Target:
        """The target a capture shows."""
        return self.targets[capture.target if capture.target is not None else next(iter(self.targets))]

    def target_name(self, capture: Capture) -> str:
        """The name of the target a capture shows."""
        return capture.target if capture.target is not None else next(iter(self.targets))

    def for_camera(self, camera: Optional[str]) -> "Dataset":
        """The captures of one camera (None: the only camera; DatasetError if there are several)."""
        names = self.cameras
        if camera is None:
            if len(names) > 1:
                raise DatasetError(self.source, "captures.camera",
                                   f"captures of {len(names)} cameras ({', '.join(names)}): choose one")
            return self
        if camera not in names:
            raise DatasetError(self.source, "captures.camera", f"no usable capture of camera {camera!r} "
                                                               f"(cameras: {', '.join(names) or 'none'})")
        return replace(self, captures=[c for c in self.captures if c.camera == camera])


def _plain_number(value: float) -> float | int:
    return int(value) if float(value).is_integer() and abs(value) < 2**53 else float(value)


# -- reading -------------------------------------------------------------------------------------
def find_manifest(path: str | os.PathLike) -> Path:
    """The manifest of a dataset folder (or ``path`` itself if it is a file)."""
    p = Path(path).expanduser()
    if p.is_dir():
        for name in MANIFEST_NAMES:
            if (p / name).is_file():
                return p / name
        raise DatasetError(str(p), "", f"no manifest in this folder (looked for {', '.join(MANIFEST_NAMES)})")
    if not p.exists():
        raise DatasetError(str(p), "", "no such file or folder")
    return p


def _parse(path: Path) -> Any:
    return read_structured(path, DatasetError)


def _targets(top: Mapping[str, Any], source: str) -> dict[str, Target]:
    if ("target" in top) == ("targets" in top):
        raise DatasetError(source, "targets", "give exactly one of 'target' (one target description) "
                                              "or 'targets' (a mapping of names to descriptions)")
    try:
        if "target" in top:
            return {SINGLE_TARGET: target_from_dict(top["target"], source, "target")}
        block = top["targets"]
        if not isinstance(block, Mapping) or not block:
            raise DatasetError(source, "targets", "expected a non-empty mapping of names to target "
                                                  f"descriptions, got {block!r}")
        out = {}
        for name, spec in block.items():
            if not isinstance(name, str) or not name:
                raise DatasetError(source, "targets", f"target names must be non-empty strings, got {name!r}")
            out[name] = target_from_dict(spec, source, f"targets.{name}")
        return out
    except TargetSpecError as exc:
        raise DatasetError(source, exc.field, exc.problem) from None


def _zoom_range(top: Mapping[str, Any], source: str) -> Optional[tuple[float, float]]:
    value = top.get("zoom_range")
    if value is None:
        return None
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(_is_number(v) and math.isfinite(v) for v in value) or value[0] > value[1]):
        raise DatasetError(source, "zoom_range", f"expected [raw_min, raw_max] with raw_min <= raw_max, "
                                                 f"got {value!r}")
    return float(value[0]), float(value[1])


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class _Drop(Exception):
    def __init__(self, field: str, problem: str) -> None:
        super().__init__(problem)
        self.field, self.problem = field, problem


def _capture(item: Any, index: int, targets: Mapping[str, Target], root: Path, check_images: bool,
             warnings: list[str], source: str) -> Capture:
    if not isinstance(item, Mapping):
        raise _Drop("", f"expected a mapping with image, camera, pan, tilt, zoom, got {type(item).__name__}")
    unknown = sorted(str(k) for k in item if k not in _CAPTURE_KEYS)
    if unknown:
        raise _Drop(unknown[0], f"unknown field (allowed: {', '.join(_CAPTURE_KEYS)})")
    image = item.get("image")
    if not isinstance(image, str) or not image.strip():
        raise _Drop("image", f"expected a relative file path, got {image!r}")
    if Path(image).is_absolute() or PurePosixPath(image.replace("\\", "/")).is_absolute():
        raise _Drop("image", f"must be relative to the dataset folder, got {image!r}")
    camera = item.get("camera")
    if not isinstance(camera, str) or not camera:
        raise _Drop("camera", f"expected a camera name, got {camera!r}")
    values = {}
    for key, unit in (("pan", "rad"), ("tilt", "rad"), ("zoom", "raw zoom")):
        if key not in item or item[key] is None:
            raise _Drop(key, "missing (the reported position is needed)")
        v = item[key]
        if not _is_number(v):
            raise _Drop(key, f"expected a number ({unit}), got {v!r}")
        if not math.isfinite(v):
            raise _Drop(key, f"feedback is not finite ({v}): the head's reported position is unknown")
        values[key] = float(v)
    optional = {}
    for key, unit in (("temperature", "deg C"), ("stamp", "s")):
        v = item.get(key)
        if v is None:
            optional[key] = None
            continue
        if not _is_number(v):
            raise _Drop(key, f"expected a number ({unit}) or null, got {v!r}")
        if not math.isfinite(v):
            warnings.append(f"{source}: captures[{index}] ({image}): field '{key}': {v} read as unknown (null)")
            optional[key] = None
            continue
        optional[key] = float(v)
    target = item.get("target")
    if target is not None and (not isinstance(target, str) or target not in targets):
        raise _Drop("target", f"unknown target {target!r} (targets: {', '.join(targets)})")
    if target is None and len(targets) > 1:
        raise _Drop("target", f"missing: the dataset has {len(targets)} targets ({', '.join(targets)})")
    tag = item.get("tag")
    if tag is not None and not isinstance(tag, str):
        raise _Drop("tag", f"expected a string, got {tag!r}")
    if check_images:
        path = root / image
        if not path.exists():
            raise _Drop("image", f"image file not found: {path}")
        if not path.is_file():
            raise _Drop("image", f"not a file: {path}")
    return Capture(image=image, camera=camera, pan=values["pan"], tilt=values["tilt"], zoom=values["zoom"],
                   temperature=optional["temperature"], stamp=optional["stamp"], target=target, tag=tag,
                   index=index)


def load_dataset(path: str | os.PathLike, check_images: bool = True) -> Dataset:
    """Read and validate a dataset (its folder or its manifest file).

    Unusable captures are dropped and listed in ``Dataset.dropped``; :class:`DatasetError` if the
    manifest itself is invalid or no capture is usable. ``check_images=False`` skips the check
    that every image file exists.
    """
    manifest = find_manifest(path)
    source = str(manifest)
    top = _parse(manifest)
    if not isinstance(top, Mapping):
        raise DatasetError(source, "", f"expected a mapping at the top level, got {type(top).__name__}")
    unknown = sorted(str(k) for k in top if k not in _TOP_KEYS)
    if unknown:
        raise DatasetError(source, unknown[0], f"unknown field (allowed: {', '.join(sorted(_TOP_KEYS))})")
    fmt = top.get("format", DATASET_FORMAT)
    if fmt != DATASET_FORMAT:
        raise DatasetError(source, "format", f"expected {DATASET_FORMAT!r}, got {fmt!r}")
    version = top.get("format_version", DATASET_FORMAT_VERSION)
    if version != DATASET_FORMAT_VERSION:
        raise DatasetError(source, "format_version", f"unsupported version {version!r} (this software "
                                                     f"reads {DATASET_FORMAT_VERSION})")
    targets = _targets(top, source)
    zoom_range = _zoom_range(top, source)
    metadata = top.get("metadata") or {}
    if not isinstance(metadata, Mapping):
        raise DatasetError(source, "metadata", f"expected a mapping, got {type(metadata).__name__}")
    items = top.get("captures")
    if not isinstance(items, list):
        raise DatasetError(source, "captures", "missing or not a list" if items is None
                           else f"expected a list of captures, got {type(items).__name__}")
    if not items:
        raise DatasetError(source, "captures", "the list is empty")
    root = manifest.parent
    captures, dropped, warnings = [], [], []
    for i, item in enumerate(items):
        try:
            captures.append(_capture(item, i, targets, root, check_images, warnings, source))
        except _Drop as exc:
            image = item.get("image") if isinstance(item, Mapping) and isinstance(item.get("image"), str) else None
            dropped.append(DroppedCapture(source, i, image, exc.field, exc.problem))
    if not captures:
        lines = "".join(f"\n  {d}" for d in dropped[:10])
        more = f"\n  ... and {len(dropped) - 10} more" if len(dropped) > 10 else ""
        raise DatasetError(source, "captures", f"none of the {len(items)} captures is usable:{lines}{more}")
    return Dataset(root=root, source=source, targets=targets, captures=captures, dropped=dropped,
                   warnings=warnings, zoom_range=zoom_range, metadata=dict(metadata), total=len(items))


# -- writing -------------------------------------------------------------------------------------
def manifest_dict(targets: Mapping[str, Target], captures: Sequence[Capture],
                  zoom_range: Optional[Sequence[float]] = None,
                  metadata: Optional[Mapping[str, Any]] = None) -> dict[str, Any]:
    """The manifest content (plain data) for ``targets`` and ``captures``."""
    if not targets:
        raise ValueError("a dataset needs at least one target")
    names = set(targets)
    for c in captures:
        if c.target is not None and c.target not in names:
            raise ValueError(f"capture {c.image}: unknown target {c.target!r}")
        if c.target is None and len(names) > 1:
            raise ValueError(f"capture {c.image}: name its target (the dataset has {len(names)})")
    out: dict[str, Any] = {"format": DATASET_FORMAT, "format_version": DATASET_FORMAT_VERSION}
    if list(targets) == [SINGLE_TARGET]:
        out["target"] = target_to_dict(targets[SINGLE_TARGET])
    else:
        out["targets"] = {name: target_to_dict(t) for name, t in targets.items()}
    if zoom_range is not None:
        out["zoom_range"] = [_plain_number(float(v)) for v in zoom_range]
    if metadata:
        out["metadata"] = dict(metadata)
    out["captures"] = [c.to_dict() for c in captures]
    return out


def save_manifest(folder: str | os.PathLike, targets: Mapping[str, Target], captures: Iterable[Capture],
                  zoom_range: Optional[Sequence[float]] = None,
                  metadata: Optional[Mapping[str, Any]] = None, name: str = "manifest.yaml") -> Path:
    """Write ``folder/manifest.yaml`` (or ``.json`` by ``name``) atomically; returns its path."""
    data = manifest_dict(targets, list(captures), zoom_range, metadata)
    path = Path(folder).expanduser() / name
    if path.suffix.lower() == ".json":
        text = json.dumps(data, indent=1) + "\n"
    else:
        text = "# ptz_calibration dataset manifest (docs/dataset.md)\n" + yaml.safe_dump(
            data, sort_keys=False, default_flow_style=None, width=120)
    return atomic_write_text(path, text)
