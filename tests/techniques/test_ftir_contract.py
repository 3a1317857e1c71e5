"""The FTIR readers (opus, jcampdx-ir, ir-text, spc) and ``ftir.fit_bands`` pass the shared plugin
contracts (specproc.testing.contract)."""
from __future__ import annotations

from pathlib import Path

import pytest

from specproc.testing.contract import ProcessorContract, ReaderContract

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_data" / "ftir"
REAL = ROOT.parent / "shared" / "realdata" / "ftir"


class TestOpusReader(ReaderContract):
    reader = "opus"

    def good_files(self):
        return [REAL / "test.0000"]        # real file only (skipped when absent): no OPUS writer exists


class TestJcampIRReader(ReaderContract):
    reader = "jcampdx-ir"
    truncation_fails = False   # a cut JCAMP text can hold a valid shorter table (NPOINTS checked when given)

    def good_files(self):
        return [SAMPLE / "LiBH4.jdx", SAMPLE / "LiNBH.jdx"] + [p for p in (REAL / "pacdec1.jdx",) if p.exists()]


class TestIRTextReader(ReaderContract):
    reader = "ir-text"
    truncation_fails = False

    def good_files(self):
        return [SAMPLE / "csv" / "LiBH4.csv"]


class TestSpcReader(ReaderContract):
    reader = "spc"

    def good_files(self):
        return [SAMPLE / "spc" / "LiBH4.spc"]


class TestFitBands(ProcessorContract):
    processor = "ftir.fit_bands"
    params = {"peaks": {"BH_stretch": 2300, "BH_stretch_low": 2225}, "region": (2050, 2550)}

    def make_input(self):
        import specproc as sp

        return sp.read(SAMPLE / "LiBH4.jdx")


class TestFitBandsAutomatic(ProcessorContract):
    """Automatic band finding (no bands given) on a transmittance CSV, with a second baseline."""

    processor = "ftir.fit_bands"
    params = {"region": (1050, 1300), "baseline": "asls", "compare_baseline": "linear"}

    def make_input(self):
        import specproc as sp

        return sp.read(SAMPLE / "csv" / "LiBH4.csv")


@pytest.mark.parametrize("name", ["LiBH4.jdx", "csv/LiBH4.csv", "spc/LiBH4.spc"])
def test_sample_files_sniffed(name):
    from specproc.io import guess_reader

    expected = {"jdx": "jcampdx-ir", "csv": "ir-text", "spc": "spc"}[name.rsplit(".", 1)[1]]
    assert guess_reader(SAMPLE / name).name == expected
