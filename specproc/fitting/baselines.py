"""One registry of background (baseline) algorithms, one signature for all of them.

``baseline(x, y, method, **options) -> (baseline, info)``, after pybaselines' API: ``x`` is the
axis (any order, any units), ``y`` one spectrum ``(m,)`` or a stack ``(..., m)``; the baseline has
the shape of ``y`` and ``info`` is a dict of what the algorithm found (iterations, fitted
parameters with standard errors...). The plumbing is done once, in :func:`baseline`: validation,
sorting the axis ascending and restoring the caller's order, never mutating the input. The
algorithms see an ascending axis and a 2-D stack ``(n, m)`` and hold only their maths.

Methods (:data:`REGISTRY`; :func:`names`):

* ``none`` — zeros.
* ``linear`` — the straight line between the averaged end points (``n_avg`` channels each).
* ``shirley`` — iterative Shirley (Proctor–Sherwood), all spectra at once.
* ``tougaard`` — Tougaard's universal cross section (``kind="U2"``, metals, or ``"U3"``,
  polymers), its scale fitted to the high end.
* ``power_law``, ``exponential``, ``polynomial`` — a model fitted in a ``window`` and extrapolated
  (EELS pre-edge: Egerton 2011, §4.4), every spectrum in one call of the batch engine, with
  standard errors of the parameters and of the background at chosen energies (``at``).
* ``asls``, ``arpls``, ``airpls``, ``iarpls``, ``modpoly``, ``imodpoly``, ``poly``, ``snip``,
  ``rubberband`` ... — pybaselines' methods (any method of ``pybaselines.Baseline`` is accepted by
  name), with an optional ``mask`` of points to ignore (interpolated across).

Conventions for the XPS-style backgrounds (``linear``, ``shirley``, ``tougaard``): inelastically
scattered electrons lose kinetic energy, so the background at a point is made of signal at
*smaller* axis values (binding energies): it rises towards the high end of the axis.

Why Shirley and Tougaard are written here: the maintained option, ``lmfitxps`` (MIT), implements
them as O(n^2) pure-Python loops over one spectrum that print to stdout; a depth profile needs
hundreds of spectra at once. These are the textbook algorithms vectorised over the stack
(cumulative trapezoid integrals for Shirley, one kernel matrix product for Tougaard).

References
----------
D. A. Shirley, Phys. Rev. B 5 (1972) 4709; A. Proctor & P. M. A. Sherwood, Anal. Chem. 54 (1982) 13;
S. Tougaard, Surf. Interface Anal. 11 (1988) 453 (U2: B = 2866 eV^2, C = 1643 eV^2) and 25 (1997)
137 (U3: C = 551 eV^2, D = 436 eV^2); R. F. Egerton, Electron Energy-Loss Spectroscopy (2011).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..core.errors import ParameterError

__all__ = ["baseline", "names", "REGISTRY", "Method", "register", "end_levels", "shirley_from_peaks",
           "tougaard_kernel", "U2", "U3", "PYBASELINES_METHODS", "WINDOW_MODELS"]

#: Tougaard cross-section constants (eV^2)
U2 = {"B": 2866.0, "C": 1643.0}
U3 = {"B": 2866.0, "C": 551.0, "D": 436.0}

#: pybaselines methods listed by name (others of ``pybaselines.Baseline`` are accepted too)
PYBASELINES_METHODS = ("asls", "arpls", "airpls", "iarpls", "drpls", "iasls", "modpoly", "imodpoly", "poly",
                       "snip", "rubberband")
#: models fitted in a window and extrapolated
WINDOW_MODELS = ("power_law", "exponential", "polynomial")


@dataclass(frozen=True)
class Method:
    """A registered algorithm: ``func(xa, Y, **options) -> (B, info)`` on an ascending axis ``xa``
    (m,) and a stack ``Y`` (n, m)."""

    name: str
    func: Callable
    description: str


REGISTRY: dict[str, Method] = {}


def register(name: str, description: str):
    """Decorator registering an algorithm under ``name`` (the body holds only the maths)."""
    def deco(func):
        if name in REGISTRY:
            raise ValueError(f"baseline method {name!r} registered twice")
        REGISTRY[name] = Method(name, func, description)
        return func
    return deco


def names() -> tuple[str, ...]:
    """Every registered method name, pybaselines' listed ones included."""
    return tuple(REGISTRY)


