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

:func:`fit_spec` fits one spectrum (batch-engine start, lmfit confirmation, full covariance,
bound and quality checks) and returns a :class:`FitOutcome`; :func:`parse_peaks` is the one parser
of the user's ``peaks`` / ``bands`` argument.
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
ShapeName = Shape
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
    if param in s_ls.params and param in t_ls.params:
        return [(t_pre + param, s_pre + param)]
    valid = list(LINK_NAMES) + [q for q in s_ls.params if q in t_ls.params and q not in LINK_NAMES]
    raise ParameterError(f"link {param!r} between {src!r} ({s_shape}) and {tgt!r} ({t_shape}): unknown parameter; "
                         f"valid names: {', '.join(valid)}")


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


# ============================================================================ one fit
from dataclasses import dataclass, field  # noqa: E402


@dataclass
class FitOutcome:
    """What :func:`fit_spec` returns: values, honest errors, checks and the curves."""

    spec: ModelSpec
    x: np.ndarray
    y: np.ndarray
    params: object                      # lmfit Parameters at the optimum (constraints applied)
    var_names: list
    covar: np.ndarray | None
    best_fit: np.ndarray
    components: dict                    # lmfit prefix -> curve (satellites separate)
    stats: dict
    warnings: list = field(default_factory=list)
    bounded: list = field(default_factory=list)   # varied parameters at a bound
    model: object = None
    noise: float | None = None
    values_fn: object = None            # theta -> all parameter values (compiled affine map), or None
    undetected: list = field(default_factory=list)  # given peaks with no signal near their start

    @property
    def values(self) -> dict:
        return self.params.valuesdict()

    @property
    def stderr(self) -> dict:
        """Standard errors by parameter name; None at a bound or when undetermined."""
        out = {}
        for n, p in self.params.items():
            se = p.stderr
            out[n] = None if (n in self.bounded or se is None or not np.isfinite(se)) else float(se)
        return out

    @property
    def residual(self) -> np.ndarray:
        return self.y - self.best_fit

    def derived(self, fn):
        """Derived quantities ``fn(values) -> array`` with errors from the full covariance."""
        from .uncertainty import propagate

        if self.values_fn is not None:
            try:
                return propagate(fn, self.params, self.var_names, self.covar, values_fn=self.values_fn)
            except KeyError:
                pass
        return propagate(fn, self.params, self.var_names, self.covar)

    def peak_table(self):
        """Tidy per-peak table (satellites credited to their peak); errors None at a bound."""
        import pandas as pd

        from .lineshapes import area_of, fwhm_of

        spec, groups = self.spec, self.spec.groups()
        names = [p.name for p in spec.peaks]
        n = len(names)

        counted = np.array([p.name not in self.undetected for p in spec.peaks])

        def fn(v):
            areas = np.array([sum(area_of(p.shape, v, g) for g in groups[p.name]) for p in spec.peaks])
            tot = areas[counted].sum()       # fractions of the detected peaks
            fr = np.where(counted, areas / tot, np.nan) if tot > 0 else np.full(n, np.nan)
            cen = [v[prefix_of(nm) + "center"] for nm in names]
            fw = [fwhm_of(p.shape, v, prefix_of(p.name)) for p in spec.peaks]
            return np.concatenate([cen, fw, areas, fr])

        vals, errs, _ = self.derived(fn)
        rows = []
        for i, p in enumerate(spec.peaks):
            pre = prefix_of(p.name)
            own = [k for k in self.bounded if k.startswith(pre) or any(k.startswith(g) for g in groups[p.name])]
            curve = self.components.get(pre)
            height = float(np.max(curve)) if curve is not None and np.size(curve) else float("nan")
            xs = self.x[int(np.argmax(curve))] if curve is not None and np.size(curve) > 1 else float("nan")

            def e(v, name):
                return None if (any(k.endswith(name) for k in own) or not np.isfinite(v)) else float(v)

            rows.append({"name": p.name, "shape": p.shape, "center": vals[i], "center_stderr": e(errs[i], "center"),
                         "fwhm": vals[n + i], "fwhm_stderr": e(errs[n + i], "sigma") if p.shape != "gl-product"
                         and p.shape != "gl-sum" else e(errs[n + i], "fwhm"),
                         "height": height, "x_at_max": float(xs),
                         "area": vals[2 * n + i], "area_stderr": e(errs[2 * n + i], "amplitude"),
                         "area_fraction": vals[3 * n + i],
                         "area_fraction_stderr": None if own or not np.isfinite(errs[3 * n + i]) else float(errs[3 * n + i]),
                         "n_satellites": len(groups[p.name]) - 1, "at_bound": ",".join(own),
                         "detected": bool(counted[i])})
            if not counted[i]:      # no signal near its start: not a result (fit_checks warned); the
                # centre and width stay as fitted (where it went), the intensities are NaN
                rows[-1].update({k: float("nan") for k in ("height", "area", "area_fraction")})
                rows[-1].update({k: None for k in ("center_stderr", "fwhm_stderr", "area_stderr",
                                                   "area_fraction_stderr")})
        return pd.DataFrame(rows)

    def insignificant(self, names=None, k_area: float = 2.0, k_height: float = 3.0) -> list[str]:
        """Peaks that are not detected: see :func:`not_significant` (on :meth:`peak_table`)."""
        return not_significant(self.peak_table().to_dict(orient="records"), self.noise, names=names,
                               k_area=k_area, k_height=k_height)


