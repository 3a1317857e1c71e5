"""A third-party package adds a reader and a processor through entry points only."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PLUGIN = {
    "pyproject.toml": """
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "specproc-tiny-plugin"
        version = "0.0.1"
        [project.entry-points."specproc.readers"]
        tiny = "tiny_plugin:TinyReader"
        [project.entry-points."specproc.processors"]
        "tiny.total" = "tiny_plugin:Total"
        """,
    "tiny_plugin.py": """
        import numpy as np
        from specproc.io.base import Reader
        from specproc.core.measurement import new_measurement
        from specproc.core.processor import Processor
        from specproc.core.params import ProcessorParams
        from specproc.core.result import Result, Quantity

        class TinyReader(Reader):
            name = "tiny"
            description = "TINY magic-number test format"
            technique = "ftir"
            def guess_can_open(self, path):
                return path.is_file() and path.read_bytes()[:4] == b"TINY"
            def read(self, path):
                vals = [float(v) for v in path.read_text().split()[1:]]
                return new_measurement(vals, {"wavenumber": (np.arange(len(vals)), "1/cm")},
                                       technique="ftir", provenance={"source": str(path)})

        class TotalParams(ProcessorParams):
            scale: float = 1.0

        class Total(Processor):
            name = "tiny.total"
            technique = "ftir"
            description = "sum of the values"
            Params = TotalParams
            def run(self, data, params):
                return Result(self.name, "ftir", quantities={"total": Quantity(float(data.sum()) * params.scale)})
        """,
}

SCRIPT = """
import json, specproc as sp
from specproc import plugins
df = sp.list_plugins()
row = df[df.name == "tiny"].iloc[0]
m = sp.read(r"{data}")               # no extension: found by content sniffing
res = plugins.get("processors", "tiny.total")(m, scale=2)
print(json.dumps({{"package": row.package, "reader": m.attrs["provenance"]["source"],
                  "total": res.quantities["total"].value}}))
"""


def test_entry_point_plugin_is_listed_and_used(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name, text in PLUGIN.items():
        (src / name).write_text(textwrap.dedent(text))
    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                        "--target", str(target), str(src)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"could not install the test plugin: {r.stderr[-2000:]}")
    data = tmp_path / "spectrum_without_extension"
    data.write_text("TINY 1 2 3 4")
    env = dict(os.environ, PYTHONPATH=str(target))
    out = subprocess.run([sys.executable, "-c", SCRIPT.format(data=data)], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout.strip().splitlines()[-1])
    assert d == {"package": "specproc-tiny-plugin", "reader": str(data), "total": 20.0}
    cli = subprocess.run([str(Path(sys.executable).parent / "specproc"), "plugins", "--json"], capture_output=True,
                         text=True, env=env)
    assert cli.returncode == 0, cli.stderr
    rows = json.loads(cli.stdout)
    assert {"kind": "processor", "name": "tiny.total", "package": "specproc-tiny-plugin"}.items() <= \
        next(r for r in rows if r["name"] == "tiny.total").items()
    # built-ins come through the very same path, from specproc's own distribution
    assert any(r["package"] == "specproc" and r["kind"] == "technique" for r in rows)
