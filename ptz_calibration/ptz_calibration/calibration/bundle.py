"""Joint refinement of a PTZ camera model: a bundle adjustment over all views.

Every detected corner is predicted from the REPORTED pan/tilt/zoom through the whole model and
compared with where it was found. The boards do not move: each has one pose in the home optical
frame H for all the views that see it, so views at different pan, tilt and zoom tie the axes,
radius vectors, zoom translation and intrinsics together. Unknowns:

* per zoom step: ``log fx, log fy, cx, cy, k1, k2, p1, p2`` (``k3 = 0``); a distortion term that
  Zhang's method could not determine at that step (:mod:`.zoom_fit`'s auto-fix) stays at its held
  value unless ``free_held``. Every term has a prior on its change between neighbouring steps
  (the principal point moves little with zoom, the distortion smoothly): where the views of one step cannot determine it (long focal
  lengths), the fixed boards and the other steps do;
* per zoom step but the reference (widest) one: the zoom translation ``d`` of the optical centre
  along the optical axis, with a smoothness prior on its curvature over zoom;
* pan and tilt joints: the axis direction (2 parameters each) and the radius vector (the 2
  components perpendicular to the axis; the third is unobservable, see :mod:`.axes`);
* per board: its pose in H (6);
* per pose: corrections ``dp, dt`` of the reported pan and tilt, with a zero-mean prior of standard
  deviation ``feedback_sigma``; views at the same reported pose share them (``same_pose_tolerance``). A real head's feedback is not exact (encoder quantization, gear
  periodic error, backlash): at 20x zoom 0.02 deg is 8 px. Without these corrections the long
  focal lengths' views would pull the axes; with them a view constrains the model where its
  image says more than its feedback does.

SciPy's ``least_squares`` (trust region reflective) with the Jacobian's sparsity pattern (each
corner depends on ~25 of the several hundred unknowns; finite differences then cost ~30 residual
evaluations instead of one per unknown) and a robust loss (``soft_l1``). Views whose RMS residual
after the first solve exceeds ``outlier_factor`` times the median (and ``outlier_min_px``) are
reported as outliers and left out of a second solve. Standard deviations come from the Gauss-Newton
covariance ``(J^T J)^-1`` with the corner rows weighted by the corner noise the residuals show.

```python
from ptz_calibration.calibration.bundle import BundleOptions, bundle_adjust, views_from_zoom_fit
result = bundle_adjust(views, steps, kinematics, BundleOptions())
result.kinematics, result.steps[i].values, result.rms_px, result.outliers
```
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import least_squares
from scipy.linalg import cho_factor, cho_solve
from scipy.sparse import csc_matrix, csr_matrix, lil_matrix, vstack
from scipy.spatial.transform import Rotation

from ..model.kinematics import PtzKinematics
from .detection import Detection, board_pose
from .zoom_fit import curvature_prior

__all__ = [
    "STEP_PARAMETERS",
    "BundleOptions",
    "BundleError",
    "BundleView",
    "BundleStep",
    "StepResult",
    "BundleResult",
    "bundle_adjust",
]

#: Intrinsic unknowns of a zoom step, in this order (fx, fy as logarithms internally).
STEP_PARAMETERS: tuple[str, ...] = ("fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2")

Progress = Callable[[float, dict[str, Any]], None]


class BundleError(ValueError):
    """The bundle adjustment cannot run on these views (the message says why)."""


@dataclass(frozen=True)
class BundleOptions:
    """Settings of :func:`bundle_adjust`."""

    pixel_sigma: float = 0.25  # px: corner noise the residuals are scaled by
    # rad: prior std of the per-pose pan/tilt corrections: how well the head points where it
    # reports, after backlash is taken up from one side (gear periodic error, encoder steps; about
    # 0.03 deg on the default rig). Measured on the default dataset with 0.2 px corner noise
    # (radius vector errors, pan / tilt): 0.03 deg -> 1.1 / 1.1 mm, 0.05 -> 1.4 / 1.7 mm,
    # 0.1 -> 2.2 / 4.0 mm (the sweeps then no longer pin the rotation angles, and the focal length
    # trades off against the radius vectors); far too tight a prior lets the gear error bend the
    # focal length (0.01 deg with per-view corrections: +0.18 %).
    feedback_sigma: float = math.radians(0.03)
    # m per (zoom range)^2: prior std of d'' over the zoom steps' range (as :mod:`.zoom_fit`'s):
    # how far the curve may bend. Discretized like a smoothing spline's penalty, a second difference
    # between steps h apart (fraction of the range) gets the std ``translation_curvature * h**1.5``:
    # 2.2 mm with 8 steps, 0.48 mm with the protocol's default 20. The true curve is not straight
    # (the default rig's lenses: d concave, second differences up to 2 mm over 8 steps), and the long
    # steps see d only through the near boards (:mod:`.capture_protocol`'s notes). Measured with 8
    # steps on the scene before its bridge board (max d error; stereo translation error over
    # held-out settings, median / max, four realizations): a fixed 0.5 mm per second difference
    # bent d straight, -3.9 mm in mid zoom (4-10 times its std), 0.44-0.47 / 0.97-1.09 %; 2 mm:
    # 2.2 mm, 0.27-0.32 / 0.52-0.70 %;
    # 20 mm: 0.17-0.23 / 0.36-0.62 % on the rendered corners, but with 0.2 px of corner noise added
    # the long steps' d wandered by 15 mm (std 6 mm) and the translation median went to 1.17 %
    # (2 mm: 0.60 %, 0.5 mm: 0.75 %). With 20 steps 0.5 mm was right and 1.5 mm let the long steps
    # wander (README).
    translation_curvature: float = 0.04
    # px: the principal point moves little with zoom (lens centring): prior std of its change
    # between neighbouring steps, and a weak prior on its distance from the starting value (the
    # zoom fit's). A change prior, not a curvature prior: at long focal lengths the principal point
    # and the head's pointing error look the same, and a curvature prior extrapolated their trend
    # (7 px off at 20x on the default rig with 0.2 px corner noise)
    principal_point_step: float = 0.5
    # the same for the distortion (k1, k2; p1, p2) between neighbouring steps. With ``free_held``
    # the terms the zoom fit held (at zero, or a neighbour's value) are adjusted too, under these
    # priors: holding k2 at 0 where the true lens has 0.04 biased the radius vectors by 4-7 mm
    # with 0.2 px corner noise
    distortion_step: float = 0.05
    tangential_step: float = 1e-3
    free_held: bool = True
    principal_point_sigma: float = 30.0
    loss: str = "soft_l1"  # scipy least_squares loss
    loss_scale: float = 3.0  # in units of pixel_sigma: residuals beyond it count less
    outlier_factor: float = 4.0  # view RMS above this x the median ...
    outlier_min_px: float = 1.0  # ... and above this is an outlier view
    # rad: views whose reported pan and tilt agree this closely were taken at the same pose and share
    # one correction: a head approached from the same side points repeatably (its gear error and
    # backlash are functions of the pose), which ties the zoom steps together through the views of
    # a board at the same pose (the principal point and focal length at long zoom). 0: per view.
    same_pose_tolerance: float = math.radians(0.03)
    solver: str = "lm"  # "lm": normal equations (fast); "scipy": scipy.optimize.least_squares (trf + lsmr)
    max_iterations: int = 50  # lm: per solve
    tolerance: float = 1e-9  # lm: stop when the cost improves by less than this fraction
    max_nfev: int = 400  # scipy: per solve
    refine_kinematics: bool = True
    refine_intrinsics: bool = True

    def __post_init__(self) -> None:
        if not self.pixel_sigma > 0 or not self.feedback_sigma > 0 or not self.translation_curvature > 0:
            raise ValueError("pixel_sigma, feedback_sigma and translation_curvature must be > 0")
        if self.solver not in ("lm", "scipy"):
            raise ValueError(f"unknown solver {self.solver!r} (lm, scipy)")
        if self.loss not in ("linear", "soft_l1", "huber", "cauchy", "arctan"):
            raise ValueError(f"unknown loss {self.loss!r}")


@dataclass(frozen=True)
class BundleView:
    """One image: where the head reported it was, which step and board, and the corners found."""

    label: str  # image file, for reports
    step: int  # index into the steps
    board: str
    pan: float  # reported, rad
    tilt: float
    detection: Detection
    tag: str = ""


@dataclass(frozen=True)
class BundleStep:
    """A zoom step's starting intrinsics and which of them are held."""

    zoom: float
    values: dict[str, float]  # STEP_PARAMETERS -> value
    held: frozenset[str] = frozenset()  # names kept at their value
    translation: float = 0.0  # starting zoom translation d (m), relative to the reference step


