"""Atmospheric CO2 and water vapour in FTIR spectra: recognised, masked or (CO2) modelled, never bands.

A spectrum measured against a background taken at another time carries the difference of the
beam path's CO2 and water vapour. Both are gas-phase rotation-vibration bands, far narrower in
structure than bands of solids, which is how they are recognised:

* **CO2** (nu3 P/R branches with maxima near 2337 / 2361 cm-1, nu2 Q branch at 667 cm-1): a
  template is computed from the rotor line positions (B'' = 0.3902, B' = 0.3871 cm-1, even J only, 296 K)
  seen through a Gaussian instrument line of the spectrum's resolution. The second derivatives of its
  two branches (P, R) are matched, robustly (with a cubic for the slowly varying curvature of broad
  bands), to the spectrum's second derivative (Savitzky-Golay, window 2.5x resolution) in a window
  around each band: second derivatives suppress the broad sample bands underneath (:func:`_match_co2`).
  The band is *recognised* by its pattern: the amount (the branches' weighted mean) > 3 standard errors
  and > 3 noise SDs, the two branches at one amount (within CO2_MAX_INCONSISTENCY standard errors) and
  each seen; a strong match without the pattern (a sample band on one branch) is *doubtful*, never
  masked. The range where the scaled template exceeds half a noise SD (at least where it exceeds 5 % of
  its maximum, at most 0.5 %) is masked.
* **Water vapour** (lines in 1300-2050 and 3450-4000 cm-1): narrow lines (FWHM <= 3x resolution,
  after removing the broad signal with a Savitzky-Golay filter of 6x resolution) found by the
  shared peak picker at 5 noise SDs, positive or negative; recognised by the line pattern of a
  rotation-vibration band (at least 8 instrument-narrow lines, FWHM <= 1.6x resolution, at least 4
  in each branch, below and above the band centre: :func:`_water_pattern`), never from a few
  sharp sample bands; each line is masked over
  +-1.5 FWHM (at least +-1 resolution).

Masked points are left out of baselines and band fits; bands found inside a masked range are not
reported. CO2 that overlaps a sample band is modelled instead (:func:`co2_components`: the envelope
of its lines as a few rigidly tied Gaussians in the shared ModelSpec), unless its rotational lines
are resolved (:func:`line_modulation`), where an envelope would be wrong and it stays masked.
The line physics (rotational constants) is written here because no maintained Python
package installed here ships IR line lists (HITRAN access needs an account and network).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

HC_K = 1.4387769          # cm K
CO2_NU3 = 2349.143        # cm-1, band origin
CO2_NU2_Q = 667.38        # cm-1
CO2_B = 0.39021           # cm-1, ground-state rotational constant
CO2_B3 = 0.38714          # cm-1, rotational constant of the nu3 = 1 state
CO2_WINDOWS = {"CO2 2337/2361": (2230.0, 2470.0), "CO2 667": (600.0, 740.0)}
WATER_RANGES = ((1300.0, 2050.0), (3450.0, 4000.0))
#: water-vapour band centres (cm-1): nu2 bending, nu3/nu1 stretching; their branches lie within WATER_BRANCH_REACH
WATER_BAND_CENTRES, WATER_BRANCH_REACH = (1595.0, 3756.0), 400.0
#: lines needed in each branch of one band, and in all (:func:`_water_pattern`), each at most
#: WATER_MAX_FWHM_RES resolutions wide
WATER_MIN_BRANCH, WATER_MIN_LINES, WATER_MAX_FWHM_RES = 4, 8, 1.6
#: the P and R branch amounts of recognised CO2 agree within this many standard errors (:func:`_match_co2`)
CO2_MAX_INCONSISTENCY = 3.0
#: rounds of the robust match (each with the Cauchy scale from the last round's residuals; 0: least squares)
CO2_MATCH_ROUNDS = 3
#: degree of the Legendre polynomial beside the templates (broad bands' curvature); 3 = the former cubic
CO2_MATCH_DEGREE = 3


@dataclass
class Atmosphere:
    """What was recognised in one spectrum."""

    regions: list = field(default_factory=list)     # [(lo, hi, label)] masked cm-1 ranges
    #: label -> {"amplitude", "stderr", "significance", "consistency", "branches", "resolution_cm1"}
    #: (:func:`_match_co2`; ``doubtful``: a note when a strong match lacks the two-branch pattern)
    co2: dict = field(default_factory=dict)
    #: CO2 bands in reach but not recognised (best match below the thresholds, or ``doubtful``: a strong
    #: match without the two-branch pattern, with the note saying so): label -> same keys
    co2_weak: dict = field(default_factory=dict)
    water_lines: list = field(default_factory=list)  # centres of recognised water lines (cm-1)
    #: the same lines: {"center", "fwhm", "height" (signed, on the high-passed data), "lo", "hi" (masked)}
    water: list = field(default_factory=list)
    notes: list = field(default_factory=list)       # human-readable, for Result.warnings

    def mask(self, x):
        x = np.asarray(x, float)
        m = np.zeros(x.shape, bool)
        for lo, hi, _ in self.regions:
            m |= (x >= lo) & (x <= hi)
        return m

    def shade(self):
        """Masked ranges as a list of ``(lo, hi)`` for plots."""
        return [(float(lo), float(hi)) for lo, hi, _ in self.regions]


def _gauss_lines(x, centres, weights, resolution):
    sg = resolution / (2 * np.sqrt(2 * np.log(2)))
    d = x[:, None] - np.asarray(centres)[None, :]
    return (np.exp(-d * d / (2 * sg * sg)) * np.asarray(weights)[None, :]).sum(axis=1)


CO2_D = 1.33e-7           # cm-1, centrifugal distortion constant (ground state; upper state taken equal)


def co2_lines(band: str = "CO2 2337/2361", temperature: float = 296.0, rel_min: float = 0.0):
    """Rotational line positions (cm-1) and relative intensities (max 1) of a CO2 band.

    nu3: R(J) = nu0 + B'(J+1)(J+2) - B J(J+1), P(J) = nu0 + B'(J-1)J - B J(J+1) (minus the
    centrifugal terms), even J only (16O12C16O nuclear-spin statistics), Boltzmann populations
    at ``temperature``; nu2: a Q branch at 667.4 cm-1 with weak P/R wings. Lines weaker than
    ``rel_min`` of the strongest are dropped.
    """
    J = np.arange(0, 120, 2)
    pop = (2 * J + 1) * np.exp(-CO2_B * J * (J + 1) * HC_K / temperature)
    Jp = J[J > 0]
    if band.endswith("667"):
        lines = np.r_[CO2_NU2_Q, CO2_NU2_Q + 2 * CO2_B * (J + 1), CO2_NU2_Q - 2 * CO2_B * Jp]
        w = np.r_[pop.sum() * 0.5, pop * 0.25, pop[J > 0] * 0.25]
    else:
        # B' < B spreads the P branch further down: ~10 cm-1 at J = 60
        e0 = CO2_B * J * (J + 1) - CO2_D * (J * (J + 1)) ** 2
        r = CO2_NU3 + CO2_B3 * (J + 1) * (J + 2) - CO2_D * ((J + 1) * (J + 2)) ** 2 - e0
        p = CO2_NU3 + CO2_B3 * (Jp - 1) * Jp - CO2_D * ((Jp - 1) * Jp) ** 2 - e0[J > 0]
        lines = np.r_[r, p]
        w = np.r_[pop * (J + 1) / (2 * J + 1), pop[J > 0] * Jp / (2 * Jp + 1)]
    w = w / w.max()
    keep = w >= rel_min
    return lines[keep], w[keep]


def co2_template(x, resolution: float, band: str = "CO2 2337/2361", temperature: float = 296.0):
    """Unit-peak CO2 absorbance template on ``x`` (cm-1) at ``resolution`` (cm-1 FWHM)."""
    x = np.asarray(x, float)
    lines, w = co2_lines(band, temperature)
    t = _gauss_lines(x, lines, w, max(resolution, 0.2))
    peak = t.max() if t.size else 0.0
    return t / peak if peak > 0 else t


#: name prefix of the modelled CO2 components of a ModelSpec (never sample bands)
CO2_COMPONENT = {"CO2 2337/2361": "atm_CO2_nu3", "CO2 667": "atm_CO2_nu2"}
#: rotational line spacing of CO2 (cm-1): even J only, so 4B
CO2_LINE_SPACING = 4 * CO2_B


def line_modulation(resolution: float) -> float:
    """Relative depth of the rotational-line ripple left by a Gaussian instrument line of FWHM
    ``resolution`` (first Fourier component of lines spaced :data:`CO2_LINE_SPACING`)."""
    sg = resolution / (2 * np.sqrt(2 * np.log(2)))
    return float(np.exp(-2 * np.pi ** 2 * sg ** 2 / CO2_LINE_SPACING ** 2))


@lru_cache(maxsize=32)
def co2_envelope(label: str, resolution: float):
    """The CO2 band at ``resolution`` as a few Gaussians (rigid shape; computed once per resolution).

    The line-by-line template (:func:`co2_template`, unit peak) is approximated by K = 8, 10 or 14
    Gaussians placed at quantiles of its area and fitted with the shared ``fit_spec``; the first K
    whose largest misfit is below 0.3 % of the maximum is kept (else the best; a misfit above 1 %
    stops the search: the envelope is too sharp for a few Gaussians, as at 2 cm-1). Tens of rotational
    lines as separate lmfit components cost ~50 ms per model evaluation; K rigidly tied Gaussians
    a few ms, and the batch engine fits them.

    Returns
    -------
    dict or None
        ``{"center", "sigma", "amplitude"}`` arrays (cm-1, cm-1, area per unit band maximum),
        ``"misfit"`` (largest misfit, fraction of the maximum) and ``"k"``; None when the
        rotational lines are resolved (ripple > 2 % at this resolution, below ~1.6 cm-1): an
        envelope would be wrong there.
    """
    from ...fitting.models import ModelSpec, Peak
    from ...fitting.fit import fit_spec

    if line_modulation(resolution) > 0.02:
        return None
    lines, _w = co2_lines(label)
    lo, hi = float(lines.min()) - 3 * resolution, float(lines.max()) + 3 * resolution
    x = np.arange(lo, hi, min(CO2_LINE_SPACING / 3, resolution / 4))    # resolves any ripple left
    t = co2_template(x, resolution, label)
    on = np.flatnonzero(t > 1e-3)
    x, t = x[on[0]:on[-1] + 1], t[on[0]:on[-1] + 1]
    cdf = np.cumsum(t)
    cdf = cdf / cdf[-1]
    best = None
    for k in (8, 10, 14):
        cs = np.interp((np.arange(k) + 0.5) / k, cdf, x)
        fw = float(max(resolution, np.ptp(cs) / k))
        spec = ModelSpec(peaks=[Peak(name=f"e{i}", shape="gaussian", center=float(c), fwhm=fw,
                                     bounds={"center": (float(x[0]), float(x[-1]))}) for i, c in enumerate(cs)])
        try:
            out = fit_spec(spec, x, t, noise=1e-4)
        except Exception:           # noqa: BLE001 - a K that cannot be fitted is simply not used
            continue
        misfit = float(np.abs(out.residual).max())
        v = out.values
        cand = {"center": np.array([v[f"e{i}_center"] for i in range(k)]),
                "sigma": np.array([v[f"e{i}_sigma"] for i in range(k)]),
                "amplitude": np.array([v[f"e{i}_amplitude"] for i in range(k)]), "misfit": misfit, "k": k}
        if best is None or misfit < best["misfit"]:
            best = cand
        if misfit <= 0.003 or misfit > 0.01:      # good enough, or hopeless (sharp structure: <= 2 cm-1)
            break
    return best


def co2_components(label: str, resolution: float, amplitude: float | None = None, shift_cm1: float = 2.0,
                   amplitude_range: tuple[float, float] | None = None):
    """The CO2 band as components of the shared ModelSpec, or None (lines resolved).

    K Gaussians of :func:`co2_envelope` with fixed widths, relative positions and intensity ratios:
    the first is free in intensity (either sign: the background can hold more CO2 than the sample
    beam) and position (+-``shift_cm1``: axis calibration), the others follow it through affine
    expressions (so the batch engine fits them).

    ``amplitude_range`` (template amplitudes, the units of :func:`recognise`'s ``amplitude``)
    bounds the free intensity: what was recognised beforehand, +- its uncertainty.

    Returns
    -------
    (peaks, exprs, misfit) or None
        ``peaks`` named ``<CO2_COMPONENT>_<i>``; ``exprs`` for :class:`ModelSpec.exprs`; ``misfit``
        the envelope's largest deviation from the line-by-line band (fraction of its maximum).
    """
    from ...fitting.models import Peak

    env = co2_envelope(label, float(resolution))
    if env is None:
        return None
    base = CO2_COMPONENT[label]
    c, s, a = env["center"], env["sigma"], env["amplitude"]
    j = int(np.argmax(np.abs(a)))
    names = [f"{base}_{i}" for i in range(c.size)]
    peaks, exprs = [], {}
    for i in range(c.size):
        fw = float(2 * np.sqrt(2 * np.log(2)) * s[i])
        if i == j:
            init = {} if amplitude is None else {"amplitude": float(amplitude * a[j])}
            amp_b = (None, None)
            if amplitude_range is not None:
                amp_b = tuple(sorted(float(v * a[j]) for v in amplitude_range))
            peaks.append(Peak(name=names[i], shape="gaussian", center=float(c[i]), fwhm=fw, fixed=["sigma"],
                              init=init, bounds={"center": (float(c[i] - shift_cm1), float(c[i] + shift_cm1)),
                                                 "amplitude": amp_b}))
        else:
            # lmfit clips expression values to the bounds too: a negative CO2 needs open bounds
            peaks.append(Peak(name=names[i], shape="gaussian", center=float(c[i]), fwhm=fw, fixed=["sigma"],
                              bounds={"amplitude": (None, None)}))
            exprs[f"{names[i]}.center"] = f"{{{names[j]}.center}} + ({float(c[i] - c[j])!r})"
            exprs[f"{names[i]}.amplitude"] = f"({float(a[i] / a[j])!r}) * {{{names[j]}.amplitude}}"
    return peaks, exprs, env["misfit"]


@lru_cache(maxsize=64)
def _template_cached(x0, x1, n, resolution, label):
    """Template on a uniform grid (stacks share one grid: computed once)."""
    t = co2_template(np.linspace(x0, x1, n), resolution, label)
    t.flags.writeable = False
    return t


def _second_derivative(x, y, resolution):
    from scipy.signal import savgol_filter

    dx = float(np.median(np.diff(x)))
    win = max(5, int(round(2.5 * resolution / dx)) | 1)
    if win >= y.size:
        return None
    return savgol_filter(y, win, 3, deriv=2, delta=dx, mode="nearest")   # edges unused: no polyfit


def _branch_templates(xs, resolution, label):
    """The band's template (:func:`co2_template`, unit peak) split into its two branches: the lines
    below the band centre (P) and at / above it (R; for nu2 the Q branch with the R wing)."""
    lines, w = co2_lines(label)
    centre = CO2_NU2_Q if label.endswith("667") else CO2_NU3
    low = lines < centre
    res = max(resolution, 0.2)
    tp, tr = _gauss_lines(xs, lines[low], w[low], res), _gauss_lines(xs, lines[~low], w[~low], res)
    peak = float((tp + tr).max()) if xs.size else 0.0
    return (tp / peak, tr / peak) if peak > 0 else (tp, tr)


def _match_co2(x, y, label, resolution, noise):
    """Second-derivative match of the two branches of a CO2 band in its window (module docstring).

    The spectrum's second derivative is fitted by the P and R branch templates' second derivatives
    (free amplitudes) plus a cubic, with a robust (Cauchy) loss: the curvature of sharp sample bands
    in the window is an outlier to the match, not a reason to inflate every point's error (a plain
    least-squares match gave standard errors 10-90x the noise with strong bands in the window, and a
    bound built on them let a modelled CO2 swallow a band). The residual scale never falls below
    the noise carried through the derivative filter. The CO2 amount is the two branches' weighted
    mean; ``consistency`` is how far apart they are, in standard errors (CO2 is both branches at one
    amount: a single sample band near 2361 cm-1 fits one branch only).
    """
    from scipy.optimize import least_squares
    from scipy.signal import savgol_coeffs

    lo, hi = CO2_WINDOWS[label]
    sel = (x >= lo) & (x <= hi) & np.isfinite(y)
    if sel.sum() < 40 or x[sel].min() > lo + 40 or x[sel].max() < hi - 40:
        return None
    xs, ys = x[sel], y[sel]
    t = _template_cached(float(xs[0]), float(xs[-1]), xs.size, float(resolution), label) \
        if np.allclose(np.diff(xs), xs[1] - xs[0], rtol=1e-6, atol=0) else co2_template(xs, resolution, label)
    tp, tr = _branch_templates(xs, resolution, label)
    d2y = _second_derivative(xs, ys, resolution)
    if d2y is None:
        return None
    d2p, d2r = _second_derivative(xs, tp, resolution), _second_derivative(xs, tr, resolution)
    if not (np.any(d2p) and np.any(d2r)):
        return None
    dx = float(np.median(np.diff(xs)))
    win = max(5, int(round(2.5 * resolution / dx)) | 1)
    floor = float(noise or 0.0) * float(np.linalg.norm(savgol_coeffs(win, 3, deriv=2, delta=dx)))
    u = (xs - xs.mean()) / (0.5 * np.ptp(xs))
    A = np.c_[d2p, d2r, np.polynomial.legendre.legvander(u, CO2_MATCH_DEGREE)]   # curvature of broad bands
    coef, *_ = np.linalg.lstsq(A, d2y, rcond=None)
    r = d2y - A @ coef
    scale = np.inf                           # no rounds: plain least squares
    for _ in range(CO2_MATCH_ROUNDS):       # the scale from the robust fit's own residuals, a few rounds
        scale = max(1.4826 * float(np.median(np.abs(r - np.median(r)))), floor, 1e-300)
        coef = least_squares(lambda c: A @ c - d2y, coef, jac=lambda c: A, loss="cauchy", f_scale=scale,
                             method="trf", x_scale="jac").x
        r = d2y - A @ coef
    w = 1.0 / (1.0 + (r / scale) ** 2)          # the Cauchy loss's weights at the solution
    dof = max(float(w.sum()) - A.shape[1], 1.0)
    s2 = max(float(np.sum(w * r * r)) / dof, floor ** 2)
    cov = np.linalg.pinv(A.T @ (A * w[:, None]))[:2, :2] * s2
    b = coef[:2]
    try:
        ci = np.linalg.inv(cov)
    except np.linalg.LinAlgError:
        return None
    one = np.ones(2)
    var = 1.0 / float(one @ ci @ one)
    amp = var * float(one @ ci @ b)
    se = float(np.sqrt(max(var, 0.0)))
    d = b - amp
    consistency = float(np.sqrt(max(float(d @ ci @ d), 0.0)))
    bse = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    return {"amplitude": amp, "stderr": se, "significance": abs(amp) / se if se > 0 else np.inf,
            "consistency": consistency, "branches": {"P": (float(b[0]), float(bse[0])), "R": (float(b[1]), float(bse[1]))},
            "branch_peaks": (float(tp.max()), float(tr.max())), "resolution": resolution, "template_x": xs, "template": t}


def recognise(x, y, resolution: float | None = None, noise: float | None = None, region=None) -> Atmosphere:
    """Recognise atmospheric CO2 and water vapour in an absorbance spectrum.

    Parameters
    ----------
    x, y : arrays (n,)
        Ascending wavenumbers (cm-1) and absorbance (NaN allowed: saturated points).
    resolution : float, optional
        Instrument resolution (cm-1). Unknown: the CO2 templates at 1, 2, 4 and 8 cm-1 are tried
        and the best match is kept; water lines use 4x the point spacing.
    noise : float, optional
        Noise SD of ``y`` (default: the shared robust estimate).
    region : (lo, hi), optional
        Only look for the atmospheric bands that reach into this range (cm-1).

    Returns
    -------
    Atmosphere
    """
    from ...fitting.noise import noise_sigma, smooth
    from ...fitting.peaks import pick_peaks

    x = np.asarray(x, float)
    y = np.asarray(y, float)
    atm = Atmosphere()
    if x.size < 10:
        return atm
    dx = float(np.median(np.diff(x)))
    res_known = resolution is not None and resolution > 0
    res_w = resolution if res_known else max(4 * dx, 1.0)
    win = max(7, int(round(6 * res_w / dx)) | 1)
    rlo, rhi = (sorted(float(v) for v in region) if region is not None else (-np.inf, np.inf))
    if not noise:
        # the whole spectrum: a window full of water lines would inflate the estimate
        fin = np.isfinite(y)
        noise = noise_sigma(y[fin] - smooth(y[fin], window=win))  # high-passed: sample bands removed
    for label, (wlo, whi) in CO2_WINDOWS.items():
        if whi < rlo or wlo > rhi:
            continue
        cands = [_match_co2(x, y, label, r, noise) for r in ((resolution,) if res_known else (1.0, 2.0, 4.0, 8.0))]
        cands = [c for c in cands if c is not None]
        if not cands:
            continue
        best = max(cands, key=lambda c: c["significance"])
        amp = best["amplitude"]
        info = {"amplitude": amp, "stderr": best["stderr"], "significance": float(best["significance"]),
                "consistency": best["consistency"], "branches": best["branches"],
                "resolution_cm1": best["resolution"]}
        strong = best["significance"] > 3 and abs(amp) > 3 * noise
        # the line pattern: both branches at one amount (a branch whose template peaks below half the
        # band's maximum, nu2's P wing, is too weak to be required)
        seen = all(np.sign(a) == np.sign(amp) and abs(a) > 2 * se
                   for (a, se), pk in zip(best["branches"].values(), best["branch_peaks"]) if pk >= 0.5)
        pattern = best["consistency"] <= CO2_MAX_INCONSISTENCY and seen
        if strong and pattern:
            rel = max(0.005, min(0.05, 0.5 * noise / abs(amp)))
            on = best["template"] >= rel
            xs = best["template_x"]
            lo, hi = float(xs[on].min()), float(xs[on].max())
            atm.regions.append((lo, hi, label))
            atm.co2[label] = info
            atm.notes.append(f"atmospheric {label} cm-1 recognised (amplitude {amp:+.3g}, "
                             f"{best['significance']:.0f} sigma): {lo:.0f}-{hi:.0f} cm-1 masked")
        else:
            # weak, broad (8 cm-1 resolution flattens the second derivative) or not CO2's pattern: not
            # masked, but a band under it still gets the CO2 modelled (bands.add_co2_model), bounded
            if strong:
                (ap, sp), (ar, sr) = best["branches"]["P"], best["branches"]["R"]
                info["doubtful"] = (f"atmospheric {label} cm-1 doubtful: its two branches disagree (P {ap:+.3g} ± "
                                    f"{sp:.2g}, R {ar:+.3g} ± {sr:.2g}; CO2 has both at one amount): a sample band "
                                    "on one branch, or a band taken for CO2; not masked but modelled, its amount "
                                    "bounded by the branches' spread")
            atm.co2_weak[label] = info
    # water vapour: narrow lines in the bending / stretching regions
    lines = []
    for lo, hi in WATER_RANGES:
        if min(hi, rhi) - max(lo, rlo) < 20:      # the fitted region does not reach this range
            continue
        lo, hi = max(lo, rlo - 50.0), min(hi, rhi + 50.0)
        sel = (x >= lo) & (x <= hi) & np.isfinite(y)
        if sel.sum() < win + 5:
            continue
        xs, ys = x[sel], y[sel]
        hp = ys - smooth(ys, window=win)
        # dense lines inflate a local estimate: the whole spectrum's high-passed noise is the floor
        nz = min(noise_sigma(hp), noise)
        for sign in (1.0, -1.0):
            for c in pick_peaks(xs, sign * hp, noise=nz, snr=5.0, max_peaks=500, smooth=True):
                # a gas line is as narrow as the instrument line, but not a one-point noise spike,
                # and stands above the noise itself (prominence alone is met by noise pairs)
                if 0.5 * res_w <= c["fwhm"] <= 3 * res_w and c["height"] > 5 * nz:
                    lines.append((c["center"], c["fwhm"], sign * c["height"]))
    # the pattern is judged on the instrument-narrow lines (a gas line is as wide as the instrument
    # line; sharp bands of solids and liquids are wider at <= 4 cm-1 resolution: polystyrene's
    # 1601 / 1583 / 1493 / 1452 cm-1 measure 1.5-2x a 4 cm-1 resolution on the high-passed data)
    if _water_pattern([c for c, w, _h in lines if w <= WATER_MAX_FWHM_RES * res_w]):
        lines.sort()
        atm.water_lines = [c for c, _w, _h in lines]
        for c, w, h in lines:
            half = max(1.5 * w, res_w)
            atm.regions.append((c - half, c + half, "H2O"))
            atm.water.append({"center": float(c), "fwhm": float(w), "height": float(h), "lo": float(c - half),
                              "hi": float(c + half)})
        atm.notes.append(f"atmospheric water vapour recognised ({len(lines)} narrow lines in 1300-2050 / "
                         "3450-4000 cm-1): lines masked")
    return atm


def _water_pattern(centres) -> bool:
    """Water vapour's line pattern: a rotation-vibration band is two branches of many lines, below
    and above its centre (bending 1595, stretching 3756 cm-1). Recognised when one band has at least
    WATER_MIN_BRANCH lines in each branch (within WATER_BRANCH_REACH of the centre) and at least
    WATER_MIN_LINES in all: a few sharp sample bands (polystyrene 1601 / 1583 / 1493 / 1452 cm-1:
    three below 1595, one above) are no vapour. (The line positions themselves would be the
    stronger test; no maintained package installed here ships them, see the module docstring.)"""
    c = np.asarray(list(centres), float)
    if c.size < WATER_MIN_LINES:
        return False
    for centre in WATER_BAND_CENTRES:
        near = c[np.abs(c - centre) <= WATER_BRANCH_REACH]
        if (near < centre).sum() >= WATER_MIN_BRANCH and (near > centre).sum() >= WATER_MIN_BRANCH:
            return True
    return False


@lru_cache(maxsize=16)
def known_regions(resolution: float = 4.0):
    """The CO2 ranges masked unconditionally by ``atmosphere="mask"`` (template > 0.5 % of max)."""
    out = []
    for label, (lo, hi) in CO2_WINDOWS.items():
        xs = np.arange(lo, hi, 0.25)
        t = co2_template(xs, resolution, label)
        on = t >= 0.005
        out.append((float(xs[on].min()), float(xs[on].max()), label))
    return tuple(out)
