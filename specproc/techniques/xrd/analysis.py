"""Whole-pattern analysis: peaks -> phases -> indexing -> lattice -> size / texture / amorphous hint -> Result.

Quantities (what evidence claims reference), by key ``component.property`` (the name derived from it):

* ``phase(NAME).hkl(101).d_nm``, ``….two_theta_deg``, ``….fwhm_deg``, ``….area``,
  ``….texture_ratio`` — reflections of *every* present or probable phase, always under the phase-qualified
  name (stable whatever else is in the sample); the *primary* phase (highest score among the
  present ones) also gets the short aliases ``hkl(101).d_nm``…;
* ``phase(NAME).lattice.a_nm``, ``….b_nm``, ``….c_nm``, ``….volume_nm3`` for every present or probable
  phase with a refined cell, and the aliases ``lattice.a_nm``… for the primary (present) phase;
* ``phase(NAME).score``, ``phase(NAME).present`` (1 present / 0.5 probable / 0 absent) for every candidate;
* ``amorphous_fraction`` (powder patterns), ``crystallite_size_nm`` (mean Scherrer size of the primary
  phase's peaks; only with an identified phase, its description states the instrumental correction).

Texture ratio of a reflection = (observed area / computed intensity) divided by the median of
that quotient over the phase's unambiguously indexed reflections: 1 for a random powder,
> 1 for reflections enhanced by preferred orientation (a March–Dollase-free indicator).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ...core.errors import ParameterError, ProcessingError
from ...core.result import Quantities, Quantity, Result
from .peaks import check_pattern, fit_peaks_array
from .processing import amorphous_hint

PROCESSOR = "xrd.analyse"


def wavelengths(m, wavelength_nm=None, kalpha2=True):
    """(λ1 nm, (λ1, λ2, ratio) or None, source) from a measurement's acquisition metadata."""
    acq = m.attrs.get("acquisition", {}) or {}
    src = acq.get("wavelength_source", "file")
    if wavelength_nm is not None:
        l1, src = float(wavelength_nm), "user"
        # the file's Kα2 line only applies when the user did not change Kα1
        k2 = acq.get("kalpha2_nm") if acq.get("wavelength_nm") and abs(acq["wavelength_nm"] - l1) < 1e-6 else None
    else:
        l1 = acq.get("wavelength_nm")
        if not l1:
            raise ParameterError("no wavelength in the measurement; pass wavelength_nm",
                                 m.attrs.get("provenance", {}).get("source"))
        k2 = acq.get("kalpha2_nm")
    ratio = acq.get("kalpha2_ratio")
    ka2 = (float(l1), float(k2), float(ratio)) if (kalpha2 and k2 and ratio) else None
    return float(l1), ka2, src


def wavelength_warnings(m, wavelength_nm=None, kalpha2=True) -> list[str]:
    """What the analysis assumes about the radiation that the file does not say (one sentence each).

    A reader that finds no wavelength states ``acquisition["wavelength_source"] = "default"`` (Cu Kα1/Kα2
    assumed), and one that assumes the Kα2 line or its ratio states ``kalpha2_source``; every
    d-spacing, phase and cell depends on it, so it goes into ``Result.warnings`` (and the JSON).
    """
    acq = m.attrs.get("acquisition", {}) or {}
    try:
        l1, ka2, src = wavelengths(m, wavelength_nm, kalpha2)
    except ParameterError:
        return ["no wavelength in this pattern's file and none given: analysed with its series' wavelength"]
    out = []
    k2src = acq.get("kalpha2_source")
    if src == "default":
        dbl = (f" Kα1/Kα2 doublet (λ1 = {l1:.7g} nm, λ2 = {ka2[1]:.7g} nm, Kα2:Kα1 = {ka2[2]:g})" if ka2
               else f" Kα1 {l1:.7g} nm")
        out.append(f"no wavelength in the file: assumed the Cu{dbl}; d-spacings, phases and cells depend on it "
                   f"(pass wavelength_nm / --wavelength for another anode or a monochromated Kα1 beam)")
    elif ka2 and k2src and k2src != "file":
        out.append(f"Kα2 line not in the file: assumed λ2 = {ka2[1]:.7g} nm with Kα2:Kα1 = {ka2[2]:g} ({k2src})")
    elif kalpha2 and src == "user" and not ka2 and acq.get("kalpha2_nm") and acq.get("kalpha2_ratio"):
        out.append(f"wavelength_nm = {l1:g} given (the file's Kα1 is {acq.get('wavelength_nm')}): the file's Kα2 "
                   f"line does not apply and is not modelled (Kα1 only)")
    return out


def instrument_fwhm(two_theta_deg, caglioti=None, instrument_fwhm_deg=None):
    """Instrumental FWHM (deg) at 2θ from Caglioti (U, V, W) or a constant; 0 when unknown."""
    tt = np.asarray(two_theta_deg, float)
    if caglioti is not None:
        U, V, W = caglioti
        t = np.tan(np.radians(tt / 2))
        return np.sqrt(np.clip(U * t ** 2 + V * t + W, 0, None))
    if instrument_fwhm_deg is not None:
        return np.full(tt.shape, float(instrument_fwhm_deg))
    return np.zeros(tt.shape)


