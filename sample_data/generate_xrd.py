"""Generate the study's XRD patterns with known truth (deterministic; run from the repo root).

    .venv/bin/python sample_data/generate_xrd.py

Writes sample_data/xrd/*.xrdml (Cu Kα1/Kα2, ratio 0.5), one .xy, and truth.json. Synthesis:
:mod:`specproc.testing.xrd_synth` (stick patterns of the built-in references, pseudo-Voigt
Kα1/Kα2 doublets, Caglioti instrumental widths + Scherrer size broadening, polynomial
background, amorphous hump, Poisson noise).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from specproc.techniques.xrd.references import builtin, d_spacing
from specproc.testing.xrd_synth import CU_KA1_NM, CU_KA2_NM, synth_pattern, write_xrdml

OUT = Path(__file__).resolve().parent / "xrd"
GRID = np.round(np.arange(5.0, 70.0 + 1e-9, 0.02), 4)
CAGLIOTI = (0.004, -0.002, 0.003)   # deg², a typical Bragg–Brentano diffractometer


def expanded_libh4_cell(d101_nm=0.508, d011_nm=0.375):
    """Cell (Å) with d(101) and d(011) as given: a and c scaled by one factor (keeps a/c), b from d(011)."""
    ref = builtin("LiBH4").cell
    d0 = float(d_spacing([(1, 0, 1)], "orthorhombic", ref["a"], ref["b"], ref["c"])[0])
    s = d101_nm * 10 / d0
    a, c = ref["a"] * s, ref["c"] * s
    inv_b2 = 1 / (d011_nm * 10) ** 2 - 1 / c ** 2
    return {"a": a, "b": float(1 / np.sqrt(inv_b2)), "c": c}


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    heated = expanded_libh4_cell()
    texture = {"011": 2.0}
    samples = {
        "LiBH4_as_received": dict(phases=[{"phase": "LiBH4", "scale": 1.0}], size_nm=None, hump=None, seed=11),
        "LiNH2BH3": dict(phases=[{"phase": "LiNH2BH3", "scale": 1.0}], size_nm=None, hump=None, seed=12),
        "LiBH4-70LiNH2BH3_milled": dict(phases=[{"phase": "LiBH4", "scale": 0.45}, {"phase": "LiNH2BH3", "scale": 0.9}],
                                        size_nm=80.0, hump=None, seed=13),
        "LiBH4-70LiNBH_heated": dict(phases=[{"phase": "LiBH4", "scale": 0.8, "cell": heated, "texture": texture}],
                                     size_nm=None, hump={"center": 24.0, "fwhm": 12.0, "area": 1500.0}, seed=14),
        "LiNBH": dict(phases=[], size_nm=None, hump={"center": 24.0, "fwhm": 12.0, "area": 4000.0}, seed=15),
    }
    truth = {"wavelength_nm": CU_KA1_NM, "kalpha2_nm": CU_KA2_NM, "kalpha2_ratio": 0.5, "caglioti_deg2": CAGLIOTI,
             "grid_deg": [float(GRID[0]), float(GRID[-1]), 0.02], "samples": {}}
    for name, spec in samples.items():
        x, y, tr = synth_pattern(spec["phases"], GRID, kalpha2_ratio=0.5, caglioti=CAGLIOTI, size_nm=spec["size_nm"],
                                 hump=spec["hump"], counts=4000.0, background=(80.0, -8.0, 0.6), seed=spec["seed"])
        write_xrdml(OUT / f"{name}.xrdml", x, y, sample=name, counting_time_s=1.0)
        if name == "LiBH4_as_received":
            with open(OUT / f"{name}.xy", "w") as fh:
                fh.write(f"# {name} (synthetic), Cu Ka1 wavelength = 1.5405980 A\n# 2theta  intensity  sigma\n")
                for a, b in zip(x, y):
                    fh.write(f"{a:.3f} {b:.0f} {np.sqrt(max(b, 1.0)):.2f}\n")
        phases = []
        for ph in tr["phases"]:
            strong = sorted(ph["sticks"], key=lambda s: -s["area"])[:8]
            cell = ph["cell_angstrom"]
            phases.append({"name": ph["name"], "space_group": ph["space_group"],
                           "a_nm": cell["a"] / 10, "b_nm": cell["b"] / 10, "c_nm": cell["c"] / 10,
                           "texture": ph["texture"],
                           "reflections": {s["hkl"]: {"d_nm": s["d_nm"], "two_theta_deg": s["two_theta_deg"],
                                                      "fwhm_deg": s["fwhm_deg"], "area": s["area"]} for s in strong}})
        truth["samples"][name] = {"file": f"{name}.xrdml", "phases": phases, "size_nm": spec["size_nm"],
                                  "amorphous_hump": spec["hump"], "present": [p["name"] for p in phases]}
    truth["samples"]["LiBH4-70LiNBH_heated"]["notes"] = (
        "LiBH4 with an expanded lattice: d(101) 0.494 -> 0.508 nm, d(011) 0.371 -> 0.375 nm; a and c scaled by one "
        "factor, b solved from d(011); reflection 011 (2θ ≈ 23.7°) enhanced by texture factor 2.0")
    truth["samples"]["LiBH4_as_received"]["xy_file"] = "LiBH4_as_received.xy"
    with open(OUT / "truth.json", "w") as fh:
        json.dump(truth, fh, indent=1)


if __name__ == "__main__":
    main()
