"""Force-curve reader (afmformats) against the MANIFEST facts of the real JPK / Asylum files."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import specproc as sp
from specproc.core.errors import ReaderError

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "realdata" / "afm"
MAP = REAL / "fmt-jpk-fd_map2x2_extracted.jpk-force-map"
SPOT = REAL / "fmt-jpk-fd_spot3-0192.jpk-force"
IBW = REAL / "fmt-igor-fd_SiN_FD_plot.ibw"


@pytest.fixture(autouse=True)
def _need_data():
    if not REAL.is_dir():
        pytest.skip("real data not available")


def test_jpk_force_map():
    m = sp.read(MAP)
    acq = m.attrs["acquisition"]
    assert m.dims == ("y", "x", "point") and m.attrs["units"] == "N" and m.attrs["signal_type"] == "force_volume"
    assert acq["n_curves"] == 4 and acq["point_counts"] == [24060, 24060, 3226, 8210]
    assert acq["approach_points"] == [12030, 12030, 1627, 4141]
    # ragged map: each curve keeps its own points (NaN-padded at the end), the approach split where
    # the piezo turns as nanite splits it (a few points beyond the file's segment boundary)
    assert m.shape == (2, 2, 12040) and acq["padded"] is True and acq["resampled"] is False
    assert acq["approach_points_used"] == [12039, 12040, 1635, 4151]
    assert acq["spring_constant_N_per_m"] == 0.015481694150356324
    assert acq["sensitivity_m_per_V"] == 6.425794778156255e-08 and np.isclose(acq["setpoint_N"], 2.0e-09, rtol=1e-12)
    assert acq["speed_approach_m_per_s"] == 5e-06 and acq["imaging_mode"] == "force-distance"
    assert acq["software"] == "JPK"
    # grid indices 0 and 9 of a 10 x 10 grid over 0.6 mm: pixel centres 30 µm and 570 µm
    np.testing.assert_allclose(m.x.values, [3e-5, 5.7e-4]) and np.testing.assert_allclose(m.y.values, [3e-5, 5.7e-4])
    assert m.coords["height"].attrs["units"] == "m" and m.coords["height"].dims == m.dims
    # every approach force within the MANIFEST's whole-curve range of its curve
    rng = {(0, 0): (-1.0380e-09, 1.6426e-09), (0, 1): (-7.8626e-10, 1.5922e-09),
           (1, 1): (-7.6079e-10, 1.5025e-09), (1, 0): (-1.0132e-09, 1.5749e-09)}
    for (iy, ix), (lo, hi) in rng.items():
        f = m.values[iy, ix]
        assert lo * 1.0001 <= np.nanmin(f) and np.nanmax(f) <= hi * 1.0001


def test_jpk_single_curve_and_heights():
    m = sp.read(SPOT)
    acq = m.attrs["acquisition"]
    assert m.shape == (1, 1, 2006) and acq["point_counts"] == [4000] and acq["resampled"] is False
    assert acq["approach_points_used"] == [2006]
    assert acq["spring_constant_N_per_m"] == 0.043493666407368466 and np.isclose(acq["setpoint_N"], 4.0e-09, rtol=1e-12)
    assert acq["height_column"] == "height (measured)"
    h = m.coords["height"].values[0, 0]
    assert 1.7807956815669515e-05 <= h.min() and h.max() <= 2.2815672438768612e-05
    f = m.values[0, 0]
    assert -9.890372974745009e-10 <= f.min() and f.max() <= 3.6813837252362216e-09
    assert h[0] > h[-1]                       # approach: height decreases


def test_asylum_ibw_split_at_lowest_height():
    m = sp.read(IBW)
    acq = m.attrs["acquisition"]
    assert acq["spring_constant_N_per_m"] == 1.1841 and np.isclose(acq["setpoint_N"], 1e-08, rtol=1e-12)
    assert acq["point_counts"] == [2016] and acq["software"] == "Asylum Research"
    assert acq["approach_split_at"] == [1009] and m.shape == (1, 1, 1009)
    h = m.coords["height"].values[0, 0]
    assert np.isclose(h.min(), -1.409596620760567e-06) and np.isclose(m.values.max(), 6.166312793709494e-09)


def test_fit_real_curves_runs_and_flags():
    r = sp.afm.fit_force_map(SPOT, tip_radius_m=5e-6)
    assert set(["E_Pa", "contact_point_m", "flag", "good"]) <= set(r.data_vars)
    assert r.E_Pa.shape == (1, 1) and np.isfinite(r.E_Pa.values).all() and r.E_Pa.values[0, 0] > 0
    # contact point inside the recorded height range
    m = sp.read(SPOT)
    h = m.coords["height"].values[0, 0]
    assert h.min() <= r.contact_point_m.values[0, 0] <= h.max()


def test_bad_input(tmp_path):
    cut = tmp_path / "cut.jpk-force"
    cut.write_bytes(SPOT.read_bytes()[:5000])
    with pytest.raises(ReaderError, match="cut.jpk-force"):
        sp.read(cut)
    junk = tmp_path / "junk.jpk-force-map"
    junk.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ReaderError):
        sp.read(junk)
