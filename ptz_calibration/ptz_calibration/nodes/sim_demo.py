"""``ptz_sim_demo``: the simulated rig, end to end, in one process (what ``make demo`` runs).

``ros2 launch ptz_calibration dual_ptz_sim.launch.py`` starts the same driver nodes as separate
processes; ``launch`` is not installable everywhere, so this composed executable runs them in
one process, plus a *director* node that

* drives every camera through a pan/tilt/zoom tour with the ``~/move_to`` action,
* listens to what any ROS user would see: ``/tf``, ``/tf_static``, ``~/camera_info``,
  ``~/ptz_state`` and ``~/image_raw``, over DDS,
* prints a live table: the reported pan/tilt/zoom, the focal length in the received CameraInfo,
  the optical centre from the received TF chain, and how far the TF optical axis is from the
  simulator's ground truth (backlash, periodic gear error and thermal drift are real in the
  simulator, so this is not zero),
* and at the end writes the last image of each camera to ``--output`` and a summary; it exits
  non-zero if a camera did not deliver TF and CameraInfo at its feedback rate.
"""

from __future__ import annotations

import argparse
import math
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import rclpy
from ptz_calibration_msgs.action import MoveTo
from ptz_calibration_msgs.msg import PtzState
from rclpy.action import ActionClient
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image
from tf2_msgs.msg import TFMessage

from ..model import matrix_to_rpy, rotation_angle
from ..simulation import default_rig_path, load_rig
from . import conversions as conv
from .ptz_driver import PtzDriverNode

#: (pan deg, tilt deg, zoom raw) waypoints of the tour, visited in a loop.
TOUR: list[tuple[float, float, float]] = [
    (0.0, 0.0, 0.0),
    (35.0, 8.0, 4000.0),
    (-40.0, -5.0, 9000.0),
    (10.0, 20.0, 16384.0),
    (60.0, 0.0, 2000.0),
    (-60.0, 10.0, 12000.0),
    (0.0, 0.0, 3000.0),  # end facing the calibration targets, for the saved images
]


#: Compare every n-th received TF chain with the simulator's truth (keeps the director light).
TRUTH_EVERY = 5


@dataclass
class CameraView:
    """What the director received for one camera."""

    name: str
    state: Optional[PtzState] = None
    info: Optional[CameraInfo] = None
    image: Optional[Image] = None
    chain: dict[str, tuple[np.ndarray, np.ndarray, float]] = field(default_factory=dict)  # child -> (R, t, stamp)
    first: float = math.nan  # monotonic time of the first and last TF chain received
    last: float = math.nan
    tf_count: int = 0
    info_count: int = 0
    state_count: int = 0
    pointing_errors: list[float] = field(default_factory=list)
    fx_seen: list[float] = field(default_factory=list)


