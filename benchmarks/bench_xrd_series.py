"""Benchmark: a 100-pattern XRD series fitted through the batch engine vs lmfit loops.

    .venv/bin/python benchmarks/bench_xrd_series.py [--n 100]

Three ways to fit the same 5 LiBH4 reflections (Kα1/Kα2 doublets, linear local baseline) in
every pattern of a synthetic in-situ heating series (cell expanding by 1 %):

* ``batch``: :func:`specproc.xrd.fit_series` -> :func:`specproc.fitting.batch.fit_batch`;
* ``lmfit_modelspec``: the same ModelSpec (Kα2 as a Satellite) through fit_batch's lmfit loop
  (``fit_series(method="lmfit")``; lmfit evaluates the satellite links through asteval) — timed on a
  subset and reported per pattern;
* ``lmfit_single_path``: specproc's single-pattern path (``fit_spec`` per window: batch-engine
  optimum, lmfit confirmation, robust covariance) in a Python loop.

Prints the timings and saves them to benchmarks/results/xrd_series.json.

Agreement: on the same data and starting values the batch engine and the lmfit ModelSpec loop
must agree to 1e-3° in 2θ. Before the fix they differed by up to 0.014° (patterns 0–4, the 002
reflection): not a different minimum but lmfit's ``leastsq`` freezing a centre whose start sat
at the midpoint of its symmetric bounds (lmfit's sine bound transform gives an internal value
~1e-13 there and MINPACK's relative finite-difference step vanishes; χ² 947 vs 131 for the
engine). Fixed on the lmfit side (asymmetric centre bounds, ``specproc.fitting.models.unfreeze_centers``,
same starting values from the mean pattern); the JSON records ``lmfit_agreement_fix``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

PEAKS = [17.95, 23.93, 24.79, 26.18, 26.99]
LIBH4 = {"a": 7.17858, "b": 4.43686, "c": 6.80321}


def make_series(n):
    from specproc.testing.xrd_synth import measurement, synth_pattern

    grid = np.arange(15.0, 40.0, 0.02)
    pats = []
    for i, s in enumerate(np.linspace(1.0, 1.01, n)):
        x, y, _ = synth_pattern([{"phase": "LiBH4", "cell": {k: v * s for k, v in LIBH4.items()}}], grid,
                                seed=100 + i, counts=3000)
        pats.append(measurement(x, y, sample=f"T{i:03d}"))
    return pats


def main():
    import specproc as sp
    from specproc.techniques.xrd.peaks import fit_peaks_array

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--n-lmfit", type=int, default=10, help="patterns for the (slow) lmfit ModelSpec loop")
    args = ap.parse_args()
    pats = make_series(args.n)
    sp.xrd.fit_series(pats[:4], peaks=PEAKS)  # warm-up (numba compilation cache)

    t = time.perf_counter()
    rb = sp.xrd.fit_series(pats, peaks=PEAKS)
    t_batch = time.perf_counter() - t

    t = time.perf_counter()
    rl = sp.xrd.fit_series(pats[:args.n_lmfit], peaks=PEAKS, method="lmfit")
    t_lm = time.perf_counter() - t

    t = time.perf_counter()
    singles = []
    for j, m in enumerate(pats):
        r = fit_peaks_array(m.coords["two_theta"].values, m.values, wavelength_nm=0.15405980,
                            kalpha2=(0.15405980, 0.15444260, 0.5),
                            peaks=list(rb.data.two_theta_deg.isel(pattern=j).values))
        singles.append([p["two_theta_deg"] for p in r["peaks"]])
    t_single = time.perf_counter() - t
    ok = [j for j, s in enumerate(singles) if len(s) == len(PEAKS)]
    dev = float(np.max(np.abs(np.array([singles[j] for j in ok]) - rb.data.two_theta_deg.values[ok])))
    dev_lm = float(np.nanmax(np.abs(rl.data.two_theta_deg.values - rb.data.two_theta_deg.values[:args.n_lmfit])))
    out = {
        "n_patterns": args.n, "n_peaks": len(PEAKS), "n_points": int(pats[0].size),
        "batch_s": t_batch, "batch_method": rb.stats["method"], "batch_failed": rb.stats["n_failed"],
        "lmfit_modelspec_s_per_pattern": t_lm / args.n_lmfit, "lmfit_modelspec_n": args.n_lmfit,
        "lmfit_single_path_s": t_single,
        "speedup_vs_lmfit_modelspec": (t_lm / args.n_lmfit * args.n) / t_batch,
        "speedup_vs_single_path": t_single / t_batch,
        "max_abs_dev_two_theta_deg_vs_single": dev, "max_abs_dev_two_theta_deg_vs_lmfit_modelspec": dev_lm,
        "agree_1e-3_deg_vs_lmfit_modelspec": dev_lm < 1e-3,
        "lmfit_agreement_fix": ("was up to 0.014 deg: lmfit leastsq froze centres started at the midpoint of "
                                "symmetric bounds (sine transform, vanishing finite-difference step); fixed by "
                                "asymmetric centre bounds + fitting.models.unfreeze_centers and identical starting "
                                "values; the batch engine was right"),
        "cpu_count": os.cpu_count(), "python": platform.python_version(),
    }
    print(f"{args.n} patterns x {len(PEAKS)} doublets ({pats[0].size} points)")
    print(f"  specproc fit_series (batch engine, {rb.stats['method']}): {t_batch:.2f} s")
    print(f"  lmfit loop, same ModelSpec: {t_lm / args.n_lmfit:.3f} s/pattern "
          f"(-> {t_lm / args.n_lmfit * args.n:.1f} s for {args.n}; speed-up {out['speedup_vs_lmfit_modelspec']:.0f}x)")
    print(f"  lmfit loop, specproc single-pattern path: {t_single:.2f} s (speed-up {out['speedup_vs_single_path']:.1f}x)")
    print(f"  max |2θ batch - single| = {dev:.2e} deg; vs lmfit ModelSpec = {dev_lm:.2e} deg")
    res_dir = Path(__file__).resolve().parent / "results"
    res_dir.mkdir(exist_ok=True)
    (res_dir / "xrd_series.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