@dataclass
class StepResult:
    zoom: float
    values: dict[str, float]
    std: dict[str, Optional[float]]  # None for held terms
    held: frozenset[str]
    translation: float
    translation_std: Optional[float]
    rms_px: float
    views: int

    def camera_matrix(self) -> NDArray[np.float64]:
        v = self.values
        return np.array([[v["fx"], 0.0, v["cx"]], [0.0, v["fy"], v["cy"]], [0.0, 0.0, 1.0]])

    def distortion(self) -> NDArray[np.float64]:
        v = self.values
        return np.array([v["k1"], v["k2"], v["p1"], v["p2"], 0.0])


@dataclass
class BundleResult:
    kinematics: PtzKinematics  # zoom_translation left constant 0: see ``steps[i].translation``
    steps: list[StepResult]
    boards: dict[str, tuple[NDArray[np.float64], NDArray[np.float64]]]  # board-to-H (R, t)
    joint_std: dict[str, dict[str, Any]]  # pan/tilt -> axis_cov (3x3 rad^2), radius_cov (3x3 m^2)
    view_rms_px: NDArray[np.float64]  # per view (NaN for none)
    view_points: NDArray[np.int64]
    corrections: NDArray[np.float64]  # (V, 2) dp, dt (rad)
    outliers: list[tuple[int, float, str]]  # view index, rms, why
    rms_px: float
    iterations: int
    seconds: float
    notes: list[str] = field(default_factory=list)
    converged: bool = True  # the final solve stopped because no step lowered the cost any more


