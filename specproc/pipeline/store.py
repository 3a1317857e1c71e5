"""Results store: an embedded DuckDB database plus JSON / CSV / Parquet exports.

``DIR/specproc.duckdb`` keeps every run (tables ``runs``, ``measurements``, ``quantities``,
``comparisons``, ``claims``, ``failures``; schema in :data:`SCHEMA` and docs/pipelines.md).
Each write copies the current database to a temporary file in ``DIR``, appends the run, and
moves it into place with ``os.replace`` — an interrupted run leaves the previous database
intact, never a half-written one. ``DIR/exports/`` holds the current run's tables as CSV and
Parquet plus ``results.json`` (all results, comparisons and claims), each written atomically.
"""
from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

from ..core.files import atomic_write

SCHEMA: dict[str, list[tuple[str, str]]] = {
    "runs": [("run_id", "VARCHAR"), ("pipeline_name", "VARCHAR"), ("pipeline_path", "VARCHAR"),
             ("pipeline_sha256", "VARCHAR"), ("started", "VARCHAR"), ("finished", "VARCHAR"),
             ("elapsed_s", "DOUBLE"), ("specproc_version", "VARCHAR"), ("n_tasks", "INTEGER"),
             ("n_ok", "INTEGER"), ("n_failed", "INTEGER"), ("n_cached", "INTEGER"), ("n_skipped", "INTEGER"),
             ("jobs", "INTEGER"), ("scheduler", "VARCHAR"), ("software", "VARCHAR"), ("report_path", "VARCHAR")],
    "measurements": [("run_id", "VARCHAR"), ("task", "INTEGER"), ("sample", "VARCHAR"), ("technique", "VARCHAR"),
                     ("nucleus", "VARCHAR"), ("processor", "VARCHAR"), ("file", "VARCHAR"), ("sha256", "VARCHAR"),
                     ("reader", "VARCHAR"), ("params", "VARCHAR"), ("cache_key", "VARCHAR"),
                     ("cached", "BOOLEAN"), ("elapsed_s", "DOUBLE"), ("status", "VARCHAR"), ("meta", "VARCHAR"),
                     ("stats", "VARCHAR"), ("warnings", "VARCHAR")],
    "quantities": [("run_id", "VARCHAR"), ("task", "INTEGER"), ("sample", "VARCHAR"), ("technique", "VARCHAR"),
                   ("nucleus", "VARCHAR"), ("processor", "VARCHAR"), ("file", "VARCHAR"), ("name", "VARCHAR"),
                   ("component", "VARCHAR"), ("property", "VARCHAR"), ("value", "DOUBLE"), ("stderr", "DOUBLE"),
                   ("unit", "VARCHAR")],
    "comparisons": [("run_id", "VARCHAR"), ("id", "VARCHAR"), ("check_index", "INTEGER"), ("op", "VARCHAR"),
                    ("technique", "VARCHAR"), ("nucleus", "VARCHAR"), ("quantity", "VARCHAR"),
                    ("sample", "VARCHAR"), ("reference", "VARCHAR"), ("value", "DOUBLE"), ("stderr", "DOUBLE"),
                    ("unit", "VARCHAR"), ("sample_value", "DOUBLE"), ("sample_stderr", "DOUBLE"),
                    ("reference_value", "DOUBLE"), ("reference_stderr", "DOUBLE"), ("reason", "VARCHAR")],
    "claims": [("run_id", "VARCHAR"), ("claim_id", "VARCHAR"), ("text", "VARCHAR"), ("techniques", "VARCHAR"),
               ("value", "DOUBLE"), ("stderr", "DOUBLE"), ("unit", "VARCHAR"), ("rule", "VARCHAR"),
               ("verdict", "VARCHAR"), ("reason", "VARCHAR"), ("coverage_factor", "DOUBLE"),
               ("sources", "VARCHAR")],
    "failures": [("run_id", "VARCHAR"), ("task", "INTEGER"), ("kind", "VARCHAR"), ("sample", "VARCHAR"),
                 ("technique", "VARCHAR"), ("processor", "VARCHAR"), ("file", "VARCHAR"),
                 ("error_type", "VARCHAR"), ("error", "VARCHAR")],
}


def _js(obj) -> str:
    from ..core.result import jsonable

    return json.dumps(jsonable(obj), sort_keys=True, allow_nan=False)


def _num(v):
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if f == f and f not in (float("inf"), float("-inf")) else None


def split_quantity(name: str) -> tuple[str | None, str]:
    """``"BH4.center_ppm" -> ("BH4", "center_ppm")``; ``"amorphous_fraction" -> (None, ...)``."""
    depth, cut = 0, -1
    for i, ch in enumerate(name):  # last dot outside parentheses: hkl(1.0.1).d_nm stays whole
        depth += ch == "("
        depth -= ch == ")"
        if ch == "." and depth == 0:
            cut = i
    return (name[:cut], name[cut + 1:]) if cut > 0 else (None, name)


