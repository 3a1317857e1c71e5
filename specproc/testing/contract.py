"""Contract tests every reader and processor plugin reuses (built-in or third-party).

pybaselines' lesson: one tester class per kind of plugin checks the common promises, and each
plugin's test class only says *what* to test it on. Subclass in a test module::

    from specproc.testing.contract import ReaderContract, ProcessorContract

    class TestMyReader(ReaderContract):
        reader = "my-format"                       # plugin name in ``specproc.readers``
        def good_files(self):                      # real or generated files of the format
            return [Path("tests/data/example.myf")]

    class TestMyProcessor(ProcessorContract):
        processor = "mytech.fit"
        def make_input(self):                      # a measurement with a known answer
            return sp.read(...)
        params = {"peaks": [1.0]}

Reader promises: registered with a description and an explicit ``read`` signature; content
sniffing recognises its files; every axis has units; provenance (source, sha256, reader);
empty, truncated and garbage files give a :class:`SpecprocError` naming the file; the input
folder is never written to; the measurement round-trips through ``sp.save``/``sp.read``.
Processor promises: a pydantic ``Params`` with explicit fields that refuses unknown keys; the
input is not mutated; the Result's ``to_dict`` is plain JSON; ``run_many`` returns one item per
input, the error of a bad input in its place; strings from files are escaped in ``_repr_html_``.
"""
from __future__ import annotations

import copy
import inspect
import json
import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

__all__ = ["ReaderContract", "ProcessorContract"]


def _snapshot(folder: Path) -> dict:
    out = {}
    for root, _dirs, files in os.walk(folder):
        for f in files:
            p = Path(root) / f
            st = p.stat()
            out[str(p)] = (st.st_size, st.st_mtime_ns)
    return out


