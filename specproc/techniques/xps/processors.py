"""XPS processor plugin: ``xps.fit_profile`` (one file = every region x every etch level)."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from ...core.params import ProcessorParams
from ...core.processor import Processor
from .backgrounds import CHOICES


class FitProfileParams(ProcessorParams):
    """Parameters of ``xps.fit_profile`` (one schema for Python, CLI and pipeline YAML)."""

    model: dict[str, Any] | None = Field(
        None, description="template {region: [component, ...]} (docs/xps.md); regions without one: automatic")
    charge_ref: str | None = Field("C 1s=284.8", description="'REGION[:COMPONENT]=BE' reference line; 'none' = off")
    charge_shift: float | None = Field(None, allow_inf_nan=False, description="explicit shift (eV) added to every BE")
    background: Literal[CHOICES] = Field(  # type: ignore[valid-type]  (the one list: backgrounds.CHOICES)
        "shirley", description="background under each region (shirley-active: refined with the peaks; tougaard3: "
                               "three-parameter universal cross-section)")
    rsf: dict[str, float] | str | None = Field(None, description="RSFs {line: value} or a CSV table path; "
                                                                 "default: built-in Scofield (Al Kα)")
    sputter_rate: float | None = Field(None, gt=0, allow_inf_nan=False, description="nm/s (default: from the file)")
    sputter_rate_stderr: float | None = Field(None, ge=0, allow_inf_nan=False, description="nm/s")
    detection_limit: float = Field(1.0, gt=0, le=100, description="at % for a species to count as present")
    interphase: list[str] | None = Field(None, description="species whose summed at % defines the interphase")
    regions: list[str] | None = Field(None, description="regions to fit and quantify (default: all)")
    lines: dict[str, str] | None = Field(None, description="{region: core line} for regions whose name is not a "
                                                           "line ('block 3': 'Si 2p'); default: by position")
    transmission_exponent: float | None = Field(None, allow_inf_nan=False, description="T ∝ KE^t")
    escape_depth_exponent: float | None = Field(None, allow_inf_nan=False, description="λ ∝ KE^e")
    max_shift: float = Field(10.0, gt=0, description="largest charge shift searched (eV)")
    errors: Literal["covariance", "montecarlo"] = Field(
        "covariance", description="standard errors from the fit's covariance or from Monte-Carlo refits")
    n_mc: int = Field(50, ge=3, le=10000, description="Monte-Carlo refits (errors=montecarlo)")
    seed: int = Field(0, description="random seed of the Monte-Carlo refits")

    @field_validator("model")
    @classmethod
    def _model(cls, v):
        from .model import parse_template

        parse_template(v)  # validated here so YAML / CLI errors come before any file is read
        return v


class FitProfile(Processor):
    """Charge referencing, backgrounds, one constrained template on every level (batch engine), atomic %,
    depth profile, 50 % thickness with its error, presence at a stated detection limit."""

    name = "xps.fit_profile"
    technique = "xps"
    description = "XPS regions x etch levels: charge reference, constrained fits, atomic %, depth profile, thickness"
    Params = FitProfileParams

    def run(self, data, params: FitProfileParams):
        from .analysis import fit_profile

        p = params.model_dump()
        return fit_profile(data, params_record=p, **p)
