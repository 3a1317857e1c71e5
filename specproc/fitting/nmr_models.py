"""Solid-state NMR lineshape models of the toolkit registry (``csa``, ``czjzek``).

Every model is area-normalised (``amplitude`` = integrated area, sidebands included), ``center``
is the **isotropic** shift (ppm; the maximum of the pattern is elsewhere), ``sigma`` is a Gaussian
broadening (standard deviation, ppm) and ``gamma`` a Lorentzian one (HWHM, ppm; fixed at its start,
0 by default). Parameters that describe the measurement, not the sample (``rate_ppm`` = MAS rate
in ppm = Hz / Larmor MHz, ``larmor_mhz``, ``spin``) are fixed parameters (:data:`CONTEXT`): the
NMR technique sets them from the spectrum; a toolkit user gives them with ``Peak.init``.

``csa`` — chemical-shift anisotropy (Haeberlen: ``delta_aniso_ppm`` = δzz − δiso, ``eta``).
  * static (``rate_ppm == 0``): the powder pattern's cumulative distribution is computed exactly
    at the data's bin edges. With ``z = cos β`` uniform and the azimuth α, the normalised
    frequency ``v = a(α) z² + b(α)`` is monotone in ``z``, so ``P(v <= t | α) = sqrt((t-b)/a)``
    in closed form and only one smooth 1-D integral over α remains (Gauss–Legendre after the
    substitution ``α = α_end (1 - s²)`` that removes the square-root end-point singularity):
    no orientation grid, no histogram noise, any η without interpolation. Bin-integrated, then
    convolved with the Gaussian/Lorentzian broadening (FFT, padded).
  * MAS (``rate_ppm > 0``): the sideband manifold (Herzfeld & Berger 1980; Maricq & Waugh 1979):
    for each crystallite the phase ``Φ(τ) = ρ ∫ f(τ) dτ`` (ρ = δaniso / rate) is sampled over one
    rotor period, ``exp(iΦ)`` Fourier-transformed, and the γ-averaged intensities are
    ``I_N = <|F_N|²>`` over (α, β) (Gauss–Legendre in cos β × midpoints in α on one octant, the
    tensor's symmetry; the number of orientations grows with ρ). Lines at ``δiso + N·rate``.
``czjzek`` — central transition of a half-integer quadrupolar nucleus with a Czjzek (GIM)
  distribution of (CQ, η), ``sigma_mhz`` the standard deviation of the tensor components in
  mrsimulator's convention (Czjzek's σ / 2). The density
  ``p(CQ, η) ∝ CQ⁴ η (1 − η²/9) exp(−CQ² (1 + η²/3) / (8 σ²))`` scales with σ, and the CT line
  of one site scales with ``ν_Q2 = CQ²/ν0``; so the whole distribution is **one** precomputed
  kernel in ``w = offset / (σ²/ν0)``: the mrsimulator single-site library over η (per spin, static
  or fast MAS) integrated against the density on a (CQ/σ, η) grid, stored as a cumulative
  distribution. One evaluation = one interpolation, whatever σ (mrsimulator: hundreds of spin
  systems per evaluation, ~18 s per spectrum). Under MAS the CT is the infinite-speed line
  (its CT sidebands are not modelled: add satellites).

Kernels are built on first use (the mrsimulator library: a few seconds per spin and mode) and
cached in memory and on disk (``$SPECPROC_CACHE`` or ``~/.cache/specproc``).
"""
from __future__ import annotations

import functools
import math
import os

import numpy as np

#: parameters that describe the measurement (fixed, set from the spectrum)
CONTEXT = ("rate_ppm", "larmor_mhz", "spin")
#: reported model parameters: shape -> [(parameter, JSON / table name, unit, description)]
REPORTED = {
    "csa": [("delta_aniso_ppm", "delta_aniso_ppm", "ppm", "CSA anisotropy δzz − δiso (Haeberlen)"),
            ("eta", "eta", "", "CSA asymmetry η")],
    "czjzek": [("sigma_mhz", "sigma_mhz", "MHz", "Czjzek σ (tensor component SD, mrsimulator convention)")],
}
_SQ23, _SQ13 = math.sqrt(2.0 / 3.0), math.sqrt(1.0 / 3.0)


