"""Peak memory of reading a NetCDF EELS spectrum image (``sp.read``, the netcdf reader) per input size.

For each size (10 / 50 / 200 MiB of float32 data, ``(ny, nx, 1024)``) and two layouts — the
contiguous file ``sp.save`` writes, and gzip with one chunk per spectrum (``(1, 1, 1024)``, the
layout where one whole-array HDF5 read held about two extra copies of the data) — a child process
reads the file and reports its peak RSS (``ru_maxrss``; what ``RUSAGE_CHILDREN`` gives the parent
for that child), and its RSS after the imports (the baseline). The same child measurement is done
for the plain one-read path (``xr.open_dataset(...)["measurement"].values``) as the reference.

Printed: a table; written: ``benchmarks/results/read_memory.json`` (next to this script when
there is no ``results`` folder). Ratios: ``(peak - baseline) / data bytes`` and
``peak / file size`` (the whole process, imports included).
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SIZES_MIB = (10, 50, 200)
N_E = 1024

GENERATE = """
import sys, numpy as np, xarray as xr
path, mib, layout = sys.argv[1], float(sys.argv[2]), sys.argv[3]
npix = int(mib * 2**20 / 4 / {n_e}); ny = int(np.sqrt(npix)); nx = npix // ny
Y = np.random.default_rng(0).poisson(1000, size=(ny, nx, {n_e})).astype(np.float32)
ds = xr.Dataset({{"measurement": (("y", "x", "energy"), Y)}},
                coords={{"y": ("y", np.arange(ny) * 2.0, {{"units": "nm"}}),
                        "x": ("x", np.arange(nx) * 2.0, {{"units": "nm"}}),
                        "energy": ("energy", 150 + 0.1 * np.arange({n_e}), {{"units": "eV"}})}},
                attrs={{"technique": "eels", "signal_type": "spectrum_image", "units": "counts", "allow_nan": 0}})
enc = {{"measurement": {{"zlib": True, "complevel": 1, "chunksizes": (1, 1, {n_e})}}}} if layout == "gzip" else {{}}
ds.to_netcdf(path, engine="h5netcdf", encoding=enc)
""".format(n_e=N_E)

MEASURE = """
import json, resource, sys, time
import numpy as np, xarray as xr, h5netcdf, h5py
import specproc as sp, specproc.io.netcdf
path, how = sys.argv[1], sys.argv[2]
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
if how == "specproc":
    a = sp.read(path)
else:
    with xr.open_dataset(path, engine="h5netcdf", decode_times=False, mask_and_scale=False) as ds:
        a = np.asarray(ds["measurement"].values)
dt = time.perf_counter() - t
print(json.dumps({"base_kib": base, "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "nbytes": int(a.nbytes), "seconds": dt}))
"""


def _child(code: str, *args) -> str:
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *map(str, args)], capture_output=True,
                       text=True, check=True)
    return r.stdout.strip().splitlines()[-1]


def main() -> int:
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for mib in SIZES_MIB:
            for layout in ("contiguous", "gzip"):
                path = Path(d) / f"si_{mib}_{layout}.nc"
                _child(GENERATE + "\nprint('ok')", path, mib, layout)
                size = path.stat().st_size
                for how in ("specproc", "xarray_one_read"):
                    m = json.loads(_child(MEASURE, path, how))
                    peak, base = m["peak_kib"] * 1024, m["base_kib"] * 1024
                    rows.append({"data_mib": mib, "layout": layout, "file_mib": round(size / 2**20, 1), "path": how,
                                 "seconds": round(m["seconds"], 2), "baseline_mib": round(base / 2**20, 1),
                                 "peak_mib": round(peak / 2**20, 1),
                                 "extra_per_data_byte": round((peak - base) / m["nbytes"], 2),
                                 "peak_per_file_byte": round(peak / size, 2)})
                    print(rows[-1], flush=True)
                path.unlink()
    head = ("data MiB", "layout", "file MiB", "path", "s", "baseline MiB", "peak MiB", "(peak-base)/data",
            "peak/file")
    print("\n| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for r in rows:
        print(f"| {r['data_mib']} | {r['layout']} | {r['file_mib']} | {r['path']} | {r['seconds']} | "
              f"{r['baseline_mib']} | {r['peak_mib']} | {r['extra_per_data_byte']} | {r['peak_per_file_byte']} |")
    out_dir = HERE / "results" if (HERE / "results").is_dir() else HERE
    out = out_dir / "read_memory.json"
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"read_memory": rows, "date": time.strftime("%Y-%m-%d %H:%M:%S"),
                               "machine": {"python": platform.python_version(), "platform": platform.platform(),
                                           "cpus": os.cpu_count()}}, indent=2))
    tmp.replace(out)
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
