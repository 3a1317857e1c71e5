"""DC polarisation: Li⁺ transference number (Bruce–Vincent) and electronic conductivity.

* The current after the potential step is fitted (lmfit, constant + exponential decay) from
  ``skip_s`` after the step (default 0.2 % of the step's duration: the double-layer charging spike
  of the first seconds is not the initial *ionic* current): ``I0`` is the fit at the step, ``Iss``
  its steady state, with their covariance.
* **Bruce–Vincent** (Bruce & Vincent 1987; Evans, Vincent & Bruce 1987), symmetric Li cell::

      t+ = Iss (dV - I0 R0) / (I0 (dV - Iss Rss))

  ``R0`` / ``Rss`` are the interfacial (electrode) resistances before / after the polarisation,
  from the impedance spectra recorded with it (``R_interface`` of :mod:`.eis`: the arcs that are not
  the electrolyte's), or given. Errors: the fit covariance of ``(Iss, I0)`` and those of ``R0``,
  ``Rss``, through the toolkit's propagation.
* **Electronic conductivity** (blocking electrodes, Hebb–Wagner): ``sigma_e = Iss L / (dV A)``.
"""
from __future__ import annotations

import math

import numpy as np

from ...core.errors import ParameterError, ProcessingError
from .common import propagate, source


def step(m, delta_V: float | None = None):
    """``(t (s) from the step, I (A), dV (V), notes)`` of the polarisation part of a time series."""
    t = np.asarray(m.coords["time"].values, float)
    e = np.asarray(m.sel(channel="potential").values, float)
    i = np.asarray(m.sel(channel="current").values, float)
    dev = np.abs(e - e[0])
    notes = []
    k = int(np.argmax(dev > 0.5 * dev.max())) if dev.max() > 1e-4 else 0
    if k >= 3:
        dv = float(np.median(e[k:]) - np.median(e[:k]))
    else:
        k = 0
        dv = float(np.median(e))
        notes.append("no rest before the step in the file: ΔV is the applied potential (open-circuit 0 V assumed)")
    if delta_V is not None:
        dv = float(delta_V)
    if abs(dv) < 1e-6:
        raise ProcessingError("no potential step in the time series (ΔV = 0): not a polarisation", source(m))
    return t[k:] - t[k], i[k:], dv, notes