def not_significant(rows, noise: float | None, names=None, k_area: float = 2.0, k_height: float = 3.0) -> list[str]:
    """Names of table rows that are no detection: what an automatic mode must not report.

    A row is not significant when its height is below ``k_height`` noise SDs, its area is not
    positive, or ``|area| < k_area`` standard errors (an area without a standard error — a
    parameter at a bound — is judged on its height and sign alone).

    Parameters
    ----------
    rows : list of dict
        ``name``, ``area``, ``area_stderr`` and ``height`` per component (e.g.
        :meth:`FitOutcome.peak_table` records).
    noise : float or None
        Noise SD of the data (None: the height test is skipped).
    names : iterable of str, optional
        Only these rows are judged.
    """
    out = []
    for r in rows:
        if names is not None and r["name"] not in names:
            continue
        a, e, h = r.get("area"), r.get("area_stderr"), r.get("height")
        a = float("nan") if a is None else float(a)
        weak = not (np.isfinite(a) and a > 0)
        if e is not None and np.isfinite(e) and abs(a) < k_area * e:
            weak = True
        if noise and h is not None and not (float(h) >= k_height * noise):
            weak = True
        if weak:
            out.append(r["name"])
    return out


def drop_undetected(fit: "FitOutcome", refit, names=None, *, unit: str = "", k_area: float = 2.0,
                    k_height: float = 3.0, where=None):
    """An automatic mode's fit without the candidates that are no detection.

    Candidates judged not significant by :func:`not_significant` (area within ``k_area``
    standard errors of 0, or height below ``k_height`` noise SDs) are removed and the rest
    refitted until none is left: every candidate without signal (height below the threshold or
    no positive area) at once, else only the one with the smallest area / standard error (the
    area errors of overlapping candidates are inflated by their correlation, which removing one
    of them lifts).

    Parameters
    ----------
    fit : FitOutcome
    refit : callable
        ``refit(fit, names_to_drop) -> FitOutcome`` without those peaks.
    names : iterable of str, optional
        The peaks that are candidates (others, e.g. modelled atmosphere, are never dropped).
    unit : str
        Axis unit of the positions in the warning.
    where : str, optional
        The input file, for the error.

    Returns
    -------
    (FitOutcome, list of str)
        The final fit and its warning (empty when nothing was dropped).

    Raises
    ------
    ProcessingError
        When no candidate is left.
    """
    from ..core.errors import ProcessingError

    u = f" {unit}" if unit else ""
    dropped = []
    while True:
        rows = [r for r in fit.peak_table().to_dict(orient="records") if names is None or r["name"] in names]
        weak = not_significant(rows, fit.noise, k_area=k_area, k_height=k_height)
        if not weak:
            break
        drop = _to_drop([r for r in rows if r["name"] in weak], fit.noise, k_height)
        dropped += [f"{fit.values[prefix_of(n) + 'center']:.4g}{u}" for n in drop]
        if len(drop) == len(rows):
            raise ProcessingError(f"no component detected above the noise ({len(dropped)} candidate(s) with an area "
                                  f"within {k_area:g} standard errors of 0 or a height below {k_height:g}x the noise)",
                                  where)
        fit = refit(fit, drop)
    if not dropped:
        return fit, []
    return fit, [f"{len(dropped)} candidate component(s) not detected above the noise (area within {k_area:g} standard "
                 f"errors of 0 or height below {k_height:g}x the noise), left out of the result: {', '.join(dropped)}"]


