"""``specproc nmr PATH... [--peaks PPM,...] [--n-peaks N] [--shape S] [--region LO:HI]
[--mas-rate HZ] [--apodization W --lb HZ] [--reference PPM] [--row N] [--json] [--report FILE.html]``:
read, process, deconvolve every input.

Only the arguments and the JSON of one entry live here; reading, failures, output, the report
and the exit code are :func:`specproc.runner.run_technique`.
"""
from __future__ import annotations

import argparse
import math


def processing_of(args) -> dict | None:
    """The ``processing`` parameter from ``--apodization``, ``--lb`` and ``--reference`` (None: defaults)."""
    out = {}
    if getattr(args, "apodization", None) is not None:
        out["apodization"] = args.apodization
    if getattr(args, "lb", None) is not None:
        if args.apodization == "none":
            raise ValueError("--lb with --apodization none: no window to broaden with")
        out["lb_hz"] = args.lb
        out.setdefault("apodization", "exponential")
    if getattr(args, "reference", None) is not None:
        out["reference"] = args.reference
    return out or None


#: per-peak shapes of ``--shape NAME=SHAPE`` besides the registry's symmetric ones
MODEL_SHAPES = ("quadrupolar", "czjzek", "ext-czjzek", "csa")


def _shapes(text: str) -> str | dict:
    """``--shape pseudo-voigt`` (every component) or ``--shape N2BH=quadrupolar,BH4=czjzek`` -> {name: shape}."""
    from .processors import NMRShape

    common = tuple(NMRShape.__args__)
    if "=" not in text:
        if text.strip() not in common:
            raise argparse.ArgumentTypeError(f"expected SHAPE (one of {', '.join(common)}) or NAME=SHAPE,...; "
                                             f"got {text!r}")
        return text.strip()
    allowed = common + MODEL_SHAPES
    out = {}
    for item in text.replace(" ", "").split(","):
        if not item:
            continue
        name, sep, shape = item.partition("=")
        if not sep or not name or shape not in allowed:
            raise argparse.ArgumentTypeError(f"expected NAME=SHAPE with SHAPE one of {', '.join(allowed)}; got {item!r}")
        out[name] = shape
    return out


def peaks_with_shapes(peaks, shapes: dict | None):
    """The ``peaks`` parameter from ``--peaks`` and ``--shape`` (names p1, p2... for bare positions)."""
    if not shapes:
        return peaks
    if peaks is None:
        raise ValueError("--shape needs --peaks (the named sites it applies to)")
    named = dict(peaks) if isinstance(peaks, dict) else {f"p{i}": v for i, v in enumerate(peaks, 1)}
    unknown = [n for n in shapes if n not in named]
    if unknown:
        raise ValueError(f"--shape names {unknown} are not among the peaks {list(named)}")
    return [dict({"name": n, "center": c}, **({"shape": shapes[n]} if n in shapes else {})) for n, c in named.items()]


def add_cli(subparsers) -> None:
    from ...runner import add_common_arguments, add_params_arguments, number_arg
    from .processors import DeconvolveParams, ProcessParams

    p = subparsers.add_parser("nmr", help="process and deconvolve NMR files (automatic peaks unless given)")
    add_common_arguments(p, "Bruker folders, Varian .fid folders, JCAMP-DX or CSV spectra")
    # every option of nmr.deconvolve's Params (types, bounds, choices, defaults, help: from the schema);
    # --shape takes one shape for every component or per-peak NAME=SHAPE (run_cli), --lineshape is its old name
    add_params_arguments(p, DeconvolveParams, exclude=("links", "processing"), rename={"mas_rate_hz": "--mas-rate"},
                         types={"shape": _shapes}, metavar={"shape": "SHAPE|NAME=SHAPE,...", "center_window": "PPM"},
                         deprecated={"shape": "--lineshape"},
                         help={"peaks": "peak start positions, ppm (starts, not fixed): --peaks=-44.3,-41.2 or named "
                                        "--peaks=N2BH=25,BH4=-41 (default: picked automatically)",
                               "shape": "lineshape of every component (gaussian, lorentzian, pseudo-voigt, voigt; "
                                        "default: pseudo-voigt), or per peak: --shape N2BH=quadrupolar,BH4=czjzek "
                                        "(quadrupolar: CT site with CQ, eta; czjzek: Czjzek CQ distribution; "
                                        "ext-czjzek: extended Czjzek (CQ0, eta0, eps); csa: chemical-shift anisotropy, "
                                        "static or with its sideband manifold; center_ppm is then the isotropic "
                                        "shift)"})
    # the processing of FIDs: the `processing` parameter (a dict of nmr.process's options), built in run_cli
    add_params_arguments(p, ProcessParams, ("apodization", "lb_hz", "reference"), rename={"lb_hz": "--lb"},
                         types={"reference": number_arg("a reference shift in ppm")}, metavar={"reference": "PPM"},
                         record=False)
    p.set_defaults(func=run_cli)


