"""EELS near-edge fits: recovery from random truths (spectra and maps), error sizes, edge cases, bad input.

Synthetic spectra come from :mod:`specproc.testing.eels_synth` (erf continuum step that decays,
Poisson noise) — physics that is *not* the fitting model — with random truths, not the study's values.
"""
from __future__ import annotations

import numpy as np
import pytest

import specproc as sp
from specproc.core.errors import ParameterError, ProcessingError
from specproc.core.measurement import new_measurement
from specproc.testing.contract import ProcessorContract
from specproc.testing.eels_synth import core_loss, noisy, random_truth

E = np.round(150.0 + 0.1 * np.arange(1024), 6)


def spectrum(y, sample="synthetic", E=E):
    return new_measurement(y, {"energy": (E, "eV")}, technique="eels", units="counts", sample=sample,
                           acquisition={"beam_energy_keV": 200.0})


def image(Y, E=E):
    ny, nx = Y.shape[:2]
    return new_measurement(Y, {"y": (np.arange(ny) * 2.0, "nm"), "x": (np.arange(nx) * 2.0, "nm"),
                               "energy": (E, "eV")}, technique="eels", units="counts", sample="map",
                           signal_type="spectrum_image")


class TestFitEdgeContract(ProcessorContract):
    processor = "eels.fit_edge"
    params = {"edge": "B K"}

    def make_input(self):
        rng = np.random.default_rng(5)
        y, _ = core_loss(E, **random_truth(rng, 3000.0))
        return spectrum(noisy(y, rng))


@pytest.mark.parametrize("seed", range(6))
def test_random_truth_spectrum_recovery(seed):
    """π* within 0.05 eV at realistic counts (2000-8000 background counts/channel), within 4 stderr."""
    rng = np.random.default_rng(100 + seed)
    t = random_truth(rng, counts=rng.uniform(2000, 8000))
    y, _ = core_loss(E, **t)
    r = sp.eels.fit_edge(spectrum(noisy(y, rng)), edge="B K")
    q = r.quantities["pi_star.energy_eV"]
    assert not r.warnings, r.warnings
    assert q.stderr is not None and 0 < q.stderr < 0.05
    assert abs(q.value - t["pi_center"]) < 0.05
    assert abs(q.value - t["pi_center"]) < 4 * q.stderr + 0.01  # + model mismatch (erf vs spline step)
    assert r.quantities["pi_star.fwhm_eV"].value == pytest.approx(t["pi_fwhm"], abs=0.15)
    assert r.quantities["edge.onset_eV"].value == pytest.approx(t["pi_center"] - t["pi_fwhm"] / 2, abs=0.1)
    assert r.quantities["background.r"].value == pytest.approx(t["r"], abs=0.1)
    assert r.quantities["pi_sigma_ratio"].stderr > 0


def test_errors_have_the_right_size():
    """Scatter of π* over 48 noise realisations of one random truth vs the reported standard errors."""
    rng = np.random.default_rng(7)
    t = random_truth(rng, counts=1500.0)
    y, _ = core_loss(E, **t)
    Y = np.stack([noisy(y, rng) for _ in range(48)]).reshape(6, 8, -1)
    r = sp.eels.fit_edge(image(Y))
    e = r.data.pi_star_energy_eV.values.ravel()
    se = r.data.pi_star_energy_eV_stderr.values.ravel()
    assert np.isfinite(e).all()
    ratio = np.std(e, ddof=1) / np.median(se)
    assert 0.7 < ratio < 1.45, ratio
    assert abs(np.mean(e) - t["pi_center"]) < 0.02


