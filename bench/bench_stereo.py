"""Benchmark (d): dual-PTZ stereo maths (issue 4), the rig of ``config/sim_rig.yaml``.

1. Extrinsics update: from a new PTZ state sample to the left -> right ``(R, t)``:
   ``StateHistory.add`` + ``common_stamp`` + ``at()`` for both cameras + ``rig.extrinsics``, per
   sample, over two interleaved 50 Hz feedback streams; p50 / p99 / max in microseconds (target:
   p99 <= 1 ms of computation). Baseline in the same run: the straightforward history, arrays of
   the last samples and ``np.interp`` per axis (then the same ``rig.extrinsics``).
2. Batch triangulation throughput (points per second) for N = 1e3, 1e4, 1e5 pixel pairs (points
   5-30 m away, 0.3 px noise): ours refined (midpoint + 2 Gauss-Newton steps) and midpoint only,
   both with covariances and reprojection errors, from the same R, t, K, D, against
   ``cv2.triangulatePoints`` (DLT) after the same ``cv2.undistortPoints``, on the same data in the
   same run, interleaved, best of several rounds (target: at least as fast as OpenCV). Accuracy
   against the true points is reported beside the speed; ``ours_refined_from_rig`` adds the rig
   models' evaluation at the two PTZ settings (``triangulate``).

Writes ``bench/results/stereo.json``; exit 1 if the update p99 misses its target or the default
path (refined) is slower than OpenCV at the largest N. The ratios at smaller N are reported (and
listed in the targets line), not judged: ours has a fixed cost of ~200 short numpy calls per
chunk (~0.3 ms), OpenCV three C++ calls, so at N = 1e3 the ratio (refined 1.05-1.25x on a loaded
2-core machine) swings by tens of percent between runs; below a few hundred points OpenCV wins.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import deque
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "ptz_calibration"))

from ptz_calibration.simulation import load_rig  # noqa: E402
from ptz_calibration.simulation.rig import true_stereo_rig  # noqa: E402
from ptz_calibration.stereo import (  # noqa: E402
    PtzSample, StateHistory, StateOutOfRange, common_stamp, triangulate, triangulate_pixels)
from ptz_calibration.stereo.projection import project, undistort  # noqa: E402


# ---------------------------------------------------------------------------------------------
# 1. extrinsics update


def feedback_streams(seconds: float, rate: float = 50.0, seed: int = 0) -> list[tuple[str, PtzSample]]:
    """Two cameras' samples (jittered 50 Hz, the right one 7 ms later), a smooth tour, by stamp."""
    rng = np.random.default_rng(seed)
    out = []
    for name, offset in (("left", 0.0), ("right", 0.007)):
        stamps = offset + np.arange(int(seconds * rate)) / rate + rng.uniform(-0.002, 0.002, int(seconds * rate))
        for t in stamps:
            out.append((name, PtzSample(float(t), 0.8 * np.sin(0.3 * t), 0.2 * np.sin(0.2 * t + 1.0),
                                        8000.0 + 7000.0 * np.sin(0.1 * t))))
    return sorted(out, key=lambda s: s[1].stamp)


def percentiles(us: list[float]) -> dict[str, float]:
    a = np.asarray(us)
    return {"p50_us": float(np.percentile(a, 50)), "p99_us": float(np.percentile(a, 99)),
            "max_us": float(a.max()), "mean_us": float(a.mean()), "samples": int(a.size)}


