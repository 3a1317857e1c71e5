"""The one result type every processor returns.

Composition, not inheritance (lmfit's lesson): a :class:`Result` holds the quantities it
measured (value, standard error, unit), tidy tables, plot specifications (turned into plotly
figures on demand, so plotly is only imported when a figure is wanted), the validated
parameters, the provenance of its inputs, fit statistics and warnings. The report and the
evidence engine consume only this type.
"""
from __future__ import annotations

import bisect
import builtins
import html
import itertools
import json
import math
from collections.abc import Callable, Iterator, MutableMapping, MutableSequence, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._version import __version__
from .numbers import display_frame, format_value, noise_redchi
from .provenance import now_iso


def quantity_name(component: str | None, property: str) -> str:
    """The display name of a quantity key: ``("BH4", "center_ppm") -> "BH4.center_ppm"``,
    ``(None, "amorphous_fraction") -> "amorphous_fraction"``. Names are only ever built from keys,
    never split back into them (the key travels with the :class:`Quantity`)."""
    return property if component is None else f"{component}.{property}"


@dataclass
class Quantity:
    """A measured number with its standard error, unit and structured key.

    The key is ``(component, property)`` (with the result's technique and the unit: what the
    number is): ``component`` is what it is of (``"BH4"``, ``"hkl(101)"``, ``"phase(LiBH4)"``,
    ``"N 1s/Li3N"``; None for a quantity of the whole result such as ``amorphous_fraction``) and
    ``property`` what is measured (``"center_ppm"``, ``"d_nm"``, ``"present"``). The result's name
    of the quantity, :attr:`name`, is derived from the key (:func:`quantity_name`); the store,
    exports, evidence and report read the key fields, never the name's text. A Quantity made
    without a key (``property`` None: the earlier form) still works: the store then records
    ``component`` None and the full name as ``property``, parsing nothing.
    """

    value: float
    stderr: float | None = None
    unit: str = ""
    description: str = ""
    component: str | None = field(default=None, kw_only=True)
    property: str | None = field(default=None, kw_only=True)

    @builtins.property  # the field ``property`` shadows the builtin in this class body
    def name(self) -> str | None:
        """``component.property`` (``property`` alone when ``component`` is None); None without a key."""
        return None if self.property is None else quantity_name(self.component, self.property)

    @builtins.property
    def keyed(self) -> bool:
        """Whether the quantity carries its structured key."""
        return self.property is not None

    def to_dict(self) -> dict:
        return {"value": jsonable(self.value), "stderr": jsonable(self.stderr), "unit": self.unit,
                "description": self.description, "component": self.component, "property": self.property}

    def __str__(self) -> str:
        """The value in its natural unit (``1.578 nm`` for 1.578e-9 m; :mod:`specproc.core.numbers`)."""
        return format_value(self.value, self.stderr, self.unit)


class Quantities(dict):
    """The quantities of a :class:`Result`: name -> :class:`Quantity`, each keyed quantity stored
    under the name derived from its key (a dict everywhere else: JSON, ``in``, ``.get``, pickling).

    Producers add quantities by key, :meth:`add` (``qs.add("BH4", "center_ppm", -44.3, 0.002,
    "ppm")``) or :meth:`put` (a keyed :class:`Quantity`); storing a keyed quantity under another
    name raises ``ValueError``, so a name can never disagree with its key. A quantity without a key
    (the earlier form) may be stored under any name.
    """

    __slots__ = ()

    def __init__(self, items=(), **kw):
        super().__init__()
        self.update(items, **kw)

    def __setitem__(self, name: str, q: Quantity) -> None:
        key = getattr(q, "name", None)
        if key is not None and key != name:
            raise ValueError(f"quantity keyed ({q.component!r}, {q.property!r}) is named {key!r}, "
                             f"not {name!r}")
        super().__setitem__(name, q)

    def update(self, items=(), **kw) -> None:
        for name, q in (items.items() if hasattr(items, "items") else items):
            self[name] = q
        for name, q in kw.items():
            self[name] = q

    def setdefault(self, name: str, q: Quantity | None = None):
        if name not in self:
            self[name] = q
        return self[name]

    def copy(self) -> "Quantities":
        return Quantities(self)

    def put(self, q: Quantity) -> Quantity:
        """Store the keyed quantity ``q`` under its derived name; returns it."""
        if not q.keyed:
            raise ValueError("Quantities.put needs a quantity with its key (component, property)")
        super().__setitem__(q.name, q)
        return q

    def add(self, component: str | None, property: str, value: float, stderr: float | None = None,
            unit: str = "", description: str = "") -> Quantity:
        """Make and store ``Quantity(value, stderr, unit, description, component=, property=)``
        under its derived name (``component.property``; ``property`` when ``component`` is None)."""
        return self.put(Quantity(value, stderr, unit, description, component=component, property=property))

    def __reduce__(self):  # rebuilt through __setitem__'s check like any dict subclass, kept as this type
        return (Quantities, (dict(self),))


