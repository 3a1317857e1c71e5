"""AFM analyses behind the processors (``processors.py`` holds only their parameters and names).

:func:`analyse_map`: height maps (levelling, roughness, protrusions) and modulus maps (validity,
statistics); :func:`force_map_result`: a force map fitted curve by curve (:mod:`.force`) and its moduli
summarised; the map and histogram plot specs and the modulus block both use.
"""
from __future__ import annotations

import numpy as np

from ...core.errors import ParameterError, ProcessingError
from ...core.measurement import check_measurement, label
from ...core.result import Quantities, Result
from .force import FLAGS, FORCE_TYPES

_MAX_PLOT_PX = 128   # maps in plots are block-averaged to at most this many pixels a side (report size)


# ------------------------------------------------------------------ helpers


def force_heights(m):
    """Heights (m) of every point of a force map ``(y, x, n)``: the ``height`` coordinate of the force
    reader (same dims), else the last dim's coordinate when it is in m (one ramp for every curve, e.g.
    a NetCDF force volume)."""
    src = m.attrs.get("provenance", {}).get("source")
    if m.attrs.get("signal_type") not in FORCE_TYPES:
        raise ProcessingError("not a force map (signal_type force_volume; read a JPK .jpk-force(-map), "
                              "Asylum .ibw or a NetCDF force volume)", src)
    if m.ndim != 3 or tuple(m.dims[:2]) != ("y", "x"):
        raise ProcessingError(f"force map must have dims (y, x, <curve axis>), not {m.dims}", src)
    if m.attrs.get("units") != "N":
        raise ProcessingError(f"force map values must be force in N, not {m.attrs.get('units')!r}", src)
    if "height" in m.coords and m.coords["height"].dims == m.dims:
        if m.coords["height"].attrs.get("units") != "m":
            raise ProcessingError("height coordinate must be in m", src)
        return np.asarray(m.coords["height"].values, float)
    last = m.dims[-1]
    if last in m.coords and m.coords[last].attrs.get("units") == "m":
        return np.broadcast_to(np.asarray(m.coords[last].values, float), m.shape)
    raise ProcessingError(f"no heights: need a 'height' coordinate on {m.dims} or the curve axis {last!r} in m",
                          src)


