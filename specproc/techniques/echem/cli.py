"""``specproc echem FILE... [--thickness-cm L] [--area-cm2 A] [--circuit STR] [--json] [--report F.html]``.

Only the arguments and the JSON of one entry live here; reading, failures, output, the report and
the exit code are :func:`specproc.runner.run_technique`.
"""
from __future__ import annotations


def add_cli(subparsers) -> None:
    from ...runner import add_common_arguments, add_params_arguments
    from .processors import AnalyseParams

    p = subparsers.add_parser("echem", help="electrochemistry: EIS circuits and conductivity (Arrhenius for series), "
                                            "Bruce–Vincent t+, electronic conductivity, critical current density")
    add_common_arguments(p, "EC-Lab .mpt/.mpr, Gamry .DTA, ZView .z, CSV/NOVA text, or folders of them")
    # options of echem.analyse's Params; the fitted frequency range is --region (shared vocabulary),
    # --freq-range still works for one release
    add_params_arguments(p, AnalyseParams, deprecated={"region": "--freq-range"},
                         metavar={"thickness_cm": "L", "thickness_cm_stderr": "dL", "area_cm2": "A",
                                  "area_cm2_stderr": "dA", "circuit": "STR", "bv_circuit": "STR", "bulk": "R,...",
                                  "temperature_C": "T", "step_test_C": "T", "kk_threshold_pct": "PCT",
                                  "delta_V": "V", "R0_ohm": "OHM", "Rss_ohm": "OHM", "R0_ohm_stderr": "OHM",
                                  "Rss_ohm_stderr": "OHM", "skip_s": "S", "collapse_fraction": "F",
                                  "noise_fraction": "F"})
    p.set_defaults(func=run_cli)


def run_cli(args) -> int:
    from ...runner import run_technique

    return run_technique(args, processor="echem.analyse", entry=entry, rows=rows, title="specproc electrochemistry")


def _q(r, name):
    from ...core.numbers import finite_or_none

    q = r.quantities.get(name)
    return (None, None) if q is None else (finite_or_none(q.value), finite_or_none(q.stderr))


def entry(r, path: str) -> dict:
    """The JSON entry of one input (contract of ``specproc echem --json``).

    Impedance spectrum: ``{"file", "sample", "kind": "eis", "temperature_C", "circuit", "parameters":
    [{"name", "value", "stderr"}], "R_bulk_ohm", "R_bulk_ohm_stderr", "conductivity_S_cm",
    "conductivity_S_cm_stderr", "kk": {"max_residual_pct", "valid"}, "warnings"}``; a series:
    ``{"file", "sample", "kind": "eis_series", "spectra": [<the above without file/sample>],
    "arrhenius": {"Ea_eV", "Ea_eV_stderr", "transition", "step_test"} or null, "warnings"}``;
    ``"polarisation"``: ``transference_number`` (± ``_stderr``) or ``electronic_conductivity_S_cm``,
    ``delta_V``, ``I0_A``, ``Iss_A``, ``R0_ohm``, ``Rss_ohm``; ``"galvanostatic"``: ``ccd_mA_cm2``,
    ``last_stable_mA_cm2``, ``overpotential_mV``, ``current_density_mA_cm2``, ``duration_h``,
    ``short_circuit``.
    """
    kind = r.meta.get("kind")
    base = {"file": path, "sample": r.sample, "kind": kind}
    if kind == "eis":
        return {**base, **{k: v for k, v in r.meta["entry"].items() if k != "kind"}, "warnings": list(r.warnings)}
    if kind == "eis_series":
        arr = r.meta.get("arrhenius")
        return {**base, "circuit": r.meta.get("circuit"), "spectra": list(r.meta.get("entries", [])),
                "arrhenius": None if arr is None else {k: arr.get(k) for k in ("Ea_eV", "Ea_eV_stderr", "transition",
                                                                              "step_test")},
                "warnings": list(r.warnings)}
    if kind == "polarisation":
        out = {**base, "cell": r.meta.get("cell"), "temperature_C": r.meta.get("temperature_C")}
        for name in ("transference_number", "electronic_conductivity_S_cm", "delta_V", "I0_A", "Iss_A", "R0_ohm",
                     "Rss_ohm"):
            v, se = _q(r, name)
            if v is not None or name in ("transference_number",):
                out[name], out[name + "_stderr"] = v, se
        out["warnings"] = list(r.warnings)
        return out
    out = {**base}
    for name, key in (("ccd_mA_cm2", "ccd_mA_cm2"), ("ccd.last_stable_mA_cm2", "last_stable_mA_cm2"),
                      ("ccd.lower_bound_mA_cm2", "ccd_lower_bound_mA_cm2"), ("overpotential_mV", "overpotential_mV"),
                      ("current_density_mA_cm2", "current_density_mA_cm2"), ("cycling.duration_h", "duration_h"),
                      ("short_circuit.time_h", "short_circuit_time_h")):
        out[key] = _q(r, name)[0]
    out["short_circuit"] = bool(_q(r, "short_circuit.present")[0])
    out["rule"] = r.meta.get("rule")
    out["warnings"] = list(r.warnings)
    return out


def rows(e: dict) -> list[dict]:
    """Table rows of one entry (text output): fitted values with their ±, in their natural unit."""
    from ...core.result import Quantity as Q

    def eis(s):
        # conductivities stay in S/cm, the field's convention (1.2e-04 S/cm), named as before
        return {"T_C": s.get("temperature_C"), "R_bulk_ohm": Q(s.get("R_bulk_ohm"), s.get("R_bulk_ohm_stderr")),
                "sigma_S_cm": Q(s.get("conductivity_S_cm"), s.get("conductivity_S_cm_stderr")),
                "kk_valid": s["kk"]["valid"]}

    k = e.get("kind")
    if k == "eis":
        return [{"sample": e["sample"], "kind": k, **eis(e)}]
    if k == "eis_series":
        return [{"sample": e["sample"], "kind": k, **eis(s)} for s in e["spectra"]]
    if k == "polarisation":
        return [{"sample": e["sample"], "kind": k,
                 "t+": Q(e.get("transference_number"), e.get("transference_number_stderr")),
                 "sigma_e_S_cm": Q(e.get("electronic_conductivity_S_cm"),
                                   e.get("electronic_conductivity_S_cm_stderr"))}]
    return [{"sample": e["sample"], "kind": k, "ccd_mA_cm2": e.get("ccd_mA_cm2"),
             "overpotential_mV": e.get("overpotential_mV"), "short": e.get("short_circuit")}]
