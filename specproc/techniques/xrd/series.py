"""Series of patterns through the shared batch engine, and instrument calibration from a standard.

:func:`fit_series` fits the same reflections in every pattern of a series (in-situ heating,
many samples on one grid) with the shared stack fit (:func:`specproc.fitting.stack.fit_stack` on
:func:`specproc.fitting.batch.fit_batch`: values, errors and centres at a bound by column). Each reflection is a
Kα1/Kα2 doublet described by a :class:`~specproc.fitting.models.ModelSpec`; for the batch engine
the Kα2 line is a :class:`~specproc.fitting.models.Satellite` whose position is the tangent of
Bragg's law at the starting position (an affine link the engine compiles; < 2e-5° from Bragg's law
for a 1° shift at 2θ ≤ 60°), with the file's area ratio and the shared width. Models the engine
cannot compile fall back to fit_batch's own lmfit loop (``method="lmfit-loop"`` forces it).

lmfit and the batch engine agree (centres within 1e-3°) on the same data and starting values.
They did not while centre bounds were symmetric about the start: lmfit's ``leastsq`` froze a
centre started at the midpoint of its bounds (see :func:`specproc.fitting.models.unfreeze_centers`), up to
0.014° off; the bounds are now asymmetric (and fit_batch's lmfit loop unfreezes such starts).
"""
from __future__ import annotations

import numpy as np

from ...core.errors import ParameterError, ProcessingError
from ...core.result import Quantities, Result
from .processing import background, bragg_d, bragg_d_stderr


def _stack(patterns):
    """(x, Y, labels, first measurement) from a list of patterns or a ('scan', 'two_theta') stack."""
    import xarray as xr

    from ...core.measurement import check_measurement

    from .peaks import refuse_rsm

    if isinstance(patterns, xr.DataArray):
        check_measurement(patterns, "xrd")
        refuse_rsm(patterns)
        if patterns.ndim == 1:
            patterns = [patterns]
        else:
            first = patterns
            Y = np.asarray(patterns.values, float).reshape(-1, patterns.shape[-1])
            x = np.asarray(patterns.coords["two_theta"].values, float)
            labels = [f"{patterns.attrs.get('sample')}[{i}]" for i in range(Y.shape[0])]
            return x, Y, labels, first
    pats = list(patterns)
    if not pats:
        raise ParameterError("fit_series: empty series")
    for p in pats:
        check_measurement(p, "xrd")
        refuse_rsm(p)
    x = np.asarray(pats[0].coords["two_theta"].values, float)
    for p in pats[1:]:
        xp = np.asarray(p.coords["two_theta"].values, float)
        if xp.shape != x.shape or not np.allclose(xp, x, atol=1e-6):
            raise ParameterError("fit_series: patterns must share one 2θ grid (interpolate first)",
                                 p.attrs.get("provenance", {}).get("source"))
    Y = np.vstack([np.asarray(p.values, float) for p in pats])
    if not np.all(np.isfinite(Y)):
        raise ParameterError("fit_series: NaN/inf intensities in the series")
    labels = [str(p.attrs.get("sample") or i) for i, p in enumerate(pats)]
    return x, Y, labels, pats[0]


def track_positions(x, net, found, step):
    """Per-pattern starting 2θ of each reflection, followed from pattern to pattern (argmax of the
    smoothed pattern within ± max(FWHM, 5 steps) of the previous position), so a series with a
    drifting cell (heating, cycling) starts every fit near its own peak."""
    from scipy.ndimage import uniform_filter1d

    sm = uniform_filter1d(net, size=3, axis=1)
    out = np.empty((net.shape[0], len(found)))
    for k, p in enumerate(found):
        h = max(p["fwhm"], 5 * step)
        pos = p["center"]
        for i in range(net.shape[0]):
            sel = np.flatnonzero((x >= pos - h) & (x <= pos + h))
            if sel.size:
                pos = float(x[sel[np.argmax(sm[i, sel])]])
            out[i, k] = pos
    return out


def series_spec(cluster, kalpha2, shape="pseudo-voigt", spread=0.0):
    """ModelSpec of a window: reflections with their Kα2 Satellite (tangent of Bragg's law at the start,
    an affine link the batch engine compiles) and a linear baseline."""
    from ...fitting.models import ModelSpec, Peak, Satellite
    from .peaks import kalpha2_expr

    peaks = []
    for i, p in enumerate(cluster):
        w = max(p["fwhm"], 1e-3)
        half = spread + max(2 * w, 0.1)
        sats = [Satellite(name="Ka2", position=kalpha2_expr(kalpha2[0], kalpha2[1], p["center"]),
                          ratio=float(kalpha2[2]))] if kalpha2 and kalpha2[2] else []
        # asymmetric guard bounds: a start at their exact midpoint freezes lmfit's leastsq
        # (see specproc.fitting.models.unfreeze_centers); the batch engine is indifferent
        peaks.append(Peak(name=f"p{i}", shape=shape, center=p["center"], fwhm=w, satellites=sats,
                          bounds={"center": (p["center"] - half, p["center"] + half * (1 + 1 / np.pi))}))
    return ModelSpec(peaks=peaks, baseline="linear")


