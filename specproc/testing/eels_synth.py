"""Synthetic EELS core-loss (near-edge) and low-loss spectra with known truth (tests, sample data).

The physics is deliberately *not* the fitting model of :mod:`specproc.techniques.eels`: the
continuum onset is an error-function step that decays above the edge, the background a power law,
the noise Poisson, and plural scattering (when asked) a convolution with a low-loss spectrum made
of a zero-loss Gaussian and Poisson-weighted plasmons.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.special import erf

FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))


def gaussian(E, area, center, fwhm):
    s = fwhm * FWHM_TO_SIGMA
    return area / (s * math.sqrt(2 * math.pi)) * np.exp(-0.5 * ((E - center) / s) ** 2)


def core_loss(E, *, pi_center=188.6, pi_fwhm=1.0, pi_height=800.0, step_height=500.0, step_offset=3.0,
              step_sigma=0.8, step_decay=1.0, ss_center=199.0, ss_fwhm=9.0, ss_height=700.0,
              bg_at=2000.0, bg_ref=180.0, r=3.5):
    """Noise-free single-scattering core-loss spectrum (counts per channel).

    Heights are peak counts per channel; the background is ``bg_at (E / bg_ref)^-r``.
    """
    E = np.asarray(E, float)
    bg = bg_at * (E / bg_ref) ** (-r)
    s = pi_fwhm * FWHM_TO_SIGMA
    pi = pi_height * np.exp(-0.5 * ((E - pi_center) / s) ** 2)
    e0 = pi_center + step_offset
    step = step_height * 0.5 * (1 + erf((E - e0) / (math.sqrt(2) * step_sigma)))
    step *= np.where(E > e0, (np.maximum(E, e0) / e0) ** (-step_decay), 1.0)
    ss = ss_height * np.exp(-0.5 * ((E - ss_center) / (ss_fwhm * FWHM_TO_SIGMA)) ** 2)
    return bg + pi + step + ss, dict(background=bg, pi=pi, step=step, sigma_star=ss)


def low_loss(E, *, zlp_center=0.0, zlp_fwhm=0.8, t_over_lambda=0.4, plasmon=22.0, plasmon_fwhm=6.0,
             i0=1e6):
    """Low-loss spectrum (counts per channel): zero loss + plasmons with Poisson weights."""
    E = np.asarray(E, float)
    de = float(E[1] - E[0])
    out = gaussian(E, i0 / de, zlp_center, zlp_fwhm) * de
    for k in (1, 2, 3):
        w = t_over_lambda ** k / math.factorial(k)
        out += gaussian(E, i0 * w / de, zlp_center + k * plasmon, zlp_fwhm + k * plasmon_fwhm) * de
    return out


def plural(core, ll):
    """Convolve a single-scattering core loss with a normalised low loss (same dispersion)."""
    k = ll / ll.sum()
    izlp = int(np.argmax(ll))
    full = np.convolve(core, k, mode="full")
    return full[izlp:izlp + core.size]


def noisy(y, rng, scale=1.0):
    """Poisson noise on ``y`` counts (``scale`` > 1 for e.g. a detector gain)."""
    return rng.poisson(np.maximum(y, 0) / scale).astype(float) * scale


def random_truth(rng, counts=2000.0):
    """Random near-edge truth (not the study's values): π* in 186-194 eV, realistic jump ratios."""
    c = rng.uniform(186.0, 194.0)
    return dict(pi_center=c, pi_fwhm=rng.uniform(0.7, 1.6), pi_height=counts * rng.uniform(0.3, 0.8),
                step_height=counts * rng.uniform(0.2, 0.5), step_offset=rng.uniform(2.5, 3.5),
                ss_center=c + rng.uniform(10.0, 14.0), ss_fwhm=rng.uniform(7.0, 11.0),
                ss_height=counts * rng.uniform(0.3, 0.6), bg_at=counts, r=rng.uniform(2.8, 4.2))
