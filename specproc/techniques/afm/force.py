"""Force curves and force-volume maps: baseline, contact point, contact-mechanics fits.

Conventions (SI): heights ``h`` (m) as afmformats gives them (they *decrease* as the tip approaches
the sample), forces ``F`` (N), moduli ``E`` (Pa). The fit axis is the tip displacement into the
sample ``d = -(h + F/k)`` (nanite's tip position, ``k`` the spring constant) or ``d = -h`` when ``k`` is
not given; the indentation is ``delta = d - d0`` past the contact point ``d0``. Reported contact points
are in the input height frame (``h0 = -d0``). ``E* = E / (1 - nu^2)`` (rigid tip).

Models (``MODELS``):

* ``hertz-paraboloid``: ``F = 4/3 E* sqrt(R) delta^1.5``;
* ``hertz-sphere``: Sneddon's exact sphere, ``delta = a/2 ln((R+a)/(R-a))``,
  ``F = E*/2 [(a^2+R^2) ln((R+a)/(R-a)) - 2aR]`` (-> paraboloid for ``delta << R``);
* ``cone``: Sneddon, ``F = 2/pi E* tan(alpha) delta^2`` (``alpha`` = half opening angle);
* ``pyramid``: Bilodeau's four-sided pyramid, ``F = 0.7453 E* tan(alpha) delta^2`` (fitted with the
  cone kernel and rescaled, same shape);
* ``dmt``: Hertz paraboloid minus a constant adhesion force ``F_ad = 2 pi R w`` in contact;
* ``jkr``: ``F = 4E*a^3/(3R) - sqrt(8 pi w E* a^3)``, ``delta = a^2/R - sqrt(2 pi w a / E*)`` (stable branch).

Paraboloid, cone, pyramid and DMT go through the batch engine's analytic-Jacobian kernels
(:func:`specproc.fitting.fit_batch`); the sphere and JKR (implicit in ``delta``) through its lmfit loop.

Procedure per curve (vectorised over the map): a straight baseline is fitted to the first
``baseline_fraction`` of the approach (far from the surface: offset and virtual-deflection tilt)
and subtracted; its residual SD is the noise; the contact point is first estimated as the start
of the last run of points above ``contact_threshold_sigma`` x noise; the fit covers the whole
pre-contact part and the contact part up to ``max_indentation_m`` past that estimate; the model's
contact point and constant baseline are free. Every curve gets a ``flag`` (bitmask, ``FLAGS``).

The Tabor parameter ``mu = (R w^2 / (E*^2 z0^3))^(1/3)`` (``w`` from the adhesion force,
``F_ad = 2 pi R w``; ``z0`` the equilibrium separation) suggests the model: ``mu < 0.1`` DMT,
``mu > 5`` JKR, in between the Maugis transition regime; no significant adhesion: Hertz.
"""
from __future__ import annotations

import numpy as np

from ...core.errors import ParameterError, ProcessingError

MODELS = ("hertz-paraboloid", "hertz-sphere", "cone", "pyramid", "dmt", "jkr")
#: quality flag bits
FLAGS = {1: "fit did not converge", 2: "modulus not determined (non-positive, at a bound or no error)",
         4: "poor fit (r2 < 0.9 in the fit window)", 8: "no contact detected", 16: "masked (NaN curve)",
         32: "fewer than 10 points in contact", 64: "modulus relative error > 50 %"}
BILODEAU = 0.7453


