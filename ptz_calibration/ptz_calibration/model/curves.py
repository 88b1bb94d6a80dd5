"""Curves of one intrinsic or geometric parameter over the raw zoom value.

The families of Mao et al. 2022 and Sanchez-Riera et al. 2009: piecewise-linear interpolation,
polynomials of chosen degree (least squares), and the two-term exponential
``a exp(b s) + c exp(d s)``; plus a constant. Polynomials and exponentials work on the zoom
value normalized to [0, 1] over their ``domain`` so that their coefficients stay well conditioned
for raw ranges like 0..16384.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray


class CurveError(ValueError):
    """A curve description is invalid; the message names the field."""


def _as_output(values: NDArray[np.float64], zoom: ArrayLike) -> Any:
    return float(values) if np.ndim(zoom) == 0 else values


class ZoomCurve(ABC):
    """A scalar function of the raw zoom value, vectorized over arrays."""

    kind: ClassVar[str]

    @abstractmethod
    def evaluate(self, zoom: NDArray[np.float64]) -> NDArray[np.float64]:
        """Values at an array of zoom values (same shape)."""

    def __call__(self, zoom: ArrayLike) -> Any:
        """Value at ``zoom``: a float for a scalar, an array of the same shape for an array."""
        z = np.asarray(zoom, dtype=float)
        return _as_output(self.evaluate(z), zoom)

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """Plain-data form for YAML (inverse of :func:`curve_from_dict`)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.to_dict()})"


class ConstantCurve(ZoomCurve):
    """The same value at every zoom."""

    kind = "constant"

    def __init__(self, value: float) -> None:
        self.value = float(value)

    def evaluate(self, zoom: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.full(np.shape(zoom), self.value)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "value": self.value}


class PiecewiseLinearCurve(ZoomCurve):
    """Linear interpolation between knots; held constant outside the knots."""

    kind = "piecewise_linear"

    def __init__(self, x: Sequence[float], y: Sequence[float]) -> None:
        self.x = np.asarray(x, dtype=float).reshape(-1)
        self.y = np.asarray(y, dtype=float).reshape(-1)
        if self.x.size < 1 or self.x.size != self.y.size:
            raise CurveError(f"x and y must have the same non-zero length ({self.x.size} != {self.y.size})")
        if not (np.all(np.isfinite(self.x)) and np.all(np.isfinite(self.y))):
            raise CurveError("x and y must be finite")
        if np.any(np.diff(self.x) <= 0):
            raise CurveError("x must be strictly increasing")

    def evaluate(self, zoom: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.interp(zoom, self.x, self.y)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "x": self.x.tolist(), "y": self.y.tolist()}


class _NormalizedCurve(ZoomCurve):
    """A curve of s = (zoom - lo) / (hi - lo)."""

    def __init__(self, domain: Sequence[float]) -> None:
        lo, hi = (float(v) for v in domain)
        if not (np.isfinite(lo) and np.isfinite(hi)) or hi <= lo:
            raise CurveError(f"domain must be two finite increasing numbers, got {list(domain)}")
        self.domain = (lo, hi)

    def normalized(self, zoom: NDArray[np.float64]) -> NDArray[np.float64]:
        lo, hi = self.domain
        return (zoom - lo) / (hi - lo)


class PolynomialCurve(_NormalizedCurve):
    """``sum_i c_i s^i`` with s the zoom normalized to [0, 1] over ``domain``."""

    kind = "polynomial"

    def __init__(self, coefficients: Sequence[float], domain: Sequence[float]) -> None:
        super().__init__(domain)
        self.coefficients = np.asarray(coefficients, dtype=float).reshape(-1)
        if self.coefficients.size < 1 or not np.all(np.isfinite(self.coefficients)):
            raise CurveError("coefficients must be a non-empty list of finite numbers")

    @property
    def degree(self) -> int:
        return self.coefficients.size - 1

    def evaluate(self, zoom: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.polynomial.polynomial.polyval(self.normalized(zoom), self.coefficients)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "coefficients": self.coefficients.tolist(), "domain": list(self.domain)}


class TwoTermExponentialCurve(_NormalizedCurve):
    """``a exp(b s) + c exp(d s)`` with s the zoom normalized to [0, 1] over ``domain``."""

    kind = "exp2"

    def __init__(self, a: float, b: float, c: float, d: float, domain: Sequence[float]) -> None:
        super().__init__(domain)
        self.a, self.b, self.c, self.d = (float(v) for v in (a, b, c, d))
        if not np.all(np.isfinite([self.a, self.b, self.c, self.d])):
            raise CurveError("a, b, c, d must be finite")

    def evaluate(self, zoom: NDArray[np.float64]) -> NDArray[np.float64]:
        s = self.normalized(zoom)
        return self.a * np.exp(self.b * s) + self.c * np.exp(self.d * s)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "a": self.a, "b": self.b, "c": self.c, "d": self.d,
                "domain": list(self.domain)}


CURVE_TYPES: dict[str, type[ZoomCurve]] = {
    cls.kind: cls for cls in (ConstantCurve, PiecewiseLinearCurve, PolynomialCurve, TwoTermExponentialCurve)
}