class Director(Node):
    """Commands the tour and watches the topics of every camera."""

    def __init__(self, cameras: list[str], drivers: dict[str, PtzDriverNode], world_frame: str) -> None:
        super().__init__("ptz_demo_director")
        self.views = {name: CameraView(name) for name in cameras}
        self.drivers = drivers
        self.world_frame = world_frame
        self.static: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._lock = threading.Lock()
        self._move_clients = {name: ActionClient(self, MoveTo, f"/{name}/ptz_driver/move_to") for name in cameras}
        self._child_to_camera: dict[str, str] = {}
        for name, node in drivers.items():
            for frame in (node.camera.frames.pan_link, node.camera.frames.tilt_link, node.camera.frames.optical):
                self._child_to_camera[frame] = name
        self.create_subscription(TFMessage, "/tf", self._on_tf, QoSProfile(depth=100))
        self.create_subscription(TFMessage, "/tf_static", self._on_tf_static, QoSProfile(
            depth=100, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE))
        for name in cameras:
            ns = f"/{name}/ptz_driver"
            self.create_subscription(CameraInfo, f"{ns}/camera_info", lambda m, n=name: self._on_info(n, m), 10)
            self.create_subscription(PtzState, f"{ns}/ptz_state", lambda m, n=name: self._on_state(n, m), 10)
            self.create_subscription(Image, f"{ns}/image_raw", lambda m, n=name: self._on_image(n, m),
                                     qos_profile_sensor_data)

    # -- subscriptions ---------------------------------------------------------------------------

    def _on_tf(self, msg: TFMessage) -> None:
        with self._lock:
            for tf in msg.transforms:
                name = self._child_to_camera.get(tf.child_frame_id)
                if name is None:
                    continue
                view = self.views[name]
                r, t = conv.transform_to_matrix(tf)
                view.chain[tf.child_frame_id] = (r, t, conv.from_time(tf.header.stamp))
                if tf.child_frame_id == self.drivers[name].camera.frames.optical:
                    view.tf_count += 1
                    view.last = time.monotonic()
                    if view.tf_count == 1:
                        view.first = view.last
                    if view.tf_count % TRUTH_EVERY == 0:
                        self._check_truth(name)

    def _on_tf_static(self, msg: TFMessage) -> None:
        with self._lock:
            for tf in msg.transforms:
                self.static[tf.child_frame_id] = conv.transform_to_matrix(tf)

    def _on_info(self, name: str, msg: CameraInfo) -> None:
        with self._lock:
            view = self.views[name]
            view.info = msg
            view.info_count += 1
            view.fx_seen.append(msg.k[0])

    def _on_state(self, name: str, msg: PtzState) -> None:
        with self._lock:
            self.views[name].state = msg
            self.views[name].state_count += 1

    def _on_image(self, name: str, msg: Image) -> None:
        with self._lock:
            self.views[name].image = msg

    # -- geometry from what was received -----------------------------------------------------------

    def optical_pose_in_mount(self, name: str) -> Optional[tuple[np.ndarray, np.ndarray, float]]:
        """Compose the received moving TF chain mount -> optical (R, t, stamp), if complete and coherent."""
        node = self.drivers[name]
        frames = node.camera.frames
        order = frames.moving_order(node.geometry.model.kinematics.order)
        view = self.views[name]
        r, t, stamps = np.eye(3), np.zeros(3), []
        for child in order[1:]:
            if child not in view.chain:
                return None
            rl, tl, stamp = view.chain[child]
            r, t = r @ rl, r @ tl + t
            stamps.append(stamp)
        if max(stamps) - min(stamps) > 1e-9:
            return None
        return r, t, stamps[0]

    def _check_truth(self, name: str) -> None:
        """Angle between the TF optical axis and the simulator's true optical axis at the TF stamp."""
        camera = getattr(self.drivers[name].driver, "simulation", None)
        mount = self.static.get(self.drivers[name].camera.frames.mount)
        pose = self.optical_pose_in_mount(name)
        if camera is None or mount is None or pose is None:
            return
        r, _, stamp = pose
        r_world = mount[0] @ r
        true_r, _ = camera.true_pose_world(stamp)
        self.views[name].pointing_errors.append(float(np.degrees(rotation_angle(true_r.T @ r_world))))

    # -- the tour ------------------------------------------------------------------------------------

    def move_all(self, waypoint: tuple[float, float, float], timeout: float) -> list[str]:
        """Send one ~/move_to goal per camera and wait for the results; returns failure messages."""
        pan, tilt, zoom = waypoint
        futures = {}
        for name, client in self._move_clients.items():
            if not client.wait_for_server(timeout_sec=5.0):
                return [f"{name}: ~/move_to server not available"]
            goal = MoveTo.Goal(pan=math.radians(pan), tilt=math.radians(tilt), zoom=float(zoom))
            futures[name] = client.send_goal_async(goal)
        failures, deadline = [], time.monotonic() + timeout
        for name, future in futures.items():
            while not future.done() and time.monotonic() < deadline:
                time.sleep(0.02)
            handle = future.result() if future.done() else None
            if handle is None or not handle.accepted:
                failures.append(f"{name}: goal not accepted")
                continue
            result_future = handle.get_result_async()
            while not result_future.done() and time.monotonic() < deadline:
                time.sleep(0.02)
            if not result_future.done():
                failures.append(f"{name}: move did not finish in {timeout:.0f} s")
            elif not result_future.result().result.success:
                failures.append(f"{name}: {result_future.result().result.message}")
        return failures

    def table_row(self, name: str) -> str:
        with self._lock:
            view = self.views[name]
            state, info = view.state, view.info
            pose = self.optical_pose_in_mount(name)
            err = view.pointing_errors[-1] if view.pointing_errors else math.nan
        if state is None or info is None or pose is None:
            return f"  {name:<6} waiting for ptz_state / camera_info / tf ..."
        centre_mm = pose[1] * 1000.0
        return (f"  {name:<6} pan {math.degrees(state.pan):8.3f} deg  tilt {math.degrees(state.tilt):7.3f} deg  "
                f"zoom {state.zoom_raw:7.0f} ({state.zoom_magnification:5.2f}x)  fx {info.k[0]:8.1f} px  "
                f"optical centre [{centre_mm[0]:6.1f} {centre_mm[1]:6.1f} {centre_mm[2]:6.1f}] mm  "
                f"TF vs truth {err:6.3f} deg")