def test_map_recovery_random_gradient():
    """A random π* gradient over a 12 x 10 map: median |error| < 0.05 eV, pixels within 5 stderr."""
    rng = np.random.default_rng(11)
    base = random_truth(rng, counts=1500.0)
    c0, dc = base["pi_center"], rng.uniform(-1.0, 1.0)
    ny, nx = 12, 10
    truth = c0 + dc * np.linspace(0, 1, nx)[None, :] + 0 * np.arange(ny)[:, None]
    Y = np.empty((ny, nx, E.size))
    for j in range(nx):
        y, _ = core_loss(E, **{**base, "pi_center": truth[0, j], "ss_center": base["ss_center"] + truth[0, j] - c0})
        for i in range(ny):
            Y[i, j] = noisy(y, rng)
    r = sp.eels.fit_edge(image(Y))
    d = r.data
    err = d.pi_star_energy_eV.values - truth
    assert int(d.failed.sum()) == 0
    assert np.median(np.abs(err)) < 0.05
    assert np.all(np.abs(err) < 5 * d.pi_star_energy_eV_stderr.values + 0.01)
    assert d.pi_star_energy_eV.dims == ("y", "x") and d.x.attrs.get("units") == "nm"
    assert r.meta["map_summary"]["n_valid"] == ny * nx
    kinds = [p["kind"] for p in r.plots]
    assert kinds.count("map") == 4 and "histogram" in kinds
    assert all(p["x_label"] == "x (nm)" for p in r.plots if p["kind"] == "map")


def test_no_edge_and_negative_counts_are_reported_not_fitted():
    rng = np.random.default_rng(3)
    bg = 3000.0 * (E / 180.0) ** -3.0
    r = sp.eels.fit_edge(spectrum(noisy(bg, rng)))
    assert "pi_star.energy_eV" not in r.quantities
    assert any("no B K edge" in w for w in r.warnings) and r.stats["status"] == "no_edge"
    dark = rng.normal(0.0, 30.0, E.size)  # dark-subtracted noise
    r = sp.eels.fit_edge(spectrum(dark))
    assert "pi_star.energy_eV" not in r.quantities
    assert any("negative counts" in w for w in r.warnings)
    # in a map: masked pixels, the others fitted
    t = random_truth(rng, 2000.0)
    y, _ = core_loss(E, **t)
    Y = np.stack([noisy(y, rng) for _ in range(6)]).reshape(2, 3, -1)
    Y[0, 0] = noisy(bg, rng)
    Y[1, 2] = rng.normal(0.0, 30.0, E.size)
    r = sp.eels.fit_edge(image(Y))
    d = r.data
    assert bool(d.mask_no_edge[0, 0]) and bool(d.mask_negative_counts[1, 2])
    assert int(d.failed.sum()) == 2 and np.isnan(d.pi_star_energy_eV[0, 0])
    assert np.isfinite(d.pi_star_energy_eV.values).sum() == 4
    assert any("2 of 6 pixels failed" in w for w in r.warnings)


def test_missing_pi_star_is_at_bound_without_error_bar():
    """An edge without a π* resonance: π* reported with no standard error and a warning."""
    rng = np.random.default_rng(9)
    t = random_truth(rng, 4000.0)
    t["pi_height"] = 0.0
    y, _ = core_loss(E, **t)
    r = sp.eels.fit_edge(spectrum(noisy(y, rng)))
    q = r.quantities.get("pi_star.energy_eV")
    assert q is None or q.stderr is None or r.warnings
    assert any("π*" in w for w in r.warnings)


def test_sample_data_truth():
    import json
    from pathlib import Path

    d = Path(__file__).resolve().parents[2] / "sample_data" / "eels"
    truth = json.loads((d / "truth.json").read_text())
    for name, t in truth["samples"].items():
        for f in t["files"]:
            r = sp.eels.fit_edge(sp.read(d / f))
            assert r.quantities["pi_star.energy_eV"].value == pytest.approx(t["pi_star_energy_eV"], abs=0.03)
    dp = truth["drift_pair"]
    m = sp.read(d / dp["core_loss"])
    raw = sp.eels.fit_edge(m)
    assert raw.quantities["pi_star.energy_eV"].value == pytest.approx(dp["pi_star_energy_without_alignment_eV"],
                                                                      abs=0.1)
    assert raw.meta["energy_calibration"]["method"].startswith("stated offset")
    al = sp.eels.fit_edge(m, lowloss=str(d / dp["low_loss"]))
    assert al.meta["energy_calibration"]["zlp_centre_eV"] == pytest.approx(dp["drift_eV"], abs=0.01)
    assert al.meta["deconvolved"] is True
    assert al.quantities["pi_star.energy_eV"].value == pytest.approx(dp["pi_star_energy_eV"], abs=0.05)
    si = truth["spectrum_image"]
    r = sp.eels.fit_edge(sp.read(d / si["file"]))
    e = r.data.pi_star_energy_eV.values
    assert np.median(np.abs(e - np.asarray(si["pi_star_energy_eV_by_x"])[None, :])) < 0.05


