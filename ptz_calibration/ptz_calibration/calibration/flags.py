"""``cv2.calibrateCamera`` flags by name: parse ``"FIX_ASPECT_RATIO,FIX_K3"`` and name a flag set."""

from __future__ import annotations

from typing import Iterable, Union

import cv2

__all__ = ["CALIB_FLAGS", "parse_flags", "flag_names"]

#: Flags that ``cv2.calibrateCamera`` understands, without the ``CALIB_`` prefix.
CALIB_FLAGS: dict[str, int] = {
    name: int(getattr(cv2, f"CALIB_{name}"))
    for name in (
        "USE_INTRINSIC_GUESS", "FIX_ASPECT_RATIO", "FIX_PRINCIPAL_POINT", "ZERO_TANGENT_DIST",
        "FIX_FOCAL_LENGTH", "FIX_K1", "FIX_K2", "FIX_K3", "FIX_K4", "FIX_K5", "FIX_K6",
        "RATIONAL_MODEL", "THIN_PRISM_MODEL", "FIX_S1_S2_S3_S4", "TILTED_MODEL", "FIX_TAUX_TAUY",
        "FIX_TANGENT_DIST", "USE_EXTRINSIC_GUESS", "USE_LU", "USE_QR",
    )
    if hasattr(cv2, f"CALIB_{name}")
}


def parse_flags(spec: Union[str, int, Iterable[str], None]) -> int:
    """Flags from names (``"FIX_K3,ZERO_TANGENT_DIST"``, ``CALIB_`` prefix optional, any case,
    separated by commas, ``|``, ``+`` or spaces), an integer, or a list of names."""
    if spec is None:
        return 0
    if isinstance(spec, bool):
        raise ValueError(f"calibration flags: expected names or an integer, got {spec!r}")
    if isinstance(spec, int):
        unknown = spec & ~_all_bits()
        if spec < 0 or unknown:
            raise ValueError(f"calibration flags: {spec} has bits that are not calibrateCamera "
                             f"flags ({unknown:#x})")
        return spec
    if isinstance(spec, str):
        tokens = spec.replace("|", ",").replace("+", ",").replace(" ", ",").split(",")
    else:
        tokens = list(spec)
    flags = 0
    for token in (str(t).strip() for t in tokens):
        if not token:
            continue
        if token.isdigit():
            flags |= parse_flags(int(token))
            continue
        name = token.upper().removeprefix("CV_").removeprefix("CALIB_")
        if name not in CALIB_FLAGS:
            raise ValueError(f"unknown calibration flag {token!r} (known: {', '.join(CALIB_FLAGS)})")
        flags |= CALIB_FLAGS[name]
    return flags


def flag_names(flags: int) -> list[str]:
    """Names of the flags set in ``flags``, in :data:`CALIB_FLAGS` order."""
    return [n for n, v in CALIB_FLAGS.items() if v and flags & v == v]


def _all_bits() -> int:
    bits = 0
    for v in CALIB_FLAGS.values():
        bits |= v
    return bits
