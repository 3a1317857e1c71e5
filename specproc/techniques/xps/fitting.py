"""Region fits: one template, every etch level at once (shared batch engine), and charge referencing.

Nothing here is an optimiser: :func:`fit_levels` fits every level of a region with the shared stack fit
(:func:`specproc.fitting.stack.fit_stack`: values, errors and bound parameters by column), the shared
:class:`~specproc.fitting.models.ModelSpec` carries the constraints and doublets, and standard errors of
derived numbers (areas) come from the engine's covariance propagation.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...core.errors import ParameterError
from . import backgrounds as bgs
from ...fitting.models import prefix_of
from .model import Component, area_expression, compile_region

BACKGROUND_CHOICES = bgs.CHOICES


# ------------------------------------------------------------------ measurement access
def check_xps(m, where=None):
    """Validate that ``m`` is an XPS measurement in the reader's layout (``region`` / ``binding_energy``)."""
    from ...core.measurement import check_measurement

    check_measurement(m, "xps")
    if m.dims != ("level", "channel"):
        raise ParameterError(f"XPS measurement dims must be ('level', 'channel'), got {m.dims}", where)
    bad = int(np.size(m.values) - np.count_nonzero(np.isfinite(np.asarray(m.values))))
    if bad:
        from ...core.errors import ProcessingError

        raise ProcessingError(f"{bad} NaN/inf count values (of {np.size(m.values)})", where)
    if "region" not in m.coords or "binding_energy" not in m.coords:
        m = _restore_coords(m, where)
    return m


def _restore_coords(m, where):
    """Rebuild the channel labels from ``acquisition["regions"]`` (a store that kept only dim coords)."""
    acq = m.attrs.get("acquisition", {})
    regs = acq.get("regions") or []
    try:
        names = np.concatenate([np.full(int(r["n"]), str(r["name"]), dtype=object) for r in regs])
        be = np.concatenate([float(r["be_start_eV"]) + float(r["be_step_eV"] or 0.0) * np.arange(int(r["n"]))
                             for r in regs])
    except (KeyError, TypeError, ValueError):
        names, be = np.array([]), np.array([])
    if names.size != m.sizes["channel"]:
        raise ParameterError("XPS measurement lacks the 'region' / 'binding_energy' channel coordinates and its "
                             "acquisition record cannot rebuild them (read the file with specproc.read)", where)
    etch = acq.get("etch_time_s")
    coords = {"region": ("channel", names.astype(str), {"units": ""}),
              "binding_energy": ("channel", be, {"units": "eV"})}
    if etch is not None and len(etch) == m.sizes["level"] and "etch_time" not in m.coords:
        coords["etch_time"] = ("level", np.array([np.nan if v is None else v for v in etch], float), {"units": "s"})
    return m.assign_coords(**coords)


def regions_of(m) -> list[str]:
    return list(dict.fromkeys(str(v) for v in m.coords["region"].values))


def region_data(m, region: str):
    """``(binding_energy (n,), Y (levels, n))`` of one region (uncorrected energies, file order)."""
    sel = np.asarray(m.coords["region"].values) == region
    if not sel.any():
        raise ParameterError(f"region {region!r} is not in the file (regions: {regions_of(m)})",
                             m.attrs.get("provenance", {}).get("source"))
    return np.asarray(m.coords["binding_energy"].values[sel], float), np.asarray(m.values[:, sel], float)


def poisson_weights(m, Y):
    """1/sqrt(counts) weights when the values are counts, else None (unweighted)."""
    if m.attrs.get("units") == "counts":
        return 1.0 / np.sqrt(np.maximum(Y, 1.0))
    return None


# ------------------------------------------------------------------ one region, all levels
@dataclass
class LevelsFit:
    """One region's template fitted to every level (:func:`fit_levels`): per component, (levels,) columns."""

    region: str
    x: np.ndarray              # charge-corrected BE (eV)
    Y: np.ndarray              # data (levels, n)
    background: np.ndarray     # (levels, n)
    envelope: np.ndarray       # peaks only (levels, n)
    curves: dict               # component name -> (levels, n) (doublet partner included)
    comps: dict                # component name -> dict of (levels,) arrays
    stats: dict                # r2, redchi, success (levels,)
    method: str
    warnings: list = field(default_factory=list)
    spec: object = None
    area_cov: np.ndarray | None = None  # (levels, k, k), components in ``comps`` order
    noise: np.ndarray | None = None     # (levels,) noise SD of the background-subtracted data
    line: str | None = None             # the region's core line ("C 1s"), None when unknown


