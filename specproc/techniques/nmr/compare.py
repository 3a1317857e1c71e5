"""Compare one component between two NMR fits (shift, FWHM and fraction changes).

Differences are ``b - a``; a positive shift difference means ``b`` is downfield (higher ppm).
The two fits are independent measurements, so their variances add.
"""
from __future__ import annotations

import math

from ...core.errors import ParameterError
from ...core.result import Quantity, Result

_FIELDS = (("center_ppm", "shift_change_ppm", "ppm"), ("fwhm_ppm", "fwhm_change_ppm", "ppm"),
           ("area_fraction", "fraction_change", ""))


def _q(r: Result, component: str, field: str) -> Quantity:
    key = f"{component}.{field}"
    if key not in r.quantities:
        names = sorted({k.split(".")[0] for k in r.quantities})
        raise ParameterError(f"fit of {r.sample!r} has no component {component!r} (components: {names})", r.source)
    return r.quantities[key]


def _diff(a: Quantity, b: Quantity, unit: str, what: str) -> Quantity:
    ea, eb = a.stderr, b.stderr
    err = math.sqrt(ea * ea + eb * eb) if ea is not None and eb is not None else None
    return Quantity(b.value - a.value, err, unit, what)


def compare(a: Result, b: Result, component: str, component_b: str | None = None) -> Result:
    """Shift, FWHM and area-fraction change of ``component`` from fit ``a`` to fit ``b``.

    Returns
    -------
    Result
        quantities ``shift_change_ppm`` (b - a, positive = downfield), ``fwhm_change_ppm``,
        ``fraction_change``, each with propagated standard error, and a one-row table.
    """
    import pandas as pd

    for r in (a, b):
        if not isinstance(r, Result):
            raise ParameterError(f"compare needs deconvolution Results, got {type(r).__name__}")
    cb = component_b or component
    qs, row = {}, {"component": component, "sample_a": a.sample, "sample_b": b.sample}
    for field, name, unit in _FIELDS:
        qa, qb = _q(a, component, field), _q(b, cb, field)
        q = _diff(qa, qb, unit, f"{field} of {b.sample} minus {a.sample}")
        qs[name] = q
        row[name], row[name + "_stderr"] = q.value, q.stderr
        row[field + "_a"], row[field + "_b"] = qa.value, qb.value
        if q.stderr:
            row[name + "_sigma"] = q.value / q.stderr
    return Result(processor="nmr.compare", technique="nmr", sample=f"{b.sample} vs {a.sample}", quantities=qs,
                  tables={"comparison": pd.DataFrame([row])}, main_table="comparison",
                  inputs=a.inputs + b.inputs, meta={"component": component, "nucleus": a.meta.get("nucleus")})


def compare_many(results: list[Result], component: str) -> Result:
    """Changes of ``component`` in every fit relative to the first (one table row per fit)."""
    import pandas as pd

    if len(results) < 2:
        raise ParameterError("compare_many needs at least two fits")
    rows, qs = [], {}
    for r in results[1:]:
        c = compare(results[0], r, component)
        rows.append(c.table.iloc[0].to_dict())
        qs.update({f"{r.sample}.{k}": v for k, v in c.quantities.items()})
    return Result(processor="nmr.compare", technique="nmr", sample=results[0].sample, quantities=qs,
                  tables={"comparison": pd.DataFrame(rows)}, main_table="comparison",
                  meta={"component": component, "reference": results[0].sample})