def driver_parameters(name: str, rig_file: Path, calibration: str, spec, world_frame: str,
                      publish_images: bool, image_rate: float, seed: int) -> list[Parameter]:
    """Parameters of one simulated camera's driver node, mounted where the rig says."""
    return [
        Parameter("camera_name", value=name),
        Parameter("backend", value="sim"),
        Parameter("sim.rig_file", value=str(rig_file)),
        Parameter("sim.seed", value=seed),
        Parameter("calibration_url", value=calibration),
        Parameter("parent_frame", value=world_frame),
        Parameter("mount.xyz", value=[float(v) for v in spec.mount_t]),
        Parameter("mount.rpy", value=list(matrix_to_rpy(spec.mount_R))),
        Parameter("publish_images", value=publish_images),
        Parameter("image_rate", value=image_rate),
    ]


def _save_image(msg: Image, path: Path) -> bool:
    try:
        import cv2
    except ImportError:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    return bool(cv2.imwrite(str(path), conv.image_to_array(msg)))


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ptz_sim_demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rig", type=Path, default=None, help="rig YAML (default: the package's sim_rig.yaml)")
    parser.add_argument("--cameras", default="", help="comma-separated cameras of the rig (default: all)")
    parser.add_argument("--calibration", default="package://ptz_calibration/config/sim_{name}_model.yaml",
                        help="calibration_url pattern; {name} is replaced by the camera name")
    parser.add_argument("--loops", type=int, default=1, help="tours to run (0 = until Ctrl-C)")
    parser.add_argument("--images", action=argparse.BooleanOptionalAction, default=True,
                        help="render and publish ~/image_raw")
    parser.add_argument("--image-rate", type=float, default=0.5,
                        help="image rate per camera (Hz); rendering shares this process with the drivers")
    parser.add_argument("--output", type=Path, default=Path("demo_output"), help="where to write the last images")
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args(argv)


def main(argv: Optional[list[str]] = None) -> int:
    """Entry point ``ptz_sim_demo``."""
    args_in = rclpy.utilities.remove_ros_args(sys.argv if argv is None else argv)[1:]
    args = parse_args(args_in)
    rig_file = (args.rig or default_rig_path()).resolve()
    rig = load_rig(rig_file)
    cameras = [c for c in args.cameras.split(",") if c] or list(rig.cameras)
    unknown = [c for c in cameras if c not in rig.cameras]
    if unknown:
        print(f"unknown camera(s) {unknown}; the rig {rig_file} has {list(rig.cameras)}", file=sys.stderr)
        return 2

    rclpy.init(args=sys.argv if argv is None else argv)
    executor = MultiThreadedExecutor(num_threads=4)  # the drivers (their ~/move_to goals block a thread)
    watcher = SingleThreadedExecutor()  # the director, on its own thread
    drivers: dict[str, PtzDriverNode] = {}
    director = None
    spinners: list[threading.Thread] = []
    try:
        for name in cameras:
            calibration = args.calibration.format(name=name)
            drivers[name] = PtzDriverNode(namespace=name, parameter_overrides=driver_parameters(
                name, rig_file, calibration, rig.cameras[name], rig.world_frame, args.images, args.image_rate,
                args.seed + len(drivers)))
            executor.add_node(drivers[name])
        director = Director(cameras, drivers, rig.world_frame)
        watcher.add_node(director)
        for spin in (executor.spin, watcher.spin):
            spinners.append(threading.Thread(target=spin, daemon=True))
            spinners[-1].start()
        return run_tour(director, drivers, args)
    except (KeyboardInterrupt, ExternalShutdownException):
        return 0
    finally:
        executor.shutdown(timeout_sec=2.0)
        watcher.shutdown(timeout_sec=2.0)
        for thread in spinners:
            thread.join(timeout=5.0)
        for node in list(drivers.values()) + ([director] if director else []):
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()


def run_tour(director: Director, drivers: dict[str, PtzDriverNode], args: argparse.Namespace) -> int:
    print(f"[demo] {len(drivers)} simulated PTZ camera(s): {', '.join(drivers)}; TF tree "
          f"{director.world_frame} -> <cam>_mount -> <cam>_pan_link -> <cam>_tilt_link -> <cam>_optical_frame",
          flush=True)
    start = time.monotonic()
    loop = 0
    failures: list[str] = []
    while args.loops == 0 or loop < args.loops:
        for waypoint in TOUR:
            print(f"[demo] t={time.monotonic() - start:5.1f} s  move_to pan {waypoint[0]:+.0f} deg, "
                  f"tilt {waypoint[1]:+.0f} deg, zoom {waypoint[2]:.0f}", flush=True)
            done = threading.Event()
            result: list[list[str]] = []
            threading.Thread(target=lambda: (result.append(director.move_all(waypoint, 30.0)), done.set()),
                             daemon=True).start()
            while not done.wait(0.5):
                for name in drivers:
                    print(director.table_row(name), flush=True)
            for name in drivers:
                print(director.table_row(name), flush=True)
            failures += result[0] if result else ["move_all crashed"]
        loop += 1
    if args.images:  # keep a still image of the final pose, not one blurred by the last move
        settled = time.time()
        deadline = time.monotonic() + 2.0 / args.image_rate + 1.0
        while time.monotonic() < deadline and not all(
                v.image is not None and conv.from_time(v.image.header.stamp) > settled for v in director.views.values()):
            time.sleep(0.05)
    return summarize(director, drivers, args, time.monotonic() - start, failures)


def summarize(director: Director, drivers: dict[str, PtzDriverNode], args: argparse.Namespace,
              elapsed: float, failures: list[str]) -> int:
    ok = not failures
    print(f"\n[demo] summary after {elapsed:.1f} s")
    for failure in failures:
        print(f"  move failed: {failure}")
    for name, node in drivers.items():
        view = director.views[name]
        errors = np.asarray(view.pointing_errors)
        rate = node.get_parameter("state_rate").value
        window = max(view.last - view.first, 1e-9) if view.tf_count > 1 else math.inf
        tf_rate, info_rate = (view.tf_count - 1) / window, (view.info_count - 1) / window
        fx = np.asarray(view.fx_seen) if view.fx_seen else np.array([math.nan])
        print(f"  {name}: TF {view.tf_count} chains ({tf_rate:.1f} Hz), CameraInfo {view.info_count} "
              f"({info_rate:.1f} Hz), PtzState {view.state_count}; feedback rate set to {rate:g} Hz; "
              f"fx from {fx.min():.0f} to {fx.max():.0f} px")
        if errors.size:
            print(f"  {name}: TF optical axis vs simulator truth: median {np.median(errors):.4f} deg, "
                  f"max {errors.max():.4f} deg (backlash, gear error, thermal drift; the calibration issues "
                  "correct these)")
        if view.image is not None:
            path = args.output / f"{name}.png"
            if _save_image(view.image, path):
                print(f"  {name}: last image written to {path}")
        # Every feedback sample must become a TF chain and a CameraInfo (a few may be in flight).
        missing = view.state_count - min(view.tf_count, view.info_count)
        if view.state_count == 0 or missing > max(3, 0.02 * view.state_count):
            print(f"  {name}: FAILED: {missing} of {view.state_count} feedback samples gave no TF/CameraInfo")
            ok = False
        if tf_rate < 0.8 * rate:
            print(f"  {name}: note: feedback ran at {tf_rate:.0f} of {rate:g} Hz; in this one-process demo the "
                  "drivers, the image renderer and the director share one Python interpreter (the launch "
                  "files run one process per camera)")
    print("[demo] OK" if ok else "[demo] FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
