"""What kind of scan is this? Powder pattern, high-resolution (single-crystal / epitaxial) scan, or reflectivity.

Powder analysis (phase search–match, Scherrer size, amorphous hint) means nothing on a scan of a
single crystal or an epitaxial layer stack (one enormous substrate reflection and its layer peaks in
a degree or two), nor on an X-ray reflectivity (XRR) curve (intensity falling by orders of magnitude
from the critical angle at grazing 2θ). The rules below use the scan range, the step, the dynamic range
and the scan axis recorded by the instrument; they are deliberately conservative (a normal powder
pattern never triggers them) and the user can force ``scan_type``.

``reflectivity``  starts below 2° 2θ, spans < 20°, and the intensity of the first quarter of the scan
                  exceeds the median of the last quarter by more than 10^2.5 (a Kiessig-fringe decay).
``high-resolution`` spans < 10° with a step < 0.005° or an ω-2θ/2θ-ω scan axis, or a reflection more than
                  10^4 times the median level within a span < 20°.
``powder``        everything else.
"""
from __future__ import annotations

import numpy as np

HR_AXES = ("omega-2theta", "2theta-omega", "twothetaomega", "2-theta/omega", "omega/2theta")


def classify_scan(x, y, scan_axis: str | None = None) -> tuple[str, list[str]]:
    """``(kind, reasons)`` with kind in ``{"powder", "high-resolution", "reflectivity"}``.

    Parameters
    ----------
    x, y : ndarray
        2θ (deg, increasing) and intensity.
    scan_axis : str, optional
        The instrument's scan axis (``acquisition["scan_axis"]``: ``Gonio``, ``Omega-2Theta``...).
    """
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    span = float(x[-1] - x[0])
    step = float(np.median(np.diff(x)))
    q = max(len(y) // 4, 1)
    base = max(float(np.median(y[-q:])), 1.0)
    axis = (scan_axis or "").replace(" ", "").lower()
    if x[0] < 2.0 and span < 20.0 and float(np.max(y[:q])) > 10 ** 2.5 * base:
        return "reflectivity", [f"starts at {x[0]:.2f}° 2θ, spans {span:.1f}°, intensity falls by "
                                f"{np.log10(np.max(y[:q]) / base):.1f} decades: an X-ray reflectivity curve"]
    dyn = float(np.max(y)) / max(float(np.median(y)), 1.0)
    reasons = []
    if span < 10.0 and step < 0.005:
        reasons.append(f"narrow scan ({span:.2f}° at {step:.4f}° steps)")
    if span < 10.0 and any(a in axis for a in HR_AXES):
        reasons.append(f"{scan_axis} scan over {span:.2f}°")
    if span < 20.0 and dyn > 1e4:
        reasons.append(f"one reflection {dyn:.1e} times the median level (a single-crystal substrate)")
    if reasons:
        return "high-resolution", reasons
    return "powder", []
