"""XPS automatic mode (issue #23) on generated truths: regions without a template, selected by the
toolkit's model selection (:func:`specproc.techniques.xps.auto.select_region`) and fitted to every
level (:func:`specproc.techniques.xps.auto.fit_automatic`).

Random truths (seeded): a region of one core line — C 1s or N 1s (singlets), S 2p (doublets split
1.18 eV, ratio 1:2) or Mo 3d (3.13 eV, 2:3) — with 1-6 components inside the line's chemical-state
window (the line table), CasaXPS GL(30) lines of FWHM 0.8-2.0 eV, neighbour separations drawn from
0.5-1, 1-3 and 3-6 FWHM, areas 0.3-1 (relative), on a Shirley step (5-30 % of the tallest line)
plus a constant (20-100 % of it), Poisson counts, step 0.05 eV, descending BE axis. S/N = tallest
height / sqrt(counts at its top), log-uniform 20-1000. A third of the regions have 3 etch levels,
every component's area scaled per level by 0.5-1.5.

Scoring: a region is *resolvable* when every pair of lines of different components (spin-orbit
partners included) is >= 1 FWHM apart (>= 0.5 FWHM at S/N >= 200) and every component's main line
is >= 10 counting SDs tall. Resolvable: right count, centres within 0.2 FWHM (of the right-count
cases). Not resolvable: right count or a warning that the count is uncertain, else a *confident
wrong count*. A *split* is two found components within 0.5 FWHM of one true line that has no line
of another component within 1 FWHM.

    .venv/bin/python benchmarks/bench_xps_auto.py [--n 500] [--label after]
    PYTHONPATH=<checkout of 83664f7> .venv/bin/python benchmarks/bench_xps_auto.py --legacy --label before

(``--legacy``: the automatic mode before issue #23's selection — prominent peaks plus residual
shoulders, ``analysis._fit_automatic`` — for the before/after comparison in docs/xps.md.)

Writes ``benchmarks/results/xps_auto_<label>.json`` with the found-vs-true count table.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _count_sweep import count_scores, count_table_markdown  # noqa: E402

HERE = Path(__file__).resolve().parent
LINES = ("C 1s", "N 1s", "S 2p", "Mo 3d")


def truth(seed):
    """One generated region: ``dict(line, x, Y, centres, fwhms, split, resolvable, snr, levels)``."""
    from specproc.techniques.xps.doublets import doublet
    from specproc.techniques.xps.lines import PHOTO
    from specproc.testing.xps_synth import region_spectra

    rng = np.random.default_rng(seed)
    line = LINES[int(rng.integers(len(LINES)))]
    lo, hi = PHOTO[line]
    d = doublet(line)
    n = int(rng.integers(1, 7))
    w = rng.uniform(0.8, 2.0, n)
    c, pos = [], lo + rng.uniform(0.2, 1.0)
    for i in range(n):
        if pos > hi - 0.2:
            break
        c.append(pos)
        s = (rng.uniform(0.5, 1.0), rng.uniform(1.0, 3.0), rng.uniform(3.0, 6.0))[int(rng.integers(3))]
        pos += s * max(w[i], w[min(i + 1, n - 1)])
    c = np.array(c)
    w = w[:c.size]
    a = rng.uniform(0.3, 1.0, c.size)
    nlev = 3 if rng.uniform() < 1 / 3 else 1
    A = a[None, :] * (rng.uniform(0.5, 1.5, (nlev, c.size)) if nlev > 1 else 1.0)
    sats = [(d[0], d[1])] if d else []
    top = c.max() + (d[0] if d else 0.0)
    x = np.round(np.arange(top + 6.0, c.min() - 6.0, -0.05), 3)
    lines = [{"center": float(ci), "fwhm": float(wi), "mixing": 0.3, "satellites": sats} for ci, wi in zip(c, w)]
    _, P, _ = region_spectra(x, lines, A, base=0.0, step=0.0, noise=False)
    snr = 10 ** rng.uniform(np.log10(20), 3)
    r_base, step = rng.uniform(0.2, 1.0), rng.uniform(0.05, 0.3)
    S = P.sum(axis=0)
    h = snr ** 2 * (1 + r_base + step)          # tallest height (summed levels) with h / sqrt(counts) = snr
    k = h / S.max()
    base = r_base * h / nlev
    Y, P, B = region_spectra(x, lines, A * k, base=base, step=step, seed=seed)
    counts = (P + B).sum(axis=0)
    # per component: main line height (summed levels) over the counting SD there
    main = [float(A[:, j].sum() * k / (1 + (d[1] if d else 0.0)) / (w[j] * _gl_area(0.3))) for j in range(c.size)]
    snr_c = [m / np.sqrt(counts[int(np.argmin(np.abs(x - cj)))]) for m, cj in zip(main, c)]
    pos_all = [(j, cj) for j, cj in enumerate(c)] + ([(j, cj + d[0]) for j, cj in enumerate(c)] if d else [])
    sep_ok = True
    for i, (j1, p1) in enumerate(pos_all):
        for j2, p2 in pos_all[i + 1:]:
            if j1 != j2:
                s = abs(p1 - p2) / max(w[j1], w[j2])
                sep_ok &= bool(s >= 1 or (s >= 0.5 and snr >= 200))
    resolvable = bool(sep_ok and min(snr_c) >= 10)
    return {"line": line, "x": x, "Y": Y, "centres": c, "fwhms": w, "split": d, "resolvable": resolvable,
            "snr": float(snr), "levels": nlev, "pos_all": pos_all}


def _gl_area(m):
    from specproc.fitting.lineshapes import gl_product_area_factor

    return gl_product_area_factor(m)


def run_case(t):
    """The automatic mode on one truth: ``(found centres (ascending), warnings, seconds)``."""
    from specproc.techniques.xps.auto import fit_automatic, select_region

    x, Y, line = t["x"], t["Y"], t["line"]
    t0 = time.perf_counter()
    sel = select_region(line, x, Y, line=line, elements={line.split()[0]}, counts=True)
    w = 1.0 / np.sqrt(np.maximum(Y, 1.0))
    sf, comps, warns = fit_automatic(line, x, Y, sel, line=line, elements={line.split()[0]}, weights=w)
    dt = time.perf_counter() - t0
    if sf is None:
        return np.zeros(0), warns, dt
    found = np.sort([float(np.nanmedian(sf.comps[c.name]["center"])) for c in comps])
    return found, warns, dt


def run_case_legacy(t):
    """The automatic mode before the model selection (picked peaks + residual shoulders), same scoring."""
    from specproc.techniques.xps.analysis import _fit_automatic
    from specproc.techniques.xps.fitting import region_picks

    x, Y, line = t["x"], t["Y"], t["line"]
    t0 = time.perf_counter()
    w = 1.0 / np.sqrt(np.maximum(Y, 1.0))
    warns: list = []
    sf, comps = _fit_automatic(line, x, Y, region_picks(x, Y, line), line, {line.split()[0]}, None, "shirley", w,
                               warns)
    dt = time.perf_counter() - t0
    if sf is None:
        return np.zeros(0), warns, dt
    return np.sort([float(np.nanmedian(sf.comps[c.name]["center"])) for c in comps]), warns, dt


def score(t, found, warns):
    c, w = t["centres"], t["fwhms"]
    right = found.size == c.size
    uncertain = any("uncertain" in m for m in warns)
    centres_ok = bool(right and np.all(np.abs(found - c) < 0.2 * w))
    split = 0
    for j, (cj, wj) in enumerate(zip(c, w)):
        alone = not any(jj != j and abs(p - cj) < wj for jj, p in t["pos_all"])
        if alone and np.sum(np.abs(found - cj) < 0.5 * wj) > 1:
            split += 1
    return {"n_true": int(c.size), "n_found": int(found.size), "resolvable": t["resolvable"], "right": bool(right),
            "centres_ok": centres_ok, "uncertain_warning": bool(uncertain), "split": split, "snr": t["snr"],
            "line": t["line"], "levels": t["levels"]}


def summarise(rows, times):
    """The sweep's scores (:func:`_count_sweep.count_scores`)."""
    return count_scores(rows, times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--label", default="after")
    ap.add_argument("--legacy", action="store_true", help="the automatic mode before the model selection")
    a = ap.parse_args()
    run = run_case_legacy if a.legacy else run_case
    rows, times = [], []
    for seed in range(a.n):
        t = truth(seed)
        found, warns, dt = run(t)
        times.append(dt)
        rows.append({"seed": seed, **score(t, found, warns), "seconds": dt})
    summary = summarise(rows, times)
    out = HERE / "results" / f"xps_auto_{a.label}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))
    print(json.dumps({k: v for k, v in summary.items() if k != "count_table"}, indent=1))
    print(count_table_markdown(summary))


if __name__ == "__main__":
    main()
