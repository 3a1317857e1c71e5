"""Result cache: one JSON file per (input content, measurement labels, processor, parameters, version).

Entries never execute anything when loaded. An entry is ``DIR/cache/<key>.json``: one header
line (JSON: format, version, key, payload length, HMAC-SHA256 of the payload) and the payload,
:meth:`Result.to_state` as JSON (numbers, strings, base64 arrays of plain dtypes — no pickle,
no class names). On load the header, the key, the length and the HMAC are checked and the
payload is rebuilt by :meth:`Result.from_dict`; anything wrong is a miss (and the entry is
removed), never an error and never code.

The HMAC key is per user (``$SPECPROC_CACHE_KEY_FILE``, else
``$XDG_CACHE_HOME/specproc/cache.key`` or ``~/.cache/specproc/cache.key``, created 0600): a
person who can write into an output folder but is not you cannot plant results that your next
run would take as its own (they are recomputed instead).

The key covers everything that changes a result: the input's content hash, the reader and its
options, the processor and its validated parameters, the specproc version, and everything the
YAML says about the measurement (sample label, technique, metadata) — so relabelling samples
never serves results with old labels.
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import json
import os
import re
import secrets
import stat
import sys
import warnings
from pathlib import Path

from .._version import __version__
from .schema import Task, canonical_json

FORMAT = "specproc-cache"
VERSION = 2
#: entries above this size are not read (a forged header must not make us allocate gigabytes)
MAX_ENTRY_BYTES = 1 << 30
_KEY_CACHE: dict[str, bytes] = {}
#: the key file is opened without following a link and without blocking (a FIFO planted as the
#: key file must not hang every run)
_KEY_OPEN = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)


def cache_key(task: Task) -> str:
    """Cache key of a task whose ``sha256`` (content hash of every file of the input) is set.

    Besides the input's content and what the YAML says, the key holds the code that runs:
    :func:`code_fingerprint` (every file of the installed specproc package and the versions of
    its dependencies) and the source of a third-party processor plugin. A change of a reader,
    a processor or a library is never served from an older cache entry.
    """
    payload = {"input_sha256": task.sha256, "processor": task.processor, "params": task.params,
               "reader": task.reader, "reader_options": task.reader_options, "specproc": __version__,
               "code": code_fingerprint(), "plugin": _plugin_fingerprint(task.processor),
               "sample": task.sample, "technique": task.technique, "metadata": task.metadata,
               "format": VERSION}
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """SHA-256 of the installed specproc package (every file but bytecode) and of the versions of
    the distributions it requires; computed once per process (~10 ms for ~200 files)."""
    import importlib.metadata as md

    pkg = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for top, dirs, files in os.walk(pkg):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for f in sorted(files):
            if f.endswith((".pyc", ".pyo")):
                continue
            q = Path(top) / f
            h.update(str(q.relative_to(pkg)).encode() + b"\0")
            try:
                h.update(q.read_bytes())
            except OSError:
                h.update(b"<unreadable>")
    try:
        reqs = md.requires("specproc") or []
    except md.PackageNotFoundError:  # running from a source tree that is not installed
        reqs = []
    for r in sorted(reqs):
        if "extra ==" in r:
            continue
        name = re.split(r"[\s<>=!~;\[(]", r, maxsplit=1)[0]
        try:
            h.update(f"{name}=={md.version(name)}\n".encode())
        except md.PackageNotFoundError:
            h.update(f"{name} missing\n".encode())
    return h.hexdigest()


@functools.lru_cache(maxsize=None)
def _plugin_fingerprint(processor: str) -> str | None:
    """SHA-256 of a third-party processor's module file (None for specproc's own processors,
    which :func:`code_fingerprint` covers, and for processors that cannot be loaded)."""
    from .. import plugins

    try:
        cls = plugins.get("processors", processor)
        mod = sys.modules[type(cls).__module__ if not isinstance(cls, type) else cls.__module__]
        path = Path(mod.__file__).resolve()
    except Exception:
        return None
    if Path(__file__).resolve().parents[1] in path.parents:
        return None
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _key_file() -> Path:
    from ..core.files import cache_key_path

    return cache_key_path()


def secret_key() -> bytes:
    """This user's cache HMAC key (created on first use, mode 0600)."""
    path = _key_file()
    k = _KEY_CACHE.get(str(path))
    if k is not None:
        return k
    try:
        try:
            fd = os.open(path, _KEY_OPEN)
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(secrets.token_bytes(32))
            except FileExistsError:
                pass
            fd = os.open(path, _KEY_OPEN)
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise PermissionError(f"{path} is not a regular file")
            if hasattr(os, "getuid") and (st.st_uid != os.getuid() or st.st_mode & 0o077):
                raise PermissionError(f"{path} must be owned by you and not readable by others")
            k = fh.read(64)
        if len(k) < 16:
            raise ValueError(f"{path} is too short")
    except (OSError, ValueError) as exc:  # no usable key file: cache works within this process only
        warnings.warn(f"specproc cache key unavailable ({exc}); cached results will not be reused "
                      "across runs", RuntimeWarning, stacklevel=2)
        k = secrets.token_bytes(32)
    _KEY_CACHE[str(path)] = k
    return k


