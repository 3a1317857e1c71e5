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
1. The noise ``sigma_n`` is estimated robustly (:func:`noise_sigma`: sigma-clipped MAD of the
   intensities, which - unlike first differences - is right for the correlated noise of
   apodized, zero-filled spectra); the spectrum is smoothed with a Savitzky-Golay filter and
   :func:`scipy.signal.find_peaks` keeps maxima whose prominence exceeds ``5 sigma_n``.
2. With a known MAS rate, a picked peak sitting at ``c + k * rate`` of a stronger peak ``c``
   (within a FWHM) is recognised as a spinning sideband (listed in ``Result.meta``) and is
   modelled as a sideband, not as a species. Sidebands are never reported as species: residual
   maxima at a sideband position of a fitted component are not added either.
3. Forward selection: models with ``n = 1, 2, ...`` components (the ``n`` most prominent
   candidates; when the candidates are exhausted, the largest residual maximum above
   ``5 sigma_n``, which resolves shoulders of overlapping lines) are fitted while the BIC improves
   by more than 2 **and** every component's area (incl. sidebands) exceeds ``K_SIGNIFICANT = 5``
   standard errors (full covariance). The significance rule stops BIC from adding small
   components that only absorb lineshape mismatch of the large lines (real lines are never
   exactly the model; BIC gains from that are large when the SNR is high).
``n_peaks`` alone fixes ``n`` and uses the same candidates.

Overlapping given components
----------------------------
Components whose centres lie within a width of each other (e.g. a narrow and a broad line at
the same shift) are pre-fitted, centre bands only, from several starting widths (the measured
width, and each assignment of ``0.6x / 3x`` it); the best pre-fit (lowest chi-square; a tie
goes to the fit whose centres moved least, which keeps the given names) starts the full fit.

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

from ...core.errors import FitError, ParameterError, ProcessingError, SpecprocError
from ...core.measurement import check_measurement, label
from ...core.result import Quantity, Result
from ...fitting.models import without_uvars

SHAPES = ("gaussian", "lorentzian", "pseudo-voigt", "voigt", "quadrupolar")


def _src(m) -> str | None:
    return (m.attrs.get("provenance") or {}).get("source")


def noise_sigma(y: np.ndarray) -> float:
    """Robust noise standard deviation of a spectrum.

    Processed spectra have *correlated* noise (apodization and zero filling smooth it), so the
    first-difference estimate (MAD / sqrt 2) underestimates it, by ~10x after a few points of
    line broadening. The default is therefore the sigma-clipped MAD of the intensities
    themselves (signal points are clipped away, a baseline offset is removed by the median).
    When fewer than 20 % of the points are signal-free (a region cut around the lines), the
    first-difference estimate is used instead.
    """
    y = np.asarray(y, float)
    d = np.diff(y)
    s_diff = float(1.4826 * np.median(np.abs(d - np.median(d))) / np.sqrt(2.0))
    keep = np.ones(y.size, bool)
    s = 0.0
    for _ in range(5):
        v = y[keep]
        med = np.median(v)
        s = float(1.4826 * np.median(np.abs(v - med)))
        new = np.abs(y - med) <= 4.0 * s
        if new.sum() < 0.2 * y.size or s <= 0:
            s = 0.0
            break
        if np.array_equal(new, keep):
            break
        keep = new
    return max(s, s_diff) or float(np.std(y)) or 1e-12


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
        # "auto" caps the orders at AUTO_MAX_SIDEBAND_ORDER: every order adds a free amplitude, and
        # slow spinning of a wide window (e.g. 5 kHz MAS over 500 ppm) would otherwise add ~50 per
        # site; orders beyond it carry a negligible share of the intensity at usual CSA/rate ratios
        ks = orders_in_region(c["center"], step_ppm, region, sideband_orders if isinstance(sideband_orders, int)
                              else AUTO_MAX_SIDEBAND_ORDER)
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
def _fwhm_of(vals: dict, pre: str, shape: str, comp: dict | None = None) -> float:
    from ...fitting.lineshapes import fwhm

    if shape == "quadrupolar":
        from .quadrupolar import fwhm_of_params

        return fwhm_of_params(vals, pre, (comp or {}).get("_quad"))
    return float(fwhm(shape, vals[pre + "sigma"], gamma=vals.get(pre + "gamma")))


