"""JPK NanoWizard images (``*.jpk``, TIFF-based) through AFMReader -> AFM map measurement.

AFMReader (https://github.com/AFM-SPM/AFMReader, LGPL/GPL-3.0: an optional extra,
``pip install "specproc[afm-images]"``) decodes a JPK image channel: the raw integer page of
the TIFF container, the linear scaling and offset of the channel's default slot (JPK's private
tags), the vertical flip to image orientation, and the pixel size. Its channel list and the slow
scan length come from the same TIFF tags (read with tifffile, which AFMReader uses, and
AFMReader's own table of JPK tag numbers).

Channels read: the topography channels whose unit AFMReader establishes, ``height`` and
``measuredHeight`` (trace and retrace), converted from AFMReader's nm to m. Other channels
(``amplitude``, ``phase``, ``error``, ``vDeflection``...) are listed in
``acquisition["skipped_channels"]``: AFMReader scales them but does not say in what unit, and a
number without a unit is not read. The measurement is the shared ``("channel", "y", "x")`` AFM map
(:func:`specproc.io.gwyddion.map_measurement`).

Refused: a ``.jpk`` that is not a TIFF (a JPK force file is a ZIP: ``.jpk-force``), a TIFF without
JPK channel tags, files with no height channel, scan sizes that are not physical.
"""
from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..core.errors import ReaderError
from .base import Reader, head_bytes, library_reason, require_file

_TIFF = (b"II*\x00", b"MM\x00*")
_INSTALL = 'JPK images are read with AFMReader: pip install "specproc[afm-images]"'
#: AFMReader channels whose values it returns in nm (heights); the others' units are not stated
_HEIGHTS = ("height", "measuredHeight")


def _quiet_afmreader():
    """AFMReader logs every step at INFO level through loguru; a reader prints nothing."""
    try:
        from loguru import logger

        logger.disable("AFMReader")
    except ImportError:  # pragma: no cover - loguru is AFMReader's dependency
        pass


class _TiffErrors(logging.Filter):
    """Collects, per thread, the ERROR records tifffile logs inside :func:`_tifffile_errors` and
    drops them (a filter active per thread: no process-wide level or handler change, which would
    race when files are read in threads)."""

    def __init__(self):
        super().__init__()
        self.local = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        msgs = getattr(self.local, "messages", None)
        if msgs is None:
            return True
        if record.levelno >= logging.ERROR:
            msgs.append(record.getMessage())
        return False


_TIFF_FILTER = _TiffErrors()


@contextmanager
def _tifffile_errors():
    """The ERROR messages tifffile logs while this thread parses a file (silenced meanwhile)."""
    log = logging.getLogger("tifffile")
    if _TIFF_FILTER not in log.filters:
        log.addFilter(_TIFF_FILTER)  # idempotent, never removed (a removal would race other threads)
    _TIFF_FILTER.local.messages = msgs = []
    try:
        yield msgs
    finally:
        _TIFF_FILTER.local.messages = None


