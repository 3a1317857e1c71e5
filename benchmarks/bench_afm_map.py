"""Batch engine vs nanite: a 128 x 128 force map, Hertz paraboloid with contact point.

Each curve: 1,000 points of tip position (nanite's convention: tip position decreases into the
sample, ``delta = contact_point - tip``), ``F = 4/3 E/(1-nu^2) sqrt(R) delta^1.5 + baseline`` with
per-pixel modulus (2-8 kPa) and contact point, Gaussian force noise. specproc fits the whole map
with :class:`~specproc.fitting.components.HertzParaboloidModel` on ``d = -tip`` (so its contact
point is ``-cp``); nanite fits each curve with ``Indentation.fit_model(model_key="hertz_para")``
from the same starting values (a subset of curves is timed and extrapolated; stated in the JSON).
If nanite is absent, a scipy ``curve_fit`` loop is the reference instead (said in the output).
Writes benchmarks/results/afm_map.json.
"""
from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_all import jit_load_cached, peak_rss_mib, save  # noqa: E402

NY, NX, M = 128, 128, 1000
N_REF = 200
R, NU = 5e-6, 0.5


def data(seed=0):
    rng = np.random.default_rng(seed)
    tip = np.linspace(2e-6, -2e-6, M)  # m
    E = rng.uniform(2e3, 8e3, (NY, NX))
    cp = rng.normal(0, 2e-7, (NY, NX))
    K = 4 / 3 / (1 - NU ** 2) * np.sqrt(R)
    delta = np.maximum(cp[..., None] - tip, 0)
    F = K * E[..., None] * delta ** 1.5 + rng.normal(0, 2e-11, (NY, NX, M))
    return tip, F, E, cp


def nanite_fits(tip, F, idx):
    import nanite

    warnings.simplefilter("ignore")
    out = {}
    t0 = time.perf_counter()
    for i in idx:
        y, x = divmod(int(i), NX)
        data = {"force": F[y, x], "tip position": tip, "segment": np.zeros(M, bool), "time": np.linspace(0, 1, M)}
        meta = {"spring constant": 0.05, "sensitivity": 5e-8, "imaging mode": "force-distance", "duration": 1.0,
                "point count": M, "path": "synthetic.jpk-force", "enum": int(i)}
        idnt = nanite.Indentation(data=data, metadata=meta)
        p = idnt.get_initial_fit_parameters(model_key="hertz_para")
        p["E"].value, p["R"].value, p["nu"].value = 3e3, R, NU
        p["contact_point"].value, p["baseline"].value = 0.0, 0.0
        idnt.fit_model(model_key="hertz_para", params_initial=p, x_axis="tip position", y_axis="force",
                       segment="approach", weight_cp=False)
        out[int(i)] = idnt.fit_properties["params_fitted"]["E"].value
    return (time.perf_counter() - t0) / len(idx), out


def curve_fit_fits(tip, F, idx):
    from scipy.optimize import curve_fit

    from specproc.fitting.components import hertz_paraboloid

    out = {}
    t0 = time.perf_counter()
    for i in idx:
        y, x = divmod(int(i), NX)
        popt, _ = curve_fit(lambda d, E, c, b: hertz_paraboloid(d, E, R, NU, c, b), -tip, F[y, x], p0=[3e3, 0, 0])
        out[int(i)] = popt[0]
    return (time.perf_counter() - t0) / len(idx), out


def main():
    from specproc.fitting.batch import fit_batch
    from specproc.fitting.components import HertzParaboloidModel

    tip, F, E, cp = data()
    model = HertzParaboloidModel()
    params = model.make_params(E=3e3, R=R, nu=NU, contact_point=0.0, baseline=0.0)
    jit_cached = jit_load_cached()
    fit_batch(model, -tip, F[0, :4], params=params)
    t0 = time.perf_counter()
    ds = fit_batch(model, -tip, F, params=params, dims=("y", "x"))
    t_sp = time.perf_counter() - t0
    err_truth = float(np.max(np.abs(ds.E.values / E - 1)))
    idx = np.linspace(0, NY * NX - 1, N_REF).astype(int)
    try:
        per, ref = nanite_fits(tip, F, idx)
        ref_name = f"nanite hertz_para per curve ({N_REF} curves timed, {per * 1e3:.2f} ms/curve, extrapolated)"
    except ImportError:
        per, ref = curve_fit_fits(tip, F, idx)
        ref_name = (f"nanite NOT installed: scipy curve_fit loop ({N_REF} curves timed, {per * 1e3:.2f} ms/curve, "
                    f"extrapolated)")
    Ef = ds.E.values.reshape(-1)
    rel = max(abs(Ef[i] / v - 1) for i, v in ref.items())
    rows = [dict(case=f"{NY}x{NX} curves x {M} points, Hertz paraboloid + contact point", specproc_s=t_sp,
                 reference=ref_name, reference_s=per * NY * NX, speedup=per * NY * NX / t_sp,
                 agreement=f"E max rel diff {rel:.1e} (vs truth {err_truth:.1e})")]
    res = dict(rows=rows, jit_load_cached_s=jit_cached, n_failed=ds.attrs["n_failed"],
               mean_nfev=float(ds.nfev.mean()), peak_rss_mib=peak_rss_mib())
    save("afm_map", res)
    r = rows[0]
    print(f"{r['case']}: specproc {t_sp:.2f} s | {r['reference']}: {r['reference_s']:.1f} s | {r['speedup']:.1f}x | "
          f"{r['agreement']} | failed {ds.attrs['n_failed']}")


if __name__ == "__main__":
    main()
