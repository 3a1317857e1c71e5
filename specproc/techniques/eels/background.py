"""Pre-edge background of EELS core-loss spectra: power law, exponential or polynomial.

The background is fitted in a window before the edge and extrapolated under it (Egerton 2011, §4.4).
The algorithms are the window models of the one registry of backgrounds,
:mod:`specproc.fitting.baselines` (every spectrum of a stack in one call of the batch engine, the
extrapolation uncertainty from each fit's full covariance); this module keeps EELS's result record.

Models (``E`` in eV):

* ``power_law``: ``A E^exponent`` (``exponent = -r``, typically ``2 < r < 6``), lmfit's ``PowerLawModel``;
* ``exponential``: ``A exp(-E / decay)``, lmfit's ``ExponentialModel`` (not batched: lmfit loop);
* ``polynomial``: ``c0 + c1 E + ...`` of ``degree`` (lmfit's ``PolynomialModel``), for short windows.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...core.errors import ParameterError
from ...fitting import baselines as _bl

KINDS = _bl.WINDOW_MODELS


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
    _axis: np.ndarray | None = field(default=None, repr=False)   # the fitted axis and the background
    _curve: np.ndarray | None = field(default=None, repr=False)  # on it (computed once; maps are large)

    def evaluate(self, E: np.ndarray, rows: slice | None = None) -> np.ndarray:
        """Background ``(n, len(E))`` at energies ``E`` (eV), optionally of some ``rows`` only."""
        if rows is None and self._curve is not None and (E is self._axis or np.array_equal(E, self._axis)):
            return self._curve
        vals = self.values if rows is None else {k: v[rows] for k, v in self.values.items()}
        return evaluate(self.kind, vals, E)


def evaluate(kind: str, values: dict, E: np.ndarray) -> np.ndarray:
    """A background kind ``(n, len(E))`` from its parameter arrays (``bg_*``)."""
    return _bl.window_evaluate(kind, values, E)


def lmfit_model(kind: str, degree: int = 2):
    """The lmfit model of a background kind (prefix ``bg_``)."""
    return _bl.window_model(kind, degree)


def initial(kind: str, E: np.ndarray, Y: np.ndarray, degree: int = 2) -> dict:
    """Per-spectrum start values (linear regression in log space / polynomial least squares)."""
    return _bl.window_starts(kind, E, Y, degree)


def fit_background(E: np.ndarray, Y: np.ndarray, window: tuple[float, float], kind: str = "power_law",
                   degree: int = 2, at: tuple[float, ...] = (), weights: np.ndarray | None = None,
                   rows: np.ndarray | None = None) -> BackgroundFit:
    """Fit the pre-edge background of every spectrum (:func:`specproc.fitting.baselines.baseline`).

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
    if kind not in KINDS:
        raise ParameterError(f"background {kind!r}: one of {', '.join(KINDS)}")
    curve, info = _bl.baseline(E, Y, kind, window=window, degree=degree, at=at, weights=weights, rows=rows)
    return BackgroundFit(kind, info["window"], info["values"], info["stderr"], info["rms"], info["ok"],
                         info["redchi"], dict(info["at"]), _axis=np.asarray(E, float), _curve=curve)
