"""Impedance spectra: equivalent-circuit fits (one spectrum or a series in one batched call),
Kramers–Kronig validity, electrolyte resistance, conductivity with the geometry's uncertainty.

* The fit is :func:`specproc.fitting.cnls.fit_circuit` (batch engine LM, analytic circuit Jacobians,
  automatic starts); the validity test :func:`specproc.fitting.kramers_kronig.lin_kk`.
* ``R_bulk`` — the electrolyte resistance, the low-frequency end of the electrolyte arc on the real
  axis — is the sum of the series resistors and of the R of every arc that is the electrolyte's:
  an arc above the measured window (unresolved bulk), or one whose effective capacitance (Brug,
  normalised to a unit cell constant: ``C·L/A``) is at most 1e-8 F, the bulk and grain-boundary
  range of Irvine, Sinclair & West (Adv. Mater. 1990); larger ones (1e-7..1e-5 F) are electrode
  interfaces (``R_interface``). ``bulk=[...]`` names the resistors explicitly instead.
* ``sigma = L / (R_bulk · A)``, its error from ``R_bulk``'s (the fit covariance, identifiable even
  when its parts are not) and the thickness and area errors, through the toolkit's propagation.
"""
from __future__ import annotations

import math

import numpy as np

from ...core.errors import ParameterError
from .common import fmt_temp, geometry, propagate, q, source, temperature

#: bulk and grain-boundary arcs have C·L/A up to this (F); electrode interfaces above
ELECTROLYTE_C_MAX = 1e-8
#: physical range of solid-electrolyte conductivities (S/cm) beyond which a value is flagged
SIGMA_RANGE = (1e-14, 10.0)


def spectra(m, freq_range=None):
    """``(f (m,), Z (n, m))`` of a spectrum or series, optionally within ``freq_range`` (Hz)."""
    f = np.asarray(m.coords["frequency"].values, float)
    Z = np.atleast_2d(np.asarray(m.values))
    if not np.iscomplexobj(Z):
        raise ParameterError("impedance values must be complex (Z' + j Z'')", source(m))
    if not np.all(np.isfinite(Z)):
        raise ParameterError("NaN/inf impedance values", source(m))
    if freq_range is not None:
        lo, hi = sorted(freq_range)
        keep = (f >= lo) & (f <= hi)
        if keep.sum() < 6:
            raise ParameterError(f"{int(keep.sum())} frequencies within {lo:g}-{hi:g} Hz (need >= 6)", source(m))
        f, Z = f[keep], Z[:, keep]
    d = np.diff(np.log10(f))
    if not (np.all(d < 0) or np.all(d > 0)):
        raise ParameterError("frequencies are not monotonic", source(m))
    return f, Z


def bulk_resistors(circuit, fit, i: int, geo, bulk: list | None, f: np.ndarray):
    """(electrolyte resistor names, interface resistor names, arcs info) of spectrum ``i``."""
    from ...fitting.circuits import arc_capacitance, arc_frequency

    names = circuit.param_names
    if bulk:
        unknown = [b for b in bulk if b not in names or circuit.unit(b) != "Ohm"]
        if unknown:
            raise ParameterError(f"bulk: {unknown} are not resistances of {circuit.text!r}")
    series = list(circuit.series_resistors())
    el, inter, arcs = list(series), [], []
    cell = geo.thickness_cm / geo.area_cm2 if geo.complete else 1.0
    for arc in circuit.arcs():
        R = sum(fit.value(i, r) for r in arc.resistors)
        e = arc.capacitor
        pv = [fit.values[i, e.start + k] for k in range(e.nparams)]
        c_eff = float(arc_capacitance(e.kind, R, pv))
        fc = float(arc_frequency(e.kind, R, pv))
        above = fc > f.max()
        electrolyte = above or (c_eff * cell <= ELECTROLYTE_C_MAX)
        arcs.append({"arc": arc.text, "R_ohm": R, "C_eff_F": c_eff, "f_c_Hz": fc, "above_window": bool(above),
                     "below_window": bool(fc < f.min()), "electrolyte": bool(electrolyte)})
        (el if electrolyte else inter).extend(arc.resistors)
    if bulk:
        el = list(bulk)
        inter = [r for a in circuit.arcs() for r in a.resistors if r not in el]
        for info, arc in zip(arcs, circuit.arcs()):
            info["electrolyte"] = all(r in el for r in arc.resistors)
    return el, inter, arcs