def _fwhm_values(shape, sf, pre):
    """FWHM and its standard error (levels,) of the component ``pre`` of a stack fit ``sf``."""
    from ...fitting.lineshapes import fwhm

    v, e = sf.values, sf.errors
    if shape in ("gl-product", "gl-sum"):
        return v[pre + "fwhm"], e[pre + "fwhm"]
    sig = v[pre + "sigma"]
    se = e[pre + "sigma"]
    if shape == "doniach":
        return 2 * sig, 2 * se
    gam = v.get(pre + "gamma")
    f = np.asarray(fwhm(shape, sig, gamma=gam), float)
    return f, se * f / np.where(sig > 0, sig, np.nan)


def _end_point_errors(spec, model, sf, x, Y, kind, n_avg, weights, *, n_jobs=None, max_iter=200):
    """The background hangs on the averaged end points; their counting noise moves every area. Its effect
    is measured by refitting with each end moved by its standard error (batch engine, from the fit ``sf``'s
    end point). Returns ``({"<prefix>total_area": variance (levels,)}, [(levels, k) area changes per end])``."""
    from ...fitting.stack import fit_stack

    end_var = {}
    end_d = []
    init = {n: sf.values[n] for n in sf.free}
    kw = {"n_avg": n_avg}
    order = np.argsort(x)
    for side in (order[:n_avg], order[-n_avg:]):
        ends = Y[:, side]
        sig = (np.sqrt(np.maximum(ends.mean(axis=1), 1.0)) if weights is not None
               else ends.std(axis=1, ddof=1)) / np.sqrt(n_avg)
        Yp = Y.copy()
        Yp[:, side] += sig[:, None]
        sfp = fit_stack(model, x, Y - bgs.background(kind, x, Yp, **kw), sf.params, init=init,
                        weights=weights, n_jobs=n_jobs, max_iter=max_iter)
        dd = []
        for p in spec.peaks:
            nm = prefix_of(p.name) + "total_area"
            d = sfp.values[nm] - sf.values[nm]
            d = np.where(np.isfinite(d), d, 0.0)
            end_var[nm] = end_var.get(nm, 0.0) + d ** 2
            dd.append(d)
        end_d.append(np.stack(dd, axis=1))
    return end_var, end_d


