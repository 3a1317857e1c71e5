"""Complex nonlinear least squares of equivalent circuits, for one spectrum or a whole stack at once.

:func:`fit_circuit` fits a :class:`~specproc.fitting.circuits.Circuit` to ``n`` impedance spectra
sharing a frequency grid (a temperature series, spectra over cycles) in **one** call of the batch
engine's Levenberg–Marquardt (:func:`specproc.fitting.batch.levenberg_marquardt`: Jacobi-scaled normal equations of
all spectra solved together, projected bounds, Nielsen damping). What is specific to circuits lives
here:

* **residuals**: real and imaginary parts stacked (``2m`` residuals per spectrum), weighted by
  ``modulus`` (``1/|Z|``, both parts; the default, right for noise proportional to ``|Z|``),
  ``proportional`` (``1/|Z'|`` and ``1/|Z''|`` separately) or ``unit``;
* **parameters on a log scale** (all but CPE exponents), so resistances and capacitances that
  differ by 15 decades are one well-conditioned problem; the Jacobian is analytic
  (:meth:`Circuit.impedance`) times ``dp/dlog p = p``;
* **automatic starts** from the spectrum itself (high-frequency intercept, arcs from the maxima of
  ``-Im Z`` over ``log f``, the low-frequency tail) with a few variations; every start of every
  spectrum is one row of the same batched LM and each spectrum keeps its best optimum;
* **covariance of what the data determine**: ``redchi * pinv(J^T J)`` with a rank cut, so an arc
  outside the measured window (its R and C not separately determined) still gives the right error
  for identifiable combinations such as ``R0 + R1`` (:meth:`CircuitFit.combination`); parameters
  that are not determined, or that end on a bound, get no standard error.

The only hand-written numerics are the ones no library offers for this problem (batched complex
CNLS with analytic circuit Jacobians); the optimiser is the toolkit's.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..core.errors import FitError, ParameterError
from .circuits import Circuit, parse_circuit

__all__ = ["fit_circuit", "start_values", "CircuitFit", "WEIGHTINGS"]

WEIGHTINGS = ("modulus", "proportional", "unit")
_RANK_RTOL = 1e-11     # eigenvalues of the scaled J^T J below this fraction of the largest: not determined
_PROJ_TOL = 1e-3       # a combination is determined when its projection on that null space is below this
PRUNE = 2.0            # ... or whose chi^2 is above this x the best of its spectrum's starts
GRID = 5               # frequencies tried for an arc the data show no maximum for
BURST = 15             # LM iterations between the checks for rows stuck on a flat valley
FLAT = 0.1             # ... whose chi^2 fell by less than this many reduced chi^2 over a whole burst (a
                       # change no statistic can see: a tenth of what one standard error is worth)


# ================================================================================ result
@dataclass
class CircuitFit:
    """Fits of one circuit to ``n`` spectra (natural units: Ohm, F, s...).

    Attributes
    ----------
    circuit : Circuit
    f : array (m,)
    values, stderr : arrays (n, q)
        Parameters (``circuit.param_names`` order); stderr NaN where not determined or on a bound.
    covar : array (n, q, q)
        Covariance (pseudo-inverse on the determined subspace; rows/columns of parameters on a
        bound are zero).
    determined, at_bound : bool arrays (n, q)
    chisqr, redchi, r2 : arrays (n,)
        Weighted statistics like lmfit (``r2 = 1 - chisqr / sum (w (y - mean y))^2``).
    success : bool array (n,)
    nfev : int array (n,)
    Z_fit : complex array (n, m)
    residual : array (n, 2m)
        Weighted residuals (real parts, then imaginary parts): relative errors for ``modulus``.
    """

    circuit: Circuit
    f: np.ndarray
    values: np.ndarray
    stderr: np.ndarray
    covar: np.ndarray
    determined: np.ndarray
    at_bound: np.ndarray
    chisqr: np.ndarray
    redchi: np.ndarray
    r2: np.ndarray
    success: np.ndarray
    nfev: np.ndarray
    Z_fit: np.ndarray
    residual: np.ndarray
    weighting: str = "modulus"
    timings: dict = field(default_factory=dict)
    _null: list = field(default_factory=list, repr=False)   # per spectrum: (scale (q,), null basis (q, k))

    @property
    def n(self) -> int:
        return self.values.shape[0]

    def value(self, i: int, name: str) -> float:
        return float(self.values[i, self.circuit.param_names.index(name)])

    def combination(self, i: int, weights: dict) -> tuple[float, float]:
        """Value and standard error of ``sum(w * p)`` for spectrum ``i`` (``weights``: name -> w).

        The error is NaN when the data do not determine the combination (it has a component along
        a direction of the parameters that leaves the spectrum unchanged)."""
        names = self.circuit.param_names
        g = np.zeros(len(names))
        for k, w in weights.items():
            g[names.index(k)] = w
        val = float(g @ self.values[i])
        scale, null = self._null[i] if self._null else (None, None)
        if null is not None and null.shape[1]:
            gu = g * scale
            if np.linalg.norm(null.T @ gu) > _PROJ_TOL * max(np.linalg.norm(gu), 1e-300):
                return val, float("nan")
        var = float(g @ self.covar[i] @ g)
        return val, (float(np.sqrt(var)) if np.isfinite(var) and var >= 0 else float("nan"))

    def to_dataset(self, dim: str = "spectrum", coords: dict | None = None):
        """The fits as an xarray Dataset like :func:`~specproc.fitting.batch.fit_batch`'s
        (``<param>``, ``<param>_stderr``, ``chisqr``, ``redchi``, ``r2``, ``success``, ``nfev``)."""
        import xarray as xr

        data = {}
        for j, name in enumerate(self.circuit.param_names):
            data[name] = ((dim,), self.values[:, j], {"units": self.circuit.units[j]})
            data[name + "_stderr"] = ((dim,), self.stderr[:, j], {"units": self.circuit.units[j]})
        for k in ("chisqr", "redchi", "r2", "success", "nfev"):
            data[k] = ((dim,), getattr(self, k))
        return xr.Dataset(data, coords=coords or {}, attrs={"circuit": self.circuit.text, "method": "batched-lm",
                                                          "weighting": self.weighting, "timings": self.timings})


# ================================================================================ engine adapters
class _Model:
    """What the batch engine's LM reads of a model: bounds and the affine map of fixed parameters."""

    def __init__(self, lo, hi, free: np.ndarray):
        q = free.size
        fi, xi = np.nonzero(free)[0], np.nonzero(~free)[0]
        self.lo, self.hi = lo[fi], hi[fi]
        self.A_free = np.eye(q)[:, fi]
        self.A_fixed = np.eye(q)[:, xi]
        self.c = np.zeros(q)


