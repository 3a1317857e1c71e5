"""A claim, comparison or question naming a sample, technique or claim not in the pipeline is a
validation error (file and line, exit 2 from the CLI, nothing run), not a silent "no data"."""
from __future__ import annotations

import pytest

from specproc.core.errors import ParameterError
from specproc.pipeline import load_pipeline

GOOD = """\
name: references
root: .
questions:
  - id: q
    text: "Does it shift?"
    claims: [shift]
measurements:
  - {sample: A, technique: ftir, files: a.jdx, processor: ftir.fit_bands}
  - {sample: B, technique: ftir, files: b.jdx, processor: ftir.fit_bands}
  - {sample: "run_{stem}", technique: ftir, files: "runs/*.jdx", processor: ftir.fit_bands}
comparisons:
  - id: cmp
    quantity: {technique: ftir, name: BH.center_cm1}
    compare: {sample: B, reference: A, op: difference}
claims:
  - id: shift
    text: "B shifts"
    quantity: {technique: ftir, name: BH.center_cm1}
    compare: {sample: B, reference: A, op: difference}
    rule: "< 0"
  - id: templated
    text: "a sample named from its file"
    checks:
      - {quantity: {technique: ftir, name: BH.center_cm1}, compare: {sample: run_7}, rule: "> 0"}
"""


def _write(tmp_path, text):
    p = tmp_path / "p.yaml"
    p.write_text(text)
    return p


def _line(text, snippet, nth=1):
    hits = [i + 1 for i, s in enumerate(text.splitlines()) if snippet in s]
    return hits[nth - 1]


def test_good_references_load(tmp_path):
    pipe = load_pipeline(_write(tmp_path, GOOD))
    assert [q.id for q in pipe.config.questions] == ["q"]
    assert [c.id for c in pipe.config.claims] == ["shift", "templated"]  # run_7 matches the run_{stem} template


@pytest.mark.parametrize("old,new,where,what", [
    ("compare: {sample: B, reference: A, op: difference}\n    rule", "compare: {sample: Bx, reference: A, op: "
     "difference}\n    rule", "Bx, reference", "claims.0.compare.sample: sample 'Bx' is not in the pipeline"),
    ("compare: {sample: B, reference: A, op: difference}\n    rule", "compare: {sample: B, reference: Z, op: "
     "difference}\n    rule", "reference: Z", "claims.0.compare.reference: sample 'Z' is not in the pipeline"),
    ("{technique: ftir, name: BH.center_cm1}, compare: {sample: run_7}", "{technique: raman, name: BH.center_cm1}, "
     "compare: {sample: run_7}", "technique: raman", "claims.1.checks.0.quantity.technique: technique 'raman' is "
     "not in the pipeline"),
    ("compare: {sample: B, reference: A, op: difference}\nclaims", "compare: {sample: C, reference: A, op: "
     "difference}\nclaims", "sample: C,", "comparisons.0.compare.sample: sample 'C' is not in the pipeline"),
    ("claims: [shift]", "claims: [shfit]", "claims: [shfit]", "questions.0.claims.0: claim 'shfit' is not in the "
     "pipeline"),
])
def test_unknown_references_are_errors_with_the_line(tmp_path, old, new, where, what):
    assert old in GOOD
    text = GOOD.replace(old, new, 1)
    p = _write(tmp_path, text)
    with pytest.raises(ParameterError) as ei:
        load_pipeline(p)
    msg = str(ei.value)
    line = _line(text, where)
    assert msg.startswith(f"{p}:{line}:"), msg
    assert f"line {line}: {what}" in msg
    if "shfit" in new:
        assert "did you mean 'shift'?" in msg


def test_cli_exits_2_and_runs_nothing(tmp_path, capsys):
    from specproc.cli import main

    text = GOOD.replace("compare: {sample: B, reference: A, op: difference}\n    rule",
                        "compare: {sample: LiBH4-70LiNBHx, reference: A, op: difference}\n    rule", 1)
    p = _write(tmp_path, text)
    out = tmp_path / "out"
    rc = main(["run", str(p), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert f"{p}:{_line(text, 'LiBH4-70LiNBHx')}:" in err and "sample 'LiBH4-70LiNBHx' is not in the pipeline" in err
    assert "Traceback" not in err
    assert not (out / "report.html").exists() and not (out / "exports").exists()
