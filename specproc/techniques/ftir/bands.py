"""FTIR band fitting: one spectrum (shared ``fit_spec``) or a stack (shared ``fit_batch``).

Per spectrum: absorbance (transmittance converted), saturated bands masked, atmospheric CO2 /
water recognised and masked (:mod:`.atmosphere`), region selected, baseline (fitted in the
model — ``linear`` by default — or a pybaselines method subtracted first), bands given or found
(:func:`find_bands`), fitted with the shared :class:`~specproc.fitting.models.ModelSpec`. Each
band gives ``<band>.center_cm1``, ``.fwhm_cm1``, ``.area``, ``.height`` with standard errors from
the fit covariance, plus the data's peak maximum and centroid as cross-checks.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...core.errors import ParameterError, ProcessingError
from ...core.measurement import check_measurement, label, reader_notes
from ...core.result import Quantities, Result
from . import processing as proc

PROCESSOR = "ftir.fit_bands"
#: a modelled CO2 amount stays within this many standard errors of its recognised (matched) amount
CO2_BOUND_SE = 2.0
#: CO2 whose P and R branch amounts differ by more than this many standard errors is fitted a second
#: time bounded by its cleaner branch (:func:`_tighter_co2`); the better fit by the information criterion wins
CO2_DOUBT_CONSISTENCY = 1.5
#: a fitted CO2 (not recognised) this many match standard errors from the match: the band count is doubtful
CO2_FIT_MATCH_SE = 3.0
#: a recognised water line is modelled instead of masked under a band this many times taller
WATER_MODEL_RATIO = 3.0


@dataclass
class Prepared:
    """One spectrum ready to fit (region only, ascending cm-1)."""

    x: np.ndarray
    y: np.ndarray              # absorbance minus the subtracted baseline (pybaselines) or raw
    raw: np.ndarray            # absorbance in the region
    subtracted: np.ndarray     # the pybaselines baseline (zeros for model baselines)
    keep: np.ndarray           # usable points (not masked)
    shade: list                # masked (lo, hi, what) ranges inside the region
    noise: float
    resolution: float | None
    warnings: list = field(default_factory=list)
    meta: dict = field(default_factory=dict)
    #: recognised CO2 bands reaching the region: label -> {"lo", "hi", "amplitude", "resolution_cm1",
    #: "only"} (``only``: the points masked for this CO2 band alone, usable when it is modelled)
    co2: dict = field(default_factory=dict)
    #: recognised water lines reaching the region: {"center", "fwhm", "height", "lo", "hi", "only"} (``only``:
    #: the points this line's mask covers that no CO2 / saturation mask does)
    water: list = field(default_factory=list)


def prepare(m, region=None, baseline="linear", baseline_params=None, atmosphere="auto",
            saturation_limit=None) -> Prepared:
    """Absorbance, masks, region and subtracted baseline of one measurement."""
    from .atmosphere import Atmosphere, known_regions, recognise

    check_measurement(m, "ftir")
    src = (m.attrs.get("provenance") or {}).get("source")
    x, a, kind, notes = proc.as_absorbance(m)
    acq = m.attrs.get("acquisition") or {}
    res = acq.get("resolution_cm1")
    res = float(res) if isinstance(res, (int, float)) and res > 0 else None
    warns = list(notes) + reader_notes(m)
    sat, runs = proc.saturation_mask(x, a, kind, limit=saturation_limit)
    for lo, hi in runs:
        what = "transmittance <= 0" if kind == "transmittance" else "absorbance clipped at the detector limit"
        warns.append(f"saturated band at {lo:.1f}-{hi:.1f} cm-1 ({what}): excluded from the fit")
    a_ok = np.where(sat, np.nan, a)
    if atmosphere == "none":
        atm = Atmosphere()
    else:
        atm = recognise(x, a_ok, res, region=region)
        have = {r[2] for r in atm.regions}
        for lo, hi, lab in known_regions(res or 4.0):
            if lab in have:
                continue
            # a saturated run inside a CO2 range is CO2 that absorbed everything: its template cannot
            # be matched, but its unsaturated flanks must not become sample bands either
            core = 0.5 * (lo + hi)
            if any(rlo <= core + 15 and rhi >= core - 15 for rlo, rhi in runs):
                atm.regions.append((lo, hi, lab))
                atm.notes.append(f"atmospheric {lab} saturated: {lo:.0f}-{hi:.0f} cm-1 masked")
            elif atmosphere == "mask":
                atm.regions.append((lo, hi, lab))
                atm.notes.append(f"atmospheric {lab} region {lo:.0f}-{hi:.0f} cm-1 masked (atmosphere='mask')")
    amask = atm.mask(x)
    if region is not None:
        lo, hi = sorted(float(v) for v in region)
        sel = (x >= lo) & (x <= hi)
        if sel.sum() < 10:
            raise ProcessingError(f"region {lo:g}-{hi:g} cm-1 holds {int(sel.sum())} points "
                                  f"(spectrum covers {x.min():.0f}-{x.max():.0f} cm-1)", src)
    else:
        sel = np.ones(x.size, bool)
    xs, As = x[sel], a[sel]
    mask = (sat | amask | ~np.isfinite(a))[sel]
    keep = ~mask
    rlo, rhi = float(xs.min()), float(xs.max())
    touching = {lab for lo, hi, lab in atm.regions if hi >= rlo and lo <= rhi}
    # only what touches the fitted region is worth a warning
    warns += [n for n in atm.notes if any(lab in n for lab in touching)
              or ("water" in n and "H2O" in touching)]
    shade = [(max(lo, rlo), min(hi, rhi), lab) for lo, hi, lab in atm.regions if hi >= rlo and lo <= rhi]
    shade += [(max(lo, rlo), min(hi, rhi), "saturated") for lo, hi in runs if hi >= rlo and lo <= rhi]
    if keep.sum() < 10:
        raise ProcessingError(f"only {int(keep.sum())} usable points in the region after masking "
                              "(saturated / atmospheric)", src)
    if baseline in proc.BASELINES:
        bl = proc.baseline(xs, np.where(keep, As, np.nan), baseline, mask=mask, **(baseline_params or {}))
        warns.append(f"baseline {baseline!r} (pybaselines) subtracted before the fit: the area/height errors do "
                     "not include the baseline choice (compare_baseline= fits a second one beside it)")
    elif baseline in proc.MODEL_BASELINES:
        if baseline_params:
            raise ParameterError(f"baseline_params apply to pybaselines methods, not to {baseline!r}", src)
        bl = np.zeros_like(xs)
    else:
        raise ParameterError(f"unknown baseline {baseline!r}", src)
    y = As - bl
    dx = float(np.median(np.diff(xs))) if xs.size > 1 else 1.0
    noise = proc.noise_sd(y[keep], res or 4 * dx, dx)
    co2 = {}
    other = sat | ~np.isfinite(a)
    for lo_, hi_, lab in atm.regions:
        if lab != "H2O" and lab not in atm.co2:     # saturated / unconditional CO2 masks stay masks
            other |= (x >= lo_) & (x <= hi_)
        if lab == "H2O":
            other |= (x >= lo_) & (x <= hi_)
    for lo_, hi_, lab in atm.regions:
        if lab in atm.co2 and hi_ >= rlo and lo_ <= rhi:
            only = ((x >= lo_) & (x <= hi_) & ~other)[sel]
            co2[lab] = {"lo": lo_, "hi": hi_, **_co2_match(atm.co2[lab]), "only": only, "recognised": True}
    for lab, info in atm.co2_weak.items():
        # not recognised (weak, or too broad for the second-derivative match): nothing masked, but a
        # band under it gets it modelled with a free intensity, in case it is there
        r_ = res or info["resolution_cm1"]
        lo_, hi_ = next((lo, hi) for lo, hi, lb in known_regions(r_) if lb == lab)
        if hi_ >= rlo and lo_ <= rhi and lab not in co2:
            co2[lab] = {"lo": lo_, "hi": hi_, **_co2_match(info), "resolution_cm1": r_,
                        "only": np.zeros(int(sel.sum()), bool), "recognised": False,
                        "doubtful": bool(info.get("doubtful"))}
            if info.get("doubtful"):
                warns.append(info["doubtful"])
    not_water = sat | ~np.isfinite(a)
    for lo_, hi_, lab in atm.regions:
        if lab != "H2O":
            not_water |= (x >= lo_) & (x <= hi_)
    water = [{**w, "only": ((x >= w["lo"]) & (x <= w["hi"]) & ~not_water)[sel]} for w in atm.water
             if w["hi"] >= rlo and w["lo"] <= rhi]
    meta = {"y_kind": kind, "resolution_cm1": res, "region_cm1": [rlo, rhi], "baseline": baseline,
            "atmosphere": [{"lo": lo, "hi": hi, "what": lab} for lo, hi, lab in atm.regions
                           if hi >= rlo and lo <= rhi],
            "co2": {k: {kk: vv for kk, vv in v.items()} for k, v in atm.co2.items()},
            "n_water_lines": len(atm.water_lines), "saturated_cm1": [list(r) for r in runs]}
    return Prepared(xs, y, As, bl, keep, shade, float(noise), res, warns, meta, co2, water)


def _co2_match(info: dict) -> dict:
    """The second-derivative match's numbers that :func:`add_co2_model` bounds a modelled CO2 with."""
    return {k: info[k] for k in ("amplitude", "stderr", "significance", "consistency", "branches", "resolution_cm1")
            if k in info}


