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
- expressions: ``ModelSpec.exprs = {"ssb1.center": "{BH4.center} + 7.79"}``,
- satellites: ``Peak(..., satellites=[Satellite(offset=0.6, ratio=0.5)])`` — tied copies of a peak
  (same shape and width parameters, position ``center + offset`` or an expression of ``{center}``,
  intensity ``ratio x`` the peak's or free): NMR spinning sidebands, XRD Kα2, XPS spin-orbit doublets.

:func:`parse_peaks` is the one parser of the user's ``peaks`` / ``bands`` argument; the fit of one
spectrum is :func:`specproc.fitting.fit.fit_spec`.
"""
from __future__ import annotations

import re
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..core.errors import ParameterError
from .lineshapes import PEAK_SHAPES, REGISTRY, sigma_from_fwhm

#: pydantic type of a lineshape name, derived from the registry
Shape = Literal[PEAK_SHAPES]  # type: ignore[valid-type]
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
    # every parameter first, expressions second: an expression may name a parameter added later
    for name, par in params.items():
        out.add(name, value=par.value, vary=par.vary, min=par.min, max=par.max, brute_step=par.brute_step)
    for name, par in params.items():
        if par.expr:
            out[name].set(expr=par.expr)
    return out


def prefix_of(name: str) -> str:
    """lmfit prefix of a peak name (valid Python identifier, never starting with a digit)."""
    p = _IDENT.sub("_", name)
    if not p or p[0].isdigit():
        p = "p" + p
    return p + "_"


class Satellite(BaseModel):
    """A tied copy of its peak: same shape and width parameters, position and intensity tied.

    Exactly one of ``offset`` (axis units, ``center + offset``) and ``position`` (an lmfit
    expression in ``{center}``, e.g. XRD Kα2 ``2*arcsin(r*sin({center}*pi/360))*180/pi``) gives
    the position. ``ratio`` is the intensity relative to the peak (area for area-normalised
    shapes, height for height-normalised ones — the same ratio since the width is shared);
    ``None`` gives the satellite its own free intensity >= 0 (spinning sidebands).
    ``offset_bounds`` makes the offset a fitted parameter within these bounds (a spin-orbit
    splitting known to a few 0.1 eV); ``ratio_bounds`` does the same for the ratio.
    """

    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    offset: float | None = None
    position: str | None = None
    ratio: float | None = Field(None, ge=0)
    offset_bounds: tuple[float, float] | None = None
    ratio_bounds: tuple[float, float] | None = None

    @field_validator("position")
    @classmethod
    def _has_center(cls, v):
        if v is not None and "{center}" not in v:
            raise ValueError("a satellite position expression must use {center}")
        return v

    def model_post_init(self, _ctx) -> None:
        if (self.offset is None) == (self.position is None):
            raise ValueError("a satellite needs exactly one of 'offset' and 'position'")
        if self.ratio_bounds is not None and self.ratio is None:
            raise ValueError("ratio_bounds needs a starting 'ratio'")
        if self.offset_bounds is not None and self.offset is None:
            raise ValueError("offset_bounds needs an 'offset'")


class Peak(BaseModel):
    """One peak: shape, initial values, bounds, fixed parameters and satellites.

    ``init`` sets the start of any other parameter of the shape (``{"mixing": 0.3}``,
    ``{"gamma": 0.1}``); ``fraction`` / ``expon`` are the pseudo-Voigt / Pearson VII starts.
    ``given`` is the position the user gave (:func:`parse_peaks` sets it; None for automatic
    starts): :func:`fit_spec` warns when the fitted centre ends more than ``max(FWHM,
    given_window)`` from it or past a neighbour's start, and reports the peak not detected when
    the data near it hold no signal. ``given_window``: how far the user allowed the centre to
    move (a technique's ``center_window``).
    """

    model_config = ConfigDict(extra="forbid")
    name: str
    shape: Shape = "pseudo-voigt"
    center: float
    fwhm: float | None = Field(None, gt=0, description="initial FWHM (axis units)")
    amplitude: float | None = Field(None, description="initial intensity (area, or height for GL shapes)")
    fraction: float = Field(0.5, ge=0, le=1)
    expon: float = Field(1.5, gt=0.5)
    init: dict[str, float] = Field(default_factory=dict)
    bounds: dict[str, tuple[float | None, float | None]] = Field(default_factory=dict)
    fixed: list[str] = Field(default_factory=list)
    satellites: list[Satellite] = Field(default_factory=list)
    given: float | None = Field(None, description="the start the user gave (set by parse_peaks)")
    given_window: float | None = Field(None, gt=0, description="how far the user allowed the centre to move")

    @field_validator("center", "fwhm", "amplitude", "given")
    @classmethod
    def _finite(cls, v):
        if v is not None and not np.isfinite(v):
            raise ValueError("must be a finite number")
        return v

    def satellite_names(self) -> list[str]:
        return [s.name and f"{self.name} {s.name}" or f"{self.name} sat{i}"
                for i, s in enumerate(self.satellites, 1)]


#: link names every lineshape understands, mapped to its own parameters (:func:`_link_pair`)
LINK_NAMES = ("center", "fwhm", "area", "amplitude", "height")
#: FWHM / sigma of the shapes whose FWHM is a multiple of sigma (lineshapes.fwhm; doniach: its registry FWHM)
_FWHM_PER_SIGMA = {"gaussian": float(2 * np.sqrt(2 * np.log(2))), "lorentzian": 2.0, "pseudo-voigt": 2.0,
                   "doniach": 2.0}


def _fwhm_expr(shape: str, pre: str) -> str:
    """lmfit expression of the FWHM of a registry peak with prefix ``pre`` (lineshapes.fwhm_of)."""
    if REGISTRY[shape].intensity == "height":
        return f"{pre}fwhm"
    if shape == "pearson7":
        return f"(2*{pre}sigma*sqrt(2**(1/{pre}expon) - 1))"
    if shape == "voigt":  # Olivero & Longbothum, as lineshapes.fwhm
        g2 = _FWHM_PER_SIGMA["gaussian"] ** 2
        return f"(1.0692*{pre}gamma + sqrt(0.8664*{pre}gamma**2 + {g2!r}*{pre}sigma**2))"
    return f"({_FWHM_PER_SIGMA[shape]!r}*{pre}sigma)"


def _area_expr(shape: str, pre: str) -> str | None:
    """lmfit expression of the area of a registry peak (None: no closed form, GL product)."""
    if REGISTRY[shape].intensity == "amplitude":
        return f"{pre}amplitude"
    if shape == "gl-sum":
        return f"({pre}height*{pre}fwhm*((1-{pre}mixing)*sqrt(pi/(4*log(2))) + {pre}mixing*pi/2))"
    return None


def _link_pair(param: str, s_shape: str, s_pre: str, t_shape: str, t_pre: str, names) -> list[tuple[str, str]]:
    """``[(target parameter, expression of the source)]`` making ``param`` of the target peak equal
    to the source's, for the documented names (:data:`LINK_NAMES`) and raw shape parameters.

    ``fwhm`` sets the target's width parameter from the source's FWHM through each shape's own
    factor (Gaussian sigma = FWHM / 2.3548, Lorentzian and pseudo-Voigt sigma = FWHM / 2, GL
    ``fwhm``, Pearson VII through its exponent); a Voigt target (its FWHM depends on sigma and
    gamma) is refused. ``amplitude`` is the intensity parameter (area, or height of GL shapes)
    and needs one kind on both sides; ``area`` works for closed-form areas; ``height`` for
    height-normalised (GL) shapes. Raises ParameterError otherwise.
    """
    src, tgt = names
    s_ls, t_ls = REGISTRY[s_shape], REGISTRY[t_shape]
    if param == "center":
        return [(t_pre + "center", s_pre + "center")]
    if param == "fwhm" and (s_ls.numeric_fwhm or t_ls.numeric_fwhm):
        # a pattern (CSA, Czjzek...) has a numerical FWHM only (nmr_models.fwhm_value): no lmfit expression
        # can set one line's width parameter from it, so a fwhm link would silently mean something else
        which = [f"{n!r} ({sh})" for n, sh, ls in ((src, s_shape, s_ls), (tgt, t_shape, t_ls)) if ls.numeric_fwhm]
        raise ParameterError(f"link 'fwhm' between {src!r} ({s_shape}) and {tgt!r} ({t_shape}): the FWHM of "
                             f"{' and '.join(which)} has no closed form (it is computed numerically after the fit); "
                             f"link its parameters instead; valid names: {', '.join(_valid_links(s_ls, t_ls))}")
    if param == "fwhm":
        return [_link_fwhm(s_shape, s_pre, t_shape, t_pre, tgt)]
    if param == "amplitude":
        if s_ls.intensity != t_ls.intensity:
            raise ParameterError(f"link 'amplitude': it is the {s_ls.intensity} of {src!r} ({s_shape}) but the "
                                 f"{t_ls.intensity} of {tgt!r} ({t_shape}); link 'area' or 'height'")
        return [(t_pre + t_ls.intensity, s_pre + s_ls.intensity)]
    if param == "area":
        return [_link_area(s_shape, s_pre, t_shape, t_pre, names)]
    if param == "height":
        if s_ls.intensity != "height" or t_ls.intensity != "height":
            raise ParameterError(f"link 'height' links height-normalised (GL) lines; {src!r} is {s_shape} and "
                                 f"{tgt!r} is {t_shape}: link 'area' (with 'fwhm' for equal heights)")
        return [(t_pre + "height", s_pre + "height")]
    if param in s_ls.params and param in t_ls.params and param not in s_ls.context + t_ls.context:
        return [(t_pre + param, s_pre + param)]
    valid = _valid_links(s_ls, t_ls)
    raise ParameterError(f"link {param!r} between {src!r} ({s_shape}) and {tgt!r} ({t_shape}): unknown parameter; "
                         f"valid names: {', '.join(valid)}")


def _valid_links(s_ls, t_ls) -> list[str]:
    """Link names valid between two registry lineshapes (for error messages): the documented names
    that apply to both, then the raw parameters they share (never the measurement's context)."""
    out = ["center", "area", "amplitude"] if s_ls.intensity == t_ls.intensity else ["center", "area"]
    if not (s_ls.numeric_fwhm or t_ls.numeric_fwhm) and t_ls.name != "voigt":
        out.append("fwhm")
    if s_ls.intensity == t_ls.intensity == "height":
        out.append("height")
    skip = set(LINK_NAMES) | set(s_ls.context) | set(t_ls.context) | {s_ls.intensity, t_ls.intensity}
    return out + [q for q in s_ls.params if q in t_ls.params and q not in skip]


def _link_fwhm(s_shape, s_pre, t_shape, t_pre, tgt) -> tuple[str, str]:
    """The target's width parameter and its expression giving the source's FWHM (see :func:`_link_pair`)."""
    if t_shape == "voigt":
        raise ParameterError(f"link 'fwhm' of {tgt!r}: a Voigt FWHM depends on sigma and gamma together; link "
                             "'sigma' and 'gamma' (the same profile) instead")
    w = "fwhm" if REGISTRY[t_shape].intensity == "height" else "sigma"
    if s_shape == t_shape and s_shape != "pearson7":
        return t_pre + w, s_pre + w
    f = _fwhm_expr(s_shape, s_pre)
    if w == "fwhm":
        return t_pre + "fwhm", f
    if t_shape == "pearson7":
        return t_pre + "sigma", f"{f} / (2*sqrt(2**(1/{t_pre}expon) - 1))"
    return t_pre + "sigma", f"{f} / {_FWHM_PER_SIGMA[t_shape]!r}"


def _link_area(s_shape, s_pre, t_shape, t_pre, names) -> tuple[str, str]:
    """The target's intensity parameter and its expression giving the source's area (see :func:`_link_pair`)."""
    a = _area_expr(s_shape, s_pre)
    if a is None or _area_expr(t_shape, t_pre) is None:
        raise ParameterError(f"link 'area': a gl-product line has no closed-form area ({names[0]!r}/{names[1]!r}); "
                             "use 'gl-sum' or link 'height'")
    if REGISTRY[t_shape].intensity == "amplitude":
        return t_pre + "amplitude", a
    return t_pre + "height", (f"{a} / ({t_pre}fwhm*((1-{t_pre}mixing)*sqrt(pi/(4*log(2))) + "
                              f"{t_pre}mixing*pi/2))")


class Link(BaseModel):
    """Share ``param`` between ``peaks`` (all take the first peak's value).

    ``param``: one of :data:`LINK_NAMES` (``center``, ``fwhm``, ``area``, ``amplitude`` — the
    intensity parameter, area or GL height —, ``height``), mapped to each lineshape's own
    parameters (a ``fwhm`` link between a Gaussian and a Lorentzian sets the Lorentzian's sigma
    to the Gaussian's FWHM / 2), or a lineshape parameter every linked peak has (``sigma``,
    ``gamma``, ``fraction``, ``expon``, ``mixing``), shared as it is. Anything else is a
    ParameterError when the model is compiled.
    """

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
        names = [p.name for p in v] + [n for p in v for n in p.satellite_names()]
        if len(set(names)) != len(names):
            raise ValueError(f"peak names must be unique: {names}")
        prefixes = [prefix_of(n) for n in names]
        if len(set(prefixes)) != len(prefixes):
            raise ValueError(f"peak names must stay distinct as identifiers: {names}")
        return v

    def groups(self) -> dict[str, list[str]]:
        """Peak name -> lmfit prefixes of the peak and its satellites (their areas are the peak's)."""
        return {p.name: [prefix_of(p.name)] + [prefix_of(n) for n in p.satellite_names()] for p in self.peaks}

    def satellite_prefixes(self) -> set[str]:
        return {prefix_of(n) for p in self.peaks for n in p.satellite_names()}

    # -------------------------------------------------------------- names
    def pname(self, peak: str, param: str) -> str:
        return prefix_of(peak) + param

    def _expr(self, text: str) -> str:
        names = {p.name for p in self.peaks} | {n for p in self.peaks for n in p.satellite_names()}

        def sub(m):
            peak, param = m.group(1), m.group(2)
            if peak not in names:
                raise ParameterError(f"expression {text!r} refers to unknown peak {peak!r}")
            return self.pname(peak, param)

        return re.sub(r"\{([^}.]+)\.(\w+)\}", sub, text)

    def link_exprs(self, link: "Link") -> list[tuple[str, str]]:
        """``[(lmfit parameter, expression)]`` that share ``link.param`` among ``link.peaks``.

        The names of :data:`LINK_NAMES` are mapped to each lineshape's own parameters
        (:func:`_link_pair`); any other name is a lineshape parameter every linked peak has.
        Raises ParameterError for unknown peaks or names, listing the valid ones.
        """
        shapes = {p.name: p.shape for p in self.peaks}
        unknown = [n for n in link.peaks if n not in shapes]
        if unknown:
            raise ParameterError(f"link {link.param!r}: unknown peak(s) {unknown}; the peaks are {list(shapes)}")
        if len(set(link.peaks)) != len(link.peaks):
            raise ParameterError(f"link {link.param!r}: a peak is listed twice in {link.peaks}")
        src = link.peaks[0]
        out = []
        for other in link.peaks[1:]:
            out += _link_pair(link.param, shapes[src], prefix_of(src), shapes[other], prefix_of(other),
                              (src, other))
        return out

    # -------------------------------------------------------------- lmfit
    def to_lmfit(self, x=None, y=None):
        """Compile to ``(lmfit.Model, lmfit.Parameters)`` with initial values from x, y."""
        import lmfit

        span = (float(np.ptp(x)) if x is not None and len(x) > 1 else 1.0) or 1.0
        dx = float(np.median(np.abs(np.diff(x)))) if x is not None and len(x) > 1 else span / 1000
        models = []
        # peaks and their satellites as plain components: (peak, component name, satellite or None)
        comps = []
        for p in self.peaks:
            comps.append((p, p.name, None))
            comps += [(p, n, sat) for n, sat in zip(p.satellite_names(), p.satellites)]
        for _p, cname, _sat in comps:
            models.append(REGISTRY[_p.shape].lmfit_model(prefix_of(cname)))
        if self.baseline != "none":
            deg = {"constant": 0, "linear": 1, "quadratic": 2}[self.baseline]
            models.append(lmfit.models.PolynomialModel(degree=deg, prefix="bl_"))
        model = models[0]
        for m in models[1:]:
            model = model + m
        params = model.make_params()
        for p, cname, sat in comps:
            pre = prefix_of(cname)
            ls = REGISTRY[p.shape]
            width = p.fwhm or span / 50
            center = p.center
            if sat is not None:
                center = p.center + sat.offset if sat.offset is not None else p.center
            height = None
            if x is not None and y is not None:
                i = int(np.argmin(np.abs(np.asarray(x) - center)))
                height = max(float(np.asarray(y)[i]), 0.0)
            params[pre + "center"].set(value=center)
            if ls.intensity == "height":
                inten = p.amplitude if p.amplitude is not None else (height or 1.0)
                params[pre + "fwhm"].set(value=width, min=max(dx / 2, 1e-12), max=span)
                params[pre + "height"].set(value=max(inten, 1e-12), min=0)
                params[pre + "mixing"].set(value=p.init.get("mixing", 0.3), min=0, max=1)
            else:
                shape_for_sigma = p.shape if p.shape in ("gaussian", "lorentzian", "pseudo-voigt", "voigt",
                                                         "pearson7") else "lorentzian"
                sig = float(sigma_from_fwhm(shape_for_sigma, width, expon=p.expon))
                amp = p.amplitude if p.amplitude is not None else (height or 1.0) * width * 1.064
                params[pre + "sigma"].set(value=sig, min=max(dx / 4, 1e-12), max=span)
                params[pre + "amplitude"].set(value=max(amp, 1e-12), min=0)
            if p.shape == "pseudo-voigt":
                params[pre + "fraction"].set(value=p.fraction, min=0, max=1)
            if p.shape == "voigt":
                params[pre + "gamma"].set(value=sig, vary=True, min=0, max=span, expr="")
            if p.shape == "doniach":
                params[pre + "gamma"].set(value=p.init.get("gamma", 0.05), vary=True, min=0, max=0.5)
            if p.shape == "pearson7":
                params[pre + "expon"].set(value=p.expon, min=0.51, max=100)
            for par, v in p.init.items():
                if pre + par not in params:
                    raise ParameterError(f"peak {p.name!r} ({p.shape}) has no parameter {par!r}")
                params[pre + par].set(value=float(v))
            if sat is not None:
                continue
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
        # satellites: tied position, width/shape and (optionally) intensity
        for p, cname, sat in comps:
            if sat is None:
                continue
            pre, ppre = prefix_of(cname), prefix_of(p.name)
            ls = REGISTRY[p.shape]
            if sat.position is not None:
                params[pre + "center"].set(expr=sat.position.replace("{center}", ppre + "center"))
            elif sat.offset_bounds is not None:
                lo, hi = sorted(sat.offset_bounds)
                params.add(pre + "offset", value=float(np.clip(sat.offset, lo, hi)), min=lo, max=hi)
                params[pre + "center"].set(expr=f"{ppre}center + {pre}offset")
            else:
                params[pre + "center"].set(expr=f"{ppre}center + ({sat.offset!r})")
            for w in ls.width:
                params[pre + w].set(expr=ppre + w)
            inten = ls.intensity
            if sat.ratio is not None and sat.ratio_bounds is not None:
                lo, hi = sorted(sat.ratio_bounds)
                params.add(pre + "ratio", value=float(np.clip(sat.ratio, lo, hi)), min=lo, max=hi)
                params[pre + inten].set(expr=f"{pre}ratio * {ppre}{inten}")
            elif sat.ratio is not None:
                params[pre + inten].set(expr=f"{sat.ratio!r} * {ppre}{inten}")
            else:
                params[pre + inten].set(min=0)
        if self.baseline != "none":
            for k in params:
                if k.startswith("bl_"):
                    params[k].set(value=0.0)
            if y is not None:
                params["bl_c0"].set(value=float(np.percentile(y, 5)))
        for link in self.links:
            for name, expr in self.link_exprs(link):
                params[name].set(expr=expr)
        for target, expr in self.exprs.items():
            peak, _, param = target.partition(".")
            name = self.pname(peak, param)
            if name not in params:
                raise ParameterError(f"expression target {target!r} is not a model parameter")
            params[name].set(expr=self._expr(expr))
        return model, unfreeze_centers(params)


# ============================================================================ user input
def parse_peaks(value, default_shape: str = "pseudo-voigt", where=None) -> list[Peak]:
    """The one parser of a user's ``peaks`` / ``bands`` argument (Python, CLI, YAML).

    Accepts a number, a list of positions (named ``p1, p2...``), a dict ``{name: position}`` or
    ``{name: {peak fields}}``, or a list of dicts / :class:`Peak`. Raises ``ParameterError``.
    Every parsed position is marked as the user's start (``Peak.given``), which :func:`fit_spec`
    checks after the fit (:func:`fit_checks`).
    """
    if value is None:
        return []
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        items = [{"center": value}]
    elif isinstance(value, dict):
        items = [dict(v, name=str(k)) if isinstance(v, dict) else {"name": str(k), "center": v}
                 for k, v in value.items()]
    elif isinstance(value, (list, tuple)):
        items = [p if isinstance(p, (dict, Peak)) else {"center": p} for p in value]
    else:
        raise ParameterError(f"peaks: expected positions, {{name: position}} or a list of peaks, got {value!r}",
                             where)
    out = []
    for i, it in enumerate(items, 1):
        if isinstance(it, Peak):
            out.append(it)
            continue
        it = dict(it)
        it.setdefault("name", f"p{i}")
        it["name"] = str(it["name"])
        it.setdefault("shape", default_shape)
        if "given" not in it and isinstance(it.get("center"), (int, float)) and not isinstance(it["center"], bool):
            it["given"] = it["center"]           # a user's start: fit_spec checks where it ended
        try:
            out.append(Peak.model_validate(it))
        except Exception as exc:
            msg = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in getattr(exc, "errors", lambda: [])())
            raise ParameterError(f"peak {it.get('name')!r}: {msg or exc}", where) from None
    names = [p.name for p in out]
    if len(set(names)) != len(names):
        raise ParameterError(f"peak names must be unique: {names}", where)
    return out