class ResultCache:
    """:class:`~specproc.core.result.Result` objects in ``folder`` keyed by :func:`cache_key`."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def get(self, key: str):
        """The cached Result, or None (missing, damaged, forged or from another version)."""
        from ..core.result import Result

        p = self._path(key)
        try:
            if not p.is_file() or p.is_symlink() or p.stat().st_size > MAX_ENTRY_BYTES:
                return None
            with open(p, "rb") as fh:
                header = json.loads(fh.readline(4096))
                payload = fh.read(MAX_ENTRY_BYTES + 1)
            ok = (isinstance(header, dict) and header.get("format") == FORMAT
                  and header.get("version") == VERSION and header.get("key") == key
                  and header.get("length") == len(payload)
                  and hmac.compare_digest(str(header.get("mac", "")), self._mac(key, payload)))
            if not ok:
                raise ValueError("header, length or signature mismatch")
            return Result.from_dict(json.loads(payload))
        except Exception:  # damaged or planted entry: a miss; remove it so it is rebuilt
            try:
                p.unlink()
            except OSError:
                pass
            return None

    @staticmethod
    def _mac(key: str, payload: bytes) -> str:
        return hmac.new(secret_key(), key.encode() + b"\n" + payload, hashlib.sha256).hexdigest()

    def put(self, key: str, result) -> None:
        """Store ``result`` (``TypeError`` when it holds something that cannot be stored safely)."""
        from ..core.files import atomic_write

        payload = json.dumps(result.to_state(), allow_nan=False, separators=(",", ":")).encode()
        header = json.dumps({"format": FORMAT, "version": VERSION, "key": key, "length": len(payload),
                             "mac": self._mac(key, payload)}).encode()

        def write(tmp):
            with open(tmp, "wb") as fh:
                fh.write(header + b"\n" + payload)

        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write(self._path(key), write)

    def clean_temporaries(self) -> int:
        """Remove temporary files left by an interrupted run (call under the output lock).

        Only files named as this cache names them (``<key>.json`` temporaries, old
        ``<key>.pkl`` entries, which are never loaded) are removed, never through a link: a
        cache folder holding anything else keeps it.
        """
        n = 0
        if self.folder.is_dir() and not self.folder.is_symlink():
            for p in self.folder.iterdir():
                m = _OURS.match(p.name)
                if m is None or not (p.is_file() or p.is_symlink()):
                    continue
                if m.group("tmp") or m.group("ext") == "pkl":
                    try:
                        p.unlink()
                        n += bool(m.group("tmp"))
                    except OSError:
                        pass
        return n


#: names of the files a cache folder holds: entries ``<key>.json``, their temporaries
#: ``.<key>.json.<random>.tmp`` (core.files.atomic_write) and old ``<key>.pkl`` entries
_OURS = re.compile(r"^(?P<dot>\.)?[0-9a-f]{64}\.(?P<ext>json|pkl)(?P<tmp>\.[^/]+\.tmp)?$")
