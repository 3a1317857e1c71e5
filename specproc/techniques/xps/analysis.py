"""``xps.fit_profile``: charge referencing, one template on every level, atomic %, depth profile, thickness.

Quantities (names the evidence engine can use)
----------------------------------------------
``charge_shift_eV``; ``species(X).present`` (1.0 / 0.0 at the stated detection limit),
``species(X).max_atomic_percent``, ``species(X).thickness_nm`` (or ``_s`` of etch time without a sputter rate);
``interphase.thickness_nm`` (sum of the ``interphase`` species); ``<region>/<component>.be_eV`` and
``.fwhm_eV`` (at the level where the component is strongest); ``sputter_rate_nm_s``.
"""
from __future__ import annotations

import numpy as np

from ...core.errors import ParameterError, ProcessingError
from ...core.result import Quantity, Result
from . import quantify as Q
from .fitting import (auto_template, charge_reference, check_xps, fit_stack, parse_charge_ref, poisson_weights,
                      region_data, regions_of)
from .model import parse_template
from .rsf import SOURCE as RSF_SOURCE, load_rsf_table, rsf_for


def _f(v):
    return None if v is None or not np.isfinite(v) else float(v)


def fit_profile(m, model=None, *, charge_ref="C 1s=284.8", charge_shift=None, background="shirley", rsf=None,
                sputter_rate=None, sputter_rate_stderr=None, detection_limit=1.0, interphase=None, regions=None,
                transmission_exponent=None, escape_depth_exponent=None, max_shift=10.0, errors="covariance",
                n_mc=50, seed=0, params_record=None) -> Result:
    """Fit every region of an XPS measurement (every etch level) and quantify.

    Parameters
    ----------
    m : xarray.DataArray
        XPS measurement from :class:`~specproc.io.vamas.VamasReader` (dims ``level``, ``channel``).
    model : dict, optional
        Template ``{region: [component, ...]}`` (see :mod:`specproc.techniques.xps.model`); regions without
        a template get components from their prominent peaks.
    charge_ref : str or None
        ``"REGION[:COMPONENT]=BE"`` (default ``"C 1s=284.8"``, adventitious carbon); None disables.
    charge_shift : float, optional
        Explicit shift (eV) added to every binding energy (overrides ``charge_ref``).
    background : str
        ``shirley`` (default), ``shirley-active``, ``linear``, ``tougaard``, ``tougaard3``, ``none``.
    rsf : dict or path, optional
        User RSFs ``{line: value}`` or a CSV/text table; missing lines come from the built-in Scofield table.
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
    """
    src = m.attrs.get("provenance", {}).get("source")
    m = check_xps(m, src)
    acq = m.attrs.get("acquisition", {})
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
    warnings: list[str] = []
    user_rsf = load_rsf_table(rsf) if isinstance(rsf, str) else dict(rsf or {})

    # ---- charge referencing (one shift for every region and level)
    cref = None
    if charge_shift is not None:
        shift, shift_se = float(charge_shift), None
        cref_note = f"given shift {shift:+.3f} eV"
    else:
        ref = parse_charge_ref(charge_ref)
        if ref is None:
            shift, shift_se, cref_note = 0.0, None, "no charge correction"
        elif ref[0] not in file_regions:
            shift, shift_se = 0.0, None
            cref_note = f"reference region {ref[0]} not in the file"
            warnings.append(f"charge reference region {ref[0]!r} is not in the file: no charge correction applied")
        else:
            cref = charge_reference(m, ref, template, background=background, max_shift=max_shift)
            shift, shift_se = cref["shift"], cref["stderr"]
            warnings += cref["warnings"]
            cref_note = (f"{cref['region']} {cref['component']} = {cref['reference_eV']} eV "
                         f"(measured {cref.get('measured_eV', float('nan')):.3f} eV at {cref['n_used']} levels)")

    # ---- one template, every level, per region
    nlev = m.sizes["level"]
    fits = {}
    for reg in regions:
        if rsf_for(reg, user_rsf) is None:
            if reg in template:
                raise ParameterError(f"no RSF for region {reg!r}: give rsf={{{reg!r}: value}} or an RSF table", src)
            warnings.append(f"{reg}: no relative sensitivity factor for this region name: not fitted or quantified")
            continue
        x, Y = region_data(m, reg)
        xc = x + shift
        comps = template.get(reg) or auto_template(reg, xc, Y)
        if not comps:
            warnings.append(f"{reg}: no template given and no peak found (8 sigma): region not fitted or quantified")
            continue
        if reg not in template:
            warnings.append(f"{reg}: no template given; components from the prominent peaks: "
                            + ", ".join(f"{c.center:.2f} eV" for c in comps))
        sf = fit_stack(reg, comps, xc, Y, background=background, weights=poisson_weights(m, Y))
        warnings += sf.warnings
        if errors == "montecarlo":
            _montecarlo(sf, comps, background, n_mc, seed, poisson_weights(m, Y))
        fits[reg] = sf

    # ---- atomic %
    rows_c = [(reg, name) for reg, sf in fits.items() for name in sf.comps]
    if not rows_c:
        raise ProcessingError("no region could be fitted and quantified (see the region names, RSFs and peaks)", src)
    factors = []
    src_e = acq.get("source_energy_eV")
    wf = acq.get("work_function_eV") or 0.0
    for reg, name in rows_c:
        r = rsf_for(reg, user_rsf)
        if r is None:
            raise ParameterError(f"no RSF for region {reg!r}: give rsf={{{reg!r}: value}} or an RSF table", src)
        corr = 1.0
        if (transmission_exponent is not None or escape_depth_exponent is not None):
            if src_e is None:
                raise ParameterError("transmission / escape-depth corrections need the source energy", src)
            ke = src_e - float(np.nanmedian(fits[reg].comps[name]["center"])) - wf
            corr = ke ** ((transmission_exponent or 0.0) + (escape_depth_exponent or 0.0))
        factors.append(r * corr)
    A = np.column_stack([fits[reg].comps[n]["area"] for reg, n in rows_c])
    Ase = np.column_stack([fits[reg].comps[n]["area_stderr"] for reg, n in rows_c])
    K = len(rows_c)
    cov = np.zeros((nlev, K, K))
    i0 = 0
    for reg, sf in fits.items():  # block diagonal: regions are independent measurements
        k = len(sf.comps)
        cov[:, i0:i0 + k, i0:i0 + k] = sf.area_cov
        i0 += k
    at, at_se = Q.atomic_percent_cov(A, cov, factors, np.isfinite(Ase))

    # ---- depth
    etch = np.asarray(m.coords["etch_time"].values, float) if "etch_time" in m.coords else np.full(nlev, np.nan)
    rate = sputter_rate if sputter_rate is not None else acq.get("sputter_rate_nm_s")
    rate_src = "given" if sputter_rate is not None else ("file" if rate is not None else None)
    depth = etch * rate if rate is not None else np.full(nlev, np.nan)
    have_time = np.all(np.isfinite(etch))
    if nlev > 1 and not have_time:
        warnings.append("no etch times in the file: profile against level number; no depth or thickness")
    elif nlev > 1 and rate is None:
        warnings.append("no sputter rate (file or sputter_rate=): depth not computed; thickness in etch time (s)")
    zaxis = depth if rate is not None and have_time else (etch if have_time else None)
    zunit = "nm" if rate is not None and have_time else "s"
    rate_rel = (sputter_rate_stderr / rate) if (sputter_rate_stderr and rate) else 0.0

    # ---- species: presence, thickness
    species = list(dict.fromkeys(n for _, n in rows_c))
    quantities: dict[str, Quantity] = {}
    sp_rows = []
    sp_at = {}
    for sp in species:
        idx = [i for i, (_, n) in enumerate(rows_c) if n == sp]
        prof = at[:, idx].sum(axis=1)
        prof_se = np.sqrt(np.nansum(at_se[:, idx] ** 2, axis=1))
        prof_se = np.where(np.all(np.isfinite(at_se[:, idx]), axis=1), prof_se, np.nan)
        area = A[:, idx].sum(axis=1)
        area_se = np.sqrt(np.nansum(Ase[:, idx] ** 2, axis=1))
        area_se = np.where(np.all(np.isfinite(Ase[:, idx]), axis=1), area_se, np.nan)
        present, amax, amax_se, imax = Q.presence(prof, prof_se, area, area_se, detection_limit)
        sp_at[sp] = (prof, prof_se)
        th = th_se = None
        note = ""
        if nlev > 2 and zaxis is not None and present:
            th, th_se, note = Q.thickness(zaxis, prof, prof_se, rate_rel_err=rate_rel, seed=seed)
            if note and (th is not None or sp in (interphase or [])):  # a substrate never falls: no note
                warnings.append(f"{sp}: {note}")
        quantities[f"species({sp}).present"] = Quantity(1.0 if present else 0.0, None, "",
                                                        f"max at % {'>=' if present else '<'} {detection_limit}")
        quantities[f"species({sp}).max_atomic_percent"] = Quantity(amax, amax_se, "%")
        if th is not None:
            quantities[f"species({sp}).thickness_{zunit}"] = Quantity(th, th_se, zunit,
                                                                      "depth where at % falls to 50 % of its maximum")
        sp_rows.append({"species": sp, "present": present, "max_atomic_percent": amax,
                        "max_atomic_percent_stderr": amax_se, "level_of_max": imax,
                        f"thickness_{zunit}": th, f"thickness_{zunit}_stderr": th_se,
                        "detection_limit_at_percent": detection_limit})
    inter = None
    if interphase:
        missing = [s for s in interphase if s not in sp_at]
        if missing:
            raise ParameterError(f"interphase species {missing} are not components of the model (species: {species})",
                                 src)
        prof = sum(sp_at[s][0] for s in interphase)
        prof_se = np.sqrt(sum(np.where(np.isfinite(sp_at[s][1]), sp_at[s][1], 0.0) ** 2 for s in interphase))
        any_present = any(quantities[f"species({s}).present"].value for s in interphase)
        if not any_present:
            warnings.append(f"interphase species {interphase} not present (detection limit {detection_limit} at %): "
                            "no interphase thickness")
        elif zaxis is None or nlev < 3:
            warnings.append("interphase thickness needs a depth profile with etch times")
        else:
            v, se, note = Q.thickness(zaxis, prof, prof_se, rate_rel_err=rate_rel, seed=seed)
            if note:
                warnings.append(f"interphase: {note}")
            if v is not None:
                inter = (v, se)
                quantities[f"interphase.thickness_{zunit}"] = Quantity(
                    v, se, zunit, f"depth where the at % of {' + '.join(interphase)} falls to 50 % of its maximum")
    if shift_se is not None or charge_shift is not None or cref is not None:
        quantities["charge_shift_eV"] = Quantity(shift, shift_se, "eV", cref_note)
    if rate is not None:
        quantities["sputter_rate_nm_s"] = Quantity(float(rate), sputter_rate_stderr, "nm/s", rate_src or "")

    # ---- tables
    import pandas as pd

    comp_rows = []
    for k, (reg, name) in enumerate(rows_c):
        c = fits[reg].comps[name]
        for lv in range(nlev):
            comp_rows.append({
                "level": lv, "etch_time_s": _f(etch[lv]), "depth_nm": _f(depth[lv]), "region": reg, "name": name,
                "be_eV": _f(c["center"][lv]), "be_eV_stderr": _f(c["center_stderr"][lv]),
                "fwhm_eV": _f(c["fwhm"][lv]), "fwhm_eV_stderr": _f(c["fwhm_stderr"][lv]),
                "area": _f(c["area"][lv]), "area_stderr": _f(c["area_stderr"][lv]),
                "atomic_percent": _f(at[lv, k]), "atomic_percent_stderr": _f(at_se[lv, k]),
                "at_bound": c["at_bound"][lv], "shape": c["shape"]})
    components = pd.DataFrame(comp_rows)
    # component headline numbers at the level where each is strongest
    for k, (reg, name) in enumerate(rows_c):
        c = fits[reg].comps[name]
        a = np.where(np.isfinite(c["area"]), c["area"], -np.inf)
        lv = int(np.argmax(a))
        if not c["absent"][lv]:
            quantities[f"{reg}/{name}.be_eV"] = Quantity(float(c["center"][lv]), _f(c["center_stderr"][lv]), "eV",
                                                        f"level {lv}")
            quantities[f"{reg}/{name}.fwhm_eV"] = Quantity(float(c["fwhm"][lv]), _f(c["fwhm_stderr"][lv]), "eV")
    fit_rows = [{"region": reg, "level": lv, "r2": _f(sf.stats["r2"][lv]), "redchi": _f(sf.stats["redchi"][lv]),
                 "success": bool(sf.stats["success"][lv])} for reg, sf in fits.items() for lv in range(nlev)]
    prof_df = pd.DataFrame({"level": np.arange(nlev), "etch_time_s": etch, "depth_nm": depth,
                            **{f"{sp} at%": sp_at[sp][0] for sp in species}})
    tables = {"species": pd.DataFrame(sp_rows), "components": components, "profile": prof_df,
              "fits": pd.DataFrame(fit_rows)}
    if cref is not None:
        tables["charge_reference"] = pd.DataFrame(cref["levels"])

    # ---- data: the profile as a Dataset
    import xarray as xr

    data = xr.Dataset(
        {"atomic_percent": (("level", "species"), np.column_stack([sp_at[s][0] for s in species])),
         "atomic_percent_stderr": (("level", "species"), np.column_stack([sp_at[s][1] for s in species]))},
        coords={"level": np.arange(nlev), "species": species, "etch_time": ("level", etch, {"units": "s"}),
                "depth": ("level", depth, {"units": "nm"})})

    plots = _plots(fits, sp_at, species, zaxis, zunit, etch, nlev, m.attrs.get("sample") or "", interphase)
    r2s = [sf.stats["r2"][sf.stats["signal"]] for sf in fits.values()]
    r2s = np.concatenate(r2s) if r2s else np.array([])
    stats = {"n_levels": nlev, "n_regions": len(fits), "min_r2": _f(np.nanmin(r2s)) if r2s.size else None,
             "n_failed_fits": int(sum((~sf.stats["success"].astype(bool)).sum() for sf in fits.values())),
             "methods": ",".join(sorted({sf.method for sf in fits.values()}))}
    meta = {"charge_reference": cref_note, "charge_shift_eV": shift, "background": background,
            "rsf_source": RSF_SOURCE if not user_rsf else f"user table for {sorted(user_rsf)}; others {RSF_SOURCE}",
            "rsf": {reg: rsf_for(reg, user_rsf) for reg in fits}, "detection_limit_at_percent": detection_limit,
            "sputter_rate_nm_s": rate, "sputter_rate_source": rate_src, "depth_unit": zunit,
            "interphase_species": list(interphase or []), "regions": list(fits), "errors": errors,
            "transmission_exponent": transmission_exponent, "escape_depth_exponent": escape_depth_exponent,
            "energy_axis_in_file": acq.get("energy_axis_in_file")}
    return Result(processor="xps.fit_profile", technique="xps", sample=m.attrs.get("sample") or "",
                  quantities=quantities, tables=tables, plots=plots, params=dict(params_record or {}),
                  inputs=[m.attrs.get("provenance", {})], stats=stats, warnings=_dedupe(warnings),
                  main_table="species", meta=meta, data=data, native=fits)