def scherrer(two_theta_deg, fwhm_deg, wavelength_nm, k=0.9, inst_fwhm_deg=0.0):
    """Scherrer size (nm) with instrumental broadening removed in quadrature (Gaussian-like profiles).

    Returns NaN where the observed width does not exceed the instrumental width by 10 %.
    """
    obs = np.asarray(fwhm_deg, float)
    inst = np.broadcast_to(np.asarray(inst_fwhm_deg, float), obs.shape)
    beta2 = obs ** 2 - inst ** 2
    ok = obs > 1.1 * inst
    beta = np.radians(np.sqrt(np.where(ok, beta2, np.nan)))
    th = np.radians(np.asarray(two_theta_deg, float) / 2)
    return k * wavelength_nm / (beta * np.cos(th))


def significance_warnings(fp) -> list[str]:
    """The sentences of what the peak search did not report: rejected candidates, Kβ lines, unexplained signal."""
    from .peaks import K_AREA, K_HEIGHT

    out = []
    rej = fp.get("rejected") or []
    if rej:
        shown = ", ".join(f"{t:.2f}°" for t, _ in rej[:12]) + (f" (+{len(rej) - 12} more)" if len(rej) > 12 else "")
        out.append(f"{len(rej)} of {fp['n_candidates']} candidate reflections not significant and not reported "
                   f"(a reflection needs a fitted Kα1 height ≥ {K_HEIGHT:g} local noise SDs above the background "
                   f"and an area ≥ {K_AREA:g} standard errors with its profile held): {shown}")
    kb = fp.get("kbeta") or []
    if kb:
        pairs = ", ".join(f"{p['two_theta_deg']:.2f}° (of {p['parent_two_theta_deg']:.2f}°)" for p in kb)
        lo, hi = min(p["area_ratio"] for p in kb), max(p["area_ratio"] for p in kb)
        out.append(f"{len(kb)} weak lines at the Kβ positions of stronger reflections: {pairs}, Kβ/Kα1 area "
                   f"{lo:.1%}–{hi:.1%}: Kβ radiation (no or a thin β filter), fitted but not reported as "
                   f"reflections (tables['kbeta'])")
    if fp.get("unexplained"):
        out.append(fp["unexplained"])
    return out


def significance_meta(fp, sigma_column: bool) -> dict:
    """``Result.meta["peak_significance"]``: the rule a reported reflection passed and what it rejected."""
    from .peaks import K_AREA, K_HEIGHT

    return {"k_height": K_HEIGHT, "k_area": K_AREA,
            "rule": f"fitted Kα1 height ≥ {K_HEIGHT:g} × the local noise SD above the local background, and area "
                    f"≥ {K_AREA:g} × its standard error with the fitted profiles held (neighbours' areas and the "
                    f"window's baseline free); Kβ lines of stronger reflections are not reflections",
            "noise": ("local: max(file σ column, background fluctuation) per block, ≥ whole-pattern estimate"
                      if sigma_column else "local: background fluctuation per block, ≥ whole-pattern estimate"),
            "noise_global": float(fp["noise"]),
            "n_candidates": int(fp["n_candidates"]), "n_rejected": len(fp.get("rejected") or []),
            "rejected_two_theta_deg": [float(t) for t, _ in fp.get("rejected") or []],
            "rejected_reasons": [str(w) for _, w in fp.get("rejected") or []],
            "n_kbeta": len(fp.get("kbeta") or [])}


def detection_area(peaks, noise, prominence_sigma):
    """Smallest detectable reflection area (counts·deg): a peak of height ``prominence_sigma`` × noise
    with the median observed FWHM (Gaussian area factor 1.064). None without peaks."""
    fw = [p["fwhm_deg"] for p in peaks if np.isfinite(p["fwhm_deg"])]
    return float(prominence_sigma * noise * np.median(fw) * 1.064) if fw else None


def _se(v):
    """A standard error or None (never NaN: a parameter at a bound has no error bar)."""
    return float(v) if v is not None and np.isfinite(v) else None


def _flag_overlaps(peaks, present, wavelength_nm, tt_range, min_rel=1.0):
    """Set ``p["overlap"]``: an indexed peak lies within one FWHM (at least the phase's median FWHM)
    of a reflection (≥ ``min_rel`` % of its strongest) of *another* present phase, or is more than
    1.5× broader than its phase's median (an unresolved blend)."""
    sticks = {r.name: r.sticks(wavelength_nm, (tt_range[0] - 1, tt_range[1] + 1), cell=mt["cell"], min_rel=min_rel)
              ["two_theta"] for r, mt in present}
    med = {}
    for name in sticks:
        fw = [p["fwhm_deg"] for p in peaks if p["phase"] == name and not p["ambiguous"]]
        med[name] = float(np.median(fw)) if fw else np.nan
    for p in peaks:
        p["overlap"] = False
        if p["phase"] is None:
            continue
        m = med.get(p["phase"], np.nan)
        win = max(p["fwhm_deg"], m) if np.isfinite(m) else p["fwhm_deg"]
        others = [t for n, t in sticks.items() if n != p["phase"]]
        near = any(np.any(np.abs(t - p["two_theta_deg"]) < win) for t in others)
        p["overlap"] = bool(near or (np.isfinite(m) and p["fwhm_deg"] > 1.5 * m))


