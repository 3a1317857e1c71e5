"""EMSA/MSA spectra (ISO 22029 text format) via RosettaSciIO, as EELS measurements.

Only spectra whose x axis is an energy are EELS measurements: ``#XUNITS : eV`` (``keV`` is
converted to eV). An EDS file (``#SIGNALTYPE`` naming X-rays) is refused with a clear message.

**Missing or undefined x units.** Many exports (the EELS Data Base's among them, and files written
by tools that leave ``#XUNITS`` empty or ``<undefined>``) carry no unit for the energy axis. Such
a file is read with the axis **assumed in eV** when something else in the header says it is an
energy-loss spectrum (``#SIGNALTYPE : ELS``, or an ``#XLABEL`` naming an energy or a loss), and
the assumption is written in ``acquisition["reader_notes"]`` (with the resulting range, so a
keV axis misread as eV is visible at once; ``x_units="keV"`` reads it as keV). Without such
evidence the file is refused, naming the missing keyword; a unit that is not an energy (``nm``,
``1/cm``...) is refused naming the unit.
"""
from __future__ import annotations

import re
from pathlib import Path

from ..core.errors import ReaderError
from .base import Reader, head_text, library_reason, require_file
from .gatan import rsciio_to_measurement

#: #XUNITS values that say nothing about the axis (EELS DB and other exports)
_UNDEFINED_UNITS = {"", "<undefined>", "undefined", "none", "a.u.", "au", "arb", "arb.", "arbitrary", "-",
                    "channel", "channels"}
_ENERGY_UNITS = {"ev": "eV", "kev": "keV"}


def _header(path: Path) -> dict[str, str]:
    """The ``#KEYWORD : value`` lines before the data (keywords upper-case, values stripped)."""
    out: dict[str, str] = {}
    for line in head_text(path, 16384).splitlines():
        s = line.strip()
        if not s.startswith("#"):
            continue
        key, _, value = s[1:].partition(":")
        key = key.strip().upper()
        if key.startswith("SPECTRUM"):
            break
        out.setdefault(key, value.strip())
    return out


class MsaReader(Reader):
    """EMSA/MSA (``.msa``, ``.ems``, ``.emsa``) EELS spectra (RosettaSciIO ``rsciio.msa``)."""

    name = "msa"
    priority = Reader.HEADER
    description = "EMSA/MSA EELS spectra (RosettaSciIO)"
    technique = "eels"
    extensions = (".msa", ".ems", ".emsa")
    url = "https://hyperspy.org/rosettasciio/user_guide/supported_formats/msa.html"
    library = "rosettasciio"
    notes = ("single EELS spectrum, x in eV or keV; missing/undefined #XUNITS read as eV when #SIGNALTYPE is ELS "
             "or #XLABEL names an energy (said in reader_notes); refused: EDS (X-ray) spectra, non-energy "
             "x units, #NPOINTS contradicting the data")

    def guess_can_open(self, path: Path) -> bool:
        head = head_text(path, 512).lstrip().upper()
        return head.startswith("#FORMAT") and "EMSA" in head.split("\n", 1)[0]

    def read(self, path: Path, x_units: str | None = None):
        """Read a single EMSA/MSA spectrum (energy axis in eV).

        Parameters
        ----------
        path : Path
        x_units : {"eV", "keV"}, optional
            Unit of the x axis when the file gives none (``#XUNITS`` missing, empty or
            ``<undefined>``); default: eV when the header says energy loss. Ignored when the
            file names an energy unit.
        """
        path = Path(path)
        require_file(path)
        head = head_text(path, 4096).upper()
        if "#FORMAT" not in head:
            raise ReaderError("not an EMSA/MSA file (no #FORMAT keyword)", path)
        if x_units is not None and x_units.lower() not in _ENERGY_UNITS:
            raise ReaderError(f"x_units must be 'eV' or 'keV', not {x_units!r}", path)
        hdr = _header(path)
        signal = hdr.get("SIGNALTYPE", "").upper()
        if signal and signal not in ("ELS", "EELS"):
            raise ReaderError(f"EMSA signal type {signal!r} is not EELS (ELS)", path)
        raw_units = hdr.get("XUNITS")
        units = (raw_units or "").strip().strip("[]()").strip()
        notes: list[str] = []
        assume = None
        if units.lower() in _ENERGY_UNITS:
            pass
        elif units.lower() in _UNDEFINED_UNITS:
            label = hdr.get("XLABEL", "")
            evidence = ("#SIGNALTYPE : ELS" if signal in ("ELS", "EELS") else
                        f"#XLABEL : {label}" if re.search(r"energy|loss", label, re.I) else None)
            if evidence is None and x_units is None:
                what = "no #XUNITS" if raw_units is None else f"#XUNITS {raw_units!r} says no unit"
                raise ReaderError(f"{what} and nothing in the header says energy loss (#SIGNALTYPE, #XLABEL): "
                                  "not known to be an EELS spectrum (pass x_units='eV' if it is)", path)
            assume = _ENERGY_UNITS[(x_units or "eV").lower()]
            what = "missing" if raw_units is None else ("empty" if not units else repr(raw_units))
            notes.append(f"x axis units {what} in the file: given as {assume} (x_units)" if x_units else
                         f"x axis units {what} in the file: assumed {assume} ({evidence}), as for EELS Data "
                         "Base exports")
        else:
            raise ReaderError(f"x axis in {raw_units!r}: not an energy (eV/keV), not an EELS spectrum", path)
        m = self._read(path, assume)
        _check_npoints(m, path)
        if notes:
            e = m.coords["energy"].values
            notes[-1] += f"; energy range {float(e.min()):.6g}-{float(e.max()):.6g} eV"
            acq = dict(m.attrs.get("acquisition") or {})
            acq["reader_notes"] = list(acq.get("reader_notes") or []) + notes
            acq["x_units_assumed"] = assume
            m.attrs["acquisition"] = acq
        return m

    def _read(self, path: Path, assume: str | None):
        """RosettaSciIO's msa reader, the energy axis given ``assume`` as its unit when the file has none."""
        from rsciio.msa import file_reader

        try:
            signals = file_reader(str(path))
        except ReaderError:
            raise
        except Exception as exc:
            raise ReaderError(f"not a readable EMSA/MSA file ({library_reason(exc)})", path) from None
        if not signals:
            raise ReaderError("file holds no signal", path)
        d = signals[0]
        if assume is not None:
            axes = list(d.get("axes") or [])
            if len(axes) != 1:
                raise ReaderError(f"{len(axes)} axes in the file: a single spectrum was expected", path)
            axes[0] = {**axes[0], "units": assume, "name": axes[0].get("name") or "Energy loss"}
            d = {**d, "axes": axes}
        return rsciio_to_measurement(d, path, self.name)


def _check_npoints(m, path: Path) -> None:
    """Refuse a spectrum whose length contradicts the header's ``#NPOINTS`` (RosettaSciIO reads the
    values present without comparing; a truncated export then passes as a shorter spectrum)."""
    import math

    om = m.attrs.get("original_metadata") or {}
    declared = om.get("NPOINTS") if isinstance(om, dict) else None
    try:
        declared = float(declared)
    except (TypeError, ValueError):
        return  # #NPOINTS is required by the format but absent: nothing to compare with
    n = int(m.sizes[m.dims[-1]])
    if not math.isfinite(declared) or int(declared) != declared or int(declared) != n:
        raise ReaderError(f"#NPOINTS says {declared:g} points but the file holds {n} data points "
                          "(truncated or edited file)", path)
