"""Results store: an embedded DuckDB database plus JSON / CSV / Parquet exports.

``DIR/specproc.duckdb`` keeps every run (tables ``runs``, ``measurements``, ``quantities``,
``comparisons``, ``claims``, ``failures``; schema in :data:`SCHEMA` and docs/pipelines.md).
A run is appended in one DuckDB transaction (then checkpointed): an interrupted run leaves
the previous database intact (DuckDB replays or discards its own WAL on the next open), and
the runner's lock on ``DIR`` means no two runs write at once. Exports (CSV, Parquet,
``results.json``) are written per run folder, and the run folders are the second copy of the
store: :func:`sync_runs` adds every run folder the store lacks (a run whose store write failed,
a store rebuilt after being set aside), and :func:`prunable_runs` tells the pruner which
folders are safe to remove.

A store that cannot be written *now* (disk full, no permission, locked by another program) is
never moved or replaced: :class:`StoreUnavailable`. Only a store that cannot be read
(``specproc.duckdb.damaged-<time>``) or whose schema is not ours
(``specproc.duckdb.foreign-<time>``) is set aside, always by renaming it, with a warning.

Nothing technique-specific is a column: what a result is about (``nucleus`` for NMR, a
wavelength for XRD...) lives in the JSON ``meta`` column of ``measurements`` (query it with
``json_extract_string(meta, '$.nucleus')``); comparisons record their selector as JSON.
"""
from __future__ import annotations

import errno
import json
import os
import re
import time
import warnings
from pathlib import Path

from ..core.errors import ParameterError, SpecprocError
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
            # the key travels with the quantity; one made without a key (the earlier form) is
            # stored whole as its property, never split
            keyed = getattr(q, "property", None) is not None
            rows["quantities"].append(dict(
                run_id=rid, task=t.index, sample=t.sample, technique=r.technique,
                processor=t.processor, file=t.path, name=name, component=q.component if keyed else None,
                property=q.property if keyed else name, value=_num(q.value), stderr=_num(q.stderr), unit=q.unit))
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


# --------------------------------------------------------------------------- store safety
#
# Three kinds of trouble, told apart before anything is moved:
#
# * *cannot write now* (disk full, quota, file size limit, no permission, read-only file system,
#   the file locked by another program): :class:`StoreUnavailable`; the store is left exactly
#   as it is and the run folders not yet in it are added by a later run (:func:`sync_runs`);
# * *damaged* (the file cannot be opened or read for any other reason): renamed to
#   ``specproc.duckdb.damaged-<time>`` with a warning;
# * *not ours* (a ``runs`` that is a view, a column of another type, a constraint specproc's
#   inserts would break): renamed to ``specproc.duckdb.foreign-<time>`` with a warning that
#   names the problem, before any insert.
#
# Setting aside is always a rename to a new name in the same folder (with its ``.wal``); nothing
# here deletes or overwrites a file. A new store is then rebuilt from the run folders.

#: OS errors that mean "cannot write now", never damage (I/O errors and stale NFS handles too:
#: moving a store on an ailing disk or share helps nothing, the error is reported instead)
_BUSY_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EACCES, errno.EPERM, errno.EROFS,
                          errno.EAGAIN, errno.EBUSY, errno.ENOMEM, errno.EINTR, errno.EIO, errno.ESTALE,
                          errno.ENOLCK, errno.ETIMEDOUT})
#: the same in DuckDB's messages (it reports strerror), plus its lock and same-process conflicts
_BUSY_TEXT = tuple(os.strerror(e).lower() for e in sorted(_BUSY_ERRNOS)) + (
    "could not set lock", "conflicting lock", "different configuration than existing connections",
    "out of memory")
#: a store from another DuckDB storage version: not damage, and not ours to move
_VERSION_TEXT = ("version number", "newer version of duckdb", "older version of duckdb", "storage version")


