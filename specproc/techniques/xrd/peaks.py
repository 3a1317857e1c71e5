"""Peak search and profile fitting of one pattern, on the shared toolkit.

Candidates come from :func:`specproc.fitting.peaks.pick_peaks` on the background-subtracted pattern
(prominence against the local noise of :func:`local_noise`, built on
:func:`specproc.fitting.noise.noise_sigma`); what is XRD's own is the removal of candidates that are
only the Kα2 line of a stronger reflection. Each reflection is a
:class:`~specproc.fitting.models.Peak` whose Kα2 line is a
:class:`~specproc.fitting.models.Satellite`: position ``2 asin(λ2/λ1 · sin({center}/2))`` (Bragg's law),
area ``ratio`` × the Kα1 area (the ratio from the file), same width and shape — so the Kα2 line adds
no free parameter. Reflections are fitted in clusters (overlapping windows) on the
background-subtracted pattern with Poisson weights from the raw counts, through
:func:`specproc.fitting.fit.fit_spec` (batch-engine optimum, lmfit confirmation, honest errors:
a parameter at a bound has no standard error and becomes a warning).

**Significance** (what is reported as a reflection; the rule is stated in ``Result.meta
["peak_significance"]`` and docs/xrd.md): a fitted candidate is a reflection when its area is
positive, its FWHM lies between one step and the background window, its fitted Kα1 height is
≥ :data:`K_HEIGHT` × the *local* noise SD above the local background (:func:`local_noise`: the noise
of the pattern where the reflection sits, never below the whole-pattern estimate), and its area is
≥ :data:`K_AREA` standard errors with the fitted profiles held (:func:`_conditional_area_stderr`:
the reported, marginal area error also carries the shape trade-offs of a crowded window, which say
how well the area is known, not whether the line is there). A window that loses a candidate is
refitted without it. Lines at the Kβ position of a stronger reflection (:func:`kbeta_lines`) are
fitted but not reported as reflections. The count of rejected candidates is stated in the warnings.
"""
from __future__ import annotations

import numpy as np

from ...core.errors import FitError, ParameterError, ProcessingError
from .processing import background, bragg_d, bragg_d_stderr, kalpha2_position


def _xrd_shapes() -> tuple:
    from ...fitting.lineshapes import REGISTRY

    return tuple(n for n, v in REGISTRY.items() if v.intensity == "amplitude" and v.batch_kind)


#: XRD profile shapes: the area-normalised, batch-compiled shapes of the shared lineshape registry
XRD_SHAPES: tuple = _xrd_shapes()


def kalpha2_expr(lambda1_nm: float, lambda2_nm: float, near_deg: float | None = None) -> str:
    """lmfit expression of the Kα2 position (deg 2θ) in ``{center}`` (the Kα1 position).

    Bragg's law ``2 asin(λ2/λ1 · sin({center}/2))``; with ``near_deg`` its tangent at that 2θ,
    ``t0 + g·({center} − c0)``, which the batch engine compiles (an affine link, no expression
    evaluation per iteration). The tangent is exact to second order: over a 1° move of the
    centre the Kα2 position differs from Bragg's law by < 2e-5° at 2θ ≤ 60°, < 2e-4° at 120°.
    """
    r = lambda2_nm / lambda1_nm
    if near_deg is None:
        return f"2*arcsin({r!r}*sin({{center}}*pi/360))*180/pi"
    th = np.radians(near_deg / 2)
    t0 = float(kalpha2_position(near_deg, lambda1_nm, lambda2_nm))
    g = float(r * np.cos(th) / np.cos(np.radians(t0 / 2)))  # d(2θ2)/d(2θ1)
    return f"{t0!r} + {g!r}*({{center}} - {float(near_deg)!r})"


#: the most points SNIP's half-window may span. SNIP costs O(n × half-window) and its half-window
#: is a physical width (1.5° 2θ) in points, so its cost grows as n²: 430k points (step 1.6e-4°)
#: took 111 s, 3M points hours. Lab patterns (step >= 0.003°) stay below it and are unchanged.
SNIP_MAX_HALF_WINDOW = 512

#: a reported reflection's fitted Kα1 height is at least K_HEIGHT local noise SDs above the background
K_HEIGHT = 3.0
#: ... and its area at least K_AREA standard errors, the profile held (:func:`_conditional_area_stderr`)
K_AREA = 3.0
#: an excess within 2 FWHM of a line is its own misfit unless above this fraction of its height
UNEXPLAINED_ENVELOPE = 0.1
#: a Kβ line is at most this fraction of its Kα1 reflection's area (Cu unfiltered: Kβ/Kα1 ~ 0.28)
KBETA_MAX_RATIO = 0.4
#: Kβ wavelengths (nm) of common anodes, by their Kα1 wavelength (XRDML's values; Hölzer et al. 1997)
KNOWN_KBETA = {0.15405980: 0.1392250, 0.17889960: 0.1620830, 0.07093171: 0.0632288}


