"""Rendering accuracy of the simulator: detected corners against the true projections."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from ptz_calibration.simulation.render import (
    ImageNoise,
    RenderOptions,
    distort_normalized,
    look_at,
    project_points,
    render,
    undistort_normalized,
)
from ptz_calibration.simulation.targets import (
    CharucoTarget,
    Checkerboard,
    PlacedTarget,
    Scene,
    rpy_matrix,
)

# a board facing a camera that looks along world +x (target z = world +x)
FACING = rpy_matrix(-np.pi / 2, 0.0, -np.pi / 2)
WIDTH, HEIGHT = 1280, 720
STRONG = np.array([-0.25, 0.08, 0.0005, -0.0003, 0.0])  # wide-angle barrel distortion
SUBPIX = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 100, 1e-4)


def camera_matrix(fx: float) -> np.ndarray:
    return np.array([[fx, 0.0, 641.3], [0.0, fx * 1.001, 358.2], [0.0, 0.0, 1.0]])


def placed(target, centre, rpy=(0.2, -0.3, 0.1), name="board") -> PlacedTarget:
    """The target with its physical centre at ``centre``, tilted by ``rpy`` from facing the rig."""
    r = FACING @ rpy_matrix(*rpy)
    x0, y0, x1, y1 = target.extent
    mid = np.array([(x0 + x1) / 2, (y0 + y1) / 2, 0.0])
    return PlacedTarget(name, target, r, np.asarray(centre, float) - r @ mid)


def detect_chessboard(img: np.ndarray, board: Checkerboard, truth: np.ndarray) -> np.ndarray:
    ok, corners = cv2.findChessboardCorners(img, board.pattern_size)
    assert ok, "chessboard not detected"
    corners = cv2.cornerSubPix(img, corners, (5, 5), (-1, -1), SUBPIX).reshape(-1, 2)
    # the pattern is 180-degree symmetric for some sizes: align the detection order with truth
    if np.linalg.norm(corners[0] - truth[0]) > np.linalg.norm(corners[0] - truth[-1]):
        corners = corners[::-1]
    return corners


CHESS_CASES = {
    # name: (board, board centre, camera eye, camera aim, fx, distortion)
    "wide_centre_distorted": (Checkerboard(7, 10, 0.08), (3, 0, 0), (0, 0, 0), (3, 0, 0), 1100, STRONG),
    "wide_off_axis_distorted": (Checkerboard(7, 10, 0.08), (3, 0, 0), (0, 0.5, 0.3), (3, 0.6, 0.3), 1100, STRONG),
    "wide_oblique_distorted": (Checkerboard(7, 10, 0.08), (3, 0, 0), (0.5, -0.8, 0.2), (3, 0.4, 0), 1100, STRONG),
    "wide_ideal_lens": (Checkerboard(7, 10, 0.08), (3, 0, 0), (0, 0, 0), (3, 0.1, -0.1), 1400, np.zeros(5)),
    "long_centre": (Checkerboard(7, 10, 0.02), (10, 0, 0), (0, 0, 0), (10, 0, 0), 22000, [0.01, 0, 0, 0, 0]),
    "long_off_axis": (Checkerboard(7, 10, 0.02), (10, 0, 0), (0, 0, 0), (10, 0.1, 0.06), 16000,
                      [0.3, 0, 0.001, 0.001, 0]),
}


@pytest.mark.parametrize("case", sorted(CHESS_CASES))
def test_chessboard_corners_match_true_projection(case):
    """Noise-free render: findChessboardCorners + cornerSubPix within 0.05 px RMS of truth."""
    board, centre, eye, aim, fx, dist = CHESS_CASES[case]
    target = placed(board, centre)
    K = camera_matrix(fx)
    R, t = look_at(eye, aim)
    img = render(Scene([target]), K, dist, (WIDTH, HEIGHT), R, t)
    truth, _ = project_points(target.object_points_world(), K, dist, R, t)
    assert np.all((truth > 20) & (truth < [WIDTH - 20, HEIGHT - 20])), "test geometry: board must be inside"
    corners = detect_chessboard(img, board, truth)
    err = corners - truth
    rms = np.sqrt(np.mean(np.sum(err**2, axis=1)))
    assert rms < 0.05, f"{case}: corner RMS error {rms:.4f} px"
    assert np.abs(err).max() < 0.1, f"{case}: worst corner error {np.abs(err).max():.4f} px"
    assert np.linalg.norm(err.mean(axis=0)) < 0.02, f"{case}: corner bias {err.mean(axis=0)}"


def test_charuco_detection_matches_truth():
    """ChArUco ids are the true ones; interpolated corners within 0.1 px RMS of truth."""
    board = CharucoTarget(8, 6, 0.06, 0.045, "DICT_5X5_100")
    target = placed(board, (2.5, 0.0, 0.0), rpy=(0.15, 0.25, -0.05))
    K = camera_matrix(1300.0)
    dist = [-0.2, 0.05, 0.0, 0.0, 0.0]
    R, t = look_at((0, 0.05, 0.02), (2.5, 0.0, 0.0))
    img = render(Scene([target]), K, dist, (WIDTH, HEIGHT), R, t)

    detector = cv2.aruco.CharucoDetector(board.board())
    ch_corners, ch_ids, marker_corners, marker_ids = detector.detectBoard(img)
    assert marker_ids is not None and ch_ids is not None
    assert set(marker_ids.ravel()) == set(board.marker_ids()), "every marker is seen, no false ids"

    # marker corners (contour based, not refined: pixel-level accuracy only)
    world_markers = board.marker_corners() @ target.R.T + target.t
    ids = list(board.marker_ids())
    marker_err = []
    for corners, mid in zip(marker_corners, marker_ids.ravel()):
        truth, _ = project_points(world_markers[ids.index(mid)], K, dist, R, t)
        marker_err.append(corners.reshape(4, 2) - truth)
    marker_err = np.concatenate(marker_err)
    assert np.abs(marker_err).max() < 2.0, f"marker corner error {np.abs(marker_err).max():.3f} px"

    truth, _ = project_points(target.object_points_world(), K, dist, R, t)
    ch_ids = ch_ids.ravel()
    n_expected = (board.squares_x - 1) * (board.squares_y - 1)
    assert len(ch_ids) == n_expected, f"{len(ch_ids)} of {n_expected} ChArUco corners"
    err = ch_corners.reshape(-1, 2) - truth[ch_ids]
    rms = np.sqrt(np.mean(np.sum(err**2, axis=1)))
    assert rms < 0.1, f"ChArUco corner RMS error {rms:.4f} px"


def test_charuco_texture_is_exact():
    """Texture texels align with squares and marker bits; markers decode from the texture."""
    board = CharucoTarget(5, 4, 0.1, 0.07, "DICT_5X5_100")
    tex = board.texture()
    n = int(round(board.square / tex.texel))
    assert abs(n * tex.texel - board.square) < 1e-12
    bits = board.aruco_dictionary().markerSize + 2
    assert round(board.marker / tex.texel) % bits == 0
    # every marker bit cell is uniform
    mt = int(round(board.quiet_zone / tex.texel))
    bit = int(round(board.marker / tex.texel)) // bits
    for corners in board.marker_corners():
        c0 = mt + int(round(corners[0, 0] / tex.texel))
        r0 = mt + int(round(corners[0, 1] / tex.texel))
        cell = tex.image[r0 : r0 + bits * bit, c0 : c0 + bits * bit].reshape(bits, bit, bits, bit)
        assert np.all(cell.min(axis=(1, 3)) == cell.max(axis=(1, 3)))
    img = (tex.image * 255).astype(np.uint8)
    img = cv2.resize(img, None, fx=4, fy=4, interpolation=cv2.INTER_NEAREST)
    _, ids, _ = cv2.aruco.ArucoDetector(board.aruco_dictionary()).detectMarkers(img)
    assert set(ids.ravel()) == set(board.marker_ids())


def test_checkerboard_texture_and_points():
    board = Checkerboard(4, 6, 0.05, margin=0.025)
    tex = board.texture()
    assert tex.extent == pytest.approx(board.extent)
    pts = board.object_points()
    assert pts.shape == (24, 3) and np.all(pts[:, 2] == 0)
    assert pts[7] == pytest.approx([0.05, 0.05, 0.0])  # row 1, column 1
    # texel at the centre of the top-left square is black, its neighbour square white
    n = int(round(board.square / tex.texel))
    m = int(round(board.quiet_zone / tex.texel))
    assert tex.image[m + n // 2, m + n // 2] == 0.0
    assert tex.image[m + n // 2, m + n + n // 2] == 1.0


def test_undistort_inverts_distort():
    rng = np.random.default_rng(3)
    xy = rng.uniform(-0.6, 0.6, size=(2, 2000))
    d = [-0.25, 0.08, 0.0005, -0.0003, 0.001]
    xd, yd = distort_normalized(xy[0], xy[1], d)
    x, y, ok = undistort_normalized(xd, yd, d)
    assert ok.all()
    assert np.abs(x - xy[0]).max() < 1e-12 and np.abs(y - xy[1]).max() < 1e-12


def test_project_points_matches_opencv():
    rng = np.random.default_rng(4)
    pts = rng.uniform([2, -1, -1], [5, 1, 1], size=(50, 3))
    K = camera_matrix(1500.0)
    R, t = look_at((0.1, 0.2, 0.0), (3, 0, 0.1))
    uv, z = project_points(pts, K, STRONG, R, t)
    rvec, _ = cv2.Rodrigues(R.T)
    ref, _ = cv2.projectPoints(pts, rvec, -R.T @ t, K, STRONG)
    assert np.all(z > 0)
    assert np.abs(uv - ref.reshape(-1, 2)).max() < 1e-6


def test_nearer_target_occludes_and_back_side():
    near = placed(Checkerboard(3, 3, 0.1), (2.0, 0, 0), rpy=(0, 0, 0), name="near")
    far = placed(Checkerboard(3, 3, 0.3), (4.0, 0, 0), rpy=(0, 0, 0), name="far")
    K = camera_matrix(1000.0)
    R, t = look_at((0, 0, 0), (1, 0, 0))
    both = render(Scene([far, near]), K, np.zeros(5), (WIDTH, HEIGHT), R, t)
    only_near = render(Scene([near]), K, np.zeros(5), (WIDTH, HEIGHT), R, t)
    # the near board's footprint is identical whether or not the far board is behind it
    u, _ = project_points(near.outline_world(4), K, np.zeros(5), R, t)
    c0, r0 = np.floor(u.min(axis=0)).astype(int) + 3
    c1, r1 = np.ceil(u.max(axis=0)).astype(int) - 3
    assert np.array_equal(both[r0:r1, c0:c1], only_near[r0:r1, c0:c1])
    # seen from behind, a board shows its uniform back side
    R_back, t_back = look_at((6.0, 0, 0), (2.0, 0, 0))
    back = render(Scene([near]), K, np.zeros(5), (WIDTH, HEIGHT), R_back, t_back)
    assert abs(int(back[HEIGHT // 2, WIDTH // 2]) - round(near.back)) <= 1


def test_empty_view_is_background():
    board = placed(Checkerboard(3, 3, 0.1), (2.0, 0, 0))
    K = camera_matrix(1000.0)
    R, t = look_at((0, 0, 0), (-1, 0, 0))  # looking away: the board is behind the camera
    scene = Scene([board], background=77.0)
    img = render(scene, K, STRONG, (WIDTH, HEIGHT), R, t)
    assert np.all(img == 77)


def test_sensor_noise_statistics_and_seed():
    scene = Scene([], background=100.0)
    K = camera_matrix(1000.0)
    R, t = look_at((0, 0, 0), (1, 0, 0))
    noise = ImageNoise(read_noise=2.0, shot_noise=0.05)
    a = render(scene, K, np.zeros(5), (WIDTH, HEIGHT), R, t, noise=noise, rng=np.random.default_rng(7),
               as_float=True)
    b = render(scene, K, np.zeros(5), (WIDTH, HEIGHT), R, t, noise=noise, rng=np.random.default_rng(7),
               as_float=True)
    assert np.array_equal(a, b)
    expected = np.sqrt(2.0**2 + 0.05 * 100.0)
    assert a.std() == pytest.approx(expected, rel=0.02)
    assert a.mean() == pytest.approx(100.0, abs=0.05)


@pytest.mark.slow
def test_render_time_full_frame():
    """A 1280x720 view filled with two boards renders in well under a second."""
    scene = Scene([placed(Checkerboard(7, 10, 0.08), (3, 0, 0), name="a"),
                   placed(CharucoTarget(12, 9, 0.06, 0.045), (3.5, -0.9, 0), name="b")])
    K = camera_matrix(2500.0)
    R, t = look_at((0, 0, 0), (3, -0.3, 0))
    render(scene, K, STRONG, (WIDTH, HEIGHT), R, t)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        render(scene, K, STRONG, (WIDTH, HEIGHT), R, t, options=RenderOptions())
        times.append(time.perf_counter() - t0)
    assert min(times) < 1.0, f"render took {min(times):.3f} s"
