"""Execute the example notebooks (nbclient, kernel "python3" of this interpreter, cwd = repo root)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = {"nmr_quickstart.ipynb": ROOT / "sample_data" / "nmr"}


def _kernel_for_this_interpreter():
    """A kernel spec named "python3" that runs ``sys.executable`` (not whatever python is on PATH)."""
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager, NoSuchKernel

    class _Manager(KernelSpecManager):
        def get_kernel_spec(self, kernel_name):
            if kernel_name != "python3":
                raise NoSuchKernel(kernel_name)
            return KernelSpec(argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                              display_name="Python 3", language="python", resource_dir="")

    return _Manager()


@pytest.mark.slow  # a kernel process, its imports and two NMR fits: 10-15 s
@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_notebook_runs(name, tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    if not NOTEBOOKS[name].exists():
        pytest.skip(f"{NOTEBOOKS[name]} missing")
    path = ROOT / "examples" / name
    nb = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit notebooks with outputs cleared"
    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_name="python3", kernel_spec_manager=_kernel_for_this_interpreter())
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3", km=km,
                                     resources={"metadata": {"path": str(ROOT)}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    assert any(c.get("outputs") for c in nb.cells if c.cell_type == "code")
