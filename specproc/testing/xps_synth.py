"""Synthetic XPS depth profiles with known truth (tests, benchmarks, ``sample_data/generate_xps.py``).

A region is a sum of CasaXPS GL(m) product lines (height-normalised, :func:`specproc.fitting.components.gl_product`)
on a Shirley step computed from those lines plus a constant, with Poisson counting noise. Areas are
``concentration x RSF x scale`` so atomic % recovered from the fitted areas with the same RSFs is the truth.
:func:`write_vamas` writes ISO 14976 VAMAS (NORM, REGULAR, one block per region and etch level, the etch
time as experimental variable and block comment) in binding or kinetic energy.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..techniques.xps.backgrounds import shirley_from_peaks

IDENTIFIER = "VAMAS Surface Chemical Analysis Standard Data Transfer Format 1988 May 4"


def gl_area_factor(mixing: float) -> float:
    """Area of a GL(m) product line of unit height and unit FWHM."""
    from ..fitting.components import gl_product

    x = np.linspace(-80, 80, 64001)
    return float(np.trapezoid(gl_product(x, 1.0, 0.0, 1.0, mixing), x))


def region_spectra(x, lines, areas, *, shift=0.0, base=200.0, step=0.15, seed=None, noise=True):
    """Spectra of one region at every level.

    Parameters
    ----------
    x : array (m,)
        Binding-energy axis (eV) of the *file* (after the charging ``shift``).
    lines : list of dict
        ``{"center", "fwhm", "mixing", optional "satellites": [(offset, ratio), ...]}`` (true BE, eV).
    areas : array (levels, n_lines)
        Total area of each line (satellites included) per level.
    shift : float
        Charging shift (eV) added to every centre.
    base, step : float
        Constant background (counts) and Shirley step height as a fraction of the largest peak height.

    Returns
    -------
    (Y noisy counts, P noiseless peaks, B background), each (levels, m)
    """
    from ..fitting.components import gl_product

    rng = np.random.default_rng(seed)
    x = np.asarray(x, float)
    areas = np.atleast_2d(np.asarray(areas, float))
    P = np.zeros((areas.shape[0], x.size))
    for j, ln in enumerate(lines):
        sats = ln.get("satellites", [])
        norm = 1.0 + sum(r for _, r in sats)
        h = areas[:, j] / (gl_area_factor(ln["mixing"]) * ln["fwhm"] * norm)
        for off, r in [(0.0, 1.0), *sats]:
            P += gl_product(x[None, :], h[:, None] * r, ln["center"] + shift + off, ln["fwhm"], ln["mixing"])
    hi = base + step * P.max(axis=1)
    B = shirley_from_peaks(x, P, np.full(len(P), base), hi)
    mu = P + B
    Y = rng.poisson(mu).astype(float) if noise else mu
    return Y, P, B


def _fmt(v):
    return f"{v:.6g}"


def write_vamas(path, regions, etch_times, *, sample="sample", kinetic=False, source=1486.6,
                work_function=4.5, comments=(), sputter_rate=None, leading_blank_lines=0,
                scan_mode="REGULAR", etch_variable=True, date=(2024, 5, 17, 10, 30, 0)):
    """Write a VAMAS depth profile.

    Parameters
    ----------
    regions : list of dict
        ``{"species": "N", "transition": "1s", "be": array (m,) descending or ascending, "Y": (levels, m)}``.
    etch_times : array (levels,)
        Etch time (s) of each level.
    kinetic : bool
        Store the abscissa as kinetic energy ``source - BE - work_function``.
    sputter_rate : float, optional
        Written as an additional numerical parameter ``Sputter Rate`` (nm/s) of every block.
    """
    out = [""] * leading_blank_lines + [IDENTIFIER, "specproc synthetic", "Synthetic XPS", "generator",
                                        f"{sample} depth profile"]
    comments = list(comments)
    out += [str(len(comments)), *comments, "NORM", scan_mode, str(len(regions))]
    out += (["1", "Etch Time", "s"] if etch_variable else ["0"])
    out += ["0", "0", "0", "0"]
    nblocks = len(regions) * len(etch_times)
    out.append(str(nblocks))
    for lv, t in enumerate(etch_times):
        for reg in regions:
            be = np.asarray(reg["be"], float)
            y = np.asarray(reg["Y"][lv], float)
            name = f"{reg['species']} {reg['transition']}"
            out += [name, sample, *[str(v) for v in date], "0"]
            bc = [f"Etch Level = {lv}", f"Etch Time = {t:g} s"]
            out += [str(len(bc)), *bc, "XPS"]
            if etch_variable:
                out.append(_fmt(t))
            out += ["Al", _fmt(source), "1E37", "1E37", "1E37", "54.7", "0", "FAT", "20", "1E37",
                    _fmt(work_function), "0", "1E37", "1E37", "0", "0", reg["species"], reg["transition"], "-1"]
            if kinetic:
                ke = source - be - work_function
                out += ["kinetic energy", "eV", _fmt(ke[0]), _fmt(ke[1] - ke[0])]
            else:
                out += ["binding energy", "eV", _fmt(be[0]), _fmt(be[1] - be[0])]
            out += ["1", "counts", "d", "pulse counting", "0.1", "1", "0", "0", "0", "0"]
            if sputter_rate is not None:
                out += ["1", "Sputter Rate", "nm/s", _fmt(sputter_rate)]
            else:
                out += ["0"]
            out += [str(y.size), _fmt(y.min()), _fmt(y.max())]
            out += [_fmt(v) for v in y]
    out.append("end of experiment")
    Path(path).write_text("\n".join(out) + "\n")
