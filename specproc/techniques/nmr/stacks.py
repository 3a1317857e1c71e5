"""Stacks of NMR spectra with one model: one batch-engine fit, one Result per spectrum.

Inputs that cannot be batched (automatic mode, Monte-Carlo errors...) go
through :func:`~.deconvolution.deconvolve` one by one.
"""
from __future__ import annotations

import math
from dataclasses import replace
from types import SimpleNamespace

import numpy as np

from ...core.errors import FitError, ParameterError, SpecprocError
from ...core.numbers import finite_or_none as _f
from .prepared import Prepared, prepare
from .results import curve_stack, derived_fn, make_result
from .sites import Compiled, site_checks, build, parse_sites, start_sites

def warm_up(p, n: int) -> None:
    """Import and load what :func:`deconvolve_many` needs for ``n`` inputs (no effect on results).

    Called by the command runner in a background thread while a large batch is read (see
    :meth:`specproc.core.processor.Processor.warm_up`): lmfit (the ModelSpec's models), scipy.signal
    (start widths) and the batch engine's compiled kernel, ~1.5 s of start-up otherwise paid after
    the reading.
    """
    if n < 2 or p.method == "loop" or not p.peaks:
        return
    import lmfit  # noqa: F401
    import scipy.signal  # noqa: F401

    from ...fitting.batch import warm_up_kernel

    warm_up_kernel()


def deconvolve_many(data, p) -> list:
    """Deconvolve a stack of spectra (or FIDs) with one model through the batch engine.

    Every spectrum is prepared like :func:`deconvolve`, put on one axis (the first spectrum's,
    restricted to the common ppm range, by linear interpolation when the axes differ), and
    fitted by **one** stack fit (:func:`~specproc.fitting.stack.fit_stack`, the batch engine) with the
    model built on the mean spectrum. Each Result is built from the StackFit's columns with plain numpy
    (no per-spectrum lmfit objects): centres, FWHM, site areas and area fractions with standard
    errors propagated by the engine with that spectrum's full covariance.

    Falls back to one :func:`deconvolve` per spectrum (``meta["batch"]`` absent) for automatic
    mode, Monte-Carlo errors, fewer than 2 spectra, different nuclei /
    frequencies / MAS rates or no common ppm range; ``p.method="loop"`` forces that.

    Returns
    -------
    list
        One :class:`Result` per input, or the :class:`SpecprocError` of that input, in order.
    """
    data = list(data)

    def loop():
        from .deconvolution import deconvolve

        out = []
        for d in data:
            try:
                out.append(deconvolve(d, p))
            except SpecprocError as exc:
                out.append(exc)
        return out

    try:
        sites0 = parse_sites(p.peaks, p.shape)
    except ParameterError as exc:
        return [exc] * len(data)
    batchable = p.method != "loop" and sites0 and len(data) >= 2 and p.errors == "covariance"
    if not batchable:
        if p.method == "batch":
            raise ParameterError("this stack cannot go through the batch engine (see deconvolve_many)")
        return loop()
    out: list = [None] * len(data)
    prep: list[tuple[int, Prepared]] = []
    for i, d in enumerate(data):
        try:
            prep.append((i, prepare(d, p)))
        except SpecprocError as exc:
            out[i] = exc
    if not prep:
        return out
    keys = {(pr.nucleus, _round(pr.sf), _round(pr.rate), pr.step is None) for _, pr in prep}
    lo = max(float(pr.x.min()) for _, pr in prep)
    hi = min(float(pr.x.max()) for _, pr in prep)
    if len(keys) > 1 or not hi > lo or len(prep) < 2:
        if p.method == "batch":
            raise ParameterError("the spectra differ in nucleus / frequency / MAS rate or share no ppm range")
        return loop()
    pr0 = prep[0][1]
    x0, Y, noises, interpolated = _common_axis(prep, lo, hi)
    ymean = Y.mean(axis=0)
    prm = replace(pr0, x=x0, y=ymean, noise=float(np.median(noises)), meta={})
    for s in sites0:
        if not x0.min() <= s.center <= x0.max():
            err = ParameterError(f"peak {s.name!r} at {s.center:g} ppm is outside the common ppm range "
                                 f"({x0.min():.4g}..{x0.max():.4g})")
            for i, pr in prep:
                out[i] = ParameterError(err.reason if hasattr(err, "reason") else str(err), pr.src)
            return out
    try:
        sites = start_sites(x0, ymean, sites0, prm, p)
        c = build(sites, x0, ymean, prm, p)
        sf = _fit_stack(c, x0, ymean, Y)
    except Exception as exc:  # the engine failed for the whole stack: reported for each spectrum
        for i, pr in prep:
            out[i] = exc if isinstance(exc, SpecprocError) else FitError(
                f"batch fit failed: {type(exc).__name__}: {exc}", pr.src)
        return out
    _stack_results(out, prep, p, c, sf, x0, Y, noises, interpolated, prm.meta)
    return out


