"""Provenance records: where a measurement or result came from."""
from __future__ import annotations

import datetime as _dt
import errno
import hashlib
import os
import platform
import stat
from pathlib import Path

from .._version import __version__


def _regular(path: str, st: os.stat_result) -> None:
    if not stat.S_ISREG(st.st_mode):
        kind = ("FIFO" if stat.S_ISFIFO(st.st_mode) else "device" if stat.S_ISCHR(st.st_mode) or
                stat.S_ISBLK(st.st_mode) else "socket" if stat.S_ISSOCK(st.st_mode) else "special file")
        raise OSError(errno.EINVAL, f"not a regular file ({kind}); refused", path)


def input_files(path: str | Path) -> list[Path]:
    """The regular files an input consists of, sorted: the file itself, or every file below a
    folder (following links to folders once each, as a reader would, never round a loop).

    Raises ``OSError`` for a FIFO, device or socket (opening one would block or never end).
    """
    p = Path(path)
    st = os.stat(p)
    if not stat.S_ISDIR(st.st_mode):
        _regular(str(p), st)
        return [p]
    out, seen = [], set()
    for top, dirs, files in os.walk(p, followlinks=True):
        real = os.path.realpath(top)
        if real in seen:  # a link back to a folder already walked (a self-link, a loop)
            dirs[:] = []
            continue
        seen.add(real)
        dirs.sort()
        for f in files:
            q = Path(top) / f
            try:
                _regular(str(q), os.stat(q))
            except FileNotFoundError:  # a dangling link: nothing a reader could read
                continue
            out.append(q)
    return sorted(out)


def sha256_path(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file, or of a folder (sorted relative paths and contents).

    Folders (e.g. a Bruker experiment) hash every regular file below them, links followed as
    a reader follows them, so any change to ``acqus`` or ``fid`` changes the digest. FIFOs,
    devices and sockets are refused (``OSError``) before anything is opened.
    """
    p = Path(path)
    h = hashlib.sha256()
    is_dir = p.is_dir()
    for f in input_files(p):
        if is_dir:
            h.update(str(f.relative_to(p)).encode() + b"\0")
        fd = os.open(f, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # never blocks, even if swapped for a FIFO
        with os.fdopen(fd, "rb") as fh:
            _regular(str(f), os.fstat(fh.fileno()))
            while True:
                b = fh.read(chunk)
                if not b:
                    break
                h.update(b)
    return h.hexdigest()


def file_provenance(path: str | Path, reader: str, reader_version: str | None = None,
                    content: bytes | None = None) -> dict:
    """Provenance record of a file read by ``reader``.

    ``content``: the file's bytes when the reader already holds them (hashed instead of reading
    the file a second time; the digest is the same).
    """
    p = Path(path)
    return {
        "source": str(p.resolve()),
        "sha256": hashlib.sha256(content).hexdigest() if content is not None else sha256_path(p),
        "reader": reader,
        "reader_version": reader_version or __version__,
        "specproc_version": __version__,
        "read_at": now_iso(),
    }


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def software_versions(extra: tuple[str, ...] = ()) -> dict:
    """Versions of specproc, Python and the main scientific dependencies that are imported."""
    import importlib.metadata as md
    import sys

    out = {"specproc": __version__, "python": platform.python_version()}
    for name in ("numpy", "scipy", "xarray", "pandas", "lmfit", "nmrglue", "pybaselines",
                 "plotly", "xrayutilities", "pydantic", *extra):
        mod = name.replace("-", "_")
        if mod in sys.modules or name in extra:
            try:
                out[name] = md.version(name)
            except md.PackageNotFoundError:
                pass
    return out
