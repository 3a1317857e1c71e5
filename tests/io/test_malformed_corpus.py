"""Every registered reader against a corpus of malformed inputs (issue #21 §2).

The corpus is built in a temporary folder from the sample data (``sample_data/``) and, when present,
the real public files (``../shared/realdata``, never copied into the repository): empty files,
truncated halves, header-only heads, random bytes behind the right magic and extension, NaN values,
absurd metadata, and broken Bruker / Varian experiment folders and electrochemistry series folders.
Each input is given to every reader (forced with ``reader=NAME``) and to the automatic choice
(``specproc.read(path)``).

A reader may read a damaged input when what is left is still a valid measurement; when it refuses,
the refusal must be a :class:`~specproc.core.errors.SpecprocError` that names the input and whose
message is phrased for the instrument user: no numpy / Python internals (``ufunc``, ``dtype('``,
``KeyError``, ``object has no attribute``...). A read that takes longer than
:data:`TIMEOUT_S` counts as a failure too (a damaged file must not hang a batch).

Every registered reader is in :data:`STRICT` (a new reader too) except those named in
:data:`NOT_YET_STRICT`, whose failures are reported by an xfail that summarises them by cause. What a
reader does not catch itself is translated by the guard every reader's ``read`` gets from
:class:`specproc.io.base.Reader` (folders refused unless ``reads_folders``, exceptions in user words).
"""
from __future__ import annotations

import os
import re
import signal
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

import specproc as sp
from specproc import plugins
from specproc.core.errors import SpecprocError

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "sample_data"
REALDATA = (REPO / ".." / "shared" / "realdata").resolve()

#: seconds one read may take on a malformed input
TIMEOUT_S = 20

#: text that must never reach a user: Python / numpy internals and library exception names
INTERNALS = ("ufunc", "numpy", "Traceback", "dtype(", "<class", "object has no attribute", "index out of range",
             "KeyError", "TypeError", "ValueError", "IndexError", "AttributeError", "NoneType", "not subscriptable",
             "unsupported operand", "invalid literal", "could not convert", "[Errno", "struct.error",
             "unpack requires", "codec can't decode", "ZeroDivisionError", "division by zero", "OverflowError",
             "UnicodeDecodeError", "NotImplementedError", "AssertionError", "RecursionError", "MemoryError",
             "EOFError", "OSError", "IOError", "UnboundLocalError", "StopIteration", "RuntimeError",
             "object of type", "argument of type", "referenced before assignment", "BadZipFile")
_ADDRESS = re.compile(r"\bat 0x[0-9a-fA-F]{6,}")

#: file seeds: (corpus name, path relative to sample_data/ or realdata/, "sample" | "real")
FILE_SEEDS = [
    ("nmrjdx", "nmr/jcamp/LiBH4_11B.jdx", "sample"),
    ("nmrcsv", "nmr/csv/LiBH4-70LiNBH_1H.csv", "sample"),
    ("xrdml", "xrd/LiBH4_as_received.xrdml", "sample"),
    ("xy", "xrd/LiBH4_as_received.xy", "sample"),
    ("irjdx", "ftir/LiBH4.jdx", "sample"),
    ("ircsv", "ftir/csv/LiBH4.csv", "sample"),
    ("spc", "ftir/spc/LiBH4.spc", "sample"),
    ("msa", "eels/LiBH4_BK.msa", "sample"),
    ("hspy", "eels/LiBH4_BK.hspy", "sample"),
    ("vms", "xps/Li_vs_LiBH4.vms", "sample"),
    ("gwy", "afm/Li_vs_LiBH4.gwy", "sample"),
    ("nc", "afm/Li_vs_LiBH4-70LiNBH_forcemap.nc", "sample"),
    ("opus", "ftir/test.0000", "real"),
    ("irjdx_real", "ftir/xyinc1.jdx", "real"),
    ("dm3", "eels/EELS_STO.dm3", "real"),
    ("dm4", "eels/EELS_SI.dm4", "real"),
    ("sxm", "afm/A151216.123306-02602.sxm", "real"),
    ("jpkforce", "afm/fmt-jpk-fd_spot3-0192.jpk-force", "real"),
    ("ibw", "afm/fmt-igor-fd_SiN_FD_plot.ibw", "real"),
    ("jpkimg", "afm/sample_0.jpk", "real"),
    ("npl", "xps/Mutlipak_vms.npl", "real"),
    ("xrdml_real", "xrd/XRD-918-16_10.xrdml", "real"),
    ("mpt", "echem/public/exampleDataBioLogic.mpt", "sample"),
    ("zplot", "echem/public/exampleDataZPlot.z", "sample"),
    ("nova", "echem/LiBH4-70LiNBH_EIS_30C_nova.txt", "sample"),
    ("echemcsv", "echem/LiBH4_CCD.csv", "sample"),
    ("dta", "echem/LiBH4-70LiNBH_DC_blocking.DTA", "sample"),
]
#: folder seeds: (corpus name, path, "sample" | "real", kind)
FOLDER_SEEDS = [
    ("bruker", "nmr/LiBH4_11B/1", "sample", "bruker"),
    ("bruker1d", "nmr/topspin_1d_1H_MAS/1", "real", "bruker"),
    ("bruker2d", "nmr/dnp_29Si_CP_satrec/100", "real", "bruker"),
    ("varian", "nmr/varian_87Rb_satrec2D.fid", "real", "varian"),
    ("echemdir", "echem/LiNBH_EIS_Tseries", "sample", "echem"),
]

