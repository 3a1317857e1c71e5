"""Gamry Framework ``.DTA`` exports: EIS (``ZCURVE``), chronoamperometry / chronopotentiometry (``CURVE``).

The format: ``EXPLAIN`` on the first line, ``TAG<tab>EISPOT`` (``EISGALV``, ``CHRONOA``, ``CHRONOP``...),
``KEY<tab>TYPE<tab>value<tab>label`` settings (``AREA QUANT 0.785 ...``), and tables introduced by
``NAME<tab>TABLE``: a column-name row and a unit row (``Pt T Vf Im`` / ``# s V vs. Ref. A``),
then tab-indented rows. ``ZCURVE`` holds the impedance (``Freq``, ``Zreal``, ``Zimag``), ``CURVE``
(or ``CURVE1``... ``CURVEn``, joined in order) the time series (``T``, ``Vf``, ``Im``). A run
stopped early (``EXPERIMENTABORTED``) keeps the rows written before. Text columns (``Over``
flags) are skipped. Parsed here: impedance.py's reader (the reference) keeps only frequency and
impedance, and no maintained library reads Gamry's time series.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..core.errors import ReaderError
from .base import Reader, first_line, require_file
from .echem_common import Table, build, columns_from_array, control_from_name, decode, map_columns, numeric_block

_TABLE = re.compile(r"^([A-Z][A-Z0-9_]*)\tTABLE", re.M)


def _settings(lines: list[str]) -> dict:
    out = {}
    for ln in lines:
        parts = ln.split("\t")
        if len(parts) >= 3 and parts[0] and parts[1] in ("QUANT", "LABEL", "POTEN", "IQUANT", "SELECTOR", "TOGGLE"):
            out[parts[0]] = parts[2]
    return out


def _tables(lines: list[str]) -> dict[str, tuple[int, int]]:
    """name -> (first data line, end line) of every TABLE."""
    out = {}
    i = 0
    while i < len(lines):
        m = re.match(r"^([A-Z][A-Z0-9_]*)\tTABLE", lines[i])
        if m:
            start = i + 3                       # header row, unit row, then data
            j = start
            while j < len(lines) and lines[j].startswith("\t"):
                j += 1
            out[m.group(1)] = (i, j)
            i = j
            continue
        i += 1
    return out


class GamryDtaReader(Reader):
    """Gamry Framework ``.DTA`` (EISPOT/EISGALV spectra, CHRONOA/CHRONOP time series)."""

    name = "gamry-dta"
    priority = Reader.HEADER
    library = "specproc"
    description = "Gamry Framework .DTA: EIS spectra (ZCURVE) and chronoamperometry/potentiometry (CURVE)"
    technique = "echem"
    extensions = (".dta",)
    url = "https://www.gamry.com/"
    max_input_bytes = 1 << 30

    def guess_can_open(self, path: Path) -> bool:
        p = Path(path)
        return p.is_file() and first_line(p).upper() == "EXPLAIN" and p.suffix.lower() == ".dta"

    def read(self, path: Path, sample: str | None = None):
        """Read a Gamry ``.DTA`` file.

        Parameters
        ----------
        path : Path
        sample : str, optional

        Returns
        -------
        xarray.DataArray
        """
        p = require_file(Path(path))
        lines = decode(p.read_bytes()).splitlines()
        if not lines or lines[0].strip().upper() != "EXPLAIN":
            raise ReaderError("not a Gamry .DTA file (first line is not 'EXPLAIN')", p)
        tag = next((ln.split("\t")[1].strip() for ln in lines[:5] if ln.startswith("TAG\t")), None)
        settings = _settings(lines[:400])
        aborted = next((i for i, ln in enumerate(lines) if ln.startswith("EXPERIMENTABORTED")), None)
        if aborted is not None:
            lines = lines[:aborted]
        tables = _tables(lines)
        if "ZCURVE" in tables:
            names = ["ZCURVE"]
        else:
            names = sorted((n for n in tables if re.fullmatch(r"CURVE\d*", n)),
                           key=lambda n: int(n[5:] or 0))
        if not names:
            raise ReaderError(f"no ZCURVE or CURVE table (tables: {', '.join(tables) or 'none'}; tag {tag!r})", p)
        blocks, headers = [], None
        for n in names:
            i, end = tables[n]
            if end <= i + 3:
                continue
            hdr = lines[i + 1].split("\t")[1:]
            units = [u.split(" ")[0] for u in lines[i + 2].split("\t")[1:]]
            cols = map_columns(hdr, p, units)
            order = sorted(cols.values(), key=lambda c: c.index)
            # data rows start with a tab: column k of the header is field k + 1 of a row
            data = numeric_block(lines[:end], i + 3, p, "\t", usecols=[c.index + 1 for c in order])
            for k, c in enumerate(order):
                c.index = k
            blocks.append(columns_from_array(data, cols))
            headers = headers or hdr
        if not blocks:
            raise ReaderError(f"table {names[0]} has no data rows (an aborted run?)", p)
        keys = set.intersection(*(set(b) for b in blocks))
        columns = {k: np.concatenate([b[k] for b in blocks]) for k in keys}
        area = settings.get("AREA")
        try:
            area = float(area) if area is not None else None
        except ValueError:
            area = None
        control = {"EISPOT": None, "EISGALV": None, "CHRONOA": "potentiostatic",
                   "CHRONOP": "galvanostatic"}.get(tag or "", control_from_name(tag))
        t = Table(columns, headers or [], technique_name=tag, control=control, area_cm2=area,
                  metadata={"TAG": tag, **{k: v for k, v in list(settings.items())[:200]}})
        return build(t, p, self.name, sample=sample)
