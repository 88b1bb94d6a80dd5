"""The capture protocol: drive a simulated PTZ camera through a zoom sweep and pan/tilt sweeps and
write a dataset (``manifest.yaml`` + images) plus the simulator's ground truth (``truth.yaml``).

What the default rig's scene allows (``config/sim_rig.yaml``; left camera, 1280x720, fx 1102 px at
the widest zoom to 22040 px at 20x). Every board faces the rig, so when the camera looks at one
the board is seen almost fronto-parallel; the only change of viewing angle between views at one
zoom step comes from pointing the camera off the board by up to half the field of view: up to
~25 deg at the widest zoom, ~8 deg at 3x, ~1.5 deg at 20x. A board is fully used at a zoom step
(centre and offset views) when its squares are at least ``min_square_px`` (checkerboard, 12 px)
or ``min_charuco_square_px`` (ChArUco, 40 px) wide; a ChArUco board also gives a centre view only
(a link between zoom steps, see below) down to ``link_charuco_square_px`` (28 px). Smaller boards
do not link well: the scale ratio between two zoom steps of a ChArUco board with 21-26 px squares
was off by 300-400 ppm, of a checkerboard with 9-11 px squares by up to 800 ppm (corner biases
that change with the square size), against < 30 ppm for 27-60 px checkerboard squares. A
checkerboard must fit into the image whole, a ChArUco board may overfill it (partial views are
detected) but 3 squares must fit. A board is not used while a look-alike shows enough of itself
(a checkerboard with at least as many corners each way, of which at least as many corners as the
wanted board has are in view: OpenCV finds a smaller pattern inside a larger board; any part of a
ChArUco board of the same dictionary). Measured on the default rig (raw zoom, left camera):

================  ========  ====================  ============================  ===========
board             distance  squares               full / link use by size       default plan
================  ========  ====================  ============================  ===========
near_checkerboard 1.8 m     12x5 corners, 50 mm   (not measured)                0-6899
big_checkerboard  4.0 m     10x7 corners, 100 mm  0-6592 / -                    0-6036
charuco_board     4.8 m     10x7 squares, 90 mm   5568-14144 / 3200-5504        3449-13797 (gaps)
mid_checkerboard  8.1 m     8x6 corners, 50 mm    5056-13952 / -                5174-10348
far_checkerboard  13.9 m    10x7 corners, 30 mm   10624-16384 / -               11210-16384
far_charuco       18.2 m    7x5 squares, 40 mm    15616-16384 / 14208-15552     14659-16384
tele_charuco      2.8 m     10x8 squares, 25 mm   (not measured)                12935-16384
bridge_charuco    2.4 m     10x7 squares, 60 mm   (not measured)                862-2587, 6899-12935
================  ========  ====================  ============================  ===========

So below raw ~3400 the near and the big boards are seen (1.8 and 4 m), and from ~5000 on two or
three boards at different distances. The small tele board gives the long focal lengths a NEAR
distance (usable from raw ~8600; it overfills the image at the longest steps): without it the
longest steps saw only boards at 13.9 and 18.2 m, whose scale ratio hardly changes with the optical
centre's zoom translation (1/13.9 - 1/18.2 = 0.017 /m against 0.28 /m with 2.8 m), and the
translation came out 2-15 mm off at 20x (the stereo rig's translation error at long zoom: median
0.29-0.57 %, up to 2 %). (The near board was added for the kinematic calibration: with the big
board alone, the widest steps saw one distance, and a turn about an axis behind the optical centre
then looks like a change of focal length: with 0.2 px corner noise the focal length came out 1.8 %
low and the radius vectors 74 mm off.) A near board's distance is itself known only where a step
also sees a board whose distance is known, so the near distance has to be handed on from step to
step: the near checkerboard is whole only up to raw ~6900 and the tele board's squares are too
small below ~8600, and with 8 zoom steps no step saw both. The long steps' zoom translation then
moved as one block (std 0.8 mm on the rendered corners, 2.9 mm with 0.2 px of corner noise). The
bridge board (2.4 m, 60 mm squares, usable from raw ~1500 to ~13000) spans that gap, and the choice
of boards below makes a step where the nearest board changes also see the other one (std 0.2 and
1.8 mm).

At long focal lengths every view is within ~2 deg of fronto-parallel and Zhang's method alone
cannot determine the focal length there (it reports a standard deviation of several percent; see
:mod:`.zoom_fit`, which links the zoom steps through views of the same board at the same pan/tilt).
The protocol therefore, at every zoom step:

* picks up to ``max_targets_per_step`` usable boards, preferring boards at *different distances*
  (the nearest and the farthest first: the optical centre moves along the axis with zoom, and two
  distances separate that from the change of focal length), then a board that is the nearest at
  a neighbouring step (it hands the near distance on), then the largest in the image;
* takes one **centre view** of each: the board in the middle of the image, at a pan/tilt that is
  the same at every zoom step where the board is used (these link the zoom steps);
* spends the remaining views on **offset views** of the fully usable boards (in turn, the largest
  first): the camera turned by ``offset_fraction`` of the free field so the board lands near the
  image corners and edges, which gives Zhang's method what viewing-angle spread the scene allows.

At the widest zoom it adds a **pan sweep** and a **tilt sweep** of the largest board (like
Mao et al. and Sanchez-Riera et al.), across ``sweep_fraction`` of the pan (tilt) range over
which that board stays whole in the image, and the same of up to ``sweep_boards - 1`` boards at
other distances: turning the head about an axis behind the optical centre looks, on a board at
ONE distance Z, like a focal length scaled by (1 + m/Z) (m the radius vector's forward part), so
only boards at two distances separate the focal length from the radius vectors. Every pose is approached from below (pan and tilt
first move ``approach`` rad short of the target), so the head's backlash is taken up the same
way at every view, as one does with a real head.

Planning (which board is usable, where to point) uses the rig file's geometry: the nominal
directions of the boards from the mount and the rig model's focal length. It only decides where
to look; the manifest records what the head REPORTS (encoder feedback, temperature, image stamp),
the feedback averaged over ``feedback_readings`` reads while the head is at rest before the
exposure (one read carries the encoder noise: 0.004 deg in the default rig, which is 0.08 px at
the widest zoom and, through the synchronized pairs' geometry, ~0.01 deg of error in the rig's
home rotation; 10 reads make it a third), and ``truth.yaml`` what really happened (load angles through backlash and periodic error, true
camera matrix with thermal drift, true pose) for evaluation.

Time is simulated: the camera runs on an injectable clock that the protocol advances to each
move's arrival plus ``settle`` plus the frame latency, so a run takes as long as rendering does.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Optional

import cv2
import numpy as np
import yaml

from ..fileio import atomic_write_text
from ..model import model_to_dict
from ..simulation import CameraSpec, Rig, SimFeedback, SimulatedPtzCamera, load_rig
from ..simulation.targets import CharucoTarget, Checkerboard, PlacedTarget
from .dataset import Capture, save_manifest

__all__ = [
    "SimClock",
    "ProtocolOptions",
    "PlannedView",
    "ProtocolPlan",
    "SimulationResult",
    "plan_protocol",
    "run_protocol",
    "simulate_dataset",
    "TRUTH_FORMAT",
]

TRUTH_FORMAT = "ptz_calibration/dataset_truth"

Progress = Callable[[int, int, str], None]

# unit directions of the offset views (image x right, y down), corners first
_OFFSET_PATTERN = ((1, 1), (-1, -1), (1, -1), (-1, 1), (1, 0), (-1, 0), (0, 1), (0, -1),
                   (0.5, 0.5), (-0.5, -0.5), (0.5, -0.5), (-0.5, 0.5))


class SimClock:
    """A settable clock for the simulated camera: time moves only when the protocol moves it."""

    def __init__(self, start: float = 1000.0) -> None:
        self.t = float(start)

    def __call__(self) -> float:
        return self.t

    def advance_to(self, t: float) -> None:
        """Move to time ``t`` (never backwards)."""
        self.t = max(self.t, float(t))

    def sleep(self, dt: float) -> None:
        """Let ``dt`` seconds pass."""
        self.t += max(0.0, float(dt))


@dataclass(frozen=True)
class ProtocolOptions:
    """Settings of the capture protocol (defaults: the default dataset, ~200 images)."""

    zoom_steps: int = 20  # zoom steps evenly spaced in raw zoom over the camera's range
    views_per_step: int = 8  # images per zoom step
    zoom_values: Optional[tuple[float, ...]] = None  # explicit raw zooms (instead of zoom_steps)
    pan_sweep: int = 15  # images of each pan sweep at the widest zoom (0: none)
    tilt_sweep: int = 11  # images of each tilt sweep at the widest zoom (0: none)
    sweep_boards: int = 2  # boards swept (the largest checkerboard, then others at other distances)
    sweep_fraction: float = 0.8  # of the pan (tilt) range over which the board stays whole
    offset_fraction: float = 0.8  # offset views: fraction of the free field the camera turns
    max_targets_per_step: int = 3
    targets: Optional[tuple[str, ...]] = None  # scene boards to use (default: all)
    min_square_px: float = 12.0  # checkerboard squares at least this wide: centre and offset views
    min_charuco_square_px: float = 40.0  # ChArUco squares for centre and offset views
    link_square_px: float = 12.0  # smaller checkerboards down to this: a centre view only (a link)
    # (equal to min_square_px: smaller checkerboards link badly, see the module notes)
    link_charuco_square_px: float = 28.0  # smaller ChArUco boards down to this: a centre view only
    edge_margin_px: float = 24.0  # keep a whole checkerboard this far inside the image
    settle: float = 0.3  # s after a move arrives before the exposure may start
    approach: float = math.radians(0.5)  # rad, approach every pose from below (0: directly)
    feedback_readings: int = 10  # feedback reads averaged per image, 20 ms apart, the head at rest
    image_format: str = "png"  # png (lossless) or tif
    seed: int = 0

    def __post_init__(self) -> None:
        if self.zoom_values is None and self.zoom_steps < 1:
            raise ValueError(f"zoom_steps must be >= 1, got {self.zoom_steps}")
        if self.views_per_step < 1:
            raise ValueError(f"views_per_step must be >= 1, got {self.views_per_step}")
        if self.sweep_boards < 1:
            raise ValueError("sweep_boards must be >= 1")
        if self.pan_sweep < 0 or self.tilt_sweep < 0:
            raise ValueError("pan_sweep and tilt_sweep must be >= 0")
        if not 0 < self.sweep_fraction <= 1 or not 0 <= self.offset_fraction <= 1:
            raise ValueError("sweep_fraction must be in (0, 1] and offset_fraction in [0, 1]")
        if self.max_targets_per_step < 1:
            raise ValueError("max_targets_per_step must be >= 1")
        if self.settle < 0 or self.approach < 0:
            raise ValueError("settle and approach must be >= 0")
        if self.feedback_readings < 1:
            raise ValueError(f"feedback_readings must be >= 1, got {self.feedback_readings}")
        if self.image_format not in ("png", "tif"):
            raise ValueError(f"image_format must be 'png' or 'tif', got {self.image_format!r}")
        if self.zoom_values is not None:
            object.__setattr__(self, "zoom_values", tuple(float(z) for z in self.zoom_values))
            if not self.zoom_values:
                raise ValueError("zoom_values must not be empty")
        if self.targets is not None:
            object.__setattr__(self, "targets", tuple(self.targets))


@dataclass(frozen=True)
class PlannedView:
    """One image of the protocol: where to point (commanded) and what it shows."""

    tag: str  # "zoom_sweep", "pan_sweep" or "tilt_sweep"
    target: str  # scene board name
    pan: float  # rad, commanded
    tilt: float  # rad, commanded
    zoom: float  # raw, commanded
    role: str  # "centre", "offset" or "sweep"
    step: int = -1  # zoom step index (zoom sweep)


@dataclass
class ProtocolPlan:
    """The views to take, and the zoom steps where no board could be used."""

    views: list[PlannedView]
    zooms: list[float]
    skipped: list[str] = field(default_factory=list)
    targets_by_step: dict[int, list[str]] = field(default_factory=dict)


@dataclass
class SimulationResult:
    """What :func:`run_protocol` wrote."""

    folder: Path
    manifest: Path
    truth: Path
    camera: str
    captures: int
    plan: ProtocolPlan
    simulated_time: float  # s of simulated time the protocol took
    timing: dict[str, float]  # s of wall time: render, write, total

    def to_dict(self) -> dict[str, Any]:
        return {"folder": str(self.folder), "manifest": str(self.manifest), "truth": str(self.truth),
                "camera": self.camera, "captures": self.captures,
                "zoom_steps": len(self.plan.zooms), "zooms": [float(z) for z in self.plan.zooms],
                "targets_by_step": {str(k): v for k, v in self.plan.targets_by_step.items()},
                "skipped": list(self.plan.skipped),
                "simulated_time_s": round(self.simulated_time, 3),
                "timing_s": {k: round(v, 3) for k, v in self.timing.items()}}


# -- planning ------------------------------------------------------------------------------------
def _aim(spec: CameraSpec, point_world: np.ndarray) -> tuple[float, float]:
    """Nominal (pan, tilt) that points an ideal head on the mount at a world point."""
    d = spec.mount_R.T @ (np.asarray(point_world, float) - spec.mount_t)  # mount: x fwd, y left, z up
    return math.atan2(d[1], d[0]), math.atan2(d[2], math.hypot(d[0], d[1]))


def _optical_axes(pan: float, tilt: float) -> np.ndarray:
    """Rows x (right), y (down), z (forward) of an ideal camera at (pan, tilt), in the mount frame."""
    cp, sp, ct, st = math.cos(pan), math.sin(pan), math.cos(tilt), math.sin(tilt)
    z = np.array([ct * cp, ct * sp, st])
    x = np.array([sp, -cp, 0.0])
    return np.stack([x, np.cross(z, x), z])


def _centre(placed: PlacedTarget) -> np.ndarray:
    x0, y0, x1, y1 = placed.target.extent
    return placed.R @ np.array([(x0 + x1) / 2, (y0 + y1) / 2, 0.0]) + placed.t


@dataclass(frozen=True)
class _Look:
    """A board as seen at one zoom with the camera pointed at its centre."""

    name: str
    pan: float
    tilt: float
    distance: float  # m
    width_px: float  # board (with quiet zone) in the image
    height_px: float
    square_px: float
    free_x: float  # rad of pan (at the board's tilt) the board centre may move either way
    free_y: float  # rad of tilt
    use: str  # "full" (centre and offset views), "link" (centre view only) or "" (not usable)
    why: str = ""


def _look(spec: CameraSpec, placed: PlacedTarget, zoom: float, options: ProtocolOptions) -> _Look:
    model = spec.model
    K = np.asarray(model.camera_matrix(zoom), dtype=float)
    f = 0.5 * (K[0, 0] + K[1, 1])
    w, h = model.image_width, model.image_height
    centre = _centre(placed)
    pan, tilt = _aim(spec, centre)
    distance = float(np.linalg.norm(spec.mount_R.T @ (centre - spec.mount_t)))
    uv = _project(spec, placed.outline_world(8), pan, tilt, f)
    if uv is None:
        return _Look(placed.name, pan, tilt, distance, 0, 0, 0, 0, 0, "", "behind the camera")
    width, height = float(np.ptp(uv[:, 0])), float(np.ptp(uv[:, 1]))
    square_px = placed.target.square * f / distance
    lim = model.limits
    margin = options.edge_margin_px
    if isinstance(placed.target, Checkerboard):
        fits = width <= w - 2 * margin and height <= h - 2 * margin
        free_x = max(0.0, (w - width) / 2 - margin)
        free_y = max(0.0, (h - height) / 2 - margin)
        full, link = options.min_square_px, options.link_square_px
        why = "" if fits else f"does not fit whole ({width:.0f}x{height:.0f} px)"
    else:  # ChArUco: partial views; at least 3 squares across the short side of the image
        fits = square_px * 3 <= min(w, h)
        free_x = max((w - width) / 2 - margin, 0.3 * w)
        free_y = max((h - height) / 2 - margin, 0.3 * h)
        full, link = options.min_charuco_square_px, options.link_charuco_square_px
        why = "" if fits else f"squares too large ({square_px:.0f} px): fewer than 3 fit"
    use = "full" if square_px >= full else "link" if square_px >= link else ""
    if not use:
        why = f"squares too small ({square_px:.1f} px < {link:g} px)"
    elif not fits:
        use = ""
    if not (lim.pan_min <= pan <= lim.pan_max and lim.tilt_min <= tilt <= lim.tilt_max):
        use, why = "", "outside the pan/tilt limits"
    return _Look(placed.name, pan, tilt, distance, width, height, square_px,
                 math.atan(free_x / f) / max(math.cos(tilt), 1e-3), math.atan(free_y / f), use, why)


def _project(spec: CameraSpec, points_world: np.ndarray, pan: float, tilt: float, f: float) -> Optional[np.ndarray]:
    """Nominal pixel offsets from the image centre (ideal camera at pan, tilt), None if behind."""
    cam = ((points_world - spec.mount_t) @ spec.mount_R) @ _optical_axes(pan, tilt).T
    if np.any(cam[:, 2] <= 0):
        return None
    return f * cam[:, :2] / cam[:, 2:3]


def _confusable(a: PlacedTarget, b: PlacedTarget) -> bool:
    """True if a detector looking for ``a`` could find ``b`` instead: a checkerboard with at least
    as many corners each way (findChessboardCorners finds a smaller pattern inside a larger board),
    or a ChArUco board of the same dictionary (their marker ids overlap)."""
    ta, tb = a.target, b.target
    if isinstance(ta, Checkerboard) and isinstance(tb, Checkerboard):
        return ((tb.rows >= ta.rows and tb.cols >= ta.cols)
                or (tb.rows >= ta.cols and tb.cols >= ta.rows))
    if isinstance(ta, CharucoTarget) and isinstance(tb, CharucoTarget):
        return ta.dictionary == tb.dictionary
    return False


#: squares (px) below which a board cannot be detected (checkerboard corners, ChArUco markers)
_UNDETECTABLE_PX = {Checkerboard: 4.0, CharucoTarget: 10.0}


def _clear_view(spec: CameraSpec, rig: Rig, view: PlannedView) -> bool:
    """No detectable board confusable with the view's board is (nominally) inside the image."""
    mine = rig.scene.target(view.target)
    model = spec.model
    K = np.asarray(model.camera_matrix(view.zoom), dtype=float)
    f = 0.5 * (K[0, 0] + K[1, 1])
    half = np.array([model.image_width, model.image_height]) / 2 + 20.0
    for other in rig.scene.targets:
        if other.name == mine.name or not _confusable(mine, other):
            continue
        distance = float(np.linalg.norm(_centre(other) - spec.mount_t))
        if other.target.square * f / distance < _UNDETECTABLE_PX[type(other.target)]:
            continue
        if isinstance(other.target, Checkerboard):  # a look-alike needs enough of its corners in view
            uv = _project(spec, other.object_points_world(), view.pan, view.tilt, f)
            inside = 0 if uv is None else int(np.sum(np.all(np.abs(uv) < half, axis=1)))
            if inside >= len(mine.target.object_points()):
                return False
            continue
        uv = _project(spec, other.outline_world(8), view.pan, view.tilt, f)
        if uv is not None and np.any(np.all(np.abs(uv) < half, axis=1)):
            return False
    return True