#: at most this many screened candidates go into the whole-pattern fit (the best by screening score)
MAX_WP_CANDIDATES = 4


def _screened(refs, matches, x):
    """Candidates for the whole-pattern test: every phase the position screen calls present or probable, and
    any other with ≥ 3 strong reflections matched and a quarter of them (a phase whose intensities differ from
    the reference, or whose peaks the search missed, is confirmed or rejected by the whole pattern)."""
    out = []
    for r, mt in zip(refs, matches):
        if r.system not in ("cubic", "tetragonal", "hexagonal", "trigonal", "orthorhombic"):
            continue
        if mt["status"] in ("present", "probable") or (mt["n_matched"] >= 3 and mt.get("pos_coverage", 0) >= 0.25):
            out.append((r, mt))
    out.sort(key=lambda t: (t[1]["status"] == "absent", -t[1]["score"]))
    return out[:MAX_WP_CANDIDATES]


def _whole_pattern(x, y, sig, fp, refs, matches, l1, ka2, params, src, warnings_):
    """Confirm the screened phases on the whole pattern; update their status, cell and texture flag in place.

    Returns ``(WholePatternFit or None, {name: decision})``."""
    from .wholepattern import bin_for_fit, confirm_phases, pawley_fit

    cands = _screened(refs, matches, x)
    if not cands:
        return None, {}
    fw = [p["fwhm_deg"] for p in fp["peaks"]]
    fw_ok = [f for f in fw if f is not None and np.isfinite(f) and f > 0]
    # a pattern far finer than its peaks is binned for the fit (its cost is linear in the points)
    x, y, sig, bg, _ = bin_for_fit(x, y, sig, fp["background"], min(fw_ok) if fw_ok else None)
    kw = dict(kalpha2=(ka2[1], ka2[2]) if ka2 else None, sigma=sig, background=bg,
              caglioti=_instrument_profile(params), fwhm_start=fw or None, max_strain=params.wholepattern_max_strain,
              asymmetry=params.asymmetry, source=src)
    xs = x - params.zero_shift_deg  # the given zero error is removed first (the fit refines what is left)
    try:
        full, dec = confirm_phases(xs, y, [(r, mt["cell"]) for r, mt in cands], l1, **kw)
    except (ProcessingError, np.linalg.LinAlgError, ValueError) as exc:
        warnings_.append(f"whole-pattern fit failed ({getattr(exc, 'reason', exc)}); phases from the position "
                         f"screen only")
        return None, {}
    by = {d["name"]: d for d in dec}
    keep = [(r, full.phase(r.name)["cell"]) for r, _ in cands if by[r.name]["status"] != "absent"]
    fit = full
    if keep and len(keep) < len(cands):
        try:  # the reported fit holds the confirmed phases only
            fit = pawley_fit(xs, y, keep, l1, start=full, **kw)
        except ProcessingError:
            fit = full
    elif not keep:
        fit = None
    for r, mt in cands:
        d = by[r.name]
        was = mt["status"]
        mt["status"] = d["status"]
        mt["reasons"] = list(d["reasons"]) + ([f"position screen: {was}"] if was != d["status"] else [])
        if d["status"] != "absent" and fit is not None:
            mt["cell"] = dict(fit.phase(r.name)["cell"])
            mt["texture"] = bool(d["texture"] or mt.get("texture"))
    if fit is not None:
        warnings_ += [f"whole-pattern fit: {w}" for w in fit.warnings]
        if fit.gof2 > 4:
            warnings_.append(f"whole-pattern fit: reduced χ² = {fit.gof2:.3g} (Rwp {fit.rwp:.3f}, "
                             f"Rexp {fit.rexp:.3f}): "
                             f"the profile or background does not describe the data to its noise; esd's are scaled "
                             f"by it, but an unindexed phase or a strong asymmetry may bias the cells")
    return fit, by


def _instrument_profile(params):
    """The instrument's Gaussian FWHM² law for the whole-pattern profile: Caglioti (U, V, W) when given, a
    constant FWHM as W alone; None (refined with the sample's widths) when neither is known."""
    if params.caglioti is not None:
        return tuple(float(v) for v in params.caglioti)
    if params.instrument_fwhm_deg:
        return (0.0, 0.0, float(params.instrument_fwhm_deg) ** 2)
    return None


def _size_strain(wpp, wavelength_nm, k):
    """Lorentzian size (nm) and microstrain from the phase's TCH X, Y (deg): Γ_L = Kλ/(L cos θ) + 4ε tan θ."""
    X, Xe, Y, Ye = wpp["X"], wpp["X_stderr"], wpp["Y"], wpp["Y_stderr"]
    out = {}
    if X > 0 and np.isfinite(X):
        L = k * wavelength_nm / np.radians(X)
        out["size_nm"] = (float(L), float(L * Xe / X) if np.isfinite(Xe) and Xe > 0 else None)
    out["microstrain"] = (float(np.radians(Y) / 4), float(np.radians(Ye) / 4) if np.isfinite(Ye) and Ye > 0 else None)
    return out


