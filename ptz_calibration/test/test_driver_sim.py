"""The ``sim`` driver backend over the simulated rig (pure: no rclpy)."""

import math
import threading
import time

import numpy as np
import pytest
import yaml

from ptz_calibration.drivers import (
    DriverConnectionError,
    DriverError,
    PtzDriver,
    available_backends,
    backend_settings,
    create_driver,
)
from ptz_calibration.drivers.simulated import SimulatedPtzDriver, default_rig_file
from ptz_calibration.simulation import load_rig

RIG = load_rig(default_rig_file())


@pytest.fixture(scope="module")
def rig():
    return RIG


@pytest.fixture
def driver():
    drv = SimulatedPtzDriver("left", seed=3, rig=RIG)
    drv.connect()
    # Right after its creation the simulated camera has no history: feedback is clamped to its
    # start time and its first stream frame is not exposed yet. Let it run for a few frames.
    timing = RIG.cameras["left"].timing
    time.sleep(timing.latency + 3.0 / timing.frame_rate)
    yield drv
    drv.close()


def encoder_tolerance(axis) -> float:
    """Worst reported error at rest: target grid rounding + quantization + 5 sigma of noise."""
    return axis.command_step / 2 + axis.encoder_step / 2 + 5 * axis.encoder_noise + 1e-12


