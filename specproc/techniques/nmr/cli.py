"""``specproc nmr PATH... [--peaks PPM,...] [--n-peaks N] [--lineshape S] [--region LO:HI]
[--mas-rate HZ] [--row N] [--json] [--report FILE.html]``: read, process, deconvolve every input.

Only the arguments and the JSON of one entry live here; reading, failures, output, the report
and the exit code are :func:`specproc.runner.run_technique`.
"""
from __future__ import annotations

import argparse
import math


def _rate(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of Hz, got {text!r}") from None
    if not (math.isfinite(v) and v >= 0):
        raise argparse.ArgumentTypeError(f"the MAS rate must be a finite number >= 0 Hz, got {text!r}")
    return v


def _count(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {text!r}")
    return v


def add_cli(subparsers) -> None:
    from ...runner import add_common_arguments, floats_arg, region_arg
    from .processors import NMRShape

    p = subparsers.add_parser("nmr", help="process and deconvolve NMR files (automatic peaks unless given)")
    add_common_arguments(p, "Bruker folders, Varian .fid folders, JCAMP-DX or CSV spectra")
    p.add_argument("--peaks", type=floats_arg, default=None,
                   help="peak start positions, ppm (starts, not fixed): --peaks=-44.3,-41.2")
    p.add_argument("--n-peaks", type=_count, default=None, metavar="N",
                   help="fit exactly N components picked automatically (default: chosen by BIC and a "
                        "5-sigma area rule, see docs/nmr.md); ignored with --peaks")
    p.add_argument("--lineshape", choices=list(NMRShape.__args__), default="pseudo-voigt")
    p.add_argument("--region", type=region_arg, default=None, help="fitted ppm range: --region=-30:-55")
    p.add_argument("--baseline", choices=["none", "constant", "linear", "quadratic"], default=None,
                   help="polynomial baseline fitted with the lines (default: constant)")
    p.add_argument("--mas-rate", type=_rate, default=None, metavar="HZ",
                   help="MAS rate (Hz); default from the acquisition; 0 = static (no sidebands)")
    p.add_argument("--row", type=int, default=None, metavar="N",
                   help="row of 2D data (pseudo-2D series, arrayed experiments) to fit")
    p.set_defaults(func=run_cli)


def entry(r, path: str) -> dict:
    """The JSON entry of one fit (contract of ``specproc nmr --json``)."""
    keys = ("name", "center_ppm", "center_ppm_stderr", "fwhm_ppm", "fwhm_ppm_stderr", "area_fraction",
            "area_fraction_stderr", "shape", "n_sidebands", "at_bound", "detected")
    # the rows, not a DataFrame: a batch of 1,000 results builds no table (Result.records)
    comps = [{k: row.get(k, True if k == "detected" else None) for k in keys} for row in r.records()]
    return {"file": path, "sample": r.sample, "nucleus": r.meta.get("nucleus"), "components": comps,
            "fit": {k: r.stats.get(k) for k in ("r2", "redchi", "aic", "bic", "nfev", "success")},
            "warnings": list(r.warnings)}


def rows(e: dict) -> list[dict]:
    """Table rows of one entry (text output without --json)."""
    return [{"sample": e["sample"], "component": c["name"] + ("" if c.get("detected", True) else " (not detected)"),
             "shift_ppm": c["center_ppm"], "±": c["center_ppm_stderr"], "fwhm_ppm": c["fwhm_ppm"],
             "fraction": c["area_fraction"], "r2": e["fit"]["r2"]}
            for c in e["components"]]


def run_cli(args) -> int:
    from ...runner import run_technique

    params = {"peaks": args.peaks, "n_peaks": args.n_peaks, "lineshape": args.lineshape, "region": args.region,
              "mas_rate_hz": args.mas_rate, "row": args.row, "baseline": args.baseline}
    return run_technique(args, processor="nmr.deconvolve", params=params, entry=entry, title="specproc NMR report",
                         rows=rows)
