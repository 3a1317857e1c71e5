"""Spectra of one sample at several B0 fields fitted jointly (issue #27).

The isotropic chemical shift is a constant in ppm, while the second-order quadrupolar line of a
half-integer spin (its width and its quadrupolar-induced shift) scales with ``CQ² / ν0``: in ppm,
with ``1 / ν0²``. One field cannot always tell a shift from a quadrupolar effect; two fields can.
:func:`fit_fields` fits every spectrum with its own intensities and broadening and **one** set
of site parameters: ``center`` (δiso, ppm), ``cq_mhz`` and ``eta`` for a ``quadrupolar`` site,
``sigma_mhz`` for a ``czjzek`` site, ``cq0_mhz``, ``eta0``, ``eps`` for an ``ext-czjzek`` site,
``delta_aniso_ppm`` and ``eta`` for a ``csa`` site (a chemical-shift tensor is the same in ppm at every
field; under MAS its sidebands sit at each field's own rate in ppm, so two fields are two
Herzfeld–Berger manifolds of one tensor), ``center`` alone for the ordinary lineshapes of the registry
(``gaussian``, ``lorentzian``, ``pseudo-voigt``, ``voigt``: the same position in ppm at each field).
With a MAS rate (``acquisition["mas_rate_hz"]`` or ``mas_rate_hz=``) a ``quadrupolar`` site carries
its CT spinning sidebands computed by the model at each field's rate
(:func:`specproc.fitting.nmr_models.ct_mas`), and a ``csa`` site its sideband manifold.

>>> from specproc.techniques.nmr.multifield import fit_fields              # doctest: +SKIP
>>> fit = fit_fields([m_9T, m_14T], peaks=[{"name": "N2BH", "center": 25, "shape": "quadrupolar"}])
>>> fit.quantities["N2BH.cq_mhz"]                                          # doctest: +SKIP

The residuals of each spectrum are divided by its robust noise SD (:func:`specproc.fitting.noise.
noise_sigma`), so a noisy field does not outweigh a clean one; the standard errors come from the
joint covariance (lmfit ``leastsq``).
"""
from __future__ import annotations

import math

import numpy as np

from ...core.errors import FitError, ParameterError

#: shapes fit_fields knows, and the site parameters shared by every field
SHARED = {"quadrupolar": ("center", "cq_mhz", "eta"), "czjzek": ("center", "sigma_mhz"),
          "ext-czjzek": ("center", "cq0_mhz", "eta0", "eps"), "csa": ("center", "delta_aniso_ppm", "eta"),
          "gaussian": ("center",), "lorentzian": ("center",), "pseudo-voigt": ("center",), "voigt": ("center",)}
#: shapes of the central transition of a half-integer quadrupolar nucleus
_CT = ("quadrupolar", "czjzek", "ext-czjzek")
_UNITS = {"center": "ppm", "cq_mhz": "MHz", "eta": "", "sigma_mhz": "MHz", "cq0_mhz": "MHz", "eta0": "", "eps": "",
          "delta_aniso_ppm": "ppm"}
_QUANTITY = {"center": "center_ppm", "cq_mhz": "cq_mhz", "eta": "eta", "sigma_mhz": "sigma_mhz", "cq0_mhz": "cq0_mhz",
             "eta0": "eta0", "eps": "eps", "delta_aniso_ppm": "delta_aniso_ppm"}


def _spectrum(m, i):
    """(ppm axis descending, real intensities, sf_mhz, nucleus, mas_rate_hz, source) of one input."""
    from .processing import process

    if not hasattr(m, "dims") or not hasattr(m, "attrs"):
        raise ParameterError(f"fit_fields: input {i} is not a measurement (got {type(m).__name__})")
    src = (m.attrs.get("provenance") or {}).get("source")
    if "time" in m.dims:
        m = process(m)
    if m.dims != ("shift",):
        raise ParameterError(f"fit_fields: input {i} has dims {m.dims}; one 1D spectrum (dim 'shift') per field",
                             src)
    acq = m.attrs.get("acquisition") or {}
    sf = acq.get("sf_mhz") or acq.get("sfo1_mhz") or acq.get("bf1_mhz")
    nucleus = m.attrs.get("nucleus") or (m.attrs.get("metadata") or {}).get("nucleus")
    if not sf or not np.isfinite(float(sf)) or float(sf) <= 0:
        raise ParameterError(f"fit_fields: input {i} has no spectrometer frequency (acquisition sf_mhz)", src)
    x = np.asarray(m.coords["shift"].values, float)
    y = np.real(np.asarray(m.values))
    if x[0] < x[-1]:
        x, y = x[::-1], y[::-1]
    return x, np.asarray(y, float), float(sf), nucleus, acq.get("mas_rate_hz"), src