def _method(name: str) -> Method:
    if name in REGISTRY:
        return REGISTRY[name]
    if isinstance(name, str) and not name.startswith("_"):
        try:
            from pybaselines import Baseline
        except ImportError:  # pragma: no cover - a dependency
            Baseline = None
        if Baseline is not None and callable(getattr(Baseline, name, None)):
            return Method(name, _pybaselines(name), f"pybaselines {name}")
    raise ParameterError(f"unknown baseline method {name!r}; one of {', '.join(names())} "
                         "(or another pybaselines method)")


def baseline(x, y, method: str, **options) -> tuple[np.ndarray, dict]:
    """Background of one spectrum or a stack with a named method.

    Parameters
    ----------
    x : array_like (m,)
        Axis, any order (binding energy, energy loss, ppm, wavenumber...).
    y : array_like (m,) or (..., m)
        Intensities; stacks share the axis.
    method : str
        A name of :func:`names` or any pybaselines method.
    **options
        The method's options (``n_avg``, ``lam``, ``window``, ``mask``...; see each method).

    Returns
    -------
    baseline : ndarray
        Same shape as ``y``, in the caller's axis order.
    info : dict
        What the method found (``method`` always; iterations, parameters, standard errors...).
        Arrays in ``info`` indexed by channel are in ascending-axis order.

    Raises
    ------
    ParameterError
        Unknown method, mismatched shapes, fewer than 3 points, or options the method does not take.
    """
    m = _method(method)
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    if x.ndim != 1 or y.ndim < 1 or y.shape[-1] != x.size:
        raise ParameterError(f"baseline {method!r}: x has {x.size} points but the spectra have "
                             f"{y.shape[-1] if y.ndim else 0}")
    if x.size < 3:
        raise ParameterError(f"baseline {method!r}: a background needs at least 3 points")
    order = np.argsort(x, kind="stable")
    ascending = bool(np.all(order == np.arange(x.size)))
    xa = x[order]
    # algorithms never write into Y (a view of the caller's array when the axis is ascending:
    # no copy of a large spectrum image)
    Y = y.reshape(-1, x.size) if ascending else y.reshape(-1, x.size)[:, order]
    for key in ("mask", "weights"):
        v = options.get(key)
        if v is not None and not ascending:
            options = {**options, key: np.asarray(v)[..., order]}
    try:
        B, info = m.func(xa, Y, **options)
    except TypeError as exc:  # an option the method does not take
        raise ParameterError(f"baseline {method!r}: {exc}") from None
    if not ascending:
        out = np.empty_like(B)
        out[:, order] = B
        B = out
    return B.reshape(y.shape), {"method": method, **info}


