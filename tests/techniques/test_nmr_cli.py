import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))


def _write(path, x, y):
    lines = ["# nucleus: 11B", "# sf_mhz: 128.38", "ppm,intensity"] + [f"{a:.6f},{b:.8g}" for a, b in zip(x, y)]
    path.write_text("\n".join(lines) + "\n")


def test_cli_json_mixed_good_and_bad(tmp_path, capsys):
    from specproc.cli import main
    from specproc.fitting.lineshapes import pseudo_voigt

    x = np.linspace(-20, -70, 400)
    rng = np.random.default_rng(1)
    good = tmp_path / "good.csv"
    _write(good, x, pseudo_voigt(x, 1.0, -41.0, 0.5, 0.5) + 0.004 * rng.standard_normal(x.size))
    bad = tmp_path / "bad.csv"
    bad.write_text("ppm,intensity\n1,nan\n")
    missing = tmp_path / "missing.csv"
    rc = main(["nmr", str(good), str(bad), str(missing), "--json", "--region=-30:-55"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 1
    assert [e["file"] for e in out] == [str(good), str(bad), str(missing)]
    g = out[0]
    assert {"file", "sample", "nucleus", "components", "fit"} <= set(g)
    c = g["components"][0]
    assert {"name", "center_ppm", "center_ppm_stderr", "fwhm_ppm", "area_fraction", "area_fraction_stderr"} <= set(c)
    assert abs(c["center_ppm"] + 41.0) < 0.05 and {"r2", "redchi"} <= set(g["fit"])
    assert "error" in out[1] and "error" in out[2]
    rc = main(["nmr", str(good), "--peaks=-41", "--json", "--report", str(tmp_path / "r.html")])
    assert rc == 0
    json.loads(capsys.readouterr().out)
    assert (tmp_path / "r.html").stat().st_size > 1000
