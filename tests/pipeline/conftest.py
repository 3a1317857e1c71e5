"""A tiny fake technique (reader + processor + technique module) registered for pipeline tests.

Files ``*.fk`` are JSON: ``{"center": c, "width": w, "noise": s, "seed": n}``; the reader
synthesises a Gaussian with noise, the processor fits it with scipy and reports
``peak.center_x`` / ``peak.fwhm_x`` with standard errors — known truth, real fit.
"""
from __future__ import annotations

import json
import types
from pathlib import Path

import numpy as np
import pytest

import specproc.plugins as plugins
from specproc.core.errors import ProcessingError, ReaderError
from specproc.core.measurement import new_measurement
from specproc.core.params import ProcessorParams
from specproc.core.processor import Processor
from specproc.core.provenance import file_provenance
from specproc.core.result import Quantities, Result
from specproc.core.section import default_section
from specproc.core.technique import Technique
from specproc.io.base import Reader

FWHM = 2.0 * np.sqrt(2.0 * np.log(2.0))


class FakeReader(Reader):
    name = "fake"
    description = "fake JSON peak files for tests"
    technique = "fake"
    extensions = (".fk",)

    def guess_can_open(self, path):
        return str(path).endswith(".fk")

    def read(self, path):
        try:
            d = json.loads(Path(path).read_text())
        except Exception as exc:
            raise ReaderError(f"not a fake file: {exc}", path) from None
        if d.get("sleep"):  # slow files for fault-injection tests (kill -9 while running)
            import time

            time.sleep(float(d["sleep"]))
        rng = np.random.default_rng(d.get("seed", 0))
        x = np.linspace(-10, 10, 801)
        y = np.exp(-0.5 * ((x - d["center"]) / d.get("width", 1.0)) ** 2) + rng.normal(0, d.get("noise", 0.01), x.size)
        return new_measurement(y, {"x": (x, "mm")}, technique="fake", sample=d.get("sample"),
                               metadata={"nucleus": d.get("nucleus")},
                               provenance=file_provenance(path, "fake"), source=str(path))


class FitParams(ProcessorParams):
    width_guess: float = 1.0
    species: list[str] = []


class FakeFit(Processor):
    name = "fake.fit"
    technique = "fake"
    description = "Gaussian fit (tests)"
    Params = FitParams

    def run(self, data, params):
        from scipy.optimize import curve_fit

        x, y = data.coords["x"].values, data.values
        if y.max() < 0.5:
            raise ProcessingError("no peak found", data.attrs["provenance"].get("source"))
        g = lambda x, a, c, s: a * np.exp(-0.5 * ((x - c) / s) ** 2)  # noqa: E731
        p, cov = curve_fit(g, x, y, p0=[y.max(), x[np.argmax(y)], params.width_guess])
        e = np.sqrt(np.diag(cov))
        q = Quantities()  # by structured key (component, property): the store's columns
        q.add("peak", "center_x", p[1], e[1], "mm")
        q.add("peak", "fwhm_x", abs(p[2]) * FWHM, e[2] * FWHM, "mm")
        for s in params.species:
            q.add(f"phase({s})", "present", 1.0, None, "")
        import pandas as pd

        return Result(self.name, "fake", data.attrs.get("sample") or "", q,
                      tables={"peaks": pd.DataFrame([{"sample": data.attrs.get("sample"), "center": p[1]}])},
                      plots=[{"kind": "spectrum", "title": f"fit {data.attrs.get('sample')}", "x": x,
                              "x_label": "x (mm)", "series": [{"name": str(data.attrs.get("sample")), "y": y,
                                                              "role": "data"},
                                                             {"name": "fit", "y": g(x, *p), "role": "fit"}]}],
                      params=params.model_dump(), inputs=[dict(data.attrs["provenance"])],
                      meta={"nucleus": data.attrs.get("nucleus")})


fake_technique = Technique(
    "fake", "Fake technique", processors=("fake.fit",), readers=("fake",),
    report_section=lambda results: default_section("fake", "Fake technique", results, "Synthetic Gaussian peaks."))

#: "ghost" is a declared technique without any processor (like a technique whose optional
#: dependencies are missing): its pipeline entries are skipped and its claims read "no data".
FAKES = {"readers": {"fake": FakeReader()}, "processors": {"fake.fit": FakeFit()},
         "techniques": {"fake": fake_technique, "ghost": Technique("ghost", "Ghost")}}


def _fake_discover(orig):
    def discover(kind):
        out = dict(orig(kind))
        for name, obj in FAKES.get(kind, {}).items():
            out[name] = plugins.PluginInfo(name, kind, f"tests:{name}", "tests", "0", None, obj)
        return out

    return discover


def install_fakes() -> None:
    """Register the fakes for the rest of this process (used by the subprocess CLI helper)."""
    plugins._discover = _fake_discover(plugins._discover)


@pytest.fixture(autouse=True)
def _private_cache_key(tmp_path_factory, monkeypatch):
    """Pipeline tests sign cache entries with a throw-away key, not the user's own."""
    import specproc.pipeline.cache as cache

    key = tmp_path_factory.getbasetemp() / "cache.key"
    monkeypatch.setenv("SPECPROC_CACHE_KEY_FILE", str(key))
    monkeypatch.setattr(cache, "_KEY_CACHE", {})


@pytest.fixture
def fake_plugins(monkeypatch):
    monkeypatch.setattr(plugins, "_discover", _fake_discover(plugins._discover))
    yield FAKES


