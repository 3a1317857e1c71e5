"""NMR stacks: ``sp.nmr.deconvolve(list)`` (one fit_batch call) vs a loop of single deconvolve calls.

500 synthetic 11B MAS spectra (4,096 points, 160..-240 ppm, 128.38 MHz, 12.5 kHz MAS): three sites
(BH4 -41, [NBH3] -25.3, BH4 bulk -44.3 ppm) with per-spectrum jitter of shifts, widths and areas,
first-order spinning sidebands, Gaussian noise (SNR ~200). Same peaks and data for both paths.
The single-fit loop is timed on a subset (``--loop``, default 100 spectra) and extrapolated to
500 (stated in the JSON); agreement is checked on that subset.

Writes benchmarks/results/nmr_deconvolve_many.json and appends rows to /tmp/bench_table.md.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_all import save  # noqa: E402

SF, MAS = 128.38, 12500.0
PEAKS = {"BH4": -41.0, "NBH3": -25.3, "BH4bulk": -44.3}


def stack(n: int, m: int = 4096, seed: int = 0):
    from specproc.core.measurement import new_measurement
    from specproc.fitting.lineshapes import pseudo_voigt

    rng = np.random.default_rng(seed)
    x = np.linspace(160.0, -240.0, m)
    step = MAS / SF
    out = []
    for i in range(n):
        y = np.zeros(m)
        for c, a, w in ((-41.0, 3.0, 2.5), (-25.3, 2.5, 5.0), (-44.3, 1.0, 1.6)):
            c, a, w = c + rng.normal(0, 0.1), a * rng.uniform(0.8, 1.2), w * rng.uniform(0.9, 1.1)
            y += pseudo_voigt(x, a, c, w / 2, 0.5)
            for k, rel in ((-1, 0.1), (1, 0.09)):
                y += pseudo_voigt(x, a * rel, c + k * step, w / 2, 0.5)
        y += (y.max() / 200) * rng.standard_normal(m)
        out.append(new_measurement(y, {"shift": (x, "ppm")}, technique="nmr", sample=f"s{i:03d}",
                                   metadata={"nucleus": "11B"}, acquisition={"sf_mhz": SF, "mas_rate_hz": MAS}))
    return out


def run(n: int = 500, n_loop: int = 100) -> dict:
    import specproc as sp

    ms = stack(n)
    sp.nmr.deconvolve(ms[:4], PEAKS)  # warm-up: imports, numba kernel load
    t0 = time.perf_counter()
    rb = sp.nmr.deconvolve(ms, PEAKS)
    t_batch = time.perf_counter() - t0
    n_fail = sum(isinstance(r, Exception) for r in rb)
    fit_s = rb[0].meta["batch"]["fit_s"]
    sub = ms[:n_loop]
    t0 = time.perf_counter()
    rs = [sp.nmr.deconvolve(m, PEAKS) for m in sub]
    t_loop_sub = time.perf_counter() - t0
    t_loop = t_loop_sub * n / n_loop
    dc = max(abs(a.quantities[k].value - b.quantities[k].value) for a, b in zip(rb, rs) for k in b.quantities
             if k.endswith("center_ppm"))
    df = max(abs(a.quantities[k].value - b.quantities[k].value) for a, b in zip(rb, rs) for k in b.quantities
             if k.endswith("area_fraction"))
    de = max(abs(a.quantities[k].stderr / b.quantities[k].stderr - 1) for a, b in zip(rb, rs) for k in b.quantities
             if k.endswith(("center_ppm", "area_fraction")))
    res = {"benchmark": "nmr_deconvolve_many", "n_spectra": n, "points": 4096,
           "batch_total_s": t_batch, "batch_fit_batch_s": fit_s, "batch_failed": n_fail,
           "loop_subset": n_loop, "loop_subset_s": t_loop_sub, "loop_extrapolated_s": t_loop,
           "speedup": t_loop / t_batch, "max_center_diff_ppm": dc, "max_fraction_diff": df,
           "max_rel_stderr_diff": de,
           "rows": [{"case": f"{n} 11B spectra x 4096 pts, 3 sites + sidebands", "specproc_s": t_batch,
                     "reference": f"loop of sp.nmr.deconvolve ({n_loop} timed, extrapolated)",
                     "reference_s": t_loop, "speedup": t_loop / t_batch,
                     "agreement": f"centres {dc:.1e} ppm, fractions {df:.1e}"}]}
    print(f"{n} spectra: deconvolve(list) {t_batch:.2f} s (fit_batch {fit_s:.2f} s), loop {t_loop:.1f} s "
          f"(extrapolated from {n_loop}), speed-up {t_loop / t_batch:.1f}x; max |d centre| {dc:.1e} ppm, "
          f"|d fraction| {df:.1e}, stderr rel diff {de:.1e}; failed {n_fail}")
    return res


def append_table(res: dict, path=Path("/tmp/bench_table.md")) -> None:
    r = res
    lines = ["", "<!-- NMR stacks (bench_nmr_deconvolve_many.py) — helper h7 -->",
             "| benchmark | case | sp.nmr.deconvolve(list) (s) | of which fit_batch (s) | loop of single deconvolve (s) | speed-up | agreement |",
             "|---|---|---|---|---|---|---|",
             f"| nmr deconvolve many | {r['n_spectra']} 11B spectra x 4096 pts, 3 sites + sidebands | {r['batch_total_s']:.2f} | "
             f"{r['batch_fit_batch_s']:.2f} | {r['loop_extrapolated_s']:.1f} ({r['loop_subset']} timed, extrapolated) | "
             f"{r['speedup']:.1f}x | centres {r['max_center_diff_ppm']:.1e} ppm, fractions {r['max_fraction_diff']:.1e}, "
             f"stderr rel {r['max_rel_stderr_diff']:.1e} |"]
    with open(path, "a") as fh:
        fh.write("\n".join(lines) + "\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--loop", type=int, default=100, help="spectra timed with the single-fit loop")
    ap.add_argument("--no-table", action="store_true")
    a = ap.parse_args(argv)
    res = run(a.n, min(a.loop, a.n))
    print("saved", save("nmr_deconvolve_many", res))
    if not a.no_table:
        append_table(res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
