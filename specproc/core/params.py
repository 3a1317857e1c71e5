"""Validated processor parameters: one pydantic schema serves Python, CLI and YAML."""
from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from .errors import ParameterError


class ProcessorParams(BaseModel):
    """Base class of every processor's parameters (unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, arbitrary_types_allowed=True)


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
# YAML are validated by the same rule (and never twice).
def _finite(v: float) -> float:
    if not math.isfinite(v):
        raise ValueError("must be a finite number")
    return v


def _region(v: tuple[float, float]) -> tuple[float, float]:
    lo, hi = (float(a) for a in v)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError("region limits must be finite numbers")
    if lo == hi:
        raise ValueError("region limits must differ")
    return (lo, hi)


def _positive(v: float | None) -> float | None:
    if v is not None and not (math.isfinite(v) and v > 0):
        raise ValueError("must be a finite number > 0")
    return v


#: a finite number (NaN / inf refused)
Finite = Annotated[float, AfterValidator(_finite)]
#: an axis range ``(lo, hi)`` in the axis units, order free, finite, lo != hi
Region = Annotated[tuple[float, float], AfterValidator(_region)]
#: optional strictly positive finite number (rates, widths, radii)
PositiveOrNone = Annotated[float | None, AfterValidator(_positive)]
#: what :func:`specproc.fitting.models.parse_peaks` accepts (positions, {name: position}, peak dicts)
PeaksInput = list[Finite] | dict[str, Finite] | dict[str, dict[str, Any]] | list[dict[str, Any]] | None