def test_windows_and_background_alternatives():
    rng = np.random.default_rng(21)
    t = random_truth(rng, 5000.0)
    y, _ = core_loss(E, **t)
    m = spectrum(noisy(y, rng))
    r = sp.eels.fit_edge(m, background_window=(165, 180))
    assert r.meta["background_window_eV"] == [165.0, 180.0]
    assert r.quantities["pi_star.energy_eV"].value == pytest.approx(t["pi_center"], abs=0.05)
    r2 = sp.eels.fit_edge(m, background="polynomial", poly_degree=1, background_window=(172, 181),
                          region=(172, 215))
    assert r2.meta["background_model"] == "polynomial"
    assert r2.quantities["pi_star.energy_eV"].value == pytest.approx(t["pi_center"], abs=0.05)
    r3 = sp.eels.fit_edge(m, background="exponential")
    assert r3.quantities["pi_star.energy_eV"].value == pytest.approx(t["pi_center"], abs=0.05)
    # a quadratic extrapolated 20 eV from a 9 eV window is too uncertain to claim an edge: said so
    r4 = sp.eels.fit_edge(m, background="polynomial", poly_degree=2, background_window=(172, 181))
    assert "pi_star.energy_eV" in r4.quantities or any("no B K edge" in w for w in r4.warnings)


def test_bad_input():
    rng = np.random.default_rng(1)
    t = random_truth(rng, 3000.0)
    y, _ = core_loss(E, **t)
    m = spectrum(noisy(y, rng))
    with pytest.raises(ParameterError, match="π\\* fitting is available"):
        sp.eels.fit_edge(m, edge="Ti L3")
    with pytest.raises(ParameterError, match="Xx K"):
        sp.eels.fit_edge(m, edge="Xx K")
    with pytest.raises(ParameterError, match="must end below"):
        sp.eels.fit_edge(m, background_window=(170, 190))
    with pytest.raises(ParameterError, match="unknown|Extra inputs|extra"):
        sp.eels.fit_edge(m, windw=(1, 2))
    with pytest.raises(ProcessingError, match="does not cover"):
        sp.eels.fit_edge(spectrum(y[:300], E=E[:300]))
    nmr = new_measurement(np.ones(10), {"shift": (np.arange(10.0), "ppm")}, technique="nmr")
    with pytest.raises(ParameterError, match="nmr measurement"):
        sp.eels.fit_edge(nmr)
    with pytest.raises(Exception, match="not found"):
        sp.eels.fit_edge(m, lowloss="/nonexistent/lowloss.msa")
    ll = spectrum(rng.normal(100, 1, E.size))  # a core-loss range given as low loss
    with pytest.raises(ProcessingError, match="zero.loss"):
        sp.eels.fit_edge(m, lowloss=ll)
    Ell = np.round(-10 + 0.1 * np.arange(300), 6)
    flat = spectrum(rng.normal(100, 1, Ell.size), E=Ell)  # no zero-loss peak near 0 eV
    with pytest.raises(ProcessingError, match="no zero-loss peak"):
        sp.eels.fit_edge(m, lowloss=flat)


def test_compare_helper():
    rng = np.random.default_rng(4)
    out = []
    for c in (188.6, 187.9):
        y, _ = core_loss(E, **{**random_truth(rng, 5000.0), "pi_center": c, "ss_center": c + 11})
        out.append(sp.eels.fit_edge(spectrum(noisy(y, rng))))
    cmp = sp.eels.compare(out[0], out[1])   # reference first: sample - reference
    assert cmp.value == pytest.approx(-0.7, abs=0.05) and cmp.stderr is not None and cmp.stderr < 0.03


