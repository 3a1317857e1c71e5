"""XPS peak-model templates (CasaXPS-style constraints) compiled to the shared :class:`ModelSpec`.

A template is ``{region: [Component, ...]}``, defined once and applied to every etch level (the batch
engine fits all levels of a region at once). Component positions are *charge-corrected* binding energies.

Constraints CasaXPS users rely on, and how they compile:

* bounds: ``center_window`` (± eV around ``center``), ``fwhm_bounds``; ``fix=["center", "fwhm"]``;
* linked FWHM: ``link_fwhm="Li3N"`` -> :class:`~specproc.fitting.models.Link` (shared parameter);
* linked position with an offset: ``offset_from={"component": "A", "offset": 1.2}`` -> expression
  ``center = A.center + 1.2`` (affine: stays batchable);
* area ratio: ``area_ratio={"component": "A", "ratio": 0.5}`` -> intensity expression (affine when
  the two share their FWHM; otherwise the batch engine falls back to lmfit);
* spin-orbit doublets: ``doublet=True`` takes splitting and 2:1 / 3:2 / 4:3 ratio from the built-in
  table (:mod:`.doublets`) for the region's line; ``doublet={"splitting": 1.18, "ratio": 0.5,
  "splitting_window": 0.1}`` overrides / frees them. The partner is a shared-model ``Satellite``.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ...core.errors import ParameterError

XPSShape = Literal["gl-product", "gl-sum", "voigt", "doniach", "gaussian", "lorentzian", "pseudo-voigt"]


class Doublet(BaseModel):
    """Spin-orbit partner: splitting (eV), area ratio (partner / main), optional free window (± eV)."""

    model_config = ConfigDict(extra="forbid")
    splitting: float | None = Field(None, gt=0)
    ratio: float | None = Field(None, gt=0, le=1)
    splitting_window: float = Field(0.0, ge=0)
    name: str | None = None


class Ref(BaseModel):
    model_config = ConfigDict(extra="forbid")
    component: str
    offset: float | None = None
    ratio: float | None = Field(None, gt=0)


class Component(BaseModel):
    """One chemical component of a region (a CasaXPS component row).

    Attributes
    ----------
    name : str
        Species name, chemistry-like (``Li3N``, ``Li-B``, ``C-C``); components of several regions
        with one name add up in the species atomic %.
    center : float
        Charge-corrected binding energy (eV), start value.
    fwhm : float
        Start FWHM (eV).
    shape : str
        ``gl-product`` (CasaXPS GL(m), default), ``gl-sum`` (SGL(m)), ``voigt``, ``doniach`` (DS)...
    mixing : float
        Lorentzian share m/100 of GL shapes (GL(30) = 0.3); fixed unless ``vary_mixing``.
    """

    model_config = ConfigDict(extra="forbid")
    name: str
    center: float
    fwhm: float = Field(1.5, gt=0)
    shape: XPSShape = "gl-product"
    mixing: float = Field(0.3, ge=0, le=1)
    vary_mixing: bool = False
    asymmetry: float = Field(0.1, ge=0, lt=1, description="Doniach-Sunjic asymmetry start")
    center_window: float = Field(1.0, gt=0, description="centre bound: center ± window (eV)")
    fwhm_bounds: tuple[float, float] = (0.3, 5.0)
    fix: list[Literal["center", "fwhm", "mixing", "asymmetry"]] = Field(default_factory=list)
    doublet: bool | Doublet = False
    link_fwhm: str | None = None
    offset_from: Ref | None = None
    area_ratio: Ref | None = None
    quantify: bool = Field(True, description="count this component in the atomic %; false for a line of "
                                              "another element inside the region (S 2s in Mo 3d)")

    @model_validator(mode="after")
    def _checks(self):
        if not np.isfinite(self.center):
            raise ValueError("center must be finite")
        if self.offset_from is not None and self.offset_from.offset is None:
            raise ValueError("offset_from needs an 'offset' (eV)")
        if self.area_ratio is not None and self.area_ratio.ratio is None:
            raise ValueError("area_ratio needs a 'ratio'")
        return self


def parse_template(value) -> dict[str, list[Component]]:
    """``{region: [component dicts or Components]}`` (or ``{region: {name: center}}``) -> validated."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ParameterError(f"model: expected {{region: [components]}}, got {type(value).__name__}")
    out = {}
    for reg, comps in value.items():
        if isinstance(comps, dict):
            comps = [{"name": k, "center": v} if not isinstance(v, dict) else dict(v, name=k) for k, v in comps.items()]
        items = []
        for c in comps:
            try:
                items.append(c if isinstance(c, Component) else Component.model_validate(c))
            except Exception as exc:
                raise ParameterError(f"model[{reg!r}]: {exc}") from None
        names = [c.name for c in items]
        if len(set(names)) != len(names):
            raise ParameterError(f"model[{reg!r}]: component names must be unique, got {names}")
        out[str(reg)] = items
    return out


