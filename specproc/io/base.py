"""Reader base class (xarray's ``BackendEntrypoint`` shape) and helpers shared by readers."""
from __future__ import annotations

import contextvars
import math
import os
import re
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

import xarray as xr

from ..core.errors import ReaderError


#: Largest input (a file, or all files of an experiment folder) :func:`read` accepts, in bytes:
#: 2 GiB, or ``$SPECPROC_MAX_INPUT_BYTES``. A reader may set its own ``max_input_bytes`` (lower
#: for text formats parsed in memory, higher for formats it reads lazily). Above the limit the
#: input is refused with a clear error instead of exhausting memory (docs/reliability.md).
MAX_INPUT_BYTES = int(os.environ.get("SPECPROC_MAX_INPUT_BYTES", str(2 << 30)))


def input_limit(reader: "Reader | None" = None) -> int:
    """The input limit in bytes for ``reader``: its ``max_input_bytes``, else :data:`MAX_INPUT_BYTES`.

    Read when called (not at import), so a test or a caller that changes ``specproc.io.base.MAX_INPUT_BYTES``
    changes it for every check, including the decoded-size checks of compressed containers.
    """
    return int(getattr(reader, "max_input_bytes", None) or MAX_INPUT_BYTES)


class Reader:
    """Base class of every reader plugin.

    Subclasses set the class attributes and implement :meth:`read` (explicit keyword
    arguments, no ``**kwargs``, so options can be introspected) and, for content sniffing,
    :meth:`guess_can_open`. Readers only read: they never write next to their input.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    technique: ClassVar[str | None] = None
    extensions: ClassVar[tuple[str, ...]] = ()
    url: ClassVar[str] = ""

    def guess_can_open(self, path: Path) -> bool:
        """True if the *content* looks like this format (magic bytes, headers)."""
        return False

    def read(self, path: Path) -> xr.DataArray:  # pragma: no cover - abstract
        raise NotImplementedError

    def matches_extension(self, path: Path) -> bool:
        return any(str(path).lower().endswith(e) for e in self.extensions)


#: while :func:`sniffing` is active: ``{path: (whole file?, first bytes)}``, so that the content
#: sniffing of every reader plugin reads a file's head once instead of once per plugin
_SNIFF: contextvars.ContextVar[dict | None] = contextvars.ContextVar("specproc_sniff", default=None)
_SNIFF_BYTES = 1 << 14  # every text sniffer reads <= 8 KiB; a reader that wants more reads more


@contextmanager
def sniffing():
    """Share file heads between the ``guess_can_open`` calls of one reader search."""
    token = _SNIFF.set({})
    try:
        yield
    finally:
        _SNIFF.reset(token)


def _read_head(path: Path, n: int) -> bytes:
    try:
        if path.is_file():
            with open(path, "rb") as fh:
                return fh.read(n)
    except OSError:
        pass
    return b""


def head_bytes(path: Path, n: int = 4096) -> bytes:
    """First ``n`` bytes of a file ('' for folders and unreadable files)."""
    path = Path(path)
    cache = _SNIFF.get()
    if cache is None:
        return _read_head(path, n)
    key = str(path)
    got = cache.get(key)
    if got is None or (len(got[1]) < n and not got[0]):
        want = max(n, _SNIFF_BYTES)
        data = _read_head(path, want)
        got = cache[key] = (len(data) < want, data)
    return got[1][:n]


def first_line(path: Path, n: int = 4096) -> str:
    """The first non-blank line of a file's head, stripped (latin-1; '' for folders and binaries).

    The cheap first test of text sniffers: a format recognised by its first line is rejected
    without decoding and splitting the whole head.
    """
    head = head_bytes(path, n).lstrip()
    return head.split(b"\n", 1)[0].decode("latin-1", errors="replace").strip()


def first_content_line(path: Path, n: int = 8192, comment: bytes = b"#") -> str | None:
    """The first line of a text file's head that is neither blank nor a comment, stripped
    (latin-1); None for a binary head (a NUL byte), a folder, or no such line in ``n`` bytes.

    The header test of the column-text sniffers: splitting the bytes and decoding one line
    instead of decoding and splitting the whole head (~4x cheaper; a reader search runs it
    for every file of a batch).
    """
    head = head_bytes(path, n)
    if not head or b"\x00" in head:
        return None
    for m in _LINE.finditer(head):  # lazily: a header is usually within the first few lines
        s = m.group().strip()
        if s and not s.startswith(comment):
            return s.decode("latin-1", errors="replace")
    return None


_LINE = re.compile(rb"[^\r\n]+")


def head_text(path: Path, n: int = 4096) -> str:
    return head_bytes(path, n).decode("latin-1", errors="replace")


def special_kind(mode: int) -> str | None:
    """What a non-regular, non-directory ``st_mode`` is ("FIFO", "character device"...), else None."""
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return ("FIFO" if stat.S_ISFIFO(mode) else "character device" if stat.S_ISCHR(mode) else
            "block device" if stat.S_ISBLK(mode) else "socket" if stat.S_ISSOCK(mode) else "special file")


def not_regular_error(kind: str, path) -> ReaderError:
    """The one error for FIFOs, devices and sockets given as (or found inside) an input."""
    return ReaderError(f"not a regular file (FIFO/device): a {kind}", path)


def require_file(path: Path, what: str = "file") -> Path:
    """``path`` if it exists, is a regular file or a folder, and is not empty; else ReaderError.

    A FIFO, a device or a socket is refused *before* anything opens it: opening a FIFO blocks
    until a writer appears, and ``/dev/zero`` read to the end never ends (readers that call
    ``read_bytes()`` would fill the memory). Symlinks are followed (their target is checked).
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ReaderError(f"{what} not found", path) from None
    except OSError as exc:
        raise ReaderError(f"cannot read: {exc.strerror or exc}", path) from None
    kind = special_kind(st.st_mode)
    if kind is not None:
        raise not_regular_error(kind, path)
    if stat.S_ISREG(st.st_mode) and st.st_size == 0:
        raise ReaderError("file is empty", path)
    return path


