"""The results store under faults: full disks, locks held by others, foreign schemas, damage.

Promises (docs/reliability.md):

* a store that cannot be written *now* (disk full, file size limit, permission, a lock held by
  another program) is never moved, replaced or shrunk; the run folders it lacks are added by a
  later run (``store.sync_runs``), however many runs later;
* a run folder is never pruned while its rows are not in the store (``store.prunable_runs``);
* only a damaged store (``damaged-<time>``) or one whose schema is not specproc's
  (``foreign-<time>``) is set aside, always by renaming it, and a new store is rebuilt from the
  run folders.

The faults are real: a real ``RLIMIT_FSIZE`` and a real full tmpfs (``ENOSPC``) in the
subprocess that writes the store, a real DuckDB lock held by another process.
"""
from __future__ import annotations

import ast
import errno
import os
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import duckdb
import pytest

import specproc.pipeline.store as store
from specproc.core.errors import SpecprocError
from specproc.pipeline import run_pipeline
from specproc.pipeline.store import (StoreUnavailable, prunable_runs, read_table, runs_in_store, schema_problem,
                                     sync_runs)

HERE = Path(__file__).resolve().parent
FAKE_CLI = HERE / "_fake_cli.py"

#: runs a fake-plugin ``specproc run`` whose store write meets a real fault (set by $STORE_FAULT)
DRIVER = textwrap.dedent(f"""\
    import errno, os, resource, runpy, signal, sys
    import specproc.pipeline.store as store

    fault = os.environ.get("STORE_FAULT", "")
    orig = store.write_database

    def faulty(db_path, tables):
        kind, _, n = fault.partition(":")
        if kind == "fsize":  # files may not grow beyond n bytes: writes fail with EFBIG
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (int(n), resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        elif kind == "fill":  # fill the file system, then free n bytes: writes beyond fail with ENOSPC
            filler = os.environ["FILLER"]
            with open(filler, "wb", buffering=0) as fh:
                try:
                    while True:
                        fh.write(b"x" * (1 << 16))
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
            os.truncate(filler, max(0, os.path.getsize(filler) - int(n)))
        return orig(db_path, tables)

    store.write_database = faulty
    sys.argv = [{str(FAKE_CLI)!r}, *sys.argv[1:]]
    runpy.run_path({str(FAKE_CLI)!r}, run_name="__main__")
    """)


@pytest.fixture
def study(fake_study):
    """The fake study without its broken file: a run that goes well exits 0."""
    (fake_study.parent.parent / "data" / "B" / "broken.fk").unlink()
    return fake_study


def _driver(tmp_path: Path) -> Path:
    p = tmp_path / "store_fault_driver.py"
    p.write_text(DRIVER)
    return p


def _cli(tmp_path: Path, study: Path, out: Path, fault: str = "", **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(_driver(tmp_path)), "run", str(study), "--out", str(out), "-q",
                           "-j", "1"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "STORE_FAULT": fault, **env})


def _main(capsys, study: Path, out: Path) -> tuple[int, str]:
    """``specproc run STUDY --out OUT -q -j 1`` in this process (fake plugins): exit code, stderr."""
    from specproc.cli import main

    capsys.readouterr()
    code = main(["run", str(study), "--out", str(out), "-q", "-j", "1"])
    return code, capsys.readouterr().err


def _folders(out: Path) -> set[str]:
    return {d.name for d in (out / "runs").iterdir() if not d.name.startswith(".")}


def _stored(out: Path) -> list[str]:
    return sorted(read_table(out / "specproc.duckdb", "runs").run_id)


def _set_aside(out: Path) -> list[str]:
    return sorted(p.name for p in out.glob("specproc.duckdb.*") if p.name != "specproc.duckdb.wal")


def _every_run_has_rows(out: Path, ids) -> None:
    meas = read_table(out / "specproc.duckdb", "measurements")
    quant = read_table(out / "specproc.duckdb", "quantities")
    for rid in ids:
        assert (meas.run_id == rid).sum() == 3 and (quant.run_id == rid).sum() > 0, rid