def fit_levels(region: str, comps: list[Component], x, Y, *, background: str = "shirley", weights=None,
               n_jobs: int | None = None, max_iter: int = 200, active_iterations: int = 4, given: bool = True,
               checks: bool = True, line: str | None = None) -> LevelsFit:
    """Fit one region's template to every level (rows of ``Y``) through the shared stack fit
    (:func:`specproc.fitting.stack.fit_stack`: values, errors and bound parameters by column).

    Parameters
    ----------
    x : array (n,)
        Charge-corrected binding energy (eV).
    Y : array (levels, n)
    background : str
        ``shirley`` (iterative, from the data), ``shirley-active`` (Shirley recomputed from the fitted
        peaks and the fit repeated: background and peaks fitted together), ``linear``, ``tougaard`` (U2),
        ``tougaard3`` (U3) or ``none``.
    given : bool
        The components' centres are the user's starts (a template; see
        :func:`~specproc.techniques.xps.model.compile_region`); False for picked peaks.
    checks : bool
        Run the toolkit's after-fit checks (:func:`~specproc.fitting.fit.fit_checks`) at every level:
        a given component without signal near its start is *not detected* at that level (area, its
        errors and atomic % NaN; ``comps[name]["detected"]``), one that ended far from its start and
        residual signal no component explains are warnings.
    line : str, optional
        The region's core line when the region name is not one (doublet table).
    """
    from ...fitting import evaluate_batch
    from ...fitting.noise import noise_sigma
    from ...fitting.stack import fit_stack

    if background not in BACKGROUND_CHOICES:
        raise ParameterError(f"background must be one of {BACKGROUND_CHOICES}, got {background!r}")
    x = np.asarray(x, float)
    Y = np.atleast_2d(np.asarray(Y, float))
    spec, info = compile_region(region, comps, given=given, line=line)
    kind = "shirley" if background == "shirley-active" else background
    n_avg = end_channels(x.size)
    kw = {} if kind == "none" else {"n_avg": n_avg}
    B = bgs.background(kind, x, Y, **kw)
    S = Y - B
    model, params = spec.to_lmfit(x, np.mean(S, axis=0))
    for name, expr in area_expression(spec, info).items():
        params.add(name, expr=expr)
    # pairwise sums of areas: the engine propagates expression errors with the full covariance, so
    # cov(A_i, A_j) = (var(A_i + A_j) - var A_i - var A_j) / 2 (overlapping components are anti-correlated)
    pres = [i["prefix"] for i in info]
    pairs = {(a, b): f"{pres[a]}{pres[b]}pairsum" for a in range(len(pres)) for b in range(a + 1, len(pres))}
    for (a, b), name in pairs.items():
        params.add(name, expr=f"{pres[a]}total_area + {pres[b]}total_area")
    sf = fit_stack(model, x, S, params, weights=weights, n_jobs=n_jobs, max_iter=max_iter)
    end_var, end_d = ({}, []) if kind == "none" else _end_point_errors(
        spec, model, sf, x, Y, kind, n_avg, weights, n_jobs=n_jobs, max_iter=max_iter)
    if background == "shirley-active":
        lo, hi = bgs.end_levels(x, Y, n_avg)
        for _ in range(active_iterations):
            env = evaluate_batch(model, x, sf.ds, params)
            B = bgs.shirley_from_peaks(x, np.where(np.isfinite(env), env, 0.0), lo, hi)
            sf = fit_stack(model, x, Y - B, params, init={n: sf.values[n] for n in sf.free}, weights=weights,
                           n_jobs=n_jobs, max_iter=max_iter)
    env, curves_p = evaluate_batch(model, x, sf.ds, params, components=True)
    groups = spec.groups()
    warns = []
    nlev = Y.shape[0]
    out = {}
    v, e = sf.values, sf.errors
    for p, inf in zip(spec.peaks, info):
        pre = inf["prefix"]
        mine = [n for n in sf.free if any(n.startswith(g) for g in groups[p.name])]
        center = v[pre + "center"]
        cse = e[pre + "center"]
        fw, fse = _fwhm_values(p.shape, sf, pre)
        area = v[pre + "total_area"]
        ase = np.sqrt(e[pre + "total_area"] ** 2 + end_var.get(pre + "total_area", 0.0))
        inten = "height" if p.shape in ("gl-product", "gl-sum") else "amplitude"
        ib = sf.at_bound(pre + inten)
        cb = sf.at_bound(pre + "center")
        fb = sf.at_bound(pre + ("fwhm" if inten == "height" else "sigma"))
        names_b = [[] for _ in range(nlev)]
        for n in mine:
            for lv in np.flatnonzero(sf.at_bound(n)):
                names_b[lv].append(n[len(pre):] if n.startswith(pre) else n)
        # a value on a bound is a limit, not a measurement: no standard error
        cse = np.where(cb | ib, np.nan, cse)
        fse = np.where(fb | ib, np.nan, fse)
        ase = np.where(ib, np.nan, ase)
        out[p.name] = {"center": center, "center_stderr": cse, "fwhm": fw, "fwhm_stderr": fse, "area": area,
                       "area_stderr": ase, "at_bound": [",".join(b) for b in names_b], "absent": ib,
                       "shape": p.shape, "detected": np.ones(nlev, bool), "quantify": True}
        strong = np.isfinite(ase) & (area > 3 * np.where(np.isfinite(ase), ase, np.inf))
        for what, mask in (("centre", cb & strong), ("FWHM", fb & strong)):
            if mask.any():
                warns.append(f"{region} {p.name}: {what} at its bound at {int(mask.sum())} of {nlev} level(s) "
                             f"{_levels(mask)} — a limit, not a measurement (no standard error)")
    # area covariance per level (fit + background end points); absent components (area on 0) drop out
    k = len(pres)
    se = np.stack([e[q + "total_area"] for q in pres], axis=1)
    cov = np.zeros((nlev, k, k))
    cov[:, np.arange(k), np.arange(k)] = se ** 2
    for (a, b), name in pairs.items():
        c = 0.5 * (e[name] ** 2 - se[:, a] ** 2 - se[:, b] ** 2)
        cov[:, a, b] = cov[:, b, a] = c
    for d in end_d:
        cov += d[:, :, None] * d[:, None, :]
    absent = np.stack([out[p.name]["absent"] for p in spec.peaks], axis=1)
    cov = np.where(absent[:, :, None] | absent[:, None, :], 0.0, np.nan_to_num(cov))
    curves = {}
    for p in spec.peaks:
        c = sum(curves_p.get(g, 0.0) for g in groups[p.name])
        curves[p.name] = np.asarray(c, float) if np.ndim(c) else np.zeros_like(env)
        if p.shape == "doniach":
            # a Doniach-Sunjic line's tail makes its total area diverge; like CasaXPS, its area is the
            # integral over the region (error: the relative error of its intensity parameter)
            o = out[p.name]
            order = np.argsort(x)
            a_win = np.trapezoid(curves[p.name][:, order], x[order], axis=1)
            rel = o["area_stderr"] / np.where(o["area"] != 0, np.abs(o["area"]), np.nan)
            k_ = pres.index(prefix_of(p.name))
            scale = np.where(o["area"] != 0, a_win / np.where(o["area"] != 0, o["area"], 1.0), 0.0)
            cov[:, k_, :] *= scale[:, None]
            cov[:, :, k_] *= scale[:, None]
            o["area"], o["area_stderr"] = a_win, np.abs(a_win) * rel
    noise = np.array([noise_sigma(S[lv], "diff") for lv in range(nlev)])
    if checks:
        warns += _level_checks(region, spec, x, S, np.asarray(env, float), sf.values, curves_p, weights, noise, out)
    for c_ in comps:
        out[c_.name]["quantify"] = c_.quantify
    _mask_undetected(out, cov)
    stats = {"r2": sf.stats["r2"], "redchi": sf.stats["redchi"], "success": sf.success}
    bad = ~stats["success"].astype(bool)
    if bad.any():
        warns.append(f"{region}: fit did not converge at {int(bad.sum())} of {nlev} level(s) {_levels(bad)}")
    # r² means nothing on a level without peaks (noise only): judged where the envelope stands out
    resid = S - np.asarray(env, float)
    noise = np.nanstd(resid, axis=1)
    sig = np.nanmax(np.abs(np.asarray(env, float)), axis=1) > 5 * noise
    stats["signal"] = sig
    poor = (stats["r2"] < 0.9) & sig & ~bad
    if poor.any():
        warns.append(f"{region}: poor fit (r² < 0.9) at {int(poor.sum())} of {nlev} level(s) {_levels(poor)}")
    if sf.ds.attrs.get("fallback_reason"):
        warns.append(f"{region}: fitted with the lmfit loop ({sf.ds.attrs['fallback_reason']})")
    return LevelsFit(region, x, Y, B, np.asarray(env, float), curves, out, stats, sf.ds.attrs.get("method", ""),
                     warns, spec, cov, noise, line)


