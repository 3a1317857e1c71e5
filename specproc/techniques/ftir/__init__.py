"""FTIR technique: band fitting with errors, atmospheric CO2/H2O masked or modelled, band shifts.

>>> import specproc as sp
>>> m = sp.read("sample_data/ftir/LiBH4.jdx")                                   # doctest: +SKIP
>>> fit = sp.ftir.fit_bands(m, region=(2050, 2550), bands={"BH_stretch": 2300})  # doctest: +SKIP
>>> fit.quantities["BH_stretch.center_cm1"]                                      # doctest: +SKIP
>>> sp.ftir.compare(fit, fit_confined, "BH_stretch")                               # doctest: +SKIP

Readers: Bruker OPUS (``opus``), JCAMP-DX IR (``jcampdx-ir``), SPC (``spc``), CSV/text (``ir-text``).
Heavy libraries (lmfit, pybaselines, scipy) are imported inside functions.
"""
from __future__ import annotations

from ...core.technique import Technique

TITLE = "FTIR"

#: the technique plugin (entry point ``ftir = "specproc.techniques.ftir:technique"``): the one declaration
#: of its title, readers, processors, command, report section and comparable quantities
technique = Technique(
    name="ftir", title=TITLE,
    description="Band fits with errors, atmospheric CO2/H2O masked or modelled, band shifts",
    readers=("ir-text", "jcampdx-ir", "omnic", "opus", "spc"), processors=("ftir.fit_bands",),
    api="specproc.techniques.ftir",
    add_cli="specproc.techniques.ftir.cli:add_cli",
    report_section="specproc.techniques.ftir.report:report_section",
    quantities=(
        ("<band>.center_cm1", "cm-1", "band position"),
        ("<band>.fwhm_cm1", "cm-1", "band full width at half maximum"),
        ("<band>.area", "cm-1", "integrated band area (absorbance x cm-1)"),
        ("<band>.height", "", "band height (absorbance)"),
    ))
add_cli = technique.add_cli                 # ``add_cli(subparsers)``: the ``specproc ftir`` command
report_section = technique.report_section   # ``report_section(results)`` -> ReportSection


__all__ = ["fit_bands", "compare", "shift", "to_absorbance", "to_transmittance", "TITLE", "technique", "add_cli",
           "report_section"]


def fit_bands(m, bands=None, **kwargs):
    """Fit the bands of one FTIR spectrum, or of a list of spectra (batched).

    Parameters
    ----------
    m : Measurement or list of Measurements
        FTIR spectra (absorbance, or transmittance converted to absorbance).
    bands : list of float, dict {name: cm-1}, list of band dicts, optional
        Starting band centres (cm-1). None: bands are found automatically in the region
        (rules in ``docs/ftir.md``).
    **kwargs
        ``region=(lo, hi)`` cm-1, ``n_peaks``, ``max_peaks`` (``n_bands``, ``max_bands`` still accepted), ``shape`` (``pseudo-voigt``),
        ``baseline`` (``linear``; ``none|constant|quadratic`` fitted in the model, or
        ``asls|arpls|modpoly|rubberband`` from pybaselines), ``baseline_params``,
        ``atmosphere`` (``auto``: mask, but model CO2 overlapping a band / ``model`` / ``mask`` /
        ``none``), ``saturation_limit``, ``center_window``, ``snr``, ``compare_baseline`` (a second
        baseline fitted beside the first) — the fields of
        :class:`~specproc.techniques.ftir.processors.FitBandsParams`.

    Returns
    -------
    Result or list
        Quantities ``<band>.center_cm1``, ``.fwhm_cm1``, ``.area`` (absorbance x cm-1),
        ``.height`` (absorbance), each with its standard error (None at a bound); table
        ``bands`` with the peak maximum and centroid cross-checks; ``atmosphere`` (modelled CO2,
        never a band) and ``baseline_comparison`` tables when present; warnings. A list input gives a
        list (one Result, or the error of that spectrum, per input).
    """
    from .processors import FitBands

    return FitBands()(m, peaks=bands, **kwargs)


def compare(reference, sample, band: str, band_sample: str | None = None, op: str = "difference"):
    """Change of a named band's centre from fit ``reference`` to fit ``sample`` (``sample - reference``,
    cm-1, by default): a thin wrapper of :func:`specproc.evidence.compare` (reference first).

    Returns the :class:`~specproc.evidence.compare.Comparison` (``value``, ``stderr``, ``unit``);
    ``band_sample`` is the band's name in ``sample`` when it differs.
    """
    from ...core.errors import ParameterError
    from ...evidence.compare import compare as _compare

    for r in (reference, sample):
        if getattr(r, "technique", None) != "ftir":
            raise ParameterError(f"compare needs FTIR band-fit Results, got {type(r).__name__}")
    name_s = band_sample or band
    for r, nm in ((reference, band), (sample, name_s)):
        if f"{nm}.center_cm1" not in r.quantities:
            have = sorted({q.component for q in r.quantities.values() if q.component is not None})
            raise ParameterError(f"fit of {r.sample!r} has no band {nm!r} (bands: {have})", r.source)
    return _compare(reference, sample, quantity=f"{name_s}.center_cm1", op=op,
                    quantity_reference=f"{band}.center_cm1")


def shift(a, b, band: str, band_b: str | None = None, op: str = "difference"):
    """Deprecated name of :func:`compare` (same argument order: ``a`` the reference)."""
    import warnings

    warnings.warn("sp.ftir.shift is deprecated: use sp.ftir.compare(reference, sample, band)", DeprecationWarning,
                  stacklevel=2)
    return compare(a, b, band, band_b, op)


def to_absorbance(t):
    """Absorbance ``-log10 T`` of a transmittance fraction (NaN where T <= 0)."""
    from .processing import to_absorbance as _f

    return _f(t)


def to_transmittance(a):
    """Transmittance fraction ``10**-A``."""
    from .processing import to_transmittance as _f

    return _f(a)
