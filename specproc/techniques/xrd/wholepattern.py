"""Whole-pattern (Pawley / Le Bail-type) refinement and whole-pattern phase confirmation.

Why written here (measured side by side in ``benchmarks/bench_xrd_wholepattern.py``, numbers in
``docs/xrd.md``): xrayutilities' ``PowderModel`` (already a dependency) is a Rietveld forward model —
intensities from the structure, no free-intensity (Le Bail / Pawley) mode, so texture or unknown structure
factors are outside its model — and its fundamental-parameters convolution took 24 s to refine one cubic
cell on a 5,000-point pattern (188 ppm off on a pattern from another profile) against 0.5 s here (1 ppm).
powerxrd 4.0 (MIT; wheel inspected, not installed) registers only a cubic lattice and fits structure-factor
intensities; easydiffraction / cryspy (BSD) are built for neutron data around a compiled structure engine
(not measured). rietx is not in the package registry. No maintained package gives free-intensity
whole-pattern fits with cell esd's for our crystal systems, so the model below is a bounded non-linear
least squares (:func:`scipy.optimize.least_squares`) with numpy kernels.

Intensities: Pawley's free intensities solved by linear least squares at every evaluation (variable
projection), rather than Le Bail's iteration: the Le Bail alternation (intensities held while the cell moves)
slid into the zero-shift / cell valley from a texture-distorted start and needed 8+ cycles; the projected
problem converges in one least-squares run with the exact χ² for every cell.

Model (per point ``x`` = 2θ in deg)::

    y(x) = Σ_phases Σ_k I_k [φ(x; 2θ1_k, Γ_k, η_k) + r φ(x; 2θ2_k, Γ_k, η_k)] + background(x)

* ``2θ1_k`` from Bragg's law with the phase's cell (free parameters within its crystal system,
  bounded ±``max_strain`` around the reference cell) and Kα1, ``2θ2_k`` with Kα2 (same d);
  both shifted by the zero error and the specimen displacement: Δ2θ = zero + D cos θ (deg);
* φ is the Thompson–Cox–Hastings pseudo-Voigt (J. Appl. Cryst. 20 (1987) 79), unit area:
  Gaussian FWHM² = U tan²θ + V tanθ + W (Caglioti, instrument, shared by all phases),
  Lorentzian FWHM = X / cos θ + Y tan θ (size and strain, per phase); Γ and η from the TCH formulas;
* ``I_k`` free reflection intensities (one per group of reflections whose d coincide for every
  cell of the system) and the background (the SNIP background of the peak search, scaled, plus a
  Chebyshev polynomial) are linear parameters solved at every evaluation (variable projection);
* weights 1/σ² (the file's σ column, else Poisson counts);
* optionally (``asymmetry=True``) an axial-divergence tail on every line (:func:`_pv_tail_parts`);
* cells of every crystal system, monoclinic and triclinic through the reciprocal metric
  (:func:`~specproc.techniques.xrd.lattice.d_spacing_cell`).

Series of patterns: :func:`pawley_series` (the batch engine's Levenberg–Marquardt over blocks of patterns,
compiled evaluator :func:`_series_kernel_py`).

Esd's: from the full information matrix [non-linear parameters, every intensity group,
background] at the optimum (a Pawley-style covariance: the intensities' uncertainty is carried into
the cell), scaled by the reduced χ² (GOF²), as GSAS-II and TOPAS report them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...core.errors import ProcessingError
from ...fitting.noise import POINTS_PER_FWHM, bin_mean
from .lattice import ANGLES, CELL_PARAMS, OBLIQUE, cell_volume_full, d_spacing_cell

#: half-width of the profile window, in FWHM: the Lorentzian tail beyond holds 2 % of a Lorentzian's
#: area (free intensities absorb it; positions are not biased by a symmetric cut); 30 FWHM cost 2x the time
WINDOW_FWHM = 15.0
_LN2 = np.log(2.0)


def tch(two_theta_deg, U, V, W, X, Y):
    """Thompson–Cox–Hastings pseudo-Voigt: total FWHM Γ (deg) and Lorentzian fraction η at 2θ."""
    th = np.radians(np.asarray(two_theta_deg, float) / 2)
    t = np.tan(th)
    g = np.sqrt(np.clip(U * t * t + V * t + W, 1e-10, None))
    lw = np.clip(X / np.cos(th) + Y * t, 0.0, None)
    gam = (g ** 5 + 2.69269 * g ** 4 * lw + 2.42843 * g ** 3 * lw ** 2 + 4.47163 * g ** 2 * lw ** 3
           + 0.07842 * g * lw ** 4 + lw ** 5) ** 0.2
    q = lw / gam
    eta = np.clip(1.36603 * q - 0.47719 * q ** 2 + 0.11116 * q ** 3, 0.0, 1.0)
    return gam, eta


def _pv(dx, gam, eta):
    """Unit-area pseudo-Voigt of total FWHM ``gam`` at offsets ``dx`` (deg)."""
    u = (dx / gam) ** 2
    return eta * (2 / np.pi) / gam / (1 + 4 * u) + (1 - eta) * np.sqrt(4 * _LN2 / np.pi) / gam * np.exp(-4 * _LN2 * u)


def _pv_parts(dx, gam, eta):
    """Unit-area pseudo-Voigt and its derivatives with respect to its centre, FWHM and η at offsets ``dx``."""
    g2 = gam * gam
    u = dx * dx / g2
    den = 1 + 4 * u
    lor = (2 / np.pi) / gam / den
    gau = np.sqrt(4 * _LN2 / np.pi) / gam * np.exp(-4 * _LN2 * u)
    val = eta * lor + (1 - eta) * gau
    d_c = eta * lor * (8 * dx / g2) / den + (1 - eta) * gau * (8 * _LN2 * dx / g2)
    d_g = eta * lor * (-1 + 8 * u / den) / gam + (1 - eta) * gau * (-1 + 8 * _LN2 * u) / gam
    return val, d_c, d_g, lor - gau


#: Gauss–Laguerre nodes of the axial-divergence tail (∫₀^∞ e^(−t) f(t) dt): 8 nodes keep the tail smooth for
#: tail lengths up to ~2 FWHM (the lowest angles)
_TAIL_T, _TAIL_W = np.polynomial.laguerre.laggauss(8)


def _pv_tail_parts(dx, gam, eta, ell, frac):
    """Unit-area pseudo-Voigt with an axial-divergence tail, and its derivatives.

    The line is (1 − f) φ(Δ) + f ∫₀^∞ e^(−t) φ(Δ + ℓ t) dt: a fraction ``frac`` of the intensity spread towards
    low angles (``ell`` > 0; high angles when < 0) by an exponential of length |ℓ| that starts at the Bragg angle,
    so the line's sharp edge — not its centroid — stays at the reflection's position. It is the cheap form of
    Finger–Cox–Jephcoat axial divergence (J. Appl. Cryst. 27 (1994) 892), whose kernel also starts at the Bragg
    angle and tails to low angles below 90° (to high angles above) over a length ∝ cot 2θ; FCJ's exact kernel
    needs an integral over the divergence per point. A Bérar–Baldinozzi factor (symmetric profile × (1 + odd
    Hermite terms)) was measured first: it lowered χ² on asymmetric lines but moved the fitted positions off the
    Bragg angles (cell 1.3e-4 off instead of 7.6e-5 without it, generated LaB6), because its position parameter is
    neither the line's edge nor its centroid. Returns value, ∂/∂centre, ∂/∂Γ, ∂/∂η, ∂/∂f, ∂/∂ℓ."""
    v0, c0, g0, e0 = _pv_parts(dx, gam, eta)
    vt = np.zeros_like(v0)
    ct, gt, et, lt = vt.copy(), vt.copy(), vt.copy(), vt.copy()
    for t, w in zip(_TAIL_T, _TAIL_W):
        v, c, g, e = _pv_parts(dx + ell * t, gam, eta)
        vt += w * v
        ct += w * c
        gt += w * g
        et += w * e
        lt -= w * t * c  # ∂φ(Δ + ℓt)/∂ℓ = t ∂φ/∂Δ = −t ∂φ/∂centre
    f1 = 1 - frac
    return f1 * v0 + frac * vt, f1 * c0 + frac * ct, f1 * g0 + frac * gt, f1 * e0 + frac * et, vt - v0, frac * lt


@dataclass
class PhaseSpec:
    """One phase of a whole-pattern fit: its reference, starting cell (Å) and reflection groups in range."""

    ref: object                     # references.Reference
    cell: dict                      # Å, the free parameters of the system
    hkl: np.ndarray = None          # (n_groups, 3) one representative per intensity group
    group_of: np.ndarray = None     # (n_refl,) group index of each reflection
    hkl_all: np.ndarray = None      # (n_refl, 3)
    ref_intensity: np.ndarray = None  # (n_groups,) reference intensities (%, summed over the group)

    @property
    def name(self) -> str:
        return self.ref.name

    @property
    def system(self) -> str:
        return self.ref.system

    @property
    def free(self) -> tuple:
        return CELL_PARAMS[self.ref.system]


@dataclass
class WholePatternFit:
    """The result of :func:`pawley_fit` (plain numbers and arrays)."""

    x: np.ndarray
    y: np.ndarray
    calc: np.ndarray
    background: np.ndarray
    phases: list                    # list of dicts (per phase, see pawley_fit)
    params: dict                    # zero_deg, displacement_deg, U, V, W with *_stderr
    rwp: float
    rexp: float
    chi2: float                     # Σ w (y - calc)²
    gof2: float                     # reduced χ² = (Rwp / Rexp)²
    n_params: int
    n_points: int
    seconds: float
    converged: bool
    warnings: list = field(default_factory=list)
    state: dict = field(default_factory=dict)

    def phase(self, name):
        for p in self.phases:
            if p["name"] == name:
                return p
        raise KeyError(name)


def _cell_bounds(k, r0, max_strain):
    """Bounds of a free cell parameter around the reference value: lengths ±``max_strain`` (relative), angles
    ±60° × ``max_strain`` (±3° at the default 5 %)."""
    span = 60.0 * max_strain if k in ANGLES else r0 * max_strain
    return r0 - span, r0 + span