class StoreUnavailable(SpecprocError):
    """The results store cannot be written now; nothing in it was changed or moved.

    Raised for a full disk or quota (``ENOSPC``, ``EDQUOT``, ``EFBIG``), missing permission or
    a read-only file system (``EACCES``, ``EPERM``, ``EROFS``) and a lock held by another
    program. The run folders that are not in the store yet are added by the next
    :func:`sync_runs` that can write.
    """


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _classify(exc: BaseException) -> str:
    """``"busy"`` (cannot write now), ``"version"`` (another DuckDB storage version) or ``"damage"``.

    Parameters
    ----------
    exc : BaseException
        An ``OSError`` or a ``duckdb.Error`` raised while opening, reading or writing the store.

    Returns
    -------
    str
        ``"busy"`` is checked first: a DuckDB ``FatalException`` raised because a checkpoint hit a
        full disk is *busy*, not damage. Anything else that stops DuckDB from opening or reading
        the file is ``"damage"``.
    """
    import duckdb

    if isinstance(exc, OSError) and exc.errno in _BUSY_ERRNOS:
        return "busy"
    if isinstance(exc, (duckdb.ConnectionException, duckdb.OutOfMemoryException, duckdb.InterruptException)):
        return "busy"
    msg = str(exc).lower()
    if any(s in msg for s in _BUSY_TEXT):
        return "busy"
    if any(s in msg for s in _VERSION_TEXT):
        return "version"
    return "damage"


def _unavailable(db_path: Path, exc: BaseException, what: str = "write") -> StoreUnavailable:
    return StoreUnavailable(f"cannot {what} the results store now ({_first_line(exc)}); it was left as it is",
                            str(db_path))


def _free_name(db_path: Path, kind: str) -> Path:
    """``<store>.<kind>-<time>`` (``-2``, ``-3``... if taken): a name neither it nor its ``.wal`` uses."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    for n in range(1, 10_000):
        dest = db_path.with_name(f"{db_path.name}.{kind}-{stamp}" + (f"-{n}" if n > 1 else ""))
        if not os.path.lexists(dest) and not os.path.lexists(f"{dest}.wal"):
            return dest
    raise SpecprocError(f"cannot find a free name to move the store aside as {kind}-{stamp}", str(db_path))


def _set_aside(db_path: Path, kind: str, why: str) -> Path:
    """Rename the store (and its ``.wal``) to ``<store>.<kind>-<time>`` and warn; never deletes.

    Parameters
    ----------
    db_path : Path
        The store.
    kind : {"damaged", "foreign"}
        Part of the new name.
    why : str
        Start of the warning, naming the problem.

    Returns
    -------
    Path
        The new name of the store file.

    Raises
    ------
    StoreUnavailable
        A rename failed (e.g. no permission on the folder). If the store moved but its WAL did
        not, the next open renames the WAL aside too (:func:`_keep_orphan_wal`).
    """
    dest = _free_name(db_path, kind)
    try:
        os.rename(db_path, dest)  # the caller holds the output lock: the name is still free
        wal = Path(f"{db_path}.wal")
        if wal.exists():
            os.rename(wal, f"{dest}.wal")
    except OSError as exc:
        raise StoreUnavailable(f"cannot move the results store aside: {exc.strerror or exc}", str(db_path)) from None
    warnings.warn(f"{db_path}: {why}; moved to {dest.name} (kept, not deleted); a new store is started and the "
                  "runs still in runs/ are added to it again", RuntimeWarning, stacklevel=4)
    return dest


def _keep_orphan_wal(db_path: Path) -> None:
    """A ``.wal`` without its store would be deleted by DuckDB when it creates the store: rename it."""
    wal = Path(f"{db_path}.wal")
    if wal.exists() and not os.path.lexists(db_path):
        dest = Path(f"{_free_name(db_path, 'orphan')}.wal")
        try:
            os.rename(wal, dest)
        except OSError as exc:
            raise StoreUnavailable(f"cannot move a write-ahead log without its store aside: {exc.strerror or exc}",
                                   str(wal)) from None
        warnings.warn(f"{wal}: write-ahead log without its store; moved to {dest.name} (kept, not deleted)",
                      RuntimeWarning, stacklevel=4)


def _catalogue(con) -> tuple[dict, dict, list, list]:
    """Tables, columns, constraints and unique indexes of the store's ``main`` schema (lower-case names)."""
    where = "WHERE table_schema = 'main' AND table_catalog = current_database()"
    kinds = {n.lower(): t for n, t in con.execute(
        f"SELECT table_name, table_type FROM information_schema.tables {where}").fetchall()}
    cols: dict[str, dict[str, tuple[str, bool, bool]]] = {}
    for t, c, dtype, nullable, default in con.execute(
            "SELECT table_name, column_name, data_type, is_nullable, column_default FROM information_schema.columns "
            f"{where} ORDER BY ordinal_position").fetchall():
        cols.setdefault(t.lower(), {})[c.lower()] = (dtype.upper(), nullable == "YES", default is not None)
    cons = [(t.lower(), k) for t, k in con.execute(
        "SELECT table_name, constraint_type FROM duckdb_constraints() WHERE schema_name = 'main' "
        "AND database_name = current_database() AND constraint_type <> 'NOT NULL'").fetchall()]
    uniq = [t.lower() for (t,) in con.execute(
        "SELECT table_name FROM duckdb_indexes() WHERE schema_name = 'main' AND database_name = current_database() "
        "AND is_unique").fetchall()]
    return kinds, cols, cons, uniq


