"""Bruker diffraction files (``.raw`` RAW v1–v4, ``.brml``): recognised and refused with the export to use.

No maintained Python reader installs here: ``xylib-py`` (the only one reading RAW v1–v4) is a
C++/SWIG source package whose build needs swig and Boost (it fails in this environment) and has
had no release since 2020 (``xylib-py-wheels`` has no wheel for this platform either);
``bruker-powderxrd-parser`` is new and needs Python 3.13 or later. Rather than a
home-made binary parser, these files are recognised by their magic bytes (so the user gets a
precise message instead of "no reader recognises this file") and refused with the export to use.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

from ..core.errors import ReaderError
from .base import Reader, head_bytes, require_file

#: First bytes of Bruker/Siemens RAW versions 1, 2, 3 (1.01) and 4
_RAW_MAGIC = (b"RAW ", b"RAW2", b"RAW1.01", b"RAW4.00")

EXPORT_HINT = ("export the scan from DIFFRAC.EVA or DIFFRAC.COMMANDER as .xy (File > Export > "
               "'XY' / 'ASCII'), or convert with PowDLL, then read the .xy file")


class BrukerXrdReader(Reader):
    """Bruker RAW / BRML: recognised, refused with the export to use (no maintained reader)."""

    name = "bruker-xrd"
    priority = Reader.SIGNATURE
    library = "specproc (recognise and refuse)"
    description = "Bruker .raw/.brml diffraction files: recognised and refused (export .xy from DIFFRAC.EVA)"
    technique = "xrd"
    extensions = (".brml",)
    url = "https://www.bruker.com/"

    def guess_can_open(self, path: Path) -> bool:
        p = Path(path)
        head = head_bytes(p, 8)
        if any(head.startswith(m) for m in _RAW_MAGIC):
            return True
        return p.suffix.lower() == ".brml" and head.startswith(b"PK")

    def read(self, path: Path):
        """Refuse with the reason and the export to use (always raises :class:`ReaderError`)."""
        path = require_file(Path(path))
        head = head_bytes(path, 8)
        if path.suffix.lower() == ".brml":
            if not zipfile.is_zipfile(path):
                raise ReaderError("not a Bruker BRML file (a BRML is a zip archive)", path)
            kind = "Bruker BRML (DIFFRAC.SUITE)"
        elif any(head.startswith(m) for m in _RAW_MAGIC):
            ver = {b"RAW ": "1", b"RAW2": "2", b"RAW1.01": "3", b"RAW4.00": "4"}
            v = next(v for m, v in ver.items() if head.startswith(m))
            kind = f"Bruker RAW version {v}"
        else:
            raise ReaderError("not a Bruker diffraction file", path)
        raise ReaderError(f"{kind} files cannot be read here (no maintained reader: xylib-py does not build); "
                          f"{EXPORT_HINT}", path)
