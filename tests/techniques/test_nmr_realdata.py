"""Deconvolution on real instrument exports (../shared/realdata; skipped when absent).

The real 1H MAS spectrum (500 MHz, 5 kHz MAS, SNR ~3000) spins slowly over a 500 ppm window:
each site carries 16 sideband components tied by expressions. It once took minutes and stopped
unconverged at lmfit's evaluation limit; it must converge, on the right line.
"""
import numpy as np
import pytest

import specproc as sp


def test_real_1h_mas_given_peak_converges_on_the_line(realdata):
    m = sp.read(realdata / "nmr" / "topspin_1d_1H_MAS" / "1")
    fit = sp.nmr.deconvolve(m, peaks={"H": 0.8})
    assert fit.stats["success"]
    row = fit.table.iloc[0]
    # MANIFEST: tallest point of the spectrum at 0.808 ppm; the single-line fit of a
    # multi-component signal sits within its width of it
    assert abs(row["center_ppm"] - 0.808) < 0.5 * row["fwhm_ppm"]
    assert np.isfinite(row["center_ppm_stderr"]) and row["center_ppm_stderr"] > 0
    assert row["n_sidebands"] >= 4          # 5 kHz MAS = 10 ppm: many orders inside the window
    assert fit.meta["mas_rate_hz"] == 5000


def test_real_13c_cp_two_given_peaks(realdata):
    m = sp.read(realdata / "nmr" / "alginate_13C_CP" / "80")
    fit = sp.nmr.deconvolve(m, peaks={"C_ring": 70.2, "C_anomeric": 101.0})
    assert fit.stats["success"]
    t = fit.table.set_index("name")
    # MANIFEST: tallest peak 70.212 ppm (magnitude FFT). The ring-carbon band is several
    # overlapping lines (C2-C5, C6); one component sits within a quarter of its width of it
    assert abs(t.loc["C_ring", "center_ppm"] - 70.212) < 0.25 * t.loc["C_ring", "fwhm_ppm"]
    assert 95 < t.loc["C_anomeric", "center_ppm"] < 106          # C1 of uronic acids
    assert t.loc["C_ring", "area_fraction"] > t.loc["C_anomeric", "area_fraction"]
    assert fit.table["area_fraction"].sum() == pytest.approx(1.0, abs=1e-9)
    assert fit.stats["r2"] > 0.9


def test_real_pseudo2d_needs_a_row_and_fits_one(realdata):
    """The 29Si saturation-recovery series keeps both axes; deconvolve asks for a row and fits it."""
    from specproc.core.errors import ParameterError

    m = sp.read(realdata / "nmr" / "dnp_29Si_CP_satrec" / "100")
    assert m.dims == ("row", "time")
    with pytest.raises(ParameterError, match="--row"):
        sp.nmr.deconvolve(m, peaks=[-103.0])
    fit = sp.nmr.deconvolve(m, peaks=[-103.0], row=8)
    row = fit.table.iloc[0]
    # MANIFEST: tallest point of the last row's magnitude spectrum at -103.469 ppm
    assert abs(row["center_ppm"] + 103.469) < row["fwhm_ppm"]
    assert fit.stats["r2"] > 0.9