def _to_drop(weak_rows, noise, k_height) -> list[str]:
    """Of the not-significant rows: all without signal, else the one of smallest area / stderr."""
    def empty(r):
        a, h = r.get("area"), r.get("height")
        return not (a is not None and np.isfinite(a) and a > 0) or bool(
            noise and not (h is not None and float(h) >= k_height * noise))

    gone = [r["name"] for r in weak_rows if empty(r)]
    if gone:
        return gone
    return [min(weak_rows, key=lambda r: abs(r["area"]) / r["area_stderr"])["name"]]


# ============================================================================ after-fit checks
def peak_curves(spec: ModelSpec, x, values: dict) -> dict:
    """``{lmfit prefix: curve}`` of every peak and satellite of ``spec`` and ``"bl_"`` (the
    baseline) at parameter ``values`` (plain numbers: the batch paths have no lmfit result)."""
    from .components import gl_product, gl_sum
    from .lineshapes import FUNCTIONS

    x = np.asarray(x, float)
    out = {}
    for p in spec.peaks:
        ls = REGISTRY[p.shape]
        for pre in spec.groups()[p.name]:
            kw = {n: float(values[pre + n]) for n in ls.params}
            if p.shape in FUNCTIONS:
                out[pre] = np.asarray(FUNCTIONS[p.shape](x, **kw), float)
            elif p.shape in ("gl-product", "gl-sum"):
                out[pre] = np.asarray((gl_product if p.shape == "gl-product" else gl_sum)(x, **kw), float)
            else:
                import lmfit

                out[pre] = np.asarray(lmfit.lineshapes.doniach(x, **kw), float)
    deg = {"none": None, "constant": 0, "linear": 1, "quadratic": 2}[spec.baseline]
    if deg is not None:
        out["bl_"] = sum(float(values.get(f"bl_c{j}", 0.0)) * x ** j for j in range(deg + 1)) * np.ones_like(x)
    return out


def fit_checks(spec: ModelSpec, x, y, best_fit, values: dict, noise: float, *, curves: dict | None = None,
               weights=None, unit: str = "") -> tuple[list[str], list[str]]:
    """The after-fit checks of every fit (single and stacked): warnings and undetected peaks.

    1. **Moved starts**: a peak the user placed (``Peak.given``) whose fitted centre ended more
       than ``max(FWHM, given_window)`` from it, or past the start of a separate neighbouring
       peak (:func:`~specproc.fitting.uncertainty.moved_from_start`).
    2. **No signal near a start**: the data minus the baseline and the other components hold no
       point above 4 noise SDs within 3 FWHM of the given start
       (:func:`~specproc.fitting.uncertainty.signal_near`): a warning, and the peak is returned
       as undetected (its values are no result).
    3. **Unexplained signal**: residual features above 5 noise SDs over at least half the
       narrowest FWHM (>= 3 points) (:func:`~specproc.fitting.uncertainty.unexplained_signal`).

    Parameters
    ----------
    spec : ModelSpec
    x, y, best_fit : ndarray (n,)
        The fitted points, the data and the model there.
    values : dict
        Parameter values (lmfit names; expressions evaluated).
    noise : float
        Noise SD of ``y`` (unweighted fits).
    curves : dict, optional
        ``{prefix: curve}`` of the components (default :func:`peak_curves`).
    weights : ndarray, optional
        The fit's weights: residuals are compared in weighted units, on their own robust SD.
    unit : str
        Axis unit for the sentences.

    Returns
    -------
    (warnings, undetected) : (list of str, list of str)
    """
    from .lineshapes import fwhm_of
    from .noise import noise_sigma
    from .uncertainty import min_feature_points, unexplained_signal, unexplained_warning

    x, y, best = (np.asarray(a, float) for a in (x, y, best_fit))
    curves = peak_curves(spec, x, values) if curves is None else curves
    fw = {p.name: float(fwhm_of(p.shape, values, prefix_of(p.name))) for p in spec.peaks}
    w = np.ones_like(y) if weights is None else np.asarray(weights, float)
    resid = (y - best) * w
    sigma = float(noise) if weights is None and noise else noise_sigma(resid)
    dx = float(np.median(np.abs(np.diff(x)))) if x.size > 1 else 1.0
    warns, undetected = _start_checks(spec, x, dx, resid, w, curves, values, fw, sigma, unit)
    model = (best - np.broadcast_to(np.asarray(curves.get("bl_", 0.0), float), x.shape)) * w
    feats = unexplained_signal(x, resid, sigma, min_feature_points(x, fw.values(), dx=dx), model=model)
    if feats:
        warns.append(unexplained_warning(feats, unit))
    return warns, undetected


