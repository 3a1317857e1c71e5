"""NMR deconvolution: sites, spinning sidebands, quadrupolar sites, fit, quantities with errors.

Only the NMR science lives here; noise, peak picking, the model spec (sidebands are
:class:`~specproc.fitting.models.Satellite` s of their centre band), the fit, covariance, error
propagation, Monte-Carlo errors and the bound / quality checks are the shared toolkit
(:mod:`specproc.fitting`). Parameters arrive as one validated object
(:class:`~specproc.techniques.nmr.processors.DeconvolveParams`).

Components (``peaks``)
----------------------
A list of positions (ppm, named ``p1, p2...``), ``{"BH4": -44.3, ...}``, or a list of dicts with
the :class:`~specproc.fitting.models.Peak` fields; ``shape="quadrupolar"`` (with ``cq_mhz``,
``eta``) is a second-order quadrupolar central-transition site (:mod:`.quadrupolar`).

Given positions are starts, not truths
--------------------------------------
A given centre may move within a window bounded by its neighbouring lines (halfway to the next
given centre that does not overlap it, the spectrum edge for the outermost ones), and at least
``3 FWHM`` either way; ``center_window`` (ppm) fixes ``start +- center_window`` instead. When
a centre still ends on its window bound, or the fit is poor (r² < 0.9), the fit is repeated with
those lines started at the nearest picked maximum, the better fit (chi²) is kept and a warning
says so. A component whose fitted height is below 3x the noise is reported with a warning (no
signal there: its values are not a measurement).

Automatic mode (neither ``peaks`` nor ``n_peaks``) — :mod:`.auto`
-----------------------------------------------------------------
The count, positions and widths come from the toolkit's model selection
(:func:`~specproc.fitting.select.select_model`: second-derivative candidates that see shoulders,
forward selection by BIC with area / height significance, merging of split lines, a warning where
the count is uncertain); ``n_peaks`` / ``max_peaks`` are its ``n_components`` / ``max_components``.
The NMR science stays in :mod:`.auto`:

1. **Window edges.** A picked maximum within its FWHM (or 2 % of the window) of an edge, or a
   signal rising into an edge, is an edge artefact (digital-filter / baseline roll, a folded
   line), never a species: the points from that edge to ``centre + 2 FWHM`` are left out of the
   fit, ``meta["edge_artefacts"]`` lists them and a warning gives the excluded range.
2. **Sidebands.** With a known MAS rate, a position at ``c + k rate`` of a stronger line (within
   its FWHM) is that line's sideband (``meta["recognised_sidebands"]``): the selection's ``reject``
   hook refuses it as a candidate and as a residual feature, and the final model gives every
   line its sidebands as satellites.
3. **Final fit**: the selected lines (names ``p1, p2...`` from high to low ppm) with their
   sidebands, started from the selection's values; a line that is no detection (area within 2
   standard errors of 0, height below 3 noise SDs) is dropped with a warning.
``meta["selection"]`` is the selection's record (steps with the reason of every refusal,
windows, stop reason), ``meta["model_selection"]`` one sentence of it.

Failure modes (measured in ``benchmarks/bench_nmr_auto.py``, ``docs/toolkit.md``): lines closer
than about their FWHM are a count-uncertain warning, and sometimes one component too few; a real
line within its FWHM of the window edge is treated as an artefact; a sideband pattern with a MAS
rate that is wrong in the metadata is seen as extra species.

Sidebands
---------
With ``mas_rate_hz`` (parameter, else ``acquisition["mas_rate_hz"]``) each centre band gets
satellites at ``center + k rate_ppm`` for the orders inside the region (``sideband_orders="auto"``:
orders where the data rise above 3 ``sigma_n``, ``|k| <= 8``; an int forces ``|k| <= n``):
same width and shape, own area >= 0, credited to the centre band.

Errors
------
Covariance from the shared toolkit (robust at bounds); derived quantities (FWHM, areas incl.
sidebands, area fractions) through the full covariance. A parameter at a bound has no standard
error (None) and a warning. ``errors="montecarlo"``: refits of ``best_fit + roll(residual)``.
"""
from __future__ import annotations

import numpy as np
import xarray as xr

from ...core.errors import FitError, ParameterError, ProcessingError
from ...core.result import Result
# the module's parts (#22: split by responsibility); the names other modules import stay here
from .auto import select_components
from .prepared import Prepared, prepare
from .results import curve_stack, derived_fn, make_result
from .sites import Compiled, QuadSite, build, fit, parse_sites, start_sites

__all__ = ["deconvolve", "prepare", "Prepared", "Compiled", "QuadSite", "parse_sites",
           "build", "fit", "start_sites", "derived_fn", "make_result", "curve_stack"]