def _parse(peaks) -> list[dict]:
    if isinstance(peaks, dict):
        peaks = [dict(v, name=k) if isinstance(v, dict) else {"name": k, "center": v} for k, v in peaks.items()]
    if not peaks:
        raise ParameterError("fit_fields: give the sites (peaks=[{'name', 'center', 'shape', ...}])")
    out = []
    for i, p in enumerate(peaks, 1):
        p = dict(p) if isinstance(p, dict) else {"center": p}
        p.setdefault("name", f"p{i}")
        p.setdefault("shape", "gaussian")
        if p["shape"] not in SHARED:
            raise ParameterError(f"fit_fields: peak {p['name']!r} has shape {p['shape']!r}; one of {list(SHARED)}")
        try:
            p["center"] = float(p["center"])
        except (KeyError, TypeError, ValueError):
            raise ParameterError(f"fit_fields: peak {p['name']!r} needs a numeric 'center' (ppm)") from None
        out.append(p)
    names = [p["name"] for p in out]
    if len(set(names)) != len(names):
        raise ParameterError(f"fit_fields: peak names must be unique: {names}")
    return out


def _pid(name: str) -> str:
    from ...fitting.models import prefix_of

    return prefix_of(name)


def _width(x, y) -> float:
    """FWHM (ppm) of the strongest feature of a spectrum (a start for widths and CQ)."""
    i = int(np.argmax(y))
    half = y[i] / 2
    lo, hi = i, i
    while lo > 0 and y[lo] > half:
        lo -= 1
    while hi < y.size - 1 and y[hi] > half:
        hi += 1
    return max(abs(x[hi] - x[lo]), 2 * abs(x[1] - x[0]))


