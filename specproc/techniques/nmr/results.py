"""The Result of an NMR deconvolution: quantities with errors (derived through the full covariance),
the component and sideband tables, warnings about undetected / insignificant sites, the figure.

:func:`make_result` builds it from plain values (no lmfit objects), so one fit and each spectrum of
a stack (:mod:`.stacks`) give the same Result.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ...core.numbers import finite_or_none
from ...core.result import Plots, Quantities, Recipe, Result
from .sites import Compiled, QuadSite

if TYPE_CHECKING:
    from .prepared import Prepared

def derived_fn(c: Compiled, drop=()):
    """``fn(values) -> [centres, FWHMs, areas (incl. sidebands), area fractions]`` of the sites
    (values: floats, or arrays of a stack of fits: then each block is ``(n_sites, n_spectra)``).
    Sites in ``drop`` (not detected) are left out of the fractions' total (their fraction NaN)."""
    from ...fitting.lineshapes import area_of, fwhm_of
    from ...fitting.models import prefix_of
    from .quadrupolar import fwhm_of_params

    sites = c.sites

    def fn(v: dict) -> np.ndarray:
        areas, fw, cen = [], [], []
        for s in sites:
            pre = prefix_of(s.name)
            if isinstance(s, QuadSite):
                areas.append(sum(v[g + "amplitude"] for g in c.groups[s.name]))
                fw.append(fwhm_of_params(v, pre, c.quad_ctx.get(s.name)))
            else:
                areas.append(sum(area_of(s.shape, v, g) for g in c.groups[s.name]))
                fw.append(fwhm_of(s.shape, v, pre))
            cen.append(v[pre + "center"])
        # scalars (one fit) or columns (a stack: every array (n, n_spectra), one call)
        areas = np.asarray(areas, float)
        counted = np.array([s.name not in drop for s in sites]).reshape((-1,) + (1,) * (areas.ndim - 1))
        tot = np.where(counted, areas, 0.0).sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            fr = np.where(counted & (tot > 0), areas / tot, np.nan)
        return np.concatenate([np.asarray(cen, float), np.asarray(fw, float), areas, fr])

    return fn


_f = finite_or_none


#: table columns of a site that keep their fitted value when it is not detected (where the fit went)
_WHERE = ("center_ppm", "fwhm_ppm", "fwhm_corrected_ppm")


def _not_a_result(row: dict) -> None:
    """Blank a table row of a site that was not detected: no errors, intensities NaN; the centre and
    width stay as fitted (the warnings say where it went); its quantities are all NaN."""
    for k, v in list(row.items()):
        if k.endswith("_stderr"):
            row[k] = None
        elif isinstance(v, float) and k not in _WHERE:
            row[k] = float("nan")


def _view_range(x, centres, widths, sidebands, top) -> tuple[float, float] | None:
    """Initial plot view: the centre bands +- 5 FWHM and every sideband taller than 5 % of the
    tallest point of the fit (the full window stays one autoscale click away)."""
    pos = [c + s * 5 * w for c, w in zip(centres, widths) for s in (-1, 1) if np.isfinite(c) and np.isfinite(w)]
    w_max = max((w for w in widths if np.isfinite(w)), default=0.0)
    pos += [sb["center_ppm"] + s * 3 * w_max for sb in sidebands if top > 0 and sb["height"] > 0.05 * top
            for s in (-1, 1)]
    if not pos:
        return None
    lo, hi = max(min(pos), float(np.min(x))), min(max(pos), float(np.max(x)))
    return (lo, hi) if hi > lo else None


def _full(curve, x):
    """A component's curve on every point of ``x`` (a constant baseline may be a scalar)."""
    return curve if np.shape(curve) == x.shape else np.broadcast_to(curve, x.shape)


