"""Force curves against nanite (the community reference) on the real JPK files, curve by curve and
computed with nanite at test time; ragged maps fitted on each curve's own points; curves whose
modulus cannot be trusted are flagged and the result carries a warning (generated curves)."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import specproc as sp
from specproc.core.measurement import new_measurement
from specproc.fitting.components import hertz_paraboloid
from specproc.techniques.afm.force import fit_force_map

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "realdata" / "afm"
JPK = sorted(p for pat in ("*.jpk-force", "*.jpk-force-map", "*.jpk-qi-data") for p in REAL.glob(pat)) \
    if REAL.is_dir() else []
#: nanite's default preprocessing (the approach/retract split is the reader's, as nanite's)
PREPROCESS = ["compute_tip_position", "correct_force_offset", "correct_tip_offset", "correct_split_approach_retract"]
R_TIP, NU = 10e-6, 0.5


def _nanite_fits(path):
    """nanite 4.x, its defaults (fit range: the whole approach; weight_cp 1 µm): per curve
    (grid index x, grid index y, E, approach points after the split)."""
    nanite = pytest.importorskip("nanite")
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for idnt in nanite.IndentationGroup(path):
            idnt.apply_preprocessing(PREPROCESS)
            p = idnt.get_initial_fit_parameters(model_key="hertz_para")
            p["R"].value, p["nu"].value = R_TIP, NU
            idnt.fit_model(model_key="hertz_para", params_initial=p)
            out.append((idnt.metadata.get("grid index x"), idnt.metadata.get("grid index y"),
                        float(idnt.fit_properties["params_fitted"]["E"].value), int((idnt["segment"] == 0).sum())))
    return out


def _grid_positions(fits):
    """(y, x) of every curve in the reader's layout (occupied grid rows/columns, else along x)."""
    gx, gy = [f[0] for f in fits], [f[1] for f in fits]
    if len(fits) > 1 and all(v is not None for v in gx + gy):
        ux, uy = sorted(set(gx)), sorted(set(gy))
        return [(uy.index(b), ux.index(a)) for a, b in zip(gx, gy)]
    return [(0, i) for i in range(len(fits))]


@pytest.mark.skipif(not JPK, reason="real data not available")
@pytest.mark.parametrize("path", JPK, ids=lambda p: p.name)
def test_real_jpk_curves_agree_with_nanite(path):
    fits = _nanite_fits(path)
    m = sp.read(path)
    acq = m.attrs["acquisition"]
    ds = sp.afm.fit_force_map(m, model="hertz-paraboloid", tip_radius_m=R_TIP, poisson_ratio=NU)
    rows = []
    for (iy, ix), (_, _, E_ref, n_app) in zip(_grid_positions(fits), fits):
        # the reader ends the approach where nanite does (turning point), and keeps every point
        assert int(ds.n_points.values[iy, ix]) == n_app
        E = float(ds.E_Pa.values[iy, ix])
        rows.append((iy, ix, E_ref, E, int(ds.flag.values[iy, ix])))
        assert E == pytest.approx(E_ref, rel=0.05), (path.name, iy, ix, E_ref, E)
        assert np.isfinite(ds.E_stderr_Pa.values[iy, ix]) and ds.E_stderr_Pa.values[iy, ix] > 0
    assert sorted(acq["approach_points_used"]) == sorted(f[3] for f in fits)
    print("\n".join(f"{path.name} (y={a}, x={b}): nanite {c:.1f} Pa, specproc {d:.1f} Pa, flag {e}"
                    for a, b, c, d, e in rows))


@pytest.mark.skipif(not JPK, reason="real data not available")
def test_real_ragged_map_is_padded_not_resampled():
    path = next((p for p in JPK if p.name.endswith(".jpk-force-map")), None)
    if path is None:
        pytest.skip("no JPK force map in the real data")
    m = sp.read(path)
    acq = m.attrs["acquisition"]
    used = acq["approach_points_used"]
    assert m.shape[-1] == max(used) and acq["resampled"] is False and acq["padded"] is (len(set(used)) > 1)
    n_finite = np.isfinite(m.values).sum(-1)
    assert sorted(n_finite.ravel().tolist()) == sorted(used)
    # the turning point moves a few samples of the file's retract segment into the approach
    assert all(0 <= u - f < 50 for u, f in zip(used, acq["approach_points"]))
    mf = sp.read(path, split="file", n_points=min(acq["approach_points"]))
    assert mf.attrs["acquisition"]["approach_points_used"] == acq["approach_points"]
    assert mf.shape[-1] == min(acq["approach_points"]) and np.isfinite(mf.values).all()


