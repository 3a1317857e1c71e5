"""Output of a multi-file command is never lost (``specproc ftir a.jdx b.jdx --json > out.json``).

The readers used to silence chatty libraries with ``contextlib.redirect_stdout``, which swaps the
process-wide ``sys.stdout``; with files read in threads, overlapping swaps restored in the wrong order
and left ``sys.stdout`` on a discarded buffer: 0-byte output, exit 0 (6 of 6 runs of 20 JCAMP files).
Library code now never touches ``sys.stdout``/``sys.stderr`` (``specproc.core.quiet``):

* the real command, in a subprocess, stdout redirected to a file, over >= 8 files of each reader
  family that wrapped a library (JCAMP IR, SPEC, Rigaku RAS, VAMAS; and JCAMP NMR, whose nmrglue
  warnings were silenced by swapping the process-wide warning filters), 20 times: the file is one
  JSON document with one successful entry per input, every time;
* a static test: no module of the package assigns ``sys.stdout``/``sys.stderr`` or uses
  ``redirect_stdout``/``redirect_stderr``;
* the helper itself: concurrent threads each get their own library output, nothing reaches stdout.
"""
from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SPECPROC = Path(sys.executable).with_name("specproc")
N_FILES = 8
REPEATS = 20


# ------------------------------------------------------------------ input families (>= 8 files each)
def _jcamp_ir(folder: Path) -> list[Path]:
    src = sorted((REPO / "sample_data" / "ftir").glob("*.jdx"))
    assert src, "sample_data/ftir/*.jdx missing"
    out = []
    for i in range(N_FILES):
        p = folder / f"ir_{i}.jdx"
        shutil.copyfile(src[i % len(src)], p)
        out.append(p)
    return out


_SPEC = """#F {name}
#E 1600000000
#D Mon Jan 01 00:00:00 2024
#O0 tth  th  chi

#S 1  ascan  tth 10 60 200 1
#D Mon Jan 01 00:00:00 2024
#T 1  (Seconds)
#P0 10 5 0
#N 3
#L Two Theta  Monitor  Detector
{rows}
"""


def _pattern(n=400, seed=0):
    x = np.linspace(15.0, 45.0, n)
    rng = np.random.default_rng(seed)
    y = 50 + 2000 * np.exp(-0.5 * ((x - 26.0) / 0.08) ** 2) + 900 * np.exp(-0.5 * ((x - 33.0) / 0.09) ** 2)
    return x, rng.poisson(y).astype(float)


def _spec(folder: Path) -> list[Path]:
    out = []
    for i in range(N_FILES):
        x, y = _pattern(seed=i)
        p = folder / f"scan_{i}.spec"
        p.write_text(_SPEC.format(name=p.name, rows="\n".join(f"{a:.4f} 1000 {b:.0f}" for a, b in zip(x, y))))
        out.append(p)
    return out


_RAS_HEADER = """*RAS_DATA_START
*RAS_HEADER_START
*FILE_SAMPLE "s{i}"
*HW_XG_TARGET_NAME "Cu"
*HW_XG_WAVE_LENGTH_ALPHA1 "1.540593"
*HW_XG_WAVE_LENGTH_ALPHA2 "1.544414"
*MEAS_DATA_COUNT "{n}"
*MEAS_SCAN_AXIS_X "TwoThetaTheta"
*MEAS_SCAN_AXIS_X_INTERNAL "TwoThetaTheta"
*MEAS_SCAN_STEP "{step}"
*MEAS_SCAN_UNIT_Y "counts"
*RAS_HEADER_END
*RAS_INT_START
"""


def _ras(folder: Path) -> list[Path]:
    out = []
    for i in range(N_FILES):
        x, y = _pattern(seed=100 + i)
        head = _RAS_HEADER.format(i=i, n=x.size, step=f"{x[1] - x[0]:.5f}").replace("\n", "\r\n")
        body = "".join(f"{a:.5f} {b:.1f} 1.0000\r\n" for a, b in zip(x, y))
        p = folder / f"scan_{i}.ras"
        p.write_bytes((head + body + "*RAS_INT_END\r\n*RAS_DATA_END\r\n").encode("latin-1"))
        out.append(p)
    return out


def _vamas(folder: Path) -> list[Path]:
    from specproc.testing.xps_synth import write_vamas

    out = []
    # four etch levels of a finely sampled region (~10k values): parsing long enough for reads to
    # overlap (with ~4k values the old redirect_stdout lost no output in 20 runs, with 10k 7 of 20)
    be = np.round(np.arange(292.0, 280.0 - 1e-9, -0.005), 4)
    for i in range(N_FILES):
        rng = np.random.default_rng(i)
        y = 200 + 3000 * np.exp(-0.5 * ((be - 284.8) / 0.6) ** 2)
        regions = [{"species": "C", "transition": "1s", "be": be, "Y": rng.poisson(y, (4, y.size))}]
        p = folder / f"xps_{i}.vms"
        write_vamas(p, regions, [0.0, 30.0, 60.0, 90.0], sample=f"S{i}")
        out.append(p)
    return out


