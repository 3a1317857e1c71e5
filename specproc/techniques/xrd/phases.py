"""Phase identification (search/match against reference stick patterns) and hkl indexing.

Positions first, intensities second: real samples have relative intensities off by factors 2–5
(preferred orientation, poor reference intensities) and cells strained by a few % per axis, so a
phase is found by where its reflections are, and its intensities only flag texture. Figure of merit
of a candidate phase (documented, deterministic):

1. *Strong reflections* are its sticks inside the measured 2θ range with relative intensity
   ≥ ``min_rel_intensity`` (default 5 % of its strongest).
2. **Cell search** (:func:`_search_cell`): a grid over each free cell axis within ±``max_strain``
   (anisotropic, 0.25 % steps), scored by the number of strong reflections matched (intensity
   coverage breaks ties, the least-strained cell among equals), a fine isotropic scan around the
   optimum, then two rounds of least-squares cell refinement on the uniquely matched reflections.
3. ``coverage`` = Σ I(matched strong) / Σ I(evaluable strong); ``pos_coverage`` = matched / evaluable
   (counts); ``explained`` = fraction of the observed peak area that the phase accounts for;
   ``score = ½(coverage + pos_coverage) × (0.75 + 0.25 × explained)``. Evaluable = strong minus the
   *shared* (on a peak an accepted phase explains) and *undetectable* (expected under the detection
   limit) unmatched ones, for a phase with ≥ npar + 3 matches of its own (else they count as missing).
   ``p_chance`` (:func:`chance_probability`): matches expected from chance coincidences in a dense
   pattern, Bonferroni over the distinguishable cells searched; > 0.01 → absent.
4. :func:`decide`: ``present`` when ≥ 3 strong reflections lie in the scanned range (a narrow scan
   cannot confirm a phase), ≥ 3 are matched, explained ≥ 15 %, and score ≥ threshold, or coverage ≥
   threshold, or pos_coverage ≥ threshold with explained ≥ 50 % (positions alone). ``texture`` when the
   intensities disagree (Spearman ρ < 0.3, observed/computed spread > 4, or positions match where
   intensities do not). Anti-correlated intensities (ρ < 0) without the position criterion are not
   enough for present. ``probable`` when near the threshold (score ≥ threshold − 0.1, or explained ≥
   80 % with coverage or pos_coverage ≥ threshold − 0.15), with the reasons; else ``absent``.
   After indexing, a phase that owns fewer than 3 of the observed peaks is absent.
5. Phases are accepted greedily (like search–match programs): the best-scoring present candidate is
   accepted; peaks on its reflections expected above the detection limit are explained by it (positions
   first: texture makes intensity residuals meaningless), elsewhere the areas it predicts are subtracted;
   the remaining candidates are re-scored against the peaks still unexplained (residual area > 25 %
   of the observed). Reported
   scores are from the round in which a phase was accepted, or from the last round for the others.

No peaks at all (amorphous pattern) gives score 0 for every phase.
"""
from __future__ import annotations

import numpy as np

from ...core.errors import ProcessingError
from .processing import bragg_two_theta


#: largest enhancement of a reflection by preferred orientation taken as the same phase's (×0.2–×5)
TEXTURE_MAX = 5.0


def match_positions(obs_tt, calc_tt, tol):
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


