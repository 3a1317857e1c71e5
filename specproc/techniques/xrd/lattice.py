"""Least-squares refinement of lattice parameters from indexed reflections, and comparisons.

Unit-cell refinement from indexed peak positions is a few lines of non-linear least squares
(no maintained Python package exposes it for arbitrary indexed lists without a full
Rietveld setup), so it is written here with :func:`scipy.optimize.least_squares`; standard
errors come from the covariance (JᵀJ)⁻¹ scaled by the reduced χ² (so they reflect the
actual scatter of the peak positions, not only the fitted 2θ errors).
"""
from __future__ import annotations

import numpy as np

from ...core.errors import ProcessingError
from .processing import bragg_two_theta
from .references import d_spacing

CELL_PARAMS = {"cubic": ("a",), "tetragonal": ("a", "c"), "hexagonal": ("a", "c"), "trigonal": ("a", "c"),
               "orthorhombic": ("a", "b", "c"), "monoclinic": ("a", "b", "c", "beta"),
               "triclinic": ("a", "b", "c", "alpha", "beta", "gamma")}
#: the systems whose d-spacings need the general metric (cell angles in degrees, unique axis b for monoclinic)
OBLIQUE = ("monoclinic", "triclinic")
ANGLES = ("alpha", "beta", "gamma")


def full_cell(system: str, cell: dict) -> dict:
    """All six cell parameters (lengths as given, angles in degrees) from the free ones of ``system``.

    Values may be arrays (a stack of cells); a parameter the system fixes takes its symmetry value."""
    a = cell["a"]
    b = cell.get("b", a) if system in ("orthorhombic",) + OBLIQUE else a
    c = cell.get("c", a) if system != "cubic" else a
    gam = 120.0 if system in ("hexagonal", "trigonal") else 90.0
    out = {"a": a, "b": b, "c": c, "alpha": 90.0, "beta": 90.0, "gamma": gam}
    if system == "monoclinic":
        out["beta"] = cell["beta"]
    elif system == "triclinic":
        out.update(alpha=cell["alpha"], beta=cell["beta"], gamma=cell["gamma"])
    return out


def d_spacing_cell(hkl, system: str, cell: dict):
    """d-spacings (unit of the cell lengths) of reflections ``hkl`` (k, 3) for any crystal system.

    The closed forms of :func:`references.d_spacing` for the orthogonal and hexagonal systems (same numbers as
    before); the reciprocal metric tensor for monoclinic and triclinic cells:
    1/d² = hᵀ G* h with G* the inverse of the direct metric G (Giacovazzo, Fundamentals of Crystallography,
    ch. 2). Cell values may be arrays of shape (n, 1) (a stack of cells): the result is then (n, k).
    """
    if system not in OBLIQUE:
        f = full_cell(system, cell)
        return d_spacing(hkl, system, f["a"], f["b"], f["c"])
    f = full_cell(system, cell)
    hkl = np.atleast_2d(np.asarray(hkl, float))
    h, k, l = hkl[:, 0], hkl[:, 1], hkl[:, 2]
    a, b, c = f["a"], f["b"], f["c"]
    ca, cb, cc = (np.cos(np.radians(f[x])) for x in ANGLES)
    sa, sb, sc = (np.sin(np.radians(f[x])) for x in ANGLES)
    v2 = 1 - ca ** 2 - cb ** 2 - cc ** 2 + 2 * ca * cb * cc  # (V / abc)²
    inv = ((h * sa / a) ** 2 + (k * sb / b) ** 2 + (l * sc / c) ** 2
           + 2 * k * l / (b * c) * (cb * cc - ca) + 2 * h * l / (a * c) * (ca * cc - cb)
           + 2 * h * k / (a * b) * (ca * cb - cc)) / v2
    return 1.0 / np.sqrt(inv)


def cell_volume_full(system: str, cell: dict) -> float:
    """Cell volume (cube of the length unit) from the free parameters of any system (angles in degrees)."""
    f = full_cell(system, cell)
    ca, cb, cc = (np.cos(np.radians(f[x])) for x in ANGLES)
    return f["a"] * f["b"] * f["c"] * np.sqrt(1 - ca ** 2 - cb ** 2 - cc ** 2 + 2 * ca * cb * cc)


def _cell(system, p):
    names = CELL_PARAMS[system]
    c = dict(zip(names, p))
    a = c["a"]
    return a, c.get("b", a), c.get("c", a)


