"""``plugins.register``: a reader and a processor defined in a notebook or script, used like installed ones."""
from __future__ import annotations

import numpy as np
import pytest

import specproc as sp
from specproc import plugins
from specproc.core.errors import PluginError, SpecprocError
from specproc.core.measurement import new_measurement
from specproc.core.params import ProcessorParams
from specproc.core.processor import Processor
from specproc.core.result import Quantity, Result
from specproc.io.base import Reader


class SumReader(Reader):
    name = "session-sum"
    description = "SUM test format: 'SUM' then numbers"
    technique = "ftir"
    extensions = (".sum",)

    def guess_can_open(self, path):
        return path.is_file() and path.read_bytes()[:3] == b"SUM"

    def read(self, path):
        vals = [float(v) for v in path.read_text().split()[1:]]
        if not vals:
            raise ValueError("no values")  # the reader guard turns this into a ReaderError
        return new_measurement(vals, {"wavenumber": (np.arange(len(vals), dtype=float), "1/cm")},
                               technique="ftir", provenance={"source": str(path)})


class TotalParams(ProcessorParams):
    scale: float = 1.0


class Total(Processor):
    name = "session.total"
    technique = "ftir"
    description = "scaled sum of the values"
    Params = TotalParams

    def run(self, data, params):
        return Result(self.name, "ftir", quantities={"total": Quantity(float(data.sum()) * params.scale)})


@pytest.fixture
def registered():
    plugins.register("readers", "session-sum", SumReader)
    plugins.register("processors", "session.total", Total)
    yield
    plugins.unregister("readers", "session-sum")
    plugins.unregister("processors", "session.total")


def test_registered_plugins_are_listed_read_and_run_in_worker_processes(registered, tmp_path):
    from specproc.execute import Task, execute

    files = []
    for i in range(4):
        f = tmp_path / f"s{i}.sum"
        f.write_text("SUM " + " ".join(str(v) for v in range(i + 3)))
        files.append(f)
    bad = tmp_path / "bad.sum"
    bad.write_text("SUM")
    assert "session-sum" in plugins.available("readers") and "session.total" in plugins.available("processors")
    df = sp.list_plugins()
    assert df[df.name == "session-sum"].iloc[0]["package"] == "<session>"
    m = sp.read(files[2])                          # chosen by content among the installed readers
    assert m.values.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    proc = plugins.get("processors", "session.total")
    params = proc.validate({"scale": 2.0}).model_dump(mode="json")
    tasks = [Task(index=k, measurement=0, sample=None, technique="ftir", path=str(f), processor="session.total",
                  params=params) for k, f in enumerate(files + [bad])]
    out = {o.task.index: o for o in execute(tasks, jobs=2)}
    totals = [out[k].result.quantities["total"].value for k in range(4)]
    assert totals == [2.0 * sum(range(i + 3)) for i in range(4)]
    assert isinstance(out[4].error, SpecprocError) and "bad.sum" in str(out[4].error)


def test_register_refuses_clashes_and_unknown_kinds(registered):
    with pytest.raises(PluginError, match="already registered"):
        plugins.register("readers", "session-sum", SumReader)
    with pytest.raises(PluginError, match="already registered"):
        plugins.register("readers", "spc", SumReader)           # an installed reader is never hidden silently
    with pytest.raises(PluginError, match="unknown plugin kind"):
        plugins.register("widgets", "x", SumReader)
    plugins.register("readers", "session-sum", SumReader, replace=True)
    plugins.unregister("readers", "session-sum")
    assert "session-sum" not in plugins.available("readers")
    assert "spc" in plugins.available("readers")


def test_registered_technique_object_reaches_the_cli_the_report_and_sp(tmp_path):
    """A ``Technique`` registered in the session: its command, report section and title are used,
    and ``sp.<name>`` is its api module; the name is freed again by ``unregister``."""
    import types

    import pandas as pd

    from specproc.cli import build_parser
    from specproc.core.section import ReportSection
    from specproc.core.technique import Technique
    from specproc.report import render_results

    api = types.ModuleType("session_api")
    api.total = lambda values: sum(values)
    calls = []

    def add_cli(sub):
        sub.add_parser("sessiontech", help="the session technique's command")

    def section(results):
        calls.append(len(results))
        return ReportSection("sessiontech", "Session technique", "",
                             [("totals", pd.DataFrame({"total": [r.quantities["total"].value for r in results]}))], [])

    tech = Technique("sessiontech", "Session technique", processors=("session.total",), api=api,
                     add_cli=add_cli, report_section=section, quantities=[("total", "", "sum of the values")])
    plugins.register("techniques", "sessiontech", tech)
    try:
        assert plugins.get("techniques", "sessiontech") is tech and sp.sessiontech.total([1, 2]) == 3
        df = sp.list_plugins()
        assert df[(df.kind == "technique") & (df.name == "sessiontech")].iloc[0]["package"] == "<session>"
        assert "sessiontech" in build_parser().format_help()
        res = [Result("session.total", "sessiontech", f"s{i}", quantities={"total": Quantity(float(i))})
               for i in range(3)]
        html = render_results(res, tmp_path / "r.html", title="session").read_text()
        assert calls == [3] and "Session technique" in html and "totals" in html
    finally:
        plugins.unregister("techniques", "sessiontech")
    assert "sessiontech" not in plugins.available("techniques")
    with pytest.raises(AttributeError):
        sp.sessiontech
