"""Processor plugin of the electrochemistry technique: ``echem.analyse``.

One processor for every echem input; what it does follows from the measurement (or ``analysis``):
an impedance spectrum or series -> circuit fit, KK test, R_bulk, conductivity (and Arrhenius for a
temperature series); a potentiostatic time series -> DC polarisation (Bruce–Vincent t+ or
electronic conductivity); a galvanostatic one -> CCD / overpotential. Single spectra on one
frequency grid are fitted together (``run_many``: one batched fit).
"""
from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, field_validator

from ...core.errors import ParameterError, SpecprocError
from ...core.params import Finite, PositiveOrNone, ProcessorParams, Region
from ...core.processor import Processor


class AnalyseParams(ProcessorParams):
    """Parameters of ``echem.analyse`` (one schema for Python, CLI and pipeline YAML)."""

    #: one vocabulary (docs/architecture.md): ``freq_range`` is accepted for one release
    renamed = {"freq_range": "region"}

    analysis: Literal["auto", "eis", "polarisation", "cycling"] = Field(
        "auto", description="auto: from the measurement (impedance / potentiostatic / galvanostatic)")
    thickness_cm: PositiveOrNone = Field(None, description="electrolyte thickness L (cm)")
    thickness_cm_stderr: float = Field(0.0, ge=0, description="standard error of L (cm)")
    area_cm2: PositiveOrNone = Field(None, description="electrode area A (cm²); default: the file header's")
    area_cm2_stderr: float = Field(0.0, ge=0, description="standard error of A (cm²)")
    circuit: str = Field("R0-p(R1,CPE1)-CPE2", description="equivalent circuit (impedance.py syntax)")
    weighting: Literal["modulus", "proportional", "unit"] = Field(
        "modulus", description="weights of the circuit fit: 1/|Z| (modulus), 1/Re and 1/Im (proportional) or none")
    bulk: list[str] | None = Field(None, description="resistors forming R_bulk (default: series R + electrolyte arcs)")
    region: Region | None = Field(None, description="fitted frequency range, Hz (either order; default: all)")
    kk_threshold_pct: float = Field(2.5, gt=0, description="largest Kramers–Kronig residual of a valid spectrum (%)")
    temperature_C: Finite | None = Field(None, description="temperature of a single spectrum (°C), overriding the file")
    step_test_C: Finite | None = Field(None, description="Arrhenius: measure a conductivity step at this temperature")
    cell: Literal["auto", "symmetric", "blocking"] = Field(
        "auto", description="polarisation: symmetric Li cell (Bruce–Vincent) or blocking electrodes (electronic); "
                            "auto: symmetric when impedance spectra come with it")
    bv_circuit: str = Field("R0-p(R1,CPE1)-p(R2,CPE2)", description="circuit of the Bruce–Vincent spectra")
    delta_V: Finite | None = Field(None, description="applied potential step (V); default from the data")
    R0_ohm: PositiveOrNone = Field(None, description="interfacial resistance before polarisation (Ohm)")
    Rss_ohm: PositiveOrNone = Field(None, description="interfacial resistance after polarisation (Ohm)")
    R0_ohm_stderr: float = Field(0.0, ge=0, description="standard error of R0 (Ohm)")
    Rss_ohm_stderr: float = Field(0.0, ge=0, description="standard error of Rss (Ohm)")
    skip_s: float | None = Field(None, ge=0, description="seconds after the step left out of the current fit")
    collapse_fraction: float = Field(0.5, gt=0, lt=1, description="CCD: collapse below this x expected overpotential")
    noise_fraction: float = Field(0.25, gt=0, description="CCD: noise SD above this x expected overpotential")

    @field_validator("circuit", "bv_circuit")
    @classmethod
    def _circuit(cls, v: str) -> str:
        from ...fitting.circuits import parse_circuit

        return parse_circuit(v).text          # ParameterError (a ValueError) says what is wrong


class Analyse(Processor):
    name = "echem.analyse"
    technique = "echem"
    description = ("electrochemistry: equivalent-circuit EIS fits (KK-tested, conductivity, Arrhenius with "
                   "transition detection), Bruce–Vincent t+, electronic conductivity, critical current density")
    Params = AnalyseParams

    def run(self, data, params: AnalyseParams):
        return analyse_one(data, params)

    def run_many(self, data: list, params: AnalyseParams) -> list:
        from .common import kind_of
        from .eis import analyse_measurements
        from .results import eis_result

        out: list = [None] * len(data)
        groups: dict = {}
        for k, m in enumerate(data):
            try:
                _check(m)
                if params.analysis in ("auto", "eis") and kind_of(m) == "eis" and m.ndim == 1:
                    f = tuple(round(float(x), 6) for x in m.coords["frequency"].values)
                    groups.setdefault(f, []).append(k)
                    continue
                out[k] = analyse_one(m, params)
            except SpecprocError as exc:
                out[k] = exc
        pj = params.model_dump(mode="json")
        for idx in groups.values():
            ms = [data[k] for k in idx]
            try:
                ds = analyse_measurements(ms, params) if len(ms) > 1 else None
            except SpecprocError:
                ds = None
            for j, k in enumerate(idx):
                try:
                    out[k] = eis_result(data[k], ds[j], pj) if ds is not None else analyse_one(data[k], params)
                except SpecprocError as exc:
                    out[k] = exc
        return out


