"""A simulated PTZ camera: commands, encoder feedback, ground truth and rendered frames.

Time is the injectable ``clock`` (default ``time.time``: seconds of the system clock, so stamps
are ROS system time). The camera integrates its mechanics lazily: any state is evaluated exactly
at the requested time. Randomness (encoder and sensor noise, frame stamp jitter, trigger jitter,
the stream's frame phase) is drawn from generators keyed by ``(seed, camera name, stream, time or
frame index)``, so results depend only on the seed and the times asked for, not on call order.

Truth: the load angles (through backlash and periodic error) are put into the TRUE model
(``spec.model``), the boresight drift of the current temperature is applied to the optical frame,
and the focal length is scaled by the thermal focal drift.
"""

from __future__ import annotations

import math
import threading
import time
import zlib
from dataclasses import dataclass, field
from typing import Callable, Optional

import cv2
import numpy as np

from .mechanics import PtzMechanics
from .render import project_points, render
from .rig import CameraSpec, Rig
from .targets import Scene
from .thermal import ThermalModel

__all__ = ["SimFeedback", "TrueState", "SimFrame", "SimulatedPtzCamera", "make_cameras"]

# random streams
_ENCODER, _TEMPERATURE, _IMAGE, _STAMP, _TRIGGER, _PHASE = range(6)


@dataclass(frozen=True)
class SimFeedback:
    """What the device reports: motor-side positions, sampled at ``stamp``."""

    stamp: float  # s, time the position was sampled
    pan: float  # rad
    tilt: float  # rad
    zoom_raw: float  # raw units
    pan_velocity: float  # rad/s
    tilt_velocity: float  # rad/s
    zoom_velocity: float  # raw units/s
    temperature: float  # deg C
    moving: bool


@dataclass(frozen=True)
class TrueState:
    """Ground truth of the head at ``time``."""

    time: float
    pan: float  # rad, actual load angle (backlash and periodic error included)
    tilt: float  # rad
    zoom_raw: float  # raw units (actual lens position)
    pan_motor: float  # rad, motor/encoder side (before quantization and noise)
    tilt_motor: float  # rad
    temperature: float  # deg C
    moving: bool


@dataclass(frozen=True)
class SimFrame:
    """A rendered image with its reported stamp and its true exposure time."""

    image: np.ndarray  # (H, W) uint8 mono8
    stamp: float  # s, reported mid-exposure time (what a driver would publish)
    exposure_time: float  # s, TRUE mid-exposure time
    sequence: int  # frame index in the stream (or trigger count)
    camera_name: str
    triggered: bool = False
    metadata: dict = field(default_factory=dict)


def _line_kernel(vector: np.ndarray) -> np.ndarray:
    """Normalized kernel averaging along a line segment of ``vector`` (px) centred on the pixel."""
    length = float(np.hypot(*vector))
    half = int(math.ceil(length / 2)) + 1
    kernel = np.zeros((2 * half + 1, 2 * half + 1), dtype=np.float32)
    n = max(int(math.ceil(length * 4)), 1)
    for s in (np.arange(n) + 0.5) / n - 0.5:  # bilinear splats of points along the segment
        x, y = half + s * vector[0], half + s * vector[1]
        x0, y0 = int(math.floor(x)), int(math.floor(y))
        fx, fy = x - x0, y - y0
        kernel[y0, x0] += (1 - fx) * (1 - fy)
        kernel[y0, x0 + 1] += fx * (1 - fy)
        kernel[y0 + 1, x0] += (1 - fx) * fy
        kernel[y0 + 1, x0 + 1] += fx * fy
    return kernel / kernel.sum()


def _key(t: float) -> int:
    """Non-negative integer key of a time (ns)."""
    return int(round(t * 1e9)) & 0xFFFFFFFFFFFFFFFF


