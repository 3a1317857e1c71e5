"""Cold vs warm (cached) run of the sample pipeline (pipelines/libh4_linbh.yaml).

Writes benchmarks/results/pipeline.json and prints a short Markdown summary (also written to
/tmp/bench_pipeline.md). Usage: ``python benchmarks/bench_pipeline.py [--jobs N]``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--pipeline", default=str(REPO / "pipelines" / "libh4_linbh.yaml"))
    ap.add_argument("--md", default="/tmp/bench_pipeline.md")
    args = ap.parse_args(argv)

    from specproc import __version__
    from specproc.pipeline import run_pipeline

    out = Path(tempfile.mkdtemp(prefix="bench_pipeline_"))
    try:
        t0 = time.perf_counter()
        cold = run_pipeline(args.pipeline, out, jobs=args.jobs)
        t_cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        warm = run_pipeline(args.pipeline, out, jobs=args.jobs)
        t_warm = time.perf_counter() - t0
        report_mb = Path(warm.report_path).stat().st_size / 1e6
    finally:
        shutil.rmtree(out, ignore_errors=True)
    res = {
        "benchmark": "pipeline", "pipeline": os.path.relpath(args.pipeline, REPO), "jobs": args.jobs,
        "cpu_count": os.cpu_count(), "python": platform.python_version(), "specproc": __version__,
        "n_files": len(cold.records), "n_ok": len(cold.results), "n_failed": len(cold.failures),
        "n_skipped_entries": len(cold.skipped), "n_cached_warm": warm.n_cached,
        "cold_s": round(t_cold, 3), "warm_s": round(t_warm, 3), "report_mb": round(report_mb, 2),
        "claims": {c.id: c.verdict for c in cold.claims},
    }
    dest = REPO / "benchmarks" / "results" / "pipeline.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(res, indent=2) + "\n")
    md = (f"# bench_pipeline ({time.strftime('%Y-%m-%d %H:%M')})\n\n"
          f"pipeline `{res['pipeline']}`, {res['n_files']} files ({res['n_ok']} ok, {res['n_failed']} failed, "
          f"{res['n_skipped_entries']} entries skipped), jobs={args.jobs}, {os.cpu_count()} cores\n\n"
          f"| run | wall time (s) |\n|---|---|\n| cold | {res['cold_s']} |\n| warm (cached: "
          f"{res['n_cached_warm']}) | {res['warm_s']} |\n\nreport size {res['report_mb']} MB\n")
    Path(args.md).write_text(md)
    print(md)
    return res


if __name__ == "__main__":
    main()
    sys.exit(0)
