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
per-crystallite weights, nodes over (η, CQ) per rate). Without a rate, spinning sidebands are
separate components (see :mod:`.sidebands`).
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


def make_lmfit_model(prefix, nucleus, sf_mhz, x, y, site, w, window, dx, span, offset_ppm, parent_prefix,
                     static: bool = False, rate_ppm: float | None = None):
    """lmfit model, params and FWHM context of one quadrupolar site (or of its sideband).

    ``site`` is a :class:`~specproc.techniques.nmr.sites.QuadSite`, ``w`` its starting
    width (ppm), ``window`` its centre bounds (ppm), ``static`` the static CT instead of fast MAS
    (the caller knows the MAS rate). With ``rate_ppm`` (the MAS rate in ppm) the site's model
    holds its spinning sidebands (the caller then adds no sideband components:
    :func:`~specproc.techniques.nmr.models.has_own_sidebands`). The context (isotope, Larmor
    frequency, grid step, static) is what :func:`fwhm_of_params` needs; None for a sideband.
    """
    import lmfit

    iso = str(nucleus)
    static = bool(static)
    _library(iso, static)
    rate = float(rate_ppm) if rate_ppm and rate_ppm > 0 and not static else None

    def quadrupolar(x, amplitude=1.0, center=0.0, cq_mhz=1.0, eta=0.5, sigma=0.1):
        return ct_lineshape(x, amplitude, center, cq_mhz, eta, sigma, isotope=iso, larmor_mhz=float(sf_mhz),
                            static=static, rate_ppm=rate)

    model = lmfit.Model(quadrupolar, prefix=prefix)
    p = model.make_params()
    if parent_prefix:
        p[prefix + "center"].set(expr=f"{parent_prefix}center + ({offset_ppm!r})")
        for par in ("cq_mhz", "eta", "sigma"):
            p[prefix + par].set(expr=f"{parent_prefix}{par}")
        i = int(np.argmin(np.abs(x - (site.center + offset_ppm))))
        p[prefix + "amplitude"].set(value=max(float(y[i]), 1e-12) * w, min=0)
        return model, p, None
    cq = site.cq_mhz
    if cq is None:  # the line's FWHM scales with CQ^2: invert the FWHM of the CQ = 1 MHz line at this field
        cq = math.sqrt(max(w, dx) / max(_unit_fwhm(iso, float(sf_mhz), float(site.eta), static), 1e-12))
    # the lineshape's maximum is not at the isotropic shift: the window reaches 3 widths further
    p[prefix + "center"].set(value=site.center, min=min(window) - 3 * w, max=max(window) + 3 * w)
    p[prefix + "cq_mhz"].set(value=float(cq), min=1e-3, max=50.0)
    p[prefix + "eta"].set(value=float(site.eta), min=0.0, max=1.0)
    p[prefix + "sigma"].set(value=max(w / 10, dx), min=dx / 4, max=span / 4)
    p[prefix + "amplitude"].set(value=max(float(np.max(y)), 1e-12) * w, min=0)
    for par in site.fixed:
        p[prefix + par].set(vary=False)
    for par, (lo, hi) in site.bounds.items():
        p[prefix + par].set(min=-np.inf if lo is None else lo, max=np.inf if hi is None else hi)
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
    dx = ctx["dx"]
    x = np.linspace(vals[pre + "center"] - 200 * dx, vals[pre + "center"] + 200 * dx, 4001)
    y = ct_lineshape(x, vals[pre + "amplitude"], vals[pre + "center"], vals[pre + "cq_mhz"], vals[pre + "eta"],
                     vals[pre + "sigma"], isotope=ctx["isotope"], larmor_mhz=ctx["larmor_mhz"],
                     static=bool(ctx.get("static")))
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
