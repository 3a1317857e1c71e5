"""Lineshapes with analytic Jacobians, and the fused numba kernel of the batch engine.

Every component is written once as a plain function ``f(x, *params) -> (value, d/dp1, d/dp2, ...)``
that works on numpy arrays (the numpy path: parameters of shape ``(n, 1)`` against ``x`` of shape
``(m,)``) *and* on scalars (the same source is compiled by numba for the fused kernel), so both paths
share one definition of each derivative. Conventions are lmfit's (``sigma`` = Gaussian standard
deviation / Lorentzian HWHM; ``amplitude`` = area) so values agree with ``lmfit.lineshapes``.

Why a hand-written kernel: no maintained library solves thousands of small, independent nonlinear
least-squares problems at once (scipy/lmfit loop in Python, one problem at a time). The fused kernel
(:func:`normal_kernel`, ``parallel=True, cache=True``) accumulates ``J^T J``, ``J^T r`` and ``chi^2``
of each dataset block by block in cache, never storing the ``(n, m, p)`` Jacobian, in parallel over
datasets. (In the numba build the Gaussian skips its exp() beyond 8.9 sigma, where it is < 4e-18 of
its height; see :func:`_d_gaussian_scalar`.)
"""
from __future__ import annotations

import math
import types

import numpy as np

TINY = 1.0e-15
LN2 = math.log(2.0)
S2PI = math.sqrt(2.0 * math.pi)
S2 = math.sqrt(2.0)
SQPI = math.sqrt(math.pi)

# component kind codes (index into KINDS)
KINDS = ("gaussian", "lorentzian", "pseudo-voigt", "voigt", "pearson7", "constant", "linear", "polynomial",
         "powerlaw", "gl_product", "gl_sum", "hertz", "sneddon", "dmt")
CODE = {k: i for i, k in enumerate(KINDS)}
#: parameter names of each kind, in the order of the lmfit function signature
PARAMS = {
    "gaussian": ("amplitude", "center", "sigma"),
    "lorentzian": ("amplitude", "center", "sigma"),
    "pseudo-voigt": ("amplitude", "center", "sigma", "fraction"),
    "voigt": ("amplitude", "center", "sigma", "gamma"),
    "pearson7": ("amplitude", "center", "sigma", "expon"),
    "constant": ("c",),
    "linear": ("slope", "intercept"),
    "polynomial": None,  # c0..cN
    "powerlaw": ("amplitude", "exponent"),
    "gl_product": ("height", "center", "fwhm", "mixing"),
    "gl_sum": ("height", "center", "fwhm", "mixing"),
    "hertz": ("E", "R", "nu", "contact_point", "baseline"),
    "sneddon": ("E", "alpha", "nu", "contact_point", "baseline"),
    "dmt": ("E", "R", "nu", "adhesion", "contact_point", "baseline"),
}
#: kinds the numba kernel cannot evaluate (complex Faddeeva function) -> numpy path
NUMPY_ONLY = {"voigt"}


# ------------------------------------------------------------------ shared helpers
def _p7norm(m):
    """log(1 / B(m - 1/2, 1/2)) and its derivative in m (numpy version, scipy.special)."""
    from scipy.special import digamma, gammaln

    return (gammaln(m) - gammaln(m - 0.5) - gammaln(0.5), digamma(m) - digamma(m - 0.5))


def _digamma_scalar(x):
    # recurrence up to x >= 6, then the asymptotic series (abs. error < 1e-13); numba has no digamma
    acc = 0.0
    while x < 6.0:
        acc -= 1.0 / x
        x += 1.0
    f = 1.0 / (x * x)
    return acc + math.log(x) - 0.5 / x - f * (1.0 / 12 - f * (1.0 / 120 - f * (1.0 / 252 - f * (
        1.0 / 240 - f * (1.0 / 132)))))


def _p7norm_scalar(m):
    return (math.lgamma(m) - math.lgamma(m - 0.5) - math.lgamma(0.5),
            _digamma_scalar(m) - _digamma_scalar(m - 0.5))