# -- the problem ---------------------------------------------------------------------------------
def _perp_basis(a: NDArray) -> NDArray:
    """Two unit vectors perpendicular to ``a`` and to each other (rows)."""
    helper = np.eye(3)[int(np.argmin(np.abs(a)))]
    b1 = np.cross(a, helper)
    b1 /= np.linalg.norm(b1)
    return np.stack([b1, np.cross(a, b1)])


class _Problem:
    """Parameter layout, residuals and sparsity of one solve."""

    def __init__(self, views: Sequence[BundleView], steps: Sequence[BundleStep], kin: PtzKinematics,
                 boards0: dict[str, tuple[NDArray, NDArray]], options: BundleOptions, reference: int) -> None:
        self.views = list(views)
        self.steps = list(steps)
        self.kin0 = kin
        self.options = options
        self.reference = reference
        self.board_names = sorted(boards0)
        self.boards0 = boards0
        # corner tables
        self.c_view = np.concatenate([np.full(len(v.detection.image_points), i) for i, v in enumerate(self.views)])
        self.c_obj = np.concatenate([v.detection.object_points for v in self.views])
        self.c_img = np.concatenate([v.detection.image_points for v in self.views])
        self.v_step = np.array([v.step for v in self.views])
        self.v_board = np.array([self.board_names.index(v.board) for v in self.views])
        self.v_group, g_pan, g_tilt = _pose_groups(np.array([v.pan for v in self.views], dtype=float),
                                                   np.array([v.tilt for v in self.views], dtype=float),
                                                   options.same_pose_tolerance)
        self.n_groups = len(g_pan)
        self.v_pan, self.v_tilt = g_pan[self.v_group], g_tilt[self.v_group]
        self.c_step = self.v_step[self.c_view]
        self.c_board = self.v_board[self.c_view]
        # parameter layout
        cols: list[tuple[str, int, int]] = []  # (kind, index, sub)
        self.intr_free = np.zeros((len(self.steps), len(STEP_PARAMETERS)), dtype=bool)
        if options.refine_intrinsics:
            for s, st in enumerate(self.steps):
                for k, name in enumerate(STEP_PARAMETERS):
                    if name not in st.held or options.free_held:
                        self.intr_free[s, k] = True
                        cols.append(("intr", s, k))
        self.d_free = np.array([s != reference for s in range(len(self.steps))])
        for s in np.flatnonzero(self.d_free):
            cols.append(("d", int(s), 0))
        if options.refine_kinematics:
            for j in range(2):
                for k in range(4):
                    cols.append(("kin", j, k))
        for b in range(len(self.board_names)):
            for k in range(6):
                cols.append(("board", b, k))
        for g in range(self.n_groups):
            cols.append(("view", g, 0))
            cols.append(("view", g, 1))
        self.cols = cols
        self.n = len(cols)
        kinds = np.array([c[0] for c in cols])
        self.i_intr = np.flatnonzero(kinds == "intr")
        self.i_d = np.flatnonzero(kinds == "d")
        self.i_kin = np.flatnonzero(kinds == "kin")
        self.i_board = np.flatnonzero(kinds == "board")
        self.i_view = np.flatnonzero(kinds == "view")
        # starting values
        self.intr0 = np.array([[st.values[n] for n in STEP_PARAMETERS] for st in self.steps], dtype=float)
        self.intr0[:, 0:2] = np.log(self.intr0[:, 0:2])
        self.d0 = np.array([st.translation for st in self.steps], dtype=float)
        self.joints0 = (kin.pan_joint, kin.tilt_joint)
        self.bases = tuple(_perp_basis(j.axis) for j in self.joints0)
        self.x0 = np.zeros(self.n)
        self.x0[self.i_intr] = self.intr0[self.intr_free]
        self.x0[self.i_d] = self.d0[self.d_free]
        # scale of each unknown for the solver (x_scale)
        scale = np.ones(self.n)
        for i, (kind, _, k) in enumerate(cols):
            if kind == "intr":
                scale[i] = {0: 1e-3, 1: 1e-3, 2: 1.0, 3: 1.0, 4: 1e-3, 5: 1e-3, 6: 1e-4, 7: 1e-4}[k]
            elif kind == "d":
                scale[i] = 1e-3
            elif kind == "kin":
                scale[i] = 1e-4 if k < 2 else 1e-3
            elif kind == "board":
                scale[i] = 1e-4 if k < 3 else 1e-3
            else:
                scale[i] = options.feedback_sigma
        self.x_scale = scale
        # prior rows: 2 per view, d's curvature over zoom
        order = np.argsort([st.zoom for st in self.steps])
        self.curv, self.curv_coef = curvature_prior([st.zoom for st in self.steps], options.translation_curvature)
        self.n_corner_rows = 2 * len(self.c_view)
        self.pp_steps = [s for s in range(len(self.steps)) if self.intr_free[s, 2] and self.intr_free[s, 3]]
        self.change_sigma = np.array([options.principal_point_step, options.principal_point_step,
                                      options.distortion_step, options.distortion_step,
                                      options.tangential_step, options.tangential_step])
        self.pp_pairs = [(int(order[i - 1]), int(order[i]), k) for i in range(1, len(order)) for k in range(2, 8)
                         if self.intr_free[order[i - 1], k] and self.intr_free[order[i], k]]
        self.m = self.n_corner_rows + 2 * self.n_groups + len(self.curv) + len(self.pp_pairs) + 2 * len(self.pp_steps)

    # -- unpacking -------------------------------------------------------------------------------
    def intrinsics(self, x: NDArray) -> NDArray:
        intr = self.intr0.copy()
        intr[self.intr_free] = x[self.i_intr]
        return intr

    def translations(self, x: NDArray) -> NDArray:
        d = self.d0.copy()
        d[self.d_free] = x[self.i_d]
        return d

    def kinematics(self, x: NDArray) -> PtzKinematics:
        joints = []
        for j, (joint, basis) in enumerate(zip(self.joints0, self.bases)):
            if self.options.refine_kinematics:
                p = x[self.i_kin[4 * j:4 * j + 4]]
                axis = joint.axis + p[0] * basis[0] + p[1] * basis[1]
                axis = axis / np.linalg.norm(axis)
                radius = joint.radius + p[2] * basis[0] + p[3] * basis[1]
            else:
                axis, radius = joint.axis, joint.radius
            joints.append((axis, radius))
        return PtzKinematics(pan_axis=joints[0][0], tilt_axis=joints[1][0], pan_radius=joints[0][1],
                             tilt_radius=joints[1][1], order=self.kin0.order)

    def boards(self, x: NDArray) -> tuple[NDArray, NDArray]:
        p = x[self.i_board].reshape(-1, 6)
        r0 = np.stack([self.boards0[n][0] for n in self.board_names])
        t0 = np.stack([self.boards0[n][1] for n in self.board_names])
        return r0 @ Rotation.from_rotvec(p[:, :3]).as_matrix(), t0 + p[:, 3:]

    def group_corrections(self, x: NDArray) -> NDArray:
        return x[self.i_view].reshape(-1, 2)

    def corrections(self, x: NDArray) -> NDArray:
        """Per view (V, 2): its pose group's correction."""
        return self.group_corrections(x)[self.v_group]

    def view_poses(self, x: NDArray) -> tuple[NDArray, NDArray]:
        kin = self.kinematics(x)
        dq = self.corrections(x)
        r, t = kin.pose(self.v_pan + dq[:, 0], self.v_tilt + dq[:, 1], 0.0)
        d = self.translations(x)[self.v_step]
        return r, t + r[:, :, 2] * d[:, None]

    # -- residuals -------------------------------------------------------------------------------
    def project(self, x: NDArray) -> NDArray:
        """Predicted pixel positions of all corners (C, 2)."""
        r_v, t_v = self.view_poses(x)
        r_b, t_b = self.boards(x)
        x_h = np.einsum("cij,cj->ci", r_b[self.c_board], self.c_obj) + t_b[self.c_board]
        x_c = np.einsum("cji,cj->ci", r_v[self.c_view], x_h - t_v[self.c_view])
        z = x_c[:, 2]
        z = np.where(z > 1e-6, z, 1e-6)
        xn, yn = x_c[:, 0] / z, x_c[:, 1] / z
        p = self.intrinsics(x)[self.c_step]
        k1, k2, p1, p2 = p[:, 4], p[:, 5], p[:, 6], p[:, 7]
        r2 = xn * xn + yn * yn
        radial = 1.0 + r2 * (k1 + r2 * k2)
        xd = xn * radial + 2.0 * p1 * xn * yn + p2 * (r2 + 2.0 * xn * xn)
        yd = yn * radial + p1 * (r2 + 2.0 * yn * yn) + 2.0 * p2 * xn * yn
        return np.stack([np.exp(p[:, 0]) * xd + p[:, 2], np.exp(p[:, 1]) * yd + p[:, 3]], axis=1)

    def corner_residuals(self, x: NDArray) -> NDArray:
        return (self.project(x) - self.c_img).reshape(-1) / self.options.pixel_sigma

    def residuals(self, x: NDArray) -> NDArray:
        o = self.options
        pix = self.corner_residuals(x)
        prior = self.group_corrections(x).reshape(-1) / o.feedback_sigma
        d = self.translations(x)
        curv = np.sum(self.curv_coef * d[self.curv], axis=1)
        intr = self.intrinsics(x)
        pp_curv = np.array([(intr[b, k] - intr[a, k]) / self.change_sigma[k - 2] for a, b, k in self.pp_pairs])
        pp_abs = ((intr[self.pp_steps][:, 2:4] - self.intr0[self.pp_steps][:, 2:4]) / o.principal_point_sigma).reshape(-1)
        return np.concatenate([pix, prior, curv, pp_curv, pp_abs])

    def sparsity(self) -> lil_matrix:
        jac = lil_matrix((self.m, self.n), dtype=np.int8)
        col_intr = {(s, k): i for i, (kind, s, k) in enumerate(self.cols) if kind == "intr"}
        col_d = {s: i for i, (kind, s, _) in enumerate(self.cols) if kind == "d"}
        col_board = {b: [i for i, c in enumerate(self.cols) if c[0] == "board" and c[1] == b]
                     for b in range(len(self.board_names))}
        col_view = {g: [i for i, c in enumerate(self.cols) if c[0] == "view" and c[1] == g]
                    for g in range(self.n_groups)}
        per_view: dict[int, list[int]] = {}
        for v in range(len(self.views)):
            s, b = int(self.v_step[v]), int(self.v_board[v])
            cs = [col_intr[(s, k)] for k in range(len(STEP_PARAMETERS)) if (s, k) in col_intr]
            cs += [col_d[s]] if s in col_d else []
            cs += list(self.i_kin) + col_board[b] + col_view[int(self.v_group[v])]
            per_view[v] = cs
        for c, v in enumerate(self.c_view):
            cs = per_view[int(v)]
            jac.rows[2 * c] = sorted(cs)
            jac.data[2 * c] = [1] * len(cs)
            jac.rows[2 * c + 1] = sorted(cs)
            jac.data[2 * c + 1] = [1] * len(cs)
        base = self.n_corner_rows
        for g in range(self.n_groups):
            jac[base + 2 * g, col_view[g][0]] = 1
            jac[base + 2 * g + 1, col_view[g][1]] = 1
        base += 2 * self.n_groups
        for r, (a, b, c) in enumerate(self.curv.tolist()):
            for s in (a, b, c):
                if s in col_d:
                    jac[base + r, col_d[s]] = 1
        base += len(self.curv)
        for r, (a, b, k) in enumerate(self.pp_pairs):
            jac[base + r, col_intr[(a, k)]] = 1
            jac[base + r, col_intr[(b, k)]] = 1
        base += len(self.pp_pairs)
        for r, s in enumerate(self.pp_steps):
            jac[base + 2 * r, col_intr[(s, 2)]] = 1
            jac[base + 2 * r + 1, col_intr[(s, 3)]] = 1
        return jac


