"""NMR deconvolution: sites, spinning sidebands, quadrupolar sites, fit, quantities with errors.

Only the NMR science lives here; noise, peak picking, the model spec (sidebands are
:class:`~specproc.fitting.models.Satellite` s of their centre band), the fit, covariance, error
propagation, Monte-Carlo errors and the bound / quality checks are the shared toolkit
(:mod:`specproc.fitting`). Parameters arrive as one validated object
(:class:`~specproc.techniques.nmr.processors.DeconvolveParams`).

Components (``peaks``)
----------------------
A list of positions (ppm, named ``p1, p2...``), ``{"BH4": -44.3, ...}``, or a list of dicts with
the :class:`~specproc.fitting.models.Peak` fields; ``shape="quadrupolar"`` (with ``cq_mhz``,
``eta``) is a second-order quadrupolar central-transition site (:mod:`.quadrupolar`).

Given positions are starts, not truths
--------------------------------------
A given centre may move within a window bounded by its neighbouring lines (halfway to the next
given centre that does not overlap it, the spectrum edge for the outermost ones), and at least
``3 FWHM`` either way; ``center_window`` (ppm) fixes ``start +- center_window`` instead. When
a centre still ends on its window bound, or the fit is poor (r² < 0.9), the fit is repeated with
those lines started at the nearest picked maximum, the better fit (chi²) is kept and a warning
says so. A component whose fitted height is below 3x the noise is reported with a warning (no
signal there: its values are not a measurement).

Automatic mode (neither ``peaks`` nor ``n_peaks``) — selection rules
-------------------------------------------------------------------
1. Noise ``sigma_n``: :func:`~specproc.fitting.noise.noise_sigma`; candidates:
   :func:`~specproc.fitting.peaks.pick_peaks` (prominence > 5 ``sigma_n``).
2. **Window edges.** A candidate whose centre lies within its FWHM (or 2 % of the window) of an
   edge of the spectral window is an edge artefact (digital-filter / baseline roll, a folded
   line): it is never a species. The points from that edge to ``centre + 2 FWHM`` are left out
   of the fit (so the artefact biases no other line), ``meta["edge_artefacts"]`` lists them and a
   warning gives the excluded range. Residual maxima in those zones are not added either.
3. **Sidebands.** With a known MAS rate, a candidate at ``c + k rate`` of a stronger candidate
   (within a FWHM) is that line's sideband (``meta["recognised_sidebands"]``), and residual
   maxima at a sideband position of a fitted line are not added.
4. **Forward selection.** Start with the most prominent candidate; each step tries the next
   candidate **and** the largest residual maximum above 5 ``sigma_n`` (a shoulder, or a broad line
   under a narrow one, has no maximum of its own). A new component within a width of an existing
   one (a nested narrow/broad pair) is started from both width assignments (0.6x / 3x the
   measured width). A model is accepted when the BIC improves by > 2 **and** every component's
   area (incl. sidebands) exceeds ``K_SIGNIFICANT = 5`` standard errors (full covariance).
   Stops at ``max_peaks`` or when neither option is accepted.
``n_peaks`` alone fixes ``n`` and uses the same candidates; when fewer are found a warning says so.

Failure modes (what the rules cannot do): two lines closer than about half their width with
similar widths are one component; a line weaker than ~5 noise SDs or below the 5-sigma area
rule is not added; a real line within its FWHM of the window edge is treated as an artefact (its
area is truncated by the window anyway); a sideband pattern with a MAS rate that is wrong in
the metadata is seen as extra species.

Sidebands
---------
With ``mas_rate_hz`` (parameter, else ``acquisition["mas_rate_hz"]``) each centre band gets
satellites at ``center + k rate_ppm`` for the orders inside the region (``sideband_orders="auto"``:
orders where the data rise above 3 ``sigma_n``, ``|k| <= 8``; an int forces ``|k| <= n``):
same width and shape, own area >= 0, credited to the centre band.

Errors
------
Covariance from the shared toolkit (robust at bounds); derived quantities (FWHM, areas incl.
sidebands, area fractions) through the full covariance. A parameter at a bound has no standard
error (None) and a warning. ``errors="montecarlo"``: refits of ``best_fit + roll(residual)``.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from types import SimpleNamespace
from typing import Any

import numpy as np
import xarray as xr

from ...core.errors import FitError, ParameterError, ProcessingError, SpecprocError
from ...core.measurement import check_measurement, label, reader_notes
from ...core.result import Plots, Quantity, Recipe, Result
from ...core.numbers import finite_or_none

#: an automatically added component must have an area of at least K_SIGNIFICANT standard errors
#: (BIC alone keeps adding small components that only absorb lineshape mismatch of the big lines)
K_SIGNIFICANT = 5.0
#: highest spinning-sideband order modelled with ``sideband_orders="auto"``
AUTO_MAX_SIDEBAND_ORDER = 8
#: highest sideband order modelled while the automatic mode selects components (the final fit has them all)
SELECT_MAX_SIDEBAND_ORDER = 1
#: automatic mode reports its progress on a terminal after this many seconds
PROGRESS_AFTER_S = 3.0
#: spread of the alternative starting widths of overlapping components (x their measured width)
_OVERLAP_FACTORS = {2: (0.6, 3.0), 3: (0.6, 1.5, 4.0)}


# ============================================================================ data classes
@dataclass
class QuadSite:
    """A second-order quadrupolar central-transition site (not a registry lineshape)."""

    name: str
    center: float
    cq_mhz: float | None = None
    eta: float = 0.5
    fwhm: float | None = None
    amplitude: float | None = None
    fixed: list = field(default_factory=list)
    bounds: dict = field(default_factory=dict)
    shape: str = "quadrupolar"


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


@dataclass
class Compiled:
    """Sites compiled to a model: the ModelSpec of the registry lines + quadrupolar sites."""

    sites: list                    # Peak | QuadSite, in report order
    spec: Any                      # ModelSpec or None (quadrupolar sites only)
    quads: list
    groups: dict                   # site name -> lmfit prefixes of itself and its sidebands
    sidebands: list                # (site name, order, prefix)
    quad_ctx: dict = field(default_factory=dict)
    windows: dict = field(default_factory=dict)
    # set by the stack fit: free parameter names, their bounds, sideband areas (free by design)
    params_free: list = field(default_factory=list)
    bounds: dict = field(default_factory=dict)
    satellite_amplitudes: set = field(default_factory=set)


def _progress(pr, what: str, t0: float, end: bool = False) -> None:
    """One updating status line on stderr for long automatic fits (terminals only)."""
    import sys

    if not sys.stderr.isatty():
        return
    el = time.perf_counter() - t0
    if el < PROGRESS_AFTER_S:
        return
    if end:
        print(file=sys.stderr)
        return
    print(f"\r{pr.meta.get('sample')}: {what} ({el:.0f} s)\033[K", end="", file=sys.stderr, flush=True)


def _src(m) -> str | None:
    return (m.attrs.get("provenance") or {}).get("source")


def _dx(x) -> float:
    return float(np.median(np.abs(np.diff(x)))) if len(x) > 1 else 1.0


def _ssb_name(k: int) -> str:
    return f"ssb{'p' if k > 0 else 'm'}{abs(k)}"


# ============================================================================ components
def parse_sites(peaks: Any, lineshape: str, src=None) -> list:
    """The user's ``peaks`` -> list of :class:`Peak` (registry shapes) / :class:`QuadSite`."""
    from ...fitting.models import parse_peaks

    if peaks is None:
        return []
    if isinstance(peaks, (int, float)) and not isinstance(peaks, bool):
        peaks = [peaks]
    if isinstance(peaks, dict):
        items = [dict(v, name=str(k)) if isinstance(v, dict) else {"name": str(k), "center": v}
                 for k, v in peaks.items()]
    else:
        items = [dict(p) if isinstance(p, dict) else {"center": p} for p in peaks]
    out = []
    for i, it in enumerate(items, 1):
        it.setdefault("name", f"p{i}")
        it["name"] = str(it["name"])
        if it.get("shape") == "quadrupolar":
            allowed = {"name", "center", "shape", "cq_mhz", "eta", "fwhm", "amplitude", "fixed", "bounds"}
            extra = set(it) - allowed
            if extra:
                raise ParameterError(f"peak {it['name']!r}: unknown keys {sorted(extra)} for a quadrupolar site", src)
            try:
                c = float(it["center"])
            except (KeyError, TypeError, ValueError):
                raise ParameterError(f"peak {it['name']!r} needs a numeric 'center' (ppm)", src) from None
            if not math.isfinite(c):
                raise ParameterError(f"peak {it['name']!r}: center must be a finite number", src)
            out.append(QuadSite(name=it["name"], center=c, cq_mhz=it.get("cq_mhz"), eta=float(it.get("eta", 0.5)),
                                fwhm=it.get("fwhm"), amplitude=it.get("amplitude"), fixed=list(it.get("fixed") or []),
                                bounds=dict(it.get("bounds") or {})))
        else:
            from .models import keys_to_init

            out.extend(parse_peaks([keys_to_init(it)], lineshape, src))
    names = [s.name for s in out]
    if len(set(names)) != len(names):
        raise ParameterError(f"peak names must be unique: {names}", src)
    return out


