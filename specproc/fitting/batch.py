"""Batched nonlinear least squares: one model, thousands of spectra, maps or force curves at once.

:func:`fit_batch` compiles a :class:`~specproc.fitting.models.ModelSpec` or an lmfit model made of
known components (lmfit's Gaussian, Lorentzian, PseudoVoigt, Voigt, Pearson7, Constant, Linear,
Polynomial, PowerLaw models and specproc's :mod:`~specproc.fitting.components`) to a vectorised
Levenberg–Marquardt solver:

* **Jacobians are analytic** (:mod:`specproc.fitting._batch_kernels`). For models without Voigt peaks a
  fused numba kernel (``parallel=True, cache=True``) accumulates ``J^T J`` and ``J^T r`` per dataset
  without storing the Jacobian; Voigt peaks (complex Faddeeva function) use the numpy path.
* **The small normal equations of all datasets are solved at once** with ``np.linalg.solve`` on
  ``(n, p, p)`` arrays (Jacobi-scaled, Marquardt damping ``lambda * diag(J^T J)``, Nielsen's update of
  ``lambda``).
* **Bounds: projected steps.** Each trial point is clipped to ``[min, max]``; a parameter sitting on a
  bound whose gradient points outwards is frozen for that iteration (active set), so the others still
  take a full Gauss–Newton step. (lmfit uses a sine transform instead; the minimum found is the same,
  and away from bounds the standard errors are identical.) Bounds on expression parameters are ignored.
* **Fixed and linked parameters**: ``vary=False`` parameters and lmfit expressions that are affine in
  the independent parameters (``b_sigma = a_sigma``, ``x = y + const``, ``x = k*y``, sums of those) are
  compiled to ``P = A theta + c``; a non-affine expression on a model argument makes the model
  non-batchable (-> lmfit loop). Other expressions (``fwhm``, ``height``...) are evaluated after the fit
  with lmfit's own expression interpreter; their standard errors are propagated linearly.
* **Statistics like lmfit**: ``chisqr = sum (w (y - f))^2``, ``redchi = chisqr / (m - p)``, covariance
  ``(J^T J)^-1 * redchi``, ``r2 = 1 - chisqr / sum (w (y - mean y))^2``.
* **Convergence** (MINPACK-like, per dataset): an accepted step with relative reductions of chi^2
  (actual and predicted) below ``tol``, or a relative step below ``tol``, or no predicted reduction left.
  ``max_iter`` without convergence, or a non-finite chi^2 -> ``success = False``.

* **Parallel and memory-bounded**: datasets are fitted in chunks (default: ~512 MiB of working
  memory); the numba kernel runs in parallel over the datasets of a chunk (``n_jobs`` threads), the
  numpy path runs chunks in threads (numpy releases the GIL). ``warm_start`` fits chunks in raster order
  and seeds each dataset from its neighbour in the previous chunk only when that fit converged and its
  values give a lower starting chi^2 than the ordinary initial values (a bad pixel never propagates).
* **NaN/inf** in a dataset (or its weights) masks that dataset: not fitted, values NaN, ``masked=True``.

Models it cannot batch fall back to a loop of lmfit fits (``method="lmfit-loop"``; spawned worker
processes for stacks of >= 256 datasets, this thread below), with the same output Dataset, the reason in
``attrs["fallback_reason"]`` and, for datasets whose lmfit fit raised, the messages in
``attrs["fit_errors"]``.
"""
from __future__ import annotations

import math
import operator
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..core.errors import FitError, ParameterError

__all__ = ["fit_batch", "fit_batch_compiled", "evaluate_batch", "BatchModel", "compile_model",
           "levenberg_marquardt", "numba_or_none", "kernel_lock", "warm_up_kernel"]

WORK_MEMORY = 512 * 2 ** 20  # bytes of working memory per chunk (all threads)
_LMFIT_KINDS = {"gaussian": "gaussian", "lorentzian": "lorentzian", "pvoigt": "pseudo-voigt", "voigt": "voigt",
                "pearson7": "pearson7", "constant": "constant", "linear": "linear", "powerlaw": "powerlaw"}


#: lmfit model functions registered by other modules (:func:`register_kernel`): function -> kind
_REGISTERED: dict = {}


def register_kernel(kind: str, func, params: tuple, numpy_func) -> None:
    """Registration hook: let the engine batch an lmfit component whose function is ``func``.

    ``numpy_func(x, *params) -> (value, d/dparam1, ...)`` evaluates a whole stack at once
    (parameters ``(n, 1)``, ``x`` ``(1, m)``), like the kernels of :mod:`._batch_kernels`; it runs on
    the numpy path (never the numba kernel). A module below this one (no import of ``batch``: no
    import circle) declares the same triple as the function's ``batch_kernel`` attribute, registered
    here when a model using it is first compiled (:mod:`specproc.fitting.nmr_models`: ``csa``).
    """
    from . import _batch_kernels as K

    if kind in K.NUMPY_FUNCS and K.NUMPY_FUNCS[kind] is not numpy_func:
        raise ValueError(f"batch kernel {kind!r} is already registered")
    K.PARAMS[kind] = tuple(params)
    K.NUMPY_FUNCS[kind] = numpy_func
    K.NUMPY_ONLY.add(kind)
    K.CODE.setdefault(kind, -1)  # no numba code: NUMPY_ONLY keeps it off the fused kernel
    _REGISTERED[func] = kind


def numba_or_none():
    """numba as the engine configured it (fork-safe ``workqueue`` threading layer), or None without
    numba: for a technique's own compiled kernel (AFM force curves), launched under :func:`kernel_lock`."""
    from . import _batch_kernels as K

    return K.numba if K.HAVE_NUMBA else None


def kernel_lock():
    """The lock that serialises launches of parallel numba kernels (one launch uses every core and
    the workqueue layer is not safe for concurrent launches); a dummy lock without numba."""
    import contextlib

    from . import _batch_kernels as K

    return K.KERNEL_LOCK if K.HAVE_NUMBA else contextlib.nullcontext()


def warm_up_kernel() -> float:
    """Compile (or load from numba's on-disk cache) the engine's fused kernel; the seconds it took."""
    from . import _batch_kernels as K

    return K.warm_up_kernel()


class NotBatchable(Exception):
    """The model cannot be compiled to the batched form (reason in the message)."""


