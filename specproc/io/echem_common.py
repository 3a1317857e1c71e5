"""Shared by the electrochemistry readers: column names, units, and the two measurement shapes.

Every echem reader turns its format into named columns (:class:`Table`) and hands them to
:func:`build`, which makes one of

* an **impedance spectrum**: dim ``("frequency",)`` in Hz (descending), complex values ``Z`` in
  Ohm (``Z' + j Z''``, so a capacitive arc has ``Im Z < 0``), ``signal_type="impedance"``; a file
  holding several sweeps (loops, cycles, a temperature programme) gives a **series**
  ``("spectrum", "frequency")`` with ``temperature_C`` / ``cycle`` coordinates on ``spectrum``;
* a **time series**: dim ``("channel", "time")`` with channels ``potential`` (V) and ``current``
  (A) (``attrs["channel_units"]``), ``signal_type`` ``"chronoamperometry"`` (potentiostatic),
  ``"galvanostatic"`` or ``"timeseries"`` (control unknown: the processor decides from the data).

``attrs["acquisition"]``: ``area_cm2`` (electrode area from the header, None when absent or
EC-Lab's 0.001 cm² placeholder), ``temperature_C`` (and ``temperature_source``: column, header
or file name), ``technique_name`` (the instrument's), ``kind`` (``impedance``/``time``).

Column names are recognised in the spellings of EC-Lab (``freq/Hz``, ``Re(Z)/Ohm``,
``-Im(Z)/Ohm``, ``time/s``, ``Ewe/V``, ``<I>/mA``), NOVA (``Frequency (Hz)``, ``Z' (Ω)``,
``-Z'' (Ω)``, ``WE(1).Current (A)``), Gamry (``Freq``, ``Zreal``, ``Zimag``, ``T``, ``Vf``, ``Im``)
and plain CSV (``frequency_Hz``, ``z_real_ohm``...); units are converted to Hz, Ohm, s, V, A, °C.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.errors import ReaderError

TECHNIQUE = "echem"
CANONICAL = ("frequency", "z_real", "z_imag", "time", "potential", "current", "temperature", "cycle")
#: case matters for these (mega vs milli)
_CASED = {"MHz": 1e6, "mHz": 1e-3, "MOhm": 1e6, "MΩ": 1e6, "mOhm": 1e-3, "mΩ": 1e-3}
_UNIT_FACTORS = {
    "frequency": {"hz": 1.0, "khz": 1e3, "": 1.0},
    "z": {"ohm": 1.0, "ω": 1.0, "ohms": 1.0, "kohm": 1e3, "kω": 1e3, "": 1.0},
    "time": {"s": 1.0, "sec": 1.0, "ms": 1e-3, "min": 60.0, "h": 3600.0, "": 1.0},
    "potential": {"v": 1.0, "mv": 1e-3, "": 1.0},
    "current": {"a": 1.0, "ma": 1e-3, "µa": 1e-6, "μa": 1e-6, "ua": 1e-6, "na": 1e-9, "": 1.0},
}
# name part (lower case, spaces collapsed) -> (canonical, sign)
_NAMES = [
    (r"freq(uency)?|f", "frequency", 1),
    (r"re\(z\)|z'|z′|zre(al)?|z_?re(al)?|z ?real|re_?z", "z_real", 1),
    (r"im\(z\)|z''|z″|zim(ag)?|z_?im(ag)?|z ?imag|im_?z", "z_imag", 1),
    (r"-im\(z\)|-z''|-z″|-zim(ag)?|-z_?im(ag)?|-z ?imag|-im_?z", "z_imag", -1),
    (r"time|elapsed time|time elapsed|test time|t", "time", 1),
    (r"<?ewe>?|e_?we|ecell|e|voltage|potential|we\(1\)\.potential|vf|u|v|ewe-ece", "potential", 1),
    (r"<?i>?|current|we\(1\)\.current|im|i_?cell", "current", 1),
    (r"temperature|temp|t_?cell|sample temperature", "temperature", 1),
    (r"cycle( number)?|z cycle|loop|cycle_?index|cycle no\.?", "cycle", 1),
]
_NAME_RES = [(re.compile(rf"^(?:{pat})$"), canon, sign) for pat, canon, sign in _NAMES]
_UNIT_SPLIT = re.compile(r"^(?P<name>.*?)\s*(?:/\s*(?P<u1>[^/()\[\]]*)|\((?P<u2>[^()]*)\)|\[(?P<u3>[^\[\]]*)\])\s*$")
_TEMP_IN_NAME = re.compile(r"(?<![\d.])(-?\d{1,3}(?:\.\d+)?)\s*(?:°\s*C|degC|deg ?C|C)(?![a-zA-Z])")
#: EC-Lab writes this area when none was entered
ECLAB_PLACEHOLDER_AREA = 0.001


@dataclass
class Column:
    canonical: str
    index: int
    factor: float
    header: str


@dataclass
class Table:
    """Named numeric columns of an export, already in SI-ish units (Hz, Ohm, s, V, A, °C)."""

    columns: dict = field(default_factory=dict)        # canonical -> 1D array
    headers: list = field(default_factory=list)        # the file's column names
    technique_name: str | None = None                  # the instrument's technique ("PEIS", "CA"...)
    control: str | None = None                         # "potentiostatic" / "galvanostatic" / None
    area_cm2: float | None = None
    temperature_C: float | None = None                 # from the header
    metadata: dict = field(default_factory=dict)       # original metadata (header key/values)

    def has(self, *names: str) -> bool:
        return all(n in self.columns for n in names)


def split_unit(header: str) -> tuple[str, str]:
    """``"Re(Z)/Ohm"`` -> ``("re(z)", "Ohm")``; ``"Z' (Ω)"`` -> ``("z'", "Ω")`` (name in lower case,
    the unit as written: ``MHz`` is not ``mHz``)."""
    h = header.strip().strip('"\'').strip()
    h_low = h.lower()
    for name in ("re(z)", "-im(z)", "im(z)", "we(1).current", "we(1).potential"):   # parentheses that are names
        if h_low == name:
            return name, ""
        if h_low.startswith(name) and len(h_low) > len(name):
            rest = h[len(name):].strip()
            m = re.match(r"^(?:/\s*(.*)|\((.*)\)|\[(.*)\])$", rest)
            if m:
                return name, next(g for g in m.groups() if g is not None).strip()
    m = _UNIT_SPLIT.match(h)
    if m and m.group("name"):
        unit = next(g for g in (m.group("u1"), m.group("u2"), m.group("u3")) if g is not None)
        return re.sub(r"\s+", " ", m.group("name").strip().lower()), unit.strip()
    return re.sub(r"\s+", " ", h_low), ""


def _factor(canonical: str, unit: str, header: str, path) -> float | None:
    if unit.replace(" ", "") in _CASED and canonical in ("frequency", "z_real", "z_imag"):
        cased = unit.replace(" ", "")
        if (canonical == "frequency") == cased.endswith("Hz"):
            return _CASED[cased]
    u = unit.replace(" ", "").lower()
    if canonical in ("cycle",):
        return 1.0
    if canonical == "temperature":
        if u in ("°c", "degc", "c", "deg c", "°", ""):
            return 1.0
        if u == "k":
            return -273.15        # marker: convert K -> °C (an offset, not a factor)
        return None
    table = _UNIT_FACTORS["z" if canonical in ("z_real", "z_imag") else canonical]
    if u in table:
        return table[u]
    raise ReaderError(f"column {header!r}: unit {unit!r} not understood for {canonical}", path)


def map_columns(headers: list[str], path, units_row: list[str] | None = None) -> dict[str, Column]:
    """Canonical columns found among ``headers`` (first match wins; unknown columns are ignored).

    ``units_row``: units given on their own row (Gamry), one per header."""
    found: dict[str, Column] = {}
    for i, h in enumerate(headers):
        name, unit = split_unit(h)
        if units_row is not None and i < len(units_row) and not unit:
            unit = units_row[i].strip()
        ul = unit.replace(" ", "").lower()
        for rx, canon, sign in _NAME_RES:
            if rx.match(name):
                if canon == "temperature" and ul not in ("°c", "degc", "c", "k"):
                    break        # "T" / "temp" without a temperature unit is not a temperature
                if canon == "time" and name == "t" and ul not in ("s", "sec", "min", "h", "ms"):
                    break
                if canon in found:
                    break
                fac = _factor(canon, unit, h, path)
                if fac is None:
                    break
                found[canon] = Column(canon, i, sign * fac if canon != "temperature" else fac, h)
                break
    return found


def columns_from_array(data: np.ndarray, cols: dict[str, Column]) -> dict[str, np.ndarray]:
    out = {}
    for canon, c in cols.items():
        v = np.asarray(data[:, c.index], float)
        if canon == "temperature":
            out[canon] = v + c.factor if c.factor < 0 else v
        else:
            out[canon] = v * c.factor
    return out


def temperature_from_name(path) -> float | None:
    """A temperature written in the file or folder name (``EIS_030C.DTA``, ``LiBH4 60 °C.mpt``)."""
    m = _TEMP_IN_NAME.search(Path(path).stem)
    return float(m.group(1)) if m else None


# ----------------------------------------------------------------------------------- builders
def _monotonic_runs(f: np.ndarray) -> list[slice]:
    """Split a frequency column into sweeps: a new sweep starts where the frequency jumps back to
    (within 0.1 decade of) the first sweep's start; any other reversal is an error (None)."""
    lf = np.log10(f)
    d = np.sign(np.diff(lf))
    if d.size == 0:
        return [slice(0, f.size)]
    direction = np.sign(np.sum(d)) or 1.0
    starts = [0]
    for i in range(1, f.size):
        step = lf[i] - lf[i - 1]
        if step * direction < 0 or step == 0:
            if abs(lf[i] - lf[starts[-1]]) < 0.1 and i - starts[-1] >= 3:
                starts.append(i)
                continue
            return [None, i]      # the row where the order breaks
    return [slice(a, b) for a, b in zip(starts, starts[1:] + [f.size])]


