"""Target detection against the simulator's exact corners; partial ChArUco views; not-found reasons.

Accuracy thresholds are about 2.5x what was measured here (module notes of
``ptz_calibration.calibration.detection``): checkerboard corners 0.022-0.027 px RMS (sub-pixel
window 0.3 x spacing), ChArUco corners 0.02-0.04 px RMS.
"""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from calib_fixtures import BOARD, RIG_NOISE, SIZE, rendered_views, true_camera, true_corners
from ptz_calibration.calibration import (
    CharucoTarget,
    Checkerboard,
    Detection,
    DetectionOptions,
    NotFound,
    NotFoundReason,
    as_gray8,
    detect,
    detect_file,
    detect_files,
    read_image,
)
from ptz_calibration.calibration.detection import _spread_ok
from ptz_calibration.model.rotations import rpy_matrix
from ptz_calibration.simulation import PlacedTarget, RenderOptions, Scene, render

CHARUCO = CharucoTarget(10, 7, 0.09, 0.07)  # the default rig's ChArUco board


def _rms(d: Detection, truth: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.sum((d.image_points - truth[d.ids]) ** 2, axis=1))))


@pytest.fixture(scope="module")
def views():
    """Four views at the rig's default render quality (2x2 supersampling), with sensor noise."""
    return rendered_views(BOARD, 0.0, 4, seed=3, noise=RIG_NOISE, supersample=2, fill=0.6)


def test_checkerboard_subpixel_accuracy_and_board_order(views):
    images, truths = views
    errors = []
    for img, truth in zip(images, truths):
        d = detect(img, BOARD)
        assert isinstance(d, Detection) and d.complete and d.count == 70
        assert d.image_size == SIZE
        np.testing.assert_array_equal(d.object_points, BOARD.object_points())
        errors.append(d.image_points - truth)  # same order as the board: canonical ordering works
    e = np.concatenate(errors)
    rms = float(np.sqrt(np.mean(np.sum(e**2, axis=1))))
    assert rms < 0.06, rms  # measured 0.026
    assert np.abs(e.mean(axis=0)).max() < 0.01  # no bias


def test_refinement_beats_no_refinement_and_sb(views):
    """The chosen detector (classic + cornerSubPix at 0.3 x spacing) against the alternatives."""
    images, truths = views
    rms = {}
    for name, opts in {"default": DetectionOptions(), "no_subpix": DetectionOptions(subpix_window=0),
                       "sb_raw": DetectionOptions(method="sb", subpix_window=0)}.items():
        rms[name] = np.sqrt(np.mean([_rms(detect(i, BOARD, opts), t) ** 2 for i, t in zip(images, truths)]))
    assert rms["default"] < 0.6 * rms["no_subpix"], rms  # measured 0.026 vs 0.08
    assert rms["default"] < 0.8 * rms["sb_raw"], rms  # measured 0.026 vs 0.044
    sb_refined = detect(images[0], BOARD, DetectionOptions(method="sb"))
    assert _rms(sb_refined, truths[0]) < 0.06


def test_order_is_the_boards_whatever_the_image_rotation(views):
    """A half-turned image gives the same ids for the same physical corners."""
    img, truth = views[0][0], views[1][0]
    turned = img[::-1, ::-1]
    w, h = SIZE
    truth_turned = np.column_stack([w - 1 - truth[:, 0], h - 1 - truth[:, 1]])
    d = detect(np.ascontiguousarray(turned), BOARD)
    assert _rms(d, truth_turned) < 0.06


def test_color_and_16_bit_images(views):
    img, truth = views[0][0], views[1][0]
    bgr = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    assert _rms(detect(bgr, BOARD), truth) < 0.06
    assert as_gray8(img.astype(np.uint16) * 257).dtype == np.uint8
    assert _rms(detect(img.astype(np.uint16) * 257, BOARD), truth) < 0.06
    with pytest.raises(ValueError, match="2-D grayscale or 3-channel"):
        as_gray8(np.zeros((2, 3, 4, 5)))


def _charuco_scene(R, t, zoom=0.0, rng=None):
    K, D = true_camera(zoom)
    img = render(Scene([PlacedTarget("c", CHARUCO, R, t)]), K, D, SIZE, np.eye(3), np.zeros(3),
                 RenderOptions(supersample=1), RIG_NOISE, rng or np.random.default_rng(0))
    return img, true_corners(CHARUCO, K, D, R, t)


def _pose(rx, ry, rz, centre_offset, distance):
    x0, y0, x1, y1 = CHARUCO.extent
    R = rpy_matrix(rx, ry, rz)
    t = np.array([centre_offset[0], centre_offset[1], distance]) - R @ np.array([(x0 + x1) / 2, (y0 + y1) / 2, 0])
    return R, t


def test_charuco_whole_board():
    img, truth = _charuco_scene(*_pose(0.3, -0.25, 0.1, (0.0, 0.0), 1.6))
    d = detect(img, CHARUCO)
    assert isinstance(d, Detection) and d.complete and d.total == 54
    assert _rms(d, truth) < 0.08  # measured 0.03
    np.testing.assert_allclose(d.object_points, CHARUCO.object_points()[d.ids])