def _derived_fn(cm: _Model):
    from ...fitting.models import prefix_of

    names = [c["name"] for c in cm.comps]

    def fn(vals: dict) -> np.ndarray:
        areas = np.array([sum(vals[p + "amplitude"] for p in cm.groups[n]) for n in names])
        tot = areas.sum()
        fr = areas / tot if tot > 0 else np.full(len(names), np.nan)
        fw = [_fwhm_of(vals, prefix_of(c["name"]), c["shape"], c) for c in cm.comps]
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


def _polish_start(cm: _Model, x, y) -> None:
    """Move ``cm.params`` to the least-squares optimum with the shared batch engine (in place).

    lmfit's ``leastsq`` differentiates numerically: every iteration costs ``nvarys + 1`` model
    evaluations, and a model with sidebands has dozens of components on tens of thousands of
    points (minutes on real slow-spinning spectra). The batch engine runs the same model with
    analytic Jacobians (a stack of one); lmfit then starts at its optimum and only confirms it
    and supplies the covariance and ``ModelResult`` that the quantities are derived from.
    Models the engine cannot compile (quadrupolar sites) keep lmfit's own search.
    """
    from ...fitting.batch import NotBatchable, fit_batch

    try:
        ds = fit_batch(cm.model, x, np.asarray(y, float)[None, :], params=cm.params, method="batched-lm",
                       n_jobs=1)
    except (NotBatchable, SpecprocError, ValueError):
        return
    if not bool(ds["success"].values[0]):
        return
    for name, par in cm.params.items():
        if par.vary and not par.expr and name in ds:
            v = float(ds[name].values[0])
            if np.isfinite(v):
                par.set(value=float(np.clip(v, par.min, par.max)))


def _fit(cm: _Model, x, y, src):
    _polish_start(cm, x, y)
    nvarys = sum(p.vary and not p.expr for p in cm.params.values())
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # bounded effort: a fit that needs more than 200 Jacobians is reported as not
            # converged (stats["success"] False) rather than running for minutes
            # without_uvars: lmfit's propagation of the covariance to every constrained parameter
            # takes minutes for sites with many sidebands; the covariance is recomputed below
            # and derived quantities are propagated by `propagate`
            res = cm.model.fit(y, without_uvars(cm.params), x=x, nan_policy="raise",
                               max_nfev=200 * (nvarys + 1))
    except Exception as exc:
        raise FitError(f"fit failed: {type(exc).__name__}: {exc}", src) from None
    _set_covariance(cm, res, x)
    return res


def _set_covariance(cm: _Model, res, x) -> None:
    """``res.covar = redchi (J^T J)^-1`` over the varied parameters (lmfit's definition), with the
    Jacobian of the model by central differences in the parameters' own units (constraints
    re-evaluated at each step); stderr of the varied parameters set from it. Singular -> None."""
    names = list(res.var_names)
    res.covar = None
    if not names or res.ndata <= len(names):
        return
    p = res.params.copy()
    p.update_constraints()
    f0 = cm.model.eval(p, x=x)
    dx = float(np.median(np.abs(np.diff(x)))) if len(x) > 1 else 1.0
    J = np.empty((len(x), len(names)))
    # typical magnitude per kind of parameter (suffix), so a parameter sitting at 0 (a sideband
    # amplitude on its bound) still gets a step far above round-off
    typical: dict[str, float] = {}
    for name in names:
        suffix = name.rsplit("_", 1)[-1]
        typical[suffix] = max(typical.get(suffix, 0.0), abs(p[name].value))
    for j, name in enumerate(names):
        par = p[name]
        v = par.value
        if name.endswith(("center", "sigma", "gamma")):
            floor = 1e-4 * dx
        elif name.endswith("fraction"):
            floor = 1e-4
        else:
            floor = 1e-6 * typical[name.rsplit("_", 1)[-1]]
        h = max(1e-6 * abs(v), floor, 1e-12)
        step = h if v + h <= par.max else -h      # forward difference, backward at an upper bound
        if v + step < par.min:
            return
        par.value = v + step
        p.update_constraints()
        J[:, j] = (cm.model.eval(p, x=x) - f0) / step
        par.value = v
    p.update_constraints()
    try:
        cov = np.linalg.inv(J.T @ J) * res.redchi
    except np.linalg.LinAlgError:
        return
    if not np.all(np.isfinite(np.diag(cov))) or np.any(np.diag(cov) < 0):
        return
    res.covar = cov
    res.errorbars = True
    for j, name in enumerate(names):
        res.params[name].stderr = float(np.sqrt(cov[j, j]))


