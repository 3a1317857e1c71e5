"""Phase identification (search/match against reference stick patterns) and hkl indexing.

Figure of merit of a candidate phase (documented, deterministic):

1. *Strong reflections* are its sticks inside the measured 2θ range with relative intensity
   ≥ ``min_rel_intensity`` (default 5 % of its strongest).
2. Lattices of real samples differ from the reference (temperature, confinement, solid
   solution), so the reference cell is first scaled isotropically by s ∈ [1 − max_strain,
   1 + max_strain] (step 0.05 %) and the s matching the largest intensity-weighted fraction of
   strong reflections within ``tolerance_deg`` is kept; then the cell is refined by least squares
   on the matched peaks (crystal-system aware) and the reflections re-matched — twice.
3. ``coverage`` = Σ I(matched strong) / Σ I(strong);
   ``explained`` = fraction of the observed peak area that the phase accounts for;
   ``score = coverage × (0.75 + 0.25 × explained)`` (unexplained peaks cost at most 25 %, since a
   mixture always leaves peaks to the other phases).
4. ``present`` when the scanned range holds at least 3 strong reflections of the phase (a narrow
   high-resolution scan cannot confirm a phase) **and** ``score ≥ threshold`` (default 0.6) **and**
   at least 3 strong reflections matched **and** the observed areas of the matched strong reflections are
   not anti-correlated with the computed intensities (Spearman ρ ≥ 0 when ≥ 4 pairs) **and** the
   phase explains ≥ 15 % of the (still unexplained) observed peak area, which rejects
   coincidental matches of a few sticks at a tuned strain. After indexing, a present phase
   that owns fewer than 3 of the observed peaks (its sticks are all closer to
   another phase's) is downgraded to absent.

5. Phases are accepted greedily (like search–match programs): the best-scoring candidate that
   passes 4 is accepted, the observed peak areas it predicts (its intensity scale × computed
   intensities) are subtracted, and the remaining candidates are re-scored against the
   peaks that are still unexplained (residual area > 25 % of the observed). This stops a
   cubic phase with three reflections from "matching" a dense pattern that another phase
   already explains. Reported scores are from the round in which a phase was accepted, or from
   the last round for the absent ones.

No peaks at all (amorphous pattern) gives score 0 for every phase.
"""
from __future__ import annotations

import numpy as np

from ...core.errors import ProcessingError
from .processing import bragg_two_theta


def _match(obs_tt, calc_tt, tol):
    """Index of the nearest observed peak for each calc position (−1 if none within tol)."""
    if len(obs_tt) == 0:
        return np.full(len(calc_tt), -1)
    j = np.searchsorted(obs_tt, calc_tt)
    j0 = np.clip(j - 1, 0, len(obs_tt) - 1)
    j1 = np.clip(j, 0, len(obs_tt) - 1)
    d0, d1 = np.abs(obs_tt[j0] - calc_tt), np.abs(obs_tt[j1] - calc_tt)
    best = np.where(d0 <= d1, j0, j1)
    return np.where(np.minimum(d0, d1) <= tol, best, -1)


def _cell_nm(ref, cell_A):
    c = ref.full_cell(cell_A)
    return {"a_nm": c["a"] / 10, "b_nm": c["b"] / 10, "c_nm": c["c"] / 10}