# ============================================================================ rendering helpers
def _axis(x):
    x = np.asarray(x, float)
    n = x.size
    dx = float(np.median(np.abs(np.diff(x)))) if n > 1 else 1.0
    return x, n, dx or 1.0, bool(n > 1 and x[0] > x[-1])


def _broaden(dens, dx, sigma, gamma):
    """Convolution with a Gaussian (SD sigma) x Lorentzian (HWHM gamma): FFT, zero-padded."""
    sigma, gamma = max(float(sigma), 0.0), max(float(gamma), 0.0)
    if sigma < 1e-3 * dx and gamma < 1e-3 * dx:
        return dens
    n = dens.size
    nfft = 1 << int(math.ceil(math.log2(2 * n + 8)))
    k = np.fft.rfftfreq(nfft, dx)
    h = np.exp(-2 * (math.pi * sigma * k) ** 2 - 2 * math.pi * gamma * k)
    return np.fft.irfft(np.fft.rfft(dens, nfft) * h, nfft)[:n]


def _render_cdf(x, amplitude, sigma, gamma, cdf_at):
    """Area-normalised curve on ``x`` from a cumulative distribution ``cdf_at(edges)`` (monotone
    either way): bin-integrated on a padded grid, broadened, cropped; ``x`` in any order."""
    x, n, dx, desc = _axis(x)
    pad = int(min(math.ceil((6 * max(sigma, 0) + 40 * max(gamma, 0)) / dx) + 2, 4 * n))
    x0 = float(np.min(x)) - pad * dx
    edges = x0 - dx / 2 + dx * np.arange(n + 2 * pad + 1)
    G = cdf_at(edges)
    dens = np.abs(np.diff(G)) / dx
    out = float(amplitude) * _broaden(dens, dx, sigma, gamma)[pad:pad + n]
    return out[::-1] if desc else out


# ============================================================================ CSA
@functools.lru_cache(maxsize=4)
def _gl(n):
    s, w = np.polynomial.legendre.leggauss(n)
    return 0.5 * (s + 1), 0.5 * w


def csa_static_cdf(t, eta, n=64):
    """Exact cumulative distribution of the normalised CSA frequency
    ``v = (3 cos²β − 1)/2 − (η/2) sin²β cos 2α`` at ``t`` (powder average)."""
    t = np.asarray(t, float)
    eta = float(np.clip(eta, 0.0, 1.0))
    out = np.where(t >= 1.0, 1.0, 0.0)
    inside = (t > -(1 + eta) / 2) & (t < 1.0)
    if not inside.any():
        return out
    ti = t[inside][:, None]
    # b(alpha) = -1/2 - eta/2 cos 2alpha rises on [0, pi/2]; t > b(alpha) for alpha < alpha_end
    if eta > 0:
        c = np.clip(-(2 * ti + 1) / eta, -1.0, 1.0)
        a_end = 0.5 * np.arccos(c)
    else:
        a_end = np.full_like(ti, math.pi / 2)
    s, w = _gl(n)
    alpha = a_end * (1 - s * s)
    jac = a_end * 2 * s
    c2 = np.cos(2 * alpha)
    a = 1.5 + 0.5 * eta * c2
    b = -0.5 - 0.5 * eta * c2
    f = np.sqrt(np.clip((ti - b) / a, 0.0, 1.0))
    out[inside] = (2 / math.pi) * np.sum(f * jac * w, axis=1)
    return out


