"""``ptz_stereo_demo``: the whole story on the simulated dual-PTZ rig (what ``make demo`` runs).

1. **Calibration.** Simulates a dual dataset (each camera's capture protocol and synchronized pairs
   of both), calibrates both cameras (intrinsics over zoom, axes, radius vectors, zoom
   translation, bundle adjustment) and the rig's home extrinsics, writes the models, the rig file
   and the HTML reports, and prints their errors against the simulator's truth. A calibration
   already in ``--calibration-dir`` is reused (``--recalibrate`` redoes it); ``--truth`` skips this
   and uses the simulator's true models (for quick runs and tests).
2. **Tracking.** Two ``ptz_driver`` nodes with those models and a ``ptz_stereo`` node with that
   rig, each in its own process, and a *tracker* in this one: a target moves through the scene 6
   to 28 m away; every 0.2 s the tracker takes the target's pixel in each camera (the simulator's
   true projection at that instant, which the driver's process computes, plus 0.3 px of noise: a
   detector), steers each camera with ``~/cmd`` to keep the target centred and zooms so the target
   region stays about 2 m wide, and asks ``ptz_stereo``'s ``~/localize`` for the 3D point in the
   rig frame at that stamp, while both heads move.
3. **Result.** The localization error against the simulator's truth, as a table while it runs and
   a summary (median / 95th percentile / max, in % of the range) at the end, written with the
   calibration errors to ``--output``/summary.json, and whether the issue's 0.5 % target is met.
   Exit status 1 if fewer than half of the localizations succeeded.

From feedback alone the depth error of a stereo pair grows as ``range * pointing error / baseline``;
the simulated heads have 0.05 deg of backlash (taken up both ways while tracking), 0.03 deg of gear
error and thermal drift, which the correction layers measured in step 1 (pointing map, temperature
compensation; ``--no-corrections`` leaves them out) remove, and report angles in 0.075 deg encoder
steps, which nothing removes while a head moves: at 25 m with the 0.5 m baseline one step is 6 %
of the range.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import multiprocessing
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from ptz_calibration_msgs.msg import PtzCommand, PtzState
from ptz_calibration_msgs.srv import Localize
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.signals import SignalHandlerOptions

from ..calibration.capture_protocol import ProtocolOptions
from ..model import load_model
from ..model.stereo_rig import load_rig_model, save_rig_model
from ..simulation import default_rig_path, load_rig
from .ptz_driver import PtzDriverNode
from .sim_demo import driver_parameters

CAMERAS = ("left", "right")


# -- 1. calibration --------------------------------------------------------------------------------
def calibrate(args: argparse.Namespace, rig_file: Path) -> dict[str, Any]:
    """Model files per camera and the rig file (calibrated now, reused, or the truth)."""
    from ..calibration.capture_protocol import StereoOptions, run_stereo_protocol
    from ..calibration.evaluate import evaluate_against_truth, home_offset
    from ..calibration.dual import calibrate_dual
    from ..calibration.rig_calibration import extrinsics_errors
    from ..calibration.rig_evaluation import SimulatedRigTruth
    from ..simulation.rig import true_stereo_rig

    rig = load_rig(rig_file)
    out = args.calibration_dir.expanduser().resolve()
    if args.truth:
        truth = true_stereo_rig(rig)
        path = save_rig_model(truth, out / "truth" / "rig.yaml", backup=False)
        print(f"[demo] using the simulator's TRUE models and rig ({path}), no calibration", flush=True)
        return {"models": {n: f"package://ptz_calibration/config/sim_{n}_model.yaml" for n in CAMERAS},
                "rig": str(path), "figures": {"source": "truth"}}
    cal = out / "cal"
    if (cal / "rig.yaml").exists() and not args.recalibrate:
        print(f"[demo] reusing the calibration in {cal} (--recalibrate to redo it)", flush=True)
        figures = json.loads((cal / "figures.json").read_text()) if (cal / "figures.json").exists() else {}
        return {"models": {n: f"file://{cal / n / f'{n}_model.yaml'}" for n in CAMERAS},
                "rig": str(cal / "rig.yaml"), "figures": figures}
    fast = load_rig(rig_file)
    for n in CAMERAS:  # 1 sample per pixel: half the rendering time, corners as accurate
        spec = fast.cameras[n]
        fast.cameras[n] = dataclasses.replace(spec, render=dataclasses.replace(spec.render, supersample=1))
    t0 = time.monotonic()
    print(f"[demo] 1/3 simulating a dual calibration dataset in {out / 'data'} "
          f"({args.zoom_steps} zoom steps x {args.views_per_step} views per camera, sweeps, synchronized pairs)...",
          flush=True)
    run_stereo_protocol(fast, *CAMERAS, out / "data", StereoOptions(),
                        ProtocolOptions(zoom_steps=args.zoom_steps, views_per_step=args.views_per_step),
                        overwrite=True)
    print(f"[demo]     {time.monotonic() - t0:.0f} s; calibrating...", flush=True)
    dual = calibrate_dual(out / "data", cal)
    figures: dict[str, Any] = {}
    for n in CAMERAS:
        result = dual.results[n]
        ev = evaluate_against_truth(result.model, rig.cameras[n].model, home_offset(rig, n))
        figures[n] = {"rms_px": result.rms_px, "focal_error_pct": ev["focal_error_pct"]["max_abs"],
                      "principal_point_error_px": ev["principal_point_error_px"]["max"],
                      "pan_axis_error_deg": ev["pan_axis_error_deg"], "tilt_axis_error_deg": ev["tilt_axis_error_deg"],
                      "pan_radius_error_mm": ev["pan_radius_error_mm"],
                      "tilt_radius_error_mm": ev["tilt_radius_error_mm"], "report": dual.files[n].get("report_html")}
        f = figures[n]
        print(f"[demo]     {n}: RMS {f['rms_px']:.3f} px; against the truth: focal <= {f['focal_error_pct']:.2f} %, "
              f"principal point <= {f['principal_point_error_px']:.1f} px, axes {f['pan_axis_error_deg']:.3f} / "
              f"{f['tilt_axis_error_deg']:.3f} deg, radii {f['pan_radius_error_mm']:.1f} / "
              f"{f['tilt_radius_error_mm']:.1f} mm; report {f['report']}", flush=True)
    rc, rig_path = dual.rig, dual.files["rig"]
    truth = SimulatedRigTruth.of(rig, *CAMERAS).rig  # no temperature in the settings below: its drift stays off
    rng = np.random.default_rng(1)
    q = [np.c_[rng.uniform(-1.05, 1.05, 200), rng.uniform(-0.3, 0.5, 200), rng.uniform(0, 16384, 200)]
         for _ in CAMERAS]
    ev = extrinsics_errors(rc.rig, truth, q[0], q[1])
    figures["rig"] = {"pairs": rc.report["pairs_used"], "rms_px": rc.report["rms_px"],
                      "rotation_error_deg_max": ev["rotation_error_deg"]["max"],
                      "translation_error_pct_median": ev["translation_error_pct"]["median"],
                      "cosine_similarity_min": ev["cosine_similarity"]["min"]}
    (cal / "figures.json").write_text(json.dumps(figures, indent=1))
    g = figures["rig"]
    print(f"[demo]     rig: {g['pairs']} pairs, RMS {g['rms_px']:.3f} px; at 200 held-out settings rotation <= "
          f"{g['rotation_error_deg_max']:.3f} deg, translation median {g['translation_error_pct_median']:.2f} %; "
          f"{rig_path} ({time.monotonic() - t0:.0f} s in all)", flush=True)
    return {"models": {n: f"file://{cal / n / f'{n}_model.yaml'}" for n in CAMERAS}, "rig": str(rig_path),
            "figures": figures}


def add_corrections(calib: dict[str, Any], rig_file: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Measure each camera's pointing map and temperature compensation on the simulator
    (``ptz-calib corrections --simulate``), store them with the models, and fit the rig's home
    transform again through them (``ptz_stereo`` applies them; a home fitted without them keeps
    the maps' offsets between the two heads), unless the rig is the truth."""
    from ..calibration import load_dataset
    from ..calibration.correction_sweeps import correct_on_simulator, reported_home_frame
    from ..calibration.rig_calibration import calibrate_rig
    from ..model import save_model
    from ..model.rig_uncertainty import ZoomStd
    from ..model.rotations import rotation_angle
    from ..model.stereo_rig import save_rig_model

    rig = load_rig(rig_file)
    root = args.calibration_dir.expanduser().resolve()
    out = root / ("truth" if args.truth else "cal") / "corrected"
    models, files, sigmas = {}, {}, []
    for n in CAMERAS:
        url = calib["models"][n]
        base = load_model(url[len("file://"):]) if url.startswith("file://") else rig.cameras[n].model
        spec = rig.cameras[n]
        # a calibrated model's home frame is where the head reports home, at its images' temperature
        frame = None if args.truth else reported_home_frame(rig, n, base.metadata.get("temperature_degc"))
        measured = correct_on_simulator(spec, rig.scene, base, frame, seed=args.seed)
        models[n] = dataclasses.replace(base, corrections=measured.layers)
        files[n] = f"file://{save_model(models[n], out / f'{n}_model.yaml', backup=False)}"
        h = measured.report["held_out"]
        # what is left of the head's pointing error per joint: the held-out residual at maximum zoom
        # (2 joints), and the encoder's quantization while the head moves (uniform over one step)
        f_max = float(base.camera_matrix(base.zoom_mapping.raw_max)[0, 0])
        sigmas += [math.hypot(h["both_px"]["rms"] / f_max / math.sqrt(2.0), ax.encoder_step / math.sqrt(12.0))
                   for ax in (spec.mechanics.pan, spec.mechanics.tilt)]
        print(f"[demo]     {n}: pointing map + temperature compensation: pointing error at maximum zoom "
              f"{h['none_px']['rms']:.1f} -> {h['both_px']['rms']:.1f} px RMS at held-out settings", flush=True)
    stereo = load_rig_model(calib["rig"])
    if not args.truth:
        zoom_std = (stereo.uncertainty.left_zoom_translation, stereo.uncertainty.right_zoom_translation) \
            if stereo.uncertainty is not None else (ZoomStd(), ZoomStd())
        refit = calibrate_rig(load_dataset(root / "data" / "stereo"), models["left"], models["right"],
                              zoom_std=zoom_std).rig
        moved = math.degrees(float(rotation_angle(stereo.home_R.T @ refit.home_R)))
        print(f"[demo]     rig home fitted again through the corrections: turned by {moved:.4f} deg, moved by "
              f"{1e3 * float(np.linalg.norm(refit.home_t - stereo.home_t)):.2f} mm", flush=True)
        stereo = refit
    u = stereo.uncertainty and dataclasses.replace(stereo.uncertainty, pointing_sigma=max(sigmas))
    corrected = dataclasses.replace(stereo, left=models["left"], right=models["right"], uncertainty=u)
    rig_path = save_rig_model(corrected, out / "rig.yaml", backup=False)
    if u is not None:
        print(f"[demo]     rig uncertainty: pointing {math.degrees(u.pointing_sigma):.4f} deg per joint with the "
              "corrections (residual at held-out settings and the encoder steps while moving)", flush=True)
    figures = {**calib["figures"], "rig_as_used": evaluate_as_used(corrected, rig)}
    return {**calib, "models": files, "rig": str(rig_path), "figures": figures}


