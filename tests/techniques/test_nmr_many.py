"""Stacks through the batch engine: sp.nmr.deconvolve(list) == single lmfit fits, per-spectrum failures."""
import sys
from pathlib import Path

import numpy as np
import pytest

import specproc as sp
from specproc.core.errors import SpecprocError

sys.path.insert(0, str(Path(__file__).parent))
from _nmr_synth import spectrum  # noqa: E402

pytest.importorskip("specproc.fitting.batch")
PEAKS = {"BH4": -44.3, "BH4c": -41.0, "NBH3": -25.3}


def stack(n=20, seed=1, mas=None, x=None):
    rng = np.random.default_rng(seed)
    return [spectrum([(-44.3 + rng.normal(0, 0.2), 10 * rng.uniform(0.8, 1.2), 1.6), (-41.0 + rng.normal(0, 0.2), 5, 2.5),
                      (-25.3, 8 * rng.uniform(0.8, 1.2), 5.0)], noise=0.02, seed=i, mas=mas, x=x, sample=f"s{i}")
            for i in range(n)]


def _check_agree(rb, rs):
    for a, b in zip(rb, rs):
        assert a.sample == b.sample
        for k, q in b.quantities.items():
            qa = a.quantities[k]
            if k.endswith("center_ppm"):
                assert abs(qa.value - q.value) < 1e-3, k
            if k.endswith("area_fraction"):
                assert abs(qa.value - q.value) < 1e-3, k
            if k.endswith(("center_ppm", "area_fraction", "fwhm_ppm")):
                assert qa.stderr == pytest.approx(q.stderr, rel=0.02), k  # same covariance, batch vs lmfit


def test_batch_agrees_with_single_fits():
    ms = stack()
    rb = sp.nmr.deconvolve(ms, PEAKS)
    assert all(r.meta["batch"]["method"] == "batched-lm" for r in rb)
    assert rb[0].meta["batch"]["n_spectra"] == 20 and not rb[0].meta["batch"]["interpolated_to_common_axis"]
    rs = [sp.nmr.deconvolve(m, PEAKS) for m in ms]
    _check_agree(rb, rs)
    # the plugin (pipeline path) goes through the same engine
    from specproc.techniques.nmr.processors import Deconvolve

    rp = Deconvolve()(ms[:4], peaks=PEAKS)
    assert all(r.meta.get("batch") for r in rp)
    _check_agree(rp, rs[:4])


def test_batch_with_sidebands_and_interpolated_axes():
    x1 = np.linspace(120, -200, 3000)
    ms = stack(n=8, mas=12500.0, x=x1)
    # a different grid: interpolated to the first spectrum's axis
    ms += stack(n=2, seed=7, mas=12500.0, x=np.linspace(121, -199, 2900))
    for m, s in zip(ms[-2:], ("t0", "t1")):
        m.attrs["sample"] = s
    rb = sp.nmr.deconvolve(ms, PEAKS)
    assert rb[0].meta["batch"]["interpolated_to_common_axis"]
    for r in rb:
        assert abs(r.quantities["NBH3.center_ppm"].value + 25.3) < 0.05
        assert r.quantities["BH4.area_fraction"].stderr > 0


def test_failures_reported_per_spectrum():
    ms = stack(n=4)
    bad = ms[1].copy(data=np.full(ms[1].shape, np.nan))
    out = sp.nmr.deconvolve([ms[0], bad, ms[2], "not a measurement", ms[3]], PEAKS)
    assert isinstance(out[1], SpecprocError) and isinstance(out[3], SpecprocError)
    assert all(not isinstance(out[i], Exception) and out[i].meta.get("batch") for i in (0, 2, 4))


def test_unbatchable_stacks_fall_back_to_single_fits():
    ms = stack(n=3)
    out = sp.nmr.deconvolve(ms)  # automatic mode: one model per spectrum
    assert all(not r.meta.get("batch") for r in out)
    out = sp.nmr.deconvolve(ms, PEAKS, method="loop")
    assert all(not r.meta.get("batch") for r in out)