class ReaderContract:
    """Common promises of a reader plugin (see the module docstring)."""

    reader: ClassVar[str] = ""
    #: files whose truncation must be refused (binary formats); text formats may be lenient
    truncation_fails: ClassVar[bool] = True

    def good_files(self) -> list[Path]:  # pragma: no cover - to override
        raise NotImplementedError

    # ------------------------------------------------------------------ helpers
    def _plugin(self):
        from specproc import plugins

        return plugins.get("readers", self.reader)

    def _good(self):
        import pytest

        files = [Path(f) for f in self.good_files()]
        files = [f for f in files if f.exists()]
        if not files:
            pytest.skip(f"no example files for reader {self.reader!r}")
        return files

    # ------------------------------------------------------------------ promises
    def test_registered_with_explicit_signature(self):
        r = self._plugin()
        assert r.description, "a reader needs a description"
        sig = inspect.signature(r.read)
        assert not any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values()), "read() must not take **kwargs"

    def test_sniffing_recognises_its_files(self):
        from specproc.io import guess_reader

        for f in self._good():
            assert guess_reader(f).name == self.reader, f

    def test_axes_units_and_provenance(self):
        import specproc as sp

        for f in self._good():
            m = sp.read(f, reader=self.reader)
            assert m.attrs.get("technique"), f
            for d in m.dims:
                assert d in m.coords, f"{f}: dim {d!r} has no coordinate"
                assert isinstance(m.coords[d].attrs.get("units"), str), f"{f}: axis {d!r} has no units"
            prov = m.attrs.get("provenance") or {}
            assert prov.get("source") and prov.get("reader"), f
            assert len(str(prov.get("sha256", ""))) == 64, f

    def test_bad_files_name_the_file(self, tmp_path):
        import pytest

        import specproc as sp
        from specproc.core.errors import SpecprocError

        good = self._good()[0]
        suffix = good.suffix if good.is_file() else ""
        cases = {"empty": b"", "garbage": bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8))}
        if good.is_file() and self.truncation_fails:
            data = good.read_bytes()
            cases["truncated"] = data[: max(1, len(data) // 3)]
        for what, data in cases.items():
            bad = tmp_path / f"bad_{what}{suffix}"
            bad.write_bytes(data)
            with pytest.raises(SpecprocError) as info:
                sp.read(bad, reader=self.reader)
            assert str(bad) in str(info.value) or bad.name in str(info.value), (what, str(info.value))

    def test_never_writes_next_to_input(self):
        import specproc as sp

        for f in self._good():
            folder = f if f.is_dir() else f.parent
            before = _snapshot(folder)
            sp.read(f, reader=self.reader)
            assert _snapshot(folder) == before, f"{self.reader} wrote into {folder}"

    def test_netcdf_round_trip(self, tmp_path):
        import specproc as sp

        f = self._good()[0]
        m = sp.read(f, reader=self.reader)
        out = sp.save(m, tmp_path / "m.nc")
        back = sp.read(out)
        assert back.dims == m.dims and back.shape == m.shape
        np.testing.assert_allclose(np.asarray(back.values), np.asarray(m.values), equal_nan=True)
        for d in m.dims:
            np.testing.assert_array_equal(np.asarray(back.coords[d].values), np.asarray(m.coords[d].values))
            assert back.coords[d].attrs.get("units") == m.coords[d].attrs.get("units")
        assert back.attrs["technique"] == m.attrs["technique"]
        assert back.attrs["provenance"]["derived_from"]["sha256"] == m.attrs["provenance"]["sha256"]


class ProcessorContract:
    """Common promises of a processor plugin (see the module docstring)."""

    processor: ClassVar[str] = ""
    params: ClassVar[dict[str, Any]] = {}

    def make_input(self):  # pragma: no cover - to override
        raise NotImplementedError

    def _proc(self):
        from specproc import plugins

        return plugins.get("processors", self.processor)

    def test_params_schema_is_explicit(self):
        import pytest

        from specproc.core.errors import ParameterError
        from specproc.core.params import ProcessorParams

        proc = self._proc()
        assert issubclass(proc.Params, ProcessorParams)
        assert proc.name == self.processor and proc.technique and proc.description
        with pytest.raises(ParameterError):
            proc.validate({"no_such_parameter_xyz": 1})
        p = proc.validate(self.params)
        assert proc.validate(p) is p, "a validated Params object must pass through untouched"

    def test_result_is_plain_json_and_input_untouched(self):
        m = self.make_input()
        before_vals = np.array(m.values, copy=True)
        before_attrs = copy.deepcopy(dict(m.attrs))
        r = self._proc()(m, self.params)
        np.testing.assert_array_equal(np.asarray(m.values), before_vals)
        assert dict(m.attrs) == before_attrs, "the processor changed its input's metadata"
        d = r.to_dict()
        json.dumps(d, allow_nan=False)
        assert d["processor"] == self.processor
        assert isinstance(r.warnings, list)
        for name, q in r.quantities.items():
            if q.stderr is not None:
                assert np.isfinite(q.stderr) and q.stderr >= 0, name
            # made by key (component, property), the name derived from it: nothing parses names later
            assert q.keyed and q.name == name, f"quantity {name!r} has no structured key (use Result.add_quantity)"

    def test_run_many_returns_one_item_per_input(self):
        from specproc.core.errors import SpecprocError

        m = self.make_input()
        bad = m.copy(data=np.full(m.shape, np.nan, dtype=m.dtype)) if m.ndim else m
        out = self._proc().run_many([m, bad], self._proc().validate(self.params))
        assert isinstance(out, list) and len(out) == 2
        assert not isinstance(out[0], Exception)
        assert isinstance(out[1], SpecprocError), f"a NaN input must fail with a SpecprocError, got {out[1]!r}"

    def test_preprocessed_input_gives_the_same_result(self):
        """What ``preprocess`` returns (the command runner applies it in the reading workers) is
        accepted by ``run`` and ``run_many`` with the same quantities as the measurement itself,
        also as a copy (the runner's workers send it through a pipe: tests/test_runner.py)."""
        proc = self._proc()
        p = proc.validate(self.params)
        m = self.make_input()
        pre = copy.deepcopy(proc.preprocess(m, p))
        a, b = proc.run(m, p), proc.run(pre, p)
        assert set(a.quantities) == set(b.quantities)
        for name, q in a.quantities.items():
            v, w = q.value, b.quantities[name].value
            if isinstance(v, (int, float)) and isinstance(w, (int, float)):
                assert (np.isnan(v) and np.isnan(w)) or v == w or abs(v - w) <= 1e-9 * max(abs(v), abs(w)), name
            else:
                assert v == w, name
        out = proc.run_many([pre, pre], p)
        assert len(out) == 2 and not any(isinstance(o, Exception) for o in out)

    def test_html_escapes_strings_from_files(self):
        m = self.make_input().copy()
        m.attrs = dict(m.attrs, sample="<script>alert(1)</script>")
        r = self._proc()(m, self.params)
        assert "<script>alert(1)</script>" not in r._repr_html_()
