"""Questions -> conclusions generated from claims; multi-check claims named; what presence calls rest on."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

import dataclasses

from specproc.core.result import Quantities, Quantity, Result
from specproc.evidence import QuestionSpec, conclude, evaluate_claims


def res(sample, technique="fake", meta=None, keys=None, **q):
    """A result whose quantities carry their keys: ``keys={(component, property): value}``, or
    keyword ``component__property=value``."""
    quants = Quantities()
    kw = {(k.split("__")[0], k.split("__")[1]) if "__" in k else (None, k): v for k, v in q.items()}
    for (comp, prop), v in {**kw, **(keys or {})}.items():
        v = v if isinstance(v, Quantity) else Quantity(*v) if isinstance(v, tuple) else Quantity(v)
        quants.put(dataclasses.replace(v, component=comp, property=prop))
    return Result(f"{technique}.fit", technique, sample, quants, meta=meta or {},
                  inputs=[{"source": f"/data/{sample}.{technique}"}])


RESULTS = [res("A", peak__center=(1.00, 0.01, "mm"), peak__width=(2.0, 0.5, "mm")),
           res("B", peak__center=(2.50, 0.02, "mm"), peak__width=(2.1, 0.5, "mm")),
           res("A", "scan", keys={("phase(X)", "present"): Quantity(0.0, None, "", "1 present, 0 absent"),
                                  ("phase(X)", "score"): Quantity(0.05, None, "", "figure of merit")}),
           res("B", "scan", meta={"detection_limit_pct": 1.0},
               keys={("phase(X)", "present"): Quantity(1.0, None, "", "1 present, 0 absent"),
                     ("phase(X)", "score"): Quantity(0.93, None, "", "figure of merit"),
                     ("phase(X)", "coverage"): (0.8, 0.05, "")})]


def claim(cid, rule, op="difference", name="peak.center", sample="B", ref="A", technique="fake"):
    return {"id": cid, "text": f"statement {cid}", "rule": rule,
            "quantity": {"technique": technique, "name": name},
            "compare": {"sample": sample, **({"reference": ref, "op": op} if ref else {})}}


CLAIMS = [claim("shift_up", "> 1"),                         # 1.5 ± 2·0.022: supported
          claim("shift_down", "< 0"),                       # refuted
          claim("wider", "> 0", name="peak.width"),         # 0.1 ± 2·0.71: inconclusive
          claim("ghost", "> 0", sample="C", ref="A"),        # no data
          {"id": "phases", "text": "X only in B", "checks": [
              {"quantity": {"technique": "scan", "name": "phase(X).present"}, "compare": {"sample": "B"},
               "rule": "present"},
              {"quantity": {"technique": "scan", "name": "phase(X).present"}, "compare": {"sample": "A"},
               "rule": "absent"},
              # reported by no result: its structured form names the component (a name is never split)
              {"quantity": {"technique": "scan", "component": "phase(Y)", "property": "present"},
               "compare": {"sample": "A"}, "rule": "absent", "missing": "absent"}]}]


@pytest.fixture(scope="module")
def outcomes():
    return evaluate_claims(CLAIMS, RESULTS)


def test_conclusions_are_generated_from_the_claims(outcomes):
    assert [o.verdict for o in outcomes] == ["supported", "not supported", "inconclusive", "no data", "supported"]
    questions = [{"id": "q1", "text": "Does the peak move up?", "claims": ["shift_up", {"id": "shift_down"}, "wider",
                                                                             "ghost"]},
                 {"id": "q2", "text": "Is the bulk unchanged?", "claims": ["phases"], "against": ["shift_up"]},
                 {"id": "q3", "text": "Only open?", "claims": ["wider", "not_a_claim"]}]
    q1, q2, q3 = conclude(questions, outcomes)
    assert [(i.claim_id, i.stance) for i in q1.items] == [("shift_up", "for"), ("shift_down", "against"),
                                                          ("wider", "open"), ("ghost", "no data")]
    assert q1.stance == "mixed" and q1.summary().startswith("Mixed evidence: 4 claims — 1 for, 1 against, "
                                                             "1 inconclusive, 1 without data")
    text = q1.paragraph()
    assert text.startswith("Does the peak move up? Mixed evidence")
    # each claim with its value ± 2σ (the verdict's interval) and its verdict, sorted by stance
    assert "For: statement shift_up (1.500 ± 0.045 mm; rule > 1): supported." in text
    assert "Against: statement shift_down (1.500 ± 0.045 mm; rule < 0): not supported." in text
    assert "Inconclusive: statement wider (0.1 ± 1.4 mm; rule > 0): inconclusive." in text
    assert "No data: statement ghost (rule > 0): no data." in text
    assert text.index("For:") < text.index("Against:") < text.index("Inconclusive:") < text.index("No data:")
    # a claim listed `against` a question speaks against it when supported
    assert [(i.claim_id, i.role, i.stance) for i in q2.items] == [("phases", "for", "for"),
                                                                  ("shift_up", "against", "against")]
    assert "phase X present in B; phase X absent in A; phase Y absent in A (not reported: taken as absent)" in \
        q2.paragraph()
    # open questions; an unknown claim id is listed as no data, never a crash
    assert q3.stance == "open" and q3.items[1].verdict == "no data" and q3.items[1].claim_id == "not_a_claim"
    d = q1.to_dict()
    assert d["stance"] == "mixed" and d["paragraph"] == text and len(d["items"]) == 4


def test_all_for_and_all_against():
    out = evaluate_claims(CLAIMS[:2], RESULTS)
    (yes,), (no,) = conclude([{"id": "a", "text": "up?", "claims": ["shift_up"]}], out), \
        conclude([{"id": "b", "text": "down?", "claims": ["shift_down"]}], out)
    assert yes.stance == "supported" and yes.summary().startswith("Supported by every claim with data: 1 claim")
    assert no.stance == "contradicted" and no.summary().startswith("Contradicted by every claim with data")
    assert conclude([], out) == []


def test_question_spec_validation():
    q = QuestionSpec.model_validate({"id": "q", "text": "t", "claims": ["a", {"id": "b", "role": "against"}],
                                     "against": ["c"]})
    assert [(c.id, c.role) for c in q.items] == [("a", "for"), ("b", "against"), ("c", "against")]
    for bad, why in (({"id": "q", "text": "t"}, "at least one claim"),
                     ({"id": "q", "text": "t", "claims": ["a", "a"]}, "listed twice"),
                     ({"id": "q", "text": "t", "claims": [{"id": "a", "role": "maybe"}]}, "role"),
                     ({"id": "q", "text": "t", "claims": ["a"], "extra": 1}, "extra")):
        with pytest.raises(ValidationError, match=why):
            QuestionSpec.model_validate(bad)


def test_multi_check_claims_are_named_and_say_what_they_rest_on(outcomes):
    phases = outcomes[-1]
    # named phase, sample and state: not "B: 1; A: 0"
    assert phases.value_text() == ("phase X present in B; phase X absent in A; "
                                   "phase Y absent in A (not reported: taken as absent)")
    assert [c.label() for c in phases.checks] == ["phase X in B", "phase X in A", "phase Y in A"]
    assert [c.measured() for c in phases.checks] == ["present", "absent", "absent (not reported: taken as absent)"]
    assert "no uncertainty available" not in phases.reason
    b, a, y = phases.checks
    # the decision's basis: the component's other quantities (± 2σ), limits in meta, the processor's rule
    assert b.basis == ("score 0.93, coverage 0.80 ± 0.10 (± 2σ); detection_limit_pct = 1; "
                       "processor's rule: 1 present, 0 absent")
    assert "decided on score 0.93" in b.reason
    assert a.basis == "score 0.05; processor's rule: 1 present, 0 absent"
    assert "phase(Y).present not reported by the scan.fit result (it reports only what it found)" in y.basis
    assert phases.reason.startswith("check 1 (phase X in B): supported — decided on score 0.93")
    assert phases.rule.startswith("phase X in B: present; phase X in A: absent")
    # the numeric form names what is compared, with value ± kσ
    shift = outcomes[0]
    assert shift.checks[0].label() == "peak.center: B − A"
    assert shift.checks[0].value_text(2) == "peak.center: B − A = 1.500 ± 0.045 mm"
    assert shift.interval_text() == "1.500 ± 0.045 mm" and shift.value_text().startswith("1.500 ± 0.022")
    d = phases.checks[0].to_dict()
    assert d["label"] == "phase X in B" and d["text"] == "phase X present in B" and d["basis"] == b.basis


def test_a_value_without_uncertainty_says_what_it_is():
    r = [res("A", "scan", amorphous_fraction=Quantity(0.9, None, "", "hump area / total; a hint"))]
    (o,) = evaluate_claims([claim("am", "> 0.5", name="amorphous_fraction", sample="A", ref=None,
                                  technique="scan")], r)
    assert o.verdict == "supported"
    assert o.reason == ("no uncertainty available; decided on the value alone "
                        "(amorphous_fraction: hump area / total; a hint)")
