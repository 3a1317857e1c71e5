"""Peak search (scipy.signal.find_peaks) and profile fitting (lmfit through specproc.fitting.ModelSpec).

Each reflection is fitted as a Kα1/Kα2 doublet when the wavelength has a Kα2 line: the Kα2
component has its position from Bragg's law with λ(Kα2)/λ(Kα1), its area fixed to
``ratio`` × the Kα1 area (the ratio from the file) and the same width and shape — all as lmfit
expressions in the :class:`~specproc.fitting.models.ModelSpec`, so the Kα2 line adds no free
parameter. Peaks are fitted in clusters (overlapping windows) on the background-subtracted
pattern, with Poisson weights from the raw counts.
"""
from __future__ import annotations

import numpy as np

from ...core.errors import FitError, ParameterError, ProcessingError
from .processing import background, bragg_d, bragg_d_stderr, kalpha2_position, noise_sigma
from ...fitting.models import unfreeze_centers


def find_peaks(x, net, *, noise: float, prominence_sigma: float = 5.0, min_fwhm_deg: float | None = None,
               kalpha2=None):
    """Candidate reflections in a background-subtracted pattern.

    Parameters
    ----------
    x, net : ndarray
        2θ (deg) and background-subtracted intensity.
    noise : float
        Noise standard deviation (counts); prominence threshold = ``prominence_sigma * noise``.
    kalpha2 : (lambda1_nm, lambda2_nm, ratio), optional
        Peaks sitting at the Kα2 position of a stronger peak (and weaker than it) are removed,
        because the doublet model already contains them.

    Returns
    -------
    list of dict with ``center``, ``height``, ``fwhm`` (deg).
    """
    from scipy.signal import find_peaks as _fp
    from scipy.signal import savgol_filter

    step = float(np.median(np.diff(x)))
    win = max(5, int(round(0.06 / step)) | 1)
    sm = savgol_filter(net, win, 2) if len(net) > win else net
    min_w = max(2.0, (min_fwhm_deg or 0) / step)
    idx, props = _fp(sm, prominence=prominence_sigma * noise, width=min_w / 2, rel_height=0.5)
    peaks = [{"center": float(x[i]), "height": float(sm[i]), "fwhm": float(w * step), "index": int(i)}
             for i, w in zip(idx, props["widths"])]
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


