"""Emulators of real PTZ cameras' protocols (VISCA, Pelco-D, ONVIF), driven by the simulator.

Each emulator plays the camera side of a published protocol over a real transport (a
pseudo-terminal for serial lines, a loopback UDP/TCP socket for IP), with the mechanics of a
:class:`~ptz_calibration.simulation.SimulatedPtzCamera` behind it, and can inject faults
(dropped, malformed, truncated or slow replies, error replies, disconnects). They let the
driver node be tested, and tried, without hardware. Pure Python (no rclpy).
"""
