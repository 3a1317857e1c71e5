"""AFM force curves and force maps (JPK ``.jpk-force``/``.jpk-force-map``/``.jpk-qi-data``, Asylum
``.ibw``) through :mod:`afmformats` -> force-map measurement. afmformats' ``.h5``/``.tab`` exports
and JPK ``.jpk-qi-series`` are read by :mod:`specproc.io.afm_formats` (readers ``afmformats-export``,
``jpk-qi-series``), subclasses of this reader with the same layout.

Measurement layout (one type for a single curve and a map):

* values: **force (N)** of the approach segment, dims ``("y", "x", "point")``; a single curve is a
  1 x 1 map; curves of a map without grid indices are laid out along ``x``;
* coordinate ``height`` (m), dims ``("y", "x", "point")``: the height of the approach segment as
  afmformats gives it — ``height (measured)`` when the file has it (calibrated sensor), else
  ``height (piezo)``; the column used is ``acquisition["height_column"]``. Heights decrease as
  the tip approaches the sample (afmformats' convention);
* ``x``/``y`` (m): grid positions (``grid size`` / grid shape, pixel centres) when known, else the
  recorded positions, else 0;
* ``point``: sample index of the (resampled) approach segment.

**Approach/retract split** (``split="turning-point"``, default): the instrument's segments end where
the piezo reverses, but the tip keeps indenting for a few samples (time lag, the bent cantilever);
as nanite's ``correct_split_approach_retract`` the approach is extended to the *turning point* —
the point farthest from the contact point in normalised tip position and force (contact point:
nanite's deviation from the first 10 % of the curve; tip position ``height + F/k`` when the spring
constant is known). Those last samples are the deepest indentation, so they matter for stiff
curves. ``split="file"`` keeps the file's segments. Files without a retract segment (afmformats
puts the whole curve in segment 0, e.g. Asylum ``.ibw``) are cut at the lowest height: the approach
is the part before it (``acquisition["approach_split_at"]``).

Maps whose curves have different lengths (ragged maps) are **padded with NaN** force at the end
of the shorter curves (their height held at its last value), so that no curve loses points
(``acquisition["padded"]``; the force-curve fit uses each curve's own points). With ``n_points``
every curve is instead resampled to that many points by linear interpolation along the sample
index (``acquisition["resampled"]``). Grid positions without a curve are NaN.
``acquisition`` holds ``spring_constant_N_per_m``, ``sensitivity_m_per_V``, ``setpoint_N``,
``speed_approach_m_per_s``, ``imaging_mode``, ``software``, ``n_curves``, ``point_counts``
(full curve lengths), ``approach_points`` (the file's approach segments), ``approach_points_used``
(after the turning-point correction), ``approach_split`` and ``grid_shape``.
"""
from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..core.errors import ReaderError
from .base import Reader, head_bytes, library_reason, require_file
from ..core.numbers import finite_or_none

_EXT = (".jpk-force", ".jpk-force-map", ".jpk-qi-data", ".ibw")


_f = finite_or_none


def _turning_point(F: np.ndarray, H: np.ndarray, k: float | None) -> int | None:
    """End of the approach (exclusive) of a whole approach+retract curve, as nanite 4.2's
    ``correct_split_approach_retract`` (``poc_deviation_from_baseline`` + ``find_turning_point``);
    None when the contact cannot be found."""
    F = np.asarray(F, float)
    n0 = int(F.size * 0.1)
    if n0 < 2:
        return None
    base = F[:n0]
    avg = base.mean()
    dev = (F - avg) > 2 * np.abs(base - avg).max()
    idp = int(np.argmax(dev))
    if not dev[idp] or idp < 2:
        return None
    x = (np.asarray(H, float) + F / k) if k else np.asarray(H, float).copy()
    x = x - x[idp]
    xmin = x.min()
    if xmin != 0:
        x = x / xmin
    x[x < 0] = 0
    y = F - F[:idp].mean()
    ymax = y.max()
    if not ymax > 0:
        return None
    y = y / ymax
    y[y < np.std(y[:idp])] = 0
    return int(np.argmax(x ** 2 + y ** 2))


def _resample(y: np.ndarray, n: int) -> np.ndarray:
    if y.size == n:
        return y
    return np.interp(np.linspace(0, y.size - 1, n), np.arange(y.size), y)


class _ReadingThreads(logging.Filter):
    """Drops afmformats' and igor2's log records of the threads inside :func:`_no_loader_tracebacks`.

    afmformats logs every failed loader with ``logger.exception`` (a full traceback on stderr)
    before raising, igor2 the raw bytes of a wave it cannot shape; the ReaderError already says why. A filter on its logger, active per thread,
    leaves the library's logging untouched for anybody else in the process (no level change,
    which is process-wide and races when files are read in threads).
    """

    def __init__(self):
        super().__init__()
        self.local = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(self.local, "active", False)


