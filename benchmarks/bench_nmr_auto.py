"""Automatic NMR mode (no peaks given): a random-truth sweep (issue #23) and the time per spectrum.

**Sweep** (``--sweep N``, default 500): generated NMR spectra with known truth, seeded — 1-8
pseudo-Voigt lines (one Lorentzian fraction per spectrum), FWHM 0.5-2.5 ppm on a 300 ppm window
of 4,096 points, neighbour separations drawn from 0.5-1, 1-1.5 and 1.5-3 FWHM (of the wider of
the pair), areas 0.3-1 x FWHM, S/N (tallest line / noise SD) log-uniform 20-1000, a constant
offset, white noise; half of the spectra spin (MAS): every line has sidebands of orders +-1
(5-30 % of its area) and +-2 (a third of that) at a rate beyond the cluster. Each spectrum goes
through ``sp.nmr.deconvolve(m, max_peaks=20)`` (the whole NMR path: edge artefacts, sideband
recognition, the toolkit's model selection, the final NMR fit).

Scoring (the rules of ``bench_select.py``): a case is *resolvable* when every neighbour pair is
>= 1 FWHM apart (>= 0.5 FWHM at S/N >= 200) and every line is >= 10 noise SDs tall. Resolvable:
right count, centres within 0.2 FWHM (of the right-count cases). Not resolvable: right count or a
warning that the count is uncertain, else a *confident wrong count*. A *split* is two found
components within 0.5 FWHM of one true line that has no other true line within 1 FWHM. A found
sideband is a component within 0.5 FWHM of a true sideband position and farther than 1 FWHM from
every true line.

**Timing** (``--timing N``): the earlier set (1-3 random lines, nested pairs, edge artefacts) and
every NMR experiment of sample_data and ../shared/realdata, time per spectrum.

    .venv/bin/python benchmarks/bench_nmr_auto.py [--sweep 500] [--timing 0] [--label after]

Writes ``benchmarks/results/nmr_auto_<label>.json`` (summary, found-vs-true count table, rows).
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
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _count_sweep import count_scores, count_table_markdown  # noqa: E402

SF_MHZ = 128.38


def pv(x, c, area, fwhm, eta):
    s = fwhm / 2
    sg = fwhm / (2 * np.sqrt(2 * np.log(2)))
    return area * (eta * s / np.pi / ((x - c) ** 2 + s * s)
                   + (1 - eta) * np.exp(-((x - c) ** 2) / (2 * sg * sg)) / (sg * np.sqrt(2 * np.pi)))


def truth(seed: int, n_points: int = 4096, sidebands: bool | None = None):
    """One generated spectrum: (measurement, truth dict). ``sidebands`` None: every other seed."""
    from specproc.core.measurement import new_measurement

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 9))
    spin = bool(seed % 2) if sidebands is None else sidebands
    x = np.linspace(150, -150, n_points)
    w = rng.uniform(0.5, 2.5, n)
    c, pos = [], 0.0
    for i in range(n):
        c.append(pos)
        kind = rng.integers(3)
        s = (rng.uniform(0.5, 1.0), rng.uniform(1.0, 1.5), rng.uniform(1.5, 3.0))[kind]
        pos += s * max(w[i], w[min(i + 1, n - 1)])
    c = np.array(c)
    c = c - c.mean() + rng.uniform(-10, 10)
    a = rng.uniform(0.3, 1.0, n) * w
    eta = rng.uniform(0, 1)
    hts = a / w * (eta * 2 / np.pi + (1 - eta) * 2 * np.sqrt(np.log(2) / np.pi))
    snr = 10 ** rng.uniform(np.log10(20), 3)
    sig = hts.max() / snr
    y = sum(pv(x, *t, eta) for t in zip(c, a, w))
    sb_pos, rate = [], None
    if spin:
        step = float(np.ptp(c) + 8 * w.max() + rng.uniform(5, 25))
        rate = step * SF_MHZ
        for ci, ai, wi in zip(c, a, w):
            r1 = rng.uniform(0.05, 0.3)
            for k, r in ((1, r1), (-1, r1 * rng.uniform(0.7, 1.3)), (2, r1 / 3), (-2, r1 / 3)):
                p = ci + k * step
                if abs(p) < 135:
                    y = y + pv(x, p, r * ai, wi, eta)
                    sb_pos.append(p)
    y = y + 0.01 * hts.max() + sig * rng.standard_normal(x.size)
    m = new_measurement(y, {"shift": (x, "ppm")}, technique="nmr", sample=f"sweep {seed}", metadata={"nucleus": "11B"},
                        acquisition=dict(sf_mhz=SF_MHZ, mas_rate_hz=rate))
    sep = np.diff(c) / np.maximum(w[1:], w[:-1]) if n > 1 else np.array([np.inf])
    resolvable = bool(all(s >= 1 or (s >= 0.5 and snr >= 200) for s in sep) and hts.min() >= 10 * sig)
    return m, {"c": c, "w": w, "a": a, "snr": float(snr), "resolvable": resolvable, "sidebands": np.array(sb_pos),
               "spin": spin, "noise": float(sig)}


def score(found: np.ndarray, warnings: list, t: dict) -> dict:
    """One case's scores (module docstring)."""
    c, w = t["c"], t["w"]
    found = np.sort(np.asarray(found, float))
    right = found.size == c.size
    split = 0
    for ci, wi in zip(c, w):
        alone = np.sum(np.abs(c - ci) < 1.0 * wi) == 1
        if alone and np.sum(np.abs(found - ci) < 0.5 * wi) > 1:
            split += 1
    sb_found = 0
    for f in found:
        j = int(np.argmin(np.abs(c - f)))
        if abs(f - c[j]) > w[j] and t["sidebands"].size and np.min(np.abs(t["sidebands"] - f)) < 0.5 * w.max():
            sb_found += 1
    return {"n_true": int(c.size), "n_found": int(found.size), "resolvable": t["resolvable"], "right": bool(right),
            "centres_ok": bool(right and np.all(np.abs(found - c) < 0.2 * w)),
            "uncertain_warning": any("uncertain" in m for m in warnings), "split": split,
            "sidebands_as_species": sb_found, "snr": t["snr"], "spin": t["spin"]}


