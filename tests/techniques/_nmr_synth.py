"""Synthetic NMR spectra / FIDs with known truth for the NMR technique tests."""
import numpy as np

from specproc.core.measurement import new_measurement
from specproc.fitting.lineshapes import pseudo_voigt


def spectrum(peaks, *, noise=0.0, seed=0, x=None, mas=None, sf=128.38, nucleus="11B", sample="synth"):
    """peaks: (center_ppm, area, fwhm_ppm); pseudo-Voigt (fraction 0.5)."""
    x = np.linspace(20, -80, 1200) if x is None else x
    y = np.zeros_like(x)
    for c, a, w in peaks:
        y += pseudo_voigt(x, a, c, w / 2, 0.5)
    y = y + noise * np.random.default_rng(seed).standard_normal(x.size)
    return new_measurement(y, {"shift": (x, "ppm")}, technique="nmr", sample=sample, metadata={"nucleus": nucleus},
                           acquisition=dict(sf_mhz=sf, mas_rate_hz=mas))


def fid(peaks, *, sf=128.38, sw=50000.0, td=4096, grpdly=None, p0=0.0, noise=0.0, seed=0):
    """Complex FID exp(+2 pi i f t); peaks (ppm, area, fwhm_hz); optional digital-filter delay."""
    rng = np.random.default_rng(seed)
    t = np.arange(td) / sw
    y = np.zeros(td, complex)
    for ppm, area, fw in peaks:
        y += area * np.exp(2j * np.pi * ppm * sf * t - np.pi * fw * t)
    if grpdly:  # band-limited delay of grpdly points, what a linear-phase FIR filter does
        k = np.fft.fftfreq(td) * td
        y = np.fft.ifft(np.fft.fft(y) * np.exp(-2j * np.pi * grpdly * k / td))
    y = y * np.exp(1j * np.radians(p0)) + noise * (rng.standard_normal(td) + 1j * rng.standard_normal(td))
    acq = dict(sfo1_mhz=sf, sf_mhz=sf, bf1_mhz=sf, sw_hz=sw, td=2 * td, decim=16 if grpdly else None,
               dspfvs=20 if grpdly else None, grpdly=grpdly, mas_rate_hz=None)
    return new_measurement(y, {"time": (t, "s")}, technique="nmr", signal_type="fid", sample="fid",
                           metadata={"nucleus": "11B"}, acquisition=acq)


def mrsim_ct(iso_sym, sf, iso, cq, eta, rate, x, sigma, sidebands=128):
    """mrsimulator's CT spectrum (BlochDecayCTSpectrum, finite rate, ``sidebands`` sidebands) on ``x`` (ppm,
    descending), Gaussian-broadened by ``sigma`` ppm."""
    from mrsimulator import Simulator, Site, SpinSystem
    from mrsimulator.method.lib import BlochDecayCTSpectrum
    from mrsimulator.spin_system.isotope import Isotope
    from mrsimulator.spin_system.tensors import SymmetricTensor
    from scipy.ndimage import gaussian_filter1d

    n, dx = x.size, abs(x[1] - x[0])
    b0 = sf / abs(Isotope(symbol=iso_sym).gyromagnetic_ratio)
    site = Site(isotope=iso_sym, isotropic_chemical_shift=iso, quadrupolar=SymmetricTensor(Cq=cq * 1e6, eta=eta))
    meth = BlochDecayCTSpectrum(channels=[iso_sym], magnetic_flux_density=b0, rotor_frequency=rate,
                                spectral_dimensions=[{"count": n, "spectral_width": n * dx * sf,
                                                      "reference_offset": (x.max() + x.min()) / 2 * sf}])
    sim = Simulator(spin_systems=[SpinSystem(sites=[site])], methods=[meth])
    sim.config.integration_density = 70
    sim.config.number_of_sidebands = sidebands
    sim.run()
    ds = sim.methods[0].simulation
    ppm, y = ds.x[0].coordinates.value, np.real(ds.y[0].components[0])
    o = np.argsort(ppm)
    return np.interp(x[::-1], ppm[o], gaussian_filter1d(y[o], sigma / dx, mode="constant"))[::-1]
