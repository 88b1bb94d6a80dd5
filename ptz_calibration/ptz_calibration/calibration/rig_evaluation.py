"""A stereo rig against the simulator's truth as the nodes use it: reported angles in, the heads'
mechanics between what they report and where the cameras point.

:func:`.rig_calibration.extrinsics_errors` compares the estimate and the truth at the same angles
("actual = reported"). That is right for models without correction layers. A head at rest reports
its motor angle; the camera points where the load is: half the backlash behind the motor in the
direction of the last move, plus the gears' periodic error
(:meth:`..simulation.mechanics.AxisConfig.settled_load`). ``ptz_stereo`` turns the reported angles
and the directions of the last moves into actual angles through each model's pointing map, then
applies the other layers. A measured map also carries the offset between the model's home frame
and the frame where the head reports home, so comparing a corrected rig at "actual = reported"
reads that offset as an error. Here:

* **Table 5 at run time** (:func:`runtime_extrinsics_errors`): reported angles on the heads'
  command grid, random approach directions, zooms over the range, a camera temperature per pair
  (20-30 deg C: the simulated heads warm from 21 deg C to about 30). The estimate is taken at the
  reported angles through every layer (pointing map with the directions, thermal at that
  temperature); the truth at the true angles and the temperature's boresight drift.
* **Localization at rest** (:func:`localization_at_rest`): targets at 5-30 m; each head turned to
  the target (the nearest command-grid angles, random approach directions) and zoomed so a 2 m
  span fills the image (+-20 %, as the demo's tracker does); the target's true pixels plus
  Gaussian noise (``error_pct``), and the true pixels alone (``exact_pixels_error_pct``: the
  calibration's share; 0.3 px of noise alone puts the worst of 300 targets at 0.38-0.42 % of
  the range with the true rig and its true pointing maps, four target seeds); triangulated with
  :func:`..stereo.triangulation.triangulate` at the corrected settings, as ``~/localize`` does. The error is the distance to the true point in the left
  camera's optical frame (the same physical frame for both; the left head's own pointing error,
  0.01 deg or 0.02 % of the range, is not in it), in % of the range.

Frames: the truth is :func:`.rig_calibration.true_rig_in_reported_home`, the frames where each head
reports home at the simulator's calibration temperature, with each camera's true boresight and
focal drift as a thermal layer; the true angles are the load angles minus the load angles at the
reported home (:func:`.evaluate.home_offset`, approached from below). Extrinsics do not depend
on the choice of home frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import least_squares

from ..corrections import CorrectionLayers, ThermalCompensation, apply
from ..model.stereo_rig import StereoRigModel
from ..stereo.triangulation import triangulate
from .evaluate import home_offset
from .rig_calibration import extrinsics_metrics, true_rig_in_reported_home

__all__ = ["SimulatedRigTruth", "runtime_extrinsics_errors", "localization_at_rest"]


@dataclass(frozen=True)
class SimulatedRigTruth:
    """The simulator's truth of a stereo rig in the frames where the heads report home, with what
    maps reported angles to true ones."""

    rig: StereoRigModel  # true models (with their thermal drift) and home transform, reported-home frames
    axes: dict[str, tuple[Any, Any]]  # camera -> (pan, tilt) AxisConfig of its head
    homes: dict[str, tuple[float, float]]  # camera -> true (pan, tilt) load angles at reported home

    @classmethod
    def of(cls, sim: Any, left: str = "left", right: str = "right") -> "SimulatedRigTruth":
        """From a simulator rig (:func:`..simulation.load_rig`) and the two cameras' names."""
        from ..simulation.rig import true_stereo_rig

        homes = {n: home_offset(sim, n) for n in (left, right)}
        rig = true_rig_in_reported_home(true_stereo_rig(sim, left, right), homes[left], homes[right])

        def drifting(model: Any) -> Any:
            c = sim.cameras[model.camera_name].thermal
            layer = ThermalCompensation(c.calibration_temperature, c.boresight_x, c.boresight_y, c.focal_ppm)
            return replace(model, corrections=CorrectionLayers(thermal=layer))

        rig = replace(rig, left=drifting(rig.left), right=drifting(rig.right))
        axes = {n: (sim.cameras[n].mechanics.pan, sim.cameras[n].mechanics.tilt) for n in (left, right)}
        return cls(rig, axes, homes)

    @property
    def names(self) -> tuple[str, str]:
        return self.rig.left.camera_name, self.rig.right.camera_name

    def true_angles(self, camera: str, reported: NDArray, directions: NDArray) -> NDArray[np.float64]:
        """True (pan, tilt) (N, 2) of a head at rest that reports ``reported`` (N, 2), each axis
        reached moving in ``directions`` (N, 2; +-1)."""
        pan, tilt = self.axes[camera]
        home = self.homes[camera]
        return np.stack([pan.settled_load(reported[:, 0], directions[:, 0]) - home[0],
                         tilt.settled_load(reported[:, 1], directions[:, 1]) - home[1]], axis=1)

    def on_command_grid(self, camera: str, angles: NDArray) -> NDArray[np.float64]:
        """``angles`` (N, 2) rounded to the resolution of the head's position targets (unchanged
        on an axis without one)."""
        grid = np.array([a.command_step for a in self.axes[camera]], dtype=float)
        return np.where(grid > 0, np.round(angles / np.where(grid > 0, grid, 1.0)) * grid, angles)

    def reported_for(self, camera: str, true: NDArray, directions: NDArray) -> NDArray[np.float64]:
        """The command-grid angles (N, 2) that bring the head nearest to the ``true`` angles."""
        true = np.asarray(true, dtype=float)
        motor = true.copy()
        for _ in range(4):  # backlash, then the periodic error at the load angle (a contraction: |A k| << 1)
            motor = motor + true - self.true_angles(camera, motor, directions)
        return self.on_command_grid(camera, motor)


