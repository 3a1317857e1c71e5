"""Pipeline runner: tasks -> (cache | local processes | Dask) -> claims -> store -> report.

Reliability (docs/reliability.md): one run at a time per output folder (a file lock); files
that share a processor and parameters go to the processor's ``run_many`` together (the batched
path); workers die with the parent; a run's report and exports are written into their own
folder ``runs/<run_id>/`` and published by switching one symlink (``latest``), then the store
is appended in one DuckDB transaction. Whatever a previous, interrupted run left is cleaned or
repaired before a new one starts.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import ParameterError, SpecprocError
from ..core.provenance import now_iso, sha256_path, software_versions
from ..execute import finish
from .cache import ResultCache, cache_key
from .schema import OUTPUT_MARKER, Pipeline, Skipped, Task, canonical_json, load_pipeline

from ..execute import MAX_BATCH, MAX_BATCH_BYTES  # noqa: E402,F401 - documented here (docs/reliability.md)
#: Complete run folders kept in ``DIR/runs`` (the store keeps every run's rows).
KEEP_RUNS = 5
#: Seconds a run waits for another run on the same output folder before giving up.
LOCK_TIMEOUT_S = float(os.environ.get("SPECPROC_LOCK_TIMEOUT", "3600"))
MANIFEST = "MANIFEST.json"


@dataclass
class TaskRecord:
    """What happened to one input file."""

    task: Task
    result: object = None            # Result, or None when failed
    error: dict | None = None        # {"type", "error", "file"}
    cached: bool = False
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.result is not None


@dataclass
class RunSummary:
    """Outcome of :func:`run_pipeline`: records, claims, paths and timings."""

    run_id: str
    name: str
    out: str
    pipeline_path: str | None
    pipeline_sha256: str | None
    records: list[TaskRecord]
    skipped: list[Skipped]
    claims: list = field(default_factory=list)
    comparisons: list = field(default_factory=list)      # (id, Comparison)
    questions: list = field(default_factory=list)        # the pipeline's questions (conclusions)
    started: str = ""
    finished: str = ""
    elapsed_s: float = 0.0
    jobs: int | None = None
    scheduler: str | None = None
    software: dict = field(default_factory=dict)
    report_path: str | None = None
    store_path: str | None = None
    run_dir: str | None = None
    exports: dict = field(default_factory=dict)

    @property
    def results(self) -> list:
        return [r.result for r in self.records if r.ok]

    @property
    def failures(self) -> list[TaskRecord]:
        return [r for r in self.records if not r.ok]

    @property
    def missing(self) -> list[Skipped]:
        """Measurement entries whose files matched nothing (errors unless ``optional``)."""
        return [s for s in self.skipped if s.error]

    @property
    def n_cached(self) -> int:
        return sum(r.cached for r in self.records)

    @property
    def exit_code(self) -> int:
        """1 when any input failed, an entry matched no file, or nothing was processed; else 0."""
        return 1 if self.failures or self.missing or not self.records else 0

    def text(self) -> str:
        """Human summary (printed at the end of ``specproc run``)."""
        from collections import Counter

        lines = [f"{self.name}: {len(self.records)} file(s), {len(self.results)} ok, "
                 f"{len(self.failures)} failed, {self.n_cached} from cache, {len(self.skipped)} skipped "
                 f"in {self.elapsed_s:.1f} s"]
        if not self.records:
            lines.append("  ERROR: no input file was processed")
        for rec in self.failures:
            lines.append(f"  FAILED {rec.task.path}: {(rec.error or {}).get('error')}")
        for s in self.skipped:
            tag = "ERROR" if s.error else "skipped"
            lines.append(f"  {tag} measurements[{s.measurement}] ({s.sample}, {s.technique}): {s.reason}")
        counts = Counter(c.verdict for c in self.claims)
        if self.claims:
            lines.append("claims: " + ", ".join(f"{n} {v}" for v, n in counts.items()))
            for c in self.claims:
                lines.append(f"  [{c.verdict}] {c.id}: {c.value_text()} (rule {c.rule})")
        return "\n".join(lines)

    def view(self):
        """The neutral :class:`~specproc.report.RunView` the report consumes."""
        from ..report import RunView

        inputs, failures = [], []
        for rec in self.records:
            t, r = rec.task, rec.result
            reader = (r.inputs[0].get("reader") if r is not None and r.inputs else None) or t.reader
            inputs.append(dict(sample=t.sample, technique=t.technique, file=t.path, sha256=t.sha256, reader=reader,
                               processor=t.processor, params=t.params,
                               status=("cached" if rec.cached else f"ok ({rec.elapsed_s:.2f} s)") if rec.ok
                               else "FAILED"))
            if not rec.ok:
                failures.append(dict(rec.error or {}, sample=t.sample, technique=t.technique,
                                     processor=t.processor, file=(rec.error or {}).get("file") or t.path))
        info = {"pipeline": self.name, "pipeline file": self.pipeline_path, "pipeline sha256": self.pipeline_sha256,
                "run id": self.run_id, "started": self.started, "finished": self.finished,
                "run time": f"{self.elapsed_s:.2f} s", "files": len(self.records), "from cache": self.n_cached,
                "executor": self.scheduler or f"{self.jobs} local process(es)"}
        return RunView(title=self.name, results=self.results, failures=failures,
                       skipped=[dict(s.__dict__) for s in self.skipped], claims=list(self.claims),
                       comparisons=list(self.comparisons), inputs=inputs, software=dict(self.software), info=info,
                       questions=list(self.questions))


# --------------------------------------------------------------------------- executing files
def _error(exc: BaseException, task: Task) -> dict:
    if isinstance(exc, SpecprocError):
        return {"type": type(exc).__name__, "error": exc.reason, "file": exc.path or task.path}
    return {"type": type(exc).__name__, "error": f"{type(exc).__name__}: {exc}", "file": task.path}


def _outcomes(todo: list[Task], jobs: int, scheduler):
    """``(index, result, error dict, seconds)`` per task, from the one executor (here or on Dask)."""
    from ..execute import chunks, execute

    if scheduler:
        stream = _iter_dask(chunks(todo), scheduler)  # the same stacks as here: the same numbers
    else:
        stream = execute(todo, jobs, processes=True)
    for o in stream:
        yield o.task.index, o.result, (None if o.error is None else _error(o.error, o.task)), o.seconds


def _iter_dask(chunks, scheduler):
    from ..execute import execute_chunk
    from .distributed import run_tasks_dask

    for outs in run_tasks_dask(chunks, scheduler, execute_chunk):
        yield from outs


# --------------------------------------------------------------------------- output folder
#: a file in every run folder specproc is writing (``runs/.tmp-<id>/``): recovery deletes an
#: unfinished run folder only when it holds this marker (or nothing), i.e. when specproc wrote it
RUN_MARKER = ".specproc-run"
#: top-level names an output folder may hold (ours); temporaries start with "." and one of these
OUR_NAMES = ("runs", "cache", "exports", "latest", "report.html", "specproc.duckdb")
from .store import RUN_ID as _RUN_ID  # noqa: E402 - the one pattern of run folder names


def _is_run_folder(d: Path) -> bool:
    """True when ``d`` is a complete run folder specproc wrote (not a link; MANIFEST names it)."""
    if d.is_symlink() or not d.is_dir() or not _RUN_ID.match(d.name):
        return False
    try:
        with open(d / MANIFEST, "rb") as fh:
            doc = json.loads(fh.read(1 << 16))
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and doc.get("run_id") == d.name


def _ours_temporary(name: str) -> bool:
    """Names of the temporary files specproc writes at the top of an output folder."""
    return name.startswith((".latest.", ".specproc.duckdb.", ".specproc.lock")) or any(
        name.startswith(f".{n}.") and name.endswith(".tmp") for n in OUR_NAMES)


def foreign_entries(out: Path) -> list[str]:
    """Entries of an existing output folder that specproc cannot prove it wrote.

    A folder holding the ``.specproc-output`` marker is ours, but its ``runs`` and ``cache``
    must still be real folders (a link would make recovery delete in the link's target). A
    folder without the marker (an older specproc's layout) may hold only our names, cache
    entries named by their key, and complete run folders.
    """
    bad = [f"{n} is a symbolic link" for n in ("runs", "cache") if (out / n).is_symlink()]
    marker = out / OUTPUT_MARKER
    if bad or (marker.is_file() and not marker.is_symlink()):
        return bad
    for p in sorted(out.iterdir()):
        n = p.name
        if n == "cache" and p.is_dir():
            bad += [f"cache/{q.name}" for q in p.iterdir() if not _CACHE_NAME.match(q.name)]
        elif n == "runs" and p.is_dir():
            bad += [f"runs/{q.name}" for q in p.iterdir() if not _is_run_folder(q)]
        elif n not in OUR_NAMES and not _ours_temporary(n) and n != OUTPUT_MARKER \
                and not n.startswith("specproc.duckdb."):
            bad.append(n)
    return bad


_CACHE_NAME = re.compile(r"^\.?[0-9a-f]{64}\.(json|pkl)(\..*\.tmp)?$")


def _check_out(out: Path, pipeline: Pipeline) -> None:
    where = str(pipeline.path or "")
    if out.exists() and not out.is_dir():
        raise ParameterError(f"--out {out} exists and is not a folder", where)
    if out == pipeline.root:
        raise ParameterError(f"--out {out} is the data root; choose a folder outside the data", where)
    for t in pipeline.tasks:  # never write into input folders
        p = Path(t.path)
        folder = p if p.is_dir() else p.parent
        if out == folder or folder in out.parents:
            raise ParameterError(f"output folder {out} is inside the input folder {folder}; choose another --out",
                                 where)
    ours = {"runs", "cache", "exports", "latest", "report.html", "specproc.duckdb"}
    for p in pipeline.excluded:  # data files (not our outputs) inside --out: it is an input folder
        try:
            first = p.relative_to(out).parts[0]
        except ValueError:
            continue
        if first not in ours and not first.startswith((".", "specproc.duckdb")):
            raise ParameterError(f"output folder {out} is inside the input folder {p.parent} (it holds {p.name}); "
                                 "choose another --out", where)
    store = out / "specproc.duckdb"
    if store.is_dir() or (store.is_symlink() and not store.is_file()):
        raise ParameterError(f"store path {store} is a directory or a dangling link; move it away", where)
    if store.exists() and not store.is_file():
        raise ParameterError(f"store path {store} is not a regular file (a FIFO or device?); move it away", where)
    for name in ("report.html", "exports", "latest", "runs"):
        p = out / name
        if p.exists() and not p.is_symlink() and name in ("report.html", "latest") and p.is_dir():
            raise ParameterError(f"{p} is a directory; move it away", where)
    if out.is_dir():
        try:
            bad = foreign_entries(out)
        except OSError as exc:
            raise ParameterError(f"cannot inspect the output folder: {exc.strerror or exc}", str(out)) from None
        if bad:
            more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
            raise ParameterError(f"--out {out} holds files specproc did not write ({', '.join(bad[:5])}{more}); "
                                 "specproc only writes into (and cleans) its own output folders: choose a new or "
                                 "empty folder", where)


def _lock(out: Path, timeout: float, quiet: bool):
    from filelock import FileLock, Timeout

    lock = FileLock(str(out / ".specproc.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:  # (a subclass of OSError: caught first)
        if not quiet:
            print(f"specproc: waiting for another run writing to {out}", file=sys.stderr)
        try:
            lock.acquire(timeout=timeout)
        except Timeout:
            raise SpecprocError(f"another specproc run is writing to this folder (waited {timeout:g} s); "
                                "try again later or choose another --out", str(out)) from None
    except OSError as exc:  # e.g. a folder shared read-only
        raise ParameterError(f"cannot lock the output folder: {exc.strerror or exc}", str(out)) from None
    return lock


def _rm(p: Path) -> None:
    try:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()
    except FileNotFoundError:
        pass


def published_run(out: Path) -> str | None:
    """Run id of the published run (``out/latest``), or None."""
    link = Path(out) / "latest"
    try:
        target = os.readlink(link)
    except OSError:
        return None
    return Path(target).name if (Path(out) / target / MANIFEST).is_file() else None


def recover(out: Path) -> list[str]:
    """Repair an output folder after an interrupted run (call with the output lock held).

    Removes temporary files and incomplete run folders, moves an older layout (plain report.html, exports/) aside, and makes
    the store contain the published run (a kill between publishing and the store commit).
    Returns what was done (for tests and the log).
    """
    done = []
    out = Path(out)
    for p in out.iterdir():  # temporaries we wrote: files only, never a folder, never through a link
        if _ours_temporary(p.name) and not p.name.startswith(".specproc.lock") and (p.is_symlink() or p.is_file()):
            _rm(p)
            done.append(f"removed {p.name}")
    runs = out / "runs"
    if runs.is_dir() and not runs.is_symlink():
        for d in runs.iterdir():  # an unfinished run folder: ours only if it holds our marker (or nothing)
            if d.name.startswith(".tmp-") and d.is_dir() and not d.is_symlink() \
                    and ((d / RUN_MARKER).is_file() or not any(d.iterdir())):
                _rm(d)
                done.append(f"removed incomplete run {d.name}")
    n = ResultCache(out / "cache").clean_temporaries()
    if n:
        done.append(f"removed {n} cache temporaries")
    legacy = [p for p in (out / "report.html", out / "exports") if p.exists() and not p.is_symlink()]
    if legacy:  # outputs of an older specproc: keep them as a run folder, not mixed with new runs
        dest = runs / f"legacy-{time.strftime('%Y%m%dT%H%M%S')}"
        dest.mkdir(parents=True, exist_ok=True)
        for p in legacy:
            os.replace(p, dest / p.name)
        (dest / MANIFEST).write_text(json.dumps({"run_id": dest.name, "legacy": True}))
        done.append(f"moved old outputs to {dest.name}")
    from .store import sync_runs

    try:  # every complete run folder the store lacks (a failed store write, a store set aside)
        done += [f"added run {rid} to the store" for rid in sync_runs(out / "specproc.duckdb", runs)]
    except SpecprocError as exc:  # cannot write now (disk full, lock held): this run's own write says so
        done.append(f"store not synced: {exc.reason}")
    return done


def _prune(out: Path, keep: int, current: str) -> None:
    """Keep the last ``keep`` run folders; never remove one whose rows are not in the store."""
    from .store import prunable_runs, sync_runs

    db = out / "specproc.duckdb"
    try:
        sync_runs(db, out / "runs")  # e.g. the store was set aside during this run's write
        ok = prunable_runs(db, out / "runs")
    except SpecprocError as exc:
        warnings.warn(f"{exc}; no run folder pruned", RuntimeWarning, stacklevel=2)
        return
    runs = [d for d in (out / "runs").iterdir() if d.name != current and _is_run_folder(d)]
    runs.sort(key=lambda d: (d / MANIFEST).stat().st_mtime)
    for d in runs[:max(0, len(runs) - (keep - 1))]:
        if d.name in ok:
            _rm(d)


def _symlink_replace(target: str, link: Path) -> None:
    tmp = link.parent / f".latest.{uuid.uuid4().hex[:8]}"
    os.symlink(target, tmp)
    os.replace(tmp, link)


def _publish(out: Path, run_dir: Path) -> None:
    """Point ``out/latest`` at ``run_dir`` (one atomic rename) and keep the stable links."""
    _symlink_replace(os.path.relpath(run_dir, out), out / "latest")
    for name in ("report.html", "exports"):
        link = out / name
        want = os.path.join("latest", name)
        if not (link.is_symlink() and os.readlink(link) == want):
            if (run_dir / name).exists() or link.is_symlink():
                _symlink_replace(want, link)


# --------------------------------------------------------------------------- whole run
def run(pipeline: Pipeline, out: str | Path, jobs: int | None = None, scheduler=None, use_cache: bool = True,
        quiet: bool = True, report: bool = True, lock_timeout: float | None = None) -> RunSummary:
    """Run a loaded pipeline; see :func:`specproc.pipeline.run_pipeline`."""
    out = Path(out).resolve()
    _check_out(out, pipeline)
    try:
        out.mkdir(parents=True, exist_ok=True)
        marker = out / OUTPUT_MARKER
        if not marker.exists():
            marker.write_text("specproc output folder: pipelines never read files below it\n")
    except OSError as exc:
        raise ParameterError(f"cannot create output folder: {exc.strerror or exc}", str(out)) from None
    lock = _lock(out, LOCK_TIMEOUT_S if lock_timeout is None else lock_timeout, quiet)
    try:
        recover(out)
        return _run_locked(pipeline, out, jobs, scheduler, use_cache, quiet, report)
    finally:
        lock.release()


def _run_locked(pipeline, out, jobs, scheduler, use_cache, quiet, report) -> RunSummary:
    from ..evidence import compare_selected, evaluate_claims
    from ..execute import progress_bar

    t0 = time.perf_counter()
    started = now_iso()
    scheduler = scheduler if scheduler is not None else pipeline.config.scheduler
    jobs = jobs or pipeline.config.jobs or os.cpu_count() or 1
    cache = ResultCache(out / "cache")

    records: dict[int, TaskRecord] = {}
    todo: list[Task] = []
    for t in pipeline.tasks:
        try:
            t.sha256 = sha256_path(t.path)
        except OSError as exc:
            records[t.index] = TaskRecord(t, None, {"type": "ReaderError",
                                                    "error": f"cannot read: {exc.strerror or exc}", "file": t.path})
            continue
        t.key = cache_key(t)
        hit = cache.get(t.key) if use_cache else None
        if hit is not None:
            finish(t, hit)
            records[t.index] = TaskRecord(t, hit, None, True, 0.0)
        else:
            todo.append(t)

    # says the libraries are loading until the first input is done; rate and ETA from then on
    bar = progress_bar(len(pipeline.tasks), "specproc run", initial=len(records), file=sys.stderr, disable=quiet,
                       unit="file", auto=True)
    by_index = {t.index: t for t in todo}
    try:
        if todo:
            for idx, res, err, dt in _outcomes(todo, jobs, scheduler):
                t = by_index[idx]
                records[idx] = TaskRecord(t, res, err, False, dt)
                if res is not None:  # --no-cache recomputes, and the fresh results refresh the cache
                    try:
                        cache.put(t.key, res)
                    except TypeError as exc:  # something in the result cannot be stored safely
                        res.warnings.append(f"not cached: {exc}")
                    except OSError as exc:
                        warnings.warn(f"{out / 'cache'}: cannot write cache entry: {exc.strerror or exc}",
                                      RuntimeWarning, stacklevel=2)
                bar.update(1)
    finally:
        bar.close()

    ordered = [records[t.index] for t in pipeline.tasks]
    results = [r.result for r in ordered if r.ok]
    claims = evaluate_claims(pipeline.config.claims, results)
    comparisons = []
    for c in pipeline.config.comparisons:
        comparisons.append((c.id, compare_selected(results, c.quantity, c.compare.sample, c.compare.reference,
                                                   c.compare.op, c.missing)))
    psha = hashlib.sha256(pipeline.text.encode()).hexdigest() if pipeline.text else None
    run_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
    summary = RunSummary(
        run_id=run_id, name=pipeline.name, out=str(out),
        pipeline_path=str(pipeline.path) if pipeline.path else None, pipeline_sha256=psha,
        records=ordered, skipped=pipeline.skipped, claims=claims, comparisons=comparisons, started=started,
        questions=list(pipeline.config.questions),
        jobs=None if scheduler else jobs, scheduler=str(scheduler) if scheduler else None,
        software=software_versions())
    summary.run_dir = str(out / "runs" / run_id)
    summary.report_path = str(out / "report.html") if report else None
    summary.store_path = str(out / "specproc.duckdb")
    summary.finished = now_iso()
    summary.elapsed_s = time.perf_counter() - t0
    try:
        _write_outputs(summary, pipeline, report)
    except OSError as exc:
        raise SpecprocError(f"cannot write the outputs: {exc.strerror or exc} (the previous run's outputs are "
                            "unchanged)", getattr(exc, "filename", None) or str(out)) from None
    return summary


def _write_outputs(summary: RunSummary, pipeline: Pipeline, report: bool) -> None:
    """Run folder (report, exports, manifest last) -> publish -> store transaction."""
    from ..core.files import atomic_write_text
    from ..core.result import jsonable
    from ..evidence.questions import conclude
    from .store import run_tables, write_database, write_exports

    out = Path(summary.out)
    final = Path(summary.run_dir)
    work = final.parent / f".tmp-{final.name}"
    work.mkdir(parents=True)
    try:
        (work / RUN_MARKER).write_text("specproc run folder being written\n")
        run_report = str(final / "report.html") if report else None
        if report:
            from ..report import render_report

            render_report(summary.view(), summary.claims, work / "report.html", title=pipeline.name)
        tables = run_tables(summary, report_path=run_report)
        doc = {"run": tables["runs"].to_dict(orient="records")[0],
               "results": [dict(r.result.to_dict(), task=r.task.index, cached=r.cached) for r in summary.records
                           if r.ok],
               "failures": [dict(r.error or {}, task=r.task.index, sample=r.task.sample) for r in summary.failures],
               "skipped": [s.__dict__ for s in summary.skipped],
               "comparisons": [dict(c.to_dict(), id=cid) for cid, c in summary.comparisons],
               "claims": [c.to_dict() for c in summary.claims],
               "conclusions": [c.to_dict() for c in conclude(summary.questions, summary.claims)]}
        write_exports(work / "exports", tables, jsonable(doc))
        from ..export import export  # what scientists re-plot: curves, profiles, maps, histograms, tables

        export(summary.results, work / "exports" / "data")
        atomic_write_text(work / MANIFEST, json.dumps({"run_id": summary.run_id, "finished": summary.finished,
                                                       "pipeline": summary.name}))
        (work / RUN_MARKER).unlink()
        os.replace(work, final)
    except BaseException:
        _rm(work)
        raise
    _publish(out, final)
    summary.exports = {p.stem if p.suffix != ".json" else p.name: out / "exports" / p.name
                       for p in sorted((final / "exports").iterdir()) if p.suffix in (".csv", ".json")}
    try:
        write_database(Path(summary.store_path), tables)
    except ParameterError:
        raise
    except Exception as exc:  # disk full, lock held...: the run folder stays and the next run adds it
        why = exc.reason if isinstance(exc, SpecprocError) else \
            f"cannot write the results store ({type(exc).__name__}: {str(exc).splitlines()[0]})"
        raise SpecprocError(f"{why}; the report and exports of run {summary.run_id} are published and the next "
                            "run adds it to the store", summary.store_path) from None
    _prune(out, KEEP_RUNS, summary.run_id)
