"""XRD formats users bring: Rigaku RAS, spec, Bruker RAW/BRML (refused with the export), impossible values,
reciprocal-space maps (ω kept), large files."""
from __future__ import annotations

import zipfile

import numpy as np
import pytest

import specproc as sp
from specproc.core.errors import ReaderError, SpecprocError
from specproc.testing.xrd_synth import synth_pattern, write_xrdml

RAS_HEADER = """*RAS_DATA_START
*RAS_HEADER_START
*FILE_SAMPLE "{sample}"
*HW_XG_TARGET_NAME "Cu"
*HW_XG_WAVE_LENGTH_ALPHA1 "1.540593"
*HW_XG_WAVE_LENGTH_ALPHA2 "1.544414"
*HW_XG_WAVE_LENGTH_BETA "1.392250"
*MEAS_DATA_COUNT "{n}"
*MEAS_SCAN_AXIS_X "{axis}"
*MEAS_SCAN_AXIS_X_INTERNAL "{axis}"
*MEAS_SCAN_SPEED "2.0"
*MEAS_SCAN_STEP "{step}"
*MEAS_SCAN_START_TIME "06/11/26 13:59:11"
*MEAS_SCAN_UNIT_Y "counts"
*RAS_HEADER_END
*RAS_INT_START
"""


def _ras(path, x, y, att=None, axis="TwoThetaTheta", sample="LiBH4 milled 2h"):
    att = np.ones_like(y) if att is None else att
    body = "".join(f"{a:.4f} {b:.4f} {c:.4f}\r\n" for a, b, c in zip(x, y, att))
    text = RAS_HEADER.format(sample=sample, n=len(x), axis=axis, step=f"{x[1] - x[0]:.4f}")
    path.write_bytes((text.replace("\n", "\r\n") + body + "*RAS_INT_END\r\n*RAS_DATA_END\r\n").encode("latin-1"))
    return path


def test_rigaku_ras_read_with_attenuator(tmp_path):
    rng = np.random.default_rng(11)
    x, y, _ = synth_pattern([{"phase": "LiBH4"}], np.arange(15.0, 45.0, 0.02), seed=int(rng.integers(1000)))
    att = np.where(y > np.percentile(y, 95), 10.0, 1.0)  # automatic attenuator on the strongest points
    p = _ras(tmp_path / "scan.ras", x, y / att, att)
    m = sp.read(p)
    assert m.attrs["provenance"]["reader"] == "rigaku-ras"
    acq = m.attrs["acquisition"]
    assert acq["wavelength_nm"] == pytest.approx(0.1540593) and acq["kalpha2_nm"] == pytest.approx(0.1544414)
    assert m.attrs["sample"] == "LiBH4 milled 2h"
    np.testing.assert_allclose(m.values, y, rtol=1e-3, atol=1e-3)  # attenuator factor applied
    np.testing.assert_allclose(m.coords["two_theta"].values, x, atol=1e-4)


def test_rigaku_rocking_curve_refused(tmp_path):
    x = np.linspace(30, 31, 50)
    p = _ras(tmp_path / "rc.ras", x, np.full(50, 10.0), axis="Omega")
    with pytest.raises(ReaderError, match=r"rc\.ras.*Omega-axis scan, not a 2θ pattern"):
        sp.read(p)


SPEC = """#F t.spec
#E 1600000000
#D Mon Jan 01 00:00:00 2024
#O0 tth  th  chi

#S 1  ascan  th 5 6 10 1
#D Mon Jan 01 00:00:00 2024
#T 1  (Seconds)
#P0 10 5 0
#N 3
#L th  Epoch  Detector
{th}
#S 2  ascan  tth 10 60 50 1
#D Mon Jan 01 00:00:00 2024
#T 2  (Seconds)
#P0 10 5 0
#N 4
#L Two Theta  Epoch  Monitor  Detector
{tth}
"""