def _nearest(looks: list[_Look]) -> Optional[str]:
    """The nearest usable board's name (None if none is usable)."""
    usable = [lk for lk in looks if lk.use]
    return min(usable, key=lambda lk: lk.distance).name if usable else None


def _choose(looks: list[_Look], n: int, neighbours_nearest: tuple[Optional[str], ...] = ()) -> list[_Look]:
    """Up to ``n`` usable boards: the nearest and the farthest first, then a board that is the
    nearest at a neighbouring zoom step (``neighbours_nearest``: so every near board is seen at a
    step together with the near board before it, see the module notes), then fully usable ones,
    then the largest."""
    usable = [lk for lk in looks if lk.use]
    if len(usable) <= n:
        return sorted(usable, key=lambda lk: lk.distance)
    by_distance = sorted(usable, key=lambda lk: lk.distance)
    chosen = [by_distance[0], by_distance[-1]][:n]
    rest = sorted((lk for lk in usable if lk not in chosen),
                  key=lambda lk: (lk.name not in neighbours_nearest, lk.use != "full",
                                  -lk.width_px * lk.height_px))
    chosen += rest[: n - len(chosen)]
    return sorted(chosen, key=lambda lk: lk.distance)


def _distance(spec: CameraSpec, rig: Rig, name: str) -> float:
    """Distance (m) from the camera's mount to a board's centre."""
    return float(np.linalg.norm(_centre(rig.scene.target(name)) - spec.mount_t))