# spread of the alternative starting widths of overlapping components (x the measured width
# of their sum): one narrower and one (or two) much broader line, in every assignment
_OVERLAP_FACTORS = {2: (0.6, 3.0), 3: (0.6, 1.5, 4.0)}


def _overlap_starts(x, y, comps) -> list[list[dict]]:
    """Alternative starting widths for components that overlap (centres within a width).

    Components started at (nearly) the same position with the same measured width form a
    symmetric start from which least squares cannot separate a narrow and a broad line (the
    7Li narrow + broad case). Each cluster of 2-3 overlapping components without a given
    ``fwhm`` gets every assignment of the widths ``factor x measured width``.
    """
    import itertools

    dx = float(np.median(np.abs(np.diff(x))))
    ys = _smooth(y)
    free = [i for i, c in enumerate(comps) if not c.get("fwhm") and c["shape"] != "quadrupolar"]
    w = {i: _width_at(x, ys, comps[i]["center"], dx) for i in free}
    # union-find over "centres closer than the larger width"
    parent = {i: i for i in free}

    def root(i):
        while parent[i] != i:
            i = parent[i]
        return i

    for a, b in itertools.combinations(free, 2):
        if abs(comps[a]["center"] - comps[b]["center"]) < max(w[a], w[b]):
            parent[root(a)] = root(b)
    clusters: dict[int, list[int]] = {}
    for i in free:
        clusters.setdefault(root(i), []).append(i)
    starts: list[list[dict]] = []
    for members in clusters.values():
        if len(members) not in _OVERLAP_FACTORS:
            continue
        w0 = max(w[i] for i in members)
        for perm in itertools.permutations(_OVERLAP_FACTORS[len(members)]):
            alt = [dict(c) for c in comps]
            for i, f in zip(members, perm):
                alt[i]["fwhm"] = f * w0
            starts.append(alt)
    return starts


def _fit_given(x, y, comps, step, noise, fit_kw, src, meta):
    """Fit given components; overlapping ones are first pre-fitted from several starts."""
    comps = _start_comps(x, y, comps, noise, fit_kw, src, meta)
    cm = build_model(x, y, [dict(c) for c in comps], step_ppm=step, noise=noise, src=src, **fit_kw)
    return cm, _fit(cm, x, y, src)