# --------------------------------------------------------------------------- shared pieces
def end_levels(x, Y, n_avg: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Averaged intensities at the low-``x`` and high-``x`` ends (``n_avg`` channels each, at most a
    quarter of the spectrum): arrays of shape ``Y.shape[:-1]``. ``x`` in any order."""
    x = np.asarray(x, float)
    Y = np.asarray(Y, float)
    Ya = Y[..., np.argsort(x, kind="stable")]
    n = max(1, min(int(n_avg), Ya.shape[-1] // 4 or 1))
    return Ya[..., :n].mean(axis=-1), Ya[..., -n:].mean(axis=-1)


def _cumtrapz(xa, Ya):
    d = np.diff(xa)
    inc = 0.5 * (Ya[..., 1:] + Ya[..., :-1]) * d
    return np.concatenate([np.zeros(Ya.shape[:-1] + (1,)), np.cumsum(inc, axis=-1)], axis=-1)


def shirley_from_peaks(x, P, lo, hi):
    """Shirley step for a known peak signal ``P`` (e.g. a fitted envelope): ``lo`` + (``hi`` - ``lo``) x
    the fraction of the peak area at axis values below each point. ``x`` in any order."""
    x = np.asarray(x, float)
    P = np.asarray(P, float)
    order = np.argsort(x, kind="stable")
    xa, Pa = x[order], P[..., order]
    lo = np.asarray(lo, float)[..., None]
    hi = np.asarray(hi, float)[..., None]
    cum = _cumtrapz(xa, Pa)
    tot = cum[..., -1:]
    # a region without a peak (noise only) has a total area near 0 and an undefined fraction: the
    # fraction is kept in [0, 1] and a non-positive total falls back to the straight line
    lin = np.broadcast_to((xa - xa[0]) / (xa[-1] - xa[0]), cum.shape)
    frac = np.where(tot > 0, np.clip(np.divide(cum, np.where(tot > 0, tot, 1.0)), 0.0, 1.0), lin)
    B = lo + (hi - lo) * frac
    out = np.empty_like(B)
    out[..., order] = B
    return out


def tougaard_kernel(T, B: float = U2["B"], C: float = U2["C"], D: float = 0.0, C_prime: float = 1.0):
    """Tougaard inelastic cross-section ``K(T) = B T / ((C + C' T^2)^2 + D T^2)`` (eV^-1), ``T`` = energy
    loss (eV) >= 0. U2: ``C' = 1, D = 0``; U3: ``C' = -1`` with ``D`` > 0 (Tougaard 1997)."""
    T = np.asarray(T, float)
    K = B * T / ((C + C_prime * T * T) ** 2 + D * T * T)
    return np.where(T > 0, K, 0.0)


# --------------------------------------------------------------------------- algorithms
@register("none", "no background (zeros)")
def _none(xa, Y):
    return np.zeros_like(Y), {}


@register("linear", "straight line between the averaged end points")
def _linear(xa, Y, n_avg: int = 3):
    lo, hi = end_levels(xa, Y, n_avg)
    t = (xa - xa[0]) / (xa[-1] - xa[0])
    return lo[:, None] + (hi - lo)[:, None] * t, {"lo": lo, "hi": hi}


@register("shirley", "iterative Shirley (Proctor-Sherwood), every spectrum at once")
def _shirley(xa, Y, n_avg: int = 3, max_iter: int = 50, tol: float = 1e-6):
    """``B(E) = I_lo + (I_hi - I_lo) A(E) / A_total`` with ``A(E)`` the area of ``Y - B`` below ``E``;
    iterated from ``B = I_lo`` until the largest change is below ``tol * |I_hi - I_lo|``."""
    lo, hi = end_levels(xa, Y, n_avg)
    B = np.broadcast_to(lo[:, None], Y.shape).copy()
    scale = np.maximum(np.abs(hi - lo), 1e-12)[:, None]
    converged = np.zeros(Y.shape[0], bool)
    it = 0
    for it in range(1, max_iter + 1):
        Bn = shirley_from_peaks(xa, Y - B, lo, hi)
        change = np.max(np.abs(Bn - B) / scale, axis=-1)
        B = Bn
        converged = change < tol
        if np.all(converged):
            break
    return B, {"iterations": it, "converged": converged, "lo": lo, "hi": hi}


@register("tougaard", "Tougaard universal cross section (kind U2 or U3), scale fitted to the high end")
def _tougaard(xa, Y, kind: str = "U2", n_avg: int = 3, fit_scale: bool = True, B: float | None = None,
              C: float | None = None, D: float | None = None):
    """``B(E) = I_lo + s ∫_{E' < E} K(E - E') (Y(E') - I_lo) dE'``; ``s`` per spectrum makes the
    background meet the averaged high end (CasaXPS's default) unless ``fit_scale=False`` (``B``)."""
    kind = str(kind).upper()
    if kind not in ("U2", "U3"):
        raise ParameterError(f"Tougaard kind must be U2 or U3, not {kind!r}")
    const = dict(U2 if kind == "U2" else U3)
    for k, v in (("B", B), ("C", C), ("D", D)):
        if v is not None:
            const[k] = v
    lo, hi = end_levels(xa, Y, n_avg)
    w = np.zeros_like(xa)  # trapezoid weights of a (possibly non-uniform) axis
    d = np.diff(xa)
    w[:-1] += 0.5 * d
    w[1:] += 0.5 * d
    T = xa[:, None] - xa[None, :]  # loss from channel j (lower end) to channel i
    K = tougaard_kernel(T, 1.0, const["C"], const.get("D", 0.0), 1.0 if kind == "U2" else -1.0) * w[None, :]
    raw = (Y - lo[:, None]) @ K.T  # per unit B
    if fit_scale:
        n = max(1, min(int(n_avg), Y.shape[-1] // 4 or 1))
        end = raw[:, -n:].mean(axis=-1)
        scale = np.divide(hi - lo, end, out=np.zeros_like(end), where=np.abs(end) > 0)
    else:
        scale = np.full(Y.shape[0], const["B"])
    return lo[:, None] + scale[:, None] * raw, {"scale": scale, "kind": kind, "lo": lo, "hi": hi}


def _pybaselines(name: str):
    def run(xa, Y, mask=None, **kw):
        """pybaselines ``name`` spectrum by spectrum (it has no stacks); points in ``mask`` (and
        non-finite ones) are left out and the baseline interpolated across them."""
        from pybaselines import Baseline

        keep_all = np.ones(xa.size, bool) if mask is None else ~np.asarray(mask, bool)
        out = np.empty_like(Y)
        params = []
        fitter = prev = None
        for i, row in enumerate(Y):
            keep = keep_all & np.isfinite(row)
            if keep.sum() < 5:
                raise ParameterError(f"baseline {name!r}: fewer than 5 usable points")
            if fitter is None or not np.array_equal(keep, prev):
                fitter = Baseline(x_data=xa[keep])
                prev = keep
            bl, p = getattr(fitter, name)(row[keep], **kw)
            out[i] = np.interp(xa, xa[keep], bl)
            params.append(p)
        return out, {"params": params[0] if len(params) == 1 else params}
    return run


for _name in PYBASELINES_METHODS:
    register(_name, f"pybaselines {_name}")(_pybaselines(_name))


# --------------------------------------------------------------------------- window models
def _window_model(kind: str, degree: int = 2):
    """The lmfit model of a window background (prefix ``bg_``)."""
    from lmfit.models import ExponentialModel, PolynomialModel, PowerLawModel

    if kind == "power_law":
        return PowerLawModel(prefix="bg_")
    if kind == "exponential":
        return ExponentialModel(prefix="bg_")
    if not 0 <= degree <= 7:
        raise ParameterError(f"background polynomial degree {degree}: must be 0-7")
    return PolynomialModel(degree=degree, prefix="bg_")


def window_model(kind: str, degree: int = 2):
    """The lmfit model of ``power_law`` / ``exponential`` / ``polynomial`` (prefix ``bg_``): for
    models that fit the background together with the signal."""
    if kind not in WINDOW_MODELS:
        raise ParameterError(f"background {kind!r}: one of {', '.join(WINDOW_MODELS)}")
    return _window_model(kind, degree)


def window_evaluate(kind: str, values: dict, x) -> np.ndarray:
    """A window model ``(n, len(x))`` at ``x`` from its parameter arrays ``values`` (``bg_*``, (n,))."""
    E = np.asarray(x, float)[None, :]
    if kind == "power_law":
        return values["bg_amplitude"][:, None] * E ** values["bg_exponent"][:, None]
    if kind == "exponential":
        return values["bg_amplitude"][:, None] * np.exp(-E / values["bg_decay"][:, None])
    cs = sorted((k for k in values if k.startswith("bg_c") and k[4:].isdigit()), key=lambda k: int(k[4:]))
    return sum(values[c][:, None] * E ** i for i, c in enumerate(cs))


def _loglinear(E, Y):
    """Least-squares line through ``log Y`` vs ``E`` for every row (start values)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        L = np.log(np.where(Y > 0, Y, np.nan))
    good = np.isfinite(L)
    n = good.sum(axis=1)
    X = np.broadcast_to(E, Y.shape)
    xm = np.where(good, X, 0).sum(axis=1) / np.maximum(n, 1)
    lm = np.where(good, L, 0).sum(axis=1) / np.maximum(n, 1)
    dx = np.where(good, X - xm[:, None], 0)
    slope = (dx * np.where(good, L - lm[:, None], 0)).sum(axis=1) / np.maximum((dx * dx).sum(axis=1), 1e-300)
    return lm - slope * xm, slope, n


def window_starts(kind: str, E: np.ndarray, Y: np.ndarray, degree: int = 2) -> dict:
    """Per-spectrum start values of a window model (regression in log space / polynomial least squares)."""
    if kind == "power_law":
        a, b, _ = _loglinear(np.log(E), Y)
        return {"bg_amplitude": np.exp(a), "bg_exponent": np.clip(b, -12, 2)}
    if kind == "exponential":
        a, b, _ = _loglinear(E, Y)
        decay = np.where(b < 0, -1.0 / np.where(b < 0, b, -1.0), 1e4)
        return {"bg_amplitude": np.exp(a), "bg_decay": np.clip(decay, 1e-3, 1e6)}
    V = np.vander(E, degree + 1, increasing=True)
    coef = np.linalg.lstsq(V, np.nan_to_num(Y).T, rcond=None)[0]
    return {f"bg_c{i}": coef[i] for i in range(degree + 1)}


def _fit_window(kind):
    def run(xa, Y, window=None, degree: int = 2, at: tuple = (), weights=None, rows=None):
        """Fit ``kind`` in ``window`` (lo, hi) (default: the whole axis) and extrapolate.

        ``at``: axis values where the background and its standard error are reported (full
        covariance, through expression parameters the engine propagates); ``weights`` (m,) or
        (n, m) residual weights ``1/sigma`` in ascending-axis order; ``rows`` (n,) bool: spectra
        to fit (the others are NaN). ``info``: ``window``, ``values`` / ``stderr`` (name -> (n,)),
        ``rms`` (residual RMS in the window, data units), ``redchi``, ``ok``, ``at`` (value ->
        (value, stderr) arrays), ``kind``.
        """
        from .batch import fit_batch

        lo, hi = (float(xa[0]), float(xa[-1])) if window is None else sorted(float(v) for v in window)
        sel = (xa >= lo) & (xa <= hi)
        if sel.sum() < 8:
            raise ParameterError(f"background window {lo:g}-{hi:g} holds {int(sel.sum())} channels (need >= 8)")
        Ew = xa[sel]
        Yw = np.array(Y[:, sel], dtype=float)
        n = Yw.shape[0]
        fit_rows = np.ones(n, bool) if rows is None else np.asarray(rows, bool).copy()
        if kind in ("power_law", "exponential"):  # log-space models need a positive mean
            fit_rows &= np.nanmean(Yw, axis=1) > 0
        Yw[~fit_rows] = np.nan  # masked by the engine
        model = _window_model(kind, degree)
        init = window_starts(kind, Ew, np.where(fit_rows[:, None], Yw, 1.0), degree)
        params = model.make_params(**{k: float(np.nanmedian(v[fit_rows])) if fit_rows.any() else 1.0
                                      for k, v in init.items()})
        if kind == "power_law":
            params["bg_amplitude"].set(min=0)
        for k, e in enumerate(at):
            expr = {"power_law": f"bg_amplitude*{e!r}**bg_exponent",
                    "exponential": f"bg_amplitude*exp(-{e!r}/bg_decay)"}.get(kind)
            if expr is None:
                expr = " + ".join(f"bg_c{i}*{e!r}**{i}" for i in range(degree + 1))
            params.add(f"bg_at_{k}", expr=expr)
        W = None if weights is None else (weights[sel] if np.ndim(weights) == 1 else weights[:, sel])
        ds = fit_batch(model, Ew, Yw, params=params, init=dict(init), weights=W)
        values = {k: np.asarray(ds[k].values).ravel() for k in params if k in ds}
        stderr = {k: np.asarray(ds[k + "_stderr"].values).ravel() for k in params if k + "_stderr" in ds}
        ok = np.asarray(ds["success"].values).ravel().astype(bool) & fit_rows
        nfree = max(int(sel.sum()) - len([p for p in params.values() if p.vary and not p.expr]), 1)
        rms = np.sqrt(np.asarray(ds["chisqr"].values).ravel() / nfree)
        if W is not None:  # weighted chi^2: back to data units with the mean weight
            rms = rms / np.mean(W if np.ndim(W) == 1 else W, axis=-1)
        info = {"kind": kind, "window": (lo, hi), "values": values, "stderr": stderr, "rms": rms, "ok": ok,
                "redchi": np.asarray(ds["redchi"].values).ravel(),
                "at": {e: (values[f"bg_at_{k}"], stderr[f"bg_at_{k}"]) for k, e in enumerate(at)}}
        return window_evaluate(kind, values, xa), info
    return run


register("power_law", "A x^exponent fitted in a window and extrapolated (EELS pre-edge)")(_fit_window("power_law"))
register("exponential", "A exp(-x/decay) fitted in a window and extrapolated")(_fit_window("exponential"))
register("polynomial", "polynomial of `degree` fitted in a window (least squares) and extrapolated")(
    _fit_window("polynomial"))