def fit_series(patterns, *, peaks=None, wavelength_nm=None, kalpha2=True, shape="pseudo-voigt",
               prominence_sigma=5.0, background_window_deg=1.5, method="auto") -> Result:
    """Fit the same reflections in every pattern of a series with the batch engine.

    Parameters
    ----------
    patterns : list of measurements or DataArray ``("scan", "two_theta")``
        Patterns on one 2θ grid.
    peaks : list of float, optional
        Reflection positions (deg 2θ) to follow; default: peaks found in the mean pattern.
    method : {"auto", "batched-lm", "lmfit-loop", "lmfit"}
        Passed to :func:`~specproc.fitting.batch.fit_batch` (``lmfit`` = its lmfit loop, for comparisons).

    Returns
    -------
    Result
        ``data``: xarray Dataset (dims ``pattern``, ``peak``) with ``two_theta_deg``, ``d_nm``, ``fwhm_deg``,
        ``area`` and their ``*_stderr``; table ``series`` (tidy); stats ``fit_s``, ``method``.
    """
    import time

    import xarray as xr

    from ...fitting.noise import noise_sigma
    from .analysis import wavelength_warnings, wavelengths
    from .peaks import peak_clusters, find_peaks
    from .scantype import classify_scan, refusal

    t0 = time.perf_counter()
    x, Y, labels, first = _stack(patterns)
    if x[0] > x[-1]:
        x, Y = x[::-1], Y[:, ::-1]
    l1, ka2, _ = wavelengths(first, wavelength_nm, kalpha2)
    acq = first.attrs.get("acquisition", {}) or {}
    kind, why = classify_scan(x, Y.mean(axis=0), acq.get("scan_axis"), acq.get("measurement_type"))
    if kind == "reflectivity":  # Kiessig fringes are not reflections to follow
        raise ProcessingError(refusal(why), first.attrs.get("provenance", {}).get("source"))
    B = np.vstack([background(x, y, background_window_deg) for y in Y])
    net = Y - B
    mean_net = net.mean(axis=0)
    step = float(np.median(np.diff(x)))
    if peaks is None:
        found = find_peaks(x, mean_net, noise=noise_sigma(Y.mean(axis=0), method="diff") or 1.0,
                           prominence_sigma=prominence_sigma,
                           kalpha2=ka2)
    else:
        found = [{"center": float(c), "height": float(np.interp(c, x, mean_net)), "fwhm": 10 * step} for c in peaks]
    if not found:
        raise ProcessingError("fit_series: no reflections found in the mean pattern")
    W = 1.0 / np.sqrt(np.clip(Y, 1.0, None))
    n = Y.shape[0]
    found = sorted(found, key=lambda p: p["center"])
    tracked = track_positions(x, net, found, step)
    for k, p in enumerate(found):
        p["k"] = k
    cols = {k: [] for k in ("two_theta_deg", "two_theta_stderr", "fwhm_deg", "fwhm_stderr", "area", "area_stderr",
                            "success", "at_bound")}
    used = set()
    t_fit = 0.0
    from ...fitting.lineshapes import fwhm as _fwhm
    from ...fitting.stack import fit_stack

    nan = np.full(n, np.nan)
    for lo, hi, cluster, c0, c1 in peak_clusters(found, ka2):
        ks = [p["k"] for p in cluster]
        spread = float(np.max(np.abs(tracked[:, ks] - np.array([p["center"] for p in cluster])))) if n else 0.0
        sel = (x >= lo - spread) & (x <= hi + spread)
        spec = series_spec(cluster, ka2, shape, spread)
        init = {f"p{i}_center": tracked[:, k] for i, k in enumerate(ks)}
        t1 = time.perf_counter()
        sf = fit_stack(spec, x[sel], net[:, sel], init=init, weights=W[:, sel], method=method)
        t_fit += time.perf_counter() - t1
        used.add(sf.ds.attrs.get("method", "batched-lm"))
        v, e = sf.values, sf.errors
        for i in range(c0, c1):
            pre = f"p{i}_"
            sig = v[pre + "sigma"]
            fw = _fwhm(shape, sig, gamma=v.get(pre + "gamma"), expon=v.get(pre + "expon"))
            lo_b, hi_b = sf.bounds[pre + "center"]
            # a centre on its bound is a limit, not a measurement (the one bound rule: no standard error);
            # an error bar wider than the search window means the position is not determined
            ce = e.get(pre + "center", nan)
            atb = sf.at_bound(pre + "center") | ~(ce < (hi_b - lo_b))
            cols["at_bound"].append(atb)
            cols["two_theta_deg"].append(v[pre + "center"])
            cols["two_theta_stderr"].append(np.where(atb, np.nan, ce))
            cols["fwhm_deg"].append(fw)
            cols["fwhm_stderr"].append(e.get(pre + "sigma", nan) * fw / sig)
            cols["area"].append(v[pre + "amplitude"])
            cols["area_stderr"].append(e.get(pre + "amplitude", nan))
            cols["success"].append(sf.success)
    arr = {k: np.asarray(v).T for k, v in cols.items()}  # (pattern, peak)
    arr["d_nm"] = bragg_d(arr["two_theta_deg"], l1)
    arr["d_nm_stderr"] = bragg_d_stderr(arr["two_theta_deg"], arr["two_theta_stderr"], l1)
    ref_tt = np.array(arr["two_theta_deg"]).mean(axis=0)
    ds = xr.Dataset({k: (("pattern", "peak"), v) for k, v in arr.items()},
                    coords={"pattern": labels, "peak": np.arange(arr["area"].shape[1]),
                            "two_theta_start": ("peak", [p["center"] for p in found])})
    long = ds.to_dataframe().reset_index()
    warns = wavelength_warnings(first, wavelength_nm, kalpha2)
    nb = int(arr["at_bound"].any(axis=1).sum())
    if nb:
        warns.append(f"{nb} of {n} patterns have a reflection centre at its bound or undetermined (no standard "
                     f"error): the reflection moved beyond its search window or is not there; give better starts "
                     f"with peaks=[...]")
    if int((~arr["success"]).any(axis=1).sum()):
        warns.append(f"{int((~arr['success']).any(axis=1).sum())} of {n} patterns: a window fit did not converge")
    q = Quantities()
    for j, t in enumerate(ref_tt):
        v = arr["d_nm"][:, j]
        q.add(f"peak({t:.2f}).d_nm", "mean", float(np.mean(v)), float(np.std(v, ddof=1)) if n > 1 else None, "nm")
    total = time.perf_counter() - t0
    return Result(processor="xrd.fit_series", technique="xrd", sample=f"series of {n}", quantities=q,
                  tables={"series": long}, main_table="series", data=ds,
                  params={"peaks": peaks, "wavelength_nm": l1, "wavelength_user": wavelength_nm, "kalpha2": kalpha2,
                          "shape": shape, "method": method},
                  inputs=[dict(first.attrs.get("provenance", {}))],
                  stats={"n_patterns": n, "n_peaks": int(arr["area"].shape[1]), "method": ",".join(sorted(used)),
                         "fit_s": t_fit, "total_s": total, "n_failed": int((~arr["success"]).any(axis=1).sum())},
                  warnings=warns, meta={"wavelength_nm": l1, "kalpha2": list(ka2) if ka2 else None})