def _pose_groups(pan: NDArray, tilt: NDArray, tolerance: float) -> tuple[NDArray, NDArray, NDArray]:
    """Views whose reported pan and tilt are both within ``tolerance`` of a group's first view
    share that group: (group of each view, mean reported pan and tilt of each group)."""
    group = np.full(len(pan), -1)
    first: list[int] = []
    for i in range(len(pan)):
        for g, j in enumerate(first):
            if abs(pan[i] - pan[j]) <= tolerance and abs(tilt[i] - tilt[j]) <= tolerance:
                group[i] = g
                break
        else:
            group[i] = len(first)
            first.append(i)
    n = len(first)
    count = np.bincount(group, minlength=n)
    return group, np.bincount(group, pan, n) / count, np.bincount(group, tilt, n) / count


# -- initialization ------------------------------------------------------------------------------
def _initial_boards(views: Sequence[BundleView], steps: Sequence[BundleStep], kin: PtzKinematics,
                    ) -> dict[str, tuple[NDArray, NDArray]]:
    """Each board's pose in H from its views at the widest step that sees it (solvePnP)."""
    boards: dict[str, tuple[NDArray, NDArray]] = {}
    for name in sorted({v.board for v in views}):
        mine = [v for v in views if v.board == name]
        widest = min(steps[v.step].zoom for v in mine)
        use = [v for v in mine if steps[v.step].zoom == widest][:12]
        rots, trans = [], []
        for v in use:
            st = steps[v.step]
            K = np.array([[st.values["fx"], 0, st.values["cx"]], [0, st.values["fy"], st.values["cy"]], [0, 0, 1]])
            D = np.array([st.values["k1"], st.values["k2"], st.values["p1"], st.values["p2"], 0.0])
            pose = board_pose(v.detection, K, D)
            if pose is None:
                continue
            r_cb, t_cb = pose
            r_v, t_v = kin.pose(v.pan, v.tilt, 0.0)
            t_v = t_v + r_v[:, 2] * st.translation
            rots.append(r_v @ r_cb)
            trans.append(r_v @ t_cb + t_v)
        if not rots:
            raise BundleError(f"board {name!r}: no view gives a starting pose (solvePnP failed)")
        r_mean = Rotation.from_matrix(np.array(rots)).mean().as_matrix()
        boards[name] = (r_mean, np.median(np.array(trans), axis=0))
    return boards