def schema_problem(con) -> str | None:
    """Why the store's tables are not specproc's, or None when they are (or can be migrated).

    A table of :data:`SCHEMA` is ours when it is a base table with a ``run_id`` column, every
    column of ours it has has our type (and accepts NULL), any other column accepts NULL or has
    a default (older versions had a ``nucleus`` column), and it has no unique, primary-key,
    check or foreign-key constraint and no unique index. Missing tables and missing
    columns are not problems: :func:`_ensure_schema` adds them (stores of older versions).

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        An open connection to the store (read-only is enough).

    Returns
    -------
    str or None
        E.g. ``"runs is a VIEW, not a table"`` or ``"runs.run_id is INTEGER, not VARCHAR"``.
    """
    kinds, cols, cons, uniq = _catalogue(con)
    for name, ours in SCHEMA.items():
        if name not in kinds:
            continue
        if kinds[name] != "BASE TABLE":
            return f"{name} is a {kinds[name]}, not a table"
        have = cols.get(name, {})
        if "run_id" not in have:
            return f"table {name} has no run_id column"
        want = dict(ours)
        for c, (dtype, nullable, has_default) in have.items():
            if c in want and dtype != want[c]:
                return f"{name}.{c} is {dtype}, not {want[c]}"
            if c in want and not nullable and c != "run_id":
                return f"{name}.{c} is NOT NULL and specproc leaves it empty when there is no value"
            if c not in want and not nullable and not has_default:
                return f"{name}.{c} is NOT NULL and specproc does not fill it"
        for t, kind in cons:
            if t == name:
                return f"table {name} has a {kind} constraint"
        if name in uniq:
            return f"table {name} has a unique index"
    return None


def _read_all(con, deep: bool = False) -> None:
    """Read every base table (its row count; with ``deep``, every value): damage shows as an error."""
    for (name,) in con.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
                               "AND table_catalog = current_database() AND table_type = 'BASE TABLE'").fetchall():
        q = name.replace('"', '""')
        con.execute(f'SELECT max(hash(COLUMNS(*))) FROM "{q}"' if deep else f'SELECT count(*) FROM "{q}"').fetchall()


def _damaged_now(db_path: Path) -> str | None:
    """After a failed write: read the whole store read-only; the error if it is damaged, else None.

    A store that cannot be opened because it is busy (locked, disk full) is not called damaged.
    """
    import duckdb

    try:
        con = duckdb.connect(str(db_path), read_only=True)
    except duckdb.Error as exc:
        return _first_line(exc) if _classify(exc) == "damage" else None
    try:
        _read_all(con, deep=True)
    except duckdb.Error as exc:
        return _first_line(exc) if _classify(exc) == "damage" else None
    finally:
        con.close()
    return None


