"""specproc's own NetCDF layout: save a measurement, read it back (``sp.save`` / ``sp.read``).

Any measurement — 1D spectrum, 2D map or depth profile, 3D spectrum image or force-volume stack —
round-trips through one NetCDF-4 file (HDF5, written by xarray with the h5netcdf engine; netCDF-3
files from xarray's scipy engine are read too). The layout (``docs/netcdf_layout.md``) is simple
enough to build with xarray alone:

* one data variable ``measurement`` (complex data: ``measurement_real`` + ``measurement_imag``)
  whose dims are the measurement's dims, each with a coordinate carrying ``attrs["units"]``;
* global attributes ``specproc_layout = "specproc.measurement/1"``, ``technique``, ``signal_type``,
  ``units`` (of the values), ``name``, ``sample``, and JSON strings ``metadata_json`` (other
  normalised keys), ``acquisition_json``, ``original_metadata_json``, ``provenance_json``.

Nothing is unpickled or evaluated: attributes are parsed as JSON only. A file is self-contained or
refused: HDF5 external storage, external links and virtual datasets (which would make the reader
return the bytes of other files) are refused before any data is read, and so is a file whose
decoded data (after gzip) exceed the input limit (:func:`specproc.io.base.check_hdf5_self_contained`,
:func:`~specproc.io.base.check_decoded_size`). The data variable is read once, block by block
into one array (:func:`_load`), never copied or converted as a whole.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..core.errors import ReaderError, SpecprocError
from .base import (Reader, check_decoded_size, check_hdf5_self_contained, head_bytes, library_reason,
                   require_file)

LAYOUT = "specproc.measurement/1"
_STANDARD = ("technique", "signal_type", "units", "sample", "acquisition", "original_metadata", "provenance")

__all__ = ["save", "NetCDFReader", "LAYOUT"]


def _json(obj) -> str:
    from ..core.result import jsonable

    return json.dumps(jsonable(obj), allow_nan=False)


def save(m, path: str | Path, overwrite: bool = False) -> Path:
    """Write a measurement to ``path`` in specproc's NetCDF layout (atomically).

    Parameters
    ----------
    m : xarray.DataArray
        A specproc measurement (from :func:`specproc.read` or ``new_measurement``).
    path : str or Path
        Output file (``.nc``); refused if it exists unless ``overwrite``.

    Returns
    -------
    Path
    """
    import xarray as xr

    from ..core.files import atomic_write
    from ..core.measurement import check_measurement

    check_measurement(m)
    path = Path(path)
    if path.exists() and not overwrite:
        raise SpecprocError("file exists (pass overwrite=True to replace it)", path)
    vals = np.asarray(m.values)
    if np.iscomplexobj(vals):
        data = {"measurement_real": (m.dims, vals.real), "measurement_imag": (m.dims, vals.imag)}
    else:
        data = {"measurement": (m.dims, vals)}
    coords = {}
    for d in m.dims:
        c = m.coords[d] if d in m.coords else None
        cv = np.arange(m.sizes[d]) if c is None else np.asarray(c.values)
        coords[d] = (d, cv, {"units": str((c.attrs if c is not None else {}).get("units", ""))})
    # auxiliary coordinates (e.g. per-curve piezo heights of a force map, dims (y, x, point))
    for name, c in m.coords.items():
        if name in m.dims:
            continue
        v = np.asarray(c.values)
        if not np.issubdtype(v.dtype, np.number):
            v = v.astype(str)          # labels (region names): fixed-width unicode, never objects
        coords[name] = (c.dims, v, {"units": str(c.attrs.get("units", ""))})
    a = m.attrs
    extra = {k: v for k, v in a.items() if k not in _STANDARD}
    attrs = {"specproc_layout": LAYOUT, "technique": str(a.get("technique") or ""),
             "signal_type": str(a.get("signal_type") or ""), "units": str(a.get("units") or ""),
             "name": str(m.name or "intensity"), "sample": str(a.get("sample") or ""),
             "metadata_json": _json(extra), "acquisition_json": _json(a.get("acquisition") or {}),
             "original_metadata_json": _json(a.get("original_metadata") or {}),
             "provenance_json": _json(a.get("provenance") or {}),
             # NaN in a saved measurement were allowed when it was built (masked pixels)
             "allow_nan": int(not np.all(np.isfinite(vals)))}
    ds = xr.Dataset(data, coords=coords, attrs=attrs)
    return atomic_write(path, lambda tmp: ds.to_netcdf(tmp, engine="h5netcdf"))


def _loads(attrs, key, src):
    text = attrs.get(key)
    if text in (None, ""):
        return {}
    try:
        v = json.loads(str(text))
    except json.JSONDecodeError as exc:
        raise ReaderError(f"attribute {key} is not valid JSON ({exc.msg})", src) from None
    if not isinstance(v, dict):
        raise ReaderError(f"attribute {key} must be a JSON object", src)
    return v


#: bytes read per block by :func:`_load`: bounds the temporary of each read and HDF5's per-read
#: chunk bookkeeping (reading a 200 MB cube of 51,000 gzip chunks at once took 2 extra copies)
_BLOCK_BYTES = 8 << 20


def _load(var, out: np.ndarray | None = None) -> np.ndarray:
    """The values of a lazily opened xarray variable, read once into one array (``out`` if given).

    The variable is read in blocks along one axis, aligned to its HDF5 chunks (along the axis
    cut into the most chunks, so that no chunk is decompressed twice) and about
    :data:`_BLOCK_BYTES` each; each block is copied into the preallocated result and dropped.
    Peak memory is the result plus one block, whatever the chunking (one read of the whole
    variable made HDF5 hold per-chunk selections of about twice the data for small chunks).
    """
    shape = tuple(var.shape)
    if out is None:
        out = np.empty(shape, var.dtype)
    if out.size == 0 or not shape:
        out[...] = var.values
        return out
    chunks = var.encoding.get("chunksizes") or var.encoding.get("chunks")
    if not chunks or len(chunks) != len(shape):
        axis, chunks = 0, (1,) * len(shape)    # contiguous (or netCDF-3): slabs of the first axis
    else:
        chunks = tuple(max(int(c), 1) for c in chunks)
        axis = max(range(len(shape)), key=lambda k: -(-shape[k] // chunks[k]))
    per_index = out.nbytes // shape[axis] or 1          # bytes of one index along ``axis``
    step = max(chunks[axis], _BLOCK_BYTES // per_index // chunks[axis] * chunks[axis])
    sel = [slice(None)] * len(shape)
    for i in range(0, shape[axis], step):
        sel[axis] = slice(i, i + step)
        out[tuple(sel)] = var[tuple(sel)].values
    return out


class NetCDFReader(Reader):
    """specproc NetCDF layout (``sp.save``), or any NetCDF with one data variable and a ``technique``."""

    name = "netcdf"
    priority = Reader.SIGNATURE
    library = "xarray (h5netcdf)"
    description = "specproc NetCDF layout (sp.save): spectra, maps, profiles, spectrum images, force volumes"
    extensions = (".nc", ".nc4", ".netcdf")
    url = "docs/netcdf_layout.md"

    def guess_can_open(self, path: Path) -> bool:
        head = head_bytes(path, 8)
        return self.matches_extension(path) and (head.startswith(b"\x89HDF") or head.startswith(b"CDF"))

    def read(self, path: Path):
        import xarray as xr

        from ..core.measurement import new_measurement
        from ..core.provenance import file_provenance

        path = require_file(Path(path))
        head = head_bytes(path, 8)
        if not (head.startswith(b"\x89HDF") or head.startswith(b"CDF")):
            raise ReaderError("not a NetCDF file (no HDF5 / CDF signature)", path)
        engine = "h5netcdf" if head.startswith(b"\x89HDF") else "scipy"
        if engine == "h5netcdf":
            # before xarray opens it: opening already reads the dimension coordinates
            check_decoded_size(check_hdf5_self_contained(path), path, self)
        try:
            # lazily: nothing but the dimension coordinates is read until _load
            ds = xr.open_dataset(path, engine=engine, decode_times=False, mask_and_scale=False, cache=False)
        except Exception as exc:
            raise ReaderError(f"cannot open as NetCDF: {library_reason(exc)}", path) from exc
        with ds:
            if engine == "scipy":  # netCDF-3: no compression, but the header alone declares the shapes
                check_decoded_size(sum(v.size * v.dtype.itemsize for v in ds.variables.values()), path, self)
            attrs = dict(ds.attrs)
            if "measurement" in ds.data_vars:
                var = ds["measurement"]
                vals = _load(var)
            elif "measurement_real" in ds.data_vars and "measurement_imag" in ds.data_vars:
                var, imag = ds["measurement_real"], ds["measurement_imag"]
                if imag.shape != var.shape:
                    raise ReaderError(f"measurement_imag has shape {imag.shape}, measurement_real "
                                      f"{var.shape}", path)
                vals = np.empty(var.shape, np.result_type(var.dtype, imag.dtype, np.complex64))
                _load(var, vals.real)   # straight into the complex array: no real + 1j*imag temporaries
                _load(imag, vals.imag)
            elif len(ds.data_vars) == 1:
                var = next(iter(ds.data_vars.values()))
                vals = _load(var)
            else:
                raise ReaderError(f"no 'measurement' variable (data variables: {sorted(ds.data_vars)}); "
                                  f"see docs/netcdf_layout.md", path)
            technique = attrs.get("technique") or var.attrs.get("technique")
            if not technique:
                raise ReaderError("no 'technique' attribute: specproc cannot tell what this file holds "
                                  "(see docs/netcdf_layout.md)", path)
            coords = {}
            for d in var.dims:
                if d in ds.coords:
                    c = ds.coords[d]
                    coords[d] = (np.asarray(c.values), str(c.attrs.get("units", "")))
                else:
                    coords[d] = (np.arange(var.sizes[d]), "")
            aux = {name: (c.dims, np.asarray(c.values) if np.issubdtype(c.dtype, np.number)
                          else np.asarray(c.values).astype(str), dict(c.attrs)) for name, c in ds.coords.items()
                   if name not in var.dims and set(c.dims) <= set(var.dims)}
        meta = _loads(attrs, "metadata_json", path)
        prov_orig = _loads(attrs, "provenance_json", path)
        prov = file_provenance(path, self.name)
        if prov_orig:
            prov["derived_from"] = prov_orig
        m = new_measurement(
            vals, coords, technique=str(technique), units=str(attrs.get("units") or var.attrs.get("units") or "arb"),
            name=str(attrs.get("name") or var.name or "intensity"), sample=str(attrs.get("sample") or "") or None,
            signal_type=str(attrs.get("signal_type") or "spectrum"), metadata=meta,
            acquisition=_loads(attrs, "acquisition_json", path),
            original_metadata=_loads(attrs, "original_metadata_json", path), provenance=prov,
            allow_nan=bool(int(attrs.get("allow_nan", 0) or 0)),
            source=str(path))
        for name, (dims, v, at) in aux.items():
            m = m.assign_coords({name: (dims, v, {"units": str(at.get("units", ""))})})
        return m
