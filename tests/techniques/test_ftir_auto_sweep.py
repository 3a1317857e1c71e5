"""FTIR automatic mode (issue #23) on random generated truths: a seeded subset of
``benchmarks/bench_ftir_auto.py`` (its generator, its definitions of resolvable, split and confident
wrong count), through ``fit_bands(m, region=..., max_bands=None)`` without bands.

The truths are those of the benchmark's seeds 0-19 (not chosen: the first twenty): 1-8 pseudo-Voigt
bands of FWHM 8-60 cm-1 in a 300-600 cm-1 region, separations down to 0.5 FWHM, S/N 20-1000, CO2 and
water vapour in some, on the generator's sloping baseline.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_ftir_auto.py"
SEEDS = range(20)


def _bench():
    spec = importlib.util.spec_from_file_location("bench_ftir_auto", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def rows():
    b = _bench()
    return [b.one(seed) for seed in SEEDS]


def test_generator_is_seeded_and_spans_the_stated_ranges():
    """The same seed gives the same spectrum; 200 truths (no fits) cover what the sweep states: 1-8 bands
    inside their region, separations down to 0.5 FWHM, S/N 20-1000, CO2 and water vapour in some."""
    b = _bench()
    t1, t2 = b.truth(7), b.truth(7)
    assert np.array_equal(t1["y"], t2["y"]) and np.array_equal(t1["centres"], t2["centres"])
    ts = [b.truth(s) for s in range(200)]
    assert {t["centres"].size for t in ts} == set(range(1, 9))
    assert all(np.all(np.diff(t["centres"]) > 0) for t in ts)
    assert all(t["region"][0] + 1.5 * t["fwhms"][0] <= t["centres"][0] + 1e-9 for t in ts)
    assert all(t["centres"][-1] <= t["region"][1] - 1.5 * t["fwhms"][-1] + 1e-9 for t in ts)
    assert all(300 <= t["region"][1] - t["region"][0] <= 600 and 700 <= t["region"][0] and t["region"][1] <= 3900
               for t in ts)
    sep = [np.min(np.diff(t["centres"]) / np.maximum(t["fwhms"][1:], t["fwhms"][:-1])) for t in ts
           if t["centres"].size > 1]
    assert 0.5 <= min(sep) < 0.55 and 0.3 < np.mean(np.array(sep) < 1) < 0.9
    snr = np.array([t["snr"] for t in ts])
    assert snr.min() >= 20 and snr.max() <= 1000 and np.mean(snr < 100) > 0.3 and np.mean(snr > 300) > 0.1
    assert 0.25 < np.mean([t["co2"] > 0 for t in ts]) < 0.6 and 0.1 < np.mean([t["water"] > 0 for t in ts]) < 0.4
    # the noise is what the S/N says: the residual of the truth's noiseless parts
    g = b.generator()
    t = ts[3]
    bands = [{"center": c, "fwhm": w, "height": h, "fraction": f}
             for c, w, h, f in zip(t["centres"], t["fwhms"], t["heights"], t["fractions"])]
    clean = sum(g.pv(g.GRID, d["center"], d["fwhm"], d["height"], d["fraction"]) for d in bands)
    a, sl, c2 = (0.04, 1.5e-5, 2e-9)
    resid = t["y"] - clean - t["atmosphere"] - (a + sl * (g.GRID - 400) + c2 * (g.GRID - 400) ** 2)
    assert abs(np.std(resid) / t["noise"] - 1) < 0.1


def test_resolvable_right_count_and_centres(rows):
    res = [r for r in rows if r["resolvable"]]
    assert len(res) >= 8
    right = [r for r in res if r["right"]]
    assert len(right) >= len(res) - 1, [(r["seed"], r["n_true"], r["n_found"]) for r in res if not r["right"]]
    assert all(r["centres_ok"] for r in right), [r["seed"] for r in right if not r["centres_ok"]]


def test_no_confident_wrong_count_and_no_split(rows):
    confident = [(r["seed"], r["n_true"], r["n_found"]) for r in rows
                 if not r["resolvable"] and not r["right"] and not r["uncertain_warning"]]
    assert confident == []
    assert sum(r["split"] for r in rows) == 0
    assert all(r["error"] is None for r in rows)
