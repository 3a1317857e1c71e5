"""A toy technique built from the "Adding a technique" list of docs/architecture.md alone.

The steps of that list, each done here for a made-up technique ``toy`` (peaks on a ``position``
axis in mm) in a package written to a temporary folder:

1. a reader (``Reader`` subclass, ``new_measurement`` with units and physical ``axis_ranges``,
   provenance);
2. ``processors.py``: a ``Processor`` with a pydantic ``Params`` built from the shared field types
   (``Region``, ``PeaksInput``, ``Shape``), ``run`` on the toolkit (``pick_peaks``, ``fit_spec``),
   ``run_many`` on ``fit_batch``;
3. ``__init__.py`` (user function and the one ``technique = Technique(...)`` declaration: title,
   readers, processors, ``api``, ``add_cli`` / ``report_section`` as ``"module:attr"``, quantities),
   ``report.py`` (a ``ReportSection`` titled by the technique object), ``cli.py`` (arguments, ``entry``,
   ``run_technique``);
4. entry points in ``specproc.readers``, ``specproc.processors``, ``specproc.techniques`` (the
   ``technique`` object) — declared in the package's ``entry_points.txt`` (a ``.dist-info`` on
   ``sys.path``, what an install leaves; no pip) and picked up by ``specproc.plugins.refresh()``;
5. contract tests (``ReaderContract``, ``ProcessorContract``) and a recovery test from a known truth.

Then the CLI, the executor, the evidence engine and the report pick it up without edits.
"""
from __future__ import annotations

import importlib
import json
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import specproc as sp
from specproc import plugins
from specproc.testing.contract import ProcessorContract, ReaderContract