def plan_protocol(spec: CameraSpec, rig: Rig, options: ProtocolOptions = ProtocolOptions()) -> ProtocolPlan:
    """The views of the protocol for one camera of ``rig`` (see the module notes)."""
    lo, hi = spec.mechanics.zoom.min, spec.mechanics.zoom.max
    if options.zoom_values is not None:
        zooms = sorted(float(np.clip(z, lo, hi)) for z in options.zoom_values)
    elif options.zoom_steps == 1:
        zooms = [float(lo)]
    else:
        zooms = [float(round(z)) for z in np.linspace(lo, hi, options.zoom_steps)]
    placed = [p for p in rig.scene.targets if options.targets is None or p.name in options.targets]
    if options.targets is not None:
        missing = sorted(set(options.targets) - {p.name for p in placed})
        if missing:
            raise ValueError(f"no scene target named {missing[0]!r} (scene: "
                             f"{', '.join(p.name for p in rig.scene.targets)})")
    if not placed:
        raise ValueError("the scene has no calibration targets")
    views: list[PlannedView] = []
    skipped: list[str] = []
    by_step: dict[int, list[str]] = {}
    looks_by_step = []
    for zoom in zooms:
        looks = [_look(spec, p, zoom, options) for p in placed]
        for i, lk in enumerate(looks):  # a board whose centre view shows a look-alike is not used
            if lk.use and not _clear_view(spec, rig, PlannedView("", lk.name, lk.pan, lk.tilt, zoom, "centre")):
                looks[i] = replace(lk, use="", why="a board of the same pattern is in view")
        looks_by_step.append(looks)
    nearest = [_nearest(looks) for looks in looks_by_step]
    for k, (zoom, looks) in enumerate(zip(zooms, looks_by_step)):
        neighbours = tuple(nearest[j] for j in (k - 1, k + 1) if 0 <= j < len(zooms))
        chosen = _choose(looks, min(options.max_targets_per_step, options.views_per_step), neighbours)
        if not chosen:
            reasons = "; ".join(f"{lk.name}: {lk.why}" for lk in looks)
            skipped.append(f"zoom {zoom:g}: no usable board ({reasons})")
            continue
        by_step[k] = [lk.name for lk in chosen]
        step_views = [PlannedView("zoom_sweep", lk.name, lk.pan, lk.tilt, zoom, "centre", k) for lk in chosen]
        full = [lk for lk in chosen if lk.use == "full"] or chosen
        order = sorted(full, key=lambda lk: -lk.width_px * lk.height_px)
        candidates = []
        for i in range(len(_OFFSET_PATTERN) * len(order)):
            lk = order[i % len(order)]  # boards in turn, the offsets in turn across all boards
            ux, uy = _OFFSET_PATTERN[i % len(_OFFSET_PATTERN)]
            # turning the camera left (positive pan) moves the board right in the image
            candidates.append(PlannedView("zoom_sweep", lk.name, lk.pan - ux * options.offset_fraction * lk.free_x,
                                          lk.tilt + uy * options.offset_fraction * lk.free_y, zoom, "offset", k))
        for view in candidates:
            if len(step_views) >= options.views_per_step:
                break
            if _clear_view(spec, rig, view):
                step_views.append(view)
        views += step_views
    widest = zooms[0]
    if options.pan_sweep or options.tilt_sweep:
        looks = [lk for lk in (_look(spec, p, widest, options) for p in placed) if lk.use == "full"]
        looks = sorted(looks, key=lambda x: (not isinstance(rig.scene.target(x.name).target, Checkerboard),
                                             -x.width_px * x.height_px))
        if looks:
            chosen_sweeps = [looks[0]]
            if options.sweep_boards > 1:  # then boards at other distances, the most different first
                rest = sorted(looks[1:], key=lambda x: -abs(math.log(_distance(spec, rig, x.name)
                                                                    / _distance(spec, rig, looks[0].name))))
                chosen_sweeps += rest[:options.sweep_boards - 1]
            for lk in chosen_sweeps:
                for n, axis in ((options.pan_sweep, "pan"), (options.tilt_sweep, "tilt")):
                    span = options.sweep_fraction * (lk.free_x if axis == "pan" else lk.free_y)
                    for s in (np.linspace(-span, span, n).tolist() if n > 1 else [0.0] * n):
                        pan, tilt = (lk.pan + s, lk.tilt) if axis == "pan" else (lk.pan, lk.tilt + s)
                        view = PlannedView(f"{axis}_sweep", lk.name, pan, tilt, widest, "sweep")
                        if _clear_view(spec, rig, view):
                            views.append(view)
        else:
            skipped.append(f"pan/tilt sweeps: no fully usable board at the widest zoom {widest:g}")
    return ProtocolPlan(views, zooms, skipped, by_step)