def analyse_spectrum(circuit, fit, kk, i: int, f, geo, bulk, temperature_C):
    """Derived numbers and warnings of spectrum ``i`` of a circuit fit: a dict (see :func:`entry_dict`)."""
    names = circuit.param_names
    el, inter, arcs = bulk_resistors(circuit, fit, i, geo, bulk, f)
    warns = []
    rb, rb_se = fit.combination(i, {r: 1.0 for r in el}) if el else (float("nan"), float("nan"))
    ri, ri_se = fit.combination(i, {r: 1.0 for r in inter}) if inter else (None, None)
    sigma, sigma_se = None, None
    if not el:
        warns.append(f"no resistor of {circuit.text!r} is the electrolyte's (series or bulk-like arc): no R_bulk")
    elif geo.complete and rb > 0:
        var_rb = rb_se ** 2 if math.isfinite(rb_se) else 0.0
        cov = np.diag([var_rb, geo.thickness_cm_stderr ** 2, geo.area_cm2_stderr ** 2])
        sigma, sigma_se = propagate(lambda d: d["L"] / (d["R"] * d["A"]),
                                    {"R": rb, "L": geo.thickness_cm, "A": geo.area_cm2}, cov)
        if not math.isfinite(rb_se):
            sigma_se = None
            warns.append("R_bulk's standard error is undefined (its parts end on bounds or are not determined): "
                         "conductivity without error")
        if not SIGMA_RANGE[0] <= sigma <= SIGMA_RANGE[1]:
            warns.append(f"conductivity {sigma:.3g} S/cm is outside the range of solid electrolytes "
                         f"({SIGMA_RANGE[0]:g}-{SIGMA_RANGE[1]:g} S/cm): check thickness, area and circuit")
    warns += _fit_warnings(circuit, fit, i, arcs, kk, f)
    params = [{"name": n, "value": float(fit.values[i, k]),
               "stderr": float(fit.stderr[i, k]) if math.isfinite(fit.stderr[i, k]) else None,
               "unit": circuit.units[k], "determined": bool(fit.determined[i, k]),
               "at_bound": bool(fit.at_bound[i, k])} for k, n in enumerate(names)]
    return {"temperature_C": temperature_C, "parameters": params, "R_bulk_ohm": rb,
            "R_bulk_ohm_stderr": rb_se if math.isfinite(rb_se) else None, "R_bulk_resistors": el,
            "R_interface_ohm": ri, "R_interface_ohm_stderr": ri_se if ri_se is not None and math.isfinite(ri_se)
            else None, "conductivity_S_cm": sigma, "conductivity_S_cm_stderr": sigma_se, "arcs": arcs,
            "kk": kk.to_dict(), "fit": {**fit_statistics(fit, kk, i), "r2": float(fit.r2[i]),
                                        "success": bool(fit.success[i]), "nfev": int(fit.nfev[i]),
                                        "rms_residual_pct": float(100 * np.sqrt(np.mean(fit.residual[i] ** 2)))},
            "warnings": warns}


#: what the weighted χ² of each weighting of :func:`specproc.fitting.cnls.fit_circuit` sums
WEIGHTING_MEANING = {
    "modulus": "modulus: (Z - Z_fit)/|Z| of both parts (relative residuals)",
    "proportional": "proportional: real part (Z' - Z'_fit)/|Z'|, imaginary part (Z'' - Z''_fit)/|Z''|",
    "unit": "unit: Z - Z_fit of both parts in Ohm",
}


