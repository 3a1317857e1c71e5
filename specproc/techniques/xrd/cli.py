"""``specproc xrd PATH... [--reference FILE.cif ...] [--wavelength NM] [--phases LiBH4,LiNH2BH3]
[--zero-shift DEG] [--scan-type auto|powder|high-resolution] [--caglioti U,V,W] [--instrument-fwhm DEG]
[--no-whole-pattern] [--json] [--report FILE.html]``.

Only the arguments and the JSON of one entry live here; reading (in parallel), failures as
``{"file", "error"}``, the table or JSON output, the report and the exit code are
:func:`specproc.runner.run_technique`.
"""
from __future__ import annotations


def add_cli(subparsers) -> None:
    from ...runner import add_common_arguments, add_params_arguments
    from .processors import AnalyseParams

    p = subparsers.add_parser("xrd", help="powder XRD: peaks, d-spacings, phase ID, lattice refinement")
    add_common_arguments(p, "XRDML, Rigaku .ras, spec, .xy/.xye files")
    # options of xrd.analyse's Params (names of the shared vocabulary: --region, --snr, --background-window,
    # --center-window; docs/architecture.md)
    add_params_arguments(
        p, AnalyseParams,
        rename={"references": "--reference", "wavelength_nm": "--wavelength", "zero_shift_deg": "--zero-shift",
                "instrument_fwhm_deg": "--instrument-fwhm"},
        types={"references": str, "caglioti": caglioti_arg},
        metavar={"references": "FILE.cif", "phases": "NAME,...", "caglioti": "U,V,W", "snr": "SIGMA",
                 "background_window": "DEG", "center_window": "DEG",
                 "min_rel_intensity": "PCT"},
        help={"references": "extra reference phase from a CIF file (repeatable); named by its CIF name"})
    p.set_defaults(func=run_cli)


def caglioti_arg(text: str) -> tuple[float, float, float]:
    """``"0.004,-0.002,0.003"`` → (U, V, W) in deg²; three finite numbers, W > 0 (a width at 2θ = 0)."""
    import argparse

    from ...runner import floats_arg

    vals = floats_arg(text)
    if len(vals) != 3:
        raise argparse.ArgumentTypeError(f"expected U,V,W (three numbers, deg²), got {text!r}")
    if vals[2] <= 0:
        raise argparse.ArgumentTypeError(f"W must be > 0 (the squared width at 2θ = 0), got {vals[2]!r}")
    return tuple(vals)


def entry(r, path: str) -> dict:
    """The JSON entry of one analysed file (contract of ``specproc xrd --json``)."""
    import numpy as np

    def num(v):
        return None if v is None or not np.isfinite(v) else float(v)

    phases, candidates = [], []
    for row in r.tables["phases"].to_dict(orient="records"):
        candidates.append({"name": row["name"], "space_group": row["space_group"], "score": row["score"],
                           "present": bool(row["present"]), "status": row.get("status"),
                           "evidence": _evidence(row), "reasons": row.get("reasons") or None})
        if row.get("status", "present" if row["present"] else "absent") == "absent":
            continue
        lat = {k: num(row[k]) for k in ("a_nm", "b_nm", "c_nm", "volume_nm3", "a_nm_stderr", "b_nm_stderr",
                                        "c_nm_stderr")}
        sz = {k: (r.quantities[f"phase({row['name']}).{k}"].value if f"phase({row['name']}).{k}" in r.quantities
                  else None) for k in ("size_nm", "microstrain")}
        phases.append({"name": row["name"], "space_group": row["space_group"], "score": row["score"],
                       "status": row.get("status"), "texture": bool(row.get("texture")), "lattice": lat,
                       "evidence": _evidence(row), **sz})
    peaks = [{k: row.get(k) for k in ("two_theta_deg", "two_theta_stderr", "d_nm", "d_nm_stderr", "fwhm_deg",
                                      "area", "hkl", "phase", "texture_ratio", "height_sigma", "area_sigma")}
             # pseudo-Voigt mixing η (lmfit's "fraction", which reads as an area share, is "eta" here)
             | {"eta": num(row.get("eta"))}
             for row in r.tables["peaks"].to_dict(orient="records")]
    q = r.quantities
    sig = r.meta.get("peak_significance") or {}
    return {"file": path, "sample": r.sample, "wavelength_nm": r.meta.get("wavelength_nm"),
            "wavelength_source": r.meta.get("wavelength_source"), "scan_type": r.meta.get("scan_type"),
            "phases": phases, "candidates": candidates, "peaks": peaks,
            "amorphous_fraction": q["amorphous_fraction"].value if "amorphous_fraction" in q else None,
            "crystallite_size_nm": q["crystallite_size_nm"].value if "crystallite_size_nm" in q else None,
            "instrument_broadening": r.meta.get("instrument_broadening") if "crystallite_size_nm" in q else None,
            "peak_significance": {k: sig.get(k) for k in ("rule", "k_height", "k_area", "n_candidates", "n_rejected")}
            if sig else None,
            "warnings": list(r.warnings)}


def _evidence(row) -> dict:
    """What a phase call rests on, as numbers: the position screen's coverage and chance probability, and the
    whole-pattern F-test (p, χ² drop, own significant reflections) when the phase went through it."""
    import math

    def num(v):
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None

    return {"coverage": num(row.get("coverage")), "position_coverage": num(row.get("position_coverage")),
            "n_matched": num(row.get("n_matched")), "n_strong": num(row.get("n_strong")),
            "p_chance": num(row.get("p_chance")), "wholepattern_p": num(row.get("wp_p_value")),
            "wholepattern_delta_chi2": num(row.get("wp_delta_chi2")), "n_own_reflections": num(row.get("wp_n_own"))}


def rows(e: dict) -> list[dict]:
    """Table rows of one entry (text output without --json): one per identified or probable phase."""
    base = {"sample": e["sample"], "scan": e.get("scan_type"), "n_peaks": len(e["peaks"]),
            "size_nm": e.get("crystallite_size_nm"), "amorphous": e.get("amorphous_fraction")}
    if not e["phases"]:
        return [{**base, "phase": "(none)"}]
    from ...core.result import Quantity as Q

    return [{**base, "phase": ph["name"], "status": ph["status"], "score": ph["score"],
             **{ax: Q(ph["lattice"][f"{ax}_nm"], ph["lattice"][f"{ax}_nm_stderr"], "nm") for ax in ("a", "b", "c")}}
            for ph in e["phases"]]


def run_cli(args) -> int:
    from ...runner import run_technique

    return run_technique(args, processor="xrd.analyse", entry=entry, title="specproc XRD report", rows=rows)
