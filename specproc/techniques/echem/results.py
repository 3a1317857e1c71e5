"""Results of the echem analyses: quantities (named for claims), tables, plot specs."""
from __future__ import annotations

import math

import numpy as np

from ...core.measurement import label
from ...core.result import Quantities, Result
from .common import q

PROCESSOR = "echem.analyse"


def _result(m, kind: str, quantities: dict, tables: dict, plots, params: dict, warnings: list, meta: dict,
            main: str | None = None, stats: dict | None = None) -> Result:
    prov = m.attrs.get("provenance") or {}
    return Result(processor=PROCESSOR, technique="echem", sample=str(m.attrs.get("sample") or label(m)),
                  quantities=quantities, tables=tables, plots=plots, params=params, inputs=[dict(prov)] if prov else [],
                  stats=stats or {}, warnings=list(dict.fromkeys(warnings)), main_table=main, meta={"kind": kind, **meta})


# ------------------------------------------------------------------------------------------ plots
def nyquist(title: str, curves: list[tuple[str, np.ndarray, np.ndarray | None]]) -> dict:
    """Nyquist plot (``xy``): ``-Im Z`` against ``Z'``; ``curves`` = [(name, Z data, Z fit or None)]."""
    series = []
    for name, z, zf in curves:
        series.append({"name": name, "x": np.real(z), "y": -np.imag(z), "mode": "markers"})
        if zf is not None:
            series.append({"name": f"{name} fit", "x": np.real(zf), "y": -np.imag(zf), "mode": "lines"})
    x0 = np.real(curves[0][1])
    return {"kind": "xy", "title": title, "x": x0, "x_label": "Z' (Ω)", "y_label": "-Z'' (Ω)", "series": series}


def bode(title: str, f, z, zf) -> dict:
    lf = np.log10(f)
    return {"kind": "xy", "title": title, "x": lf, "x_label": "log10(f / Hz)", "y_label": "log10 |Z| (Ω) · phase (°)",
            "series": [{"name": "log10 |Z|", "y": np.log10(np.abs(z)), "mode": "markers"},
                       {"name": "log10 |Z| fit", "y": np.log10(np.abs(zf)), "mode": "lines"},
                       {"name": "-phase (°) / 10", "y": -np.degrees(np.angle(z)) / 10, "mode": "markers"},
                       {"name": "-phase fit (°) / 10", "y": -np.degrees(np.angle(zf)) / 10, "mode": "lines"}]}


def kk_plot(title: str, f, z, zkk) -> dict:
    mod = np.abs(z)
    return {"kind": "xy", "title": title, "x": np.log10(f), "x_label": "log10(f / Hz)",
            "y_label": "(Z - Z_KK)/|Z| (%)",
            "series": [{"name": "real", "y": 100 * (z.real - zkk.real) / mod, "mode": "lines+markers"},
                       {"name": "imaginary", "y": 100 * (z.imag - zkk.imag) / mod, "mode": "lines+markers"}]}


def _eis_plots(name: str, d: dict) -> list:
    out = [nyquist(f"Nyquist — {name}", [(name, d["Z"], d["Z_fit"])])]
    rb = d["R_bulk_ohm"]
    if rb and np.isfinite(rb) and np.max(np.abs(d["Z"])) > 10 * rb:
        zoom = nyquist_zoom(f"Nyquist, electrolyte region (Z / R_bulk) — {name}", [(name, d["Z"], d["Z_fit"], rb)])
        if zoom is not None:
            out.append(zoom)
    return out + [bode(f"Bode — {name}", d["f"], d["Z"], d["Z_fit"]),
                  kk_plot(f"Kramers–Kronig residuals — {name}", d["f"], d["Z"], d["kk_fit"])]


# ------------------------------------------------------------------------------------------ EIS
def _param_rows(d: dict, extra: dict | None = None) -> list[dict]:
    return [{**(extra or {}), **p} for p in d["parameters"]]


def _meta_eis(d: dict, geo) -> dict:
    return {"circuit": d["circuit"], "temperature_C": d["temperature_C"], "thickness_cm": geo.thickness_cm,
            "area_cm2": geo.area_cm2, "area_source": geo.area_source, "arcs": d["arcs"], "kk": d["kk"],
            "fit": d["fit"], "R_bulk_resistors": d["R_bulk_resistors"]}