class JpkImageReader(Reader):
    """JPK NanoWizard ``.jpk`` image (TIFF container) -> height channels, ``("channel", "y", "x")`` in m."""

    name: ClassVar[str] = "jpk-image"
    priority: ClassVar[int] = Reader.SIGNATURE
    description: ClassVar[str] = "JPK NanoWizard .jpk AFM images (TIFF container): height channels in m, via AFMReader"
    technique: ClassVar[str] = "afm"
    extensions: ClassVar[tuple[str, ...]] = (".jpk",)
    url: ClassVar[str] = "https://github.com/AFM-SPM/AFMReader"
    library: ClassVar[str] = "AFMReader"
    extra: ClassVar[str] = "afm-images"
    extra_module: ClassVar[str] = "AFMReader"
    notes: ClassVar[str] = ("height and measured-height channels (trace/retrace) in m, scan size from the JPK tags; "
                            "amplitude/phase/error channels skipped (unit not given by AFMReader); refused: non-TIFF "
                            ".jpk, TIFFs without JPK channel tags, files without a height channel")

    def guess_can_open(self, path: Path) -> bool:
        p = Path(path)
        return p.is_file() and self.matches_extension(p) and head_bytes(p, 4) in _TIFF

    def read(self, path: Path, channel: str | None = None, sample: str | None = None):
        """Read the height channels of a JPK image.

        Parameters
        ----------
        path : Path
            ``*.jpk`` image file.
        channel : str, optional
            One channel (AFMReader names: ``height_trace``, ``height_retrace``,
            ``measuredHeight_trace``...); default all height channels.
        sample : str, optional
            Sample name (default: the file stem).

        Returns
        -------
        xarray.DataArray
            dims ``("channel", "y", "x")``, values in m, ``x``/``y`` pixel centres in m.
        """
        from .gwyddion import map_measurement

        p = require_file(Path(path), "JPK image")
        if head_bytes(p, 4) not in _TIFF:
            what = "a ZIP container (a JPK force file: use .jpk-force)" if head_bytes(p, 2) == b"PK" else "not a TIFF"
            raise ReaderError(f"not a JPK image: {what}", p)
        try:
            import tifffile
            from AFMReader import jpk as afm_jpk
        except ImportError:
            raise ReaderError(_INSTALL, p) from None
        _quiet_afmreader()
        size = p.stat().st_size
        try:
            tags = _jpk_tags()
            with _tifffile_errors() as errors, tifffile.TiffFile(p) as tif:
                pages = list(tif.pages)
                if errors:  # tifffile logs a broken page chain (a cut file) and goes on with fewer pages
                    raise ReaderError(f"truncated or corrupt TIFF container ({errors[0]})", p)
                for page in pages:
                    end = max((o + c for o, c in zip(page.dataoffsets, page.databytecounts)), default=0)
                    if end > size:
                        raise ReaderError(f"truncated: image data end at byte {end}, the file has {size}", p)
                if len(pages) < 2:
                    raise ReaderError("a TIFF with no image channel pages (JPK keeps a thumbnail first)", p)
                first = pages[0].tags
                if tags["channel_name"] not in pages[1].tags or tags["grid_ulength"] not in first:
                    raise ReaderError("a TIFF without JPK channel tags: not a JPK image", p)
                xreal = float(first[tags["grid_ulength"]].value)
                yreal = float(first[tags["grid_vlength"]].value)
                names = []
                for page in pages[1:]:
                    ch = str(page.tags[tags["channel_name"]].value)
                    names.append(f"{ch}_{'trace' if page.tags[tags['trace_retrace']].value == 0 else 'retrace'}")
        except ReaderError:
            raise
        except Exception as exc:
            raise ReaderError(f"not a readable JPK image ({library_reason(exc)})", p) from None
        wanted = [n for n in names if n.rsplit("_", 1)[0] in _HEIGHTS]
        skipped = [n for n in names if n not in wanted]
        if channel is not None:
            if channel not in names:
                raise ReaderError(f"no channel {channel!r}; channels: {', '.join(names)}", p)
            if channel not in wanted:
                raise ReaderError(f"channel {channel!r} is not read: AFMReader gives no unit for it "
                                  f"(height channels: {', '.join(wanted) or 'none'})", p)
            wanted = [channel]
        if not wanted:
            raise ReaderError(f"no height channel in the file (channels: {', '.join(names)})", p)
        channels = []
        for n in wanted:
            try:
                img, _px_nm = afm_jpk.load_jpk(p, channel=n)
            except Exception as exc:
                raise ReaderError(f"channel {n!r} cannot be decoded ({library_reason(exc)})", p) from None
            img = np.asarray(img, float) * 1e-9  # AFMReader returns heights in nm
            channels.append((n, img, "m"))
        acq = {"channel_names_in_file": names, "afmreader_version": _version()}
        m = map_measurement(channels, xreal, yreal, path=p, reader=self.name, sample=sample,
                            acquisition=acq, original_metadata={"grid_ulength_m": xreal, "grid_vlength_m": yreal})
        m.attrs["acquisition"] = {**m.attrs["acquisition"],
                                  "skipped_channels": list(m.attrs["acquisition"]["skipped_channels"]) + skipped}
        return m


def _jpk_tags() -> dict[str, int]:
    """AFMReader's table of JPK's private TIFF tag numbers (its packaged ``default_config.yaml``)."""
    from importlib import resources

    from AFMReader.io import read_yaml

    return read_yaml(Path(str(resources.files("AFMReader") / "default_config.yaml")))["jpk"]


def _version() -> str | None:
    import importlib.metadata as md

    try:
        return md.version("afmreader")
    except md.PackageNotFoundError:
        return None