def match_phase(ref, obs_tt, obs_area, wavelength_nm, tt_range, *, tolerance_deg=0.15, max_strain=0.03,
                min_rel_intensity=5.0, obs_tt_err=None, refine=True):
    """Match one reference against observed peaks (2θ in deg, areas). See module docstring."""
    from .lattice import refine_cell

    obs_tt = np.asarray(obs_tt, float)
    obs_area = np.asarray(obs_area, float)
    order = np.argsort(obs_tt)
    obs_tt, obs_area = obs_tt[order], obs_area[order]
    err = None if obs_tt_err is None else np.asarray(obs_tt_err, float)[order]
    out = {"name": ref.name, "space_group": ref.space_group, "system": ref.system, "score": 0.0, "coverage": 0.0,
           "explained": 0.0, "n_strong": 0, "n_matched": 0, "strain": 0.0, "present": False,
           "cell": dict(ref.cell), "lattice": None, "rho": None}
    st0 = ref.sticks(wavelength_nm, tt_range)
    strong = st0["intensity"] >= min_rel_intensity
    out["n_strong"] = int(strong.sum())
    if len(obs_tt) == 0 or not strong.any():
        return out
    d_strong = st0["d_nm"][strong]
    i_strong = st0["intensity"][strong]
    best = (-1.0, 0.0)
    for s in np.arange(1 - max_strain, 1 + max_strain + 1e-9, 0.0005):
        m = _match(obs_tt, bragg_two_theta(d_strong * s, wavelength_nm), tolerance_deg)
        cov = float(i_strong[m >= 0].sum() / i_strong.sum())
        if cov > best[0] + 1e-9 or (abs(cov - best[0]) <= 1e-9 and abs(s - 1) < abs(best[1] - 1)):
            best = (cov, s)
    s = best[1]
    cell = {k: v * s for k, v in ref.cell.items()}
    lattice = None
    for _ in range(2 if refine else 0):
        st = ref.sticks(wavelength_nm, (tt_range[0] - 1, tt_range[1] + 1), cell=cell)
        sel = st["intensity"] >= min_rel_intensity
        m = _match(obs_tt, st["two_theta"][sel], tolerance_deg)
        ok = m >= 0
        # one observed peak matched by several sticks is ambiguous for refinement: keep unique ones
        uniq, counts = np.unique(m[ok], return_counts=True)
        single = np.isin(m, uniq[counts == 1]) & ok
        npar = len(ref.lattice_params)
        if single.sum() < npar + 1:
            break
        try:
            lattice = refine_cell(st["hkl"][sel][single], obs_tt[m[single]],
                                  None if err is None else err[m[single]], system=ref.system,
                                  start=_cell_nm(ref, cell), wavelength_nm=wavelength_nm)
        except ProcessingError:
            break
        new = {"a": lattice["a_nm"] * 10}
        if "b" in ref.cell:
            new["b"] = lattice["b_nm"] * 10
        if "c" in ref.cell:
            new["c"] = lattice["c_nm"] * 10
        if any(abs(new[k] / ref.cell[k] - 1) > 2 * max_strain for k in new):
            lattice = None  # refinement ran away: keep the scaled cell
            break
        cell = new
    st = ref.sticks(wavelength_nm, tt_range, cell=cell)
    strong = st["intensity"] >= min_rel_intensity
    m_strong = _match(obs_tt, st["two_theta"][strong], tolerance_deg)
    i_strong = st["intensity"][strong]
    coverage = float(i_strong[m_strong >= 0].sum() / i_strong.sum()) if i_strong.size else 0.0
    m_all = _match(obs_tt, st["two_theta"][st["intensity"] >= 0.5], tolerance_deg)
    claimed = np.unique(m_all[m_all >= 0])
    explained = float(obs_area[claimed].sum() / obs_area.sum()) if obs_area.sum() > 0 else 0.0
    score = coverage * (0.75 + 0.25 * explained)
    n_matched = int((m_strong >= 0).sum())
    rho = None
    pairs = m_strong >= 0
    if pairs.sum() >= 4:
        from scipy.stats import spearmanr

        r = spearmanr(i_strong[pairs], obs_area[m_strong[pairs]]).statistic
        rho = float(r) if np.isfinite(r) else None
    out.update(score=score, coverage=coverage, explained=explained, n_strong=int(strong.sum()),
               n_matched=n_matched, strain=float(s - 1), cell=cell, lattice=lattice, rho=rho)
    return out


