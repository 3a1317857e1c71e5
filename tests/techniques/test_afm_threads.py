"""AFM map helpers that run in the executor's threads: all-NaN scan lines and plot blocks give
their documented values without a warning and without touching the process-wide warning filters."""
from __future__ import annotations

import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from specproc.techniques.afm.levelling import align_rows
from specproc.techniques.afm.maps import _coarse


def _map(seed):
    rng = np.random.default_rng(seed)
    offsets = rng.normal(0, 5e-9, 64)
    z = offsets[:, None] + rng.normal(0, 1e-10, (64, 600))
    z[3] = np.nan          # a scan line lost entirely
    z[10:20, 0:8] = np.nan  # a hole as large as a plot block
    return z, offsets


def _work(seed):
    z, offsets = _map(seed)
    aligned, off = align_rows(z)
    zc, fy, fx = _coarse(z, n=100)
    return z, offsets, aligned, off, zc, fy, fx


def test_all_nan_lines_and_blocks_quietly_in_threads(monkeypatch):
    touched = []
    for name in ("catch_warnings", "simplefilter", "filterwarnings"):
        real = getattr(warnings, name)

        def spy(*a, _real=real, _name=name, **k):
            if threading.current_thread() is not threading.main_thread():
                touched.append(_name)
            return _real(*a, **k)
        monkeypatch.setattr(warnings, name, spy)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any RuntimeWarning ("All-NaN slice", "Mean of empty slice") fails
        with ThreadPoolExecutor(4) as pool:
            out = list(pool.map(_work, range(8)))
    assert not touched, sorted(set(touched))
    for z, offsets, aligned, off, zc, fy, fx in out:
        good = np.arange(64) != 3
        assert off[3] == 0.0
        # the row medians recover the scan-line offsets within the noise (1e-10 m, 600 points)
        assert np.max(np.abs(off[good] - offsets[good])) < 2e-11
        assert (fy, fx) == (1, 6)
        assert np.isnan(zc[10:20, 0:1]).all() and np.isnan(zc[3]).all()
        # a block mean equals the plain mean of its six pixels
        assert np.allclose(zc[0, 5], z[0, 30:36].mean())
        assert np.isfinite(zc[[0, 1, 2, 4, 30]]).all()
