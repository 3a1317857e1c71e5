"""EMSA/MSA spectra (ISO 22029 text format) via RosettaSciIO, as EELS measurements.

Only spectra whose x axis is an energy (``#XUNITS : eV``) are EELS measurements; EDS exports in
keV are read too (the axis is converted to eV) but keep ``technique="eels"`` only if the
``#SIGNALTYPE`` is ``ELS``/absent (an EDS file is refused with a clear message).
"""
from __future__ import annotations

from pathlib import Path

from ..core.errors import ReaderError
from .base import Reader, head_text, require_file
from .gatan import read_with


class MsaReader(Reader):
    """EMSA/MSA (``.msa``, ``.ems``, ``.emsa``) EELS spectra (RosettaSciIO ``rsciio.msa``)."""

    name = "msa"
    description = "EMSA/MSA EELS spectra (RosettaSciIO)"
    technique = "eels"
    extensions = (".msa", ".ems", ".emsa")
    url = "https://hyperspy.org/rosettasciio/user_guide/supported_formats/msa.html"

    def guess_can_open(self, path: Path) -> bool:
        head = head_text(path, 512).lstrip().upper()
        return head.startswith("#FORMAT") and "EMSA" in head.split("\n", 1)[0]

    def read(self, path: Path):
        """Read a single EMSA/MSA spectrum (energy axis in eV)."""
        path = Path(path)
        require_file(path)
        head = head_text(path, 4096).upper()
        if "#FORMAT" not in head:
            raise ReaderError("not an EMSA/MSA file (no #FORMAT keyword)", path)
        for line in head.splitlines():
            if line.startswith("#SIGNALTYPE") and ":" in line:
                st = line.split(":", 1)[1].strip()
                if st and st not in ("ELS", "EELS"):
                    raise ReaderError(f"EMSA signal type {st!r} is not EELS (ELS)", path)
        m = read_with("msa", path, self.name)
        _check_npoints(m, path)
        return m


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
