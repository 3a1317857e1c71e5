"""Helpers shared by the NMR readers: nucleus names, ppm axes, acquisition dicts, JSON-friendly metadata.

Kept free of heavy imports (numpy only) so every NMR reader can use it cheaply.
"""
from __future__ import annotations

import datetime as _dt
import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..core.errors import ReaderError
from ..core.numbers import finite_or_none

#: Keys of ``attrs["acquisition"]`` for NMR measurements (docs/architecture.md).
ACQ_KEYS = ("sfo1_mhz", "bf1_mhz", "sf_mhz", "sr_hz", "o1_hz", "sw_hz", "td", "decim", "dspfvs", "grpdly",
            "mas_rate_hz", "pulprog", "ns", "carrier_ppm")

#: Highest spectrometer frequency accepted as plausible (MHz); 1H at 28 T is ~1.2 GHz.
MAX_SF_MHZ = 2000.0

#: Arrays with more elements than this are dropped from ``original_metadata`` (keeps attrs small).
MAX_META_ARRAY = 10000


def decode_text(raw: bytes) -> str:
    """Metadata text of an instrument file: UTF-8 (BOM dropped), else Latin-1 (cp1252 exports).

    Latin-1 decodes every byte, so a comment in an unexpected encoding never rejects a file.
    """
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def normalise_nucleus(name: Any) -> str | None:
    """Normalise a nucleus label to mass-number-first form.

    ``"<1H>"``, ``"H1"``, ``"1h"``, ``"Rb87"``, ``"87Rb"``, ``"11B"`` -> ``"1H"``, ``"87Rb"``, ``"11B"``.
    Returns None for empty / ``"off"`` labels and the stripped input when it is not recognised.
    """
    if name is None:
        return None
    s = str(name).strip().strip("<>").strip()
    if not s or s.lower() in ("off", "none"):
        return None
    m = re.fullmatch(r"(\d+)\s*([A-Za-z]{1,2})", s) or None
    if m:
        mass, el = m.group(1), m.group(2)
    else:
        m = re.fullmatch(r"([A-Za-z]{1,2})\s*(\d+)", s)
        if not m:
            return s
        el, mass = m.group(1), m.group(2)
    return f"{int(mass)}{el[0].upper()}{el[1:].lower()}"


def to_float(value: Any) -> float | None:
    """Float of a vendor value (numbers, numeric strings, one-element lists); None if not numeric."""
    if isinstance(value, (list, tuple)) and len(value) == 1:
        value = value[0]
    return finite_or_none(value)


def carrier_ppm(sfo1_mhz: float | None, sf_mhz: float | None) -> float | None:
    """Chemical shift of the transmitter (carrier) frequency, ppm: ``(sfo1 - sf) * 1e6 / sf``."""
    if not sfo1_mhz or not sf_mhz:
        return None
    return (sfo1_mhz - sf_mhz) * 1e6 / sf_mhz


def pdata_ppm_axis(offset_ppm: float, sw_p_hz: float, sf_mhz: float, si: int) -> np.ndarray:
    """Bruker processed-data axis ``ppm_i = OFFSET - i * SW_p / SF / SI``, i = 0..SI-1."""
    return offset_ppm - np.arange(int(si)) * (sw_p_hz / sf_mhz / int(si))


def acquisition_dict(**values: Any) -> dict:
    """The normalised NMR acquisition dict: every key of :data:`ACQ_KEYS`, floats or None.

    ``carrier_ppm`` is computed from ``sfo1_mhz`` and ``sf_mhz`` when not given; ``pulprog``
    stays a string.
    """
    out: dict[str, Any] = {}
    for k in ACQ_KEYS:
        v = values.get(k)
        if k == "pulprog":
            out[k] = None if v in (None, "") else str(v).strip().strip("<>")
        else:
            out[k] = to_float(v)
    if out["carrier_ppm"] is None:
        out["carrier_ppm"] = carrier_ppm(out["sfo1_mhz"], out["sf_mhz"])
    return out


def check_acquisition(acq: Mapping[str, Any], path: Any, time_domain: bool = True) -> None:
    """Reject absurd metadata (SW <= 0, SFO1 <= 0 or > 2000 MHz, TD <= 0) with a ReaderError."""
    sfo1 = acq.get("sfo1_mhz")
    if sfo1 is None or not (0 < sfo1 <= MAX_SF_MHZ):
        raise ReaderError(f"implausible spectrometer frequency SFO1 = {sfo1} MHz (expected 0 < SFO1 <= "
                          f"{MAX_SF_MHZ:g})", path)
    sf = acq.get("sf_mhz")
    if sf is not None and not (0 < sf <= MAX_SF_MHZ):
        raise ReaderError(f"implausible reference frequency SF = {sf} MHz", path)
    sw = acq.get("sw_hz")
    if sw is None or sw <= 0:
        raise ReaderError(f"implausible spectral width SW = {sw} Hz (must be > 0)", path)
    if time_domain:
        td = acq.get("td")
        if td is None or td <= 0:
            raise ReaderError(f"implausible number of time-domain points TD = {td} (must be > 0)", path)


def jsonable(obj: Any, max_array: int = MAX_META_ARRAY) -> Any:
    """Convert a vendor metadata tree to plain JSON types (numpy -> lists/scalars; huge arrays dropped)."""
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            if isinstance(v, np.ndarray) and v.size > max_array:
                out[str(k)] = f"<array shape {v.shape} dropped>"
                continue
            out[str(k)] = jsonable(v, max_array)
        return out
    if isinstance(obj, (list, tuple)):
        if len(obj) > max_array:
            return f"<list of {len(obj)} dropped>"
        return [jsonable(v, max_array) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist(), max_array)
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, complex):
        return [obj.real, obj.imag]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    if isinstance(obj, bytes):
        return obj.decode("latin-1", errors="replace")
    return str(obj)


def epoch_to_iso(value: Any) -> str | None:
    """ISO-8601 UTC date of a Unix epoch (Bruker ``DATE``); None if missing or zero."""
    f = to_float(value)
    if not f:
        return None
    try:
        return _dt.datetime.fromtimestamp(f, tz=_dt.timezone.utc).isoformat(timespec="seconds")
    except (OverflowError, OSError, ValueError):
        return None


_SUFFIX = {"": 1.0, "s": 1.0, "m": 1e-3, "ms": 1e-3, "u": 1e-6, "us": 1e-6, "n": 1e-9, "k": 1e3}


def parse_time_list(text: str) -> list[float]:
    """Parse a TopSpin ``vdlist``/``vclist``-style list (one value a line, optional m/u/s suffix), seconds."""
    out = []
    for line in text.splitlines():
        s = line.split("#", 1)[0].strip()
        if not s:
            continue
        m = re.fullmatch(r"([-+0-9.eE]+)\s*([a-zA-Z]*)", s)
        if not m or m.group(2).lower() not in _SUFFIX:
            raise ValueError(f"unparsable list entry {s!r}")
        out.append(float(m.group(1)) * _SUFFIX[m.group(2).lower()])
    return out
