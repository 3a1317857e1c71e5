"""Atomic output files: an interrupted run never leaves a half-written store, export or report."""
from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _kind(mode: int) -> str:
    return ("directory" if stat.S_ISDIR(mode) else "FIFO" if stat.S_ISFIFO(mode) else
            "character device" if stat.S_ISCHR(mode) else "block device" if stat.S_ISBLK(mode) else
            "socket" if stat.S_ISSOCK(mode) else "special file")


def check_writable_target(path: str | Path) -> None:
    """Raise ``OSError`` unless ``path`` is a new path or a regular file (or a link to one).

    ``os.replace`` onto a device node, a FIFO or a socket would replace it with a regular file
    (as root, ``--report /dev/full`` replaced the device); outputs only ever go to regular files.
    """
    for follow in (False, True):
        try:
            st = os.stat(path, follow_symlinks=follow)
        except FileNotFoundError:
            return
        except OSError:
            return  # e.g. a dangling link or a permission problem: the write itself will say so
        if not (stat.S_ISREG(st.st_mode) or (not follow and stat.S_ISLNK(st.st_mode))):
            raise OSError(errno.EINVAL, f"refusing to write over a {_kind(st.st_mode)} (outputs go only to "
                                        "regular files or new paths)", str(path))


def atomic_write(path: str | Path, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then ``os.replace`` it.

    The temporary file gets the usual umask mode (``mkstemp`` makes it 0600), so outputs such
    as reports stay shareable.
    """
    path = Path(path)
    check_writable_target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def cache_key_path() -> Path:
    """Where this user's cache signing key lives: ``$SPECPROC_CACHE_KEY_FILE``, else
    ``$XDG_CACHE_HOME/specproc/cache.key`` (``~/.cache/specproc/cache.key``).

    One definition for the cache (which reads and creates it) and the readers (which refuse to
    read anything in its folder, so no data file can name the key into a report).
    """
    env = os.environ.get("SPECPROC_CACHE_KEY_FILE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "specproc" / "cache.key"