def _estimate_settings(model: Any, reported: NDArray, directions: NDArray, zoom: NDArray,
                       temperature: NDArray) -> NDArray[np.float64]:
    """(N, 4) settings as ``ptz_stereo`` forms them: the pointing map's actual angles, the reported
    zoom and the camera temperature."""
    pan, tilt = apply.corrected_angles(model, reported[:, 0], reported[:, 1], directions[:, 0], directions[:, 1])
    return np.c_[pan, tilt, zoom, temperature]


def runtime_extrinsics_errors(estimate: StereoRigModel, truth: SimulatedRigTruth, n: int = 200, seed: int = 1,
                              pan_range: float = math.radians(60.0), tilt_range: tuple[float, float] = (-0.3, 0.5),
                              temperature_range: tuple[float, float] = (20.0, 30.0)) -> dict[str, Any]:
    """Table 5 metrics at ``n`` held-out pairs of reported settings (module notes), with the
    settings and approach directions per pair."""
    rng = np.random.default_rng(seed)
    est, tru = [], []
    listed = []
    temperature = rng.uniform(*temperature_range, n)
    for name, model in zip(truth.names, (estimate.left, estimate.right)):
        reported = truth.on_command_grid(name, np.c_[rng.uniform(-pan_range, pan_range, n),
                                                     rng.uniform(*tilt_range, n)])
        directions = rng.choice([-1.0, 1.0], (n, 2))
        zm = model.zoom_mapping
        zoom = np.round(rng.uniform(zm.raw_min, zm.raw_max, n))
        est.append(_estimate_settings(model, reported, directions, zoom, temperature))
        tru.append(np.c_[truth.true_angles(name, reported, directions), zoom, temperature])
        listed.append(np.c_[reported, zoom, directions, temperature])
    out = extrinsics_metrics(estimate.extrinsics(est[0], est[1]), truth.rig.extrinsics(tru[0], tru[1]),
                             listed[0], listed[1])
    out["settings"] = "reported (pan, tilt, zoom, pan direction, tilt direction, temperature) per camera"
    out["temperature_range_degc"] = list(temperature_range)
    return out


def _aim(model: Any, point: NDArray, zoom: float, start: NDArray) -> NDArray[np.float64]:
    """(pan, tilt) that put ``point`` (home frame) on the image centre of ``model`` at ``zoom``."""
    centre = np.array([model.image_width, model.image_height], dtype=float) / 2.0
    res = least_squares(lambda q: model.project(point[None], q[0], q[1], zoom)[0] - centre, start,
                        x_scale=[0.1, 0.1])
    return res.x


def _summary(e: NDArray[np.float64]) -> dict[str, float]:
    """Median, 95th percentile, max and the fraction within 0.5 of errors in % (NaN: not localized)."""
    e = e[np.isfinite(e)]
    if not len(e):
        return {}
    return {"median": float(np.median(e)), "p95": float(np.percentile(e, 95)), "max": float(e.max()),
            "within_0.5": float(np.mean(e <= 0.5))}


