"""JSON of the solid-state models (issue #27): `specproc nmr --json` components of csa / czjzek /
quadrupolar sites carry `shape`, the isotropic shift as `center_ppm` and the model's parameters with
their `_stderr`, recovered from spectra with a known truth."""
import json

import numpy as np
import pytest

from specproc.fitting.nmr_models import csa, czjzek

SF_B, SF_C = 128.38, 100.6


def _csv(path, x, y, nucleus, sf, mas=None):
    head = f"# nucleus: {nucleus}\n# sf_mhz: {sf}\n" + (f"# mas_rate_hz: {mas}\n" if mas else "")
    path.write_text(head + "ppm,intensity\n" + "\n".join(f"{a:.6f},{b:.8g}" for a, b in zip(x, y)))


def _run(args, capsys):
    from specproc.cli import main

    rc = main(args + ["--json"])
    return rc, json.loads(capsys.readouterr().out)[0]


def test_czjzek_and_gaussian_components(tmp_path, capsys):
    x = np.linspace(60, -80, 1400)
    y = czjzek(x, 100, 25.0, 0.6, 0.4, 0, SF_B, 1.5, 10000 / SF_B) + 20 * np.exp(-0.5 * ((x + 41) / 0.6) ** 2)
    y = y + np.random.default_rng(0).standard_normal(x.size) * y.max() / 200
    f = tmp_path / "q.csv"
    _csv(f, x, y, "11B", SF_B, 10000)
    rc, e = _run(["nmr", str(f), "--peaks=Q=20,BH4=-41", "--shape", "Q=czjzek", "--mas-rate", "10000"], capsys)
    assert rc == 0, e["warnings"]
    q, b = e["components"]
    assert q["shape"] == "czjzek" and abs(q["center_ppm"] - 25.0) < 0.3 and q["center_ppm_stderr"] > 0
    assert abs(q["sigma_mhz"] / 0.6 - 1) < 0.03 and 0 < q["sigma_mhz_stderr"] < 0.02
    assert "cq_mhz" not in q and "delta_aniso_ppm" not in q          # only its own model's parameters
    assert b["shape"] == "pseudo-voigt" and "sigma_mhz" not in b and abs(b["center_ppm"] + 41) < 0.02


def test_quadrupolar_component(tmp_path, capsys):
    pytest.importorskip("mrsimulator")
    from specproc.techniques.nmr.quadrupolar import ct_lineshape

    x = np.linspace(80, -20, 1000)
    y = ct_lineshape(x, 1.0, 29.0, 2.828, 0.41, 0.3, isotope="11B", larmor_mhz=SF_B)
    y = y / y.max() + 0.01 * np.random.default_rng(1).standard_normal(x.size)
    f = tmp_path / "n.csv"
    _csv(f, x, y, "11B", SF_B)
    rc, e = _run(["nmr", str(f), "--peaks=N2BH=25", "--shape", "N2BH=quadrupolar"], capsys)
    c = e["components"][0]
    assert rc == 0 and c["shape"] == "quadrupolar"
    assert abs(c["center_ppm"] - 29.0) < 0.2 and abs(c["cq_mhz"] / 2.828 - 1) < 0.02 and abs(c["eta"] - 0.41) < 0.05
    for k in ("center_ppm_stderr", "cq_mhz_stderr", "eta_stderr"):
        assert c[k] is not None and c[k] > 0
    assert c["unconstrained"] is False


def test_csa_component_static(tmp_path, capsys):
    x = np.linspace(150, -150, 1500)
    y = csa(x, 100, 20, -60, 0.3, 1.0) + np.random.default_rng(2).standard_normal(x.size) * 0.025
    f = tmp_path / "c.csv"
    _csv(f, x, y, "13C", SF_C)
    rc, e = _run(["nmr", str(f), "--peaks=C=10", "--shape", "C=csa", "--mas-rate", "0"], capsys)
    c = e["components"][0]
    assert rc == 0 and c["shape"] == "csa" and abs(c["center_ppm"] - 20) < 0.3
    assert abs(c["delta_aniso_ppm"] + 60) < 1.5 and c["delta_aniso_ppm_stderr"] > 0
    assert abs(c["eta"] - 0.3) < 0.05 and c["eta_stderr"] > 0
