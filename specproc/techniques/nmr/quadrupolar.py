"""Second-order quadrupolar central-transition (CT) lineshapes (fast MAS, or static) through mrsimulator.

Under fast MAS the CT line of a half-integer spin scales exactly with ``nu_Q2 = CQ^2 / nu0``
(Hz) for a given ``eta``, including the quadrupolar-induced shift. So mrsimulator is run
**once** per (isotope, eta grid) at a reference CQ and field, and the normalised cumulative
lineshapes ``G_eta(u)`` (``u = offset / nu_Q2``) are cached; a fit evaluates them by scaling
the axis, interpolating linearly in eta (grid step 0.025), bin-integrating on the data grid
(no aliasing of sharp edges) and convolving with a Gaussian (``sigma`` ppm, extra
broadening). A fit takes a fraction of a second instead of one mrsimulator call per step.

At a finite MAS rate (``rate_ppm``) the line carries its own spinning sidebands
(:func:`specproc.fitting.nmr_models.ct_mas`: the infinite-speed line split into sidebands by
per-crystallite weights, nodes over (η, CQ) per rate).

The deconvolution fits a site as the toolkit registry's ``quadrupolar`` peak (:func:`site_peak`,
:func:`specproc.fitting.nmr_models.quadrupolar`, batch kernel ``d_quadrupolar``) through
``fit_spec``; this module gives its starts (:func:`site_start`: CQ from the data's width, a coarse
η x CQ search), its result columns (:func:`quad_rows`) and the reference lineshape
:func:`ct_lineshape` (multi-field fits, the reported FWHM).
"""
from __future__ import annotations

import functools
import math

import numpy as np

from ...core.errors import ParameterError

from ...fitting.nmr_models import ETA_GRID  # noqa: E402,F401 - the library's eta grid (41 values)


@functools.lru_cache(maxsize=16)
def _library(isotope: str, static: bool = False) -> tuple[np.ndarray, np.ndarray, None]:
    """(u bin edges, cumulative shapes (n_eta, n_u), None) for ``isotope``: the toolkit's CT library
    (:func:`specproc.fitting.nmr_models.ct_library`, one per spin, spanning only the CT's own range
    with 8,192 points; the former 8 nu_Q2 window left ~40 library points across a MAS line, 4 % off
    mrsimulator)."""
    from ...fitting.nmr_models import ct_library, spin_of

    spin = spin_of(isotope)
    if spin is None or spin < 1.5 or (2 * spin) % 2 != 1:
        raise ParameterError(f"{isotope} (spin {spin}) has no quadrupolar central transition")
    u, cdf = ct_library(spin, static)
    return u, cdf, None


def ct_lineshape(x, amplitude, center, cq_mhz, eta, sigma, *, isotope: str, larmor_mhz: float,
                 static: bool = False, rate_ppm: float | None = None):
    """Area-normalised CT line on ppm axis ``x`` (any order, uniform spacing): fast MAS, or the
    static powder pattern with ``static=True`` (the library's static kernel, same scaling), or
    MAS at the finite rate ``rate_ppm`` (Hz / Larmor MHz) with its spinning sidebands.

    ``center`` is the isotropic chemical shift (ppm), ``cq_mhz`` the quadrupolar coupling
    constant (MHz), ``eta`` the asymmetry, ``sigma`` the Gaussian broadening (ppm, std).
    """
    from scipy.ndimage import gaussian_filter1d

    x = np.asarray(x, float)
    if rate_ppm and rate_ppm > 0 and not static:
        from ...fitting.nmr_models import ct_mas, spin_of

        return ct_mas(x, amplitude, center, cq_mhz, eta, max(float(sigma), 0.0), 0.0, larmor_mhz,
                      spin_of(isotope), float(rate_ppm))
    u, cdf, _ = _library(isotope, bool(static))
    e = float(np.clip(eta, 0.0, 1.0)) * (len(ETA_GRID) - 1)
    i = min(int(e), len(ETA_GRID) - 2)
    w = e - i
    G = (1 - w) * cdf[i] + w * cdf[i + 1]
    nu0 = larmor_mhz * 1e6
    scale = max((cq_mhz * 1e6) ** 2 / nu0 / nu0 * 1e6, 1e-9)  # ppm per unit u
    dx = float(np.median(np.abs(np.diff(x)))) if x.size > 1 else 1.0
    desc = x[0] > x[-1]
    xs = np.sort(x)
    edges = np.concatenate([xs - dx / 2, xs[-1:] + dx / 2])
    Ge = np.interp((edges - center) / scale, u, G, left=0.0, right=1.0)
    dens = np.diff(Ge) / dx
    sp = float(sigma) / dx
    if sp > 0.3:
        dens = gaussian_filter1d(dens, sp, mode="constant")
    out = amplitude * dens
    return out[::-1] if desc else out


