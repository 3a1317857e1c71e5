"""VAMAS (ISO 14976) XPS files -> one XPS measurement holding every region and every etch level.

Parsing is done by the maintained ``vamas`` package; this module adds what real files need:

* the VAMAS identifier may be preceded by blank lines (some exporters write them), and MultiPak
  writes ``.npl`` files: the text is cleaned and handed to ``vamas`` as a stream, so neither the
  extension nor the blank lines matter;
* ``1E37`` is VAMAS's "no value" and becomes ``None``; NUL characters in labels are stripped;
* only ``REGULAR`` scan mode is read (``IRREGULAR`` / ``MAPPING`` raise a clear error: ``vamas``
  itself does not parse them);
* a truncated file, or a header whose block count does not match the blocks present, is an error
  naming the line.

Layout of the measurement (docs/xps.md)
---------------------------------------
A depth profile is regions x etch levels, and regions have different energy axes. The measurement is
one 2D DataArray with dims ``("level", "channel")``: every region's channels are concatenated along
``channel``, each channel labelled by the non-dimension coordinates

* ``region`` (``channel``): region name (``"N 1s"``: species + transition, else the block identifier,
  else ``block k``; labels such as ``None`` / ``unknown`` count as no label),
* ``binding_energy`` (``channel``, eV): ``source - KE - work function`` when the file stores
  kinetic energy (``kinetic_energy`` is then kept too),

and every level by ``etch_time`` (``level``, s; NaN when unknown). ``sp.xps.region(m, "N 1s")`` returns
one region as ``("level", "binding_energy")``. A file without a profile has one level. Levels come from an
experimental variable whose label mentions etch / sputter / time / level / depth, else ``Etch time = x s``
in the block comments, else the repetition of region names (the n-th occurrence of a region = level n).
Blocks sharing a name but not an energy axis are separate regions (``"<name> (block k)"``), and names
that do not repeat evenly give one level with every block its own region (``acquisition["levels_note"]``
says so).
"""
from __future__ import annotations

import contextlib
import re
from pathlib import Path

import numpy as np

from ..core.errors import ReaderError
from .base import Reader, head_bytes, require_file

IDENTIFIER = "VAMAS Surface Chemical Analysis Standard Data Transfer Format 1988 May 4"
NO_VALUE = 1e37
_LEVEL_VAR = re.compile(r"etch|sputter|time|level|depth|cycle", re.I)
_ETCH_COMMENT = re.compile(r"etch(?:ing)?\s*time\s*[=:]?\s*([-+0-9.eE]+)\s*(s|sec|min)?", re.I)
_RATE = re.compile(r"sputter(?:ing)?\s*rate\s*[=:]?\s*([-+0-9.eE]+)\s*(nm/s|nm s-1|nm/min|a/s|å/s|angstrom/s)?",
                   re.I)


def _clean_lines(raw: bytes) -> list[str]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "").split("\n")
    i = 0
    while i < len(lines) and not lines[i].strip():
        i += 1
    j = len(lines)
    while j > i and not lines[j - 1].strip():  # trailing blank lines: a truncated file must end, not read ''
        j -= 1
    return lines[i:j]


class _Lines:
    """Iterator over lines that remembers the current line number (for error messages)."""

    def __init__(self, lines):
        self.lines = lines
        self.i = 0

    def __iter__(self):
        return self

    def __next__(self):
        if self.i >= len(self.lines):
            raise StopIteration
        s = self.lines[self.i]
        self.i += 1
        return s + "\n"


def _num(v):
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if (not np.isfinite(f) or abs(f) >= NO_VALUE * 0.999) else f


def _scan_mode(lines: list[str], path) -> tuple[str, str]:
    try:
        ncom = int(lines[5].strip())
        return lines[6 + ncom].strip(), lines[7 + ncom].strip()
    except (IndexError, ValueError):
        raise ReaderError("VAMAS header is truncated or malformed (comment-line count)", path) from None


