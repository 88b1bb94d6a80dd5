"""ptz_stereo over DDS with two simulated ptz_driver nodes (left, right) of one rig file.

Ground truth: the drivers' simulated cameras (``PtzDriverNode.driver.simulation``), on wall time
like the stamps. The main rig is the package's default rig with the errors that feedback cannot
see removed (backlash, periodic gear error, encoder quantization and noise, thermal drift): the
reported feedback is then the truth, and what remains is the node's own error (pairing the two
cameras' states at one stamp, interpolation, the maths), held to the issue targets: extrinsics
within 0.05 deg and 0.3 % of the baseline while both heads move, points within 0.5 % of the
range for 5-30 m. ``test_feedback_errors_of_the_default_rig`` measures what the default rig's
unobservable mechanics add (printed; run with -s to see the numbers).
"""

import dataclasses
import math
import time

import numpy as np
import pytest

from conftest import Recorder, Spinner, unique_name, wait_until
from model_fixtures import example_uncertainty


class _SplitSpinner:
    """The drivers in a MultiThreadedExecutor (as ``ptz_driver`` runs them), every ``ptz_stereo``
    node in a SingleThreadedExecutor of its own (as its ``main`` runs it): rclpy's
    MultiThreadedExecutor busy-spins with the stereo node in it and starved the drivers' 50 Hz
    feedback to 11-15 Hz at 100 % CPU (flaky tests); apart, 50 Hz."""

    def __init__(self, context) -> None:
        self.drivers = Spinner(context)
        self.solo: dict[int, Spinner] = {}
        self.context = context

    def add(self, node):
        from ptz_calibration.nodes.ptz_stereo import PtzStereoNode

        if isinstance(node, PtzStereoNode):
            self.solo[id(node)] = Spinner(self.context, threads=1)
            return self.solo[id(node)].add(node)
        return self.drivers.add(node)

    def destroy(self, node) -> None:
        (self.solo.get(id(node)) or self.drivers).destroy(node)

    def close(self) -> None:
        for spin in self.solo.values():
            spin.close()
        self.drivers.close()


@pytest.fixture(scope="module")
def spinner(ros_context):
    spin = _SplitSpinner(ros_context)
    yield spin
    spin.close()

pytestmark = pytest.mark.ros

ROT_TOL_DEG = 0.05  # issue target: extrinsics rotation
TRANS_TOL = 0.003  # issue target: extrinsics translation, share of the baseline
RANGE_TOL = 0.005  # issue target: localization, share of the range (5-30 m)
#: Where the motion fixture leaves the heads (facing forward, the optical axes converging ahead).
START = {"left": (0.05, 0.02, 1500.0), "right": (0.0, 0.0, 1000.0)}


def seconds(stamp):
    return stamp.sec + stamp.nanosec * 1e-9


def angle_deg(r):
    from ptz_calibration.model import rotation_angle

    return math.degrees(float(rotation_angle(r)))


def msg_transform(transform):
    from ptz_calibration.model import quaternion_to_matrix

    q, t = transform.rotation, transform.translation
    return quaternion_to_matrix([q.x, q.y, q.z, q.w]), np.array([t.x, t.y, t.z])


def true_left_to_right(left_sim, right_sim, t):
    """Pose of the right optical frame in the left optical frame at ``t`` (simulator truth)."""
    rl, tl = left_sim.true_pose_world(t)
    rr, tr = right_sim.true_pose_world(t)
    return rl.T @ rr, rl.T @ (tr - tl)


def extrinsics_errors(msgs, left_sim, right_sim):
    """(rotation error deg, translation error / baseline) of each message against the truth."""
    rot, trans = [], []
    for m in msgs:
        r, t = msg_transform(m.left_to_right)
        r_true, t_true = true_left_to_right(left_sim, right_sim, seconds(m.header.stamp))
        rot.append(angle_deg(r.T @ r_true))
        trans.append(float(np.linalg.norm(t - t_true) / np.linalg.norm(t_true)))
    return np.array(rot), np.array(trans)


# -- the system under test ---------------------------------------------------------------------------


def exact_feedback_rig(path):
    """The default rig without the errors feedback cannot see, written to ``path``."""
    import yaml

    from ptz_calibration.simulation import default_rig_path

    data = yaml.safe_load(default_rig_path().read_text())
    for camera in data["cameras"].values():
        for axis in ("pan", "tilt", "zoom"):
            camera["mechanics"][axis].update(backlash=0.0, periodic_error=[], encoder_step=0.0, encoder_noise=0.0)
        camera["thermal"].update(boresight_x=0.0, boresight_y=0.0, focal_ppm=0.0)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def sim_params(camera):
    import yaml

    from ptz_calibration.drivers.simulated import package_config_file

    return yaml.safe_load(package_config_file(f"sim_{camera}.yaml").read_text())["/**"]["ros__parameters"]


class System:
    """Two drivers, the stereo node and recorders of what they publish."""


def start_system(ros_context, spinner, probe, sim_rig_file="", stereo_rig_file="", **stereo_params):
    from ptz_calibration_msgs.msg import PtzCommand, PtzState, StereoExtrinsics
    from rclpy.parameter import Parameter
    from tf2_msgs.msg import TFMessage

    from ptz_calibration.drivers.simulated import package_config_file
    from ptz_calibration.nodes.ptz_driver import PtzDriverNode
    from ptz_calibration.nodes.ptz_stereo import PtzStereoNode
    from ptz_calibration.nodes.ptz_stereo import TF_STATIC_LISTENER_QOS
    from ptz_calibration.nodes.tf_broadcaster import TF_QOS

    s = System()
    s.prefix = prefix = unique_name("st") + "_"  # our frames only: other runs may share the DDS domain
    s.drivers = {}
    for camera in ("left", "right"):
        file_params = sim_params(camera)
        values = {"camera_name": camera, "backend": "sim", "sim.rig_file": str(sim_rig_file),
                  "calibration_url": f"file://{package_config_file(f'sim_{camera}_model.yaml')}",
                  "frame_prefix": prefix, "parent_frame": prefix + "rig",
                  "mount.xyz": file_params["mount"]["xyz"], "mount.rpy": file_params["mount"]["rpy"],
                  "publish_images": False, "state_rate": 50.0, "publish_mount_tf": camera == "left"}
        s.drivers[camera] = spinner.add(PtzDriverNode(
            unique_name(f"{camera}_driver"), context=ros_context,
            parameter_overrides=[Parameter(k, value=v) for k, v in values.items()]))
    s.left, s.right = s.drivers["left"], s.drivers["right"]
    s.left_sim, s.right_sim = s.left.driver.simulation, s.right.driver.simulation
    ns = {c: f"/{n.get_name()}" for c, n in s.drivers.items()}
    params = {"rig_file": str(stereo_rig_file),
              "left_state_topic": f"{ns['left']}/ptz_state", "right_state_topic": f"{ns['right']}/ptz_state",
              "left_capture_service": f"{ns['left']}/capture", "right_capture_service": f"{ns['right']}/capture",
              "parent_frame": prefix + "rig", "left_mount_frame": prefix + "left_mount",
              "right_mount_frame": prefix + "right_mount", "left_optical_frame": prefix + "left_optical_frame",
              "right_optical_frame": prefix + "right_optical_frame", "marker_rate": 2.0}
    params.update(stereo_params)
    s.stereo = spinner.add(PtzStereoNode(unique_name("stereo"), context=ros_context,
                                         parameter_overrides=[Parameter(k, value=v) for k, v in params.items()]))
    s.ns = f"/{s.stereo.get_name()}"
    s.frames = s.stereo.frames
    s.extrinsics = Recorder(probe, StereoExtrinsics, f"{s.ns}/extrinsics", 1000)
    s.tf = Recorder(probe, TFMessage, "/tf", TF_QOS,
                    keep=lambda m: any(t.header.frame_id.startswith(prefix) for t in m.transforms))
    s.tf_static = Recorder(probe, TFMessage, "/tf_static", TF_STATIC_LISTENER_QOS,
                           keep=lambda m: any(t.child_frame_id.startswith(prefix) for t in m.transforms))
    s.states = {c: Recorder(probe, PtzState, f"{ns[c]}/ptz_state", 1000) for c in s.drivers}
    s.cmd = {c: probe.create_publisher(PtzCommand, f"{ns[c]}/cmd", 10) for c in s.drivers}
    assert s.extrinsics.wait_for(lambda m: m.valid, count=5, timeout=30.0), \
        f"no valid ~/extrinsics: {[m.status for m in s.extrinsics.messages[-3:]]}"
    assert wait_until(lambda: all(p.get_subscription_count() > 0 for p in s.cmd.values()), 20.0)
    return s


