"""Data safety of the runner (issue 20): touch nothing outside --out, read nothing but the input,
serve no stale cache entry, never hang on special files, never count a file twice.

Every test runs against real files, links and FIFOs; the ones about processes run the CLI in a
real subprocess (with a timeout, so a hang fails the test instead of blocking the suite).
See docs/reliability.md.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from specproc.core.errors import ParameterError
from specproc.pipeline import load_pipeline, run_pipeline

from conftest import write_fake

HERE = Path(__file__).resolve().parent
FAKE_CLI = HERE / "_fake_cli.py"
TIMEOUT = 120


def _cli(*args, env=None, timeout=TIMEOUT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(FAKE_CLI), *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout)


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _user_folder(base: Path) -> Path:
    """A folder of someone's own files that must survive any run."""
    base.mkdir(parents=True)
    (base / "thesis.tex").write_text("\\chapter{Results}")
    (base / "notes").mkdir()
    (base / "notes" / "day1.txt").write_text("weighed 20 mg")
    (base / "weights.pkl").write_bytes(b"\x80\x04K\x01.")
    (base / ".draft.tmp").write_text("unsaved")
    return base


# --------------------------------------------------------------------------- nothing outside --out
def _main(capsys, *args) -> tuple[int, str]:
    """The CLI command in this process (fake plugins): exit code and stderr. For what is not about
    processes (hangs, kills); it saves the 3 s of imports of a fresh interpreter."""
    from specproc.cli import main

    capsys.readouterr()
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("name", ["runs", "cache"])
def test_symlinked_runs_or_cache_is_refused_and_its_target_untouched(fake_plugins, first_run, tmp_path, capsys,
                                                                     name):
    fake_study, out, _ = first_run()  # a first run makes the folder ours
    user = _user_folder(tmp_path / "mine")
    before = _tree(user)
    import shutil

    shutil.rmtree(out / name)
    os.symlink(user, out / name)
    code, err = _main(capsys, "run", fake_study, "--out", out)
    assert code == 2, err
    assert f"{name} is a symbolic link" in err and "Traceback" not in err
    assert _tree(user) == before


def test_out_holding_a_projects_own_runs_and_cache_is_refused(fake_plugins, fake_study, tmp_path, capsys):
    """``--out .`` in a project folder with its own runs/ and cache/ deleted them (exit 0)."""
    proj = tmp_path / "project"
    for sub in ("runs/sim_001", "runs/sim_002"):
        (proj / sub).mkdir(parents=True)
        (proj / sub / "input.dat").write_text("42")
    (proj / "cache").mkdir()
    (proj / "cache" / "weights.pkl").write_bytes(b"\x80\x04K\x01.")
    before = _tree(proj)
    code, err = _main(capsys, "run", fake_study, "--out", proj)
    assert code == 2, err
    assert "did not write" in err and "runs/sim_001" in err and "cache/weights.pkl" in err
    assert _tree(proj) == before and not (proj / ".specproc-output").exists()


def test_recovery_removes_only_what_specproc_wrote(fake_plugins, first_run, tmp_path, keep_two_runs):
    fake_study, out, _ = first_run()
    # what an interrupted run leaves (ours) ...
    ours_tmp = out / "runs" / ".tmp-20260101T000000-deadbeef"
    ours_tmp.mkdir()
    (ours_tmp / ".specproc-run").write_text("x")
    (ours_tmp / "report.html").write_text("half")
    (out / "runs" / ".tmp-20260101T000001-deadbeef").mkdir()   # killed right after mkdir
    key = "ab" * 32
    (out / "cache" / f".{key}.json.k3j2.tmp").write_text("half")
    (out / "cache" / f"{key}.pkl").write_bytes(b"old pickle entry")
    # ... and what a person put there (not ours: kept)
    (out / "runs" / "my_notes").mkdir()
    (out / "runs" / "my_notes" / "n.txt").write_text("keep me")
    (out / "runs" / ".tmp-backup").mkdir()
    (out / "runs" / ".tmp-backup" / "thesis.tex").write_text("keep me too")
    (out / "cache" / "weights.pkl").write_bytes(b"keep")
    (out / ".draft.tmp").write_text("keep")
    s = run_pipeline(fake_study, out, jobs=1)
    assert not ours_tmp.exists() and not (out / "runs" / ".tmp-20260101T000001-deadbeef").exists()
    assert not (out / "cache" / f".{key}.json.k3j2.tmp").exists() and not (out / "cache" / f"{key}.pkl").exists()
    assert (out / "runs" / "my_notes" / "n.txt").read_text() == "keep me"
    assert (out / "runs" / ".tmp-backup" / "thesis.tex").read_text() == "keep me too"
    assert (out / "cache" / "weights.pkl").read_bytes() == b"keep" and (out / ".draft.tmp").exists()
    # pruning keeps the last runs (KEEP_RUNS, 2 here) and never takes a folder that is not a run specproc wrote
    for _ in range(keep_two_runs + 1):
        run_pipeline(fake_study, out, jobs=1)
    kept = [d.name for d in (out / "runs").iterdir()]
    assert "my_notes" in kept and ".tmp-backup" in kept and s.run_id not in kept