def test_real_sto_o_k_is_not_silently_fitted(realdata):
    """SrTiO3 O K (MANIFEST: O K net max 529.75 eV) has more structure than the π*/σ* recipe: the fit
    must say so (poor-fit warning, no standard errors), not report a confident π*."""
    p = realdata / "eels" / "EELS_STO.dm3"
    if not p.exists():
        pytest.skip("EELS_STO.dm3 not available")
    m = sp.read(p)
    with pytest.raises(ProcessingError, match="does not cover the B K"):
        sp.eels.fit_edge(m)
    r = sp.eels.fit_edge(m, edge="O K", background_window=(500, 525))
    assert any("poor fit" in w for w in r.warnings)
    assert all(q.stderr is None for k, q in r.quantities.items() if k.startswith(("pi_star", "sigma_star")))


def test_real_si_dm4_map_runs_and_reports(realdata):
    """The 2x2 DM4 spectrum image (Si K at 1839 eV, no B K edge in range) fails cleanly."""
    p = realdata / "eels" / "EELS_SI.dm4"
    if not p.exists():
        pytest.skip("EELS_SI.dm4 not available")
    with pytest.raises(ProcessingError, match="does not cover"):
        sp.eels.fit_edge(sp.read(p))


def test_line_scan_profile():
    rng = np.random.default_rng(31)
    t = random_truth(rng, 3000.0)
    y, _ = core_loss(E, **t)
    m = new_measurement(np.stack([noisy(y, rng) for _ in range(5)]), {"x": (np.arange(5.0), "nm"), "energy": (E, "eV")},
                        technique="eels", units="counts")
    r = sp.eels.fit_edge(m)
    assert r.data.pi_star_energy_eV.dims == ("x",)
    assert np.all(np.abs(r.data.pi_star_energy_eV.values - t["pi_center"]) < 0.05)
    assert [p["kind"] for p in r.plots] == ["xy", "histogram"]


def test_spectrum_image_aligned_pixel_by_pixel_with_lowloss_image():
    """Dual-EELS-like image: random per-pixel energy drifts (±0.4 eV) seen by core and low loss;
    per-pixel zero-loss alignment (exspy) + Fourier-ratio deconvolution recover π* within 0.06 eV."""
    from specproc.testing.eels_synth import low_loss, plural

    rng = np.random.default_rng(5)
    Ell = np.round(-10 + 0.1 * np.arange(1024), 6)
    ext = np.round(E[0] - 0.1 * np.arange(600, 0, -1), 6)
    Eext = np.concatenate([ext, E])
    t = random_truth(rng, 3000.0)
    ny, nx = 3, 4
    drift = rng.uniform(-0.4, 0.4, (ny, nx))
    Y, L = np.empty((ny, nx, E.size)), np.empty((ny, nx, Ell.size))
    ll0 = low_loss(Ell, t_over_lambda=0.3, i0=2e7)
    for i in range(ny):
        for j in range(nx):
            y, _ = core_loss(Eext - drift[i, j], **t)
            Y[i, j] = noisy(plural(y, ll0)[ext.size:], rng)
            L[i, j] = noisy(low_loss(Ell, zlp_center=drift[i, j], t_over_lambda=0.3, i0=2e7), rng)
    raw = sp.eels.fit_edge(image(Y))
    assert np.max(np.abs(raw.data.pi_star_energy_eV.values - t["pi_center"])) > 0.2  # the drifts are visible
    low = new_measurement(L, {"y": (np.arange(ny) * 2.0, "nm"), "x": (np.arange(nx) * 2.0, "nm"),
                              "energy": (Ell, "eV")}, technique="eels", units="counts")
    r = sp.eels.fit_edge(image(Y), lowloss=low)
    assert r.meta["energy_calibration"]["method"].startswith("zero-loss alignment per pixel")
    assert r.meta["energy_calibration"]["pixel_zlp_sd_eV"] > 0.1
    assert np.max(np.abs(r.data.pi_star_energy_eV.values - t["pi_center"])) < 0.06


def test_start_medians_of_unfitted_rows_are_quiet():
    """The fit's start medians skip the all-NaN starts of unfitted spectra (NaN when none), with no
    RuntimeWarning (np.nanmedian's, whose silencing needed the not thread-safe catch_warnings)."""
    import warnings

    from specproc.techniques.eels.fit import _finite_median

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _finite_median(np.array([np.nan, 2.0, 4.0, 9.0])) == 4.0
        assert np.isnan(_finite_median(np.full(5, np.nan)))
        assert np.isnan(_finite_median(np.empty(0)))


