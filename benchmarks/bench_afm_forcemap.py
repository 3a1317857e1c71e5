"""``sp.afm.fit_force_map`` (the user path) vs nanite on a 128 x 128 force map of 1,000-point curves.

Same synthetic data as ``bench_afm_map.py`` (seeded; Hertz paraboloid, R = 5 µm, nu = 0.5, moduli
2-8 kPa, contact points N(0, 200 nm), Gaussian force noise), but specproc runs the whole user path:
baseline fit and subtraction, threshold contact-point estimate, per-curve starting modulus, and
the batched Hertz fit with free contact point, offset and residual tilt. nanite fits each curve
with ``Indentation.fit_model(model_key="hertz_para")`` (a subset is timed and extrapolated; stated
in the output). Moduli are compared with nanite's and with the truth.
Writes ``benchmarks/results/afm_forcemap.json``.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_afm_map import NU, NX, NY, M, R, data, nanite_fits  # noqa: E402
from run_all import jit_load_cached, peak_rss_mib, save  # noqa: E402

N_REF = 200


def main():
    import specproc as sp

    tip, F, E, cp = data()
    H = np.broadcast_to(tip, F.shape)            # heights decreasing towards the sample (m)
    jit = jit_load_cached()
    sp.afm.fit_force_map(H[0, :2], F[0, :2], tip_radius_m=R, poisson_ratio=NU)   # warm: kernel loaded
    t0 = time.perf_counter()
    ds = sp.afm.fit_force_map(H, F, model="hertz-paraboloid", tip_radius_m=R, poisson_ratio=NU)
    t_sp = time.perf_counter() - t0
    Ef = ds.E_Pa.values
    err_truth = float(np.nanmax(np.abs(Ef / E - 1)))
    cp_err = float(np.nanmax(np.abs(ds.contact_point_m.values - cp)))
    idx = np.linspace(0, NY * NX - 1, N_REF).astype(int)
    try:
        per, ref = nanite_fits(tip, F, idx)
        import nanite

        ref_name = (f"nanite {nanite.__version__} hertz_para per curve ({N_REF} curves timed, "
                    f"{per * 1e3:.2f} ms/curve, extrapolated)")
    except ImportError:
        print("nanite is not installed: `.venv/bin/pip install nanite` to run this comparison")
        return
    flat = Ef.reshape(-1)
    rel = max(abs(flat[i] / v - 1) for i, v in ref.items())
    ref_truth = max(abs(v / E.reshape(-1)[i] - 1) for i, v in ref.items())
    rows = [dict(case=f"{NY}x{NX} curves x {M} points, sp.afm.fit_force_map (baseline, contact point, Hertz)",
                 specproc_s=t_sp, reference=ref_name, reference_s=per * NY * NX, speedup=per * NY * NX / t_sp,
                 agreement=(f"E max rel diff vs nanite {rel:.1e}; vs truth: specproc {err_truth:.1e}, "
                            f"nanite {ref_truth:.1e}; contact point max err {cp_err * 1e9:.2f} nm"))]
    res = dict(rows=rows, jit_load_cached_s=jit, n_flagged=int((ds.flag.values != 0).sum()),
               fit_s=ds.attrs["fit_s"], peak_rss_mib=peak_rss_mib())
    save("afm_forcemap", res)
    r = rows[0]
    print(f"{r['case']}: specproc {t_sp:.2f} s | {r['reference']}: {r['reference_s']:.1f} s | "
          f"{r['speedup']:.1f}x | {r['agreement']} | flagged {res['n_flagged']}")


if __name__ == "__main__":
    main()
