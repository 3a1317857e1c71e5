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
The line simulation itself is :mod:`specproc.testing.nmr_synth` (shared with the tests); the
trigonal [N2BH]n boron of LiNBH and LiBH4-70LiNBH is a second-order quadrupolar central-transition
(CT) site simulated here with mrsimulator (the program the ``quadrupolar`` model's library comes
from) at the files' field and **finite** MAS rate, so its CT spinning sidebands are physics, not
chosen numbers (the model is the infinite-speed CT with tied sideband copies: an honest mismatch).
"""
from __future__ import annotations

import functools
import json
import math
import shutil
import sys
from pathlib import Path
from unittest import mock

import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))  # run from a checkout without installing

from specproc.testing import nmr_synth  # noqa: E402
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


# Sideband patterns (relative to centre band): small-CQ 11B sites and 7Li satellites give a few orders
# (the quadrupolar N2BH site's CT sidebands come from its simulation);
# 1H at 25 kHz only weak +-1/+-2 from residual homonuclear dipolar coupling.
SB_B = {-2: 0.03, -1: 0.10, 1: 0.09, 2: 0.025}
SB_LI = {-3: 0.01, -2: 0.04, -1: 0.12, 1: 0.11, 2: 0.035, 3: 0.01}
SB_H = {-2: 0.01, -1: 0.05, 1: 0.05, 2: 0.01}


def quad(name, center, cq_mhz, eta, broadening_fwhm_ppm, frac):
    """Quadrupolar CT site: ``center_ppm`` is the isotropic shift; Gaussian broadening (FWHM, ppm)."""
    return {"name": name, "center_ppm": center, "cq_mhz": cq_mhz, "eta": eta,
            "broadening_fwhm_ppm": broadening_fwhm_ppm, "area_fraction": frac, "shape": "quadrupolar"}


#: [N2BH]n: trigonal (BN2H, sp2) boron, 11B delta_iso 29.5 ppm, CQ 2.6 MHz, eta 0.3 (BN3/N2BH-type sites:
#: delta_iso 25-31 ppm, CQ 2.5-3 MHz); 2.0 ppm Gaussian broadening (disorder). At 9.4 T its MAS line spans
#: ~0-29 ppm with its maximum ~6 ppm below delta_iso (second-order quadrupolar shift and shape, both ~ CQ^2/nu0):
#: maxima do not compare sites, delta_iso does.
N2BH = dict(center=29.5, cq_mhz=2.6, eta=0.3, broadening_fwhm_ppm=2.0)

STUDY = {
    ("LiBH4", "11B"): [pv("BH4", -44.3, 1.6, 1.0, 0.6, SB_B)],
    ("LiNH2BH3", "11B"): [pv("BH3", -25.5, 4.5, 1.0, 0.4, SB_B)],
    # [N2BH]n is trigonal boron: its MAS line is a second-order quadrupolar CT pattern (``quad``).
    ("LiNBH", "11B"): [quad("N2BH", frac=0.62, **N2BH), pv("NBH3", -25.3, 5.0, 0.30, 0.4, SB_B),
                       pv("BH4", -43.5, 2.5, 0.08, 0.5, SB_B)],
    ("LiBH4-70LiNH2BH3", "11B"): [pv("BH4", -42.0, 2.2, 0.35, 0.5, SB_B), pv("BH3", -25.5, 4.5, 0.65, 0.4, SB_B)],
    ("LiBH4-70LiNBH", "11B"): [pv("BH4", -41.0, 2.5, 0.30, 0.5, SB_B), quad("N2BH", frac=0.45, **N2BH),
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
         "both parts with the same FWHM). Components with shape 'quadrupolar' ([N2BH]n, trigonal boron) are "
         "11B (I = 3/2) second-order quadrupolar central-transition sites simulated with mrsimulator "
         "(BlochDecayCTSpectrum) at the file's field and finite MAS rate: center_ppm is the isotropic shift, "
         "cq_mhz, eta the quadrupolar tensor, broadening_fwhm_ppm a Gaussian convolution; max_ppm and fwhm_ppm "
         "are measured on the noise-free broadened centre band, and its CT sidebands (relative_intensity) are "
         "the simulation's (satellite transitions are not simulated). Bruker FIDs carry the digital "
         "filter (delayed by GRPDLY points; remove with nmrglue.bruker.rm_dig_filter), a zero-order phase "
         "error phase0_deg and a first-order error of phase1_points dwell times (360 deg per point across the "
         "window); SR = 0 (SF = BF1).")


# ------------------------------------------------------------------ quadrupolar CT sites (mrsimulator)
_FINE = 16  # simulation points per point of the FID's frequency grid (0.05 ppm for 11B here)


@functools.lru_cache(maxsize=8)
def _ct_sticks(center, cq_mhz, eta, sf_mhz, mas_rate_hz, sw_hz, carrier_ppm, n):
    """(ppm ascending and uniform, weight summing to 1) of one CT site, unbroadened, on a grid ``_FINE`` x
    finer than the FID's, spanning the spectral window: mrsimulator at the field whose 11B Larmor frequency
    is ``sf_mhz`` and at the finite spinning rate (CT sidebands included; intensity outside the window is
    dropped, as the receiver's filter would)."""
    from mrsimulator import Simulator, Site, SpinSystem
    from mrsimulator.method.lib import BlochDecayCTSpectrum
    from mrsimulator.spin_system.isotope import Isotope
    from mrsimulator.spin_system.tensors import SymmetricTensor

    site = Site(isotope="11B", isotropic_chemical_shift=center, quadrupolar=SymmetricTensor(Cq=cq_mhz * 1e6, eta=eta))

    def run(b0):
        method = BlochDecayCTSpectrum(channels=["11B"], magnetic_flux_density=b0, rotor_frequency=mas_rate_hz,
                                      spectral_dimensions=[{"count": n * _FINE, "spectral_width": sw_hz,
                                                            "reference_offset": carrier_ppm * sf_mhz}])
        sim = Simulator(spin_systems=[SpinSystem(sites=[site])], methods=[method])
        sim.config.integration_density = 120
        sim.config.number_of_sidebands = 64
        sim.run()
        return method, sim.methods[0].simulation

    # mrsimulator's Larmor frequency at B0 = sf / gamma is 0.02 % off sf (its internal gamma): one
    # run reads the effective Larmor frequency (the axis' origin offset) and the field is corrected
    b0 = sf_mhz / Isotope(symbol="11B").gyromagnetic_ratio
    _, ds = run(b0)
    method, ds = run(b0 * sf_mhz * 1e6 / float(ds.x[0].origin_offset.to("Hz").value))
    assert abs(float(ds.x[0].origin_offset.to("Hz").value) / (sf_mhz * 1e6) - 1) < 1e-9
    hz = np.asarray(method.spectral_dimensions[0].coordinates_Hz(), float)  # offsets from the Larmor frequency
    w = np.clip(np.real(np.asarray(ds.y[0].components[0])), 0, None)
    o = np.argsort(hz)
    return hz[o] / sf_mhz, w[o] / w.sum()


def _sticks(comp, sf_mhz, mas_rate_hz, setup):
    return _ct_sticks(comp["center_ppm"], comp["cq_mhz"], comp["eta"], sf_mhz, mas_rate_hz, setup["sw_hz"],
                      setup["carrier_ppm"], setup["td"] // 2)


def _gauss_sigma_ppm(comp):
    return comp["broadening_fwhm_ppm"] / (2 * math.sqrt(2 * math.log(2)))


def quad_fid(comp, t, *, sf_mhz, sfo1_mhz, mas_rate_hz, setup):
    """FID of a CT site (area ``area_fraction`` at t = 0), convention of :func:`nmr_synth.simulate_fid`:
    each stick at offset f contributes exp(2i pi f t), times the Gaussian broadening's decay.

    The sticks are uniform (f_j = f0 + j df), so the sum over them at all t is one FFT:
    sum_j w_j exp(2i pi (f0 + j df) t) = exp(2i pi f0 t) * sum_j [w_j exp(2i pi j df t0)] exp(2i pi j df k / sw)
    with t = t0 + k / sw, evaluated on a grid of 1 / df (>= the FID's length) points.
    """
    ppm, w = _sticks(comp, sf_mhz, mas_rate_hz, setup)
    f = ppm * sf_mhz - (sfo1_mhz - sf_mhz) * 1e6
    df = (f[-1] - f[0]) / (f.size - 1)
    sw = 1.0 / (t[1] - t[0])
    m = int(round(sw / df))
    assert m >= f.size and abs(m * df - sw) < 1e-6 * sw, (m, f.size, df, sw)
    a = np.zeros(m, complex)
    a[:f.size] = w * np.exp(2j * math.pi * np.arange(f.size) * df * t[0])
    k = np.arange(t.size)
    fid = np.exp(2j * math.pi * f[0] * t) * (m * np.fft.ifft(a))[k % m]
    s = _gauss_sigma_ppm(comp) * sf_mhz
    return comp["area_fraction"] * np.exp(-2 * (math.pi * s * t) ** 2) * fid


def quad_spectrum(comp, ppm_axis, *, sf_mhz, mas_rate_hz, setup):
    """Phased spectrum of a CT site on ``ppm_axis`` (area-normalised per ppm, like ``spectrum_model``):
    the sticks convolved with the Gaussian broadening on their fine grid, interpolated at the axis."""
    from scipy.ndimage import gaussian_filter1d

    ppm, w = _sticks(comp, sf_mhz, mas_rate_hz, setup)
    d = (ppm[-1] - ppm[0]) / (ppm.size - 1)
    dens = gaussian_filter1d(w / d, _gauss_sigma_ppm(comp) / d, mode="constant")
    return comp["area_fraction"] * np.interp(np.asarray(ppm_axis, float), ppm, dens, left=0.0, right=0.0)


def quad_truth(comp, *, sf_mhz, mas_rate_hz, setup):
    """Truth entry of a CT site: its parameters plus what is measured on the noise-free line (maximum,
    FWHM of the broadened centre band, CT sideband intensities relative to the centre band)."""
    step = mas_rate_hz / sf_mhz
    x = np.arange(comp["center_ppm"] + step / 2, comp["center_ppm"] - 1.5 * step, -0.002)
    y = quad_spectrum(comp, x, sf_mhz=sf_mhz, mas_rate_hz=mas_rate_hz, setup=setup)
    i = int(np.argmax(y))
    above = x[y >= y[i] / 2]
    ppm, w = _sticks(comp, sf_mhz, mas_rate_hz, setup)
    # a sideband of order k holds the sticks within half a spinning period of the centre band shifted by k
    order = np.round((ppm - x[i]) / step).astype(int)
    centre = w[order == 0].sum()
    sb = {int(k): round(float(w[order == k].sum() / centre), 5) for k in range(-3, 4) if k}
    return dict(comp, max_ppm=round(float(x[i]), 3), fwhm_ppm=round(float(above.max() - above.min()), 3),
                sidebands=sb)


def _simulate_fid_with_quad(components, *, sfo1_mhz, sf_mhz, sw_hz, n_complex, mas_rate_hz=0.0, snr=200.0,
                            phase0_deg=0.0, phase1_points=0.0, seed=0, setup=None):
    """:func:`nmr_synth.simulate_fid` plus quadrupolar CT sites; phase error and noise applied to the sum
    exactly as there (same seed stream, same SNR definition)."""
    lines = [c for c in components if c.get("shape") != "quadrupolar"]
    fid = _SIMULATE_FID(lines, sfo1_mhz=sfo1_mhz, sf_mhz=sf_mhz, sw_hz=sw_hz, n_complex=n_complex,
                        mas_rate_hz=mas_rate_hz, snr=None, phase0_deg=0.0, phase1_points=phase1_points, seed=seed)
    t = (np.arange(n_complex) + phase1_points) / sw_hz
    for c in components:
        if c.get("shape") == "quadrupolar":
            fid = fid + quad_fid(c, t, sf_mhz=sf_mhz, sfo1_mhz=sfo1_mhz, mas_rate_hz=mas_rate_hz, setup=setup)
    fid *= np.exp(1j * math.radians(phase0_deg))
    if snr:
        rng = np.random.default_rng(seed)
        peak = np.max(np.abs(np.fft.fft(fid)))
        sigma = peak / (snr * math.sqrt(n_complex))
        fid += sigma * (rng.standard_normal(n_complex) + 1j * rng.standard_normal(n_complex))
    return fid


_SIMULATE_FID = nmr_synth.simulate_fid


def _with_quad_truth(comps, sf_mhz, mas_rate_hz, setup):
    return [quad_truth(c, sf_mhz=sf_mhz, mas_rate_hz=mas_rate_hz, setup=setup) if c.get("shape") == "quadrupolar"
            else c for c in comps]


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
        quads = any(c.get("shape") == "quadrupolar" for c in comps)
        # write_bruker_experiment simulates pseudo-Voigt lines only: with a quadrupolar site, its FID
        # simulation is the same one plus the CT sites (see nmr_synth for a hook that would avoid the patch)
        sim = functools.partial(_simulate_fid_with_quad, setup=setup) if quads else _SIMULATE_FID
        with mock.patch.object(nmr_synth, "simulate_fid", sim):
            info = write_bruker_experiment(
                OUT / folder / "1", comps, nucleus=nucleus, mas_rate_hz=mas, snr=snr, phase0_deg=ph0,
                phase1_points=ph1, sample=sample, seed=SEED + i, date=1_717_000_000 + 3600 * i,
                decim=80, dspfvs=21, grpdly=76.0, **setup)
        comps = _with_quad_truth(comps, info["sf_mhz"], mas, setup)
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
        y = spectrum_model(ppm, [c for c in comps if c.get("shape") != "quadrupolar"], sf_mhz=s["bf1_mhz"],
                           mas_rate_hz=mas)
        for c in comps:
            if c.get("shape") == "quadrupolar":
                y = y + quad_spectrum(c, ppm, sf_mhz=s["bf1_mhz"], mas_rate_hz=mas, setup=s)
        snr = 200.0
        y = y + np.random.default_rng(seed).normal(0, y.max() / snr, y.size)
        return ppm, y, _with_quad_truth(comps, s["bf1_mhz"], mas, s), mas, snr

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
