"""Automatic model selection: which components a spectrum holds, found without starts.

:func:`select_model` decides how many components a 1D spectrum holds, where and how wide, and
returns the final :class:`~specproc.fitting.fit.FitOutcome` with a record of every decision;
:func:`find_candidates` is its detector on its own. Every fit goes through the toolkit's
:func:`~specproc.fitting.fit.fit_spec` (batch engine, lmfit fallback): no optimiser of its own.

Algorithm
---------
1. **Working grid.** More than ``max_points`` points are averaged in bins of ``d`` consecutive
   points (``d`` kept below a tenth of the narrowest candidate's FWHM): selection and final fit
   run there, so the cost does not grow with the point count. The noise SD is the given one
   (``d == 1``) or :func:`~specproc.fitting.noise.noise_sigma` of the binned data, and its
   correlation length ``L`` (:func:`noise_correlation`) makes chi² differences and area errors of
   processed (zero-filled, interpolated) spectra as significant as they are, not ``L`` times more.
2. **Candidates** (:func:`find_candidates`): minima of Savitzky-Golay second derivatives at
   scales 2..n/8 points (x1.5), each divided by its noise SD (propagated through the filter with
   the noise autocorrelation, :func:`noise_acf`); a detection above ``snr`` that is also a maximum
   of the scale-normalised response over the neighbouring scales is a candidate. Shoulders have
   one, not only maxima.
3. **Windows.** Each candidate occupies +-4 FWHM; where no candidate reaches, the signal is back
   at the baseline and the range is split there: windows are selected independently (their own
   baseline), so a full-range IR spectrum gets every band, with no fixed count.
4. **Forward selection** per window: the proposals of a step are the strongest unused candidate
   no component covers and the strongest candidate of the residual (a broad line under a narrow
   one, a shoulder beside a fitted line); when neither gives a broad partner under a fitted line,
   partners at its centre 4 and 10 times as wide (a residual feature inside the line: the 7Li
   narrow-on-broad case) or ~3x as wide as an unexplained excess in its wing is far from it
   (:func:`~specproc.fitting.uncertainty.unexplained_signal`). Each is fitted with the components found so far (their
   fitted values as starts); the best by the information criterion (``"bic"``: ``chi²/L + k
   ln(n/L)``, or ``"aicc"``, noise known) is accepted when the criterion falls by more than
   ``ic_min`` (10), its area exceeds ``k_area`` (3) standard errors (x sqrt L) and its height
   ``k_height`` (3) noise SDs, and its centre did not run to its window.
5. **Merging and backward elimination** after each step: two components closer than
   ``merge_fraction`` (0.5) of the narrower FWHM, widths within x2, are one line (merged, refitted:
   no split lines); a component that is no longer significant is removed (one at a time); at the
   end a centre on its window is no line either, unless removing it raises the criterion by more
   than ``ic_min`` (a line of a crowded cluster whose window was too narrow: it stays).
6. **Stop** when no proposal is accepted (or ``max_components`` / ``budget_s`` is reached, with a
   warning). The final model is fitted once on the whole working grid (:func:`fit_spec`'s checks
   include the residual test: a feature above 5 noise SDs is a warning naming its position).
   Components closer than their FWHM are a warning that the count there is uncertain.

``n_components`` adds the best proposals (no tests) up to that count and warns when fewer exist.

Hooks for the techniques (their science stays in their folders): ``peak(name, center, fwhm)``
builds a component (bounds, satellites), ``reject(center)`` refuses a position (a satellite's
position, a window edge), ``base`` holds fixed components every trial carries (a recognised
nuisance envelope),
``name(i, center)`` names the final components.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .noise import POINTS_PER_FWHM, bin_mean

__all__ = ["select_model", "find_candidates", "noise_correlation", "noise_acf", "Selection", "IC_MIN", "K_AREA", "K_HEIGHT",
           "MERGE_FRACTION", "CANDIDATE_SNR"]

#: a candidate is a second-derivative minimum above this many of its noise SDs
CANDIDATE_SNR = 5.0
#: a component is added when the information criterion falls by more than this ("very strong" evidence)
IC_MIN = 10.0
#: ... its area exceeds K_AREA standard errors and its height K_HEIGHT noise SDs
K_AREA, K_HEIGHT = 3.0, 3.0
#: two components closer than this fraction of the narrower FWHM (widths within MERGE_WIDTH_RATIO) are one
MERGE_FRACTION, MERGE_WIDTH_RATIO = 0.5, 2.0
#: a candidate occupies +- this many FWHM (windows split where none reaches)
REACH_FWHM = 4.0
#: scale step of the second-derivative scale space
SCALE_STEP = 1.5
#: a trial is fitted *locally* (the components within LOCAL_REACH FWHM of the change free, the others
#: subtracted at their current values, a baseline of its own) when that neighbourhood holds less than
#: this fraction of its window's points: long ranges (a full-range IR spectrum, 30+ bands in one
#: window where the signal never returns to the baseline) cost per step what a few bands cost
LOCAL_MAX_FRACTION = 0.6
LOCAL_REACH = REACH_FWHM
#: ... where neighbours more than this many times as broad as the change are held fixed
LOCAL_BROAD = 4.0
#: long-range shortcuts apply to windows of more than this many components: local trials, a first
#: model (its strong, separated candidates) fitted by the batch engine alone (no lmfit search), the
#: components without signal removed together (windows of up to 16 components fit as before: the
#: NMR, XPS and generic sweeps are unchanged; at 8 a 14-line doublet case of bench_select lost a line)
LEAN_START = 16
#: more components than this in one fit is a long range: its final fit gets lmfit only briefly
LONG_RANGE = 16
#: widths (x the line's FWHM) of the broad partners tried under a line whose centre holds a residual feature
BROAD_PARTNER_FACTORS = (4.0, 10.0)


@dataclass
class Selection:
    """What :func:`select_model` returns: the final fit, the decisions, the warnings."""

    fit: object                                  # FitOutcome of the final model (working grid)
    record: dict                                 # JSON-ready: method, steps, windows, grid, stop reasons
    warnings: list = field(default_factory=list)


# ============================================================================ noise and candidates
def noise_acf(y, sigma: float, kmax: int = 32) -> np.ndarray:
    """Noise autocorrelation ``rho(0..K)`` of ``y`` (``[1.0]`` for white noise).

    ``rho(k) = 1 - sd_k^2 / (2 sigma^2)`` with ``sd_k`` the robust SD of lag-``k`` differences
    (blind to smooth signal) and ``sigma`` the noise SD (:func:`~specproc.fitting.noise.noise_sigma`
    sees correlated noise whole); it stops at the first ``rho < 0.05`` (the signal only lowers
    ``rho``: the correlation errs low, never high). Written here: no maintained library estimates a
    noise autocorrelation robustly against the signal (statsmodels' ``acf`` takes the lines for noise).
    """
    from .noise import robust_sigma

    y = np.asarray(y, float)
    out = [1.0]
    if y.size < 4 * kmax or not sigma > 0:
        return np.array(out)
    sds = [robust_sigma(y[k:] - y[:-k]) / np.sqrt(2) for k in range(1, kmax)]
    # the upper half of the lags (beyond the correlation of processed spectra) gives sigma itself: a
    # given sigma above that (an estimate raised by broad lines, 13 % on a white-noise 7Li spectrum)
    # is no correlation, and would read as rho ~ 0.1 at every lag (L ~ 5: chi² differences 5x too small)
    far = float(np.median(sds[kmax // 2 - 1:]))
    sigma = min(float(sigma), far) if far > 0 else float(sigma)
    for sd in sds:
        rho = 1 - (sd / float(sigma)) ** 2
        if rho < 0.05:
            break
        out.append(float(rho))
    return np.array(out)


def noise_correlation(y, sigma: float, kmax: int = 32) -> float:
    """Correlation length ``L = 1 + 2 sum rho(k)`` of the noise of ``y`` (1 for white noise;
    :func:`noise_acf`): chi² differences and covariance errors are ``L`` times too significant
    when the noise is treated as white."""
    rho = noise_acf(y, sigma, kmax)
    return float(np.clip(1 + 2 * rho[1:].sum(), 1.0, 50.0))


def _filtered_noise(c, sigma: float, rho) -> float:
    """SD of the noise after the linear filter ``c``: ``sigma sqrt(sum_k rho(|k|) (c*c)(k))``."""
    cc = np.convolve(c, c[::-1])            # autocorrelation of the filter, lags -(m-1)..(m-1)
    mid = c.size - 1
    v = cc[mid]
    for k in range(1, min(rho.size, c.size)):
        v += 2 * rho[k] * cc[mid + k]
    return float(sigma * np.sqrt(max(v, 0.0)))


def _scales(n: int) -> list[int]:
    out, h = [], 2.0
    while h <= max(2, n // 8):
        if not out or int(h) != out[-1]:
            out.append(int(h))
        h *= SCALE_STEP
    return out


def _zero_width(d2, i: int) -> int:
    """Points between the zero crossings of ``-d2`` around its maximum ``i``."""
    pos = d2 > 0
    left = np.flatnonzero(~pos[:i])
    right = np.flatnonzero(~pos[i:])
    lo = left[-1] if left.size else 0
    hi = i + right[0] if right.size else d2.size - 1
    return int(hi - lo)


def find_candidates(x, y, noise: float | None = None, *, snr: float = CANDIDATE_SNR, min_fwhm: float | None = None,
                    max_fwhm: float | None = None) -> list[dict]:
    """Candidate components from the second-derivative scale space, most significant first.

    Parameters
    ----------
    x, y : array_like (n,)
        Axis (either direction, about evenly spaced) and intensities.
    noise : float, optional
        Noise SD of ``y`` (default :func:`~specproc.fitting.noise.noise_sigma`).
    snr : float
        A candidate's second-derivative minimum exceeds this many of its noise SDs.
    min_fwhm, max_fwhm : float, optional
        Candidates outside these widths (axis units) are dropped.

    Returns
    -------
    list of dict
        ``{"center", "fwhm", "significance", "height"}`` (axis units; height of the data above the
        straight line between the candidate's flanks, a start, not a result).
    """
    from scipy.signal import find_peaks, savgol_coeffs, savgol_filter

    from .noise import noise_sigma

    x = np.asarray(x, float)
    y = np.asarray(y, float)
    n = x.size
    if n < 16 or y.shape != x.shape:
        return []
    sigma = float(noise) if noise else noise_sigma(y)
    rho = noise_acf(y, sigma)
    dx = float(abs(x[-1] - x[0]) / (n - 1))
    scales = _scales(n)
    sig, d2s = [], []
    for h in scales:
        d2 = -savgol_filter(y, 2 * h + 1, 3, deriv=2)
        # the noise SD of the derivative, propagated through the filter with the noise correlation
        # (processed spectra: zero filled, interpolated)
        c2 = savgol_coeffs(2 * h + 1, 3, deriv=2)
        # (floored at a third of the white-noise value: an estimated rho can make the sum ~0)
        sd = max(_filtered_noise(c2, sigma, rho), sigma * float(np.sqrt(np.sum(c2 ** 2))) / 3, 1e-300)
        sig.append(d2 / sd)
        d2s.append(d2)
    sig = np.array(sig)
    # scale selection on the scale-normalised response h |d2| (Lindeberg's gamma-normalised
    # derivative; gamma = 1 puts its maximum at h ~ 0.4-0.9 FWHM for Gaussian to Lorentzian lines,
    # measured): the significance keeps growing past the feature's scale (the noise falls faster
    # than the signal) and would merge a shoulder into its neighbour
    resp = np.array([np.asarray(d, float) * hh for d, hh in zip(d2s, scales)])
    found = []
    for j, h in enumerate(scales):
        idx, _ = find_peaks(sig[j], height=snr)
        for i in idx:
            v = sig[j, i]
            r = resp[j, i]
            lo, hi = max(0, i - max(1, h // 2)), min(n, i + max(1, h // 2) + 1)
            # a maximum over the neighbouring scales near it: the scale that matches the feature
            if (j > 0 and resp[j - 1, lo:hi].max() > r) or (j + 1 < len(scales) and resp[j + 1, lo:hi].max() > r):
                continue
            # the width from the zero crossings of the second derivative at the smallest scale that
            # still sees the feature clearly (>= half its best significance: the least broadened),
            # the filter's broadening (~0.55 h, measured on Gaussian and Lorentzian lines)
            # removed in quadrature; the half distance is ~0.35 FWHM (Gaussian 0.42, Lorentzian 0.29)
            k, ik = j, i
            for kk in range(j):
                lo_k, hi_k = max(0, i - scales[kk]), min(n, i + scales[kk] + 1)
                at = lo_k + int(np.argmax(sig[kk, lo_k:hi_k]))
                if sig[kk, at] >= max(snr, 0.5 * v):
                    k, ik = kk, at
                    break
            half = _zero_width(d2s[k], ik) / 2.0
            half = np.sqrt(max(half ** 2 - (0.55 * scales[k]) ** 2, (0.3 * half) ** 2))
            fw = max(half / 0.35, 2.0) * dx
            a, b = max(0, int(i - fw / dx)), min(n - 1, int(i + fw / dx))
            base = y[a] + (y[b] - y[a]) * (i - a) / max(b - a, 1)
            found.append({"center": float(x[i]), "fwhm": float(fw), "significance": float(v),
                          "height": float(max(y[i] - base, 0.0)), "index": int(i)})
    found.sort(key=lambda c: -c["significance"])
    out = []
    for c in found:       # one candidate per feature (a weaker detection inside a stronger one of like width)
        if min_fwhm and c["fwhm"] < min_fwhm or max_fwhm and c["fwhm"] > max_fwhm:
            continue
        if any(abs(c["center"] - o["center"]) < MERGE_FRACTION * min(c["fwhm"], o["fwhm"])
               and max(c["fwhm"], o["fwhm"]) < 3 * min(c["fwhm"], o["fwhm"]) for o in out):
            continue
        out.append(c)
    return out


# ============================================================================ components
def _peak_values(fo, pk) -> dict:
    """Centre, FWHM, area, height (data units), their errors and the shape's extra parameters of one peak of a fit."""
    from .lineshapes import area_of, fwhm_of, get
    from .models import prefix_of

    pre = prefix_of(pk.name)
    v = fo.values
    curve = fo.components.get(pre)
    amp_se = fo.stderr.get(pre + "amplitude") if isinstance(fo, _Local) else (
        fo.params[pre + "amplitude"].stderr if pre + "amplitude" in fo.params else None)
    extra = {p: float(v[pre + p]) for p in get(pk.shape).params
             if p not in ("center", "sigma", "amplitude", "height", "fwhm") and pre + p in v}
    return {"center": float(v[pre + "center"]), "fwhm": float(fwhm_of(pk.shape, v, pre)),
            "area": float(area_of(pk.shape, v, pre)),
            "area_stderr": None if amp_se is None or not np.isfinite(amp_se) or pre + "amplitude" in fo.bounded
            else float(amp_se),
            "height": float(np.max(curve)) if curve is not None and np.size(curve) else 0.0,
            "center_at_bound": pre + "center" in fo.bounded, "extra": extra}


class _Local:
    """A trial fitted by the batch engine alone on part of a window (a *local* trial), or the window's
    current model pieced together from such fits: what the selection reads of a
    :class:`~specproc.fitting.fit.FitOutcome` (values, stderr, bounded, components, best_fit, stats)."""

    def __init__(self, spec, x, y, values, stderr, bounded, components, chisqr, nvarys, redchi, free=()):
        self.spec, self.x, self.y = spec, x, y
        self.values, self.stderr, self.bounded = values, stderr, list(bounded)
        self.components = components
        self.best_fit = np.sum([np.broadcast_to(c, x.shape) for c in components.values()], axis=0) \
            if components else np.zeros_like(x)
        self.stats = {"chisqr": float(chisqr), "nvarys": int(nvarys), "redchi": float(redchi)}
        self.free = set(free)     # names of the components fitted (the others were held fixed)


class _Window:
    """Forward selection on one window of the working grid."""

    def __init__(self, x, y, sel: "_Selector", cands):
        self.x, self.y, self.s = x, y, sel
        # the fixed components ride along in the window that holds them (all of them: they may be tied)
        bp = list(sel.base.peaks) if sel.base is not None else []
        self.base = bp if bp and any(x[0] <= p.center <= x[-1] for p in bp) else []
        self.cands = cands
        self.used: list = []            # (centre, FWHM) of the proposals tried (accepted or not)
        self.comps: list = []           # current Peaks (fitted values as starts)
        self.fo = None
        self.vals, self.err, self.bnd = {}, {}, set()   # the current model's values, noise-known errors, bounds
        if self.base:
            cw = [(p.center, p.fwhm or 0.0) for p in self.base]
            self.base_span = (min(c - 2 * w for c, w in cw), max(c + 2 * w for c, w in cw))
        self.ic = self._baseline_ic()
        if self.fo is not None:
            self._store(self.fo)

    # ------------------------------------------------------------------ fits
    def _baseline_ic(self) -> float:
        s = self.s
        if self.base:
            fo = s.fit(list(self.base), self.x, self.y)
            self.fo = fo
            return s.ic(fo)
        deg = {"none": -1, "constant": 0, "linear": 1, "quadratic": 2}[s.baseline]
        r = self.y - (np.polyval(np.polyfit(self.x, self.y, deg), self.x) if deg >= 0 else 0.0)
        return s.ic_of(float(np.sum(r ** 2)), deg + 1, self.x.size)

    def _trial(self, comps):
        s = self.s
        base = list(self.base)
        try:
            fo = s.fit(base + comps, self.x, self.y)
        except Exception as exc:            # a trial that cannot be fitted is no option
            s.note(f"trial with {len(comps)} component(s) not fitted: {type(exc).__name__}")
            return None
        return fo

    # ------------------------------------------------------------------ local trials
    def _store(self, fo):
        """Keep the values, errors (noise known) and bounds of a full window fit."""
        r = np.sqrt(max(float(fo.stats["redchi"]), 1e-300))
        self.vals = dict(fo.values)
        self.err = {k: e * self.s.sigma / r for k, e in fo.stderr.items() if e is not None}
        self.bnd = set(fo.bounded)

    def _curves(self, peaks, x):
        """Sum of the curves of ``peaks`` at their current values on ``x``."""
        from .fit import peak_curves
        from .models import ModelSpec

        cur = peak_curves(ModelSpec(peaks=peaks, baseline="none"), x, self.vals)
        return np.sum([np.broadcast_to(c, x.shape) for c in cur.values()], axis=0)

    def _view(self) -> _Local:
        """The window's current model from its components' current values (each from the last fit
        that moved it) and the least-squares baseline under them."""
        from .fit import peak_curves
        from .models import ModelSpec, prefix_of

        peaks = list(self.base) + self.comps
        curves = peak_curves(ModelSpec(peaks=peaks, baseline="none"), self.x, self.vals) if peaks else {}
        curves = {k: np.broadcast_to(np.asarray(v, float), self.x.shape) for k, v in curves.items()}
        r = self.y - (np.sum(list(curves.values()), axis=0) if curves else 0.0)
        deg = {"none": -1, "constant": 0, "linear": 1, "quadratic": 2}[self.s.baseline]
        if deg >= 0:
            curves["bl_"] = np.polyval(np.polyfit(self.x, r, deg), self.x)
            r = r - curves["bl_"]
        pres = tuple(prefix_of(p.name) for p in peaks)
        k = sum(1 for n in self.err if n.startswith(pres)) + deg + 1
        return _Local(None, self.x, self.y, self.vals, self.err, self.bnd, curves, float(np.sum(r * r)), k,
                      self.s.sigma ** 2)

    def _local_trial(self, comps, focus):
        """``(fit, gain)`` of ``comps`` fitted around the changed components ``focus`` ((centre,
        FWHM) pairs): the components within LOCAL_REACH FWHM free, the others and the fixed base
        subtracted at their current values, a baseline of its own; ``gain`` is the fall of the
        criterion from the current components fitted the same way (the same freedom: the change
        must not gain from the local fit alone), the penalty counted on the window's points.
        None when the neighbourhood is most of the window (or satellites, tied across it, or the
        base are in it): the caller fits the whole window."""
        s = self.s
        if not focus or len(self.comps) <= LEAN_START or self.fo is None and self.comps or \
                any(p.satellites for p in list(comps) + self.comps):
            return None
        lo = min(c - LOCAL_REACH * w for c, w in focus)
        hi = max(c + LOCAL_REACH * w for c, w in focus)
        wide = LOCAL_BROAD * max(w for _c, w in focus)

        def near(p):
            # a much broader neighbour is held fixed: over the neighbourhood its curve is nearly
            # straight, and the local baseline takes up what its refit would change
            w = p.fwhm or 0.0
            return lo - w <= p.center <= hi + w and w <= wide

        free_new = [p for p in comps if near(p)]
        free_old = [p for p in self.comps if near(p)]
        for p in free_new + free_old:
            lo, hi = min(lo, p.center - 2 * (p.fwhm or 0.0)), max(hi, p.center + 2 * (p.fwhm or 0.0))
        if self.base and self.base_span[1] >= lo and self.base_span[0] <= hi:
            # the fixed nuisance components (tied to one another) are refitted with the neighbourhood
            lo, hi = min(lo, self.base_span[0]), max(hi, self.base_span[1])
            free_new, free_old = list(self.base) + free_new, list(self.base) + free_old
        sel = (self.x >= lo) & (self.x <= hi)
        m = int(sel.sum())
        if m > LOCAL_MAX_FRACTION * self.x.size or m < 16:
            return None
        xl, yl = self.x[sel], self.y[sel]

        def run(free, every):
            names = {p.name for p in free}
            fixed = [p for p in list(self.base) + list(every) if p.name not in names]
            try:
                yy = yl - self._curves(fixed, xl) if fixed else yl
            except KeyError:       # a component without a fitted value: fit the whole window
                return None
            return s.fit_local(free, xl, yy)

        ref = run(free_old, self.comps)
        trial = run(free_new, comps) if ref is not None else None
        if trial is None:
            return None
        n = self.x.size
        gain = s.ic_of(ref.stats["chisqr"], ref.stats["nvarys"], n) - s.ic_of(trial.stats["chisqr"],
                                                                           trial.stats["nvarys"], n)
        return trial, float(gain)

    def _try(self, comps, focus=None):
        """``(fit, gain)`` of the window's model ``comps`` (locally around ``focus`` when that is a
        small part of the window), or None when it cannot be fitted."""
        loc = self._local_trial(comps, focus)
        if loc is not None:
            return loc
        fo = self._trial(comps)
        return None if fo is None else (fo, self.ic - self.s.ic(fo))

    def _accept(self, comps, fo):
        """Make ``comps`` fitted by ``fo`` the window's model (their fitted values as starts)."""
        from .models import prefix_of

        s = self.s
        if not isinstance(fo, _Local):
            self.comps, self.fo, self.ic = comps, fo, s.ic(fo)
            self._store(fo)
            self.comps = self._restart(fo)
            return
        r = np.sqrt(max(fo.stats["redchi"], 1e-300))
        self.vals.update({k: v for k, v in fo.values.items() if not k.startswith("bl_")})
        pres = tuple(prefix_of(n) for n in fo.free)
        self.err = {k: e for k, e in self.err.items() if not k.startswith(pres)}
        self.err.update({k: e * s.sigma / r for k, e in fo.stderr.items() if np.isfinite(e)})
        self.bnd = {b for b in self.bnd if not b.startswith(pres)} | set(fo.bounded)
        out = []
        for p in comps:
            if p.name in fo.free:
                pv = _peak_values(fo, p)
                p = s.make(p.name, pv["center"], pv["fwhm"], pv["area"], pv["extra"])
            out.append(p)
        self.comps = out
        self.fo = self._view()
        self.ic = s.ic(self.fo)

    def _restart(self, fo):
        """The components of a fit with their fitted values as starts."""
        out = []
        for pk in self.comps:
            pv = _peak_values(fo, pk)
            out.append(self.s.make(pk.name, pv["center"], pv["fwhm"], pv["area"], pv["extra"]))
        return out

    def _ok(self, fo, pk, bound: bool = True) -> str | None:
        """Why the component ``pk`` of ``fo`` is no detection (None: it is one); ``bound``: a centre
        at its window counts (not while the model is incomplete: the line it needs may come next)."""
        s = self.s
        pv = _peak_values(fo, pk)
        if bound and pv["center_at_bound"]:
            return "centre at its window"
        if pv["height"] < K_HEIGHT * s.sigma:
            return f"height {pv['height'] / s.sigma:.1f} noise SDs"
        e = pv["area_stderr"]
        if e is not None:   # the error with the noise known (fit_spec scales by the reduced chi², which an
            # incomplete model inflates), noise correlation included
            e = e * s.sigma / np.sqrt(max(fo.stats["redchi"], 1e-300)) * np.sqrt(s.L)
        if not pv["area"] > 0 or (e is not None and pv["area"] < K_AREA * e):
            return f"area {pv['area'] / e if e else 0:.1f} standard errors"
        return None

    def start(self, limit: int | None):
        """The first model: the strong candidates (>= 2x the candidate threshold) that do not
        overlap a stronger one (within 1 FWHM), fitted at once; then the insignificant removed."""
        s = self.s
        first = []
        for cd in self.cands:
            if limit is not None and len(first) >= limit:
                break
            if cd["significance"] >= 2 * s.snr and not self._covered(cd["center"], cd["fwhm"]) and all(abs(cd["center"] - o["center"]) > max(cd["fwhm"], o["fwhm"])
                                                      for o in first):
                first.append(cd)
        if not first:
            return
        peaks = [s.make(s.next_name(), cd["center"], cd["fwhm"], max(cd["height"], s.sigma) * cd["fwhm"] * 1.064)
                 for cd in first]
        fo = None
        if len(peaks) > LEAN_START and not self.base and not any(p.satellites for p in peaks):
            # a long range (many separated bands): the batch engine alone, no lmfit search from rough starts
            fo = s.fit_local(peaks, self.x, self.y)
        if fo is None:
            fo = self._trial(peaks)
        if fo is None:
            return
        self.used += [(cd["center"], cd["fwhm"]) for cd in first]
        self._accept(peaks, fo)
        s.steps.append({"start": [round(cd["center"], 6) for cd in first], "ic": round(self.ic, 3)})
        self._merge_and_prune(limit is not None)

    # ------------------------------------------------------------------ proposals
    def _covered(self, c, w) -> bool:
        for pk in self.comps + list(self.base):
            pv = (pk.center, pk.fwhm or w)
            if abs(c - pv[0]) < MERGE_FRACTION * min(w, pv[1]) and max(w, pv[1]) < 3 * min(w, pv[1]):
                return True
        return False

    def _tried(self, c, w) -> bool:
        return any(abs(c - u) < 0.25 * min(w, uw) and max(w, uw) < 2 * min(w, uw) for u, uw in self.used)

    def proposals(self):
        s = self.s
        out = []
        for cd in self.cands:
            if not self._tried(cd["center"], cd["fwhm"]) and not self._covered(cd["center"], cd["fwhm"]):
                out.append(dict(cd, source="candidate"))
                break
        if self.fo is not None:
            r = self.y - self.fo.best_fit
            res = [cd for cd in find_candidates(self.x, r, s.sigma, snr=s.snr, min_fwhm=s.min_fwhm,
                                                max_fwhm=s.max_fwhm)[:3]
                   if s.reject is None or not s.reject(cd["center"])]
            for cd in res:
                if not self._tried(cd["center"], cd["fwhm"]) and not any(
                        abs(cd["center"] - o["center"]) < 0.25 * cd["fwhm"] for o in out):
                    out.append(dict(cd, source="residual"))
                    break
            # a broad line under a fitted narrower one leaves residual maxima in its wings, not at
            # its centre: a broad partner at that line's centre, as wide as the farthest wing reaches
            best = None
            for cd in res:
                for pk in self.comps:
                    dist = abs(cd["center"] - pk.center)
                    fw = 2 * dist + cd["fwhm"]
                    if dist < 3 * max(cd["fwhm"], pk.fwhm) and (pk.fwhm or 0) < 0.7 * fw and \
                            (best is None or fw > best["fwhm"]):
                        best = {"center": pk.center, "fwhm": fw, "height": max(cd["height"], s.sigma),
                                "source": "nested"}
            if best and not self._tried(best["center"], best["fwhm"]) and (s.max_fwhm is None or
                                                                             best["fwhm"] <= s.max_fwhm):
                out.append(best)
            elif best is None:
                out += self._broad_partners(res) or self._wing_partner()
        return out

    def _wing_partner(self) -> list:
        """A broad partner from the residual's unexplained excess (runs above 5 noise SDs where the
        components put little, :func:`~specproc.fitting.uncertainty.unexplained_signal`) in the wing
        of a fitted line: the wings of a broad line under a narrow one, too flat for a
        second-derivative candidate. Centred on that line, ~3x as wide as the excess is far from it."""
        from .uncertainty import unexplained_signal

        s, fo = self.s, self.fo
        comps = {k: v for k, v in fo.components.items() if k != "bl_"}
        model = np.sum([np.broadcast_to(v, fo.y.shape) for v in comps.values()], axis=0) if comps else None
        for pos, _z in unexplained_signal(self.x, self.y - fo.best_fit, s.sigma, model=model):
            pk = min(self.comps, key=lambda q: abs(q.center - pos), default=None)
            if pk is None or not pk.fwhm:
                return []
            dist = abs(pos - pk.center)
            fw = max(3 * dist, 3 * pk.fwhm)
            if dist < 6 * pk.fwhm and fw <= s.span / 2 and (s.max_fwhm is None or fw <= s.max_fwhm) \
                    and not self._tried(pk.center, fw) and (s.reject is None or not s.reject(pk.center)):
                return [{"center": pk.center, "fwhm": fw, "height": s.sigma * 5, "source": "nested"}]
            return []
        return []

    def _broad_partners(self, res) -> list:
        """Broad partners at the centre of a fitted line whose FWHM holds the strongest residual
        candidate. A narrow line fitted alone over a broad one at the same centre (the 7Li case:
        0.32 ppm on 3.6 ppm) leaves its largest residual features inside the narrow line (lineshape
        mismatch), while the wings of the broad line are too flat to be candidates themselves; the
        partner's width is not seen, so BROAD_PARTNER_FACTORS of the line's FWHM are tried (each
        once: a partner tried is not proposed again)."""
        s = self.s
        if not res or not self.comps:
            return []
        cd = res[0]
        pk = min(self.comps, key=lambda q: abs(q.center - cd["center"]))
        if not pk.fwhm or abs(cd["center"] - pk.center) >= pk.fwhm:
            return []
        out = []
        for f in BROAD_PARTNER_FACTORS:
            fw = f * pk.fwhm
            if fw > s.span / 2 or (s.max_fwhm is not None and fw > s.max_fwhm) or self._tried(pk.center, fw):
                continue
            out.append({"center": pk.center, "fwhm": fw, "height": max(cd["height"], s.sigma) / f, "source": "nested"})
        return out

    # ------------------------------------------------------------------ steps
    def step(self, forced: bool = False) -> bool:
        """One forward step; True when a component was added."""
        s = self.s
        props = self.proposals()
        if not props:
            return False
        best = None
        for cd in props:
            self.used.append((cd["center"], cd["fwhm"]))
            starts = self._restart(self.fo) if self.fo is not None and self.comps else []
            new = s.make(s.next_name(), cd["center"], cd["fwhm"], max(cd["height"], s.sigma) * cd["fwhm"] * 1.064)
            t = self._try(starts + [new], [(new.center, new.fwhm)])
            if t is None:
                continue
            fo, gain = t
            why = None if forced else self._ok(fo, new)
            if why is None and not forced and not gain > s.ic_min:
                why = f"{s.criterion.upper()} gain {gain:.1f} <= {s.ic_min:g}"
            if why is not None and gain > 2.0:   # some evidence, not enough: the count there is uncertain
                s.weak.append(cd["center"])
            s.steps.append({"n": len(self.comps) + 1, "at": round(cd["center"], 6), "source": cd["source"],
                            "gain": round(gain, 3), "local": isinstance(fo, _Local), "accepted": why is None,
                            **({"why": why} if why else {})})
            if why is None and (best is None or gain > best[1]):
                if best is not None:   # passed, not the best: proposed again next step
                    self.used.remove(best[3])
                best = (starts + [new], gain, fo, (cd["center"], cd["fwhm"]))
            elif why is None:
                self.used.remove((cd["center"], cd["fwhm"]))
        if best is None:
            return bool(self.cands) and any(not self._tried(c["center"], c["fwhm"]) and
                                            not self._covered(c["center"], c["fwhm"]) for c in self.cands) \
                and self.step(forced)   # this candidate did not help; the next one may
        self._accept(best[0], best[2])
        self._merge_and_prune(forced)
        return True

    def _merge_and_prune(self, forced: bool, final: bool = False):
        s = self.s
        while len(self.comps) > 1:
            vals = [_peak_values(self.fo, pk) for pk in self.comps]
            pair = None
            for i in range(len(vals)):
                for j in range(i + 1, len(vals)):
                    a, b = vals[i], vals[j]
                    wmin, wmax = sorted((a["fwhm"], b["fwhm"]))
                    if abs(a["center"] - b["center"]) < MERGE_FRACTION * wmin and wmax < MERGE_WIDTH_RATIO * wmin:
                        pair = (i, j)
                        break
                if pair:
                    break
            if pair is None:
                break
            a, b = vals[pair[0]], vals[pair[1]]
            tot = max(a["area"] + b["area"], 1e-300)
            c = (a["center"] * a["area"] + b["center"] * b["area"]) / tot
            merged = s.make(self.comps[pair[0]].name, c, max(a["fwhm"], b["fwhm"]) + abs(a["center"] - b["center"]),
                            tot)
            rest = [pk for k, pk in enumerate(self.comps) if k not in pair]
            t = self._try(rest + [merged], [(a["center"], a["fwhm"]), (b["center"], b["fwhm"])])
            if t is None:
                break
            s.merged.append(round(c, 6))
            s.steps.append({"merged": [round(a["center"], 6), round(b["center"], 6)], "into": round(c, 6)})
            self._accept(rest + [merged], t[0])
        needed: set = set()
        while not forced and len(self.comps) > 1:
            weak = [(pk, self._ok(self.fo, pk, bound=final)) for pk in self.comps if pk.name not in needed]
            weak = [(pk, why) for pk, why in weak if why]
            if not weak:
                break
            pk, why = min(weak, key=lambda t: _peak_values(self.fo, t[0])["height"])
            gone = {pk.name}
            if len(self.comps) > LEAN_START:
                # a long range: every component without signal (height under the threshold, no positive
                # area) goes at once, not one refit each (their removal changes no other's significance)
                gone |= {q.name for q, w_ in weak if w_.startswith("height") or w_.startswith("area -")
                         or w_ == "area 0.0 standard errors"}
                gone = gone if len(gone) < len(self.comps) else {pk.name}
            rest = [q for q in self.comps if q.name not in gone]
            t = self._try(rest, [(q.center, q.fwhm) for q in self.comps if q.name in gone])
            if t is None:
                break
            fo, cost = t[0], -t[1]
            if why == "centre at its window" and cost > s.ic_min:
                # a significant line whose centre ran to its window (neighbours sharing out their
                # signal in a crowded cluster): removing it costs more than a component is worth,
                # and removing lines one by one for it once left 2 of 6 lines; it stays (fit_spec's
                # bound warning names it)
                needed.add(pk.name)
                s.steps.append({"kept": round(pk.center, 6), "why": f"{why}, but removing it costs "
                                f"{cost:.1f} in {s.criterion.upper()}"})
                continue
            s.steps.append({"removed": round(pk.center, 6), "why": why,
                            **({"with": sorted(round(q.center, 6) for q in self.comps if q.name in gone - {pk.name})}
                               if len(gone) > 1 else {})})
            self._accept(rest, fo)


class _Selector:
    """Settings and shared state of one :func:`select_model` call."""

    def __init__(self, **kw):
        self.__dict__.update(kw)
        self.steps, self.merged, self.notes, self.weak = [], [], [], []
        self._k = 0
        self.t0 = time.perf_counter()

    def next_name(self) -> str:
        self._k += 1
        return f"s{self._k}"

    def note(self, msg):
        self.notes.append(msg)

    def make(self, name, center, fwhm, area, extra=None):
        from .models import Peak

        fwhm = float(np.clip(fwhm, self.dx, self.span))
        pk = self.peak(name, float(center), fwhm) if self.peak is not None else Peak(
            name=name, shape=self.shape, center=float(center), fwhm=fwhm,
            bounds={"center": (center - max(fwhm, 3 * self.dx), center + max(fwhm, 3 * self.dx))})
        upd = {"amplitude": float(max(area, 1e-12))}
        if extra:
            from .lineshapes import get

            ok = set(get(pk.shape).params)
            upd["init"] = {**pk.init, **{k: v for k, v in extra.items() if k in ok and np.isfinite(v)}}
            if "fraction" in upd["init"]:
                upd["init"]["fraction"] = float(np.clip(upd["init"]["fraction"], 0.0, 1.0))
        return pk.model_copy(update=upd)

    def spec(self, peaks):
        from .models import ModelSpec

        names = {p.name for p in peaks}
        with_base = self.base is not None and any(p.name in names for p in self.base.peaks)
        return ModelSpec(peaks=peaks, baseline=self.baseline, exprs=dict(self.base.exprs) if with_base else {})

    def fit(self, peaks, x, y, final: bool = False):
        """One fit through :func:`~specproc.fitting.fit.fit_spec`. A trial gets lmfit only briefly
        after an engine that stopped short (an lmfit search of a 14-line window took 100 s): its
        end point is good enough to compare models; the final fit gets the full search, except on
        a long range (more than LONG_RANGE components: lmfit's finite-difference search of a
        33-band full-range IR model ran for minutes where the engine had stopped short of its
        tolerance; the engine's end point is reported, ``stats["optimizer"]`` says so)."""
        from .fit import fit_spec

        kw = {} if final and len(peaks) <= LONG_RANGE else {"max_nfev": 20 * (3 * len(peaks) + 4)}
        return fit_spec(self.spec(peaks), x, y, noise=self.sigma, where=self.where, unit=self.unit, **kw)

    def fit_local(self, peaks, x, y):
        """A trial on part of a window: the batch engine alone (no lmfit search, no after-fit
        checks: a trial's end point only has to rank models; the final model gets
        :func:`~specproc.fitting.fit.fit_spec`). None when it cannot be fitted."""
        from .fit import engine_budget, peak_curves
        from .uncertainty import on_bound

        deg = {"none": -1, "constant": 0, "linear": 1, "quadratic": 2}[self.baseline]
        if not peaks:       # the baseline alone: linear least squares
            r = y - (np.polyval(np.polyfit(x, y, deg), x) if deg >= 0 else 0.0)
            bl = {"bl_": y - r} if deg >= 0 else {}
            return _Local(None, x, y, {}, {}, [], bl, float(np.sum(r * r)), deg + 1,
                          float(np.sum(r * r)) / max(x.size - deg - 1, 1))
        from .batch import fit_batch_compiled

        spec = self.spec(peaks)
        try:
            model, params = spec.to_lmfit(x, y)
            nv = sum(p.vary and not p.expr for p in params.values())
            if x.size <= nv + 2:
                return None
            ds, bm = fit_batch_compiled(model, x, np.asarray(y, float)[None, :], params=params, method="batched-lm",
                                        n_jobs=1, max_iter=engine_budget(nv), expr_errors=False, noise_stats=False)
        except Exception as exc:            # a trial that cannot be fitted is no option
            self.note(f"local trial with {len(peaks)} component(s) not fitted: {type(exc).__name__}")
            return None
        vals = {n: float(ds[n].values[0]) for n in params if n in ds}
        if not all(np.isfinite(vals[n]) for n in bm.free):
            return None
        err = {n: float(ds[n + "_stderr"].values[0]) for n in bm.free if n + "_stderr" in ds}
        bounded = [n for j, n in enumerate(bm.free) if on_bound(vals[n], bm.lo[j], bm.hi[j])]
        curves = peak_curves(spec, x, vals)
        return _Local(spec, x, y, vals, err, bounded, curves, float(ds["chisqr"].values[0]), len(bm.free),
                      float(ds["redchi"].values[0]), free=[p.name for p in peaks])

    def ic_of(self, chisqr: float, k: int, n: int) -> float:
        chi = chisqr / self.sigma ** 2 / self.L
        ne = n / self.L
        if self.criterion == "aicc":
            return float(chi + 2 * k + 2 * k * (k + 1) / max(ne - k - 1, 1.0))
        return float(chi + k * np.log(ne))

    def ic(self, fo) -> float:
        return self.ic_of(float(np.sum((fo.y - fo.best_fit) ** 2)), int(fo.stats["nvarys"]), fo.y.size)

    def over_budget(self) -> bool:
        return time.perf_counter() - self.t0 > self.budget_s


# ============================================================================ the routine
def _bin(x, y, d: int):
    return bin_mean(x, d), bin_mean(y, d)


def _descent(ys, i: int, step: int, drop: float, direction: int) -> int:
    """Index where the smoothed signal ``ys``, walked from ``i`` in ``direction`` with steps from
    ``step`` points growing x1.5 (a broad flank under a narrow line falls slowly), stops falling by
    more than ``drop``: where a feature's flank meets the baseline (or the next feature)."""
    j, st = i, float(step)
    while True:
        nj = j + direction * int(st)
        if not (0 <= nj < ys.size) or not ys[nj] < ys[j] - drop:
            return j
        j, st = nj, st * 1.5


def _windows(x, y, sigma, cands, base_span=None):
    """Index ranges of the working grid where the signal is off the baseline: each candidate
    reaches +-REACH_FWHM FWHM and as far as its flanks keep falling (a broad line under a narrow
    one), merged where they overlap; a gap between them is signal back at the baseline."""
    from scipy.signal import savgol_coeffs

    from .noise import smooth

    dx = float((x[-1] - x[0]) / (x.size - 1))
    wmin = min(c["fwhm"] for c in cands) if cands else 10 * dx
    win = max(5, int(wmin / dx)) | 1
    ys = smooth(y, window=win) if win < y.size else y
    drop = 2 * sigma * float(np.sqrt(np.sum(savgol_coeffs(win, 3) ** 2))) if win <= 511 else 2 * sigma / np.sqrt(win)
    iv = []
    for c in cands:
        i = int(np.argmin(np.abs(x - c["center"])))
        st = max(1, int(0.25 * c["fwhm"] / dx))
        # twice the distance to where the flank stops falling: the wings of a line below the
        # noise still hold a few % of its area
        lo = min(c["center"] - REACH_FWHM * c["fwhm"], c["center"] - 2 * (c["center"] - x[_descent(ys, i, st, drop, -1)]))
        hi = max(c["center"] + REACH_FWHM * c["fwhm"], c["center"] + 2 * (x[_descent(ys, i, st, drop, 1)] - c["center"]))
        iv.append((lo, hi))
    if base_span is not None:
        iv.append(base_span)
    iv.sort()
    out = []
    for lo, hi in iv:
        if out and lo <= out[-1][1]:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    res = []
    for lo, hi in out:
        idx = np.flatnonzero((x >= lo) & (x <= hi))
        if idx.size >= 16:
            res.append((int(idx[0]), int(idx[-1]) + 1))
    return res


def _count_warnings(fo, final, s: "_Selector", u: str, stopped: str, max_label: str) -> list:
    """Where the final count is uncertain (neighbours closer than their FWHM, merges that stand,
    further components with some support) and a stopped selection."""
    vals = sorted((_peak_values(fo, p) for p in final), key=lambda v: v["center"])
    warns = []
    for v1, v2 in zip(vals, vals[1:]):
        # resolvable: >= 1 FWHM apart (0.9: the widths are fitted, not known)
        if abs(v2["center"] - v1["center"]) < 0.9 * 0.5 * (v1["fwhm"] + v2["fwhm"]) and \
                max(v1["fwhm"], v2["fwhm"]) < 3 * min(v1["fwhm"], v2["fwhm"]):
            warns.append(f"components at {v1['center']:.6g} and {v2['center']:.6g}{u} are closer than their FWHM: "
                         "the number of components there is uncertain")
    # merges that stand in the final model (one component there): the count there is uncertain
    kept = [c for c in s.merged if sum(abs(v["center"] - c) < v["fwhm"] for v in vals) == 1]
    # a component was proposed beside one of the final ones with some evidence (IC gain > 2) but not
    # enough: one line or two there is not decided by the data
    weak = sorted({round(v["center"], 6) for v in vals for c in s.weak
                   if abs(v["center"] - c) < 1.5 * v["fwhm"] and c not in kept})
    if weak:
        warns.append(f"a further component near {', '.join(f'{c:.6g}' for c in weak)}{u} has some support (information "
                     f"criterion gain > 2) but not enough to be added: the number of components there is uncertain")
    if kept:
        warns.append(f"components closer than {MERGE_FRACTION:g} FWHM merged into one at "
                     f"{', '.join(f'{c:.6g}' for c in kept)}{u} (no split lines): the count there is uncertain")
    left = [w_ for w_ in fo.warnings if w_.startswith(("unexplained", "residual")) or "unexplained" in w_]
    if stopped.startswith((max_label, "budget")):
        warns.append(f"model selection stopped: {stopped}" + ("; residual features are left (see the warnings)"
                                                              if left else ""))
    return warns


def select_model(x, y, *, shape: str = "pseudo-voigt", noise: float | None = None, baseline: str = "linear",
                 criterion: str = "bic", snr: float = CANDIDATE_SNR, ic_min: float = IC_MIN,
                 n_components: int | None = None, max_components: int | None = None,
                 min_fwhm: float | None = None, max_fwhm: float | None = None, peak=None, name=None, reject=None,
                 base=None, keep=None, max_points: int = 4096, budget_s: float = 20.0, unit: str = "", where=None,
                 n_label: str = "n_components", max_label: str = "max_components") -> Selection:
    """Select and fit the components of a 1D spectrum (module docstring: the algorithm).

    Parameters
    ----------
    x, y : array_like (n,)
        Axis (either direction) and intensities (finite).
    shape : str
        Lineshape of the components (registry name).
    noise : float, optional
        Noise SD of ``y`` (default :func:`~specproc.fitting.noise.noise_sigma`).
    baseline : {"none", "constant", "linear", "quadratic"}
        Baseline polynomial fitted with the components (per window while selecting).
    criterion : {"bic", "aicc"}
        Information criterion of the forward steps (noise known).
    snr : float
        Candidate threshold in noise SDs of the second derivative (:func:`find_candidates`).
    ic_min : float
        Least fall of the criterion that adds a component.
    n_components : int, optional
        Exactly this many components (the best proposals, no tests; a warning when fewer exist).
    max_components : int, optional
        At most this many (default: no cap; a warning when features are left).
    min_fwhm, max_fwhm : float, optional
        Candidate widths outside these (axis units) are not proposed.
    peak : callable, optional
        ``peak(name, center, fwhm) -> Peak``: a technique's component (bounds, satellites).
    name : callable, optional
        ``name(i, center) -> str`` for the final components (ascending axis order; default ``c1..``).
    reject : callable, optional
        ``reject(center) -> bool``: positions where no component may be added.
    base : ModelSpec, optional
        Fixed components every trial carries (never candidates, never removed).
    keep : array_like of bool (n,), optional
        Usable points (False: masked, e.g. saturated or atmospheric): bridged linearly for the
        candidate search, no candidate there, never fitted.
    max_points : int
        Working-grid size above which points are averaged in bins.
    budget_s : float
        Seconds of selection; when hit, the components found so far are fitted and a warning says so.
    unit : str
        Axis unit in the warnings.
    where : str, optional
        The input file, for errors.
    n_label, max_label : str
        The caller's names of ``n_components`` / ``max_components`` in warnings and the record
        (``n_peaks``, ``max_peaks``).

    Returns
    -------
    Selection

    Raises
    ------
    ProcessingError
        When no component is found above the noise.
    """
    from ..core.errors import ParameterError, ProcessingError
    from .noise import noise_sigma

    if criterion not in ("bic", "aicc"):
        raise ParameterError(f"criterion must be 'bic' or 'aicc', got {criterion!r}", where)
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    if x.ndim != 1 or x.shape != y.shape or x.size < 16:
        raise ParameterError(f"x and y must be 1D of one length >= 16, got {x.shape} and {y.shape}", where)
    good = np.isfinite(x) & np.isfinite(y)
    keep = np.ones(x.size, bool) if keep is None else np.asarray(keep, bool).copy()
    if keep.shape != x.shape:
        raise ParameterError(f"keep must have the shape of x {x.shape}, got {keep.shape}", where)
    x, y, keep = x[good], y[good], keep[good]
    order = np.argsort(x, kind="stable")
    x, y, keep = x[order], y[order], keep[order]
    if keep.sum() < 16:
        raise ParameterError(f"only {int(keep.sum())} usable points", where)
    if not keep.all():      # masked points bridged for the search (no candidate there), never fitted
        y = np.where(keep, y, np.interp(x, x[keep], y[keep]))
    u = f" {unit}" if unit else ""
    sigma0 = float(noise) if noise else noise_sigma(y[keep])
    # working grid: bins that keep POINTS_PER_FWHM points on the narrowest candidate of a coarse look
    d = 1
    if x.size > max_points:
        d = x.size // max_points
        xb, yb = _bin(x, y, d)
        c0 = find_candidates(xb, yb, noise_sigma(yb), snr=snr, min_fwhm=min_fwhm, max_fwhm=max_fwhm)
        dx0 = float((x[-1] - x[0]) / (x.size - 1))
        if c0:
            strong = [c["fwhm"] for c in c0 if c["significance"] >= 0.05 * c0[0]["significance"]]
            d = max(1, min(d, int(min(strong) / dx0 / POINTS_PER_FWHM)))
    xw, yw = _bin(x, y, d)
    kw = keep if d == 1 else keep[:(keep.size // d) * d].reshape(-1, d).all(1)
    sigma = sigma0 if d == 1 else noise_sigma(yw[kw])
    L = noise_correlation(yw, sigma)
    s = _Selector(shape=shape, baseline=baseline, criterion=criterion, snr=snr, ic_min=ic_min, min_fwhm=min_fwhm,
                  max_fwhm=max_fwhm, peak=peak, reject=reject, base=base, sigma=sigma, L=L, where=where, unit=unit,
                  dx=float((xw[-1] - xw[0]) / (xw.size - 1)), span=float(xw[-1] - xw[0]), budget_s=budget_s)
    cands = find_candidates(xw, yw, sigma, snr=snr, min_fwhm=min_fwhm, max_fwhm=max_fwhm)
    cands = [c for c in cands if kw[c["index"]] and (reject is None or not reject(c["center"]))]
    warns = []
    if not cands and base is None:
        raise ProcessingError(f"no component found above {snr:g} noise SDs (second derivative) in "
                              f"{xw[0]:.6g}-{xw[-1]:.6g}{u}", where)
    bspan = None
    if base is not None:
        cs = [p.center for p in base.peaks]
        bspan = (min(cs), max(cs))
    wins = _windows(xw, yw, sigma, cands, bspan) or [(0, xw.size)]
    if len(wins) == 1 and wins[0][1] - wins[0][0] > 0.8 * xw.size:
        wins = [(0, xw.size)]
    stopped = "no proposal improves the model"
    comps = []
    for a, b in wins:
        wx, wy = xw[a:b][kw[a:b]], yw[a:b][kw[a:b]]
        if wx.size < 16:
            continue
        inside = [c for c in cands if wx[0] <= c["center"] <= wx[-1]]
        w = _Window(wx, wy, s, inside)
        cap = n_components if n_components is not None else max_components
        w.start(None if cap is None else cap - len(comps))
        while True:
            if n_components is not None and len(comps) + len(w.comps) >= n_components:
                stopped = f"{n_label} = {n_components} reached"
                break
            if max_components is not None and len(comps) + len(w.comps) >= max_components:
                stopped = f"{max_label} = {max_components} reached"
                break
            if s.over_budget():
                stopped = f"budget of {budget_s:g} s spent"
                break
            if not w.step(forced=n_components is not None):
                break
        if w.comps and n_components is None:
            w._merge_and_prune(False, final=True)
        comps += w.comps
    if not comps:
        raise ProcessingError(f"no component detected above the noise in {xw[0]:.6g}-{xw[-1]:.6g}{u} "
                              f"({len(cands)} candidate(s) tried, none significant)", where)
    if n_components is not None and len(comps) < n_components:
        warns.append(f"{n_label} = {n_components} asked but only {len(comps)} component(s) found")
    # the final model: every window's components, ascending, named; fitted once on the working grid
    comps.sort(key=lambda p: p.center)
    final = [p.model_copy(update={"name": name(i, p.center) if name else f"c{i + 1}"}) for i, p in enumerate(comps)]
    if len(wins) > 1 or len(comps) > 1 or base is not None:
        final = [s.make(p.name, p.center, p.fwhm, p.amplitude or 0.0, p.init) for p in final]
    fo = s.fit((list(base.peaks) if base is not None else []) + final, xw[kw], yw[kw], final=True)
    warns += _count_warnings(fo, final, s, u, stopped, max_label)
    # --- resolution check (specproc.fitting.resolution, issue #23): could a pair hide under a component? ---
    from .resolution import resolution_doubts
    warns += resolution_doubts(fo, noise=sigma, L=L, unit=unit, skip=[p.name for p in base.peaks] if base is not None else (),
                               record=s.steps)
    # --- end of the resolution check ---
    record = {"method": f"forward selection by {criterion.upper()} (gain > {ic_min:g}, area > {K_AREA:g} stderr, "
                        f"height > {K_HEIGHT:g} noise SDs), merge < {MERGE_FRACTION:g} FWHM",
              "n_components": len(final), "stopped": stopped, "steps": s.steps, "n_candidates": len(cands),
              "windows": [[float(xw[a]), float(xw[b - 1])] for a, b in wins], "working_grid": int(d),
              "noise_sd": float(sigma), "noise_correlation_length": round(float(L), 3),
              "seconds": round(time.perf_counter() - s.t0, 3), "notes": s.notes}
    return Selection(fit=fo, record=record, warnings=warns)