def _search_cell(ref, hkl, inten, obs_tt, wavelength_nm, tol, max_strain):
    """Cell (Å) within ±``max_strain`` per free axis that matches most strong reflections by position.

    A grid over the free axes (cubic: 1, hexagonal/tetragonal: 2, orthorhombic: 3) at 0.25 % steps,
    each stick matched with the tolerance widened by the shift of half a grid step, scored by the
    number of strong reflections matched (positions first), intensity-weighted coverage breaking ties;
    then a fine 0.05 % isotropic scan around the best grid point. Least squares follows in the caller.
    """
    names = list(ref.cell)
    full0 = ref.full_cell()
    step = 0.0025
    grid1 = np.arange(-max_strain, max_strain + 1e-9, step) if max_strain > 0 else np.array([0.0])
    mesh = np.stack(np.meshgrid(*([grid1] * len(names)), indexing="ij"), -1).reshape(-1, len(names))
    sc = {k: 1 + mesh[:, i] for i, k in enumerate(names)}
    a = full0["a"] * sc["a"]
    b = full0["b"] * sc["b"] if "b" in sc else (a if ref.system != "orthorhombic" else full0["b"])
    c = full0["c"] * sc["c"] if "c" in sc else (a if ref.system == "cubic" else full0["c"])
    from .references import d_spacing

    d = d_spacing(hkl, ref.system, a[:, None], b[:, None], c[:, None])  # (n_grid, n_sticks), Å
    sarg = np.clip(wavelength_nm * 10 / (2 * d), -1, 1)
    tt = 2 * np.degrees(np.arcsin(sarg))
    # shift of one stick over half a grid step ~ tan(θ)·step (rad) -> widened coarse tolerance
    wide = tol + np.degrees(np.tan(np.radians(tt / 2)) * step)
    j = np.clip(np.searchsorted(obs_tt, tt), 1, max(len(obs_tt) - 1, 1))
    dist = np.minimum(np.abs(obs_tt[j - 1] - tt), np.abs(obs_tt[np.minimum(j, len(obs_tt) - 1)] - tt))
    hit = (dist <= wide) & (sarg < 1)
    n = hit.sum(axis=1)
    cov = (hit * inten).sum(axis=1) / inten.sum()
    # fewest-strain among equals: a random pattern must not pull the cell to the edge of the range
    strain = np.abs(mesh).sum(axis=1)
    best = int(np.lexsort((strain, -cov, -n))[0])
    cell = {k: ref.cell[k] * (1 + mesh[best, i]) for i, k in enumerate(names)}
    # fine isotropic scan (the old search) around the grid optimum
    top, top_f = (-1, -1.0, -np.inf), 1.0
    for f in np.arange(1 - step, 1 + step + 1e-9, 0.0005):
        cf = {k: v * f for k, v in cell.items()}
        full = ref.full_cell(cf)
        tt1 = bragg_two_theta(d_spacing(hkl, ref.system, full["a"], full["b"], full["c"]) / 10, wavelength_nm)
        m = match_positions(obs_tt, tt1, tol)
        key = (int((m >= 0).sum()), float(inten[m >= 0].sum() / inten.sum()), -abs(f - 1))
        if key > top:
            top, top_f = key, f
    return {k: v * top_f for k, v in cell.items()}


def chance_probability(n_matched, n_eval, obs_tt, tol, tt_range, n_cells=1.0):
    """Probability that ``n_matched`` of ``n_eval`` reflections land on observed peaks by chance.

    A line placed at random in the scanned range hits a peak (within ``tol``) with probability p0 = the
    fraction of the range covered by the peaks' ±tol windows (high in a dense pattern):
    P(X ≥ n_matched), X ~ Binomial(n_eval, p0), times ``n_cells``, the number of distinguishable cells
    the search tried (look-elsewhere: Bonferroni), capped at 1.
    """
    from scipy.stats import binom

    lo, hi = tt_range
    if hi <= lo or n_eval <= 0 or n_matched <= 0:
        return 1.0
    t = np.sort(np.asarray(obs_tt, float))
    iv = np.clip(np.stack([t - tol, t + tol], 1), lo, hi)
    covered, end = 0.0, -np.inf
    for a, b in iv:  # union length of the windows (sorted)
        a = max(a, end)
        if b > a:
            covered += b - a
            end = b
    p0 = min(max(covered / (hi - lo), 1e-6), 1.0)
    return float(min(1.0, n_cells * binom.sf(n_matched - 1, n_eval, p0)))


