"""Bruker OPUS binary files (``*.0``, ``*.1``...): every block read and labelled.

The block directory and the block payloads are parsed with ``brukeropusreader``'s own functions
(:func:`brukeropusreader.opus_parser.parse_meta`, ``parse_series``, ``parse_param``,
``parse_text``). Its ``read_file`` is not used for the spectra because it files *every* ratioed
spectrum (absorbance, transmittance, Kubelka-Munk, reflectance...) under the key ``"AB"``, so a
transmittance block would be silently taken for absorbance. Here each block's type code is
decoded (OPUS block type: bits 0-1 complex part, 2-3 sample/reference/ratioed, 4-9 parameter
kind, 10-15 spectrum kind) and the block is labelled ``AB``, ``TR``, ``ScSm``, ``IgRf``...

Conventions of the FTIR measurements built here (see ``docs/ftir.md``): dim ``("wavenumber",)``
in ``1/cm``, sorted ascending; ``attrs["acquisition"]["y_kind"]`` is ``"absorbance"``,
``"transmittance"`` (always a 0-1 fraction), ``"single_channel"``, ``"interferogram"``...;
the default block is absorbance (AB), else transmittance (TR), else the sample single channel.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..core.errors import ReaderError
from ..core.measurement import new_measurement
from ..core.provenance import file_provenance
from .base import Reader, head_bytes, library_reason, require_file

MAGIC = b"\x0a\x0a\xfe\xfe"

#: OPUS spectrum kinds (bits 10-15 of the block type) -> (label of a ratioed block, y_kind, units)
_KINDS = {
    1: ("Sc", "single_channel", "arb"),
    2: ("Ig", "interferogram", "arb"),
    3: ("Ph", "phase", "rad"),
    4: ("AB", "absorbance", "dimensionless"),
    5: ("TR", "transmittance", "dimensionless"),
    6: ("KM", "kubelka_munk", "dimensionless"),
    10: ("RAM", "raman", "arb"),
    11: ("EMI", "emission", "arb"),
    12: ("REFL", "reflectance", "dimensionless"),
    14: ("POW", "power", "arb"),
    15: ("LRF", "log_reflectance", "dimensionless"),
    16: ("ATR", "atr", "dimensionless"),
    17: ("PAS", "photoacoustic", "arb"),
    18: ("TR_ARITH", "transmittance", "dimensionless"),
    19: ("AB_ARITH", "absorbance", "dimensionless"),
}
_ROLE = {1: "Sm", 2: "Rf"}
#: parameter blocks (bits 4-9) that are not data-status blocks: name as brukeropusreader does
_PARAM_BLOCKS = {2: "Instrument", 3: "Acquisition", 4: "Fourier Transformation", 6: "Optik", 10: "Sample"}
_TEXT_BLOCKS = {8: "Info Block", 104: "History", 152: "Curve Fit", 168: "Signature", 240: "Integration Method"}
#: default block preference: absorbance first, transmittance never taken for it; without any of
#: these blocks the absorbance is computed from the single channels ScSm/ScRf (never a single
#: channel or an interferogram taken for a spectrum by default)
RATIOED_ORDER = ("AB", "AB_ARITH", "TR", "TR_ARITH", "ATR", "KM", "REFL")
DEFAULT_ORDER = RATIOED_ORDER + ("ScSm",)


def decode_type(data_type: int, channel_type: int) -> dict:
    """Split an OPUS block type (first two bytes of a directory entry) into its fields."""
    code = data_type | (channel_type << 8)
    return {"complex": code & 0b11, "role": (code >> 2) & 0b11, "param": (code >> 4) & 0b111111,
            "kind": (code >> 10) & 0b111111}


def block_label(data_type: int, channel_type: int, text_type: int = 0) -> str | None:
    """Label of a block: ``AB``, ``TR``, ``ScSm``, ``IgRf``, ``AB Data Parameter``, ``Optik (Rf)``..."""
    f = decode_type(data_type, channel_type)
    if data_type == 0:
        return _TEXT_BLOCKS.get(text_type, "Text Information")
    if f["kind"] in _KINDS and f["param"] in (0, 1):
        short = _KINDS[f["kind"]][0]
        if f["kind"] in (1, 2, 3):  # single channels / interferograms / phases are per role
            if f["role"] not in _ROLE:
                return None
            short = short + _ROLE[f["role"]]
        return short if f["param"] == 0 else short + " Data Parameter"
    if f["kind"] == 0 and f["param"] in _PARAM_BLOCKS:
        return _PARAM_BLOCKS[f["param"]] + (" (Rf)" if f["role"] == 2 else "")
    return None


def read_blocks(data: bytes, path) -> dict[str, dict]:
    """Every recognised block of an OPUS file: label -> ``{"meta", "value", "kind"}``.

    Raises :class:`ReaderError` when the directory points past the end of the file (truncated).
    """
    from brukeropusreader.block_parser import parse_param, parse_series, parse_text
    from brukeropusreader.opus_parser import parse_meta

    if len(data) < 504 or data[:4] != MAGIC:
        raise ReaderError("not a Bruker OPUS file (no OPUS magic bytes / header shorter than 504 bytes)", path)
    metas = parse_meta(data)
    if not metas:
        raise ReaderError("OPUS block directory is empty", path)
    out: dict[str, dict] = {}
    for m in metas:
        end = m.offset + 4 * m.chunk_size
        label = block_label(m.data_type, m.channel_type, m.text_type) or (
            f"block({m.data_type},{m.channel_type},{m.text_type})")
        if end > len(data):
            raise ReaderError(f"file is truncated: block {label!r} ends at byte {end} but the file has "
                              f"{len(data)} bytes", path)
        f = decode_type(m.data_type, m.channel_type)
        try:
            if m.data_type == 0:
                value = parse_text(data, m)
            elif f["param"] == 0 and f["kind"] in _KINDS:
                value = parse_series(data, m)
            else:
                value = parse_param(data, m)
        except Exception as exc:  # corrupt block payload
            raise ReaderError(f"cannot decode OPUS block {label!r} ({library_reason(exc)})", path) from exc
        out[label] = {"meta": m, "value": value, "kind": f["kind"]}
    return out


def _x_axis(par: dict, npt: int, label: str, path) -> tuple[np.ndarray, str, str]:
    """Axis of a data block from its Data Parameter block (FXV, LXV, NPT, DXU)."""
    try:
        fxv, lxv = float(par["FXV"]), float(par["LXV"])
    except (KeyError, TypeError, ValueError):
        raise ReaderError(f"block {label!r} has no FXV/LXV axis parameters", path) from None
    if not (np.isfinite(fxv) and np.isfinite(lxv)) or fxv == lxv:
        raise ReaderError(f"block {label!r} has an absurd axis FXV={fxv}, LXV={lxv}", path)
    x = np.linspace(fxv, lxv, npt)
    dxu = str(par.get("DXU", "WN")).strip().upper()
    if dxu == "WN":
        return x, "wavenumber", "1/cm"
    if dxu == "MI":  # micrometres -> wavenumbers
        if np.any(x <= 0):
            raise ReaderError(f"block {label!r}: non-positive wavelengths", path)
        return 1.0e4 / x, "wavenumber", "1/cm"
    if dxu == "LGW":  # log wavenumber
        return np.exp(x), "wavenumber", "1/cm"
    if dxu in ("PNT", ""):
        return np.arange(npt, dtype=float), "point", "dimensionless"
    if dxu in ("MIN", "SEC"):
        return x * (60.0 if dxu == "MIN" else 1.0), "time", "s"
    raise ReaderError(f"block {label!r}: unknown x unit DXU={dxu!r}", path)


def _block_xy(blocks: dict, block: str, p) -> tuple[np.ndarray, np.ndarray, str, str, dict]:
    """``(x, y, dim, x units, Data Parameter dict)`` of one data block (wavenumbers ascending)."""
    par = blocks.get(f"{block} Data Parameter", {}).get("value")
    if not isinstance(par, dict):
        raise ReaderError(f"block {block!r} has no Data Parameter block (axis unknown)", p)
    try:
        npt = int(par["NPT"])
    except (KeyError, TypeError, ValueError):
        raise ReaderError(f"block {block!r}: NPT missing", p) from None
    raw = np.asarray(blocks[block]["value"], dtype=float)
    if not (0 < npt <= raw.size):
        raise ReaderError(f"block {block!r}: NPT={npt} but the block holds {raw.size} values", p)
    # OPUS stores the y values scaled by CSF; the block array has one trailing value past NPT
    y = raw[:npt] * float(par.get("CSF", 1.0) or 1.0)
    x, dim, xunits = _x_axis(par, npt, block, p)
    if not np.all(np.isfinite(y)):
        raise ReaderError(f"block {block!r}: {int(np.sum(~np.isfinite(y)))} NaN/inf values", p)
    if dim == "wavenumber":
        order = np.argsort(x)
        x, y = x[order], y[order]
    return x, y, dim, xunits, par


#: the largest absorbance computed from single channels: OPUS clips its AB blocks at 6 (a
#: transmission of 1e-6, below any FTIR detector's dynamic range), and so does this reader
MAX_COMPUTED_ABSORBANCE = 6.0


def _absorbance_from_single_channels(blocks: dict, p, notes: list[str]):
    """Absorbance ``A = -log10(ScSm / ScRf)`` of a file without a ratioed block.

    The reference channel is interpolated linearly onto the sample's wavenumbers (OPUS records
    both on the same grid, the reference often a few points wider); the axis is the overlap of
    the two. Points where the ratio is not positive or ``A`` exceeds
    :data:`MAX_COMPUTED_ABSORBANCE` (no light through the sample, or none in the reference) are
    set to that limit, as OPUS does, and counted in ``notes``.
    """
    xs, ys, dim, xunits, par = _block_xy(blocks, "ScSm", p)
    xr, yr, dim_r, _, _ = _block_xy(blocks, "ScRf", p)
    if dim != "wavenumber" or dim_r != "wavenumber":
        raise ReaderError("single-channel blocks ScSm/ScRf without a wavenumber axis: no absorbance computed", p)
    keep = (xs >= xr[0] - 1e-9 * abs(xr[0])) & (xs <= xr[-1] + 1e-9 * abs(xr[-1]))
    if keep.sum() < 3:
        raise ReaderError(f"ScSm ({xs[0]:.6g}-{xs[-1]:.6g} 1/cm) and ScRf ({xr[0]:.6g}-{xr[-1]:.6g} 1/cm) "
                          "do not overlap: no absorbance computed", p)
    if not keep.all():
        notes.append(f"{int((~keep).sum())} sample points outside the reference range dropped")
    xs, ys = xs[keep], ys[keep]
    ref = np.interp(xs, xr, yr)
    step = float(np.median(np.diff(xr))) if xr.size > 1 else 0.0
    if step and np.min(np.abs(xs[:, None] - xr[None, :]), axis=1).max() > 1e-3 * step:
        notes.append("the reference single channel was interpolated onto the sample's wavenumbers "
                     "(different grids)")
    with np.errstate(divide="ignore", invalid="ignore"):
        a = -np.log10(ys / ref)
    bad = ~np.isfinite(a) | (a > MAX_COMPUTED_ABSORBANCE) | (ys <= 0) | (ref <= 0)
    a = np.where(bad, MAX_COMPUTED_ABSORBANCE, a)
    notes.insert(0, "no absorbance block in the file: absorbance computed as -log10(ScSm/ScRf) from the "
                    "sample and reference single channels")
    if bad.any():
        xb = xs[bad]
        notes.append(f"{int(bad.sum())} points with no transmitted light (ratio <= 1e-6 or a non-positive "
                     f"channel) set to A = {MAX_COMPUTED_ABSORBANCE:g} as OPUS does "
                     f"({xb.min():.1f}-{xb.max():.1f} 1/cm)")
    return xs, a, dim, xunits, par, "-log10(ScSm/ScRf)"


def _clean(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    return v


class OpusReader(Reader):
    """Bruker OPUS binary file -> one labelled spectrum (absorbance by default)."""

    name: ClassVar[str] = "opus"
    priority: ClassVar[int] = Reader.SIGNATURE
    description: ClassVar[str] = ("Bruker OPUS binary (AB, TR, ScSm/ScRf, IgSm/IgRf... every block labelled; "
                                  "absorbance by default) via brukeropusreader")
    technique: ClassVar[str] = "ftir"
    extensions: ClassVar[tuple[str, ...]] = tuple(f".{i}" for i in range(10))
    url: ClassVar[str] = "https://github.com/spectraapps/brukeropusreader"
    library: ClassVar[str] = "brukeropusreader"
    notes: ClassVar[str] = ("AB, TR, ATR, KM, REFL blocks (absorbance first; every block labelled, block=NAME); "
                            "files with only ScSm + ScRf: absorbance computed as -log10(ScSm/ScRf) and said so; "
                            "refused: files with no ratioed block and no single-channel pair (the blocks "
                            "present are named), truncated files")

    def guess_can_open(self, path: Path) -> bool:
        return head_bytes(Path(path), 4) == MAGIC

    def read(self, path: Path, block: str | None = None) -> Any:
        """Read one spectrum block of an OPUS file.

        Parameters
        ----------
        path : Path
            OPUS file.
        block : str, optional
            Block label (``"AB"``, ``"TR"``, ``"ScSm"``, ``"ScRf"``, ``"IgSm"``...). Default: the first
            present of ``AB``, ``TR``, ``ATR``, ``KM``, ``REFL``; in a file with none of them, the
            absorbance ``-log10(ScSm/ScRf)`` computed from the sample and reference single channels
            (said in ``acquisition["reader_notes"]``, ``acquisition["computed_from"]``); a file with
            neither is refused, naming its blocks (``block="ScSm"`` or ``"IgSm"`` reads one).

        Returns
        -------
        xarray.DataArray
            dim ``("wavenumber",)`` in ``1/cm`` ascending (``("point",)`` for interferograms);
            ``acquisition["y_kind"]`` names what the values are; ``original_metadata["blocks"]``
            lists every block with its label and axis.
        """
        p = require_file(Path(path), "OPUS file")
        data = p.read_bytes()
        blocks = read_blocks(data, p)
        spectra = [k for k, b in blocks.items() if isinstance(b["value"], np.ndarray)]
        if not spectra:
            raise ReaderError("no spectrum or interferogram blocks in the OPUS file", p)
        pair = "ScSm" in spectra and "ScRf" in spectra
        notes: list[str] = []
        computed = None
        if block is None:
            block = next((b for b in RATIOED_ORDER if b in spectra), None)
            if block is None and not pair:
                raise ReaderError(
                    "no absorbance/transmittance block and no sample + reference single-channel pair "
                    f"(ScSm and ScRf) to compute one; blocks in the file: {', '.join(spectra)} "
                    "(pass block=NAME to read one of them)", p)
            if block is None:
                block = "AB"
        if block == "AB" and "AB" not in spectra and pair:
            x, y, dim, xunits, par, computed = _absorbance_from_single_channels(blocks, p, notes)
            kind = 4
        elif block not in spectra:
            raise ReaderError(f"no block {block!r} in the file (spectrum blocks: {', '.join(spectra)})", p)
        else:
            x, y, dim, xunits, par = _block_xy(blocks, block, p)
            kind = blocks[block]["kind"]
        y_kind, units = _KINDS[kind][1], _KINDS[kind][2]

        def g(name: str, key: str):
            v = blocks.get(name, {}).get("value")
            return v.get(key) if isinstance(v, dict) else None

        acq = {"y_kind": y_kind, "block": block, "computed_from": computed, "reader_notes": notes,
               "y_scale": "fraction" if y_kind == "transmittance" else None,
               "resolution_cm1": g("Acquisition", "RES"), "n_scans": g("Acquisition", "NSS"),
               "apodization": g("Fourier Transformation", "APF"), "zero_filling": g("Fourier Transformation", "ZFF"),
               "detector": g("Optik", "DTC"), "source": g("Optik", "SRC"), "beamsplitter": g("Optik", "BMS"),
               "max_y": None if computed else par.get("MXY"), "min_y": None if computed else par.get("MNY"),
               "first_x": float(x[-1]) if computed else par.get("FXV"),
               "last_x": float(x[0]) if computed else par.get("LXV"), "x_unit_code": par.get("DXU")}
        listing = {}
        for k, b in blocks.items():
            entry: dict[str, Any] = {"type": "data" if isinstance(b["value"], np.ndarray) else
                                     ("text" if isinstance(b["value"], str) else "parameters")}
            if entry["type"] == "data":
                bp = blocks.get(f"{k} Data Parameter", {}).get("value") or {}
                entry.update(y_kind=_KINDS[b["kind"]][1], npt=bp.get("NPT"), first_x=bp.get("FXV"),
                             last_x=bp.get("LXV"), x_unit=bp.get("DXU"))
            listing[k] = entry
        original = {k: _clean(b["value"]) for k, b in blocks.items() if not isinstance(b["value"], np.ndarray)}
        original["blocks"] = listing
        date = " ".join(str(v) for v in (par.get("DAT"), par.get("TIM")) if v) or None
        sample = g("Sample", "SNM")
        md = {"instrument": g("Instrument", "INS") or g("Optik", "INS"), "date": date}
        return new_measurement(
            y, [(dim, x, xunits)], technique="ftir", units=units, name=y_kind,
            signal_type="interferogram" if y_kind == "interferogram" else "spectrum",
            sample=str(sample).strip() if sample else p.stem, metadata=md, acquisition=acq,
            original_metadata=original, provenance=file_provenance(p, self.name), source=str(p))
