"""Silence, and capture, what chatty third-party modules ``print`` — without touching ``sys.stdout``.

Some libraries the readers use report by calling ``print`` (``jcamp``: Y-check failures and length
mismatches; ``vamas``: unsupported entries; ``xrayutilities.io``: progress and parse notes).
``contextlib.redirect_stdout`` is *not* a way to silence them inside a library: it swaps the
process-wide ``sys.stdout``, the command runner reads files in threads, and two overlapping
swaps restore in the wrong order, leaving ``sys.stdout`` on a discarded buffer — the JSON a
command prints afterwards is lost (0-byte output, exit 0). Library code in specproc therefore
never reassigns ``sys.stdout`` / ``sys.stderr`` (asserted by ``tests/test_multifile_stdout.py``).

What this module does instead: the first time a module is named in :func:`quiet`, a ``print``
function is put into *that module's* globals (name lookup finds a module global before the
builtin), and so is a ``warn`` when the module did ``from warnings import warn`` (nmrglue's
JCAMP parser warns for every missing optional label; ``warnings.catch_warnings`` would swap the
process-wide filter list, which is not thread-safe either). The dispatchers look at a
thread-local sink: inside a :func:`quiet` block of the calling thread the text goes to the
block's list of lines; everywhere else they are the builtin ``print`` / ``warnings.warn``
unchanged, so the library behaves as before for anybody else in the process.
Installing is one idempotent attribute assignment (the same object every time), nothing is ever
restored, and the per-call state is thread-local, so concurrent reads in threads cannot
interfere, and a forked reading worker inherits a consistent state (no lock to be left held).
"""
from __future__ import annotations

import builtins
import importlib
import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

__all__ = ["quiet", "install_quiet_print"]

_local = threading.local()


def _print(*args, sep=" ", end="\n", file=None, flush=False):
    """``print`` for patched modules: to the calling thread's sink inside :func:`quiet`, else builtin."""
    sink = getattr(_local, "sink", None)
    if sink is None or (file is not None and file is not sys.stdout and file is not sys.stderr):
        # outside a quiet block, or an explicit file the library writes on purpose (not a console)
        builtins.print(*args, sep=sep, end=end, file=file, flush=flush)
        return
    sink.append((" " if sep is None else sep).join(map(str, args)) + ("\n" if end is None else end))


def _warn(message, category=None, stacklevel=1, source=None):
    """``warnings.warn`` for patched modules: to the calling thread's sink inside :func:`quiet`."""
    sink = getattr(_local, "sink", None)
    if sink is None:
        warnings.warn(message, category, stacklevel + 1, source)  # +1: this frame is not the caller
        return
    sink.append(f"{getattr(category, '__name__', 'UserWarning')}: {message}\n")


def install_quiet_print(module: str | ModuleType) -> ModuleType:
    """Give ``module`` the dispatching ``print`` (idempotent; imports the module when named).

    Parameters
    ----------
    module : str or module
        The module whose own ``print`` calls are to be caught (``"jcamp"``, ``"vamas.vamas"``), and
        its ``warn`` calls when it imported ``warn`` from :mod:`warnings`. Only calls made by code
        defined in that module are affected.

    Returns
    -------
    module
    """
    mod = importlib.import_module(module) if isinstance(module, str) else module
    if mod.__dict__.get("print") is not _print:
        # a single attribute store of one shared object: safe to race, nothing to undo
        mod.print = _print
    if mod.__dict__.get("warn") is warnings.warn:
        mod.warn = _warn
    return mod


@contextmanager
def quiet(*modules: str | ModuleType) -> Iterator[list[str]]:
    """Catch what ``modules`` print (and ``warn``) in the calling thread for the duration of the block.

    Parameters
    ----------
    *modules : str or module
        Modules whose ``print`` calls are caught (see :func:`install_quiet_print`).

    Yields
    ------
    list of str
        Filled, when the block ends, with the non-blank lines printed (stripped), in order —
        readers turn some of them into errors or notes.

    Examples
    --------
    >>> with quiet("jcamp") as notes:          # doctest: +SKIP
    ...     d = jcamp.read(stream)
    """
    for m in modules:
        install_quiet_print(m)
    lines: list[str] = []
    chunks: list[str] = []
    previous = getattr(_local, "sink", None)
    _local.sink = chunks
    try:
        yield lines
    finally:
        _local.sink = previous
        lines.extend(ln.strip() for ln in "".join(chunks).splitlines() if ln.strip())
