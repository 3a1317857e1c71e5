"""The one executor: input files → measurements → results, for every command and the pipeline.

A technique command (``specproc nmr FILES``) is a pipeline of one measurement group without a
store: both build :class:`Task` objects and call :func:`execute`, which defines once

* **parallel reading**: per-input work runs in worker processes (forked, dying with their
  parent) or threads, in input order;
* **preprocessing**: :meth:`Processor.preprocess` where each input is read; processors without a
  batched path also :meth:`~Processor.run` there (all per-file work in parallel);
  :meth:`Processor.warm_up` overlaps the reading;
* **the stack**: a processor's own ``run_many`` (the batch engine) gets a group's prepared
  inputs together, in chunks of at most :data:`MAX_BATCH` inputs and :data:`MAX_BATCH_BYTES`
  of input (bounded memory on huge globs);
* **failure isolation**: a file that cannot be read or processed is an :class:`Outcome` with its
  :class:`~specproc.core.errors.SpecprocError`; a ``run_many`` that fails as a whole is re-run
  one input at a time, so one bad file never fails the others;
* **labels**: what the caller says about a measurement (``sample``, ``metadata``) is applied
  before processing and to the result.

It sits above core, io and plugins, beside the command runner; the pipeline adds the cache,
Dask, the store and the report around it.
"""
from __future__ import annotations

import functools
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from .core.errors import ProcessingError, ReaderError, SpecprocError

__all__ = ["Task", "Outcome", "execute", "execute_chunk", "chunks", "parallel_map", "worker_init",
           "MAX_BATCH", "MAX_BATCH_BYTES", "PROCESS_MIN", "progress_bar", "LOADING"]

#: Most inputs handed to one ``run_many`` call, and most input bytes (a stack is held in memory).
MAX_BATCH = 256
MAX_BATCH_BYTES = 256 << 20
#: from this many inputs on, inputs of a batched processor are read in worker processes
#: (parsing holds the GIL); fewer are read in threads (file I/O and numpy's parsers release it)
PROCESS_MIN = 64


@dataclass
class Task:
    """One input file to process (picklable: sent to worker processes and Dask workers)."""

    index: int
    measurement: int             # index of the measurement group (a pipeline entry; 0 for a command)
    sample: str | None           # None: keep the sample name the file gives
    technique: str
    path: str                    # absolute
    processor: str
    params: dict                 # validated, canonical (JSON-able) parameters
    reader: str | None = None
    reader_options: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)   # labels set on the measurement (JSON-able)
    sha256: str = ""
    key: str = ""                # cache key

    def group(self) -> str:
        """Inputs that share this key go to one ``run_many``."""
        from .core.result import jsonable

        import json

        return json.dumps(jsonable([self.processor, self.params, self.reader, self.reader_options, self.technique,
                                    self.metadata]), sort_keys=True, separators=(",", ":"))


@dataclass
class Outcome:
    """What happened to one task: a Result, or the error naming the file."""

    task: Task
    result: object = None
    error: SpecprocError | None = None
    seconds: float = 0.0


# --------------------------------------------------------------------------- one input
def _as_error(exc: BaseException, task: Task, stage: str) -> SpecprocError:
    if isinstance(exc, SpecprocError):
        if exc.path is None:
            exc.path = task.path
        return exc
    kind = ReaderError if stage == "read" else ProcessingError
    return kind(f"unexpected {type(exc).__name__}: {exc}", task.path)


def _read(task: Task, read: Callable | None = None):
    if read is None:
        from .io import read
    m = read(task.path, reader=task.reader, **task.reader_options) if (task.reader or task.reader_options) \
        else read(task.path)
    if task.sample is not None or task.metadata:
        if task.sample is not None:
            m.attrs["sample"] = task.sample      # the caller's labels win over the file's
        m.attrs.update(task.metadata)
    return m


def finish(task: Task, res, provenance: dict | None = None):
    """Apply the task's labels to its result (after processing, and again after a cache hit)."""
    if task.sample is not None:
        res.sample = task.sample
    if task.metadata:
        res.meta = {**(res.meta or {}), **task.metadata}
    res.native = None        # library objects (lmfit ModelResult) are neither sent back nor cached
    if not res.inputs and provenance:
        res.inputs = [dict(provenance)]
    return res


def _provenance(x) -> dict | None:
    attrs = getattr(x, "attrs", None)
    if attrs is None:
        attrs = getattr(getattr(x, "measurement", None), "attrs", None) or {}
    return attrs.get("provenance")