def records(df) -> list[dict]:
    """``df.to_dict(orient="records")`` with the same values (Python scalars), ~2x faster for the
    small tables of results: one object-array conversion instead of pandas' per-row machinery
    (counts when a batch exports or reports thousands of results)."""
    keys = list(df.columns)
    return [dict(zip(keys, row)) for row in df.to_numpy(dtype=object).tolist()] if len(df) else []


def _columns(rows: list[dict]) -> list[str]:
    """The columns of a table given as rows: every key, in order of first appearance."""
    return list(dict.fromkeys(k for r in rows for k in r))


def frame(rows: list[dict]):
    """A table from its rows (dicts; a key missing from a row is None), built column-wise: several
    times faster than ``pandas.DataFrame(rows)``."""
    import pandas as pd

    return pd.DataFrame({k: [r.get(k) for r in rows] for k in _columns(rows)})


class Tables(MutableMapping):
    """The tables of a :class:`Result` by name: pandas DataFrames.

    A processor may store a table as its list of rows (dicts); the DataFrame is built on first
    access (:func:`frame`) and kept. A batch of thousands of results then pays for pandas only
    for the tables somebody reads, and :meth:`records` gives the rows without a DataFrame (the
    JSON of a command-line batch). Behaves as a dict of DataFrames everywhere else.
    """

    __slots__ = ("_d",)

    def __init__(self, data=None):
        self._d: dict[str, Any] = {}
        if data:
            self.update(data)

    def __getitem__(self, name: str):
        t = self._d[name]
        if isinstance(t, list):
            t = self._d[name] = frame(t)
        return t

    def __setitem__(self, name: str, table) -> None:
        self._d[name] = table

    def __delitem__(self, name: str) -> None:
        del self._d[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._d)

    def __len__(self) -> int:
        return len(self._d)

    def __repr__(self) -> str:
        return f"Tables({', '.join(self._d)})"

    def records(self, name: str) -> list[dict]:
        """The rows of table ``name`` as dicts (``DataFrame.to_dict("records")`` values; no
        DataFrame is built when the rows are at hand)."""
        t = self._d[name]
        if isinstance(t, list):
            keys = _columns(t)
            return [{k: r.get(k) for k in keys} for r in t]
        return records(t)


class Recipe:
    """A deferred value, ``func(*args, **kwargs)``: a module-level function and picklable arguments,
    so it crosses processes unmade (a batch worker sends the recipe of a figure, not its curves)."""

    __slots__ = ("func", "args", "kwargs")

    def __init__(self, func: Callable, *args, **kwargs):
        self.func, self.args, self.kwargs = func, args, kwargs

    def __call__(self):
        return self.func(*self.args, **self.kwargs)

    def __reduce__(self):
        import functools

        return (functools.partial(Recipe, self.func, **self.kwargs), self.args)


class Plots(MutableSequence):
    """The plot specs of a :class:`Result`: a list, or made on first access by ``make()``.

    A batch keeps its results' figure data as a recipe (a 1,000-spectrum NMR stack would otherwise
    hold ~200 MB of curves nobody draws from the command line); the list is made, and kept, when a
    figure, the report or an export first reads it. ``n`` (how many specs the recipe makes) gives
    the length without making them. A :class:`Recipe` is pickled unmade, any other function made.
    Behaves as a list everywhere.
    """

    __slots__ = ("_items", "_make", "_n")

    def __init__(self, items=None, make: Callable[[], list] | None = None, n: int | None = None):
        self._items = None if make is not None and items is None else list(items or [])
        self._make = make if self._items is None else None
        self._n = n if self._items is None else None

    def _list(self) -> list:
        if self._items is None:
            self._items = list(self._make())
            self._make = None
        return self._items

    def __getitem__(self, i):
        return self._list()[i]

    def __setitem__(self, i, v) -> None:
        self._list()[i] = v

    def __delitem__(self, i) -> None:
        del self._list()[i]

    def __len__(self) -> int:
        return self._n if self._items is None and self._n is not None else len(self._list())

    def insert(self, i, v) -> None:
        self._list().insert(i, v)

    def __eq__(self, other) -> bool:
        return list(self) == list(other) if isinstance(other, (list, Plots)) else NotImplemented

    def __repr__(self) -> str:
        return "Plots(not made yet)" if self._items is None else f"Plots({len(self._items)} specs)"

    def __reduce__(self):  # a Recipe crosses processes unmade; anything else as the made list
        if self._items is None and isinstance(self._make, Recipe):
            return (Plots, (None, self._make, self._n))
        return (Plots, (self._list(),))