def _common_axis(prep: list, lo: float, hi: float):
    """The stack on one axis: the first spectrum's, restricted to the common ppm range ``lo..hi``
    (others interpolated linearly when their axes differ). -> (x0, Y, noise SDs, interpolated)."""
    pr0 = prep[0][1]
    inside = (pr0.x >= lo) & (pr0.x <= hi)
    x0 = pr0.x if inside.all() else pr0.x[inside]
    Y = np.empty((len(prep), x0.size))
    interpolated = False
    tol = 1e-9 * max(1.0, float(np.ptp(x0)))
    for k, (_i, pr) in enumerate(prep):
        # a stack usually shares one axis: the exact comparison first (allclose costs ~10x more)
        if pr.x is x0 or (pr.x.shape == x0.shape and (np.array_equal(pr.x, x0)
                                                      or np.allclose(pr.x, x0, rtol=0, atol=tol))):
            Y[k] = pr.y
        else:  # axes descending: np.interp needs ascending
            Y[k] = np.interp(x0[::-1], pr.x[::-1], pr.y[::-1])[::-1]
            interpolated = True
    from ...fitting.noise import noise_sigma

    noises = np.array([pr.noise if pr.x.shape == x0.shape else noise_sigma(yy) for (_i, pr), yy in zip(prep, Y)])
    return x0, Y, noises, interpolated


