"""Lineshapes shared by every technique (lmfit's parameter names and conventions).

All peak functions are area-normalised: ``amplitude`` is the integrated area. They are plain
numpy functions that broadcast, so the batch engine can evaluate a whole stack at once
(parameters of shape ``(n, 1)`` against ``x`` of shape ``(m,)``). The conventions are lmfit's
(``sigma`` is the Gaussian standard deviation / Lorentzian HWHM), so an lmfit model and the
batch engine describe the same curve with the same numbers.
"""
from __future__ import annotations

import numpy as np
from scipy.special import wofz

LN2 = np.log(2.0)
S2PI = np.sqrt(2.0 * np.pi)
S2 = np.sqrt(2.0)
TINY = 1.0e-15

#: Peak shapes known to specproc, their lmfit model class and shape parameters.
SHAPES = {
    "gaussian": ("GaussianModel", ("amplitude", "center", "sigma")),
    "lorentzian": ("LorentzianModel", ("amplitude", "center", "sigma")),
    "pseudo-voigt": ("PseudoVoigtModel", ("amplitude", "center", "sigma", "fraction")),
    "voigt": ("VoigtModel", ("amplitude", "center", "sigma", "gamma")),
    "pearson7": ("Pearson7Model", ("amplitude", "center", "sigma", "expon")),
}


def gaussian(x, amplitude=1.0, center=0.0, sigma=1.0):
    """Area-normalised Gaussian; FWHM = 2 sqrt(2 ln 2) sigma."""
    s = np.maximum(sigma, TINY)
    return amplitude / (S2PI * s) * np.exp(-((x - center) ** 2) / (2 * s * s))


def lorentzian(x, amplitude=1.0, center=0.0, sigma=1.0):
    """Area-normalised Lorentzian; ``sigma`` is the HWHM, FWHM = 2 sigma."""
    s = np.maximum(sigma, TINY)
    return amplitude / np.pi * s / ((x - center) ** 2 + s * s)


def pseudo_voigt(x, amplitude=1.0, center=0.0, sigma=1.0, fraction=0.5):
    """lmfit's pseudo-Voigt: Lorentzian fraction ``fraction``, both with FWHM = 2 sigma."""
    s = np.maximum(sigma, TINY)
    sg = s / np.sqrt(2 * LN2)
    return (1 - fraction) * gaussian(x, amplitude, center, sg) + fraction * lorentzian(x, amplitude, center, s)


def voigt(x, amplitude=1.0, center=0.0, sigma=1.0, gamma=None):
    """Area-normalised Voigt (Faddeeva function); ``gamma`` defaults to ``sigma`` like lmfit."""
    if gamma is None:
        gamma = sigma
    s = np.maximum(sigma, TINY)
    z = (x - center + 1j * gamma) / (s * S2)
    return amplitude * np.real(wofz(z)) / (s * S2PI)


def pearson7(x, amplitude=1.0, center=0.0, sigma=1.0, expon=1.0):
    """lmfit's Pearson VII."""
    from scipy.special import beta

    s = np.maximum(sigma, TINY)
    arg = (x - center) / s
    scale = amplitude / (s * beta(expon - 0.5, 0.5))
    return scale * (1 + arg * arg) ** (-expon)


def fwhm(shape: str, sigma, fraction=None, gamma=None, expon=None):
    """Full width at half maximum of a peak of ``shape`` (same units as sigma)."""
    sigma = np.asarray(sigma, float)
    if shape == "gaussian":
        return 2 * np.sqrt(2 * LN2) * sigma
    if shape in ("lorentzian", "pseudo-voigt"):
        return 2 * sigma
    if shape == "voigt":
        g = sigma if gamma is None else np.asarray(gamma, float)
        fg = 2 * np.sqrt(2 * LN2) * sigma
        fl = 2 * g
        return 0.5346 * fl + np.sqrt(0.2166 * fl ** 2 + fg ** 2)  # Olivero & Longbothum (1977), 0.02 %
    if shape == "pearson7":
        e = 1.0 if expon is None else np.asarray(expon, float)
        return 2 * sigma * np.sqrt(2 ** (1 / e) - 1)
    raise ValueError(f"unknown lineshape {shape!r}")


def sigma_from_fwhm(shape: str, width, fraction=None, expon=None):
    """Inverse of :func:`fwhm` for the shapes whose FWHM depends on sigma alone (voigt: gamma=sigma)."""
    width = np.asarray(width, float)
    if shape == "voigt":
        return width / fwhm("voigt", 1.0)
    return width / fwhm(shape, 1.0, expon=expon)


FUNCTIONS = {"gaussian": gaussian, "lorentzian": lorentzian, "pseudo-voigt": pseudo_voigt, "voigt": voigt,
             "pearson7": pearson7}


def evaluate(shape: str, x, **params):
    try:
        return FUNCTIONS[shape](x, **params)
    except KeyError:
        raise ValueError(f"unknown lineshape {shape!r}; one of {sorted(FUNCTIONS)}") from None
