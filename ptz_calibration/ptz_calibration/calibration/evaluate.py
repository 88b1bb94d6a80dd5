"""Error figures of a calibrated model: against the simulator's ground truth, or on held-out data.

**Against the truth** (:func:`evaluate_against_truth`). A calibration's home frame H' is the
optical frame where the head REPORTS pan = tilt = 0; the true model's H is where the load really
is at 0. They differ by the head's backlash and gear error at home (the protocol approaches every
pose from below, so by a fixed offset). The true model is therefore expressed in H' first: the
simulator is driven to the reported home the way the protocol does it, and the true pose there
defines H' (what a calibration can see at best). Then, at pan/tilt/zoom settings not used for
calibration:

* intrinsics at ``zooms``: focal length error (%), principal point (px), and the distortion as the
  largest image displacement between the two lens models inside the image (px);
* the joints: axis direction error (deg), radius vector error (mm), zoom translation error (mm);
* the pose at ``settings`` (pan, tilt, zoom): rotation error (deg) and optical centre error (mm)
  of the model's pose from the reported angles against the true pose at those reported angles
  (this includes the head's gear error, which no model of this form represents).

**On a held-out dataset** (:func:`evaluate_on_dataset`): reprojection RMS per view with the
model's intrinsics at the reported zoom and the board pose fitted per view (the intrinsic
accuracy), and the RMS when the camera pose comes from the model and the reported pan/tilt/zoom
and each board's pose is fitted once for all views (the whole model, pointing included).
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import cv2
import numpy as np
from numpy.typing import NDArray
from scipy.spatial.transform import Rotation

from ..model import PtzCameraModel, PtzKinematics
from ..model.rotations import rotation_angle
from .dataset import Dataset
from .detection import Detection, DetectionOptions, board_pose, detect_file

__all__ = ["home_offset", "true_model_in_reported_home", "evaluate_against_truth", "evaluate_on_dataset",
           "default_settings"]


def home_offset(rig: Any, camera: str, approach: float = math.radians(1.0)) -> tuple[float, float]:
    """True (load) pan and tilt of the simulated ``camera`` when its head reports home, reached
    from below like the capture protocol does."""
    from ..simulation import SimulatedPtzCamera
    from .capture_protocol import SimClock

    clock = SimClock()
    cam = SimulatedPtzCamera(rig.cameras[camera], rig.scene, seed=0, clock=clock)
    cam.move_absolute(-approach, -approach, None)
    clock.advance_to(cam.arrival_time())
    cam.move_absolute(0.0, 0.0, None)
    clock.advance_to(cam.arrival_time() + 1.0)
    state = cam.true_state()
    return float(state.pan), float(state.tilt)


def true_model_in_reported_home(truth: PtzCameraModel, pan0: float, tilt0: float) -> PtzKinematics:
    """The true kinematics expressed in H' = the true optical frame at load angles (pan0, tilt0):
    ``truth.pose(pan0 + p, tilt0 + t) = P0 * result.pose(p, t)`` with ``P0 = truth.pose(pan0, tilt0)``.

    The carrying joint's axis line is moved into H' (``P0^-1``); the carried joint's line, at that
    configuration, is carried there by the carrier and turned about itself: in H' it is unchanged.
    """
    from ..model.kinematics import AxisOrder

    k = truth.kinematics
    r0, t0 = k.pose(pan0, tilt0, 0.0)
    joints = {"pan": (k.pan_joint.axis, k.pan_joint.radius), "tilt": (k.tilt_joint.axis, k.tilt_joint.radius)}
    carrier = "pan" if k.order is AxisOrder.PAN_TILT else "tilt"
    joint = k.pan_joint if carrier == "pan" else k.tilt_joint
    a = r0.T @ joint.axis
    p = r0.T @ (-joint.radius - t0)
    joints[carrier] = (a, -(p - (p @ a) * a))
    return PtzKinematics(pan_axis=joints["pan"][0], tilt_axis=joints["tilt"][0], pan_radius=joints["pan"][1],
                         tilt_radius=joints["tilt"][1], order=k.order, zoom_translation=k.zoom_translation)


def _axis_error_deg(a: NDArray, b: NDArray) -> float:
    return float(np.degrees(np.arccos(np.clip(abs(float(np.dot(a, b))), -1.0, 1.0))))


def _distortion_px(est: PtzCameraModel, true: PtzCameraModel, zoom: float, grid: int = 25) -> float:
    """Largest displacement (px) between the two models' distortion of the same rays over the image."""
    w, h = true.image_width, true.image_height
    u, v = np.meshgrid(np.linspace(0, w - 1, grid), np.linspace(0, h - 1, grid))
    pts = np.stack([u.ravel(), v.ravel()], axis=1).reshape(-1, 1, 2)
    Kt, Dt = true.camera_matrix(zoom), true.distortion(zoom)
    rays = cv2.undistortPoints(pts, Kt, Dt).reshape(-1, 2)  # normalized rays of the true pixels
    xyz = np.concatenate([rays, np.ones((len(rays), 1))], axis=1)
    De = est.distortion(zoom)
    # both with the TRUE camera matrix: only the lens model differs
    p_est, _ = cv2.projectPoints(xyz, np.zeros(3), np.zeros(3), Kt, De)
    p_true, _ = cv2.projectPoints(xyz, np.zeros(3), np.zeros(3), Kt, Dt)
    return float(np.max(np.linalg.norm(p_est.reshape(-1, 2) - p_true.reshape(-1, 2), axis=1)))