# ====================================================================== model compilation
class BatchModel:
    """An lmfit model + Parameters compiled to the batched form.

    Attributes
    ----------
    comps : list of (kind, prefix, names)
        Components in order, with the names of their arguments in the full parameter vector.
    qnames : list of str
        Full parameter vector (all model-function arguments, length q).
    free, fixed : list of str
        Independent parameters that vary (``theta``, length p) / are fixed (``phi``).
    A_free, A_fixed, c : ndarray
        ``P = theta @ A_free.T + phi @ A_fixed.T + c`` (affine links).
    lo, hi : ndarray (p,)
        Bounds of the free parameters.
    """

    def __init__(self, model, params):
        self.model = model
        self.params = params.copy()  # own interpreter: expressions are evaluated on arrays
        # lmfit's derived expressions use max()/min() on scalars; make them elementwise for arrays
        self.params._asteval.symtable["max"] = _elementwise(max, np.maximum)
        self.params._asteval.symtable["min"] = _elementwise(min, np.minimum)
        self.comps = []
        for kind, comp in _components(model):
            pre = comp.prefix
            if kind == "polynomial":
                names = [f"{pre}c{i}" for i in range(comp.poly_degree + 1)]
            else:
                from ._batch_kernels import PARAMS

                names = [pre + n for n in PARAMS[kind]]
            for n in names:
                if n not in params:
                    raise NotBatchable(f"parameter {n!r} of component {comp.name} missing from params")
            self.comps.append((kind, pre, names))
        self.qnames = [n for _, _, names in self.comps for n in names]
        self.kinds = [k for k, _, _ in self.comps]
        self.npars = np.array([len(n) for _, _, n in self.comps], np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.npars)[:-1]]).astype(np.int64)
        self.indep = [n for n, p in params.items() if not p.expr]
        self.free = [n for n in self.indep if params[n].vary]
        self.fixed = [n for n in self.indep if not params[n].vary]
        self.exprs = [n for n, p in params.items() if p.expr]
        if not self.free:
            raise NotBatchable("no parameter varies")
        self.lo = np.array([params[n].min for n in self.free], float)
        self.hi = np.array([params[n].max for n in self.free], float)
        self._affine()
        from ._batch_kernels import CODE, NUMPY_ONLY

        self.codes = np.array([CODE[k] for k in self.kinds], np.int64)
        self.numba_ok = not (set(self.kinds) & NUMPY_ONLY)

    # ---------------------------------------------------------------- expressions
    def eval_all(self, values: dict) -> dict:
        """Evaluate every expression parameter with lmfit's interpreter on arrays of values.

        ``values`` maps independent names to arrays of shape (n,); returns all names -> arrays.
        Expressions that do not vectorise (e.g. ``max()`` on arrays) are evaluated dataset by dataset.
        """
        ast = self.params._asteval
        out = dict(values)
        for n, v in values.items():
            ast.symtable[n] = v
        todo = list(self.exprs)
        for _ in range(len(todo) + 1):
            if not todo:
                break
            left = []
            for n in todo:
                expr = self.params[n].expr
                deps = _expr_names(ast, expr)
                if any(d in self.params and d not in out for d in deps):
                    left.append(n)
                    continue
                out[n] = self._eval_expr(ast, expr, out)
                ast.symtable[n] = out[n]
            todo = left
        for n in todo:  # circular / unresolved
            out[n] = np.full_like(next(iter(values.values())), np.nan, dtype=float)
        return out

    @staticmethod
    def _eval_expr(ast, expr, env):
        nn = len(next(iter(env.values())))
        ast.error = []
        try:
            val = ast.eval(expr, show_errors=False, raise_errors=True)
            if not ast.error:
                val = np.asarray(val, dtype=float)
                if val.shape in ((), (nn,)):
                    return np.broadcast_to(val, (nn,)).astype(float)
        except Exception:
            pass
        ast.error = []
        res = np.full(nn, np.nan)
        saved = {k: v for k, v in env.items()}
        for i in range(nn):
            for k, v in saved.items():
                ast.symtable[k] = float(v[i])
            try:
                res[i] = float(np.real(ast.eval(expr, show_errors=False, raise_errors=True)))
            except Exception:
                res[i] = np.nan
            ast.error = []
        for k, v in saved.items():
            ast.symtable[k] = v
        return res

    def _affine(self):
        """Probe the expressions of model arguments: ``P = A [theta, phi] + c`` or NotBatchable."""
        indep = self.indep
        v0 = np.array([_finite(self.params[n].value) for n in indep], float)
        h = np.maximum(np.abs(v0) * 1e-3, 1e-3)
        rng = np.random.default_rng(0)
        # columns: base, +h_j for each j, and a random far point to check affinity
        pts = [v0] + [v0 + h[j] * np.eye(len(indep))[j] for j in range(len(indep))]
        far = v0 + h * 37.0 * rng.uniform(-1, 1, len(indep))
        pts.append(far)
        vals = np.array(pts).T  # (n_indep, npts)
        out = self.eval_all({n: vals[k] for k, n in enumerate(indep)})
        Q = np.array([out[n] for n in self.qnames])  # (q, npts)
        if not np.all(np.isfinite(Q)):
            raise NotBatchable("an expression of a model parameter could not be evaluated")
        A = (Q[:, 1:1 + len(indep)] - Q[:, :1]) / h[None, :]
        A[np.abs(A) < 1e-9] = 0.0
        c = Q[:, 0] - A @ v0
        pred = A @ far + c
        scale = np.maximum(np.abs(Q[:, -1]), 1e-12)
        if np.any(np.abs(pred - Q[:, -1]) > 1e-6 * scale + 1e-9 * np.abs(A) @ np.abs(far)):
            bad = [self.qnames[i] for i in np.nonzero(np.abs(pred - Q[:, -1]) > 1e-6 * scale)[0]]
            raise NotBatchable(f"non-affine expressions for {bad}")
        fi = [indep.index(n) for n in self.free]
        xi = [indep.index(n) for n in self.fixed]
        self.A_free, self.A_fixed, self.c = A[:, fi], A[:, xi], c

    def full(self, theta, phi):
        return theta @ self.A_free.T + phi @ self.A_fixed.T + self.c


def _elementwise(scalar, ufunc):
    def f(*args):
        if len(args) == 2 and any(np.ndim(a) for a in args):
            return ufunc(*args)
        return scalar(*args)

    return f


def _finite(v):
    v = float(v) if v is not None else 0.0
    return v if math.isfinite(v) else 0.0


def _expr_names(ast, expr):
    import ast as pyast

    try:
        tree = pyast.parse(expr)
    except SyntaxError:
        return set()
    return {node.id for node in pyast.walk(tree) if isinstance(node, pyast.Name)}


def _components(model):
    """Flatten an additive lmfit model into ``[(kind, component_model)]`` or raise NotBatchable."""
    import lmfit

    from . import components as C

    if isinstance(model, lmfit.model.CompositeModel):
        if model.op is not operator.add:
            raise NotBatchable(f"composite operator {model.op.__name__} (only + is batched)")
        return _components(model.left) + _components(model.right)
    if list(model.independent_vars) != ["x"]:
        raise NotBatchable(f"independent variables {model.independent_vars}")
    if isinstance(model, lmfit.models.PolynomialModel):
        return [("polynomial", model)]
    func = model.func
    hook = getattr(func, "batch_kernel", None)  # (kind, params, numpy_func) declared by the function's module
    if hook is not None and func not in _REGISTERED:
        register_kernel(hook[0], func, hook[1], hook[2])
    if func in _REGISTERED:
        return [(_REGISTERED[func], model)]
    if func in C.KNOWN_FUNCS:
        return [(C.KNOWN_FUNCS[func], model)]
    if getattr(func, "__module__", "") in ("lmfit.lineshapes", "lmfit.models") and func.__name__ in _LMFIT_KINDS:
        return [(_LMFIT_KINDS[func.__name__], model)]
    raise NotBatchable(f"unknown component function {getattr(func, '__name__', func)!r}")


def compile_model(model, params) -> BatchModel:
    """Compile an lmfit model + Parameters; raises :class:`NotBatchable` with the reason."""
    return BatchModel(model, params)


