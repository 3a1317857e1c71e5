"""The fast paths of ``specproc nmr`` on many files give what the plain paths give.

- text reader: pyarrow's parser (plain blocks) and numpy.loadtxt (everything else) read the same
  numbers; the SHA-256 of the bytes already read is the file's SHA-256;
- stacks: the component tables sliced from one frame equal one table built per result (columns,
  dtypes incl. all-None object columns, index), and the broadcast curves equal per-spectrum ones.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import specproc as sp
from specproc.core.provenance import sha256_path
from specproc.io import text as T


def _write(path, body: str, head: str = "# nucleus: 11B\n# sf_mhz: 128.38\nppm,intensity\n", newline="\n"):
    path.write_bytes((head + body).replace("\n", newline).encode("latin-1"))
    return path


@pytest.fixture
def rows():
    rng = np.random.default_rng(11)
    x = np.sort(rng.uniform(-80, 60, 300))[::-1]
    y = rng.normal(0, 1, x.size) * 10 ** rng.uniform(-6, 3, x.size)
    return x, y


@pytest.mark.parametrize("kind", ["plain", "semicolon", "tab", "crlf", "comments", "extra", "ragged", "padded",
                                  "blank", "exp"])
def test_reader_paths_read_the_same_numbers(tmp_path, rows, kind):
    x, y = rows
    fmt = {"exp": "{:.17e}{}{:.17e}"}.get(kind, "{!r}{}{!r}")
    sep = {"semicolon": ";", "tab": "\t"}.get(kind, ",")
    lines = [fmt.format(float(a), sep, float(b)) for a, b in zip(x, y)]
    if kind == "comments":
        lines.insert(5, "# a comment inside the data")
        lines[7] += "  # trailing"
    if kind == "extra":
        lines = [ln + ",1,2" for ln in lines]
    if kind == "ragged":
        lines[3] += ",7"
    if kind == "padded":
        lines = [ln.replace(",", " , ") for ln in lines]
    if kind == "blank":
        lines.insert(10, "")
    f = _write(tmp_path / f"{kind}.csv", "\n".join(lines) + "\n", newline="\r\n" if kind == "crlf" else "\n")
    m = sp.read(f)
    ref = np.loadtxt(f, delimiter=sep, comments="#", skiprows=3, usecols=(0, 1), ndmin=2, encoding="latin-1")
    np.testing.assert_array_equal(m.coords["shift"].values, ref[:, 0])
    np.testing.assert_array_equal(m.values, ref[:, 1])
    assert m.attrs["provenance"]["sha256"] == sha256_path(f)
    # which parser read it: pyarrow only for plain blocks
    data = f.read_bytes()
    start = data.index(b"ppm,intensity") + len(b"ppm,intensity") + (2 if kind == "crlf" else 1)
    fast = T._plain_numbers(data, start, sep)
    assert (fast is not None) == (kind not in ("comments", "ragged"))
    if fast is not None:
        np.testing.assert_array_equal(fast, ref)
        assert fast.flags.writeable


@pytest.mark.parametrize("body,match", [("1,2\n2,abc\n", "line 5: non-numeric"), ("1,2\n2\n", "expected 2 columns"),
                                        ("1,2\n2,nan\n", "NaN"), ("1,2\n2,\n", "line 5")])
def test_errors_keep_their_line_numbers(tmp_path, body, match):
    f = _write(tmp_path / "bad.csv", body)
    with pytest.raises(sp.core.errors.ReaderError, match=match):
        sp.read(f, reader="nmr-text")


def test_large_files_are_streamed(tmp_path, rows, monkeypatch):
    x, y = rows
    f = _write(tmp_path / "big.csv", "\n".join(f"{float(a)!r},{float(b)!r}" for a, b in zip(x, y)) + "\n")
    monkeypatch.setattr(T, "IN_MEMORY_MAX", 10)
    m = sp.read(f)
    np.testing.assert_array_equal(m.values, y)
    assert m.attrs["provenance"]["sha256"] == sha256_path(f)


def _rows(i: int, none_col: bool) -> list[dict]:
    return [{"name": f"p{j}", "kind": "site", "center_ppm": -40.0 + j + i, "center_ppm_stderr": None if none_col else
             (0.01 * j if j else None), "fwhm_ppm": 2.0, "n_sidebands": j, "at_bound": "" if j else "p1_center"}
            for j in range(3)]


def test_tables_kept_as_rows_read_like_dataframes():
    """A result's tables may be kept as rows (1,000 results of a batch build no DataFrame): read
    one and it is the DataFrame built from the rows; records() give the same rows either way."""
    from specproc.core.result import Result, Tables, frame, records

    for i in range(3):
        rows = _rows(i, none_col=(i == 2))
        r = Result(processor="x.y", technique="x", tables={"components": rows, "other": [{"a": 1}]},
                   main_table="components")
        assert isinstance(r.tables, Tables) and list(r.tables) == ["components", "other"]
        want = records(frame(rows))

        def same(got):  # None in a row is NaN in a float column of the DataFrame (both JSON null)
            assert [list(g) for g in got] == [list(w) for w in want]
            for g, w in zip(got, want):
                for k in w:
                    missing = g[k] is None or g[k] != g[k]
                    assert (missing and (w[k] is None or w[k] != w[k])) or g[k] == w[k], (k, g[k], w[k])

        same(r.records())  # from the rows: no DataFrame built yet
        assert isinstance(r.tables._d["components"], list)
        pd.testing.assert_frame_equal(r.table, frame(rows))
        same(r.records())  # the same once the DataFrame exists
    assert r.table["center_ppm_stderr"].dtype == object  # None in every row: no float column
    assert records(Result(processor="x.y", technique="x", tables={"t": frame([{"a": 1.5}])}).table) == [{"a": 1.5}]


def test_curve_stack_equals_per_spectrum_curves():
    from specproc.fitting.lineshapes import evaluate
    from specproc.techniques.nmr.deconvolution import curve_stack, build, parse_sites, Prepared
    from specproc.techniques.nmr.processors import DeconvolveParams

    x = np.linspace(60, -80, 512)
    p = DeconvolveParams(peaks=[-41.0, 23.5], baseline="linear")
    y = evaluate("pseudo-voigt", x, amplitude=1.0, center=-41.0, sigma=1.0, fraction=0.5) + 0.01
    pr = Prepared(src=None, attrs={}, x=x, y=y, step=None, noise=1e-3, meta={}, rate=None, sf=128.38, nucleus="11B")
    c = build(parse_sites(p.peaks, p.lineshape), x, y, pr, p)
    rng = np.random.default_rng(3)
    cols = {"p1_amplitude": rng.uniform(0.5, 2, 70), "p1_center": rng.uniform(-42, -40, 70),
            "p1_sigma": rng.uniform(0.5, 2, 70), "p1_fraction": rng.uniform(0, 1, 70),
            "p2_amplitude": rng.uniform(0.5, 2, 70), "p2_center": rng.uniform(22, 25, 70),
            "p2_sigma": rng.uniform(0.5, 2, 70), "p2_fraction": rng.uniform(0, 1, 70),
            "bl_c0": rng.normal(size=70), "bl_c1": rng.normal(size=70)}
    got, best = curve_stack(c, x, cols, block=16)
    for k in (0, 33, 69):
        for pre in ("p1_", "p2_"):
            one = evaluate("pseudo-voigt", x, **{n: float(cols[pre + n][k]) for n in ("amplitude", "center", "sigma",
                                                                                     "fraction")})
            np.testing.assert_allclose(got[pre][k], one, rtol=1e-14, atol=0)
        np.testing.assert_allclose(got["bl_"][k], cols["bl_c0"][k] + cols["bl_c1"][k] * x, rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(best[k], got["p1_"][k] + got["p2_"][k] + got["bl_"][k], rtol=1e-14, atol=1e-15)
    tops = curve_stack(c, x, cols, block=16, keep=False)  # the maxima only, curves dropped block by block
    for key in ("p1_", "p2_", "bl_"):
        np.testing.assert_array_equal(tops[key], got[key].max(axis=1))
    np.testing.assert_array_equal(tops["fit"], best.max(axis=1))



def test_stack_figures_are_made_when_read_and_equal_the_eager_ones(tmp_path):
    """A stack's results keep their figure as a recipe (Plots): made on first read, equal to the
    curves evaluated from the fitted values, kept once made; pickling and to_state make them."""
    import pickle

    from specproc.core.result import Plots, Result
    from specproc.fitting.lineshapes import evaluate
    from specproc.techniques.nmr.stacks import deconvolve_many
    from specproc.techniques.nmr.processors import DeconvolveParams

    x = np.linspace(60, -80, 1024)
    rng = np.random.default_rng(5)
    ms = []
    for i in range(6):
        y = 0.001 * x + 0.05 + evaluate("pseudo-voigt", x, amplitude=1.0, center=-41.0 + 0.1 * i, sigma=1.0,
                                        fraction=0.5) + 0.003 * rng.standard_normal(x.size)
        ms.append(sp.core.measurement.new_measurement(y, [("shift", x, "ppm")], technique="nmr",
                                                      metadata={"nucleus": "11B"}, sample=f"s{i}"))
    p = DeconvolveParams(peaks=[-41.0], baseline="linear")
    rs = deconvolve_many(ms, p)
    r = rs[2]
    assert isinstance(r.plots, Plots) and r.plots._items is None       # not made by the fit
    spec = r.plots[0]
    assert r.plots._items is not None and r.plots[0] is spec          # made once, kept
    v = {k: r.quantities[k].value for k in r.quantities}
    comp = next(sr["y"] for sr in spec["series"] if sr["role"] == "component")
    fit = next(sr["y"] for sr in spec["series"] if sr["role"] == "fit")
    assert float(comp.max()) == pytest.approx(r.table["height"][0], rel=1e-12)
    assert float(fit.max()) / r.meta["noise"] == pytest.approx(r.meta["snr"], rel=1e-12)
    np.testing.assert_allclose(next(sr["y"] for sr in spec["series"] if sr["role"] == "residual"),
                               np.asarray(ms[2].values) - fit, rtol=0, atol=1e-12)
    assert abs(v["p1.center_ppm"] + 40.8) < 0.01
    back = pickle.loads(pickle.dumps(rs[4]))            # a recipe crosses processes unmade ...
    assert isinstance(back.plots, Plots) and back.plots._items is None and len(back.plots) == 1
    for a, b in zip(back.plots[0]["series"], rs[4].plots[0]["series"]):   # ... and makes the same figure
        np.testing.assert_array_equal(a["y"], b["y"])
    made = pickle.loads(pickle.dumps(rs[4]))            # a made list crosses as a list
    assert made.plots._items is not None
    assert Result.from_dict(rs[5].to_state()).plots[0]["title"] == rs[5].plots[0]["title"]
    lazy = Result("x.y", "x", plots=lambda: [{"kind": "xy"}])             # any function: made when pickled
    assert pickle.loads(pickle.dumps(lazy)).plots._items == [{"kind": "xy"}]


def test_report_section_makes_only_the_figures_it_draws():
    """Figures of many results as one sequence: indexing makes one result's figures, not all."""
    from specproc.core.result import Figures, Plots, Result

    made = []

    def recipe(i):
        made.append(i)
        return [{"kind": "xy", "title": f"r{i}"}]

    rs = [Result("x.y", "x", plots=Plots(make=(lambda i=i: recipe(i)), n=1)) for i in range(1000)]
    rs.insert(500, Result("x.y", "x", plots=[{"kind": "xy", "title": "a"}, {"kind": "xy", "title": "b"}]))
    figs = Figures(rs)
    assert len(figs) == 1002 and made == []
    assert figs[0]["title"] == "r0" and figs[501]["title"] == "b" and figs[-1]["title"] == "r999"
    assert figs[502]["title"] == "r500" and sorted(made) == [0, 500, 999]
    with pytest.raises(IndexError):
        figs[1002]
