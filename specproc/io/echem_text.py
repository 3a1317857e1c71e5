"""Electrochemistry column text: CSV (and tab / semicolon text) and Autolab NOVA ASCII exports.

A header row names the columns with their units, in any of the spellings of
:mod:`specproc.io.echem_common` — ``freq/Hz, Re(Z)/Ohm, -Im(Z)/Ohm`` (impedance),
``time/s, Ewe/V, I/mA`` (time series), NOVA's ``Frequency (Hz); Z' (Ω); -Z'' (Ω)`` and
``Time (s); WE(1).Potential (V); WE(1).Current (A)``, optional ``Temperature/°C`` and
``cycle`` columns. Lines starting with ``#`` before the header are ``# key: value`` metadata:
``sample``, ``temperature_C``, ``area_cm2``, ``control`` (``potentiostatic``/``galvanostatic``)
and ``technique``. Separators: comma, semicolon or tab (decimal commas with ``;``/tab).

Only files whose header names an impedance set (frequency, real and imaginary impedance) or a
time-series set (time, potential, current) are recognised: other CSV belongs to other techniques.
"""
from __future__ import annotations

from pathlib import Path

from ..core.errors import ReaderError
from .base import Reader, head_bytes, require_file
from .echem_common import build, control_from_name, decode, map_columns, table_from


def _delimiter(line: str) -> str | None:
    for d in ("\t", ";", ","):
        if d in line:
            return d
    return None


def _tokens(line: str) -> list[str]:
    d = _delimiter(line)
    return [t.strip().strip('"') for t in (line.split(d) if d else line.split())]


def _is_echem_header(line: str | None) -> bool:
    if not line:
        return False
    toks = _tokens(line)
    if len(toks) < 3:
        return False
    try:
        cols = map_columns(toks, "header")
    except ReaderError:
        return False
    return {"frequency", "z_real", "z_imag"} <= set(cols) or {"time", "potential", "current"} <= set(cols)


#: largest electrode area believed (cm²): 1 m², far above any cell; a larger header value is corrupt
MAX_AREA_CM2 = 1.0e4


class EchemTextReader(Reader):
    """CSV / text / NOVA ASCII exports whose header names impedance or time-series columns."""

    name = "echem-text"
    priority = Reader.COLUMNS
    library = "specproc"
    description = ("electrochemistry CSV/text and Autolab NOVA ASCII (header names the columns: freq/Hz, "
                   "Re(Z)/Ohm, -Im(Z)/Ohm or time/s, Ewe/V, I/mA)")
    technique = "echem"
    extensions = ()           # .csv/.txt are too generic: content sniffing only
    url = ""
    max_input_bytes = 1 << 30

    def guess_can_open(self, path: Path) -> bool:
        p = Path(path)
        if not p.is_file():
            return False
        head = head_bytes(p, 8192)
        if not head or b"\x00" in head:
            return False
        lines = decode(head).splitlines()[:-1] or decode(head).splitlines()     # the last line may be cut
        first = next((ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")), None)
        return _is_echem_header(first)

    def read(self, path: Path, sample: str | None = None, control: str | None = None):
        """Read an impedance spectrum or a time series from column text.

        Parameters
        ----------
        path : Path
        sample : str, optional
            Sample name (default: ``# sample:`` line, else the file name).
        control : {"potentiostatic", "galvanostatic"}, optional
            How a time series was controlled (default: ``# control:`` line, else unknown).

        Returns
        -------
        xarray.DataArray
        """
        p = require_file(Path(path))
        data = p.read_bytes()
        if b"\x00" in data[:8192]:
            raise ReaderError("not a text file (binary content): the echem-text reader reads column text exports", p)
        lines = decode(data).splitlines()
        meta, hdr_i = {}, None
        for i, ln in enumerate(lines):
            s = ln.strip()
            if not s:
                continue
            if s.startswith("#"):
                if ":" in s:
                    k, v = s[1:].split(":", 1)
                    meta[k.strip()] = v.strip()
                continue
            hdr_i = i
            break
        if hdr_i is None:
            raise ReaderError("no header row (expected column names such as freq/Hz, Re(Z)/Ohm, -Im(Z)/Ohm or "
                              "time/s, Ewe/V, I/mA)", p)
        delim = _delimiter(lines[hdr_i])
        headers = _tokens(lines[hdr_i])

        def num(key):
            try:
                return float(meta[key]) if key in meta else None
            except ValueError:
                raise ReaderError(f"'# {key}: {meta[key]}' is not a number", p) from None

        area = num("area_cm2")
        if area is not None and not 0 < area <= MAX_AREA_CM2:
            raise ReaderError(f"'# area_cm2: {meta['area_cm2']}': an electrode area must be > 0 and at most "
                              f"{MAX_AREA_CM2:g} cm² (1 m²)", p)
        ctl = control or meta.get("control") or control_from_name(meta.get("technique"))
        if ctl not in (None, "potentiostatic", "galvanostatic"):
            raise ReaderError(f"control {ctl!r}: potentiostatic or galvanostatic", p)
        t = table_from(headers, lines, hdr_i + 1, p, delim, technique_name=meta.get("technique"), control=ctl,
                       area_cm2=area, temperature_C=num("temperature_C"), metadata=meta)
        return build(t, p, self.name, sample=sample or meta.get("sample"))
