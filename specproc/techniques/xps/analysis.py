"""``xps.fit_profile``: charge referencing, one template on every level, atomic %, depth profile, thickness.

Quantities (names the evidence engine can use)
----------------------------------------------
``charge_shift_eV``; ``species(X).present`` (1.0 / 0.0 at the stated detection limit),
``species(X).max_atomic_percent``, ``species(X).thickness_nm`` (or ``_s`` of etch time without a sputter rate);
``interphase.thickness_nm`` (sum of the ``interphase`` species); ``<region>/<component>.be_eV`` and
``.fwhm_eV`` (at the level where the component is strongest); ``sputter_rate_nm_s``;
``survey(X).atomic_percent`` (survey regions, quantified apart).

Every region gives numbers where it can: a region without a line label is identified by position
(stated), a survey by its features (:mod:`.survey`), a region that cannot be quantified is still fitted
and says what is missing (``tables["regions"]``, warnings). Template components get the toolkit's
after-fit checks at every level (not detected -> NaN, left out of that level's at %); automatic ones its
significance test; chemistry names need consistent evidence (:mod:`.species`); counts are compared as
count rates (dwell x scans).
"""
from __future__ import annotations

import numpy as np

from ...core.errors import ParameterError, ProcessingError
from ...core.result import Quantities, Result
from . import quantify as Q
from . import backgrounds as bgs
from .auto import fit_automatic, select_region
from .fitting import (charge_reference, check_xps, fit_levels, parse_charge_ref, poisson_weights, region_data,
                      region_picks, regions_of)
from .model import parse_template
from .rsf import SOURCE as RSF_SOURCE, load_rsf_table, rsf_for


def _f(v):
    return None if v is None or not np.isfinite(v) else float(v)