def _open(db_path: Path):
    """Open the store for writing after checking it can be read and its schema is ours.

    A damaged store is set aside as ``damaged``, a store whose schema is not ours as ``foreign``
    (both renamed, with a warning) and a new one is started; a busy store is left alone.

    Returns
    -------
    duckdb.DuckDBPyConnection

    Raises
    ------
    ParameterError
        The store path is a directory.
    StoreUnavailable
        The store cannot be opened or created now (disk full, permission, lock held).
    SpecprocError
        The store was written by another DuckDB storage version.
    """
    import duckdb

    if db_path.is_dir():
        raise ParameterError("store path is a directory; move it away", str(db_path))
    _keep_orphan_wal(db_path)
    for _ in range(3):  # at most: set aside as damaged, then as foreign, then a new store
        existed = db_path.is_file()
        try:
            con = duckdb.connect(str(db_path))
        except duckdb.Error as exc:
            kind = _classify(exc)
            if kind == "busy" or not existed:
                raise _unavailable(db_path, exc) from None
            if kind == "version":
                raise SpecprocError(f"the results store was written by another DuckDB version "
                                    f"({_first_line(exc)}); open it with that version or move it away",
                                    str(db_path)) from None
            _set_aside(db_path, "damaged", f"existing store unreadable ({_first_line(exc)})")
            continue
        try:
            _read_all(con)  # damage in the catalogue shows here
        except duckdb.Error as exc:
            con.close()
            if _classify(exc) != "damage":
                raise _unavailable(db_path, exc) from None
            _set_aside(db_path, "damaged", f"existing store unreadable ({_first_line(exc)})")
            continue
        try:
            problem = schema_problem(con)
        except duckdb.Error as exc:  # our query failed on a readable store: not a reason to move it
            con.close()
            raise SpecprocError(f"cannot check the results store's tables ({_first_line(exc)})",
                                str(db_path)) from None
        if problem is None:
            return con
        con.close()
        _set_aside(db_path, "foreign", f"this file is not a specproc results store ({problem})")
    raise SpecprocError("cannot start a new results store", str(db_path))


def _ensure_schema(con) -> None:
    """Create missing tables and add missing columns (stores of older versions); old columns stay."""
    for name, cols in SCHEMA.items():
        con.execute(f"CREATE TABLE IF NOT EXISTS {name} (" + ", ".join(f"{c} {t}" for c, t in cols) + ")")
        have = {r[0].lower() for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'main' "
            "AND table_catalog = current_database() AND lower(table_name) = ?", [name]).fetchall()}
        for c, t in cols:
            if c not in have:
                con.execute(f"ALTER TABLE {name} ADD COLUMN {c} {t}")


def _insert_run(con, tables: dict) -> bool:
    """Insert one run's tables in one transaction; False when the run is already in the store."""
    rid = tables["runs"]["run_id"].iloc[0] if len(tables["runs"]) else None
    con.execute("BEGIN TRANSACTION")
    try:
        _ensure_schema(con)
        if rid is not None and con.execute("SELECT count(*) FROM runs WHERE run_id = ?", [rid]).fetchall()[0][0]:
            con.execute("ROLLBACK")
            return False
        for name, cols in SCHEMA.items():
            df = tables[name]
            if len(df):
                names = ", ".join(c for c, _ in cols)
                con.register("_df", df)
                con.execute(f"INSERT INTO {name} ({names}) SELECT {names} FROM _df")
                con.unregister("_df")
        con.execute("COMMIT")
    except BaseException:
        try:
            con.execute("ROLLBACK")
        except Exception:  # the transaction is gone already (failed commit, invalidated database)
            pass
        raise
    return True


def _checkpoint(con, db_path: Path) -> None:
    """Fold the WAL into the file; a failure only warns (the rows are committed in the WAL)."""
    import duckdb

    try:
        con.execute("CHECKPOINT")
    except duckdb.Error as exc:
        warnings.warn(f"{db_path}: the run is committed but the store could not be checkpointed "
                      f"({_first_line(exc)}); DuckDB replays its log when the store is next opened",
                      RuntimeWarning, stacklevel=4)


