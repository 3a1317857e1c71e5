"""One NMR input made ready to fit: validation, FID processing, region, axis, noise, metadata.

:func:`prepare` is the per-input work of ``nmr.deconvolve`` (the command runner runs it where each
file is read: :meth:`~specproc.core.processor.Processor.preprocess`); :class:`Prepared` holds its
output by name.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...core.errors import ParameterError, ProcessingError
from ...core.measurement import check_measurement, label, reader_notes


@dataclass
class Prepared:
    """One spectrum ready to fit (what the old 10-item ``_setup`` tuple held, by name)."""

    src: str | None
    attrs: dict                    # metadata of the processed spectrum (provenance...): not its
                                   # arrays, so a Prepared crossing processes carries x and y once
    x: np.ndarray                  # ppm, descending
    y: np.ndarray
    step: float | None             # MAS rate in ppm (None: no sidebands)
    noise: float
    meta: dict
    rate: float | None
    sf: float | None
    nucleus: str | None
    warnings: list = field(default_factory=list)


def _src(m) -> str | None:
    return (m.attrs.get("provenance") or {}).get("source")


_LAST_AXIS: list = [None]


def _shared_axis(x: np.ndarray) -> np.ndarray:
    """``x``, or the identical axis of the previous spectrum prepared in this process: spectra of
    a batch usually share their axis, and one read-only array object then serves them all (a
    chunk of prepared spectra crossing processes pickles it once; the stack compares by
    identity)."""
    last = _LAST_AXIS[0]
    if last is not None and last.shape == x.shape and np.array_equal(last, x):
        return last
    x = np.array(x, float)  # an own copy, read-only: it may be shared
    x.flags.writeable = False
    _LAST_AXIS[0] = x
    return x


def prepare(m, p) -> Prepared:
    """Validate one input and make the spectrum to fit (an FID is processed first).

    A :class:`Prepared` input passes through (the command runner prepares inputs where they are
    read: :meth:`~specproc.core.processor.Processor.preprocess`).
    """
    from ...fitting.noise import noise_sigma
    from .processing import process

    if isinstance(m, Prepared):
        return m
    if not hasattr(m, "attrs"):
        raise ParameterError(f"deconvolve needs a specproc measurement, got {type(m).__name__}")
    src = _src(m)
    check_measurement(m, "nmr", "deconvolve input")
    if m.ndim > 1:
        lead = m.dims[0]
        if p.row is None:
            raise ParameterError(
                f"2D data ({' x '.join(f'{d} {m.sizes[d]}' for d in m.dims)}): deconvolve fits one spectrum. "
                f"Pick a row: --row N on the command line, row=N in Python/YAML, or m.isel({lead}=N) / "
                f"m.sel({lead}=value); or fit every row as a series: sp.nmr.deconvolve([m.isel({lead}=i) "
                f"for i in range({m.sizes[lead]})], ...)", src)
        if not -m.sizes[lead] <= p.row < m.sizes[lead]:
            raise ParameterError(f"row {p.row} is outside 0..{m.sizes[lead] - 1} ({lead})", src)
        m = m.isel({lead: p.row})
    elif p.row not in (None, 0):
        raise ParameterError(f"row={p.row} given but the data are 1D", src)
    if not np.all(np.isfinite(np.asarray(m.values))):
        raise ProcessingError("data contain NaN/inf values", src)
    if m.attrs.get("signal_type") == "fid" or m.dims[-1] == "time":
        m = process(m, **(p.processing or {}))
    x = np.asarray(m.coords[m.dims[-1]].values, float)
    y = np.real(np.asarray(m.values)).astype(float)
    if not np.all(np.isfinite(y)):
        raise ProcessingError("spectrum contains NaN/inf values", src)
    if p.region is not None:
        lo, hi = sorted(float(v) for v in p.region)
        keep = (x >= lo) & (x <= hi)
        if keep.sum() < 8:
            raise ParameterError(f"region {lo:g}..{hi:g} ppm holds {int(keep.sum())} points "
                                 f"(axis {x.min():.4g}..{x.max():.4g} ppm)", src)
        x, y = x[keep], y[keep]
    dxs = np.diff(x)
    if not np.all(dxs < 0):  # descending already (the usual ppm axis): no sort, no copy
        order = np.argsort(x)[::-1]
        x, y = x[order], y[order]
    x = _shared_axis(x)
    acq = dict(m.attrs.get("acquisition") or {})
    sf = acq.get("sf_mhz") or acq.get("bf1_mhz") or acq.get("sfo1_mhz")
    rate = p.mas_rate_hz if p.mas_rate_hz is not None else acq.get("mas_rate_hz")
    if rate is not None and not (math.isfinite(rate) and rate >= 0):
        raise ParameterError(f"MAS rate {rate} Hz is not a finite number >= 0", src)
    step = None
    if p.sidebands and rate and sf:
        from .sidebands import rate_ppm

        step = rate_ppm(rate, sf)
    noise = noise_sigma(y)
    meta: dict[str, Any] = {"nucleus": m.attrs.get("nucleus"), "sf_mhz": sf, "mas_rate_hz": rate,
                            "sample": label(m), "noise": noise, "region_ppm": [float(x.min()), float(x.max())]}
    hist = dict(m.attrs.get("processing") or {})
    # the apodization broadens every line: report what was applied so widths can be judged
    meta["apodization"] = hist.get("apodization")
    meta["lb_hz"] = hist.get("lb_hz") if hist.get("apodization") else None
    meta["processing"] = {k: v for k, v in hist.items() if isinstance(v, (str, int, float, bool, list, dict, type(None)))}
    # what the reader noticed (a stopped acquisition, a guessed unit...) stays with the result
    warns = reader_notes(m)
    if hist.get("digital_filter_warning"):
        warns.append(f"digital filter: {hist['digital_filter_warning']}")
    return Prepared(src=src, attrs=dict(m.attrs), x=x, y=y, step=step, noise=noise, meta=meta, rate=rate, sf=sf,
                    nucleus=m.attrs.get("nucleus"), warnings=warns)
