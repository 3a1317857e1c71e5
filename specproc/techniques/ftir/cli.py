"""``specproc ftir PATH... [--region LO:HI] [--bands CM1,...] [--n-bands N] [--baseline NAME]
[--compare-baseline NAME] [--shape S] [--atmosphere auto|model|mask|none] [--json] [--report FILE.html]``."""
from __future__ import annotations

from ...runner import add_common_arguments, floats_arg, region_arg, run_technique
from .processors import BAND_SHAPES, BASELINE_NAMES


def add_cli(subparsers) -> None:
    p = subparsers.add_parser("ftir", help="FTIR band fitting (centre, FWHM, area with errors; CO2/H2O masked)")
    add_common_arguments(p, "OPUS, JCAMP-DX, SPC or CSV spectra")
    p.add_argument("--region", type=region_arg, default=None, metavar="LO:HI", help="fitted range in cm-1")
    p.add_argument("--bands", type=floats_arg, default=None, metavar="CM1,...",
                   help="band start positions in cm-1 (default: found automatically)")
    p.add_argument("--n-bands", type=int, default=None, metavar="N", help="number of bands to find")
    p.add_argument("--baseline", choices=BASELINE_NAMES, default=None,
                   help="baseline: fitted polynomial (default linear) or a pybaselines method")
    p.add_argument("--compare-baseline", choices=BASELINE_NAMES, default=None, metavar="NAME",
                   help="refit the same bands with a second baseline and show both (table, plots, warnings)")
    p.add_argument("--shape", choices=BAND_SHAPES, default=None, help="band shape (default pseudo-voigt)")
    p.add_argument("--atmosphere", choices=("auto", "model", "mask", "none"), default=None,
                   help="atmospheric CO2/H2O: auto (default) masks what is recognised and models CO2 overlapping "
                        "a band; model: always model recognised CO2; mask: always mask CO2; none")
    p.set_defaults(func=lambda a: run_technique(
        a, processor="ftir.fit_bands", entry=entry, rows=rows, title="specproc FTIR report",
        params={"region": a.region, "bands": a.bands, "n_bands": a.n_bands, "baseline": a.baseline,
                "shape": a.shape, "atmosphere": a.atmosphere, "compare_baseline": a.compare_baseline}))


def entry(r, path: str) -> dict:
    """The JSON entry of one file (contract of ``specproc ftir --json``)."""
    keys = ("name", "center_cm1", "center_cm1_stderr", "fwhm_cm1", "fwhm_cm1_stderr", "height", "height_stderr",
            "area", "area_stderr", "max_cm1", "centroid_cm1", "detected")
    bands = [{k: row.get(k, True if k == "detected" else None) for k in keys}
             for row in r.table.to_dict(orient="records")]
    return {"file": path, "sample": r.sample, "y_kind": r.meta.get("y_kind"), "region_cm1": r.meta.get("region_cm1"),
            "bands": bands,
            "masked_cm1": [[a["lo"], a["hi"]] for a in r.meta.get("atmosphere", []) if not a.get("modelled")],
            "atmosphere_modelled": list(r.meta.get("co2_fit") or []),
            "baseline_comparison": list((r.meta.get("baseline_comparison") or {}).get("rows", [])),
            "fit": _fit_json(r.stats), "warnings": list(r.warnings)}


def _fit_json(stats: dict) -> dict:
    """``redchi`` noise-normalised (≈ 1 for a fit down to the noise) or None, never a residual variance."""
    from ...core.numbers import noise_redchi

    return {"r2": stats.get("r2"), "redchi": noise_redchi(stats), "noise_rms": stats.get("noise_rms")}


def rows(e: dict) -> list[dict]:
    """Table rows of one entry (text output): every fitted value with its ±."""
    from ...core.result import Quantity as Q

    return [{"sample": e["sample"], "band": b["name"] + ("" if b.get("detected", True) else " (not detected)"),
             "center": Q(b["center_cm1"], b["center_cm1_stderr"], "cm-1"),
             "fwhm": Q(b["fwhm_cm1"], b["fwhm_cm1_stderr"], "cm-1"), "height": Q(b["height"], b["height_stderr"]),
             "area": Q(b["area"], b["area_stderr"])} for b in e["bands"]]
