"""The calibration dataset (manifest + images): round trip, validation, what is dropped and why;
the capture protocol on the simulator (plan, simulated time, reported feedback vs ground truth);
``ptz-calib simulate``."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from ptz_calibration import cli
from ptz_calibration.calibration import (
    CharucoTarget,
    Checkerboard,
    Capture,
    DatasetError,
    ProtocolOptions,
    SimClock,
    load_dataset,
    load_truth,
    plan_protocol,
    run_protocol,
    save_manifest,
)
from ptz_calibration.simulation import load_rig

TARGETS = {"board": Checkerboard(7, 10, 0.05), "charuco": CharucoTarget(10, 7, 0.09, 0.07)}


def _captures(n: int = 4) -> list[Capture]:
    return [Capture(image=f"images/c{i}.png", camera="left" if i % 2 == 0 else "right", pan=0.01 * i,
                    tilt=-0.02 * i, zoom=1000 * i, temperature=None if i == 1 else 21.5 + i,
                    stamp=None if i == 2 else 1000.0 + i, target="board" if i < 3 else "charuco",
                    tag="zoom_sweep" if i else None)
            for i in range(n)]


def _write_images(folder: Path, captures: list[Capture]) -> None:
    for c in captures:
        path = folder / c.image
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), np.full((8, 8), 128, np.uint8))


def _manifest(folder: Path) -> dict:
    return yaml.safe_load((folder / "manifest.yaml").read_text())


def _rewrite(folder: Path, data: dict) -> None:
    (folder / "manifest.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.fixture
def dataset_dir(tmp_path: Path) -> Path:
    caps = _captures()
    _write_images(tmp_path, caps)
    save_manifest(tmp_path, TARGETS, caps, (0, 16384), {"generator": "test"})
    return tmp_path


# -- round trip ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["manifest.yaml", "manifest.json"])
def test_round_trip(tmp_path, name):
    caps = _captures()
    _write_images(tmp_path, caps)
    path = save_manifest(tmp_path, TARGETS, caps, (0, 16384), {"generator": "test", "seed": 3}, name=name)
    assert path == tmp_path / name and not list(tmp_path.glob(".*.tmp"))  # atomic: no temp file left
    ds = load_dataset(tmp_path)
    assert ds.source == str(path) and ds.total == 4 and not ds.dropped and not ds.warnings
    assert ds.targets == TARGETS
    assert ds.zoom_range == (0.0, 16384.0) and ds.metadata == {"generator": "test", "seed": 3}
    assert [c.index for c in ds.captures] == [0, 1, 2, 3]
    for a, b in zip(caps, ds.captures):
        assert b == Capture(**{**a.__dict__, "index": b.index})
    assert ds.cameras == ["left", "right"]
    assert ds.image_path(ds.captures[3]) == tmp_path / "images" / "c3.png"
    assert ds.target_of(ds.captures[3]) == TARGETS["charuco"] and ds.target_name(ds.captures[0]) == "board"
    left = ds.for_camera("left")
    assert [c.index for c in left.captures] == [0, 2]
    with pytest.raises(DatasetError, match="captures of 2 cameras \\(left, right\\): choose one"):
        ds.for_camera(None)
    with pytest.raises(DatasetError, match="no usable capture of camera 'middle'"):
        ds.for_camera("middle")


def test_single_target_block_and_manifest_file_path(tmp_path):
    caps = [Capture("a.png", "cam", 0.0, 0.0, 0.0)]
    _write_images(tmp_path, caps)
    data = {"format": "ptz_calibration/dataset", "format_version": 1,
            "target": {"type": "checkerboard", "rows": 6, "cols": 9, "square": 0.025},
            "captures": [caps[0].to_dict()]}
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(data))
    ds = load_dataset(tmp_path / "m.yaml")  # a manifest file under another name
    assert list(ds.targets) == ["target"] and ds.target_of(ds.captures[0]) == Checkerboard(6, 9, 0.025)
    assert ds.for_camera(None) is ds and ds.zoom_range is None


# -- the manifest as a whole ---------------------------------------------------------------------
@pytest.mark.parametrize("change, field, message", [
    (lambda d: d.update(format="other"), "format", "expected 'ptz_calibration/dataset'"),
    (lambda d: d.update(format_version=7), "format_version", "unsupported version 7"),
    (lambda d: d.update(colour="red"), "colour", "unknown field"),
    (lambda d: d.pop("captures"), "captures", "missing or not a list"),
    (lambda d: d.update(captures=[]), "captures", "the list is empty"),
    (lambda d: d.update(zoom_range=[5, 1]), "zoom_range", "raw_min <= raw_max"),
    (lambda d: d["targets"]["board"].update(rows=1), "targets.board.rows", "expected an integer >= 2"),
    (lambda d: d["targets"]["charuco"].update(dictionary="DICT_NOPE"), "targets.charuco.dictionary",
     "unknown ArUco dictionary"),
    (lambda d: d.update(target=d["targets"]["board"]), "targets", "exactly one of 'target'"),
    (lambda d: d.update(targets={}), "targets", "non-empty mapping"),
])
def test_invalid_manifest_names_file_and_field(dataset_dir, change, field, message):
    data = _manifest(dataset_dir)
    change(data)
    _rewrite(dataset_dir, data)
    with pytest.raises(DatasetError) as info:
        load_dataset(dataset_dir)
    err = info.value
    assert err.source == str(dataset_dir / "manifest.yaml") and err.field == field
    assert message in str(err) and str(err).startswith(f"{dataset_dir / 'manifest.yaml'}: field '{field}'")


def test_unreadable_manifests(tmp_path):
    with pytest.raises(DatasetError, match="no manifest in this folder \\(looked for manifest.yaml"):
        load_dataset(tmp_path)
    with pytest.raises(DatasetError, match="no such file or folder"):
        load_dataset(tmp_path / "nope")
    (tmp_path / "manifest.yaml").write_text("captures: [\n")
    with pytest.raises(DatasetError, match="not valid YAML at line"):
        load_dataset(tmp_path)
    (tmp_path / "manifest.yaml").write_text("")
    with pytest.raises(DatasetError, match="file is empty"):
        load_dataset(tmp_path)
    (tmp_path / "manifest.yaml").unlink()
    (tmp_path / "manifest.json").write_text('{"captures": [}')
    with pytest.raises(DatasetError, match="not valid JSON at line 1"):
        load_dataset(tmp_path)


# -- single captures: dropped with the reason ----------------------------------------------------
def test_bad_captures_are_dropped_and_named(dataset_dir):
    data = _manifest(dataset_dir)
    caps = data["captures"]
    caps[0]["pan"] = float("nan")  # NaN feedback
    caps[1]["zoom"] = "wide"
    del caps[2]["tilt"]
    caps.append(dict(caps[3], image="images/missing.png"))
    caps.append(dict(caps[3], target="nope"))
    caps.append(dict(caps[3], temperature=float("nan")))  # kept: the temperature is unknown
    caps.append(dict(caps[3], colour=1))
    caps.append(dict(caps[3], image="/abs/c.png"))
    caps.append(dict(caps[3], target=None))
    _rewrite(dataset_dir, data)
    ds = load_dataset(dataset_dir)
    source = str(dataset_dir / "manifest.yaml")
    assert [c.index for c in ds.captures] == [3, 6] and ds.total == 10
    assert ds.captures[1].temperature is None
    assert ds.warnings == [f"{source}: captures[6] (images/c3.png): field 'temperature': nan read as unknown (null)"]
    got = {d.index: (d.field, d.problem) for d in ds.dropped}
    assert got[0] == ("pan", "feedback is not finite (nan): the head's reported position is unknown")
    assert got[1] == ("zoom", "expected a number (raw zoom), got 'wide'")
    assert got[2] == ("tilt", "missing (the reported position is needed)")
    assert got[4][0] == "image" and got[4][1].startswith("image file not found: ") and "missing.png" in got[4][1]
    assert got[5] == ("target", "unknown target 'nope' (targets: board, charuco)")
    assert got[7][0] == "colour" and "unknown field" in got[7][1]
    assert got[8] == ("image", "must be relative to the dataset folder, got '/abs/c.png'")
    assert got[9] == ("target", "missing: the dataset has 2 targets (board, charuco)")
    assert str(ds.dropped[0]) == (f"{source}: captures[0] (images/c0.png): field 'pan': feedback is not finite "
                                  "(nan): the head's reported position is unknown")
    assert ds.dropped[0].to_dict()["message"] == str(ds.dropped[0])


def test_nothing_usable_fails_with_the_reasons(dataset_dir):
    for p in (dataset_dir / "images").iterdir():
        p.unlink()
    with pytest.raises(DatasetError) as info:
        load_dataset(dataset_dir)
    text = str(info.value)
    assert "field 'captures': none of the 4 captures is usable:" in text
    assert text.count("image file not found") == 4
    assert len(load_dataset(dataset_dir, check_images=False).captures) == 4


def test_writer_checks_its_input(tmp_path):
    with pytest.raises(ValueError, match="at least one target"):
        save_manifest(tmp_path, {}, [])
    with pytest.raises(ValueError, match="unknown target 'x'"):
        save_manifest(tmp_path, TARGETS, [Capture("a.png", "c", 0, 0, 0, target="x")])
    with pytest.raises(ValueError, match="name its target"):
        save_manifest(tmp_path, TARGETS, [Capture("a.png", "c", 0, 0, 0)])


# -- capture protocol ----------------------------------------------------------------------------
def test_sim_clock():
    clock = SimClock(5.0)
    assert clock() == 5.0
    clock.advance_to(3.0)  # never backwards
    assert clock() == 5.0
    clock.advance_to(7.5)
    clock.sleep(0.5)
    assert clock() == 8.0


def test_plan_of_the_default_rig():
    rig = load_rig()
    spec = rig.cameras["left"]
    plan = plan_protocol(spec, rig, ProtocolOptions())
    assert len(plan.zooms) == 20 and plan.zooms[0] == 0 and plan.zooms[-1] == 16384 and not plan.skipped
    sweep = [v for v in plan.views if v.step >= 0]
    assert len(sweep) == 20 * 8
    for k in range(20):
        views = [v for v in sweep if v.step == k]
        centres = [v for v in views if v.role == "centre"]
        assert len(views) == 8 and 1 <= len(centres) <= 3
        assert len({v.target for v in centres}) == len(centres)
    # a board's centre view is at the same pan/tilt at every zoom step: these link the steps
    for name in {v.target for v in sweep}:
        poses = {(v.pan, v.tilt) for v in sweep if v.target == name and v.role == "centre"}
        assert len(poses) == 1, name
    # the long end sees the small far boards and the small near one (two distances); the wide end the big board
    assert set(plan.targets_by_step[19]) == {"far_checkerboard", "far_charuco", "tele_charuco"}
    assert "big_checkerboard" in plan.targets_by_step[0]
    # the near distance is carried across the zoom range (a step's boards are sorted by distance):
    # where the nearest board changes between two steps, one of them sees both
    nearest = [plan.targets_by_step[k][0] for k in range(20)]
    assert set(nearest) == {"near_checkerboard", "bridge_charuco", "tele_charuco"}
    for k in range(19):
        a, b = nearest[k], nearest[k + 1]
        assert a == b or b in plan.targets_by_step[k] or a in plan.targets_by_step[k + 1], (k, a, b)
    # never a board while a look-alike shows enough of itself: the 10x7 far board not while the
    # big 10x7 board is in view, the 8x6 mid board not while 48 or more of its corners are
    assert all(v.zoom > 10000 for v in sweep if v.target == "far_checkerboard")
    assert min(v.zoom for v in sweep if v.target == "mid_checkerboard") > 5000
    # pan and tilt sweeps at the widest zoom of two boards at different distances (1.8 m and 4 m)
    swept = sorted({v.target for v in plan.views if v.tag in ("pan_sweep", "tilt_sweep")})
    assert swept == ["big_checkerboard", "near_checkerboard"]
    for name in swept:
        pans = [v for v in plan.views if v.tag == "pan_sweep" and v.target == name]
        tilts = [v for v in plan.views if v.tag == "tilt_sweep" and v.target == name]
        assert len(pans) == 15 and len(tilts) == 11 and all(v.zoom == 0 for v in pans + tilts)
        assert np.ptp([v.pan for v in pans]) > math.radians(20) and np.ptp([v.tilt for v in pans]) == 0
        assert np.ptp([v.tilt for v in tilts]) > math.radians(10) and np.ptp([v.pan for v in tilts]) == 0


def test_protocol_options_are_checked():
    for bad in (dict(zoom_steps=0), dict(views_per_step=0), dict(pan_sweep=-1), dict(offset_fraction=2),
                dict(image_format="jpg"), dict(zoom_values=())):
        with pytest.raises(ValueError):
            ProtocolOptions(**bad)
    rig = load_rig()
    with pytest.raises(ValueError, match="no scene target named 'nope'"):
        plan_protocol(rig.cameras["left"], rig, ProtocolOptions(targets=("nope",)))


def test_run_protocol_records_reported_feedback_and_ground_truth(tmp_path):
    rig = load_rig()
    options = ProtocolOptions(zoom_values=(0.0, 9000.0), views_per_step=3, pan_sweep=2, tilt_sweep=0, seed=4)
    seen = []
    wall = time.perf_counter()
    result = run_protocol(rig, "right", tmp_path / "ds", options, progress=lambda d, n, s: seen.append((d, n)))
    wall = time.perf_counter() - wall
    # 2 zoom steps x 3 views + a 2-view pan sweep of each of two boards
    assert result.captures == 10 and seen[-1] == (10, 10) and len(seen) == 10
    # simulated time: every move, settle and frame latency, far more than the wall time
    assert result.simulated_time > 8 * 0.4 and result.simulated_time > wall
    ds = load_dataset(tmp_path / "ds")
    truth = load_truth(tmp_path / "ds")
    assert ds.cameras == ["right"] and not ds.dropped and ds.zoom_range == (0.0, 16384.0)
    assert ds.metadata["seed"] == 4 and ds.metadata["protocol"]["views_per_step"] == 3
    assert [c.tag for c in ds.captures].count("pan_sweep") == 4
    assert truth["camera"] == "right" and len(truth["captures"]) == 10
    spec = rig.cameras["right"]
    for c, t in zip(ds.captures, truth["captures"]):
        img = cv2.imread(str(ds.image_path(c)), cv2.IMREAD_UNCHANGED)
        assert img.shape == (720, 1280) and img.dtype == np.uint8
        assert t["image"] == c.image and c.zoom == t["zoom"] == t["commanded"]["zoom"]
        # reported (motor side, quantized, noisy) vs true load angle: backlash + periodic error
        assert c.pan != t["pan"] and abs(c.pan - t["pan"]) < math.radians(0.12)
        assert abs(c.tilt - t["tilt"]) < math.radians(0.12)
        assert abs(c.stamp - t["exposure_time"]) < 0.02 and c.temperature is not None
        K = np.array(t["camera_matrix"])
        assert K[0, 0] == pytest.approx(spec.model.camera_matrix(c.zoom)[0, 0], rel=1e-3)  # thermal drift only
    assert truth["model"]["camera_name"] == "right"
    assert set(truth["targets"]) == {c.target for c in ds.captures}
    with pytest.raises(FileExistsError, match="already holds a dataset"):
        run_protocol(rig, "right", tmp_path / "ds", options)
    with pytest.raises(ValueError, match="no camera 'middle'"):
        run_protocol(rig, "middle", tmp_path / "other", options)


def test_cli_simulate(tmp_path, capsys):
    out = tmp_path / "sim"
    argv = ["simulate", "default", str(out), "--camera", "left", "--zooms", "0,6000", "--views-per-step", "3",
            "--pan-sweep", "0", "--tilt-sweep", "0", "--seed", "2", "--json"]
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert captured.err == ""  # no progress bar when stderr is not a terminal
    assert report["command"] == "simulate" and report["captures"] == 6 and report["camera"] == "left"
    assert report["zooms"] == [0.0, 6000.0] and report["manifest"] == str(out / "manifest.yaml")
    assert set(report["timing_s"]) == {"render", "write", "total"}
    assert len(load_dataset(out).captures) == 6
    # human output, and a clean failure for an existing dataset or a bad rig
    assert cli.main(argv[:-1] + ["--overwrite"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("camera left: 6 images (6 zoom sweep) over 2 zoom steps") and "wrote" in text
    assert cli.main(argv[:-1]) == 1
    assert "already holds a dataset" in capsys.readouterr().err
    assert cli.main(["simulate", str(tmp_path / "no_rig.yaml"), str(tmp_path / "x")]) == 1
    assert "no_rig.yaml: file: file not found" in capsys.readouterr().err
    assert cli.main(["simulate", "default", str(tmp_path / "x"), "--zooms", "a,b"]) == 1
    assert "--zooms: expected numbers" in capsys.readouterr().err
    assert cli.main(["simulate", "--help"]) == 0
    help_text = capsys.readouterr().out
    for option in ("--camera", "--zoom-steps", "--views-per-step", "--seed", "--json", "--pan-sweep"):
        assert option in help_text
