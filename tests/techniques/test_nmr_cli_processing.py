"""#25 NMR processing options: --apodization / --lb and --reference (CLI and Python), checked on data
with a known truth: a line at a known ppm appears at known + offset, an exponential window of LB Hz
adds LB Hz to a Lorentzian FWHM, and the JSON says what was applied."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

import specproc as sp
from specproc.core.errors import ParameterError

sys.path.insert(0, str(Path(__file__).parent))
from _nmr_synth import fid, spectrum  # noqa: E402

SF = 128.38
SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "nmr" / "LiBH4_11B" / "1"


def _fit(m, **proc):
    r = sp.nmr.deconvolve(m, peaks={"A": -41.0}, shape="lorentzian", processing=proc or None)
    return r, r.table.iloc[0]


def test_exponential_window_adds_lb_to_a_lorentzian_fwhm():
    m = fid([(-41.0, 1.0, 100.0)], noise=0.001)      # Lorentzian, FWHM 100 Hz
    _, none = _fit(m, apodization="none")
    r, lb = _fit(m, apodization="exponential", lb_hz=200.0)
    assert abs(none["fwhm_ppm"] * SF - 100.0) < 1.0
    assert abs((lb["fwhm_ppm"] - none["fwhm_ppm"]) * SF - 200.0) < 3.0    # +LB Hz (not LB/pi)
    assert r.meta["apodization"] == "exponential" and r.meta["lb_hz"] == 200.0
    rg, _ = _fit(m, apodization="gaussian", lb_hz=50.0)
    assert rg.meta["apodization"] == "gaussian"


def test_reference_moves_lines_by_the_offset_fid_and_spectrum():
    m = fid([(-41.0, 1.0, 100.0)], noise=0.001)
    _, base = _fit(m)
    r, ref = _fit(m, reference=2.5)
    assert abs(ref["center_ppm"] - base["center_ppm"] - 2.5) < 1e-6
    assert abs(base["center_ppm"] + 41.0) < 0.01
    assert r.meta["processing"]["reference_shift_ppm"] == 2.5
    s = spectrum([(-41.0, 1.0, 1.0)], noise=0.002)          # an already processed spectrum
    a = sp.nmr.deconvolve(s, peaks={"A": -40.0}).table.iloc[0]["center_ppm"]
    rb = sp.nmr.deconvolve(s, peaks={"A": -38.0}, processing={"reference": 3.0})
    assert abs(rb.table.iloc[0]["center_ppm"] - a - 3.0) < 1e-3
    assert rb.meta["processing"]["reference_shift_ppm"] == 3.0
    with pytest.raises(ParameterError, match="apply to an FID"):
        sp.nmr.deconvolve(s, peaks={"A": -41.0}, processing={"apodization": "gaussian", "lb_hz": 5.0})


def _csv(path, x, y):
    path.write_text("# nucleus: 11B\n# sf_mhz: 128.38\nppm,intensity\n" + "\n".join(f"{a:.6f},{b:.8g}" for a, b in zip(x, y)))


def test_cli_options_flow_into_json(tmp_path, capsys):
    from specproc.cli import main

    if not SAMPLE.exists():
        pytest.skip("sample data absent")
    base = ["nmr", str(SAMPLE), "--peaks=BH4=-44", "--json", "--region=-30:-60"]
    assert main(base + ["--apodization", "exponential", "--lb", "10"]) == 0
    a = json.loads(capsys.readouterr().out)[0]
    assert main(base + ["--lb", "200", "--reference", "1.5"]) == 0
    b = json.loads(capsys.readouterr().out)[0]
    assert a["processing"]["apodization"] == "exponential" and a["processing"]["lb_hz"] == 10.0
    assert b["processing"]["lb_hz"] == 200.0 and b["processing"]["reference_shift_ppm"] == 1.5
    ca, cb = a["components"][0], b["components"][0]
    assert abs(ca["center_ppm"] + 44.3) < 0.05                       # truth.json: BH4 at -44.3 ppm
    assert abs(cb["center_ppm"] - ca["center_ppm"] - 1.5) < 0.01
    # 190 Hz more of exponential window: the pseudo-Voigt line widens by most of it (its Lorentzian part all)
    assert 0.6 * 190 < (cb["fwhm_ppm"] - ca["fwhm_ppm"]) * SF < 1.05 * 190


def test_cli_usage_errors_and_spectrum_input(tmp_path, capsys):
    from specproc.cli import main

    x = np.linspace(-20, -70, 500)
    f = tmp_path / "s.csv"
    _csv(f, x, sp.fitting.lineshapes.lorentzian(x, 1.0, -41.0, 0.4) + 0.002 * np.random.default_rng(0).standard_normal(x.size))
    assert main(["nmr", str(f), "--lb", "5", "--apodization", "none"]) == 2
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(["nmr", str(f), "--lb", "-3"])
    assert e.value.code == 2
    capsys.readouterr()
    assert main(["nmr", str(f), "--peaks=A=-41", "--reference", "-2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)[0]
    assert abs(out["components"][0]["center_ppm"] + 43.0) < 0.01 and out["processing"]["reference_shift_ppm"] == -2.0
    rc = main(["nmr", str(f), "--peaks=A=-41", "--lb", "5", "--json"])
    out = json.loads(capsys.readouterr().out)[0]
    assert rc == 1 and "apply to an FID" in json.dumps(out)
