"""``specproc ftir PATH... [--region LO:HI] [--peaks CM1,...] [--n-peaks N] [--baseline NAME]
[--compare-baseline NAME] [--shape S] [--atmosphere auto|model|mask|none] [--json] [--report FILE.html]``.

The options are generated from ``ftir.fit_bands``'s ``Params`` (:func:`specproc.runner.add_params_arguments`);
``--bands``, ``--n-bands`` and ``--max-bands`` (before the shared vocabulary) still work for one release.
"""
from __future__ import annotations

from ...runner import add_common_arguments, add_params_arguments, run_technique
from .processors import FitBandsParams


def add_cli(subparsers) -> None:
    p = subparsers.add_parser("ftir", help="FTIR band fitting (centre, FWHM, area with errors; CO2/H2O masked)")
    add_common_arguments(p, "OPUS, JCAMP-DX, SPC or CSV spectra")
    # one vocabulary (docs/architecture.md): --peaks / --n-peaks / --max-peaks as in every technique
    add_params_arguments(p, FitBandsParams, exclude=("baseline_params",),
                         deprecated={"peaks": "--bands", "n_peaks": "--n-bands", "max_peaks": "--max-bands"},
                         metavar={"peaks": "CM1,...|NAME=CM1,...", "region": "LO:HI", "saturation_limit": "A",
                                  "center_window": "CM1", "compare_baseline": "NAME"},
                         help={"peaks": "band start positions, cm-1: --peaks=2300,2225 or named "
                                        "--peaks=BH=2300,NBH=2225 (default: found automatically)"})
    p.set_defaults(func=lambda a: run_technique(a, processor="ftir.fit_bands", entry=entry, rows=rows,
                                                title="specproc FTIR report"))


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
