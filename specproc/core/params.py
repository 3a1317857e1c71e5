"""Validated processor parameters: one pydantic schema serves Python, CLI and YAML."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

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
