"""Linear Kramers–Kronig test of impedance spectra (Schönleber, Klotz, Ivers-Tiffée 2014).

A spectrum that obeys causality, linearity and stationarity is described, within its noise, by
a series of ``M`` Voigt elements with time constants fixed on a log grid across the measured
window, plus an ohmic resistance, an inductance and a series capacitance::

    Z(w) = R_ohm + j w L + 1/(j w C) + sum_k R_k / (1 + j w tau_k),   tau_k in [1/w_max, 1/w_min]

With the ``tau_k`` fixed the model is *linear* in ``(R_ohm, L, 1/C, R_k)``: a weighted linear least
squares (scipy's LAPACK ``gelsy``, weights ``1/|Z|``). ``M`` grows until the fit starts to over-fit,
judged by ``mu = 1 - sum|R_k<0| / sum|R_k>=0|`` falling to ``c`` (0.85) once the residual is
down to the noise (see :func:`lin_kk`). The relative residuals
``(Z - Z_fit)/|Z|`` are the test: drift or non-linearity leaves residuals well above the noise
(typically at low frequency), a valid spectrum only noise.

Why not a library: impedance.py's ``linKK`` is the reference implementation but fails under
numpy 2; pyimpspec is GPL. The test is twenty lines of linear algebra on numpy.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.errors import ParameterError

__all__ = ["lin_kk", "KKResult"]


@dataclass
class KKResult:
    """Outcome of :func:`lin_kk` for one spectrum.

    Attributes
    ----------
    M : int
        Voigt elements used.
    mu : float
        Over-fit measure at ``M``.
    Z_fit : complex array (m,)
    res_real, res_imag : arrays (m,)
        ``(Z - Z_fit) / |Z|`` of the real and imaginary parts.
    max_residual_pct, rms_residual_pct : float
        Largest absolute and root-mean-square relative residual (%, both parts).
    valid : bool
        ``max_residual_pct <= threshold_pct``.
    threshold_pct : float
    n_params : int
        Linear coefficients of the KK fit (``M`` + series R, inductance, capacitance): the degrees of
        freedom of its residual are ``2m - n_params``.
    Z : complex array (m,) or None
        The tested impedance (for :meth:`noise_variance` in another weighting).
    """

    M: int
    mu: float
    Z_fit: np.ndarray
    res_real: np.ndarray
    res_imag: np.ndarray
    max_residual_pct: float
    rms_residual_pct: float
    valid: bool
    threshold_pct: float
    n_params: int = 0
    Z: np.ndarray | None = None

    def to_dict(self) -> dict:
        return {"M": self.M, "mu": self.mu, "max_residual_pct": self.max_residual_pct,
                "rms_residual_pct": self.rms_residual_pct, "valid": self.valid, "threshold_pct": self.threshold_pct,
                "noise_pct": self.noise_pct}

    @property
    def dof(self) -> int:
        """Degrees of freedom of the residual: ``2m - n_params``."""
        return 2 * self.res_real.size - self.n_params

    @property
    def noise_pct(self) -> float | None:
        """Noise SD relative to ``|Z|`` (%, each part), estimated from the residual of this linear fit
        (``sqrt(sum r^2 / (2m - n_params))``); None when the spectrum is not KK-valid (its residual is
        not noise alone) or fewer than 5 degrees of freedom are left."""
        v = self.noise_variance()
        return None if v is None else float(100 * np.sqrt(v))

    def noise_variance(self, weights=None) -> float | None:
        """Noise variance of the spectrum in a fit's residual weighting, from this KK fit's residual.

        A KK-valid spectrum is described down to its noise by the KK model (a linear model of
        ``n_params`` coefficients), so ``sum (w (Y - Y_KK))^2 / (2m - n_params)`` estimates the
        variance a circuit fit with weights ``w`` would reach with a correct circuit: the circuit's
        weighted χ²/ν divided by it is ≈ 1 when the circuit explains the data.

        Parameters
        ----------
        weights : array (2m,), optional
            The fit's weights of the real then the imaginary parts; default ``1/|Z|`` (``modulus``, the
            KK fit's own weighting: the residual is ``res_real``, ``res_imag``).

        Returns
        -------
        float or None
            None when the spectrum is not KK-valid or fewer than 5 degrees of freedom are left.
        """
        if not self.valid or self.dof < 5:
            return None
        if weights is None:
            r = np.concatenate([self.res_real, self.res_imag])
        else:
            if self.Z is None:
                return None
            d = np.asarray(self.Z, complex) - self.Z_fit
            r = np.asarray(weights, float) * np.concatenate([d.real, d.imag])
        v = float(np.sum(r * r) / self.dof)
        return v if np.isfinite(v) and v > 0 else None


def _design(w: np.ndarray, tau: np.ndarray, inductance: bool, capacitance: bool) -> np.ndarray:
    """Complex design matrix (m, 1 + L + C + M): columns R_ohm, [L], [1/C], R_k."""
    cols = [np.ones_like(w, dtype=complex)]
    if inductance:
        cols.append(1j * w)
    if capacitance:
        cols.append(1 / (1j * w))
    cols.append(1 / (1 + 1j * w[:, None] * tau[None, :]))
    return np.column_stack([c if c.ndim == 2 else c[:, None] for c in cols])


def lin_kk(f, Z, *, c: float = 0.85, max_M: int = 50, threshold_pct: float = 2.0, inductance: bool = True,
           capacitance: bool = True) -> KKResult:
    """Linear Kramers–Kronig test of one spectrum.

    Parameters
    ----------
    f : array (m,)
        Frequencies (Hz, > 0, any order).
    Z : complex array (m,)
        Impedance (Ohm).
    c : float
        Over-fit threshold of ``mu`` (Schönleber et al. 2014: 0.85).
    max_M : int
        Most Voigt elements tried (also at most ``m // 2``).
    threshold_pct : float
        A spectrum is valid when no relative residual exceeds this (%).
    inductance, capacitance : bool
        Include a series inductance (high-frequency cables) / capacitance (a blocking electrode).

    Returns
    -------
    KKResult
    """
    f = np.asarray(f, float)
    Z = np.asarray(Z, complex)
    if f.shape != Z.shape or f.ndim != 1 or f.size < 6:
        raise ParameterError(f"lin_kk: need >= 6 frequencies with one impedance each (got {f.shape}, {Z.shape})")
    if not (np.all(np.isfinite(f)) and np.all(f > 0) and np.all(np.isfinite(Z))):
        raise ParameterError("lin_kk: frequencies must be finite and > 0, impedances finite")
    w = 2 * np.pi * f
    wt = 1 / np.maximum(np.abs(Z), 1e-300)
    n_extra = 1 + int(inductance) + int(capacitance)
    top = max(1, min(max_M, f.size // 2 - n_extra))
    # mu is not monotonic in M: an under-fit can have mu < c by chance (10 elements for 7 decades,
    # mu 0.846, 5.8 % residuals on a valid spectrum). Every M from one per decade up is solved; the
    # smallest M with mu <= c whose residual RMS is within 10 % of the most flexible fit's is kept
    # (failing that, the smallest M reaching that RMS): the fit describes the data, then stops.
    from scipy.linalg import lstsq

    first = int(min(top, max(2, round(np.log10(w.max() / w.min())))))
    b = np.concatenate([(Z * wt).real, (Z * wt).imag])
    tau_all = {}

    def solve(M):
        tau = np.logspace(np.log10(1 / w.max()), np.log10(1 / w.min()), M)
        A = _design(w, tau, inductance, capacitance) * wt[:, None]
        A_real = np.vstack([A.real, A.imag])
        coef = lstsq(A_real, b, lapack_driver="gelsy", check_finite=False)[0]   # QR: 4x faster than SVD here
        rk = coef[n_extra:]
        pos, neg = np.abs(rk[rk >= 0]).sum(), np.abs(rk[rk < 0]).sum()
        tau_all[M] = (M, 1.0 - neg / pos if pos > 0 else 0.0, tau, coef,
                      float(np.sqrt(np.mean((A_real @ coef - b) ** 2))))
        return tau_all[M]

    floor = 1.1 * solve(top)[4]          # the most flexible fit: the residual of noise alone
    best = None
    for M in range(first, top + 1):
        fit = tau_all.get(M) or solve(M)
        if fit[4] <= floor and best is None:
            best = fit                   # the first M that reaches the noise (fallback)
        if fit[4] <= floor and fit[1] <= c:
            best = fit
            break
    best = best[:4]
    M, mu, tau, coef = best
    Zfit = _design(w, tau, inductance, capacitance) @ coef
    mod = np.abs(Z)
    rr, ri = (Z.real - Zfit.real) / mod, (Z.imag - Zfit.imag) / mod
    allr = np.concatenate([rr, ri])
    mx = float(100 * np.max(np.abs(allr)))
    rms = float(100 * np.sqrt(np.mean(allr ** 2)))
    return KKResult(int(M), float(mu), Zfit, rr, ri, mx, rms, bool(mx <= threshold_pct), float(threshold_pct),
                    int(coef.size), Z)