# ------------------------------------------------------------------ components: value + gradient
def d_gaussian(x, amplitude, center, sigma):
    s = np.maximum(sigma, TINY)
    u = (x - center) / s
    # clamp: exp() of very negative numbers takes libm's slow underflow path (and gives denormals);
    # exp(-600) ~ 1e-261 is zero for any fit
    e = np.exp(-np.minimum(0.5 * u * u, 600.0)) / (S2PI * s)
    v = amplitude * e
    return v, e, v * u / s, v * (u * u - 1.0) / s


def _d_gaussian_scalar(x, amplitude, center, sigma):
    # numba (scalar) version: beyond |u| = sqrt(80) the Gaussian is < 4e-18 of its height, below double
    # precision relative to the peak, so value and derivatives are 0 and the exp() is skipped
    s = max(sigma, TINY)
    u = (x - center) / s
    if u * u > 80.0:
        return 0.0, 0.0, 0.0, 0.0
    return d_gaussian(x, amplitude, center, sigma)


def d_lorentzian(x, amplitude, center, sigma):
    s = np.maximum(sigma, TINY)
    dx = x - center
    inv = 1.0 / (dx * dx + s * s)  # one division per point
    e = s * inv * (1.0 / np.pi)
    v = amplitude * e
    return v, e, v * 2.0 * dx * inv, v * (1.0 / s - 2.0 * s * inv)


def d_pseudo_voigt(x, amplitude, center, sigma, fraction):
    s = np.maximum(sigma, TINY)
    sg = s / math.sqrt(2.0 * LN2)
    vg, eg, cg, sgd = d_gaussian(x, amplitude, center, sg)
    vl, el, cl, sl = d_lorentzian(x, amplitude, center, s)
    g = 1.0 - fraction
    return (g * vg + fraction * vl, g * eg + fraction * el, g * cg + fraction * cl,
            g * sgd / math.sqrt(2.0 * LN2) + fraction * sl, vl - vg)


def d_voigt(x, amplitude, center, sigma, gamma):
    # dw/dz = -2 z w + 2i/sqrt(pi) (Faddeeva function, scipy.special.wofz); numpy path only
    from scipy.special import wofz

    s = np.maximum(sigma, TINY)
    z = (x - center + 1j * gamma) / (s * S2)
    w = wofz(z)
    dw = -2.0 * z * w + 2j / SQPI
    k = 1.0 / (s * S2PI)
    e = w.real * k
    v = amplitude * e
    dz_dc = -1.0 / (s * S2)
    return (v, e, amplitude * k * dw.real * dz_dc,
            amplitude * k * (dw * (-z / s)).real - v / s,
            amplitude * k * (dw * (1j / (s * S2))).real)


def d_pearson7(x, amplitude, center, sigma, expon):
    s = np.maximum(sigma, TINY)
    arg = (x - center) / s
    q = 1.0 + arg * arg
    ln, dln = _p7norm(expon)
    e = np.exp(ln - expon * np.log(q)) / s
    v = amplitude * e
    return (v, e, v * 2.0 * expon * arg / (q * s), v * (2.0 * expon * arg * arg / q - 1.0) / s,
            v * (dln - np.log(q)))


def d_constant(x, c):
    one = x * 0.0 + 1.0
    return c * one, one


def d_linear(x, slope, intercept):
    one = x * 0.0 + 1.0
    return slope * x + intercept, x * one, one


def d_powerlaw(x, amplitude, exponent):
    # lmfit's PowerLawModel: amplitude * x**exponent (EELS background A*E^-r has exponent = -r)
    p = np.exp(exponent * np.log(x))
    v = amplitude * p
    return v, p, v * np.log(x)


def d_gl_product(x, height, center, fwhm, mixing):
    # CasaXPS GL(m) product form with mixing = m/100 (0: Gaussian, 1: Lorentzian), height-normalised
    f = np.maximum(fwhm, TINY)
    u = (x - center) / f
    a = 4.0 * LN2 * (1.0 - mixing)
    b = 4.0 * mixing
    den = 1.0 + b * u * u
    e = np.exp(-np.minimum(a * u * u, 600.0)) / den
    v = height * e
    du = -2.0 * a * u - 2.0 * b * u / den  # dlog(e)/du
    return (v, e, v * du * (-1.0 / f), v * du * (-u / f),
            v * (4.0 * LN2 * u * u - 4.0 * u * u / den))


