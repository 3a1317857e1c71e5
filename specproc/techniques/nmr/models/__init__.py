"""NMR side of the toolkit's solid-state models (``csa``, ``czjzek``: :mod:`specproc.fitting.nmr_models`).

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
MODEL_KEYS = {"csa": ("delta_aniso_ppm", "eta", "sigma", "gamma"), "czjzek": ("sigma_mhz", "sigma", "gamma")}
#: parameters of these models whose bound makes the site's width undetermined
WIDTH_PARAMS = ("delta_aniso_ppm", "sigma_mhz")


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
    """The CSA model computes its sideband manifold itself: no satellites for it under MAS."""
    return shape == "csa" and bool(step)


_COARSE_MAGS = (0.3, 0.5, 0.8, 1.2, 1.7, 2.5, 3.5, 5.0, 7.0, 10.0)


@functools.lru_cache(maxsize=32)
def _start_grid(mags: tuple, neta: int):
    """Exact manifolds of a start grid (|rho| in ``mags`` x both signs x ``neta`` etas): the grid's
    (rho, eta) and ``[(rows, orders, intensities)]`` per chunk of similar |rho| (each on its own
    orientation grid, :func:`~specproc.fitting.nmr_models.csa_manifold`)."""
    from ....fitting.nmr_models import csa_manifold

    m = np.asarray(mags, float)
    R, E = np.meshgrid(np.concatenate([m, -m]), np.linspace(0.0, 1.0, neta), indexing="ij")
    R, E = R.ravel(), E.ravel()
    o = np.argsort(np.abs(R), kind="stable")
    tabs = []
    for ch in np.array_split(o, max(1, o.size // 24)):
        orders, inten = csa_manifold(E[ch], R[ch])
        tabs.append((ch, orders, inten))
    return R, E, tabs


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


def update(s, *, width: float, window, step, sf, nucleus, dx: float, src=None, x=None, y=None) -> dict:
    """``model_copy`` update of a registry NMR peak: context, starts, centre bounds."""
    from ....fitting.nmr_models import czjzek, spin_of

    init = dict(s.init)
    bounds = {"center": tuple(window)}
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
