"""What the IR readers (JCAMP-DX, text/CSV, SPC) share: the ordinate conventions of an IR spectrum."""
from __future__ import annotations

import numpy as np

from ..core.errors import ReaderError


def decide_transmittance_scale(y: np.ndarray, declared: str | None, path) -> str:
    """Percent or fraction for a transmittance: the header when it says, else the data.

    A fraction never exceeds ~1 (a few % over 1 happens with noise / imperfect references), a
    percent spectrum that is everywhere below 2 %T would be opaque noise: values above 2 mean
    percent, all values within [-0.5, 2] mean fraction.
    """
    ymax = float(np.max(y))
    if declared == "percent":
        if ymax <= 2.0 and float(np.median(y)) < 1.5:
            # header says %T but the data are a 0-1 fraction (common writer bug); say so loudly
            return "fraction"
        return "percent"
    return "percent" if ymax > 2.0 else "fraction"


def ir_ordinates(x, y, kind: str, declared: str | None, path, claim: str, axis: str | None = None):
    """``(x, y, scale)`` as every IR reader gives them: a transmittance as a 0-1 fraction (``scale``
    "percent" or "fraction", see :func:`decide_transmittance_scale`; None for absorbance), an
    absorbance that looks like %T refused (``claim``: what declared it absorbance, for the
    message), the axis increasing. ``axis`` names the axis in the error on repeated wavenumbers;
    None allows them (the sort is stable).
    """
    scale = None
    if kind == "transmittance":
        scale = decide_transmittance_scale(y, declared, path)
        if scale == "percent":
            y = y / 100.0
    elif kind == "absorbance" and float(np.max(y)) > 10.0 and float(np.min(y)) >= 0.0:
        # no spectrometer measures absorbance 10 (1e-10 of the light); this is %T mislabelled
        raise ReaderError(f"{claim} but values reach {float(np.max(y)):.4g} (looks like %T); "
                          "pass y_kind='transmittance' if so", path)
    if axis is not None and len(np.unique(x)) != x.size:
        raise ReaderError(f"repeated wavenumbers in the {axis}", path)
    order = np.argsort(x, kind="stable")
    return x[order], y[order], scale
