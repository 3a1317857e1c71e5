"""Automatic NMR mode (no peaks given): time per spectrum on generated random truths and real files.

Generated: 11B/7Li-like spectra with 1-3 random lines (some nested narrow/broad pairs, some with a
window-edge artefact), 4,096 points; real: every NMR experiment of sample_data and ../shared/realdata.
Prints the median and worst time and writes benchmarks/results/nmr_auto.json.

    .venv/bin/python benchmarks/bench_nmr_auto.py [--n 20]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "techniques"))


def generated(n: int, seed: int = 1):
    from _nmr_synth import spectrum

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        x = np.linspace(100, -100, 4096)
        k = int(rng.integers(1, 4))
        lines = [(rng.uniform(-60, 60), rng.uniform(0.3, 1.0), rng.uniform(0.8, 8.0)) for _ in range(k)]
        if i % 3 == 0:  # nested narrow/broad pair
            c = lines[0][0]
            lines.append((c + rng.uniform(-0.5, 0.5), rng.uniform(0.3, 1.0), rng.uniform(10, 16)))
        if i % 4 == 0:  # window-edge artefact
            lines.append((-100.0, 0.5, 20.0))
        out.append((f"generated {i}", spectrum(lines, noise=0.002, seed=i, x=x, nucleus="7Li", sf=155.5)))
    return out


def real():
    import specproc as sp

    out = []
    for d in sorted((ROOT / "sample_data" / "nmr").glob("*/1")):
        out.append((f"sample_data {d.parent.name}", sp.read(d)))
    rd = ROOT.parent / "shared" / "realdata" / "nmr"
    for d in (rd / "alginate_13C_CP" / "80", rd / "topspin_1d_1H_MAS" / "1"):
        if d.is_dir():
            out.append((f"realdata {d.parent.name}", sp.read(d)))
    return out


def main() -> None:
    import specproc as sp

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20)
    a = ap.parse_args()
    cases = generated(a.n) + real()
    sp.nmr.deconvolve(cases[0][1])  # warm-up (imports, numba)
    rows = []
    for name, m in cases:
        t = time.perf_counter()
        try:
            r = sp.nmr.deconvolve(m)
            n_comp, err = len(r.table), None
        except Exception as exc:  # a failure is a row of the table, not the end of the benchmark
            n_comp, err = 0, f"{type(exc).__name__}: {exc}"
        rows.append({"case": name, "s": round(time.perf_counter() - t, 3), "components": n_comp, "error": err})
        print(f"{rows[-1]['s']:8.2f} s  {name}  ({n_comp} components){'  ' + err if err else ''}", flush=True)
    ts = np.array([r["s"] for r in rows])
    res = {"benchmark": "nmr_auto", "n_cases": len(rows), "median_s": float(np.median(ts)),
           "worst_s": float(ts.max()), "worst_case": rows[int(ts.argmax())]["case"], "rows": rows,
           "machine": {"cpus": os.cpu_count(), "load": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}}
    print(json.dumps({k: v for k, v in res.items() if k != "rows"}, indent=2))
    (ROOT / "benchmarks" / "results" / "nmr_auto.json").write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