def kbeta_for(lambda1_nm: float) -> float | None:
    """The Kβ wavelength (nm) of a common anode from its Kα1 wavelength, or None."""
    for a1, b in KNOWN_KBETA.items():
        if abs(float(lambda1_nm) - a1) < 2e-6:
            return b
    return None


def local_noise(x, y, bg, sigma=None, *, block_deg: float = 1.5, global_noise: float | None = None):
    """Noise SD (intensity units) at every point of a pattern, for the significance of a reflection.

    The whole-pattern first-difference estimate (:func:`~specproc.fitting.noise.noise_sigma`) is one
    number, but the noise of a pattern is not: counting noise grows with the background (air
    scatter at low angle), merged or rescaled scans (a position-sensitive detector's low-angle
    range) are noisier in places, and rebinning correlates neighbouring points, which the
    first-difference estimate misses. Here, in blocks of ``block_deg``, on the points off the
    reflections (smoothed net intensity below 2 noise SDs, found twice), the larger of

    * the first-difference estimate (white noise) and the MAD of the net intensity about the
      background (correlated noise: the background's own fluctuation), and
    * the median of the file's σ column (``sigma``, e.g. the esd of an ``.xye``), when there is one,

    interpolated between block centres and never below the whole-pattern estimate (so a reflection
    is never judged more significant than against the one-number noise).

    Parameters
    ----------
    x, y, bg : ndarray (n,)
        2θ (deg, increasing), intensity and background.
    sigma : ndarray (n,), optional
        Per-point standard errors from the file.
    block_deg : float
        Block width (deg 2θ).
    global_noise : float, optional
        The whole-pattern estimate (default ``noise_sigma(y, method="diff")``).

    Returns
    -------
    ndarray (n,)
    """
    from ...fitting.noise import noise_sigma, smooth

    x = np.asarray(x, float)
    y = np.asarray(y, float)
    g = float(global_noise) if global_noise else (noise_sigma(y, method="diff") or 1.0)
    n = x.size
    if n < 50:
        return np.full(n, g)
    net = y - np.asarray(bg, float)
    step = float(np.median(np.diff(x)))
    win = max(5, int(round(0.06 / step)) | 1) if step > 0 else 5
    sm = smooth(net, window=win) if n > win else net
    nb = max(1, int(np.ceil((x[-1] - x[0]) / block_deg)))
    edges = np.searchsorted(x, np.linspace(x[0], x[-1], nb + 1)[1:-1])
    bounds = list(zip(np.r_[0, edges], np.r_[edges, n]))
    d = np.diff(y)
    sig = np.full(n, g)
    for _ in range(2):  # the off-reflection mask uses the noise it estimates: twice
        quiet = sm < 2.0 * sig
        cen, val = [], []
        for a, b in bounds:
            q = np.flatnonzero(quiet[a:b]) + a
            if q.size < 24:
                continue
            qd = q[q + 1 < b]
            qd = qd[quiet[qd + 1]]
            est = []
            if qd.size >= 12:
                dd = d[qd]
                est.append(1.4826 * float(np.median(np.abs(dd - np.median(dd)))) / np.sqrt(2.0))
            r = net[q]
            est.append(1.4826 * float(np.median(np.abs(r - np.median(r)))))
            if sigma is not None:
                est.append(float(np.median(np.asarray(sigma, float)[q])))
            cen.append(float(x[a:b].mean()))
            val.append(max(est))
        if not cen:
            break
        sig = np.maximum(np.interp(x, cen, val), g)
    return sig


