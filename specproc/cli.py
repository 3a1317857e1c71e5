"""Command line: ``specproc <technique> PATH... [options]``, ``specproc run``, ``specproc plugins``.

Technique subcommands are contributed by technique plugins (the ``add_cli(subparsers)`` of each
:class:`~specproc.core.technique.Technique`), so a new technique never edits this file. Exit codes: 0 all good,
1 when any input failed (the others still ran), 2 for usage errors.
"""
from __future__ import annotations

import argparse
import json
import sys


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The ``specproc`` parser; ``only`` adds just that technique's command (a faster start-up when
    the command line names it: the other techniques' modules are not imported)."""
    from . import __version__, plugins

    ap = argparse.ArgumentParser(
        prog="specproc", description="Instrument exports → fitted, quantified, reported evidence.",
        epilog="specproc <technique> PATH... [options] processes files (a folder of experiments too); "
               "specproc run PIPELINE.yaml --out DIR runs a pipeline and writes the report. "
               "Exit codes: 0 all inputs processed, 1 an input failed (the others still ran), 2 usage error.")
    ap.add_argument("--version", action="version", version=f"specproc {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("plugins", help="list registered readers, processors and techniques")
    p.add_argument("--json", action="store_true", help="machine-readable list")
    p.set_defaults(func=_cmd_plugins)

    p = sub.add_parser("formats", help="list every file format read: extensions, technique, reader, library")
    p.add_argument("--json", action="store_true", help="machine-readable list")
    p.add_argument("--markdown", action="store_true", help="the Markdown table of docs/formats.md")
    p.set_defaults(func=_cmd_formats)

    p = sub.add_parser("run", help="run a YAML pipeline and write the report")
    p.add_argument("pipeline", help="pipeline YAML file (format: docs/pipelines.md)")
    p.add_argument("--out", default="specproc_output", help="output folder (database, exports, report)")
    p.add_argument("--jobs", "-j", type=int, default=None, help="parallel workers (default: all cores)")
    p.add_argument("--scheduler", default=None, help="Dask scheduler address tcp://HOST:PORT")
    p.add_argument("--no-cache", action="store_true",
                   help="recompute every measurement (the cache in the output folder is not read; the "
                        "fresh results replace its entries)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar and no summary (the report path is still printed)")
    p.set_defaults(func=_cmd_run)

    techs = {only: plugins.get("techniques", only)} if only is not None else plugins.loaded("techniques")
    for name, tech in techs.items():
        if tech.add_cli is None:  # a technique without a command (Python and pipelines only)
            continue
        try:
            tech.add_cli(sub)
        except Exception as exc:  # one broken technique plugin must not take the whole CLI down
            import warnings

            warnings.warn(f"technique {name!r} could not add its command: {exc}", RuntimeWarning, stacklevel=2)
    return ap


def _cmd_plugins(args) -> int:
    from .plugins import list_plugins

    df = list_plugins()
    if args.json:
        print(df.to_json(orient="records"))
    else:
        print(df[["kind", "name", "package", "version", "description"]].to_string(index=False))
    return 0


def _cmd_formats(args) -> int:
    from .io import formats

    rows = formats.format_rows()
    if args.json:
        print(json.dumps(rows))
    else:
        sys.stdout.write(formats.format_markdown(rows) if args.markdown else formats.format_text(rows))
    return 0


def _cmd_run(args) -> int:
    from .pipeline import run_pipeline_cli

    return run_pipeline_cli(args)


def main(argv: list[str] | None = None) -> int:
    from .core.errors import SpecprocError

    from . import plugins

    argv = list(sys.argv[1:] if argv is None else argv)
    ap = None
    if argv and argv[0] in plugins.available("techniques"):
        try:
            ap = build_parser(only=argv[0])
        except Exception:  # the named technique does not load: the full parser warns and reports
            ap = None
    ap = ap or build_parser()
    args = ap.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SpecprocError as exc:
        print(f"specproc: error: {exc}", file=sys.stderr)
        return 1


def console() -> None:
    """The ``specproc`` command: :func:`main`, then a fast exit.

    A batch has imported xarray, pandas, lmfit, scipy and numba; tearing those modules down at
    interpreter exit takes 0.2-0.6 s after the output is written (measured: 0.6 s of a 5 s run
    over 1,000 spectra). Once :func:`main` has returned, the command joins its remaining threads,
    runs the ``atexit`` handlers (temporary folders, multiprocessing's finalisers) and flushes its
    streams itself, then leaves with ``os._exit`` -- the interpreter's teardown frees nothing a
    finished process needs. ``main()`` called from Python is unaffected; a usage error or an
    exception leaves the ordinary way.
    """
    import atexit
    import os
    import threading

    code = main()
    for t in threading.enumerate():
        if t is not threading.current_thread() and not t.daemon:
            t.join()
    atexit._run_exitfuncs()  # the registered handlers, as at a normal exit (CPython API since 2.x)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (| head): nothing more can be written anyway
            pass
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    console()