def localization_at_rest(estimate: StereoRigModel, truth: SimulatedRigTruth, n: int = 300, seed: int = 3,
                         range_m: tuple[float, float] = (5.0, 30.0), azimuth: float = math.radians(20.0),
                         elevation: tuple[float, float] = (math.radians(-3.0), math.radians(9.0)),
                         span_m: float = 2.0, pixel_sigma: float = 0.3,
                         temperature_range: tuple[float, float] = (20.0, 30.0)) -> dict[str, Any]:
    """3D localization error of ``n`` targets seen by both heads at rest (module notes): targets
    uniform in range, within ``azimuth`` of straight ahead of the left camera's home and in the
    ``elevation`` band (up positive)."""
    rng = np.random.default_rng(seed)
    names = truth.names
    models = {names[0]: estimate.left, names[1]: estimate.right}
    true_models = {names[0]: truth.rig.left, names[1]: truth.rig.right}
    zgrid = {n_: np.linspace(m.zoom_mapping.raw_min, m.zoom_mapping.raw_max, 257) for n_, m in true_models.items()}
    fx = {n_: true_models[n_].camera_matrix(zgrid[n_])[:, 0, 0] for n_ in names}
    errors, exact_errors, ranges, failures = [], [], [], []
    for _ in range(n):
        r, az, el = rng.uniform(*range_m), rng.uniform(-azimuth, azimuth), rng.uniform(*elevation)
        # the left home optical frame: x right, y down, z forward
        x_left = r * np.array([math.sin(az) * math.cos(el), -math.sin(el), math.cos(az) * math.cos(el)])
        points = {names[0]: x_left, names[1]: truth.rig.home_R.T @ (x_left - truth.rig.home_t)}
        settings, pixels, exact, seen = {}, {}, {}, True
        temperature = np.array([rng.uniform(*temperature_range)])
        true_left = None
        for name in names:
            m = true_models[name]
            z = float(np.clip(np.interp(m.image_width * r / span_m * rng.uniform(0.8, 1.2), fx[name], zgrid[name]),
                              zgrid[name][0], zgrid[name][-1]))
            z = float(np.round(z))
            p = points[name]
            q = _aim(m, p, z, np.array([-math.atan2(p[0], p[2]), -math.atan2(p[1], math.hypot(p[0], p[2]))]))
            d = rng.choice([-1.0, 1.0], (1, 2))
            reported = truth.reported_for(name, q[None], d)
            q_true = truth.true_angles(name, reported, d)[0]
            exact[name] = apply.project(m, p[None], q_true[0], q_true[1], z, float(temperature[0]))[0]
            px = exact[name] + rng.normal(0.0, pixel_sigma, 2)
            if true_left is None:
                r_t, t_t = apply.setting_pose(m, np.r_[q_true, z, temperature])
                true_left = r_t.T @ (p - t_t)  # the target in the true left optical frame
            inside = np.all(np.isfinite(px)) and 0 <= px[0] < m.image_width and 0 <= px[1] < m.image_height
            seen = seen and bool(inside)
            settings[name] = _estimate_settings(models[name], reported, d, np.array([z]), temperature)[0]
            pixels[name] = px
        if not seen:
            failures.append("the target left an image (aiming on the command grid)")
            continue
        # one batch at this setting: row 0 the noisy pixels, row 1 the true ones
        b = triangulate(estimate, settings[names[0]], settings[names[1]],
                        np.stack([pixels[names[0]], exact[names[0]]]),
                        np.stack([pixels[names[1]], exact[names[1]]]), pixel_sigma)
        if not b.valid[0]:
            failures.append(b.reasons[0])
            continue
        err = 100.0 * np.linalg.norm(b.points - true_left, axis=1) / r
        errors.append(float(err[0]))
        ranges.append(r)
        exact_errors.append(float(err[1]) if b.valid[1] else math.nan)
    e, rr = np.array(errors), np.array(ranges)
    out: dict[str, Any] = {
        "targets": n, "localized": int(len(e)), "failures": failures[:5], "failed": len(failures),
        "range_m": list(range_m), "azimuth_deg": math.degrees(azimuth), "span_m": span_m,
        "pixel_sigma": pixel_sigma, "temperature_range_degc": list(temperature_range),
    }
    if len(e):
        out["error_pct"] = _summary(e)
        # the same targets and settings with their true pixels: the calibration's share of the error
        out["exact_pixels_error_pct"] = _summary(np.array(exact_errors))
        bins = {}
        edges = [range_m[0], 10.0, 20.0, range_m[1]] if range_m[0] < 10.0 < 20.0 < range_m[1] else list(range_m)
        for lo, hi in zip(edges[:-1], edges[1:]):
            s = (rr >= lo) & (rr <= hi)
            if np.any(s):
                bins[f"{lo:g}-{hi:g} m"] = {"n": int(s.sum()), "median_pct": float(np.median(e[s])),
                                            "p95_pct": float(np.percentile(e[s], 95)), "max_pct": float(e[s].max())}
        out["by_range"] = bins
    return out