def evaluate_as_used(stereo: Any, rig: Any) -> dict[str, Any]:
    """The corrected rig against the simulator as the nodes use it (``ptz-calib evaluate RIG
    --truth``): Table 5 at 200 held-out reported settings, and localization at rest at 5-30 m."""
    from ..calibration.rig_evaluation import SimulatedRigTruth, localization_at_rest, runtime_extrinsics_errors

    truth = SimulatedRigTruth.of(rig, *CAMERAS)
    ext = runtime_extrinsics_errors(stereo, truth)
    loc = localization_at_rest(stereo, truth)
    out = {"rotation_error_deg": ext["rotation_error_deg"], "translation_error_pct": ext["translation_error_pct"],
           "localization_at_rest_pct": loc.get("error_pct", {}), "localized_at_rest": loc["localized"],
           "localization_at_rest_exact_pixels_pct": loc.get("exact_pixels_error_pct", {})}
    e = out["localization_at_rest_pct"]
    print(f"[demo]     rig as the nodes use it, at 200 held-out reported settings: rotation median "
          f"{ext['rotation_error_deg']['median']:.4f} deg, max {ext['rotation_error_deg']['max']:.4f}; translation "
          f"median {ext['translation_error_pct']['median']:.2f} %, max {ext['translation_error_pct']['max']:.2f} %",
          flush=True)
    if e:
        print(f"[demo]     localization at rest of {loc['localized']} targets at 5-30 m (0.3 px noise): median "
              f"{e['median']:.3f} %, 95th percentile {e['p95']:.3f} %, max {e['max']:.3f} % of the range", flush=True)
    x = out["localization_at_rest_exact_pixels_pct"]
    if x:
        print(f"[demo]     the same targets with their true pixels (the calibration's share): median "
              f"{x['median']:.3f} %, 95th percentile {x['p95']:.3f} %, max {x['max']:.3f} %", flush=True)
    return out