def _wp_phase(wp, name):
    if wp is None:
        return None
    try:
        return wp.phase(name)
    except KeyError:
        return None


def _wp_meta(wp, dec):
    """``Result.meta["whole_pattern"]``: fit statistics, refined instrument parameters and the per-phase tests."""
    if wp is None:
        return None
    return {"method": "Pawley-type whole-pattern fit (free intensities, variable projection), TCH pseudo-Voigt, "
                      "Kα1/Kα2, Chebyshev + SNIP background",
            "rwp": wp.rwp, "rexp": wp.rexp, "chi2_red": wp.gof2, "n_params": wp.n_params, "n_points": wp.n_points,
            "seconds": wp.seconds, "converged": wp.converged,
            "params": {k: (None if v is None else float(v)) for k, v in wp.params.items()},
            "phases": {k: {kk: vv for kk, vv in v.items() if kk != "reasons"} for k, v in dec.items()}}


def _prepare(m, params):
    """The pattern to analyse: ascending 2θ within the range, its esd's, the scan kind and wavelengths."""
    from types import SimpleNamespace

    # the background window narrows for high-resolution scans (below): a local copy
    background_window_deg = params.background_window_deg

    check_pattern(m)
    src = m.attrs.get("provenance", {}).get("source")
    l1, ka2, wl_src = wavelengths(m, params.wavelength_nm, params.kalpha2)
    x = np.asarray(m.coords["two_theta"].values, float)
    y = np.asarray(m.values, float)
    # the file's per-point standard errors (an .xye esd column): fit weights and local noise
    sig = np.asarray(m.coords["intensity_sigma"].values, float) if "intensity_sigma" in m.coords else None
    if x[0] > x[-1]:
        x, y = x[::-1], y[::-1]
        sig = sig[::-1] if sig is not None else None
    if params.two_theta_range is not None:
        sel = (x >= params.two_theta_range[0]) & (x <= params.two_theta_range[1])
        if sel.sum() < 20:
            raise ProcessingError(f"two_theta_range {params.two_theta_range} leaves {sel.sum()} points", src)
        x, y = x[sel], y[sel]
        sig = sig[sel] if sig is not None else None
    warnings_ = []
    from .scantype import classify_scan, refusal

    acq = m.attrs.get("acquisition", {}) or {}
    if params.scan_type == "auto":
        kind, why = classify_scan(x, y, acq.get("scan_axis"), acq.get("measurement_type"))
    else:
        kind, why = params.scan_type, [f"scan_type={params.scan_type!r} given"]
    if kind == "reflectivity":
        raise ProcessingError(refusal(why), src)
    powder = kind == "powder"
    if not powder:
        warnings_.append(f"high-resolution (single-crystal / epitaxial) scan: {'; '.join(why)}. Peak positions "
                         f"and d-spacings are reported; phase identification, crystallite size and amorphous "
                         f"fraction need a powder pattern and are not reported")
        # the SNIP window must stay narrower than the scan, or the substrate reflection becomes "background"
        background_window_deg = min(background_window_deg, max((x[-1] - x[0]) / 20, 5 * float(np.median(np.diff(x)))))
    elif (acq.get("scan_axis") or "").replace(" ", "").lower() in ("2theta", "detector"):
        warnings_.append("2θ-only (detector) scan, e.g. grazing incidence: relative intensities and peak "
                         "positions differ from a symmetric θ-2θ powder pattern (refraction, absorption)")
    return SimpleNamespace(src=src, x=x, y=y, sig=sig, l1=l1, ka2=ka2, wl_src=wl_src, acq=acq, kind=kind,
                           powder=powder, warnings=warnings_, background_window_deg=background_window_deg)


def _settle_phases(peaks, refs, matches, wp_dec, l1, tt_range, params, warnings_):
    """Present and probable phases indexed; one that owns too few peaks is absent. -> (present, idx)"""
    from .phases import index_peaks

    # present phases first (by score), then "probable" ones: indexed and refined too, but flagged
    present = sorted([(r, mt) for r, mt in zip(refs, matches) if mt["status"] in ("present", "probable")],
                     key=lambda t: (t[1]["status"] != "present", -t[1]["score"]))
    idx = index_peaks(peaks, present, l1, tt_range, params.tolerance_deg)
    owned = {r.name: sum(1 for ix in idx if ix and ix["phase"] == r.name) for r, _ in present}
    # a phase the whole-pattern fit confirmed explains its reflections there (the peak search may miss many)
    dropped = [(r, mt) for r, mt in present if owned[r.name] < 3 and r.name not in wp_dec]
    if dropped:
        for r, mt in dropped:
            mt["status"] = "absent"
            mt["reasons"] = mt.get("reasons", []) + [f"owns only {owned[r.name]} peak(s) after indexing"]
            if mt["present"]:
                warnings_.append(f"{r.name}: matched by position but owns only {owned[r.name]} peak(s) after "
                                 f"indexing; reported absent")
        present = [(r, mt) for r, mt in present if mt["status"] != "absent"]
        idx = index_peaks(peaks, present, l1, tt_range, params.tolerance_deg)
    for r, mt in zip(refs, matches):
        mt["present"] = mt["status"] == "present"
        if mt["status"] == "probable":
            warnings_.append(f"{r.name}: probable, not confirmed ({'; '.join(mt['reasons'])}); its lattice is "
                             f"refined and reported")
        elif mt["present"] and mt.get("texture"):
            warnings_.append(f"{r.name}: identified by positions; relative intensities differ from the reference "
                             f"(texture / preferred orientation: see texture_ratio per reflection)")
    return present, idx


