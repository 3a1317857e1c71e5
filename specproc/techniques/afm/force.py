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
* ``pyramid``: Bilodeau's four-sided pyramid, ``F = 0.7453 E* tan(alpha) delta^2``;
* ``dmt``: Hertz paraboloid minus a constant adhesion force ``F_ad = 2 pi R w`` in contact;
* ``jkr``: ``F = 4E*a^3/(3R) - sqrt(8 pi w E* a^3)``, ``delta = a^2/R - sqrt(2 pi w a / E*)`` (stable branch).

**The fit** (every model but JKR) is a *profile* (variable-projection) least-squares fit, curve by
curve on the curve's own samples, vectorised over the map: for a trial contact point ``d0`` the
model is linear in its other parameters (``A = c E*`` with ``c`` from the tip, the DMT adhesion, the
force offset and a residual baseline tilt), which are solved exactly (with ``E >= 0`` and
``F_ad >= 0``); the residual sum of squares ``S(d0)`` is then minimised over ``d0`` by a global
search (index-uniform grid over the whole curve, a finer grid around the best point, then golden
section). No interpolation onto a common axis, so ragged maps, per-curve ramps and stiff curves
(whose contact part is compressed on the tip-position axis) are fitted on their recorded points.
JKR (implicit in ``delta``) is fitted by lmfit curve by curve, started from the DMT fit.

Residuals near the contact point are weighted as nanite does (``weight_cp``): weight
``min(|d - d0| / contact_weight_m, 1)``, so that the poorly modelled onset of contact (long-range
forces, roughness) does not drive the fit; the objective is nanite's ``sum((w r)^2)``. Default
(``"auto"``): nanite's 1 µm, or the tip radius when smaller — on a curve indented by nanometres a
1 µm width weights every point by its distance to the contact point, and since the weights move
with ``d0`` the noise then pulls the fit towards contact points of smaller total weight (E low by
~3 % on the synthetic 10-nm-window curves; < 1 % with the radius). Standard errors are the
sandwich (heteroscedasticity-consistent) covariance of that weighted fit, with the contact point free.