def find_bands(x, y, keep, noise, resolution=None, *, n_bands=None, max_bands=6, snr=5.0, gas_lines=False):
    """Automatic band finding (rules in ``docs/ftir.md``).

    Masked points are bridged linearly (for the search only); candidates come from the shared
    :func:`~specproc.fitting.peaks.pick_peaks` at ``snr`` noise SDs of prominence; candidates in
    a masked range, or narrower than 2x the resolution (3x when water-vapour lines were recognised
    in the region: unresolved blends of gas lines) are dropped; the most
    prominent ``n_bands`` (else up to ``max_bands``) are kept, returned in ascending wavenumber.
    """
    from ...fitting.peaks import pick_peaks

    xi, yi = x, np.interp(x, x[keep], y[keep])
    dx = float(np.median(np.diff(x)))
    res = resolution or 4 * dx
    cands = pick_peaks(xi, yi, noise=noise, snr=snr, max_peaks=60, min_distance=2 * res)
    ok = []
    for c in cands:
        i = int(np.argmin(np.abs(x - c["center"])))
        if not keep[i] or c["fwhm"] < (3 if gas_lines else 2) * res:
            continue
        ok.append(c)
    want = n_bands or max_bands
    ok = ok[:want]
    return sorted(ok, key=lambda c: c["center"])


def _band_name(center: float, taken: set) -> str:
    name = f"band_{center:.0f}"
    while name in taken:
        name += "b"
    taken.add(name)
    return name


def build_spec(prep: Prepared, bands=None, *, shape="pseudo-voigt", baseline="linear", n_bands=None,
               max_bands=6, snr=5.0, center_window=None, src=None, co2_mode="auto"):
    """The :class:`ModelSpec` for one prepared spectrum (given or found bands) and warnings."""
    from ...fitting.models import ModelSpec, Peak, parse_peaks
    from ...fitting.peaks import width_at

    warns = []
    x, y, keep = prep.x, prep.y, prep.keep
    ys, ks = y, keep
    if any(info["only"].any() for info in prep.co2.values()) and co2_mode in ("auto", "model"):
        # start widths and band search under recognised CO2 use the data minus the recognised CO2
        # (template x amplitude of the second-derivative match), not a line bridged over it
        from .atmosphere import co2_template

        ys, ks = np.array(y, float), np.array(keep)
        for lab, info in prep.co2.items():
            o = info["only"]
            ys[o] = ys[o] - info["amplitude"] * co2_template(x[o], info["resolution_cm1"], lab)
            ks |= o
    yb = np.interp(x, x[ks], ys[ks])
    res = prep.resolution or 4 * float(np.median(np.diff(x)))
    span = float(x.max() - x.min())
    if bands is not None:
        peaks = parse_peaks(bands, shape, where=src)
        if not peaks:
            raise ParameterError("bands: empty", src)
        if n_bands is not None and n_bands != len(peaks):
            raise ParameterError(f"n_bands={n_bands} but {len(peaks)} bands are given", src)
        out = []
        for p in peaks:
            if not (x.min() <= p.center <= x.max()):
                raise ParameterError(f"band {p.name!r} at {p.center:g} cm-1 is outside the region "
                                     f"{x.min():.0f}-{x.max():.0f} cm-1", src)
            i = int(np.argmin(np.abs(x - p.center)))
            if not keep[i]:
                warns.append(f"band {p.name!r} starts at {p.center:g} cm-1 inside a masked (atmospheric / "
                             "saturated) range; its centre rests on the unmasked flanks")
            # the width is measured at the data's local maximum near the start (a start on a flank
            # is no peak: scipy's peak widths would be ~0 there)
            near = np.flatnonzero(np.abs(x - p.center) <= 5 * res)
            top = float(x[near[np.argmax(yb[near])]]) if near.size else p.center
            top = top if near.size and x[near[0]] < top < x[near[-1]] else p.center
            fw = p.fwhm or float(np.clip(width_at(x, yb, top, smooth=top == p.center), 2 * res, span / 2))
            win = center_window if center_window is not None else max(fw, 5 * res)
            upd = {"fwhm": fw}
            if p.given is not None and center_window is not None:
                upd["given_window"] = center_window      # how far the user let it move
            if "center" not in p.bounds:
                upd["bounds"] = {**p.bounds, "center": (p.center - win, p.center + win)}
            if "sigma" not in p.bounds and p.shape in ("gaussian", "lorentzian", "pseudo-voigt", "voigt", "pearson7"):
                # widths: from a fraction of the resolution to the region (a band wider than the
                # region is baseline, flagged at the bound)
                from ...fitting.lineshapes import sigma_from_fwhm

                upd.setdefault("bounds", dict(p.bounds))
                upd["bounds"]["sigma"] = (float(sigma_from_fwhm(p.shape, 0.5 * res)),
                                          float(sigma_from_fwhm(p.shape, span)))
            out.append(p.model_copy(update=upd))
        peaks = out
    else:
        gas = any(a["what"] == "H2O" for a in prep.meta["atmosphere"])
        # the 3x-resolution floor is for blends of water lines; under recognised CO2 (subtracted) a narrow
        # sample band is still a band (a band of 2.2x the resolution at 2364 cm-1 was dropped there)
        cands = find_bands(x, ys, ks, prep.noise, prep.resolution, n_bands=n_bands, max_bands=max_bands, snr=snr,
                           gas_lines=gas)
        if not cands:
            raise ProcessingError(f"no band above {snr:g} noise SDs in {x.min():.0f}-{x.max():.0f} cm-1", src)
        if n_bands is not None and len(cands) < n_bands:
            warns.append(f"n_bands={n_bands} asked but only {len(cands)} band(s) found above {snr:g} noise SDs")
        taken: set = set()
        peaks = []
        for c in cands:
            fw = float(np.clip(c["fwhm"], 2 * res, span / 2))
            win = center_window if center_window is not None else max(fw, 5 * res)
            peaks.append(Peak(name=_band_name(c["center"], taken), shape=shape, center=c["center"], fwhm=fw,
                              bounds={"center": (c["center"] - win, c["center"] + win)}))
    model_bl = baseline if baseline in proc.MODEL_BASELINES else "none"
    return ModelSpec(peaks=peaks, baseline=model_bl), warns