# --------------------------------------------------------------------------- 1. full disk
def test_file_size_limit_during_the_store_write_keeps_the_store(fake_plugins, first_run, tmp_path, capsys):
    """Real EFBIG (RLIMIT_FSIZE) in the process committing: the store is kept as it is, never set aside.

    Only the faulty run is a subprocess (the limit must not hit the test process); the runs before
    and after it are the same command in this process (:func:`_main`), without 3 s of imports each."""
    study, out, _ = first_run(broken=False)
    (rid1,) = _folders(out)
    db = out / "specproc.duckdb"
    before = db.stat()

    r2 = _cli(tmp_path, study, out, fault="fsize:4096")
    assert r2.returncode == 1
    assert "cannot write the results store" in r2.stderr and "File too large" in r2.stderr, r2.stderr
    assert "Traceback" not in r2.stderr and "unreadable" not in r2.stderr
    (rid2,) = _folders(out) - {rid1}
    assert rid2 in r2.stderr  # "... run <id> are published and the next run adds it"
    after = db.stat()
    assert (after.st_ino, after.st_size) == (before.st_ino, before.st_size)  # not replaced, not smaller
    assert _set_aside(out) == [] and _stored(out) == [rid1]

    code, err = _main(capsys, study, out)
    assert code == 0, err
    (rid3,) = _folders(out) - {rid1, rid2}
    assert _stored(out) == sorted([rid1, rid2, rid3]) and db.stat().st_ino == before.st_ino
    _every_run_has_rows(out, [rid1, rid2, rid3])
    assert _set_aside(out) == []


def _userns_tmpfs() -> bool:
    if not shutil.which("unshare"):
        return False
    r = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                        "mount -t tmpfs -o size=1m tmpfs /tmp"], capture_output=True)
    return r.returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(not _userns_tmpfs(), reason="needs user namespaces to mount a small tmpfs")
@pytest.mark.parametrize("left", [0, 300 << 10], ids=["commit_fails", "checkpoint_fails"])
def test_full_disk_during_the_store_write_never_loses_the_store(fake_plugins, first_run, tmp_path, left):
    """The attack, on a real full tmpfs (ENOSPC): run 2 meets a full disk in the store write.

    ``commit_fails``: nothing is left for the WAL, run 2 exits 1 and leaves the store as it was.
    ``checkpoint_fails``: the commit reaches the WAL but the checkpoint does not fit (DuckDB
    raises a FatalException, which used to count as damage): the rows are kept, with a warning.
    Either way nothing is set aside and run 3, after space is freed, has all three runs.
    """
    study, out1, _ = first_run(broken=False)  # run 1, copied onto the tmpfs
    mnt, logs, copy = tmp_path / "mnt", tmp_path / "logs", tmp_path / "copy"
    for d in (mnt, logs, copy):
        d.mkdir()
    script = textwrap.dedent(f"""\
        mount -t tmpfs -o size=64m tmpfs {mnt} || exit 97
        run() {{ "$PY" {_driver(tmp_path)} run {study} --out {mnt}/out -q -j 1 >{logs}/$1.out 2>{logs}/$1.err
                 echo $? >{logs}/$1.rc; }}
        cp -a {out1} {mnt}/out || exit 98
        stat -c %i {mnt}/out/specproc.duckdb >{logs}/ino1
        STORE_FAULT=fill:{left} FILLER={mnt}/filler run 2
        rm -f {mnt}/filler
        cp -a {mnt}/out {copy}/after2
        stat -c %i {mnt}/out/specproc.duckdb >{logs}/ino2
        run 3
        stat -c %i {mnt}/out/specproc.duckdb >{logs}/ino3
        cp -a {mnt}/out {copy}/after3
        """)
    p = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script],
                       env={**os.environ, "PY": sys.executable}, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr

    def log(name):
        return (logs / name).read_text().strip()

    assert log("ino1") == log("ino2") == log("ino3")  # the same file all along: never replaced
    after2, after3 = copy / "after2", copy / "after3"
    assert _set_aside(after2) == [] and _set_aside(after3) == []
    assert "unreadable" not in log("2.err") + log("3.err")
    rid1, rid2 = sorted(_folders(after2))
    if left == 0:
        assert log("2.rc") == "1" and "No space left on device" in log("2.err"), log("2.err")
        assert _stored(after2) == [rid1]
    else:
        assert log("2.rc") == "0" and "could not be checkpointed" in log("2.err"), log("2.err")
        assert _stored(after2) == [rid1, rid2]  # committed in the WAL: DuckDB replays it
    assert log("3.rc") == "0", log("3.err")
    (rid3,) = _folders(after3) - {rid1, rid2}
    assert _stored(after3) == [rid1, rid2, rid3]
    _every_run_has_rows(after3, [rid1, rid2, rid3])


