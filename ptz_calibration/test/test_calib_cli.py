"""``ptz-calib`` command line: help, the intrinsics subcommand on rendered images, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import yaml

from calib_fixtures import BOARD, RIG_NOISE, SIZE, rendered_views, true_camera
from ptz_calibration import cli
from ptz_calibration.model import read_camera_info

BOARD_ARG = "checkerboard:10x7:0.05"


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Eight PNG views of the 10x7 board at the widest zoom, plus one image without it."""
    folder = tmp_path_factory.mktemp("views")
    frames, _ = rendered_views(BOARD, 0.0, n=8, seed=11, noise=RIG_NOISE, supersample=1, fill=0.7, max_tilt=0.7)
    paths = []
    for k, img in enumerate(frames):
        paths.append(str(folder / f"view{k:02d}.png"))
        cv2.imwrite(paths[-1], img)
    blank = str(folder / "blank.png")
    cv2.imwrite(blank, np.full((SIZE[1], SIZE[0]), 110, np.uint8))
    return paths, blank


def test_help(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: ptz-calib") and "intrinsics" in out
    assert cli.main(["intrinsics", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--board", "--flags", "--auto-fix", "--json", "--output", "--subpix-window", "--detector"):
        assert option in out
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("ptz-calib ")


def test_usage_errors_exit_2(capsys):
    assert cli.main([]) == 2
    assert "required: COMMAND" in capsys.readouterr().err
    assert cli.main(["intrinsics", "a.png"]) == 2
    assert "--board" in capsys.readouterr().err
    assert cli.main(["calibrate"]) == 2


def test_intrinsics_json_and_camera_info(images, capsys, tmp_path):
    paths, blank = images
    out = tmp_path / "cam.yaml"
    missing = str(tmp_path / "missing.png")
    argv = ["intrinsics", *paths, blank, missing, "--board", BOARD_ARG, "--flags", "FIX_K3",
            "--json", "-o", str(out), "--camera-name", "left"]
    assert cli.main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["command"] == "intrinsics" and report["output"] == str(out)
    assert report["target"] == {"type": "checkerboard", "rows": 7, "cols": 10, "square": 0.05}
    status = {i["file"]: i["status"] for i in report["images"]}
    assert [status[p] for p in paths] == ["used"] * 8
    assert status[blank] == "no_target" and status[missing] == "unreadable"
    c = report["calibration"]
    K, D = true_camera(0.0)
    assert abs(c["fx"] / K[0, 0] - 1) < 2e-3 and abs(c["cx"] - K[0, 2]) < 3 and c["rms"] < 0.1
    assert c["flags"] == ["FIX_K3"] and len(c["views"]) == 8
    assert set(report["timing_s"]) == {"detection", "calibration"}
    info = read_camera_info(out)
    assert info["camera_name"] == "left" and info["image_width"] == 1280
    np.testing.assert_allclose(info["camera_matrix"], c["camera_matrix"])


def test_intrinsics_human_output(images, capsys):
    paths, blank = images
    assert cli.main(["intrinsics", *paths[:5], blank, "--board", BOARD_ARG, "--auto-fix"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("checkerboard 10x7 inner corners, 50 mm squares: 6 images, 5 used, 1 skipped")
    assert "RMS reprojection error" in out and "  fx " in out and "  k2 " in out
    assert f"skipped {blank}: no 10x7 checkerboard found" in out


def test_too_few_views_exit_1(images, capsys, tmp_path):
    paths, blank = images
    assert cli.main(["intrinsics", paths[0], blank, str(tmp_path / "x.png"), "--board", BOARD_ARG]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ptz-calib intrinsics: error: 1 usable view of 3, at least 3 needed; dropped:")
    assert f"{blank}: no 10x7 checkerboard found" in err and "x.png: file not found" in err
    assert cli.main(["intrinsics", paths[0], "--board", BOARD_ARG, "--json"]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {"command": "intrinsics",
                                        "error": "1 usable view of 1, at least 3 needed"}


@pytest.mark.parametrize("extra, words", [
    (["--board", "checkerboard:10x7"], "expected checkerboard:COLSxROWS:SQUARE"),
    (["--board", "nothing.yaml"], "is neither a board"),
    (["--board", BOARD_ARG, "--flags", "FIX_EVERYTHING"], "unknown calibration flag 'FIX_EVERYTHING'"),
    (["--board", BOARD_ARG, "--min-corners", "2"], "min_corners must be >= 4"),
])
def test_bad_options_exit_1(images, capsys, extra, words):
    assert cli.main(["intrinsics", *images[0], *extra]) == 1
    assert words in capsys.readouterr().err


def test_board_from_a_file(images, capsys, tmp_path):
    manifest = tmp_path / "dataset.yaml"
    manifest.write_text(yaml.safe_dump({"target": {"type": "checkerboard", "rows": 7, "cols": 10,
                                                   "square": 0.05}}))
    assert cli.main(["intrinsics", *images[0], "--board", str(manifest), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["target"]["square"] == 0.05
    bad = tmp_path / "bad.yaml"
    bad.write_text("type: checkerboard\nrows: 7\ncols: 10\n")
    assert cli.main(["intrinsics", *images[0], "--board", str(bad)]) == 1
    assert f"{bad}: field 'square': missing" in capsys.readouterr().err


def test_runs_as_a_module(images, tmp_path):
    """``python -m ptz_calibration.cli`` (what the ``ptz-calib`` console script runs)."""
    paths, _ = images
    env = dict(os.environ)
    run = subprocess.run([sys.executable, "-m", "ptz_calibration.cli", "intrinsics", *paths,
                          "--board", BOARD_ARG, "--json"], capture_output=True, text=True, env=env,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["calibration"]["rms"] < 0.1
    helped = subprocess.run([sys.executable, "-m", "ptz_calibration.cli", "intrinsics", "--help"],
                            capture_output=True, text=True, env=env, timeout=60)
    assert helped.returncode == 0 and "--board" in helped.stdout


# -- corrections ----------------------------------------------------------------------------------

def test_corrections_measure_store_switch_and_refuse(capsys, tmp_path):
    """`corrections --simulate` fits the pointing map and the temperature compensation on the
    simulator's true left model, writes them with the model (keeping the input), reports the
    held-out pointing error at maximum zoom; --disable switches a layer off in place (.bak kept);
    an unknown layer is refused and nothing is written."""
    from ptz_calibration.drivers.simulated import package_config_file
    from ptz_calibration.model import load_model

    src = tmp_path / "left.yaml"
    src.write_text(package_config_file("sim_left_model.yaml").read_text())
    before = src.read_bytes()
    out = tmp_path / "left_corrected.yaml"
    assert cli.main(["corrections", str(src), "--simulate", "default", "--base-frame", "true",
                     "-o", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    held = result["measured"]["held_out"]
    assert held["both_px"]["rms"] <= held["none_px"]["rms"] / 3.0
    assert src.read_bytes() == before
    model = load_model(out)
    assert model.corrections.active("pointing") is not None and model.corrections.active("thermal") is not None

    assert cli.main(["corrections", str(out), "--disable", "thermal"]) == 0
    assert "thermal      off" in capsys.readouterr().out
    model = load_model(out)
    assert model.corrections.thermal is not None and model.corrections.active("thermal") is None
    assert (tmp_path / "left_corrected.yaml.bak").is_file()

    written = out.read_bytes()
    assert cli.main(["corrections", str(out), "--disable", "gearbox"]) == 1
    assert "unknown layer 'gearbox'" in capsys.readouterr().err
    assert out.read_bytes() == written