def test_spec_two_theta_scan(tmp_path):
    x = np.linspace(10, 60, 200)
    y = 50 + 1000 * np.exp(-0.5 * ((x - 33) / 0.1) ** 2)
    th = "\n".join(f"{5 + 0.1 * i:.2f} 0 3" for i in range(11))
    tth = "\n".join(f"{a:.4f} 0 1000 {b:.3f}" for a, b in zip(x, y))
    p = tmp_path / "t.spec"
    p.write_text(SPEC.format(th=th, tth=tth))
    m = sp.read(p, wavelength_nm=0.0826)
    assert m.attrs["provenance"]["reader"] == "spec"
    assert m.attrs["acquisition"]["scan_number"] == 2 and m.attrs["acquisition"]["counter"] == "Detector"
    assert m.attrs["acquisition"]["wavelength_nm"] == 0.0826 and m.attrs["sample"] == "t#S2"
    np.testing.assert_allclose(m.values, y, rtol=1e-3)
    with pytest.raises(ReaderError, match=r"t\.spec.*scan 1 is over th, not a 2θ motor"):
        sp.read(p, scan=1)


def test_bruker_raw_and_brml_refused_with_export(tmp_path):
    raw = tmp_path / "scan.raw"
    raw.write_bytes(b"RAW4.00" + bytes(600))
    with pytest.raises(ReaderError, match=r"scan\.raw.*Bruker RAW version 4.*export .* \.xy"):
        sp.read(raw)
    brml = tmp_path / "scan.brml"
    with zipfile.ZipFile(brml, "w") as z:
        z.writestr("Experiment0/RawData0.xml", "<RawData/>")
    with pytest.raises(ReaderError, match=r"scan\.brml.*BRML.*DIFFRAC\.EVA"):
        sp.read(brml)


@pytest.mark.parametrize("case, match", [
    ("negative", r"outside the physical range"),
    ("huge", r"2θ spans .*7000.*outside"),
    ("allneg", r"all counts are <= 0"),
    ("one", r"only 1 data point"),
])
def test_impossible_xrdml_refused(tmp_path, case, match):
    x = np.linspace(10, 60, 500)
    y = 100 + 50 * np.sin(x)
    if case == "negative":
        x = np.linspace(-70, -5, 500)
    elif case == "huge":
        x = np.linspace(10, 7000, 500)
    elif case == "allneg":
        y = -y
    elif case == "one":
        x, y = x[:1], y[:1]
    p = write_xrdml(tmp_path / f"{case}.xrdml", x, y)
    with pytest.raises(ReaderError, match=rf"{case}\.xrdml.*{match}"):
        sp.read(p)


def test_cli_one_bad_file_keeps_the_good_one(tmp_path, capsys):
    import json

    from specproc.cli import main

    x, y, _ = synth_pattern([{"phase": "LiBH4"}], np.arange(15.0, 45.0, 0.02), seed=5)
    good = write_xrdml(tmp_path / "good.xrdml", x, y)
    bad = write_xrdml(tmp_path / "one.xrdml", x[:1], y[:1])
    code = main(["xrd", str(good), str(bad), "--phases", "LiBH4", "--json"])
    out = json.loads(capsys.readouterr().out)
    entries = out if isinstance(out, list) else out.get("results", out.get("entries"))
    assert code == 1
    files = {e["file"]: e for e in entries}
    assert "error" in files[str(bad)] and "only 1 data point" in files[str(bad)]["error"]
    assert files[str(good)]["phases"][0]["name"] == "LiBH4"


