"""XRD technique: XRDML / 2θ text patterns -> peaks, d-spacings, phases, lattice, size, texture.

>>> import specproc as sp
>>> m = sp.read("sample_data/xrd/LiBH4_as_received.xrdml")           # doctest: +SKIP
>>> r = sp.xrd.analyse(m, phases=["LiBH4", "LiNH2BH3"])                # doctest: +SKIP
>>> r.quantities["hkl(101).d_nm"], r.quantities["lattice.a_nm"]       # doctest: +SKIP

Heavy libraries (lmfit, pybaselines, xrayutilities) are imported inside functions.
"""
from __future__ import annotations

from ...core.technique import Technique

TITLE = "X-ray diffraction"

#: the technique plugin (entry point ``xrd = "specproc.techniques.xrd:technique"``): the one declaration
#: of its title, readers, processors, command, report section and comparable quantities
technique = Technique(
    name="xrd", title=TITLE,
    description=("Peaks, d-spacings, phase identification, lattice refinement, crystallite size and texture "
                 "of diffraction patterns"),
    readers=("bruker-xrd", "rigaku-ras", "spec", "xrd-text", "xrdml"), processors=("xrd.analyse", "xrd.fit_series"),
    api="specproc.techniques.xrd",
    add_cli="specproc.techniques.xrd.cli:add_cli",
    report_section="specproc.techniques.xrd.report:report_section",
    explain="specproc.techniques.xrd.report:explain",
    quantities=(
        ("hkl(<h k l>).d_nm", "nm", "d-spacing of an indexed reflection"),
        ("hkl(<h k l>).two_theta_deg", "deg", "position of an indexed reflection"),
        ("hkl(<h k l>).fwhm_deg", "deg", "width of an indexed reflection"),
        ("phase(<name>).present", "", "search-match call for a reference phase (1 present, 0 absent)"),
        ("lattice.<a|b|c>_nm", "nm", "refined cell parameter of the primary phase"),
        ("lattice.volume_nm3", "nm^3", "refined cell volume of the primary phase"),
        ("crystallite_size_nm", "nm", "Scherrer crystallite size"),
        ("amorphous_fraction", "", "share of the pattern area not in crystalline reflections"),
    ))
add_cli = technique.add_cli                 # ``add_cli(subparsers)``: the ``specproc xrd`` command
report_section = technique.report_section   # ``report_section(results)`` -> ReportSection


__all__ = ["analyse", "fit_peaks", "identify_phases", "refine_lattice", "fit_whole_pattern", "compare", "fit_series",
           "fit_whole_pattern_series", "calibrate", "references", "TITLE", "technique", "add_cli", "report_section"]


def analyse(m, **params):
    """Full analysis of one pattern (or a list) through the ``xrd.analyse`` processor.

    Keyword parameters are those of :class:`~specproc.techniques.xrd.processors.AnalyseParams`
    (``references=[cif, ...]``, ``phases=[...]``, ``wavelength_nm``, ``zero_shift_deg``, ``caglioti``...).
    """
    from .processors import AnalysePattern

    return AnalysePattern()(m, **params)


def fit_peaks(m, *, wavelength_nm=None, kalpha2=True, shape="pseudo-voigt", prominence_sigma=5.0,
              background_window_deg=1.5, peaks=None, zero_shift_deg=0.0):
    """Peak search and Kα1/Kα2-doublet profile fits of one pattern (shared ModelSpec, Kα2 as a Satellite).

    Returns
    -------
    pandas.DataFrame
        One row per significant reflection (the rule of :mod:`~specproc.techniques.xrd.peaks`):
        ``two_theta_deg``, ``d_nm`` (Bragg, Kα1), ``fwhm_deg``, ``area``, their stderrs (NaN for a
        parameter at a bound), ``at_bound``, ``height``, ``noise`` (local SD), ``height_sigma``,
        ``area_sigma``; ``df.attrs["warnings"]`` lists the assumed wavelength, at-bound / poor-fit
        messages, rejected candidates, Kβ lines and unexplained signal.
    """
    import numpy as np
    import pandas as pd

    from .analysis import significance_warnings, wavelength_warnings, wavelengths
    from .peaks import check_pattern, fit_peaks_array, kbeta_for

    check_pattern(m)
    l1, ka2, _ = wavelengths(m, wavelength_nm, kalpha2)
    x = np.asarray(m.coords["two_theta"].values, float)
    y = np.asarray(m.values, float)
    sig = np.asarray(m.coords["intensity_sigma"].values, float) if "intensity_sigma" in m.coords else None
    if x[0] > x[-1]:
        x, y = x[::-1], y[::-1]
        sig = sig[::-1] if sig is not None else None
    acq = m.attrs.get("acquisition", {}) or {}
    kb = acq.get("kbeta_nm") if (acq.get("wavelength_nm") and abs(acq["wavelength_nm"] - l1) < 1e-6) else None
    r = fit_peaks_array(x, y, wavelength_nm=l1, kalpha2=ka2, shape=shape, prominence_sigma=prominence_sigma,
                        background_window_deg=background_window_deg, peaks=peaks, zero_shift_deg=zero_shift_deg,
                        source=m.attrs.get("provenance", {}).get("source"), sigma=sig, kbeta_nm=kb or kbeta_for(l1))
    df = pd.DataFrame([{k: v for k, v in p.items() if not k.startswith("_")} for p in r["peaks"]])
    df.attrs["warnings"] = (wavelength_warnings(m, wavelength_nm, kalpha2) + r["warnings"] + r["errors"]
                            + significance_warnings(r))
    return df