class _Profile:
    """The state one :func:`fit_profile` call builds stage by stage (the measurement, what each region
    holds, the charge shift, the fits, the atomic % sets, the depth axis); ``warnings`` collects the doubts."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


def fit_profile(m, model, *, charge_ref, charge_shift, background, rsf, sputter_rate, sputter_rate_stderr,
                detection_limit, interphase, regions, transmission_exponent, escape_depth_exponent, max_shift, errors,
                n_mc, seed, lines, params_record=None) -> Result:
    """Fit every region of an XPS measurement (every etch level) and quantify.

    Called by the ``xps.fit_profile`` processor (``sp.xps.fit_profile``, CLI, YAML) with every field of
    :class:`~specproc.techniques.xps.processors.FitProfileParams`, validated: its defaults are the only
    ones (none are written again here).

    Parameters
    ----------
    m : xarray.DataArray
        XPS measurement from :class:`~specproc.io.vamas.VamasReader` (dims ``level``, ``channel``).
    model : dict, optional
        Template ``{region: [component, ...]}`` (see :mod:`specproc.techniques.xps.model`); regions without
        a template get their components from the toolkit's model selection (:mod:`.auto`).
    charge_ref : str or None
        ``"REGION[:COMPONENT]=BE"`` (by default adventitious carbon, C 1s); None disables. The
        region may also be one identified as that line, or a survey's feature of it.
    charge_shift : float, optional
        Explicit shift (eV) added to every binding energy (overrides ``charge_ref``).
    background : str
        One of :data:`~specproc.techniques.xps.backgrounds.CHOICES`.
    rsf : dict or path, optional
        User RSFs ``{line or region: value}`` or a CSV/text table; missing lines come from the built-in
        Scofield table.
    sputter_rate, sputter_rate_stderr : float, optional
        nm/s (default: the file's value); its error enters the thickness error.
    detection_limit : float
        At % above which a (significant) species counts as present.
    interphase : list of str, optional
        Species whose summed at % defines the interphase (``interphase.thickness_nm``).
    regions : list of str, optional
        Regions to fit and quantify (default: the template's regions, else every region of the file).
    transmission_exponent, escape_depth_exponent : float, optional
        ``T ∝ KE^t`` and ``λ ∝ KE^e`` corrections of the intensities (none when not given).
    errors : {"covariance", "montecarlo"}
        Montecarlo refits every level ``n_mc`` times with resampled residuals (batch engine).
    lines : dict, optional
        ``{region: "Si 2p"}``: the core line of a region whose name is not one (unlabelled blocks);
        default: identified by position (:func:`~specproc.techniques.xps.lines.identify_region`), stated.
    """
    P = _setup(m, model, regions, lines, rsf)
    _classify_regions(P, charge_shift)
    _charge_reference(P, charge_ref, charge_shift, background, max_shift)
    _analyse_surveys(P)
    _fit_regions(P, background, errors, n_mc, seed)
    _atomic_sets(P, transmission_exponent, escape_depth_exponent)
    _depth_axis(P, sputter_rate, sputter_rate_stderr)
    _species_quantities(P, detection_limit, interphase, seed, charge_shift, sputter_rate_stderr)
    tables, all_fits = _tables(P)
    return _result(P, tables, all_fits, background=background, detection_limit=detection_limit,
                   interphase=interphase, errors=errors, transmission_exponent=transmission_exponent,
                   escape_depth_exponent=escape_depth_exponent, params_record=params_record)


def _setup(m, model, regions, lines, rsf) -> _Profile:
    """Validated inputs: the measurement, the template, the regions to fit, the user's lines and RSFs."""
    from .rsf import normalise_line

    src = m.attrs.get("provenance", {}).get("source")
    m = check_xps(m, src)
    template = parse_template(model)
    file_regions = regions_of(m)
    for r in template:
        if r not in file_regions:
            raise ParameterError(f"model region {r!r} is not in the file (regions: {file_regions})", src)
    if regions is None:
        regions = list(template) if template else list(file_regions)
    for r in regions:
        if r not in file_regions:
            raise ParameterError(f"region {r!r} is not in the file (regions: {file_regions})", src)
    user_lines = {}
    for r, ln in (lines or {}).items():
        if r not in file_regions:
            raise ParameterError(f"lines: region {r!r} is not in the file (regions: {file_regions})", src)
        if normalise_line(str(ln)) is None:
            raise ParameterError(f"lines: {ln!r} is not a core line such as 'Si 2p'", src)
        user_lines[r] = normalise_line(str(ln))
    return _Profile(m=m, src=src, acq=m.attrs.get("acquisition", {}), template=template, file_regions=file_regions,
                    regions=regions, user_lines=user_lines, warnings=[],
                    user_rsf=load_rsf_table(rsf) if isinstance(rsf, str) else dict(rsf or {}),
                    nlev=m.sizes["level"], rdata={reg: region_data(m, reg) for reg in regions})


def _classify_regions(P: _Profile, charge_shift) -> None:
    """What each region holds: nothing, a survey, or a core line (named, given, or identified by position)."""
    from .lines import identify_region
    from .survey import is_survey

    P.kind, P.line_of, P.not_quantified = {}, {}, {}
    warnings = P.warnings
    shift0 = float(charge_shift) if charge_shift is not None else 0.0
    for reg in P.regions:
        x, Y = P.rdata[reg]
        if not np.any(Y):
            P.kind[reg] = "empty"
            P.not_quantified[reg] = "no counts"
            warnings.append(f"{reg}: no counts (every value is 0): nothing to fit or quantify")
            continue
        if reg not in P.template and reg not in P.user_lines and is_survey(reg, x):
            P.kind[reg] = "survey"
            continue
        P.kind[reg] = "line"
        P.line_of[reg] = P.user_lines.get(reg) or _line_name(reg)
        if P.line_of[reg] is None:
            picks = region_picks(x + shift0, Y)
            if not picks:
                why = "no peak above 8 noise SDs"
                ln = None
            else:
                S = (Y - bgs.shirley(x, Y)).sum(axis=0)
                ln, why = identify_region(x, S, shift0, fwhm=max(picks, key=lambda c: c["height"])["fwhm"])
            P.line_of[reg] = ln
            if ln is not None:
                warnings.append(f"{reg}: no line label in the file; identified as {ln} by position ({why}); "
                                f"give lines={{{reg!r}: LINE}} if that is wrong")
            else:
                P.not_quantified[reg] = f"no line label, and {why}"
                warnings.append(f"{reg}: no line label in the file and {why}: fitted, not quantified (give "
                                f"lines={{{reg!r}: LINE}} or rsf={{{reg!r}: value}})")
    P.survey_regions = [r for r in P.regions if P.kind[r] == "survey"]


def _charge_reference(P: _Profile, charge_ref, charge_shift, background, max_shift) -> None:
    """One charge shift for every region and level: given, from a reference region, or from a survey."""
    from .rsf import normalise_line
    from .survey import survey_shift

    warnings, kind = P.warnings, P.kind
    P.cref = None
    P.shift_known = charge_shift is not None
    if charge_shift is not None:
        P.shift, P.shift_se = float(charge_shift), None
        P.cref_note = f"given shift {P.shift:+.3f} eV"
        return
    ref = parse_charge_ref(charge_ref)
    P.shift, P.shift_se = 0.0, None
    if ref is None:
        P.cref_note = "no charge correction"
        return
    ref_line = normalise_line(ref[0]) or ref[0]
    ref_region = ref[0] if ref[0] in P.file_regions and kind.get(ref[0], "line") == "line" else None
    if ref_region is None:
        hits = [r for r in P.regions if kind[r] == "line" and P.line_of.get(r) == ref_line]
        ref_region = hits[0] if len(hits) == 1 else None
    if ref_region is not None:
        tmpl = dict(P.template)
        if ref_region not in tmpl and ref[0] in tmpl:
            tmpl[ref_region] = tmpl[ref[0]]
        cref = charge_reference(P.m, (ref_region, ref[1], ref[2]), tmpl, background=background, max_shift=max_shift)
        P.cref = cref
        P.shift, P.shift_se = cref["shift"], cref["stderr"]
        P.shift_known = cref["n_used"] > 0
        warnings += cref["warnings"]
        named = cref["region"] if ref_region == ref[0] else f"{ref_region} (identified as {ref[0]})"
        P.cref_note = (f"{named} {cref['component']} = {cref['reference_eV']} eV "
                       f"(measured {cref.get('measured_eV', float('nan')):.3f} eV at {cref['n_used']} levels)")
    elif P.survey_regions:
        x, Y = P.rdata[P.survey_regions[0]]
        s_, why = survey_shift(x, Y, ref[2], max_shift)
        if s_ is not None:
            P.shift, P.shift_known = float(s_), True
            P.cref_note = f"{P.survey_regions[0]}: {ref[0]} = {ref[2]:g} eV ({why})"
            warnings.append(f"charge reference from the survey: {ref[0]} = {ref[2]:g} eV at {why}: shift "
                            f"{P.shift:+.2f} eV (no {ref[0]} region; a survey position, ~0.5 eV)")
        else:
            P.cref_note = f"reference region {ref[0]} not in the file; {why}"
            warnings.append(f"charge reference region {ref[0]!r} is not in the file and {why}: no charge "
                            "correction applied")
    else:
        P.cref_note = f"reference region {ref[0]} not in the file"
        warnings.append(f"charge reference region {ref[0]!r} is not in the file: no charge correction applied")


def _analyse_surveys(P: _Profile) -> None:
    """Surveys: features, elements with consistent evidence, one line per element; the file's elements."""
    from .lines import element
    from .survey import analyse_survey

    P.surveys = {}
    for reg in P.survey_regions:
        x, Y = P.rdata[reg]
        sres = analyse_survey(reg, x, Y, shift=P.shift, shift_known=P.shift_known,
                              source_eV=P.acq.get("source_energy_eV"),
                              shift_note=P.cref_note if P.shift_known else "", weights=poisson_weights(P.m, Y),
                              rsf=P.user_rsf)
        P.warnings += sres.warnings
        P.surveys[reg] = sres
    P.elements = ({element(ln) for ln in P.line_of.values() if ln}
                  | {el for s_ in P.surveys.values() for el in s_.elements})


def _fit_regions(P: _Profile, background, errors, n_mc, seed) -> None:
    """One template on every level per region: the user's, or the automatic selection's (:mod:`.auto`).

    The selection runs on every automatic region first: its positions, with the templates', are the
    file's evidence for chemistry names (:mod:`.species`)."""
    m, warnings, not_quantified = P.m, P.warnings, P.not_quantified
    line_regions = [reg for reg in P.regions if P.kind[reg] == "line"]
    selections, evidence = {}, {}
    for reg in line_regions:
        x, Y = P.rdata[reg]
        ln = P.line_of[reg]
        if reg in P.template:
            found = [c.center for c in P.template[reg]]
        else:
            selections[reg] = select_region(reg, x + P.shift, Y, line=ln, elements=P.elements, background=background,
                                            counts=m.attrs.get("units") == "counts", where=P.src)
            found = [float(c["center"]) for c in selections[reg].picks]
        if ln:
            evidence.setdefault(ln, []).extend(found)
    P.fits = {}
    for reg in line_regions:
        x, Y = P.rdata[reg]
        xc = x + P.shift
        ln = P.line_of[reg]
        w = poisson_weights(m, Y)
        if reg in P.template:
            comps = P.template[reg]
            sf = fit_levels(reg, comps, xc, Y, background=background, weights=w, line=ln)
        else:
            sf, comps, ws = fit_automatic(reg, xc, Y, selections[reg], line=ln, elements=P.elements,
                                          evidence=evidence, background=background, weights=w)
            warnings += ws
            if sf is None:
                not_quantified.setdefault(reg, "no peak found" if not comps else "no component detected")
                continue
        warnings += sf.warnings
        if errors == "montecarlo":
            _montecarlo(sf, comps, background, n_mc, seed, w, given=reg in P.template, line=ln)
        P.fits[reg] = sf
    if not P.fits and not any(s_.fits for s_ in P.surveys.values()) and \
            not any(s_.features for s_ in P.surveys.values()):
        raise ProcessingError("no region could be fitted: " + "; ".join(
            f"{r}: {why}" for r, why in not_quantified.items()) if not_quantified else
            "no region could be fitted (see the region names and peaks)", P.src)


def _atomic_sets(P: _Profile, transmission_exponent, escape_depth_exponent) -> None:
    """Which components count in the atomic %: regions (one per line) and each survey apart; at % per set."""
    from .lines import element

    warnings, not_quantified, user_rsf, nlev = P.warnings, P.not_quantified, P.user_rsf, P.nlev

    def rsf_of(reg, ln):
        return float(user_rsf[reg]) if reg in user_rsf else rsf_for(ln or reg, user_rsf)

    entries = []      # dicts: region, name, sf, rsf, line, set
    seen_lines: dict[str, str] = {}
    for reg, sf in P.fits.items():
        ln = P.line_of.get(reg)
        r = rsf_of(reg, ln)
        if r is None:
            if reg not in not_quantified:   # (an unlabelled region's warning is given already)
                not_quantified[reg] = f"no relative sensitivity factor for {ln}" if ln else "no core line"
                warnings.append(f"{reg}: {not_quantified[reg]}: fitted, not quantified (give "
                                f"rsf={{{(ln or reg)!r}: value}})")
            continue
        if ln and ln in seen_lines:
            not_quantified[reg] = f"a second {ln} region (after {seen_lines[ln]})"
            warnings.append(f"{reg}: a second {ln} region (after {seen_lines[ln]}): fitted, not added to the "
                            "atomic % (choose one with regions=[...])")
            continue
        if ln:
            seen_lines[ln] = reg
        for name, c in sf.comps.items():
            if c["quantify"]:
                entries.append({"region": reg, "name": name, "sf": sf, "rsf": r, "line": ln, "set": "regions"})
    for reg, s_ in P.surveys.items():
        for ln, sf in s_.fits.items():
            entries.append({"region": reg, "name": element(ln), "sf": sf, "rsf": rsf_for(ln, user_rsf), "line": ln,
                            "set": f"survey {reg}"})
    counts_time = _acquisition_times(P.m, [e["region"] for e in entries], warnings)
    for e in entries:
        e["time"] = counts_time.get(e["region"], 1.0)
    sets = list(dict.fromkeys(e["set"] for e in entries))
    primary = "regions" if "regions" in sets else (sets[0] if sets else None)
    if primary is not None and primary != "regions":
        warnings.append(f"atomic % from the survey only ({primary.split(' ', 1)[1]}): a low-resolution estimate, "
                        "one line per element")
    at = np.full((nlev, len(entries)), np.nan)
    at_se = np.full((nlev, len(entries)), np.nan)
    for st in sets:
        idx = [i for i, e in enumerate(entries) if e["set"] == st]
        a, ae = _atomic([entries[i] for i in idx], nlev, P.acq, transmission_exponent, escape_depth_exponent, P.src)
        at[:, idx], at_se[:, idx] = a, ae
    P.entries, P.primary, P.at, P.at_se = entries, primary, at, at_se
    P.A = np.column_stack([e["sf"].comps[e["name"]]["area"] for e in entries]) if entries else np.zeros((nlev, 0))
    P.Ase = np.column_stack([e["sf"].comps[e["name"]]["area_stderr"] for e in entries]) if entries else P.A


def _depth_axis(P: _Profile, sputter_rate, sputter_rate_stderr) -> None:
    """Etch times, depth (sputter rate given or from the file) and the profile's axis and unit."""
    m, nlev = P.m, P.nlev
    etch = np.asarray(m.coords["etch_time"].values, float) if "etch_time" in m.coords else np.full(nlev, np.nan)
    rate = sputter_rate if sputter_rate is not None else P.acq.get("sputter_rate_nm_s")
    P.rate_src = "given" if sputter_rate is not None else ("file" if rate is not None else None)
    depth = etch * rate if rate is not None else np.full(nlev, np.nan)
    have_time = np.all(np.isfinite(etch))
    if nlev > 1 and not have_time:
        P.warnings.append("no etch times in the file: profile against level number; no depth or thickness")
    elif nlev > 1 and rate is None:
        P.warnings.append("no sputter rate (file or sputter_rate=): depth not computed; thickness in etch time (s)")
    P.zaxis = depth if rate is not None and have_time else (etch if have_time else None)
    P.zunit = "nm" if rate is not None and have_time else "s"
    P.rate_rel = (sputter_rate_stderr / rate) if (sputter_rate_stderr and rate) else 0.0
    P.etch, P.depth, P.rate = etch, depth, rate


def _species_quantities(P: _Profile, detection_limit, interphase, seed, charge_shift, sputter_rate_stderr) -> None:
    """Species of the primary set: presence at the detection limit, maximum at %, thickness; the
    interphase, charge shift and sputter rate quantities."""
    warnings, nlev, zaxis, zunit = P.warnings, P.nlev, P.zaxis, P.zunit
    at, at_se, A, Ase = P.at, P.at_se, P.A, P.Ase
    rows_c = [(e["region"], e["name"]) for e in P.entries]
    prim = [i for i, e in enumerate(P.entries) if e["set"] == P.primary]
    species = list(dict.fromkeys(rows_c[i][1] for i in prim))
    quantities = Quantities()
    sp_rows = []
    sp_at = {}
    for sp in species:
        idx = [i for i in prim if rows_c[i][1] == sp]
        prof, prof_se, area, area_se = _species_profile(at[:, idx], at_se[:, idx], A[:, idx], Ase[:, idx])
        present, amax, amax_se, imax = Q.presence(prof, prof_se, area, area_se, detection_limit)
        sp_at[sp] = (prof, prof_se)
        th = th_se = None
        note = ""
        if nlev > 2 and zaxis is not None and present:
            # a level where the species is not detected counts as 0 for the 50 % crossing
            th, th_se, note = Q.thickness(zaxis, np.nan_to_num(prof), prof_se, rate_rel_err=P.rate_rel, seed=seed)
            if note and (th is not None or sp in (interphase or [])):  # a substrate never falls: no note
                warnings.append(f"{sp}: {note}")
        detected = bool(np.any(np.isfinite(prof)))
        quantities.add(f"species({sp})", "present",
            1.0 if present else 0.0, None, "", f"max at % {'>=' if present else '<'} {detection_limit}"
            if detected else "not detected at any level")
        quantities.add(f"species({sp})", "max_atomic_percent",
            amax, amax_se, "%", "" if present else (f"below detection limit {detection_limit:g} at %" if detected
                                                     else f"not detected (detection limit {detection_limit:g} at %)"))
        # the limit the presence call rests on, as a quantity of its own (claims and explain read it)
        quantities.add(f"species({sp})", "detection_limit_percent",
            float(detection_limit), None, "%", "at % at or above which a significant species counts as present")
        if th is not None:
            quantities.add(f"species({sp})", f"thickness_{zunit}", th, th_se, zunit,
                           "depth where at % falls to 50 % of its maximum")
        sp_rows.append({"species": sp, "present": present, "max_atomic_percent": amax,
                        "max_atomic_percent_stderr": amax_se, "level_of_max": imax,
                        f"thickness_{zunit}": th, f"thickness_{zunit}_stderr": th_se,
                        "detection_limit_at_percent": detection_limit, "detected": detected,
                        "verdict": _verdict(present, detected, amax, amax_se, detection_limit),
                        "basis": P.primary})
    for i, e in enumerate(P.entries):  # survey at % (apart from the regions')
        if e["set"] != "regions":
            col = at[:, i]
            lv = int(np.nanargmax(col)) if np.any(np.isfinite(col)) else 0
            quantities.add(f"survey({e['name']})", "atomic_percent",
                float(col[lv]), _f(at_se[lv, i]), "%", f"{e['region']}, from {e['line']}, level {lv}")
    if interphase:
        _interphase(P, quantities, sp_at, species, interphase, detection_limit, seed)
    if P.shift_se is not None or charge_shift is not None or P.cref is not None or P.shift_known:
        quantities.add(None, "charge_shift_eV", P.shift, P.shift_se, "eV", P.cref_note)
    if P.rate is not None:
        quantities.add(None, "sputter_rate_nm_s", float(P.rate), sputter_rate_stderr, "nm/s", P.rate_src or "")
    P.quantities, P.sp_rows, P.sp_at, P.species = quantities, sp_rows, sp_at, species


def _interphase(P: _Profile, quantities, sp_at, species, interphase, detection_limit, seed) -> None:
    """``interphase.thickness_<unit>``: where the summed at % of the interphase species falls to 50 %."""
    missing = [s for s in interphase if s not in sp_at]
    if missing:
        raise ParameterError(f"interphase species {missing} are not components of the model (species: {species})",
                             P.src)
    prof = sum(np.nan_to_num(sp_at[s][0]) for s in interphase)
    prof_se = np.sqrt(sum(np.where(np.isfinite(sp_at[s][1]), sp_at[s][1], 0.0) ** 2 for s in interphase))
    any_present = any(quantities[f"species({s}).present"].value for s in interphase)
    if not any_present:
        P.warnings.append(f"interphase species {interphase} not present (detection limit {detection_limit} at %): "
                          "no interphase thickness")
    elif P.zaxis is None or P.nlev < 3:
        P.warnings.append("interphase thickness needs a depth profile with etch times")
    else:
        v, se, note = Q.thickness(P.zaxis, prof, prof_se, rate_rel_err=P.rate_rel, seed=seed)
        if note:
            P.warnings.append(f"interphase: {note}")
        if v is not None:
            quantities.add("interphase", f"thickness_{P.zunit}",
                v, se, P.zunit, f"depth where the at % of {' + '.join(interphase)} falls to 50 % of its maximum")


def _tables(P: _Profile):
    """The result's tables (species, components per level, profile, fits, regions, survey, charge
    reference) and the components' headline quantities; returns ``(tables, all_fits)``."""
    import pandas as pd

    nlev, etch, depth, at, at_se, entries = P.nlev, P.etch, P.depth, P.at, P.at_se, P.entries
    quantities = P.quantities
    all_fits = dict(P.fits)
    for reg, s_ in P.surveys.items():
        for ln, sf in s_.fits.items():
            all_fits[f"{reg} [{ln}]"] = sf
    col_of = {(e["region"], e["name"], id(e["sf"])): i for i, e in enumerate(entries)}
    comp_rows = []
    for key, sf in all_fits.items():
        reg = sf.region
        for name, c in sf.comps.items():
            k = col_of.get((reg, name, id(sf)))
            ln = sf.line or P.line_of.get(reg)
            for lv in range(nlev):
                comp_rows.append({
                    "level": lv, "etch_time_s": _f(etch[lv]), "depth_nm": _f(depth[lv]), "region": reg, "line": ln,
                    "name": name, "be_eV": _f(c["center"][lv]), "be_eV_stderr": _f(c["center_stderr"][lv]),
                    "fwhm_eV": _f(c["fwhm"][lv]), "fwhm_eV_stderr": _f(c["fwhm_stderr"][lv]),
                    "area": _f(c["area"][lv]), "area_stderr": _f(c["area_stderr"][lv]),
                    "atomic_percent": _f(at[lv, k]) if k is not None else None,
                    "atomic_percent_stderr": _f(at_se[lv, k]) if k is not None else None,
                    "at_bound": c["at_bound"][lv], "shape": c["shape"], "detected": bool(c["detected"][lv]),
                    "quantified": k is not None, "basis": entries[k]["set"] if k is not None else None})
                # component headline numbers at the level where each is strongest
        for name, c in sf.comps.items():
            a = np.where(np.isfinite(c["area"]), c["area"], -np.inf)
            qn = f"{key}/{name}" if key != reg else f"{reg}/{name}"
            if not np.any(c["detected"]):
                quantities.add(qn, "be_eV", float("nan"), None, "eV", "not detected at any level")
                continue
            lv = int(np.argmax(a))
            if not c["absent"][lv]:
                quantities.add(qn, "be_eV", float(c["center"][lv]), _f(c["center_stderr"][lv]), "eV",
                               f"level {lv}")
                quantities.add(qn, "fwhm_eV", float(c["fwhm"][lv]), _f(c["fwhm_stderr"][lv]), "eV")
    components = pd.DataFrame(comp_rows)
    fit_rows = [{"region": key, "level": lv, "r2": _f(sf.stats["r2"][lv]), "redchi": _f(sf.stats["redchi"][lv]),
                 "success": bool(sf.stats["success"][lv])} for key, sf in all_fits.items() for lv in range(nlev)]
    prof_df = pd.DataFrame({"level": np.arange(nlev), "etch_time_s": etch, "depth_nm": depth,
                            **{f"{sp} at%": P.sp_at[sp][0] for sp in P.species}})
    region_rows = [{"region": reg, "kind": P.kind[reg], "line": P.line_of.get(reg), "fitted": reg in P.fits or (
        reg in P.surveys and bool(P.surveys[reg].fits)), "quantified": reg not in P.not_quantified and
        P.kind[reg] != "empty", "reason": P.not_quantified.get(reg)} for reg in P.regions]
    tables = {"species": pd.DataFrame(P.sp_rows), "components": components, "profile": prof_df,
              "fits": pd.DataFrame(fit_rows), "regions": pd.DataFrame(region_rows)}
    if P.surveys:
        tables["survey"] = pd.DataFrame([r for s_ in P.surveys.values() for r in s_.features])
    if P.cref is not None:
        tables["charge_reference"] = pd.DataFrame(P.cref["levels"])
    return tables, all_fits


def _result(P: _Profile, tables, all_fits, *, background, detection_limit, interphase, errors, transmission_exponent,
            escape_depth_exponent, params_record) -> Result:
    """The profile as a Dataset, the plots, stats and meta: the :class:`Result`."""
    import xarray as xr

    m, nlev, species, sp_at, entries = P.m, P.nlev, P.species, P.sp_at, P.entries
    coords = {"level": np.arange(nlev), "species": species, "etch_time": ("level", P.etch, {"units": "s"}),
              "depth": ("level", P.depth, {"units": "nm"})}
    if species:
        data = xr.Dataset(
            {"atomic_percent": (("level", "species"), np.column_stack([sp_at[s][0] for s in species])),
             "atomic_percent_stderr": (("level", "species"), np.column_stack([sp_at[s][1] for s in species]))},
            coords=coords)
    else:
        data = xr.Dataset({"atomic_percent": (("level", "species"), np.zeros((nlev, 0))),
                           "atomic_percent_stderr": (("level", "species"), np.zeros((nlev, 0)))}, coords=coords)

    sample = m.attrs.get("sample") or ""
    plots = _plots(all_fits, sp_at, species, P.zaxis, P.zunit, P.etch, nlev, sample, interphase)
    for reg, s_ in P.surveys.items():
        plots.insert(0, _survey_plot(reg, P.rdata[reg], s_, sample))
    r2s = [sf.stats["r2"][sf.stats["signal"]] for sf in all_fits.values()]
    r2s = np.concatenate(r2s) if r2s else np.array([])
    stats = {"n_levels": nlev, "n_regions": len(P.fits),
             "n_quantified_regions": len({e["region"] for e in entries if e["set"] == "regions"}),
             "min_r2": _f(np.nanmin(r2s)) if r2s.size and np.any(np.isfinite(r2s)) else None,
             "n_failed_fits": int(sum((~sf.stats["success"].astype(bool)).sum() for sf in all_fits.values())),
             "methods": ",".join(sorted({sf.method for sf in all_fits.values()}))}
    user_rsf = P.user_rsf
    meta = {"charge_reference": P.cref_note, "charge_shift_eV": P.shift, "background": background,
            "rsf_source": RSF_SOURCE if not user_rsf else f"user table for {sorted(user_rsf)}; others {RSF_SOURCE}",
            "rsf": {e["region"] if e["set"] == "regions" else f"{e['region']} [{e['line']}]": e["rsf"]
                    for e in entries}, "detection_limit_at_percent": detection_limit,
            "sputter_rate_nm_s": P.rate, "sputter_rate_source": P.rate_src, "depth_unit": P.zunit,
            "interphase_species": list(interphase or []), "regions": list(P.fits), "errors": errors,
            "transmission_exponent": transmission_exponent, "escape_depth_exponent": escape_depth_exponent,
            "energy_axis_in_file": P.acq.get("energy_axis_in_file"), "lines": dict(P.line_of),
            "not_quantified": dict(P.not_quantified), "atomic_percent_basis": P.primary,
            "survey_elements": {reg: dict(s_.elements) for reg, s_ in P.surveys.items()}}
    return Result(processor="xps.fit_profile", technique="xps", sample=sample,
                  quantities=P.quantities, tables=tables, plots=plots, params=dict(params_record or {}),
                  inputs=[m.attrs.get("provenance", {})], stats=stats, warnings=_dedupe(P.warnings),
                  main_table="species", meta=meta, data=data, native=all_fits)


def _acquisition_times(m, regions, warnings) -> dict[str, float]:
    """Seconds of counting per channel (dwell x scans) of each region when the file holds summed counts.

    VAMAS ``d`` (pulse-counting) values are counts summed over the block's scans: regions recorded
    with different dwell times or scan numbers (the Omicron file: C 1s 100 scans, Si 2p 25) compare
    only as count rates. Files in counts/s need nothing. Returns ``{region: seconds}`` (1.0 when not
    needed); a region without a dwell time or scan number, among regions that differ, is a warning.
    """
    regs = list(dict.fromkeys(regions))
    if m.attrs.get("units") != "counts" or len(regs) < 2:
        return {}
    info = {r["name"]: r for r in (m.attrs.get("acquisition", {}).get("regions") or [])}
    t = {}
    for reg in regs:
        r = info.get(reg, {})
        dwell, scans = r.get("dwell_s"), r.get("n_scans")
        try:
            v = float(dwell) * float(scans)
        except (TypeError, ValueError):
            v = float("nan")
        t[reg] = v if np.isfinite(v) and v > 0 else None
    known = {v for v in t.values() if v is not None}
    if len(known) <= 1 and None not in t.values():
        return {}
    if None in t.values():
        missing = [r for r, v in t.items() if v is None]
        warnings.append(f"counts of {missing} have no dwell time x scan number in the file while other regions "
                        "differ in theirs: their atomic % assume the same counting time (not normalised)")
    ref = max(known) if known else 1.0
    warnings.append("counts normalised to count rates for the atomic % (dwell x scans per region: "
                    + ", ".join(f"{r} {v:g} s" for r, v in t.items() if v is not None) + ")")
    return {r: (v / ref if v is not None else 1.0) for r, v in t.items()}


def _line_name(region: str) -> str | None:
    """The core line a region name states (``"C 1s"``, ``"N1s"``, ``"C 1s (block 5)"``), else None."""
    from .rsf import normalise_line

    base = region.split(" (block ")[0].split(" #")[0]
    try:
        return normalise_line(base)
    except (AttributeError, IndexError):
        return None


def _species_profile(at, at_se, A, Ase):
    """A species' at % (levels,) summed over its components; NaN where none of them is detected."""
    det = np.isfinite(at)
    prof = np.where(det.any(axis=1), np.nansum(at, axis=1), np.nan)
    prof_se = np.sqrt(np.nansum(np.where(det, at_se, 0.0) ** 2, axis=1))
    prof_se = np.where(np.all(np.isfinite(at_se) | ~det, axis=1) & det.any(axis=1), prof_se, np.nan)
    area = np.where(det.any(axis=1), np.nansum(A, axis=1), np.nan)
    area_se = np.sqrt(np.nansum(np.where(np.isfinite(A), Ase, 0.0) ** 2, axis=1))
    area_se = np.where(np.all(np.isfinite(Ase) | ~np.isfinite(A), axis=1) & det.any(axis=1), area_se, np.nan)
    return prof, prof_se, area, area_se


def _atomic(entries, nlev, acq, transmission_exponent, escape_depth_exponent, src):
    """At % and errors of one set of components (full area covariance within each fit, fits independent);
    a component not detected at a level is left out there (NaN)."""
    k = len(entries)
    if k == 0:
        return np.zeros((nlev, 0)), np.zeros((nlev, 0))
    src_e = acq.get("source_energy_eV")
    wf = acq.get("work_function_eV") or 0.0
    factors = []
    for e in entries:
        corr = 1.0
        if transmission_exponent is not None or escape_depth_exponent is not None:
            if src_e is None:
                raise ParameterError("transmission / escape-depth corrections need the source energy", src)
            ke = src_e - float(np.nanmedian(e["sf"].comps[e["name"]]["center"])) - wf
            corr = ke ** ((transmission_exponent or 0.0) + (escape_depth_exponent or 0.0))
        factors.append(e["rsf"] * corr * e.get("time", 1.0))
    A = np.column_stack([e["sf"].comps[e["name"]]["area"] for e in entries])
    Ase = np.column_stack([e["sf"].comps[e["name"]]["area_stderr"] for e in entries])
    det = np.column_stack([e["sf"].comps[e["name"]]["detected"] for e in entries])
    cov = np.zeros((nlev, k, k))
    groups: dict[int, list[int]] = {}
    for i, e in enumerate(entries):
        groups.setdefault(id(e["sf"]), []).append(i)
    for ids in groups.values():   # block diagonal: fits are independent measurements
        sf = entries[ids[0]]["sf"]
        order = list(sf.comps)
        j = [order.index(entries[i]["name"]) for i in ids]
        cov[:, np.ix_(ids, ids)[0], np.ix_(ids, ids)[1]] = sf.area_cov[:, np.ix_(j, j)[0], np.ix_(j, j)[1]]
    at, at_se = Q.atomic_percent_cov(np.where(det, A, 0.0), cov, factors, np.isfinite(Ase) | ~det)
    return np.where(det, at, np.nan), np.where(det, at_se, np.nan)


def _survey_plot(reg, data_xy, sres, sample):
    """The whole survey with its features labelled and the fitted lines over their windows."""
    x, Y = data_xy
    xc = x + sres.shift
    series = [{"name": "data", "y": Y.sum(axis=0) if Y.shape[0] > 1 else Y[0], "role": "data"}]
    for ln, sf in sres.fits.items():
        tot = sf.envelope + sf.background
        series.append({"name": f"{ln} fit", "x": sf.x, "y": tot.sum(axis=0) if tot.shape[0] > 1 else tot[0],
                       "role": "fit"})
    feats = sres.features
    return {"kind": "spectrum", "title": f"{sample} — {reg} (survey{', levels summed' if Y.shape[0] > 1 else ''})",
            "x": xc, "x_label": "binding energy (eV, charge-corrected)", "y_label": "intensity", "reverse_x": True,
            "series": series, "ticks": [{"name": "features", "positions": [f["be_eV"] for f in feats],
                                         "labels": [f["assignment"] for f in feats]}]}


def _dedupe(ws):
    return list(dict.fromkeys(ws))


def _montecarlo(sf, comps, background, n_mc, seed, weights, given=True, line=None):
    """Monte-Carlo standard errors: refit every level ``n_mc`` times (batch engine) on best fit + resampled
    residuals (the toolkit's resampling: circular shifts with random sign per level)."""
    from ...fitting.uncertainty import montecarlo_draws

    best = sf.envelope + sf.background
    keys = ("center", "fwhm", "area")
    draws = {n: {k: [] for k in keys} for n in sf.comps}
    for f2 in montecarlo_draws(lambda y: fit_levels(sf.region, comps, sf.x, y, background=background,
                                                   weights=weights, given=given, checks=False, line=line),
                               best, sf.Y - best, n_mc, seed):
        for n in sf.comps:
            for q in keys:
                draws[n][q].append(f2.comps[n][q])
    names = list(sf.comps)
    if all(len(draws[n]["area"]) >= 3 for n in names):
        D = np.stack([np.asarray(draws[n]["area"]) for n in names], axis=-1)  # (draws, levels, k)
        D = D - np.nanmean(D, axis=0)
        cov = np.einsum("dli,dlj->lij", np.nan_to_num(D), np.nan_to_num(D)) / (D.shape[0] - 1)
        absent = np.stack([sf.comps[n]["absent"] | ~sf.comps[n]["detected"] for n in names], axis=1)
        sf.area_cov = np.where(absent[:, :, None] | absent[:, None, :], 0.0, cov)
    for n, c in sf.comps.items():
        for q in keys:
            d = np.asarray(draws[n][q])
            if len(d) >= 3:
                se = np.nanstd(d, axis=0, ddof=1)
                key = q + "_stderr"
                c[key] = np.where(np.isfinite(c[key]) | (q == "area"), se, c[key])
                if q == "area":
                    c[key] = np.where(c["absent"], np.nan, se)
                c[key] = np.where(c["detected"], c[key], np.nan)


def _plots(fits, sp_at, species, zaxis, zunit, etch, nlev, sample, interphase):
    plots = []
    for reg, sf in fits.items():
        total = np.nansum(sf.envelope, axis=1)
        levels = [0] if nlev == 1 else sorted({0, int(np.nanargmax(total))})
        for lv in levels:
            series = [{"name": "data", "y": sf.Y[lv], "role": "data"},
                      {"name": "background", "y": sf.background[lv], "role": "baseline"},
                      {"name": "envelope", "y": sf.envelope[lv] + sf.background[lv], "role": "fit"}]
            for name, cv in sf.curves.items():
                series.append({"name": name, "y": cv[lv] + sf.background[lv], "role": "component"})
            series.append({"name": "residual", "y": sf.Y[lv] - sf.envelope[lv] - sf.background[lv],
                           "role": "residual"})
            where = f"level {lv}" + (f", {etch[lv]:.0f} s" if np.isfinite(etch[lv]) else "")
            plots.append({"kind": "spectrum", "title": f"{sample} — {reg} ({where})", "x": sf.x,
                          "x_label": "binding energy (eV, charge-corrected)", "y_label": "intensity",
                          "reverse_x": True, "series": series})
    if nlev > 1:
        z = zaxis if zaxis is not None else np.arange(nlev, dtype=float)
        zl = {"nm": "depth (nm)", "s": "etch time (s)"}.get(zunit if zaxis is not None else "", "etch level")
        plots.append({"kind": "xy", "title": f"{sample} — depth profile (atomic %)", "x": z, "x_label": zl,
                      "y_label": "atomic %", "series": [{"name": sp, "y": sp_at[sp][0], "err": sp_at[sp][1],
                                                         "mode": "lines+markers"} for sp in species]})
        # heatmap of the region that carries the interphase (else the one whose intensity varies most)
        reg = None
        if interphase:
            for reg_, sf in fits.items():
                if any(s in sf.comps for s in interphase):
                    reg = reg_
                    break
        if reg is None:
            reg = max(fits, key=lambda r: float(np.nanstd(np.nansum(fits[r].Y - fits[r].background, axis=1))))
        sf = fits[reg]
        order = np.argsort(sf.x)
        plots.append({"kind": "map", "title": f"{sample} — {reg} vs depth (background removed)",
                      "z": (sf.Y - sf.background)[:, order], "x": sf.x[order], "y": np.arange(nlev),
                      "x_label": "binding energy (eV)", "y_label": "etch level" + (
                          f" (depth = level × {(z[1] - z[0]):.3g} {zunit})" if zaxis is not None and nlev > 1 else ""),
                      "z_label": "intensity"})
    return plots


def fit_region(m, region: str, components=None, *, level: int = 0, charge_shift: float = 0.0,
               background: str = "shirley", errors: str = "covariance", n_mc: int = 100, seed: int = 0) -> Result:
    """Fit one region at one etch level (lmfit through :func:`~specproc.fitting.fit.fit_spec`).

    Parameters
    ----------
    m : xarray.DataArray
        XPS measurement.
    region : str
        Region name (``"N 1s"``).
    components : list, optional
        Template components of this region (dicts or :class:`~specproc.techniques.xps.model.Component`);
        default: the toolkit's model selection on this level (:func:`~specproc.techniques.xps.auto.select_region`).
    level : int
        Etch level.
    charge_shift : float
        Added to the binding energies (eV), e.g. ``fit_profile(...).quantities["charge_shift_eV"].value``.
    errors : {"covariance", "montecarlo"}
        Standard errors from the covariance, or Monte-Carlo refits (``n_mc``) on request.
    """
    from ...fitting.fit import fit_spec
    from ...fitting.uncertainty import montecarlo
    from . import backgrounds as bgs
    from .model import compile_region

    src = m.attrs.get("provenance", {}).get("source")
    m = check_xps(m, src)
    if not 0 <= level < m.sizes["level"]:
        raise ParameterError(f"level {level} out of range (0..{m.sizes['level'] - 1})", src)
    x, Y = region_data(m, region)
    x = x + float(charge_shift)
    y = Y[level]
    from .rsf import normalise_line

    if components:
        comps = parse_template({region: components})[region]
    else:
        from .auto import auto_template

        sel = select_region(region, x, Y[level:level + 1], line=normalise_line(region), background=background,
                            counts=m.attrs.get("units") == "counts", where=src)
        comps, _notes = auto_template(region, sel.picks, line=normalise_line(region))
        if not comps:
            raise ProcessingError(f"{region}: no template given and no component found above the noise at level "
                                  f"{level}", src)
    spec, info = compile_region(region, comps, given=bool(components), line=normalise_line(region))
    kind = "shirley" if background == "shirley-active" else background
    B = bgs.background(kind, x, y)
    w = poisson_weights(m, y)
    out = fit_spec(spec, x, y - B, weights=w, where=src)
    from ...fitting.lineshapes import area_of

    groups = spec.groups()

    def quantities(values):
        # component + doublet partner areas from the shared registry (no expression evaluation)
        return np.array([sum(area_of(p.shape, values, g) for g in groups[p.name]) for p in spec.peaks])

    areas, area_se, _ = out.derived(quantities)
    for k, (p, i) in enumerate(zip(spec.peaks, info)):
        if p.shape == "doniach":  # area over the region (the DS tail diverges), as in fit_profile
            cv = sum(out.components.get(g, 0.0) for g in spec.groups()[p.name])
            order = np.argsort(x)
            a_win = float(np.trapezoid(np.asarray(cv, float)[order], x[order]))
            area_se[k] = abs(a_win) * area_se[k] / abs(areas[k]) if areas[k] else np.nan
            areas[k] = a_win
    table = out.peak_table()
    table["area"] = areas
    table["area_stderr"] = [None if (b or not np.isfinite(s)) else float(s)
                            for b, s in zip(table["at_bound"].astype(bool), area_se)]
    warnings = list(out.warnings)
    if errors == "montecarlo":
        def refit(ys):
            o = fit_spec(spec, x, ys, weights=w, where=src)
            return np.concatenate([[o.values[i["prefix"] + "center"] for i in info], quantities(o.values)])

        std, n_ok = montecarlo(refit, out.best_fit, out.residual, n=n_mc, seed=seed)
        if std is None:
            warnings.append(f"Monte-Carlo errors failed ({n_ok} of {n_mc} refits succeeded)")
        else:
            k = len(info)
            table["center_stderr"] = [None if b else float(s) for b, s in zip(table["at_bound"].astype(bool), std[:k])]
            table["area_stderr"] = [None if b else float(s) for b, s in zip(table["at_bound"].astype(bool), std[k:])]
    table = table.rename(columns={"center": "be_eV", "center_stderr": "be_eV_stderr", "fwhm": "fwhm_eV",
                                  "fwhm_stderr": "fwhm_eV_stderr"})
    table.insert(1, "region", region)
    nd = ~table["detected"].astype(bool)     # no signal near the given start: no area, no errors
    table.loc[nd, "area"] = np.nan
    for col in ("area_stderr", "be_eV_stderr"):
        table[col] = table[col].astype(object)
        table.loc[nd, col] = None
    q = Quantities()
    for row in table.to_dict(orient="records"):
        if not row["detected"]:
            note = "not detected: no signal near its given start"
            q.add(f"{region}/{row['name']}", "be_eV", float("nan"), None, "eV", note)
            q.add(f"{region}/{row['name']}", "area", float("nan"), None, "", note)
            continue
        q.add(f"{region}/{row['name']}", "be_eV", row["be_eV"], row["be_eV_stderr"], "eV")
        q.add(f"{region}/{row['name']}", "area", row["area"], row["area_stderr"], "")
    series = [{"name": "data", "y": y, "role": "data"}, {"name": "background", "y": B, "role": "baseline"},
              {"name": "envelope", "y": out.best_fit + B, "role": "fit"}]
    groups = spec.groups()
    for p in spec.peaks:
        cv = sum(out.components.get(g, 0.0) for g in groups[p.name])
        series.append({"name": p.name, "y": np.asarray(cv) + B, "role": "component"})
    series.append({"name": "residual", "y": out.residual, "role": "residual"})
    plot = {"kind": "spectrum", "title": f"{m.attrs.get('sample') or ''} — {region} (level {level})", "x": x,
            "x_label": "binding energy (eV)", "y_label": "intensity", "reverse_x": True, "series": series}
    return Result(processor="xps.fit_region", technique="xps", sample=m.attrs.get("sample") or "", quantities=q,
                  tables={"components": table}, plots=[plot],
                  params={"region": region, "level": level, "charge_shift": charge_shift, "background": background,
                          "errors": errors}, inputs=[m.attrs.get("provenance", {})], stats=out.stats,
                  warnings=warnings, main_table="components", meta={"region": region, "level": level},
                  native=out)


def _verdict(present: bool, detected: bool, amax, amax_se, limit: float) -> str:
    """A species' presence in words, with the numbers it rests on: ``"present: max 12.3 ± 0.4 at % >= 1
    at %"``, ``"below detection limit 1 at % (max 0.42 ± 0.1 at %)"`` — never a bare 0."""
    from ...core.numbers import format_number

    if present:
        return f"present: max {format_number(amax, amax_se)} at % >= {limit:g} at %"
    if not detected or amax is None or not np.isfinite(amax):
        return f"below detection limit {limit:g} at % (no signal at any level)"
    return f"below detection limit {limit:g} at % (max {format_number(amax, amax_se)} at %)"
