"""FTIR automatic mode (issue #23) on generated truths: ``fit_bands(m, region=..., max_bands=None)``
without bands (the toolkit's model selection, atmospheric CO2 / water recognised, masked or modelled).

Random truths (seeded, :func:`truth`): a region of 300-600 cm-1 anywhere in 700-3900 cm-1 (30 % of
them placed to contain the CO2 nu3 range 2280-2400 cm-1); 1-8 pseudo-Voigt bands (FWHM 8-60 cm-1
log-uniform, Lorentzian fraction 0-1, heights 0.02-1 absorbance uniform), neighbour separations drawn
from 0.5-1, 1-3 and 3-6 FWHM (of the wider of the pair); the cluster is shifted to a random place in
the region with every centre >= 1.5 FWHM inside its edges (a band that would not fit is not drawn: the
wider the bands, the fewer of them); the generator's sloping quadratic baseline
(``sample_data/generate_ftir.py::synth``, 4 cm-1 resolution, 0.964 cm-1 spacing); white noise with
S/N = tallest band height / noise SD log-uniform 20-1000. A region reaching 2280-2400 cm-1 gets CO2
(nu3 peak absorbance 0-0.05, uniform); half of the regions reaching the water-vapour ranges
(1300-2050, 3450-4000 cm-1) get water vapour (strongest line 0-0.02, line positions seeded per case).

Scoring (the rules of ``bench_xps_auto.py`` / ``bench_nmr_auto.py``, :mod:`_count_sweep`): a case is
*resolvable* when every pair of bands is >= 1 FWHM apart (of the wider; >= 0.5 FWHM at S/N >= 200),
every band is >= 10 noise SDs tall, and no band is *hidden by the atmosphere*: half or more of its
centre +- 0.5 FWHM lies in a range the fit left masked (``r.meta["atmosphere"]`` entries not
modelled; :func:`~specproc.techniques.ftir.bands.prepare`'s when the fit raised) for an atmosphere
that is there (CO2 masks count only when the truth has CO2, water masks only when it has water), and
the true gas absorbance within that centre +- 0.5 FWHM reaches half the band's height. The CO2 that a
band sits under is modelled, not masked, so this takes out only what these points cannot show (a
band among masked water lines as strong as it, a band under CO2 whose envelope model was refused); a
band far stronger than the gas under a mask is counted (the mask is then the method's doing: a
narrow band taken for CO2). The geometric rule alone is reported beside it (``resolvable_geometric``).
Resolvable: right count, centres within 0.2 FWHM (of the right-count cases). Not resolvable: right
count or a warning containing "uncertain", else a *confident wrong count*. A *split* is two found
bands within 0.5 FWHM of one true band that has no other true band within 1 FWHM. Found bands are the
rows of ``r.table`` with ``detected`` True.

FTIR's own: where the truth has CO2, the fitted amount (``tables["atmosphere"]`` peak absorbance when
modelled, else the recognised amplitude ``meta["co2"]`` when masked) against the truth: the fraction of
cases where it exceeds the truth by more than 3x (and, of those, by more than 3 noise SDs too).

    .venv/bin/python benchmarks/bench_ftir_auto.py [--n 500] [--label after] [--jobs 1]

Writes ``benchmarks/results/ftir_auto_<label>.json`` (summary, found-vs-true count table, rows; the
wrong-count cases with their truth, found centres and warnings).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _count_sweep import count_scores, count_table_markdown  # noqa: E402

CO2_RANGE = (2280.0, 2400.0)
WATER_RANGES = ((1300.0, 2050.0), (3450.0, 4000.0))
CO2_LABEL = "CO2 2337/2361"
_GEN = None


def generator():
    """``sample_data/generate_ftir.py`` as a module (loaded once)."""
    global _GEN
    if _GEN is None:
        spec = importlib.util.spec_from_file_location("generate_ftir", HERE.parent / "sample_data" / "generate_ftir.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        _GEN = mod
    return _GEN


def _overlaps(lo, hi, rng_):
    return hi >= rng_[0] and lo <= rng_[1]


def truth(seed: int) -> dict:
    """One generated spectrum: ``dict(y, region, centres, fwhms, heights, fractions, snr, noise, co2,
    water, resolvable_geometric)`` (centres ascending, cm-1; absorbance)."""
    g = generator()
    rng = np.random.default_rng(seed)
    width = rng.uniform(300.0, 600.0)
    if rng.uniform() < 0.3:     # the region holds the CO2 nu3 range
        lo = rng.uniform(max(700.0, CO2_RANGE[1] - width), min(3900.0 - width, CO2_RANGE[0]))
    else:
        lo = rng.uniform(700.0, 3900.0 - width)
    hi = lo + width
    n = int(rng.integers(1, 9))
    w = np.exp(rng.uniform(np.log(8.0), np.log(60.0), n))
    rel = [0.0]
    for i in range(n - 1):
        s = (rng.uniform(0.5, 1.0), rng.uniform(1.0, 3.0), rng.uniform(3.0, 6.0))[int(rng.integers(3))]
        rel.append(rel[-1] + s * max(w[i], w[i + 1]))
    rel = np.array(rel)
    # as many bands as fit with every centre >= 1.5 FWHM inside the region
    k = n
    while k > 1 and rel[k - 1] + 1.5 * (w[0] + w[k - 1]) > width:
        k -= 1
    rel, w = rel[:k], w[:k]
    room = width - 1.5 * (w[0] + w[-1]) - rel[-1]
    c = lo + 1.5 * w[0] + rng.uniform(0.0, max(room, 0.0)) + rel
    h = rng.uniform(0.02, 1.0, k)
    f = rng.uniform(0.0, 1.0, k)
    snr = float(10 ** rng.uniform(np.log10(20.0), 3.0))
    noise = float(h.max() / snr)
    co2 = float(rng.uniform(0.0, 0.05)) if _overlaps(lo, hi, CO2_RANGE) else 0.0
    wet = any(_overlaps(lo, hi, r) for r in WATER_RANGES) and rng.uniform() < 0.5
    water = float(rng.uniform(0.0, 0.02)) if wet else 0.0
    bands = [{"name": f"b{j}", "center": float(cj), "fwhm": float(wj), "height": float(hj), "fraction": float(fj)}
             for j, (cj, wj, hj, fj) in enumerate(zip(c, w, h, f))]
    y, parts = g.synth(bands, co2_amount=co2, water_amount=water, noise=noise, seed=seed,
                       water_seed=int(rng.integers(2**31)))
    atm = np.asarray(parts["atmosphere"]) * np.ones(g.GRID.size)
    sep_ok = True
    for i in range(k):
        for j in range(i + 1, k):
            s = abs(c[j] - c[i]) / max(w[i], w[j])
            sep_ok &= bool(s >= 1 or (s >= 0.5 and snr >= 200))
    return {"seed": seed, "y": y, "region": (float(lo), float(hi)), "centres": c, "fwhms": w, "heights": h,
            "fractions": f, "snr": snr, "noise": noise, "co2": co2, "water": water, "atmosphere": atm,
            "resolvable_geometric": bool(sep_ok and h.min() >= 10 * noise)}


def measurement(t):
    from specproc.core.measurement import new_measurement

    g = generator()
    return new_measurement(t["y"], [("wavenumber", g.GRID, "1/cm")], technique="ftir", units="dimensionless",
                           sample=f"sweep {t['seed']}", acquisition={"y_kind": "absorbance", "resolution_cm1": 4.0})


def run_case(t):
    """The automatic mode on one truth: ``(Result or None, error or None, seconds)``."""
    from specproc.core.errors import SpecprocError
    from specproc.techniques.ftir.bands import fit_bands

    m = measurement(t)
    t0 = time.perf_counter()
    try:
        r, err = fit_bands(m, region=t["region"], max_bands=None), None
    except SpecprocError as exc:
        r, err = None, f"{type(exc).__name__}: {exc}"
    return r, err, time.perf_counter() - t0


def hidden(t, r) -> list:
    """True bands half or more of whose centre +- 0.5 FWHM lies in a masked (not modelled) range of an
    atmosphere that is there (module docstring). Without a result (the fit raised), the masks of
    :func:`~specproc.techniques.ftir.bands.prepare` (nothing modelled)."""
    if r is not None:
        atm = r.meta.get("atmosphere", [])
    else:
        from specproc.core.errors import SpecprocError
        from specproc.techniques.ftir.bands import prepare

        try:
            atm = prepare(measurement(t), t["region"]).meta["atmosphere"]
        except SpecprocError:
            atm = []
    masks = []
    for a in atm:
        if a.get("modelled"):
            continue
        if (a["what"] == "H2O" and t["water"] > 0) or (a["what"].startswith("CO2") and t["co2"] > 0):
            masks.append((a["lo"], a["hi"]))
    out = []
    grid = generator().GRID
    for j, (cj, wj, hj) in enumerate(zip(t["centres"], t["fwhms"], t["heights"])):
        xs = np.linspace(cj - 0.5 * wj, cj + 0.5 * wj, 201)
        inside = np.zeros(xs.size, bool)
        for lo, hi in masks:
            inside |= (xs >= lo) & (xs <= hi)
        # ... and the band is not the stronger absorber there (the gas's true absorbance reaches half
        # the band's height): a band far above the gas is visible to a fit that models the gas, and
        # a mask laid over it is the method's failure (a narrow band taken for CO2), not the data's
        near = (grid >= cj - 0.5 * wj) & (grid <= cj + 0.5 * wj)
        gas = float(np.abs(t["atmosphere"][near]).max()) if near.any() else 0.0
        if inside.mean() >= 0.5 and gas >= 0.5 * hj:
            out.append(j)
    return out


def co2_fitted(r):
    """``(how, peak absorbance)`` of the CO2 nu3 band in a result: modelled / masked (recognised) / none."""
    if r is None:
        return "none", 0.0
    atm = r.tables.get("atmosphere")
    if atm is not None and len(atm):
        row = atm[atm["component"] == CO2_LABEL]
        if len(row):
            return "modelled", float(row["peak_absorbance"].iloc[0])
    rec = (r.meta.get("co2") or {}).get(CO2_LABEL)
    if rec is not None:
        return "masked", float(rec["amplitude"])
    return "none", 0.0


def score(t, r, err, seconds) -> dict:
    c, w = t["centres"], t["fwhms"]
    if r is not None:
        tab = r.table
        det = tab[tab["detected"].astype(bool)] if "detected" in tab else tab
        found = np.sort(det["center_cm1"].to_numpy(float))
        n_undetected = int(len(tab) - len(det))
        warns = list(r.warnings)
    else:
        found, n_undetected, warns = np.zeros(0), 0, []
    hid = hidden(t, r)
    resolvable = bool(t["resolvable_geometric"] and not hid)
    right = found.size == c.size
    split = 0
    for j, (cj, wj) in enumerate(zip(c, w)):
        alone = not any(jj != j and abs(c[jj] - cj) < wj for jj in range(c.size))
        if alone and np.sum(np.abs(found - cj) < 0.5 * wj) > 1:
            split += 1
    how, amp = co2_fitted(r)
    row = {"seed": t["seed"], "n_true": int(c.size), "n_found": int(found.size), "resolvable": resolvable,
           "resolvable_geometric": t["resolvable_geometric"], "hidden_bands": hid, "right": bool(right),
           "centres_ok": bool(right and np.all(np.abs(found - c) < 0.2 * w)),
           "uncertain_warning": any("uncertain" in m for m in warns), "split": split, "snr": t["snr"],
           "noise": t["noise"], "region": [round(v, 1) for v in t["region"]], "co2": t["co2"], "water": t["water"],
           "co2_fit": how, "co2_fit_amplitude": amp, "n_undetected_rows": n_undetected,
           "n_water_lines": int(r.meta.get("n_water_lines", 0)) if r is not None else 0,
           "noise_estimate_ratio": float(r.stats["noise_rms"] / t["noise"]) if r is not None else None,
           "r2": float(r.stats["r2"]) if r is not None and "r2" in r.stats else None,
           "error": err, "seconds": seconds}
    if not right or err:
        row.update(truth=[{"center": round(float(a), 1), "fwhm": round(float(b), 1), "height": round(float(hh), 4),
                           "fraction": round(float(ff), 2)}
                          for a, b, hh, ff in zip(c, w, t["heights"], t["fractions"])],
                   found=[round(float(v), 1) for v in found], warnings=warns)
    return row


def one(seed: int) -> dict:
    t = truth(seed)
    r, err, dt = run_case(t)
    return score(t, r, err, dt)


def summarise(rows: list) -> dict:
    """:func:`_count_sweep.count_scores` and FTIR's own: the geometric rule, CO2, errors."""
    out = count_scores(rows, [r["seconds"] for r in rows])
    geo = [r for r in rows if r["resolvable_geometric"]]
    co2 = [r for r in rows if r["co2"] > 0]

    def mean(v):
        return float(np.mean(v)) if len(v) else None

    over = [r for r in co2 if abs(r["co2_fit_amplitude"]) > 3 * r["co2"]]
    out.update({
        "n_resolvable_geometric": len(geo),
        "resolvable_geometric_right_count": mean([r["right"] for r in geo]),
        "n_hidden_by_atmosphere": sum(bool(r["hidden_bands"]) for r in rows),
        "hidden_seeds": [r["seed"] for r in rows if r["hidden_bands"]],
        # the noise SD the fit used (prepare's high-passed estimate) over the true one
        "noise_estimate_ratio_median": float(np.median([r["noise_estimate_ratio"] for r in rows
                                                        if r["noise_estimate_ratio"] is not None])),
        "noise_estimate_ratio_p90": float(np.percentile([r["noise_estimate_ratio"] for r in rows
                                                         if r["noise_estimate_ratio"] is not None], 90)),
        "n_with_co2": len(co2),
        "co2_modelled": sum(r["co2_fit"] == "modelled" for r in co2),
        "co2_masked": sum(r["co2_fit"] == "masked" for r in co2),
        "co2_over_3x_truth": mean([abs(r["co2_fit_amplitude"]) > 3 * r["co2"] for r in co2]),
        "co2_over_3x_truth_modelled": mean([abs(r["co2_fit_amplitude"]) > 3 * r["co2"] for r in co2
                                            if r["co2_fit"] == "modelled"]),
        "co2_over_3x_truth_and_3_noise_sd": mean([abs(r["co2_fit_amplitude"]) > 3 * r["co2"]
                                                  and abs(r["co2_fit_amplitude"]) - r["co2"] > 3 * r["noise"]
                                                  for r in co2]),
        "co2_over_3x_seeds": [r["seed"] for r in over],
        "n_with_water": sum(r["water"] > 0 for r in rows),
        "errors": sum(r["error"] is not None for r in rows),
        "resolvable_wrong_count_warned": mean([r["uncertain_warning"] for r in rows
                                                if r["resolvable"] and not r["right"]]),
        "co2_over_3x_with_wrong_count": sum(not r["right"] for r in over),
        "wrong_count_seeds_resolvable": [r["seed"] for r in rows if r["resolvable"] and not r["right"]],
        "confident_wrong_seeds": [r["seed"] for r in rows if not r["resolvable"] and not r["right"]
                                  and not r["uncertain_warning"]],
        "split_seeds": [r["seed"] for r in rows if r["split"]],
    })
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--label", default="after")
    ap.add_argument("--jobs", type=int, default=1, help="processes (2 only on a quiet machine: times are per spectrum)")
    a = ap.parse_args()
    one(10_000)      # warm-up (imports, compiled kernels): not counted
    seeds = list(range(a.first_seed, a.first_seed + a.n))
    rows = []
    t_all = time.perf_counter()

    def show(r):
        print(f"{r['seed']:4d} {r['seconds']:6.2f} s  true {r['n_true']} found {r['n_found']}"
              f"{' resolvable' if r['resolvable'] else ''}{' UNCERTAIN' if r['uncertain_warning'] else ''}"
              f"{' co2 ' + r['co2_fit'] if r['co2'] else ''}{'  ' + r['error'] if r['error'] else ''}", flush=True)

    if a.jobs > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(a.jobs, initializer=one, initargs=(10_000,)) as ex:
            for r in ex.map(one, seeds):
                rows.append(r)
                show(r)
    else:
        for s in seeds:
            rows.append(one(s))
            show(rows[-1])
    summary = summarise(rows)
    out = {"benchmark": "ftir_auto", "call": "fit_bands(m, region=..., max_bands=None)",
           "machine": {"cpus": os.cpu_count(), "load_1min_end": os.getloadavg()[0], "jobs": a.jobs},
           "wall_seconds": time.perf_counter() - t_all, "summary": summary, "rows": rows}
    path = HERE / "results" / f"ftir_auto_{a.label}.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "count_table"}, indent=1))
    print(count_table_markdown(summary))


if __name__ == "__main__":
    main()
