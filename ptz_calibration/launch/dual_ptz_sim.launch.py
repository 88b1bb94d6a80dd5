"""The simulated stereo PTZ rig: cameras ``left`` and ``right`` of config/sim_rig.yaml.

    ros2 launch ptz_calibration dual_ptz_sim.launch.py [rviz:=true]

Each camera is a ``ptz_driver`` (sim backend) in its own namespace, configured by
config/sim_left.yaml / config/sim_right.yaml (the simulator's true models as factory
calibration, the rig's mount poses under the ``rig`` frame). Optionally RViz with config/ptz.rviz.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.conditions import IfCondition
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description():
    share = get_package_share_directory("ptz_calibration")
    camera_launch = os.path.join(share, "launch", "ptz_camera.launch.py")

    def camera(name, params):
        return IncludeLaunchDescription(
            PythonLaunchDescriptionSource(camera_launch),
            launch_arguments={
                "camera_name": name,
                "namespace": name,
                "params_file": os.path.join(share, "config", params),
            }.items(),
        )

    return LaunchDescription([
        DeclareLaunchArgument("rviz", default_value="false", description="also start RViz with config/ptz.rviz"),
        camera("left", "sim_left.yaml"),
        camera("right", "sim_right.yaml"),
        Node(
            package="rviz2",
            executable="rviz2",
            arguments=["-d", os.path.join(share, "config", "ptz.rviz")],
            condition=IfCondition(LaunchConfiguration("rviz")),
            output="screen",
        ),
    ])