def d_gl_sum(x, height, center, fwhm, mixing):
    # CasaXPS SGL(m) sum form: (1-m) Gauss + m Lorentz, both height-normalised with the same FWHM
    f = np.maximum(fwhm, TINY)
    u = (x - center) / f
    g = np.exp(-np.minimum(4.0 * LN2 * u * u, 600.0))
    den = 1.0 + 4.0 * u * u
    lo = 1.0 / den
    e = (1.0 - mixing) * g + mixing * lo
    v = height * e
    de_du = (1.0 - mixing) * g * (-8.0 * LN2 * u) + mixing * (-8.0 * u) / (den * den)
    return v, e, height * de_du * (-1.0 / f), height * de_du * (-u / f), height * (lo - g)


def d_hertz(x, E, R, nu, contact_point, baseline):
    # Hertz paraboloid: F = 4/3 E/(1-nu^2) sqrt(R) max(d - d0, 0)^1.5 + baseline
    d = np.maximum(x - contact_point, 0.0)
    k = 4.0 / 3.0 / (1.0 - nu * nu)
    sr = np.sqrt(R)
    d15 = d * np.sqrt(d)
    f = k * E * sr * d15
    one = x * 0.0 + 1.0
    return (f + baseline, k * sr * d15, f * 0.5 / R, f * 2.0 * nu / (1.0 - nu * nu),
            -1.5 * k * E * sr * np.sqrt(d), one)


def d_sneddon(x, E, alpha, nu, contact_point, baseline):
    # Sneddon cone, half-opening angle alpha in degrees: F = 2/pi E/(1-nu^2) tan(alpha) max(d-d0,0)^2
    d = np.maximum(x - contact_point, 0.0)
    a = alpha * (np.pi / 180.0)
    t = np.tan(a)
    k = 2.0 / np.pi / (1.0 - nu * nu)
    f = k * E * t * d * d
    one = x * 0.0 + 1.0
    return (f + baseline, k * t * d * d, k * E * d * d * (1.0 + t * t) * (np.pi / 180.0),
            f * 2.0 * nu / (1.0 - nu * nu), -2.0 * k * E * t * d, one)


def d_dmt(x, E, R, nu, adhesion, contact_point, baseline):
    # DMT: Hertz paraboloid minus a constant adhesion force while in contact (d > d0)
    v, dE, dR, dnu, dc, one = d_hertz(x, E, R, nu, contact_point, baseline)
    inside = (x > contact_point) * 1.0
    return v - adhesion * inside, dE, dR, dnu, -inside, dc, one


def d_polynomial(x, coefs):
    """Polynomial c0 + c1 x + ...; ``coefs`` is a list of arrays (numpy path only helper)."""
    one = x * 0.0 + 1.0
    v = 0.0 * one
    grads = []
    xp = one
    for c in coefs:
        v = v + c * xp
        grads.append(xp)
        xp = xp * x
    return (v, *grads)


NUMPY_FUNCS = {"gaussian": d_gaussian, "lorentzian": d_lorentzian, "pseudo-voigt": d_pseudo_voigt,
               "voigt": d_voigt, "pearson7": d_pearson7, "constant": d_constant, "linear": d_linear,
               "powerlaw": d_powerlaw, "gl_product": d_gl_product, "gl_sum": d_gl_sum, "hertz": d_hertz,
               "sneddon": d_sneddon, "dmt": d_dmt}


def eval_components(kinds, offsets, npars, x, P, jac=True):
    """Numpy path: model value ``(n, m)`` and full Jacobian ``(n, m, q)`` (or None).

    ``P`` has shape ``(n, q)`` (all model parameters, in the compiled order).
    """
    n, q = P.shape
    xr = np.asarray(x, float)[None, :]
    val = np.zeros((n, xr.shape[1]))
    J = np.zeros((n, xr.shape[1], q)) if jac else None
    comps = []
    for kind, o, k in zip(kinds, offsets, npars):
        args = [P[:, o + j, None] for j in range(k)]
        if kind == "polynomial":
            out = d_polynomial(xr, args)
        else:
            out = NUMPY_FUNCS[kind](xr, *args)
        v = np.broadcast_to(out[0], val.shape)
        val += v
        comps.append(v)
        if jac:
            for j in range(k):
                J[:, :, o + j] = out[1 + j]
    return val, J, comps