def prepare(task: Task, params=None, run: bool = False, read: Callable | None = None):
    """Read one input, label it and, with ``params``, preprocess it (and ``run`` it when asked).

    Returns the measurement, the prepared input, the finished Result, or the SpecprocError
    naming the file: it never raises (a reader or processor bug is reported for that file).
    Module-level so it pickles to worker processes.
    """
    try:
        m = _read(task, read)
    except Exception as exc:
        return _as_error(exc, task, "read")
    if params is None:
        return m
    try:
        from . import plugins

        proc = plugins.get("processors", task.processor)
        x = proc.preprocess(m, params)
        if not run:
            return x
        res = proc.run(x, params)
        return _checked(res, task, _provenance(m))
    except Exception as exc:
        return _as_error(exc, task, "process")


def _checked(res, task: Task, provenance):
    from .core.result import Result

    if isinstance(res, Result):
        return finish(task, res, provenance)
    if isinstance(res, BaseException):
        return _as_error(res, task, "process")
    return SpecprocError(f"processor {task.processor!r} returned {type(res).__name__}, not a Result", task.path)


def _stack(proc, params, tasks: list[Task], items: list) -> list:
    """``run_many`` over the prepared inputs of one group; one input at a time if it fails whole."""
    ok = [i for i, x in enumerate(items) if not isinstance(x, BaseException)]
    out = list(items)
    got = None
    if len(ok) > 1:
        try:
            got = proc.run_many([items[i] for i in ok], params)
            if not isinstance(got, list) or len(got) != len(ok):
                raise SpecprocError(f"processor {proc.name!r}: run_many returned {type(got).__name__} "
                                    f"instead of a list of {len(ok)} results")
        except Exception:  # a whole-stack failure (a bug, one input's error raised): isolate the culprit
            got = None
    if got is None:
        got = []
        for i in ok:
            try:
                got.append(proc.run(items[i], params))
            except Exception as exc:
                got.append(exc)
    for i, r in zip(ok, got):
        out[i] = _checked(r, tasks[i], _provenance(items[i]))
    return out


# --------------------------------------------------------------------------- workers
def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(1)


