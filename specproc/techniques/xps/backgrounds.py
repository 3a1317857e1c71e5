"""XPS inelastic backgrounds: linear, Shirley (iterative) and Tougaard (U2 / U3), batched over spectra.

Why written here: the maintained option, ``lmfitxps`` (Hochhaus, MIT), implements Shirley and Tougaard
as O(n^2) pure-Python loops over one spectrum that print to stdout; a depth profile needs hundreds of
spectra at once (levels x regions). These are the same textbook algorithms vectorised over the stack
(cumulative trapezoid integrals for Shirley, one kernel matrix product for Tougaard).

Conventions
-----------
* ``x`` is the **binding energy** axis (eV), either order; ``Y`` is ``(m,)`` or ``(..., m)``.
* Inelastically scattered electrons lose kinetic energy, so a background at binding energy ``E``
  is made of electrons from peaks at *lower* binding energy: every background rises towards high BE.
* End-point intensities are averages of ``n_avg`` channels at each end (CasaXPS's default averaging).

References
----------
D. A. Shirley, Phys. Rev. B 5 (1972) 4709; A. Proctor & P. M. A. Sherwood, Anal. Chem. 54 (1982) 13
(iterative form); S. Tougaard, Surf. Interface Anal. 11 (1988) 453 (universal cross section U2:
B = 2866 eV^2, C = 1643 eV^2) and Surf. Interface Anal. 25 (1997) 137 (three-parameter U3, polymers:
C = 551 eV^2, D = 436 eV^2).
"""
from __future__ import annotations

import numpy as np

BACKGROUNDS = ("none", "linear", "shirley", "tougaard", "tougaard3")

#: Tougaard cross-section constants (eV^2)
U2 = {"B": 2866.0, "C": 1643.0}
U3 = {"B": 2866.0, "C": 551.0, "D": 436.0}


def _ascending(x, Y):
    x = np.asarray(x, float)
    Y = np.asarray(Y, float)
    if x.ndim != 1 or Y.shape[-1] != x.size:
        raise ValueError(f"x has {x.size} points but the spectra have {Y.shape[-1]}")
    if x.size < 3:
        raise ValueError("a background needs at least 3 points")
    order = np.argsort(x, kind="stable")
    return x[order], Y[..., order], order


def _restore(B, order):
    out = np.empty_like(B)
    out[..., order] = B
    return out


