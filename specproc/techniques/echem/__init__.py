"""Electrochemistry: impedance (circuits, KK, conductivity, Arrhenius), polarisation, cycling.

>>> import specproc as sp
>>> m = sp.read("sample_data/echem/LiBH4-70LiNBH_EIS_Tseries.mpt")              # doctest: +SKIP
>>> r = sp.echem.fit_eis(m, thickness_cm=0.1, area_cm2=0.785, step_test_C=110)   # doctest: +SKIP
>>> r.quantities["T(30C).conductivity_S_cm"], r.quantities["arrhenius.Ea_eV"]     # doctest: +SKIP
>>> sp.echem.transference(sp.read("sample_data/echem/LiBH4-70LiNBH_BV_30C"))     # doctest: +SKIP
>>> sp.echem.ccd(sp.read("sample_data/echem/LiBH4-70LiNBH_CCD.mpt"), area_cm2=0.785)   # doctest: +SKIP

Readers: EC-Lab ``.mpt`` (``eclab-mpt``) and ``.mpr`` (``eclab-mpr``, galvani: optional extra
``echem-mpr``), Gamry ``.DTA`` (``gamry-dta``), ZPlot/ZView ``.z`` (``zview``), CSV and NOVA text
(``echem-text``), folders of them (``echem-folder``: a temperature series, or impedance -
chronoamperometry - impedance). One processor, ``echem.analyse``; the analyses live in
:mod:`.eis`, :mod:`.activation` (Arrhenius), :mod:`.polarisation`, :mod:`.cycling`; the circuit fit and the
KK test are the toolkit's (:mod:`specproc.fitting.cnls`, :mod:`specproc.fitting.kramers_kronig`).
"""
from __future__ import annotations

from ...core.technique import Technique

TITLE = "Electrochemistry"

#: the technique plugin (entry point ``echem = "specproc.techniques.echem:technique"``): the one declaration
#: of its title, readers, processors, command, report section and comparable quantities
technique = Technique(
    name="echem", title=TITLE,
    description="Impedance (circuits, Kramers-Kronig, conductivity, Arrhenius), DC polarisation and cycling",
    readers=("echem-folder", "echem-text", "eclab-mpr", "eclab-mpt", "gamry-dta", "zview"),
    processors=("echem.analyse",),
    api="specproc.techniques.echem",
    add_cli="specproc.techniques.echem.cli:add_cli",
    report_section="specproc.techniques.echem.report:report_section",
    quantities=(
        ("conductivity_S_cm", "S/cm", "ionic conductivity of one impedance spectrum"),
        ("T(<T>C).conductivity_S_cm", "S/cm", "ionic conductivity at one temperature of a series"),
        ("arrhenius.Ea_eV", "eV", "activation energy of the Arrhenius fit"),
        ("transference_number", "", "Bruce-Vincent lithium transference number"),
        ("electronic_conductivity_S_cm", "S/cm", "electronic conductivity from a blocking-electrode polarisation"),
        ("ccd_mA_cm2", "mA/cm^2", "critical current density of stepped cycling"),
    ))
add_cli = technique.add_cli                 # ``add_cli(subparsers)``: the ``specproc echem`` command
report_section = technique.report_section   # ``report_section(results)`` -> ReportSection


__all__ = ["fit_eis", "arrhenius", "transference", "ccd", "analyse", "TITLE", "technique", "add_cli", "report_section"]


def _run(m, analysis: str, kwargs: dict):
    from ...core.errors import ParameterError
    from .processors import Analyse

    try:
        return Analyse()(m, analysis=analysis, **kwargs)
    except ParameterError as exc:
        src = None if isinstance(m, list) else (getattr(m, "attrs", {}) or {}).get("provenance", {}).get("source")
        if exc.path is None and src:
            raise ParameterError(exc.reason, src) from None
        raise


def analyse(m, **kwargs):
    """Whatever the measurement is (spectrum, series, polarisation, cycling): see :class:`.processors.AnalyseParams`."""
    return _run(m, kwargs.pop("analysis", "auto"), kwargs)


def fit_eis(m, circuit: str = "R0-p(R1,CPE1)-CPE2", **kwargs):
    """Fit an equivalent circuit to an impedance spectrum, a series, or a list of spectra.

    Parameters
    ----------
    m : Measurement or list
        Impedance spectrum ``("frequency",)`` or series ``("spectrum", "frequency")``.
    circuit : str
        impedance.py syntax, e.g. ``"R0-p(R1,CPE1)-CPE2"``.
    **kwargs
        ``thickness_cm``, ``thickness_cm_stderr``, ``area_cm2``, ``area_cm2_stderr``, ``weighting``
        (``modulus``/``proportional``/``unit``), ``bulk``, ``freq_range``, ``kk_threshold_pct``,
        ``temperature_C``, ``step_test_C`` (fields of :class:`.processors.AnalyseParams`).

    Returns
    -------
    Result or list
        Quantities ``circuit.<param>``, ``R_bulk_ohm``, ``conductivity_S_cm``, ``kk.valid``...; a
        series prefixes them ``T(30C).`` (or ``cycle(3).``) and adds ``arrhenius.Ea_eV``,
        ``transition.present``, ``step(110C).jump_decades``.
    """
    return _run(m, "eis", dict(kwargs, circuit=circuit))


def transference(m, **kwargs):
    """DC polarisation: Bruce–Vincent ``transference_number`` (symmetric cell, impedance before and
    after in the experiment folder or ``R0_ohm``/``Rss_ohm``) or, with ``cell="blocking"``, the
    ``electronic_conductivity_S_cm`` (needs ``thickness_cm``, ``area_cm2``)."""
    return _run(m, "polarisation", kwargs)


def ccd(m, **kwargs):
    """Galvanostatic cycling: ``ccd_mA_cm2`` of stepped currents (rule in :mod:`.cycling`), or the
    overpotential over a constant-current run; needs ``area_cm2`` (or the file's)."""
    return _run(m, "cycling", kwargs)


def arrhenius(x, sigma=None, sigma_stderr=None, step_test_C=None):
    """Arrhenius analysis (:func:`.activation.arrhenius`) of temperatures and conductivities, of a
    list of single-spectrum Results (their ``temperature_C`` and ``conductivity_S_cm``), or of a
    series Result (its per-temperature conductivities)."""
    from .activation import arrhenius as _arr

    if sigma is not None:
        return _arr(x, sigma, sigma_stderr, step_test_C=step_test_C)
    rs = x if isinstance(x, list) else [x]
    T, s, se = [], [], []
    for r in rs:
        if r.meta.get("kind") == "eis_series":
            for e in r.meta["entries"]:
                T.append(e["temperature_C"])
                s.append(e["conductivity_S_cm"])
                se.append(e["conductivity_S_cm_stderr"])
        else:
            qv = r.quantities.get("conductivity_S_cm")
            T.append(r.meta.get("temperature_C"))
            s.append(qv.value if qv else None)
            se.append(qv.stderr if qv else None)
    import numpy as np

    f = np.array([np.nan if v is None else v for v in T], float)
    return _arr(f, np.array([np.nan if v is None else v for v in s], float),
                np.array([np.nan if v is None else v for v in se], float), step_test_C=step_test_C)
