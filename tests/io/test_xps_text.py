"""XPS vendor text exports: SPECS Prodigy .xy, CasaXPS Columns/Rows of Tables, Thermo Avantage (refused).

No public export of these layouts is in ``../shared/realdata``. The files are written here in the
layouts pynxtools-xps documents and tests (tests/io/DATA_README.md), filled with synthetic spectra
of known truth (``specproc.testing.xps_synth.region_spectra``: GL lines on a Shirley step, Poisson
noise), read, and fitted with ``sp.xps.fit_region``: the known positions and areas must come back.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import specproc as sp
from specproc.core.errors import ReaderError
from specproc.testing.contract import ReaderContract
from specproc.testing.xps_synth import region_spectra

HV = 1486.61
WF = 4.1082
#: truth: region -> (lines, areas per cycle)
TRUTH = {
    "C 1s": ([{"center": 284.8, "fwhm": 1.2, "mixing": 0.3}, {"center": 286.5, "fwhm": 1.2, "mixing": 0.3}],
             [[30000.0, 10000.0], [24000.0, 14000.0]]),
    "O 1s": ([{"center": 531.6, "fwhm": 1.4, "mixing": 0.3}], [[20000.0], [26000.0]]),
}
SHORT = {"C 1s": "C1s", "O 1s": "O1s"}


def spectra(n_cycles=1, seed=0):
    """``{region: (be descending, Y (cycles, n))}`` with known truth."""
    out = {}
    for k, (reg, (lines, areas)) in enumerate(TRUTH.items()):
        c = [ln["center"] for ln in lines]
        be = np.round(np.arange(max(c) + 6, min(c) - 6 - 1e-9, -0.05), 3)
        Y, _, _ = region_spectra(be, lines, np.asarray(areas[:n_cycles]), base=500, seed=seed + k)
        out[reg] = (be, Y)
    return out


# ---------------------------------------------------------------- writers in the documented layouts
def write_specs_xy(path: Path, data: dict, *, axis="Binding Energy", rate="Counts per Second", scans=1,
                   meta=True, channels="no") -> Path:
    """A Prodigy XY-Serializer export (layout of pynxtools-xps tests/data/specs_xy/MgFe2O4_small.xy)."""
    L = ["# Created by:        SpecsLab Prodigy, Version 4.100.1-r111001 ", "#",
         "# XY-Serializer Export Settings:", "#   Comment Prefix:           #",
         f"#   Output Meta Data:         {'yes' if meta else 'no'}", f"#   Energy Axis:              {axis}",
         f"#   Count Rate:               {rate}", f"#   Separate Scan Data:       {'yes' if scans > 1 else 'no'}",
         f"#   Separate Channel Data:    {channels}", "#   External Channel Data:    no",
         "#   Transmission Function:    no", "#   Error Bar:                no", "#   Operation Results:        yes",
         "#   Time Zone Format:         UTC", "#", "# Group:                        1 as-loaded", "#"]
    rng = np.random.default_rng(5)
    for reg, (be, Y) in data.items():
        x = HV - be - WF if axis.startswith("Kinetic") else be
        if meta:
            L += [f"# Region:                       {SHORT[reg]}", "# Analysis Method:              XPS",
                  "# Analyzer:                     Phoibos",
                  "# Scan Mode:                    FixedAnalyzerTransmission",
                  "# Curves/Scan:                  1", f"# Values/Curve:                 {be.size}",
                  "# Dwell Time:                   0.1", f"# Excitation Energy:            {HV}",
                  f"# Binding Energy:               {be[0]}", "# Pass Energy:                  20",
                  f"# Eff. Workfunction:            {WF}", "# Source:                       XR 50",
                  "# Comment:                      ", ""]
        for c in range(Y.shape[0]):
            if meta:
                L += [f"# Cycle: {c}", "#", f"# Number of Scans: {scans}", ""]
            # separate scans: each scan's count rate scattered around the cycle's (their mean is the truth)
            parts = [Y[c]] if scans == 1 else [Y[c] * f for f in (1 + rng.normal(0, .01, scans - 1)).tolist()]
            if scans > 1:
                parts.append(scans * Y[c] - sum(parts))
            for s, y in enumerate(parts):
                if meta:
                    L += [f"# Cycle: {c}, Curve: 0" + (f", Scan: {s}" if scans > 1 else ""), "#",
                          "# Acquisition Date:             08/24/23 14:19:47 UTC",
                          "# ColumnLabels:                 energy counts/s", "#"]
                L += [f"{xi:.4f}  {yi:.6f}" for xi, yi in zip(x, y)] + [""]
    path.write_text("\n".join(L) + "\n")
    return path


def write_casa_columns(path: Path, data: dict, sep="\t") -> Path:
    """CasaXPS 'Columns of Tables' (pynxtools-xps tests/data/vms_analysis/FeO_analyzed_lineshapes_cols.txt)."""
    L = []
    for reg, (be, Y) in data.items():
        ke = HV - be
        L += [f"Cycle 0:as-loaded:{SHORT[reg]}",
              sep.join(["", "Characteristic Energy eV", f"{HV:.6e}", "Acquisition Time s", "1.000000e-001"]),
              sep.join(["Name", "", ""]), sep.join(["Position", "", ""]), sep.join(["FWHM", "", ""]),
              sep.join(["Area", "", ""]), sep.join(["Lineshape", "", ""]),
              sep.join(["K.E.", "Counts", "", "B.E.", "CPS"])]
        L += [sep.join([f"{k:.6e}", f"{y * 0.1:.6e}", "", f"{b:.6e}", f"{y:.6e}"]) for k, b, y in zip(ke, be, Y[0])]
    path.write_text("\n".join(L) + "\n")
    return path


def write_casa_rows(path: Path, data: dict) -> Path:
    """CasaXPS 'Rows of Tables': regions side by side, three cells each (pynxtools-xps ``_TextParserRows``)."""
    regs = list(data.items())
    head = ["\t".join(f"Characteristic Energy eV\t{HV:.6e}\tAcquisition Time s" for _ in regs)]
    for row in ("Name", "Position", "FWHM", "Area", "Lineshape"):
        head.append("\t".join(f"{row}\t\t" for _ in regs))
    head.append("\t".join(f"B.E.\tCycle 0:as-loaded:{SHORT[r]}:CPS\t" for r, _ in regs))
    n = max(be.size for _, (be, _) in regs)
    rows = []
    for i in range(n):
        cells = []
        for _, (be, Y) in regs:
            cells += [f"{be[i]:.6e}", f"{Y[0, i]:.6e}", ""] if i < be.size else ["", "", ""]
        rows.append("\t".join(cells))
    path.write_text("\n".join(head + rows) + "\n")
    return path


def recovered(m, n_cycles=1):
    """Fit every region at every level; assert the known centres and areas come back."""
    for reg, (lines, areas) in TRUTH.items():
        for lv in range(n_cycles):
            comps = [{"name": f"p{j}", "center": ln["center"] - 0.1} for j, ln in enumerate(lines)]
            t = sp.xps.fit_region(m, reg, comps, level=lv).table.set_index("name")
            for j, ln in enumerate(lines):
                assert t.loc[f"p{j}", "be_eV"] == pytest.approx(ln["center"], abs=0.03), (reg, lv, j)
                assert t.loc[f"p{j}", "area"] == pytest.approx(areas[lv][j], rel=0.04), (reg, lv, j)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("xps_text")
    one, two = spectra(1), spectra(2, seed=10)
    return {"xy": write_specs_xy(d / "MgO_BE.xy", two, scans=3),
            "xy_ke": write_specs_xy(d / "MgO_KE.xy", one, axis="Kinetic Energy"),
            "cols": write_casa_columns(d / "FeO_cols.txt", one),
            "cols_csv": write_casa_columns(d / "FeO_cols.csv", one, sep=","),
            "rows": write_casa_rows(d / "FeO_rows.txt", one), "one": one, "two": two}


# ---------------------------------------------------------------- contracts
class TestSpecsXyReader(ReaderContract):
    reader = "specs-xy"

    @pytest.fixture(autouse=True)
    def _f(self, files):
        self._files = [files["xy"], files["xy_ke"]]

    def good_files(self):
        return self._files


class TestCasaXpsTextReader(ReaderContract):
    reader = "casaxps-text"
    truncation_fails = False  # a cut table is still a shorter valid table

    @pytest.fixture(autouse=True)
    def _f(self, files):
        self._files = [files["cols"], files["cols_csv"], files["rows"]]

    def good_files(self):
        return self._files


# ---------------------------------------------------------------- SPECS
def test_specs_xy_cycles_are_levels_and_known_peaks_come_back(files):
    m = sp.read(files["xy"])
    assert m.attrs["provenance"]["reader"] == "specs-xy" and m.dims == ("level", "channel")
    assert m.sizes["level"] == 2 and list(dict.fromkeys(m.coords["region"].values)) == ["C 1s", "O 1s"]
    acq = m.attrs["acquisition"]
    assert acq["scans_combined"] == "mean of count rates" and acq["regions"][0]["scans_in_file"] == 3
    assert acq["source_energy_eV"] == HV and acq["pass_energy_eV"] == 20 and m.attrs["units"] == "counts/s"
    be, Y = files["two"]["C 1s"]
    sel = m.coords["region"].values == "C 1s"
    np.testing.assert_allclose(m.coords["binding_energy"].values[sel], be, atol=1e-4)
    np.testing.assert_allclose(m.values[:, sel], Y, rtol=1e-6, atol=1e-5)   # three scans -> their mean
    recovered(m, 2)


def test_specs_xy_kinetic_axis_becomes_binding_energy(files):
    m = sp.read(files["xy_ke"])
    assert m.attrs["acquisition"]["energy_axis_in_file"] == "kinetic"
    be, _ = files["one"]["O 1s"]
    sel = m.coords["region"].values == "O 1s"
    np.testing.assert_allclose(m.coords["binding_energy"].values[sel], be, atol=2e-4)   # hv - KE - Eff. WF
    np.testing.assert_allclose(m.coords["kinetic_energy"].values[sel], HV - be - WF, atol=2e-4)
    recovered(m)


def test_specs_xy_variants_are_refused_naming_them(files, tmp_path):
    one = files["one"]
    with pytest.raises(ReaderError, match="Output Meta Data: no"):
        sp.read(write_specs_xy(tmp_path / "nometa.xy", one, meta=False), reader="specs-xy")
    with pytest.raises(ReaderError, match="Separate Channel Data: yes"):
        sp.read(write_specs_xy(tmp_path / "chan.xy", one, channels="yes"))
    text = files["xy_ke"].read_text().replace(f"# Excitation Energy:            {HV}", "# Excitation Energy:   ")
    (tmp_path / "nohv.xy").write_text(text)
    with pytest.raises(ReaderError, match="kinetic-energy axis without a positive 'Excitation Energy'"):
        sp.read(tmp_path / "nohv.xy")
    lines = files["xy_ke"].read_text().split("\n")
    cut = tmp_path / "cut.xy"
    cut.write_text("\n".join(lines[:len(lines) * 3 // 4]))
    with pytest.raises(ReaderError, match=r"cut.xy: region 'O 1s', cycle 0: \d+ rows where 'Values/Curve' says"):
        sp.read(cut)


# ---------------------------------------------------------------- CasaXPS
@pytest.mark.parametrize("key", ["cols", "cols_csv", "rows"])
def test_casa_tables_read_and_fit(files, key):
    m = sp.read(files[key])
    assert m.attrs["provenance"]["reader"] == "casaxps-text" and m.sizes["level"] == 1
    assert m.attrs["acquisition"]["casa_layout"] == ("Rows of Tables" if key == "rows" else "Columns of Tables")
    assert list(dict.fromkeys(m.coords["region"].values)) == ["C 1s", "O 1s"]
    for reg, (be, Y) in files["one"].items():
        sel = m.coords["region"].values == reg
        np.testing.assert_allclose(m.coords["binding_energy"].values[sel], be, rtol=1e-6)
        np.testing.assert_allclose(m.values[0, sel], Y[0], rtol=1e-6)
    recovered(m)


def test_casa_variants_are_refused_naming_them(files, tmp_path):
    text = files["cols"].read_text()
    p = tmp_path / "noBE.txt"
    p.write_text(text.replace("B.E.\tCPS", "X\tY"))
    with pytest.raises(ReaderError, match="noBE.txt: block 'Cycle 0:as-loaded:C1s' has no column header with 'B.E.'"):
        sp.read(p)
    p = tmp_path / "junk.txt"
    lines = text.split("\n")
    cells = lines[20].split("\t")
    cells[3] = "2.9x7e+02"                      # a damaged binding energy
    lines[20] = "\t".join(cells)
    p.write_text("\n".join(lines))
    with pytest.raises(ReaderError, match="junk.txt: line 21: .* is not a number"):
        sp.read(p)
    p = tmp_path / "odd.txt"
    p.write_text(text.replace("Lineshape", "Residual STD", 1))
    with pytest.raises(ReaderError, match="unexpected header line 'Residual STD'"):
        sp.read(p)
    p = tmp_path / "plain.txt"
    p.write_text("1 2\n3 4\n")
    with pytest.raises(ReaderError, match="not a CasaXPS text export"):
        sp.read(p, reader="casaxps-text")


# ---------------------------------------------------------------- Avantage
def test_avantage_files_are_refused_with_the_export_to_use(tmp_path):
    ole = tmp_path / "survey.vgd"
    ole.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600)
    with pytest.raises(ReaderError, match="survey.vgd: a Thermo Avantage binary data file .*VAMAS"):
        sp.read(ole)
    txt = tmp_path / "survey.avg"
    txt.write_text("$PROTOCOL\n$SPACEAXES=1\n0=0, 1200, -1, 1201, eV, Binding Energy\n$DATA=*\n0=1,2,3\n")
    with pytest.raises(ReaderError, match="survey.avg: a Thermo Avantage text .avg .*not read yet"):
        sp.read(txt)


# ---------------------------------------------------------------- the malformed corpus, on these formats
def test_malformed_variants_of_these_exports_are_refused_in_user_terms(files, tmp_path):
    """The corpus mutations (tests/io/test_malformed_corpus.py) of each export, forced and automatic."""
    from test_malformed_corpus import check_one, file_mutations

    rng = np.random.default_rng(0)
    problems = {}
    for key, reader in (("xy", "specs-xy"), ("cols", "casaxps-text"), ("rows", "casaxps-text")):
        good = files[key]
        for what, data in file_mutations(good.read_bytes(), rng).items():
            cid = f"{key}__{what}"
            p = tmp_path / f"{cid}{good.suffix}"
            p.write_bytes(data)
            for r in (reader, None):
                why = check_one(r, cid, p)
                if why:
                    problems[f"{cid} [{r or 'auto'}]"] = why
    assert not problems, problems
