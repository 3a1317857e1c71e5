"""NMR deconvolution: peak model, sidebands, quadrupolar sites, fit, quantities with errors.

Components
----------
``peaks`` may be

* a list of positions (ppm): components are named ``p1, p2, ...`` in the order given;
* a dict ``{"BH4": -44.3, ...}``: named components;
* a list of dicts ``{"name", "center", "shape", "fwhm", "fraction", "cq_mhz", "eta", "fixed",
  "bounds"}`` (``shape="quadrupolar"`` for a second-order quadrupolar central-transition
  site, see :mod:`.quadrupolar`).

Automatic mode (neither ``peaks`` nor ``n_peaks``)
-------------------------------------------------
1. The noise ``sigma_n`` is estimated robustly from the first differences of the spectrum
   (MAD / sqrt 2, insensitive to smooth lines); the spectrum is smoothed with a
   Savitzky-Golay filter and :func:`scipy.signal.find_peaks` keeps maxima whose prominence
   exceeds ``5 sigma_n``.
2. With a known MAS rate, a picked peak sitting at ``c + k * rate`` of a stronger peak ``c``
   (within a FWHM) is recognised as a spinning sideband (listed in ``Result.meta``) and is
   modelled as a sideband, not as a species.
3. Models with ``n = 1 .. N`` components (the ``n`` most prominent candidates; when the
   candidates are exhausted, the largest residual maximum is added, which resolves shoulders
   of overlapping lines) are fitted, and the ``n`` with the lowest BIC is kept.
``n_peaks`` alone fixes ``n`` and uses the same candidates.

Sidebands
---------
With ``mas_rate_hz`` (parameter, else ``acquisition["mas_rate_hz"]``), each centre band gets
sideband components at ``center + k * rate_ppm`` for the orders inside the fitted region
(``sideband_orders="auto"``: only orders where the data rise above ``3 sigma_n``; an int
forces ``|k| <= n``). They share the centre band's width/shape parameters through lmfit
expressions and have their own area >= 0; their areas are credited to the centre band.

Errors
------
Standard errors come from the fit covariance (lmfit, scaled by reduced chi-square). Derived
quantities (FWHM, areas including sidebands, area fractions) are propagated with the **full**
covariance through a numerical Jacobian of the derived values with respect to the varied
parameters (``cov_f = J C J^T``), so correlations between overlapping lines are included.
``errors="montecarlo"`` refits ``n_mc`` synthetic spectra ``best_fit + roll(residual, k)``
with random circular shifts ``k`` and signs (keeps the correlation of processed-spectrum noise)
and reports the standard deviation of each quantity.
"""
from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import xarray as xr

from ...core.errors import FitError, ParameterError, ProcessingError
from ...core.measurement import check_measurement, label
from ...core.result import Quantity, Result

SHAPES = ("gaussian", "lorentzian", "pseudo-voigt", "voigt", "quadrupolar")


def _src(m) -> str | None:
    return (m.attrs.get("provenance") or {}).get("source")


def noise_sigma(y: np.ndarray) -> float:
    """Robust noise standard deviation from first differences (MAD / sqrt 2)."""
    d = np.diff(np.asarray(y, float))
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / np.sqrt(2.0)) or float(np.std(y)) or 1e-12