def _sweeps(t: Table, path) -> list[np.ndarray]:
    """Row indices of each impedance sweep (by the cycle column, else by frequency restarts)."""
    f = t.columns["frequency"]
    rows = np.arange(f.size)
    groups = []
    if "cycle" in t.columns and np.unique(t.columns["cycle"]).size > 1:
        cyc = t.columns["cycle"]
        for cv in np.unique(cyc):
            groups.append(rows[cyc == cv])
    else:
        groups.append(rows)
    out = []
    for g in groups:
        runs = _monotonic_runs(f[g])
        if runs and runs[0] is None:
            i = g[runs[1]]
            raise ReaderError(f"frequencies are not monotonic: row {i + 1} has {f[i]:.6g} Hz after "
                              f"{f[i - 1]:.6g} Hz (a sweep goes one way; several sweeps need a cycle column "
                              "or must each restart at the first frequency)", path)
        out.extend(g[r] for r in runs)
    return out


def _acquisition(t: Table, kind: str) -> dict:
    area = t.area_cm2
    if area is not None and (not np.isfinite(area) or area <= 0 or abs(area - ECLAB_PLACEHOLDER_AREA) < 1e-12):
        area = None
    return {"kind": kind, "technique_name": t.technique_name, "control": t.control, "area_cm2": area}