# -- running -------------------------------------------------------------------------------------
def _move_and_settle(cam: SimulatedPtzCamera, clock: SimClock, view: PlannedView, options: ProtocolOptions) -> None:
    if options.approach > 0:
        cam.move_absolute(view.pan - options.approach, view.tilt - options.approach, view.zoom)
        clock.advance_to(cam.arrival_time())
    cam.move_absolute(view.pan, view.tilt, view.zoom)
    timing = cam.spec.timing
    # settle, then wait for a frame exposed entirely after settling to be delivered
    clock.advance_to(cam.arrival_time() + options.settle + timing.exposure + timing.latency
                     + 1.0 / timing.frame_rate)


def feedback_at_rest(cam: SimulatedPtzCamera, t: float, readings: int = 10, period: float = 0.02) -> SimFeedback:
    """The head's feedback at ``t`` with pan, tilt, zoom and temperature averaged over ``readings``
    reads ``period`` apart ending at ``t`` (the head at rest over that time)."""
    reads = [cam.feedback(t - k * period) for k in range(readings)]
    mean = np.mean([(f.pan, f.tilt, f.zoom_raw, f.temperature) for f in reads], axis=0)
    return replace(reads[0], pan=float(mean[0]), tilt=float(mean[1]), zoom_raw=float(mean[2]),
                   temperature=float(mean[3]))


