"""The one result type every processor returns.

Composition, not inheritance (lmfit's lesson): a :class:`Result` holds the quantities it
measured (value, standard error, unit), tidy tables, plot specifications (turned into plotly
figures on demand, so plotly is only imported when a figure is wanted), the validated
parameters, the provenance of its inputs, fit statistics and warnings. The report and the
evidence engine consume only this type.
"""
from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._version import __version__
from .provenance import now_iso


@dataclass
class Quantity:
    """A measured number with its standard error and unit."""

    value: float
    stderr: float | None = None
    unit: str = ""
    description: str = ""

    def to_dict(self) -> dict:
        return {"value": jsonable(self.value), "stderr": jsonable(self.stderr), "unit": self.unit,
                "description": self.description}

    def __str__(self) -> str:
        if self.stderr is None or not np.isfinite(self.stderr):
            return f"{self.value:.6g} {self.unit}".strip()
        return f"{self.value:.6g} ± {self.stderr:.2g} {self.unit}".strip()


def jsonable(obj: Any) -> Any:
    """Convert numpy / pandas / nested objects to plain JSON types (NaN/inf -> None)."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, complex):
        return [jsonable(obj.real), jsonable(obj.imag)]
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [jsonable(v) for v in obj.tolist()]
    if hasattr(obj, "to_dict") and callable(obj.to_dict):
        try:
            return jsonable(obj.to_dict(orient="records"))  # pandas DataFrame
        except TypeError:
            return jsonable(obj.to_dict())
    if hasattr(obj, "item"):
        return jsonable(obj.item())
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    return str(obj)


@dataclass
class Result:
    """Outcome of one processor run on one measurement (or a stack of them).

    Attributes
    ----------
    processor : str
        Registered processor name, e.g. ``"nmr.deconvolve"``.
    technique : str
    sample : str
    quantities : dict[str, Quantity]
        Named numbers that evidence claims can reference (e.g. ``"BH4.center_ppm"``).
    tables : dict[str, pandas.DataFrame]
        Tidy tables; ``main_table`` names the one shown first (``Result.table``).
    plots : list[dict]
        Plot specifications rendered by :mod:`specproc.core.plotting`.
    params : dict
        The validated processor parameters.
    inputs : list[dict]
        Provenance records of the input measurement(s).
    stats : dict
        Fit statistics (``r2``, ``redchi``, ``aic``, ``bic``, ``nfev``, ``success``...).
    warnings : list[str]
    meta : dict
        Context of the result that is not a measured number (``nucleus``, ``wavelength_nm``...).
    data : xarray.Dataset, optional
        Per-pixel / per-spectrum results of a stack (maps stay maps).
    native : Any
        The underlying library object (e.g. lmfit ``ModelResult``), not serialised.
    """

    processor: str
    technique: str
    sample: str = ""
    quantities: dict[str, Quantity] = field(default_factory=dict)
    tables: dict[str, Any] = field(default_factory=dict)
    plots: list[dict] = field(default_factory=list)
    params: dict = field(default_factory=dict)
    inputs: list[dict] = field(default_factory=list)
    stats: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    main_table: str | None = None
    meta: dict = field(default_factory=dict)
    data: Any = None
    native: Any = field(default=None, repr=False)
    created: str = field(default_factory=now_iso)
    specproc_version: str = __version__

    # ------------------------------------------------------------------ access
    @property
    def table(self):
        """The main tidy table (pandas DataFrame)."""
        import pandas as pd

        if not self.tables:
            return pd.DataFrame()
        return self.tables[self.main_table or next(iter(self.tables))]

    def value(self, name: str) -> Quantity:
        return self.quantities[name]

    @property
    def figures(self) -> list:
        """Plotly figures built from :attr:`plots`."""
        from .plotting import make_figure

        return [make_figure(p) for p in self.plots]

    @property
    def figure(self):
        figs = self.figures
        return figs[0] if figs else None

    @property
    def source(self) -> str | None:
        return self.inputs[0].get("source") if self.inputs else None

    # ------------------------------------------------------------------ export
    def to_dict(self, plots: bool = False) -> dict:
        """Plain-JSON representation (``json.dumps`` always works on it)."""
        d = {
            "processor": self.processor,
            "technique": self.technique,
            "sample": self.sample,
            "file": self.source,
            "meta": jsonable(self.meta),
            "quantities": {k: q.to_dict() for k, q in self.quantities.items()},
            "tables": {k: jsonable(v) for k, v in self.tables.items()},
            "params": jsonable(self.params),
            "inputs": jsonable(self.inputs),
            "stats": jsonable(self.stats),
            "warnings": list(self.warnings),
            "created": self.created,
            "specproc_version": self.specproc_version,
        }
        if plots:
            d["plots"] = jsonable(self.plots)
        return d

    def to_json(self, **kw) -> str:
        return json.dumps(self.to_dict(**kw), allow_nan=False)

    def summary(self) -> str:
        lines = [f"{self.processor} — {self.sample or self.source}"]
        lines += [f"  {k}: {q}" for k, q in self.quantities.items()]
        lines += [f"  {k}: {v:.6g}" if isinstance(v, float) else f"  {k}: {v}" for k, v in self.stats.items()]
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        from .plotting import figure_html

        parts = [f"<div class='specproc-result'><h4>{html.escape(self.processor)} — "
                 f"{html.escape(str(self.sample or self.source or ''))}</h4>"]
        if self.warnings:
            parts.append("<ul>" + "".join(f"<li><b>warning:</b> {html.escape(w)}</li>" for w in self.warnings) + "</ul>")
        if self.stats:
            parts.append(table_html_from_dict(self.stats))
        for name, t in self.tables.items():
            parts.append(f"<p><b>{html.escape(name)}</b></p>" + df_html(t))
        for fig in self.figures:
            parts.append(figure_html(fig))
        parts.append("</div>")
        return "".join(parts)


def df_html(df) -> str:
    """Escaped HTML of a DataFrame (strings from files must never become markup)."""
    return df.to_html(index=False, escape=True, float_format=lambda v: f"{v:.6g}", na_rep="—", border=0,
                      classes="specproc-table")


def table_html_from_dict(d: dict) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(f'{v:.6g}' if isinstance(v, float) else str(v))}</td></tr>"
        for k, v in d.items())
    return f"<table class='specproc-table'>{rows}</table>"
