"""``specproc afm PATH... [--channel NAME] [--level plane|poly2|rows|none] [--model hertz-paraboloid|...]
[--tip-radius M] [--half-angle DEG] [--poisson NU] [--max-indentation M] [--json] [--report FILE.html]``.

Image files (.gwy, .sxm, NetCDF maps) are levelled and analysed (roughness, protrusions, modulus
channel); force-curve files (JPK, Asylum .ibw) are fitted curve by curve. One JSON entry per file:
``{file, sample, channels, roughness: {Sa_m, Sq_m, ...}, modulus: {mean_Pa, median_Pa, std_Pa,
n_valid, n_invalid, ...}, protrusions: {count, density_per_um2}, warnings}`` (keys that do not apply
to a file are absent).
"""
from __future__ import annotations

from ...runner import add_common_arguments, add_params_arguments, run_technique
from .processors import MapParams


def add_cli(subparsers) -> None:
    p = subparsers.add_parser("afm", help="AFM: height/modulus maps (roughness, protrusions) and force-curve moduli")
    add_common_arguments(p, "AFM files: .gwy, .sxm, NetCDF maps, JPK force maps/curves, Asylum .ibw")
    # options of afm.analyse_map's Params (its force-curve fields included)
    add_params_arguments(p, MapParams,
                         rename={"tip_radius_m": "--tip-radius", "half_angle_deg": "--half-angle",
                                 "poisson_ratio": "--poisson", "max_indentation_m": "--max-indentation"},
                         metavar={"channel": "NAME", "modulus_channel": "NAME", "poisson_ratio": "NU",
                                  "baseline_fraction": "F", "contact_threshold_sigma": "SIGMA",
                                  "outlier_sigma": "SIGMA", "protrusion_threshold_sigma": "SIGMA",
                                  "modulus_spike_sigma": "SIGMA"})
    p.set_defaults(func=_run)


def _run(a) -> int:
    return run_technique(a, processor="afm.analyse_map", entry=entry, title="AFM", rows=rows)


def entry(r, path: str) -> dict:
    """The JSON entry of one analysed file (contract of ``specproc afm --json``)."""
    q = r.quantities

    def v(name):
        return q[name].value if name in q else None

    e = {"file": path, "sample": r.sample, "channels": list(r.meta.get("channels") or [])}
    if "roughness.Sa_m" in q:
        e["roughness"] = {x.property: x.value for x in q.values() if x.component == "roughness"}
    if "modulus.mean_Pa" in q:
        e["modulus"] = {"mean_Pa": v("modulus.mean_Pa"), "mean_stderr_Pa": q["modulus.mean_Pa"].stderr,
                        "median_Pa": v("modulus.median_Pa"), "std_Pa": v("modulus.std_Pa"),
                        "n_valid": v("modulus.n_valid"), "n_invalid": v("modulus.n_invalid")}
    if "protrusions.count" in q:
        e["protrusions"] = {"count": v("protrusions.count"), "density_per_um2": v("protrusions.density_per_um2"),
                            "density_stderr_per_um2": q["protrusions.density_per_um2"].stderr}
    if r.meta.get("kind") == "force_map":
        e["force"] = {"model": r.meta.get("model"), "n_curves": r.stats.get("n_curves"),
                      "n_good": r.stats.get("n_good"), "tabor_mu": v("force.tabor_mu"),
                      "suggested_model": r.meta.get("suggested_model")}
    e["warnings"] = list(r.warnings)
    return e


def rows(e: dict) -> list[dict]:
    """Table rows of one entry (text output): values in their natural unit (nm, GPa: core.numbers),
    the modulus and density with their ±."""
    from ...core.result import Quantity as Q

    row = {"sample": e.get("sample")}
    for k in ("Sa_m", "Sq_m"):
        if "roughness" in e:
            row[k[:-2]] = Q(e["roughness"].get(k), None, "m")
    if "protrusions" in e:
        row["protrusions"] = e["protrusions"]["count"]
        row["per_um2"] = Q(e["protrusions"]["density_per_um2"], e["protrusions"].get("density_stderr_per_um2"))
    if "modulus" in e:
        row["E_mean"] = Q(e["modulus"]["mean_Pa"], e["modulus"].get("mean_stderr_Pa"), "Pa")
        row["n_invalid"] = e["modulus"]["n_invalid"]
    return [row]