def add_co2_model(prep: Prepared, spec, mode: str = "auto", warnings=()):
    """Model (instead of mask) the recognised CO2 bands that a sample band sits under.

    ``mode="auto"``: a recognised CO2 band is modelled when it overlaps a band (the band's start
    centre +- its start FWHM reaches the CO2 range): masked, a band centred under the doublet
    rests on its flanks (1-4 cm-1 errors), and even one beside it loses the points that fix its
    upper half; ``"model"``:
    every recognised CO2 band reaching the region is modelled; anything else: masked as before.
    A modelled CO2 band is one more component of the shared ModelSpec (:func:`.atmosphere.co2_peak`:
    its rotational lines with free intensity, shift and width), its points are fitted, and it is
    reported in ``tables["atmosphere"]`` / ``meta["co2_model"]``, never as a sample band.
    Mutates ``prep`` (``keep``, ``shade``, ``warnings``, ``meta``); returns ``(spec, warnings)``:
    ``warnings`` (those of :func:`build_spec`) without the "starts inside a masked range" of bands
    whose range is now modelled, plus the modelling notes.
    """
    from .atmosphere import co2_components

    warns = list(warnings)
    if mode not in ("auto", "model") or not prep.co2:
        return spec, warns
    peaks, exprs, used = list(spec.peaks), dict(spec.exprs), {}
    for lab, info in prep.co2.items():
        inside = [p.name for p in spec.peaks
                  if p.center + (p.fwhm or 0.0) >= info["lo"] and p.center - (p.fwhm or 0.0) <= info["hi"]]
        if mode == "auto" and not inside and not info.get("doubtful"):
            continue        # (a doubtful match is modelled wherever it is: masked, it could hide a band)
        rng_ = (prep.x >= info["lo"]) & (prep.x <= info["hi"])
        if int(((prep.keep | info["only"]) & rng_).sum()) < 10:
            continue
        # bounded by what was recognised beforehand: the fitted amount (either sign) no larger than
        # the second-derivative match's by more than CO2_BOUND_SE of its standard errors (a free
        # envelope absorbed the misfit of a missing band: -0.21 absorbance, 5-10x any plausible CO2)
        # (the two branches' weighted mean: its error grows by their disagreement, the Birge ratio, when a
        # sample band sits on one branch; not recognised, the bound is the same numbers' -- never a free amount)
        amp, se = info["amplitude"], info.get("stderr")
        if se is None:
            sig_ = info.get("significance")
            se = abs(amp) / sig_ if sig_ and np.isfinite(sig_) and sig_ > 0 else abs(amp)
        lim = abs(amp) + CO2_BOUND_SE * se * max(1.0, float(info.get("consistency") or 0.0))
        info["bound"] = lim
        comp = co2_components(lab, info["resolution_cm1"], amp, amplitude_range=(-lim, lim))
        if comp is None or comp[2] * abs(info["amplitude"]) > 0.5 * prep.noise:
            why = (f"rotational lines resolved at {info['resolution_cm1']:g} cm-1 resolution" if comp is None else
                   f"its envelope misfit ({comp[2] * abs(info['amplitude']):.2g}) exceeds half the noise")
            warns.append(f"atmospheric {lab}: {why}, an envelope model would be wrong; kept masked"
                         + (f" (band(s) {', '.join(map(repr, inside))} rest on their flanks)" if inside else ""))
            continue
        cp, ce, _misfit = comp
        peaks += cp
        exprs.update(ce)
        used[lab] = [p.name for p in cp]
        prep.keep = prep.keep | info["only"]
        prep.shade = [(lo, hi, f"{w} (modelled)" if w == lab else w) for lo, hi, w in prep.shade]
        if not any(w == f"{lab} (modelled)" for _lo, _hi, w in prep.shade):      # not recognised: nothing was masked
            rlo, rhi = float(prep.x.min()), float(prep.x.max())
            prep.shade.append((max(info["lo"], rlo), min(info["hi"], rhi), f"{lab} (modelled)"))
        prep.warnings = [w.replace("cm-1 masked", "cm-1 modelled (envelope of its rotational lines: free intensity "
                                   "and shift), not masked") if f"atmospheric {lab} " in w else w
                         for w in prep.warnings]
        warns = [w for w in warns if not (" inside a masked " in w and any(w.startswith(f"band {n!r} starts at ")
                                                                            for n in inside))]
        if inside and not info.get("recognised", True):
            warns.append(f"atmospheric {lab} not recognised beforehand, modelled anyway under band(s) "
                         f"{', '.join(map(repr, inside))}, its peak absorbance bounded by the second-derivative "
                         f"match (|amount| <= {lim:.3g}; it may be too weak or too broad to recognise; the fitted "
                         "amount is in the atmosphere table)")
        elif inside:
            warns.append(f"atmospheric {lab} modelled (overlaps band(s) {', '.join(map(repr, inside))}): the envelope "
                         "assumes 296 K gas and a Gaussian instrument line of the resolution; a structured residual "
                         "there means another line shape (then compare with atmosphere='mask')")
    if not used:
        return spec, warns
    for a in prep.meta.get("atmosphere", []):
        if a["what"] in used:
            a["modelled"] = True
    prep.meta["co2_model"] = used
    return spec.model_copy(update={"peaks": peaks, "exprs": exprs}), warns