def _groups(ref, two_theta_range, wavelength_nm, cell, max_strain):
    """Reflections of ``ref`` that can fall in the range for any cell within the strain bounds, grouped
    into intensity groups (d equal for every cell of the system: equal at two different cells)."""
    lam = wavelength_nm * 10
    d0 = d_spacing_cell(ref.hkl, ref.system, cell)
    lo, hi = two_theta_range
    # generous: the cell may move by ±max_strain, the zero by a fraction of a degree
    dmin = lam / (2 * np.sin(np.radians(min(hi + 1.0, 179.0) / 2))) / (1 - max_strain)
    dmax = lam / (2 * np.sin(np.radians(max(lo - 1.0, 0.5) / 2))) * (1 + max_strain) if lo > 1.5 else np.inf
    sel = (d0 >= dmin * (1 - max_strain)) & (d0 <= dmax)
    hkl = ref.hkl[sel]
    if not len(hkl):
        return hkl, np.zeros(0, int), hkl, np.zeros(0)
    d1 = d0[sel]
    pert = {k: v * f for (k, v), f in zip(cell.items(), (1.013, 0.991, 1.007, 1.011, 0.993, 1.005))}
    d2 = d_spacing_cell(hkl, ref.system, pert)
    key = np.round(np.stack([d1, d2], 1) * 1e5).astype(np.int64)
    _, first, inv = np.unique(key, axis=0, return_index=True, return_inverse=True)
    inv = inv.ravel()
    if ref.system in OBLIQUE:
        # Reference.sticks has the closed forms only: multiplicity × |F|² × Lorentz–polarisation here
        th = np.arcsin(np.clip(lam / (2 * d0[sel]), 0, 1))
        ri = ref.multiplicity[sel] * ref.f2[sel] * (1 + np.cos(2 * th) ** 2) / (np.sin(th) ** 2 * np.cos(th))
        ri = 100 * ri / ri.max()
    else:
        st = ref.sticks(wavelength_nm, (0.0, 180.0), cell=cell)
        # reference intensity of every reflection (matched by hkl) summed per group
        lab = {tuple(h): i for h, i in zip(map(tuple, st["hkl"]), st["intensity"])}
        ri = np.array([lab.get(tuple(h), 0.0) for h in hkl])
    gi = np.bincount(inv, weights=ri, minlength=len(first))
    return hkl[first], inv, hkl, gi


class _Model:
    """The parameterised pattern: packs/unpacks the non-linear parameters and evaluates profiles."""

    def __init__(self, x, y, w, phases, wavelength_nm, ka2, snip_bg, n_cheb, caglioti, refine_zero,
                 refine_displacement, max_strain, asymmetry=False):
        self.x, self.y, self.w = x, y, w
        self.asym = bool(asymmetry)
        self.dx = np.gradient(x)
        self.phases = phases
        self.l1 = wavelength_nm
        self.ka2 = ka2  # (λ2, ratio) or None
        self.max_strain = max_strain
        t = (2 * x - x[0] - x[-1]) / (x[-1] - x[0])
        cols = [np.polynomial.chebyshev.chebvander(t, max(n_cheb - 1, 0))]
        if snip_bg is not None:
            cols.insert(0, np.asarray(snip_bg, float)[:, None])
        self.B = np.hstack(cols)
        # non-linear parameter layout
        names, p0, lo, hi = [], [], [], []

        def add(n, v, a, b):
            names.append(n)
            p0.append(float(np.clip(v, a, b)))
            lo.append(a)
            hi.append(b)
        self.fixed = {}
        if refine_zero:
            add("zero_deg", 0.0, -1.0, 1.0)
        else:
            self.fixed["zero_deg"] = 0.0
        if refine_displacement:
            add("displacement_deg", 0.0, -1.0, 1.0)
        else:
            self.fixed["displacement_deg"] = 0.0
        U, V, W = caglioti if caglioti is not None else (0.0, 0.0, None)
        self.caglioti_fixed = caglioti is not None
        if caglioti is None:
            add("U", 0.0, 0.0, 2.0)
            add("V", 0.0, -1.0, 1.0)
            add("W", 1e-3, 1e-8, 1.0)
        else:
            self.fixed.update(U=U, V=V, W=W)
        if self.asym:  # axial-divergence tail: fraction and length (× cot 2θ, deg), an instrument property
            add("asym_frac", 0.2, 0.0, 0.95)
            add("asym_len", 0.01, 0.0, 0.5)
        for i, ph in enumerate(phases):
            for k in ph.free:
                add(f"{i}.{k}", ph.cell[k], *_cell_bounds(k, ph.ref.cell[k], max_strain))
            add(f"{i}.X", 0.01, 0.0, 3.0)
            add(f"{i}.Y", 0.0, 0.0, 3.0)
        self.names, self.p0 = names, np.array(p0)
        self.lo, self.hi = np.array(lo), np.array(hi)
        self.idx = {n: i for i, n in enumerate(names)}

    def get(self, p, n):
        return p[self.idx[n]] if n in self.idx else self.fixed[n]

    def kalpha1(self, p, i):
        """Reflections of phase ``i`` at parameters ``p``: d (nm), the mask of those inside the scan
        (sin θ < 1), the instrument shift (deg), the Kα1 centres (deg), their TCH FWHM Γ and η."""
        ph = self.phases[i]
        cell = {k: self.get(p, f"{i}.{k}") for k in ph.free}
        d = d_spacing_cell(ph.hkl, ph.system, cell) / 10  # nm
        s1 = self.l1 / (2 * d)
        ok = s1 < 1
        th1 = np.arcsin(np.clip(s1, 0, 1))
        shift = self.get(p, "zero_deg") + self.get(p, "displacement_deg") * np.cos(th1)
        c1 = np.degrees(2 * th1) + shift
        gam, eta = tch(c1, self.get(p, "U"), self.get(p, "V"), self.get(p, "W"), self.get(p, f"{i}.X"),
                       self.get(p, f"{i}.Y"))
        return d, ok, shift, c1, gam, eta

    def lines(self, p, i):
        """Kα1 (and Kα2) lines of phase ``i``: centre, Γ, η, reflection index, weight."""
        d, ok, shift, c1, gam, eta = self.kalpha1(p, i)
        k = np.arange(len(d))
        cs, gs, es, ks, ws = [c1[ok]], [gam[ok]], [eta[ok]], [k[ok]], [np.ones(ok.sum())]
        if self.ka2 is not None:
            l2, ratio = self.ka2
            s2 = l2 / (2 * d)
            ok2 = s2 < 1
            c2 = np.degrees(2 * np.arcsin(np.clip(s2, 0, 1))) + shift
            cs.append(c2[ok2])
            gs.append(gam[ok2])
            es.append(eta[ok2])
            ks.append(k[ok2])
            ws.append(np.full(ok2.sum(), ratio))
        return np.concatenate(cs), np.concatenate(gs), np.concatenate(es), np.concatenate(ks), np.concatenate(ws)

    def profiles(self, p, i):
        """Profile samples of phase ``i``, one contiguous window per reflection group (Kα1 and Kα2 together),
        in group order: (point index, group index, value, points per group). Contiguous sorted windows let
        :meth:`design` build the sparse matrix directly (COO → CSC sorting was 40 % of an evaluation)."""
        x = self.x
        d, ok, shift, c1, g, e = self.kalpha1(p, i)
        hw = WINDOW_FWHM * g
        if self.ka2 is not None:
            l2, ratio = self.ka2
            s2 = l2 / (2 * d)
            ok2 = s2 < 1
            c2 = np.where(ok2, np.degrees(2 * np.arcsin(np.clip(s2, 0, 1))) + shift, np.inf)
            right = np.where(ok2, c2, c1) + hw
        else:
            ratio, ok2, c2, right = 0.0, np.zeros(len(d), bool), np.full(len(d), np.inf), c1 + hw
        lo = np.searchsorted(x, c1 - hw)
        hi = np.searchsorted(x, right)
        cnt = np.where(ok, hi - lo, 0)
        n = int(cnt.sum())
        if n == 0:
            return np.zeros(0, int), np.zeros(0, int), np.zeros(0), cnt
        grp = np.repeat(np.arange(len(d)), cnt)
        start = np.repeat(np.cumsum(cnt) - cnt, cnt)
        pt = np.arange(n) - start + np.repeat(lo, cnt)
        gg, ee = g[grp], e[grp]
        if self.asym:
            fr, ln = self.get(p, "asym_frac"), self.get(p, "asym_len")
            val = _pv_tail_parts(x[pt] - c1[grp], gg, ee, ln / np.tan(np.radians(c1[grp])), fr)[0]
        else:
            val = _pv(x[pt] - c1[grp], gg, ee)
        if self.ka2 is not None:
            m2 = ok2[grp]
            if self.asym:
                v2 = _pv_tail_parts(x[pt[m2]] - c2[grp[m2]], gg[m2], ee[m2], ln / np.tan(np.radians(c2[grp[m2]])), fr)[0]
            else:
                v2 = _pv(x[pt[m2]] - c2[grp[m2]], gg[m2], ee[m2])
            val[m2] += ratio * v2
        return pt, grp, val, cnt

    def design(self, p):
        """Sparse profile matrix Φ (n_points × n_groups of all phases) and the phases' column offsets."""
        from scipy.sparse import csc_matrix

        prof = [self.profiles(p, i) for i in range(len(self.phases))]
        off = np.concatenate([[0], np.cumsum([len(ph.hkl) for ph in self.phases])])
        cnt = np.concatenate([c for *_, c in prof])
        indptr = np.concatenate([[0], np.cumsum(cnt)])
        Phi = csc_matrix((np.concatenate([v for _, _, v, _ in prof]), np.concatenate([q for q, _, _, _ in prof]),
                          indptr), shape=(len(self.x), int(off[-1])))
        Phi.has_sorted_indices = True
        return Phi, [int(o) for o in off]

    def solve(self, p):
        """Variable projection: intensities of every group and the background coefficients by weighted linear
        least squares for the non-linear parameters ``p`` (Pawley's intensities, solved, not iterated).

        Normal equations with column scaling and a tiny relative ridge (1e-9): two reflections that coincide
        within a small fraction of their width share their summed intensity instead of diverging.
        """
        Phi, off = self.design(p)
        from scipy.sparse import diags

        Pw = (diags(self.w) @ Phi).tocsc()
        Bw = self.B * self.w[:, None]
        K = off[-1]
        nb = self.B.shape[1]
        G = np.empty((K + nb, K + nb))
        G[:K, :K] = (Phi.T @ Pw).toarray()
        G[:K, K:] = Pw.T @ self.B
        G[K:, :K] = G[:K, K:].T
        G[K:, K:] = self.B.T @ Bw
        rhs = np.concatenate([Pw.T @ self.y, Bw.T @ self.y])
        dg = np.sqrt(np.diag(G))
        dead = dg <= 1e-300
        dg[dead] = 1.0
        Gs = G / np.outer(dg, dg)
        Gs[np.diag_indices_from(Gs)] += 1e-9 + dead
        from scipy.linalg import lu_factor, lu_solve

        try:
            lu = lu_factor(Gs, check_finite=False)
            coef = lu_solve(lu, rhs / dg, check_finite=False) / dg
            if not np.all(np.isfinite(coef)):
                raise np.linalg.LinAlgError
        except (np.linalg.LinAlgError, ValueError):
            lu = None
            coef = np.linalg.pinv(Gs, hermitian=True) @ (rhs / dg) / dg
        coef[:K][dead[:K]] = 0.0
        calc = Phi @ coef[:K] + self.B @ coef[K:]
        self._cache = (p.copy(), coef, Phi, off, lu, dg)
        return coef, calc, Phi, off

    def _geometry(self, p, i):
        """Per reflection group of phase ``i``: Kα1/Kα2 centres, Γ, η and where the groups lie."""
        ph = self.phases[i]
        cell = {k: self.get(p, f"{i}.{k}") for k in ph.free}
        d = d_spacing_cell(ph.hkl, ph.system, cell) / 10  # nm
        return cell, d

    def jac(self, p):
        """Jacobian of :meth:`residual` in Kaufman's variable-projection form: the model's derivative with the
        intensities and background held, analytic (pseudo-Voigt derivatives by centre, FWHM and η, chained to
        the cell through Bragg's law, to U…Y through the TCH formulas), projected off the span of the linear
        columns. Finite differences of the projected residual cost a full linear solve per parameter (15
        solves per iteration for a two-phase pattern; this is one profile evaluation). The weak dependence
        of Γ and η on the line position is left out (it changes the step, not the optimum)."""
        c = getattr(self, "_cache", None)
        if c is None or not np.array_equal(c[0], p):
            self.solve(p)
            c = self._cache
        _, coef, Phi, off, lu, dg = c
        if lu is None:  # singular normal matrix: forward differences of the residual itself
            r0 = self.residual(p)
            J = np.empty((len(r0), len(p)))
            for j in range(len(p)):
                h = 1e-6 * max(abs(p[j]), 1e-3) * (1 if p[j] + 1e-6 * max(abs(p[j]), 1e-3) <= self.hi[j] else -1)
                q = p.copy()
                q[j] += h
                J[:, j] = (self.residual(q) - r0) / h
            return J
        K = off[-1]
        D = self.held_derivative(p, coef, off)
        WD = D * self.w[:, None]
        AtWD = np.vstack([np.asarray(Phi.T @ WD), self.B.T @ WD])
        from scipy.linalg import lu_solve

        Xs = lu_solve(lu, AtWD / dg[:, None], check_finite=False) / dg[:, None]
        proj = D - (Phi @ Xs[:K] + self.B @ Xs[K:])
        return -np.sqrt(self.w)[:, None] * proj

    def held_derivative(self, p, coef, off):
        """∂model/∂p (n_points × n_parameters) with the intensities ``coef`` and the background held."""
        n = len(self.x)
        x = self.x
        D = np.zeros((n, len(p)))
        U, V, W = self.get(p, "U"), self.get(p, "V"), self.get(p, "W")
        for i, ph in enumerate(self.phases):
            cell, d = self._geometry(p, i)
            X, Y = self.get(p, f"{i}.X"), self.get(p, f"{i}.Y")
            s1 = self.l1 / (2 * d)
            ok = s1 < 1
            th1 = np.arcsin(np.clip(s1, 0, 1))
            cos1 = np.cos(th1)
            shift = self.get(p, "zero_deg") + self.get(p, "displacement_deg") * cos1
            c1 = np.degrees(2 * th1) + shift
            gam, eta = tch(c1, U, V, W, X, Y)
            hw = WINDOW_FWHM * gam
            dc1_dd = -(360 / np.pi) * np.tan(th1) / d  # deg per nm
            if self.ka2 is not None:
                l2, ratio = self.ka2
                s2 = l2 / (2 * d)
                ok2 = s2 < 1
                th2 = np.arcsin(np.clip(s2, 0, 1))
                c2 = np.where(ok2, np.degrees(2 * th2) + shift, np.inf)
                dc2_dd = -(360 / np.pi) * np.tan(th2) / d
                right = np.where(ok2, c2, c1) + hw
            else:
                ratio, ok2, c2, dc2_dd, right = 0.0, np.zeros(len(d), bool), np.full(len(d), np.inf), 0 * d, c1 + hw
            lo = np.searchsorted(x, c1 - hw)
            cnt = np.where(ok, np.searchsorted(x, right) - lo, 0)
            nn = int(cnt.sum())
            if nn == 0:
                continue
            grp = np.repeat(np.arange(len(d)), cnt)
            pt = np.arange(nn) - np.repeat(np.cumsum(cnt) - cnt, cnt) + np.repeat(lo, cnt)
            I = coef[off[i] + grp]
            gg, ee = gam[grp], eta[grp]
            if self.asym:  # the tail's fraction and length columns directly
                fr, ln = self.get(p, "asym_frac"), self.get(p, "asym_len")
                cot = 1 / np.tan(np.radians(c1[grp]))
                _, dc_1, dg_1, de_1, dfr, dln = _pv_tail_parts(x[pt] - c1[grp], gg, ee, ln * cot, fr)
                dP1, dP2 = I * dfr, I * dln * cot
            else:
                _, dc_1, dg_1, de_1 = _pv_parts(x[pt] - c1[grp], gg, ee)
            dC1 = I * dc_1
            dG = I * dg_1
            dE = I * de_1
            dC2 = np.zeros(nn)
            if self.ka2 is not None:
                m2 = ok2[grp]
                if self.asym:
                    cot2 = 1 / np.tan(np.radians(c2[grp[m2]]))
                    _, dc_2, dg_2, de_2, dfr, dln = _pv_tail_parts(x[pt[m2]] - c2[grp[m2]], gg[m2], ee[m2], ln * cot2, fr)
                    dP1[m2] += ratio * I[m2] * dfr
                    dP2[m2] += ratio * I[m2] * dln * cot2
                else:
                    _, dc_2, dg_2, de_2 = _pv_parts(x[pt[m2]] - c2[grp[m2]], gg[m2], ee[m2])
                dC2[m2] = ratio * I[m2] * dc_2
                dG[m2] += ratio * I[m2] * dg_2
                dE[m2] += ratio * I[m2] * de_2
            if self.asym:
                D[:, self.idx["asym_frac"]] += np.bincount(pt, weights=dP1, minlength=n)
                D[:, self.idx["asym_len"]] += np.bincount(pt, weights=dP2, minlength=n)

            def add(j, w_c1, w_c2, w_g, w_e):
                wt = dC1 * w_c1[grp] + dC2 * w_c2[grp] if w_c1 is not None else 0.0
                if w_g is not None:
                    wt = wt + dG * w_g[grp] + dE * w_e[grp]
                D[:, j] += np.bincount(pt, weights=np.broadcast_to(wt, (nn,)), minlength=n)
            one = np.ones(len(d))
            if "zero_deg" in self.idx:
                add(self.idx["zero_deg"], one, one, None, None)
            if "displacement_deg" in self.idx:
                add(self.idx["displacement_deg"], cos1, cos1, None, None)
            for k in ph.free:
                h = 1e-7 * cell[k]
                cq = dict(cell)
                cq[k] = cell[k] + h
                dd = (d_spacing_cell(ph.hkl, ph.system, cq) / 10 - d) / h
                add(self.idx[f"{i}.{k}"], dc1_dd * dd, dc2_dd * dd, None, None)
            base = (U, V, W, X, Y)
            for pos, nm in enumerate(("U", "V", "W", f"{i}.X", f"{i}.Y")):
                if nm not in self.idx:
                    continue
                h = 1e-6 * max(abs(base[pos]), 1e-4)
                q = list(base)
                q[pos] += h
                g2, e2 = tch(c1, *q)
                add(self.idx[nm], None, None, (g2 - gam) / h, (e2 - eta) / h)
        return D

    def chi2_without(self, p, i):
        """χ² with phase ``i``'s intensities forced to zero (the others' and the background re-solved)."""
        keep = [j for j in range(len(self.phases)) if j != i]
        if not keep:
            sw = np.sqrt(self.w)
            coef, *_ = np.linalg.lstsq(self.B * sw[:, None], self.y * sw, rcond=None)
            r = (self.y - self.B @ coef) * sw
            return float(r @ r)
        sub = _Model.__new__(_Model)
        sub.__dict__.update(self.__dict__)
        sub.phases = [self.phases[j] for j in keep]
        # parameters are addressed by phase index: remap "j.k" names
        sub.idx = {}
        for nm, ix in self.idx.items():
            if "." in nm:
                j, k = nm.split(".", 1)
                if int(j) in keep:
                    sub.idx[f"{keep.index(int(j))}.{k}"] = ix
            else:
                sub.idx[nm] = ix
        r = sub.residual(p)
        return float(r @ r)

    def residual(self, p):
        _, calc, _, _ = self.solve(p)
        return (self.y - calc) * np.sqrt(self.w)


