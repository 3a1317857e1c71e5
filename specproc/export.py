"""Exports of what scientists re-plot: CSV (and Parquet) files of results.

``export(results, folder)`` (also ``sp.export(...)``, ``Result.to_csv(folder)``,
``Result.to_parquet(folder)``, and ``exports/data/`` of every pipeline run) writes, per result,
a folder ``<technique>_<sample>_<file>/`` with

* ``quantities.csv`` — name, its key (component, property), value, stderr, unit, description of every quantity;
* ``table_<name>.csv`` — every table of the result (XRD peak lists and phases, XPS depth
  profiles as at % vs depth per species, AFM modulus histograms, NMR / FTIR component tables...);
* ``curve_<nn>_<title>.csv`` — every fitted spectrum at full resolution: the x axis, then one
  column per curve as drawn (data, baseline, each component, sidebands, envelope / fit, residual;
  named as in the figure's legend);
* ``profile_<nn>_<title>.csv`` — x–y figures (depth profiles...): x, then each series and its error;
* ``map_<nn>_<title>.csv`` — images (AFM height and modulus maps, XPS depth heatmaps) as long
  tables: x, y, value;
* ``histogram_<nn>_<title>.csv`` — series, bin_left, bin_right, count (the bins of the report);

and ``index.csv`` at the top: one row per file written (file, technique, sample, source, kind,
title, rows, columns). Parquet copies (``.parquet``) are written alongside when ``"parquet"`` is
among ``formats`` (pyarrow). Nothing is recomputed: every number comes from the ``Result``.
"""
from __future__ import annotations

import re
import sys
import types
from pathlib import Path

__all__ = ["export"]

_SAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def _slug(text, n: int = 60) -> str:
    s = _SAFE.sub("_", str(text or "")).strip("._")
    return s[:n].rstrip("._") or "x"


def _short_source(src) -> str:
    """``.../LiBH4_11B/1`` -> ``LiBH4_11B-1`` (a Bruker folder keeps its parent), else the file name."""
    parts = [p for p in str(src or "").replace("\\", "/").split("/") if p]
    if not parts:
        return ""
    if len(parts) > 1 and (parts[-1].isdigit() or len(parts[-1]) <= 3):
        return f"{parts[-2]}-{parts[-1]}"
    return parts[-1]


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        n = str(n) if n not in (None, "") else "series"
        k = seen.get(n, 0)
        seen[n] = k + 1
        out.append(n if k == 0 else f"{n} ({k + 1})")
    return out


def _real(a):
    import numpy as np

    a = np.asarray(a)
    return a.real if np.iscomplexobj(a) else a


def _spectrum_frames(spec: dict) -> list:
    """The curve table of a spectrum spec (x + every series on it), plus one long table of series that
    carry their own x."""
    import numpy as np
    import pandas as pd

    x = _real(spec["x"])
    on_x, other = [], []
    for s in spec.get("series", []):
        y = _real(s.get("y", []))
        (on_x if "x" not in s and y.shape == x.shape else other).append((s, y))
    cols = _unique([spec.get("x_label") or "x"] + [s.get("name") for s, _ in on_x])
    frames = [pd.DataFrame({c: v for c, v in zip(cols, [x] + [y for _, y in on_x])})]
    if other:
        frames.append(pd.concat([pd.DataFrame({"series": str(s.get("name")), "x": _real(s.get("x", np.arange(len(y)))),
                                               "y": y}) for s, y in other], ignore_index=True))
    return frames


def _xy_frame(spec: dict):
    import numpy as np
    import pandas as pd

    x = _real(spec.get("x", []))
    series = spec.get("series", [])
    if all("x" not in s and np.shape(s.get("y")) == x.shape for s in series):
        cols, vals = [spec.get("x_label") or "x"], [x]
        for s in series:
            cols.append(s.get("name"))
            vals.append(_real(s["y"]))
            if s.get("err") is not None:
                cols.append(f"{s.get('name')} stderr")
                vals.append(_real(s["err"]))
        return pd.DataFrame(dict(zip(_unique(cols), vals)))
    rows = []
    for s in series:
        sx = _real(s.get("x", x))
        rows.append(pd.DataFrame({"series": str(s.get("name")), "x": sx, "y": _real(s["y"]),
                                  **({"stderr": _real(s["err"])} if s.get("err") is not None else {})}))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def _map_frame(spec: dict):
    import numpy as np
    import pandas as pd

    z = _real(spec["z"]).astype(float)
    ny, nx = z.shape[-2], z.shape[-1]
    x = _real(spec["x"]) if spec.get("x") is not None else np.arange(nx)
    y = _real(spec["y"]) if spec.get("y") is not None else np.arange(ny)
    X, Y = np.meshgrid(x, y)
    names = _unique([spec.get("x_label") or "x", spec.get("y_label") or "y", spec.get("z_label") or "value"])
    return pd.DataFrame({names[0]: X.ravel(), names[1]: Y.ravel(), names[2]: z.reshape(ny, nx).ravel()})