def wait_until_still(drv: PtzDriver, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    time.sleep(0.05)  # the command latency: the motion starts a little later
    while time.monotonic() < deadline:
        fb = drv.read_state()
        if not fb.moving:
            return fb
        time.sleep(0.02)
    raise AssertionError(f"still moving after {timeout} s")


def test_registry_builds_the_sim_backend_from_settings():
    assert {"sim", "mock"} <= set(available_backends())
    assert set(backend_settings("sim")) == {"rig_file", "camera", "seed"}
    drv = create_driver("sim", {"camera_name": "right", "seed": 1})
    assert isinstance(drv, SimulatedPtzDriver)
    drv.connect()
    assert drv.capabilities.image_width == RIG.cameras["right"].model.image_width
    with pytest.raises(DriverError, match="unknown PTZ backend 'canon_xc'.*mock.*onvif.*pelco_d.*sim.*visca"):
        create_driver("canon_xc", {})


def test_capabilities_are_the_rig_mechanics(driver):
    caps = driver.capabilities
    mech = RIG.cameras["left"].mechanics
    assert (caps.pan_min, caps.pan_max, caps.tilt_min, caps.tilt_max) == (mech.pan.min, mech.pan.max,
                                                                          mech.tilt.min, mech.tilt.max)
    assert (caps.zoom_min, caps.zoom_max) == (mech.zoom.min, mech.zoom.max)
    assert caps.max_pan_speed == mech.pan.max_speed and caps.max_tilt_speed == mech.tilt.max_speed
    assert caps.can_capture and caps.has_hardware_trigger and caps.has_temperature


def test_feedback_carries_the_sample_time(driver):
    latency = RIG.cameras["left"].timing.feedback_latency
    stamps = []
    for _ in range(20):
        before = time.time()
        fb = driver.read_state()
        after = time.time()
        # sampled feedback_latency before the read, on the system clock
        assert before - latency - 1e-6 <= fb.stamp <= after - latency + 1e-6
        stamps.append(fb.stamp)
        time.sleep(0.002)
    assert np.all(np.diff(stamps) > 0)
    assert math.isfinite(fb.temperature) and not fb.moving


def test_follows_absolute_relative_and_nan_commands(driver):
    mech = RIG.cameras["left"].mechanics
    driver.move_absolute(0.3, 0.1, 4000.0)
    fb = wait_until_still(driver)
    assert abs(fb.pan - 0.3) <= encoder_tolerance(mech.pan)
    assert abs(fb.tilt - 0.1) <= encoder_tolerance(mech.tilt)
    assert abs(fb.zoom_raw - 4000.0) <= encoder_tolerance(mech.zoom)
    driver.move_absolute(math.nan, -0.2, None)  # NaN / None leave pan and zoom alone
    fb2 = wait_until_still(driver)
    assert abs(fb2.pan - 0.3) <= encoder_tolerance(mech.pan)
    assert abs(fb2.tilt + 0.2) <= encoder_tolerance(mech.tilt)
    assert abs(fb2.zoom_raw - 4000.0) <= encoder_tolerance(mech.zoom)
    driver.move_relative(-0.1, math.nan, 1000.0)
    fb3 = wait_until_still(driver)
    assert abs(fb3.pan - 0.2) <= 2 * encoder_tolerance(mech.pan)
    assert abs(fb3.tilt + 0.2) <= encoder_tolerance(mech.tilt)
    assert abs(fb3.zoom_raw - 5000.0) <= 2 * encoder_tolerance(mech.zoom)
    driver.home()
    fb4 = wait_until_still(driver)
    assert abs(fb4.pan) <= encoder_tolerance(mech.pan) and abs(fb4.tilt) <= encoder_tolerance(mech.tilt)
    assert abs(fb4.zoom_raw - mech.zoom.home) <= encoder_tolerance(mech.zoom)


def test_velocity_for_a_duration_then_stop(driver):
    start = driver.read_state()
    driver.move_velocity(0.5, 0.0, 0.0, duration=0.3)
    time.sleep(0.15)
    assert driver.read_state().moving
    fb = wait_until_still(driver)
    moved = fb.pan - start.pan
    # 0.5 rad/s for 0.3 s, plus the acceleration and braking ramps (4 rad/s^2): 0.15 rad less
    # than 0.15 + 0.5 * 0.5 / 4 = 0.18 rad, more than 0.15 - 0.0625 (the ramps cut at most that)
    assert 0.08 < moved < 0.19, moved
    driver.move_velocity(-0.6, 0.0, 0.0)  # no duration: until stop
    time.sleep(0.2)
    driver.stop()
    fb = wait_until_still(driver)
    time.sleep(0.1)
    later = driver.read_state()
    assert abs(later.pan - fb.pan) <= 2 * encoder_tolerance(RIG.cameras["left"].mechanics.pan)


def test_capture_returns_an_image_with_its_exposure_stamp(driver):
    timing = RIG.cameras["left"].timing
    before = time.time()
    frame = driver.capture()
    model = RIG.cameras["left"].model
    assert frame.image.shape == (model.image_height, model.image_width) and frame.image.dtype == np.uint8
    assert frame.encoding == "mono8"
    assert 5.0 < float(frame.image.mean()) < 250.0 and float(frame.image.std()) > 1.0  # a real scene
    # the newest frame that was delivered: exposed at least `latency` before the request, at
    # most latency + one frame period (+ jitter) before it
    oldest = before - timing.latency - 1.0 / timing.frame_rate - 5 * timing.stamp_jitter
    assert oldest <= frame.stamp <= before - timing.latency + 5 * timing.stamp_jitter
    assert abs(frame.metadata["exposure_time"] - frame.stamp) <= 5 * timing.stamp_jitter + abs(timing.stamp_offset)
    trig = driver.trigger(time.time())
    assert trig.metadata["triggered"] and trig.image.shape == frame.image.shape


def test_reading_and_commanding_from_several_threads(driver):
    errors, stamps = [], [[] for _ in range(3)]

    def reader(i):
        try:
            for _ in range(150):
                stamps[i].append(driver.read_state().stamp)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for k in range(20):
        driver.move_absolute(0.01 * k, 0.0, 100.0 * k)
        time.sleep(0.002)
    for t in threads:
        t.join(timeout=30)
    assert not errors
    for s in stamps:
        assert len(s) == 150 and np.all(np.diff(s) >= 0)


def test_connection_errors_name_the_problem(tmp_path):
    drv = SimulatedPtzDriver("left", rig=RIG)
    with pytest.raises(DriverConnectionError, match="not connected"):
        drv.read_state()
    with pytest.raises(DriverConnectionError, match="'middle' not in .*left, right"):
        SimulatedPtzDriver("middle", rig=RIG).connect()
    with pytest.raises(DriverConnectionError, match="missing_rig.yaml.*file not found"):
        SimulatedPtzDriver("left", tmp_path / "missing_rig.yaml").connect()
    drv.connect()
    drv.close()
    with pytest.raises(DriverConnectionError):
        drv.move_absolute(0.1, 0.1)


CONFIG = default_rig_file().parent


def _assert_same_data(a, b, msg: str, where: str = "") -> None:
    """Plain YAML data ``a`` equals ``b``: the same keys and strings, numbers to 1e-12 relative (1e-15 absolute)."""
    if isinstance(b, dict):
        assert isinstance(a, dict) and list(a) == list(b), f"{msg} ({where or 'top level'}: keys differ)"
        for k in b:
            _assert_same_data(a[k], b[k], msg, f"{where}.{k}")
    elif isinstance(b, list):
        assert isinstance(a, list) and len(a) == len(b), f"{msg} ({where}: lengths differ)"
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same_data(x, y, msg, f"{where}[{i}]")
    elif isinstance(b, (int, float)) and not isinstance(b, bool):
        assert isinstance(a, (int, float)) and not isinstance(a, bool), f"{msg} ({where}: not a number)"
        assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15), f"{msg} ({where}: {a!r} != {b!r})"
    else:
        assert a == b, f"{msg} ({where}: {a!r} != {b!r})"


