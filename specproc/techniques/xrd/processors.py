"""XRD processor plugins: ``xrd.analyse`` (one pattern or a list) — validated parameters, Result out."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from ...core.params import Finite, ProcessorParams, Region
from ...core.processor import Processor
from .peaks import XRD_SHAPES

#: profile shapes offered (from the shared lineshape registry)
XrdShape = Literal[XRD_SHAPES]


class AnalyseParams(ProcessorParams):
    """Parameters of ``xrd.analyse`` (the same schema for Python, CLI and pipeline YAML)."""

    #: one vocabulary (docs/architecture.md): the old names are accepted for one release
    renamed = {"two_theta_range": "region", "prominence_sigma": "snr", "background_window_deg": "background_window",
               "tolerance_deg": "center_window"}

    references: list[str] = Field(default_factory=list, description="extra reference phases as CIF file paths")
    phases: list[str] | None = Field(None, description="built-in candidate phases (default: all built-in)")
    wavelength_nm: float | None = Field(None, gt=0, description="override the Kα1 wavelength (nm)")
    kalpha2: bool = Field(True, description="fit each reflection as a Kα1/Kα2 doublet (λ2 and ratio from the file)")
    shape: XrdShape = Field("pseudo-voigt", description="profile shape (shared lineshape registry)")
    snr: float = Field(5.0, gt=0, description="peak-search prominence in noise standard deviations")
    background_window: float = Field(1.5, gt=0, description="SNIP window (deg 2θ); broader features = background")
    scan_type: Literal["auto", "powder", "high-resolution"] = Field(
        "auto", description="auto: recognise high-resolution (single-crystal/epitaxial) scans and refuse "
                            "reflectivity curves; powder / high-resolution force the analysis")
    region: Region | None = Field(None, description="analysed 2θ range LO:HI, deg (default: the whole pattern)")
    center_window: float = Field(0.15, gt=0, description="2θ match tolerance for phase ID and indexing (deg)")
    max_strain: float = Field(0.03, ge=0, lt=0.2, description="isotropic cell scaling searched in phase ID (fraction)")
    min_rel_intensity: float = Field(5.0, ge=0, le=100, description="strong reflections: ≥ this % of the strongest")
    threshold: float = Field(0.6, gt=0, le=1, description="phase present when score ≥ threshold (+ other checks)")
    zero_shift_deg: Finite = Field(0.0, description="2θ zero error subtracted from peak positions (deg), e.g. from calibrate()")
    caglioti: tuple[float, float, float] | None = Field(None, description="instrumental FWHM² = U tan²θ + V tanθ + W (deg²)")
    instrument_fwhm_deg: float | None = Field(None, ge=0, description="constant instrumental FWHM (deg)")
    scherrer_k: float = Field(0.9, gt=0, description="Scherrer shape factor")
    whole_pattern: bool = Field(True, description="confirm the screened phases and refine their cells with a "
                                                  "whole-pattern (Pawley/Le Bail-type) fit")
    wholepattern_max_strain: float = Field(0.05, gt=0, lt=0.2, description="cell bounds of the whole-pattern fit "
                                                                          "around the reference cell (fraction)")
    asymmetry: bool = Field(False, description="refine an axial-divergence peak asymmetry in the whole-pattern fit "
                                               "(low-angle lines with a tail; docs/xrd.md)")


class AnalysePattern(Processor):
    """Background, doublet-aware peak fits, phase ID, indexing, lattice refinement, size, texture."""

    name = "xrd.analyse"
    technique = "xrd"
    description = "powder pattern: peaks, d-spacings, phase ID, lattice refinement, size, texture, amorphous hint"
    Params = AnalyseParams

    def run(self, data, params: AnalyseParams):
        from .analysis import analyse

        return analyse(data, params)


class FitSeriesParams(ProcessorParams):
    """Parameters of ``xrd.fit_series`` (one schema for Python, CLI and pipeline YAML)."""

    #: one vocabulary (docs/architecture.md): the old names are accepted for one release
    renamed = {"prominence_sigma": "snr", "background_window_deg": "background_window"}

    peaks: list[Finite] | None = Field(None, description="reflection positions to follow (deg 2θ); "
                                                         "default: peaks found in the mean pattern")
    wavelength_nm: float | None = Field(None, gt=0, description="override the Kα1 wavelength (nm)")
    kalpha2: bool = Field(True, description="fit each reflection as a Kα1/Kα2 doublet (λ2 and ratio from the file)")
    shape: XrdShape = Field("pseudo-voigt", description="profile shape (shared lineshape registry)")
    snr: float = Field(5.0, gt=0, description="peak-search prominence in noise standard deviations")
    background_window: float = Field(1.5, gt=0, description="SNIP window (deg 2θ)")
    method: Literal["auto", "batched-lm", "lmfit-loop", "lmfit"] = Field(
        "auto", description="auto/batched-lm: shared batch engine; lmfit/lmfit-loop: its lmfit loop (comparisons)")


class FitSeries(Processor):
    """The same reflections fitted in every pattern of a series, in one call of the shared batch engine.

    ``run_many(patterns)`` (or calling the processor with a list) returns **one Result per pattern**
    (quantities ``peak(2θ0).d_nm``... named alike in every pattern), or the error of a pattern that
    cannot join the series, in input order. ``run`` on one pattern gives its Result; on a
    ``("scan", "two_theta")`` stack read from one file, the series Result (``data``: Dataset with dims
    ``pattern``, ``peak``), as :func:`specproc.xrd.fit_series` does.
    """

    name = "xrd.fit_series"
    technique = "xrd"
    description = "series of patterns on one 2θ grid: per-pattern doublet fits through the batch engine"
    Params = FitSeriesParams

    def run(self, data, params: FitSeriesParams):
        from .series import fit_series, per_pattern

        if getattr(data, "ndim", 1) > 1:
            return fit_series(data, **_series_kwargs(params))
        return per_pattern(fit_series([data], **_series_kwargs(params)), [data])[0]

    def run_many(self, data: list, params: FitSeriesParams) -> list:
        import numpy as np

        from ...core.errors import ParameterError, SpecprocError
        from ...core.measurement import check_measurement
        from .peaks import refuse_rsm
        from .series import fit_series, per_pattern

        out: list = [None] * len(data)
        ok, grid = [], None
        for i, d in enumerate(data):
            try:
                check_measurement(d, "xrd")
                refuse_rsm(d)
                if not np.all(np.isfinite(np.asarray(d.values, float))):
                    raise ParameterError("NaN/inf intensities in the pattern", d.attrs.get("provenance", {}).get("source"))
                if d.ndim != 1:
                    raise ParameterError("one pattern per input expected in a series (a stack from one file: "
                                         "call the processor on it alone)", d.attrs.get("provenance", {}).get("source"))
                x = np.asarray(d.coords["two_theta"].values, float)
                if grid is None:
                    grid = x
                elif x.shape != grid.shape or not np.allclose(x, grid, atol=1e-6):
                    raise ParameterError("2θ grid differs from the series' first pattern (interpolate first)",
                                         d.attrs.get("provenance", {}).get("source"))
                ok.append(i)
            except SpecprocError as exc:
                out[i] = exc
        if ok:
            pats = [data[i] for i in ok]
            try:
                res = per_pattern(fit_series(pats, **_series_kwargs(params)), pats)
            except SpecprocError as exc:
                res = [exc] * len(pats)
            for i, r in zip(ok, res):
                out[i] = r
        return out


def _series_kwargs(params: FitSeriesParams) -> dict:
    """The keyword arguments of :func:`.series.fit_series` (its own names) from the parameters."""
    kw = params.model_dump()
    kw["prominence_sigma"], kw["background_window_deg"] = kw.pop("snr"), kw.pop("background_window")
    return kw
