"""Reference landmarks and the one-click recalibration (pure: numpy, OpenCV; no rclpy).

At calibration time the user stores landmarks: an image patch around a textured spot and the PTZ
setting that sees it (:class:`Landmark`, a :class:`LandmarkSet` is a folder ``landmarks.yaml`` +
one PNG per patch). Later the head is pointed at each landmark again, :func:`register` finds the
patch in the new frame (normalized cross-correlation, then a sub-pixel ECC refinement), and
:func:`recalibrate` turns the pixel shifts into a rotation of the whole head:

* the *reference* bearing of a landmark is the ray of its stored pixel through the model at the
  stored PTZ, with the field layer that was active when it was stored;
* the *current* bearing is the ray of the pixel where it is found now, through the current model
  at the same PTZ;
* ``reference ~= R_measured @ current`` (:func:`~ptz_calibration.corrections.field.solve_field_rotation`),
  and the new field layer is ``R_new = R_measured @ R_old``.

A measured rotation beyond ``max_correction`` (rad) raises :class:`RecalibrationError` carrying
the measured values; the caller then changes nothing. Bearings treat the landmarks as far away:
a knock also moves the optical centre by ``|dR| * |T|`` (< 1 mm for 0.5 deg and 5 cm of radius),
which near landmarks see as a small extra angle (prefer landmarks a few metres away or more).
"""

from __future__ import annotations

import math
import os
import re
import tempfile
import zlib
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional, Sequence

import cv2
import numpy as np
import yaml
from numpy.typing import ArrayLike, NDArray
from scipy.spatial.transform import Rotation

from ..corrections.apply import corrected_camera_matrix, layers_of, project, reported_pose
from ..corrections.field import FieldCorrection, solve_field_rotation
from ..fileio import atomic_write_text
from ..model import PtzCameraModel

__all__ = ["LandmarkError", "RegistrationError", "RecalibrationError", "Landmark", "LandmarkSet",
           "Observation", "LandmarkOffset", "RecalibrationResult", "RepeatabilityResult", "pick_patch",
           "cut_patch", "register", "bearing", "measure_offsets", "recalibrate", "repeatability",
           "expected_shift_px", "search_radius_px", "SET_FORMAT"]

SET_FORMAT = "ptz_calibration/landmarks"
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class LandmarkError(ValueError):
    """A landmark or landmark set is invalid, missing or unreadable (the message says which)."""


class RegistrationError(LandmarkError):
    """The patch was not found (score below the minimum, or the search window is off the image)."""

    def __init__(self, message: str, score: float = math.nan, px: Optional[tuple[float, float]] = None) -> None:
        super().__init__(message)
        self.score = float(score)
        self.px = px


class RecalibrationError(RuntimeError):
    """The measured correction cannot be applied; ``offsets``, ``angle`` (rad) and ``limit`` (rad)
    are the measured values (``angle`` NaN when a landmark was not found at all)."""

    def __init__(self, message: str, offsets: Sequence["LandmarkOffset"] = (), angle: float = math.nan,
                 limit: float = math.nan, residual_px: float = math.nan) -> None:
        super().__init__(message)
        self.offsets = list(offsets)
        self.angle = float(angle)
        self.limit = float(limit)
        self.residual_px = float(residual_px)


# -- landmarks and their folder ------------------------------------------------------------------