def current_decay(t, i, skip_s: float | None = None, where=None) -> dict:
    """lmfit fit of ``I(t) = Iss + A exp(-t/tau)`` after ``skip_s``: I0, Iss, their covariance, warnings."""
    import lmfit

    from ...fitting.noise import noise_sigma
    from ...fitting.uncertainty import at_bound, fit_warnings

    sgn = 1.0 if np.median(i) >= 0 else -1.0
    t, y = np.asarray(t, float), sgn * np.asarray(i, float)
    skip = 0.002 * t.max() if skip_s is None else float(skip_s)
    keep = t >= skip
    if keep.sum() < 10:
        raise ProcessingError(f"{int(keep.sum())} current points after {skip:g} s (need >= 10)", where)
    tt, yy = t[keep], y[keep]
    tail = yy[tt >= tt[0] + 0.9 * (tt[-1] - tt[0])]
    iss0 = float(np.median(tail))
    a0 = float(yy[0] - iss0)
    half = np.nonzero(np.abs(yy - iss0) <= abs(a0) / math.e)[0]
    tau0 = float(tt[half[0]] - tt[0]) if half.size and a0 != 0 else float(tt[-1] - tt[0]) / 5
    model = lmfit.models.ConstantModel(prefix="ss_") + lmfit.models.ExponentialModel(prefix="d_")
    pars = model.make_params(ss_c=iss0, d_amplitude=a0 * math.exp(tt[0] / max(tau0, 1e-9)) if tau0 > 0 else a0,
                             d_decay=max(tau0, 1e-3))
    pars["d_decay"].set(min=1e-6, max=100 * float(tt[-1] + 1))
    res = model.fit(yy, pars, x=tt)
    names = ["ss_c", "d_amplitude"]
    cov = np.full((2, 2), np.nan)
    if res.covar is not None:
        idx = [res.var_names.index(n) for n in names]
        cov = res.covar[np.ix_(idx, idx)]
    iss, amp = res.params["ss_c"].value, res.params["d_amplitude"].value
    # I0 = Iss + A (the fit at the step); Var via the gradient (1, 1)
    J = np.array([[1.0, 0.0], [1.0, 1.0]])
    cov_ii = J @ cov @ J.T
    resid = yy - res.best_fit
    warns = fit_warnings({"success": res.success, "r2": 1 - np.sum(resid ** 2) / max(np.sum((yy - yy.mean()) ** 2),
                                                                                          1e-300)},
                         at_bound(res.params), rms=float(np.sqrt(np.mean(resid ** 2))), noise=noise_sigma(yy))
    slope = np.polyfit(tt[-max(5, tt.size // 10):], yy[-max(5, tt.size // 10):], 1)[0]
    drift = abs(slope) * 0.1 * (tt[-1] - tt[0]) / max(abs(iss), 1e-300)
    if drift > 0.01:
        warns.append(f"the current still changes by {100 * drift:.1f} % over the last tenth of the step: "
                     "not a steady state (polarise longer)")
    return {"Iss": sgn * iss, "I0": sgn * (iss + amp), "cov": cov_ii, "tau_s": float(res.params["d_decay"].value),
            "t": tt, "I_fit": sgn * res.best_fit, "skip_s": skip, "warnings": warns}


def _interface(spec: dict, circuit: str, weighting: str, geo, bulk, label: str, where) -> tuple[float, float, dict]:
    from ...fitting.circuits import parse_circuit
    from ...fitting.cnls import fit_circuit
    from ...fitting.kramers_kronig import lin_kk
    from .eis import analyse_spectrum

    f = np.asarray(spec["frequency_Hz"], float)
    z = np.asarray(spec["z_real_ohm"], float) + 1j * np.asarray(spec["z_imag_ohm"], float)
    c = parse_circuit(circuit)
    fit = fit_circuit(c, f, z, weighting=weighting)
    d = analyse_spectrum(c, fit, lin_kk(f, z), 0, f, geo, bulk, None)
    if d["R_interface_ohm"] is None:
        raise ProcessingError(f"the impedance {label} has no interface arc in {circuit!r} (every arc is the "
                              "electrolyte's): Bruce–Vincent needs the electrode resistance; name it with bulk=[...]",
                              where)
    d.update(f=f, Z=z, Z_fit=fit.Z_fit[0], label=spec.get("label", label))
    se = d["R_interface_ohm_stderr"]
    return float(d["R_interface_ohm"]), (float(se) if se is not None else float("nan")), d


def transference(m, *, delta_V=None, R0_ohm=None, Rss_ohm=None, R0_ohm_stderr=0.0, Rss_ohm_stderr=0.0,
                 circuit="R0-p(R1,CPE1)-p(R2,CPE2)", weighting="modulus", skip_s=None, geo=None, bulk=None) -> dict:
    """Bruce–Vincent transference number of a symmetric-cell polarisation (see the module doc).

    The interfacial resistances come from ``R0_ohm``/``Rss_ohm`` when given, else from the spectra
    in ``m.attrs["impedance"]`` (first ``before`` and last ``after`` the step).
    """
    where = source(m)
    t, i, dv, notes = step(m, delta_V)
    dec = current_decay(t, i, skip_s, where)
    spectra = m.attrs.get("impedance") or []
    eis = {}
    if R0_ohm is None or Rss_ohm is None:
        before = [s for s in spectra if s.get("position") == "before"]
        after = [s for s in spectra if s.get("position") == "after"]
        if not before or not after:
            raise ParameterError("Bruce–Vincent needs the interfacial resistance before and after the polarisation: "
                                 "read the experiment folder (impedance - chronoamperometry - impedance) or give "
                                 "R0_ohm and Rss_ohm", where)
        r0, r0_se, eis["before"] = _interface(before[-1], circuit, weighting, geo, bulk, "before", where)
        rss, rss_se, eis["after"] = _interface(after[0], circuit, weighting, geo, bulk, "after", where)
    else:
        r0, r0_se, rss, rss_se = float(R0_ohm), float(R0_ohm_stderr or 0), float(Rss_ohm), float(Rss_ohm_stderr or 0)
    vals = {"Iss": dec["Iss"], "I0": dec["I0"], "R0": r0, "Rss": rss}
    cov = np.zeros((4, 4))
    cov[:2, :2] = np.nan_to_num(dec["cov"], nan=0.0)          # (Iss, I0), from the decay fit
    cov[2, 2] = r0_se ** 2 if math.isfinite(r0_se) else 0.0
    cov[3, 3] = rss_se ** 2 if math.isfinite(rss_se) else 0.0
    tp, tp_se = propagate(lambda d: d["Iss"] * (dv - d["I0"] * d["R0"]) / (d["I0"] * (dv - d["Iss"] * d["Rss"])),
                          vals, cov)
    warns = notes + dec["warnings"]
    if not (math.isfinite(r0_se) and math.isfinite(rss_se)):
        warns.append("an interfacial resistance has no standard error: t+ error from the current fit only")
    if abs(dv) > 0.02:
        warns.append(f"ΔV = {1000 * dv:.0f} mV: Bruce–Vincent assumes a small polarisation (<= 10-20 mV)")
    if tp_se is not None and math.isfinite(tp_se) and (tp - 2 * tp_se > 1 or tp + 2 * tp_se < 0):
        warns.append(f"t+ = {tp:.4f} ± {tp_se:.2g} is outside the physical range 0-1")
    if "before" in eis:
        rb = eis["before"]["R_bulk_ohm"]
        i0_eis = dv / (rb + r0) if rb and math.isfinite(rb) else None
        if i0_eis and abs(dec["I0"] / i0_eis - 1) > 0.1:
            warns.append(f"I0 from the current ({dec['I0']:.4g} A) differs by {100 * abs(dec['I0'] / i0_eis - 1):.0f} % "
                         f"from ΔV/(R_bulk + R0) = {i0_eis:.4g} A: check the first seconds of the step")
        warns += [f"impedance before: {w}" for w in eis["before"]["warnings"]]
        warns += [f"impedance after: {w}" for w in eis["after"]["warnings"]]
    return {"cell": "symmetric", "delta_V": dv, "transference_number": tp, "transference_number_stderr": tp_se,
            "I0_A": dec["I0"], "I0_A_stderr": _se(dec["cov"], 1), "Iss_A": dec["Iss"], "Iss_A_stderr": _se(dec["cov"], 0),
            "R0_ohm": r0, "R0_ohm_stderr": r0_se, "Rss_ohm": rss, "Rss_ohm_stderr": rss_se, "tau_s": dec["tau_s"],
            "decay": dec, "t": t, "I": i, "eis": eis, "warnings": warns}


def _se(cov, k):
    v = cov[k, k]
    return float(math.sqrt(v)) if np.isfinite(v) and v >= 0 else None


def electronic(m, *, geo, delta_V=None, skip_s=None) -> dict:
    """Electronic conductivity from a blocking-electrode polarisation: ``Iss L / (dV A)``."""
    where = source(m)
    if not geo.complete:
        raise ParameterError("electronic conductivity needs the thickness and the area (thickness_cm, area_cm2)", where)
    t, i, dv, notes = step(m, delta_V)
    dec = current_decay(t, i, skip_s, where)
    iss_se = _se(dec["cov"], 0)
    cov = np.diag([(iss_se or 0.0) ** 2, geo.thickness_cm_stderr ** 2, geo.area_cm2_stderr ** 2])
    s, s_se = propagate(lambda d: d["I"] * d["L"] / (dv * d["A"]),
                        {"I": dec["Iss"], "L": geo.thickness_cm, "A": geo.area_cm2}, cov)
    warns = notes + dec["warnings"]
    if s <= 0:
        warns.append(f"steady-state current {dec['Iss']:.3g} A has the opposite sign of ΔV: no electronic conductivity")
    return {"cell": "blocking", "delta_V": dv, "electronic_conductivity_S_cm": s,
            "electronic_conductivity_S_cm_stderr": s_se, "Iss_A": dec["Iss"], "Iss_A_stderr": iss_se,
            "I0_A": dec["I0"], "I0_A_stderr": _se(dec["cov"], 1), "tau_s": dec["tau_s"], "decay": dec, "t": t, "I": i,
            "eis": {}, "warnings": warns}