def _board_dict(problem: "_Problem", x: NDArray) -> dict[str, tuple[NDArray, NDArray]]:
    r_b, t_b = problem.boards(x)
    return {n: (r_b[i], t_b[i]) for i, n in enumerate(problem.board_names)}


def _restart(problem: "_Problem", intr: NDArray, d: NDArray, corrections: NDArray) -> NDArray:
    """Unknowns of ``problem`` (built on the current joints and boards) at these intrinsics,
    translations and per-view corrections."""
    x = problem.x0.copy()
    x[problem.i_intr] = intr[problem.intr_free]
    x[problem.i_d] = d[problem.d_free]
    start = np.zeros((problem.n_groups, 2))
    start[problem.v_group] = corrections
    x[problem.i_view] = start.reshape(-1)
    return x


def _corrections_for(base: "_Problem", solved: "_Problem", x: NDArray, keep: list[int]) -> NDArray:
    """Per-view corrections for all views of ``base``: from the solved problem for the kept views;
    a left-out view takes its pose group's value when a kept view shares it, else 0."""
    per_view = np.zeros((len(base.views), 2))
    per_view[keep] = solved.corrections(x)
    known = np.zeros(len(base.views), dtype=bool)
    known[keep] = True
    group_value = {int(base.v_group[i]): per_view[i] for i in keep}
    for i in np.flatnonzero(~known):
        per_view[i] = group_value.get(int(base.v_group[i]), np.zeros(2))
    return per_view


