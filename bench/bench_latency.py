"""Benchmark (b): latency from a PTZ feedback sample to TF and CameraInfo at a subscriber.

Three processes over DDS on loopback, for 1, 4 and 16 cameras at 100 Hz each:

* ``source``  publishes ``PtzState`` samples stamped with their sample time;
* ``middle``  either the baseline, a bare rclpy relay that republishes each sample unchanged,
              or ``ptz_geometry`` nodes (one per camera, one process) turning each sample into
              the TF chain on ``/tf`` and ``CameraInfo``;
* ``sink``    receives the outputs and records, per sample, receive time minus sample time
              (for geometry: when both its TF and its CameraInfo have arrived).

Both variants are measured in the same run; the ratio geometry / relay at p50 and p99 is the
figure of merit (target <= 1.5), and no sample may be lost.
Results: ``bench/results/latency.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXECUTOR = os.environ.get("BENCH_EXECUTOR", "single")  # single | events (rclpy.experimental, hangs here)
MODEL_FILE = HERE.parent / "ptz_calibration" / "config" / "sim_left_model.yaml"


def _init():
    import rclpy

    rclpy.init()
    return rclpy


def run_source(cameras: int, rate: float, duration: float, warmup: float) -> None:
    rclpy = _init()
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from ptz_calibration_msgs.msg import PtzState

    node = rclpy.create_node("bench_source")
    qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    pubs = [node.create_publisher(PtzState, f"/bench/cam{i}/ptz_state", qos) for i in range(cameras)]
    time.sleep(warmup)  # discovery
    period = 1.0 / rate
    start = time.monotonic()
    n = int(duration * rate)
    for k in range(n):
        target = start + k * period
        delay = target - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        for i, pub in enumerate(pubs):
            msg = PtzState()
            now = time.time()
            msg.header.stamp.sec = int(now)
            msg.header.stamp.nanosec = int((now - int(now)) * 1e9)
            msg.header.frame_id = f"cam{i}_mount"
            msg.camera_name = f"cam{i}"
            msg.pan = 0.5 * ((k % 200) / 100.0 - 1.0)
            msg.tilt = 0.2
            msg.zoom_raw = float((k * 37) % 16000)
            msg.zoom_magnification = float("nan")
            msg.temperature = float("nan")
            msg.pan_velocity = msg.tilt_velocity = float("nan")
            pub.publish(msg)
    time.sleep(1.0)
    node.destroy_node()
    rclpy.shutdown()


def run_relay(cameras: int) -> None:
    rclpy = _init()
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from ptz_calibration_msgs.msg import PtzState

    node = rclpy.create_node("bench_relay")
    qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    for i in range(cameras):
        pub = node.create_publisher(PtzState, f"/bench/cam{i}/relayed", qos)
        node.create_subscription(PtzState, f"/bench/cam{i}/ptz_state", pub.publish, qos)
    _spin_until_killed(rclpy, [node])


def run_geometry(cameras: int) -> None:
    """One ``ptz_geometry`` node serving every camera (as the relay is one node with N topics)."""
    rclpy = _init()
    from rclpy.parameter import Parameter

    from ptz_calibration.nodes.ptz_geometry import PtzGeometryNode

    names = [f"cam{i}" for i in range(cameras)]
    overrides = [Parameter("cameras", value=names)]
    for name in names:
        overrides += [
            Parameter(f"{name}.calibration_url", value=f"file://{MODEL_FILE}"),
            Parameter(f"{name}.state_topic", value=f"/bench/{name}/ptz_state"),
            Parameter(f"{name}.camera_info_topic", value=f"/bench/{name}/camera_info"),
            Parameter(f"{name}.stale_timeout", value=5.0),
        ]
    node = PtzGeometryNode(node_name="bench_geometry", namespace="/bench", parameter_overrides=overrides)
    _spin_until_killed(rclpy, [node])


def make_executor():
    """The executor of the middle and sink processes (the same for relay and geometry)."""
    if EXECUTOR == "events":
        from rclpy.experimental import EventsExecutor

        return EventsExecutor()
    from rclpy.executors import SingleThreadedExecutor

    return SingleThreadedExecutor()


def _spin_until_killed(rclpy, nodes) -> None:
    executor = make_executor()
    for node in nodes:
        executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, Exception):
        pass


def run_sink(mode: str, cameras: int, expected: int, out: str, timeout: float) -> None:
    rclpy = _init()
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from ptz_calibration_msgs.msg import PtzState

    node = rclpy.create_node("bench_sink")
    qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    arrivals: dict[tuple[int, int], list[float]] = {}
    latencies: list[float] = []
    duplicates = [0]
    need = 1 if mode == "relay" else 2

    def record(stamp, key_cam: int) -> None:
        now = time.time()
        t = stamp.sec + stamp.nanosec * 1e-9
        key = (key_cam, stamp.sec * 1_000_000_000 + stamp.nanosec)
        got = arrivals.setdefault(key, [])
        got.append(now)
        if len(got) == need:
            latencies.append(max(got) - t)
        elif len(got) > need:
            duplicates[0] += 1

    if mode == "relay":
        for i in range(cameras):
            node.create_subscription(PtzState, f"/bench/cam{i}/relayed", lambda m, i=i: record(m.header.stamp, i), qos)
    else:
        from sensor_msgs.msg import CameraInfo
        from tf2_msgs.msg import TFMessage

        names = {f"cam{i}_mount": i for i in range(cameras)}

        def on_tf(msg) -> None:
            for tf in msg.transforms:
                cam = names.get(tf.header.frame_id)
                if cam is not None:  # the first link of the chain: one per sample and camera
                    record(tf.header.stamp, cam)

        node.create_subscription(TFMessage, "/tf", on_tf, QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
        for i in range(cameras):
            node.create_subscription(CameraInfo, f"/bench/cam{i}/camera_info",
                                     lambda m, i=i: record(m.header.stamp, i), qos)
    executor = make_executor()
    executor.add_node(node)
    deadline = time.monotonic() + timeout

    class Done(Exception):
        pass

    def check() -> None:
        if len(latencies) >= expected or time.monotonic() > deadline:
            raise Done

    node.create_timer(0.1, check)
    try:
        executor.spin()  # one long spin: the sink must not be the bottleneck
    except Done:
        pass
    Path(out).write_text(json.dumps({"latencies": list(latencies), "duplicates": duplicates[0],
                                     "keys": len(arrivals)}))
    node.destroy_node()
    rclpy.shutdown()


def percentile(values, q):
    import numpy as np

    return float(np.percentile(values, q)) if values else float("nan")


def measure(mode: str, cameras: int, rate: float, duration: float) -> dict:
    """Run source, middle and sink processes once; return latency statistics (ms)."""
    tmp = HERE / "results" / f".lat_{mode}_{cameras}.json"
    tmp.parent.mkdir(exist_ok=True)
    expected = int(duration * rate) * cameras
    me = [sys.executable, str(Path(__file__).resolve())]
    middle = subprocess.Popen(me + ["--role", mode, "--cameras", str(cameras)])
    sink = subprocess.Popen(me + ["--role", "sink", "--mode", mode, "--cameras", str(cameras),
                                  "--expected", str(expected), "--out", str(tmp),
                                  "--timeout", str(duration + 20)])
    time.sleep(3.0)  # let the middle process load and discover
    source = subprocess.Popen(me + ["--role", "source", "--cameras", str(cameras), "--rate", str(rate),
                                    "--duration", str(duration)])
    try:
        source.wait(timeout=duration + 60)
        sink.wait(timeout=duration + 60)
    finally:
        for proc in (source, sink, middle):  # never leave a process spinning on the domain
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    data = json.loads(tmp.read_text())
    lat = data["latencies"]
    print(f"   [{mode}, {cameras} cameras] sink: {len(lat)} complete samples, {data['keys']} distinct stamps, "
          f"{data['duplicates']} duplicate deliveries", flush=True)
    tmp.unlink()
    return {
        "samples_expected": expected,
        "samples_received": len(lat),
        "lost": expected - len(lat),
        "p50_ms": percentile(lat, 50) * 1e3,
        "p99_ms": percentile(lat, 99) * 1e3,
        "max_ms": (max(lat) * 1e3) if lat else float("nan"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--role", choices=["driver", "source", "relay", "geometry", "sink"], default="driver")
    parser.add_argument("--mode", choices=["relay", "geometry"], default="relay")
    parser.add_argument("--cameras", type=int, default=1)
    parser.add_argument("--camera-counts", default="1,4,16")
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--expected", type=int, default=0)
    parser.add_argument("--out", default="")
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    if args.role == "source":
        run_source(args.cameras, args.rate, args.duration, warmup=2.0)
    elif args.role == "relay":
        run_relay(args.cameras)
    elif args.role == "geometry":
        run_geometry(args.cameras)
    elif args.role == "sink":
        run_sink(args.mode, args.cameras, args.expected, args.out, args.timeout)
    else:
        if os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE") != "LOCALHOST":
            print("refusing to run: set ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST (source scripts/env.sh)")
            return 2
        results = {}
        for n in (int(c) for c in args.camera_counts.split(",")):
            row = {mode: measure(mode, n, args.rate, args.duration) for mode in ("relay", "geometry")}
            row["ratio_p50"] = row["geometry"]["p50_ms"] / row["relay"]["p50_ms"]
            row["ratio_p99"] = row["geometry"]["p99_ms"] / row["relay"]["p99_ms"]
            results[str(n)] = row
            print(f"{n:>2} cameras x {args.rate:.0f} Hz | relay p50 {row['relay']['p50_ms']:.3f} ms "
                  f"p99 {row['relay']['p99_ms']:.3f} ms lost {row['relay']['lost']} | geometry p50 "
                  f"{row['geometry']['p50_ms']:.3f} ms p99 {row['geometry']['p99_ms']:.3f} ms lost "
                  f"{row['geometry']['lost']} | ratio p50 {row['ratio_p50']:.2f} p99 {row['ratio_p99']:.2f}",
                  flush=True)
        (HERE / "results").mkdir(exist_ok=True)
        (HERE / "results" / "latency.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