_FILTER = _ReadingThreads()
#: loggers that write a damaged file's traceback or raw bytes (igor2 logs the whole data block of an
#: .ibw it cannot shape); a logger's filter sees only its own records, so each one is named
_CHATTY_LOGGERS = ("afmformats.formats", "igor2.binarywave")


@contextmanager
def _no_loader_tracebacks():
    for name in _CHATTY_LOGGERS:
        log = logging.getLogger(name)
        if _FILTER not in log.filters:
            log.addFilter(_FILTER)  # idempotent; never removed (a removal would race other threads)
    _FILTER.local.active = True
    try:
        yield
    finally:
        _FILTER.local.active = False


def _afm_reason(exc: BaseException) -> str:
    """afmformats' own errors (BaseException subclasses) in words; anything else by its type."""
    from afmformats import errors

    if isinstance(exc, errors.MissingMetaDataError):
        keys = ", ".join(map(str, getattr(exc, "meta_keys", None) or ())) or "unnamed keys"
        return f"metadata it needs are missing from the file ({keys})"
    if isinstance(exc, errors.FileFormatNotSupportedError):
        return "a variant of the format that afmformats does not support, or another kind of file"
    if isinstance(exc, errors.AFMFileFormatError):
        return "the file is damaged or its metadata cannot be parsed"
    return library_reason(exc)