def _start_width(x, y, s) -> float:
    from ...fitting.peaks import width_at

    w = float(s.fwhm or width_at(x, y, s.center))
    return min(max(w, 2 * _dx(x)), float(np.ptp(x)) / 2)


def _windows(sites, x, widths, center_window) -> dict:
    """Centre bounds of each site: halfway to the neighbouring non-overlapping lines (the window
    edge for the outermost), and at least +-3 FWHM; or ``start +- center_window``."""
    lo_x, hi_x = float(x.min()), float(x.max())
    dx = _dx(x)
    out = {}
    for s in sites:
        c, w = s.center, widths[s.name]
        if center_window is not None:
            out[s.name] = (max(lo_x, c - center_window), min(hi_x, c + center_window))
            continue
        # neighbours that are separate lines (not overlapping this one)
        below = [t.center for t in sites if t is not s and t.center < c - max(w, widths[t.name])]
        above = [t.center for t in sites if t is not s and t.center > c + max(w, widths[t.name])]
        lo = 0.5 * (c + max(below)) if below else lo_x
        hi = 0.5 * (c + min(above)) if above else hi_x
        reach = max(3 * w, 10 * dx)
        out[s.name] = (max(lo_x, min(lo, c - reach)), min(hi_x, max(hi, c + reach)))
    return out


def build(sites, x, y, pr: Prepared, p, *, sideband_orders=None, windows=None, max_order=None) -> Compiled:
    """Compile sites (+ sidebands as satellites) to a :class:`Compiled` model."""
    from ...fitting.models import Link, ModelSpec, Satellite, prefix_of
    from ...fitting.noise import smooth
    from .sidebands import orders_in_region

    sideband_orders = p.sideband_orders if sideband_orders is None else sideband_orders
    dx = _dx(x)
    ys = smooth(y)
    region = (float(x.min()), float(x.max()))
    widths = {s.name: _start_width(x, y, s) for s in sites}
    windows = windows or _windows(sites, x, widths, p.center_window)
    step = pr.step if sideband_orders is not False else None
    groups, sidebands, peaks, quads = {}, [], [], []
    for s in sites:
        groups[s.name] = [prefix_of(s.name)]
        ks = []
        from .models import has_own_sidebands, is_model, update as _model_update

        if step and not has_own_sidebands(getattr(s, "shape", None), step):
            # "auto" caps the orders: every order adds a free area, and slow spinning of a wide
            # window (5 kHz MAS over 500 ppm) would add ~50 per site; orders beyond it carry a
            # negligible share of the intensity at usual CSA / rate ratios
            cap = sideband_orders if isinstance(sideband_orders, int) else (max_order or AUTO_MAX_SIDEBAND_ORDER)
            for k in orders_in_region(s.center, step, region, cap):
                if sideband_orders == "auto":
                    near = np.abs(x - (s.center + k * step)) <= max(widths[s.name], 2 * dx)
                    if not near.any() or ys[near].max() < 3 * pr.noise:
                        continue
                ks.append(k)
        for k in ks:
            pre = prefix_of(f"{s.name} {_ssb_name(k)}")
            groups[s.name].append(pre)
            sidebands.append((s.name, k, pre))
        if isinstance(s, QuadSite):
            quads.append((s, ks))
            continue
        bounds = {"center": windows[s.name]}
        bounds.update(s.bounds)  # the user's own bounds win
        upd = {"fwhm": widths[s.name], "bounds": bounds,
               "satellites": [Satellite(name=_ssb_name(k), offset=k * step) for k in ks]}
        if s.given is not None and p.center_window is not None:
            upd["given_window"] = p.center_window    # how far the user let it move
        if is_model(s.shape):  # NMR models of the registry: context, starts, bounds (.models)
            upd.update(_model_update(s, width=widths[s.name], window=bounds["center"], step=pr.step if step else None,
                                     sf=pr.sf, nucleus=pr.nucleus, dx=dx, src=pr.src, x=x, y=ys))
        peaks.append(s.model_copy(update=upd))
    links = []
    std = [s for s in peaks]
    if p.shared_width and len(std) > 1:
        for shp in sorted({s.shape for s in std}):
            same = [s.name for s in std if s.shape == shp]
            if len(same) > 1:
                for par in ("sigma", "gamma") if shp == "voigt" else ("sigma",):
                    links.append(Link(param=par, peaks=same))
    for ln in p.links or []:
        links.append(ln if isinstance(ln, Link) else Link(**ln))
    spec = None
    if peaks:
        try:
            spec = ModelSpec(peaks=peaks, baseline=p.baseline, links=links)
        except Exception as exc:
            raise ParameterError(f"invalid peak model: {exc}", pr.src) from None
    new_sites = [next((q for q in peaks if q.name == s.name), s) for s in sites]
    return Compiled(sites=new_sites, spec=spec, quads=quads, groups=groups, sidebands=sidebands, windows=windows)