def stop_system(spinner, probe, s):
    for recorder in (s.extrinsics, s.tf, s.tf_static, *s.states.values()):
        probe.destroy_subscription(recorder.subscription)
    for c in s.__dict__.get("clients", {}).values():
        probe.destroy_client(c)
    for node in (s.stereo, s.left, s.right):
        spinner.destroy(node)


def command(s, camera, pan, tilt, zoom, speed=0.0):
    from ptz_calibration_msgs.msg import PtzCommand

    s.cmd[camera].publish(PtzCommand(mode=PtzCommand.MODE_ABSOLUTE, pan=float(pan), tilt=float(tilt),
                                     zoom=float(zoom), pan_speed=float(speed), tilt_speed=float(speed)))


def settled(s, targets, timeout=30.0):
    """Wait until both heads report standing still at their (pan, tilt) targets."""
    def ok():
        for camera, (pan, tilt) in targets.items():
            msgs = s.states[camera].messages
            if not msgs or msgs[-1].moving or abs(msgs[-1].pan - pan) > 3e-3 or abs(msgs[-1].tilt - tilt) > 3e-3:
                return False
        return True
    return wait_until(ok, timeout)


def move_both(s, left, right, speed=0.0):
    """Move both heads at once; the ~/extrinsics received while either moved (by the truth)."""
    start = len(s.extrinsics.messages)
    command(s, "left", *left, speed=speed)
    command(s, "right", *right, speed=speed)
    assert settled(s, {"left": left[:2], "right": right[:2]}), "the heads did not arrive"
    time.sleep(0.2)
    msgs = [m for m in s.extrinsics.messages[start:] if m.valid]
    return [m for m in msgs if s.left_sim.true_state(seconds(m.header.stamp)).moving
            or s.right_sim.true_state(seconds(m.header.stamp)).moving]


@pytest.fixture(scope="module")
def rig_files(tmp_path_factory):
    from ptz_calibration.model.stereo_rig import save_rig_model
    from ptz_calibration.simulation import load_rig
    from ptz_calibration.simulation.rig import true_stereo_rig

    folder = tmp_path_factory.mktemp("stereo")
    sim_rig = exact_feedback_rig(folder / "exact_feedback_rig.yaml")
    stereo_rig = folder / "stereo_rig.yaml"
    # the true rig, with an uncertainty of the size a calibration reports (for the covariances)
    save_rig_model(dataclasses.replace(true_stereo_rig(load_rig(sim_rig)), uncertainty=example_uncertainty()), stereo_rig)
    return sim_rig, stereo_rig


@pytest.fixture(scope="module")
def system(ros_context, spinner, probe, rig_files):
    s = start_system(ros_context, spinner, probe, *rig_files)
    yield s
    stop_system(spinner, probe, s)


@pytest.fixture(scope="module")
def motion(system):
    """Both heads moving at once (pan, tilt and zoom), the ~/extrinsics received meanwhile."""
    s = system
    s.moving = move_both(s, (0.6, 0.2, 6000.0), (-0.5, -0.1, 11000.0))
    s.moving += move_both(s, (0.05, 0.02, 1500.0), (0.0, 0.0, 1000.0), speed=1.2)
    return s


# -- ~/extrinsics ---------------------------------------------------------------------------------------


class Feedback:
    """The PtzState samples a driver published, and its state at any stamp between two of them
    (linear interpolation, what the stereo node must do), with the gap between those two."""

    def __init__(self, messages):
        items = sorted((seconds(m.header.stamp), m.pan, m.tilt, m.zoom_raw) for m in messages)
        self.stamps = np.array([x[0] for x in items])
        self.values = np.array([x[1:] for x in items])

    def at(self, t):
        """((pan, tilt, zoom), gap) at ``t``; LookupError outside the samples."""
        i = int(np.searchsorted(self.stamps, t))
        if i < len(self.stamps) and self.stamps[i] == t:
            return tuple(self.values[i]), 0.0
        if i == 0 or i == len(self.stamps):
            raise LookupError(t)
        a, b = self.stamps[i - 1], self.stamps[i]
        w = (t - a) / (b - a)
        return tuple(self.values[i - 1] + w * (self.values[i] - self.values[i - 1])), b - a


def test_extrinsics_are_both_states_interpolated_at_the_stamp(motion):
    """Every ~/extrinsics is the rig model at BOTH drivers' published feedback interpolated at its
    stamp (not the newest sample of each camera), to rounding, also while moving."""
    s = motion
    feedback = {c: Feedback(s.states[c].messages) for c in s.drivers}
    msgs = [m for m in s.extrinsics.messages if m.valid]
    worst_r = worst_t = 0.0
    checked = 0
    for m in msgs:
        t = seconds(m.header.stamp)
        try:
            (left, _), (right, _) = feedback["left"].at(t), feedback["right"].at(t)
        except LookupError:
            continue
        r, tt = s.stereo.rig.extrinsics(left, right)
        r_msg, t_msg = msg_transform(m.left_to_right)  # the inverse: right optical in left optical
        worst_r = max(worst_r, angle_deg(r @ r_msg))
        worst_t = max(worst_t, float(np.linalg.norm(-r.T @ tt - t_msg)))
        checked += 1
    assert checked >= 0.95 * len(msgs) and checked > 50
    assert worst_r < 1e-6 and worst_t < 1e-9, (worst_r, worst_t)