def _start_comps(x, y, comps, noise, fit_kw, src, meta):
    """Starting widths / shapes / areas of given components (pre-fits of overlapping ones).

    The starts (the plain one and :func:`_overlap_starts`) are compared on a cheap pre-fit of
    the centre bands only (no sidebands, points within 4 starting widths of a centre); the
    full model is then fitted once from the best pre-fit's widths, shapes and areas.
    """
    from ...fitting.models import prefix_of

    starts = _overlap_starts(x, y, comps)
    if starts:
        def moved(cm_, res_):
            # how far the centres left their starts, in widths: breaks ties between fits that are
            # the same model with the labels of two overlapping lines swapped
            return sum(((res_.params[prefix_of(c["name"]) + "center"].value - c["center"]) / c["_fwhm0"]) ** 2
                       for c in cm_.comps if c["shape"] != "quadrupolar")

        dx = float(np.median(np.abs(np.diff(x))))
        ys = _smooth(y)
        reach = [4 * max(c.get("fwhm") or 0.0, _width_at(x, ys, c["center"], dx)) * 3.0 for c in comps]
        mask = np.zeros(x.size, bool)
        for c, r in zip(comps, reach):
            mask |= np.abs(x - c["center"]) <= r
        kw = dict(fit_kw, sideband_orders=None)
        best = None
        for alt in [[dict(c) for c in comps]] + starts:
            try:
                cm2 = build_model(x[mask], y[mask], alt, step_ppm=None, noise=noise, src=src, **kw)
                res2 = _fit(cm2, x[mask], y[mask], src)
            except (FitError, ParameterError):
                continue
            if best is None:
                best = (cm2, res2)
                continue
            cm1, res1 = best
            # chi^2 differences below one reduced chi^2 are not significant: then the fit whose
            # centres stayed nearer the given positions keeps the names the user gave
            tie = abs(res2.chisqr - res1.chisqr) <= max(res1.redchi, 0.0)
            if (res2.chisqr < res1.chisqr and not tie) or (tie and moved(cm2, res2) < moved(cm1, res1)):
                best = (cm2, res2)
        if best is not None:
            from ...fitting.lineshapes import fwhm as _fw

            cm1, res1 = best
            p = res1.params
            comps = [dict(c) for c in comps]
            for c in comps:
                pre = prefix_of(c["name"])
                if c["shape"] == "quadrupolar" or pre + "sigma" not in p:
                    continue
                c.setdefault("fwhm", float(_fw(c["shape"], p[pre + "sigma"].value,
                                               gamma=p[pre + "gamma"].value if pre + "gamma" in p else None)))
                if pre + "fraction" in p:
                    c.setdefault("fraction", float(p[pre + "fraction"].value))
                c.setdefault("amplitude", float(p[pre + "amplitude"].value))
        meta["starts"] = 1 + len(starts)
    return comps


# an automatically added component must have an area of at least K_SIGNIFICANT standard errors
# (area incl. sidebands, full covariance): BIC alone keeps adding small components that only
# absorb lineshape mismatch of the big lines (the real lineshape is never exactly the model)
K_SIGNIFICANT = 5.0
#: highest spinning-sideband order modelled with ``sideband_orders="auto"``
AUTO_MAX_SIDEBAND_ORDER = 8


