"""NMR technique: FID processing, deconvolution (sidebands, quadrupolar sites), comparisons.

>>> import specproc as sp
>>> m = sp.read("sample_data/nmr/LiBH4_11B/1")                       # doctest: +SKIP
>>> fit = sp.nmr.deconvolve(m, peaks={"BH4": -44.3})                # doctest: +SKIP
>>> fit.table, fit.quantities["BH4.area_fraction"]                   # doctest: +SKIP

Heavy libraries (lmfit, nmrglue, pybaselines, mrsimulator) are imported inside functions.
"""
from __future__ import annotations

# bound eagerly (light module) so the submodule name never shadows the functions
from .compare import compare, compare_many  # noqa: E402

from ...core.technique import Technique

TITLE = "Solid-state NMR"

#: the technique plugin (entry point ``nmr = "specproc.techniques.nmr:technique"``): the one declaration
#: of its title, readers, processors, command, report section and comparable quantities
technique = Technique(
    name="nmr", title=TITLE,
    description=("FID processing and deconvolution of solid-state spectra (spinning sidebands, quadrupolar "
                 "sites), comparisons"),
    readers=("bruker", "jcampdx-nmr", "nmr-text", "spinsolve", "varian"),
    processors=("nmr.deconvolve", "nmr.process"),
    api="specproc.techniques.nmr",
    add_cli="specproc.techniques.nmr.cli:add_cli",
    report_section="specproc.techniques.nmr.report:report_section",
    quantities=(
        ("<peak>.center_ppm", "ppm", "isotropic shift of a fitted site"),
        ("<peak>.fwhm_ppm", "ppm", "full width at half maximum of a site"),
        ("<peak>.area", "", "integrated area of a site (intensity x ppm)"),
        ("<peak>.area_fraction", "", "share of a site in the total fitted area"),
        ("<peak>.cq_mhz", "MHz", "quadrupolar coupling constant of a quadrupolar site"),
        ("<peak>.eta", "", "quadrupolar asymmetry of a quadrupolar site"),
    ))
add_cli = technique.add_cli                 # ``add_cli(subparsers)``: the ``specproc nmr`` command
report_section = technique.report_section   # ``report_section(results)`` -> ReportSection


__all__ = ["process", "deconvolve", "fit_fields", "compare", "compare_many", "autophase", "TITLE", "technique",
           "add_cli", "report_section"]


def process(fid, **kwargs):
    """Process an FID into a spectrum; see :func:`specproc.techniques.nmr.processing.process`."""
    from .processing import process as _p

    return _p(fid, **kwargs)


def deconvolve(m, peaks=None, **kwargs):
    """Deconvolve a spectrum (or FID); see :mod:`specproc.techniques.nmr.deconvolution`.

    Keyword arguments are the fields of
    :class:`~specproc.techniques.nmr.processors.DeconvolveParams`, validated once. A list /
    tuple of measurements is fitted as a stack through the batch engine: a list of Results (or
    of the errors of the spectra that failed) comes back.
    """
    from .processors import Deconvolve

    return Deconvolve()(list(m) if isinstance(m, tuple) else m, peaks=peaks, **kwargs)


def fit_fields(spectra, peaks, **kwargs):
    """Fit spectra of one sample at several B0 fields jointly (δiso and each model's own site
    parameters shared — CQ, η, σ, δaniso...; areas and widths per field; each field at its own MAS rate); see
    :func:`specproc.techniques.nmr.multifield.fit_fields`."""
    from .multifield import fit_fields as _f

    return _f(spectra, peaks, **kwargs)


def autophase(spec, **kwargs):
    from .processing import autophase as _a

    return _a(spec, **kwargs)