def _start_checks(spec, x, dx, resid, w, curves, values, fw, sigma, unit):
    """Checks 1 and 2 of :func:`fit_checks` for the peaks with a given start (``dx``: median spacing)."""
    from .uncertainty import SIGNAL_K, SIGNAL_REACH, moved_from_start, signal_near

    if not any(p.given is not None for p in spec.peaks):
        return [], []
    groups = spec.groups()
    u = f" {unit}" if unit else ""
    start = {q.name: (q.given if q.given is not None else q.center) for q in spec.peaks}
    warns, undetected = [], []
    for p in spec.peaks:
        if p.given is None:
            continue
        neigh = {q.name: start[q.name] for q in spec.peaks
                 if q is not p and abs(start[q.name] - p.given) > max(fw[p.name], fw[q.name])}
        moved = moved_from_start(p.name, p.given, float(values[prefix_of(p.name) + "center"]), fw[p.name],
                                 p.given_window, neigh, unit)
        # the data this peak could explain: residual + its own curves (baseline and others removed)
        own = sum((np.broadcast_to(np.asarray(curves[g], float), x.shape) for g in groups[p.name] if g in curves),
                  np.zeros_like(x))
        widths = [f for f in (fw[p.name], p.fwhm) if f is not None and np.isfinite(f) and f > 0]
        if widths:
            reach = SIGNAL_REACH * max(widths)
            # smoothing over half the narrower width keeps a line of that width, drops lone spikes
            if not signal_near(x, resid + own * w, p.given, reach, sigma, window=max(5, int(0.5 * min(widths) / dx))):
                warns.append(f"no signal near {p.given:g}{u}, where {p.name} was given: no significant signal "
                             f"within {reach:.3g}{u} (no point above {SIGNAL_K:g}x the noise); {p.name} is not "
                             f"detected and not reported as a result")
                undetected.append(p.name)
        if moved:
            warns.append(moved)
    return warns, undetected


#: engine budget of :func:`fit_spec`: ``clip(25 * nvarys, 200, 2000)`` LM iterations
ENGINE_ITER_PER_PARAM, ENGINE_ITER_MIN, ENGINE_ITER_MAX = 25, 200, 2000


def engine_budget(nvarys: int) -> int:
    """Default LM iteration budget of the batch engine in :func:`fit_spec` for ``nvarys`` free parameters.

    Crowded windows (an XRD cluster of 8-10 reflections with Kα2 satellites, ~40 parameters) need
    several hundred iterations from picked starts; a fixed 200 left them to lmfit's much slower
    finite-difference search.
    """
    return int(min(ENGINE_ITER_MAX, max(ENGINE_ITER_MIN, ENGINE_ITER_PER_PARAM * int(nvarys))))


def _polish(model, params, x, y, weights=None, max_iter=200):
    """Run the batch engine (analytic Jacobians) on one spectrum from ``params``.

    lmfit's ``leastsq`` differentiates numerically (``nvarys + 1`` model evaluations per
    iteration); a stack of one through the batch engine finds the same optimum much faster.
    ``params`` is not changed.

    Returns
    -------
    ds : xarray.Dataset or None
        The engine's result: values at its optimum, or where the budget ran out when
        ``ds["success"]`` is False. None when the model does not compile (lmfit's own search then).
    bm : BatchModel or None
        The compiled model (reused for the affine map of the constraints and the restart test).
    """
    from ..core.errors import SpecprocError
    from .batch import NotBatchable, _fit_batch_compiled

    try:
        ds, bm = _fit_batch_compiled(model, x, np.asarray(y, float)[None, :], params=params,
                                     method="batched-lm", n_jobs=1, max_iter=max_iter,
                                     weights=None if weights is None else np.asarray(weights, float)[None, :],
                                     expr_errors=False)
    except (NotBatchable, SpecprocError, ValueError, TypeError):
        return None, None
    return ds, bm


