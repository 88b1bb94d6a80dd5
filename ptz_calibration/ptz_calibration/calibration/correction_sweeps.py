"""Measuring the correction layers: pointing sweeps against landmarks, thermal sweeps.

**Pointing map.** The head is pointed at landmarks whose positions are known in the home frame
(surveyed, or from the calibration scene), each approached from both directions of both axes.
Every observation (reported pan/tilt, direction of approach, temperature, landmark pixel) gives
the *actual* joint angles: the pan/tilt at which the model (with its other layers) projects the
landmark onto the observed pixel (:func:`actual_angles`, two equations in two unknowns). The map
is fitted on ``actual - reported`` (:func:`fit_pointing`).

**Thermal compensation.** A fixed target at a fixed pan/tilt/zoom observed while the camera's
temperature changes (:func:`ptz_calibration.corrections.fit_thermal`).

:func:`simulate_pointing_sweep` / :func:`simulate_thermal_sweep` run both on the simulator with a
settable clock (a sweep of hours takes seconds); the landmark "detector" there is the
simulator's projection of the landmark plus Gaussian pixel noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Optional, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..corrections import (CorrectionLayers, PointingMap, ThermalCompensation, fit_axis_map, fit_thermal,
                           measure_zoom_offsets)
from ..corrections import apply
from ..model import PtzCameraModel
from ..simulation import SimulatedPtzCamera
from .capture_protocol import SimClock, feedback_at_rest


@dataclass(frozen=True)
class PointingObservation:
    """One view of a landmark: reported angles (rad), approach directions, temperature, pixel."""

    pan: float
    tilt: float
    zoom: float
    pan_direction: int
    tilt_direction: int
    temperature: float
    point_home: tuple[float, float, float]  # landmark in the home frame, m
    pixel: tuple[float, float]  # where it was seen, px (distorted)


def _without_pointing(model: PtzCameraModel) -> PtzCameraModel:
    return replace(model, corrections=apply.layers_of(model).enabled(pointing=False))


def actual_angles(model: PtzCameraModel, obs: PointingObservation, iterations: int = 8) -> tuple[float, float]:
    """The joint angles at which ``model`` (pointing map off) sees the landmark at the observed pixel."""
    base = _without_pointing(model)
    x = np.array([obs.pan, obs.tilt], float)
    target = np.asarray(obs.pixel, float)
    point = np.asarray(obs.point_home, float)

    def f(q: NDArray) -> NDArray:
        return apply.project(base, point, q[0], q[1], obs.zoom, obs.temperature)[0]

    h = 1e-6
    for _ in range(iterations):
        r = f(x) - target
        J = np.stack([(f(x + [h, 0.0]) - f(x - [h, 0.0])) / (2 * h),
                      (f(x + [0.0, h]) - f(x - [0.0, h])) / (2 * h)], axis=1)
        step = np.linalg.solve(J, -r)
        x = x + step
        if np.max(np.abs(step)) < 1e-10:
            break
    if not np.all(np.isfinite(x)):
        raise ValueError(f"landmark at {obs.pixel} cannot be explained by the model")
    return float(x[0]), float(x[1])


def fit_pointing(model: PtzCameraModel, observations: Sequence[PointingObservation],
                 pan_orders: Sequence[int] = (1, 2), tilt_orders: Sequence[int] = (1,)) -> PointingMap:
    """Pointing map from a sweep (see the module docstring)."""
    if not observations:
        raise ValueError("no pointing observations")
    act = np.array([actual_angles(model, o) for o in observations])
    rep = np.array([[o.pan, o.tilt] for o in observations])
    d = np.array([[o.pan_direction, o.tilt_direction] for o in observations], float)
    pan_map, pan_rms = fit_axis_map(rep[:, 0], act[:, 0], d[:, 0], pan_orders)
    tilt_map, tilt_rms = fit_axis_map(rep[:, 1], act[:, 1], d[:, 1], tilt_orders)
    return PointingMap(pan_map, tilt_map, (pan_rms, tilt_rms), len(observations))


# -- on the simulator ---------------------------------------------------------------------------

def world_to_home(cam: SimulatedPtzCamera, points_world: ArrayLike) -> NDArray[np.float64]:
    """World points in the simulator's (true) home optical frame."""
    p = np.asarray(points_world, float).reshape(-1, 3)
    return (p - cam.spec.mount_t) @ cam.spec.home_R


