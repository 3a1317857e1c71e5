"""Peak memory of the text readers (NMR CSV ``nmr-text``, IR CSV ``ir-text``, 2θ ``.xy`` ``xrd-text``).

For generated files of 10, 40 and 85 MB, each file is read by ``sp.read(path, reader=...)`` in a fresh
child process; its peak resident set (``ru_maxrss`` from :func:`os.wait4`, i.e. the child's own
``RUSAGE_CHILDREN`` entry) is compared with the same child reading a 100-row file of the same format
(the interpreter, numpy/xarray/pyarrow and the reader's imports: the baseline). The table shows

    ratio = (peak - baseline) / file size

Target: ratio <= 3 (an 85 MB FTIR CSV used 2.08 GB, ratio >= 24, through pandas' Python engine).

    .venv/bin/python benchmarks/bench_text_memory.py [--sizes 10 40 85] [--keep DIR]

Writes benchmarks/results/text_memory.json (``run_all.save``).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run_all import save  # noqa: E402

#: reader -> (header lines, row format, x range)
FORMATS = {
    "ir-text": ("# sample: bench\n# resolution_cm1: 4\nwavenumber_cm-1,absorbance\n", "{:.6f},{:.8f}\n",
                (400.0, 4000.0)),
    "nmr-text": ("# nucleus: 1H\n# sf_mhz: 400.13\nppm,intensity\n", "{:.7f},{:.8e}\n", (12.0, -2.0)),
    "xrd-text": ("# 2theta intensity\n", "{:.6f} {:.3f}\n", (5.0, 120.0)),
}
EXT = {"ir-text": ".csv", "nmr-text": ".csv", "xrd-text": ".xy"}


def write(path: Path, reader: str, target_bytes: int) -> int:
    """Write a file of about ``target_bytes`` in the reader's format; returns the number of rows."""
    header, fmt, (lo, hi) = FORMATS[reader]
    def values(n):
        x = np.linspace(lo, hi, n)
        y = 100.0 + 1000.0 * np.exp(-0.5 * ((x - (lo + hi) / 2) / ((hi - lo) / 50)) ** 2)
        y = y + np.random.default_rng(0).normal(0, 1, n)
        return x, (y / 2000.0 if reader == "ir-text" else y)

    xs, ys = values(1000)
    row_bytes = np.mean([len(fmt.format(a, b)) for a, b in zip(xs.tolist(), ys.tolist())])
    n = max(100, int((target_bytes - len(header)) / row_bytes))
    x, y = values(n)
    with open(path, "w") as fh:
        fh.write(header)
        chunk = 200_000
        for i in range(0, n, chunk):
            fh.write("".join(fmt.format(a, b) for a, b in zip(x[i:i + chunk].tolist(), y[i:i + chunk].tolist())))
    return n


CHILD = """
import sys, time
import specproc as sp
t = time.perf_counter()
m = sp.read(sys.argv[1], reader=sys.argv[2])
print(m.size, time.perf_counter() - t)
"""


def peak_rss(path: Path, reader: str) -> tuple[int, float, int]:
    """(peak RSS bytes, read seconds, points) of a child process reading ``path``."""
    p = subprocess.Popen([sys.executable, "-c", CHILD, str(path), reader], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    out = p.stdout.read()
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise RuntimeError(f"{reader} {path}: {err.strip().splitlines()[-1] if err.strip() else p.returncode}")
    n, secs = out.split()
    kib = ru.ru_maxrss if sys.platform != "darwin" else ru.ru_maxrss / 1024
    return int(kib * 1024), float(secs), int(n)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=float, nargs="+", default=[10, 40, 85], help="file sizes in MB")
    ap.add_argument("--readers", nargs="+", default=list(FORMATS), choices=list(FORMATS))
    ap.add_argument("--keep", default=None, help="folder for the generated files (default: a temporary one)")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        print(f"{'reader':9} {'file MB':>8} {'points':>10} {'base MiB':>9} {'peak MiB':>9} {'ratio':>6} {'read s':>7}")
        for reader in args.readers:
            small = folder / f"small_{reader}{EXT[reader]}"
            write(small, reader, 4000)
            base, _, _ = peak_rss(small, reader)
            for mb in args.sizes:
                f = folder / f"{reader}_{mb:g}MB{EXT[reader]}"
                if not f.exists():
                    write(f, reader, int(mb * 1e6))
                size = f.stat().st_size
                peak, secs, n = peak_rss(f, reader)
                ratio = (peak - base) / size
                rows.append({"reader": reader, "file_bytes": size, "points": n, "baseline_rss": base,
                             "peak_rss": peak, "ratio": ratio, "read_s": secs})
                print(f"{reader:9} {size / 1e6:8.1f} {n:10d} {base / 2**20:9.0f} {peak / 2**20:9.0f} "
                      f"{ratio:6.2f} {secs:7.2f}", flush=True)
    worst = max(rows, key=lambda r: r["ratio"])
    save("text_memory", {"target_ratio": 3.0, "worst_ratio": round(worst["ratio"], 2),
                         "worst_case": f"{worst['reader']} {worst['file_bytes'] / 1e6:.0f} MB", "readers": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
