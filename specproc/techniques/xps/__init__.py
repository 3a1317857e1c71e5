"""XPS technique: charge referencing, constrained fits on every etch level, atomic %, depth profiles.

>>> import specproc as sp
>>> m = sp.read("sample_data/xps/Li_vs_LiBH4-70LiNBH.vms")                    # doctest: +SKIP
>>> r = sp.xps.fit_profile(m, model={"N 1s": [{"name": "Li3N", "center": 398.6}]},
...                        interphase=["Li3N"])                                 # doctest: +SKIP
>>> r.quantities["interphase.thickness_nm"], r.tables["components"]           # doctest: +SKIP
>>> sp.xps.fit_region(m, "N 1s", [{"name": "Li3N", "center": 398.6}], level=0)  # doctest: +SKIP

A measurement holds every region and level (dims ``level``, ``channel``; see docs/xps.md); heavy
libraries are imported inside functions.
"""
from __future__ import annotations

from ...core.technique import Technique

TITLE = "XPS"

#: the technique plugin (entry point ``xps = "specproc.techniques.xps:technique"``): the one declaration
#: of its title, readers, processors, command, report section and comparable quantities
technique = Technique(
    name="xps", title=TITLE,
    description=("Charge referencing, constrained fits at every etch level, atomic %, depth profiles and "
                 "interphase thickness"),
    readers=("avantage", "casaxps-text", "phi-spe", "specs-xy", "vamas"), processors=("xps.fit_profile",),
    api="specproc.techniques.xps",
    add_cli="specproc.techniques.xps.cli:add_cli",
    report_section="specproc.techniques.xps.report:report_section",
    explain="specproc.techniques.xps.report:explain",
    quantities=(
        ("<region>/<component>.be_eV", "eV", "binding energy of a fitted component"),
        ("<region>/<component>.fwhm_eV", "eV", "width of a fitted component"),
        ("species(<name>).present", "", "detection call for a chemical species (1 present, 0 absent)"),
        ("species(<name>).max_atomic_percent", "%", "largest atomic % of a species over the depth profile"),
        ("interphase.thickness_nm", "nm", "thickness of the interphase from the depth profile"),
        ("charge_shift_eV", "eV", "charge-referencing shift applied"),
    ))
add_cli = technique.add_cli                 # ``add_cli(subparsers)``: the ``specproc xps`` command
report_section = technique.report_section   # ``report_section(results)`` -> ReportSection


__all__ = ["fit_profile", "fit_region", "region", "charge_shift", "TITLE", "technique", "add_cli", "report_section"]


def fit_profile(m, model=None, **kwargs):
    """Fit every region at every etch level and quantify; see :func:`specproc.techniques.xps.analysis.fit_profile`.

    Goes through the ``xps.fit_profile`` processor, so parameters are validated like CLI / YAML ones.
    A list of measurements gives a list of Results (or the error of each failed input).
    """
    from ... import plugins

    return plugins.get("processors", "xps.fit_profile")(m, model=model, **kwargs)


def fit_region(m, region, components=None, **kwargs):
    """Fit one region at one level; see :func:`specproc.techniques.xps.analysis.fit_region`."""
    from .analysis import fit_region as _f

    return _f(m, region, components, **kwargs)


def region(m, name):
    """One region as a DataArray ``("level", "binding_energy")`` (file energies, no charge correction)."""
    import numpy as np
    import xarray as xr

    from .fitting import check_xps, region_data

    m = check_xps(m)
    x, Y = region_data(m, name)
    return xr.DataArray(Y, dims=("level", "binding_energy"),
                        coords={"level": m.coords["level"].values, "binding_energy": ("binding_energy", x,
                                                                                      {"units": "eV"}),
                                **({"etch_time": ("level", np.asarray(m.coords["etch_time"].values), {"units": "s"})}
                                   if "etch_time" in m.coords else {})},
                        name=name, attrs={"units": m.attrs.get("units"), "sample": m.attrs.get("sample")})


def charge_shift(m, ref="C 1s=284.8", model=None, **kwargs):
    """Charge shift (eV) from a reference line; see :func:`specproc.techniques.xps.fitting.charge_reference`."""
    from .fitting import charge_reference, check_xps, parse_charge_ref
    from .model import parse_template

    return charge_reference(check_xps(m), parse_charge_ref(ref), parse_template(model), **kwargs)