# -- 2. tracking -----------------------------------------------------------------------------------
def target_position(t: float, period: float) -> np.ndarray:
    """The target's world position (rig frame, x forward, y left, z up) at time t: an ellipse from
    6 to 28 m ahead, 5 m either side, bobbing 0.5 m."""
    w = 2.0 * math.pi * t / period
    return np.array([17.0 + 11.0 * math.cos(w), 5.0 * math.sin(w), 0.8 + 0.5 * math.sin(2.0 * w)])


class Tracker(Node):
    """Steers both cameras at the target and asks ptz_stereo where it is."""

    def __init__(self, models: dict[str, Any]) -> None:
        super().__init__("tracker")
        self.models = models
        self.states: dict[str, PtzState] = {}
        self.cmd = {n: self.create_publisher(PtzCommand, f"{n}/ptz_driver/cmd", 10) for n in CAMERAS}
        for n in CAMERAS:
            self.create_subscription(PtzState, f"{n}/ptz_driver/ptz_state",
                                     lambda msg, name=n: self.states.__setitem__(name, msg), 10)
        self.localize = self.create_client(Localize, "ptz_stereo/localize")

    def steer(self, name: str, pixel: np.ndarray, distance: float) -> None:
        """Centre the target (pixel error -> pan/tilt offsets through the model's K) and zoom so that
        ~2 m around the target fill the image width."""
        state = self.states.get(name)
        if state is None:
            return
        model = self.models[name]
        K = model.camera_matrix(state.zoom_raw)
        dpan = -math.atan2(pixel[0] - K[0, 2], K[0, 0])  # target right of centre: pan right (negative)
        dtilt = -math.atan2(pixel[1] - K[1, 2], K[1, 1])  # below centre: tilt down
        zm = model.zoom_mapping
        zooms = np.linspace(zm.raw_min, zm.raw_max, 257)
        f_want = model.image_width * distance / 2.0
        zoom = float(zooms[np.argmin(np.abs(model.camera_matrix(zooms)[:, 0, 0] - f_want))])
        msg = PtzCommand()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.mode = PtzCommand.MODE_ABSOLUTE
        msg.pan, msg.tilt, msg.zoom = state.pan + dpan, state.tilt + dtilt, zoom
        self.cmd[name].publish(msg)