def home_to_world(cam: SimulatedPtzCamera, points_home: ArrayLike) -> NDArray[np.float64]:
    """Points of the true home optical frame in the world."""
    return np.asarray(points_home, float).reshape(-1, 3) @ cam.spec.home_R.T + cam.spec.mount_t


def point_along(model: PtzCameraModel, pan: float, tilt: float, distance: float, zoom: float = 0.0
                ) -> NDArray[np.float64]:
    """The point ``distance`` m along the model's optical axis at (pan, tilt), home frame."""
    R, T = model.pose(pan, tilt, zoom)
    return T + R[:, 2] * distance


def settle_at(cam: SimulatedPtzCamera, clock: SimClock, pan: float, tilt: float, zoom: float,
              pan_direction: int, tilt_direction: int, approach: float = math.radians(1.0),
              settle: float = 0.3) -> None:
    """Move to (pan, tilt, zoom) approaching each axis from the given side, then settle."""
    cam.move_absolute(pan - pan_direction * approach, tilt - tilt_direction * approach, zoom)
    clock.t = max(clock.t, cam.arrival_time())
    cam.move_absolute(pan, tilt, zoom)
    clock.t = max(clock.t, cam.arrival_time()) + settle


def simulate_pointing_sweep(cam: SimulatedPtzCamera, clock: SimClock, landmarks_home: ArrayLike, aim: ArrayLike,
                            zoom: float, pixel_noise: float = 0.2, seed: int = 0) -> list[PointingObservation]:
    """Point at every landmark from the four approach combinations and observe it.

    ``aim`` (N, 2): the commanded (pan, tilt) for each of the N landmarks.
    """
    rng = np.random.default_rng(seed)
    L = np.asarray(landmarks_home, float).reshape(-1, 3)
    out = []
    for point, (pan, tilt) in zip(L, np.asarray(aim, float).reshape(-1, 2)):
        for dp, dt in ((1, 1), (-1, -1), (1, -1), (-1, 1)):
            settle_at(cam, clock, pan, tilt, zoom, dp, dt)
            fb = cam.feedback(clock.t)
            px = cam.project(home_to_world(cam, point), clock.t)[0]
            if not np.all(np.isfinite(px)):
                continue
            px = px + pixel_noise * rng.standard_normal(2)
            spec = cam.spec.model
            if not (0 <= px[0] < spec.image_width and 0 <= px[1] < spec.image_height):
                continue
            out.append(PointingObservation(fb.pan, fb.tilt, fb.zoom_raw, dp, dt, fb.temperature,
                                           tuple(float(v) for v in point), (float(px[0]), float(px[1]))))
    return out


