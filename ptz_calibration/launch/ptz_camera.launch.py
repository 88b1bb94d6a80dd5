"""One PTZ camera: the ``ptz_driver`` node.

    ros2 launch ptz_calibration ptz_camera.launch.py params_file:=/path/to/params.yaml
    ros2 launch ptz_calibration ptz_camera.launch.py camera_name:=left backend:=sim \
        calibration_url:=package://ptz_calibration/config/sim_left_model.yaml

Arguments left empty are not passed: the params file (``/**: ros__parameters:`` form) or the
node's defaults apply. The node runs in ``namespace`` (default: the camera name), so its topics
are ``/<namespace>/ptz_driver/{ptz_state,joint_states,camera_info,image_raw,cmd}``.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def _driver(context):
    def arg(name):
        return LaunchConfiguration(name).perform(context).strip()

    parameters = []
    if arg("params_file"):
        parameters.append(arg("params_file"))
    overrides = {name: arg(name) for name in ("camera_name", "backend", "calibration_url") if arg(name)}
    if overrides:
        parameters.append(overrides)
    return [Node(
        package="ptz_calibration",
        executable="ptz_driver",
        name="ptz_driver",
        namespace=arg("namespace") or arg("camera_name"),
        parameters=parameters,
        output="screen",
        emulate_tty=True,
    )]


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument("camera_name", default_value="",
                              description="camera name (empty: from params_file, else 'camera')"),
        DeclareLaunchArgument("backend", default_value="",
                              description="driver backend: sim, mock (empty: from params_file, else 'sim')"),
        DeclareLaunchArgument("params_file", default_value="",
                              description="ptz_driver parameters file (/**: ros__parameters: form)"),
        DeclareLaunchArgument("calibration_url", default_value="",
                              description="model file: package://, file:// or a path (empty: from params_file)"),
        DeclareLaunchArgument("namespace", default_value="",
                              description="namespace of the node (empty: the camera name)"),
        OpaqueFunction(function=_driver),
    ])
