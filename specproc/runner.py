"""The one technique CLI runner: a technique's ``cli.py`` is its arguments and the JSON of one entry.

Everything else every ``specproc <technique> PATH...`` command needs is here, once: one
validation of the parameters (usage errors exit 2 with a message), the inputs handed to the one
executor (:mod:`specproc.execute`, shared with the pipeline: parallel reading, preprocessing,
the processor's ``run_many``, failures isolated per file), each failure as ``{"file", "error"}``,
one JSON document (``--json``) or a readable table, ``--report FILE.html`` with failures listed,
progress on long work, and the exit code (0 every input succeeded, 1 any input failed, 2 usage
error).

A technique's options are generated from its processor's ``Params``
(:func:`specproc.cliargs.add_params_arguments`, re-exported here) and reach the processor by field
name without being listed again.

Techniques import this module, never :mod:`specproc.cli` (the top-level CLI imports techniques).
It sits above core, io, plugins and report (it uses all of them), beside the CLI.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable

__all__ = ["add_common_arguments", "add_params_arguments", "run_technique", "emit", "floats_arg", "region_arg",
           "names_arg", "peaks_arg", "positive_float_arg", "number_arg", "UsageError"]

#: above this many inputs a progress bar is shown on stderr (when it is a terminal)
PROGRESS_MIN = 20


class UsageError(Exception):
    """A usage error found after parsing (exit code 2)."""


# ------------------------------------------------------------------ argument types
# one of each, in specproc.cliargs (which also generates a technique's options from its Params)
from .cliargs import (add_params_arguments, floats_arg, names_arg, number_arg,  # noqa: E402
                      params_from_args, peaks_arg, region_arg)

#: a finite number > 0 (wavelengths, radii, lengths)
positive_float_arg = number_arg(minimum=0, strict=True)


def add_common_arguments(p: argparse.ArgumentParser, what: str = "input files") -> None:
    """``PATH...``, ``--json``, ``--report FILE.html``, ``--jobs N`` (every technique command)."""
    p.add_argument("paths", nargs="+", metavar="PATH", help=what)
    p.add_argument("--json", action="store_true", help="print one JSON document (a list of per-file entries)")
    p.add_argument("--report", default=None, metavar="FILE.html",
                   help="write the self-contained HTML report of these files (failures listed)")
    p.add_argument("--jobs", "-j", type=int, default=None, metavar="N",
                   help="threads reading files (default: up to 8)")


# ------------------------------------------------------------------ output
def _scalar(v) -> bool:
    return v is None or isinstance(v, (str, int, float, bool))


def emit(entries: list[dict], as_json: bool, rows: Callable[[dict], list[dict]] | None = None,
         stream=None) -> None:
    """Print per-file entries as one JSON document, or as a readable table (text)."""
    from .core.result import jsonable

    stream = stream or sys.stdout
    if as_json:
        # one entry per line: json's C encoder (``indent`` would select its pure-Python encoder,
        # ~8x slower for 1,000 entries), still a valid document that diff and grep read line-wise
        enc = json.JSONEncoder(allow_nan=False)
        doc = jsonable(entries)
        stream.write("[\n" + ",\n".join(enc.encode(e) for e in doc) + "\n]\n" if doc else "[]\n")
        return
    import pandas as pd

    table, failures, notes = [], [], []
    for e in entries:
        if "error" in e:
            failures.append(e)
            continue
        got = rows(e) if rows else None
        if not got:
            got = [{k: v for k, v in e.items() if _scalar(v) and k != "file"}]
        for r in got:
            table.append({"file": os.path.basename(str(e.get("file", ""))) or e.get("file"), **r})
        for w in e.get("warnings") or []:
            notes.append(f"  {e.get('file')}: {w}")
    if table:
        from .core.numbers import display_table

        # one display rule (core.numbers): values ± errors, natural units (nm, GPa), JSON unchanged
        with pd.option_context("display.max_columns", 30, "display.width", 200, "display.max_colwidth", 40,
                               "display.float_format", lambda v: f"{v:.6g}"):
            print(display_table(pd.DataFrame(table)).to_string(index=False), file=stream)
    if notes:
        print("\nwarnings:", file=stream)
        print("\n".join(notes), file=stream)
    if failures:
        print(f"\nfailed ({len(failures)}):", file=stream)
        for e in failures:
            print(f"  {e['file']}: {e['error']}", file=stream)


def _error_text(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason if reason else exc)


# ------------------------------------------------------------------ the runner
class _NoBar:
    def update(self, *_):
        pass

    def close(self):
        pass


def _progress(n: int, what: str, enabled: bool = True):
    if not enabled or n < PROGRESS_MIN or not sys.stderr.isatty():
        return _NoBar()
    from .execute import progress_bar

    return progress_bar(n, what, unit="file", file=sys.stderr, leave=False)


#: how deep a folder given on the command line is searched for experiments
FOLDER_DEPTH = 3


def expand_folders(paths: list[str], technique: str, prog: str = "specproc") -> list[str]:
    """Each folder that no reader reads as a whole but that holds inputs of ``technique`` (e.g.
    ``specproc nmr data/`` with Bruker experiments ``data/<name>/<expno>``) becomes those inputs,
    sorted, said on stderr; other paths stay as given (an unreadable one fails with its reason).
    The search never follows links to folders and stops :data:`FOLDER_DEPTH` levels down."""
    from .core.errors import SpecprocError
    from .io import guess_reader

    def reader_of(p: str):
        try:
            return guess_reader(p)
        except SpecprocError:
            return None

    out = []
    for path in paths:
        if not os.path.isdir(path) or reader_of(path) is not None:
            out.append(path)
            continue
        found = []
        top = path.rstrip(os.sep).count(os.sep)
        for root, dirs, files in os.walk(path, followlinks=False):
            dirs.sort()
            keep = []
            for d in dirs:
                q = os.path.join(root, d)
                r = None if d.startswith(".") else reader_of(q)
                if r is not None and r.technique == technique:
                    found.append(q)               # an experiment folder: read as a whole
                elif not d.startswith(".") and q.count(os.sep) - top < FOLDER_DEPTH:
                    keep.append(d)
            dirs[:] = keep
            for f in sorted(files):
                q = os.path.join(root, f)
                r = None if f.startswith(".") else reader_of(q)
                if r is not None and r.technique == technique and not _read_with_folder(r, root):
                    found.append(q)
        if found:
            print(f"{prog}: {path}: {len(found)} {technique} input(s) inside", file=sys.stderr)
            out += sorted(found)
        else:
            out.append(path)
    return out


def _read_with_folder(reader, folder: str) -> bool:
    """True when ``reader`` reads ``folder`` as a whole (a Bruker ``fid`` belongs to its experiment)."""
    try:
        return bool(reader.guess_can_open(__import__("pathlib").Path(folder)))
    except Exception:
        return False


def run_technique(args, *, processor: str, params: dict | None = None, entry: Callable, title: str,
                  rows: Callable[[dict], list[dict]] | None = None, read=None) -> int:
    """Run one technique command over ``args.paths``; return the exit code.

    Parameters
    ----------
    args : argparse.Namespace
        With ``paths``, ``json``, ``report`` and ``jobs`` (:func:`add_common_arguments`).
    processor : str
        Registered processor name (``"ftir.fit_bands"``).
    params : dict, optional
        Processor parameters the technique builds itself (``None`` values are dropped, so the
        processor's defaults apply), over those of the options generated from the ``Params``
        (:func:`specproc.cliargs.add_params_arguments`, read from ``args`` by
        :func:`~specproc.cliargs.params_from_args`); validated once here.
    entry : callable
        ``entry(result, path) -> dict``: the JSON of one file (the technique's contract).
    title : str
        Report title.
    rows : callable, optional
        ``rows(entry) -> list[dict]``: table rows of one entry for the text output.
    """
    from . import plugins
    from .core.errors import ParameterError, SpecprocError

    prog = f"specproc {processor.split('.')[0]}"
    proc = plugins.get("processors", processor)
    try:
        given = {**params_from_args(args), **{k: v for k, v in (params or {}).items() if v is not None}}
        p = proc.validate(given)
    except ParameterError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    report = getattr(args, "report", None)
    if report:  # a usage error, found before any file is read (a device or FIFO is never replaced)
        from .core.files import check_writable_target

        try:
            check_writable_target(report)
        except OSError as exc:
            print(f"{prog}: error: {report}: cannot write report: {exc.strerror or exc}", file=sys.stderr)
            return 2
    from .execute import Task, execute

    paths = expand_folders([str(x) for x in args.paths], proc.technique, prog)
    # a command is a pipeline of one measurement group without a store: the one executor reads,
    # preprocesses and fits it (parallel, failures isolated per file)
    spec = p.model_dump(mode="json")
    tasks = [Task(i, 0, None, proc.technique, path, processor, spec) for i, path in enumerate(paths)]
    outs: list = [None] * len(paths)
    bar = _progress(len(paths), prog, True)
    for o in execute(tasks, getattr(args, "jobs", None), read=read):
        outs[o.task.index] = o.error if o.error is not None else o.result
        bar.update()
    bar.close()
    entries, results, failures = [], [], []
    for path, r in zip(paths, outs):
        if isinstance(r, BaseException):
            e = {"file": path, "error": _error_text(r)}
            entries.append(e)
            failures.append(e)
            continue
        try:
            entries.append(entry(r, path))
            results.append(r)
        except Exception as exc:  # a result that cannot be summarised is a failure of that file
            e = {"file": path, "error": f"could not summarise the result: {type(exc).__name__}: {exc}"}
            entries.append(e)
            failures.append(e)
    emit(entries, bool(getattr(args, "json", False)), rows)
    if report:
        from .report import render_results

        try:
            out = render_results(results, report, title=title, failures=failures)
            print(f"report: {out}", file=sys.stderr)
        except SpecprocError as exc:
            print(f"{prog}: error: {exc}", file=sys.stderr)
            return 1
        except OSError as exc:
            print(f"{prog}: error: cannot write the report {report}: {exc.strerror or exc}", file=sys.stderr)
            return 1
    return 1 if failures else 0