def n_distinct_cells(two_theta_deg, tol, max_strain, npar):
    """Number of distinguishable cells in the ±``max_strain`` search per free axis: a strain step moves a
    line at 2θ by Δθ = tan θ · ε, so cells closer than ε = (tol/2 in rad) / tan θ (at the median 2θ of
    the strong lines) give the same matches."""
    th = np.radians(float(np.median(two_theta_deg)) / 2)
    eps = np.radians(tol / 2) / max(np.tan(th), 1e-6)
    return float((2 * max_strain / eps + 1) ** npar)


def match_phase(ref, obs_tt, obs_area, wavelength_nm, tt_range, *, tolerance_deg=0.15, max_strain=0.03,
                min_rel_intensity=5.0, obs_tt_err=None, refine=True, shared_tt=None, min_area=None):
    """Match one reference against observed peaks (2θ in deg, areas). See module docstring.

    ``shared_tt``: positions (deg) of observed peaks already fully explained by accepted phases. A strong
    reflection of this phase that is unmatched among ``obs_tt`` but lies on one of them is *shared*: it
    neither confirms nor contradicts the phase and is left out of the coverage denominators.

    ``min_area``: the smallest peak area the peak search detects (counts·deg). An unmatched strong
    reflection whose expected area (its reference intensity × the phase's median observed/reference
    ratio) is below it is *undetectable*: not expected to be seen, so not counted as missing (a minor
    phase of many reflections has most of them under the noise).
    """
    from .lattice import refine_cell

    obs_tt = np.asarray(obs_tt, float)
    obs_area = np.asarray(obs_area, float)
    order = np.argsort(obs_tt)
    obs_tt, obs_area = obs_tt[order], obs_area[order]
    err = None if obs_tt_err is None else np.asarray(obs_tt_err, float)[order]
    out = {"name": ref.name, "space_group": ref.space_group, "system": ref.system, "score": 0.0, "coverage": 0.0,
           "pos_coverage": 0.0, "explained": 0.0, "n_strong": 0, "n_matched": 0, "n_shared": 0,
           "n_undetectable": 0, "p_chance": 1.0, "strain": 0.0,
           "axis_strain": {k: 0.0 for k in ref.cell}, "present": False, "status": "absent", "reasons": [],
           "texture": False, "intensity_spread": None, "cell": dict(ref.cell), "lattice": None, "rho": None}
    st0 = ref.sticks(wavelength_nm, tt_range)
    strong = st0["intensity"] >= min_rel_intensity
    out["n_strong"] = int(strong.sum())
    if len(obs_tt) == 0 or not strong.any():
        return out
    cell = _search_cell(ref, st0["hkl"][strong], st0["intensity"][strong], obs_tt, wavelength_nm,
                        tolerance_deg, max_strain)
    s = float(np.cbrt(np.prod([cell[k] / ref.cell[k] for k in ref.cell]) ** (3 / len(ref.cell))))
    lattice = None
    for _ in range(2 if refine else 0):
        st = ref.sticks(wavelength_nm, (tt_range[0] - 1, tt_range[1] + 1), cell=cell)
        sel = st["intensity"] >= min_rel_intensity
        m = match_positions(obs_tt, st["two_theta"][sel], tolerance_deg)
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
        if any(abs(new[k] / ref.cell[k] - 1) > max_strain + 0.005 for k in new):
            lattice = None  # refinement ran away: keep the scaled cell
            break
        cell = new
    st = ref.sticks(wavelength_nm, tt_range, cell=cell)
    strong = st["intensity"] >= min_rel_intensity
    m_strong = match_positions(obs_tt, st["two_theta"][strong], tolerance_deg)
    i_strong = st["intensity"][strong]
    # a strong reflection hidden under a peak that an accepted phase already explains is not
    # evidence against this phase (two-phase patterns overlap a lot): out of both denominators
    shared = np.zeros(m_strong.shape, bool)
    if shared_tt is not None and len(shared_tt):
        shared = (m_strong < 0) & (match_positions(np.sort(np.asarray(shared_tt, float)), st["two_theta"][strong],
                                          tolerance_deg) >= 0)
    hit = m_strong >= 0
    undetect = np.zeros(m_strong.shape, bool)
    if min_area and hit.sum() >= 3:
        # the phase's scale from its matched reflections (median: robust to texture ×0.2–×5)
        k_scale = float(np.median(obs_area[m_strong[hit]] / i_strong[hit]))
        undetect = ~hit & ~shared & (k_scale * i_strong < min_area)
    # Leaving reflections out is conditioning on a subset chosen after looking: in a dense pattern any
    # phase has lines on consumed peaks by chance, and the cell search (``npar`` free axes) can place
    # about ``npar`` lines on peaks anywhere. So the exclusions apply only to a phase with at least
    # npar + 3 matched reflections of its own; otherwise shared / undetectable lines count as missing.
    if hit.sum() < len(ref.lattice_params) + 3:
        shared[:] = False
        undetect[:] = False
    out_of = ~(shared | undetect)
    i_eval = float(i_strong[out_of].sum())
    coverage = float(i_strong[hit].sum() / i_eval) if i_eval > 0 else 0.0
    m_all = match_positions(obs_tt, st["two_theta"][st["intensity"] >= 0.5], tolerance_deg)
    claimed = np.unique(m_all[m_all >= 0])
    explained = float(obs_area[claimed].sum() / obs_area.sum()) if obs_area.sum() > 0 else 0.0
    n_matched = int((m_strong >= 0).sum())
    n_eval = int(out_of.sum())
    p_chance = chance_probability(n_matched, n_eval, obs_tt, tolerance_deg, tt_range,
                                  n_distinct_cells(st["two_theta"][strong], tolerance_deg, max_strain,
                                                   len(ref.lattice_params)))
    pos_coverage = n_matched / n_eval if n_eval > 0 else 0.0
    # positions first: the count of strong reflections found weighs as much as their intensities,
    # which texture (×0.2–×5 per reflection) and poor reference intensities distort
    score = 0.5 * (coverage + pos_coverage) * (0.75 + 0.25 * explained)
    rho = None
    pairs = m_strong >= 0
    if pairs.sum() >= 4 and np.ptp(i_strong[pairs]) > 0 and np.ptp(obs_area[m_strong[pairs]]) > 0:
        from scipy.stats import spearmanr

        r = spearmanr(i_strong[pairs], obs_area[m_strong[pairs]]).statistic
        rho = float(r) if np.isfinite(r) else None
    ratios = np.array([])
    if pairs.any():
        q = obs_area[m_strong[pairs]] / i_strong[pairs]
        ratios = q / np.median(q) if np.median(q) > 0 else q
    axis_strain = {k: float(cell[k] / ref.cell[k] - 1) for k in ref.cell}
    out.update(score=score, coverage=coverage, pos_coverage=pos_coverage, explained=explained,
               n_strong=int(strong.sum()), n_matched=n_matched, n_shared=int(shared.sum()),
               n_undetectable=int(undetect.sum()), p_chance=p_chance, strain=float(s - 1),
               axis_strain=axis_strain,
               cell=cell, lattice=lattice, rho=rho,
               intensity_spread=float(ratios.max() / ratios.min()) if ratios.size > 1 and ratios.min() > 0 else None)
    return out