def _matrix(a: np.ndarray) -> list:
    return [[float(v) for v in row] for row in np.asarray(a, dtype=float)]


def run_protocol(rig: Rig, camera: str, folder: str | os.PathLike,
                 options: ProtocolOptions = ProtocolOptions(), progress: Optional[Progress] = None,
                 rig_source: Optional[str] = None, overwrite: bool = False) -> SimulationResult:
    """Run the protocol on the simulated ``camera`` of ``rig`` and write the dataset to ``folder``.

    Writes ``folder/images/*.png``, then ``folder/truth.yaml`` and last ``folder/manifest.yaml``
    (atomically: a dataset with a manifest is complete). Refuses a folder that already holds a
    dataset unless ``overwrite``.
    """
    if camera not in rig.cameras:
        raise ValueError(f"no camera {camera!r} in the rig (cameras: {', '.join(rig.cameras)})")
    spec = rig.cameras[camera]
    out = Path(folder).expanduser()
    if (out / "manifest.yaml").exists() and not overwrite:
        raise FileExistsError(f"{out} already holds a dataset (manifest.yaml); choose another folder "
                              "or overwrite it")
    plan = plan_protocol(spec, rig, options)
    if not plan.views:
        raise ValueError("the protocol has no views: " + "; ".join(plan.skipped))
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    clock = SimClock()
    cam = SimulatedPtzCamera(spec, rig.scene, seed=options.seed, clock=clock)
    start = clock()
    captures: list[Capture] = []
    truths: list[dict[str, Any]] = []
    used_targets: dict[str, PlacedTarget] = {}
    t_render = t_write = 0.0
    wall = time.perf_counter()
    ext = ".png" if options.image_format == "png" else ".tif"
    params = [cv2.IMWRITE_PNG_COMPRESSION, 1] if ext == ".png" else []
    for i, view in enumerate(plan.views):
        _move_and_settle(cam, clock, view, options)
        fb = feedback_at_rest(cam, clock(), options.feedback_readings)
        t0 = time.perf_counter()
        frame = cam.capture()
        t1 = time.perf_counter()
        name = f"images/{camera}_{i:04d}{ext}"
        ok, data = cv2.imencode(ext, frame.image, params)
        if not ok:
            raise OSError(f"cannot encode {name}")
        data.tofile(str(out / name))
        t_write += time.perf_counter() - t1
        t_render += t1 - t0
        placed = rig.scene.target(view.target)
        used_targets[view.target] = placed
        captures.append(Capture(image=name, camera=camera, pan=fb.pan, tilt=fb.tilt, zoom=fb.zoom_raw,
                                temperature=fb.temperature, stamp=frame.stamp, target=view.target,
                                tag=view.tag))
        t_exp = frame.exposure_time
        true = cam.true_state(t_exp)
        R, t = cam.true_pose_world(t_exp)
        truths.append({
            "index": i, "image": name, "pan": float(true.pan), "tilt": float(true.tilt),
            "zoom": float(true.zoom_raw), "temperature": float(true.temperature),
            "exposure_time": float(t_exp), "commanded": {"pan": view.pan, "tilt": view.tilt, "zoom": view.zoom},
            "role": view.role, "step": view.step,
            "camera_matrix": _matrix(cam.true_camera_matrix(t_exp)),
            "distortion": [float(v) for v in cam.true_distortion(t_exp)],
            "world_from_optical": {"R": _matrix(R), "t": [float(v) for v in t]},
        })
        if progress is not None:
            progress(i + 1, len(plan.views), name)
    targets = {name: used_targets[name].target for name in sorted(used_targets)}
    zm = spec.model.zoom_mapping
    metadata = {
        "generator": "ptz-calib simulate",
        "rig": rig_source or rig.source,
        "camera": camera,
        "seed": options.seed,
        "protocol": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(options).items()},
        "truth": "truth.yaml",
    }
    truth = {
        "format": TRUTH_FORMAT, "format_version": 1,
        "rig": rig_source or rig.source, "camera": camera, "seed": options.seed,
        "world_frame": rig.world_frame,
        "model": model_to_dict(spec.model),
        "world_from_mount": {"R": _matrix(spec.mount_R), "t": [float(v) for v in spec.mount_t]},
        "world_from_home_optical": {"R": _matrix(spec.home_R), "t": [float(v) for v in spec.mount_t]},
        "thermal": {"calibration_temperature": spec.thermal.calibration_temperature,
                    "focal_ppm": spec.thermal.focal_ppm},
        "targets": {name: {"world_from_target": {"R": _matrix(p.R), "t": [float(v) for v in p.t]}}
                    for name, p in sorted(used_targets.items())},
        "captures": truths,
    }
    truth_path = atomic_write_text(out / "truth.yaml", "# simulator ground truth of the dataset in this "
                                   "folder (not used for calibration)\n"
                                   + yaml.safe_dump(truth, sort_keys=False, default_flow_style=None, width=120))
    manifest = save_manifest(out, targets, captures, (zm.raw_min, zm.raw_max), metadata)
    total = time.perf_counter() - wall
    return SimulationResult(out, manifest, truth_path, camera, len(captures), plan, clock() - start,
                            {"render": t_render, "write": t_write, "total": total})