def test_extrinsics_match_the_truth_while_both_heads_move(motion):
    """Against the simulator's truth at the stamp of each message, while both heads move. The
    feedback is exact here; between two samples the node interpolates linearly, which while a head
    accelerates (4 rad/s^2) is off by a * gap^2 / 8: 0.011 deg per axis for the nominal 20 ms
    gap, 0.29 deg for a 100 ms gap. With the two drivers, the stereo node and the recorders in one
    Python process the drivers' 50 Hz timers sometimes slip (gaps of 0.1-0.4 s seen on two shared
    cores, never with one process per driver), so the target is checked on the messages whose
    feedback came at its rate (both gaps <= 25 ms); all messages are reported."""
    s = motion
    msgs = s.moving
    assert len(msgs) >= 40, f"{len(msgs)} valid ~/extrinsics during the moves"
    feedback = {c: Feedback(s.states[c].messages) for c in s.drivers}
    gaps = []
    for m in msgs:
        try:
            gaps.append(max(feedback[c].at(seconds(m.header.stamp))[1] for c in s.drivers))
        except LookupError:
            gaps.append(math.inf)
    gaps = np.array(gaps)
    rot, trans = extrinsics_errors(msgs, s.left_sim, s.right_sim)
    nominal = gaps <= 0.025
    print(f"\n~/extrinsics vs truth during motion: {nominal.sum()} of {len(msgs)} messages with both feedback gaps "
          f"<= 25 ms: rotation median {np.median(rot[nominal]):.5f} max {rot[nominal].max():.5f} deg, translation "
          f"max {trans[nominal].max() * 100:.4f} % of the baseline; all: rotation max {rot.max():.4f} deg, "
          f"translation max {trans.max() * 100:.4f} %, largest feedback gap {gaps.max() * 1e3:.0f} ms")
    assert nominal.sum() >= 20, \
        f"only {nominal.sum()} messages with feedback at its rate (gaps {np.sort(gaps)[::-1][:10]})"
    assert rot[nominal].max() <= ROT_TOL_DEG, f"rotation error {rot[nominal].max():.4f} deg"
    assert trans[nominal].max() <= TRANS_TOL, f"translation error {trans[nominal].max() * 100:.3f} % of the baseline"
    baseline = [m.baseline for m in msgs]
    assert 0.45 < min(baseline) and max(baseline) < 0.6


def test_extrinsics_are_at_the_common_stamp_at_feedback_rate(motion):
    s = motion
    msgs = [m for m in s.extrinsics.messages if m.valid]
    stamps = [seconds(m.header.stamp) for m in msgs]
    assert all(b > a for a, b in zip(stamps, stamps[1:])), "stamps must increase"
    for m in msgs:
        assert m.header.frame_id == s.frames.left_optical and m.child_frame_id == s.frames.right_optical
        ages = (m.left_state_age, m.right_state_age)
        # the common stamp is the older camera's newest sample: one age 0, the other >= 0 (about a
        # feedback period, more when that driver's timer slipped)
        assert min(ages) == pytest.approx(0.0, abs=1e-9) and -1e-9 <= max(ages) < s.stereo.max_state_age, ages
        newest = (seconds(m.left_state_stamp), seconds(m.right_state_stamp))
        assert min(newest) == pytest.approx(seconds(m.header.stamp), abs=1e-6)
        assert m.baseline == pytest.approx(np.linalg.norm(msg_transform(m.left_to_right)[1]), rel=1e-12)
        assert m.status == "ok"
    # one message per new common stamp: the common stamp (the older of the two newest samples)
    # advances with almost every sample of either camera, so up to the two feedback rates together
    first, last = stamps[0], stamps[-1]
    samples = {c: sum(1 for m in s.states[c].messages if first < seconds(m.header.stamp) <= last) for c in s.drivers}
    span = last - first
    print(f"\n~/extrinsics: {len(stamps) - 1} in {span:.2f} s ({(len(stamps) - 1) / span:.1f} Hz); feedback samples "
          f"meanwhile: left {samples['left']}, right {samples['right']} (50 Hz configured each)")
    # (counted on the probe's own subscriptions, which can miss a sample the stereo node received:
    # CI once saw 480 messages for 479 counted samples)
    assert 0.9 * max(samples.values()) <= len(stamps) - 1 <= sum(samples.values()) + 3


def test_tf_between_the_optical_frames_equals_the_extrinsics(motion):
    """/tf_static left mount -> right mount composed with both drivers' /tf chains (interpolated
    at the stamp as tf2 does: slerp and linear) equals ~/extrinsics, also while moving."""
    from ptz_calibration.model import compose, invert

    s = motion
    statics = {}
    for msg in s.tf_static.messages:
        for tf in msg.transforms:
            statics.setdefault(tf.child_frame_id, []).append(tf)
    f = s.frames
    # the left driver places the left mount, the stereo node the right mount; nobody else does
    assert [t.header.frame_id for t in statics[f.left_mount]] == [f.parent]
    assert [t.header.frame_id for t in statics[f.right_mount]] == [f.left_mount]
    mount = msg_transform(statics[f.right_mount][0].transform)
    np.testing.assert_allclose(mount[1], s.stereo.rig.left_mount_from_right_mount()[1], atol=1e-12)
    buffer = TfBuffer(s.tf.messages)
    chains = {c: n.camera.frames.moving_order(n.geometry.model.kinematics.order) for c, n in s.drivers.items()}
    worst_r = worst_t = 0.0
    checked = 0
    for m in s.moving:
        t = seconds(m.header.stamp)
        try:
            left = buffer.chain(chains["left"], t)
            right = buffer.chain(chains["right"], t)
        except LookupError:
            continue
        r, tr = compose(*invert(*left), *compose(*mount, *right))
        r_msg, t_msg = msg_transform(m.left_to_right)
        worst_r = max(worst_r, angle_deg(r.T @ r_msg))
        worst_t = max(worst_t, float(np.linalg.norm(tr - t_msg)))
        checked += 1
    print(f"\nTF lookup vs ~/extrinsics over {checked} moving stamps: {worst_r:.2e} deg, {worst_t * 1e3:.2e} mm")
    assert checked >= 0.8 * len(s.moving)
    # tf2 interpolates each link (the zoom link's offset linearly in time), the node the joint values
    # (the zoom offset is a curve of the zoom): micrometres apart while zooming at full speed
    assert worst_r < 1e-6 and worst_t < 5e-5


class TfBuffer:
    """What tf2 would answer from recorded /tf messages: per link, linear translation and slerp
    between the two messages around the stamp."""

    def __init__(self, messages):
        links = {}
        for msg in messages:
            for tf in msg.transforms:
                q, t = tf.transform.rotation, tf.transform.translation
                links.setdefault((tf.header.frame_id, tf.child_frame_id), {})[seconds(tf.header.stamp)] = (
                    np.array([q.x, q.y, q.z, q.w]), np.array([t.x, t.y, t.z]))
        self.links = {k: sorted(v.items()) for k, v in links.items()}

    def lookup(self, parent, child, t):
        from scipy.spatial.transform import Rotation, Slerp

        items = self.links[(parent, child)]
        stamps = [x for x, _ in items]
        i = int(np.searchsorted(stamps, t))
        if i == 0 or i == len(items):
            if i < len(items) and stamps[i] == t:
                return Rotation.from_quat(items[i][1][0]).as_matrix(), items[i][1][1]
            raise LookupError(t)
        (ta, (qa, pa)), (tb, (qb, pb)) = items[i - 1], items[i]
        w = (t - ta) / (tb - ta)
        r = Slerp([ta, tb], Rotation.from_quat([qa, qb]))([t]).as_matrix()[0]
        return r, pa + w * (pb - pa)

    def chain(self, frames, t):
        from ptz_calibration.model import compose

        r, p = np.eye(3), np.zeros(3)
        for parent, child in zip(frames[:-1], frames[1:]):
            r, p = compose(r, p, *self.lookup(parent, child, t))
        return r, p


# -- ~/localize and the stream --------------------------------------------------------------------------


def client(probe, s, srv_type, name):
    """One client per service of the system (discovery of a new client takes a while)."""
    clients = s.__dict__.setdefault("clients", {})
    if name not in clients:
        clients[name] = probe.create_client(srv_type, f"{s.ns}/{name}")
        assert clients[name].wait_for_service(timeout_sec=20.0)
    return clients[name]


