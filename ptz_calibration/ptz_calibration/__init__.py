"""Calibrated pan-tilt-zoom cameras for ROS 2."""

__version__ = "0.1.0"