def simulate_dataset(rig_path: str | os.PathLike | None, folder: str | os.PathLike, camera: Optional[str] = None,
                     options: ProtocolOptions = ProtocolOptions(), progress: Optional[Progress] = None,
                     overwrite: bool = False) -> SimulationResult:
    """:func:`run_protocol` on a rig file (default: the package's ``config/sim_rig.yaml``);
    ``camera`` defaults to the rig's first camera."""
    rig = load_rig(rig_path)
    name = camera or next(iter(rig.cameras))
    return run_protocol(rig, name, folder, options, progress, str(rig.source), overwrite)


def load_truth(folder: str | os.PathLike) -> dict[str, Any]:
    """The ``truth.yaml`` of a simulated dataset folder (plain data)."""
    path = Path(folder).expanduser()
    path = path / "truth.yaml" if path.is_dir() else path
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("format") != TRUTH_FORMAT:
        raise ValueError(f"{path}: not a {TRUTH_FORMAT} file")
    return data


__all__.append("load_truth")


# -- two cameras ---------------------------------------------------------------------------------
STEREO_TAG = "stereo"


@dataclass(frozen=True)
class StereoOptions:
    """Synchronized views for the rig calibration, each exposed by one hardware trigger: both
    cameras at the widest zoom look at a board both see, each pointed at it with small random
    offsets; then both zoomed in on the far boards ("tele" pairs, below)."""

    views_per_board: int = 8
    offset_deg: float = 4.0  # random pan/tilt offsets of each camera (board stays in view)
    targets: Optional[tuple[str, ...]] = None  # default: every checkerboard both cameras see whole
    seed: int = 0
    settle: float = 0.3  # s
    # tele pairs: every board at least ``tele_min_distance`` away, each camera zoomed until
    # the board spans ``tele_fill`` of the image width (at most the longest zoom). A board's depth
    # comes from its size in the image, so a focal error e turns the fitted rig about the vertical
    # by e * baseline / distance, which sets the range of far targets: far boards shrink it (see
    # rig_calibration's module notes).
    tele_views_per_board: int = 4
    tele_min_distance: float = 6.0  # m
    tele_fill: float = 0.6