def per_pattern(series: Result, patterns) -> list:
    """One :class:`Result` per pattern of a :func:`fit_series` result (the ``run_many`` contract).

    Quantities ``peak(2θ0).two_theta_deg``, ``….d_nm``, ``….fwhm_deg``, ``….area`` (2θ0 = the start
    position of the reflection, given or found in the mean pattern, two decimals: the same name in every
    pattern, so evidence can compare patterns); a centre at its bound has no standard error and is a warning.
    """
    import pandas as pd

    from .analysis import wavelength_warnings

    ds = series.data
    ref = ds["two_theta_start"].values
    p0 = series.params or {}
    keys = ("two_theta_deg", "two_theta_stderr", "d_nm", "d_nm_stderr", "fwhm_deg", "fwhm_stderr", "area",
            "area_stderr")
    cols = {v: np.asarray(ds[v].values, float).tolist() for v in keys}     # (pattern, peak), read once
    atbs = np.asarray(ds["at_bound"].values, bool).tolist()
    oks = np.asarray(ds["success"].values, bool).tolist()
    out = []
    for j, m in enumerate(patterns):
        q, recs = Quantities(), []
        # what the analysis assumed about this pattern's radiation (no wavelength in its file...)
        warns = wavelength_warnings(m, p0.get("wavelength_user"), p0.get("kalpha2", True))
        for k, t in enumerate(ref):
            r = {v: cols[v][j][k] for v in keys}
            atb = atbs[j][k]
            name = f"peak({t:.2f})"

            def se(v):
                return None if atb or not np.isfinite(v) else v
            q.add(name, "two_theta_deg", r["two_theta_deg"], se(r["two_theta_stderr"]), "deg")
            q.add(name, "d_nm", r["d_nm"], se(r["d_nm_stderr"]), "nm")
            q.add(name, "fwhm_deg", r["fwhm_deg"], se(r["fwhm_stderr"]), "deg")
            q.add(name, "area", r["area"], se(r["area_stderr"]), "counts*deg")
            if atb:
                warns.append(f"reflection near {t:.2f}° 2θ: centre at its bound or undetermined "
                             f"({r['two_theta_deg']:.3f}°), a limit, not a measurement")
            if not oks[j][k]:
                warns.append(f"reflection near {t:.2f}° 2θ: fit did not converge")
            recs.append({"peak": name, **r, "at_bound": atb})
        out.append(Result(processor="xrd.fit_series", technique="xrd", sample=str(m.attrs.get("sample") or j),
                          quantities=q, tables={"peaks": pd.DataFrame(recs)}, main_table="peaks",
                          params=dict(series.params), inputs=[dict(m.attrs.get("provenance", {}))],
                          stats={"method": series.stats["method"], "series_index": j,
                                 "n_patterns": series.stats["n_patterns"]},
                          warnings=warns, meta={**series.meta, "series_index": j}))
    return out


