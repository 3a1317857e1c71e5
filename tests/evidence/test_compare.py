"""The one comparison, ``evidence.compare(reference, sample, quantity=...)``, and the technique helpers
that wrap it (fake Results with known numbers: the expected values are computed from the inputs)."""
from __future__ import annotations

import math
import warnings

import pytest

import specproc as sp
from specproc.core.errors import ParameterError
from specproc.core.result import Quantity, Result
from specproc.evidence import compare, comparisons_table, pairwise


def res(sample, technique, **q):
    quants = {k.replace("__", "."): Quantity(*v) for k, v in q.items()}
    return Result(f"{technique}.fit", technique, sample, quants, inputs=[{"source": f"/data/{sample}"}])


def test_reference_first_difference_and_ratio():
    ref = res("ref", "nmr", BH4__center_ppm=(-41.0, 0.03, "ppm"))
    smp = res("smp", "nmr", BH4__center_ppm=(-38.0, 0.04, "ppm"))
    d = compare(ref, smp, quantity="BH4.center_ppm")
    assert (d.op, d.sample, d.reference, d.unit) == ("difference", "smp", "ref", "ppm")
    assert d.value == pytest.approx(-38.0 - -41.0) and d.stderr == pytest.approx(math.hypot(0.03, 0.04))
    assert (d.sample_value, d.reference_value) == (-38.0, -41.0)
    r = compare(ref, smp, quantity="BH4.center_ppm", op="ratio")
    assert r.value == pytest.approx(-38.0 / -41.0)
    assert r.stderr == pytest.approx(abs(r.value) * math.hypot(0.04 / 38.0, 0.03 / 41.0))
    other = res("smp", "nmr", X__center_ppm=(-39.0, 0.01, "ppm"))
    renamed = compare(ref, other, quantity="X.center_ppm", quantity_reference="BH4.center_ppm")
    assert renamed.value == pytest.approx(2.0)
    missing = compare(ref, other, quantity="BH4.center_ppm")
    assert missing.value is None and "no quantity 'BH4.center_ppm'" in missing.reason
    with pytest.raises(TypeError, match="quantity"):
        compare(ref, smp)


def test_earlier_forms_still_work_with_a_deprecation_warning():
    ref = res("ref", "nmr", BH4__center_ppm=(-41.0, 0.03, "ppm"))
    smp = res("smp", "nmr", BH4__center_ppm=(-38.0, 0.04, "ppm"))
    with pytest.warns(DeprecationWarning, match="reference first"):
        old = compare(smp, ref, "BH4.center_ppm", op="difference")   # sample first, as before
    assert old.value == pytest.approx(3.0) and old.sample == "smp" and old.reference == "ref"
    with pytest.warns(DeprecationWarning, match="compare_selected"):
        from specproc.evidence import QuantityRef

        sel = compare([ref, smp], QuantityRef(technique="nmr", name="BH4.center_ppm"), "smp", "ref", "difference")
    assert sel.value == pytest.approx(3.0)


def test_pairwise_and_table_against_the_first_sample():
    rs = [res(s, "ftir", B__center_cm1=(v, 0.1, "1/cm")) for s, v in (("a", 2300.0), ("b", 2290.0), ("c", 2310.5))]
    cs = pairwise(rs, "B.center_cm1")
    assert [(c.reference, c.sample) for c in cs] == [("a", "b"), ("a", "c")]
    assert [c.value for c in cs] == pytest.approx([-10.0, 10.5])
    t = comparisons_table(cs)
    assert list(t["sigma"]) == pytest.approx([-10.0 / math.hypot(0.1, 0.1), 10.5 / math.hypot(0.1, 0.1)])
    assert [c.sample for c in pairwise(rs, "B.center_cm1", reference="b")] == ["a", "c"]
    assert pairwise(rs[:1], "B.center_cm1") == []


def test_technique_helpers_are_the_one_comparison():
    ftir_a = res("a", "ftir", BH__center_cm1=(2290.0, 0.2, "1/cm"))
    ftir_b = res("b", "ftir", BH__center_cm1=(2280.1, 0.3, "1/cm"))
    c = sp.ftir.compare(ftir_a, ftir_b, "BH")
    assert c.value == pytest.approx(2280.1 - 2290.0) and c.reference == "a"
    with pytest.warns(DeprecationWarning):
        assert sp.ftir.shift(ftir_a, ftir_b, "BH").value == c.value
    with pytest.raises(ParameterError, match="no band 'XX'"):
        sp.ftir.compare(ftir_a, ftir_b, "XX")

    eels_a = res("a", "eels", pi_star__energy_eV=(191.9, 0.02, "eV"))
    eels_b = res("b", "eels", pi_star__energy_eV=(192.4, 0.05, "eV"))
    e = sp.eels.compare(eels_a, eels_b)
    assert e.value == pytest.approx(0.5) and e.stderr == pytest.approx(math.hypot(0.02, 0.05))
    with pytest.warns(DeprecationWarning):
        assert sp.eels.shift(eels_a, eels_b).value == e.value

    afm_a = res("a", "afm", modulus__mean_Pa=(2.0e9, 1e8, "Pa"))
    afm_b = res("b", "afm", modulus__mean_Pa=(3.0e9, 3e8, "Pa"))
    m = sp.afm.compare(afm_a, afm_b)
    assert m.value == pytest.approx(1.5) and m.stderr == pytest.approx(1.5 * math.hypot(0.05, 0.1))
    with pytest.warns(DeprecationWarning):
        old = sp.afm.compare_moduli(afm_a, afm_b)
    assert old.quantities["modulus.ratio"].value == m.value

    nmr_a = res("a", "nmr", BH4__center_ppm=(-41.0, 0.01, "ppm"), BH4__fwhm_ppm=(1.0, 0.02, "ppm"),
                BH4__area_fraction=(0.7, 0.01, ""))
    nmr_b = res("b", "nmr", BH4__center_ppm=(-38.5, 0.02, "ppm"), BH4__fwhm_ppm=(1.5, 0.02, "ppm"),
                BH4__area_fraction=(0.6, 0.02, ""))
    n = sp.nmr.compare(nmr_a, nmr_b, "BH4")
    assert n.quantities["shift_change_ppm"].value == pytest.approx(2.5)
    assert n.quantities["fraction_change"].value == pytest.approx(-0.1)
    with pytest.warns(DeprecationWarning):
        assert sp.nmr.compare(nmr_a, nmr_b, "BH4", component_b="BH4").quantities["shift_change_ppm"].value \
            == pytest.approx(2.5)


def test_report_sections_use_the_comparison():
    """The FTIR and AFM sections tabulate what the helpers give (sample minus / over the first sample)."""
    from specproc.techniques.afm.report import report_section as afm_section
    from specproc.techniques.ftir.report import _shifts

    fa = res("a", "ftir", BH__center_cm1=(2290.0, 0.2, "1/cm"))
    fb = res("b", "ftir", BH__center_cm1=(2280.1, 0.3, "1/cm"))
    for r in (fa, fb):
        r.meta["bands"] = ["BH"]
    t = _shifts([fa, fb])
    assert list(t["shift_cm1"]) == pytest.approx([sp.ftir.compare(fa, fb, "BH").value])
    aa = res("a", "afm", modulus__mean_Pa=(2.0e9, 1e8, "Pa"))
    ab = res("b", "afm", modulus__mean_Pa=(3.0e9, 3e8, "Pa"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sec = afm_section([aa, ab])
    ratios = [df for cap, df in sec.tables if "modulus ratios" in cap][0]
    assert list(ratios["ratio"]) == pytest.approx([sp.afm.compare(aa, ab).value])
