import numpy as np
import pytest

import specproc as sp
from specproc.core.errors import ParameterError

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _nmr_synth import fid  # noqa: E402


def _area(s, lo, hi):
    x, y = s["shift"].values, s.values
    y = y - np.median(y)  # constant offset from the first FID points (filter pre-signal)
    sel = (x > lo) & (x < hi)
    return y[sel].sum() * abs(x[1] - x[0])


@pytest.mark.parametrize("noise", [0.0, 0.002])
def test_digital_filter_and_phase_error_removed(noise):
    peaks = [(-41.0, 1.0, 100.0), (10.0, 0.5, 200.0), (-60.0, 0.3, 300.0)]
    m = fid(peaks, grpdly=67.98, p0=70.0, noise=noise)
    ref = sp.nmr.process(fid(peaks), phase=(0, 0), baseline=None)
    s = sp.nmr.process(m)
    x, y = s["shift"].values, s.values
    assert s.dims == ("shift",) and s["shift"].attrs["units"] == "ppm"
    assert x[0] > x[-1]
    assert abs(x[np.argmax(y)] - (-41.0)) < 0.05  # right ppm axis
    near = np.abs(x + 41) < 3
    assert y[near].min() > -0.02 * y.max()  # phased: no negative lobe
    r = _area(s, -50, -32) / _area(s, 0, 20)
    r0 = _area(ref, -50, -32) / _area(ref, 0, 20)
    assert r == pytest.approx(r0, rel=0.05)
    assert "digital_filter" in s.attrs["processing"]
    b = sp.nmr.process(m, baseline="asls", baseline_params={"lam": 1e6, "p": 0.01})
    assert b.attrs["processing"]["baseline"]["method"] == "asls"
    assert m.attrs["signal_type"] == "fid"  # input untouched


def test_manual_phase_pseudo2d_and_reference():
    m = fid([(0.0, 1.0, 50.0)], p0=90.0)
    s = sp.nmr.process(m, phase=(-90.0, 0.0), reference=(0.0, 5.0))
    assert abs(s["shift"].values[np.argmax(s.values)] - 5.0) < 0.05
    assert s.values.min() > -0.02 * s.values.max()
    import xarray as xr
    two = xr.concat([m, m], dim="row").transpose("row", "time")
    two.attrs = m.attrs
    s2 = sp.nmr.process(two)
    assert s2.dims == ("row", "shift") and s2.shape[0] == 2


def test_bad_parameters():
    m = fid([(0.0, 1.0, 50.0)])
    with pytest.raises(ParameterError):
        sp.nmr.process(m, apodization="sinebell")
    with pytest.raises(ParameterError):
        sp.nmr.process(m, phase="magic")