def _insignificant(cm, res) -> list[str]:
    """Names of components whose area is below K_SIGNIFICANT standard errors (or undetermined)."""
    if res.covar is None:
        return [c["name"] for c in cm.comps]
    vals, errs, _ = propagate(res.params, res.var_names, res.covar, _derived_fn(cm))
    n = len(cm.comps)
    area, earea = vals[2 * n:3 * n], errs[2 * n:3 * n]
    return [c["name"] for c, a, e in zip(cm.comps, area, earea) if not (np.isfinite(e) and a > K_SIGNIFICANT * e)]


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

    def at_sideband(pos, cm, res):
        """True when ``pos`` is a spinning-sideband position of a fitted component."""
        if not step_ppm:
            return False
        for c in cm.comps:
            pc = res.params[prefix_of(c["name"]) + "center"].value
            k = round((pos - pc) / step_ppm)
            if k and abs(pos - (pc + k * step_ppm)) <= max(c["_fwhm0"], 3 * dx):
                return True
        return False

    def grow(cm, res):
        """Previous centres + the largest residual maximum above 5 sigma that is not at a
        sideband position (None when nothing is left)."""
        r = _smooth(y - res.best_fit)
        for i in np.argsort(r)[::-1][:50]:
            if r[i] < 5 * noise:
                return None
            if not at_sideband(float(x[i]), cm, res):
                break
        else:
            return None
        prev = [(res.params[prefix_of(c["name"]) + "center"].value, c["_fwhm0"]) for c in cm.comps]
        return prev + [(float(x[i]), None)]

    rejected = []
    if n_peaks:
        centres = [(c["center"], c["fwhm"]) for c in cands[:n_peaks]]
        best = fit_centres(centres)
        while len(best[0].comps) < n_peaks:  # fewer candidates than asked
            more = grow(*best)
            if more is None:
                break
            best = fit_centres(more)
    else:
        # forward selection: each step tries the next picked peak AND the largest residual
        # maximum (a shoulder or a broad line under a narrow one has no maximum of its own) and
        # keeps the better of the significant ones; it stops when neither improves the BIC
        best = fit_centres([(cands[0]["center"], cands[0]["fwhm"])])
        used = 1
        while len(best[0].comps) < max_peaks:
            kept = [(best[1].params[prefix_of(c["name"]) + "center"].value, c["_fwhm0"]) for c in best[0].comps]
            options = []
            if used < len(cands):
                options.append(kept + [(cands[used]["center"], cands[used]["fwhm"])])
                used += 1
            more = grow(*best)
            if more is not None:
                options.append(more)
            if not options:
                break
            winner = None
            for centres in options:
                try:
                    cur = fit_centres(centres)
                except (FitError, ParameterError):
                    continue
                weak = _insignificant(*cur)
                if weak:  # a component below significance only absorbs lineshape mismatch
                    rejected.append({"n": len(cur[0].comps), "insignificant": weak})
                    continue
                if cur[1].bic < best[1].bic - 2.0 and (winner is None or cur[1].bic < winner[1].bic):
                    winner = cur
            if winner is None:
                if used < len(cands):
                    continue  # this candidate did not help; the next one may
                break
            best = winner
    if best is None:
        raise ProcessingError("no peak model could be fitted", src)
    meta["model_selection"] = (f"forward selection n = 1..{len(best[0].comps)}: BIC gain > 2 and every area > "
                               f"{K_SIGNIFICANT:g} stderr" if not n_peaks else f"n_peaks = {n_peaks}")
    if rejected:
        meta["rejected_models"] = rejected
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
        ``meta["apodization"]`` / ``meta["lb_hz"]`` report the window the spectrum was processed
        with: exponential apodization adds ``lb_hz / sf_mhz`` ppm to every Lorentzian FWHM, so
        fitted widths include it. The table then also has ``fwhm_corrected_ppm`` = FWHM minus
        that broadening (exact for Lorentzian lines, a lower bound of the width for Gaussian-like
        lines); for intrinsic widths process with ``processing={"lb_hz": 0}``.
    """
    setup = _setup(m, peaks, lineshape=lineshape, errors=errors, baseline=baseline, region=region,
                   processing=processing, mas_rate_hz=mas_rate_hz, sidebands=sidebands, shared_width=shared_width,
                   links=links, sideband_orders=sideband_orders, center_window=center_window)
    src, comps, spec, x, y, step, noise, meta, fit_kw, rate = setup
    warns: list[str] = []
    if comps:
        if float(np.max(_smooth(y))) < 3 * noise:
            raise ProcessingError("no signal above 3x the noise level in the region", src)
        cm, res = _fit_given(x, y, comps, step, noise, fit_kw, src, meta)
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


def _setup(m, peaks, *, lineshape, errors, baseline, region, processing, mas_rate_hz, sidebands, shared_width,
           links, sideband_orders, center_window):
    """Validate the arguments and prepare one spectrum: (src, comps, spec, x, y, step, noise, meta, fit_kw, rate)."""
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
    hist = dict(spec.attrs.get("processing") or {})
    # the apodization broadens every line: report what was applied so widths can be judged
    meta["apodization"] = hist.get("apodization")
    meta["lb_hz"] = hist.get("lb_hz") if hist.get("apodization") else None
    meta["processing"] = {k: v for k, v in hist.items() if isinstance(v, (str, int, float, bool, list, dict, type(None)))}
    fit_kw = dict(baseline=baseline, shared_width=shared_width, links=links, sideband_orders=sideband_orders,
                  center_window=center_window, nucleus=spec.attrs.get("nucleus"), sf_mhz=sf)
    return src, comps, spec, x, y, step, noise, meta, fit_kw, rate


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
    # exponential apodization of lb Hz adds exactly lb Hz to a Lorentzian FWHM; for Gaussian-like
    # lines the true broadening is smaller, so fwhm_corrected_ppm is then a lower bound of the width
    lor_ppm = None
    if meta.get("apodization") == "exponential" and meta.get("lb_hz") and meta.get("sf_mhz"):
        lor_ppm = float(meta["lb_hz"]) / float(meta["sf_mhz"])
        meta["apodization_broadening_ppm"] = lor_ppm
    for i, c in enumerate(cm.comps):
        pre = prefix_of(c["name"])
        height = float(np.max(comps_eval.get(pre, np.zeros(1))))
        row = {"name": c["name"], "kind": "site", "center_ppm": cen[i], "center_ppm_stderr": ecen[i],
               "fwhm_ppm": fw[i], "fwhm_ppm_stderr": efw[i], "height": height, "area": area[i],
               "area_stderr": earea[i], "area_fraction": fr[i], "area_fraction_stderr": efr[i],
               "shape": c["shape"], "n_sidebands": len(cm.groups[c["name"]]) - 1}
        if lor_ppm is not None and c["shape"] != "quadrupolar":
            row["fwhm_corrected_ppm"] = fw[i] - lor_ppm
        if c["shape"] == "quadrupolar":
            from .quadrupolar import quad_rows

            row.update(quad_rows(res, pre, warns, c["name"], meta.get("sf_mhz")))
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
            "x_label": f"{nuc} shift (ppm)".strip(), "y_label": "intensity", "reverse_x": True, "series": series,
            "x_range": _view_range(x, cen, fw, sb_rows, max(float(np.max(res.best_fit)), 0.0))}
    return Result(processor="nmr.deconvolve", technique="nmr", sample=meta["sample"], quantities=qs, tables=tables,
                  plots=[plot], params=params, inputs=[dict(spec.attrs.get("provenance") or {})], stats=stats,
                  warnings=warns, main_table="components", meta=meta, native=res)


def _f(v) -> float | None:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


# ---------------------------------------------------------------------------- stacks
class _BatchFit:
    """What :func:`_make_result` reads from an lmfit ModelResult, for one row of fit_batch's Dataset."""

    def __init__(self, cm: _Model, x, y, ds, j: int):
        p = cm.params.copy()
        for name, par in p.items():
            if not par.expr and name in ds:
                par.value = float(ds[name].values[j])
        p.update_constraints()
        for name, par in p.items():
            se = float(ds[name + "_stderr"].values[j]) if name + "_stderr" in ds else float("nan")
            par.stderr = se if np.isfinite(se) else None
        self.params, self._cm, self._x = p, cm, x
        self.best_fit = cm.model.eval(p, x=x)
        self.residual = self.best_fit - y
        self.chisqr = float(ds["chisqr"].values[j])
        self.redchi = float(ds["redchi"].values[j])
        self.nfev = int(ds["nfev"].values[j])
        self.success = bool(ds["success"].values[j])
        self.ndata = int(len(x))
        self.var_names = [k for k, v in p.items() if v.vary and not v.expr]
        self.nvarys = len(self.var_names)
        n = self.ndata
        lik = n * math.log(max(self.chisqr, 1e-300) / n)
        self.aic, self.bic = lik + 2 * self.nvarys, lik + math.log(n) * self.nvarys
        self.covar = None
        self.message = "batch engine (fit_batch)"

    def eval_components(self, x=None):
        return self._cm.model.eval_components(params=self.params, x=self._x if x is None else x)


