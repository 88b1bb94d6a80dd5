"""Variants of a loaded rig for tests and demos: e.g. a head with excessive backlash.

``with_axis(rig, "left", "pan", backlash=math.radians(0.3))`` returns a new :class:`Rig` whose
camera ``left`` has that pan axis (``dataclasses.replace`` on the frozen :class:`AxisConfig`,
so its checks apply); the input rig is not changed.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .rig import Rig


def with_axis(rig: Rig, camera: str, axis: str, **changes: Any) -> Rig:
    """A copy of ``rig`` with ``changes`` on ``camera``'s ``axis`` (pan, tilt or zoom)."""
    if camera not in rig.cameras:
        raise KeyError(f"no camera {camera!r} in the rig (cameras: {', '.join(sorted(rig.cameras))})")
    if axis not in ("pan", "tilt", "zoom"):
        raise ValueError(f"axis must be pan, tilt or zoom, got {axis!r}")
    spec = rig.cameras[camera]
    mech = spec.mechanics
    new_axis = dataclasses.replace(getattr(mech, axis), **changes)
    new_spec = dataclasses.replace(spec, mechanics=dataclasses.replace(mech, **{axis: new_axis}))
    return dataclasses.replace(rig, cameras={**rig.cameras, camera: new_spec})
