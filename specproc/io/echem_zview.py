"""Scribner ZPlot / ZView impedance files (``.z``), and the ``Z60W Data File`` text variant.

``ZPLOT2 ASCII``: a block of settings (``Surface Area: 1``...) that ends with the column names
(``Freq(Hz) Ampl Bias Time(Sec) Z'(a) Z''(b) GD Err Range``) and ``End Comments``, then rows
separated by tabs or commas. ``Z''(b)`` is the imaginary part itself (negative for a capacitive
arc). ``Z60W Data File`` (the Autolab / Solartron export impedance.py calls "Autolab") has the same
columns after a few quoted lines, comma-separated. Parsed here (impedance.py's ``readZPlot`` is
the reference; it keeps neither the settings nor the time column).
"""
from __future__ import annotations

import re
from pathlib import Path

from ..core.errors import ReaderError
from .base import Reader, first_line, require_file
from .echem_common import Table, build, decode, numeric_block

_MAGIC = ("ZPLOT2 ASCII", "ZPLOT ASCII", '"Z60W DATA FILE', "Z60W DATA FILE")


def _delimiter(line: str) -> str | None:
    return "\t" if "\t" in line else ("," if "," in line else None)


class ZViewReader(Reader):
    """ZPlot/ZView ``.z`` impedance spectra (``ZPLOT2 ASCII``; ``Z60W Data File`` text)."""

    name = "zview"
    priority = Reader.HEADER
    library = "specproc"
    description = "Scribner ZPlot/ZView .z impedance spectra (and the Z60W text variant)"
    technique = "echem"
    extensions = (".z",)
    url = "https://www.scribner.com/software/68-general-electrochemistr376-zview-for-windows/"

    def guess_can_open(self, path: Path) -> bool:
        p = Path(path)
        return p.is_file() and first_line(p).upper().startswith(_MAGIC)

    def read(self, path: Path, sample: str | None = None):
        """Read a ZPlot/ZView ``.z`` file.

        Parameters
        ----------
        path : Path
        sample : str, optional

        Returns
        -------
        xarray.DataArray
            Impedance spectrum (``("frequency",)``, complex Ohm).
        """
        p = require_file(Path(path))
        lines = decode(p.read_bytes()).splitlines()
        head = lines[0].strip().upper() if lines else ""
        if not head.startswith(_MAGIC):
            raise ReaderError("not a ZPlot/ZView file (first line is not 'ZPLOT2 ASCII' or 'Z60W Data File')", p)
        end = next((i for i, ln in enumerate(lines) if ln.strip().startswith("End Comments")), None)
        hdr_i = next((i for i, ln in enumerate(lines[:end if end is not None else 400])
                      if re.search(r"Freq\s*\(Hz\)", ln)), None)
        if hdr_i is None:
            raise ReaderError("no column line with 'Freq(Hz)' in the header", p)
        start = (end + 1) if end is not None else hdr_i + 1
        names = [h.strip().strip('"') for h in re.split(r"\t|,|\s{2,}", lines[hdr_i].strip().strip('"')) if h.strip()]
        try:
            i_f = next(k for k, n in enumerate(names) if n.lower().replace(" ", "").startswith("freq"))
            i_re = next(k for k, n in enumerate(names) if n.replace(" ", "").startswith("Z'(") or n.strip() == "Z'")
            i_im = next(k for k, n in enumerate(names) if n.replace(" ", "").startswith("Z''"))
        except StopIteration:
            raise ReaderError(f"missing columns: need Freq(Hz), Z'(a) and Z''(b) (found {', '.join(names)})", p) from None
        i_t = next((k for k, n in enumerate(names) if n.lower().replace(" ", "").startswith("time(sec)")), None)
        first = next((ln for ln in lines[start:] if ln.strip()), "")
        use = [i_f, i_re, i_im] + ([i_t] if i_t is not None else [])
        data = numeric_block(lines, start, p, _delimiter(first), usecols=use)
        meta = {}
        for ln in lines[1:start]:
            if ":" in ln:
                k, v = ln.split(":", 1)
                meta.setdefault(k.strip(), v.strip())
        area = meta.get("Surface Area")
        try:
            area = float(area) if area is not None else None
        except ValueError:
            area = None
        cols = {"frequency": data[:, 0], "z_real": data[:, 1], "z_imag": data[:, 2]}
        t = Table(cols, names, technique_name=meta.get("Experiment Type") or "impedance", control=None,
                  area_cm2=None if area == 1.0 else area, metadata=meta)   # ZPlot's default area is 1 cm²
        return build(t, p, self.name, sample=sample)
