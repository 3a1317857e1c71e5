"""Pre-edge background of EELS core-loss spectra: power law, exponential or polynomial.

The background is fitted in a window before the edge and extrapolated under it (Egerton 2011, §4.4).
Every spectrum of a stack is fitted at once by the batch engine
(:func:`specproc.fitting.batch.fit_batch`); the extrapolation uncertainty comes from each fit's full
covariance (lmfit-style expression parameters ``bg_at_<k>`` evaluated at chosen energies, whose
standard errors the engine propagates through the covariance).

Models (``E`` in eV):

* ``power_law``: ``A E^exponent`` (``exponent = -r``, typically ``2 < r < 6``), lmfit's ``PowerLawModel``;
* ``exponential``: ``A exp(-E / decay)``, lmfit's ``ExponentialModel`` (not batched: lmfit loop);
* ``polynomial``: ``c0 + c1 E + ...`` of ``degree`` (lmfit's ``PolynomialModel``), for short windows.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...core.errors import ParameterError

KINDS = ("power_law", "exponential", "polynomial")


@dataclass
class BackgroundFit:
    """Pre-edge fits of ``n`` spectra.

    Attributes
    ----------
    kind : str
    window : (float, float)
        Fitted pre-edge window (eV).
    values, stderr : dict of name -> array (n,)
        Parameters (``bg_*``) and their standard errors (NaN where not fitted / undefined).
    rms : array (n,)
        RMS residual in the window (counts per channel): the noise level seen by the fit.
    redchi : array (n,)
        Reduced chi-square of the (weighted) pre-edge fit: the noise scale the edge fit is compared with.
    ok : array (n,) bool
        Fitted and converged.
    at : dict of energy -> (value, stderr) arrays
        Extrapolated background and its standard error at the requested energies.
    """

    kind: str
    window: tuple[float, float]
    values: dict = field(default_factory=dict)
    stderr: dict = field(default_factory=dict)
    rms: np.ndarray | None = None
    ok: np.ndarray | None = None
    redchi: np.ndarray | None = None
    at: dict = field(default_factory=dict)

    def evaluate(self, E: np.ndarray, rows: slice | None = None) -> np.ndarray:
        """Background ``(n, len(E))`` at energies ``E`` (eV), optionally of some ``rows`` only."""
        vals = self.values if rows is None else {k: v[rows] for k, v in self.values.items()}
        return evaluate(self.kind, vals, E)


def evaluate(kind: str, values: dict, E: np.ndarray) -> np.ndarray:
    E = np.asarray(E, float)[None, :]
    if kind == "power_law":
        return values["bg_amplitude"][:, None] * E ** values["bg_exponent"][:, None]
    if kind == "exponential":
        return values["bg_amplitude"][:, None] * np.exp(-E / values["bg_decay"][:, None])
    cs = sorted((k for k in values if k.startswith("bg_c") and k[4:].isdigit()), key=lambda k: int(k[4:]))
    return sum(values[c][:, None] * E ** i for i, c in enumerate(cs))


def lmfit_model(kind: str, degree: int = 2):
    """The lmfit model of a background kind (prefix ``bg_``)."""
    from lmfit.models import ExponentialModel, PolynomialModel, PowerLawModel

    if kind == "power_law":
        return PowerLawModel(prefix="bg_")
    if kind == "exponential":
        return ExponentialModel(prefix="bg_")
    if kind == "polynomial":
        if not 0 <= degree <= 7:
            raise ParameterError(f"background polynomial degree {degree}: must be 0-7")
        return PolynomialModel(degree=degree, prefix="bg_")
    raise ParameterError(f"background {kind!r}: one of {', '.join(KINDS)}")


def _loglinear(E, Y):
    """Least-squares line through ``log Y`` vs ``log E`` (or vs ``E``) for every row: start values."""
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


def initial(kind: str, E: np.ndarray, Y: np.ndarray, degree: int = 2) -> dict:
    """Per-spectrum start values (linear regression in log space / polynomial least squares)."""
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


def fit_background(E: np.ndarray, Y: np.ndarray, window: tuple[float, float], kind: str = "power_law",
                   degree: int = 2, at: tuple[float, ...] = (), weights: np.ndarray | None = None,
                   rows: np.ndarray | None = None) -> BackgroundFit:
    """Fit the pre-edge background of every spectrum.

    Parameters
    ----------
    E : array (m,)
        Energy loss (eV), increasing.
    Y : array (n, m)
        Spectra (counts).
    window : (lo, hi)
        Pre-edge window (eV); at least 8 channels must fall inside it.
    kind : {"power_law", "exponential", "polynomial"}
    degree : int
        Polynomial degree (``kind="polynomial"``).
    at : tuple of float
        Energies (eV) where the extrapolated background and its standard error are reported.
    weights : array (n, m) or (m,), optional
        Residual weights (``1/sigma``).
    rows : array of bool (n,), optional
        Spectra to fit (others are NaN).

    Returns
    -------
    BackgroundFit
    """
    from ...fitting.batch import fit_batch

    lo, hi = sorted(float(v) for v in window)
    sel = (E >= lo) & (E <= hi)
    if sel.sum() < 8:
        raise ParameterError(f"background window {lo:g}-{hi:g} eV holds {int(sel.sum())} channels (need >= 8)")
    Ew = E[sel]
    Yw = np.array(Y[:, sel], dtype=float)
    n = Yw.shape[0]
    fit_rows = np.ones(n, bool) if rows is None else np.asarray(rows, bool).copy()
    if kind in ("power_law", "exponential"):  # log-space models need a positive mean
        fit_rows &= np.nanmean(Yw, axis=1) > 0
    Yw[~fit_rows] = np.nan  # masked by the engine
    model = lmfit_model(kind, degree)
    init = initial(kind, Ew, np.where(fit_rows[:, None], Yw, 1.0), degree)
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
    ds = fit_batch(model, Ew, Yw, params=params, init={k: v for k, v in init.items()}, weights=W)
    values = {k: np.asarray(ds[k].values).ravel() for k in params if k in ds}
    stderr = {k: np.asarray(ds[k + "_stderr"].values).ravel() for k in params if k + "_stderr" in ds}
    ok = np.asarray(ds["success"].values).ravel().astype(bool) & fit_rows
    nfree = max(int(sel.sum()) - len([p for p in params.values() if p.vary and not p.expr]), 1)
    rms = np.sqrt(np.asarray(ds["chisqr"].values).ravel() / nfree)
    if W is not None:  # weighted chi^2: back to counts with the mean weight
        rms = rms / np.mean(W if np.ndim(W) == 1 else W, axis=-1)
    out = BackgroundFit(kind, (lo, hi), values, stderr, rms, ok, np.asarray(ds["redchi"].values).ravel())
    for k, e in enumerate(at):
        out.at[e] = (values[f"bg_at_{k}"], stderr[f"bg_at_{k}"])
    return out
