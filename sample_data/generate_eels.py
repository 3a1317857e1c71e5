"""Generate the study's B K-edge EELS data with known truth (deterministic; run from the repo root).

    .venv/bin/python sample_data/generate_eels.py

Writes sample_data/eels/:

* ``LiBH4_BK.msa`` / ``.hspy`` and ``LiBH4-70LiNBH_BK.msa`` / ``.hspy``: calibrated core-loss spectra
  (π* 188.6 and 187.9 eV), 0.1 eV/channel, 150-252.3 eV, 200 keV, beam/angles in the metadata;
* ``LiBH4-70LiNBH_BK_drift.msa`` + ``LiBH4-70LiNBH_lowloss.msa``: the same area with plural
  scattering (t/λ = 0.4) and an energy drift of +0.40 eV seen by both spectra (zero-loss peak at
  +0.40 eV): zero-loss alignment must recover 187.9 eV;
* ``SI_LiBH4-70LiNBH_16x16.hspy``: 16 x 16 spectrum image (2 nm pixels) whose π* moves linearly
  along x from 188.6 eV (LiBH4 side) to 187.9 eV (interface);
* ``truth.json``.

Synthesis: :mod:`specproc.testing.eels_synth` (power-law background, Gaussian π*, decaying erf
continuum step, broad σ* Gaussian, Poisson noise).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from specproc.testing.eels_synth import core_loss, low_loss, noisy, plural

OUT = Path(__file__).resolve().parent / "eels"
E = np.round(150.0 + 0.1 * np.arange(1024), 6)
ELL = np.round(-10.0 + 0.1 * np.arange(1024), 6)
ACQ = dict(beam_energy=200.0, convergence_angle=10.0, collection_angle=20.0)
SAMPLES = {"LiBH4": dict(pi_center=188.6, seed=21), "LiBH4-70LiNBH": dict(pi_center=187.9, seed=22)}
COMMON = dict(pi_fwhm=1.1, pi_height=6000.0, step_height=4000.0, ss_height=5000.0, ss_fwhm=9.0, bg_at=2.0e4, r=3.6)
DRIFT = 0.40


def signal(y, axis, title, lazy_nav=None):
    import exspy  # noqa: F401  (registers the EELS signal type)
    import hyperspy.api as hs

    s = hs.signals.Signal1D(y)
    s.set_signal_type("EELS")
    ax = s.axes_manager.signal_axes[0]
    ax.name, ax.units, ax.offset, ax.scale = "Energy loss", "eV", float(axis[0]), float(axis[1] - axis[0])
    s.metadata.General.title = title
    s.set_microscope_parameters(**ACQ)
    if lazy_nav:
        for a, name in zip(s.axes_manager.navigation_axes, ("x", "y")):
            a.name, a.units, a.scale = name, "nm", lazy_nav
    return s


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    truth = {"energy_axis_eV": [float(E[0]), float(E[-1]), 0.1], "acquisition": ACQ, "samples": {}}
    for name, cfg in SAMPLES.items():
        rng = np.random.default_rng(cfg["seed"])
        ss_center = cfg["pi_center"] + 11.0
        y, _ = core_loss(E, pi_center=cfg["pi_center"], ss_center=ss_center, **COMMON)
        s = signal(noisy(y, rng), E, name)
        s.save(OUT / f"{name}_BK.hspy", overwrite=True)
        s.save(OUT / f"{name}_BK.msa", overwrite=True)
        truth["samples"][name] = {"files": [f"{name}_BK.msa", f"{name}_BK.hspy"], "pi_star_energy_eV": cfg["pi_center"],
                                  "pi_star_fwhm_eV": COMMON["pi_fwhm"], "sigma_star_energy_eV": ss_center}
    # plural scattering + energy drift seen by the low loss too
    rng = np.random.default_rng(23)
    c = SAMPLES["LiBH4-70LiNBH"]["pi_center"]
    ll = low_loss(ELL, zlp_center=DRIFT, t_over_lambda=0.4, i0=2e7)
    ll_true = low_loss(ELL, zlp_center=0.0, t_over_lambda=0.4, i0=2e7)
    ext = np.round(E[0] - 0.1 * np.arange(600, 0, -1), 6)  # plasmon replicas need 60 eV of spectrum below
    Eext = np.concatenate([ext, E])
    y, _ = core_loss(Eext - DRIFT, pi_center=c, ss_center=c + 11.0, **COMMON)  # axis reads E, truth is E - drift
    y = plural(y, ll_true)[ext.size:]
    signal(noisy(y, rng), E, "LiBH4-70LiNBH").save(OUT / "LiBH4-70LiNBH_BK_drift.msa", overwrite=True)
    signal(noisy(ll, rng), ELL, "LiBH4-70LiNBH low loss").save(OUT / "LiBH4-70LiNBH_lowloss.msa", overwrite=True)
    truth["drift_pair"] = {"core_loss": "LiBH4-70LiNBH_BK_drift.msa", "low_loss": "LiBH4-70LiNBH_lowloss.msa",
                           "drift_eV": DRIFT, "t_over_lambda": 0.4, "pi_star_energy_eV": c,
                           "pi_star_energy_without_alignment_eV": c + DRIFT}
    # spectrum image with a π* gradient along x
    ny, nx = 16, 16
    rng = np.random.default_rng(24)
    centers = np.linspace(188.6, 187.9, nx)
    Y = np.empty((ny, nx, E.size))
    pix = dict(COMMON, pi_height=1500.0, step_height=1000.0, ss_height=1250.0, bg_at=5.0e3)
    for j, cj in enumerate(centers):
        y, _ = core_loss(E, pi_center=cj, ss_center=cj + 11.0, **pix)
        for i in range(ny):
            Y[i, j] = noisy(y, rng)
    signal(Y, E, "LiBH4-70LiNBH", lazy_nav=2.0).save(OUT / "SI_LiBH4-70LiNBH_16x16.hspy", overwrite=True)
    truth["spectrum_image"] = {"file": "SI_LiBH4-70LiNBH_16x16.hspy", "shape": [ny, nx], "pixel_nm": 2.0,
                               "pi_star_energy_eV_by_x": [round(float(v), 6) for v in centers],
                               "pi_star_energy_eV_median": float(np.median(centers))}
    (OUT / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
