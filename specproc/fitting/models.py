"""Model specs: describe a peak model once, fit it with lmfit or the batch engine.

A :class:`ModelSpec` is plain, validated data (so it can come from YAML, the CLI or Python).
:meth:`ModelSpec.to_lmfit` compiles it to an lmfit ``CompositeModel`` and ``Parameters``;
the batch engine (:mod:`specproc.fitting.batch`) compiles the same spec (or an lmfit model of
known lineshapes) to its vectorised form. Parameter names follow lmfit with a per-peak
prefix: peak ``BH4`` has ``BH4_center``, ``BH4_sigma``, ``BH4_amplitude``...

Constraints:
- bounds per parameter (``bounds={"center": (lo, hi)}``),
- fixed parameters (``fixed=["fraction"]``),
- links: ``ModelSpec.links = [Link(param="sigma", peaks=["a", "b"])]`` shares a parameter,
- expressions: ``ModelSpec.exprs = {"ssb1.center": "{BH4.center} + 7.79"}``.
"""
from __future__ import annotations

import re
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..core.errors import ParameterError
from .lineshapes import SHAPES, sigma_from_fwhm

Shape = Literal["gaussian", "lorentzian", "pseudo-voigt", "voigt", "pearson7"]
Baseline = Literal["none", "constant", "linear", "quadratic"]
_IDENT = re.compile(r"[^0-9A-Za-z_]")


def unfreeze_centers(params, rel=1e-6):
    """Move bounded ``*_center`` starts off the exact midpoint of their bounds (in place).

    lmfit's ``leastsq`` maps a bounded parameter to u = arcsin(2 (v - min)/(max - min) - 1) and
    MINPACK's finite-difference step is sqrt(eps)*|u| (sqrt(eps) only when u == 0 exactly). A start
    at the midpoint of symmetric bounds, up to rounding (a grid value), gives |u| ~ 1e-13: the
    step underflows, the Jacobian column is zero and the centre stays frozen at its start with no
    error bar. Centre bounds are a search guard, not physics, so the upper one is widened by
    half-range/pi, which puts u near -0.14. Every lmfit fit in specproc goes through this
    (:meth:`ModelSpec.to_lmfit`, the batch engine's lmfit fallback, XRD's doublet fits).
    """
    for name, par in params.items():
        if not name.endswith("center") or not par.vary or par.expr:
            continue
        if np.isfinite(par.min) and np.isfinite(par.max) and par.max > par.min:
            half = 0.5 * (par.max - par.min)
            u = par.setup_bounds()
            if abs(u) < rel:
                par.set(max=par.max + half / np.pi)
    return params


def without_uvars(params):
    """A copy of lmfit ``Parameters`` whose fits skip lmfit's ``create_uvars`` step.

    After every fit lmfit propagates the covariance to each *constrained* parameter with the
    `uncertainties` package: O(n_expr x n_var x n_par) expression evaluations, minutes for a
    model with dozens of tied components (NMR spinning sidebands). Callers that propagate
    derived quantities themselves from ``ModelResult.covar`` use this copy; the varied
    parameters still get their ``stderr``; constrained ones are not propagated (``stderr`` 0 or None).
    """
    from ._lmfit_compat import ParametersWithoutUvars

    out = ParametersWithoutUvars()
    for name, par in params.items():
        out.add(name, value=par.value, vary=par.vary, min=par.min, max=par.max, expr=par.expr,
                brute_step=par.brute_step)
    return out


def prefix_of(name: str) -> str:
    """lmfit prefix of a peak name (valid Python identifier, never starting with a digit)."""
    p = _IDENT.sub("_", name)
    if not p or p[0].isdigit():
        p = "p" + p
    return p + "_"


class Peak(BaseModel):
    """One peak: shape, initial values, bounds and fixed parameters."""

    model_config = ConfigDict(extra="forbid")
    name: str
    shape: Shape = "pseudo-voigt"
    center: float
    fwhm: float | None = Field(None, gt=0, description="initial FWHM (axis units)")
    amplitude: float | None = Field(None, description="initial area")
    fraction: float = Field(0.5, ge=0, le=1)
    expon: float = Field(1.5, gt=0.5)
    bounds: dict[str, tuple[float | None, float | None]] = Field(default_factory=dict)
    fixed: list[str] = Field(default_factory=list)


class Link(BaseModel):
    """Share ``param`` between ``peaks`` (all take the first peak's value)."""

    model_config = ConfigDict(extra="forbid")
    param: str
    peaks: list[str] = Field(min_length=2)


class ModelSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    peaks: list[Peak] = Field(min_length=1)
    baseline: Baseline = "none"
    links: list[Link] = Field(default_factory=list)
    exprs: dict[str, str] = Field(default_factory=dict)

    @field_validator("peaks")
    @classmethod
    def _unique(cls, v):
        names = [p.name for p in v]
        if len(set(names)) != len(names):
            raise ValueError(f"peak names must be unique: {names}")
        return v

    # -------------------------------------------------------------- names
    def pname(self, peak: str, param: str) -> str:
        return prefix_of(peak) + param

    def _expr(self, text: str) -> str:
        names = {p.name for p in self.peaks}

        def sub(m):
            peak, param = m.group(1), m.group(2)
            if peak not in names:
                raise ParameterError(f"expression {text!r} refers to unknown peak {peak!r}")
            return self.pname(peak, param)

        return re.sub(r"\{([^}.]+)\.(\w+)\}", sub, text)

    # -------------------------------------------------------------- lmfit
    def to_lmfit(self, x=None, y=None):
        """Compile to ``(lmfit.Model, lmfit.Parameters)`` with initial values from x, y."""
        import lmfit

        models = []
        for p in self.peaks:
            cls = getattr(lmfit.models, SHAPES[p.shape][0])
            models.append(cls(prefix=prefix_of(p.name)))
        if self.baseline != "none":
            deg = {"constant": 0, "linear": 1, "quadratic": 2}[self.baseline]
            models.append(lmfit.models.PolynomialModel(degree=deg, prefix="bl_"))
        model = models[0]
        for m in models[1:]:
            model = model + m
        params = model.make_params()
        span = (float(np.ptp(x)) if x is not None and len(x) > 1 else 1.0) or 1.0
        dx = float(np.median(np.abs(np.diff(x)))) if x is not None and len(x) > 1 else span / 1000
        for p in self.peaks:
            pre = prefix_of(p.name)
            width = p.fwhm or span / 50
            sig = float(sigma_from_fwhm(p.shape, width, expon=p.expon))
            height = None
            if x is not None and y is not None:
                i = int(np.argmin(np.abs(np.asarray(x) - p.center)))
                height = max(float(np.asarray(y)[i]), 0.0)
            amp = p.amplitude if p.amplitude is not None else (height or 1.0) * width * 1.064
            params[pre + "center"].set(value=p.center)
            params[pre + "sigma"].set(value=sig, min=max(dx / 4, 1e-12), max=span)
            params[pre + "amplitude"].set(value=max(amp, 1e-12), min=0)
            if p.shape == "pseudo-voigt":
                params[pre + "fraction"].set(value=p.fraction, min=0, max=1)
            if p.shape == "voigt":
                params[pre + "gamma"].set(value=sig, vary=True, min=0, max=span, expr="")
            if p.shape == "pearson7":
                params[pre + "expon"].set(value=p.expon, min=0.51, max=100)
            for par, (lo, hi) in p.bounds.items():
                if pre + par not in params:
                    raise ParameterError(f"peak {p.name!r} ({p.shape}) has no parameter {par!r}")
                params[pre + par].set(min=-np.inf if lo is None else lo, max=np.inf if hi is None else hi)
                v = params[pre + par].value
                if not (params[pre + par].min <= v <= params[pre + par].max):
                    params[pre + par].set(value=float(np.clip(v, params[pre + par].min, params[pre + par].max)))
            for par in p.fixed:
                if pre + par not in params:
                    raise ParameterError(f"peak {p.name!r} ({p.shape}) has no parameter {par!r} to fix")
                params[pre + par].set(vary=False)
        if self.baseline != "none":
            for k in params:
                if k.startswith("bl_"):
                    params[k].set(value=0.0)
            if y is not None:
                params["bl_c0"].set(value=float(np.percentile(y, 5)))
        for link in self.links:
            first = self.pname(link.peaks[0], link.param)
            if first not in params:
                raise ParameterError(f"link: no parameter {link.param!r} on peak {link.peaks[0]!r}")
            for other in link.peaks[1:]:
                name = self.pname(other, link.param)
                if name not in params:
                    raise ParameterError(f"link: no parameter {link.param!r} on peak {other!r}")
                params[name].set(expr=first)
        for target, expr in self.exprs.items():
            peak, _, param = target.partition(".")
            name = self.pname(peak, param)
            if name not in params:
                raise ParameterError(f"expression target {target!r} is not a model parameter")
            params[name].set(expr=self._expr(expr))
        return model, unfreeze_centers(params)