class _Evaluator:
    """chi^2, J^T J, J^T r of rows at full (log-scaled) parameters: the engine's evaluator protocol."""

    def __init__(self, circuit: Circuit, f, Y, W, pos):
        self.circuit, self.f, self.Y, self.W, self.pos = circuit, f, Y, W, pos

    def natural(self, P):
        return np.where(self.pos, np.exp(np.clip(P, -700, 700)), P)

    def model(self, P, jac=True):
        nat = self.natural(P)
        if not jac:
            Z = self.circuit.impedance(self.f, nat)
            return np.concatenate([Z.real, Z.imag], axis=1), None, Z
        Z, J = self.circuit.impedance(self.f, nat, jac=True)
        J = J * np.where(self.pos, nat, 1.0)[:, None, :]           # d/dlog p = p d/dp
        return np.concatenate([Z.real, Z.imag], axis=1), np.concatenate([J.real, J.imag], axis=1), Z

    def __call__(self, rows, P, want=True):
        with np.errstate(all="ignore"):
            val, J, _ = self.model(P, jac=want)
            W = self.W[rows]
            R = W * (self.Y[rows] - val)
            cost = np.einsum("nm,nm->n", R, R)
            cost = np.where(np.isfinite(cost), cost, np.inf)
            if not want:
                return cost, None, None
            Jw = J * W[:, :, None]
            Jt = Jw.transpose(0, 2, 1)
            JtJ, Jtr = np.matmul(Jt, Jw), np.matmul(Jt, R[:, :, None])[:, :, 0]
            bad = ~np.isfinite(JtJ).all(axis=(1, 2)) | ~np.isfinite(Jtr).all(axis=1)
            if bad.any():
                cost[bad] = np.inf
                JtJ[bad], Jtr[bad] = 0.0, 0.0
            return cost, JtJ, Jtr