def _special_report_targets(tmp_path: Path) -> dict[str, Path]:
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    dev = tmp_path / "null.html"
    os.symlink(os.devnull, dev)
    return {"FIFO": fifo, "character device": dev}


def test_report_onto_a_fifo_or_device_is_refused_before_reading(tmp_path):
    """``specproc xrd F --report /dev/full`` replaced the device node with a regular file."""
    import stat

    repo = HERE.parents[1]
    data = repo / "sample_data" / "xrd" / "LiBH4_as_received.xrdml"
    for kind, target in _special_report_targets(tmp_path).items():
        t0 = time.perf_counter()
        p = subprocess.run([sys.executable, "-m", "specproc", "xrd", str(data), "--report", str(target)],
                           capture_output=True, text=True, timeout=TIMEOUT)
        assert p.returncode == 2, p.stderr
        assert f"refusing to write over a {kind}" in p.stderr and "Traceback" not in p.stderr
        assert time.perf_counter() - t0 < 60
    assert stat.S_ISFIFO(os.lstat(tmp_path / "report.fifo").st_mode)
    assert os.path.islink(tmp_path / "null.html") and stat.S_ISCHR(os.stat(os.devnull).st_mode)


def test_render_report_refuses_special_files(tmp_path):
    from specproc.core.errors import SpecprocError
    from specproc.report import render_results

    for kind, target in _special_report_targets(tmp_path).items():
        with pytest.raises(SpecprocError, match=f"refusing to write over a {kind}"):
            render_results([], target)


# --------------------------------------------------------------------------- special files never hang
def test_fifos_as_input_store_and_key_file_never_hang(fake_plugins, fake_study, tmp_path):
    data = fake_study.parent.parent / "data"
    os.mkfifo(data / "A" / "a3.fk")                   # a FIFO matched by the glob
    out = tmp_path / "out"
    key_fifo = tmp_path / "key.fifo"
    os.mkfifo(key_fifo)
    p = _cli("run", fake_study, "--out", out, env={"SPECPROC_CACHE_KEY_FILE": str(key_fifo)})
    assert p.returncode == 1, p.stderr                 # broken.fk and the FIFO fail, the rest runs
    doc = json.loads((out / "exports" / "results.json").read_text())
    errs = {Path(f["file"]).name: f["error"] for f in doc["failures"] if f.get("file")}
    assert "a3.fk" in errs and "FIFO" in errs["a3.fk"]
    assert "not a regular file" in p.stderr or "cache key unavailable" in p.stderr
    store = tmp_path / "out2"
    store.mkdir()
    os.mkfifo(store / "specproc.duckdb")
    p = _cli("run", fake_study, "--out", store)
    assert p.returncode == 2 and "not a regular file" in p.stderr, p.stderr


def test_glob_follows_no_link_loop_and_counts_each_file_once(fake_plugins, tmp_path):
    data = tmp_path / "data"
    write_fake(data / "d" / "a.fk", 1.0)
    write_fake(data / "b.fk", 1.0, seed=2)
    os.symlink("..", data / "d" / "up")               # a link to the parent: 41 copies of a.fk before
    os.symlink("loop2", data / "loop1")               # two links to each other
    os.symlink("loop1", data / "loop2")
    os.symlink("a.fk", data / "d" / "alias.fk")        # a second name of the same file
    yml = tmp_path / "p.yaml"
    yml.write_text("name: t\nroot: data\nmeasurements:\n"
                   "  - {sample: A, technique: fake, files: ['**/*.fk', 'd/*.fk'], processor: fake.fit}\n")
    t0 = time.perf_counter()
    pipe = load_pipeline(yml)
    assert time.perf_counter() - t0 < 20  # link loops end (a hang guard)
    assert sorted(Path(t.path).name for t in pipe.tasks) == ["a.fk", "b.fk"]