def sample_peaks(spec, prep):
    """``(bands, atmosphere)``: the sample bands of ``spec`` and its modelled CO2 / water-line components."""
    co2 = {n for names in (prep.meta.get("co2_model") or {}).values() for n in names}
    co2 |= set(prep.meta.get("water_model") or [])
    return [p for p in spec.peaks if p.name not in co2], [p for p in spec.peaks if p.name in co2]


def _height_fn(spec, peaks=None):
    from ...fitting.lineshapes import evaluate
    from ...fitting.models import prefix_of

    def fn(v):
        out = []
        for p in (spec.peaks if peaks is None else peaks):
            pre = prefix_of(p.name)
            from ...fitting.lineshapes import get

            kw = {k: v[pre + k] for k in get(p.shape).params}
            out.append(float(evaluate(p.shape, np.array([v[pre + "center"]]), **kw)[0]))
        return np.array(out)

    return fn


def cross_checks(x, y_band, center, fwhm):
    """Peak maximum (parabola through the top of the data) and centroid (within +-FWHM) of one
    band's isolated data (data minus baseline and the other bands); None when undetermined."""
    sel = np.isfinite(y_band) & (np.abs(x - center) <= max(fwhm, 1e-9))
    if sel.sum() < 5:
        return None, None
    xs, ys = x[sel], y_band[sel]
    i = int(np.argmax(ys))
    xmax = float(xs[i])
    # vertex of a parabola through the top (+-0.3 FWHM of the highest point): robust to noise
    top = np.abs(xs - xs[i]) <= 0.3 * fwhm
    if top.sum() >= 3:
        c2, c1, _ = np.polyfit(xs[top] - xs[i], ys[top], 2)
        if c2 < 0 and abs(c1 / (2 * c2)) <= 0.3 * fwhm:
            xmax = float(xs[i] - c1 / (2 * c2))
    w = np.clip(ys, 0, None)
    cen = float(np.sum(xs * w) / np.sum(w)) if np.sum(w) > 0 else None
    # a centroid over a window with masked gaps is biased: only report it when the window is whole
    dx = float(np.median(np.diff(x)))
    if xs.size < 0.8 * (2 * fwhm / dx):
        cen = None
    return xmax, cen


def _shade_spec(shade):
    """Plot-spec shading: one label per kind (many water lines would bury the plot in labels)."""
    out, seen = [], set()
    for lo, hi, lab in sorted(shade):
        out.append({"x0": float(lo), "x1": float(hi), "label": "" if lab in seen else lab,
                    "color": "#f4a582" if lab == "saturated" else "#bbbbbb"})
        seen.add(lab)
    return out