def _weights(Z: np.ndarray, weighting: str) -> np.ndarray:
    a = np.abs(Z)
    floor = 1e-12 + 1e-6 * a.max(axis=1, keepdims=True)
    if weighting == "modulus":
        w = 1.0 / np.maximum(a, floor)
        return np.concatenate([w, w], axis=1)
    if weighting == "proportional":
        fl = 1e-3 * np.maximum(a, floor)      # a zero crossing must not get an infinite weight
        return np.concatenate([1 / np.maximum(np.abs(Z.real), fl), 1 / np.maximum(np.abs(Z.imag), fl)], axis=1)
    if weighting == "unit":
        return np.ones((Z.shape[0], 2 * Z.shape[1]))
    raise ParameterError(f"weighting {weighting!r}: one of {', '.join(WEIGHTINGS)}")


# ================================================================================ start values
def _arcs_in_data(lf: np.ndarray, zr: np.ndarray, zi: np.ndarray) -> list[tuple[float, float]]:
    """``(frequency, width on the real axis)`` of the arcs seen as maxima of ``-Im Z`` over ``log f``,
    highest frequency first."""
    from .peaks import pick_peaks

    order = np.argsort(lf)
    x, yi, yr = lf[order], zi[order], zr[order]
    zmod = np.hypot(yr, yi)
    if x.size < 5 or not np.any(yi > 0):
        return []
    # maxima of log(-Im Z): an arc next to a steep electrode tail is a local maximum whatever the
    # tail's height; prominence in decades
    ly = np.log10(np.maximum(yi, 1e-6 * float(np.max(np.abs(yi)))))
    peaks = pick_peaks(x, ly, noise=0.01, snr=2.0, max_peaks=6, smooth=x.size >= 12)
    out = []
    for p in peaks:
        i = p["index"]
        # an arc's -Im Z maximum is a sizeable part of |Z| there; a bump of a few % is noise
        if yi[i] < 0.03 * zmod[i] or i in (0, x.size - 1):
            continue
        left = int(np.argmin(yi[:i + 1]))           # minima of -Im Z on either side of the maximum
        right = i + int(np.argmin(yi[i:]))
        span = abs(yr[left] - yr[right]) if right != left else 0.0
        # the arc's width on the real axis; an ideal RC arc is 2x its height, a depressed one more
        width = span if 1.2 * yi[i] < span < 6 * yi[i] else 2.3 * yi[i]
        out.append((float(10 ** x[i]), float(width)))
    return sorted(out, key=lambda t: -t[0])