def localize_call(probe, s, stamp, left_px, right_px, frame_id="", pixel_sigma=0.0):
    from ptz_calibration_msgs.srv import Localize

    from ptz_calibration.nodes.conversions import to_time

    request = Localize.Request(stamp=to_time(stamp), frame_id=frame_id,
                               left_u=float(left_px[0]), left_v=float(left_px[1]),
                               right_u=float(right_px[0]), right_v=float(right_px[1]), pixel_sigma=float(pixel_sigma))
    future = client(probe, s, Localize, "localize").call_async(request)
    assert wait_until(future.done, 20.0)
    return future.result()


def targets_in_view(s, t, ranges):
    """World points at ``ranges`` (m) ahead of the rig, between the two optical axes, that both
    cameras see at ``t``; with their true pixels."""
    rl, tl = s.left_sim.true_pose_world(t)
    rr, tr = s.right_sim.true_pose_world(t)
    centre = (tl + tr) / 2
    axis = rl[:, 2] + rr[:, 2]
    axis /= np.linalg.norm(axis)
    side = np.cross(axis, [0.0, 0.0, 1.0])
    points = np.array([centre + d * axis + 0.02 * d * side + [0.0, 0.0, 0.01 * d] for d in ranges])
    left_px, right_px = s.left_sim.project(points, t), s.right_sim.project(points, t)
    w, h = s.left_sim.spec.model.image_width, s.left_sim.spec.model.image_height
    for px in (left_px, right_px):
        assert np.all(np.isfinite(px)) and np.all((px >= 0) & (px < [w, h])), px
    return points, left_px, right_px


def dense_stamp(s, back=0.05, max_spacing=0.025):
    """The latest stamp at least ``back`` s before the newest feedback where both cameras' samples
    around it are at most ``max_spacing`` apart (the drivers share one busy test process: their
    50 Hz timers slip now and then, and interpolating over a gap while a head accelerates is not
    what is being tested)."""
    stamps = {c: np.array([seconds(m.header.stamp) for m in s.states[c].messages[-200:]]) for c in ("left", "right")}
    latest = min(v[-1] for v in stamps.values()) - back
    for v in stamps.values():
        v.sort()
    candidates = np.sort(np.concatenate(list(stamps.values())))[::-1]
    for t in candidates:
        if t > latest:
            continue
        ok = True
        for v in stamps.values():
            i = np.searchsorted(v, t)
            if i == 0 or i >= len(v) or v[i] - v[i - 1] > max_spacing or v[i + 1 if i + 1 < len(v) else i] - v[i] > max_spacing:
                ok = False
                break
        if ok:
            return float(t)
    return latest


def recent_stamp(s, back=0.1):
    """A stamp ``back`` s before the latest ~/extrinsics (feedback of both cameras around it)."""
    return seconds(s.extrinsics.messages[-1].header.stamp) - back


def frame_truth(s, frame_id, t):
    """(R, t) world -> ``frame_id`` at ``t`` from the simulator (X_frame = R X_world + t)."""
    f = s.frames
    if frame_id == f.parent:
        return np.eye(3), np.zeros(3)
    if frame_id in (f.left_optical, f.right_optical):
        r, p = (s.left_sim if frame_id == f.left_optical else s.right_sim).true_pose_world(t)
    else:
        spec = (s.left_sim if frame_id == f.left_mount else s.right_sim).spec
        r, p = spec.mount_R, spec.mount_t
    return r.T, -r.T @ p


@pytest.mark.parametrize("ranges", [(5.0, 10.0, 20.0, 30.0)])
def test_localize_finds_simulated_points_within_half_a_percent_of_the_range(motion, probe, ranges):
    s = motion
    t = recent_stamp(s)
    points, left_px, right_px = targets_in_view(s, t, ranges)
    errors = []
    for point, lp, rp in zip(points, left_px, right_px):
        answer = localize_call(probe, s, t, lp, rp, frame_id=s.frames.parent)
        assert answer.success, answer.message
        assert answer.point.header.frame_id == s.frames.parent
        assert seconds(answer.point.header.stamp) == pytest.approx(t, abs=1e-6)
        got = np.array([answer.point.point.x, answer.point.point.y, answer.point.point.z])
        rng = np.linalg.norm(point - s.left_sim.true_pose_world(t)[1])
        errors.append(np.linalg.norm(got - point) / rng)
        cov = np.reshape(answer.covariance, (3, 3))
        assert np.all(np.linalg.eigvalsh(cov) > 0) and np.allclose(cov, cov.T)
        assert answer.left_reprojection_error < 0.05 and answer.right_reprojection_error < 0.05
        assert answer.ray_distance < 1e-3
    print(f"\n~/localize at rest, ranges {ranges} m: error {[f'{e * 100:.1e}' for e in errors]} % of the range")
    assert max(errors) <= RANGE_TOL


def test_localize_covariance_holds_the_rig_uncertainty(motion, probe, rig_files):
    """The rig file's uncertainty (home transform, heads' pointing, zoom translation) is in the
    covariance: in the left optical frame as the pure triangulation with the extrinsics' covariance
    gives it, above the pixel noise alone; in another frame plus the left head's pointing."""
    from ptz_calibration.model.rig_uncertainty import pointing_covariance
    from ptz_calibration.model.stereo_rig import load_rig_model
    from ptz_calibration.stereo import localize

    s = motion
    rig = load_rig_model(rig_files[1])
    t = recent_stamp(s)
    _, left_px, right_px = targets_in_view(s, t, (20.0,))
    ql, qr = ((st.pan, st.tilt, st.zoom_raw) for st in (s.left_sim.true_state(t), s.right_sim.true_state(t)))
    answer = localize_call(probe, s, t, left_px[0], right_px[0])
    assert answer.success, answer.message
    cov = np.reshape(answer.covariance, (3, 3))
    pure = localize(rig, ql, qr, left_px[0], right_px[0], pixel_sigma=0.5, extrinsics_cov=rig.extrinsics_covariance(ql, qr))
    pixel_only = localize(rig, ql, qr, left_px[0], right_px[0], pixel_sigma=0.5)
    np.testing.assert_allclose(cov, pure.covariance, rtol=0.02, atol=1e-3 * np.abs(pure.covariance).max())
    assert np.trace(cov) > 1.5 * np.trace(pixel_only.covariance)  # at the widest zoom: 0.77 m std against 0.47 m
    # in the parent frame (the world here) the left head's pointing error moves the point sideways too
    in_parent = localize_call(probe, s, t, left_px[0], right_px[0], frame_id=s.frames.parent)
    rl, _ = s.left_sim.true_pose_world(t)
    added = rl.T @ np.reshape(in_parent.covariance, (3, 3)) @ rl - cov
    expected = pointing_covariance(rig.left, ql, pure.point, rig.uncertainty.pointing_sigma)[0]
    np.testing.assert_allclose(added, expected, atol=0.05 * np.abs(expected).max())
    print(f"\n~/localize at 20 m, widest zoom: std {np.sqrt(np.trace(cov)) * 1e3:.0f} mm (pixel noise alone "
          f"{np.sqrt(np.trace(pixel_only.covariance)) * 1e3:.0f} mm); the left head's pointing adds "
          f"{np.sqrt(np.trace(expected)) * 1e3:.1f} mm sideways in {s.frames.parent}")


