"""``~/set_camera_info``: a single-zoom calibration, as ROS's camera_calibration sends it, applied to
a PTZ model at the camera's current raw zoom, and where the result is stored.

How the received K, D become a PTZ model (``z`` = the current raw zoom):

* calibrated camera: every intrinsic curve of the model is changed so that its value at ``z``
  is the received one, keeping the curve's shape over the zoom range: fx and fy are *scaled*
  by (received / model at ``z``), cx, cy and the distortion coefficients are *offset* by
  (received - model at ``z``). Constant, piecewise-linear and polynomial curves stay of their
  kind (exactly); a two-term exponential is scaled exactly, and offset exactly when one of its
  terms is constant, otherwise it is tabulated (257 knots over the zoom range plus ``z``) as a
  piecewise-linear curve. Kinematics, zoom mapping and limits are unchanged.
* uncalibrated camera: a model with constant intrinsics = K, D at every zoom, the ideal
  gimbal's kinematics, the device's ranges and the ideal stand-in's placeholder magnification
  (raw range to 1..2x; not a measured magnification): a starting point until a full
  calibration (the ``Calibrate`` action) is run.

R and P of the request are ignored: the driver publishes R = I and P = [K | 0] at every zoom.
Pure Python apart from the ``sensor_msgs/CameraInfo`` type (no rclpy).
"""

from __future__ import annotations

import datetime
import os
from dataclasses import replace
from pathlib import Path
from typing import Optional

import numpy as np
from numpy.typing import NDArray

from ..model import (
    ConstantCurve,
    DISTORTION_NAMES,
    ModelFileError,
    PiecewiseLinearCurve,
    PolynomialCurve,
    PtzCameraModel,
    TwoTermExponentialCurve,
    ZoomCurve,
    ZoomIntrinsics,
    camera_info_dict,
    save_model,
    write_camera_info,
)
from .calibration import resolve_url, ros_home

#: knots of a curve that has to be tabulated (two-term exponential offset)
TABLE_KNOTS = 257


class CameraInfoRejected(ValueError):
    """A SetCameraInfo request that cannot be stored (the message says why)."""


def intrinsics_from_camera_info(msg, width: int = 0, height: int = 0) -> tuple[NDArray, NDArray]:
    """(K (3, 3), D (5,)) of a ``sensor_msgs/CameraInfo``; :class:`CameraInfoRejected` if unusable.

    ``width``/``height`` > 0: the image size the message must have (the device's).
    """
    if msg.distortion_model != "plumb_bob":
        raise CameraInfoRejected(f"distortion_model {msg.distortion_model!r} is not supported (only plumb_bob)")
    d = np.asarray(msg.d, dtype=float).reshape(-1)
    if d.size != 5:
        raise CameraInfoRejected(f"plumb_bob needs 5 distortion coefficients (k1 k2 p1 p2 k3), got {d.size}")
    k = np.asarray(msg.k, dtype=float).reshape(-1)
    if k.size != 9:
        raise CameraInfoRejected(f"K must have 9 values, got {k.size}")
    if not (np.all(np.isfinite(k)) and np.all(np.isfinite(d))):
        raise CameraInfoRejected(f"K and D must be finite, got K {k.tolist()} D {d.tolist()}")
    K = k.reshape(3, 3)
    fx, fy = K[0, 0], K[1, 1]
    if fx <= 0 or fy <= 0:
        raise CameraInfoRejected(f"fx and fy must be positive, got fx {fx:g}, fy {fy:g}")
    if K[1, 0] != 0 or K[2, 0] != 0 or K[2, 1] != 0 or K[2, 2] != 1:
        raise CameraInfoRejected(f"K is not a camera matrix [fx s cx; 0 fy cy; 0 0 1]: {k.tolist()}")
    if abs(K[0, 1]) > 1e-9 * fx:
        raise CameraInfoRejected(f"skew K[0,1] = {K[0, 1]:g} is not supported by the PTZ model (must be 0)")
    if width > 0 and height > 0 and (msg.width, msg.height) != (width, height):
        raise CameraInfoRejected(f"image size {msg.width}x{msg.height} does not match the device's {width}x{height}")
    if msg.width <= 0 or msg.height <= 0:
        raise CameraInfoRejected(f"image size {msg.width}x{msg.height} is not valid")
    out = K.copy()
    out[0, 1] = 0.0
    return out, d