def decide(match: dict, threshold: float = 0.6, min_explained: float = 0.15, min_strong: int = 3,
           max_chance: float = 0.01) -> str:
    """``"present"``, ``"probable"`` or ``"absent"`` (see module docstring); sets ``match["reasons"]`` and
    ``match["texture"]``."""
    reasons = []
    cov, pos, sc = match["coverage"], match["pos_coverage"], match["score"]
    rho, spread = match["rho"], match.get("intensity_spread")
    texture = bool((rho is not None and rho < 0.3) or (spread is not None and spread > 4.0) or
                   (pos >= threshold > cov))
    match["texture"] = texture
    n_shared, n_undet = match.get("n_shared", 0), match.get("n_undetectable", 0)
    if match["n_strong"] < min_strong:
        match["reasons"] = [f"only {match['n_strong']} strong reflection(s) in the scanned range"]
        return "absent"  # too few of its reflections in the scanned range to confirm anything
    if match["n_strong"] - n_shared - n_undet < min_strong:
        match["reasons"] = [f"of its {match['n_strong']} strong reflections {n_shared} lie on peaks of an accepted "
                            f"phase and {n_undet} are below the detection limit: too few left to confirm it"]
        return "absent"
    if n_shared:
        reasons.append(f"{n_shared} of {match['n_strong']} strong reflections lie on peaks already explained by "
                       f"an accepted phase (left out of the coverage)")
    if n_undet:
        reasons.append(f"{n_undet} unmatched strong reflections are expected below the detection limit "
                       f"(left out of the coverage)")
    p_chance = match.get("p_chance", 0.0)
    if p_chance > max_chance:
        match["reasons"] = reasons + [f"{match['n_matched']} of {match['n_strong']} strong reflections matched: as "
                                      f"many as chance coincidences with the observed peaks give (p = {p_chance:.2g})"]
        return "absent"
    if match["n_matched"] < 3 or match["explained"] < min_explained:
        match["reasons"] = [f"{match['n_matched']} of {match['n_strong']} strong reflections matched, "
                            f"explains {match['explained']:.0%} of the peak area"]
        return "absent"
    by_position = pos >= threshold and match["explained"] >= 0.5
    if sc >= threshold or by_position or cov >= threshold:
        if rho is not None and rho < 0 and not by_position:
            reasons.append(f"intensities anti-correlated with the reference (Spearman ρ = {rho:.2f})")
        else:
            if texture:
                reasons.append("positions match; relative intensities differ from the reference (texture / "
                               "preferred orientation or poor reference intensities)")
            match["reasons"] = reasons
            return "present"
    # near the threshold: the combined score just under it, or (the reported case) nearly every observed
    # peak explained by the phase's positions with the intensity- or count-coverage not far below
    if sc >= threshold - 0.1 or (match["explained"] >= 0.8 and max(cov, pos) >= threshold - 0.15):
        reasons += [f"score {sc:.2f} (intensity coverage {cov:.2f}, {match['n_matched']} of {match['n_strong']} "
                    f"strong reflections matched) near the threshold {threshold:.2f}",
                    f"explains {match['explained']:.0%} of the observed peak area"]
        match["reasons"] = reasons
        return "probable"
    match["reasons"] = reasons + [f"score {sc:.2f} < {threshold:.2f}"]
    return "absent"


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
             threshold=0.6, min_area=None):
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
                                   min_rel_intensity=min_rel_intensity, obs_tt_err=err[avail],
                                   shared_tt=tt[~avail], min_area=min_area)
        status = {k: decide(cands[k], threshold) for k in remaining}
        for k in remaining:
            cands[k]["status"] = status[k]
        ok = [k for k in remaining if status[k] == "present"]
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
            j = match_positions(tt, np.array([t]), tolerance_deg)[0]
            if j >= 0:
                calc[j] += i
        used = (calc > 0) & avail
        if used.any():
            k_scale = float(np.median(resid[used] / calc[used]))
            # positions first: a peak on a reflection the accepted phase is expected to show (predicted
            # area above the detection limit; without one, a strong reflection) is explained by it,
            # whatever its area: texture (×0.2–×5) makes intensity residuals meaningless, and a leftover
            # there would be taken as unexplained by the next candidates (chance matches in dense patterns)
            visible = used & ((k_scale * calc >= min_area) if min_area else (calc >= min_rel_intensity))
            # ...unless the peak is more than the texture range (×5) above the prediction: then it also
            # holds another phase's line (a sparse phase's strong peak inside a dense phase's forest)
            visible &= resid <= TEXTURE_MAX * k_scale * calc
            resid = np.where(used, np.clip(resid - k_scale * calc, 0, None), resid)
            # peaks that are *only* this phase's are fully explained
            resid[visible | (used & (resid < 0.25 * area))] = 0.0
    return [results[k] for k in range(len(refs))]
