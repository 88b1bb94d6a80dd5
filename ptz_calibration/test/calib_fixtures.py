"""Shared inputs of the calibration tests: the simulator's true camera, target poses, renders with
their exact corners, synthetic detections, and the shared real data folder."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Optional

import numpy as np

from ptz_calibration.calibration import Detection
from ptz_calibration.model.rotations import rpy_matrix
from ptz_calibration.simulation import (
    Checkerboard,
    ImageNoise,
    PlacedTarget,
    RenderOptions,
    Scene,
    load_rig,
    project_points,
    render,
)
from ptz_calibration.simulation.targets import Target

SIZE = (1280, 720)  # the default rig's cameras
RIG_NOISE = ImageNoise(read_noise=1.5, shot_noise=0.04)  # config/sim_rig.yaml image_noise
BOARD = Checkerboard(7, 10, 0.05)  # 10x7 inner corners, 50 mm: odd + even, orientation known


@lru_cache(maxsize=None)
def _left_model():
    return load_rig().cameras["left"].model


def true_camera(zoom: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(K, D) of the default rig's left camera at raw ``zoom`` (the simulator's truth)."""
    m = _left_model()
    return np.array(m.camera_matrix(zoom)), np.array(m.distortion(zoom))


def board_poses(target: Target, K: np.ndarray, D: np.ndarray, n: int, seed: int = 0,
                fill: float = 0.5, max_tilt: float = 0.6, margin: float = 8.0,
                size: tuple[int, int] = SIZE) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` poses ``(R, t)`` (camera frame = world) of the target, tilted up to ``max_tilt`` rad
    about x and y, its width spanning about ``fill`` of the image, whole inside the image."""
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = target.extent
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2, 0.0])
    outline = np.array([[x0, y0, 0], [x1, y0, 0], [x1, y1, 0], [x0, y1, 0]], float)
    base = (x1 - x0) * K[0, 0] / (fill * size[0])
    poses = []
    while len(poses) < n:
        R = rpy_matrix(*rng.uniform(-max_tilt, max_tilt, 2), rng.uniform(-0.4, 0.4))
        dist = base * rng.uniform(0.9, 1.2)
        shift = rng.uniform(-0.25, 0.25, 2) * np.array(size) / K[0, 0] * dist
        t = np.array([shift[0], shift[1], dist]) - R @ centre
        pts = np.vstack([outline, np.linspace(outline[0], outline[2], 9)])
        uv, z = project_points(pts @ R.T + t, K, D, np.eye(3), np.zeros(3))
        if np.all(z > 0) and np.all(uv > margin) and np.all(uv < np.array(size) - margin):
            poses.append((R, t))
    return poses


def true_corners(target: Target, K, D, R, t) -> np.ndarray:
    """(N, 2) exact image positions of the target's corners (ids order)."""
    uv, _ = project_points(target.object_points() @ np.asarray(R).T + t, K, D, np.eye(3), np.zeros(3))
    return uv


@lru_cache(maxsize=8)
def _render_cached(target: Target, zoom: float, n: int, seed: int, supersample: int, fill: float,
                   max_tilt: float) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    K, D = true_camera(zoom)
    images, truths = [], []
    for R, t in board_poses(target, K, D, n, seed, fill, max_tilt):
        scene = Scene([PlacedTarget("board", target, R, t)])
        images.append(render(scene, K, D, SIZE, np.eye(3), np.zeros(3),
                             RenderOptions(supersample=supersample), as_float=True))
        truths.append(true_corners(target, K, D, R, t))
    return tuple(images), tuple(truths)


def rendered_views(target: Target = BOARD, zoom: float = 0.0, n: int = 10, seed: int = 0,
                   noise: Optional[ImageNoise] = None, supersample: int = 1, fill: float = 0.5,
                   max_tilt: float = 0.6) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """8-bit renders (optionally with sensor noise) of ``n`` views and their exact corners."""
    levels, truths = _render_cached(target, float(zoom), n, seed, supersample, fill, max_tilt)
    rng = np.random.default_rng(seed + 1000)
    out = []
    for img in levels:
        if noise is not None and noise.enabled:
            sigma = np.sqrt(noise.read_noise**2 + noise.shot_noise * np.maximum(img, 0.0))
            img = img + sigma * rng.standard_normal(img.shape).astype(np.float32)
        out.append(np.clip(np.rint(img), 0, 255).astype(np.uint8))
    return out, list(truths)


def synthetic_detections(zoom: float = 0.0, n: int = 10, noise_px: float = 0.2, seed: int = 0,
                         target: Target = BOARD, fill: float = 0.5, max_tilt: float = 0.6
                         ) -> tuple[list[Detection], np.ndarray, np.ndarray]:
    """Exact projections of the target in ``n`` poses plus Gaussian corner noise (px per
    coordinate), as detections; with the true (K, D)."""
    K, D = true_camera(zoom)
    rng = np.random.default_rng(seed + 2000)
    out = []
    for k, (R, t) in enumerate(board_poses(target, K, D, n, seed, fill, max_tilt)):
        uv = true_corners(target, K, D, R, t) + noise_px * rng.standard_normal((len(target.object_points()), 2))
        out.append(Detection(uv, target.object_points(), np.arange(len(uv)), SIZE, len(uv), f"view{k}"))
    return out, K, D


def shared_data_dir() -> Path:
    """``$PTZ_SHARED_DATA``, else ``<repository>/../shared/data`` (may not exist)."""
    env = os.environ.get("PTZ_SHARED_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


def fast_rig(cameras: tuple[str, ...] = ("left",)):
    """The default rig with ``cameras`` rendered at 1 sample per pixel (half the rendering time;
    the detected corners are as accurate)."""
    import dataclasses

    from ptz_calibration.simulation import load_rig

    rig = load_rig()
    for name in cameras:
        spec = rig.cameras[name]
        rig.cameras[name] = dataclasses.replace(spec, render=dataclasses.replace(spec.render, supersample=1))
    return rig


def true_pointing_map(rig, camera: str, offset=(0.0, 0.0)):
    """The simulated head's pointing error as a pointing map in the frame where it reports home
    (``load - home_load - reported = -d b/2 + periodic(reported) - home_load``; the periodic error
    at the load angle differs from that at the reported one by < 3e-7 rad), plus ``offset`` (pan,
    tilt; rad): what a measured map carries when the calibrated model's home frame is off by that."""
    import math

    from ptz_calibration.calibration.evaluate import home_offset
    from ptz_calibration.corrections import AxisMap, PointingMap

    home = home_offset(rig, camera)
    axes = []
    for ax, h, o in zip((rig.cameras[camera].mechanics.pan, rig.cameras[camera].mechanics.tilt), home, offset):
        harmonics = tuple((e.order, e.amplitude * math.cos(e.phase), e.amplitude * math.sin(e.phase))
                          for e in ax.periodic_error)
        axes.append(AxisMap(o - h, harmonics, ax.backlash))
    return PointingMap(*axes, rms=(0.0, 0.0))
