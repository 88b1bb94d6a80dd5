"""PTZ drivers: the :class:`PtzDriver` interface and a registry of backends.

Adding a backend is one line: ``register_backend("visca", "ptz_calibration.drivers.visca:ViscaDriver")``
(or with the class itself). Backends are imported lazily, so a missing optional dependency of
one backend never breaks another.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping, Optional, Union

from .interface import (
    DriverConnectionError,
    DriverError,
    DriverTimeout,
    Frame,
    PtzCapabilities,
    PtzDriver,
    PtzFeedback,
)

#: A backend factory takes the settings mapping and returns an unconnected driver. A registered
#: class is built with its ``from_settings`` classmethod; its ``SETTINGS`` dict (name ->
#: (default, description)) tells nodes which parameters to declare for it.
Factory = Callable[[Mapping[str, Any]], PtzDriver]

_BACKENDS: dict[str, Union[str, Factory]] = {}


def register_backend(name: str, factory: Union[str, Factory]) -> None:
    """Register ``factory`` (a callable, or ``"module:attr"`` imported on first use) as ``name``."""
    _BACKENDS[name] = factory


def available_backends() -> list[str]:
    """Names of the registered backends."""
    return sorted(_BACKENDS)


def _resolve(name: str) -> Factory:
    try:
        factory = _BACKENDS[name]
    except KeyError:
        raise DriverError(f"unknown PTZ backend {name!r}; available: {', '.join(available_backends())}") from None
    if isinstance(factory, str):
        module, _, attr = factory.partition(":")
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        factory = obj
        _BACKENDS[name] = factory
    return factory


def backend_settings(backend: str) -> dict[str, tuple[Any, str]]:
    """The settings a backend understands: name -> (default, description) (its ``SETTINGS``)."""
    return dict(getattr(_resolve(backend), "SETTINGS", {}))


def create_driver(backend: str, settings: Optional[Mapping[str, Any]] = None, **kwargs: Any) -> PtzDriver:
    """Build an (unconnected) driver of ``backend`` from ``settings`` (a mapping and/or keywords)."""
    merged = dict(settings or {})
    merged.update(kwargs)
    factory = _resolve(backend)
    build = getattr(factory, "from_settings", factory)
    return build(merged)


register_backend("sim", "ptz_calibration.drivers.simulated:SimulatedPtzDriver")
register_backend("mock", "ptz_calibration.drivers.mock:MockPtzDriver")
register_backend("visca", "ptz_calibration.drivers.visca:ViscaDriver")
register_backend("pelco_d", "ptz_calibration.drivers.pelco_d:PelcoDDriver")
register_backend("onvif", "ptz_calibration.drivers.onvif:OnvifDriver")

__all__ = [
    "DriverConnectionError",
    "DriverError",
    "DriverTimeout",
    "Frame",
    "PtzCapabilities",
    "PtzDriver",
    "PtzFeedback",
    "available_backends",
    "backend_settings",
    "create_driver",
    "register_backend",
]
