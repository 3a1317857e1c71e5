"""SPEC data files (``#F``/``#S``/``#L`` text, synchrotron and lab diffractometers) -> XRD pattern.

Read with xrayutilities' ``SPECFile``. A spec file holds many scans over any motor; a 2θ pattern is a
scan whose first column (the scanned motor) is a 2θ motor (``tth``, ``2theta``, ``Two Theta``, ``del``…
or ``two_theta=`` given) and whose counter is ``counter=`` or the first of the usual detector names.
Scans over other motors (θ rocking curves, energy scans) are refused with the list of columns.
The wavelength is not part of the spec format: pass ``wavelength_nm`` (stated as ``default`` Cu Kα1
otherwise).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..core.errors import ReaderError
from ._xrd import check_size, validate_pattern
from .base import Reader, head_text, library_reason, require_file
from .xrdml import DEFAULT_KALPHA2_NM, DEFAULT_KALPHA2_RATIO, DEFAULT_WAVELENGTH_NM

_TT = re.compile(r"^(tth|2th|2theta|two\s*theta|twotheta|2-theta|del|delta|gam|tt)$", re.I)
#: a SPEC file starts with a ``#F`` file header or holds ``#S`` scan lines
_SPEC_LINE = re.compile(r"^#[FS] ", re.M)
_COUNTERS = ("detector", "det", "counts", "cnts", "intensity", "int", "i", "apd", "pilatus", "roi1", "mca")


class SpecReader(Reader):
    """SPEC files: 2θ scans (via xrayutilities)."""

    name = "spec"
    priority = Reader.HEADER
    library = "xrayutilities"
    description = "SPEC data files (#S scans): 2θ scan column and a detector counter (xrayutilities)"
    technique = "xrd"
    extensions = (".spec",)
    url = "https://certif.com/content/spec/"

    def guess_can_open(self, path: Path) -> bool:
        head = head_text(Path(path), 4096)
        return head.startswith("#F ") or (head.startswith("#") and "\n#S " in head and "\n#L " in head)

    def read(self, path: Path, scan: int | None = None, counter: str | None = None,
             two_theta: str | None = None, wavelength_nm: float | None = None):
        """Read one 2θ scan of a spec file.

        Parameters
        ----------
        scan : int, optional
            Scan number (``#S N``). Default: the first scan over a 2θ motor.
        counter : str, optional
            Counter column (default: the first of Detector/det/counts/... present).
        two_theta : str, optional
            2θ column name (default: the scanned motor when it is a 2θ motor).
        wavelength_nm : float, optional
            Kα1 wavelength (nm); spec files do not store it.
        """
        from xrayutilities.io import SPECFile
        from xrayutilities.io import helper as xu_helper
        from xrayutilities.io import spec as xu_spec

        from ..core.measurement import new_measurement
        from ..core.provenance import file_provenance
        from ..core.quiet import quiet

        path = require_file(Path(path))
        check_size(path)
        if not _SPEC_LINE.search(head_text(path, 1 << 14)):
            raise ReaderError("not a SPEC file (no #F file header or #S scan line at the start)", path)
        try:
            # xrayutilities prints progress and parse notes: caught per thread (core.quiet), never by
            # swapping sys.stdout or its global VERBOSITY (both race when files are read in threads)
            with quiet(xu_spec, xu_helper):
                sf = SPECFile(str(path))
                scans = list(sf.scan_list)
                if not scans:
                    raise ReaderError("no #S scan in the file", path)
                if scan is not None:
                    pick = [s for s in scans if int(s.nr) == int(scan)]
                    if not pick:
                        raise ReaderError(f"no scan #S {scan} (scans: {', '.join(str(s.nr) for s in scans)})", path)
                else:
                    pick = [s for s in scans if s.colnames and (two_theta in s.colnames if two_theta
                                                                else bool(_TT.match(s.colnames[0].strip())))]
                    if not pick:
                        raise ReaderError(
                            "no scan over a 2θ motor (first columns: " +
                            ", ".join(f"#S {s.nr}: {s.colnames[0] if s.colnames else '?'}" for s in scans[:8]) +
                            "); pass scan=N and two_theta='<column>'", path)
                sc = pick[0]
                sc.ReadData()
        except ReaderError:
            raise
        except Exception as exc:
            raise ReaderError(f"cannot read the SPEC file: {library_reason(exc)}", path) from exc
        if sc.data is None or not sc.data.dtype.names or not len(sc.data):
            raise ReaderError(f"scan #S {sc.nr} has no data lines (truncated file?)", path)
        cols = list(sc.data.dtype.names or ())
        ttc = two_theta or cols[0]
        if ttc not in cols or not (two_theta or _TT.match(ttc.strip())):
            raise ReaderError(f"scan {sc.nr} is over {cols[0] if cols else '?'}, not a 2θ motor (columns: "
                              f"{', '.join(cols)}); pass two_theta='<column>'", path)
        if counter is None:
            low = {c.lower(): c for c in cols}
            counter = next((low[c] for c in _COUNTERS if c in low), None)
            if counter is None:
                raise ReaderError(f"no detector column among {', '.join(cols)}; pass counter='<column>'", path)
        elif counter not in cols:
            raise ReaderError(f"counter {counter!r} not in scan {sc.nr} (columns: {', '.join(cols)})", path)
        x = np.asarray(sc.data[ttc], float)
        y = np.asarray(sc.data[counter], float)
        if x.size and x[0] > x[-1]:
            x, y = x[::-1], y[::-1]
        validate_pattern(x, y, path)
        source = "user" if wavelength_nm is not None else "default"
        wl = float(wavelength_nm) if wavelength_nm is not None else DEFAULT_WAVELENGTH_NM
        acquisition = {"wavelength_nm": wl, "kalpha2_nm": DEFAULT_KALPHA2_NM if source == "default" else None,
                       "kalpha2_ratio": DEFAULT_KALPHA2_RATIO if source == "default" else None,
                       "wavelength_source": source, "anode": None,
                       "counting_time_s": float(sc.itime) if sc.itime else None,
                       "step_deg": float(np.median(np.diff(x))), "scan_axis": ttc, "scan_number": int(sc.nr),
                       "counter": counter}
        return new_measurement(y, [("two_theta", x, "deg")], technique="xrd", units="counts", signal_type="pattern",
                               sample=f"{path.stem}#S{sc.nr}", metadata={"date": sc.date},
                               acquisition=acquisition,
                               original_metadata={"command": sc.command, "columns": cols,
                                                  "init_motor_pos": dict(sc.init_motor_pos)},
                               provenance=file_provenance(path, self.name), source=str(path))