def _dedupe(ws):
    return list(dict.fromkeys(ws))


def _montecarlo(sf, comps, background, n_mc, seed, weights):
    """Monte-Carlo standard errors: refit every level ``n_mc`` times (batch engine) on best fit + resampled
    residuals (the toolkit's resampling: circular shifts with random sign per level)."""
    from ...fitting.uncertainty import montecarlo_draws

    best = sf.envelope + sf.background
    keys = ("center", "fwhm", "area")
    draws = {n: {k: [] for k in keys} for n in sf.comps}
    for f2 in montecarlo_draws(lambda y: fit_stack(sf.region, comps, sf.x, y, background=background,
                                                   weights=weights), best, sf.Y - best, n_mc, seed):
        for n in sf.comps:
            for q in keys:
                draws[n][q].append(f2.comps[n][q])
    names = list(sf.comps)
    if all(len(draws[n]["area"]) >= 3 for n in names):
        D = np.stack([np.asarray(draws[n]["area"]) for n in names], axis=-1)  # (draws, levels, k)
        D = D - np.nanmean(D, axis=0)
        cov = np.einsum("dli,dlj->lij", np.nan_to_num(D), np.nan_to_num(D)) / (D.shape[0] - 1)
        absent = np.stack([sf.comps[n]["absent"] for n in names], axis=1)
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
        default: from the prominent peaks.
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
    comps = parse_template({region: components})[region] if components else auto_template(region, x, Y[level:level + 1])
    spec, info = compile_region(region, comps)
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
    q = {}
    for row in table.to_dict(orient="records"):
        q[f"{region}/{row['name']}.be_eV"] = Quantity(row["be_eV"], row["be_eV_stderr"], "eV")
        q[f"{region}/{row['name']}.area"] = Quantity(row["area"], row["area_stderr"], "")
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