@pytest.mark.parametrize("camera", sorted(RIG.cameras))
def test_factory_calibration_files_are_the_rig_models(camera):
    from ptz_calibration.drivers.simulated import factory_model_text
    from ptz_calibration.model import load_model

    path = CONFIG / f"sim_{camera}_model.yaml"
    text, expected = path.read_text(), factory_model_text(RIG, camera)
    # the same header and the same numbers (to 1e-12: the last digit of a derived value may
    # differ between BLAS kernels)
    stale = f"{path} is out of date: python -m ptz_calibration.drivers.simulated --write-models config/"
    assert [ln for ln in text.splitlines() if ln.startswith("#")] == \
        [ln for ln in expected.splitlines() if ln.startswith("#")], stale
    _assert_same_data(yaml.safe_load(text), yaml.safe_load(expected), stale)
    loaded, true = load_model(path), RIG.cameras[camera].model
    for pan, tilt, zoom in ((0.0, 0.0, 0.0), (1.2, -0.3, 9000.0), (-2.5, 1.4, 16384.0)):
        for a, b in zip(loaded.pose(pan, tilt, zoom), true.pose(pan, tilt, zoom)):
            np.testing.assert_allclose(a, b, atol=1e-15)
        np.testing.assert_allclose(loaded.camera_matrix(zoom), true.camera_matrix(zoom), rtol=1e-15)
        np.testing.assert_allclose(loaded.distortion(zoom), true.distortion(zoom), atol=1e-15)


@pytest.mark.parametrize("camera", sorted(RIG.cameras))
def test_params_files_mount_the_cameras_where_the_rig_has_them(camera):
    import yaml

    from ptz_calibration.model import rpy_matrix

    params = yaml.safe_load((CONFIG / f"sim_{camera}.yaml").read_text())["/**"]["ros__parameters"]
    spec = RIG.cameras[camera]
    assert params["camera_name"] == camera and params["backend"] == "sim"
    assert params["parent_frame"] == RIG.world_frame
    assert params["calibration_url"] == f"package://ptz_calibration/config/sim_{camera}_model.yaml"
    np.testing.assert_allclose(params["mount"]["xyz"], spec.mount_t, atol=1e-12)
    np.testing.assert_allclose(rpy_matrix(*params["mount"]["rpy"]), spec.mount_R, atol=1e-12)
