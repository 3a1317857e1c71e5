"""Reliability and security of the runner, cache and store (issue 15), with real fault injection.

Each class of fault from the issue has a test here: poisoned cache entries (no code runs),
relabelled samples (no stale labels from the cache), two concurrent runs (nothing lost),
alias bombs under a memory limit (refused in milliseconds, exit 2), kill -9 at random moments
(no orphaned workers, outputs of one run, clean next run), truncated / garbage stores (set
aside), output-folder and YAML mistakes (clear errors), full disks and oversized inputs.
See docs/reliability.md.
"""
from __future__ import annotations

import ast
import errno
import json
import os
import pickle
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from specproc.core.errors import ParameterError, ReaderError, SpecprocError
from specproc.pipeline import load_pipeline, run_pipeline
from specproc.pipeline.store import read_table

from conftest import leftovers, write_fake

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
FAKE_CLI = HERE / "_fake_cli.py"


def _cli(*args, env=None, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(FAKE_CLI), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}, **kw)


def _published(out: Path) -> str | None:
    from specproc.pipeline.runner import published_run

    return published_run(out)


def _consistent(out: Path) -> str | None:
    """Assert the published report and exports belong to one run; return its id (None: nothing yet)."""
    rid = _published(out)
    if rid is None:
        assert not (out / "report.html").exists() and not (out / "exports").exists()
        return None
    doc = json.loads((out / "exports" / "results.json").read_text())
    assert doc["run"]["run_id"] == rid
    assert rid in (out / "report.html").read_text()
    for table in ("measurements", "claims"):
        import pandas as pd

        ids = set(pd.read_parquet(out / "exports" / f"{table}.parquet").run_id)
        assert ids <= {rid}
    return rid


# --------------------------------------------------------------------------- 1. cache cannot execute
def test_cache_entries_are_signed_json_and_poison_never_runs(fake_plugins, fake_study, tmp_path):
    out = tmp_path / "out"
    first = run_pipeline(fake_study, out, jobs=1)
    entries = sorted((out / "cache").iterdir())
    assert entries and all(p.suffix == ".json" for p in entries)
    header = json.loads(entries[0].read_bytes().split(b"\n", 1)[0])
    assert header["format"] == "specproc-cache" and len(header["mac"]) == 64

    # an attacker who can write into the output folder plants pickles with an os.system payload
    marker = tmp_path / "PWNED"

    class Evil:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    payload = pickle.dumps(Evil())
    for p in entries:
        p.with_suffix(".pkl").write_bytes(payload)              # the old cache format
    entries[0].write_bytes(payload)                              # pickle bytes under the JSON name
    # ... and a well-formed entry with a forged value (no valid signature)
    head, body = entries[1].read_bytes().split(b"\n", 1)
    forged = re.sub(rb'"value":[-0-9.e]+', b'"value":42.0', body)
    h = json.loads(head)
    h["length"] = len(forged)
    entries[1].write_bytes(json.dumps(h).encode() + b"\n" + forged)

    second = run_pipeline(fake_study, out, jobs=1)
    assert not marker.exists(), "a cache entry executed code"
    assert second.n_cached == len(first.results) - 2   # the two damaged entries were recomputed
    assert {k: (q.value, q.stderr) for r in second.results for k, q in r.quantities.items()} == \
        {k: (q.value, q.stderr) for r in first.results for k, q in r.quantities.items()}
    assert not list((out / "cache").glob("*.pkl"))


def test_cache_entries_from_another_user_key_are_not_trusted(fake_plugins, fake_study, tmp_path, monkeypatch):
    import specproc.pipeline.cache as cache

    out = tmp_path / "out"
    run_pipeline(fake_study, out, jobs=1)
    monkeypatch.setenv("SPECPROC_CACHE_KEY_FILE", str(tmp_path / "other-user.key"))
    monkeypatch.setattr(cache, "_KEY_CACHE", {})
    assert run_pipeline(fake_study, out, jobs=1).n_cached == 0
    assert (tmp_path / "other-user.key").stat().st_mode & 0o777 == 0o600