def _chisqr(bm, theta, phi, x, y, weights):
    """chi² of the compiled model at free parameters ``theta`` (weighted like lmfit)."""
    from ._batch_kernels import eval_components

    P = bm.full(np.asarray(theta, float)[None, :], np.asarray(phi, float)[None, :])
    r = y - eval_components(bm.kinds, bm.offsets, bm.npars, x, P, jac=False)[0][0]
    if weights is not None:
        r = r * weights
    c = float(np.sum(r * r))
    return c if np.isfinite(c) else np.inf


def _restart_point(params, ds, bm, x, y, weights):
    """Move ``params`` to the engine's end point if lmfit would start there with a lower chi² (in place).

    The end point of a run that stopped short (budget spent) is, by construction of LM, no worse
    than the starts; it is used when its chi² (after the moves below) is lower. lmfit's bounded
    transforms have zero slope on a bound, so a start exactly there is frozen: a parameter with
    two finite bounds is kept 1e-4 of its range inside them, one on a one-sided bound is moved
    1e-4 of its original start's distance from that bound inside (an amplitude the engine took to
    0 stays ~0: restoring its start value on a peak whose width the engine shrank gave chi² 1e3x
    the end point's). Returns True when ``params`` moved.
    """
    theta0 = np.array([float(params[n].value) for n in bm.free])
    theta = theta0.copy()
    for j, name in enumerate(bm.free):
        v = float(ds[name].values[0]) if name in ds else np.nan
        if not np.isfinite(v):
            return False
        lo, hi = params[name].min, params[name].max
        if np.isfinite(lo) and np.isfinite(hi) and hi > lo:
            v = float(np.clip(v, lo + 1e-4 * (hi - lo), hi - 1e-4 * (hi - lo)))
        elif v <= lo:
            v = lo + 1e-4 * (theta0[j] - lo) if theta0[j] > lo else theta0[j]
        elif v >= hi:
            v = hi - 1e-4 * (hi - theta0[j]) if theta0[j] < hi else theta0[j]
        theta[j] = v
    phi = np.array([float(params[n].value) for n in bm.fixed])
    if not _chisqr(bm, theta, phi, x, y, weights) < _chisqr(bm, theta0, phi, x, y, weights):
        return False
    for name, v in zip(bm.free, theta):
        params[name].set(value=float(v))
    unfreeze_centers(params)
    return True


class _Solved:
    """What fit_spec reads from an lmfit ModelResult, for an optimum found by the batch engine."""

    def __init__(self, model, params, x, y, weights, nfev, success=True):
        p = without_uvars(params)
        p.update_constraints()
        self.params, self._model, self._x = p, model, x
        self.best_fit = np.asarray(model.eval(p, x=x), float)
        r = self.best_fit - y
        if weights is not None:
            r = r * weights
        self.var_names = [n for n, q in p.items() if q.vary and not q.expr]
        self.ndata, self.nvarys = int(np.size(y)), len(self.var_names)
        self.chisqr = float(np.sum(r * r))
        nfree = self.ndata - self.nvarys
        self.redchi = self.chisqr / nfree if nfree > 0 else float("nan")
        lik = self.ndata * np.log(max(self.chisqr, 1e-300) / self.ndata)
        self.aic = float(lik + 2 * self.nvarys)
        self.bic = float(lik + np.log(self.ndata) * self.nvarys)
        self.nfev, self.success = int(nfev), bool(success)

    def eval_components(self, x=None):
        return self._model.eval_components(params=self.params, x=self._x if x is None else x)