def fit_statistics(fit, kk, i: int) -> dict:
    """The reduced χ² of spectrum ``i`` of a circuit fit, with its meaning.

    ``redchi_weighted`` is the fit's own weighted χ²/ν (``weighting`` says what it sums: with
    ``modulus`` weighting a mean squared relative residual, 2.5e-5 for 0.5 % noise, not a χ²/ν in
    units of the noise). ``redchi`` (= ``redchi_noise``) is the circuit's residual relative to ``|Z|``
    (χ²/ν, whatever weighting the fit used) divided by the noise variance relative to ``|Z|`` that the
    Kramers–Kronig fit's residual leaves (:meth:`specproc.fitting.kramers_kronig.KKResult.noise_variance`):
    ≈ 1 when the circuit describes the spectrum down to its noise, ≫ 1 when it misses a feature
    (measured: 1.00 ± 0.04 over 30 two-arc spectra with 0.5 % noise, 200-700 with one arc left out).
    One weighting for both, the KK fit's (in the ``proportional`` weighting itself a few points where a
    part crosses zero dominate both sums: 0.46 for correct circuits). A ``proportional`` fit trades
    the rest of the spectrum for those points, and this statistic says so (mean 29 on the same spectra).
    None, with ``redchi_noise_reason``, when the noise is not estimable (a spectrum that fails the KK
    test: its KK residual is drift or non-linearity, not noise).
    """
    rw = float(fit.redchi[i])
    out = {"redchi_weighted": rw, "weighting": WEIGHTING_MEANING.get(fit.weighting, fit.weighting)}
    var = kk.noise_variance()
    nu = float(fit.chisqr[i] / rw) if rw > 0 else float("nan")       # 2m - free parameters
    if var is None or kk.Z is None or not nu > 0:
        reason = ("the spectrum fails the Kramers–Kronig test: its KK residual is not noise alone" if not kk.valid
                  else "too few frequencies left after the Kramers–Kronig fit to estimate the noise")
        out.update(redchi=None, redchi_noise=None, noise_source=None, redchi_noise_reason=reason)
        return out
    Z = np.asarray(kk.Z, complex)
    d = (Z - np.asarray(fit.Z_fit[i], complex)) / np.maximum(np.abs(Z), 1e-300)
    rn = float((np.sum(d.real ** 2) + np.sum(d.imag ** 2)) / nu / var)
    out.update(redchi=rn, redchi_noise=rn, noise_pct=float(100 * np.sqrt(var)),
               noise_source=f"Kramers–Kronig residual ({kk.M} Voigt elements, {kk.dof} degrees of freedom), "
                            "residuals relative to |Z|")
    return out


def _fit_warnings(circuit, fit, i, arcs, kk, f) -> list[str]:
    from ...fitting.uncertainty import fit_warnings

    names = circuit.param_names
    warns = []
    unresolved = set()
    for a, arc in zip(arcs, circuit.arcs()):
        if a["above_window"] or a["below_window"]:
            where = "above the highest" if a["above_window"] else "below the lowest"
            unresolved.update([arc.capacitor.name] + arc.resistors)
            warns.append(f"arc {a['arc']} lies {where} measured frequency (f_c ≈ {a['f_c_Hz']:.3g} Hz): its R and C "
                         f"are not separated from the rest, only sums such as R_bulk are determined")
    bounded = [n for k, n in enumerate(names) if fit.at_bound[i, k] and not any(n.startswith(u) for u in unresolved)]
    stats = {"success": bool(fit.success[i]), "r2": float(fit.r2[i])}
    warns += fit_warnings(stats, bounded, values={n: float(fit.values[i, k]) for k, n in enumerate(names)})
    undetermined = [n for k, n in enumerate(names) if not fit.determined[i, k] and not fit.at_bound[i, k]
                    and not any(n.startswith(u) for u in unresolved)]
    if undetermined:
        warns.append(f"parameters {', '.join(undetermined)} are not determined by this spectrum (no standard error)")
    loose = [f"{n} = {fit.values[i, k]:.3g} ± {fit.stderr[i, k]:.2g}" for k, n in enumerate(names)
             if np.isfinite(fit.stderr[i, k]) and abs(fit.stderr[i, k]) > 0.5 * abs(fit.values[i, k])
             and not any(n.startswith(u) for u in unresolved)]
    if loose:
        warns.append(f"poorly determined (standard error > 50 %): {'; '.join(loose)}: the circuit has more "
                     "elements than this spectrum resolves")
    for k, n in enumerate(names):
        if n.endswith("_n") and fit.values[i, k] < 0.5 and not fit.at_bound[i, k]:
            warns.append(f"{n} = {fit.values[i, k]:.3f} < 0.5: this element behaves like diffusion, not a capacitance")
    if not kk.valid:
        warns.append(f"Kramers–Kronig test failed: residuals up to {kk.max_residual_pct:.2g} % (> {kk.threshold_pct:g} %):"
                     " the spectrum drifted, is non-linear or noisy; its parameters are not reliable")
    rms = 100 * float(np.sqrt(np.mean(fit.residual[i] ** 2)))
    if fit.weighting == "modulus" and rms > 3 * max(kk.rms_residual_pct, 0.05):
        warns.append(f"structured residual: the circuit leaves {rms:.2g} % RMS where the Kramers–Kronig fit leaves "
                     f"{kk.rms_residual_pct:.2g} %: the circuit misses a feature of the spectrum")
    return warns