#: labels that name nothing (exporters write them for unnamed blocks)
_NO_LABEL = frozenset({"", "none", "unknown", "n/a", "na", "null", "-", "?", "undefined"})


def _label(v) -> str:
    """The label, or ``""`` when it names nothing (``None``, ``unknown``, ``None None``...)."""
    s = str(v if v is not None else "").strip()
    return "" if all(w.lower() in _NO_LABEL for w in s.split()) else s


def _region_name(b: dict, k: int) -> str:
    """``"N 1s"`` (species + transition), else the block identifier, else the species, else ``block k``."""
    sp = _label(b.get("species_label"))
    tr = _label(b.get("transition_or_charge_state_label"))
    if sp and tr:
        return f"{sp} {tr}"
    ident = _label(b.get("block_identifier"))
    if ident:
        return ident
    return sp or f"block {k + 1}"


def _same_axis(a: dict, b: dict) -> bool:
    return a["y"].size == b["y"].size and bool(np.allclose(a["x"], b["x"], atol=1e-6))


def _occurrence_levels(recs: list[dict]) -> str | None:
    """Levels from the repetition of region names (the n-th block of a region is level n).

    Blocks that share a name but not an energy axis are not levels of one region (unnamed blocks,
    or blocks that inherit the first block's labels through the VAMAS inclusion list): each becomes
    a region of its own, ``"<name> (block k)"``. When the names still do not form a complete
    regions x levels grid, every block is read as its own region at one level. Returns a note
    saying what was done (None when the names formed the grid as they are).
    """
    note = None
    by_name: dict[str, list[dict]] = {}
    for r in recs:
        by_name.setdefault(r["name"], []).append(r)
    split = [n for n, rs in by_name.items() if len(rs) > 1 and not all(_same_axis(rs[0], q) for q in rs[1:])]
    for n in split:
        for r in by_name[n]:
            r["name"] = f"{n} (block {r['k'] + 1})"
    if split:
        note = (f"blocks named {split} have different energy axes: read as separate regions "
                "'<name> (block k)', not as etch levels")

    def assign():
        seen: dict[str, int] = {}
        for r in recs:
            r["level"] = seen.get(r["name"], 0)
            seen[r["name"]] = r["level"] + 1
        return seen

    counts = assign()
    if len(set(counts.values())) > 1:  # not every region at every level: no level structure at all
        names = [r["name"] for r in recs]
        for r in recs:
            if names.count(r["name"]) > 1:
                r["name"] = f"{r['name']} (block {r['k'] + 1})"
        assign()
        note = ("region names do not repeat evenly (not a regions x levels profile): every block read as its "
                "own region at one level")
    return note


def _what_went_wrong(exc, lines, i) -> str:
    """The parser's failure in the file's terms (no Python exception text reaches the user)."""
    bad = lines[i - 1].strip() if 0 < i <= len(lines) else ""
    shown = repr(bad[:40] + ("..." if len(bad) > 40 else ""))
    if isinstance(exc, ValueError):
        return f"{shown} is not the number expected there"
    if isinstance(exc, ZeroDivisionError):
        return "a count or step of zero where the format needs a positive number"
    return f"unexpected content {shown} (a field missing or out of order)"


def _sputter_rate(texts):
    for t in texts:
        m = _RATE.search(t or "")
        if m:
            v = _num(m.group(1))
            unit = (m.group(2) or "nm/s").lower()
            if v is None:
                continue
            if unit.startswith(("a", "å")):
                v *= 0.1
            elif unit == "nm/min":
                v /= 60.0
            return v
    return None