def fit_fields(spectra, peaks, *, static: bool = False, mas_rate_hz=None, baseline: str = "none", region=None,
               max_nfev: int = 4000):
    """Fit spectra of one sample recorded at different B0 fields with shared site parameters.

    Parameters
    ----------
    spectra : list of Measurement
        One NMR spectrum (dim ``shift`` in ppm; an FID is processed with the defaults of
        :func:`~specproc.techniques.nmr.processing.process`) per field, of the same nucleus, with
        ``acquisition["sf_mhz"]`` (MHz) set and different from each other.
    peaks : list of dict or dict
        Sites: ``name``, ``center`` (start of δiso, ppm), ``shape`` (``quadrupolar``, ``czjzek``,
        ``ext-czjzek``, ``csa``, ``gaussian``, ``lorentzian``, ``pseudo-voigt``, ``voigt``), starts
        ``cq_mhz``, ``eta``, ``sigma_mhz``, ``cq0_mhz``, ``eta0``, ``eps``, ``delta_aniso_ppm``. Without
        them a ``csa`` site starts from the Herzfeld–Berger grid search of each field (the best on all
        fields together), an ``ext-czjzek`` site from its coarse (η0, ε, CQ0) search likewise.
        ``{name: ppm}`` gives Gaussian sites.
    static : bool
        Static spectra (static CT, Czjzek kernels and CSA powder patterns) instead of MAS. Default False.
    mas_rate_hz : float or list of float, optional
        MAS rate (Hz) of every spectrum, or one per spectrum; default each spectrum's
        ``acquisition["mas_rate_hz"]``. With a rate, ``quadrupolar`` sites carry their CT sidebands
        computed by the model and ``csa`` sites their sideband manifold, each field at its own rate
        in ppm (Hz / sf MHz); ``czjzek`` / ``ext-czjzek`` are fast-MAS centre bands (fit the centre
        band's ``region``). Without a rate, quadrupolar CT sites are fast MAS, and a ``csa`` site needs
        ``static=True``.
    baseline : {"none", "constant", "linear"}
        A baseline per spectrum.
    region : (float, float), optional
        ppm range fitted in every spectrum.
    max_nfev : int
        Limit of model evaluations.

    Returns
    -------
    Result
        ``processor="nmr.fit_fields"``; quantities ``<site>.center_ppm`` (δiso) and the shape's shared
        parameters ``<site>.cq_mhz``, ``.eta``, ``.sigma_mhz``, ``.cq0_mhz``, ``.eta0``, ``.eps``,
        ``.delta_aniso_ppm`` (with standard errors from the joint covariance; None at a bound) and per
        field ``<site>.area@<sf> MHz``; table ``sites`` (one row per site and field); ``meta["fields_mhz"]``,
        ``meta["mas_rates_hz"]``; warnings for parameters at a bound, a misfit of one field (reduced
        χ² > 4 after noise normalisation) and fields too close to separate the effects.

    Raises
    ------
    ParameterError
        Fewer than two spectra, different nuclei, equal fields, unknown shapes, no quadrupolar
        nucleus for a CT site, a ``csa`` site without a MAS rate or ``static=True``, a bad rate, no
        common points in ``region``.
    FitError
        The joint fit failed.
    """
    import lmfit

    spectra = list(spectra)
    if len(spectra) < 2:
        raise ParameterError("fit_fields: give at least two spectra (one per B0 field)")
    if baseline not in ("none", "constant", "linear"):
        raise ParameterError(f"fit_fields: baseline {baseline!r}; one of none, constant, linear")
    sites = _parse(peaks)
    nucleus, spin, fields = _fields(spectra, sites, region, mas_rate_hz, static)
    model = _joint_model(sites, fields, baseline, nucleus, spin, static)
    P = _parameters(sites, fields, baseline, spin, static, model)

    def resid(p):
        v = p.valuesdict()
        return np.concatenate([(f["y"] - model(k, v)) / f["noise"] for k, f in enumerate(fields)])

    try:
        res = lmfit.minimize(resid, P, method="leastsq", max_nfev=max_nfev)
        res = _csa_other_branch(res, resid, sites, max_nfev)
    except Exception as exc:  # noqa: BLE001 - reported with the files
        raise FitError(f"fit_fields: joint fit failed: {type(exc).__name__}: {exc}", fields[0]["src"]) from None
    return _result(spectra, sites, fields, res, model, nucleus, static, baseline, region)


def _csa_other_branch(res, resid, sites, max_nfev):
    """A CSA site whose η ended at 1 sits on the seam of Haeberlen's convention: (δ, η = 1) and (−δ, η = 1)
    are one tensor, and a tensor just past the seam is (≈ −δ, η < 1) — where a bounded fit cannot go
    (bench_nmr_models: 2 of 100 13C fits ended at η = 1 with the sign of δaniso opposite to the truth's,
    η 0.72 / 0.86). Refit from the other branch (−δ, η = 0.9); the lower χ² is kept."""
    import lmfit

    for s in sites:
        if s["shape"] != "csa":
            continue
        pre = _pid(s["name"])
        d, e = res.params[pre + "delta_aniso_ppm"], res.params[pre + "eta"]
        if e.value < 1.0 - 1e-3:
            continue
        p = res.params.copy()
        p[pre + "delta_aniso_ppm"].value = float(np.clip(-d.value, d.min, d.max))
        p[pre + "eta"].value = 0.9
        other = lmfit.minimize(resid, p, method="leastsq", max_nfev=max_nfev)
        if other.chisqr < res.chisqr:
            res = other
    return res


