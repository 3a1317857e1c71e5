"""Validated processor parameters: one pydantic schema serves Python, CLI and YAML."""
from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError, model_validator

from .errors import ParameterError


def accept_renamed(values: Mapping[str, Any], renamed: Mapping[str, str], owner: str = "parameters",
                   stacklevel: int = 3) -> dict[str, Any]:
    """``values`` with old parameter names replaced by their new ones (one vocabulary,
    docs/architecture.md), each with a ``DeprecationWarning``; giving both names is an error.

    The one place old names are accepted, for one release after a rename: Python keywords, YAML
    keys and CLI values all reach a ``Params`` through :class:`ProcessorParams`, which calls this.
    """
    out = dict(values)
    for old, new in renamed.items():
        if old not in out:
            continue
        if new in out:
            raise ValueError(f"{old!r} is the old name of {new!r}: give only {new!r}")
        warnings.warn(f"{owner}: {old!r} is deprecated and will be removed in the next release; use {new!r}",
                      DeprecationWarning, stacklevel=stacklevel)
        out[new] = out.pop(old)
    return out


class ProcessorParams(BaseModel):
    """Base class of every processor's parameters (unknown keys are errors).

    ``renamed = {"old_name": "new_name"}`` on a subclass accepts the old names for one release
    (:func:`accept_renamed`: a ``DeprecationWarning``, the value under the new name) and keeps
    ``params.old_name`` readable for code not yet switched.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, arbitrary_types_allowed=True)

    #: old field name -> new field name, accepted for one release with a DeprecationWarning
    renamed: ClassVar[dict[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _accept_renamed(cls, data: Any) -> Any:
        if cls.renamed and isinstance(data, Mapping):
            return accept_renamed(data, cls.renamed, cls.__name__, stacklevel=6)
        return data

    def __getattr__(self, name: str) -> Any:
        new = type(self).renamed.get(name)
        if new is not None:       # the old attribute name reads the renamed field
            return getattr(self, new)
        return super().__getattr__(name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in type(self).renamed:
            name = next(iter(accept_renamed({name: value}, type(self).renamed, type(self).__name__)))
        super().__setattr__(name, value)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False):
        """pydantic's ``model_copy``, with old names in ``update`` going to their renamed fields
        (``update`` is not validated by pydantic: an old key would otherwise become a stray attribute)."""
        if update and type(self).renamed:
            update = accept_renamed(update, type(self).renamed, type(self).__name__)
        return super().model_copy(update=update, deep=deep)


def validate_params(schema: type[ProcessorParams], values: dict[str, Any] | ProcessorParams | None,
                    where: str | None = None) -> ProcessorParams:
    """Validate ``values`` against ``schema``; raise :class:`ParameterError` with every problem."""
    if isinstance(values, schema):
        return values
    try:
        return schema.model_validate(dict(values or {}))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors())
        raise ParameterError(f"invalid parameters for {schema.__name__}: {problems}", where) from None


# ------------------------------------------------------------------ shared field types
# A parameter that means the same thing in every technique has one type here, so Python, CLI and
# YAML are validated by the same rule (and never twice); the check_* validators are public so the
# command-line generator (specproc.cliargs) recognises the types.
def check_finite(v: float) -> float:
    if not math.isfinite(v):
        raise ValueError("must be a finite number")
    return v


def check_region(v: tuple[float, float]) -> tuple[float, float]:
    lo, hi = (float(a) for a in v)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError("region limits must be finite numbers")
    if lo == hi:
        raise ValueError("region limits must differ")
    return (lo, hi)


def check_positive(v: float | None) -> float | None:
    if v is not None and not (math.isfinite(v) and v > 0):
        raise ValueError("must be a finite number > 0")
    return v


#: a finite number (NaN / inf refused)
Finite = Annotated[float, AfterValidator(check_finite)]
#: an axis range ``(lo, hi)`` in the axis units, order free, finite, lo != hi
Region = Annotated[tuple[float, float], AfterValidator(check_region)]
#: optional strictly positive finite number (rates, widths, radii)
PositiveOrNone = Annotated[float | None, AfterValidator(check_positive)]
#: what :func:`specproc.fitting.models.parse_peaks` accepts (positions, {name: position}, peak dicts)
PeaksInput = list[Finite] | dict[str, Finite] | dict[str, dict[str, Any]] | list[dict[str, Any]] | None
