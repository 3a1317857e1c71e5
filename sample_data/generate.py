"""Regenerate every sample-data set (deterministic): ``python sample_data/generate.py``."""
import runpy
from pathlib import Path

here = Path(__file__).resolve().parent
for script in ("generate_nmr.py", "generate_xrd.py", "generate_ftir.py", "generate_eels.py", "generate_xps.py",
               "generate_afm.py", "generate_echem.py"):
    if (here / script).exists():
        print(f"running {script}")
        runpy.run_path(str(here / script), run_name="__main__")