def _lmfit_model(c: Compiled, x, y, pr: Prepared, p):
    """lmfit model + params of a compiled model with quadrupolar sites."""
    import lmfit

    from ...fitting.models import prefix_of
    from .quadrupolar import make_lmfit_model

    if not pr.nucleus or not pr.sf:
        raise ParameterError("quadrupolar components need the nucleus and sf_mhz of the measurement", pr.src)
    if c.spec is not None:
        model, params = c.spec.to_lmfit(x, y)
    else:
        model = params = None
        if p.baseline != "none":
            deg = {"constant": 0, "linear": 1, "quadratic": 2}[p.baseline]
            model = lmfit.models.PolynomialModel(degree=deg, prefix="bl_")
            params = model.make_params(**{f"c{i}": 0.0 for i in range(deg + 1)})
    dx, span = _dx(x), float(np.ptp(x))
    for q, ks in c.quads:
        w = _start_width(x, y, q)
        for name, k in [(q.name, 0)] + [(f"{q.name} {_ssb_name(kk)}", kk) for kk in ks]:
            qm, qp, ctx = make_lmfit_model(prefix_of(name), pr.nucleus, pr.sf, x, y, q, w, c.windows[q.name], dx,
                                           span, k * (pr.step or 0.0), prefix_of(q.name) if k else None,
                                           static=pr.rate == 0)  # static CT only when the rate is 0 Hz
            if ctx:
                c.quad_ctx[q.name] = ctx
            model = qm if model is None else model + qm
            if params is None:
                params = qp
            else:
                params.update(qp)
    return model, params


def fit(c: Compiled, x, y, pr: Prepared, p):
    """Fit a compiled model: :func:`~specproc.fitting.fit.fit_spec` (registry lines), or lmfit
    with the same toolkit checks when quadrupolar sites are present. -> FitOutcome."""
    from ...fitting.models import without_uvars
    from ...fitting.fit import FitOutcome, fit_spec
    from ...fitting.uncertainty import at_bound, covariance, fit_warnings, r_squared

    if not c.quads:
        return fit_spec(c.spec, x, y, noise=pr.noise, where=pr.src, unit="ppm")
    model, params = _lmfit_model(c, x, y, pr, p)
    nvarys = sum(q.vary and not q.expr for q in params.values())
    try:
        with np.errstate(all="ignore"):  # per thread (numpy >= 2); catch_warnings swaps global state
            res = model.fit(y, without_uvars(params), x=x, nan_policy="raise", max_nfev=200 * (nvarys + 1))
    except Exception as exc:
        raise FitError(f"fit failed: {type(exc).__name__}: {exc}", pr.src) from None
    par = res.params
    par.update_constraints()
    sat = {pre for _n, _k, pre in c.sidebands}
    bounded = at_bound(par, skip={n for n in par if any(n.startswith(s) for s in sat) and n.endswith("amplitude")})
    cov = covariance(model, par, x, res.var_names, res.redchi)
    for j, name in enumerate(res.var_names):
        par[name].stderr = float(np.sqrt(cov[j, j])) if cov is not None else None
    best = np.asarray(res.best_fit, float)
    stats = {"r2": r_squared(y, best), "redchi": float(res.redchi), "chisqr": float(res.chisqr),
             "aic": float(res.aic), "bic": float(res.bic), "nfev": int(res.nfev), "success": bool(res.success),
             "ndata": int(res.ndata), "nvarys": int(res.nvarys)}
    comps = {k: np.broadcast_to(np.asarray(v, float), x.shape) for k, v in res.eval_components(x=x).items()}
    checks, undetected = _checks(c, x, y, best, par.valuesdict(), pr.noise, comps)
    return FitOutcome(spec=c.spec, x=x, y=y, params=par, var_names=list(res.var_names), covar=cov, best_fit=best,
                      components=comps, stats=stats, bounded=bounded, model=model, noise=pr.noise,
                      warnings=fit_warnings(stats, bounded, residual=y - best, noise=pr.noise, params=par) + checks,
                      undetected=undetected)


def _checks(c: Compiled, x, y, best, values: dict, noise: float, curves: dict | None = None):
    """The toolkit's after-fit checks (:func:`~specproc.fitting.fit.fit_checks`) of a fit that
    did not go through ``fit_spec`` (quadrupolar sites, stacks): (warnings, undetected sites)."""
    from ...fitting.fit import fit_checks
    from ...fitting.uncertainty import unexplained_signal, unexplained_warning

    if c.spec is not None:
        return fit_checks(c.spec, x, y, best, values, noise, curves=curves, unit="ppm")
    best = np.asarray(best, float)
    model = best - np.broadcast_to(np.asarray((curves or {}).get("bl_", 0.0), float), best.shape)
    w = unexplained_warning(unexplained_signal(x, np.asarray(y, float) - best, noise, model=model), "ppm")
    return ([w] if w else []), []