# ---------------------------------------------------------------- self-contained containers
# HDF5 (NetCDF-4, .hspy) and Zarr (.zspy) can make a "file" out of other files: HDF5 external
# storage (a dataset whose bytes live in any file named in the header), external links (an object
# of another HDF5 file), virtual datasets (a mapping onto datasets of other files), and Zarr
# chunks that are symlinks. Read blindly, a crafted data file returns the bytes of any file the
# user can read (a NetCDF AFM map whose values were specproc's cache key, published in a report).
# Readers of these formats refuse such files before any data is read.

def check_hdf5_self_contained(path: str | Path) -> int:
    """Refuse an HDF5 file that refers to other files; return its datasets' decoded size.

    Walks every link of the file (h5py ``visititems_links``, metadata only; no data read) and
    refuses external links, user-defined links, datasets with external storage
    (``Dataset.external``), virtual datasets (``Dataset.is_virtual``) and files with a user block.
    Soft links are allowed: they can only name objects of the same file, which are visited
    through their own hard links (HDF5 frees an object when its last hard link goes, so every
    dataset a reader can open by name is visited).

    Parameters
    ----------
    path : str or Path
        The HDF5 file (already known to be a regular file).

    Returns
    -------
    int
        Bytes of all datasets once decoded (``prod(shape) * itemsize``, whatever the compression):
        what reading everything would allocate, for :func:`check_decoded_size`.

    Raises
    ------
    ReaderError
        Naming the offending object and the reason.
    """
    import h5py

    path = Path(path)
    try:
        f = h5py.File(path, "r")  # default (sec2) driver: one file, no family/split members
    except Exception as exc:
        raise ReaderError(f"cannot open as HDF5: {type(exc).__name__}: {exc}", path) from None
    total = 0
    seen: set = set()

    def refuse(reason: str):
        raise ReaderError(f"refusing an HDF5 file that reads other files: {reason}", path)

    # the checks return the reason to refuse (None: fine): h5py's visit stops at the first
    # non-None value; an exception raised inside its callback comes out as a SystemError
    def check_dataset(name: str, ds) -> str | None:
        nonlocal total
        key = hash(ds.id)  # (file, object address): a dataset hard-linked twice counts once
        if key in seen:
            return None
        seen.add(key)
        if ds.is_virtual:
            return f"dataset {name!r} is a virtual dataset (its data map onto other files)"
        if ds.external:
            return f"dataset {name!r} has external storage in {ds.external[0][0]!r}"
        total += math.prod(ds.shape or ()) * ds.dtype.itemsize
        return None

    def visit(name: str, link) -> str | None:
        if isinstance(link, h5py.ExternalLink):
            return f"{name!r} is an external link to {link.filename!r}"
        if isinstance(link, h5py.SoftLink):
            return None
        if not isinstance(link, h5py.HardLink):
            return f"{name!r} is a user-defined link ({type(link).__name__})"
        obj = f[name]
        return check_dataset(name, obj) if isinstance(obj, h5py.Dataset) else None

    try:
        with f:
            if f.userblock_size:
                refuse(f"it has a {f.userblock_size}-byte user block")
            why = f.visititems_links(visit)
    except ReaderError:
        raise
    except Exception as exc:  # a damaged header: no reader would get further
        raise ReaderError(f"cannot walk the HDF5 structure: {type(exc).__name__}: {exc}", path) from None
    if why:
        refuse(why)
    return total