# -- the adjustment ------------------------------------------------------------------------------
def _groups(pattern: csc_matrix, n_rows: int) -> list[NDArray]:
    """Greedy colouring of the columns: no two columns of a group share a row (finite differences
    of a whole group at once then give every column's derivatives)."""
    groups: list[NDArray] = []
    used: list[NDArray] = []  # rows taken, per group
    members: list[list[int]] = []
    order = np.argsort(-np.diff(pattern.indptr), kind="stable")  # densest first
    for j in order:
        rows = pattern.indices[pattern.indptr[j]:pattern.indptr[j + 1]]
        for g, taken in enumerate(used):
            if not taken[rows].any():
                taken[rows] = True
                members[g].append(int(j))
                break
        else:
            taken = np.zeros(n_rows, dtype=bool)
            taken[rows] = True
            used.append(taken)
            members.append([int(j)])
    groups = [np.array(sorted(m)) for m in members]
    return groups


class _Jacobian:
    """Sparse forward-difference Jacobian of the corner rows by column groups, and the prior rows'
    exact (linear) Jacobian."""

    def __init__(self, problem: _Problem) -> None:
        self.problem = problem
        full = problem.sparsity().tocsc()
        n_c = problem.n_corner_rows
        self.corner = full[:n_c].tocsc()
        self.corner.sort_indices()
        self.groups = _groups(self.corner, n_c)
        # prior rows are linear in x: their Jacobian is exact and constant
        x = problem.x0
        base = problem.residuals(x)[n_c:]
        prior_cols = np.unique(full[n_c:].tocoo().col)
        rows, cols, vals = [], [], []
        for j in prior_cols:
            e = x.copy()
            e[j] += 1.0
            col = problem.residuals(e)[n_c:] - base
            nz = np.flatnonzero(col)
            rows.append(nz)
            cols.append(np.full(len(nz), j))
            vals.append(col[nz])
        self.prior = csr_matrix((np.concatenate(vals) if vals else [], (np.concatenate(rows) if rows else [],
                                 np.concatenate(cols) if cols else [])), shape=(problem.m - n_c, problem.n))

    def __call__(self, x: NDArray, r_corner: NDArray) -> csr_matrix:
        p, a = self.problem, self.corner
        h = 1e-6 * p.x_scale
        data = np.empty(a.nnz)
        for group in self.groups:
            xp = x.copy()
            xp[group] += h[group]
            diff = p.corner_residuals(xp) - r_corner
            for j in group:
                lo, hi = a.indptr[j], a.indptr[j + 1]
                data[lo:hi] = diff[a.indices[lo:hi]] / h[j]
        jc = csc_matrix((data, a.indices, a.indptr), shape=a.shape).tocsr()
        return vstack([jc, self.prior]).tocsr()


def _robust_weights(r: NDArray, options: BundleOptions) -> NDArray:
    """IRLS weights rho'(z), z = (r / scale)^2, of scipy's robust losses."""
    z = (r / options.loss_scale) ** 2
    if options.loss == "linear":
        return np.ones_like(r)
    if options.loss == "soft_l1":
        return 1.0 / np.sqrt(1.0 + z)
    if options.loss == "huber":
        return np.where(z <= 1.0, 1.0, 1.0 / np.sqrt(np.maximum(z, 1.0)))
    if options.loss == "cauchy":
        return 1.0 / (1.0 + z)
    return 1.0 / (1.0 + z**2)  # arctan


def _robust_cost(r: NDArray, options: BundleOptions) -> float:
    f2 = options.loss_scale**2
    z = (r / options.loss_scale) ** 2
    rho = {"linear": z, "soft_l1": 2.0 * (np.sqrt(1.0 + z) - 1.0),
           "huber": np.where(z <= 1.0, z, 2.0 * np.sqrt(np.maximum(z, 1.0)) - 1.0),
           "cauchy": np.log1p(z), "arctan": np.arctan(z)}[options.loss]
    return 0.5 * f2 * float(np.sum(rho))


@dataclass
class _Solution:
    x: NDArray
    jac: csr_matrix
    nfev: int
    iterations: int
    converged: bool


