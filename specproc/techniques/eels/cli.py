"""``specproc eels PATH... [--edge "B K"] [--background-window LO:HI] [--background KIND]
[--lowloss FILE] [--energy-offset EV] [--json] [--report FILE.html]``: near-edge fit of every input.

Only the arguments and the JSON of one entry live here; reading, failures, output, the report and the
exit code are :func:`specproc.runner.run_technique`.
"""
from __future__ import annotations


def add_cli(subparsers) -> None:
    from ...runner import add_common_arguments, add_params_arguments
    from .processors import FitEdgeParams

    p = subparsers.add_parser("eels", help="EELS near-edge fits: π* energy of spectra and maps of spectrum images")
    add_common_arguments(p, "EELS spectra or spectrum images (.dm3, .dm4, .msa, .hspy, .zspy, .nc)")
    # options of eels.fit_edge's Params (shared vocabulary: --region, --snr)
    add_params_arguments(p, FitEdgeParams, rename={"energy_offset_eV": "--energy-offset"},
                         metavar={"edge": "'B K'", "lowloss": "FILE", "snr": "SIGMA", "region": "LO:HI"})
    p.set_defaults(func=run_cli)


def run_cli(args) -> int:
    from ...runner import run_technique

    return run_technique(args, processor="eels.fit_edge", entry=entry, title="specproc EELS", rows=rows)


def _q(r, name):
    q = r.quantities.get(name)
    return (None, None) if q is None else (q.value, q.stderr)


def entry(r, path: str) -> dict:
    """The JSON entry of one file (contract of ``specproc eels --json``).

    ``{"file", "sample", "edge", "onset_eV", "peaks": [{"name": "pi*", "energy_eV", "energy_eV_stderr",
    "fwhm_eV"}, {"name": "sigma*", ...}], "pi_sigma_ratio", "fit", "energy_calibration", "warnings"}``;
    a spectrum image adds ``"map": {"shape": [ny, nx], "pi_star_energy_eV": {"mean", "median", "std",
    "n_valid"}, "n_failed"}`` (its peaks are the pixel means with the standard error of the mean).
    """
    from ...core.numbers import finite_or_none, noise_redchi

    onset, onset_se = _q(r, "edge.onset_eV")
    peaks = []
    for label, key in (("pi*", "pi_star"), ("sigma*", "sigma_star")):
        e, se = _q(r, f"{key}.energy_eV")
        if e is None:
            continue
        pk = {"name": label, "energy_eV": finite_or_none(e), "energy_eV_stderr": finite_or_none(se)}
        if key == "pi_star":
            f, fse = _q(r, "pi_star.fwhm_eV")
            i, ise = _q(r, "pi_star.intensity")
        else:
            t = r.tables.get("peaks")
            sub = t[t["name"] == "sigma*"] if t is not None and len(t) else None
            f, fse = ((sub["fwhm_eV"].iloc[0], sub["fwhm_eV_stderr"].iloc[0]) if sub is not None and len(sub)
                      else (None, None))
            i, ise = _q(r, "sigma_star.intensity")
        pk.update(fwhm_eV=finite_or_none(f), fwhm_eV_stderr=finite_or_none(fse), intensity=finite_or_none(i),
                  intensity_stderr=finite_or_none(ise))
        peaks.append(pk)
    ratio, ratio_se = _q(r, "pi_sigma_ratio")
    out = {"file": path, "sample": r.sample, "edge": r.meta.get("edge"), "onset_eV": finite_or_none(onset),
           "onset_eV_stderr": finite_or_none(onset_se), "peaks": peaks,
           "pi_sigma_ratio": finite_or_none(ratio), "pi_sigma_ratio_stderr": finite_or_none(ratio_se),
           "fit": {k: (noise_redchi(r.stats) if k == "redchi" else r.stats.get(k))
                   for k in ("status", "r2", "r2_net", "redchi", "edge_snr", "success") if k in r.stats},
           "energy_calibration": r.meta.get("energy_calibration"), "warnings": list(r.warnings)}
    summary = r.meta.get("map_summary")
    if summary is not None:
        out["map"] = {"shape": r.meta.get("shape"),
                      "pi_star_energy_eV": {k: summary.get(k) for k in ("mean", "median", "std", "n_valid")},
                      "n_pixels": summary.get("n_pixels"), "n_failed": r.stats.get("n_failed")}
        out["fit"] = {k: r.stats.get(k) for k in ("n_valid", "n_failed", "median_r2_net")}
        # a map's χ²: the median over its pixels of the noise-normalised reduced χ² (≈ 1 at the noise)
        out["fit"]["redchi"] = finite_or_none(r.stats.get("median_redchi_noise"))
    return out


def rows(e: dict) -> list[dict]:
    """Text-table rows of one entry."""
    pi = next((p for p in e.get("peaks", []) if p["name"] == "pi*"), {})
    from ...core.result import Quantity as Q

    row = {"sample": e.get("sample"), "edge": e.get("edge"),
           "pi*": Q(pi.get("energy_eV"), pi.get("energy_eV_stderr"), "eV"),
           "fwhm": Q(pi.get("fwhm_eV"), pi.get("fwhm_eV_stderr"), "eV"),
           "onset": Q(e.get("onset_eV"), e.get("onset_eV_stderr"), "eV"),
           "pi*/sigma*": Q(e.get("pi_sigma_ratio"), e.get("pi_sigma_ratio_stderr"))}
    if "map" in e:
        mp = e["map"]
        shape = mp.get("shape") or []
        row.update(map="x".join(str(v) for v in shape),
                   median_eV=mp["pi_star_energy_eV"]["median"], n_valid=mp["pi_star_energy_eV"]["n_valid"])
    return [row]