@functools.lru_cache(maxsize=4096)
def csa_sidebands(eta: float, rho: float):
    """(orders N, γ-averaged intensities I_N summing to 1) of a CSA under MAS, ρ = δaniso/rate."""
    eta = float(np.clip(eta, 0.0, 1.0))
    r = abs(rho)
    m = 1 << int(math.ceil(math.log2(max(64.0, 4 * r + 48))))
    nb = int(min(max(16, 6 + 2.5 * r), 400))
    na = nb
    z, wz = _gl(nb)
    alpha = (np.arange(na) + 0.5) * (math.pi / 2) / na
    Z, A = np.meshgrid(z, alpha, indexing="ij")
    W = (wz[:, None] * np.ones(na) / na).ravel()
    sb = np.sqrt(1 - Z * Z).ravel()
    cb, ca, sa = Z.ravel(), np.cos(A).ravel(), np.sin(A).ravel()
    # rotor frame axes expressed in the PAS (z_R = rotor axis)
    ex = np.stack([cb * ca, cb * sa, -sb])
    ey = np.stack([-sa, ca, np.zeros_like(sa)])
    ez = np.stack([sb * ca, sb * sa, cb])
    d = np.array([-(1 + eta) / 2, -(1 - eta) / 2, 1.0])[:, None]

    def comp(u, v):
        return np.sum(d * u * v, axis=0)

    txx, tyy, txy, txz, tyz = comp(ex, ex), comp(ey, ey), comp(ex, ey), comp(ex, ez), comp(ey, ez)
    tau = 2 * math.pi * np.arange(m) / m
    s2 = _SQ23 ** 2
    sc = 2 * _SQ23 * _SQ13
    phi = rho * (s2 * (np.outer((txx - tyy) / 4, np.sin(2 * tau)) - np.outer(txy / 2, np.cos(2 * tau)))
                 + sc * (np.outer(txz, np.sin(tau)) - np.outer(tyz, np.cos(tau))))
    F = np.fft.fft(np.exp(1j * phi), axis=1) / m
    inten = W @ (F.real ** 2 + F.imag ** 2)
    inten /= inten.sum()
    orders = np.fft.fftfreq(m, 1.0 / m).astype(int)
    keep = inten > 1e-7
    o = np.argsort(orders[keep])
    return orders[keep][o], inten[keep][o]


def _voigt(x, c, sigma, gamma):
    """Area-normalised Voigt (sigma: Gaussian SD, gamma: Lorentzian HWHM); no import of
    :mod:`.lineshapes` (which imports this module)."""
    from scipy.special import wofz

    return np.real(wofz((x - c + 1j * gamma) / (sigma * math.sqrt(2)))) / (sigma * math.sqrt(2 * math.pi))


def _voigt_fwhm(sigma, gamma):
    fg, fl = 2 * math.sqrt(2 * math.log(2)) * sigma, 2 * gamma
    return 0.5346 * fl + math.sqrt(0.2166 * fl ** 2 + fg ** 2)  # Olivero & Longbothum, as lineshapes.fwhm


def _gauss_bins(x, c, sigma, dx):
    from scipy.special import ndtr

    s = max(sigma, 1e-12)
    return (ndtr((x + dx / 2 - c) / s) - ndtr((x - dx / 2 - c) / s)) / dx


def csa(x, amplitude=1.0, center=0.0, delta_aniso_ppm=50.0, eta=0.5, sigma=0.5, gamma=0.0, rate_ppm=0.0):
    """Area-normalised CSA line: static powder pattern (``rate_ppm == 0``) or MAS sideband manifold."""
    d, eta, sigma, gamma = float(delta_aniso_ppm), float(eta), float(sigma), float(gamma)
    if rate_ppm and rate_ppm > 0:
        x, n, dx, desc = _axis(x)
        mono = n < 2 or bool(np.all(np.diff(x) < 0) if desc else np.all(np.diff(x) > 0))
        if not mono:  # the windowed sum needs a sorted axis
            o = np.argsort(x)
            y = csa(x[o], amplitude, center, delta_aniso_ppm, eta, sigma, gamma, rate_ppm)
            out = np.empty_like(y)
            out[o] = y
            return out
        orders, inten = csa_sidebands(round(float(np.clip(eta, 0, 1)), 12), round(d / float(rate_ppm), 12))
        out = np.zeros_like(x)
        lim = (float(x.min()) - 20 * (sigma + gamma) - dx, float(x.max()) + 20 * (sigma + gamma) + dx)
        for k, i in zip(orders, inten):
            c = center + k * rate_ppm
            if gamma > 0:
                out += i * _voigt(x, c, max(sigma, 1e-9), gamma)
            elif lim[0] <= c <= lim[1]:  # a Gaussian is 0 beyond 9 SD: only the points near it
                r = 9 * sigma + dx
                if desc:
                    j0, j1 = np.searchsorted(-x, -(c + r)), np.searchsorted(-x, -(c - r), side="right")
                else:
                    j0, j1 = np.searchsorted(x, c - r), np.searchsorted(x, c + r, side="right")
                out[j0:j1] += i * _gauss_bins(x[j0:j1], c, sigma, dx)
        return float(amplitude) * out
    if abs(d) < 1e-12:
        return _render_cdf(x, amplitude, sigma, gamma, lambda e: (e >= center).astype(float))
    return _render_cdf(x, amplitude, sigma, gamma, lambda e: csa_static_cdf((e - center) / d, eta))