def run_tables(summary) -> dict:
    """The run as pandas DataFrames with the columns of :data:`SCHEMA`."""
    import pandas as pd

    rid = summary.run_id
    rows = {k: [] for k in SCHEMA}
    rows["runs"].append(dict(
        run_id=rid, pipeline_name=summary.name, pipeline_path=summary.pipeline_path,
        pipeline_sha256=summary.pipeline_sha256, started=summary.started, finished=summary.finished,
        elapsed_s=summary.elapsed_s, specproc_version=summary.software.get("specproc"),
        n_tasks=len(summary.records), n_ok=len(summary.results), n_failed=len(summary.failures),
        n_cached=summary.n_cached, n_skipped=len(summary.skipped), jobs=summary.jobs,
        scheduler=summary.scheduler, software=_js(summary.software), report_path=summary.report_path))
    for rec in summary.records:
        t, r = rec.task, rec.result
        meta = (r.meta if r is not None else {}) or {}
        nucleus = meta.get("nucleus")
        reader = None
        if r is not None and r.inputs:
            reader = r.inputs[0].get("reader")
        rows["measurements"].append(dict(
            run_id=rid, task=t.index, sample=t.sample, technique=t.technique, nucleus=nucleus,
            processor=t.processor, file=t.path, sha256=t.sha256, reader=reader or t.reader,
            params=_js(t.params), cache_key=t.key, cached=rec.cached, elapsed_s=rec.elapsed_s,
            status="ok" if r is not None else "failed", meta=_js(meta),
            stats=_js(r.stats if r is not None else {}), warnings=_js(r.warnings if r is not None else [])))
        if r is None:
            err = rec.error or {}
            rows["failures"].append(dict(run_id=rid, task=t.index, kind="failed", sample=t.sample,
                                         technique=t.technique, processor=t.processor, file=t.path,
                                         error_type=err.get("type"), error=err.get("error")))
            continue
        for name, q in r.quantities.items():
            comp, prop = split_quantity(name)
            rows["quantities"].append(dict(
                run_id=rid, task=t.index, sample=t.sample, technique=r.technique, nucleus=nucleus,
                processor=t.processor, file=t.path, name=name, component=comp, property=prop,
                value=_num(q.value), stderr=_num(q.stderr), unit=q.unit))
    for s in summary.skipped:
        rows["failures"].append(dict(run_id=rid, task=None, kind="skipped", sample=s.sample, technique=s.technique,
                                     processor=s.processor, file=s.files, error_type="Skipped", error=s.reason))

    def comp_row(cid, i, c):
        return dict(run_id=rid, id=cid, check_index=i, op=c.op, technique=c.technique, nucleus=c.nucleus,
                    quantity=c.quantity, sample=c.sample, reference=c.reference, value=_num(c.value),
                    stderr=_num(c.stderr), unit=c.unit, sample_value=_num(c.sample_value),
                    sample_stderr=_num(c.sample_stderr), reference_value=_num(c.reference_value),
                    reference_stderr=_num(c.reference_stderr), reason=c.reason)

    for cid, c in summary.comparisons:
        rows["comparisons"].append(comp_row(cid, 0, c))
    for cl in summary.claims:
        for i, ch in enumerate(cl.checks):
            rows["comparisons"].append(comp_row(cl.id, i, ch.comparison))
        rows["claims"].append(dict(run_id=rid, claim_id=cl.id, text=cl.text, techniques=",".join(cl.techniques),
                                   value=_num(cl.value), stderr=_num(cl.stderr), unit=cl.unit, rule=cl.rule,
                                   verdict=cl.verdict, reason=cl.reason, coverage_factor=cl.coverage_factor,
                                   sources=_js(cl.sources)))
    return {k: pd.DataFrame(v, columns=[c for c, _ in SCHEMA[k]]) for k, v in rows.items()}


def write_database(db_path: Path, tables: dict) -> None:
    """Append the run's tables to the DuckDB database atomically (copy, append, replace)."""
    import duckdb

    def write(tmp):
        os.unlink(tmp)  # duckdb wants to create the file itself
        if db_path.is_file():
            shutil.copy2(db_path, tmp)
        try:
            con = duckdb.connect(tmp)
        except duckdb.Error as exc:  # an unreadable old store: keep it aside, start a new one
            warnings.warn(f"{db_path}: existing store unreadable ({exc}); starting a new one", RuntimeWarning)
            os.replace(tmp, str(db_path) + ".corrupt")
            con = duckdb.connect(tmp)
        try:
            for name, cols in SCHEMA.items():
                con.execute(f"CREATE TABLE IF NOT EXISTS {name} ("
                            + ", ".join(f"{c} {t}" for c, t in cols) + ")")
                df = tables[name]
                if len(df):
                    con.register("_df", df)
                    con.execute(f"INSERT INTO {name} SELECT {', '.join(c for c, _ in cols)} FROM _df")
                    con.unregister("_df")
            con.execute("CHECKPOINT")
        finally:
            con.close()
        wal = Path(tmp + ".wal")
        if wal.exists():  # checkpointed above; a stray WAL must not be left next to the temp name
            wal.unlink()

    atomic_write(Path(db_path), write)


def write_exports(folder: Path, tables: dict, results_json: dict) -> dict[str, Path]:
    """CSV + Parquet for every table and ``results.json``; returns ``{name: path}``."""
    folder = Path(folder)
    out = {}
    for name, df in tables.items():
        csv = folder / f"{name}.csv"
        atomic_write(csv, lambda tmp, df=df: df.to_csv(tmp, index=False))
        pq = folder / f"{name}.parquet"
        atomic_write(pq, lambda tmp, df=df: df.to_parquet(tmp, index=False))
        out[name] = csv
    js = folder / "results.json"

    def wjson(tmp):
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(results_json, fh, indent=1, allow_nan=False)

    atomic_write(js, wjson)
    out["results.json"] = js
    return out


def read_table(db_path: str | Path, table: str, run_id: str | None = None):
    """A table of the store as a DataFrame (one run, or all), opened read-only."""
    import duckdb

    if table not in SCHEMA:
        raise ValueError(f"unknown table {table!r}; one of {sorted(SCHEMA)}")
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        if run_id is None:
            return con.execute(f"SELECT * FROM {table}").df()
        return con.execute(f"SELECT * FROM {table} WHERE run_id = ?", [run_id]).df()
    finally:
        con.close()