def refine_cell(hkl, two_theta_deg, two_theta_stderr=None, *, system: str, start: dict, wavelength_nm: float,
                refine_zero: bool = False, source=None) -> dict:
    """Refine cell parameters (nm) of ``system`` from indexed 2θ positions.

    Parameters
    ----------
    hkl : (n, 3) array
    two_theta_deg, two_theta_stderr : (n,) arrays (deg); σ used as weights when given.
    system : {"cubic", "tetragonal", "orthorhombic", "hexagonal", "trigonal", "monoclinic", "triclinic"}
    start : dict
        Starting cell in nm (``a_nm``, ``b_nm``, ``c_nm``) and, for monoclinic / triclinic cells, degrees
        (``beta_deg``; ``alpha_deg``, ``gamma_deg``).
    refine_zero : bool
        Also refine a 2θ zero shift (deg).

    Returns
    -------
    dict with ``a_nm``, ``b_nm``, ``c_nm`` (and the free angles ``*_deg``), ``volume_nm3`` and ``*_stderr``, ``zero_deg``,
    ``n_reflections``, ``rms_deg``.
    """
    from scipy.optimize import least_squares

    if system not in CELL_PARAMS:
        raise ProcessingError(f"lattice refinement does not support the {system} system", source)
    names = CELL_PARAMS[system]
    hkl = np.asarray(hkl, float)
    tt = np.asarray(two_theta_deg, float)
    sig = np.ones_like(tt) if two_theta_stderr is None else np.asarray(two_theta_stderr, float)
    sig = np.where(np.isfinite(sig) & (sig > 0), sig, np.nanmedian(sig[np.isfinite(sig)]) if np.any(np.isfinite(sig)) else 1.0)
    sig = np.maximum(sig, 1e-5)
    npar = len(names) + (1 if refine_zero else 0)
    if len(tt) < npar + 1:
        raise ProcessingError(f"{len(tt)} indexed reflections cannot refine {npar} parameters "
                              f"({system}); need at least {npar + 1}", source)
    p0 = [start[n + ("_deg" if n in ANGLES else "_nm")] for n in names] + ([0.0] if refine_zero else [])

    def resid(p):
        calc = bragg_two_theta(d_spacing_cell(hkl, system, dict(zip(names, p[:len(names)]))), wavelength_nm)
        if refine_zero:
            calc = calc + p[-1]
        return (tt - calc) / sig

    res = least_squares(resid, p0, x_scale="jac", method="lm")
    if not res.success:
        raise ProcessingError(f"lattice refinement did not converge: {res.message}", source)
    J = res.jac
    dof = max(len(tt) - npar, 1)
    redchi = float(np.sum(res.fun ** 2) / dof)
    try:
        cov = np.linalg.inv(J.T @ J) * redchi
        err = np.sqrt(np.diag(cov))
    except np.linalg.LinAlgError:
        cov, err = None, np.full(npar, np.nan)
    full = full_cell(system, dict(zip(names, res.x[:len(names)])))
    out = {"system": system, "n_reflections": int(len(tt)), "redchi": redchi,
           "rms_deg": float(np.sqrt(np.mean((res.fun * sig) ** 2)))}
    errs = dict(zip(names, err[:len(names)]))
    for n in ("a", "b", "c"):
        out[n + "_nm"] = float(full[n])
        # dependent parameters (b = a in cubic...) carry the error of the parameter they equal
        src = n if n in errs else "a"
        out[n + "_nm_stderr"] = float(errs.get(src, np.nan))
    for n in ANGLES:
        if n in names:
            out[n + "_deg"], out[n + "_deg_stderr"] = float(full[n]), float(errs[n])
    vol, vol_err = cell_volume(system, res.x[:len(names)], cov[:len(names), :len(names)] if cov is not None else None)
    out["volume_nm3"], out["volume_nm3_stderr"] = vol, vol_err
    out["zero_deg"] = float(res.x[-1]) if refine_zero else 0.0
    out["zero_deg_stderr"] = float(err[-1]) if refine_zero else None
    return out


def cell_volume(system, p, cov):
    """Volume (cube of the length unit) and its esd from the free parameters ``p`` (lengths; angles in degrees
    for monoclinic / triclinic cells) and their covariance."""
    def vol(q):
        if system in OBLIQUE:
            return cell_volume_full(system, dict(zip(CELL_PARAMS[system], q)))
        a, b, c = _cell(system, q)
        v = a * b * c
        return v * np.sqrt(3) / 2 if system in ("hexagonal", "trigonal") else v
    v = float(vol(p))
    if cov is None:
        return v, np.nan
    g = np.array([(vol(p + dp) - vol(p - dp)) / (2 * h)
                  for h, dp in ((1e-7, np.eye(len(p))[i] * 1e-7) for i in range(len(p)))])
    return v, float(np.sqrt(g @ cov @ g))


def compare(res_a, res_b, names=None) -> "pandas.DataFrame":  # noqa: F821
    """Change of lattice (and d-spacing) quantities from reference ``res_a`` to ``res_b``.

    A thin table over :func:`specproc.evidence.compare` (the one comparison of specproc): for each
    quantity the difference b − a and the relative change b/a − 1, first-order errors, the two results
    independent.

    Parameters
    ----------
    res_a, res_b : Result
        ``xrd.analyse`` results (``res_a`` is the reference sample).
    names : list of str, optional
        Quantity names to compare (default: ``lattice.*`` and ``hkl(*).d_nm`` present in both).

    Returns
    -------
    pandas.DataFrame
        ``quantity, unit, reference, value, difference, difference_stderr, relative_change,
        relative_change_stderr, reference_sample, sample``.
    """
    import pandas as pd

    from ...evidence.compare import compare as _compare

    qa, qb = res_a.quantities, res_b.quantities
    if names is None:
        # by key: the primary phase's cell (component "lattice") and its reflections' d-spacings
        # (components "hkl(...)": the unqualified aliases, not "phase(X).hkl(...)")
        names = [k for k, q in qa.items() if k in qb and q.component is not None and (
            q.component == "lattice" or (q.property == "d_nm" and q.component.startswith("hkl(")))]
    rows = []
    for k in names:
        d = _compare(res_a, res_b, quantity=k, op="difference")
        if d.value is None:
            continue
        r = _compare(res_a, res_b, quantity=k, op="relative_change")
        rows.append({"quantity": k, "unit": d.unit, "reference": d.reference_value, "value": d.sample_value,
                     "difference": d.value, "difference_stderr": d.stderr,
                     "relative_change": r.value, "relative_change_stderr": r.stderr,
                     "reference_sample": res_a.sample, "sample": res_b.sample})
    return pd.DataFrame(rows)