def worker_init(parent: int) -> None:
    """Make a worker die with its parent: SIGKILL on parent death (Linux), else a watchdog thread."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal

            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
        except Exception:  # pragma: no cover - no prctl: the watchdog below still works
            pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="specproc-parent-watch").start()


def _can_fork() -> bool:
    import multiprocessing as mp

    return "fork" in mp.get_all_start_methods() and (os.cpu_count() or 1) > 1


def _start_meanwhile(fn):
    if fn is None:
        return None

    def run():
        try:
            fn()
        except Exception:  # noqa: S110 - imports/caches only; a real failure recurs where it matters
            pass

    t = threading.Thread(target=run, name="specproc-warm-up", daemon=True)
    t.start()
    return t


class _Pool:
    """The workers of one :func:`execute` call: processes (forked, dying with the parent),
    threads, or none (``jobs == 1``)."""

    def __init__(self, jobs: int, processes: bool):
        self.ex = None
        self.processes = processes and jobs > 1
        if jobs > 1:
            if self.processes:
                import multiprocessing as mp
                from concurrent.futures import ProcessPoolExecutor

                self.ex = ProcessPoolExecutor(jobs, mp_context=mp.get_context("fork"), initializer=worker_init,
                                              initargs=(os.getpid(),))
            else:
                from concurrent.futures import ThreadPoolExecutor

                self.ex = ThreadPoolExecutor(jobs)

    def submit(self, fn, items: list) -> Callable[[], list]:
        """Start ``fn`` on every item; return a function that waits for the results in order."""
        if self.ex is None:
            return lambda: [fn(x) for x in items]
        futs = [self.ex.submit(fn, x) for x in items]

        def wait():
            out = []
            for f, x in zip(futs, items):
                try:
                    out.append(f.result())
                except Exception as exc:  # the worker died (killed, out of memory): that input failed
                    task = x if isinstance(x, Task) else None
                    out.append(SpecprocError(f"worker failed: {type(exc).__name__}: {exc}",
                                             task.path if task else None))
            return out

        return wait

    def close(self):
        if self.ex is not None:
            self.ex.shutdown(wait=True, cancel_futures=True)


def parallel_map(fn: Callable, items: list, jobs: int | None = None, processes: bool | None = None,
                 meanwhile: Callable[[], None] | None = None) -> list:
    """``[fn(x) for x in items]`` in parallel, in order (``fn`` must never raise).

    Worker processes (forked; dying with this process) when ``processes`` is true, or by default
    from :data:`PROCESS_MIN` items on; threads otherwise. ``meanwhile`` runs in a thread of this
    process once the workers are forked (a fork must not copy a thread in the middle of an import).
    """
    n = len(items)
    workers = max(1, min(jobs or 8, n, 32))
    if processes is None:
        processes = n >= PROCESS_MIN
    processes = processes and workers > 1 and _can_fork()
    if processes:
        workers = min(workers, os.cpu_count() or 1)
    if not items:
        return []
    out = []
    if processes:  # the first item here: its imports happen once and are inherited by the workers
        out.append(fn(items[0]))
        items = items[1:]
    pool = _Pool(workers, processes)
    try:
        wait = pool.submit(fn, items)
        helper = _start_meanwhile(meanwhile)
        out += wait()
        if helper is not None:
            helper.join()
    finally:
        pool.close()
    return out


# --------------------------------------------------------------------------- the executor
def chunks(tasks: list[Task], jobs: int = 1) -> list[list[Task]]:
    """Tasks grouped by :meth:`Task.group`, each group cut into chunks of at most
    :data:`MAX_BATCH` inputs and :data:`MAX_BATCH_BYTES` of input (and into about ``jobs``
    chunks, for callers that spread chunks over workers), in first-seen order."""
    from .io import input_size

    groups: dict[str, list[Task]] = {}
    for t in tasks:
        groups.setdefault(t.group(), []).append(t)
    out = []
    for g in groups.values():
        n_chunks = max(1, min(len(g), jobs), -(-len(g) // MAX_BATCH))
        size = -(-len(g) // n_chunks)
        for i in range(0, len(g), size):
            chunk, nbytes = [], 0
            for t in g[i:i + size]:
                try:
                    b = input_size(t.path, stop_after=MAX_BATCH_BYTES)
                except OSError:
                    b = 0
                if chunk and nbytes + b > MAX_BATCH_BYTES:
                    out.append(chunk)
                    chunk, nbytes = [], 0
                chunk.append(t)
                nbytes += b
            out.append(chunk)
    return out


def _processor(task: Task):
    """(processor, validated params, batched?) of a task, or the error that stops its group."""
    from . import plugins
    from .core.processor import Processor

    try:
        proc = plugins.get("processors", task.processor)
        params = proc.validate(task.params)
    except Exception as exc:
        return _as_error(exc, task, "process")
    return proc, params, type(proc).run_many is not Processor.run_many


def _run_chunk(chunk: list[Task], pool: _Pool | None, read=None) -> Callable[[], list[Outcome]]:
    """Start one chunk's per-input work; return a function finishing it (the stack) in order."""
    t0 = time.perf_counter()
    got = _processor(chunk[0])
    if isinstance(got, SpecprocError):
        return lambda: [Outcome(t, None, _as_error(got, t, "process")) for t in chunk]
    proc, params, batched = got
    # a processor without a batched path runs each input where it was read: in a worker process,
    # or here; never in threads (CPU-bound fits in 8 threads fought over the GIL and BLAS's threads)
    run_there = not batched and (pool is None or pool.processes)
    fn = functools.partial(prepare, params=params, run=run_there, read=read)
    wait = pool.submit(fn, chunk) if pool is not None else (lambda: [fn(t) for t in chunk])

    def finish_chunk() -> list[Outcome]:
        items = wait()
        if not run_there:
            items = _stack(proc, params, chunk, items)
        dt = (time.perf_counter() - t0) / max(len(chunk), 1)
        return [Outcome(t, None, x, dt) if isinstance(x, BaseException) else Outcome(t, x, None, dt)
                for t, x in zip(chunk, items)]

    return finish_chunk


def execute_chunk(chunk: list[Task]) -> list[Outcome]:
    """One chunk in this process (a Dask worker's unit of work); never raises."""
    return _run_chunk(chunk, None)()


