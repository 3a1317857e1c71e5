"""The neutral run view the report consumes (no pipeline internals, no duck typing)."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RunView:
    """Everything the report shows about one run.

    Built by the pipeline (``RunSummary.view()``), by the technique CLIs (from their results and
    per-file errors, :meth:`from_results`) or by hand.

    Attributes
    ----------
    title : str
    results : list of Result
    failures : list of dict
        ``{"file", "error"}`` plus optional ``type``, ``sample``, ``technique``, ``processor``.
    skipped : list of dict
        Pipeline entries that produced no file (``sample``, ``technique``, ``processor``,
        ``files``, ``reason``, ``line``).
    claims : list of ClaimOutcome
    comparisons : list of (id, Comparison)
    inputs : list of dict
        Provenance rows: ``sample``, ``technique``, ``file``, ``sha256``, ``reader``,
        ``processor``, ``params``, ``status``.
    software : dict
        Package versions.
    info : dict
        Run facts shown in the provenance table (run id, times, executor...).
    questions : list of QuestionSpec or dict
        The study's questions (``{id, text, claims}``): the report opens with a conclusions
        paragraph per question generated from its claims (:func:`specproc.evidence.conclude`).
    """

    title: str = "specproc report"
    results: list = field(default_factory=list)
    failures: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    claims: list = field(default_factory=list)
    comparisons: list = field(default_factory=list)
    inputs: list[dict] = field(default_factory=list)
    software: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    questions: list = field(default_factory=list)

    @classmethod
    def from_results(cls, items: list, claims: list | None = None, title: str = "specproc report",
                     questions: list | None = None) -> "RunView":
        """A view of plain results; exceptions (or ``{"file", "error"}`` dicts) in ``items`` are failures."""
        from ..core.provenance import now_iso, software_versions
        from ..core.result import Result

        results, failures, inputs = [], [], []
        for x in items or []:
            if isinstance(x, Result):
                results.append(x)
                src = x.inputs[0] if x.inputs else {}
                inputs.append(dict(sample=x.sample, technique=x.technique, file=src.get("source"),
                                   sha256=src.get("sha256"), reader=src.get("reader"), processor=x.processor,
                                   params=x.params, status="ok"))
            elif isinstance(x, BaseException):
                d = x.to_dict() if hasattr(x, "to_dict") else {"file": None, "error": str(x)}
                failures.append(dict(d, type=type(x).__name__, error=getattr(x, "reason", str(x))))
            elif isinstance(x, dict) and "error" in x:
                failures.append(dict(x))
            else:
                raise TypeError(f"cannot report a {type(x).__name__}; give Results, errors or a RunView")
        return cls(title=title, results=results, failures=failures, claims=list(claims or []), inputs=inputs,
                   software=software_versions(), info={"generated": now_iso(), "results": len(results)},
                   questions=list(questions or []))