# ====================================================================== evaluation (chi2, JtJ, Jtr)
class _Evaluator:
    def __init__(self, bm: BatchModel, x, Y, W):
        from . import _batch_kernels as K

        self.K, self.bm, self.x, self.Y, self.W = K, bm, x, Y, W
        self.use_numba = bm.numba_ok and K.HAVE_NUMBA
        # the numpy path returns the normal equations in the free parameters (A^T J^T J A, from J A):
        # with tied satellites the model has many more parameters than free ones (an NMR spectrum with
        # sidebands: ~150 vs 20), and J^T J over all of them cost ~10x the model and its Jacobian
        self.projects = not self.use_numba

    def __call__(self, rows, P, want=True):
        """chi^2 (n,), J^T J (n, q, q), J^T r (n, q) of datasets ``rows`` at full parameters ``P``
        (numpy path, ``projects``: (n, p, p), (n, p) in the free parameters)."""
        bm, n, q = self.bm, len(rows), P.shape[1]
        if self.use_numba:
            cost, JtJ, Jtr = np.zeros(n), np.zeros((n, q, q)), np.zeros((n, q))
            with self.K.KERNEL_LOCK:  # workqueue threading layer: one parallel launch at a time
                self.K.normal_kernel(self.x, self.Y, self.W, rows.astype(np.int64), np.ascontiguousarray(P),
                                     bm.codes, bm.offsets, bm.npars, want, cost, JtJ, Jtr)
            return (cost, JtJ, Jtr) if want else (cost, None, None)
        if want and self.projects:
            val, J = _eval_projected(self.K, bm, self.x, P)
        else:
            val, J, _ = self.K.eval_components(bm.kinds, bm.offsets, bm.npars, self.x, P, jac=want)
        W = self.W if self.W.shape[0] == 1 else self.W[rows]
        R = W * (self.Y[rows] - val)
        cost = np.einsum("nm,nm->n", R, R)
        if not want:
            return cost, None, None
        J = J.transpose(0, 2, 1) * W[:, None, :]  # (n, p, m): batched BLAS products
        return cost, np.matmul(J, J.transpose(0, 2, 1)), np.matmul(J, R[:, :, None])[:, :, 0]


def _eval_projected(K, bm: BatchModel, x, P):
    """Numpy path: model value ``(n, m)`` and its Jacobian in the free parameters ``(n, m, p)`` =
    ``J A_free``, accumulated component by component (each derivative array goes only to the free
    parameters its model parameter depends on): the full ``(n, m, q)`` Jacobian of a model with many
    tied satellites is never built (:func:`._batch_kernels.eval_components` is the full one)."""
    n, q = P.shape
    xr = np.asarray(x, float)[None, :]
    A = bm.A_free
    val = np.zeros((n, xr.shape[1]))
    J = np.zeros((n, xr.shape[1], A.shape[1]))
    for kind, o, k in zip(bm.kinds, bm.offsets, bm.npars):
        args = [P[:, o + j, None] for j in range(k)]
        out = K.d_polynomial(xr, args) if kind == "polynomial" else K.NUMPY_FUNCS[kind](xr, *args)
        val += np.broadcast_to(out[0], val.shape)
        for j in range(k):
            a = A[o + j]
            for c in np.nonzero(a)[0]:
                J[:, :, c] += a[c] * np.broadcast_to(out[1 + j], val.shape)
    return val, J


def _selection(A):
    """True if ``A`` is the identity, the row indices if it only selects rows (fixed params), else None."""
    q, p = A.shape
    if q == p and np.array_equal(A, np.eye(p)):
        return True
    nz = A != 0
    if np.all(A[nz] == 1) and np.all(nz.sum(axis=0) == 1) and np.all(nz.sum(axis=1) <= 1):
        return np.argmax(nz, axis=0)
    return None


def _solve_scaled(H, g):
    """Solve ``H d = g`` for stacks with Jacobi scaling (parameters differ by many decades)."""
    d = np.sqrt(np.maximum(np.einsum("nii->ni", H), 1e-300))
    Hs = H / d[:, :, None] / d[:, None, :]
    try:
        s = np.linalg.solve(Hs, (g / d)[..., None])[..., 0]
    except np.linalg.LinAlgError:
        s = np.empty_like(g)
        for i in range(len(g)):
            s[i] = np.linalg.lstsq(Hs[i], g[i] / d[i], rcond=None)[0]
    return s / d


def _inv_scaled(H):
    """Inverses of a stack of J^T J (Jacobi-scaled); NaN where (numerically) singular."""
    d = np.sqrt(np.maximum(np.einsum("nii->ni", H), 1e-300))
    Hs = H / d[:, :, None] / d[:, None, :]
    C = np.full_like(H, np.nan)
    finite = np.isfinite(Hs).all(axis=(1, 2))
    if finite.any():
        good = np.nonzero(finite)[0]
        cond = np.linalg.cond(Hs[good])
        good = good[cond < 1e14]  # pinv would hide a singular (non-identifiable) model
        if good.size:
            C[good] = np.linalg.inv(Hs[good])
    return C / d[:, :, None] / d[:, None, :]


def levenberg_marquardt(bm: BatchModel, ev, rows, theta, phi, max_iter, tol):
    """The engine's Levenberg–Marquardt on datasets ``rows`` from ``theta`` (n, p).

    Public for models with their own evaluator (:mod:`specproc.fitting.cnls`, complex impedances):
    ``ev(rows, P) -> (cost (n,), JtJ (n, q, q), Jtr (n, q))`` at full parameter vectors ``P``
    (n, q); ``phi`` holds the fixed parameters (an ``ev`` whose ``projects`` attribute is true returns
    them in the free parameters already: ``(n, p, p)``, ``(n, p)``). Returns a dict of arrays.
    """
    n, p = theta.shape
    lo, hi = bm.lo, bm.hi
    theta = np.clip(theta, lo, hi)
    A = bm.A_free
    base = phi @ bm.A_fixed.T + bm.c

    sel = _selection(A)

    def evaluate(idx, th):
        cost, JtJ, Jtr = ev(rows[idx], th @ A.T + base[idx])
        if getattr(ev, "projects", False) or JtJ is None:  # already in the free parameters (or no Jacobian)
            return cost, JtJ, Jtr
        if sel is None:  # general affine links: A^T (J^T J) A
            return cost, np.matmul(np.matmul(A.T, JtJ), A), Jtr @ A
        if sel is True:  # every model parameter is free
            return cost, JtJ, Jtr
        return cost, JtJ[:, sel][:, :, sel], Jtr[:, sel]

    allidx = np.arange(n)
    cost, H, g = evaluate(allidx, theta)
    nfev = np.ones(n, np.int64)
    lam = np.full(n, 1e-5)  # x diag(J^T J): start close to Gauss-Newton; Nielsen's rule raises it
    nu = np.full(n, 2.0)
    D = np.maximum(np.einsum("nii->ni", H), 1e-300)
    done = ~np.isfinite(cost)
    success = np.zeros(n, bool)
    for _ in range(max_iter):
        idx = np.nonzero(~done)[0]
        if idx.size == 0:
            break
        Hi, gi, th = H[idx], g[idx], theta[idx]
        D[idx] = np.maximum(D[idx], np.einsum("nii->ni", Hi))
        frozen = ((th <= lo) & (gi < 0)) | ((th >= hi) & (gi > 0))
        M = Hi + lam[idx, None, None] * (D[idx][:, :, None] * np.eye(p))
        if frozen.any():
            M = M.copy()
            gi = np.where(frozen, 0.0, gi)
            fr = frozen[:, :, None] | frozen[:, None, :]
            M[fr] = 0.0
            M[:, np.arange(p), np.arange(p)] += frozen * D[idx]
        step = _solve_scaled(M, gi)
        new = np.clip(th + step, lo, hi)
        step = new - th
        hmat = Hi if not frozen.any() else np.where(frozen[:, :, None] | frozen[:, None, :], 0.0, Hi)
        pred = 2 * np.einsum("ni,ni->n", step, gi) - np.einsum("ni,nij,nj->n", step, hmat, step)
        # converged before evaluating the trial point: near Gauss-Newton (small lambda) the quadratic
        # model's predicted reduction is the reduction left; if it is below tol, stop (saves one
        # model + Jacobian evaluation per dataset)
        sd = np.sqrt(D[idx])
        xnorm = np.linalg.norm(sd * th, axis=1)
        snorm = np.linalg.norm(sd * step, axis=1)
        c0 = cost[idx]
        pre = ((lam[idx] <= 1e-2) & np.isfinite(c0) & (pred >= 0)
               & ((pred <= tol * c0) | (snorm <= tol * np.maximum(xnorm, 1e-300))))
        if pre.any():
            success[idx[pre]] = True
            done[idx[pre]] = True
            keep = ~pre
            idx, th, gi, step, new, pred = idx[keep], th[keep], gi[keep], step[keep], new[keep], pred[keep]
            sd, xnorm, snorm, c0 = sd[keep], xnorm[keep], snorm[keep], c0[keep]
            if idx.size == 0:
                continue
        cnew, Hn, gn = evaluate(idx, new)
        nfev[idx] += 1
        actual = c0 - cnew
        ok = np.isfinite(cnew) & (actual > 0)
        rho = np.where(pred > 0, actual / np.where(pred > 0, pred, 1.0), 0.0)
        # convergence tests use the state before the update
        rel_a = np.abs(actual) / np.maximum(c0, 1e-300)
        rel_p = np.abs(pred) / np.maximum(c0, 1e-300)
        conv = ok & (((rel_a <= tol) & (rel_p <= tol)) | (snorm <= tol * np.maximum(xnorm, 1e-300)))
        conv |= ~ok & np.isfinite(c0) & ((rel_p <= tol) | (snorm <= tol * np.maximum(xnorm, 1e-300)))
        conv |= (c0 == 0)
        a = idx[ok]
        theta[a], cost[a], H[a], g[a] = new[ok], cnew[ok], Hn[ok], gn[ok]
        lam[a] *= np.maximum(1 / 3, 1 - (2 * rho[ok] - 1) ** 3)
        nu[a] = 2.0
        r = idx[~ok]
        lam[r] *= nu[r]
        nu[r] *= 2
        stuck = lam[idx] > 1e16
        success[idx[conv]] = True
        done[idx[conv | stuck]] = True
        done[~np.isfinite(cost)] = True
    return dict(theta=theta, cost=cost, H=H, success=success & np.isfinite(cost), nfev=nfev)


