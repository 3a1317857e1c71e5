"""Reading instrument files: ``read(path)`` sniffs the content and picks a reader plugin."""
from __future__ import annotations

import os
import stat
from pathlib import Path

from ..core.errors import FormatNotRecognisedError, ReaderError, SpecprocError
from .base import (MAX_INPUT_BYTES, Reader, input_limit, not_regular_error, reader_error, sniff_order, sniffing,
                   special_kind)

__all__ = ["read", "guess_reader", "Reader", "MAX_INPUT_BYTES", "input_size", "input_limit", "check_input"]



def _secret_paths() -> tuple[tuple[Path, ...], tuple[Path, ...]]:
    """specproc's private files and folders, resolved: ``(files, folders)`` :func:`read` refuses.

    The cache HMAC key (:func:`specproc.core.files.cache_key_path`, the one rule the cache uses
    too) and specproc's own cache folder (``.../specproc``, where the default key and its
    temporaries live) are never inputs: a data file or folder that resolves to them is an
    attempt to publish the key in a report. The folder of a key named by
    ``$SPECPROC_CACHE_KEY_FILE`` is not refused as a whole: it is any folder the user chose (a
    shared group folder, a test's temporary folder), only the key file is.
    """
    from ..core.files import cache_key_path

    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = Path(os.path.realpath(os.path.join(base, "specproc")))
    files = [folder / "cache.key"]
    if os.environ.get("SPECPROC_CACHE_KEY_FILE"):
        files.insert(0, Path(os.path.realpath(cache_key_path())))
    return tuple(files), (folder,)


class _Secrets:
    """Identity of the private paths for one :func:`read`: resolved names and (device, inode)
    pairs, so a hard link or a symlink to the key is recognised as well as its own name."""

    def __init__(self):
        self.files, self.folders = _secret_paths()
        self.ids = set()
        for q in self.files + self.folders:
            try:
                st = os.stat(q)
            except OSError:
                continue
            self.ids.add((st.st_dev, st.st_ino))

    def check(self, real: str, st: os.stat_result, shown) -> None:
        inside = any(real == str(d) or real.startswith(str(d).rstrip(os.sep) + os.sep) for d in self.folders)
        if inside or (st.st_dev, st.st_ino) in self.ids or real in map(str, self.files):
            raise ReaderError("refusing to read specproc's private cache key folder", shown)


def _scan(path: str | Path, stop_after: int | None = None, secrets: _Secrets | None = None) -> int:
    """Bytes of the regular files of ``path`` (a file or a folder); see :func:`input_size`.

    With ``secrets`` (the checks of :func:`read`): FIFOs, devices and sockets below the folder
    and entries resolving to specproc's private key or folder raise :class:`ReaderError`.
    """
    root = os.path.realpath(path)
    st = os.stat(root)
    if secrets is not None:
        secrets.check(root, st, path)
    if not stat.S_ISDIR(st.st_mode):
        return st.st_size if stat.S_ISREG(st.st_mode) else 0
    total = 0
    seen_files: set[tuple[int, int]] = set()  # a target linked twice is read (and counted) once
    seen_dirs = {(st.st_dev, st.st_ino)}       # symlinked folders are followed, each once (no loops)
    stack = [root]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                entries = list(it)
        except OSError:
            continue  # an unreadable subfolder: the reader says so if it needs it
        for e in entries:
            try:
                est = e.stat(follow_symlinks=True)  # a link counts as what it points to
            except OSError:
                continue  # dangling link
            key = (est.st_dev, est.st_ino)
            if secrets is not None:
                if key in secrets.ids or e.is_symlink():
                    secrets.check(os.path.realpath(e.path), est, e.path)
            if stat.S_ISDIR(est.st_mode):
                if key not in seen_dirs:
                    seen_dirs.add(key)
                    stack.append(e.path)
                continue
            kind = special_kind(est.st_mode)
            if kind is not None:
                if secrets is not None:
                    raise not_regular_error(kind, e.path)
                continue
            if key in seen_files:
                continue
            seen_files.add(key)
            total += est.st_size
            if stop_after is not None and total > stop_after:
                return total
    return total


def input_size(path: str | Path, stop_after: int | None = None) -> int:
    """Bytes a reader may read for ``path``: a file's size, or the sum over a folder's files.

    Symbolic links count as their targets (a Bruker ``fid`` linked to a 3 GiB file is 3 GiB),
    each target once however many links name it; symlinked subfolders are followed once (no
    loops). FIFOs, devices and sockets count 0 here (:func:`read` refuses them). Stops early once
    ``stop_after`` is exceeded.

    Raises
    ------
    OSError
        ``path`` does not exist or cannot be examined.
    """
    return _scan(path, stop_after)