class VamasReader(Reader):
    """VAMAS ISO 14976 XPS files (``.vms``, MultiPak ``.npl``) through the ``vamas`` package."""

    name = "vamas"
    priority = Reader.HEADER
    library = "vamas"
    description = "VAMAS ISO 14976 XPS (.vms/.npl): regions x etch levels, KE or BE axis, REGULAR mode"
    technique = "xps"
    extensions = (".vms", ".npl")
    url = "https://pypi.org/project/vamas/"

    def guess_can_open(self, path: Path) -> bool:
        head = head_bytes(Path(path), 512).decode("latin-1", errors="replace").lstrip()
        return head.startswith(IDENTIFIER)

    def read(self, path: Path, sample: str | None = None, work_function: float | None = None,
             level_variable: str | None = None):
        """Read a VAMAS file.

        Parameters
        ----------
        path : Path
        sample : str, optional
            Sample name (default: the first block's sample identifier, else the file stem).
        work_function : float, optional
            Spectrometer work function (eV) used for ``BE = source - KE - work_function`` when the file
            stores kinetic energy. Default: the file's value (0 when absent).
        level_variable : str, optional
            Label of the experimental variable that numbers the etch levels (default: the first whose
            label mentions etch / sputter / time / level / depth).

        Returns
        -------
        xarray.DataArray
            dims ``("level", "channel")`` (see the module docstring).
        """
        from ..core.measurement import new_measurement
        from ..core.provenance import file_provenance

        path = require_file(Path(path))
        header, blocks, exp_mode, scan_mode = _parse(path)
        hdr, var_labels, var_units, ivar = _level_variable(header, level_variable, path)
        recs = _records(blocks, ivar, var_units, path)
        regions, grid, level_keys, etch, levels_note, kinds = _levels(recs, path)
        nlev = len(level_keys)
        en = _energies(regions, grid, level_keys, recs, work_function, path)
        Y, be, ke, be_parts, reg_parts = en.Y, en.be, en.ke, en.be_parts, en.reg_parts
        src, wf, wf_file, any_kinetic = en.src, en.wf, en.wf_file, en.any_kinetic
        first = recs[0]
        texts = [hdr.get("comment", "")] + [r["comment"] for r in recs]
        texts += [f"{k} = {v} {''}" for r in recs for k, v in r["addl"].items()]
        rate = None
        for r in recs:  # additional numerical parameter "sputter rate" (unit in the label's unit)
            for blk in blocks[:1]:
                for p in (vars(blk).get("additional_numerical_params") or []):
                    if re.search(r"sputter\w*\s*rate", p.label, re.I):
                        rate = _sputter_rate([f"sputter rate {p.value} {p.unit}"])
            break
        if rate is None:
            rate = _sputter_rate(texts)

        yunit = (first["yunit"] or "").strip().lower()
        units = {"c/s": "counts/s", "cps": "counts/s", "d": "counts", "counts": "counts"}.get(yunit, "arb")
        sample_name = sample or (first["meta"].get("sample_identifier") or "").strip() or path.stem
        region_info = []
        for reg, bp in zip(regions, be_parts):
            r0 = grid[(reg, 0)]
            region_info.append({
                "name": reg, "n": int(bp.size), "be_start_eV": float(bp[0]), "be_step_eV": float(bp[1] - bp[0])
                if bp.size > 1 else None, "dwell_s": _num(r0["meta"].get("signal_collection_time")),
                "n_scans": r0["meta"].get("num_scans_to_compile_block"),
                "pass_energy_eV": _num(r0["meta"].get("analyzer_pass_energy_or_retard_ratio_or_mass_res")),
                "axis_in_file": "kinetic" if r0["kinetic"] else "binding"})
        acquisition = {
            "source_energy_eV": src, "source_label": first["meta"].get("analysis_source_label"),
            "work_function_eV": wf, "work_function_source": "argument" if work_function is not None
            else ("file" if wf_file is not None else "default 0"),
            "analyser_mode": first["meta"].get("analyzer_mode"),
            "pass_energy_eV": _num(first["meta"].get("analyzer_pass_energy_or_retard_ratio_or_mass_res")),
            "energy_axis_in_file": "kinetic" if any_kinetic else "binding",
            "regions": region_info, "n_levels": nlev,
            "level_variable": var_labels[ivar] if ivar is not None else None,
            "levels_from": sorted(kinds)[0] if len(kinds) == 1 else "occurrence", "levels_note": levels_note,
            "sputter_rate_nm_s": rate, "experiment_mode": exp_mode, "scan_mode": scan_mode,
            "etch_time_s": [None if not np.isfinite(v) else float(v) for v in etch],
        }
        date = None
        md = first["meta"]
        with contextlib.suppress(TypeError, ValueError):
            date = (f"{int(md['year']):04d}-{int(md['month']):02d}-{int(md['day']):02d}T"
                    f"{int(md['hour']):02d}:{int(md['minute']):02d}:{int(md['second']):02d}")
        prov = file_provenance(path, self.name, _vamas_version())
        m = new_measurement(
            Y, {"level": (np.arange(nlev), ""), "channel": (np.arange(Y.shape[1]), "")},
            technique="xps", units=units, sample=sample_name, signal_type="profile" if nlev > 1 else "spectrum",
            metadata={"instrument": (hdr.get("instrument_model_identifier") or "").strip() or None, "date": date},
            acquisition=acquisition,
            original_metadata={"header": hdr, "blocks": [r["meta"] for r in recs]},
            provenance=prov, source=str(path))
        m = m.assign_coords(
            etch_time=("level", etch, {"units": "s"}),
            region=("channel", np.asarray([str(v) for v in np.concatenate(reg_parts)]), {"units": ""}),
            binding_energy=("channel", be, {"units": "eV"}),
            kinetic_energy=("channel", ke, {"units": "eV"}))
        return m



