"""JCAMP-DX NMR spectra (``##DATA TYPE= NMR SPECTRUM``; XYDATA, NTUPLES real part, PEAK TABLE).

Parsing goes through :func:`nmrglue.jcampdx.read` (XYDATA and NTUPLES, all ASDF compressions);
when nmrglue finds no data (e.g. ``##PEAK TABLE=``) the ``jcamp`` package is tried and
``original_metadata["parser"]`` says which one was used. The x axis (``HZ`` or ``PPM``) becomes
ppm with ``.OBSERVE FREQUENCY`` and, for Hz axes, ``.SHIFT REFERENCE`` (``(mode, compound,
point, ppm)``) when present. JCAMP files of other techniques (IR, UV, relaxation lists) are not
claimed by :meth:`JcampNMRReader.guess_can_open`. ``$$`` comments (legal after any value and on data
lines) are removed before the values are used; absurd header numbers (``##NPOINTS= 0``) are refused.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..core.errors import ReaderError
from ..core.measurement import new_measurement
from ..core.provenance import file_provenance
from ._nmr_axis import acquisition_dict, jsonable, normalise_nucleus, to_float
from ._jcamp import (check_decoded_size, check_header_numbers, jcamp_head, ldr_value, norm_label, read_jcamp_text,
                     strip_comments)
from .base import Reader

_LABEL = re.compile(r"^##\s*([^=]+?)\s*=\s*(.*)$", re.M)




def _labels(text: str) -> list[tuple[str, str]]:
    return [(norm_label(m.group(1)), ldr_value(m.group(2))) for m in _LABEL.finditer(text)]


def _get(dic: dict, *keys: str) -> Any:
    """First value of a JCAMP key in a nmrglue / jcamp dict (keys tried in several spellings)."""
    norm = {norm_label(str(k)): v for k, v in dic.items()}
    for k in keys:
        v = norm.get(norm_label(k))
        if isinstance(v, list):
            v = v[0] if v else None
        if v not in (None, ""):
            return v
    return None


def _nmrglue_read(p: Path, text: str):
    """:func:`nmrglue.jcampdx.read` of ``p``, on a comment-free copy when the file has ``$$`` comments.

    nmrglue drops a data line's newline with its ``$$`` comment, so the next line's X value is read as
    one more Y value (``##NPOINTS= 4096 but 4099 values``). It reads only named files: the copy goes
    to a private temporary folder (never next to the input) and is removed at once.
    """
    import tempfile

    import nmrglue as ng
    from nmrglue.fileio import jcampdx as ng_jcampdx

    from ..core.quiet import quiet

    # nmrglue warns for every missing optional label: caught per thread (core.quiet), not with
    # warnings.catch_warnings, which swaps the process-wide filters (not thread-safe)
    with quiet(ng_jcampdx):
        if "$$" not in text:
            return ng.jcampdx.read(str(p))
        with tempfile.TemporaryDirectory(prefix="specproc-jcamp-") as tmp:
            copy = Path(tmp) / "comment-free.jdx"
            copy.write_bytes(strip_comments(text).encode("latin-1"))
            return ng.jcampdx.read(str(copy))


class JcampNMRReader(Reader):
    """JCAMP-DX NMR spectrum (XYDATA / NTUPLES / PEAK TABLE) -> spectrum on a ppm axis."""

    name: ClassVar[str] = "jcampdx-nmr"
    priority: ClassVar[int] = Reader.HEADER
    library: ClassVar[str] = "nmrglue, jcamp"
    description: ClassVar[str] = "JCAMP-DX NMR spectrum (XYDATA, NTUPLES real part, PEAK TABLE) via nmrglue/jcamp"
    technique: ClassVar[str] = "nmr"
    extensions: ClassVar[tuple[str, ...]] = (".jdx", ".dx", ".jcamp")
    url: ClassVar[str] = "http://www.jcamp-dx.org/"

    def guess_can_open(self, path: Path) -> bool:
        text = jcamp_head(path, 65536)
        if text is None:
            return False
        labels = _labels(text)
        types = [v.upper() for k, v in labels if k == "DATATYPE"]
        if any("NMR" in t and ("SPECTRUM" in t or "PEAK" in t) for t in types):
            return True
        # no DATA TYPE at all (sloppy writers): accept only with NMR-specific labels
        return not types and any(k == ".OBSERVEFREQUENCY" for k, _ in labels)

    def read(self, path: Path) -> Any:
        """Read a JCAMP-DX NMR spectrum.

        Parameters
        ----------
        path : Path
            ``.jdx``/``.dx`` file (any extension).

        Returns
        -------
        xarray.DataArray
            Real spectrum, dim ``("shift",)`` in ppm, ``signal_type="spectrum"``.
        """
        p, text = read_jcamp_text(path)
        # before any decoder: a DUP-compressed bomb must be refused, not expanded into a Python list
        check_decoded_size(text, p)
        labels = _labels(text)
        check_header_numbers(dict(reversed(labels)), p)  # the first value of a label counts
        types = [v.upper() for k, v in labels if k == "DATATYPE"]
        if types and not any("NMR" in t for t in types):
            raise ReaderError(f"JCAMP-DX data type is {types[0]!r}, not an NMR spectrum", p)
        if types and all("FID" in t for t in types if "NMR" in t):
            raise ReaderError("JCAMP-DX NMR FID files are not supported (only spectra)", p)
        parser, dic, x, y = self._parse_nmrglue(p, text)
        if y is None:
            parser, dic, x, y = self._parse_jcamp(p, text)
        if y is None or np.size(y) == 0:
            raise ReaderError("no XYDATA, NTUPLES or PEAK TABLE data found", p)
        y = np.asarray(y, dtype=float).reshape(-1)
        x = np.asarray(x, dtype=float).reshape(-1)
        if x.shape != y.shape:
            raise ReaderError(f"x axis has {x.size} values for {y.size} data points (NPOINTS wrong?)", p)
        if not np.all(np.isfinite(y)):
            raise ReaderError(f"{int(np.sum(~np.isfinite(y)))} NaN/inf values in the data", p)
        self._check_axis(dic, x, y, parser, p)

        obs = to_float(_get(dic, ".OBSERVE FREQUENCY", ".OBSERVEFREQUENCY"))
        if obs is not None and not (0 < obs <= 2000):
            raise ReaderError(f"implausible .OBSERVE FREQUENCY = {obs} MHz", p)
        xunits = str(_get(dic, "XUNITS") or _get(dic, "UNITS") or "").split(",")[0].strip().upper()
        if xunits == "PPM":
            ppm = x
        elif xunits in ("HZ", "HERTZ"):
            if obs is None:
                raise ReaderError("x axis is in Hz but .OBSERVE FREQUENCY is missing (cannot convert to ppm)", p)
            ppm = x / obs
            ref = self._shift_reference(_get(dic, ".SHIFT REFERENCE", ".SHIFTREFERENCE"))
            if ref is not None:
                point, shift = ref
                if 1 <= point <= ppm.size:
                    ppm = ppm + (shift - ppm[point - 1])
        else:
            raise ReaderError(f"x units {xunits or '(none)'!r} are not HZ or PPM", p)
        nucleus = normalise_nucleus(str(_get(dic, ".OBSERVE NUCLEUS", ".OBSERVENUCLEUS") or "").replace("^", ""))
        span_hz = abs(ppm[-1] - ppm[0]) * obs * ppm.size / max(ppm.size - 1, 1) if obs else None
        acq = acquisition_dict(sfo1_mhz=obs, sf_mhz=obs, sw_hz=span_hz,
                               mas_rate_hz=_get(dic, "$MASR", ".SPINNING RATE", ".MAS FREQUENCY"),
                               pulprog=_get(dic, ".PULSE SEQUENCE", "$PULPROG"), ns=_get(dic, "$NS"))
        title = _get(dic, "TITLE")
        md = {"nucleus": nucleus, "instrument": _get(dic, "SPECTROMETER/DATA SYSTEM", "ORIGIN"),
              "date": _get(dic, "LONGDATE", "DATE")}
        original = {k: v for k, v in dic.items() if not isinstance(v, np.ndarray)}
        original["parser"] = parser
        return new_measurement(
            y, [("shift", ppm, "ppm")], technique="nmr", units="arb", signal_type="spectrum",
            sample=str(title).strip() if title else p.stem, metadata=md, acquisition=acq,
            original_metadata=jsonable(original), provenance=file_provenance(p, self.name), source=str(p))

    @staticmethod
    def _check_axis(dic: dict, x: np.ndarray, y: np.ndarray, parser: str, p: Path) -> None:
        """Refuse an axis that contradicts the header: NPOINTS != the values read, FIRSTX = LASTX."""
        npoints = to_float(_get(dic, "NPOINTS"))
        if parser == "nmrglue.jcampdx" and npoints is not None and int(npoints) != y.size:
            raise ReaderError(f"##NPOINTS= {int(npoints)} but {y.size} values were read (corrupt or edited file)", p)
        if y.size > 1 and not np.all(np.isfinite(x)):
            raise ReaderError("the x axis (FIRSTX/LASTX) is not finite", p)
        if y.size > 1 and x[0] == x[-1]:
            raise ReaderError(f"FIRSTX = LASTX = {x[0]:g}: the x axis has zero width", p)

    @staticmethod
    def _shift_reference(value: Any) -> tuple[int, float] | None:
        """``(INTERNAL, TMS, 1, 0.0)`` -> (point number 1-based, ppm)."""
        if not value:
            return None
        parts = [s.strip() for s in str(value).strip().strip("()").split(",")]
        if len(parts) < 4:
            return None
        try:
            return int(float(parts[2])), float(parts[3])
        except ValueError:
            return None

    @staticmethod
    def _parse_nmrglue(p: Path, text: str):
        """nmrglue's JCAMP-DX reader: ``(parser, dic, x, y)``, ``y`` None when it finds no data."""
        import nmrglue as ng

        try:
            dic, data = _nmrglue_read(p, text)
        except Exception:
            return "nmrglue.jcampdx", {}, None, None
        if data is None:
            return "nmrglue.jcampdx", dic, None, None
        if isinstance(data, list):  # NTUPLES [real, imag]: keep the real part
            data = data[0]
        if data is None:
            return "nmrglue.jcampdx", dic, None, None
        y = np.asarray(data, dtype=float)
        if ng.jcampdx.get_is_ntuples(dic):
            sym = [s.strip().upper() for s in str(_get(dic, "SYMBOL") or "").split(",")]
            ix = sym.index("X") if "X" in sym else 0
            first = to_float(str(_get(dic, "FIRST") or "").split(",")[ix]) if _get(dic, "FIRST") else None
            last = to_float(str(_get(dic, "LAST") or "").split(",")[ix]) if _get(dic, "LAST") else None
            units = str(_get(dic, "UNITS") or "").split(",")
            dic = dict(dic)
            dic["XUNITS"] = [units[ix].strip() if len(units) > ix else ""]
        else:
            first, last = to_float(_get(dic, "FIRSTX")), to_float(_get(dic, "LASTX"))
        if first is None or last is None:
            return "nmrglue.jcampdx", dic, None, None
        return "nmrglue.jcampdx", dic, np.linspace(first, last, y.size), y

    @staticmethod
    def _parse_jcamp(p: Path, text: str):
        """The ``jcamp`` package on the comment-free text (peak tables, files nmrglue finds no data in)."""
        import io

        import jcamp

        from ..core.quiet import quiet

        try:
            with quiet(jcamp):  # jcamp reports by print()
                d = jcamp.read(io.StringIO(strip_comments(text)))
        except Exception:
            raise ReaderError("the data block cannot be decoded (corrupt compressed data, or header values "
                              "that contradict the data)", p) from None
        x, y = d.get("x"), d.get("y")
        if x is None or y is None:
            return "jcamp", d, None, None
        x, y = np.asarray(x).reshape(-1), np.asarray(y).reshape(-1)
        if x.size != y.size:
            raise ReaderError(f"the x axis has {x.size} values for {y.size} data points: the data block is "
                              "incomplete (truncated file?) or ##NPOINTS= is wrong", p)
        order = np.argsort(x)[::-1]  # peak tables: keep ppm decreasing like spectra
        return "jcamp", d, x[order], y[order]
