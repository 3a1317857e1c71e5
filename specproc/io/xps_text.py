"""XPS vendor text exports -> XPS measurement: SPECS Prodigy ``.xy``, CasaXPS tables; Thermo Avantage refused.

Why by hand: no maintained reader for these layouts fits specproc. The one library that parses them,
pynxtools-xps (FAIRmat-NFDI, ``parsers/specs/xy`` and ``parsers/vms_export``), converts them into
NeXus templates and depends on pynxtools and the NeXus definitions; the layouts themselves are a
few lines of text with numeric columns, read here with numpy after the header is checked. The
column layouts are the ones pynxtools-xps documents and tests (``tests/data/specs_xy/
MgFe2O4_small.xy``, ``tests/data/vms_analysis/FeO_analyzed_lineshapes_cols.txt``).

SPECS Prodigy ``.xy`` (XY-Serializer export)
--------------------------------------------
``# Created by: SpecsLab Prodigy ...``, the export settings (``# Energy Axis: Binding Energy`` or
``Kinetic Energy``, ``# Count Rate: Counts per Second`` or ``Counts``, ``# Separate Scan Data``,
``# Separate Channel Data``, ``# Transmission Function``...), then per group ``# Group:`` and per
region ``# Region: <name>`` with ``key: value`` comment lines (``Excitation Energy``, ``Pass Energy``,
``Eff. Workfunction``, ``Values/Curve``...), then per cycle/curve/scan a ``# Cycle: c, Curve: k,
Scan: s`` line, ``# ColumnLabels: energy counts/s`` and the numeric rows. Cycles are the
measurement's levels; separate scans of one cycle are combined (mean of count rates, sum of counts:
``acquisition["scans_combined"]``). Refused, naming the variant: exports without meta data
(``Output Meta Data: no``: no region names nor energy kind), ``Separate Channel Data: yes``
(detector channels, not one spectrum), regions whose cycles differ in number, a kinetic axis with
no excitation energy, a block whose row count disagrees with ``Values/Curve``.

CasaXPS text exports (``.txt`` / ``.csv``: "Columns of Tables" and "Rows of Tables")
------------------------------------------------------------------------------------
*Columns of Tables*: one block per region, one after the other: ``Cycle n:<group>:<region>``, a line
``Characteristic Energy eV <hv> Acquisition Time s <t>``, the fit rows (``Name``, ``Position``,
``FWHM``, ``Area``, ``Lineshape``), the column header ``K.E. Counts ... <empty> B.E. CPS ...``
(kinetic half and binding half separated by an empty cell) and the rows. The ``B.E.`` / ``CPS``
columns are read (CasaXPS's own binding energies: no work function is applied here).
*Rows of Tables*: every region side by side in three cells (x, y, empty); the first line holds
``Characteristic Energy eV`` / ``Acquisition Time s``, the last header line the region labels
(``Cycle n:<group>:<region>...``) and the columns are binding energy and CPS. Refused, naming the
variant: a Columns block without ``B.E.``/``CPS`` columns, rows with non-numeric cells, regions of
fewer than 3 points.

Thermo Avantage
---------------
Avantage's own data (``.vgd``/``.vgp`` OLE compound files, and binary ``.avg``) are refused with the
hint to export VAMAS (read by the ``vamas`` reader). The text ``.avg`` that DataSpace_BatchDump
writes (``$SPACEAXES`` / ``$DATA=`` sections, read by ixdat's ``AvantageAVGReader``) is refused too:
no public file was available to check a reading against (issue #28).

Every reader returns the XPS layout of :mod:`specproc.io.vamas` (docs/xps.md): dims ``("level",
"channel")``, the regions joined along ``channel`` with ``region``, ``binding_energy`` and
``kinetic_energy`` (eV) coordinates, ``etch_time`` (s, NaN: the exports carry none) on the levels.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..core.errors import ReaderError
from .base import Reader, first_line, head_bytes, head_text, require_file

#: text exports parsed in memory: 256 MiB is far above any real export (a survey is ~50 kB)
_MAX_TEXT = 256 << 20
_FLOAT = re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$")


def _region_name(name: str) -> str:
    """``"C1s"`` -> ``"C 1s"`` (the region names of the VAMAS reader); else the name stripped."""
    m = re.fullmatch(r"([A-Z][a-z]?)\s*(\d[spdf](?:\d/\d|\d)?)", name.strip())
    return f"{m.group(1)} {m.group(2)}" if m else name.strip()


def _text(p: Path) -> str:
    data = p.read_bytes()
    if b"\x00" in data[:65536]:
        raise ReaderError("binary data where a text export was expected: corrupt or not this format", p)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _floats(cells: list[str], p: Path, where: str) -> list[float]:
    out = []
    for c in cells:
        c = c.strip()
        if not _FLOAT.match(c):
            raise ReaderError(f"{where}: {c[:30]!r} is not a number", p)
        out.append(float(c))
    return out


def _measurement(p: Path, reader: str, regions: list[dict], *, units: str, sample: str, acquisition: dict,
                 original: dict, instrument: str | None = None, date: str | None = None):
    """The XPS measurement of ``regions`` (``name``, ``be``, ``ke``, ``Y`` (levels, n)), checked."""
    from ..core.measurement import new_measurement
    from ..core.provenance import file_provenance

    if not regions:
        raise ReaderError("no spectrum region found in the export", p)
    names = [r["name"] for r in regions]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ReaderError(f"region names repeat ({', '.join(dup)}): cannot tell the regions apart", p)
    nlev = {r["Y"].shape[0] for r in regions}
    if len(nlev) != 1:
        raise ReaderError(f"regions hold different numbers of cycles ({sorted(nlev)}): not one profile", p)
    for r in regions:
        if r["be"].size < 3:
            raise ReaderError(f"region {r['name']!r} has {r['be'].size} point(s): too short to be a spectrum", p)
        if not (np.isfinite(r["be"]).all() and np.isfinite(r["Y"]).all()):
            raise ReaderError(f"region {r['name']!r}: NaN/inf values in the data", p)
        d = np.diff(r["be"])
        if not (np.all(d > 0) or np.all(d < 0)):
            raise ReaderError(f"region {r['name']!r}: the energy axis is not monotonic (rows out of order "
                              "or two spectra in one table)", p)
    n = nlev.pop()
    be = np.concatenate([r["be"] for r in regions])
    ke = np.concatenate([r["ke"] for r in regions])
    Y = np.concatenate([r["Y"] for r in regions], axis=1)
    reg = np.concatenate([np.full(r["be"].size, r["name"], dtype=object) for r in regions]).astype(str)
    acquisition = dict(acquisition)
    acquisition.setdefault("regions", [])
    acquisition.update({"n_levels": n, "level_variable": "cycle" if n > 1 else None,
                        "levels_from": "cycles" if n > 1 else "single spectrum", "etch_time_s": [None] * n})
    m = new_measurement(
        Y, {"level": (np.arange(n), ""), "channel": (np.arange(Y.shape[1]), "")}, technique="xps", units=units,
        sample=sample, signal_type="spectrum", metadata={"instrument": instrument, "date": date},
        acquisition=acquisition, original_metadata=original, provenance=file_provenance(p, reader), source=str(p))
    return m.assign_coords(
        etch_time=("level", np.full(n, np.nan), {"units": "s"}),
        region=("channel", reg, {"units": ""}),
        binding_energy=("channel", be, {"units": "eV"}),
        kinetic_energy=("channel", ke, {"units": "eV"}))


def _region_info(r: dict, axis: str, **extra) -> dict:
    be = r["be"]
    return {"name": r["name"], "n": int(be.size), "be_start_eV": float(be[0]),
            "be_step_eV": float(be[1] - be[0]) if be.size > 1 else None, "axis_in_file": axis, **extra}


# ====================================================================== SPECS Prodigy .xy
_SPECS_FIRST = re.compile(r"^#\s*Created by:\s*SpecsLab", re.I)
_CYCLE = re.compile(r"^#\s*Cycle:\s*(\d+)(?:\s*,\s*Curve:\s*(\d+))?(?:\s*,\s*Scan:\s*(\d+))?", re.I)


def _num(v: str | None) -> float | None:
    if v is None:
        return None
    m = re.match(r"\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)", v)
    return float(m.group(1)) if m else None


def parse_specs_xy(text: str, p: Path) -> tuple[dict, list[dict]]:
    """Export settings and regions (``name``, ``group``, ``meta``, ``blocks``) of a Prodigy ``.xy``.

    Each block is a dict ``cycle``, ``curve``, ``scan``, ``rows`` (energy, intensity), ``line``.
    """
    lines = text.split("\n")
    if not lines or not _SPECS_FIRST.match(lines[0].strip()):
        raise ReaderError("not a SpecsLab Prodigy .xy export (no '# Created by: SpecsLab' first line)", p)
    settings: dict[str, str] = {"Created by": lines[0].split(":", 1)[1].strip()}
    regions: list[dict] = []
    group = None
    cur = None       # current region
    block = None     # current data block
    in_export = False
    for i, raw in enumerate(lines[1:], start=2):
        s = raw.strip()
        if not s:
            block = None if block is None or block["rows"] else block
            continue
        if s.startswith("#"):
            body = s.lstrip("#").strip()
            if not body:
                continue
            key, sep, val = body.partition(":")
            key, val = key.strip(), val.strip()
            if key.lower().startswith("xy-serializer export settings"):
                in_export = True
                continue
            m = _CYCLE.match(s)
            if m:
                if cur is None:
                    raise ReaderError(f"line {i}: a data block before any '# Region:' line", p)
                block = {"cycle": int(m.group(1)), "curve": int(m.group(2) or 0), "scan": int(m.group(3) or 0),
                         "rows": [], "line": i}
                cur["blocks"].append(block)
                continue
            if key == "Group":
                group, in_export = val, False
                continue
            if key == "Region":
                in_export = False
                cur = {"name": val, "group": group, "meta": {}, "blocks": [], "line": i}
                regions.append(cur)
                block = None
                continue
            if sep:
                if in_export or cur is None:
                    settings[key] = val
                elif block is None:
                    cur["meta"][key] = val
                else:
                    block.setdefault("meta", {})[key] = val
            continue
        # a data row
        if block is None:
            if cur is None:
                raise ReaderError(f"line {i}: data without a '# Region:' header: exported with 'Output Meta Data: "
                                  "no'? Export with meta data (region names and the energy axis kind are needed)", p)
            raise ReaderError(f"line {i}: data rows outside a '# Cycle: ..' block", p)
        cells = s.replace(",", " ").split()
        if len(cells) < 2:
            raise ReaderError(f"line {i}: a data row with {len(cells)} column(s), 2 or more expected", p)
        block["rows"].append(_floats(cells[:2], p, f"line {i}"))
    return settings, regions


class SpecsXyReader(Reader):
    """SPECS SpecsLab Prodigy ``.xy`` export (every region and cycle)."""

    name: ClassVar[str] = "specs-xy"
    priority: ClassVar[int] = Reader.HEADER
    description: ClassVar[str] = "SPECS SpecsLab Prodigy .xy XPS export (regions, cycles as levels; BE or KE axis)"
    technique: ClassVar[str] = "xps"
    extensions: ClassVar[tuple[str, ...]] = (".xy",)
    url: ClassVar[str] = "https://github.com/FAIRmat-NFDI/pynxtools-xps"
    library: ClassVar[str] = "specproc (numpy; layout documented by pynxtools-xps)"
    notes: ClassVar[str] = ("every region, cycles as levels, separate scans combined; refused: exports without meta "
                            "data, 'Separate Channel Data: yes', KE axis without excitation energy")
    max_input_bytes: ClassVar[int] = _MAX_TEXT

    def guess_can_open(self, path: Path) -> bool:
        return bool(_SPECS_FIRST.match(first_line(Path(path))))

    def matches_extension(self, path: Path) -> bool:
        # .xy is the XRD text reader's too: claimed by extension only when the content is a Prodigy export
        return super().matches_extension(path) and self.guess_can_open(Path(path))

    def read(self, path: Path, sample: str | None = None, work_function: float | None = None):
        """Read a Prodigy ``.xy`` export.

        Parameters
        ----------
        path : Path
        sample : str, optional
            Sample name (default: the first group's name, else the file stem).
        work_function : float, optional
            Work function (eV) for ``BE = hv - KE - work_function`` when the export is on a kinetic
            axis (default: the region's ``Eff. Workfunction``, else 0 with a note in ``acquisition``).

        Returns
        -------
        xarray.DataArray
            dims ``("level", "channel")`` (levels = cycles).
        """
        p = require_file(Path(path), "SPECS .xy export")
        settings, regions = parse_specs_xy(_text(p), p)
        if not regions:
            raise ReaderError("no '# Region:' in the export: exported with 'Output Meta Data: no'? Export with meta "
                              "data (region names and the energy axis kind are needed)", p)
        if settings.get("Separate Channel Data", "no").lower().startswith("y"):
            raise ReaderError("exported with 'Separate Channel Data: yes' (one table per detector channel): export "
                              "with 'Separate Channel Data: no'", p)
        axis = settings.get("Energy Axis", "Binding Energy").lower()
        kinetic = axis.startswith("kinetic")
        if not kinetic and not axis.startswith("binding"):
            raise ReaderError(f"unknown 'Energy Axis: {settings.get('Energy Axis')}' (Binding or Kinetic Energy)", p)
        rate = settings.get("Count Rate", "Counts per Second").lower()
        per_second = "second" in rate or "/s" in rate
        out, info = [], []
        wf_note = None
        for r in regions:
            name = _region_name(r["name"])
            blocks = [b for b in r["blocks"] if b["rows"]]
            if not blocks:
                raise ReaderError(f"region {name!r} holds no data rows (truncated export?)", p)
            nvals = _num(r["meta"].get("Values/Curve"))
            cycles = sorted({b["cycle"] for b in blocks})
            curves = sorted({b["curve"] for b in blocks})
            if len(curves) > 1:
                raise ReaderError(f"region {name!r} holds {len(curves)} curves per scan (a multi-curve or channel "
                                  "export): not one spectrum per cycle", p)
            Ys, x0 = [], None
            for c in cycles:
                scans = [b for b in blocks if b["cycle"] == c]
                arrs = [np.asarray(b["rows"], float) for b in scans]
                for b, a in zip(scans, arrs):
                    if nvals is not None and a.shape[0] != int(nvals):
                        raise ReaderError(f"region {name!r}, cycle {c}: {a.shape[0]} rows where 'Values/Curve' "
                                          f"says {int(nvals)} (truncated export?)", p)
                    if x0 is None:
                        x0 = a[:, 0]
                    elif a.shape[0] != x0.size or not np.allclose(a[:, 0], x0, rtol=0, atol=1e-6):
                        raise ReaderError(f"region {name!r}: cycles/scans on different energy axes (line "
                                          f"{b['line']})", p)
                y = np.stack([a[:, 1] for a in arrs])
                Ys.append(y.mean(axis=0) if per_second else y.sum(axis=0))
            meta = r["meta"]
            hv = _num(meta.get("Excitation Energy"))
            wf_file = _num(meta.get("Eff. Workfunction"))
            wf = work_function if work_function is not None else wf_file
            if kinetic:
                if hv is None or not hv > 0:
                    raise ReaderError(f"region {name!r}: kinetic-energy axis without a positive 'Excitation Energy': "
                                      "binding energies cannot be computed", p)
                if wf is None:
                    wf, wf_note = 0.0, "no 'Eff. Workfunction' in the export: 0 eV used"
                be, ke = hv - x0 - wf, x0
            else:
                be = x0
                ke = hv - x0 - (wf or 0.0) if hv is not None and hv > 0 else np.full(x0.size, np.nan)
            reg = {"name": name, "be": be, "ke": ke, "Y": np.stack(Ys)}
            out.append(reg)
            info.append(_region_info(reg, "kinetic" if kinetic else "binding",
                                     dwell_s=_num(meta.get("Dwell Time")), pass_energy_eV=_num(meta.get("Pass Energy")),
                                     n_scans=_num(meta.get("Number of Scans")) or max(b["scan"] for b in blocks) + 1,
                                     scans_in_file=len(blocks) // len(cycles), group=r["group"]))
        first = regions[0]["meta"]
        acq = {"source_energy_eV": _num(first.get("Excitation Energy")), "source_label": first.get("Source"),
               "work_function_eV": (work_function if work_function is not None
                                    else _num(first.get("Eff. Workfunction"))),
               "work_function_source": "argument" if work_function is not None else "file",
               "work_function_note": wf_note,
               "analyser_mode": first.get("Scan Mode"), "pass_energy_eV": _num(first.get("Pass Energy")),
               "energy_axis_in_file": "kinetic" if kinetic else "binding", "regions": info,
               "scans_combined": "mean of count rates" if per_second else "sum of counts",
               "software": settings.get("Created by")}
        om = {"export_settings": settings,
              "regions": [{"name": r["name"], "group": r["group"], **r["meta"]} for r in regions]}
        return _measurement(p, self.name, out, units="counts/s" if per_second else "counts",
                            sample=sample or regions[0]["group"] or p.stem, acquisition=acq, original=om,
                            instrument=first.get("Analyzer"), date=first.get("Acquisition Date"))


# ====================================================================== CasaXPS tables
def _delim(line: str) -> str:
    return "\t" if "\t" in line else ","


def _casa_kind(head: str) -> str | None:
    lines = [ln for ln in head.replace("\r", "").split("\n")[:3]]
    if not lines:
        return None
    if re.match(r"^Cycle \d+:", lines[0]) and len(lines) > 1 and "Characteristic Energy" in lines[1]:
        return "columns"
    if "Characteristic Energy eV" in lines[0] and "Acquisition Time s" in lines[0]:
        return "rows"
    return None


def _label_region(label: str) -> str:
    """``"Cycle 0:FeO:Fe2p"`` / ``"Cycle 0:FeO:Fe2p:CPS"`` -> ``"Fe 2p"``; else the label itself."""
    parts = [s.strip() for s in label.split(":")]
    if len(parts) >= 3 and parts[0].startswith("Cycle"):
        return _region_name(parts[2])
    return _region_name(label)


def parse_casa_columns(text: str, p: Path) -> list[dict]:
    """Blocks of a CasaXPS "Columns of Tables" export: ``label``, ``hv``, ``fit`` rows, ``be``, ``cps``."""
    lines = text.split("\n")
    starts = [i for i, ln in enumerate(lines) if re.match(r"^Cycle \d+:", ln)]
    blocks = []
    for k, s in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else len(lines)
        label = lines[s].split("\t")[0].split(",")[0].strip()
        d = _delim(lines[s + 1] if s + 1 < end else lines[s])
        hv, fit, head, rows = None, {}, None, []
        for i in range(s + 1, end):
            ln = lines[i]
            if not ln.strip():
                continue
            cells = ln.split(d)
            first = cells[0].strip()
            if head is None:
                if "Characteristic Energy" in ln:
                    hv = _num(cells[cells.index(next(c for c in cells if "Characteristic Energy" in c)) + 1]
                              if len(cells) > 2 else None)
                elif first in ("Name", "Position", "FWHM", "Area", "Lineshape", "Width"):
                    fit[first] = [c.strip() for c in cells[1:] if c.strip()]
                elif {"B.E.", "K.E."} & {c.strip() for c in cells}:
                    head = [c.strip() for c in cells]
                else:
                    raise ReaderError(f"line {i + 1}: unexpected header line {first[:30]!r} in block {label!r} "
                                      "(a CasaXPS 'Columns of Tables' block has Name/Position/FWHM/Area/Lineshape "
                                      "rows, then the K.E./B.E. column header)", p)
                continue
            rows.append((i + 1, cells))
        if head is None or "B.E." not in head:
            raise ReaderError(f"block {label!r} has no column header with 'B.E.' (exported without the binding-energy "
                              "table?)", p)
        ibe = head.index("B.E.")
        icps = next((j for j in range(ibe + 1, len(head)) if head[j] in ("CPS", "Counts")), None)
        if icps is None:
            raise ReaderError(f"block {label!r}: no 'CPS' column after 'B.E.'", p)
        be, y = [], []
        for ln_no, cells in rows:
            if len(cells) <= max(ibe, icps):
                raise ReaderError(f"line {ln_no}: {len(cells)} cells where the header of block {label!r} has "
                                  f"{len(head)} (truncated row?)", p)
            a, b = _floats([cells[ibe], cells[icps]], p, f"line {ln_no}")
            be.append(a)
            y.append(b)
        blocks.append({"label": label, "hv": hv, "fit": fit, "be": np.array(be), "cps": np.array(y),
                       "ycol": head[icps]})
    return blocks


def parse_casa_rows(text: str, p: Path) -> list[dict]:
    """Regions of a CasaXPS "Rows of Tables" export (side by side, three cells each: x, y, empty)."""
    lines = [ln for ln in text.split("\n")]
    d = _delim(lines[0])
    data_start = None
    for i, ln in enumerate(lines):
        cells = [c.strip() for c in ln.split(d)]
        if cells and cells[0] and _FLOAT.match(cells[0]):
            data_start = i
            break
    if data_start is None or data_start < 1:
        raise ReaderError("no data rows after the header (header only?)", p)
    labels = lines[data_start - 1].split(d)
    first = lines[0].split(d)
    n = (max(len(labels), max(len(ln.split(d)) for ln in lines[data_start:data_start + 5])) + 2) // 3
    regs = []
    for k in range(n):
        label = labels[3 * k + 1].strip() if 3 * k + 1 < len(labels) else ""
        hv = None
        for j in range(3 * k, min(3 * k + 3, len(first))):
            if "Characteristic Energy" in first[j] and j + 1 < len(first):
                hv = _num(first[j + 1])
        regs.append({"label": label or f"region {k + 1}", "hv": hv, "be": [], "cps": []})
    for i in range(data_start, len(lines)):
        cells = lines[i].split(d)
        if not lines[i].strip():
            continue
        for k, r in enumerate(regs):
            x = cells[3 * k].strip() if 3 * k < len(cells) else ""
            y = cells[3 * k + 1].strip() if 3 * k + 1 < len(cells) else ""
            if not x and not y:
                continue  # a shorter region's table has ended
            a, b = _floats([x, y], p, f"line {i + 1}")
            r["be"].append(a)
            r["cps"].append(b)
    for r in regs:
        r["be"], r["cps"] = np.array(r["be"]), np.array(r["cps"])
    return [r for r in regs if r["be"].size]


class CasaXpsTextReader(Reader):
    """CasaXPS text export ("Columns of Tables" or "Rows of Tables") of one or more regions."""

    name: ClassVar[str] = "casaxps-text"
    priority: ClassVar[int] = Reader.HEADER
    description: ClassVar[str] = "CasaXPS text export ('Rows of Tables' / 'Columns of Tables'): binding energy, CPS"
    technique: ClassVar[str] = "xps"
    extensions: ClassVar[tuple[str, ...]] = (".txt", ".csv")
    url: ClassVar[str] = "https://github.com/FAIRmat-NFDI/pynxtools-xps"
    library: ClassVar[str] = "specproc (numpy; layout documented by pynxtools-xps)"
    notes: ClassVar[str] = ("every region's B.E./CPS table (Columns or Rows of Tables, tab or comma); CasaXPS's fit "
                            "rows kept in original_metadata; refused: blocks without "
                            "B.E./CPS columns, non-numeric rows")
    max_input_bytes: ClassVar[int] = _MAX_TEXT

    def guess_can_open(self, path: Path) -> bool:
        p = Path(path)
        head = head_bytes(p, 2048)
        if not head or b"\x00" in head:
            return False
        return _casa_kind(head_text(p, 2048)) is not None

    def matches_extension(self, path: Path) -> bool:
        # .txt/.csv are too generic: claimed by extension only when the content is a CasaXPS table
        return super().matches_extension(path) and self.guess_can_open(Path(path))

    def read(self, path: Path, sample: str | None = None):
        """Read a CasaXPS text export.

        Parameters
        ----------
        path : Path
        sample : str, optional
            Sample name (default: the group of the first ``Cycle n:<group>:<region>`` label, else the stem).

        Returns
        -------
        xarray.DataArray
            dims ``("level", "channel")`` with one level.
        """
        p = require_file(Path(path), "CasaXPS text export")
        text = _text(p)
        kind = _casa_kind(text[:2048])
        if kind is None:
            raise ReaderError("not a CasaXPS text export (neither 'Cycle n:...' + 'Characteristic Energy' "
                              "(Columns of Tables) nor 'Characteristic Energy eV ... Acquisition Time s' "
                              "(Rows of Tables) at the top)", p)
        blocks = parse_casa_columns(text, p) if kind == "columns" else parse_casa_rows(text, p)
        out, info = [], []
        for b in blocks:
            name = _label_region(b["label"])
            hv = b["hv"]
            ke = hv - b["be"] if hv is not None and hv > 0 else np.full(b["be"].size, np.nan)
            reg = {"name": name, "be": b["be"], "ke": ke, "Y": b["cps"][None, :]}
            out.append(reg)
            info.append(_region_info(reg, "binding", label=b["label"]))
        groups = [b["label"].split(":")[1].strip() for b in blocks
                  if b["label"].startswith("Cycle") and b["label"].count(":") >= 2]
        acq = {"source_energy_eV": blocks[0]["hv"] if blocks else None, "source_label": None,
               "work_function_eV": None, "work_function_source": "CasaXPS binding energies (none applied here)",
               "analyser_mode": None, "pass_energy_eV": None, "energy_axis_in_file": "binding", "regions": info,
               "casa_layout": "Columns of Tables" if kind == "columns" else "Rows of Tables"}
        om = {"layout": acq["casa_layout"],
              "blocks": [{"label": b["label"], "characteristic_energy_eV": b["hv"], "fit": b.get("fit", {})}
                         for b in blocks]}
        return _measurement(p, self.name, out, units="counts/s", sample=sample or (groups[0] if groups else p.stem),
                            acquisition=acq, original=om, instrument=None)


# ====================================================================== Thermo Avantage (refused)
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


class AvantageReader(Reader):
    """Thermo Avantage data files: recognised and refused with the export that specproc reads."""

    name: ClassVar[str] = "avantage"
    priority: ClassVar[int] = Reader.SIGNATURE
    description: ClassVar[str] = "Thermo Avantage .vgd/.vgp/.avg (recognised, refused: export VAMAS from Avantage)"
    technique: ClassVar[str] = "xps"
    extensions: ClassVar[tuple[str, ...]] = (".vgd", ".vgp", ".avg")
    url: ClassVar[str] = "https://www.thermofisher.com"
    library: ClassVar[str] = "none (refused with a hint)"
    notes: ClassVar[str] = ("refused: Avantage binary/OLE data (.vgd, .vgp, binary .avg) and the BatchDump text .avg "
                            "(no public file to verify); export VAMAS (.vms) from Avantage instead")

    def guess_can_open(self, path: Path) -> bool:
        p = Path(path)
        if not (p.is_file() and self.matches_extension(p)):
            return False
        head = head_bytes(p, 4096)
        markers = (b"$SPACEAXES", b"$DATA", b"$PROTOCOL")
        return head.startswith(_OLE) or b"\x00" in head or any(k in head for k in markers)

    def read(self, path: Path):
        """Refuse an Avantage file, naming the variant and the export to use instead."""
        p = require_file(Path(path), "Avantage file")
        head = head_bytes(p, 4096)
        hint = "export the spectra from Avantage as VAMAS (.vms), which the 'vamas' reader reads"
        if head.startswith(_OLE):
            raise ReaderError(f"a Thermo Avantage binary data file (OLE compound document): not read; {hint}", p)
        if b"\x00" in head:
            raise ReaderError(f"a binary Thermo Avantage file: not read; {hint}", p)
        if b"$SPACEAXES" in head or b"$DATA" in head or b"$PROTOCOL" in head:
            raise ReaderError("a Thermo Avantage text .avg (DataSpace_BatchDump layout): not read yet (no public file "
                              f"to verify a reading against); {hint}", p)
        raise ReaderError(f"not a recognised Thermo Avantage file; {hint}", p)
