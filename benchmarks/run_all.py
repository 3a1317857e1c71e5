"""Run every ``benchmarks/bench_*.py`` script and print one table of their results.

Each script writes ``benchmarks/results/<name>.json``; scripts of the batch engine write a ``rows``
list (``case``, ``specproc_s``, ``reference``, ``reference_s``, ``speedup``, ``agreement``), which this
runner prints as a Markdown table; other JSON results are printed as key/value lines.
The helpers below (``save``, ``jit_compile_cold``, ``peak_rss_mib``) are shared by the bench scripts.

Usage: ``.venv/bin/python benchmarks/run_all.py [--only NAME ...] [--md FILE]``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def machine() -> dict:
    return {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()}


def peak_rss_mib() -> float:
    """Peak resident set size of this process (MiB; ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def jit_compile_cold() -> float:
    """Seconds to JIT-compile the batch kernel from scratch (fresh NUMBA_CACHE_DIR, separate process)."""
    code = ("import time; t=time.perf_counter(); from specproc.fitting import _batch_kernels as K; "
            "print(K.warm_up_kernel())")
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, NUMBA_CACHE_DIR=d)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def jit_load_cached() -> float:
    """Seconds to load the kernel from numba's on-disk cache in this process (0 if already loaded)."""
    from specproc.fitting import _batch_kernels as K

    return K.warm_up_kernel()


def save(name: str, result: dict) -> Path:
    RESULTS.mkdir(exist_ok=True)
    result = dict(result, machine=machine(), date=time.strftime("%Y-%m-%d %H:%M:%S"))
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2, default=float))
    tmp.replace(path)
    return path


def table(results: dict) -> str:
    lines = ["| benchmark | case | specproc (s) | reference | reference (s) | speed-up | agreement |",
             "|---|---|---|---|---|---|---|"]
    other = []
    for name, res in results.items():
        rows = res.get("rows") if isinstance(res, dict) else None
        if not rows:
            other.append(f"- **{name}**: " + ", ".join(f"{k}={v}" for k, v in res.items()
                                                      if not isinstance(v, (dict, list))))
            continue
        for r in rows:
            ref_s, sp = r.get("reference_s"), r.get("speedup")
            ref_txt = "n/a" if ref_s is None else f"{ref_s:.3g}"
            sp_txt = "n/a" if sp is None else f"{sp:.1f}x"
            lines.append(f"| {name} | {r['case']} | {r['specproc_s']:.3g} | {r['reference']} | {ref_txt} | "
                         f"{sp_txt} | {r.get('agreement', '')} |")
        extra = {k: v for k, v in res.items() if k.startswith(("jit_", "peak_rss", "note"))}
        if extra:
            other.append(f"- **{name}**: " + ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                                                      for k, v in extra.items()))
    return "\n".join(lines + [""] + other)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", help="names of bench scripts (without bench_ and .py)")
    ap.add_argument("--md", help="also write the table to this Markdown file")
    args = ap.parse_args(argv)
    scripts = sorted(HERE.glob("bench_*.py"))
    if args.only:
        scripts = [s for s in scripts if s.stem[len("bench_"):] in args.only]
    failed = []
    for s in scripts:
        print(f"== {s.name}", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.run([sys.executable, str(s)], cwd=HERE.parent).returncode
        print(f"   {s.name}: exit {rc} in {time.perf_counter() - t0:.1f} s", flush=True)
        if rc:
            failed.append(s.name)
    results = {p.stem: json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))}
    md = table(results)
    print(md)
    if args.md:
        Path(args.md).write_text(md + "\n")
    if failed:
        print("failed:", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
