"""Comparisons, uncertainty propagation, rules and verdicts (fake Results with known numbers)."""
from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from specproc.core.result import Quantity, Result
from specproc.evidence import (COVERAGE_FACTOR, ClaimSpec, QuantityRef, compare_selected, evaluate_claim,
                               evaluate_claims, parse_rule)


def res(sample, technique="nmr", nucleus="11B", source=None, **q):
    quants = {k.replace("__", "."): Quantity(*v) if isinstance(v, tuple) else Quantity(v) for k, v in q.items()}
    return Result("x.fit", technique, sample, quants, meta={"nucleus": nucleus},
                  inputs=[{"source": source or f"/data/{sample}_{nucleus}"}])


REF = QuantityRef(technique="nmr", meta={"nucleus": "11B"}, name="BH4.center_ppm")


@pytest.mark.parametrize("text,kind,a,b", [("> 1", ">", 1, None), (">=-2.5e-1", ">=", -0.25, None),
                                           ("< 0", "<", 0, None), ("between 300 500", "between", 300, 500),
                                           ("between 5 and 1", "between", 1, 5), ("present", "present", None, None),
                                           ("ABSENT", "absent", None, None)])
def test_parse_rule(text, kind, a, b):
    r = parse_rule(text)
    assert (r.kind, r.a, r.b) == (kind, a, b)


@pytest.mark.parametrize("text", ["> ", "bigger 3", "between 1", "== 2", ""])
def test_parse_rule_rejects(text):
    with pytest.raises(ValueError, match="cannot parse rule"):
        parse_rule(text)


def test_rule_coverage_factor():
    r = parse_rule("> 1.0")
    assert COVERAGE_FACTOR == 2.0
    assert r.evaluate(1.5, 0.2)[0] == "supported"          # 1.1 .. 1.9
    assert r.evaluate(1.3, 0.2)[0] == "inconclusive"       # 0.9 .. 1.7 straddles
    assert r.evaluate(0.5, 0.2)[0] == "not supported"      # 0.1 .. 0.9
    v, why = r.evaluate(1.3, None)
    assert v == "supported" and "no uncertainty" in why
    b = parse_rule("between 300 500")
    assert b.evaluate(400, 40)[0] == "supported"
    assert b.evaluate(480, 40)[0] == "inconclusive"
    assert b.evaluate(700, 40)[0] == "not supported"
    assert parse_rule("present").evaluate(1.0, None)[0] == "supported"
    assert parse_rule("absent").evaluate(1.0, None)[0] == "not supported"
    assert parse_rule("absent").evaluate(0.0, 0.0)[0] == "supported"


def test_difference_and_ratio_propagation_match_monte_carlo():
    results = [res("A", BH4__center_ppm=(-44.3, 0.05, "ppm")), res("B", BH4__center_ppm=(-41.0, 0.12, "ppm"))]
    d = compare_selected(results, REF, "B", "A", "difference")
    assert d.value == pytest.approx(3.3) and d.stderr == pytest.approx(np.hypot(0.05, 0.12)) and d.unit == "ppm"
    rng = np.random.default_rng(0)
    a = rng.normal(0.494, 0.002, 200_000)
    b = rng.normal(0.508, 0.003, 200_000)
    xr = [res("A", "xrd", None, **{"hkl(101)__d_nm": (0.494, 0.002, "nm")}),
          res("B", "xrd", None, **{"hkl(101)__d_nm": (0.508, 0.003, "nm")})]
    ref = QuantityRef(technique="xrd", name="hkl(101).d_nm")
    for op, mc, scale in (("ratio", b / a, 1), ("relative_change", b / a - 1, 1),
                          ("percent_change", 100 * (b / a - 1), 100)):
        c = compare_selected(xr, ref, "B", "A", op)
        assert c.value == pytest.approx(np.mean(mc), rel=1e-3, abs=1e-3 * scale)
        assert c.stderr == pytest.approx(np.std(mc), rel=0.03)
    assert compare_selected(xr, ref, "B", "A", "percent_change").unit == "%"
    assert compare_selected(xr, ref, "B", "A", "ratio").unit == ""


def test_repeats_are_combined_by_inverse_variance():
    results = [res("A", source="/a1", BH4__center_ppm=(-44.0, 0.1, "ppm")),
               res("A", source="/a2", BH4__center_ppm=(-44.6, 0.2, "ppm"))]
    c = compare_selected(results, REF, "A")
    w = np.array([1 / 0.1 ** 2, 1 / 0.2 ** 2])
    assert c.value == pytest.approx((w * [-44.0, -44.6]).sum() / w.sum())
    assert c.stderr == pytest.approx(1 / np.sqrt(w.sum()))
    assert c.sources == ["/a1", "/a2"]


def test_matching_uses_technique_nucleus_and_sample():
    results = [res("A", nucleus="7Li", BH4__center_ppm=(1.0, 0.1, "ppm")), res("A", technique="xrd", nucleus="11B",
                                                                             BH4__center_ppm=(2.0, 0.1, "ppm"))]
    c = compare_selected(results, REF, "A")
    assert c.value is None and "no nmr" in c.reason and "'A'" in c.reason