def _parse(path: Path):
    """The cleaned lines of a VAMAS file parsed by the vamas package. -> (header, blocks, scan modes)"""
    from vamas.vamas import _read_vamas  # the parser behind vamas.Vamas, fed a cleaned stream

    from ..core.quiet import quiet

    path = require_file(Path(path))
    if path.is_dir():
        raise ReaderError("is a folder, not a VAMAS file (.vms / .npl)", path)
    lines = _clean_lines(path.read_bytes())
    if not lines or lines[0].strip() != IDENTIFIER:
        raise ReaderError("not a VAMAS file (the first line is not the VAMAS identifier)", path)
    exp_mode, scan_mode = _scan_mode(lines, path)
    if scan_mode.upper() != "REGULAR":
        raise ReaderError(f"VAMAS scan mode {scan_mode!r} is not supported; only REGULAR (evenly spaced "
                          "energy axis) files can be read — re-export the data in REGULAR mode", path)
    it = _Lines(lines)
    try:
        with quiet("vamas.vamas"):  # vamas prints notes; caught per thread (core.quiet)
            header, blocks = _read_vamas(it)
    except StopIteration:
        raise ReaderError(f"file ends unexpectedly at line {it.i} (truncated, or the header's block count "
                          "does not match the blocks present)", path) from None
    except (ValueError, IndexError, KeyError, ZeroDivisionError, AssertionError) as exc:
        raise ReaderError(f"malformed VAMAS content near line {it.i}: {_what_went_wrong(exc, lines, it.i)}",
                          path) from None
    rest = [ln.strip() for ln in lines[it.i:] if ln.strip()]
    if rest and rest[0].lower() != "end of experiment":
        raise ReaderError(f"header declares {header.num_blocks} blocks but more data follows at line "
                          f"{it.i + 1} (block count mismatch)", path)
    if not blocks:
        raise ReaderError("VAMAS file has no blocks", path)

    return header, blocks, exp_mode, scan_mode