def _stack_results(out: list, prep: list, p, c: Compiled, sf, x0, Y, noises, interpolated: bool, mean_meta: dict):
    """One Result per spectrum of a stack fit (into ``out`` at each input's index), from the
    :class:`~specproc.fitting.stack.StackFit`'s columns: every quantity, bound check and statistic is
    computed on whole columns; the per-spectrum loop only slices them into its Result."""
    from ...fitting.models import prefix_of
    from ...fitting.uncertainty import fit_warnings

    n = len(c.sites)
    nk = len(prep)
    fcols = sf.values
    vlists = {nm: v.tolist() for nm, v in fcols.items()}
    elists = {nm: v.tolist() for nm, v in sf.errors.items()}
    finite = sf.finite
    err_all = np.full((nk, 4 * n), np.nan)
    for j, s in enumerate(c.sites):
        pre = prefix_of(s.name)
        for blk, nm in ((0, pre + "center"), (1, pre + "fwhm"), (2, pre + "sitearea"), (3, pre + "sitefrac")):
            if nm in sf.errors:
                err_all[:, blk * n + j] = sf.errors[nm]
    vals_all = np.asarray(derived_fn(c)(fcols), float).T  # (spectra, 4 n): centres, FWHM, areas, fractions
    # the maxima of every component and fit (heights, S/N, the plot's view), not the curves: a
    # figure's curves are made when it is first read (1,000 spectra: ~200 MB nobody draws from the CLI)
    checks: list = [([], [])] * nk

    def check(a, b, cur, fits):   # the toolkit's after-fit checks of spectra a:b, while their curves exist
        for j in range(a, b):
            if finite[j]:
                values = {nm: float(v[j]) for nm, v in fcols.items()}
                checks[j] = site_checks(c, x0, Y[j], fits[j - a], values, float(noises[j]),
                                        {pre: cv[j - a] for pre, cv in cur.items()})

    maxima = {key: v.tolist() for key, v in curve_stack(c, x0, fcols, keep=False, on_block=check).items()}
    hit_any = sf.at_bound()
    nd, nv = int(x0.size), len(sf.free)
    chisqr = sf.stats["chisqr"].astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        lik = nd * np.log(np.maximum(chisqr, 1e-300) / nd)
        rms = np.sqrt(chisqr / nd)  # the residual RMS of an unweighted fit
    aic, bic = (lik + 2 * nv).tolist(), (lik + math.log(nd) * nv).tolist()
    rms_l = rms.tolist()
    st = {key: sf.stats[key].astype(float).tolist() for key in ("r2", "redchi", "chisqr", "nfev")}
    success = sf.success.tolist()
    batch_meta = {"method": sf.method, "n_spectra": len(prep), "interpolated_to_common_axis": interpolated,
                  "fit_s": float(sf.timings.get("fit", float("nan")))}
    region = [float(x0.min()), float(x0.max())]
    params_json = p.model_dump(mode="json")
    starts = {k2: v for k2, v in mean_meta.items() if k2 == "starts"}
    prefixes = tuple(pre for group in c.groups.values() for pre in group) + ("bl_",)
    curve_cols = [nm for nm in fcols if nm.startswith(prefixes)]  # what a component's curve reads
    for k, (i, pr) in enumerate(prep):
        if not finite[k]:
            out[i] = FitError("batch fit gave non-finite parameters (masked or failed spectrum)", pr.src)
            continue
        try:
            values = {nm: vl[k] for nm, vl in vlists.items()}
            stderr = {nm: _f(el[k]) for nm, el in elists.items()}
            bounded = sf.bounded(k) if hit_any[k] else []
            view = {nm: SimpleNamespace(value=values[nm], min=sf.bounds[nm][0], max=sf.bounds[nm][1])
                    for nm in bounded}
            stats = {"r2": st["r2"][k], "redchi": st["redchi"][k], "chisqr": st["chisqr"][k],
                     "nfev": int(st["nfev"][k]), "success": bool(success[k]), "ndata": nd,
                     "nvarys": nv, "aic": aic[k], "bic": bic[k]}
            noise = float(noises[k])
            warns = list(pr.warnings) + fit_warnings(stats, bounded, rms=rms_l[k], noise=noise, params=view)
            warns += checks[k][0]
            undetected = checks[k][1]
            if undetected:   # fractions of the detected sites only (no propagated error for the renormalised ones)
                vals_all[k] = np.asarray(derived_fn(c, drop=undetected)(values), float)
                err_all[k, 3 * n:] = np.nan
            pr.meta.update(noise=noise, region_ppm=list(region),
                           errors="covariance (batch engine, full covariance per spectrum)",
                           model_selection="given peaks", batch=dict(batch_meta), **starts)
            row = {nm: fcols[nm][k:k + 1] for nm in curve_cols}
            out[i] = make_result(replace(pr, noise=noise), c, values, stderr, row, None, stats, bounded,
                                 vals_all[k], err_all[k], warns, p, x0, Y[k], params_json=params_json,
                                 maxima={key: mx[k] for key, mx in maxima.items()}, undetected=undetected)
        except SpecprocError as exc:
            out[i] = exc


def _fit_stack(c: Compiled, x0, ymean, Y):
    """One stack fit (:func:`~specproc.fitting.stack.fit_stack`); site areas / fractions / FWHM as
    expression parameters so the engine propagates their standard errors with each spectrum's full
    covariance. Sideband amplitudes are tied to their line's or free down to 0 (a vanished sideband
    is no limit of a measurement): not bound checks."""
    from ...fitting.lineshapes import get
    from ...fitting.models import prefix_of
    from ...fitting.stack import fit_stack

    model, params = c.spec.to_lmfit(x0, ymean)
    sitearea = {}
    for s in c.sites:
        pre = prefix_of(s.name)
        sitearea[s.name] = pre + "sitearea"
        params.add(pre + "sitearea", expr=" + ".join(g + get(s.shape).intensity for g in c.groups[s.name]))
    total = "(" + " + ".join(sitearea.values()) + ")"
    for s in c.sites:
        pre = prefix_of(s.name)
        params.add(pre + "sitefrac", expr=f"{pre}sitearea / {total}")
    with np.errstate(all="ignore"):
        # spectra of one stack are alike: each starts from the mean spectrum's optimum where that
        # is the better start (a quarter fewer LM iterations on a series of similar spectra);
        # converged like lmfit's leastsq (ftol = xtol = 1.5e-8): centres agree with a loop of
        # lmfit fits to < 1e-4 ppm, 1/20 of their standard errors
        return fit_stack(model, x0, Y, params, start="mean", tol=1.5e-8,
                         skip_bounds={pre + "amplitude" for _n, _k, pre in c.sidebands})


def _round(v):
    try:
        return round(float(v), 6)
    except (TypeError, ValueError):
        return None
