"""Generate the study's XPS depth profiles with known truth (deterministic; run from the repo root).

    .venv/bin/python sample_data/generate_xps.py

Writes sample_data/xps/*.vms and truth.json: Li metal cycled against LiBH4-70LiNBH (an interphase of Li3N,
N 1s 398.6 eV, and Li-B, B 1s 187.5 eV, about 400 nm thick) and against LiBH4 (no B or N species), 32 etch
levels each (etch time 0-3100 s, sputter rate 0.25 nm/s), regions Li 1s, B 1s, N 1s, C 1s, O 1s, GL(30)
lines on Shirley steps with Poisson noise (:mod:`specproc.testing.xps_synth`). Quirks exercised: the
LiBH4 file stores kinetic energy and starts with blank lines, and gives its sputter rate in a comment;
the other one gives it as an additional numerical parameter. Both are charged (all lines shifted).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy.special import erfc

from specproc.techniques.xps.rsf import rsf_for
from specproc.testing.xps_synth import region_spectra, write_vamas

OUT = Path(__file__).resolve().parent / "xps"
SCALE = 620.0          # counts per (concentration unit x RSF)
RATE_NM_S = 0.25
ETCH_S = np.arange(32) * 100.0
MIXING = 0.3

#: region -> (window lo, hi eV, [(species, true BE eV, FWHM eV)])
REGIONS = {
    "Li 1s": (48.0, 62.0, [("Li metal", 52.6, 0.9), ("Li+", 55.0, 1.4)]),
    "B 1s": (182.0, 196.0, [("Li-B", 187.5, 1.4), ("B-N", 190.6, 1.6)]),
    "N 1s": (392.0, 406.0, [("Li3N", 398.6, 1.5)]),
    "C 1s": (279.0, 295.0, [("C-C", 284.8, 1.3), ("Li2CO3", 290.0, 1.4)]),
    "O 1s": (523.0, 538.0, [("Li2O", 528.6, 1.4), ("Li2CO3", 531.5, 1.6)]),
}


def falloff(z, d, w):
    """Fraction of the maximum left at depth z for an interface at d (50 %) with width w (nm)."""
    return 0.5 * erfc((z - d) / (np.sqrt(2) * w))


def concentrations(z, interphase: bool):
    """Concentration (arbitrary units) of each (region, species) at depths z (nm)."""
    li3n = 16.0 * falloff(z, 390.0, 60.0) if interphase else 0 * z
    lib = 12.0 * falloff(z, 370.0, 70.0) if interphase else 0 * z
    bn = 5.0 * np.exp(-z / 40.0) if interphase else 0 * z
    cc = 22.0 * np.exp(-z / 25.0) + 1.0
    co3 = 5.0 * np.exp(-z / 80.0) + 0.3
    li2o = 3.0 + 9.0 * np.exp(-z / 150.0)
    li_plus = 3 * li3n + lib + 2 * li2o + 2 * co3 + 0.5 * bn
    li0 = 80.0 * (1 - np.exp(-z / 120.0)) + 5.0
    return {("Li 1s", "Li metal"): li0, ("Li 1s", "Li+"): li_plus, ("B 1s", "Li-B"): lib, ("B 1s", "B-N"): bn,
            ("N 1s", "Li3N"): li3n, ("C 1s", "C-C"): cc, ("C 1s", "Li2CO3"): co3,
            ("O 1s", "Li2O"): li2o, ("O 1s", "Li2CO3"): 3 * co3}


def atomic_percent(conc):
    tot = sum(conc.values())
    return {k: 100 * v / tot for k, v in conc.items()}


def thickness_50(z, at):
    """Depth (nm) where ``at`` falls below 50 % of its maximum after the maximum (linear interpolation)."""
    i = int(np.argmax(at))
    half = 0.5 * at[i]
    for j in range(i, len(at) - 1):
        if at[j] >= half > at[j + 1]:
            return float(z[j] + (half - at[j]) * (z[j + 1] - z[j]) / (at[j + 1] - at[j]))
    return None


def make(name, sample, *, interphase, shift, kinetic, seed, blank_lines=0, rate_in_comment=False):
    rng = np.random.default_rng(seed)
    z = ETCH_S * RATE_NM_S
    conc = concentrations(z, interphase)
    regions = []
    for k, (reg, (lo, hi, comps)) in enumerate(REGIONS.items()):
        be = np.round(np.arange(hi, lo - 1e-9, -0.1), 2)  # descending, like most exports
        lines = [{"center": c, "fwhm": w, "mixing": MIXING} for _, c, w in comps]
        areas = np.stack([conc[(reg, sp)] * rsf_for(reg) * SCALE for sp, _, _ in comps], axis=1)
        Y, _, _ = region_spectra(be, lines, areas, shift=shift, base=300.0 + 100 * k, step=0.15,
                                 seed=int(rng.integers(2 ** 31)))
        el, tr = reg.split()
        regions.append({"species": el, "transition": tr, "be": be, "Y": Y})
    comments = ["Li metal electrode after cycling; Ar+ depth profile"]
    if rate_in_comment:
        comments.append(f"Sputter rate = {RATE_NM_S} nm/s (Ta2O5 calibration)")
    write_vamas(OUT / name, regions, ETCH_S, sample=sample, kinetic=kinetic, comments=comments,
                sputter_rate=None if rate_in_comment else RATE_NM_S, leading_blank_lines=blank_lines)
    # truth: at % per level, thicknesses from the continuous profile
    zf = np.linspace(0, z.max(), 20001)
    atf = atomic_percent(concentrations(zf, interphase))
    at = atomic_percent(conc)
    species = sorted({sp for _, sp in conc})
    thick = {}
    for sp in species:
        prof = sum(v for (r, s), v in atf.items() if s == sp)
        if np.max(prof) >= 1.0 and sp in ("Li3N", "Li-B"):
            thick[sp] = thickness_50(zf, prof)
    inter = None
    if interphase:
        inter = thickness_50(zf, atf[("N 1s", "Li3N")] + atf[("B 1s", "Li-B")])
    return {
        "file": name, "sample": sample, "charge_shift_eV": shift, "energy_axis": "kinetic" if kinetic else "binding",
        "work_function_eV": 4.5, "source_eV": 1486.6, "sputter_rate_nm_s": RATE_NM_S,
        "etch_time_s": ETCH_S.tolist(), "depth_nm": z.tolist(),
        "components": [{"region": reg, "name": sp, "be_eV": c, "fwhm_eV": w, "mixing": MIXING}
                       for reg, (_, _, comps) in REGIONS.items() for sp, c, w in comps],
        "atomic_percent": {f"{r}/{s}": np.round(v, 4).tolist() for (r, s), v in at.items()},
        "max_atomic_percent": {sp: float(np.max(sum(v for (r, s), v in at.items() if s == sp)))
                               for sp in species},
        "present": {sp: bool(np.max(sum(v for (r, s), v in at.items() if s == sp)) >= 1.0) for sp in species},
        "thickness_nm": thick, "interphase_thickness_nm": inter, "interphase_species": ["Li3N", "Li-B"],
        "detection_limit_at_percent": 1.0,
    }


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    truth = {
        "Li_vs_LiBH4-70LiNBH.vms": make("Li_vs_LiBH4-70LiNBH.vms", "LiBH4-70LiNBH", interphase=True, shift=1.3,
                                        kinetic=False, seed=131),
        "Li_vs_LiBH4.vms": make("Li_vs_LiBH4.vms", "LiBH4", interphase=False, shift=0.7, kinetic=True, seed=132,
                                blank_lines=2, rate_in_comment=True),
    }
    (OUT / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    for k, v in truth.items():
        print(k, "interphase", v["interphase_thickness_nm"], "thickness", v["thickness_nm"])


if __name__ == "__main__":
    main()
