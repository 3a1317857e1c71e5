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

import hashlib
import hmac
import json
import os
import secrets
import warnings
from pathlib import Path

from .._version import __version__
from .schema import Task, canonical_json

FORMAT = "specproc-cache"
VERSION = 2
#: entries above this size are not read (a forged header must not make us allocate gigabytes)
MAX_ENTRY_BYTES = 1 << 30
_KEY_CACHE: dict[str, bytes] = {}


def cache_key(task: Task) -> str:
    """Cache key of a task whose ``sha256`` (input content hash) is set."""
    payload = {"input_sha256": task.sha256, "processor": task.processor, "params": task.params,
               "reader": task.reader, "reader_options": task.reader_options, "specproc": __version__,
               "sample": task.sample, "technique": task.technique, "metadata": task.metadata,
               "format": VERSION}
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


def _key_file() -> Path:
    env = os.environ.get("SPECPROC_CACHE_KEY_FILE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "specproc" / "cache.key"


def secret_key() -> bytes:
    """This user's cache HMAC key (created on first use, mode 0600)."""
    path = _key_file()
    k = _KEY_CACHE.get(str(path))
    if k is not None:
        return k
    try:
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(secrets.token_bytes(32))
            except FileExistsError:
                pass
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
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
        """Remove temporary files left by an interrupted run (call under the output lock)."""
        n = 0
        if self.folder.is_dir():
            for p in self.folder.iterdir():
                if p.name.startswith(".") and (p.name.endswith(".tmp") or p.name.startswith(".tmp-")):
                    try:
                        p.unlink()
                        n += 1
                    except OSError:
                        pass
                elif p.suffix == ".pkl":  # old pickle entries are never loaded; drop them
                    try:
                        p.unlink()
                    except OSError:
                        pass
        return n