# ====================================================================== data preparation
def _prepare(x, Y, dims, coords):
    try:
        import xarray as xr
    except ImportError:  # pragma: no cover
        xr = None
    if xr is not None and isinstance(Y, xr.DataArray):
        sdims = tuple(Y.dims[:-1])
        if x is None:
            x = Y[Y.dims[-1]].values
        cds = {k: v for k, v in Y.coords.items() if set(v.dims) <= set(sdims) and v.dims}
        if coords:
            cds.update(coords)
        Yv = Y.values
        dims = sdims
        coords = cds
    else:
        Yv = np.asarray(Y)
        if dims is None:
            nd = Yv.ndim - 1
            dims = ("dataset",) if nd == 1 else tuple(f"dim_{i}" for i in range(nd))
        dims = tuple(dims)
        coords = dict(coords or {})
    if x is None:
        raise ParameterError("fit_batch: x is required for a plain array Y")
    x = np.asarray(x, float)
    if Yv.ndim < 1 or Yv.shape[-1] != x.shape[0] or x.ndim != 1:
        raise ParameterError(f"fit_batch: Y has shape {Yv.shape}, its last axis must match x ({x.shape})")
    stack = Yv.shape[:-1]
    if len(dims) != len(stack):
        raise ParameterError(f"fit_batch: dims {dims} do not match the stack shape {stack}")
    if not np.issubdtype(Yv.dtype, np.number) or np.iscomplexobj(Yv):
        raise ParameterError("fit_batch: Y must be real numbers")
    return x, Yv.reshape(-1, x.shape[0]), stack, dims, coords


def _params_for(model, x, Yf, params):
    from .models import ModelSpec

    # mean of the finite datasets, in blocks (Y may be a large spectrum image)
    tot, cnt = np.zeros(Yf.shape[1]), 0
    for s in range(0, Yf.shape[0], 1024):
        blk = np.asarray(Yf[s:s + 1024], float)
        good = np.isfinite(blk).all(axis=1)
        tot += blk[good].sum(axis=0)
        cnt += int(good.sum())
    ymean = tot / max(cnt, 1)
    if isinstance(model, ModelSpec):
        lm, p0 = model.to_lmfit(x, ymean)
        return lm, (params if params is not None else p0)
    import lmfit

    if not isinstance(model, lmfit.Model):
        raise ParameterError(f"fit_batch: model must be a ModelSpec or an lmfit Model, not {type(model).__name__}")
    if params is None:
        try:
            params = model.guess(ymean, x=x)
        except Exception:
            params = model.make_params()
        for par in params.values():
            if par.expr is None and not math.isfinite(par.value):
                par.set(value=0.0)
    return model, params


# ====================================================================== public API
def default_params(model, x, Y):
    """The start :func:`fit_batch` makes when no ``params`` are given: the model's parameters on the mean
    of the finite rows of ``Y`` (a ModelSpec's ``to_lmfit``; an lmfit Model's ``guess``)."""
    Y = np.asarray(Y, float)
    return _params_for(model, np.asarray(x, float), Y.reshape(-1, Y.shape[-1]), None)[1]


def fit_batch(model, x, Y, *, params=None, init=None, weights=None, max_iter=200, tol=1e-10, chunk_size=None,
              n_jobs=None, warm_start=False, dims=None, coords=None, method="auto", expr_errors=True,
              start="given", noise_stats=True):
    """Fit one model to every dataset of a stack (spectra, map of spectra, force-curve map).

    Parameters
    ----------
    model : ModelSpec or lmfit.Model
        A :class:`~specproc.fitting.models.ModelSpec` or an lmfit (composite) model of known components.
    x : array (m,) or None
        Signal axis (axis units). ``None`` takes the last coordinate of a DataArray ``Y``.
    Y : array (..., m) or xarray.DataArray
        Stack of datasets; the last dim is the signal axis. Its stack dims are kept in the output.
    params : lmfit.Parameters, optional
        Initial values, bounds, ``vary``, ``expr``. Default: ``model.to_lmfit(x, mean(Y))`` for a
        ModelSpec, ``model.guess`` (else ``make_params``) for an lmfit model.
    init : dict of name -> array, optional
        Per-dataset initial values (array of the stack shape, or flat of length n) of independent params.
    weights : array (m,) or (..., m), optional
        Residual weights like lmfit (``w * (y - f)``), e.g. ``1/sigma``.
    max_iter : int
        Maximum LM iterations per dataset (each one model + Jacobian evaluation).
    tol : float
        Relative tolerance on chi^2 reduction and on the step (see module doc).
    chunk_size : int, optional
        Datasets per chunk (default: from the array sizes, ~512 MiB of working memory; with
        ``warm_start`` one row of the last stack dim).
    n_jobs : int, optional
        Threads (numba / chunk threads) or worker processes (lmfit loop). Default: all cores.
    warm_start : bool
        Fit chunks in raster order, seeding dataset ``j`` of a chunk with the result of dataset ``j``
        of the previous chunk when that fit converged (else with the ordinary initial values).
    start : {"given", "mean"}
        ``"mean"``: fit the mean of the stack first and start each dataset from that optimum where
        it has a lower chi^2 than the given start (each dataset keeps the better of the two). For
        stacks of similar spectra (a series, a map) this saves a quarter of the LM iterations.
    dims, coords : optional
        Names / coordinates of the stack dims of a plain array ``Y``.
    method : {"auto", "batched-lm", "lmfit-loop"}
        ``auto`` batches when the model compiles and falls back to the lmfit loop otherwise.
    expr_errors : bool
        Standard errors of expression parameters that are not model arguments (lmfit's derived
        ``fwhm``/``height``, user sums), by finite differences through lmfit's interpreter; False
        skips them (their values are still computed) when only the fitted parameters are wanted.
    noise_stats : bool
        Estimate each dataset's noise from its residual (``noise_sd``, ``redchi_noise``; one model
        evaluation and :func:`~specproc.fitting.noise.noise_sigma_rows` on the whole stack). False
        leaves them NaN (:func:`~specproc.fitting.fit.fit_spec` measures its own after polishing).

    Returns
    -------
    xarray.Dataset
        One variable per parameter (stack dims), ``<name>_stderr``, ``chisqr``, ``redchi`` (lmfit's:
        a residual variance in data units² when unweighted), ``r2``, ``noise_sd`` (robust noise SD of
        the residual, as ``fit_spec``; NaN for weights that are 1/σ), ``redchi_noise`` (χ²/ν with
        ``noise_sd`` as σ, or the weighted χ²/ν for 1/σ weights: ≈ 1 for a fit down to the noise),
        ``success``, ``nfev``, ``masked``; attrs ``method``, ``n_datasets``, ``n_failed``, ``n_masked``,
        ``timings`` (s: ``compile``, ``fit``, ``noise`` (part of ``fit``), ``total``),
        ``fallback_reason`` when falling back to the lmfit loop and ``fit_errors`` (why lmfit failed on
        some datasets) when it did.
    """
    return fit_batch_compiled(model, x, Y, params=params, init=init, weights=weights, max_iter=max_iter, tol=tol,
                              chunk_size=chunk_size, n_jobs=n_jobs, warm_start=warm_start, dims=dims,
                              coords=coords, method=method, expr_errors=expr_errors, start=start,
                              noise_stats=noise_stats)[0]


