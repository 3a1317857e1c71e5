"""Claims: declared rules on comparisons, evaluated to a verdict with its evidence."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .compare import OPS, Comparison, compare_selected, component_label, fmt_pm, presence_basis, quantity_description
from .refs import QuantityRef

#: Coverage factor k: verdicts are decided on value ± k·σ (k = 2 ≈ 95 % for normal errors).
COVERAGE_FACTOR = 2.0
VERDICTS = ("supported", "not supported", "inconclusive", "no data")

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_RULE_RE = [
    ("between", re.compile(rf"^between\s+({_NUM})\s*(?:and|,)?\s*({_NUM})$", re.I)),
    (">=", re.compile(rf"^>=\s*({_NUM})$")),
    ("<=", re.compile(rf"^<=\s*({_NUM})$")),
    (">", re.compile(rf"^>\s*({_NUM})$")),
    ("<", re.compile(rf"^<\s*({_NUM})$")),
    ("present", re.compile(r"^present$", re.I)),
    ("absent", re.compile(r"^absent$", re.I)),
]
#: Presence quantities are indicators/probabilities in [0, 1]; "present" means above this.
PRESENCE_THRESHOLD = 0.5


@dataclass(frozen=True)
class Rule:
    """A parsed rule: ``> x``, ``>= x``, ``< x``, ``<= x``, ``between a b``, ``present``, ``absent``."""

    kind: str
    a: float | None = None
    b: float | None = None

    def __str__(self) -> str:
        if self.kind == "between":
            return f"between {self.a:g} and {self.b:g}"
        if self.kind in ("present", "absent"):
            return self.kind
        return f"{self.kind} {self.a:g}"

    def evaluate(self, value: float, stderr: float | None, k: float = COVERAGE_FACTOR) -> tuple[str, str]:
        """Verdict for ``value ± k·stderr`` (stderr None is treated as 0 and said so)."""
        s = 0.0 if stderr is None or not math.isfinite(stderr) else abs(stderr)
        lo, hi = value - k * s, value + k * s
        note = "" if stderr is not None else "no uncertainty available; decided on the value alone"
        kind, a, b = self.kind, self.a, self.b
        if kind == "present":
            kind, a = ">", PRESENCE_THRESHOLD
        elif kind == "absent":
            kind, a = "<", PRESENCE_THRESHOLD
        if kind == "between":
            if lo >= a and hi <= b:
                return "supported", note
            if hi < a or lo > b:
                return "not supported", note
        elif kind in (">", ">="):
            if lo > a or (kind == ">=" and lo >= a):
                return "supported", note
            if hi < a or (kind == ">" and hi <= a):
                return "not supported", note
        else:  # "<", "<="
            if hi < a or (kind == "<=" and hi <= a):
                return "supported", note
            if lo > a or (kind == "<" and lo >= a):
                return "not supported", note
        return "inconclusive", (f"value ± {k:g}σ = [{lo:.4g}, {hi:.4g}] straddles the threshold"
                                + (f"; {note}" if note else ""))


def parse_rule(text: str) -> Rule:
    """Parse a rule string; raises ``ValueError`` naming the accepted forms."""
    t = " ".join(str(text).split())
    for kind, rx in _RULE_RE:
        m = rx.match(t)
        if m:
            nums = [float(g) for g in m.groups()]
            if kind == "between":
                lo, hi = sorted(nums)
                return Rule(kind, lo, hi)
            return Rule(kind, nums[0] if nums else None)
    raise ValueError(f"cannot parse rule {text!r}; use '> x', '>= x', '< x', '<= x', 'between a b', "
                     "'present' or 'absent'")


# --------------------------------------------------------------------------- declarations
class Compare(BaseModel):
    """Which samples and how: ``op`` is value, presence, difference, ratio, relative_change, percent_change."""

    model_config = ConfigDict(extra="forbid")
    sample: str
    reference: str | None = None
    op: Literal["value", "presence", "difference", "ratio", "relative_change", "percent_change"] = "value"

    @model_validator(mode="after")
    def _reference_needed(self):
        if self.op not in ("value", "presence") and not self.reference:
            raise ValueError(f"op {self.op!r} needs a 'reference' sample")
        return self


class Check(BaseModel):
    """One comparison and its rule."""

    model_config = ConfigDict(extra="forbid")
    quantity: QuantityRef
    compare: Compare
    rule: str
    unit: str | None = None
    missing: Literal["no data", "absent"] = "no data"

    @field_validator("rule")
    @classmethod
    def _rule_ok(cls, v: str) -> str:
        parse_rule(v)
        return v


class ClaimSpec(BaseModel):
    """A claim: either one check (``quantity``, ``compare``, ``rule``) or ``checks`` (all must hold)."""

    model_config = ConfigDict(extra="forbid")
    id: str
    text: str
    quantity: QuantityRef | None = None
    compare: Compare | None = None
    rule: str | None = None
    unit: str | None = None
    missing: Literal["no data", "absent"] = "no data"
    checks: list[Check] = Field(default_factory=list)

    @field_validator("rule")
    @classmethod
    def _rule_ok(cls, v):
        if v is not None:
            parse_rule(v)
        return v

    @model_validator(mode="after")
    def _one_form(self):
        single = (self.quantity, self.compare, self.rule)
        if any(x is not None for x in single):
            if self.checks:
                raise ValueError("give either quantity/compare/rule or checks, not both")
            if any(x is None for x in single):
                raise ValueError("a single-check claim needs quantity, compare and rule")
            self.checks = [Check(quantity=self.quantity, compare=self.compare, rule=self.rule,
                                 unit=self.unit, missing=self.missing)]
        elif not self.checks:
            raise ValueError("a claim needs quantity/compare/rule or a list of checks")
        return self

    @property
    def techniques(self) -> list[str]:
        return list(dict.fromkeys(c.quantity.technique for c in self.checks))


# --------------------------------------------------------------------------- outcomes
_PRESENCE_RULES = ("present", "absent")


@dataclass
class CheckOutcome:
    """One check of a claim: its comparison, rule, verdict, why, and what a presence decision rests on."""

    comparison: Comparison
    rule: str
    verdict: str
    reason: str = ""
    basis: str = ""               # presence checks: the quantities / processor rule behind the call

    @property
    def is_presence(self) -> bool:
        return self.rule in _PRESENCE_RULES or self.comparison.op == "presence"

    def label(self) -> str:
        """What is checked, named: ``phase LiBH4 in Mix``, ``H.fwhm_ppm: B − A``, ``lattice.a_nm: B / A``."""
        c = self.comparison
        if self.is_presence:  # the component by the quantity's key (Comparison.component), never parsed
            return f"{component_label(c.component) or c.quantity} in {c.sample}"
        sym = {"difference": "−", "ratio": "/", "relative_change": "/", "percent_change": "vs"}.get(c.op)
        pair = f"{c.sample} {sym} {c.reference}" if sym and c.reference else c.sample
        return f"{c.quantity}: {pair}" + (" (% change)" if c.op == "percent_change" else
                                          " (relative change)" if c.op == "relative_change" else "")

    def state(self) -> str:
        """For presence checks: ``present``, ``absent``, ``borderline`` (value at the threshold) or ``no data``."""
        v = self.comparison.value
        if v is None:
            return "no data"
        return "present" if v > PRESENCE_THRESHOLD else "absent" if v < PRESENCE_THRESHOLD else "borderline"

    def measured(self, k: float | None = None) -> str:
        """The measured value alone: ``present`` / ``absent (not reported)`` for presence checks,
        else ``value ± σ unit`` (± k·σ when ``k`` is given)."""
        c = self.comparison
        if self.is_presence:
            st = self.state()
            return st + (" (not reported: taken as absent)" if "taken as absent" in (c.reason or "") else "")
        return fmt_pm(c.value, c.stderr if k is None or c.stderr is None else k * c.stderr, c.unit)

    def value_text(self, k: float | None = None) -> str:
        """The measured value: ``phase LiBH4 present in Mix`` for presence checks; else
        ``label = value ± σ unit`` (± k·σ when ``k`` is given)."""
        c = self.comparison
        if self.is_presence:
            name = component_label(c.component) or c.quantity
            st = self.state()
            if st == "no data":
                return f"{name} in {c.sample}: no data"
            taken = " (not reported: taken as absent)" if "taken as absent" in (c.reason or "") else ""
            return f"{name} {st} in {c.sample}{taken}"
        unc = c.stderr if k is None or c.stderr is None else k * c.stderr
        return f"{self.label()} = {fmt_pm(c.value, unc, c.unit)}"

    def to_dict(self) -> dict:
        return {"comparison": self.comparison.to_dict(), "rule": self.rule, "verdict": self.verdict,
                "reason": self.reason, "basis": self.basis, "label": self.label(), "text": self.value_text()}


@dataclass
class ClaimOutcome:
    """A claim with its measured value (first check), rule, verdict and the evidence behind it."""

    id: str
    text: str
    verdict: str
    value: float | None
    stderr: float | None
    unit: str
    rule: str
    reason: str
    techniques: list[str]
    checks: list[CheckOutcome] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    coverage_factor: float = COVERAGE_FACTOR

    def value_text(self) -> str:
        """``value ± stderr unit`` for one check; for several, each check named
        (``phase LiBH4 present in Mix; H.fwhm_ppm: B − A = -0.29 ± 0.012 ppm``)."""
        if len(self.checks) > 1 or (self.checks and self.checks[0].is_presence):
            return "; ".join(c.value_text() for c in self.checks)
        return _fmt(self.value, self.stderr, self.unit)

    def interval_text(self) -> str:
        """The value as the interval the verdict was decided on: ``value ± k·σ unit`` (each check named
        when there are several; presence checks as present / absent)."""
        k = self.coverage_factor
        if len(self.checks) > 1 or (self.checks and self.checks[0].is_presence):
            return "; ".join(c.value_text(k) for c in self.checks)
        return fmt_pm(self.value, None if self.stderr is None else k * self.stderr, self.unit)

    def to_dict(self) -> dict:
        from ..core.result import jsonable

        return jsonable({"id": self.id, "text": self.text, "verdict": self.verdict, "value": self.value,
                         "stderr": self.stderr, "unit": self.unit, "rule": self.rule, "reason": self.reason,
                         "techniques": self.techniques, "sources": self.sources,
                         "coverage_factor": self.coverage_factor,
                         "checks": [c.to_dict() for c in self.checks]})


def _fmt(v, s, unit, label=None) -> str:
    txt = fmt_pm(v, s, unit)
    return f"{label}: {txt}" if label else txt


def _no_processor_note(technique: str) -> str:
    try:
        from .. import plugins

        names = plugins.available("processors")
    except Exception:  # registry problems must not break evidence
        return ""
    if not any(n.split(".", 1)[0] == technique for n in names):
        return f" (no processor registered for technique {technique!r})"
    return ""


def evaluate_check(check: Check, results: list, k: float = COVERAGE_FACTOR) -> CheckOutcome:
    c = compare_selected(results, check.quantity, check.compare.sample, check.compare.reference,
                         check.compare.op, check.missing)
    if check.unit and not c.unit and OPS[check.compare.op] is None:
        c.unit = check.unit
    rule = parse_rule(check.rule)
    if not c.has_data:
        note = c.reason or "no data"
        if not any(getattr(r, "technique", None) == check.quantity.technique for r in results):
            note += _no_processor_note(check.quantity.technique)
        return CheckOutcome(c, str(rule), "no data", note)
    verdict, why = rule.evaluate(c.value, c.stderr, k)
    basis = ""
    if rule.kind in _PRESENCE_RULES or check.compare.op == "presence":
        # a presence call is the processor's decision: say what it rests on, not "no uncertainty"
        basis = presence_basis(results, check.quantity, check.compare.sample, k)
        if c.stderr is None:
            why = f"decided on {basis}" if basis else "the processor's presence call (no uncertainty given)"
    elif c.stderr is None and check.compare.op == "value":
        desc = quantity_description(results, check.quantity, check.compare.sample)
        if desc:  # what the number is: the reader judges a value without an error bar by it
            why = f"{why} ({check.quantity.name}: {desc})"
    reason = "; ".join(x for x in (c.reason, why) if x)
    if check.unit and c.unit and check.unit != c.unit and OPS[check.compare.op] is None:
        reason = "; ".join(x for x in (reason, f"measured unit {c.unit!r} differs from declared {check.unit!r}")
                           if x)
    return CheckOutcome(c, str(rule), verdict, reason, basis)


def _combine_verdicts(verdicts: list[str]) -> str:
    # one failed check refutes the claim; otherwise missing data beats an open interval
    for v in ("not supported", "no data", "inconclusive"):
        if v in verdicts:
            return v
    return "supported"


def evaluate_claim(claim: ClaimSpec | dict, results: list, k: float = COVERAGE_FACTOR) -> ClaimOutcome:
    """Evaluate one claim against results (never raises for missing data or missing plugins)."""
    if not isinstance(claim, ClaimSpec):
        claim = ClaimSpec.model_validate(claim)
    outs = [evaluate_check(ch, results, k) for ch in claim.checks]
    first = outs[0].comparison
    verdict = _combine_verdicts([o.verdict for o in outs])
    if len(outs) == 1:
        rule, reason = outs[0].rule, outs[0].reason
    else:
        rule = "; ".join(f"{o.label()}: {o.rule}" for o in outs)
        reason = "; ".join(f"check {i + 1} ({o.label()}): {o.verdict}"
                           + (f" — {o.reason}" if o.reason else "") for i, o in enumerate(outs))
    sources = list(dict.fromkeys(s for o in outs for s in o.comparison.sources))
    return ClaimOutcome(claim.id, claim.text, verdict, first.value, first.stderr, first.unit, rule, reason,
                        claim.techniques, outs, sources, k)


def evaluate_claims(claims: list, results: list, k: float = COVERAGE_FACTOR) -> list[ClaimOutcome]:
    """Evaluate every claim; a claim that cannot be evaluated becomes ``no data`` with the reason."""
    out = []
    for cl in claims:
        try:
            out.append(evaluate_claim(cl, results, k))
        except Exception as exc:  # one malformed claim must not stop the report
            cid = getattr(cl, "id", None) or (cl.get("id") if isinstance(cl, dict) else "?")
            text = getattr(cl, "text", None) or (cl.get("text", "") if isinstance(cl, dict) else "")
            out.append(ClaimOutcome(str(cid), str(text), "no data", None, None, "", "",
                                    f"claim could not be evaluated: {type(exc).__name__}: {exc}", []))
    return out
