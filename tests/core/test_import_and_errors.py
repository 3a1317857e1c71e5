import subprocess
import sys

import pytest

from specproc.core.errors import ParameterError, ReaderError, SpecprocError
from specproc.core.params import ProcessorParams, validate_params


def test_import_is_lazy():
    """``import specproc`` imports no heavy package (its time is measured in benchmarks/bench_import.py)."""
    code = ("import sys; import specproc; "
            "print([m for m in ('numpy', 'xarray', 'lmfit', 'nmrglue', 'plotly', 'xrayutilities', 'hyperspy', "
            "'pandas', 'scipy', 'pydantic', 'numba') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", f"heavy modules imported eagerly: {out}"
    # the lazy namespaces still resolve
    code = "import specproc as sp; print(sp.read.__module__, sp.nmr.__name__, sp.xrd.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["specproc.io", "specproc.techniques.nmr", "specproc.techniques.xrd"]


def test_error_names_file_and_reason():
    e = ReaderError("truncated fid (100 of 4096 points)", "/data/x/fid")
    assert str(e) == "/data/x/fid: truncated fid (100 of 4096 points)"
    assert isinstance(e, SpecprocError)
    assert e.to_dict() == {"file": "/data/x/fid", "error": "truncated fid (100 of 4096 points)", "type": "ReaderError"}


class P(ProcessorParams):
    n: int = 1
    lineshape: str = "gaussian"


def test_params_validation_is_one_clear_error():
    assert validate_params(P, {"n": "3"}).n == 3
    with pytest.raises(ParameterError, match="nn"):
        validate_params(P, {"nn": 3}, where="pipe.yaml")
    with pytest.raises(ParameterError, match="pipe.yaml"):
        validate_params(P, {"n": "x"}, where="pipe.yaml")