def fit_spectra(m_or_list, circuit: str, weighting: str, freq_range=None, kk_threshold_pct: float = 2.5):
    """One circuit fit of every spectrum of a series (or of a list of spectra on one grid):
    ``(circuit, f, Z, fit, kk list)``."""
    from ...fitting.circuits import parse_circuit
    from ...fitting.cnls import fit_circuit
    from ...fitting.kramers_kronig import lin_kk

    ms = m_or_list if isinstance(m_or_list, list) else [m_or_list]
    f, Z = spectra(ms[0], freq_range)
    if len(ms) > 1:
        Z = np.vstack([Z] + [spectra(m, freq_range)[1] for m in ms[1:]])
    try:
        c = parse_circuit(circuit)
    except ParameterError as exc:
        raise ParameterError(exc.reason, source(ms[0])) from None
    fit = fit_circuit(c, f, Z, weighting=weighting)
    kk = [lin_kk(f, z, threshold_pct=kk_threshold_pct) for z in Z]
    return c, f, Z, fit, kk


def quantities_of(d: dict, circuit, sel: str | None = None):
    """Result quantities of one analysed spectrum, under the spectrum's selector ``sel`` in a series
    (``"T(30C)"``: component ``T(30C).circuit``, ``T(30C)``...; None for a single spectrum)."""
    from ...core.result import Quantities, quantity_name

    out = Quantities()
    for prm in d["parameters"]:
        if math.isfinite(prm["value"]):
            out.put(q(quantity_name(sel, "circuit"), prm["name"], prm["value"], prm["stderr"], prm["unit"]))
    if d["R_bulk_ohm"] is not None and math.isfinite(d["R_bulk_ohm"]):
        out.put(q(sel, "R_bulk_ohm", d["R_bulk_ohm"], d["R_bulk_ohm_stderr"], "Ohm",
                  "electrolyte resistance: " + "+".join(d["R_bulk_resistors"])))
    if d["R_interface_ohm"] is not None:
        out.put(q(sel, "R_interface_ohm", d["R_interface_ohm"], d["R_interface_ohm_stderr"], "Ohm"))
    if d["conductivity_S_cm"] is not None:
        out.put(q(sel, "conductivity_S_cm", d["conductivity_S_cm"], d["conductivity_S_cm_stderr"], "S/cm"))
    out.put(q(quantity_name(sel, "kk"), "max_residual_pct", d["kk"]["max_residual_pct"], None, "%"))
    out.put(q(quantity_name(sel, "kk"), "valid", 1.0 if d["kk"]["valid"] else 0.0, None, ""))
    for a in d["arcs"]:
        out.put(q(quantity_name(sel, f"arc({a['arc']})"), "C_eff_F", a["C_eff_F"], None, "F"))
    return out


def selector(m, i: int) -> str:
    """Quantity selector (component) of spectrum ``i`` of a series: ``T(30C)`` or ``cycle(3)``."""
    if "temperature_C" in m.coords:
        return f"T({fmt_temp(m.coords['temperature_C'].values[i])})"
    if "cycle" in m.coords:
        return f"cycle({int(m.coords['cycle'].values[i])})"
    return f"spectrum({i + 1})"


def analyse_measurements(ms: list, p) -> list[dict]:
    """Fit and analyse single spectra sharing a frequency grid (one batched fit): one dict each."""
    c, f, Z, fit, kk = fit_spectra(ms, p.circuit, p.weighting, p.freq_range, p.kk_threshold_pct)
    out = []
    for i, m in enumerate(ms):
        geo = geometry(m, p.thickness_cm, p.thickness_cm_stderr, p.area_cm2, p.area_cm2_stderr)
        d = analyse_spectrum(c, fit, kk[i], i, f, geo, p.bulk, temperature(m, p.temperature_C))
        d["warnings"] = geo.warnings + d["warnings"]
        d.update(circuit=c.text, f=f, Z=Z[i], Z_fit=fit.Z_fit[i], kk_fit=kk[i].Z_fit, geometry=geo,
                 timings=fit.timings)
        out.append(d)
    return out