RAS = ("*RAS_DATA_START\r\n*RAS_HEADER_START\r\n*FILE_SAMPLE \"s\"\r\n*HW_XG_TARGET_NAME \"Cu\"\r\n"
       "*HW_XG_WAVE_LENGTH_ALPHA1 \"1.540593\"\r\n*MEAS_DATA_COUNT \"50\"\r\n*MEAS_SCAN_AXIS_X \"TwoThetaTheta\"\r\n"
       "*MEAS_SCAN_STEP \"0.1\"\r\n*RAS_HEADER_END\r\n*RAS_INT_START\r\n"
       + "".join(f"{20 + 0.1 * i:.4f} {100 + i:.4f} 1.0000\r\n" for i in range(50))
       + "*RAS_INT_END\r\n*RAS_DATA_END\r\n")
SPEC = ("#F t.spec\n#E 1600000000\n#D Mon Jan 01 00:00:00 2024\n\n#S 1  ascan  tth 10 60 50 1\n"
        "#D Mon Jan 01 00:00:00 2024\n#T 1  (Seconds)\n#N 3\n#L Two Theta  Epoch  Detector\n"
        + "".join(f"{10 + 0.5 * i:.4f} 0 {100 + i}\n" for i in range(50)))

_NUM = re.compile(rb"(?<![A-Za-z_])[-+]?\d+\.?\d*(?:[eE][-+]?\d+)?")


# ---------------------------------------------------------------- building the corpus
def _is_text(data: bytes) -> bool:
    return b"\x00" not in data[:4096]


def _data_start(data: bytes) -> int:
    """Offset of the first line that holds only numbers (the data block of a text export)."""
    pos = 0
    for line in data.splitlines(keepends=True):
        toks = line.replace(b",", b" ").replace(b";", b" ").split()
        if len(toks) >= 2 and all(_NUM.fullmatch(t) for t in toks):
            return pos
        pos += len(line)
    return len(data)


def _sub_numbers(data: bytes, start: int, stop: int, value: bytes, every: int = 1) -> bytes:
    count = 0

    def rep(m):
        nonlocal count
        count += 1
        return value if count % every == 0 else m.group()
    return data[:start] + _NUM.sub(rep, data[start:stop]) + data[stop:]


