"""The one data model: an xarray DataArray with units, metadata and provenance.

Every reader builds its output through :func:`new_measurement`; every processor accepts
what it builds. Dimensions carry physical coordinates with pint-compatible unit strings in
``coords[dim].attrs["units"]``. Normalised metadata lives in ``attrs`` (``technique``,
``sample``, ``instrument``, ``date``, ``acquisition`` and any technique keys the reader adds), the untouched vendor
tree under ``attrs["original_metadata"]``, and the provenance record under
``attrs["provenance"]``. 1D spectra, 2D depth profiles / maps and 3D spectrum images are the
same type with more dims (HyperSpy's ``signal_type`` idea: specialise by metadata, not class).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from .errors import ReaderError

TECHNIQUES = ("nmr", "xrd", "ftir", "eels", "xps", "afm", "echem")

#: Normalised metadata keys every measurement has (None when unknown).
METADATA_KEYS = ("technique", "sample", "instrument", "date", "signal_type")


def new_measurement(
    values: Any,
    coords: Mapping[str, tuple[Any, str]] | Sequence[tuple[str, Any, str]],
    *,
    technique: str,
    units: str = "arb",
    name: str = "intensity",
    sample: str | None = None,
    signal_type: str = "spectrum",
    metadata: Mapping[str, Any] | None = None,
    acquisition: Mapping[str, Any] | None = None,
    original_metadata: Mapping[str, Any] | None = None,
    provenance: Mapping[str, Any] | None = None,
    allow_nan: bool = False,
    source: str | None = None,
    axis_ranges: Mapping[str, tuple[float, float]] | None = None,
    value_range: tuple[float, float] | None = None,
) -> xr.DataArray:
    """Build and validate a measurement.

    Parameters
    ----------
    values : array_like
        Data, shape matching the coordinates in order.
    coords : mapping ``dim -> (values, units)`` (ordered)
        Physical axes; the last dim is the signal axis (ppm, 2theta, energy...).
    technique : str
        One of ``nmr, xrd, ftir, eels, xps, afm`` (third-party techniques are allowed).
    units : str
        Units of the values (pint-compatible, ``"arb"`` for arbitrary).
    signal_type : str
        ``"fid"``, ``"spectrum"``, ``"pattern"``, ``"profile"``, ``"map"``, ``"image"``...
    allow_nan : bool
        NaN/inf values are rejected unless True (e.g. masked AFM pixels).
    source : str, optional
        Path used in error messages.
    axis_ranges : mapping ``dim -> (lo, hi)``, optional
        Physical range of an axis declared by the reader (e.g. a diffraction angle in 0..180
        deg, a wavenumber > 0): values outside it are refused with a clear error.
    value_range : (lo, hi), optional
        Physical range of the values (e.g. counts >= 0 with a tolerance for dark subtraction is the
        reader's choice); finite values outside it are refused.

    Returns
    -------
    xarray.DataArray
    """
    items = list(coords.items()) if isinstance(coords, Mapping) else [(d, (v, u)) for d, v, u in coords]
    arr = np.asarray(values)
    src = source or (provenance or {}).get("source")
    if arr.size == 0:
        raise ReaderError("no data points", src)
    if arr.ndim != len(items):
        raise ReaderError(f"data has {arr.ndim} dims but {len(items)} axes were given", src)
    if not (np.issubdtype(arr.dtype, np.number)):
        raise ReaderError(f"data are not numeric (dtype {arr.dtype})", src)
    if not allow_nan and not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ReaderError(f"{bad} NaN/inf values in the data", src)
    xcoords = {}
    for i, (dim, (cv, cu)) in enumerate(items):
        cv = np.asarray(cv)
        if cv.shape != (arr.shape[i],):
            raise ReaderError(f"axis {dim!r} has {cv.size} values for {arr.shape[i]} data points", src)
        if np.issubdtype(cv.dtype, np.number) and not np.all(np.isfinite(cv)):
            raise ReaderError(f"axis {dim!r} has NaN/inf values", src)
        if axis_ranges and dim in axis_ranges and np.issubdtype(cv.dtype, np.number):
            lo, hi = axis_ranges[dim]
            if cv.min() < lo or cv.max() > hi:
                raise ReaderError(f"axis {dim!r} runs {cv.min():.6g}..{cv.max():.6g} {cu}, outside its physical "
                                  f"range {lo:g}..{hi:g} {cu}", src)
        xcoords[dim] = variable(dim, cv, {"units": str(cu)})
    if value_range is not None:
        lo, hi = value_range
        fin = np.abs(arr) if np.iscomplexobj(arr) else arr
        fin = fin[np.isfinite(fin)]
        if fin.size and (fin.min() < lo or fin.max() > hi):
            raise ReaderError(f"values run {fin.min():.6g}..{fin.max():.6g} {units}, outside their physical range "
                              f"{lo:g}..{hi:g}", src)
    md = dict(metadata or {})
    attrs = {k: None for k in METADATA_KEYS}
    attrs.update(md)
    attrs.update(technique=technique, signal_type=signal_type, units=units)
    if sample is not None:
        attrs["sample"] = sample
    attrs["acquisition"] = dict(acquisition or {})
    attrs["original_metadata"] = dict(original_metadata or {})
    attrs["provenance"] = dict(provenance or {})
    # the dimension indexes built here from the validated axes (xarray would build the same ones,
    # through its duck-array checks: half the cost of the whole construction for a 1D spectrum)
    import pandas as pd
    from xarray.indexes import PandasIndex

    indexes = {dim: PandasIndex(pd.Index(np.asarray(var.values)), dim) for dim, var in xcoords.items()}
    coords = xr.Coordinates(xcoords, indexes=indexes)
    dims = [d for d, _ in items]
    return xr.DataArray(variable(dims, arr, None), coords=coords, dims=dims, name=name, attrs=attrs)


def variable(dims, values, attrs=None):
    """An xarray Variable; plain numeric numpy arrays skip xarray's duck-array checks (which import
    dask.array and scipy.fft, ~0.4 s of a process's first measurement or Dataset, for arrays that
    are plain numpy by construction). Anything else takes xarray's full path."""
    if type(values) is np.ndarray and values.dtype.kind in "biufc":
        return xr.Variable(dims, values, attrs, fastpath=True)
    return xr.Variable(dims, values, attrs)