def _start_width(peaks_fwhm, two_theta):
    """A starting W (deg²) and X (deg) from the peak search's median FWHM."""
    fw = np.asarray(peaks_fwhm, float)
    fw = fw[np.isfinite(fw) & (fw > 0)]
    f = float(np.median(fw)) if fw.size else 0.1
    return (0.6 * f) ** 2, 0.5 * f


#: patterns up to this many points are fitted as measured; finer ones are binned (the fit's cost is
#: linear in the points, and a 430k-point detector pattern holds ~1,000 points per FWHM)
MAX_FIT_POINTS = 20_000


def bin_for_fit(x, y, sigma=None, background=None, fwhm_min=None):
    """``(x, y, sigma, background, k)``: the pattern averaged over ``k`` adjacent points when it has more
    than :data:`MAX_FIT_POINTS` points and more than ``2 * POINTS_PER_FWHM`` points per narrowest FWHM,
    else unchanged (``k = 1``). Standard errors of the bin means are propagated (Poisson when ``sigma``
    is None), so χ², Rwp and the esd's keep their meaning."""
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    n = len(x)
    if n <= MAX_FIT_POINTS or not fwhm_min or not np.isfinite(fwhm_min) or fwhm_min <= 0:
        return x, y, sigma, background, 1
    step = abs(x[-1] - x[0]) / (n - 1)
    k = int(fwhm_min / step / POINTS_PER_FWHM)
    if k < 2:
        return x, y, sigma, background, 1
    sig = np.sqrt(np.clip(y, 1.0, None)) if sigma is None else np.asarray(sigma, float)
    s = np.sqrt(bin_mean(sig ** 2, k) / k)    # standard error of a mean of k points
    return bin_mean(x, k), bin_mean(y, k), s, None if background is None else bin_mean(background, k), k