def fit_spec(spec: ModelSpec, x, y, *, weights=None, noise: float | None = None, polish: bool = True,
             max_nfev: int | None = None, where=None, confirm: bool = False,
             engine_iter: int | None = None, unit: str = "") -> FitOutcome:
    """Fit one spectrum with a :class:`ModelSpec` — the single-spectrum path of every technique.

    The batch engine finds the optimum (analytic Jacobians) within ``engine_iter`` iterations;
    lmfit searches only when the engine cannot compile the model or did not converge (or
    ``confirm=True``), starting from the engine's end point when that has a lower chi² than the
    starts (:func:`_restart_point`), else from the starts. The covariance is computed robustly
    (:func:`~specproc.fitting.uncertainty.covariance`); parameters on a bound lose their standard
    error and become warnings; a non-converged, poor (r² < 0.9) or structured (residual RMS > 3x
    ``noise``) fit is a warning.

    Parameters
    ----------
    spec : ModelSpec
    x, y : array_like (n,)
    weights : array_like, optional
        lmfit weights (1/sigma).
    noise : float, optional
        Noise SD of ``y`` (default: :func:`~specproc.fitting.noise.noise_sigma`).
    polish : bool
        Run the batch engine first (False: lmfit from the starts).
    max_nfev : int, optional
        lmfit's budget of model evaluations (default ``200 * (nvarys + 1)``).
    confirm : bool
        Let lmfit confirm a converged engine optimum (starting there).
    engine_iter : int, optional
        LM iteration budget of the engine (default :func:`engine_budget`: ``25 * nvarys``
        within 200..2000).
    unit : str
        Axis unit in the warnings of :func:`fit_checks` (moved starts, no signal near a start,
        unexplained signal), which every fit goes through.

    Returns
    -------
    FitOutcome
        ``stats`` says how the optimum was found: ``optimizer`` is ``"engine"`` (the engine
        converged), ``"engine+lmfit"`` (lmfit from the engine's end point or, with ``confirm``,
        its optimum), ``"engine-end"`` (the engine stopped short and lmfit, stopped by
        ``max_nfev``, did not improve on its end point, which is reported, not converged) or
        ``"lmfit"`` (lmfit from the starts); ``engine_converged`` (None when the engine did not
        run), ``engine_iter`` (its budget) and ``engine_nfev``.
    """
    import warnings as _w

    from ..core.errors import FitError
    from .noise import noise_sigma
    from .uncertainty import at_bound, covariance, fit_warnings, r_squared

    x = np.asarray(x, float)
    y = np.asarray(y, float)
    if x.shape != y.shape or x.ndim != 1:
        raise FitError(f"x and y must be 1D of one length, got {x.shape} and {y.shape}", where)
    good = np.isfinite(x) & np.isfinite(y)
    if weights is not None:
        weights = np.asarray(weights, float)
        good &= np.isfinite(weights)
    if good.sum() < 4:
        raise FitError("fewer than 4 finite points to fit", where)
    x, y = x[good], y[good]
    weights = None if weights is None else weights[good]
    model, params = spec.to_lmfit(x, y)
    nvarys = sum(p.vary and not p.expr for p in params.values())
    if x.size <= nvarys:
        raise FitError(f"{x.size} points cannot determine {nvarys} parameters", where)
    budget = int(engine_iter) if engine_iter is not None else engine_budget(nvarys)
    if budget < 1:
        raise FitError(f"engine_iter must be >= 1, got {engine_iter}", where)
    ds, bm = _polish(model, params, x, y, weights, max_iter=budget) if polish else (None, None)
    converged = ds is not None and bool(ds["success"].values[0])
    engine_nfev = int(ds["nfev"].values[0]) if ds is not None else 0
    optimizer = "lmfit"
    if converged:
        for name, par in params.items():
            if par.vary and not par.expr and name in ds:
                v = float(ds[name].values[0])
                if np.isfinite(v):
                    par.set(value=float(np.clip(v, par.min, par.max)))
        optimizer = "engine+lmfit" if confirm else "engine"
    elif ds is not None and _restart_point(params, ds, bm, x, y, weights):
        optimizer = "engine+lmfit"
    else:
        ds = None  # a stopped-short engine result that does not start better than the starts is discarded
    values_fn = None
    if converged and not confirm:
        # the engine converged: its optimum is the least-squares optimum lmfit would confirm
        # (lmfit's numerical-Jacobian iterations cost minutes for models with dozens of satellites)
        res = _Solved(model, params, x, y, weights, int(ds["nfev"].values[0]))
        values_fn = _affine_values(model, res.params, res.var_names, bm)
    else:
        try:
            with _w.catch_warnings():
                _w.simplefilter("ignore")
                res = model.fit(y, without_uvars(params), x=x, weights=weights, nan_policy="raise",
                                max_nfev=max_nfev or 200 * (nvarys + 1))
        except Exception as exc:
            raise FitError(f"fit failed: {type(exc).__name__}: {exc}", where) from None
        if optimizer == "engine+lmfit" and getattr(res, "aborted", False):
            # lmfit stopped by max_nfev returns its last *trial* point, not its best: never report a
            # point worse than the engine's, where lmfit started
            start = _Solved(model, params, x, y, weights, int(res.nfev), success=converged)
            if not res.chisqr <= start.chisqr:
                res, optimizer = start, "engine" if converged else "engine-end"
    p = res.params
    p.update_constraints()
    bounded = at_bound(p, skip={n for n in p if any(n.startswith(sp) for sp in spec.satellite_prefixes())
                                and n.endswith(("amplitude", "height"))})
    cov = None
    if converged and not confirm and "covar" in ds and list(ds.attrs.get("free", [])) == list(res.var_names):
        cov = np.asarray(ds["covar"].values, float)          # the engine's analytic-Jacobian covariance
        if not (np.all(np.isfinite(np.diag(cov))) and np.all(np.diag(cov) >= 0)):
            cov = None
    if cov is None:
        cov = covariance(model, p, x, res.var_names, res.redchi, weights)
    for j, name in enumerate(res.var_names):
        p[name].stderr = float(np.sqrt(cov[j, j])) if cov is not None else None
    best = np.asarray(res.best_fit, float)
    nz = noise if noise is not None else noise_sigma(y)
    stats = {"r2": r_squared(y, best), "redchi": float(res.redchi), "chisqr": float(res.chisqr),
             "aic": float(res.aic), "bic": float(res.bic), "nfev": int(res.nfev), "success": bool(res.success),
             "ndata": int(res.ndata), "nvarys": int(res.nvarys), "optimizer": optimizer,
             "engine_converged": bool(converged) if bm is not None else None,
             "engine_iter": budget if bm is not None else 0,
             "engine_nfev": engine_nfev}
    warns = fit_warnings(stats, bounded, residual=y - best if weights is None else None, noise=nz, params=p)
    comps = {k: np.broadcast_to(np.asarray(v, float), x.shape) for k, v in res.eval_components(x=x).items()}
    checks, undetected = fit_checks(spec, x, y, best, p.valuesdict(), nz, curves=comps, weights=weights, unit=unit)
    return FitOutcome(spec=spec, x=x, y=y, params=p, var_names=list(res.var_names), covar=cov, best_fit=best,
                      components=comps, stats=stats, warnings=warns + checks, bounded=bounded, model=model, noise=nz,
                      values_fn=values_fn, undetected=undetected)


