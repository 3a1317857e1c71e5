"""NMR side of the toolkit's solid-state models (``csa``, ``czjzek``, ``ext-czjzek``:
:mod:`specproc.fitting.nmr_models`).

What the technique adds to a registry model: its context from the spectrum (MAS rate in ppm,
Larmor frequency, spin of the nucleus), starting values from the measured width, the centre
bounds of a sideband manifold, and the model parameters in the result rows / JSON with errors.
``center`` of these models is the isotropic shift, not the position of the maximum.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from ....core.errors import ParameterError

#: shapes of the registry that are NMR models, and their parameters a user may give at the top level
MODEL_KEYS = {"csa": ("delta_aniso_ppm", "eta", "sigma", "gamma"), "czjzek": ("sigma_mhz", "sigma", "gamma"),
              "ext-czjzek": ("cq0_mhz", "eta0", "eps", "sigma", "gamma")}
#: parameters of these models whose bound makes the site's width undetermined
WIDTH_PARAMS = ("delta_aniso_ppm", "sigma_mhz", "cq0_mhz")


def is_model(shape) -> bool:
    return shape in MODEL_KEYS


def keys_to_init(it: dict) -> dict:
    """``{"shape": "csa", "delta_aniso_ppm": -60}`` -> the same with ``init={"delta_aniso_ppm": -60}``."""
    keys = MODEL_KEYS.get(it.get("shape"))
    if not keys:
        return it
    it = dict(it)
    init = dict(it.get("init") or {})
    for k in keys:
        if k in it:
            init[k] = float(it.pop(k))
    if init:
        it["init"] = init
    return it


def has_own_sidebands(shape, step) -> bool:
    """The CSA and quadrupolar (central transition) models compute their sideband manifolds themselves:
    no satellites for them under MAS."""
    return bool(step) and shape in ("csa", "quadrupolar")


_COARSE_MAGS = (0.3, 0.5, 0.8, 1.2, 1.7, 2.5, 3.5, 5.0, 7.0, 10.0)


@functools.lru_cache(maxsize=32)
def _start_grid(mags: tuple, neta: int):
    """Exact manifolds of a start grid (|rho| in ``mags`` x both signs x ``neta`` etas): the grid's
    (rho, eta) and ``[(rows, orders, intensities)]`` per chunk of similar |rho| (each on its own
    orientation grid, :func:`~specproc.fitting.nmr_models.csa_manifold`)."""
    import hashlib

    from ....fitting.nmr_models import csa_manifold, disk_cached

    m = np.asarray(mags, float)
    R, E = np.meshgrid(np.concatenate([m, -m]), np.linspace(0.0, 1.0, neta), indexing="ij")
    R, E = R.ravel(), E.ravel()
    o = np.argsort(np.abs(R), kind="stable")
    chunks = np.array_split(o, max(1, o.size // 24))

    def build():  # ~1 s per grid on the shared VM: cached on disk (a stack's first call paid it every process)
        out = {}
        for i, ch in enumerate(chunks):
            out[f"orders{i}"], out[f"inten{i}"] = csa_manifold(E[ch], R[ch])
        return out

    key = hashlib.sha256(repr((tuple(float(v) for v in m), int(neta))).encode()).hexdigest()[:16]
    got = disk_cached(f"csa_start_{key}", build)
    return R, E, [(ch, got[f"orders{i}"], got[f"inten{i}"]) for i, ch in enumerate(chunks)]


def csa_start(x, y, center: float, step, width: float, dx: float) -> tuple[float, float]:
    """Starting (delta_aniso_ppm, eta) of a CSA line from a coarse grid search against the data
    (both signs: a local fit cannot cross from one sign of the anisotropy to the other).
    MAS: the heights at the sideband positions against the manifold's intensities
    (Herzfeld–Berger); static: the pattern (decimated axis) against the data."""
    from ....fitting.nmr_models import csa

    x, y = np.asarray(x, float), np.asarray(y, float)
    etas = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    best = (np.inf, None)
    if step:
        ks = np.arange(-int((center - x.min()) // step), int((x.max() - center) // step) + 1)
        h = np.clip(np.interp(center + ks * step, x[::-1] if x[0] > x[-1] else x, y[::-1] if x[0] > x[-1] else y),
                    0, None)

        def best_of(mags, neta):
            """(rho, eta) of the grid point whose manifold best matches the heights h."""
            R, E, tabs = _start_grid(tuple(float(m) for m in mags), neta)
            best = (np.inf, 0.0, 0.0)
            for rows, orders, inten in tabs:
                M = np.clip(inten[:, np.mod(ks, orders.size)], 0, None)
                M[:, np.abs(ks) >= orders.size // 2] = 0.0
                a = (M @ h) / np.maximum(np.einsum("ij,ij->i", M, M), 1e-300)
                res = np.sum((h[None, :] - a[:, None] * M) ** 2, axis=1)
                i = int(np.argmin(res))
                if res[i] < best[0]:
                    best = (float(res[i]), float(R[rows[i]]), float(E[rows[i]]))
            return best[1], best[2]

        # two exact stages: a coarse grid over both signs, then a fine one around the best |rho|, both
        # signs again (a single coarse grid, |rho| 1.2 / 1.7 around a truth of 1.4, chose the other sign at
        # eta = 1, a bound the fit could not leave). Both grids are fixed sets: computed once per process.
        r1, _ = best_of(_COARSE_MAGS, 6)
        r2, e2 = best_of(np.round(abs(r1) * np.geomspace(0.7, 1.45, 12), 6), 11)
        return r2 * step, e2
    k = max(1, x.size // 400)
    xd, yd = x[::k], y[::k]
    for mag in (0.3, 0.5, 0.7, 1.0, 1.4, 2.0):
        for sgn in (1, -1):
            for e in etas:
                m = csa(xd, 1.0, center, sgn * mag * width, e, max(width / 20, dx), 0.0, 0.0)
                a = (m @ yd) / max(m @ m, 1e-300)
                r = float(np.sum((yd - a * m) ** 2))
                if r < best[0]:
                    best = (r, (sgn * mag * width, e))
    return best[1]


#: start grid of the extended Czjzek model: (eta0, eps) nodes of its kernels, and CQ0 factors
#: around the value that gives the measured width
_EXT_START_ETA0 = (0.1, 0.5, 0.9)
_EXT_START_EPS = (0.04, 0.1, 0.2, 0.4, 0.7, 1.0)
_EXT_START_CQ = tuple(np.geomspace(0.5, 2.0, 11))


def data_width(xa, ya, lo: float, hi: float) -> float:
    """Half-height width (axis units) of the data around their maximum within ``lo..hi`` (``xa``
    ascending; ``ya`` baseline-free); 0 when the window holds fewer than 3 points."""
    inw = np.nonzero((xa >= lo) & (xa <= hi))[0]
    if inw.size <= 2:
        return 0.0
    n = xa.size
    i = int(inw[np.argmax(ya[inw])])
    half = ya[i] / 2
    a = i
    while a > 0 and ya[a] > half:
        a -= 1
    b = i
    while b < n - 1 and ya[b] > half:
        b += 1
    return float(xa[b] - xa[a])


def best_shift(ya, g, js, shift_ok) -> tuple[float, int, float]:
    """The whole-step shift of a template ``g`` that best explains ``ya`` (both on one even axis) with a
    free positive amplitude: (score ``C²/N``, shift ``js[j]`` in steps, amplitude ``C/N``), ``C`` the
    cross-correlation (FFT) and ``N`` the template's energy on the overlap; only shifts where
    ``shift_ok`` (the centre stays in its window). Score -inf when no shift fits."""
    from scipy.signal import correlate

    n = ya.size
    C = correlate(ya, g, mode="full", method="fft")       # C[j + n - 1] = sum_i ya[i] g[i - j]
    cs = np.cumsum(g * g)
    N = np.where(js >= 0, cs[np.clip(n - 1 - js, 0, n - 1)], cs[-1] - cs[np.clip(-js - 1, 0, n - 1)])
    sc = np.where(shift_ok & (C > 0) & (N > 1e-12 * cs[-1]), C * C / np.maximum(N, 1e-300), -np.inf)
    j = int(np.argmax(sc))
    return float(sc[j]), int(js[j]), float(C[j] / N[j]) if np.isfinite(sc[j]) else 0.0


def ext_czjzek_start(x, y, center: float, window, width: float, sigma: float, sf: float, spin: float,
                     rate_ppm: float) -> tuple[float, float, float, float, float]:
    """Starting (δiso, CQ0, η0, ε, area) of an extended Czjzek site from a coarse grid search.

    A least-squares fit started at one guess sits at a bound of ε (a narrow distribution with
    a small CQ0 and a wide one with a large CQ0 give similar widths, and ε's bounds are close to
    both): every (η0, ε) node of a small grid (kernels of :func:`~specproc.fitting.nmr_models.ext_czjzek`
    on their own nodes, no blending) and CQ0 around the value that reproduces the measured
    width are matched against the data, with the isotropic shift found for each by
    cross-correlation (the CT maximum is not at δiso) and a free amplitude. The best node is the
    start; the fit refines all four.
    """
    from ....fitting.nmr_models import ext_czjzek

    x, y = np.asarray(x, float), np.asarray(y, float)
    o = np.argsort(x)
    xa, ya = x[o], y[o]
    n = xa.size
    dx = float(np.median(np.diff(xa))) if n > 1 else 1.0
    uniform = n > 8 and np.allclose(np.diff(xa), dx, rtol=1e-4, atol=1e-9)
    ya = ya - float(np.percentile(ya, 5))
    xm = float(xa[n // 2]) if uniform else float(center)
    lo, hi = sorted(window)
    js = np.arange(-(n - 1), n)
    shift_ok = (xm + js * dx >= lo) & (xm + js * dx <= hi) if uniform else None
    best = (-np.inf, center, 1.0, 0.5, 0.2, None)
    # the data's own half-height width around its maximum in the window (the caller's width is
    # measured at the given start, which need not be the CT maximum)
    width = max(width, data_width(xa, ya, lo, hi))
    u = np.linspace(-1.0, 1.0, 4001)
    for e0 in _EXT_START_ETA0:
        for ep in _EXT_START_EPS:
            # FWHM (ppm) of the CQ0 = 1 MHz line without broadening: it scales with CQ0^2
            ppm1 = 1e6 / sf ** 2
            g1 = ext_czjzek(u * 30 * ppm1 * (1 + 3 * ep) ** 2, 1.0, 0.0, 1.0, e0, ep, 0.0, 0.0, sf, spin,
                            1.0 if rate_ppm else 0.0)
            uu = u * 30 * ppm1 * (1 + 3 * ep) ** 2
            above = uu[g1 >= g1.max() / 2]
            w1 = float(above.max() - above.min()) if above.size > 1 else ppm1
            cq_w = math.sqrt(max(width - 2.3548 * sigma, width / 3) / max(w1, 1e-12))
            for f in _EXT_START_CQ:
                cq = float(np.clip(cq_w * f, 0.01, 49.0))
                if not uniform:
                    g = ext_czjzek(xa, 1.0, center, cq, e0, ep, sigma, 0.0, sf, spin, 1.0 if rate_ppm else 0.0)
                    gg = float(g @ g)
                    c_ = float(g @ ya)
                    sc = c_ * c_ / gg if gg > 0 and c_ > 0 else -np.inf
                    if sc > best[0]:
                        best = (sc, center, cq, e0, ep, c_ / gg)
                    continue
                g = ext_czjzek(xa, 1.0, xm, cq, e0, ep, sigma, 0.0, sf, spin, 1.0 if rate_ppm else 0.0)
                sc, c0, a0 = best_shift(ya, g, js, shift_ok)
                if sc > best[0]:
                    best = (sc, xm + c0 * dx, cq, e0, ep, a0)
    return float(best[1]), float(best[2]), float(best[3]), float(best[4]), best[5]


def update(s, *, width: float, window, step, sf, nucleus, dx: float, src=None, x=None, y=None) -> dict:
    """``model_copy`` update of a registry NMR peak: context, starts, centre bounds."""
    from ....fitting.nmr_models import czjzek, spin_of

    init = dict(s.init)
    bounds = {"center": tuple(window)}
    out_center = out_area = None
    if step:
        init["rate_ppm"] = float(step)
    else:
        init["rate_ppm"] = 0.0
    init.setdefault("sigma", max(width / 20, dx))
    if s.shape == "csa":
        if "delta_aniso_ppm" not in init:
            if x is not None and y is not None:
                d0, e0 = csa_start(x, y, s.center, step, max(width, 2 * dx), dx)
                init["delta_aniso_ppm"] = d0
                init.setdefault("eta", float(np.clip(e0, 0.05, 0.95)))
            else:
                init["delta_aniso_ppm"] = max(width, 2 * dx) if not step else max(2.0 * step, width)
        init.setdefault("eta", 0.5)
        if step:  # a manifold's centre could hop by one rotor period: it stays within half of one
            lo, hi = window
            bounds["center"] = (max(lo, s.center - step / 2), min(hi, s.center + step / 2))
    else:
        if not sf or not nucleus:
            raise ParameterError(f"peak {s.name!r} ({s.shape}) needs the nucleus and sf_mhz of the measurement", src)
        spin = spin_of(nucleus)
        if spin is None or spin < 1.5 or (2 * spin) % 2 != 1:
            raise ParameterError(f"peak {s.name!r} ({s.shape}): {nucleus} has no quadrupolar central transition",
                                 src)
        init["larmor_mhz"], init["spin"] = float(sf), float(spin)
        if s.shape == "ext-czjzek":
            if not {"cq0_mhz", "eta0", "eps"} <= set(init) and x is not None and y is not None:
                c0, cq0, e0, ep0, area = ext_czjzek_start(x, y, s.center, bounds["center"], max(width, 2 * dx),
                                                    float(init["sigma"]), float(sf), float(spin), float(step or 0.0))
                for k, v in (("cq0_mhz", cq0), ("eta0", e0), ("eps", ep0)):
                    init.setdefault(k, v)
                if "center" not in s.fixed and bounds["center"][0] <= c0 <= bounds["center"][1]:
                    out_center = c0
                out_area = area if area and area > 0 else None
            bounds.update(s.bounds)
            out = {"init": init, "bounds": bounds}
            if out_center is not None:
                out["center"] = out_center
            if out_area and s.amplitude is None:
                out["amplitude"] = out_area
            return out
        if "sigma_mhz" not in init:  # invert the width of the sigma = 1 MHz line (it scales with sigma^2)
            x = np.linspace(-1.0, 1.0, 8001) * 20.0 * 1e6 / float(sf) ** 2
            y = czjzek(x, 1.0, 0.0, 1.0, 0.0, 0.0, float(sf), float(spin), float(step or 0.0))
            above = x[y >= y.max() / 2]
            w1 = float(above[-1] - above[0]) if above.size > 1 else 1.0
            init["sigma_mhz"] = float(np.clip(math.sqrt(max(width, 2 * dx) / w1), 0.01, 20.0))
    bounds.update(s.bounds)
    return {"init": init, "bounds": bounds}


def rows(shape: str, values: dict, stderr: dict, pre: str) -> dict:
    """The model's parameters and their standard errors (None at a bound) for a result row."""
    from ....fitting.nmr_models import REPORTED

    out = {}
    for par, key, _unit, _desc in REPORTED.get(shape, ()):
        v, e = values.get(pre + par), stderr.get(pre + par)
        out[key] = None if v is None else float(v)
        out[key + "_stderr"] = None if e is None or not np.isfinite(e) else float(e)
    return out


def quantities(shape: str) -> list:
    from ....fitting.nmr_models import REPORTED

    return REPORTED.get(shape, [])