def table_from(headers: list[str], lines: list[str], start: int, path, delimiter: str | None,
               units_row: list[str] | None = None, **kw) -> Table:
    """Parse the numeric rows of recognised columns only (text columns elsewhere are skipped)."""
    cols = map_columns(headers, path, units_row)
    if not cols:
        shown = ", ".join(headers[:20])
        shown = shown if len(shown) <= 120 and shown.isprintable() else repr(shown[:120])
        raise ReaderError(f"missing columns: none of the columns is an impedance or time-series column "
                          f"({shown})", path)
    order = sorted(cols.values(), key=lambda c: c.index)
    data = numeric_block(lines, start, path, delimiter, usecols=[c.index for c in order])
    for k, c in enumerate(order):
        c.index = k
    return Table(columns_from_array(data, cols), list(headers), **kw)


def control_from_name(name: str | None) -> str | None:
    """``potentiostatic`` / ``galvanostatic`` from an instrument's technique name, or None."""
    s = (name or "").lower()
    if "impedance" in s or "eis" in s:
        return None
    if any(k in s for k in ("chronoamperometry", "potentiostatic", "constant voltage", "chronoa", "polari")):
        return "potentiostatic"
    if any(k in s for k in ("galvanostatic", "chronopotentiometry", "constant current", "gcpl", "chronop",
                            "cycling")):
        return "galvanostatic"
    return None


