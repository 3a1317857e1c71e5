"""NMR on data nobody tuned for (issue #10): generated spectra from random truths (not sample_data).

Each class of failure seen on unseen data has its generated cases here: given starts far from
the lines, a given line where there is no signal, window-edge artefacts, nested narrow/broad
pairs, minor lines, impossible parameters, 2D data, an unremovable digital filter.
"""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

import specproc as sp
from specproc.core.errors import ParameterError

sys.path.insert(0, str(Path(__file__).parent))
from _nmr_synth import fid, spectrum  # noqa: E402


def _truth(seed):
    """Two separated lines with random shifts, widths and areas (11B-like window)."""
    rng = np.random.default_rng(seed)
    c1 = rng.uniform(-50, -35)
    c2 = c1 + rng.uniform(12, 25)
    return [(c1, rng.uniform(0.5, 1.5), rng.uniform(1.5, 3.0)), (c2, rng.uniform(0.5, 1.5), rng.uniform(2.0, 4.0))]


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_given_starts_3_to_4_ppm_off_find_the_lines(seed):
    truth = _truth(seed)
    m = spectrum(truth, noise=0.003, seed=seed)
    rng = np.random.default_rng(seed + 100)
    starts = {f"L{i}": c + rng.choice([-1, 1]) * rng.uniform(3.0, 4.0) for i, (c, _a, _w) in enumerate(truth)}
    fit = sp.nmr.deconvolve(m, starts)
    t = fit.table.set_index("name")
    tot = sum(a for _c, a, _w in truth)
    for i, (c, a, w) in enumerate(truth):
        assert abs(t.loc[f"L{i}", "center_ppm"] - c) < 0.05, (seed, fit.warnings)
        assert abs(t.loc[f"L{i}", "fwhm_ppm"] - w) < 0.1 * w
        assert abs(t.loc[f"L{i}", "area_fraction"] - a / tot) < 0.02
    # never silently at a bound: either nothing is at a bound, or the warnings say so
    assert not any(t["at_bound"]) or fit.warnings


def test_given_line_without_signal_warns():
    m = spectrum([(-10.0, 1.0, 2.0)], noise=0.003, seed=3)
    fit = sp.nmr.deconvolve(m, [-60.0])
    assert fit.warnings, "a line started where there is no signal must not come back silently"
    row = fit.table.iloc[0]
    # either it moved to the real line (and says so) or it reports that it found nothing
    moved = abs(row["center_ppm"] + 10.0) < 0.1
    assert moved or any("no significant signal" in w or "bound" in w for w in fit.warnings)
    assert row["fwhm_ppm"] < 20 or any("bound" in w for w in fit.warnings)


def test_peak_outside_the_spectrum_is_an_error():
    m = spectrum([(-40.0, 1.0, 2.0)], noise=0.003)
    with pytest.raises(ParameterError, match="outside"):
        sp.nmr.deconvolve(m, [5000.0])


@pytest.mark.parametrize("rate", [-5.0, float("inf"), float("nan")])
def test_impossible_mas_rate_refused(rate):
    m = spectrum([(-40.0, 1.0, 2.0)], noise=0.003)
    with pytest.raises(ParameterError, match="mas_rate_hz"):
        sp.nmr.deconvolve(m, [-40.0], mas_rate_hz=rate)


def test_nan_peak_and_zero_n_peaks_refused():
    m = spectrum([(-40.0, 1.0, 2.0)], noise=0.003)
    with pytest.raises(ParameterError):
        sp.nmr.deconvolve(m, [float("nan")])
    with pytest.raises(ParameterError, match="n_peaks"):
        sp.nmr.deconvolve(m, n_peaks=0)


def test_more_components_asked_than_found_warns():
    m = spectrum([(-40.0, 1.0, 2.0), (-20.0, 0.6, 3.0)], noise=0.003)
    fit = sp.nmr.deconvolve(m, n_peaks=40)
    assert len(fit.table) < 40
    assert any("n_peaks = 40" in w for w in fit.warnings)


@pytest.mark.parametrize("seed", [21, 22])
def test_window_edge_artefact_is_not_a_species(seed):
    """A broad artefact at the edge of a +-100 ppm 7Li window is never reported as a species
    and does not bias the fractions of the real lines."""
    rng = np.random.default_rng(seed)
    x = np.linspace(100, -100, 2048)
    c = rng.uniform(-3, 3)
    truth = [(c, 0.6, rng.uniform(0.6, 1.0)), (c + rng.uniform(15, 30), 0.4, rng.uniform(4, 8))]
    m = spectrum(truth + [(-100.0, 0.5, 20.0)], noise=0.002, seed=seed, x=x, nucleus="7Li", sf=155.5)
    fit = sp.nmr.deconvolve(m)
    t = fit.table
    assert not ((t["center_ppm"] < -85) & (t["area_fraction"] > 0.01)).any(), t
    assert fit.meta.get("edge_artefacts")
    assert any("edge artefact" in w for w in fit.warnings)
    narrow = t.loc[(t["center_ppm"] - c).abs().idxmin()]
    assert abs(narrow["area_fraction"] - 0.6) < 0.03, t