class Figures(Sequence):
    """The plot specs of many results as one sequence, each result's specs made only when one of
    them is read (a report section that draws 48 figures of 1,000 results makes 48)."""

    def __init__(self, results):
        self._plots = [r.plots for r in results]
        self._ends = list(itertools.accumulate(len(p) for p in self._plots))

    def __len__(self) -> int:
        return self._ends[-1] if self._ends else 0

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        k = bisect.bisect_right(self._ends, i)
        return self._plots[k][i - (self._ends[k - 1] if k else 0)]


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
            if hasattr(obj, "columns") and hasattr(obj, "to_numpy"):  # pandas DataFrame
                return jsonable(records(obj))
            return jsonable(obj.to_dict(orient="records"))
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
    quantities : Quantities (a dict of name -> Quantity)
        Numbers that evidence claims can reference, each with its structured key (``component``,
        ``property``) and stored under the name derived from it (e.g. ``"BH4.center_ppm"``).
    tables : Tables (a dict of pandas DataFrames)
        Tidy tables; ``main_table`` names the one shown first (``Result.table``). A table may be
        given as its list of rows: the DataFrame is built when it is first read.
    plots : Plots (a list of dicts)
        Plot specifications rendered by :mod:`specproc.core.plotting`; may be given as a function
        of no arguments that makes the list when it is first read.
    params : dict
        The validated processor parameters.
    inputs : list[dict]
        Provenance records of the input measurement(s).
    stats : dict
        Fit statistics (``r2``, ``redchi``, ``aic``, ``bic``, ``nfev``, ``success``...). ``redchi`` as
        stored may be lmfit's unweighted one (a residual variance in data units²); what a reader sees
        (text, HTML, CLI JSON) is :func:`display_stats`: the noise-normalised ``redchi_noise`` (or
        ``redchi / noise_sd²``), else nothing.
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
    quantities: Quantities = field(default_factory=Quantities)
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

    def __post_init__(self) -> None:
        if not isinstance(self.quantities, Quantities):
            self.quantities = Quantities(self.quantities)
        if not isinstance(self.tables, Tables):
            self.tables = Tables(self.tables)
        if not isinstance(self.plots, Plots):
            self.plots = Plots(make=self.plots) if callable(self.plots) else Plots(self.plots)

    # ------------------------------------------------------------------ access
    @property
    def table(self):
        """The main tidy table (pandas DataFrame)."""
        import pandas as pd

        if not self.tables:
            return pd.DataFrame()
        return self.tables[self._main_name()]

    def records(self, name: str | None = None) -> list[dict]:
        """Rows of table ``name`` (default: the main table) as dicts: the JSON of one result
        without building its DataFrame when the processor kept the rows (:class:`Tables`)."""
        if not self.tables:
            return []
        return self.tables.records(name or self._main_name())

    def _main_name(self) -> str:
        return self.main_table or next(iter(self.tables))

    def value(self, name: str) -> Quantity:
        return self.quantities[name]

    def add_quantity(self, component: str | None, property: str, value: float, stderr: float | None = None,
                     unit: str = "", description: str = "") -> Quantity:
        """Add a quantity by its structured key (:meth:`Quantities.add`); returns it."""
        return self.quantities.add(component, property, value, stderr, unit, description)

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
            "tables": {k: jsonable(self.tables.records(k)) for k in self.tables},  # rows: no DataFrame needed
            "params": jsonable(self.params),
            "inputs": jsonable(self.inputs),
            "stats": jsonable(self.stats),
            "warnings": list(self.warnings),
            "created": self.created,
            "specproc_version": self.specproc_version,
        }
        if plots:
            d["plots"] = jsonable(list(self.plots))
        return d

    def to_json(self, **kw) -> str:
        return json.dumps(self.to_dict(**kw), allow_nan=False)

    def to_csv(self, folder, plots: bool = True) -> list:
        """Write what one re-plots as CSV files under ``folder`` (see :func:`specproc.export.export`):
        quantities, every table, and the fitted curves (x, data, each component, envelope, residual),
        profiles, maps and histograms of the figures. Returns the paths written."""
        from ..export import export

        return export(self, folder, formats=("csv",), plots=plots)

    def to_parquet(self, folder, plots: bool = True) -> list:
        """As :meth:`to_csv`, in Parquet files."""
        from ..export import export

        return export(self, folder, formats=("parquet",), plots=plots)

    def to_state(self) -> dict:
        """Lossless JSON-safe state (arrays tagged, NaN kept); :meth:`from_dict` rebuilds it exactly.

        Used by the pipeline cache instead of pickle. ``native`` is not kept; an attribute that
        cannot be serialised safely raises ``TypeError``.
        """
        return _result_state(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Result":
        """Rebuild a Result from :meth:`to_state` (exact) or :meth:`to_dict` (plain JSON, lossy).

        Never imports or calls anything named in ``d``; raises ``ValueError`` when ``d`` is malformed.
        """
        return _result_from_dict(cls, d)

    def summary(self) -> str:
        lines = [f"{self.processor} — {self.sample or self.source}"]
        lines += [f"  {k}: {q}" for k, q in self.quantities.items()]
        lines += [f"  {k}: {v:.6g}" if isinstance(v, float) else f"  {k}: {v}"
                  for k, v in display_stats(self.stats).items()]
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
            parts.append(table_html_from_dict(display_stats(self.stats)))
        for name, t in self.tables.items():
            parts.append(f"<p><b>{html.escape(name)}</b></p>" + df_html(t))
        for fig in self.figures:
            parts.append(figure_html(fig))
        parts.append("</div>")
        return "".join(parts)


def display_stats(stats: dict) -> dict:
    """Fit statistics as shown to a reader: ``redchi`` is the noise-normalised reduced χ²
    (:func:`specproc.core.numbers.noise_redchi`, ≈ 1 for a fit down to the noise) or absent — never
    a residual variance in data units; the internal ``redchi_noise`` / ``residual_var`` are folded in."""
    out = {k: v for k, v in stats.items() if k not in ("redchi", "redchi_noise", "residual_var")}
    if "redchi" in stats or "redchi_noise" in stats:
        r = noise_redchi(stats)
        if r is not None:
            out["redchi"] = r
    return out


def df_html(df) -> str:
    """Escaped HTML of a DataFrame (strings from files must never become markup); columns named in a
    plain SI unit are shown in their natural unit (``Sa_m`` 1.578e-9 -> ``Sa_nm`` 1.578)."""
    df = display_frame(df)
    return df.to_html(index=False, escape=True, float_format=lambda v: f"{v:.6g}", na_rep="—", border=0,
                      classes="specproc-table")


def table_html_from_dict(d: dict) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(f'{v:.6g}' if isinstance(v, float) else str(v))}</td></tr>"
        for k, v in d.items())
    return f"<table class='specproc-table'>{rows}</table>"