def _serve_driver(name: str, parameters: list[tuple[str, Any]], threads: int, conn: Any) -> None:
    """A driver process: one simulated camera's ``ptz_driver`` node, spun in a thread, and its
    simulator's true projection of world points at a time on ``conn`` (the demo's detector)."""
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)  # Ctrl-C: KeyboardInterrupt, then the finally
    node = PtzDriverNode(namespace=name, parameter_overrides=[Parameter(k, value=v) for k, v in parameters])
    executor = MultiThreadedExecutor(num_threads=threads)
    executor.add_node(node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    sim = node.driver.simulation  # type: ignore[attr-defined]
    conn.send("ready")
    try:
        while True:
            request = conn.recv()
            if request is None:
                break
            points, t = request
            conn.send(sim.project(points, t))
    except (EOFError, KeyboardInterrupt):
        pass
    finally:
        executor.shutdown(timeout_sec=2.0)
        thread.join(timeout=5.0)
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()


class DriverProcess:
    """A ``ptz_driver`` node in its own process (as a launch file starts it): the drivers' 50 Hz
    feedback does not wait for each other or for the tracker (in one Python process they starved
    it: feedback gaps of 0.3-0.8 s that ``ptz_stereo`` rightly refuses to interpolate across)."""

    def __init__(self, name: str, parameters: list[Parameter], threads: int) -> None:
        ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: no rclpy state inherited
        self._conn, child = ctx.Pipe()
        self._lock = threading.Lock()
        self.process = ctx.Process(target=_serve_driver, name=f"{name}.ptz_driver", daemon=True,
                                   args=(name, [(q.name, q.value) for q in parameters], threads, child))
        self.process.start()
        try:
            ready = self._conn.poll(60.0) and self._conn.recv() == "ready"
        except (EOFError, OSError):  # the process ended (its error is on stderr)
            ready = False
        if not ready:
            self.close()
            raise RuntimeError(f"the {name} driver process did not start (exit code {self.process.exitcode})")

    def project(self, points: np.ndarray, t: float) -> np.ndarray:
        """The simulator's true pixels of world ``points`` at time ``t``."""
        with self._lock:
            self._conn.send((points, t))
            return self._conn.recv()

    def close(self) -> None:
        try:
            self._conn.send(None)
        except (OSError, ValueError):
            pass
        self.process.join(timeout=5.0)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=2.0)