def default_settings(truth: PtzCameraModel, n: int = 60, seed: int = 1,
                     pan_range: float = math.radians(60.0), tilt_range: tuple[float, float] = (-0.3, 0.5)
                     ) -> NDArray[np.float64]:
    """``n`` random (pan, tilt, zoom) settings over the given pan/tilt range and the whole zoom range."""
    rng = np.random.default_rng(seed)
    zm = truth.zoom_mapping
    return np.stack([rng.uniform(-pan_range, pan_range, n), rng.uniform(*tilt_range, n),
                     rng.uniform(zm.raw_min, zm.raw_max, n)], axis=1)


def evaluate_against_truth(model: PtzCameraModel, truth: PtzCameraModel, home: tuple[float, float] = (0.0, 0.0),
                           zooms: Optional[Sequence[float]] = None,
                           settings: Optional[NDArray] = None) -> dict[str, Any]:
    """Error figures of ``model`` against the ``truth`` (module notes). ``home``: the true load
    angles where the head reports home (:func:`home_offset`)."""
    zm = truth.zoom_mapping
    if zooms is None:  # between the default protocol's 20 steps, and the ends
        steps = np.linspace(zm.raw_min, zm.raw_max, 20)
        zooms = np.concatenate([(steps[:-1] + steps[1:]) / 2, [zm.raw_min, zm.raw_max]])
    zooms = np.asarray(zooms, float)
    ke, kt = model.camera_matrix(zooms), truth.camera_matrix(zooms)
    fx_err = 100.0 * (ke[:, 0, 0] / kt[:, 0, 0] - 1.0)
    fy_err = 100.0 * (ke[:, 1, 1] / kt[:, 1, 1] - 1.0)
    pp_err = np.hypot(ke[:, 0, 2] - kt[:, 0, 2], ke[:, 1, 2] - kt[:, 1, 2])
    dist_px = np.array([_distortion_px(model, truth, z) for z in zooms])
    true_kin = true_model_in_reported_home(truth, *home)
    kin = model.kinematics
    d_err = 1e3 * (np.asarray(kin.zoom_translation.evaluate(zooms)) - np.asarray(true_kin.zoom_translation.evaluate(zooms)))
    out: dict[str, Any] = {
        "zooms": zooms.tolist(),
        "focal_error_pct": {"fx": fx_err.tolist(), "fy": fy_err.tolist(),
                            "max_abs": float(max(np.abs(fx_err).max(), np.abs(fy_err).max()))},
        "principal_point_error_px": {"values": pp_err.tolist(), "max": float(pp_err.max())},
        "distortion_error_px": {"values": dist_px.tolist(), "max": float(dist_px.max())},
        "zoom_translation_error_mm": {"values": d_err.tolist(), "max_abs": float(np.abs(d_err).max())},
        "home_offset_deg": {"pan": math.degrees(home[0]), "tilt": math.degrees(home[1])},
    }
    for name in ("pan", "tilt"):
        je = kin.pan_joint if name == "pan" else kin.tilt_joint
        jt = true_kin.pan_joint if name == "pan" else true_kin.tilt_joint
        out[f"{name}_axis_error_deg"] = _axis_error_deg(je.axis, jt.axis)
        out[f"{name}_radius_error_mm"] = float(1e3 * np.linalg.norm(je.radius - jt.radius))
        out[f"{name}_radius_error_vector_mm"] = (1e3 * (je.radius - jt.radius)).tolist()
    out["axes_angle_error_deg"] = float(np.degrees(kin.axis_angle - true_kin.axis_angle))
    if settings is None:
        settings = default_settings(truth)
    s = np.asarray(settings, float)
    r_e, t_e = model.pose(s[:, 0], s[:, 1], s[:, 2])
    full_truth = PtzCameraModel(truth.camera_name, truth.image_width, truth.image_height, truth.intrinsics,
                                true_kin, truth.zoom_mapping)
    r_t, t_t = full_truth.pose(s[:, 0], s[:, 1], s[:, 2])
    rot_err = np.degrees(rotation_angle(np.einsum("nji,njk->nik", r_e, r_t)))
    pos_err = 1e3 * np.linalg.norm(t_e - t_t, axis=1)
    out["pose"] = {"settings": len(s), "rotation_error_deg": {"median": float(np.median(rot_err)),
                                                              "max": float(rot_err.max())},
                   "position_error_mm": {"median": float(np.median(pos_err)), "max": float(pos_err.max())},
                   "note": "the model's pose at the reported angles against the true pose at the same REPORTED "
                           "angles with the true kinematics (gear error excluded)"}
    return out