def test_no_unsafe_deserialisation_anywhere_in_specproc():
    """No pickle/yaml.load/eval of anything read from disk: scan the package's syntax tree."""
    bad = []
    allowed = {("fitting/batch.py", "cloudpickle.loads")}  # in-memory payload from the parent process
    for path in (REPO / "specproc").rglob("*.py"):
        rel = str(path.relative_to(REPO / "specproc"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = ast.unparse(node.func)
            if name in ("eval", "exec") or re.search(r"(^|\.)(pickle|cloudpickle|dill|joblib)\.loads?$", name) \
                    or name in ("yaml.load", "yaml.unsafe_load", "yaml.full_load", "pd.read_pickle",
                                "pandas.read_pickle", "torch.load"):
                if (rel, name) not in allowed:
                    bad.append(f"{rel}:{node.lineno}: {name}")
            if name.endswith("np.load") or name.endswith("numpy.load"):
                for kw in node.keywords:
                    if kw.arg == "allow_pickle" and not (isinstance(kw.value, ast.Constant) and not kw.value.value):
                        bad.append(f"{rel}:{node.lineno}: np.load(allow_pickle=...)")
    assert bad == []


def test_result_state_refuses_object_dtypes_and_forged_shapes():
    import base64

    from specproc.core.result import Result, from_state

    with pytest.raises(ValueError):
        from_state({"__ndarray__": {"dtype": "|O", "shape": [1], "data": base64.b64encode(b"\0" * 8).decode()}})
    with pytest.raises(ValueError):
        from_state({"__ndarray__": {"dtype": "<f8", "shape": [10 ** 6, 10 ** 6], "data": ""}})
    with pytest.raises(ValueError):
        Result.from_dict({"quantities": {}})


# --------------------------------------------------------------------------- 2. labels and metadata
def _swap_labels(yml: Path) -> None:
    t = yml.read_text()
    t = t.replace("{sample: A,", "{sample: TMP,").replace("  - sample: B\n", "  - sample: A\n")
    yml.write_text(t.replace("{sample: TMP,", "{sample: B,"))


def test_relabelled_samples_never_come_from_the_cache(fake_plugins, fake_study, tmp_path):
    out = tmp_path / "out"
    before = run_pipeline(fake_study, out, jobs=1)
    shift = next(c for c in before.claims if c.id == "shift_gt_1")
    assert shift.verdict == "supported" and shift.value > 1
    _swap_labels(fake_study)
    warm = run_pipeline(fake_study, out, jobs=1)
    fresh = run_pipeline(fake_study, tmp_path / "fresh", jobs=1)
    assert [(c.id, c.verdict, c.value) for c in warm.claims] == [(c.id, c.verdict, c.value) for c in fresh.claims]
    w = next(c for c in warm.claims if c.id == "shift_gt_1")
    assert w.verdict == "not supported" and w.value == pytest.approx(-shift.value)
    # every output uses the new labels: results.json, store, figures
    doc = json.loads((out / "exports" / "results.json").read_text())
    by_file = {Path(r["file"]).name: r["sample"] for r in doc["results"]}
    assert by_file == {"a1.fk": "B", "a2.fk": "B", "b1.fk": "A"}
    q = read_table(out / "specproc.duckdb", "quantities", warm.run_id)
    assert dict(zip(q.file.map(lambda f: Path(f).name), q["sample"])) == by_file
    for r in warm.results:
        assert r.plots[0]["title"] == f"fit {r.sample}"


def test_yaml_metadata_reaches_results_store_and_claims(fake_plugins, fake_study, tmp_path):
    t = fake_study.read_text().replace("params: {width_guess: 1.2}}", "params: {width_guess: 1.2}, "
                                       "metadata: {temperature_K: 300, nucleus: 11B}}")
    t += ("  - id: hot_a\n    text: A at 300 K\n    quantity: {technique: fake, meta: {temperature_K: 300}, "
          "name: peak.center_x}\n    compare: {sample: A}\n    rule: between 0.9 1.1\n")
    fake_study.write_text(t)
    out = tmp_path / "out"
    s = run_pipeline(fake_study, out, jobs=1)
    a = [r for r in s.results if r.sample == "A"]
    assert a and all(r.meta["temperature_K"] == 300 and r.meta["nucleus"] == "11B" for r in a)
    assert next(c for c in s.claims if c.id == "hot_a").verdict == "supported"
    m = read_table(out / "specproc.duckdb", "measurements", s.run_id)
    assert all(json.loads(x)["temperature_K"] == 300 for x in m[m["sample"] == "A"].meta)
    fake_study.write_text(t.replace("temperature_K: 300, nucleus", "temperature_K: 77, nucleus"))
    s2 = run_pipeline(fake_study, out, jobs=1)
    assert s2.n_cached == 1  # only B: A's metadata changed, so A is recomputed
    assert next(c for c in s2.claims if c.id == "hot_a").verdict == "no data"


# --------------------------------------------------------------------------- run_many in the pipeline
def test_files_sharing_processor_and_params_go_to_run_many_together(fake_plugins, fake_study, tmp_path,
                                                                     monkeypatch):
    proc = fake_plugins["processors"]["fake.fit"]
    calls = []
    orig = type(proc).run_many

    def run_many(self, data, params):
        calls.append(sorted(Path(d.attrs["provenance"]["source"]).name for d in data))
        return orig(self, data, params)

    monkeypatch.setattr(type(proc), "run_many", run_many)
    s = run_pipeline(fake_study, tmp_path / "out", jobs=1)
    assert calls == [["a1.fk", "a2.fk"]]  # B has other params; broken.fk failed in reading
    assert len(s.results) == 3

    # a run_many that breaks its contract (or crashes) falls back to one file at a time
    monkeypatch.setattr(type(proc), "run_many", lambda self, data, params: [])
    s2 = run_pipeline(fake_study, tmp_path / "out2", jobs=1, use_cache=False)
    assert len(s2.results) == 3 and len(s2.failures) == 1


def test_batches_split_large_groups_for_workers():
    from specproc.execute import MAX_BATCH, Task
    from specproc.execute import chunks as batches

    tasks = [Task(i, 0, "S", "t", f"/f{i}", "p.x", {"a": 1}) for i in range(1000)]
    tasks += [Task(1000 + i, 1, "S", "t", f"/g{i}", "p.x", {"a": 2}) for i in range(3)]
    chunks = batches(tasks, 2)
    assert sorted(len(c) for c in chunks) == [1, 2, 250, 250, 250, 250]  # 1000 files: 4 chunks <= MAX_BATCH
    assert max(len(c) for c in chunks) <= MAX_BATCH
    assert all(len({t.params["a"] for t in c}) == 1 for c in chunks)
    assert len(batches(tasks[:10], 2)) == 2


# --------------------------------------------------------------------------- 3. concurrent runs
@pytest.mark.slow
def test_two_concurrent_runs_into_one_folder_lose_nothing(fake_plugins, fake_study, tmp_path):
    out = tmp_path / "out"
    run_pipeline(fake_study, out, jobs=1)  # warm cache, as in the issue
    procs = [_cli("run", fake_study, "--out", out, "-j", "2", "--quiet") for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [1, 1], outs  # broken.fk fails in both; nothing else
    runs = read_table(out / "specproc.duckdb", "runs")
    assert len(runs) == 3
    assert _consistent(out) in set(runs.run_id)
    assert leftovers(out) == []


def test_second_run_waits_then_gives_up_with_a_clear_message(fake_plugins, fake_study, tmp_path):
    from filelock import FileLock

    out = tmp_path / "out"
    out.mkdir()
    with FileLock(str(out / ".specproc.lock")):
        with pytest.raises(SpecprocError, match="another specproc run is writing"):
            run_pipeline(fake_study, out, jobs=1, lock_timeout=0.2)


# --------------------------------------------------------------------------- 4. YAML bombs
BOMB = """name: bomb
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
measurements: []
"""
PARAMS_BOMB = """name: bomb in params
x: &a {k: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}
y: &b {a: *a, b: *a, c: *a, d: *a, e: *a, f: *a, g: *a, h: *a, i: *a, j: *a}
z: &c {a: *b, b: *b, c: *b, d: *b, e: *b, f: *b, g: *b, h: *b, i: *b, j: *b}
w: &d {a: *c, b: *c, c: *c, d: *c, e: *c, f: *c, g: *c, h: *c, i: *c, j: *c}
v: &e {a: *d, b: *d, c: *d, d: *d, e: *d, f: *d, g: *d, h: *d, i: *d, j: *d}
u: &f {a: *e, b: *e, c: *e, d: *e, e: *e, f: *e, g: *e, h: *e, i: *e, j: *e}
measurements:
  - {sample: A, technique: fake, files: x.fk, processor: fake.fit, params: {species: *f}}
"""


@pytest.mark.parametrize("text, why", [
    (BOMB, "alias bomb"), (PARAMS_BOMB, "alias bomb"),
    ("name: r\nx: &a [*a]\n", "recursive alias"),
    ("name: deep\nx: " + "[" * 200 + "]" * 200 + "\n", "nested deeper"),
    ("name: big\ndescription: '" + "x" * (5 << 20) + "'\n", "larger than"),
])
def test_yaml_bombs_are_refused_before_building(fake_plugins, tmp_path, text, why):
    yml = tmp_path / "bomb.yaml"
    yml.write_text(text)
    t0 = time.perf_counter()
    with pytest.raises(ParameterError, match=why):
        load_pipeline(yml)
    assert time.perf_counter() - t0 < 10.0  # refused before building: a hang guard, not a benchmark


@pytest.mark.slow
def test_alias_bomb_under_a_memory_limit_exits_2(tmp_path):
    """The CLI in a subprocess limited to 1.5 GB of address space: refused quickly, exit 2."""
    yml = tmp_path / "bomb.yaml"
    yml.write_text(BOMB)
    code = ("import resource, sys; lim = 1536 << 20; resource.setrlimit(resource.RLIMIT_AS, (lim, lim));"
            "from specproc.cli import main; sys.exit(main(sys.argv[1:]))")
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", code, "run", str(yml), "--out", str(tmp_path / "o")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2, p.stderr[-2000:]
    assert "alias bomb" in p.stderr and "Traceback" not in p.stderr
    assert time.perf_counter() - t0 < 60


# --------------------------------------------------------------------------- 5. kill -9
def _children(pid: int) -> list[int]:
    import psutil

    try:
        return [c.pid for c in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _alive(pids: list[int]) -> list[int]:
    import psutil

    out = []
    for p in pids:
        try:
            if psutil.Process(p).status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


@pytest.mark.slow
def test_kill_9_at_random_moments_leaves_consistent_outputs_and_no_orphans(fake_plugins, tmp_path):
    data = tmp_path / "data"
    for i in range(8):  # ~0.25 s per file on 2 workers: a cold run takes about a second
        write_fake(data / f"s{i}.fk", 1.0 + 0.1 * i, seed=i, sleep=0.25)
    yml = tmp_path / "p.yaml"
    yml.write_text("name: kill test\nroot: data\nmeasurements:\n"
                   "  - {sample: '{stem}', technique: fake, files: '*.fk', processor: fake.fit}\n"
                   "claims:\n  - {id: c, text: t, quantity: {technique: fake, name: peak.center_x}, "
                   "compare: {sample: s3, reference: s0, op: difference}, rule: '> 0.2'}\n")
    out = tmp_path / "out"
    rng = random.Random(15)
    published, n_workers = [], 0
    for trial in range(4):
        p = _cli("run", yml, "--out", out, "-j", "2", "--quiet", "--no-cache")
        if trial < 2:  # kill while workers run: wait until they exist, then a random moment
            deadline = time.time() + 30
            while len(_children(p.pid)) < 2 and time.time() < deadline:
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.8))
        else:  # anywhere: start-up, processing or writing the outputs
            time.sleep(rng.uniform(0.5, 4.0))
        workers = _children(p.pid)
        n_workers += len(workers)
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=10)
        deadline = time.time() + 5
        while _alive(workers) and time.time() < deadline:
            time.sleep(0.05)
        assert _alive(workers) == [], f"trial {trial}: workers outlived the killed run"
        published.append(_consistent(out))       # old run or new run, never a mix
    assert n_workers >= 4, "the kills never hit running workers"
    ok = _cli("run", yml, "--out", out, "-j", "2", "--quiet")
    so, se = ok.communicate(timeout=120)
    assert ok.returncode == 0, se[-3000:]
    rid = _consistent(out)
    runs = read_table(out / "specproc.duckdb", "runs")
    assert rid in set(runs.run_id) and set(r for r in published if r) <= set(runs.run_id)
    assert leftovers(out) == []
    assert not list(out.glob("specproc.duckdb.damaged-*"))


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["exports", "store"])
def test_kill_9_while_writing_outputs(fake_plugins, first_run, tmp_path, moment):
    """Killed half-way through the exports, or inside the store transaction."""
    fake_study, out, first = first_run()
    p = _cli("run", fake_study, "--out", out, "-j", "1", "--quiet", env={"FAKE_CLI_PAUSE_AT": moment})
    for line in p.stderr:  # wait for the chosen moment
        if line.startswith("PAUSED"):
            break
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=10)
    rid = _consistent(out)
    runs = set(read_table(out / "specproc.duckdb", "runs").run_id)
    assert "half-written" not in runs                  # the uncommitted transaction is gone
    if moment == "exports":
        assert rid == first.run_id and runs == {first.run_id}
        assert leftovers(out)                          # the partial run folder is there ...
    else:
        assert rid != first.run_id and runs == {first.run_id}  # published, store commit lost
    s = run_pipeline(fake_study, out, jobs=1)
    assert leftovers(out) == []                        # ... and cleaned by the next run
    runs = set(read_table(out / "specproc.duckdb", "runs").run_id)
    assert runs == {first.run_id, s.run_id} | ({rid} if moment == "store" else set())
    assert _consistent(out) == s.run_id


