"""XRD processor plugins: ``xrd.analyse`` (one pattern or a list) — validated parameters, Result out."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from ...core.params import ProcessorParams
from ...core.processor import Processor


class AnalyseParams(ProcessorParams):
    """Parameters of ``xrd.analyse`` (the same schema for Python, CLI and pipeline YAML)."""

    references: list[str] = Field(default_factory=list, description="extra reference phases as CIF file paths")
    phases: list[str] | None = Field(None, description="built-in candidate phases (default: all built-in)")
    wavelength_nm: float | None = Field(None, gt=0, description="override the Kα1 wavelength (nm)")
    kalpha2: bool = Field(True, description="fit each reflection as a Kα1/Kα2 doublet (λ2 and ratio from the file)")
    shape: Literal["pseudo-voigt", "pearson7"] = "pseudo-voigt"
    prominence_sigma: float = Field(5.0, gt=0, description="peak-search prominence in noise standard deviations")
    background_window_deg: float = Field(1.5, gt=0, description="SNIP window (deg 2θ); broader features = background")
    two_theta_range: tuple[float, float] | None = Field(None, description="analysed 2θ range (deg)")
    tolerance_deg: float = Field(0.15, gt=0, description="2θ match tolerance for phase ID and indexing (deg)")
    max_strain: float = Field(0.03, ge=0, lt=0.2, description="isotropic cell scaling searched in phase ID (fraction)")
    min_rel_intensity: float = Field(5.0, ge=0, le=100, description="strong reflections: ≥ this % of the strongest")
    threshold: float = Field(0.6, gt=0, le=1, description="phase present when score ≥ threshold (+ other checks)")
    zero_shift_deg: float = Field(0.0, description="2θ zero error subtracted from peak positions (deg), e.g. from calibrate()")
    caglioti: tuple[float, float, float] | None = Field(None, description="instrumental FWHM² = U tan²θ + V tanθ + W (deg²)")
    instrument_fwhm_deg: float | None = Field(None, ge=0, description="constant instrumental FWHM (deg)")
    scherrer_k: float = Field(0.9, gt=0, description="Scherrer shape factor")


class AnalysePattern(Processor):
    """Background, doublet-aware peak fits, phase ID, indexing, lattice refinement, size, texture."""

    name = "xrd.analyse"
    technique = "xrd"
    description = "powder pattern: peaks, d-spacings, phase ID, lattice refinement, size, texture, amorphous hint"
    Params = AnalyseParams

    def run(self, data, params: AnalyseParams):
        from .analysis import analyse

        p = params.model_dump()
        return analyse(data, params_record=p, **p)


class FitSeriesParams(ProcessorParams):
    """Parameters of ``xrd.fit_series`` (one schema for Python, CLI and pipeline YAML)."""

    peaks: list[float] | None = Field(None, description="reflection positions to follow (deg 2θ); "
                                                        "default: peaks found in the mean pattern")
    wavelength_nm: float | None = Field(None, gt=0, description="override the Kα1 wavelength (nm)")
    kalpha2: bool = Field(True, description="fit each reflection as a Kα1/Kα2 doublet (λ2 and ratio from the file)")
    shape: Literal["pseudo-voigt", "pearson7"] = "pseudo-voigt"
    prominence_sigma: float = Field(5.0, gt=0, description="peak-search prominence in noise standard deviations")
    background_window_deg: float = Field(1.5, gt=0, description="SNIP window (deg 2θ)")
    method: Literal["auto", "batched-lm", "lmfit-loop", "lmfit"] = Field(
        "auto", description="auto/batched-lm: shared batch engine; lmfit: plain lmfit loop (comparisons)")


class FitSeries(Processor):
    """The same reflections fitted in every pattern of a series, through the shared batch engine.

    ``run_many(patterns)`` (or calling the processor with a list) returns **one** :class:`Result`
    for the whole series (``data``: Dataset with dims ``pattern``, ``peak``); ``run`` accepts one
    pattern or a ``("scan", "two_theta")`` stack read from one file.
    """

    name = "xrd.fit_series"
    technique = "xrd"
    description = "series of patterns on one 2θ grid: per-pattern doublet fits through the batch engine"
    Params = FitSeriesParams

    def run(self, data, params: FitSeriesParams):
        from .series import fit_series

        return fit_series(data, **params.model_dump())

    def run_many(self, data: list, params: FitSeriesParams):
        from .series import fit_series

        return fit_series(list(data), **params.model_dump())