class ForceCurveReader(Reader):
    """AFM force-distance curves and force-volume maps via afmformats (approach segment)."""

    name = "afm-force"
    priority = Reader.SIGNATURE
    library = "afmformats"
    description = "AFM force curves/maps (afmformats: JPK, Asylum .ibw): approach force (N) vs height (m)"
    technique = "afm"
    extensions = _EXT
    url = "https://github.com/AFM-analysis/afmformats"

    def guess_can_open(self, path: Path) -> bool:
        p = Path(path)
        if not p.is_file():
            return False
        name = p.name.lower()
        if name.endswith((".jpk-force", ".jpk-force-map", ".jpk-qi-data")):
            return head_bytes(p, 2) == b"PK"   # JPK force files are ZIP containers
        if name.endswith(".ibw"):
            # Igor binary waves are used for images too; afmformats reads force curves only
            return b"ForceDist" in head_bytes(p, 1 << 16) or b"Defl" in head_bytes(p, 1 << 16)
        return False

    def read(self, path: Path, n_points: int | None = None, sample: str | None = None,
             split: str = "turning-point"):
        """Read the approach segments of every curve.

        Parameters
        ----------
        path : Path
        n_points : int, optional
            Resample every curve to this many points (default: none; curves of a ragged map are
            padded with NaN to the longest).
        sample : str, optional
            Sample name (default: the file's sample metadata, else the file stem).
        split : {"turning-point", "file"}
            End of the approach: nanite's turning point (default) or the file's segment.

        Returns
        -------
        xarray.DataArray
            Force (N), dims ``("y", "x", "point")``, coordinate ``height`` (m) on all three dims.
        """
        import afmformats

        from ..core.measurement import new_measurement
        from ..core.provenance import file_provenance

        path = require_file(Path(path))
        if split not in ("turning-point", "file"):
            raise ReaderError(f"split must be 'turning-point' or 'file', not {split!r}", path)
        suffixes = tuple(afmformats.supported_extensions)
        if not path.name.lower().endswith(suffixes):
            raise ReaderError(f"not an AFM force-curve file: afmformats reads {', '.join(suffixes)} files", path)
        try:
            with _no_loader_tracebacks():
                dl = afmformats.load_data(str(path))
        # afmformats' own errors derive from BaseException, not Exception
        except (Exception, afmformats.errors.AFMFileFormatError, afmformats.errors.MissingMetaDataError) as exc:
            raise ReaderError(f"afmformats cannot read it: {_afm_reason(exc)}", path) from exc
        if len(dl) == 0:
            raise ReaderError("no force curves in the file", path)
        curves = []
        for fd in dl:
            try:
                with _no_loader_tracebacks():
                    cols = fd.columns
                    app, ret = fd.appr, fd.retr
                    _ = app["force"], len(ret["force"])
            except (Exception, afmformats.errors.AFMFileFormatError, afmformats.errors.MissingMetaDataError) as exc:  # lazily loaded data
                raise ReaderError(f"curve {fd.metadata.get('enum')} cannot be loaded ({_afm_reason(exc)})",
                                  path) from exc
            if "force" not in cols:
                raise ReaderError(f"curve {fd.metadata.get('enum')} has no force column ({cols})", path)
            hcol = "height (measured)" if "height (measured)" in cols else "height (piezo)"
            if hcol not in cols:
                raise ReaderError(f"curve {fd.metadata.get('enum')} has no height column ({cols})", path)
            F = np.asarray(app["force"], float)
            H = np.asarray(app[hcol], float)
            n_file = F.size
            cut = None
            if len(ret["force"]) == 0 and H.size > 20:
                # no retract segment in the file (e.g. Asylum .ibw): the approach ends at the lowest height
                k = int(np.argmin(H))
                if 10 <= k < H.size - 5:
                    F, H, cut = F[:k + 1], H[:k + 1], k + 1
                    n_file = F.size
            elif split == "turning-point" and len(ret["force"]) > 0 and "segment" in cols:
                # the approach ends at the turning point (nanite's split), not where the piezo reversed
                Fa, Ha = np.asarray(fd["force"], float), np.asarray(fd[hcol], float)
                seg = np.asarray(fd["segment"])
                if (np.isfinite(Fa).all() and np.isfinite(Ha).all() and seg.size == Fa.size == Ha.size
                        and (seg[:F.size] == 0).all()):
                    it = _turning_point(Fa, Ha, _f(fd.metadata.get("spring constant")))
                    if it is not None and it >= 10:
                        F, H = Fa[:it], Ha[:it]
            if F.size < 10:
                raise ReaderError(f"curve {fd.metadata.get('enum')} has only {F.size} approach points", path)
            if not (np.isfinite(F).all() and np.isfinite(H).all()):
                raise ReaderError(f"curve {fd.metadata.get('enum')} has NaN/inf force or height", path)
            curves.append((fd.metadata, F, H, hcol, len(fd), cut, n_file))
        md0 = curves[0][0]
        lengths = [c[1].size for c in curves]
        n = int(n_points or max(lengths))
        if n < 10:
            raise ReaderError(f"n_points={n}: at least 10 points per curve are needed", path)
        # grid
        gx = [c[0].get("grid index x") for c in curves]
        gy = [c[0].get("grid index y") for c in curves]
        if len(curves) > 1 and all(v is not None for v in gx + gy):
            # only the occupied grid rows/columns (an extract of a larger grid stays compact)
            ux, uy = sorted(set(gx)), sorted(set(gy))
            nxg, nyg = len(ux), len(uy)
            idx = [(uy.index(b), ux.index(a)) for a, b in zip(gx, gy)]
            if len(set(idx)) != len(idx):
                raise ReaderError("two curves share one grid position", path)

            def axis(which, used):
                size, full = _f(md0.get(f"grid size {which}")), _f(md0.get(f"grid shape {which}"))
                if size and full:
                    return (np.asarray(used, float) + 0.5) * size / full
                pos = np.zeros(len(used))
                for (iy, ix), c in zip(idx, curves):
                    pos[iy if which == "y" else ix] = _f(c[0].get(f"position {which}")) or 0.0
                return pos

            x, y = axis("x", ux), axis("y", uy)
        else:
            nxg, nyg = len(curves), 1
            idx = [(0, i) for i in range(len(curves))]
            x = np.array([_f(c[0].get("position x")) or 0.0 for c in curves])
            y = np.array([_f(md0.get("position y")) or 0.0])
        force = np.full((nyg, nxg, n), np.nan)
        height = np.full((nyg, nxg, n), np.nan)
        for (iy, ix), (_, F, H, _, _, _, _) in zip(idx, curves):
            if n_points:
                force[iy, ix] = _resample(F, n)
                height[iy, ix] = _resample(H, n)
            else:   # ragged map: NaN force after the curve's end, its height held (coords must be finite)
                force[iy, ix, :F.size] = F
                height[iy, ix, :F.size] = H
                height[iy, ix, F.size:] = H[-1]
        height = np.where(np.isfinite(height), height, np.nanmean(height, axis=(0, 1)))  # coords must be finite
        acq = {"spring_constant_N_per_m": _f(md0.get("spring constant")),
               "sensitivity_m_per_V": _f(md0.get("sensitivity")), "setpoint_N": _f(md0.get("setpoint")),
               "speed_approach_m_per_s": _f(md0.get("speed approach")),
               "imaging_mode": md0.get("imaging mode"), "software": md0.get("software"),
               "n_curves": len(curves), "point_counts": [c[4] for c in curves],
               "approach_points": [c[6] for c in curves], "approach_points_used": lengths,
               "approach_split": split, "grid_shape": [nyg, nxg], "height_column": curves[0][3],
               "resampled": bool(n_points) and any(v != n for v in lengths),
               "padded": not n_points and any(v != n for v in lengths), "n_points": n,
               "approach_split_at": [c[5] for c in curves] if any(c[5] for c in curves) else None}
        orig = {k: (v if isinstance(v, (str, int, float, bool, type(None))) else str(v))
                for k, v in dict(md0).items()}
        m = new_measurement(force, {"y": (y, "m"), "x": (x, "m"), "point": (np.arange(n), "")},
                            technique="afm", units="N", name="force", signal_type="force_volume",
                            sample=sample or md0.get("sample") or path.name.split(".")[0],
                            metadata={"instrument": md0.get("software")}, acquisition=acq,
                            original_metadata=orig,
                            provenance=file_provenance(path, self.name, getattr(afmformats, "__version__", None)),
                            allow_nan=True, source=str(path))
        m = m.assign_coords(height=(("y", "x", "point"), height))
        m.coords["height"].attrs["units"] = "m"
        return m