@pytest.mark.parametrize("message", [
    "IO Error: Could not write file \"{db}.wal\": No space left on device",
    "FATAL Error: Failed to create checkpoint because of error: Could not write file \"{db}\": No space left on device",
    "IO Error: Could not write file \"{db}\": Disk quota exceeded",
    "IO Error: Could not write file \"{db}\": File too large",
    "IO Error: Cannot open file \"{db}\": Permission denied",
    "IO Error: Could not write file \"{db}\": Read-only file system",
])
def test_transient_write_errors_never_set_the_store_aside(fake_plugins, first_run, tmp_path, monkeypatch, message):
    """DuckDB errors mid-transaction that mean "cannot write now" (EACCES/EROFS cannot be made for root)."""
    study, out, first = first_run(broken=False)
    db = out / "specproc.duckdb"
    data = db.read_bytes()
    real_connect = duckdb.connect
    fatal = message.startswith("FATAL")

    class Failing:
        def __init__(self, con):
            self._con = con

        def execute(self, sql, *a):
            if sql.startswith("INSERT"):
                raise (duckdb.FatalException if fatal else duckdb.IOException)(message.format(db=db))
            return self._con.execute(sql, *a)

        def __getattr__(self, name):
            return getattr(self._con, name)

    monkeypatch.setattr(duckdb, "connect", lambda *a, **k: Failing(real_connect(*a, **k)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "unreadable ... moved" warning
        tables = store._tables_from_exports(Path(first.run_dir) / "exports")
        tables = {k: v.assign(run_id="19990101T000000-0000000a") for k, v in tables.items()}
        with pytest.raises(StoreUnavailable, match="cannot write the results store now"):
            store.write_database(db, tables)
    monkeypatch.setattr(duckdb, "connect", real_connect)
    assert db.read_bytes() == data and _set_aside(out) == []
    assert _stored(out) == [first.run_id]


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EACCES, errno.EPERM, errno.EROFS])
def test_os_errors_that_mean_cannot_write_now_are_not_damage(err):
    assert store._classify(OSError(err, os.strerror(err))) == "busy"
    assert store._classify(duckdb.IOException(f'IO Error: Could not write file "x": {os.strerror(err)}')) == "busy"
    assert store._classify(duckdb.IOException('IO Error: The file "x" exists, but it is not a valid DuckDB '
                                              "database file!")) == "damage"


def test_empty_store_with_a_wal_is_set_aside_whole_and_rebuilt(fake_plugins, first_run, tmp_path):
    """A 0-byte store plus its WAL (DuckDB opens neither): both renamed, the rows rebuilt from runs/."""
    study, out, first = first_run(broken=False)
    db = out / "specproc.duckdb"
    other = tmp_path / "other.duckdb"  # a genuine WAL: committed, not checkpointed
    con = duckdb.connect(str(other), config={"checkpoint_threshold": "1GB"})
    con.execute("CREATE TABLE t (a INTEGER)")
    con.execute("INSERT INTO t VALUES (1)")
    shutil.copy(f"{other}.wal", f"{db}.wal")
    con.close()
    wal = Path(f"{db}.wal").read_bytes()
    db.write_bytes(b"")
    with pytest.warns(RuntimeWarning, match="unreadable"):
        s = run_pipeline(study, out, jobs=1)
    (dest,) = [p for p in out.glob("specproc.duckdb.damaged-*") if p.suffix != ".wal"]
    assert dest.stat().st_size == 0 and Path(f"{dest}.wal").read_bytes() == wal  # kept, never deleted
    assert _stored(out) == sorted([first.run_id, s.run_id])
    _every_run_has_rows(out, [first.run_id, s.run_id])


def test_set_aside_never_overwrites_an_earlier_one(fake_plugins, first_run, tmp_path):
    """Two damaged stores in the same second get two names; both keep their bytes."""
    study, out, first = first_run(broken=False)
    db = out / "specproc.duckdb"
    garbage = [os.urandom(50_000), os.urandom(60_000)]
    for g in garbage:
        db.write_bytes(g)
        with pytest.warns(RuntimeWarning, match="unreadable"):
            assert sync_runs(db, out / "runs") == [first.run_id]  # rebuilt from the run folder
    kept = sorted(out.glob("specproc.duckdb.damaged-*"), key=lambda p: p.stat().st_size)
    assert [p.read_bytes() for p in kept] == garbage
    assert _stored(out) == [first.run_id]