def file_mutations(data: bytes, rng: np.random.Generator) -> dict[str, bytes]:
    """Malformed variants of one good file's bytes."""
    n = len(data)
    out = {"empty": b"", "half": data[:n // 2], "head": data[:max(16, min(512, n // 8))],
           "magic_random": data[:8] + rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()}
    if _is_text(data):
        start = _data_start(data)
        out["header_only"] = data[:start]
        out["nan"] = _sub_numbers(data, start + (n - start) // 2, n, b"nan", every=3)
        out["absurd_huge"] = _sub_numbers(data, 0, start, b"1e308")
        out["absurd_zero"] = _sub_numbers(data, 0, start, b"0")
        out["absurd_negative"] = _sub_numbers(data, 0, start, b"-7")
        out["binary_junk"] = data[:start] + rng.integers(0, 256, 2048, dtype=np.uint8).tobytes()
    else:
        nan = b"\x00\x00\xc0\x7f" * (n // 4 + 1)  # NaN as little-endian float32 and float64
        out["nan"] = data[:int(n * .4)] + nan[:int(n * .5)] + data[int(n * .9):]
        out["absurd_header"] = data[:4] + b"\xff" * 60 + data[64:]
        out["absurd_header_zero"] = data[:8] + b"\x00" * 120 + data[128:]
        out["text_junk"] = data[:8] + b"1 2 3\nnan inf\n" * 40
    return out


def _copy_tree(src: Path, dst: Path) -> None:
    """Copy a folder writable (the real-data files are read-only)."""
    dst.mkdir(parents=True, exist_ok=True)
    for item in src.iterdir():
        if item.is_dir():
            _copy_tree(item, dst / item.name)
        else:
            (dst / item.name).write_bytes(item.read_bytes())


def _set_par(path: Path, key: str, value: str) -> None:
    text = path.read_text(encoding="latin-1")
    text = re.sub(rf"^##\$?{re.escape(key)}=.*$", f"##${key}= {value}", text, flags=re.M)
    path.write_text(text, encoding="latin-1")


def _set_procpar(path: Path, key: str, value: str) -> None:
    lines = path.read_text(encoding="latin-1").split("\n")
    for i, ln in enumerate(lines[:-1]):
        if ln.split(" ", 1)[0] == key:
            lines[i + 1] = f"1 {value}"
    path.write_text("\n".join(lines), encoding="latin-1")


def bruker_mutations(rng) -> dict[str, Callable[[Path], object]]:
    """Edits of a copied Bruker experiment folder (each gets a fresh copy)."""
    def raw(d: Path) -> Path:
        return d / ("fid" if (d / "fid").exists() else "ser")

    def trunc(f: Path, frac=.5):
        if f.exists():
            f.write_bytes(f.read_bytes()[:int(f.stat().st_size * frac)])

    def write(f, b):
        return lambda d: (d / f).write_bytes(b)
    junk = rng.integers(0, 256, 2048, dtype=np.uint8).tobytes()
    m = {
        "raw_empty": lambda d: raw(d).write_bytes(b""),
        "raw_half": lambda d: trunc(raw(d)),
        "raw_odd": lambda d: raw(d).write_bytes(raw(d).read_bytes() + b"\x01\x02\x03"),
        "acqus_empty": write("acqus", b""),
        "acqus_half": lambda d: trunc(d / "acqus"),
        "acqus_head": lambda d: trunc(d / "acqus", .05),
        "acqus_random": write("acqus", b"##TITLE= x\n" + junk),
        "acqus_missing": lambda d: (d / "acqus").unlink(),
        "procs_random": lambda d: [(p / "procs").write_bytes(junk) for p in (d / "pdata").glob("*")],
        "vdlist_junk": write("vdlist", b"1.0 two\n\x00\x01"),
        "acqu2s_td_huge": lambda d: _set_par(d / "acqu2s", "TD", "99999999") if (d / "acqu2s").exists() else None,
    }
    for key, vals in {"TD": ("-1", "0", "1e12", "nan", "abc"), "SW_h": ("0", "-5", "nan", "1e308"),
                      "SFO1": ("0", "1e308", "nan", "<x>"), "DTYPA": ("7", "-1"), "BYTORDA": ("9",),
                      "DECIM": ("1e308", "nan"), "GRPDLY": ("nan", "1e300")}.items():
        for v in vals:
            m[f"{key}={v}"] = (lambda k, v: lambda d: _set_par(d / "acqus", k, v))(key, v)
    return m


def varian_mutations(rng) -> dict[str, Callable[[Path], object]]:
    def trunc(f: Path, frac=.5):
        f.write_bytes(f.read_bytes()[:int(f.stat().st_size * frac)])
    junk = rng.integers(0, 256, 2048, dtype=np.uint8).tobytes()
    m = {
        "fid_empty": lambda d: (d / "fid").write_bytes(b""),
        "fid_half": lambda d: trunc(d / "fid"),
        "fid_header_only": lambda d: trunc(d / "fid", 32 / (d / "fid").stat().st_size),
        "fid_header_junk": lambda d: (d / "fid").write_bytes(b"\xff" * 32 + (d / "fid").read_bytes()[32:]),
        "procpar_empty": lambda d: (d / "procpar").write_bytes(b""),
        "procpar_half": lambda d: trunc(d / "procpar"),
        "procpar_random": lambda d: (d / "procpar").write_bytes(junk),
        "procpar_missing": lambda d: (d / "procpar").unlink(),
    }
    for key, vals in {"np": ("0", "-2", "1e12"), "sw": ("0", "nan"), "sfrq": ("0", "1e308", "nan"),
                      "arraydim": ("0", "1e9")}.items():
        for v in vals:
            m[f"{key}={v}"] = (lambda k, v: lambda d: _set_procpar(d / "procpar", k, v))(key, v)
    return m


def echem_folder_mutations(rng) -> dict[str, Callable[[Path], object]]:
    """Edits of a copied folder of electrochemistry exports (a temperature series)."""
    def first(d: Path) -> Path:
        return sorted(f for f in d.iterdir() if f.is_file())[0]

    def keep_one(d: Path):
        for f in sorted(f for f in d.iterdir() if f.is_file())[1:]:
            f.unlink()
    junk = rng.integers(0, 256, 2048, dtype=np.uint8).tobytes()
    return {
        "file_empty": lambda d: first(d).write_bytes(b""),
        "file_half": lambda d: first(d).write_bytes(first(d).read_bytes()[:first(d).stat().st_size // 2]),
        "file_junk": lambda d: first(d).write_bytes(first(d).read_bytes()[:8] + junk),
        "file_nan": lambda d: first(d).write_bytes(_sub_numbers(first(d).read_bytes(), _data_start(
            first(d).read_bytes()), first(d).stat().st_size, b"nan", every=3)),
        "only_one": keep_one,
        "foreign_binary": lambda d: (d / "scope.bin").write_bytes(junk),
    }


_FOLDER_MUTATIONS = {"bruker": bruker_mutations, "varian": varian_mutations, "echem": echem_folder_mutations}


def build_corpus(root: Path) -> list[tuple[str, Path]]:
    """Write the malformed inputs under ``root``; return ``(case id, input path)`` pairs.

    Every case lives in its own folder named by its id, so an error that names the input (or a
    file inside an input folder) contains the id.
    """
    rng = np.random.default_rng(21)
    cases: list[tuple[str, Path]] = []

    def add_file(cid: str, name: str, data: bytes):
        d = root / cid
        d.mkdir(parents=True)
        (d / name).write_bytes(data)
        cases.append((cid, d / name))

    seeds = [(n, (SAMPLES if where == "sample" else REALDATA) / rel) for n, rel, where in FILE_SEEDS]
    seeds = [(n, p.name, p.read_bytes()) for n, p in seeds if p.is_file()]
    seeds += [("ras", "scan.ras", RAS.encode()), ("spec", "t.spec", SPEC.encode())]
    for n, name, data in seeds:
        for mut, b in file_mutations(data, rng).items():
            add_file(f"{n}__{mut}", name, b)
    add_file("any__empty_noext", "empty", b"")
    add_file("any__random_noext", "random", rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    for n, rel, where, kind in FOLDER_SEEDS:
        src = (SAMPLES if where == "sample" else REALDATA) / rel
        if not src.is_dir():
            continue
        muts = _FOLDER_MUTATIONS[kind](rng)
        for mut, fn in muts.items():
            cid = f"{n}__{mut}".replace("=", "_").replace("<", "").replace(">", "")
            dst = root / cid / src.name
            _copy_tree(src, dst)
            fn(dst)
            cases.append((cid, dst))
    empty_dir = root / "any__empty_folder" / "exp"
    empty_dir.mkdir(parents=True)
    cases.append(("any__empty_folder", empty_dir))
    return cases


# ---------------------------------------------------------------- checking one read
class _Clock:
    """A SIGALRM time limit that a reader cannot swallow: after :data:`TIMEOUT_S` it raises
    TimeoutError every second (a bare ``except:`` in a library does not stop it) and remembers that
    it fired. The handler is installed once per test (:meth:`installed`); each read only arms and
    disarms the timer (:meth:`limit`), two system calls instead of four."""

    def __init__(self, seconds: int):
        self.seconds, self.fired = seconds, False

    def _alarm(self, signum, frame):
        self.fired = True
        raise TimeoutError(f"read took longer than {self.seconds} s")

    @contextmanager
    def installed(self):
        if os.name != "posix":
            yield self
            return
        old = signal.signal(signal.SIGALRM, self._alarm)
        try:
            yield self
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0, 0)
            signal.signal(signal.SIGALRM, old)

    @contextmanager
    def limit(self):
        self.fired = False
        if os.name != "posix":
            yield self
            return
        signal.setitimer(signal.ITIMER_REAL, self.seconds, 1.0)
        try:
            yield self
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0, 0)


def check_one(reader: str | None, cid: str, path: Path, clock: _Clock | None = None) -> str | None:
    """None when the read succeeds or fails properly, else what is wrong (one line).

    ``clock``: an installed :class:`_Clock` (one is installed for this read alone when None).
    """
    if clock is None:
        clock = _Clock(TIMEOUT_S)
        with clock.installed():
            return check_one(reader, cid, path, clock)
    why = None
    try:
        with clock.limit():
            sp.read(path, reader=reader)
    except SpecprocError as exc:
        why = _judge(exc, cid)
    except Exception as exc:  # noqa: BLE001 - the point of the test
        why = f"not a SpecprocError: {type(exc).__name__}: {str(exc)[:200]}"
    return f"read took longer than {TIMEOUT_S} s" if clock.fired else why


def _judge(exc: SpecprocError, cid: str) -> str | None:
    """What is wrong with a refusal: not naming the input, or internals in the message."""
    msg = str(exc)
    if exc.path is None or cid not in msg:
        return f"does not name the input: {msg[:200]!r}"
    bad = [w for w in INTERNALS if w.lower() in msg.lower()] + _ADDRESS.findall(msg)
    if bad:
        return f"internals {bad} in: {msg[:240]!r}"
    return None


READERS = sorted(plugins.available("readers")) + ["<auto>"]

#: readers not yet held to the corpus (their failures xfail with a summary by cause); empty: every
#: registered reader, a new one included, is STRICT.
NOT_YET_STRICT: set[str] = set()
#: readers held to the corpus: every failure is a test failure (issue #21 §2)
STRICT = set(plugins.available("readers")) - NOT_YET_STRICT


def _chosen_reader(path: Path) -> str | None:
    """The reader :func:`specproc.read` picks for ``path`` (None when none does)."""
    from specproc.io import guess_reader

    try:
        return guess_reader(path).name
    except SpecprocError:
        return None


def _cause(why: str) -> str:
    """A short family of a failure for the xfail summary."""
    if "longer than" in why:
        return "hangs"
    m = re.search(r"internals (\[[^\]]*\])", why)
    return f"internals {m.group(1)}" if m else why.split(":", 1)[0]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return build_corpus(tmp_path_factory.mktemp("malformed"))


@pytest.mark.parametrize("reader", READERS)
def test_reader_refuses_malformed_inputs_in_user_terms(corpus, reader):
    """Every malformed input is read or refused with a SpecprocError naming it, in user terms.

    Failures of readers outside :data:`STRICT` (``<auto>``: of the reader it picks) make the test
    xfail with a summary by cause, so the corpus reports them without blocking their owners.
    """
    name = None if reader == "<auto>" else reader
    with _Clock(TIMEOUT_S).installed() as clock:
        problems = {cid: why for cid, path in corpus if (why := check_one(name, cid, path, clock))}
    owner = {cid: (reader if name else _chosen_reader(path)) for cid, path in corpus if cid in problems}
    strict = {c: w for c, w in problems.items() if owner[c] in STRICT}
    assert not strict, f"{reader}: {len(strict)} malformed input(s) not refused in user terms:\n" + "\n".join(
        f"  {c} [{owner[c]}]: {w}" for c, w in sorted(strict.items()))
    if problems:
        causes: dict[str, int] = {}
        for w in problems.values():
            causes[_cause(w)] = causes.get(_cause(w), 0) + 1
        pytest.xfail(f"{reader}: {len(problems)} case(s) in readers outside STRICT (issue #21): "
                     + "; ".join(f"{n} x {c}" for c, n in sorted(causes.items(), key=lambda x: -x[1])))


def test_corpus_covers_every_reader_format(corpus):
    """The corpus holds at least one input per format family of the registered readers."""
    ids = {cid.split("__")[0] for cid, _ in corpus}
    assert {"nmrjdx", "xrdml", "xy", "irjdx", "ircsv", "spc", "msa", "hspy", "vms", "gwy", "nc", "ras", "spec",
            "bruker", "mpt", "zplot", "nova", "echemcsv", "dta", "echemdir"} <= ids
    assert len(corpus) > 100
