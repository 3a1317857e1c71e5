"""lmfit adaptations (kept in one small module so ``import specproc.fitting.models`` stays light)."""
from __future__ import annotations

import lmfit


class ParametersWithoutUvars(lmfit.Parameters):
    """``lmfit.Parameters`` that skip the per-fit ``create_uvars`` propagation (see
    :func:`specproc.fitting.models.without_uvars`). Module-level so instances pickle."""

    def create_uvars(self, covar=None):
        return {}
