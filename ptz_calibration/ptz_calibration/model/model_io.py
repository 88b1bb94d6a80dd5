"""The versioned model YAML file and standard camera_info YAML files.

Model file (``format_version`` 1)::

    format: ptz_calibration/camera_model
    format_version: 1
    camera_name: left
    image_width: 1280
    image_height: 720
    distortion_model: plumb_bob
    zoom: {raw_min: 0, raw_max: 16384, magnification: <curve>}
    intrinsics: {fx: <curve>, fy: <curve>, cx: <curve>, cy: <curve>, k1: <curve>, ... k3: <curve>}
    kinematics:
      order: pan_tilt            # or tilt_pan
      pan_axis: [x, y, z]        # unit vectors in the home optical frame
      tilt_axis: [x, y, z]
      pan_radius: [x, y, z]      # m, from the axis to the optical centre
      tilt_radius: [x, y, z]
      zoom_translation: <curve>  # m along the optical axis, 0 at the reference zoom
    limits: {pan: [min, max], tilt: [min, max]}   # rad
    metadata: {...}              # free form: calibration date, errors, ...

A ``<curve>`` is a number (constant) or a mapping with ``type`` (see :mod:`.curves`).
Every error names the file and the field.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import yaml

from ..corrections.layers import CorrectionLayers
from ..fields import FieldReader
from ..fileio import FileFieldError, atomic_write_text, read_structured
from .camera_model import JointLimits, PtzCameraModel
from .curves import CurveError, curve_from_dict
from .intrinsics import DISTORTION_NAMES, ZoomIntrinsics, ZoomMapping
from .kinematics import AxisOrder, PtzKinematics

FORMAT = "ptz_calibration/camera_model"
FORMAT_VERSION = 1


class ModelFileError(FileFieldError):
    """A model or camera_info file (or dict) is missing, unreadable or invalid."""


class _Reader(FieldReader):
    """Field access for model files: errors are :class:`ModelFileError`; adds zoom curves."""

    error = ModelFileError

    def curve(self, key: str, default: Any = ...):
        try:
            return curve_from_dict(self.get(key, default))
        except CurveError as exc:
            raise self.fail(key, str(exc)) from None


def model_from_dict(data: Any, source: str = "<model>") -> PtzCameraModel:
    """Build a :class:`PtzCameraModel` from the plain-data form; errors name ``source`` and the field."""
    top = _Reader(data, source)
    fmt = top.get("format", FORMAT)
    if fmt != FORMAT:
        raise top.fail("format", f"expected {FORMAT!r}, got {fmt!r}")
    version = top.get("format_version")
    if version != FORMAT_VERSION:
        raise top.fail("format_version", f"unsupported version {version!r} (this software reads {FORMAT_VERSION})")
    name = top.get("camera_name")
    if not isinstance(name, str) or not name:
        raise top.fail("camera_name", f"expected a non-empty string, got {name!r}")
    dist_model = top.get("distortion_model", "plumb_bob")
    if dist_model != "plumb_bob":
        raise top.fail("distortion_model", f"only 'plumb_bob' is supported, got {dist_model!r}")

    zoom = top.child("zoom")
    try:
        mapping = ZoomMapping(zoom.number("raw_min"), zoom.number("raw_max"), zoom.curve("magnification", 1.0))
    except ValueError as exc:
        if isinstance(exc, ModelFileError):
            raise
        raise zoom.fail("magnification", str(exc)) from None

    intr = top.child("intrinsics")
    curves = {key: intr.curve(key) for key in ("fx", "fy", "cx", "cy")}
    curves.update({key: intr.curve(key, 0.0) for key in DISTORTION_NAMES})
    unknown = sorted(set(intr.data) - set(curves))
    if unknown:
        raise intr.fail(unknown[0], f"unknown intrinsic parameter (expected {sorted(curves)})")
    intrinsics = ZoomIntrinsics(**curves)

    kin = top.child("kinematics", {})
    order = kin.get("order", AxisOrder.PAN_TILT.value)
    if order not in [o.value for o in AxisOrder]:
        raise kin.fail("order", f"expected one of {[o.value for o in AxisOrder]}, got {order!r}")
    defaults = PtzKinematics()
    vectors = {}
    for key in ("pan_axis", "tilt_axis", "pan_radius", "tilt_radius"):
        vectors[key] = kin.vector(key, 3, getattr(defaults, key).tolist())
    for key in ("pan_axis", "tilt_axis"):
        if np.linalg.norm(vectors[key]) < 1e-9:
            raise kin.fail(key, "must not be the zero vector")
    try:
        kinematics = PtzKinematics(order=AxisOrder(order), zoom_translation=kin.curve("zoom_translation", 0.0), **vectors)
    except ValueError as exc:
        if isinstance(exc, ModelFileError):
            raise
        raise kin.fail("pan_axis", str(exc)) from None

    lim = top.child("limits", {})
    pan = lim.vector("pan", 2, [-math.pi, math.pi])
    tilt = lim.vector("tilt", 2, [-math.pi / 2, math.pi / 2])
    for key, value in (("pan", pan), ("tilt", tilt)):
        if value[0] > value[1]:
            raise lim.fail(key, f"min must not exceed max, got {value.tolist()}")
    limits = JointLimits(pan[0], pan[1], tilt[0], tilt[1])

    try:
        corrections = CorrectionLayers.from_dict(top.get("corrections", {}))
    except ValueError as exc:
        raise top.fail("corrections", str(exc)) from None

    metadata = top.get("metadata", {}) or {}
    if not isinstance(metadata, Mapping):
        raise top.fail("metadata", "expected a mapping")
    return PtzCameraModel(
        camera_name=name,
        image_width=top.integer("image_width"),
        image_height=top.integer("image_height"),
        intrinsics=intrinsics,
        kinematics=kinematics,
        zoom_mapping=mapping,
        limits=limits,
        metadata=dict(metadata),
        corrections=corrections,
    )


def model_to_dict(model: PtzCameraModel) -> dict[str, Any]:
    """Plain-data form of a model (inverse of :func:`model_from_dict`)."""
    kin = model.kinematics
    return _plain({
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "camera_name": model.camera_name,
        "image_width": int(model.image_width),
        "image_height": int(model.image_height),
        "distortion_model": "plumb_bob",
        "zoom": model.zoom_mapping.to_dict(),
        "intrinsics": {name: curve.to_dict() for name, curve in model.intrinsics.curves().items()},
        "kinematics": {
            "order": kin.order.value,
            "pan_axis": kin.pan_axis.tolist(),
            "tilt_axis": kin.tilt_axis.tolist(),
            "pan_radius": kin.pan_radius.tolist(),
            "tilt_radius": kin.tilt_radius.tolist(),
            "zoom_translation": kin.zoom_translation.to_dict(),
        },
        "limits": {
            "pan": [model.limits.pan_min, model.limits.pan_max],
            "tilt": [model.limits.tilt_min, model.limits.tilt_max],
        },
        "metadata": model.metadata,
        **({"corrections": model.corrections.to_dict()} if not model.corrections.empty else {}),
    })


def _plain(value: Any) -> Any:
    """Convert numpy scalars/arrays inside metadata to plain YAML types."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def load_model(path: str | os.PathLike) -> PtzCameraModel:
    """Read a model YAML file; raise :class:`ModelFileError` naming the file and field."""
    return model_from_dict(read_structured(path, ModelFileError), str(path))