def evaluate_on_dataset(model: PtzCameraModel, dataset: Dataset, camera: Optional[str] = None,
                        options: DetectionOptions = DetectionOptions()) -> dict[str, Any]:
    """Reprojection errors of ``model`` on a dataset not used for its calibration (module notes)."""
    data = dataset.for_camera(camera or model.camera_name if (camera or model.camera_name) in dataset.cameras
                              else None)
    per_view: list[dict[str, Any]] = []
    board_poses: dict[str, list[tuple[NDArray, NDArray]]] = {}
    kept = []
    for c in data.captures:
        det = detect_file(data.image_path(c), data.target_of(c), options)
        if not isinstance(det, Detection):
            per_view.append({"image": c.image, "zoom": c.zoom, "error": str(det.message)})
            continue
        K, D = model.camera_matrix(c.zoom), model.distortion(c.zoom)
        pose = board_pose(det, K, D)
        if pose is None:
            per_view.append({"image": c.image, "zoom": c.zoom, "error": "solvePnP failed"})
            continue
        r_cb, t_cb = pose
        proj, _ = cv2.projectPoints(det.object_points, cv2.Rodrigues(r_cb)[0], t_cb, K, D)
        e = proj.reshape(-1, 2) - det.image_points
        rms = float(np.sqrt(np.mean(np.sum(e**2, axis=1))))
        r_v, t_v = model.pose(c.pan, c.tilt, c.zoom)
        name = data.target_name(c)
        board_poses.setdefault(name, []).append((r_v @ r_cb, r_v @ t_cb + t_v))
        per_view.append({"image": c.image, "zoom": c.zoom, "pan": c.pan, "tilt": c.tilt, "rms_px": rms,
                         "points": len(e)})
        kept.append((len(per_view) - 1, c, det, name))
    if not kept:
        raise ValueError(f"{data.source}: the target was found in none of the images")
    boards = {n: (Rotation.from_matrix(np.array([p[0] for p in v])).mean().as_matrix(),
                  np.median(np.array([p[1] for p in v]), axis=0)) for n, v in board_poses.items()}
    full = []
    for i, c, det, name in kept:
        r_b, t_b = boards[name]
        x_h = det.object_points @ r_b.T + t_b
        pred = model.project(x_h, c.pan, c.tilt, c.zoom)
        e = np.linalg.norm(pred - det.image_points, axis=1)
        per_view[i]["model_rms_px"] = float(np.sqrt(np.nanmean(e**2)))
        full.append(per_view[i]["model_rms_px"])
    rms = np.array([v["rms_px"] for v in per_view if "rms_px" in v])
    n_pts = np.array([v["points"] for v in per_view if "rms_px" in v])
    zoom_rms: dict[str, float] = {}
    for v in per_view:
        if "rms_px" in v:
            zoom_rms.setdefault(f"{v['zoom']:g}", []).append(v["rms_px"])  # type: ignore[arg-type]
    return {
        "dataset": str(data.source),
        "views": len(per_view), "views_used": int(len(rms)),
        "reprojection_rms_px": float(np.sqrt(np.sum(rms**2 * n_pts) / np.sum(n_pts))),
        "reprojection_rms_px_max_view": float(rms.max()),
        "per_zoom_rms_px": {z: float(np.sqrt(np.mean(np.square(v)))) for z, v in zoom_rms.items()},  # type: ignore[arg-type]
        "model_rms_px": {"median": float(np.median(full)), "max": float(np.max(full)),
                         "note": "camera pose from the model and the REPORTED pan/tilt/zoom, one pose per board "
                                 "for all views: includes the head's pointing error (backlash, gear error, "
                                 "encoder steps), which grows with the focal length"},
        "per_view": per_view,
    }