def make_result(m, prep: Prepared, spec, values: dict, stderr: dict, stats: dict, warnings: list,
                params: dict, bounded=(), derived=None, components=None, undetected=()) -> Result:
    """Quantities, tidy table, plot and warnings of one fitted spectrum.

    Bands in ``undetected`` (no signal near their given start: the toolkit's
    :func:`~specproc.fitting.fit.fit_checks`) are no result: every quantity NaN, no errors,
    ``detected`` False in the table, left out of the area fractions.
    """
    import pandas as pd

    from ...fitting.lineshapes import area_of, evaluate, fwhm_of, get
    from ...fitting.models import prefix_of

    x, keep = prep.x, prep.keep
    bands, co2_peaks = sample_peaks(spec, prep)
    names = [p.name for p in bands]
    n = len(names)
    if derived is not None:
        dv, de = derived
    else:
        dv = np.array([fwhm_of(p.shape, values, prefix_of(p.name)) for p in bands]
                      + [area_of(p.shape, values, prefix_of(p.name)) for p in bands]
                      + list(_height_fn(spec, bands)(values)))
        de = np.full(dv.shape, np.nan)
    comps = {}
    for p in bands:
        pre = prefix_of(p.name)
        kw = {k: values[pre + k] for k in get(p.shape).params}
        comps[p.name] = evaluate(p.shape, x, **kw)
    base = np.zeros_like(x)
    for k in ("bl_c0", "bl_c1", "bl_c2"):
        if k in values:
            base = base + values[k] * x ** int(k[-1])
    co2c, atm_rows = {}, []
    for lab, nms in (prep.meta.get("co2_model") or {}).items():
        pks = [p for p in co2_peaks if p.name in nms]
        c = sum(evaluate("gaussian", x, **{k: values[prefix_of(p.name) + k] for k in ("amplitude", "center", "sigma")})
                for p in pks)
        co2c[lab] = c
        free = next(p for p in pks if "amplitude" in p.bounds and "center" in p.bounds)
        pre = prefix_of(free.name)
        top = float(c[np.argmax(np.abs(c))]) if c.size else 0.0
        a, ase = values[pre + "amplitude"], stderr.get(pre + "amplitude")
        top_se = abs(top * ase / a) if ase is not None and a else None
        info = prep.co2.get(lab) or {}
        recognised = bool(info.get("recognised", True))
        if not recognised and top_se and abs(top) > 3 * top_se:
            warnings = list(warnings) + [f"atmospheric {lab}: the band fit finds {top:+.3g} ± {top_se:.2g} absorbance "
                                         "of CO2 that was not recognised beforehand (now modelled)"]
        # the fit asks for more CO2 than the match allows (at the bound), or, not recognised, for an amount
        # the match rules out: the excess is likely a band the CO2 took (sweep seeds 163 / 492: a band lost)
        se_m = info.get("stderr")
        se_m = se_m * max(1.0, float(info.get("consistency") or 0.0)) if se_m else se_m
        off = abs(top - info.get("amplitude", top)) / se_m if se_m else 0.0
        if pre + "amplitude" in bounded or (not recognised and off > CO2_FIT_MATCH_SE):
            why = ("ended at its bound" if pre + "amplitude" in bounded else
                   f"is {off:.1f} standard errors from the pre-fit match ({info.get('amplitude', 0.0):+.3g})")
            warnings = list(warnings) + [f"atmospheric {lab}: the fitted amount ({top:+.3g}) {why}: a band under the CO2 "
                                         f"may be taken for it, the number of bands in {info.get('lo', 0.0):.0f}-"
                                         f"{info.get('hi', 0.0):.0f} cm-1 is uncertain"]
        atm_rows.append({"component": lab, "recognised": recognised, "peak_absorbance": top,
                         "peak_absorbance_stderr": top_se,
                         # the bound its intensity was fitted within (:func:`add_co2_model`), peak absorbance
                         "peak_absorbance_bound": (prep.co2.get(lab) or {}).get("bound"),
                         "shift_cm1": float(values[pre + "center"] - free.center),
                         "shift_cm1_stderr": stderr.get(pre + "center"), "n_gaussians": len(pks)})
    wnames = set(prep.meta.get("water_model") or [])
    wpks = [p for p in co2_peaks if p.name in wnames]
    if wpks:
        c = sum(evaluate("gaussian", x, **{k: values[prefix_of(p.name) + k] for k in ("amplitude", "center", "sigma")})
                for p in wpks)
        co2c["H2O"] = c
        atm_rows.append({"component": "H2O", "recognised": True, "peak_absorbance": float(c[np.argmax(np.abs(c))]),
                         "peak_absorbance_stderr": None, "peak_absorbance_bound": None, "shift_cm1": None, "shift_cm1_stderr": None,
                         "n_gaussians": len(wpks)})
    total = base + sum(comps.values()) + sum(co2c.values())
    warns = list(prep.warnings) + list(warnings)
    qs, rows = Quantities(), []
    resid = np.where(keep, prep.y - total, np.nan)
    for i, p in enumerate(bands):
        pre = prefix_of(p.name)
        own = [b for b in bounded if b.startswith(pre) and b[len(pre):] in get(p.shape).params]
        c, cs = values[pre + "center"], stderr.get(pre + "center")
        fw, fws = dv[i], de[i]
        ar, ars = dv[n + i], de[n + i]
        h, hs = dv[2 * n + i], de[2 * n + i]

        def ok(v, par):
            return None if (v is None or not np.isfinite(v) or any(b.endswith(par) for b in own)) else float(v)

        cs = ok(cs, "center")
        fws = ok(fws, "sigma")
        ars = ok(ars, "amplitude")
        hs = ok(hs, "amplitude") if ok(hs, "sigma") is not None else None
        xmax = cen = None
        detected = p.name not in undetected
        if detected:   # a band with no signal near its given start gets no analysis: it is no result
            span = float(x.max() - x.min())
            narrow = any(b.endswith("sigma") for b in own) and fw < 2 * (prep.resolution or 1.0)
            if ars is not None and ar < 3 * ars:
                warns.append(f"band {p.name!r}: area within 3 standard errors of 0 (overlap or region edge)")
            if any(b.endswith("amplitude") for b in own) or narrow or h < 3 * prep.noise:
                # no band there (intensity 0, a noise spike narrower than the instrument line, or an area
                # within 3 standard errors of 0): its position and width mean nothing
                cs = fws = hs = None
                detected = False
                warns.append(f"band {p.name!r}: not detected above the noise (band absent in "
                             f"{x.min():.0f}-{x.max():.0f} cm-1; height {h:.3g}, noise {prep.noise:.3g})")
            elif (cs is not None and cs > span) or (fws is not None and fws > span):
                cs = fws = None
                warns.append(f"band {p.name!r}: centre / width undetermined (standard error larger than the region)")
            isolated = np.where(keep, prep.y - base - (total - base - comps[p.name]), np.nan)
            xmax, cen = cross_checks(x, isolated, c, fw)
            if xmax is not None and abs(xmax - c) > 0.1 * fw + 3 * (cs or 0):
                warns.append(f"band {p.name!r}: data maximum at {xmax:.1f} cm-1 differs from the fitted centre "
                             f"{c:.1f} cm-1 (asymmetric band, overlap or wrong shape)")
            if cen is not None and abs(cen - c) > 0.1 * fw + 3 * (cs or 0):
                warns.append(f"band {p.name!r}: centroid {cen:.1f} cm-1 differs from the fitted centre {c:.1f} cm-1")
            if own:
                warns.append(f"band {p.name!r}: {', '.join(b[len(pre):] for b in own)} at a bound (no standard error)")
            if any(lo <= c <= hi for lo, hi, w in prep.shade if not w.endswith("(modelled)")):
                warns.append(f"band {p.name!r}: centre {c:.1f} cm-1 lies in a masked range; it is determined by the "
                             "band's flanks only (larger error; check the masked range in the plot)")
        else:   # the table keeps where the fit went (centre, width); the quantities are no result
            ar = h = float("nan")
            cs = fws = ars = hs = None
        nan = float("nan")
        for key, v, s, u, d in (("center_cm1", c, cs, "cm-1", "band centre"), ("fwhm_cm1", fw, fws, "cm-1", "FWHM"),
                                ("area", ar, ars, "cm-1", "integrated absorbance"),
                                ("height", h, hs, "", "peak absorbance")):
            qs.add(p.name, key, float(v) if p.name not in undetected else nan, s, u, d)
        rows.append({"name": p.name, "shape": p.shape, "center_cm1": float(c), "center_cm1_stderr": cs,
                     "fwhm_cm1": float(fw), "fwhm_cm1_stderr": fws, "height": float(h), "height_stderr": hs,
                     "area": float(ar), "area_stderr": ars, "max_cm1": xmax, "centroid_cm1": cen,
                     "area_height_ratio": float(ar / h) if h and np.isfinite(h) else None, "noise_rms": prep.noise,
                     "at_bound": ",".join(b[len(pre):] for b in own), "detected": detected})
    table = pd.DataFrame(rows)
    tot = table["area"].sum()       # NaN areas (undetected bands) are skipped
    table.insert(table.columns.get_loc("area_stderr") + 1, "area_fraction", table["area"] / tot if tot > 0 else np.nan)
    rx = (prep.meta["region_cm1"][0], prep.meta["region_cm1"][1])
    series = [{"name": "absorbance", "y": prep.raw, "role": "data"},
              {"name": "baseline", "y": prep.subtracted + base, "role": "baseline"},
              {"name": "fit", "y": prep.subtracted + total, "role": "fit"}]
    series += [{"name": nm, "y": prep.subtracted + base + comps[nm], "role": "component"} for nm in names]
    series += [{"name": f"{lab} (atmosphere, modelled)", "y": prep.subtracted + base + c, "role": "sideband"}
               for lab, c in co2c.items()]
    series.append({"name": "residual", "y": resid, "role": "residual"})
    plot = {"kind": "spectrum", "title": f"{label(m)}: FTIR bands {rx[0]:.0f}-{rx[1]:.0f} cm-1", "x": x,
            "x_label": "wavenumber (cm-1)", "y_label": "absorbance", "reverse_x": True, "series": series,
            "shade": _shade_spec(prep.shade)}
    meta = dict(prep.meta)
    meta["bands"] = names
    tables = {"bands": table}
    if atm_rows:
        tables["atmosphere"] = pd.DataFrame(atm_rows)
        meta["co2_fit"] = atm_rows
    st = dict(stats)
    st["noise_rms"] = prep.noise
    return Result(processor=PROCESSOR, technique="ftir", sample=label(m), quantities=qs,
                  tables=tables, main_table="bands", plots=[plot], params=params,
                  inputs=[dict(m.attrs.get("provenance") or {})], stats=st, warnings=list(dict.fromkeys(warns)),
                  meta=meta)


