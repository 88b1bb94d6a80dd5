"""Intrinsics over zoom against the simulator's ground truth, model selection by leave-one-zoom-out
cross-validation, and bad input (``calibration.zoom_fit``, ``ptz-calib zoom-intrinsics``).

Dataset: the default rig's left camera through the capture protocol with 12 zoom steps evenly
spaced over raw 0..16384 (fx 1102..22040 px), 6 views each, plus 4 + 3 pan/tilt sweep views at the
widest zoom: 79 images with the rig's sensor noise, encoder quantization and noise, backlash,
periodic gear error and thermal drift; rendered with 1 sample per pixel instead of the rig's 2
(half the time; the corners are as accurate). Every number is checked against the TRUE model
(``truth.yaml``) at zooms NOT used for the fit: midway between the steps and on a 64-raw grid.

Tolerances, per quantity and zoom band (measured values in brackets):

* focal length, whole range: 0.5 % (the issue's target) [max 0.25 %]. Budget: the cubic spline
  through 12 steps misses this lens' focal curve by up to 0.31 % even with exact samples (largest
  at the wide end, where the true table has a kink), the linked per-step focal lengths are off by
  <= 0.13 % (reported std 0.09-0.15 %). Zhang's method alone is off by up to 31 % at the long end
  (std 18 %): every board is seen within 2 deg of fronto-parallel there.
* principal point, band where the data determine it (Zhang leaves it free: the wide steps up to
  raw 2979; std ~1 px): 3 px [0.6 px]. Band where it is held (the longer steps): 4 px [2.0 px]: it
  is held at the inverse-variance mean of the determined steps (~0.5 px std), and the true
  principal point moves by up to 2.2 px from there to the long end, which no view at a long focal
  length can see (the image shift is indistinguishable from a turn of the board).
* distortion: 1 px anywhere in the image [0.27 px].
* zoom translation (a by-product, relative to the widest step): 12 mm [8.4 mm] of 38 mm; only two
  board distances (4.0 and 4.8 m) are seen below raw ~5000, which separates it poorly there.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from calib_fixtures import synthetic_detections, fast_rig
from ptz_calibration import cli
from ptz_calibration.calibration import (
    CalibrationOptions,
    Capture,
    Checkerboard,
    ProtocolOptions,
    ZoomFitError,
    ZoomFitOptions,
    calibrate_intrinsics,
    calibrate_zoom,
    fit_parameter,
    group_zoom_steps,
    load_dataset,
    load_truth,
    run_protocol,
    save_manifest,
)
from ptz_calibration.model import load_model, model_from_dict, read_camera_info
from ptz_calibration.simulation import load_rig

#: The zoom-only tool on the four boards it was designed with: the near board (added for the
#: kinematic calibration, which needs a second distance at the widest zoom) and its sweeps are
#: left out here; with them the zoom-only fit's distortion misses by up to 1.5 px and its held
#: principal point by 3.5 px (the full pipeline, test_calib_pipeline.py, does better).
FOUR_BOARDS = ("big_checkerboard", "charuco_board", "mid_checkerboard", "far_checkerboard", "far_charuco")
SMALL = ProtocolOptions(zoom_steps=12, views_per_step=6, pan_sweep=4, tilt_sweep=3, seed=1,
                        targets=FOUR_BOARDS, sweep_boards=1)


def _run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """The small dataset, calibrated with ``ptz-calib zoom-intrinsics`` (~10 s together)."""
    root = tmp_path_factory.mktemp("zoom")
    run_protocol(fast_rig(), "left", root / "data", SMALL)
    code, text, err = _run_cli(["zoom-intrinsics", str(root / "data"), str(root / "out")])
    assert code == 0, err
    report = json.loads((root / "out" / "report.json").read_text())
    truth = load_truth(root / "data")
    return {"root": root, "report": report, "truth": truth, "true_model": model_from_dict(truth["model"]),
            "model": load_model(root / "out" / "model.yaml"), "text": text, "stderr": err}


def _held_out(report) -> np.ndarray:
    zooms = np.array([s["zoom"] for s in report["steps"]])
    return np.union1d(0.5 * (zooms[1:] + zooms[:-1]), np.arange(32, 16384, 64.0))


def _true_K_of_steps(report, truth) -> list[np.ndarray]:
    """Mean true camera matrix over the images of each step (with its thermal drift)."""
    K = {c["index"]: np.array(c["camera_matrix"]) for c in truth["captures"]}
    out = []
    for s in report["steps"]:
        images = [c["index"] for c in truth["captures"] if c["zoom"] == s["zoom"]]
        out.append(np.mean([K[i] for i in images], axis=0))
    return out


# -- accuracy against the truth ------------------------------------------------------------------
def test_focal_length_at_held_out_zooms(small):
    model, true = small["model"], small["true_model"]
    z = _held_out(small["report"])
    for k in (0, 1):
        err = model.camera_matrix(z)[:, k, k] / true.camera_matrix(z)[:, k, k] - 1
        assert np.abs(err).max() < 0.005, (k, float(np.abs(err).max()), float(z[np.argmax(np.abs(err))]))
    # and the zoom mapping is fx / fx(widest)
    np.testing.assert_allclose(model.zoom_mapping.magnification(z),
                               model.camera_matrix(z)[:, 0, 0] / model.camera_matrix(0.0)[0, 0], rtol=1e-6)
    assert model.zoom_mapping.magnification(16384.0) == pytest.approx(20.0, rel=0.005)


def test_linked_focal_lengths_and_why_they_are_needed(small):
    report = small["report"]
    steps = report["steps"]
    for s, K in zip(steps, _true_K_of_steps(report, small["truth"])):
        fx = s["estimates"]["fx"]
        assert fx["source"] == "linked"
        err = fx["value"] / K[0, 0] - 1
        assert abs(err) < 4 * fx["std"] / fx["value"] and abs(err) < 0.003, (s["zoom"], err)
        assert fx["std"] / fx["value"] < 0.003
    # Zhang's method alone cannot determine the long focal lengths in this scene
    longest = steps[-1]
    assert longest["zhang"]["std"]["fx"] / longest["zhang"]["fx"] > 0.02
    assert longest["zhang"]["max_view_tilt_deg"] < 3.0
    link = report["linking"]
    assert link["used"] and sum(lk["used"] for lk in link["links"]) >= len(steps) - 1
    assert link["chi2_per_dof"] < 3.0


def test_principal_point_per_zoom_band(small):
    report, model, true = small["report"], small["model"], small["true_model"]
    zooms = np.array([s["zoom"] for s in report["steps"]])
    free = np.array([s["estimates"]["cx"]["source"] == "zhang" for s in report["steps"]])
    assert free[0] and not free[-1]  # determined at the wide end, held at the long end
    determined_to = zooms[free].max()
    z = _held_out(report)
    for k in (0, 1):
        err = np.abs(model.camera_matrix(z)[:, k, 2] - true.camera_matrix(z)[:, k, 2])
        assert err[z <= determined_to].max() < 3.0, k
        assert err.max() < 4.0, k
    held = [s["estimates"]["cx"] for s in report["steps"] if s["estimates"]["cx"]["source"] == "fixed"]
    assert all("principal point fixed at" in h["why"] for h in held)


def test_distortion_at_held_out_zooms(small):
    """The fitted distortion moves no image point by more than 1 px from the true distortion
    (measured 0.27 px): k1 and k2 are determined at the wide steps, held where their effect is
    below 0.2 px at the image corner."""
    model, true = small["model"], small["true_model"]
    u, v = np.meshgrid(np.linspace(0, 1279, 9), np.linspace(0, 719, 5))
    worst = 0.0
    for z in _held_out(small["report"])[::4]:
        K = true.camera_matrix(z)
        x = np.stack([(u.ravel() - K[0, 2]) / K[0, 0], (v.ravel() - K[1, 2]) / K[1, 1]], axis=1)
        dt = cv2.projectPoints(np.c_[x, np.ones(len(x))], np.zeros(3), np.zeros(3), K, true.distortion(z))[0]
        df = cv2.projectPoints(np.c_[x, np.ones(len(x))], np.zeros(3), np.zeros(3), K, model.distortion(z))[0]
        worst = max(worst, float(np.abs(dt - df).max()))
    assert worst < 1.0


def test_zoom_translation_by_product(small):
    true = small["true_model"]
    for s in small["report"]["steps"]:
        d = s["zoom_translation"]["value"]
        assert abs(d - true.kinematics.zoom_translation(s["zoom"])) < 0.012, s["zoom"]


def test_cross_validation_choice(small):
    params = small["report"]["parameters"]
    for name, p in params.items():
        scores = {f: e for f, e in p["cv_error"].items() if e is not None}
        assert set(p["cv_error"]) == {"piecewise_linear", "polynomial_1", "polynomial_2", "polynomial_3",
                                      "polynomial_4", "exp2", "cubic_spline"}
        assert p["family"] == min(scores, key=scores.get), name  # the smallest CV error wins
        assert len(p["samples"]) == 12
    # focal length: 20x over the range, not a polynomial or a two-term exponential; the spline
    # of log f predicts a left-out step to ~1 % [0.97 %], 3.5x better than the next family (exp2)
    for name in ("fx", "fy"):
        p = params[name]
        assert p["family"] == "cubic_spline"
        assert p["cv_relative"]["cubic_spline"] < 0.015
        others = [e for f, e in p["cv_error"].items() if f != "cubic_spline" and e is not None]
        assert min(others) > 3 * p["cv_error"]["cubic_spline"]
        assert p["cv_error"]["polynomial_1"] > 50 * p["cv_error"]["cubic_spline"]
    # the principal point moves by ~2 px over the range; only the wide steps measure it: any
    # family but the spline (whose wiggles extrapolate) predicts a left-out step within 1 px
    for name in ("cx", "cy"):
        p = params[name]
        assert p["family"] != "cubic_spline" and p["cv_error"][p["family"]] < 1.0, p


def test_cli_outputs(small):
    root, report = small["root"], small["report"]
    out = root / "out"
    assert report["command"] == "zoom-intrinsics" and report["camera"] == "left"
    assert report["output"]["model"] == str(out / "model.yaml")
    infos = report["output"]["camera_info"]
    assert [Path(p).name for p in infos] == [f"left_zoom_{z}.yaml" for z in (0, 4096, 8192, 12288, 16384)]
    info = read_camera_info(infos[2])
    np.testing.assert_allclose(info["camera_matrix"], small["model"].camera_matrix(8192.0))
    model = small["model"]
    assert model.camera_name == "left" and model.metadata["kinematics"] == "ideal (not calibrated)"
    assert np.allclose(model.kinematics.pan_radius, 0) and model.kinematics.zoom_translation(16384.0) == 0
    assert set(report["timing_s"]) == {"detection", "zhang", "link", "fit", "total"}
    text = small["text"]  # the human-readable output; no progress bar (stderr is not a terminal)
    assert small["stderr"] == ""
    assert text.startswith("camera left (1280x720): 12 of 12 zoom steps used, 79 captures")
    assert "fx  cubic_spline" in text and "linked" in text and f"wrote {out / 'model.yaml'}" in text


def test_without_links_zhang_alone(small, tmp_path):
    """A dataset without same-pose views (or ``--no-link``): every step keeps Zhang's own focal
    length and standard deviation. On the four widest steps of the small dataset (raw 0-4468, where
    the views still reach 12-25 deg off fronto-parallel) that is within 4 std of the truth."""
    src = small["root"] / "data"
    data = yaml.safe_load((src / "manifest.yaml").read_text())
    data["captures"] = [c for c in data["captures"] if c["zoom"] <= 4468]
    (tmp_path / "images").symlink_to(src / "images")
    (tmp_path / "manifest.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    fit = calibrate_zoom(load_dataset(tmp_path), options=ZoomFitOptions(link_steps=False))
    assert not fit.links and not fit.report["linking"]["used"]
    Ks = _true_K_of_steps(fit.report, small["truth"])
    for s, K in zip(fit.report["steps"], Ks):
        fx = s["estimates"]["fx"]
        assert fx["source"] == "zhang" and abs(fx["value"] / K[0, 0] - 1) < 4 * fx["std"] / fx["value"]
        assert "zoom_translation" not in s


# -- bad input -----------------------------------------------------------------------------------
def test_bad_input_completes_with_what_is_usable(small, tmp_path):
    """NaN feedback, missing image files and a zoom step without a usable view: each named, the
    rest calibrated."""
    src = small["root"] / "data"
    shutil.copytree(src / "images", tmp_path / "images")
    data = yaml.safe_load((src / "manifest.yaml").read_text())
    caps = data["captures"]
    caps[3]["pan"] = float("nan")
    caps[4]["tilt"] = float("nan")
    (tmp_path / caps[5]["image"]).unlink()
    blank = np.full((720, 1280), 110, np.uint8)
    step = [c for c in caps if c["zoom"] == 8937]
    for c in step:  # the board is in none of this step's images
        cv2.imwrite(str(tmp_path / c["image"]), blank)
    (tmp_path / "manifest.yaml").write_text(yaml.safe_dump(data, sort_keys=False))

    code, out, err = _run_cli(["zoom-intrinsics", str(tmp_path), str(tmp_path / "out"), "--json"])
    assert code == 0, err
    report = json.loads(out)
    assert json.loads((tmp_path / "out" / "report.json").read_text()) == report
    from ptz_calibration.cli import _print_zoom  # the human-readable form of the same report
    buffer = io.StringIO()
    _print_zoom(buffer, report)
    text = buffer.getvalue()
    manifest = tmp_path / "manifest.yaml"
    assert (f"dropped {manifest}: captures[3] ({caps[3]['image']}): field 'pan': feedback is not finite (nan)"
            in text)
    assert f"dropped {manifest}: captures[4] ({caps[4]['image']}): field 'tilt': feedback is not finite" in text
    assert f"captures[5] ({caps[5]['image']}): field 'image': image file not found" in text
    assert f"warning: zoom step 8937 dropped: 0 usable views of {len(step)}, at least 3 needed" in text
    assert "no view: images/left_" in text and "no 10x7 checkerboard found" in text or "no ChArUco" in text
    assert "11 of 12 zoom steps used" in text
    assert [d["index"] for d in report["dropped_captures"]] == [3, 4, 5]
    dropped = [s for s in report["steps"] if s["status"] == "dropped"]
    assert [s["zoom"] for s in dropped] == [8937.0] and len(report["rejected_images"]) >= len(step)
    # what is left still gives the focal length (the gap is bridged by the spline)
    model, true = load_model(tmp_path / "out" / "model.yaml"), small["true_model"]
    z = _held_out(small["report"])
    err = model.camera_matrix(z)[:, 0, 0] / true.camera_matrix(z)[:, 0, 0] - 1
    assert np.abs(err).max() < 0.01


def test_nothing_usable_fails_cleanly(tmp_path):
    caps = [Capture(f"b{i}.png", "left", 0.01 * i, 0.0, 0.0) for i in range(4)]
    for c in caps:
        cv2.imwrite(str(tmp_path / c.image), np.full((72, 128), 110, np.uint8))
    save_manifest(tmp_path, {"target": Checkerboard(7, 10, 0.05)}, caps)
    with pytest.raises(ZoomFitError, match="the target was found in none of the 4 images of camera 'left'"):
        calibrate_zoom(load_dataset(tmp_path))
    code, out, err = _run_cli(["zoom-intrinsics", str(tmp_path), str(tmp_path / "out"), "--json"])
    assert code == 1 and json.loads(out)["error"].endswith("b3.png: no 10x7 checkerboard found") is False
    assert "zoom-intrinsics: error:" in err and "found in none of the 4 images" in err
    assert not (tmp_path / "out").exists()
    code, _, err = _run_cli(["zoom-intrinsics", str(tmp_path / "nope"), str(tmp_path / "out")])
    assert code == 1 and "no such file or folder" in err
    code, _, err = _run_cli(["zoom-intrinsics", str(tmp_path), str(tmp_path / "out"), "--families", "spline"])
    assert code == 1 and "unknown curve family 'spline'" in err


# -- pieces --------------------------------------------------------------------------------------
def test_group_zoom_steps():
    caps = [Capture(f"{i}.png", "c", 0, 0, z, index=i) for i, z in enumerate([100, 0, 0.4, 100.3, 5000, 99.9])]
    groups = group_zoom_steps(caps, tolerance=0.5)
    assert [(z, [c.index for c in g]) for z, g in groups] == [(0.2, [1, 2]), (100.0, [0, 3, 5]), (5000.0, [4])]
    assert len(group_zoom_steps(caps, tolerance=0.0)) == 6


def test_fit_parameter_chooses_the_generating_family():
    rng = np.random.default_rng(3)
    z = np.linspace(0, 16384, 15)
    s = z / 16384
    quad = 640 + 4 * s - 3 * s**2
    fit = fit_parameter("cx", z, quad + 0.02 * rng.standard_normal(15), np.full(15, 0.02))
    assert fit.family in ("polynomial_2", "polynomial_3")  # 3 may fit the noise as well
    assert fit.cv_error["polynomial_1"] > 5 * fit.cv_error[fit.family]
    assert abs(fit.curve(8000.0) - (640 + 4 * 8000 / 16384 - 3 * (8000 / 16384) ** 2)) < 0.03
    expo = 1000 * np.exp(2.5 * s) + 100 * np.exp(-4 * s)
    fit = fit_parameter("fx", z, expo * (1 + 1e-4 * rng.standard_normal(15)), 1e-4 * expo)
    assert fit.family in ("exp2", "cubic_spline") and fit.cv_error["exp2"] < fit.cv_error["polynomial_4"]
    # held samples are fitted but never scored; a single measured sample gives a constant
    fixed = np.arange(15) >= 5
    fit = fit_parameter("k1", z, np.where(fixed, 0.0, -0.2 + 0.01 * s), np.full(15, 0.001), fixed)
    assert all(sample["fixed"] == f for sample, f in zip(fit.samples, fixed))
    fit = fit_parameter("k2", [10.0], [0.05], [0.01])
    assert fit.family == "constant" and fit.curve(16000.0) == pytest.approx(0.05)


def test_options_are_checked():
    for bad in (dict(families=("spline",)), dict(families=()), dict(min_views=1), dict(pose_tolerance=0)):
        with pytest.raises(ValueError):
            ZoomFitOptions(**bad)


def test_auto_fix_holds_terms_at_the_initial_values():
    """A zoom step started from its neighbour keeps the neighbour's tangential terms and k2 where
    the views cannot determine them (zeroing p1, p2 would shift the principal point at long
    focal lengths), and says so."""
    dets, K, D = synthetic_detections(zoom=16384.0, n=8, noise_px=0.2, seed=1, fill=0.7, max_tilt=0.7)
    guess = np.array([0.01, 0.002, 0.0004, -0.00025, 0.0])
    c = calibrate_intrinsics(dets, CalibrationOptions(
        flags=cv2.CALIB_USE_INTRINSIC_GUESS, camera_matrix=K, distortion=guess, auto_fix=True,
        keep_initial_tangential=True))
    assert c.flags & cv2.CALIB_FIX_TANGENT_DIST and not c.flags & cv2.CALIB_ZERO_TANGENT_DIST
    np.testing.assert_allclose(c.distortion[1:4], guess[1:4])
    assert c.fixed["tangential"].startswith("p1, p2 held at their initial values (0.0004, -0.00025): not determined")
    assert c.fixed["k2"].startswith("k2 held at its initial value 0.002: not determined")
    assert "the initial camera matrix's" in c.fixed["principal_point"]


# -- the default protocol ------------------------------------------------------------------------
@pytest.mark.slow
def test_default_protocol(tmp_path):
    """The default protocol on the four boards (20 zoom steps x 8 views + 9 + 7 sweep views = 176 images; 1 sample per
    pixel for time): focal length within 0.5 % of the truth at held-out zooms [0.31 %], principal
    point within 3 px [1.8 px]. ~20-35 s."""
    run_protocol(fast_rig(), "left", tmp_path / "data", ProtocolOptions(targets=FOUR_BOARDS, sweep_boards=1,
                                                                          pan_sweep=9, tilt_sweep=7))
    fit = calibrate_zoom(load_dataset(tmp_path / "data"))
    true = model_from_dict(load_truth(tmp_path / "data")["model"])
    assert len(fit.steps) == 20 and all(s.ok for s in fit.steps)
    z = np.arange(32, 16384, 64.0)
    K, Kt = fit.intrinsics.camera_matrix(z), true.camera_matrix(z)
    assert np.abs(K[:, 0, 0] / Kt[:, 0, 0] - 1).max() < 0.005
    assert np.abs(K[:, :2, 2] - Kt[:, :2, 2]).max() < 3.0
    assert math.isclose(fit.mapping.magnification(16384.0), 20.0, rel_tol=0.003)
