"""Synthetic powder patterns with known truth (used by tests and ``sample_data/generate_xrd.py``).

A pattern is the sum over phases of their stick patterns (built-in references or
:class:`~specproc.techniques.xrd.references.Reference` objects, optionally with a modified cell
and per-reflection texture factors), each stick drawn as an area-normalised pseudo-Voigt at
Kα1 plus a Kα2 copy (position from Bragg's law with λ2/λ1, area × ratio), widths from a
Caglioti law plus Scherrer size broadening, on a polynomial background with an optional
amorphous hump, with Poisson counting noise.
"""
from __future__ import annotations

import numpy as np

from ..fitting.lineshapes import pseudo_voigt

CU_KA1_NM = 0.15405980
CU_KA2_NM = 0.15444260


def kalpha2_position(two_theta_deg, lambda1_nm, lambda2_nm):
    """2θ (deg) of the Kα2 line of a reflection seen at ``two_theta_deg`` with Kα1."""
    s = np.sin(np.radians(np.asarray(two_theta_deg) / 2)) * lambda2_nm / lambda1_nm
    return 2 * np.degrees(np.arcsin(np.clip(s, -1, 1)))


def phase_sticks(phase, wavelength_nm, two_theta_range, cell=None, texture=None):
    """Sticks of one phase with texture factors applied (``texture = {"011": 2.0}``)."""
    from ..techniques.xrd.references import Reference, builtin

    ref = phase if isinstance(phase, Reference) else builtin(phase)
    st = ref.sticks(wavelength_nm, two_theta_range, cell=cell)
    inten = st["intensity"].copy()
    for lab, f in (texture or {}).items():
        inten[np.array(st["label"]) == lab] *= f
    st["intensity"] = inten
    return ref, st


def synth_pattern(phases, two_theta=None, *, wavelength_nm=CU_KA1_NM, kalpha2_nm=CU_KA2_NM,
                  kalpha2_ratio=0.5, caglioti=(0.004, -0.002, 0.003), size_nm=None, eta=0.5,
                  background=(60.0, -0.4), hump=None, counts=5000.0, zero_shift_deg=0.0, seed=0,
                  noise=True):
    """Simulate a powder pattern.

    Parameters
    ----------
    phases : list of dict
        Each ``{"phase": name or Reference, "scale": float, "cell": {a, b, c} Å (optional),
        "texture": {hkl_label: factor} (optional)}``. ``scale`` multiplies the peak areas of the
        phase (strongest stick of a phase has area ``counts * scale * 0.1`` counts·deg).
    two_theta : array, optional
        Grid in deg (default 5–70° step 0.02°).
    caglioti : (U, V, W)
        Instrumental FWHM² = U tan²θ + V tanθ + W (deg²).
    size_nm : float, optional
        Crystallite size; adds Scherrer broadening K λ / (L cos θ) (K = 0.9) to the FWHM in quadrature.
    eta : float
        Pseudo-Voigt Lorentzian fraction.
    background : sequence
        Polynomial coefficients in (2θ/10°) powers (counts).
    hump : dict, optional
        Amorphous hump ``{"center": deg, "fwhm": deg, "area": counts·deg}`` (Gaussian).
    counts : float
        Overall scale of peak areas.
    zero_shift_deg : float
        Added to every peak position (instrument zero error).
    seed : int
        Seed of the Poisson noise (deterministic).

    Returns
    -------
    two_theta, y, truth : ndarray, ndarray, dict
        ``truth["phases"][i]["sticks"]`` lists the reflections used (2θ, d, area, fwhm).
    """
    x = np.arange(5.0, 70.0, 0.02) if two_theta is None else np.asarray(two_theta, float)
    y = sum(c * (x / 10.0) ** i for i, c in enumerate(background))
    if hump:
        s = hump["fwhm"] / 2.3548
        y = y + hump["area"] / (s * np.sqrt(2 * np.pi)) * np.exp(-0.5 * ((x - hump["center"]) / s) ** 2)
    truth = {"wavelength_nm": wavelength_nm, "kalpha2_nm": kalpha2_nm, "kalpha2_ratio": kalpha2_ratio,
             "caglioti": list(caglioti), "size_nm": size_nm, "phases": []}
    U, V, W = caglioti
    rng_lo, rng_hi = x.min() - 2, x.max() + 2
    for ph in phases:
        ref, st = phase_sticks(ph["phase"], wavelength_nm, (max(rng_lo, 1.0), min(rng_hi, 170.0)),
                               ph.get("cell"), ph.get("texture"))
        tt = st["two_theta"] + zero_shift_deg
        th = np.radians(st["two_theta"] / 2)
        f2 = np.clip(U * np.tan(th) ** 2 + V * np.tan(th) + W, 1e-6, None)
        if size_nm:
            beta = np.degrees(0.9 * wavelength_nm / (size_nm * np.cos(th)))
            f2 = f2 + beta ** 2
        fw = np.sqrt(f2)
        area = counts * ph.get("scale", 1.0) * 0.1 * st["intensity"] / 100.0
        for t, a, w in zip(tt, area, fw):
            y = y + pseudo_voigt(x, a, t, w / 2, eta)
            if kalpha2_ratio:
                t2 = kalpha2_position(t, wavelength_nm, kalpha2_nm)
                y = y + pseudo_voigt(x, a * kalpha2_ratio, t2, w / 2, eta)
        truth["phases"].append({
            "name": ref.name, "space_group": ref.space_group, "cell_angstrom": ref.full_cell(ph.get("cell")),
            "scale": ph.get("scale", 1.0), "texture": ph.get("texture") or {},
            "sticks": [{"hkl": lab, "two_theta_deg": float(t), "d_nm": float(d), "area": float(a), "fwhm_deg": float(w)}
                       for lab, t, d, a, w in zip(st["label"], tt, st["d_nm"], area, fw)]})
    if noise:
        rng = np.random.default_rng(seed)
        y = rng.poisson(np.clip(y, 0, None)).astype(float)
    return x, y, truth