def _rates(mas_rate_hz, data):
    """MAS rate (Hz or None) of every spectrum: the argument (one for all, or one per spectrum), else
    each spectrum's acquisition."""
    n = len(data)
    if mas_rate_hz is None:
        rates = [d[4] for d in data]
    elif np.ndim(mas_rate_hz) == 0:
        rates = [mas_rate_hz] * n
    else:
        rates = list(mas_rate_hz)
        if len(rates) != n:
            raise ParameterError(f"fit_fields: {len(rates)} MAS rates for {n} spectra; one per spectrum")
    out = []
    for r, d in zip(rates, data):
        if r is None:
            out.append(None)
            continue
        try:
            r = float(r)
        except (TypeError, ValueError):
            raise ParameterError(f"fit_fields: MAS rate {r!r} is not a number (Hz)", d[5]) from None
        if not np.isfinite(r) or r < 0:
            raise ParameterError(f"fit_fields: MAS rate {r!r} Hz; a finite rate >= 0 (0: none given)", d[5])
        out.append(r or None)
    return out


def _fields(spectra, sites, region, mas_rate_hz=None, static=False):
    """The spectra checked (one nucleus, different fields, a quadrupolar nucleus for CT sites, a rate or
    ``static`` for CSA sites) and cut to ``region``: (nucleus, spin, [dict(x, y, sf, src, noise, dx, w,
    rate_hz, rate, nucleus)]) with ``rate`` the MAS rate in ppm (None: fast MAS / not given, or static)."""
    from ...fitting.nmr_models import spin_of
    from ...fitting.noise import noise_sigma
    from .sidebands import rate_ppm

    data = [_spectrum(m, i) for i, m in enumerate(spectra)]
    nuclei = {d[3] for d in data}
    if len(nuclei) > 1:
        raise ParameterError(f"fit_fields: the spectra are of different nuclei {sorted(map(str, nuclei))}",
                             data[1][5])
    nucleus = next(iter(nuclei))
    sfs = [d[2] for d in data]
    if len({round(s, 3) for s in sfs}) < len(sfs):
        raise ParameterError(f"fit_fields: two spectra share one field ({sfs} MHz); one spectrum per field",
                             data[1][5])
    spin = spin_of(nucleus)
    if any(s["shape"] in _CT for s in sites):
        if spin is None or spin < 1.5 or (2 * spin) % 2 != 1:
            raise ParameterError(f"fit_fields: {nucleus} (spin {spin}) has no quadrupolar central transition",
                                 data[0][5])
    rates = _rates(mas_rate_hz, data)
    if not static and any(s["shape"] == "csa" for s in sites):
        for r, d in zip(rates, data):
            if r is None:
                raise ParameterError("fit_fields: a csa site needs the MAS rate of every spectrum "
                                     "(acquisition mas_rate_hz or mas_rate_hz=), or static=True", d[5])
    fields = []
    for (x, y, sf, _nuc, _rate, src), r in zip(data, rates):
        if region is not None:
            lo, hi = sorted(map(float, region))
            keep = (x >= lo) & (x <= hi)
            if keep.sum() < 10:
                raise ParameterError(f"fit_fields: fewer than 10 points of this spectrum in region {region}", src)
            x, y = x[keep], y[keep]
        fields.append(dict(x=x, y=y, sf=sf, src=src,
                           noise=float(max(noise_sigma(y), 1e-12 * max(np.abs(y).max(), 1e-300))),
                           dx=float(np.median(np.abs(np.diff(x)))), w=_width(x, y), rate_hz=r, nucleus=nucleus,
                           rate=None if static or r is None else rate_ppm(r, sf)))
    return nucleus, spin, fields


def _ct_cq_max(spin, fields) -> float:
    """Largest CQ (MHz) the finite-speed CT kernel takes at every field with a rate: it refuses
    x = f CQ²/(ν0 ν_r) > 12 (f = (I(I+1) - 3/4) / (2I(2I-1))², the CT's second-order width factor;
    :func:`specproc.fitting.nmr_models.ct_sideband_cdfs`); 2 % inside, so a fit reaches the bound
    (and warns) instead of failing."""
    f = (spin * (spin + 1) - 0.75) / (2 * spin * (2 * spin - 1)) ** 2
    lims = [fl["sf"] * math.sqrt(12.0 * 0.98 * fl["rate"] / (f * 1e6)) for fl in fields if fl["rate"]]
    return min([50.0] + lims)