def test_store_module_never_deletes_or_overwrites_files():
    """Setting aside is a rename to a free name: no unlink/remove/rmtree/replace/truncate in store.py."""
    tree = ast.parse(Path(store.__file__).read_text())
    banned = {"unlink", "remove", "rmtree", "rmdir", "truncate", "removedirs", "os.replace", "shutil.move"}
    calls = [f"{ast.unparse(n.func)} (line {n.lineno})" for n in ast.walk(tree)
             if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
             and (n.func.attr in banned or ast.unparse(n.func) in banned)]
    assert calls == []
    renames = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Call) and ast.unparse(n.func) == "os.rename"]
    assert renames and all("_free_name" in ast.unparse(f) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)
                           and any(f.lineno <= r <= f.end_lineno for r in renames))


# --------------------------------------------------------------------------- 2. store locked by another program
def _hold_lock(db: Path) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys; con = duckdb.connect(sys.argv[1]); "
                               "print('locked', flush=True); sys.stdin.read()", str(db)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


@pytest.mark.slow
def test_runs_while_another_program_locks_the_store_are_added_later_and_never_pruned_before(
        fake_plugins, study, tmp_path, keep_two_runs, capsys):
    """The lock is held by another process; the runs are the CLI command in this process (the
    conflict is between processes either way)."""
    out = tmp_path / "out"
    out.mkdir()
    db = out / "specproc.duckdb"
    holder = _hold_lock(db)
    try:
        failed = []
        for _ in range(2):
            code, err = _main(capsys, study, out)
            assert code == 1 and "Conflicting lock" in err and "next run adds it" in err, err
            assert "Traceback" not in err
            (rid,) = _folders(out) - set(failed)
            failed.append(rid)
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    assert _set_aside(out) == []
    code, err = _main(capsys, study, out)
    assert code == 0, err
    (rid3,) = _folders(out) - set(failed)
    assert _stored(out) == sorted(failed + [rid3])
    later = [run_pipeline(study, out, jobs=1).run_id for _ in range(keep_two_runs + 1)]
    ids = failed + [rid3] + later
    assert _stored(out) == sorted(ids)  # six runs, none lost
    assert _folders(out) == set(later[-keep_two_runs:])  # the last folders kept, the others pruned once stored
    _every_run_has_rows(out, ids)
    assert _set_aside(out) == []


def test_a_run_folder_missing_from_the_store_is_never_pruned(fake_plugins, first_run, tmp_path, keep_two_runs):
    study, out, first = first_run(broken=False)
    con = duckdb.connect(str(out / "specproc.duckdb"))  # as if its store write had failed
    for table in store.SCHEMA:
        con.execute(f"DELETE FROM {table} WHERE run_id = ?", [first.run_id])
    con.close()
    (Path(first.run_dir) / "exports" / "runs.parquet").write_bytes(b"damaged")  # and it cannot be re-added
    with pytest.warns(RuntimeWarning, match="cannot read the run's exports"):
        later = [run_pipeline(study, out, jobs=1).run_id for _ in range(keep_two_runs + 1)]
    assert first.run_id in _folders(out) and first.run_id not in prunable_runs(out / "specproc.duckdb", out / "runs")
    assert _folders(out) == {first.run_id} | set(later[-keep_two_runs:])
    assert _stored(out) == sorted(later)


def test_sync_runs_adds_missing_runs_oldest_first_and_is_idempotent(fake_plugins, study, tmp_path):
    out = tmp_path / "out"
    ids = [run_pipeline(study, out, jobs=1).run_id for _ in range(3)]
    db = out / "specproc.duckdb"
    os.rename(db, tmp_path / "elsewhere.duckdb")
    assert runs_in_store(db) == set()
    assert sync_runs(db, out / "runs") == ids
    assert sync_runs(db, out / "runs") == []
    assert runs_in_store(db) == set(ids) and prunable_runs(db, out / "runs") == set(ids)
    assert list(read_table(db, "runs").run_id) == ids
    _every_run_has_rows(out, ids)


