"""The batch engine must survive the ways the pipeline runs it: forked workers and threads."""
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from specproc.fitting.batch import fit_batch
from specproc.fitting.models import ModelSpec, Peak


def _stack(n=32, seed=0):
    rng = np.random.default_rng(seed)
    x = np.linspace(-10, 10, 400)
    centers = rng.uniform(-1, 1, n)
    Y = np.exp(-(x[None] - centers[:, None]) ** 2 / 2) + rng.normal(0, 0.01, (n, x.size))
    return x, Y, centers


SPEC = ModelSpec(peaks=[Peak(name="a", center=0.0, shape="gaussian", fwhm=2.0)])


@pytest.mark.skipif(sys.platform == "win32", reason="fork")
def test_fit_in_forked_child_after_parent_fit():
    x, Y, centers = _stack()
    fit_batch(SPEC, x, Y)                         # parent launches the parallel kernel first
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: would abort under GNU OpenMP
        try:
            ds = fit_batch(SPEC, x, Y)
            ok = np.allclose(ds["a_center"].values, centers, atol=0.02)
            os.write(w, b"ok" if ok else b"bad")
        finally:
            os._exit(0)
    os.close(w)
    _, status = os.waitpid(pid, 0)
    assert os.read(r, 8) == b"ok" and status == 0


def test_concurrent_fits_from_threads_agree():
    x, Y, centers = _stack(seed=1)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: fit_batch(SPEC, x, Y)["a_center"].values, range(4)))
    for res in results:
        np.testing.assert_allclose(res, centers, atol=0.02)
        np.testing.assert_array_equal(res, results[0])