def _write(db_path: Path, work):
    """Open the store, call ``work(con)`` (which commits its own transactions) and checkpoint.

    A failed write is *busy* (:class:`StoreUnavailable`, nothing moved) unless a read-only
    read of the whole store then fails too: only then is it set aside as damaged and ``work``
    run once more on a new store.
    """
    import duckdb

    for attempt in (0, 1):
        con = _open(db_path)
        try:
            result = work(con)
        except (duckdb.Error, OSError) as exc:
            con.close()
            if _classify(exc) == "busy":
                raise _unavailable(db_path, exc) from None
            damage = None if attempt else _damaged_now(db_path)
            if damage is None:
                raise SpecprocError(f"cannot write the results store ({type(exc).__name__}: {_first_line(exc)}); "
                                    "it was left as it is", str(db_path)) from None
            _set_aside(db_path, "damaged", f"existing store unreadable ({damage})")
            continue
        except BaseException:
            con.close()
            raise
        try:
            if result:
                _checkpoint(con, db_path)
        finally:
            con.close()
        return result
    raise AssertionError("unreachable")


def write_database(db_path: Path, tables: dict) -> None:
    """Append the run's tables to the DuckDB store in one transaction, then checkpoint.

    The caller holds the output folder's lock. If the run is already in the store (a repair
    after an interrupted run), nothing is written. The store is checked first (:func:`_open`):
    a damaged one is set aside as ``damaged``, one whose schema is not ours as ``foreign``; the
    runs it held that are still in ``runs/`` come back with :func:`sync_runs`.

    Parameters
    ----------
    db_path : Path
        ``OUT/specproc.duckdb``.
    tables : dict
        :func:`run_tables` of the run.

    Raises
    ------
    StoreUnavailable
        The store cannot be written now (disk full, permission, lock held); it is unchanged.
    SpecprocError
        Any other failure; the store is unchanged (an open transaction is rolled back).
    """
    _write(Path(db_path), lambda con: _insert_run(con, tables))


def _tables_from_exports(exports: Path) -> dict:
    """A run folder's tables from its Parquet exports (missing tables empty, missing columns null)."""
    import pandas as pd

    tables = {}
    for name, cols in SCHEMA.items():
        p = exports / f"{name}.parquet"
        df = pd.read_parquet(p) if p.is_file() else pd.DataFrame(columns=[c for c, _ in cols])
        for c, _ in cols:
            if c not in df.columns:
                df[c] = None
        tables[name] = df[[c for c, _ in cols]]
    return tables


#: names of the run folders the runner writes
RUN_ID = _RUN_ID = re.compile(r"^(\d{8}T\d{6}-[0-9a-f]{8}|legacy-\d{8}T\d{6})$")


def _run_folders(runs_dir: Path) -> list[tuple[Path, bool]]:
    """Complete run folders, oldest first, each with whether it holds outputs of an older version.

    Complete: a real folder named like a run id whose ``MANIFEST.json`` names it, with
    ``exports/`` (the runner writes the manifest last, then renames ``.tmp-<id>`` to ``<id>``).
    Legacy folders (``"legacy": true`` in the manifest) hold what an older specproc wrote; that
    version put their rows in the store under their own run ids.
    """
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    found = []
    for d in runs_dir.iterdir():
        if d.is_symlink() or not _RUN_ID.match(d.name) or not (d / "exports").is_dir():
            continue
        man = d / "MANIFEST.json"
        try:
            with open(man, "rb") as fh:
                doc = json.loads(fh.read(1 << 16))
            mtime = man.stat().st_mtime
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict) and doc.get("run_id") == d.name:
            found.append((mtime, d.name, d, bool(doc.get("legacy"))))
    return [(d, legacy) for _, _, d, legacy in sorted(found, key=lambda x: x[:2])]