def make_result(pr: Prepared, c: Compiled, values: dict, stderr: dict, curves: dict, best_fit, stats: dict,
                bounded: list, vals, errs, warns: list, p, x, y, params_json: dict | None = None,
                maxima: dict | None = None, undetected=()) -> Result:
    """Result of one fit from plain values (no lmfit objects needed: the batch path uses it too).

    Its tables are kept as rows (a DataFrame is built when one is read: :class:`~specproc.core.
    result.Tables`). A batch passes what it computed for the whole stack at once:
    ``params_json`` (``p.model_dump(mode="json")``) and ``maxima`` (``{prefix: max of that
    component's curve, "fit": max of the best fit}``); with ``maxima``, ``curves`` may be the
    spectrum's row of parameter columns (``{name: length-1 array}``, ``best_fit`` None): its
    figure is then made when first read (:class:`~specproc.core.result.Plots`). Sites in
    ``undetected`` (no signal near their given start) are no result: their quantities are NaN
    and their row says ``detected: False``.
    """
    lazy = best_fit is None
    if lazy and maxima is None:
        raise ValueError("make_result: lazy curves need the maxima")

    def top(key, curve) -> float:
        if maxima is not None and key in maxima:
            return maxima[key]
        return float(np.max(curve)) if curve is not None and np.size(curve) else float("nan")

    from ...fitting.models import prefix_of

    meta = pr.meta
    n = len(c.sites)
    cen, fw, area, fr = (np.asarray(vals[i * n:(i + 1) * n], float) for i in range(4))
    ecen, efw, earea, efr = (np.asarray(errs[i * n:(i + 1) * n], float) for i in range(4))
    rows, qs = [], Quantities()
    # exponential apodization of lb Hz adds exactly lb Hz to a Lorentzian FWHM; for Gaussian-like
    # lines the true broadening is smaller, so fwhm_corrected_ppm is then a lower bound of the width
    lor_ppm = None
    if meta.get("apodization") == "exponential" and meta.get("lb_hz") and meta.get("sf_mhz"):
        lor_ppm = float(meta["lb_hz"]) / float(meta["sf_mhz"])
        meta["apodization_broadening_ppm"] = lor_ppm
    from ...fitting.noise import noise_sigma

    # noise of the residual: free of the lines and of any baseline slope (the raw-data estimate
    # is not, when a sloped baseline spans more than the noise)
    noise_fit = noise_sigma(np.asarray(y, float) - np.asarray(best_fit, float)) if stats.get("redchi") is None \
        else math.sqrt(max(float(stats["redchi"]), 0.0))  # residual RMS: the same, without a second pass
    warns = list(warns)
    any_bounded = False
    for i, s in enumerate(c.sites):
        pre = prefix_of(s.name)
        own = [b for b in bounded if b.startswith(pre) and b[len(pre):] in
               ("center", "sigma", "gamma", "fraction", "amplitude", "cq_mhz", "eta", "delta_aniso_ppm", "sigma_mhz")]
        e_c = None if pre + "center" in own else _f(ecen[i])
        e_w = None if any(b[len(pre):] in ("sigma", "gamma", "cq_mhz", "eta", "delta_aniso_ppm", "sigma_mhz")
                          for b in own) else _f(efw[i])
        # a Lorentzian fraction / eta at its limit is a shape statement (pure Gaussian...): it
        # loses its own error (warning from the fit), not the site's position, width or area
        structural = [b for b in own if b[len(pre):] in ("center", "sigma", "gamma", "amplitude", "cq_mhz")]
        e_a = None if structural else _f(earea[i])
        curve = None if lazy else curves.get(pre)
        height = top(pre, curve)
        if np.isfinite(height) and height < 3 * noise_fit and s.name not in undetected:
            warns.append(f"{s.name}: no significant signal (fitted height {height:.3g} < 3x the noise "
                         f"{noise_fit:.3g}); its values are not a measurement")
        row = {"name": s.name, "kind": "site", "center_ppm": cen[i], "center_ppm_stderr": e_c,
               "fwhm_ppm": fw[i], "fwhm_ppm_stderr": e_w, "height": height, "area": area[i],
               "area_stderr": e_a, "area_fraction": fr[i], "area_fraction_stderr": None,
               "shape": s.shape, "n_sidebands": len(c.groups[s.name]) - 1, "at_bound": ",".join(own)}
        if lor_ppm is not None and not isinstance(s, QuadSite):
            row["fwhm_corrected_ppm"] = fw[i] - lor_ppm
        if isinstance(s, QuadSite):
            from .quadrupolar import quad_rows

            row.update(quad_rows(values, stderr, pre, warns, s.name, meta.get("sf_mhz")))
        else:
            from .models import rows as _model_rows

            row.update(_model_rows(s.shape, values, stderr, pre))
        row["detected"] = s.name not in undetected
        if not row["detected"]:
            _not_a_result(row)
        else:
            any_bounded |= bool(structural)
        rows.append(row)
    # a bounded position / width / area anywhere makes every area fraction conditional on that limit
    for i, row in enumerate(rows):
        row["area_fraction_stderr"] = None if any_bounded or not row["detected"] else _f(efr[i])
    for i, s in enumerate(c.sites):
        row = rows[i]
        nan = float("nan")
        qs.add(s.name, "center_ppm", float(row["center_ppm"]) if row["detected"] else nan,
               row["center_ppm_stderr"], "ppm", "isotropic / peak shift")
        qs.add(s.name, "fwhm_ppm", float(row["fwhm_ppm"]) if row["detected"] else nan,
               row["fwhm_ppm_stderr"], "ppm", "full width at half maximum")
        qs.add(s.name, "area_fraction", float(row["area_fraction"]), row["area_fraction_stderr"], "",
               "area fraction incl. spinning sidebands")
        qs.add(s.name, "area", float(row["area"]), row["area_stderr"], "arb*ppm", "area incl. sidebands")
        if isinstance(s, QuadSite):
            qs.add(s.name, "cq_mhz", row["cq_mhz"], _f(row["cq_mhz_stderr"]), "MHz", "quadrupolar coupling")
            qs.add(s.name, "eta", row["eta"], _f(row["eta_stderr"]), "", "asymmetry")
        else:
            from .models import quantities as _model_quantities

            for _par, key, unit, desc in _model_quantities(s.shape):
                qs.add(s.name, key, row[key] if row["detected"] else nan, row[key + "_stderr"], unit, desc)
    sb_rows = []
    for cname, k, pre in c.sidebands:
        curve = None if lazy else curves.get(pre)
        sb_rows.append({"name": f"{cname} ssb{k:+d}", "kind": "sideband", "parent": cname, "order": k,
                        "center_ppm": values[pre + "center"], "area": values[pre + "amplitude"],
                        "area_stderr": _f(stderr.get(pre + "amplitude")),
                        "height": top(pre, curve) if lazy or curve is not None else 0.0})
    tables = {"components": rows}
    if sb_rows:
        tables["sidebands"] = sb_rows
    fit_top = top("fit", None if lazy else best_fit)
    meta["snr"] = fit_top / pr.noise if pr.noise else None
    look = {"sample": meta["sample"], "nucleus": meta.get("nucleus") or "",
            "view": _view_range(x, cen, fw, sb_rows, max(fit_top, 0.0))}
    if lazy:  # a recipe that crosses processes unmade (core.result.Recipe)
        plots = Plots(make=Recipe(_stack_figure, c, x, y, curves, look), n=1)
    else:
        plots = [_figure(c, x, y, curves, best_fit, look)]
    params = dict(params_json) if params_json is not None else p.model_dump(mode="json")
    params["mas_rate_hz"] = pr.rate
    seen, uniq = set(), []
    for w in warns:
        if w not in seen:
            seen.add(w)
            uniq.append(w)
    return Result(processor="nmr.deconvolve", technique="nmr", sample=meta["sample"], quantities=qs, tables=tables,
                  plots=plots, params=params, inputs=[dict(pr.attrs.get("provenance") or {})], stats=stats,
                  warnings=uniq, main_table="components", meta=meta)