def pattern_background(x, y, window_deg: float = 1.5, log: bool = False):
    """:func:`~specproc.techniques.xrd.processing.background` in time linear in the number of points.

    A scan finer than ``window_deg / SNIP_MAX_HALF_WINDOW`` is averaged in blocks of ``f``
    consecutive points (the block step stays below 0.003° for the default 1.5° window, 20x finer
    than the 0.05° noise smoothing the background applies anyway), SNIP runs on the block means
    and the background is interpolated back to the full grid: the same background, as SNIP only
    follows features broader than the window.

    Parameters
    ----------
    x, y : ndarray
        2θ (deg, increasing) and counts.
    window_deg : float
        SNIP window (deg 2θ).
    log : bool
        SNIP on log(1 + y) (see ``background``).

    Returns
    -------
    ndarray
        Background on ``x``.
    """
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    n = x.size
    step = float(np.median(np.abs(np.diff(x)))) if n > 1 else 0.0
    f = int(np.ceil(window_deg / step / SNIP_MAX_HALF_WINDOW)) if step > 0 else 1
    if f <= 1 or n < 8 * f:
        return background(x, y, window_deg, log=log)
    from ...fitting.noise import bin_mean

    m = (n // f) * f
    xb, yb = bin_mean(x, f), bin_mean(y, f)
    if m < n:  # the last partial block
        xb = np.append(xb, x[m:].mean())
        yb = np.append(yb, y[m:].mean())
    bb = background(xb, yb, window_deg, log=log)
    # never above the raw maximum (as background() caps it), ends held flat beyond the block centres
    return np.minimum(np.interp(x, xb, bb), y.max())


def find_peaks(x, net, *, noise: float, prominence_sigma: float = 5.0, kalpha2=None):
    """Candidate reflections in a background-subtracted pattern (shared ``pick_peaks``).

    Parameters
    ----------
    x, net : ndarray
        2θ (deg, increasing) and background-subtracted intensity.
    noise : float or ndarray (n,)
        Noise standard deviation (counts), one number or one per point (:func:`local_noise`);
        prominence threshold = ``prominence_sigma * noise`` at the candidate.
    kalpha2 : (lambda1_nm, lambda2_nm, ratio), optional
        Peaks sitting at the Kα2 position of a stronger peak (and weaker than it) are removed,
        because the Kα2 satellite of the model already contains them.

    Returns
    -------
    list of dict with ``center``, ``height``, ``fwhm`` (deg), sorted by 2θ.
    """
    from ...fitting.noise import smooth
    from ...fitting.peaks import pick_peaks

    step = float(np.median(np.diff(x)))
    # a smoothing window of ~0.06° 2θ (the shared default scales with the length of the pattern,
    # which would blur the 0.05° reflections of a long scan)
    win = max(5, int(round(0.06 / step)) | 1)
    sm = smooth(net, window=win)
    # the smoothed pattern holds nothing finer than its window, but a long window's sidelobes leave
    # a ripple of local maxima (600k in a 3M-point scan) whose prominence search took scipy 15 s:
    # candidates are picked on every k-th point (k = window/32, 1 for lab steps >= 0.002°, where
    # nothing changes), then each is moved to the maximum of the full smoothed grid near it
    k = max(1, win // 32)
    local = np.ndim(noise) > 0
    nz = float(np.min(noise)) if local else float(noise)
    if k == 1:
        peaks = pick_peaks(x, sm, noise=nz, snr=prominence_sigma, max_peaks=len(x), smooth=False)
    else:
        peaks = pick_peaks(x[::k], sm[::k], noise=nz, snr=prominence_sigma, max_peaks=len(x) // k + 1,
                           smooth=False)
        for p in peaks:
            lo = max(p["index"] * k - k, 0)
            j = lo + int(np.argmax(sm[lo:p["index"] * k + k + 1]))
            p.update(center=float(x[j]), height=float(sm[j]), index=j)
    if local:  # picked against the lowest noise, kept against the noise where each one sits
        noise = np.asarray(noise, float)
        peaks = [p for p in peaks if p["prominence"] >= prominence_sigma * noise[p["index"]]]
    if kalpha2 and kalpha2[2]:
        l1, l2, ratio = kalpha2
        peaks.sort(key=lambda p: -p["height"])
        keep = []
        for p in peaks:
            dup = False
            for q in keep:
                t2 = float(kalpha2_position(q["center"], l1, l2))
                if abs(p["center"] - t2) < max(0.5 * q["fwhm"], 2 * step) and p["height"] < 0.8 * q["height"]:
                    dup = True
                    break
            if not dup:
                keep.append(p)
        peaks = keep
    return sorted(peaks, key=lambda p: p["center"])


def _windows(p, kalpha2, span):
    lo = p["center"] - span * p["fwhm"]
    hi = p["center"] + span * p["fwhm"]
    if kalpha2 and kalpha2[2]:
        hi = max(hi, float(kalpha2_position(p["center"], kalpha2[0], kalpha2[1])) + span * p["fwhm"])
    return lo, hi


def peak_clusters(peaks, kalpha2, span=3.0, max_core=6, margin=1):
    """Groups of overlapping peaks as (lo, hi, fitted_peaks, n_core_first, n_core_last).

    Long runs of overlapping reflections (dense patterns, broad peaks) are split into blocks of at
    most ``max_core`` peaks; each block is fitted with its ``margin`` nearest overlapping neighbours on
    each side as free *margin* peaks, and only the block's own peaks are reported (overlapping
    windows), which keeps every fit small. One margin peak per side carries the tail that reaches into
    the window; more of them (cut by the window edge, so poorly determined) drifted to their bounds and
    kept the optimiser from converging (the milled two-phase sample: 6.1 s with 3, 3.3 s with 1, the
    same reflections and phase coverages).
    """
    peaks = sorted(peaks, key=lambda p: p["center"])
    runs, cur, cur_hi = [], [], -np.inf
    for p in peaks:
        lo, hi = _windows(p, kalpha2, span)
        if cur and lo <= cur_hi:
            cur.append(p)
            cur_hi = max(cur_hi, hi)
        else:
            if cur:
                runs.append(cur)
            cur, cur_hi = [p], hi
    if cur:
        runs.append(cur)
    out = []
    for run in runs:
        for s in range(0, len(run), max_core):
            core = run[s:s + max_core]
            lo = min(_windows(p, kalpha2, span)[0] for p in core)
            hi = max(_windows(p, kalpha2, span)[1] for p in core)
            # margin: neighbours whose profile reaches into the window
            left = [p for p in run[max(0, s - margin):s] if _windows(p, kalpha2, span)[1] > lo]
            right = [p for p in run[s + max_core:s + max_core + margin] if _windows(p, kalpha2, span)[0] < hi]
            out.append((lo, hi, left + core + right, len(left), len(left) + len(core)))
    return out


def window_spec(cluster, kalpha2, shape, x, y, *, given=False, lo=None, hi=None):
    """ModelSpec of one window: a Peak per reflection with its Kα2 Satellite, and a linear baseline.

    Centre bounds: a picked reflection moves by at most max(FWHM, 5 steps); a *given* start may move
    to the nearest real maximum, bounded by the midpoints to its neighbours (and the window). The
    upper bound is offset by 1/π of the half-width: a start at the exact midpoint of its bounds
    freezes lmfit's leastsq (see :func:`specproc.fitting.models.unfreeze_centers`).
    """
    from ...fitting.models import ModelSpec, Peak, Satellite

    step = float(np.median(np.diff(x)))
    ratio = kalpha2[2] if kalpha2 else 0.0
    lo = x[0] if lo is None else lo
    hi = x[-1] if hi is None else hi
    cs = [p["center"] for p in cluster]
    peaks = []
    for i, p in enumerate(cluster):
        w = max(p["fwhm"], 2 * step)
        c = p["center"]
        left = (cs[i - 1] + c) / 2 if i > 0 else lo
        right = (cs[i + 1] + c) / 2 if i + 1 < len(cs) else hi
        half = max(w, 5 * step)
        blo, bhi = (left, right) if given else (max(c - half, left), min(c + half * (1 + 1 / np.pi), right))
        if not blo < c < bhi:
            blo, bhi = min(blo, c - step), max(bhi, c + step)
        # a start amplitude at ~0 sits on the min=0 bound where lmfit's sqrt transform has zero
        # slope: floor it at 1 % of the window maximum
        h = max(float(np.interp(c, x, y)), float(p.get("height", 0.0)), 0.01 * float(np.max(y)), 1e-9)
        sats = [Satellite(name="Ka2", position=kalpha2_expr(kalpha2[0], kalpha2[1], c), ratio=float(ratio))] \
            if ratio else []
        peaks.append(Peak(name=f"p{i}", shape=shape, center=c, fwhm=w, amplitude=h * w * 1.06 / (1 + ratio),
                          bounds={"center": (blo, bhi), "sigma": (step / 4, max(10 * w, 1.0))}, satellites=sats))
    return ModelSpec(peaks=peaks, baseline="linear")


def _reflection(out, i, shape, zero_shift_deg, wavelength_nm):
    """One fitted reflection (Kα1 values, satellite credited) from a FitOutcome."""
    from ...fitting.lineshapes import fwhm_of

    pre = f"p{i}_"
    v, e = out.values, out.stderr

    def err(n):
        x = e.get(pre + n)
        return float(x) if x is not None and np.isfinite(x) else np.nan
    sig = float(v[pre + "sigma"])
    fw = float(fwhm_of(shape, v, pre))
    c = float(v[pre + "center"]) - zero_shift_deg
    ce = err("center")
    frac = float(v[pre + "fraction"]) if shape == "pseudo-voigt" else np.nan
    bounded = [n[len(pre):] for n in out.bounded if n.startswith(pre) and "Ka2" not in n]
    from ...fitting.lineshapes import REGISTRY

    return {"_values": {n: float(v[pre + n]) for n in REGISTRY[shape].params},
            "two_theta_deg": c, "two_theta_stderr": ce,
            "d_nm": float(bragg_d(c, wavelength_nm)),
            "d_nm_stderr": float(bragg_d_stderr(c, ce, wavelength_nm)) if np.isfinite(ce) else np.nan,
            "fwhm_deg": fw, "fwhm_stderr": err("sigma") * fw / sig if sig > 0 else np.nan,
            "area": float(v[pre + "amplitude"]), "area_stderr": err("amplitude"),
            "eta": frac, "redchi": float(out.stats["redchi"]), "r2": float(out.stats["r2"]),
            "success": bool(out.stats["success"]), "at_bound": bounded}


def profile(x, p, shape, kalpha2):
    """Fitted profile (Kα1 + Kα2) of one reflection on the grid ``x`` (for the plotted fit)."""
    from ...fitting.lineshapes import evaluate

    pars = p["_values"]
    y = evaluate(shape, x, **pars)
    if kalpha2 and kalpha2[2]:
        c2 = float(kalpha2_position(pars["center"], kalpha2[0], kalpha2[1]))
        y = y + evaluate(shape, x, **{**pars, "center": c2, "amplitude": pars["amplitude"] * kalpha2[2]})
    return y


def _conditional_area_stderr(res, amp_names):
    """Standard errors of the areas with every profile's width, shape and position held at the optimum
    (the other areas and the baseline free): ``{name: se}``.

    The marginal errors (reported with each area) also carry the trade-offs of the shape parameters
    (a pseudo-Voigt's Lorentzian wings against the linear baseline, a width against its neighbour's),
    which in a crowded window leave a 30-σ reflection with an area of 0.5 standard errors: they
    measure how well the *area* is known, not whether there is a reflection. Whether the data need a
    line of the fitted profile at that place is the area's error with the profile held, which still
    counts a neighbour that could take its intensity (an unresolved pair has collinear areas and
    fails). Computed from the fit's covariance C: Cov_S = ((C⁻¹)_SS)⁻¹ for S = areas + baseline.
    """
    names = list(res.var_names)
    C = res.covar
    if C is None:
        return {}
    C = np.asarray(C, float)
    d = np.sqrt(np.clip(np.diag(C), 0, None))
    if not np.all(np.isfinite(C)) or not np.all(d > 0):
        return {}
    S = [k for k, n in enumerate(names) if n in amp_names or n.startswith("bl_")]
    if not S:
        return {}
    R = C / np.outer(d, d)                  # correlation matrix: scale-free inversion
    try:
        F = np.linalg.pinv(R, hermitian=True)
        Rs = np.linalg.pinv(F[np.ix_(S, S)], hermitian=True)
    except np.linalg.LinAlgError:
        return {}
    out = {}
    for j, k in enumerate(S):
        v = Rs[j, j]
        if names[k] in amp_names and np.isfinite(v) and v > 0:
            out[names[k]] = float(d[k] * np.sqrt(v))
    return out


def _significance(res, refl, cluster_idx, noise_at, step, background_window_deg):
    """Judge the reflections ``refl`` (dicts of :func:`_reflection`, indices ``cluster_idx`` in the
    window's spec) of one window fit: sets ``height``, ``noise``, ``height_sigma``, ``area_sigma``
    (area / its standard error with the profiles held, :func:`_conditional_area_stderr`),
    ``significant`` and ``why`` (the reason of a rejection)."""
    from ...fitting.lineshapes import evaluate

    amp = {i: f"p{i}_amplitude" for i in cluster_idx}
    cond = _conditional_area_stderr(res, set(amp.values()))
    for i, p in zip(cluster_idx, refl):
        v = p["_values"]
        p["height"] = float(evaluate(res.spec.peaks[i].shape, np.array([v["center"]]), **v)[0])
        p["noise"] = float(noise_at(v["center"]))
        p["height_sigma"] = p["height"] / p["noise"] if p["noise"] > 0 else np.inf
        se = cond.get(amp[i], p["area_stderr"])
        p["area_sigma"] = p["area"] / se if np.isfinite(se) and se > 0 else np.nan
        why = None
        if not p["area"] > 0:
            why = "area ≤ 0"
        elif not (step <= p["fwhm_deg"] <= background_window_deg):
            why = f"FWHM {p['fwhm_deg']:.3g}° outside one step–background window"
        elif not p["height_sigma"] >= K_HEIGHT:
            why = f"height {p['height_sigma']:.1f} noise SDs"
        elif np.isfinite(p["area_sigma"]) and not p["area_sigma"] >= K_AREA:
            why = f"area {p['area_sigma']:.1f} standard errors"
        # an area without any standard error (amplitude at a bound) is judged on its height
        p["significant"] = why is None
        p["why"] = why
    return refl


def kbeta_lines(peaks, lambda1_nm, kbeta_nm, step):
    """Indices of reflections that are the Kβ line of a stronger reflection (not reflections of their own).

    A weak line at the Kβ position of a reflection P (Bragg's law with λβ for P's d-spacing; within
    max(½ FWHM of P, 3 steps, 3 standard errors)) with at most :data:`KBETA_MAX_RATIO` of P's area.
    Accepted as a family only: at least two such pairs whose area ratios agree within a factor of 5
    of their median, and the Kβ line of the strongest reflection with its Kβ position in the scan
    among them (a single coincidence of a weak reflection of another phase is left alone).
    """
    if not kbeta_nm or len(peaks) < 3:
        return []
    tt = np.array([p["two_theta_deg"] for p in peaks])
    area = np.array([p["area"] for p in peaks])
    lo, hi = tt.min() - 1.0, tt.max() + 1.0
    pairs = {}
    for i in np.argsort(-area):
        s = np.sin(np.radians(tt[i] / 2)) * kbeta_nm / lambda1_nm
        tb = 2 * np.degrees(np.arcsin(s))
        if not lo <= tb <= hi:
            continue
        se = peaks[i]["two_theta_stderr"]
        tol = max(0.5 * peaks[i]["fwhm_deg"], 3 * step, 3 * se if np.isfinite(se) else 0.0)
        j = int(np.argmin(np.abs(tt - tb)))
        if j != i and abs(tt[j] - tb) <= tol and area[j] <= KBETA_MAX_RATIO * area[i] and j not in pairs:
            pairs[j] = i
    if len(pairs) < 2:
        return []
    ratio = np.array([area[j] / area[i] for j, i in pairs.items()])
    med = float(np.median(ratio))
    keep = {j: i for (j, i), r in zip(pairs.items(), ratio) if med / 5 <= r <= 5 * med}
    strongest = [i for i in np.argsort(-area)
                 if lo <= 2 * np.degrees(np.arcsin(min(1.0, np.sin(np.radians(tt[i] / 2)) * kbeta_nm / lambda1_nm)))
                 <= hi][:1]
    if len(keep) < 2 or not strongest or strongest[0] not in keep.values():
        return []
    return sorted((j, i) for j, i in keep.items())


def fit_peaks_array(x, y, *, wavelength_nm, kalpha2=None, shape="pseudo-voigt", prominence_sigma=5.0,
                    background_window_deg=1.5, zero_shift_deg=0.0, source=None, peaks=None, bg=None,
                    log_background=False, sigma=None, kbeta_nm=None):
    """Background, peak search and Kα-doublet profile fits of one pattern (arrays).

    Parameters
    ----------
    x, y : ndarray
        2θ (deg, increasing) and counts.
    wavelength_nm : float
        Kα1 wavelength (nm) for Bragg's law.
    kalpha2 : (lambda1_nm, lambda2_nm, ratio) or None
    shape : str
        A name of the shared lineshape registry (``pseudo-voigt``, ``pearson7``...).
    peaks : list of float, optional
        Starting 2θ positions (deg) instead of the automatic search (starts, not truths: each may
        move up to the midpoint to its neighbours).
    zero_shift_deg : float
        Instrument zero error subtracted from fitted positions before Bragg's law.
    log_background : bool
        SNIP on the log of the counts (high-resolution scans with a huge dynamic range).
    sigma : ndarray, optional
        Per-point standard errors from the file (an ``.xye`` esd column): fit weights 1/σ and part of
        the local noise; default Poisson weights 1/√counts.
    kbeta_nm : float, optional
        Kβ wavelength: lines at the Kβ position of stronger reflections are recognised
        (:func:`kbeta_lines`), fitted, and not reported as reflections.

    Returns
    -------
    dict with ``peaks`` (list of dict: the significant reflections, with ``height``, ``noise``,
    ``height_sigma``, ``area_sigma``), ``background``, ``fit`` (model on the full
    grid, every fitted line), ``noise`` (whole-pattern SD), ``noise_profile`` (local SD per point),
    ``n_candidates``, ``rejected`` (``(2θ, reason)`` of candidates not significant), ``kbeta``
    (Kβ lines: dicts with ``parent_two_theta_deg``), ``skipped``, ``errors``, ``warnings`` (at-bound
    and poor-fit messages of the reported reflections) and ``unexplained`` (the whole-pattern
    residual check's warning, or None).
    """
    from ...fitting.noise import noise_sigma

    x = np.asarray(x, float)
    y = np.asarray(y, float)
    bg = pattern_background(x, y, background_window_deg, log=log_background) if bg is None else bg
    net = y - bg
    # counting data: white noise, so the first-difference estimate (blind to the peaks) is the right one
    noise = noise_sigma(y, method="diff") or 1.0
    if sigma is not None:
        sigma = np.asarray(sigma, float)
        if sigma.shape != y.shape or not np.all(np.isfinite(sigma)) or not np.any(sigma > 0):
            sigma = None
    noise_loc = local_noise(x, y, bg, sigma, block_deg=max(background_window_deg, 20 * float(np.median(np.diff(x)))),
                            global_noise=noise)

    step = float(np.median(np.diff(x)))
    given = peaks is not None
    if not given:
        found = find_peaks(x, net, noise=noise_loc, prominence_sigma=prominence_sigma, kalpha2=kalpha2)
    else:
        found = [{"center": float(c), "height": float(np.interp(c, x, net)), "fwhm": 10 * step} for c in sorted(peaks)]
    if sigma is not None:
        # a zero σ (a zero-count point's √counts, or a masked point) is not infinite weight: the
        # smallest positive σ of the file (1 for √counts)
        weights_all = 1.0 / np.clip(sigma, float(np.min(sigma[sigma > 0])), None)
    else:
        weights_all = 1.0 / np.sqrt(np.clip(y, 1.0, None))
    out, skipped, errors, rejected = _fit_clusters(
        x, net, found, weights_all, noise_loc, kalpha2=kalpha2, shape=shape, given=given,
        zero_shift_deg=zero_shift_deg, wavelength_nm=wavelength_nm, step=step,
        background_window_deg=background_window_deg, source=source)
    # keep significant reflections only (module docstring); the others are counted, never silently dropped
    for p in out:
        if not p["significant"]:
            rejected.append((p["two_theta_deg"], p["why"]))
    fitted = list(out)
    out = [p for p in out if p["significant"]]
    fit_total, envelope, warns = _sum_profiles(x, out, shape, kalpha2, zero_shift_deg)
    for p in fitted:
        p.pop("_warnings", None)
    out.sort(key=lambda p: p["two_theta_deg"])
    # Kβ lines of stronger reflections: in the fitted curve, not reflections of their own
    kb = []
    if kbeta_nm and not given:
        pairs = kbeta_lines(out, wavelength_nm, kbeta_nm, step)
        gone = {j for j, _ in pairs}
        for j, i in pairs:
            kb.append({**{k: v for k, v in out[j].items() if not k.startswith("_")},
                       "parent_two_theta_deg": out[i]["two_theta_deg"],
                       "area_ratio": out[j]["area"] / out[i]["area"]})
        out = [p for k, p in enumerate(out) if k not in gone]
    warns += _bound_and_start_warnings(out, found if given else None, zero_shift_deg, step)
    if found and not out and errors:
        raise FitError("; ".join(errors[:3]), source)
    # the whole pattern's residual in local noise SDs: signal no reported line explains is stated
    unexplained = _unexplained(x, y - bg - fit_total, fit_total, envelope, noise_loc, [p["fwhm_deg"] for p in out])
    return {"peaks": out, "background": bg, "fit": bg + fit_total, "noise": noise, "noise_profile": noise_loc,
            "n_candidates": len(found), "rejected": sorted(rejected), "kbeta": kb,
            "skipped": skipped, "errors": errors, "warnings": warns, "unexplained": unexplained}


def _fit_clusters(x, net, found, weights_all, noise_loc, *, kalpha2, shape, given, zero_shift_deg,
                  wavelength_nm, step, background_window_deg, source):
    """Profile fits of every window of overlapping reflections (refitted once without the candidates that
    are not significant); a failed window is reported and skipped. -> (reflections, skipped, errors,
    rejected)"""
    from ...fitting.fit import fit_spec

    def noise_at(c):
        return float(np.interp(c, x, noise_loc))
    out, skipped, errors, rejected = [], [], [], []

    def fit_window(cluster, xs, ys, ws, nz):
        spec = window_spec(cluster, kalpha2, shape, xs, ys, given=given)
        # the batch engine finds the optimum (its budget grows with the window, and lmfit restarts
        # from its end point if it stops short), so a small lmfit budget suffices (a window that
        # needs more is reported as not converged, not ground through)
        res = fit_spec(spec, xs, ys, weights=ws, noise=nz, where=source,
                       max_nfev=10 * (4 * len(cluster) + 3))
        idx = list(range(len(cluster)))
        refl = [_reflection(res, i, shape, zero_shift_deg, wavelength_nm) for i in idx]
        _significance(res, refl, idx, noise_at, step, background_window_deg)
        return res, refl

    for lo, hi, cluster, c0, c1 in peak_clusters(found, kalpha2):
        # x is increasing: the window is a slice (no full-length mask per cluster)
        i0, i1 = np.searchsorted(x, lo, side="left"), np.searchsorted(x, hi, side="right")
        if i1 - i0 < 4 * len(cluster) + 6:  # a reflection cut by the end of the scan
            skipped.append(cluster[c0]["center"])
            continue
        xs, ys, ws = x[i0:i1], net[i0:i1], weights_all[i0:i1]
        try:
            nz = float(np.median(noise_loc[i0:i1]))
            res, refl = fit_window(cluster, xs, ys, ws, nz)
            weak = [i for i in range(c0, c1) if not refl[i]["significant"]]
            keep = [i for i in range(c0, c1) if refl[i]["significant"]]
            if weak and keep:
                # the kept reflections' values come from a fit without the rejected candidates: refit, once
                # (a refit that fails keeps the first fit, whose rejected candidates are then counted below)
                sub = [p for k, p in enumerate(cluster) if k not in weak]
                try:
                    res2, refl2 = fit_window(sub, xs, ys, ws, nz)
                except (FitError, ParameterError, ValueError, FloatingPointError):
                    res2 = None
                if res2 is not None:
                    for i in weak:
                        rejected.append((refl[i]["two_theta_deg"], refl[i]["why"]))
                    res, refl, cluster, c1 = res2, refl2, sub, c1 - len(weak)
        except (FitError, ParameterError, ValueError, FloatingPointError) as exc:
            # one failed window must not lose the pattern: report it and go on
            skipped.append(cluster[c0]["center"])
            errors.append(f"profile fit of {lo:.2f}–{hi:.2f}° failed: {getattr(exc, 'reason', exc)}")
            continue
        # non-convergence always; a low r² only when the misfit exceeds the noise (reduced χ² > 4):
        # a window of weak reflections on counting noise has a low r² and a perfect fit
        poor = [w for w in res.warnings if not w.startswith("parameter ") and not w.startswith("unexplained ")
                and ("converge" in w or res.stats["redchi"] > 4)]
        for i in range(c0, c1):
            p = refl[i]
            p["_warnings"] = [f"profile fit {lo:.2f}–{hi:.2f}° 2θ: {w}" for w in poor]
            out.append(p)
    return out, skipped, errors, rejected


def _sum_profiles(x, out, shape, kalpha2, zero_shift_deg):
    """The fitted curve of the reported reflections, the envelope of the strongest line near each point
    (its own misfit is not new signal) and the poor-fit warnings of their windows."""
    warns = []
    fit_total = np.zeros_like(x)
    envelope = np.zeros_like(x)   # the strongest line within 2 FWHM (its own misfit is not new signal)
    for p in out:
        c = p["two_theta_deg"] + zero_shift_deg
        # bounded work per peak: a slice of the increasing grid, not a full-length mask
        i0 = np.searchsorted(x, c - 30 * p["fwhm_deg"], side="right")
        i1 = np.searchsorted(x, c + 30 * p["fwhm_deg"] + 1.0, side="left")
        prof = profile(x[i0:i1], p, shape, kalpha2)
        fit_total[i0:i1] += prof
        c2 = float(kalpha2_position(c, kalpha2[0], kalpha2[1])) if kalpha2 and kalpha2[2] else c
        j0 = np.searchsorted(x, c - 2 * p["fwhm_deg"], side="left")
        j1 = np.searchsorted(x, c2 + 2 * p["fwhm_deg"], side="right")
        if prof.size:
            envelope[j0:j1] = np.maximum(envelope[j0:j1], float(prof.max()))
        for w in p.pop("_warnings"):
            if w not in warns:
                warns.append(w)
    return fit_total, envelope, warns


def _bound_and_start_warnings(out, found, zero_shift_deg, step):
    """Parameters at a bound (one line per parameter) and given starts no reflection answered."""
    warns = []
    # one line per parameter: which reflections ended with it at a bound (value = a limit, no error bar)
    by_par: dict = {}
    for p in out:
        for k in p["at_bound"]:
            by_par.setdefault(k, []).append(f"{p['two_theta_deg']:.3f}°")
    for k, where in by_par.items():
        warns.append(f"{k} ended at a bound (a limit, no standard error) for the reflection(s) at "
                     f"{', '.join(where)} 2θ")
    if found is not None:  # a given start is a question: say when no reflection answered it
        got = np.array([p["two_theta_deg"] + zero_shift_deg for p in out])
        for f in found:
            if not got.size or np.min(np.abs(got - f["center"])) > max(10 * step, 0.1):
                warns.append(f"no significant reflection near the given start {f['center']:.3f}° 2θ")
    return warns


def _unexplained(x, resid, model, envelope, noise_loc, fwhms):
    """The toolkit's unexplained-signal check on the whole pattern, in local noise SDs (a warning or None).

    :func:`~specproc.fitting.uncertainty.unexplained_signal` counts an excess above 5 local noise SDs
    over at least half the narrowest FWHM where it is more than half the fitted lines there; here also
    more than :data:`UNEXPLAINED_ENVELOPE` of the strongest line within 2 FWHM: the low-angle tail of
    a 10⁵-count reflection (axial divergence: a few % of its height, which a symmetric profile does
    not follow) is that line's misfit, not a missing reflection, while a shoulder reflection is ≥ 10 %.
    """
    from ...fitting.uncertainty import UNEXPLAINED_SHARE, min_feature_points, unexplained_signal

    z = resid / noise_loc
    eff = np.maximum(np.abs(model), (UNEXPLAINED_ENVELOPE / UNEXPLAINED_SHARE) * envelope) / noise_loc
    feats = unexplained_signal(x, z, 1.0, min_feature_points(x, fwhms or [10 * float(np.median(np.diff(x)))]),
                               model=eff)
    if not feats:
        return None
    from ...fitting.uncertainty import UNEXPLAINED_K

    where = ", ".join(f"{pos:.2f}° ({zz:.0f}σ)" for pos, zz in feats)
    return (f"unexplained signal at {where} 2θ: the pattern exceeds the fitted lines and background by more than "
            f"{UNEXPLAINED_K:g} local noise SDs over several points, by more than half the fitted lines there and "
            f"10 % of any line within 2 FWHM: signal no reported line accounts for (a reflection not found or "
            f"rejected, one cut by the scan end, the asymmetric tail of a strong reflection, or a background the "
            f"SNIP window does not follow)")


def refuse_rsm(m):
    """A reciprocal-space map (ω varies between scans) is not a powder pattern nor a powder series."""
    import numpy as np

    off = np.atleast_1d(m.coords["omega_offset"].values) if "omega_offset" in m.coords else []
    if m.ndim > 1 and (m.attrs.get("signal_type") == "rsm" or len(off) > 1):
        span = f" (ω offsets {min(off):+.3f}..{max(off):+.3f} deg)" if len(off) else ""
        raise ParameterError(
            f"this is a reciprocal-space map{span}: its scans are ω-2θ scans at different ω, not a powder "
            f"series. Pick one scan (m.isel(scan=N), or sp.read(path, scan=N)) to analyse it as a pattern, or map "
            f"it in reciprocal space with xrayutilities (xu.io.getxrdml_map + Experiment.Ang2Q)",
            m.attrs.get("provenance", {}).get("source"))


def check_pattern(m):
    from ...core.measurement import check_measurement

    check_measurement(m, "xrd")
    refuse_rsm(m)
    if m.dims[-1] != "two_theta":
        raise ParameterError(f"XRD pattern must have a two_theta axis, got {m.dims}",
                             m.attrs.get("provenance", {}).get("source"))
    if m.ndim != 1:
        raise ProcessingError("one pattern expected here; use fit_series for stacks",
                              m.attrs.get("provenance", {}).get("source"))
    bad = int(np.sum(~np.isfinite(np.asarray(m.values, float))))
    if bad:
        raise ParameterError(f"{bad} NaN/inf intensities in the pattern",
                             m.attrs.get("provenance", {}).get("source"))
    return m
