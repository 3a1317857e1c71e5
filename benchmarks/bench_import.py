"""Time ``import specproc`` (budget 0.3 s) and the first use of each lazy namespace.

Each measurement runs in a fresh interpreter (median of 7), so nothing is cached in-process.
Writes benchmarks/results/import.json.
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

CASES = {
    "import specproc": "import specproc",
    "import specproc + sp.read": "import specproc as sp; sp.read",
    "import specproc + sp.nmr": "import specproc as sp; sp.nmr",
    "import specproc + sp.xrd": "import specproc as sp; sp.xrd",
}


def timed(stmt: str) -> float:
    code = f"import time; t=time.perf_counter(); {stmt}; print(time.perf_counter()-t)"
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                check=True).stdout.strip())


def main() -> dict:
    out = {name: statistics.median(timed(stmt) for _ in range(7)) for name, stmt in CASES.items()}
    out["budget_s"] = 0.3
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "import.json").write_text(json.dumps(out, indent=2))
    for k, v in out.items():
        print(f"{k:32s} {v * 1000:9.1f} ms" if k != "budget_s" else f"{k:32s} {v:9.1f} s")
    return out


if __name__ == "__main__":
    main()