# --------------------------------------------------------------------------- safe round trip
# A Result is cached and exchanged as plain JSON with tagged arrays, never as a pickle: loading
# it can only ever build numbers, strings, numpy arrays of plain dtypes, DataFrames and xarray
# Datasets — no class named in the file is ever imported or called (docs/reliability.md).
_TAG_ND, _TAG_DF, _TAG_DS, _TAG_FLOAT, _TAG_CPLX, _TAG_MAP = ("__ndarray__", "__dataframe__", "__dataset__",
                                                               "__float__", "__complex__", "__mapping__")
_TAGS = {_TAG_ND, _TAG_DF, _TAG_DS, _TAG_FLOAT, _TAG_CPLX, _TAG_MAP}
#: dtype kinds stored as raw little-endian bytes (bool, ints, floats, complex, datetimes)
_RAW_KINDS = "biufcmM"
#: refuse arrays above this many elements when decoding (a forged shape must not allocate terabytes)
MAX_DECODED_ELEMENTS = 2_000_000_000


def to_state(obj: Any) -> Any:
    """Lossless JSON-safe encoding of ``obj`` (see :func:`from_state`).

    Handles None, bool, int, float (NaN/inf tagged), complex, str, lists/tuples, dicts (non-str
    keys tagged), numpy scalars and arrays, pandas DataFrames and xarray Datasets. Anything else
    raises ``TypeError`` (the caller decides: e.g. the cache then does not cache the result).
    """
    import base64

    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, np.integer)) and not isinstance(obj, bool):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else {_TAG_FLOAT: repr(f)}
    if isinstance(obj, (complex, np.complexfloating)):
        return {_TAG_CPLX: [to_state(obj.real), to_state(obj.imag)]}
    if isinstance(obj, (list, tuple)):
        return [to_state(v) for v in obj]
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj) and not (_TAGS & obj.keys()):
            return {k: to_state(v) for k, v in obj.items()}
        return {_TAG_MAP: [[to_state(k), to_state(v)] for k, v in obj.items()]}
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind in _RAW_KINDS:
            a = np.ascontiguousarray(obj)
            a = a.astype(a.dtype.newbyteorder("<")) if a.dtype.byteorder == ">" else a
            return {_TAG_ND: {"dtype": a.dtype.str, "shape": list(a.shape),
                              "data": base64.b64encode(a.tobytes()).decode("ascii")}}
        if obj.dtype.kind in "US":
            return {_TAG_ND: {"dtype": "str", "shape": list(obj.shape), "items": [str(v) for v in obj.ravel()]}}
        return {_TAG_ND: {"dtype": "object", "shape": list(obj.shape),
                          "items": [to_state(v) for v in obj.ravel().tolist()]}}
    mod = type(obj).__module__.split(".", 1)[0]
    if mod == "pandas" and hasattr(obj, "columns"):
        cols = [[to_state(c), to_state(obj[c].to_numpy() if not obj.columns.duplicated().any()
                                       else obj.iloc[:, i].to_numpy())] for i, c in enumerate(obj.columns)]
        import pandas as pd

        index = None if isinstance(obj.index, pd.RangeIndex) and obj.index.start == 0 and obj.index.step == 1 \
            else to_state(obj.index.to_numpy())
        return {_TAG_DF: {"columns": cols, "index": index, "n": len(obj)}}
    if mod == "xarray" and hasattr(obj, "data_vars"):
        return {_TAG_DS: to_state(obj.to_dict(data="array", encoding=False))}
    if hasattr(obj, "item") and getattr(obj, "shape", None) == ():
        return to_state(obj.item())
    raise TypeError(f"cannot serialise {type(obj).__name__} safely")


