"""Small numeric helpers every floor uses (one copy of each), and the one display rule of numbers.

Display rule (:func:`natural_unit`, :func:`format_value`, :func:`display_frame`): a quantity stored in a
plain SI unit (m, Pa, N, Hz, ...) is shown with the engineering prefix that puts its magnitude in
[1, 1000) — a roughness of 1.578e-09 m reads "1.578 nm", a modulus of 3.2e9 Pa "3.2 GPa". Units that are
already the field's natural one (eV, ppm, nm, deg, 1/cm, at%...) are shown as they are. Stored and
JSON values never change: only text (Result's text/HTML repr, command-line tables, the report).
A value with a standard error is rounded to the error's second significant digit.
"""
from __future__ import annotations

import math
from typing import Any

__all__ = ["finite_or_none", "natural_unit", "format_value", "format_number", "display_frame",
           "column_unit", "noise_redchi", "display_table"]


def finite_or_none(v: Any) -> float | None:
    """``float(v)`` when it is a finite number, else None (None, NaN, inf, text, arrays of size != 1)."""
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


# Written here rather than taken from pint (``Quantity.to_compact``): choosing a power of 1000 is a few
# lines, while pint is not a dependency and costs ~0.6 s of import plus a registry build on every
# command-line call that prints a table.
#: SI units (as written in ``Quantity.unit`` and column-name suffixes) shown with an engineering prefix
PREFIXABLE = ("m", "Pa", "N", "Hz", "V", "A", "W", "F", "J", "ohm", "Ω", "S", "N/m", "S/m", "S/cm", "A/m2")
_PREFIX = {-15: "f", -12: "p", -9: "n", -6: "µ", -3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T"}
#: column-name spellings of units (``Sa_m``, ``E_Pa``): suffix -> unit
_SUFFIX = {"m": "m", "Pa": "Pa", "N": "N", "Hz": "Hz", "V": "V", "W": "W", "F": "F", "J": "J", "ohm": "ohm",
           "N_m": "N/m"}
_SUFFIX_PREFIX = {v: k for k, v in _PREFIX.items() if v}
_SUFFIX_PREFIX["u"] = -6


def natural_unit(unit: str, magnitude: float | None) -> tuple[float, str]:
    """(factor, unit shown) for values of ``magnitude`` in ``unit``: multiply by ``factor`` to show.

    Plain SI units (:data:`PREFIXABLE`) get the engineering prefix that puts ``magnitude`` in
    [1, 1000) (between f and T); any other unit, a zero or non-finite magnitude: ``(1.0, unit)``.
    """
    m = finite_or_none(magnitude)
    if unit not in PREFIXABLE or not m:
        return 1.0, unit
    e = 3 * math.floor(math.log10(abs(m)) / 3 + 1e-9)
    e = max(-15, min(12, e))
    return 10.0 ** -e, _PREFIX[e] + unit


def format_number(value: Any, stderr: Any = None) -> str:
    """``"1.578"`` or ``"1.578 ± 0.012"`` (value rounded to the error's second significant digit);
    ``"—"`` for a missing value; text and booleans as they are."""
    if isinstance(value, (bool, str)):
        return str(value)
    v = finite_or_none(value)
    if v is None:
        return "—" if value is None or isinstance(value, (int, float)) else str(value)
    s = finite_or_none(stderr)
    if s is None or s <= 0:
        return f"{v:.6g}"
    dec = 1 - math.floor(math.log10(s))        # decimals of the error's 2nd significant digit
    if dec <= 0 or abs(v) >= 1e7 or abs(v) < 1e-4:
        return f"{v:.{max(2, _sig(v, s))}g} ± {s:.2g}"
    return f"{v:.{dec}f} ± {s:.{dec}f}"


def _sig(v: float, s: float) -> int:
    """Significant digits of ``v`` down to the error's second digit."""
    return max(1, math.floor(math.log10(abs(v))) - math.floor(math.log10(s)) + 2) if v else 2


def format_value(value: Any, stderr: Any = None, unit: str = "") -> str:
    """One quantity as text in its natural unit: ``format_value(1.578e-9, unit="m") == "1.578 nm"``."""
    f, u = natural_unit(unit, value if finite_or_none(value) else stderr)
    v = finite_or_none(value)
    s = finite_or_none(stderr)
    text = format_number(v * f if v is not None else value, s * f if s is not None else None)
    return f"{text} {u}".strip()


def column_unit(name: str) -> tuple[str, str, str] | None:
    """``"Sa_m"`` -> ("Sa", "m", ""); ``"mean_stderr_Pa"`` -> ("mean_stderr", "Pa", "");
    ``"a_m_stderr"`` -> ("a", "m", "_stderr"): (stem, unit, tail) of a column named with a prefixable
    SI unit, else None."""
    if not isinstance(name, str):
        return None
    tail = "_stderr" if name.endswith("_stderr") else ""
    core = name[: len(name) - len(tail)]
    for suf, unit in sorted(_SUFFIX.items(), key=lambda kv: -len(kv[0])):
        if core.endswith("_" + suf) and len(core) > len(suf) + 1:
            return core[: -len(suf) - 1], unit, tail
    return None


def display_frame(df):
    """A copy of table ``df`` for display: each column named in a plain SI unit (``Sa_m``, ``E_Pa``,
    ``x_m_stderr``) scaled to its natural prefix and renamed (``Sa_nm``); a ``<x>_stderr`` column
    takes the prefix of its ``<x>`` column. ``df`` itself (and any export) is unchanged."""
    import numpy as np

    if not getattr(df.columns, "is_unique", True) or not any(column_unit(c) for c in df.columns):
        return df
    scale: dict[str, tuple[float, str]] = {}
    for c in df.columns:
        cu = column_unit(c)
        if cu is None or cu[2]:
            continue
        vals = _finite(df[c])
        if vals.size:
            scale[c] = natural_unit(cu[1], float(np.median(np.abs(vals))) or float(np.max(np.abs(vals))))
    renames, out = {}, None
    for c in df.columns:
        cu = column_unit(c)
        if cu is None:
            continue
        stem, unit, tail = cu
        base = f"{stem}_{next(k for k, u in _SUFFIX.items() if u == unit)}"
        f, shown = scale.get(base if tail else c, (None, None))
        if f is None and tail:
            vals = _finite(df[c])
            if vals.size:
                f, shown = natural_unit(unit, float(np.median(np.abs(vals))))
        if f is None or f == 1.0:
            continue
        out = df.copy() if out is None else out
        out[c] = _scaled(df[c], f)
        suffix = shown.replace("/", "_").replace("µ", "u")
        renames[c] = f"{stem}_{suffix}{tail}"
    if out is None:
        return df
    return out.rename(columns=renames)


def _finite(col):
    import numpy as np

    v = np.array([finite_or_none(x) if not isinstance(x, bool) else None for x in col], dtype=float)
    return v[np.isfinite(v)]


def _scaled(col, f: float):
    import pandas as pd

    return pd.Series([x * f if finite_or_none(x) is not None and not isinstance(x, bool) else x for x in col],
                     index=col.index, dtype=object if col.dtype == object else float)


def noise_redchi(stats: dict) -> float | None:
    """The reduced χ² of a fit with the noise estimate as σ (≈ 1 for a fit down to the noise), or None.

    ``stats["redchi_noise"]`` when the fit gave it (:func:`specproc.fitting.fit.fit_spec`; a stack's
    fits: the ``redchi_noise`` variable of :func:`specproc.fitting.batch.fit_batch`; EELS: Poisson-aware;
    impedance: the Kramers–Kronig noise, None with a reason when not estimable), else
    ``redchi / noise²`` when ``stats`` carries the noise SD of the fitted data (``noise_sd`` or
    ``noise_rms``) and ``redchi`` is unweighted; None otherwise — a residual variance in data units
    (lmfit's unweighted ``redchi``) is never shown as a reduced χ².
    """
    if "redchi_noise" in stats:
        return finite_or_none(stats.get("redchi_noise"))
    r = finite_or_none(stats.get("redchi"))
    s = finite_or_none(stats.get("noise_sd", stats.get("noise_rms")))
    if r is None or s is None or s <= 0 or stats.get("weighted"):
        return None
    return r / (s * s)


def display_table(df):
    """``df`` as text cells for a reader (command-line tables): a column of quantities (objects with
    ``value``, ``stderr`` and ``unit``, e.g. :class:`specproc.core.result.Quantity`) becomes
    ``"1.578 ± 0.012"`` cells under ``"<name> (nm)"`` (one prefix per column, from its median
    magnitude); then :func:`display_frame` for the columns named in an SI unit."""
    import numpy as np

    def is_q(v):
        return hasattr(v, "value") and hasattr(v, "stderr") and hasattr(v, "unit")

    out, renames = df, {}
    for c in df.columns:
        col = df[c]
        if col.dtype != object or not any(is_q(v) for v in col):
            continue
        qs = [v for v in col if is_q(v)]
        unit = next((q.unit for q in qs if q.unit), "")
        mags = np.array([abs(q.value) for q in qs if finite_or_none(q.value)], float)
        f, shown = natural_unit(unit, float(np.median(mags)) if mags.size else None)
        cells = [format_number(v.value * f if finite_or_none(v.value) is not None else None,
                               v.stderr * f if finite_or_none(v.stderr) is not None else None)
                 if is_q(v) else format_number(v) for v in col]
        out = out.copy() if out is df else out
        out[c] = cells
        if shown:
            renames[c] = f"{c} ({shown})"
    return display_frame(out.rename(columns=renames) if renames else out)