def _tele_zoom(spec: CameraSpec, placed: PlacedTarget, fill: float, options: ProtocolOptions) -> float:
    """Raw zoom (integer, within the range) at which ``placed`` spans ``fill`` of the image width."""
    zm = spec.model.zoom_mapping
    grid = np.linspace(zm.raw_min, zm.raw_max, 65)
    widths = np.array([_look(spec, placed, z, options).width_px for z in grid])
    target = fill * spec.model.image_width
    if widths[-1] <= target:
        return float(zm.raw_max)
    return float(np.round(np.interp(target, widths, grid)))


def run_stereo_protocol(rig: Rig, left: str, right: str, folder: str | os.PathLike,
                        options: StereoOptions = StereoOptions(), protocol: ProtocolOptions = ProtocolOptions(),
                        progress: Optional[Progress] = None, overwrite: bool = False,
                        per_camera: bool = True) -> dict[str, Any]:
    """Write a dual dataset: ``folder/<left>`` and ``folder/<right>`` (each camera's own protocol,
    :func:`run_protocol`; not with ``per_camera=False``) and ``folder/stereo``: synchronized pairs
    (tag ``stereo``; the two captures of a pair share the trigger stamp) with a ``truth.yaml``
    holding both cameras' truth."""
    out = Path(folder).expanduser()
    results = {}
    for name in ((left, right) if per_camera else ()):
        results[name] = run_protocol(rig, name, out / name, protocol, progress, str(rig.source), overwrite)
    stereo = out / "stereo"
    if (stereo / "manifest.yaml").exists() and not overwrite:
        raise FileExistsError(f"{stereo} already holds a dataset (manifest.yaml)")
    (stereo / "images").mkdir(parents=True, exist_ok=True)
    clock = SimClock()
    cams = {n: SimulatedPtzCamera(rig.cameras[n], rig.scene, seed=options.seed + 100, clock=clock) for n in (left, right)}
    rng = np.random.default_rng(options.seed)
    boards = []  # (board, looks of both cameras, zooms of both cameras, views)
    tele = []
    wide = [cams[n].spec.model.zoom_mapping.raw_min for n in (left, right)]
    for placed in rig.scene.targets:
        if options.targets is not None and placed.name not in options.targets:
            continue
        looks = [_look(rig.cameras[n], placed, z, protocol) for n, z in zip((left, right), wide)]
        if isinstance(placed.target, Checkerboard) and all(lk.use == "full" for lk in looks):
            boards.append((placed, looks, wide, options.views_per_board))
        if options.tele_views_per_board > 0 and min(_distance(rig.cameras[n], rig, placed.name)
                                                    for n in (left, right)) >= options.tele_min_distance:
            zooms = [_tele_zoom(rig.cameras[n], placed, options.tele_fill, protocol) for n in (left, right)]
            looks = [_look(rig.cameras[n], placed, z, protocol) for n, z in zip((left, right), zooms)]
            if all(lk.use == "full" for lk in looks):
                tele.append((placed, looks, zooms, options.tele_views_per_board))
    if not boards:
        raise ValueError("no checkerboard of the scene is fully usable by both cameras at the widest zoom")
    boards += tele
    captures: list[Capture] = []
    truths: list[dict[str, Any]] = []
    params = [cv2.IMWRITE_PNG_COMPRESSION, 1]
    k = 0
    total = sum(b[3] for b in boards)
    for placed, looks, zooms, views_per_board in boards:
        for _ in range(views_per_board):
            for _attempt in range(20):
                views = {}
                for n, lk, z in zip((left, right), looks, zooms):
                    off = np.radians(options.offset_deg) * rng.uniform(-1, 1, 2)
                    frac = np.clip(off / np.maximum([lk.free_x, lk.free_y], 1e-6), -0.9, 0.9)
                    views[n] = PlannedView(STEREO_TAG, placed.name, lk.pan + frac[0] * lk.free_x,
                                           lk.tilt + frac[1] * lk.free_y, z, "sweep")
                if all(_clear_view(rig.cameras[n], rig, views[n]) for n in views):
                    break
            for n in (left, right):
                _move_and_settle(cams[n], clock, views[n], replace(protocol, settle=options.settle))
            t = clock() + 0.05
            for n in (left, right):
                fb = feedback_at_rest(cams[n], t, protocol.feedback_readings)
                frame = cams[n].trigger(t)
                name = f"images/{n}_{k:04d}.png"
                ok, data = cv2.imencode(".png", frame.image, params)
                if not ok:
                    raise OSError(f"cannot encode {name}")
                data.tofile(str(stereo / name))
                captures.append(Capture(image=name, camera=n, pan=fb.pan, tilt=fb.tilt, zoom=fb.zoom_raw,
                                        temperature=fb.temperature, stamp=frame.stamp, target=placed.name,
                                        tag=STEREO_TAG))
                R, tw = cams[n].true_pose_world(frame.exposure_time)
                true = cams[n].true_state(frame.exposure_time)
                truths.append({"image": name, "camera": n, "pan": float(true.pan), "tilt": float(true.tilt),
                               "zoom": float(true.zoom_raw), "exposure_time": float(frame.exposure_time),
                               "world_from_optical": {"R": _matrix(R), "t": [float(v) for v in tw]}})
            clock.advance_to(t + 0.1)
            k += 1
            if progress is not None:
                progress(k, total, f"stereo pair {k}")
    targets = {b[0].name: b[0].target for b in boards}
    truth = {"format": TRUTH_FORMAT, "format_version": 1, "rig": str(rig.source), "cameras": [left, right],
             "world_frame": rig.world_frame,
             "models": {n: model_to_dict(rig.cameras[n].model) for n in (left, right)},
             "world_from_mount": {n: {"R": _matrix(rig.cameras[n].mount_R),
                                      "t": [float(v) for v in rig.cameras[n].mount_t]} for n in (left, right)},
             "targets": {p.name: {"world_from_target": {"R": _matrix(p.R), "t": [float(v) for v in p.t]}}
                         for p in {b[0].name: b[0] for b in boards}.values()},
             "captures": truths}
    atomic_write_text(stereo / "truth.yaml", "# simulator ground truth (not used for calibration)\n"
                      + yaml.safe_dump(truth, sort_keys=False, default_flow_style=None, width=120))
    zm = rig.cameras[left].model.zoom_mapping
    save_manifest(stereo, targets, captures, (zm.raw_min, zm.raw_max),
                  {"generator": "ptz-calib simulate --stereo", "rig": str(rig.source), "cameras": [left, right],
                   "seed": options.seed, "truth": "truth.yaml"})
    return {"folder": str(out), "cameras": {n: r.to_dict() for n, r in results.items()},
            "stereo": {"folder": str(stereo), "pairs": k, "boards": [b[0].name for b in boards],
                       "tele_boards": [b[0].name for b in tele]}}


__all__ += ["StereoOptions", "run_stereo_protocol", "STEREO_TAG"]
