"""``specproc nmr PATH... [--peaks PPM,...] [--n-peaks N] [--lineshape S] [--region LO:HI]
[--mas-rate HZ] [--json] [--report FILE.html]``: read, process, deconvolve every input."""
from __future__ import annotations

import argparse


def add_cli(subparsers) -> None:
    p = subparsers.add_parser("nmr", help="process and deconvolve NMR files (automatic peaks unless given)")
    p.add_argument("paths", nargs="+", metavar="PATH", help="Bruker folders, FIDs or spectra")
    p.add_argument("--peaks", type=_floats, default=None, help="peak positions, ppm: --peaks=-44.3,-41.2")
    p.add_argument("--n-peaks", type=int, default=None)
    p.add_argument("--lineshape", choices=["gaussian", "lorentzian", "pseudo-voigt", "voigt"], default="pseudo-voigt")
    p.add_argument("--region", type=_region, default=None, help="fitted ppm range: --region=-30:-55")
    p.add_argument("--mas-rate", type=float, default=None, help="MAS rate (Hz); default from the acquisition")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument("--report", default=None, help="write an HTML report to this file")
    p.set_defaults(func=run_cli)


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _region(text: str) -> tuple[float, float]:
    try:
        lo, hi = text.split(":")
        return float(lo), float(hi)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LO:HI in ppm, got {text!r}") from None


def entry(r, path: str) -> dict:
    """The JSON entry of one fit (contract of ``specproc nmr --json``)."""
    comps = [{k: row.get(k) for k in ("name", "center_ppm", "center_ppm_stderr", "fwhm_ppm", "fwhm_ppm_stderr",
                                       "area_fraction", "area_fraction_stderr", "shape", "n_sidebands")}
             for row in r.table.to_dict(orient="records")]
    return {"file": path, "sample": r.sample, "nucleus": r.meta.get("nucleus"), "components": comps,
            "fit": {k: r.stats.get(k) for k in ("r2", "redchi", "aic", "bic", "nfev", "success")},
            "warnings": list(r.warnings)}


def run_cli(args) -> int:
    from ... import plugins
    from ...cli import emit
    from ...core.errors import SpecprocError
    from ...io import read

    proc = plugins.get("processors", "nmr.deconvolve")
    params = {"peaks": args.peaks, "n_peaks": args.n_peaks, "lineshape": args.lineshape, "region": args.region,
              "mas_rate_hz": args.mas_rate}
    entries, results, failed = [], [], False
    measurements, paths = [], []
    for path in args.paths:
        try:
            measurements.append(read(path))
            paths.append(path)
        except SpecprocError as exc:
            entries.append((path, {"file": path, "error": exc.reason if exc.path else str(exc)}))
            failed = True
    outs = proc(measurements, params) if measurements else []
    for path, r in zip(paths, outs):
        if isinstance(r, Exception):
            entries.append((path, {"file": path, "error": getattr(r, "reason", str(r))}))
            failed = True
        else:
            entries.append((path, entry(r, path)))
            results.append(r)
    order = {p: i for i, p in enumerate(args.paths)}
    emit([e for _, e in sorted(entries, key=lambda pe: order.get(pe[0], 0))], args.json)
    if args.report and results:
        from .report import write_report

        write_report(results, args.report)
    return 1 if failed else 0
