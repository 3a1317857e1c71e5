"""Shared pytest fixtures: the repository root and the real-data folder (skipped when absent)."""
from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
#: Real instrument exports live beside the checkout (never copied into the repo).
REALDATA = REPO_ROOT / ".." / "shared" / "realdata"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (folder holding pyproject.toml)."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def realdata() -> Path:
    """``<repo>/../shared/realdata``; the test is skipped when it is not there."""
    if not REALDATA.is_dir():
        pytest.skip(f"real data folder {REALDATA} not available")
    return REALDATA.resolve()


@pytest.fixture(scope="session")
def ftir_generator():
    """``sample_data/generate_ftir.py`` as a module (its spectrum builders, for generated test cases)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("generate_ftir", REPO_ROOT / "sample_data" / "generate_ftir.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


#: the study pipeline of ``make demo``, run over ``sample_data/``
DEMO_PIPELINE = REPO_ROOT / "pipelines" / "libh4_linbh.yaml"


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """One cold run of ``pipelines/libh4_linbh.yaml`` (``jobs=2``, as ``make demo``) per test process.

    A run costs 20-35 s on the shared 2-core machine, and the sample-pipeline and demo-report tests
    only read its outputs, so they share it. With ``pytest -n`` both modules (:data:`DEMO_RUN_FILES`)
    go to one worker (``--dist loadgroup`` in pyproject's addopts and
    :func:`pytest_xdist_make_scheduler`), so the run is made once per suite, not once per worker.
    Returns ``(summary, out, run_dir)``: ``run_dir`` (``out/runs/<id>``) keeps this run's own report
    and exports even after a later run into ``out`` (the sample-pipeline test adds a warm one) has
    moved ``out/report.html`` and ``out/exports`` to its own.
    """
    import types

    if not (REPO_ROOT / "sample_data").is_dir():
        pytest.skip("no sample data")
    from specproc.pipeline import run_pipeline

    out = tmp_path_factory.mktemp("demo")
    summary = run_pipeline(DEMO_PIPELINE, out, jobs=2)
    return types.SimpleNamespace(summary=summary, out=out, run_dir=Path(summary.run_dir))


#: the test files that read the session's demo run (``demo_run``): one xdist work unit
DEMO_RUN_FILES = ("tests/pipeline/test_sample_pipeline.py", "tests/report/test_demo_report.py",
                  "tests/test_quantity_keys.py")


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist: unknown when it is not installed
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadgroup`` that also groups :data:`DEMO_RUN_FILES` by file name.

    The files carry ``xdist_group("demo_run")``, but with pytest 9.2 xdist's loadgroup ignores the
    mark (it renames node ids, which pytest no longer allows: pytest-dev/pytest-xdist#1386, fix not
    released), and the two modules then each built the demo run on both workers. The scheduler
    sees only node ids, so this names the group from the file. Other modes: xdist's own scheduler.
    """
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class DemoRunGroup(LoadGroupScheduling):
        def _split_scope(self, nodeid):
            if nodeid.split("::", 1)[0] in DEMO_RUN_FILES:
                return "demo_run"
            return super()._split_scope(nodeid)

    return DemoRunGroup(config, log)


def pytest_collection_modifyitems(config, items):
    """Test modules holding a test marked ``slow`` run first (stable order otherwise).

    With ``pytest -n 2`` a 20-50 s test picked up last keeps one worker busy while the other has
    nothing left: longest first is the usual cure for that tail. (xdist's loadgroup scheduler also
    sends the largest group, the demo run's tests, first.) Whole modules move, so a module- or
    class-scoped fixture is still made once; every test makes its own inputs, so order changes
    nothing else.
    """
    slow = {item.module.__name__ for item in items
            if item.get_closest_marker("slow") is not None and getattr(item, "module", None) is not None}
    items.sort(key=lambda item: getattr(getattr(item, "module", None), "__name__", None) not in slow)
