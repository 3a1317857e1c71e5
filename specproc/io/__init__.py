"""Reading instrument files: ``read(path)`` sniffs the content and picks a reader plugin."""
from __future__ import annotations

from pathlib import Path

from ..core.errors import FormatNotRecognisedError, ReaderError, SpecprocError
from .base import Reader

__all__ = ["read", "guess_reader", "Reader"]


def guess_reader(path: str | Path) -> Reader:
    """The reader plugin for ``path``: content sniffing first, extension second."""
    from .. import plugins

    p = Path(path)
    if not p.exists():
        raise ReaderError("file or folder not found", p)
    readers = plugins.loaded("readers")
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
        Naming the file and the reason; library tracebacks never escape.
    """
    from .. import plugins

    p = Path(path)
    r = plugins.get("readers", reader) if reader else guess_reader(p)
    if not p.exists():
        raise ReaderError("file or folder not found", p)
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
