"""Automatic model selection (issue #23): :func:`specproc.fitting.select.select_model` on generated truths.

Random truths (seeded): 1-8 pseudo-Voigt lines (one Lorentzian fraction per spectrum), FWHM 1-4 on
a 0-100 axis of 2000 points, neighbour separations drawn from 0.5-1, 1-3 and 3-8 FWHM, areas
0.3-1 x FWHM, S/N (tallest line / noise SD) log-uniform 20-1000, a sloped baseline, white noise;
a quarter of the spectra are "doublets" (every line with a partner at +1.2 FWHM, half its area).

Scoring: a case is *resolvable* when every neighbour pair is >= 1 FWHM apart (>= 0.5 FWHM at S/N >=
200) and every line is >= 10 noise SDs tall. Resolvable: right count, centres within 0.2 FWHM (of
the right-count cases). Not resolvable: right count or a warning that the count is uncertain, else
a *confident wrong count*. A *split* is two found components within 0.5 FWHM of one true line that
has no other true line within 1 FWHM. Time per spectrum (median, max; the first includes the
engine's compilation).

    .venv/bin/python benchmarks/bench_select.py [--n 500] [--label after]

Writes ``benchmarks/results/select_<label>.json`` with the found-vs-true count table.
"""
from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def pv(x, c, area, fwhm, eta):
    s = fwhm / 2
    sg = fwhm / (2 * np.sqrt(2 * np.log(2)))
    return area * (eta * s / np.pi / ((x - c) ** 2 + s * s)
                   + (1 - eta) * np.exp(-((x - c) ** 2) / (2 * sg * sg)) / (sg * np.sqrt(2 * np.pi)))


def truth(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 9))
    doublet = rng.uniform() < 0.25
    x = np.linspace(0, 100, 2000)
    w = rng.uniform(1, 4, n)
    c, pos = [], rng.uniform(10, 25)
    for i in range(n):
        c.append(pos)
        kind = rng.integers(3)
        s = (rng.uniform(0.5, 1.0), rng.uniform(1.0, 3.0), rng.uniform(3.0, 8.0))[kind]
        pos += s * max(w[i], w[min(i + 1, n - 1)]) + (2.4 * w[i] if doublet else 0.0)
    c = np.array(c)
    keep = c < 88
    c, w = c[keep], w[keep]
    a = rng.uniform(0.3, 1.0, c.size) * w
    if doublet:
        c, w, a = np.r_[c, c + 1.2 * w], np.r_[w, w], np.r_[a, 0.5 * a]
        o = np.argsort(c)
        c, w, a = c[o], w[o], a[o]
    eta = rng.uniform(0, 1)
    hts = a / w * (eta * 2 / np.pi + (1 - eta) * 2 * np.sqrt(np.log(2) / np.pi))
    snr = 10 ** rng.uniform(np.log10(20), 3)
    sig = hts.max() / snr
    y = sum(pv(x, *t, eta) for t in zip(c, a, w)) + 0.02 * hts.max() * x / 100 + sig * rng.standard_normal(x.size)
    sep = np.diff(c) / np.maximum(w[1:], w[:-1]) if c.size > 1 else np.array([np.inf])
    resolvable = bool(all(s >= 1 or (s >= 0.5 and snr >= 200) for s in sep) and hts.min() >= 10 * sig)
    return x, y, sig, c, w, resolvable, snr, doublet


def main():
    from specproc.core.errors import ProcessingError
    from specproc.fitting.select import select_model

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--label", default="after")
    a = ap.parse_args()
    rows, times, table = [], [], Counter()
    for seed in range(a.n):
        x, y, sig, c, w, resolvable, snr, doublet = truth(seed)
        t0 = time.perf_counter()
        try:
            sel = select_model(x, y, noise=sig)
            found = np.sort(sel.fit.peak_table()["center"].to_numpy())
            warns = sel.warnings
        except ProcessingError:
            found, warns = np.zeros(0), ["no component"]
        times.append(time.perf_counter() - t0)
        right = found.size == c.size
        uncertain = any("uncertain" in m for m in warns)
        centres_ok = bool(right and np.all(np.abs(found - c) < 0.2 * w))
        split = 0
        for ci, wi in zip(c, w):
            alone = np.sum(np.abs(c - ci) < 1.0 * wi) == 1
            if alone and np.sum(np.abs(found - ci) < 0.5 * wi) > 1:
                split += 1
        table[(int(c.size), int(found.size), resolvable)] += 1
        rows.append({"seed": seed, "n_true": int(c.size), "n_found": int(found.size), "resolvable": resolvable,
                     "right": bool(right), "centres_ok": centres_ok, "uncertain_warning": bool(uncertain),
                     "split": split, "snr": float(snr), "doublet": bool(doublet), "seconds": times[-1]})
    res = [r for r in rows if r["resolvable"]]
    unres = [r for r in rows if not r["resolvable"]]
    summary = {
        "n_spectra": len(rows), "n_resolvable": len(res),
        "resolvable_right_count": float(np.mean([r["right"] for r in res])) if res else None,
        "resolvable_centres_within_0.2_fwhm": (float(np.mean([r["centres_ok"] for r in res if r["right"]]))
                                               if any(r["right"] for r in res) else None),
        "resolvable_right_but_warned_uncertain": float(np.mean([r["right"] and r["uncertain_warning"] for r in res]))
        if res else None,
        "n_unresolvable": len(unres),
        "unresolvable_right_or_warned": float(np.mean([r["right"] or r["uncertain_warning"] for r in unres]))
        if unres else None,
        "unresolvable_confident_wrong": float(np.mean([not r["right"] and not r["uncertain_warning"] for r in unres]))
        if unres else None,
        "split_lines_per_true_line": float(sum(r["split"] for r in rows) / sum(r["n_true"] for r in rows)),
        "seconds_median": float(np.median(times)), "seconds_p90": float(np.percentile(times, 90)),
        "seconds_max": float(np.max(times)),
        "count_table": [{"n_true": k[0], "n_found": k[1], "resolvable": k[2], "cases": v}
                        for k, v in sorted(table.items())],
    }
    out = HERE / "results" / f"select_{a.label}.json"
    out.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))
    print(json.dumps({k: v for k, v in summary.items() if k != "count_table"}, indent=1))


if __name__ == "__main__":
    main()