def identify_phases(peaks, wavelength_nm, two_theta_range, *, phases=None, references=(), tolerance_deg=0.15,
                    max_strain=0.03, min_rel_intensity=5.0, threshold=0.6):
    """Search–match of a peak table (from :func:`fit_peaks`) against reference phases.

    Returns
    -------
    pandas.DataFrame
        ``name, space_group, score, present, coverage, explained, n_matched, n_strong, strain``.
    """
    import pandas as pd

    from .phases import identify
    from .references import get_references

    refs = get_references(phases, references)
    recs = peaks.to_dict(orient="records") if hasattr(peaks, "to_dict") else list(peaks)
    ms = identify(recs, refs, wavelength_nm, tuple(two_theta_range), tolerance_deg=tolerance_deg,
                  max_strain=max_strain, min_rel_intensity=min_rel_intensity, threshold=threshold)
    keys = ("name", "space_group", "system", "score", "present", "coverage", "explained", "n_matched",
            "n_strong", "strain")
    return pd.DataFrame([{k: mt[k] for k in keys} for mt in ms])


def refine_lattice(result, phase=None, *, refine_zero=False):
    """Refine the cell of ``phase`` (default: the primary phase) from an ``xrd.analyse`` Result's indexed peaks.

    Works from the Result's tables only (so also on a Result loaded from JSON or the pipeline cache):
    the ``peaks`` table (2θ, its stderr, phase, Miller indices ``h, k, l``, ``ambiguous``, ``overlap``)
    and the ``phases`` table (crystal system and the searched cell, the start of the refinement).

    Returns
    -------
    dict
        ``a_nm, b_nm, c_nm, volume_nm3`` with ``*_stderr``, ``n_reflections``, ``rms_deg``, ``zero_deg``.
    """
    import numpy as np

    from ...core.errors import ProcessingError
    from .lattice import CELL_PARAMS, refine_cell

    phase = phase or result.meta.get("primary_phase")
    if not phase:
        raise ProcessingError("no phase identified; nothing to refine", result.source)
    pk, ph = result.tables.get("peaks"), result.tables.get("phases")
    row = ph[ph["name"] == phase] if ph is not None and "cell_a_nm" in ph else []
    if len(row) == 0 or pk is None or "h" not in pk:
        raise ProcessingError(f"phase {phase!r} was not analysed in this result", result.source)
    row = row.iloc[0]
    if row["system"] not in CELL_PARAMS:
        raise ProcessingError(f"lattice refinement does not support the {row['system']} system", result.source)
    mine = pk[(pk["phase"] == phase) & ~pk["ambiguous"].astype(bool) & pk["h"].notna()]
    free = mine[~mine["overlap"].astype(bool)]  # as in analyse: other phases' lines excluded
    if len(free) >= len(CELL_PARAMS[row["system"]]) + 2 + int(refine_zero):
        mine = free
    hkl = mine[["h", "k", "l"]].to_numpy(dtype=float)
    return refine_cell(hkl, mine["two_theta_deg"].to_numpy(float),
                       mine["two_theta_stderr"].to_numpy(dtype=float, na_value=np.nan), system=row["system"],
                       start={f"{k}_nm": float(row[f"cell_{k}_nm"]) for k in "abc"},
                       wavelength_nm=result.meta["wavelength_nm"], refine_zero=refine_zero, source=result.source)


