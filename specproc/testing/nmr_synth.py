"""Synthetic solid-state NMR data with known truth (shared by tests and ``sample_data/generate_nmr.py``).

* :func:`simulate_fid` - complex FID of pseudo-Voigt lines (+ MAS spinning sidebands) with noise.
* :func:`add_digital_filter_delay` - delay a FID by ``GRPDLY`` points the way Bruker's digital
  filter does, so :func:`nmrglue.bruker.rm_dig_filter` restores it.
* :func:`write_bruker_experiment` - a TopSpin-like experiment folder (acqus, int32 fid,
  pdata/1/procs + title) written with :mod:`nmrglue.bruker`.
* :func:`write_jcamp_spectrum` / :func:`write_csv_spectrum` - spectra as JCAMP-DX / CSV.

Conventions (match the specproc NMR readers and nmrglue): a line at offset ``f`` Hz from the
carrier is ``exp(+2j*pi*f*t)``; ``ppm = ((sfo1 - sf)*1e6 + f) / sf``; the spectrum
``fftshift(ifft(fid))`` (nmrglue's ``proc_base.fft``) has ppm decreasing with index.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Component", "simulate_fid", "add_digital_filter_delay", "spectrum_model", "write_bruker_experiment",
           "write_jcamp_spectrum", "write_csv_spectrum", "magnitude_spectrum", "site_fractions"]

#: Keys of a component mapping (see :func:`simulate_fid`).
Component = Mapping[str, Any]


def _sideband_weights(comp: Component) -> dict[int, float]:
    """Relative intensities {order: weight} of a site's centre band (order 0 = 1) and sidebands."""
    sb = {int(k): float(v) for k, v in (comp.get("sidebands") or {}).items() if int(k) != 0}
    return {0: 1.0, **sb}


def site_fractions(comp: Component) -> dict[int, float]:
    """Area of each band of a site: ``area_fraction`` split over centre band and sidebands."""
    w = _sideband_weights(comp)
    tot = sum(w.values())
    return {k: comp["area_fraction"] * v / tot for k, v in w.items()}


def _decay(t: np.ndarray, fwhm_hz: float, fraction_lorentz: float) -> np.ndarray:
    """Time-domain envelope of an area-normalised pseudo-Voigt of FWHM ``fwhm_hz`` (value 1 at t=0).

    Lorentzian FWHM G <-> exp(-pi G t); Gaussian FWHM G <-> exp(-(pi G t)^2 / (4 ln 2)).
    """
    lor = np.exp(-math.pi * fwhm_hz * t)
    gau = np.exp(-((math.pi * fwhm_hz * t) ** 2) / (4 * math.log(2)))
    return fraction_lorentz * lor + (1 - fraction_lorentz) * gau


def simulate_fid(
    components: Sequence[Component],
    *,
    sfo1_mhz: float,
    sf_mhz: float,
    sw_hz: float,
    n_complex: int,
    mas_rate_hz: float = 0.0,
    snr: float | None = 200.0,
    phase0_deg: float = 0.0,
    phase1_points: float = 0.0,
    seed: int | None = 0,
) -> np.ndarray:
    """Complex FID of pseudo-Voigt lines with MAS sidebands and white noise.

    Parameters
    ----------
    components : sequence of mappings
        Each with ``center_ppm``, ``fwhm_ppm``, ``area_fraction`` (site area incl. sidebands),
        ``fraction_lorentz`` (0 = Gaussian, 1 = Lorentzian) and optional ``sidebands``
        ``{order: intensity relative to the centre band}`` (order +-1, +-2...).
    sfo1_mhz, sf_mhz : float
        Transmitter and reference frequencies, MHz.
    sw_hz : float
        Spectral width (sampling rate), Hz.
    n_complex : int
        Number of complex points (TD / 2).
    mas_rate_hz : float
        Spinning rate, Hz; sideband ``k`` sits at ``center + k * mas_rate_hz``.
    snr : float or None
        Ratio of the tallest magnitude-spectrum point to the spectral noise RMS (per channel); None = no noise.
    phase0_deg : float
        Zero-order phase error, degrees.
    phase1_points : float
        First-order phase error expressed as a time shift in dwell points (``phase1 = 360 deg * points``
        across the window).
    seed : int or None
        Seed of :func:`numpy.random.default_rng` (deterministic output).

    Returns
    -------
    numpy.ndarray
        Complex FID, shape ``(n_complex,)``, without digital-filter delay.
    """
    t = (np.arange(n_complex) + phase1_points) / sw_hz
    fid = np.zeros(n_complex, dtype=np.complex128)
    for comp in components:
        fwhm_hz = comp["fwhm_ppm"] * sf_mhz
        env = _decay(np.abs(t), fwhm_hz, float(comp.get("fraction_lorentz", 0.5)))
        f0 = comp["center_ppm"] * sf_mhz - (sfo1_mhz - sf_mhz) * 1e6
        for order, area in site_fractions(comp).items():
            f = f0 + order * mas_rate_hz
            if abs(f) >= sw_hz / 2:
                raise ValueError(f"band at {f:.0f} Hz (order {order} of {comp.get('name')}) is outside "
                                 f"the spectral window +-{sw_hz / 2:.0f} Hz")
            fid += area * env * np.exp(2j * math.pi * f * t)
    fid *= np.exp(1j * math.radians(phase0_deg))
    if snr:
        rng = np.random.default_rng(seed)
        peak = np.max(np.abs(np.fft.fft(fid)))
        sigma = peak / (snr * math.sqrt(n_complex))  # spectral noise per channel = sigma*sqrt(N)
        fid += sigma * (rng.standard_normal(n_complex) + 1j * rng.standard_normal(n_complex))
    return fid


