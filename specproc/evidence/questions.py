"""Questions a study asks, answered from its claims: the conclusions at the top of a report.

A pipeline declares its questions and the claims each draws on::

    questions:
      - id: confinement
        text: Is LiBH4 confined in the [LiNBH]n matrix?
        claims: [bh4_shift, li7_narrow_fraction, {id: bulk_phase_kept, role: against}]

A claim listed ``for`` a question (the default) speaks for the answer when it is supported and
against it when it is not supported; a claim listed ``against`` the other way round. Inconclusive
claims and claims without data are listed as open. :func:`conclude` turns questions and
evaluated claims (:class:`~specproc.evidence.ClaimOutcome`) into :class:`Conclusion` objects
whose :meth:`Conclusion.paragraph` is generated text — each claim with its value ± k·σ (the
interval its verdict was decided on) and its verdict. Nothing here knows a study or a technique.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: how a claim's verdict bears on a question, by the role it was listed with
_STANCE = {("for", "supported"): "for", ("for", "not supported"): "against",
           ("against", "supported"): "against", ("against", "not supported"): "for"}


class QuestionClaim(BaseModel):
    """A claim a question draws on, and whether its support speaks for (default) or against the answer."""

    model_config = ConfigDict(extra="forbid")
    id: str
    role: Literal["for", "against"] = "for"


class QuestionSpec(BaseModel):
    """A question of the study (``id``, ``text``) and the claims it draws on.

    ``claims`` items are claim ids (role ``for``) or ``{id, role}``; ``against`` is a shorthand
    list of claim ids with role ``against``.
    """

    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=256)
    text: str = Field(min_length=1)
    claims: list[QuestionClaim] = Field(default_factory=list)
    against: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _plain_ids(cls, data):
        if isinstance(data, dict) and isinstance(data.get("claims"), list):
            data = dict(data, claims=[{"id": c} if isinstance(c, str) else c for c in data["claims"]])
        return data

    @model_validator(mode="after")
    def _some_claims(self):
        if not self.claims and not self.against:
            raise ValueError("a question needs at least one claim id in 'claims' (or 'against')")
        seen = [c.id for c in self.claims] + list(self.against)
        dup = sorted({c for c in seen if seen.count(c) > 1})
        if dup:
            raise ValueError(f"claim {dup[0]!r} listed twice for this question")
        return self

    @property
    def items(self) -> list[QuestionClaim]:
        """Every claim of the question with its role (``claims`` then ``against``)."""
        return list(self.claims) + [QuestionClaim(id=c, role="against") for c in self.against]


@dataclass
class ConclusionItem:
    """One claim as evidence for a question."""

    claim_id: str
    role: str                 # "for" / "against": how the question lists the claim
    stance: str               # "for" / "against" the answer, "open" (inconclusive) or "no data"
    verdict: str
    text: str                 # the claim's statement
    value: str                # value ± k·σ (each check named for multi-check claims)
    rule: str
    outcome: object = None    # the ClaimOutcome (None for an unknown claim id)

    def sentence(self) -> str:
        """``statement (value ± kσ; rule r): verdict``."""
        what = "; ".join(x for x in (self.value if self.value and self.value != "—" else "",
                                     f"rule {self.rule}" if self.rule and len(self.rule) < 40 else "") if x)
        return f"{self.text} ({what}): {self.verdict}" if what else f"{self.text}: {self.verdict}"


@dataclass
class Conclusion:
    """A question with the claims it draws on, sorted by stance, and a summary."""

    id: str
    text: str
    items: list[ConclusionItem] = field(default_factory=list)
    coverage_factor: float = 2.0

    def by_stance(self, stance: str) -> list[ConclusionItem]:
        return [i for i in self.items if i.stance == stance]

    @property
    def stance(self) -> str:
        """``supported`` (only claims for), ``contradicted`` (only against), ``mixed``, ``open``
        (only inconclusive claims or none with data)."""
        n_for, n_against = len(self.by_stance("for")), len(self.by_stance("against"))
        if n_for and n_against:
            return "mixed"
        if n_for:
            return "supported" if not self.by_stance("open") else "mostly supported"
        if n_against:
            return "contradicted" if not self.by_stance("open") else "mostly contradicted"
        return "open"

    def summary(self) -> str:
        """One sentence: how many claims speak for and against, how many are open or lack data."""
        n = len(self.items)
        counts = [(len(self.by_stance(s)), label) for s, label in (
            ("for", "for"), ("against", "against"), ("open", "inconclusive"), ("no data", "without data"))]
        body = ", ".join(f"{c} {label}" for c, label in counts if c) or "no claims"
        lead = {"supported": "Supported by every claim with data", "mostly supported": "Supported, with open claims",
                "contradicted": "Contradicted by every claim with data",
                "mostly contradicted": "Contradicted, with open claims", "mixed": "Mixed evidence",
                "open": "Not decided by the evidence"}[self.stance]
        return (f"{lead}: {n} claim{'s' if n != 1 else ''} — {body} "
                f"(values ± {self.coverage_factor:g}σ, the interval each verdict is decided on).")

    def paragraph(self) -> str:
        """The generated paragraph: question, summary, then the claims for, against and open."""
        parts = [self.text.strip(), self.summary()]
        for stance, label in (("for", "For"), ("against", "Against"), ("open", "Inconclusive"),
                              ("no data", "No data")):
            items = self.by_stance(stance)
            if items:
                parts.append(f"{label}: " + "; ".join(i.sentence() for i in items) + ".")
        return " ".join(parts)

    def to_dict(self) -> dict:
        return {"id": self.id, "text": self.text, "stance": self.stance, "summary": self.summary(),
                "paragraph": self.paragraph(), "coverage_factor": self.coverage_factor,
                "items": [{"claim_id": i.claim_id, "role": i.role, "stance": i.stance, "verdict": i.verdict,
                           "text": i.text, "value": i.value, "rule": i.rule} for i in self.items]}


def conclude(questions: list, claims: list, k: float | None = None) -> list[Conclusion]:
    """Conclusions of ``questions`` (:class:`QuestionSpec` or dicts) from evaluated ``claims``.

    Never raises for a claim id without an outcome (it is listed with verdict ``no data``); a
    malformed question raises pydantic's ``ValidationError`` (pipelines validate them on load).
    """
    from .claims import COVERAGE_FACTOR

    by_id = {c.id: c for c in claims}
    if k is None:
        k = claims[0].coverage_factor if claims else COVERAGE_FACTOR
    out = []
    for q in questions or []:
        q = q if isinstance(q, QuestionSpec) else QuestionSpec.model_validate(q)
        items = []
        for qc in q.items:
            c = by_id.get(qc.id)
            if c is None:
                items.append(ConclusionItem(qc.id, qc.role, "no data", "no data", qc.id, "—", "",
                                            None))
                continue
            stance = _STANCE.get((qc.role, c.verdict), "open" if c.verdict == "inconclusive" else "no data")
            items.append(ConclusionItem(c.id, qc.role, stance, c.verdict, c.text, c.interval_text(), c.rule, c))
        out.append(Conclusion(q.id, q.text, items, k))
    return out