def curve_from_dict(data: Any) -> ZoomCurve:
    """Build a curve from its plain-data form; a bare number is a constant.

    Raises :class:`CurveError` naming the offending key.
    """
    if isinstance(data, (int, float)) and not isinstance(data, bool):
        return ConstantCurve(float(data))
    if not isinstance(data, Mapping):
        raise CurveError(f"expected a number or a mapping with 'type', got {type(data).__name__}")
    kind = data.get("type")
    if kind not in CURVE_TYPES:
        raise CurveError(f"'type' must be one of {sorted(CURVE_TYPES)}, got {kind!r}")
    keys = {
        "constant": ("value",),
        "piecewise_linear": ("x", "y"),
        "polynomial": ("coefficients", "domain"),
        "exp2": ("a", "b", "c", "d", "domain"),
    }[kind]
    missing = [k for k in keys if k not in data]
    if missing:
        raise CurveError(f"{kind} curve is missing {', '.join(repr(k) for k in missing)}")
    unknown = sorted(set(data) - set(keys) - {"type"})
    if unknown:
        raise CurveError(f"{kind} curve has unknown keys {unknown}")
    try:
        return CURVE_TYPES[kind](**{k: data[k] for k in keys})
    except CurveError:
        raise
    except (TypeError, ValueError) as exc:
        raise CurveError(f"{kind} curve: {exc}") from exc


def fit_curve(
    kind: str,
    zoom: ArrayLike,
    values: ArrayLike,
    degree: int = 2,
    domain: Sequence[float] | None = None,
    weights: ArrayLike | None = None,
) -> ZoomCurve:
    """Fit a curve of family ``kind`` to samples (least squares; weights are 1/sigma).

    ``piecewise_linear`` interpolates the samples (averaging repeated zooms); ``polynomial``
    fits the given degree; ``exp2`` fits the two-term exponential with SciPy, started from a
    log-linear fit; ``constant`` is the weighted mean.
    """
    z = np.asarray(zoom, dtype=float).reshape(-1)
    v = np.asarray(values, dtype=float).reshape(-1)
    w = np.ones_like(z) if weights is None else np.asarray(weights, dtype=float).reshape(-1)
    if z.size != v.size or z.size != w.size or z.size == 0:
        raise ValueError("zoom, values and weights must be non-empty and of the same length")
    ok = np.isfinite(z) & np.isfinite(v) & np.isfinite(w)
    z, v, w = z[ok], v[ok], w[ok]
    if z.size == 0:
        raise ValueError("no finite samples to fit")
    if domain is None:
        lo, hi = float(z.min()), float(z.max())
        domain = (lo, hi if hi > lo else lo + 1.0)
    if kind == "constant":
        return ConstantCurve(float(np.average(v, weights=w**2)))
    if kind == "piecewise_linear":
        ux, inverse = np.unique(z, return_inverse=True)
        sums = np.bincount(inverse, weights=v * w**2)
        norms = np.bincount(inverse, weights=w**2)
        return PiecewiseLinearCurve(ux, sums / norms)
    if kind == "polynomial":
        n_unique = np.unique(z).size
        if n_unique <= degree:
            raise ValueError(f"a degree-{degree} polynomial needs more than {degree} distinct zooms, got {n_unique}")
        curve = PolynomialCurve([0.0], domain)
        s = curve.normalized(z)
        vander = np.polynomial.polynomial.polyvander(s, degree) * w[:, None]
        coef, *_ = np.linalg.lstsq(vander, v * w, rcond=None)
        return PolynomialCurve(coef, domain)
    if kind == "exp2":
        return _fit_exp2(z, v, w, domain)
    raise ValueError(f"unknown curve family {kind!r}; expected one of {sorted(CURVE_TYPES)}")


def _fit_exp2(z: NDArray, v: NDArray, w: NDArray, domain: Sequence[float]) -> TwoTermExponentialCurve:
    from scipy.optimize import least_squares

    if np.unique(z).size < 4:
        raise ValueError("a two-term exponential needs at least 4 distinct zooms")
    proto = TwoTermExponentialCurve(0, 0, 0, 0, domain)
    s = proto.normalized(z)

    def residual(p: NDArray) -> NDArray:
        return w * (p[0] * np.exp(p[1] * s) + p[2] * np.exp(p[3] * s) - v)

    starts = []
    # Start 1: a single exponential through the samples (log-linear fit), plus a small second term.
    if np.all(v > 0):
        b, log_a = np.polyfit(s, np.log(v), 1)
        starts.append([np.exp(log_a), b, 0.0, 0.0])
    elif np.all(v < 0):
        b, log_a = np.polyfit(s, np.log(-v), 1)
        starts.append([-np.exp(log_a), b, 0.0, 0.0])
    # Start 2: a line seen as two exponentials with slopes of opposite sign.
    slope, intercept = np.polyfit(s, v, 1)
    starts.append([intercept, 0.0, slope, 1.0])
    best = None
    for start in starts:
        try:
            result = least_squares(residual, np.asarray(start, float), method="lm", max_nfev=4000)
        except ValueError:
            continue
        if np.all(np.isfinite(result.x)) and (best is None or result.cost < best.cost):
            best = result
    if best is None:
        raise ValueError("two-term exponential fit did not converge")
    return TwoTermExponentialCurve(*best.x, domain=domain)