def _jcamp_nmr(folder: Path) -> list[Path]:
    from specproc.testing.nmr_synth import write_jcamp_spectrum

    out = []
    ppm = np.linspace(10.0, -10.0, 2048)
    for i in range(N_FILES):
        y = 1000 / (1 + ((ppm - 1.0) / 0.05) ** 2) + np.random.default_rng(i).normal(0, 5, ppm.size)
        p = folder / f"nmr_{i}.jdx"
        write_jcamp_spectrum(p, ppm, y, title=f"s{i}", nucleus="1H", sf_mhz=400.13, x_units="PPM")
        out.append(p)
    return out


#: family -> (its technique command and quick options, the command of the stress runs)
FAMILIES = {
    "jcamp-ir": (_jcamp_ir, ["ftir", "--atmosphere", "none", "--baseline", "linear", "--region", "2050:2550"],
                 None),
    "jcampdx-nmr": (_jcamp_nmr, ["nmr", "--peaks", "1.0"], None),
    "spec": (_spec, ["xrd", "--phases", "LiH", "--wavelength", "0.15406"], "nmr"),
    "rigaku-ras": (_ras, ["xrd", "--phases", "LiH"], "nmr"),
    "vamas": (_vamas, ["xps"], "nmr"),
}

#: the stress runs: ``specproc.cli.main`` called again and again in ONE interpreter whose stdout is
#: the output file; after each run a record separator is written straight to fd 1 (not through
#: sys.stdout), so a run whose JSON went to a swapped-in buffer leaves an empty record. One process
#: for the 20 runs of a family because a fresh ``specproc`` costs 2-4 s of imports on the shared
#: 2-core machine (``test_technique_command_writes_its_json`` runs the real command once a family).
STRESS = """
import json, os, sys
from specproc.cli import main
codes = []
for argv in json.loads(sys.argv[1]):
    codes.append(main(argv))
    sys.stdout.flush()
    sys.__stdout__.flush()
    os.write(1, b"\\x1e")
os.write(2, ("\\nCODES " + json.dumps(codes)).encode())
"""


def _entries_ok(doc, files, technique_error: str | None) -> list:
    """Problems of one run's JSON: one entry per input, in order, each a result (or, for the
    stress command of another technique, exactly the technique mismatch: the file WAS read)."""
    bad = []
    if [Path(e.get("file", "")).name for e in doc] != [f.name for f in files]:
        bad.append(f"entries {[e.get('file') for e in doc]}")
    for e in doc:
        if technique_error is None and "error" in e:
            bad.append(e)
        elif technique_error is not None and technique_error not in str(e.get("error")):
            bad.append(e)
    return bad


@pytest.mark.slow
@pytest.mark.parametrize("family", list(FAMILIES))
def test_multifile_json_is_never_lost(family, tmp_path):
    """20 runs over 8 files of one reader family, read in threads: every run's JSON reaches the file."""
    make, own, stress = FAMILIES[family]
    files = make(tmp_path)
    assert len(files) >= N_FILES
    # a stress command of another technique: the reader ran (in a thread) and the processor refused
    # the measurement's technique, which the error names
    argv = [stress, *map(str, files), "--json"] if stress else [own[0], *map(str, files), "--json", *own[1:]]
    tech_err = "this processor needs nmr" if stress else None
    out = tmp_path / "out.txt"
    with open(out, "wb") as fh:  # cwd: the installed specproc, never a checkout's folder on sys.path
        p = subprocess.run([sys.executable, "-c", STRESS, json.dumps([argv] * REPEATS)], stdout=fh,
                           stderr=subprocess.PIPE, timeout=600, cwd=tmp_path,
                           env={**os.environ, "PYTHONWARNINGS": "ignore"})
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 0, err[-2000:]
    records = out.read_bytes().split(b"\x1e")
    assert records[-1] == b"" and len(records) == REPEATS + 1, f"{len(records) - 1} records for {REPEATS} runs"
    problems = []
    for i, rec in enumerate(records[:-1]):
        if not rec.strip():
            problems.append(f"run {i}: empty output")
            continue
        bad = _entries_ok(json.loads(rec), files, tech_err)
        if bad:
            problems.append(f"run {i}: {bad[:2]}")
    assert not problems, f"{family}: {len(problems)} of {REPEATS} runs lost or garbled their output:\n" + \
        "\n".join(problems[:5])


