"""The correction layers a calibrated model carries, each stored with it and switchable off.

``pointing`` (pan-tilt correction map), ``thermal`` (temperature compensation), ``zoom_offset``
(per-zoom optical offset table) and ``field`` (the rotation measured by the one-click
recalibration). In the model YAML they are the ``corrections:`` block, one entry per layer with
an ``enabled`` flag; a model without the block has no corrections.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping, Optional

from .field import FieldCorrection
from .pointing import PointingMap
from .thermal import ThermalCompensation
from .zoom_offset import ZoomOffsetTable

LAYERS = ("pointing", "thermal", "zoom_offset", "field")
_TYPES = {"pointing": PointingMap, "thermal": ThermalCompensation, "zoom_offset": ZoomOffsetTable,
          "field": FieldCorrection}


@dataclass(frozen=True)
class CorrectionLayers:
    """The layers (None = absent) and which are switched off."""

    pointing: Optional[PointingMap] = None
    thermal: Optional[ThermalCompensation] = None
    zoom_offset: Optional[ZoomOffsetTable] = None
    field: Optional[FieldCorrection] = None
    disabled: frozenset[str] = frozenset()

    def active(self, name: str) -> Any:
        """The layer ``name`` if present and enabled, else None."""
        return None if name in self.disabled else getattr(self, name)

    @property
    def empty(self) -> bool:
        return all(getattr(self, name) is None for name in LAYERS)

    def with_layer(self, name: str, layer: Any, enabled: bool = True) -> "CorrectionLayers":
        """A copy with ``layer`` as ``name`` (None removes it)."""
        if name not in LAYERS:
            raise ValueError(f"unknown correction layer {name!r} (expected one of {LAYERS})")
        disabled = self.disabled - {name} if enabled else self.disabled | {name}
        return replace(self, **{name: layer}, disabled=frozenset(disabled))

    def enabled(self, **flags: bool) -> "CorrectionLayers":
        """A copy with layers switched on/off: ``layers.enabled(pointing=False)``."""
        disabled = set(self.disabled)
        for name, on in flags.items():
            if name not in LAYERS:
                raise ValueError(f"unknown correction layer {name!r} (expected one of {LAYERS})")
            (disabled.discard if on else disabled.add)(name)
        return replace(self, disabled=frozenset(disabled))

    def only(self, *names: str) -> "CorrectionLayers":
        """A copy with only ``names`` enabled (``only()`` = all off)."""
        return self.enabled(**{n: n in names for n in LAYERS})

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in LAYERS:
            layer = getattr(self, name)
            if layer is not None:
                out[name] = {"enabled": name not in self.disabled, **layer.to_dict()}
        return out

    @classmethod
    def from_dict(cls, data: Optional[Mapping[str, Any]]) -> "CorrectionLayers":
        """Parse the ``corrections:`` block; ``ValueError`` names the layer that is wrong."""
        if not data:
            return cls()
        if not isinstance(data, Mapping):
            raise ValueError("corrections must be a mapping of layer name to layer")
        unknown = sorted(set(data) - set(LAYERS))
        if unknown:
            raise ValueError(f"unknown correction layer {unknown[0]!r} (expected one of {LAYERS})")
        kwargs: dict[str, Any] = {}
        disabled = set()
        for name in LAYERS:
            if name not in data:
                continue
            entry = data[name]
            if not isinstance(entry, Mapping):
                raise ValueError(f"corrections.{name} must be a mapping")
            try:
                kwargs[name] = _TYPES[name].from_dict({k: v for k, v in entry.items() if k != "enabled"})
            except (KeyError, TypeError, ValueError, IndexError) as exc:
                raise ValueError(f"corrections.{name}: {exc}") from None
            if not entry.get("enabled", True):
                disabled.add(name)
        return cls(**kwargs, disabled=frozenset(disabled))
