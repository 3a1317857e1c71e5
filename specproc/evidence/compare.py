"""Comparisons of one named quantity between samples, with propagated uncertainty.

The propagation is first-order (linear) for uncorrelated inputs — the textbook GUM formulas
for a difference and a ratio. They are three lines each, so they are written here rather than
adding a dependency (``uncertainties``) for them.
"""
from __future__ import annotations

import builtins
import math
from dataclasses import dataclass, field
from typing import Any

from ..core.numbers import finite_or_none

#: Comparison operations and the unit of their output (``None``: the quantity's unit).
OPS = {"value": None, "presence": "", "difference": None, "ratio": "", "relative_change": "",
       "percent_change": "%"}


@dataclass
class Selected:
    """Value of a quantity for one sample (combined over every matching result)."""

    value: float | None
    stderr: float | None
    unit: str = ""
    n: int = 0
    sources: list[str] = field(default_factory=list)
    reason: str = ""           # why value is None
    key: tuple | None = None   # (component, property) of the quantity found, when it carries its key


@dataclass
class Comparison:
    """Outcome of one comparison (all numbers plain floats; ``value`` None when there are no data)."""

    op: str
    technique: str
    quantity: str
    sample: str
    reference: str | None
    value: float | None
    stderr: float | None
    unit: str
    sample_value: float | None = None
    sample_stderr: float | None = None
    reference_value: float | None = None
    reference_stderr: float | None = None
    selector: dict = field(default_factory=dict)   # what else selected the results: {"meta": {...}, "processor"}
    sources: list[str] = field(default_factory=list)
    reason: str = ""
    component: str | None = None   # the quantity's structured key (Quantity.component / .property), when
    property: str | None = None    # known: prose and presence bases read these, never the name's text

    @builtins.property  # the field ``property`` shadows the builtin in this class body
    def has_data(self) -> bool:
        return self.value is not None

    def to_dict(self) -> dict:
        from ..core.result import jsonable

        return jsonable(dict(self.__dict__))


def _num(v: Any) -> float | None:
    return finite_or_none(v)


def _ref(ref):
    """A :class:`~specproc.evidence.QuantityRef` (dicts are validated into one)."""
    from .refs import QuantityRef

    return ref if isinstance(ref, QuantityRef) else QuantityRef.model_validate(ref)


def select_values(results: list, ref, sample: str, missing: str = "no data") -> Selected:
    """Value ± standard error of ``ref`` (a :class:`~specproc.evidence.QuantityRef`) for ``sample``.

    Several matching results (repeat measurements) are combined by the inverse-variance
    weighted mean when every one has a positive standard error, else by the plain mean with
    the standard error of the mean (``None`` for a single value without error).

    Parameters
    ----------
    missing : {"no data", "absent"}
        What it means when the sample has results for the technique but none reports the
        quantity: no data (default), or absent (value 0 — for presence quantities that a
        processor only reports for species it found).
    """
    ref = _ref(ref)
    cands = [r for r in results if ref.matches(r) and str(r.sample) == str(sample)]
    what = ref.describe()
    if not cands:
        return Selected(None, None, reason=f"no {what} results for sample {sample!r}")
    hits = [r for r in cands if ref.find(r) is not None]
    if not hits:
        srcs = [s for s in (r.source for r in cands) if s]
        if missing == "absent":
            return Selected(0.0, 0.0, "", len(cands), srcs,
                            reason=f"{ref.name} not reported for {sample!r}: taken as absent")
        return Selected(None, None, sources=srcs,
                        reason=f"{ref.name} not reported by any {what} result for sample {sample!r}")
    vals, errs, unit, srcs, key = [], [], "", [], None
    for r in hits:
        q = ref.find(r)
        key = key or _key(q)
        v = _num(q.value)
        if v is None:
            continue
        vals.append(v)
        errs.append(_num(q.stderr))
        unit = unit or (q.unit or "")
        if r.source:
            srcs.append(r.source)
    if not vals:
        return Selected(None, None, unit, 0, srcs, reason=f"{ref.name} is not a finite number for {sample!r}",
                        key=key)
    if len(vals) == 1:
        return Selected(vals[0], errs[0], unit, 1, srcs, key=key)
    if all(e is not None and e > 0 for e in errs):
        w = [1 / e ** 2 for e in errs]
        mean = sum(wi * vi for wi, vi in zip(w, vals)) / sum(w)
        return Selected(mean, math.sqrt(1 / sum(w)), unit, len(vals), srcs, key=key)
    mean = sum(vals) / len(vals)
    sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1))
    return Selected(mean, sd / math.sqrt(len(vals)), unit, len(vals), srcs, key=key)


