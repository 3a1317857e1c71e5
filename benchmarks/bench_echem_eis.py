"""Benchmark: a 20-temperature EIS series fitted in one batched call vs impedance.py and lmfit loops.

    .venv/bin/python benchmarks/bench_echem_eis.py [--n 20] [--repeat 5]

The same spectra (``R0-p(R1,CPE1)-CPE2``, 30-144 °C, sigma(30 °C) = 3.3e-6 S/cm, Ea = 0.60 eV,
arcs inside the 7 MHz-0.1 Hz window at every temperature, 0.5 % noise of |Z|, 76 frequencies) and
the same starting values (specproc's automatic starts, variant 0, one per spectrum) go to:

* ``specproc``: :func:`specproc.fitting.cnls.fit_circuit` on the whole stack (the batch engine's
  Levenberg–Marquardt with analytic circuit Jacobians; automatic starts computed inside, included
  in the time);
* ``impedance.py``: ``CustomCircuit(...).fit(f, Z, weight_by_modulus=True)`` (scipy ``curve_fit``)
  in a loop — the reference of the issue (impedance.py 1.7 installs and fits under numpy 2; only its
  lin-KK fails), skipped with a note if it is not installed (``pip install specproc[echem-bench]``);
* ``lmfit``: the circuit's :meth:`~specproc.fitting.circuits.Circuit.lmfit_model` (complex model,
  ``1/|Z|`` weights) in a loop.

Timings are the best of ``--repeat`` runs of each, interleaved (the VM is shared: load changes
between runs). Agreement: R0+R1 of every spectrum against the truth and between the methods.
Writes benchmarks/results/echem_eis.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np

CIRCUIT = "R0-p(R1,CPE1)-CPE2"


def make_series(n: int, seed: int = 0):
    from specproc.techniques.echem import synth

    f = synth.frequencies(7e6, 0.1, 10)[:76]
    T = np.linspace(30, 144, n)
    sig = synth.conductivity(T, 3.3e-6, 0.60)
    rel = 0.1 / (sig * 0.785)
    q1 = (1 / (2 * np.pi * 300)) ** 0.85 / (0.95 * rel[0])           # arc at 300 Hz at 30 °C, 3e5 Hz at 144 °C
    P = np.column_stack([0.05 * rel, 0.95 * rel, np.full(n, q1), np.full(n, 0.85), np.full(n, 2e-6), np.full(n, 0.85)])
    rng = np.random.default_rng(seed)
    Z = np.array([synth.impedance(CIRCUIT, p, f, 0.005, rng) for p in P])
    return f, Z, P


def run_specproc(f, Z):
    from specproc.fitting.cnls import fit_circuit

    return fit_circuit(CIRCUIT, f, Z).values


def run_impedance_py(f, Z, starts):
    from impedance.models.circuits import CustomCircuit

    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for z, s in zip(Z, starts):
            c = CustomCircuit(CIRCUIT, initial_guess=list(s))
            c.fit(f, z, weight_by_modulus=True)
            out.append(c.parameters_)
    return np.array(out)


def run_lmfit(f, Z, starts):
    from specproc.fitting.circuits import parse_circuit

    c = parse_circuit(CIRCUIT)
    model = c.lmfit_model()
    out = []
    for z, s in zip(Z, starts):
        pars = model.make_params(**dict(zip(c.param_names, s)))
        r = model.fit(z, pars, f=f, weights=1 / np.abs(z))
        out.append([r.params[n].value for n in c.param_names])
    return np.array(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    from specproc.fitting.cnls import start_values

    f, Z, P = make_series(args.n)
    starts = start_values(CIRCUIT, f, Z, 1)[:, 0]
    run_specproc(f, Z[:2])                   # imports (scipy.signal for the starts) outside the timing
    try:
        import impedance  # noqa: F401

        have_imp = True
    except ImportError:
        have_imp = False
    times = {"specproc": [], "impedance.py": [], "lmfit": []}
    vals = {}
    for _ in range(args.repeat):
        t = time.perf_counter()
        vals["specproc"] = run_specproc(f, Z)
        times["specproc"].append(time.perf_counter() - t)
        if have_imp:
            t = time.perf_counter()
            vals["impedance.py"] = run_impedance_py(f, Z, starts)
            times["impedance.py"].append(time.perf_counter() - t)
        t = time.perf_counter()
        vals["lmfit"] = run_lmfit(f, Z, starts)
        times["lmfit"].append(time.perf_counter() - t)
    rb_true = P[:, 0] + P[:, 1]
    res = {"n_spectra": args.n, "n_frequencies": int(f.size), "circuit": CIRCUIT, "noise": "0.5 % of |Z| per part",
           "repeat": args.repeat, "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                                              "load_average": os.getloadavg()},
           "methods": {}}
    best = {k: min(v) for k, v in times.items() if v}
    for k, v in vals.items():
        rb = v[:, 0] + v[:, 1]
        res["methods"][k] = {"best_s": best[k], "all_s": times[k], "per_spectrum_ms": 1000 * best[k] / args.n,
                             "R_bulk_max_rel_err_vs_truth": float(np.max(np.abs(rb / rb_true - 1))),
                             "R1_max_rel_err_vs_truth": float(np.max(np.abs(v[:, 1] / P[:, 1] - 1))),
                             "n_max_abs_err_vs_truth": float(np.max(np.abs(v[:, 3] - P[:, 3])))}
        if k != "specproc":
            res["methods"][k]["speedup_specproc"] = best[k] / best["specproc"]
            res["methods"][k]["R_bulk_max_rel_diff_vs_specproc"] = float(
                np.max(np.abs((v[:, 0] + v[:, 1]) / (vals["specproc"][:, 0] + vals["specproc"][:, 1]) - 1)))
    if not have_imp:
        res["note"] = "impedance.py not installed: compared with the lmfit loop only (pip install specproc[echem-bench])"
    print(json.dumps(res, indent=1))
    out = Path(__file__).resolve().parent / "results" / "echem_eis.json"
    out.write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
