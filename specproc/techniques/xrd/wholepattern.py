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
* weights 1/σ² (the file's σ column, else Poisson counts).

Esd's: from the full information matrix [non-linear parameters, every intensity group,
background] at the optimum (a Pawley-style covariance: the intensities' uncertainty is carried into
the cell), scaled by the reduced χ² (GOF²), as GSAS-II and TOPAS report them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...core.errors import ProcessingError
from ...fitting.noise import POINTS_PER_FWHM, bin_mean
from .lattice import CELL_PARAMS
from .references import d_spacing

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


def _groups(ref, two_theta_range, wavelength_nm, cell, max_strain):
    """Reflections of ``ref`` that can fall in the range for any cell within the strain bounds, grouped
    into intensity groups (d equal for every cell of the system: equal at two different cells)."""
    full = ref.full_cell(cell)
    lam = wavelength_nm * 10
    d0 = d_spacing(ref.hkl, ref.system, full["a"], full["b"], full["c"])
    lo, hi = two_theta_range
    # generous: the cell may move by ±max_strain, the zero by a fraction of a degree
    dmin = lam / (2 * np.sin(np.radians(min(hi + 1.0, 179.0) / 2))) / (1 - max_strain)
    dmax = lam / (2 * np.sin(np.radians(max(lo - 1.0, 0.5) / 2))) * (1 + max_strain) if lo > 1.5 else np.inf
    sel = (d0 >= dmin * (1 - max_strain)) & (d0 <= dmax)
    hkl = ref.hkl[sel]
    if not len(hkl):
        return hkl, np.zeros(0, int), hkl, np.zeros(0)
    d1 = d0[sel]
    pert = {"a": full["a"] * 1.013, "b": full["b"] * 0.991, "c": full["c"] * 1.007}
    d2 = d_spacing(hkl, ref.system, pert["a"], pert["b"], pert["c"])
    key = np.round(np.stack([d1, d2], 1) * 1e5).astype(np.int64)
    _, first, inv = np.unique(key, axis=0, return_index=True, return_inverse=True)
    inv = inv.ravel()
    st = ref.sticks(wavelength_nm, (0.0, 180.0), cell=cell)
    # reference intensity of every reflection (matched by hkl) summed per group
    lab = {tuple(h): i for h, i in zip(map(tuple, st["hkl"]), st["intensity"])}
    ri = np.array([lab.get(tuple(h), 0.0) for h in hkl])
    gi = np.bincount(inv, weights=ri, minlength=len(first))
    return hkl[first], inv, hkl, gi


class _Model:
    """The parameterised pattern: packs/unpacks the non-linear parameters and evaluates profiles."""

    def __init__(self, x, y, w, phases, wavelength_nm, ka2, snip_bg, n_cheb, caglioti, refine_zero,
                 refine_displacement, max_strain):
        self.x, self.y, self.w = x, y, w
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
        for i, ph in enumerate(phases):
            for k in ph.free:
                r0 = ph.ref.cell[k]
                add(f"{i}.{k}", ph.cell[k], r0 * (1 - max_strain), r0 * (1 + max_strain))
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
        full = ph.ref.full_cell(cell)
        d = d_spacing(ph.hkl, ph.system, full["a"], full["b"], full["c"]) / 10  # nm
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
        val = _pv(x[pt] - c1[grp], gg, ee)
        if self.ka2 is not None:
            m2 = ok2[grp]
            val[m2] += ratio * _pv(x[pt[m2]] - c2[grp[m2]], gg[m2], ee[m2])
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
        full = ph.ref.full_cell(cell)
        d = d_spacing(ph.hkl, ph.system, full["a"], full["b"], full["c"]) / 10  # nm
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
            _, dc_1, dg_1, de_1 = _pv_parts(x[pt] - c1[grp], gg, ee)
            dC1 = I * dc_1
            dG = I * dg_1
            dE = I * de_1
            dC2 = np.zeros(nn)
            if self.ka2 is not None:
                m2 = ok2[grp]
                _, dc_2, dg_2, de_2 = _pv_parts(x[pt[m2]] - c2[grp[m2]], gg[m2], ee[m2])
                dC2[m2] = ratio * I[m2] * dc_2
                dG[m2] += ratio * I[m2] * dg_2
                dE[m2] += ratio * I[m2] * de_2

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
                fq = ph.ref.full_cell(cq)
                dd = (d_spacing(ph.hkl, ph.system, fq["a"], fq["b"], fq["c"]) / 10 - d) / h
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
               fwhm_start=None, max_nfev=None, source=None) -> WholePatternFit:
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
        c = {k: float(np.clip(cell.get(k, ref.cell[k]), ref.cell[k] * (1 - max_strain), ref.cell[k] * (1 + max_strain)))
             for k in CELL_PARAMS[ref.system]}
        gh, inv, hall, gi = _groups(ref, (x[0], x[-1]), wavelength_nm, c, max_strain)
        specs.append(PhaseSpec(ref, c, gh, inv, hall, gi))
    if not specs or any(len(s.hkl) == 0 for s in specs):
        raise ProcessingError("whole-pattern fit: a phase has no reflection in the scanned range", source)
    model = _Model(x, y, w, specs, wavelength_nm, kalpha2, background, n_chebyshev, caglioti, refine_zero,
                   refine_displacement, max_strain)
    p = model.p0.copy()
    W0, X0 = _start_width(fwhm_start if fwhm_start is not None else [0.1], x)
    if "W" in model.idx:
        p[model.idx["W"]] = np.clip(W0, 1e-6, 1.0)
    for i in range(len(specs)):
        p[model.idx[f"{i}.X"]] = X0 if caglioti is None else max(X0, 1e-3)
    if start is not None:  # parameters of a previous fit (shared ones, and phases by name)
        for n in ("zero_deg", "displacement_deg", "U", "V", "W"):
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
    for nm in ("zero_deg", "displacement_deg", "U", "V", "W"):
        params[nm] = float(model.get(p, nm))
        params[nm + "_stderr"] = float(err[model.idx[nm]]) if nm in model.idx else None
    at_bound = []
    for j, nm in enumerate(model.names):
        span = model.hi[j] - model.lo[j]
        near = p[j] - model.lo[j] < 1e-6 * span or model.hi[j] - p[j] < 1e-6 * span
        if nm.split(".")[-1] in ("a", "b", "c") and near:
            at_bound.append(nm)
    warns, phases_out, state_ph = [], [], []
    npn = len(p)
    for i, ph in enumerate(model.phases):
        cell = {k: float(model.get(p, f"{i}.{k}")) for k in ph.free}
        ci = [model.idx[f"{i}.{k}"] for k in ph.free]
        ccov = cov[np.ix_(ci, ci)]
        full = ph.ref.full_cell(cell)
        cell_nm = {k: full[k] / 10 for k in "abc"}
        errs = dict(zip(ph.free, np.sqrt(np.clip(np.diag(ccov), 0, None)) / 10))
        cell_err = {k: float(errs.get(k, errs["a"])) for k in "abc"}
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
                           "cell_nm_stderr": cell_err, "volume_nm3": vol, "volume_nm3_stderr": vol_err,
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
        c = dict(zip(free, vals))
        a = c["a"]
        b = c.get("b", a) if system == "orthorhombic" else a
        cc = c.get("c", a) if system != "cubic" else a
        return float(d_spacing(np.asarray([hkl], float), system, a, b, cc)[0]) / 10
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
                   caglioti=None, fwhm_start=None, max_strain=0.05, refine_displacement=False, source=None):
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
              fwhm_start=fwhm_start, max_strain=max_strain, refine_displacement=refine_displacement, source=source)
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