def write_xrdml(path, two_theta, counts, *, wavelength_nm=CU_KA1_NM, kalpha2_nm=CU_KA2_NM, kalpha2_ratio=0.5,
                sample="sample", counting_time_s=1.0, use_list_positions=False, intensity_tag="counts"):
    """Write a minimal XRDML 1.5 file (start/end or listed 2θ positions)."""
    tt = np.asarray(two_theta, float)
    vals = " ".join(str(int(round(v))) for v in counts)
    if use_list_positions:
        pos = f"<listPositions>{' '.join(f'{v:.5f}' for v in tt)}</listPositions>"
    else:
        pos = f"<startPosition>{tt[0]:.5f}</startPosition><endPosition>{tt[-1]:.5f}</endPosition>"
    xml = f"""<?xml version="1.0" encoding="UTF-8"?>
<xrdMeasurements xmlns="http://www.xrdml.com/XRDMeasurement/1.5" status="Completed">
  <sample type="To be analyzed"><id>{sample}</id><name>{sample}</name></sample>
  <xrdMeasurement measurementType="Scan" status="Completed">
    <usedWavelength intended="K-Alpha 1">
      <kAlpha1 unit="Angstrom">{wavelength_nm * 10:.7f}</kAlpha1>
      <kAlpha2 unit="Angstrom">{kalpha2_nm * 10:.7f}</kAlpha2>
      <kBeta unit="Angstrom">1.3922500</kBeta>
      <ratioKAlpha2KAlpha1>{kalpha2_ratio:.4f}</ratioKAlpha2KAlpha1>
    </usedWavelength>
    <incidentBeamPath><xRayTube name="synthetic"><anodeMaterial>Cu</anodeMaterial></xRayTube></incidentBeamPath>
    <scan appendNumber="0" mode="Continuous" scanAxis="Gonio" status="Completed">
      <header><startTimeStamp>2024-01-01T00:00:00+00:00</startTimeStamp></header>
      <dataPoints>
        <positions axis="2Theta" unit="deg">{pos}</positions>
        <positions axis="Omega" unit="deg"><startPosition>{tt[0] / 2:.5f}</startPosition><endPosition>{tt[-1] / 2:.5f}</endPosition></positions>
        <commonCountingTime unit="seconds">{counting_time_s:.3f}</commonCountingTime>
        <{intensity_tag} unit="counts">{vals}</{intensity_tag}>
      </dataPoints>
    </scan>
  </xrdMeasurement>
</xrdMeasurements>
"""
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(xml)
    return path


def measurement(two_theta, counts, *, wavelength_nm=CU_KA1_NM, kalpha2_nm=CU_KA2_NM, kalpha2_ratio=0.5,
                sample="synthetic"):
    """An in-memory XRD measurement (no file) for tests."""
    from ..core.measurement import new_measurement

    return new_measurement(counts, [("two_theta", np.asarray(two_theta), "deg")], technique="xrd", units="counts",
                           signal_type="pattern", sample=sample,
                           acquisition={"wavelength_nm": wavelength_nm, "kalpha2_nm": kalpha2_nm,
                                        "kalpha2_ratio": kalpha2_ratio, "wavelength_source": "synthetic",
                                        "step_deg": float(np.median(np.diff(two_theta)))},
                           provenance={"source": f"synthetic:{sample}"})