def _key(q) -> tuple | None:
    """``(component, property)`` of a quantity that carries its key, else None."""
    prop = getattr(q, "property", None)
    return None if prop is None else (q.component, prop)


def quantity_key(results: list, ref) -> tuple | None:
    """The structured key of the quantity ``ref`` names: its own (a structured reference), else
    the key of that quantity in any result of the technique (the name is looked up, never split)."""
    ref = _ref(ref)
    if ref.property is not None:
        return ref.component, ref.property
    for r in results:
        if getattr(r, "technique", None) == ref.technique:
            k = _key(r.quantities.get(ref.name))
            if k is not None:
                return k
    return None


def _combine(op: str, a: Selected, b: Selected | None) -> tuple[float | None, float | None]:
    """Value and first-order standard error of ``op(a, b)`` (uncorrelated inputs)."""
    sa = a.stderr
    if op in ("value", "presence"):
        return a.value, sa
    assert b is not None
    sb = b.stderr
    both = sa is not None and sb is not None
    if op == "difference":
        return a.value - b.value, (math.hypot(sa, sb) if both else None)
    if b.value == 0:
        return None, None
    q = a.value / b.value
    if both:
        rel = math.hypot(sa / a.value if a.value else 0.0, sb / b.value)
        # for a == 0 the relative form is undefined; use d(a/b)/da = 1/b
        sq = abs(q) * rel if a.value else math.hypot(sa / b.value, 0.0)
    else:
        sq = None
    if op == "ratio":
        return q, sq
    if op == "relative_change":
        return q - 1.0, sq
    if op == "percent_change":
        return 100.0 * (q - 1.0), (None if sq is None else 100.0 * sq)
    raise ValueError(f"unknown comparison op {op!r}")


_UNSET = object()


