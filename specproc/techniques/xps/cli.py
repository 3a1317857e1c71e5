"""``specproc xps PATH... [--charge-ref "C 1s=284.8"] [--rsf TABLE] [--sputter-rate NM_PER_S] [--model FILE]
[--background shirley] [--interphase Li3N,Li-B] [--detection-limit AT%] [--json] [--report FILE.html]``.

Only the arguments and the JSON of one entry live here; reading, failures, output, the report and the
exit code are :func:`specproc.runner.run_technique`.
"""
from __future__ import annotations

import argparse


def _model_file(text: str):
    """``--model FILE.yaml|.json``: the template ``{region: [components]}``."""
    import json
    from pathlib import Path

    import yaml

    p = Path(text)
    if not p.is_file():
        raise argparse.ArgumentTypeError(f"model file not found: {text}")
    try:
        data = json.loads(p.read_text()) if p.suffix.lower() == ".json" else yaml.safe_load(p.read_text())
    except (ValueError, yaml.YAMLError) as exc:
        raise argparse.ArgumentTypeError(f"{text}: cannot parse the model: {exc}") from None
    if not isinstance(data, dict):
        raise argparse.ArgumentTypeError(f"{text}: the model must be a mapping {{region: [components]}}")
    return data


def add_cli(subparsers) -> None:
    from ...runner import add_common_arguments, add_params_arguments
    from .processors import FitProfileParams

    p = subparsers.add_parser("xps", help="XPS depth profiles (VAMAS): charge reference, fits, atomic %%, thickness")
    add_common_arguments(p, "VAMAS files (.vms, .npl)")
    # options of xps.fit_profile's Params (background choices, bounds, defaults: from the schema)
    add_params_arguments(p, FitProfileParams, rename={"lines": "--line"}, types={"model": _model_file},
                         metavar={"model": "FILE", "charge_ref": "'C 1s=284.8'", "charge_shift": "EV",
                                  "rsf": "TABLE", "sputter_rate": "NM_PER_S", "sputter_rate_stderr": "NM_PER_S",
                                  "detection_limit": "AT%", "interphase": "SPECIES,...", "regions": "REGION,...",
                                  "lines": "'REGION=LINE'", "max_shift": "EV"},
                         help={"model": "YAML/JSON template {region: [{name, center, ...}]} (default: peaks found "
                                        "per region)",
                               "rsf": "CSV/text table 'line, rsf' (default: built-in Scofield, Al Kα)",
                               "lines": "core line of a region whose name is not one, e.g. 'block 3=Si 2p' "
                                        "(repeatable; default: identified by position, stated in the warnings)"})
    p.set_defaults(func=run_cli)


def entry(r, path: str) -> dict:
    """The JSON entry of one file (contract of ``specproc xps --json``)."""
    comps = r.tables["components"]
    levels = []
    for lv, sub in comps.groupby("level", sort=True):
        first = sub.iloc[0]
        levels.append({"level": int(lv), "etch_time_s": first["etch_time_s"], "depth_nm": first["depth_nm"],
                       "components": [{k: row.get(k) for k in ("name", "region", "line", "be_eV", "be_eV_stderr",
                                                               "fwhm_eV", "fwhm_eV_stderr", "area", "area_stderr",
                                                               "atomic_percent", "atomic_percent_stderr", "at_bound",
                                                               "detected", "quantified", "basis")}
                                      for row in sub.to_dict(orient="records")]})
    from ...core.result import quantity_name

    q = r.quantities
    unit = r.meta.get("depth_unit", "nm")
    thick, thick_se = {}, {}
    species = [{k: row.get(k) for k in ("species", "present", "max_atomic_percent", "max_atomic_percent_stderr",
                                        "detection_limit_at_percent", "verdict")}
               for row in r.tables["species"].to_dict(orient="records")]
    for s in species:  # each species' thickness by the name its key gives (nothing parsed)
        v = q.get(quantity_name(f"species({s['species']})", f"thickness_{unit}"))
        if v is not None:
            thick[s["species"]], thick_se[s["species"]] = v.value, v.stderr
    it = q.get(f"interphase.thickness_{unit}")
    cs = q.get("charge_shift_eV")
    out = {"file": path, "sample": r.sample,
           "charge_shift_eV": cs.value if cs else r.meta.get("charge_shift_eV"),
           "charge_shift_eV_stderr": cs.stderr if cs else None, "charge_reference": r.meta.get("charge_reference"),
           "sputter_rate_nm_s": r.meta.get("sputter_rate_nm_s"), "levels": levels, "species": species,
           "detection_limit_at_percent": r.meta.get("detection_limit_at_percent"),
           ("thickness_nm" if unit == "nm" else "thickness_s"): thick,
           ("thickness_nm_stderr" if unit == "nm" else "thickness_s_stderr"): thick_se,
           "interphase_thickness_nm" if unit == "nm" else "interphase_thickness_s": it.value if it else None,
           "interphase_thickness_stderr": it.stderr if it else None,
           "warnings": list(r.warnings)}
    if unit != "nm":
        out["thickness_nm"] = {}
        out["thickness_nm_stderr"] = {}
    return out


def rows(e: dict) -> list[dict]:
    """Table rows of one entry (text output): one row per species, values with their ±; an absent
    species reads "< LIMIT" (below the detection limit), not a bare 0."""
    from ...core.result import Quantity as Q

    th, th_se = e.get("thickness_nm") or {}, e.get("thickness_nm_stderr") or {}
    out = []
    for s in e["species"]:
        lim = s.get("detection_limit_at_percent", e.get("detection_limit_at_percent"))
        at = (Q(s["max_atomic_percent"], s.get("max_atomic_percent_stderr"), "at%") if s["present"] or lim is None
              else f"below detection limit {lim:g} at%")
        out.append({"sample": e["sample"], "species": s["species"], "present": s["present"], "max": at,
                    "thickness": Q(th.get(s["species"]), th_se.get(s["species"]), "nm"),
                    "charge_shift": Q(e["charge_shift_eV"], e.get("charge_shift_eV_stderr"), "eV")})
    return out


def run_cli(args) -> int:
    from ...runner import run_technique

    return run_technique(args, processor="xps.fit_profile", entry=entry, title="specproc XPS report", rows=rows)
