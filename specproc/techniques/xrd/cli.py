"""``specproc xrd PATH... [--reference FILE.cif ...] [--wavelength NM] [--phases LiBH4,LiNH2BH3]
[--zero-shift DEG] [--scan-type auto|powder|high-resolution] [--json] [--report FILE.html]``.

Only the arguments and the JSON of one entry live here; reading (in parallel), failures as
``{"file", "error"}``, the table or JSON output, the report and the exit code are
:func:`specproc.runner.run_technique`.
"""
from __future__ import annotations


def add_cli(subparsers) -> None:
    from ...runner import add_common_arguments, names_arg, positive_float_arg

    p = subparsers.add_parser("xrd", help="powder XRD: peaks, d-spacings, phase ID, lattice refinement")
    add_common_arguments(p, "XRDML, Rigaku .ras, spec, .xy/.xye files")
    p.add_argument("--reference", action="append", default=[], metavar="FILE.cif",
                   help="extra reference phase from a CIF file (repeatable); named by its CIF name")
    p.add_argument("--wavelength", type=positive_float_arg, default=None, metavar="NM",
                   help="Kα1 wavelength in nm (overrides the file)")
    p.add_argument("--phases", type=names_arg, default=None,
                   help="candidate built-in phases, comma-separated (default: all built-in)")
    p.add_argument("--zero-shift", type=float, default=None, metavar="DEG", help="2θ zero error to subtract (deg)")
    p.add_argument("--scan-type", choices=["auto", "powder", "high-resolution"], default=None,
                   help="auto (default) recognises high-resolution / epitaxial scans and refuses reflectivity "
                        "curves; powder or high-resolution force the analysis")
    p.set_defaults(func=run_cli)


def entry(r, path: str) -> dict:
    """The JSON entry of one analysed file (contract of ``specproc xrd --json``)."""
    import numpy as np

    def num(v):
        return None if v is None or not np.isfinite(v) else float(v)

    phases, candidates = [], []
    for row in r.tables["phases"].to_dict(orient="records"):
        candidates.append({"name": row["name"], "space_group": row["space_group"], "score": row["score"],
                           "present": bool(row["present"]), "status": row.get("status"),
                           "reasons": row.get("reasons") or None})
        if row.get("status", "present" if row["present"] else "absent") == "absent":
            continue
        lat = {k: num(row[k]) for k in ("a_nm", "b_nm", "c_nm", "volume_nm3", "a_nm_stderr", "b_nm_stderr",
                                        "c_nm_stderr")}
        phases.append({"name": row["name"], "space_group": row["space_group"], "score": row["score"],
                       "status": row.get("status"), "texture": bool(row.get("texture")), "lattice": lat})
    peaks = [{k: row.get(k) for k in ("two_theta_deg", "two_theta_stderr", "d_nm", "d_nm_stderr", "fwhm_deg",
                                      "area", "hkl", "phase", "texture_ratio", "height_sigma", "area_sigma")}
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


def rows(e: dict) -> list[dict]:
    """Table rows of one entry (text output without --json): one per identified or probable phase."""
    base = {"sample": e["sample"], "scan": e.get("scan_type"), "n_peaks": len(e["peaks"]),
            "size_nm": e.get("crystallite_size_nm"), "amorphous": e.get("amorphous_fraction")}
    if not e["phases"]:
        return [{**base, "phase": "(none)"}]
    return [{**base, "phase": ph["name"], "status": ph["status"], "score": ph["score"],
             "a_nm": ph["lattice"]["a_nm"], "b_nm": ph["lattice"]["b_nm"], "c_nm": ph["lattice"]["c_nm"]}
            for ph in e["phases"]]


def run_cli(args) -> int:
    from ...runner import run_technique

    params = {"references": list(args.reference) or None, "phases": args.phases, "wavelength_nm": args.wavelength,
              "zero_shift_deg": args.zero_shift, "scan_type": args.scan_type}
    return run_technique(args, processor="xrd.analyse", params=params, entry=entry, title="specproc XRD report",
                         rows=rows)