def _mask_undetected(comps: dict, cov) -> None:
    """Levels where a component is not detected (``comps[name]["detected"]`` False): no area, no error,
    no covariance, so it is left out of that level's atomic % (in place; ``cov`` in ``comps`` order)."""
    for k_, o in enumerate(comps.values()):
        nd = ~o["detected"]
        if nd.any():
            for key in ("area", "area_stderr", "center_stderr", "fwhm_stderr"):
                o[key] = np.where(nd, np.nan, o[key])
            if cov is not None:
                cov[nd, k_, :] = 0.0
                cov[nd, :, k_] = 0.0


def _level_checks(region, spec, x, S, env, vals, curves_p, weights, noise, out) -> list[str]:
    """The toolkit's after-fit checks (:func:`~specproc.fitting.fit.fit_checks`) of every level of a
    stack fit (``vals``: parameter name -> (levels,) values); marks ``out[name]["detected"]`` and
    returns the warnings, one per kind and component with the levels where it happened (the sentence
    of the first such level)."""
    from ...fitting.fit import fit_checks

    nlev = S.shape[0]
    first: dict[tuple, str] = {}
    where: dict[tuple, list[int]] = {}
    for lv in range(nlev):
        if not np.all(np.isfinite(env[lv])):
            continue
        values = {n: float(v[lv]) for n, v in vals.items()}
        curves = {pre: np.asarray(c, float)[lv] for pre, c in curves_p.items() if np.ndim(c)}
        w = None if weights is None else np.asarray(weights, float)[lv]
        ws, undetected = fit_checks(spec, x, S[lv], env[lv], values, float(noise[lv]), curves=curves, weights=w,
                                    unit="eV")
        for n in undetected:
            out[n]["detected"][lv] = False
        for msg in ws:
            if msg.startswith("no signal near"):
                key = ("signal", msg.split(", where ", 1)[-1].split(" was given", 1)[0])
            elif msg.startswith("unexplained signal"):
                key = ("unexplained",)
            else:
                key = ("moved", msg.split(":")[0])
            first.setdefault(key, msg)
            where.setdefault(key, []).append(lv)
    warns = []
    for key, msg in first.items():
        lvls = where[key]
        mask = np.zeros(nlev, bool)
        mask[lvls] = True
        at = f" (at {len(lvls)} of {nlev} levels {_levels(mask)}; the first one quoted)" if nlev > 1 else ""
        warns.append(f"{region}: {msg}{at}")
    return warns