def test_interrupted_publish_is_repaired_by_the_next_run(fake_plugins, fake_study, tmp_path, monkeypatch):
    """A kill between publishing the run folder and the store commit: the next run adds it."""
    out = tmp_path / "out"
    import specproc.pipeline.store as store

    def killed(*a, **k):
        raise KeyboardInterrupt  # stands for SIGKILL right after the pointer switch

    with monkeypatch.context() as m:
        m.setattr(store, "write_database", killed)
        with pytest.raises(KeyboardInterrupt):
            run_pipeline(fake_study, out, jobs=1)
    rid = _consistent(out)
    assert rid is not None and not (out / "specproc.duckdb").exists()
    s = run_pipeline(fake_study, out, jobs=1)
    runs = read_table(out / "specproc.duckdb", "runs")
    assert set(runs.run_id) == {rid, s.run_id}
    assert leftovers(out) == []


# --------------------------------------------------------------------------- damaged stores
@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_damaged_store_is_set_aside_with_a_warning(fake_plugins, first_run, tmp_path, damage):
    fake_study, out, first = first_run()
    db = out / "specproc.duckdb"
    if damage == "truncate":
        with open(db, "r+b") as fh:
            fh.truncate(db.stat().st_size // 3)
    elif damage == "garbage":
        db.write_bytes(os.urandom(50_000))
    else:
        db.write_bytes(b"")
    with pytest.warns(RuntimeWarning, match="unreadable"):
        s = run_pipeline(fake_study, out, jobs=1)
    assert list(read_table(db, "runs").run_id) == [first.run_id, s.run_id]  # rebuilt from runs/
    assert len(list(out.glob("specproc.duckdb.damaged-*"))) == 1
    run_pipeline(fake_study, out, jobs=1)  # and later runs are fine
    assert len(read_table(db, "runs")) == 3


def test_store_path_that_is_a_directory_is_a_clear_error(fake_plugins, fake_study, tmp_path, capsys):
    out = tmp_path / "out"
    (out / "specproc.duckdb").mkdir(parents=True)
    with pytest.raises(ParameterError, match="store path .* is a directory"):
        run_pipeline(fake_study, out, jobs=1)
    from specproc.cli import main

    assert main(["run", str(fake_study), "--out", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert "is a directory" in err and "Traceback" not in err


# --------------------------------------------------------------------------- 10. smaller ones
def test_out_equal_to_data_root_is_refused_and_exports_are_never_read(fake_plugins, tmp_path):
    data = tmp_path / "data"
    write_fake(data / "raw" / "a.json", 1.0)
    write_fake(data / "raw" / "b.json", 2.0, seed=1)
    yml = tmp_path / "p.yaml"
    yml.write_text("name: glob all json\nroot: data\nmeasurements:\n"
                   "  - {sample: '{stem}', technique: fake, files: '**/*.json', processor: fake.fit, reader: fake}\n")
    with pytest.raises(ParameterError, match="data root"):
        run_pipeline(yml, data)
    out = data / "results"           # inside the data root: allowed, but never read back
    first = run_pipeline(yml, out, jobs=1)
    second = run_pipeline(yml, out, jobs=1)
    assert len(first.records) == len(second.records) == 2 and second.exit_code == 0
    # another pipeline with another --out does not read the first one's exports either
    third = run_pipeline(yml, tmp_path / "elsewhere", jobs=1)
    assert len(third.records) == 2


@pytest.mark.parametrize("template", ["{stem.foo}", "{0}", "{stem!r}", "{stem:>10}", "{nme}", "{stem"])
def test_bad_sample_placeholders_are_clear_errors(fake_plugins, fake_study, template):
    fake_study.write_text(fake_study.read_text().replace("{sample: A,", "{sample: '" + template + "',"))
    with pytest.raises(ParameterError, match="placeholder") as ei:
        load_pipeline(fake_study)
    assert str(ei.value).startswith(f"{fake_study}:")


def test_typo_in_processor_is_an_error_with_did_you_mean(fake_plugins, fake_study, capsys):
    fake_study.write_text(fake_study.read_text().replace("processor: fake.fit, params: {width",
                                                         "processor: fkae.fit, params: {width"))
    with pytest.raises(ParameterError, match=r"unknown processor 'fkae.fit'; did you mean 'fake.fit'"):
        load_pipeline(fake_study)
    from specproc.cli import main

    assert main(["run", str(fake_study), "--out", str(fake_study.parent / "o"), "-q"]) == 2
    assert "did you mean" in capsys.readouterr().err


def test_glob_matching_nothing_is_an_error_exit_unless_optional(fake_plugins, fake_study, tmp_path, capsys):
    from specproc.cli import main

    (fake_study.parent.parent / "data" / "B" / "broken.fk").unlink()
    t = fake_study.read_text().replace('files: "A/*.fk"', 'files: "A/*.fkk"')
    fake_study.write_text(t)
    s = run_pipeline(fake_study, tmp_path / "out", jobs=1)
    assert s.exit_code == 1 and [m.reason.split(" under")[0] for m in s.missing] == ["no file matches A/*.fkk"]
    assert main(["run", str(fake_study), "--out", str(tmp_path / "out")]) == 1
    assert "ERROR measurements[0]" in capsys.readouterr().out
    fake_study.write_text(t.replace('files: "A/*.fkk"', 'files: "A/*.fkk", optional: true'))
    assert run_pipeline(fake_study, tmp_path / "out", jobs=1).exit_code == 0
    # nothing at all to process is an error too
    fake_study.write_text("name: empty\nmeasurements: []\n")
    assert run_pipeline(fake_study, tmp_path / "out2", jobs=1).exit_code == 1


def test_full_disk_while_writing_outputs_keeps_the_previous_run(fake_plugins, first_run, tmp_path, monkeypatch,
                                                                 capsys):
    import specproc.pipeline.store as store
    from specproc.cli import main

    fake_study, out, first = first_run()
    orig = store.write_exports

    def full(folder, tables, doc):
        orig(folder, tables, doc)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(folder / "results.json"))

    monkeypatch.setattr(store, "write_exports", full)
    with pytest.raises(SpecprocError, match="No space left on device"):
        run_pipeline(fake_study, out, jobs=1)
    assert main(["run", str(fake_study), "--out", str(out), "-q"]) == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err and "Traceback" not in err
    assert _consistent(out) == first.run_id
    assert list(read_table(out / "specproc.duckdb", "runs").run_id) == [first.run_id]
    assert leftovers(out) == []


def test_store_write_failure_is_a_clear_error_and_repaired_later(fake_plugins, first_run, tmp_path, monkeypatch):
    import duckdb

    import specproc.pipeline.store as store

    fake_study, out, first = first_run()
    with monkeypatch.context() as m:
        def full(*a, **k):
            raise duckdb.IOException("IO Error: Could not write file: No space left on device")

        m.setattr(store, "write_database", full)
        with pytest.raises(SpecprocError, match="cannot write the results store .*No space left") as ei:
            run_pipeline(fake_study, out, jobs=1)
    rid = _consistent(out)
    assert rid != first.run_id and rid in str(ei.value)
    s = run_pipeline(fake_study, out, jobs=1)
    assert set(read_table(out / "specproc.duckdb", "runs").run_id) == {first.run_id, rid, s.run_id}


def test_input_above_the_size_limit_is_refused_without_reading(fake_plugins, tmp_path, monkeypatch):
    import specproc.io as spio

    big = tmp_path / "huge.fk"
    with open(big, "wb") as fh:  # sparse: 3 GiB on paper, nothing on disk
        fh.truncate(3 << 30)
    t0 = time.perf_counter()
    with pytest.raises(ReaderError, match="larger than the 2,048 MiB limit"):
        spio.read(big)
    assert time.perf_counter() - t0 < 5.0  # refused without reading 3 GiB (a hang guard)
    monkeypatch.setattr(spio.base, "MAX_INPUT_BYTES", 10)
    small = tmp_path / "s.fk"
    small.write_text('{"center": 1.0}')
    with pytest.raises(ReaderError, match=str(small)):
        spio.read(small)


def test_output_folder_of_an_older_version_is_upgraded(fake_plugins, fake_study, tmp_path):
    """Old layout (plain report.html and exports/, pickle cache, store with a nucleus column)."""
    import duckdb

    out = tmp_path / "out"
    (out / "exports").mkdir(parents=True)
    (out / "exports" / "quantities.csv").write_text("old\n")
    (out / "report.html").write_text("<html>old run</html>")
    (out / "cache").mkdir()
    (out / "cache" / ("ab" * 32 + ".pkl")).write_bytes(b"\x80\x04K\x01.")
    con = duckdb.connect(str(out / "specproc.duckdb"))
    con.execute("CREATE TABLE runs (run_id VARCHAR, pipeline_name VARCHAR)")
    con.execute("INSERT INTO runs VALUES ('old-run', 'old')")
    con.execute("CREATE TABLE quantities (run_id VARCHAR, task INTEGER, sample VARCHAR, technique VARCHAR, "
                "nucleus VARCHAR, name VARCHAR, value DOUBLE)")
    con.execute("INSERT INTO quantities VALUES ('old-run', 0, 'A', 'nmr', '11B', 'x', 1.0)")
    con.close()
    s = run_pipeline(fake_study, out, jobs=1)
    assert _consistent(out) == s.run_id
    legacy = list((out / "runs").glob("legacy-*"))
    assert len(legacy) == 1 and (legacy[0] / "report.html").read_text() == "<html>old run</html>"
    assert not list((out / "cache").glob("*.pkl"))
    q = read_table(out / "specproc.duckdb", "quantities")
    assert set(q.run_id) == {"old-run", s.run_id} and "selector" not in q.columns
    assert q[q.run_id == "old-run"].nucleus.tolist() == ["11B"]   # old column kept, old rows intact
    assert len(q[q.run_id == s.run_id]) == 7
    assert list(read_table(out / "specproc.duckdb", "runs").run_id) == ["old-run", s.run_id]


def test_nrm_typo_with_the_real_plugins(tmp_path):
    from specproc import plugins

    if "nmr.deconvolve" not in plugins.available("processors"):
        pytest.skip("nmr.deconvolve not registered")
    yml = tmp_path / "p.yaml"
    yml.write_text("name: typo\nmeasurements:\n"
                   "  - {sample: A, technique: nmr, files: x/1, processor: nrm.deconvolve}\n")
    with pytest.raises(ParameterError, match=r"p.yaml:3: unknown processor 'nrm.deconvolve'; did you mean "
                                             r"'nmr.deconvolve'"):
        load_pipeline(yml)