def model_rate(static: bool, rate_ppm: float | None) -> float:
    """``rate_ppm`` of the registry's ``quadrupolar`` model: 0 static, the MAS rate (ppm) when the
    sidebands are computed by the model, :data:`~specproc.fitting.nmr_models.FAST_MAS` otherwise."""
    from ...fitting.nmr_models import FAST_MAS

    if static:
        return 0.0
    return float(rate_ppm) if rate_ppm and rate_ppm > 0 else FAST_MAS


#: start search of a quadrupolar site: η nodes, and CQ factors around the given / width-inverted CQ
_START_ETA = (0.1, 0.3, 0.5, 0.7, 0.9)
_START_CQ = tuple(np.geomspace(0.8, 1.25, 5))


def site_start(site, nucleus, sf_mhz, x, y, w, window, dx, span, static: bool = False,
               rate_ppm: float | None = None) -> dict:
    """Starting values, bounds and fixed parameters of one quadrupolar site (``site``: a
    :class:`~specproc.techniques.nmr.sites.QuadSite`, ``w`` its measured width, ``window`` its
    centre window, ppm): ``{"values": {...}, "bounds": {...}, "fixed": [...]}`` in the registry
    model's parameter names, context included (Larmor frequency, spin, rate; fixed).

    CQ starts at the given value or at the one whose line has the measured width; then (unless
    the centre, CQ or η is fixed) a coarse search over η x CQ (:func:`search_start`) moves the start
    to the node that explains the data best, with δiso from a cross-correlation: a least-squares
    fit with bounds started at η 0.5 and a CQ off by ~10 % can end on η's bound (a projected step
    there, a frozen sine transform in lmfit), in another minimum."""
    from ...fitting.nmr_models import spin_of

    iso = str(nucleus)
    static = bool(static)
    _library(iso, static)
    cq = site.cq_mhz
    if cq is None:  # the line's FWHM scales with CQ^2: invert the FWHM of the CQ = 1 MHz line at this field
        cq = math.sqrt(max(w, dx) / max(_unit_fwhm(iso, float(sf_mhz), float(site.eta), static), 1e-12))
    # the lineshape's maximum is not at the isotropic shift: the window reaches 3 widths further
    values = {"center": float(site.center), "cq_mhz": float(cq), "eta": float(site.eta),
              "sigma": max(w / 10, dx), "gamma": 0.0, "amplitude": max(float(np.max(y)), 1e-12) * w,
              "larmor_mhz": float(sf_mhz), "spin": float(spin_of(iso)), "rate_ppm": model_rate(static, rate_ppm)}
    bounds = {"center": (min(window) - 3 * w, max(window) + 3 * w), "cq_mhz": (1e-3, 50.0), "eta": (0.0, 1.0),
              "sigma": (dx / 4, span / 4), "amplitude": (0.0, None), "gamma": (0.0, None)}
    bounds.update({par: tuple(v) for par, v in site.bounds.items()})
    if x is not None and not {"center", "cq_mhz", "eta"} & set(site.fixed):
        found = search_start(x, y, values, bounds, static, iso, given_cq=site.cq_mhz is not None, window=window)
        if found is not None:
            values.update(found)
    return {"values": values, "bounds": bounds, "fixed": list(site.fixed)}


