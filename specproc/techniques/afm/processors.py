"""AFM processor plugins: ``afm.analyse_map`` (height / modulus maps, or a force map) and
``afm.fit_force_map`` (contact-mechanics fits of every curve of a force map).

Quantities (names evidence claims use):

* ``roughness.Sa_m``, ``roughness.Sq_m``, ``roughness.Sz_m``, ``roughness.Ssk``, ``roughness.Sku``,
  ``roughness.Ra_m``, ``roughness.Rq_m`` (levelled height, m);
* ``protrusions.count``, ``protrusions.density_per_um2`` (stderr: Poisson), ``protrusions.mean_height_m``,
  ``protrusions.area_fraction``;
* ``modulus.mean_Pa`` (stderr from block means), ``modulus.median_Pa``, ``modulus.std_Pa``,
  ``modulus.mean_GPa``, ``modulus.n_valid``, ``modulus.n_invalid``.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from ...core.params import ProcessorParams
from ...core.processor import Processor
from .force import FORCE_TYPES, MODELS
from .levelling import LEVEL_METHODS

ModelName = Literal["hertz-paraboloid", "hertz-sphere", "cone", "pyramid", "dmt", "jkr"]
assert set(MODELS) == set(ModelName.__args__)
LevelName = Literal["plane", "poly2", "rows", "none"]
assert set(LEVEL_METHODS) == set(LevelName.__args__)


class ForceParams(ProcessorParams):
    """Force-curve fit parameters (shared by both processors)."""

    model: ModelName = Field("hertz-paraboloid", description="contact model of the force curves")
    tip_radius_m: float | None = Field(None, gt=0, le=1e-3, description="tip radius (m)")
    half_angle_deg: float | None = Field(None, gt=0, lt=90, description="cone/pyramid half opening angle (deg)")
    poisson_ratio: float = Field(0.5, gt=-1, le=0.5, description="Poisson ratio of the sample")
    max_indentation_m: float | None = Field(None, gt=0, description="fit range: indentation past contact (m)")
    baseline_fraction: float = Field(0.2, ge=0.05, le=0.8,
                                     description="fraction of the approach curve (far from contact) taken as baseline")
    baseline: Literal["offset", "line", "tilt"] = Field(
        "offset", description="before contact: a constant offset (as nanite), a line, or a line plus a fitted slope")
    contact_threshold_sigma: float = Field(5.0, gt=0, description="contact where the force leaves the baseline by "
                                                                  "this many noise SDs")
    use_spring_constant: bool = Field(True, description="fit against tip position (height + F/k) when k is known")
    z0_m: float = Field(0.3e-9, gt=0, description="equilibrium separation for the Tabor parameter (m)")


class MapParams(ForceParams):
    channel: str | None = Field(None, description="height channel (default: the first channel in m)")
    modulus_channel: str | None = Field(None, description="modulus channel (default: the first channel in Pa)")
    level: LevelName = Field("rows", description="levelling: robust plane, 2nd-order polynomial, plane + scan-line "
                                                 "median alignment (rows), or none")
    outlier_sigma: float | None = Field(6.0, gt=0, description="spike / scar threshold of the levelling, in robust "
                                                               "SDs (None in Python, null in YAML: none removed)")
    protrusion_threshold_sigma: float = Field(5.0, gt=0, description="protrusions: higher than the median by this "
                                                                     "many robust SDs")
    protrusion_min_height_m: float = Field(0.0, ge=0, description="protrusions: and at least this high (m)")
    protrusion_min_area_px: int = Field(4, ge=1, description="protrusions: covering at least this many pixels")
    modulus_max_Pa: float = Field(1e12, gt=0, description="moduli above this (Pa) are invalid (absurd)")
    modulus_spike_sigma: float = Field(8.0, gt=0, description="moduli this many robust SDs (log scale) from the "
                                                              "median are invalid (spikes)")
    histogram_bins: int = Field(60, ge=5, le=1000, description="bins of the modulus histogram")


# ------------------------------------------------------------------ processors (the analyses: maps.py)
class AnalyseMap(Processor):
    """Height map levelling, roughness and protrusions; modulus map statistics; or a force map fitted."""

    name = "afm.analyse_map"
    technique = "afm"
    description = "AFM maps: levelling, roughness (ISO 25178), protrusions, modulus statistics; force maps fitted"
    Params = MapParams

    def run(self, m, p: MapParams):
        from . import maps

        if m.attrs.get("signal_type") in FORCE_TYPES:
            force = ForceParams(**{k: getattr(p, k) for k in ForceParams.model_fields})
            return maps.force_map_result(m, force, limits=p, processor=FitForceMap.name)
        return maps.analyse_map(m, p, processor=self.name)


class FitForceMap(Processor):
    """Contact-mechanics fit of every approach curve of a force map (batch engine)."""

    name = "afm.fit_force_map"
    technique = "afm"
    description = "AFM force curves/maps: baseline, contact point, Hertz/Sneddon/DMT/JKR moduli per curve"
    Params = ForceParams

    def run(self, m, p: ForceParams):
        from .maps import force_map_result

        return force_map_result(m, p, processor=self.name)