def compare(reference, sample=None, *legacy, quantity: str | None = None, op=_UNSET,
            quantity_reference: str | None = None, **legacy_kw) -> Comparison:
    """The one comparison of specproc: ``op`` of one quantity between two results, reference first.

    Every technique helper (``sp.nmr.compare``, ``sp.ftir.compare``, ``sp.eels.compare``,
    ``sp.afm.compare``), the report sections and the claims go through it.

    Parameters
    ----------
    reference, sample : Result
        The reference result and the sample's (one argument order everywhere: reference first).
    quantity : str, keyword-only
        Quantity name in ``sample.quantities`` (``"BH4.center_ppm"``, ``"BH_stretch.center_cm1"``).
        Keyword-only, so that a call written for the earlier sample-first form cannot silently
        swap the two results.
    op : {"difference", "ratio", "relative_change", "percent_change", "value"}
        ``difference`` = sample − reference (unit of the quantity), ``ratio`` = sample / reference,
        ``relative_change`` = ratio − 1, ``percent_change`` = 100 × relative change; default difference.
    quantity_reference : str, optional
        The name in ``reference`` when it differs (a component named differently there).

    Returns
    -------
    Comparison
        ``value`` / ``stderr`` (first-order, the two results independent); ``value`` None with a
        ``reason`` when a side lacks the quantity or it is not finite — never raises for missing data.

    Notes
    -----
    Deprecated forms, accepted for one release with a ``DeprecationWarning``:
    ``compare(sample, reference, quantity, op=..., quantity_b=...)`` (the earlier sample-first
    positional form, recognised by its third positional argument) and
    ``compare(results, ref, sample, reference, op, missing)`` (use :func:`compare_selected`).
    """
    import warnings

    if not hasattr(reference, "quantities"):   # a list of results: the selection form
        warnings.warn("compare(results, ref, sample, ...) is deprecated: use "
                      "specproc.evidence.compare_selected(results, ref, sample, reference, op)",
                      DeprecationWarning, stacklevel=2)
        kw = dict(legacy_kw)
        if op is not _UNSET:
            kw["op"] = op
        return compare_selected(reference, sample, *legacy, **kw)
    if legacy or legacy_kw:                      # compare(sample, reference, quantity[, op], quantity_b=...)
        warnings.warn("compare(sample, reference, quantity) is deprecated: use "
                      "compare(reference, sample, quantity=...) (reference first)", DeprecationWarning, stacklevel=2)
        unknown = set(legacy_kw) - {"quantity_b"}
        if unknown:
            raise TypeError(f"compare() got unexpected keyword arguments {sorted(unknown)}")
        q = legacy[0] if legacy else quantity
        if len(legacy) > 1:
            op = legacy[1]
        # the earlier form: the first argument was the sample, the second the reference
        return compare_results(reference, sample, q, op="difference" if op is _UNSET else op,
                               quantity_b=legacy_kw.get("quantity_b") or quantity_reference)
    if quantity is None:
        raise TypeError("compare(reference, sample, quantity=...): the quantity is missing")
    return compare_results(sample, reference, quantity, op="difference" if op is _UNSET else op,
                           quantity_b=quantity_reference)


def pairwise(results: list, quantity: str, op: str = "difference", reference: str | None = None) -> list:
    """Every other sample against a reference sample, for one quantity (what report sections tabulate).

    Parameters
    ----------
    results : list of Result
    quantity : str
    op : str
        As in :func:`compare`.
    reference : str, optional
        The reference sample; default the first sample (in ``results`` order) reporting the quantity.
        The first result of each sample reporting the quantity is used.

    Returns
    -------
    list of Comparison
        One per other sample, through :func:`compare` (reference first).
    """
    first: dict = {}
    for r in results:
        if quantity in r.quantities:
            first.setdefault(r.sample, r)
    if len(first) < 2:
        return []
    ref = reference if reference in first else next(iter(first))
    return [compare(first[ref], r, quantity=quantity, op=op) for s, r in first.items() if s != ref]


def comparisons_table(comparisons: list):
    """A tidy table of comparisons: ``quantity, sample, reference, op, value, stderr, unit, sigma``
    (value / stderr), ``sample_value``, ``sample_stderr``, ``reference_value``, ``reference_stderr``."""
    import pandas as pd

    rows = [{"quantity": c.quantity, "sample": c.sample, "reference": c.reference, "op": c.op,
             "value": c.value, "stderr": c.stderr, "unit": c.unit,
             "sigma": (c.value / c.stderr) if c.value is not None and c.stderr else None,
             "sample_value": c.sample_value, "sample_stderr": c.sample_stderr,
             "reference_value": c.reference_value, "reference_stderr": c.reference_stderr}
            for c in comparisons]
    return pd.DataFrame(rows)