def fit_auto(region: str, comps: list[Component], x, Y, *, k_area: float = 2.0, k_height: float = 3.0,
             **kw) -> tuple[LevelsFit | None, list[str]]:
    """An automatic (picked) template fitted to every level, without the candidates that are no detection.

    The toolkit's judgement (:func:`~specproc.fitting.fit.not_significant`: area within ``k_area``
    standard errors of 0, no positive area or a height below ``k_height`` noise SDs) is applied at every
    level; a candidate that is no detection at every level is removed and the rest refitted, as
    :func:`~specproc.fitting.fit.drop_undetected` does for one spectrum: every candidate without
    signal at once, else the one with the smallest area / standard error.

    Returns
    -------
    (LevelsFit or None, warnings)
        None when no candidate is left.
    """
    from ...fitting.fit import not_significant

    dropped: list[str] = []
    while True:
        sf = fit_levels(region, comps, x, Y, given=False, **kw)
        nlev = sf.Y.shape[0]
        weak, empty = None, set()
        score = {}
        weak_at = []
        for lv in range(nlev):
            rows = []
            for n, c in sf.comps.items():
                se = c["area_stderr"][lv]
                rows.append({"name": n, "area": float(c["area"][lv]), "height": float(np.max(sf.curves[n][lv])),
                             "area_stderr": float(se) if np.isfinite(se) else None})
                score[n] = max(score.get(n, -np.inf), abs(c["area"][lv]) / se if np.isfinite(se) and se > 0
                               else (np.inf if c["area"][lv] > 0 else -np.inf))
            w = set(not_significant(rows, float(sf.noise[lv]), k_area=k_area, k_height=k_height))
            weak_at.append(w)
            weak = w if weak is None else weak & w
            e = {r["name"] for r in rows if not (np.isfinite(r["area"]) and r["area"] > 0)
                 or r["height"] < k_height * float(sf.noise[lv])}
            empty = e if lv == 0 else empty & e
        if not weak:
            break
        drop = sorted(empty & weak) or [min(weak, key=lambda n: score[n])]
        dropped += [f"{float(np.nanmedian(sf.comps[n]['center'])):.2f} eV" for n in drop]
        comps = [c for c in comps if c.name not in drop]
        if not comps:
            return None, [f"{region}: no candidate component detected above the noise ({len(dropped)} candidate(s) "
                          f"with an area within {k_area:g} standard errors of 0 or a height below {k_height:g}x the "
                          "noise): region not quantified"]
    # a component detected at some levels only: not detected (NaN, out of the at %) where it is no detection
    msgs = []
    for n, c in sf.comps.items():
        lv_weak = np.array([n in w for w in weak_at])
        if lv_weak.any():
            c["detected"] = c["detected"] & ~lv_weak
            msgs.append(f"{region}: {n} not detected above the noise at {int(lv_weak.sum())} of {nlev} level(s) "
                        f"{_levels(lv_weak)} (area within {k_area:g} standard errors of 0 or height below "
                        f"{k_height:g}x the noise): no area there, left out of those levels' atomic %")
    _mask_undetected(sf.comps, sf.area_cov)
    if not dropped:
        return sf, msgs
    return sf, msgs + [f"{region}: {len(dropped)} candidate component(s) not detected above the noise (area within "
                f"{k_area:g} standard errors of 0 or height below {k_height:g}x the noise), left out of the result: "
                + ", ".join(dropped)]