def save_model(model: PtzCameraModel, path: str | os.PathLike, backup: bool = True) -> Path:
    """Write a model YAML file atomically, keeping the previous file as ``.bak`` when ``backup``."""
    text = "# PTZ camera model written by ptz_calibration\n" + yaml.safe_dump(
        model_to_dict(model), sort_keys=False, default_flow_style=None, width=100)
    return atomic_write_text(path, text, backup=backup)


# ----------------------------------------------------------------------------------------
# camera_info YAML (camera_calibration_parsers / camera_info_manager format)


def camera_info_dict(model: PtzCameraModel, zoom: float, camera_name: str | None = None) -> dict[str, Any]:
    """The standard camera_info YAML content of ``model`` at raw ``zoom``."""
    k = model.camera_matrix(zoom)
    d = model.distortion(zoom)
    p = model.projection_matrix(zoom)

    def mat(rows: int, cols: int, data: np.ndarray) -> dict[str, Any]:
        return {"rows": rows, "cols": cols, "data": [float(v) for v in np.asarray(data).reshape(-1)]}

    return {
        "image_width": int(model.image_width),
        "image_height": int(model.image_height),
        "camera_name": camera_name or model.camera_name,
        "camera_matrix": mat(3, 3, k),
        "distortion_model": "plumb_bob",
        "distortion_coefficients": mat(1, 5, d),
        "rectification_matrix": mat(3, 3, np.eye(3)),
        "projection_matrix": mat(3, 4, p),
    }


def write_camera_info(path: str | os.PathLike, info: Mapping[str, Any]) -> Path:
    """Write a camera_info YAML file atomically."""
    return atomic_write_text(path, yaml.safe_dump(dict(info), sort_keys=False, default_flow_style=None))


def read_camera_info(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate a camera_info YAML file; returns its content with numpy arrays for matrices."""
    source = str(path)
    top = _Reader(read_structured(path, ModelFileError), source)
    out: dict[str, Any] = {
        "image_width": top.integer("image_width"),
        "image_height": top.integer("image_height"),
        "camera_name": str(top.get("camera_name", "")),
        "distortion_model": str(top.get("distortion_model", "plumb_bob")),
    }
    shapes = {"camera_matrix": (3, 3), "rectification_matrix": (3, 3), "projection_matrix": (3, 4),
              "distortion_coefficients": (1, None)}
    for key, (rows, cols) in shapes.items():
        block = top.child(key)
        data = block.get("data")
        if not isinstance(data, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in data):
            raise block.fail("data", f"expected a list of numbers, got {data!r}")
        if block.get("rows") != rows or (cols is not None and block.get("cols") != cols) or \
                len(data) != rows * (cols if cols is not None else len(data)):
            raise block.fail("data", f"expected {rows}x{cols or 'N'} values, got rows={block.get('rows')!r} "
                                     f"cols={block.get('cols')!r} with {len(data)} values")
        out[key] = np.asarray(data, dtype=float).reshape(rows, -1)
    return out