def _level_variable(header, level_variable, path):
    """The header (plain values), and the experimental variable that numbers the etch levels.
    -> (hdr, labels, units, index or None)"""
    hdr = {k: v for k, v in vars(header).items() if k not in ("experiment_variables",
                                                              "future_upgrade_experiment_entries")}
    var_labels = [ev.label for ev in header.experiment_variables]
    var_units = [ev.unit for ev in header.experiment_variables]
    hdr["experiment_variables"] = [{"label": lb, "unit": u} for lb, u in zip(var_labels, var_units)]
    ivar = None
    if level_variable is not None:
        if level_variable not in var_labels:
            raise ReaderError(f"no experimental variable {level_variable!r} (file has {var_labels})", path)
        ivar = var_labels.index(level_variable)
    else:
        for i, lb in enumerate(var_labels):
            if _LEVEL_VAR.search(lb) and lb.lower() != "exp variable":
                ivar = i
                break

    return hdr, var_labels, var_units, ivar


def _records(blocks, ivar, var_units, path) -> list[dict]:
    """One record per block: region name, axis, counts, level key and its origin, metadata."""
    recs = []
    for k, blk in enumerate(blocks):
        b = vars(blk)
        cv = b["corresponding_variables"]
        if not cv:
            raise ReaderError(f"block {k + 1} has no data", path)
        y = np.asarray(cv[0].y_values, float)
        n = y.size
        if n == 0:
            raise ReaderError(f"block {k + 1} has no data points", path)
        x = b["x_start"] + b["x_step"] * np.arange(n)
        xlabel = (b.get("x_label") or "").lower()
        expvals = [_num(str(v).strip()) for v in (b.get("values_exp_var") or [])]
        comment = b.get("block_comment") or ""
        addl = {p.label: p.value for p in (b.get("additional_numerical_params") or [])}
        if ivar is not None and ivar < len(expvals) and expvals[ivar] is not None:
            key = expvals[ivar]
            unit = (var_units[ivar] or "").lower()
            key = key * 60.0 if unit.startswith("min") else key
            key_kind = "variable"
        else:
            mm = _ETCH_COMMENT.search(comment)
            key = None
            key_kind = "occurrence"
            if mm and _num(mm.group(1)) is not None:
                key = _num(mm.group(1)) * (60.0 if (mm.group(2) or "").lower().startswith("min") else 1.0)
                key_kind = "comment"
        meta = {kk: (vv if not isinstance(vv, float) else _num(vv)) for kk, vv in b.items()
                if kk not in ("corresponding_variables", "values_exp_var", "additional_numerical_params",
                              "linescan_coordinates", "sputtering_source")}
        meta["values_exp_var"] = expvals
        meta["additional_numerical_params"] = addl
        meta["corresponding_variables"] = [{"label": c.label, "unit": c.unit} for c in cv]
        recs.append(dict(name=_region_name(b, k), k=k, x=x, y=y, kinetic="kinetic" in xlabel, key=key,
                         key_kind=key_kind, comment=comment, meta=meta, addl=addl,
                         source=_num(b.get("analysis_source_characteristic_energy")),
                         wf=_num(b.get("analyzer_work_function_or_acceptance_energy")),
                         yunit=cv[0].unit))

    return recs