# ------------------------------------------------------------------ generated curves
K = 0.02          # cantilever (N/m)
Z = np.linspace(0.0, 4e-6, 1500)   # piezo travel towards the sample (m)


def _approach(E, cp, z=Z, k=K, noise=1e-11, rng=None):
    """Approach curve of a Hertz sample on a cantilever: force at each piezo position z, with the
    tip position z - F/k (indentation grid -> piezo position, interpolated)."""
    dl = np.linspace(0, z[-1] - cp + 1e-9, 20001) if z[-1] > cp else np.zeros(2)
    Fd = hertz_paraboloid(dl, E, R_TIP, NU, 0.0, 0.0)
    zc = dl + Fd / k
    F = np.where(z > cp, np.interp(z - cp, zc, Fd), 0.0)
    if rng is not None:
        F = F + rng.normal(0, noise, z.size)
    return -z, F                        # heights decrease towards the sample


def _force_map(curves, k=K):
    n = max(h.size for h, _ in curves)
    H = np.full((1, len(curves), n), np.nan)
    F = H.copy()
    for i, (h, f) in enumerate(curves):
        H[0, i, :h.size], F[0, i, :f.size] = h, f
        H[0, i, h.size:] = h[-1]                    # as the reader pads a ragged map
    m = new_measurement(F, {"y": (np.zeros(1), "m"), "x": (np.arange(len(curves)) * 1e-6, "m"),
                            "point": (np.arange(n), "")}, technique="afm", units="N", name="force",
                        signal_type="force_volume", sample="generated", acquisition={"spring_constant_N_per_m": k},
                        allow_nan=True)
    m = m.assign_coords(height=(("y", "x", "point"), H))
    m.coords["height"].attrs["units"] = "m"
    return m


def test_ragged_map_each_curve_on_its_own_points():
    """Curves of different lengths and ramps (soft and stiff) in one NaN-padded map: every modulus
    is the one of the curve fitted alone (no common axis, no resampling) and recovers the truth."""
    rng = np.random.default_rng(11)
    specs = [(2e3, 3.0e-6, 4e-6, 1500), (40e3, 3.5e-6, 4e-6, 1500), (40e3, 0.9e-6, 1.2e-6, 450),
             (8e3, 1.5e-6, 2e-6, 700)]
    curves = [_approach(E, cp, z=np.linspace(0, L, n), rng=rng) for E, cp, L, n in specs]
    m = _force_map(curves)
    ds = sp.afm.fit_force_map(m, tip_radius_m=R_TIP, poisson_ratio=NU)
    E_true = np.array([s[0] for s in specs])
    assert ds.n_points.values[0].tolist() == [s[3] for s in specs]
    assert (ds.flag.values == 0).all(), ds.flag.values
    np.testing.assert_allclose(ds.E_Pa.values[0], E_true, rtol=0.05)
    assert (np.abs(ds.E_Pa.values[0] - E_true) < 4 * ds.E_stderr_Pa.values[0]).all()
    for i, (h, f) in enumerate(curves):
        alone = fit_force_map(h, f, tip_radius_m=R_TIP, poisson_ratio=NU, spring_constant_N_per_m=K)
        assert float(alone.E_Pa.values[0, 0]) == pytest.approx(float(ds.E_Pa.values[0, i]), rel=1e-9)


