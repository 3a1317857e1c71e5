"""Results store: an embedded DuckDB database plus JSON / CSV / Parquet exports.

``DIR/specproc.duckdb`` keeps every run (tables ``runs``, ``measurements``, ``quantities``,
``comparisons``, ``claims``, ``failures``; schema in :data:`SCHEMA` and docs/pipelines.md).
A run is appended in one DuckDB transaction (then checkpointed): an interrupted run leaves
the previous database intact (DuckDB replays or discards its own WAL on the next open), and
the runner's lock on ``DIR`` means no two runs write at once. A store that cannot be opened
(truncated, garbage) is moved aside to ``specproc.duckdb.damaged-<time>`` with a warning and
a new one is started. Exports (CSV, Parquet, ``results.json``) are written per run folder.

Nothing technique-specific is a column: what a result is about (``nucleus`` for NMR, a
wavelength for XRD...) lives in the JSON ``meta`` column of ``measurements`` (query it with
``json_extract_string(meta, '$.nucleus')``); comparisons record their selector as JSON.
"""
from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path

from ..core.errors import ParameterError
from ..core.files import atomic_write

SCHEMA: dict[str, list[tuple[str, str]]] = {
    "runs": [("run_id", "VARCHAR"), ("pipeline_name", "VARCHAR"), ("pipeline_path", "VARCHAR"),
             ("pipeline_sha256", "VARCHAR"), ("started", "VARCHAR"), ("finished", "VARCHAR"),
             ("elapsed_s", "DOUBLE"), ("specproc_version", "VARCHAR"), ("n_tasks", "INTEGER"),
             ("n_ok", "INTEGER"), ("n_failed", "INTEGER"), ("n_cached", "INTEGER"), ("n_skipped", "INTEGER"),
             ("jobs", "INTEGER"), ("scheduler", "VARCHAR"), ("software", "VARCHAR"), ("report_path", "VARCHAR")],
    "measurements": [("run_id", "VARCHAR"), ("task", "INTEGER"), ("sample", "VARCHAR"), ("technique", "VARCHAR"),
                     ("processor", "VARCHAR"), ("file", "VARCHAR"), ("sha256", "VARCHAR"),
                     ("reader", "VARCHAR"), ("params", "VARCHAR"), ("cache_key", "VARCHAR"),
                     ("cached", "BOOLEAN"), ("elapsed_s", "DOUBLE"), ("status", "VARCHAR"), ("meta", "VARCHAR"),
                     ("stats", "VARCHAR"), ("warnings", "VARCHAR")],
    "quantities": [("run_id", "VARCHAR"), ("task", "INTEGER"), ("sample", "VARCHAR"), ("technique", "VARCHAR"),
                   ("processor", "VARCHAR"), ("file", "VARCHAR"), ("name", "VARCHAR"),
                   ("component", "VARCHAR"), ("property", "VARCHAR"), ("value", "DOUBLE"), ("stderr", "DOUBLE"),
                   ("unit", "VARCHAR")],
    "comparisons": [("run_id", "VARCHAR"), ("id", "VARCHAR"), ("check_index", "INTEGER"), ("op", "VARCHAR"),
                    ("technique", "VARCHAR"), ("selector", "VARCHAR"), ("quantity", "VARCHAR"),
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


def run_tables(summary, report_path: str | None = None) -> dict:
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
        scheduler=summary.scheduler, software=_js(summary.software),
        report_path=report_path if report_path is not None else summary.report_path))
    for rec in summary.records:
        t, r = rec.task, rec.result
        meta = (r.meta if r is not None else {}) or {}
        reader = None
        if r is not None and r.inputs:
            reader = r.inputs[0].get("reader")
        rows["measurements"].append(dict(
            run_id=rid, task=t.index, sample=t.sample, technique=t.technique,
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
                run_id=rid, task=t.index, sample=t.sample, technique=r.technique,
                processor=t.processor, file=t.path, name=name, component=comp, property=prop,
                value=_num(q.value), stderr=_num(q.stderr), unit=q.unit))
    for s in summary.skipped:
        rows["failures"].append(dict(run_id=rid, task=None, kind="skipped", sample=s.sample, technique=s.technique,
                                     processor=s.processor, file=s.files, error_type="Skipped", error=s.reason))

    def comp_row(cid, i, c):
        sel = getattr(c, "selector", None) or {}
        return dict(run_id=rid, id=cid, check_index=i, op=c.op, technique=c.technique, selector=_js(sel or {}),
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


def _set_aside(db_path: Path, why: str) -> None:
    stamp = time.strftime("%Y%m%dT%H%M%S")
    dest = db_path.with_name(f"{db_path.name}.damaged-{stamp}")
    os.replace(db_path, dest)
    wal = Path(str(db_path) + ".wal")
    if wal.exists():
        os.replace(wal, str(dest) + ".wal")
    warnings.warn(f"{db_path}: existing store unreadable ({why}); moved to {dest.name}, starting a new one",
                  RuntimeWarning, stacklevel=3)


def _is_damage(exc: Exception) -> bool:
    """A DuckDB error that means a damaged file (not a full disk or a lock held by someone)."""
    import duckdb

    if isinstance(exc, (duckdb.FatalException, duckdb.InternalException)):
        return True
    msg = str(exc).lower()
    return isinstance(exc, duckdb.IOException) and any(
        s in msg for s in ("could not read", "corrupt", "checksum", "not a valid duckdb", "invalid database"))


def _connect(db_path: Path):
    """Open the store for writing; a store that cannot be opened or read is set aside."""
    import duckdb

    if db_path.is_dir():
        raise ParameterError("store path is a directory; move it away", str(db_path))
    try:
        con = duckdb.connect(str(db_path))
    except duckdb.IOException as exc:
        if not db_path.is_file() or "lock" in str(exc).lower():
            raise
        _set_aside(db_path, str(exc).splitlines()[0])
        return duckdb.connect(str(db_path))
    except duckdb.Error as exc:
        if not db_path.is_file():
            raise
        _set_aside(db_path, str(exc).splitlines()[0])
        return duckdb.connect(str(db_path))
    try:  # touch every table's metadata: damage in the catalogue shows here
        for (name,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall():
            con.execute(f'SELECT count(*) FROM "{name}"').fetchall()
    except duckdb.Error as exc:
        con.close()
        _set_aside(db_path, str(exc).splitlines()[0])
        return duckdb.connect(str(db_path))
    return con


def _ensure_schema(con) -> None:
    for name, cols in SCHEMA.items():
        con.execute(f"CREATE TABLE IF NOT EXISTS {name} (" + ", ".join(f"{c} {t}" for c, t in cols) + ")")
        have = {r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [name]).fetchall()}
        for c, t in cols:  # stores written by older versions gain new columns (old ones stay)
            if c not in have:
                con.execute(f"ALTER TABLE {name} ADD COLUMN {c} {t}")


def write_database(db_path: Path, tables: dict) -> None:
    """Append the run's tables to the DuckDB store in one transaction.

    The caller holds the output folder's lock. If the run is already in the store (a repair
    after an interrupted run), nothing is written.
    """
    import duckdb

    db_path = Path(db_path)
    rid = tables["runs"]["run_id"].iloc[0] if len(tables["runs"]) else None
    for attempt in (0, 1):
        con = _connect(db_path)
        try:
            con.execute("BEGIN TRANSACTION")
            _ensure_schema(con)
            if rid is not None and con.execute("SELECT count(*) FROM runs WHERE run_id = ?", [rid]).fetchall()[0][0]:
                con.execute("ROLLBACK")
                return
            for name, cols in SCHEMA.items():
                df = tables[name]
                if len(df):
                    names = ", ".join(c for c, _ in cols)
                    con.register("_df", df)
                    con.execute(f"INSERT INTO {name} ({names}) SELECT {names} FROM _df")
                    con.unregister("_df")
            con.execute("COMMIT")
            con.execute("CHECKPOINT")
            return
        except duckdb.Error as exc:
            if not _is_damage(exc):
                try:
                    con.execute("ROLLBACK")
                except Exception:
                    pass
                raise
            # the file opened but its data blocks are damaged: set it aside once, write a new store
            try:
                con.close()
            except Exception:
                pass
            con = None
            if attempt or not db_path.is_file():
                raise
            _set_aside(db_path, str(exc).splitlines()[0])
        except BaseException:
            try:
                con.execute("ROLLBACK")
            except Exception:
                pass
            raise
        finally:
            if con is not None:
                con.close()


def has_run(db_path: str | Path, run_id: str) -> bool:
    """Whether the store holds ``run_id`` (False when it has no runs table)."""
    import duckdb

    if not Path(db_path).is_file():
        return False
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        return bool(con.execute("SELECT count(*) FROM runs WHERE run_id = ?", [run_id]).fetchall()[0][0])
    except duckdb.CatalogException:
        return False
    finally:
        con.close()


def insert_run_from_exports(db_path: str | Path, exports: str | Path) -> None:
    """Append a published run folder's tables (its Parquet exports) to the store."""
    import pandas as pd

    exports = Path(exports)
    tables = {}
    for name, cols in SCHEMA.items():
        p = exports / f"{name}.parquet"
        df = pd.read_parquet(p) if p.is_file() else pd.DataFrame(columns=[c for c, _ in cols])
        for c, _ in cols:
            if c not in df.columns:
                df[c] = None
        tables[name] = df[[c for c, _ in cols]]
    write_database(Path(db_path), tables)


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
    from ..core.errors import SpecprocError

    if not Path(db_path).is_file():
        raise SpecprocError("no results store here (run a pipeline first)", str(db_path))
    try:
        con = duckdb.connect(str(db_path), read_only=True)
    except duckdb.Error as exc:
        raise SpecprocError(f"cannot open the results store: {str(exc).splitlines()[0]}", str(db_path)) from None
    try:
        if run_id is None:
            return con.execute(f"SELECT * FROM {table}").df()
        return con.execute(f"SELECT * FROM {table} WHERE run_id = ?", [run_id]).df()
    except duckdb.Error as exc:
        raise SpecprocError(f"cannot read table {table!r}: {str(exc).splitlines()[0]}", str(db_path)) from None
    finally:
        con.close()
