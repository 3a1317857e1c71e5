"""Generate the study's synthetic NMR exports with known truth (deterministic).

Run from the repository root::

    .venv/bin/python sample_data/generate_nmr.py

Writes ``sample_data/nmr/``:

* ``<Sample>_<nucleus>/1/`` - TopSpin-like experiment folders (acqus/acqu, int32 ``fid`` carrying the
  digital-filter group delay, ``pdata/1/procs``+``proc``, ``pdata/1/title``);
* ``jcamp/<Sample>_<nucleus>.jdx`` - a few JCAMP-DX NMR spectra (XYDATA, x in Hz or ppm);
* ``csv/<Sample>_<nucleus>.csv`` - one two-column CSV spectrum;
* ``truth.json`` - everything needed to check a reader/processor (see ``sample_data/README.md``).

All study numbers (shifts, widths, fractions) live here and in ``truth.json``, never in specproc.
The line simulation itself is :mod:`specproc.testing.nmr_synth` (shared with the tests).
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))  # run from a checkout without installing

from specproc.testing.nmr_synth import (spectrum_model, write_bruker_experiment,  # noqa: E402
                                        write_csv_spectrum, write_jcamp_spectrum)

OUT = ROOT / "nmr"
SEED = 20240611
SAMPLES = ("LiBH4", "LiNH2BH3", "LiNBH", "LiBH4-70LiNH2BH3", "LiBH4-70LiNBH")

#: Spectrometer set-up per nucleus (9.4 T): basic frequency, spectral width, TD, carrier, MAS rate.
NUCLEI = {
    "11B": dict(bf1_mhz=128.38, sw_hz=100_000.0, td=8192, carrier_ppm=-10.0, mas_rate_hz=12_500.0,
                pulprog="onepulse", ns=256),
    "7Li": dict(bf1_mhz=155.51, sw_hz=100_000.0, td=8192, carrier_ppm=0.0, mas_rate_hz=12_500.0,
                pulprog="onepulse", ns=64),
    "1H": dict(bf1_mhz=400.13, sw_hz=200_000.0, td=4096, carrier_ppm=4.0, mas_rate_hz=25_000.0,
               pulprog="zg", ns=16),
}
#: One set spun at a different rate (tests must read MASR, not assume it).
MAS_OVERRIDE = {("LiNH2BH3", "11B"): 10_000.0}


def pv(name, center, fwhm, frac, fl, sb):
    """Component dict; ``sb`` = {order: intensity relative to the centre band}."""
    return {"name": name, "center_ppm": center, "fwhm_ppm": fwhm, "area_fraction": frac, "shape": "pseudo-voigt",
            "fraction_lorentz": fl, "sidebands": sb}


# Sideband patterns (relative to centre band): small-CQ 11B sites and 7Li satellites give a few orders;
# 1H at 25 kHz only weak +-1/+-2 from residual homonuclear dipolar coupling.
SB_B = {-2: 0.03, -1: 0.10, 1: 0.09, 2: 0.025}
SB_B_WEAK = {-1: 0.05, 1: 0.045}
SB_LI = {-3: 0.01, -2: 0.04, -1: 0.12, 1: 0.11, 2: 0.035, 3: 0.01}
SB_H = {-2: 0.01, -1: 0.05, 1: 0.05, 2: 0.01}

STUDY = {
    ("LiBH4", "11B"): [pv("BH4", -44.3, 1.6, 1.0, 0.6, SB_B)],
    ("LiNH2BH3", "11B"): [pv("BH3", -25.5, 4.5, 1.0, 0.4, SB_B)],
    # [N2BH]n is trigonal boron with CQ ~ 2.6 MHz: its MAS line is a second-order quadrupolar pattern.
    # Here it is a plain broad pseudo-Voigt (documented in truth.json "notes").
    ("LiNBH", "11B"): [pv("N2BH", 23.6, 14.0, 0.62, 0.2, SB_B_WEAK), pv("NBH3", -25.3, 5.0, 0.30, 0.4, SB_B),
                       pv("BH4", -43.5, 2.5, 0.08, 0.5, SB_B)],
    ("LiBH4-70LiNH2BH3", "11B"): [pv("BH4", -42.0, 2.2, 0.35, 0.5, SB_B), pv("BH3", -25.5, 4.5, 0.65, 0.4, SB_B)],
    ("LiBH4-70LiNBH", "11B"): [pv("BH4", -41.0, 2.5, 0.30, 0.5, SB_B), pv("N2BH", 23.6, 14.0, 0.45, 0.2, SB_B_WEAK),
                               pv("NBH3", -25.3, 5.0, 0.25, 0.4, SB_B)],
    ("LiBH4", "7Li"): [pv("Li", -1.0, 2.4, 1.0, 0.5, SB_LI)],
    ("LiNH2BH3", "7Li"): [pv("Li", 0.6, 3.0, 1.0, 0.5, SB_LI)],
    ("LiNBH", "7Li"): [pv("Li_narrow", 0.2, 3.5, 0.80, 0.5, SB_LI), pv("Li_broad", -0.8, 10.0, 0.20, 0.2, SB_LI)],
    ("LiBH4-70LiNH2BH3", "7Li"): [pv("Li", -0.5, 3.0, 1.0, 0.5, SB_LI)],
    ("LiBH4-70LiNBH", "7Li"): [pv("Li_narrow", -0.9, 1.2, 0.728, 0.6, SB_LI),
                               pv("Li_broad", -0.5, 8.0, 0.272, 0.3, SB_LI)],
    ("LiBH4", "1H"): [pv("BH4", 0.9, 3.43, 1.0, 0.4, SB_H)],
    ("LiNH2BH3", "1H"): [pv("NH2", 2.5, 3.0, 0.40, 0.4, SB_H), pv("BH3", 1.0, 3.5, 0.60, 0.4, SB_H)],
    ("LiNBH", "1H"): [pv("H", 1.2, 4.22, 1.0, 0.4, SB_H)],
    ("LiBH4-70LiNH2BH3", "1H"): [pv("NH2", 2.4, 3.0, 0.30, 0.4, SB_H), pv("BH", 0.9, 3.4, 0.70, 0.4, SB_H)],
    ("LiBH4-70LiNBH", "1H"): [pv("H", 1.0, 3.12, 1.0, 0.4, SB_H)],
}

JCAMP = [("LiBH4", "11B", "HZ"), ("LiNBH", "11B", "PPM"), ("LiBH4-70LiNBH", "7Li", "HZ")]
CSV = [("LiBH4-70LiNBH", "1H")]

NOTES = ("area_fraction counts each site's centre band plus all its spinning sidebands (fractions sum to 1); "
         "sidebands.relative_intensity gives each order's intensity relative to that site's centre band, "
         "at center_ppm + order * mas_rate_hz / sf_mhz. Lineshape: lmfit-style pseudo-Voigt (fraction_lorentz, "
         "both parts with the same FWHM). [N2BH]n (trigonal boron, CQ ~ 2.6 MHz, eta ~ 0.3) is simulated as a "
         "plain broad pseudo-Voigt, not a second-order quadrupolar lineshape. Bruker FIDs carry the digital "
         "filter (delayed by GRPDLY points; remove with nmrglue.bruker.rm_dig_filter), a zero-order phase "
         "error phase0_deg and a first-order error of phase1_points dwell times (360 deg per point across the "
         "window); SR = 0 (SF = BF1).")


def _truth(sample, nucleus, sf, mas, comps, **extra):
    return {"sample": sample, "nucleus": nucleus, "sf_mhz": sf, "mas_rate_hz": mas,
            "components": [{k: v for k, v in c.items() if k != "sidebands"} for c in comps],
            "sidebands": {"mas_rate_hz": mas, "spacing_ppm": mas / sf,
                          "relative_intensity": {c["name"]: {str(k): v for k, v in sorted(c["sidebands"].items())}
                                                 for c in comps}},
            "notes": NOTES, **extra}


def main() -> None:
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    rng = np.random.default_rng(SEED)
    truth: dict = {}
    for i, ((sample, nucleus), comps) in enumerate(STUDY.items()):
        assert abs(sum(c["area_fraction"] for c in comps) - 1) < 1e-9, (sample, nucleus)
        setup = dict(NUCLEI[nucleus])
        mas = MAS_OVERRIDE.get((sample, nucleus), setup.pop("mas_rate_hz"))
        setup.pop("mas_rate_hz", None)
        snr = float(np.round(rng.uniform(100, 300)))
        ph0 = float(np.round(rng.uniform(-40, 40), 1))
        ph1 = float(np.round(rng.uniform(-0.08, 0.08), 3))
        folder = f"{sample}_{nucleus}"
        info = write_bruker_experiment(
            OUT / folder / "1", comps, nucleus=nucleus, mas_rate_hz=mas, snr=snr, phase0_deg=ph0,
            phase1_points=ph1, sample=sample, seed=SEED + i, date=1_717_000_000 + 3600 * i,
            decim=80, dspfvs=21, grpdly=76.0, **setup)
        truth[folder] = _truth(sample, nucleus, info["sf_mhz"], mas, comps, format="bruker", path=f"{folder}/1",
                               sfo1_mhz=info["sfo1_mhz"], sw_hz=info["sw_hz"], td=info["td"],
                               grpdly=info["grpdly"], decim=80, dspfvs=21, snr=snr, phase0_deg=ph0,
                               phase1_points=ph1, seed=SEED + i)

    def spectrum(sample, nucleus, seed):
        s = NUCLEI[nucleus]
        mas = MAS_OVERRIDE.get((sample, nucleus), s["mas_rate_hz"])
        half = s["sw_hz"] / 2 / s["bf1_mhz"]
        ppm = s["carrier_ppm"] + np.linspace(half, -half, 4096, endpoint=False)
        comps = STUDY[(sample, nucleus)]
        y = spectrum_model(ppm, comps, sf_mhz=s["bf1_mhz"], mas_rate_hz=mas)
        snr = 200.0
        y = y + np.random.default_rng(seed).normal(0, y.max() / snr, y.size)
        return ppm, y, comps, mas, snr

    (OUT / "jcamp").mkdir()
    for j, (sample, nucleus, xu) in enumerate(JCAMP):
        ppm, y, comps, mas, snr = spectrum(sample, nucleus, SEED + 100 + j)
        sf = NUCLEI[nucleus]["bf1_mhz"]
        rel = f"jcamp/{sample}_{nucleus}.jdx"
        write_jcamp_spectrum(OUT / rel, ppm, y, title=sample, nucleus=nucleus, sf_mhz=sf, x_units=xu,
                             extra={"$MASR": mas})
        truth[rel] = _truth(sample, nucleus, sf, mas, comps, format="jcampdx", path=rel, x_units=xu, snr=snr,
                            npoints=int(ppm.size))
    (OUT / "csv").mkdir()
    for j, (sample, nucleus) in enumerate(CSV):
        ppm, y, comps, mas, snr = spectrum(sample, nucleus, SEED + 200 + j)
        sf = NUCLEI[nucleus]["bf1_mhz"]
        rel = f"csv/{sample}_{nucleus}.csv"
        write_csv_spectrum(OUT / rel, ppm, y, nucleus=nucleus, sf_mhz=sf, sample=sample)
        truth[rel] = _truth(sample, nucleus, sf, mas, comps, format="csv", path=rel, snr=snr, npoints=int(ppm.size))

    (OUT / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    total = sum(f.stat().st_size for f in OUT.rglob("*") if f.is_file())
    print(f"wrote {len(truth)} NMR data sets to {OUT} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