@dataclass(frozen=True)
class Landmark:
    """A reference patch and the PTZ setting that sees it.

    ``u, v``: pixel of the patch centre at capture time (pixel centres at integers: the patch is
    ``image[v - (S-1)/2 : ..., u - (S-1)/2 : ...]`` for an S x S patch). ``pan``/``tilt`` (rad) and
    ``zoom_raw`` are the reported setting, reached from below by ``approach`` rad on both axes.
    ``field_rotation_vector``: the model's field layer when it was stored (the reference bearing
    is computed with it). ``temperature`` deg C (NaN unknown), ``stamp`` s (system clock).
    """

    name: str
    pan: float
    tilt: float
    zoom_raw: float
    patch: NDArray[np.uint8] = field(repr=False, compare=False)
    u: float
    v: float
    temperature: float = math.nan
    stamp: float = math.nan
    approach: float = math.radians(1.0)
    field_rotation_vector: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise LandmarkError(f"landmark name {self.name!r}: use 1-64 letters, digits, '_', '-' or '.'")
        p = np.asarray(self.patch)
        if p.ndim != 2 or p.dtype != np.uint8 or min(p.shape) < 16:
            raise LandmarkError(f"landmark {self.name}: the patch must be a 2-D uint8 image of at least 16 x 16 px, "
                                f"got {p.dtype} {p.shape}")
        for key in ("pan", "tilt", "zoom_raw", "u", "v", "approach"):
            if not math.isfinite(getattr(self, key)):
                raise LandmarkError(f"landmark {self.name}: {key} must be finite")
        if len(self.field_rotation_vector) != 3:
            raise LandmarkError(f"landmark {self.name}: field_rotation_vector must have 3 values")

    @property
    def px(self) -> NDArray[np.float64]:
        return np.array([self.u, self.v])

    def _meta(self, patch_file: str) -> dict[str, Any]:
        return {"name": self.name, "pan": float(self.pan), "tilt": float(self.tilt), "zoom_raw": float(self.zoom_raw),
                "u": float(self.u), "v": float(self.v), "temperature": float(self.temperature),
                "stamp": float(self.stamp), "approach": float(self.approach),
                "field_rotation_vector_rad": [float(x) for x in self.field_rotation_vector],
                "patch": patch_file, "patch_size": [int(self.patch.shape[1]), int(self.patch.shape[0])]}


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


