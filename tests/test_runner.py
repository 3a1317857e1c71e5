"""The command runner (specproc.runner): parallel reading, failures in place, exit codes."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from specproc.core.errors import ReaderError
from specproc.execute import PROCESS_MIN, Task, parallel_map, prepare
from specproc.runner import emit


def read_all(paths, jobs=2, progress=False, then=None, meanwhile=None, params=None):
    """The executor's per-input step over ``paths`` (reading, and preprocessing with ``params``)."""
    import functools

    tasks = [Task(i, 0, None, "nmr", p, "nmr.deconvolve", {}) for i, p in enumerate(paths)]
    return parallel_map(functools.partial(prepare, params=params), tasks, jobs, meanwhile=meanwhile)


def _csv(path, rng, center):
    x = np.linspace(20, -20, 512)
    y = 1.0 / (1 + ((x - center) / 0.8) ** 2) + rng.normal(0, 0.01, x.size)
    with open(path, "w") as fh:
        fh.write("# nucleus: 1H\n# sf_mhz: 400.13\nppm,intensity\n")
        np.savetxt(fh, np.column_stack([x, y]), delimiter=",", fmt="%.6f")


def test_errors_keep_reason_and_path_across_processes():
    e = pickle.loads(pickle.dumps(ReaderError("truncated file", "/data/x.fid")))  # in-memory round trip
    assert e.path == "/data/x.fid" and e.reason == "truncated file"


def test_large_batch_read_in_processes_keeps_order_and_failures(tmp_path):
    rng = np.random.default_rng(0)
    n = PROCESS_MIN + 6
    paths = []
    for i in range(n):
        p = tmp_path / f"s{i:03d}.csv"
        _csv(p, rng, 0.05 * i)
        paths.append(str(p))
    bad = tmp_path / "s_bad.csv"
    bad.write_text("ppm,intensity\n1,nan\n2,3\n")
    paths.insert(10, str(bad))
    out = read_all(paths, jobs=2, progress=False)
    assert len(out) == n + 1
    assert isinstance(out[10], ReaderError) and out[10].path == str(bad)
    for i, m in enumerate(out):
        if i != 10:
            assert m.attrs["provenance"]["source"].endswith(paths[i].rsplit("/", 1)[-1])


def test_cli_bad_file_never_wipes_the_batch_and_usage_errors_exit_2(tmp_path, capsys):
    from specproc.cli import main

    rng = np.random.default_rng(1)
    good = tmp_path / "good.csv"
    _csv(good, rng, 1.0)
    bad = tmp_path / "bad.csv"
    bad.write_text("not a spectrum at all\n")
    code = main(["nmr", str(good), str(bad), "--peaks=1.0", "--json"])
    entries = json.loads(capsys.readouterr().out)
    assert code == 1 and len(entries) == 2
    assert "error" not in entries[0] and abs(entries[0]["components"][0]["center_ppm"] - 1.0) < 0.01
    assert entries[1]["file"] == str(bad) and entries[1]["error"]
    with pytest.raises(SystemExit) as info:
        main(["nmr", str(good), "--peaks=nan"])
    assert info.value.code == 2


def test_text_output_is_a_table_not_json(capsys):
    emit([{"file": "/a/x.csv", "sample": "x", "n": 3, "warnings": ["w1"]}, {"file": "/a/y.csv", "error": "bad"}],
         as_json=False)
    out = capsys.readouterr().out
    assert "x.csv" in out and "w1" in out and "failed (1)" in out and "{" not in out


def _batch(tmp_path, n, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-0.5, 0.5, n)  # one line moving a little across the stack
    paths = []
    for i, c in enumerate(centers):
        p = tmp_path / f"s{i:03d}.csv"
        _csv(p, rng, c)
        paths.append(str(p))
    return paths, centers