def run_case(m, t: dict, **kw) -> dict:
    import specproc as sp
    from specproc.core.errors import SpecprocError

    t0 = time.perf_counter()
    try:
        r = sp.nmr.deconvolve(m, max_peaks=20, **kw)
        found, warns, err = r.table["center_ppm"].to_numpy(), list(r.warnings), None
    except SpecprocError as exc:
        found, warns, err = np.zeros(0), [], f"{type(exc).__name__}: {exc}"
    row = score(found, warns, t)
    row.update(seconds=time.perf_counter() - t0, error=err)
    return row


def summarise(rows: list) -> dict:
    """The sweep's scores (:func:`_count_sweep.count_scores`) and NMR's own: spinning sidebands."""
    res = [r for r in rows if r["resolvable"]]

    def mean(v):
        return float(np.mean(v)) if len(v) else None

    out = count_scores(rows, [r["seconds"] for r in rows])
    out.update({
        "n_with_sidebands": sum(r["spin"] for r in rows),
        "resolvable_right_count_with_sidebands": mean([r["right"] for r in res if r["spin"]]),
        "resolvable_right_count_without_sidebands": mean([r["right"] for r in res if not r["spin"]]),
        "sidebands_reported_as_species": int(sum(r["sidebands_as_species"] for r in rows)),
        "errors": int(sum(r["error"] is not None for r in rows)),
    })
    return out


# ---------------------------------------------------------------------------------------- timing set
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


def timing(n: int) -> dict:
    import specproc as sp

    rows = []
    for name, m in generated(n) + real():
        t = time.perf_counter()
        try:
            r = sp.nmr.deconvolve(m)
            n_comp, err = len(r.table), None
        except Exception as exc:  # a failure is a row of the table, not the end of the benchmark
            n_comp, err = 0, f"{type(exc).__name__}: {exc}"
        rows.append({"case": name, "s": round(time.perf_counter() - t, 3), "components": n_comp, "error": err})
        print(f"{rows[-1]['s']:8.2f} s  {name}  ({n_comp} components){'  ' + err if err else ''}", flush=True)
    ts = np.array([r["s"] for r in rows])
    return {"n_cases": len(rows), "median_s": float(np.median(ts)), "worst_s": float(ts.max()),
            "worst_case": rows[int(ts.argmax())]["case"], "rows": rows}


def main() -> None:
    import specproc as sp

    ap = argparse.ArgumentParser()
    ap.add_argument("--sweep", type=int, default=500)
    ap.add_argument("--timing", type=int, default=0, help="generated cases of the timing set (0: none)")
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--label", default="after")
    a = ap.parse_args()
    m0, _t0 = truth(10_000)
    sp.nmr.deconvolve(m0)  # warm-up (imports, numba): not counted
    out: dict = {"benchmark": "nmr_auto",
                 "machine": {"cpus": os.cpu_count(), "load": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}}
    if a.sweep:
        rows = []
        for seed in range(a.first_seed, a.first_seed + a.sweep):
            m, t = truth(seed)
            rows.append(dict(run_case(m, t), seed=seed))
            r = rows[-1]
            print(f"{seed:4d} {r['seconds']:6.2f} s  true {r['n_true']} found {r['n_found']}"
                  f"{' resolvable' if r['resolvable'] else ''}{' spin' if r['spin'] else ''}"
                  f"{' UNCERTAIN' if r['uncertain_warning'] else ''}{'  ' + r['error'] if r['error'] else ''}", flush=True)
        out["summary"] = summarise(rows)
        out["rows"] = rows
        print(json.dumps({k: v for k, v in out["summary"].items() if k != "count_table"}, indent=1))
        print(count_table_markdown(out["summary"]))
    if a.timing:
        out["timing"] = timing(a.timing)
        print(json.dumps({k: v for k, v in out["timing"].items() if k != "rows"}, indent=2))
    (ROOT / "benchmarks" / "results" / f"nmr_auto_{a.label}.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
