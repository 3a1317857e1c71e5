"""Processor plugins of the NMR technique: ``nmr.process`` and ``nmr.deconvolve``."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from ...core.params import PeaksInput, PositiveOrNone, ProcessorParams, Region
from ...core.processor import Processor
from ...fitting.lineshapes import COMMON_SHAPES

#: lineshapes of NMR lines: the registry's symmetric area-normalised shapes (quadrupolar sites are
#: given per peak with ``shape="quadrupolar"``)
NMRShape = Literal[COMMON_SHAPES]  # type: ignore[valid-type]


class ProcessParams(ProcessorParams):
    zero_fill: float | None = Field(2, description="zero fill to next power of two of zero_fill * n")
    apodization: Literal["exponential", "gaussian", "none"] | None = Field(
        "exponential", description="window applied to FIDs before the Fourier transform; a processed spectrum "
                                   "cannot be apodized (error)")
    lb_hz: float | None = Field(None, ge=0, allow_inf_nan=False,
                                description="line broadening of the window, Hz (default 2 x SW / TD: two points of "
                                            "digital resolution); an exponential window adds LB Hz to a Lorentzian "
                                            "line's FWHM")
    phase: Literal["auto", "auto0"] | tuple[float, float] | None = "auto"
    baseline: str | None = Field(None, description="pybaselines method, e.g. asls")
    baseline_params: dict[str, Any] | None = None
    reference: float | tuple[float, float] | None = Field(
        None, description="shift added to the ppm axis (chemical-shift referencing), FIDs and spectra alike; "
                          "recorded in the JSON's processing")


class ProcessFID(Processor):
    name = "nmr.process"
    technique = "nmr"
    description = "FID -> phased, referenced spectrum (digital filter, zero fill, apodization, FT, phase, baseline)"
    Params = ProcessParams

    def run(self, data, params: ProcessParams):
        from .processing import process

        return process(data, **params.model_dump())


class DeconvolveParams(ProcessorParams):
    """Parameters of ``nmr.deconvolve`` (the one typed object from CLI / Python / YAML down to the fit)."""

    #: one vocabulary (docs/architecture.md): ``lineshape`` is accepted for one release
    renamed = {"lineshape": "shape"}

    peaks: PeaksInput = Field(None, description="start positions (ppm), {name: ppm} or peak dicts; none: automatic")
    n_peaks: int | None = Field(None, ge=1, le=50,
                                description="fit exactly N components picked automatically (default: chosen by the "
                                            "toolkit's model selection, specproc.fitting.select; docs/nmr.md); "
                                            "ignored when peaks are given")
    max_peaks: int | None = Field(None, ge=1, le=50, description="most components the automatic selection keeps "
                                                                  "(default: no cap; a stop at the cap is a warning)")
    shape: NMRShape = Field("pseudo-voigt", description="lineshape of every component (a peak dict may give "
                                                        "its own shape)")
    region: Region | None = Field(None, description="fitted range, ppm (either order; default: the whole spectrum)")
    baseline: Literal["none", "constant", "linear", "quadratic"] = Field(
        "constant", description="polynomial baseline fitted with the lines")
    shared_width: bool = Field(False, description="one width shared by every component")
    links: list[dict[str, Any]] | None = None
    mas_rate_hz: float | None = Field(None, ge=0, allow_inf_nan=False,
                                      description="MAS rate (Hz); default from the acquisition; 0: static")
    sidebands: bool = Field(True, description="spinning sidebands as tied copies of each line (MAS rate known)")
    sideband_orders: Literal["auto"] | int = Field(
        "auto", description="sideband orders k modelled on each side: N forces |k| <= N; auto keeps the orders "
                            "inside the fitted range where the data rise above 3 noise SDs (|k| <= 8)")
    center_window: PositiveOrNone = Field(None, description="centres move at most this much (ppm) from their start")
    errors: Literal["covariance", "montecarlo"] = Field(
        "covariance", description="standard errors from the fit's covariance or from Monte-Carlo refits")
    n_mc: int = Field(100, ge=3, description="Monte-Carlo refits (errors=montecarlo)")
    seed: int | None = Field(0, description="random seed of the Monte-Carlo refits")
    processing: dict[str, Any] | None = None
    row: int | None = Field(None, description="row of 2D data (pseudo-2D / arrayed) to fit")
    method: Literal["auto", "batch", "loop"] = Field(
        "auto", description="stacks: the batch engine where the stack allows it (auto), always (batch), or one "
                            "fit per spectrum (loop)")


def with_processing(data, params: "DeconvolveParams"):
    """An input with the user's ``processing`` applied where :func:`~.deconvolution.prepare` does not.

    ``prepare`` processes FIDs with ``params.processing`` (apodization, ``lb_hz``, ``reference``...);
    a processed spectrum (CSV, JCAMP, Bruker pdata) passes through it untouched, so a requested
    ``reference`` (or ``baseline``) is applied here — the same :func:`~.processing.process`, which
    records it in ``attrs["processing"]`` and so in the result's ``meta["processing"]``. Apodization
    needs the FID: asking for it on a spectrum is a ParameterError naming the file, not a silent no-op.
    """
    proc = params.processing or {}
    if not proc or not hasattr(data, "attrs") or not hasattr(data, "dims") or not data.dims:
        return data
    if data.attrs.get("signal_type") == "fid" or data.dims[-1] == "time":
        return data
    from ...core.errors import ParameterError
    from .processing import process

    src = (data.attrs.get("provenance") or {}).get("source")
    asked = [k for k in ("apodization", "lb_hz") if proc.get(k) not in (None, "none")]
    if asked:
        raise ParameterError(f"{' and '.join(asked)} apply to an FID; this input is an already processed spectrum "
                             "(apodize it where it was processed, or give the FID)", src)
    kw = {k: proc[k] for k in ("reference", "baseline", "baseline_params") if proc.get(k) is not None}
    return process(data, **kw) if kw else data


class Deconvolve(Processor):
    name = "nmr.deconvolve"
    technique = "nmr"
    description = "Peak deconvolution with spinning sidebands, quadrupolar sites, area fractions with errors"
    Params = DeconvolveParams

    def run(self, data, params: DeconvolveParams):
        from .deconvolution import deconvolve

        return deconvolve(with_processing(data, params), params)

    def run_many(self, data, params: DeconvolveParams):
        """Fit a stack: one :func:`~specproc.fitting.batch.fit_batch` call when the stack can be
        batched (explicit peaks, no quadrupolar sites, covariance errors, >= 2 spectra, the same
        nucleus / frequency / MAS rate; axes shared or interpolated to a common one), else one fit
        per spectrum. Per-spectrum failures are returned in place (exceptions)."""
        from .stacks import deconvolve_many

        return deconvolve_many([with_processing(d, params) for d in data], params)

    def preprocess(self, data, params: DeconvolveParams):
        """Validation, FID processing and the noise estimate of one input (a ``Prepared`` spectrum)."""
        from .prepared import prepare

        return prepare(with_processing(data, params), params)

    def warm_up(self, params: DeconvolveParams, n: int) -> None:
        """The batch path's imports (lmfit, scipy.signal, the engine) and its compiled kernel."""
        from .stacks import warm_up

        warm_up(params, n)
