"""Solid-state NMR lineshape models of the toolkit registry (``csa``, ``czjzek``, ``ext-czjzek``,
``quadrupolar``) and the finite-speed MAS central transition (:func:`ct_mas`).

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

``ext-czjzek`` — extended Czjzek distribution (dominant tensor ``cq0_mhz``, ``eta0`` plus a random
  part of size ``eps``): one kernel per (η0, ε) node from mrsimulator's variates, blended bilinearly
  (lmfit ``EXTCZJZEKModel``; a registry entry; the NMR technique's start search is
  :func:`specproc.techniques.nmr.models.ext_czjzek_start`).
:func:`ct_mas` — one quadrupolar CT site under MAS at a **finite** rate with its spinning sidebands:
  the infinite-speed library line split into sidebands by per-crystallite weights |F_N|² (nodes over
  (η, f·CQ²/(ν0 ν_r)), i.e. over (η, CQ) per rate, cached on disk); used by
  :func:`specproc.techniques.nmr.quadrupolar.ct_lineshape` with ``rate_ppm``.

``quadrupolar`` — one quadrupolar CT site (``cq_mhz``, ``eta``): static (``rate_ppm == 0``), finite-speed
  MAS with its sidebands (``rate_ppm > 0``: :func:`ct_mas`'s computation) or infinite-speed MAS
  (``rate_ppm < 0``, :data:`FAST_MAS`). Its batch kernel :func:`d_quadrupolar` evaluates a stack of
  sites and the analytic derivatives of that computation (the tables' interpolants differentiated
  exactly, the broadening through its FFT kernel): single spectra (``fit_spec``) and stacks
  (``fit_batch``) with quadrupolar sites run on the batch engine.

Stacks of ``csa`` spectra go through the batch engine: :func:`d_csa` evaluates a stack and its exact
Jacobian in one numpy call from a bicubic table of the sideband manifold (:func:`csa_manifold_interp`),
declared as ``csa.batch_kernel`` for :func:`specproc.fitting.batch.register_kernel`.

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
    "quadrupolar": [("cq_mhz", "cq_mhz", "MHz", "quadrupolar coupling"), ("eta", "eta", "", "asymmetry")],
    "ext-czjzek": [("cq0_mhz", "cq0_mhz", "MHz", "dominant CQ of the extended Czjzek model"),
                   ("eta0", "eta0", "", "dominant η"), ("eps", "eps", "", "relative size ε of the random part")],
}
_SQ23, _SQ13 = math.sqrt(2.0 / 3.0), math.sqrt(1.0 / 3.0)
_S2PI = math.sqrt(2 * math.pi)


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



def _octant_frames(nb: int):
    """Powder orientations of one octant (the tensors' symmetry): ``nb`` Gauss-Legendre cos β x ``nb`` α
    midpoints; (weights (O,), and the rotor frame's x, y, z axes in the principal frame, each (3, O))."""
    z, wz = _gl(nb)
    alpha = (np.arange(nb) + 0.5) * (math.pi / 2) / nb
    Z, A = np.meshgrid(z, alpha, indexing="ij")
    W = (wz[:, None] * np.ones(nb) / nb).ravel()
    sb = np.sqrt(1 - Z * Z).ravel()
    cb, ca, sa = Z.ravel(), np.cos(A).ravel(), np.sin(A).ravel()
    ex = np.stack([cb * ca, cb * sa, -sb])
    ey = np.stack([-sa, ca, np.zeros_like(sa)])
    ez = np.stack([sb * ca, sb * sa, cb])
    return W, ex, ey, ez

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


def _mas_grid(r: float) -> tuple[int, int]:
    """(rotor-period samples m, orientations per axis nb) that resolve a manifold of |ρ| = r."""
    m = 1 << int(math.ceil(math.log2(max(64.0, 4 * r + 48))))
    nb = int(min(8 * math.ceil(max(16, 6 + 2.5 * r) / 8), 400))
    return m, nb


@functools.lru_cache(maxsize=8)
def _mas_phase(m: int, nb: int):
    """Powder weights W (O,) and the rotor-period phases P0, P1 (O, m) of a unit anisotropy:
    the phase of a crystallite is ``ρ (P0 + η P1)`` (the tensor is linear in η)."""
    W, ex, ey, ez = _octant_frames(nb)
    tau = 2 * math.pi * np.arange(m) / m
    s2, sc = _SQ23 ** 2, 2 * _SQ23 * _SQ13
    out = []
    for d in (np.array([-0.5, -0.5, 1.0])[:, None], np.array([-0.5, 0.5, 0.0])[:, None]):  # PAS = d0 + eta d1
        def comp(u, v):
            return np.sum(d * u * v, axis=0)

        txx, tyy, txy, txz, tyz = comp(ex, ex), comp(ey, ey), comp(ex, ey), comp(ex, ez), comp(ey, ez)
        out.append(s2 * (np.outer((txx - tyy) / 4, np.sin(2 * tau)) - np.outer(txy / 2, np.cos(2 * tau)))
                   + sc * (np.outer(txz, np.sin(tau)) - np.outer(tyz, np.cos(tau))))
    return W, out[0], out[1]


def csa_manifold(eta, rho, deriv: bool = False):
    """Sideband intensities of many CSA tensors under MAS at once (numpy over the batch).

    Parameters
    ----------
    eta, rho : array (n,)
        Asymmetries (clipped to [0, 1]) and ρ = δaniso / rate (any sign).
    deriv : bool
        Also return the exact derivatives of the intensities in η and ρ.

    Returns
    -------
    orders : int array (m,)
        Sideband orders N (FFT order: 0, 1, ..., -1).
    I : array (n, m)
        γ-averaged intensities ``<|F_N|²>`` (each row sums to 1: Parseval).
    dI_deta, dI_drho : array (n, m)
        Only with ``deriv``: ``2 <Re(conj F_N dF_N)>``, with ``dF = FFT(i dΦ e^{iΦ})``.

    The phase of every crystallite is ``ρ (P0 + η P1)`` on a shared (orientation, rotor period)
    grid chosen for the largest |ρ| of the batch, so a stack costs one FFT array per chunk of
    spectra (Herzfeld & Berger 1980; Maricq & Waugh 1979).
    """
    eta = np.clip(np.asarray(eta, float).ravel(), 0.0, 1.0)
    rho = np.asarray(rho, float).ravel()
    n = eta.size
    m, nb = _mas_grid(float(np.max(np.abs(rho))) if n else 0.0)
    W, P0, P1 = _mas_phase(m, nb)
    I = np.empty((n, m))
    dE = np.empty((n, m)) if deriv else None
    dR = np.empty((n, m)) if deriv else None
    step = max(1, int(4e6 // (W.size * m)))  # ~64 MB of complex work per chunk
    for s in range(0, n, step):
        e, r = eta[s:s + step, None, None], rho[s:s + step, None, None]
        base = P0[None] + e * P1[None]
        E = np.exp(1j * (r * base))
        F = np.fft.fft(E, axis=2) / m
        I[s:s + step] = np.einsum("o,cok->ck", W, F.real ** 2 + F.imag ** 2)
        if deriv:
            Fc = np.conj(F)
            Fe = np.fft.fft(1j * r * P1[None] * E, axis=2) / m
            Fr = np.fft.fft(1j * base * E, axis=2) / m
            dE[s:s + step] = 2 * np.einsum("o,cok->ck", W, (Fc * Fe).real)
            dR[s:s + step] = 2 * np.einsum("o,cok->ck", W, (Fc * Fr).real)
    orders = np.fft.fftfreq(m, 1.0 / m).astype(int)
    return (orders, I, dE, dR) if deriv else (orders, I)


@functools.lru_cache(maxsize=4096)
def csa_sidebands(eta: float, rho: float):
    """(orders N, γ-averaged intensities I_N summing to 1) of a CSA under MAS, ρ = δaniso/rate
    (one row of :func:`csa_manifold`: a fit of one spectrum and of a stack give the same numbers)."""
    orders, inten = csa_manifold([eta], [rho])
    inten = inten[0] / inten[0].sum()
    keep = inten > 1e-7
    o = np.argsort(orders[keep])
    return orders[keep][o], inten[keep][o]


#: nodes of the interpolated manifold (:func:`csa_manifold_interp`): η step, ρ step
_HB_ETA_N, _HB_RHO_H = 40, 0.05
#: |ρ| beyond which the batch kernel computes rows exactly; beyond _RHO_MAX no manifold is computed
_RHO_TABLE_MAX, _RHO_MAX = 40.0, 400.0


_HB_BLOCK = 20  # ρ columns per cached block (1 unit of ρ)


@functools.lru_cache(maxsize=256)
def _hb_block(b: int):
    """Columns ``j = b*20 .. b*20+19`` of the table (ρ = j h) for every η node, cached in memory and
    on disk: (K, intensities (20, n_eta + 4, 2K + 1)), orders -K..K; each η column has one
    extrapolated node before the first and two after the last, so the cubic has four nodes
    everywhere."""
    def build():
        eta = np.arange(_HB_ETA_N + 1) / _HB_ETA_N
        js = np.arange(b * _HB_BLOCK, (b + 1) * _HB_BLOCK)
        rho = np.repeat(js * _HB_RHO_H, eta.size)
        orders, inten = csa_manifold(np.tile(eta, js.size), rho)
        k = orders.size // 2 - 1
        cols = inten[:, np.arange(-k, k + 1) % orders.size].reshape(js.size, eta.size, 2 * k + 1)
        ext = np.concatenate([2 * cols[:, :1] - cols[:, 1:2], cols, 2 * cols[:, -1:] - cols[:, -2:-1],
                              3 * cols[:, -1:] - 2 * cols[:, -2:-1]], axis=1)
        return {"k": np.array(k), "tab": ext}

    out = _cached(f"csa_hb_{_HB_ETA_N}_{_HB_RHO_H:g}_{b}", build)
    return int(out["k"]), out["tab"]


def _catmull_rom(t):
    """Weights (n, 4) of nodes -1, 0, 1, 2 and their derivatives in t (uniform Catmull–Rom)."""
    t = t[:, None]
    t2, t3 = t * t, t * t * t
    w = np.hstack([-0.5 * t3 + t2 - 0.5 * t, 1.5 * t3 - 2.5 * t2 + 1, -1.5 * t3 + 2 * t2 + 0.5 * t, 0.5 * t3 - 0.5 * t2])
    d = np.hstack([-1.5 * t2 + 2 * t - 0.5, 4.5 * t2 - 5 * t, -4.5 * t2 + 4 * t + 0.5, 1.5 * t2 - t])
    return w, d


def csa_manifold_interp(eta, rho):
    """Sideband intensities of many CSA tensors and their derivatives in η and ρ from a table.

    The table's nodes (η step 1/40, ρ step 0.05: columns of :func:`csa_manifold`, built on first
    use and kept in memory) are joined by a bicubic Catmull–Rom interpolant, so the intensities and
    their derivatives are continuous and a stack costs a gather and a weighted sum per evaluation
    (the exact manifold needs one FFT array per evaluation: ~0.3 s per 100 spectra). Measured
    against the exact manifold: < 1e-4 of the centre band (tests/techniques/test_nmr_csa_batch.py).

    Returns
    -------
    orders : int array (2K+1,)
        ``-K..K``.
    I, dI_deta, dI_drho : arrays (n, 2K+1)
    """
    eta = np.clip(np.asarray(eta, float).ravel(), 0.0, 1.0)
    rho = np.asarray(rho, float).ravel()
    ur = rho / _HB_RHO_H
    j0 = np.floor(ur).astype(int)
    tr = ur - j0
    ue = eta * _HB_ETA_N
    k0 = np.minimum(np.floor(ue).astype(int), _HB_ETA_N - 1)
    te = ue - k0
    jj = j0[:, None] + np.arange(-1, 3)[None, :]             # (n, 4) table columns
    blocks = np.unique(np.floor_divide(jj, _HB_BLOCK))
    tabs = {int(bk): _hb_block(int(bk)) for bk in blocks}
    K = max(k for k, _ in tabs.values())
    L = 2 * K + 1
    T = np.zeros((blocks.size * _HB_BLOCK, _HB_ETA_N + 4, L))
    for i, bk in enumerate(blocks):
        k, tab = tabs[int(bk)]
        T[i * _HB_BLOCK:(i + 1) * _HB_BLOCK, :, K - k:K + k + 1] = tab
    pos = np.searchsorted(blocks, np.floor_divide(jj, _HB_BLOCK)) * _HB_BLOCK + np.mod(jj, _HB_BLOCK)
    rows_e = k0[:, None] + np.arange(4)[None, :]  # extended table: node k sits in row k + 1
    blk = T[pos[:, :, None], rows_e[:, None, :]]  # (n, 4 rho nodes, 4 eta nodes, L)
    wr, dr = _catmull_rom(tr)
    we, de = _catmull_rom(te)
    I = np.einsum("na,nb,nabl->nl", wr, we, blk, optimize=True)
    dI_e = np.einsum("na,nb,nabl->nl", wr, de, blk, optimize=True) * _HB_ETA_N
    dI_r = np.einsum("na,nb,nabl->nl", dr, we, blk, optimize=True) / _HB_RHO_H
    return np.arange(-K, K + 1), I, dI_e, dI_r


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


def _stacked(args) -> tuple | None:
    """The broadcast shape of parameter arrays (a stack of lines, e.g. ``(n, 1)`` against ``x``
    ``(m,)``), or None when every parameter is a scalar."""
    if all(np.ndim(a) == 0 for a in args):
        return None
    return np.broadcast(*[np.asarray(a, float) for a in args]).shape


def csa(x, amplitude=1.0, center=0.0, delta_aniso_ppm=50.0, eta=0.5, sigma=0.5, gamma=0.0, rate_ppm=0.0):
    """Area-normalised CSA line: static powder pattern (``rate_ppm == 0``) or MAS sideband manifold.

    Parameters broadcast like every registry lineshape: arrays of shape ``(n, 1)`` give ``(n, m)``
    curves (the batch kernel :func:`d_csa`, so a stack's curves are what its fit evaluated)."""
    args = (amplitude, center, delta_aniso_ppm, eta, sigma, gamma, rate_ppm)
    shp = _stacked(args)
    if shp is not None:
        xv = np.asarray(x, float).reshape(-1)
        n = int(np.prod(shp[:-1])) if len(shp) > 1 else int(np.prod(shp))
        cols = [np.broadcast_to(np.asarray(a, float), shp[:-1] + (1,) if len(shp) > 1 else shp).reshape(-1, 1)
                if np.ndim(a) else np.full((n, 1), float(a)) for a in args]
        out = d_csa(xv[None, :], *cols)[0]
        return out.reshape(shp[:-1] + (xv.size,)) if len(shp) > 1 else out
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
        if abs(d) > _RHO_MAX * float(rate_ppm):
            raise ValueError(f"csa: |delta_aniso_ppm / rate_ppm| = {abs(d) / float(rate_ppm):.3g} > {_RHO_MAX}: "
                             "spinning too slow for a sideband manifold; fit the static pattern (rate_ppm = 0)")
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


# ============================================================================ CSA: the batch engine's kernel
class _Grads:
    """``(value, d/dp1, ...)`` of :func:`d_csa` with the derivatives computed on first access: the
    batch engine reads ``out[0]`` alone for trial points, ``out[1:]`` only where it wants the Jacobian."""

    def __init__(self, value, grads, n=8):
        self._value, self._grads, self._done, self._n = value, grads, None, n

    def __getitem__(self, i):
        if i == 0:
            return self._value
        if self._done is None:
            self._done = self._grads()
        return self._done[i - 1]

    def __len__(self):
        return self._n


def _uniform(x):
    """(first value, signed step) of an evenly spaced axis, else None."""
    if x.size < 2:
        return None
    d = np.diff(x)
    step = float(d.mean())
    if step == 0 or not np.allclose(d, step, rtol=1e-6, atol=1e-9 * abs(step)):
        return None
    return float(x[0]), step


def d_csa(x, amplitude, center, delta_aniso_ppm, eta, sigma, gamma, rate_ppm):
    """Batch-engine kernel of ``csa``: values ``(n, m)`` of a stack of CSA lines and their exact
    derivatives in every parameter, numpy over the stack (parameters ``(n, 1)``, ``x`` ``(1, m)``).

    Under MAS the sideband intensities and their derivatives in η and ρ come from the
    interpolated manifold (:func:`csa_manifold_interp`); each band is the same bin-integrated
    Gaussian as :func:`csa` (a Voigt where ``gamma > 0``), evaluated only on the points within
    6 SD of it (windows gathered for all spectra at once). Static rows (``rate_ppm == 0``, or |ρ| >
    40) use :func:`csa` with central differences (exact CDF, no table). Declared to the batch engine
    as ``csa.batch_kernel`` (registered by :func:`specproc.fitting.batch.register_kernel`).
    """
    xv = np.asarray(x, float).reshape(-1)
    n = max(np.size(a) for a in (amplitude, center, delta_aniso_ppm, eta, sigma, gamma, rate_ppm))
    amp, c, d, e, sg, g, r = (np.broadcast_to(np.asarray(a, float).reshape(-1), (n,)).copy()
                              for a in (amplitude, center, delta_aniso_ppm, eta, sigma, gamma, rate_ppm))
    m = xv.size
    dx = float(np.median(np.abs(np.diff(xv)))) if m > 1 else 1.0
    val = np.zeros((n, m))
    parts = []   # (rows, function giving their 7 derivative arrays)
    # static rows, and spinning so slow that the manifold leaves the table's range: exact per row
    static = ~(r > 0) | (np.abs(d) > _RHO_TABLE_MAX * np.where(r > 0, r, 1.0))
    if static.any():
        rows = np.nonzero(static)[0]
        for i in rows:
            val[i] = csa(xv, amp[i], c[i], d[i], e[i], sg[i], g[i], r[i] if r[i] > 0 else 0.0)
        parts.append((rows, lambda rows=rows: _static_grads(xv, rows, amp, c, d, e, sg, g, r, val)))
    for mas in (np.nonzero(~static & (g <= 0))[0], np.nonzero(~static & (g > 0))[0]):  # Gaussian / Voigt bands
        if mas.size:
            args = (xv, dx, amp[mas], c[mas], d[mas], e[mas], np.maximum(sg[mas], 1e-9), g[mas], r[mas])
            val[mas] = _mas_pass(*args, want=False)[0]
            parts.append((mas, lambda args=args: _mas_pass(*args, want=True)[1]))

    def grads():
        out = [np.zeros((n, m)) for _ in range(7)]
        for rows, f in parts:
            for q, arr in enumerate(f()):
                out[q][rows] = arr
        return out

    return _Grads(val, grads)


def _mas_pass(xv, dx, amp, c, d, e, sg, g, r, want):
    """Values (s, m) of MAS rows of :func:`d_csa` and, with ``want``, their 7 derivative arrays.

    Every band of every spectrum is evaluated on the points within 6 SD of it only: one window
    per (spectrum, order), gathered with fancy indices on an axis padded by a window on each
    side, and summed with one ``bincount`` per output (a dense (spectra, points) evaluation per
    order cost ~30x more on 4,000-point spectra)."""
    from scipy.special import ndtr

    s, m = amp.size, xv.size
    orders, I, dIe, dIr = csa_manifold_interp(e, d / r)
    keep = np.nonzero(I.max(axis=0) > 1e-8)[0]
    orders, I, dIe, dIr = orders[keep], I[:, keep], dIe[:, keep], dIr[:, keep]
    K = orders.size
    grid = _uniform(xv)
    half = int(math.ceil(6 * float(sg.max()) / dx)) + 2
    lor = bool((g > 0).any())
    binned = grid is not None and not lor and 2 * half + 1 < m
    if binned:
        x0, st = grid
        cen = c[:, None] + orders[None, :] * r[:, None]                              # (s, K)
        j = np.rint((cen - x0) / st).astype(np.int64) + 2 * half                      # padded index
        j0 = np.clip(j - half, 0, m + 2 * half - 1)
        idx = j0[:, :, None] + np.arange(2 * half + 1)[None, None, :]                 # (s, K, W)
        # the W + 1 bin edges x - st/2 of the window (each shared by two neighbouring points)
        xe = x0 + st * (np.concatenate([idx, idx[:, :, -1:] + 1], axis=2) - 2 * half) - st / 2
        flat = (np.arange(s)[:, None, None] * (m + 4 * half) + idx).ravel()
        size = s * (m + 4 * half)

        def collect(w):
            return np.bincount(flat, weights=w.ravel(), minlength=size).reshape(s, m + 4 * half)[:, 2 * half:2 * half + m]
    else:  # uneven axis or Lorentzian broadening: every point
        cen = c[:, None] + orders[None, :] * r[:, None]
        xs = xv[None, None, :]

        def collect(w):
            return np.broadcast_to(w, (s, K, m)).sum(axis=1)
    ck = cen[:, :, None]
    s_ = sg[:, None, None]
    A = amp[:, None, None]
    Ik = I[:, :, None]
    if lor:   # a Voigt band (point values, as csa)
        from scipy.special import wofz

        z = (xs - ck + 1j * g[:, None, None]) / (s_ * math.sqrt(2))
        wz = wofz(z)
        norm = s_ * math.sqrt(2 * math.pi)
        G = np.real(wz) / norm
    else:     # the bin-integrated Gaussian of csa: CDF differences at the bin edges
        if binned:  # each window's W + 1 edges, shared by neighbouring points
            sgn = 1.0 if grid[1] > 0 else -1.0
            ue = (xe - ck) / s_
            Fe = ndtr(ue)
            G = sgn * np.diff(Fe, axis=2) / dx
        else:
            ua, ub = (xs + dx / 2 - ck) / s_, (xs - dx / 2 - ck) / s_
            G = (ndtr(ua) - ndtr(ub)) / dx
    val = collect(A * Ik * G)
    if not want:
        return val, None
    if lor:
        dw = -2 * z * wz + 2j / math.sqrt(math.pi)
        Gc = np.real(dw * (-1 / (s_ * math.sqrt(2)))) / norm
        Gs = np.real(dw * (-z / s_)) / norm - G / s_
        Gg = np.real(dw * (1j / (s_ * math.sqrt(2)))) / norm
    else:     # dG/dgamma at gamma = 0 from the Voigt (point value): the direction a free gamma takes
        from scipy.special import dawsn

        if binned:
            pe = np.exp(-ue * ue / 2) / _S2PI
            Gc = -sgn * np.diff(pe, axis=2) / (s_ * dx)
            Gs = -sgn * np.diff(ue * pe, axis=2) / (s_ * dx)
            zz = (xe[:, :, :-1] + st / 2 - ck) / (s_ * math.sqrt(2))
        else:
            pa, pb = np.exp(-ua * ua / 2) / _S2PI, np.exp(-ub * ub / 2) / _S2PI
            Gc = -(pa - pb) / (s_ * dx)
            Gs = -(ua * pa - ub * pb) / (s_ * dx)
            zz = (xs - ck) / (s_ * math.sqrt(2))
        Gg = (2 * zz * dawsn(zz) - 1) / (math.pi * s_ * s_)
    dR = dIr[:, :, None] / r[:, None, None]        # dI/d delta (rho = delta / rate)
    o = orders[None, :, None]
    grads = [collect(Ik * G), collect(A * Ik * Gc), collect(A * dR * G), collect(A * dIe[:, :, None] * G),
             collect(A * Ik * Gs), collect(A * Ik * Gg),
             collect(A * (Ik * Gc * o - dR * (d / r)[:, None, None] * G))]
    return val, grads


def _static_grads(xv, rows, amp, c, d, e, sg, g, r, val):
    """Derivatives of static (or very slowly spinning) CSA rows: amplitude exact, the others by
    central differences of :func:`csa`."""
    out = [np.zeros((rows.size, xv.size)) for _ in range(7)]
    for k, i in enumerate(rows):
        rate = float(r[i]) if r[i] > 0 else 0.0
        out[0][k] = val[i] / amp[i] if amp[i] else csa(xv, 1.0, c[i], d[i], e[i], sg[i], g[i], rate)
        base = [amp[i], c[i], d[i], e[i], sg[i], g[i], rate]
        for q, pos in ((1, 1), (2, 2), (3, 3), (4, 4), (5, 5)):
            h = 1e-4 * max(abs(base[pos]), 1e-2 if pos != 3 else 1.0)
            lo_, hi_ = list(base), list(base)
            lo_[pos] -= h
            hi_[pos] += h
            if pos in (3,):
                lo_[pos], hi_[pos] = max(lo_[pos], 0.0), min(hi_[pos], 1.0)
            if pos in (4, 5):
                lo_[pos] = max(lo_[pos], 0.0)
            out[q][k] = (csa(xv, *hi_) - csa(xv, *lo_)) / (hi_[pos] - lo_[pos])
    return out


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


@functools.lru_cache(maxsize=1)
def _code_tag() -> str:
    """A digest of this module and mrsimulator's version: a kernel built by other code is never reused."""
    import hashlib

    with open(__file__, "rb") as f:
        return hashlib.sha256(f.read() + _mrsim_version().encode()).hexdigest()[:12]


def _cached(name, build):
    """``build()`` -> dict of arrays, cached on disk as ``name``.npz (rebuilt if unreadable). Arrays only:
    loaded with ``allow_pickle=False`` (nothing read from disk is unpickled)."""
    d = _cache_dir()
    path = os.path.join(d, f"{name}-{_code_tag()}.npz") if d else None
    if path and os.path.exists(path):
        try:
            with np.load(path, allow_pickle=False) as f:
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


def disk_cached(name: str, build):
    """``build()`` -> dict of arrays, cached on disk as ``name``.npz in ``$SPECPROC_CACHE`` (or
    ``~/.cache/specproc``) and rebuilt when unreadable: the one disk cache of the NMR kernels."""
    return _cached(name, build)


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
    """Area-normalised Czjzek-distributed CT line (static when ``rate_ppm == 0``, else fast MAS);
    parameters of shape ``(n, 1)`` give ``(n, m)`` curves."""
    args = (amplitude, center, sigma_mhz, sigma, gamma, larmor_mhz, spin, rate_ppm)
    shp = _stacked(args)
    if shp is not None:
        xv = np.asarray(x, float).reshape(-1)
        rows = np.broadcast_arrays(*[np.asarray(a, float) for a in args])
        lead = rows[0].shape[:-1] if rows[0].ndim > 1 else rows[0].shape
        flat = [r.reshape(-1) if rows[0].ndim == 1 else r.reshape(-1, r.shape[-1])[:, 0] for r in rows]
        out = np.array([czjzek(xv, *[float(f[i]) for f in flat]) for i in range(flat[0].size)])
        return out.reshape(lead + (xv.size,)) if rows[0].ndim > 1 else out
    w, K = czjzek_kernel(float(spin), not (rate_ppm and rate_ppm > 0))
    scale = max(float(sigma_mhz) ** 2 / float(larmor_mhz) ** 2 * 1e6, 1e-9)  # ppm per unit w
    return _render_cdf(x, amplitude, float(sigma), float(gamma),
                       lambda e: np.interp((e - center) / scale, w, K, left=0.0, right=1.0))


# ============================================================================ CT under finite-speed MAS
#: step of the node grid in x = f ν_Q2 / ν_r (f: the spin factor), bins of the normalised support
_CTS_H, _CTS_NS = 0.025, 160
#: x = f ν_Q2 / ν_r beyond which spinning is too slow for the sideband kernel (use the static CT)
_CTS_XMAX = 12.0
_MAGIC = math.acos(1 / math.sqrt(3))


def ct_bracket(eta, bx, by, bz):
    """``A cos⁴θ + B cos²θ + C`` of the static second-order CT frequency for B0 along ``b`` in the
    EFG principal frame (``ν = -(3/2) f [...] ν_Q2``, ν_Q2 = CQ²/ν0, f the spin factor), written as
    a polynomial of b (cos 2φ sin²θ = bx² − by²), so it is smooth at the poles."""
    c2 = bz * bz
    d = bx * bx - by * by
    return (-27 / 8 * c2 * c2 + 30 / 8 * c2 - 3 / 8 + eta * eta * (1 / 3 - c2 / 2)
            - eta * d * (9 / 4 * c2 + 1 / 4) - 3 / 8 * eta * eta * d * d)


@functools.lru_cache(maxsize=4)
def _ct_orientations(nb: int):
    """Powder weights W (O,) and B0 in the principal frame over one rotor period (3 arrays (O, 16):
    the CT frequency holds rotor harmonics up to the 4th, so 16 samples give it exactly)."""
    W, ex, ey, ez = _octant_frames(nb)
    tau = 2 * math.pi * np.arange(16) / 16
    st, ct = math.sin(_MAGIC), math.cos(_MAGIC)
    b = (st * (ex[:, :, None] * np.cos(tau) + ey[:, :, None] * np.sin(tau)) + ct * ez[:, :, None])
    return W, b[0], b[1], b[2]


def _ct_support(spin: float, eta: float):
    """(u_lo, u_hi) of the infinite-speed CT line of ``eta`` (u = offset / ν_Q2), from the library's
    cumulative distribution (linear in η between its nodes, as every evaluation)."""
    u, cdf = ct_library(spin, False)
    e = float(np.clip(eta, 0.0, 1.0)) * (ETA_GRID.size - 1)
    i = min(int(e), ETA_GRID.size - 2)
    G = (1 - (e - i)) * cdf[i] + (e - i) * cdf[i + 1]
    return float(u[np.searchsorted(G, 1e-7)]), float(u[min(np.searchsorted(G, 1 - 1e-7), u.size - 1)]), G


def _ct_nb(x: float) -> int:
    """Orientations per axis (cos β Gauss–Legendre x α midpoints on one octant: the tensor's
    symmetry) for x = f ν_Q2/ν_r: 64 resolve the sideband weights within 0.1 % of mrsimulator's
    line up to x ≈ 0.6 (11B, CQ 2.6 MHz at 9.4 T and 5 kHz is 0.9), 128 beyond (64 were 2 % off at 1.5)."""
    return 64 if x < 0.6 else 128


@functools.lru_cache(maxsize=64)
def _ct_eta_node(s2: int, i: int, nb: int):
    """Per-crystallite data of η = i/20 that every rate shares: rotor harmonics 1..4 of the CT
    frequency (O, 4) and their conjugates, the support bin of each crystallite's infinite-speed
    frequency, and the powder weight in each bin."""
    f = _spin_factor(s2)
    W, bx, by, bz = _ct_orientations(nb)
    g = -1.5 * f * ct_bracket(i / 20, bx, by, bz)           # (O, 16) in units of nu_Q2
    G = np.fft.fft(g, axis=1) / 16
    lo, hi, _ = _ct_support(s2 / 2, i / 20)
    s = np.clip((G[:, 0].real - lo) / max(hi - lo, 1e-12), 0.0, 1.0 - 1e-12)
    sb = (s * _CTS_NS).astype(int)
    return G[:, 1:5].copy(), G[:, 12:16][:, ::-1].copy(), sb, np.bincount(sb, weights=W, minlength=_CTS_NS)


@functools.lru_cache(maxsize=1024)
def _ct_sideband_node(s2: int, i: int, j: int):
    """Sideband weights of node (η = i/20, x = j·h) (x = f ν_Q2/ν_r): ``(K, M (2K+1, NS))`` where
    ``M[N, s]`` is the mean intensity of sideband N over the crystallites whose infinite-speed
    frequency sits at the normalised position s of the line's support (Σ_N M = 1: Parseval).

    Per crystallite the CT frequency over a rotor period ν(τ) = ν̄ + Δν(τ) gives the γ-averaged
    sideband intensities I_N = |F_N|², F_N the Fourier coefficients of exp(iΦ), Φ = 2π ∫Δν dt
    (Maricq & Waugh 1979; Herzfeld & Berger 1980): the spectrum is Σ_N <I_N δ(ν − ν̄ − N ν_r)>, so
    sideband N has the infinite-speed line's shape weighted by M_N(ν̄). Used with the library's
    exact infinite-speed line (:func:`ct_library`), the weights only need to be smooth."""
    x = j * _CTS_H
    if x <= 0:
        return 0, np.ones((1, _CTS_NS))
    out = _cached(f"ctsb_s{s2}_{i}_{j}_{_CTS_H:g}_{_CTS_NS}_{_ct_nb(x)}_{_mrsim_version()}",
                  lambda: _ct_sideband_build(s2, i, j))
    return int(out["k"]), out["m"]


def _ct_sideband_build(s2: int, i: int, j: int) -> dict:
    """The arrays of :func:`_ct_sideband_node` (cached on disk: ~0.05-0.2 s per node to build)."""
    f = _spin_factor(s2)
    x = j * _CTS_H
    nb = _ct_nb(x)
    W = _ct_orientations(nb)[0]
    Gp, Gm, sb, wsum = _ct_eta_node(s2, i, nb)
    rho = x / f                                                # nu_Q2 / nu_r
    m = 1 << int(math.ceil(math.log2(max(32.0, 12 * x + 24))))
    spec = np.zeros((W.size, m), complex)
    for k in (1, 2, 3, 4):                                     # Phi = 2 pi rho * integral of (g - gbar) d tau
        spec[:, k] = Gp[:, k - 1] / (1j * k) * m
        spec[:, m - k] = Gm[:, k - 1] / (-1j * k) * m
    phi = rho * np.fft.ifft(spec, axis=1).real                 # the integral is real
    F = np.fft.fft(np.exp(1j * phi), axis=1) / m
    I = F.real ** 2 + F.imag ** 2
    orders = np.fft.fftfreq(m, 1.0 / m).astype(int)
    keep = I.T @ W > 1e-7
    K = int(np.max(np.abs(orders[keep])))
    M = np.zeros((2 * K + 1, _CTS_NS))
    for n in range(-K, K + 1):
        M[n + K] = np.bincount(sb, weights=W * I[:, n % m], minlength=_CTS_NS)
    good = wsum > 0
    M[:, good] /= wsum[good]
    centres = np.arange(_CTS_NS) + 0.5
    for row in M:  # bins no crystallite falls in: interpolated from their neighbours
        row[~good] = np.interp(centres[~good], centres[good], row[good])
    return {"k": np.array(K), "m": M}


def ct_sideband_cdfs(spin: float, eta: float, x: float):
    """(u grid (library bin edges), orders -K..K, cumulative distributions (2K+1, n_u)) of the CT
    under MAS at ``x = f ν_Q2/ν_r``: the infinite-speed line of η split into its sidebands
    (:func:`_ct_sideband_node` blended bilinearly between the four nodes around (η, x)); sideband
    N sits at ``u + N / ρ`` (ρ = ν_Q2 / ν_r). Σ_N of the last column is 1."""
    s2 = _twice_spin(spin)
    if x > _CTS_XMAX:
        raise ValueError(f"quadrupolar CT: f CQ²/(ν0 ν_r) = {x:.3g} > {_CTS_XMAX}: spinning too slow for the "
                         "sideband kernel; fit the static line (rate 0)")
    eta = float(np.clip(eta, 0.0, 1.0))
    ei = min(int(eta * 20), 19)
    te = eta * 20 - ei
    xj = int(x / _CTS_H)
    tx = x / _CTS_H - xj
    nodes = [(ei, xj, (1 - te) * (1 - tx)), (ei + 1, xj, te * (1 - tx)), (ei, xj + 1, (1 - te) * tx),
             (ei + 1, xj + 1, te * tx)]
    parts = [(w, _ct_sideband_node(s2, a, b)) for a, b, w in nodes if w > 0]
    K = max(k for _w, (k, _m) in parts)
    M = np.zeros((2 * K + 1, _CTS_NS))
    for w, (k, Mk) in parts:
        M[K - k:K + k + 1] += w * Mk
    u, _cdf = ct_library(spin, False)
    lo, hi, G = _ct_support(spin, eta)
    a, b = max(int(np.searchsorted(u, lo)) - 2, 0), min(int(np.searchsorted(u, hi)) + 2, u.size)
    # the line's support only (the distributions are constant outside it); every library edge: a
    # decimated grid that moved with eta made the line jitter in eta, and lmfit's differences with it
    u, G = u[a:b], G[a:b]
    uc = 0.5 * (u[1:] + u[:-1])
    sc = np.clip((uc - lo) / max(hi - lo, 1e-12), 0.0, 1.0) * _CTS_NS - 0.5
    i0 = np.clip(np.floor(sc).astype(int), 0, _CTS_NS - 1)
    i1 = np.minimum(i0 + 1, _CTS_NS - 1)
    t = np.clip(sc - i0, 0.0, 1.0)
    mass = np.diff(G)
    C = np.zeros((2 * K + 1, u.size))
    C[:, 1:] = np.cumsum(mass[None, :] * ((1 - t) * M[:, i0] + t * M[:, i1]), axis=1)
    C /= max(C[:, -1].sum(), 1e-300)
    C[:, 0] = 0.0
    return u, np.arange(-K, K + 1), C


def ct_mas(x, amplitude=1.0, center=0.0, cq_mhz=2.0, eta=0.5, sigma=0.5, gamma=0.0, larmor_mhz=100.0, spin=1.5,
           rate_ppm=0.0):
    """Area-normalised CT line of one quadrupolar site under MAS at a **finite** rate (``rate_ppm`` =
    Hz / Larmor MHz), its spinning sidebands included; infinite speed when ``rate_ppm`` is inf,
    static when 0. ``center`` is δiso (ppm), ``cq_mhz`` CQ, ``sigma`` / ``gamma`` the Gaussian SD /
    Lorentzian HWHM broadening (ppm). The kernel is :func:`ct_sideband_cdfs` (nodes of (η, CQ) per
    rate, computed once per node from the orientation grid; no spin-system simulation per call)."""
    scale = max(float(cq_mhz) ** 2 / float(larmor_mhz) ** 2 * 1e6, 1e-12)   # nu_Q2 in ppm
    rate = float(rate_ppm)
    if rate <= 0 or not math.isfinite(rate):
        u, cdf = ct_library(float(spin), rate <= 0)
        e = float(np.clip(eta, 0.0, 1.0)) * (ETA_GRID.size - 1)
        i = min(int(e), ETA_GRID.size - 2)
        G = (1 - (e - i)) * cdf[i] + (e - i) * cdf[i + 1]
        return _render_cdf(x, amplitude, float(sigma), float(gamma),
                           lambda ed: np.interp((ed - center) / scale, u, G, left=0.0, right=1.0))
    f = _spin_factor(_twice_spin(spin))
    u, orders, C = ct_sideband_cdfs(float(spin), float(eta), f * scale / rate)
    keep = C[:, -1] > 1e-9

    def cdf(ed):
        out = 0.0
        for n, row in zip(orders[keep], C[keep]):
            out = out + np.interp((ed - center - n * rate) / scale, u, row, left=0.0, right=row[-1])
        return out

    return _render_cdf(x, amplitude, float(sigma), float(gamma), cdf)


# ============================================================================ quadrupolar CT site: registry model + batch kernel
#: ``rate_ppm`` of the ``quadrupolar`` model for MAS at infinite speed (the CT line alone, no spinning
#: sidebands: the rate is unknown or fast enough); 0 is the static powder pattern and a positive rate
#: finite-speed MAS with the sidebands computed by the model. (Not ``inf``: the batch engine maps fixed
#: parameters through a matrix product, where an infinite value turns every other parameter into NaN.)
FAST_MAS = -1.0
_QUAD_PARAMS = ("amplitude", "center", "cq_mhz", "eta", "sigma", "gamma", "larmor_mhz", "spin", "rate_ppm")


def ct_extent(cq_mhz: float, larmor_mhz: float, spin: float, static: bool = False) -> tuple[float, float]:
    """(lo, hi) ppm of one site's CT line relative to δiso (no broadening): [-1.05, 0.25] f ν_Q2 at
    infinite-speed MAS, [-2.4, 1.3] f ν_Q2 static (the library's windows), f the spin factor."""
    w = float(cq_mhz) ** 2 / float(larmor_mhz) ** 2 * 1e6 * _spin_factor(_twice_spin(spin))
    return (-2.4 * w, 1.3 * w) if static else (-1.05 * w, 0.25 * w)


def _too_slow(xq: float) -> str:
    return (f"quadrupolar CT: f CQ²/(ν0 ν_r) = {xq:.3g} > {_CTS_XMAX}: spinning too slow for the "
            "sideband kernel; fit the static line (rate 0)")


class _Dense:
    """Cumulative tables given as arrays ``(L, nu)`` (the library line: one band)."""

    def __init__(self, u0, du, orders, C, Ce, Cx):
        self.u0, self.du, self.orders, self.nu = u0, du, orders, C.shape[1]
        self._t = {"C": C, "Ce": Ce, "Cx": Cx}

    def has(self, which):
        return self._t[which] is not None

    def at(self, which, row, k):
        return self._t[which].ravel()[row * self.nu + k]

    def last(self, which):
        return self._t[which][:, -1]


class _Runs:
    """The sideband tables of :func:`ct_sideband_cdfs` without the tables: ``C_N(k) = Σ_{k'<k} mass_k'
    ((1 - t_k') M_N[i0_k'] + t_k' M_N[i0_k' + 1])`` with ``i0`` non-decreasing in k' (the support's
    160 bins), so ``C_N(k)`` = (bins completed before k, a cumulative sum over 160 bins per band) +
    (the part of k's own bin: two scalar cumulative sums over k). The same numbers as the cumulative
    sum over every library point of every band, at the cost of the points asked for (the library has
    ~40 points per data point of a usual spectrum; the full tables cost ~10 ms per site and evaluation)."""

    def __init__(self, u0, du, orders, M, dMe, dMx, i0, a, b, da, db):
        NS = M.shape[1]
        self.u0, self.du, self.nu = u0, du, i0.size + 1
        i1b = np.minimum(np.arange(NS) + 1, NS - 1)
        rs = np.searchsorted(i0, np.arange(NS + 1))                 # first mass of each bin (runs: i0 sorted)

        def cum(w):
            return np.concatenate([[0.0], np.cumsum(w)])

        cA, cB, cdA, cdB = cum(a), cum(b), cum(da), cum(db)
        sk = i0[np.maximum(np.arange(self.nu) - 1, 0)]             # the bin of the last mass summed
        rk = rs[sk]
        # per point: the weights of its own bin's M[s] and M[s + 1]
        self._w = {"a": cA - cA[rk], "b": cB - cB[rk], "da": cdA - cdA[rk], "db": cdB - cdB[rk]}
        self._sk, self._i1 = sk, i1b

        def completed(Mx, A_, B_):   # (L, NS + 1): Σ over the bins before s
            Asum, Bsum = A_[rs[1:]] - A_[rs[:-1]], B_[rs[1:]] - B_[rs[:-1]]
            return np.hstack([np.zeros((Mx.shape[0], 1)), np.cumsum(Asum * Mx + Bsum * Mx[:, i1b], axis=1)])

        self._q = {"C": [(completed(M, cA, cB), M, "a", "b")],
                   "Ce": [(completed(M, cdA, cdB), M, "da", "db"), (completed(dMe, cA, cB), dMe, "a", "b")],
                   "Cx": [(completed(dMx, cA, cB), dMx, "a", "b")]}
        end = np.full(orders.size, self.nu - 1)
        raw = {w: self._raw(w, np.arange(orders.size), end) for w in ("C", "Ce", "Cx")}
        S = max(float(raw["C"].sum()), 1e-300)
        self._S = S
        self._dS = {w: float(raw[w].sum()) / S for w in ("Ce", "Cx")}
        keep = raw["C"] / S > 1e-9                                  # as ct_mas: bands of < 1e-9 of the area
        self.orders, self._rows = orders[keep], np.nonzero(keep)[0]
        self._last = {w: self._norm(w, raw[w][keep], raw["C"][keep]) for w in raw}

    def _raw(self, which, row, k):
        s = self._sk[k]
        out = 0.0
        for Q, Mx, wa, wb in self._q[which]:
            out = out + Q[row, s] + self._w[wa][k] * Mx[row, s] + self._w[wb][k] * Mx[row, self._i1[s]]
        return out

    def _norm(self, which, v, c):
        return v / self._S if which == "C" else v / self._S - (c / self._S) * self._dS[which]

    def has(self, which):
        return True

    def at(self, which, row, k):
        r = self._rows[row]
        v = self._raw(which, r, k)
        return self._norm(which, v, v if which == "C" else self._raw("C", r, k))

    def last(self, which):
        return self._last[which]


@functools.lru_cache(maxsize=16)
def _ct_tables(spin: float, eta: float, xq: float, static: bool):
    """Cumulative CT distributions of one site per sideband and their exact derivatives in η and in
    ``xq = f ν_Q2/ν_r``, on a uniform grid ``u = u0 + du k`` (u = offset / ν_Q2): a :class:`_Dense`
    or :class:`_Runs` (``at(which, band, k)`` of ``"C"``, ``"Ce"`` = dC/dη, ``"Cx"`` = dC/dxq).

    ``xq == 0``: one band, the library line (static with ``static``, else MAS at infinite speed),
    linear in η between its nodes (:func:`ct_library`). ``xq > 0``: the sideband distributions of
    :func:`ct_sideband_cdfs` (same nodes, same blending, same normalisation), whose derivatives are
    those of that piecewise-(bi)linear interpolant: the blend weights of the (η, xq) nodes and the
    library's η interpolation differentiated exactly (the support bounds, steps of the library grid,
    are held). Bands carrying < 1e-9 of the area are dropped, as :func:`ct_mas` does.
    """
    eta = float(np.clip(eta, 0.0, 1.0))
    ne = ETA_GRID.size - 1
    e = eta * ne
    i = min(int(e), ne - 1)
    if xq <= 0:
        u, cdf = ct_library(spin, static)
        G = (1 - (e - i)) * cdf[i] + (e - i) * cdf[i + 1]
        du = float(u[-1] - u[0]) / (u.size - 1)
        return _Dense(float(u[0]), du, np.zeros(1), G[None], ((cdf[i + 1] - cdf[i]) * ne)[None], None)
    if xq > _CTS_XMAX:
        raise ValueError(_too_slow(xq))
    s2 = _twice_spin(spin)
    ei = min(int(eta * 20), 19)
    te = eta * 20 - ei
    xj = int(xq / _CTS_H)
    tx = xq / _CTS_H - xj
    # all four nodes, also one of zero weight: the derivative needs both ends of each interval
    nodes = {(a, b): _ct_sideband_node(s2, a, b) for a in (ei, ei + 1) for b in (xj, xj + 1)}
    K = max(k for k, _m in nodes.values())

    def full(a, b):
        k, Mk = nodes[(a, b)]
        out = np.zeros((2 * K + 1, _CTS_NS))
        out[K - k:K + k + 1] = Mk
        return out

    M00, M10, M01, M11 = full(ei, xj), full(ei + 1, xj), full(ei, xj + 1), full(ei + 1, xj + 1)
    M = (1 - te) * (1 - tx) * M00 + te * (1 - tx) * M10 + (1 - te) * tx * M01 + te * tx * M11
    dMe = 20 * ((1 - tx) * (M10 - M00) + tx * (M11 - M01))
    dMx = ((1 - te) * (M01 - M00) + te * (M11 - M10)) / _CTS_H
    u, cdf = ct_library(spin, False)
    lo, hi, G = _ct_support(spin, eta)
    dG = (cdf[i + 1] - cdf[i]) * ne
    a, b = max(int(np.searchsorted(u, lo)) - 2, 0), min(int(np.searchsorted(u, hi)) + 2, u.size)
    u, G, dG = u[a:b], G[a:b], dG[a:b]
    uc = 0.5 * (u[1:] + u[:-1])
    sc = np.clip((uc - lo) / max(hi - lo, 1e-12), 0.0, 1.0) * _CTS_NS - 0.5
    i0 = np.clip(np.floor(sc).astype(int), 0, _CTS_NS - 1)
    t = np.clip(sc - i0, 0.0, 1.0)
    mass, dmass = np.diff(G), np.diff(dG)
    du = float(u[-1] - u[0]) / (u.size - 1)
    return _Runs(float(u[0]), du, np.arange(-K, K + 1).astype(float), M, dMe, dMx, i0, mass * (1 - t), mass * t,
                 dmass * (1 - t), dmass * t)


def _edge_sums(e0, de, ne, c, s, rate, tab, want):
    """Σ_N of the site's cumulative distributions at the edges ``e0 + de j`` (j < ne) of a uniform
    grid, sideband N centred at ``c + N rate``; with ``want`` also their derivatives in c, in the
    scale s (= ν_Q2 in ppm: through u = (e - c - N rate)/s), in η and in xq. Each band is
    interpolated only on the edges inside its support (zero left of it, its total right of it),
    every band of the site in one gather."""
    u0, du, orders, nu = tab.u0, tab.du, tab.orders, tab.nu
    L = orders.size
    shift = c + orders * rate if L > 1 or orders[0] else np.array([c])
    span = du * (nu - 1)
    j0 = np.clip(np.ceil((shift + s * u0 - e0) / de), 0, ne).astype(np.int64)
    j1 = np.clip(np.floor((shift + s * (u0 + span) - e0) / de) + 1, 0, ne).astype(np.int64)
    j1 = np.maximum(j1, j0)
    lens = j1 - j0
    tot = int(lens.sum())
    row = np.repeat(np.arange(L), lens)
    edge = np.arange(tot) - np.repeat(np.cumsum(lens) - lens, lens) + np.repeat(j0, lens)
    tt = (e0 + de * edge - shift[row]) / s
    kk = (tt - u0) / du
    ki = np.clip(np.floor(kk).astype(np.int64), 0, nu - 2)
    f = np.clip(kk - ki, 0.0, 1.0)

    def sums(which, keep_slope=False):
        a0, a1 = tab.at(which, row, ki), tab.at(which, row, ki + 1)
        out = np.bincount(edge, weights=a0 + f * (a1 - a0), minlength=ne)
        right = np.zeros(ne + 1)
        np.add.at(right, j1, tab.last(which))
        out += np.cumsum(right)[:ne]
        return (out, (a1 - a0) / du) if keep_slope else out

    if not want:
        return sums("C"), None, None, None, None
    G, p = sums("C", True)                                      # p: dC/du of the interpolant
    Gc = -np.bincount(edge, weights=p, minlength=ne) / s
    Gs = -np.bincount(edge, weights=p * tt, minlength=ne) / s
    return G, Gc, Gs, sums("Ce"), sums("Cx") if tab.has("Cx") else None


def _quad_eval(x, amp, c, cq, eta, sg, gm, lar, spin, rate, strict: bool):
    """Values ``(n, m)`` of n quadrupolar CT sites on ``x`` and a function giving their 9 derivative
    arrays. Every row is :func:`ct_mas`'s computation (bin-integrated on the data's grid padded by
    6 SD + 40 HWHM, broadened by FFT): the tables come from :func:`_ct_tables` per row, the edges of
    all bands of a row are one gather, and the broadening of the whole stack and of the derivatives
    is one batched FFT. A row spinning too slowly for the sideband kernel raises (``strict``) or is
    NaN (the batch engine then rejects that trial point). ``x`` may be uneven (a masked window):
    the rows are then computed on the even grid that spans it and taken at its points."""
    from scipy import fft as sfft

    xv = np.asarray(x, float).reshape(-1)
    n = amp.size
    m0 = xv.size
    dx = float(np.median(np.abs(np.diff(xv)))) if m0 > 1 else 1.0
    dx = dx or 1.0
    desc = bool(m0 > 1 and xv[0] > xv[-1])
    lo_x = float(np.min(xv))
    grid = _uniform(xv)
    if m0 > 1 and grid is None:           # uneven: the even grid through min(x) with the median step
        m = int(round((float(np.max(xv)) - lo_x) / dx)) + 1
        pick = np.clip(np.rint((xv - lo_x) / dx).astype(np.int64), 0, m - 1)
        desc = False
    else:
        m, pick = m0, None
    sgp, gmp = np.maximum(sg, 0.0), np.maximum(gm, 0.0)
    pad = int(min(math.ceil((6 * float(sgp.max()) + 40 * float(gmp.max())) / dx) + 2, 4 * m))
    ne = m + 2 * pad + 1
    e0 = lo_x - pad * dx - dx / 2
    if float(gmp.max()) > 0:   # Lorentzian tails: ct_mas's transform length (twice the padded grid)
        nfft = 1 << int(math.ceil(math.log2(2 * (ne - 1) + 8)))
    else:   # a Gaussian reaches 6 SD < pad: no wrap-around onto the kept points (4x shorter transforms)
        nfft = sfft.next_fast_len(ne - 1 + pad, real=True)
    G = np.zeros((n, ne))
    D = np.zeros((4, n, ne))          # d/dc, d/dscale, d/deta of G (the last: spare)
    dscale = np.zeros(n)
    bad = np.zeros(n, bool)
    for r in range(n):
        scale = float(cq[r]) ** 2 / float(lar[r]) ** 2 * 1e6
        dscale[r] = 2 * float(cq[r]) / float(lar[r]) ** 2 * 1e6 if scale > 1e-12 else 0.0
        scale = max(scale, 1e-12)
        rr = float(rate[r])
        xq = 0.0
        if rr > 0 and math.isfinite(rr):
            xq = _spin_factor(_twice_spin(spin[r])) * scale / rr
            if xq > _CTS_XMAX:
                if strict:
                    raise ValueError(_too_slow(xq))
                bad[r] = True
                continue
        tab = _ct_tables(float(spin[r]), float(np.clip(eta[r], 0.0, 1.0)), xq, rr == 0)
        g, gc, gs, ge, gx = _edge_sums(e0, dx, ne, float(c[r]), scale, rr, tab, True)
        G[r], D[0, r], D[2, r] = g, gc, ge
        D[1, r] = gs if gx is None else gs + gx * _spin_factor(_twice_spin(spin[r])) / rr
    k = np.fft.rfftfreq(nfft, dx)[None, :]
    H = np.exp(-2 * (math.pi * sgp[:, None] * k) ** 2 - 2 * math.pi * gmp[:, None] * k)
    F = sfft.rfft(np.abs(np.diff(G, axis=1)) / dx, nfft, axis=1)
    sl = slice(pad, pad + m)

    def crop(a):
        a = a[:, sl]
        if pick is not None:
            return a[:, pick]
        return a[:, ::-1] if desc else a

    unit = crop(sfft.irfft(F * H, nfft, axis=1))
    val = amp[:, None] * unit
    val[bad] = np.nan

    def grads():
        FD = sfft.rfft(np.diff(D[:3], axis=2) / dx, nfft, axis=2)      # (3, n, nk)
        A = amp[:, None]
        dc, ds, de = (A * crop(sfft.irfft(FD[q] * H, nfft, axis=1)) for q in range(3))
        dsig = A * crop(sfft.irfft(F * H * (-4 * math.pi ** 2 * sgp[:, None] * k * k), nfft, axis=1))
        dgam = A * crop(sfft.irfft(F * H * (-2 * math.pi * k), nfft, axis=1))
        dsig[sg < 0] = 0.0
        dgam[gm < 0] = 0.0
        de[(eta < 0) | (eta > 1)] = 0.0
        z = np.zeros_like(val)
        out = [unit.copy(), dc, ds * dscale[:, None], de, dsig, dgam, z, z, z]
        for a in out:
            a[bad] = np.nan
        return out

    return val, grads


def _columns(args):
    """Parameter arrays of any broadcastable shapes (scalars, ``(n, 1)``...) -> flat float columns."""
    n = max(int(np.size(a)) for a in args)
    return [np.broadcast_to(np.asarray(a, float).reshape(-1), (n,)).astype(float) for a in args]


def d_quadrupolar(x, amplitude, center, cq_mhz, eta, sigma, gamma, larmor_mhz, spin, rate_ppm):
    """Batch-engine kernel of ``quadrupolar``: values ``(n, m)`` of a stack of quadrupolar CT sites
    (parameters ``(n, 1)``, ``x`` ``(1, m)``) and their derivatives in every parameter (the analytic
    derivatives of :func:`ct_mas`'s computation: in the centre and CQ through the scaled axis, in η
    and CQ through the tables' interpolants (:func:`_ct_tables`), in the Gaussian / Lorentzian
    broadening through the FFT kernel; zero in the fixed context). Declared to the engine as
    ``quadrupolar.batch_kernel``."""
    cols = _columns((amplitude, center, cq_mhz, eta, sigma, gamma, larmor_mhz, spin, rate_ppm))
    val, grads = _quad_eval(x, *cols, strict=False)
    return _Grads(val, grads, len(_QUAD_PARAMS) + 1)


def quadrupolar(x, amplitude=1.0, center=0.0, cq_mhz=2.0, eta=0.5, sigma=0.5, gamma=0.0, larmor_mhz=100.0, spin=1.5,
                rate_ppm=0.0):
    """Area-normalised central-transition line of one half-integer quadrupolar site (CQ ``cq_mhz``,
    asymmetry ``eta``; ``center`` = δiso, ppm): the static powder pattern (``rate_ppm == 0``),
    finite-speed MAS with its spinning sidebands computed by the model (``rate_ppm > 0``, the rate in
    ppm = Hz / Larmor MHz), or MAS at infinite speed (``rate_ppm < 0``, :data:`FAST_MAS`); Gaussian
    (``sigma``, SD) and Lorentzian (``gamma``, HWHM) broadening in ppm. The same numbers as
    :func:`ct_mas` (its batch kernel :func:`d_quadrupolar` evaluates this computation), so the engine's
    optimum and lmfit's are one. Parameters of shape ``(n, 1)`` give ``(n, m)`` curves."""
    args = (amplitude, center, cq_mhz, eta, sigma, gamma, larmor_mhz, spin, rate_ppm)
    shp = _stacked(args)
    if shp is None:
        return _quad_eval(x, *_columns(args), strict=True)[0][0]
    xv = np.asarray(x, float).reshape(-1)
    lead = shp[:-1] if len(shp) > 1 else shp
    cols = [np.broadcast_to(np.asarray(a, float), shp).reshape(-1, shp[-1])[:, 0] if len(shp) > 1
            else np.broadcast_to(np.asarray(a, float), shp) for a in args]
    out = _quad_eval(xv, *_columns(cols), strict=False)[0]
    return out.reshape(tuple(lead) + (xv.size,)) if len(shp) > 1 else out


# ============================================================================ extended Czjzek
#: node grids of the extended Czjzek kernels: eta0 and eps (finer where the distribution is narrow)
EXT_ETA0 = np.linspace(0.0, 1.0, 21)
EXT_EPS = np.concatenate([np.arange(0.02, 0.5, 0.02), np.arange(0.5, 1.01, 0.05), [1.25, 1.5, 2.0, 3.0]])
_EXT_N, _EXT_NC, _EXT_NW = 200_000, 160, 4097


def _ext_samples(eta0: float, eps: float):
    """(|CQ| / CQ0, η) of the extended Czjzek distribution (Le Caër, Bureau & Massiot 2010) drawn by
    mrsimulator's ``ExtCzjzekDistribution`` with CQ0 = 1, from a fixed seed (a kernel is a
    deterministic function of its node). mrsimulator drops the dominant tensor when η0 == 0
    (``if zeta != 0 and eta != 0``): that node uses η0 = 1e-9 instead (the same tensor)."""
    from mrsimulator.models import ExtCzjzekDistribution

    state = np.random.get_state()
    try:
        np.random.seed(int(round(eta0 * 1000)) * 100_003 + int(round(eps * 1000)))
        cq, eta = ExtCzjzekDistribution({"Cq": 1.0, "eta": max(float(eta0), 1e-9)}, eps=float(eps),
                                        cache=False).rvs(_EXT_N)
    finally:
        np.random.set_state(state)
    return np.abs(np.asarray(cq, float)), np.clip(np.asarray(eta, float), 0.0, 1.0)


def _ext_node(spin: float, static: bool, i: int, j: int):
    """(w grid, cumulative CT line) of node (EXT_ETA0[i], EXT_EPS[j]) in ``w = offset / (CQ0²/ν0)``:
    the single-site library (:func:`ct_library`) integrated over the node's (|CQ|/CQ0, η) histogram
    (η split linearly between the library's η nodes, so no η binning error)."""
    s2 = _twice_spin(spin)

    def build():
        u, cdf = ct_library(spin, static)
        c, e = _ext_samples(float(EXT_ETA0[i]), float(EXT_EPS[j]))
        cmax = float(np.quantile(c, 0.9999)) * 1.02
        edges = np.linspace(0.0, cmax, _EXT_NC + 1)
        ci = np.clip(np.searchsorted(edges, c) - 1, 0, _EXT_NC - 1)
        pos = e * (ETA_GRID.size - 1)
        k0 = np.minimum(pos.astype(int), ETA_GRID.size - 2)
        fr = pos - k0
        P = np.zeros((_EXT_NC, ETA_GRID.size))
        np.add.at(P, (ci, k0), 1 - fr)
        np.add.at(P, (ci, k0 + 1), fr)
        P /= P.sum()
        cm = 0.5 * (edges[1:] + edges[:-1])
        w = np.linspace(u[0] * cmax ** 2, u[-1] * cmax ** 2, _EXT_NW)
        K = np.zeros_like(w)
        rows = np.nonzero(P.sum(axis=1) > 0)[0]
        mixed = P[rows] @ cdf   # linear interpolation is linear in the values: one interp per CQ bin
        for a, cd in zip(rows, mixed):
            K += np.interp(w / max(cm[a], 1e-6) ** 2, u, cd, left=0.0, right=P[a].sum())
        return {"w": w, "K": K / K[-1]}

    k = _cached(f"extcz_s{s2}_{'static' if static else 'mas'}_{EXT_ETA0[i]:.3f}_{EXT_EPS[j]:.3f}_{_EXT_N}_"
                f"{_EXT_NC}_{_mrsim_version()}", build)
    return k["w"], k["K"]


_ext_node_cached = functools.lru_cache(maxsize=256)(_ext_node)


def ext_czjzek(x, amplitude=1.0, center=0.0, cq0_mhz=2.0, eta0=0.5, eps=0.2, sigma=0.5, gamma=0.0,
               larmor_mhz=100.0, spin=1.5, rate_ppm=0.0):
    """Area-normalised CT line of a half-integer quadrupolar nucleus with an **extended Czjzek**
    distribution: a dominant tensor (``cq0_mhz``, ``eta0``) plus a Czjzek random part of relative
    size ``eps`` (mrsimulator's ``ExtCzjzekDistribution``: ρ = ‖S0‖ ε / √30). Static when
    ``rate_ppm == 0``, else fast MAS. The distribution of (|CQ|/CQ0, η) depends on (η0, ε) only and
    the CT of one site scales with CQ²/ν0, so each (η0, ε) node is one precomputed kernel in
    ``offset / (CQ0²/ν0)`` (built on first use, cached on disk); an evaluation blends the four
    nodes around (η0, ε) bilinearly (``EXT_ETA0`` step 0.05, ``EXT_EPS`` step 0.02 below 0.5).
    """
    args = (amplitude, center, cq0_mhz, eta0, eps, sigma, gamma, larmor_mhz, spin, rate_ppm)
    if _stacked(args) is not None:
        rows = np.broadcast_arrays(*[np.asarray(a, float) for a in args])
        xv = np.asarray(x, float).reshape(-1)
        lead = rows[0].shape[:-1] if rows[0].ndim > 1 else rows[0].shape
        flat = [r.reshape(-1) if rows[0].ndim == 1 else r.reshape(-1, r.shape[-1])[:, 0] for r in rows]
        out = np.array([ext_czjzek(xv, *[float(f[i]) for f in flat]) for i in range(flat[0].size)])
        return out.reshape(lead + (xv.size,)) if rows[0].ndim > 1 else out
    static = not (rate_ppm and rate_ppm > 0)
    e0 = float(np.clip(eta0, 0.0, 1.0))
    ep = float(np.clip(eps, EXT_EPS[0], EXT_EPS[-1]))
    i = min(int(np.searchsorted(EXT_ETA0, e0, side="right") - 1), EXT_ETA0.size - 2)
    j = min(int(np.searchsorted(EXT_EPS, ep, side="right") - 1), EXT_EPS.size - 2)
    ti = (e0 - EXT_ETA0[i]) / (EXT_ETA0[i + 1] - EXT_ETA0[i])
    tj = (ep - EXT_EPS[j]) / (EXT_EPS[j + 1] - EXT_EPS[j])
    scale = max(float(cq0_mhz) ** 2 / float(larmor_mhz) ** 2 * 1e6, 1e-9)  # ppm per unit w
    nodes = [(i, j, (1 - ti) * (1 - tj)), (i + 1, j, ti * (1 - tj)), (i, j + 1, (1 - ti) * tj),
             (i + 1, j + 1, ti * tj)]
    kern = [(wt, _ext_node_cached(float(spin), static, a, b)) for a, b, wt in nodes if wt > 0]

    def cdf(e):
        t = (e - center) / scale
        return sum(wt * np.interp(t, w, K, left=0.0, right=1.0) for wt, (w, K) in kern)

    return _render_cdf(x, amplitude, float(sigma), float(gamma), cdf)


# ============================================================================ registry glue
FUNCTIONS = {"csa": csa, "czjzek": czjzek, "ext-czjzek": ext_czjzek, "quadrupolar": quadrupolar}
# stacks of CSA spectra go through the batch engine with d_csa (fitting.batch reads this attribute and
# registers the kernel: this module does not import batch, which imports models -> lineshapes -> here)
csa.batch_kernel = ("csa", ("amplitude", "center", "delta_aniso_ppm", "eta", "sigma", "gamma", "rate_ppm"), d_csa)
quadrupolar.batch_kernel = ("quadrupolar", _QUAD_PARAMS, d_quadrupolar)


def _param_hints():
    return {
        "csa": {"delta_aniso_ppm": dict(value=50.0), "eta": dict(value=0.5, min=0.0, max=1.0),
                "gamma": dict(value=0.0, min=0.0, vary=False), "rate_ppm": dict(value=0.0, vary=False)},
        "czjzek": {"sigma_mhz": dict(value=1.0, min=1e-3, max=50.0), "gamma": dict(value=0.0, min=0.0, vary=False),
                   "larmor_mhz": dict(value=100.0, vary=False), "spin": dict(value=1.5, vary=False),
                   "rate_ppm": dict(value=0.0, vary=False)},
        "quadrupolar": {"cq_mhz": dict(value=2.0, min=1e-3, max=50.0), "eta": dict(value=0.5, min=0.0, max=1.0),
                        "gamma": dict(value=0.0, min=0.0, vary=False), "larmor_mhz": dict(value=100.0, vary=False),
                        "spin": dict(value=1.5, vary=False), "rate_ppm": dict(value=0.0, vary=False)},
        "ext-czjzek": {"cq0_mhz": dict(value=2.0, min=1e-3, max=50.0), "eta0": dict(value=0.5, min=0.0, max=1.0),
                       "eps": dict(value=0.2, min=float(EXT_EPS[0]), max=float(EXT_EPS[-1])),
                       "gamma": dict(value=0.0, min=0.0, vary=False), "larmor_mhz": dict(value=100.0, vary=False),
                       "spin": dict(value=1.5, vary=False), "rate_ppm": dict(value=0.0, vary=False)},
    }


def _class_name(shape: str) -> str:
    return shape.upper().replace("-", "") + "Model"


def _model_class(shape):
    import lmfit

    func = FUNCTIONS[shape]

    class _Model(lmfit.Model):
        def __init__(self, prefix="", **kws):
            super().__init__(func, prefix=prefix, **kws)
            for name, hint in _param_hints()[shape].items():
                self.set_param_hint(name, **hint)

    _Model.__name__ = _Model.__qualname__ = _class_name(shape)
    return _Model


def __getattr__(name):  # CSAModel, CZJZEKModel, EXTCZJZEKModel built on first use (lmfit imported lazily)
    for shape in FUNCTIONS:
        if name == _class_name(shape):
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
    if shape == "quadrupolar":
        lo, hi = ct_extent(v["cq_mhz"], v["larmor_mhz"], v["spin"], static=True)
        return c + lo - 6 * s - 10 * g, c + hi + 6 * s + 10 * g
    if shape == "ext-czjzek":
        scale = float(v["cq0_mhz"]) ** 2 / float(v["larmor_mhz"]) ** 2 * 1e6
        r = 3 * scale * (1 + 3 * float(v["eps"])) ** 2 * (2 if not v.get("rate_ppm") else 1)
        return c - r - 6 * s - 10 * g, c + r + 6 * s + 10 * g
    scale = float(v["sigma_mhz"]) ** 2 / float(v["larmor_mhz"]) ** 2 * 1e6
    r = 40 * scale * (2 if not v.get("rate_ppm") else 1)
    return c - r - 6 * s - 10 * g, c + r + 6 * s + 10 * g


def fwhm_value(shape: str, v: dict) -> float:
    """FWHM (ppm) of one model from its parameter values: the centre band's Voigt width under MAS
    (``csa``), else the whole pattern's, numerically (half-maximum crossings interpolated, so it is
    a continuous function of the parameters and its error can be propagated)."""
    if shape == "csa" and v.get("rate_ppm"):
        return _voigt_fwhm(float(v["sigma"]), float(v.get("gamma") or 0.0))
    if shape == "quadrupolar" and float(v.get("rate_ppm") or 0.0) != 0.0:
        v = dict(v, rate_ppm=FAST_MAS)   # the centre band's width: the line at infinite speed
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
