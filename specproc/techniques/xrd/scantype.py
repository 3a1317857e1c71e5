"""What kind of scan is this? Powder pattern, high-resolution (single-crystal / epitaxial) scan, or reflectivity.

Powder analysis (peak search, phase search–match, Scherrer size, amorphous hint) means nothing on a
scan of a single crystal or an epitaxial layer stack (one enormous substrate reflection and its layer
peaks in a degree or two), nor on an X-ray reflectivity (XRR) curve (intensity falling by orders of
magnitude from the critical angle at grazing 2θ, with Kiessig fringes that a peak search takes for
"reflections"). The rules below use what the file says (its measurement type and scan axis) and the
data (range, step, dynamic range); they are deliberately conservative (a powder pattern never
triggers them) and the user can force ``scan_type``.

``reflectivity``  the file says so (a measurement type naming reflectivity / XRR), or the data: the scan
                  starts at grazing angles (≤ 2° 2θ), ends by 25°, the intensity — block medians,
                  so neither a Bragg peak nor a Kiessig fringe decides — falls from its maximum by
                  ≥ 3 decades (≥ 2 for a coupled ω-2θ scan axis, as XRR is measured), the fall is
                  sustained (the curve is still ≥ 10 % of the fall above its floor at ≥ 3× the 2θ of
                  its maximum: a power law ~ (2θ)^-4, not a beam-stop tail) and over by 15°, and no
                  sharp feature > 10× the level stands after the fall. Scale-free: counts, cps and
                  normalised reflectivity (1 → 1e-8) alike.
``high-resolution`` spans < 10° with a step < 0.005° or an ω-2θ/2θ-ω scan axis, or a reflection more than
                  10^4 times the median level within a span < 20°.
``powder``        everything else (a low-angle powder pattern with peaks on a flat background, or a
                  strong low-angle reflection over a flat background, is powder).
"""
from __future__ import annotations

import numpy as np

HR_AXES = ("omega-2theta", "2theta-omega", "twothetaomega", "2-theta/omega", "omega/2theta", "2theta/omega")

#: the data rule of a reflectivity curve (see the module docstring)
XRR_MAX_START_DEG = 2.0
XRR_MAX_END_DEG = 25.0
XRR_DECAY_END_DEG = 15.0
XRR_MIN_DECADES = 3.0
XRR_MIN_DECADES_COUPLED = 2.0
XRR_SUSTAINED = 3.0


def _coupled(scan_axis: str | None) -> bool:
    axis = (scan_axis or "").replace(" ", "").replace("_", "").lower()
    return any(a in axis for a in HR_AXES)


def reflectivity_evidence(x, y, scan_axis: str | None = None, measurement_type: str | None = None) -> str | None:
    """Why this scan is an X-ray reflectivity curve (a sentence), or None.

    Parameters
    ----------
    x, y : ndarray
        2θ (deg, increasing) and intensity (any scale: counts, cps, normalised reflectivity).
    scan_axis, measurement_type : str, optional
        What the file says (``acquisition["scan_axis"]``, ``acquisition["measurement_type"]``).
    """
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    rng = f"2θ {x[0]:.2f}–{x[-1]:.2f}°"
    mt = (measurement_type or "").lower()
    if "reflectiv" in mt or "xrr" in mt.replace("-", "").split():
        return f"{rng}, the file's measurement type is {measurement_type!r}"
    if x.size < 20 or x[0] > XRR_MAX_START_DEG or x[-1] > XRR_MAX_END_DEG:
        return None
    # block medians over ~1/8 of a degree (at least 3 points): a Bragg peak or a fringe does not move a
    # median, the decay of the whole curve does
    step = float(np.median(np.diff(x)))
    per = max(3, int(round(0.125 / step))) if step > 0 else 3
    nb = x.size // per
    if nb < 8:
        return None
    xb = x[:nb * per].reshape(nb, per).mean(axis=1)
    med = np.median(y[:nb * per].reshape(nb, per), axis=1)
    pos = y[y > 0]
    if pos.size == 0:
        return None
    floor = max(float(pos.min()) / 2, float(np.max(y)) * 1e-14)
    L = np.log10(np.clip(med, floor, None))
    imax = int(np.argmax(L))
    if xb[imax] > XRR_MAX_START_DEG + 0.5:
        return None
    env = np.maximum.accumulate(L[::-1])[::-1]          # upper envelope: never rises again
    drop = float(env[imax] - env[-1])
    need = XRR_MIN_DECADES_COUPLED if _coupled(scan_axis) else XRR_MIN_DECADES
    if drop < need:
        return None
    # where the envelope is within 10 % of the fall from its floor: the end of the decay
    k_end = imax + int(np.argmax(env[imax:] <= env[-1] + 0.1 * drop))
    x_end = float(xb[k_end])
    if x_end > XRR_DECAY_END_DEG or x_end < XRR_SUSTAINED * max(float(xb[imax]), 0.1):
        return None
    # after the fall: no sharp feature (a Bragg reflection stands > 10x above the level)
    tail = y[x > x_end]
    if tail.size >= 20:
        lvl = max(float(np.median(tail)), floor)
        sd = 1.4826 * float(np.median(np.abs(tail - np.median(tail))))
        from scipy.ndimage import median_filter

        # a reflection spans several points, a counting spike one: the 5-point running median
        if float(np.max(median_filter(tail, size=5, mode="nearest"))) > 10 * lvl + 5 * sd:
            return None
    axis = f"; scan axis {scan_axis}" if _coupled(scan_axis) else ""
    return f"{rng}, intensity falls steadily by 10^{drop:.1f} from {xb[imax]:.2f}° to {x_end:.1f}° 2θ{axis}"


def classify_scan(x, y, scan_axis: str | None = None, measurement_type: str | None = None) -> tuple[str, list[str]]:
    """``(kind, reasons)`` with kind in ``{"powder", "high-resolution", "reflectivity"}``.

    Parameters
    ----------
    x, y : ndarray
        2θ (deg, increasing) and intensity.
    scan_axis : str, optional
        The instrument's scan axis (``acquisition["scan_axis"]``: ``Gonio``, ``Omega-2Theta``...).
    measurement_type : str, optional
        The file's measurement type (``acquisition["measurement_type"]``, XRDML ``measurementType``).
    """
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    xrr = reflectivity_evidence(x, y, scan_axis, measurement_type)
    if xrr:
        return "reflectivity", [xrr]
    span = float(x[-1] - x[0])
    step = float(np.median(np.diff(x)))
    dyn = float(np.max(y)) / max(float(np.median(y)), 1.0)
    reasons = []
    if span < 10.0 and step < 0.005:
        reasons.append(f"narrow scan ({span:.2f}° at {step:.4f}° steps)")
    if span < 10.0 and _coupled(scan_axis):
        reasons.append(f"{scan_axis} scan over {span:.2f}°")
    if span < 20.0 and dyn > 1e4:
        reasons.append(f"one reflection {dyn:.1e} times the median level (a single-crystal substrate)")
    if reasons:
        return "high-resolution", reasons
    return "powder", []


def refusal(reasons) -> str:
    """The refusal sentence of a reflectivity curve (ProcessingError reason)."""
    return (f"this looks like an X-ray reflectivity curve ({'; '.join(reasons)}): not a powder pattern. "
            f"Analyse it with a reflectivity code (GenX, refnx, BornAgain); pass scan_type='powder' to force "
            f"a powder analysis")