def _fit_given(pr: Prepared, sites, p):
    """Fit given lines; lines whose centre ends on its window bound (or a poor fit) are refitted
    from the nearest picked maximum, keeping the better fit and saying so."""
    from ...fitting.models import prefix_of
    from ...fitting.noise import smooth
    from ...fitting.peaks import pick_peaks

    x, y = pr.x, pr.y
    lo, hi = float(x.min()), float(x.max())
    for s in sites:
        if not lo <= s.center <= hi:
            raise ParameterError(f"peak {s.name!r} at {s.center:g} ppm is outside the fitted spectrum "
                                 f"({lo:.4g}..{hi:.4g} ppm)", pr.src)
    if float(np.max(smooth(y))) < 3 * pr.noise:
        raise ProcessingError("no signal above 3x the noise level in the region", pr.src)
    sites = start_sites(x, y, sites, pr, p)
    c = build(sites, x, y, pr, p)
    fo = fit(c, x, y, pr, p)
    notes = []
    stuck = [s for s in c.sites if not isinstance(s, QuadSite) and prefix_of(s.name) + "center" in fo.bounded]
    poor = fo.stats["r2"] < 0.9
    if (stuck or poor) and p.center_window is None:
        cands = pick_peaks(x, y, noise=pr.noise, max_peaks=2 * len(sites) + 6)
        movers = stuck or [s for s in c.sites if not isinstance(s, QuadSite)]
        taken = [s.center for s in c.sites if s not in movers]
        new, moved = list(sites), []
        for s in movers:
            free = [cd for cd in cands if all(abs(cd["center"] - t) > cd["fwhm"] for t in taken)]
            if not free:
                continue
            cd = min(free, key=lambda cd: abs(cd["center"] - s.center))
            if abs(cd["center"] - s.center) < 0.5 * cd["fwhm"]:
                continue
            taken.append(cd["center"])
            i = next(i for i, t in enumerate(new) if t.name == s.name)
            new[i] = new[i].model_copy(update={"center": cd["center"], "fwhm": cd["fwhm"], "amplitude": None})
            moved.append((s.name, s.center, cd["center"]))
        if moved:
            try:
                c2 = build(new, x, y, pr, p)
                fo2 = fit(c2, x, y, pr, p)
            except (FitError, ParameterError):
                fo2 = None
            if fo2 is not None and fo2.stats["chisqr"] < fo.stats["chisqr"]:
                why = "ended at the bound of its window" if stuck else f"gave a poor fit (r² {fo.stats['r2']:.2f})"
                for name, a, b in moved:
                    notes.append(f"{name}: the fit from the given start {a:g} ppm {why}; refitted from the "
                                 f"picked maximum at {b:.4g} ppm")
                c, fo = c2, fo2
    return c, fo, notes


# ============================================================================ entry points
def deconvolve(m: xr.DataArray, p) -> Result:
    """Deconvolve one NMR spectrum (an FID is processed first).

    Parameters
    ----------
    m : xarray.DataArray
        NMR spectrum (dim ``shift``, ppm) or FID; 2D data need ``p.row``.
    p : DeconvolveParams
        Validated parameters (:class:`~specproc.techniques.nmr.processors.DeconvolveParams`).

    Returns
    -------
    Result
        ``table`` (one row per site), ``tables["sidebands"]``, quantities ``<name>.center_ppm``,
        ``.fwhm_ppm``, ``.area_fraction``, ``.area``; ``warnings`` holds every parameter at a bound,
        poor / unconverged fits, refits from picked maxima, edge artefacts and processing problems.
        ``meta["apodization"]``/``meta["lb_hz"]``: exponential apodization adds ``lb_hz / sf_mhz``
        ppm to Lorentzian widths (``fwhm_corrected_ppm`` in the table).
    """
    pr = prepare(m, p)
    sites = parse_sites(p.peaks, p.shape, pr.src)
    warns = list(pr.warnings)
    if sites:
        c, fo, notes = _fit_given(pr, sites, p)
        pr.meta["model_selection"] = "given peaks"
    else:
        c, fo, notes = select_components(pr, p)
    warns += notes
    fn = derived_fn(c, drop=fo.undetected)
    vals, errs, _ = fo.derived(fn)
    if p.errors == "montecarlo":
        errs = _montecarlo(c, fo, fn, p, pr)
        pr.meta["errors"] = f"montecarlo (n={p.n_mc})"
    else:
        pr.meta["errors"] = "covariance"
    return make_result(pr, c, fo.values, fo.stderr, fo.components, fo.best_fit, fo.stats, fo.bounded, vals, errs,
                       warns + list(fo.warnings), p, fo.x, fo.y, undetected=fo.undetected)


def _montecarlo(c, fo, fn, p, pr):
    from ...fitting.uncertainty import montecarlo

    model, start = fo.model, fo.params

    def refit(ys):
        with np.errstate(all="ignore"):
            r = model.fit(ys, start.copy(), x=fo.x)
        q = r.params
        q.update_constraints()
        return fn(q.valuesdict())

    std, n_ok = montecarlo(refit, fo.best_fit, fo.residual, n=p.n_mc, seed=p.seed)
    if std is None:
        raise FitError("Monte-Carlo refits failed", pr.src)
    return std