def compare_results(a, b, quantity: str, op: str = "difference", quantity_b: str | None = None) -> Comparison:
    """``op`` of one quantity between result ``a`` (sample) and result ``b`` (reference).

    Parameters
    ----------
    a, b : Result
    quantity : str
        Quantity name in ``a.quantities`` (e.g. ``"BH4.center_ppm"``, ``"BH_stretch.center_cm1"``).
    op : {"difference", "ratio", "relative_change", "percent_change", "value"}
        ``difference`` = a − b (unit of the quantity), ``ratio`` = a / b, ...
    quantity_b : str, optional
        Name in ``b`` when it differs (a component named differently in the reference).

    Returns
    -------
    Comparison
        ``value`` / ``stderr`` (first-order, the two results independent); ``value`` None with a
        ``reason`` when a side lacks the quantity or it is not finite.
    """
    if op not in OPS:
        raise ValueError(f"unknown comparison op {op!r}; one of {sorted(OPS)}")
    qb = quantity_b or quantity

    def sel(r, name):
        q = r.quantities.get(name)
        if q is None:
            names = sorted(r.quantities)
            return Selected(None, None, reason=f"{r.sample or r.source!r} has no quantity {name!r} "
                                               f"(has: {', '.join(names[:12])}{'...' if len(names) > 12 else ''})")
        v = _num(q.value)
        if v is None:
            return Selected(None, None, q.unit, reason=f"{name} of {r.sample!r} is not a finite number", key=_key(q))
        return Selected(v, _num(q.stderr), q.unit or "", 1, [r.source] if r.source else [], key=_key(q))

    sa = sel(a, quantity)
    sb = sel(b, qb) if op not in ("value", "presence") else None
    out = Comparison(op, getattr(a, "technique", ""), quantity, getattr(a, "sample", ""),
                     getattr(b, "sample", None) if sb is not None else None, None, None, "",
                     sample_value=sa.value, sample_stderr=sa.stderr,
                     sources=list(dict.fromkeys(sa.sources + (sb.sources if sb else []))))
    out.component, out.property = sa.key or (None, None)
    if sb is not None:
        out.reference_value, out.reference_stderr = sb.value, sb.stderr
    out.unit = (sa.unit or (sb.unit if sb else "")) if OPS[op] is None else OPS[op]
    if sa.value is None or (sb is not None and sb.value is None):
        out.reason = "; ".join(s.reason for s in (sa, sb) if s is not None and s.reason)
        return out
    out.value, out.stderr = _combine(op, sa, sb)
    if out.value is None:
        out.reason = f"reference has {qb} = 0: ratio undefined"
    return out


def compare_selected(results: list, ref, sample: str, reference: str | None = None, op: str = "value",
                     missing: str = "no data") -> Comparison:
    """Compare quantity ``ref`` for ``sample`` (against ``reference`` for two-sample ops).

    Parameters
    ----------
    results : list of Result
    ref : QuantityRef
    op : {"value", "presence", "difference", "ratio", "relative_change", "percent_change"}
        ``difference`` = sample − reference (quantity unit); ``ratio`` = sample / reference;
        ``relative_change`` = sample / reference − 1; ``percent_change`` = 100 × relative change.

    Returns
    -------
    Comparison
        ``value`` is None (with ``reason``) when either side has no data — never raises for
        missing data.
    """
    if op not in OPS:
        raise ValueError(f"unknown comparison op {op!r}; one of {sorted(OPS)}")
    ref = _ref(ref)
    a = select_values(results, ref, sample, missing)
    b = select_values(results, ref, reference, missing) if reference is not None and op not in (
        "value", "presence") else None
    out = Comparison(op, ref.technique, ref.name, sample, reference, None, None, "",
                     sample_value=a.value, sample_stderr=a.stderr, selector=ref.selector,
                     sources=list(dict.fromkeys(a.sources + (b.sources if b else []))))
    out.component, out.property = a.key or (b.key if b else None) or quantity_key(results, ref) or (None, None)
    if b is not None:
        out.reference_value, out.reference_stderr = b.value, b.stderr
    unit = a.unit or (b.unit if b else "")
    out.unit = unit if OPS[op] is None else OPS[op]
    if a.value is None or (b is not None and b.value is None):
        out.reason = "; ".join(s.reason for s in (a, b) if s is not None and s.reason)
        return out
    notes = [s.reason for s in (a, b) if s is not None and s.reason]
    out.value, out.stderr = _combine(op, a, b)
    if out.value is None:
        notes.append(f"reference {reference!r} has {ref.name} = 0: ratio undefined")
    out.reason = "; ".join(notes)
    return out


