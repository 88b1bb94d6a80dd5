"""A stereo PTZ rig: two ``ptz_driver`` nodes (left, right) and the ``ptz_stereo`` node.

    ros2 launch ptz_calibration dual_ptz.launch.py                      # the simulated rig
    ros2 launch ptz_calibration dual_ptz.launch.py left_backend:=visca right_backend:=visca \
        left_params_file:=/path/left.yaml right_params_file:=/path/right.yaml rig_file:=/path/rig.yaml

The drivers run as ``/left/ptz_driver`` and ``/right/ptz_driver`` (config/sim_left.yaml,
config/sim_right.yaml by default: the simulator's true models as factory calibration); the right
driver gets ``publish_mount_tf: false``, because ``ptz_stereo`` (config/sim_stereo.yaml) places
``right_mount`` under ``left_mount`` from the stereo calibration, so that TF between the two
optical frames equals ``/ptz_stereo/extrinsics``. ``rig_file`` empty = the simulator's true rig.
Optionally RViz with config/ptz.rviz. ``dual_ptz_sim.launch.py`` starts the two drivers alone.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def _nodes(context):
    share = get_package_share_directory("ptz_calibration")

    def arg(name):
        return LaunchConfiguration(name).perform(context).strip()

    def params(name, default):
        return arg(name) or os.path.join(share, "config", default)

    left = [params("left_params_file", "sim_left.yaml"), {"backend": arg("left_backend") or "sim"}]
    right = [params("right_params_file", "sim_right.yaml"),
             {"backend": arg("right_backend") or "sim", "publish_mount_tf": False}]
    stereo = [params("stereo_params_file", "sim_stereo.yaml")]
    if arg("rig_file"):
        stereo.append({"rig_file": arg("rig_file")})
    return [
        Node(package="ptz_calibration", executable="ptz_driver", name="ptz_driver", namespace="left",
             parameters=left, output="screen", emulate_tty=True),
        Node(package="ptz_calibration", executable="ptz_driver", name="ptz_driver", namespace="right",
             parameters=right, output="screen", emulate_tty=True),
        Node(package="ptz_calibration", executable="ptz_stereo", name="ptz_stereo",
             parameters=stereo, output="screen", emulate_tty=True),
    ]


def generate_launch_description():
    share = get_package_share_directory("ptz_calibration")
    return LaunchDescription([
        DeclareLaunchArgument("left_backend", default_value="sim",
                              description="driver backend of the left camera: sim, mock (later visca, ...)"),
        DeclareLaunchArgument("right_backend", default_value="sim",
                              description="driver backend of the right camera: sim, mock (later visca, ...)"),
        DeclareLaunchArgument("left_params_file", default_value="",
                              description="left ptz_driver parameters (empty: config/sim_left.yaml)"),
        DeclareLaunchArgument("right_params_file", default_value="",
                              description="right ptz_driver parameters (empty: config/sim_right.yaml); "
                                          "publish_mount_tf is forced false"),
        DeclareLaunchArgument("stereo_params_file", default_value="",
                              description="ptz_stereo parameters (empty: config/sim_stereo.yaml)"),
        DeclareLaunchArgument("rig_file", default_value="",
                              description="stereo rig calibration YAML (empty: from stereo_params_file; there "
                                          "empty = the simulator's true rig)"),
        DeclareLaunchArgument("rviz", default_value="false", description="also start RViz with config/ptz.rviz"),
        OpaqueFunction(function=_nodes),
        Node(
            package="rviz2",
            executable="rviz2",
            arguments=["-d", os.path.join(share, "config", "ptz.rviz")],
            condition=IfCondition(LaunchConfiguration("rviz")),
            output="screen",
        ),
    ])