def _annotate_peaks(peaks, idx, present, l1, tt_range, params):
    """Each peak's phase, hkl, computed position and intensity, Scherrer size; overlaps flagged."""
    inst = instrument_fwhm([p["two_theta_deg"] for p in peaks], params.caglioti, params.instrument_fwhm_deg)
    sizes = scherrer([p["two_theta_deg"] for p in peaks], [p["fwhm_deg"] for p in peaks], l1, params.scherrer_k,
                     inst) \
        if peaks else np.array([])
    for p, ix, sz in zip(peaks, idx, sizes):
        p.update(phase=ix["phase"] if ix else None, hkl=ix["label"] if ix else None,
                 calc_two_theta_deg=ix["calc_two_theta"] if ix else np.nan,
                 calc_intensity=ix["calc_intensity"] if ix else np.nan,
                 ambiguous=bool(ix and ix["n_overlap"] > 1), size_nm=float(sz), texture_ratio=np.nan,
                 hkl_tuple=ix["hkl"] if ix else None)
    _flag_overlaps(peaks, present, l1, tt_range)


def _phase_quantities(present, peaks, wp, l1, params, src, warnings_):
    """Per present/probable phase: texture ratios, the refined cell (whole pattern, or from its clean
    reflections), the named reflections and the cell as quantities. -> (q, lattices)"""
    from .lattice import refine_cell

    q = Quantities()
    lattices = {}
    for rank, (ref, mt) in enumerate(present):
        mine = [p for p in peaks if p["phase"] == ref.name]
        clean = [p for p in mine if not p["ambiguous"]]
        quot = np.array([p["area"] / p["calc_intensity"] for p in clean if p["calc_intensity"] > 0])
        med = float(np.median(quot)) if quot.size else np.nan
        for p in clean:
            if p["calc_intensity"] > 0 and np.isfinite(med) and med > 0:
                p["texture_ratio"] = p["area"] / p["calc_intensity"] / med
        lat = None
        # cell refinement: reflections free of this phase's own overlaps (``clean``) and of
        # other present phases' reflections (``free``), weighted by 1/σ²(2θ) in refine_cell.
        # An unresolved overlap pulls the fitted centre towards the other line by up to ~½ FWHM.
        free = [p for p in clean if not p["overlap"]]
        npar = len(ref.lattice_params)
        use = free if len(free) >= npar + 2 else (clean if len(clean) >= npar + 1 else mine)
        wpp = _wp_phase(wp, ref.name)
        if use is not free and len(present) > 1 and wpp is None:
            warnings_.append(f"{ref.name}: only {len(free)} reflections free of other phases' lines; "
                             f"the cell is refined from overlapped ones too")
        if wpp is not None:
            lat = {"system": ref.system, "n_reflections": int(wpp["inside"].sum()), "method": "whole-pattern",
                   "volume_nm3": wpp["volume_nm3"], "volume_nm3_stderr": wpp["volume_nm3_stderr"]}
            for k in "abc":
                lat[f"{k}_nm"] = wpp["cell_nm"][k]
                lat[f"{k}_nm_stderr"] = wpp["cell_nm_stderr"][k]
        elif len(use) >= len(ref.lattice_params) + 1:
            c = ref.full_cell(mt["cell"])
            try:
                lat = refine_cell([p["hkl_tuple"] for p in use], [p["two_theta_deg"] for p in use],
                                  [p["two_theta_stderr"] for p in use], system=ref.system,
                                  start={"a_nm": c["a"] / 10, "b_nm": c["b"] / 10, "c_nm": c["c"] / 10},
                                  wavelength_nm=l1, source=src)
            except ProcessingError as exc:
                warnings_.append(f"{ref.name}: {exc.reason}")
        else:
            warnings_.append(f"{ref.name}: {len(use)} indexed reflections, too few to refine the "
                             f"{ref.system} cell")
        lattices[ref.name] = lat
        # every phase under its qualified name; the primary phase also unqualified (short alias)
        primary = rank == 0 and mt["status"] == "present"  # a probable phase never gets the short aliases
        prefs = [f"phase({ref.name})."] + ([""] if primary else [])  # the reflection's component: phase(X).hkl(..)
        seen = {}
        for p in sorted(mine, key=lambda p: -p["area"]):
            if p["hkl"] in seen:
                continue
            seen[p["hkl"]] = p
            if wpp is not None and p.get("hkl_tuple") is not None:  # d of the named reflection from the cell
                from .wholepattern import d_from_cell

                dv, de = d_from_cell(wpp, p["hkl_tuple"])
                dq = Quantity(dv, de, "nm", f"d-spacing of {ref.name} ({p['hkl']}) from the whole-pattern cell")
            else:
                dq = Quantity(p["d_nm"], _se(p["d_nm_stderr"]), "nm", f"d-spacing of {ref.name} ({p['hkl']})")
            hq = {"d_nm": dq,
                  "two_theta_deg": Quantity(p["two_theta_deg"], _se(p["two_theta_stderr"]), "deg"),
                  "fwhm_deg": Quantity(p["fwhm_deg"], _se(p["fwhm_stderr"]), "deg"),
                  "area": Quantity(p["area"], _se(p["area_stderr"]), "counts*deg")}
            if np.isfinite(p["texture_ratio"]):
                hq["texture_ratio"] = Quantity(p["texture_ratio"], None, "",
                                               "observed/computed intensity, median-normalised")
            for pref in prefs:
                for k, qq in hq.items():
                    q.put(replace(qq, component=f"{pref}hkl({p['hkl']})", property=k))
        if wpp is not None and _instrument_profile(params) is not None:
            # the instrument's part of the profile is fixed, so the Lorentzian X, Y are the sample's
            for key, (v, e) in _size_strain(wpp, l1, params.scherrer_k).items():
                what = (f"size (K={params.scherrer_k})" if key == "size_nm"
                        else "strain (integral ε = Γ/4tanθ)")
                q.add(f"phase({ref.name})", key, v, e, "nm" if key == "size_nm" else "",
                      f"{ref.name}: whole-pattern Lorentzian {what}; "
                      f"instrument profile removed")
        if lat:
            for key in ("a_nm", "b_nm", "c_nm", "volume_nm3"):
                if key[0] in ("a", "v") or key[0] in ref.lattice_params:
                    unit = "nm^3" if key.startswith("volume") else "nm"
                    qq = q.add(f"phase({ref.name}).lattice", key, lat[key], _se(lat[key + "_stderr"]), unit,
                               f"{ref.name} refined cell")
                    if primary:
                        q.put(replace(qq, component="lattice"))
    return q, lattices


