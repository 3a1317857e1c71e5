"""The one display rule of numbers (core.numbers): natural units, values ± errors, a noise-normalised
reduced χ² (or none), and stored values unchanged."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from specproc.core.numbers import (column_unit, display_frame, display_table, format_number, format_value,
                                   natural_unit, noise_redchi)
from specproc.core.result import Quantity, Result, df_html, display_stats


# ------------------------------------------------------------------ natural units
@pytest.mark.parametrize("value, unit, text", [
    (1.578e-9, "m", "1.578 nm"),           # the roughness of the issue
    (3.2e9, "Pa", "3.2 GPa"),
    (450e6, "Pa", "450 MPa"),
    (2.5e-6, "m", "2.5 µm"),
    (0.0123, "N/m", "12.3 mN/m"),
    (284.8, "eV", "284.8 eV"),             # field units are kept as they are
    (-44.3, "ppm", "-44.3 ppm"),
    (0.512, "nm", "0.512 nm"),
    (1e-3, "eV", "0.001 eV"),
    (12.0, "", "12"),
])
def test_natural_unit_text(value, unit, text):
    assert format_value(value, unit=unit) == text


def test_prefix_puts_magnitude_in_1_to_1000():
    rng = np.random.default_rng(0)
    for v in 10.0 ** rng.uniform(-14, 12, 200):
        f, u = natural_unit("m", v)
        assert 1 <= v * f < 1000 * (1 + 1e-12), (v, f, u)
        assert u.endswith("m")


def test_value_rounded_to_its_error():
    assert format_value(3.2e9, 1.2e8, "Pa") == "3.20 ± 0.12 GPa"
    assert format_number(-44.30123, 0.00213) == "-44.3012 ± 0.0021"
    assert format_number(1234.5, 56.0) == "1234 ± 56" or format_number(1234.5, 56.0) == "1235 ± 56"
    assert format_number(None) == "—" and format_number(float("nan"), 0.1) == "—"
    # the error is never shown with more precision than two significant digits
    for v, s in ((0.123456, 0.0034), (98765.4, 321.0), (1e-6, 3e-8)):
        err = format_number(v, s).split("±")[1].strip()
        assert float(err) == pytest.approx(s, rel=0.05)


def test_quantity_str_uses_natural_unit_but_stores_si():
    q = Quantity(1.578e-9, 2e-11, "m")
    assert str(q) == "1.578 ± 0.020 nm"
    assert q.to_dict()["value"] == 1.578e-9 and q.to_dict()["unit"] == "m"


def test_result_text_html_and_json():
    r = Result("afm.analyse_map", "afm", sample="s1",
               quantities={"roughness.Sa_m": Quantity(1.578e-9, None, "m"),
                           "modulus.mean_Pa": Quantity(3.2e9, 1.2e8, "Pa")},
               tables={"roughness": [{"channel": "height", "Sa_m": 1.578e-9, "Sq_m": 2.01e-9}]})
    text = r.summary()
    assert "1.578 nm" in text and "3.20 ± 0.12 GPa" in text and "e-09" not in text
    html = r._repr_html_()
    assert "Sa_nm" in html and "1.578" in html and "e-09" not in html
    d = json.loads(r.to_json())                     # stored / JSON values stay SI
    assert d["quantities"]["roughness.Sa_m"]["value"] == 1.578e-9
    assert d["tables"]["roughness"][0]["Sa_m"] == 1.578e-9


def test_display_frame_pairs_stderr_and_leaves_input():
    df = pd.DataFrame({"Sa_m": [1.578e-9, 2.2e-9], "Sa_m_stderr": [1e-11, 3e-11], "E_Pa": [3e9, 4e9],
                       "a_nm": [0.5, 0.6], "name": ["x", "y"]})
    out = display_frame(df)
    assert list(out.columns) == ["Sa_nm", "Sa_nm_stderr", "E_GPa", "a_nm", "name"]
    assert out["Sa_nm"].tolist() == pytest.approx([1.578, 2.2])
    assert out["Sa_nm_stderr"].tolist() == pytest.approx([0.01, 0.03])
    assert df["Sa_m"].iloc[0] == 1.578e-9                        # the input is not changed
    assert column_unit("two_theta_deg") is None and column_unit("n_peaks") is None
    assert "Sa_nm" in df_html(df)                                # the report's tables use the same rule


def test_display_table_quantity_columns():
    df = pd.DataFrame([{"s": "a", "Sa": Quantity(1.578e-9, 1.2e-11, "m"), "E": Quantity(3.2e9, 1e8, "Pa")},
                       {"s": "b", "Sa": Quantity(2e-9, None, "m"), "E": None}])
    out = display_table(df)
    assert list(out.columns) == ["s", "Sa (nm)", "E (GPa)"]
    assert out["Sa (nm)"].tolist() == ["1.578 ± 0.012", "2"]
    assert out["E (GPa)"].tolist() == ["3.20 ± 0.10", "—"]


# ------------------------------------------------------------------ reduced chi-square
def test_redchi_shown_only_noise_normalised():
    raw = {"redchi": 4.9e14, "r2": 0.9999}
    assert noise_redchi(raw) is None and "redchi" not in display_stats(raw)   # a variance is never shown
    assert display_stats({"redchi": 4.9e14, "noise_sd": 2.2e7})["redchi"] == pytest.approx(4.9e14 / 2.2e7 ** 2)
    shown = display_stats({"redchi": 4.9e14, "redchi_noise": 1.03, "noise_sd": 2.2e7, "r2": 0.9999})
    assert shown["redchi"] == 1.03 and "redchi_noise" not in shown
    assert "redchi" not in Result("x.y", "x", stats=raw).summary()


def _pair(seed, scale=1.0, sd=0.02):
    from specproc.fitting.lineshapes import pseudo_voigt

    rng = np.random.default_rng(seed)
    x = np.linspace(0, 100, 1500)
    y = pseudo_voigt(x, 10.0, 40.0, 1.5, 0.4) + pseudo_voigt(x, 5.0, 60.0, 2.0, 0.4) + rng.normal(0, sd, x.size)
    return x, y * scale


def test_fit_redchi_is_one_for_a_fit_down_to_the_noise():
    """Known truth: the right model on white noise gives χ²/ν ≈ 1 within a few √(2/ν), at any scale of
    the data (the 4.9e14 of the issue was lmfit's variance in counts²)."""
    from specproc.fitting.fit import fit_spec
    from specproc.fitting.models import ModelSpec, Peak

    spec = ModelSpec(peaks=[Peak(name="a", center=40.5), Peak(name="b", center=59.5)])
    vals = []
    for seed in range(4):
        x, y = _pair(seed)
        out = fit_spec(spec, x, y)
        nu = out.stats["ndata"] - out.stats["nvarys"]
        vals.append(out.stats["redchi_noise"])
        # sampling spread of chi2/nu is sqrt(2/nu) = 0.037; the robust noise estimate adds ~ as much
        assert abs(out.stats["redchi_noise"] - 1) < 4 * np.sqrt(2 / nu) + 0.1
        assert out.stats["noise_sd"] == pytest.approx(0.02, rel=0.1)
    big = fit_spec(spec, *_pair(0, scale=1e7))
    assert big.stats["redchi"] > 1e9                               # the raw variance scales with the data
    assert big.stats["redchi_noise"] == pytest.approx(vals[0], rel=1e-3)  # the normalised one does not


def test_fit_redchi_flags_a_misfit():
    from specproc.fitting.fit import fit_spec
    from specproc.fitting.models import ModelSpec, Peak

    out = fit_spec(ModelSpec(peaks=[Peak(name="a", center=40.5)]), *_pair(1))   # one line left out
    assert out.stats["redchi_noise"] > 10