def _figure(c: Compiled, x, y, curves: dict, best_fit, look: dict) -> dict:
    """The plot spec of one deconvolution: data, sites, sidebands, baseline, fit, residual."""
    from ...fitting.models import prefix_of

    series = [{"name": "data", "y": y, "role": "data"}]
    for s in c.sites:
        pre = prefix_of(s.name)
        if pre in curves:
            series.append({"name": s.name, "y": _full(curves[pre], x), "role": "component"})
    for cname, k, pre in c.sidebands:
        if pre in curves:
            series.append({"name": f"{cname} ssb{k:+d}", "y": curves[pre], "role": "sideband"})
    if "bl_" in curves:
        series.append({"name": "baseline", "y": _full(curves["bl_"], x), "role": "baseline"})
    series.append({"name": "fit", "y": best_fit, "role": "fit"})
    series.append({"name": "residual", "y": y - best_fit, "role": "residual"})
    nuc = look["nucleus"]
    return {"kind": "spectrum", "title": f"{look['sample']} {nuc} deconvolution".strip(), "x": x,
            "x_label": f"{nuc} shift (ppm)".strip(), "y_label": "intensity", "reverse_x": True,
            "series": series, "x_range": look["view"]}


def _stack_figure(c: Compiled, x, y, row: dict, look: dict) -> list[dict]:
    """The figure of one spectrum of a stack, from its row of parameter columns (a Plots recipe)."""
    curves, best = curve_stack(c, x, row)
    return [_figure(c, x, y, {pre: cv[0] for pre, cv in curves.items()}, best[0], look)]