def _values(K: NDArray, D: NDArray) -> dict[str, float]:
    out = {"fx": K[0, 0], "fy": K[1, 1], "cx": K[0, 2], "cy": K[1, 2]}
    out.update(zip(DISTORTION_NAMES, D))
    return {k: float(v) for k, v in out.items()}


def tabulate(curve: ZoomCurve, lo: float, hi: float, zoom: float, knots: int = TABLE_KNOTS) -> ZoomCurve:
    """``curve`` as a piecewise-linear curve over [lo, hi] (and ``zoom``), exact at the knots."""
    lo, hi = min(lo, zoom), max(hi, zoom)
    if hi <= lo:
        return ConstantCurve(float(curve(zoom)))
    x = np.unique(np.append(np.linspace(lo, hi, knots), zoom))
    return PiecewiseLinearCurve(x, curve.evaluate(x))


def scaled(curve: ZoomCurve, factor: float, zoom_range: tuple[float, float], zoom: float) -> ZoomCurve:
    """``factor`` x ``curve``, of the same kind where possible."""
    if isinstance(curve, ConstantCurve):
        return ConstantCurve(curve.value * factor)
    if isinstance(curve, PiecewiseLinearCurve):
        return PiecewiseLinearCurve(curve.x, curve.y * factor)
    if isinstance(curve, PolynomialCurve):
        return PolynomialCurve(curve.coefficients * factor, curve.domain)
    if isinstance(curve, TwoTermExponentialCurve):
        return TwoTermExponentialCurve(curve.a * factor, curve.b, curve.c * factor, curve.d, curve.domain)
    table = tabulate(curve, *zoom_range, zoom)
    return scaled(table, factor, zoom_range, zoom)


def offset(curve: ZoomCurve, delta: float, zoom_range: tuple[float, float], zoom: float) -> ZoomCurve:
    """``curve`` + ``delta``, of the same kind where possible (see the module notes)."""
    if isinstance(curve, ConstantCurve):
        return ConstantCurve(curve.value + delta)
    if isinstance(curve, PiecewiseLinearCurve):
        return PiecewiseLinearCurve(curve.x, curve.y + delta)
    if isinstance(curve, PolynomialCurve):
        c = curve.coefficients.copy()
        c[0] += delta
        return PolynomialCurve(c, curve.domain)
    if isinstance(curve, TwoTermExponentialCurve) and curve.b == 0.0:
        return TwoTermExponentialCurve(curve.a + delta, curve.b, curve.c, curve.d, curve.domain)
    if isinstance(curve, TwoTermExponentialCurve) and curve.d == 0.0:
        return TwoTermExponentialCurve(curve.a, curve.b, curve.c + delta, curve.d, curve.domain)
    return offset(tabulate(curve, *zoom_range, zoom), delta, zoom_range, zoom)


def _stamp_metadata(metadata: dict, zoom: float, K: NDArray, D: NDArray, note: str) -> dict:
    out = {k: v for k, v in metadata.items() if k != "uncalibrated"}
    out["set_camera_info"] = {
        "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "zoom_raw": float(zoom),
        "camera_matrix": [float(v) for v in K.reshape(-1)],
        "distortion": [float(v) for v in D],
        "method": note,
    }
    return out


