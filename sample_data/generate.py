"""Regenerate every sample-data set (deterministic): ``python sample_data/generate.py``.

Runs every ``generate_*.py`` next to this file, in name order: a new technique's generator is
picked up without editing this file.
"""
import runpy
from pathlib import Path

here = Path(__file__).resolve().parent
for script in sorted(here.glob("generate_*.py")):
    print(f"running {script.name}")
    runpy.run_path(str(script), run_name="__main__")
