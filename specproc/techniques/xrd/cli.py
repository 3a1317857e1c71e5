"""``specproc xrd PATH... [--reference FILE.cif ...] [--wavelength NM] [--phases LiBH4,LiNH2BH3] [--json]
[--report FILE.html]``."""
from __future__ import annotations

import argparse


def add_cli(subparsers) -> None:
    p = subparsers.add_parser("xrd", help="powder XRD: peaks, d-spacings, phase ID, lattice refinement")
    p.add_argument("paths", nargs="+", metavar="PATH", help="XRDML / .xy / .xye files")
    p.add_argument("--reference", action="append", default=[], metavar="FILE.cif",
                   help="extra reference phase from a CIF file (repeatable)")
    p.add_argument("--wavelength", type=float, default=None, metavar="NM", help="Kα1 wavelength in nm (overrides the file)")
    p.add_argument("--phases", type=_names, default=None,
                   help="candidate built-in phases, comma-separated (default: all built-in)")
    p.add_argument("--zero-shift", type=float, default=0.0, metavar="DEG", help="2θ zero error to subtract (deg)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument("--report", default=None, metavar="FILE.html", help="write the HTML report of these files")
    p.set_defaults(func=run_cli)


def _names(text: str) -> list[str]:
    names = [v.strip() for v in text.split(",") if v.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected comma-separated phase names")
    return names


def entry(r, path: str) -> dict:
    """The JSON entry of one analysed file (contract of ``specproc xrd --json``)."""
    import numpy as np

    phases = []
    for row in r.tables["phases"].to_dict(orient="records"):
        if not row["present"]:
            continue
        lat = {k: row[k] for k in ("a_nm", "b_nm", "c_nm", "volume_nm3", "a_nm_stderr", "b_nm_stderr", "c_nm_stderr")}
        phases.append({"name": row["name"], "space_group": row["space_group"], "score": row["score"],
                       "lattice": {k: (None if v is None or not np.isfinite(v) else float(v)) for k, v in lat.items()}})
    candidates = [{"name": row["name"], "space_group": row["space_group"], "score": row["score"],
                   "present": bool(row["present"])} for row in r.tables["phases"].to_dict(orient="records")]
    peaks = [{k: row.get(k) for k in ("two_theta_deg", "two_theta_stderr", "d_nm", "d_nm_stderr", "fwhm_deg",
                                      "area", "hkl", "phase", "texture_ratio")}
             for row in r.tables["peaks"].to_dict(orient="records")]
    q = r.quantities
    return {"file": path, "sample": r.sample, "wavelength_nm": r.meta.get("wavelength_nm"),
            "wavelength_source": r.meta.get("wavelength_source"), "phases": phases, "candidates": candidates,
            "peaks": peaks,
            "amorphous_fraction": q["amorphous_fraction"].value if "amorphous_fraction" in q else None,
            "crystallite_size_nm": q["crystallite_size_nm"].value if "crystallite_size_nm" in q else None,
            "warnings": list(r.warnings)}


def run_cli(args) -> int:
    from ... import plugins
    from ...cli import emit
    from ...core.errors import SpecprocError
    from ...io import read

    proc = plugins.get("processors", "xrd.analyse")
    params = {"references": list(args.reference), "phases": args.phases, "wavelength_nm": args.wavelength,
              "zero_shift_deg": args.zero_shift}
    entries, results, failed = [], [], False
    for path in args.paths:
        try:
            m = read(path)
            r = proc(m, **params)
            entries.append(entry(r, path))
            results.append(r)
        except SpecprocError as exc:
            failed = True
            entries.append({"file": path, "error": exc.reason if exc.path else str(exc)})
    emit(entries, args.json)
    if args.report and results:
        from ...report import render_results

        render_results(results, args.report, title="specproc XRD report")
    return 1 if failed else 0