def _smooth(y: np.ndarray) -> np.ndarray:
    from scipy.signal import savgol_filter

    win = max(5, (len(y) // 400) * 2 + 5)
    if win >= len(y):
        return y.copy()
    return savgol_filter(y, win, 3)


def pick_peaks(x: np.ndarray, y: np.ndarray, noise: float, max_peaks: int = 8, snr: float = 5.0) -> list[dict]:
    """Candidate peaks (center ppm, height, fwhm ppm, prominence), most prominent first."""
    from scipy.signal import find_peaks, peak_widths

    ys = _smooth(y)
    idx, prop = find_peaks(ys, prominence=snr * noise)
    if idx.size == 0:
        return []
    dx = float(np.median(np.abs(np.diff(x))))
    widths = peak_widths(ys, idx, rel_height=0.5)[0] * dx
    order = np.argsort(prop["prominences"])[::-1][:max_peaks]
    return [{"center": float(x[idx[i]]), "height": float(ys[idx[i]]), "fwhm": float(max(widths[i], 2 * dx)),
             "prominence": float(prop["prominences"][i])} for i in order]


# ---------------------------------------------------------------------------- components
def parse_peaks(peaks: Any, lineshape: str, src=None) -> list[dict]:
    """Normalise the ``peaks`` argument to a list of component dicts."""
    if peaks is None:
        return []
    out = []
    if isinstance(peaks, dict):
        items = [{"name": str(k), "center": v} if not isinstance(v, dict) else {"name": str(k), **v}
                 for k, v in peaks.items()]
    elif isinstance(peaks, (int, float)):
        items = [{"center": peaks}]
    else:
        items = [p if isinstance(p, dict) else {"center": p} for p in peaks]
    allowed = {"name", "center", "shape", "fwhm", "fraction", "cq_mhz", "eta", "fixed", "bounds", "amplitude"}
    for i, p in enumerate(items, 1):
        p = {k: v for k, v in p.items() if not str(k).startswith("_")}  # drop internal keys
        extra = set(p) - allowed
        if extra:
            raise ParameterError(f"peak {p.get('name', i)!r}: unknown keys {sorted(extra)}", src)
        try:
            c = float(p["center"])
        except (KeyError, TypeError, ValueError):
            raise ParameterError(f"peak {p.get('name', i)!r} needs a numeric 'center' (ppm)", src) from None
        shape = p.get("shape", lineshape)
        if shape not in SHAPES:
            raise ParameterError(f"peak {p.get('name', i)!r}: unknown shape {shape!r}; one of {SHAPES}", src)
        q = dict(p, center=c, shape=shape, name=str(p.get("name") or f"p{i}"))
        out.append(q)
    names = [p["name"] for p in out]
    if len(set(names)) != len(names):
        raise ParameterError(f"peak names must be unique: {names}", src)
    return out


def _width_at(x, ys, c, dx):
    from scipy.signal import peak_widths

    i = int(np.argmin(np.abs(x - c)))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            w = peak_widths(ys, [i], rel_height=0.5)[0][0] * dx
    except Exception:  # pragma: no cover - degenerate data
        w = 0.0
    return float(w) if np.isfinite(w) and w > 0 else 10 * dx


class _Model:
    """A compiled component model: lmfit model + params + bookkeeping of groups."""

    def __init__(self, model, params, comps, groups, sidebands):
        self.model, self.params, self.comps = model, params, comps
        self.groups = groups          # centre name -> list of component prefixes (incl. itself)
        self.sidebands = sidebands    # list of (centre name, order, prefix)


def build_model(x, y, comps, *, baseline="constant", shared_width=False, links=None, step_ppm=None,
                sideband_orders: Any = "auto", noise=None, center_window=None, nucleus=None, sf_mhz=None,
                src=None) -> _Model:
    """Compile components (+ sidebands) to an lmfit model through :class:`ModelSpec`."""
    from ...fitting.models import Link, ModelSpec, Peak, prefix_of
    from .sidebands import orders_in_region

    dx = float(np.median(np.abs(np.diff(x))))
    ys = _smooth(y)
    span = float(np.ptp(x))
    region = (float(x.min()), float(x.max()))
    noise = noise if noise is not None else noise_sigma(y)
    std, quad = [], []
    sb: list[tuple[str, int, str]] = []
    exprs: dict[str, str] = {}
    for c in comps:
        w = float(c.get("fwhm") or _width_at(x, ys, c["center"], dx))
        w = min(max(w, 2 * dx), span / 2)
        c["_fwhm0"] = w
        win = center_window if center_window is not None else max(3 * w, 10 * dx)
        (quad if c["shape"] == "quadrupolar" else std).append(c)
        c["_win"] = win
    peaks = []
    for c in std:
        bounds = {"center": (max(region[0], c["center"] - c["_win"]), min(region[1], c["center"] + c["_win"]))}
        bounds.update({k: tuple(v) for k, v in (c.get("bounds") or {}).items()})
        peaks.append(Peak(name=c["name"], shape=c["shape"], center=c["center"], fwhm=c["_fwhm0"],
                          amplitude=c.get("amplitude"), fraction=c.get("fraction", 0.5), bounds=bounds,
                          fixed=list(c.get("fixed") or [])))
    shape_params = {"gaussian": ["sigma"], "lorentzian": ["sigma"], "pseudo-voigt": ["sigma", "fraction"],
                    "voigt": ["sigma", "gamma"]}
    for c in std + quad:
        if not step_ppm:
            break
        ks = orders_in_region(c["center"], step_ppm, region, sideband_orders if isinstance(sideband_orders, int)
                              else None)
        for k in ks:
            pos = c["center"] + k * step_ppm
            if sideband_orders == "auto":
                near = np.abs(x - pos) <= max(c["_fwhm0"], 2 * dx)
                if not near.any() or ys[near].max() < 3 * noise:
                    continue
            name = f"{c['name']}_ssb{'p' if k > 0 else 'm'}{abs(k)}"
            sb.append((c["name"], k, prefix_of(name)))
            if c["shape"] != "quadrupolar":
                peaks.append(Peak(name=name, shape=c["shape"], center=pos, fwhm=c["_fwhm0"],
                                  fraction=c.get("fraction", 0.5)))
                exprs[f"{name}.center"] = f"{{{c['name']}.center}} + ({k * step_ppm!r})"
                for par in shape_params[c["shape"]]:
                    exprs[f"{name}.{par}"] = f"{{{c['name']}.{par}}}"
    link_list = []
    if shared_width and len(std) > 1:
        for shp in {c["shape"] for c in std}:
            same = [c["name"] for c in std if c["shape"] == shp]
            if len(same) > 1:
                for par in ("sigma", "gamma") if shp == "voigt" else ("sigma",):
                    link_list.append(Link(param=par, peaks=same))
    for ln in links or []:
        link_list.append(ln if isinstance(ln, Link) else Link(**ln))
    model = params = None
    if peaks:
        try:
            spec = ModelSpec(peaks=peaks, baseline=baseline, links=link_list, exprs=exprs)
        except Exception as exc:
            raise ParameterError(f"invalid peak model: {exc}", src) from None
        model, params = spec.to_lmfit(x, y)
    elif baseline != "none":
        import lmfit

        deg = {"constant": 0, "linear": 1, "quadratic": 2}[baseline]
        model = lmfit.models.PolynomialModel(degree=deg, prefix="bl_")
        params = model.make_params(**{f"c{i}": 0.0 for i in range(deg + 1)})
    if quad:
        from .quadrupolar import make_lmfit_model

        if not nucleus or not sf_mhz:
            raise ParameterError("quadrupolar components need the nucleus and sf_mhz of the measurement", src)
        for c in quad:
            for name, k in [(c["name"], 0)] + [(f"{c['name']}_ssb{'p' if kk > 0 else 'm'}{abs(kk)}", kk)
                                               for (cn, kk, _) in sb if cn == c["name"]]:
                qm, qp = make_lmfit_model(prefix_of(name), nucleus, sf_mhz, x, y, c, dx, span, region,
                                          k * (step_ppm or 0.0), prefix_of(c["name"]) if k else None, src)
                model = qm if model is None else model + qm
                if params is None:
                    params = qp
                else:
                    params.update(qp)
    groups = {c["name"]: [prefix_of(c["name"])] for c in comps}
    for cname, _k, pre in sb:
        groups[cname].append(pre)
    for cname, k, pre in sb:
        a = params[pre + "amplitude"]
        if a.expr is None:
            i = int(np.argmin(np.abs(x - params[pre + "center"].value)))
            c = next(cc for cc in comps if cc["name"] == cname)
            a.set(value=max(float(ys[i]), noise) * c["_fwhm0"] * 1.064, min=0)
    return _Model(model, params, comps, groups, sb)


# ---------------------------------------------------------------------------- quantities
def _fwhm_of(vals: dict, pre: str, shape: str, comp_curve=None) -> float:
    from ...fitting.lineshapes import fwhm

    if shape == "quadrupolar":
        from .quadrupolar import fwhm_of_params

        return fwhm_of_params(vals, pre)
    return float(fwhm(shape, vals[pre + "sigma"], gamma=vals.get(pre + "gamma")))


def _derived_fn(cm: _Model):
    from ...fitting.models import prefix_of

    names = [c["name"] for c in cm.comps]

    def fn(vals: dict) -> np.ndarray:
        areas = np.array([sum(vals[p + "amplitude"] for p in cm.groups[n]) for n in names])
        tot = areas.sum()
        fr = areas / tot if tot > 0 else np.full(len(names), np.nan)
        fw = [_fwhm_of(vals, prefix_of(c["name"]), c["shape"]) for c in cm.comps]
        cen = [vals[prefix_of(n) + "center"] for n in names]
        return np.concatenate([cen, fw, areas, fr])

    return fn


def propagate(params, var_names, covar, fn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Derived values, their standard errors and covariance with the full parameter covariance.

    The Jacobian ``J = d fn / d p`` over the varied parameters is numerical (central differences,
    lmfit constraints re-evaluated at each step), and ``cov = J C J^T``.
    """
    p = params.copy()
    p.update_constraints()
    f0 = np.asarray(fn(p.valuesdict()), float)
    if covar is None or not var_names:
        nan = np.full(f0.shape, np.nan)
        return f0, nan, np.full((f0.size, f0.size), np.nan)
    J = np.zeros((f0.size, len(var_names)))
    for j, n in enumerate(var_names):
        v = p[n].value
        sd = math.sqrt(abs(covar[j, j])) if np.isfinite(covar[j, j]) else 0.0
        h = max(1e-3 * sd, 1e-7 * max(abs(v), 1e-12), 1e-12)
        p[n].value = v + h
        p.update_constraints()
        fp = np.asarray(fn(p.valuesdict()), float)
        p[n].value = v - h
        p.update_constraints()
        fm = np.asarray(fn(p.valuesdict()), float)
        p[n].value = v
        J[:, j] = (fp - fm) / (2 * h)
    p.update_constraints()
    cov = J @ covar @ J.T
    return f0, np.sqrt(np.clip(np.diag(cov), 0, None)), cov


# ---------------------------------------------------------------------------- entry point
def _prepare(m, region, processing, src):
    from .processing import process

    if m.attrs.get("signal_type") == "fid" or m.dims[-1] == "time":
        m = process(m, **(processing or {}))
    if m.ndim != 1:
        raise ParameterError(f"deconvolve needs one spectrum; got dims {m.dims} (use run_many or select a row)", src)
    x = np.asarray(m.coords[m.dims[-1]].values, float)
    y = np.real(np.asarray(m.values)).astype(float)
    if not np.all(np.isfinite(y)):
        raise ProcessingError("spectrum contains NaN/inf values", src)
    if region is not None:
        lo, hi = sorted(float(v) for v in region)
        keep = (x >= lo) & (x <= hi)
        if keep.sum() < 8:
            raise ParameterError(f"region {region} ppm holds {int(keep.sum())} points (axis {x.min():.4g}..{x.max():.4g})", src)
        x, y = x[keep], y[keep]
    order = np.argsort(x)[::-1]
    return m, x[order], y[order]


def _fit(cm: _Model, x, y, src):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = cm.model.fit(y, cm.params, x=x, nan_policy="raise")
    except Exception as exc:
        raise FitError(f"fit failed: {type(exc).__name__}: {exc}", src) from None
    return res


def _auto_components(x, y, noise, lineshape, max_peaks, n_peaks, step_ppm, fit_kw, src, meta):
    from .sidebands import recognise

    cands = pick_peaks(x, y, noise, max_peaks=max(max_peaks, n_peaks or 0) * 2)
    if not cands:
        raise ProcessingError(f"no peaks found above 5x the noise level ({noise:.3g})", src)
    dx = float(np.median(np.abs(np.diff(x))))
    if step_ppm:
        sbs = recognise([c["center"] for c in cands], [c["height"] for c in cands], step_ppm,
                        tol_ppm=max(max(c["fwhm"] for c in cands), 3 * dx))
        if sbs:
            meta["recognised_sidebands"] = [
                {"position_ppm": cands[j]["center"], "centre_band_ppm": cands[i]["center"], "order": k}
                for j, (i, k) in sbs.items()]
            cands = [c for j, c in enumerate(cands) if j not in sbs]
    from ...fitting.models import prefix_of

    def fit_centres(centres):
        comps = [{"name": f"p{i}", "center": c, "shape": lineshape, "fwhm": w}
                 for i, (c, w) in enumerate(sorted(centres, key=lambda cw: -cw[0]), 1)]
        cm = build_model(x, y, comps, step_ppm=step_ppm, noise=noise, src=src, **fit_kw)
        return cm, _fit(cm, x, y, src)

    def grow(cm, res):
        """Previous centres + the largest residual maximum (None when the residual is noise)."""
        r = _smooth(y - res.best_fit)
        i = int(np.argmax(r))
        if r[i] < 3 * noise:
            return None
        prev = [(res.params[prefix_of(c["name"]) + "center"].value, c["_fwhm0"]) for c in cm.comps]
        return prev + [(float(x[i]), None)]

    best = prev = None
    ns = [n_peaks] if n_peaks else list(range(1, max_peaks + 1))
    for n in ns:
        if n <= len(cands):
            centres = [(c["center"], c["fwhm"]) for c in cands[:n]]
        elif prev is not None:
            centres = grow(*prev)
            if centres is None:
                break
        else:
            centres = [(c["center"], c["fwhm"]) for c in cands]
        cur = fit_centres(centres)
        while n_peaks and len(cur[0].comps) < n_peaks:  # fewer candidates than asked
            more = grow(*cur)
            if more is None:
                break
            cur = fit_centres(more)
        prev = cur
        if best is None or cur[1].bic < best[1].bic - 2.0:  # BIC must improve by a meaningful margin
            best = cur
    if best is None:
        raise ProcessingError("no peak model could be fitted", src)
    meta["model_selection"] = "BIC over n = 1.." + str(ns[-1])
    return best


def deconvolve(m: xr.DataArray, peaks: Any = None, *, n_peaks: int | None = None, max_peaks: int = 6,
               lineshape: str = "pseudo-voigt", region: tuple[float, float] | None = None,
               baseline: str = "constant", shared_width: bool = False, links: list | None = None,
               mas_rate_hz: float | None = None, sidebands: bool = True, sideband_orders: Any = "auto",
               center_window: float | None = None, errors: str = "covariance", n_mc: int = 100,
               seed: int | None = 0, processing: dict | None = None) -> Result:
    """Deconvolve an NMR spectrum (an FID is processed first with :func:`process`).

    Parameters
    ----------
    m : xarray.DataArray
        NMR spectrum (dim ``shift``, ppm) or FID.
    peaks : list of float, dict or list of dict, optional
        Components (see module docstring). Neither ``peaks`` nor ``n_peaks``: automatic.
    n_peaks : int, optional
        Number of components picked automatically.
    max_peaks : int
        Largest number of components tried by the automatic BIC selection.
    lineshape : {"gaussian", "lorentzian", "pseudo-voigt", "voigt"}
        Default shape of components.
    region : (lo, hi), optional
        Fitted ppm range.
    baseline : {"none", "constant", "linear", "quadratic"}
        Polynomial baseline fitted with the peaks.
    shared_width : bool
        One width (sigma) for all components of the same shape.
    links : list of dict, optional
        ``[{"param": "fraction", "peaks": ["a", "b"]}]`` shares parameters.
    mas_rate_hz : float, optional
        MAS rate (Hz); default ``acquisition["mas_rate_hz"]``. 0/None: no sidebands.
    sidebands : bool
        Model spinning sidebands when the rate is known.
    sideband_orders : "auto" or int
        ``"auto"``: orders inside the region where signal exceeds 3x noise; int: all ``|k| <= n``.
    center_window : float, optional
        Centres may move by this much (ppm) from their start; default 3x the initial FWHM.
    errors : {"covariance", "montecarlo"}
    n_mc : int
        Monte-Carlo refits.
    seed : int, optional
        Random seed of the Monte-Carlo resampling.
    processing : dict, optional
        Keyword arguments of :func:`process` used when ``m`` is an FID.

    Returns
    -------
    Result
        ``table`` (one row per component), ``tables["sidebands"]``, quantities
        ``<name>.center_ppm``, ``<name>.fwhm_ppm``, ``<name>.area_fraction``, ``<name>.area``.
    """
    if not hasattr(m, "attrs"):
        raise ParameterError(f"deconvolve needs a specproc measurement, got {type(m).__name__}")
    src = _src(m)
    check_measurement(m, "nmr", "deconvolve input")
    if lineshape not in SHAPES[:-1]:
        raise ParameterError(f"unknown lineshape {lineshape!r}; one of {SHAPES[:-1]}", src)
    if errors not in ("covariance", "montecarlo"):
        raise ParameterError(f"errors must be 'covariance' or 'montecarlo', got {errors!r}", src)
    if baseline not in ("none", "constant", "linear", "quadratic"):
        raise ParameterError(f"unknown baseline {baseline!r}", src)
    if not np.all(np.isfinite(np.asarray(m.values))):
        raise ProcessingError("data contain NaN/inf values", src)
    comps = parse_peaks(peaks, lineshape, src)
    spec, x, y = _prepare(m, region, processing, src)
    acq = dict(spec.attrs.get("acquisition") or {})
    sf = acq.get("sf_mhz") or acq.get("bf1_mhz") or acq.get("sfo1_mhz")
    rate = mas_rate_hz if mas_rate_hz is not None else acq.get("mas_rate_hz")
    step = None
    if sidebands and rate and sf:
        from .sidebands import rate_ppm

        step = rate_ppm(rate, sf)
    noise = noise_sigma(y)
    meta: dict[str, Any] = {"nucleus": spec.attrs.get("nucleus"), "sf_mhz": sf, "mas_rate_hz": rate,
                            "sample": label(spec), "noise": noise, "region_ppm": [float(x.min()), float(x.max())]}
    fit_kw = dict(baseline=baseline, shared_width=shared_width, links=links, sideband_orders=sideband_orders,
                  center_window=center_window, nucleus=spec.attrs.get("nucleus"), sf_mhz=sf)
    warns: list[str] = []
    if comps:
        if float(np.max(_smooth(y))) < 3 * noise:
            raise ProcessingError("no signal above 3x the noise level in the region", src)
        cm = build_model(x, y, comps, step_ppm=step, noise=noise, src=src, **fit_kw)
        res = _fit(cm, x, y, src)
        meta["model_selection"] = "given peaks"
    else:
        cm, res = _auto_components(x, y, noise, lineshape, max_peaks, n_peaks, step, fit_kw, src, meta)
    if not res.success:
        warns.append(f"fit did not converge: {res.message}")
    if res.covar is None:
        warns.append("covariance unavailable (parameters at bounds or not determined): standard errors are NaN")
    fn = _derived_fn(cm)
    vals, errs, cov = propagate(res.params, res.var_names, res.covar, fn)
    if errors == "montecarlo":
        errs = _montecarlo(cm, res, x, y, fn, n_mc, seed, src)
        meta["errors"] = f"montecarlo (n={n_mc})"
    else:
        meta["errors"] = "covariance"
    return _make_result(spec, cm, res, x, y, vals, errs, warns, meta, step,
                        params=dict(peaks=peaks, n_peaks=n_peaks, lineshape=lineshape, region=region,
                                    baseline=baseline, shared_width=shared_width, mas_rate_hz=rate,
                                    errors=errors, processing=processing))


def _montecarlo(cm, res, x, y, fn, n_mc, seed, src):
    rng = np.random.default_rng(seed)
    resid = y - res.best_fit
    out = []
    for _ in range(int(n_mc)):
        ys = res.best_fit + rng.choice([-1.0, 1.0]) * np.roll(resid, int(rng.integers(len(y))))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r = cm.model.fit(ys, res.params.copy(), x=x)
            p = r.params
            p.update_constraints()
            out.append(fn(p.valuesdict()))
        except Exception:  # a failed refit is dropped, not fatal
            continue
    if len(out) < 3:
        raise FitError("Monte-Carlo refits failed", src)
    return np.std(np.asarray(out), axis=0, ddof=1)


def _make_result(spec, cm, res, x, y, vals, errs, warns, meta, step, params) -> Result:
    import pandas as pd

    from ...fitting.models import prefix_of

    n = len(cm.comps)
    cen, fw, area, fr = (vals[i * n:(i + 1) * n] for i in range(4))
    ecen, efw, earea, efr = (errs[i * n:(i + 1) * n] for i in range(4))
    comps_eval = res.eval_components(x=x)
    rows, qs = [], {}
    for i, c in enumerate(cm.comps):
        pre = prefix_of(c["name"])
        height = float(np.max(comps_eval.get(pre, np.zeros(1))))
        row = {"name": c["name"], "kind": "site", "center_ppm": cen[i], "center_ppm_stderr": ecen[i],
               "fwhm_ppm": fw[i], "fwhm_ppm_stderr": efw[i], "height": height, "area": area[i],
               "area_stderr": earea[i], "area_fraction": fr[i], "area_fraction_stderr": efr[i],
               "shape": c["shape"], "n_sidebands": len(cm.groups[c["name"]]) - 1}
        if c["shape"] == "quadrupolar":
            from .quadrupolar import quad_rows

            row.update(quad_rows(res, pre, warns, c["name"]))
        rows.append(row)
        qs[f"{c['name']}.center_ppm"] = Quantity(float(cen[i]), _f(ecen[i]), "ppm", "isotropic / peak shift")
        qs[f"{c['name']}.fwhm_ppm"] = Quantity(float(fw[i]), _f(efw[i]), "ppm", "full width at half maximum")
        qs[f"{c['name']}.area_fraction"] = Quantity(float(fr[i]), _f(efr[i]), "",
                                                    "area fraction incl. spinning sidebands")
        qs[f"{c['name']}.area"] = Quantity(float(area[i]), _f(earea[i]), "arb*ppm", "area incl. sidebands")
        if c["shape"] == "quadrupolar":
            qs[f"{c['name']}.cq_mhz"] = Quantity(row["cq_mhz"], _f(row["cq_mhz_stderr"]), "MHz", "quadrupolar coupling")
            qs[f"{c['name']}.eta"] = Quantity(row["eta"], _f(row["eta_stderr"]), "", "asymmetry")
    table = pd.DataFrame(rows)
    sb_rows = []
    for cname, k, pre in cm.sidebands:
        p = res.params
        sb_rows.append({"name": f"{cname} ssb{k:+d}", "kind": "sideband", "parent": cname, "order": k,
                        "center_ppm": p[pre + "center"].value, "area": p[pre + "amplitude"].value,
                        "area_stderr": _f(p[pre + "amplitude"].stderr),
                        "height": float(np.max(comps_eval.get(pre, np.zeros(1))))})
    tables = {"components": table}
    if sb_rows:
        tables["sidebands"] = pd.DataFrame(sb_rows)
    ss_res = float(np.sum(res.residual ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2)) or 1.0
    stats = {"r2": 1 - ss_res / ss_tot, "redchi": float(res.redchi), "chisqr": float(res.chisqr),
             "aic": float(res.aic), "bic": float(res.bic), "nfev": int(res.nfev), "success": bool(res.success),
             "ndata": int(res.ndata), "nvarys": int(res.nvarys)}
    snr = float(np.max(res.best_fit) / meta["noise"]) if meta["noise"] else None
    meta["snr"] = snr
    series = [{"name": "data", "y": y, "role": "data"}]
    for c in cm.comps:
        pre = prefix_of(c["name"])
        if pre in comps_eval:
            series.append({"name": c["name"], "y": np.broadcast_to(comps_eval[pre], x.shape), "role": "component"})
    for cname, k, pre in cm.sidebands:
        if pre in comps_eval:
            series.append({"name": f"{cname} ssb{k:+d}", "y": comps_eval[pre], "role": "sideband"})
    if "bl_" in comps_eval:
        series.append({"name": "baseline", "y": np.broadcast_to(comps_eval["bl_"], x.shape), "role": "baseline"})
    series.append({"name": "fit", "y": res.best_fit, "role": "fit"})
    series.append({"name": "residual", "y": y - res.best_fit, "role": "residual"})
    nuc = meta.get("nucleus") or ""
    plot = {"kind": "spectrum", "title": f"{meta['sample']} {nuc} deconvolution".strip(), "x": x,
            "x_label": f"{nuc} shift (ppm)".strip(), "y_label": "intensity", "reverse_x": True, "series": series}
    return Result(processor="nmr.deconvolve", technique="nmr", sample=meta["sample"], quantities=qs, tables=tables,
                  plots=[plot], params=params, inputs=[dict(spec.attrs.get("provenance") or {})], stats=stats,
                  warnings=warns, main_table="components", meta=meta, native=res)


def _f(v) -> float | None:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None