def signal_dim(da: xr.DataArray) -> str:
    """The signal axis of a measurement (by convention the last dim)."""
    return da.dims[-1]


def label(da: xr.DataArray) -> str:
    """Short label for tables and legends: sample, else file name."""
    s = da.attrs.get("sample")
    if s:
        return str(s)
    src = da.attrs.get("provenance", {}).get("source")
    return src.rsplit("/", 1)[-1] if src else "measurement"


def reader_notes(da: xr.DataArray) -> list[str]:
    """What the reader noticed about the file (``attrs["acquisition"]["reader_notes"]``: a stopped
    acquisition read up to its last row, an assumed unit, absorbance computed from single channels),
    as ``"reader: ..."`` warnings that every result fitted from it carries."""
    acq = da.attrs.get("acquisition") or {}
    notes = acq.get("reader_notes") if isinstance(acq, dict) else None
    return [f"reader: {n}" for n in notes or []]


def check_measurement(obj: Any, technique: str | None = None, what: str = "input") -> xr.DataArray:
    """Validate that ``obj`` is a specproc measurement (optionally of ``technique``)."""
    from .errors import ParameterError

    if not isinstance(obj, xr.DataArray) or "technique" not in obj.attrs:
        raise ParameterError(f"{what} must be a specproc measurement (from specproc.read), got {type(obj).__name__}")
    if technique and obj.attrs["technique"] != technique:
        raise ParameterError(
            f"{what} is a {obj.attrs['technique']} measurement; this processor needs {technique}",
            obj.attrs.get("provenance", {}).get("source"),
        )
    return obj