def eis_result(m, d: dict, params: dict) -> Result:
    from .eis import quantities_of

    qs = quantities_of(d, None)
    if d["temperature_C"] is not None:
        qs.put(q(None, "temperature_C", d["temperature_C"], None, "degC"))
    name = str(m.attrs.get("sample") or label(m))
    tables = {"parameters": _param_rows(d), "arcs": list(d["arcs"])}
    plots = _eis_plots(name, d)
    meta = {**_meta_eis(d, d["geometry"]), "entry": _entry_of(d)}
    return _result(m, "eis", qs, tables, plots, params, d["warnings"], meta, "parameters",
                   stats={**d["fit"], "fit_s": d["timings"].get("fit")})


def eis_series_result(m, ds: list[dict], arr, params: dict, arr_warn: list) -> Result:
    from . import activation as A
    from .eis import quantities_of, selector

    qs, rows, prows, warns = Quantities(), [], [], []
    for k, d in enumerate(ds):
        sel = selector(m, k)
        qs.update(quantities_of(d, None, sel))
        lab = str(m.coords["label"].values[k]) if "label" in m.coords else sel
        rows.append({"spectrum": sel, "label": lab, "temperature_C": d["temperature_C"], "R_bulk_ohm": d["R_bulk_ohm"],
                     "R_bulk_ohm_stderr": d["R_bulk_ohm_stderr"], "conductivity_S_cm": d["conductivity_S_cm"],
                     "conductivity_S_cm_stderr": d["conductivity_S_cm_stderr"],
                     "kk_max_residual_pct": d["kk"]["max_residual_pct"], "kk_valid": d["kk"]["valid"],
                     "redchi": d["fit"]["redchi"], "warnings": len(d["warnings"])})
        prows += _param_rows(d, {"spectrum": sel, "temperature_C": d["temperature_C"]})
        warns += [f"{sel}: {w}" for w in d["warnings"] if not w.startswith(("no electrolyte thickness", "electrode area",
                                                                             "no electrode area"))]
    geo = ds[0]["geometry"]
    warns = geo.warnings + _grouped(warns) + arr_warn
    tables = {"series": rows, "parameters": prows}
    name = str(m.attrs.get("sample") or label(m))
    plots = []
    if arr is not None:
        qs.update(A.quantities(arr))
        warns += arr.warnings
        plots.append(A.plot(arr, f"Arrhenius — {name}"))
    pick = np.unique(np.linspace(0, len(ds) - 1, min(len(ds), 5)).round().astype(int))
    plots.append(nyquist(f"Nyquist — {name} ({len(pick)} of {len(ds)} spectra)",
                         [(rows[k]["spectrum"], ds[k]["Z"], ds[k]["Z_fit"]) for k in pick]))
    zoom = nyquist_zoom(f"Nyquist, electrolyte region (Z / R_bulk) — {name}",
                        [(rows[k]["spectrum"], ds[k]["Z"], ds[k]["Z_fit"], ds[k]["R_bulk_ohm"]) for k in pick])
    if zoom is not None:
        plots.append(zoom)
    plots += _trend_plots(name, ds, rows, m)
    meta = {"circuit": ds[0]["circuit"], "n_spectra": len(ds), "thickness_cm": geo.thickness_cm,
            "area_cm2": geo.area_cm2, "area_source": geo.area_source,
            "arrhenius": arr.to_dict() if arr is not None else None,
            "entries": [_entry_of(d) for d in ds], "selectors": [r["spectrum"] for r in rows]}
    return _result(m, "eis_series", qs, tables, plots, params, warns, meta, "series",
                   stats={"fit_s": ds[0]["timings"].get("fit"), "n_spectra": len(ds)})


def _grouped(warns: list[str]) -> list[str]:
    """``"T(30C): w"`` warnings that differ only in numbers, said once with the spectra they concern."""
    import re

    groups: dict = {}
    for w in warns:
        sel, _, text = w.partition(": ")
        key = re.sub(r"[-+]?\d[\d.]*(e[-+]?\d+)?", "#", text)
        groups.setdefault(key, []).append((sel, text))
    out = []
    for items in groups.values():
        if len(items) == 1:
            out.append(f"{items[0][0]}: {items[0][1]}")
        else:
            sels = [s for s, _ in items]
            out.append(f"{len(items)} spectra ({sels[0]} ... {sels[-1]}): {items[0][1]}")
    return out


