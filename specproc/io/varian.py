"""Varian / Agilent VnmrJ ``.fid`` folders (``fid`` + ``procpar``) via :mod:`nmrglue.varian`.

``sfo1_mhz = sfrq`` (transmitter), ``sf_mhz = reffrq`` (reference; ``sfrq`` when absent),
``sw_hz = sw``. Arrayed experiments (``arraydim > 1``) become ``("row", "time")`` with the
arrayed variable's values as the row coordinate. The FID is stored as nmrglue returns it.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..core.errors import ReaderError
from ..core.measurement import new_measurement
from ..core.provenance import file_provenance
from ._nmr_axis import acquisition_dict, check_acquisition, jsonable, normalise_nucleus, to_float
from .base import Reader, require_file

#: Units of common arrayed procpar variables (Varian stores times in s, pulse widths in us).
_ARRAY_UNITS = {"d1": "s", "d2": "s", "tau": "s", "pw": "us", "p1": "us"}


def _pp(procpar: dict, key: str, index: int = 0) -> Any:
    """Value ``index`` of procpar parameter ``key`` (string), None if absent."""
    try:
        return procpar[key]["values"][index]
    except (KeyError, IndexError, TypeError):
        return None


def _read_procpar(path: Path) -> dict:
    """procpar through nmrglue's parameter parser, decoded UTF-8 else Latin-1 (``samplename "José"``).

    nmrglue's ``read_procpar`` decodes UTF-8 only; its loop is repeated here over the re-encoded text.
    """
    import io

    import nmrglue as ng

    from ._nmr_axis import decode_text

    raw = decode_text(path.read_bytes()).encode("utf-8")
    f = io.BytesIO(raw)
    dic = {}
    while f.tell() != len(raw):
        try:
            par = ng.fileio.varian.get_parameter(f)
        except Exception:  # nmrglue indexes the split lines: a short or garbled entry fails anywhere
            raise ReaderError(f"procpar cannot be parsed after {len(dic)} parameter(s): truncated or corrupt "
                              "(expected a name line, a values line and an enumeration line per parameter)",
                              path) from None
        dic[par["name"]] = par
    if not dic:
        raise ReaderError("procpar is empty", path)
    return dic


#: bytes of the file header of a VnmrJ ``fid`` file
_FILE_HEADER = 32


def _fid_header(fid: Path) -> dict:
    """The 32-byte file header of a ``fid`` file (nmrglue's decoding), checked against the file size.

    Raises
    ------
    ReaderError
        File shorter than its header, or a header whose blocks x values x bytes is not the file size.
    """
    import nmrglue as ng

    size = fid.stat().st_size
    if size < _FILE_HEADER:
        raise ReaderError(f"fid file is {size} B, shorter than its {_FILE_HEADER}-byte header (empty or truncated)",
                          fid)
    with open(fid, "rb") as fh:
        header = ng.varian.fileheader2dic(ng.varian.get_fileheader(fh))
    try:
        need = _FILE_HEADER + header["nblocks"] * (header["nbheaders"] * 28
                                                   + header["ntraces"] * header["np"] * header["ebytes"])
    except (KeyError, TypeError):
        need = -1
    if header.get("np", 0) <= 0 or header.get("ebytes") not in (2, 4) or size != need:
        raise ReaderError(f"file size {size} B does not match its header ({header.get('nblocks')} blocks x "
                          f"{header.get('np')} values x {header.get('ebytes')} B = {need} B; truncated or corrupt "
                          "header?)", fid)
    return header


def _date(time_run: str | None) -> str | None:
    m = re.fullmatch(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})", (time_run or "").strip())
    return "{}-{}-{}T{}:{}:{}".format(*m.groups()) if m else None


class VarianReader(Reader):
    """Varian/Agilent VnmrJ ``.fid`` folder (raw FID, arrayed experiments as pseudo-2D)."""

    name: ClassVar[str] = "varian"
    priority: ClassVar[int] = Reader.SIGNATURE
    library: ClassVar[str] = "nmrglue"
    description: ClassVar[str] = "Varian/Agilent VnmrJ .fid folder (fid + procpar) via nmrglue"
    technique: ClassVar[str] = "nmr"
    extensions: ClassVar[tuple[str, ...]] = (".fid",)
    url: ClassVar[str] = "https://nmrglue.readthedocs.io/en/latest/reference/varian.html"
    reads_folders: ClassVar[bool] = True  # a .fid experiment folder (fid + procpar)

    def guess_can_open(self, path: Path) -> bool:
        p = Path(path)
        if p.is_file():
            return p.name == "fid" and (p.parent / "procpar").is_file()
        return p.is_dir() and (p / "fid").is_file() and (p / "procpar").is_file()

    def read(self, path: Path) -> Any:
        """Read a VnmrJ experiment.

        Parameters
        ----------
        path : Path
            The ``.fid`` folder (or the ``fid`` file inside it).

        Returns
        -------
        xarray.DataArray
            Complex FID, dims ``("time",)`` (s) or ``("row", "time")`` for arrayed experiments.
        """
        import nmrglue as ng

        p = Path(path)
        if not p.exists():
            raise ReaderError("Varian .fid folder not found", p)
        d = p.parent if p.is_file() else p
        fid, procpar_path = d / "fid", d / "procpar"
        for f in (fid, procpar_path):
            if not f.is_file():
                raise ReaderError(f"{f.name} not found in Varian .fid folder", d)
        procpar = _read_procpar(require_file(procpar_path, "procpar"))
        sfrq = to_float(_pp(procpar, "sfrq"))
        sw = to_float(_pp(procpar, "sw"))
        np_ = to_float(_pp(procpar, "np"))
        for key, v in (("sfrq", sfrq), ("sw", sw), ("np", np_)):
            if v is None:
                raise ReaderError(f"parameter {key} is missing or not a number", procpar_path)
        reffrq = to_float(_pp(procpar, "reffrq")) or sfrq
        tof = to_float(_pp(procpar, "tof"))
        bf1 = sfrq - tof * 1e-6 if tof is not None else None
        srate = to_float(_pp(procpar, "srate"))
        acq = acquisition_dict(
            sfo1_mhz=sfrq, bf1_mhz=bf1, sf_mhz=reffrq, sr_hz=(reffrq - bf1) * 1e6 if bf1 else None, o1_hz=tof,
            sw_hz=sw, td=np_, mas_rate_hz=srate, pulprog=_pp(procpar, "seqfil"), ns=_pp(procpar, "nt"))
        check_acquisition(acq, procpar_path)
        _fid_header(fid)
        try:
            # nmrglue.varian.read would parse procpar again (UTF-8 only): its three steps with ours
            shape = ng.varian.find_shape(procpar)
            torder = ng.varian.find_torder(procpar, shape) if shape is not None and len(shape) >= 3 else None
            dic, data = ng.varian.read_fid(str(fid), shape, torder, False, False)
        except Exception:
            raise ReaderError("the data cannot be read with the shape procpar gives (np, arraydim, ni: "
                              "corrupt procpar or fid?)", fid) from None
        data = np.asarray(data).astype(np.complex128)
        t = np.arange(data.shape[-1]) / sw
        coords: list = [("time", t, "s")]
        if data.ndim == 2 and data.shape[0] > 1:
            coords.insert(0, ("row", *self._row_coord(procpar, data.shape[0])))
        else:
            data = data.reshape(-1)
            if data.ndim != 1:
                raise ReaderError(f"unsupported data shape {data.shape} (2D/3D Varian data)", fid)
        sample = None
        text = d / "text"
        if text.is_file():
            sample = next((ln.strip() for ln in text.read_text(encoding="latin-1").splitlines() if ln.strip()),
                          None)
        sample = sample or _pp(procpar, "samplename") or d.name.removesuffix(".fid")
        original = {"procpar": {k: v.get("values") for k, v in procpar.items()},
                    "fileheader": {k: v for k, v in dic.items() if k != "procpar"}}
        md = {"nucleus": normalise_nucleus(_pp(procpar, "tn")),
              "instrument": " ".join(str(x) for x in (_pp(procpar, "console"), _pp(procpar, "probe_")) if x) or None,
              "date": _date(_pp(procpar, "time_run"))}
        return new_measurement(
            data, coords, technique="nmr", units="arb", name="fid", signal_type="fid", sample=str(sample),
            metadata=md, acquisition=acq, original_metadata=jsonable(original),
            provenance=file_provenance(d, self.name), source=str(fid))

    @staticmethod
    def _row_coord(procpar: dict, nrows: int) -> tuple[np.ndarray, str]:
        """Values of the (first) arrayed variable, else the row index."""
        arr = (_pp(procpar, "array") or "").strip()
        # "(a,b)" means jointly arrayed; take the first name either way
        name = re.split(r"[,()\s]+", arr.strip("()"))[0] if arr else ""
        if name and name in procpar:
            vals = [to_float(v) for v in procpar[name]["values"]]
            if len(vals) == nrows and all(v is not None for v in vals):
                return np.asarray(vals, dtype=float), _ARRAY_UNITS.get(name, "s" if "tau" in name else "")
        return np.arange(nrows, dtype=float), ""