def entry(r, path: str) -> dict:
    """The JSON entry of one fit (contract of ``specproc nmr --json``)."""
    keys = ("name", "center_ppm", "center_ppm_stderr", "fwhm_ppm", "fwhm_ppm_stderr", "area_fraction",
            "area_fraction_stderr", "shape", "n_sidebands", "at_bound", "detected")
    # the rows, not a DataFrame: a batch of 1,000 results builds no table (Result.records)
    comps = [dict({k: row.get(k, True if k == "detected" else None) for k in keys},
                  **{k: _json_value(row[k]) for k in MODEL_JSON_KEYS if _present(row, k)})
             for row in r.records()]
    return {"file": path, "sample": r.sample, "nucleus": r.meta.get("nucleus"), "components": comps,
            "processing": processing_json(r.meta),
            "fit": fit_json(r.stats, ("r2", "redchi", "aic", "bic", "nfev", "success")),
            "warnings": list(r.warnings)}


def processing_json(meta: dict) -> dict:
    """What was applied before the fit: window and line broadening (FIDs), reference shift."""
    proc = meta.get("processing") or {}
    return {"apodization": meta.get("apodization", proc.get("apodization")),
            "lb_hz": _json_value(meta.get("lb_hz", proc.get("lb_hz"))),
            "reference_shift_ppm": _json_value(proc.get("reference_shift_ppm")),
            "phase_deg": proc.get("phase_deg")}


#: model parameters in a component's JSON when its shape has them (center_ppm is then the isotropic shift)
MODEL_JSON_KEYS = ("cq_mhz", "cq_mhz_stderr", "eta", "eta_stderr", "sigma_mhz", "sigma_mhz_stderr",
                   "delta_aniso_ppm", "delta_aniso_ppm_stderr", "cq0_mhz", "cq0_mhz_stderr", "eta0", "eta0_stderr",
                   "eps", "eps_stderr", "unconstrained")


def _json_value(v):
    if isinstance(v, (bool, str)) or v is None:
        return v
    try:
        f = float(v)
    except (TypeError, ValueError):
        return v
    return f if math.isfinite(f) else None


def _present(row: dict, k: str) -> bool:
    """The row has the model parameter ``k`` (a mixed table fills other models' columns with NaN)."""
    base = k[:-len("_stderr")] if k.endswith("_stderr") else k
    v = row.get(base)
    return base in row and v is not None and not (isinstance(v, float) and math.isnan(v))


def fit_json(stats: dict, keys) -> dict:
    """The ``fit`` object of an entry: ``redchi`` is noise-normalised (≈ 1 for a fit down to the noise)
    or None when the fit gives no noise estimate (:func:`specproc.core.numbers.noise_redchi`)."""
    from ...core.numbers import noise_redchi

    return {k: (noise_redchi(stats) if k == "redchi" else stats.get(k)) for k in keys}


def rows(e: dict) -> list[dict]:
    """Table rows of one entry (text output without --json): every fitted value with its ±."""
    from ...core.result import Quantity as Q

    return [{"sample": e["sample"], "component": c["name"] + ("" if c.get("detected", True) else " (not detected)"),
             "shift": Q(c["center_ppm"], c["center_ppm_stderr"], "ppm"),
             "fwhm": Q(c["fwhm_ppm"], c.get("fwhm_ppm_stderr"), "ppm"),
             "area_fraction": Q(c["area_fraction"], c.get("area_fraction_stderr")), "r2": e["fit"]["r2"]}
            for c in e["components"]]


def run_cli(args) -> int:
    from ...runner import run_technique

    import sys

    shapes = args.shape if isinstance(args.shape, dict) else None
    if shapes is not None:
        args.shape = None            # per-peak shapes go into the peaks; the Params' shape stays its default
    try:
        peaks = peaks_with_shapes(args.peaks, shapes)
        processing = processing_of(args)
    except ValueError as exc:
        print(f"specproc nmr: error: {exc}", file=sys.stderr)
        return 2
    # the options generated from the Params reach it through run_technique; these two are built here
    return run_technique(args, processor="nmr.deconvolve", params={"peaks": peaks, "processing": processing},
                         entry=entry, title="specproc NMR report", rows=rows)