def build(t: Table, path, reader: str, *, sample: str | None = None, provenance: dict | None = None):
    """The measurement of a parsed export (impedance spectrum/series or time series).

    Raises
    ------
    ReaderError
        No impedance columns and no time series columns (naming what was found), non-finite or
        non-positive frequencies, non-monotonic sweeps, time running backwards.
    """
    from ..core.provenance import file_provenance

    path = Path(path)
    prov = provenance or file_provenance(path, reader)
    heads = ", ".join(t.headers[:20]) or "none"
    has_eis = t.has("frequency", "z_real", "z_imag")
    if has_eis:
        f = t.columns["frequency"]
        eis_rows = np.isfinite(f) & (f > 0)
        if t.has("time", "potential", "current") and eis_rows.sum() < 0.5 * f.size:
            raise ReaderError("this file mixes impedance rows with time-series rows (a Modulo Bat / linked "
                              "experiment in one export): export each technique to its own file", path)
        return _impedance(t, path, eis_rows, prov, sample)
    if t.has("time", "potential", "current"):
        return _timeseries(t, path, prov, sample)
    missing_eis = [c for c in ("frequency", "z_real", "z_imag") if c not in t.columns]
    missing_t = [c for c in ("time", "potential", "current") if c not in t.columns]
    raise ReaderError(f"missing columns: neither an impedance spectrum (no {', '.join(missing_eis)}) nor a time "
                      f"series (no {', '.join(missing_t)}); columns found: {heads}", path)