def _run(argv: list[str], out: Path) -> tuple[int, str]:
    with open(out, "wb") as fh:  # stdout is a file, as in `specproc ... --json > out.json`
        p = subprocess.run([str(SPECPROC), *argv], stdout=fh, stderr=subprocess.PIPE, timeout=600,
                           cwd=out.parent, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    return p.returncode, p.stderr.decode(errors="replace")


@pytest.mark.slow
@pytest.mark.parametrize("family", list(FAMILIES))
def test_technique_command_writes_its_json(family, tmp_path):
    """The real ``specproc <technique> 8 FILES --json > out.json``: exit 0, one result per input."""
    if not SPECPROC.exists():
        pytest.skip(f"{SPECPROC} not installed")
    make, own, _ = FAMILIES[family]
    files = make(tmp_path)
    out = tmp_path / "out.json"
    code, err = _run([own[0], *map(str, files), "--json", *own[1:]], out)
    text = out.read_text()
    assert text.strip(), f"empty stdout (exit {code}); stderr: {err[-500:]}"
    assert not _entries_ok(json.loads(text), files, None)
    assert code == 0, err[-500:]


def test_jcamp_ir_command_writes_its_json(tmp_path):
    """The reported case, once, in the quick suite: ``specproc ftir 8 x .jdx --json > out.json``."""
    if not SPECPROC.exists():
        pytest.skip(f"{SPECPROC} not installed")
    files = _jcamp_ir(tmp_path)
    code, err = _run(["ftir", *map(str, files), "--json", *FAMILIES["jcamp-ir"][1][1:]], tmp_path / "o.json")
    doc = json.loads((tmp_path / "o.json").read_text() or "null")
    assert doc is not None and not _entries_ok(doc, files, None) and code == 0, err[-500:]


# ------------------------------------------------------------------ static: nobody swaps the streams
def _stream_swaps(tree: ast.AST) -> list[tuple[int, str]]:
    bad = []
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        for t in targets:
            for el in (t.elts if isinstance(t, ast.Tuple) else [t]):
                if (isinstance(el, ast.Attribute) and el.attr in ("stdout", "stderr")
                        and isinstance(el.value, ast.Name) and el.value.id == "sys"):
                    bad.append((node.lineno, f"assigns sys.{el.attr}"))
        if isinstance(node, ast.Call):  # setattr(sys, "stdout", ...)
            f = node.func
            if (isinstance(f, ast.Name) and f.id == "setattr" and len(node.args) >= 2
                    and isinstance(node.args[0], ast.Name) and node.args[0].id == "sys"
                    and isinstance(node.args[1], ast.Constant) and node.args[1].value in ("stdout", "stderr")):
                bad.append((node.lineno, f"setattr(sys, {node.args[1].value!r})"))
        name = None
        if isinstance(node, ast.Attribute):
            name = node.attr
        elif isinstance(node, ast.Name):
            name = node.id
        elif isinstance(node, ast.ImportFrom):
            for a in node.names:
                if a.name in ("redirect_stdout", "redirect_stderr"):
                    bad.append((node.lineno, f"imports {a.name}"))
        if name in ("redirect_stdout", "redirect_stderr"):
            bad.append((node.lineno, f"uses {name}"))
    return bad


def test_no_module_swaps_sys_stdout_or_stderr():
    found = []
    for path in sorted((REPO / "specproc").rglob("*.py")):
        for line, what in _stream_swaps(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            found.append(f"{path.relative_to(REPO)}:{line}: {what}")
    assert not found, ("library code must not swap the process-wide streams (files are read in threads; "
                       "use specproc.core.quiet):\n" + "\n".join(found))


def test_static_check_catches_the_patterns():
    src = ("import sys, contextlib\nfrom contextlib import redirect_stderr\nsys.stdout = None\n"
           "with contextlib.redirect_stdout(None):\n    pass\nsetattr(sys, 'stderr', None)\n")
    assert len(_stream_swaps(ast.parse(src))) == 4


# ------------------------------------------------------------------ the helper, in threads
def test_quiet_captures_per_thread_and_never_touches_stdout(capfd):
    import types

    from specproc.core.quiet import quiet

    lib = types.ModuleType("chatty_lib")
    exec("import warnings\nfrom warnings import warn\n"
         "def work(tag, n):\n    for i in range(n):\n        print(tag, i)\n    warn(f'{tag} done')\n    return tag\n",
         lib.__dict__)
    stdout_before = sys.stdout
    results: dict[str, list[str]] = {}
    barrier = threading.Barrier(8)

    def job(tag):
        barrier.wait()
        with quiet(lib) as lines:
            lib.work(tag, 200)
        results[tag] = lines

    threads = [threading.Thread(target=job, args=(f"t{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sys.stdout is stdout_before
    for tag, lines in results.items():
        assert lines[:200] == [f"{tag} {i}" for i in range(200)]
        assert lines[200] == f"UserWarning: {tag} done"
    out, err = capfd.readouterr()
    assert out == "" and "done" not in err
    # outside a quiet block the library prints and warns as it always did
    with pytest.warns(UserWarning, match="t9 done"):
        lib.work("t9", 1)
    assert capfd.readouterr().out == "t9 0\n"