def simulate_thermal_sweep(cam: SimulatedPtzCamera, clock: SimClock, points_home: ArrayLike, pan: float, tilt: float,
                           zoom: float, times: ArrayLike, pixel_noise: float = 0.2, seed: int = 0
                           ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(temperatures (M,), pixels (M, N, 2)) of fixed points seen at a fixed setting at ``times`` s."""
    rng = np.random.default_rng(seed)
    settle_at(cam, clock, pan, tilt, zoom, 1, 1)
    start = clock.t
    temps, pixels = [], []
    world = home_to_world(cam, points_home)
    for dt in np.asarray(times, float):
        clock.t = max(clock.t, start + dt)
        temps.append(cam.feedback(clock.t).temperature)
        pixels.append(cam.project(world, clock.t) + pixel_noise * rng.standard_normal((len(world), 2)))
    return np.array(temps), np.array(pixels)


def thermal_from_sweep(model: PtzCameraModel, temperatures: ArrayLike, pixels: ArrayLike, zoom: float,
                       reference_temperature: float) -> ThermalCompensation:
    """:func:`fit_thermal` with the model's K at the sweep's zoom."""
    return fit_thermal(temperatures, pixels, model.camera_matrix(zoom), reference_temperature)


# -- the whole characterization on the simulator ---------------------------------------------------

#: Ambient temperature steps (s after start, deg C) of the simulated thermal characterization:
#: the sweeps see 21 -> 5 -> 35 -> 15 deg C; the held-out settings afterwards 42, then 0.
THERMAL_STEPS = ((3000.0, 5.0), (8000.0, 35.0), (14000.0, 15.0), (17000.0, 42.0), (21000.0, 0.0))


@dataclass
class SimulatedCorrections:
    """Layers measured on the simulator and what they achieve at held-out settings."""

    layers: CorrectionLayers
    report: dict


def reported_home_frame(rig, camera: str, temperature: Optional[float] = None
                        ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(R, t) taking points of the simulator's home frame into the frame where ``camera``'s head
    reports home (a calibrated model's home frame; see ``evaluate.home_offset``) at
    ``temperature``: a model calibrated from images taken at that temperature (its metadata's
    ``temperature_degc``) has the boresight drift of that temperature in its home frame. None: the
    simulator's calibration temperature (no drift)."""
    from .evaluate import home_offset

    pan0, tilt0 = home_offset(rig, camera)
    r0, t0 = rig.cameras[camera].model.pose(pan0, tilt0, 0.0)
    if temperature is not None and math.isfinite(temperature):
        r0 = r0 @ rig.cameras[camera].thermal.drift_rotation(temperature)
    return r0.T, -r0.T @ t0


def _rms(e: NDArray) -> float:
    return float(np.sqrt(np.mean(np.square(e))))


def correct_on_simulator(spec, scene, base: PtzCameraModel, model_from_true_home: Optional[tuple] = None,
                         seed: int = 3, held_out: int = 120, pixel_noise: float = 0.2) -> SimulatedCorrections:
    """Thermal and pointing sweeps of one simulated camera, fitted on ``base``, and an evaluation.

    ``spec``/``scene``: the simulated camera (its thermal set-points are replaced by
    :data:`THERMAL_STEPS`); ``model_from_true_home`` (R, t): how the base model's home frame sees
    points of the simulator's home frame (None: the same frame, e.g. for the true model; for a
    calibrated model: the frame where the head reports home, see ``evaluate.home_offset``).
    Thermal sweep: a grid 10 m ahead at pan = tilt = 0, zoom 8000, every 200 s for 16000 s.
    Pointing sweep: 69 landmarks 30 m away (pan -165..165 deg every 15 deg, tilt -10/10/30 deg)
    from the four approach directions at zoom 12000. Held out: ``held_out`` random settings at
    the maximum zoom, random approach directions, 0-150 s apart while the ambient steps on; the
    error is the pixel distance between where the model puts a point of the true optical axis
    30 m away and where it is.
    """
    from ..simulation.thermal import SetPoint

    spec = replace(spec, thermal=replace(spec.thermal, setpoints=tuple(SetPoint(t, a) for t, a in THERMAL_STEPS)))
    clock = SimClock()
    cam = SimulatedPtzCamera(spec, scene, seed=seed, clock=clock)
    R0, t0 = (np.eye(3), np.zeros(3)) if model_from_true_home is None else model_from_true_home

    def to_model(points_true_home: NDArray) -> NDArray:
        return np.asarray(points_true_home, float) @ np.asarray(R0).T + t0

    truth = spec.model
    zoom_t = 8000.0
    K = truth.camera_matrix(zoom_t)
    u, v = np.meshgrid(np.linspace(100, spec.model.image_width - 100, 7), np.linspace(80, spec.model.image_height - 80, 5))
    rays = np.stack([(u.ravel() - K[0, 2]) / K[0, 0], (v.ravel() - K[1, 2]) / K[1, 1], np.ones(u.size)], 1)
    R, T = truth.pose(0.0, 0.0, zoom_t)
    grid = T + (10.0 * rays) @ R.T
    temps, pix = simulate_thermal_sweep(cam, clock, grid, 0.0, 0.0, zoom_t, np.arange(0.0, 16000.0, 200.0),
                                        pixel_noise, seed)
    # reference: the temperature at which the base model is exact (its calibration data's mean,
    # recorded by the pipeline; for the simulator's true model its calibration temperature)
    reference = float(base.metadata.get("temperature_degc", spec.thermal.calibration_temperature))
    thermal = thermal_from_sweep(base, temps, pix, zoom_t, reference)
    with_thermal = replace(base, corrections=CorrectionLayers(thermal=thermal))
    aim = np.array([(p, t) for p in np.radians(np.arange(-165, 166, 15)) for t in np.radians([-10, 10, 30])])
    marks_true = np.array([point_along(truth, p, t, 30.0) for p, t in aim])
    obs = simulate_pointing_sweep(cam, clock, marks_true, aim, 12000.0, pixel_noise, seed)
    obs = [replace(o, point_home=tuple(float(x) for x in to_model(np.array(o.point_home)))) for o in obs]
    pmap = fit_pointing(with_thermal, obs)
    layers = CorrectionLayers(pointing=pmap, thermal=thermal)
    corrected = replace(base, corrections=layers)
    variants = {"none": base, "pointing": replace(base, corrections=layers.only("pointing")),
                "thermal": replace(base, corrections=layers.only("thermal")), "both": corrected}
    rng = np.random.default_rng(seed + 1000)
    step = spec.mechanics.pan.command_step or 1e-9
    zmax = float(spec.mechanics.zoom.max)
    errors: dict[str, list[float]] = {k: [] for k in variants}
    temperatures = []
    for _ in range(held_out):
        p = round(math.radians(rng.uniform(-160, 160)) / step) * step
        t = math.radians(rng.uniform(-20, 60))
        dp, dt = int(rng.choice([-1, 1])), int(rng.choice([-1, 1]))
        clock.t += rng.uniform(0.0, 150.0)
        settle_at(cam, clock, p, t, zmax, dp, dt)
        fb = cam.feedback(clock.t)
        Rw, Tw = cam.true_pose_world(clock.t)
        target = Tw + 30.0 * Rw[:, 2]
        truth_px = cam.project(target, clock.t)[0]
        x_h = to_model(world_to_home(cam, target))
        temperatures.append(fb.temperature)
        for name, m in variants.items():
            px = apply.project(m, x_h, fb.pan, fb.tilt, fb.zoom_raw, fb.temperature, dp, dt)[0]
            errors[name].append(float(np.linalg.norm(px - truth_px)))
    e = {k: np.array(v) for k, v in errors.items()}
    report = {
        "thermal": thermal.to_dict(),
        "thermal_sweep": {"images": int(len(temps)), "temperature_range_degc": [float(min(temps)), float(max(temps))]},
        "pointing": pmap.to_dict(),
        "pointing_sweep": {"observations": len(obs), "landmarks": int(len(aim)), "zoom": 12000.0},
        "held_out": {"settings": held_out, "zoom": zmax,
                     "temperature_range_degc": [float(min(temperatures)), float(max(temperatures))],
                     **{f"{k}_px": {"rms": _rms(v), "median": float(np.median(v)), "max": float(v.max())}
                        for k, v in e.items()},
                     "ratio_rms": _rms(e["both"]) / _rms(e["none"])},
    }
    return SimulatedCorrections(layers, report)


def averaged_feedback(cam: SimulatedPtzCamera, clock: SimClock, readings: int = 20, period: float = 0.02
                      ) -> tuple[float, float, float, float]:
    """(pan, tilt, zoom, temperature) averaged over ``readings`` feedback reads of a head at rest
    over the next ``readings * period`` s (the encoder noise, 1.5 px at the longest zoom per read,
    averages out)."""
    clock.t += readings * period
    fb = feedback_at_rest(cam, clock.t, readings, period)
    return fb.pan, fb.tilt, fb.zoom_raw, fb.temperature


def simulate_zoom_offset_sweep(cam: SimulatedPtzCamera, clock: SimClock, model: PtzCameraModel,
                               zooms: Sequence[float], pan: float = 0.0, tilt: float = 0.0,
                               distance: float = 50.0, pixel_noise: float = 0.2, seed: int = 0):
    """Per-zoom optical offset table of ``model`` against the simulated camera.

    At a fixed pan/tilt (approached the same way every time, so pointing errors do not change
    between steps) the camera zooms through ``zooms``; at each step a target on ``model``'s
    optical axis ``distance`` m away (its other layers applied) is observed, with the feedback
    averaged over 20 reads (:func:`averaged_feedback`). The table holds
    observed minus predicted pixels: where the actual axis sits at each zoom (e.g. the other
    lens of a housing whose model is ``model``).
    """
    rng = np.random.default_rng(seed)
    base = replace(model, corrections=apply.layers_of(model).enabled(zoom_offset=False))
    z_used, predicted, observed = [], [], []
    for z in zooms:
        settle_at(cam, clock, pan, tilt, float(z), 1, 1)
        fb_pan, fb_tilt, fb_zoom, fb_temp = averaged_feedback(cam, clock)
        R, T = apply.reported_pose(base, fb_pan, fb_tilt, fb_zoom, fb_temp, 1, 1)
        target = T + distance * R[:, 2]
        predicted.append(apply.project(base, target, fb_pan, fb_tilt, fb_zoom, fb_temp, 1, 1)[0])
        observed.append(cam.project(home_to_world(cam, target), clock.t)[0] + pixel_noise * rng.standard_normal(2))
        z_used.append(float(z))
    return measure_zoom_offsets(z_used, predicted, observed)
