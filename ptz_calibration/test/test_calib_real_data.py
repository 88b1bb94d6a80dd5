"""Real data (outside the repository, ``<repo>/../shared/data`` or ``$PTZ_SHARED_DATA``; its
README.md files give the sources and the reference numbers):

* OpenCV's 13 left sample images (9x6, 25 mm): ``ptz-calib intrinsics`` reproduces OpenCV's
  published ``left_intrinsics.yml`` (fx = fy = 535.916, RMS 0.3926 px, CALIB_FIX_ASPECT_RATIO, 5
  coefficients) with the detection settings of OpenCV's calibration sample of the time
  (cornerSubPix 11x11 half-window, 30 iterations, eps 0.1).
* Bouguet's calib1 corner set: the stored Camera Calibration Toolbox result is reproduced within
  OpenCV's own test tolerance.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from calib_fixtures import shared_data_dir
from ptz_calibration import cli
from ptz_calibration.calibration import CalibrationOptions, Detection, calibrate_intrinsics
from ptz_calibration.model import read_camera_info

DATA = shared_data_dir()

# left_intrinsics.yml (OpenCV samples/data)
PUBLISHED_F, PUBLISHED_C = 535.91573396163199, (342.28315473308373, 235.57082909788173)
PUBLISHED_D = (-0.26637260909660682, -0.038588898922304653, 0.0017831947042852964,
               -0.00028122100441115472, 0.23839153080878486)
PUBLISHED_RMS = 0.39259098975581364
PUBLISHED_VIEWS = (0.192965463, 1.18204820, 0.173180386, 0.193417311, 0.159574091, 0.179683909,
                   0.230989486, 0.241952404, 0.296267658, 0.167184874, 0.202002615, 0.381039530,
                   0.174401343)


def _folder(name: str) -> Path:
    folder = DATA / name
    if not folder.is_dir():
        pytest.skip(f"shared data folder {folder} does not exist (set PTZ_SHARED_DATA to the "
                    "folder holding opencv_stereo/ and opencv_calib1_points/)")
    return folder


def _run_json(argv, capsys) -> dict:
    assert cli.main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_opencv_left_images_reproduce_the_published_calibration(capsys, tmp_path):
    images = sorted(str(p) for p in _folder("opencv_stereo").glob("left*.jpg"))
    assert len(images) == 13  # left01-09, 11-14 (there is no left10)
    out = tmp_path / "left.yaml"
    report = _run_json(["intrinsics", *images, "--board", "checkerboard:9x6:0.025", "--flags", "FIX_ASPECT_RATIO",
                                 "--subpix-window", "11", "--subpix-iterations", "30", "--subpix-eps", "0.1",
                                 "--json", "-o", str(out), "--camera-name", "left"], capsys)
    c = report["calibration"]
    assert all(i["status"] == "used" and i["points"] == 54 for i in report["images"])
    assert abs(c["fx"] - PUBLISHED_F) < 1.0 and c["fy"] == c["fx"]  # measured 535.918
    assert abs(c["rms"] - PUBLISHED_RMS) < 0.03  # measured 0.39287
    assert abs(c["cx"] - PUBLISHED_C[0]) < 0.1 and abs(c["cy"] - PUBLISHED_C[1]) < 0.1
    np.testing.assert_allclose(list(c["distortion"].values()), PUBLISHED_D, atol=2e-3)
    np.testing.assert_allclose([v["rms"] for v in c["views"]], PUBLISHED_VIEWS, atol=0.01)
    assert c["flags"] == ["FIX_ASPECT_RATIO"]
    info = read_camera_info(out)
    assert info["camera_name"] == "left" and info["camera_matrix"][0, 0] == pytest.approx(c["fx"])


def test_opencv_left_images_with_the_default_detector(capsys):
    """The default sub-pixel window (0.3 x spacing, 7-11 px here) halves the RMS: OpenCV's 11 px
    window reaches the outer edges of the 22-37 px squares. fx moves by 2.8 px (0.5 %)."""
    images = sorted(str(p) for p in _folder("opencv_stereo").glob("left*.jpg"))
    c = _run_json(["intrinsics", *images, "--board", "checkerboard:9x6:0.025", "--flags", "FIX_ASPECT_RATIO", "--json"],
                  capsys)["calibration"]
    assert c["rms"] < 0.2  # measured 0.1776
    assert abs(c["fx"] / PUBLISHED_F - 1) < 0.01  # measured 533.07
    assert max(v["rms"] for v in c["views"]) < 0.3  # left02 is no outlier any more (1.18 px above)


def _read_calib1(path: Path):
    tokens = path.read_text().split()
    w, h, cols, rows, n_images, flags = (int(t) for t in tokens[:6])
    n = cols * rows
    count = 5 * n * n_images + 8 + 12 * n_images  # points, fc cc kc, rotations, translations
    values = np.array(tokens[6: 6 + count], dtype=float)  # (the toolbox log follows)
    obj = values[: 3 * n * n_images].reshape(n_images, n, 3)
    img = values[3 * n * n_images: 5 * n * n_images].reshape(n_images, n, 2)
    ref = values[5 * n * n_images:]
    rest = ref[8:]
    rotations = rest[: 9 * n_images].reshape(n_images, 3, 3).transpose(0, 2, 1)  # stored column-major
    translations = rest[9 * n_images: 12 * n_images].reshape(n_images, 3)
    return (w, h), flags, obj, img, ref[:2], ref[2:4], ref[4:8], rotations, translations


def test_bouguet_calib1_reproduces_the_toolbox_result():
    size, flags, obj, img, fc, cc, kc, rotations, translations = _read_calib1(
        _folder("opencv_calib1_points") / "calib1.dat")
    assert size == (640, 480) and flags == 14464 and obj.shape == (7, 35, 3)
    views = [Detection.from_points(i, o, size, f"image {k}") for k, (i, o) in enumerate(zip(img, obj))]
    c = calibrate_intrinsics(views, CalibrationOptions(flags=flags))
    tol = 0.1  # OpenCV's CV_CameraCalibrationTest on fx, fy, cx, cy and each distortion term
    assert abs(c.fx - fc[0]) < tol and abs(c.fy - fc[1]) < tol  # measured 809.9487, 806.5609
    assert abs(c.cx - cc[0]) < tol and abs(c.cy - cc[1]) < tol  # measured 361.9961, 214.3952
    np.testing.assert_allclose(c.distortion[:4], kc, atol=tol)
    np.testing.assert_allclose(c.distortion[:4], kc, atol=1e-4)  # in fact: the toolbox's 5 digits
    assert c.distortion[4] == 0.0  # FIX_K3
    for k, (r, t) in enumerate(zip(c.rvecs, c.tvecs)):
        np.testing.assert_allclose(cv2.Rodrigues(r)[0], rotations[k], atol=0.05)
        np.testing.assert_allclose(t, translations[k], atol=0.1)
    residuals = np.concatenate([cv2.projectPoints(o, r, t, c.camera_matrix, c.distortion)[0].reshape(-1, 2) - i
                                for o, i, r, t in zip(obj, img, c.rvecs, c.tvecs)])
    assert np.abs(residuals).max() < 1.0
    np.testing.assert_allclose(residuals.std(axis=0, ddof=1), [0.10179, 0.09492], atol=2e-5)  # toolbox err
