"""Shared lmfit helpers: skipping lmfit's uncertainty propagation must not change the fit."""
import pickle

import numpy as np
import pytest

from specproc.fitting.models import Link, ModelSpec, Peak, without_uvars


def _data():
    rng = np.random.default_rng(3)
    x = np.linspace(-10, 10, 801)
    from specproc.fitting.lineshapes import pseudo_voigt

    y = pseudo_voigt(x, 10, -2, 0.6, 0.4) + pseudo_voigt(x, 5, 1.5, 0.6, 0.4) + rng.normal(0, 0.02, x.size)
    return x, y


def test_without_uvars_gives_the_same_fit_and_varied_stderr():
    x, y = _data()
    spec = ModelSpec(peaks=[Peak(name="a", center=-2.2), Peak(name="b", center=1.2)],
                     links=[Link(param="sigma", peaks=["a", "b"])])
    model, params = spec.to_lmfit(x, y)
    ref = model.fit(y, params, x=x)
    fast = model.fit(y, without_uvars(params), x=x)
    assert fast.chisqr == pytest.approx(ref.chisqr, rel=1e-9)
    for name in ref.var_names:
        assert fast.params[name].value == pytest.approx(ref.params[name].value, rel=1e-7, abs=1e-9)
        assert fast.params[name].stderr == pytest.approx(ref.params[name].stderr, rel=1e-6)
    assert ref.params["b_sigma"].stderr is not None       # lmfit propagates to the linked one...
    assert not fast.params["b_sigma"].stderr               # ...the copy leaves it to the caller
    pickle.loads(pickle.dumps(fast.params))               # still picklable (process pools)
