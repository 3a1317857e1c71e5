"""Processor plugin of the EELS technique: ``eels.fit_edge``."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from ...core.params import ProcessorParams
from ...core.processor import Processor


class FitEdgeParams(ProcessorParams):
    """Parameters of :func:`specproc.techniques.eels.fit.fit_edge` (units: eV)."""

    edge: str = Field("B K", description="edge with a near-edge recipe: 'B K', 'C K', 'N K', 'O K'")
    background: Literal["power_law", "exponential", "polynomial"] = Field(
        "power_law", description="pre-edge background model")
    background_window: tuple[float, float] | None = Field(
        None, description="pre-edge background window, eV (default from the onset table: E0-30 to E0-6)")
    #: one vocabulary (docs/architecture.md): the old names are accepted for one release
    renamed = {"fit_window": "region", "min_edge_snr": "snr"}

    region: tuple[float, float] | None = Field(None, description="fitted range, eV (default: background window "
                                                                 "start to E0+32)")
    poly_degree: int = Field(2, ge=0, le=7, description="degree of the polynomial background")
    lowloss: Any = Field(None, description="low-loss spectrum (path or measurement): zero-loss "
                                           "alignment and Fourier-ratio deconvolution")
    energy_offset_eV: float = Field(0.0, description="stated energy offset (eV) added to the axis when no "
                                                     "low-loss spectrum is given")
    deconvolve: bool = Field(True, description="Fourier-ratio deconvolution when a low-loss spectrum is given "
                                               "(off: zero-loss alignment only)")
    warm_start: bool = Field(True, description="spectrum images: seed each pixel from its converged neighbour")
    snr: float = Field(5.0, gt=0, description="an edge whose integrated net signal is below this many "
                                              "standard errors is 'no edge'")

    @field_validator("edge")
    @classmethod
    def _edge(cls, v: str) -> str:
        from .edges import recipe

        return recipe(v).edge  # ParameterError (a ValueError) names the supported edges

    @field_validator("background_window", "region")
    @classmethod
    def _window(cls, v):
        import math

        if v is None:
            return v
        lo, hi = sorted(float(x) for x in v)
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo == hi:
            raise ValueError("window must be two different finite energies (eV)")
        return (lo, hi)

    @field_validator("lowloss")
    @classmethod
    def _lowloss(cls, v):
        if v is None or isinstance(v, (str, Path)):
            return None if v is None else str(v)
        if hasattr(v, "dims") and hasattr(v, "attrs"):
            return v
        raise ValueError("lowloss must be a file path or an EELS measurement")


class FitEdge(Processor):
    name = "eels.fit_edge"
    technique = "eels"
    description = ("EELS near-edge fit (π* on an edge step, σ*, power-law background) of spectra and "
                   "spectrum images: π* energy maps with standard errors")
    Params = FitEdgeParams

    def run(self, data, params: FitEdgeParams):
        from .fit import fit_edge

        kw = params.model_dump()
        kw["fit_window"], kw["min_edge_snr"] = kw.pop("region"), kw.pop("snr")   # fit_edge's own names
        return fit_edge(data, **kw)
