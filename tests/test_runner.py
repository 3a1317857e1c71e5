"""The command runner (specproc.runner): parallel reading, failures in place, exit codes."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from specproc.core.errors import ReaderError
from specproc.runner import PROCESS_MIN, emit, read_all


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