def _base_start(circuit: Circuit, f: np.ndarray, z: np.ndarray, variant: int, arcs_seen=None) -> np.ndarray:
    """One start vector for spectrum ``z`` (variant 0: as seen; others: arcs shifted, widths scaled)."""
    w = 2 * np.pi * f
    zr, zi = z.real, -z.imag
    hi_i, lo_i = int(np.argmax(f)), int(np.argmin(f))
    zmod = np.abs(z)
    scale = float(np.median(zmod)) or 1.0
    r_hf = max(float(zr[hi_i]), 1e-4 * scale)
    if arcs_seen is None:
        arcs_seen = _arcs_in_data(np.log10(f), zr, zi)
    arcs = circuit.arcs()
    nvar = [(1.0, 0.85), (1.0, 0.95), (0.5, 0.8), (2.0, 0.9), (1.0, 0.7), (0.3, 0.9)][variant % 6]
    rfac, n0 = nvar if variant < 6 else (1.0, 0.85)
    # arcs of the circuit <- arcs in the data, highest frequency first. Missing ones: above the window
    # (a bulk arc beyond the highest frequency) or below (variants 0-5), or - variants 6.. - on a grid
    # of GRID frequencies across the window (a small arc next to a large one shows no maximum of its own)
    fmax, fmin = float(f.max()), float(f.min())
    assigned = []
    seen = list(arcs_seen)[:len(arcs)]
    if variant >= 6:
        g = variant - 6
        if g >= GRID:            # second grid pass: the detected maxima ignored, every arc on the grid
            seen = []
        missing = len(arcs) - len(seen)
        grid = np.logspace(np.log10(fmax) - 0.5, np.log10(fmin) + 0.5, GRID + missing)
        span = max(float(zr.max() - zr[hi_i]) - sum(wd for _, wd in seen), 0.05 * scale)
        assigned = seen + [(float(grid[g % GRID + k]), span / max(missing, 1)) for k in range(missing)]
    for k, _arc in enumerate(arcs):
        if variant >= 6:
            break
        if seen and not (3 <= variant < 6 and k == 0 and len(arcs) > len(arcs_seen)):
            fc, width = seen.pop(0)
        else:
            above = variant % 2 == 0
            fc = fmax * 30 if above else fmin / 30
            width = 0.3 * r_hf if above else 0.3 * max(float(zr[lo_i] - zr[hi_i]), 0.1 * scale)
        assigned.append((fc, width))
    assigned = [(fc, max(wd * rfac, 1e-6 * scale)) for fc, wd in assigned]
    assigned.sort(key=lambda t: -t[0])          # circuit order: highest frequency first
    p = np.empty(circuit.nparams)
    done = np.zeros(circuit.nparams, bool)
    names = circuit.param_names
    for arc, (fc, width) in zip(arcs, assigned):
        for rn in arc.resistors:
            j = names.index(rn)
            p[j], done[j] = width / len(arc.resistors), True
        e = arc.capacitor
        tau = 1 / (2 * np.pi * fc)
        if e.kind == "C":
            p[e.start], done[e.start] = tau / width, True
        else:
            p[e.start + 1] = n0
            p[e.start] = tau ** n0 / width
            done[e.start:e.start + 2] = True
    series_r = [r for r in circuit.series_resistors() if not done[names.index(r)]]
    for rn in series_r:
        j = names.index(rn)
        # a series R carries the high-frequency intercept (minus an unresolved arc above the window)
        p[j], done[j] = max(r_hf - sum(wd for fc, wd in assigned if fc > fmax), 0.05 * r_hf) / len(series_r), True
    # the low-frequency tail: -Im Z ~ 1/(Q w^n sin...) -> n from the log-log slope of the last points
    k = np.argsort(f)[:max(3, f.size // 8)]
    if np.all(zi[k] > 0):
        n_tail = float(np.clip(-np.polyfit(np.log(w[k]), np.log(zi[k]), 1)[0], 0.5, 1.0))
    else:
        n_tail = 0.9
    zi_lf = max(float(zi[lo_i]), 1e-3 * scale)
    for e in circuit.elements:
        j = e.start
        if done[j]:
            continue
        if e.kind == "R":
            p[j] = 0.3 * scale * rfac
        elif e.kind == "C":
            p[j] = 1 / (w[lo_i] * zi_lf)
        elif e.kind == "CPE":
            n = n_tail if variant % 2 == 0 else min(n_tail + 0.05, 1.0)
            p[j], p[j + 1] = np.sin(n * np.pi / 2) / (w[lo_i] ** n * zi_lf), n
        elif e.kind == "L":
            p[j] = max(float(z.imag[hi_i]), 0.0) / w[hi_i] + 1e-9     # inductive: Im Z > 0 at the top
        elif e.kind == "W":
            p[j] = 0.5 * zi_lf * np.sqrt(w[lo_i])
        else:                                     # Wo / Ws: diffusion over the low-frequency end
            p[j], p[j + 1] = 0.3 * max(float(zr[lo_i] - zr[hi_i]), 0.1 * scale), 0.3 / w[lo_i]
        done[j:j + e.nparams] = True
    return np.clip(p, circuit.lo * 1.0001, circuit.hi * 0.9999)


def start_values(circuit: Circuit | str, f, Z, n_starts: int = 6) -> np.ndarray:
    """Automatic starts, shape ``(n, n_starts, q)``, for spectra ``Z`` (n, m) at ``f`` (m,)."""
    c = parse_circuit(circuit) if isinstance(circuit, str) else circuit
    Z = np.atleast_2d(Z)
    f = np.asarray(f, float)
    out = []
    for z in Z:
        seen = _arcs_in_data(np.log10(f), z.real, -z.imag)
        out.append([_base_start(c, f, z, v, seen) for v in range(n_starts)])
    return np.stack(out)


def _canonical(c: Circuit, P: np.ndarray) -> np.ndarray:
    """Arcs of identical structure in series at the top level are interchangeable (the impedance is
    the same whichever label each gets): give them in order of decreasing characteristic frequency,
    the order of the circuit string (bulk before interface)."""
    from .circuits import arc_frequency

    top = c.root.children if c.root.op == "s" else [c.root]
    groups: dict = {}
    for arc in c.arcs():
        node = next((t for t in top if t.op == "p" and arc.capacitor in [x.element for x in t.children
                                                                      if x.op == "e"]), None)
        if node is None or len(arc.resistors) != 1 or any(ch.op != "e" for ch in node.children):
            continue
        groups.setdefault(arc.capacitor.kind, []).append(arc)
    P = P.copy()
    names = c.param_names
    for kind, arcs in groups.items():
        if len(arcs) < 2:
            continue
        cols = [[names.index(a.resistors[0])] + list(range(a.capacitor.start, a.capacitor.start
                                                            + a.capacitor.nparams)) for a in arcs]
        fc = np.stack([arc_frequency(kind, P[:, cc[0]], [P[:, k] for k in cc[1:]]) for cc in cols], axis=1)
        order = np.argsort(-np.nan_to_num(fc, nan=-np.inf), axis=1)
        block = np.stack([P[:, cc] for cc in cols], axis=1)            # (n, arcs, k)
        block = np.take_along_axis(block, order[:, :, None], axis=1)
        for a, cc in enumerate(cols):
            P[:, cc] = block[:, a]
    return P


# ================================================================================ the fit
def _check(f, Z):
    f = np.asarray(f, float)
    Z = np.atleast_2d(np.asarray(Z))
    if f.ndim != 1 or Z.shape[-1] != f.size:
        raise ParameterError(f"fit_circuit: Z has shape {Z.shape}, its last axis must match f ({f.shape})")
    if f.size < 4:
        raise ParameterError(f"fit_circuit: {f.size} frequencies (need >= 4)")
    if not (np.all(np.isfinite(f)) and np.all(f > 0)):
        raise ParameterError("fit_circuit: frequencies must be finite and > 0")
    return f, Z.astype(complex)


def _covariance(H, redchi, free_active):
    """Pseudo-inverse covariance on the determined subspace of the scaled normal matrix of one fit.

    Returns (cov (p, p), scale (p,), null basis (p, k)) in the engine's (log) coordinates;
    parameters not in ``free_active`` are left out (zero rows)."""
    p = H.shape[0]
    cov = np.zeros((p, p))
    idx = np.nonzero(free_active)[0]
    if idx.size == 0 or not np.all(np.isfinite(H)):
        return np.full((p, p), np.nan), np.ones(p), np.zeros((p, 0))
    Hs = H[np.ix_(idx, idx)]
    d = np.sqrt(np.maximum(np.diag(Hs), 1e-300))
    lam, V = np.linalg.eigh(Hs / d[:, None] / d[None, :])
    good = lam > _RANK_RTOL * max(lam.max(), 1e-300)
    inv = (V[:, good] / lam[good]) @ V[:, good].T
    cov[np.ix_(idx, idx)] = inv / d[:, None] / d[None, :] * redchi
    scale = np.ones(p)
    scale[idx] = 1 / d
    null = np.zeros((p, int((~good).sum())))
    null[idx] = V[:, ~good]
    return cov, scale, null


def fit_circuit(circuit: Circuit | str, f, Z, *, weighting: str = "modulus", starts=None, n_starts: int | None = None,
                fixed: dict | None = None, bounds: dict | None = None, max_iter: int = 300,
                tol: float = 1e-9) -> CircuitFit:
    """Fit an equivalent circuit to one spectrum or a stack sharing the frequency grid.

    Parameters
    ----------
    circuit : Circuit or str
        ``"R0-p(R1,CPE1)-CPE2"`` (see :mod:`specproc.fitting.circuits`).
    f : array (m,)
        Frequencies (Hz), any order.
    Z : complex array (m,) or (n, m)
        Impedances (Ohm).
    weighting : {"modulus", "proportional", "unit"}
    starts : dict name -> value (or array (n,)), optional
        Given start values (one start per spectrum; unnamed parameters start automatically).
    n_starts : int, optional
        Automatic starts per spectrum (default 6 variations + 2 x GRID grid placements of arcs
        with no maximum of their own): all of them for a single spectrum; for a stack the first,
        and the others for the spectra that end worse than their neighbours.
    fixed : dict name -> value, optional
        Parameters held fixed.
    bounds : dict name -> (lo, hi), optional
        Bounds replacing the element defaults.
    max_iter, tol
        LM iterations per spectrum and relative tolerance (the batch engine's rules).

    Returns
    -------
    CircuitFit
    """
    from .batch import levenberg_marquardt
    from .uncertainty import on_bound

    t0 = time.perf_counter()
    c = parse_circuit(circuit) if isinstance(circuit, str) else circuit
    f, Z = _check(f, Z)
    if weighting not in WEIGHTINGS:
        raise ParameterError(f"weighting {weighting!r}: one of {', '.join(WEIGHTINGS)}")
    n, m = Z.shape
    q = c.nparams
    names = c.param_names
    lo, hi = c.lo.copy(), c.hi.copy()
    for k, (a, b) in (bounds or {}).items():
        if k not in names:
            raise ParameterError(f"bounds: circuit {c.text!r} has no parameter {k!r} ({', '.join(names)})")
        lo[names.index(k)], hi[names.index(k)] = sorted((float(a), float(b)))
    if np.any(c.positive & (lo <= 0)):
        raise ParameterError("bounds of resistances, capacitances and time constants must be > 0")
    pos = c.positive
    tlo, thi = np.where(pos, np.log(lo), lo), np.where(pos, np.log(hi), hi)
    free = np.ones(q, bool)
    for k in fixed or {}:
        if k not in names:
            raise ParameterError(f"fixed: circuit {c.text!r} has no parameter {k!r} ({', '.join(names)})")
        free[names.index(k)] = False
    Y = np.concatenate([Z.real, Z.imag], axis=1)
    W = _weights(Z, weighting)
    n_arcs = len(c.arcs())
    if n_starts is None:        # 6 variations, and a grid for arcs without a maximum of their own
        n_starts = 6 + (2 * GRID if n_arcs >= 1 else 0)
    seen: dict = {}

    def auto(i: int, variants) -> np.ndarray:
        """Automatic starts of spectrum ``i`` in the engine's coordinates (arcs looked for once)."""
        if i not in seen:
            seen[i] = _arcs_in_data(np.log10(f), Z[i].real, -Z[i].imag)
        S = np.array([_base_start(c, f, Z[i], v, seen[i]) for v in variants])
        for k, v in (fixed or {}).items():
            S[:, names.index(k)] = float(v)
        S = np.clip(S, lo, hi)
        return np.where(pos, np.log(S), S)

    if starts is not None:
        given = np.vstack([auto(i, [0]) for i in range(n)])
        for j, name in enumerate(names):
            if name in starts:
                v = np.clip(np.broadcast_to(np.asarray(starts[name], float), (n,)), lo[j], hi[j])
                given[:, j] = np.log(v) if pos[j] else v
    bm = _Model(tlo, thi, free)

    def run(spec, T):
        """LM from starts T (rows, q) of spectra ``spec`` (rows,): the engine's batched solver, in
        bursts of BURST iterations. A row whose chi^2 fell by less than FLAT reduced chi^2 over a
        whole burst is done: it moves along a direction the data do not determine (an arc outside the
        window) and would otherwise hold the whole stack for max_iter iterations; so is a start whose
        chi^2 is PRUNE x above the best start of its spectrum."""
        ev = _Evaluator(c, f, Y[spec], W[spec], pos)
        nr, p = len(spec), int(free.sum())
        theta, phi = T[:, free].copy(), T[:, ~free]
        r = dict(theta=theta, cost=np.full(nr, np.inf), H=np.zeros((nr, p, p)), success=np.zeros(nr, bool),
                 nfev=np.zeros(nr, int))
        todo = np.arange(nr)
        prev = np.full(nr, np.inf)
        dof = max(2 * m - p, 1)
        for _ in range(max(1, -(-max_iter // BURST))):
            b = levenberg_marquardt(bm, ev, todo, theta[todo].copy(), phi[todo], BURST, tol)
            for k in ("theta", "cost", "H", "success"):
                r[k][todo] = b[k]
            r["nfev"][todo] += b["nfev"]
            flat = np.isfinite(b["cost"]) & (prev[todo] - b["cost"] <= FLAT * b["cost"] / dof)
            prev[todo] = b["cost"]
            r["success"][todo[flat]] = True
            # a start of a spectrum whose chi^2 is still above PRUNE x that spectrum's best cannot win
            best = np.full(n, np.inf)
            np.minimum.at(best, spec, np.where(np.isfinite(r["cost"]), r["cost"], np.inf))
            lost = r["cost"][todo] > PRUNE * best[spec[todo]]
            todo = todo[~(b["success"] | flat | lost | ~np.isfinite(b["cost"]))]
            if todo.size == 0:
                break
        T = T.copy()
        T[:, free] = r["theta"]
        cost = np.where(np.isfinite(r["cost"]), r["cost"], np.inf)
        return T, cost, r

    # stage 1: every spectrum from its first start (a single spectrum: from all its starts)
    if starts is not None:
        spec, T0 = np.arange(n), given
    elif n > 1:
        spec, T0 = np.arange(n), np.vstack([auto(i, [0]) for i in range(n)])
    else:
        spec, T0 = np.zeros(n_starts, int), auto(0, range(n_starts))
    T1, cost1, r1 = run(spec, T0)
    best_T, best_cost = np.empty((n, q)), np.full(n, np.inf)
    best_H, best_ok, best_nfev = np.zeros((n, int(free.sum()), int(free.sum()))), np.zeros(n, bool), np.zeros(n, int)

    def keep(spec, T, cost, r):
        for row, i in enumerate(spec):
            if cost[row] < best_cost[i]:
                best_T[i], best_cost[i], best_H[i] = T[row], cost[row], r["H"][row]
                best_ok[i], best_nfev[i] = r["success"][row], r["nfev"][row]

    keep(spec, T1, cost1, r1)
    # stage 2 (stacks): spectra that ended worse than their neighbours (chi^2 above 3x the stack's
    # median, no convergence, or a parameter on a bound) are refitted from their other starts and
    # from their neighbours' optima; each keeps its best optimum
    if n > 1 and n_starts > 1:
        from .uncertainty import on_bound

        med = np.median(best_cost[np.isfinite(best_cost)]) if np.isfinite(best_cost).any() else np.inf
        tf = best_T[:, free]
        bounded = np.zeros(n, bool)
        for k in range(tf.shape[1]):
            bounded |= np.asarray(on_bound(tf[:, k], float(bm.lo[k]), float(bm.hi[k])))
        redo = np.nonzero(~best_ok | (best_cost > 3 * med) | bounded)[0]
        if redo.size:
            rows, starts_ = [], []
            good = np.setdiff1d(np.arange(n), redo)
            for i in redo:
                for row in auto(i, range(0 if starts is not None else 1, n_starts)):
                    rows.append(i)
                    starts_.append(row)
                for j in good[np.argsort(np.abs(good - i))][:2]:       # the nearest well-fitted spectra
                    rows.append(i)
                    starts_.append(best_T[j])
            spec2 = np.array(rows)
            T2, cost2, r2 = run(spec2, np.array(starts_))
            keep(spec2, T2, cost2, r2)
    if not np.isfinite(best_cost).any():
        raise FitError(f"circuit {c.text!r}: no start gave a finite fit")
    nat = _canonical(c, np.where(pos, np.exp(best_T), best_T))
    swapped = ~np.all(np.isclose(nat, np.where(pos, np.exp(best_T), best_T)), axis=1)
    if swapped.any():        # relabelled arcs: the normal matrix at the relabelled optimum (one evaluation)
        Tn = np.where(pos, np.log(nat), nat)
        ev = _Evaluator(c, f, Y[swapped], W[swapped], pos)
        Hs = ev(np.arange(int(swapped.sum())), Tn[swapped])[1]
        best_H[swapped] = Hs[:, free][:, :, free]
        best_T = Tn
    ev = _Evaluator(c, f, Y, W, pos)
    out = _finish(c, f, Z, Y, W, ev, bm, best_T, best_H, best_ok, best_nfev, free, weighting)
    out.timings = {"fit": time.perf_counter() - t0}
    return out


def _finish(c, f, Z, Y, W, ev, bm, P, H, ok, nfev, free, weighting) -> CircuitFit:
    from .uncertainty import on_bound

    n, m = Z.shape
    q = c.nparams
    nat = ev.natural(P)
    val, _, Zf = ev.model(P, jac=False)
    res = W * (Y - val)
    chisqr = np.einsum("nm,nm->n", res, res)
    nfree = 2 * m - int(free.sum())
    redchi = chisqr / max(nfree, 1)
    dev = (Y - Y.mean(axis=1, keepdims=True)) * W
    r2 = 1 - chisqr / np.maximum(np.einsum("nm,nm->n", dev, dev), 1e-300)
    tfree = P[:, free]
    atb = np.zeros((n, q), bool)
    for k, j in enumerate(np.nonzero(free)[0]):       # the toolkit's one bound rule, column by column
        atb[:, j] = np.asarray(on_bound(tfree[:, k], float(bm.lo[k]), float(bm.hi[k])))
    # covariance in the engine's coordinates, then natural units (dp = p dlog p)
    covar = np.zeros((n, q, q))
    stderr = np.full((n, q), np.nan)
    determined = np.zeros((n, q), bool)
    nulls = []
    D = np.where(c.positive[None, :], nat, 1.0)
    fi = np.nonzero(free)[0]
    for i in range(n):
        active = ~atb[i, fi]
        cov_t, scale_t, null_t = _covariance(H[i], redchi[i], active)
        C = np.zeros((q, q))
        C[np.ix_(fi, fi)] = cov_t
        C = C * D[i][:, None] * D[i][None, :]
        covar[i] = C
        scale = np.zeros(q)
        # a natural gradient g becomes g * dp/du = g * p / d in the engine's scaled coordinates u = d log p
        scale[fi] = scale_t * D[i][fi]
        null = np.zeros((q, null_t.shape[1]))
        null[fi] = null_t
        nulls.append((scale, null))
        for j in fi:
            if atb[i, j]:
                continue
            e = np.zeros(q)
            e[j] = scale[j]
            ok = null.shape[1] == 0 or np.linalg.norm(null.T @ e) <= _PROJ_TOL * abs(scale[j])
            determined[i, j] = ok
            if ok and np.isfinite(C[j, j]) and C[j, j] >= 0:
                stderr[i, j] = np.sqrt(C[j, j])
        for j in np.nonzero(~free)[0]:
            stderr[i, j] = 0.0
    success = ok & np.isfinite(chisqr)
    return CircuitFit(c, f, nat, stderr, covar, determined, atb, chisqr, redchi, r2, success, nfev,
                      Zf, res, weighting, _null=nulls)
