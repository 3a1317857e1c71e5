"""Evidence: comparisons of measured quantities between samples, and claims with verdicts.

A claim names a quantity (technique, quantity name such as ``BH4.center_ppm`` or its structured key
``component: BH4, property: center_ppm`` — names are matched, never split — and optionally
any metadata of the result it must come from, e.g. ``meta: {nucleus: 11B}``), how to compare it (the value for one sample, or the difference / ratio /
relative change against a reference sample, or the presence of a species) and a rule
(``> x``, ``< x``, ``between a b``, ``present``, ``absent``). :func:`evaluate_claims` turns
claims and :class:`~specproc.core.result.Result` objects into :class:`ClaimOutcome` objects
whose verdict is one of ``supported``, ``not supported``, ``inconclusive`` or ``no data``.

Uncertainty convention: a verdict is decided on the interval ``value ± k·σ`` with the
coverage factor ``k = 2`` (:data:`COVERAGE_FACTOR`, ≈95 % for a normal error). When that
interval straddles the threshold the verdict is ``inconclusive``.

Questions (:mod:`specproc.evidence.questions`): a study's questions name the claims they draw on
(for or against the answer); :func:`conclude` gives each a generated paragraph of the claims with
their values ± k·σ and verdicts — the conclusions at the top of the report.
"""
from .claims import (COVERAGE_FACTOR, VERDICTS, Check, ClaimOutcome, ClaimSpec, Comparison, Compare,
                     QuantityRef, Rule, evaluate_claim, evaluate_claims, parse_rule)
from .compare import compare, compare_selected, comparisons_table, pairwise, select_values
from .questions import Conclusion, QuestionSpec, conclude

__all__ = ["COVERAGE_FACTOR", "VERDICTS", "Check", "ClaimSpec", "ClaimOutcome", "Comparison", "Compare",
           "QuantityRef", "Rule", "parse_rule", "evaluate_claim", "evaluate_claims", "compare", "compare_selected",
           "pairwise", "comparisons_table", "select_values",
           "QuestionSpec", "Conclusion", "conclude"]
