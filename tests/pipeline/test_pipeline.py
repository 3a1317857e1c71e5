"""Pipeline runner, cache, store and CLI on a fake technique with known truth."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from specproc.core.errors import ParameterError
from specproc.pipeline import load_pipeline, run_pipeline
from specproc.pipeline.store import SCHEMA, read_table

from conftest import leftovers

FWHM = 2.0 * np.sqrt(2.0 * np.log(2.0))


def _snapshot(folder: Path) -> dict:
    return {str(p): p.stat().st_mtime_ns for p in folder.rglob("*")}


def _quantities(summary) -> dict:
    return {(r.task.sample, Path(r.task.path).name, k): (q.value, q.stderr)
            for r in summary.records if r.ok for k, q in r.result.quantities.items()}


def test_run_recovers_truth_and_writes_everything(fake_plugins, fake_study, tmp_path):
    data = fake_study.parent.parent / "data"
    before = _snapshot(data)
    out = tmp_path / "out"
    s = run_pipeline(fake_study, out, jobs=2)

    assert _snapshot(data) == before, "the pipeline wrote into an input folder"
    assert len(s.records) == 4 and len(s.results) == 3 and len(s.failures) == 1
    assert s.failures[0].task.path.endswith("broken.fk") and "not a fake file" in s.failures[0].error["error"]
    assert s.exit_code == 1
    assert [k.reason for k in s.skipped] == ["no processor 'ghost.analyse' registered"]
    # known truth: A centre 1.0 (two repeats), B centre 2.5 with sigma 1.5
    for r in s.results:
        c = r.quantities["peak.center_x"]
        truth = 1.0 if r.sample == "A" else 2.5
        assert abs(c.value - truth) < 4 * c.stderr + 1e-3
    b = next(r for r in s.results if r.sample == "B")
    assert b.quantities["peak.fwhm_x"].value == pytest.approx(1.5 * FWHM, rel=0.02)
    # params from YAML reached the processor, validated by its own schema
    a = next(r for r in s.results if r.sample == "A")
    assert a.params["width_guess"] == 1.2 and b.params["species"] == ["X"]

    verdicts = {c.id: c.verdict for c in s.claims}
    assert verdicts == {"shift_gt_1": "supported", "broader": "supported", "x_in_b_not_a": "supported",
                        "ghost_claim": "no data"}
    shift = next(c for c in s.claims if c.id == "shift_gt_1")
    assert shift.value == pytest.approx(1.5, abs=0.02) and shift.unit == "mm"
    assert set(shift.sources) == {str((data / n).resolve()) for n in ("A/a1.fk", "A/a2.fk", "B/b1.fk")}
    ghost = next(c for c in s.claims if c.id == "ghost_claim")
    assert "no processor registered" in ghost.reason

    # outputs
    assert Path(s.report_path) == out / "report.html" and Path(s.report_path).stat().st_size > 10_000
    page = Path(s.report_path).read_text()
    assert "id='comparison-shift'" in page and s.run_id in page
    db = out / "specproc.duckdb"
    for table in SCHEMA:
        df = read_table(db, table, s.run_id)
        assert list(df.columns) == [c for c, _ in SCHEMA[table]]
    q = read_table(db, "quantities", s.run_id)
    assert len(q) == 2 + 2 + 3  # two per A file, three for B (incl. phase(X).present)
    assert set(q.component.dropna()) == {"peak", "phase(X)"}
    claims = read_table(db, "claims", s.run_id)
    assert dict(zip(claims.claim_id, claims.verdict)) == verdicts
    f = read_table(db, "failures", s.run_id)
    assert sorted(f.kind) == ["failed", "skipped"]
    comps = read_table(db, "comparisons", s.run_id)
    assert "shift" in set(comps.id)
    for name in ("quantities.csv", "claims.parquet", "results.json", "measurements.csv", "failures.parquet"):
        assert (out / "exports" / name).stat().st_size > 0
    assert leftovers(out) == []


def test_cache_reuse_and_invalidation(fake_plugins, fake_study, tmp_path):
    out = tmp_path / "out"
    cold = run_pipeline(fake_study, out, jobs=1)
    warm = run_pipeline(fake_study, out, jobs=1)
    assert cold.n_cached == 0 and warm.n_cached == 3
    assert _quantities(cold) == _quantities(warm)
    assert [c.verdict for c in cold.claims] == [c.verdict for c in warm.claims]
    assert len(read_table(out / "specproc.duckdb", "runs")) == 2  # history kept

    # new content of one file -> that file only is recomputed
    data = fake_study.parent.parent / "data"
    (data / "A" / "a2.fk").write_text('{"center": 1.1, "seed": 5, "noise": 0.01}')
    third = run_pipeline(fake_study, out, jobs=1)
    assert third.n_cached == 2
    # changed parameters -> miss for that measurement
    fake_study.write_text(fake_study.read_text().replace("width_guess: 1.2", "width_guess: 0.9"))
    fourth = run_pipeline(fake_study, out, jobs=1)
    assert fourth.n_cached == 1
    assert run_pipeline(fake_study, out, jobs=1, use_cache=False).n_cached == 0
    # --no-cache does not read the cache, and its fresh results are written to it for the next run
    import shutil

    shutil.rmtree(out / "cache")
    assert run_pipeline(fake_study, out, jobs=1, use_cache=False).n_cached == 0
    assert run_pipeline(fake_study, out, jobs=1).n_cached == 3


def test_yaml_errors_name_file_and_line(fake_plugins, fake_study):
    good = fake_study.read_text()

    def err(text):
        fake_study.write_text(text)
        with pytest.raises(ParameterError) as ei:
            load_pipeline(fake_study)
        return str(ei.value)

    lines = good.splitlines()

    def line_of(snippet):
        return next(i + 1 for i, s in enumerate(lines) if snippet in s)

    # unknown top-level key
    msg = err(good.replace("root: ../data", "root: ../data\nrooot: x"))
    assert msg.startswith(f"{fake_study}:3:") and "rooot" in msg
    # wrong type for a processor parameter -> validated by the processor's own Params schema
    msg = err(good.replace("params: {species: [X]}", "params: {species: [X], width_guess: wide}"))
    assert msg.startswith(f"{fake_study}:{line_of('params: {species')}:") and "width_guess" in msg
    # unknown key in processor params
    msg = err(good.replace("width_guess: 1.2", "widht_guess: 1.2"))
    assert f":{line_of('width_guess: 1.2')}:" in msg and "widht_guess" in msg
    # typo in a processor of an existing technique
    msg = err(good.replace("processor: fake.fit\n", "processor: fake.fitt\n"))
    assert "fake.fitt" in msg and "fake.fit" in msg and f":{lines.index('    processor: fake.fit') + 1}:" in msg
    # bad rule
    msg = err(good.replace('rule: "> 10"', 'rule: "bigger than 10"'))
    rule_line = line_of('rule: "> 10"')
    assert f":{rule_line}:" in msg and "cannot parse rule" in msg
    # YAML syntax error
    msg = err(good + "\n  - [unclosed\n")
    assert "invalid YAML" in msg and str(fake_study) in msg
    # python objects are refused (safe_load only)
    msg = err("!!python/object/apply:os.system ['echo hi']\n")
    assert "invalid YAML" in msg


def test_cli_last_line_is_report_path(fake_plugins, fake_study, tmp_path, capsys):
    from specproc.cli import main

    out = tmp_path / "cli_out"
    rc = main(["run", str(fake_study), "--out", str(out), "-j", "2"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert rc == 1  # broken.fk failed, the rest ran
    assert lines[-1] == str(out / "report.html") and Path(lines[-1]).is_file()
    assert any("FAILED" in ln and "broken.fk" in ln for ln in lines)
    html = Path(lines[-1]).read_text()
    assert "broken.fk" in html and "not a fake file" in html

    (fake_study.parent.parent / "data" / "B" / "broken.fk").unlink()
    rc = main(["run", str(fake_study), "--out", str(out), "--quiet"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert rc == 0 and lines == [str(out / "report.html")]


def test_output_inside_input_is_refused(fake_plugins, fake_study):
    folder = fake_study.parent.parent / "data" / "A"
    for out in (folder, folder / "out"):
        with pytest.raises(ParameterError, match="inside the input folder"):
            run_pipeline(fake_study, out)
    assert not (folder / "out").exists()


def test_hostile_sample_name_is_escaped(fake_plugins, fake_study, tmp_path):
    evil = "<script>alert(1)</script>"
    fake_study.write_text(fake_study.read_text().replace("{sample: A,", "{sample: '" + evil + "',")
                          .replace("reference: A", "reference: '" + evil + "'")
                          .replace("compare: {sample: A}", "compare: {sample: '" + evil + "'}"))
    s = run_pipeline(fake_study, tmp_path / "out", jobs=1)
    assert any(r.sample == evil for r in s.results)
    html = Path(s.report_path).read_text()
    assert evil not in html and "alert(1)</" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # every <script> that opens is one we wrote: plotly.js + one per figure
    assert html.count("<script") == html.count("</script>")
    assert not re.search(r"<script>\s*alert", html)


def test_store_write_is_atomic(fake_plugins, fake_study, tmp_path, monkeypatch):
    import specproc.pipeline.store as store

    out = tmp_path / "out"
    first = run_pipeline(fake_study, out, jobs=1)
    db = out / "specproc.duckdb"
    size = db.stat().st_size

    orig = store.write_database

    def interrupted(db_path, tables):
        # a broken 'claims' table makes the write fail after several tables were inserted
        orig(db_path, dict(tables, claims=None))

    monkeypatch.setattr(store, "write_database", interrupted)
    with pytest.raises(Exception):
        run_pipeline(fake_study, out, jobs=1)
    assert db.stat().st_size == size
    runs = read_table(db, "runs")
    assert list(runs.run_id) == [first.run_id]
    assert leftovers(out) == []


@pytest.mark.slow
def test_dask_local_cluster_matches_local_run(fake_plugins, fake_study, tmp_path):
    distributed = pytest.importorskip("distributed")
    local = run_pipeline(fake_study, tmp_path / "local", jobs=1)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cl:
        # the YAML's scheduler key (the CLI's --scheduler overrides it)
        fake_study.write_text(fake_study.read_text().replace("root: ../data", f"root: ../data\nscheduler: "
                                                                               f"{cl.scheduler_address}"))
        dist = run_pipeline(fake_study, tmp_path / "dask")
    assert dist.scheduler == cl.scheduler_address and dist.jobs is None
    assert _quantities(local) == _quantities(dist)
    assert [(c.id, c.verdict, c.value) for c in local.claims] == [(c.id, c.verdict, c.value) for c in dist.claims]
    assert [r.error for r in local.failures] == [r.error for r in dist.failures]
    q1 = read_table(tmp_path / "local" / "specproc.duckdb", "quantities").drop(columns="run_id")
    q2 = read_table(tmp_path / "dask" / "specproc.duckdb", "quantities").drop(columns="run_id")
    assert q1.equals(q2)


@pytest.mark.slow
def test_dask_worker_processes_match_local_run_on_sample_data(tmp_path):
    """Real plugins on separate worker processes (plugins found through entry points there)."""
    distributed = pytest.importorskip("distributed")
    from specproc import plugins
    from specproc.core.errors import PluginError

    repo = Path(__file__).resolve().parents[2]
    files = [repo / "sample_data" / "nmr" / f"{s}_1H" / "1" for s in ("LiBH4", "LiNBH", "LiBH4-70LiNBH")]
    try:
        plugins.get("processors", "nmr.deconvolve")
    except PluginError:
        pytest.skip("nmr.deconvolve not available")
    if not all(f.is_dir() for f in files):
        pytest.skip("1H sample data not generated")
    yml = tmp_path / "p.yaml"
    yml.write_text(f"name: dask check\nroot: {repo / 'sample_data'}\nmeasurements:\n" + "".join(
        f"  - {{sample: {f.parent.name.rsplit('_', 1)[0]}, technique: nmr, files: nmr/{f.parent.name}/1, "
        "processor: nmr.deconvolve, params: {peaks: {H: 1.0}, processing: {apodization: none}}}\n" for f in files)
        + "claims:\n  - {id: n, text: narrower, quantity: {technique: nmr, meta: {nucleus: 1H}, name: H.fwhm_ppm},\n"
          "     compare: {sample: LiBH4-70LiNBH, reference: LiBH4, op: difference}, rule: '< 0'}\n")
    local = run_pipeline(yml, tmp_path / "local", jobs=1)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cl:
        dist = run_pipeline(yml, tmp_path / "dask", scheduler=cl.scheduler_address)
    assert local.failures == [] and dist.failures == []
    assert _quantities(local) == _quantities(dist)
    assert [(c.verdict, c.value) for c in local.claims] == [(c.verdict, c.value) for c in dist.claims]