def _decision_quantities(refs, matches, wp_dec, q):
    """What each candidate's presence call rests on, as quantities."""
    for ref, mt in zip(refs, matches):
        q.add(f"phase({ref.name})", "score", mt["score"], None, "", "search-match figure of merit (0-1)")
        q.add(f"phase({ref.name})", "present", {"present": 1.0, "probable": 0.5}.get(mt["status"], 0.0), None, "",
              "1 present, 0.5 probable (not confirmed), 0 absent")
        # what the call rests on, as quantities (issue #25): position coverage and its chance probability,
        # and the whole-pattern test when the phase went through it
        q.add(f"phase({ref.name})", "coverage", mt["coverage"], None, "",
              "intensity fraction of its strong reflections matched by position")
        q.add(f"phase({ref.name})", "position_coverage", mt.get("pos_coverage", 0.0), None, "",
              "fraction of its strong reflections matched by position")
        q.add(f"phase({ref.name})", "p_chance", mt.get("p_chance", 1.0), None, "",
              "probability of as many position matches by chance")
        d = wp_dec.get(ref.name)
        if d is not None:
            q.add(f"phase({ref.name})", "wholepattern_p", d["p_value"], None, "",
                  "F-test p of the χ² drop when the phase is added")
            q.add(f"phase({ref.name})", "wholepattern_delta_chi2", d["delta_chi2"], None, "",
                  f"χ² drop for {d['dof']} parameters")
            q.add(f"phase({ref.name})", "n_own_reflections", float(d["n_own"]), None, "",
                  "significant reflections resolved from other phases")


def _size_and_amorphous(x, y, fp, peaks, present, ka2, powder, params, q, warnings_):
    """Crystallite size of the primary phase (with its instrumental statement) and the amorphous hint.
    -> (primary phase name, instrument note, hump centre)"""
    # crystallite size: only for a powder pattern with an identified phase, and always with a statement
    # about instrumental broadening (corrected by Caglioti/constant width, or not -> a lower bound)
    prim = present[0][0].name if present and present[0][1]["status"] == "present" else None
    if params.caglioti is not None:
        inst_note = "instrumental broadening removed (Caglioti U, V, W given)"
    elif params.instrument_fwhm_deg is not None:
        inst_note = f"instrumental broadening removed (constant FWHM {params.instrument_fwhm_deg} deg)"
    else:
        inst_note = "NOT corrected for instrumental broadening: a lower bound"
    sz = np.array([p["size_nm"] for p in peaks if prim is not None and p["phase"] == prim and not p["ambiguous"]])
    sz = sz[np.isfinite(sz)]
    if not powder:
        pass
    elif prim is None:
        if peaks:
            warnings_.append("crystallite size not reported: no phase identified")
    elif sz.size:
        q.add(None, "crystallite_size_nm", float(np.mean(sz)), float(np.std(sz, ddof=1) / np.sqrt(sz.size))
              if sz.size > 1 else None, "nm",
              f"Scherrer K={params.scherrer_k}, mean over {sz.size} {prim} reflections; "
              f"{inst_note}")
        if params.caglioti is None and params.instrument_fwhm_deg is None:
            warnings_.append("crystallite size without instrumental-broadening correction (a lower bound); "
                             "give caglioti or instrument_fwhm_deg from a standard (sp.xrd.calibrate; CLI "
                             "--caglioti U,V,W or --instrument-fwhm DEG)")
    cryst_area = float(sum(p["area"] * (1 + (ka2[2] if ka2 else 0)) for p in peaks))
    frac, hump_area, hump_c = amorphous_hint(x, y, fp["background"], cryst_area)
    if powder:
        q.add(None, "amorphous_fraction", frac, None, "", "broad-hump area / (hump + Bragg peak area); a hint")
    if not powder:
        pass
    elif not peaks:
        warnings_.append("no Bragg peaks found" + (f"; broad hump at {hump_c:.1f}° suggests an amorphous sample"
                                                   if hump_c is not None else ""))
    elif frac > 0.5:
        warnings_.append(f"amorphous hint: {frac:.0%} of the scattered intensity is in a broad hump")
    return prim, inst_note, hump_c


