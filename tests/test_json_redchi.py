"""#25: every ``specproc <technique> --json`` shows a noise-normalised reduced χ² or none.

Each technique's command runs in-process (``specproc.cli.main``) on a study file of sample_data.
Every ``redchi`` in the JSON must be null or a χ²/ν in units of the noise: the sample data are
generated from the models fitted, so a fit down to the noise gives ~1 (a few for the richest
spectra). A residual variance in data units (4.9e14 for an NMR spectrum, 1e-6 for an absorbance)
falls far outside. Any other reduced-χ² key (``redchi_weighted``) must state its weighting next to it.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from specproc.cli import main

DATA = Path(__file__).resolve().parents[1] / "sample_data"

CASES = {
    "nmr": ["nmr/LiBH4_11B/1"],
    "ftir": ["ftir/LiBH4.jdx", "ftir/LiNBH.jdx"],          # two spectra: the stacked path
    "eels": ["eels/LiBH4_BK.msa", "eels/SI_LiBH4-70LiNBH_16x16.hspy"],   # a spectrum and a map (median)
    "xps": ["xps/Li_vs_LiBH4.vms"],
    "afm": ["afm/Li_vs_LiBH4.gwy"],
    "echem": ["echem/LiBH4-70LiNBH_EIS_30C_nova.txt"],
    "xrd": ["xrd/LiBH4_as_received.xrdml"],
}


def _redchis(o, path="$"):
    """(path, key, value, the dict holding it) of every key with 'redchi' in its name."""
    if isinstance(o, dict):
        for k, v in o.items():
            if "redchi" in k:
                yield f"{path}.{k}", k, v, o
            yield from _redchis(v, f"{path}.{k}")
    elif isinstance(o, list):
        for i, v in enumerate(o):
            yield from _redchis(v, f"{path}[{i}]")


@pytest.mark.parametrize("technique", sorted(CASES))
def test_json_redchi_is_noise_normalised_or_null(technique, capsys):
    files = [str(DATA / f) for f in CASES[technique]]
    if not all(Path(f).exists() for f in files):
        pytest.skip("sample_data not generated")
    rc = main([technique, *files, "--json"])
    out = capsys.readouterr().out
    assert rc == 0, out[-2000:]
    doc = json.loads(out)
    found = list(_redchis(doc))
    for path, key, value, holder in found:
        if key in ("redchi", "redchi_noise"):
            assert value is None or 0.2 < float(value) < 50, \
                f"{technique} {path} = {value}: not a χ²/ν in noise units"
        elif key == "redchi_noise_reason":
            assert holder.get("redchi") is None and value
        else:                                      # another reduced χ²: its meaning next to it
            assert holder.get("weighting"), f"{technique} {path} = {value} without its weighting"
    fits = [h for _, k, _, h in found if k == "redchi"]
    if technique in ("nmr", "ftir", "eels", "echem"):  # these fit spectra and say how well
        assert fits and all(h["redchi"] is not None for h in fits), found
