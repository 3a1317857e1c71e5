"""Pipelines: a YAML file drives reading, processing, evidence, the results store and the report.

>>> from specproc.pipeline import run_pipeline
>>> summary = run_pipeline("pipelines/libh4_linbh.yaml", out="demo_output")   # doctest: +SKIP
>>> summary.report_path                                                      # doctest: +SKIP

See ``docs/pipelines.md`` for the YAML format and the store schema.
"""
from __future__ import annotations

import sys
from pathlib import Path

from .schema import (ComparisonSpec, MeasurementSpec, Pipeline, PipelineConfig, Skipped, Task, canonical_json,
                     load_pipeline)

__all__ = ["run_pipeline", "run_pipeline_cli", "load_pipeline", "PipelineConfig", "MeasurementSpec",
           "ComparisonSpec", "Pipeline", "Task", "Skipped", "RunSummary", "TaskRecord", "canonical_json"]


def __getattr__(name):
    if name in ("RunSummary", "TaskRecord"):
        from . import runner

        return getattr(runner, name)
    raise AttributeError(name)


def run_pipeline(path_or_config, out: str | Path, jobs: int | None = None, scheduler=None,
                 use_cache: bool = True, quiet: bool = True, lock_timeout: float | None = None):
    """Run a pipeline: process every file, evaluate claims, write store, exports and report.

    Parameters
    ----------
    path_or_config : str, Path, dict or PipelineConfig
        The pipeline YAML file (or an equivalent mapping; relative paths then resolve against
        the working directory).
    out : str or Path
        Output folder: ``report.html``, ``specproc.duckdb``, ``exports/``, ``cache/``.
        Nothing is ever written next to the inputs.
    jobs : int, optional
        Local worker processes (default: the YAML's ``jobs``, else all cores).
    scheduler : str or distributed.Client, optional
        Dask scheduler address ``tcp://HOST:PORT`` (default: the YAML's ``scheduler``);
        when given, files are processed on that cluster instead of local processes.
    use_cache : bool
        Reuse results cached in ``out/cache`` for unchanged inputs, parameters and code (fresh results
        are written to the cache either way).
    quiet : bool
        No progress bar.
    lock_timeout : float, optional
        Seconds to wait while another run writes to ``out`` (default ``$SPECPROC_LOCK_TIMEOUT``
        or 3600); then :class:`~specproc.core.errors.SpecprocError`.

    Returns
    -------
    RunSummary
        ``exit_code`` is 1 when any input failed or an entry matched no file (the others still
        ran), else 0.

    Raises
    ------
    ParameterError
        Invalid pipeline or output folder (nothing was run).
    SpecprocError
        The outputs could not be written (disk full, permissions); the previous run's outputs
        are left as they were.
    """
    from .runner import run

    # the output folder is excluded from the globs: a run never reads its own exports
    pipeline = load_pipeline(path_or_config, exclude=(Path(out).resolve(),))
    return run(pipeline, out, jobs=jobs, scheduler=scheduler, use_cache=use_cache, quiet=quiet,
               lock_timeout=lock_timeout)


def run_pipeline_cli(args) -> int:
    """``specproc run PIPELINE --out DIR [--jobs N] [--scheduler ADDR] [--no-cache] [--quiet]``.

    Prints a summary (unless quiet) and the report path as the last line on stdout. Exit codes:
    0 all processed; 1 a file failed, an entry matched no file, or the outputs could not be
    written; 2 an invalid pipeline or output folder (message on stderr, nothing run).
    """
    from ..core.errors import ParameterError, SpecprocError

    try:
        summary = run_pipeline(args.pipeline, args.out, jobs=getattr(args, "jobs", None),
                               scheduler=getattr(args, "scheduler", None),
                               use_cache=not getattr(args, "no_cache", False), quiet=getattr(args, "quiet", False))
    except ParameterError as exc:  # usage: bad pipeline / output folder, nothing ran
        print(f"specproc: error: {exc}", file=sys.stderr)
        return 2
    except SpecprocError as exc:
        print(f"specproc: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # workers stop with the run; the next run cleans up after this one
        print("specproc: interrupted (the next run cleans up what this one left)", file=sys.stderr)
        return 130
    if not getattr(args, "quiet", False):
        print(summary.text())
        print(f"store: {summary.store_path}\nexports: {Path(summary.out) / 'exports'}")
    sys.stdout.flush()
    print(summary.report_path)
    return summary.exit_code
