"""AFM technique: height and modulus maps (levelling, roughness, protrusions, modulus statistics) and
moduli from force curves / force-volume maps (Hertz, Sneddon, DMT, JKR through the batch engine).

>>> import specproc as sp
>>> r = sp.afm.analyse("sample_data/afm/Li_vs_LiBH4.gwy")                          # doctest: +SKIP
>>> r.quantities["modulus.mean_Pa"], r.quantities["protrusions.density_per_um2"]    # doctest: +SKIP
>>> ds = sp.afm.fit_force_map(height_m, force_N, tip_radius_m=10e-9)               # doctest: +SKIP
>>> sp.afm.compare(r_ref, r_b).value                                                # doctest: +SKIP

Heavy libraries (xarray, scipy, lmfit, gwyfile, afmformats) are imported inside functions.
"""
from __future__ import annotations

from ...core.technique import Technique

TITLE = "Atomic force microscopy"

#: the technique plugin (entry point ``afm = "specproc.techniques.afm:technique"``): the one declaration
#: of its title, readers, processors, command, report section and comparable quantities
technique = Technique(
    name="afm", title=TITLE,
    description=("Height and modulus maps (levelling, roughness, protrusions, modulus statistics) and "
                 "moduli from force curves"),
    readers=("afm-force", "afmformats-export", "gwyddion", "jpk-image", "jpk-qi-series", "nanonis", "nanoscope"),
    processors=("afm.analyse_map", "afm.fit_force_map"),
    api="specproc.techniques.afm",
    add_cli="specproc.techniques.afm.cli:add_cli",
    report_section="specproc.techniques.afm.report:report_section",
    quantities=(
        ("modulus.mean_Pa", "Pa", "mean elastic modulus over the valid pixels or curves"),
        ("modulus.median_Pa", "Pa", "median elastic modulus"),
        ("roughness.<Sa|Sq|Sz>_m", "m", "areal roughness parameters of the levelled height map"),
        ("protrusions.density_per_um2", "1/um^2", "protrusions per square micrometre"),
        ("protrusions.mean_height_m", "m", "mean protrusion height"),
    ))
add_cli = technique.add_cli                 # ``add_cli(subparsers)``: the ``specproc afm`` command
report_section = technique.report_section   # ``report_section(results)`` -> ReportSection


__all__ = ["analyse", "fit_force_map", "compare", "compare_moduli", "TITLE", "technique", "add_cli", "report_section"]


def _measurement(m, **read_options):
    if isinstance(m, (str, bytes)) or hasattr(m, "__fspath__"):
        from ...io import read

        return read(m, **read_options)
    return m


def analyse(m, **params):
    """Analyse an AFM map (or force map): levelling, roughness, protrusions, modulus statistics.

    Parameters
    ----------
    m : Measurement or path
        A map measurement (``sp.read`` of a .gwy / .sxm / NetCDF map) or a force map.
    **params
        :class:`~specproc.techniques.afm.processors.MapParams` fields (``level="rows"``,
        ``channel=...``, ``model=...``, ``tip_radius_m=...``...).

    Returns
    -------
    Result
        ``afm.analyse_map`` result (quantities ``roughness.*``, ``protrusions.*``, ``modulus.*``).
    """
    from ... import plugins

    proc = plugins.get("processors", "afm.analyse_map")
    if isinstance(m, (list, tuple)):
        return proc([_measurement(x) for x in m], **params)
    return proc(_measurement(m), **params)


def fit_force_map(height_m, force_N=None, model: str = "hertz-paraboloid", tip_radius_m: float | None = None,
                  poisson_ratio: float = 0.5, **kwargs):
    """Fit every approach curve of a force map.

    Two forms:

    * arrays: ``fit_force_map(height_m, force_N, model=..., tip_radius_m=..., poisson_ratio=0.5)``
      with arrays of shape ``(ny, nx, n_points)`` (height in m, decreasing towards the sample; force
      in N) -> :class:`xarray.Dataset` with ``E_Pa``, ``contact_point_m``, ``flag``, ``good``...
      (see :func:`specproc.techniques.afm.force.fit_force_map` for every option);
    * a force-map measurement (or path): ``fit_force_map(m, model=..., tip_radius_m=...)`` -> the
      same Dataset (``Result.data`` of the ``afm.fit_force_map`` processor; the cantilever spring
      constant of the file puts the curves on the tip-position axis).
    """
    if force_N is None:
        from ... import plugins

        m = _measurement(height_m)
        r = plugins.get("processors", "afm.fit_force_map")(m, model=model, tip_radius_m=tip_radius_m,
                                                             poisson_ratio=poisson_ratio, **kwargs)
        return r.data
    from .force import fit_force_map as _f

    return _f(height_m, force_N, model=model, tip_radius_m=tip_radius_m, poisson_ratio=poisson_ratio, **kwargs)


def compare(reference, sample, quantity: str = "modulus.mean_Pa", op: str = "ratio"):
    """``op`` of a quantity between two AFM results (default the modulus ratio ``sample / reference``).

    A thin wrapper of :func:`specproc.evidence.compare` (reference first, as every technique's
    comparison); returns its ``Comparison`` (first-order stderr, None when an input has no error bar).

    Raises
    ------
    ParameterError
        A non-AFM input, a result without ``quantity``, or both results of the same sample.
    """
    from ...core.errors import ParameterError
    from ...core.result import Result
    from ...evidence import compare as _compare

    for r in (reference, sample):
        if not isinstance(r, Result) or r.technique != "afm":
            raise ParameterError(f"afm.compare needs AFM Results, got {type(r).__name__}")
        if quantity not in r.quantities:
            raise ParameterError(f"result of {r.sample!r} has no {quantity}", r.source)
    if sample.sample == reference.sample:
        raise ParameterError(f"both results are sample {sample.sample!r}: name the samples (read(..., sample=...))")
    return _compare(reference, sample, quantity=quantity, op=op)


def compare_moduli(reference, sample, quantity: str = "modulus.mean_Pa"):
    """Deprecated: :func:`compare` gives the ratio; this wraps it in the earlier ``Result``
    (quantity ``modulus.ratio`` and a one-row table)."""
    import warnings

    import pandas as pd

    from ...core.result import Quantity, Result

    from ...core.errors import ParameterError

    warnings.warn("sp.afm.compare_moduli is deprecated: use sp.afm.compare(reference, sample)", DeprecationWarning,
                  stacklevel=2)
    try:
        c = compare(reference, sample, quantity, op="ratio")
    except ParameterError as exc:  # named by the function the caller called
        raise ParameterError(exc.reason.replace("afm.compare", "compare_moduli"), exc.path) from None
    row = {"sample": sample.sample, "reference": reference.sample, "quantity": quantity, "ratio": c.value,
           "ratio_stderr": c.stderr, "sample_value": c.sample_value, "sample_stderr": c.sample_stderr,
           "reference_value": c.reference_value, "reference_stderr": c.reference_stderr}
    warns = [] if c.stderr is not None else ["ratio has no uncertainty: an input has no standard error"]
    return Result(processor="afm.compare", technique="afm", sample=f"{sample.sample} vs {reference.sample}",
                  quantities={"modulus.ratio": Quantity(c.value, c.stderr, "",
                                                        f"{quantity} {sample.sample} / {reference.sample}",
                                                        component="modulus", property="ratio")},
                  tables={"comparison": pd.DataFrame([row])}, main_table="comparison",
                  inputs=reference.inputs + sample.inputs, warnings=warns, meta={"quantity": quantity})
