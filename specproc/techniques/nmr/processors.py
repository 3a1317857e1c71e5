"""Processor plugins of the NMR technique: ``nmr.process`` and ``nmr.deconvolve``."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from ...core.errors import SpecprocError
from ...core.params import ProcessorParams
from ...core.processor import Processor


class ProcessParams(ProcessorParams):
    zero_fill: float | None = Field(2, description="zero fill to next power of two of zero_fill * n")
    apodization: Literal["exponential", "gaussian", "none"] | None = "exponential"
    lb_hz: float | None = Field(None, description="line broadening (Hz); default 2 * sw / n")
    phase: Literal["auto", "auto0"] | tuple[float, float] | None = "auto"
    baseline: str | None = Field(None, description="pybaselines method, e.g. asls")
    baseline_params: dict[str, Any] | None = None
    reference: float | tuple[float, float] | None = None


class ProcessFID(Processor):
    name = "nmr.process"
    technique = "nmr"
    description = "FID -> phased, referenced spectrum (digital filter, zero fill, apodization, FT, phase, baseline)"
    Params = ProcessParams

    def run(self, data, params: ProcessParams):
        from .processing import process

        return process(data, **params.model_dump())

    def run_many(self, data, params):
        out = []
        for d in data:
            try:
                out.append(self.run(d, params))
            except SpecprocError as exc:
                out.append(exc)
        return out


class DeconvolveParams(ProcessorParams):
    peaks: list[float] | dict[str, float] | list[dict[str, Any]] | None = None
    n_peaks: int | None = Field(None, ge=1)
    max_peaks: int = Field(6, ge=1)
    lineshape: Literal["gaussian", "lorentzian", "pseudo-voigt", "voigt"] = "pseudo-voigt"
    region: tuple[float, float] | None = None
    baseline: Literal["none", "constant", "linear", "quadratic"] = "constant"
    shared_width: bool = False
    links: list[dict[str, Any]] | None = None
    mas_rate_hz: float | None = None
    sidebands: bool = True
    sideband_orders: Literal["auto"] | int = "auto"
    center_window: float | None = None
    errors: Literal["covariance", "montecarlo"] = "covariance"
    n_mc: int = Field(100, ge=3)
    seed: int | None = 0
    processing: dict[str, Any] | None = None


class Deconvolve(Processor):
    name = "nmr.deconvolve"
    technique = "nmr"
    description = "Peak deconvolution with spinning sidebands, quadrupolar sites, area fractions with errors"
    Params = DeconvolveParams

    def run(self, data, params: DeconvolveParams):
        from .deconvolution import deconvolve

        kw = params.model_dump()
        return deconvolve(data, kw.pop("peaks"), **kw)

    def run_many(self, data, params: DeconvolveParams):
        """Fit a stack. Uses the shared batch engine when it is installed and the stack shares
        one axis and explicit peaks; otherwise (or on failure) one lmfit fit per spectrum."""
        try:
            from ...fitting import batch  # noqa: F401  (the batch engine, when available)
        except ImportError:
            batch = None
        # the batch engine pays a compile/setup cost: worth it for real stacks only
        if batch is not None and params.peaks is not None and len(data) >= 16:
            try:
                return _run_batched(batch, data, params, self.run)
            except Exception:  # the batch path is an optimisation: fall back to single fits
                pass
        out = []
        for d in data:
            try:
                out.append(self.run(d, params))
            except SpecprocError as exc:
                out.append(exc)
        return out


def _run_batched(batch, data, params, run_one):
    """Batched fit through ``specproc.fitting.batch.fit_batch`` with per-spectrum results.

    The batch engine gives best-fit values; each spectrum's result (quantities with the full
    covariance) is then produced by a single lmfit polish started at those values, which
    converges in a few evaluations.
    """
    import numpy as np

    from .deconvolution import _prepare, build_model, deconvolve, noise_sigma, parse_peaks

    kw = params.model_dump()
    peaks = kw.pop("peaks")
    prepared, out = [], [None] * len(data)
    for i, d in enumerate(data):
        try:
            src = (d.attrs.get("provenance") or {}).get("source")
            _, x, y = _prepare(d, kw["region"], kw["processing"], src)
            prepared.append((i, x, y))
        except SpecprocError as exc:
            out[i] = exc
    if not prepared:
        return out
    x0 = prepared[0][1]
    same = [p for p in prepared if p[1].shape == x0.shape and np.allclose(p[1], x0)]
    if len(same) < 2 or any(p[0] for p in prepared if p not in same):
        raise RuntimeError("spectra do not share an axis")
    comps = parse_peaks(peaks, kw["lineshape"])
    Y = np.stack([p[2] for p in same])
    cm = build_model(x0, Y.mean(axis=0), comps, baseline=kw["baseline"], shared_width=kw["shared_width"],
                     noise=float(np.median([noise_sigma(p[2]) for p in same])))
    ds = batch.fit_batch(cm.model, x0, Y, params=cm.params)
    for j, (i, _x, _y) in enumerate(same):
        start = []
        for c in comps:
            c2 = dict(c)
            pre = c["name"]
            from ...fitting.models import prefix_of

            name = prefix_of(pre) + "center"
            if name in ds:
                c2["center"] = float(np.asarray(ds[name])[j])
            start.append(c2)
        try:
            out[i] = deconvolve(data[i], start, **kw)
        except SpecprocError as exc:
            out[i] = exc
    return out
