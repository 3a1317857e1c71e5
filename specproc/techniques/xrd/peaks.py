"""Peak search and profile fitting of one pattern, on the shared toolkit.

Candidates come from :func:`specproc.fitting.peaks.pick_peaks` on the background-subtracted pattern
(noise from :func:`specproc.fitting.noise.noise_sigma`); what is XRD's own is the removal of
candidates that are only the Kα2 line of a stronger reflection. Each reflection is a
:class:`~specproc.fitting.models.Peak` whose Kα2 line is a
:class:`~specproc.fitting.models.Satellite`: position ``2 asin(λ2/λ1 · sin({center}/2))`` (Bragg's law),
area ``ratio`` × the Kα1 area (the ratio from the file), same width and shape — so the Kα2 line adds
no free parameter. Reflections are fitted in clusters (overlapping windows) on the
background-subtracted pattern with Poisson weights from the raw counts, through
:func:`specproc.fitting.fit.fit_spec` (batch-engine optimum, lmfit confirmation, honest errors:
a parameter at a bound has no standard error and becomes a warning).
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
    m = (n // f) * f
    xb = x[:m].reshape(-1, f).mean(axis=1)
    yb = y[:m].reshape(-1, f).mean(axis=1)
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
    noise : float
        Noise standard deviation (counts); prominence threshold = ``prominence_sigma * noise``.
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
    if k == 1:
        peaks = pick_peaks(x, sm, noise=noise, snr=prominence_sigma, max_peaks=len(x), smooth=False)
    else:
        peaks = pick_peaks(x[::k], sm[::k], noise=noise, snr=prominence_sigma, max_peaks=len(x) // k + 1,
                           smooth=False)
        for p in peaks:
            lo = max(p["index"] * k - k, 0)
            j = lo + int(np.argmax(sm[lo:p["index"] * k + k + 1]))
            p.update(center=float(x[j]), height=float(sm[j]), index=j)
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


def _clusters(peaks, kalpha2, span=3.0, max_core=6, margin=1):
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
            "fraction": frac, "redchi": float(out.stats["redchi"]), "r2": float(out.stats["r2"]),
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


def fit_peaks_array(x, y, *, wavelength_nm, kalpha2=None, shape="pseudo-voigt", prominence_sigma=5.0,
                    background_window_deg=1.5, zero_shift_deg=0.0, source=None, peaks=None, bg=None,
                    log_background=False):
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

    Returns
    -------
    dict with ``peaks`` (list of dict), ``background``, ``fit`` (model on the full grid),
    ``noise``, ``n_candidates``, ``skipped``, ``errors`` and ``warnings`` (at-bound and poor-fit
    messages of the reported reflections).
    """
    from ...fitting.fit import fit_spec
    from ...fitting.noise import noise_sigma

    x = np.asarray(x, float)
    y = np.asarray(y, float)
    bg = pattern_background(x, y, background_window_deg, log=log_background) if bg is None else bg
    net = y - bg
    # counting data: white noise, so the first-difference estimate (blind to the peaks) is the right one
    noise = noise_sigma(y, method="diff") or 1.0
    step = float(np.median(np.diff(x)))
    given = peaks is not None
    if not given:
        found = find_peaks(x, net, noise=noise, prominence_sigma=prominence_sigma, kalpha2=kalpha2)
    else:
        found = [{"center": float(c), "height": float(np.interp(c, x, net)), "fwhm": 10 * step} for c in sorted(peaks)]
    out, skipped, errors, warns = [], [], [], []
    weights_all = 1.0 / np.sqrt(np.clip(y, 1.0, None))
    for lo, hi, cluster, c0, c1 in _clusters(found, kalpha2):
        # x is increasing: the window is a slice (no full-length mask per cluster)
        i0, i1 = np.searchsorted(x, lo, side="left"), np.searchsorted(x, hi, side="right")
        if i1 - i0 < 4 * len(cluster) + 6:  # a reflection cut by the end of the scan
            skipped.append(cluster[c0]["center"])
            continue
        xs, ys, ws = x[i0:i1], net[i0:i1], weights_all[i0:i1]
        try:
            spec = window_spec(cluster, kalpha2, shape, xs, ys, given=given)
            # the batch engine finds the optimum (its budget grows with the window, and lmfit restarts
            # from its end point if it stops short), so a small lmfit budget suffices (a window that
            # needs more is reported as not converged, not ground through)
            res = fit_spec(spec, xs, ys, weights=ws, noise=noise, where=source,
                           max_nfev=10 * (4 * len(cluster) + 3))
        except (FitError, ParameterError, ValueError, FloatingPointError) as exc:
            # one failed window must not lose the pattern: report it and go on
            skipped.append(cluster[c0]["center"])
            errors.append(f"profile fit of {lo:.2f}–{hi:.2f}° failed: {getattr(exc, 'reason', exc)}")
            continue
        # non-convergence always; a low r² only when the misfit exceeds the noise (reduced χ² > 4):
        # a window of weak reflections on counting noise has a low r² and a perfect fit
        poor = [w for w in res.warnings if not w.startswith("parameter ")
                and ("converge" in w or res.stats["redchi"] > 4)]
        for i in range(c0, c1):
            p = _reflection(res, i, shape, zero_shift_deg, wavelength_nm)
            p["_warnings"] = [f"profile fit {lo:.2f}–{hi:.2f}° 2θ: {w}" for w in poor]
            out.append(p)
    # keep significant Bragg peaks: narrower than the background window, and the area significant or
    # the fitted Kα1 height ≥ 3 noise σ. In a blend the area errors of the overlapping reflections are
    # inflated by their correlation (the blend's total is well determined, its sharing is not): an
    # area test alone dropped real reflections of crowded windows (2–5 per window in a two-phase
    # pattern), which phase identification then counted as missing.
    from ...fitting.lineshapes import evaluate

    def significant(p):
        if not (1.0 * step <= p["fwhm_deg"] <= background_window_deg):
            return False
        if np.isfinite(p["area_stderr"]) and p["area"] > 3 * p["area_stderr"]:
            return True
        height = float(evaluate(shape, np.array([p["_values"]["center"]]), **p["_values"])[0])
        return p["area"] > 0 and height >= 3 * noise
    out = [p for p in out if significant(p)]
    fit_total = np.zeros_like(x)
    for p in out:
        c = p["two_theta_deg"] + zero_shift_deg
        # bounded work per peak: a slice of the increasing grid, not a full-length mask
        i0 = np.searchsorted(x, c - 30 * p["fwhm_deg"], side="right")
        i1 = np.searchsorted(x, c + 30 * p["fwhm_deg"] + 1.0, side="left")
        fit_total[i0:i1] += profile(x[i0:i1], p, shape, kalpha2)
        for w in p.pop("_warnings"):
            if w not in warns:
                warns.append(w)
    # one line per parameter: which reflections ended with it at a bound (value = a limit, no error bar)
    by_par: dict = {}
    for p in sorted(out, key=lambda p: p["two_theta_deg"]):
        for k in p["at_bound"]:
            by_par.setdefault(k, []).append(f"{p['two_theta_deg']:.3f}°")
    for k, where in by_par.items():
        warns.append(f"{k} ended at a bound (a limit, no standard error) for the reflection(s) at "
                     f"{', '.join(where)} 2θ")
    out.sort(key=lambda p: p["two_theta_deg"])
    if given:  # a given start is a question: say when no reflection answered it
        got = np.array([p["two_theta_deg"] + zero_shift_deg for p in out])
        for f in found:
            if not got.size or np.min(np.abs(got - f["center"])) > max(10 * step, 0.1):
                warns.append(f"no significant reflection near the given start {f['center']:.3f}° 2θ")
    if found and not out and errors:
        raise FitError("; ".join(errors[:3]), source)
    return {"peaks": out, "background": bg, "fit": bg + fit_total, "noise": noise, "n_candidates": len(found),
            "skipped": skipped, "errors": errors, "warnings": warns}


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
