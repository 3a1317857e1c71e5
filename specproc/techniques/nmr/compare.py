"""Compare one component between two NMR fits (shift, FWHM and fraction changes).

A thin helper over :func:`specproc.evidence.compare` (the one comparison of specproc, reference
first): differences are ``sample - reference``; a positive shift difference means the sample is
downfield (higher ppm).
"""
from __future__ import annotations

import dataclasses

from ...core.errors import ParameterError
from ...core.result import Quantities, Result

_FIELDS = (("center_ppm", "shift_change_ppm"), ("fwhm_ppm", "fwhm_change_ppm"), ("area_fraction", "fraction_change"))


def compare(reference: Result, sample: Result, component: str, component_sample: str | None = None,
            **deprecated) -> Result:
    """Shift, FWHM and area-fraction change of ``component`` from fit ``reference`` to fit ``sample``.

    A thin wrapper of :func:`specproc.evidence.compare` (reference first, as everywhere).

    Parameters
    ----------
    reference, sample : Result
        Deconvolution results.
    component : str
        Component name (in ``reference``, and in ``sample`` unless ``component_sample`` is given).
    component_sample : str, optional
        The component's name in ``sample`` when it differs (``component_b`` is its deprecated name).

    Returns
    -------
    Result
        quantities ``shift_change_ppm`` (sample - reference, positive = downfield),
        ``fwhm_change_ppm``, ``fraction_change``, each with propagated standard error, and a one-row table.
    """
    import warnings

    import pandas as pd

    from ...evidence.compare import compare as _compare

    if "component_b" in deprecated:
        warnings.warn("nmr.compare(component_b=...) is deprecated: use component_sample=", DeprecationWarning,
                      stacklevel=2)
        component_sample = deprecated.pop("component_b")
    if deprecated:
        raise TypeError(f"nmr.compare() got unexpected keyword arguments {sorted(deprecated)}")
    a, b = reference, sample
    for r in (a, b):
        if not isinstance(r, Result):
            raise ParameterError(f"compare needs deconvolution Results, got {type(r).__name__}")
    cb = component_sample or component
    qs, row = Quantities(), {"component": component, "sample_a": a.sample, "sample_b": b.sample}
    for field, name in _FIELDS:
        c = _compare(a, b, quantity=f"{cb}.{field}", op="difference", quantity_reference=f"{component}.{field}")
        if c.value is None:
            raise ParameterError(c.reason, b.source or a.source)
        qs.add(None, name, c.value, c.stderr, c.unit, f"{field} of {b.sample} minus {a.sample}")
        row[name], row[name + "_stderr"] = c.value, c.stderr
        row[field + "_a"], row[field + "_b"] = c.reference_value, c.sample_value
        if c.stderr:
            row[name + "_sigma"] = c.value / c.stderr
    return Result(processor="nmr.compare", technique="nmr", sample=f"{b.sample} vs {a.sample}", quantities=qs,
                  tables={"comparison": pd.DataFrame([row])}, main_table="comparison",
                  inputs=a.inputs + b.inputs, meta={"component": component, "nucleus": a.meta.get("nucleus")})


def compare_many(results: list[Result], component: str) -> Result:
    """Changes of ``component`` in every fit relative to the first (one table row per fit)."""
    import pandas as pd

    if len(results) < 2:
        raise ParameterError("compare_many needs at least two fits")
    rows, qs = [], Quantities()
    for r in results[1:]:
        c = compare(results[0], r, component)
        rows.append(c.table.iloc[0].to_dict())
        for v in c.quantities.values():  # each change under the fit's sample
            qs.put(dataclasses.replace(v, component=r.sample))
    return Result(processor="nmr.compare", technique="nmr", sample=results[0].sample, quantities=qs,
                  tables={"comparison": pd.DataFrame(rows)}, main_table="comparison",
                  meta={"component": component, "reference": results[0].sample})