def with_intrinsics_at(model: PtzCameraModel, zoom: float, K: NDArray, D: NDArray) -> PtzCameraModel:
    """``model`` with its intrinsic curves changed so that K, D hold at raw ``zoom`` (module notes)."""
    target = _values(K, D)
    zm = model.zoom_mapping
    zoom_range = (zm.raw_min, zm.raw_max)
    curves = {}
    for name, curve in model.intrinsics.curves().items():
        now = float(curve(zoom))
        if name in ("fx", "fy") and now > 0:
            curves[name] = scaled(curve, target[name] / now, zoom_range, zoom)
        else:
            curves[name] = offset(curve, target[name] - now, zoom_range, zoom)
    note = "fx, fy curves scaled and cx, cy, distortion curves offset to match at zoom_raw"
    new = replace(model, intrinsics=ZoomIntrinsics(**curves),
                  metadata=_stamp_metadata(model.metadata, zoom, K, D, note))
    _check(new, zoom, K, D)
    return new


def single_zoom_model(base: PtzCameraModel, zoom: float, K: NDArray, D: NDArray) -> PtzCameraModel:
    """The model of an uncalibrated camera: ``base`` (the ideal stand-in) with constant K, D."""
    v = _values(K, D)
    intrinsics = ZoomIntrinsics.constant(v["fx"], v["fy"], v["cx"], v["cy"], D)
    note = ("single-zoom calibration of an uncalibrated camera: constant intrinsics, ideal kinematics, "
            "placeholder magnification")
    new = replace(base, intrinsics=intrinsics, metadata=_stamp_metadata(base.metadata, zoom, K, D, note))
    _check(new, zoom, K, D)
    return new


def _check(model: PtzCameraModel, zoom: float, K: NDArray, D: NDArray) -> None:
    if not (np.allclose(model.camera_matrix(zoom), K, rtol=1e-9, atol=1e-9)
            and np.allclose(model.distortion(zoom), D, rtol=1e-9, atol=1e-12)):
        raise RuntimeError(f"internal error: the updated model does not reproduce K, D at zoom {zoom:g}")


# -- where it is stored ------------------------------------------------------------------------


def default_model_file(camera_name: str) -> Path:
    """``$ROS_HOME/ptz_calibration/<camera_name>.yaml`` (``ROS_HOME`` default ``~/.ros``)."""
    return Path(ros_home()) / "ptz_calibration" / f"{camera_name}.yaml"


def camera_info_file(model_file: Path, camera_name: str) -> Path:
    """``<camera_name>_camera_info.yaml`` beside ``model_file``."""
    return model_file.with_name(f"{camera_name}_camera_info.yaml")


def _writable(path: Path) -> bool:
    if path.exists():
        return path.is_file() and os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    return parent.is_dir() and os.access(parent, os.W_OK)


def writable_calibration_file(url: str, camera_name: str) -> Optional[Path]:
    """The file of a ``file://`` or plain-path ``url`` if it can be written; else None."""
    u = url.strip()
    if not u or u.startswith("package://") or ("://" in u and not u.startswith("file://")):
        return None
    try:
        path = resolve_url(u, camera_name)
    except ModelFileError:
        return None
    return path if path is not None and _writable(path) else None


def store(model: PtzCameraModel, path: Path, zoom: float, camera_name: str
          ) -> tuple[Path, Optional[Path], Optional[str]]:
    """Write ``model`` to ``path`` (atomic, previous kept as ``.bak``) and its camera_info YAML at
    ``zoom`` beside it (:func:`camera_info_file`). Returns (camera_info file, backup or None, camera_info problem or None);
    OSError when the model cannot be written."""
    backup = path.with_name(path.name + ".bak") if path.exists() else None
    save_model(model, path, backup=True)
    info = camera_info_file(path, camera_name)
    try:
        write_camera_info(info, camera_info_dict(model, zoom, camera_name))
    except OSError as exc:
        return info, backup, f"camera_info YAML not written: {exc}"
    return info, backup, None


def describe(K: NDArray, zoom: float) -> str:
    """A short summary of K at a zoom, for messages."""
    return f"fx {K[0, 0]:.2f} fy {K[1, 1]:.2f} cx {K[0, 2]:.2f} cy {K[1, 2]:.2f} px at raw zoom {zoom:g}"