# ============================================================================ quantities
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


def _insignificant(c: Compiled, fo) -> list[str]:
    """Sites whose area is below K_SIGNIFICANT standard errors (or undetermined)."""
    if fo.covar is None:
        return [s.name for s in c.sites]
    vals, errs, _ = fo.derived(derived_fn(c))
    n = len(c.sites)
    area, earea = vals[2 * n:3 * n], errs[2 * n:3 * n]
    return [s.name for s, a, e in zip(c.sites, area, earea) if not (np.isfinite(e) and a > K_SIGNIFICANT * e)]


# ============================================================================ preparing
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


# ============================================================================ given peaks
def _overlap_starts(x, y, sites) -> list[list]:
    """Alternative starting widths for registry lines that overlap (centres within a width).

    Lines started at (nearly) one position with one measured width are a symmetric start
    from which least squares cannot separate a narrow and a broad line; each cluster of 2-3
    overlapping lines without a given ``fwhm`` gets every assignment of ``factor x width``.
    """
    import itertools

    from ...fitting.peaks import width_at

    free = [i for i, s in enumerate(sites) if not s.fwhm and not isinstance(s, QuadSite)]
    w = {i: width_at(x, y, sites[i].center) for i in free}
    parent = {i: i for i in free}

    def root(i):
        while parent[i] != i:
            i = parent[i]
        return i

    for a, b in itertools.combinations(free, 2):
        if abs(sites[a].center - sites[b].center) < max(w[a], w[b]):
            parent[root(a)] = root(b)
    clusters: dict[int, list[int]] = {}
    for i in free:
        clusters.setdefault(root(i), []).append(i)
    starts = []
    for members in clusters.values():
        if len(members) not in _OVERLAP_FACTORS:
            continue
        w0 = max(w[i] for i in members)
        for perm in itertools.permutations(_OVERLAP_FACTORS[len(members)]):
            alt = list(sites)
            for i, f in zip(members, perm):
                alt[i] = alt[i].model_copy(update={"fwhm": f * w0})
            starts.append(alt)
    return starts


def start_sites(x, y, sites, pr: Prepared, p) -> list:
    """Starting widths / fractions / areas of overlapping given lines from cheap pre-fits.

    The plain start and :func:`_overlap_starts` are compared on a pre-fit of the centre bands only
    (points within 12 widths of a centre); the full model then starts from the best one (lowest
    chi²; a tie within one reduced chi² goes to the fit whose centres moved least, which keeps
    the names the user gave to the narrow and the broad line).
    """
    from ...fitting.models import prefix_of
    from ...fitting.peaks import width_at

    starts = _overlap_starts(x, y, sites)
    if not starts:
        return sites
    reach = [12 * max(s.fwhm or 0.0, width_at(x, y, s.center)) for s in sites]
    mask = np.zeros(x.size, bool)
    for s, r in zip(sites, reach):
        mask |= np.abs(x - s.center) <= r
    best = None
    for alt in [sites] + starts:
        try:
            c = build(alt, x[mask], y[mask], pr, p, sideband_orders=False)
            fo = fit(c, x[mask], y[mask], pr, p)
        except (FitError, ParameterError):
            continue
        moved = sum(((fo.values[prefix_of(s.name) + "center"] - s.center) / (s.fwhm or 1.0)) ** 2
                    for s in c.sites if not isinstance(s, QuadSite))
        if best is None:
            best = (c, fo, moved)
            continue
        tie = abs(fo.stats["chisqr"] - best[1].stats["chisqr"]) <= max(best[1].stats["redchi"], 0.0)
        if (fo.stats["chisqr"] < best[1].stats["chisqr"] and not tie) or (tie and moved < best[2]):
            best = (c, fo, moved)
    pr.meta["starts"] = 1 + len(starts)
    if best is None:
        return sites
    from ...fitting.lineshapes import fwhm_of

    c, fo, _ = best
    v = fo.values
    out = []
    for s in sites:
        pre = prefix_of(s.name)
        if isinstance(s, QuadSite) or pre + "sigma" not in v:
            out.append(s)
            continue
        upd = {"fwhm": s.fwhm or float(fwhm_of(s.shape, v, pre)), "amplitude": s.amplitude or float(v[pre + "amplitude"])}
        if pre + "fraction" in v and "fraction" not in s.model_fields_set:
            upd["fraction"] = float(v[pre + "fraction"])
        out.append(s.model_copy(update=upd))
    return out


def _fit_given(pr: Prepared, sites, p):
    """Fit given lines; lines whose centre ends on its window bound (or a poor fit) are refitted
    from the nearest picked maximum, keeping the better fit and saying so."""
    from ...fitting.models import prefix_of
    from ...fitting.noise import smooth
    from ...fitting.peaks import pick_peaks

    x, y = pr.x, pr.y
    lo, hi = float(x.min()), float(x.max())
    for s in sites:
        if not lo <= s.center <= hi:
            raise ParameterError(f"peak {s.name!r} at {s.center:g} ppm is outside the fitted spectrum "
                                 f"({lo:.4g}..{hi:.4g} ppm)", pr.src)
    if float(np.max(smooth(y))) < 3 * pr.noise:
        raise ProcessingError("no signal above 3x the noise level in the region", pr.src)
    sites = start_sites(x, y, sites, pr, p)
    c = build(sites, x, y, pr, p)
    fo = fit(c, x, y, pr, p)
    notes = []
    stuck = [s for s in c.sites if not isinstance(s, QuadSite) and prefix_of(s.name) + "center" in fo.bounded]
    poor = fo.stats["r2"] < 0.9
    if (stuck or poor) and p.center_window is None:
        cands = pick_peaks(x, y, noise=pr.noise, max_peaks=2 * len(sites) + 6)
        movers = stuck or [s for s in c.sites if not isinstance(s, QuadSite)]
        taken = [s.center for s in c.sites if s not in movers]
        new, moved = list(sites), []
        for s in movers:
            free = [cd for cd in cands if all(abs(cd["center"] - t) > cd["fwhm"] for t in taken)]
            if not free:
                continue
            cd = min(free, key=lambda cd: abs(cd["center"] - s.center))
            if abs(cd["center"] - s.center) < 0.5 * cd["fwhm"]:
                continue
            taken.append(cd["center"])
            i = next(i for i, t in enumerate(new) if t.name == s.name)
            new[i] = new[i].model_copy(update={"center": cd["center"], "fwhm": cd["fwhm"], "amplitude": None})
            moved.append((s.name, s.center, cd["center"]))
        if moved:
            try:
                c2 = build(new, x, y, pr, p)
                fo2 = fit(c2, x, y, pr, p)
            except (FitError, ParameterError):
                fo2 = None
            if fo2 is not None and fo2.stats["chisqr"] < fo.stats["chisqr"]:
                why = "ended at the bound of its window" if stuck else f"gave a poor fit (r² {fo.stats['r2']:.2f})"
                for name, a, b in moved:
                    notes.append(f"{name}: the fit from the given start {a:g} ppm {why}; refitted from the "
                                 f"picked maximum at {b:.4g} ppm")
                c, fo = c2, fo2
    return c, fo, notes


