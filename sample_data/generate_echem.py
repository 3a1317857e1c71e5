"""Generate the study's electrochemistry exports with known truth (deterministic; run from the repo root).

    .venv/bin/python sample_data/generate_echem.py

Writes sample_data/echem/ (pellets 1.00 ± 0.02 mm thick, 10 mm diameter: A = 0.785 ± 0.008 cm²):

* temperature series, 30-144 °C in 6 °C steps (20 spectra, 7 MHz-0.1 Hz, 10 points/decade, 0.5 %
  noise of |Z| on each part), blocking electrodes, circuit ``R0-p(R1,CPE1)-CPE2``:
  - ``LiBH4-70LiNBH_EIS_Tseries.mpt`` (EC-Lab, one loop per temperature, Temperature/°C column):
    σ(30 °C) = 2.2e-4 S/cm, Ea = 0.44 eV, no transition;
  - ``LiBH4_EIS_Tseries/`` (a Gamry .DTA per temperature, ``LiBH4_EIS_030C.DTA``...): σ(30 °C) =
    3.23e-8 S/cm, Ea 0.69 eV below the 110 °C transition, 8.83e-4 S/cm at 110 °C and Ea 0.53 eV above;
  - ``LiBH4-70LiNH2BH3_EIS_Tseries.csv`` (CSV, cycle + temperature columns): 3.3e-6 S/cm, 0.60 eV;
  - ``LiNBH_EIS_Tseries/`` (a ZView .z per temperature): 2.1e-8 S/cm, 0.80 eV;
* ``LiBH4-70LiNBH_EIS_30C_nova.txt``: one NOVA ASCII spectrum at 30 °C;
* ``LiBH4-70LiNBH_BV_30C/`` and ``_BV_60C/``: EC-Lab linked experiments (``_01_PEIS``, ``_02_CA``
  10 mV for 3 h, ``_03_PEIS``) of a Li|SE|Li cell, t+ = 0.9998 / 0.9991 (Bruce–Vincent by
  construction: ``I0 = dV/(R_el + R0)``, ``Iss = dV/(R_el/t+ + Rss)``; spectra with 0.1 % noise: the
  30 Ω interface arc next to the 580 Ω electrolyte needs it for t+ to +-0.001);
* ``LiBH4-70LiNBH_DC_blocking.DTA``: Gamry CHRONOA, stainless-steel electrodes, 0.5 V for 6 h,
  σ_e = 2.7e-8 S/cm;
* ``LiBH4-70LiNBH_CCD.mpt`` (GCPL, 0.5-7.5 mA/cm² in 0.5 steps, 0.25 h half-cycles, short at 7.5)
  and ``LiBH4_CCD.csv`` (0.5-3.5 mA/cm², short at 3.5);
* ``LiBH4-70LiNBH_cycling_4mAcm2.mpt``: 100 h at 4 mA/cm², 0.5 h half-cycles, overpotential 122 -> 128 mV;
* ``fullcell_EIS_cycles.mpt``: full-cell spectra over 10 cycles, ``Rs-p(Rct1,CPE1)-p(Rct2,CPE2)``;
* ``truth.json``; ``public/``: impedance.py's example files (MIT, see public/README.md).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from specproc.techniques.echem import synth

OUT = Path(__file__).resolve().parent / "echem"
L_CM, L_SE, A_CM2, A_SE = 0.1, 0.002, 0.785, 0.008
TEMPS = np.arange(30.0, 145.0, 6.0)
F = synth.frequencies(7e6, 0.1, 10)
CIRCUIT = "R0-p(R1,CPE1)-CPE2"
SAMPLES = {
    "LiBH4-70LiNBH": dict(sigma30=2.2e-4, Ea=0.44, split=0.6, Q1=5e-9, n1=0.8, seed=31),
    "LiBH4": dict(sigma30=3.23e-8, Ea=0.69, split=0.05, Q1=1.2e-11, n1=0.92, seed=32,
                  transition=dict(T_C=110.0, sigma_at=8.83e-4, Ea=0.53)),
    "LiBH4-70LiNH2BH3": dict(sigma30=3.3e-6, Ea=0.60, split=0.05, Q1=3e-11, n1=0.9, seed=33),
    "LiNBH": dict(sigma30=2.1e-8, Ea=0.80, split=0.05, Q1=1.5e-11, n1=0.9, seed=34),
}


def sigma_of(cfg, T):
    s = synth.conductivity(T, cfg["sigma30"], cfg["Ea"])
    tr = cfg.get("transition")
    if tr:
        hi = synth.conductivity(T, tr["sigma_at"], tr["Ea"], T_ref_C=tr["T_C"])
        s = np.where(np.asarray(T) >= tr["T_C"], hi, s)
    return s


def series(name, cfg):
    rng = np.random.default_rng(cfg["seed"])
    sig = sigma_of(cfg, TEMPS)
    r_el = L_CM / (sig * A_CM2)
    spectra, truth = [], []
    for T, r in zip(TEMPS, r_el):
        v = {"R0": cfg["split"] * r, "R1": (1 - cfg["split"]) * r, "CPE1_Q": cfg["Q1"], "CPE1_n": cfg["n1"],
             "CPE2_Q": 2e-6, "CPE2_n": 0.85}
        spectra.append((F, synth.impedance(CIRCUIT, v, F, 0.005, rng)))
        truth.append({"temperature_C": float(T), "sigma_S_cm": float(L_CM / (r * A_CM2)), "R_bulk_ohm": float(r),
                      "circuit": v})
    return spectra, truth


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    truth = {"geometry": {"thickness_cm": L_CM, "thickness_cm_stderr": L_SE, "area_cm2": A_CM2,
                          "area_cm2_stderr": A_SE}, "circuit": CIRCUIT, "noise": "0.5 % of |Z| on each part",
             "series": {}, "files": {}}
    for name, cfg in SAMPLES.items():
        spectra, tr = series(name, cfg)
        truth["series"][name] = {"Ea_eV": cfg["Ea"], "sigma_30C_S_cm": cfg["sigma30"], "spectra": tr,
                                 "transition": cfg.get("transition")}
        if name == "LiBH4-70LiNBH":
            p = synth.write_mpt_eis(OUT / f"{name}_EIS_Tseries.mpt", spectra, temperatures=TEMPS)
            synth.write_nova_eis(OUT / f"{name}_EIS_30C_nova.txt", *spectra[0])
            truth["files"][f"{name}_EIS_30C_nova.txt"] = tr[0]
        elif name == "LiBH4":
            d = OUT / f"{name}_EIS_Tseries"
            d.mkdir(exist_ok=True)
            for T, (f, z) in zip(TEMPS, spectra):
                synth.write_dta_eis(d / f"{name}_EIS_{int(T):03d}C.DTA", f, z)
            p = d
        elif name == "LiBH4-70LiNH2BH3":
            p = synth.write_csv_eis(OUT / f"{name}_EIS_Tseries.csv", spectra, temperatures=TEMPS,
                                    meta={"sample": name, "area_cm2": A_CM2})
        else:
            d = OUT / f"{name}_EIS_Tseries"
            d.mkdir(exist_ok=True)
            for T, (f, z) in zip(TEMPS, spectra):
                synth.write_z(d / f"{name}_EIS_{int(T):03d}C.z", f, z)
            p = d
        truth["files"][p.name] = {"sample": name, "kind": "eis_series"}
    bruce_vincent(truth)
    blocking(truth)
    cycling(truth)
    fullcell(truth)
    (OUT / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")


def bruce_vincent(truth):
    cfg = SAMPLES["LiBH4-70LiNBH"]
    circuit = "R0-p(R1,CPE1)-p(R2,CPE2)"
    for T, tplus, ri0, riss, seed in ((30.0, 0.9998, 30.0, 35.0, 41), (60.0, 0.9991, 12.0, 14.0, 42)):
        rng = np.random.default_rng(seed)
        r_el = float(L_CM / (sigma_of(cfg, T) * A_CM2))
        dv = 0.010
        i0, iss = dv / (r_el + ri0), dv / (r_el / tplus + riss)
        d = OUT / f"LiBH4-70LiNBH_BV_{int(T)}C"
        d.mkdir(exist_ok=True)
        for k, ri in ((1, ri0), (3, riss)):
            v = {"R0": 0.6 * r_el, "R1": 0.4 * r_el, "CPE1_Q": cfg["Q1"], "CPE1_n": cfg["n1"], "R2": ri,
                 "CPE2_Q": 3e-6, "CPE2_n": 0.9}
            z = synth.impedance(circuit, v, F, 0.001, rng)
            synth.write_mpt_eis(d / f"LiLi_{int(T)}C_0{k}_PEIS_C01.mpt", [(F, z)])
        t, E, I = synth.polarisation(dv, i0, iss, 1500.0, 3 * 3600.0, rng=rng)
        synth.write_mpt_time(d / f"LiLi_{int(T)}C_02_CA_C01.mpt", t, E, I, "Chronoamperometry / Chronocoulometry")
        truth["files"][d.name] = {"sample": "LiBH4-70LiNBH", "kind": "polarisation", "temperature_C": T,
                                  "transference_number": tplus, "delta_V": dv, "I0_A": i0, "Iss_A": iss,
                                  "R0_interface_ohm": ri0, "Rss_interface_ohm": riss, "R_bulk_ohm": r_el,
                                  "circuit": circuit}


def blocking(truth):
    rng = np.random.default_rng(51)
    sig_e, dv = 2.7e-8, 0.5
    iss = sig_e * A_CM2 * dv / L_CM
    t, E, I = synth.polarisation(dv, iss + 2e-6, iss, 1800.0, 6 * 3600.0, spike=0.0, noise=5e-5, rng=rng)
    synth.write_dta_time(OUT / "LiBH4-70LiNBH_DC_blocking.DTA", t, E, I, "CHRONOA")
    truth["files"]["LiBH4-70LiNBH_DC_blocking.DTA"] = {"sample": "LiBH4-70LiNBH", "kind": "polarisation",
                                                       "cell": "blocking", "electronic_conductivity_S_cm": sig_e,
                                                       "delta_V": dv, "Iss_A": iss}


def cycling(truth):
    levels = np.round(np.arange(0.5, 7.51, 0.5), 2)
    t, E, I = synth.cycling(levels, A_CM2, 31.25, 0.25, fail_level=7.5, rng=np.random.default_rng(61))
    synth.write_mpt_time(OUT / "LiBH4-70LiNBH_CCD.mpt", t, E, I, "Galvanostatic Cycling with Potential Limitation")
    truth["files"]["LiBH4-70LiNBH_CCD.mpt"] = {"sample": "LiBH4-70LiNBH", "kind": "galvanostatic",
                                               "ccd_mA_cm2": 7.5, "asr_ohm_cm2": 31.25, "levels": levels.tolist()}
    lv = np.round(np.arange(0.5, 3.51, 0.5), 2)
    t, E, I = synth.cycling(lv, A_CM2, 60.0, 0.25, fail_level=3.5, fail_mode="noisy", rng=np.random.default_rng(62))
    synth.write_csv_time(OUT / "LiBH4_CCD.csv", t, E, I, meta={"sample": "LiBH4", "control": "galvanostatic",
                                                               "area_cm2": A_CM2, "temperature_C": 120})
    truth["files"]["LiBH4_CCD.csv"] = {"sample": "LiBH4", "kind": "galvanostatic", "ccd_mA_cm2": 3.5,
                                       "asr_ohm_cm2": 60.0, "levels": lv.tolist(), "temperature_C": 120}
    drift = lambda th: (122.0 + 6.0 * th / 100.0) / 125.0    # noqa: E731  -> 122 -> 128 mV
    t, E, I = synth.cycling([4.0], A_CM2, 31.25, 0.5, cycles_per_level=100, dt_s=60.0, eta_drift=drift,
                            rng=np.random.default_rng(63))
    synth.write_mpt_time(OUT / "LiBH4-70LiNBH_cycling_4mAcm2.mpt", t, E, I,
                         "Galvanostatic Cycling with Potential Limitation")
    truth["files"]["LiBH4-70LiNBH_cycling_4mAcm2.mpt"] = {"sample": "LiBH4-70LiNBH", "kind": "galvanostatic",
                                                          "current_density_mA_cm2": 4.0, "duration_h": 100.0,
                                                          "overpotential_mV": 125.0}


def fullcell(truth):
    rng = np.random.default_rng(71)
    f = synth.frequencies(1e6, 0.01, 10)
    circuit = "Rs-p(Rct1,CPE1)-p(Rct2,CPE2)"
    spectra, tr = [], []
    for k in range(10):
        v = {"Rs": 20.0 + 0.5 * k, "Rct1": 50.0 + 3.0 * k, "CPE1_Q": 1e-6, "CPE1_n": 0.85, "Rct2": 100.0 + 8.0 * k,
             "CPE2_Q": 1e-3, "CPE2_n": 0.8}
        spectra.append((f, synth.impedance(circuit, v, f, 0.005, rng)))
        tr.append(v)
    synth.write_mpt_eis(OUT / "fullcell_EIS_cycles.mpt", spectra, area_cm2=1.0)
    truth["files"]["fullcell_EIS_cycles.mpt"] = {"sample": "full cell", "kind": "eis_series", "circuit": circuit,
                                                 "cycles": tr}


if __name__ == "__main__":
    main()