def test_charuco_overfilling_the_view_gives_a_partial_set_with_ids():
    """The board twice as wide as the view: most visible corners are found, with the right ids."""
    img, truth = _charuco_scene(*_pose(0.35, 0.3, -0.2, (0.25, -0.1), 0.45))
    visible = np.all((truth > 0) & (truth < np.array(SIZE) - 1), axis=1)
    d = detect(img, CHARUCO)
    assert isinstance(d, Detection) and not d.complete
    assert d.count >= max(6, int(0.7 * visible.sum())), (d.count, visible.sum())
    assert set(d.ids) <= set(np.flatnonzero(visible))
    assert _rms(d, truth) < 0.1  # measured 0.02-0.04
    # OpenCV's default (a corner needs both neighbouring markers) finds fewer corners
    stock = detect(img, CHARUCO, DetectionOptions(charuco_min_markers=2))
    assert stock.count < d.count if stock else True


def test_charuco_too_few_corners_and_no_board():
    img, _ = _charuco_scene(*_pose(0.0, 0.0, 0.0, (0.38, 0.24), 0.35))  # a corner of the board only
    d = detect(img, CHARUCO, DetectionOptions(min_corners=40))
    assert isinstance(d, NotFound) and d.reason is NotFoundReason.TOO_FEW_CORNERS
    assert "ChArUco corners" in d.message and "at least 40 needed" in d.message
    blank = np.full((720, 1280), 110, np.uint8)
    d = detect(blank, CHARUCO)
    assert d.reason is NotFoundReason.NO_TARGET and "no ArUco markers of DICT_5X5_100" in d.message
    assert not d  # NotFound is falsy


def test_degenerate_corner_sets_are_recognized():
    row = np.column_stack([np.arange(8) * 0.09, np.zeros(8)])
    assert not _spread_ok(row, 0.09)
    two_rows = np.vstack([row, row + [0, 0.09]])
    assert _spread_ok(two_rows, 0.09)


def test_no_checkerboard_is_found_fast():
    rng = np.random.default_rng(0)
    noise = np.clip(110 + 20 * rng.standard_normal((720, 1280)), 0, 255).astype(np.uint8)
    t0 = time.perf_counter()
    d = detect(noise, BOARD)
    assert time.perf_counter() - t0 < 1.0  # FAST_CHECK + SB: 0.1 s (1.0-1.3 s without FAST_CHECK)
    assert d.reason is NotFoundReason.NO_TARGET and d.message == "no 10x7 checkerboard found"
    assert d.image_size == SIZE


def test_wrong_board_size_is_not_found(views):
    d = detect(views[0][0], Checkerboard(6, 9, 0.05))
    assert isinstance(d, NotFound) and d.reason is NotFoundReason.NO_TARGET


def test_files_unreadable_and_not_found(tmp_path, views):
    good = tmp_path / "good.png"
    cv2.imwrite(str(good), views[0][0])
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((720, 1280), 110, np.uint8))
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("not an image")
    (tmp_path / "folder.png").mkdir()
    names = ["good.png", "blank.png", "missing.png", "empty.png", "text.png", "folder.png"]
    seen = []
    results = detect_files([tmp_path / n for n in names], BOARD, progress=lambda k, n, p: seen.append((k, n)))
    assert seen == [(k + 1, 6) for k in range(6)]
    assert isinstance(results[0], Detection) and results[0].source == str(good)
    reasons = [getattr(r, "reason", None) for r in results[1:]]
    assert reasons == [NotFoundReason.NO_TARGET] + [NotFoundReason.UNREADABLE] * 4
    messages = [r.message for r in results[2:]]
    assert messages == ["file not found", "empty file", "not an image OpenCV can decode", "not a file"]
    assert str(results[2]) == f"{tmp_path / 'missing.png'}: file not found"
    with pytest.raises(OSError, match="missing.png: file not found"):
        read_image(tmp_path / "missing.png")
    assert detect_file(good, BOARD).count == 70


def test_detection_from_points_and_validation():
    d = Detection.from_points(np.zeros((5, 2)), np.zeros((5, 3)), (640, 480), "calib1 #0")
    assert d.complete and d.count == 5 and list(d.ids) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="5 image points, 4 object points"):
        Detection(np.zeros((5, 2)), np.zeros((4, 3)), np.arange(5), (640, 480), 5)


@pytest.mark.parametrize("kwargs, words", [
    ({"method": "fast"}, "method must be"),
    ({"subpix_window": -1}, "subpix_window must be >= 0"),
    ({"min_corners": 3}, "min_corners must be >= 4"),
    ({"charuco_min_markers": 3}, "charuco_min_markers"),
    ({"subpix_fraction": 1.5}, "subpix_fraction"),
])
def test_options_are_checked(kwargs, words):
    with pytest.raises(ValueError, match=words):
        DetectionOptions(**kwargs)
