"""More AFM force-curve containers read by :mod:`afmformats` (issue #28): JPK QI series
(``.jpk-qi-series``) and afmformats' own exports (``.h5`` HDF5, ``.tab`` text).

Both readers are :class:`~specproc.io.afm_force.ForceCurveReader` with other files: the same
measurement layout (approach force in N, dims ``("y", "x", "point")``, ``height`` coordinate in
m; see that module), the same turning-point split and padding. What differs is recognising the
files and the checks before afmformats opens them:

* ``.jpk-qi-series``: the JPK ZIP container of a Quantitative Imaging series (the same index /
  segments / channels layout as ``.jpk-qi-data``); refused: a ZIP that is not a JPK container
  (no ``header.properties``), entries with absolute or ``..`` names or symlinks.
* ``.h5``: afmformats' HDF5 export (root attributes ``software`` / ``software version``, one
  group per curve ``0``, ``1``...); an HDF5 file that refers to other files (external links,
  external storage, virtual datasets) or decodes to more than the input limit is refused before
  any data are read (:func:`specproc.io.base.check_hdf5_self_contained`); other HDF5 files
  (HyperSpy, NeXus...) are refused naming what is missing.
* ``.tab``: afmformats' tab-separated export (first line ``# afmformats <version>``).
"""
from __future__ import annotations

import zipfile
from pathlib import Path
from typing import ClassVar

from ..core.errors import ReaderError
from .afm_force import ForceCurveReader
from .base import (check_decoded_size, check_hdf5_self_contained, check_zip_self_contained, first_line,
                   head_bytes, require_file)

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


class JpkQiSeriesReader(ForceCurveReader):
    """JPK Quantitative Imaging series (``.jpk-qi-series``) via afmformats: approach force maps."""

    name: ClassVar[str] = "jpk-qi-series"
    priority: ClassVar[int] = ForceCurveReader.SIGNATURE
    description: ClassVar[str] = "JPK QI series (.jpk-qi-series) force maps via afmformats: approach force (N) vs height (m)"
    technique: ClassVar[str] = "afm"
    extensions: ClassVar[tuple[str, ...]] = (".jpk-qi-series",)
    url: ClassVar[str] = "https://github.com/AFM-analysis/afmformats"
    library: ClassVar[str] = "afmformats"
    notes: ClassVar[str] = ("force-distance curves of every QI pixel (approach segment, grid positions); refused: "
                            "ZIP files that are not JPK containers, unsafe ZIP entries, curves without force/height")

    def guess_can_open(self, path: Path) -> bool:
        p = Path(path)
        return p.is_file() and self.matches_extension(p) and head_bytes(p, 2) == b"PK"

    def read(self, path: Path, n_points: int | None = None, sample: str | None = None,
             split: str = "turning-point"):
        """Read the approach segments of every curve of a QI series (see :meth:`ForceCurveReader.read`)."""
        p = require_file(Path(path))
        check_zip_self_contained(p)
        try:
            with zipfile.ZipFile(p) as z:
                names = set(z.namelist())
        except (zipfile.BadZipFile, OSError) as exc:
            raise ReaderError(f"not a readable JPK container ({exc})", p) from None
        if "header.properties" not in names:
            raise ReaderError("a ZIP file without header.properties: not a JPK QI series", p)
        if not any(n.startswith("index/") for n in names):
            raise ReaderError("a JPK container without curves (no index/ folder): a QI image only?", p)
        return super().read(p, n_points=n_points, sample=sample, split=split)


class AfmformatsExportReader(ForceCurveReader):
    """Force curves exported by afmformats (``.h5`` HDF5, ``.tab`` text)."""

    name: ClassVar[str] = "afmformats-export"
    priority: ClassVar[int] = ForceCurveReader.SIGNATURE
    description: ClassVar[str] = ("afmformats' own exports of force curves (.h5 HDF5, .tab text): approach force (N) "
                                  "vs height (m)")
    technique: ClassVar[str] = "afm"
    extensions: ClassVar[tuple[str, ...]] = (".h5", ".tab")
    url: ClassVar[str] = "https://afmformats.readthedocs.io/en/stable/sec_file_formats.html"
    library: ClassVar[str] = "afmformats"
    notes: ClassVar[str] = ("HDF5 (one group per curve) and tab-separated exports of afmformats; refused: HDF5 files "
                            "of other software, HDF5 files that read other files, decoded size above the limit")

    def guess_can_open(self, path: Path) -> bool:
        p = Path(path)
        if not p.is_file() or not self.matches_extension(p):
            return False
        if p.name.lower().endswith(".tab"):
            return first_line(p, 256).startswith("# afmformats")
        return head_bytes(p, 8) == HDF5_MAGIC and _afmformats_h5(p) is None

    def read(self, path: Path, n_points: int | None = None, sample: str | None = None,
             split: str = "turning-point"):
        """Read the approach segments of every exported curve (see :meth:`ForceCurveReader.read`)."""
        p = require_file(Path(path))
        if p.name.lower().endswith(".tab"):
            if not first_line(p, 256).startswith("# afmformats"):
                raise ReaderError("not an afmformats .tab export (first line is not '# afmformats <version>')", p)
        else:
            if head_bytes(p, 8) != HDF5_MAGIC:
                raise ReaderError("not an HDF5 file (no HDF5 signature)", p)
            check_decoded_size(check_hdf5_self_contained(p), p, self)
            why = _afmformats_h5(p)
            if why:
                raise ReaderError(f"not an afmformats HDF5 export: {why}", p)
        return super().read(p, n_points=n_points, sample=sample, split=split)


def _afmformats_h5(path: Path) -> str | None:
    """None when ``path`` has the layout of afmformats' HDF5 export, else what is missing."""
    import h5py

    try:
        with h5py.File(path, "r") as h5:
            if "software" not in h5.attrs or "software version" not in h5.attrs:
                return "no 'software' / 'software version' root attributes"
            if "0" not in h5 or not isinstance(h5["0"], h5py.Group):
                return "no curve group '0'"
            if "imaging mode" not in h5["0"].attrs:
                return "curve group '0' has no 'imaging mode' attribute"
            cols = set(h5["0"].keys())
    except OSError as exc:
        return f"cannot open as HDF5 ({exc.__class__.__name__})"
    if "force" not in cols:
        return f"curve group '0' has no force dataset ({', '.join(sorted(cols))})"
    return None
