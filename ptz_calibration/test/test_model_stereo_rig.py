"""The stereo rig model (``model.stereo_rig``): extrinsics at any pan/tilt/zoom of both cameras
against the simulator's true camera poses, the file round trip, bad files."""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml

from ptz_calibration.calibration.capture_protocol import SimClock
from ptz_calibration.model.rotations import rotation_angle
from ptz_calibration.model.stereo_rig import (
    StereoRigFileError,
    load_rig_model,
    rig_model_from_dict,
    rig_model_to_dict,
    save_rig_model,
)
from ptz_calibration.simulation import SimulatedPtzCamera, load_rig
from ptz_calibration.simulation.rig import true_stereo_rig


@pytest.fixture(scope="module")
def rig():
    return load_rig()


def test_extrinsics_match_the_simulated_cameras(rig):
    """At the cameras' TRUE load angles the composed extrinsics equal the simulator's camera poses,
    up to the thermal boresight drift the model does not carry (9 deg C below the calibration
    temperature: ~0.008 deg per camera)."""
    stereo = true_stereo_rig(rig)
    clock = SimClock()
    cams = {n: SimulatedPtzCamera(rig.cameras[n], rig.scene, seed=1, clock=clock) for n in ("left", "right")}
    rng = np.random.default_rng(3)
    for _ in range(6):
        cams["left"].move_absolute(*rng.uniform(-1.0, 1.0, 2), rng.uniform(0, 16384))
        cams["right"].move_absolute(*rng.uniform(-1.0, 1.0, 2), rng.uniform(0, 16384))
        clock.advance_to(max(c.arrival_time() for c in cams.values()) + 0.5)
        tl, tr = cams["left"].true_state(), cams["right"].true_state()
        r, t = stereo.extrinsics((tl.pan, tl.tilt, tl.zoom_raw), (tr.pan, tr.tilt, tr.zoom_raw))
        rl, pl = cams["left"].true_pose_world()
        rr, pr = cams["right"].true_pose_world()
        assert math.degrees(rotation_angle(r.T @ (rr.T @ rl))) < 0.03
        np.testing.assert_allclose(t, rr.T @ (pl - pr), atol=2e-4)
        assert stereo.baseline((tl.pan, tl.tilt, tl.zoom_raw), (tr.pan, tr.tilt, tr.zoom_raw)) == \
            pytest.approx(np.linalg.norm(pl - pr), abs=2e-4)


def test_batch_equals_single_and_home_is_the_mount_transform(rig):
    stereo = true_stereo_rig(rig)
    rng = np.random.default_rng(0)
    left = np.c_[rng.uniform(-1, 1, (5, 2)), rng.uniform(0, 16384, 5)]
    right = np.c_[rng.uniform(-1, 1, (5, 2)), rng.uniform(0, 16384, 5)]
    rb, tb = stereo.extrinsics(left, right)
    for i in range(5):
        r, t = stereo.extrinsics(left[i], right[i])
        np.testing.assert_allclose(rb[i], r, atol=1e-14)
        np.testing.assert_allclose(tb[i], t, atol=1e-14)
    # at home and the widest zoom the extrinsics are the inverse of the home transform
    r0, t0 = stereo.extrinsics((0, 0, 0), (0, 0, 0))
    np.testing.assert_allclose(r0, stereo.home_R.T, atol=1e-12)
    np.testing.assert_allclose(t0, -stereo.home_R.T @ stereo.home_t, atol=1e-12)
    rm, tm = stereo.left_mount_from_right_mount()
    a, b = rig.cameras["left"], rig.cameras["right"]
    np.testing.assert_allclose(rm, a.mount_R.T @ b.mount_R, atol=1e-12)
    np.testing.assert_allclose(tm, a.mount_R.T @ (b.mount_t - a.mount_t), atol=1e-12)


def test_file_round_trip_and_errors(rig, tmp_path):
    stereo = true_stereo_rig(rig)
    path = save_rig_model(stereo, tmp_path / "rig.yaml")
    back = load_rig_model(path)
    np.testing.assert_allclose(back.home_R, stereo.home_R, atol=1e-12)
    np.testing.assert_allclose(back.home_t, stereo.home_t, atol=1e-15)
    q = ((0.3, -0.1, 5000.0), (-0.2, 0.2, 9000.0))
    np.testing.assert_allclose(back.extrinsics(*q)[1], stereo.extrinsics(*q)[1], atol=1e-12)
    data = rig_model_to_dict(stereo)
    for mutate, field in ((lambda d: d.pop("left"), "left"), (lambda d: d.update(format="x"), "format"),
                          (lambda d: d["home"].update(R=[[1, 0], [0, 1]]), "home"),
                          (lambda d: d["home"].update(R=np.diag([1.0, 1.0, -1.0]).tolist()), "home"),
                          (lambda d: d.update(extra=1), "extra")):
        broken = yaml.safe_load(yaml.safe_dump(data))
        mutate(broken)
        with pytest.raises(StereoRigFileError) as info:
            rig_model_from_dict(broken, "rig.yaml")
        assert info.value.field == field and "rig.yaml" in str(info.value)
    (tmp_path / "bad.yaml").write_text("left: [")
    with pytest.raises(StereoRigFileError, match="bad.yaml"):
        load_rig_model(tmp_path / "bad.yaml")
