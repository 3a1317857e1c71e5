"""Small numeric helpers every floor uses (one copy of each)."""
from __future__ import annotations

import math
from typing import Any

__all__ = ["finite_or_none"]


def finite_or_none(v: Any) -> float | None:
    """``float(v)`` when it is a finite number, else None (None, NaN, inf, text, arrays of size != 1)."""
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None