def pawley_fit(x, y, phases, wavelength_nm, *, kalpha2=None, sigma=None, background=None, n_chebyshev=6,
               caglioti=None, refine_zero=True, refine_displacement=False, max_strain=0.05, start=None,
               fwhm_start=None, max_nfev=None, asymmetry=False, source=None) -> WholePatternFit:
    """Whole-pattern fit (free intensities, Pawley-type) of a powder pattern with one or several phases.

    Parameters
    ----------
    x, y : (n,) arrays
        2θ (deg, increasing) and counts.
    phases : list of (Reference, cell)
        Each phase's reference and starting cell (Å, its free parameters, e.g. from the position screen).
    wavelength_nm : float
        Kα1 wavelength (nm).
    kalpha2 : (λ2 nm, ratio), optional
        The Kα2 line (same FWHM, position from Bragg's law with λ2).
    sigma : (n,) array, optional
        Standard errors of ``y`` (default: Poisson, √max(y, 1)).
    background : (n,) array, optional
        A fixed background shape (e.g. SNIP) whose scale is fitted along with the Chebyshev polynomial.
    n_chebyshev : int
        Number of Chebyshev background coefficients (default 6).
    caglioti : (U, V, W), optional
        Instrumental Gaussian FWHM² (deg²) from a standard; fixed when given, refined otherwise.
    refine_zero, refine_displacement : bool
        Refine the 2θ zero error and the specimen displacement (Δ2θ = D cos θ).
    max_strain : float
        Bounds of each free cell parameter around the reference cell (fraction, default ±5 %).
    start : WholePatternFit, optional
        A previous fit whose parameters (of the phases in common) start this one.
    fwhm_start : array, optional
        Observed FWHMs (deg) of the peak search, for the starting widths.
    asymmetry : bool
        Refine a peak asymmetry (axial divergence) shared by all reflections: a fraction ``asym_frac`` of every
        line in an exponential tail of length ``asym_len`` × cot 2θ (deg) that starts at the Bragg angle
        (:func:`_pv_tail_parts`; ``params["asym_frac"]``, ``params["asym_len"]``). Off by default: two more
        parameters and ~9× the profile evaluations, needed when low-angle lines are visibly asymmetric (their
        centroids move, and a symmetric profile then biases the cell).

    Returns
    -------
    WholePatternFit
        ``phases[i]``: ``name``, ``cell`` (Å) and ``cell_nm`` with ``cell_nm_stderr``, ``volume_nm3`` (+ stderr),
        ``hkl`` (groups), ``two_theta_deg`` (Kα1, with the instrument shift), ``intensity`` and
        ``intensity_stderr`` (counts·deg, Kα1 line), ``fwhm_deg``, ``ref_intensity``, ``X``, ``Y``,
        ``cov_cell`` (covariance of the free cell parameters, Å²).
    """
    import time

    from scipy.optimize import least_squares

    t0 = time.perf_counter()
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    if x[0] > x[-1]:
        x, y = x[::-1], y[::-1]
        sigma = None if sigma is None else np.asarray(sigma, float)[::-1]
        background = None if background is None else np.asarray(background, float)[::-1]
    sig = np.sqrt(np.clip(y, 1.0, None)) if sigma is None else np.where(np.asarray(sigma) > 0, sigma,
                                                                         np.sqrt(np.clip(y, 1.0, None)))
    w = 1.0 / sig ** 2
    specs = []
    for ref, cell in phases:
        c = {k: float(np.clip(cell.get(k, ref.cell[k]), *_cell_bounds(k, ref.cell[k], max_strain)))
             for k in CELL_PARAMS[ref.system]}
        gh, inv, hall, gi = _groups(ref, (x[0], x[-1]), wavelength_nm, c, max_strain)
        specs.append(PhaseSpec(ref, c, gh, inv, hall, gi))
    if not specs or any(len(s.hkl) == 0 for s in specs):
        raise ProcessingError("whole-pattern fit: a phase has no reflection in the scanned range", source)
    model = _Model(x, y, w, specs, wavelength_nm, kalpha2, background, n_chebyshev, caglioti, refine_zero,
                   refine_displacement, max_strain, asymmetry)
    p = model.p0.copy()
    W0, X0 = _start_width(fwhm_start if fwhm_start is not None else [0.1], x)
    if "W" in model.idx:
        p[model.idx["W"]] = np.clip(W0, 1e-6, 1.0)
    for i in range(len(specs)):
        p[model.idx[f"{i}.X"]] = X0 if caglioti is None else max(X0, 1e-3)
    if start is not None:  # parameters of a previous fit (shared ones, and phases by name)
        for n in ("zero_deg", "displacement_deg", "U", "V", "W", "asym_frac", "asym_len"):
            if n in model.idx and n in start.state.get("named", {}):
                p[model.idx[n]] = start.state["named"][n]
        for i, s in enumerate(specs):
            for j, q in enumerate(start.state.get("phases", [])):
                if q["name"] == s.name:
                    for k, v in q["named"].items():
                        if f"{i}.{k}" in model.idx:
                            p[model.idx[f"{i}.{k}"]] = v
    p = np.clip(p, model.lo, model.hi)
    with _one_blas_thread():
        if start is None and "zero_deg" in model.idx:
            # lock the positions in first: a coarse scan of the zero error over ±2 FWHM (linear parameters solved
            # at each step). A start off by about one FWHM otherwise slid into the zero–cell valley (LiCoO2: zero
            # 0.32° with the cell 7e-4 off) instead of the optimum
            iz = model.idx["zero_deg"]
            fw0 = float(np.sqrt(W0) / 0.6)
            best = (np.inf, p[iz])
            for z in p[iz] + np.linspace(-2, 2, 9) * fw0:
                q = p.copy()
                q[iz] = np.clip(z, model.lo[iz], model.hi[iz])
                r = model.residual(q)
                best = min(best, (float(r @ r), q[iz]))
            p[iz] = best[1]
        # fixed typical scales, not x_scale="jac": an absent candidate's cell has a near-zero gradient, and
        # Jacobian scaling turned that into huge steps (its cell wandered to the bounds, 3x the evaluations)
        scale = np.array([1e-4 * abs(v) if nm.split(".")[-1] in ("a", "b", "c") else 1e-3 for nm, v in
                          zip(model.names, p)])
        res = least_squares(model.residual, p, jac=model.jac, bounds=(model.lo, model.hi), x_scale=scale,
                            method="trf",
                            max_nfev=max_nfev or 40 * len(p), xtol=1e-8, ftol=1e-8)
        converged = res.status > 0
        model.nfev = res.nfev
        return _finish(model, res.x, converged, res.nfev, time.perf_counter() - t0, source)


def _one_blas_thread():
    """One BLAS thread for the fit's many small SVDs and solves: with OpenBLAS threads on a shared 2-core
    machine a 2,500 × 10 SVD took 70 ms instead of 4 ms (threadpoolctl, when installed)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        from contextlib import nullcontext

        return nullcontext()
    return threadpool_limits(1, user_api="blas")


def _finish(model, p, converged, nfev, seconds, source):
    """Statistics and the Pawley-style covariance at the optimum."""
    coef, calc, Phi, off = model.solve(p)
    K = off[-1]
    bg = model.B @ coef[K:]
    sw = np.sqrt(model.w)
    r = (model.y - calc) * sw
    n = len(model.y)
    # full Jacobian of the weighted model: non-linear parameters by finite differences (intensities and
    # background held), intensity groups and background coefficients analytically (their columns)
    jn = model.held_derivative(p, coef, off)
    J = np.hstack([jn, Phi.toarray(), model.B]) * sw[:, None]
    live = np.any(J != 0, axis=0)
    npar_eff = int(live.sum())
    dof = max(n - npar_eff, 1)
    chi2 = float(r @ r)
    gof2 = chi2 / dof
    cov = np.full((J.shape[1], J.shape[1]), np.nan)
    Jl = J[:, live]
    cn = np.linalg.norm(Jl, axis=0)
    info = (Jl / cn).T @ (Jl / cn)
    cov[np.ix_(live, live)] = np.linalg.pinv(info, rcond=1e-12, hermitian=True) / np.outer(cn, cn) * gof2
    err = np.sqrt(np.clip(np.diag(cov), 0, None))
    wy2 = float(np.sum(model.w * model.y ** 2))
    rwp = float(np.sqrt(chi2 / wy2)) if wy2 > 0 else np.nan
    rexp = float(np.sqrt(dof / wy2)) if wy2 > 0 else np.nan
    named = {nm: float(p[model.idx[nm]]) for nm in model.idx if "." not in nm}
    params = {}
    for nm in ("zero_deg", "displacement_deg", "U", "V", "W") + (("asym_frac", "asym_len") if model.asym else ()):
        params[nm] = float(model.get(p, nm))
        params[nm + "_stderr"] = float(err[model.idx[nm]]) if nm in model.idx else None
    at_bound = []
    for j, nm in enumerate(model.names):
        span = model.hi[j] - model.lo[j]
        near = p[j] - model.lo[j] < 1e-6 * span or model.hi[j] - p[j] < 1e-6 * span
        if nm.split(".")[-1] in ("a", "b", "c") + ANGLES and near:
            at_bound.append(nm)
    warns, phases_out, state_ph = [], [], []
    npn = len(p)
    for i, ph in enumerate(model.phases):
        cell = {k: float(model.get(p, f"{i}.{k}")) for k in ph.free}
        ci = [model.idx[f"{i}.{k}"] for k in ph.free]
        ccov = cov[np.ix_(ci, ci)]
        cell_nm = {k: v / 10 for k, v in _full_lengths(ph.system, cell).items()}
        errs = dict(zip(ph.free, np.sqrt(np.clip(np.diag(ccov), 0, None)) / 10))
        cell_err = {k: float(errs.get(k, errs["a"])) for k in "abc"}
        if ph.system in OBLIQUE:  # angles (deg) and their esd's; the volume from all six
            cell_deg = {k: cell[k] for k in ANGLES if k in ph.free}
            cell_deg_err = {k: float(np.sqrt(max(ccov[j, j], 0))) for j, k in enumerate(ph.free) if k in ANGLES}
            vol, vol_err = _volume_oblique(ph.system, ph.free, cell, ccov)
        else:
            cell_deg, cell_deg_err = {}, {}
            vol, vol_err = cell_volume(ph.system, [cell[k] / 10 for k in ph.free], ccov / 100)
        c, g, e, k, wt = model.lines(p, i)
        k1 = wt == 1  # Kα1 lines
        tt = np.full(len(ph.hkl), np.nan)
        fw = np.full(len(ph.hkl), np.nan)
        tt[k[k1]] = c[k1]
        fw[k[k1]] = g[k1]
        sl = slice(npn + off[i], npn + off[i + 1])
        inten = coef[off[i]:off[i + 1]].copy()
        inside = np.isfinite(tt) & (tt >= model.x[0]) & (tt <= model.x[-1])
        if any(nm.startswith(f"{i}.") for nm in at_bound):
            warns.append(f"{ph.name}: a cell parameter ended at its bound (±{model.max_strain:.0%} of the reference "
                         f"cell): no esd; the cell is outside the searched range or the phase is not there")
            for k_ in at_bound:
                if k_.startswith(f"{i}."):
                    cell_err[k_.split(".")[1]] = np.nan
        phases_out.append({"name": ph.name, "system": ph.system, "cell": cell, "cell_nm": cell_nm,
                           "cell_nm_stderr": cell_err, "cell_deg": cell_deg, "cell_deg_stderr": cell_deg_err,
                           "volume_nm3": vol, "volume_nm3_stderr": vol_err,
                           "cov_cell": ccov, "free": ph.free, "hkl": ph.hkl, "two_theta_deg": tt, "fwhm_deg": fw,
                           "intensity": inten, "intensity_stderr": err[sl], "inside": inside,
                           "ref_intensity": ph.ref_intensity, "calc": Phi[:, off[i]:off[i + 1]] @ inten,
                           "X": float(model.get(p, f"{i}.X")), "Y": float(model.get(p, f"{i}.Y")),
                           "X_stderr": float(err[model.idx[f"{i}.X"]]), "Y_stderr": float(err[model.idx[f"{i}.Y"]])})
        state_ph.append({"name": ph.name, "named": {nm.split(".", 1)[1]: float(p[model.idx[nm]]) for nm in model.idx
                                                    if nm.startswith(f"{i}.")}})
    if not converged:
        warns.append(f"whole-pattern fit stopped after {nfev} evaluations before it converged")
    return WholePatternFit(x=model.x, y=model.y, calc=calc, background=bg, phases=phases_out, params=params,
                           rwp=rwp, rexp=rexp, chi2=chi2, gof2=gof2, n_params=npar_eff, n_points=n,
                           seconds=seconds, converged=converged, warnings=warns,
                           state={"named": named, "phases": state_ph, "model": model, "p": p})


def _full_lengths(system, cell):
    """a, b, c (Å) of a cell given by its free parameters."""
    from .lattice import full_cell

    f = full_cell(system, cell)
    return {k: float(f[k]) for k in "abc"}


def _volume_oblique(system, free, cell, cov):
    """Volume (nm³) of a monoclinic / triclinic cell and its esd from the free parameters' covariance (Å, deg)."""
    v = np.array([cell[k] for k in free], float)

    def vol(q):
        return float(cell_volume_full(system, dict(zip(free, q)))) / 1000
    g = np.array([(vol(v + dv) - vol(v - dv)) / (2 * h) for h, dv in ((1e-6, np.eye(len(v))[j] * 1e-6)
                                                                       for j in range(len(v)))])
    var = float(g @ cov @ g) if np.all(np.isfinite(cov)) else np.nan
    return vol(v), (float(np.sqrt(var)) if np.isfinite(var) and var >= 0 else np.nan)


