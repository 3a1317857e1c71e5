"""Links on the solid-state NMR models (issue #27): a fwhm link on a pattern with no closed-form FWHM
is a ParameterError naming the valid links (never a bare KeyError); area, centre and shared raw
parameters work and mean what they say."""
import numpy as np
import pytest

from specproc.core.errors import ParameterError
from specproc.fitting.models import Link, ModelSpec, Peak

X = np.linspace(-100, 100, 801)


def _spec(shapes, param):
    return ModelSpec(peaks=[Peak(name="a", shape=shapes[0], center=0.0), Peak(name="b", shape=shapes[1], center=10.0)],
                     links=[Link(param=param, peaks=["a", "b"])])


@pytest.mark.parametrize("shapes", [("csa", "gaussian"), ("gaussian", "csa"), ("csa", "czjzek"),
                                    ("czjzek", "czjzek"), ("csa", "csa"), ("voigt", "czjzek")])
def test_fwhm_link_is_a_parameter_error_with_the_valid_names(shapes):
    with pytest.raises(ParameterError) as e:
        _spec(shapes, "fwhm").to_lmfit(X, np.zeros_like(X))
    msg = str(e.value)
    assert "no closed form" in msg and "valid names: center, area" in msg and "sigma" in msg
    assert "fwhm," not in msg.split("valid names:")[1]


def test_unknown_link_lists_the_shared_model_parameters_not_the_context():
    with pytest.raises(ParameterError) as e:
        _spec(("czjzek", "czjzek"), "cq").to_lmfit(X, np.zeros_like(X))
    valid = str(e.value).split("valid names:")[1]
    assert "sigma_mhz" in valid and "larmor_mhz" not in valid and "rate_ppm" not in valid
    with pytest.raises(ParameterError, match="valid names"):
        _spec(("czjzek", "czjzek"), "larmor_mhz").to_lmfit(X, np.zeros_like(X))


def test_area_center_and_shared_parameters_link():
    from specproc.fitting.nmr_models import csa

    _, p = _spec(("csa", "gaussian"), "area").to_lmfit(X, np.zeros_like(X))
    assert p["b_amplitude"].expr == "a_amplitude"
    _, p = _spec(("csa", "csa"), "eta").to_lmfit(X, np.zeros_like(X))
    assert p["b_eta"].expr == "a_eta"
    # a shared anisotropy between two CSA sites is recovered from data drawn with one
    y = csa(X, 50, -20, 40, 0.3, 1.0) + csa(X, 30, 30, 40, 0.6, 1.0)
    y = y + np.random.default_rng(0).standard_normal(X.size) * y.max() / 200
    spec = ModelSpec(peaks=[Peak(name="a", shape="csa", center=-20, init={"delta_aniso_ppm": 30.0}),
                            Peak(name="b", shape="csa", center=30, init={"delta_aniso_ppm": 30.0})],
                     links=[Link(param="delta_aniso_ppm", peaks=["a", "b"])])
    model, params = spec.to_lmfit(X, y)
    r = model.fit(y, params, x=X)
    assert r.params["b_delta_aniso_ppm"].value == r.params["a_delta_aniso_ppm"].value
    assert abs(r.params["a_delta_aniso_ppm"].value - 40) < 1.0
    assert abs(r.params["a_amplitude"].value / 50 - 1) < 0.03 and abs(r.params["b_amplitude"].value / 30 - 1) < 0.03