def test_untrustworthy_curves_flagged_with_warnings():
    """A clean curve, a shallow indentation (60 nm << nanite's 1 µm weight width: the weighted
    contact data are too few and the noise sets the contact point — nanite is 26 % low there,
    silently), contact in the last few points, a force that falls (E at its bound 0) and no
    contact: all but the first are flagged and the result says why."""
    rng = np.random.default_rng(3)
    E = 5e3
    z = np.linspace(0, 4e-6, 1500)
    F_shallow = hertz_paraboloid(z, E, R_TIP, NU, z[-20], 0) + rng.normal(0, 2e-12, z.size)
    F_late = hertz_paraboloid(z, E, R_TIP, NU, z[-6], 0) + rng.normal(0, 2e-12, z.size)
    F_fall = -np.clip(z - 3e-6, 0, None) * 1e-3 + rng.normal(0, 1e-11, z.size)
    F_flat = rng.normal(0, 1e-11, z.size)
    curves = [_approach(E, 3.0e-6, k=1e3, rng=rng), (-z, F_shallow), (-z, F_late), (-z, F_fall), (-z, F_flat)]
    m = _force_map(curves, k=1e3)   # a stiff cantilever: tip position = piezo for the generated curves
    from specproc import plugins

    res = plugins.get("processors", "afm.fit_force_map")(m, tip_radius_m=R_TIP, poisson_ratio=NU)
    ds = res.data
    fl = ds.flag.values[0]
    assert fl[0] == 0 and ds.E_Pa.values[0, 0] == pytest.approx(E, rel=0.02)
    assert fl[1] & 128                       # contact point set by the noise
    assert fl[2] & (4 | 8 | 32 | 64 | 128)   # a handful of points in contact: no modulus to trust
    assert fl[3] & 2                         # modulus at its bound (0)
    assert fl[4] & 8                         # no contact
    text = " ".join(res.warnings)
    assert "4 of 5 curves flagged" in text
    for phrase in ("contact point poorly defined", "modulus not determined", "no contact detected"):
        assert phrase in text
    t = res.tables["curves"]
    assert t.quality.iloc[0] == "good" and (t.quality.iloc[1:] != "good").all()
    assert "contact point poorly defined" in t.quality.iloc[1]
    # the map statistics use the trusted curve only
    assert res.quantities["force.n_good"].value == 1


def test_shallow_indentation_cross_check_is_the_truth_side():
    """The noise-corrected cross-check that flags the shallow curve is the one near the truth,
    and unweighted least squares (contact_weight_m=None) recovers it without a flag."""
    rng = np.random.default_rng(5)
    E = 5e3
    z = np.linspace(0, 4e-6, 1500)
    F = hertz_paraboloid(z, E, R_TIP, NU, z[-20], 0) + rng.normal(0, 2e-12, z.size)
    ds = fit_force_map(-z, F, tip_radius_m=R_TIP, poisson_ratio=NU)
    assert ds.flag.values[0, 0] & 128
    assert abs(ds.E_noise_corrected_Pa.values[0, 0] / E - 1) < abs(ds.E_Pa.values[0, 0] / E - 1)
    u = fit_force_map(-z, F, tip_radius_m=R_TIP, poisson_ratio=NU, contact_weight_m=None)
    assert u.flag.values[0, 0] == 0 and u.E_Pa.values[0, 0] == pytest.approx(E, rel=0.02)


def test_weighting_and_baseline_options():
    rng = np.random.default_rng(2)
    h, F = _approach(5e3, 3.0e-6, rng=rng)
    a = fit_force_map(h, F, tip_radius_m=R_TIP, spring_constant_N_per_m=K)
    assert a.attrs["contact_weight_m"] == pytest.approx(1e-6) and a.attrs["baseline"] == "offset"
    b = fit_force_map(h, F, tip_radius_m=20e-9, spring_constant_N_per_m=K)
    assert b.attrs["contact_weight_m"] == pytest.approx(20e-9)          # "auto": the radius when smaller
    for kw in ({"baseline": "line"}, {"baseline": "tilt"}, {"contact_weight_m": None}, {"contact_weight_m": 0.3e-6}):
        ds = fit_force_map(h, F, tip_radius_m=R_TIP, spring_constant_N_per_m=K, **kw)
        assert ds.flag.values[0, 0] == 0 and ds.E_Pa.values[0, 0] == pytest.approx(5e3, rel=0.03), kw
    assert fit_force_map(h, F, tip_radius_m=R_TIP, fit_tilt=True).attrs["baseline"] == "tilt"
    from specproc.core.errors import ParameterError

    with pytest.raises(ParameterError, match="baseline"):
        fit_force_map(h, F, tip_radius_m=R_TIP, baseline="poly")
    with pytest.raises(ParameterError, match="contact_weight_m"):
        fit_force_map(h, F, tip_radius_m=R_TIP, contact_weight_m="nanite")
    with pytest.raises(ParameterError, match="contact_weight_m"):
        fit_force_map(h, F, tip_radius_m=R_TIP, contact_weight_m=-1.0)
