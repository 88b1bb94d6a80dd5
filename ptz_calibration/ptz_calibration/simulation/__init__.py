"""The simulated PTZ rig (pure Python: no rclpy, no message types)."""