def _tables(peaks, refs, matches, lattices, wp_dec, fp):
    """The peaks, phases and Kβ tables."""
    import pandas as pd

    cols = ["two_theta_deg", "two_theta_stderr", "d_nm", "d_nm_stderr", "fwhm_deg", "fwhm_stderr", "area",
            "area_stderr", "eta", "phase", "hkl", "h", "k", "l", "calc_two_theta_deg", "texture_ratio", "size_nm",
            "ambiguous", "overlap", "height", "noise", "height_sigma", "area_sigma"]
    for pk in peaks:
        hkl3 = pk.get("hkl_tuple") or (None, None, None)
        pk.update(h=hkl3[0], k=hkl3[1], l=hkl3[2])
    peak_df = pd.DataFrame([{c: pk.get(c) for c in cols} for pk in peaks], columns=cols)
    for c in ("h", "k", "l"):
        peak_df[c] = peak_df[c].astype("Int64")  # Miller indices; <NA> for an unindexed peak
    phase_rows = []
    for ref, mt in zip(refs, matches):
        lat = lattices.get(ref.name)
        row = {"name": ref.name, "space_group": ref.space_group, "system": ref.system, "score": mt["score"],
               "present": mt["present"], "status": mt["status"], "texture": bool(mt.get("texture")),
               "reasons": "; ".join(mt.get("reasons", [])), "coverage": mt["coverage"],
               "position_coverage": mt.get("pos_coverage", 0.0), "intensity_spread": mt.get("intensity_spread"),
               "explained": mt["explained"],
               "n_matched": mt["n_matched"], "n_strong": mt["n_strong"], "n_shared": mt.get("n_shared", 0),
               "n_undetectable": mt.get("n_undetectable", 0), "p_chance": mt.get("p_chance"),
               "strain": mt["strain"],
               "source": ref.source}
        d = wp_dec.get(ref.name) or {}
        row.update(wp_status=d.get("status"), wp_p_value=d.get("p_value"), wp_delta_chi2=d.get("delta_chi2"),
                   wp_n_own=d.get("n_own"), wp_frac_own=d.get("frac_own"))
        for k in ("a", "b", "c"):
            row[f"{k}_nm"] = lat[f"{k}_nm"] if lat else np.nan
            row[f"{k}_nm_stderr"] = lat[f"{k}_nm_stderr"] if lat else np.nan
        row["volume_nm3"] = lat["volume_nm3"] if lat else np.nan
        full = ref.full_cell(mt["cell"])  # the searched cell: start of the refinement
        for k in ("a", "b", "c"):
            row[f"cell_{k}_nm"] = full[k] / 10
        for k, v in (mt.get("axis_strain") or {}).items():
            row[f"strain_{k}"] = v
        phase_rows.append(row)
    phase_df = pd.DataFrame(phase_rows)
    kb_cols = ["two_theta_deg", "two_theta_stderr", "fwhm_deg", "area", "area_stderr", "parent_two_theta_deg",
               "area_ratio"]
    kbeta_df = pd.DataFrame([{c: p.get(c) for c in kb_cols} for p in fp.get("kbeta") or []], columns=kb_cols)
    return peak_df, phase_df, kbeta_df