def test_a_glob_that_would_walk_a_whole_disk_is_refused(fake_plugins, tmp_path, monkeypatch):
    import specproc.pipeline.schema as schema

    for i in range(30):
        write_fake(tmp_path / "data" / f"s{i}" / "x.fk", 1.0)
    monkeypatch.setattr(schema, "MAX_GLOB_ENTRIES", 20)
    with pytest.raises(ParameterError, match="looked at more than 20"):
        schema.expand_files(tmp_path / "data", "**/*.fk")


# --------------------------------------------------------------------------- YAML limits and meaning
def test_duplicate_yaml_keys_are_an_error_naming_both_lines(fake_plugins, tmp_path):
    yml = tmp_path / "p.yaml"
    yml.write_text("name: t\nmeasurements:\n  - sample: A\n    technique: fake\n    files: x.fk\n"
                   "    processor: fake.fit\n    sample: B\n")
    with pytest.raises(ParameterError, match=r"duplicate key 'sample' \(also on line 3\)") as e:
        load_pipeline(yml)
    assert str(e.value).startswith(f"{yml}:7")


def test_non_finite_metadata_is_an_error_not_null(fake_plugins, fake_study):
    text = fake_study.read_text().replace("params: {width_guess: 1.2}",
                                          "params: {width_guess: 1.2}, metadata: {t: .inf}")
    fake_study.write_text(text)
    with pytest.raises(ParameterError, match=r"metadata: t = inf is not a finite number"):
        load_pipeline(fake_study)


def test_huge_sample_name_is_refused_quickly(fake_plugins, fake_study):
    """A 4 MB sample name became 6.2 GB of memory and a 1.4 GB CSV."""
    orig = fake_study.read_text()
    huge = "B" * ((4 << 20) - len(orig) - 100)
    fake_study.write_text(orig.replace("sample: B", "sample: " + huge, 1))
    with pytest.raises(ParameterError, match="characters") as e:
        load_pipeline(fake_study)
    assert f"{fake_study}:" in str(e.value)
    fake_study.write_text(orig.replace("sample: B", "sample: " + "B" * 300, 1))
    with pytest.raises(ParameterError, match="at most 256 characters"):
        load_pipeline(fake_study)


# --------------------------------------------------------------------------- cache keys
def test_cache_key_covers_the_code_that_runs(fake_plugins, first_run, tmp_path, monkeypatch):
    """A reader that changed (+1° 2θ) was served from the cache: the key held only the version."""
    import specproc.pipeline.cache as cache

    fake_study, out, _ = first_run()
    assert run_pipeline(fake_study, out, jobs=1).n_cached == 3
    monkeypatch.setattr(cache, "code_fingerprint", lambda: "another build of specproc")
    assert run_pipeline(fake_study, out, jobs=1).n_cached == 0


def test_code_fingerprint_is_a_digest_of_the_installed_files():
    import specproc.pipeline.cache as cache

    fp = cache.code_fingerprint()
    assert len(fp) == 64 and fp == cache.code_fingerprint()
    cache.code_fingerprint.cache_clear()
    assert cache.code_fingerprint() == fp              # deterministic over the same files


def test_cache_key_covers_every_file_of_a_folder_input_even_through_links(tmp_path):
    from specproc.core.provenance import sha256_path

    exp = tmp_path / "exp" / "1"
    exp.mkdir(parents=True)
    (exp / "acqus").write_text("##$SFO1= 100")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "fid").write_bytes(b"\x00" * 64)
    os.symlink(elsewhere, exp / "pdata")
    os.symlink(".", exp / "self")                      # a loop: walked once
    h1 = sha256_path(exp)
    (elsewhere / "fid").write_bytes(b"\x01" * 64)      # data behind a link changed
    assert sha256_path(exp) != h1
    os.mkfifo(exp / "pipe")
    with pytest.raises(OSError, match="FIFO"):
        sha256_path(exp)