def fit_whole_pattern(m, phases, *, cells=None, references=(), wavelength_nm=None, kalpha2=True, caglioti=None,
                      refine_zero=True, refine_displacement=False, max_strain=0.05, n_chebyshev=6, asymmetry=False):
    """Whole-pattern fit (free reflection intensities, Pawley-type) of one pattern with the given phases.

    Parameters
    ----------
    m : xarray.DataArray
        XRD pattern (dim ``two_theta``, deg).
    phases : list of str
        Built-in phase names (and names of ``references`` CIFs).
    cells : dict, optional
        Starting cells in Å per phase (``{"LiBH4": {"a": 7.2, "b": 4.4, "c": 6.8}}``); default the reference
        cell. The fit moves each free parameter within ±``max_strain`` of the reference.
    caglioti : (U, V, W), optional
        Instrumental Gaussian FWHM² (deg²), fixed; refined when not given.
    asymmetry : bool
        Refine an axial-divergence peak asymmetry shared by all reflections (docs/xrd.md: it is correlated
        with the zero and the displacement; off by default).

    Returns
    -------
    WholePatternFit
        See :func:`specproc.techniques.xrd.wholepattern.pawley_fit` (cells with esd's, intensities, Rwp,
        Rexp, χ², zero shift, the calculated curve).
    """
    import numpy as np

    from .analysis import wavelengths
    from .peaks import check_pattern
    from .references import get_references
    from .wholepattern import pawley_fit

    check_pattern(m)
    l1, ka2, _ = wavelengths(m, wavelength_nm, kalpha2)
    x = np.asarray(m.coords["two_theta"].values, float)
    y = np.asarray(m.values, float)
    sig = np.asarray(m.coords["intensity_sigma"].values, float) if "intensity_sigma" in m.coords else None
    refs = get_references([p for p in phases if p in _builtin_names()], references)
    refs = [r for r in refs if r.name in phases]
    start = [(r, dict((cells or {}).get(r.name, r.cell))) for r in refs]
    return pawley_fit(x, y, start, l1, kalpha2=(ka2[1], ka2[2]) if ka2 else None, sigma=sig, caglioti=caglioti,
                      refine_zero=refine_zero, refine_displacement=refine_displacement, max_strain=max_strain,
                      n_chebyshev=n_chebyshev, asymmetry=asymmetry, source=m.attrs.get("provenance", {}).get("source"))


def _builtin_names():
    from .references import BUILTIN

    return set(BUILTIN)


def compare(res_a, res_b, names=None):
    """Change of lattice parameters and d-spacings from reference ``res_a`` to ``res_b`` (a table over
    :func:`specproc.evidence.compare`)."""
    from .lattice import compare as _c

    return _c(res_a, res_b, names)


def fit_series(patterns, **kwargs):
    """Fit the same reflections in a series of patterns through the batch engine: one series Result.

    ``data`` is a Dataset (dims ``pattern``, ``peak``). The ``xrd.fit_series`` processor gives one Result
    per pattern instead (its ``run_many``). See :func:`specproc.techniques.xrd.series.fit_series`.
    """
    from .series import fit_series as _f

    return _f(patterns, **kwargs)


def fit_whole_pattern_series(patterns, phases, **kwargs):
    """Whole-pattern cells of every pattern of a series (temperature, time) through the batch engine: one
    Result with the cells and esd's per pattern. See
    :func:`specproc.techniques.xrd.series.fit_whole_pattern_series`."""
    from .series import fit_whole_pattern_series as _f

    return _f(patterns, phases, **kwargs)


def calibrate(standard, phase="Si", **kwargs):
    """Zero shift and instrumental resolution (Caglioti U, V, W) from a line-position / profile standard.

    See :func:`specproc.techniques.xrd.series.calibrate`.
    """
    from .series import calibrate as _c

    return _c(standard, phase, **kwargs)


def references():
    """Built-in reference phases as a table (name, space group, cell in Å, source)."""
    import pandas as pd

    from .references import BUILTIN

    return pd.DataFrame([{"name": k, "space_group": v["space_group"], **{f"{c}_angstrom": x for c, x in v["cell"].items()},
                          "source": v["source"]} for k, v in BUILTIN.items()])
