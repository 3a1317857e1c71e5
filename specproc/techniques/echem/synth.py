"""Synthetic electrochemistry data with known truth, and writers of the instrument formats.

Used by ``sample_data/generate_echem.py`` and the tests (no study number lives here): impedance
from a circuit with noise proportional to ``|Z|``, a polarisation current, galvanostatic
cycling with or without a short circuit; writers of EC-Lab ``.mpt``, Gamry ``.DTA``, ZPlot ``.z``,
CSV and NOVA text in the layouts the readers of :mod:`specproc.io` read.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

KB_EV = 8.617333262e-5


# ------------------------------------------------------------------------------------------ signals
def frequencies(f_max: float = 7e6, f_min: float = 0.1, per_decade: int = 10) -> np.ndarray:
    n = int(round(np.log10(f_max / f_min) * per_decade)) + 1
    return np.logspace(np.log10(f_max), np.log10(f_min), n)


def impedance(circuit: str, values, f, noise: float = 0.005, rng=None) -> np.ndarray:
    """``Z`` of ``circuit`` at ``f`` with Gaussian noise of ``noise * |Z|`` on each part."""
    from ...fitting.circuits import parse_circuit

    z = parse_circuit(circuit).impedance(f, values)
    if noise and rng is not None:
        z = z + noise * np.abs(z) * (rng.standard_normal(z.shape) + 1j * rng.standard_normal(z.shape))
    return z


def conductivity(T_C, sigma_ref: float, Ea_eV: float, T_ref_C: float = 30.0):
    """``sigma(T)`` with ``sigma T = A exp(-Ea / kT)`` through ``sigma_ref`` at ``T_ref_C``."""
    T = np.asarray(T_C, float) + 273.15
    Tr = T_ref_C + 273.15
    return sigma_ref * Tr / T * np.exp(-Ea_eV / KB_EV * (1 / T - 1 / Tr))


def polarisation(delta_V: float, I0: float, Iss: float, tau_s: float, duration_s: float, rest_s: float = 60.0,
                 spike: float = 5.0, spike_tau_s: float = 2.0, noise: float = 5e-4, rng=None):
    """``(t, E, I)`` of a potential step after a rest: ``I = Iss + (I0 - Iss) e^{-t/tau}`` plus a
    double-layer spike ``spike * I0 e^{-t/spike_tau}`` and noise ``noise * |I0|``."""
    rng = rng or np.random.default_rng(0)
    t_rest = np.arange(0.0, rest_s, 5.0)
    t1 = np.concatenate([np.arange(0.0, 120.0, 1.0), np.arange(120.0, duration_s + 1, 10.0)])
    i = Iss + (I0 - Iss) * np.exp(-t1 / tau_s) + spike * I0 * np.exp(-t1 / spike_tau_s)
    i = i + noise * abs(I0) * rng.standard_normal(t1.size)
    e = np.full(t1.size, delta_V) + 1e-5 * rng.standard_normal(t1.size)
    t = np.concatenate([t_rest, rest_s + t1])
    E = np.concatenate([1e-5 * rng.standard_normal(t_rest.size), e])
    I = np.concatenate([noise * abs(I0) * rng.standard_normal(t_rest.size), i])
    return t, E, I


def cycling(levels_mA_cm2, area_cm2: float, asr_ohm_cm2: float, half_cycle_h: float, cycles_per_level: int = 1,
            dt_s: float = 10.0, fail_level: float | None = None, fail_mode: str = "collapse", noise_V: float = 0.5e-3,
            eta_drift=None, rng=None):
    """``(t, E, I)`` of galvanostatic plating/stripping, current stepping through ``levels``.

    Each half-cycle relaxes to ``asr * j (* eta_drift(t_h))`` (10 % lower at its start, tau = 10 % of the
    half-cycle). At ``fail_level`` (mA/cm²) the first half-cycle fails 40 % into it: the voltage
    collapses to 3 % (``collapse``) or fluctuates by +-50 % (``noisy``) until the end of that level.
    """
    rng = rng or np.random.default_rng(0)
    ts, es, is_ = [], [], []
    t0 = 0.0
    n = int(round(half_cycle_h * 3600 / dt_s))
    failed = False
    for j in levels_mA_cm2:
        for c in range(2 * cycles_per_level):
            sgn = 1.0 if c % 2 == 0 else -1.0
            tt = t0 + dt_s * np.arange(n)
            u = (tt - t0) / (half_cycle_h * 3600)
            eta = asr_ohm_cm2 * j * 1e-3 * (1 - 0.1 * np.exp(-u / 0.1))
            if eta_drift is not None:
                eta = eta * eta_drift(tt / 3600)
            e = sgn * eta + noise_V * rng.standard_normal(n)
            if fail_level is not None and abs(j - fail_level) < 1e-9 and (failed or c == 0):
                k = int(0.4 * n) if not failed else 0
                if fail_mode == "collapse":
                    e[k:] = sgn * 0.03 * eta[k:] + noise_V * rng.standard_normal(n - k)
                else:
                    e[k:] = sgn * eta[k:] * (1 + 0.5 * rng.uniform(-1, 1, n - k))
                failed = True
            ts.append(tt)
            es.append(e)
            is_.append(np.full(n, sgn * j * 1e-3 * area_cm2))
            t0 = tt[-1] + dt_s
    return np.concatenate(ts), np.concatenate(es), np.concatenate(is_)


# ------------------------------------------------------------------------------------------ writers
def _e(v) -> str:
    return f"{v:.7E}"


def write_mpt_eis(path, spectra: list, technique: str = "Potentio Electrochemical Impedance Spectroscopy",
                  area_cm2: float | None = 0.785, temperatures=None, comments: str = "") -> Path:
    """EC-Lab ``.mpt`` of one or several sweeps ``[(f, Z), ...]`` (``cycle number`` 1..n; a
    ``Temperature/°C`` column when ``temperatures`` are given, with 0.02 °C thermostat noise)."""
    cols = ["freq/Hz", "Re(Z)/Ohm", "-Im(Z)/Ohm", "|Z|/Ohm", "Phase(Z)/deg", "time/s", "<Ewe>/V", "<I>/mA",
            "cycle number"] + (["Temperature/°C"] if temperatures is not None else [])
    rows, t = [], 0.0
    rng = np.random.default_rng(7)
    for k, (f, z) in enumerate(spectra):
        for fi, zi in zip(f, z):
            t += 1.0 / fi + 0.5
            r = [fi, zi.real, -zi.imag, abs(zi), np.degrees(np.angle(zi)), t, 0.0, 0.0]
            row = "\t".join(_e(v) for v in r) + f"\t{k + 1:.15E}"
            if temperatures is not None:
                row += "\t" + _e(temperatures[k] + 0.02 * rng.standard_normal())
            rows.append(row)
    return _write_mpt(path, technique, cols, rows, area_cm2, comments)


def write_mpt_time(path, t, E, I, technique: str, area_cm2: float | None = 0.785, comments: str = "") -> Path:
    """EC-Lab ``.mpt`` of a time series (``time/s``, ``Ewe/V``, ``<I>/mA``)."""
    cols = ["mode", "ox/red", "error", "control changes", "time/s", "control/V/mA", "Ewe/V", "<I>/mA", "cycle number"]
    rows = [f"1\t{int(i > 0)}\t0\t0\t{_e(tt)}\t{_e(ee)}\t{_e(ee)}\t{_e(1000 * i)}\t{0:.15E}"
            for tt, ee, i in zip(t, E, I)]
    return _write_mpt(path, technique, cols, rows, area_cm2, comments)


def _write_mpt(path, technique, cols, rows, area_cm2, comments) -> Path:
    head = ["EC-Lab ASCII FILE", "Nb header lines : {nh}", "", technique, "",
            "Run on channel : 1 (SN 0001)", "User : specproc synthetic data", f"Comments : {comments}",
            "Electrode material : ", "Electrolyte : ",
            f"Electrode surface area : {area_cm2 if area_cm2 is not None else 0.001:.3f} cm²",
            "Characteristic mass : 0.001 g", "Cycle Definition : Charge/Discharge alternance", ""]
    nh = len(head) + 1
    head[1] = head[1].format(nh=f"{nh:<28d}")
    text = "\n".join(head + ["\t".join(cols) + "\t"] + rows) + "\n"
    p = Path(path)
    p.write_bytes(text.encode("cp1252"))
    return p


def write_dta_eis(path, f, z, area_cm2: float = 0.785, title: str = "Potentiostatic EIS") -> Path:
    """Gamry ``.DTA`` (``EISPOT``, ``ZCURVE`` table)."""
    head = ["EXPLAIN", "TAG\tEISPOT", f"TITLE\tLABEL\t{title}\tTest &Identifier", "DATE\tLABEL\t1/1/2026\tDate",
            "PSTAT\tPSTAT\tREF600-00001\tPotentiostat", f"FREQINIT\tQUANT\t{f[0]:.5E}\tInitial Fre&q. (Hz)",
            f"FREQFINAL\tQUANT\t{f[-1]:.5E}\tFinal Fre&q. (Hz)", "VAC\tQUANT\t1.00000E+001\tAC &Voltage (mV rms)",
            f"AREA\tQUANT\t{area_cm2:.5E}\t&Area (cm^2)", "ZCURVE\tTABLE",
            "\tPt\tTime\tFreq\tZreal\tZimag\tZsig\tZmod\tZphz\tIdc\tVdc\tIERange",
            "\t#\ts\tHz\tohm\tohm\tV\tohm\t°\tA\tV\t#"]
    rows = [f"\t{k}\t{k + 1}\t{fi:.7g}\t{zi.real:.7g}\t{zi.imag:.7g}\t1\t{abs(zi):.7g}\t{np.degrees(np.angle(zi)):.7g}"
            f"\t1E-09\t0\t7" for k, (fi, zi) in enumerate(zip(f, z))]
    p = Path(path)
    p.write_bytes(("\n".join(head + rows) + "\n").encode("cp1252"))
    return p


def write_dta_time(path, t, E, I, tag: str = "CHRONOA", area_cm2: float = 0.785) -> Path:
    """Gamry ``.DTA`` chronoamperometry / chronopotentiometry (``CURVE`` table; ``Over`` text flags)."""
    head = ["EXPLAIN", f"TAG\t{tag}", "TITLE\tLABEL\tChronoamperometry Scan\tTest &Identifier",
            "DATE\tLABEL\t1/1/2026\tDate", f"AREA\tQUANT\t{area_cm2:.5E}\t&Area (cm^2)", "CURVE\tTABLE",
            "\tPt\tT\tVf\tIm\tVu\tSig\tAch\tIERange\tOver", "\t#\ts\tV vs. Ref.\tA\tV\tV\tV\t#\tbits"]
    rows = [f"\t{k}\t{tt:.6g}\t{ee:.7E}\t{ii:.7E}\t0\t{ee:.5E}\t0\t7\t..........." for k, (tt, ee, ii)
            in enumerate(zip(t, E, I))]
    p = Path(path)
    p.write_bytes(("\n".join(head + rows) + "\n").encode("cp1252"))
    return p


def write_z(path, f, z) -> Path:
    """ZPlot ``.z`` (``ZPLOT2 ASCII``, tab-separated)."""
    head = ["ZPLOT2 ASCII", "  Measured Data, ZPlot:       3.2c", "  Experiment Type:            Sweep Frequency, "
            "Control Voltage", "  Date:                       01-01-2026", "  Begin Information:          Cell Information",
            "    Surface Area:             1", "  End Information:            Cell Information",
            f"  Data Points:                {len(f)}", "  Freq(Hz)\tAmpl\tBias\tTime(Sec)\tZ'(a)\tZ''(b)\tGD\tErr\tRange",
            "End Comments"]
    rows = [f"{fi:.6E}\t1.0000E-02\t0.0000E+00\t{k + 1:.6E}\t{zi.real:.5E}\t{zi.imag:.5E}\t0.0000E+00\t0\t3"
            for k, (fi, zi) in enumerate(zip(f, z))]
    p = Path(path)
    p.write_text("\n".join(head + rows) + "\n", encoding="latin-1")
    return p


def write_csv_eis(path, spectra: list, temperatures=None, meta: dict | None = None, sep: str = ",") -> Path:
    """CSV ``freq/Hz, Re(Z)/Ohm, -Im(Z)/Ohm`` (+ ``Temperature/°C``, ``cycle`` for several sweeps)."""
    lines = [f"# {k}: {v}" for k, v in (meta or {}).items()]
    cols = ["freq/Hz", "Re(Z)/Ohm", "-Im(Z)/Ohm"] + (["Temperature/°C"] if temperatures is not None else []) + \
        (["cycle"] if len(spectra) > 1 else [])
    lines.append(sep.join(cols))
    for k, (f, z) in enumerate(spectra):
        for fi, zi in zip(f, z):
            r = [f"{fi:.8g}", f"{zi.real:.8g}", f"{-zi.imag:.8g}"]
            if temperatures is not None:
                r.append(f"{temperatures[k]:.2f}")
            if len(spectra) > 1:
                r.append(str(k + 1))
            lines.append(sep.join(r))
    p = Path(path)
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def write_nova_eis(path, f, z) -> Path:
    """Autolab NOVA ASCII export (``;``-separated, ``Frequency (Hz); Z' (Ω); -Z'' (Ω)``...)."""
    lines = ["Index;Frequency (Hz);Z' (Ω);-Z'' (Ω);Z (Ω);-Phase (°);Time (s)"]
    for k, (fi, zi) in enumerate(zip(f, z)):
        lines.append(f"{k + 1};{fi:.6g};{zi.real:.8g};{-zi.imag:.8g};{abs(zi):.8g};{-np.degrees(np.angle(zi)):.6g};"
                     f"{k * 2.0:.3f}")
    p = Path(path)
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def write_csv_time(path, t, E, I, meta: dict | None = None) -> Path:
    """CSV ``time/s, Ewe/V, I/mA`` (``# control:`` etc. from ``meta``)."""
    lines = [f"# {k}: {v}" for k, v in (meta or {}).items()] + ["time/s,Ewe/V,I/mA"]
    lines += [f"{tt:.6f},{ee:.7g},{1000 * ii:.7g}" for tt, ee, ii in zip(t, E, I)]
    p = Path(path)
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p