def _affine_values(model, params, var_names, bm=None):
    """``theta -> {name: value}`` through the batch engine's compiled affine map of the constraints.

    Only the parameters the model functions take (and the independent ones) are in the dict: what
    derived quantities need (areas, FWHM from the registry). ``bm``: the BatchModel the engine
    already compiled from this model and these parameters (else compiled here). None when the
    model does not compile.
    """
    if bm is None:
        try:
            from .batch import NotBatchable, compile_model

            bm = compile_model(model, params)
        except (NotBatchable, Exception):  # any failure: the lmfit-interpreter path stays correct
            return None
    if list(bm.free) != list(var_names):
        return None
    phi = np.array([[float(params[n].value) for n in bm.fixed]])
    # independent parameters only: an expression that is not a model argument (lmfit's derived
    # fwhm/height) is absent, so a derived function that needs one fails (KeyError) and the caller
    # falls back to lmfit's interpreter instead of differentiating a stale value
    base = {n: float(params[n].value) for n in params if not params[n].expr}

    def values(theta):
        P = bm.full(np.asarray(theta, float)[None, :], phi)[0]
        out = dict(base)
        out.update(zip(bm.free, (float(t) for t in theta)))
        out.update(zip(bm.qnames, (float(v) for v in P)))
        return out

    return values
