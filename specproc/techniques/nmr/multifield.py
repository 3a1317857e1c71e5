"""Spectra of one sample at several B0 fields fitted jointly (issue #27).

The isotropic chemical shift is a constant in ppm, while the second-order quadrupolar line of a
half-integer spin (its width and its quadrupolar-induced shift) scales with ``CQ² / ν0``: in ppm,
with ``1 / ν0²``. One field cannot always tell a shift from a quadrupolar effect; two fields can.
:func:`fit_fields` fits every spectrum with its own intensities and broadening and **one** set
of site parameters: ``center`` (δiso, ppm), ``cq_mhz`` and ``eta`` for a ``quadrupolar`` site,
``sigma_mhz`` for a ``czjzek`` site, ``center`` alone for the ordinary lineshapes of the registry
(``gaussian``, ``lorentzian``, ``pseudo-voigt``, ``voigt``: the same position in ppm at each field).

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
          "gaussian": ("center",), "lorentzian": ("center",), "pseudo-voigt": ("center",), "voigt": ("center",)}
_UNITS = {"center": "ppm", "cq_mhz": "MHz", "eta": "", "sigma_mhz": "MHz"}
_QUANTITY = {"center": "center_ppm", "cq_mhz": "cq_mhz", "eta": "eta", "sigma_mhz": "sigma_mhz"}


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


def fit_fields(spectra, peaks, *, static: bool = False, baseline: str = "none", region=None, max_nfev: int = 4000):
    """Fit spectra of one sample recorded at different B0 fields with shared site parameters.

    Parameters
    ----------
    spectra : list of Measurement
        One NMR spectrum (dim ``shift`` in ppm; an FID is processed with the defaults of
        :func:`~specproc.techniques.nmr.processing.process`) per field, of the same nucleus, with
        ``acquisition["sf_mhz"]`` (MHz) set and different from each other.
    peaks : list of dict or dict
        Sites: ``name``, ``center`` (start of δiso, ppm), ``shape`` (``quadrupolar``, ``czjzek``,
        ``gaussian``, ``lorentzian``, ``pseudo-voigt``, ``voigt``), starts ``cq_mhz``, ``eta``,
        ``sigma_mhz``. ``{name: ppm}`` gives Gaussian sites.
    static : bool
        Static spectra (static CT and Czjzek kernels) instead of fast MAS. Default False.
    baseline : {"none", "constant", "linear"}
        A baseline per spectrum.
    region : (float, float), optional
        ppm range fitted in every spectrum.
    max_nfev : int
        Limit of model evaluations.

    Returns
    -------
    Result
        ``processor="nmr.fit_fields"``; quantities ``<site>.center_ppm`` (δiso), ``<site>.cq_mhz``,
        ``<site>.eta``, ``<site>.sigma_mhz`` (shared, with standard errors from the joint
        covariance) and per field ``<site>.area@<sf> MHz``; table ``sites`` (one row per site and
        field); ``meta["fields_mhz"]``; warnings for parameters at a bound, a misfit of one field
        (reduced χ² > 4 after noise normalisation) and fields too close to separate the effects.

    Raises
    ------
    ParameterError
        Fewer than two spectra, different nuclei, equal fields, unknown shapes, no quadrupolar
        nucleus for a quadrupolar site, no common points in ``region``.
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
    nucleus, spin, fields = _fields(spectra, sites, region)
    P = _parameters(sites, fields, baseline)
    model = _joint_model(sites, fields, baseline, nucleus, spin, static)

    def resid(p):
        v = p.valuesdict()
        return np.concatenate([(f["y"] - model(k, v)) / f["noise"] for k, f in enumerate(fields)])

    try:
        res = lmfit.minimize(resid, P, method="leastsq", max_nfev=max_nfev)
    except Exception as exc:  # noqa: BLE001 - reported with the files
        raise FitError(f"fit_fields: joint fit failed: {type(exc).__name__}: {exc}", fields[0]["src"]) from None
    return _result(spectra, sites, fields, res, model, nucleus, static, baseline, region)