def _stamp(t: float) -> Time:
    sec = math.floor(t)
    return Time(sec=int(sec), nanosec=int(round((t - sec) * 1e9)) % 1_000_000_000)


def track(tracker: Tracker, drivers: dict[str, DriverProcess], rig: Any, args: argparse.Namespace) -> dict[str, Any]:
    rng = np.random.default_rng(args.seed)
    if not tracker.localize.wait_for_service(timeout_sec=30.0):
        raise RuntimeError("ptz_stereo's ~/localize did not come up")
    deadline = time.time() + 10.0
    while len(tracker.states) < 2 and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # some feedback history before the first (past) stamp
    # ptz_stereo runs in its own process: wait until it has both cameras' feedback, back to the
    # stamps the tracker asks for (an exposure ``latency`` ago)
    warm = time.time()
    while time.time() - warm < 20.0:
        req = Localize.Request()
        req.stamp = _stamp(time.time() - args.latency)
        req.left_u, req.left_v, req.right_u, req.right_v = 640.0, 360.0, 640.0, 360.0
        future = tracker.localize.call_async(req)
        done = threading.Event()
        future.add_done_callback(lambda _f: done.set())
        res = future.result() if done.wait(2.0) else None
        # ready once the answer is not about the feedback (the rays themselves may still fail here)
        if res is not None and not any(m in res.message for m in ("left camera:", "right camera:", "no feedback",
                                                                  "no common stamp")):
            break
        time.sleep(0.2)
    start = time.time()
    rows: list[dict[str, Any]] = []
    failures: list[str] = []
    last_print = 0.0
    distance = 17.0
    print("[demo] 3/3 tracking: time, range, error (m, % of range), reported std (m), ray distance, zooms", flush=True)
    while time.time() - start < args.duration:
        tick = time.time()
        t = tick - args.latency  # pixels of an image exposed this long ago (the feedback covers it)
        p = target_position(t - start, args.period)
        pixels = {}
        for n in CAMERAS:
            uv = drivers[n].project(p[None, :], t)[0]
            pixels[n] = uv + rng.normal(0.0, args.pixel_noise, 2)
        w, h = rig.cameras["left"].model.image_width, rig.cameras["left"].model.image_height
        visible = all(np.all(np.isfinite(pixels[n])) and 0 <= pixels[n][0] < w and 0 <= pixels[n][1] < h
                      for n in CAMERAS)
        for n in CAMERAS:
            if np.all(np.isfinite(pixels[n])):
                tracker.steer(n, pixels[n], distance)
        if visible:
            req = Localize.Request()
            req.stamp = _stamp(t)
            req.left_u, req.left_v = map(float, pixels["left"])
            req.right_u, req.right_v = map(float, pixels["right"])
            req.frame_id = args.world_frame
            req.pixel_sigma = args.pixel_noise
            future = tracker.localize.call_async(req)
            done = threading.Event()
            future.add_done_callback(lambda _f: done.set())
            if done.wait(2.0) and future.result() is not None:
                res = future.result()
                if res.success:
                    q = np.array([res.point.point.x, res.point.point.y, res.point.point.z])
                    rng_m = float(np.linalg.norm(p - rig.cameras["left"].mount_t))
                    err = float(np.linalg.norm(q - p))
                    distance = rng_m
                    cov = np.reshape(res.covariance, (3, 3))
                    std = float(math.sqrt(max(np.trace(cov), 0.0)))
                    try:  # the error normalized by the reported covariance (chi-square, 3 dof, if it is right)
                        nees = float((q - p) @ np.linalg.solve(cov, q - p))
                    except np.linalg.LinAlgError:
                        nees = float("nan")
                    zooms = [tracker.states[n].zoom_raw if n in tracker.states else float("nan") for n in CAMERAS]
                    rows.append({"t": t - start, "range_m": rng_m, "error_m": err, "error_pct": 100 * err / rng_m,
                                 "std_m": std, "nees": nees, "ray_distance_m": res.ray_distance, "zooms": zooms})
                    if tick - last_print >= 2.0:
                        last_print = tick
                        r = rows[-1]
                        print(f"  {r['t']:5.1f} s  {r['range_m']:5.1f} m  {r['error_m']:.3f} m {r['error_pct']:5.2f} %  "
                              f"std {r['std_m']:.3f} m  rays {1e3 * r['ray_distance_m']:.1f} mm  zoom "
                              f"{zooms[0]:5.0f} / {zooms[1]:5.0f}", flush=True)
                else:
                    failures.append(res.message)
            else:
                failures.append("no answer within 2 s")
        time.sleep(max(0.0, 0.2 - (time.time() - tick)))
    return {"rows": rows, "failures": failures}