def decide(match: dict, threshold: float = 0.6, min_explained: float = 0.15, min_strong: int = 3) -> bool:
    """Present/absent decision (see module docstring)."""
    if match["n_strong"] < min_strong:
        return False  # too few of its reflections in the scanned range to confirm anything
    return bool(match["score"] >= threshold and match["n_matched"] >= 3
                and match["explained"] >= min_explained
                and (match["rho"] is None or match["rho"] >= 0.0))


def index_peaks(peaks, refs_matches, wavelength_nm, tt_range, tolerance_deg=0.15):
    """Assign each observed peak the nearest stick of a present phase (within tolerance).

    Returns a list (one per peak) of ``None`` or dict ``phase, hkl (tuple), label, calc_two_theta,
    calc_intensity`` (sum of the sticks of that phase within tolerance of the peak; label of the strongest).
    """
    out = [None] * len(peaks)
    for ref, mt in refs_matches:
        st = ref.sticks(wavelength_nm, (tt_range[0] - 1, tt_range[1] + 1), cell=mt["cell"])
        keep = st["intensity"] >= 0.1
        for i, p in enumerate(peaks):
            dt = np.abs(st["two_theta"][keep] - p["two_theta_deg"])
            near = dt <= tolerance_deg
            if not near.any():
                continue
            idx = np.flatnonzero(keep)[near]
            j = idx[np.argmax(st["intensity"][idx])]
            dist = float(np.min(dt[near]))
            if out[i] is None or dist < out[i]["dist"]:
                out[i] = {"phase": ref.name, "hkl": tuple(int(v) for v in st["hkl"][j]), "label": st["label"][j],
                          "calc_two_theta": float(st["two_theta"][j]),
                          "calc_intensity": float(st["intensity"][idx].sum()), "dist": dist,
                          "n_overlap": int(len(idx))}
    return out


def identify(peaks, refs, wavelength_nm, tt_range, *, tolerance_deg=0.15, max_strain=0.03, min_rel_intensity=5.0,
             threshold=0.6):
    """Greedy search–match of observed ``peaks`` (list of dicts with ``two_theta_deg``, ``area``) against
    ``refs``. Returns a list of match dicts (one per reference, input order) with ``present``."""
    tt = np.array([p["two_theta_deg"] for p in peaks], float)
    area = np.array([p["area"] for p in peaks], float)
    err = np.array([p.get("two_theta_stderr", np.nan) for p in peaks], float)
    resid = area.copy()
    results = {}
    remaining = list(range(len(refs)))
    while remaining:
        avail = resid > 0.25 * area
        cands = {}
        for k in remaining:
            cands[k] = match_phase(refs[k], tt[avail], resid[avail], wavelength_nm, tt_range,
                                   tolerance_deg=tolerance_deg, max_strain=max_strain,
                                   min_rel_intensity=min_rel_intensity, obs_tt_err=err[avail])
        ok = [k for k in remaining if decide(cands[k], threshold)]
        if not ok:
            for k in remaining:
                results[k] = cands[k]
            break
        best = max(ok, key=lambda k: cands[k]["score"])
        mt = cands[best]
        mt["present"] = True
        results[best] = mt
        remaining.remove(best)
        # subtract what the accepted phase predicts at each observed peak
        ref = refs[best]
        st = ref.sticks(wavelength_nm, tt_range, cell=mt["cell"])
        calc = np.zeros(len(tt))
        for t, i in zip(st["two_theta"], st["intensity"]):
            j = _match(tt, np.array([t]), tolerance_deg)[0]
            if j >= 0:
                calc[j] += i
        used = (calc > 0) & avail
        if used.any():
            k_scale = float(np.median(resid[used] / calc[used]))
            resid = np.where(used, np.clip(resid - k_scale * calc, 0, None), resid)
            # peaks that are *only* this phase's are fully explained
            resid[used & (resid < 0.25 * area)] = 0.0
    return [results[k] for k in range(len(refs))]
