"""The environment is what the project needs: ROS 2 (rclpy, tf2_msgs, our interfaces, built
from the current sources), the Python packages, DDS confined to the loopback, and a real
publish/subscribe round trip between two processes over DDS."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.ros

REPO = Path(__file__).resolve().parents[2]
MSGS_SRC = REPO / "ptz_calibration_msgs"


def test_python_packages_import():
    import cv2
    import hypothesis  # noqa: F401
    import numpy
    import scipy.spatial.transform  # noqa: F401
    import yaml  # noqa: F401

    assert int(numpy.__version__.split(".")[0]) >= 1
    for name in ("findChessboardCorners", "calibrateCamera", "solvePnP", "projectPoints",
                 "Rodrigues", "calibrateHandEye"):
        assert hasattr(cv2, name), f"cv2 {cv2.__version__} has no {name}"


def test_rclpy_imports_with_an_rmw():
    import rclpy

    rmw = rclpy.get_rmw_implementation_identifier()
    assert rmw.startswith("rmw_")
    if os.environ.get("RMW_IMPLEMENTATION"):
        assert rmw == os.environ["RMW_IMPLEMENTATION"]


def test_dds_stays_on_the_loopback_on_a_private_domain():
    assert os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE") == "LOCALHOST"
    assert os.environ.get("ROS_STATIC_PEERS", "") == ""
    domain = int(os.environ["ROS_DOMAIN_ID"])
    assert 0 <= domain <= 232

    import rclpy

    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        assert context.get_domain_id() == domain
    finally:
        rclpy.shutdown(context=context)


def test_tf2_msgs_has_the_ros2_definitions():
    from tf2_msgs.msg import TF2Error, TFMessage

    assert TFMessage.get_fields_and_field_types() == {
        "transforms": "sequence<geometry_msgs/TransformStamped>"}
    assert TF2Error.get_fields_and_field_types() == {"error": "uint8", "error_string": "string"}
    assert (TF2Error.NO_ERROR, TF2Error.LOOKUP_ERROR, TF2Error.TIMEOUT_ERROR,
            TF2Error.TRANSFORM_ERROR) == (0, 1, 5, 6)


def test_ptz_messages_have_the_documented_fields():
    from ptz_calibration_msgs.action import MoveTo
    from ptz_calibration_msgs.msg import PtzCommand, PtzState

    state = PtzState.get_fields_and_field_types()
    for field, kind in {"header": "std_msgs/Header", "camera_name": "string", "pan": "double",
                        "tilt": "double", "pan_velocity": "double", "tilt_velocity": "double",
                        "zoom_raw": "double", "zoom_magnification": "double",
                        "temperature": "double", "moving": "boolean"}.items():
        assert state.get(field) == kind, f"PtzState.{field}"

    command = PtzCommand.get_fields_and_field_types()
    for field, kind in {"header": "std_msgs/Header", "mode": "uint8", "pan": "double",
                        "tilt": "double", "zoom": "double", "zoom_is_magnification": "boolean",
                        "pan_speed": "double", "tilt_speed": "double",
                        "duration": "double"}.items():
        assert command.get(field) == kind, f"PtzCommand.{field}"
    assert (PtzCommand.MODE_ABSOLUTE, PtzCommand.MODE_RELATIVE, PtzCommand.MODE_VELOCITY,
            PtzCommand.MODE_STOP, PtzCommand.MODE_HOME) == (0, 1, 2, 3, 4)

    goal = MoveTo.Goal.get_fields_and_field_types()
    for field in ("pan", "tilt", "zoom", "pan_speed", "tilt_speed", "angle_tolerance",
                  "zoom_tolerance", "timeout"):
        assert goal.get(field) == "double", f"MoveTo.Goal.{field}"
    assert goal.get("zoom_is_magnification") == "boolean"
    result = MoveTo.Result.get_fields_and_field_types()
    assert result.get("success") == "boolean" and result.get("message") == "string"
    assert result.get("final_state") == "ptz_calibration_msgs/PtzState"
    feedback = MoveTo.Feedback.get_fields_and_field_types()
    assert feedback.get("state") == "ptz_calibration_msgs/PtzState"
    assert feedback.get("remaining_angle") == "double"


# --- the built interfaces match the .msg/.srv/.action sources (no stale build) ---------------

_PRIMITIVES = {"bool": "boolean", "byte": "octet", "char": "uint8", "float32": "float",
               "float64": "double", "int8": "int8", "uint8": "uint8", "int16": "int16",
               "uint16": "uint16", "int32": "int32", "uint32": "uint32", "int64": "int64",
               "uint64": "uint64", "string": "string", "wstring": "wstring"}


def _rosidl_type(text, package):
    """A .msg field type as rosidl's get_fields_and_field_types() spells it."""
    m = re.fullmatch(r"([\w/]+?)(?:<=(\d+))?(?:\[(<=)?(\d*)\])?", text)
    assert m, f"cannot parse field type {text!r}"
    base, str_bound, seq_bounded, size = m.groups()
    if base in _PRIMITIVES:
        base = _PRIMITIVES[base] + (f"<{str_bound}>" if str_bound else "")
    elif base == "Header":
        base = "std_msgs/Header"
    elif "/" not in base:
        base = f"{package}/{base}"
    else:
        base = base.replace("/msg/", "/")
    if text.endswith("]"):
        if seq_bounded:
            return f"sequence<{base}, {size}>"
        return f"{base}[{size}]" if size else f"sequence<{base}>"
    return base