def calibrate(standard, phase="Si", *, wavelength_nm=None, tolerance_deg=0.3, **fit_kw) -> dict:
    """Zero shift and instrumental resolution from a standard (e.g. NIST Si 640, LaB6 660).

    The standard's reflections are fitted, indexed against the reference cell (held fixed) and
    ``zero_shift_deg`` = weighted mean of 2θ(obs) − 2θ(calc); the Caglioti function
    FWHM² = U tan²θ + V tanθ + W is fitted (linear least squares) to the observed widths.

    Returns
    -------
    dict
        ``zero_shift_deg``, ``zero_shift_stderr``, ``caglioti`` (U, V, W; deg²), ``n_reflections``,
        ``residual_rms_deg``. Pass ``zero_shift_deg`` and ``caglioti`` to :func:`analyse`.
    """
    from .analysis import wavelengths
    from .peaks import check_pattern, fit_peaks_array
    from .phases import match_positions
    from .references import builtin, from_cif

    check_pattern(standard)
    src = standard.attrs.get("provenance", {}).get("source")
    l1, ka2, _ = wavelengths(standard, wavelength_nm)
    x = np.asarray(standard.coords["two_theta"].values, float)
    y = np.asarray(standard.values, float)
    sig = np.asarray(standard.coords["intensity_sigma"].values, float) if "intensity_sigma" in standard.coords else None
    if x[0] > x[-1]:
        x, y = x[::-1], y[::-1]
        sig = sig[::-1] if sig is not None else None
    ref = from_cif(phase) if str(phase).lower().endswith(".cif") else builtin(phase)
    fit_kw.setdefault("sigma", sig)
    fp = fit_peaks_array(x, y, wavelength_nm=l1, kalpha2=ka2, source=src, **fit_kw)
    pk = sorted(fp["peaks"], key=lambda p: p["two_theta_deg"])
    tt = np.array([p["two_theta_deg"] for p in pk])
    st = ref.sticks(l1, (x.min(), x.max()), min_rel=1.0)
    m = match_positions(tt, st["two_theta"], tolerance_deg)
    ok = m >= 0
    if ok.sum() < 3:
        raise ProcessingError(f"calibration: only {ok.sum()} reflections of {ref.name} found", src)
    obs = tt[m[ok]]
    calc = st["two_theta"][ok]
    err = np.array([pk[j]["two_theta_stderr"] for j in m[ok]])
    w = 1 / np.where(np.isfinite(err) & (err > 0), err, np.nanmedian(err)) ** 2
    dz = obs - calc
    z = float(np.sum(w * dz) / np.sum(w))
    z_err = float(np.sqrt(np.sum(w * (dz - z) ** 2) / (np.sum(w) * max(len(dz) - 1, 1))))
    fw = np.array([pk[j]["fwhm_deg"] for j in m[ok]])
    t = np.tan(np.radians(obs / 2))
    A = np.vstack([t ** 2, t, np.ones_like(t)]).T
    uvw, *_ = np.linalg.lstsq(A, fw ** 2, rcond=None)
    return {"phase": ref.name, "zero_shift_deg": z, "zero_shift_stderr": z_err, "caglioti": tuple(float(v) for v in uvw),
            "n_reflections": int(ok.sum()), "residual_rms_deg": float(np.sqrt(np.mean((dz - z) ** 2))),
            "wavelength_nm": l1}