def test_preprocess_runs_where_files_are_read_and_gives_the_same_fits(tmp_path):
    """Processor.preprocess in the reading workers: run_many gets Prepared inputs, same numbers as from
    the raw measurements; a preprocessing error takes the input's place like a reading error."""
    import functools

    from specproc import plugins
    from specproc.core.errors import SpecprocError
    from specproc.techniques.nmr.deconvolution import Prepared

    paths, centers = _batch(tmp_path, PROCESS_MIN + 2)
    proc = plugins.get("processors", "nmr.deconvolve")
    p = proc.validate({"peaks": [0.0], "baseline": "constant"})
    prepared = read_all(paths, jobs=2, progress=False, params=p)
    raw = read_all(paths, jobs=2, progress=False)
    assert all(isinstance(x, Prepared) for x in prepared)
    a, b = proc.run_many(prepared, p), proc.run_many(raw, p)
    ca = np.array([r.quantities["p1.center_ppm"].value for r in a])
    cb = np.array([r.quantities["p1.center_ppm"].value for r in b])
    assert np.array_equal(ca, cb)
    assert np.max(np.abs(ca - centers)) < 0.05            # the truth (noise 0.01, FWHM 1.6 ppm)
    # run() accepts the prepared input too, with the same result
    assert proc.run(prepared[3], p).quantities["p1.center_ppm"].value == pytest.approx(ca[3], abs=1e-6)
    # an error of preprocess (2D input without a row would be one; here: a bad region) is per file
    bad = proc.validate({"peaks": [0.0], "region": [100, 120]})
    out = read_all(paths[:3], jobs=2, progress=False, params=bad)
    assert all(isinstance(x, SpecprocError) and "region" in str(x) for x in out)


def test_meanwhile_runs_after_the_fork_and_its_errors_are_ignored(tmp_path):
    import os
    import threading

    paths, _ = _batch(tmp_path, PROCESS_MIN + 1, seed=3)
    seen = {}

    def warm():
        seen["pid"], seen["thread"] = os.getpid(), threading.current_thread().name
        raise RuntimeError("a failing warm-up must not break the reading")

    out = read_all(paths, jobs=2, progress=False, meanwhile=warm)
    assert len(out) == len(paths) and not any(isinstance(x, BaseException) for x in out)
    assert seen["pid"] == os.getpid() and seen["thread"] != threading.main_thread().name


def test_json_output_is_one_valid_document_one_entry_per_line():
    import io

    entries = [{"file": "a", "v": 1.5, "w": float("nan")}, {"file": "b", "error": "bad"}]
    buf = io.StringIO()
    emit(entries, as_json=True, stream=buf)
    text = buf.getvalue()
    assert json.loads(text) == [{"file": "a", "v": 1.5, "w": None}, {"file": "b", "error": "bad"}]
    assert len(text.strip().splitlines()) == 4           # [, one line per entry, ]
    buf = io.StringIO()
    emit([], as_json=True, stream=buf)
    assert json.loads(buf.getvalue()) == []


def test_a_folder_of_experiments_is_expanded_into_its_inputs(tmp_path, capsys):
    """``specproc nmr data/`` processes the experiments inside instead of "no reader recognises"."""
    from specproc.cli import main

    rng = np.random.default_rng(7)
    for i, c in enumerate((1.0, -2.0)):
        (tmp_path / "data" / f"run{i}").mkdir(parents=True)
        _csv(tmp_path / "data" / f"run{i}" / "spectrum.csv", rng, c)
    (tmp_path / "data" / "notes.txt").write_text("weighed 20 mg\n")
    code = main(["nmr", str(tmp_path / "data"), "--peaks=0", "--json"])
    out = capsys.readouterr()
    entries = json.loads(out.out)
    assert code == 0 and "2 nmr input(s) inside" in out.err
    assert [e["file"].rsplit("/", 2)[-2] for e in entries] == ["run0", "run1"]
    assert abs(entries[0]["components"][0]["center_ppm"] - 1.0) < 0.02
    (tmp_path / "empty").mkdir()
    assert main(["nmr", str(tmp_path / "empty"), "--json"]) == 1      # nothing inside: the folder's own error
