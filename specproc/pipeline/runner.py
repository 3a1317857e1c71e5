"""Pipeline runner: tasks -> (cache | local processes | Dask) -> claims -> store -> report."""
from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
import sys
import time
import uuid
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import ParameterError, SpecprocError
from ..core.provenance import now_iso, sha256_path, software_versions
from .cache import ResultCache, cache_key
from .schema import Pipeline, Skipped, Task, load_pipeline


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
    started: str = ""
    finished: str = ""
    elapsed_s: float = 0.0
    jobs: int | None = None
    scheduler: str | None = None
    software: dict = field(default_factory=dict)
    report_path: str | None = None
    store_path: str | None = None
    exports: dict = field(default_factory=dict)

    @property
    def results(self) -> list:
        return [r.result for r in self.records if r.ok]

    @property
    def failures(self) -> list[TaskRecord]:
        return [r for r in self.records if not r.ok]

    @property
    def n_cached(self) -> int:
        return sum(r.cached for r in self.records)

    @property
    def exit_code(self) -> int:
        return 1 if self.failures else 0

    def text(self) -> str:
        """Human summary (printed at the end of ``specproc run``)."""
        from collections import Counter

        lines = [f"{self.name}: {len(self.records)} file(s), {len(self.results)} ok, "
                 f"{len(self.failures)} failed, {self.n_cached} from cache, {len(self.skipped)} skipped "
                 f"in {self.elapsed_s:.1f} s"]
        for rec in self.failures:
            lines.append(f"  FAILED {rec.task.path}: {(rec.error or {}).get('error')}")
        for s in self.skipped:
            lines.append(f"  skipped measurements[{s.measurement}] ({s.sample}, {s.technique}): {s.reason}")
        counts = Counter(c.verdict for c in self.claims)
        if self.claims:
            lines.append("claims: " + ", ".join(f"{n} {v}" for v, n in counts.items()))
            for c in self.claims:
                lines.append(f"  [{c.verdict}] {c.id}: {c.value_text()} (rule {c.rule})")
        return "\n".join(lines)


# --------------------------------------------------------------------------- one task
def execute_task(task: Task) -> tuple[int, object, dict | None, float]:
    """Read and process one file; never raises (errors come back as a dict).

    Module-level so it pickles to worker processes and Dask workers.
    """
    from .. import plugins
    from ..core.result import Result
    from ..io import read

    t0 = time.perf_counter()
    try:
        meas = read(task.path, reader=task.reader, **task.reader_options)
        # the pipeline's sample name wins over whatever the file says
        meas.attrs["sample"] = task.sample
        proc = plugins.get("processors", task.processor)
        res = proc(meas, task.params)
        if not isinstance(res, Result):
            raise SpecprocError(f"processor {task.processor!r} returned {type(res).__name__}, not a Result",
                                task.path)
        res.sample = task.sample
        res.native = None        # library objects (lmfit ModelResult) need not pickle
        if not res.inputs:
            res.inputs = [dict(meas.attrs.get("provenance", {}))]
        return task.index, res, None, time.perf_counter() - t0
    except SpecprocError as exc:
        err = {"type": type(exc).__name__, "error": exc.reason, "file": exc.path or task.path}
    except Exception as exc:  # a processor bug on one file must not stop the batch
        err = {"type": type(exc).__name__, "error": f"{type(exc).__name__}: {exc}", "file": task.path}
    return task.index, None, err, time.perf_counter() - t0


def _mp_context():
    # fork: workers inherit the parent's plugin registry (including plugins registered at run
    # time, e.g. in tests or notebooks) and start in milliseconds; elsewhere the platform default.
    return mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()


def _iter_local(tasks: list[Task], jobs: int):
    if jobs <= 1 or len(tasks) <= 1:
        for t in tasks:
            yield execute_task(t)
        return
    with ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=_mp_context()) as ex:
        futs = [ex.submit(execute_task, t) for t in tasks]
        for f in as_completed(futs):
            try:
                yield f.result()
            except Exception as exc:  # worker died (e.g. killed): report, keep going
                idx = futs.index(f)
                yield tasks[idx].index, None, {"type": type(exc).__name__,
                                               "error": f"worker failed: {exc}", "file": tasks[idx].path}, 0.0