#: hidden files every output folder keeps on purpose: the glob-exclusion marker and the run lock
KEPT = {".specproc-output", ".specproc.lock"}


def leftovers(out: Path) -> list[str]:
    """Temporary files, partial run folders and WALs left in an output folder."""
    return sorted(str(p.relative_to(out)) for p in out.rglob("*")
                  if (p.name.startswith(".") and p.name not in KEPT) or p.suffix in (".tmp", ".wal"))


def write_fake(path: Path, center: float, width: float = 1.0, noise: float = 0.01, seed: int = 0, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(center=center, width=width, noise=noise, seed=seed, **kw)))
    return path


@pytest.fixture
def fake_study(tmp_path):
    """A data folder + pipeline YAML: samples A (center 1.0) and B (center 2.5), repeats, one broken file."""
    return make_fake_study(tmp_path)


def make_fake_study(tmp_path: Path) -> Path:
    """The files of :func:`fake_study` under ``tmp_path``; returns the YAML (``pipes/study.yaml``)."""
    data = tmp_path / "data"
    write_fake(data / "A" / "a1.fk", 1.0, seed=1)
    write_fake(data / "A" / "a2.fk", 1.0, seed=2)
    write_fake(data / "B" / "b1.fk", 2.5, width=1.5, seed=3)
    (data / "B" / "broken.fk").write_text("{not json")
    yaml_text = """\
name: fake study
root: data
measurements:
  - {sample: A, technique: fake, files: "A/*.fk", processor: fake.fit, params: {width_guess: 1.2}}
  - sample: B
    technique: fake
    files: ["B/*.fk"]
    processor: fake.fit
    params: {species: [X]}
  - {sample: C, technique: ghost, files: "ghost/*.spa", processor: ghost.analyse}
comparisons:
  - id: shift
    quantity: {technique: fake, name: peak.center_x}
    compare: {sample: B, reference: A, op: difference}
claims:
  - id: shift_gt_1
    text: "B peak > 1 mm above A"
    quantity: {technique: fake, name: peak.center_x}
    compare: {sample: B, reference: A, op: difference}
    rule: "> 1.0"
    unit: mm
  - id: broader
    text: "B broader than A by > 10 %"
    quantity: {technique: fake, name: peak.fwhm_x}
    compare: {sample: B, reference: A, op: percent_change}
    rule: "> 10"
  - id: x_in_b_not_a
    text: "X present in B, absent in A"
    checks:
      - {quantity: {technique: fake, name: phase(X).present}, compare: {sample: B}, rule: present}
      - {quantity: {technique: fake, name: phase(X).present}, compare: {sample: A}, rule: absent, missing: absent}
  - id: ghost_claim
    text: "ghost red-shift"
    quantity: {technique: ghost, name: BH.center_cm1}
    compare: {sample: C, reference: A, op: difference}
    rule: "< 0"
"""
    yml = tmp_path / "pipes" / "study.yaml"
    yml.parent.mkdir()
    yml.write_text(yaml_text.replace("root: data", "root: ../data"))
    return yml


@pytest.fixture(scope="session")
def _first_run_templates(tmp_path_factory):
    """One run of the fake study per session and variant (with / without its broken file).

    Many fault tests start from "a study that has run once" and then damage the output folder; a
    run writes the report, exports, store and cache (1-3 s on the shared machine), so the run is
    made once here and each test gets its own copy (:func:`first_run`), a few milliseconds.
    Made with the same plugins and cache key file as the tests (``_private_cache_key``), so the
    copied cache entries are valid for the test's own later runs.
    """
    import specproc.pipeline.cache as cache
    from specproc.pipeline import run_pipeline

    made: dict[bool, tuple[Path, str]] = {}

    def get(broken: bool) -> tuple[Path, str]:
        if broken not in made:
            root = tmp_path_factory.mktemp("first-run-broken" if broken else "first-run")
            yml = make_fake_study(root)
            if not broken:
                (root / "data" / "B" / "broken.fk").unlink()
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(plugins, "_discover", _fake_discover(plugins._discover))
                mp.setenv("SPECPROC_CACHE_KEY_FILE", str(tmp_path_factory.getbasetemp() / "cache.key"))
                mp.setattr(cache, "_KEY_CACHE", {})
                made[broken] = (root, run_pipeline(yml, root / "out", jobs=1).run_id)
        return made[broken]

    return get


@pytest.fixture
def first_run(tmp_path, _first_run_templates):
    """``first_run(broken=True)`` -> ``(study_yaml, out, run)``: a copy in ``tmp_path`` of the fake study
    and of the output folder of one completed ``run_pipeline(study, out, jobs=1)`` (``run.run_id``,
    ``run.run_dir``), as if the test had just run it. ``broken=False``: without ``B/broken.fk``."""
    import shutil

    def make(broken: bool = True):
        root, rid = _first_run_templates(broken)
        shutil.copytree(root, tmp_path, symlinks=True, dirs_exist_ok=True)  # keeps mtimes: pruning order
        out = tmp_path / "out"
        return tmp_path / "pipes" / "study.yaml", out, types.SimpleNamespace(run_id=rid, run_dir=out / "runs" / rid)

    return make


@pytest.fixture
def keep_two_runs(monkeypatch):
    """Prune to 2 run folders instead of ``KEEP_RUNS`` (5): the pruning tests then need 3 later runs
    to reach the limit instead of 6; the rule under test (the last N kept, never a folder whose rows
    are not in the store) does not depend on N."""
    import specproc.pipeline.runner as runner

    monkeypatch.setattr(runner, "KEEP_RUNS", 2)
    return 2