def test_localize_while_moving_and_in_every_frame(motion, probe):
    """Both heads pan at speed; the point at a stamp between feedback samples, in each frame of the
    rig, against the truth (the stamp is where the states are interpolated)."""
    from ptz_calibration_msgs.msg import PtzCommand

    s = motion
    for camera, rate in (("left", 0.4), ("right", -0.3)):
        s.cmd[camera].publish(PtzCommand(mode=PtzCommand.MODE_VELOCITY, pan=rate, tilt=0.05, duration=1.5))
    try:
        assert wait_until(lambda: all(abs(s.states[c].messages[-1].pan_velocity) > 0.25 for c in s.cmd), 10.0)
        time.sleep(0.3)
        t = dense_stamp(s, back=0.05) + 0.0037  # between samples, where neither feedback has a gap
        assert s.left_sim.true_state(t).moving and s.right_sim.true_state(t).moving
        points, left_px, right_px = targets_in_view(s, t, (8.0, 25.0))
        f = s.frames
        worst = 0.0
        for frame_id in ("", f.left_optical, f.right_optical, f.left_mount, f.right_mount, f.parent):
            r, p = frame_truth(s, frame_id or f.left_optical, t)
            for point, lp, rp in zip(points, left_px, right_px):
                answer = localize_call(probe, s, t, lp, rp, frame_id=frame_id)
                assert answer.success, answer.message
                assert answer.point.header.frame_id == (frame_id or f.left_optical)
                got = np.array([answer.point.point.x, answer.point.point.y, answer.point.point.z])
                rng = np.linalg.norm(point - s.left_sim.true_pose_world(t)[1])
                worst = max(worst, np.linalg.norm(got - (r @ point + p)) / rng)
    finally:
        for camera in s.cmd:
            s.cmd[camera].publish(PtzCommand(mode=PtzCommand.MODE_STOP))
        assert wait_until(lambda: not any(s.states[c].messages[-1].moving for c in s.cmd), 10.0)
        time.sleep(0.2)
        move_both(s, START["left"], START["right"])  # the next tests expect the heads facing forward
    print(f"\n~/localize while panning (0.4 and -0.3 rad/s), 6 frames: worst error {worst * 100:.1e} % of the range")
    assert worst <= RANGE_TOL


def test_localize_refusals_say_why(motion, probe):
    s = motion
    t = recent_stamp(s)
    _, left_px, right_px = targets_in_view(s, t, (10.0,))
    lp, rp = left_px[0], right_px[0]
    cases = [
        (dict(stamp=t, left_px=lp, right_px=rp, frame_id="nowhere"), "unknown frame 'nowhere'"),
        (dict(stamp=t - 60.0, left_px=lp, right_px=rp), "too old"),
        (dict(stamp=t + 60.0, left_px=lp, right_px=rp), "too new"),
        (dict(stamp=t, left_px=(10.0, 360.0), right_px=(1270.0, 360.0)), "localize failed"),  # rays diverge
        (dict(stamp=t, left_px=(math.nan, 1.0), right_px=rp), "finite"),
    ]
    for kwargs, expected in cases:
        answer = localize_call(probe, s, **kwargs)
        assert not answer.success and expected in answer.message, (kwargs, answer.message)
    latest = localize_call(probe, s, 0.0, lp, rp)  # zero stamp: the latest common stamp
    assert latest.success, latest.message


def test_pixel_pair_stream(motion, probe):
    """~/pixel_pairs -> ~/localized (every pair, ids kept, failures with their reason), ~/points
    and ~/points_with_covariance (one per localized pair); pairs newer than the feedback wait."""
    from geometry_msgs.msg import PointStamped, PoseWithCovarianceStamped
    from ptz_calibration_msgs.msg import LocalizedPointArray, PixelPair, PixelPairArray

    from ptz_calibration.nodes.conversions import to_time
    from ptz_calibration.nodes.stereo_geometry import ORIENTATION_VARIANCE_UNKNOWN

    s = motion
    localized = Recorder(probe, LocalizedPointArray, f"{s.ns}/localized", 100)
    points = Recorder(probe, PointStamped, f"{s.ns}/points", 100)
    poses = Recorder(probe, PoseWithCovarianceStamped, f"{s.ns}/points_with_covariance", 100)
    pub = probe.create_publisher(PixelPairArray, f"{s.ns}/pixel_pairs", 10)
    try:
        assert wait_until(lambda: pub.get_subscription_count() > 0, 20.0)
        t = recent_stamp(s)
        truth, left_px, right_px = targets_in_view(s, t, (6.0, 15.0))
        r, p = frame_truth(s, s.frames.left_optical, t)
        msg = PixelPairArray()
        msg.header.stamp = to_time(t)
        for k, (lp, rp) in enumerate(zip(left_px, right_px)):
            msg.pairs.append(PixelPair(id=100 + k, left_u=lp[0], left_v=lp[1], right_u=rp[0], right_v=rp[1]))
        msg.pairs.append(PixelPair(id=7, left_u=10.0, left_v=360.0, right_u=1270.0, right_v=360.0))  # diverging
        future = PixelPair(id=9, left_u=lp[0], left_v=lp[1], right_u=rp[0], right_v=rp[1])
        future.header.stamp = to_time(time.time() + 0.3)  # ahead of the feedback: waits for it
        msg.pairs.append(future)
        pub.publish(msg)
        arrays = localized.wait_for(count=2, timeout=10.0)
        assert len(arrays) == 2, [list(a.points) for a in arrays]
        first = arrays[0]
        assert seconds(first.header.stamp) == pytest.approx(t, abs=1e-6)
        assert first.header.frame_id == s.frames.left_optical
        assert [q.id for q in first.points] == [100, 101, 7]
        for q, point in zip(first.points[:2], truth):
            assert q.valid and q.status == "ok", q.status
            got = np.array([q.point.x, q.point.y, q.point.z])
            expected = r @ point + p
            assert np.linalg.norm(got - expected) <= RANGE_TOL * np.linalg.norm(expected)
            assert q.ray_angle > 0 and q.left_reprojection_error < 0.05
        assert not first.points[2].valid and first.points[2].status and math.isnan(first.points[2].point.x)
        later = arrays[1]
        assert [q.id for q in later.points] == [9] and later.points[0].valid, later.points[0].status
        assert len(points.wait_for(count=3)) == 3 and len(poses.wait_for(count=3)) == 3
        pose = poses.messages[0]
        assert pose.header.frame_id == s.frames.left_optical and pose.pose.pose.orientation.w == 1.0
        cov = np.reshape(pose.pose.covariance, (6, 6))
        np.testing.assert_allclose(cov[:3, :3], np.reshape(first.points[0].covariance, (3, 3)))
        np.testing.assert_array_equal(np.diag(cov)[3:], ORIENTATION_VARIANCE_UNKNOWN)
        assert points.messages[0].point == first.points[0].point
    finally:
        for rec in (localized, points, poses):
            probe.destroy_subscription(rec.subscription)
        probe.destroy_publisher(pub)


# -- ~/sync_capture ---------------------------------------------------------------------------------


def sync_call(probe, s, max_skew=0.0, hardware=True, images=False, timeout=30.0):
    from ptz_calibration_msgs.srv import SyncCapture

    request = SyncCapture.Request(max_skew=max_skew, hardware_trigger=hardware, include_images=images)
    future = client(probe, s, SyncCapture, "sync_capture").call_async(request)
    assert wait_until(future.done, timeout)
    return future.result()


