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

    Every subclass's ``read`` is wrapped once, when the class is created (:func:`guard_read`),
    with the promises that hold for every reader, called through :func:`specproc.read` or
    directly: a folder given to a reader that does not declare ``reads_folders`` is refused
    before the reader runs; options the reader does not take are refused with the ones it
    takes; and any exception that is not a :class:`~specproc.core.errors.SpecprocError`
    becomes a :class:`~specproc.core.errors.ReaderError` naming the input, in user words
    chosen by the exception's type (:func:`reader_error`). A reader raises its own
    ``ReaderError`` where it knows the reason better.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    technique: ClassVar[str | None] = None
    extensions: ClassVar[tuple[str, ...]] = ()
    url: ClassVar[str] = ""
    #: True when the reader's input may be a folder (a Bruker or Varian experiment, a ``.zspy``
    #: Zarr folder, a folder of cycler exports); a folder given to any other reader is refused
    reads_folders: ClassVar[bool] = False

    # How specific :meth:`guess_can_open` is. The automatic choice (:func:`specproc.io.guess_reader`)
    # asks the readers in decreasing ``priority``, ties by name (:func:`sniff_order`), so which reader
    # wins never depends on the order entry points are listed or packages installed.
    #: magic bytes, a container signature, or an instrument's folder layout
    SIGNATURE: ClassVar[int] = 30
    #: a text format's own header line or keywords (``##TITLE=``, ``*RAS_DATA_START``, ``#F``)
    HEADER: ClassVar[int] = 20
    #: generic column text recognised by its column names or numbers: asked last
    COLUMNS: ClassVar[int] = 10
    #: no content test: the reader is chosen by its extension only (when no sniff matched)
    EXTENSION: ClassVar[int] = 0
    #: this reader's level (one of the above; a plugin may use any int). Default: a header test
    priority: ClassVar[int] = HEADER

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "read" in cls.__dict__ and callable(cls.__dict__["read"]):
            cls.read = guard_read(cls.__dict__["read"])

    def guess_can_open(self, path: Path) -> bool:
        """True if the *content* looks like this format (magic bytes, headers)."""
        return False

    def read(self, path: Path) -> xr.DataArray:  # pragma: no cover - abstract
        raise NotImplementedError

    def matches_extension(self, path: Path) -> bool:
        return any(str(path).lower().endswith(e) for e in self.extensions)

    #: the maintained library that parses the format ("specproc" for a reader written by hand),
    #: listed by ``specproc formats``
    library: ClassVar[str] = ""
    #: one line for ``specproc formats``: what is read, what is refused (default: the description)
    notes: ClassVar[str] = ""
    #: the optional extra that installs the library (``pip install "specproc[<extra>]"``); "" if core
    extra: ClassVar[str] = ""
    #: the module that extra's library is imported as (``specproc formats`` says whether it is installed)
    extra_module: ClassVar[str] = ""


def sniff_order(readers: dict) -> list:
    """Reader plugins ``{name: reader}`` in the order the automatic choice asks them: decreasing
    :attr:`Reader.priority`, ties by name (a plugin object without a valid ``priority`` counts as
    :attr:`Reader.HEADER`)."""
    def key(item):
        pr = getattr(item[1], "priority", Reader.HEADER)
        ok = isinstance(pr, int) and not isinstance(pr, bool)
        return (-(pr if ok else Reader.HEADER), item[0])

    return [r for _, r in sorted(readers.items(), key=key)]


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


# ---------------------------------------------------------------- refusals in user words
#: exceptions that are not failures of a read and pass through the guard untouched
_NOT_READ_FAILURES = (KeyboardInterrupt, SystemExit, GeneratorExit)


def library_reason(exc: BaseException) -> str:
    """A low-level exception (a reading library's or Python's) as a reason for the instrument user.

    Parsers fail on a damaged file with whatever the bytes led to (``struct.error: unpack
    requires a buffer of 4 bytes``, ``TypeError: 'NoneType' object is not iterable``,
    ``IndexError: list index out of range``): the exception's *type* says what happened, its text
    is meant for the library's programmers, so only the type is used. The original exception
    stays chained (``raise ... from exc``) for a developer's traceback.
    """
    import struct
    import zipfile

    if isinstance(exc, IsADirectoryError):
        return "a folder where a file was expected"
    if isinstance(exc, FileNotFoundError):
        missing = Path(exc.filename).name if exc.filename else ""
        return f"a file it needs is missing{': ' + missing if missing else ''}"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, TimeoutError):
        return "reading the file timed out"
    if isinstance(exc, UnicodeError):
        return "text where binary data were expected, or text in an unknown encoding: corrupt or not this format"
    if isinstance(exc, (struct.error, EOFError)):
        return "the file ends before its structure does: truncated or corrupt"
    if isinstance(exc, zipfile.BadZipFile):
        return "not a valid ZIP container: truncated or corrupt"
    if isinstance(exc, MemoryError):
        return "its header declares more data than can be held in memory: corrupt header"
    if isinstance(exc, RecursionError):
        return "its structure is nested without end: corrupt"
    if isinstance(exc, NotImplementedError):
        return "a variant of the format that the reading library does not support"
    if isinstance(exc, (OverflowError, ZeroDivisionError, FloatingPointError)):
        return "a header number is out of range (zero or too large where a size or step is needed): corrupt header"
    if isinstance(exc, (ValueError, TypeError, LookupError, AttributeError, AssertionError)):
        return "its content does not follow the format: truncated, corrupt, or another kind of file"
    if isinstance(exc, OSError):
        if exc.errno is not None and exc.strerror:  # a system error (I/O error, too many open files)
            return f"cannot read the file: {exc.strerror.lower()}"
        return "the file cannot be decoded: truncated or corrupt"  # libraries' own OSErrors (h5py...)
    return "its content is corrupt or not of this format"