def execute(tasks: list[Task], jobs: int | None = None, read: Callable | None = None,
            processes: bool | None = None) -> Iterator[Outcome]:
    """Run ``tasks`` here (worker processes or threads); yield one :class:`Outcome` per task.

    Chunks are worked one after the other with the next one's reading already started, so the
    workers stay busy across small groups while at most two chunks are held in memory.

    ``processes``: worker processes (forked) or threads. By default processes from
    :data:`PROCESS_MIN` inputs on; the pipeline asks for them whenever there is more than one
    input (its processors' per-file work is CPU-bound and it runs in its own process), while an
    interactive caller (a notebook, a test) keeps threads for small batches: forking a process
    that runs other threads can copy a lock held by one of them.
    """
    jobs = max(1, jobs or os.cpu_count() or 1)
    todo = chunks(tasks)
    if not todo:
        return
    if processes is None:
        processes = len(tasks) >= PROCESS_MIN
    processes = bool(processes) and _can_fork() and jobs > 1 and read is None and len(tasks) > 1
    pool = _Pool(min(jobs, len(tasks), 32), processes)
    helper = None
    try:
        pending = _run_chunk(todo[0], pool, read)
        if processes:  # warm-up of batched processors overlaps the reading, after the fork
            procs = {c[0].processor: c for c in todo}
            warm = [(g[0], g[1], len(c)) for c in procs.values()
                    if isinstance(g := _processor(c[0]), tuple) and g[2]]
            helper = _start_meanwhile((lambda: [p.warm_up(q, n) for p, q, n in warm]) if warm else None)
        for nxt in todo[1:]:
            following = _run_chunk(nxt, pool, read)
            yield from pending()
            pending = following
        yield from pending()
    finally:
        pool.close()
        if helper is not None:
            helper.join()


# ------------------------------------------------------------------ progress
#: what the bar says until the first input is done (imports, compiled kernels, the first reads)
LOADING = "loading libraries and reading the first files…"


@functools.lru_cache(maxsize=None)
def _bar_class(auto: bool):
    """A tqdm subclass whose timing starts when the first input is done: until then it says the
    libraries are loading (the first file also pays for importing xarray/scipy, compiling the
    kernels and starting workers, so a rate measured from it gives an ETA tens of times too long);
    from the second input on, the rate and ETA are those of the steady work."""
    from tqdm.auto import tqdm as auto_tqdm
    from tqdm.std import EMA
    from tqdm.std import tqdm as std_tqdm

    base = auto_tqdm if auto else std_tqdm

    class LoadingBar(base):
        def __init__(self, *args, **kwargs):
            self._steady_format = kwargs.pop("bar_format", None)
            total, initial = kwargs.get("total"), kwargs.get("initial") or 0
            self._loading, self._steady_t = not (total is not None and initial >= total), None
            if self._loading:           # (nothing left to do, e.g. every result cached: no loading)
                kwargs["bar_format"] = "{desc}: {n_fmt}/{total_fmt} [{elapsed}, " + LOADING + "]"
            else:
                kwargs["bar_format"] = self._steady_format
            super().__init__(*args, **kwargs)

        def close(self):
            if not self.disable and self._loading:   # closed before any input was done
                self._loading = False
                self.bar_format = self._steady_format
            super().close()

        @property
        def format_dict(self):
            d = super().format_dict
            if d.get("rate") is None and self._steady_t is not None:   # no smoothed rate: the mean since
                el = self._time() - self._steady_t                     # the first input, not since start
                d["rate"] = (self.n - self.initial) / el if el > 0 and self.n > self.initial else None
            return d

        def update(self, n=1):
            if self.disable or not self._loading or not n:
                return super().update(n)
            # the first input is done: count it, then measure rate and ETA from now on ("?" until
            # the next one; tqdm's smoothed rate is over the updates since, and its fallback counts
            # from ``initial``), so the loading time never enters the estimate; elapsed stays the total
            self._loading = False
            self.n += n
            self.initial = self.n
            self.last_print_t = self._steady_t = self._time()
            self.last_print_n = self.n
            self._ema_dn, self._ema_dt = EMA(self.smoothing), EMA(self.smoothing)
            self.bar_format = self._steady_format
            self.refresh(lock_args=self.lock_args)
            return True

    return LoadingBar


def progress_bar(total: int, desc: str | None = None, *, initial: int = 0, disable: bool = False, file=None,
                 unit: str = "file", leave: bool = True, auto: bool = False):
    """The progress bar of a run over ``total`` inputs (tqdm), the same for the commands and the
    pipeline: it says the libraries are loading until the first input is done, and only then shows
    a rate and an ETA (measured without the loading time). ``auto``: tqdm.auto (notebooks)."""
    return _bar_class(bool(auto))(total=total, desc=desc, initial=initial, disable=disable,
                                  file=file if file is not None else sys.stderr, unit=unit, leave=leave)
