"""Benchmark (a): PTZ model evaluation time per call and per batch.

Baseline, measured in the same run: the same pose computed the straightforward way with one
``scipy.spatial.transform.Rotation`` per joint and per sample (what a first implementation
would write). Prints a table and writes JSON to ``bench/results/model.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "ptz_calibration"))
sys.path.insert(0, str(HERE.parent / "ptz_calibration" / "test"))

from model_fixtures import general_model  # noqa: E402


def scipy_pose(model, pan: float, tilt: float, zoom: float):
    """Baseline: per-sample scipy rotations about each axis line, then the zoom offset."""
    kin = model.kinematics
    r1 = Rotation.from_rotvec(kin.pan_axis * pan)
    r2 = Rotation.from_rotvec(kin.tilt_axis * tilt)
    m1, m2 = kin.pan_radius, kin.tilt_radius
    t1 = r1.apply(m1) - m1
    t2 = r2.apply(m2) - m2
    r = r1 * r2
    t = r1.apply(t2) + t1
    d = np.array([0.0, 0.0, kin.zoom_translation(zoom)])
    return r.as_matrix(), r.apply(d) + t


def per_call(fn, n: int) -> float:
    """Median seconds per call over repeats of n calls."""
    rng = np.random.default_rng(0)
    args = list(zip(rng.uniform(-3, 3, n), rng.uniform(-0.5, 1.5, n), rng.uniform(0, 16384, n)))
    times = []
    for _ in range(5):
        start = time.perf_counter()
        for a in args:
            fn(*a)
        times.append((time.perf_counter() - start) / n)
    return float(np.median(times))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=100_000)
    args = parser.parse_args()
    model = general_model()

    def ours(p, t, z):
        model.pose(p, t, z)
        model.camera_matrix(z)
        model.distortion(z)

    def ours_pose(p, t, z):
        model.pose(p, t, z)

    def baseline(p, t, z):
        scipy_pose(model, p, t, z)

    # Check the baseline computes the same thing before timing it.
    for p, t, z in [(0.3, -0.2, 5000.0), (2.0, 1.0, 100.0)]:
        for a, b in zip(model.pose(p, t, z), scipy_pose(model, p, t, z)):
            assert np.allclose(a, b, atol=1e-12), "baseline disagrees with the model"

    results = {
        "pose_per_call_us": per_call(ours_pose, args.calls) * 1e6,
        "pose_K_D_per_call_us": per_call(ours, args.calls) * 1e6,
        "baseline_scipy_pose_per_call_us": per_call(baseline, args.calls) * 1e6,
    }
    rng = np.random.default_rng(1)
    pans, tilts, zooms = rng.uniform(-3, 3, args.batch), rng.uniform(-0.5, 1.5, args.batch), rng.uniform(0, 16384, args.batch)
    best = np.inf
    for _ in range(3):
        start = time.perf_counter()
        model.pose(pans, tilts, zooms)
        model.camera_matrix(zooms)
        model.distortion(zooms)
        best = min(best, time.perf_counter() - start)
    results["batch_size"] = args.batch
    results["batch_pose_K_D_per_sample_us"] = best / args.batch * 1e6
    start = time.perf_counter()
    Rotation.from_rotvec(np.outer(pans, model.kinematics.pan_axis)) * Rotation.from_rotvec(
        np.outer(tilts, model.kinematics.tilt_axis))
    results["baseline_scipy_batch_rotation_only_per_sample_us"] = (time.perf_counter() - start) / args.batch * 1e6
    results["ratio_per_call_vs_baseline"] = results["pose_per_call_us"] / results["baseline_scipy_pose_per_call_us"]

    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "model.json").write_text(json.dumps(results, indent=2))
    width = max(len(k) for k in results)
    for key, value in results.items():
        print(f"{key:<{width}}  {value:12.3f}" if isinstance(value, float) else f"{key:<{width}}  {value:12d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