def _solve_lm(problem: _Problem, x0: NDArray, options: BundleOptions) -> _Solution:
    """Levenberg-Marquardt on the normal equations with the sparse Jacobian and IRLS robust weights.

    The normal matrix is only a few hundred unknowns wide: it is formed from the sparse Jacobian
    and solved exactly (Cholesky), which converges in a few iterations where an iterative
    trust-region solve (scipy's trf + lsmr) needs hundreds (see :func:`bundle_adjust`'s ``solver``).
    """
    jac_of = _Jacobian(problem)
    n_c = problem.n_corner_rows
    x = x0.copy()
    r = problem.residuals(x)
    cost = _robust_cost(r, options)
    lam, nfev = 1e-3, 1
    converged = False
    jac = None
    it = 0
    for it in range(1, options.max_iterations + 1):
        jac = jac_of(x, r[:n_c])
        nfev += len(jac_of.groups)
        w = _robust_weights(r, options)
        jw = jac.multiply(w[:, None]).tocsr()
        a = (jac.T @ jw).toarray()
        g = jac.T @ (w * r)
        diag = np.maximum(np.diag(a), 1e-12)
        improved, rel = False, 0.0
        for _ in range(10):
            try:
                c = cho_factor(a + lam * np.diag(diag))
                step = -cho_solve(c, g)
            except np.linalg.LinAlgError:
                lam *= 10.0
                continue
            x_new = x + step
            r_new = problem.residuals(x_new)
            nfev += 1
            cost_new = _robust_cost(r_new, options)
            if np.isfinite(cost_new) and cost_new <= cost:
                rel = (cost - cost_new) / max(cost, 1e-300)
                x, r, cost = x_new, r_new, cost_new
                lam = max(lam / 10.0, 1e-9)
                improved = True
                break
            lam *= 10.0
        if not improved or rel < options.tolerance:
            converged = True  # no step lowers the cost any more, or by a negligible fraction
            break
    assert jac is not None
    jac = jac_of(x, r[:n_c])
    return _Solution(x, jac, nfev, it, converged)


def _solve_scipy(problem: _Problem, x0: NDArray, options: BundleOptions) -> _Solution:
    """The same problem with scipy's least_squares (trf, lsmr on the sparse Jacobian)."""
    res = least_squares(problem.residuals, x0, jac_sparsity=problem.sparsity(), method="trf",
                        loss=options.loss, f_scale=options.loss_scale, x_scale="jac",
                        max_nfev=options.max_nfev, tr_options={"atol": 1e-12, "btol": 1e-12})
    return _Solution(res.x, res.jac.tocsr(), int(res.nfev), int(res.njev), res.status > 0)


def _solve(problem: _Problem, x0: NDArray, options: BundleOptions) -> _Solution:
    return _solve_scipy(problem, x0, options) if options.solver == "scipy" else _solve_lm(problem, x0, options)


def _view_rms(problem: _Problem, x: NDArray) -> tuple[NDArray, NDArray]:
    err = np.sum((problem.project(x) - problem.c_img) ** 2, axis=1)
    n = np.bincount(problem.c_view, minlength=len(problem.views))
    s = np.bincount(problem.c_view, weights=err, minlength=len(problem.views))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sqrt(s / n), n


def _covariance(problem: _Problem, result: Any) -> NDArray:
    """Gauss-Newton covariance of the unknowns. The corner rows are re-weighted by the corner noise
    the residuals show (``s * pixel_sigma``, ``s`` not below 0.1); the prior rows keep their stated
    standard deviations (a pointing error does not shrink because the corners are precise)."""
    n_c = problem.n_corner_rows
    pix = problem.corner_residuals(result.x)
    s2 = max(float(pix @ pix) / max(n_c - problem.n, 1), 0.01)
    jac = result.jac.tocsr()
    w = np.ones(jac.shape[0])
    w[:n_c] = 1.0 / math.sqrt(s2)
    jw = jac.multiply(w[:, None]).tocsr()
    jtj = (jw.T @ jw).toarray()
    try:
        return np.linalg.inv(jtj)
    except np.linalg.LinAlgError:
        return np.linalg.pinv(jtj)