def reader_error(exc: BaseException, path: str | Path, reader: "Reader | str | None" = None) -> ReaderError:
    """The one translation of an exception raised while ``reader`` read ``path`` into a ReaderError.

    A :class:`~specproc.core.errors.SpecprocError` is returned as it is (its reason is already
    the reader's); anything else becomes ``"the <name> reader cannot read it: <reason>"`` with the
    reason of :func:`library_reason`. The caller raises it ``from exc``.
    """
    from ..core.errors import SpecprocError

    if isinstance(exc, SpecprocError):
        return exc
    name = getattr(reader, "name", reader) or ""
    return ReaderError(f"the {name + ' ' if name else ''}reader cannot read it: {library_reason(exc)}", path)


def folder_refusal(reader: "Reader", path: str | Path) -> ReaderError:
    """The refusal of a folder given to a reader of single files."""
    ext = tuple(getattr(reader, "extensions", ()) or ())
    what = f" ({', '.join(ext[:6])}{', ...' if len(ext) > 6 else ''})" if ext else ""
    return ReaderError(f"this is a folder; the {reader.name} reader reads single files{what}", path)


def guard_read(read):
    """Wrap a reader's ``read`` with the promises of every reader (see :class:`Reader`).

    The wrapper keeps the signature (``functools.wraps``: ``inspect.signature`` and the CLI see the
    reader's own options) and is applied once per function.
    """
    import functools
    import inspect

    if getattr(read, "_specproc_guarded", False):
        return read
    params = inspect.signature(read).parameters
    takes = [n for n, p in list(params.items())[2:] if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    open_kw = any(p.kind == p.VAR_KEYWORD for p in params.values())

    @functools.wraps(read)
    def guarded(self, path, *args, **options):
        unknown = [] if open_kw else sorted(set(options) - set(takes))
        if unknown:
            raise ReaderError(f"the {self.name} reader does not accept option(s) {unknown} "
                              f"(its options: {', '.join(takes) or 'none'})", path)
        if not self.reads_folders and os.path.isdir(path):
            raise folder_refusal(self, path)
        try:
            return read(self, path, *args, **options)
        except _NOT_READ_FAILURES:
            raise
        # BaseException: some reading libraries derive their errors from it (afmformats)
        except BaseException as exc:  # noqa: BLE001 - translated, and chained for the traceback
            err = reader_error(exc, path, self)
            if err is exc:
                raise
            raise err from exc

    guarded._specproc_guarded = True
    return guarded


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

_HDF5_TRUNCATED = re.compile(r"truncated file: eof = (\d+).*stored_eof = (\d+)")
_HDF5_DETAIL = re.compile(r"\(([^()]*)\)\s*$")


def hdf5_reason(exc: BaseException) -> str:
    """An h5py / HDF5 library failure to open or walk a file, as a reason for the user.

    h5py raises ``OSError`` / ``RuntimeError`` whose text is the HDF5 library's: ``Unable to
    synchronously open file (truncated file: eof = 512, sblock->base_addr = 0, stored_eof =
    27112)``. The HDF5 detail in the last parentheses is kept in words (it tells a truncated
    copy from a file that is not HDF5 at all), the Python and C-API parts are not.
    """
    msg = str(exc)
    m = _HDF5_TRUNCATED.search(msg)
    if m:
        return (f"truncated HDF5 file: {int(m.group(1)):,} bytes of the {int(m.group(2)):,} its header "
                "declares (an interrupted copy or download?)")
    if "file signature not found" in msg:
        return "not an HDF5 file (no HDF5 signature)"
    if isinstance(exc, MemoryError):
        return "not an HDF5 file or damaged: its header declares more data than can be held in memory"
    d = _HDF5_DETAIL.search(msg)
    detail = d.group(1).strip() if d else ""
    if not detail or not re.fullmatch(r"[A-Za-z][A-Za-z0-9 ,.'/-]{0,80}", detail):
        detail = "its structure cannot be decoded"
    return f"not an HDF5 file or damaged: {detail}"


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
        Naming the offending object and the reason; a file h5py cannot open or walk is refused
        in the words of :func:`hdf5_reason` ("truncated HDF5 file: ...", "not an HDF5 file or
        damaged: <HDF5's detail>"), never with h5py's ``OSError`` / ``RuntimeError`` text.
    """
    import h5py

    path = Path(path)
    try:
        f = h5py.File(path, "r")  # default (sec2) driver: one file, no family/split members
    except Exception as exc:
        raise ReaderError(hdf5_reason(exc), path) from exc
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
        raise ReaderError(hdf5_reason(exc), path) from exc
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
        raise ReaderError(library_reason(exc), path) from exc
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