# ------------------------------------------------------------------ numba kernel
def _jit_copy(func, njit, extra_globals):
    """numba-compile ``func`` with some globals swapped for their scalar (numba-compilable) versions."""
    g = dict(func.__globals__)
    g.update(extra_globals)
    f = types.FunctionType(func.__code__, g, func.__name__, func.__defaults__, func.__closure__)
    return njit(f)


try:  # numba is a dependency; the numpy path still works without it
    import os as _os
    import threading as _threading

    import numba

    # GNU OpenMP (numba's default layer from PyPI wheels) aborts a forked child that launches a
    # parallel kernel after the parent did ("fork() called from a process already using GNU
    # OpenMP"), and the pipeline forks its workers. The workqueue layer is fork-safe; it is not
    # safe for concurrent launches from several threads, so launches are serialised by
    # KERNEL_LOCK (a launch already uses every core). A user's explicit choice wins.
    if "NUMBA_THREADING_LAYER" not in _os.environ:
        numba.config.THREADING_LAYER = "workqueue"
    KERNEL_LOCK = _threading.Lock()
    HAVE_NUMBA = True
except Exception:  # pragma: no cover
    numba = None
    KERNEL_LOCK = None
    HAVE_NUMBA = False

if HAVE_NUMBA:
    # fastmath without nnan/ninf (NaN must still flag a bad dataset): reciprocals of loop-invariant
    # divisors (1/sigma...) are hoisted out of the point loop, FMA contraction, reassociated sums
    FASTMATH = {"arcp", "contract", "reassoc", "nsz"}
    _njit = numba.njit(cache=False, fastmath=FASTMATH)
    _nb_dig = _njit(_digamma_scalar)
    _nb_p7norm = _jit_copy(_p7norm_scalar, _njit, {"_digamma_scalar": _nb_dig})
    _nb_g = _jit_copy(_d_gaussian_scalar, _njit, {"d_gaussian": _jit_copy(d_gaussian, _njit, {})})
    _nb_l = _jit_copy(d_lorentzian, _njit, {})
    _nb_pv = _jit_copy(d_pseudo_voigt, _njit, {"d_gaussian": _nb_g, "d_lorentzian": _nb_l})
    _nb_p7 = _jit_copy(d_pearson7, _njit, {"_p7norm": _nb_p7norm})
    _nb_pw = _jit_copy(d_powerlaw, _njit, {})
    _nb_glp = _jit_copy(d_gl_product, _njit, {})
    _nb_gls = _jit_copy(d_gl_sum, _njit, {})
    _nb_h = _jit_copy(d_hertz, _njit, {})
    _nb_sn = _jit_copy(d_sneddon, _njit, {})
    _nb_dmt = _jit_copy(d_dmt, _njit, {"d_hertz": _nb_h})

    @numba.njit(fastmath=FASTMATH)
    def _one_dataset(x, Yr, Wr, Pi, kinds, offs, npars, want, H, g, Rout):  # pragma: no cover - jitted
        """chi^2 of one dataset; adds its J^T J (upper triangle) to ``H`` and J^T r to ``g``; when ``Rout``
        has the dataset's length, the unweighted residual ``Yr - f`` is written there too."""
        m = Yr.shape[0]
        q = Pi.shape[0]
        nk = kinds.shape[0]
        B = 64
        Jb = np.zeros((q, B))
        fb = np.zeros(B)
        rb = np.zeros(B)
        c = 0.0
        for j0 in range(0, m, B):
            nb = min(B, m - j0)
            for jj in range(nb):
                fb[jj] = 0.0
            for k in range(nk):
                o = offs[k]
                kd = kinds[k]
                if kd == 0 or kd == 1:
                    a0, a1, a2 = Pi[o], Pi[o + 1], Pi[o + 2]
                    for jj in range(nb):
                        if kd == 0:
                            v, d0, d1, d2 = _nb_g(x[j0 + jj], a0, a1, a2)
                        else:
                            v, d0, d1, d2 = _nb_l(x[j0 + jj], a0, a1, a2)
                        fb[jj] += v
                        if want:
                            Jb[o, jj] = d0; Jb[o + 1, jj] = d1; Jb[o + 2, jj] = d2  # noqa: E702
                elif kd == 2 or kd == 4 or kd == 9 or kd == 10:
                    a0, a1, a2, a3 = Pi[o], Pi[o + 1], Pi[o + 2], Pi[o + 3]
                    for jj in range(nb):
                        if kd == 2:
                            v, d0, d1, d2, d3 = _nb_pv(x[j0 + jj], a0, a1, a2, a3)
                        elif kd == 4:
                            v, d0, d1, d2, d3 = _nb_p7(x[j0 + jj], a0, a1, a2, a3)
                        elif kd == 9:
                            v, d0, d1, d2, d3 = _nb_glp(x[j0 + jj], a0, a1, a2, a3)
                        else:
                            v, d0, d1, d2, d3 = _nb_gls(x[j0 + jj], a0, a1, a2, a3)
                        fb[jj] += v
                        if want:
                            Jb[o, jj] = d0; Jb[o + 1, jj] = d1; Jb[o + 2, jj] = d2  # noqa: E702
                            Jb[o + 3, jj] = d3
                elif kd == 5 or kd == 6 or kd == 7:
                    for jj in range(nb):
                        xp = 1.0
                        v = 0.0
                        npk = 1 if kd == 5 else (2 if kd == 6 else npars[k])
                        for t in range(npk):
                            # linear is (slope, intercept): coefficient order reversed wrt polynomial
                            col = o + (npk - 1 - t if kd == 6 else t)
                            v += Pi[col] * xp
                            if want:
                                Jb[col, jj] = xp
                            xp *= x[j0 + jj]
                        fb[jj] += v
                elif kd == 8:
                    a0, a1 = Pi[o], Pi[o + 1]
                    for jj in range(nb):
                        v, d0, d1 = _nb_pw(x[j0 + jj], a0, a1)
                        fb[jj] += v
                        if want:
                            Jb[o, jj] = d0; Jb[o + 1, jj] = d1  # noqa: E702
                elif kd == 11 or kd == 12:
                    a0, a1, a2, a3, a4 = Pi[o], Pi[o + 1], Pi[o + 2], Pi[o + 3], Pi[o + 4]
                    for jj in range(nb):
                        if kd == 11:
                            v, d0, d1, d2, d3, d4 = _nb_h(x[j0 + jj], a0, a1, a2, a3, a4)
                        else:
                            v, d0, d1, d2, d3, d4 = _nb_sn(x[j0 + jj], a0, a1, a2, a3, a4)
                        fb[jj] += v
                        if want:
                            Jb[o, jj] = d0; Jb[o + 1, jj] = d1; Jb[o + 2, jj] = d2  # noqa: E702
                            Jb[o + 3, jj] = d3; Jb[o + 4, jj] = d4  # noqa: E702
                else:  # 13: dmt
                    a0, a1, a2 = Pi[o], Pi[o + 1], Pi[o + 2]
                    a3, a4, a5 = Pi[o + 3], Pi[o + 4], Pi[o + 5]
                    for jj in range(nb):
                        v, d0, d1, d2, d3, d4, d5 = _nb_dmt(x[j0 + jj], a0, a1, a2, a3, a4, a5)
                        fb[jj] += v
                        if want:
                            Jb[o, jj] = d0; Jb[o + 1, jj] = d1; Jb[o + 2, jj] = d2  # noqa: E702
                            Jb[o + 3, jj] = d3; Jb[o + 4, jj] = d4; Jb[o + 5, jj] = d5  # noqa: E702
            keep_r = Rout.shape[0] == m
            for jj in range(nb):
                w = Wr[j0 + jj]
                d = Yr[j0 + jj] - fb[jj]
                if keep_r:
                    Rout[j0 + jj] = d
                r = w * d
                rb[jj] = r
                c += r * r
                if want and w != 1.0:
                    for a in range(q):
                        Jb[a, jj] *= w
            if want:
                for a in range(q):
                    sg = 0.0
                    for jj in range(nb):
                        sg += Jb[a, jj] * rb[jj]
                    g[a] += sg
                    for bb in range(a, q):
                        sh = 0.0
                        for jj in range(nb):
                            sh += Jb[a, jj] * Jb[bb, jj]
                        H[a, bb] += sh
        return c

    @numba.njit(parallel=True, cache=True, fastmath=FASTMATH)
    def normal_kernel(x, Y, W, rows, P, kinds, offs, npars, want, cost, JtJ, Jtr):  # pragma: no cover - jitted
        """chi^2 (n,), ``J^T J`` (n, q, q) and ``J^T r`` (n, q) of datasets ``Y[rows]`` at parameters ``P``.

        ``J`` is the Jacobian of the weighted model, ``r = W (Y - f)``; ``W`` is (N, m) or (1, m).
        Parallel over datasets; each dataset is processed in blocks of ``B`` points whose Jacobian
        (q x B) stays in L1 cache: component-outer / point-inner loops keep each component's
        parameters in registers (per-dataset constants such as ``1/sigma`` are hoisted), and the
        block's ``J^T J`` is a set of short contiguous dot products (SIMD), so the (n, m, q)
        Jacobian is never stored.
        """
        n, q = P.shape
        ws = 0 if W.shape[0] == 1 else 1
        none = np.zeros(0)
        for i in numba.prange(n):
            ri = rows[i]
            H = np.zeros((q, q))
            g = np.zeros(q)
            cost[i] = _one_dataset(x, Y[ri], W[ri * ws], P[i], kinds, offs, npars, want, H, g, none)
            if want:
                for a in range(q):
                    Jtr[i, a] = g[a]
                    for bb in range(a, q):
                        JtJ[i, a, bb] = H[a, bb]
                        JtJ[i, bb, a] = H[a, bb]

    @numba.njit(parallel=True, cache=True, fastmath=FASTMATH)
    def residual_kernel(x, Y, rows, P, kinds, offs, npars, R):  # pragma: no cover - jitted
        """The unweighted residuals ``Y[rows] - f`` (n, m) into ``R`` at parameters ``P``: the model
        evaluated by the same compiled code as the fit (no Jacobian), parallel over datasets."""
        n, q = P.shape
        ones = np.ones(Y.shape[1])
        for i in numba.prange(n):
            H = np.zeros((1, 1))
            g = np.zeros(1)
            _one_dataset(x, Y[rows[i]], ones, P[i], kinds, offs, npars, False, H, g, R[i])

else:  # pragma: no cover
    normal_kernel = residual_kernel = None


def kernel_is_compiled() -> bool:
    return HAVE_NUMBA and len(normal_kernel.signatures) > 0


def warm_up_kernel() -> float:
    """Compile (or load from the on-disk cache) the fused kernels (fit and residuals); return the seconds
    it took."""
    import time

    if not HAVE_NUMBA or kernel_is_compiled():
        return 0.0
    t0 = time.perf_counter()
    x = np.linspace(1.0, 2.0, 4)
    Y = np.ones((2, 4))
    P = np.ones((2, 3))
    with KERNEL_LOCK:
        normal_kernel(x, Y, np.ones((1, 4)), np.arange(2), P, np.zeros(1, np.int64), np.zeros(1, np.int64),
                      np.full(1, 3, np.int64), True, np.zeros(2), np.zeros((2, 3, 3)), np.zeros((2, 3)))
        # the residuals of the noise statistics (fitting.batch): the same compiled model, no Jacobian
        residual_kernel(x, Y, np.arange(2), P, np.zeros(1, np.int64), np.zeros(1, np.int64),
                        np.full(1, 3, np.int64), np.zeros((2, 4)))
    return time.perf_counter() - t0