def cell_volume(system, p, cov):
    """Cell volume (nm³) and its esd from the free parameters (nm) and their covariance."""
    from .lattice import cell_volume as vol

    return vol(system, np.asarray(p, float), cov)


def d_from_cell(fit_phase, hkl):
    """d-spacing (nm) of reflection ``hkl`` from a fitted phase's cell, with its esd from the cell covariance."""
    free = fit_phase["free"]
    cell = fit_phase["cell"]
    system = fit_phase["system"]

    def d_of(vals):
        return float(d_spacing_cell(np.asarray([hkl], float), system, dict(zip(free, vals)))[0]) / 10
    v = np.array([cell[k] for k in free], float)
    d = d_of(v)
    g = np.array([(d_of(v + dv) - d_of(v - dv)) / 2e-6 for dv in np.eye(len(v)) * 1e-6])
    cov = fit_phase["cov_cell"]
    var = float(g @ cov @ g) if np.all(np.isfinite(cov)) else np.nan
    return d, (float(np.sqrt(var)) if np.isfinite(var) and var >= 0 else None)


#: F-test p-value below which adding a phase lowers χ² significantly (present), and for "probable"
P_PRESENT = 1e-3
P_PROBABLE = 1e-2
#: a reflection group is significant at this many esd's
K_SIG = 3.0
#: strong reference reflections (%, for the fraction of a phase's lines that the pattern shows)
STRONG_REL = 5.0


def _own_reflections(fit, i):
    """Per group of phase ``i``: inside the data, significant (I > K_SIG σ_I), and resolved (no significant
    group of another phase within one FWHM)."""
    ph = fit.phases[i]
    tt, fw = ph["two_theta_deg"], ph["fwhm_deg"]
    inten, err = ph["intensity"], ph["intensity_stderr"]
    sig = ph["inside"] & np.isfinite(err) & (inten > K_SIG * np.where(np.isfinite(err), err, np.inf))
    resolved = ph["inside"].copy()
    for j, q in enumerate(fit.phases):
        if j == i:
            continue
        qs = q["inside"] & (q["intensity"] > K_SIG * np.nan_to_num(q["intensity_stderr"], nan=np.inf))
        other = np.sort(q["two_theta_deg"][qs])
        if not other.size:
            continue
        pos = np.clip(np.searchsorted(other, tt), 1, max(other.size - 1, 1))
        dist = np.minimum(np.abs(other[pos - 1] - tt), np.abs(other[np.minimum(pos, other.size - 1)] - tt))
        resolved &= ~(dist < np.nan_to_num(fw, nan=1.0))
    return sig, resolved


def confirm_phases(x, y, candidates, wavelength_nm, *, kalpha2=None, sigma=None, background=None, n_chebyshev=6,
                   caglioti=None, fwhm_start=None, max_strain=0.05, refine_displacement=False, asymmetry=False,
                   source=None):
    """Whole-pattern confirmation of screened phases (free intensities: texture or unknown structure factors
    cannot hide a phase).

    All candidates are fitted together (:func:`pawley_fit`); then each is left out in turn (the others
    refitted from the joint optimum). A candidate is

    * **present** when leaving it out raises χ² significantly (F-test, p < ``P_PRESENT``, on the number of its
      intensity groups in range plus its cell and width parameters) *and* it explains its reflections: enough
      of its groups significant (I > 3σ) where no other phase has a significant line within one FWHM (its
      free cell parameters + 1, at least 2, and 3 when it has 3 strong resolved ones), and at least half of its
      strong reference reflections (≥ 5 %) that are resolved show intensity;
    * **probable** when the F-test passes at p < ``P_PROBABLE`` with at least 2 such reflections or a quarter
      of its strong lines;
    * **absent** otherwise.

    Parameters
    ----------
    candidates : list of (Reference, cell Å)
        Phases screened by positions, with their screened cells.

    Returns
    -------
    (WholePatternFit, list of dict)
        The joint fit of every candidate and one decision per candidate: ``name, status, p_value,
        delta_chi2, dof, n_own, n_strong_resolved, frac_own, rho, spread, texture, reasons``.
    """
    from scipy.stats import f as fdist, spearmanr

    kw = dict(kalpha2=kalpha2, sigma=sigma, background=background, n_chebyshev=n_chebyshev, caglioti=caglioti,
              fwhm_start=fwhm_start, max_strain=max_strain, refine_displacement=refine_displacement,
              asymmetry=asymmetry, source=source)
    full = pawley_fit(x, y, candidates, wavelength_nm, **kw)
    n = full.n_points
    dof_full = max(n - full.n_params, 1)
    out = []
    for i, (ref, _) in enumerate(candidates):
        ph = full.phases[i]
        # χ² without the phase: the linear problem (intensities, background) re-solved with the other phases'
        # profiles held at the joint optimum. Refitting their cells and widths as well could only lower it by
        # what those parameters absorb of this phase's lines (little: at other positions); it cost one full fit
        # per candidate (3-5 s for three phases) for Δχ² values that differed in the third digit on the tests
        chi2_red = full.state["model"].chi2_without(full.state["p"], i)
        dk = int(ph["inside"].sum()) + len(ph["free"]) + 2
        dchi = max(chi2_red - full.chi2, 0.0)
        F = (dchi / dk) / (full.chi2 / dof_full)
        p = float(fdist.sf(F, dk, dof_full))
        sig, resolved = _own_reflections(full, i)
        own = sig & resolved
        ri = ph["ref_intensity"]
        top = ri[ph["inside"]].max() if ph["inside"].any() else 1.0
        strong = resolved & (ri >= STRONG_REL * top / 100.0)
        frac = float((own & strong).sum() / strong.sum()) if strong.sum() else 0.0
        n_own = int(own.sum())
        rho = spread = None
        sel = own & (ri > 0)
        if sel.sum() >= 4:
            rho = float(spearmanr(ri[sel], ph["intensity"][sel]).statistic)
            q = ph["intensity"][sel] / ri[sel]
            lo, hi = np.percentile(q, [10, 90])
            spread = float(hi / lo) if lo > 0 else None
        texture = bool((rho is not None and rho < 0.3) or (spread is not None and spread > 4.0))
        reasons = [f"whole-pattern fit: leaving it out raises χ² by {dchi:.4g} for {dk} parameters "
                   f"(F-test p = {p:.2g})",
                   f"{n_own} of its reflections significant (> {K_SIG:g}σ) and resolved from other phases' lines; "
                   f"{int((own & strong).sum())} of {int(strong.sum())} strong resolved reference reflections seen"]
        # enough own lines to fix its free cell parameters with one to spare (a cubic phase with only two lines
        # in the range, e.g. Li2O at 10-60°, can be confirmed; an orthorhombic one needs four), and at least three
        # when it has that many strong resolved ones
        need = max(len(ph["free"]) + 1, 2, min(3, int(strong.sum())))
        if p < P_PRESENT and n_own >= need and frac >= 0.5:
            status = "present"
        elif p < P_PROBABLE and (n_own >= 2 or frac >= 0.25):
            status = "probable"
        else:
            status = "absent"
        if status != "absent" and texture:
            reasons.append("relative intensities differ from the reference (texture / preferred orientation or "
                           "other structure factors)")
        out.append({"name": ref.name, "status": status, "p_value": p, "delta_chi2": dchi, "dof": dk,
                    "n_own": n_own, "n_strong_resolved": int(strong.sum()), "frac_own": frac, "rho": rho,
                    "spread": spread, "texture": texture, "reasons": reasons})
    return full, out