def from_state(obj: Any) -> Any:
    """Inverse of :func:`to_state`; raises ``ValueError`` for anything malformed.

    Only plain dtypes are rebuilt (``numpy.dtype`` of a short dtype string; object arrays are
    rebuilt element by element from JSON values), so a crafted file cannot run code.
    """
    import base64

    if isinstance(obj, list):
        return [from_state(v) for v in obj]
    if not isinstance(obj, dict):
        if obj is None or isinstance(obj, (bool, int, float, str)):
            return obj
        raise ValueError(f"unexpected {type(obj).__name__} in serialised result")
    if len(obj) == 1:
        (tag, v), = obj.items()
        if tag == _TAG_FLOAT:
            if v not in ("nan", "inf", "-inf"):
                raise ValueError(f"bad float tag {v!r}")
            return float(v)
        if tag == _TAG_CPLX:
            re_, im = (from_state(x) for x in v)
            return complex(float(re_), float(im))
        if tag == _TAG_MAP:
            return {_hashable(from_state(k)): from_state(x) for k, x in v}
        if tag == _TAG_ND:
            return _decode_array(v, base64)
        if tag == _TAG_DF:
            import pandas as pd

            cols = [(_hashable(from_state(c)), from_state(a)) for c, a in v["columns"]]
            n = int(v["n"])
            if any(np.shape(a) != (n,) for _, a in cols):
                raise ValueError("dataframe columns of unequal length")
            df = pd.DataFrame({i: a for i, (_, a) in enumerate(cols)}, index=None if v["index"] is None
                              else pd.Index(from_state(v["index"])))
            if not cols:
                df = pd.DataFrame(index=range(n))
            df.columns = [c for c, _ in cols] if cols else df.columns
            return df
        if tag == _TAG_DS:
            import xarray as xr

            return xr.Dataset.from_dict(from_state(v))
    return {k: from_state(x) for k, x in obj.items()}


def _hashable(k):
    return tuple(_hashable(x) for x in k) if isinstance(k, list) else k


