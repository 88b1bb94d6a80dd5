"""RViz markers of a stereo PTZ rig: both frustums at their zoom, the baseline, localized points.

The frustums and the baseline are in the optical frames at the stamp of the extrinsics they belong
to (RViz places them with TF at that stamp); the points are in the left mount frame, which is fixed
to the rig, so points localized at different times can share one marker.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from ..model.stereo_rig import StereoRigModel
from . import conversions as conv
from .stereo_geometry import StereoFrames, frustum_lines

LEFT_COLOR = ColorRGBA(r=0.2, g=0.9, b=0.2, a=1.0)
RIGHT_COLOR = ColorRGBA(r=0.9, g=0.3, b=0.2, a=1.0)
BASELINE_COLOR = ColorRGBA(r=0.9, g=0.9, b=0.2, a=1.0)
POINT_COLOR = ColorRGBA(r=0.2, g=0.6, b=1.0, a=1.0)
LIFETIME = Duration(sec=2)  # markers vanish when the node stops updating them


def _points(array: np.ndarray) -> list[Point]:
    return [Point(x=float(p[0]), y=float(p[1]), z=float(p[2])) for p in np.asarray(array).reshape(-1, 3)]


def _marker(ns: str, mid: int, kind: int, frame_id: str, stamp: float, color: ColorRGBA, width: float) -> Marker:
    m = Marker()
    m.header.frame_id = frame_id
    conv.fill_time(m.header.stamp, stamp)
    m.ns, m.id, m.type, m.action = ns, mid, kind, Marker.ADD
    m.pose.orientation.w = 1.0
    m.scale.x = m.scale.y = m.scale.z = width
    m.color = color
    m.lifetime = LIFETIME
    return m


def frustum_marker(mid: int, frame_id: str, stamp: float, k: np.ndarray, width: int, height: int,
                   length: float, color: ColorRGBA) -> Marker:
    """A LINE_LIST frustum in the optical frame ``frame_id`` (pinhole K at the current zoom)."""
    m = _marker("frustum", mid, Marker.LINE_LIST, frame_id, stamp, color, 0.01)
    m.points = _points(frustum_lines(np.asarray(k, float), width, height, length))
    return m


def stereo_markers(rig: StereoRigModel, frames: StereoFrames, stamp: float, left_zoom: float, right_zoom: float,
                   right_in_left: np.ndarray, frustum_length: float, points_left_mount: Sequence) -> MarkerArray:
    """Frustums of both cameras, the baseline (left optical centre to right optical centre, in the
    left optical frame) and the points (left mount frame)."""
    out = MarkerArray()
    for mid, (model, zoom, frame, color) in enumerate(
            ((rig.left, left_zoom, frames.left_optical, LEFT_COLOR),
             (rig.right, right_zoom, frames.right_optical, RIGHT_COLOR))):
        out.markers.append(frustum_marker(mid, frame, stamp, model.camera_matrix(zoom), model.image_width,
                                          model.image_height, frustum_length, color))
    baseline = _marker("baseline", 0, Marker.LINE_LIST, frames.left_optical, stamp, BASELINE_COLOR, 0.01)
    baseline.points = _points(np.array([np.zeros(3), np.asarray(right_in_left, float)]))
    out.markers.append(baseline)
    pts = _marker("points", 0, Marker.SPHERE_LIST, frames.left_mount, stamp, POINT_COLOR, 0.05)
    pts.points = _points(np.array(list(points_left_mount)).reshape(-1, 3))
    if pts.points:
        out.markers.append(pts)
    return out