def test_sync_capture_hardware_trigger(motion, probe):
    s = motion
    answer = sync_call(probe, s, hardware=True, images=True)
    assert answer.success, answer.message
    assert answer.mode == "hardware"
    assert abs(answer.skew) < 1e-3, answer.skew
    left, right = seconds(answer.left_image.header.stamp), seconds(answer.right_image.header.stamp)
    assert answer.skew == pytest.approx(right - left, abs=1e-6)  # exposure_time: float64 s, 0.24 us steps
    assert (answer.left_image.width, answer.right_image.width) == (1280, 1280)
    assert seconds(answer.left_state.header.stamp) == pytest.approx(left, abs=1e-6)
    assert answer.left_state.camera_name == "left" and answer.right_state.camera_name == "right"
    assert answer.left_camera_info.k[0] > 0 and answer.right_camera_info.k[0] > 0
    # the true exposures (trigger latency jitter 50 us) are as close as the reported ones
    print(f"\n~/sync_capture hardware: reported skew {answer.skew * 1e3:.4f} ms")


def test_sync_capture_software_reports_the_real_skew_and_refuses_above_max_skew(motion, probe):
    s = motion
    answer = sync_call(probe, s, max_skew=0.1, hardware=False)
    assert answer.success, answer.message
    assert answer.mode == "software" and len(answer.left_image.data) == 0
    skew = seconds(answer.right_state.header.stamp) - seconds(answer.left_state.header.stamp)
    assert answer.skew == pytest.approx(skew, abs=1e-6)
    assert abs(answer.skew) <= 0.1  # the newest frames of two free-running 30 Hz streams, as they came
    refused = sync_call(probe, s, max_skew=1e-6, hardware=False)
    assert not refused.success and refused.mode == "software"
    assert "skew" in refused.message and "max_skew" in refused.message, refused.message
    assert abs(refused.skew) > 1e-6 and f"{refused.skew * 1e3:.3f} ms" in refused.message
    print(f"\n~/sync_capture software: skew {answer.skew * 1e3:.3f} ms, refused at max_skew 1 us: "
          f"{refused.message}")


# -- markers, diagnostics ----------------------------------------------------------------------------


def test_markers_show_both_frustums_at_their_zoom(motion, probe):
    from visualization_msgs.msg import Marker, MarkerArray

    s = motion
    t = recent_stamp(s)
    _, left_px, right_px = targets_in_view(s, t, (12.0,))
    assert localize_call(probe, s, t, left_px[0], right_px[0]).success  # a point to show
    rec = Recorder(probe, MarkerArray, f"{s.ns}/markers", 10)
    try:
        (msg,) = rec.wait_for(timeout=10.0)[:1]
    finally:
        probe.destroy_subscription(rec.subscription)
    frustums = {m.header.frame_id: m for m in msg.markers if m.ns == "frustum"}
    assert set(frustums) == {s.frames.left_optical, s.frames.right_optical}
    stamp = seconds(frustums[s.frames.left_optical].header.stamp)
    state = s.stereo.state_at(stamp)
    for frame, model, zoom in ((s.frames.left_optical, s.stereo.rig.left, state.left.zoom),
                               (s.frames.right_optical, s.stereo.rig.right, state.right.zoom)):
        m = frustums[frame]
        assert m.type == Marker.LINE_LIST and len(m.points) == 16
        far = np.array([[p.x, p.y, p.z] for p in m.points[1::2]])
        assert np.allclose(far[:, 2], s.stereo.frustum_length)
        k = model.camera_matrix(zoom)
        assert far[:, 0].max() == pytest.approx((model.image_width - k[0, 2]) / k[0, 0] * s.stereo.frustum_length)
    assert any(m.ns == "points" and m.header.frame_id == s.frames.left_mount and m.points for m in msg.markers)


def test_diagnostics(motion, probe):
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus

    s = motion
    name = f"{s.stereo.get_fully_qualified_name()}: stereo"
    rec = Recorder(probe, DiagnosticArray, "/diagnostics", 50, keep=lambda m: any(x.name == name for x in m.status))

    def values_of(msg):
        return {kv.key: kv.value for kv in [x for x in msg.status if x.name == name][0].values}

    def settled_rates(msg):  # a second without image rendering (the sync tests starve one process)
        v = values_of(msg)
        return all(float(v[f"{c} feedback rate (Hz)"]) > 25.0 for c in ("left", "right"))
    try:
        msgs = rec.wait_for(settled_rates, count=1, timeout=15.0)
        assert msgs, [values_of(m) for m in rec.messages]
    finally:
        probe.destroy_subscription(rec.subscription)
    status = [x for x in msgs[-1].status if x.name == name][0]
    values = values_of(msgs[-1])
    assert status.level == DiagnosticStatus.OK, status.message
    for camera in ("left", "right"):
        # 50 Hz, counted over one diagnostics period: a late period or a burst of queued samples reads higher
        assert 25.0 < float(values[f"{camera} feedback rate (Hz)"]) < 100.0
        assert float(values[f"{camera} state age (s)"]) < 0.5
        assert values[f"{camera} rejected samples"] == "0"
    assert float(values["extrinsics rate (Hz)"]) > 25.0
    assert values["parent -> left mount received"] == "true"
    print(f"\ndiagnostics: {values}")


# -- other set-ups ------------------------------------------------------------------------------------


def test_without_rig_file_the_true_rig_is_used_with_a_warning_and_missing_feedback_is_reported(
        ros_context, spinner, probe):
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
    from ptz_calibration_msgs.msg import StereoExtrinsics
    from rclpy.parameter import Parameter

    from ptz_calibration.nodes.ptz_stereo import TRUE_RIG_WARNING, PtzStereoNode

    nowhere = unique_name("nowhere")
    node = spinner.add(PtzStereoNode(unique_name("stereo"), context=ros_context, parameter_overrides=[
        Parameter("left_state_topic", value=f"/{nowhere}/left"), Parameter("right_state_topic", value=f"/{nowhere}/r"),
    ]))
    name = f"{node.get_fully_qualified_name()}: stereo"
    diags = Recorder(probe, DiagnosticArray, "/diagnostics", 50, keep=lambda m: any(x.name == name for x in m.status))
    extrinsics = Recorder(probe, StereoExtrinsics, f"/{node.get_name()}/extrinsics", 10)
    try:
        assert node.rig is not None and node.rig_is_truth
        status = [x for x in diags.wait_for(timeout=10.0)[0].status if x.name == name][0]
        assert status.level == DiagnosticStatus.ERROR and "no feedback from the left camera" in status.message
        assert TRUE_RIG_WARNING in {kv.key: kv.value for kv in status.values}["calibration"]
        (msg,) = extrinsics.wait_for(timeout=10.0)[:1]
        assert not msg.valid and msg.status == "no feedback yet from the left and right camera", msg.status
    finally:
        probe.destroy_subscription(diags.subscription)
        probe.destroy_subscription(extrinsics.subscription)
        spinner.destroy(node)


def test_bad_rig_file_is_reported_and_nothing_is_computed(ros_context, spinner, probe, tmp_path):
    from ptz_calibration_msgs.msg import StereoExtrinsics
    from rclpy.parameter import Parameter

    from ptz_calibration.nodes.ptz_stereo import PtzStereoNode

    bad = tmp_path / "rig.yaml"
    bad.write_text("format: ptz_calibration/stereo_rig\nhome: {R: [[1, 0, 0]], t: [0, 0, 0]}\n")
    node = spinner.add(PtzStereoNode(unique_name("stereo"), context=ros_context,
                                     parameter_overrides=[Parameter("rig_file", value=str(bad))]))
    extrinsics = Recorder(probe, StereoExtrinsics, f"/{node.get_name()}/extrinsics", 10)
    try:
        assert node.rig is None and str(bad) in node.rig_note
        (msg,) = extrinsics.wait_for(timeout=10.0)[:1]
        assert not msg.valid and msg.status.startswith("no stereo calibration") and str(bad) in msg.status
    finally:
        probe.destroy_subscription(extrinsics.subscription)
        spinner.destroy(node)