def _decode_array(v: dict, base64) -> np.ndarray:
    shape = tuple(int(s) for s in v["shape"])
    if any(s < 0 for s in shape) or math.prod(shape) > MAX_DECODED_ELEMENTS:
        raise ValueError(f"refusing array of shape {shape}")
    kind = v["dtype"]
    if kind == "str":
        return np.array([str(x) for x in v["items"]], dtype=str).reshape(shape)
    if kind == "object":
        items = [from_state(x) for x in v["items"]]
        out = np.empty(len(items), dtype=object)
        out[:] = items
        return out.reshape(shape)
    if not isinstance(kind, str) or len(kind) > 16:
        raise ValueError("bad dtype")
    dt = np.dtype(kind)
    if dt.kind not in _RAW_KINDS or dt.hasobject or dt.fields is not None:
        raise ValueError(f"dtype {kind!r} not allowed")
    raw = base64.b64decode(v["data"], validate=True)
    if len(raw) != math.prod(shape) * dt.itemsize:
        raise ValueError("array data does not match its shape")
    return np.frombuffer(raw, dtype=dt).reshape(shape).copy()


def _result_state(self) -> dict:
    """Lossless JSON-safe state of the result (everything but :attr:`Result.native`)."""
    return {"specproc_result": 1, "processor": self.processor, "technique": self.technique,
            "sample": self.sample,
            "quantities": {k: {"value": to_state(q.value), "stderr": to_state(q.stderr), "unit": q.unit,
                               "description": q.description, "component": q.component, "property": q.property}
                           for k, q in self.quantities.items()},
            "tables": to_state(dict(self.tables)), "plots": to_state(list(self.plots)),
            "params": to_state(self.params), "inputs": to_state(self.inputs), "stats": to_state(self.stats),
            "warnings": [str(w) for w in self.warnings], "main_table": self.main_table,
            "meta": to_state(self.meta), "data": to_state(self.data), "created": self.created,
            "specproc_version": self.specproc_version}


def _result_from_dict(cls, d: dict) -> "Result":
    """Rebuild a Result from :meth:`Result.to_state` (exact) or :meth:`Result.to_dict` (plain JSON).

    Raises ``ValueError`` when ``d`` is not a result (missing/mistyped fields, bad arrays).
    """
    if not isinstance(d, dict) or not isinstance(d.get("processor"), str) or not isinstance(
            d.get("technique"), str):
        raise ValueError("not a serialised Result (processor / technique missing)")
    exact = d.get("specproc_result") == 1
    dec = from_state if exact else (lambda x: x)
    qs = {}
    for name, q in (d.get("quantities") or {}).items():
        if not isinstance(q, dict) or "value" not in q:
            raise ValueError(f"quantity {name!r} malformed")
        v, s = dec(q["value"]), dec(q.get("stderr"))
        comp, prop = q.get("component"), q.get("property")
        if not (comp is None or isinstance(comp, str)) or not (prop is None or isinstance(prop, str)) or (
                prop is not None and quantity_name(comp, prop) != str(name)):
            raise ValueError(f"quantity {name!r}: key ({comp!r}, {prop!r}) malformed or not its name")
        qs[str(name)] = Quantity(float("nan") if v is None else float(v), None if s is None else float(s),
                                 str(q.get("unit") or ""), str(q.get("description") or ""),
                                 component=comp if prop is not None else None, property=prop)
    tables = dec(d.get("tables") or {})
    if not exact:
        import pandas as pd

        tables = {k: pd.DataFrame(v) for k, v in tables.items()}
    if not isinstance(tables, dict):
        raise ValueError("tables malformed")
    plots = dec(d.get("plots") or [])
    warnings_ = d.get("warnings") or []
    if not isinstance(plots, list) or not isinstance(warnings_, list):
        raise ValueError("plots / warnings malformed")
    return cls(processor=d["processor"], technique=d["technique"], sample=str(d.get("sample") or ""),
               quantities=qs, tables=tables, plots=plots, params=dec(d.get("params") or {}),
               inputs=dec(d.get("inputs") or []), stats=dec(d.get("stats") or {}),
               warnings=[str(w) for w in warnings_], main_table=d.get("main_table"),
               meta=dec(d.get("meta") or {}), data=dec(d.get("data")) if exact else None,
               created=str(d.get("created") or now_iso()),
               specproc_version=str(d.get("specproc_version") or __version__))

