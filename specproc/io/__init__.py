"""Reading instrument files: ``read(path)`` sniffs the content and picks a reader plugin."""
from __future__ import annotations

import os
from pathlib import Path

from ..core.errors import FormatNotRecognisedError, ReaderError, SpecprocError
from .base import Reader, sniffing

__all__ = ["read", "guess_reader", "Reader", "MAX_INPUT_BYTES", "input_size"]

#: Largest input (a file, or all files of an experiment folder) :func:`read` accepts, in bytes:
#: 2 GiB, or ``$SPECPROC_MAX_INPUT_BYTES``. A reader may set its own ``max_input_bytes`` (lower
#: for text formats parsed in memory, higher for formats it reads lazily). Above the limit the
#: input is refused with a clear error instead of exhausting memory (docs/reliability.md).
MAX_INPUT_BYTES = int(os.environ.get("SPECPROC_MAX_INPUT_BYTES", str(2 << 30)))


def input_size(path: str | Path, stop_after: int | None = None) -> int:
    """Bytes of a file, or of every file below a folder (symlinks not followed; stops early
    once ``stop_after`` is exceeded)."""
    p = Path(path)
    if not p.is_dir():
        return p.stat().st_size
    total = 0
    for dirpath, _, files in os.walk(p):
        for f in files:
            try:
                st = os.lstat(os.path.join(dirpath, f))
            except OSError:
                continue
            total += st.st_size
            if stop_after is not None and total > stop_after:
                return total
    return total


def guess_reader(path: str | Path) -> Reader:
    """The reader plugin for ``path``: content sniffing first, extension second."""
    from .. import plugins

    p = Path(path)
    if not p.exists():
        raise ReaderError("file or folder not found", p)
    readers = plugins.loaded("readers")
    with sniffing():  # every plugin sniffs the same head, read once
        for r in readers.values():
            try:
                if r.guess_can_open(p):
                    return r
            except Exception:  # a sniffing bug in one plugin must not hide the others
                continue
    by_ext = [r for r in readers.values() if r.matches_extension(p)]
    if by_ext:
        return by_ext[0]
    raise FormatNotRecognisedError(
        "no reader recognises this file (readers tried: " + ", ".join(sorted(readers)) + ")", p)


def read(path: str | Path, reader: str | None = None, **options):
    """Read an instrument export into a specproc measurement (xarray DataArray).

    Parameters
    ----------
    path : str or Path
        File or folder (e.g. a Bruker experiment folder ``.../1``).
    reader : str, optional
        Force a reader by name (see ``specproc plugins``) instead of sniffing.
    **options
        Passed to the reader's ``read`` (e.g. ``pdata=1`` for Bruker processed data).

    Raises
    ------
    SpecprocError
        Naming the file and the reason; library tracebacks never escape. Inputs above
        :data:`MAX_INPUT_BYTES` (or the reader's ``max_input_bytes``) are refused.
    """
    from .. import plugins

    p = Path(path)
    r = plugins.get("readers", reader) if reader else guess_reader(p)
    if not p.exists():
        raise ReaderError("file or folder not found", p)
    limit = int(getattr(r, "max_input_bytes", None) or MAX_INPUT_BYTES)
    try:
        size = input_size(p, stop_after=limit)
    except OSError as exc:
        raise ReaderError(f"cannot read: {exc.strerror or exc}", p) from None
    if size > limit:
        raise ReaderError(f"input is larger than the {limit / 2**20:,.0f} MiB limit of the {r.name} reader "
                          "(set SPECPROC_MAX_INPUT_BYTES to raise it)", p)
    try:
        return r.read(p, **options)
    except SpecprocError:
        raise
    except TypeError as exc:
        if "unexpected keyword" in str(exc):
            raise ReaderError(f"reader {r.name!r} does not accept option(s) {sorted(options)}", p) from None
        raise ReaderError(f"{r.name} reader failed: {type(exc).__name__}: {exc}", p) from exc
    except Exception as exc:  # library errors become one clear message
        raise ReaderError(f"{r.name} reader failed: {type(exc).__name__}: {exc}", p) from exc