def test_reload_calibration_switches_the_rig_and_keeps_it_when_the_file_is_bad(ros_context, spinner, probe, tmp_path):
    """Live round trips: set ``rig_file`` through the parameter service, ``~/reload_calibration``
    loads it and re-sends the mount transform on /tf_static; a corrupt or missing file is refused
    and the rig in use stays."""
    from rcl_interfaces.srv import SetParameters
    from rclpy.parameter import Parameter
    from std_srvs.srv import Trigger
    from tf2_msgs.msg import TFMessage

    from ptz_calibration.model.stereo_rig import save_rig_model
    from ptz_calibration.nodes.ptz_stereo import TF_STATIC_LISTENER_QOS, PtzStereoNode
    from ptz_calibration.simulation import load_rig
    from ptz_calibration.simulation.rig import true_stereo_rig

    prefix = unique_name("rl") + "_"
    bad = tmp_path / "bad.yaml"
    bad.write_text("format: ptz_calibration/stereo_rig\nhome: {R: [[1, 0, 0]], t: [0, 0, 0]}\n")
    good = tmp_path / "rig.yaml"
    truth = true_stereo_rig(load_rig())
    shifted = dataclasses.replace(truth, home_t=truth.home_t + np.array([0.004, -0.002, 0.003]))
    save_rig_model(shifted, good)
    nowhere = unique_name("nowhere")
    node = spinner.add(PtzStereoNode(unique_name("stereo"), context=ros_context, parameter_overrides=[
        Parameter("rig_file", value=str(bad)), Parameter("left_state_topic", value=f"/{nowhere}/left"),
        Parameter("right_state_topic", value=f"/{nowhere}/right"),
        Parameter("left_mount_frame", value=prefix + "left_mount"),
        Parameter("right_mount_frame", value=prefix + "right_mount")]))
    name = f"/{node.get_name()}"
    tf_static = Recorder(probe, TFMessage, "/tf_static", TF_STATIC_LISTENER_QOS,
                         keep=lambda m: any(t.child_frame_id.startswith(prefix) for t in m.transforms))
    set_params = probe.create_client(SetParameters, f"{name}/set_parameters")
    reload = probe.create_client(Trigger, f"{name}/reload_calibration")

    def call(cli, request):
        assert cli.wait_for_service(timeout_sec=20.0)
        future = cli.call_async(request)
        assert wait_until(future.done, 20.0)
        return future.result()

    def set_rig_file(path):
        answer = call(set_params, SetParameters.Request(parameters=[Parameter("rig_file", value=str(path)).to_parameter_msg()]))
        assert answer.results[0].successful, answer.results[0].reason

    try:
        assert node.rig is None
        answer = call(reload, Trigger.Request())  # the bad file again: still nothing
        assert not answer.success and answer.message.startswith("still no stereo calibration") and str(bad) in answer.message
        time.sleep(0.5)
        assert not tf_static.messages, "a mount transform without a rig"

        set_rig_file(good)
        answer = call(reload, Trigger.Request())
        assert answer.success and str(good) in answer.message, answer.message
        assert node.rig is not None and not node.rig_is_truth
        np.testing.assert_allclose(node.rig.home_t, shifted.home_t, atol=1e-12)
        msgs = tf_static.wait_for(timeout=10.0)
        assert msgs, "no mount transform after the reload"
        tr = [t for t in msgs[-1].transforms if t.child_frame_id == prefix + "right_mount"][0]
        assert tr.header.frame_id == prefix + "left_mount"
        _, t_expected = shifted.left_mount_from_right_mount()
        got = np.array([tr.transform.translation.x, tr.transform.translation.y, tr.transform.translation.z])
        np.testing.assert_allclose(got, t_expected, atol=1e-9)
        in_use = node.rig

        good.write_text("format: ptz_calibration/stereo_rig\n[corrupt")  # a bad write of the same file
        answer = call(reload, Trigger.Request())
        assert not answer.success and answer.message.startswith("kept the previous rig"), answer.message
        assert node.rig is in_use
        set_rig_file(tmp_path / "missing.yaml")
        answer = call(reload, Trigger.Request())
        assert not answer.success and "missing.yaml" in answer.message and node.rig is in_use

        set_rig_file("")  # back to the simulator's truth, with its warning
        answer = call(reload, Trigger.Request())
        assert answer.success and node.rig_is_truth, answer.message
        np.testing.assert_allclose(node.rig.home_t, truth.home_t, atol=1e-12)
    finally:
        probe.destroy_subscription(tf_static.subscription)
        probe.destroy_client(set_params)
        probe.destroy_client(reload)
        spinner.destroy(node)


def test_params_file_matches_the_node_and_the_drivers_frames(ros_context, spinner):
    """config/sim_stereo.yaml sets every parameter to the node's default, and its frames are the
    ones the drivers publish with config/sim_left.yaml and sim_right.yaml."""
    import yaml

    from ptz_calibration.drivers.simulated import package_config_file
    from ptz_calibration.nodes.frames import FrameNames
    from ptz_calibration.nodes.ptz_stereo import PtzStereoNode

    params = yaml.safe_load(package_config_file("sim_stereo.yaml").read_text())["/**"]["ros__parameters"]
    node = PtzStereoNode(unique_name("stereo"), context=ros_context)
    try:
        declared = {name: node.get_parameter(name).value for name in params}
        assert set(params) == set(node._parameters) - {"use_sim_time", "start_type_description_service"}
    finally:
        node.destroy_node()
    assert declared == params
    left, right = (FrameNames.for_camera(c, sim_params(c)["parent_frame"], sim_params(c)["frame_prefix"])
                   for c in ("left", "right"))
    assert (params["parent_frame"], params["left_mount_frame"], params["left_optical_frame"]) == \
        (left.parent, left.mount, left.optical)
    assert (params["right_mount_frame"], params["right_optical_frame"]) == (right.mount, right.optical)


def test_sync_capture_falls_back_to_software_without_hardware_trigger(ros_context, spinner, probe):
    """Drivers whose backend has no hardware trigger (mock): hardware_trigger asks, gets refused,
    and the pair is taken in software mode, which the answer says."""
    from rclpy.parameter import Parameter

    from ptz_calibration.drivers.mock import MockPtzDriver
    from ptz_calibration.nodes.ptz_driver import PtzDriverNode
    from ptz_calibration.nodes.ptz_stereo import PtzStereoNode

    drivers = [spinner.add(PtzDriverNode(unique_name(f"{c}_mock"), context=ros_context, driver=MockPtzDriver(),
                                         parameter_overrides=[Parameter("camera_name", value=c),
                                                              Parameter("publish_images", value=False),
                                                              Parameter("frame_prefix", value=unique_name("m"))]))
               for c in ("left", "right")]
    start = time.time()
    assert wait_until(lambda: all(d.history.latest() is not None and d.history.latest().stamp > start + 0.3
                                  for d in drivers), 20.0)
    node = spinner.add(PtzStereoNode(unique_name("stereo"), context=ros_context, parameter_overrides=[
        Parameter("left_capture_service", value=f"/{drivers[0].get_name()}/capture"),
        Parameter("right_capture_service", value=f"/{drivers[1].get_name()}/capture"),
        Parameter("left_state_topic", value=f"/{drivers[0].get_name()}/ptz_state"),
        Parameter("right_state_topic", value=f"/{drivers[1].get_name()}/ptz_state")]))
    s = System()
    s.ns = f"/{node.get_name()}"
    try:
        answer = sync_call(probe, s, max_skew=1.0, hardware=True, images=True)
        assert answer.success, answer.message
        assert answer.mode == "software" and "no hardware trigger" in answer.message, answer.message
        assert (answer.left_image.width, answer.right_image.width) == (320, 320)
    finally:
        for c in s.__dict__.get("clients", {}).values():
            probe.destroy_client(c)
        for n in (node, *drivers):
            spinner.destroy(n)


