"""BioLogic EC-Lab exports: ``.mpt`` text (read here) and ``.mpr`` binary (through galvani).

``.mpt`` (EC-Lab "Export as text"): ``EC-Lab ASCII FILE``, ``Nb header lines : N`` (the column
header is line ``N``), the technique's name on line 4 (``Potentio Electrochemical Impedance
Spectroscopy``, ``Chronoamperometry / Chronocoulometry``, ``Galvanostatic Cycling with Potential
Limitation``...), ``key : value`` settings (``Electrode surface area : 0.785 cm²``), then
tab-separated columns named with units (``freq/Hz``, ``Re(Z)/Ohm``, ``-Im(Z)/Ohm``, ``time/s``,
``Ewe/V``, ``<I>/mA``, ``cycle number``, ``Temperature/°C``). A file with several impedance loops
becomes a series (one spectrum per ``cycle number``). Decimal commas (French/German locales) are
accepted. Parsed here: the format is a header and a numeric table, and no maintained BSD-licensed
library reads it (galvani reads only ``.mpr``; yadg needs pandas < 3).

``.mpr``: the binary EC-Lab file, read with galvani (GPL-3.0, so an optional extra:
``pip install specproc[echem-mpr]``); its column names are EC-Lab's, handled by the same code.
"""
from __future__ import annotations

import re
from pathlib import Path

from ..core.errors import ReaderError
from .base import Reader, first_line, head_bytes, library_reason, require_file
from .echem_common import Table, build, control_from_name, decode, table_from

_NB = re.compile(r"Nb\s+header\s+lines\s*:\s*(\d+)", re.I)
_AREA = re.compile(r"Electrode surface area\s*:\s*([0-9.,Ee+-]+)\s*cm", re.I)
_KV = re.compile(r"^\s*([^:\t]{2,60}?)\s+:\s*(.*)$")


def _num(s: str) -> float | None:
    try:
        return float(s.replace(",", "."))
    except ValueError:
        return None


class EcLabMptReader(Reader):
    """BioLogic EC-Lab text exports (``.mpt``): impedance spectra (series by loop), CA, GCPL..."""

    name = "eclab-mpt"
    priority = Reader.HEADER
    library = "specproc"
    description = "BioLogic EC-Lab text export (.mpt): PEIS/GEIS spectra and series, CA, CP/GCPL time series"
    technique = "echem"
    extensions = (".mpt",)
    url = "https://www.biologic.net/support-software/ec-lab-software/"
    max_input_bytes = 1 << 30

    def guess_can_open(self, path: Path) -> bool:
        p = Path(path)
        return p.is_file() and first_line(p).upper().startswith(("EC-LAB ASCII FILE", "BIO-LOGIC ASCII"))

    def read(self, path: Path, sample: str | None = None):
        """Read an EC-Lab ``.mpt`` export.

        Parameters
        ----------
        path : Path
        sample : str, optional
            Sample name (default: the file name without extension).

        Returns
        -------
        xarray.DataArray
            Impedance spectrum / series or potential-current time series (see
            :mod:`specproc.io.echem_common`).
        """
        p = require_file(Path(path))
        text = decode(p.read_bytes())
        lines = text.splitlines()
        if not lines or not lines[0].strip().upper().startswith(("EC-LAB ASCII FILE", "BIO-LOGIC ASCII")):
            raise ReaderError("not an EC-Lab text export (first line is not 'EC-Lab ASCII FILE')", p)
        m = _NB.search("\n".join(lines[:5]))
        if not m:
            raise ReaderError("no 'Nb header lines : N' line: not an EC-Lab .mpt export", p)
        nh = int(m.group(1))
        if nh < 1 or nh > len(lines):
            raise ReaderError(f"'Nb header lines : {nh}' but the file has {len(lines)} lines (truncated?)", p)
        headers = [h for h in lines[nh - 1].split("\t")]
        while headers and not headers[-1].strip():
            headers.pop()
        meta = {}
        for ln in lines[1:nh - 1]:
            kv = _KV.match(ln)
            if kv:
                meta.setdefault(kv.group(1).strip(), kv.group(2).strip())
        tech = next((ln.strip() for ln in lines[2:min(nh - 1, 6)] if ln.strip() and ":" not in ln), None)
        area = _AREA.search("\n".join(lines[:nh]))
        t = table_from(headers, lines, nh, p, "\t", technique_name=tech, control=control_from_name(tech),
                       area_cm2=_num(area.group(1)) if area else None, metadata=meta)
        return build(t, p, self.name, sample=sample)


class EcLabMprReader(Reader):
    """BioLogic EC-Lab binary files (``.mpr``) through galvani (optional, GPL: ``specproc[echem-mpr]``)."""

    name = "eclab-mpr"
    priority = Reader.SIGNATURE
    library = "galvani"
    extra = "echem-mpr"
    extra_module = "galvani"
    description = "BioLogic EC-Lab binary .mpr (galvani, optional extra echem-mpr): spectra and time series"
    technique = "echem"
    extensions = (".mpr",)
    url = "https://github.com/echemdata/galvani"

    def guess_can_open(self, path: Path) -> bool:
        p = Path(path)
        return p.is_file() and head_bytes(p, 24).startswith(b"BIO-LOGIC MODULAR FILE")

    def read(self, path: Path, sample: str | None = None):
        """Read an EC-Lab ``.mpr`` file (needs galvani).

        Parameters
        ----------
        path : Path
        sample : str, optional

        Returns
        -------
        xarray.DataArray
        """
        import numpy as np

        p = require_file(Path(path))
        if not head_bytes(p, 24).startswith(b"BIO-LOGIC MODULAR FILE"):
            raise ReaderError("not an EC-Lab .mpr file (no 'BIO-LOGIC MODULAR FILE' magic)", p)
        try:
            from galvani import BioLogic
        except ImportError:
            raise ReaderError("reading .mpr needs galvani (GPL-3.0, optional): pip install 'specproc[echem-mpr]' "
                              "- or export the file as text (.mpt) from EC-Lab", p) from None
        try:
            mpr = BioLogic.MPRfile(str(p))
        except Exception as exc:  # galvani raises ValueError/NotImplementedError/struct errors on damaged files
            raise ReaderError(f"galvani cannot read this .mpr: {library_reason(exc)} (export it as text, .mpt, "
                              "from EC-Lab)", p) from exc
        data = mpr.data
        names = list(data.dtype.names or ())
        cols = {n: np.asarray(data[n], float) for n in names
                if np.issubdtype(data.dtype[n], np.number)}
        headers = list(cols)
        arr = np.column_stack([cols[h] for h in headers]) if headers else np.empty((0, 0))
        from .echem_common import columns_from_array, map_columns

        mapping = map_columns(headers, p)
        control = None
        if "control/V" in names:
            control = "potentiostatic"
        elif "control/mA" in names:
            control = "galvanostatic"
        t = Table(columns_from_array(arr, mapping) if arr.size else {}, headers, technique_name=None,
                  control=control, metadata={"galvani_version": _galvani_version(),
                                             "startdate": str(getattr(mpr, "startdate", ""))})
        return build(t, p, self.name, sample=sample)


def _galvani_version() -> str:
    try:
        from importlib.metadata import version

        return version("galvani")
    except Exception:
        return "?"
