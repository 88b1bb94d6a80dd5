"""The ``sim`` backend: a :class:`PtzDriver` over one camera of the simulated rig.

Settings: ``rig_file`` (empty = the package's ``config/sim_rig.yaml``: the source tree's when
running from it, else the installed share folder found with ament_index), ``camera`` (empty =
the node's ``camera_name``) and ``seed``. Time is the system clock, so feedback and frame stamps
are ROS system time. :class:`SimulatedPtzCamera` is itself thread-safe; this adapter adds the
connection state and unit conventions (NaN = leave an axis alone).
"""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

from ..simulation import Rig, RigFileError, SimulatedPtzCamera, load_rig
from .interface import DriverConnectionError, DriverError, Frame, PtzCapabilities, PtzDriver, PtzFeedback

PACKAGE = "ptz_calibration"


def package_config_file(name: str) -> Path:
    """``config/<name>`` of this package: the source tree's if we run from it, else the installed one."""
    source = Path(__file__).resolve().parents[2] / "config" / name
    if source.is_file():
        return source
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

        return Path(get_package_share_directory(PACKAGE)) / "config" / name
    except (ImportError, LookupError, PackageNotFoundError):
        return source


def default_rig_file() -> Path:
    """The package's ``config/sim_rig.yaml``."""
    return package_config_file("sim_rig.yaml")


def _none_if_nan(value: Optional[float]) -> Optional[float]:
    return None if value is None or math.isnan(value) else float(value)


class SimulatedPtzDriver(PtzDriver):
    """One camera of a simulated rig (see the module docstring)."""

    SETTINGS: dict[str, tuple[Any, str]] = {
        "rig_file": ("", "rig YAML file (empty = the package's config/sim_rig.yaml)"),
        "camera": ("", "camera of the rig (empty = camera_name)"),
        "seed": (0, "random seed of the simulation (noise, jitter)"),
    }

    def __init__(self, camera: str, rig_file: Optional[str | Path] = None, seed: int = 0,
                 clock: Callable[[], float] = time.time, rig: Optional[Rig] = None) -> None:
        self._camera_name = camera
        self._rig_file = Path(rig_file).expanduser() if rig_file else default_rig_file()
        self._seed = int(seed)
        self._clock = clock
        self._rig = rig
        self._sim: Optional[SimulatedPtzCamera] = None
        self._caps: Optional[PtzCapabilities] = None
        self._connected = False
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> "SimulatedPtzDriver":
        camera = settings.get("camera") or settings.get("camera_name")
        if not camera:
            raise DriverError("sim backend: no camera given (settings 'camera' or 'camera_name')")
        return cls(str(camera), settings.get("rig_file") or None, int(settings.get("seed") or 0))

    @property
    def simulation(self) -> SimulatedPtzCamera:
        """The simulated camera (ground truth for tests); valid after :meth:`connect`."""
        if self._sim is None:
            raise DriverConnectionError("sim backend: not connected yet")
        return self._sim

    # -- connection --------------------------------------------------------------------------

    def connect(self) -> None:
        """Load the rig and create the camera on first connect (the simulation survives reconnects)."""
        with self._lock:
            if self._sim is None:
                try:
                    rig = self._rig or load_rig(self._rig_file)
                except RigFileError as exc:
                    raise DriverConnectionError(f"sim backend: {exc}") from None
                spec = rig.cameras.get(self._camera_name)
                if spec is None:
                    raise DriverConnectionError(f"sim backend: camera {self._camera_name!r} not in {rig.source} "
                                                f"(cameras: {', '.join(sorted(rig.cameras))})")
                self._rig = rig
                self._sim = SimulatedPtzCamera(spec, rig.scene, self._seed, self._clock)
                m = spec.mechanics
                self._caps = PtzCapabilities(
                    pan_min=m.pan.min, pan_max=m.pan.max, tilt_min=m.tilt.min, tilt_max=m.tilt.max,
                    zoom_min=m.zoom.min, zoom_max=m.zoom.max, max_pan_speed=m.pan.max_speed,
                    max_tilt_speed=m.tilt.max_speed, max_zoom_speed=m.zoom.max_speed,
                    has_hardware_trigger=True, has_temperature=True, can_capture=True,
                    image_width=spec.model.image_width, image_height=spec.model.image_height)
            self._connected = True

    def close(self) -> None:
        self._connected = False

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def capabilities(self) -> PtzCapabilities:
        if self._caps is None:
            raise DriverConnectionError("sim backend: capabilities are known after connect()")
        return self._caps

    def _cam(self) -> SimulatedPtzCamera:
        if not self._connected or self._sim is None:
            raise DriverConnectionError(f"sim backend: camera {self._camera_name!r} is not connected")
        return self._sim

    # -- state and motion ----------------------------------------------------------------------

    def read_state(self) -> PtzFeedback:
        fb = self._cam().feedback()
        return PtzFeedback(pan=fb.pan, tilt=fb.tilt, zoom_raw=fb.zoom_raw, stamp=fb.stamp,
                           pan_velocity=fb.pan_velocity, tilt_velocity=fb.tilt_velocity,
                           temperature=fb.temperature, moving=fb.moving)

    def move_absolute(self, pan: float, tilt: float, zoom_raw: Optional[float] = None,
                      pan_speed: Optional[float] = None, tilt_speed: Optional[float] = None) -> None:
        self._cam().move_absolute(_none_if_nan(pan), _none_if_nan(tilt), _none_if_nan(zoom_raw),
                                  _none_if_nan(pan_speed), _none_if_nan(tilt_speed))

    def move_relative(self, pan: float, tilt: float, zoom_raw: Optional[float] = None,
                      pan_speed: Optional[float] = None, tilt_speed: Optional[float] = None) -> None:
        self._cam().move_relative(_none_if_nan(pan), _none_if_nan(tilt), _none_if_nan(zoom_raw),
                                  _none_if_nan(pan_speed), _none_if_nan(tilt_speed))

    def move_velocity(self, pan_rate: float, tilt_rate: float, zoom_rate: float = 0.0,
                      duration: Optional[float] = None) -> None:
        self._cam().move_velocity(_none_if_nan(pan_rate), _none_if_nan(tilt_rate), _none_if_nan(zoom_rate),
                                  duration or None)

    def stop(self) -> None:
        self._cam().stop()

    def home(self) -> None:
        self._cam().home()

    # -- images ----------------------------------------------------------------------------------

    def capture(self) -> Frame:
        """The newest frame of the free-running stream (stamp = reported mid-exposure time)."""
        frame = self._cam().capture()
        return Frame(image=frame.image, stamp=frame.stamp, sequence=frame.sequence,
                     metadata={"exposure_time": frame.exposure_time})

    def trigger(self, at_time: float) -> Frame:
        frame = self._cam().trigger(at_time)
        return Frame(image=frame.image, stamp=frame.stamp, sequence=frame.sequence,
                     metadata={"exposure_time": frame.exposure_time, "triggered": True})


