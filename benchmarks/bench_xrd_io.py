"""Benchmark: reading large XRD files (issue #15 item 8) — time and peak memory.

    .venv/bin/python benchmarks/bench_xrd_io.py [--mb 200]

Writes a ~N MB XRDML (one scan, listed 2θ positions and counts) and a ~N MB two-column .xy into a
temporary folder, reads each in a fresh subprocess (so the peak RSS is the reader's own) and reports
the wall time and the peak resident memory as a multiple of the file size. Before the C parsers, the
XRDML reader peaked at ~30x the file size (a Python list of strings per number) and the .xy reader
at ~17x (a hand-written line splitter). Results: benchmarks/results/xrd_io.json.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CHILD = """
import resource, sys, time
t = time.perf_counter()
import specproc as sp
m = sp.read(sys.argv[1])
dt = time.perf_counter() - t
print(m.size, dt, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def write_xrdml(path: Path, n: int) -> None:
    tt = np.linspace(5.0, 150.0, n)
    y = (100 + 50 * np.sin(tt)).astype(int)
    with open(path, "w") as fh:
        fh.write('<?xml version="1.0" encoding="UTF-8"?>\n<xrdMeasurements xmlns="http://www.xrdml.com/'
                 'XRDMeasurement/1.5"><sample><name>big</name></sample><xrdMeasurement measurementType="Scan">'
                 '<usedWavelength><kAlpha1>1.5405980</kAlpha1><kAlpha2>1.5444260</kAlpha2>'
                 '<ratioKAlpha2KAlpha1>0.5</ratioKAlpha2KAlpha1></usedWavelength>'
                 '<scan scanAxis="Gonio"><dataPoints><positions axis="2Theta" unit="deg"><listPositions>')
        for s in range(0, n, 1_000_000):
            fh.write(" ".join(f"{v:.6f}" for v in tt[s:s + 1_000_000]) + " ")
        fh.write('</listPositions></positions><commonCountingTime>1.0</commonCountingTime><counts unit="counts">')
        for s in range(0, n, 1_000_000):
            fh.write(" ".join(str(v) for v in y[s:s + 1_000_000]) + " ")
        fh.write("</counts></dataPoints></scan></xrdMeasurement></xrdMeasurements>\n")


def write_xy(path: Path, n: int) -> None:
    tt = np.linspace(5.0, 150.0, n)
    np.savetxt(path, np.column_stack([tt, 100 + 50 * np.sin(tt)]), fmt="%.6f", header="big pattern")


def measure(path: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, check=True)
    n, dt, rss_kb = out.stdout.split()
    size = path.stat().st_size
    return {"file_mb": size / 2**20, "points": int(n), "read_s": float(dt), "peak_rss_mb": int(rss_kb) / 1024,
            "peak_rss_over_size": int(rss_kb) * 1024 / size}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=200.0, help="approximate size of each file (MB)")
    args = ap.parse_args()
    res = {}
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        base = measure_import_only()
        n_xml = int(args.mb * 2**20 / 16)  # ~11 chars per position + ~4 per count + separators
        write_xrdml(d / "big.xrdml", n_xml)
        res["xrdml"] = measure(d / "big.xrdml")
        os.remove(d / "big.xrdml")
        n_xy = int(args.mb * 2**20 / 22)
        write_xy(d / "big.xy", n_xy)
        res["xy"] = measure(d / "big.xy")
    res["import_rss_mb"] = base
    for k in ("xrdml", "xy"):
        r = res[k]
        print(f"{k}: {r['file_mb']:.0f} MB, {r['points']:,} points, {r['read_s']:.1f} s, peak RSS "
              f"{r['peak_rss_mb']:.0f} MB ({r['peak_rss_over_size']:.1f}x the file; import alone {base:.0f} MB)")
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / "xrd_io.json").write_text(json.dumps(res, indent=1))


def measure_import_only() -> float:
    code = "import resource, specproc, xarray, numpy, pandas; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip()) / 1024


if __name__ == "__main__":
    t = time.perf_counter()
    main()
    print(f"total {time.perf_counter() - t:.0f} s")