def summarize(result: dict[str, Any], figures: dict[str, Any], args: argparse.Namespace) -> int:
    rows, failures = result["rows"], result["failures"]
    out = args.output.expanduser()
    out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"localizations": len(rows), "failures": len(failures),
                               "failure_examples": failures[:5], "calibration": figures}
    if rows:
        pct = np.array([r["error_pct"] for r in rows])
        rng_m = np.array([r["range_m"] for r in rows])
        nees = np.array([r["nees"] for r in rows])
        summary.update({"error_pct_median": float(np.median(pct)), "error_pct_p95": float(np.percentile(pct, 95)),
                        "error_pct_max": float(pct.max()), "range_m": [float(rng_m.min()), float(rng_m.max())],
                        "inside_95pct_ellipsoid": float(np.mean(nees < 7.815)),
                        "nees_median": float(np.nanmedian(nees))})
        bins = {}
        for lo, hi in ((5, 10), (10, 20), (20, 30)):
            sel = (rng_m >= lo) & (rng_m < hi)
            if sel.any():
                bins[f"{lo}-{hi} m"] = {"n": int(sel.sum()), "median_pct": float(np.median(pct[sel])),
                                         "max_pct": float(pct[sel].max())}
        summary["by_range"] = bins
    (out / "summary.json").write_text(json.dumps({**summary, "rows": rows}, indent=1))
    print(f"[demo] {len(rows)} localizations, {len(failures)} failed"
          + (f" (e.g. {failures[0]})" if failures else ""), flush=True)
    if rows:
        print(f"[demo] localization error: median {summary['error_pct_median']:.3f} %, 95th percentile "
              f"{summary['error_pct_p95']:.3f} %, max {summary['error_pct_max']:.3f} % of the range "
              f"({summary['range_m'][0]:.1f}-{summary['range_m'][1]:.1f} m; target 0.5 %)", flush=True)
        print(f"[demo] reported covariance: {100 * summary['inside_95pct_ellipsoid']:.0f} % of the errors inside its 95 % "
              f"ellipsoid, median e^T C^-1 e {summary['nees_median']:.2f} (2.37 if the covariance is right)", flush=True)
        for name, b in summary["by_range"].items():
            print(f"         {name}: {b['n']} points, median {b['median_pct']:.3f} %, max {b['max_pct']:.3f} %")
    print(f"[demo] wrote {out / 'summary.json'}", flush=True)
    if rows:
        met = summary["error_pct_median"] <= 0.5
        print(f"[demo] median {'within' if met else 'ABOVE'} the issue's 0.5 % of the range. From feedback alone the "
              "depth error grows as range x pointing error / baseline: "
              + ("the correction layers remove backlash, gear error and thermal drift; the simulated heads' "
                 "0.075 deg encoder steps while they move remain" if not args.no_corrections else
                 "without the correction layers (--no-corrections) the simulated heads' backlash (0.05 deg, "
                 "taken up both ways while tracking), gear error and encoder steps (0.075 deg) remain")
              + ", and grow with the range beyond 20 m with this 0.5 m baseline.", flush=True)
    attempts = len(rows) + len(failures)
    ok = len(rows) >= 5 and len(rows) >= 0.5 * attempts
    print(f"[demo] {'OK' if ok else 'FAILED'}: {len(rows)} of {attempts} localizations succeeded", flush=True)
    return 0 if ok else 1