def _parameters(sites, fields, baseline, spin, static, model):
    """lmfit Parameters: shared site parameters (δiso and the shape's own) and per-field areas, widths and
    baselines. CSA and extended-Czjzek sites without starts take the best, on all fields together, of
    each field's start search (:mod:`specproc.techniques.nmr.models`)."""
    import lmfit

    from ...fitting.nmr_models import EXT_EPS

    P = lmfit.Parameters()
    span = max(float(np.ptp(f["x"])) for f in fields)
    rates = [f["rate"] for f in fields if f["rate"]]
    for s in sites:
        pre = _pid(s["name"])
        half = span / 4
        if s["shape"] == "csa" and rates:  # a manifold's centre could hop by one rotor period: half of one
            half = min(rates) / 2
        P.add(pre + "center", value=s["center"], min=s["center"] - half,
              max=s["center"] + half + (0 if s["shape"] == "csa" and rates else span / (4 * np.pi)))
        f0 = fields[0]
        if s["shape"] == "quadrupolar":
            cq = s.get("cq_mhz") or math.sqrt(max(f0["w"], f0["dx"]) / 1e6 / 2.0) * f0["sf"]
            cmax = _ct_cq_max(spin, fields)
            P.add(pre + "cq_mhz", value=float(min(cq, 0.9 * cmax)), min=1e-3, max=cmax)
            P.add(pre + "eta", value=float(s.get("eta", 0.5)), min=0.0, max=1.0)
        if s["shape"] == "czjzek":
            sm = s.get("sigma_mhz") or math.sqrt(max(f0["w"], f0["dx"]) / 1e6 / 4.0) * f0["sf"]
            P.add(pre + "sigma_mhz", value=float(sm), min=1e-3, max=50.0)
        if s["shape"] == "ext-czjzek":
            P.add(pre + "cq0_mhz", value=float(s.get("cq0_mhz", 2.0)), min=1e-3, max=50.0)
            P.add(pre + "eta0", value=float(s.get("eta0", 0.5)), min=0.0, max=1.0)
            P.add(pre + "eps", value=float(s.get("eps", 0.2)), min=float(EXT_EPS[0]), max=float(EXT_EPS[-1]))
        if s["shape"] == "csa":
            # the sideband manifold is tabulated up to |delta_aniso| = 400 rates (nmr_models.csa)
            dmax = 0.98 * 400.0 * min(rates) if rates else np.inf
            P.add(pre + "delta_aniso_ppm", value=float(s.get("delta_aniso_ppm", 0.5 * span / 4)), min=-dmax, max=dmax)
            P.add(pre + "eta", value=float(s.get("eta", 0.5)), min=0.0, max=1.0)
        for k, f in enumerate(fields):
            area = float(np.sum(np.clip(f["y"], 0, None)) * f["dx"]) / len(sites)
            P.add(f"f{k}_{pre}amplitude", value=max(area, 1e-12), min=0.0)
            div = 10 if s["shape"] in _CT or (s["shape"] == "csa" and not f["rate"]) else 2.5
            width = f["w"] / div
            P.add(f"f{k}_{pre}sigma", value=max(width, f["dx"]), min=f["dx"] / 4, max=float(np.ptp(f["x"])) / 4)
            if s["shape"] in ("pseudo-voigt",):
                P.add(f"f{k}_{pre}fraction", value=0.5, min=0.0, max=1.0)
            if s["shape"] == "voigt":
                P.add(f"f{k}_{pre}gamma", value=max(width, f["dx"]), min=0.0, max=float(np.ptp(f["x"])) / 4)
    for k, f in enumerate(fields):
        if baseline != "none":
            P.add(f"f{k}_bl_c0", value=float(np.percentile(f["y"], 5)))
        if baseline == "linear":
            P.add(f"f{k}_bl_c1", value=0.0)
    for s in sites:
        _searched_start(s, fields, P, spin, static, model)
    return P


