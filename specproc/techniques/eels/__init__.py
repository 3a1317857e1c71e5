"""EELS technique: near-edge fits (π* energy, width, intensity, π*/σ*) of spectra and spectrum images.

>>> import specproc as sp
>>> m = sp.read("sample_data/eels/LiBH4_BK.msa")                          # doctest: +SKIP
>>> fit = sp.eels.fit_edge(m, edge="B K")                                # doctest: +SKIP
>>> fit.quantities["pi_star.energy_eV"]                                  # doctest: +SKIP
>>> si = sp.eels.fit_edge(sp.read("sample_data/eels/SI_LiBH4-70LiNBH_16x16.hspy"))   # doctest: +SKIP
>>> si.data.pi_star_energy_eV                                            # doctest: +SKIP  (y, x) map

Readers: Gatan DM3/DM4 (``gatan``), EMSA/MSA (``msa``), HyperSpy .hspy/.zspy (``hspy``), all via
RosettaSciIO. Heavy libraries (lmfit, exspy/HyperSpy, RosettaSciIO) are imported inside functions.
"""
from __future__ import annotations

from ...core.technique import Technique

TITLE = "EELS"

#: the technique plugin (entry point ``eels = "specproc.techniques.eels:technique"``): the one declaration
#: of its title, readers, processors, command, report section and comparable quantities
technique = Technique(
    name="eels", title=TITLE,
    description=("Near-edge fits of core-loss edges (pi* energy, width, intensity, pi*/sigma*) in spectra "
                 "and spectrum images"),
    readers=("gatan", "hyperspy", "msa"), processors=("eels.fit_edge",),
    api="specproc.techniques.eels",
    add_cli="specproc.techniques.eels.cli:add_cli",
    report_section="specproc.techniques.eels.report:report_section",
    quantities=(
        ("<feature>.energy_eV", "eV", "energy of a near-edge feature (e.g. pi_star)"),
        ("<feature>.fwhm_eV", "eV", "width of a near-edge feature"),
        ("<feature>.intensity", "counts eV", "integrated intensity of a near-edge feature"),
        ("edge.onset_eV", "eV", "edge onset energy"),
        ("pi_sigma_ratio", "", "pi* to sigma* intensity ratio"),
    ))
add_cli = technique.add_cli                 # ``add_cli(subparsers)``: the ``specproc eels`` command
report_section = technique.report_section   # ``report_section(results)`` -> ReportSection


__all__ = ["fit_edge", "compare", "shift", "TITLE", "technique", "add_cli", "report_section"]


def fit_edge(m, edge: str = "B K", **kwargs):
    """Fit the near-edge structure of ``edge`` in a spectrum, a spectrum image, or a list of them.

    Parameters
    ----------
    m : Measurement or list of Measurements
        EELS spectrum (``("energy",)``, eV) or spectrum image (``("y", "x", "energy")``).
    edge : str
        ``"B K"`` (default), ``"C K"``, ``"N K"`` or ``"O K"``.
    **kwargs
        ``background`` (``power_law``/``exponential``/``polynomial``), ``background_window=(lo, hi)``,
        ``region`` (fitted range, eV; ``fit_window`` still accepted), ``lowloss`` (path or measurement), ``energy_offset_eV``, ``deconvolve``,
        ``warm_start``, ``snr`` (``min_edge_snr`` still accepted) — the fields of
        :class:`~specproc.techniques.eels.processors.FitEdgeParams`.

    Returns
    -------
    Result or list
        Quantities ``pi_star.energy_eV``, ``pi_star.fwhm_eV``, ``pi_star.intensity``,
        ``sigma_star.energy_eV``, ``sigma_star.intensity``, ``pi_sigma_ratio``, ``edge.onset_eV``
        (stderr None at a bound); for a spectrum image ``Result.data`` holds the maps (see
        :func:`specproc.techniques.eels.fit.fit_edge`).
    """
    from .processors import FitEdge

    return FitEdge()(m, edge=edge, **kwargs)


def compare(reference, sample, quantity: str = "pi_star.energy_eV", op: str = "difference"):
    """``op`` of a quantity between two fits (default the π* shift ``sample - reference``, eV).

    A thin wrapper of :func:`specproc.evidence.compare` (reference first; uncorrelated first-order
    errors); returns its ``Comparison`` (``value`` None with a ``reason`` when a side has no value)."""
    from ...evidence.compare import compare as _compare

    return _compare(reference, sample, quantity=quantity, op=op)


def shift(reference, sample, quantity: str = "pi_star.energy_eV"):
    """Deprecated name of :func:`compare` (same arguments)."""
    import warnings

    warnings.warn("sp.eels.shift is deprecated: use sp.eels.compare(reference, sample)", DeprecationWarning,
                  stacklevel=2)
    return compare(reference, sample, quantity)