def curve_stack(c: Compiled, x, cols: dict, block: int = 64, keep: bool = True, on_block=None):
    """``({prefix: (n_spectra, n_points) curves}, best fits)`` of a stack from its parameter
    columns: the plain numpy lineshapes broadcast over blocks of spectra (no lmfit Parameters;
    blocks of ~2 MB stay in cache), the blocks in threads (numpy's loops release the GIL).

    ``keep=False``: only ``{prefix: max of each curve, "fit": max of each best fit}`` (n_spectra,),
    every block's curves dropped once their maxima are taken. ``on_block(a, b, curves, fits)`` is
    called with each block's curves (spectra ``a:b``) while they exist (the residual checks).
    """
    import os
    from concurrent.futures import ThreadPoolExecutor

    from ...fitting.lineshapes import REGISTRY, evaluate

    comps = []
    for s in c.spec.peaks:
        for pre in c.groups[s.name]:
            comps.append((pre, s.shape, [a for a in REGISTRY[s.shape].params if a != "center"] + ["center"]))
    deg = {"none": None, "constant": 0, "linear": 1, "quadratic": 2}[c.spec.baseline]
    nk = len(next(iter(cols.values()))) if cols else 0
    keys = [pre for pre, _shape, _names in comps] + (["bl_"] if deg is not None else [])
    if keep:
        out = {pre: np.empty((nk, x.size)) for pre in keys}
        best = np.zeros((nk, x.size))
    else:
        tops = {key: np.empty(nk) for key in keys + ["fit"]}

    def one(a: int) -> None:
        b = min(nk, a + block)
        cur = {pre: out[pre][a:b] for pre in keys} if keep else {pre: np.empty((b - a, x.size)) for pre in keys}
        fit = best[a:b] if keep else np.zeros((b - a, x.size))
        for pre, shape, names in comps:
            cur[pre][:] = evaluate(shape, x, **{n: cols[pre + n][a:b, None] for n in names if pre + n in cols})
            fit += cur[pre]
        if deg is not None:
            cur["bl_"][:] = sum((cols[f"bl_c{j}"][a:b, None] if f"bl_c{j}" in cols else 0.0) * x ** j
                                for j in range(deg + 1)) * np.ones_like(x)
            fit += cur["bl_"]
        if on_block is not None:
            on_block(a, b, cur, fit)
        if not keep:
            for pre in keys:
                tops[pre][a:b] = cur[pre].max(axis=1)
            tops["fit"][a:b] = fit.max(axis=1)

    starts = range(0, nk, block)
    workers = min(len(starts), os.cpu_count() or 1, 4)
    if workers > 1:
        with ThreadPoolExecutor(workers) as ex:
            list(ex.map(one, starts))
    else:
        for a in starts:
            one(a)
    return (out, best) if keep else tops