def _fields(spectra, sites, region):
    """The spectra checked (one nucleus, different fields, a quadrupolar nucleus for quadrupolar sites) and
    cut to ``region``: (nucleus, spin, [dict(x, y, sf, src, noise, dx, w)])."""
    from ...fitting.nmr_models import spin_of
    from ...fitting.noise import noise_sigma

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
    if any(s["shape"] in ("quadrupolar", "czjzek") for s in sites):
        if spin is None or spin < 1.5 or (2 * spin) % 2 != 1:
            raise ParameterError(f"fit_fields: {nucleus} (spin {spin}) has no quadrupolar central transition",
                                 data[0][5])
    fields = []
    for x, y, sf, _nuc, _rate, src in data:
        if region is not None:
            lo, hi = sorted(map(float, region))
            keep = (x >= lo) & (x <= hi)
            if keep.sum() < 10:
                raise ParameterError(f"fit_fields: fewer than 10 points of this spectrum in region {region}", src)
            x, y = x[keep], y[keep]
        fields.append(dict(x=x, y=y, sf=sf, src=src,
                           noise=float(max(noise_sigma(y), 1e-12 * max(np.abs(y).max(), 1e-300))),
                           dx=float(np.median(np.abs(np.diff(x)))), w=_width(x, y)))
    return nucleus, spin, fields


def _parameters(sites, fields, baseline):
    """lmfit Parameters: shared site parameters (δiso, CQ, η, σ) and per-field areas, widths and baselines."""
    import lmfit

    P = lmfit.Parameters()
    for s in sites:
        pre = _pid(s["name"])
        span = max(float(np.ptp(f["x"])) for f in fields)
        P.add(pre + "center", value=s["center"], min=s["center"] - span / 4, max=s["center"] + span / 4 + span / (4 * np.pi))
        if s["shape"] == "quadrupolar":
            f0 = fields[0]
            cq = s.get("cq_mhz") or math.sqrt(max(f0["w"], f0["dx"]) / 1e6 / 2.0) * f0["sf"]
            P.add(pre + "cq_mhz", value=float(cq), min=1e-3, max=50.0)
            P.add(pre + "eta", value=float(s.get("eta", 0.5)), min=0.0, max=1.0)
        if s["shape"] == "czjzek":
            f0 = fields[0]
            sm = s.get("sigma_mhz") or math.sqrt(max(f0["w"], f0["dx"]) / 1e6 / 4.0) * f0["sf"]
            P.add(pre + "sigma_mhz", value=float(sm), min=1e-3, max=50.0)
        for k, f in enumerate(fields):
            area = float(np.sum(np.clip(f["y"], 0, None)) * f["dx"]) / len(sites)
            P.add(f"f{k}_{pre}amplitude", value=max(area, 1e-12), min=0.0)
            width = f["w"] / (10 if s["shape"] in ("quadrupolar", "czjzek") else 2.5)
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
    return P


def _joint_model(sites, fields, baseline, nucleus, spin, static):
    """``model(k, values) -> curve`` of field ``k``: every site's line at that field, plus its baseline."""
    from ...fitting import lineshapes
    from ...fitting.nmr_models import czjzek
    from .quadrupolar import ct_lineshape

    def component(k, s, v, x=None):
        f = fields[k]
        x = f["x"] if x is None else x
        pre = _pid(s["name"])
        amp, sig, c = v[f"f{k}_{pre}amplitude"], v[f"f{k}_{pre}sigma"], v[pre + "center"]
        if s["shape"] == "quadrupolar":
            return ct_lineshape(x, amp, c, v[pre + "cq_mhz"], v[pre + "eta"], sig, isotope=str(nucleus),
                                larmor_mhz=f["sf"], static=static)
        if s["shape"] == "czjzek":
            return czjzek(x, amp, c, v[pre + "sigma_mhz"], sig, 0.0, f["sf"], spin, 0.0 if static else 1.0)
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
    from ...core.result import Quantity, Result
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

    quantities, rows = {}, []
    for s in sites:
        pre = _pid(s["name"])
        for par in SHARED[s["shape"]]:
            quantities[f"{s['name']}.{_QUANTITY[par]}"] = Quantity(float(v[pre + par]), err(pre + par), _UNITS[par],
                                                                   f"{par} shared by {len(fields)} fields")
        for k, f in enumerate(fields):
            a = f"f{k}_{pre}amplitude"
            quantities[f"{s['name']}.area@{f['sf']:g} MHz"] = Quantity(float(v[a]), err(a), "", "site area")
            row = {"name": s["name"], "shape": s["shape"], "field_mhz": f["sf"]}
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
                  warnings=warns, meta={"nucleus": nucleus, "fields_mhz": sfs, "static": static},
                  native=res)
