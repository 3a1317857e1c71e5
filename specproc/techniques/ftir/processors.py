"""Processor plugin of the FTIR technique: ``ftir.fit_bands``."""
from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from ...core.errors import SpecprocError
from ...core.params import PeaksInput, PositiveOrNone, ProcessorParams, Region
from ...core.processor import Processor
from ...fitting.lineshapes import PEAK_SHAPES

#: band shapes offered for FTIR (area-normalised lmfit shapes)
BAND_SHAPES = tuple(s for s in ("gaussian", "lorentzian", "pseudo-voigt", "voigt", "pearson7") if s in PEAK_SHAPES)
BASELINE_NAMES = ("none", "constant", "linear", "quadratic", "asls", "arpls", "modpoly", "rubberband")


class FitBandsParams(ProcessorParams):
    """Parameters of ``ftir.fit_bands`` (the same schema for Python, CLI and pipeline YAML)."""

    #: one vocabulary (docs/architecture.md): the old names are accepted for one release
    renamed = {"bands": "peaks", "n_bands": "n_peaks", "max_bands": "max_peaks"}

    peaks: PeaksInput = Field(None, description="band start positions (cm-1), {name: cm-1} or band dicts; "
                                                "None: found automatically")
    region: Region | None = Field(None, description="fitted range (cm-1), either order (default: the whole spectrum)")
    n_peaks: int | None = Field(None, ge=1, le=30, description="number of bands to find automatically")
    max_peaks: int = Field(6, ge=1, le=30, description="most bands found automatically")
    shape: Literal[BAND_SHAPES] = Field("pseudo-voigt", description="band shape")  # type: ignore[valid-type]
    baseline: Literal[BASELINE_NAMES] = Field(  # type: ignore[valid-type]
        "linear", description="in-model polynomial (none/constant/linear/quadratic) or a pybaselines "
                              "method subtracted first (asls/arpls/modpoly/rubberband)")
    baseline_params: dict[str, Any] | None = Field(None, description="pybaselines keyword arguments")
    atmosphere: Literal["auto", "model", "mask", "none"] = Field(
        "auto", description="auto: mask recognised CO2/H2O, but model recognised CO2 when a band is centred under "
                            "it; model: always model recognised CO2; mask: never model, and always mask the CO2 "
                            "ranges; none")
    saturation_limit: PositiveOrNone = Field(None, description="absorbance at/above which points are saturated")
    center_window: PositiveOrNone = Field(None, description="centre bound half-width (cm-1); default "
                                                            "max(FWHM, 5x resolution)")
    snr: float = Field(5.0, gt=0, description="automatic band finding: prominence in noise SDs")
    compare_baseline: Literal[BASELINE_NAMES] | None = Field(  # type: ignore[valid-type]
        None, description="a second baseline: the same bands are refitted with it and the result carries both "
                          "(table 'baseline_comparison', a second plot, a warning where they disagree)")

    @model_validator(mode="after")
    def _second_baseline_differs(self):
        if self.compare_baseline is not None and self.compare_baseline == self.baseline:
            raise ValueError(f"compare_baseline {self.compare_baseline!r} is the baseline itself")
        return self


class FitBands(Processor):
    name = "ftir.fit_bands"
    technique = "ftir"
    description = ("FTIR band fitting: centre/FWHM/height/area with errors, atmospheric CO2/H2O masked or modelled, "
                   "saturation excluded, batched stacks")
    Params = FitBandsParams

    def run(self, data, params: FitBandsParams):
        r = _fit_one(data, _primary(params))
        if params.compare_baseline is not None:
            _compare(r, data, params)
        return r

    def run_many(self, data: list, params: FitBandsParams) -> list:
        """One Result per input (or the SpecprocError of that input), in input order.

        With explicit ``bands`` and >= 2 spectra on one wavenumber grid, the stack goes through
        one :func:`~specproc.fitting.batch.fit_batch` call (each spectrum's masked points get
        weight 0; errors rescaled to its own degrees of freedom); otherwise one fit per spectrum.
        With ``compare_baseline``, the second baseline's fits go the same way.
        """
        out = fit_many(data, _primary(params))
        if params.compare_baseline is None:
            return out
        alts = fit_many(data, _secondary(params)) if params.peaks is not None else [None] * len(data)
        for r, d, alt in zip(out, data, alts):
            if not isinstance(r, BaseException):
                _compare(r, d, params, alt)
        return out


def _primary(params: FitBandsParams) -> FitBandsParams:
    """The parameters of the main fit (baseline_params only reach a pybaselines method)."""
    from .processing import BASELINES

    upd = {"compare_baseline": None}
    if params.baseline not in BASELINES and params.baseline_params and params.compare_baseline in BASELINES:
        upd["baseline_params"] = None
    return params.model_copy(update=upd)


def _secondary(params: FitBandsParams, bands=None) -> FitBandsParams:
    from .processing import BASELINES

    upd = {"baseline": params.compare_baseline, "compare_baseline": None}
    if params.compare_baseline not in BASELINES:
        upd["baseline_params"] = None
    if bands is not None:
        upd["peaks"] = bands
    return params.model_copy(update=upd)


def _fit_one(data, params: FitBandsParams):
    from .bands import fit_bands

    kw = _band_kwargs(params)
    return fit_bands(data, kw.pop("peaks"), params=params.model_dump(mode="json"), **kw)


def _band_kwargs(params: FitBandsParams) -> dict:
    """The keyword arguments of :func:`.bands.fit_bands` (its band-counting names) from the parameters."""
    kw = params.model_dump()
    kw.pop("compare_baseline", None)
    kw["n_bands"], kw["max_bands"] = kw.pop("n_peaks"), kw.pop("max_peaks")
    return kw