def _auto_bands(prep: Prepared, *, shape, baseline, n_bands, max_bands, snr, center_window, src, atmosphere):
    """Automatic bands: the toolkit's :func:`~specproc.fitting.select.select_model` on the usable points.

    The FTIR science stays here: which recognised CO2 bands are modelled (those a band found by
    :func:`find_bands` sits under, :func:`add_co2_model`; they ride along as fixed components, never
    bands), the narrowest band (2x the resolution), the centre window (``center_window``, else
    max(FWHM, 5x resolution)) and width bounds, the names (``band_<cm-1>``). ``n_bands`` fixes the
    number; ``max_bands`` caps it (None: no cap). Returns ``(FitOutcome, spec, warnings)``.
    """
    from ...fitting.lineshapes import sigma_from_fwhm
    from ...fitting.models import ModelSpec, Peak
    from ...fitting.select import select_model

    x = prep.x
    res = prep.resolution or 4 * float(np.median(np.diff(x)))
    span = float(x.max() - x.min())
    warns: list = []
    base = None
    if prep.co2 and atmosphere in ("auto", "model"):
        try:
            provisional, warns = build_spec(prep, None, shape=shape, baseline=baseline, n_bands=None, max_bands=60,
                                            snr=snr, center_window=center_window, src=src, co2_mode=atmosphere)
        except ProcessingError:
            provisional = None
        if provisional is not None:
            spec0, warns = add_co2_model(prep, provisional, atmosphere, warns)
            co2 = {n for names in (prep.meta.get("co2_model") or {}).values() for n in names}
            if co2:
                base = ModelSpec(peaks=[p for p in spec0.peaks if p.name in co2], exprs=dict(spec0.exprs))
    taken: set = set()

    def peak(nm, center, fwhm):
        win = center_window if center_window is not None else max(fwhm, 5 * res)
        bounds = {"center": (center - win, center + win)}
        if shape in ("gaussian", "lorentzian", "pseudo-voigt", "voigt", "pearson7"):
            bounds["sigma"] = (float(sigma_from_fwhm(shape, 0.5 * res)), float(sigma_from_fwhm(shape, span)))
        return Peak(name=nm, shape=shape, center=center, fwhm=fwhm, bounds=bounds)

    model_bl = baseline if baseline in proc.MODEL_BASELINES else "none"

    def select(base_):
        taken.clear()
        try:
            return select_model(x, prep.y, keep=prep.keep, shape=shape, noise=prep.noise, baseline=model_bl, snr=snr,
                                n_components=n_bands, max_components=None if n_bands else max_bands, peak=peak,
                                name=lambda _i, c: _band_name(c, taken), base=base_, min_fwhm=2 * res,
                                max_fwhm=span / 2, unit="cm-1", where=None, n_label="n_bands")
        except ProcessingError as exc:
            if not exc.reason.startswith("no component"):
                raise ProcessingError(exc.reason, src) from None
            raise ProcessingError(f"no band above {snr:g} noise SDs in {x.min():.0f}-{x.max():.0f} cm-1 "
                                  f"({exc.reason})", src) from None

    if prep.water and atmosphere in ("auto", "model"):
        base, wnotes = _model_water_under_bands(prep, base, res, snr)
        warns = list(warns) + wnotes
    sel = select(base)
    tight, why, limbs = _tighter_co2(prep, base, sel.fit)
    if tight is not None:
        try:
            alt = select(tight)
        except ProcessingError:
            alt = None
        if alt is not None:
            ic, ic_alt = _ic(sel.fit, prep.noise), _ic(alt.fit, prep.noise)
            keep_alt = ic_alt < ic
            n1, n2 = (len(sample_peaks(f.spec, prep)[0]) for f in (sel.fit, alt.fit))
            prep.meta["co2_bound_choice"] = {"bic_two_branch": ic, "bic_cleaner_branch": ic_alt,
                                             "n_bands": [n1, n2], "chosen": "cleaner_branch" if keep_alt else "two_branch"}
            if keep_alt or n1 != n2:
                warns.append(f"{why}; fitted both ways ({n1} and {n2} bands): the "
                             f"{'cleaner branch' if keep_alt else 'two-branch'} bound fits better (BIC "
                             f"{min(ic, ic_alt):.1f} against {max(ic, ic_alt):.1f})"
                             + ("" if n1 == n2 or abs(ic - ic_alt) > 10 else
                                ": the number of bands under the CO2 is uncertain"))
            if keep_alt:
                sel = alt
                for lab, limb in limbs.items():
                    prep.co2[lab]["bound"] = limb
    prep.meta["model_selection"] = sel.record
    return sel.fit, sel.fit.spec, [w for w in warns if not w.startswith("n_bands=")] + sel.warnings