# ------------------------------------------------------------------ model functions (lmfit loop)
def _sphere_table(n=4000):
    rho = np.concatenate([np.linspace(0, 0.2, n // 2, endpoint=False), np.linspace(0.2, 0.999, n // 2)])
    L = np.log((1 + rho) / (1 - rho))
    return rho * L / 2, ((1 + rho ** 2) * L - 2 * rho) / 2   # delta/R, F/(E* R^2)


_SPH = _sphere_table()


def hertz_sphere(x, E=1e9, R=1e-8, nu=0.5, contact_point=0.0, baseline=0.0):
    """Sneddon's exact sphere force (N) at displacement ``x`` (m)."""
    delta = np.maximum(np.asarray(x, float) - contact_point, 0) / R
    f = np.interp(delta, _SPH[0], _SPH[1], right=np.nan)
    # beyond a = 0.999 R the sphere model is meaningless: continue with the last slope
    over = ~np.isfinite(f)
    if over.any():
        s = (_SPH[1][-1] - _SPH[1][-2]) / (_SPH[0][-1] - _SPH[0][-2])
        f[over] = _SPH[1][-1] + s * (delta[over] - _SPH[0][-1])
    return E / (1 - nu ** 2) * R ** 2 * f + baseline


def jkr(x, E=1e9, w=0.01, R=1e-8, nu=0.5, contact_point=0.0, baseline=0.0):
    """JKR force (N) at displacement ``x`` (m); ``w`` work of adhesion (J/m^2), ``delta = 0`` at ``contact_point``."""
    x = np.asarray(x, float)
    Es = E / (1 - nu ** 2)
    w = max(float(w), 0.0)
    delta = x - contact_point
    if w == 0 or Es <= 0:
        return 4 / 3 * Es * np.sqrt(R) * np.maximum(delta, 0) ** 1.5 + baseline
    a_c = ((R / 4) * np.sqrt(2 * np.pi * w / Es)) ** (2 / 3)     # d(delta)/da = 0: end of the stable branch
    dmax = max(float(np.max(delta)), 0.0)
    a_max = np.sqrt(R * (dmax + np.sqrt(2 * np.pi * w * a_c / Es) + 1e-30)) * 1.5 + 2 * a_c
    a = np.geomspace(a_c, a_max, 3000)
    dl = a ** 2 / R - np.sqrt(2 * np.pi * w * a / Es)
    F = 4 * Es * a ** 3 / (3 * R) - np.sqrt(8 * np.pi * w * Es * a ** 3)
    out = np.interp(delta, dl, F)
    out[delta < dl[0]] = 0.0
    return out + baseline


def _lmfit_model(kind):
    import lmfit

    if kind == "hertz-sphere":
        m = lmfit.Model(hertz_sphere)
    else:
        m = lmfit.Model(jkr)
        m.set_param_hint("w", min=0)
    m.set_param_hint("E", min=0)
    m.set_param_hint("R", vary=False)
    m.set_param_hint("nu", vary=False)
    return m


# ------------------------------------------------------------------ preprocessing
def _baseline(d, F, nb):
    """Straight line fitted to the first ``nb`` points of every curve.

    Returns the baseline-corrected force ``F - line`` (all points) and the residual SD (noise)."""
    db, Fb = d[..., :nb], F[..., :nb]
    dm, Fm = db.mean(-1, keepdims=True), Fb.mean(-1, keepdims=True)
    dc = db - dm
    var = np.einsum("...i,...i->...", dc, dc)[..., None]
    cov = np.einsum("...i,...i->...", dc, Fb - Fm)[..., None]
    slope = np.where(var > 0, cov / np.where(var > 0, var, 1), 0.0)
    resid = Fb - Fm - slope * dc
    Fc = d - dm
    Fc *= -slope
    Fc += F
    Fc -= Fm
    return Fc, resid.std(-1, ddof=2)


def _contact_index(Fc, thr):
    """Index of the first point of the last run above ``thr`` (m if none; 0 if all above)."""
    above = Fc > thr[..., None]
    m = Fc.shape[-1]
    rev = above[..., ::-1]
    first_below = np.argmin(rev, axis=-1)           # in the reversed curve
    all_above = rev.all(-1)
    idx = np.where(all_above, 0, m - first_below)
    return idx                                      # == m: the curve never rises above thr


def tabor(E_Pa, adhesion_N, R_m, nu=0.5, z0_m=0.3e-9):
    """Tabor parameter ``mu`` and the suggested model (``hertz``, ``dmt``, ``transition``, ``jkr``)."""
    Es = E_Pa / (1 - nu ** 2)
    w = adhesion_N / (2 * np.pi * R_m)
    mu = (R_m * w ** 2 / (Es ** 2 * z0_m ** 3)) ** (1 / 3)
    if not np.isfinite(mu):
        return mu, "unknown"
    return mu, ("dmt" if mu < 0.1 else "jkr" if mu > 5 else "transition (Maugis): DMT and JKR both approximate")


# ------------------------------------------------------------------ the fit
def fit_force_map(height_m, force_N, model: str = "hertz-paraboloid", tip_radius_m: float | None = None,
                  poisson_ratio: float = 0.5, *, half_angle_deg: float | None = None,
                  spring_constant_N_per_m: float | None = None, max_indentation_m: float | None = None,
                  baseline_fraction: float = 0.2, contact_threshold_sigma: float = 5.0, z0_m: float = 0.3e-9,
                  fit_tilt: bool = True, x_m=None, y_m=None, n_jobs: int | None = None):
    """Fit a contact model to every approach curve of a force map.

    Parameters
    ----------
    height_m, force_N : array (ny, nx, n_points) (or (n_points,) / (n, n_points))
        Approach segments: height (m, decreasing towards the sample) and force (N). A curve with
        NaN is masked (flag 16).
    model : str
        One of ``MODELS``.
    tip_radius_m : float
        Tip radius (m); required by hertz-paraboloid, hertz-sphere, dmt, jkr.
    poisson_ratio : float
        Sample Poisson ratio (-1 .. 0.5).
    half_angle_deg : float
        Half opening angle (deg) for cone and pyramid (pyramid: face angle, Bilodeau).
    spring_constant_N_per_m : float, optional
        When given, the fit axis is the tip position ``-(h + F/k)`` (cantilever bending removed).
    max_indentation_m : float, optional
        Fit range: contact points up to this indentation past the estimated contact (m). Default:
        the whole approach.
    baseline_fraction : float
        Leading fraction of each curve used for the baseline and noise (0.05 .. 0.8).
    contact_threshold_sigma : float
        Contact-point threshold in noise SD.
    z0_m : float
        Equilibrium separation for the Tabor parameter (m).
    fit_tilt : bool
        Fit a residual linear baseline (slope) jointly with the contact model (default True).
    x_m, y_m : array, optional
        Map coordinates (m) for the output.

    Returns
    -------
    xarray.Dataset
        dims ``("y", "x")``: ``E_Pa``, ``E_stderr_Pa``, ``contact_point_m`` (height frame),
        ``contact_point_stderr_m``, ``baseline_N``, ``adhesion_N`` (DMT), ``work_of_adhesion_J_m2``
        (JKR), ``max_indentation_m``, ``n_contact_points``, ``residual_rms_N``, ``noise_N``, ``r2``,
        ``flag`` (bitmask, ``FLAGS``), ``good`` (flag == 0); attrs ``model``, ``tip_radius_m``,
        ``half_angle_deg``, ``poisson_ratio``, ``tabor_mu``, ``suggested_model``, ``method``, ``fit_s``.
    """
    import xarray as xr

    from ...fitting.batch import fit_batch

    if model not in MODELS:
        raise ParameterError(f"unknown model {model!r}; one of {', '.join(MODELS)}")
    H = np.asarray(height_m, float)
    F = np.asarray(force_N, float)
    if H.shape != F.shape:
        raise ParameterError(f"height_m {H.shape} and force_N {F.shape} must have the same shape")
    if H.ndim == 1:
        H, F = H[None, None], F[None, None]
    elif H.ndim == 2:
        H, F = H[None], F[None]
    if H.ndim != 3:
        raise ParameterError(f"height_m/force_N must be (ny, nx, n_points), got {H.shape}")
    ny, nx, m = H.shape
    if m < 20:
        raise ParameterError(f"{m} points per curve: at least 20 are needed")
    needs_R = model in ("hertz-paraboloid", "hertz-sphere", "dmt", "jkr")
    if needs_R and not (tip_radius_m and np.isfinite(tip_radius_m) and tip_radius_m > 0):
        raise ParameterError(f"model {model!r} needs tip_radius_m > 0 (m)")
    if needs_R and tip_radius_m > 1e-3:
        raise ParameterError(f"tip_radius_m={tip_radius_m:g} m is absurd (> 1 mm): the radius is in metres")
    if model in ("cone", "pyramid") and not (half_angle_deg and 0 < half_angle_deg < 90):
        raise ParameterError(f"model {model!r} needs half_angle_deg in (0, 90)")
    if not -1 < poisson_ratio <= 0.5:
        raise ParameterError(f"poisson_ratio={poisson_ratio} outside (-1, 0.5]")
    if not 0.05 <= baseline_fraction <= 0.8:
        raise ParameterError("baseline_fraction must be in [0.05, 0.8]")
    if spring_constant_N_per_m is not None and not spring_constant_N_per_m > 0:
        raise ParameterError("spring_constant_N_per_m must be > 0")

    masked = ~(np.isfinite(H).all(-1) & np.isfinite(F).all(-1))
    if masked.any():
        Hs, Fs = np.where(masked[..., None], 0.0, H), np.where(masked[..., None], 0.0, F)
    else:
        Hs, Fs = H, F
    d = -(Hs + Fs / spring_constant_N_per_m) if spring_constant_N_per_m else -Hs
    # approach towards the sample = increasing d; curves recorded the other way are reversed
    rev = (d[..., -1] - d[..., 0]) < 0
    if rev.any():
        d = np.where(rev[..., None], d[..., ::-1], d)
        Fs = np.where(rev[..., None], Fs[..., ::-1], Fs)
    nb = max(10, int(baseline_fraction * m))
    Fc, noise = _baseline(d, Fs, nb)
    noise = np.where(noise > 0, noise, np.finfo(float).tiny)
    thr = contact_threshold_sigma * noise
    # adhesive models: contact starts with the first lasting deviation either way (attractive or not)
    ic = _contact_index(np.abs(Fc) if model in ("dmt", "jkr") else Fc, thr)
    no_contact = (ic >= m - 3) & ~masked
    ic = np.clip(ic, nb, m - 3)
    d_cp0 = np.take_along_axis(d, ic[..., None], -1)[..., 0]
    adhesion_est = np.maximum(-Fc.min(-1), 0.0)

    if max_indentation_m is not None and not max_indentation_m > 0:
        raise ParameterError("max_indentation_m must be > 0 (m)")
    span = np.ptp(d[~masked] if (~masked).any() else d.reshape(-1, m), axis=-1).max()
    ref = d[~masked][0] if (~masked).any() else d.reshape(-1, m)[0]
    shared = True
    dv = d[~masked] if masked.any() else d.reshape(-1, m)
    for s0 in range(0, dv.shape[0], 2048):   # one pass, in blocks (maps can be large)
        if np.abs(dv[s0:s0 + 2048] - ref).max() > 1e-9 * span:
            shared = False
            break

    def setup(d_cp):
        """Fit window, axis and data for contact estimates ``d_cp``: the pre-contact part plus the
        contact part up to ``max_indentation_m``. One piezo ramp for the whole map -> fitted on it
        directly; otherwise each curve is interpolated onto a common axis relative to its contact
        estimate (weight 0 outside its own range)."""
        if max_indentation_m is not None:
            window = d <= (d_cp + max_indentation_m)[..., None]
            n_contact = ((d > d_cp[..., None]) & window).sum(-1)
        else:   # the whole curve (no mask array: maps can be large)
            window = None
            n_contact = (d > d_cp[..., None]).sum(-1)
        if shared:
            xax, Y = ref, Fc
            W = window.astype(float) if max_indentation_m is not None else None
            cp_init, offset = d_cp, np.zeros((ny, nx))
        else:
            u = d - d_cp[..., None]
            lo, hi = u[..., 0][~masked].min(), u[..., -1][~masked].max()
            if max_indentation_m is not None:
                hi = min(hi, max_indentation_m)
            xax = np.linspace(lo, hi, m)
            Y = np.empty((ny, nx, m))
            W = np.zeros((ny, nx, m))
            for iy in range(ny):
                for ix in range(nx):
                    uu = u[iy, ix]
                    Y[iy, ix] = np.interp(xax, uu, Fc[iy, ix])
                    W[iy, ix] = ((xax >= uu[0]) & (xax <= uu[-1])).astype(float)
            cp_init, offset = np.zeros((ny, nx)), d_cp
        if masked.any():
            Y = np.where(masked[..., None], np.nan, Y)
        return window, n_contact, xax, Y, W, cp_init, offset

    window, n_contact, xax, Y, W, cp_init, offset = setup(d_cp0)

    # starting modulus from the deepest point of each curve, assuming the estimated contact point
    R = float(tip_radius_m or 0.0)
    nu = float(poisson_ratio)
    Es_fac = 1 / (1 - nu ** 2)
    iend = np.argmax(np.where(window, d, -np.inf), -1) if max_indentation_m is not None else np.full((ny, nx), m - 1)
    dd = np.take_along_axis(d, iend[..., None], -1)[..., 0] - d_cp0
    Fend = np.take_along_axis(Fc, iend[..., None], -1)[..., 0]
    dd = np.maximum(dd, 1e-12)
    tana = np.tan(np.radians(half_angle_deg)) if half_angle_deg else 1.0
    if model in ("cone", "pyramid"):
        E0 = Fend / (2 / np.pi * Es_fac * tana * dd ** 2)
    else:
        E0 = Fend / (4 / 3 * Es_fac * np.sqrt(R) * dd ** 1.5)
    good0 = np.isfinite(E0) & (E0 > 0) & ~masked
    Emed = float(np.median(E0[good0])) if good0.any() else 1e6
    E0 = np.where(good0, E0, Emed)
    E0 = np.clip(E0, Emed * 1e-3, Emed * 1e3)

    from ...fitting import components as C

    init = {"E": E0, "contact_point": cp_init, "baseline": np.zeros((ny, nx))}
    if model == "hertz-paraboloid":
        lm = C.HertzParaboloidModel()
        params = lm.make_params(E=Emed, R=R, nu=nu, contact_point=0.0, baseline=0.0)
    elif model == "dmt":
        lm = C.DMTModel()
        params = lm.make_params(E=Emed, R=R, nu=nu, adhesion=0.0, contact_point=0.0, baseline=0.0)
        init["adhesion"] = adhesion_est
    elif model in ("cone", "pyramid"):
        lm = C.SneddonConeModel()
        params = lm.make_params(E=Emed, alpha=float(half_angle_deg), nu=nu, contact_point=0.0, baseline=0.0)
    elif model == "hertz-sphere":
        lm = _lmfit_model(model)
        params = lm.make_params(E=Emed, R=R, nu=nu, contact_point=0.0, baseline=0.0)
    else:  # jkr
        lm = _lmfit_model(model)
        params = lm.make_params(E=Emed, w=0.0, R=R, nu=nu, contact_point=0.0, baseline=0.0)
        init["w"] = adhesion_est / (1.5 * np.pi * R)
    if model == "jkr":
        # JKR's implicit curve is fitted by the lmfit loop, which needs a good start: the batched DMT
        # fit of the same curves (E, contact point, and w from F_ad = 2 pi R w)
        pre = fit_force_map(height_m, force_N, "dmt", tip_radius_m, poisson_ratio, half_angle_deg=half_angle_deg,
                            spring_constant_N_per_m=spring_constant_N_per_m, max_indentation_m=max_indentation_m,
                            baseline_fraction=baseline_fraction, contact_threshold_sigma=contact_threshold_sigma,
                            fit_tilt=fit_tilt, n_jobs=n_jobs)
        okp = pre["success_"].values if "success_" in pre else np.isfinite(pre["E_Pa"].values)
        okp = okp & (pre["E_Pa"].values > 0)
        init["E"] = np.where(okp, pre["E_Pa"].values, init["E"])
        init["w"] = np.where(okp, np.maximum(pre["adhesion_N"].values, 0) / (2 * np.pi * R), init["w"])
        init["contact_point"] = np.where(okp, -pre["contact_point_m"].values - offset, init["contact_point"])
    if fit_tilt:
        # a residual baseline slope fitted jointly: the line subtracted above comes from a part of the
        # curve only, and its error would otherwise leak into E unaccounted for in E's standard error
        import lmfit

        lm = lm + lmfit.models.LinearModel(prefix="tilt_")
        params.add("tilt_slope", value=0.0)
        params.add("tilt_intercept", value=0.0, vary=False)

    def run(xax, Y, W, init):
        # centred axis: absolute heights (tens of µm) would make contact point and offset ill-conditioned
        x0 = float(np.mean(xax))
        init = dict(init, contact_point=init["contact_point"] - x0)
        ds = fit_batch(lm, xax - x0, Y, params=params, init=init, weights=W, dims=("y", "x"), n_jobs=n_jobs)
        ds["contact_point"] = ds["contact_point"] + x0
        return ds

    ds = run(xax, Y, W, init)
    if max_indentation_m is not None:
        # the threshold estimate of the contact point is late by the threshold force: set the fit
        # window again from the fitted contact points and refit from the first optimum
        ok = ds["success"].values & np.isfinite(ds["contact_point"].values)
        d_cp1 = np.where(ok, ds["contact_point"].values + offset, d_cp0)
        window, n_contact, xax, Y, W, cp_init, offset = setup(d_cp1)
        init2 = {k: np.where(ok, ds[k].values, v) for k, v in init.items() if k != "contact_point"}
        init2["contact_point"] = cp_init
        if fit_tilt:
            init2["tilt_slope"] = np.where(ok, ds["tilt_slope"].values, 0.0)
        ds = run(xax, Y, W, init2)

    scale = (2 / np.pi) / BILODEAU if model == "pyramid" else 1.0
    E = ds["E"].values * scale
    Ese = ds["E_stderr"].values * scale
    cp_d = ds["contact_point"].values + offset
    wsum = (W.reshape(ny, nx, m).sum(-1) if W is not None and W.ndim == 3 else
            (W.sum(-1) if W is not None else np.full((ny, nx), m)))
    resid_rms = np.sqrt(ds["chisqr"].values / np.maximum(wsum, 1))
    dmax_fit = (np.where(window, d, -np.inf).max(-1) if max_indentation_m is not None else d[..., -1]) - cp_d
    flag = np.zeros((ny, nx), np.int64)
    success = ds["success"].values.astype(bool)
    flag |= np.where(~success & ~masked, 1, 0)
    bad_E = ~(np.isfinite(E) & (E > 0) & np.isfinite(Ese))
    flag |= np.where(bad_E & ~masked, 2, 0)
    flag |= np.where((ds["r2"].values < 0.9) & ~masked, 4, 0)
    flag |= np.where(no_contact, 8, 0)
    flag |= np.where(masked, 16, 0)
    flag |= np.where((n_contact < 10) & ~masked, 32, 0)
    with np.errstate(all="ignore"):
        flag |= np.where((Ese / np.abs(E) > 0.5) & ~masked & ~bad_E, 64, 0)

    coords = {}
    if x_m is not None:
        coords["x"] = ("x", np.asarray(x_m, float), {"units": "m"})
    if y_m is not None:
        coords["y"] = ("y", np.asarray(y_m, float), {"units": "m"})
    out = xr.Dataset(coords=coords)
    dims = ("y", "x")

    def put(name, val, unit, desc):
        out[name] = (dims, np.asarray(val), {"units": unit, "description": desc})

    put("E_Pa", E, "Pa", "Young's modulus")
    put("E_stderr_Pa", Ese, "Pa", "standard error of E (fit covariance)")
    put("contact_point_m", -cp_d, "m", "contact point, height frame" + (" (tip position)" if spring_constant_N_per_m else ""))
    put("contact_point_stderr_m", ds["contact_point_stderr"].values, "m", "standard error of the contact point")
    put("baseline_N", ds["baseline"].values, "N", "fitted force offset after baseline subtraction")
    if model == "dmt":
        put("adhesion_N", ds["adhesion"].values, "N", "DMT adhesion force")
        put("adhesion_stderr_N", ds["adhesion_stderr"].values, "N", "standard error of the adhesion")
    if model == "jkr":
        put("work_of_adhesion_J_m2", ds["w"].values, "J/m2", "JKR work of adhesion")
        put("work_of_adhesion_stderr_J_m2", ds["w_stderr"].values, "J/m2", "standard error of w")
    put("max_indentation_m", dmax_fit, "m", "deepest indentation in the fit window")
    put("n_contact_points", n_contact, "", "points in contact inside the fit window")
    put("residual_rms_N", resid_rms, "N", "RMS residual in the fit window")
    put("noise_N", noise, "N", "baseline noise SD")
    put("adhesion_estimate_N", adhesion_est, "N", "largest attractive force on approach")
    put("r2", ds["r2"].values, "", "coefficient of determination")
    put("flag", flag, "", "quality bitmask: " + "; ".join(f"{k}={v}" for k, v in FLAGS.items()))
    put("good", flag == 0, "", "flag == 0")

    # Tabor parameter from the adhesion (fitted for DMT / JKR, else the approach minimum)
    g = (flag == 0)
    mu, suggestion = np.nan, "unknown"
    if g.any() and needs_R:
        Eg = float(np.median(E[g]))
        if model == "dmt":
            ad = float(np.median(ds["adhesion"].values[g]))
        elif model == "jkr":
            ad = float(np.median(ds["w"].values[g])) * 2 * np.pi * R
        else:
            ad = float(np.median(adhesion_est[g]))
        if ad <= 6 * float(np.median(noise[g])):
            mu, suggestion = 0.0, "hertz (no significant adhesion)"
        else:
            mu, suggestion = tabor(Eg, ad, R, nu, z0_m)
    out.attrs.update(model=model, tip_radius_m=tip_radius_m, half_angle_deg=half_angle_deg, poisson_ratio=nu,
                     spring_constant_N_per_m=spring_constant_N_per_m, max_indentation_m=max_indentation_m,
                     tabor_mu=float(mu), suggested_model=suggestion, method=ds.attrs.get("method"),
                     fit_s=float(ds.attrs.get("total_s", np.nan)), shared_axis=bool(shared),
                     flags="; ".join(f"{k}={v}" for k, v in FLAGS.items()))
    if not (~masked).any():
        raise ProcessingError("every force curve is NaN/masked")
    return out