@pytest.mark.parametrize("seed", [31, 32])
def test_nested_narrow_on_broad_found_automatically(seed):
    rng = np.random.default_rng(seed)
    c = rng.uniform(-5, 5)
    f_narrow = rng.uniform(0.3, 0.7)
    truth = [(c, f_narrow, rng.uniform(0.8, 1.5)), (c + rng.uniform(-0.5, 0.5), 1 - f_narrow, rng.uniform(8, 14))]
    x = np.linspace(60, -60, 2400)
    m = spectrum(truth, noise=0.002, seed=seed, x=x, nucleus="7Li", sf=155.5)
    fit = sp.nmr.deconvolve(m)
    t = fit.table.sort_values("fwhm_ppm").reset_index(drop=True)
    assert len(t) == 2, t
    assert abs(t.loc[0, "area_fraction"] - f_narrow) < 0.04, t
    assert abs(t.loc[0, "center_ppm"] - c) < 0.1


@pytest.mark.parametrize("seed", [41, 42])
def test_minor_narrow_line_beside_a_broad_one_is_found(seed):
    rng = np.random.default_rng(seed)
    c = rng.uniform(-45, -35)
    cm = c + rng.choice([-1, 1]) * rng.uniform(8, 12)
    truth = [(c, 0.9, rng.uniform(8, 12)), (cm, 0.1, rng.uniform(1.0, 1.5))]
    m = spectrum(truth, noise=0.001, seed=seed)
    fit = sp.nmr.deconvolve(m)
    t = fit.table
    minor = t.loc[(t["center_ppm"] - cm).abs().idxmin()]
    assert abs(minor["center_ppm"] - cm) < 0.3, t
    assert abs(minor["area_fraction"] - 0.1) < 0.03, t


def test_2d_data_keep_both_axes_and_say_how_to_pick_a_row():
    rows = [fid([(-40.0, a, 100.0)], noise=0.001, seed=i) for i, a in enumerate((0.2, 0.6, 1.0))]
    import xarray as xr

    from specproc.core.measurement import new_measurement

    t = rows[0].coords["time"].values
    m = new_measurement(np.stack([r.values for r in rows]), [("row", np.array([0.1, 1.0, 5.0]), "s"),
                                                               ("time", t, "s")],
                        technique="nmr", signal_type="fid", sample="series", metadata={"nucleus": "11B"},
                        acquisition=rows[0].attrs["acquisition"])
    assert isinstance(m, xr.DataArray) and m.dims == ("row", "time")
    with pytest.raises(ParameterError, match="row") as e:
        sp.nmr.deconvolve(m, [-40.0])
    assert "--row" in str(e.value) and "sel" in str(e.value)
    fits = [sp.nmr.deconvolve(m, [-40.0], row=i) for i in range(3)]
    areas = [f.quantities["p1.area"].value for f in fits]
    assert areas[0] < areas[1] < areas[2]
    with pytest.raises(ParameterError, match="outside"):
        sp.nmr.deconvolve(m, [-40.0], row=7)


def test_unremovable_digital_filter_is_a_warning():
    m = fid([(-40.0, 1.0, 100.0)], grpdly=60.3, noise=0.001)
    acq = dict(m.attrs["acquisition"], grpdly=None, dspfvs=0.0, decim=16.0)
    m = m.copy()
    m.attrs["acquisition"] = acq
    fit = sp.nmr.deconvolve(m, [-40.0])
    assert any("digital filter" in w for w in fit.warnings)


# --------------------------------------------------------------------------- CLI (#15 items 6, 7, 10)
def _csv(path, x, y):
    path.write_text("\n".join(["# nucleus: 11B", "# sf_mhz: 128.38", "ppm,intensity"]
                              + [f"{a:.6f},{b:.8g}" for a, b in zip(x, y)]) + "\n")


@pytest.fixture
def good_csv(tmp_path):
    m = spectrum([(-41.0, 1.0, 1.5)], noise=0.003, seed=5)
    f = tmp_path / "good.csv"
    _csv(f, m.coords["shift"].values, m.values)
    return f


@pytest.mark.parametrize("args", [["--mas-rate", "-5"], ["--mas-rate", "inf"], ["--mas-rate", "nan"],
                                  ["--peaks=nan"], ["--n-peaks", "0"]])
def test_cli_usage_errors_exit_2(good_csv, capsys, args):
    from specproc.cli import main

    with pytest.raises(SystemExit) as e:
        main(["nmr", str(good_csv), "--json", *args])
    assert e.value.code == 2
    assert "error" in capsys.readouterr().err


def test_cli_bad_jcamp_never_wipes_the_batch(tmp_path, good_csv, capsys):
    from specproc.cli import main

    bad = tmp_path / "bad.jdx"
    bad.write_text("##TITLE= bad\n##JCAMP-DX= 5.01\n##DATA TYPE= NMR SPECTRUM\n##.OBSERVE FREQUENCY= 128.38\n"
                   "##XUNITS= PPM\n##YUNITS= ARBITRARY UNITS\n##FIRSTX= 10\n##LASTX= 10\n##NPOINTS= 4\n"
                   "##XYDATA= (X++(Y..Y))\n10 1 2 3 4\n##END=\n")
    rc = main(["nmr", str(good_csv), str(bad), "--json", "--peaks=-41"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 1
    assert abs(out[0]["components"][0]["center_ppm"] + 41.0) < 0.05
    assert out[1]["file"] == str(bad) and "error" in out[1]


def test_cli_peak_far_outside_is_a_per_file_error(good_csv, capsys):
    from specproc.cli import main

    rc = main(["nmr", str(good_csv), "--json", "--peaks=5000"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 1 and "outside" in out[0]["error"]