def _fwhm_param(shape: str) -> str:
    return "fwhm" if shape in ("gl-product", "gl-sum") else "sigma"


def _sigma_scale(shape: str) -> float:
    """sigma = scale * FWHM for the area-normalised shapes (voigt with gamma = sigma at the start)."""
    from ...fitting.lineshapes import fwhm

    if shape == "doniach":
        return 0.5
    return 1.0 / float(fwhm(shape if shape != "doniach" else "lorentzian", 1.0))


def compile_region(region: str, comps: list[Component], shift: float = 0.0, given: bool = True,
                   line: str | None = None):
    """Compile a region's template to a :class:`ModelSpec` (centres + ``shift``, eV).

    Parameters
    ----------
    given : bool
        The centres are the user's starts (a template): every peak gets ``given=center`` and
        ``given_window=center_window``, so the toolkit's after-fit checks
        (:func:`~specproc.fitting.fit.fit_checks`) warn about a component that ends far from its
        start and report one with no signal near it as not detected. False for automatic starts
        (picked peaks), which are judged by their significance instead.
    line : str, optional
        The region's core line when its name is not one (``"block 3"`` identified as ``"Si 2p"``):
        the doublet table is looked up with it.

    Returns
    -------
    (ModelSpec, info) where ``info`` lists, per component, its prefix, shape and doublet ratio.
    """
    from ...fitting.models import Link, ModelSpec, Peak, Satellite, prefix_of
    from .doublets import doublet as table_doublet, partner_name

    names = {c.name for c in comps}
    peaks, links, exprs, info = [], {}, {}, []
    for c in comps:
        c0 = c.center + shift
        fp = _fwhm_param(c.shape)
        lo, hi = sorted(c.fwhm_bounds)
        bounds = {"center": (c0 - c.center_window, c0 + c.center_window)}
        init = {}
        fixed = []
        if fp == "fwhm":
            if c.shape == "gl-product" and c.vary_mixing:
                raise ParameterError(f"model[{region!r}] {c.name}: a GL(m) product line has no closed-form area, so "
                                     "its mixing stays fixed; use shape 'gl-sum' (SGL) to fit the mixing")
            bounds["fwhm"] = (lo, hi)
            init["mixing"] = c.mixing
            if not c.vary_mixing or "mixing" in c.fix:
                fixed.append("mixing")
        else:
            s = _sigma_scale(c.shape)
            bounds["sigma"] = (lo * s, hi * s)
        if c.shape == "doniach":
            init["gamma"] = c.asymmetry
            if "asymmetry" in c.fix:
                fixed.append("gamma")
        if "center" in c.fix:
            fixed.append("center")
        if "fwhm" in c.fix:
            fixed.append(fp)
        sats = []
        ratio = 0.0
        if c.doublet:
            d = c.doublet if isinstance(c.doublet, Doublet) else Doublet()
            tab = table_doublet(line or region)
            split = d.splitting if d.splitting is not None else (tab[0] if tab else None)
            ratio = d.ratio if d.ratio is not None else (tab[1] if tab else None)
            if split is None or ratio is None:
                raise ParameterError(f"model[{region!r}] {c.name}: no spin-orbit splitting/ratio for "
                                     f"{line or region!r} in the "
                                     "built-in table; give doublet={'splitting': eV, 'ratio': r}")
            ob = (split - d.splitting_window, split + d.splitting_window) if d.splitting_window > 0 else None
            sats.append(Satellite(name=d.name or partner_name(line or region), offset=split, ratio=ratio,
                                  offset_bounds=ob))
        peaks.append(Peak(name=c.name, shape=c.shape, center=c0, fwhm=c.fwhm, bounds=bounds, fixed=fixed,
                          init=init, satellites=sats, given=c0 if given else None,
                          given_window=c.center_window if given else None))
        info.append({"name": c.name, "prefix": prefix_of(c.name), "shape": c.shape, "doublet_ratio": ratio,
                     "n_sat": len(sats)})
        for ref in (c.link_fwhm, c.offset_from and c.offset_from.component, c.area_ratio and c.area_ratio.component):
            if ref is not None and ref not in names:
                raise ParameterError(f"model[{region!r}] {c.name}: refers to unknown component {ref!r}")
        if c.link_fwhm:
            ref = next(x for x in comps if x.name == c.link_fwhm)
            if _fwhm_param(ref.shape) != fp:
                raise ParameterError(f"model[{region!r}] {c.name}: cannot link the FWHM of a {c.shape} to a {ref.shape}")
            links.setdefault((fp, c.link_fwhm), [c.link_fwhm]).append(c.name)
        if c.offset_from:
            exprs[f"{c.name}.center"] = f"{{{c.offset_from.component}.center}} + ({c.offset_from.offset!r})"
        if c.area_ratio:
            ref = next(x for x in comps if x.name == c.area_ratio.component)
            r = c.area_ratio.ratio
            inten = "height" if fp == "fwhm" else "amplitude"
            if inten == "height":
                root = {x.name: (x.link_fwhm or x.name) for x in comps}
                same_w = root[c.name] == root[ref.name]
                exprs[f"{c.name}.height"] = (f"{{{ref.name}.height}} * ({r!r})" if same_w else
                                             f"{{{ref.name}.height}} * ({r!r}) * {{{ref.name}.fwhm}} / {{{c.name}.fwhm}}")
            else:
                exprs[f"{c.name}.amplitude"] = f"{{{ref.name}.amplitude}} * ({r!r})"
    link_objs = [Link(param=p, peaks=list(dict.fromkeys(v))) for (p, _), v in links.items() if len(set(v)) > 1]
    return ModelSpec(peaks=peaks, baseline="none", links=link_objs, exprs=exprs), info


def area_expression(spec, info) -> dict[str, str]:
    """lmfit expressions ``<prefix>total_area`` (component + doublet partner) for every component.

    GL product lines have no closed-form area: their area is ``height x FWHM x g(m)`` with ``g`` computed
    once by quadrature for the (fixed) mixing; other shapes use their own closed form.
    """
    out = {}
    groups = spec.groups()
    for p, inf in zip(spec.peaks, info):
        terms = []
        for pre in groups[p.name]:
            if p.shape == "gl-product":
                g = gl_area_factor(p.init.get("mixing", 0.3))
                terms.append(f"{pre}height*{pre}fwhm*{g!r}")
            elif p.shape == "gl-sum":
                terms.append(f"{pre}height*{pre}fwhm*((1-{pre}mixing)*sqrt(pi/(4*log(2))) + {pre}mixing*pi/2)")
            else:
                terms.append(f"{pre}amplitude")
        out[inf["prefix"] + "total_area"] = " + ".join(terms)
    return out


def gl_area_factor(mixing: float) -> float:
    """Area of a GL(m) product line of unit height and unit FWHM (the shared registry's value)."""
    from ...fitting.lineshapes import gl_product_area_factor

    return gl_product_area_factor(mixing)