def _parse_fields(block, package):
    fields = {}
    for line in block.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        kind, rest = line.split(None, 1)
        if re.match(r"\w+\s*=", rest):
            continue  # a constant
        fields[rest.split()[0]] = _rosidl_type(kind, package)
    return fields


def _interface_sources():
    for sub in ("msg", "srv", "action"):
        for path in sorted((MSGS_SRC / sub).glob(f"*.{sub}")):
            yield pytest.param(sub, path, id=f"{sub}/{path.stem}")


@pytest.mark.parametrize("kind,path", list(_interface_sources()))
def test_built_interfaces_match_their_sources(kind, path):
    import importlib

    module = importlib.import_module(f"ptz_calibration_msgs.{kind}")
    cls = getattr(module, path.stem)
    blocks = re.split(r"^---\s*$", path.read_text(), flags=re.M)
    if kind == "msg":
        parts = [cls]
    elif kind == "srv":
        parts = [cls.Request, cls.Response]
    else:
        parts = [cls.Goal, cls.Result, cls.Feedback]
    assert len(blocks) == len(parts), path
    for part, block in zip(parts, blocks):
        assert part.get_fields_and_field_types() == _parse_fields(block, "ptz_calibration_msgs"), (
            f"{part.__name__} differs from {path.relative_to(REPO)}: rebuild (make build)")


def test_python_package_runs_from_the_source_tree():
    import ptz_calibration

    source = (REPO / "ptz_calibration" / "ptz_calibration").resolve()
    assert Path(ptz_calibration.__file__).resolve().parent == source


def test_packages_are_in_the_ament_index():
    from ament_index_python.packages import get_package_share_directory

    for package in ("ptz_calibration", "ptz_calibration_msgs", "tf2_msgs", "geometry_msgs"):
        assert Path(get_package_share_directory(package), "package.xml").is_file(), package


# --- a real round trip over DDS between two processes ----------------------------------------

_ECHO = r"""
import sys
import rclpy
from rclpy.executors import ExternalShutdownException
from tf2_msgs.msg import TFMessage

rclpy.init()
node = rclpy.create_node("ptz_env_echo")
pub = node.create_publisher(TFMessage, sys.argv[2], 10)
node.create_subscription(TFMessage, sys.argv[1], pub.publish, 10)
try:
    rclpy.spin(node)
except (KeyboardInterrupt, ExternalShutdownException):
    pass
"""


def test_tf_message_round_trip_between_two_processes_over_dds():
    import rclpy
    from geometry_msgs.msg import TransformStamped
    from rclpy.executors import SingleThreadedExecutor
    from tf2_msgs.msg import TFMessage

    tag = f"{os.getpid()}_{time.monotonic_ns()}"
    ping, pong = f"/ptz_env_test/ping_{tag}", f"/ptz_env_test/pong_{tag}"
    # The echo process offers UDP only, so the data really crosses the loopback interface
    # (not Fast DDS's shared memory); discovery is LOCALHOST as everywhere in the tests.
    env = dict(os.environ, FASTDDS_BUILTIN_TRANSPORTS="UDPv4")
    echo = subprocess.Popen([sys.executable, "-c", _ECHO, ping, pong], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = rclpy.create_node("ptz_env_test", context=context)
        received = []
        node.create_subscription(TFMessage, pong, received.append, 10)
        pub = node.create_publisher(TFMessage, ping, 10)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)

        t = TransformStamped()
        t.header.frame_id = "ptz_env_world"
        t.header.stamp.sec = 1234
        t.child_frame_id = "ptz_env_camera"
        t.transform.translation.x, t.transform.translation.y = 0.5, -0.25
        t.transform.rotation.z, t.transform.rotation.w = 0.6, 0.8
        sent = TFMessage(transforms=[t])

        deadline = time.monotonic() + 30.0
        while not received and time.monotonic() < deadline:
            if echo.poll() is not None:
                pytest.fail(f"the echo process exited ({echo.returncode}):\n{echo.stdout.read()}")
            pub.publish(sent)
            executor.spin_once(timeout_sec=0.2)
        assert received, "no TFMessage came back over DDS within 30 s"
        assert received[0] == sent
        executor.shutdown()
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)
        if echo.poll() is None:
            echo.send_signal(signal.SIGINT)
            try:
                echo.wait(timeout=10)
            except subprocess.TimeoutExpired:
                echo.kill()
                echo.wait()
        echo.stdout.close()