def analyse(m, params) -> Result:
    """Analyse one powder pattern.

    Parameters
    ----------
    m : xarray.DataArray
        XRD pattern (dim ``two_theta``, deg).
    params : AnalyseParams
        The validated parameters (:class:`~.processors.AnalyseParams`), validated once by the processor.

    Returns
    -------
    Result
        Quantities (see the module docstring), ``tables["peaks"]`` (one row per fitted reflection, with its
        phase, hkl label and Miller indices ``h, k, l``) and ``tables["phases"]`` (one row per candidate:
        decision, scores, searched cell ``cell_*_nm`` and refined cell ``*_nm``), from which
        :func:`specproc.techniques.xrd.refine_lattice` works.
    """
    from .phases import identify
    from .references import BUILTIN, get_references

    pat = _prepare(m, params)
    src, x, y, sig, l1, ka2, acq, powder = pat.src, pat.x, pat.y, pat.sig, pat.l1, pat.ka2, pat.acq, pat.powder
    kind, wl_src, warnings_, background_window_deg = pat.kind, pat.wl_src, pat.warnings, pat.background_window_deg
    warnings_ += wavelength_warnings(m, params.wavelength_nm, params.kalpha2)
    names = list(BUILTIN) if params.phases is None else list(params.phases)
    unknown = [n for n in names if n not in BUILTIN]
    if unknown:
        raise ParameterError(f"unknown reference phase(s) {unknown}; built-in: {', '.join(BUILTIN)} "
                             f"(add others with references=[file.cif])", src)
    refs = get_references(names, params.references)
    from .peaks import kbeta_for

    kb = acq.get("kbeta_nm") if (acq.get("wavelength_nm") and abs(acq["wavelength_nm"] - l1) < 1e-6) else None
    fp = fit_peaks_array(x, y, wavelength_nm=l1, kalpha2=ka2, shape=params.shape,
                         prominence_sigma=params.prominence_sigma, background_window_deg=background_window_deg,
                         zero_shift_deg=params.zero_shift_deg, source=src,
                         log_background=not powder, sigma=sig, kbeta_nm=kb or kbeta_for(l1))
    peaks = fp["peaks"]
    warnings_ += fp["errors"] + fp["warnings"]
    warnings_ += significance_warnings(fp)
    if fp["skipped"]:
        warnings_.append("reflections not fitted (cut by the scan ends or failed): " +
                         ", ".join(f"{c:.2f}°" for c in fp["skipped"]))
    tt_range = (float(x[0]), float(x[-1]))
    matches = identify(peaks if powder else [], refs, l1, tt_range, tolerance_deg=params.tolerance_deg,
                       max_strain=params.max_strain, min_rel_intensity=params.min_rel_intensity,
                       threshold=params.threshold, min_area=detection_area(peaks, fp["noise"], params.prominence_sigma))
    wp, wp_dec = None, {}
    if powder and params.whole_pattern:
        wp, wp_dec = _whole_pattern(x, y, sig, fp, refs, matches, l1, ka2, params, src, warnings_)
    present, idx = _settle_phases(peaks, refs, matches, wp_dec, l1, tt_range, params, warnings_)
    _annotate_peaks(peaks, idx, present, l1, tt_range, params)
    q, lattices = _phase_quantities(present, peaks, wp, l1, params, src, warnings_)
    _decision_quantities(refs, matches, wp_dec, q)
    prim, inst_note, hump_c = _size_and_amorphous(x, y, fp, peaks, present, ka2, powder, params, q, warnings_)
    peak_df, phase_df, kbeta_df = _tables(peaks, refs, matches, lattices, wp_dec, fp)

    w = 1.0 / np.clip(y, 1.0, None)
    rwp = float(np.sqrt(np.sum(w * (y - fp["fit"]) ** 2) / np.sum(w * y ** 2)))
    from .report import pattern_plot

    plot = pattern_plot(x, y, fp, wp, present, l1, tt_range, f"XRD — {m.attrs.get('sample') or src}")
    wp_stats = {}
    if wp is not None:
        wp_stats = {"wp_rwp": wp.rwp, "wp_rexp": wp.rexp, "wp_chi2_red": wp.gof2, "wp_seconds": wp.seconds,
                    "wp_converged": wp.converged}
        q.add("wholepattern", "rwp", wp.rwp, None, "", "weighted-profile R of the whole-pattern fit")
        q.add("wholepattern", "rexp", wp.rexp, None, "", "expected R (counting statistics)")
        q.add("wholepattern", "chi2_red", wp.gof2, None, "", "reduced χ² = (Rwp/Rexp)²")
        q.add("wholepattern", "zero_shift_deg", wp.params["zero_deg"], _se(wp.params["zero_deg_stderr"]), "deg",
              "2θ zero error refined on the whole pattern (after zero_shift_deg)")
    lat0 = lattices.get(prim) if prim else None
    return Result(
        processor=PROCESSOR, technique="xrd", sample=str(m.attrs.get("sample") or ""), quantities=q,
        tables={"peaks": peak_df, "phases": phase_df, "kbeta": kbeta_df}, main_table="peaks", plots=[plot],
        params=params.model_dump(mode="json"), inputs=[dict(m.attrs.get("provenance", {}))],
        stats={"n_peaks": len(peaks), "n_candidates": fp["n_candidates"], "rwp": rwp, "noise": fp["noise"],
               "success": bool(all(p.get("success", True) for p in peaks)), **wp_stats},
        warnings=warnings_,
        meta={"wavelength_nm": l1, "wavelength_source": wl_src, "kalpha2": list(ka2) if ka2 else None,
              "sample": m.attrs.get("sample"), "primary_phase": prim,
              "phases_present": [r.name for r, mt in present if mt["status"] == "present"],
              "phases_probable": [r.name for r, mt in present if mt["status"] == "probable"],
              "scan_type": kind, "instrument_broadening": inst_note, "hump_center_deg": hump_c,
              "peak_significance": significance_meta(fp, sig is not None),
              "whole_pattern": _wp_meta(wp, wp_dec),
              "lattice_system": lat0["system"] if lat0 else None,
              "references": [r.describe() for r in refs]})