def end_channels(n: int) -> int:
    """Channels averaged at each end of a region for its background: 5 % of the region, 3 to 10."""
    return int(np.clip(n // 20, 3, 10))


def _levels(mask, n=6):
    idx = np.flatnonzero(mask).tolist()
    return "[" + ", ".join(map(str, idx[:n])) + (", …]" if len(idx) > n else "]")


# ------------------------------------------------------------------ charge referencing
def parse_charge_ref(text: str | None):
    """``"C 1s=284.8"`` / ``"N 1s:Li3N=398.6"`` -> (region, component or None, BE); None/"none" -> None."""
    if text is None or str(text).strip().lower() in ("", "none", "off"):
        return None
    t = str(text)
    if "=" not in t:
        raise ParameterError(f"charge_ref: expected 'REGION[:COMPONENT]=BE' (e.g. 'C 1s=284.8'), got {text!r}")
    left, _, val = t.rpartition("=")
    try:
        be = float(val)
    except ValueError:
        raise ParameterError(f"charge_ref: {val!r} is not a binding energy") from None
    if not np.isfinite(be):
        raise ParameterError("charge_ref: binding energy must be finite")
    reg, _, comp = left.partition(":")
    return reg.strip(), (comp.strip() or None), be


def charge_reference(m, ref, template: dict, *, background="shirley", max_shift=10.0, weights=True,
                     min_snr=5.0):
    """Charge shift (eV, added to every binding energy) from a reference line, one value for all levels.

    The reference region is fitted at every level with its template (or a single GL(30) line) whose
    components keep their template spacing (positions linked to the reference component). A coarse
    search over the shift (non-negative least squares of the template lines on the level-summed spectrum)
    starts the fit, so charging of several eV is found. The shift is the weighted mean over the levels
    where the reference component is significant (height > ``min_snr`` x its standard error); its error
    is the larger of the formal one and the scatter between levels.

    Returns
    -------
    dict ``{"shift", "stderr", "region", "component", "reference_eV", "levels" (table rows), "warnings"}``
    """
    from scipy.optimize import nnls

    from ...fitting.components import gl_product

    region, cname, be_ref = ref
    x, Y = region_data(m, region)
    comps = [c.model_copy() for c in template.get(region, [])]
    if not comps:
        comps = [Component(name=cname or region, center=be_ref, fwhm=1.5)]
    if cname is None:
        refc = min(comps, key=lambda c: abs(c.center - be_ref))
    else:
        hits = [c for c in comps if c.name == cname]
        if not hits:
            raise ParameterError(f"charge_ref: no component {cname!r} in the {region} template")
        refc = hits[0]
    # template positions relative to the reference line at be_ref
    rel = {c.name: c.center - refc.center for c in comps}
    B = bgs.background("shirley" if background.startswith("shirley") else background, x, Y)
    S = (Y - B).sum(axis=0)
    best = (np.inf, 0.0)
    lo_x, hi_x = float(np.min(x)), float(np.max(x))
    for d in np.arange(-max_shift, max_shift + 1e-9, 0.05):
        pos = be_ref - d  # where the reference line sits on the uncorrected axis for a shift d
        if not (lo_x <= pos <= hi_x):
            continue
        A = np.column_stack([gl_product(x, 1.0, pos + rel[c.name], c.fwhm, c.mixing) for c in comps])
        _, rn = nnls(A, S)
        if rn < best[0]:
            best = (rn, d)
    d0 = best[1]
    fit_comps = []
    for c in comps:
        d = c.model_dump()
        d["center"] = be_ref - d0 + rel[c.name]
        if c.name == refc.name:
            d["offset_from"] = None
        else:
            d["offset_from"] = {"component": refc.name, "offset": rel[c.name]}
        fit_comps.append(Component.model_validate(d))
    w = poisson_weights(m, Y) if weights else None
    sf = fit_levels(region, fit_comps, x, Y, background=background, weights=w, checks=False,
                    line=_ref_line(region, ref))
    r = sf.comps[refc.name]
    cen, se = r["center"], r["center_stderr"]
    # significance: area over its error
    snr = np.where(np.isfinite(r["area_stderr"]) & (r["area_stderr"] > 0), r["area"] / r["area_stderr"], 0.0)
    ok = np.isfinite(cen) & np.isfinite(se) & (se > 0) & (snr > min_snr) & sf.stats["success"].astype(bool)
    warns = []
    rows = [{"level": i, "reference_center_eV": float(cen[i]), "stderr": None if not np.isfinite(se[i]) else float(se[i]),
             "used": bool(ok[i])} for i in range(len(cen))]
    if not ok.any():
        warns.append(f"charge reference {region} ({refc.name}) not significant at any level: no charge correction")
        return {"shift": 0.0, "stderr": None, "region": region, "component": refc.name, "reference_eV": be_ref,
                "levels": rows, "warnings": warns, "n_used": 0}
    wts = 1.0 / se[ok] ** 2
    mean = float(np.sum(wts * cen[ok]) / np.sum(wts))
    formal = float(np.sqrt(1.0 / np.sum(wts)))
    n = int(ok.sum())
    scatter = float(np.std(cen[ok], ddof=1) / np.sqrt(n)) if n > 1 else 0.0
    spread = float(np.ptp(cen[ok])) if n > 1 else 0.0
    if spread > 0.3:
        warns.append(f"charge reference {region} ({refc.name}) moves by {spread:.2f} eV between levels "
                     "(differential charging?); one mean shift applied to all levels")
    return {"shift": be_ref - mean, "stderr": max(formal, scatter), "region": region, "component": refc.name,
            "reference_eV": be_ref, "measured_eV": mean, "levels": rows, "warnings": warns, "n_used": n}


def region_picks(x, Y, line: str | None = None, *, snr: float = 8.0, max_peaks: int = 4) -> list[dict]:
    """Prominent peaks of the level-summed, Shirley-subtracted region, ascending in BE.

    The toolkit's :func:`~specproc.fitting.peaks.pick_peaks` at ``snr`` noise SDs, the noise from first
    differences (XPS counts carry white counting noise; a region is mostly signal, so an estimate
    from signal-free stretches, which broad lines leave few of, came out 5-10x too high and missed the
    Mo 3d and N 1s lines of the MultiPak file). For a doublet ``line`` a pick at a partner's position
    is dropped.
    """
    from ...fitting.noise import noise_sigma
    from ...fitting.peaks import pick_peaks
    from .lines import splitting

    x = np.asarray(x, float)
    Y = np.atleast_2d(np.asarray(Y, float))
    S = (Y - bgs.shirley(x, Y)).sum(axis=0)
    cands = pick_peaks(x, S, noise=noise_sigma(S, "diff"), snr=snr, max_peaks=max_peaks)
    d = splitting(line) if line else None
    keep = []
    for c in sorted(cands, key=lambda c: c["center"]):
        if d and any(abs(c["center"] - (k["center"] + d[0])) < max(0.4, 0.15 * d[0]) for k in keep):
            continue
        keep.append(c)
    return keep


def _ref_line(region, ref):
    from .rsf import normalise_line

    return normalise_line(region.split(" (block ")[0].split(" #")[0]) or normalise_line(ref[0])

