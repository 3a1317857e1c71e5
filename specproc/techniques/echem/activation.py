"""Arrhenius analysis of conductivities: ``ln(sigma T) = ln A - Ea / (k_B T)``.

* One weighted straight line in ``x = 1/T`` (weights from each conductivity's relative error;
  covariance scaled by the reduced chi-square, as lmfit does) gives ``Ea`` and ``ln A``.
* **Transitions** are looked for at every break between two measured temperatures with at least
  three points on each side: a *step* (two lines, each with its own intercept and slope: LiBH4's
  orthorhombic–hexagonal transition at ~110 °C, where sigma jumps by 2-3 decades) and a *change of
  slope* (two lines meeting at the break). The best model by BIC (``n ln(chi2/n) + k ln n``, the
  break counting as a parameter) is kept when it beats the single line by more than 10 (very
  strong evidence, Kass & Raftery 1995); the break temperature is the midpoint of the two measured
  temperatures around it.
* A **step test at a given temperature** (``step_test_C``, e.g. 110 °C) fits one slope with an
  offset switched on above that temperature: its size in decades with a standard error is what
  "no jump at 110 °C" is judged on.

The fits are linear least squares (``numpy.linalg.lstsq``): exact, no optimiser to start.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ...core.errors import ProcessingError
from .common import KB_EV

LN10 = math.log(10.0)
BIC_MARGIN = 10.0
MIN_SIDE = 3


@dataclass
class ArrheniusFit:
    """An Arrhenius analysis (temperatures in °C, conductivities in S/cm or conductances in S)."""

    T_C: np.ndarray
    sigma: np.ndarray
    sigma_stderr: np.ndarray
    Ea_eV: float
    Ea_eV_stderr: float
    ln_A: float
    ln_A_stderr: float
    transition: dict | None = None
    step_test: dict | None = None
    warnings: list = field(default_factory=list)
    segments: list = field(default_factory=list)      # [(x_lo, x_hi, intercept, slope)] of the kept model

    def to_dict(self) -> dict:
        return {"Ea_eV": self.Ea_eV, "Ea_eV_stderr": self.Ea_eV_stderr, "ln_A": self.ln_A,
                "ln_A_stderr": self.ln_A_stderr, "transition": self.transition, "step_test": self.step_test,
                "n_points": int(self.T_C.size), "warnings": list(self.warnings)}


def _wls(X: np.ndarray, y: np.ndarray, w: np.ndarray):
    """Weighted least squares: (beta, covariance scaled by the reduced chi^2, chi^2)."""
    Xw, yw = X * w[:, None], y * w
    beta = np.linalg.lstsq(Xw, yw, rcond=None)[0]
    r = yw - Xw @ beta
    chi2 = float(r @ r)
    dof = max(X.shape[0] - X.shape[1], 1)
    try:
        cov = np.linalg.inv(Xw.T @ Xw) * (chi2 / dof)
    except np.linalg.LinAlgError:
        cov = np.full((X.shape[1], X.shape[1]), np.nan)
    return beta, cov, chi2


def _bic(chi2: float, n: int, k: int) -> float:
    return n * math.log(max(chi2, 1e-300) / n) + k * math.log(n)


def arrhenius(T_C, sigma, sigma_stderr=None, step_test_C: float | None = None, detect: bool = True) -> ArrheniusFit:
    """Arrhenius fit of conductivities with transition detection.

    Parameters
    ----------
    T_C : array (n,)
        Temperatures (°C).
    sigma : array (n,)
        Conductivities (S/cm; any quantity proportional to them gives the same ``Ea``).
    sigma_stderr : array (n,), optional
        Their standard errors (weights ``sigma/stderr`` on ``ln(sigma T)``); default equal weights.
    step_test_C : float, optional
        Temperature (°C) at which the size of a conductivity step is measured.
    detect : bool
        Look for a step or a change of slope.

    Returns
    -------
    ArrheniusFit
    """
    T_C = np.asarray(T_C, float)
    s = np.asarray(sigma, float)
    ok = np.isfinite(T_C) & np.isfinite(s) & (s > 0)
    if ok.sum() < 3:
        raise ProcessingError(f"Arrhenius analysis needs >= 3 temperatures with a conductivity (got {int(ok.sum())})")
    se = np.asarray(sigma_stderr, float) if sigma_stderr is not None else np.full(s.shape, np.nan)
    T_C, s, se = T_C[ok], s[ok], se[ok]
    order = np.argsort(T_C)
    T_C, s, se = T_C[order], s[order], se[order]
    T = T_C + 273.15
    x, y = 1.0 / T, np.log(s * T)
    rel = se / s
    w = np.where(np.isfinite(rel) & (rel > 0), 1.0 / np.where(rel > 0, rel, 1.0), np.nan)
    w = np.where(np.isfinite(w), w, np.nanmedian(w) if np.isfinite(w).any() else 1.0)
    n = x.size
    X1 = np.column_stack([np.ones(n), x])
    b1, c1, chi1 = _wls(X1, y, w)
    out = ArrheniusFit(T_C, s, se, float(-b1[1] * KB_EV), float(math.sqrt(max(c1[1, 1], 0)) * KB_EV),
                       float(b1[0]), float(math.sqrt(max(c1[0, 0], 0))),
                       segments=[(x.min(), x.max(), float(b1[0]), float(b1[1]))])
    if detect and n >= 2 * MIN_SIDE:
        _transition(out, x, y, w, T_C, _bic(chi1, n, 2))
    if step_test_C is not None:
        out.step_test = _step_test(x, y, w, T_C, float(step_test_C), out.warnings)
    return out


def _transition(out: ArrheniusFit, x, y, w, T_C, bic_line: float) -> None:
    """The best step / change of slope between measured temperatures, kept if BIC says so."""
    n = x.size
    best = {}
    for b in range(MIN_SIDE, n - MIN_SIDE + 1):           # points [0, b) below T_b (low T = high x)
        tb = 0.5 * (T_C[b - 1] + T_C[b])
        xb = 1.0 / (tb + 273.15)
        low = (x > xb).astype(float)                       # low-temperature side
        Xs = np.column_stack([1 - low, (1 - low) * x, low, low * x])
        Xh = np.column_stack([np.ones(n), x, np.maximum(x - xb, 0.0)])
        # a change of slope may sit on a measured temperature as well as between two
        xk = 1.0 / (T_C[b] + 273.15)
        Xk = np.column_stack([np.ones(n), x, np.maximum(x - xk, 0.0)])
        for kind, X, k, t_, x_ in (("step", Xs, 5, tb, xb), ("slope", Xh, 4, tb, xb),
                                   ("slope", Xk, 4, float(T_C[b]), xk)):
            beta, cov, chi2 = _wls(X, y, w)
            bic = _bic(chi2, n, k)
            if kind not in best or bic < best[kind][0]:
                best[kind] = (bic, kind, b, t_, x_, beta, cov)
    if not best:
        return
    # a step (its own intercepts) is kept over a change of slope only when it is better by BIC and its
    # jump is significant (3 standard errors): two free lines always fit a kink a little better
    st, sl = best["step"], best["slope"]
    g = np.array([1.0, st[4], -1.0, -st[4]])
    jump_se = math.sqrt(max(g @ st[6] @ g, 0))
    best = st if (st[0] < sl[0] - 2 and abs(g @ st[5]) > 3 * jump_se) else sl
    bic, kind, b, tb, xb, beta, cov = best
    dbic = bic_line - bic
    info = {"present": bool(dbic > BIC_MARGIN), "kind": kind, "temperature_C": float(tb),
            "between_C": [float(T_C[b - 1]), float(T_C[b])], "delta_bic": float(dbic)}
    if kind == "step":
        g = np.array([1.0, xb, -1.0, -xb])                 # high-T line minus low-T line at the break
        jump = float(g @ beta) / LN10
        info["jump_decades"] = jump
        info["jump_decades_stderr"] = float(math.sqrt(max(g @ cov @ g, 0))) / LN10
        info["Ea_low_eV"], info["Ea_high_eV"] = float(-beta[3] * KB_EV), float(-beta[1] * KB_EV)
        info["Ea_low_eV_stderr"] = float(math.sqrt(max(cov[3, 3], 0)) * KB_EV)
        info["Ea_high_eV_stderr"] = float(math.sqrt(max(cov[1, 1], 0)) * KB_EV)
        segs = [(float(xb), float(x.max()), float(beta[2]), float(beta[3])),
                (float(x.min()), float(xb), float(beta[0]), float(beta[1]))]
    else:
        info["jump_decades"], info["jump_decades_stderr"] = 0.0, 0.0
        info["Ea_high_eV"] = float(-beta[1] * KB_EV)
        info["Ea_low_eV"] = float(-(beta[1] + beta[2]) * KB_EV)
        info["Ea_high_eV_stderr"] = float(math.sqrt(max(cov[1, 1], 0)) * KB_EV)
        g = np.array([0.0, 1.0, 1.0])
        info["Ea_low_eV_stderr"] = float(math.sqrt(max(g @ cov @ g, 0)) * KB_EV)
        segs = [(float(xb), float(x.max()), float(beta[0] - beta[2] * xb), float(beta[1] + beta[2])),
                (float(x.min()), float(xb), float(beta[0]), float(beta[1]))]
    out.transition = info
    if info["present"]:
        out.segments = segs
        out.warnings.append(f"{'conductivity step' if kind == 'step' else 'change of slope'} at "
                            f"{tb:.0f} °C (between {T_C[b - 1]:g} and {T_C[b]:g} °C; ΔBIC {dbic:.0f}): one activation "
                            "energy does not describe the whole range")


def _step_test(x, y, w, T_C, t_s: float, warns: list) -> dict | None:
    xs = 1.0 / (t_s + 273.15)
    above = (x < xs).astype(float)
    if above.sum() < 2 or (1 - above).sum() < 2:
        warns.append(f"step test at {t_s:g} °C: fewer than two temperatures on one side")
        return None
    X = np.column_stack([np.ones(x.size), x, above])
    beta, cov, _ = _wls(X, y, w)
    return {"temperature_C": t_s, "jump_decades": float(beta[2] / LN10),
            "jump_decades_stderr": float(math.sqrt(max(cov[2, 2], 0)) / LN10)}


def quantities(fit: ArrheniusFit, unit_note: str = ""):
    """Result quantities of an Arrhenius analysis (names under ``arrhenius.``, ``transition.``, ``step(...)``)."""
    from ...core.result import Quantities
    from .common import fmt_temp, q

    out = Quantities()
    tr = fit.transition or {}
    if not tr.get("present"):
        out.put(q("arrhenius", "Ea_eV", fit.Ea_eV, fit.Ea_eV_stderr, "eV",
                  "activation energy, ln(σT) vs 1/T" + unit_note))
        out.put(q("arrhenius", "ln_prefactor", fit.ln_A, fit.ln_A_stderr, ""))
    else:
        out.put(q("arrhenius", "Ea_low_eV", tr["Ea_low_eV"], tr["Ea_low_eV_stderr"], "eV"))
        out.put(q("arrhenius", "Ea_high_eV", tr["Ea_high_eV"], tr["Ea_high_eV_stderr"], "eV"))
        out.put(q("transition", "temperature_C", tr["temperature_C"],
                  abs(tr["between_C"][1] - tr["between_C"][0]) / math.sqrt(12), "degC"))
        out.put(q("transition", "jump_decades", tr["jump_decades"], tr["jump_decades_stderr"], "decades"))
    out.put(q("transition", "present", 1.0 if tr.get("present") else 0.0, None, ""))
    if fit.step_test is not None:
        st = fit.step_test
        out.put(q(f"step({fmt_temp(st['temperature_C'])})", "jump_decades", st["jump_decades"],
                  st["jump_decades_stderr"], "decades"))
    return out


def plot(fit: ArrheniusFit, title: str, ylab: str = "log10(σT / S K cm⁻¹)") -> dict:
    """Arrhenius plot spec (``xy``): 1000/T against log10(σT), error bars, fitted line(s)."""
    T = fit.T_C + 273.15
    ly = np.log10(fit.sigma * T)
    err = np.where(np.isfinite(fit.sigma_stderr), fit.sigma_stderr / fit.sigma / LN10, 0.0)
    series = [{"name": "measured", "x": 1000 / T, "y": ly, "err": err, "mode": "markers"}]
    for k, (xlo, xhi, a, b) in enumerate(fit.segments):
        xx = np.linspace(xlo, xhi, 20)
        series.append({"name": "fit" if len(fit.segments) == 1 else f"fit {k + 1}", "x": 1000 * xx,
                       "y": (a + b * xx) / LN10, "mode": "lines"})
    return {"kind": "xy", "title": title, "x": 1000 / T, "x_label": "1000 / T (K⁻¹)", "y_label": ylab,
            "series": series}
