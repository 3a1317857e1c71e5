"""Near-edge fit of an EELS core-loss edge (π* on an edge step, σ* above), spectra and spectrum images.

Model (energy loss ``E`` in eV, fitted over ``[background window start, E0 + fit_hi]``)::

    I(E) = B(E)                                   pre-edge background (power law A E^-r by default)
         + a_pi  G(E; c_pi, s_pi)                 π* resonance, area-normalised Gaussian, a_pi >= 0
         + h     S(E; c_pi + step_offset, width)  continuum edge step, height h >= 0, moves with π*
         + a_ss  G(E; c_ss, s_ss)                 σ* region, one broad Gaussian, a_ss >= 0

with the π* centre bounded below the lowest σ* centre (``edges.EdgeRecipe``), so π* cannot run into σ*.

``S`` is a C1 quadratic-spline step (the CDF of a triangular distribution of full width ``width``):
``S = [d1^2 - 2 d2^2 + d3^2] / (2 w^2)``, ``d_k = max(E - t_k, 0)``, knots ``t_k = t_1 + (k-1) w``,
``w = width / 2``. Why this form: the batch engine (:mod:`specproc.fitting.batch`) has analytic
kernels for truncated quadratics (its Sneddon-cone kernel ``2/pi E tan(alpha) max(x - x0, 0)^2`` with
``alpha = 45 deg``, ``nu = 0``) but no error-function step; three of them with tied amplitudes
``(1, -2, 1)`` and knots tied to the π* centre (affine links) give a smooth step the engine fits with
analytic Jacobians, so spectra and spectrum images use one model and one engine.

Onset rule (documented, reported as ``edge.onset_eV``): the leading-edge half maximum of the fitted π*
resonance, ``c_pi - FWHM/2``, with its standard error from the fit covariance.

Procedure: (1) optional zero-loss alignment with a low-loss spectrum (Gaussian fit of the zero-loss
peak top, lmfit), else the stated ``energy_offset_eV``; (2) pre-edge background fit
(:mod:`.background`) with its extrapolation error; spectra with negative counts or without a
significant edge are reported and not fitted; (3) optional Fourier-ratio deconvolution (exspy) of the
background-subtracted edge with the low-loss spectrum — the edge model is then fitted without a
background; (4) the joint fit above with :func:`specproc.fitting.batch.fit_batch` (one spectrum or
every pixel of a spectrum image, warm starts from neighbours), Poisson weights ``1/sqrt(counts)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...core.errors import ParameterError, ProcessingError
from ...core.numbers import finite_or_none
from ...fitting.uncertainty import on_bound
from . import background as bgmod
from .edges import EdgeRecipe, recipe

PROCESSOR = "eels.fit_edge"
SQ2PI = math.sqrt(2 * math.pi)
HWHM = math.sqrt(2 * math.log(2))  # HWHM / sigma of a Gaussian
MIN_EDGE_SNR = 5.0
FAIL_R2_NET = 0.5
WARN_R2_NET = 0.8
FAIL_R2 = 0.9          # r² of the whole fit: the toolkit's poor-fit rule (fitting.uncertainty.fit_warnings)
FAIL_CHI_RATIO = 9.0   # edge-fit redchi / pre-edge redchi: residual RMS 3x the noise (toolkit misfit factor)
WARN_CHI_RATIO = 4.0

#: failure codes of spectra / pixels (bit flags in the ``flags`` map)
FLAGS = {"negative_counts": 1, "no_edge": 2, "not_converged": 4, "pi_at_bound": 8, "poor_fit": 16,
         "no_stderr": 32}


# ====================================================================== model
@dataclass
class EdgeModel:
    """The lmfit composite model of the near-edge region and its Parameters."""

    rec: EdgeRecipe
    background: str = "power_law"
    degree: int = 2
    with_background: bool = True

    def build(self, starts: dict[str, float]):
        from lmfit import Parameters
        from lmfit.models import GaussianModel

        from ...fitting.components import SneddonConeModel

        r = self.rec
        w = r.step_width / 2.0
        parts = [GaussianModel(prefix="pi_"), SneddonConeModel(prefix="st1_"), SneddonConeModel(prefix="st2_"),
                 SneddonConeModel(prefix="st3_"), GaussianModel(prefix="ss_")]
        if self.with_background:
            parts.insert(0, bgmod.lmfit_model(self.background, self.degree))
        model = parts[0]
        for p in parts[1:]:
            model = model + p
        p = Parameters()
        if self.with_background:
            for name, v in starts.items():
                if name.startswith("bg_"):
                    p.add(name, value=float(v))
            if self.background == "power_law":
                p["bg_amplitude"].set(min=0)
        lo, hi = r.window("pi_center")
        p.add("pi_amplitude", value=starts["pi_amplitude"], min=0)
        p.add("pi_center", value=float(np.clip(starts["pi_center"], lo, hi)), min=lo, max=hi)
        p.add("pi_sigma", value=float(np.clip(starts["pi_sigma"], *r.pi_sigma)), min=r.pi_sigma[0], max=r.pi_sigma[1])
        p.add("st1_E", value=starts["st1_E"], min=0)
        p.add("st2_E", expr="-2*st1_E", min=-np.inf, max=np.inf)
        p.add("st3_E", expr="st1_E", min=-np.inf, max=np.inf)
        for k in (1, 2, 3):
            p.add(f"st{k}_alpha", value=45.0, vary=False)
            p.add(f"st{k}_nu", value=0.0, vary=False)
            p.add(f"st{k}_baseline", value=0.0, vary=False)
            p.add(f"st{k}_contact_point", expr=f"pi_center + {r.step_offset + (k - 1) * w!r}",
                  min=-np.inf, max=np.inf)
        slo, shi = r.window("sigma_center")
        p.add("ss_amplitude", value=starts["ss_amplitude"], min=0)
        p.add("ss_center", value=float(np.clip(starts["ss_center"], slo, shi)), min=slo, max=shi)
        p.add("ss_sigma", value=float(np.clip(starts["ss_sigma"], *r.sigma_sigma)), min=r.sigma_sigma[0],
              max=r.sigma_sigma[1])
        # derived quantities (standard errors through the full covariance)
        p.add("pi_fwhm", expr=f"{2 * HWHM!r}*pi_sigma")
        p.add("onset", expr=f"pi_center - {HWHM!r}*pi_sigma")
        p.add("step_height", expr=f"st1_E*{4 * w * w / math.pi!r}")
        p.add("ss_fwhm", expr=f"{2 * HWHM!r}*ss_sigma")
        p.add("pi_sigma_ratio", expr="pi_amplitude/ss_amplitude")
        return model, p

    @property
    def step_knot_width(self) -> float:
        return self.rec.step_width / 2.0


def step_curve(E, center, height, rec: EdgeRecipe):
    """The fitted edge step ``h S(E)`` (for plots)."""
    w = rec.step_width / 2.0
    t1 = center + rec.step_offset
    d = [np.maximum(E - (t1 + k * w), 0.0) for k in range(3)]
    return height * (d[0] ** 2 - 2 * d[1] ** 2 + d[2] ** 2) / (2 * w * w)


# ====================================================================== helpers
def _smooth(Y, k=5):
    """Boxcar along the last axis (start values and weights only; scipy, one output array)."""
    from scipy.ndimage import uniform_filter1d

    return uniform_filter1d(np.asarray(Y, float), k, axis=-1, mode="nearest")


def _pi_guess(E, sm_row, lo, hi):
    """π* start: the most prominent local maximum of the smoothed net signal in the π* window
    (the toolkit's ``pick_peaks``; a rising edge at the window end has no prominence), else the argmax."""
    from ...fitting.peaks import pick_peaks

    sel = np.flatnonzero((E >= lo) & (E <= hi))
    y = sm_row[sel]
    if not np.all(np.isfinite(y)):
        return float(E[sel][np.nanargmax(y)]) if np.isfinite(y).any() else 0.5 * (lo + hi)
    found = pick_peaks(E[sel], y, noise=1.0, snr=0.0, max_peaks=1, smooth=False)
    if found:
        return float(found[0]["center"])
    return float(E[sel][np.argmax(y)])


def _starts(E, net, rec: EdgeRecipe) -> dict[str, np.ndarray]:
    """Per-spectrum start values from the background-subtracted signal ``net`` (n, m).

    The π* start of every spectrum is the most prominent peak of the mean signal, refined to the
    local maximum within +-1.5 eV of it (cheap for spectrum images, robust against noise)."""
    n = net.shape[0]
    sm = _smooth(np.nan_to_num(net), 7)
    lo, hi = rec.window("pi_center")
    c_mean = _pi_guess(E, np.nanmean(sm, axis=0), lo, hi)
    near = (E >= max(lo, c_mean - 1.5)) & (E <= min(hi, c_mean + 1.5))
    if n == 1:
        near = (E >= lo) & (E <= hi)
        c_one = _pi_guess(E, sm[0], lo, hi)
        near &= np.abs(E - c_one) <= 1.5
    i = np.argmax(sm[:, near], axis=1)
    c = E[near][i]
    hpk = np.maximum(sm[:, near][np.arange(n), i], 1e-9)
    s0 = np.full(n, float(np.clip(0.5, *rec.pi_sigma)))
    # step start: half the mean signal 0.5-3.5 eV above the step's top (gathered columns, no big temporaries)
    i0 = np.clip(np.searchsorted(E, c + rec.step_offset + rec.step_width + 0.5), 0, E.size - 1)
    i1 = np.clip(np.searchsorted(E, c + rec.step_offset + rec.step_width + 3.5), 0, E.size - 1)
    cnt = int(max(np.max(i1 - i0), 1))
    cols = np.minimum(i0[:, None] + np.arange(cnt)[None, :], E.size - 1)
    h0 = np.maximum(0.5 * sm[np.arange(n)[:, None], cols].mean(axis=1), 0)
    h0 = np.where(np.isfinite(h0) & (i1 > i0), h0, 0.2 * hpk)
    slo, shi = rec.window("sigma_center")
    ssel = (E >= slo) & (E <= min(shi, E[-1]))
    if ssel.sum() >= 3:
        j = np.argmax(sm[:, ssel], axis=1)
        cs = E[ssel][j]
        hs = np.maximum(sm[:, ssel][np.arange(n), j] - h0, 0.05 * hpk)
    else:
        cs, hs = np.full(n, slo + 2.0), 0.3 * hpk
    ss0 = float(np.clip(4.0, *rec.sigma_sigma))
    w = rec.step_width / 2.0
    return {"pi_center": c, "pi_sigma": s0, "pi_amplitude": hpk * s0 * SQ2PI, "st1_E": h0 * math.pi / (4 * w * w),
            "ss_center": np.clip(cs, slo, shi), "ss_sigma": np.full(n, ss0), "ss_amplitude": hs * ss0 * SQ2PI}


def _energy(m):
    E = np.asarray(m.coords["energy"].values, float)
    if m.coords["energy"].attrs.get("units", "eV") not in ("eV", "electron_volt"):
        raise ParameterError(f"energy axis in {m.coords['energy'].attrs.get('units')!r}; expected eV")
    return E


def _read_lowloss(lowloss):
    from ...core.measurement import check_measurement

    if lowloss is None:
        return None
    if isinstance(lowloss, (str, bytes)) or hasattr(lowloss, "__fspath__"):
        from ...io import read

        lowloss = read(lowloss)
    return check_measurement(lowloss, "eels", "lowloss")


def zero_loss_centre(ll) -> tuple[float, float | None, float]:
    """Centre (eV), its standard error and FWHM of the zero-loss peak of a low-loss spectrum.

    The summed spectrum's top (channels above half maximum around the maximum within +-20 eV) is
    fitted with lmfit's Gaussian; raises ProcessingError without a zero-loss peak.
    """
    from lmfit.models import GaussianModel

    E = np.asarray(ll.coords["energy"].values, float)
    y = np.asarray(ll.values, float).reshape(-1, E.size).sum(axis=0)
    near = np.abs(E) <= 20.0
    src = ll.attrs.get("provenance", {}).get("source")
    if near.sum() < 5:
        raise ProcessingError("low-loss spectrum has no channels within +-20 eV of zero loss", src)
    i = int(np.flatnonzero(near)[np.argmax(y[near])])
    half = y[i] / 2
    if not y[i] > 0 or y[i] < 5 * np.median(np.abs(y)):
        raise ProcessingError("low-loss spectrum: no zero-loss peak within +-20 eV", src)
    a = i
    while a > 0 and y[a - 1] > half:
        a -= 1
    b = i
    while b < y.size - 1 and y[b + 1] > half:
        b += 1
    a, b = max(a - 1, 0), min(b + 2, y.size)
    if b - a < 4:
        a, b = max(i - 2, 0), min(i + 3, y.size)
    g = GaussianModel()
    x, yy = E[a:b], y[a:b]
    pars = g.make_params(amplitude=float(yy.sum() * abs(E[1] - E[0]) * 1.3), center=float(E[i]),
                         sigma=float(max((E[b - 1] - E[a]) / 2.5, abs(E[1] - E[0]))))
    res = g.fit(yy, pars, x=x)
    c = float(res.params["center"].value)
    se = res.params["center"].stderr
    if not np.isfinite(c) or not (x[0] <= c <= x[-1]):
        c, se = float(E[i]), None
    return c, (float(se) if se is not None and np.isfinite(se) else None), float(res.params["fwhm"].value)


def align_pixels(E, Y, stack, ll):
    """Align every pixel of a core-loss image on its own zero-loss peak (exspy, subpixel).

    Returns the calibrated energy axis, the aligned core-loss rows ``(n, m')`` (channels that any shift
    would leave empty are cropped), the aligned low-loss axis and rows, and the SD (eV) of the
    per-pixel zero-loss centres before alignment.
    """
    import exspy  # noqa: F401
    from exspy.signals import EELSSpectrum
    from hyperspy.defaults_parser import preferences

    preferences.General.show_progressbar = False
    llE = np.asarray(ll.coords["energy"].values, float)

    def signal(data, axis):
        sig = EELSSpectrum(np.asarray(data, float).reshape(tuple(stack) + (axis.size,)))
        ax = sig.axes_manager.signal_axes[0]
        ax.offset, ax.scale, ax.units = float(axis[0]), float(np.median(np.diff(axis))), "eV"
        return sig

    cl, low = signal(Y, E), signal(np.asarray(ll.values, float), llE)
    centres = np.asarray(low.estimate_zero_loss_peak_centre().data, float)
    low.align_zero_loss_peak(calibrate=True, also_align=[cl], subpixel=True, print_stats=False, crop=True,
                             show_progressbar=False)
    n = int(np.prod(stack))
    return (np.asarray(cl.axes_manager.signal_axes[0].axis, float), cl.data.reshape(n, -1),
            np.asarray(low.axes_manager.signal_axes[0].axis, float), low.data.reshape(n, -1),
            float(np.nanstd(centres)))


def _resized_lowloss(ll, llE, llY):
    from ...core.measurement import new_measurement

    dims = ll.dims[:-1]
    coords = [(d, ll.coords[d].values, ll.coords[d].attrs.get("units", "px")) for d in dims]
    return new_measurement(llY.reshape(ll.shape[:-1] + (llE.size,)), coords + [("energy", llE, "eV")],
                           technique="eels", units=ll.attrs.get("units", "counts"), allow_nan=True)


def fourier_ratio(E, net, ll_E, ll_Y, stack):
    """Fourier-ratio deconvolution (exspy) of background-subtracted spectra ``net`` (n, m)."""
    import exspy  # noqa: F401  (registers EELSSpectrum)
    from exspy.signals import EELSSpectrum
    from hyperspy.defaults_parser import preferences

    preferences.General.show_progressbar = False  # in memory only: no progress bars in CLI output

    scale = float(np.median(np.diff(E)))
    ll_grid = np.arange(ll_E[0], ll_E[-1], scale)
    ll_Y = np.asarray(ll_Y, float)
    ll_i = np.stack([np.interp(ll_grid, ll_E, row) for row in ll_Y.reshape(-1, ll_E.size)])
    if ll_i.shape[0] == 1 and net.shape[0] > 1:
        ll_i = np.broadcast_to(ll_i, (net.shape[0], ll_i.shape[1]))
    cl = EELSSpectrum(net.reshape(tuple(stack) + (E.size,)))
    ax = cl.axes_manager.signal_axes[0]
    ax.offset, ax.scale, ax.units = float(E[0]), scale, "eV"
    ll = EELSSpectrum(np.ascontiguousarray(ll_i).reshape(tuple(stack) + (ll_grid.size,)))
    ax = ll.axes_manager.signal_axes[0]
    ax.offset, ax.scale, ax.units = float(ll_grid[0]), scale, "eV"
    try:
        out = cl.fourier_ratio_deconvolution(ll, extrapolate_coreloss=True)
    except Exception:  # power-law extrapolation of a noisy net tail can fail; the plain ratio still works
        out = cl.fourier_ratio_deconvolution(ll, extrapolate_coreloss=False)
    return np.asarray(out.data, float).reshape(net.shape[0], -1)[:, :E.size]


# ====================================================================== main entry
def fit_edge(m, edge: str = "B K", background: str = "power_law", background_window=None, fit_window=None,
             poly_degree: int = 2, lowloss: Any = None, energy_offset_eV: float = 0.0, deconvolve: bool = True,
             warm_start: bool = True, min_edge_snr: float = MIN_EDGE_SNR):
    """Fit the near-edge structure of ``edge`` in an EELS spectrum or spectrum image.

    Parameters
    ----------
    m : xarray.DataArray
        EELS measurement, last dim ``energy`` (eV); ``("energy",)`` or ``(..., "energy")``.
    edge : str
        Edge with a near-edge recipe (``"B K"``, ``"C K"``, ``"N K"``, ``"O K"``).
    background : {"power_law", "exponential", "polynomial"}
        Pre-edge background model.
    background_window : (lo, hi), optional
        Pre-edge window (eV); default from the onset table (``E0 - 30`` to ``E0 - 6``).
    fit_window : (lo, hi), optional
        Fitted range (eV); default background window start to ``E0 + 32``.
    poly_degree : int
        Degree of the polynomial background.
    lowloss : str, Path or measurement, optional
        Low-loss spectrum of the same area: zero-loss alignment and Fourier-ratio deconvolution.
    energy_offset_eV : float
        Stated energy offset added to the axis when no low-loss spectrum is given (eV).
    deconvolve : bool
        Fourier-ratio deconvolution when a low-loss spectrum is given.
    warm_start : bool
        Spectrum images: seed each pixel from its converged neighbour (batch engine).
    min_edge_snr : float
        An edge whose integrated net signal is below this many standard errors is "no edge".

    Returns
    -------
    Result
        Quantities ``pi_star.energy_eV``, ``pi_star.fwhm_eV``, ``pi_star.intensity``,
        ``sigma_star.energy_eV``, ``sigma_star.intensity``, ``pi_sigma_ratio``, ``edge.onset_eV``,
        ``edge.step_height``, ``background.r`` (power law), ``background.at_onset``; for a spectrum
        image the per-pixel maps in ``Result.data`` (xarray Dataset) and map statistics.
    """
    from ...core.measurement import check_measurement, label, reader_notes

    check_measurement(m, "eels")
    src = m.attrs.get("provenance", {}).get("source")
    if m.dims[-1] != "energy":
        raise ParameterError("the last dim of an EELS measurement must be 'energy'", src)
    rec = recipe(edge)
    if background not in bgmod.KINDS:
        raise ParameterError(f"background {background!r}: one of {', '.join(bgmod.KINDS)}", src)
    E = _energy(m)
    if not np.all(np.diff(E) > 0):
        raise ProcessingError("energy axis is not increasing", src)
    stack = tuple(m.shape[:-1])
    nav_dims = tuple(m.dims[:-1])
    Y = np.asarray(m.values).reshape(-1, E.size)
    warnings: list[str] = reader_notes(m)  # what the reader assumed (e.g. MSA units) stays with the result
    run_params = {"edge": rec.edge, "background": background, "background_window": background_window,
                  "fit_window": fit_window, "poly_degree": poly_degree, "energy_offset_eV": energy_offset_eV,
                  "deconvolve": deconvolve, "warm_start": warm_start, "min_edge_snr": min_edge_snr,
                  "lowloss": lowloss if lowloss is None or isinstance(lowloss, str) else
                  (getattr(lowloss, "attrs", {}).get("provenance", {}).get("source") or "<measurement>")}
    meta: dict[str, Any] = {"edge": rec.edge, "tabulated_onset_eV": rec.onset, "background_model": background,
                            "min_edge_snr": float(min_edge_snr), "params": run_params,
                            "acquisition": dict(m.attrs.get("acquisition", {}))}

    # (1) energy calibration, windows, (2) background and validity, (3) deconvolution, (4) the joint fit
    E, Y, ll, shift = _calibrate(m, E, Y, stack, lowloss, energy_offset_eV, meta, warnings)
    bw, fsel, Ef = _windows(rec, E, background_window, fit_window, src, meta)
    Yf = np.asarray(Y[:, fsel], float)
    bgf, net, weights, snr, flags, fit_rows = _background_and_validity(Ef, Yf, bw, rec, background, poly_degree,
                                                                      min_edge_snr)
    net, deconvolved = _deconvolve(E, Y, fsel, bw, bgf, ll, shift, stack, net, fit_rows, deconvolve, meta, warnings)

    # ---------------------------------------------------------------- (4) joint fit
    emodel = EdgeModel(rec, background, poly_degree, with_background=not deconvolved)
    starts = _starts(Ef, net, rec)
    for name, v in bgf.values.items():
        if not name.startswith("bg_at_"):
            starts[name] = v
    target = net if deconvolved else Yf
    del net  # big maps: only what the fit needs stays in memory
    W = None if deconvolved else weights
    ds, params, model = _fit(emodel, Ef, target, W, starts, fit_rows, stack, warm_start)

    stats = _stats(ds, params, model, emodel, Ef, target, None if deconvolved else bgf, W,
                   None if deconvolved else bgf.redchi)
    flags = flags | stats["flags"]
    if stack:
        return _map_result(m, rec, E, Ef, ds, stats, flags, snr, meta, warnings, nav_dims, stack, target,
                           emodel, params, model, fit_rows, bgf, label(m), deconvolved)
    return _spectrum_result(m, rec, Ef, ds, stats, int(flags[0]), float(snr[0]), meta, warnings, target,
                            bgf.evaluate(Ef)[0] if not deconvolved else None, emodel, params, model, bgf, label(m),
                            deconvolved)


def _calibrate(m, E, Y, stack, lowloss, energy_offset_eV, meta, warnings):
    """(1) The energy zero: the low-loss zero-loss peak (per pixel for a low-loss image of the same pixels),
    else the stated offset. -> (E, Y, low-loss or None, shift applied to the low-loss axis)"""
    ll = _read_lowloss(lowloss)
    if ll is not None:
        meta["lowloss_input"] = dict(ll.attrs.get("provenance", {}))
        zlp, zlp_se, zlp_fwhm = zero_loss_centre(ll)
        shift = -zlp
        meta["energy_calibration"] = {"method": "zero-loss alignment", "zlp_centre_eV": zlp,
                                      "zlp_centre_stderr_eV": zlp_se, "zlp_fwhm_eV": zlp_fwhm, "shift_eV": shift}
        if abs(energy_offset_eV) > 0:
            warnings.append("energy_offset_eV ignored: the low-loss spectrum sets the energy zero")
    else:
        shift = float(energy_offset_eV)
        meta["energy_calibration"] = {"method": "stated offset (no low-loss spectrum)", "shift_eV": shift}
    E = E + shift
    if ll is not None and stack and tuple(ll.shape[:-1]) == stack:
        # a low-loss image of the same pixels: align every pixel (drifts differ across a map)
        E, Y, llE_al, llY_al, drift_sd = align_pixels(np.asarray(m.coords["energy"].values, float), Y, stack, ll)
        meta["energy_calibration"].update(method="zero-loss alignment per pixel (exspy align_zero_loss_peak, "
                                                 "subpixel)", pixel_zlp_sd_eV=drift_sd, shift_eV=None)
        ll = _resized_lowloss(ll, llE_al, llY_al)
        shift = 0.0

    return E, Y, ll, shift


def _windows(rec, E, background_window, fit_window, src, meta):
    """The background and fitted windows, checked against the near-edge region. -> (bw, fsel, Ef)"""
    bw = tuple(sorted(map(float, background_window))) if background_window is not None else rec.window("pre")
    fw = tuple(sorted(map(float, fit_window))) if fit_window is not None else (bw[0], rec.window("fit")[1])
    pi_lo, pi_hi = rec.window("pi_center")
    if bw[1] > pi_lo:
        raise ParameterError(f"background window {bw[0]:g}-{bw[1]:g} eV must end below the π* search window "
                             f"({pi_lo:g}-{pi_hi:g} eV)", src)
    need_hi = rec.window("sigma_center")[0] + 4.0
    if E[0] > pi_lo or E[-1] < need_hi:
        raise ProcessingError(f"energy range {E[0]:.4g}-{E[-1]:.4g} eV does not cover the {rec.edge} near-edge "
                              f"region ({pi_lo:g}-{need_hi:g} eV)", src)
    bw = (max(bw[0], E[0]), bw[1])
    fsel = (E >= min(fw[0], bw[0])) & (E <= min(fw[1], E[-1]))
    Ef = E[fsel]
    meta.update(background_window_eV=list(bw), fit_window_eV=[float(Ef[0]), float(Ef[-1])])

    return bw, fsel, Ef


def _background_and_validity(Ef, Yf, bw, rec, background, poly_degree, min_edge_snr):
    """(2) Poisson weights, the pre-edge background of every row, the edge's significance and the rows to fit.
    -> (background fit, net signal, weights, edge S/N, flags, rows to fit)"""
    pi_lo = rec.window("pi_center")[0]
    pre = (Ef >= bw[0]) & (Ef <= bw[1])
    edge_sel = (Ef >= pi_lo) & (Ef <= rec.window("sigma_center")[0])
    negative = (np.mean(Yf <= 0, axis=1) > 0.05) | (np.median(Yf[:, pre], axis=1) <= 0)
    # Poisson weights 1/sqrt(counts), counts from a 5-channel boxcar, floored (in place: big maps)
    weights = _smooth(Yf, 5)
    floor = max(float(np.median(weights[~negative])) * 0.01, 1e-12) if (~negative).any() else 1.0
    np.maximum(weights, floor, out=weights)
    np.sqrt(weights, out=weights)
    np.divide(1.0, weights, out=weights)
    bgf = bgmod.fit_background(Ef, Yf, bw, kind=background, degree=poly_degree, at=(rec.onset,),
                               weights=weights, rows=~negative)
    net = Yf - bgf.evaluate(Ef)
    k = int(edge_sel.sum())
    bg_se = np.nan_to_num(bgf.at[rec.onset][1], nan=np.inf)
    s_edge = np.nansum(net[:, edge_sel], axis=1)
    noise = np.sqrt(k * bgf.rms ** 2 + (k * bg_se) ** 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        snr = s_edge / noise
    no_edge = ~negative & ~(snr >= min_edge_snr)
    flags = np.where(negative, FLAGS["negative_counts"], 0) | np.where(no_edge, FLAGS["no_edge"], 0)
    fit_rows = flags == 0

    return bgf, net, weights, snr, flags, fit_rows


def _deconvolve(E, Y, fsel, bw, bgf, ll, shift, stack, net, fit_rows, deconvolve, meta, warnings):
    """(3) Fourier-ratio deconvolution of the background-free signal by the low-loss (when asked and possible).
    -> (net signal, deconvolved?)"""
    deconvolved = False
    if ll is not None and deconvolve and fit_rows.any():
        full = np.zeros_like(Y, dtype=float)
        full_sel = E >= bw[0]
        full[:, full_sel] = np.asarray(Y[:, full_sel], float) - bgf.evaluate(E[full_sel])
        llE = np.asarray(ll.coords["energy"].values, float) + shift
        llY = np.asarray(ll.values, float).reshape(-1, llE.size)
        if llY.shape[0] not in (1, Y.shape[0]):
            llY = llY.mean(axis=0, keepdims=True)
            warnings.append("low-loss image shape differs from the core-loss: its mean spectrum was used")
        try:
            dec = fourier_ratio(E, full, llE, llY, stack if stack else (1,))[:, fsel]
            net = dec
            deconvolved = True
            meta["deconvolution"] = "Fourier-ratio (exspy), background removed first"
            warnings.append("Fourier-ratio deconvolution: standard errors ignore the noise correlation it "
                            "introduces (likely underestimated)")
        except Exception as exc:
            warnings.append(f"Fourier-ratio deconvolution failed ({type(exc).__name__}: {exc}); fitted as measured")

    return net, deconvolved


def _finite_median(v) -> float:
    """Median of the finite values (NaN when none): unfitted spectra have all-NaN starts, and
    np.nanmedian warns for them (silencing it with warnings.catch_warnings is not thread-safe)."""
    v = np.asarray(v, float)
    v = v[np.isfinite(v)]
    return float(np.median(v)) if v.size else float("nan")


def _fit(emodel: EdgeModel, Ef, target, W, starts, fit_rows, stack, warm_start):
    from ...fitting.batch import fit_batch

    rows = np.flatnonzero(fit_rows)
    med = {k: _finite_median(v[rows] if rows.size else v) for k, v in starts.items()}
    med = {k: float(v) if np.isfinite(v) else 1.0 for k, v in med.items()}
    model, params = emodel.build(med)
    Yfit = np.asarray(target, float)
    if not fit_rows.all():
        Yfit = Yfit.copy()
        Yfit[~fit_rows] = np.nan  # not fitted: masked by the engine
    indep = [n for n, p in params.items() if not p.expr and p.vary]
    init = {k: np.nan_to_num(np.asarray(starts[k], float), nan=med[k]) for k in indep if k in starts}
    for k, p in params.items():  # starts inside the bounds
        if k in init:
            init[k] = np.clip(init[k], p.min, p.max)
    Wf = W  # finite by construction (1/sqrt of a positive floor)
    dims = ("y", "x") if len(stack) == 2 else tuple(f"d{i}" for i in range(len(stack)))
    ds = fit_batch(model, Ef, Yfit.reshape(tuple(stack) + (Ef.size,)) if stack else Yfit, params=params, init=init,
                   weights=None if Wf is None else (Wf.reshape(tuple(stack) + (Ef.size,)) if stack else Wf),
                   warm_start=bool(warm_start and len(stack) >= 1 and Yfit.shape[0] > 1),
                   dims=dims if stack else ("spectrum",))
    return ds, params, model


def _flat(ds, name):
    return np.asarray(ds[name].values, float).reshape(-1)


def _stats(ds, params, model, emodel: EdgeModel, Ef, target, bgf, weights, pre_redchi):
    """Per-spectrum failure flags, bound checks and fit quality.

    Quality: the weighted r^2 of the background-subtracted signal, and (weighted fits) the ratio of
    the edge fit's reduced chi^2 to the pre-edge fit's, i.e. residual variance in units of the noise
    the background fit saw: ~1 for an adequate model, > 4 for structure the model lacks."""
    from ...fitting.batch import evaluate_batch

    rec = emodel.rec
    success = np.asarray(ds["success"].values).reshape(-1).astype(bool)
    masked = np.asarray(ds["masked"].values).reshape(-1).astype(bool) if "masked" in ds else ~success
    flags = np.zeros(success.size, np.int64)
    c, s, a = _flat(ds, "pi_center"), _flat(ds, "pi_sigma"), _flat(ds, "pi_amplitude")
    amax = np.nanmax(np.abs(a)) if np.isfinite(a).any() else 0.0
    pi_b = on_bound(c, *rec.window("pi_center")) | on_bound(s, *rec.pi_sigma) | (a <= 1e-12 * amax)
    ss_b = on_bound(_flat(ds, "ss_center"), *rec.window("sigma_center")) | \
        on_bound(_flat(ds, "ss_sigma"), *rec.sigma_sigma) | (_flat(ds, "ss_amplitude") <= 0)
    step_b = _flat(ds, "st1_E") <= 0
    # fit quality: weighted r^2 of the background-subtracted signal over the fit window,
    # 1 - chi^2 / sum (w (net - weighted mean))^2, in blocks (no (n, m) temporaries for big maps)
    n = success.size
    chisqr = _flat(ds, "chisqr")
    ssw = np.full(n, np.nan)
    for s0 in range(0, n, 1024):
        sl = slice(s0, min(n, s0 + 1024))
        net = target[sl] - (bgf.evaluate(Ef, rows=sl) if bgf is not None else 0.0)
        w2 = np.ones_like(net) if weights is None else np.broadcast_to(weights[sl] ** 2, net.shape)
        with np.errstate(invalid="ignore", divide="ignore"):
            mw = np.sum(w2 * net, axis=1, keepdims=True) / np.sum(w2, axis=1, keepdims=True)
            ssw[sl] = np.sum(w2 * (net - mw) ** 2, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2_net = np.where(masked, np.nan, 1 - chisqr / ssw)
    with np.errstate(invalid="ignore", divide="ignore"):
        chi_ratio = _flat(ds, "redchi") / pre_redchi if pre_redchi is not None else np.full(n, np.nan)
    fit = (np.asarray(evaluate_batch(model, Ef, ds, params=params), float).reshape(n, -1) if n == 1 else None)
    noise = _noise_stats(ds, params, model, Ef, target, weights, bgf, fit)
    cse = _flat(ds, "pi_center_stderr")
    fitted = ~masked
    flags |= np.where(fitted & ~success, FLAGS["not_converged"], 0)
    flags |= np.where(fitted & pi_b, FLAGS["pi_at_bound"], 0)
    r2 = _flat(ds, "r2")
    poor = ~(r2_net >= FAIL_R2_NET) | ~(r2 >= FAIL_R2) | (chi_ratio > FAIL_CHI_RATIO)
    flags |= np.where(fitted & poor, FLAGS["poor_fit"], 0)
    flags |= np.where(fitted & ~(np.isfinite(cse) & (cse > 0)), FLAGS["no_stderr"], 0)
    return dict(flags=flags, pi_bound=pi_b, ss_bound=ss_b, step_bound=step_b, r2_net=r2_net, fit=fit,
                chi_ratio=chi_ratio, fitted=fitted, **noise)


def _noise_stats(ds, params, model, Ef, target, weights, bgf, fit=None) -> dict:
    """Per-spectrum noise, measured on the data, and χ²/ν normalised by it.

    Returns arrays (n,): ``redchi_noise`` (≈ 1 for a fit down to the noise), ``redchi_poisson``
    (χ²/ν with the Poisson σ = √counts of the weights), ``noise_scale`` (robust SD of the
    Poisson-weighted residual of the pre-edge background fit: 1 for raw electron counts, √gain for
    counts scaled by a detector gain, < 1 for smoothed or summed data) and ``noise_sd`` (robust SD of
    the joint fit's residual over the fit window, counts).

    Poisson-aware: the χ² is the Poisson-weighted one. Where ``noise_scale`` is 1 within its
    statistical error (3 standard errors) the counts are taken as raw and ``redchi_noise`` is the
    Poisson χ²/ν (exact σ, no estimate); otherwise it is divided by ``noise_scale²`` (``raw_counts``
    False), so a detector gain that changes the noise from √counts neither passes for a misfit nor
    hides one. The scale comes from the pre-edge, where only the background is fitted: a
    misfit of the edge (measured: a line left out, 13σ high) raised the joint residual's own robust
    SD by 10-40 % and hid a third of the misfit. Without weights (deconvolved edges) the engine's
    noise statistics of the residual (:func:`specproc.fitting.batch.fit_batch`). Noise SDs are
    :func:`specproc.fitting.noise.noise_sigma`'s, in blocks of spectra (maps).
    """
    from ...fitting.batch import evaluate_batch
    from ...fitting.noise import noise_sigma_rows

    n = _flat(ds, "chisqr").size
    nan = np.full(n, np.nan)
    if weights is None:   # unweighted (deconvolved): the engine's noise SD of the residual
        return dict(noise_sd=_flat(ds, "noise_sd") if "noise_sd" in ds else nan,
                    redchi_noise=_flat(ds, "redchi_noise") if "redchi_noise" in ds else nan,
                    redchi_poisson=nan, noise_scale=nan, raw_counts=np.zeros(n, bool))
    ok = np.isfinite(_flat(ds, "chisqr")) & ~np.asarray(ds["masked"].values, bool).reshape(-1)
    pre = (Ef >= bgf.window[0]) & (Ef <= bgf.window[1])
    scale, sd = nan.copy(), nan.copy()
    step = max(1, (1 << 20) // max(Ef.size, 1))
    flat_ds = ds.stack(_row=list(ds["chisqr"].dims)) if ds["chisqr"].ndim > 1 else ds
    for s0 in range(0, n, step):
        sl = slice(s0, min(n, s0 + step))
        keep = ok[sl]
        rows = np.arange(sl.start, sl.stop)[keep]
        if not rows.size:
            continue
        y = np.asarray(target[sl], float)[keep]
        w = np.asarray(weights[sl], float)[keep]
        bg = bgf.evaluate(Ef[pre], rows=sl)[keep]
        scale[rows] = noise_sigma_rows((y[:, pre] - bg) * w[:, pre])
        if fit is not None and n == 1:
            f = fit
        else:
            f = np.asarray(evaluate_batch(model, Ef, flat_ds.isel({flat_ds["chisqr"].dims[0]: rows}), params=params),
                           float).reshape(rows.size, -1)
        sd[rows] = noise_sigma_rows(y - f)
    rc_poisson = np.where(ok, _flat(ds, "redchi"), np.nan)          # Poisson-weighted χ²/ν
    # raw counts: the scale is 1 within what the pre-edge can tell (3 standard errors of a MAD-based
    # SD: 1.17/sqrt(points)); the exact Poisson σ is then better than any estimate of it
    raw = np.abs(scale - 1.0) <= 3 * 1.17 / math.sqrt(max(int(pre.sum()), 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        rc_noise = np.where(ok & (scale > 0), rc_poisson / np.where(raw, 1.0, scale ** 2), np.nan)
    return dict(noise_sd=sd, redchi_noise=rc_noise, redchi_poisson=rc_poisson, noise_scale=scale, raw_counts=raw)


def describe_flags(code: int) -> list[str]:
    return [k for k, v in FLAGS.items() if code & v]


# ====================================================================== results
#: the result's quantities: (component, property) key, fitted parameter, unit, description
_Q = [(("pi_star", "energy_eV"), "pi_center", "eV", "π* peak energy (Gaussian centre)"),
      (("pi_star", "fwhm_eV"), "pi_fwhm", "eV", "π* FWHM"),
      (("pi_star", "intensity"), "pi_amplitude", "counts eV", "π* integrated intensity (Gaussian area)"),
      (("sigma_star", "energy_eV"), "ss_center", "eV", "σ* Gaussian centre"),
      (("sigma_star", "intensity"), "ss_amplitude", "counts eV", "σ* integrated intensity (Gaussian area)"),
      ((None, "pi_sigma_ratio"), "pi_sigma_ratio", "", "π*/σ* ratio of integrated intensities"),
      (("edge", "onset_eV"), "onset", "eV", "edge onset: leading-edge half maximum of π* (centre - FWHM/2)"),
      (("edge", "step_height"), "step_height", "counts", "continuum edge step height")]


def _column(key: tuple) -> str:
    """The map variable of a quantity key: ``("pi_star", "energy_eV") -> "pi_star_energy_eV"``."""
    return "_".join(k for k in key if k)


def _spectrum_result(m, rec, Ef, ds, stats, flag, snr, meta, warnings, target, bg_curve, emodel, params, model,
                     bgf, sample, deconvolved):
    import pandas as pd

    from ...core.result import Quantities, Result

    quantities = Quantities()
    v = {k: float(_flat(ds, k)[0]) for k in params if k in ds}
    se = {k: float(_flat(ds, k + "_stderr")[0]) for k in params if k + "_stderr" in ds}
    fail = describe_flags(flag)
    if "negative_counts" in fail:
        warnings.append("negative counts in the edge window (dark-subtracted noise?): not fitted")
    if "no_edge" in fail:
        lim = meta.get("min_edge_snr", MIN_EDGE_SNR)
        warnings.append(f"no {rec.edge} edge: net edge signal is {snr:.2g} standard errors (< {lim:g}); not fitted")
    fitted = not ({"negative_counts", "no_edge"} & set(fail))
    pi_bad = bool(stats["pi_bound"][0]) if fitted else True
    ss_bad = bool(stats["ss_bound"][0]) if fitted else True
    if fitted:
        if "not_converged" in fail:
            warnings.append("edge fit did not converge")
        if pi_bad:
            warnings.append("π* parameter at a bound (centre/width at its limit or no π* intensity): "
                            "π* values have no standard error")
        if ss_bad:
            warnings.append("σ* parameter at a bound: σ* values and the π*/σ* ratio have no standard error")
        if bool(stats["step_bound"][0]):
            warnings.append("edge step height at zero (no continuum step found)")
        r2n, cr = float(stats["r2_net"][0]), float(stats["chi_ratio"][0])
        r2a = float(_flat(ds, "r2")[0])
        if not r2n >= WARN_R2_NET or cr > WARN_CHI_RATIO or not r2a >= FAIL_R2:
            warnings.append(f"poor fit of the edge: r² {r2a:.3f} (background-subtracted signal {r2n:.3f}), "
                            f"residual variance {cr:.3g}x the pre-edge noise"
                            + (" (no standard errors given)" if "poor_fit" in fail else ""))
        for name, key, unit, desc in _Q:
            bad = (pi_bad and key in ("pi_center", "pi_fwhm", "pi_amplitude", "onset", "pi_sigma_ratio")) or \
                  (ss_bad and key in ("ss_center", "ss_amplitude", "pi_sigma_ratio")) or \
                  (key == "step_height" and bool(stats["step_bound"][0]))
            err = se.get(key)
            no_err = {"not_converged", "poor_fit", "no_stderr"} & set(fail)
            err = None if bad or no_err or err is None or not np.isfinite(err) else err
            quantities.add(*name, v.get(key, np.nan), err, unit, desc)
        if emodel.background == "power_law" and not deconvolved:
            quantities.add("background", "r", -v["bg_exponent"], se.get("bg_exponent"), "",
                           "power-law exponent r of A E^-r (joint fit)")
        b0, b0se = bgf.at[rec.onset]
        quantities.add("background", "at_onset", float(b0[0]), float(b0se[0]) if np.isfinite(b0se[0]) else None,
                       "counts", f"pre-edge fit extrapolated to {rec.onset:g} eV")
    rows = []
    if fitted:
        q = quantities
        rows = [{"name": "pi*", "energy_eV": q["pi_star.energy_eV"].value,
                 "energy_eV_stderr": q["pi_star.energy_eV"].stderr, "fwhm_eV": q["pi_star.fwhm_eV"].value,
                 "fwhm_eV_stderr": q["pi_star.fwhm_eV"].stderr if q["pi_star.energy_eV"].stderr is not None else None,
                 "intensity": q["pi_star.intensity"].value, "intensity_stderr": q["pi_star.intensity"].stderr,
                 "at_bound": pi_bad},
                {"name": "sigma*", "energy_eV": q["sigma_star.energy_eV"].value,
                 "energy_eV_stderr": q["sigma_star.energy_eV"].stderr, "fwhm_eV": v.get("ss_fwhm"),
                 "fwhm_eV_stderr": None if ss_bad else se.get("ss_fwhm"),
                 "intensity": q["sigma_star.intensity"].value, "intensity_stderr": q["sigma_star.intensity"].stderr,
                 "at_bound": ss_bad}]
    table = pd.DataFrame(rows, columns=["name", "energy_eV", "energy_eV_stderr", "fwhm_eV", "fwhm_eV_stderr",
                                        "intensity", "intensity_stderr", "at_bound"])
    stats_out = {"r2": float(_flat(ds, "r2")[0]), "r2_net": float(stats["r2_net"][0]),
                 "chi2_ratio_to_pre_edge": float(stats["chi_ratio"][0]),
                 "redchi": float(_flat(ds, "redchi")[0]),
                 # noise-normalised χ²/ν (≈ 1 for a fit down to the noise; core.numbers.noise_redchi reads it)
                 "redchi_noise": finite_or_none(stats["redchi_noise"][0]),
                 "redchi_poisson": finite_or_none(stats["redchi_poisson"][0]),
                 "noise_sd": finite_or_none(stats["noise_sd"][0]),
                 "noise_scale": finite_or_none(stats["noise_scale"][0]),
                 "weighting": "unweighted (deconvolved)" if deconvolved else "Poisson 1/sqrt(counts)",
                 "noise_model": ("robust noise SD of the residual" if deconvolved else
                                 "Poisson (raw counts)" if bool(stats["raw_counts"][0]) else
                                 "Poisson x measured pre-edge noise scale (counts not raw)"),
                 "nfev": int(_flat(ds, "nfev")[0]) if "nfev" in ds else None,
                 "success": bool(np.asarray(ds["success"].values).reshape(-1)[0]), "edge_snr": snr,
                 "status": "ok" if not fail else ",".join(fail)}
    meta.update(deconvolved=deconvolved, status=stats_out["status"])
    plots = [_spectrum_plot(m, rec, Ef, target[0], stats["fit"][0] if fitted else None, bg_curve, v if fitted else None,
                            emodel, sample, deconvolved)]
    return Result(processor=PROCESSOR, technique="eels", sample=sample, quantities=quantities,
                  tables={"peaks": table}, main_table="peaks", plots=plots, params=meta.get("params", {}),
                  inputs=[m.attrs.get("provenance", {})] + ([meta["lowloss_input"]] if "lowloss_input" in meta else []),
                  stats=stats_out, warnings=warnings, meta=meta, native=ds)


def _components(Ef, v, rec):
    from lmfit.lineshapes import gaussian

    pi = gaussian(Ef, v["pi_amplitude"], v["pi_center"], v["pi_sigma"])
    ss = gaussian(Ef, v["ss_amplitude"], v["ss_center"], v["ss_sigma"])
    st = step_curve(Ef, v["pi_center"], v["step_height"], rec)
    return pi, st, ss


def _spectrum_plot(m, rec, Ef, y, fit, bg, v, emodel, sample, deconvolved):
    base = bg if bg is not None else np.zeros_like(Ef)
    series = [{"name": "data" + (" (deconvolved, background removed)" if deconvolved else ""), "y": y,
               "role": "data"}]
    if fit is not None and v is not None:
        pi, st, ss = _components(Ef, v, rec)
        if bg is not None:
            series.append({"name": "background (power law)" if emodel.background == "power_law" else
                           f"background ({emodel.background})", "y": bg, "role": "baseline"})
        series += [{"name": "fit", "y": fit, "role": "fit"},
                   {"name": "π*", "y": base + pi, "role": "component"},
                   {"name": "edge step", "y": base + st, "role": "component"},
                   {"name": "σ*", "y": base + ss, "role": "component"},
                   {"name": "residual", "y": y - fit, "role": "residual"}]
    lo, hi = rec.window("pi_center")
    return {"kind": "spectrum", "title": f"EELS {rec.edge} — {sample}", "x": Ef, "x_label": "energy loss (eV)",
            "y_label": "intensity (counts)", "series": series, "x_range": [lo - 4.0, float(Ef[-1])]}


def _map_result(m, rec, E, Ef, ds, stats, flags, snr, meta, warnings, nav_dims, stack, target, emodel, params,
                model, fit_rows, bgf, sample, deconvolved):
    import pandas as pd
    import xarray as xr

    from ...core.result import Quantities, Result

    n = flags.size
    failed = flags != 0
    pi_ok = ~failed
    coords = {d: m.coords[d] for d in nav_dims}
    dims = nav_dims

    def arr(a):
        return xr.DataArray(np.asarray(a, float).reshape(stack), dims=dims, coords=coords)

    def var(key, good):
        val = np.where(good, _flat(ds, key), np.nan)
        err = np.where(good, _flat(ds, key + "_stderr"), np.nan)
        return arr(val), arr(err)

    out = {}
    for name, key, unit, desc in _Q:
        good = pi_ok & ~(stats["ss_bound"] & np.isin(key, ["ss_center", "ss_amplitude", "pi_sigma_ratio"]))
        val, err = var(key, good)
        nm = _column(name)
        out[nm] = val.assign_attrs(units=unit, long_name=desc)
        out[nm + "_stderr"] = err.assign_attrs(units=unit)
    out["r2_net"] = arr(np.where(stats["fitted"], stats["r2_net"], np.nan)).assign_attrs(
        long_name="weighted r² of the background-subtracted signal over the fit window")
    out["redchi"] = arr(_flat(ds, "redchi"))
    out["redchi_noise"] = arr(stats["redchi_noise"]).assign_attrs(
        long_name="reduced chi² with the residual's measured noise as sigma (≈ 1 for a fit down to the noise)")
    out["noise_sd"] = arr(stats["noise_sd"]).assign_attrs(units="counts", long_name="robust noise SD of the residual")
    out["chi2_ratio_to_pre_edge"] = arr(stats["chi_ratio"]).assign_attrs(
        long_name="edge-fit reduced chi² / pre-edge reduced chi²")
    out["edge_snr"] = arr(snr).assign_attrs(long_name="net edge signal / its standard error")
    out["flags"] = xr.DataArray(flags.reshape(stack), dims=dims, coords=coords).assign_attrs(
        meaning=", ".join(f"{v}={k}" for k, v in FLAGS.items()))
    out["failed"] = xr.DataArray(failed.reshape(stack), dims=dims, coords=coords)
    for k, bit in FLAGS.items():
        out[f"mask_{k}"] = xr.DataArray((flags & bit).astype(bool).reshape(stack), dims=dims, coords=coords)
    data = xr.Dataset(out, attrs={"edge": rec.edge, "n_pixels": n})
    e = data["pi_star_energy_eV"].values.reshape(-1)
    valid = np.isfinite(e)
    nv = int(valid.sum())
    summary = {"mean": float(np.mean(e[valid])) if nv else None, "median": float(np.median(e[valid])) if nv else None,
               "std": float(np.std(e[valid], ddof=1)) if nv > 1 else None, "n_valid": nv, "n_pixels": n}
    meta.update(map_summary=summary, shape=list(stack), deconvolved=deconvolved, flags=FLAGS)
    counts = {k: int(((flags & b) != 0).sum()) for k, b in FLAGS.items() if ((flags & b) != 0).any()}
    if failed.any():
        warnings.append(f"{int(failed.sum())} of {n} pixels failed ("
                        + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items()) + "): masked in the maps")
    if nv == 0:
        warnings.append(f"no pixel gave a π* energy for {rec.edge}")
    quantities = Quantities()
    for name, key, unit, desc in _Q:
        col = data[_column(name)].values.reshape(-1)
        ok = np.isfinite(col)
        if ok.sum():
            sem = float(np.std(col[ok], ddof=1) / math.sqrt(ok.sum())) if ok.sum() > 1 else None
            quantities.add(*name, float(np.mean(col[ok])), sem, unit, f"{desc}; mean over {int(ok.sum())} "
                           "valid pixels, error = standard error of the mean")
    if nv:
        quantities.add("pi_star.energy_eV", "median", summary["median"], None, "eV", "median over valid pixels")
        quantities.add("pi_star.energy_eV", "std", summary["std"] or 0.0, None, "eV", "pixel-to-pixel SD")
    quantities.add("map", "n_valid", float(nv), None, "", "pixels with a π* energy")
    quantities.add("map", "failed_fraction", float(failed.mean()), None, "", "fraction of failed pixels")
    table = pd.DataFrame([{"quantity": k, "value": q.value, "stderr": q.stderr, "unit": q.unit}
                          for k, q in quantities.items()])
    plots = _map_plots(data, nav_dims, m, rec, sample)
    stats_out = {"n_pixels": n, "n_valid": nv, "n_failed": int(failed.sum()),
                 "median_r2_net": float(np.nanmedian(stats["r2_net"])) if np.isfinite(stats["r2_net"]).any() else None,
                 "median_redchi_noise": (float(np.nanmedian(stats["redchi_noise"]))
                                         if np.isfinite(stats["redchi_noise"]).any() else None),
                 "fit_seconds": float(ds.attrs.get("timings", {}).get("total", np.nan))}
    return Result(processor=PROCESSOR, technique="eels", sample=sample, quantities=quantities,
                  tables={"map_summary": table}, main_table="map_summary", plots=plots,
                  params=meta.get("params", {}),
                  inputs=[m.attrs.get("provenance", {})] + ([meta["lowloss_input"]] if "lowloss_input" in meta else []),
                  stats=stats_out, warnings=warnings, meta=meta, data=data,
                  native=ds)


def _map_plots(data, nav_dims, m, rec, sample):
    def axis(d):
        return np.asarray(m.coords[d].values, float), f"{d} ({m.coords[d].attrs.get('units', '')})"

    plots = []
    if len(nav_dims) == 2:
        (y, ylab), (x, xlab) = axis(nav_dims[0]), axis(nav_dims[1])
        for key, title, zl in (("pi_star_energy_eV", "π* energy", "π* energy (eV)"),
                               ("pi_star_energy_eV_stderr", "π* energy standard error", "stderr (eV)"),
                               ("pi_star_intensity", "π* intensity", "counts eV"),
                               ("r2_net", "fit quality (net r²)", "r²")):
            plots.append({"kind": "map", "title": f"EELS {rec.edge} — {title} — {sample}",
                          "z": data[key].values, "x": x, "y": y, "x_label": xlab, "y_label": ylab, "z_label": zl})
    if len(nav_dims) == 1:  # line scan: the π* profile with its error bars
        x, xlab = axis(nav_dims[0])
        plots.append({"kind": "xy", "title": f"EELS {rec.edge} — π* energy profile — {sample}", "x": x,
                      "x_label": xlab, "y_label": "π* energy (eV)",
                      "series": [{"name": "π* energy", "y": data["pi_star_energy_eV"].values,
                                  "err": data["pi_star_energy_eV_stderr"].values, "mode": "markers"}]})
    e = data["pi_star_energy_eV"].values.reshape(-1)
    if np.isfinite(e).any():
        plots.append({"kind": "histogram", "title": f"EELS {rec.edge} — π* energy of valid pixels — {sample}",
                      "x_label": "π* energy (eV)", "y_label": "pixels",
                      "bins": int(np.clip(np.sqrt(np.isfinite(e).sum()), 5, 60)),
                      "series": [{"name": "π* energy", "values": e[np.isfinite(e)]}]})
    return plots