# -- factory calibration files ----------------------------------------------------------------

FACTORY_HEADER = """\
# Factory calibration of the simulated camera '{name}': the TRUE model of config/sim_rig.yaml
# (cameras.{name}.model), written with model_to_dict. Until a calibration has been run, the
# sim demo and the tests use it as the camera's calibration. Regenerate after editing the rig:
#   python -m ptz_calibration.drivers.simulated --write-models config/
# (test_driver_sim.py fails when this file and the rig disagree).
"""


def factory_model_text(rig: Rig, camera: str) -> str:
    """The model YAML text of the rig's true model of ``camera`` (the simulated factory calibration)."""
    import yaml

    from ..model import model_to_dict

    return FACTORY_HEADER.format(name=camera) + yaml.safe_dump(
        model_to_dict(rig.cameras[camera].model), sort_keys=False, default_flow_style=None, width=100)


def main(argv: Optional[list[str]] = None) -> int:
    """``python -m ptz_calibration.drivers.simulated --write-models DIR [--rig FILE]``."""
    import argparse

    from ..fileio import atomic_write_text

    parser = argparse.ArgumentParser(description="Write sim_<camera>_model.yaml for every camera of a rig.")
    parser.add_argument("--write-models", metavar="DIR", required=True)
    parser.add_argument("--rig", default=None, help="rig YAML (default: the package's sim_rig.yaml)")
    args = parser.parse_args(argv)
    rig = load_rig(args.rig or default_rig_file())
    for name in rig.cameras:
        path = atomic_write_text(Path(args.write_models) / f"sim_{name}_model.yaml", factory_model_text(rig, name))
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
