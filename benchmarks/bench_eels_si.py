"""Batch engine vs HyperSpy ``multifit``: EELS spectrum image, power-law background + 2 Gaussians.

Case 1: 64 x 64 x 1024 spectrum image (energy loss 250-750 eV), background ``A E^-r`` and two
Gaussian edges-like peaks with smoothly varying areas/centres, Poisson-like Gaussian noise. The same
signal, model and starting values go to HyperSpy (``Signal1D.create_model()``, components PowerLaw +
2 Gaussian, ``multifit(optimizer="lm", grad="analytical")``). HyperSpy is timed on a block of rows and
extrapolated to the full map (stated in the JSON). If HyperSpy is absent the comparison is skipped.
Case 2: memory: a 128 x 128 x 2048 float64 spectrum image (256 MiB) is fitted in a child process and
its peak RSS (``resource.getrusage``) reported.
Writes benchmarks/results/eels_si.json.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_all import jit_load_cached, peak_rss_mib, save  # noqa: E402

NY, NX, M = 64, 64, 1024
HS_ROWS = 8


def data(ny=NY, nx=NX, m=M, seed=0):
    rng = np.random.default_rng(seed)
    E = np.linspace(250.0, 750.0, m)
    yy, xx = np.meshgrid(np.linspace(0, 1, ny), np.linspace(0, 1, nx), indexing="ij")
    A = 2e9 * (1 + 0.2 * yy)
    r = 3.0 + 0.1 * xx
    a1 = 3000 * (1 + 0.5 * xx * yy)
    c1 = 400 + 2 * yy
    a2 = 2000 * (1 + 0.3 * xx)
    c2 = 532 - 1.5 * xx
    Y = np.empty((ny, nx, m))
    for i in range(ny):  # row by row keeps the temporaries small
        Y[i] = (A[i, :, None] * E ** -r[i, :, None]
                + a1[i, :, None] / (np.sqrt(2 * np.pi) * 8) * np.exp(-(E - c1[i, :, None]) ** 2 / (2 * 64))
                + a2[i, :, None] / (np.sqrt(2 * np.pi) * 12) * np.exp(-(E - c2[i, :, None]) ** 2 / (2 * 144)))
        Y[i] += rng.normal(0, 1.0, (nx, m)) * np.sqrt(np.maximum(Y[i], 1)) * 0.3
    truth = dict(a1=a1, c1=c1, a2=a2, c2=c2, r=r)
    return E, Y, truth


START = dict(bg_amplitude=1.5e9, bg_exponent=-2.95, g1_amplitude=2500.0, g1_center=402.0, g1_sigma=9.0,
             g2_amplitude=1800.0, g2_center=530.0, g2_sigma=11.0)


def model_and_params():
    from lmfit.models import GaussianModel, PowerLawModel

    model = PowerLawModel(prefix="bg_") + GaussianModel(prefix="g1_") + GaussianModel(prefix="g2_")
    params = model.make_params(**START)
    return model, params


def hyperspy_fit(E, Y):
    import hyperspy.api as hs

    s = hs.signals.Signal1D(Y)
    ax = s.axes_manager.signal_axes[0]
    ax.offset, ax.scale, ax.units = E[0], E[1] - E[0], "eV"
    m = s.create_model()
    pl = hs.model.components1D.PowerLaw()
    g1 = hs.model.components1D.Gaussian()
    g2 = hs.model.components1D.Gaussian()
    m.extend([pl, g1, g2])
    pl.origin.value = 0.0
    pl.origin.free = False
    pl.left_cutoff.value = 0.0
    pl.A.value, pl.r.value = START["bg_amplitude"], -START["bg_exponent"]
    g1.A.value, g1.centre.value, g1.sigma.value = START["g1_amplitude"], START["g1_center"], START["g1_sigma"]
    g2.A.value, g2.centre.value, g2.sigma.value = START["g2_amplitude"], START["g2_center"], START["g2_sigma"]
    m.assign_current_values_to_all()
    t0 = time.perf_counter()
    m.multifit(optimizer="lm", grad="analytical", show_progressbar=False)
    dt = time.perf_counter() - t0
    return dt, dict(a1=g1.A.map["values"], c1=g1.centre.map["values"], a2=g2.A.map["values"],
                    c2=g2.centre.map["values"], r=pl.r.map["values"])


MEM_CHILD = """
import json, sys, time, resource
sys.path.insert(0, {here!r})
import numpy as np
from bench_eels_si import data, model_and_params
from specproc.fitting.batch import fit_batch
E, Y, _ = data(128, 128, 2048, seed=1)
model, params = model_and_params()
t0 = time.perf_counter()
ds = fit_batch(model, E, Y, params=params, dims=("y", "x"))
dt = time.perf_counter() - t0
print(json.dumps(dict(seconds=dt, n_failed=ds.attrs["n_failed"], data_mib=Y.nbytes / 2**20,
                      peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))
"""


def main():
    from specproc.fitting.batch import fit_batch

    E, Y, truth = data()
    model, params = model_and_params()
    jit_cached = jit_load_cached()
    fit_batch(model, E, Y[0, :4], params=params)
    t0 = time.perf_counter()
    ds = fit_batch(model, E, Y, params=params, dims=("y", "x"))
    t_sp = time.perf_counter() - t0
    err_truth = float(np.max(np.abs(ds.g1_amplitude.values / truth["a1"] - 1)))
    rows = []
    res = dict(jit_load_cached_s=jit_cached, n_failed=ds.attrs["n_failed"], mean_nfev=float(ds.nfev.mean()),
               max_rel_err_g1_area_vs_truth=err_truth)
    try:
        t_hs, hs_maps = hyperspy_fit(E, Y[:HS_ROWS])
        t_hs_full = t_hs * NY / HS_ROWS
        sub = {k: v[:HS_ROWS] for k, v in dict(a1=ds.g1_amplitude.values, c1=ds.g1_center.values,
                                                 a2=ds.g2_amplitude.values, c2=ds.g2_center.values,
                                                 r=-ds.bg_exponent.values).items()}
        agree = (f"centres max |d| {max(np.nanmax(np.abs(sub[k] - hs_maps[k])) for k in ('c1', 'c2')):.1e} eV, "
                 f"areas max rel {max(np.nanmax(np.abs(sub[k] / hs_maps[k] - 1)) for k in ('a1', 'a2')):.1e}, "
                 f"r max |d| {np.nanmax(np.abs(sub['r'] - hs_maps['r'])):.1e}")
        rows.append(dict(case=f"{NY}x{NX}x{M}, power law + 2 Gaussians", specproc_s=t_sp,
                         reference=f"HyperSpy multifit lm/analytical ({HS_ROWS} of {NY} rows timed: {t_hs:.1f} s, "
                                   f"extrapolated)", reference_s=t_hs_full, speedup=t_hs_full / t_sp,
                         agreement=agree))
    except ImportError as e:
        rows.append(dict(case=f"{NY}x{NX}x{M}, power law + 2 Gaussians", specproc_s=t_sp,
                         reference=f"HyperSpy not installed ({e}); comparison skipped", reference_s=None,
                         speedup=None, agreement=f"vs truth: g1 area max rel err {err_truth:.1e}"))
    # memory case in a child process so its peak RSS is its own
    child = subprocess.run([sys.executable, "-c", MEM_CHILD.format(here=str(Path(__file__).resolve().parent))],
                           capture_output=True, text=True)
    if child.returncode == 0:
        mem = json.loads(child.stdout.strip().splitlines()[-1])
        rows.append(dict(case="128x128x2048 float64 (256 MiB) memory", specproc_s=mem["seconds"],
                         reference="limit 2 GiB peak RSS", reference_s=None, speedup=None,
                         agreement=f"peak RSS {mem['peak_rss_mib']:.0f} MiB, failed fits {mem['n_failed']}"))
        res["peak_rss_mib_128x128x2048"] = mem["peak_rss_mib"]
    else:
        res["note_memory_case"] = child.stderr[-500:]
    res["rows"] = rows
    res["peak_rss_mib"] = peak_rss_mib()
    save("eels_si", res)
    for r in rows:
        ref = "n/a" if r["reference_s"] is None else f"{r['reference_s']:.1f} s"
        sp = "" if r["speedup"] is None else f"{r['speedup']:.1f}x"
        print(f"{r['case']}: specproc {r['specproc_s']:.2f} s | {r['reference']}: {ref} | {sp} | {r['agreement']}")


if __name__ == "__main__":
    main()