# -- program -----------------------------------------------------------------------------------------
def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="ptz_stereo_demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rig", type=Path, default=None, help="rig YAML (default: the package's sim_rig.yaml)")
    p.add_argument("--calibration-dir", type=Path, default=Path("demo_output"),
                   help="where the calibration dataset, models, rig file and reports go (default demo_output)")
    p.add_argument("--recalibrate", action="store_true", help="calibrate again even if a calibration exists")
    p.add_argument("--truth", action="store_true", help="skip calibration: the simulator's true models and rig")
    p.add_argument("--no-corrections", action="store_true",
                   help="do not add the pointing map and temperature compensation to the models")
    p.add_argument("--zoom-steps", type=int, default=ProtocolOptions.zoom_steps,
                   help=f"zoom steps of each camera's protocol (default {ProtocolOptions.zoom_steps}, the protocol's)")
    p.add_argument("--views-per-step", type=int, default=ProtocolOptions.views_per_step,
                   help=f"views per zoom step (default {ProtocolOptions.views_per_step})")
    p.add_argument("--duration", type=float, default=40.0, help="seconds of tracking (default 40)")
    p.add_argument("--period", type=float, default=40.0, help="seconds per lap of the target (default 40)")
    p.add_argument("--pixel-noise", type=float, default=0.3, help="px std of the simulated detector")
    p.add_argument("--output", type=Path, default=Path("demo_output"), help="where summary.json goes")
    p.add_argument("--smoothing", type=float, default=0.2,
                   help="ptz_stereo state_smoothing_window (s): encoder steps averaged while the heads move (0 = off)")
    p.add_argument("--extrinsics-rate", type=float, default=25.0,
                   help="ptz_stereo ~/extrinsics rate (Hz; 0 = every sample)")
    p.add_argument("--threads", type=int, default=4, help="executor threads of each driver process")
    p.add_argument("--latency", type=float, default=0.25,
                   help="s between an image's exposure and the tracker's localize request (detector latency; "
                        "the feedback must have reached ptz_stereo by then)")
    p.add_argument("--verbose", action="store_true", help="show ptz_stereo's log")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    return args