def _searched_start(s, fields, P, spin, static, model):
    """Starts of a ``csa`` / ``ext-czjzek`` site the user did not give: each field's own grid search
    (:func:`~specproc.techniques.nmr.models.csa_start`, :func:`~specproc.techniques.nmr.models.ext_czjzek_start`)
    proposes a start; the one with the lowest joint χ² (free areas, other sites at their starts) is kept."""
    from .models import csa_start, ext_czjzek_start

    pre = _pid(s["name"])
    if s["shape"] == "csa" and "delta_aniso_ppm" not in s:
        keys = ("delta_aniso_ppm", "eta")
        cands = []
        for f in fields:
            d0, e0 = csa_start(f["x"], f["y"], s["center"], f["rate"] or 0.0, max(f["w"], 2 * f["dx"]), f["dx"])
            lim = P[pre + "delta_aniso_ppm"].max
            cands.append({keys[0]: float(np.clip(d0, -lim, lim)),
                          keys[1]: float(s.get("eta", np.clip(e0, 0.05, 0.95)))})
    elif s["shape"] == "ext-czjzek" and not {"cq0_mhz", "eta0", "eps"} <= set(s):
        keys = ("center", "cq0_mhz", "eta0", "eps")
        cands = []
        for k, f in enumerate(fields):
            lo, hi = P[pre + "center"].min, P[pre + "center"].max
            c0, cq0, e0, ep0, _a = ext_czjzek_start(f["x"], f["y"], s["center"], (lo, hi), max(f["w"], 2 * f["dx"]),
                                                   float(P[f"f{k}_{pre}sigma"].value), f["sf"], float(spin),
                                                   0.0 if static else 1.0)
            cands.append(dict(zip(keys, (c0, cq0, e0, ep0))))
    elif s["shape"] == "quadrupolar":
        # the given (or width-derived) start competes with a grid search: a local fit from a CQ well off the
        # truth falls into a narrow-line basin (CQ -> 0.3 MHz) or onto eta = 0 / 1 (bench_nmr_models, 19 % of
        # fast-MAS fits from CQ 2.2 MHz, chi2 1.06-130 x the truth's)
        keys = ("center", "cq_mhz", "eta")
        cands = [{k: float(P[pre + k].value) for k in keys}, _ct_search(s, fields, P, static)]
    else:
        return
    best, best_chi = None, np.inf
    for c in cands:
        v = P.valuesdict()
        v.update({pre + k: val for k, val in c.items()})
        chi = 0.0
        for k, f in enumerate(fields):  # the areas of this site scaled to the data (least squares)
            a = f"f{k}_{pre}amplitude"
            v[a] = 1.0
            with_unit = model(k, v)
            v[a] = 0.0
            rest = model(k, v)
            g = with_unit - rest
            amp = max(float(g @ (f["y"] - rest)) / max(float(g @ g), 1e-300), 0.0)
            chi += float(np.sum((f["y"] - rest - amp * g) ** 2)) / f["noise"] ** 2
        if chi < best_chi:
            best, best_chi = c, chi
    for k, val in best.items():
        par = P[pre + k]
        par.value = float(np.clip(val, par.min, par.max))


#: grid of the quadrupolar start search: eta nodes and CQ factors around the width-derived CQ
_CT_ETAS = (0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95)
_CT_CQ = tuple(np.geomspace(0.4, 2.0, 15))


