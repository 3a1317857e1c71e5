"""A folder of electrochemistry exports read as one measurement.

Two layouts, recognised from what the files hold (each file read by its own echem reader):

* **a series of impedance spectra** — one file per temperature (``EIS_030C.DTA``, ``EIS_036C.DTA``...)
  or per cycle — becomes a ``("spectrum", "frequency")`` series on one frequency grid, with the
  ``temperature_C`` of each spectrum (its file's temperature column, header, or name) and the file
  names as ``label``; a temperature series is what the Arrhenius analysis reads;
* **a linked experiment** — impedance before, a chronoamperometry, impedance after (EC-Lab writes
  ``name_01_PEIS_C01.mpt``, ``name_02_CA_C01.mpt``, ``name_03_PEIS_C01.mpt``) — becomes the time
  series, with the spectra of the same experiment in ``attrs["impedance"]``: a list of
  ``{"label", "position": "before" | "after", "frequency_Hz", "z_real_ohm", "z_imag_ohm"}``
  (plain numbers, saved with the measurement). Bruce–Vincent reads this.

Files are taken in EC-Lab's sequence order (the ``_NN_`` number in the name), else by name.
Files that no echem reader recognises by content or extension are ignored (notes, pictures); a
file with an echem extension that cannot be read refuses the folder, naming the file (a series
never silently loses a temperature); a folder with two time series is refused.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..core.errors import ReaderError
from .base import Reader, require_file

_SEQ = re.compile(r"_(\d{1,3})_")


def _file_readers():
    from .echem_biologic import EcLabMprReader, EcLabMptReader
    from .echem_gamry import GamryDtaReader
    from .echem_text import EchemTextReader
    from .echem_zview import ZViewReader

    return [EcLabMptReader(), EcLabMprReader(), GamryDtaReader(), ZViewReader(), EchemTextReader()]


#: a folder with more entries is not sniffed file by file (an echem series has tens of files)
MAX_FILES = 500


def _recognised(folder: Path) -> tuple[list[tuple[Path, Reader]], int]:
    entries = []
    for k, p in enumerate(folder.iterdir()):
        if k >= MAX_FILES:
            return [], k
        entries.append(p)
    files = sorted(p for p in entries if p.is_file() and not p.name.startswith("."))
    readers = _file_readers()
    out = []
    for f in files:
        # by content, else by an echem extension (.mpt, .DTA, .z...): a damaged member of a series
        # is then read by its reader and refused naming it, never silently left out of the series
        r = (next((r for r in readers if _safe(r, f)), None)
             or next((r for r in readers if r.matches_extension(f)), None))
        if r is not None:
            out.append((f, r))
    return out, len(files)


def _safe(r: Reader, f: Path) -> bool:
    try:
        return bool(r.guess_can_open(f))
    except Exception:
        return False


def _order(p: Path):
    m = _SEQ.search(p.name)
    return (int(m.group(1)) if m else 10 ** 6, p.name)


class EchemFolderReader(Reader):
    """A folder of echem exports: a temperature/cycle series of spectra, or PEIS - CA - PEIS."""

    name = "echem-folder"
    priority = Reader.HEADER
    library = "specproc"
    description = ("folder of echem exports: impedance series (one file per temperature or cycle) or a linked "
                   "experiment (impedance, chronoamperometry, impedance)")
    technique = "echem"
    extensions = ()
    reads_folders = True

    def guess_can_open(self, path: Path) -> bool:
        p = Path(path)
        if not p.is_dir():
            return False
        try:
            found, n = _recognised(p)
        except OSError:
            return False
        return len(found) >= 2 and len(found) * 2 >= n

    def read(self, path: Path, sample: str | None = None):
        """Read the folder.

        Parameters
        ----------
        path : Path
            The folder.
        sample : str, optional
            Sample name (default: the folder name).

        Returns
        -------
        xarray.DataArray
            An impedance series or a time series with ``attrs["impedance"]``.
        """
        from ..core.provenance import file_provenance
        from .echem_common import stack_spectra, temperature_from_name

        p = require_file(Path(path), "folder")
        if not p.is_dir():
            raise ReaderError("not a folder: the echem-folder reader reads a folder of electrochemistry exports "
                              "(give a single export to its own reader)", p)
        found, _ = _recognised(p)
        if len(found) < 2:
            raise ReaderError(f"{len(found)} electrochemistry file(s) in the folder (need >= 2)", p)
        found.sort(key=lambda fr: _order(fr[0]))
        parts = [(f, r.read(f)) for f, r in found]
        timeseries = [(f, m) for f, m in parts if m.attrs.get("signal_type") != "impedance"]
        spectra = [(f, m) for f, m in parts if m.attrs.get("signal_type") == "impedance"]
        name = sample or p.name
        prov = file_provenance(p, self.name)
        if len(timeseries) > 1:
            raise ReaderError(f"{len(timeseries)} time series in one folder ({', '.join(f.name for f, _ in timeseries)}):"
                              " a linked experiment has one", p)
        if timeseries:
            return _linked(timeseries[0], spectra, parts, name, prov, p)
        flat, temps, labels = [], [], []
        for f, m in spectra:
            if m.ndim == 2:
                raise ReaderError(f"{f.name} is itself a series: a folder series takes one spectrum per file", p)
            flat.append((np.asarray(m.coords["frequency"].values), np.asarray(m.values)))
            t = m.attrs["acquisition"].get("temperature_C")
            temps.append(t if t is not None else temperature_from_name(f))
            labels.append(f.name)
        have_t = all(t is not None for t in temps)
        acq = dict(spectra[0][1].attrs["acquisition"])
        acq.pop("temperature_C", None)
        return stack_spectra(flat, p, acq, temps if have_t else None, "per file" if have_t else None,
                             cycles=[float(k) for k in range(1, len(flat) + 1)], sample=name, labels=labels,
                             original_metadata={"files": labels}, provenance=prov, source=str(p))


def _linked(ts, spectra, parts, name, prov, folder):
    f_ts, m = ts
    pos = [f for f, _ in parts].index(f_ts)
    imp = []
    for f, s in spectra:
        if s.ndim != 1:
            raise ReaderError(f"{f.name}: a linked experiment takes single spectra", folder)
        before = [f2 for f2, _ in parts].index(f) < pos
        z = np.asarray(s.values)
        imp.append({"label": f.name, "position": "before" if before else "after",
                    "frequency_Hz": np.asarray(s.coords["frequency"].values, float).tolist(),
                    "z_real_ohm": z.real.tolist(), "z_imag_ohm": z.imag.tolist()})
    out = m.copy()
    out.attrs = dict(m.attrs, sample=name, provenance=prov, impedance=imp)
    out.attrs["original_metadata"] = {"files": [f.name for f, _ in parts], "time_series": f_ts.name,
                                      "time_series_metadata": m.attrs.get("original_metadata")}
    return out