def _rsm_xrdml(path, offsets, tt):
    scans = []
    for off in offsets:
        y = 10 + 1e4 * np.exp(-0.5 * ((tt - 66.0) / 0.01) ** 2) * np.exp(-0.5 * (off / 0.02) ** 2)
        om0, om1 = tt[0] / 2 + off, tt[-1] / 2 + off
        scans.append(f"""<scan appendNumber="0" mode="Continuous" scanAxis="Omega-2Theta" status="Completed">
      <dataPoints>
        <positions axis="2Theta" unit="deg"><startPosition>{tt[0]:.5f}</startPosition><endPosition>{tt[-1]:.5f}</endPosition></positions>
        <positions axis="Omega" unit="deg"><startPosition>{om0:.5f}</startPosition><endPosition>{om1:.5f}</endPosition></positions>
        <commonCountingTime unit="seconds">1.0</commonCountingTime>
        <counts unit="counts">{' '.join(str(int(v)) for v in y)}</counts>
      </dataPoints></scan>""")
    path.write_text(f"""<?xml version="1.0" encoding="UTF-8"?>
<xrdMeasurements xmlns="http://www.xrdml.com/XRDMeasurement/2.0" status="Completed">
  <sample type="To be analyzed"><id>rsm</id><name>AlGaAs 004 RSM</name></sample>
  <xrdMeasurement measurementType="Area measurement" status="Completed">
    <usedWavelength intended="K-Alpha 1"><kAlpha1 unit="Angstrom">1.5405980</kAlpha1>
      <kAlpha2 unit="Angstrom">1.5444260</kAlpha2><ratioKAlpha2KAlpha1>0.0</ratioKAlpha2KAlpha1></usedWavelength>
    {''.join(scans)}
  </xrdMeasurement>
</xrdMeasurements>""")
    return path


def test_rsm_keeps_omega_and_fit_series_refuses(tmp_path):
    tt = np.linspace(65.5, 66.5, 301)
    offsets = np.linspace(-0.1, 0.1, 9)
    m = sp.read(_rsm_xrdml(tmp_path / "map.xrdml", offsets, tt))
    assert m.attrs["signal_type"] == "rsm" and m.dims == ("scan", "two_theta")
    np.testing.assert_allclose(m.coords["omega_offset"].values, offsets, atol=1e-4)
    assert m.coords["omega"].shape == m.shape and m.coords["omega"].attrs["units"] == "deg"
    with pytest.raises(SpecprocError, match=r"map\.xrdml.*reciprocal-space map.*isel\(scan="):
        sp.xrd.fit_series(m)
    with pytest.raises(SpecprocError, match=r"reciprocal-space map"):
        sp.xrd.analyse(m)
    one = m.isel(scan=4)  # one ω-2θ scan is accepted as a pattern (then classified as high-resolution)
    assert one.ndim == 1


def test_large_xy_parsed_by_c_parser(tmp_path):
    """Half a million rows through pandas' C parser (timing and memory: benchmarks/bench_xrd_io.py)."""
    n = 500_000
    x = np.linspace(5, 150, n)
    y = 100 + 10 * np.sin(x)
    p = tmp_path / "big.xy"
    np.savetxt(p, np.column_stack([x, y]), fmt="%.6f", header="big pattern")
    m = sp.read(p)
    assert m.size == n and float(m.values[12345]) == pytest.approx(y[12345], abs=1e-5)


# ---------------------------------------------------------------- the shared reader contract
from specproc.testing.contract import ReaderContract  # noqa: E402


class TestRigakuRasContract(ReaderContract):
    reader = "rigaku-ras"
    truncation_fails = False  # text: a cut data block is read as far as it goes, then validated

    @pytest.fixture(autouse=True)
    def _made(self, tmp_path_factory):
        x, y, _ = synth_pattern([{"phase": "LiBH4"}], np.arange(15.0, 45.0, 0.02), seed=41)
        self._file = _ras(tmp_path_factory.mktemp("ras") / "c.ras", x, y)

    def good_files(self):
        return [self._file]


class TestSpecContract(ReaderContract):
    reader = "spec"
    truncation_fails = False

    @pytest.fixture(autouse=True)
    def _made(self, tmp_path_factory):
        x = np.linspace(10, 60, 200)
        tth = "\n".join(f"{a:.4f} 0 1000 {50 + 1000 * np.exp(-0.5 * ((a - 33) / 0.1) ** 2):.3f}" for a in x)
        th = "\n".join(f"{5 + 0.1 * i:.2f} 0 3" for i in range(11))
        p = tmp_path_factory.mktemp("spec") / "c.spec"
        p.write_text(SPEC.format(th=th, tth=tth))
        self._file = p

    def good_files(self):
        return [self._file]