def _histogram_frame(spec: dict):
    import pandas as pd

    from .core.plotting import histogram_counts

    rows = [pd.DataFrame({"series": name, "bin_left": e[:-1], "bin_right": e[1:], "count": c})
            for name, e, c in histogram_counts(spec)]
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def _plot_frames(spec: dict) -> list[tuple[str, object]]:
    """``[(kind, DataFrame)]`` of one plot spec (empty for kinds without a table form)."""
    kind = spec.get("kind", "spectrum")
    if kind == "spectrum":
        return [("curve", f) for f in _spectrum_frames(spec)]
    if kind == "xy":
        return [("profile", _xy_frame(spec))]
    if kind == "map":
        return [("map", _map_frame(spec))]
    if kind == "histogram":
        return [("histogram", _histogram_frame(spec))]
    return []


def _plain(df):
    """A copy whose column names are text and whose mixed-type text columns are text (Parquet needs both)."""
    df = df.copy()
    df.columns = _unique([str(c) for c in df.columns])
    for c in df.columns:
        if df[c].dtype == object:
            vals = df[c].dropna()
            if len({type(v) for v in vals}) > 1 or any(isinstance(v, (list, dict, tuple, set)) for v in vals):
                df[c] = df[c].map(lambda v: None if v is None else str(v))
    return df


def _write(df, path_stem: Path, formats) -> list[Path]:
    """CSV (pyarrow's writer: shortest round-trip numbers, ~15x faster than pandas'; pandas' when arrow
    cannot take a column) and / or Parquet."""
    out, plain, table = [], _plain(df), None
    try:
        import pyarrow as pa

        table = pa.Table.from_pandas(plain, preserve_index=False)
    except Exception:  # no pyarrow, or a column arrow cannot type
        table = None
    if "csv" in formats:
        p = path_stem.with_suffix(".csv")
        if table is not None:
            import pyarrow.csv as pcsv

            pcsv.write_csv(table, p, pcsv.WriteOptions(quoting_style="needed"))
        else:
            df.to_csv(p, index=False)
        out.append(p)
    if "parquet" in formats:
        p = path_stem.with_suffix(".parquet")
        if table is not None:
            import pyarrow.parquet as pq

            pq.write_table(table, p)
        else:
            plain.to_parquet(p, index=False)
        out.append(p)
    return out


def _is_result(x) -> bool:
    """A :class:`~specproc.core.result.Result` (by its fields: ``Result.to_csv`` imports this module)."""
    return all(hasattr(x, a) for a in ("processor", "technique", "quantities", "tables", "plots", "inputs"))


def export(results, folder, formats=("csv", "parquet"), plots: bool = True) -> list[Path]:
    """Write the re-plottable numbers of ``results`` (a Result or a list of them) under ``folder``.

    Parameters
    ----------
    results : Result or list of Result
        Anything else in a list (errors, dicts) is skipped.
    folder : str or Path
        Created when missing; files of an earlier export with the same names are replaced.
    formats : tuple of {"csv", "parquet"}
    plots : bool
        Also export the curves, profiles, maps and histograms of the figures (made from the
        results' plot specs, at full resolution).

    Returns
    -------
    list of Path
        Every file written, ``index.csv`` first.
    """
    import pandas as pd

    formats = tuple(formats)
    bad = set(formats) - {"csv", "parquet"}
    if bad or not formats:
        raise ValueError(f"formats must be among 'csv' and 'parquet', not {sorted(bad) or formats!r}")
    items = [results] if _is_result(results) else [r for r in (results or []) if _is_result(r)]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written, index, used = [], [], set()
    for r in items:
        stem = _slug("_".join(x for x in (r.technique, str(r.sample or ""), _short_source(r.source)) if x), 100)
        base, k = stem, 2
        while stem in used:
            stem, k = f"{base}_{k}", k + 1
        used.add(stem)
        d = folder / stem
        d.mkdir(exist_ok=True)

        def put(df, name, kind, title="", r=r, d=d):
            files = _write(df, d / name, formats)
            written.extend(files)
            index.append({"file": str(files[0].relative_to(folder)), "technique": r.technique, "sample": r.sample,
                          "processor": r.processor, "source": r.source, "kind": kind, "title": title,
                          "rows": len(df), "columns": "; ".join(str(c) for c in df.columns)})

        qs = pd.DataFrame([{"name": n, "component": q.component, "property": q.property, "value": q.value,
                            "stderr": q.stderr, "unit": q.unit, "description": q.description}
                           for n, q in r.quantities.items()],
                          columns=["name", "component", "property", "value", "stderr", "unit", "description"])
        put(qs, "quantities", "quantities")
        for name in r.tables:
            put(r.tables[name], f"table_{_slug(name)}", "table", name)
        if plots:
            for i, spec in enumerate(r.plots):
                try:
                    frames = _plot_frames(spec)
                except Exception as exc:  # one odd spec must not lose the others
                    import warnings

                    warnings.warn(f"{r.source}: figure {spec.get('title')!r} not exported "
                                  f"({type(exc).__name__}: {exc})", RuntimeWarning, stacklevel=2)
                    continue
                for j, (kind, df) in enumerate(frames):
                    name = f"{kind}_{i:02d}_{_slug(spec.get('title'), 50)}" + (f"_other{j}" if j else "")
                    put(df, name, kind, spec.get("title") or "")
    idx = pd.DataFrame(index, columns=["file", "technique", "sample", "processor", "source", "kind", "title", "rows",
                                       "columns"])
    idx_files = _write(idx, folder / "index", formats)
    return idx_files + written


class _CallableModule(types.ModuleType):
    """``specproc.export`` is also the function: ``sp.export(result, folder)``."""

    def __call__(self, *args, **kwargs):
        return export(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
