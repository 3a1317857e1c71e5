"""Provenance records: where a measurement or result came from."""
from __future__ import annotations

import datetime as _dt
import hashlib
import platform
from pathlib import Path

from .._version import __version__


def sha256_path(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file, or of a folder (sorted relative paths and contents).

    Folders (e.g. a Bruker experiment) hash every regular file below them, so any change
    to ``acqus`` or ``fid`` changes the digest.
    """
    p = Path(path)
    h = hashlib.sha256()
    files = [p] if p.is_file() else sorted(q for q in p.rglob("*") if q.is_file())
    for f in files:
        if p.is_dir():
            h.update(str(f.relative_to(p)).encode())
        with open(f, "rb") as fh:
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