def search_start(x, y, values: dict, bounds: dict, static: bool, isotope: str, given_cq: bool = False,
                 window=None) -> dict | None:
    """Starting (δiso, CQ, η, area) of a quadrupolar site from a coarse grid: for every η of
    :data:`_START_ETA`, CQs of :data:`_START_CQ` x the CQ whose line has the half-height width of
    the data around their maximum in the centre window (x the given CQ with ``given_cq``); the line
    at infinite speed (static: the static line; under MAS it is the centre band's shape, and cheap:
    no sideband tables), shifted by whole steps within the site's window (``window``: halfway to the
    neighbouring sites; else the centre bounds) and matched with a free area
    (:func:`~specproc.techniques.nmr.models.best_shift`) on block means of the data around the
    centre window. The broadening stays at its start (scanning it on this grid, or with the
    sideband line, chose worse starts). None on an uneven axis or when nothing fits."""
    from ...fitting.nmr_models import FAST_MAS, ct_extent, quadrupolar
    from .models import best_shift, data_width

    x, y = np.asarray(x, float), np.asarray(y, float)
    o = np.argsort(x)
    xa, ya = x[o], y[o]
    dx = float(np.median(np.diff(xa))) if xa.size > 1 else 0.0
    if xa.size < 8 or dx <= 0 or not np.allclose(np.diff(xa), dx, rtol=1e-4, atol=1e-9):
        return None
    lo_c, hi_c = (float(b) if b is not None else float(d) for b, d in zip(bounds["center"], (xa[0], xa[-1])))
    if window is not None:   # the data's width and the searched shifts: this site's own window, not a neighbour
        lo_c, hi_c = max(lo_c, float(min(window))), min(hi_c, float(max(window)))
        if not hi_c > lo_c:
            return None
    lar, spin, sig = values["larmor_mhz"], values["spin"], values["sigma"]
    lo_q, hi_q = (v if v is not None else d for v, d in zip(bounds["cq_mhz"], (1e-3, 50.0)))
    width = data_width(xa, ya - float(np.percentile(ya, 5)), lo_c, hi_c)
    rows = []
    for e in _START_ETA:
        c0 = values["cq_mhz"]
        if not given_cq and width > 2 * dx:   # the CT width scales with CQ^2 (no broadening: an upper CQ)
            c0 = math.sqrt(max(width - 2.3548 * sig, width / 2) / max(_unit_fwhm(isotope, float(lar), e, static), 1e-12))
        rows += [(e, float(np.clip(c0 * f, lo_q, hi_q))) for f in _START_CQ]
    E, Q = (np.array(v) for v in zip(*rows))
    lo_e, hi_e = ct_extent(float(Q.max()), lar, spin, static)
    reach = 6 * sig + 2 * dx
    keep = (xa >= lo_c + lo_e - reach) & (xa <= hi_c + hi_e + reach)
    if keep.sum() < 8:
        return None
    # a coarse match: block means of ~1/20 of the data's width (the templates bin-integrate on that grid)
    k = max(1, int(width / (20 * dx)))
    nb = int(keep.sum()) // k
    if nb < 8:
        return None
    xr = xa[keep][:nb * k].reshape(nb, k).mean(axis=1)
    yr = ya[keep][:nb * k].reshape(nb, k).mean(axis=1)
    dx = dx * k
    xm = float(xr[xr.size // 2])
    G = quadrupolar(xr, 1.0, xm, Q[:, None], E[:, None], sig, 0.0, lar, spin, 0.0 if static else FAST_MAS)
    js = np.arange(-(xr.size - 1), xr.size)
    ok = (xm + js * dx >= lo_c) & (xm + js * dx <= hi_c)
    best = (-np.inf, None)
    for g, e, q in zip(G, E, Q):
        sc, j, a = best_shift(yr, g, js, ok)
        if sc > best[0]:
            best = (sc, {"center": xm + j * dx, "cq_mhz": float(q), "eta": float(e), "amplitude": a})
    return best[1]


def site_peak(site, nucleus, sf_mhz, x, y, w, window, dx, span, static: bool = False, rate_ppm: float | None = None):
    """The registry :class:`~specproc.fitting.models.Peak` (``shape="quadrupolar"``) of one site, with
    the starts of :func:`site_start`: a quadrupolar site is an ordinary component of the ModelSpec
    (fitted by :func:`~specproc.fitting.fit.fit_spec`, batched by the engine's kernel
    :func:`~specproc.fitting.nmr_models.d_quadrupolar`)."""
    from ...fitting.models import Peak

    st = site_start(site, nucleus, sf_mhz, x, y, w, window, dx, span, static, rate_ppm)
    v = st["values"]
    init = {k: v[k] for k in ("cq_mhz", "eta", "sigma", "gamma", "larmor_mhz", "spin", "rate_ppm")}
    return Peak(name=site.name, shape="quadrupolar", center=v["center"], amplitude=v["amplitude"], fwhm=w,
                init=init, bounds={k: b for k, b in st["bounds"].items() if k != "gamma"},
                fixed=sorted(set(st["fixed"]) | {"gamma"}))


def make_lmfit_model(prefix, nucleus, sf_mhz, x, y, site, w, window, dx, span, offset_ppm, parent_prefix,
                     static: bool = False, rate_ppm: float | None = None):
    """lmfit model (the registry's ``quadrupolar``), params and FWHM context of one quadrupolar site
    (or of a sideband copy of it, ``parent_prefix`` and ``offset_ppm``).

    ``site`` is a :class:`~specproc.techniques.nmr.sites.QuadSite`, ``w`` its starting
    width (ppm), ``window`` its centre bounds (ppm), ``static`` the static CT instead of fast MAS
    (the caller knows the MAS rate). With ``rate_ppm`` (the MAS rate in ppm) the site's model
    holds its spinning sidebands (the caller then adds no sideband components:
    :func:`~specproc.techniques.nmr.models.has_own_sidebands`). The context (isotope, Larmor
    frequency, grid step, static) is what :func:`fwhm_of_params` needs; None for a sideband.
    The deconvolution itself builds the same site as a registry peak (:func:`site_peak`).
    """
    from ...fitting.lineshapes import REGISTRY

    iso = str(nucleus)
    static = bool(static)
    model = REGISTRY["quadrupolar"].lmfit_model(prefix)
    p = model.make_params()
    st = site_start(site, iso, sf_mhz, x, y, w, window, dx, span, static, rate_ppm)
    for par in ("larmor_mhz", "spin", "rate_ppm", "gamma"):
        p[prefix + par].set(value=st["values"][par], vary=False)
    if parent_prefix:
        p[prefix + "center"].set(expr=f"{parent_prefix}center + ({offset_ppm!r})")
        for par in ("cq_mhz", "eta", "sigma"):
            p[prefix + par].set(expr=f"{parent_prefix}{par}")
        i = int(np.argmin(np.abs(x - (site.center + offset_ppm))))
        p[prefix + "amplitude"].set(value=max(float(y[i]), 1e-12) * w, min=0)
        return model, p, None
    for par in ("center", "cq_mhz", "eta", "sigma", "amplitude"):
        lo, hi = st["bounds"][par]
        p[prefix + par].set(value=st["values"][par], min=-np.inf if lo is None else lo,
                            max=np.inf if hi is None else hi)
    for par in st["fixed"]:
        p[prefix + par].set(vary=False)
    return model, p, {"isotope": iso, "larmor_mhz": float(sf_mhz), "dx": float(dx), "static": static}


@functools.lru_cache(maxsize=64)
def _unit_fwhm(isotope: str, larmor_mhz: float, eta: float, static: bool = False) -> float:
    """FWHM (ppm) of the CT MAS line of CQ = 1 MHz (no broadening) for ``eta``: the FWHM of any CQ
    is this times CQ² (MHz), the start value's inversion (a width-only guess without the spin
    factor started 11B sites at a fifth of their CQ, in another minimum)."""
    scale = 1e6 / larmor_mhz ** 2
    x = np.linspace(1.5 * scale, -2.5 * scale, 20001)
    y = ct_lineshape(x, 1.0, 0.0, 1.0, eta, 0.0, isotope=isotope, larmor_mhz=larmor_mhz, static=static)
    above = x[y >= y.max() / 2]
    return float(above.max() - above.min()) if above.size > 1 else scale


def fwhm_of_params(vals: dict, pre: str, ctx: dict | None) -> float:
    """Numerical FWHM (ppm) of a quadrupolar component from its parameter values.

    ``ctx`` is the component's ``_quad`` entry (isotope, larmor_mhz, dx). The half-maximum
    crossings are interpolated linearly between grid points, so the FWHM is a continuous
    function of the parameters and its standard error can be propagated from the covariance
    by finite differences (a grid-point FWHM is a step function: zero derivative).
    """
    if not ctx or pre + "cq_mhz" not in vals:
        return float("nan")
    keys = ("center", "amplitude", "cq_mhz", "eta", "sigma")
    if any(np.ndim(vals[pre + k]) for k in keys):   # a stack's columns: one width per spectrum
        cols = np.broadcast_arrays(*[np.asarray(vals[pre + k], float) for k in keys])
        return np.array([fwhm_of_params({pre + k: float(c[i]) for k, c in zip(keys, cols)}, pre, ctx)
                         for i in np.ndindex(cols[0].shape)]).reshape(cols[0].shape)
    if not float(vals[pre + "amplitude"]) > 0:
        return float("nan")
    return _fwhm(float(vals[pre + "cq_mhz"]), float(vals[pre + "eta"]), max(float(vals[pre + "sigma"]), 0.0),
                 float(ctx["larmor_mhz"]), str(ctx["isotope"]), bool(ctx.get("static")), float(ctx["dx"]))


@functools.lru_cache(maxsize=256)
def _fwhm(cq: float, eta: float, sigma: float, larmor_mhz: float, isotope: str, static: bool, dx: float) -> float:
    """FWHM of the centre band (the line at infinite speed, or static) of unit area at δiso 0: the width
    depends on (CQ, η, σ) only, so the error propagation's differences in the other parameters of a fit
    (areas, positions, other sites) are cache hits.

    The grid reaches 4 times the line's own extent (its unbroadened FWHM plus the Gaussian's) on both
    sides and at least ±200 data steps: a grid of a fixed number of steps cut a wide line's wing (the
    study's [N2BH]n at 9.4 T had its half-height point 2.3 SD of the broadening from the grid's end, and
    its FWHM came out 0.06 % small, 1.6 of its standard errors)."""
    extent = _unit_fwhm(isotope, larmor_mhz, eta, static) * cq * cq + 2.3548 * sigma
    half_span = max(200 * dx, 4.0 * extent)
    x = np.linspace(-half_span, half_span, 8001)
    y = ct_lineshape(x, 1.0, 0.0, cq, eta, sigma, isotope=isotope, larmor_mhz=larmor_mhz, static=static)
    if not np.any(y > 0):
        return float("nan")
    half = y.max() / 2
    above = np.where(y >= half)[0]
    i0, i1 = int(above[0]), int(above[-1])

    def cross(i_in, i_out):
        if i_out < 0 or i_out >= y.size:
            return x[i_in]
        f = (y[i_in] - half) / (y[i_in] - y[i_out]) if y[i_in] != y[i_out] else 0.0
        return x[i_in] + f * (x[i_out] - x[i_in])

    return float(abs(cross(i1, i1 + 1) - cross(i0, i0 - 1)))


def quad_rows(values: dict, stderr: dict, pre: str, warns: list, name: str, sf_mhz: float | None = None) -> dict:
    """Table columns of a quadrupolar site, and the 'CQ not constrained' flag."""
    cq, ecq = values[pre + "cq_mhz"], stderr.get(pre + "cq_mhz")
    eta, eeta = values[pre + "eta"], stderr.get(pre + "eta")
    sig = values[pre + "sigma"]
    reasons = []
    if ecq is None or not np.isfinite(ecq) or ecq > 0.5 * abs(cq):
        reasons.append("relative standard error of CQ > 50 %")
    if sf_mhz:
        quad_width = 2.0 * (cq * 1e6) ** 2 / (sf_mhz * 1e6) ** 2 * 1e6  # ~ CT width (ppm)
        if quad_width < 0.5 * 2.3548 * sig:
            reasons.append("line width dominated by the Gaussian broadening")
    flag = bool(reasons)
    if flag:
        warns.append(f"{name}: CQ is not constrained by the data ({'; '.join(reasons)}); do not report it")
    return {"cq_mhz": cq, "cq_mhz_stderr": ecq if ecq is not None else float("nan"), "eta": eta,
            "eta_stderr": eeta if eeta is not None else float("nan"), "broadening_ppm": 2.3548 * sig,
            "unconstrained": flag}