def test_selection_by_any_metadata_key():
    """Evidence knows no technique's words: any Result.meta key selects (values compared as text)."""
    results = [Result("x.fit", "xrd", "A", {"lattice.a_nm": Quantity(0.4, 0.001, "nm")}, meta={"temperature_K": 300}),
               Result("x.fit", "xrd", "A", {"lattice.a_nm": Quantity(0.5, 0.001, "nm")}, meta={"temperature_K": 77}),
               Result("y.fit", "xrd", "A", {"lattice.a_nm": Quantity(0.6, 0.001, "nm")}, meta={"temperature_K": 77})]
    cold = QuantityRef(technique="xrd", name="lattice.a_nm", meta={"temperature_K": "77"}, processor="x.fit")
    assert compare_selected(results, cold, "A").value == pytest.approx(0.5)
    both = QuantityRef(technique="xrd", name="lattice.a_nm", meta={"temperature_K": 77})
    assert compare_selected(results, both, "A").value == pytest.approx(0.55)  # two repeats, equal weights
    assert compare_selected(results, QuantityRef(technique="xrd", name="lattice.a_nm", meta={"phase": "x"}), "A").value is None
    assert cold.selector == {"meta": {"temperature_K": "77"}, "processor": "x.fit"}
    assert cold.matches(results[1]) and not cold.matches(results[0]) and not cold.matches(results[2])


def test_nucleus_key_is_a_deprecated_alias_of_meta():
    with pytest.warns(DeprecationWarning, match="meta"):
        ref = QuantityRef.model_validate({"technique": "nmr", "nucleus": "11B", "name": "BH4.center_ppm"})
    assert ref.meta == {"nucleus": "11B"} and ref.nucleus == "11B"
    assert "nucleus" not in QuantityRef.model_fields  # no technique word in the schema
    with pytest.raises(Exception, match="contradicts"):
        QuantityRef.model_validate({"technique": "nmr", "nucleus": "11B", "meta": {"nucleus": "7Li"}, "name": "x"})


def _claim(**kw):
    base = dict(id="c", text="t", quantity=REF.model_dump(), compare={"sample": "B", "reference": "A",
                                                                     "op": "difference"}, rule="> 1.0", unit="ppm")
    base.update(kw)
    return ClaimSpec.model_validate(base)


def test_claim_verdicts_and_no_data():
    results = [res("A", BH4__center_ppm=(-44.3, 0.05, "ppm")), res("B", BH4__center_ppm=(-41.0, 0.12, "ppm"))]
    out = evaluate_claim(_claim(), results)
    assert out.verdict == "supported" and out.value == pytest.approx(3.3) and out.unit == "ppm"
    assert out.value_text().startswith("3.30 ± 0.13 ppm")  # rounded to the error's 2nd digit
    assert evaluate_claim(_claim(rule="> 3.2"), results).verdict == "inconclusive"
    assert evaluate_claim(_claim(rule="> 5"), results).verdict == "not supported"
    # sample without results, technique without results, technique without processor
    nd = evaluate_claim(_claim(compare={"sample": "Z", "reference": "A", "op": "difference"}), results)
    assert nd.verdict == "no data" and "'Z'" in nd.reason and nd.value is None
    raman = evaluate_claim(_claim(quantity={"technique": "raman", "name": "BH.center_cm1"}), results)
    assert raman.verdict == "no data" and "no processor registered for technique 'raman'" in raman.reason
    missing_q = evaluate_claim(_claim(quantity={"technique": "nmr", "meta": {"nucleus": "11B"}, "name": "NH.center_ppm"}),
                               results)
    assert missing_q.verdict == "no data" and "NH.center_ppm not reported" in missing_q.reason


def test_composite_claim():
    results = [res("LiBH4", "xrd", None, **{"phase(LiBH4)__present": 1.0}),
               res("Mix", "xrd", None, **{"phase(LiBH4)__present": 1.0, "phase(LiNH2BH3)__present": 1.0}),
               res("Heated", "xrd", None, **{"phase(LiBH4)__present": 1.0})]

    def chk(sample, phase, rule, **kw):
        return dict(quantity={"technique": "xrd", "name": f"phase({phase}).present"}, compare={"sample": sample},
                    rule=rule, **kw)

    spec = {"id": "x", "text": "both in Mix, only LiBH4 after heating",
            "checks": [chk("Mix", "LiBH4", "present"), chk("Mix", "LiNH2BH3", "present"),
                       chk("Heated", "LiBH4", "present"), chk("Heated", "LiNH2BH3", "absent", missing="absent")]}
    out = evaluate_claim(spec, results)
    assert out.verdict == "supported" and len(out.checks) == 4
    spec["checks"][3]["missing"] = "no data"
    assert evaluate_claim(spec, results).verdict == "no data"
    spec["checks"][0]["rule"] = "absent"
    assert evaluate_claim(spec, results).verdict == "not supported"  # a refuted check beats missing data


def test_claim_spec_validation():
    with pytest.raises(ValidationError, match="needs a 'reference'"):
        _claim(compare={"sample": "B", "op": "ratio"})
    with pytest.raises(ValidationError, match="cannot parse rule"):
        _claim(rule="about 3")
    with pytest.raises(ValidationError, match="needs quantity, compare and rule"):
        ClaimSpec.model_validate({"id": "c", "text": "t", "rule": "> 1"})
    with pytest.raises(ValidationError):
        _claim(extra_key=1)


def test_evaluate_claims_never_crashes():
    out = evaluate_claims([{"id": "bad", "text": "malformed"}, _claim()], [])
    assert [o.verdict for o in out] == ["no data", "no data"]
    assert "could not be evaluated" in out[0].reason
    d = out[1].to_dict()
    import json

    json.dumps(d, allow_nan=False)
