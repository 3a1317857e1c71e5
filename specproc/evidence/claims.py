"""Claims: declared rules on comparisons, evaluated to a verdict with its evidence."""
from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .compare import OPS, Comparison, compare

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
class QuantityRef(BaseModel):
    """Which quantity: technique, quantity name (``BH4.center_ppm``), optional processor and metadata.

    ``meta`` selects results by any key of ``Result.meta`` (values compared as text), e.g.
    ``{technique: nmr, meta: {nucleus: 11B}, name: BH4.center_ppm}`` or
    ``{technique: xrd, meta: {temperature_K: 300}, name: lattice.a_nm}``. The evidence engine
    knows no technique's words; the old top-level ``nucleus:`` key is accepted as a deprecated
    alias of ``meta.nucleus``.
    """

    model_config = ConfigDict(extra="forbid")
    technique: str
    name: str
    processor: str | None = None
    meta: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _legacy_keys(cls, data):
        # older pipelines said `nucleus: 11B` at the top level; it is meta.nucleus now
        if isinstance(data, dict) and "nucleus" in data:
            data = dict(data)
            value = data.pop("nucleus")
            meta = dict(data.get("meta") or {})
            if value is not None:
                if "nucleus" in meta and str(meta["nucleus"]) != str(value):
                    raise ValueError(f"nucleus {value!r} contradicts meta.nucleus {meta['nucleus']!r}")
                meta.setdefault("nucleus", value)
                warnings.warn("quantity 'nucleus:' is deprecated; write meta: {nucleus: ...}", DeprecationWarning,
                              stacklevel=2)
            data["meta"] = meta
        return data

    @property
    def nucleus(self):
        """Deprecated: ``meta.get("nucleus")`` (kept for code written against the old field)."""
        return self.meta.get("nucleus")

    @property
    def selector(self) -> dict:
        """What besides technique and name selects results (``processor``, ``meta``), as plain JSON."""
        out = {"meta": dict(self.meta)} if self.meta else {}
        if self.processor:
            out["processor"] = self.processor
        return out

    def matches(self, result) -> bool:
        """Whether ``result`` (a :class:`~specproc.core.result.Result`) is one this reference selects."""
        if getattr(result, "technique", None) != self.technique:
            return False
        if self.processor and getattr(result, "processor", None) != self.processor:
            return False
        meta = getattr(result, "meta", None) or {}
        return all(k in meta and str(meta[k]) == str(v) for k, v in self.meta.items())

    def describe(self) -> str:
        """``nmr (nucleus=11B)``: technique and selector for messages."""
        sel = ", ".join(f"{k}={v}" for k, v in self.meta.items())
        if self.processor:
            sel = ", ".join(x for x in (f"processor={self.processor}", sel) if x)
        return f"{self.technique} ({sel})" if sel else self.technique


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
@dataclass
class CheckOutcome:
    comparison: Comparison
    rule: str
    verdict: str
    reason: str = ""

    def to_dict(self) -> dict:
        return {"comparison": self.comparison.to_dict(), "rule": self.rule, "verdict": self.verdict,
                "reason": self.reason}


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
        """``value ± stderr unit`` for the first check, or a per-check summary for several."""
        if len(self.checks) > 1:
            return "; ".join(_fmt(c.comparison.value, c.comparison.stderr, c.comparison.unit,
                                  c.comparison.sample + (f" vs {c.comparison.reference}"
                                                         if c.comparison.reference else ""))
                             for c in self.checks)
        return _fmt(self.value, self.stderr, self.unit)

    def to_dict(self) -> dict:
        from ..core.result import jsonable

        return jsonable({"id": self.id, "text": self.text, "verdict": self.verdict, "value": self.value,
                         "stderr": self.stderr, "unit": self.unit, "rule": self.rule, "reason": self.reason,
                         "techniques": self.techniques, "sources": self.sources,
                         "coverage_factor": self.coverage_factor,
                         "checks": [c.to_dict() for c in self.checks]})


def _fmt(v, s, unit, label=None) -> str:
    if v is None:
        txt = "—"
    elif s is None:
        txt = f"{v:.4g}"
    else:
        txt = f"{v:.4g} ± {s:.2g}"
    txt = f"{txt} {unit}".strip()
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
    c = compare(results, check.quantity, check.compare.sample, check.compare.reference, check.compare.op,
                check.missing)
    if check.unit and not c.unit and OPS[check.compare.op] is None:
        c.unit = check.unit
    rule = parse_rule(check.rule)
    if not c.has_data:
        note = c.reason or "no data"
        if not any(getattr(r, "technique", None) == check.quantity.technique for r in results):
            note += _no_processor_note(check.quantity.technique)
        return CheckOutcome(c, str(rule), "no data", note)
    verdict, why = rule.evaluate(c.value, c.stderr, k)
    reason = "; ".join(x for x in (c.reason, why) if x)
    if check.unit and c.unit and check.unit != c.unit and OPS[check.compare.op] is None:
        reason = "; ".join(x for x in (reason, f"measured unit {c.unit!r} differs from declared {check.unit!r}")
                           if x)
    return CheckOutcome(c, str(rule), verdict, reason)


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
        rule = "; ".join(f"{o.comparison.sample}{'/' + o.comparison.reference if o.comparison.reference else ''}"
                         f" {o.comparison.quantity} {o.rule}" for o in outs)
        reason = "; ".join(f"check {i + 1} ({o.comparison.sample} {o.comparison.quantity}): {o.verdict}"
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