def fit_whole_pattern_series(patterns, phases, *, cells=None, references=(), wavelength_nm=None, kalpha2=True,
                             caglioti=None, max_strain=0.05, n_chebyshev=6, fwhm_start=None) -> Result:
    """Whole-pattern (Pawley-type) cells of every pattern of a series through the batch engine.

    :func:`~specproc.techniques.xrd.wholepattern.pawley_series` on the stack: the first pattern refined
    completely, the instrument then held, every pattern's cells and widths refined with free intensities by the
    engine's Levenberg–Marquardt over blocks of patterns (numbers in ``docs/xrd.md``).

    Parameters
    ----------
    patterns : list of measurements or DataArray ``("scan", "two_theta")``
        Patterns on one 2θ grid, in series order (temperature, time: each block starts from the cells
        extrapolated from the patterns before it).
    phases : list of str
        Built-in phase names (and names of ``references`` CIFs).
    cells : dict, optional
        Starting cells (Å) of the first pattern per phase; default the reference cells.
    caglioti : (U, V, W), optional
        Instrumental Gaussian FWHM² (deg²), fixed; refined on the first pattern when not given.

    Returns
    -------
    Result
        ``data`` (dim ``pattern``): ``phase(X).lattice.<k>_nm`` (angles ``<k>_deg``) with ``*_stderr``, ``chi2_red``,
        ``rwp``, ``success``; table ``series`` (tidy); quantities ``phase(X).lattice.<k>_nm.mean`` (SD over the
        series); stats ``fit_s``, ``nfev``; ``meta["instrument"]`` (held zero, U, V, W).
    """
    import time

    import xarray as xr

    from .analysis import wavelength_warnings, wavelengths
    from .references import BUILTIN, get_references
    from .wholepattern import pawley_series

    t0 = time.perf_counter()
    x, Y, labels, first = _stack(patterns)
    if x[0] > x[-1]:
        x, Y = x[::-1], Y[:, ::-1]
    l1, ka2, _ = wavelengths(first, wavelength_nm, kalpha2)
    refs = {r.name: r for r in get_references([p for p in phases if p in BUILTIN], references)}
    missing = [p for p in phases if p not in refs]
    if missing:
        raise ParameterError(f"fit_whole_pattern_series: unknown phase(s) {', '.join(missing)}")
    start = [(refs[p], dict((cells or {}).get(p, refs[p].cell))) for p in phases]
    sf = pawley_series(x, Y, start, l1, kalpha2=(ka2[1], ka2[2]) if ka2 else None, caglioti=caglioti,
                       max_strain=max_strain, n_chebyshev=n_chebyshev, fwhm_start=fwhm_start,
                       source=first.attrs.get("provenance", {}).get("source"))
    data, q = {}, Quantities()
    for ph in sf.phases:
        for k in ph["free"]:
            ang = k in ("alpha", "beta", "gamma")
            name = f"phase({ph['name']}).lattice.{k}_{'deg' if ang else 'nm'}"
            v = ph["cell"][k] * (1.0 if ang else 0.1)
            e = ph["cell_stderr"][k] * (1.0 if ang else 0.1)
            data[name], data[name + "_stderr"] = v, e
            q.add(name, "mean", float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else None,
                  "deg" if ang else "nm", "mean over the series (± its SD)")
    data.update(chi2_red=sf.chi2_red, rwp=sf.rwp, success=sf.success)
    ds = xr.Dataset({k: ("pattern", np.asarray(v)) for k, v in data.items()}, coords={"pattern": labels})
    return Result(processor="xrd.fit_whole_pattern_series", technique="xrd", sample=f"series of {len(labels)}",
                  quantities=q, tables={"series": ds.to_dataframe().reset_index()}, main_table="series", data=ds,
                  params={"phases": list(phases), "cells": cells, "wavelength_nm": l1, "kalpha2": kalpha2,
                          "caglioti": caglioti, "max_strain": max_strain, "n_chebyshev": n_chebyshev},
                  inputs=[dict(first.attrs.get("provenance", {}))],
                  stats={"n_patterns": len(labels), "fit_s": sf.seconds, "total_s": time.perf_counter() - t0,
                         "nfev": sf.nfev, "n_failed": int((~sf.success).sum())},
                  warnings=wavelength_warnings(first, wavelength_nm, kalpha2) + list(sf.warnings),
                  meta={"instrument": sf.instrument, "wavelength_nm": l1})