# ============================================================================ quadrupolar CT library
#: representative isotopes: the CT line in units of nu_Q2 = CQ^2/nu0 depends on the spin only
_ISOTOPE_OF_SPIN = {3: "11B", 5: "27Al", 7: "51V", 9: "93Nb"}
ETA_GRID = np.linspace(0.0, 1.0, 41)
_REF_CQ_HZ, _REF_B0_T, _NPTS = 3.0e6, 9.4, 8192


def _cache_dir():
    d = os.environ.get("SPECPROC_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "specproc")
    try:
        os.makedirs(d, exist_ok=True)
        return d
    except OSError:
        return None


def _cached(name, build):
    """``build()`` -> dict of arrays, cached on disk as ``name``.npz (rebuilt if unreadable)."""
    d = _cache_dir()
    path = os.path.join(d, name + ".npz") if d else None
    if path and os.path.exists(path):
        try:
            with np.load(path) as f:
                return {k: f[k] for k in f.files}
        except Exception:  # noqa: BLE001 - a damaged cache is rebuilt
            pass
    out = build()
    if path:
        try:
            tmp = f"{path}.{os.getpid()}.tmp.npz"
            np.savez(tmp, **out)
            os.replace(tmp, path)
        except OSError:
            pass
    return out


def _spin_factor(s2: int) -> float:
    """(I(I+1) - 3/4) / (2I(2I-1))^2: the second-order CT width in units of CQ^2/nu0."""
    i = s2 / 2
    return (i * (i + 1) - 0.75) / (2 * i * (2 * i - 1)) ** 2


def _twice_spin(spin) -> int:
    s2 = int(round(2 * float(spin)))
    if s2 not in _ISOTOPE_OF_SPIN:
        raise ValueError(f"spin {spin}: the central-transition models need a half-integer spin 3/2..9/2")
    return s2


def _mrsim_version():
    try:
        from importlib.metadata import version

        return version("mrsimulator")
    except Exception:  # noqa: BLE001
        return "unknown"


@functools.lru_cache(maxsize=16)
def ct_library(spin: float, static: bool = False):
    """(u bin edges, cumulative CT shapes (n_eta, n_u)) of one site in ``u = offset / ν_Q2``
    (``ν_Q2 = CQ²/ν0``), from mrsimulator (static, or MAS at infinite speed), for ``spin``."""
    s2 = _twice_spin(spin)
    iso = _ISOTOPE_OF_SPIN[s2]

    def build():
        try:
            from mrsimulator import Simulator, Site, SpinSystem
        except ImportError:
            from ..core.errors import ParameterError

            raise ParameterError("the quadrupolar central-transition models build their kernel once with "
                                 "mrsimulator (pip install mrsimulator); it is not installed") from None
        from mrsimulator.method.lib import BlochDecayCTSpectrum
        from mrsimulator.spin_system.isotope import Isotope
        from mrsimulator.spin_system.tensors import SymmetricTensor

        nu0 = abs(Isotope(symbol=iso).gyromagnetic_ratio) * 1e6 * _REF_B0_T
        nuq2 = _REF_CQ_HZ ** 2 / nu0
        # the CT spans ~[-0.86, 0] (MAS) / [-2, 1] (static) x f(I) nu_Q2, f = (I(I+1) - 3/4)/(2I(2I-1))^2:
        # the window holds just that, so the library resolves the pattern with thousands of points
        lo, hi = (-2.4, 1.3) if static else (-1.05, 0.25)
        f = _spin_factor(s2)
        sw = (hi - lo) * f * nuq2
        systems = [SpinSystem(sites=[Site(isotope=iso, isotropic_chemical_shift=0.0,
                                          quadrupolar=SymmetricTensor(Cq=_REF_CQ_HZ, eta=float(e)))])
                   for e in ETA_GRID]
        method = BlochDecayCTSpectrum(channels=[iso], magnetic_flux_density=_REF_B0_T,
                                      rotor_frequency=0.0 if static else 1e9,
                                      spectral_dimensions=[{"count": _NPTS, "spectral_width": sw,
                                                            "reference_offset": (lo + hi) / 2 * f * nuq2}])
        sim = Simulator(spin_systems=systems, methods=[method])
        sim.config.decompose_spectrum = "spin_system"
        sim.config.integration_density = 120
        sim.run()
        ds = sim.methods[0].simulation
        coords = ds.x[0].coordinates
        hz = coords.to("ppm").value * nu0 / 1e6 if str(coords.unit) == "ppm" else coords.to("Hz").value
        ys = np.array([np.real(dv.components[0]) for dv in ds.y])
        order = np.argsort(hz)
        u = hz[order] / nuq2
        dens = np.clip(ys[:, order], 0, None)
        cdf = np.cumsum(dens, axis=1)
        cdf /= cdf[:, -1:]
        return {"u": u + (u[1] - u[0]) / 2, "cdf": cdf}

    lib = _cached(f"ct_lib2_s{s2}_{'static' if static else 'mas'}_{_mrsim_version()}", build)
    return lib["u"], lib["cdf"]


#: Czjzek quadrature: CQ/sigma nodes (midpoints), kernel abscissae (sinh-spaced)
_CZ_C_MAX, _CZ_NC, _CZ_NW = 16.0, 192, 8193


def czjzek_density(c, eta):
    """Czjzek (GIM) density of (CQ/σ, η), σ in mrsimulator's convention (Czjzek's σ/2), unnormalised."""
    return c ** 4 * eta * (1 - eta ** 2 / 9) * np.exp(-c ** 2 * (1 + eta ** 2 / 3) / 8.0)


@functools.lru_cache(maxsize=16)
def czjzek_kernel(spin: float, static: bool = False):
    """(w, cumulative distribution) of the Czjzek CT line in ``w = offset / (σ²/ν0)``."""
    s2 = _twice_spin(spin)

    def build():
        u, cdf = ct_library(spin, static)
        c = (np.arange(_CZ_NC) + 0.5) * (_CZ_C_MAX / _CZ_NC)
        wq = np.full(ETA_GRID.size, ETA_GRID[1] - ETA_GRID[0])
        wq[[0, -1]] /= 2
        P = czjzek_density(c[:, None], ETA_GRID[None, :]) * wq[None, :]
        P /= P.sum()
        wmax = float(max(abs(u[0]), abs(u[-1]))) * _CZ_C_MAX ** 2
        tt = np.linspace(-1, 1, _CZ_NW)
        w = wmax * np.sinh(9.0 * tt) / np.sinh(9.0)
        K = np.zeros_like(w)
        for i, ci in enumerate(c):
            arg = w / ci ** 2
            for j in range(ETA_GRID.size):
                if P[i, j] > 1e-14:
                    K += P[i, j] * np.interp(arg, u, cdf[j], left=0.0, right=1.0)
        return {"w": w, "K": K / K[-1]}

    k = _cached(f"czjzek2_s{s2}_{'static' if static else 'mas'}_{_CZ_NC}_{_CZ_NW}_{_mrsim_version()}", build)
    return k["w"], k["K"]


def czjzek(x, amplitude=1.0, center=0.0, sigma_mhz=1.0, sigma=0.5, gamma=0.0, larmor_mhz=100.0, spin=1.5,
           rate_ppm=0.0):
    """Area-normalised Czjzek-distributed CT line (static when ``rate_ppm == 0``, else fast MAS)."""
    w, K = czjzek_kernel(float(spin), not (rate_ppm and rate_ppm > 0))
    scale = max(float(sigma_mhz) ** 2 / float(larmor_mhz) ** 2 * 1e6, 1e-9)  # ppm per unit w
    return _render_cdf(x, amplitude, float(sigma), float(gamma),
                       lambda e: np.interp((e - center) / scale, w, K, left=0.0, right=1.0))


# ============================================================================ registry glue
FUNCTIONS = {"csa": csa, "czjzek": czjzek}


def _param_hints():
    return {
        "csa": {"delta_aniso_ppm": dict(value=50.0), "eta": dict(value=0.5, min=0.0, max=1.0),
                "gamma": dict(value=0.0, min=0.0, vary=False), "rate_ppm": dict(value=0.0, vary=False)},
        "czjzek": {"sigma_mhz": dict(value=1.0, min=1e-3, max=50.0), "gamma": dict(value=0.0, min=0.0, vary=False),
                   "larmor_mhz": dict(value=100.0, vary=False), "spin": dict(value=1.5, vary=False),
                   "rate_ppm": dict(value=0.0, vary=False)},
    }


def _model_class(shape):
    import lmfit

    func = FUNCTIONS[shape]

    class _Model(lmfit.Model):
        def __init__(self, prefix="", **kws):
            super().__init__(func, prefix=prefix, **kws)
            for name, hint in _param_hints()[shape].items():
                self.set_param_hint(name, **hint)

    _Model.__name__ = _Model.__qualname__ = f"{shape.upper()}Model"
    return _Model


def __getattr__(name):  # CSAModel, CZJZEKModel built on first use (lmfit imported lazily)
    for shape in FUNCTIONS:
        if name == f"{shape.upper()}Model":
            cls = _model_class(shape)
            globals()[name] = cls
            return cls
    raise AttributeError(name)


def _support(shape, v):
    """(lo, hi) ppm holding the pattern (for the numerical FWHM)."""
    c, s, g = float(v["center"]), float(v["sigma"]), float(v.get("gamma") or 0.0)
    if shape == "csa":
        d = abs(float(v["delta_aniso_ppm"]))
        return c - 1.5 * d - 6 * s - 10 * g - 1e-6, c + 1.5 * d + 6 * s + 10 * g + 1e-6
    scale = float(v["sigma_mhz"]) ** 2 / float(v["larmor_mhz"]) ** 2 * 1e6
    r = 40 * scale * (2 if not v.get("rate_ppm") else 1)
    return c - r - 6 * s - 10 * g, c + r + 6 * s + 10 * g


def fwhm_value(shape: str, v: dict) -> float:
    """FWHM (ppm) of one model from its parameter values: the centre band's Voigt width under MAS
    (``csa``), else the whole pattern's, numerically (half-maximum crossings interpolated, so it is
    a continuous function of the parameters and its error can be propagated)."""
    if shape == "csa" and v.get("rate_ppm"):
        return _voigt_fwhm(float(v["sigma"]), float(v.get("gamma") or 0.0))
    lo, hi = _support(shape, v)
    x = np.linspace(lo, hi, 6001)
    kw = {k: float(val) for k, val in v.items()}
    kw["amplitude"] = 1.0
    y = FUNCTIONS[shape](x, **kw)
    if not np.any(y > 0):
        return float("nan")
    half = y.max() / 2
    above = np.nonzero(y >= half)[0]
    i0, i1 = int(above[0]), int(above[-1])

    def cross(i_in, i_out):
        if i_out < 0 or i_out >= y.size or y[i_in] == y[i_out]:
            return x[i_in]
        return x[i_in] + (y[i_in] - half) / (y[i_in] - y[i_out]) * (x[i_out] - x[i_in])

    return float(abs(cross(i1, i1 + 1) - cross(i0, i0 - 1)))


SPINS = {"7Li": 1.5, "9Be": 1.5, "11B": 1.5, "23Na": 1.5, "35Cl": 1.5, "37Cl": 1.5, "39K": 1.5, "53Cr": 1.5,
         "63Cu": 1.5, "65Cu": 1.5, "69Ga": 1.5, "71Ga": 1.5, "79Br": 1.5, "81Br": 1.5, "87Rb": 1.5,
         "17O": 2.5, "25Mg": 2.5, "27Al": 2.5, "47Ti": 2.5, "55Mn": 2.5, "67Zn": 2.5, "85Rb": 2.5, "127I": 2.5,
         "43Ca": 3.5, "45Sc": 3.5, "49Ti": 3.5, "51V": 3.5, "59Co": 3.5, "133Cs": 3.5, "139La": 3.5,
         "73Ge": 4.5, "87Sr": 4.5, "93Nb": 4.5, "115In": 4.5, "209Bi": 4.5}


def spin_of(nucleus) -> float | None:
    """Spin of a nucleus name ("27Al"), from a table of the usual quadrupolar nuclei, else mrsimulator."""
    if not nucleus:
        return None
    nuc = str(nucleus).strip()
    if nuc in SPINS:
        return SPINS[nuc]
    try:
        from mrsimulator.spin_system.isotope import Isotope

        return float(Isotope(symbol=nuc).spin)
    except Exception:  # noqa: BLE001
        return None
