"""The simulated rig file: cameras (true model, mount, mechanics, thermal, timing, image noise) and scene.

Rig file (``format_version`` 1, SI units and radians; see ``config/sim_rig.yaml``)::

    format: ptz_calibration/sim_rig
    format_version: 1
    world_frame: rig
    cameras:
      <name>:
        model: <model YAML schema, see ptz_calibration.model.model_io>
        mount: {xyz: [x, y, z], rpy: [roll, pitch, yaw]}     # mount frame in the world
        mechanics: {pan: <axis>, tilt: <axis>, zoom: <axis>}
        thermal: {...}
        timing: {...}
        image_noise: {...}
    scene:
      background: 110
      targets:
        - {name: ..., type: checkerboard | charuco, ..., pose: {xyz, rpy} | facing: {centre, towards, roll}}

The mount frame (REP-103 body axes: x forward, y left, z up) has its origin at the camera's home
optical centre; its pose is ``world_from_mount``. Every error names the file and the field.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..fields import FieldReader
from ..fileio import FileFieldError, read_structured
from ..model import ModelFileError, PtzCameraModel, model_from_dict
from ..model.rotations import BODY_FROM_OPTICAL, rpy_matrix
from .mechanics import AxisConfig, HarmonicError, MechanicsConfig
from .render import ImageNoise, RenderOptions
from .targets import CharucoTarget, Checkerboard, PlacedTarget, Scene
from .thermal import SetPoint, ThermalConfig

__all__ = [
    "RIG_FORMAT",
    "RigFileError",
    "TimingConfig",
    "CameraSpec",
    "Rig",
    "load_rig",
    "rig_from_dict",
    "default_rig_path",
    "facing_rotation",
]

RIG_FORMAT = "ptz_calibration/sim_rig"
RIG_FORMAT_VERSION = 1


class RigFileError(FileFieldError):
    """A rig file (or dict) is missing, unreadable or invalid; the message names file and field."""


@dataclass(frozen=True)
class TimingConfig:
    """Frame timing of a camera (seconds)."""

    frame_rate: float = 30.0  # Hz, free-running stream
    exposure: float = 0.01  # s, exposure duration (frames are stamped mid-exposure)
    latency: float = 0.06  # s from mid-exposure until the frame can be read
    stamp_jitter: float = 0.0  # s, std of the reported stamp around the true mid-exposure
    stamp_offset: float = 0.0  # s, constant error of the reported stamps
    trigger_latency: float = 0.0  # s from a hardware trigger to the exposure start
    trigger_jitter: float = 0.0  # s, std of the trigger latency
    command_latency: float = 0.0  # s from a command to the start of the motion
    feedback_latency: float = 0.0  # s, age of a position sample when it is read

    def __post_init__(self) -> None:
        if not self.frame_rate > 0:
            raise ValueError(f"frame_rate must be > 0, got {self.frame_rate}")
        for name in ("exposure", "latency", "stamp_jitter", "trigger_latency", "trigger_jitter",
                     "command_latency", "feedback_latency"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class CameraSpec:
    """Everything that defines one simulated camera."""

    name: str
    model: PtzCameraModel  # the TRUE model (ground truth)
    mount_R: np.ndarray  # (3, 3) world_from_mount rotation
    mount_t: np.ndarray  # (3,) mount origin (home optical centre) in the world, m
    mechanics: MechanicsConfig
    thermal: ThermalConfig = field(default_factory=ThermalConfig)
    timing: TimingConfig = field(default_factory=TimingConfig)
    noise: ImageNoise = field(default_factory=ImageNoise)
    render: RenderOptions = field(default_factory=RenderOptions)
    motion_samples: int = 1  # renders averaged over an exposure while moving (motion blur)

    @property
    def home_R(self) -> np.ndarray:
        """world_from_home-optical rotation: ``mount_R @ BODY_FROM_OPTICAL``."""
        return self.mount_R @ BODY_FROM_OPTICAL


@dataclass
class Rig:
    """A loaded rig: named cameras and the scene they see."""

    cameras: dict[str, CameraSpec]
    scene: Scene
    world_frame: str = "rig"
    source: str = "<rig>"


def facing_rotation(centre: np.ndarray, towards: np.ndarray, roll: float = 0.0,
                    up: np.ndarray = np.array([0.0, 0.0, 1.0])) -> np.ndarray:
    """world_from_target rotation of a board at ``centre`` whose printed side faces ``towards``.

    The target z axis points away from ``towards`` (into the board), its -y axis (the board's
    "up") is as close to ``up`` as possible, then the board is rolled by ``roll`` about its normal.
    """
    z = np.asarray(centre, float) - np.asarray(towards, float)
    z /= np.linalg.norm(z)
    x = np.cross(z, up)  # to the right of a viewer looking along z with ``up`` up
    if np.linalg.norm(x) < 1e-9:
        raise ValueError("the board normal is parallel to 'up': give a pose with xyz/rpy instead")
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    r = np.column_stack([x, y, z])
    c, s = math.cos(roll), math.sin(roll)
    return r @ np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


class _Reader(FieldReader):
    """Field access for rig files: errors are :class:`RigFileError`."""

    error = RigFileError


_AXIS_KEYS = {"min", "max", "max_speed", "max_accel", "default_speed", "backlash",
              "periodic_error", "encoder_step", "encoder_noise", "command_step", "home"}


def _axis(r: _Reader, lo: float, hi: float) -> AxisConfig:
    r.check_keys(_AXIS_KEYS)
    harmonics = []
    for h in r.items("periodic_error", []):
        h.check_keys({"order", "amplitude", "phase"})
        harmonics.append(HarmonicError(h.integer("order"), h.number("amplitude", minimum=0.0),
                                       h.number("phase", 0.0)))
    vmin, vmax = r.number("min", lo), r.number("max", hi)
    if vmin > vmax:
        raise r.fail("min", f"must not exceed max ({vmin} > {vmax})")
    max_speed = r.number("max_speed", positive=True)
    default_speed = r.optional_number("default_speed", positive=True)
    if default_speed is not None and default_speed > max_speed:
        raise r.fail("default_speed", f"must not exceed max_speed ({default_speed} > {max_speed})")
    home = r.number("home", min(max(0.0, vmin), vmax))
    if not vmin <= home <= vmax:
        raise r.fail("home", f"outside [{vmin}, {vmax}]")
    return AxisConfig(
        min=vmin, max=vmax, max_speed=max_speed,
        max_accel=r.number("max_accel", positive=True),
        default_speed=default_speed,
        backlash=r.number("backlash", 0.0, minimum=0.0),
        periodic_error=tuple(harmonics),
        encoder_step=r.number("encoder_step", 0.0, minimum=0.0),
        encoder_noise=r.number("encoder_noise", 0.0, minimum=0.0),
        command_step=r.number("command_step", 0.0, minimum=0.0),
        home=home,
    )


def _pose(r: _Reader, key: str) -> tuple[np.ndarray, np.ndarray]:
    p = r.child(key)
    p.check_keys({"xyz", "rpy"})
    return rpy_matrix(*p.vector("rpy", 3, [0.0, 0.0, 0.0])), p.vector("xyz", 3)


def _thermal(r: _Reader) -> ThermalConfig:
    r.check_keys({"ambient", "initial", "self_heating", "time_constant", "setpoints",
                  "calibration_temperature", "boresight_x", "boresight_y", "focal_ppm",
                  "sensor_step", "sensor_noise"})
    points = []
    for p in r.items("setpoints", []):
        p.check_keys({"time", "ambient"})
        points.append(SetPoint(p.number("time", minimum=0.0), p.number("ambient")))
    ambient = r.number("ambient", 20.0)
    return ThermalConfig(
        ambient=ambient,
        initial=r.optional_number("initial"),
        self_heating=r.number("self_heating", 0.0),
        time_constant=r.number("time_constant", 600.0, positive=True),
        setpoints=tuple(points),
        calibration_temperature=r.number("calibration_temperature", ambient),
        boresight_x=r.number("boresight_x", 0.0),
        boresight_y=r.number("boresight_y", 0.0),
        focal_ppm=r.number("focal_ppm", 0.0),
        sensor_step=r.number("sensor_step", 0.0, minimum=0.0),
        sensor_noise=r.number("sensor_noise", 0.0, minimum=0.0),
    )


def _timing(r: _Reader) -> TimingConfig:
    names = [f for f in TimingConfig.__dataclass_fields__]
    r.check_keys(set(names))
    values = {n: r.number(n, getattr(TimingConfig, n)) for n in names}
    for n, v in values.items():
        if (n == "frame_rate" and not v > 0) or (n not in ("frame_rate", "stamp_offset") and v < 0):
            raise r.fail(n, f"must be {'> 0' if n == 'frame_rate' else '>= 0'}, got {v}")
    return TimingConfig(**values)


def _image(r: _Reader) -> tuple[ImageNoise, RenderOptions, int]:
    r.check_keys({"read_noise", "shot_noise", "psf_sigma", "supersample", "motion_samples"})
    noise = ImageNoise(r.number("read_noise", 0.0, minimum=0.0), r.number("shot_noise", 0.0, minimum=0.0))
    default = RenderOptions()
    options = RenderOptions(supersample=r.integer("supersample", default.supersample),
                            psf_sigma=r.number("psf_sigma", default.psf_sigma, minimum=0.0))
    return noise, options, r.integer("motion_samples", 1)


def _camera(name: str, r: _Reader) -> CameraSpec:
    r.check_keys({"model", "mount", "mechanics", "thermal", "timing", "image_noise"})
    model_data = r.get("model")
    try:
        model = model_from_dict(model_data, r.source)
    except ModelFileError as exc:
        raise RigFileError(r.source, r.name(f"model.{exc.field}" if exc.field else "model"),
                           exc.problem) from None
    except ValueError as exc:
        raise r.fail("model", str(exc)) from None
    mount_R, mount_t = _pose(r, "mount")
    mech = r.child("mechanics")
    mech.check_keys({"pan", "tilt", "zoom"})
    lim, zm = model.limits, model.zoom_mapping
    mechanics = MechanicsConfig(
        pan=_axis(mech.child("pan"), lim.pan_min, lim.pan_max),
        tilt=_axis(mech.child("tilt"), lim.tilt_min, lim.tilt_max),
        zoom=_axis(mech.child("zoom"), zm.raw_min, zm.raw_max),
    )
    if not (zm.contains(mechanics.zoom.min) and zm.contains(mechanics.zoom.max)):
        raise mech.fail("zoom", f"travel [{mechanics.zoom.min}, {mechanics.zoom.max}] outside the "
                                f"model's zoom range [{zm.raw_min}, {zm.raw_max}]")
    noise, options, motion_samples = _image(r.child("image_noise", {}))
    return CameraSpec(
        name=name, model=model, mount_R=mount_R, mount_t=mount_t, mechanics=mechanics,
        thermal=_thermal(r.child("thermal", {})), timing=_timing(r.child("timing", {})),
        noise=noise, render=options, motion_samples=motion_samples,
    )


def _target(r: _Reader, index: int) -> PlacedTarget:
    kind = r.string("type")
    common = {"name", "type", "pose", "facing", "black", "white", "back"}
    try:
        if kind == "checkerboard":
            r.check_keys(common | {"rows", "cols", "square", "margin"})
            target = Checkerboard(r.integer("rows", minimum=2), r.integer("cols", minimum=2),
                                  r.number("square", positive=True),
                                  r.optional_number("margin", minimum=0.0))
        elif kind == "charuco":
            r.check_keys(common | {"squares_x", "squares_y", "square", "marker", "dictionary",
                                   "margin", "legacy_pattern"})
            target = CharucoTarget(r.integer("squares_x", minimum=2), r.integer("squares_y", minimum=2),
                                   r.number("square", positive=True), r.number("marker", positive=True),
                                   r.string("dictionary", "DICT_5X5_100"),
                                   r.optional_number("margin", minimum=0.0),
                                   bool(r.get("legacy_pattern", False)))
        else:
            raise r.fail("type", f"expected 'checkerboard' or 'charuco', got {kind!r}")
        target.texture()  # fail here if the dimensions have no common texel grid
    except RigFileError:
        raise
    except ValueError as exc:
        raise r.fail("type", f"invalid {kind}: {exc}") from None
    if r.has("pose") == r.has("facing"):
        raise r.fail("pose", "give exactly one of 'pose' (xyz, rpy) or 'facing' (centre, towards, roll)")
    if r.has("pose"):
        R, t = _pose(r, "pose")
    else:
        f = r.child("facing")
        f.check_keys({"centre", "towards", "roll"})
        centre, towards = f.vector("centre", 3), f.vector("towards", 3)
        try:
            R = facing_rotation(centre, towards, f.number("roll", 0.0))
        except ValueError as exc:
            raise f.fail("towards", str(exc)) from None
        x0, y0, x1, y1 = target.extent
        t = centre - R @ np.array([(x0 + x1) / 2, (y0 + y1) / 2, 0.0])
    levels = {k: r.number(k, d, minimum=0.0) for k, d in (("black", 20.0), ("white", 230.0), ("back", 90.0))}
    for k, v in levels.items():
        if v > 255:
            raise r.fail(k, f"must be <= 255, got {v}")
    return PlacedTarget(r.string("name", f"target_{index}"), target, R, t, **levels)


def rig_from_dict(data: Any, source: str = "<rig>") -> Rig:
    """Build a :class:`Rig` from its plain-data form; errors name ``source`` and the field."""
    top = _Reader(data, source)
    top.check_keys({"format", "format_version", "world_frame", "cameras", "scene"})
    fmt = top.get("format", RIG_FORMAT)
    if fmt != RIG_FORMAT:
        raise top.fail("format", f"expected {RIG_FORMAT!r}, got {fmt!r}")
    version = top.get("format_version", RIG_FORMAT_VERSION)
    if version != RIG_FORMAT_VERSION:
        raise top.fail("format_version", f"unsupported version {version!r} (this software reads "
                                         f"{RIG_FORMAT_VERSION})")
    cams = top.child("cameras")
    if not cams.data:
        raise top.fail("cameras", "no cameras")
    cameras = {}
    for name in cams.data:
        if not isinstance(name, str) or not name.isidentifier():
            raise cams.fail(str(name), "camera names must be identifiers (letters, digits, _)")
        cameras[name] = _camera(name, cams.child(name))
    sc = top.child("scene", {})
    sc.check_keys({"background", "targets"})
    background = sc.number("background", 110.0, minimum=0.0)
    if background > 255:
        raise sc.fail("background", f"must be <= 255, got {background}")
    targets = [_target(t, i) for i, t in enumerate(sc.items("targets", []))]
    names = [t.name for t in targets]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise sc.fail("targets", f"duplicate target name {dup[0]!r}")
    return Rig(cameras, Scene(targets, background), top.string("world_frame", "rig"), source)


def load_rig(path: str | os.PathLike | None = None) -> Rig:
    """Read a rig YAML file (default: the package's ``config/sim_rig.yaml``)."""
    path = default_rig_path() if path is None else Path(path)
    source = str(path)
    data = read_structured(path, RigFileError)
    return rig_from_dict(data, source)


def default_rig_path() -> Path:
    """The default rig: ``config/sim_rig.yaml`` of the source tree or of the installed package."""
    here = Path(__file__).resolve().parents[2] / "config" / "sim_rig.yaml"
    if here.is_file():
        return here
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        candidate = Path(prefix) / "share" / "ptz_calibration" / "config" / "sim_rig.yaml"
        if prefix and candidate.is_file():
            return candidate
    return here


def true_stereo_rig(rig: "Rig", left: str = "left", right: str = "right") -> "StereoRigModel":
    """The ground-truth stereo rig of two simulated cameras: their true models and the true
    transform right home optical -> left home optical (from the mounts)."""
    from ..model.stereo_rig import StereoRigModel

    for name in (left, right):
        if name not in rig.cameras:
            raise ValueError(f"no camera {name!r} in the rig (cameras: {', '.join(rig.cameras)})")
    a, b = rig.cameras[left], rig.cameras[right]
    home_r = a.home_R.T @ b.home_R
    home_t = a.home_R.T @ (b.mount_t - a.mount_t)
    return StereoRigModel(a.model, b.model, home_r, home_t, rig_name=f"{left}_{right}",
                          metadata={"source": f"truth of {rig.source}"})