def _clusters(peaks, kalpha2, span=3.0, max_core=6):
    """Groups of overlapping peaks as (lo, hi, fitted_peaks, n_core_first, n_core_last).

    Long runs of overlapping reflections (dense patterns, broad peaks) are split into blocks of at
    most ``max_core`` peaks; each block is fitted with its overlapping neighbours as free *margin*
    peaks, and only the block's own peaks are reported (overlapping windows), which keeps every
    fit small.
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
            left = [p for p in run[max(0, s - 3):s] if _windows(p, kalpha2, span)[1] > lo]
            right = [p for p in run[s + max_core:s + max_core + 3] if _windows(p, kalpha2, span)[0] < hi]
            out.append((lo, hi, left + core + right, len(left), len(left) + len(core)))
    return out


def doublet_spec(cluster, kalpha2, shape="pseudo-voigt"):
    """ModelSpec of a cluster of reflections, each a Kα1/Kα2 doublet (Kα2 tied by expressions).

    Portable description (YAML / batch engine). Single-pattern fitting uses the equivalent
    :func:`doublet_profile` (vectorised, Kα2 fixed) because lmfit evaluates expressions through asteval at every
    function call, which is ~50× slower for whole-pattern work.
    """
    from ...fitting.models import ModelSpec, Peak

    peaks, exprs = [], {}
    for i, p in enumerate(cluster):
        name = f"p{i}"
        w = max(p["fwhm"], 1e-3)
        peaks.append(Peak(name=name, shape=shape, center=p["center"], fwhm=w))
        if kalpha2 and kalpha2[2]:
            l1, l2, ratio = kalpha2
            a2 = name + "a2"
            peaks.append(Peak(name=a2, shape=shape, center=float(kalpha2_position(p["center"], l1, l2)), fwhm=w))
            exprs[f"{a2}.center"] = f"2*asin({l2 / l1!r}*sin({{{name}.center}}*pi/360))*180/pi"
            exprs[f"{a2}.sigma"] = f"{{{name}.sigma}}"
            exprs[f"{a2}.amplitude"] = f"{{{name}.amplitude}}*{float(ratio)!r}"
            if shape == "pseudo-voigt":
                exprs[f"{a2}.fraction"] = f"{{{name}.fraction}}"
    return ModelSpec(peaks=peaks, baseline="linear", exprs=exprs)


def doublet_profile(x, amplitude, center, sigma, shape_par, lam_ratio, ka2_ratio, shape="pseudo-voigt"):
    """Sum of Kα1/Kα2 doublets, vectorised over peaks (parameter arrays of shape ``(n, 1)``).

    ``shape_par`` is the pseudo-Voigt ``fraction`` or the Pearson VII ``expon``. The Kα2 line sits at
    2 asin(λ2/λ1 · sin θ1) with area ``ka2_ratio`` × the Kα1 area and the same width.
    """
    from ...fitting.lineshapes import pearson7, pseudo_voigt

    f = pseudo_voigt if shape == "pseudo-voigt" else pearson7
    out = f(x, amplitude, center, sigma, shape_par)
    if np.any(ka2_ratio):
        c2 = 2 * np.degrees(np.arcsin(np.clip(np.sin(np.radians(center / 2)) * lam_ratio, -1, 1)))
        out = out + f(x, amplitude * ka2_ratio, c2, sigma, shape_par)
    return out.sum(axis=0) if out.ndim > 1 else out


def doublet_params(cluster, kalpha2, shape, x, y):
    """lmfit Parameters of a cluster: ``p{i}_center/sigma/amplitude/fraction|expon`` + ``bl_c0, bl_c1``."""
    import lmfit

    from ...fitting.lineshapes import sigma_from_fwhm

    if shape not in ("pseudo-voigt", "pearson7"):
        raise ValueError("XRD profile fitting supports 'pseudo-voigt' and 'pearson7'")
    ratio = kalpha2[2] if kalpha2 else 0.0
    params = lmfit.Parameters()
    step = float(np.median(np.diff(x)))
    for i, p in enumerate(cluster):
        pre = f"p{i}_"
        w = max(p["fwhm"], 2 * step)
        # a start amplitude at ~0 sits on the min=0 bound where lmfit's sqrt transform has zero
        # slope; leastsq then stalls for the whole window: floor it at 1 % of the window maximum
        h = max(float(np.interp(p["center"], x, y)), float(p.get("height", 0.0)), 0.01 * float(np.max(y)), 1e-9)
        params.add(pre + "center", value=p["center"], min=p["center"] - max(w, 5 * step),
                   max=p["center"] + max(w, 5 * step))
        params.add(pre + "sigma", value=float(sigma_from_fwhm(shape, w, expon=1.5)), min=step / 4,
                   max=max(10 * w, 1.0))
        params.add(pre + "amplitude", value=h * w * 1.06 / (1 + (ratio or 0)), min=0)
        if shape == "pseudo-voigt":
            params.add(pre + "fraction", value=0.5, min=0, max=1)
        else:
            params.add(pre + "expon", value=1.5, min=0.51, max=50)
    params.add("bl_c0", value=0.0)
    params.add("bl_c1", value=0.0)
    return unfreeze_centers(params)


def _eval_cluster(params, x, n, kalpha2, shape, with_baseline=True, only=None):
    v = params.valuesdict()
    sp = "fraction" if shape == "pseudo-voigt" else "expon"
    idx = range(n) if only is None else np.flatnonzero(only)
    col = lambda k: np.array([v[f"p{i}_{k}"] for i in idx])[:, None]  # noqa: E731
    l1, l2, ratio = kalpha2 if kalpha2 else (1.0, 1.0, 0.0)
    y = doublet_profile(x, col("amplitude"), col("center"), col("sigma"), col(sp), l2 / l1, ratio or 0.0, shape)
    if with_baseline:
        y = y + v["bl_c0"] + v["bl_c1"] * (x - x.mean())
    return y


def fit_peaks_array(x, y, *, wavelength_nm, kalpha2=None, shape="pseudo-voigt", prominence_sigma=5.0,
                    background_window_deg=1.5, zero_shift_deg=0.0, source=None, peaks=None, bg=None):
    """Background, peak search and doublet-aware profile fits of one pattern (arrays).

    Parameters
    ----------
    x, y : ndarray
        2θ (deg, increasing) and counts.
    wavelength_nm : float
        Kα1 wavelength (nm) for Bragg's law.
    kalpha2 : (lambda1_nm, lambda2_nm, ratio) or None
    shape : {"pseudo-voigt", "pearson7", "gaussian", "lorentzian"}
    peaks : list of float, optional
        Initial 2θ positions (deg) instead of the automatic search.
    zero_shift_deg : float
        Instrument zero error subtracted from fitted positions before Bragg's law.

    Returns
    -------
    dict with ``peaks`` (list of dict), ``background``, ``fit`` (model on the full grid),
    ``components`` and ``noise``.
    """
    from ...fitting.lineshapes import fwhm as _fwhm

    x = np.asarray(x, float)
    y = np.asarray(y, float)
    bg = background(x, y, background_window_deg) if bg is None else bg
    net = y - bg
    noise = noise_sigma(y)
    step = float(np.median(np.diff(x)))
    if peaks is None:
        found = find_peaks(x, net, noise=noise, prominence_sigma=prominence_sigma, kalpha2=kalpha2)
    else:
        found = [{"center": float(c), "height": float(np.interp(c, x, net)), "fwhm": 10 * step} for c in peaks]
    out, fit_total = [], np.zeros_like(x)
    skipped, errors = [], []
    weights_all = 1.0 / np.sqrt(np.clip(y, 1.0, None))
    for lo, hi, cluster, c0, c1 in _clusters(found, kalpha2):
        sel = (x >= lo) & (x <= hi)
        if sel.sum() < 4 * len(cluster) + 6:  # a reflection cut by the end of the scan
            skipped.append(cluster[c0]["center"])
            continue
        import lmfit

        xs, ys, ws = x[sel], net[sel], weights_all[sel]
        params = doublet_params(cluster, kalpha2, shape, xs, ys)
        n = len(cluster)

        def resid(pars, xs=xs, ys=ys, ws=ws, n=n):
            return (_eval_cluster(pars, xs, n, kalpha2, shape) - ys) * ws
        try:
            res = lmfit.minimize(resid, params, method="leastsq", max_nfev=200 * (len(params) + 1))
        except (ValueError, TypeError, FloatingPointError) as exc:
            # one failed window must not lose the pattern: report it and go on
            skipped.append(cluster[c0]["center"])
            errors.append(f"profile fit of {lo:.2f}–{hi:.2f}° failed: {exc}")
            continue
        redchi = float(res.redchi)
        for i in range(c0, c1):
            pre = f"p{i}_"
            pv = res.params

            def val(n):
                return float(pv[pre + n].value)

            def err(n):
                e = pv[pre + n].stderr
                return float(e) if e is not None and np.isfinite(e) else np.nan
            sig = val("sigma")
            kw = {"fraction": val("fraction")} if shape == "pseudo-voigt" else {}
            if shape == "pearson7":
                kw = {"expon": val("expon")}
            fw = float(_fwhm(shape, sig, **kw))
            c = val("center") - zero_shift_deg
            ce = err("center")
            out.append({
                "_profile": (val("amplitude"), val("center"), sig, kw.get("fraction", kw.get("expon"))),
                "two_theta_deg": c, "two_theta_stderr": ce,
                "d_nm": float(bragg_d(c, wavelength_nm)),
                "d_nm_stderr": float(bragg_d_stderr(c, ce, wavelength_nm)) if np.isfinite(ce) else np.nan,
                "fwhm_deg": fw, "fwhm_stderr": err("sigma") * fw / sig if sig > 0 else np.nan,
                "area": val("amplitude"), "area_stderr": err("amplitude"),
                "fraction": kw.get("fraction", np.nan), "redchi": redchi, "success": bool(res.success)})
    # keep significant Bragg peaks: narrower than the background window, area significant
    def significant(p):
        if not (1.0 * step <= p["fwhm_deg"] <= background_window_deg):
            return False
        if np.isfinite(p["area_stderr"]):
            return p["area"] > 3 * p["area_stderr"]
        return p["area"] > 5 * noise * p["fwhm_deg"]
    out = [p for p in out if significant(p)]
    if out:
        prof = np.array([p.pop("_profile") for p in out], float)
        l1, l2, ratio = kalpha2 if kalpha2 else (1.0, 1.0, 0.0)
        for s0 in range(0, len(prof), 50):  # chunks bound the (n_peaks, n_points) work array
            pr = prof[s0:s0 + 50]
            fit_total += doublet_profile(x, pr[:, :1], pr[:, 1:2], pr[:, 2:3], pr[:, 3:4], l2 / l1, ratio or 0.0, shape)
    out.sort(key=lambda p: p["two_theta_deg"])
    if found and not out and errors:
        raise FitError("; ".join(errors[:3]), source)
    return {"peaks": out, "background": bg, "fit": bg + fit_total, "noise": noise, "n_candidates": len(found),
            "skipped": skipped, "errors": errors}


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
    return m