class SimulatedPtzCamera:
    """One simulated PTZ camera of a rig, seeing ``scene``.

    Thread-safe: commands, feedback and captures may come from different threads.
    """

    def __init__(self, spec: CameraSpec, scene: Scene, seed: int = 0,
                 clock: Callable[[], float] = time.time):
        self.spec = spec
        self.scene = scene
        self.seed = int(seed)
        self.clock = clock
        self._id = zlib.crc32(spec.name.encode())
        self._lock = threading.RLock()
        self.t0 = float(clock())
        self.mechanics = PtzMechanics(spec.mechanics, self.t0)
        self.thermal = ThermalModel(spec.thermal, self.t0)
        self._last_command = self.t0
        self._triggers = 0
        self._housing = np.eye(3)  # rotation of the housing by knocks (home frame)
        timing = spec.timing
        self.frame_period = 1.0 / timing.frame_rate
        self.frame_phase = float(self._rng(_PHASE, 0).uniform(0.0, self.frame_period))

    # -- helpers --------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.spec.name

    def _rng(self, stream: int, key: int) -> np.random.Generator:
        return np.random.default_rng([self.seed & 0xFFFFFFFF, self._id, stream, key])

    def _now(self, t: Optional[float]) -> float:
        return float(self.clock()) if t is None else float(t)

    def _command_time(self) -> float:
        t = max(float(self.clock()) + self.spec.timing.command_latency, self._last_command)
        self._last_command = t
        # keep a minute of history for late captures and feedback queries
        for axis in self.mechanics.axes:
            axis.prune(t - 60.0)
        return t

    # -- commands -------------------------------------------------------------------------------
    def move_absolute(self, pan: Optional[float], tilt: Optional[float], zoom_raw: Optional[float] = None,
                      pan_speed: Optional[float] = None, tilt_speed: Optional[float] = None,
                      zoom_speed: Optional[float] = None) -> None:
        """Move to absolute pan, tilt (rad) and zoom (raw); None/NaN leaves an axis alone."""
        with self._lock:
            self.mechanics.move_absolute(self._command_time(), pan, tilt, zoom_raw,
                                         (pan_speed, tilt_speed, zoom_speed))

    def move_relative(self, pan: Optional[float], tilt: Optional[float], zoom_raw: Optional[float] = None,
                      pan_speed: Optional[float] = None, tilt_speed: Optional[float] = None,
                      zoom_speed: Optional[float] = None) -> None:
        """Move by offsets from the current motor positions; None/NaN leaves an axis alone."""
        with self._lock:
            self.mechanics.move_relative(self._command_time(), pan, tilt, zoom_raw,
                                         (pan_speed, tilt_speed, zoom_speed))

    def move_velocity(self, pan_rate: Optional[float], tilt_rate: Optional[float],
                      zoom_rate: Optional[float] = 0.0, duration: Optional[float] = None) -> None:
        """Run at rates (rad/s, raw/s; None/NaN = 0) until stopped, at a limit, or ``duration`` s."""
        with self._lock:
            self.mechanics.move_velocity(self._command_time(), pan_rate, tilt_rate, zoom_rate, duration)

    def stop(self) -> None:
        """Brake every axis."""
        with self._lock:
            self.mechanics.stop(self._command_time())

    def home(self) -> None:
        """Move to the home position of every axis (pan = tilt = 0, widest zoom by default)."""
        m = self.spec.mechanics
        self.move_absolute(m.pan.home, m.tilt.home, m.zoom.home)

    # -- what the device reports -----------------------------------------------------------------
    def feedback(self, t: Optional[float] = None) -> SimFeedback:
        """Position feedback read at ``t`` (default now), sampled ``feedback_latency`` earlier."""
        with self._lock:
            ts = self._now(t) - self.spec.timing.feedback_latency
            ts = max(ts, self.t0)
            rng = self._rng(_ENCODER, _key(ts))
            pan, tilt, zoom = self.mechanics.axes
            return SimFeedback(
                stamp=ts,
                pan=pan.feedback(ts, rng),
                tilt=tilt.feedback(ts, rng),
                zoom_raw=zoom.feedback(ts, rng),
                pan_velocity=float(pan.state(ts)[1]),
                tilt_velocity=float(tilt.state(ts)[1]),
                zoom_velocity=float(zoom.state(ts)[1]),
                temperature=self.thermal.reported(ts, self._rng(_TEMPERATURE, _key(ts))),
                moving=self.mechanics.moving(ts),
            )

    def arrival_time(self) -> float:
        """Time at which the last command's motion ends (all axes)."""
        with self._lock:
            return max(axis.arrival_time() for axis in self.mechanics.axes)

    # -- ground truth ---------------------------------------------------------------------------
    def true_state(self, t: Optional[float] = None) -> TrueState:
        """Actual load angles, lens zoom and temperature at ``t`` (default now)."""
        with self._lock:
            t = self._now(t)
            pan, tilt, zoom = self.mechanics.axes
            return TrueState(
                time=t,
                pan=pan.load(t),
                tilt=tilt.load(t),
                zoom_raw=float(zoom.load(t)),
                pan_motor=float(pan.state(t)[0]),
                tilt_motor=float(tilt.state(t)[0]),
                temperature=self.thermal.temperature(t),
                moving=self.mechanics.moving(t),
            )

    def true_pose_world(self, t: Optional[float] = None) -> tuple[np.ndarray, np.ndarray]:
        """True pose world_from_optical ``(R, t)`` at ``t``: ``X_world = R @ X_optical + t``."""
        s = self.true_state(t)
        R_m, T_m = self.spec.model.pose(s.pan, s.tilt, s.zoom_raw)
        R_h = self.spec.home_R @ self._housing
        R = R_h @ R_m @ self.thermal.rotation(s.time)
        return R, R_h @ T_m + self.spec.mount_t

    def knock(self, rotation_vector) -> None:
        """Turn the whole housing by ``rotation_vector`` (rad, home optical frame) about the home
        optical centre, as a knock to the mount does; the feedback does not see it."""
        rv = np.asarray(rotation_vector, dtype=float).reshape(3)
        if not np.all(np.isfinite(rv)):
            raise ValueError(f"knock rotation must be finite, got {rv.tolist()}")
        with self._lock:
            self._housing = self._housing @ cv2.Rodrigues(rv)[0]

    @property
    def housing_rotation(self) -> np.ndarray:
        """The accumulated knock rotation (home frame)."""
        return self._housing.copy()

    def true_camera_matrix(self, t: Optional[float] = None) -> np.ndarray:
        """True K at ``t`` (zoom and thermal focal drift)."""
        s = self.true_state(t)
        K = np.array(self.spec.model.camera_matrix(s.zoom_raw), dtype=float)
        scale = self.thermal.focal_scale(s.time)
        K[0, 0] *= scale
        K[1, 1] *= scale
        K[0, 1] *= scale
        return K

    def true_distortion(self, t: Optional[float] = None) -> np.ndarray:
        """True plumb_bob (k1, k2, p1, p2, k3) at ``t``."""
        return np.asarray(self.spec.model.distortion(self.true_state(t).zoom_raw), dtype=float)

    def project(self, points_world: np.ndarray, t: Optional[float] = None) -> np.ndarray:
        """True distorted pixel coordinates (N, 2) of world points at ``t`` (NaN behind)."""
        t = self._now(t)
        R, tr = self.true_pose_world(t)
        uv, z = project_points(np.asarray(points_world, float).reshape(-1, 3),
                               self.true_camera_matrix(t), self.true_distortion(t), R, tr)
        uv[z <= 0] = np.nan
        return uv

    # -- images ---------------------------------------------------------------------------------
    def render_at(self, t: float, rng: Optional[np.random.Generator] = None,
                  exposure: Optional[float] = None) -> np.ndarray:
        """Image exposed around ``t`` (mid-exposure), with motion blur if the head moves meanwhile.

        Blur: up to ``spec.motion_samples`` renders at evenly spaced times within the exposure,
        each smeared along the image motion of the optical axis between samples (line kernel),
        averaged; so the blur is continuous whatever the number of renders.
        """
        spec = self.spec
        exposure = spec.timing.exposure if exposure is None else exposure
        size = (spec.model.image_width, spec.model.image_height)
        with self._lock:
            blur = np.zeros(2)
            if exposure > 0 and (self.mechanics.moving(t - exposure / 2) or self.mechanics.moving(t)):
                blur = self._image_motion(t, exposure)
            length = float(np.hypot(*blur))
            n = 1 if length < 0.25 else min(max(int(spec.motion_samples), 1), math.ceil(length))
            times = t + exposure * ((np.arange(n) + 0.5) / n - 0.5) if n > 1 else [t]
            views = [(self.true_camera_matrix(x), self.true_distortion(x), *self.true_pose_world(x))
                     for x in times]
        if length < 0.25:
            K, D, R, tr = views[0]
            return render(self.scene, K, D, size, R, tr, spec.render, spec.noise, rng)
        kernel = _line_kernel(blur / n)
        acc = np.zeros((size[1], size[0]), dtype=np.float32)
        for K, D, R, tr in views:
            img = render(self.scene, K, D, size, R, tr, spec.render, as_float=True)
            acc += cv2.filter2D(img, -1, kernel, borderType=cv2.BORDER_REPLICATE)
        acc /= len(views)
        if spec.noise.enabled:
            if rng is None:
                raise ValueError("render_at: sensor noise needs an rng")
            sigma = np.sqrt(spec.noise.read_noise**2 + spec.noise.shot_noise * np.maximum(acc, 0.0))
            acc += sigma * rng.standard_normal(acc.shape, dtype=np.float32)
        return np.clip(np.rint(acc), 0, 255).astype(np.uint8)

    def _image_motion(self, t: float, exposure: float) -> np.ndarray:
        """Pixel motion (du, dv) of the scene at the image centre over the exposure around ``t``."""
        R, tr = self.true_pose_world(t)
        far = tr + 1e3 * R[:, 2]  # a point far along the optical axis at mid-exposure
        uv0 = self.project(far[None], t - exposure / 2)[0]
        uv1 = self.project(far[None], t + exposure / 2)[0]
        d = uv1 - uv0
        return d if np.all(np.isfinite(d)) else np.zeros(2)

    def latest_frame_index(self, t: Optional[float] = None) -> int:
        """Index of the newest frame of the free-running stream available at ``t``."""
        t = self._now(t)
        k = math.floor((t - self.spec.timing.latency - self.t0 - self.frame_phase) / self.frame_period)
        return max(k, 0)

    def frame_time(self, k: int) -> float:
        """True mid-exposure time of stream frame ``k``."""
        return self.t0 + self.frame_phase + k * self.frame_period

    def frame_stamp(self, k: int) -> float:
        """Reported stamp of stream frame ``k``: true mid-exposure + offset + jitter."""
        timing = self.spec.timing
        jitter = timing.stamp_jitter * self._rng(_STAMP, k).standard_normal()
        return self.frame_time(k) + timing.stamp_offset + jitter

    def capture(self, t: Optional[float] = None) -> SimFrame:
        """The newest stream frame available at ``t`` (default now)."""
        k = self.latest_frame_index(t)
        t_exp = self.frame_time(k)
        image = self.render_at(t_exp, self._rng(_IMAGE, k))
        return SimFrame(image, self.frame_stamp(k), t_exp, k, self.name)

    def trigger_times(self, t: float) -> tuple[float, float]:
        """(reported stamp, true mid-exposure time) of an exposure triggered at ``t``."""
        timing = self.spec.timing
        jitter = timing.trigger_jitter * self._rng(_TRIGGER, _key(t)).standard_normal()
        nominal = t + timing.trigger_latency + timing.exposure / 2
        return nominal, nominal + jitter

    def trigger(self, t: Optional[float] = None) -> SimFrame:
        """Hardware-triggered exposure latched at master-clock time ``t`` (default now).

        The exposure starts ``trigger_latency`` (+ Gaussian ``trigger_jitter``) after ``t``; the
        reported stamp is the nominal mid-exposure time ``t + trigger_latency + exposure / 2``.
        The frame is rendered at once (for ``t`` in the future it assumes no command before then).
        """
        t = self._now(t)
        stamp, t_exp = self.trigger_times(t)
        with self._lock:
            self._triggers += 1
            seq = self._triggers
        image = self.render_at(t_exp, self._rng(_IMAGE, (1 << 62) + _key(t)))
        return SimFrame(image, stamp, t_exp, seq, self.name, triggered=True)


def make_cameras(rig: Rig, seed: int = 0, clock: Callable[[], float] = time.time) -> dict[str, SimulatedPtzCamera]:
    """All cameras of a rig sharing one clock (and seed; each camera draws its own streams)."""
    return {name: SimulatedPtzCamera(spec, rig.scene, seed, clock) for name, spec in rig.cameras.items()}
