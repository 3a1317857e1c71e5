"""Every built-in reader and processor passes the shared plugin contracts (specproc.testing.contract)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from specproc.testing.contract import ProcessorContract, ReaderContract

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_data"
REAL = ROOT.parent / "shared" / "realdata"


class TestBrukerReader(ReaderContract):
    reader = "bruker"

    def good_files(self):
        return [SAMPLE / "nmr" / "LiBH4_11B" / "1"]

    def test_bad_files_name_the_file(self, tmp_path):
        pytest.skip("a Bruker experiment is a folder; its bad-input cases live in tests/io/test_bruker.py")


class TestJcampNMRReader(ReaderContract):
    reader = "jcampdx-nmr"
    truncation_fails = False  # a cut JCAMP text file can still hold a valid shorter table

    def good_files(self):
        return [SAMPLE / "nmr" / "jcamp" / "LiBH4_11B.jdx"]


class TestNMRTextReader(ReaderContract):
    reader = "nmr-text"
    truncation_fails = False

    def good_files(self):
        return [SAMPLE / "nmr" / "csv" / "LiBH4-70LiNBH_1H.csv"]


class TestXrdmlReader(ReaderContract):
    reader = "xrdml"

    def good_files(self):
        return [SAMPLE / "xrd" / "LiBH4_as_received.xrdml"]


class TestXYReader(ReaderContract):
    reader = "xrd-text"
    truncation_fails = False

    def good_files(self):
        return [SAMPLE / "xrd" / "LiBH4_as_received.xy"]


class TestNetCDFReader(ReaderContract):
    reader = "netcdf"

    @pytest.fixture(autouse=True)
    def _made(self, tmp_path_factory):
        import specproc as sp
        from specproc.core.measurement import new_measurement

        d = tmp_path_factory.mktemp("nc")
        m = new_measurement(np.random.default_rng(0).random((3, 4, 50)),
                            {"y": (np.arange(3) * 1e-8, "m"), "x": (np.arange(4) * 1e-8, "m"),
                             "energy": (np.linspace(180, 200, 50), "eV")}, technique="eels", units="counts",
                            sample="SI", provenance={"source": "made.dm4", "sha256": "0" * 64, "reader": "x"})
        self._file = sp.save(m, d / "si.nc")

    def good_files(self):
        return [self._file]


class TestNMRDeconvolve(ProcessorContract):
    processor = "nmr.deconvolve"
    params = {"peaks": {"BH4": -44.3}, "processing": {"apodization": "none"}}

    def make_input(self):
        import specproc as sp

        return sp.read(SAMPLE / "nmr" / "jcamp" / "LiBH4_11B.jdx")


class TestXRDAnalyse(ProcessorContract):
    processor = "xrd.analyse"
    params = {}

    def make_input(self):
        import specproc as sp

        return sp.read(SAMPLE / "xrd" / "LiBH4_as_received.xy")


class TestFTIRFitBands(ProcessorContract):
    processor = "ftir.fit_bands"
    params = {"region": [2050, 2550], "peaks": {"BH_stretch": 2300, "BH_stretch_low": 2225}}

    def make_input(self):
        import specproc as sp

        return sp.read(SAMPLE / "ftir" / "LiBH4.jdx")


class TestEELSFitEdge(ProcessorContract):
    processor = "eels.fit_edge"
    params = {"edge": "B K"}

    def make_input(self):
        import specproc as sp

        return sp.read(SAMPLE / "eels" / "LiBH4_BK.msa")


class TestXPSFitProfile(ProcessorContract):
    processor = "xps.fit_profile"
    params = {"charge_ref": "C 1s=284.8", "interphase": ["Li3N", "Li-B"],
              "model": {"Li 1s": [{"name": "Li metal", "center": 52.6, "fwhm": 1.0}],
                        "N 1s": [{"name": "Li3N", "center": 398.6}],
                        "B 1s": [{"name": "Li-B", "center": 187.5}],
                        "C 1s": [{"name": "C-C", "center": 284.8}]}}

    def make_input(self):
        import specproc as sp

        return sp.read(SAMPLE / "xps" / "Li_vs_LiBH4.vms")


class TestAFMAnalyseMap(ProcessorContract):
    processor = "afm.analyse_map"
    params = {}

    def make_input(self):
        import specproc as sp

        return sp.read(SAMPLE / "afm" / "Li_vs_LiBH4.gwy")