PACKAGE = {
    "toytech/__init__.py": '''
        """Toy technique: Gaussian peaks on a position axis (mm)."""
        from specproc.core.technique import Technique

        TITLE = "Toy peaks"

        technique = Technique(
            name="toy", title=TITLE, description="Gaussian peaks on a position axis",
            readers=("toy",), processors=("toy.fit_peaks",), api="toytech",
            add_cli="toytech.cli:add_cli", report_section="toytech.report:report_section",
            quantities=[("<peak>.center_mm", "mm", "fitted peak centre")])

        def fit_peaks(m, **kwargs):
            from .processors import FitPeaks
            return FitPeaks()(m, **kwargs)
        ''',
    "toytech/io_toy.py": '''
        from pathlib import Path
        from typing import ClassVar
        import hashlib
        import numpy as np
        from specproc.core.errors import ReaderError
        from specproc.core.measurement import new_measurement
        from specproc.io.base import Reader

        class ToyReader(Reader):
            name: ClassVar[str] = "toy"
            description: ClassVar[str] = "TOY1 text: a magic line, then 'position_mm intensity' rows"
            technique: ClassVar[str] = "toy"
            extensions: ClassVar[tuple[str, ...]] = (".toy",)

            def guess_can_open(self, path) -> bool:
                p = Path(path)
                try:
                    return p.is_file() and p.read_bytes()[:5] == b"TOY1\\n"
                except OSError:
                    return False

            def read(self, path):
                p = Path(path)
                raw = p.read_bytes()
                if raw[:5] != b"TOY1\\n":
                    raise ReaderError("not a TOY1 file (no magic line)", p)
                try:
                    xy = np.loadtxt(raw[5:].decode("ascii").splitlines(), ndmin=2)
                except (ValueError, UnicodeDecodeError) as exc:
                    raise ReaderError(f"malformed TOY1 rows ({exc})", p) from None
                if xy.shape[0] < 8 or xy.shape[1] != 2:
                    raise ReaderError(f"a TOY1 spectrum needs >= 8 rows of 2 columns, got {xy.shape}", p)
                return new_measurement(xy[:, 1], {"position": (xy[:, 0], "mm")}, technique="toy",
                                       units="count", sample=p.stem, axis_ranges={"position": (-1e3, 1e3)},
                                       provenance={"source": str(p.resolve()),
                                                   "sha256": hashlib.sha256(raw).hexdigest(),
                                                   "reader": self.name, "reader_version": "1"})
        ''',
    "toytech/processors.py": '''
        from typing import ClassVar
        import numpy as np
        from specproc.core.params import PeaksInput, ProcessorParams, Region
        from specproc.core.processor import Processor
        from specproc.core.result import Quantities, Result
        from specproc.fitting.models import ModelSpec, Peak, Shape, prefix_of

        class FitPeaksParams(ProcessorParams):
            region: Region | None = None
            peaks: PeaksInput = None
            shape: Shape = "gaussian"
            max_peaks: int = 3

        def _xy(m, p):
            x = np.asarray(m.coords["position"].values, float)
            y = np.asarray(m.values, float)
            if p.region is not None:
                lo, hi = sorted(p.region)
                keep = (x >= lo) & (x <= hi)
                x, y = x[keep], y[keep]
            return x, y

        def _spec(x, y, p):
            from specproc.fitting.peaks import pick_peaks
            found = sorted(pick_peaks(x, y, max_peaks=p.max_peaks), key=lambda d: d["center"])
            return ModelSpec(peaks=[Peak(name=f"p{i}", shape=p.shape, center=d["center"], fwhm=d["fwhm"])
                                    for i, d in enumerate(found)])

        def _result(m, p, spec, values, errors, warnings):
            qs = Quantities()   # made by key (component, property): the name is derived from it
            for pk in spec.peaks:
                qs.add(pk.name, "center_mm", values[prefix_of(pk.name) + "center"],
                       errors.get(prefix_of(pk.name) + "center"), "mm")
            rows = [{"peak": pk.name, "center_mm": qs[f"{pk.name}.center_mm"].value} for pk in spec.peaks]
            import pandas as pd
            return Result("toy.fit_peaks", "toy", m.attrs.get("sample", ""), qs,
                          tables={"peaks": pd.DataFrame(rows)}, main_table="peaks",
                          params=p.model_dump(mode="json"), inputs=[dict(m.attrs.get("provenance", {}))],
                          warnings=list(warnings))

        class FitPeaks(Processor):
            name: ClassVar[str] = "toy.fit_peaks"
            technique: ClassVar[str] = "toy"
            description: ClassVar[str] = "Gaussian peaks found and fitted (toy)"
            Params = FitPeaksParams

            def run(self, m, params):
                from specproc.fitting.fit import fit_spec
                x, y = _xy(m, params)
                spec = _spec(x, y, params)
                out = fit_spec(spec, x, y)
                errs = {k: v for k, v in out.stderr.items()} if hasattr(out, "stderr") else {}
                return _result(m, params, spec, out.values, errs, out.warnings)

            def run_many(self, data, params):
                from specproc.fitting.batch import fit_batch
                out = []
                good = []
                from specproc.core.errors import ProcessingError
                for i, m in enumerate(data):
                    if isinstance(m, BaseException):
                        out.append(m)
                    elif not np.isfinite(np.asarray(m.values, float)).all():
                        out.append(ProcessingError("non-finite intensities",
                                                   (m.attrs.get("provenance") or {}).get("source")))
                    else:
                        out.append(None)
                        good.append(i)
                if not good:
                    return out
                x, _ = _xy(data[good[0]], params)
                Y = np.stack([_xy(data[i], params)[1] for i in good])
                spec = _spec(x, Y.mean(axis=0), params)
                model, lp = spec.to_lmfit(x, Y.mean(axis=0))
                ds = fit_batch(model, x, Y, params=lp)
                for k, i in enumerate(good):
                    vals = {n: float(ds[n].values[k]) for n in lp if n in ds}
                    errs = {n: float(ds[n + "_stderr"].values[k]) for n in lp if n + "_stderr" in ds}
                    out[i] = _result(data[i], params, spec, vals, errs, [])
                return out
        ''',
    "toytech/report.py": '''
        from specproc import plugins
        from specproc.core.result import Figures
        from specproc.core.section import ReportSection

        TITLE = plugins.get("techniques", "toy").title

        def report_section(results):
            import pandas as pd
            rows = [{"sample": r.sample, "peak": n.split(".")[0], "center_mm": q.value, "stderr": q.stderr}
                    for r in results for n, q in r.quantities.items()]
            return ReportSection("toy", TITLE, "Peaks found by the toolkit and fitted by fit_spec.",
                                 [("Toy: peak centres", pd.DataFrame(rows))], Figures(results), list(results))
        ''',
    "toytech/cli.py": '''
        def add_cli(subparsers):
            from specproc.runner import add_common_arguments, region_arg
            p = subparsers.add_parser("toy", help="toy peaks")
            add_common_arguments(p, "TOY1 files")
            p.add_argument("--region", type=region_arg, default=None, metavar="LO:HI")
            p.set_defaults(func=run_cli)

        def run_cli(args):
            from specproc.runner import run_technique
            return run_technique(args, processor="toy.fit_peaks", params={"region": args.region},
                                 entry=entry, title="specproc toy")

        def entry(r, path):
            return {"file": path, "sample": r.sample,
                    "peaks": [{"name": n.split(".")[0], "center_mm": q.value, "center_mm_stderr": q.stderr}
                              for n, q in r.quantities.items()], "warnings": list(r.warnings)}
        ''',
    "toytech-0.0.1.dist-info/METADATA": '''
        Metadata-Version: 2.1
        Name: toytech
        Version: 0.0.1
        ''',
    "toytech-0.0.1.dist-info/entry_points.txt": '''
        [specproc.readers]
        toy = toytech.io_toy:ToyReader

        [specproc.processors]
        toy.fit_peaks = toytech.processors:FitPeaks

        [specproc.techniques]
        toy = toytech:technique
        ''',
}

TRUTH = {"centers": (12.0, 31.5), "heights": (40.0, 25.0), "sigma": (1.2, 2.0), "noise": 0.5}


