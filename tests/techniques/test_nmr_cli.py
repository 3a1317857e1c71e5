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


def test_the_command_exits_fast_with_its_output_and_exit_code(tmp_path):
    """`specproc` (cli.console) leaves with os._exit after main(): the JSON is complete, the exit
    code is main's (1: one input failed), the report is written and atexit handlers have run."""
    import subprocess

    from specproc.fitting.lineshapes import pseudo_voigt

    x = np.linspace(-20, -70, 400)
    rng = np.random.default_rng(2)
    files = []
    for i in range(3):
        files.append(tmp_path / f"s{i}.csv")
        _write(files[-1], x, pseudo_voigt(x, 1.0, -41.0 + 0.1 * i, 0.5, 0.5) + 0.004 * rng.standard_normal(x.size))
    (tmp_path / "bad.csv").write_text("ppm,intensity\n1,nan\n")
    mark = tmp_path / "atexit.txt"
    code = ("import atexit, pathlib, sys; atexit.register(pathlib.Path(sys.argv.pop(1)).write_text, 'ran'); "
            "from specproc.cli import console; sys.argv[0] = 'specproc'; console()")
    p = subprocess.run([sys.executable, "-c", code, str(mark), "nmr", *map(str, files), str(tmp_path / "bad.csv"),
                        "--peaks=-41", "--json", "--report", str(tmp_path / "r.html")], capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 1, p.stderr[-2000:]
    out = json.loads(p.stdout)
    assert len(out) == 4 and "error" in out[3] and all("components" in e for e in out[:3])
    assert "</html>" in (tmp_path / "r.html").read_text()[-200:]
    assert mark.read_text() == "ran"