def _coarse(z, n=_MAX_PLOT_PX):
    """Block-mean a map to at most ``n`` pixels a side (NaN-aware) for plots."""
    z = np.asarray(z, float)
    fy, fx = max(1, -(-z.shape[0] // n)), max(1, -(-z.shape[1] // n))
    if fy == 1 and fx == 1:
        return z, 1, 1
    ny, nx = z.shape[0] // fy * fy, z.shape[1] // fx * fx
    blocks = z[:ny, :nx].reshape(ny // fy, fy, nx // fx, fx)
    # NaN-aware block mean written as sum / count: np.nanmean warns for an all-NaN block, and
    # silencing it with warnings.catch_warnings is not thread-safe; np.errstate is (per thread)
    ok = np.isfinite(blocks)
    with np.errstate(all="ignore"):
        return (np.where(ok, blocks, 0.0).sum(axis=(1, 3)) / ok.sum(axis=(1, 3)), fy, fx)


def map_plot(z, x_m, y_m, title, z_label, scale=1.0):
    zc, fy, fx = _coarse(np.asarray(z, float) * scale)
    xs = np.asarray(x_m, float)[: zc.shape[1] * fx].reshape(-1, fx).mean(1) * 1e6
    ys = np.asarray(y_m, float)[: zc.shape[0] * fy].reshape(-1, fy).mean(1) * 1e6
    # 4 significant digits of the map's range are plenty for a colour scale and keep the report small
    fin = np.isfinite(zc)
    span = float(np.nanmax(np.abs(zc))) if fin.any() else 1.0
    dec = int(max(0, 3 - np.floor(np.log10(span)))) if span > 0 else 3
    return {"kind": "map", "title": title, "z": np.where(fin, np.round(zc, dec), np.nan), "x": np.round(xs, 4),
            "y": np.round(ys, 4),
            "x_label": "x (µm)", "y_label": "y (µm)", "z_label": z_label}


def histogram_plot(values, title, x_label, scale=1.0, bins=60, name="pixels", max_values=10000):
    """Histogram spec of ``values`` (scaled); at most ``max_values`` evenly strided values are kept
    so the report stays small (the exact counts are in the result's table)."""
    v = np.asarray(values, float).ravel()
    v = v[np.isfinite(v)]
    if v.size > max_values:
        v = v[:: int(np.ceil(v.size / max_values))]
    v = v * scale
    span = float(np.abs(v).max()) if v.size else 1.0
    dec = int(max(0, 4 - np.floor(np.log10(span)))) if span > 0 else 4
    return {"kind": "histogram", "title": title, "series": [{"name": name, "values": np.round(v, dec)}],
            "x_label": x_label, "y_label": "count", "bins": int(bins)}


def _pick(m, wanted, unit, prefer=()):
    names = [str(c) for c in m.coords["channel"].values]
    units = list(m.attrs.get("channel_units") or [m.attrs.get("units")] * len(names))
    if wanted is not None:
        hit = [i for i, n in enumerate(names) if n == wanted] or [i for i, n in enumerate(names)
                                                                   if n.lower() == wanted.lower()]
        if not hit:
            raise ParameterError(f"no channel {wanted!r}; channels: {', '.join(names)}",
                                 m.attrs.get("provenance", {}).get("source"))
        return hit[0], names[hit[0]], units[hit[0]]
    cands = [i for i, u in enumerate(units) if u == unit]
    for p in prefer:
        for i in cands:
            if p in names[i].lower():
                return i, names[i], units[i]
    return (cands[0], names[cands[0]], units[cands[0]]) if cands else (None, None, None)


def _channels(m):
    """(values (channel, y, x), names, units) of an AFM map measurement (2D maps get one channel)."""
    if m.dims == ("y", "x"):
        name = m.name or "channel"
        return m.values[None], [str(name)], [m.attrs.get("units", "")]
    if tuple(m.dims) != ("channel", "y", "x"):
        raise ProcessingError(f"AFM map must have dims (channel, y, x) or (y, x), not {m.dims}",
                              m.attrs.get("provenance", {}).get("source"))
    return m.values, [str(c) for c in m.coords["channel"].values], list(m.attrs.get("channel_units") or [])


def modulus_block(E, valid, reasons, st, p, x_m, y_m, title_prefix, warnings_, quantities, tables, plots,
                  source=None):
    """Shared modulus quantities, tables and plots (modulus map channel or fitted force map)."""
    import pandas as pd

    from .modulus import histogram

    quantities.add("modulus", "mean_Pa", st["mean_Pa"], st["mean_stderr_Pa"], "Pa", "mean Young's modulus")
    quantities.add("modulus", "mean_GPa", st["mean_Pa"] / 1e9, None if st["mean_stderr_Pa"] is None
                   else st["mean_stderr_Pa"] / 1e9, "GPa", "mean Young's modulus")
    quantities.add("modulus", "median_Pa", st["median_Pa"], None, "Pa", "median Young's modulus")
    quantities.add("modulus", "std_Pa", st["std_Pa"], None, "Pa", "pixel-to-pixel SD")
    quantities.add("modulus", "n_valid", st["n_valid"], None, "", "valid pixels")
    quantities.add("modulus", "n_invalid", st["n_invalid"], None, "", "masked pixels")
    if st["mean_stderr_Pa"] is None:
        warnings_.append("modulus map too small for a block standard error: mean has no error bar")
    frac = st["n_invalid"] / max(st["n_valid"] + st["n_invalid"], 1)
    if frac > 0.05:
        warnings_.append(f"{100 * frac:.1f} % of modulus pixels invalid ({', '.join(f'{k} {v}' for k, v in reasons.items() if v)})")
    counts, edges = histogram(E, valid, p.histogram_bins if hasattr(p, "histogram_bins") else 60)
    tables["modulus_histogram"] = pd.DataFrame({"E_lo_Pa": edges[:-1], "E_hi_Pa": edges[1:], "count": counts})
    tables["modulus_stats"] = pd.DataFrame([{**st, **{f"invalid_{k}": v for k, v in reasons.items()}}])
    plots.append(map_plot(np.where(valid, E, np.nan), x_m, y_m, f"{title_prefix}: Young's modulus (invalid masked)",
                          "E (GPa)", 1e-9))
    plots.append(histogram_plot(E[valid], f"{title_prefix}: modulus histogram", "E (GPa)", 1e-9, len(counts)))



# ------------------------------------------------------------------ analyses
def analyse_map(m, p, processor: str = "afm.analyse_map") -> Result:
    """Height map: levelling, roughness, protrusions; modulus map: validity and statistics (``p``: the
    processor's ``MapParams``)."""
    import pandas as pd

    check_measurement(m, "afm")
    src = m.attrs.get("provenance", {}).get("source")
    vals, names, units = _channels(m)
    x_m, y_m = m.coords["x"].values, m.coords["y"].values
    if m.coords["x"].attrs.get("units") != "m" or m.coords["y"].attrs.get("units") != "m":
        raise ProcessingError("map axes must be in m", src)
    dx = float(np.abs(np.diff(x_m)).mean()) if x_m.size > 1 else float("nan")
    dy = float(np.abs(np.diff(y_m)).mean()) if y_m.size > 1 else float("nan")
    ih, hname, hunit = _pick(m, p.channel, "m", ("height", "topo", "z"))
    im, mname, munit = _pick(m, p.modulus_channel, "Pa", ("modulus", "dmt", "young"))
    if p.channel is not None and hunit != "m":
        raise ParameterError(f"channel {hname!r} is in {hunit!r}, not m: not a height channel", src)
    if p.modulus_channel is not None and munit != "Pa":
        raise ParameterError(f"channel {mname!r} is in {munit!r}, not Pa: not a modulus channel", src)
    if ih is None and im is None:
        raise ProcessingError(f"no height (m) or modulus (Pa) channel among {names} ({units})", src)
    q, tables, plots, warns, stats, meta = Quantities(), {}, [], [], {}, {}
    sample = label(m)
    summary = {"sample": sample}
    if ih is not None:
        from . import grains, levelling, roughness

        if np.isfinite(vals[ih]).sum() < 16:
            raise ProcessingError(f"height channel {hname!r} has fewer than 16 finite pixels", src)
        z, info = levelling.level(vals[ih], p.level, p.outlier_sigma)
        if info["n_outliers"] > 0.01 * z.size:
            warns.append(f"{info['n_outliers']} height pixels ({100 * info['n_outliers'] / z.size:.1f} %) "
                         "replaced as spikes/scars")
        ra = roughness.areal(z)
        if ra["Sq_m"] == 0 or ra["Sq_m"] < 1e-6 * max(abs(float(np.nanmedian(vals[ih]))), 1e-30):
            warns.append(f"height channel {hname!r} is flat (constant): no topography "
                         "(constant-height mode or Z feedback off?)")
        rl = roughness.lines(z)
        for k, v in {**ra, "Ra_m": rl["Ra_m"], "Rq_m": rl["Rq_m"]}.items():
            unit = "m" if k.endswith("_m") else ""
            err = rl["Ra_sd_m"] / np.sqrt(rl["n_lines"]) if k == "Ra_m" else (
                rl["Rq_sd_m"] / np.sqrt(rl["n_lines"]) if k == "Rq_m" else None)
            q.add("roughness", k, v, err, unit, f"{k.split('_')[0]} of the levelled height")
        rows, ginfo = grains.detect(z, dx, dy, threshold_sigma=p.protrusion_threshold_sigma,
                                    min_height_m=p.protrusion_min_height_m, min_area_px=p.protrusion_min_area_px)
        area_um2 = z.shape[0] * dy * z.shape[1] * dx * 1e12
        n = len(rows)
        q.add("protrusions", "count", n, None, "", "protrusions detected")
        q.add("protrusions", "density_per_um2", n / area_um2, np.sqrt(n) / area_um2, "1/um^2",
             "protrusions per µm² (stderr: Poisson)")
        if n:
            q.add("protrusions", "mean_height_m", float(np.mean([r["height_m"] for r in rows])),
                  None, "m", "mean protrusion height")
        q.add("protrusions", "area_fraction", float(sum(r["area_m2"] for r in rows)) / (area_um2 * 1e-12),
              None, "", "fraction of the area covered")
        if any(r["touches_edge"] for r in rows):
            warns.append(f"{sum(r['touches_edge'] for r in rows)} protrusion(s) cut by the image edge "
                         "(areas underestimated)")
        tables["protrusions"] = pd.DataFrame(rows, columns=["id", "x_m", "y_m", "height_m", "area_m2",
                                                            "equivalent_diameter_m", "n_pixels", "touches_edge"])
        meta.update(height_channel=hname, level=p.level, n_outliers=info["n_outliers"],
                    protrusion_threshold_m=ginfo["threshold_m"])
        summary.update({"height_channel": hname, **{k: v for k, v in ra.items()}, "Ra_m": rl["Ra_m"],
                        "Rq_m": rl["Rq_m"], "protrusion_count": n, "protrusion_density_per_um2": n / area_um2,
                        "n_outliers": info["n_outliers"]})
        plots.append(map_plot(z, x_m, y_m, f"{sample}: levelled height ({hname}, {p.level})", "height (nm)", 1e9))
        if n:
            hs = np.array([r["height_m"] for r in rows])
            plots.append(histogram_plot(hs, f"{sample}: protrusion heights", "height (nm)", 1e9,
                                        min(30, max(5, n // 2)), name="protrusions"))
    if im is not None:
        from .modulus import stats as mstats
        from .modulus import valid_mask

        E = vals[im]
        valid, reasons = valid_mask(E, max_Pa=p.modulus_max_Pa, spike_sigma=p.modulus_spike_sigma)
        st = mstats(E, valid)
        modulus_block(E, valid, reasons, st, p, x_m, y_m, sample, warns, q, tables, plots)
        meta["modulus_channel"] = mname
        summary.update({"modulus_channel": mname, "E_mean_Pa": st["mean_Pa"], "E_median_Pa": st["median_Pa"],
                        "E_std_Pa": st["std_Pa"], "n_valid": st["n_valid"], "n_invalid": st["n_invalid"]})
    tables["summary"] = pd.DataFrame([summary])
    acq = m.attrs.get("acquisition", {})
    meta.update(channels=names, channel_units=units, scan_size_x_m=acq.get("scan_size_x_m"),
                scan_size_y_m=acq.get("scan_size_y_m"), kind="map")
    return Result(processor=processor, technique="afm", sample=sample, quantities=q, tables=tables,
                  main_table="summary", plots=plots, params=p.model_dump(),
                  inputs=[dict(m.attrs.get("provenance", {}))], stats=stats, warnings=warns, meta=meta)


def force_map_result(m, p, limits=None, processor: str = "afm.fit_force_map") -> Result:
    """Every approach curve of a force map fitted (:func:`~.force.fit_force_map`), its moduli checked and
    summarised. ``p``: ``ForceParams``; ``limits``: the ``MapParams`` whose modulus validity limits and
    histogram bins apply (default: their defaults)."""
    import pandas as pd

    from .force import fit_force_map
    from .modulus import stats as mstats
    from .modulus import valid_mask

    check_measurement(m, "afm")
    src = m.attrs.get("provenance", {}).get("source")
    heights = force_heights(m)
    acq = m.attrs.get("acquisition", {})
    k = acq.get("spring_constant_N_per_m") if p.use_spring_constant else None
    if p.use_spring_constant and not k:
        k = None
    try:
        ds = fit_force_map(heights, m.values, model=p.model, tip_radius_m=p.tip_radius_m,
                           poisson_ratio=p.poisson_ratio, half_angle_deg=p.half_angle_deg,
                           spring_constant_N_per_m=k, max_indentation_m=p.max_indentation_m,
                           baseline_fraction=p.baseline_fraction, baseline=p.baseline,
                           contact_threshold_sigma=p.contact_threshold_sigma,
                           z0_m=p.z0_m, x_m=m.coords["x"].values, y_m=m.coords["y"].values)
    except ParameterError as exc:
        raise ParameterError(exc.reason, src) from None
    sample = label(m)
    warns = []
    if p.use_spring_constant and k is None:
        warns.append("no spring constant in the file: fitted against piezo height (cantilever bending not removed)")
    E = ds["E_Pa"].values
    good = ds["good"].values
    nbad = int((~good).sum())
    if nbad:
        fl = ds["flag"].values
        parts = [f"{int(((fl & b) > 0).sum())} {t}" for b, t in FLAGS.items() if ((fl & b) > 0).any()]
        warns.append(f"{nbad} of {good.size} curves flagged: " + "; ".join(parts))
    sug = ds.attrs.get("suggested_model", "")
    if sug.startswith(("dmt", "jkr")) and not sug.startswith(p.model):
        warns.append(f"Tabor parameter {ds.attrs['tabor_mu']:.3g} suggests {sug}; fitted {p.model}")
    if sug.startswith("transition") and p.model not in ("dmt", "jkr"):
        warns.append(f"Tabor parameter {ds.attrs['tabor_mu']:.3g}: adhesive contact ({sug}); fitted {p.model}")
    q, tables, plots = Quantities(), {}, []
    Eg = np.where(good, E, np.nan)
    if not good.any():
        raise ProcessingError(f"no force curve could be fitted ({warns[-1] if warns else ''})", src)
    valid, reasons = valid_mask(Eg, max_Pa=getattr(limits, "modulus_max_Pa", 1e12),
                                spike_sigma=getattr(limits, "modulus_spike_sigma", 8.0))
    st = mstats(Eg, valid)
    if good.size == 1:
        se = float(ds["E_stderr_Pa"].values.ravel()[0])
        st["mean_stderr_Pa"] = se if np.isfinite(se) else None
    elif st["mean_stderr_Pa"] is None and st["n_valid"] > 1:
        st["mean_stderr_Pa"] = st["std_Pa"] / np.sqrt(st["n_valid"])
    modulus_block(Eg, valid, reasons, st, limits or p, ds.x.values, ds.y.values, sample, warns, q, tables,
                  plots)
    if E.size > 1:
        plots.append(map_plot(ds["contact_point_m"].values, ds.x.values, ds.y.values,
                              f"{sample}: contact point", "contact height (nm)", 1e9))
    else:
        plots.pop(0)  # a single curve: no map
    plots.append(curve_plot(m, ds, p, k, sample))
    yy, xx = np.meshgrid(np.arange(E.shape[0]), np.arange(E.shape[1]), indexing="ij")
    cols = {"y_index": yy.ravel(), "x_index": xx.ravel(),
            "x_m": np.broadcast_to(ds.x.values[None, :], E.shape).ravel(),
            "y_m": np.broadcast_to(ds.y.values[:, None], E.shape).ravel()}
    for v in ("E_Pa", "E_stderr_Pa", "contact_point_m", "contact_point_stderr_m", "max_indentation_m",
              "n_contact_points", "residual_rms_N", "r2", "adhesion_N", "work_of_adhesion_J_m2", "flag"):
        if v in ds:
            cols[v] = ds[v].values.ravel()
    t = pd.DataFrame(cols)
    t.insert(4, "model", p.model)
    t["quality"] = ["good" if f == 0 else "; ".join(txt for b, txt in FLAGS.items() if f & b) for f in t["flag"]]
    tables = {"curves": t, **tables}
    q.add("force", "tabor_mu", ds.attrs["tabor_mu"], None, "", "Tabor parameter")
    q.add("force", "n_good", int(good.sum()), None, "", "curves fitted without flags")
    meta = {"kind": "force_map", "model": p.model, "tip_radius_m": p.tip_radius_m,
            "half_angle_deg": p.half_angle_deg, "poisson_ratio": p.poisson_ratio,
            "suggested_model": sug, "spring_constant_N_per_m": k, "channels": ["force"],
            "grid_shape": list(E.shape)}
    return Result(processor=processor, technique="afm", sample=sample, quantities=q, tables=tables,
                  main_table="curves", plots=plots, params=p.model_dump(),
                  inputs=[dict(m.attrs.get("provenance", {}))],
                  stats={"fit_s": ds.attrs["fit_s"], "method": ds.attrs["method"], "n_curves": int(E.size),
                         "n_good": int(good.sum())}, warnings=warns, meta=meta, data=ds)


def curve_plot(m, ds, p, k, sample):
    """The curve with the median modulus: data and fitted model against indentation axis."""
    from . import force as FM
    from ...fitting import components as C

    E = ds["E_Pa"].values
    good = ds["good"].values
    Eg = np.where(good, E, np.nan)
    med = np.nanmedian(Eg)
    iy, ix = np.unravel_index(np.nanargmin(np.abs(Eg - med)), E.shape)
    h = force_heights(m)[iy, ix]
    F = m.values[iy, ix]
    ok = np.isfinite(h) & np.isfinite(F)  # a ragged map pads short curves with NaN at the end
    h, F = h[ok], F[ok]
    d = -(h + F / k) if k else -h
    cp = -float(ds["contact_point_m"].values[iy, ix])
    e = float(E[iy, ix])
    R, nu = p.tip_radius_m or 0.0, p.poisson_ratio
    # the fitted model on the baseline-corrected force, shifted back onto the recorded force:
    # the baseline the fit removed (a constant or a line through the first points) and its tilt
    nb = max(10, int(p.baseline_fraction * d.size))
    order = np.argsort(d)
    if ds.attrs.get("baseline", p.baseline) == "offset":
        line = np.full((1, d.size), float(np.mean(F[order][:nb])))
    else:
        Fc, _ = FM.baseline_line(d[order][None], F[order][None], nb)
        line = F[order][None] - Fc
    base = float(ds["baseline_N"].values[iy, ix])
    dd = d[order]
    if "tilt_N_per_m" in ds:
        tilt = float(ds["tilt_N_per_m"].values[iy, ix])
        line = line + (tilt * (dd - cp) if np.isfinite(tilt) else 0.0)
    if p.model == "hertz-paraboloid":
        f = C.hertz_paraboloid(dd, e, R, nu, cp, base)
    elif p.model == "dmt":
        f = C.dmt(dd, e, R, nu, float(ds["adhesion_N"].values[iy, ix]), cp, base)
    elif p.model == "cone":
        f = C.sneddon_cone(dd, e, p.half_angle_deg, nu, cp, base)
    elif p.model == "pyramid":
        f = C.sneddon_cone(dd, e * FM.BILODEAU / (2 / np.pi), p.half_angle_deg, nu, cp, base)
    elif p.model == "hertz-sphere":
        f = FM.hertz_sphere(dd, e, R, nu, cp, base)
    else:
        f = FM.jkr(dd, e, float(ds["work_of_adhesion_J_m2"].values[iy, ix]), R, nu, cp, base)
    f = f + line[0]
    x_nm = (dd - cp) * 1e9
    return {"kind": "spectrum", "title": f"{sample}: curve (y={iy}, x={ix}), E = {e / 1e9:.4g} GPa ({p.model})",
            "x": x_nm, "x_label": "indentation δ = d − d₀ (nm)", "y_label": "force (nN)",
            "series": [{"name": "approach", "y": F[order] * 1e9, "role": "data"},
                       {"name": f"{p.model} fit", "y": f * 1e9, "role": "fit"}]}
