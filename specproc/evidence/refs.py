"""Which quantity a claim or comparison names: :class:`QuantityRef` (technique, name, processor, meta).

Its own module so that :mod:`specproc.evidence.compare` and :mod:`specproc.evidence.claims` both
build on it without importing each other.
"""
from __future__ import annotations

import builtins
import warnings
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class QuantityRef(BaseModel):
    """Which quantity: technique, quantity name (``BH4.center_ppm``) or its structured key
    (``component: BH4, property: center_ppm``; ``component`` omitted for a quantity of the whole
    result), optional processor and metadata.

    A name is matched against the names results derive from their quantities' keys (never split);
    a structured key also has to equal the found quantity's key. Given both, they must agree.

    ``meta`` selects results by any key of ``Result.meta`` (values compared as text), e.g.
    ``{technique: nmr, meta: {nucleus: 11B}, name: BH4.center_ppm}`` or
    ``{technique: xrd, meta: {temperature_K: 300}, name: lattice.a_nm}``. The evidence engine
    knows no technique's words; the old top-level ``nucleus:`` key is accepted as a deprecated
    alias of ``meta.nucleus``.
    """

    model_config = ConfigDict(extra="forbid")
    technique: str
    name: str = ""
    component: str | None = None
    property: str | None = None
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

    @model_validator(mode="after")
    def _name_or_key(self):
        from ..core.result import quantity_name

        if self.property is not None:
            derived = quantity_name(self.component, self.property)
            if self.name and self.name != derived:
                raise ValueError(f"name {self.name!r} contradicts component/property (which name {derived!r})")
            self.name = derived
        elif self.component is not None:
            raise ValueError("a structured quantity needs 'property' (component alone names no quantity)")
        elif not self.name:
            raise ValueError("give the quantity's 'name' or its 'component' and 'property'")
        return self

    def find(self, result):
        """The quantity this reference names in ``result`` (a :class:`~specproc.core.result.Result`),
        or None: looked up by name; a structured reference also checks the quantity's key."""
        q = result.quantities.get(self.name)
        if q is not None and self.property is not None and getattr(q, "property", None) is not None and (
                q.component, q.property) != (self.component, self.property):
            return None
        return q

    @builtins.property  # the field ``property`` shadows the builtin in this class body
    def nucleus(self):
        """Deprecated: ``meta.get("nucleus")`` (kept for code written against the old field)."""
        return self.meta.get("nucleus")

    @builtins.property
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