def _add_site_exprs(cm: _Model) -> dict[str, str]:
    """lmfit expression parameters for each site's area (centre band + sidebands) and area
    fraction; fit_batch evaluates them after the fit and propagates their standard errors with
    the full covariance of every spectrum."""
    from ...fitting.models import prefix_of

    names = {}
    for c in cm.comps:
        pre = prefix_of(c["name"])
        names[c["name"]] = (pre + "sitearea", pre + "sitefrac")
        cm.params.add(pre + "sitearea", expr=" + ".join(g + "amplitude" for g in cm.groups[c["name"]]))
    total = "(" + " + ".join(a for a, _ in names.values()) + ")"
    for a, f in names.values():
        cm.params.add(f, expr=f"{a} / {total}")
    return names


def deconvolve_many(data, peaks: Any = None, *, n_peaks: int | None = None, max_peaks: int = 6,
                    lineshape: str = "pseudo-voigt", region=None, baseline: str = "constant",
                    shared_width: bool = False, links=None, mas_rate_hz=None, sidebands: bool = True,
                    sideband_orders: Any = "auto", center_window=None, errors: str = "covariance", n_mc: int = 100,
                    seed: int | None = 0, processing: dict | None = None, method: str = "auto") -> list:
    """Deconvolve a stack of spectra (or FIDs) with one model through the batch engine.

    All spectra are prepared like :func:`deconvolve`, put on one axis (the first spectrum's,
    restricted to the common ppm range, by linear interpolation when the axes differ), and
    fitted by **one** :func:`specproc.fitting.batch.fit_batch` call with the model built on the
    mean spectrum (starting widths from the same pre-fit of overlapping lines as a single fit).
    Each spectrum's Result is built from its row of the Dataset: centres, FWHM and their
    standard errors, and site areas / area fractions (centre band + sidebands) with standard
    errors propagated by the engine with that spectrum's full covariance. No per-spectrum lmfit
    refit.

    The stack falls back to one :func:`deconvolve` per spectrum (``meta["batch"]`` absent) when
    it cannot be batched: automatic mode (no ``peaks``), quadrupolar sites, Monte-Carlo errors,
    fewer than 2 spectra, different nuclei / frequencies / MAS rates, no common ppm range, or
    the batch engine missing. ``method="loop"`` forces that.

    Returns
    -------
    list
        One :class:`Result` per input, or the :class:`SpecprocError` raised for that input
        (preparation failed, fit failed or did not give finite values).
    """
    from ...core.errors import SpecprocError

    kw = dict(n_peaks=n_peaks, max_peaks=max_peaks, lineshape=lineshape, region=region, baseline=baseline,
              shared_width=shared_width, links=links, mas_rate_hz=mas_rate_hz, sidebands=sidebands,
              sideband_orders=sideband_orders, center_window=center_window, errors=errors, n_mc=n_mc, seed=seed,
              processing=processing)
    data = list(data)

    def loop():
        out = []
        for d in data:
            try:
                out.append(deconvolve(d, peaks, **kw))
            except SpecprocError as exc:
                out.append(exc)
        return out

    if method not in ("auto", "batch", "loop"):
        raise ParameterError(f"method must be 'auto', 'batch' or 'loop', got {method!r}")
    comps0 = parse_peaks(peaks, lineshape) if peaks is not None else []
    batchable = (method != "loop" and comps0 and len(data) >= 2 and errors == "covariance"
                 and not any(c["shape"] == "quadrupolar" for c in comps0))
    if batchable:
        try:
            from ...fitting.batch import fit_batch
        except ImportError:
            batchable = False
    if not batchable:
        if method == "batch":
            raise ParameterError("this stack cannot go through the batch engine (see deconvolve_many)")
        return loop()
    out: list = [None] * len(data)
    prep = []
    for i, d in enumerate(data):
        try:
            prep.append((i, _setup(d, peaks, lineshape=lineshape, errors=errors, baseline=baseline, region=region,
                                   processing=processing, mas_rate_hz=mas_rate_hz, sidebands=sidebands,
                                   shared_width=shared_width, links=links, sideband_orders=sideband_orders,
                                   center_window=center_window)))
        except SpecprocError as exc:
            out[i] = exc
    if not prep:
        return out
    # one model needs one nucleus, one frequency and one MAS rate (sideband positions)
    keys = {(p[1][7]["nucleus"], _round(p[1][7]["sf_mhz"]), _round(p[1][9]), p[1][5] is None) for p in prep}
    lo = max(float(p[1][3].min()) for p in prep)
    hi = min(float(p[1][3].max()) for p in prep)
    if len(keys) > 1 or not hi > lo or len(prep) < 2:
        if method == "batch":
            raise ParameterError("the spectra differ in nucleus / frequency / MAS rate or share no ppm range")
        return loop()
    src0, comps, spec0, x0, _y0, step, _n0, meta0, fit_kw, rate = prep[0][1]
    x0 = x0[(x0 >= lo) & (x0 <= hi)]
    Y = np.empty((len(prep), x0.size))
    interpolated = False
    for k, (_i, st) in enumerate(prep):
        x, y = st[3], st[4]
        if x.shape == x0.shape and np.allclose(x, x0, rtol=0, atol=1e-9 * max(1.0, float(np.ptp(x0)))):
            Y[k] = y
        else:  # axes descending: np.interp needs ascending
            Y[k] = np.interp(x0[::-1], x[::-1], y[::-1])[::-1]
            interpolated = True
    noises = np.array([noise_sigma(yy) for yy in Y])
    ymean = Y.mean(axis=0)
    smeta: dict[str, Any] = {}
    comps = _start_comps(x0, ymean, comps, float(np.median(noises)), fit_kw, src0, smeta)
    cm = build_model(x0, ymean, [dict(c) for c in comps], step_ppm=step, noise=float(np.median(noises)), src=src0,
                     **fit_kw)
    site = _add_site_exprs(cm)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = fit_batch(cm.model, x0, Y, params=cm.params)
    except Exception as exc:  # the engine failed for the whole stack: reported for each spectrum
        for i, st in prep:
            out[i] = exc if isinstance(exc, SpecprocError) else FitError(
                f"batch fit failed: {type(exc).__name__}: {exc}", st[0])
        return out
    from ...fitting.models import prefix_of

    n = len(cm.comps)
    for k, (i, st) in enumerate(prep):
        src, _c, spec, _x, _y, _s, _nz, meta, _fk, _r = st
        try:
            row = {name: float(ds[name].values[k]) for name in cm.params if name in ds}
            if not all(np.isfinite(row[nm]) for nm in cm.params if not cm.params[nm].expr and nm in row):
                raise FitError("batch fit gave non-finite parameters (masked or failed spectrum)", src)
            res = _BatchFit(cm, x0, Y[k], ds, k)
            pv = res.params.valuesdict()
            vals = np.asarray(_derived_fn(cm)(pv), float)
            errs = np.full(vals.shape, np.nan)
            for j, c in enumerate(cm.comps):
                pre = prefix_of(c["name"])
                a, f = site[c["name"]]
                for blk, name in ((0, pre + "center"), (1, pre + "fwhm"), (2, a), (3, f)):
                    if name + "_stderr" in ds:
                        errs[blk * n + j] = float(ds[name + "_stderr"].values[k])
            warns = [] if res.success else ["batch fit did not converge for this spectrum"]
            meta = dict(meta, noise=float(noises[k]), region_ppm=[float(x0.min()), float(x0.max())],
                        errors="covariance (batch engine, full covariance per spectrum)",
                        model_selection="given peaks",
                        batch={"method": ds.attrs.get("method"), "n_spectra": len(prep),
                               "interpolated_to_common_axis": interpolated,
                               "fit_s": float(ds.attrs.get("fit_s", float("nan")))})
            meta.update(smeta)
            out[i] = _make_result(spec, cm, res, x0, Y[k], vals, errs, warns, meta, step,
                                  params=dict(peaks=peaks, n_peaks=n_peaks, lineshape=lineshape, region=region,
                                              baseline=baseline, shared_width=shared_width, mas_rate_hz=rate,
                                              errors=errors, processing=processing))
        except SpecprocError as exc:
            out[i] = exc
    return out


def _round(v):
    try:
        return round(float(v), 6)
    except (TypeError, ValueError):
        return None