def test_publish_rate_and_stale_feedback(ros_context, spinner, probe):
    """Feedback published by the test itself (two cameras at 50 Hz, 7 ms apart): with
    ``publish_rate`` 10 Hz, ~/extrinsics comes at 10 Hz at the common stamp; when one camera's
    feedback stops, messages turn invalid within a second or two and say which camera is stale."""
    from ptz_calibration_msgs.msg import PtzState, StereoExtrinsics
    from rclpy.parameter import Parameter

    from ptz_calibration.nodes.conversions import fill_time
    from ptz_calibration.nodes.ptz_stereo import PtzStereoNode

    base = f"/{unique_name('feed')}"
    node = spinner.add(PtzStereoNode(unique_name("stereo"), context=ros_context, parameter_overrides=[
        Parameter("left_state_topic", value=f"{base}/left"), Parameter("right_state_topic", value=f"{base}/right"),
        Parameter("publish_rate", value=10.0), Parameter("marker_rate", value=0.0)]))
    pubs = {c: probe.create_publisher(PtzState, f"{base}/{c}", 100) for c in ("left", "right")}
    rec = Recorder(probe, StereoExtrinsics, f"/{node.get_name()}/extrinsics", 100)
    try:
        assert wait_until(lambda: all(p.get_subscription_count() > 0 for p in pubs.values()), 20.0)

        def feed(cameras, duration):
            end = time.time() + duration
            while time.time() < end:
                t = time.time() - 0.01
                for c in cameras:
                    i = 0 if c == "left" else 1
                    stamp = t + 0.007 * i
                    msg = PtzState(camera_name=c, pan=0.1 * math.sin(stamp) + 0.05 * i, tilt=0.02, zoom_raw=2000.0)
                    fill_time(msg.header.stamp, stamp)
                    pubs[c].publish(msg)
                time.sleep(0.02)

        feed(("left", "right"), 2.0)
        valid = [m for m in rec.messages if m.valid]
        stamps = [seconds(m.header.stamp) for m in valid]
        rate = (len(stamps) - 1) / (stamps[-1] - stamps[0])
        assert 7.0 < rate < 12.0, rate
        for m in valid:
            assert min(m.left_state_age, m.right_state_age) == pytest.approx(0.0, abs=1e-9)
            pan_l = 0.1 * math.sin(seconds(m.header.stamp))  # the feed is sin(t) at the sample stamps
            r, t = node.rig.extrinsics((pan_l, 0.02, 2000.0), (pan_l + 0.05, 0.02, 2000.0))
            r_msg, _ = msg_transform(m.left_to_right)
            assert angle_deg(r @ r_msg) < 2e-3  # linear between ~20 ms samples of a slow sine (pairing
            # the newest samples instead: 7 ms apart at up to 0.1 rad/s, 0.04 deg)
        rec.clear()
        feed(("left",), 2.5)  # the right camera goes quiet
        invalid = [m for m in rec.messages if not m.valid]
        assert invalid, [m.status for m in rec.messages]
        assert "stale feedback" in invalid[-1].status and "right" in invalid[-1].status, invalid[-1].status
        assert invalid[-1].right_state_age < -node.max_state_age
    finally:
        probe.destroy_subscription(rec.subscription)
        for p in pubs.values():
            probe.destroy_publisher(p)
        spinner.destroy(node)


@pytest.mark.slow
def test_feedback_errors_of_the_default_rig(ros_context, spinner, probe, system):
    """The default rig's mechanics (backlash, gear error, 0.075 deg encoder steps, thermal drift)
    are invisible to feedback: ~/extrinsics then differs from the truth by what the reported
    states differ from the true ones. Measured here against the same error of the reported
    feedback at each stamp (``feedback(t)`` of both cameras put into the rig model): the node adds
    nothing beyond the issue target to it."""
    # stop the exact-feedback system's nodes first: one set of drivers at a time on two cores
    for node in (system.stereo, system.left, system.right):
        spinner.destroy(node)
    s = start_system(ros_context, spinner, probe)  # the default rig; the stereo node's rig = its truth
    try:
        msgs = move_both(s, (0.6, 0.2, 6000.0), (-0.5, -0.1, 11000.0))
        msgs += move_both(s, (-0.2, 0.1, 2000.0), (0.3, 0.05, 3000.0), speed=1.2)
        assert len(msgs) >= 40
        feedback = {c: Feedback(s.states[c].messages) for c in s.drivers}
        nominal = []
        for m in msgs:  # feedback at its rate around the stamp (see the exact-feedback test)
            try:
                nominal.append(max(feedback[c].at(seconds(m.header.stamp))[1] for c in s.drivers) <= 0.025)
            except LookupError:
                nominal.append(False)
        msgs = [m for m, ok in zip(msgs, nominal) if ok]
        assert len(msgs) >= 20, f"only {len(msgs)} stamps with feedback at its rate"
        rot, trans = extrinsics_errors(msgs, s.left_sim, s.right_sim)
        rig = s.stereo.rig
        fb_rot, fb_trans = [], []
        for m in msgs:
            t = seconds(m.header.stamp)
            fl, fr = (sim.feedback(t + sim.spec.timing.feedback_latency) for sim in (s.left_sim, s.right_sim))
            r, tt = rig.extrinsics((fl.pan, fl.tilt, fl.zoom_raw), (fr.pan, fr.tilt, fr.zoom_raw))
            r_true, t_true = true_left_to_right(s.left_sim, s.right_sim, t)
            fb_rot.append(angle_deg(r @ r_true))  # r is right-from-left, r_true left-from-right
            fb_trans.append(float(np.linalg.norm(-r.T @ tt - t_true) / np.linalg.norm(t_true)))
        fb_rot, fb_trans = np.array(fb_rot), np.array(fb_trans)
        print(f"\ndefault rig, {len(msgs)} moving stamps (feedback gaps <= 25 ms): ~/extrinsics vs truth rotation "
              f"median {np.median(rot):.4f} max {rot.max():.4f} deg, translation max {trans.max() * 100:.4f} %; "
              f"the reported feedback itself: rotation median {np.median(fb_rot):.4f} max {fb_rot.max():.4f} deg, translation max "
              f"{fb_trans.max() * 100:.4f} %")
        assert rot.max() <= ROT_TOL_DEG + fb_rot.max()
        assert trans.max() <= TRANS_TOL + fb_trans.max()
        assert np.median(rot) <= np.median(fb_rot) + ROT_TOL_DEG / 2
    finally:
        stop_system(spinner, probe, s)
