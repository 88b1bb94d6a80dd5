"""The ``ptz_calibrator`` node: calibrates one PTZ camera through its ``ptz_driver`` over ROS.

Serves the ``~/calibrate`` action (``ptz_calibration_msgs/action/Calibrate``):

1. **capture** (unless the goal names a ``dataset_dir``): for each view of the plan (the
   simulator's capture protocol for ``camera_name`` of ``rig_file``, or the views of
   ``protocol_file``): the driver's ``~/move_to`` (approaching from below by ``approach`` rad,
   as the protocol does, so the backlash is taken up the same way every time), ``settle``
   seconds, the driver's ``~/capture``; the image is saved as PNG and the reported state as a
   :class:`Capture`; then the manifest (``<output_dir>/dataset/manifest.yaml``).
2. **calibrate**: the calibration pipeline in a child process ("spawn": the node's threads are
   never forked), its progress forwarded as action feedback; results in ``output_dir``.
3. **install** (goal ``install``): the model to ``install_file`` (atomic, previous kept as
   ``.bak``), the driver's ``calibration_url`` set to it (its ``set_parameters`` service), the
   driver's ``~/reload_calibration``. If setting the parameter or the reload fails, the file and
   the parameter are put back.

A failed or cancelled goal installs nothing and changes no parameter; captured data stay in
``output_dir`` for inspection (the result message says where). One goal at a time.
"""

from __future__ import annotations

import math
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any, Optional

import cv2
import numpy as np
from diagnostic_msgs.msg import KeyValue
from ptz_calibration_msgs.action import Calibrate, MoveTo
from ptz_calibration_msgs.srv import Capture as CaptureSrv
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import GetParameters, SetParameters
from rclpy.action import ActionClient, ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from std_srvs.srv import Trigger

from ..calibration.dataset import Capture, DatasetError, find_manifest, save_manifest
from ..model import ModelFileError, load_model, save_model
from .calibration_job import (
    CapturePlan,
    PipelineProcess,
    ProtocolFileError,
    default_output_dir,
    load_protocol_file,
    protocol_options,
    simulator_plan,
)
from .conversions import image_to_array
from .params import declare, positive
from .runner import run_node
from .set_camera_info import default_model_file

#: share of the whole job's progress: capture, calibration (the rest is the installation)
CAPTURE_SHARE, CALIBRATE_END = 0.5, 0.97
FEEDBACK_PERIOD = 0.2  # s between feedback messages of one stage


class JobFailed(RuntimeError):
    """The goal cannot go on (the message says why)."""


class JobCancelled(RuntimeError):
    """The client cancelled the goal."""


class _Goal:
    """One running goal: its handle, feedback state and files."""

    def __init__(self, handle) -> None:
        self.handle = handle
        self.feedback = Calibrate.Feedback(rms_px=math.nan)
        self.last_feedback = 0.0
        self.files: list[str] = []
        self.notes: list[str] = []

    @property
    def cancelled(self) -> bool:
        return self.handle.is_cancel_requested

    def check(self) -> None:
        if self.cancelled:
            raise JobCancelled()

    def publish(self, stage: str, progress: float, force: bool = False, **values: Any) -> None:
        fb = self.feedback
        changed = stage != fb.stage
        fb.stage = stage
        fb.progress = float(min(max(progress, fb.progress), 1.0))  # never backwards
        for key, value in values.items():
            setattr(fb, key, value)
        now = time.monotonic()
        if force or changed or now - self.last_feedback >= FEEDBACK_PERIOD:
            self.handle.publish_feedback(fb)
            self.last_feedback = now