def _trend_plots(name, ds, rows, m) -> list:
    """Resistances across the series (against temperature or cycle)."""
    if "temperature_C" in m.coords:
        x, xl = np.array([r["temperature_C"] for r in rows], float), "temperature (°C)"
    else:
        x, xl = np.arange(1, len(rows) + 1, dtype=float), "spectrum / cycle"
    series = []
    for p in ds[0]["parameters"]:
        if p["unit"] != "Ohm":
            continue
        k = [pp["name"] for pp in ds[0]["parameters"]].index(p["name"])
        y = np.array([d["parameters"][k]["value"] for d in ds])
        err = np.array([d["parameters"][k]["stderr"] if d["parameters"][k]["stderr"] is not None else np.nan for d in ds])
        series.append({"name": p["name"], "x": x, "y": y, "err": np.nan_to_num(err), "mode": "lines+markers"})
    rb = np.array([d["R_bulk_ohm"] if d["R_bulk_ohm"] is not None else np.nan for d in ds], float)
    if np.isfinite(rb).any():
        err = np.array([d["R_bulk_ohm_stderr"] if d["R_bulk_ohm_stderr"] is not None else 0.0 for d in ds])
        series.append({"name": "R_bulk", "x": x, "y": rb, "err": err, "mode": "lines+markers"})
    if not series:
        return []
    return [{"kind": "xy", "title": f"Circuit resistances — {name}", "x": x, "x_label": xl, "y_label": "R (Ω)",
             "series": series}]


def nyquist_zoom(title: str, curves: list[tuple[str, np.ndarray, np.ndarray, float]]) -> dict | None:
    """Nyquist of ``Z / R_bulk`` up to ``Z' <= 3 R_bulk``: the electrolyte's part of each spectrum (an
    electrode tail hundreds of R_bulk long hides it in the full plot); ``curves`` = [(name, Z, Z fit, R_bulk)]."""
    series = []
    for name, z, zf, rb in curves:
        if not (rb and np.isfinite(rb) and rb > 0):
            continue
        k = (z.real <= 3 * rb) & (-z.imag <= 3 * rb)
        if k.sum() < 3:
            continue
        series.append({"name": name, "x": z.real[k] / rb, "y": -z.imag[k] / rb, "mode": "markers"})
        series.append({"name": f"{name} fit", "x": zf.real[k] / rb, "y": -zf.imag[k] / rb, "mode": "lines"})
    if not series:
        return None
    return {"kind": "xy", "title": title, "x": series[0]["x"], "x_label": "Z' / R_bulk", "y_label": "-Z'' / R_bulk",
            "series": series}


def _entry_of(d: dict) -> dict:
    """The JSON entry of one analysed spectrum (the ``specproc echem --json`` contract, without file/sample)."""
    return {"kind": "eis", "temperature_C": d["temperature_C"], "circuit": d["circuit"],
            "parameters": [{"name": p["name"], "value": p["value"], "stderr": p["stderr"]} for p in d["parameters"]],
            "R_bulk_ohm": _fin(d["R_bulk_ohm"]), "R_bulk_ohm_stderr": _fin(d["R_bulk_ohm_stderr"]),
            "conductivity_S_cm": _fin(d["conductivity_S_cm"]),
            "conductivity_S_cm_stderr": _fin(d["conductivity_S_cm_stderr"]),
            "kk": {"max_residual_pct": d["kk"]["max_residual_pct"], "valid": d["kk"]["valid"]},
            # redchi: noise-normalised (≈ 1 for a circuit that explains the spectrum) or null with the reason
            "fit": {k: d["fit"].get(k) for k in ("redchi", "redchi_noise_reason", "noise_source", "redchi_weighted",
                                                 "weighting", "r2", "success") if k in d["fit"]},
            "warnings": list(d["warnings"])}


def _fin(v):
    return None if v is None or not math.isfinite(float(v)) else float(v)


