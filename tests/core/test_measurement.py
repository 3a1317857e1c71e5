import json

import numpy as np
import pytest

from specproc.core.errors import ReaderError, SpecprocError
from specproc.core.measurement import check_measurement, label, new_measurement
from specproc.core.result import Quantity, Result, jsonable


def _m(values=None, **kw):
    x = np.linspace(0, 10, 11)
    return new_measurement(np.ones(11) if values is None else values, {"shift": (x, "ppm")},
                           technique="nmr", **kw)


def test_measurement_has_units_metadata_provenance():
    m = _m(sample="LiBH4", provenance={"source": "/x/fid", "sha256": "ab"}, acquisition={"sf_mhz": 128.4})
    assert m.dims == ("shift",)
    assert m.coords["shift"].attrs["units"] == "ppm"
    assert m.attrs["technique"] == "nmr" and m.attrs["sample"] == "LiBH4"
    assert m.attrs["acquisition"]["sf_mhz"] == 128.4
    assert m.attrs["provenance"]["source"] == "/x/fid"
    assert label(m) == "LiBH4"


@pytest.mark.parametrize("values, reason", [
    (np.array([]), "no data"),
    (np.r_[np.ones(10), np.nan], "NaN"),
    (np.ones((2, 11)), "dims"),
    (np.ones(10), "axis"),
])
def test_bad_data_is_a_clear_error(values, reason):
    x = np.linspace(0, 10, 11)
    with pytest.raises(ReaderError) as e:
        new_measurement(values, {"shift": (x[:values.shape[-1]] if reason == "no data" else x, "ppm")},
                        technique="nmr", source="/data/bad.csv")
    assert "/data/bad.csv" in str(e.value) and reason in str(e.value)


def test_nan_allowed_for_masked_maps():
    m = new_measurement(np.array([[1.0, np.nan]]), {"y": ([0.0], "m"), "x": ([0.0, 1.0], "m")},
                        technique="afm", allow_nan=True)
    assert np.isnan(m.values[0, 1])


def test_check_measurement_rejects_wrong_technique():
    with pytest.raises(SpecprocError, match="xrd"):
        check_measurement(_m(), "xrd")
    with pytest.raises(SpecprocError):
        check_measurement(np.ones(3))


def test_result_to_dict_is_plain_json():
    import pandas as pd

    r = Result("nmr.deconvolve", "nmr", sample="<script>alert(1)</script>",
               quantities={"BH4.center_ppm": Quantity(np.float64(-44.3), np.float32(0.01), "ppm")},
               tables={"components": pd.DataFrame({"name": ["BH4"], "center_ppm": [-44.3], "x": [np.nan]})},
               stats={"r2": np.float64(0.99), "success": np.bool_(True)},
               plots=[{"kind": "spectrum", "x": np.arange(3.0), "series": [{"name": "data", "y": np.ones(3), "role": "data"}]}])
    d = r.to_dict(plots=True)
    s = json.dumps(d, allow_nan=False)
    assert json.loads(s)["quantities"]["BH4.center_ppm"]["value"] == -44.3
    assert d["tables"]["components"][0]["x"] is None  # NaN -> null, valid JSON
    html = r._repr_html_()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert "plotly" in html.lower()
    assert r.table.shape == (1, 3)


def test_jsonable_handles_numpy():
    assert jsonable({"a": np.arange(2), "b": np.float32(np.inf), "c": (1, 2)}) == {"a": [0, 1], "b": None, "c": [1, 2]}