def main(argv: Optional[list[str]] = None) -> int:
    """Entry point ``ptz_stereo_demo``."""
    args = parse_args(rclpy.utilities.remove_ros_args(sys.argv if argv is None else argv)[1:])
    rig_file = (args.rig or default_rig_path()).resolve()
    rig = load_rig(rig_file)
    missing = [n for n in CAMERAS if n not in rig.cameras]
    if missing:
        print(f"the rig {rig_file} has no camera(s) {missing}", file=sys.stderr)
        return 2
    args.world_frame = rig.world_frame
    print("[demo] the simulated dual-PTZ rig, end to end: calibrate, track a moving target, localize it", flush=True)
    calib = calibrate(args, rig_file)
    if not args.no_corrections:
        print("[demo]     correction layers (pointing sweeps over landmarks, thermal sweep) on the simulator...",
              flush=True)
        calib = add_corrections(calib, rig_file, args)
    models = {n: load_model(calib["models"][n].replace("file://", "")) if calib["models"][n].startswith("file://")
              else rig.cameras[n].model for n in CAMERAS}
    rig_model = load_rig_model(calib["rig"])
    print("[demo] 2/3 starting both drivers (calibrated models), ptz_stereo (calibrated rig) and the tracker",
          flush=True)
    drivers: dict[str, DriverProcess] = {}
    stereo_proc: Optional[subprocess.Popen] = None
    watcher = None
    tracker = None
    thread = None
    try:
        for k, n in enumerate(CAMERAS):
            params = driver_parameters(n, rig_file, calib["models"][n], rig.cameras[n], rig.world_frame, False, 0.5,
                                       args.seed + k)
            if n == "right":  # ptz_stereo places the right mount under the left one (rig calibration)
                params.append(Parameter("publish_mount_tf", value=False))
            drivers[n] = DriverProcess(n, params, args.threads)
        # every node in its own process, as a launch file would start them; this one runs the tracker
        stereo_proc = subprocess.Popen(
            [sys.executable, "-m", "ptz_calibration.nodes.ptz_stereo", "--ros-args",
             "-p", f"rig_file:={calib['rig']}", "-p", f"parent_frame:={rig.world_frame}",
             "-p", f"publish_rate:={args.extrinsics_rate}", "-p", "marker_rate:=1.0",
             "-p", f"state_smoothing_window:={args.smoothing}"],
            stdout=subprocess.DEVNULL if not args.verbose else None,
            stderr=subprocess.DEVNULL if not args.verbose else None)
        # Ctrl-C raises KeyboardInterrupt here (rclpy's handler would shut the context down under the
        # tracker's feet) and the finally below stops every process
        rclpy.init(args=sys.argv if argv is None else argv, signal_handler_options=SignalHandlerOptions.NO)
        watcher = SingleThreadedExecutor()
        tracker = Tracker(models)
        watcher.add_node(tracker)
        thread = threading.Thread(target=watcher.spin, daemon=True)
        thread.start()
        del rig_model
        result = track(tracker, drivers, rig, args)
        return summarize(result, calib["figures"], args)
    except (KeyboardInterrupt, ExternalShutdownException):
        return 0
    finally:
        if stereo_proc is not None:
            stereo_proc.send_signal(signal.SIGINT)
            try:
                stereo_proc.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                stereo_proc.kill()
        for driver in drivers.values():
            driver.close()
        if watcher is not None:
            watcher.shutdown(timeout_sec=2.0)
        if thread is not None:
            thread.join(timeout=5.0)
        if tracker is not None:
            tracker.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()


if __name__ == "__main__":
    sys.exit(main())