def _write_spectrum(path: Path, seed: int, shift: float = 0.0) -> Path:
    rng = np.random.default_rng(seed)
    x = np.linspace(0.0, 50.0, 801)
    y = 3.0 + sum(h * np.exp(-(x - c - shift) ** 2 / (2 * s ** 2))
                  for c, h, s in zip(TRUTH["centers"], TRUTH["heights"], TRUTH["sigma"]))
    y = y + rng.normal(0, TRUTH["noise"], x.size)
    path.write_text("TOY1\n" + "\n".join(f"{a:.5f} {b:.5f}" for a, b in zip(x, y)) + "\n")
    return path


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy_site")
    for name, text in PACKAGE.items():
        f = root / name
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(textwrap.dedent(text).lstrip())
    data = tmp_path_factory.mktemp("toy_data")
    files = [_write_spectrum(data / f"s{i}.toy", i, shift=0.1 * i) for i in range(3)]
    sys.path.insert(0, str(root))
    importlib.invalidate_caches()
    plugins.refresh()
    try:
        yield files
    finally:
        sys.path.remove(str(root))
        for mod in [m for m in sys.modules if m == "toytech" or m.startswith("toytech.")]:
            del sys.modules[mod]
        importlib.invalidate_caches()
        plugins.refresh()


class TestToyReader(ReaderContract):
    reader = "toy"
    truncation_fails = False  # a text format: a truncated file may still hold >= 8 rows

    @pytest.fixture(autouse=True)
    def _files(self, toy):
        self._toy_files = toy

    def good_files(self):
        return list(self._toy_files)


class TestToyProcessor(ProcessorContract):
    processor = "toy.fit_peaks"
    params = {"region": (0.0, 50.0)}

    @pytest.fixture(autouse=True)
    def _files(self, toy):
        self._toy_files = toy

    def make_input(self):
        return sp.read(self._toy_files[0])


def test_registered_and_sniffed(toy):
    import warnings

    from specproc.core.technique import Technique

    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)      # a Technique object: no adapter involved
        tech = plugins.get("techniques", "toy")
        df = sp.list_plugins()
    assert isinstance(tech, Technique) and tech.title == "Toy peaks" and tech.default_processor == "toy.fit_peaks"
    assert [q.pattern for q in tech.quantities] == ["<peak>.center_mm"]
    assert set(df[df.package == "toytech"].name) == {"toy", "toy.fit_peaks"} | {"toy"}
    assert df[(df.kind == "technique") & (df.name == "toy")].iloc[0]["description"].startswith("Toy peaks")
    assert sp.toy.fit_peaks is sys.modules["toytech"].fit_peaks            # sp.<name> is the technique's api
    # every declared reader and processor is registered
    assert set(tech.readers) <= set(plugins.available("readers"))
    assert set(tech.processors) <= set(plugins.available("processors"))
    m = sp.read(toy[0])
    assert m.attrs["technique"] == "toy" and m.attrs["provenance"]["reader"] == "toy"
    assert m.coords["position"].attrs["units"] == "mm"


def test_known_peaks_recovered(toy):
    r = plugins.get("processors", "toy.fit_peaks")(sp.read(toy[0]))
    for i, c in enumerate(TRUTH["centers"]):
        q = r.quantities[f"p{i}.center_mm"]
        assert q.stderr is not None and abs(q.value - c) < 4 * q.stderr + 1e-3, (q, c)


def test_executor_cli_and_report(toy, tmp_path, capsys):
    from specproc.cli import main
    from specproc.execute import Task, execute
    from specproc.report import render_results

    bad = tmp_path / "broken.toy"
    bad.write_text("TOY1\n1 2\n")
    paths = [str(p) for p in toy] + [str(bad)]
    spec = plugins.get("processors", "toy.fit_peaks").validate({}).model_dump(mode="json")
    tasks = [Task(i, 0, None, "toy", p, "toy.fit_peaks", spec) for i, p in enumerate(paths)]
    outs = sorted(execute(tasks, jobs=2, processes=False), key=lambda o: o.task.index)
    assert [o.error is None for o in outs] == [True, True, True, False]       # one bad file fails alone
    assert "broken.toy" in str(outs[-1].error) and "8 rows" in str(outs[-1].error)
    results = [o.result for o in outs[:3]]
    for k, r in enumerate(results):
        assert r.quantities["p0.center_mm"].value == pytest.approx(TRUTH["centers"][0] + 0.1 * k, abs=0.05)
    # the evidence engine compares the toy's quantities like any other
    c = sp.evidence.compare(results[0], results[2], quantity="p1.center_mm")
    assert c.value == pytest.approx(0.2, abs=4 * c.stderr)

    report = tmp_path / "toy.html"
    render_results(results, report, title="toy run")
    html = report.read_text()
    assert "Toy peaks" in html and "Toy: peak centres" in html

    code = main(["toy", *paths, "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1 and len(doc) == 4 and "error" in doc[-1]
    assert doc[0]["peaks"][0]["center_mm"] == pytest.approx(TRUTH["centers"][0], abs=0.05)