def test_reader_notes_reach_the_result_warnings():
    """An assumption of the reader (an MSA file without x units read as eV) is a warning of the fit,
    and the fit itself is unchanged by it."""
    rng = np.random.default_rng(7)
    t = random_truth(rng, counts=4000.0)
    y, _ = core_loss(E, **t)
    yn = noisy(y, rng)
    m = new_measurement(yn, {"energy": (E, "eV")}, technique="eels", units="counts", sample="s",
                        acquisition={"beam_energy_keV": 200.0,
                                     "reader_notes": ["x units missing: energy loss assumed in eV"]})
    r = sp.eels.fit_edge(m, edge="B K")
    assert r.warnings == ["reader: x units missing: energy loss assumed in eV"]
    plain = sp.eels.fit_edge(spectrum(yn), edge="B K")
    assert not plain.warnings
    assert r.quantities["pi_star.energy_eV"].value == plain.quantities["pi_star.energy_eV"].value


def test_noise_normalised_redchi_poisson_aware():
    """#25: raw counts are fitted with their exact Poisson σ (χ²/ν ≈ 1, a little above for the
    synthetic physics the model only approximates); counts scaled by a detector gain are normalised by
    the measured pre-edge noise (the Poisson χ²/ν is then the gain); a line the model lacks gives ≫ 1."""
    from specproc.core.numbers import noise_redchi

    rng = np.random.default_rng(25)
    t = random_truth(rng, counts=3000.0)
    y, _ = core_loss(E, **t)
    raw = [sp.eels.fit_edge(spectrum(noisy(y, rng)), edge="B K") for _ in range(4)]
    for r in raw:
        assert r.stats["noise_model"] == "Poisson (raw counts)"
        assert r.stats["noise_scale"] == pytest.approx(1.0, abs=0.25)        # √counts noise (MAD of ~240 points)
        assert noise_redchi(r.stats) == r.stats["redchi_noise"] == r.stats["redchi_poisson"]  # the JSON's value
        assert 0.8 < r.stats["redchi_noise"] < 1.5
        assert r.stats["noise_sd"] > 0
    ref = float(np.median([r.stats["redchi_noise"] for r in raw]))
    gain = 4.0
    g = sp.eels.fit_edge(spectrum(noisy(y * gain, rng, scale=gain)), edge="B K")
    assert g.stats["noise_model"].startswith("Poisson x measured")
    assert g.stats["noise_scale"] == pytest.approx(np.sqrt(gain), rel=0.15)
    assert g.stats["redchi_poisson"] == pytest.approx(gain * ref, rel=0.3)     # Poisson σ is √gain too small
    assert g.stats["redchi_noise"] == pytest.approx(ref, rel=0.3)              # the measured noise is not
    # a narrow line 6 eV above π* (~25 noise SDs high) that the model has no component for
    extra = y + t["pi_height"] * np.exp(-0.5 * ((E - t["pi_center"] - 6.0) / 0.4) ** 2)
    bad = sp.eels.fit_edge(spectrum(noisy(extra, rng)), edge="B K")
    assert bad.stats["redchi_noise"] > 2 * ref, (bad.stats, ref)
    # a map: the same statistics per pixel (block path) as the single-spectrum path
    Y = np.stack([noisy(y, rng) for _ in range(6)]).reshape(2, 3, -1)
    m = sp.eels.fit_edge(image(Y))
    rc = m.data.redchi_noise.values
    assert np.all((rc > 0.8) & (rc < 1.5)), rc
    assert m.stats["median_redchi_noise"] == pytest.approx(float(np.median(rc)))
    one = sp.eels.fit_edge(spectrum(Y[1, 2]), edge="B K")
    assert one.stats["redchi_noise"] == pytest.approx(rc[1, 2], rel=1e-3)
    assert one.stats["noise_sd"] == pytest.approx(float(m.data.noise_sd.values[1, 2]), rel=1e-3)
