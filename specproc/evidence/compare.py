"""Comparisons of one named quantity between samples, with propagated uncertainty.

The propagation is first-order (linear) for uncorrelated inputs — the textbook GUM formulas
for a difference and a ratio. They are three lines each, so they are written here rather than
adding a dependency (``uncertainties``) for them.
"""
from __future__ import annotations

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

    @property
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


def _matches(result, ref) -> bool:
    # generic selection: technique, processor and any Result.meta key (QuantityRef.matches)
    return _ref(ref).matches(result)


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
    hits = [r for r in cands if ref.name in r.quantities]
    if not hits:
        srcs = [s for s in (r.source for r in cands) if s]
        if missing == "absent":
            return Selected(0.0, 0.0, "", len(cands), srcs,
                            reason=f"{ref.name} not reported for {sample!r}: taken as absent")
        return Selected(None, None, sources=srcs,
                        reason=f"{ref.name} not reported by any {what} result for sample {sample!r}")
    vals, errs, unit, srcs = [], [], "", []
    for r in hits:
        q = r.quantities[ref.name]
        v = _num(q.value)
        if v is None:
            continue
        vals.append(v)
        errs.append(_num(q.stderr))
        unit = unit or (q.unit or "")
        if r.source:
            srcs.append(r.source)
    if not vals:
        return Selected(None, None, unit, 0, srcs, reason=f"{ref.name} is not a finite number for {sample!r}")
    if len(vals) == 1:
        return Selected(vals[0], errs[0], unit, 1, srcs)
    if all(e is not None and e > 0 for e in errs):
        w = [1 / e ** 2 for e in errs]
        mean = sum(wi * vi for wi, vi in zip(w, vals)) / sum(w)
        return Selected(mean, math.sqrt(1 / sum(w)), unit, len(vals), srcs)
    mean = sum(vals) / len(vals)
    sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1))
    return Selected(mean, sd / math.sqrt(len(vals)), unit, len(vals), srcs)


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


def compare(*args, **kwargs) -> Comparison:
    """The one comparison of specproc (every technique helper and every claim goes through it).

    Two call forms:

    * ``compare(a, b, quantity, op="difference")`` — two :class:`~specproc.core.result.Result`
      objects (``b`` is the reference): ``op(a, b)`` of ``a.quantities[quantity]``, see
      :func:`compare_results`;
    * ``compare(results, ref, sample, reference=None, op="value", missing="no data")`` — select the
      quantity ``ref`` (a :class:`~specproc.evidence.QuantityRef`) among many results by sample and
      metadata, see :func:`compare_selected` (what claims use).
    """
    if args and hasattr(args[0], "quantities"):
        return compare_results(*args, **kwargs)
    return compare_selected(*args, **kwargs)


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
            return Selected(None, None, q.unit, reason=f"{name} of {r.sample!r} is not a finite number")
        return Selected(v, _num(q.stderr), q.unit or "", 1, [r.source] if r.source else [])

    sa = sel(a, quantity)
    sb = sel(b, qb) if op not in ("value", "presence") else None
    out = Comparison(op, getattr(a, "technique", ""), quantity, getattr(a, "sample", ""),
                     getattr(b, "sample", None) if sb is not None else None, None, None, "",
                     sample_value=sa.value, sample_stderr=sa.stderr,
                     sources=list(dict.fromkeys(sa.sources + (sb.sources if sb else []))))
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
def split_name(name: str) -> tuple[str | None, str]:
    """``"BH4.center_ppm" -> ("BH4", "center_ppm")``; ``"phase(A.B).present" -> ("phase(A.B)", "present")``;
    ``"amorphous_fraction" -> (None, "amorphous_fraction")`` (the last dot outside parentheses)."""
    depth, cut = 0, -1
    for i, ch in enumerate(name):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "." and depth == 0:
            cut = i
    return (name[:cut], name[cut + 1:]) if cut > 0 else (None, name)


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
    """``value ± unc unit`` with the value rounded to the precision of the uncertainty (2 significant
    digits of ``unc``); ``value unit`` (4 significant digits) without an uncertainty."""
    if value is None or not math.isfinite(value):
        return "—"
    u = "" if not unit else f" {unit}"
    if unc is None or not math.isfinite(unc) or unc <= 0:
        return f"{value:.4g}{u}"
    mag = max(abs(value), unc)
    if mag >= 1e5 or mag < 1e-3:
        return f"{value:.4g} ± {unc:.2g}{u}"
    dec = max(0, 1 - int(math.floor(math.log10(unc))))
    return f"{value:.{dec}f} ± {unc:.{dec}f}{u}"


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
    comp, _ = split_name(ref.name)
    cands = [r for r in results if ref.matches(r) and str(r.sample) == str(sample)]
    if not cands:
        return ""
    parts = []
    for r in cands:
        q = r.quantities.get(ref.name)
        if q is None:
            parts.append(f"{ref.name} not reported by the {r.processor or ref.technique} result "
                         "(it reports only what it found)")
        sib = []
        if comp:
            for n, qq in r.quantities.items():
                if n == ref.name or not n.startswith(comp + "."):
                    continue
                prop = n[len(comp) + 1:]
                if "." in prop or prop == "present":
                    continue
                v, s = _num(qq.value), _num(qq.stderr)
                if v is None:
                    continue
                sib.append(f"{prop} {fmt_pm(v, None if s is None else k * s, qq.unit)}")
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
            q = r.quantities.get(ref.name)
            if q is not None and q.description:
                return q.description
    return ""