def _compare(r, data, params: FitBandsParams, alt=None) -> None:
    """Refit ``data`` with the second baseline (same band names and starts) and attach it to ``r``."""
    from .bands import attach_baseline_comparison

    if alt is None:
        # bands found automatically: the second fit starts from the first fit's bands, same names
        starts = {row["name"]: float(row["center_cm1"]) for row in r.table.to_dict(orient="records")}
        try:
            alt = _fit_one(data, _secondary(params, bands=starts))
        except SpecprocError as exc:
            alt = exc
    attach_baseline_comparison(r, alt, params.compare_baseline)


def fit_many(data: list, params: FitBandsParams) -> list:
    from .bands import fit_bands

    kw = _band_kwargs(params)
    bands = kw.pop("peaks")
    pj = params.model_dump(mode="json")
    if bands is None or len(data) < 2:
        return _loop(data, params)
    from .bands import add_co2_model, build_spec, prepare

    preps: list = []
    for d in data:
        try:
            preps.append(prepare(d, kw["region"], kw["baseline"], kw["baseline_params"], kw["atmosphere"],
                                 kw["saturation_limit"]))
        except SpecprocError as exc:
            preps.append(exc)
    good = [i for i, p in enumerate(preps) if not isinstance(p, BaseException)]
    if len(good) < 2 or any(preps[i].x.shape != preps[good[0]].x.shape
                            or not np.allclose(preps[i].x, preps[good[0]].x, rtol=0, atol=1e-6) for i in good):
        return _loop(data, params)
    x = preps[good[0]].x
    K = np.stack([preps[i].keep for i in good])
    anykeep = K.any(axis=0)
    if anykeep.sum() < 10:
        return _loop(data, params)
    Y = np.stack([preps[i].y for i in good])
    try:
        import copy

        ref = copy.copy(preps[good[0]])
        ref.keep = K.all(axis=0) if K.all(axis=0).sum() >= 10 else anykeep
        ref.y = Y.mean(axis=0)          # start values only
        spec, spec_warns = build_spec(ref, bands, shape=kw["shape"], baseline=kw["baseline"], n_bands=kw["n_bands"],
                                      max_bands=kw["max_bands"], snr=kw["snr"], center_window=kw["center_window"],
                                      co2_mode=kw["atmosphere"])
        # CO2 modelled where it overlaps a band: one spec for the stack needs the same decision everywhere
        own_warns, specs = {}, []
        for i in good:
            s_i, w_i = add_co2_model(preps[i], spec, kw["atmosphere"], spec_warns)
            own_warns[i] = w_i
            specs.append(s_i)
        if len({tuple((k, tuple(v)) for k, v in sorted((preps[i].meta.get("co2_model") or {}).items()))
                for i in good}) > 1:
            return _loop(data, params)
        spec = specs[0]
    except SpecprocError:
        return _loop(data, params)
    K = np.stack([preps[i].keep for i in good])      # CO2 modelled: its points are data again
    anykeep = K.any(axis=0)
    from ...fitting.models import prefix_of
    from ...fitting.stack import fit_stack

    from .bands import sample_peaks, make_result

    xs, Ys, W = x[anykeep], Y[:, anykeep], K[:, anykeep].astype(float)   # each spectrum's own mask: weight 0
    model, lp = spec.to_lmfit(xs, ref.y[anykeep])
    sf = fit_stack(model, xs, Ys, lp, weights=W)
    batch_meta = {"n_spectra": len(good), "method": sf.method,
                  "fit_s": float(sf.timings.get("fit", np.nan)), "total_s": float(sf.timings.get("total", np.nan))}
    out: list = list(preps)
    for k, i in enumerate(good):
        if not sf.ok(k):
            try:
                out[i] = fit_bands(data[i], bands, params=pj, **kw)   # this one spectrum: the lmfit path
            except SpecprocError as exc:
                out[i] = exc
            continue
        prep = preps[i]
        row = sf.row(k, noise=prep.noise)
        vals, errs, bounded = row.values, row.errors, row.bounded
        band_peaks, _ = sample_peaks(spec, prep)
        n_ = len(band_peaks)
        dv, de = np.zeros(3 * n_), np.zeros(3 * n_)
        for j, pk in enumerate(band_peaks):
            pre = prefix_of(pk.name)
            for off, key in ((0, "fwhm"), (n_, "amplitude"), (2 * n_, "height")):
                dv[off + j] = vals[pre + key]
                de[off + j] = errs.get(pre + key, np.nan)
        warns = own_warns[i] + row.warnings
        checks, undetected = _checks(spec, xs, Ys[k], W[k] > 0, vals, prep.noise)
        warns += checks
        stats = row.stats
        try:
            out[i] = make_result(data[i], prep, spec, vals, errs, stats, warns, pj, bounded=bounded,
                                 derived=(dv, de), undetected=undetected)
            out[i].meta["batch"] = batch_meta
        except SpecprocError as exc:
            out[i] = exc
    return out


def _checks(spec, x, y, keep, values: dict, noise: float):
    """The toolkit's after-fit checks (:func:`~specproc.fitting.fit.fit_checks`) of one spectrum
    of a stack, on its own unmasked points: (warnings, undetected bands)."""
    from ...fitting.fit import fit_checks, peak_curves

    xk, yk = x[keep], y[keep]
    curves = peak_curves(spec, xk, values)
    best = sum(curves.values(), np.zeros_like(xk))
    return fit_checks(spec, xk, yk, best, values, noise, curves=curves, unit="cm-1")


def _loop(data, params):
    return Processor.run_many(FitBands(), data, params)