class CalibratorNode(Node):
    """See the module docstring."""

    def __init__(self, node_name: str = "ptz_calibrator", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self.driver = declare(self, "driver", "ptz_driver",
                              "the driver node to calibrate: its name or namespace/name, relative to this "
                              "node's namespace (e.g. left/ptz_driver)")
        self.camera_name = declare(self, "camera_name", "camera", "camera name (dataset, files, rig camera)")
        self.rig_file = declare(self, "rig_file", "",
                                "rig YAML whose scene gives the capture plan ('' = the package's sim rig)")
        self.protocol_file = declare(self, "protocol_file", "",
                                     "protocol YAML (targets and views; docs/dataset.md) instead of the rig's plan")
        self.settle = declare(self, "settle", 0.3, "s to wait after a move has arrived before capturing",
                              **positive(60.0))
        self.approach = declare(self, "approach", math.radians(0.5),
                                "rad: each view is approached from below by this much in pan and tilt (0 = directly)")
        self.install_file = declare(self, "install_file", "",
                                    "model file installed for the driver ('' = $ROS_HOME/ptz_calibration/"
                                    "<camera_name>.yaml)")
        self.move_timeout = declare(self, "move_timeout", 60.0, "s to wait for one ~/move_to", **positive())
        self.service_timeout = declare(self, "service_timeout", 20.0,
                                       "s to wait for the driver's services and their answers", **positive())
        self.cancel_timeout = declare(self, "cancel_timeout", 5.0,
                                      "s the calibration process gets to stop before it is terminated", **positive())
        self.max_failed_views = declare(self, "max_failed_views", 3,
                                        "consecutive views whose move or capture failed before the goal aborts")
        self._clients_group = ReentrantCallbackGroup()
        driver = self.driver.rstrip("/")
        self._move = ActionClient(self, MoveTo, f"{driver}/move_to", callback_group=self._clients_group)
        self._capture = self.create_client(CaptureSrv, f"{driver}/capture", callback_group=self._clients_group)
        self._set_params = self.create_client(SetParameters, f"{driver}/set_parameters",
                                              callback_group=self._clients_group)
        self._get_params = self.create_client(GetParameters, f"{driver}/get_parameters",
                                              callback_group=self._clients_group)
        self._reload = self.create_client(Trigger, f"{driver}/reload_calibration", callback_group=self._clients_group)
        self._busy = threading.Lock()
        self._job: Optional[PipelineProcess] = None
        self._server = ActionServer(self, Calibrate, "~/calibrate", execute_callback=self._execute,
                                    goal_callback=self._on_goal, cancel_callback=lambda _g: CancelResponse.ACCEPT,
                                    callback_group=ReentrantCallbackGroup())
        self.get_logger().info(f"~/calibrate: camera {self.camera_name!r} through the driver {driver!r}")

    # -- goals ----------------------------------------------------------------------------------

    def _on_goal(self, _goal) -> GoalResponse:
        if not self._busy.acquire(blocking=False):
            self.get_logger().warning("~/calibrate: goal rejected, a calibration is running")
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    def _execute(self, handle) -> Calibrate.Result:
        goal = _Goal(handle)
        result = Calibrate.Result(rms_px=math.nan)
        out_dir: Optional[Path] = None
        try:
            out_dir, dataset_dir = self._prepare(handle.request)
            if dataset_dir is None:
                dataset_dir = self._capture_dataset(goal, handle.request, out_dir / "dataset")
            done = self._calibrate(goal, dataset_dir, out_dir, captured=not handle.request.dataset_dir)
            result.rms_px = done["rms_px"]
            result.figures = [KeyValue(key=k, value=v) for k, v in done["figures"]]
            model_file = done["files"].get("model", "")
            result.model_file = model_file
            goal.notes.append(f"the calibration results are in {out_dir}")
            if handle.request.install:
                goal.publish("install", CALIBRATE_END, force=True)
                result.model_file, result.backup_file = self._install(goal, model_file)
            result.files = goal.files
            goal.publish("done", 1.0, force=True)
            handle.succeed()
            result.success = True
            result.message = (f"calibrated {done['camera']}: RMS {done['rms_px']:.3f} px over "
                              f"{done['views_used']} of {done['views_total']} views; results in {out_dir}"
                              + (f"; installed {result.model_file} for the driver" if handle.request.install else ""))
            self.get_logger().info(f"~/calibrate: {result.message}")
        except JobCancelled:
            result.files = goal.files
            result.message = "canceled; nothing installed" + self._kept(goal)
            handle.canceled()
            self.get_logger().warning(f"~/calibrate: {result.message}")
        except JobFailed as exc:
            result.files = goal.files
            result.message = f"{exc}; nothing installed" + self._kept(goal)
            handle.abort()
            self.get_logger().error(f"~/calibrate: {result.message}")
        except Exception as exc:  # noqa: BLE001 - a goal must always end
            result.files = goal.files
            result.message = f"internal error {type(exc).__name__}: {exc}; nothing installed" + self._kept(goal)
            handle.abort()
            self.get_logger().error(f"~/calibrate: {result.message}")
        finally:
            self._busy.release()
        return result

    @staticmethod
    def _kept(goal: _Goal) -> str:
        return "".join(f"; {note}" for note in goal.notes)

    def _prepare(self, request) -> tuple[Path, Optional[Path]]:
        """(output folder, dataset folder or None to capture one); JobFailed when unusable."""
        dataset_dir = None
        if request.dataset_dir:
            dataset_dir = Path(request.dataset_dir).expanduser()
            if not dataset_dir.exists():
                raise JobFailed(f"dataset_dir {dataset_dir} does not exist")
            try:
                find_manifest(dataset_dir)
            except DatasetError as exc:
                raise JobFailed(f"dataset_dir {dataset_dir}: {exc}") from None
        out_dir = Path(request.output_dir).expanduser() if request.output_dir else default_output_dir(self.camera_name)
        if dataset_dir is None and find_manifest_or_none(out_dir / "dataset") is not None:
            raise JobFailed(f"output_dir {out_dir} already holds a dataset (dataset/manifest.yaml); choose another "
                            "folder or leave output_dir empty")
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise JobFailed(f"cannot create output_dir {out_dir}: {exc}") from None
        return out_dir, dataset_dir

    # -- capture --------------------------------------------------------------------------------

    def _plan(self, request) -> CapturePlan:
        try:
            if self.protocol_file:
                plan = load_protocol_file(self.protocol_file)
                if request.zoom_steps or request.views_per_step or request.pan_sweep or request.tilt_sweep:
                    plan.notes.append(f"the goal's protocol settings are not used: views from {self.protocol_file}")
                return plan
            options = protocol_options(request.zoom_steps, request.views_per_step, request.pan_sweep,
                                       request.tilt_sweep, settle=self.settle, approach=max(self.approach, 0.0))
            return simulator_plan(self.rig_file, self.camera_name, options)
        except (ProtocolFileError, ValueError, OSError) as exc:
            raise JobFailed(f"no capture plan: {exc}") from None

    def _capture_dataset(self, goal: _Goal, request, folder: Path) -> Path:
        plan = self._plan(request)
        for note in plan.notes:
            self.get_logger().warning(f"~/calibrate: {note}")
        total = len(plan.views)
        self._wait_for_driver()
        images = folder / "images"
        images.mkdir(parents=True, exist_ok=True)
        captures: list[Capture] = []
        failed: list[str] = []
        in_a_row = 0
        goal.publish("capture", 0.0, force=True, views_total=total, views_accepted=0)
        self.get_logger().info(f"~/calibrate: capturing {total} views into {folder}")
        for i, view in enumerate(plan.views):
            goal.check()
            try:
                captures.append(self._take(goal, view, i, folder))
                in_a_row = 0
            except JobFailed as exc:
                failed.append(f"view {i}: {exc}")
                in_a_row += 1
                self.get_logger().warning(f"~/calibrate: view {i} of {total} skipped: {exc}")
                if in_a_row >= max(1, self.max_failed_views):
                    self._write_manifest(goal, folder, plan, captures, failed)
                    raise JobFailed(f"{in_a_row} views in a row failed (last: {exc})") from None
            except JobCancelled:
                self._write_manifest(goal, folder, plan, captures, failed)
                raise
            goal.publish("capture", CAPTURE_SHARE * (i + 1) / total, views_accepted=len(captures))
        if not captures:
            raise JobFailed("no view could be captured")
        self._write_manifest(goal, folder, plan, captures, failed)
        return folder

    def _write_manifest(self, goal: _Goal, folder: Path, plan: CapturePlan, captures: list[Capture],
                        failed: list[str]) -> None:
        if not captures:
            return
        used = {c.target for c in captures}
        metadata = {"generator": "ptz_calibrator", "driver": self.driver, "camera": self.camera_name,
                    "plan": plan.source, "settle": self.settle, "approach": self.approach,
                    "views_planned": len(plan.views), "views_failed": failed}
        path = save_manifest(folder, {n: t for n, t in plan.targets.items() if n in used}, captures,
                             plan.zoom_range, metadata)
        goal.files.append(str(path))
        goal.notes.append(f"the captured dataset ({len(captures)} views) is kept in {folder}")

    def _take(self, goal: _Goal, view, index: int, folder: Path) -> Capture:
        """Move, settle, capture and save one view; JobFailed if the move or capture failed."""
        if self.approach > 0:
            self._move_to(goal, view.pan - self.approach, view.tilt - self.approach, view.zoom)
        self._move_to(goal, view.pan, view.tilt, view.zoom)
        deadline = time.monotonic() + self.settle
        while time.monotonic() < deadline:
            goal.check()
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
        answer = self._call(goal, self._capture, CaptureSrv.Request(trigger_time=0.0, include_image=True),
                            "capture")
        if not answer.success:
            raise JobFailed(f"~/capture failed: {answer.message}")
        image = image_to_array(answer.image)
        if answer.image.encoding == "rgb8":
            image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        name = f"images/{self.camera_name}_{index:04d}.png"
        if not cv2.imwrite(str(folder / name), np.ascontiguousarray(image), [cv2.IMWRITE_PNG_COMPRESSION, 1]):
            raise JobFailed(f"cannot write {folder / name}")
        state = answer.state
        temperature = float(state.temperature)
        return Capture(image=name, camera=self.camera_name, pan=float(state.pan), tilt=float(state.tilt),
                       zoom=float(state.zoom_raw), temperature=temperature if math.isfinite(temperature) else None,
                       stamp=float(answer.exposure_time), target=view.target, tag=view.tag)

    def _move_to(self, goal: _Goal, pan: float, tilt: float, zoom: float) -> None:
        request = MoveTo.Goal(pan=float(pan), tilt=float(tilt), zoom=float(zoom))
        sent = self._move.send_goal_async(request)
        if not self._wait(goal, sent, self.service_timeout):
            raise JobFailed("~/move_to: no answer from the driver")
        handle = sent.result()
        if not handle.accepted:
            raise JobFailed("~/move_to goal rejected by the driver")
        done = handle.get_result_async()
        try:
            finished = self._wait(goal, done, self.move_timeout)
        except JobCancelled:
            handle.cancel_goal_async()  # stop the head too
            raise
        if not finished:
            handle.cancel_goal_async()
            raise JobFailed(f"~/move_to did not finish in {self.move_timeout:g} s")
        answer = done.result().result
        if not answer.success:
            raise JobFailed(f"~/move_to failed: {answer.message}")

    # -- calibration ------------------------------------------------------------------------------

    def _calibrate(self, goal: _Goal, dataset_dir: Path, out_dir: Path, captured: bool) -> dict[str, Any]:
        start = CAPTURE_SHARE if captured else 0.0
        span = CALIBRATE_END - start
        job = PipelineProcess(str(dataset_dir), str(out_dir), self.camera_name)
        self._job = job
        goal.publish("calibrate: start", start, force=True, rms_px=math.nan)
        self.get_logger().info(f"~/calibrate: calibrating {dataset_dir} (results in {out_dir})")
        job.start()
        try:
            while True:
                if goal.cancelled:
                    job.stop(self.cancel_timeout)
                    raise JobCancelled()
                message = job.next_message(0.1)
                if message is None:
                    continue
                kind = message[0]
                if kind == "progress":
                    _, stage, fraction, info = message
                    values = {}
                    if "views_total" in info:
                        values["views_total"] = info["views_total"]
                    if "views_accepted" in info:
                        values["views_accepted"] = info["views_accepted"]
                    if "rms_px" in info:
                        values["rms_px"] = info["rms_px"]
                    goal.publish(f"calibrate: {stage}", start + span * fraction, **values)
                    continue
                job.stop(self.cancel_timeout)
                if kind == "done":
                    done = message[1]
                    goal.files += list(done["files"].values())
                    goal.publish("calibrate: done", CALIBRATE_END, force=True, rms_px=done["rms_px"],
                                 views_accepted=done["views_used"], views_total=done["views_total"])
                    return done
                if kind == "cancelled":
                    raise JobCancelled()
                raise JobFailed(f"calibration failed: {message[1]}")
        finally:
            if job.process.is_alive():
                job.stop(self.cancel_timeout)
            job.close()
            self._job = None

    # -- installation -----------------------------------------------------------------------------

    def _install(self, goal: _Goal, model_file: str) -> tuple[str, str]:
        """Install ``model_file`` for the driver; (installed file, backup or '')."""
        try:
            model = load_model(model_file)
        except ModelFileError as exc:
            raise JobFailed(f"the calibrated model cannot be read back: {exc}") from None
        target = Path(self.install_file).expanduser() if self.install_file else default_model_file(self.camera_name)
        previous_url = self._get_driver_url(goal)
        existed = target.exists()
        backup = target.with_name(target.name + ".bak")
        try:
            save_model(model, target, backup=True)
        except OSError as exc:
            raise JobFailed(f"cannot write {target}: {exc}") from None
        url = f"file://{target}"
        try:
            self._set_driver_url(goal, url)
            answer = self._call(goal, self._reload, Trigger.Request(), "reload_calibration")
            if not answer.success:
                raise JobFailed(f"the driver did not load {target}: {answer.message}")
        except (JobFailed, JobCancelled) as exc:
            self._roll_back(goal, target, backup if existed else None, previous_url, url)
            if isinstance(exc, JobCancelled):
                raise
            raise JobFailed(f"installation failed, rolled back: {exc}") from None
        goal.files.append(str(target))
        self.get_logger().info(f"~/calibrate: installed {target} (calibration_url {url})")
        return str(target), str(backup) if existed else ""

    def _roll_back(self, goal: _Goal, target: Path, backup: Optional[Path], previous_url: str, url: str) -> None:
        try:
            if backup is not None:
                tmp = target.with_name(f".{target.name}.restore")
                shutil.copy2(backup, tmp)
                tmp.replace(target)
            else:
                target.unlink(missing_ok=True)
        except OSError as exc:
            self.get_logger().error(f"~/calibrate: could not restore {target}: {exc}")
        if previous_url != url:
            try:
                self._set_driver_url(goal, previous_url, check_cancel=False)
            except (JobFailed, JobCancelled) as exc:
                self.get_logger().error(f"~/calibrate: could not restore the driver's calibration_url: {exc}")

    def _get_driver_url(self, goal: _Goal) -> str:
        answer = self._call(goal, self._get_params, GetParameters.Request(names=["calibration_url"]), "get_parameters")
        if len(answer.values) != 1 or answer.values[0].type != ParameterType.PARAMETER_STRING:
            raise JobFailed("the driver has no string parameter calibration_url")
        return answer.values[0].string_value

    def _set_driver_url(self, goal: _Goal, url: str, check_cancel: bool = True) -> None:
        value = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=url)
        request = SetParameters.Request(parameters=[ParameterMsg(name="calibration_url", value=value)])
        answer = self._call(goal, self._set_params, request, "set_parameters", check_cancel)
        if len(answer.results) != 1 or not answer.results[0].successful:
            reason = answer.results[0].reason if answer.results else "no result"
            raise JobFailed(f"the driver refused calibration_url {url!r}: {reason}")

    # -- calls ----------------------------------------------------------------------------------

    def _wait_for_driver(self) -> None:
        if not self._move.wait_for_server(timeout_sec=self.service_timeout):
            raise JobFailed(f"the driver's move_to action ({self.driver}/move_to) is not available")
        if not self._capture.wait_for_service(timeout_sec=self.service_timeout):
            raise JobFailed(f"the driver's capture service ({self.driver}/capture) is not available")

    def _wait(self, goal: _Goal, future, timeout: float, check_cancel: bool = True) -> bool:
        """Wait for ``future``; False on timeout, JobCancelled when the goal is cancelled."""
        deadline = time.monotonic() + timeout
        while not future.done():
            if check_cancel:
                goal.check()
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def _call(self, goal: _Goal, client, request, what: str, check_cancel: bool = True):
        if not client.wait_for_service(timeout_sec=self.service_timeout):
            raise JobFailed(f"the driver's {what} service ({self.driver}/{what}) is not available")
        future = client.call_async(request)
        if not self._wait(goal, future, self.service_timeout, check_cancel):
            raise JobFailed(f"no answer from the driver's {what} service in {self.service_timeout:g} s")
        return future.result()

    def destroy_node(self) -> None:
        job = self._job
        if job is not None:
            job.stop(self.cancel_timeout)
        self._server.destroy()
        self._move.destroy()
        super().destroy_node()


def find_manifest_or_none(folder: Path) -> Optional[Path]:
    """The manifest of ``folder``, or None when it holds no dataset."""
    try:
        return find_manifest(folder) if folder.is_dir() else None
    except DatasetError:
        return None


def main(args: Optional[list[str]] = None) -> int:
    """Entry point ``ptz_calibrator``: spun by a 4-thread MultiThreadedExecutor."""
    return run_node(CalibratorNode, lambda: MultiThreadedExecutor(num_threads=4), args)


if __name__ == "__main__":
    sys.exit(main())