# --------------------------------------------------------------------------- whole run
def run(pipeline: Pipeline, out: str | Path, jobs: int | None = None, scheduler=None, use_cache: bool = True,
        quiet: bool = True, report: bool = True) -> RunSummary:
    """Run a loaded pipeline; see :func:`specproc.pipeline.run_pipeline`."""
    from tqdm.auto import tqdm

    from ..evidence import compare, evaluate_claims

    t0 = time.perf_counter()
    started = now_iso()
    out = Path(out).resolve()
    for t in pipeline.tasks:  # never write into input folders
        p = Path(t.path)
        folder = p if p.is_dir() else p.parent
        if out == folder or folder in out.parents:
            raise ParameterError(f"output folder {out} is inside the input folder {folder}; choose another --out",
                                 str(pipeline.path or ""))
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ParameterError(f"cannot create output folder: {exc}", str(out)) from None
    scheduler = scheduler if scheduler is not None else pipeline.config.scheduler
    jobs = jobs or pipeline.config.jobs or os.cpu_count() or 1
    cache = ResultCache(out / "cache")

    records: dict[int, TaskRecord] = {}
    todo: list[Task] = []
    for t in pipeline.tasks:
        try:
            t.sha256 = sha256_path(t.path)
        except OSError as exc:
            records[t.index] = TaskRecord(t, None, {"type": "ReaderError", "error": f"cannot read: {exc}",
                                                    "file": t.path})
            continue
        t.key = cache_key(t)
        hit = cache.get(t.key) if use_cache else None
        if hit is not None:
            records[t.index] = TaskRecord(t, hit, None, True, 0.0)
        else:
            todo.append(t)

    bar = tqdm(total=len(pipeline.tasks), initial=len(records), file=sys.stderr, disable=quiet,
               desc="specproc run", unit="file")
    by_index = {t.index: t for t in todo}
    try:
        if todo:
            if scheduler:
                from .distributed import run_tasks_dask

                stream = run_tasks_dask(todo, scheduler, execute_task)
            else:
                stream = _iter_local(todo, jobs)
            for idx, res, err, dt in stream:
                t = by_index[idx]
                records[idx] = TaskRecord(t, res, err, False, dt)
                if res is not None and use_cache:
                    try:
                        cache.put(t.key, res)
                    except Exception as exc:  # an unpicklable result only loses caching
                        res.warnings.append(f"not cached: {type(exc).__name__}: {exc}")
                bar.update(1)
    finally:
        bar.close()

    ordered = [records[t.index] for t in pipeline.tasks]
    results = [r.result for r in ordered if r.ok]
    claims = evaluate_claims(pipeline.config.claims, results)
    comparisons = []
    for c in pipeline.config.comparisons:
        comparisons.append((c.id, compare(results, c.quantity, c.compare.sample, c.compare.reference,
                                          c.compare.op, c.missing)))
    psha = hashlib.sha256(pipeline.text.encode()).hexdigest() if pipeline.text else None
    summary = RunSummary(
        run_id=time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8], name=pipeline.name, out=str(out),
        pipeline_path=str(pipeline.path) if pipeline.path else None, pipeline_sha256=psha,
        records=ordered, skipped=pipeline.skipped, claims=claims, comparisons=comparisons, started=started,
        jobs=None if scheduler else jobs, scheduler=str(scheduler) if scheduler else None,
        software=software_versions())
    summary.report_path = str(out / "report.html") if report else None
    summary.store_path = str(out / "specproc.duckdb")
    summary.finished = now_iso()
    summary.elapsed_s = time.perf_counter() - t0
    _write_outputs(summary, pipeline, report)
    return summary


def _write_outputs(summary: RunSummary, pipeline: Pipeline, report: bool) -> None:
    from .store import run_tables, write_database, write_exports

    out = Path(summary.out)
    if report:
        from ..report import render_report

        render_report(summary, summary.claims, summary.report_path, title=pipeline.name)
    tables = run_tables(summary)
    write_database(Path(summary.store_path), tables)
    doc = {"run": tables["runs"].to_dict(orient="records")[0],
           "results": [dict(r.result.to_dict(), task=r.task.index, cached=r.cached) for r in summary.records
                       if r.ok],
           "failures": [dict(r.error or {}, task=r.task.index, sample=r.task.sample) for r in summary.failures],
           "skipped": [s.__dict__ for s in summary.skipped],
           "comparisons": [dict(c.to_dict(), id=cid) for cid, c in summary.comparisons],
           "claims": [c.to_dict() for c in summary.claims]}
    from ..core.result import jsonable

    summary.exports = write_exports(out / "exports", tables, jsonable(doc))


def run_file(path_or_config, out, jobs=None, scheduler=None, use_cache=True, quiet=True) -> RunSummary:
    return run(load_pipeline(path_or_config), out, jobs=jobs, scheduler=scheduler, use_cache=use_cache,
               quiet=quiet)
