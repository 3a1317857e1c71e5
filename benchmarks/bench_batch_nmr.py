"""Batch engine vs a loop of lmfit fits and a loop of scipy curve_fit: 1,000 NMR-like spectra.

1,000 spectra x 4,096 points, 3 pseudo-Voigt peaks + linear baseline, Gaussian noise, per-spectrum
jitter of centres, widths and areas. Same data and starting values for every method.
lmfit: a subset of spectra is fitted and the per-fit time extrapolated to 1,000 (stated in the JSON);
curve_fit: MINPACK LM with the analytic Jacobian (the same derivatives as the engine), unbounded,
also a subset, extrapolated.
Also the cost of the per-spectrum noise statistics (``noise_sd``, ``redchi_noise``: one model
evaluation and the robust noise SD of every residual, issue #25): the same batch with and without
them, best of 3 each, interleaved.
Writes benchmarks/results/batch_nmr.json.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_all import jit_compile_cold, jit_load_cached, peak_rss_mib, save  # noqa: E402

N, M = 1000, 4096
N_LMFIT, N_CF = 50, 100


def data(seed=0):
    from lmfit.models import LinearModel, PseudoVoigtModel

    rng = np.random.default_rng(seed)
    x = np.linspace(-60.0, -20.0, M)  # ppm
    model = (PseudoVoigtModel(prefix="a_") + PseudoVoigtModel(prefix="b_") + PseudoVoigtModel(prefix="c_")
             + LinearModel(prefix="bl_"))
    truth = dict(a_amplitude=10.0, a_center=-44.3, a_sigma=0.6, a_fraction=0.4, b_amplitude=4.0, b_center=-41.0,
                 b_sigma=0.8, b_fraction=0.5, c_amplitude=6.0, c_center=-36.5, c_sigma=0.5, c_fraction=0.3,
                 bl_slope=0.002, bl_intercept=0.15)
    Y = np.empty((N, M))
    for i in range(N):
        t = dict(truth)
        for p in "abc":
            t[f"{p}_center"] += rng.normal(0, 0.1)
            t[f"{p}_sigma"] *= rng.uniform(0.9, 1.1)
            t[f"{p}_amplitude"] *= rng.uniform(0.8, 1.2)
        Y[i] = model.eval(x=x, **t)
    Y += rng.normal(0, 0.02, Y.shape)
    start = {k: (v + 0.2 if k.endswith("center") else v * 1.1) for k, v in truth.items()}
    params = model.make_params(**start)
    for p in "abc":
        params[f"{p}_sigma"].set(min=1e-3, max=10)
        params[f"{p}_fraction"].set(min=0, max=1)
        params[f"{p}_amplitude"].set(min=0)
    return x, Y, model, params


def curve_fit_loop(x, Y, params, idx):
    """scipy.optimize.curve_fit (MINPACK LM, its default; no bounds) with the analytic Jacobian."""
    from scipy.optimize import curve_fit

    from specproc.fitting._batch_kernels import d_pseudo_voigt

    names = list(params.valuesdict())[:14]
    p0 = np.array([params[n].value for n in names])

    def f(xx, *p):
        v = p[12] * xx + p[13]
        for k in range(3):
            v = v + d_pseudo_voigt(xx, *p[4 * k:4 * k + 4])[0]
        return v

    def jac(xx, *p):
        J = np.empty((xx.size, 14))
        for k in range(3):
            out = d_pseudo_voigt(xx, *p[4 * k:4 * k + 4])
            for j in range(4):
                J[:, 4 * k + j] = out[1 + j]
        J[:, 12] = xx
        J[:, 13] = 1.0
        return J

    res = {}
    t0 = time.perf_counter()
    for i in idx:
        popt, pcov = curve_fit(f, x, Y[i], p0=p0, jac=jac, method="lm")
        res[i] = dict(zip(names, popt))
    return (time.perf_counter() - t0) / len(idx), res


def main():
    from specproc.fitting.batch import fit_batch

    x, Y, model, params = data()
    jit_cold = jit_compile_cold()
    jit_cached = jit_load_cached()
    fit_batch(model, x, Y[:4], params=params)  # imports, first call
    t0 = time.perf_counter()
    ds = fit_batch(model, x, Y, params=params)
    t_sp = time.perf_counter() - t0
    idx = np.linspace(0, N - 1, N_LMFIT).astype(int)
    t0 = time.perf_counter()
    lm = {}
    for i in idx:
        r = model.fit(Y[i], params.copy(), x=x)
        lm[i] = r.params
    per_lmfit = (time.perf_counter() - t0) / len(idx)
    cidx = np.linspace(0, N - 1, N_CF).astype(int)
    per_cf, cf = curve_fit_loop(x, Y, params, cidx)

    def dev(ref, keys):
        return max(abs(float(ds[k][i]) - float(ref[i][k] if not hasattr(ref[i][k], "value") else ref[i][k].value))
                   for i in ref for k in keys)

    def rdev(ref, keys):
        return max(abs(float(ds[k][i]) / float(ref[i][k] if not hasattr(ref[i][k], "value") else ref[i][k].value)
                       - 1) for i in ref for k in keys)

    cen = ["a_center", "b_center", "c_center"]
    amp = ["a_amplitude", "b_amplitude", "c_amplitude"]
    agree_lm = f"centres max |d| {dev(lm, cen):.1e} ppm, areas max rel {rdev(lm, amp):.1e}"
    agree_cf = f"centres max |d| {dev(cf, cen):.1e} ppm, areas max rel {rdev(cf, amp):.1e}"
    rows = [
        dict(case=f"{N} x {M}, 3 pV + linear", specproc_s=t_sp, reference=f"lmfit loop ({N_LMFIT} fits timed, "
             f"{per_lmfit * 1e3:.1f} ms/fit, extrapolated)", reference_s=per_lmfit * N,
             speedup=per_lmfit * N / t_sp, agreement=agree_lm),
        dict(case=f"{N} x {M}, 3 pV + linear", specproc_s=t_sp, reference=f"curve_fit loop, analytic Jacobian "
             f"({N_CF} fits timed, {per_cf * 1e3:.2f} ms/fit, extrapolated)", reference_s=per_cf * N,
             speedup=per_cf * N / t_sp, agreement=agree_cf),
    ]
    noise = noise_overhead(model, x, Y, params)
    res = dict(rows=rows, noise_stats=noise, jit_compile_cold_s=jit_cold, jit_load_cached_s=jit_cached, n_failed=ds.attrs["n_failed"],
               mean_nfev=float(ds.nfev.mean()), peak_rss_mib=peak_rss_mib(), timings=ds.attrs["timings"])
    save("batch_nmr", res)
    for r in rows:
        print(f"{r['case']}: specproc {r['specproc_s']:.2f} s | {r['reference']}: {r['reference_s']:.1f} s | "
              f"{r['speedup']:.1f}x | {r['agreement']}")
    print(f"JIT compile (cold) {jit_cold:.2f} s, cached load {jit_cached:.2f} s, failed fits {ds.attrs['n_failed']}")
    print(f"noise statistics: batch {noise['without_s']:.2f} s without, {noise['with_s']:.2f} s with "
          f"(+{100 * noise['overhead']:.1f} %; the estimate itself {noise['noise_s']:.2f} s), "
          f"median redchi_noise {noise['median_redchi_noise']:.3f}")


def noise_overhead(model, x, Y, params, repeats=3):
    """Batch time with and without the noise statistics (best of ``repeats``, interleaved)."""
    from specproc.fitting.batch import fit_batch

    t_off, t_on, t_noise, ds = [], [], [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        fit_batch(model, x, Y, params=params, noise_stats=False)
        t_off.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ds = fit_batch(model, x, Y, params=params)
        t_on.append(time.perf_counter() - t0)
        t_noise.append(ds.attrs["timings"]["noise"])
    off, on = min(t_off), min(t_on)
    return dict(without_s=off, with_s=on, noise_s=min(t_noise), overhead=on / off - 1,
                median_redchi_noise=float(np.median(ds["redchi_noise"].values)),
                median_noise_sd=float(np.median(ds["noise_sd"].values)), true_noise_sd=0.02)


if __name__ == "__main__":
    main()