def fit_batch_compiled(model, x, Y, *, params=None, init=None, weights=None, max_iter=200, tol=1e-10,
                       chunk_size=None, n_jobs=None, warm_start=False, dims=None, coords=None, method="auto",
                       expr_errors=True, start="given", noise_stats=True):
    """:func:`fit_batch`, also returning the compiled model: ``(Dataset, BatchModel or None)``.

    ``None`` when the lmfit loop ran. :func:`~specproc.fitting.fit.fit_spec` reuses the
    BatchModel (its affine map of the constraints) instead of compiling the model a second time.
    """
    t_start = time.perf_counter()
    method = {"batched": "batched-lm", "lmfit": "lmfit-loop"}.get(method, method)
    if method not in ("auto", "batched-lm", "lmfit-loop"):
        raise ParameterError(f"fit_batch: unknown method {method!r}; one of auto, batched-lm, lmfit-loop")
    if max_iter < 1 or not tol > 0:
        raise ParameterError("fit_batch: max_iter must be >= 1 and tol > 0")
    if start not in ("given", "mean"):
        raise ParameterError(f"fit_batch: start must be 'given' or 'mean', not {start!r}")
    x, Yf, stack, dims, coords = _prepare(x, Y, dims, coords)
    n, m = Yf.shape
    lm_model, params = _params_for(model, x, Yf, params)
    W = _weights(weights, stack, m)
    masked = np.zeros(n, bool)
    for s in range(0, n, 4096):
        masked[s:s + 4096] = ~np.isfinite(Yf[s:s + 4096]).all(axis=1)
    if W.shape[0] > 1:
        masked |= ~np.isfinite(W).all(axis=1)
    elif not np.isfinite(W).all():
        raise ParameterError("fit_batch: weights contain NaN/inf")
    n_jobs = n_jobs or os.cpu_count() or 1
    init = _init_arrays(init, params, n)

    reason = None
    bm = None
    if method != "lmfit-loop":
        try:
            bm = compile_model(lm_model, params)
        except NotBatchable as e:
            if method == "batched-lm":
                raise FitError(f"fit_batch: model cannot be batched: {e}") from None
            reason = str(e)
    timings = {"compile": 0.0}
    if bm is not None:
        res = _run_batched(bm, x, Yf, W, masked, init, max_iter, tol, chunk_size, n_jobs, warm_start, stack,
                           timings, expr_errors, start, noise_stats)
        used = "batched-lm"
    else:
        res = _run_lmfit_loop(lm_model, params, x, Yf, W, masked, init, max_iter, chunk_size, n_jobs)
        used = "lmfit-loop"
    timings["total"] = time.perf_counter() - t_start
    timings["fit"] = timings["total"] - timings["compile"]
    ds = _to_dataset(res, stack, dims, coords, masked)
    ds.attrs.update(method=used, n_datasets=int(n), n_failed=int((~res["success"] & ~masked).sum()),
                    n_masked=int(masked.sum()), timings=timings, compile_s=timings["compile"],
                    fit_s=timings["fit"], total_s=timings["total"])
    if used == "batched-lm" and start == "mean":
        ds.attrs["n_mean_start"] = int(res.get("n_mean_start", 0))  # datasets started from the mean's optimum
    if reason:
        ds.attrs["fallback_reason"] = reason
    if res.get("errors"):  # why lmfit failed on datasets (their values are NaN, success False)
        ds.attrs["fit_errors"] = list(dict.fromkeys(res["errors"]))[:5]
    return ds, bm


def _weights(weights, stack, m):
    if weights is None:
        return np.ones((1, m))
    w = np.asarray(weights, float)
    if w.shape == (m,):
        return w[None, :]
    try:
        return np.broadcast_to(w, stack + (m,)).reshape(-1, m)
    except ValueError:
        raise ParameterError(f"fit_batch: weights of shape {w.shape} do not match Y") from None


def _init_arrays(init, params, n):
    out = {}
    for name, v in (init or {}).items():
        if name not in params:
            raise ParameterError(f"fit_batch: init has unknown parameter {name!r}")
        if params[name].expr:
            raise ParameterError(f"fit_batch: init for {name!r}, which is an expression")
        a = np.asarray(v, float).reshape(-1)
        if a.size == 1:
            a = np.full(n, a[0])
        if a.size != n:
            raise ParameterError(f"fit_batch: init[{name!r}] has {a.size} values for {n} datasets")
        out[name] = a
    return out


def _start_values(bm, init, n):
    th = np.empty((n, len(bm.free)))
    ph = np.empty((n, len(bm.fixed)))
    for j, name in enumerate(bm.free):
        th[:, j] = init.get(name, _finite(bm.params[name].value))
    for j, name in enumerate(bm.fixed):
        ph[:, j] = init.get(name, _finite(bm.params[name].value))
    return th, ph


