"""Thin ROS 2 adapters over the model and the drivers (these modules import rclpy and messages)."""