def _model_water_under_bands(prep: Prepared, base, res: float, snr: float):
    """Water lines under a band at least WATER_MODEL_RATIO times taller are modelled, not masked.

    A masked line on top of a strong band takes the band's top away (and the linear bridge over
    the masked gap of the candidate search cuts it off: a band 5x taller than the lines there was
    not found at all). The bands are looked for in the data with the masked gaps bridged by a
    smoothing spline (scipy's ``make_smoothing_spline``, GCV), and each recognised line within a
    band's FWHM and WATER_MODEL_RATIO times weaker than it becomes a nuisance component: a Gaussian
    of the line's width (the instrument line: its measured FWHM clipped to 1-1.6x the resolution)
    with free intensity (either sign) and position (+-res/2), never a band. Mutates ``prep``
    (``keep``, ``shade``, ``meta``); returns ``(base, notes)``.
    """
    from scipy.interpolate import make_smoothing_spline

    from ...fitting.models import ModelSpec, Peak
    from .atmosphere import WATER_MAX_FWHM_RES

    x, y, keep = prep.x, prep.y, prep.keep
    if keep.sum() < 10 or keep.all():
        return base, []
    try:
        yb = np.where(keep, y, make_smoothing_spline(x[keep], y[keep])(x))
    except (ValueError, np.linalg.LinAlgError):
        return base, []
    cands = find_bands(x, yb, np.ones(x.size, bool), prep.noise, res, max_bands=60, snr=snr)
    chosen, under = [], []
    for w in prep.water:
        host = [c for c in cands if abs(c["center"] - w["center"]) <= c["fwhm"]
                and c["height"] >= WATER_MODEL_RATIO * abs(w["height"])]
        if host and w["only"].any():
            chosen.append(w)
            under.append(host[0]["center"])
    if not chosen:
        return base, []
    peaks, names, add = [], [], np.zeros(x.size, bool)
    for w in chosen:
        nm = f"atm_H2O_{w['center']:.0f}".replace(".", "_")
        while nm in names:
            nm += "b"
        names.append(nm)
        fw = float(np.clip(w["fwhm"], res, WATER_MAX_FWHM_RES * res))
        sg = fw / (2 * np.sqrt(2 * np.log(2)))
        peaks.append(Peak(name=nm, shape="gaussian", center=w["center"], fwhm=fw, fixed=["sigma"],
                          init={"amplitude": float(w["height"] * sg * np.sqrt(2 * np.pi))},
                          bounds={"center": (w["center"] - 0.5 * res, w["center"] + 0.5 * res),
                                  "amplitude": (None, None)}))
        add |= w["only"]
    # points still under a line that is masked stay masked
    for w in prep.water:
        if not any(w is c for c in chosen):
            add &= ~((x >= w["lo"]) & (x <= w["hi"]))
    prep.keep = keep | add
    spans = {(c["lo"], c["hi"]) for c in chosen}
    prep.shade = [(lo, hi, "H2O (modelled)" if lab == "H2O" and any(lo <= b and hi >= a for a, b in spans) else lab)
                  for lo, hi, lab in prep.shade]
    for a in prep.meta.get("atmosphere", []):
        if a["what"] == "H2O" and (a["lo"], a["hi"]) in spans:
            a["modelled"] = True
    prep.meta["water_model"] = names
    spec = ModelSpec(peaks=(list(base.peaks) if base is not None else []) + peaks,
                     exprs=dict(base.exprs) if base is not None else {})
    where = ", ".join(f"{c:.0f}" for c in sorted(set(under)))
    at = ", ".join(f"{w['center']:.0f}" for w in chosen)
    note = (f"{len(chosen)} water-vapour line(s) at {at} cm-1 modelled "
            f"(Gaussians of the instrument line, free intensity), not masked: the band(s) near {where} cm-1 under "
            f"them are >= {WATER_MODEL_RATIO:g}x taller and a mask would take their top away")
    return spec, [note]


def _ic(fo, noise: float) -> float:
    """BIC of a fit with the noise known: chi² + (free parameters) ln(points)."""
    r = np.asarray(fo.residual, float) / noise
    return float(r @ r + len(fo.var_names) * np.log(max(r.size, 2)))


def _tighter_co2(prep: Prepared, base, fit=None):
    """``base`` with each modelled CO2 whose branches disagree (consistency > CO2_DOUBT_CONSISTENCY)
    bounded by its cleaner branch instead: the smaller of the two branches' own |amount| + CO2_BOUND_SE
    standard errors (a sample band adds to one branch; CO2 is both at one amount). ``(None, "")`` when
    nothing is tighter. The two-branch bound alone let a CO2 swallow a band on its R branch; the cleaner
    branch's alone fell short of real CO2 (by 3-7 noise SDs in 2 of 200 sweep spectra): both are fitted,
    the criterion decides. A CO2 that ``fit`` (the selection with the two-branch bound) left within the
    tighter bound is not refitted. Returns ``(base or None, note, {label: cleaner-branch bound})``."""
    from ...fitting.models import prefix_of

    if base is None:
        return None, "", {}
    peaks, notes, limbs = list(base.peaks), [], {}
    for lab, names in (prep.meta.get("co2_model") or {}).items():
        info = prep.co2.get(lab) or {}
        br, lim = info.get("branches"), info.get("bound")
        if not br or lim is None or float(info.get("consistency") or 0.0) <= CO2_DOUBT_CONSISTENCY:
            continue
        limb = min(abs(a) + CO2_BOUND_SE * se for a, se in br.values())
        if not 0 < limb < lim:
            continue
        f = limb / lim
        if fit is not None:     # the first fit's CO2 already within the tighter bound: the same fit again
            free = [p for p in peaks if p.name in names and p.bounds.get("amplitude", (None, None))[0] is not None]
            v = fit.values
            if free and all(abs(v.get(prefix_of(p.name) + "amplitude", np.inf))
                            <= f * max(map(abs, p.bounds["amplitude"])) for p in free):
                continue
        limbs[lab] = limb
        for i, p in enumerate(peaks):
            if p.name in names and p.bounds.get("amplitude", (None, None))[0] is not None:
                lo, hi = p.bounds["amplitude"]
                init = {k: float(np.clip(v * f, lo * f, hi * f)) if k == "amplitude" else v for k, v in p.init.items()}
                peaks[i] = p.model_copy(update={"bounds": {**p.bounds, "amplitude": (lo * f, hi * f)}, "init": init})
        (ap, sp), (ar, sr) = br["P"], br["R"]
        notes.append(f"atmospheric {lab}: its branches disagree (P {ap:+.3g} ± {sp:.2g}, R {ar:+.3g} ± {sr:.2g}; "
                     f"a sample band on one?), its amount bounded by both ({lim:.3g}) or by the cleaner branch "
                     f"({limb:.3g})")
    if not notes:
        return None, "", {}
    return base.model_copy(update={"peaks": peaks}), "; ".join(notes), limbs


def _from_fit(fo, p):
    """Band ``p`` of the fit ``fo`` with its fitted values as starts (plain bands only; modelled
    atmosphere, tied by expressions, is left as it was)."""
    from ...fitting.lineshapes import fwhm_of
    from ...fitting.models import prefix_of

    pre, v = prefix_of(p.name), fo.values
    if p.satellites or p.shape not in ("gaussian", "lorentzian", "pseudo-voigt", "voigt", "pearson7") or \
            pre + "amplitude" not in v or any(fo.params[n].expr for n in fo.params if n.startswith(pre)
                                              and n[len(pre):] in ("center", "sigma", "amplitude")):
        return p
    c, fw, a = float(v[pre + "center"]), float(fwhm_of(p.shape, v, pre)), float(v[pre + "amplitude"])
    lo, hi = p.bounds.get("center", (None, None))
    c = float(np.clip(c, -np.inf if lo is None else lo, np.inf if hi is None else hi))
    if not (np.isfinite(c) and fw > 0 and np.isfinite(a)):
        return p
    init = dict(p.init)
    if p.shape == "pseudo-voigt" and pre + "fraction" in v:
        init["fraction"] = float(np.clip(v[pre + "fraction"], 0.0, 1.0))
    return p.model_copy(update={"center": c, "fwhm": fw, "amplitude": max(a, 1e-12), "init": init})