def check_tree_self_contained(folder: str | Path) -> None:
    """Refuse a folder container (a Zarr ``.zspy`` directory) that reaches outside itself.

    Walks the folder without following links (``os.walk(followlinks=False)``) and refuses any
    symlink (file or folder), any FIFO, device or socket, and any entry whose real path is not
    inside the folder.

    Raises
    ------
    ReaderError
        Naming the entry and the reason.
    """
    root = os.path.realpath(folder)
    prefix = root.rstrip(os.sep) + os.sep

    def onerror(exc: OSError):
        raise ReaderError(f"cannot list the folder: {exc.strerror or exc}", exc.filename or folder)

    for dirpath, dirnames, filenames in os.walk(root, followlinks=False, onerror=onerror):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                raise ReaderError(f"refusing a container with a symbolic link inside: "
                                  f"{os.path.relpath(p, root)} -> {os.readlink(p)}", folder)
            kind = special_kind(st.st_mode)
            if kind is not None:
                raise not_regular_error(kind, p)
            if not os.path.realpath(p).startswith(prefix):  # e.g. a bind mount; never through a link
                raise ReaderError(f"refusing a container entry outside the folder: {os.path.relpath(p, root)}",
                                  folder)


def check_zip_self_contained(path: str | Path) -> None:
    """Refuse a zip container (a zipped ``.zspy``) with absolute or ``..`` entry names or symlink entries.

    Raises
    ------
    ReaderError
    """
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise ReaderError(f"not a readable zip file ({exc})", path) from None
    for info in infos:
        name = info.filename
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or ".." in parts:
            raise ReaderError(f"refusing a zip entry with an absolute or '..' path: {name!r}", path)
        if stat.S_ISLNK(info.external_attr >> 16):
            raise ReaderError(f"refusing a zip entry that is a symbolic link: {name!r}", path)


def check_decoded_size(nbytes: int, path: str | Path, reader: Reader | None = None) -> None:
    """Refuse an input whose decoded data exceed the input limit of ``reader``.

    The size limit of :func:`specproc.io.read` is on bytes on disk; compressed containers (HDF5
    gzip, Zarr/Blosc) decode to far more (4.8 MB of gzip-compressed zeros decoded to 4.78 GB).
    The same limit (``$SPECPROC_MAX_INPUT_BYTES`` or the reader's ``max_input_bytes``) applies
    to the decoded bytes, computed from the metadata before reading.
    """
    limit = input_limit(reader)
    if nbytes > limit:
        name = getattr(reader, "name", "") or "this"
        raise ReaderError(f"decoded size {nbytes / 2**20:,.0f} MiB exceeds the limit of {limit / 2**20:,.0f} MiB "
                          f"of the {name} reader (compressed data; set SPECPROC_MAX_INPUT_BYTES to raise it)", path)
