"""What every echem analysis shares: the input's kind, its geometry and temperature, and errors of
derived numbers through the toolkit's propagation."""
from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from ...core.errors import ParameterError

KB_EV = 8.617333262e-5       # Boltzmann constant, eV/K
KINDS = ("eis", "polarisation", "cycling")


def source(m) -> str | None:
    return (getattr(m, "attrs", {}) or {}).get("provenance", {}).get("source")


def kind_of(m) -> str:
    """``eis``, ``polarisation`` or ``cycling`` from the measurement (its signal type, else its data)."""
    st = m.attrs.get("signal_type")
    if st == "impedance":
        return "eis"
    if st == "chronoamperometry":
        return "polarisation"
    if st == "galvanostatic":
        return "cycling"
    if m.dims != ("channel", "time"):
        raise ParameterError(f"not an electrochemistry measurement (dims {m.dims}, signal type {st!r})", source(m))
    # control unknown (a CSV without '# control:'): the controlled signal is the one that holds still
    e, i = (np.asarray(m.sel(channel=c).values, float) for c in ("potential", "current"))

    def still(y):
        d = np.abs(np.diff(y))
        return float(np.mean(d <= 1e-3 * max(float(np.max(np.abs(y))), 1e-300)))

    return "cycling" if still(i) > still(e) else "polarisation"


def check_kind(m, wanted: str) -> None:
    """Refuse a measurement of another kind with a message naming the file."""
    got = kind_of(m)
    if got != wanted:
        what = {"eis": "an impedance spectrum", "polarisation": "a potentiostatic (chronoamperometry) time series",
                "cycling": "a galvanostatic cycling time series"}
        raise ParameterError(f"this is {what[got]}, not {what[wanted]}: use the {got} analysis "
                             f"(analysis='{got}' or 'auto')", source(m))


@dataclass
class Geometry:
    """Electrolyte thickness (cm) and electrode area (cm²) with standard errors and where they came from."""

    thickness_cm: float | None
    thickness_cm_stderr: float
    area_cm2: float | None
    area_cm2_stderr: float
    area_source: str | None
    warnings: list

    @property
    def complete(self) -> bool:
        return self.thickness_cm is not None and self.area_cm2 is not None


def geometry(m, thickness_cm, thickness_cm_stderr, area_cm2, area_cm2_stderr, need_thickness=True) -> Geometry:
    warns = []
    area, src = area_cm2, ("parameter" if area_cm2 is not None else None)
    if area is None:
        hdr = (m.attrs.get("acquisition") or {}).get("area_cm2")
        if hdr is not None:
            area, src = float(hdr), "file header"
            warns.append(f"electrode area {area:g} cm² taken from the file header (give area_cm2 to override)")
    if need_thickness and thickness_cm is None:
        warns.append("no electrolyte thickness given (thickness_cm): no conductivity, resistances only")
    if area is None:
        warns.append("no electrode area (area_cm2, nor in the file header): no conductivity or current density")
    return Geometry(thickness_cm, float(thickness_cm_stderr or 0.0), area, float(area_cm2_stderr or 0.0) if
                    src == "parameter" else 0.0, src, warns)


def temperature(m, given: float | None, index: int | None = None) -> float | None:
    if given is not None:
        return float(given)
    if index is not None and "temperature_C" in m.coords:
        return float(m.coords["temperature_C"].values[index])
    t = (m.attrs.get("acquisition") or {}).get("temperature_C")
    return None if t is None else float(t)


def propagate(fn, values: dict, cov: np.ndarray) -> tuple[float, float]:
    """``fn(values)`` and its standard error from the covariance of ``values`` (in dict order),
    through the toolkit's :func:`specproc.fitting.uncertainty.propagate` (numerical Jacobian)."""
    from ...fitting.uncertainty import propagate as _propagate

    names = list(values)
    params = {n: SimpleNamespace(value=float(v)) for n, v in values.items()}
    v, se, _ = _propagate(lambda d: np.atleast_1d(fn(d)), params, names, np.asarray(cov, float),
                          values_fn=lambda th: dict(zip(names, th)))
    val, err = float(v[0]), float(se[0])
    return val, (err if math.isfinite(err) else float("nan"))


def fmt_temp(t: float) -> str:
    """``30`` -> ``"30C"``; ``29.96`` -> ``"30C"``; ``36.25`` -> ``"36.2C"`` (0.1 °C): quantity selectors."""
    r = round(float(t), 1)
    return f"{r:g}C"


def q(component: str | None, property: str, value, stderr=None, unit: str = "", description: str = ""):
    """A result quantity by its key (``component``, ``property``); a non-finite stderr becomes None."""
    from ...core.numbers import finite_or_none
    from ...core.result import Quantity

    se = finite_or_none(stderr)
    return Quantity(float(value), se, unit, description, component=component, property=property)
