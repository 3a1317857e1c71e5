"""JPK QI series and afmformats' .h5 / .tab exports (afmformats), issue #28.

The inputs are made from the real JPK files of ``../shared/realdata/afm`` (afmformats' test data,
MIT; tests/io/DATA_README.md): the ``.h5`` and ``.tab`` files are written by afmformats' own
exporter (``FDist.export_data``), and the QI-series test reads the real JPK map container under
the ``.jpk-qi-series`` name (no public QI-series file is available here; afmformats reads all JPK
map containers with one reader). Values must equal afmformats' reading of the original file.
"""
from __future__ import annotations

import zipfile

import numpy as np
import pytest

import specproc as sp
from specproc.core.errors import ReaderError
from specproc.testing.contract import ReaderContract

MAP = "fmt-jpk-fd_map2x2_extracted.jpk-force-map"
CURVE = "fmt-jpk-fd_spot3-0192.jpk-force"


@pytest.fixture(scope="module")
def made(realdata, tmp_path_factory):
    import afmformats
    import h5py

    src_map, src_curve = realdata / "afm" / MAP, realdata / "afm" / CURVE
    if not (src_map.is_file() and src_curve.is_file()):
        pytest.skip("real JPK files not available")
    d = tmp_path_factory.mktemp("afmformats")
    h5 = d / "map.h5"
    with h5py.File(h5, "a") as f:  # afmformats' documented way to put several curves in one file
        for fd in afmformats.load_data(src_map):
            fd.export_data(f, fmt="hdf5")
    tab = d / "curve.tab"
    afmformats.load_data(src_curve)[0].export_data(tab, fmt="tab")
    qi = d / "map.jpk-qi-series"
    qi.write_bytes(src_map.read_bytes())
    return {"h5": h5, "tab": tab, "qi": qi, "map": src_map, "curve": src_curve}


class TestJpkQiSeriesReader(ReaderContract):
    reader = "jpk-qi-series"

    @pytest.fixture(autouse=True)
    def _files(self, made):
        self._made = made

    def good_files(self):
        return [self._made["qi"]]


class TestAfmformatsExportReader(ReaderContract):
    reader = "afmformats-export"

    @pytest.fixture(autouse=True)
    def _files(self, made):
        self._made = made

    def good_files(self):
        return [self._made["h5"], self._made["tab"]]


def _approach(path):
    import afmformats

    return [(fd.metadata["enum"], np.asarray(fd.appr["force"], float)) for fd in afmformats.load_data(str(path))]


@pytest.mark.parametrize("which, original", [("h5", "map"), ("qi", "map"), ("tab", "curve")])
def test_values_equal_afmformats_reading_of_the_original(made, which, original):
    m = sp.read(made[which], split="file")
    ref = sp.read(made[original], reader="afm-force", split="file")
    assert m.dims == ("y", "x", "point") and m.shape == ref.shape
    # binary containers: the same numbers; the .tab text export keeps ~8 significant digits
    rtol = 1e-7 if which == "tab" else 0.0
    np.testing.assert_allclose(m.values, ref.values, rtol=rtol, atol=0)
    np.testing.assert_allclose(m.coords["height"].values, ref.coords["height"].values, rtol=rtol, atol=0)
    # and each curve's approach force is afmformats' own, sample for sample
    curves = dict(_approach(made[which]))
    flat = m.values.reshape(-1, m.sizes["point"])
    for f in flat:
        n = int(np.isfinite(f).sum())
        assert any(np.array_equal(f[:n], c) for c in curves.values())
    acq = m.attrs["acquisition"]
    assert acq["n_curves"] == len(curves)
    if original == "map":
        assert acq["point_counts"] == [24060, 24060, 3226, 8210]   # MANIFEST: the ragged 2x2 map
        assert acq["spring_constant_N_per_m"] == pytest.approx(0.015481694150356324)
    else:
        assert acq["spring_constant_N_per_m"] == pytest.approx(0.043493666407368466)
        assert float(np.nanmax(m.values)) <= 3.6813837252362216e-09


def test_other_hdf5_and_zip_files_are_refused_by_name(tmp_path):
    import h5py

    other = tmp_path / "nexus.h5"
    with h5py.File(other, "w") as f:
        f.create_dataset("entry/data", data=np.arange(10.0))
    from specproc.io.afm_formats import AfmformatsExportReader

    assert not AfmformatsExportReader().guess_can_open(other)   # the content says no (the extension may still pick it)
    with pytest.raises(ReaderError, match="not an afmformats HDF5 export: no 'software'") as info:
        sp.read(other, reader="afmformats-export")
    assert "nexus.h5" in str(info.value)
    ext = tmp_path / "ext.h5"
    with h5py.File(ext, "w") as f:
        f.attrs["software"], f.attrs["software version"] = "afmformats", "0.18"
        f["0"] = h5py.ExternalLink(str(other), "/entry")
    with pytest.raises(ReaderError, match="external link"):
        sp.read(ext, reader="afmformats-export")
    z = tmp_path / "plain.jpk-qi-series"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("readme.txt", "not JPK")
    with pytest.raises(ReaderError, match="without header.properties"):
        sp.read(z)