def _check(m) -> None:
    from ...core.measurement import check_measurement
    import numpy as np

    check_measurement(m, "echem")
    v = np.asarray(m.values)
    if not np.all(np.isfinite(v)):
        raise ParameterError("NaN/inf values in the measurement", m.attrs.get("provenance", {}).get("source"))


def analyse_one(m, p: AnalyseParams):
    """The analysis of one measurement (see the module doc)."""
    from . import cycling, polarisation
    from .activation import arrhenius
    from .common import check_kind, geometry, kind_of, source
    from .eis import analyse_measurements, analyse_spectrum, fit_spectra
    from .results import cycling_result, eis_result, eis_series_result, polarisation_result

    _check(m)
    pj = p.model_dump(mode="json")
    kind = kind_of(m) if p.analysis == "auto" else p.analysis
    check_kind(m, kind)
    if kind == "eis" and m.ndim == 1:
        return eis_result(m, analyse_measurements([m], p)[0], pj)
    if kind == "eis":
        c, f, Z, fit, kk = fit_spectra(m, p.circuit, p.weighting, p.freq_range, p.kk_threshold_pct)
        geo = geometry(m, p.thickness_cm, p.thickness_cm_stderr, p.area_cm2, p.area_cm2_stderr)
        ds = []
        for i in range(Z.shape[0]):
            t = float(m.coords["temperature_C"].values[i]) if "temperature_C" in m.coords else None
            d = analyse_spectrum(c, fit, kk[i], i, f, geo, p.bulk, t)
            d.update(circuit=c.text, f=f, Z=Z[i], Z_fit=fit.Z_fit[i], kk_fit=kk[i].Z_fit, geometry=geo,
                     timings=fit.timings)
            ds.append(d)
        arr, arr_warn = None, []
        if "temperature_C" in m.coords and len(ds) >= 3:
            sig = [d["conductivity_S_cm"] for d in ds]
            se = [d["conductivity_S_cm_stderr"] for d in ds]
            note = ""
            if any(s is None for s in sig):       # no geometry: 1/R_bulk gives the same activation energy
                sig = [1 / d["R_bulk_ohm"] if d["R_bulk_ohm"] else math.nan for d in ds]
                se = [(d["R_bulk_ohm_stderr"] or math.nan) / d["R_bulk_ohm"] ** 2 if d["R_bulk_ohm"] else math.nan
                      for d in ds]
                note = " (from 1/R_bulk: no geometry)"
                arr_warn.append("Arrhenius analysis on 1/R_bulk (no thickness/area): Ea is right, no conductivities")
            try:
                arr = arrhenius(m.coords["temperature_C"].values, sig, [math.nan if s is None else s for s in se],
                                step_test_C=p.step_test_C)
                if note:
                    arr.warnings.append(note.strip(" ()"))
            except SpecprocError as exc:
                arr_warn.append(f"no Arrhenius analysis: {exc.reason}")
        return eis_series_result(m, ds, arr, pj, arr_warn)
    if kind == "polarisation":
        spectra = m.attrs.get("impedance") or []
        cell = p.cell if p.cell != "auto" else ("symmetric" if spectra or p.R0_ohm is not None else None)
        if cell is None:
            raise ParameterError("a polarisation without impedance spectra: say cell='blocking' (electronic "
                                 "conductivity) or give the interfacial resistances (R0_ohm, Rss_ohm) for Bruce–Vincent",
                                 source(m))
        geo = geometry(m, p.thickness_cm, p.thickness_cm_stderr, p.area_cm2, p.area_cm2_stderr,
                       need_thickness=cell == "blocking")
        if cell == "blocking":
            d = polarisation.electronic(m, geo=geo, delta_V=p.delta_V, skip_s=p.skip_s)
        else:
            d = polarisation.transference(m, delta_V=p.delta_V, R0_ohm=p.R0_ohm, Rss_ohm=p.Rss_ohm,
                                          R0_ohm_stderr=p.R0_ohm_stderr, Rss_ohm_stderr=p.Rss_ohm_stderr,
                                          circuit=p.bv_circuit, weighting=p.weighting, skip_s=p.skip_s, geo=geo,
                                          bulk=p.bulk)
        d["warnings"] = [w for w in geo.warnings if "thickness" not in w or cell == "blocking"] + d["warnings"]
        return polarisation_result(m, d, pj)
    geo = geometry(m, None, 0, p.area_cm2, p.area_cm2_stderr, need_thickness=False)
    d = cycling.analyse(m, area_cm2=geo.area_cm2, collapse_fraction=p.collapse_fraction,
                        noise_fraction=p.noise_fraction)
    d["warnings"] = [w for w in geo.warnings] + d["warnings"]
    return cycling_result(m, d, pj, geo.area_cm2)