def add_digital_filter_delay(fid: np.ndarray, grpdly: float) -> np.ndarray:
    """Delay a FID by ``grpdly`` dwell points (band-limited, circular), as Bruker's digital filter does.

    The Bruker DSP's group delay shows as the FID starting ``GRPDLY`` points late;
    :func:`nmrglue.bruker.rm_dig_filter` undoes it by a circular frequency-domain shift, so the
    same circular shift (with a decayed FID the wrapped tail is ~0) is its exact inverse.
    """
    n = fid.shape[-1]
    nu = np.fft.fftfreq(n)  # cycles per point
    return np.fft.ifft(np.fft.fft(fid) * np.exp(-2j * math.pi * nu * grpdly))


def magnitude_spectrum(fid: np.ndarray, *, sfo1_mhz: float, sf_mhz: float, sw_hz: float,
                       zero_fill: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(ppm, |spectrum|) of a FID, ppm decreasing with index (no phasing, no apodisation).

    Uses nmrglue's FFT convention (``fftshift(ifft)``, as :func:`nmrglue.proc_base.fft`), for which
    point ``j`` is exactly at ``+SW/2 - j*SW/n`` from the carrier (``fftshift(fft)[::-1]`` would be
    one point off). Default zero filling: twice the next power of two.
    """
    n = zero_fill or 2 * 2 ** int(math.ceil(math.log2(fid.shape[-1])))
    spec = np.abs(np.fft.fftshift(np.fft.ifft(fid, n)))
    f = np.linspace(sw_hz / 2, -sw_hz / 2, n, endpoint=False)
    return ((sfo1_mhz - sf_mhz) * 1e6 + f) / sf_mhz, spec


def spectrum_model(ppm: np.ndarray, components: Sequence[Component], *, sf_mhz: float,
                   mas_rate_hz: float = 0.0) -> np.ndarray:
    """Noise-free, phased frequency-domain spectrum (area-normalised pseudo-Voigts, per ppm) on ``ppm``."""
    from ..fitting import lineshapes

    y = np.zeros_like(np.asarray(ppm, dtype=float))
    for comp in components:
        fr = float(comp.get("fraction_lorentz", 0.5))
        w = comp["fwhm_ppm"] / 2  # lmfit pseudo-Voigt: sigma = HWHM of both parts
        for order, area in site_fractions(comp).items():
            c = comp["center_ppm"] + order * mas_rate_hz / sf_mhz
            y += lineshapes.pseudo_voigt(ppm, amplitude=area, center=c, sigma=w, fraction=fr)
    return y


#: JCAMP core header of a TopSpin parameter file (nmrglue writes it back verbatim).
_CORE_HEADER = ("##TITLE= Parameter file, TOPSPIN\t\tVersion 3.2", "##JCAMPDX= 5.0", "##DATATYPE= Parameter Values",
                "##NPOINTS= 1", "##ORIGIN= Bruker BioSpin GmbH", "##OWNER= specproc-synth")


def _acqus(*, nucleus: str, sfo1_mhz: float, bf1_mhz: float, o1_hz: float, sw_hz: float, td: int,
           mas_rate_hz: float, ns: int, pulprog: str, decim: int, dspfvs: int, grpdly: float, date: int,
           title: str) -> dict:
    """A TopSpin-like acqus dictionary (the keys that matter for processing, plus common housekeeping)."""
    return {
        "_coreheader": list(_CORE_HEADER),
        "_comments": [f"$$ synthetic data written by specproc.testing.nmr_synth ({title})"],
        "AQ_mod": 3, "AQSEQ": 0, "BF1": bf1_mhz, "BF2": bf1_mhz, "BYTORDA": 0, "CNST": [1] * 64,
        "D": [0, 5] + [0] * 30, "DATE": int(date), "DE": 6.5, "DECIM": decim, "DIGMOD": 1, "DIGTYP": 12,
        "DQDMODE": 0, "DR": 22, "DS": 4, "DSPFIRM": 0, "DSPFVS": dspfvs, "DTYPA": 0, "EXP": title,
        "FnMODE": 0, "FQ1LIST": "freqlist", "GRPDLY": grpdly, "INSTRUM": "spect", "LOCNUC": "2H",
        "MASR": mas_rate_hz, "NC": 0, "NS": ns, "NUC1": nucleus, "NUC2": "off", "NUCLEUS": "off",
        "O1": o1_hz, "O2": 0.0, "P": [0, 2.5] + [0] * 30, "PARMODE": 0, "PL": [120] + [-6] * 63,
        "PROBHD": "4 mm MAS BB/1H", "PULPROG": pulprog, "RG": 64, "SFO1": sfo1_mhz, "SFO2": bf1_mhz,
        "SOLVENT": "None", "SW": sw_hz / sfo1_mhz, "SW_h": sw_hz, "TD": td, "TD0": 1, "TE": 298.0,
    }


def write_bruker_experiment(
    path: str | Path,
    components: Sequence[Component],
    *,
    nucleus: str,
    bf1_mhz: float,
    sw_hz: float,
    td: int,
    carrier_ppm: float = 0.0,
    mas_rate_hz: float = 0.0,
    snr: float | None = 200.0,
    phase0_deg: float = 0.0,
    phase1_points: float = 0.0,
    decim: int = 80,
    dspfvs: int = 21,
    grpdly: float = 76.0,
    ns: int = 64,
    pulprog: str = "onepulse",
    sample: str = "synthetic",
    date: int = 1_700_000_000,
    si: int | None = None,
    seed: int | None = 0,
    int_max: float = 2.0 ** 26,
) -> dict:
    """Write a TopSpin-like experiment folder ``path`` (acqus, acqu, int32 fid, pdata/1/procs, title).

    The reference frequency is ``SF = BF1`` (SR = 0), so ``ppm = ((SFO1 - BF1)*1e6 + f)/BF1``;
    ``SFO1 = BF1 * (1 + carrier_ppm*1e-6)`` and ``O1 = SFO1 - BF1`` in Hz. The FID carries the
    digital-filter group delay (``GRPDLY`` points), scaled to int32 (max ``int_max``).

    Parameters
    ----------
    path : str or Path
        Experiment folder to create (e.g. ``.../LiBH4_11B/1``); must not exist or be empty.
    components : sequence of mappings
        See :func:`simulate_fid`.
    nucleus : str
        ``NUC1`` label, e.g. ``"11B"``.
    bf1_mhz, sw_hz : float
        Basic frequency (MHz) and spectral width (Hz).
    td : int
        Number of real+imaginary values (even).
    carrier_ppm : float
        Transmitter position, ppm.
    grpdly, decim, dspfvs : float, int, int
        Digital filter parameters written to acqus; the FID is delayed by ``grpdly`` points.
    si : int, optional
        ``SI`` in procs (default: next power of two >= 2*TD/2).

    Returns
    -------
    dict
        ``{"sfo1_mhz", "bf1_mhz", "sf_mhz", "o1_hz", "sw_hz", "td", "grpdly", "fid"}`` where ``fid``
        is the noisy FID before the filter delay (for checks).
    """
    import nmrglue as ng

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if any(path.iterdir()):
        raise FileExistsError(f"{path} is not empty")
    sfo1 = bf1_mhz * (1 + carrier_ppm * 1e-6)
    o1 = (sfo1 - bf1_mhz) * 1e6
    n = td // 2
    fid = simulate_fid(components, sfo1_mhz=sfo1, sf_mhz=bf1_mhz, sw_hz=sw_hz, n_complex=n,
                       mas_rate_hz=mas_rate_hz, snr=snr, phase0_deg=phase0_deg, phase1_points=phase1_points,
                       seed=seed)
    raw = add_digital_filter_delay(fid, grpdly)
    scale = int_max / np.max(np.abs(np.concatenate([raw.real, raw.imag])))
    raw = np.round(raw.real * scale) + 1j * np.round(raw.imag * scale)
    si = si or 2 ** int(math.ceil(math.log2(2 * n)))
    acqus = _acqus(nucleus=nucleus, sfo1_mhz=sfo1, bf1_mhz=bf1_mhz, o1_hz=o1, sw_hz=sw_hz, td=td,
                   mas_rate_hz=mas_rate_hz, ns=ns, pulprog=pulprog, decim=decim, dspfvs=dspfvs,
                   grpdly=grpdly, date=date, title=sample)
    # procs: SF = BF1 (SR = 0); OFFSET = ppm of the first point of the processed spectrum
    offset = ((sfo1 - bf1_mhz) * 1e6 + sw_hz / 2) / bf1_mhz
    procs = {"_coreheader": list(_CORE_HEADER),
             "_comments": ["$$ synthetic"], "BYTORDP": 0, "DTYPP": 0, "FT_mod": 6, "LB": 0, "NC_proc": 0,
             "OFFSET": offset, "PHC0": 0, "PHC1": 0, "SF": bf1_mhz, "SI": si, "SR": 0.0, "SW_p": sw_hz,
             "WDW": 1, "AXNUC": nucleus, "MC2": 0, "PKNL": "yes"}
    dic = {"acqus": acqus, "procs": procs}
    ng.bruker.write(str(path), dic, raw.astype(np.complex128), bin_file="fid", overwrite=True, big=False,
                    isfloat=False, write_prog=False, write_acqus=True, write_procs=True, pdata_folder=1)
    (path / "pdata" / "1" / "title").write_text(f"{sample}\n{nucleus} MAS {mas_rate_hz / 1000:g} kHz (synthetic)\n")
    return {"sfo1_mhz": sfo1, "bf1_mhz": bf1_mhz, "sf_mhz": bf1_mhz, "o1_hz": o1, "sw_hz": sw_hz, "td": td,
            "grpdly": grpdly, "fid": fid}


def _fmt(v: float) -> str:
    return f"{v:.6g}"


def write_jcamp_spectrum(path: str | Path, ppm: np.ndarray, y: np.ndarray, *, title: str, nucleus: str,
                         sf_mhz: float, x_units: str = "HZ", extra: Mapping[str, Any] | None = None) -> None:
    """Write a JCAMP-DX 5.01 NMR SPECTRUM with ``##XYDATA=(X++(Y..Y))`` in AFFN form.

    Hand-written: neither nmrglue nor the ``jcamp`` package writes the NMR-specific labels
    (``.OBSERVE FREQUENCY``, ``.SHIFT REFERENCE``) in the (X++(Y..Y)) form TopSpin/MestReNova export.
    ``ppm`` must be evenly spaced; with ``x_units="HZ"`` x = ppm * sf_mhz and ``.SHIFT REFERENCE``
    gives the ppm of point 1.
    """
    ppm = np.asarray(ppm, float)
    y = np.asarray(y, float)
    x = ppm * sf_mhz if x_units.upper() == "HZ" else ppm
    yfactor = float(np.max(np.abs(y))) / 1e8 or 1.0
    yi = np.round(y / yfactor).astype(np.int64)
    dx = (x[-1] - x[0]) / (x.size - 1)
    lines = [f"##TITLE= {title}", "##JCAMP-DX= 5.01", "##DATA TYPE= NMR SPECTRUM", "##DATA CLASS= XYDATA",
             "##ORIGIN= specproc.testing.nmr_synth", "##OWNER= public domain (synthetic)",
             f"##.OBSERVE FREQUENCY= {sf_mhz:.8f}", f"##.OBSERVE NUCLEUS= ^{nucleus}",
             f"##.SHIFT REFERENCE= (INTERNAL, reference, 1, {ppm[0]:.8f})"]
    for k, v in (extra or {}).items():
        lines.append(f"##{k}= {v}")
    lines += [f"##XUNITS= {x_units.upper()}", "##YUNITS= ARBITRARY UNITS", "##XFACTOR= 1",
              f"##YFACTOR= {yfactor:.10g}", f"##FIRSTX= {x[0]:.8f}", f"##LASTX= {x[-1]:.8f}",
              f"##DELTAX= {dx:.10g}", f"##FIRSTY= {yi[0] * yfactor:.10g}", f"##NPOINTS= {x.size}",
              "##XYDATA= (X++(Y..Y))"]
    per = 8
    for i in range(0, x.size, per):
        lines.append(f"{x[0] + i * dx:.6f} " + " ".join(str(v) for v in yi[i:i + per]))
    lines.append("##END=")
    Path(path).write_text("\n".join(lines) + "\n")


def write_csv_spectrum(path: str | Path, ppm: np.ndarray, y: np.ndarray, *, nucleus: str, sf_mhz: float,
                       sample: str | None = None, x_units: str = "ppm") -> None:
    """Write a two-column CSV (``ppm,intensity`` or ``hz,intensity``) with ``# nucleus`` / ``# sf_mhz`` lines."""
    ppm = np.asarray(ppm, float)
    x = ppm * sf_mhz if x_units == "hz" else ppm
    head = [f"# nucleus: {nucleus}", f"# sf_mhz: {sf_mhz}"] + ([f"# sample: {sample}"] if sample else [])
    body = [f"{x_units},intensity"] + [f"{a:.6f},{b:.6g}" for a, b in zip(x, y)]
    Path(path).write_text("\n".join(head + body) + "\n")