def _ct_search(s, fields, P, static) -> dict:
    """Best (δiso, CQ, η) of a quadrupolar site on a coarse grid, all fields together.

    For every (η, CQ) node each field's line (the infinite-speed or static CT of the library: the
    centre band holds almost all of a finite-speed line, and the library costs no sideband kernels)
    is cross-correlated with the field's data (FFT), which gives its least-squares score
    ``C(c)² / N(c)`` (free area) for every shift ``c``; the fields' scores, interpolated on one grid of
    δiso within the site's centre bounds, add up (δiso is shared, the areas are not). The same
    idea as :func:`~specproc.techniques.nmr.models.ext_czjzek_start`, for a shared shift.
    """
    from scipy.signal import correlate

    from .quadrupolar import ct_lineshape

    pre = _pid(s["name"])
    lo, hi = P[pre + "center"].min, P[pre + "center"].max
    step = min(f["dx"] for f in fields)
    grid = np.arange(lo, hi + step / 2, step)
    cq_w = float(P[pre + "cq_mhz"].value)
    cmax = P[pre + "cq_mhz"].max
    best = (-np.inf, None)
    prepared = []
    for k, f in enumerate(fields):
        o = np.argsort(f["x"])
        xa, ya = f["x"][o], f["y"][o]
        ya = (ya - float(np.percentile(ya, 5))) / f["noise"]     # scores in noise units: fields add as chi2 does
        n, dx = xa.size, float(np.median(np.diff(xa)))
        if n < 8 or not np.allclose(np.diff(xa), dx, rtol=1e-4, atol=1e-9):   # shifts by whole points only
            return {k: float(P[pre + k].value) for k in ("center", "cq_mhz", "eta")}
        prepared.append((xa, ya, n, float(xa[n // 2]), dx, float(P[f"f{k}_{pre}sigma"].value)))
    for eta in _CT_ETAS:
        for fac in _CT_CQ:
            cq = min(cq_w * fac, cmax)
            score = np.zeros_like(grid)
            for (xa, ya, n, xm, dx, sig), f in zip(prepared, fields):
                g = ct_lineshape(xa, 1.0, xm, cq, eta, sig, isotope=str(f["nucleus"]),
                                 larmor_mhz=f["sf"], static=static)
                C = correlate(ya, g, mode="full", method="fft")       # C[j + n - 1] = sum_i ya[i] g[i - j]
                js = np.arange(-(n - 1), n)
                cs = np.cumsum(g * g)
                N = np.where(js >= 0, cs[np.clip(n - 1 - js, 0, n - 1)], cs[-1] - cs[np.clip(-js - 1, 0, n - 1)])
                sc = np.where((C > 0) & (N > 1e-12 * cs[-1]), C * C / np.maximum(N, 1e-300), 0.0)
                score += np.interp(grid, xm + js * dx, sc, left=0.0, right=0.0)
            i = int(np.argmax(score))
            if score[i] > best[0]:
                best = (float(score[i]), {"center": float(grid[i]), "cq_mhz": float(cq), "eta": float(eta)})
    return best[1]


def _joint_model(sites, fields, baseline, nucleus, spin, static):
    """``model(k, values) -> curve`` of field ``k``: every site's line at that field (at its own MAS rate in
    ppm), plus its baseline."""
    from ...fitting import lineshapes
    from ...fitting.nmr_models import csa, czjzek, ext_czjzek
    from .quadrupolar import ct_lineshape

    def component(k, s, v, x=None):
        f = fields[k]
        x = f["x"] if x is None else x
        pre = _pid(s["name"])
        amp, sig, c = v[f"f{k}_{pre}amplitude"], v[f"f{k}_{pre}sigma"], v[pre + "center"]
        mas = 0.0 if static else 1.0          # fast-MAS kernels of the Czjzek models take any rate > 0
        if s["shape"] == "quadrupolar":
            return ct_lineshape(x, amp, c, v[pre + "cq_mhz"], v[pre + "eta"], sig, isotope=str(nucleus),
                                larmor_mhz=f["sf"], static=static, rate_ppm=f["rate"])
        if s["shape"] == "czjzek":
            return czjzek(x, amp, c, v[pre + "sigma_mhz"], sig, 0.0, f["sf"], spin, mas)
        if s["shape"] == "ext-czjzek":
            return ext_czjzek(x, amp, c, v[pre + "cq0_mhz"], v[pre + "eta0"], v[pre + "eps"], sig, 0.0, f["sf"],
                              spin, mas)
        if s["shape"] == "csa":
            return csa(x, amp, c, v[pre + "delta_aniso_ppm"], v[pre + "eta"], sig, 0.0, f["rate"] or 0.0)
        extra = {}
        if s["shape"] == "pseudo-voigt":
            extra["fraction"] = v[f"f{k}_{pre}fraction"]
        if s["shape"] == "voigt":
            extra["gamma"] = v[f"f{k}_{pre}gamma"]
        return lineshapes.evaluate(s["shape"], x, amplitude=amp, center=c, sigma=sig, **extra)

    def model(k, v):
        f = fields[k]
        out = sum(component(k, s, v) for s in sites)
        if baseline != "none":
            out = out + v[f"f{k}_bl_c0"] + (v[f"f{k}_bl_c1"] * (f["x"] - f["x"].mean()) if baseline == "linear" else 0)
        return out

    return model


def _result(spectra, sites, fields, res, model, nucleus, static, baseline, region):
    """The Result of the joint fit: shared quantities with errors (none at a bound), per-field areas and
    widths, the checks (bounds, covariance, field ratio, each field's misfit)."""
    from ...core.result import Quantities, Result
    from ...fitting.uncertainty import at_bound, fit_warnings

    v = res.params.valuesdict()
    sfs = [f["sf"] for f in fields]
    bounded = at_bound(res.params)      # the toolkit's rule: these values are limits, with no error bar
    # an area at zero is a site absent at that field: its zero area is reported, not warned about
    warns = fit_warnings({}, [n for n in bounded if not n.endswith("amplitude")], params=res.params)
    if not res.success or res.covar is None:
        warns.append("the joint fit did not give a covariance: no standard errors")
    ratio = max(sfs) / min(sfs)
    if ratio < 1.2:
        warns.append(f"the fields differ by a factor {ratio:.3f} only: the shift and the quadrupolar effects are "
                     "barely separated (the second-order shift changes by 1/ratio^2)")
    field_stats = []
    for k, f in enumerate(fields):
        r = (f["y"] - model(k, v)) / f["noise"]
        redchi = float(np.sum(r * r) / max(r.size - res.nvarys / len(fields), 1))
        field_stats.append({"sf_mhz": f["sf"], "redchi": redchi, "n": int(r.size), "noise": f["noise"]})
        if redchi > 4:
            warns.append(f"field {f['sf']:g} MHz: reduced chi-square {redchi:.3g} after noise normalisation (> 4): "
                         "the shared model does not describe this spectrum")

    def err(name):
        if name in bounded:
            return None
        e = res.params[name].stderr
        return None if e is None or not np.isfinite(e) else float(e)

    quantities, rows = Quantities(), []
    for s in sites:
        pre = _pid(s["name"])
        for par in SHARED[s["shape"]]:
            quantities.add(s["name"], _QUANTITY[par], float(v[pre + par]), err(pre + par), _UNITS[par],
                           f"{par} shared by {len(fields)} fields")
        for k, f in enumerate(fields):
            a = f"f{k}_{pre}amplitude"
            quantities.add(s["name"], f"area@{f['sf']:g} MHz", float(v[a]), err(a), "", "site area")
            row = {"name": s["name"], "shape": s["shape"], "field_mhz": f["sf"], "mas_rate_hz": f["rate_hz"]}
            for par in SHARED[s["shape"]]:
                row[_QUANTITY[par]] = float(v[pre + par])
                row[_QUANTITY[par] + "_stderr"] = err(pre + par)
            row.update(area=float(v[a]), area_stderr=err(a), broadening_ppm=float(2.3548 * v[f"f{k}_{pre}sigma"]),
                       broadening_ppm_stderr=None if err(f"f{k}_{pre}sigma") is None else 2.3548 * err(
                           f"f{k}_{pre}sigma"))
            rows.append(row)
    import pandas as pd

    return Result(processor="nmr.fit_fields", technique="nmr", sample=str(spectra[0].attrs.get("sample", "")),
                  quantities=quantities, tables={"sites": pd.DataFrame(rows)}, main_table="sites",
                  params={"peaks": sites, "static": static, "baseline": baseline,
                          "region": list(region) if region is not None else None},
                  inputs=[dict(m.attrs.get("provenance") or {}) for m in spectra],
                  stats={"chisqr": float(res.chisqr), "redchi": float(res.redchi), "nfev": int(res.nfev),
                         "nvarys": int(res.nvarys), "ndata": int(res.ndata), "success": bool(res.success),
                         "fields": field_stats},
                  warnings=warns, meta={"nucleus": nucleus, "fields_mhz": sfs, "static": static,
                        "mas_rates_hz": [f["rate_hz"] for f in fields]},
                  native=res)