def fit_bands(m, bands=None, *, region=None, n_bands=None, max_bands=6, shape="pseudo-voigt", baseline="linear",
              baseline_params=None, atmosphere="auto", saturation_limit=None, center_window=None, snr=5.0,
              params=None) -> Result:
    """Fit the bands of one FTIR spectrum; see :func:`specproc.techniques.ftir.fit_bands`.

    Without ``bands`` the bands are selected by the toolkit's model selection (:func:`_auto_bands`).
    ``max_bands`` (6, the processor's default) still caps the automatic count: without a cap a
    real full-range spectrum (pacdec1.jdx, 30+ bands) took minutes (fit_spec's lmfit fallback on
    windows of 14+ bands), so the cap stays until the selection's fits stay on the batch engine.
    """
    from ...fitting.fit import fit_spec

    src = (m.attrs.get("provenance") or {}).get("source") if hasattr(m, "attrs") else None
    prep = prepare(m, region, baseline, baseline_params, atmosphere, saturation_limit)
    if bands is None:   # automatic: the toolkit's model selection
        out, spec, warns = _auto_bands(prep, shape=shape, baseline=baseline, n_bands=n_bands, max_bands=max_bands,
                                       snr=snr, center_window=center_window, src=src, atmosphere=atmosphere)
        if n_bands is None:  # an automatic band is a detection: none within 2 stderr of zero area is reported
            from ...fitting.fit import drop_undetected
            from ...fitting.select import LONG_RANGE

            def refit(fo, weak):
                # the others start at their fitted values: a 30-band refit from the selection's starts
                # took the engine its whole budget (and lmfit after it), from the optimum a few steps
                peaks = [_from_fit(fo, p) for p in fo.spec.peaks if p.name not in weak]
                # a long range: lmfit only briefly after the engine (as select_model's final fit)
                kw = {"max_nfev": 20 * (3 * len(peaks) + 4)} if len(peaks) > LONG_RANGE else {}
                return fit_spec(fo.spec.model_copy(update={"peaks": peaks}), fo.x, fo.y, noise=prep.noise, where=src,
                                unit="cm-1", **kw)

            out, msg = drop_undetected(out, refit, [p.name for p in sample_peaks(spec, prep)[0]], unit="cm-1",
                                       where=src)
            spec = out.spec
            warns = list(warns) + msg
    else:
        spec, warns = build_spec(prep, bands, shape=shape, baseline=baseline, n_bands=n_bands, max_bands=max_bands,
                                 snr=snr, center_window=center_window, src=src, co2_mode=atmosphere)
        spec, warns = add_co2_model(prep, spec, atmosphere, warns)
        xk, yk = prep.x[prep.keep], prep.y[prep.keep]
        out = fit_spec(spec, xk, yk, noise=prep.noise, where=src, unit="cm-1")
    band_peaks, _ = sample_peaks(spec, prep)
    n = len(band_peaks)
    from ...fitting.lineshapes import area_of, fwhm_of
    from ...fitting.models import prefix_of

    hfn = _height_fn(spec, band_peaks)

    def fn(v):
        return np.concatenate([[fwhm_of(p.shape, v, prefix_of(p.name)) for p in band_peaks],
                               [area_of(p.shape, v, prefix_of(p.name)) for p in band_peaks], hfn(v)])

    dv, de, _ = out.derived(fn)
    assert len(dv) == 3 * n
    return make_result(m, prep, spec, out.values, out.stderr, out.stats, list(warns) + list(out.warnings), params or {},
                       bounded=out.bounded, derived=(np.asarray(dv), np.asarray(de)), undetected=out.undetected)


def attach_baseline_comparison(r: Result, alt, baseline: str) -> None:
    """Put the band table of a second baseline's fit (``alt``) beside ``r`` (in place).

    Adds ``tables["baseline_comparison"]`` (per band: centre and area under both baselines, their
    differences, the area change in %, and each difference in units of the two standard errors
    added in quadrature), ``meta["baseline_comparison"]``, ``alt``'s plot (titled with its
    baseline) after ``r``'s, and a warning for each band whose centre or area differs by more
    than 3 of those errors: the baseline choice, not noise, then decides the number (and no
    error bar contains it). ``alt`` may be the error of the second fit (then a warning).
    """
    import pandas as pd

    r.params = {**(r.params or {}), "compare_baseline": baseline}
    first = r.meta.get("baseline")
    if isinstance(alt, BaseException):
        r.warnings.append(f"baseline comparison: the fit with baseline {baseline!r} failed ({alt})")
        r.meta["baseline_comparison"] = {"baseline": baseline, "error": str(alt), "rows": []}
        return
    other = {row["name"]: row for row in alt.table.to_dict(orient="records")}
    rows = []

    def z(d, s1, s2):
        if s1 is None or s2 is None or not np.isfinite(s1) or not np.isfinite(s2) or (s1 == 0 and s2 == 0):
            return None
        return float(abs(d) / np.hypot(s1, s2))

    for row in r.table.to_dict(orient="records"):
        o = other.get(row["name"])
        if o is None:
            continue
        dc = float(o["center_cm1"] - row["center_cm1"])
        da = float(o["area"] - row["area"])
        zc = z(dc, row["center_cm1_stderr"], o["center_cm1_stderr"])
        za = z(da, row["area_stderr"], o["area_stderr"])
        rows.append({"name": row["name"], "baseline": first, "baseline_2": baseline,
                     "center_cm1": row["center_cm1"], "center_cm1_2": o["center_cm1"], "delta_center_cm1": dc,
                     "delta_center_sigma": zc, "area": row["area"], "area_2": o["area"], "delta_area": da,
                     "delta_area_pct": 100 * da / row["area"] if row["area"] else None, "delta_area_sigma": za})
        for what, zz, a, b, u in (("centre", zc, row["center_cm1"], o["center_cm1"], " cm-1"),
                                  ("area", za, row["area"], o["area"], "")):
            if zz is not None and zz > 3:
                r.warnings.append(f"band {row['name']!r}: {what} depends on the baseline ({first} {a:.4g}{u} vs "
                                  f"{baseline} {b:.4g}{u}, {zz:.1f} standard errors apart): the baseline choice "
                                  "is part of its uncertainty")
    r.tables["baseline_comparison"] = pd.DataFrame(rows)
    r.meta["baseline_comparison"] = {"baseline": baseline, "rows": rows, "warnings_2": list(alt.warnings)}
    for p in alt.plots[:1]:
        q = dict(p)
        q["title"] = f"{p.get('title', '')} (baseline {baseline})"
        r.plots.append(q)
