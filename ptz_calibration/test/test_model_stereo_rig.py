"""The stereo rig model (``model.stereo_rig``): extrinsics at any pan/tilt/zoom of both cameras
against the simulator's true camera poses, the file round trip, bad files; the rig's uncertainty
(``model.rig_uncertainty``) against Monte Carlo draws of perturbed rigs."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import yaml

from ptz_calibration.calibration.capture_protocol import SimClock
from ptz_calibration.model.rig_uncertainty import pointing_covariance
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

from model_fixtures import example_uncertainty, perturbed_extrinsics


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


def test_extrinsics_covariance_matches_monte_carlo_of_perturbed_rigs(rig):
    """Draw the rig's parts as its uncertainty says (home transform, reported angles, zoom
    translation), compose the extrinsics of each draw: their scatter, in the triangulation's
    convention (``R -> expm([dw]x) R``, ``t -> t + dt``), is ``extrinsics_covariance``."""
    from scipy.spatial.transform import Rotation

    u = example_uncertainty()
    stereo = dataclasses.replace(true_stereo_rig(rig), uncertainty=u)
    rng = np.random.default_rng(7)
    for left, right in (((0.0, 0.0, 0.0), (0.0, 0.0, 0.0)), ((0.9, -0.2, 15000.0), (-1.0, 0.4, 3000.0)),
                        ((-0.5, 0.3, 9000.0), (0.6, 0.1, 16384.0))):
        r0, t0 = stereo.extrinsics(left, right)
        draws = [perturbed_extrinsics(stereo, u, left, right, rng) for _ in range(3000)]
        d = np.array([np.r_[Rotation.from_matrix(r @ r0.T).as_rotvec(), t - t0] for r, t in draws])
        c_mc, c_pred = np.cov(d.T), stereo.extrinsics_covariance(left, right)
        np.testing.assert_allclose(np.sqrt(np.diag(c_mc)), np.sqrt(np.diag(c_pred)), rtol=0.06)
        for w in rng.normal(size=(20, 6)):
            assert w @ c_mc @ w == pytest.approx(w @ c_pred @ w, rel=0.1)
    # no uncertainty: zeros
    assert not np.any(true_stereo_rig(rig).extrinsics_covariance((0.1, 0, 0), (0, 0, 0)))


def test_pointing_covariance_matches_monte_carlo(rig):
    """A point fixed in the home frame, seen from the head turned by draws of the pointing error."""
    from ptz_calibration.corrections.apply import setting_pose

    model = true_stereo_rig(rig).left
    q = np.array([0.7, 0.2, 12000.0])
    r, t = setting_pose(model, q)
    points = np.array([[0.5, -0.2, 12.0], [-3.0, 1.0, 25.0]])
    home = points @ r.T + t
    sigma = math.radians(0.03)
    rng = np.random.default_rng(2)
    seen = []
    for _ in range(3000):
        dq = q.copy()
        dq[:2] += rng.normal(0.0, sigma, 2)
        rd, td = setting_pose(model, dq)
        seen.append((home - td) @ rd)
    seen = np.array(seen)
    pred = pointing_covariance(model, q, points, sigma)
    for k in range(2):
        np.testing.assert_allclose(np.sqrt(np.diag(np.cov(seen[:, k].T))), np.sqrt(np.diag(pred[k])), rtol=0.06,
                                   atol=1e-7)
    # ~ sigma x range sideways: 0.03 deg at 25 m is 13 mm
    assert np.sqrt(pred[1][0, 0] + pred[1][1, 1]) == pytest.approx(sigma * np.linalg.norm(points[1]) * math.sqrt(2),
                                                                  rel=0.3)


def test_uncertainty_file_round_trip_and_errors(rig, tmp_path):
    stereo = dataclasses.replace(true_stereo_rig(rig), uncertainty=example_uncertainty())
    back = load_rig_model(save_rig_model(stereo, tmp_path / "rig.yaml"))
    np.testing.assert_allclose(back.uncertainty.home_cov, stereo.uncertainty.home_cov, rtol=1e-12)
    assert back.uncertainty.pointing_sigma == stereo.uncertainty.pointing_sigma
    assert back.uncertainty.left_zoom_translation == stereo.uncertainty.left_zoom_translation
    q = ((0.3, -0.1, 5000.0), (-0.2, 0.2, 9000.0))
    np.testing.assert_allclose(back.extrinsics_covariance(*q), stereo.extrinsics_covariance(*q), rtol=1e-9)
    # a file without it (format_version 1 as before) loads with none
    assert load_rig_model(save_rig_model(true_stereo_rig(rig), tmp_path / "plain.yaml")).uncertainty is None
    data = rig_model_to_dict(stereo)
    for mutate in (lambda u: u.update(home_cov=[[1.0]]), lambda u: u.update(pointing_sigma=-1.0),
                   lambda u: u.update(home_cov=(-np.eye(6)).tolist()),
                   lambda u: u["left_zoom_translation"].update(std=[0.0]), lambda u: u.update(extra=1)):
        broken = yaml.safe_load(yaml.safe_dump(data))
        mutate(broken["uncertainty"])
        with pytest.raises(StereoRigFileError) as info:
            rig_model_from_dict(broken, "rig.yaml")
        assert info.value.field == "uncertainty"
