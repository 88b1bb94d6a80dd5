"""Applying a model's correction layers: reported feedback -> actual joint angles, pose, K.

Order (the inverse of how the errors arise): the pointing map turns reported pan/tilt into
actual joint angles; the kinematic model gives the pose; the zoom offset and the temperature
rotate the optical frame (``pose @ R_zoom @ R_thermal``); the field rotation turns the whole head
(``R_f @ pose``); the temperature scales fx and fy. Layers that are absent or switched off are
skipped, so a model without corrections gives exactly ``model.pose`` and ``model.camera_matrix``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..model.camera_model import PtzCameraModel, distort_normalized
from .layers import CorrectionLayers


def layers_of(model: PtzCameraModel) -> CorrectionLayers:
    """The model's correction layers (an empty set for models without)."""
    return getattr(model, "corrections", None) or CorrectionLayers()


def corrected_angles(model: PtzCameraModel, pan: ArrayLike, tilt: ArrayLike, pan_direction: ArrayLike = 0.0,
                     tilt_direction: ArrayLike = 0.0) -> tuple[Any, Any]:
    """Actual (pan, tilt) from the reported ones through the pointing map (unchanged without one):
    floats for one setting, arrays for a batch."""
    pmap = layers_of(model).active("pointing")
    p, t = (pan, tilt) if pmap is None else pmap.correct(pan, tilt, pan_direction, tilt_direction)
    if np.ndim(p) == 0 and np.ndim(t) == 0:
        return float(p), float(t)
    return np.asarray(p, dtype=float), np.asarray(t, dtype=float)


def optical_rotation(model: PtzCameraModel, zoom: float, temperature: float = math.nan) -> NDArray[np.float64]:
    """``R_zoom @ R_thermal``: the rotation of the optical frame the layers add (identity without)."""
    layers = layers_of(model)
    R = np.eye(3)
    table = layers.active("zoom_offset")
    if table is not None:
        K = model.camera_matrix(zoom)
        R = R @ table.rotation(zoom, K[0, 0], K[1, 1])
    thermal = layers.active("thermal")
    if thermal is not None and math.isfinite(temperature):
        R = R @ thermal.rotation(temperature)
    return R


def head_rotation(model: PtzCameraModel) -> NDArray[np.float64]:
    """``R_f`` of the field layer (identity without)."""
    field = layers_of(model).active("field")
    return np.eye(3) if field is None else field.matrix


def corrected_pose(model: PtzCameraModel, pan: float, tilt: float, zoom: float,
                   temperature: float = math.nan) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Camera-to-home (R, T) at the *actual* joint angles (see :func:`corrected_angles`)."""
    R, T = model.pose(pan, tilt, zoom)
    R = R @ optical_rotation(model, zoom, temperature)
    Rf = head_rotation(model)
    return Rf @ R, Rf @ T


def reported_pose(model: PtzCameraModel, pan: float, tilt: float, zoom: float, temperature: float = math.nan,
                  pan_direction: float = 0.0, tilt_direction: float = 0.0
                  ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Camera-to-home (R, T) at *reported* (pan, tilt, zoom): :func:`corrected_angles`, then
    :func:`corrected_pose`."""
    p, t = corrected_angles(model, pan, tilt, pan_direction, tilt_direction)
    return corrected_pose(model, p, t, zoom, temperature)


def corrected_camera_matrix(model: PtzCameraModel, zoom: float, temperature: float = math.nan) -> NDArray[np.float64]:
    """K at ``zoom`` with the temperature's focal scale (unchanged without a thermal layer)."""
    K = np.array(model.camera_matrix(zoom), dtype=float)
    thermal = layers_of(model).active("thermal")
    if thermal is not None and math.isfinite(temperature):
        s = thermal.focal_scale(temperature)
        K[0, 0] *= s
        K[0, 1] *= s
        K[1, 1] *= s
    return K


def project(model: PtzCameraModel, points_home: ArrayLike, pan: float, tilt: float, zoom: float,
            temperature: float = math.nan, pan_direction: float = 0.0,
            tilt_direction: float = 0.0) -> NDArray[np.float64]:
    """Pixels (M, 2) of home-frame points seen at *reported* (pan, tilt, zoom), every layer applied."""
    R, T = reported_pose(model, pan, tilt, zoom, temperature, pan_direction, tilt_direction)
    x_c = (np.asarray(points_home, float).reshape(-1, 3) - T) @ R
    with np.errstate(divide="ignore", invalid="ignore"):
        xy = x_c[:, :2] / x_c[:, 2:3]
    xy[x_c[:, 2] <= 0] = np.nan
    xyd = distort_normalized(xy, model.distortion(zoom))
    K = corrected_camera_matrix(model, zoom, temperature)
    return np.stack([K[0, 0] * xyd[:, 0] + K[0, 1] * xyd[:, 1] + K[0, 2], K[1, 1] * xyd[:, 1] + K[1, 2]], axis=-1)


def setting_pose(model: PtzCameraModel, setting: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Corrected camera-to-home pose at ``setting`` = (pan, tilt, zoom[, temperature]) or (N, 3|4).

    Pan and tilt are the *actual* joint angles (pointing map already applied); batched over rows.
    Without active optical or field layers this is ``model.pose`` (vectorized).
    """
    q = np.asarray(setting, dtype=float)
    R, T = model.pose(q[..., 0], q[..., 1], q[..., 2])
    layers = layers_of(model)
    if layers.active("zoom_offset") is not None or layers.active("thermal") is not None:
        temps = q[..., 3] if q.shape[-1] > 3 else np.full(q.shape[:-1], math.nan)
        flat_z, flat_t = np.ravel(q[..., 2]), np.ravel(temps)
        rots = np.stack([optical_rotation(model, float(z), float(t)) for z, t in zip(flat_z, flat_t)])
        R = R @ rots.reshape(np.shape(R))
    if layers.active("field") is not None:
        Rf = head_rotation(model)
        R = Rf @ R
        T = np.einsum("ij,...j->...i", Rf, T)
    return R, T


def setting_camera_matrix(model: PtzCameraModel, setting: ArrayLike) -> NDArray[np.float64]:
    """K at one ``setting`` = (pan, tilt, zoom[, temperature]) with the thermal focal scale."""
    q = np.asarray(setting, dtype=float)
    return corrected_camera_matrix(model, float(q[2]), float(q[3]) if q.shape[-1] > 3 else math.nan)