def _impedance(t: Table, path: Path, rows: np.ndarray, prov: dict, sample):
    from ..core.measurement import new_measurement

    f_all = t.columns["frequency"]
    bad = ~np.isfinite(f_all) | (f_all < 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise ReaderError(f"row {i + 1}: frequency {float(f_all[i]):g} Hz is not a finite positive number", path)
    if rows.sum() < 4:
        raise ReaderError(f"{int(rows.sum())} impedance points (need >= 4)", path)
    sub = Table({k: v[rows] for k, v in t.columns.items()}, t.headers, t.technique_name, t.control, t.area_cm2,
                t.temperature_C, t.metadata)
    f = sub.columns["frequency"]
    z = sub.columns["z_real"] + 1j * sub.columns["z_imag"]
    if not np.all(np.isfinite(z)):
        i = int(np.argmax(~np.isfinite(z)))
        raise ReaderError(f"impedance row {i + 1} is NaN/inf", path)
    sweeps = _sweeps(sub, path)
    acq = _acquisition(t, "impedance")
    temp_col = sub.columns.get("temperature")
    temps = [float(np.median(temp_col[g])) for g in sweeps] if temp_col is not None else None
    src = "column" if temps is not None else None
    if temps is None and t.temperature_C is not None:
        temps, src = [float(t.temperature_C)] * len(sweeps), "header"
    if temps is None and temperature_from_name(path) is not None and len(sweeps) == 1:
        temps, src = [temperature_from_name(path)], "file name"
    meta = {"original_metadata": t.metadata, "provenance": prov, "source": str(path)}
    name = sample or path.stem
    if len(sweeps) == 1:
        g = sweeps[0]
        order = np.argsort(-f[g])
        acq.update(temperature_C=temps[0] if temps else None, temperature_source=src)
        return new_measurement(z[g][order], {"frequency": (f[g][order], "Hz")}, technique=TECHNIQUE, units="Ohm",
                               name="impedance", sample=name, signal_type="impedance", acquisition=acq,
                               axis_ranges={"frequency": (1e-9, 1e11)}, value_range=(0, 1e16), **meta)
    return stack_spectra([(f[g], z[g]) for g in sweeps], path, acq, temps, src,
                         cycles=[float(np.median(sub.columns["cycle"][g])) for g in sweeps]
                         if "cycle" in sub.columns else None, sample=name, **meta)


def stack_spectra(spectra: list, path: Path, acq: dict, temps: list | None, temp_source: str | None,
                  cycles: list | None = None, sample: str | None = None, labels: list | None = None, **meta):
    """A ``("spectrum", "frequency")`` series from ``[(f, Z), ...]`` sharing one grid (within 1 %)."""
    from ..core.measurement import new_measurement

    ref_f = np.sort(spectra[0][0])[::-1]
    Zs = []
    for k, (f, z) in enumerate(spectra):
        order = np.argsort(-f)
        fk = f[order]
        if fk.size != ref_f.size or not np.allclose(fk, ref_f, rtol=0.01, atol=0):
            raise ReaderError(f"spectrum {k + 1} of the series has a different frequency grid ({fk.size} points, "
                              f"{fk.max():.4g}-{fk.min():.4g} Hz) from spectrum 1 ({ref_f.size} points, "
                              f"{ref_f.max():.4g}-{ref_f.min():.4g} Hz): a series is fitted on one grid; read "
                              "the spectra one by one", path)
        Zs.append(z[order])
    acq = dict(acq, temperature_source=temp_source, n_spectra=len(spectra))
    m = new_measurement(np.array(Zs), {"spectrum": (np.arange(len(Zs)), ""), "frequency": (ref_f, "Hz")},
                        technique=TECHNIQUE, units="Ohm", name="impedance", sample=sample, signal_type="impedance",
                        acquisition=acq, axis_ranges={"frequency": (1e-9, 1e11)}, value_range=(0, 1e16), **meta)
    coords = {}
    if temps is not None:
        coords["temperature_C"] = ("spectrum", np.asarray(temps, float), {"units": "degC"})
    if cycles is not None:
        coords["cycle"] = ("spectrum", np.asarray(cycles, float), {"units": ""})
    if labels is not None:
        coords["label"] = ("spectrum", np.asarray(labels, dtype=str), {"units": ""})
    return m.assign_coords(coords) if coords else m


def _timeseries(t: Table, path: Path, prov: dict, sample):
    from ..core.measurement import new_measurement

    tm, e, i = (t.columns[k] for k in ("time", "potential", "current"))
    ok = np.isfinite(tm) & np.isfinite(e) & np.isfinite(i)
    if ok.sum() < 5:
        raise ReaderError(f"{int(ok.sum())} complete time/potential/current rows (need >= 5)", path)
    if (~ok).any():
        j = int(np.argmax(~ok))
        raise ReaderError(f"row {j + 1}: time, potential or current is not a number", path)
    back = np.diff(tm) < 0
    if back.any():
        j = int(np.argmax(back)) + 1
        raise ReaderError(f"time runs backwards at row {j + 1} ({tm[j]:.6g} s after {tm[j - 1]:.6g} s)", path)
    acq = _acquisition(t, "time")
    if "temperature" in t.columns:
        acq.update(temperature_C=float(np.median(t.columns["temperature"])), temperature_source="column")
    elif t.temperature_C is not None:
        acq.update(temperature_C=float(t.temperature_C), temperature_source="header")
    elif temperature_from_name(path) is not None:
        acq.update(temperature_C=temperature_from_name(path), temperature_source="file name")
    st = {"potentiostatic": "chronoamperometry", "galvanostatic": "galvanostatic"}.get(t.control or "", "timeseries")
    m = new_measurement(np.vstack([e, i]), {"channel": (np.array(["potential", "current"], dtype=object), ""),
                                           "time": (tm, "s")},
                        technique=TECHNIQUE, units="mixed", name="echem", sample=sample or path.stem,
                        signal_type=st, acquisition=acq, original_metadata=t.metadata, provenance=prov,
                        source=str(path), value_range=(-1e6, 1e6))
    m.attrs["channel_units"] = ["V", "A"]
    return m


# ----------------------------------------------------------------------------------- text helpers
def decode(data: bytes) -> str:
    """Instrument text: UTF-8 (with or without BOM), else cp1252/Latin-1 (µ, °, Ω survive either)."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def numeric_block(lines: list[str], start: int, path, delimiter: str | None, ncols: int | None = None,
                  usecols=None) -> np.ndarray:
    """Rows ``lines[start:]`` as a float array (decimal commas accepted when the separator is not a
    comma); trailing blank lines ignored; a non-numeric or short row is an error naming its line.
    ``usecols``: only these columns (others may hold text, e.g. Gamry's overload flags)."""
    import io

    from .text import load_table

    end = len(lines)
    while end > start and not lines[end - 1].strip():
        end -= 1
    if end <= start:
        raise ReaderError("no data rows", path)
    body = "\n".join(lines[start:end])
    if delimiter != "," and "," in body and "." not in body[:4000]:
        body = body.replace(",", ".")            # European decimal comma
    # the header lines are kept (skipped by the parser) so that errors name the file's own line numbers
    text = "\n".join(["#"] * start + [body])
    data = load_table(io.BytesIO(text.encode("utf-8", errors="replace")), Path(path), skiprows=start,
                      delimiter=delimiter, usecols=usecols, columns=f"{ncols or 'the header'} columns")
    if ncols is not None and usecols is None and data.shape[1] < ncols:
        raise ReaderError(f"data rows have {data.shape[1]} columns, the header names {ncols}", path)
    return data
