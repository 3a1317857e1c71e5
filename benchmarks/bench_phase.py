"""Automatic phase correction: specproc's autophase vs nmrglue's ACME (``proc_autophase.autops``).

The same synthetic spectra for both: 20 spectra of 8,192 and 20 of 32,768 points, each with 1-3
pseudo-Voigt sites (random shifts, widths, Lorentz fractions, areas), MAS sidebands, SNR 100-400,
a random zero-order phase error (-90..90 deg) and first-order error (time shift of -0.5..0.5
dwell points = -180..180 deg across the window); FID -> nmrglue ``fft`` -> ppm-descending spectrum.
Both methods phase with nmrglue's ``ps`` convention. "Phase error" is the error of the applied
phase at each line (degrees, area-weighted RMS over the lines of a spectrum): what decides the
lineshape; the p0/p1 pair itself is degenerate for a single line.

Writes benchmarks/results/phase.json and appends rows to /tmp/bench_table.md.
Usage: ``python benchmarks/bench_phase.py [--n 20]``.
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_all import save  # noqa: E402

SIZES = (8192, 32768)
SW, SF = 100_000.0, 128.38


def spectra(n_points: int, n: int, seed: int):
    import nmrglue as ng

    from specproc.testing.nmr_synth import simulate_fid

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        k = int(rng.integers(1, 4))
        comps = []
        for j in range(k):
            comps.append({"center_ppm": float(rng.uniform(-120, 120)), "fwhm_ppm": float(rng.uniform(0.5, 12)),
                          "area_fraction": float(rng.uniform(0.2, 1.0)), "fraction_lorentz": float(rng.uniform(0, 1)),
                          "sidebands": {-1: 0.1, 1: 0.09}})
        tot = sum(c["area_fraction"] for c in comps)
        for c in comps:
            c["area_fraction"] /= tot
        p0e, p1e = float(rng.uniform(-90, 90)), float(rng.uniform(-0.5, 0.5))
        fid = simulate_fid(comps, sfo1_mhz=SF, sf_mhz=SF, sw_hz=SW, n_complex=n_points // 2, mas_rate_hz=10_000.0,
                           snr=float(rng.uniform(100, 400)), phase0_deg=p0e, phase1_points=p1e, seed=seed * 1000 + i)
        fid = fid.copy()
        fid[0] *= 0.5
        spec = ng.proc_base.rev(ng.proc_base.fft(ng.proc_base.zf_size(fid, n_points)))
        ppm = np.fft.fftshift(np.fft.fftfreq(n_points, d=1.0 / SW))[::-1] / SF
        # phase that undoes the errors (see tests/techniques/test_nmr_sample_data.py::truth_phase)
        true = (-p0e - 180.0 * p1e, 360.0 * p1e)
        lines = [(float(np.argmin(np.abs(ppm - c["center_ppm"]))) / n_points, c["area_fraction"]) for c in comps]
        out.append((spec, true, lines))
    return out


def phase_error(p, true, lines):
    e = np.array([((p[0] + p[1] * x) - (true[0] + true[1] * x) + 180.0) % 360.0 - 180.0 for x, _ in lines])
    w = np.array([a for _, a in lines])
    return float(np.sqrt(np.sum(w * e ** 2) / np.sum(w)))


def run(n: int = 20) -> dict:
    import nmrglue as ng

    from specproc.techniques.nmr.processing import autophase

    rows, cases = [], {}
    for size in SIZES:
        data = spectra(size, n, seed=size)
        autophase(data[0][0])  # warm-up (imports)
        t_sp, t_ng, e_sp, e_ng, d_between = [], [], [], [], []
        for spec, true, lines in data:
            t0 = time.perf_counter()
            p_sp = autophase(spec)
            t_sp.append(time.perf_counter() - t0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t0 = time.perf_counter()
                _, p_ng = ng.proc_autophase.autops(spec, "acme", disp=False, return_phases=True)
                t_ng.append(time.perf_counter() - t0)
            e_sp.append(phase_error(p_sp, true, lines))
            e_ng.append(phase_error(p_ng, true, lines))
            d_between.append(phase_error(p_sp, p_ng, lines))
        c = {"n_spectra": n, "points": size,
             "specproc_ms_per_spectrum": 1e3 * float(np.median(t_sp)),
             "nmrglue_acme_ms_per_spectrum": 1e3 * float(np.median(t_ng)),
             "speedup": float(np.median(t_ng) / np.median(t_sp)),
             "specproc_phase_error_deg_median": float(np.median(e_sp)),
             "specproc_phase_error_deg_max": float(np.max(e_sp)),
             "nmrglue_phase_error_deg_median": float(np.median(e_ng)),
             "nmrglue_phase_error_deg_max": float(np.max(e_ng)),
             "specproc_vs_nmrglue_deg_median": float(np.median(d_between))}
        cases[str(size)] = c
        print(f"{size:6d} pts: specproc {c['specproc_ms_per_spectrum']:.2f} ms, nmrglue ACME "
              f"{c['nmrglue_acme_ms_per_spectrum']:.1f} ms ({c['speedup']:.0f}x); phase error at the lines "
              f"median/max specproc {c['specproc_phase_error_deg_median']:.2f}/{c['specproc_phase_error_deg_max']:.2f} deg, "
              f"nmrglue {c['nmrglue_phase_error_deg_median']:.2f}/{c['nmrglue_phase_error_deg_max']:.2f} deg")
        rows.append({"case": f"{n} spectra x {size} points", "specproc_s": float(np.sum(t_sp)),
                     "reference": "nmrglue autops(acme)", "reference_s": float(np.sum(t_ng)),
                     "speedup": c["speedup"],
                     "agreement": f"phase error at lines median {c['specproc_phase_error_deg_median']:.2f} deg "
                                  f"(nmrglue {c['nmrglue_phase_error_deg_median']:.2f})"})
    return {"benchmark": "phase", "cases": cases, "rows": rows}


def append_table(res: dict, path=Path("/tmp/bench_table.md")) -> None:
    lines = ["", "<!-- NMR autophase (bench_phase.py) — helper h7 -->",
             "| benchmark | case | specproc (ms/spectrum) | nmrglue ACME (ms/spectrum) | speed-up | phase error at lines, median / max (deg): specproc | nmrglue |",
             "|---|---|---|---|---|---|---|"]
    for size, c in res["cases"].items():
        lines.append(f"| nmr autophase | {c['n_spectra']} spectra x {size} points | {c['specproc_ms_per_spectrum']:.2f} | "
                     f"{c['nmrglue_acme_ms_per_spectrum']:.1f} | {c['speedup']:.0f}x | "
                     f"{c['specproc_phase_error_deg_median']:.2f} / {c['specproc_phase_error_deg_max']:.2f} | "
                     f"{c['nmrglue_phase_error_deg_median']:.2f} / {c['nmrglue_phase_error_deg_max']:.2f} |")
    with open(path, "a") as fh:
        fh.write("\n".join(lines) + "\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20, help="spectra per size")
    ap.add_argument("--no-table", action="store_true", help="do not append to /tmp/bench_table.md")
    a = ap.parse_args(argv)
    res = run(a.n)
    print("saved", save("phase", res))
    if not a.no_table:
        append_table(res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