@dataclass(frozen=True)
class LandmarkSet:
    """Named landmarks (order kept). A folder: ``landmarks.yaml`` and ``<name>_<crc>.png`` patches."""

    landmarks: tuple[Landmark, ...] = ()
    camera_name: str = ""

    def __len__(self) -> int:
        return len(self.landmarks)

    @property
    def names(self) -> list[str]:
        return [lm.name for lm in self.landmarks]

    def get(self, name: str) -> Landmark:
        for lm in self.landmarks:
            if lm.name == name:
                return lm
        raise LandmarkError(f"no landmark {name!r} (have: {', '.join(self.names) or 'none'})")

    def with_landmark(self, landmark: Landmark) -> "LandmarkSet":
        """A copy with ``landmark`` appended (replacing one of the same name in place)."""
        items = list(self.landmarks)
        for i, lm in enumerate(items):
            if lm.name == landmark.name:
                items[i] = landmark
                return replace(self, landmarks=tuple(items))
        return replace(self, landmarks=(*items, landmark))

    def next_name(self) -> str:
        n = len(self.landmarks)
        while f"landmark_{n}" in self.names:
            n += 1
        return f"landmark_{n}"

    def save(self, folder: str | os.PathLike) -> Path:
        """Write the set: patches first (content-named, so a reader never sees a half set), then
        ``landmarks.yaml`` atomically, then remove patch files no longer referenced."""
        root = Path(folder).expanduser()
        entries, keep = [], set()
        for lm in self.landmarks:
            ok, png = cv2.imencode(".png", np.ascontiguousarray(lm.patch))
            if not ok:
                raise LandmarkError(f"landmark {lm.name}: cannot encode its patch as PNG")
            data = png.tobytes()
            name = f"{lm.name}_{zlib.crc32(data):08x}.png"
            if not (root / name).is_file() or (root / name).read_bytes() != data:
                _atomic_write_bytes(root / name, data)
            keep.add(name)
            entries.append(lm._meta(name))
        text = yaml.safe_dump({"format": SET_FORMAT, "format_version": 1, "camera_name": self.camera_name,
                               "units": "rad, raw zoom, px (pixel centres at integers), deg C, s",
                               "landmarks": entries}, sort_keys=False, default_flow_style=None, width=100)
        path = atomic_write_text(root / "landmarks.yaml", text)
        for old in root.glob("*.png"):
            if old.name not in keep:
                try:
                    old.unlink()
                except OSError:
                    pass
        return path

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "LandmarkSet":
        """Read a set written by :meth:`save`; ``LandmarkError`` names the file and the problem."""
        root = Path(folder).expanduser()
        index = root / "landmarks.yaml"
        try:
            data = yaml.safe_load(index.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise LandmarkError(f"{index}: no landmark set here (store landmarks first)") from None
        except (OSError, yaml.YAMLError) as exc:
            raise LandmarkError(f"{index}: cannot read: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != SET_FORMAT:
            raise LandmarkError(f"{index}: not a landmark set (format must be {SET_FORMAT!r})")
        out = []
        for i, entry in enumerate(data.get("landmarks") or []):
            try:
                patch = cv2.imread(str(root / entry["patch"]), cv2.IMREAD_GRAYSCALE)
                if patch is None:
                    raise LandmarkError(f"patch file {entry['patch']} missing or unreadable")
                out.append(Landmark(
                    str(entry["name"]), float(entry["pan"]), float(entry["tilt"]), float(entry["zoom_raw"]), patch,
                    float(entry["u"]), float(entry["v"]), float(entry.get("temperature", math.nan)),
                    float(entry.get("stamp", math.nan)), float(entry.get("approach", math.radians(1.0))),
                    tuple(float(x) for x in entry.get("field_rotation_vector_rad", (0.0, 0.0, 0.0)))))
            except (KeyError, TypeError, ValueError) as exc:
                raise LandmarkError(f"{index}: landmarks[{i}]: {exc}") from None
        return cls(tuple(out), str(data.get("camera_name", "")))


# -- patches and registration ------------------------------------------------------------------------

def cut_patch(image: ArrayLike, u: float, v: float, size: int) -> tuple[NDArray[np.uint8], float, float]:
    """The ``size`` x ``size`` patch nearest to centre (u, v) and its exact centre pixel."""
    img = np.asarray(image)
    h, w = img.shape[:2]
    half = (size - 1) / 2.0
    x0, y0 = int(round(u - half)), int(round(v - half))
    if size < 16 or x0 < 0 or y0 < 0 or x0 + size > w or y0 + size > h:
        raise LandmarkError(f"a {size} px patch at ({u:.1f}, {v:.1f}) does not fit in the {w} x {h} image")
    return np.ascontiguousarray(img[y0:y0 + size, x0:x0 + size]), x0 + half, y0 + half


def _uniqueness(image: NDArray, patch: NDArray, x0: int, y0: int, radius: int) -> float:
    """1 - (second best / best) NCC of ``patch`` (cut at x0, y0) within ``radius`` px: 0 for a
    periodic or edge-only area, near 1 for a unique spot."""
    h, w = image.shape
    s = patch.shape[0]
    ax, ay = max(0, x0 - radius), max(0, y0 - radius)
    bx, by = min(w, x0 + s + radius), min(h, y0 + s + radius)
    res = cv2.matchTemplate(image[ay:by, ax:bx], patch, cv2.TM_CCOEFF_NORMED)
    py, px = y0 - ay, x0 - ax
    best = float(res[py, px])
    excl = max(3, s // 8)
    res[max(0, py - excl):py + excl + 1, max(0, px - excl):px + excl + 1] = -1.0
    return 1.0 - max(0.0, float(res.max())) / max(best, 1e-6)


def pick_patch(image: ArrayLike, size: int = 96, search_radius: int = 60, near: Optional[tuple[float, float]] = None,
               max_distance: Optional[float] = None) -> tuple[float, float, float]:
    """The most registrable ``size`` px spot of ``image``: (u, v, texture score).

    Candidates on a grid are ranked by the smallest eigenvalue of their gradient structure tensor
    (both directions textured: a corner, not an edge or a flat area); the best few are then scored
    by their uniqueness within ``search_radius`` (a periodic checkerboard interior scores ~0).
    ``near``/``max_distance`` restrict the search to a disc (e.g. around the image centre).
    Raises LandmarkError when nothing usable is found.
    """
    img = np.asarray(image)
    if img.ndim != 2:
        raise LandmarkError("pick_patch needs a single-channel image")
    h, w = img.shape
    f = img.astype(np.float32)
    gx = cv2.Sobel(f, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(f, cv2.CV_32F, 0, 1, ksize=3)
    k = (size, size)
    sxx, syy, sxy = (cv2.boxFilter(a, -1, k, normalize=True) for a in (gx * gx, gy * gy, gx * gy))
    lam_min = 0.5 * (sxx + syy - np.sqrt((sxx - syy) ** 2 + 4 * sxy * sxy))
    step = max(4, size // 6)
    margin = size // 2 + 1
    cands = []
    for v in range(margin, h - margin, step):
        for u in range(margin, w - margin, step):
            if near is not None and max_distance is not None and math.hypot(u - near[0], v - near[1]) > max_distance:
                continue
            cands.append((float(lam_min[v, u]), u, v))
    if not cands:
        raise LandmarkError(f"no {size} px patch fits in the {w} x {h} image (or near {near})")
    cands.sort(reverse=True)
    top = cands[0][0]
    best = None
    chosen: list[tuple[int, int]] = []
    for lam, u, v in cands:
        if lam < 0.05 * top or lam <= 1.0 or len(chosen) >= 80:
            break
        if any(abs(u - a) < size // 2 and abs(v - b) < size // 2 for a, b in chosen):
            continue  # one candidate per half patch (non-maximum suppression)
        chosen.append((u, v))
        patch, cu, cv_ = cut_patch(img, u, v, size)
        if float(patch.std()) < 5.0:
            continue
        uniq = _uniqueness(img, patch, int(round(cu - (size - 1) / 2)), int(round(cv_ - (size - 1) / 2)),
                           search_radius)
        score = uniq * math.sqrt(lam)
        if best is None or score > best[0]:
            best = (score, cu, cv_, uniq)
    if best is None or best[3] < 0.05:
        raise LandmarkError("no textured, non-periodic spot in the image to use as a landmark")
    return best[1], best[2], best[0]


def _quadratic_peak(res: NDArray, x: int, y: int) -> tuple[float, float]:
    """Sub-pixel peak of a correlation surface by 1-D parabolas through the 3 x 3 neighbourhood."""
    def para(a: float, b: float, c: float) -> float:
        d = a - 2 * b + c
        return 0.0 if d >= 0 else 0.5 * (a - c) / d
    h, w = res.shape
    dx = para(res[y, x - 1], res[y, x], res[y, x + 1]) if 0 < x < w - 1 else 0.0
    dy = para(res[y - 1, x], res[y, x], res[y + 1, x]) if 0 < y < h - 1 else 0.0
    return x + float(np.clip(dx, -0.5, 0.5)), y + float(np.clip(dy, -0.5, 0.5))


def register(patch: ArrayLike, image: ArrayLike, expected_px: ArrayLike, search_radius_px: float,
             min_score: float = 0.6, refine: bool = True) -> tuple[NDArray[np.float64], float]:
    """Where ``patch``'s centre is in ``image``, searched within ``search_radius_px`` of ``expected_px``.

    Returns (pixel (u, v), score): the NCC maximum (TM_CCOEFF_NORMED), located to sub-pixel by a
    parabola fit and refined by ECC (translation), which keeps the error below ~0.05 px on the
    simulator's images. Raises :class:`RegistrationError` when the best score is below
    ``min_score`` or the search window does not fit the image.
    """
    tpl = np.asarray(patch)
    img = np.asarray(image)
    if tpl.ndim != 2 or img.ndim != 2:
        raise RegistrationError("register needs single-channel patch and image")
    th, tw = tpl.shape
    h, w = img.shape
    eu, ev = (float(x) for x in np.asarray(expected_px, float).ravel()[:2])
    if not (math.isfinite(eu) and math.isfinite(ev)) or not search_radius_px >= 0:
        raise RegistrationError(f"expected pixel ({eu}, {ev}) and search radius {search_radius_px} must be finite")
    r = int(math.ceil(search_radius_px))
    hx, hy = (tw - 1) / 2.0, (th - 1) / 2.0
    ax, ay = max(0, int(math.floor(eu - hx)) - r), max(0, int(math.floor(ev - hy)) - r)
    bx, by = min(w, int(math.ceil(eu + hx)) + r + 1), min(h, int(math.ceil(ev + hy)) + r + 1)
    if bx - ax < tw + 2 or by - ay < th + 2:
        raise RegistrationError(f"the search window around ({eu:.1f}, {ev:.1f}) is off the {w} x {h} image")
    window = img[ay:by, ax:bx]
    res = cv2.matchTemplate(window, tpl, cv2.TM_CCOEFF_NORMED)
    _, score, _, (mx, my) = cv2.minMaxLoc(res)
    score = float(score)
    x, y = _quadratic_peak(res, mx, my)
    u, v = ax + x + hx, ay + y + hy
    if score < min_score:
        raise RegistrationError(f"patch not found: best correlation {score:.3f} < {min_score:g} "
                                f"(at {u:.1f}, {v:.1f}; searched +-{r} px around {eu:.1f}, {ev:.1f})", score, (u, v))
    if refine:
        u, v = _ecc_refine(tpl, img, u, v)
    return np.array([u, v]), score


def _ecc_refine(tpl: NDArray, img: NDArray, u: float, v: float) -> tuple[float, float]:
    """ECC (translation) refinement of the patch centre (keeps (u, v) if ECC fails or jumps)."""
    th, tw = tpl.shape
    hx, hy = (tw - 1) / 2.0, (th - 1) / 2.0
    pad = 6
    x0, y0 = int(round(u - hx)) - pad, int(round(v - hy)) - pad
    h, w = img.shape
    if x0 < 0 or y0 < 0 or x0 + tw + 2 * pad > w or y0 + th + 2 * pad > h:
        return u, v
    crop = img[y0:y0 + th + 2 * pad, x0:x0 + tw + 2 * pad].astype(np.float32)
    # warp maps template coordinates into the crop: crop(x + tx, y + ty) ~ tpl(x, y)
    warp = np.array([[1, 0, u - hx - x0], [0, 1, v - hy - y0]], np.float32)
    tpl32 = tpl.astype(np.float32)
    try:
        _, warp = cv2.findTransformECC(tpl32, crop, warp, cv2.MOTION_TRANSLATION,
                                       (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100, 1e-5), None, 1)
    except cv2.error:
        return u, v
    nu, nv = x0 + float(warp[0, 2]) + hx, y0 + float(warp[1, 2]) + hy
    if math.hypot(nu - u, nv - v) > 1.0:
        return u, v
    return nu, nv


# -- bearings and the recalibration -------------------------------------------------------------------

def bearing(model: PtzCameraModel, px: ArrayLike, pan: float, tilt: float, zoom: float,
            temperature: float = math.nan, pan_direction: float = 1.0, tilt_direction: float = 1.0
            ) -> NDArray[np.float64]:
    """Unit ray(s) (N, 3), home frame, of pixel(s) ``px`` seen at the reported PTZ, every layer applied."""
    R, _ = reported_pose(model, pan, tilt, zoom, temperature, pan_direction, tilt_direction)
    K = corrected_camera_matrix(model, zoom, temperature)
    D = np.asarray(model.distortion(zoom), float)
    pts = np.asarray(px, float).reshape(-1, 1, 2)
    xy = cv2.undistortPointsIter(pts, K, D, None, None,
                                 (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-12))
    rays = np.concatenate([xy.reshape(-1, 2), np.ones((len(pts), 1))], axis=1) @ R.T
    return rays / np.linalg.norm(rays, axis=1, keepdims=True)


def _with_field(model: PtzCameraModel, rotvec: Sequence[float]) -> PtzCameraModel:
    """``model`` with its field layer replaced by ``rotvec`` (removed when zero)."""
    import dataclasses

    layers = layers_of(model)
    rv = tuple(float(x) for x in rotvec)
    new = layers.with_layer("field", FieldCorrection(rv) if any(rv) else None)
    return dataclasses.replace(model, corrections=new)


def search_radius_px(model: PtzCameraModel, zoom: float, max_correction: float, factor: float = 2.5,
                     margin: float = 8.0) -> float:
    """Search radius (px) that finds a landmark moved by ``factor`` x ``max_correction`` (rad):
    wide enough to measure (and report) a drift beyond the correction range."""
    K = model.camera_matrix(zoom)
    return float(factor * math.tan(max_correction) * max(K[0, 0], K[1, 1]) + margin)


@dataclass(frozen=True)
class Observation:
    """A landmark found now: pixel (u, v), registration score, and the reported state it was seen at."""

    name: str
    u: float
    v: float
    score: float
    pan: float = math.nan  # rad, reported (informative: the bearings use the landmark's PTZ)
    tilt: float = math.nan
    zoom_raw: float = math.nan
    temperature: float = math.nan


@dataclass(frozen=True)
class LandmarkOffset:
    """Per landmark: measured shift (px) from its stored pixel, score, residual (px) after the fit."""

    name: str
    dx: float
    dy: float
    score: float
    residual_px: float = math.nan

    @property
    def offset_px(self) -> float:
        return math.hypot(self.dx, self.dy)


@dataclass(frozen=True)
class RecalibrationResult:
    """The new field layer, the rotation measured now (``measured``, home frame) and the fit."""

    correction: FieldCorrection
    measured: NDArray[np.float64]
    offsets: list[LandmarkOffset]
    residual_px: float

    @property
    def angle(self) -> float:
        """Angle (rad) of the rotation measured now."""
        return float(np.linalg.norm(Rotation.from_matrix(self.measured).as_rotvec()))


def measure_offsets(landmarks: Sequence[Landmark], observations: Sequence[Observation]) -> list[LandmarkOffset]:
    """Pixel shift of each observation from its landmark's stored pixel (matched by name)."""
    by_name = {lm.name: lm for lm in landmarks}
    out = []
    for ob in observations:
        lm = by_name.get(ob.name)
        if lm is None:
            raise LandmarkError(f"observation of an unknown landmark {ob.name!r}")
        out.append(LandmarkOffset(ob.name, ob.u - lm.u, ob.v - lm.v, ob.score))
    return out


def recalibrate(model: PtzCameraModel, landmarks: Sequence[Landmark], observations: Sequence[Observation],
                max_correction: float = math.radians(1.0), created: str = "") -> RecalibrationResult:
    """The field layer that brings the observed landmarks back onto their stored bearings.

    One observation per landmark used (matched by name). Raises :class:`RecalibrationError`
    (with the measured offsets and angle) when the measured rotation exceeds ``max_correction``
    rad, and LandmarkError for inconsistent input. The model itself is not changed.
    """
    if not observations:
        raise LandmarkError("recalibrate needs at least one observation")
    if not max_correction > 0:
        raise LandmarkError(f"max_correction must be > 0 rad, got {max_correction}")
    by_name = {lm.name: lm for lm in landmarks}
    offsets = measure_offsets(landmarks, observations)
    ref, cur = [], []
    for ob in observations:
        lm = by_name[ob.name]
        t_now = ob.temperature if math.isfinite(ob.temperature) else lm.temperature
        ref.append(bearing(_with_field(model, lm.field_rotation_vector), lm.px, lm.pan, lm.tilt, lm.zoom_raw,
                           lm.temperature)[0])
        cur.append(bearing(model, (ob.u, ob.v), lm.pan, lm.tilt, lm.zoom_raw, t_now)[0])
    ref_a, cur_a = np.array(ref), np.array(cur)
    R_m = solve_field_rotation(ref_a, cur_a)
    angle = float(np.linalg.norm(Rotation.from_matrix(R_m).as_rotvec()))
    # residuals: where each landmark's reference bearing projects with the new model, vs found
    old = layers_of(model).active("field")
    R_old = np.eye(3) if old is None else old.matrix
    rv_new = Rotation.from_matrix(R_m @ R_old).as_rotvec()
    new_model = _with_field(model, rv_new)
    res = []
    for (ob, b) in zip(observations, ref_a):
        lm = by_name[ob.name]
        t_now = ob.temperature if math.isfinite(ob.temperature) else lm.temperature
        _, T = reported_pose(new_model, lm.pan, lm.tilt, lm.zoom_raw, t_now, 1.0, 1.0)
        uv = project(new_model, T + 1e4 * b, lm.pan, lm.tilt, lm.zoom_raw, t_now, 1.0, 1.0)[0]
        res.append(float(np.hypot(uv[0] - ob.u, uv[1] - ob.v)))
    offsets = [replace(o, residual_px=r) for o, r in zip(offsets, res)]
    rms = float(np.sqrt(np.mean(np.square(res))))
    if angle > max_correction:
        raise RecalibrationError(
            f"measured drift {math.degrees(angle):.3f} deg is beyond the correction range "
            f"{math.degrees(max_correction):.3f} deg (offsets "
            + ", ".join(f"{o.name} {o.dx:+.1f}/{o.dy:+.1f} px" for o in offsets) + "); nothing changed",
            offsets, angle, max_correction, rms)
    created = created or datetime.now(timezone.utc).isoformat(timespec="seconds")
    fc = FieldCorrection(tuple(float(x) for x in rv_new), created, len(observations), rms)
    return RecalibrationResult(fc, R_m, offsets, rms)


# -- repeatability ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RepeatabilityResult:
    """Shift (px) of the scene between two frames at the same reported setting, and its score."""

    dx: float
    dy: float
    score: float
    u: float  # px, the patch centre in the first frame
    v: float

    @property
    def offset_px(self) -> float:
        return math.hypot(self.dx, self.dy)


def repeatability(frame_a: ArrayLike, frame_b: ArrayLike, centre: Optional[tuple[float, float]] = None,
                  patch_size: int = 128, search_radius: float = 200.0, min_score: float = 0.6
                  ) -> RepeatabilityResult:
    """The pixel offset of frame B against frame A by registration of A's most textured spot
    (near ``centre``, default the image centre) inside B."""
    a, b = np.asarray(frame_a), np.asarray(frame_b)
    if a.shape != b.shape:
        raise LandmarkError(f"frames differ in size: {a.shape} vs {b.shape}")
    h, w = a.shape
    c = centre if centre is not None else ((w - 1) / 2.0, (h - 1) / 2.0)
    u, v, _ = pick_patch(a, patch_size, int(search_radius), near=c, max_distance=0.35 * min(w, h))
    patch, u, v = cut_patch(a, u, v, patch_size)
    px, score = register(patch, b, (u, v), search_radius, min_score)
    return RepeatabilityResult(float(px[0] - u), float(px[1] - v), score, u, v)


def expected_shift_px(model: PtzCameraModel, px: ArrayLike, pan: float, tilt: float, zoom: float,
                      temperature: float, directions_a: tuple[float, float], directions_b: tuple[float, float],
                      pan_b: Optional[float] = None, tilt_b: Optional[float] = None) -> NDArray[np.float64]:
    """Image shift (px) of a far point seen at ``px`` the model predicts between two arrivals at
    the reported setting after motions in ``directions_a`` and ``directions_b`` (pan, tilt: +1/-1):
    the pointing map's backlash by direction (zero without a pointing map)."""
    b = bearing(model, px, pan, tilt, zoom, temperature, *directions_a)[0]
    pb = pan if pan_b is None else pan_b
    tb = tilt if tilt_b is None else tilt_b
    _, T = reported_pose(model, pb, tb, zoom, temperature, *directions_b)
    uv = project(model, T + 1e4 * b, pb, tb, zoom, temperature, *directions_b)[0]
    return uv - np.asarray(px, float).ravel()[:2]


def recalibrate_file(path: str | os.PathLike, landmarks: Sequence[Landmark], observations: Sequence[Observation],
                     max_correction: float = math.radians(1.0), model: Optional[PtzCameraModel] = None,
                     dry_run: bool = False) -> tuple[RecalibrationResult, PtzCameraModel, Optional[Path]]:
    """:func:`recalibrate` the model of ``path`` (or ``model``, which must be the file's) and
    write it with the new field layer atomically, the previous file kept as ``<path>.bak``.

    Returns (result, new model, backup path or None). Any error (RecalibrationError,
    LandmarkError, OSError) leaves the file as it was; ``dry_run`` writes nothing.
    """
    import dataclasses

    from ..model.model_io import load_model, save_model

    target = Path(path).expanduser()
    base = model if model is not None else load_model(target)
    result = recalibrate(base, landmarks, observations, max_correction)
    new = dataclasses.replace(base, corrections=layers_of(base).with_layer("field", result.correction))
    if dry_run:
        return result, new, None
    backup = target.with_name(target.name + ".bak") if target.exists() else None
    save_model(new, target, backup=True)
    return result, new, backup