def bundle_adjust(views: Sequence[BundleView], steps: Sequence[BundleStep], kinematics: PtzKinematics,
                  options: BundleOptions = BundleOptions(), progress: Optional[Progress] = None) -> BundleResult:
    """Refine intrinsics per step, zoom translation, joints and board poses jointly (module notes).

    ``steps[reference]`` is the one whose zoom translation is 0 by definition: the widest.
    Raises :class:`BundleError` when there is nothing to adjust.
    """
    t0 = time.perf_counter()
    if not views:
        raise BundleError("no views to adjust")
    if not steps:
        raise BundleError("no zoom steps")
    bad = [v.label for v in views if not 0 <= v.step < len(steps)]
    if bad:
        raise BundleError(f"views refer to unknown zoom steps: {', '.join(bad[:3])}")
    if not all(np.isfinite([v.pan for v in views] + [v.tilt for v in views])):
        raise BundleError("non-finite pan/tilt feedback in the views")
    reference = int(np.argmin([s.zoom for s in steps]))
    kinematics = PtzKinematics(pan_axis=kinematics.pan_axis, tilt_axis=kinematics.tilt_axis,
                               pan_radius=kinematics.pan_radius, tilt_radius=kinematics.tilt_radius,
                               order=kinematics.order)
    boards0 = _initial_boards(views, steps, kinematics)
    notes: list[str] = []
    problem = _Problem(views, steps, kinematics, boards0, options, reference)
    if progress:
        progress(0.05, {"views_accepted": len(views), "stage": "first solve"})
    final = _solve(problem, problem.x0, options)
    iterations = int(final.nfev)
    keep = list(range(len(views)))
    outliers: list[tuple[int, float, str]] = []
    for _round in range(3):
        # every view at the current answer, the outliers against the median of the kept ones; a
        # view wrongly blamed in the first solve (one sharing a pose with a bad view) comes back
        base = _Problem(views, steps, problem.kinematics(final.x), _board_dict(problem, final.x), options, reference)
        x_all = _restart(base, problem.intrinsics(final.x), problem.translations(final.x),
                         _corrections_for(base, problem, final.x, keep))
        rms, _ = _view_rms(base, x_all)
        med = float(np.nanmedian(rms[keep]))
        limit = max(options.outlier_factor * med, options.outlier_min_px)
        out_idx = [i for i, r in enumerate(rms) if np.isfinite(r) and r > limit]
        outliers = [(i, float(rms[i]), f"RMS {rms[i]:.2f} px > {limit:.2f} px ({options.outlier_factor:g} x the "
                     f"median {med:.2f} px)") for i in out_idx]
        new_keep = [i for i in range(len(views)) if i not in set(out_idx)]
        if new_keep == keep:
            break
        if not new_keep:
            raise BundleError("every view is an outlier")
        keep = new_keep
        problem2 = _Problem([views[i] for i in keep], steps, base.kinematics(x_all), base.boards0, options, reference)
        x = _restart(problem2, base.intrinsics(x_all), base.translations(x_all), base.corrections(x_all)[keep])
        if progress:
            progress(0.6, {"views_accepted": len(keep), "stage": "solve without outliers", "rms_px": med})
        final = _solve(problem2, x, options)
        iterations += int(final.nfev)
        problem = problem2
    if outliers:
        notes.append(f"{len(outliers)} outlier view(s) left out of the final solve")
    x = final.x
    cov = _covariance(problem, final)
    std = np.sqrt(np.clip(np.diag(cov), 0.0, None))

    # results in the original view order
    rms_kept, n_kept = _view_rms(problem, x)
    view_rms = np.full(len(views), np.nan)
    view_pts = np.zeros(len(views), dtype=np.int64)
    corr = np.zeros((len(views), 2))
    view_rms[keep] = rms_kept
    view_pts[keep] = n_kept
    corr[keep] = problem.corrections(x)
    for i, r, _ in outliers:  # report an outlier's residual at the final model
        view_rms[i] = r
    intr = problem.intrinsics(x)
    d = problem.translations(x)
    col = {c: i for i, c in enumerate(problem.cols)}
    err = problem.project(x) - problem.c_img
    step_sq = np.bincount(problem.c_step, weights=np.sum(err**2, axis=1), minlength=len(steps))
    step_n = np.bincount(problem.c_step, minlength=len(steps))
    step_views = np.bincount(problem.v_step, minlength=len(steps))
    results = []
    for s, st in enumerate(steps):
        values, stds = {}, {}
        for k, name in enumerate(STEP_PARAMETERS):
            v = float(intr[s, k])
            i = col.get(("intr", s, k))
            sd = None if i is None else float(std[i])
            if k < 2:
                v = math.exp(v)
                sd = None if sd is None else sd * v
            values[name], stds[name] = v, sd
        i_d = col.get(("d", s, 0))
        results.append(StepResult(st.zoom, values, stds, st.held, float(d[s]),
                                  None if i_d is None else float(std[i_d]),
                                  float(math.sqrt(step_sq[s] / step_n[s])) if step_n[s] else math.nan,
                                  int(step_views[s])))
    kin = problem.kinematics(x)
    joint_std: dict[str, dict[str, Any]] = {}
    if options.refine_kinematics:
        for j, name in enumerate(("pan", "tilt")):
            idx = problem.i_kin[4 * j:4 * j + 4]
            c = cov[np.ix_(idx, idx)]
            b = problem.bases[j]
            joint_std[name] = {"axis_cov": b.T @ c[:2, :2] @ b, "radius_cov": b.T @ c[2:, 2:] @ b}
    r_b, t_b = problem.boards(x)
    boards = {n: (r_b[i], t_b[i]) for i, n in enumerate(problem.board_names)}
    all_err = np.sum(err**2, axis=1)
    if not final.converged:
        notes.append(f"the final solve stopped at its iteration limit ({options.max_iterations if options.solver == 'lm' else options.max_nfev}) "
                     "while still lowering the cost: the answer may be short of the optimum")
    return BundleResult(kin, results, boards, joint_std, view_rms, view_pts, corr, outliers,
                        float(math.sqrt(np.mean(all_err))), iterations, time.perf_counter() - t0, notes,
                        bool(final.converged))
