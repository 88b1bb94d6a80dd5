"""The simulated PTZ rig (pure Python: no rclpy, no message types).

Ground truth of every accuracy test: calibration targets, a ray-casting renderer, head
mechanics (profiles, backlash, periodic error, encoders), thermal drift, the rig YAML and the
simulated camera that puts them together.

```python
from ptz_calibration.simulation import load_rig, make_cameras
rig = load_rig()                                   # config/sim_rig.yaml
cams = make_cameras(rig, seed=0, clock=time.time)  # {"left": SimulatedPtzCamera, "right": ...}
cam = cams["left"]
cam.move_absolute(0.3, 0.1, 4000)
fb = cam.feedback()                                # reported (encoder) state, sample stamp
R, t = cam.true_pose_world()                       # world_from_optical, ground truth
frame = cam.capture()                              # image, reported stamp, true exposure time
```
"""

from .camera import SimFeedback, SimFrame, SimulatedPtzCamera, TrueState, make_cameras
from .mechanics import Axis, AxisConfig, HarmonicError, MechanicsConfig, PtzMechanics
from .render import (
    ImageNoise,
    RenderOptions,
    distort_normalized,
    look_at,
    project_points,
    render,
    undistort_normalized,
)
from .rig import (
    RIG_FORMAT,
    CameraSpec,
    Rig,
    RigFileError,
    TimingConfig,
    default_rig_path,
    facing_rotation,
    load_rig,
    rig_from_dict,
)
from .targets import CharucoTarget, Checkerboard, PlacedTarget, Scene, Target, Texture
from .thermal import SetPoint, ThermalConfig, ThermalModel

__all__ = [
    "SimFeedback", "SimFrame", "SimulatedPtzCamera", "TrueState", "make_cameras",
    "Axis", "AxisConfig", "HarmonicError", "MechanicsConfig", "PtzMechanics",
    "ImageNoise", "RenderOptions", "distort_normalized", "look_at", "project_points", "render",
    "undistort_normalized",
    "RIG_FORMAT", "CameraSpec", "Rig", "RigFileError", "TimingConfig", "default_rig_path",
    "facing_rotation", "load_rig", "rig_from_dict",
    "CharucoTarget", "Checkerboard", "PlacedTarget", "Scene", "Target", "Texture",
    "SetPoint", "ThermalConfig", "ThermalModel",
]