def sync_runs(db_path: str | Path, runs_dir: str | Path) -> list[str]:
    """Add every complete run folder whose run is not in the store, oldest first.

    Call it with the output lock held, before a run writes (it repairs runs whose store write
    failed or was killed, and rebuilds a store that was set aside) and again before pruning.
    Each run goes in in its own transaction, so a failure keeps the runs added before it;
    calling it again adds nothing twice. A run folder whose exports cannot be read is skipped
    with a warning (and stays unpruned, see :func:`prunable_runs`).

    Parameters
    ----------
    db_path : str or Path
        ``OUT/specproc.duckdb`` (created when missing and a run folder needs it).
    runs_dir : str or Path
        ``OUT/runs``.

    Returns
    -------
    list of str
        The run ids added, in the order added.

    Raises
    ------
    StoreUnavailable
        The store cannot be written now (disk full, permission, lock held); it is unchanged
        except for runs added before the problem.
    SpecprocError
        Another write failure, or a store of another DuckDB version.
    """
    db_path, todo = Path(db_path), [d for d, legacy in _run_folders(runs_dir) if not legacy]
    if not todo and not os.path.lexists(db_path):
        return []
    added: list[str] = []

    def work(con):
        added.clear()  # a retry on a new store (the old one set aside) starts again
        have = {r for (r,) in con.execute("SELECT run_id FROM runs").fetchall()} if _has_runs_table(con) else set()
        for d in todo:
            if d.name in have or d.name in added:
                continue
            try:
                tables = _tables_from_exports(d / "exports")
            except Exception as exc:  # a damaged run folder must not stop the others
                warnings.warn(f"{d}: cannot read the run's exports ({type(exc).__name__}: {_first_line(exc)}); "
                              "not added to the store", RuntimeWarning, stacklevel=5)
                continue
            ids = set(tables["runs"]["run_id"])
            if ids != {d.name}:
                warnings.warn(f"{d}: runs.parquet holds run ids {sorted(map(str, ids))}, not {d.name}; "
                              "not added to the store", RuntimeWarning, stacklevel=5)
                continue
            if _insert_run(con, tables):
                added.append(d.name)
        return bool(added)

    _write(db_path, work)
    return added


def _has_runs_table(con) -> bool:
    return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main' AND "
                            "table_catalog = current_database() AND lower(table_name) = 'runs'").fetchall()[0][0])


def runs_in_store(db_path: str | Path) -> set[str]:
    """The run ids in the store, read-only (empty when there is no store or no ``runs`` table yet).

    Raises
    ------
    StoreUnavailable
        The store cannot be opened now (locked by another program...).
    SpecprocError
        The store is damaged or its schema is not ours: which runs it holds is unknown.
    """
    import duckdb

    db_path = Path(db_path)
    if not os.path.lexists(db_path):
        return set()
    try:
        con = duckdb.connect(str(db_path), read_only=True)
    except duckdb.Error as exc:
        if _classify(exc) == "busy":
            raise _unavailable(db_path, exc, "read") from None
        raise SpecprocError(f"cannot read the results store ({_first_line(exc)})", str(db_path)) from None
    try:
        problem = schema_problem(con)
        if problem:
            raise SpecprocError(f"not a specproc results store ({problem})", str(db_path))
        if not _has_runs_table(con):
            return set()
        return {r for (r,) in con.execute("SELECT run_id FROM runs").fetchall()}
    except duckdb.Error as exc:
        if _classify(exc) == "busy":
            raise _unavailable(db_path, exc, "read") from None
        raise SpecprocError(f"cannot read the results store ({_first_line(exc)})", str(db_path)) from None
    finally:
        con.close()


def prunable_runs(db_path: str | Path, runs_dir: str | Path) -> set[str]:
    """Names of the complete run folders that may be pruned: their rows are in the store.

    Legacy folders (outputs of an older specproc, whose rows that version stored) count as
    stored. A folder missing from this set must be kept until :func:`sync_runs` adds it.

    Raises
    ------
    StoreUnavailable, SpecprocError
        As :func:`runs_in_store`: when the store cannot be read, prune nothing.
    """
    stored = runs_in_store(db_path)
    return {d.name for d, legacy in _run_folders(runs_dir) if legacy or d.name in stored}


def has_run(db_path: str | Path, run_id: str) -> bool:
    """Whether the store holds ``run_id`` (False when there is no store or no runs table)."""
    return run_id in runs_in_store(db_path)


def insert_run_from_exports(db_path: str | Path, exports: str | Path) -> None:
    """Append a published run folder's tables (its Parquet exports) to the store."""
    write_database(Path(db_path), _tables_from_exports(Path(exports)))


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
