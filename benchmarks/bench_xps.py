"""Benchmark: a 100-level x 5-region XPS depth profile through the batch engine vs an lmfit loop.

    .venv/bin/python benchmarks/bench_xps.py [--levels 100]

The study's profile (Li 1s, B 1s, N 1s, C 1s, O 1s; 9 GL(30) components; Shirley backgrounds) is
generated with ``levels`` etch levels (sample_data/generate_xps.py's concentrations) and fitted:

* ``fit_profile``: ``sp.xps.fit_profile`` end to end (read, charge reference, every region's template on
  every level through :func:`specproc.fitting.fit_batch`, background end-point error refits, atomic %,
  thickness) — the user's path;
* ``batch_only``: only the region fits (one ``fit_batch`` per region, all levels at once);
* ``lmfit_loop``: the same ModelSpec, backgrounds and starting values fitted level by level with lmfit
  (``ModelSpec.to_lmfit`` + ``Model.fit``), timed on every level.

Prints the timings and the largest centre difference between the engine and lmfit, and saves them to
benchmarks/results/xps.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "sample_data"))


def make_file(levels, path):
    import generate_xps as G

    from specproc.techniques.xps.rsf import rsf_for
    from specproc.testing.xps_synth import region_spectra, write_vamas

    etch = np.arange(levels) * (3100.0 / max(levels - 1, 1))
    z = etch * G.RATE_NM_S
    conc = G.concentrations(z, True)
    regions = []
    for k, (reg, (lo, hi, comps)) in enumerate(G.REGIONS.items()):
        be = np.round(np.arange(hi, lo - 1e-9, -0.1), 2)
        lines = [{"center": c, "fwhm": w, "mixing": G.MIXING} for _, c, w in comps]
        areas = np.stack([conc[(reg, s)] * rsf_for(reg) * G.SCALE for s, _, _ in comps], axis=1)
        Y, _, _ = region_spectra(be, lines, areas, shift=1.3, base=300.0 + 100 * k, seed=k)
        el, tr = reg.split()
        regions.append({"species": el, "transition": tr, "be": be, "Y": Y})
    write_vamas(path, regions, etch, sample="bench", sputter_rate=G.RATE_NM_S)


MODEL = {
    "Li 1s": [{"name": "Li metal", "center": 52.6, "fwhm": 1.0}, {"name": "Li+", "center": 55.0, "fwhm_bounds": [1.0, 2.0]}],
    "B 1s": [{"name": "Li-B", "center": 187.5}, {"name": "B-N", "center": 190.6}],
    "N 1s": [{"name": "Li3N", "center": 398.6}],
    "C 1s": [{"name": "C-C", "center": 284.8}, {"name": "Li2CO3", "center": 290.0}],
    "O 1s": [{"name": "Li2O", "center": 528.6}, {"name": "Li2CO3", "center": 531.5}],
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--levels", type=int, default=100)
    args = ap.parse_args()
    import warnings

    import specproc as sp
    from specproc.fitting import fit_batch
    from specproc.techniques.xps import backgrounds as bgs
    from specproc.techniques.xps.fitting import region_data
    from specproc.techniques.xps.model import area_expression, compile_region, parse_template

    with tempfile.TemporaryDirectory() as td:
        path = Path(td) / "bench.vms"
        make_file(args.levels, path)
        m = sp.read(path)
        sp.xps.fit_profile(m, model={"N 1s": MODEL["N 1s"]}, charge_ref=None)  # warm-up (numba compile)
        t0 = time.perf_counter()
        r = sp.xps.fit_profile(m, model=MODEL, interphase=["Li3N", "Li-B"])
        t_profile = time.perf_counter() - t0
    shift = r.quantities["charge_shift_eV"].value
    tmpl = parse_template(MODEL)
    t_batch = 0.0
    t_lmfit = 0.0
    worst = 0.0
    nfail = 0
    for reg, comps in tmpl.items():
        x, Y = region_data(m, reg)
        x = x + shift
        B = bgs.shirley(x, Y, n_avg=7)
        S = Y - B
        spec, info = compile_region(reg, comps)
        model, params = spec.to_lmfit(x, S.mean(axis=0))
        for n, e in area_expression(spec, info).items():
            params.add(n, expr=e)
        w = 1 / np.sqrt(np.maximum(Y, 1))
        t0 = time.perf_counter()
        ds = fit_batch(model, x, S, params=params, weights=w)
        t_batch += time.perf_counter() - t0
        t0 = time.perf_counter()
        for lv in range(S.shape[0]):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = model.fit(S[lv], params.copy(), x=x, weights=w[lv])
            if not res.success:
                nfail += 1
            for i in info:
                c = i["prefix"] + "center"
                big = float(ds[i["prefix"] + "total_area"].values[lv]) > 5 * float(ds[i["prefix"] + "total_area_stderr"].values[lv])
                if big:
                    worst = max(worst, abs(res.params[c].value - float(ds[c].values[lv])))
        t_lmfit += time.perf_counter() - t0
    out = {"levels": args.levels, "regions": len(tmpl), "components": sum(len(v) for v in tmpl.values()),
           "fit_profile_s": round(t_profile, 3), "batch_region_fits_s": round(t_batch, 3),
           "lmfit_loop_s": round(t_lmfit, 3), "speedup_batch_vs_lmfit": round(t_lmfit / t_batch, 1),
           "max_center_difference_eV": worst, "lmfit_failures": nfail,
           "interphase_thickness_nm": r.quantities["interphase.thickness_nm"].value,
           "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
           "python": platform.python_version()}
    print(json.dumps(out, indent=1))
    (ROOT / "benchmarks" / "results").mkdir(exist_ok=True)
    (ROOT / "benchmarks" / "results" / "xps.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