def test_sync_runs_leaves_a_locked_store_alone(fake_plugins, first_run, tmp_path):
    study, out, _ = first_run(broken=False)
    db = out / "specproc.duckdb"
    data = db.read_bytes()
    holder = _hold_lock(db)
    try:
        with pytest.raises(StoreUnavailable, match="Conflicting lock"):
            sync_runs(db, out / "runs")
        with pytest.raises(StoreUnavailable):
            prunable_runs(db, out / "runs")
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    assert db.read_bytes() == data and _set_aside(out) == []


# --------------------------------------------------------------------------- 3. schema not ours
FOREIGN = {
    "run_id_integer": ("DROP TABLE runs; CREATE TABLE runs (run_id INTEGER); INSERT INTO runs VALUES (7)",
                       "runs.run_id is INTEGER, not VARCHAR"),
    "runs_is_a_view": ("DROP TABLE runs; CREATE VIEW runs AS SELECT 42 AS run_id", "runs is a VIEW, not a table"),
    "table_missing_our_columns": ("DROP TABLE measurements; CREATE TABLE measurements (x INTEGER NOT NULL)",
                                  "table measurements has no run_id column"),
    "extra_not_null_column": ("DROP TABLE claims; CREATE TABLE claims (run_id VARCHAR, claim_id VARCHAR, "
                              "owner VARCHAR NOT NULL)", "claims.owner is NOT NULL"),
    "check_constraint": ("DROP TABLE failures; CREATE TABLE failures (run_id VARCHAR CHECK (run_id = 'x'))",
                         "table failures has a CHECK constraint"),
    "unique_index": ("CREATE UNIQUE INDEX one_run_per_pipeline ON runs (pipeline_name)",
                     "table runs has a unique index"),
}


@pytest.mark.parametrize("case", sorted(FOREIGN))
def test_store_with_a_foreign_schema_is_moved_aside_and_rebuilt(fake_plugins, first_run, tmp_path, case):
    sql, problem = FOREIGN[case]
    study, out, first = first_run(broken=False)
    db = out / "specproc.duckdb"
    con = duckdb.connect(str(db))
    con.execute(sql)
    con.close()
    with pytest.warns(RuntimeWarning, match="not a specproc results store") as rec:
        s = run_pipeline(study, out, jobs=1)
    assert any(problem in str(w.message) for w in rec), [str(w.message) for w in rec]
    (foreign,) = out.glob("specproc.duckdb.foreign-*")
    con = duckdb.connect(str(foreign), read_only=True)  # kept as it was, never written into
    assert schema_problem(con) is not None
    con.close()
    assert _stored(out) == sorted([first.run_id, s.run_id])
    _every_run_has_rows(out, [first.run_id, s.run_id])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        third = run_pipeline(study, out, jobs=1)
    assert _stored(out) == sorted([first.run_id, s.run_id, third.run_id])
    assert len(list(out.glob("specproc.duckdb.*"))) == 1


def test_store_of_an_older_version_is_migrated_in_place(fake_plugins, first_run, tmp_path):
    """Fewer columns (and the old ``nucleus`` column) are ours: ALTER TABLE, no set-aside, no row lost."""
    study, out, first = first_run(broken=False)
    db = out / "specproc.duckdb"
    con = duckdb.connect(str(db))
    con.execute("ALTER TABLE measurements ADD COLUMN nucleus VARCHAR; ALTER TABLE measurements DROP COLUMN warnings;"
                "ALTER TABLE runs DROP COLUMN report_path; DROP TABLE failures")
    assert schema_problem(con) is None
    con.close()
    ino = db.stat().st_ino
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = run_pipeline(study, out, jobs=1)
    assert db.stat().st_ino == ino and _set_aside(out) == []
    assert _stored(out) == sorted([first.run_id, s.run_id])
    runs = read_table(db, "runs").set_index("run_id")
    assert runs.report_path.isna()[first.run_id] and runs.report_path.notna()[s.run_id]
    assert "warnings" in read_table(db, "measurements").columns


def test_runs_in_store_refuses_a_foreign_store(tmp_path):
    db = tmp_path / "specproc.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE runs (run_id INTEGER)")
    con.close()
    with pytest.raises(SpecprocError, match="not a specproc results store"):
        runs_in_store(db)
    assert db.is_file() and list(tmp_path.glob("specproc.duckdb.*")) == []  # reading never moves anything