def _default_chunk(n, m, q, numpy_path, n_jobs):
    per = m * 8 * (2 + (4 * q if numpy_path else 0)) + q * q * 8 * 8
    return int(max(1, min(n, WORK_MEMORY // max(per, 1) // (n_jobs if numpy_path else 1))))


def _better_starts(local, rows, th0, cand, phi, bm):
    """Indices (into ``rows``) where the candidate starts ``cand`` (one per row, or one for all)
    have a lower chi^2 than ``th0``: two evaluations without Jacobian."""
    base = phi[rows] @ bm.A_fixed.T + bm.c
    cand = np.broadcast_to(cand, th0.shape)
    cw = local(rows, cand @ bm.A_free.T + base, want=False)[0]
    cc = local(rows, th0 @ bm.A_free.T + base, want=False)[0]
    return np.nonzero(np.isfinite(cw) & (cw < np.where(np.isfinite(cc), cc, np.inf)))[0]


def _mean_start(bm, x, Yf, W, masked, theta0, phi, max_iter, tol):
    """The optimum of the stack's mean spectrum, or None when that fit did not converge or ended
    with a parameter on a bound (a start there can cost the whole iteration budget)."""
    good = ~masked
    if good.sum() < 2:
        return None
    ym = np.ascontiguousarray(Yf[good].mean(axis=0, dtype=float)[None, :])
    wm = np.ascontiguousarray((W if W.shape[0] == 1 else W[good].mean(axis=0)[None, :]), float)
    first = int(np.argmax(good))
    r = levenberg_marquardt(bm, _Evaluator(bm, x, ym, wm), np.arange(1), theta0[first:first + 1].copy(),
                            phi[first:first + 1], max_iter, tol)
    th = r["theta"][0]
    if not (r["success"][0] and np.isfinite(th).all()):
        return None
    from .uncertainty import on_bound

    return None if any(on_bound(v, lo, hi) for v, lo, hi in zip(th, bm.lo, bm.hi)) else th


def _run_batched(bm, x, Yf, W, masked, init, max_iter, tol, chunk_size, n_jobs, warm_start, stack, timings,
                 expr_errors=True, start="given", noise_stats=True):
    from . import _batch_kernels as K

    n, m = Yf.shape
    p, q = len(bm.free), len(bm.qnames)
    from ._batch_kernels import NUMPY_ONLY

    use_numba = K.HAVE_NUMBA and not (set(bm.kinds) & NUMPY_ONLY)
    if chunk_size is None:
        chunk_size = (stack[-1] if warm_start and stack else _default_chunk(n, m, q, not use_numba, n_jobs))
    chunk_size = max(1, int(chunk_size))
    if use_numba and not K.kernel_is_compiled():
        timings["compile"] = K.warm_up_kernel()
    Yc = Yf if (Yf.dtype == np.float64 and Yf.flags.c_contiguous) or not use_numba else None
    ev = _Evaluator(bm, x, Yc, np.ascontiguousarray(W, float))
    theta0, phi = _start_values(bm, init, n)
    out = dict(theta=np.full((n, p), np.nan), cost=np.full(n, np.nan), H=np.full((n, p, p), np.nan),
               success=np.zeros(n, bool), nfev=np.zeros(n, np.int64))
    starts = list(range(0, n, chunk_size))
    mean_opt = _mean_start(bm, x, Yf, W, masked, theta0, phi, max_iter, tol) if start == "mean" else None
    out["n_mean_start"] = 0

    def chunk_eval(s, e):
        """Evaluator for rows s:e and the row offset to subtract (a converted copy if Y is not C float64)."""
        if not (ev.use_numba and ev.Y is None):
            return ev, 0
        local = _Evaluator(bm, x, np.ascontiguousarray(Yf[s:e], float), ev.W if ev.W.shape[0] == 1
                           else np.ascontiguousarray(ev.W[s:e]))
        return local, s

    def run_chunk(s, th0, cev=None):
        e = min(n, s + chunk_size)
        rows = np.arange(s, e)
        keep = rows[~masked[s:e]]
        if keep.size == 0:
            return s, e, keep, None
        local, off = cev or chunk_eval(s, e)
        r = levenberg_marquardt(bm, local, keep - off, th0[keep - s].copy(), phi[keep], max_iter, tol)
        return s, e, keep, r

    def store(s, e, keep, r):
        if r is None:
            return
        for k in ("theta", "cost", "H", "success", "nfev"):
            out[k][keep] = r[k]

    prev = None
    numba_threads = None
    if ev.use_numba:
        import numba

        numba_threads = numba.get_num_threads()
        numba.set_num_threads(max(1, min(n_jobs, numba.config.NUMBA_NUM_THREADS)))
    try:
        if warm_start or ev.use_numba or n_jobs == 1 or len(starts) == 1:
            for s in starts:
                e = min(n, s + chunk_size)
                th0 = theta0[s:e].copy()
                cev = chunk_eval(s, e)
                if warm_start and prev is not None:
                    ps, pe = prev
                    k = min(e - s, pe - ps)
                    good = out["success"][ps:ps + k] & ~masked[ps:ps + k] & ~masked[s:s + k]
                    if good.any():
                        # seed only where the neighbour converged AND its values start this dataset
                        # better (lower chi^2) than the ordinary initial values: a fit that converged
                        # on garbage (a bad pixel) is never propagated
                        rows = np.arange(s, s + k)[good]
                        warm = np.clip(out["theta"][ps:ps + k][good], bm.lo, bm.hi)
                        local, off = cev
                        better = _better_starts(local, rows - off, th0[:k][good], warm, phi, bm)
                        th0[np.nonzero(good)[0][better]] = warm[better]
                if mean_opt is not None:
                    local, off = cev
                    rows = np.arange(s, e)[~masked[s:e]]
                    if rows.size:
                        better = _better_starts(local, rows - off, th0[rows - s], mean_opt, phi, bm)
                        th0[rows[better] - s] = mean_opt
                        out["n_mean_start"] += int(better.size)
                store(*run_chunk(s, th0, cev))
                prev = (s, e)
        else:  # numpy path: numpy releases the GIL in the big array operations -> threads over chunks
            if mean_opt is not None:  # the numpy path: the whole stack's starts at once
                rows = np.nonzero(~masked)[0]
                better = _better_starts(ev, rows, theta0[rows], mean_opt, phi, bm)
                theta0[rows[better]] = mean_opt
                out["n_mean_start"] = int(better.size)
            with ThreadPoolExecutor(max_workers=n_jobs) as pool:
                futs = [pool.submit(run_chunk, s, theta0[s:min(n, s + chunk_size)].copy()) for s in starts]
                for f in futs:
                    store(*f.result())
    finally:
        if numba_threads is not None:
            import numba

            numba.set_num_threads(numba_threads)
    res = _finish(bm, out, phi, masked, Yf, W, m, expr_errors)
    res["n_mean_start"] = out["n_mean_start"]
    if not noise_stats:
        res["noise_sd"] = res["redchi_noise"] = np.full(n, np.nan)
        return res
    t0 = time.perf_counter()
    ok = ~masked & np.isfinite(res["chisqr"])

    Yk = (Yf if Yc is not None else np.ascontiguousarray(Yf, float)) if use_numba else None

    def residuals(rows):
        """Unweighted residuals of datasets ``rows`` at the optimum: the fit's own compiled model
        (no Jacobian, parallel over datasets), else the numpy components."""
        P = np.ascontiguousarray(bm.full(out["theta"][rows], phi[rows]))
        if use_numba:
            R = np.empty((len(rows), m))
            with K.KERNEL_LOCK:
                K.residual_kernel(x, Yk, rows.astype(np.int64), P, bm.codes, bm.offsets, bm.npars, R)
            return R
        return np.asarray(Yf[rows], float) - K.eval_components(bm.kinds, bm.offsets, bm.npars, x, P, jac=False)[0]

    res["noise_sd"], res["redchi_noise"] = _noise_stats(residuals, Yf, W, ok, res["chisqr"], p)
    timings["noise"] = time.perf_counter() - t0
    return res


def _is_mask(W) -> bool:
    """Weights that are a 0/1 mask (select points) rather than 1/σ."""
    return bool(np.all((W == 0) | (W == 1)))


def _noise_stats(residuals, Yf, W, ok, chisqr, nvarys: int, block: int = 1 << 20):
    """``noise_sd`` and ``redchi_noise`` of every dataset, as :func:`specproc.fitting.fit.fit_spec`
    has them for one spectrum: χ²/ν with the robust noise SD of the residual as σ
    (:func:`~specproc.fitting.noise.noise_sigma_rows`, all datasets at once) — ≈ 1 for a fit down to
    the noise. Weights that are a 0/1 mask select the points (the residual's noise is measured on
    them); other weights are taken as 1/σ: the weighted χ²/ν is already normalised (``noise_sd`` NaN).

    ``residuals(rows) -> (len(rows), m)`` data minus model; evaluated in blocks of rows (bounded memory).
    """
    from .noise import noise_sigma_rows

    n, m = Yf.shape
    sd = np.full(n, np.nan)
    m_eff = (np.full(n, float(m)) if W.shape[0] == 1 and np.all(W != 0)
             else np.broadcast_to(np.count_nonzero(W != 0, axis=-1), (n,)).astype(float))
    nu = m_eff - nvarys
    with np.errstate(divide="ignore", invalid="ignore"):
        if not _is_mask(W):
            return sd, np.where(ok & (nu > 0), chisqr / np.where(nu > 0, nu, 1.0), np.nan)
        sel = W[0] != 0 if W.shape[0] == 1 else None
        step = max(1, block // max(m, 1))
        for s in range(0, n, step):
            rows = np.arange(s, min(n, s + step))
            rows = rows[ok[rows]]
            if not rows.size:
                continue
            R = residuals(rows)
            if sel is not None:     # one mask for all: its points, in order
                sd[rows] = noise_sigma_rows(R if sel.all() else R[:, sel]) if sel.sum() >= 3 else np.nan
                continue
            # a mask per dataset: the datasets sharing a mask together (a loop over masks, not datasets)
            masks, inv = np.unique(W[rows] != 0, axis=0, return_inverse=True)
            for j, mk in enumerate(masks):
                grp = np.nonzero(inv.ravel() == j)[0]
                sd[rows[grp]] = noise_sigma_rows(R[grp][:, mk]) if mk.sum() >= 3 else np.nan
        good = ok & (nu > 0) & np.isfinite(sd) & (sd > 1e-300)
        redchi_noise = np.where(good, chisqr / (np.where(nu > 0, nu, 1.0) * sd * sd), np.nan)
    return np.where(good, sd, np.nan), redchi_noise


def _finish(bm, out, phi, masked, Yf, W, m, expr_errors=True):
    """Parameter values, standard errors and statistics from the LM state of every dataset."""
    n, p = out["theta"].shape
    theta, H = out["theta"], out["H"]
    ok = ~masked & np.isfinite(out["cost"])
    chisqr = np.where(ok, out["cost"], np.nan)
    # points with zero weight (masked ranges) carry no information: they are not data points
    if W is not None:
        m_eff = np.broadcast_to(np.count_nonzero(np.asarray(W) != 0, axis=-1), (n,)).astype(float)
    else:
        m_eff = np.full(n, float(m))
    nfree = m_eff - p
    with np.errstate(divide="ignore", invalid="ignore"):
        redchi = np.where(nfree > 0, chisqr / np.where(nfree > 0, nfree, 1.0), np.nan)
    cov = np.full((n, p, p), np.nan)
    if ok.any():
        cov[ok] = _inv_scaled(H[ok]) * redchi[ok, None, None]
    # values of every parameter (independent + expressions)
    vals = {name: theta[:, j] for j, name in enumerate(bm.free)}
    vals.update({name: phi[:, j] for j, name in enumerate(bm.fixed)})
    stderr = {name: np.sqrt(np.maximum(np.einsum("nii->ni", cov)[:, j], 0)) for j, name in enumerate(bm.free)}
    for name in bm.fixed:
        stderr[name] = np.where(ok, 0.0, np.nan)
    # expressions on model arguments are affine (compiled): values and gradients from P = A theta + c,
    # no interpreter call; the others (lmfit's derived fwhm/height, user sums) through lmfit's
    # interpreter with a finite-difference gradient wrt the free parameters
    qidx = {name: i for i, name in enumerate(bm.qnames)}
    affine = [e for e in bm.exprs if e in qidx]
    other = [e for e in bm.exprs if e not in qidx]
    allv = dict(vals)
    if affine:
        P = bm.full(theta, phi)
        for e in affine:
            i = qidx[e]
            allv[e] = P[:, i]
            g = bm.A_free[i]
            stderr[e] = np.sqrt(np.maximum(np.einsum("i,nij,j->n", g, cov, g), 0))
    if other and not expr_errors:
        allv = bm.eval_all(vals)
        for e in other:
            stderr[e] = np.full(n, np.nan)
    elif other:
        allv = bm.eval_all(vals)
        grads = {e: np.zeros((n, p)) for e in other}
        for j, name in enumerate(bm.free):
            h = np.maximum(np.abs(theta[:, j]) * 1e-6, 1e-10)
            pv = dict(vals)
            pv[name] = theta[:, j] + h
            up = bm.eval_all(pv)
            for e in other:
                grads[e][:, j] = (up[e] - allv[e]) / h
        bm.eval_all(vals)
        for e in other:
            gr = grads[e]
            stderr[e] = np.sqrt(np.maximum(np.einsum("ni,nij,nj->n", gr, cov, gr), 0))
    # r2 like lmfit: 1 - chisqr / sum (w (y - mean y))^2, in blocks to keep the memory bounded
    sst = np.full(n, np.nan)
    for s in range(0, n, 1024):
        blk = np.arange(s, min(n, s + 1024))
        blk = blk[ok[blk]]
        if blk.size:
            Yb = np.asarray(Yf[blk], float)
            dev = Yb - Yb.mean(axis=1, keepdims=True)
            dev *= W if W.shape[0] == 1 else W[blk]
            sst[blk] = np.einsum("nm,nm->n", dev, dev)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = 1 - chisqr / sst
    res = dict(values={k: np.where(ok, np.asarray(v, float), np.nan) for k, v in allv.items()},
               stderr={k: np.where(ok, v, np.nan) for k, v in stderr.items()}, chisqr=chisqr, redchi=redchi,
               r2=r2, success=out["success"] & ok & np.isfinite(theta).all(axis=1), nfev=out["nfev"],
               order=list(bm.params.keys()), covar=cov, free=list(bm.free))
    return res


def _to_dataset(res, stack, dims, coords, masked):
    import xarray as xr

    from ..core.measurement import variable

    def shaped(a):
        return variable(dims, np.asarray(a).reshape(stack))

    data = {}
    for name in res["order"]:
        data[name] = shaped(res["values"][name])
        data[name + "_stderr"] = shaped(res["stderr"].get(name, np.full(masked.shape, np.nan)))
    for k in ("chisqr", "redchi", "r2", "noise_sd", "redchi_noise"):
        data[k] = shaped(np.where(masked, np.nan, res[k]))
    data["success"] = shaped(res["success"] & ~masked)
    data["nfev"] = shaped(np.where(masked, 0, res["nfev"]))
    data["masked"] = shaped(masked)
    ds = xr.Dataset(data, coords={k: v for k, v in coords.items()})
    if res.get("covar") is not None and len(masked) == 1:
        # a stack of one (fit_spec): the full covariance of the free parameters, in attrs order
        ds["covar"] = variable(("free_i", "free_j"), np.asarray(res["covar"][0], float))
        ds.attrs["free"] = list(res["free"])
    return ds


# ====================================================================== lmfit loop (fallback)
def _lmfit_chunk(model, params, x, Y, W, init_rows, max_nfev):
    """Fit each row of ``Y`` with lmfit (worker function; module-level so processes can pickle it)."""
    from .models import unfreeze_centers

    names = list(params.keys())
    n = Y.shape[0]
    vals = np.full((n, len(names)), np.nan)
    errs = np.full((n, len(names)), np.nan)
    stats = np.full((n, 7), np.nan)  # chisqr, redchi, r2, success, nfev, noise_sd, redchi_noise
    errors: list[str] = []
    for i in range(n):
        p = params.copy()
        for k, v in init_rows.items():
            p[k].set(value=float(v[i]))
        unfreeze_centers(p)  # a per-dataset start on the midpoint of its bounds freezes leastsq
        w = None if W is None else (W[0] if W.shape[0] == 1 else W[i])
        try:
            r = model.fit(Y[i], p, x=x, weights=w, max_nfev=max_nfev)
        except Exception as exc:  # this dataset is reported failed (NaN values), with the reason
            stats[i, 3] = 0
            errors.append(f"{type(exc).__name__}: {exc}"[:300])
            continue
        for j, k in enumerate(names):
            vals[i, j] = r.params[k].value
            se = r.params[k].stderr
            errs[i, j] = np.nan if se is None else se
        r2 = getattr(r, "rsquared", np.nan)
        sd, rn = _noise_stats(lambda rows: Y[i:i + 1] - np.asarray(r.best_fit, float)[None, :], Y[i:i + 1],
                              np.ones((1, Y.shape[1])) if w is None else np.asarray(w, float)[None, :],
                              np.isfinite([r.chisqr]), np.array([r.chisqr], float), int(r.nvarys))
        stats[i] = (r.chisqr, r.redchi, r2, float(bool(r.success)), r.nfev, sd[0], rn[0])
    return vals, errs, stats, errors


def _run_lmfit_loop(model, params, x, Yf, W, masked, init, max_iter, chunk_size, n_jobs):
    from concurrent.futures import ProcessPoolExecutor
    import multiprocessing as mp

    n = Yf.shape[0]
    names = list(params.keys())
    vals = np.full((n, len(names)), np.nan)
    errs = np.full((n, len(names)), np.nan)
    stats = np.full((n, 7), np.nan)
    idx = np.nonzero(~masked)[0]
    nvary = sum(p.vary for p in params.values())
    max_nfev = max_iter * (nvary + 1)
    Wsh = None if (W.shape[0] == 1 and np.all(W == 1)) else W
    if chunk_size is None:
        chunk_size = max(1, math.ceil(idx.size / (4 * n_jobs)))
    pieces = [idx[i:i + chunk_size] for i in range(0, idx.size, chunk_size)]

    def args(rows):
        w = None if Wsh is None else (Wsh if Wsh.shape[0] == 1 else Wsh[rows])
        return (model, params, x, np.ascontiguousarray(Yf[rows], float), w,
                {k: v[rows] for k, v in init.items()}, max_nfev)

    payload = None
    # worker processes cost ~seconds to start (imports): only worth it for large stacks
    if n_jobs > 1 and idx.size >= 256 and len(pieces) > 1:
        try:  # lmfit models hold local functions: plain pickle fails, cloudpickle (a dask dependency) works
            import cloudpickle

            payload = cloudpickle.dumps((model, params))
        except Exception:
            payload = None
    if payload is not None:
        # spawn: forking a process that runs numba/BLAS threads can deadlock
        with ProcessPoolExecutor(max_workers=n_jobs, mp_context=mp.get_context("spawn")) as pool:
            results = list(pool.map(_lmfit_chunk_pickled, [(payload,) + args(r)[2:] for r in pieces]))
    else:
        # in this thread: lmfit's fits hold the GIL (MINPACK calls back into Python for every
        # residual), so threads gained little, and a threaded loop gave a NaN pattern now and then
        # on a loaded CI machine (lmfit / asteval objects are not made for concurrent use)
        results = [_lmfit_chunk(*args(r)) for r in pieces]
    fit_errors: list[str] = []
    for rows, (v, e, s, msgs) in zip(pieces, results):
        vals[rows], errs[rows], stats[rows] = v, e, s
        fit_errors += msgs
    success = np.nan_to_num(stats[:, 3]).astype(bool) & ~masked
    return dict(values={k: vals[:, j] for j, k in enumerate(names)},
                stderr={k: errs[:, j] for j, k in enumerate(names)}, chisqr=stats[:, 0], redchi=stats[:, 1],
                r2=stats[:, 2], success=success, nfev=np.nan_to_num(stats[:, 4]).astype(np.int64), order=names,
                errors=fit_errors, noise_sd=stats[:, 5], redchi_noise=stats[:, 6])


def _lmfit_chunk_pickled(a):
    import cloudpickle

    model, params = cloudpickle.loads(a[0])
    return _lmfit_chunk(model, params, *a[1:])


# ====================================================================== evaluation for plots
def evaluate_batch(model, x, ds, params=None, *, components=False):
    """Best-fit curves of a :func:`fit_batch` result.

    Parameters
    ----------
    model : ModelSpec or lmfit.Model
        The model that was fitted.
    x : array (m,)
        Signal axis.
    ds : xarray.Dataset
        Output of :func:`fit_batch`.
    params : lmfit.Parameters, optional
        Parameters used for the fit (for expressions); defaults as in :func:`fit_batch`.
    components : bool
        Also return the curve of each component.

    Returns
    -------
    ndarray (..., m), or (ndarray, dict prefix -> ndarray (..., m)) when ``components`` is True.
        NaN for masked datasets.
    """
    from .models import ModelSpec

    x = np.asarray(x, float)
    dims = [d for d in ds["chisqr"].dims]
    stack = tuple(ds.sizes[d] for d in dims)
    n = int(np.prod(stack)) if stack else 1
    if isinstance(model, ModelSpec):
        lm, p0 = model.to_lmfit(x, None)
    else:
        lm, p0 = model, model.make_params()
    params = params if params is not None else p0
    total = np.full((n, x.size), np.nan)
    comps_out = {}
    try:
        bm = compile_model(lm, params)
    except NotBatchable:
        bm = None
    if bm is not None:
        from . import _batch_kernels as K

        P = np.column_stack([np.asarray(ds[nm].values, float).reshape(-1) for nm in bm.qnames])
        for s in range(0, n, 1024):
            val, _, cs = K.eval_components(bm.kinds, bm.offsets, bm.npars, x, P[s:s + 1024], jac=False)
            total[s:s + 1024] = val
            if components:
                for (kind, pre, _), cv in zip(bm.comps, cs):
                    key = pre or kind
                    comps_out.setdefault(key, np.zeros((n, x.size)))[s:s + 1024] += cv
    else:
        names = list(params.keys())
        flat = {k: np.asarray(ds[k].values, float).reshape(-1) for k in names if k in ds}
        for i in range(n):
            p = params.copy()
            for k, v in flat.items():
                if not p[k].expr:
                    p[k].set(value=v[i]) if np.isfinite(v[i]) else None
            total[i] = lm.eval(p, x=x)
            if components:
                for key, cv in lm.eval_components(params=p, x=x).items():
                    comps_out.setdefault(key, np.zeros((n, x.size)))[i] = cv
    bad = ~np.isfinite(np.column_stack([np.asarray(ds[k].values, float).reshape(-1) for k in ["chisqr"]])[:, 0])
    total[bad] = np.nan
    total = total.reshape(stack + (x.size,))
    if not components:
        return total
    for k in comps_out:
        comps_out[k][bad] = np.nan
    return total, {k: v.reshape(stack + (x.size,)) for k, v in comps_out.items()}
