"""Generate the study's FTIR spectra with known truth (deterministic; run from the repo root).

    .venv/bin/python sample_data/generate_ftir.py

Writes ``sample_data/ftir/<sample>.jdx`` (JCAMP-DX 4.24 absorbance, OPUS-like: 4000 -> 400 cm-1,
0.964 cm-1 spacing = 4 cm-1 resolution with zero filling 2; LiNBH in compressed ASDF DIF form),
``sample_data/ftir/csv/<sample>.csv`` (percent transmittance), ``sample_data/ftir/spc/<sample>.spc``
(Galactic SPC absorbance, for LiBH4 and LiBH4-70LiNBH) and ``truth.json``.

Synthesis (also imported by the tests, with random truths): pseudo-Voigt bands in absorbance,
a sloping (quadratic) baseline, atmospheric CO2 (the nu3 P/R branches around 2349 cm-1 from a
rigid-rotor line list with nuclear-spin statistics — even J only — at 296 K, and the nu2 band
at 667 cm-1 with its Q branch), water-vapour lines (narrow Lorentzians at seeded positions in
the bending and stretching regions), all seen through a Gaussian instrument line of FWHM =
resolution, plus white Gaussian noise.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "ftir"
GRID = np.linspace(400.0, 4000.0, 3735)   # 0.964 cm-1
RESOLUTION = 4.0
HC_K = 1.4387769                          # cm K (second radiation constant)


def pv(x, center, fwhm, height, fraction):
    """Height-normalised pseudo-Voigt (lmfit convention: both parts FWHM = fwhm)."""
    s = fwhm / 2.0
    sg = fwhm / (2 * np.sqrt(2 * np.log(2)))
    return height * ((1 - fraction) * np.exp(-((x - center) ** 2) / (2 * sg * sg))
                     + fraction * s * s / ((x - center) ** 2 + s * s))


def pv_area(fwhm, height, fraction):
    g = height * fwhm / (2 * np.sqrt(2 * np.log(2))) * np.sqrt(2 * np.pi)
    lo = height * np.pi * fwhm / 2
    return (1 - fraction) * g + fraction * lo


def _instrument(x, lines_x, lines_i, resolution):
    """Stick lines seen through a Gaussian instrument function of FWHM ``resolution``."""
    sg = resolution / (2 * np.sqrt(2 * np.log(2)))
    out = np.zeros_like(x)
    for c, a in zip(lines_x, lines_i):
        sel = np.abs(x - c) < 6 * sg
        out[sel] += a * np.exp(-((x[sel] - c) ** 2) / (2 * sg * sg))
    return out


def co2(x, amount=1.0, resolution=RESOLUTION, temperature=296.0):
    """CO2 absorbance: nu3 (P/R branches, maxima ~2337 / 2361 cm-1) + nu2 (667 cm-1 Q + P/R).

    Scaled so that the stronger nu3 branch peaks at ``amount`` (absorbance units).
    """
    J = np.arange(0, 120, 2)                      # 16O12C16O: only even J in the ground state
    pop = (2 * J + 1) * np.exp(-0.39021 * J * (J + 1) * HC_K / temperature)
    B0, B1, D = 0.39021, 0.38714, 1.33e-7
    e0 = B0 * J * (J + 1) - D * (J * (J + 1)) ** 2
    r = 2349.143 + B1 * (J + 1) * (J + 2) - D * ((J + 1) * (J + 2)) ** 2 - e0
    Jp = J[J > 0]
    p = 2349.143 + B1 * (Jp - 1) * Jp - D * ((Jp - 1) * Jp) ** 2 - e0[J > 0]
    nu3 = _instrument(x, np.r_[r, p], np.r_[pop * (J + 1) / (2 * J + 1), pop[J > 0] * Jp / (2 * Jp + 1)],
                      resolution)
    # nu2 bending band: a strong Q branch at 667.4 and weak P/R wings (1/20 of nu3 overall)
    q = _instrument(x, [667.38], [pop.sum() * 0.5], resolution)
    r2 = 667.38 + 2 * B0 * (J + 1)
    p2 = 667.38 - 2 * B0 * Jp
    wings = _instrument(x, np.r_[r2, p2], np.r_[pop, pop[J > 0]] * 0.25, resolution)
    grid = np.linspace(2200, 2500, 3001)
    ref = _instrument(grid, np.r_[r, p], np.r_[pop * (J + 1) / (2 * J + 1), pop[J > 0] * Jp / (2 * Jp + 1)],
                      resolution).max()
    return amount * (nu3 + 0.05 * (q + wings)) / ref


def water(x, amount=1.0, seed=7, resolution=RESOLUTION):
    """Water-vapour lines: ~70 narrow lines in 1350-1950 and 3550-3950 cm-1, strongest = ``amount``."""
    rng = np.random.default_rng(seed)
    pos = np.r_[rng.uniform(1350, 1950, 45), rng.uniform(3550, 3950, 30)]
    centre = np.where(pos < 2000, 1595.0, 3756.0)
    inten = rng.lognormal(0, 0.8, pos.size) * np.exp(-((pos - centre) / 180.0) ** 2)
    inten = inten / inten.max() * amount
    return _instrument(x, pos, inten, max(resolution, 1.0))


def synth(bands, x=GRID, *, baseline=(0.04, 1.5e-5, 2e-9), co2_amount=0.0, water_amount=0.0, noise=0.002,
          seed=0, resolution=RESOLUTION, water_seed=7):
    """Absorbance spectrum and its parts.

    Parameters
    ----------
    bands : list of dict
        ``{"name", "center", "fwhm", "height", "fraction"}`` (cm-1, absorbance).
    baseline : (a, b, c)
        ``a + b (x - 400) + c (x - 400)^2``.
    """
    rng = np.random.default_rng(seed)
    x = np.asarray(x, float)
    sample = np.zeros_like(x)
    for b in bands:
        sample += pv(x, b["center"], b["fwhm"], b["height"], b.get("fraction", 0.3))
    a, s, c = baseline
    base = a + s * (x - 400.0) + c * (x - 400.0) ** 2
    atm = (co2(x, co2_amount, resolution) if co2_amount else 0.0) + \
        (water(x, water_amount, water_seed, resolution) if water_amount else 0.0)
    y = sample + base + atm + rng.normal(0.0, noise, x.size)
    return y, {"sample": sample, "baseline": base, "atmosphere": atm}


# ------------------------------------------------------------------ writers
def write_jcamp(path, x, y, title, yunits="ABSORBANCE", compress=False, yfactor=1e-5, origin="specproc synthetic"):
    """JCAMP-DX 4.24 (X++(Y..Y)), x decreasing like OPUS exports; AFFN or ASDF DIF compressed."""
    xd, yd = x[::-1], y[::-1]
    n = xd.size
    dx = (xd[-1] - xd[0]) / (n - 1)
    iy = np.round(yd / yfactor).astype(np.int64)
    head = [f"##TITLE= {title}", "##JCAMP-DX= 4.24", "##DATA TYPE= INFRARED SPECTRUM", f"##ORIGIN= {origin}",
            "##OWNER= public domain (generated)", "##SPECTROMETER/DATA SYSTEM= synthetic (OPUS-like export)",
            f"##RESOLUTION= {RESOLUTION}", "##XUNITS= 1/CM", f"##YUNITS= {yunits}", "##XFACTOR= 1.0",
            f"##YFACTOR= {yfactor:g}", f"##FIRSTX= {xd[0]:.6f}", f"##LASTX= {xd[-1]:.6f}", f"##DELTAX= {dx:.8f}",
            f"##NPOINTS= {n}", f"##FIRSTY= {iy[0] * yfactor:.6g}", "##XYDATA= (X++(Y..Y))"]
    lines = []
    per = 10
    i = 0
    while i < n:
        chunk = iy[i:i + per]
        xv = xd[i - 1] if (compress and i) else xd[i]   # DIF lines start at the repeated Y-check point
        if compress:
            lines.append(f"{xv:.4f}" + _difdup(chunk, iy[i - 1] if i else None))
        else:
            lines.append(f"{xv:.4f} " + " ".join(str(int(v)) for v in chunk))
        i += per
    Path(path).write_text("\n".join(head + lines + ["##END="]) + "\n")


_SQZ = {**{0: "@"}, **{i: "ABCDEFGHI"[i - 1] for i in range(1, 10)}}
_SQZN = {i: "abcdefghi"[i - 1] for i in range(1, 10)}
_DIF = {**{0: "%"}, **{i: "JKLMNOPQR"[i - 1] for i in range(1, 10)}}
_DIFN = {i: "jklmnopqr"[i - 1] for i in range(1, 10)}


def _enc(v, pos, neg):
    s = str(abs(int(v)))
    first = pos[int(s[0])] if v >= 0 else neg[int(s[0])]
    return first + s[1:]


def _difdup(chunk, prev):
    """ASDF DIF form (first value SQZ, then DIF; the first value of a line after the first repeats
    the previous line's last value as the Y check)."""
    vals = list(chunk) if prev is None else [prev] + list(chunk)
    out = _enc(vals[0], _SQZ, _SQZN)
    for a, b in zip(vals[:-1], vals[1:]):
        out += _enc(b - a, _DIF, _DIFN)
    return out


def write_csv(path, x, t_percent, sample):
    with open(path, "w") as fh:
        fh.write(f"# sample: {sample}\n# resolution_cm1: {RESOLUTION}\n# instrument: synthetic FTIR\n")
        fh.write("wavenumber_cm-1,%T\n")
        for a, b in zip(x[::-1], t_percent[::-1]):
            fh.write(f"{a:.4f},{b:.5f}\n")


def write_spc(path, x, y, sample, ytype="absorbance", comment=None):
    """Galactic SPC (new LSB format, evenly spaced X, float Y) through spc-io's writer.

    spc-io's high-level writer leaves the axis / value types at "arbitrary": they are set on
    the raw main header (``fxtype`` 1 = wavenumber; ``fytype`` 2 = absorbance, 128 = transmittance).
    """
    from spc_io import SPC
    from spc_io.high_level.even_axis import EvenAxis
    from spc_io.low_level.headers.fxytype import Fxtype, Fytype

    xd, yd = np.asarray(x, float)[::-1], np.asarray(y, float)[::-1]        # 4000 -> 400 like OPUS
    spc = SPC(xarray=EvenAxis(float(xd[0]), float(xd[-1]), int(xd.size)))
    spc.add_subfile(yarray=yd.astype(np.float32))
    raw = spc.to_spc_raw()
    h = raw.main_header
    h.fxtype = Fxtype(1)
    h.fytype = Fytype({"absorbance": 2, "transmittance": 128}[ytype])
    h.fres = f"{RESOLUTION:g}".encode()
    h.fcmnt = (comment or f"{sample} (synthetic)").encode()[:129]
    Path(path).write_bytes(raw.to_bytes())


# ------------------------------------------------------------------ the study
def study():
    """The five samples: bands (cm-1, absorbance), atmosphere, baseline, seeds."""
    libh4 = [{"name": "BH_stretch", "center": 2299.0, "fwhm": 46.0, "height": 0.55, "fraction": 0.4},
             {"name": "BH_stretch_low", "center": 2226.0, "fwhm": 40.0, "height": 0.32, "fraction": 0.4},
             {"name": "BH_bend", "center": 1124.0, "fwhm": 34.0, "height": 0.48, "fraction": 0.3},
             {"name": "BH_bend_high", "center": 1238.0, "fwhm": 42.0, "height": 0.22, "fraction": 0.3}]
    linh2bh3 = [{"name": "NH_stretch", "center": 3312.0, "fwhm": 34.0, "height": 0.30, "fraction": 0.3},
                {"name": "NH_stretch_low", "center": 3251.0, "fwhm": 40.0, "height": 0.24, "fraction": 0.3},
                {"name": "BH_stretch", "center": 2318.0, "fwhm": 62.0, "height": 0.42, "fraction": 0.3},
                {"name": "BH_stretch_low", "center": 2196.0, "fwhm": 50.0, "height": 0.20, "fraction": 0.3},
                {"name": "NH_bend", "center": 1562.0, "fwhm": 30.0, "height": 0.18, "fraction": 0.3},
                {"name": "BH_bend", "center": 1158.0, "fwhm": 40.0, "height": 0.26, "fraction": 0.3}]
    linbh = [{"name": "BN_stretch", "center": 1385.0, "fwhm": 140.0, "height": 0.45, "fraction": 0.2},
             {"name": "BN_bend", "center": 790.0, "fwhm": 60.0, "height": 0.12, "fraction": 0.2}]
    mix1 = [dict(b, height=b["height"] * 0.3) for b in libh4 if b["name"] != "BH_stretch"] + \
           [dict(b, height=b["height"] * 0.7) for b in linh2bh3 if b["name"] != "BH_stretch"] + \
           [{"name": "BH_stretch", "center": 2311.0, "fwhm": 58.0, "height": 0.46, "fraction": 0.35}]
    mix1 = [dict(b, name=b["name"] + ("_LiBH4" if b in libh4 else "")) for b in mix1]
    confined = [{"name": "BH_stretch", "center": 2289.0, "fwhm": 52.0, "height": 0.30, "fraction": 0.4},
                {"name": "BH_stretch_low", "center": 2218.0, "fwhm": 44.0, "height": 0.17, "fraction": 0.4},
                {"name": "BH_bend", "center": 1119.0, "fwhm": 38.0, "height": 0.25, "fraction": 0.3}] + \
               [dict(b, height=b["height"] * 0.6) for b in linbh]
    return {
        "LiBH4": dict(bands=libh4, co2=0.08, water=0.03, baseline=(0.05, 1.2e-5, 3e-9), seed=21),
        "LiNH2BH3": dict(bands=linh2bh3, co2=0.05, water=0.04, baseline=(0.03, 2.0e-5, 1e-9), seed=22),
        "LiBH4-70LiNH2BH3": dict(bands=mix1, co2=0.10, water=0.02, baseline=(0.06, 1.0e-5, 4e-9), seed=23),
        "LiNBH": dict(bands=linbh, co2=0.06, water=0.03, baseline=(0.08, 2.5e-5, 2e-9), seed=24),
        "LiBH4-70LiNBH": dict(bands=confined, co2=0.09, water=0.025, baseline=(0.07, 1.8e-5, 3e-9), seed=25),
    }


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "csv").mkdir(exist_ok=True)
    (OUT / "spc").mkdir(exist_ok=True)
    noise = 0.002
    truth = {"grid_cm1": [float(GRID[0]), float(GRID[-1]), int(GRID.size)], "resolution_cm1": RESOLUTION,
             "noise_sd_absorbance": noise, "lineshape": "pseudo-voigt (lmfit convention, FWHM, height)",
             "co2_branches_cm1": [2337, 2361, 667], "samples": {}}
    for name, s in study().items():
        y, parts = synth(s["bands"], GRID, baseline=s["baseline"], co2_amount=s["co2"], water_amount=s["water"],
                         noise=noise, seed=s["seed"])
        compress = name == "LiNBH"
        write_jcamp(OUT / f"{name}.jdx", GRID, y, name, compress=compress)
        t = 100.0 * 10.0 ** (-y)
        write_csv(OUT / "csv" / f"{name}.csv", GRID, t, name)
        spc = None
        if name in ("LiBH4", "LiBH4-70LiNBH"):        # the red-shift pair also as SPC (absorbance)
            spc = f"spc/{name}.spc"
            write_spc(OUT / spc, GRID, y, name)
        truth["samples"][name] = {
            "jcamp": f"{name}.jdx", "csv": f"csv/{name}.csv", "spc": spc,
            "jcamp_form": "ASDF DIF" if compress else "AFFN",
            "csv_y": "percent transmittance", "baseline_abc": list(s["baseline"]), "co2_amount": s["co2"],
            "water_amount": s["water"], "seed": s["seed"],
            "bands": {b["name"]: {"center_cm1": b["center"], "fwhm_cm1": b["fwhm"], "height": b["height"],
                                  "fraction": b["fraction"],
                                  "area": float(pv_area(b["fwhm"], b["height"], b["fraction"]))}
                      for b in s["bands"]}}
    bh = truth["samples"]
    truth["bh_stretch_shift_cm1"] = (bh["LiBH4-70LiNBH"]["bands"]["BH_stretch"]["center_cm1"]
                                     - bh["LiBH4"]["bands"]["BH_stretch"]["center_cm1"])
    (OUT / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    print(f"wrote {len(bh)} FTIR spectra to {OUT}")


if __name__ == "__main__":
    main()