Procedure per curve, as nanite's defaults (``compute_tip_position``, ``correct_force_offset``,
``correct_tip_offset``, ``correct_split_approach_retract`` — the split is the reader's — and
``fit_model("hertz_para")`` over the whole approach with ``weight_cp``): the baseline is a fitted
constant offset (``baseline="offset"``; ``"line"`` subtracts the straight line fitted to the first
``baseline_fraction`` of the approach, ``"tilt"`` also fits a residual slope jointly — for data with
a virtual-deflection slope; on curves with long-range forces before contact any slope correction
moves the contact point, by 10-20 % in E on the real JPK map, so it is not the default). The
residual SD of that line is the noise; the threshold estimate of the contact (start of the last run
above ``contact_threshold_sigma`` x noise) detects curves without contact. With ``max_indentation_m``
the fit window is placed from the contact point of the whole-curve fit, then set again from the
windowed fit's contact point and the curve refitted (twice).
Every curve gets a ``flag`` (bitmask, ``FLAGS``): besides fit failures, the contact point is flagged
when it is poorly defined — a second, statistically equivalent minimum of ``S(d0)``, a standard
error above 10 % of the indentation depth, or set by the noise rather than the data (the modulus
of the noise-corrected objective ``S - sigma^2 sum(w^2)`` differs by > 5 % and > 2 standard
errors: indentations far shallower than the weight width, where nanite's fit is silently biased)
— or when it lies at the edge of the curve.

The Tabor parameter ``mu = (R w^2 / (E*^2 z0^3))^(1/3)`` (``w`` from the adhesion force,
``F_ad = 2 pi R w``; ``z0`` the equilibrium separation) suggests the model: ``mu < 0.1`` DMT,
``mu > 5`` JKR, in between the Maugis transition regime; no significant adhesion: Hertz.
"""
from __future__ import annotations

import time

import numpy as np

from ...core.errors import ParameterError, ProcessingError

#: signal types of a force measurement (a curve, a map or volume of curves)
FORCE_TYPES = ("force_volume", "force_map", "force_curve")
MODELS = ("hertz-paraboloid", "hertz-sphere", "cone", "pyramid", "dmt", "jkr")
#: quality flag bits
FLAGS = {1: "fit did not converge", 2: "modulus not determined (non-positive, at a bound or no error)",
         4: "poor fit (r2 < 0.9 in the fit window)", 8: "no contact detected", 16: "masked (NaN curve)",
         32: "fewer than 10 points in contact", 64: "modulus relative error > 50 %",
         128: "contact point poorly defined (a second equivalent minimum, its error > 10 % of the indentation, "
              "or set by the noise: E moves > 5 % with the noise-corrected objective)",
         256: "contact point at the edge of the curve (fit at a bound)"}
BILODEAU = 0.7453
#: nanite's default ``weight_cp`` (m): residuals within this distance of the contact point are down-weighted
NANITE_WEIGHT_CP_M = 1e-6


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


# ------------------------------------------------------------------ preprocessing
def baseline_line(d, F, nb):
    """Straight line fitted to the first ``nb`` points of every curve (``nb`` an int or one per curve).

    Returns the baseline-corrected force ``F - line`` (all points) and the residual SD (noise)."""
    nb = np.asarray(nb)
    if nb.ndim == 0:
        sel = np.ones(d.shape[:-1] + (int(nb),), bool)
        db, Fb = d[..., :int(nb)], F[..., :int(nb)]
    else:
        sel = np.arange(d.shape[-1]) < nb[..., None]
        db, Fb = d, F
    cnt = sel.sum(-1, keepdims=True)
    dm = np.where(sel, db, 0).sum(-1, keepdims=True) / cnt
    Fm = np.where(sel, Fb, 0).sum(-1, keepdims=True) / cnt
    dc = np.where(sel, db - dm, 0.0)
    var = np.einsum("...i,...i->...", dc, dc)[..., None]
    cov = np.einsum("...i,...i->...", dc, np.where(sel, Fb - Fm, 0.0))[..., None]
    slope = np.where(var > 0, cov / np.where(var > 0, var, 1), 0.0)
    resid = np.where(sel, Fb - Fm - slope * dc, 0.0)
    Fc = d - dm
    Fc *= -slope
    Fc += F
    Fc -= Fm
    sd = np.sqrt(np.einsum("...i,...i->...", resid, resid) / np.maximum(cnt[..., 0] - 2, 1))
    return Fc, sd


def _contact_index(Fc, thr, n_valid=None):
    """Index of the first point of the last run above ``thr`` (the number of valid points if none;
    0 if all above). Points at or beyond ``n_valid`` (padding of ragged curves) are ignored."""
    above = Fc > thr[..., None]
    m = Fc.shape[-1]
    if n_valid is not None:
        above = above | (np.arange(m) >= n_valid[..., None])
    rev = above[..., ::-1]
    first_below = np.argmin(rev, axis=-1)           # in the reversed curve
    all_above = rev.all(-1)
    idx = np.where(all_above, 0, m - first_below)
    return idx                                      # == n_valid: the curve never rises above thr


# ------------------------------------------------------------------ profile (variable-projection) fit
_SPH_D = np.gradient(_SPH[1], _SPH[0])


def _shape(kind, delta, R):
    """Contact shape ``g(delta)`` (0 out of contact) and ``dg/d(delta)`` for the linear models
    (the force is ``A g`` with ``A`` proportional to ``E*``)."""
    dp = np.maximum(delta, 0.0)
    if kind == "p15":
        s = np.sqrt(dp)
        return dp * s, 1.5 * s
    if kind == "p2":
        return dp * dp, 2.0 * dp
    u = dp / R                                        # Sneddon sphere, tabulated: F = E* R^2 f(delta/R)
    f = np.interp(u, _SPH[0], _SPH[1])
    fp = np.interp(u, _SPH[0], _SPH_D)
    over = u > _SPH[0][-1]
    if over.any():
        f = np.where(over, _SPH[1][-1] + _SPH_D[-1] * (u - _SPH[0][-1]), f)
    return R * R * f, R * fp


_KIND_CODE = {"p15": 0, "p2": 1, "sphere": 2}
_KERNEL = None


def _sums_kernel():
    """numba kernel: the weighted normal-equation sums of the profile fit for one trial contact
    point per curve, in one pass over the points (columns ``g``, DMT ``-1`` in contact, ``1``,
    ``d - tref``). None without numba (numpy path)."""
    global _KERNEL
    if _KERNEL is not None:
        return _KERNEL or None
    try:
        from ...fitting.batch import numba_or_none

        numba = numba_or_none()
    except Exception:   # noqa: BLE001 - numpy path
        numba = None
    if numba is None:
        _KERNEL = False
        return None

    @numba.njit(parallel=True, cache=True, fastmath={"contract", "nsz"})
    def sums(d, y, v, c, kind, R, W, tref, sph_u, sph_f, G, r, yy, sw):
        n, m = d.shape
        for i in numba.prange(n):
            ci = c[i]
            tr = tref[i]
            r0 = r1 = r2 = r3 = 0.0
            g00 = g01 = g02 = g03 = g11 = g12 = g13 = g22 = g23 = g33 = 0.0
            syy = 0.0
            for j in range(m):
                vj = v[i, j]
                if vj == 0.0:
                    continue
                dl = d[i, j] - ci
                w2 = vj
                if W > 0.0:
                    a = abs(dl) / W
                    if a < 1.0:
                        w2 = vj * a * a
                g = 0.0
                h = 0.0
                if dl > 0.0:
                    h = -1.0
                    if kind == 0:
                        g = dl * np.sqrt(dl)
                    elif kind == 1:
                        g = dl * dl
                    else:
                        u = dl / R
                        if u <= sph_u[-1]:
                            g = R * R * np.interp(u, sph_u, sph_f)
                        else:
                            g = R * R * (sph_f[-1] + (sph_f[-1] - sph_f[-2]) / (sph_u[-1] - sph_u[-2])
                                         * (u - sph_u[-1]))
                t = d[i, j] - tr
                yj = y[i, j]
                x0, x1, x3 = g * w2, h * w2, t * w2
                r0 += x0 * yj
                r1 += x1 * yj
                r2 += w2 * yj
                r3 += x3 * yj
                g00 += x0 * g
                g01 += x0 * h
                g02 += x0
                g03 += x0 * t
                g11 += x1 * h
                g12 += x1
                g13 += x1 * t
                g22 += w2
                g23 += x3
                g33 += x3 * t
                syy += w2 * yj * yj
            r[i, 0], r[i, 1], r[i, 2], r[i, 3] = r0, r1, r2, r3
            G[i, 0, 0], G[i, 1, 1], G[i, 2, 2], G[i, 3, 3] = g00, g11, g22, g33
            G[i, 0, 1] = G[i, 1, 0] = g01
            G[i, 0, 2] = G[i, 2, 0] = g02
            G[i, 0, 3] = G[i, 3, 0] = g03
            G[i, 1, 2] = G[i, 2, 1] = g12
            G[i, 1, 3] = G[i, 3, 1] = g13
            G[i, 2, 3] = G[i, 3, 2] = g23
            yy[i] = syy
            sw[i] = g22

    _KERNEL = sums
    return sums


class _Profile:
    """Weighted linear least squares at a given contact point, for a block of curves.

    ``d`` (n, m) sorted fit axis, ``y`` (n, m) force, ``v`` (n, m) 0/1 (valid and in the fit
    window). Columns: ``g(d - d0)`` [A >= 0], DMT ``-1`` in contact [F_ad >= 0], 1 [offset],
    ``d - tref`` [tilt]."""

    def __init__(self, d, y, v, kind, R, weight_m, tilt, dmt, noise=None):
        self.d, self.y, self.v = d, y, v
        self.noise2 = 0.0 if noise is None else np.asarray(noise, float) ** 2
        self.kind, self.R, self.W, self.tilt, self.dmt = kind, R, weight_m, tilt, dmt
        nv = np.maximum(v.sum(-1), 1)
        self.tref = (d * v).sum(-1) / nv
        self.k = 2 + int(dmt) + int(tilt)
        self.cols = [0] + ([1] if dmt else []) + [2] + ([3] if tilt else [])
        self.cons = [0, 1] if dmt else [0]            # columns with a >= 0 bound (in self.cols order)
        self.kernel = _sums_kernel()
        if self.kernel is not None:
            self.d = np.ascontiguousarray(d, float)
            self.y = np.ascontiguousarray(y, float)
            self.v = np.ascontiguousarray(v, float)

    def weights(self, c):
        if not self.W:
            return self.v
        w = np.minimum(np.abs(self.d - c[:, None]) * (1.0 / self.W), 1.0)
        return self.v * w * w

    def design(self, c, jac=False):
        delta = self.d - c[:, None]
        g, gp = _shape(self.kind, delta, self.R)
        cols = [g]
        if self.dmt:
            cols.append(-(delta > 0).astype(float))
        cols.append(np.ones_like(g))
        if self.tilt:
            cols.append(self.d - self.tref[:, None])
        X = np.stack(cols, 1)
        return (X, gp) if jac else X

    def normal(self, c):
        """Normal equations ``G`` (n, k, k), ``r`` (n, k), ``yy`` and the weight sum at ``c``."""
        if self.kernel is not None:
            n = self.d.shape[0]
            G4, r4 = np.empty((n, 4, 4)), np.empty((n, 4))
            yy, sw = np.empty(n), np.empty(n)
            from ...fitting.batch import kernel_lock

            with kernel_lock():
                self.kernel(self.d, self.y, self.v, np.ascontiguousarray(c, float), _KIND_CODE[self.kind],
                            float(self.R or 1.0), float(self.W or 0.0), self.tref, _SPH[0], _SPH[1],
                            G4, r4, yy, sw)
            ix = self.cols
            return G4[:, ix][:, :, ix], r4[:, ix], yy, sw
        X = self.design(c)
        w2 = self.weights(c)
        wX = X * w2[:, None, :]
        G = wX @ X.transpose(0, 2, 1)
        r = (wX @ self.y[..., None])[..., 0]
        yy = np.einsum("nm,nm->n", w2 * self.y, self.y)
        return G, r, yy, w2.sum(-1)

    def solve(self, c, noise_corrected=False):
        """Objective (n,) and the linear coefficients ``beta`` (n, k) at contact points ``c`` (n,):
        nanite's ``sum((w r)^2)``; ``noise_corrected``: less its expected noise part ``sigma^2 sum(w^2)``."""
        G, r, yy, sw = self.normal(c)
        S, beta = _nnls_small(G, r, yy, self.cons)
        return (S - self.noise2 * sw if noise_corrected else S), beta


def _nnls_small(G, r, yy, cons):
    """Minimise ``yy - 2 b.r + b.G.b`` over ``b`` with ``b[cons] >= 0`` (k <= 4), batched: every
    active set of the bound columns is solved and the best feasible one kept."""
    n, k, _ = G.shape
    sc = np.sqrt(np.einsum("nii->ni", G))
    sc = np.where(sc > 0, sc, 1.0)
    Gs = G / sc[:, :, None] / sc[:, None, :]
    rs = r / sc
    best_S = np.full(n, np.inf)
    best_b = np.zeros((n, k))
    import itertools

    for nfix in range(len(cons) + 1):
        for fixed in itertools.combinations(cons, nfix):
            free = [j for j in range(k) if j not in fixed]
            Gf = Gs[:, free][:, :, free] + 1e-12 * np.eye(len(free))
            try:
                bf = np.linalg.solve(Gf, rs[:, free][..., None])[..., 0]
            except np.linalg.LinAlgError:
                bf = (np.linalg.pinv(Gf) @ rs[:, free][..., None])[..., 0]
            S = yy - np.einsum("nj,nj->n", bf, rs[:, free])
            ok = np.ones(n, bool)
            for j in cons:
                if j in free:
                    ok &= bf[:, free.index(j)] >= 0
            better = ok & (S < best_S)
            if better.any():
                b = np.zeros((n, k))
                b[:, free] = bf
                best_S = np.where(better, S, best_S)
                best_b = np.where(better[:, None], b, best_b)
    return best_S, best_b / sc


def _golden(fun, a, b, n_iter):
    """Vectorised golden-section minimisation of ``fun(c) -> S`` on ``[a, b]`` (arrays)."""
    gr = (np.sqrt(5) - 1) / 2
    x1, x2 = b - gr * (b - a), a + gr * (b - a)
    f1, f2 = fun(x1), fun(x2)
    for _ in range(n_iter):
        left = f1 < f2                                # the minimum is in [a, x2]
        a, b = np.where(left, a, x1), np.where(left, x2, b)
        xe = np.where(left, b - gr * (b - a), a + gr * (b - a))
        fe = fun(xe)
        x1, f1, x2, f2 = (np.where(left, xe, x2), np.where(left, fe, f2),
                          np.where(left, x1, xe), np.where(left, f1, fe))
    return np.where(f1 < f2, x1, x2)


def _fit_block(d, y, v, nw, *, kind, R, weight_m, tilt, dmt, noise=None, min_contact=3, G1=40, G2=8,
               n_golden=14):
    """Global profile fit of a block of curves (sorted ``d``; ``nw`` points in the window, a
    prefix). Returns a dict of per-curve arrays."""
    n, m = d.shape
    prof = _Profile(d, y, v, kind, R, weight_m, tilt, dmt, noise)
    hi = np.maximum(nw - 1 - min_contact, 0)
    # stage 1: index-uniform grid over the whole curve, on at most ~256 points per curve
    stride = max(1, int(np.ceil(m / 256)))
    if stride > 1:
        coarse = _Profile(d[:, ::stride], y[:, ::stride], v[:, ::stride], kind, R, weight_m, tilt, dmt, noise)
        coarse.tref = prof.tref
    else:
        coarse = prof
    idx1 = np.rint(np.linspace(0, 1, G1)[None] * hi[:, None]).astype(int)
    c1 = np.take_along_axis(d, idx1, 1)
    S1 = np.stack([coarse.solve(c1[:, j])[0] for j in range(G1)], 1)
    S1 = np.where(np.isfinite(S1), S1, np.inf)
    j1 = np.argmin(S1, 1)
    rows = np.arange(n)
    # stage 2: a finer index grid between the neighbours of the best point (full data)
    lo2 = idx1[rows, np.maximum(j1 - 1, 0)]
    hi2 = idx1[rows, np.minimum(j1 + 1, G1 - 1)]
    idx2 = np.rint(lo2[:, None] + np.linspace(0, 1, G2)[None] * (hi2 - lo2)[:, None]).astype(int)
    c2 = np.take_along_axis(d, idx2, 1)
    S2 = np.stack([prof.solve(c2[:, j])[0] for j in range(G2)], 1)
    S2 = np.where(np.isfinite(S2), S2, np.inf)
    j2 = np.argmin(S2, 1)
    a = c2[rows, np.maximum(j2 - 1, 0)]
    b = c2[rows, np.minimum(j2 + 1, G2 - 1)]
    # stage 3: golden section between the neighbours of the best fine-grid point
    cg = _golden(lambda c: prof.solve(c)[0], a, b, n_golden)
    Sg, _ = prof.solve(cg)
    cbest = np.where(Sg <= S2[rows, j2], cg, c2[rows, j2])
    S, beta = prof.solve(cbest)
    # competing minimum: a separate local minimum of the coarse profile statistically as good
    # (likelihood-ratio-like: within 4 sigma^2 of the best, sigma^2 the larger of the baseline
    # noise and the residual variance; uniform weights: Delta chi^2 < 4)
    swc = coarse.weights(c1[rows, j1]).sum(-1)
    s2c = np.maximum(coarse.noise2, S1[rows, j1] / np.maximum(swc - prof.k - 1, 1.0))
    locmin = np.ones_like(S1, bool)
    locmin[:, 1:] &= S1[:, 1:] <= S1[:, :-1]
    locmin[:, :-1] &= S1[:, :-1] <= S1[:, 1:]
    far = np.abs(np.arange(G1)[None] - j1[:, None]) > 1
    competing = (locmin & far & (S1 - S1[rows, j1][:, None] < 4 * s2c[:, None])).any(1)
    # at a bound of the search: before the first point, or leaving only min_contact points in contact
    n_beyond = ((d > cbest[:, None]) & (v > 0)).sum(-1)
    edge = (cbest <= d[:, 0]) | (n_beyond <= min_contact)
    out = _errors(prof, cbest, beta)
    out.update(contact=cbest, S=S, competing=competing, edge=edge)
    # cross-check of a contact point set by the noise rather than by the data: with contact weights
    # the weights move with d0 and nanite's sum is pulled towards contact points of smaller total
    # weight by sigma^2 sum(w^2). Where the weighted contact data are few (indentation << weight
    # width) that pull decides the contact point (E 26 % low on a 60 nm indentation with 1 µm
    # weights, nanite alike). The minimum of the noise-corrected sum near the optimum gives a
    # second modulus; the caller flags curves where the two disagree.
    if weight_m:
        span = np.maximum(out["dmax"], 0.0) * 0.5
        lo3 = np.maximum(cbest - span, d[:, 0])
        hi3 = np.minimum(cbest + span, np.take_along_axis(d, hi[:, None], 1)[:, 0])
        G3 = 8
        c3 = lo3[:, None] + np.linspace(0, 1, G3)[None] * (hi3 - lo3)[:, None]
        S3 = np.stack([prof.solve(c3[:, j], True)[0] for j in range(G3)], 1)
        S3 = np.where(np.isfinite(S3), S3, np.inf)
        j3 = np.argmin(S3, 1)
        ca = _golden(lambda c: prof.solve(c, True)[0], c3[rows, np.maximum(j3 - 1, 0)],
                     c3[rows, np.minimum(j3 + 1, G3 - 1)], 10)
        out["A_alt"] = prof.solve(ca, True)[1][:, 0]
    else:
        out["A_alt"] = beta[:, 0]
    return out


def _errors(prof, c, beta):
    """Sandwich covariance of (A, [F_ad], b, [s], d0) of the weighted fit at its optimum, r2, rms."""
    X, gp = prof.design(c, jac=True)
    w2 = prof.weights(c)
    f = np.einsum("nkm,nk->nm", X, beta)
    r = prof.y - f
    dc = -beta[:, :1] * gp                               # d f / d d0 (the DMT step is not differentiable)
    J = np.concatenate([X, dc[:, None, :]], 1)           # (n, p, m)
    p = J.shape[1]
    sc = np.sqrt(np.einsum("npm,npm,nm->np", J, J, w2))
    sc = np.where(sc > 0, sc, 1.0)
    Js = J / sc[:, :, None]
    H = (Js * w2[:, None, :]) @ Js.transpose(0, 2, 1)
    Jr = Js * (w2 * r)[:, None, :]
    B = Jr @ Jr.transpose(0, 2, 1)
    Hi = np.linalg.pinv(H)
    neff = (w2 > 0).sum(-1)
    cov = Hi @ B @ Hi * (neff / np.maximum(neff - p, 1))[:, None, None]
    se = np.sqrt(np.maximum(np.einsum("npp->np", cov), 0)) / sc
    se = np.where(neff[:, None] > p, se, np.nan)
    # r2 and the RMS residual: unweighted, over the fit window (the contact weights are a choice
    # of the estimator, not of how well the model describes the curve)
    v = prof.v
    nv = np.maximum(v.sum(-1), 1)
    ym = (v * prof.y).sum(-1) / nv
    ss_tot = (v * (prof.y - ym[:, None]) ** 2).sum(-1)
    ss_res = (v * r * r).sum(-1)
    ncontact = ((prof.d > c[:, None]) & (prof.v > 0)).sum(-1)
    dmax = np.where(prof.v > 0, prof.d, -np.inf).max(-1) - c
    i_tilt = 2 + int(prof.dmt)
    base = beta[:, 1 + int(prof.dmt)] + (beta[:, i_tilt] * (c - prof.tref) if prof.tilt else 0.0)
    return dict(A=beta[:, 0], A_se=se[:, 0], adhesion=beta[:, 1] if prof.dmt else None,
                adhesion_se=se[:, 1] if prof.dmt else None, baseline=base,
                tilt=beta[:, i_tilt] if prof.tilt else np.zeros(len(c)), contact_se=se[:, -1],
                r2=np.where(ss_tot > 0, 1 - ss_res / np.where(ss_tot > 0, ss_tot, 1), np.nan),
                rms=np.sqrt((prof.v * r * r).sum(-1) / nv), n_contact=ncontact, dmax=dmax,
                beta=beta)


def tabor(E_Pa, adhesion_N, R_m, nu=0.5, z0_m=0.3e-9):
    """Tabor parameter ``mu`` and the suggested model (``hertz``, ``dmt``, ``transition``, ``jkr``)."""
    Es = E_Pa / (1 - nu ** 2)
    w = adhesion_N / (2 * np.pi * R_m)
    mu = (R_m * w ** 2 / (Es ** 2 * z0_m ** 3)) ** (1 / 3)
    if not np.isfinite(mu):
        return mu, "unknown"
    return mu, ("dmt" if mu < 0.1 else "jkr" if mu > 5 else "transition (Maugis): DMT and JKR both approximate")


def _sandwich_one(J, r, w2):
    """Sandwich standard errors of one weighted fit (J: (p, m) model derivatives)."""
    p = J.shape[0]
    sc = np.sqrt((J * J * w2).sum(-1))
    sc = np.where(sc > 0, sc, 1.0)
    Js = J / sc[:, None]
    H = (Js * w2) @ Js.T
    Jr = Js * (w2 * r)
    Hi = np.linalg.pinv(H)
    neff = int((w2 > 0).sum())
    if neff <= p:
        return np.full(p, np.nan)
    cov = Hi @ (Jr @ Jr.T) @ Hi * neff / (neff - p)
    return np.sqrt(np.maximum(np.diag(cov), 0)) / sc


def _fit_jkr_curves(d, y, v, starts, R, nu, weight_m, tilt):
    """JKR by lmfit, curve by curve on its own samples, from DMT fits ``starts`` (list of dicts of
    per-curve arrays); nanite-style contact weights follow the fitted contact point."""
    import lmfit

    n = d.shape[0]
    keys = ("E", "E_se", "w", "w_se", "contact", "contact_se", "baseline", "tilt", "r2", "rms", "n_contact",
            "dmax", "success")
    out = {k: np.full(n, np.nan) for k in keys}
    out["success"] = np.zeros(n, bool)
    for i in range(n):
        sel = v[i] > 0
        x, yy = d[i][sel], y[i][sel]
        if x.size < 8:
            continue
        tref = float(x.mean())

        def model(pv, x=x):
            return jkr(x, pv["E"], pv["w"], R, nu, pv["cp"], pv["b"]) + pv["s"] * (x - tref)

        def wts(cp, x=x):
            return np.minimum(np.abs(x - cp) / weight_m, 1.0) if weight_m else np.ones_like(x)

        def resid(ps, x=x, yy=yy, weighted=True):
            pv = ps.valuesdict()
            if not weighted:
                return yy - model(pv)
            return wts(pv["cp"]) * (yy - model(pv))

        # JKR's objective has local minima and DMT's contact point is not JKR's: several starts (each
        # DMT fit given, with w from F_ad = 2 pi R w and from JKR's pull-off 1.5 pi R w; with contact
        # weights also the unweighted JKR optimum from each); the best weighted fit is kept
        res = None
        for st in starts:
            c0, E0 = float(st["contact"][i]), max(float(st["E"][i]), 1e-3)
            if not (np.isfinite(c0) and np.isfinite(E0)):
                continue
            s0 = float(st["tilt"][i]) if tilt and np.isfinite(st["tilt"][i]) else 0.0
            b0 = float(st["baseline"][i]) - s0 * (c0 - tref)
            b0 = b0 if np.isfinite(b0) else 0.0
            for div in (2.0, 1.5):
                ps = lmfit.Parameters()
                ps.add("E", value=E0, min=0)
                ps.add("w", value=max(float(st["adhesion"][i]), 0.0) / (div * np.pi * R), min=0)
                ps.add("cp", value=c0)
                ps.add("b", value=b0)
                ps.add("s", value=s0, vary=bool(tilt))
                p_starts = [ps]
                if weight_m:
                    try:
                        p_starts.append(lmfit.minimize(resid, ps, method="leastsq", max_nfev=4000,
                                                       kws={"weighted": False}).params)
                    except Exception:   # noqa: BLE001 - a failed start
                        pass
                for p0 in p_starts:
                    try:
                        ri = lmfit.minimize(resid, p0, method="leastsq", max_nfev=4000)
                    except Exception:   # noqa: BLE001 - a failed start; a curve without any is flagged
                        continue
                    if res is None or (np.isfinite(ri.chisqr) and ri.chisqr < res.chisqr):
                        res = ri
        if res is None:
            continue
        pv = res.params.valuesdict()
        f = model(pv)
        r = yy - f
        w2 = wts(pv["cp"]) ** 2
        names = [k for k in ("E", "w", "cp", "b", "s") if res.params[k].vary]
        J = []
        for k in names:
            h = {"E": 1e-6 * max(abs(pv["E"]), 1e-3), "w": 1e-6 * max(abs(pv["w"]), 1e-6),
                 "cp": 1e-6 * max(np.ptp(x), 1e-12), "b": 1e-6 * max(np.abs(yy).max(), 1e-30),
                 "s": 1e-6 * max(np.abs(yy).max(), 1e-30) / max(np.ptp(x), 1e-12)}[k]
            up, dn = dict(pv), dict(pv)
            up[k] += h
            dn[k] -= h
            J.append((model(up) - model(dn)) / (2 * h))
        se = dict(zip(names, _sandwich_one(np.array(J), r, w2)))
        sst = ((yy - yy.mean()) ** 2).sum()
        out["E"][i], out["E_se"][i] = pv["E"], se.get("E", np.nan)
        out["w"][i], out["w_se"][i] = pv["w"], se.get("w", np.nan)
        out["contact"][i], out["contact_se"][i] = pv["cp"], se.get("cp", np.nan)
        out["baseline"][i] = pv["b"] + pv["s"] * (pv["cp"] - tref)
        out["tilt"][i] = pv["s"]
        out["r2"][i] = 1 - (r * r).sum() / sst if sst > 0 else np.nan
        out["rms"][i] = np.sqrt(np.mean(r * r))
        out["n_contact"][i] = int((x > pv["cp"]).sum())
        out["dmax"][i] = x.max() - pv["cp"]
        out["success"][i] = bool(res.success)
    return out


# ------------------------------------------------------------------ the fit
def fit_force_map(height_m, force_N, model: str = "hertz-paraboloid", tip_radius_m: float | None = None,
                  poisson_ratio: float = 0.5, *, half_angle_deg: float | None = None,
                  spring_constant_N_per_m: float | None = None, max_indentation_m: float | None = None,
                  baseline_fraction: float = 0.2, contact_threshold_sigma: float = 5.0, z0_m: float = 0.3e-9,
                  baseline: str = "offset", fit_tilt: bool | None = None,
                  contact_weight_m: float | str | None = "auto",
                  x_m=None, y_m=None, n_jobs: int | None = None):
    """Fit a contact model to every approach curve of a force map.

    Parameters
    ----------
    height_m, force_N : array (ny, nx, n_points) (or (n_points,) / (n, n_points))
        Approach segments: height (m, decreasing towards the sample) and force (N). Curves of a
        ragged map are padded with trailing NaN (their own length is used); a curve with NaN
        elsewhere, or with fewer than 20 finite points, is masked (flag 16).
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
        Fit range: points up to this indentation past the contact point (m). Default: the whole
        approach (nanite's default range).
    baseline_fraction : float
        Leading fraction of each curve used for the baseline and noise (0.05 .. 0.8).
    contact_threshold_sigma : float
        Threshold (noise SD) of the contact estimate used to detect curves without contact.
    z0_m : float
        Equilibrium separation for the Tabor parameter (m).
    baseline : {"offset", "line", "tilt"}
        Baseline model. ``"offset"`` (default, nanite's ``correct_force_offset`` + free baseline): a
        constant force offset, fitted. ``"line"``: the straight line fitted to the first
        ``baseline_fraction`` of the curve is subtracted (virtual deflection), then a fitted offset.
        ``"tilt"``: that line subtracted and a residual slope fitted jointly with the contact model.
        On curves with long-range forces before contact the slope can soak up their rise and move
        the contact point (E by 10-20 % on the real JPK map): hence nanite's convention by default.
    fit_tilt : bool, optional
        Old switch: True = ``baseline="tilt"``, False = ``baseline="line"`` (overrides ``baseline``).
    contact_weight_m : float, "auto" or None
        Residuals within this distance of the contact point are weighted ``|d - d0| / contact_weight_m``
        (nanite's ``weight_cp``). ``"auto"`` (default): nanite's 1 µm, or the tip radius when that is
        smaller (a sharp tip indents nanometres: 1 µm would weight the whole curve by the distance to
        the contact point). ``None`` or 0: uniform weights.
    x_m, y_m : array, optional
        Map coordinates (m) for the output.
    n_jobs : int, optional
        Unused (kept for compatibility): the profile fit is one numba kernel (all cores) or numpy.

    Returns
    -------
    xarray.Dataset
        dims ``("y", "x")``: ``E_Pa``, ``E_stderr_Pa``, ``contact_point_m`` (height frame),
        ``contact_point_stderr_m``, ``baseline_N`` (force offset at the contact point),
        ``tilt_N_per_m``, ``adhesion_N`` (DMT), ``work_of_adhesion_J_m2`` (JKR),
        ``max_indentation_m``, ``n_contact_points``, ``n_points``, ``residual_rms_N``, ``noise_N``,
        ``r2``, ``flag`` (bitmask, ``FLAGS``), ``good`` (flag == 0); attrs ``model``, ``tip_radius_m``,
        ``half_angle_deg``, ``poisson_ratio``, ``contact_weight_m``, ``tabor_mu``, ``suggested_model``,
        ``method``, ``fit_s``, ``warnings`` (one line per kind of flagged curve).
    """
    t_start = time.perf_counter()
    H, F = _as_map(height_m, force_N)
    cfg = _settings(model, tip_radius_m, poisson_ratio, half_angle_deg, spring_constant_N_per_m, max_indentation_m,
                    baseline_fraction, baseline, fit_tilt, contact_weight_m, H.shape[-1])
    cv = _prepare(H, F, cfg, contact_threshold_sigma)
    ft = _fit_curves(cv, cfg)
    flag = _flags(cv, ft, cfg)
    out = _dataset(cv, ft, cfg, flag, x_m, y_m)
    mu, suggestion = _tabor_suggestion(cv, ft, cfg, flag, z0_m)
    warnings = [f"{int(((flag & b) > 0).sum())} of {flag.size} curves: {txt}"
                for b, txt in FLAGS.items() if ((flag & b) > 0).any()]
    out.attrs.update(model=model, tip_radius_m=tip_radius_m, half_angle_deg=half_angle_deg, poisson_ratio=cfg.nu,
                     spring_constant_N_per_m=spring_constant_N_per_m, max_indentation_m=max_indentation_m,
                     contact_weight_m=cfg.W if cfg.W else 0.0, baseline=cfg.baseline,
                     tabor_mu=float(mu), suggested_model=suggestion, method=ft.method,
                     fit_s=float(time.perf_counter() - t_start), shared_axis=bool(cv.shared),
                     flags="; ".join(f"{k}={v}" for k, v in FLAGS.items()), warnings=warnings)
    return out


def _as_map(height_m, force_N):
    """Heights and forces as float arrays ``(ny, nx, n)`` (a curve or a list of curves as a 1-row map)."""
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
    if H.shape[-1] < 20:
        raise ParameterError(f"{H.shape[-1]} points per curve: at least 20 are needed")
    return H, F


def _settings(model, tip_radius_m, poisson_ratio, half_angle_deg, k, max_indentation_m, baseline_fraction,
              baseline, fit_tilt, contact_weight_m, n_points):
    """The checked options of :func:`fit_force_map` and what follows from them (model kind, E factor)."""
    from types import SimpleNamespace

    if model not in MODELS:
        raise ParameterError(f"unknown model {model!r}; one of {', '.join(MODELS)}")
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
    if k is not None and not k > 0:
        raise ParameterError("spring_constant_N_per_m must be > 0")
    if max_indentation_m is not None and not max_indentation_m > 0:
        raise ParameterError("max_indentation_m must be > 0 (m)")
    if fit_tilt is not None:
        baseline = "tilt" if fit_tilt else "line"
    if baseline not in ("offset", "line", "tilt"):
        raise ParameterError(f"baseline must be 'offset', 'line' or 'tilt', not {baseline!r}")
    if isinstance(contact_weight_m, str):
        if contact_weight_m != "auto":
            raise ParameterError(f"contact_weight_m must be a distance (m), 'auto' or None, not {contact_weight_m!r}")
        contact_weight_m = min(NANITE_WEIGHT_CP_M, tip_radius_m) if needs_R else NANITE_WEIGHT_CP_M
    if contact_weight_m is not None and not (np.isfinite(contact_weight_m) and contact_weight_m >= 0):
        raise ParameterError("contact_weight_m must be >= 0 (m), 'auto' or None")
    R = float(tip_radius_m or 0.0)
    nu = float(poisson_ratio)
    tana = np.tan(np.radians(half_angle_deg)) if half_angle_deg else 1.0
    kind = {"hertz-paraboloid": "p15", "dmt": "p15", "jkr": "p15", "cone": "p2", "pyramid": "p2",
            "hertz-sphere": "sphere"}[model]
    Efac = (1 - nu ** 2) * {"p15": 3 / (4 * np.sqrt(R)) if R > 0 else np.nan,
                            "p2": (np.pi / (2 * tana)) if model == "cone" else 1 / (BILODEAU * tana),
                            "sphere": 1.0}[kind]
    return SimpleNamespace(model=model, needs_R=needs_R, R=R, nu=nu, kind=kind, Efac=Efac, k=k,
                           max_indentation_m=max_indentation_m, baseline_fraction=baseline_fraction,
                           baseline=baseline, fit_tilt=baseline == "tilt",
                           W=float(contact_weight_m) if contact_weight_m else None,
                           dmt_like=model in ("dmt", "jkr"), m=n_points)


def _prepare(H, F, cfg, contact_threshold_sigma):
    """Valid points, the fit axis, the baseline-corrected force, the noise and the contact estimate of
    every curve (vectorised over the map)."""
    from types import SimpleNamespace

    ny, nx, m = H.shape
    # valid points: finite height and force; NaN allowed only as a trailing run (ragged-map padding)
    fin = np.isfinite(H) & np.isfinite(F)
    nv = fin.sum(-1)
    prefix = np.arange(m) < nv[..., None]
    masked = ~(fin == prefix).all(-1) | (nv < 20)
    if masked.all():
        raise ProcessingError("every force curve is NaN/masked")
    nv = np.where(masked, 0, nv)
    valid = np.arange(m) < nv[..., None]
    Hs, Fs = np.where(valid, H, 0.0), np.where(valid, F, 0.0)
    d = -(Hs + Fs / cfg.k) if cfg.k else -Hs
    # each curve sorted along d (towards the sample; the least-squares fit does not depend on the
    # order, the baseline part and the contact-point search do); padding last, held at the curve's
    # deepest point. Only curves that are not already in order are sorted (maps can be large).
    unsorted = ((np.diff(d, axis=-1) < 0) & valid[..., 1:]).any(-1)   # valid points are a prefix
    if unsorted.any():
        d, Fs = d.copy(), Fs.copy()
        order = np.argsort(np.where(valid, d, np.inf)[unsorted], axis=-1, kind="stable")
        d[unsorted] = np.take_along_axis(d[unsorted], order, -1)
        Fs[unsorted] = np.take_along_axis(Fs[unsorted], order, -1)
    dlast = np.take_along_axis(d, np.maximum(nv - 1, 0)[..., None], -1)
    d = np.where(valid, d, dlast)

    nb = np.maximum(10, (cfg.baseline_fraction * nv).astype(int))
    Fc, noise = baseline_line(d, Fs, nb)      # line-corrected force: noise and the contact estimate
    Fc = np.where(valid, Fc, 0.0)
    if cfg.baseline == "offset":          # the fitted force: only the mean of the baseline removed
        sel = np.arange(m) < nb[..., None]
        Ffit = Fs - (np.where(sel, Fs, 0.0).sum(-1) / np.maximum(nb, 1))[..., None]
        Ffit = np.where(valid, Ffit, 0.0)
    else:
        Ffit = Fc
    noise = np.where(noise > 0, noise, np.finfo(float).tiny)
    thr = contact_threshold_sigma * noise
    # adhesive models: contact starts with the first lasting deviation either way (attractive or not)
    ic = _contact_index(np.abs(Fc) if cfg.model in ("dmt", "jkr") else Fc, thr, nv)
    no_contact = (ic >= nv - 3) & ~masked
    ic = np.clip(ic, np.minimum(nb, np.maximum(nv - 3, 0)), np.maximum(nv - 3, 0))
    d_cp0 = np.take_along_axis(d, ic[..., None], -1)[..., 0]
    adhesion_est = np.maximum(-np.where(valid, Fc, np.inf).min(-1), 0.0)
    adhesion_est = np.where(masked, 0.0, adhesion_est)
    live = ~masked
    return SimpleNamespace(shape=(ny, nx), m=m, nv=nv, valid=valid, masked=masked, live=live, d=d, Ffit=Ffit,
                           noise=noise, no_contact=no_contact, d_cp0=d_cp0, adhesion_est=adhesion_est,
                           shared=_one_ramp(d, live, nv, m))


def _one_ramp(d, live, nv, m) -> bool:
    """Do all live curves share one ramp? (reported only: every curve is fitted on its own samples)"""
    if not (nv[live] == m).all():
        return False
    dv = d[live]
    span = max(float(np.ptp(dv[0])), np.finfo(float).tiny)
    for s0 in range(0, dv.shape[0], 2048):   # in blocks (maps can be large)
        if np.abs(dv[s0:s0 + 2048] - dv[:1]).max() > 1e-9 * span:
            return False
    return True


def _fit_curves(cv, cfg):
    """The profile fit of every live curve (its window set from the contact point when
    ``max_indentation_m`` is given), then JKR by lmfit from the DMT start. -> namespace of flat arrays."""
    from types import SimpleNamespace

    ny, nx = cv.shape
    m = cv.m
    idx = np.flatnonzero(cv.live.ravel())
    D, Y, V, NZ = cv.d.reshape(-1, m), cv.Ffit.reshape(-1, m), cv.valid.reshape(-1, m), cv.noise.reshape(-1)
    n_all = ny * nx
    chunk = max(1, (1 << 19) // m)

    def fit_all(cwin, imax, weight):
        """Profile fit of every live curve with the window ``d <= cwin + imax``."""
        res = {}
        for s0 in range(0, idx.size, chunk):
            ii = idx[s0:s0 + chunk]
            v = V[ii]
            if imax is not None:
                v = v & (D[ii] <= (cwin.ravel()[ii] + imax)[:, None])
            nw = v.sum(-1)
            r = _fit_block(D[ii], Y[ii], v.astype(float), nw, kind=cfg.kind, R=cfg.R, weight_m=weight,
                           tilt=cfg.fit_tilt, dmt=cfg.dmt_like, noise=NZ[ii])
            r["window"] = v
            for k, val in r.items():
                if val is None:
                    continue
                if k == "window":
                    res.setdefault(k, {})[s0] = val
                    continue
                if k not in res:
                    shape = (n_all,) + np.shape(val)[1:]
                    res[k] = np.full(shape, np.nan if np.asarray(val).dtype.kind == "f" else 0,
                                     dtype=np.asarray(val).dtype)
                res[k][ii] = val
        return res

    cwin_last = cv.d_cp0
    res = fit_all(None, None, cfg.W)
    if cfg.max_indentation_m is not None:
        # the window is placed from the contact point of the whole-curve fit (a threshold estimate
        # falls in long-range forces before contact: its window would hold no contact at all), then
        # set again from the windowed fit's contact point and refitted
        for _ in range(2):
            c1 = res["contact"].reshape(ny, nx)
            cwin_last = np.where(np.isfinite(c1), c1, cwin_last)
            res = fit_all(cwin_last, cfg.max_indentation_m, cfg.W)

    Vw = np.zeros((n_all, m), bool)
    for s0, val in res.pop("window").items():
        Vw[idx[s0:s0 + chunk]] = val

    ft = SimpleNamespace(res=res, method="profile-lstsq", success=np.isfinite(res["S"]) & np.isfinite(res["contact"]),
                         adhesion=None, adhesion_se=None, work=None, work_se=None)
    if cfg.model == "jkr":
        imax = cfg.max_indentation_m
        runs = [res] + ([fit_all(cwin_last, imax, None)] if cfg.W else [])
        starts = [{"contact": r["contact"][idx], "E": r["A"][idx] * cfg.Efac, "tilt": r["tilt"][idx],
                   "baseline": r["baseline"][idx], "adhesion": r["adhesion"][idx]} for r in runs]
        jr = _fit_jkr_curves(D[idx], Y[idx], Vw[idx].astype(float), starts, cfg.R, cfg.nu, cfg.W, cfg.fit_tilt)
        E = np.full(n_all, np.nan)
        Ese, cp_d, cp_se = E.copy(), E.copy(), E.copy()
        work, work_se = E.copy(), E.copy()
        E[idx], Ese[idx], work[idx], work_se[idx] = jr["E"], jr["E_se"], jr["w"], jr["w_se"]
        cp_d[idx], cp_se[idx] = jr["contact"], jr["contact_se"]
        for k_out, k_in in (("baseline", "baseline"), ("tilt", "tilt"), ("r2", "r2"), ("rms", "rms"),
                            ("n_contact", "n_contact"), ("dmax", "dmax")):
            res[k_out][idx] = jr[k_in]
        ft.success = np.zeros(n_all, bool)
        ft.success[idx] = jr["success"]
        ft.method = "profile-lstsq (DMT start) + lmfit (JKR)"
        ft.work, ft.work_se = work, work_se
    else:
        E = res["A"] * cfg.Efac
        Ese = res["A_se"] * cfg.Efac
        cp_d, cp_se = res["contact"], res["contact_se"]
        if cfg.model == "dmt":
            ft.adhesion, ft.adhesion_se = res["adhesion"], res["adhesion_se"]
    ft.E, ft.Ese, ft.cp_d, ft.cp_se = (np.asarray(a).reshape(ny, nx) for a in (E, Ese, cp_d, cp_se))
    return ft


def _flags(cv, ft, cfg):
    """The quality bitmask of every curve (:data:`FLAGS`)."""
    ny, nx = cv.shape
    res, live = ft.res, cv.live

    def grid(a):
        return np.asarray(a).reshape(ny, nx)

    E, Ese, cp_se = ft.E, ft.Ese, ft.cp_se
    n_contact = grid(res["n_contact"]).astype(np.int64)
    success = grid(ft.success) & live
    r2 = grid(res["r2"])
    flag = np.zeros((ny, nx), np.int64)
    flag |= np.where(~success & live, 1, 0)
    bad_E = ~(np.isfinite(E) & (E > 0) & np.isfinite(Ese) & (Ese > 0))
    flag |= np.where(bad_E & live, 2, 0)
    flag |= np.where(~(r2 >= 0.9) & live, 4, 0)
    flag |= np.where(cv.no_contact, 8, 0)
    flag |= np.where(cv.masked, 16, 0)
    flag |= np.where((n_contact < 10) & live, 32, 0)
    with np.errstate(all="ignore"):
        flag |= np.where((Ese / np.abs(E) > 0.5) & live & ~bad_E, 64, 0)
        poorly = grid(res["competing"]).astype(bool) | (cp_se > 0.1 * grid(res["dmax"])) | ~np.isfinite(cp_se)
        if cfg.model != "jkr":
            # the contact point is set by the noise, not by the data (see _fit_block): the modulus
            # of the noise-corrected objective differs by > 5 % and > 2 standard errors
            E_alt = grid(res["A_alt"]) * cfg.Efac
            noise_set = (np.abs(E_alt - E) > np.maximum(0.05 * np.abs(E), 2 * Ese)) & np.isfinite(E_alt)
            poorly |= noise_set
    flag |= np.where(poorly & live, 128, 0)
    flag |= np.where(grid(res["edge"]).astype(bool) & live, 256, 0)
    return flag


def _dataset(cv, ft, cfg, flag, x_m, y_m):
    """The per-curve results as an xarray Dataset ``(y, x)`` with units and descriptions."""
    import xarray as xr

    ny, nx = cv.shape
    res, live = ft.res, cv.live

    def grid(a):
        return np.asarray(a).reshape(ny, nx)

    coords = {}
    if x_m is not None:
        coords["x"] = ("x", np.asarray(x_m, float), {"units": "m"})
    if y_m is not None:
        coords["y"] = ("y", np.asarray(y_m, float), {"units": "m"})
    out = xr.Dataset(coords=coords)
    dims = ("y", "x")

    def put(name, val, unit, desc):
        out[name] = (dims, np.asarray(val), {"units": unit, "description": desc})

    put("E_Pa", np.where(live, ft.E, np.nan), "Pa", "Young's modulus")
    if cfg.model != "jkr":
        put("E_noise_corrected_Pa", np.where(live, grid(res["A_alt"]) * cfg.Efac, np.nan), "Pa",
            "cross-check: E of the noise-corrected weighted objective (flag 128 when it differs)")
    put("E_stderr_Pa", ft.Ese, "Pa", "standard error of E (sandwich covariance of the weighted fit)")
    put("contact_point_m", -ft.cp_d, "m", "contact point, height frame" + (" (tip position)" if cfg.k else ""))
    put("contact_point_stderr_m", ft.cp_se, "m", "standard error of the contact point")
    put("baseline_N", grid(res["baseline"]), "N", "fitted force offset at the contact point (on top of the baseline "
        "removed before the fit: the mean, or the line, of the first baseline_fraction)")
    put("tilt_N_per_m", grid(res["tilt"]), "N/m", "fitted residual baseline slope (along the indentation axis)")
    if cfg.model == "dmt":
        put("adhesion_N", grid(ft.adhesion), "N", "DMT adhesion force")
        put("adhesion_stderr_N", grid(ft.adhesion_se) * 1.0, "N", "standard error of the adhesion")
    if cfg.model == "jkr":
        put("work_of_adhesion_J_m2", grid(ft.work), "J/m2", "JKR work of adhesion")
        put("work_of_adhesion_stderr_J_m2", grid(ft.work_se), "J/m2", "standard error of w")
    put("max_indentation_m", grid(res["dmax"]), "m", "deepest indentation in the fit window")
    put("n_contact_points", grid(res["n_contact"]).astype(np.int64), "", "points in contact inside the fit window")
    put("n_points", cv.nv, "", "recorded points of the curve (ragged maps: each curve its own)")
    put("residual_rms_N", grid(res["rms"]), "N", "RMS residual in the fit window (unweighted)")
    put("noise_N", cv.noise, "N", "baseline noise SD")
    put("adhesion_estimate_N", cv.adhesion_est, "N", "largest attractive force on approach")
    put("r2", grid(res["r2"]), "", "coefficient of determination (unweighted, in the fit window)")
    put("flag", flag, "", "quality bitmask: " + "; ".join(f"{k}={v}" for k, v in FLAGS.items()))
    put("good", flag == 0, "", "flag == 0")
    return out


def _tabor_suggestion(cv, ft, cfg, flag, z0_m):
    """Tabor parameter from the adhesion (fitted for DMT / JKR, else the approach minimum) and the
    model it suggests."""
    g = (flag == 0)
    if not (g.any() and cfg.needs_R):
        return np.nan, "unknown"
    ny, nx = cv.shape
    Eg = float(np.median(ft.E[g]))
    if cfg.model == "dmt":
        ad = float(np.median(np.asarray(ft.adhesion).reshape(ny, nx)[g]))
    elif cfg.model == "jkr":
        ad = float(np.median(np.asarray(ft.work).reshape(ny, nx)[g])) * 2 * np.pi * cfg.R
    else:
        ad = float(np.median(cv.adhesion_est[g]))
    if ad <= 6 * float(np.median(cv.noise[g])):
        return 0.0, "hertz (no significant adhesion)"
    return tabor(Eg, ad, cfg.R, cfg.nu, z0_m)