# ------------------------------------------------------------------------------------------ polarisation
def polarisation_result(m, d: dict, params: dict) -> Result:
    name = str(m.attrs.get("sample") or label(m))
    qs = Quantities()
    for x in (q(None, "delta_V", d["delta_V"], None, "V"), q(None, "Iss_A", d["Iss_A"], d["Iss_A_stderr"], "A"),
              q(None, "I0_A", d["I0_A"], d["I0_A_stderr"], "A")):
        qs.put(x)
    if d["cell"] == "symmetric":
        qs.put(q(None, "transference_number", d["transference_number"], d["transference_number_stderr"], "",
                 "Bruce–Vincent Li+ transference number"))
        qs.put(q(None, "R0_ohm", d["R0_ohm"], d["R0_ohm_stderr"], "Ohm", "interfacial resistance before"))
        qs.put(q(None, "Rss_ohm", d["Rss_ohm"], d["Rss_ohm_stderr"], "Ohm", "interfacial resistance after"))
    else:
        qs.put(q(None, "electronic_conductivity_S_cm", d["electronic_conductivity_S_cm"],
                 d["electronic_conductivity_S_cm_stderr"], "S/cm"))
    dec = d["decay"]
    t_h = d["t"] / 3600
    plots = [{"kind": "xy", "title": f"Polarisation current — {name}", "x": t_h, "x_label": "time (h)",
              "y_label": "current (µA)", "series": [{"name": "measured", "y": 1e6 * d["I"], "mode": "lines"},
                                                    {"name": "fit (constant + exponential)", "x": dec["t"] / 3600,
                                                     "y": 1e6 * dec["I_fit"], "mode": "lines"}]}]
    if d["eis"]:
        plots.append(nyquist(f"Impedance before / after polarisation — {name}",
                             [(f"{k} ({e['label']})", e["Z"], e["Z_fit"]) for k, e in d["eis"].items()]))
    row = {k: d.get(k) for k in ("cell", "delta_V", "transference_number", "transference_number_stderr",
                                 "electronic_conductivity_S_cm", "electronic_conductivity_S_cm_stderr", "I0_A",
                                 "I0_A_stderr", "Iss_A", "Iss_A_stderr", "R0_ohm", "R0_ohm_stderr", "Rss_ohm",
                                 "Rss_ohm_stderr", "tau_s")}
    meta = {"cell": d["cell"], "temperature_C": (m.attrs.get("acquisition") or {}).get("temperature_C"),
            "skip_s": dec["skip_s"], "impedance_files": [e.get("label") for e in d["eis"].values()]}
    return _result(m, "polarisation", qs, {"polarisation": [row]}, plots, params, d["warnings"], meta, "polarisation")


# ------------------------------------------------------------------------------------------ cycling
def cycling_result(m, d: dict, params: dict, area_cm2: float) -> Result:
    name = str(m.attrs.get("sample") or label(m))
    qs = Quantities()
    qs.put(q("short_circuit", "present", 1.0 if d["short"] else 0.0, None, ""))
    if d["stepped"]:
        if d["ccd_mA_cm2"] is not None:
            qs.put(q(None, "ccd_mA_cm2", d["ccd_mA_cm2"], None, "mA/cm^2",
                     "critical current density (first failing step)"))
        if d.get("last_stable_mA_cm2") is not None:
            key = "last_stable_mA_cm2" if d["short"] else "lower_bound_mA_cm2"
            qs.put(q("ccd", key, d["last_stable_mA_cm2"], None, "mA/cm^2"))
    else:
        qs.put(q(None, "current_density_mA_cm2", d["j_mA_cm2"], None, "mA/cm^2"))
        qs.put(q("cycling", "duration_h", d["duration_h"], None, "h"))
        qs.put(q(None, "overpotential_mV", d["eta_mV"], None, "mV", "median plateau |E| of the half-cycles"))
        qs.put(q("overpotential", "first_mV", d["eta_first_mV"], None, "mV"))
        qs.put(q("overpotential", "last_mV", d["eta_last_mV"], None, "mV"))
    if d["short"]:
        qs.put(q("short_circuit", "time_h", d["short_time_h"], None, "h"))
    rows = [{k: h[k] for k in ("t_start_h", "t_end_h", "sign", "j_mA_cm2", "eta_V", "failed", "why")}
            for h in d["half_cycles"]]
    t_h = d["t"] / 3600
    plots = [{"kind": "xy", "title": f"Galvanostatic cycling — {name}", "x": t_h, "x_label": "time (h)",
              "y_label": "E (mV) · j (mA/cm² x 10)",
              "series": [{"name": "E (mV)", "y": 1000 * d["E"], "mode": "lines"},
                         {"name": "j (mA/cm²) x 10", "y": 10 * 1e3 * d["I"] / area_cm2, "mode": "lines"}]},
             {"kind": "xy", "title": f"Overpotential per half-cycle — {name}",
              "x": np.array([r["t_start_h"] for r in rows]), "x_label": "time (h)", "y_label": "overpotential (mV)",
              "series": [{"name": "plateau |E|", "y": np.array([1000 * r["eta_V"] for r in rows]),
                          "mode": "markers"}]}]
    meta = {"stepped": d["stepped"], "rule": d["rule"], "area_cm2": area_cm2, "failure": d.get("failure"),
            "levels_mA_cm2": d["levels_mA_cm2"]}
    return _result(m, "galvanostatic", qs, {"half_cycles": rows}, plots, params, d["warnings"], meta, "half_cycles")