def _ends(Y, n_avg):
    n = max(1, min(int(n_avg), Y.shape[-1] // 4 or 1))
    return Y[..., :n].mean(axis=-1), Y[..., -n:].mean(axis=-1)


def linear(x, Y, n_avg: int = 3):
    """Straight line between the averaged end points of each spectrum."""
    xa, Ya, order = _ascending(x, Y)
    lo, hi = _ends(Ya, n_avg)
    t = (xa - xa[0]) / (xa[-1] - xa[0])
    return _restore(lo[..., None] + (hi - lo)[..., None] * t, order)


def shirley_from_peaks(x, P, lo, hi):
    """Shirley step for a known peak signal ``P`` (e.g. a fitted envelope): ``lo`` + (``hi`` - ``lo``) x
    the fraction of the peak area at binding energies below each point."""
    xa, Pa, order = _ascending(x, P)
    lo = np.asarray(lo, float)[..., None]
    hi = np.asarray(hi, float)[..., None]
    cum = _cumtrapz(xa, Pa)
    tot = cum[..., -1:]
    # a region without a peak (noise only) has a total area near 0 and an undefined fraction: the
    # fraction is kept in [0, 1] and a non-positive total falls back to the straight line
    lin = np.broadcast_to((xa - xa[0]) / (xa[-1] - xa[0]), cum.shape)
    frac = np.where(tot > 0, np.clip(np.divide(cum, np.where(tot > 0, tot, 1.0)), 0.0, 1.0), lin)
    return _restore(lo + (hi - lo) * frac, order)


def _cumtrapz(xa, Ya):
    d = np.diff(xa)
    inc = 0.5 * (Ya[..., 1:] + Ya[..., :-1]) * d
    return np.concatenate([np.zeros(Ya.shape[:-1] + (1,)), np.cumsum(inc, axis=-1)], axis=-1)


def shirley(x, Y, n_avg: int = 3, max_iter: int = 50, tol: float = 1e-6, return_info: bool = False):
    """Iterative Shirley background (Proctor–Sherwood), all spectra at once.

    ``B(E) = I_lo + (I_hi - I_lo) * A(E) / A_total`` with ``A(E)`` the area of ``Y - B`` between the
    low-BE end and ``E``; iterated from ``B = I_lo`` until the largest change is below
    ``tol * |I_hi - I_lo|``.

    Parameters
    ----------
    x : array (m,)
        Binding energy (eV), either order.
    Y : array (..., m)
        Intensities.
    n_avg : int
        Channels averaged at each end for the end-point intensities.
    max_iter, tol
        Iteration limit and relative convergence tolerance.
    return_info : bool
        Also return ``{"iterations": int, "converged": bool array}``.

    Returns
    -------
    array (..., m) [, dict]
    """
    xa, Ya, order = _ascending(x, Y)
    lo, hi = _ends(Ya, n_avg)
    B = np.broadcast_to(lo[..., None], Ya.shape).copy()
    scale = np.maximum(np.abs(hi - lo), 1e-12)[..., None]
    converged = np.zeros(Ya.shape[:-1], bool)
    it = 0
    for it in range(1, max_iter + 1):
        Bn = shirley_from_peaks(xa, Ya - B, lo, hi)
        change = np.max(np.abs(Bn - B) / scale, axis=-1)
        B = Bn
        converged = change < tol
        if np.all(converged):
            break
    B = _restore(B, order)
    if return_info:
        return B, {"iterations": it, "converged": converged}
    return B


def tougaard_kernel(T, B: float = U2["B"], C: float = U2["C"], D: float = 0.0, C_prime: float = 1.0):
    """Tougaard inelastic cross-section ``K(T) = B T / ((C + C' T^2)^2 + D T^2)`` (eV^-1), ``T`` = energy
    loss (eV) >= 0. U2: ``C' = 1, D = 0``; U3: ``C' = -1`` with ``D`` > 0 (Tougaard 1997)."""
    T = np.asarray(T, float)
    K = B * T / ((C + C_prime * T * T) ** 2 + D * T * T)
    return np.where(T > 0, K, 0.0)


def tougaard(x, Y, kind: str = "U2", n_avg: int = 3, fit_scale: bool = True, B: float | None = None,
             C: float | None = None, D: float | None = None, return_scale: bool = False):
    """Tougaard background ``B(E) = ∫_{E' < E} K(E - E') (Y(E') - I_lo) dE' + I_lo`` (binding energies).

    Parameters
    ----------
    kind : {"U2", "U3"}
        Universal two-parameter cross section (metals) or three-parameter one (polymers, C' = -1).
    fit_scale : bool
        Scale the cross section (its ``B``) per spectrum so that the background meets the averaged
        high-BE end (CasaXPS's default); False uses ``B`` as given.
    B, C, D : float, optional
        Override the cross-section constants (eV^2).

    Returns
    -------
    array (..., m) [, scale array (...)]  (the fitted ``B`` per spectrum when ``return_scale``)
    """
    kind = kind.upper()
    if kind not in ("U2", "U3"):
        raise ValueError(f"Tougaard kind must be U2 or U3, not {kind!r}")
    const = dict(U2 if kind == "U2" else U3)
    if B is not None:
        const["B"] = B
    if C is not None:
        const["C"] = C
    if D is not None:
        const["D"] = D
    xa, Ya, order = _ascending(x, Y)
    lo, hi = _ends(Ya, n_avg)
    # trapezoid weights of a (possibly non-uniform) axis
    w = np.zeros_like(xa)
    d = np.diff(xa)
    w[:-1] += 0.5 * d
    w[1:] += 0.5 * d
    T = xa[:, None] - xa[None, :]  # loss from channel j (lower BE) to channel i
    K = tougaard_kernel(T, 1.0, const["C"], const.get("D", 0.0), 1.0 if kind == "U2" else -1.0) * w[None, :]
    raw = (Ya - lo[..., None]) @ K.T  # per unit B
    if fit_scale:
        n = max(1, min(int(n_avg), Ya.shape[-1] // 4 or 1))
        end = raw[..., -n:].mean(axis=-1)
        scale = np.divide(hi - lo, end, out=np.zeros_like(end), where=np.abs(end) > 0)
    else:
        scale = np.full(Ya.shape[:-1], const["B"])
    Bg = lo[..., None] + scale[..., None] * raw
    Bg = _restore(Bg, order)
    return (Bg, scale) if return_scale else Bg


def background(kind: str, x, Y, **kw):
    """Dispatch by name: ``none``, ``linear``, ``shirley``, ``tougaard`` (U2), ``tougaard3`` (U3)."""
    if kind == "none":
        return np.zeros_like(np.asarray(Y, float))
    if kind == "linear":
        return linear(x, Y, **kw)
    if kind == "shirley":
        return shirley(x, Y, **kw)
    if kind == "tougaard":
        return tougaard(x, Y, "U2", **kw)
    if kind == "tougaard3":
        return tougaard(x, Y, "U3", **kw)
    raise ValueError(f"unknown background {kind!r}; one of {', '.join(BACKGROUNDS)}")