# --------------------------------------------------------------------------- naming and what a decision rests on
def component_label(component: str | None) -> str:
    """A component name for prose: ``"phase(LiBH4)" -> "phase LiBH4"``, ``"species(Li metal)" ->
    "species Li metal"``, anything else unchanged. Generic: ``kind(argument)`` reads ``kind argument``."""
    if not component:
        return ""
    i = component.find("(")
    if i > 0 and component.endswith(")") and "." not in component[:i]:
        return f"{component[:i].replace('_', ' ')} {component[i + 1:-1]}"
    return component


def fmt_pm(value: float | None, unc: float | None, unit: str = "") -> str:
    """``value ± unc unit`` by the one display rule (:func:`specproc.core.numbers.format_value`: the value
    rounded to the uncertainty's second significant digit, SI units with their natural prefix);
    ``"—"`` without a value."""
    from ..core.numbers import finite_or_none, format_value

    if finite_or_none(value) is None:
        return "—"
    return format_value(value, unc, unit)


def _scalar_text(v) -> str | None:
    if isinstance(v, bool) or v is None:
        return None if v is None else str(v)
    if isinstance(v, (int, float)):
        return f"{v:.4g}" if isinstance(v, float) else str(v)
    if isinstance(v, str) and len(v) <= 40:
        return v
    return None


def presence_basis(results: list, ref, sample: str, k: float = 2.0) -> str:
    """What a presence decision of ``ref`` (``kind(X).present``) for ``sample`` rests on, as text.

    Generic (no technique's words): the other quantities the matching results report for the same
    component (``phase(X).score``, ``species(X).max_atomic_percent``... with value ± k·σ), the
    presence quantity's own description (the processor's rule, e.g. ``max at % >= 1.0``) and the
    result's limits and thresholds in ``meta`` (keys containing ``limit`` or ``threshold``). When
    no result reports the quantity: that the processor reports only what it found.
    """
    ref = _ref(ref)
    comp = (quantity_key(results, ref) or (None, None))[0]
    cands = [r for r in results if ref.matches(r) and str(r.sample) == str(sample)]
    if not cands:
        return ""
    parts = []
    for r in cands:
        q = ref.find(r)
        if q is None:
            parts.append(f"{ref.name} not reported by the {r.processor or ref.technique} result "
                         "(it reports only what it found)")
        sib = []
        if comp:  # the other quantities of the same component, by key
            for n, qq in r.quantities.items():
                if n == ref.name or getattr(qq, "component", None) != comp or qq.property == "present":
                    continue
                v, s = _num(qq.value), _num(qq.stderr)
                if v is None:
                    continue
                sib.append(f"{qq.property} {fmt_pm(v, None if s is None else k * s, qq.unit)}")
        if sib:
            parts.append(", ".join(sib[:6]) + (f" (± {k:g}σ)" if any("±" in x for x in sib[:6]) else ""))
        limits = []
        for key, v in (getattr(r, "meta", None) or {}).items():
            if ("limit" in key.lower() or "threshold" in key.lower()) and _scalar_text(v) is not None:
                limits.append(f"{key} = {_scalar_text(v)}")
        if limits:
            parts.append(", ".join(limits[:3]))
        if q is not None and q.description:
            parts.append(f"processor's rule: {q.description}")
    return "; ".join(dict.fromkeys(p for p in parts if p))


def quantity_description(results: list, ref, sample: str) -> str:
    """The description a matching result gives the quantity ``ref`` for ``sample`` (what it is, how
    it is decided), or ``""``."""
    ref = _ref(ref)
    for r in results:
        if ref.matches(r) and str(r.sample) == str(sample):
            q = ref.find(r)
            if q is not None and q.description:
                return q.description
    return ""
