"""Result cache: one pickle per (input content, processor, parameters, specproc version).

The key is the SHA-256 of the canonical JSON of the input's content hash (files and Bruker
folders hashed by :func:`specproc.core.provenance.sha256_path`), the reader and its options,
the processor name, its validated parameters and the specproc version — so any change to the
data, the parameters or the code version is a miss. Entries are written atomically (temp file
+ ``os.replace``); an unreadable entry is a miss, never an error.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from pathlib import Path

from .._version import __version__
from .schema import Task, canonical_json


def cache_key(task: Task) -> str:
    """Cache key of a task whose ``sha256`` (input content hash) is set."""
    payload = {"input_sha256": task.sha256, "processor": task.processor, "params": task.params,
               "reader": task.reader, "reader_options": task.reader_options, "specproc": __version__}
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


class ResultCache:
    """Pickled :class:`~specproc.core.result.Result` objects in ``folder`` keyed by :func:`cache_key`."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.pkl"

    def get(self, key: str):
        p = self._path(key)
        if not p.is_file():
            return None
        try:
            with open(p, "rb") as fh:
                return pickle.load(fh)
        except Exception:  # a truncated / stale entry is just a miss
            return None

    def put(self, key: str, result) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".pkl", dir=self.folder)
        try:
            with os.fdopen(fd, "wb") as fh:
                pickle.dump(result, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, self._path(key))
        except Exception:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