# ============================================================================ automatic mode
def _edge_artefacts(x, y, cands, noise):
    """Signal at the window edges: (kept candidates, excluded x ranges, artefact records).

    Two kinds: a picked maximum within its FWHM (or 2 % of the window) of an edge, and a signal
    that rises monotonically into an edge (a line or filter artefact centred at / beyond the
    edge has no maximum inside the window). The excluded range runs from the edge to 2 FWHM
    inside (4 half widths for the rising kind; at most a quarter of the window).
    """
    from ...fitting.noise import smooth

    lo, hi = float(x.min()), float(x.max())
    span = hi - lo
    keep, cut, arts = [], [], []
    for cd in cands:
        c, w = cd["center"], cd["fwhm"]
        margin = max(w, 0.02 * span)
        if c - lo <= margin:
            cut.append((lo, min(c + 2 * w, lo + 0.25 * span)))
        elif hi - c <= margin:
            cut.append((max(c - 2 * w, hi - 0.25 * span), hi))
        else:
            keep.append(cd)
            continue
        arts.append({"position_ppm": c, "fwhm_ppm": w, "excluded_ppm": [float(v) for v in cut[-1]]})
    ys = smooth(y)
    base = float(np.median(ys))
    k = max(3, int(0.02 * x.size))
    for idx in (np.arange(x.size), np.arange(x.size)[::-1]):   # from each edge inwards
        a = ys[idx] - base
        a0 = float(a[: max(2, k // 4)].mean())
        # significant at the edge and, on average, rising towards it (noise-robust)
        if a0 < 5 * noise or a[: k // 2].mean() <= a[k // 2: k].mean():
            continue
        if any(min(abs(x[idx[0]] - u), abs(x[idx[0]] - v)) < 1e-12 for u, v in cut):
            continue
        below = np.nonzero(a <= a0 / 2)[0]
        hw = int(below[0]) if below.size else x.size
        lim = max(1, min(4 * hw, x.size // 4))
        # another line rising out of the artefact's tail (> 5 sigma above the lowest point so
        # far) ends the excluded zone there
        rise = np.nonzero(a[:lim] - np.minimum.accumulate(a[:lim]) > 5 * noise)[0]
        stop = int(rise[0]) if rise.size else lim - 1
        edge, inner = float(x[idx[0]]), float(x[idx[stop]])
        cut.append((min(edge, inner), max(edge, inner)))
        arts.append({"position_ppm": edge, "fwhm_ppm": float(abs(x[idx[hw]] - edge) * 2),
                     "excluded_ppm": [float(v) for v in cut[-1]]})
    return keep, cut, arts


def _drop_undetected(best, refit, notes: list, pr: Prepared):
    """The automatic result without components that are no detection (toolkit
    :func:`~specproc.fitting.models.drop_undetected`: area within 2 standard errors of 0 or height
    below 3 noise SDs), the rest refitted; ``refit(best, names to keep) -> (Compiled, FitOutcome)``."""
    from ...fitting.fit import drop_undetected

    cur = {"best": best}

    def again(fo, weak):
        cur["best"] = refit(cur["best"], {s.name for s in cur["best"][0].sites} - set(weak))
        return cur["best"][1]

    _fo, msg = drop_undetected(best[1], again, unit="ppm", where=pr.src)
    notes += msg
    return cur["best"]


def _auto(pr: Prepared, p):
    """Automatic component selection (module docstring). -> (Compiled, FitOutcome, warnings)."""
    from ...fitting.lineshapes import fwhm_of
    from ...fitting.models import Peak, prefix_of
    from ...fitting.noise import smooth
    from ...fitting.peaks import pick_peaks, width_at
    from .sidebands import recognise

    notes = []
    want = max(p.max_peaks, p.n_peaks or 0)
    cands = pick_peaks(pr.x, pr.y, noise=pr.noise, max_peaks=2 * want + 4)
    cands, cut, arts = _edge_artefacts(pr.x, pr.y, cands, pr.noise)
    if cut:
        keep = np.ones(pr.x.size, bool)
        for a, b in cut:
            keep &= ~((pr.x >= a) & (pr.x <= b))
        if keep.sum() < 16:
            raise ProcessingError("only edge artefacts in the spectral window (no line to fit)", pr.src)
        pr.x, pr.y = pr.x[keep], pr.y[keep]
        pr.meta["edge_artefacts"] = arts
        pr.meta["region_ppm"] = [float(pr.x.min()), float(pr.x.max())]
        for a in arts:
            notes.append(f"signal at the window edge ({a['position_ppm']:.4g} ppm, FWHM {a['fwhm_ppm']:.3g} ppm) "
                         f"is an edge artefact, not a species: {a['excluded_ppm'][0]:.4g}..{a['excluded_ppm'][1]:.4g} "
                         f"ppm left out of the fit")
    x, y = pr.x, pr.y
    if not cands:
        raise ProcessingError(f"no peaks found above 5x the noise level ({pr.noise:.3g})", pr.src)
    dx = _dx(x)
    step = pr.step
    if step:
        sbs = recognise([cd["center"] for cd in cands], [cd["height"] for cd in cands], step,
                        tol_ppm=max(max(cd["fwhm"] for cd in cands), 3 * dx))
        if sbs:
            pr.meta["recognised_sidebands"] = [
                {"position_ppm": cands[j]["center"], "centre_band_ppm": cands[i]["center"], "order": k}
                for j, (i, k) in sbs.items()]
            cands = [cd for j, cd in enumerate(cands) if j not in sbs]
    edges = [(a, b) for a, b in cut]
    xlo, xhi = float(x.min()), float(x.max())
    span = xhi - xlo

    def in_edge(pos, w):
        return pos - xlo <= max(w, 0.02 * span) or xhi - pos <= max(w, 0.02 * span) or \
            any(a <= pos <= b for a, b in edges)

    # Model selection is made cheaper, the chosen model is then refitted in full:
    # - every d-th point, d such that >= 1024 points remain and the narrowest candidate keeps
    #   >= 8 points per FWHM (processed spectra are oversampled by zero filling);
    # - sidebands up to order SELECT_MAX_SIDEBAND_ORDER (each order is a tied component; slow
    #   spinning gives 16 per site, and the higher ones do not change which lines exist: their
    #   residual maxima are at sideband positions, which are never added as lines)
    # the final fit keeps >= 16 points per FWHM of the narrowest strong line (and >= 2048 points);
    # fewer, less correlated points also make the covariance errors of processed spectra less
    # optimistic. meta["fit_every_nth_point"] records it.
    # (strong lines: >= 5 % of the top prominence; a weak spike must not force full resolution)
    w_ref = min(cd["fwhm"] for cd in cands if cd["prominence"] >= 0.05 * cands[0]["prominence"])
    d = max(1, min(x.size // 1024, int(w_ref / dx / 8)))
    d_fin = max(1, min(x.size // 2048, int(w_ref / dx / 16)))
    xs_, ys_ = x[::d], y[::d]
    xf_, yf_ = x[::d_fin], y[::d_fin]
    t_start = time.perf_counter()

    def fit_centres(centres, full=False):
        sites = [Peak(name=f"p{i}", shape=p.lineshape, center=c, fwhm=w)
                 for i, (c, w) in enumerate(sorted(centres, key=lambda cw: -cw[0]), 1)]
        xx, yy = (xf_, yf_) if full else (xs_, ys_)
        c = build(sites, xx, yy, pr, p, max_order=None if full else SELECT_MAX_SIDEBAND_ORDER)
        out = c, fit(c, xx, yy, pr, p)
        _progress(pr, f"{'final fit' if full else 'model selection'}: {len(sites)} component(s)", t_start)
        return out

    def at_sideband(pos, c, fo):
        if not step:
            return False
        for s in c.sites:
            pc = fo.values[prefix_of(s.name) + "center"]
            k = round((pos - pc) / step)
            if k and abs(pos - (pc + k * step)) <= max(s.fwhm or 0.0, 3 * dx):
                return True
        return False

    def kept(c, fo):
        """Fitted centres and widths of a model (the starts of the next, larger one)."""
        return [(fo.values[prefix_of(s.name) + "center"],
                 min(max(fwhm_of(s.shape, fo.values, prefix_of(s.name)), 2 * dx), span / 2)) for s in c.sites]

    def grow(c, fo):
        """Options adding the largest residual maximum above 5 sigma (not at a sideband position
        or in an edge zone); a maximum inside an existing line gets narrow and broad starts."""
        xg = fo.x
        r = smooth(fo.y - fo.best_fit)
        for i in np.argsort(r)[::-1][:50]:
            if r[i] < 5 * pr.noise:
                return []
            pos = float(xg[i])
            if not at_sideband(pos, c, fo) and not in_edge(pos, 2 * dx):
                break
        else:
            return []
        prev = kept(c, fo)
        opts = [prev + [(pos, width_at(xg, r, pos))]]
        # nested narrow/broad pair: a broad line under the existing line nearest to the residual
        # maximum leaves residual maxima in its wings, not at its centre, so the pair is tried
        # explicitly (the existing line narrowed, a broad partner at its centre), and a narrow
        # line inside an existing one from a narrow start
        j = int(np.argmin([abs(cc - pos) for cc, _ww in prev]))
        cc, ww = prev[j]
        rest = prev[:j] + prev[j + 1:]
        opts.append(rest + [(cc, max(0.6 * ww, 2 * dx)), (cc, min(3 * ww, span / 2))])
        if abs(cc - pos) < ww:
            opts.append(prev + [(pos, max(0.6 * ww, 2 * dx))])
        return opts

    rejected = []
    best = fit_centres([(cands[0]["center"], cands[0]["fwhm"])])
    if p.n_peaks:
        if len(cands) >= p.n_peaks:
            best = fit_centres([(cd["center"], cd["fwhm"]) for cd in cands[:p.n_peaks]])
        else:
            best = fit_centres([(cd["center"], cd["fwhm"]) for cd in cands])
            while len(best[0].sites) < p.n_peaks:
                opts = grow(*best)
                if not opts:
                    break
                best = fit_centres(opts[0])
        if len(best[0].sites) < p.n_peaks:
            notes.append(f"n_peaks = {p.n_peaks} but only {len(best[0].sites)} component(s) were found above "
                         f"5x the noise level")
    else:
        used = 1
        while len(best[0].sites) < p.max_peaks:
            options = []
            if used < len(cands):
                options.append(kept(*best) + [(cands[used]["center"], cands[used]["fwhm"])])
                used += 1
            options += grow(*best)
            if not options:
                break
            winner = None
            for centres in options:
                try:
                    cur = fit_centres(centres)
                except (FitError, ParameterError):
                    continue
                stuck = [b for b in cur[1].bounded if b.endswith(("center", "sigma"))]
                if stuck:  # a line held by its window / width limit is not a found line
                    rejected.append({"n": len(cur[0].sites), "at_bound": stuck})
                    continue
                weak = _insignificant(*cur)
                if weak:  # a component below significance only absorbs lineshape mismatch
                    rejected.append({"n": len(cur[0].sites), "insignificant": weak})
                    continue
                if cur[1].stats["bic"] < best[1].stats["bic"] - 2.0 and (
                        winner is None or cur[1].stats["bic"] < winner[1].stats["bic"]):
                    winner = cur
            if winner is None:
                if used < len(cands):
                    continue  # this candidate did not help; the next one may
                break
            best = winner
    if d != d_fin or (step and best[0].sidebands):
        best = fit_centres(kept(*best), full=True)
    best = _drop_undetected(best, lambda cur, keep: fit_centres(
        [kc for kc, s in zip(kept(*cur), cur[0].sites) if s.name in keep], full=True), notes, pr)
    pr.meta["fit_every_nth_point"] = d_fin
    _progress(pr, "", t_start, end=True)
    pr.meta["model_selection"] = (f"forward selection n = 1..{len(best[0].sites)}: BIC gain > 2 and every area > "
                                  f"{K_SIGNIFICANT:g} stderr" if not p.n_peaks else f"n_peaks = {p.n_peaks}")
    if rejected:
        pr.meta["rejected_models"] = rejected
    return best[0], best[1], notes


# ============================================================================ entry points
def deconvolve(m: xr.DataArray, p) -> Result:
    """Deconvolve one NMR spectrum (an FID is processed first).

    Parameters
    ----------
    m : xarray.DataArray
        NMR spectrum (dim ``shift``, ppm) or FID; 2D data need ``p.row``.
    p : DeconvolveParams
        Validated parameters (:class:`~specproc.techniques.nmr.processors.DeconvolveParams`).

    Returns
    -------
    Result
        ``table`` (one row per site), ``tables["sidebands"]``, quantities ``<name>.center_ppm``,
        ``.fwhm_ppm``, ``.area_fraction``, ``.area``; ``warnings`` holds every parameter at a bound,
        poor / unconverged fits, refits from picked maxima, edge artefacts and processing problems.
        ``meta["apodization"]``/``meta["lb_hz"]``: exponential apodization adds ``lb_hz / sf_mhz``
        ppm to Lorentzian widths (``fwhm_corrected_ppm`` in the table).
    """
    pr = prepare(m, p)
    sites = parse_sites(p.peaks, p.lineshape, pr.src)
    warns = list(pr.warnings)
    if sites:
        c, fo, notes = _fit_given(pr, sites, p)
        pr.meta["model_selection"] = "given peaks"
    else:
        c, fo, notes = _auto(pr, p)
    warns += notes
    fn = derived_fn(c, drop=fo.undetected)
    vals, errs, _ = fo.derived(fn)
    if p.errors == "montecarlo":
        errs = _montecarlo(c, fo, fn, p, pr)
        pr.meta["errors"] = f"montecarlo (n={p.n_mc})"
    else:
        pr.meta["errors"] = "covariance"
    return make_result(pr, c, fo.values, fo.stderr, fo.components, fo.best_fit, fo.stats, fo.bounded, vals, errs,
                       warns + list(fo.warnings), p, fo.x, fo.y, undetected=fo.undetected)


def _montecarlo(c, fo, fn, p, pr):
    from ...fitting.uncertainty import montecarlo

    model, start = fo.model, fo.params

    def refit(ys):
        with np.errstate(all="ignore"):
            r = model.fit(ys, start.copy(), x=fo.x)
        q = r.params
        q.update_constraints()
        return fn(q.valuesdict())

    std, n_ok = montecarlo(refit, fo.best_fit, fo.residual, n=p.n_mc, seed=p.seed)
    if std is None:
        raise FitError("Monte-Carlo refits failed", pr.src)
    return std


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
    rows, qs = [], {}
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
        qs[f"{s.name}.center_ppm"] = Quantity(float(row["center_ppm"]) if row["detected"] else nan,
                                              row["center_ppm_stderr"], "ppm", "isotropic / peak shift")
        qs[f"{s.name}.fwhm_ppm"] = Quantity(float(row["fwhm_ppm"]) if row["detected"] else nan,
                                            row["fwhm_ppm_stderr"], "ppm", "full width at half maximum")
        qs[f"{s.name}.area_fraction"] = Quantity(float(row["area_fraction"]), row["area_fraction_stderr"], "",
                                                 "area fraction incl. spinning sidebands")
        qs[f"{s.name}.area"] = Quantity(float(row["area"]), row["area_stderr"], "arb*ppm", "area incl. sidebands")
        if isinstance(s, QuadSite):
            qs[f"{s.name}.cq_mhz"] = Quantity(row["cq_mhz"], _f(row["cq_mhz_stderr"]), "MHz", "quadrupolar coupling")
            qs[f"{s.name}.eta"] = Quantity(row["eta"], _f(row["eta_stderr"]), "", "asymmetry")
        else:
            from .models import quantities as _model_quantities

            for _par, key, unit, desc in _model_quantities(s.shape):
                qs[f"{s.name}.{key}"] = Quantity(row[key] if row["detected"] else nan, row[key + "_stderr"], unit, desc)
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


# ============================================================================ stacks
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
    fitted by **one** :func:`~specproc.fitting.batch.fit_batch` call with the model built on the
    mean spectrum. Each Result is built from its row of the Dataset with plain numpy (no
    per-spectrum lmfit objects): centres, FWHM, site areas and area fractions with standard
    errors propagated by the engine with that spectrum's full covariance.

    Falls back to one :func:`deconvolve` per spectrum (``meta["batch"]`` absent) for automatic
    mode, quadrupolar sites, Monte-Carlo errors, fewer than 2 spectra, different nuclei /
    frequencies / MAS rates or no common ppm range; ``p.method="loop"`` forces that.

    Returns
    -------
    list
        One :class:`Result` per input, or the :class:`SpecprocError` of that input, in order.
    """
    data = list(data)

    def loop():
        out = []
        for d in data:
            try:
                out.append(deconvolve(d, p))
            except SpecprocError as exc:
                out.append(exc)
        return out

    try:
        sites0 = parse_sites(p.peaks, p.lineshape)
    except ParameterError as exc:
        return [exc] * len(data)
    batchable = (p.method != "loop" and sites0 and len(data) >= 2 and p.errors == "covariance"
                 and not any(isinstance(s, QuadSite) for s in sites0))
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
        ds = _fit_stack(c, x0, ymean, Y)
    except Exception as exc:  # the engine failed for the whole stack: reported for each spectrum
        for i, pr in prep:
            out[i] = exc if isinstance(exc, SpecprocError) else FitError(
                f"batch fit failed: {type(exc).__name__}: {exc}", pr.src)
        return out
    from ...fitting.models import prefix_of
    from ...fitting.uncertainty import fit_warnings, on_bound

    n = len(c.sites)
    nk = len(prep)
    names = [nm for nm in ds.data_vars if not nm.endswith("_stderr")]
    cols = {nm: np.asarray(ds[nm].values) for nm in names}
    ecols = {nm[:-7]: np.asarray(ds[nm].values) for nm in ds.data_vars if nm.endswith("_stderr")}
    # columns, not spectra: every quantity, bound check and statistic of the stack is computed
    # on whole columns; the per-spectrum loop below only slices them into its Result
    vnames = [nm for nm in names if cols[nm].ndim == 1]
    fcols = {nm: cols[nm].astype(float) for nm in vnames}
    vlists = {nm: fcols[nm].tolist() for nm in vnames}
    elists = {nm: ecols[nm].astype(float).tolist() for nm in ecols}
    finite = np.ones(nk, bool)
    for nm in c.params_free:
        finite &= np.isfinite(fcols[nm]) if nm in fcols else False
    err_all = np.full((nk, 4 * n), np.nan)
    for j, s in enumerate(c.sites):
        pre = prefix_of(s.name)
        for blk, nm in ((0, pre + "center"), (1, pre + "fwhm"), (2, pre + "sitearea"), (3, pre + "sitefrac")):
            if nm in ecols:
                err_all[:, blk * n + j] = ecols[nm]
    vals_all = np.asarray(derived_fn(c)(fcols), float).T  # (spectra, 4 n): centres, FWHM, areas, fractions
    # the maxima of every component and fit (heights, S/N, the plot's view), not the curves: a
    # figure's curves are made when it is first read (1,000 spectra: ~200 MB nobody draws from the CLI)
    checks: list = [([], [])] * nk

    def check(a, b, cur, fits):   # the toolkit's after-fit checks of spectra a:b, while their curves exist
        for j in range(a, b):
            if finite[j]:
                values = {nm: float(fcols[nm][j]) for nm in vnames}
                checks[j] = _checks(c, x0, Y[j], fits[j - a], values, float(noises[j]),
                                    {pre: cv[j - a] for pre, cv in cur.items()})

    maxima = {key: v.tolist() for key, v in _curve_stack(c, x0, fcols, keep=False, on_block=check).items()}
    hits = {nm: on_bound(fcols[nm], lo_b, hi_b) for nm, (lo_b, hi_b) in c.bounds.items()
            if nm not in c.satellite_amplitudes}
    hit_any = np.zeros(nk, bool)
    for h in hits.values():
        hit_any |= h
    nd, nv = int(x0.size), len(c.params_free)
    with np.errstate(divide="ignore", invalid="ignore"):
        lik = nd * np.log(np.maximum(fcols["chisqr"], 1e-300) / nd)
        rms = np.sqrt(fcols["chisqr"] / nd)  # the residual RMS of an unweighted fit
    aic, bic = (lik + 2 * nv).tolist(), (lik + math.log(nd) * nv).tolist()
    rms_l, r2_l = rms.tolist(), fcols["r2"].tolist()
    batch_meta = {"method": ds.attrs.get("method"), "n_spectra": len(prep), "interpolated_to_common_axis": interpolated,
                  "fit_s": float((ds.attrs.get("timings") or {}).get("fit", float("nan")))}
    region = [float(x0.min()), float(x0.max())]
    params_json = p.model_dump(mode="json")
    starts = {k2: v for k2, v in prm.meta.items() if k2 == "starts"}
    prefixes = tuple(pre for group in c.groups.values() for pre in group) + ("bl_",)
    curve_cols = [nm for nm in vnames if nm.startswith(prefixes)]  # what a component's curve reads
    for k, (i, pr) in enumerate(prep):
        if not finite[k]:
            out[i] = FitError("batch fit gave non-finite parameters (masked or failed spectrum)", pr.src)
            continue
        try:
            values = {nm: vlists[nm][k] for nm in vnames}
            stderr = {nm: _f(el[k]) for nm, el in elists.items()}
            bounded = [nm for nm, h in hits.items() if h[k]] if hit_any[k] else []
            view = {nm: SimpleNamespace(value=values[nm], min=c.bounds[nm][0], max=c.bounds[nm][1]) for nm in bounded}
            stats = {"r2": r2_l[k], "redchi": vlists["redchi"][k], "chisqr": vlists["chisqr"][k],
                     "nfev": int(vlists["nfev"][k]), "success": bool(vlists["success"][k]), "ndata": nd,
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
    return out


def _fit_stack(c: Compiled, x0, ymean, Y):
    """One fit_batch call; site areas / fractions / FWHM as expression parameters so the engine
    propagates their standard errors with each spectrum's full covariance."""
    from ...fitting.batch import fit_batch
    from ...fitting.lineshapes import get
    from ...fitting.models import prefix_of

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
    c.params_free = [nm for nm, q in params.items() if q.vary and not q.expr]
    c.bounds = {nm: (q.min, q.max) for nm, q in params.items() if q.vary and not q.expr}
    c.satellite_amplitudes = {pre + "amplitude" for _n, _k, pre in c.sidebands}
    with np.errstate(all="ignore"):
        # spectra of one stack are alike: each starts from the mean spectrum's optimum where that
        # is the better start (a quarter fewer LM iterations on a series of similar spectra);
        # converged like lmfit's leastsq (ftol = xtol = 1.5e-8): centres agree with a loop of
        # lmfit fits to < 1e-4 ppm, 1/20 of their standard errors
        return fit_batch(model, x0, Y, params=params, start="mean", tol=1.5e-8)


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
    curves, best = _curve_stack(c, x, row)
    return [_figure(c, x, y, {pre: cv[0] for pre, cv in curves.items()}, best[0], look)]


def _curve_stack(c: Compiled, x, cols: dict, block: int = 64, keep: bool = True, on_block=None):
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


def _round(v):
    try:
        return round(float(v), 6)
    except (TypeError, ValueError):
        return None