def bench_update(rig, seconds: float) -> dict:
    stream = feedback_streams(seconds)
    warm = min(100, len(stream) // 10)

    def ours() -> tuple[list[float], list[float], int]:
        hist = {"left": StateHistory(), "right": StateHistory()}
        total, extr, failed = [], [], 0
        for k, (name, sample) in enumerate(stream):
            t0 = time.perf_counter_ns()
            hist[name].add(sample)
            try:
                ts = common_stamp(hist["left"], hist["right"])
                ql, qr = hist["left"].at(ts), hist["right"].at(ts)
            except StateOutOfRange:
                failed += 1
                continue
            t1 = time.perf_counter_ns()
            rig.extrinsics(ql.setting, qr.setting)
            t2 = time.perf_counter_ns()
            if k >= warm:
                total.append((t2 - t0) / 1e3)
                extr.append((t2 - t1) / 1e3)
        return total, extr, failed

    def baseline() -> list[float]:
        hist = {"left": deque(maxlen=100), "right": deque(maxlen=100)}
        total = []
        for k, (name, sample) in enumerate(stream):
            t0 = time.perf_counter_ns()
            hist[name].append(sample)
            if not hist["left"] or not hist["right"]:
                continue
            ts = min(hist["left"][-1].stamp, hist["right"][-1].stamp)
            q = []
            for cam in ("left", "right"):
                a = np.array([(s.stamp, s.pan, s.tilt, s.zoom) for s in hist[cam]])
                q.append([float(np.interp(ts, a[:, 0], a[:, i])) for i in (1, 2, 3)])
            rig.extrinsics(q[0], q[1])
            t1 = time.perf_counter_ns()
            if k >= warm:
                total.append((t1 - t0) / 1e3)
        return total

    total, extr, failed = ours()
    base = baseline()
    return {"ours": percentiles(total), "ours_extrinsics_only": percentiles(extr),
            "ours_history_only_p50_us": float(np.percentile(np.subtract(total, extr), 50)),
            "failed_lookups": failed, "baseline_np_interp": percentiles(base), "target_p99_us": 1000.0}


# ---------------------------------------------------------------------------------------------
# 2. batch triangulation


def scene(rig, n: int, seed: int = 1):
    """Both cameras at one setting, n points 5-30 m away that both see, their noisy pixels."""
    ql, qr = np.array([0.02, 0.05, 6000.0]), np.array([-0.02, 0.05, 6000.0])
    R, t = rig.extrinsics(ql, qr)
    cams = (rig.left.camera_matrix(ql[2]), rig.left.distortion(ql[2]),
            rig.right.camera_matrix(qr[2]), rig.right.distortion(qr[2]))
    rng = np.random.default_rng(seed)
    half = 0.8 * np.array([640.0, 360.0]) / cams[0][0, 0]  # central 80 % of the image
    X = np.c_[rng.uniform(-half, half, (n, 2)), np.ones(n)] * rng.uniform(5.0, 30.0, n)[:, None]
    lp = project(X, *cams[:2], jacobian=False).pixels + rng.normal(0.0, 0.3, (n, 2))
    rp = project(X, *cams[2:], R, t, jacobian=False).pixels + rng.normal(0.0, 0.3, (n, 2))
    return ql, qr, R, t, cams, X, lp, rp


def opencv(R, t, cams, lp, rp) -> np.ndarray:
    """The baseline: cv2.undistortPoints of both (as ours), then cv2.triangulatePoints (DLT)."""
    xl = cv2.undistortPoints(lp.reshape(-1, 1, 2), cams[0], cams[1]).reshape(-1, 2)
    xr = cv2.undistortPoints(rp.reshape(-1, 1, 2), cams[2], cams[3]).reshape(-1, 2)
    h = cv2.triangulatePoints(np.eye(3, 4), np.hstack([R, t[:, None]]), xl.T, xr.T)
    return (h[:3] / h[3]).T


def best_times(fns: dict, repeat: int) -> dict[str, tuple[float, object]]:
    """Best time of each function over ``repeat`` rounds, the functions interleaved in every round
    (so that load from other processes hits them alike)."""
    best = {name: (np.inf, None) for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            out = fn()
            dt = time.perf_counter() - t0
            if dt < best[name][0]:
                best[name] = (dt, out)
    return best


def accuracy(points, truth, cams, R, t, lp, rp) -> dict[str, float]:
    rel = np.linalg.norm(points - truth, axis=1) / np.linalg.norm(truth, axis=1)
    el = np.linalg.norm(project(points, *cams[:2], jacobian=False).pixels - lp, axis=1)
    er = np.linalg.norm(project(points, *cams[2:], R, t, jacobian=False).pixels - rp, axis=1)
    return {"median_rel_error": float(np.median(rel)), "p95_rel_error": float(np.percentile(rel, 95)),
            "rms_reprojection_px": float(np.sqrt(np.mean(el**2 + er**2) / 2))}


def bench_triangulation(rig, sizes: list[int]) -> dict:
    out = {}
    for n in sizes:
        ql, qr, R, t, cams, X, lp, rp = scene(rig, n)
        repeat = 40 if n <= 10_000 else 7
        runs = {  # ours from the same R, t, K, D as OpenCV gets; and from the rig (+ the models' evaluation)
            "ours_refined": lambda: triangulate_pixels(R, t, *cams, lp, rp, 0.3).points,
            "ours_midpoint_only": lambda: triangulate_pixels(R, t, *cams, lp, rp, 0.3, iterations=0).points,
            "opencv_triangulatePoints": lambda: opencv(R, t, cams, lp, rp),
            "ours_refined_from_rig": lambda: triangulate(rig, ql, qr, lp, rp, 0.3).points,
            "undistort_both_only": lambda: (undistort(lp, *cams[:2]), undistort(rp, *cams[2:])),
        }
        row = {}
        for name, (seconds, pts) in best_times(runs, repeat).items():
            row[name] = {"seconds": seconds, "points_per_s": n / seconds}
            if name in ("ours_refined", "ours_midpoint_only", "opencv_triangulatePoints"):
                row[name].update(accuracy(pts, X, cams, R, t, lp, rp))
        b = triangulate(rig, ql, qr, lp, rp, 0.3)
        e = b.points - X
        row["ours_refined"]["mean_normalized_error"] = float(np.mean(  # e^T C^-1 e, 3 expected
            np.einsum("ni,ni->n", e, np.linalg.solve(b.covariances, e[..., None])[..., 0])))
        cv_rate = row["opencv_triangulatePoints"]["points_per_s"]
        row["ratio_refined_vs_opencv"] = row["ours_refined"]["points_per_s"] / cv_rate
        row["ratio_midpoint_vs_opencv"] = row["ours_midpoint_only"]["points_per_s"] / cv_rate
        out[str(n)] = row
    return out


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="feedback stream length for the update bench")
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--output", default=str(HERE / "results" / "stereo.json"))
    args = ap.parse_args(argv)
    rig = true_stereo_rig(load_rig())
    update = bench_update(rig, args.seconds)
    tri = bench_triangulation(rig, [int(s) for s in args.sizes.split(",")])
    result = {"extrinsics_update": update, "triangulation": tri,
              "opencv": cv2.__version__, "numpy": np.__version__}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=1) + "\n")

    o, e, b = update["ours"], update["ours_extrinsics_only"], update["baseline_np_interp"]
    print(f"extrinsics update per sample ({o['samples']} samples of two 50 Hz streams):")
    print(f"  {'':34s} {'p50 us':>9s} {'p99 us':>9s} {'max us':>9s}")
    print(f"  {'ours (history + extrinsics)':34s} {o['p50_us']:9.1f} {o['p99_us']:9.1f} {o['max_us']:9.1f}"
          f"   target p99 <= 1000")
    print(f"  {'  of which rig.extrinsics':34s} {e['p50_us']:9.1f} {e['p99_us']:9.1f} {e['max_us']:9.1f}")
    print(f"  {'baseline np.interp history':34s} {b['p50_us']:9.1f} {b['p99_us']:9.1f} {b['max_us']:9.1f}")
    print("batch triangulation (points per second; accuracy: median relative error, RMS reprojection):")
    names = ["ours_refined", "ours_midpoint_only", "opencv_triangulatePoints"]
    print(f"  {'N':>7s} " + " ".join(f"{n:>28s}" for n in ("ours refined", "ours midpoint only",
                                                            "cv2 undistort+triangulate")))
    for n, row in tri.items():
        cells = [f"{row[k]['points_per_s']:10.3g}/s {row[k]['median_rel_error']:7.3%} "
                 f"{row[k]['rms_reprojection_px']:5.3f}" for k in names]
        print(f"  {n:>7s} " + " ".join(f"{c:>28s}" for c in cells))
    for key, label in (("ratio_refined_vs_opencv", "refined"), ("ratio_midpoint_vs_opencv", "midpoint only")):
        print(f"  speed {label} / OpenCV: " + ", ".join(f"N={n}: {r[key]:.2f}x" for n, r in tri.items()))
    print("  (ours also returns covariances, reprojection errors, ray distances and angles, validity)")
    update_ok = o["p99_us"] <= 1000.0
    at_least = {label: [n for n, r in tri.items() if r[key] >= 1.0]
                for key, label in (("ratio_refined_vs_opencv", "refined"), ("ratio_midpoint_vs_opencv", "midpoint"))}
    largest = max(tri, key=int)
    throughput_ok = tri[largest]["ratio_refined_vs_opencv"] >= 1.0
    print(f"targets: extrinsics update p99 <= 1 ms {'met' if update_ok else 'MISSED'}; at least as fast as OpenCV: "
          + "; ".join(f"{label} at N = {', '.join(ns) or 'none'}" for label, ns in at_least.items()))
    result["targets"] = {"update_p99_met": update_ok, "at_least_opencv_at_N": at_least}
    Path(args.output).write_text(json.dumps(result, indent=1) + "\n")
    return 0 if update_ok and throughput_ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