def check_input(path: str | Path) -> str:
    """Checks of the input path itself, before any reader looks at it; returns the resolved path.

    Refused with :class:`ReaderError`: a missing path (or dangling link), specproc's private
    cache key or its folder, and anything that is neither a regular file nor a folder (a FIFO
    would block the first ``open``; ``/dev/zero`` never ends).
    """
    p = Path(path)
    real = os.path.realpath(p)
    try:
        st = os.stat(real)
    except FileNotFoundError:
        raise ReaderError("file or folder not found", p) from None
    except OSError as exc:
        raise ReaderError(f"cannot read: {exc.strerror or exc}", p) from None
    _Secrets().check(real, st, p)
    kind = special_kind(st.st_mode)
    if kind is not None:
        raise not_regular_error(kind, p)
    return real


def guess_reader(path: str | Path) -> Reader:
    """The reader plugin for ``path``: content sniffing first, extension second.

    Readers are asked in :func:`~specproc.io.base.sniff_order` (the most specific sniff first:
    magic bytes and folder layouts, then format headers, then generic column text; ties by name),
    both for the content test and for the extension fallback.
    """
    from .. import plugins

    p = Path(path)
    check_input(p)  # before any sniffer opens it (a FIFO blocks the first open)
    readers = plugins.loaded("readers")
    ordered = sniff_order(readers)
    with sniffing():  # every plugin sniffs the same head, read once
        for r in ordered:
            try:
                if r.guess_can_open(p):
                    return r
            except Exception:  # a sniffing bug in one plugin must not hide the others
                continue
    by_ext = [r for r in ordered if r.matches_extension(p)]
    if by_ext:
        return by_ext[0]
    raise FormatNotRecognisedError(
        "no reader recognises this file (readers tried: " + ", ".join(sorted(readers)) + ")", p)


def _reads_parent(r: Reader, p: Path) -> bool:
    """True when reader ``r`` recognises the folder holding file ``p`` (an experiment folder it
    reads as a whole when given one of its files)."""
    try:
        with sniffing():
            return bool(r.guess_can_open(p.parent))
    except Exception:  # a sniffing bug: the file alone is examined
        return False


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
        Naming the file and the reason; library tracebacks never escape. Refused before any
        reader runs: inputs above :data:`MAX_INPUT_BYTES` (or the reader's ``max_input_bytes``;
        counted on the files symlinks point to), FIFOs, devices and sockets (the input or any
        file inside an input folder), and specproc's private cache key and folder. Refused by
        every reader (:func:`specproc.io.base.guard_read`): a folder given to a reader of single
        files (``Reader.reads_folders``), options the reader does not take; a library's
        exception becomes a ReaderError in user words (:func:`specproc.io.base.reader_error`).
    """
    from .. import plugins

    p = Path(path)
    check_input(p)
    forced = plugins.get("readers", reader) if reader else None
    # the whole input is examined before any sniffer looks inside a folder: FIFOs, devices and
    # the private key are refused whatever reads them; the walk may stop at the highest limit
    cap = input_limit(forced) if forced else max([input_limit(x) for x in plugins.loaded("readers").values()]
                                                 + [input_limit()])
    try:
        size = _scan(p, stop_after=cap, secrets=_Secrets())
    except OSError as exc:
        raise ReaderError(f"cannot read: {exc.strerror or exc}", p) from None
    r = forced or guess_reader(p)
    limit = input_limit(r)
    if size <= limit and not p.is_dir() and _reads_parent(r, p):
        # a Bruker ``fid`` (Varian ``fid``) given alone: the reader reads the whole experiment
        # folder around it (acqus, procpar, pdata), so that folder is what is examined and counted
        try:
            size = _scan(p.parent, stop_after=limit, secrets=_Secrets())
        except OSError as exc:
            raise ReaderError(f"cannot read: {exc.strerror or exc}", p.parent) from None
    if size > limit:
        raise ReaderError(f"input is larger than the {limit / 2**20:,.0f} MiB limit of the {r.name} reader "
                          "(set SPECPROC_MAX_INPUT_BYTES to raise it)", p)
    # a Reader subclass's read is guarded (io.base.guard_read: folders, options, exceptions in user
    # words); a plugin object that is not a Reader subclass gets the same translation here
    try:
        return r.read(p, **options)
    except SpecprocError:
        raise
    except Exception as exc:
        raise reader_error(exc, p, r) from exc