# ================================================================================ series of patterns
class _SeriesModel:
    """The whole-pattern model of a stack of patterns on one 2θ grid, evaluated for many patterns at once
    (the batch engine's evaluator protocol: ``ev(rows, P) -> (χ², JᵀJ, Jᵀr)``, and what its LM reads of a
    model: ``lo, hi, A_free, A_fixed, c``).

    Per pattern the non-linear parameters are each phase's free cell parameters and its Lorentzian X, Y; the
    instrument (zero, displacement, U, V, W) is shared by the series and held at the first pattern's
    refinement. The intensities and the background are projected out (variable projection) pattern by
    pattern. Two evaluations of the same model: :meth:`evaluate_compiled` (one compiled pass per pattern,
    :func:`_series_kernel_py`; used when numba is there) and :meth:`evaluate` (numpy over all patterns at once:
    the profile matrices of all patterns as one block-diagonal sparse matrix, the normal equations as one batched
    ``np.linalg.solve``; the fallback, and the reference the tests compare the kernel with).
    """

    def __init__(self, x, Y, W, phases, wavelength_nm, ka2, B, inst, max_strain):
        self.x, self.Y, self.W = x, Y, W
        self.phases, self.l1, self.ka2, self.B = phases, wavelength_nm, ka2, B
        self.inst = inst  # zero_deg, displacement_deg, U, V, W
        names, lo, hi = [], [], []
        for i, ph in enumerate(phases):
            for k in ph.free:
                names.append(f"{i}.{k}")
                b0, b1 = _cell_bounds(k, ph.ref.cell[k], max_strain)
                lo.append(b0)
                hi.append(b1)
            names += [f"{i}.X", f"{i}.Y"]
            lo += [0.0, 0.0]
            hi += [3.0, 3.0]
        self.names = names
        self.idx = {n: j for j, n in enumerate(names)}
        self.lo, self.hi = np.array(lo), np.array(hi)
        q = len(names)
        self.A_free, self.A_fixed, self.c = np.eye(q), np.zeros((q, 0)), np.zeros(q)
        self.K = [len(ph.hkl) for ph in phases]
        self.off = np.concatenate([[0], np.cumsum(self.K)]).astype(int)
        self.nfev = 0
        self.compiled = True

    def _d(self, i, P):
        ph = self.phases[i]
        cell = {k: P[:, self.idx[f"{i}.{k}"], None] for k in ph.free}
        return d_spacing_cell(ph.hkl, ph.system, cell) / 10  # (n, K_i) nm

    def _geometry(self, P):
        """Per (pattern, column): d, Kα1/Kα2 centres, Γ, η, validity, and the derivatives of the centres and of
        Γ, η that the Jacobian needs (with respect to d; to X and Y by differences)."""
        z, disp, U, V, Wc = (self.inst[k] for k in ("zero_deg", "displacement_deg", "U", "V", "W"))
        out = {k: [] for k in ("d", "c1", "c2", "gam", "eta", "ok", "ok2", "dc1", "dc2", "cos1")}
        for i in range(len(self.phases)):
            d = self._d(i, P)
            X = P[:, self.idx[f"{i}.X"], None]
            Yl = P[:, self.idx[f"{i}.Y"], None]
            s1 = self.l1 / (2 * d)
            ok = s1 < 1
            th1 = np.arcsin(np.clip(s1, 0, 1))
            cos1 = np.cos(th1)
            shift = z + disp * cos1
            c1 = np.degrees(2 * th1) + shift
            gam, eta = tch(c1, U, V, Wc, X, Yl)
            if self.ka2 is not None:
                s2 = self.ka2[0] / (2 * d)
                ok2 = s2 < 1
                th2 = np.arcsin(np.clip(s2, 0, 1))
                c2 = np.where(ok2, np.degrees(2 * th2) + shift, np.inf)
                dc2 = -(360 / np.pi) * np.tan(th2) / d
            else:
                ok2, c2, dc2 = np.zeros_like(ok), np.full_like(c1, np.inf), np.zeros_like(c1)
            for k, v in (("d", d), ("c1", c1), ("c2", c2), ("gam", gam), ("eta", eta), ("ok", ok), ("ok2", ok2),
                         ("dc1", -(360 / np.pi) * np.tan(th1) / d), ("dc2", dc2), ("cos1", cos1)):
                out[k].append(v)
        return {k: np.concatenate(v, axis=1) for k, v in out.items()}

    def _entries(self, g):
        """Sparse layout of the block-diagonal profile matrix: one contiguous window per (pattern, column)."""
        x = self.x
        n, kt = g["c1"].shape
        hw = WINDOW_FWHM * g["gam"]
        right = np.where(g["ok2"], g["c2"], g["c1"]) + hw
        lo = np.searchsorted(x, (g["c1"] - hw).ravel())
        cnt = np.where(g["ok"].ravel(), np.searchsorted(x, right.ravel()) - lo, 0)
        nn = int(cnt.sum())
        col = np.repeat(np.arange(n * kt), cnt)
        pt = np.arange(nn) - np.repeat(np.cumsum(cnt) - cnt, cnt) + np.repeat(lo, cnt)
        return col, pt, cnt

    def evaluate(self, rows, P, want=True):
        """χ² (n,), JᵀJ (n, q, q) and Jᵀr (n, q) of patterns ``rows`` at parameters ``P`` (n, q), numpy."""
        from scipy.sparse import csc_matrix

        self.nfev += 1
        x, m = self.x, len(self.x)
        Yr, Wr = self.Y[rows], self.W[rows]
        n = len(rows)
        g = self._geometry(P)
        kt = g["c1"].shape[1]
        col, pt, cnt = self._entries(g)
        c1, c2, gam, eta = (g[k].ravel()[col] for k in ("c1", "c2", "gam", "eta"))
        m2 = g["ok2"].ravel()[col]
        ratio = self.ka2[1] if self.ka2 is not None else 0.0
        v1, dc_1, dg_1, de_1 = _pv_parts(x[pt] - c1, gam, eta)
        val = v1.copy()
        dC2 = np.zeros(len(pt))
        dG, dE = dg_1.copy(), de_1.copy()
        if m2.any():
            v2, dc_2, dg_2, de_2 = _pv_parts(x[pt[m2]] - c2[m2], gam[m2], eta[m2])
            val[m2] += ratio * v2
            dC2[m2] = ratio * dc_2
            dG[m2] += ratio * dg_2
            dE[m2] += ratio * de_2
        prow = (col // kt) * m + pt  # row of the stacked (pattern, point) axis
        indptr = np.concatenate([[0], np.cumsum(cnt)])
        Phi = csc_matrix((val, prow, indptr), shape=(n * m, n * kt))
        Phi.has_sorted_indices = True
        wf = Wr.ravel()
        Pw = Phi.copy()
        Pw.data = Pw.data * wf[prow]
        nb = self.B.shape[1]
        GP = (Phi.T @ Pw).tocoo()
        G = np.zeros((n, kt + nb, kt + nb))
        G[GP.row // kt, GP.row % kt, GP.col % kt] = GP.data
        WB = (Wr[:, :, None] * self.B[None]).reshape(n * m, nb)
        G[:, :kt, kt:] = np.asarray(Phi.T @ WB).reshape(n, kt, nb)
        G[:, kt:, :kt] = G[:, :kt, kt:].transpose(0, 2, 1)
        G[:, kt:, kt:] = np.einsum("mb,nm,mc->nbc", self.B, Wr, self.B)
        wy = Wr * Yr
        rhs = np.concatenate([np.asarray(Phi.T @ wy.ravel()).reshape(n, kt), wy @ self.B], axis=1)
        dg = np.sqrt(np.einsum("nii->ni", G))
        dead = dg <= 1e-300
        dg[dead] = 1.0
        Gs = G / dg[:, :, None] / dg[:, None, :]
        Gs[:, np.arange(kt + nb), np.arange(kt + nb)] += 1e-9 + dead
        coef = np.linalg.solve(Gs, (rhs / dg)[..., None])[..., 0] / dg
        coef[dead] = 0.0
        calc = np.asarray(Phi @ coef[:, :kt].ravel()).reshape(n, m) + coef[:, kt:] @ self.B.T
        res = Yr - calc
        cost = np.einsum("nm,nm,nm->n", Wr, res, res)
        self._last = dict(coef=coef, calc=calc, g=g, Gs=Gs, dg=dg, kt=kt, Phi=Phi)
        if not want:
            return cost, None, None
        # held derivative of the model (intensities and background fixed), chained to the parameters
        I = coef[:, :kt].ravel()[col]
        q = P.shape[1]
        wc1, wc2, wg, we = (w_.reshape(n * kt, q)[col] for w_ in self.weights(P, g))
        D = np.zeros((n * m, q))
        for j in range(q):
            wt = I * (dc_1 * wc1[:, j] + dC2 * wc2[:, j] + dG * wg[:, j] + dE * we[:, j])
            D[:, j] = np.bincount(prow, weights=wt, minlength=n * m)
        WD = D * wf[:, None]
        AtWD = np.concatenate([np.asarray(Phi.T @ WD).reshape(n, kt, q),
                               np.einsum("mb,nmq->nbq", self.B, WD.reshape(n, m, q))], axis=1)
        Xs = np.linalg.solve(Gs, AtWD / dg[:, :, None]) / dg[:, :, None]
        D3 = D.reshape(n, m, q)
        JtJ = np.einsum("nmq,nmr->nqr", D3, WD.reshape(n, m, q)) - np.einsum("nkq,nkr->nqr", AtWD, Xs)
        Jtr = np.einsum("nmq,nm->nq", D3, Wr * res)
        return cost, JtJ, Jtr

    def weights(self, P, g):
        """Per (pattern, group, parameter): derivative of the Kα1 centre, Kα2 centre, Γ and η (the chain factors
        of the held derivative) — cell parameters move the centres, X and Y the widths."""
        n, kt = g["c1"].shape
        q = P.shape[1]
        wc1, wc2, wg, we = (np.zeros((n, kt, q)) for _ in range(4))
        for i, ph in enumerate(self.phases):
            sl = slice(self.off[i], self.off[i + 1])
            for k in ph.free:
                j = self.idx[f"{i}.{k}"]
                h = 1e-7 * P[:, j]
                Ph = P.copy()
                Ph[:, j] += h
                dd = (self._d(i, Ph) - g["d"][:, sl]) / h[:, None]
                wc1[:, sl, j] = g["dc1"][:, sl] * dd
                wc2[:, sl, j] = np.where(np.isfinite(g["dc2"][:, sl]), g["dc2"][:, sl], 0.0) * dd
            for nm in ("X", "Y"):
                j = self.idx[f"{i}.{nm}"]
                hv = 1e-6 * np.maximum(np.abs(P[:, j]), 1e-4)
                Xv = P[:, self.idx[f"{i}.X"], None] + (hv[:, None] if nm == "X" else 0)
                Yv = P[:, self.idx[f"{i}.Y"], None] + (hv[:, None] if nm == "Y" else 0)
                g2, e2 = tch(g["c1"][:, sl], self.inst["U"], self.inst["V"], self.inst["W"], Xv, Yv)
                wg[:, sl, j] = (g2 - g["gam"][:, sl]) / hv[:, None]
                we[:, sl, j] = (e2 - g["eta"][:, sl]) / hv[:, None]
        return wc1, wc2, wg, we

    def evaluate_compiled(self, rows, P, want=True):
        """:meth:`evaluate` through the compiled kernel (one pass per pattern, no temporaries)."""
        kern = _series_kernel()
        self.nfev += 1
        x = self.x
        n = len(rows)
        g = self._geometry(P)
        hw = WINDOW_FWHM * g["gam"]
        lo = np.searchsorted(x, g["c1"] - hw)
        hi = np.where(g["ok"], np.searchsorted(x, np.where(g["ok2"], g["c2"], g["c1"]) + hw), lo)
        wc1, wc2, wg, we = self.weights(P, g)
        kt, q, nb = g["c1"].shape[1], P.shape[1], self.B.shape[1]
        cost, JtJ, Jtr = np.zeros(n), np.zeros((n, q, q)), np.zeros((n, q))
        coef, calc = np.zeros((n, kt + nb)), np.zeros((n, len(x)))
        c2 = np.where(g["ok2"], g["c2"], 0.0)
        kern(x, np.ascontiguousarray(self.Y[rows]), np.ascontiguousarray(self.W[rows]), np.ascontiguousarray(self.B),
             g["c1"], c2, g["gam"], g["eta"], g["ok2"], lo.astype(np.int64), hi.astype(np.int64), wc1, wc2, wg, we,
             float(self.ka2[1]) if self.ka2 is not None else 0.0, bool(want), cost, JtJ, Jtr, coef, calc)
        self._last = dict(coef=coef, calc=calc, g=g, kt=kt)
        return (cost, JtJ, Jtr) if want else (cost, None, None)

    def __call__(self, rows, P, want=True):
        if self.compiled and _series_kernel() is not None:
            return self.evaluate_compiled(rows, P, want)
        return self.evaluate(rows, P, want)


@dataclass
class SeriesFit:
    """The result of :func:`pawley_series` (plain arrays, one row per pattern)."""

    phases: list            # per phase: name, system, free, cell (dict k -> (n,) Å), cell_stderr (Å), X, Y (n,)
    instrument: dict        # zero_deg, displacement_deg, U, V, W held for the series (from the first pattern)
    chi2_red: np.ndarray    # (n,)
    rwp: np.ndarray
    rexp: np.ndarray
    success: np.ndarray     # (n,) bool
    nfev: int
    seconds: float
    first: WholePatternFit  # the first pattern's full refinement
    model: object = None    # the series model (``model(rows, P)`` evaluates patterns at parameters P)
    theta: np.ndarray = None  # (n, q) parameters of every pattern, in ``model.names`` order
    warnings: list = field(default_factory=list)


def _blocks(n, first=4):
    """Consecutive blocks of the series, growing geometrically (1 | 2..first | … doubling): each block starts
    from the cells extrapolated from the patterns already fitted."""
    out, s, size = [], 1, first
    while s < n:
        out.append(np.arange(s, min(s + size, n)))
        s += size
        size *= 2
    return out


def pawley_series(x, Y, phases, wavelength_nm, *, kalpha2=None, sigma=None, n_chebyshev=6, caglioti=None,
                  refine_displacement=False, max_strain=0.05, fwhm_start=None, max_iter=60, tol=1e-5,
                  source=None) -> SeriesFit:
    """Whole-pattern (Pawley-type) fits of a series of patterns on one grid through the batch engine.

    The first pattern is refined completely (:func:`pawley_fit`: zero error, instrument profile, cells,
    widths, intensities, background). The instrument (zero, displacement, U, V, W) is then held for the
    series — it does not change with the sample's temperature — and every other pattern's cells and
    Lorentzian widths are refined with free intensities and background by the batch engine's
    Levenberg–Marquardt (:func:`specproc.fitting.batch.levenberg_marquardt`) over all patterns of a block at
    once (:class:`_SeriesModel`). Blocks follow the series (sizes 4, 8, 16, …); each pattern of a block starts
    from the cells extrapolated linearly from the last fitted patterns, so a cell that drifts by many FWHM
    over the series is followed (a start from the first pattern's cell for every pattern put the end of a 1 %
    expansion 0.5° away at 100° 2θ, outside any profile).

    Parameters
    ----------
    x : (m,) array
        2θ grid (deg, increasing).
    Y : (n, m) array
        Counts of the ``n`` patterns.
    phases : list of (Reference, cell)
        Phases and the first pattern's starting cells (Å).
    sigma : (n, m) array, optional
        Standard errors (default Poisson).
    max_iter, tol
        The engine's LM iterations per block and relative tolerance on χ² (1e-5: ~0.05 of a χ² of 5,000, far
        below the Δχ² = 1 of one esd; 1e-6 took 1.8× the evaluations for cells equal to 1e-7).
    Other parameters as :func:`pawley_fit`.

    Returns
    -------
    SeriesFit
        Cells (Å) and esd's per pattern (conditional on the instrument held; scaled by each pattern's reduced
        χ²), X, Y, reduced χ², Rwp, Rexp, success flags.
    """
    import time

    from ...fitting.batch import levenberg_marquardt

    t0 = time.perf_counter()
    x = np.asarray(x, float)
    Y = np.atleast_2d(np.asarray(Y, float))
    if x[0] > x[-1]:
        x, Y = x[::-1], Y[:, ::-1]
        sigma = None if sigma is None else np.asarray(sigma, float)[:, ::-1]
    n, m = Y.shape
    sig = np.sqrt(np.clip(Y, 1.0, None)) if sigma is None else np.where(np.asarray(sigma) > 0, sigma,
                                                                         np.sqrt(np.clip(Y, 1.0, None)))
    Wt = 1.0 / sig ** 2
    first = pawley_fit(x, Y[0], phases, wavelength_nm, kalpha2=kalpha2, sigma=sig[0], n_chebyshev=n_chebyshev,
                       caglioti=caglioti, refine_displacement=refine_displacement, max_strain=max_strain,
                       fwhm_start=fwhm_start, source=source)
    specs = first.state["model"].phases
    inst = {k: first.params[k] for k in ("zero_deg", "displacement_deg", "U", "V", "W")}
    t = (2 * x - x[0] - x[-1]) / (x[-1] - x[0])
    B = np.polynomial.chebyshev.chebvander(t, max(n_chebyshev - 1, 0))
    model = _SeriesModel(x, Y, Wt, specs, wavelength_nm, kalpha2, B, inst, max_strain)
    q = len(model.names)
    theta = np.full((n, q), np.nan)
    p0 = np.array([first.state["phases"][int(nm.split(".")[0])]["named"][nm.split(".", 1)[1]] for nm in model.names])
    theta[0] = p0
    H = np.full((n, q, q), np.nan)
    cost = np.full(n, np.nan)
    success = np.zeros(n, bool)
    success[0] = first.converged
    nfev = 0
    with _one_blas_thread():
        _, H0, _ = model(np.array([0]), p0[None])
        H[0] = H0[0]
        cost[0] = first.chi2
        for rows in _blocks(n):
            done = np.flatnonzero(np.isfinite(theta[:, 0]))[-8:]
            if len(done) >= 2:  # linear extrapolation of every parameter along the series
                A = np.vstack([done, np.ones(len(done))]).T
                coef, *_ = np.linalg.lstsq(A, theta[done], rcond=None)
                start = np.vstack([rows, np.ones(len(rows))]).T @ coef
            else:
                start = np.repeat(theta[done[-1:]], len(rows), axis=0)
            start = np.clip(start, model.lo, model.hi)
            r = levenberg_marquardt(model, model, rows, start, np.zeros((len(rows), 0)), max_iter, tol)
            theta[rows], cost[rows], H[rows], success[rows] = r["theta"], r["cost"], r["H"], r["success"]
            nfev += int(r["nfev"].max())
    # statistics from the engine's last accepted point of every pattern (χ² and JᵀJ there: no extra evaluation);
    # parameters counted as in the first pattern's fit, less the instrument parameters now held
    npar = first.n_params - sum(1 for k in ("zero_deg", "displacement_deg", "U", "V", "W")
                                if k in first.state["model"].idx)
    dof = np.full(n, max(m - npar, 1))
    gof2 = cost / dof
    # covariance of every pattern: (JᵀJ)⁻¹ Jacobi-scaled, as the single-pattern fit's (_finish), × reduced χ²
    dj = np.sqrt(np.maximum(np.einsum("nii->ni", H), 1e-300))
    C = (np.linalg.pinv(H / dj[:, :, None] / dj[:, None, :], rcond=1e-12, hermitian=True) / dj[:, :, None]
         / dj[:, None, :] * gof2[:, None, None])
    err = np.sqrt(np.clip(np.einsum("nii->ni", C), 0, None))
    wy2 = np.einsum("nm,nm->n", Wt, Y * Y)
    out_ph = []
    warns = list(first.warnings)
    from ...fitting.uncertainty import on_bound

    for i, ph in enumerate(specs):
        cell, cerr = {}, {}
        for k in ph.free:
            j = model.idx[f"{i}.{k}"]
            cell[k] = theta[:, j].copy()
            atb = on_bound(theta[:, j], float(model.lo[j]), float(model.hi[j]))
            cerr[k] = np.where(atb, np.nan, err[:, j])
            if np.any(atb):
                warns.append(f"{ph.name}: cell parameter {k} at its bound (±{max_strain:.0%}) in {int(atb.sum())} "
                             f"of {n} patterns: no esd there")
        out_ph.append({"name": ph.name, "system": ph.system, "free": ph.free, "cell": cell, "cell_stderr": cerr,
                       "X": theta[:, model.idx[f"{i}.X"]], "Y": theta[:, model.idx[f"{i}.Y"]]})
    if not success.all():
        warns.append(f"{int((~success).sum())} of {n} patterns: the whole-pattern fit did not converge")
    med = np.median(gof2)
    bad = np.flatnonzero(gof2 > 2 * med)
    if bad.size:
        warns.append(f"{bad.size} of {n} patterns fit much worse than the series (reduced χ² > 2× its median "
                     f"{med:.3g}): patterns {', '.join(map(str, bad[:10]))}{'…' if bad.size > 10 else ''} — a "
                     f"phase change or a jump the extrapolated start did not follow")
    return SeriesFit(phases=out_ph, instrument=inst, chi2_red=gof2, rwp=np.sqrt(cost / wy2),
                     rexp=np.sqrt(dof / wy2), success=success, nfev=nfev + first.state["model"].nfev,
                     seconds=time.perf_counter() - t0, first=first, model=model, theta=theta, warnings=warns)


def _series_kernel_py(x, Y, Wt, B, c1, c2, gam, eta, ok2, lo, hi, wc1, wc2, wg, we, ratio, want,
                      cost, JtJ, Jtr, coef_out, calc_out):
    """One pass per pattern (compiled by numba, :func:`_series_kernel`): profiles of every reflection group
    (Kα1 + Kα2 TCH pseudo-Voigts) in their windows, the normal equations of the intensities and the
    background (Jacobi-scaled, relative ridge 1e-9 as :meth:`_Model.solve`), χ², and the variable-projection
    ``JᵀJ`` / ``Jᵀr`` of the non-linear parameters (held derivatives chained through ``wc1`` … ``we``: per
    group and parameter, the derivative of the Kα1 centre, Kα2 centre, Γ and η). Written out because numpy
    on the ~26,000 profile samples of a pattern spent ~90 % of its time in temporaries and fancy indexing
    (62 ms per pattern and evaluation on a loaded machine, against ~4 ms of CPU here); the same model as :meth:`_SeriesModel.evaluate`
    (the numpy path, used without numba; the tests compare the two). Its steps are the ``_kern_*`` functions
    (compiled with it)."""
    n, m = Y.shape
    kt = c1.shape[1]
    for j in range(n):
        V, Dc1, Dc2, Dg, De = _kern_profiles(x, c1[j], c2[j], gam[j], eta[j], ok2[j], lo[j], hi[j], ratio)
        w = Wt[j]
        y = Y[j]
        G, rhs = _kern_normal_equations(y, w, B, V, lo[j], hi[j])
        coef, Lc, dg = _kern_intensities(G, rhs)
        calc = np.zeros(m)
        for p in range(m):
            for c in range(B.shape[1]):
                calc[p] += coef[kt + c] * B[p, c]
        for g in range(kt):
            for t in range(hi[j, g] - lo[j, g]):
                calc[lo[j, g] + t] += coef[g] * V[g, t]
        cst = 0.0
        for p in range(m):
            r = y[p] - calc[p]
            cst += w[p] * r * r
        cost[j] = cst
        coef_out[j, :] = coef
        calc_out[j, :] = calc
        if not want:
            continue
        D = _kern_derivatives(m, coef, Dc1, Dc2, Dg, De, lo[j], hi[j], wc1[j], wc2[j], wg[j], we[j])
        _kern_projection(y, w, B, V, D, calc, lo[j], hi[j], Lc, dg, Jtr[j], JtJ[j])


def _kern_profiles(x, c1, c2, gam, eta, ok2, lo, hi, ratio):
    """One pattern's reflection groups in their windows ``lo:hi`` (arrays over the groups): the profile ``V``
    and its derivatives by the Kα1 centre, the Kα2 centre, Γ and η, each (groups, longest window)."""
    kt = c1.shape[0]
    ln2 = np.log(2.0)
    cg = np.sqrt(4 * ln2 / np.pi)
    L = 1
    for g in range(kt):
        L = max(L, hi[g] - lo[g])
    V = np.zeros((kt, L))
    Dc1 = np.zeros((kt, L))
    Dc2 = np.zeros((kt, L))
    Dg = np.zeros((kt, L))
    De = np.zeros((kt, L))
    for g in range(kt):
        G0 = gam[g]
        E = eta[g]
        g2 = G0 * G0
        for t in range(hi[g] - lo[g]):
            xx = x[lo[g] + t]
            for line in range(2):
                if line == 0:
                    dx = xx - c1[g]
                    s = 1.0
                else:
                    if not ok2[g]:
                        break
                    dx = xx - c2[g]
                    s = ratio
                u = dx * dx / g2
                den = 1 + 4 * u
                lor = (2 / np.pi) / G0 / den
                # the Gaussian is < 1e-17 of its height beyond 3.6 FWHM: no exp() for ~3/4 of the window
                gau = cg / G0 * np.exp(-4 * ln2 * u) if u < 14.0 else 0.0
                V[g, t] += s * (E * lor + (1 - E) * gau)
                dc = s * (E * lor * (8 * dx / g2) / den + (1 - E) * gau * (8 * ln2 * dx / g2))
                if line == 0:
                    Dc1[g, t] = dc
                else:
                    Dc2[g, t] = dc
                Dg[g, t] += s * (E * lor * (-1 + 8 * u / den) / G0 + (1 - E) * gau * (-1 + 8 * ln2 * u) / G0)
                De[g, t] += s * (lor - gau)
    return V, Dc1, Dc2, Dg, De


def _kern_normal_equations(y, w, B, V, lo, hi):
    """``(G, rhs)``: the weighted normal equations of the group intensities and the background terms."""
    kt = V.shape[0]
    nb = B.shape[1]
    m = y.shape[0]
    nk = kt + nb
    G = np.zeros((nk, nk))
    rhs = np.zeros(nk)
    for g in range(kt):
        a, b_ = lo[g], hi[g]
        for t in range(b_ - a):
            p = a + t
            wv = w[p] * V[g, t]
            rhs[g] += wv * y[p]
            for c in range(nb):
                G[g, kt + c] += wv * B[p, c]
        for h in range(g, kt):
            a2, b2 = max(a, lo[h]), min(b_, hi[h])
            sacc = 0.0
            for p in range(a2, b2):
                sacc += w[p] * V[g, p - a] * V[h, p - lo[h]]
            G[g, h] = sacc
            G[h, g] = sacc
        for c in range(nb):
            G[kt + c, g] = G[g, kt + c]
    for p in range(m):
        for c in range(nb):
            rhs[kt + c] += w[p] * y[p] * B[p, c]
            for e in range(c, nb):
                G[kt + c, kt + e] += w[p] * B[p, c] * B[p, e]
    for c in range(nb):
        for e in range(c + 1, nb):
            G[kt + e, kt + c] = G[kt + c, kt + e]
    return G, rhs


def _kern_intensities(G, rhs):
    """``(coef, Lc, dg)``: the intensities and background terms solved from the Jacobi-scaled normal
    equations (relative ridge 1e-9; a dead column gets 0), the Cholesky factor ``Lc`` of the scaled matrix
    and the scales ``dg`` (reused by :func:`_kern_projection`)."""
    nk = G.shape[0]
    dg = np.empty(nk)
    dead = np.zeros(nk, np.bool_)
    for i in range(nk):
        dg[i] = np.sqrt(G[i, i])
        if dg[i] <= 1e-300:
            dg[i] = 1.0
            dead[i] = True
    Gs = np.empty((nk, nk))
    for i in range(nk):
        for k in range(nk):
            Gs[i, k] = G[i, k] / (dg[i] * dg[k])
        Gs[i, i] += 1e-9 + (1.0 if dead[i] else 0.0)
    # Cholesky once (Gs is symmetric positive definite with the ridge): the intensities now, the projection of
    # the Jacobian with the same factor (two LU solves were half of the kernel's time)
    Lc = np.linalg.cholesky(Gs)
    coef = rhs / dg
    _kern_cholesky_solve(Lc, coef)
    coef = coef / dg
    for i in range(nk):
        if dead[i]:
            coef[i] = 0.0
    return coef, Lc, dg


def _kern_cholesky_solve(Lc, v):
    """``v`` <- ``(Lc Lcᵀ)⁻¹ v`` in place (forward, then back substitution)."""
    nk = v.shape[0]
    for i in range(nk):
        sacc = v[i]
        for k in range(i):
            sacc -= Lc[i, k] * v[k]
        v[i] = sacc / Lc[i, i]
    for i in range(nk - 1, -1, -1):
        sacc = v[i]
        for k in range(i + 1, nk):
            sacc -= Lc[k, i] * v[k]
        v[i] = sacc / Lc[i, i]


def _kern_derivatives(m, coef, Dc1, Dc2, Dg, De, lo, hi, wc1, wc2, wg, we):
    """``D`` (points, parameters): the model's derivative by each non-linear parameter at fixed intensities
    (chained through the held derivatives ``wc1`` … ``we`` of each group)."""
    kt = Dc1.shape[0]
    q = wc1.shape[1]
    D = np.zeros((m, q))
    for g in range(kt):
        I = coef[g]  # noqa: E741
        if I == 0.0:
            continue
        for t in range(hi[g] - lo[g]):
            p = lo[g] + t
            a1, a2, ag, ae = I * Dc1[g, t], I * Dc2[g, t], I * Dg[g, t], I * De[g, t]
            for k in range(q):
                D[p, k] += a1 * wc1[g, k] + a2 * wc2[g, k] + ag * wg[g, k] + ae * we[g, k]
    return D


def _kern_projection(y, w, B, V, D, calc, lo, hi, Lc, dg, Jtr, JtJ):
    """The variable projection of one pattern: ``Jtr`` (+=) and ``JtJ`` of the non-linear parameters with the
    linear ones (intensities, background) eliminated through the factor ``Lc`` / scales ``dg``."""
    kt = V.shape[0]
    nb = B.shape[1]
    m, q = D.shape
    nk = kt + nb
    AtWD = np.zeros((nk, q))
    for g in range(kt):
        for t in range(hi[g] - lo[g]):
            p = lo[g] + t
            wv = w[p] * V[g, t]
            for k in range(q):
                AtWD[g, k] += wv * D[p, k]
    H = np.zeros((q, q))
    for p in range(m):
        r = y[p] - calc[p]
        for k in range(q):
            wd = w[p] * D[p, k]
            Jtr[k] += wd * r
            for l in range(k, q):  # noqa: E741
                H[k, l] += wd * D[p, l]
            for c in range(nb):
                AtWD[kt + c, k] += B[p, c] * wd
    Xs = np.empty((nk, q))
    for i in range(nk):
        for k in range(q):
            Xs[i, k] = AtWD[i, k] / dg[i]
    for k in range(q):
        col = np.ascontiguousarray(Xs[:, k])
        _kern_cholesky_solve(Lc, col)
        Xs[:, k] = col
    for i in range(nk):
        for k in range(q):
            Xs[i, k] /= dg[i]
    for k in range(q):
        for l in range(k, q):  # noqa: E741
            sacc = 0.0
            for i in range(nk):
                sacc += AtWD[i, k] * Xs[i, l]
            JtJ[k, l] = H[k, l] - sacc
            JtJ[l, k] = JtJ[k, l]


#: the kernel's steps, compiled with it (numba resolves the kernel's calls through these module names)
_KERNEL_PARTS = ("_kern_profiles", "_kern_normal_equations", "_kern_intensities", "_kern_cholesky_solve",
                 "_kern_derivatives", "_kern_projection")

_KERNEL = []


def _series_kernel():
    """The compiled series kernel (numba, on-disk cache), or None without numba."""
    if not _KERNEL:
        from ...fitting.batch import numba_or_none

        nb = numba_or_none()
        if nb is not None:
            g = globals()
            for name in _KERNEL_PARTS:   # compiled first and bound under their names: the kernel calls them
                if not hasattr(g[name], "py_func"):
                    g[name] = nb.njit(cache=True)(g[name])
        _KERNEL.append(nb.njit(cache=True)(_series_kernel_py) if nb is not None else None)
    return _KERNEL[0]