def _levels(recs, path):
    """Etch levels of the records, and the (region, level) grid every region must fill.
    -> (regions, grid, level keys, etch times, note, key kinds)"""
    kinds = {r["key_kind"] for r in recs}
    levels_note = None
    if kinds == {"occurrence"} or len(kinds) > 1:
        levels_note = _occurrence_levels(recs)
        level_keys = sorted({r["level"] for r in recs})
        etch = np.full(len(level_keys), np.nan)
    else:
        keys = sorted({r["key"] for r in recs})
        index = {kv: i for i, kv in enumerate(keys)}
        count: dict[tuple[str, int], int] = {}
        for r in recs:
            r["level"] = index[r["key"]]
            kk = (r["name"], r["level"])
            count[kk] = count.get(kk, 0) + 1
            if count[kk] > 1:   # a second block of a region at one level: a region of its own
                r["name"] = f"{r['name']} #{count[kk]}"
                levels_note = ("regions measured more than once at one level: the repeats are regions of "
                               "their own ('<name> #2')")
        level_keys = list(range(len(keys)))
        etch = np.asarray(keys, float)
    regions: list[str] = []
    for r in recs:
        if r["name"] not in regions:
            regions.append(r["name"])
    grid: dict[tuple[str, int], dict] = {}
    for r in recs:
        kk = (r["name"], r["level"])
        if kk in grid:
            raise ReaderError(f"region {r['name']!r} appears twice at level {r['level']}", path)
        grid[kk] = r
    for reg in regions:
        missing = [lv for lv in level_keys if (reg, lv) not in grid]
        if missing:
            raise ReaderError(f"region {reg!r} is missing at etch level(s) {missing[:5]} "
                              "(every region must be measured at every level)", path)
        ref = grid[(reg, 0)]
        for lv in level_keys[1:]:
            r = grid[(reg, lv)]
            if not _same_axis(r, ref):
                raise ReaderError(f"region {reg!r} has a different energy axis at level {lv}", path)

    return regions, grid, level_keys, etch, levels_note, kinds


def _energies(regions, grid, level_keys, recs, work_function, path):
    """Binding and kinetic energies of every channel (BE = source - KE - work function for a kinetic
    axis, checked), and the counts (level, channel). -> namespace"""
    from types import SimpleNamespace

    first = recs[0]
    src = first["source"]
    wf_file = first["wf"]
    wf = work_function if work_function is not None else (wf_file or 0.0)
    be_parts, ke_parts, reg_parts, ys = [], [], [], []
    any_kinetic = any(r["kinetic"] for r in recs)
    for reg in regions:
        r0 = grid[(reg, 0)]
        x = r0["x"]
        if r0["kinetic"]:
            s = r0["source"]
            if s is None:
                raise ReaderError(f"region {reg!r} is on a kinetic-energy axis but the file has no source "
                                  "energy; binding energies cannot be computed", path)
            # BE = source - KE - wf: a zero / negative / wrong-unit excitation energy would give
            # binding energies of -1434 eV that a fit reports as a line without complaint
            if not (np.isfinite(s) and s > 0):
                raise ReaderError(f"region {reg!r}: excitation energy {s:g} eV is not a positive number; "
                                  "binding energies cannot be computed from the kinetic-energy axis", path)
            if s < float(np.min(x)):
                raise ReaderError(f"region {reg!r}: excitation energy {s:g} eV is below the region's kinetic "
                                  f"energies ({float(np.min(x)):g}..{float(np.max(x)):g} eV); every binding "
                                  "energy would be negative (wrong source energy or unit)", path)
            be, ke = s - x - wf, x
        else:
            be = x
            s = r0["source"]
            # kinetic energy is only a derived label here: unknown (NaN) rather than wrong
            ke = (s - x - wf) if s is not None and np.isfinite(s) and s > 0 else np.full_like(x, np.nan)
        be_parts.append(be)
        ke_parts.append(ke)
        reg_parts.append(np.full(x.size, reg, dtype=object))
        ys.append(np.stack([grid[(reg, lv)]["y"] for lv in level_keys]))
    Y = np.concatenate(ys, axis=1)
    be = np.concatenate(be_parts)
    ke = np.concatenate(ke_parts)
    if not np.all(np.isfinite(Y)):
        raise ReaderError("NaN/inf intensities in the data", path)

    return SimpleNamespace(Y=Y, be=be, ke=ke, be_parts=be_parts, reg_parts=reg_parts, src=src, wf=wf,
                           wf_file=wf_file, any_kinetic=any_kinetic)


def _vamas_version():
    import importlib.metadata as md

    try:
        return f"vamas {md.version('vamas')}"
    except md.PackageNotFoundError:  # pragma: no cover
        return None
