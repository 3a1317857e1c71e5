"""Checks shared by the XRD readers (XRDML, 2θ text, Rigaku RAS, spec): physical ranges and size limits.

Every XRD reader hands its 2θ axis and intensities to :func:`validate_pattern` before building the
measurement, so an impossible file (2θ from −70° or up to 7000°, all-negative counts, a single
point) is refused with the same clear message whatever the format.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.errors import ReaderError

#: 2θ is an angle between the incident and diffracted beams: 0 < 2θ < 180 deg.
TWO_THETA_LIMITS_DEG = (0.0, 180.0)
#: Fewer points than this is not a pattern (a one-count file, a truncated export).
MIN_POINTS = 10
#: Text/XML patterns above this size are refused rather than swapping (documented in docs/xrd.md).
#: 1 GiB of text is ~100 million points, far beyond any laboratory or synchrotron 1D pattern.
MAX_PATTERN_BYTES = 1 << 30


def check_size(path: Path, limit: int = MAX_PATTERN_BYTES) -> None:
    """Refuse files larger than ``limit`` bytes with a clear error (memory bound)."""
    size = Path(path).stat().st_size
    if size > limit:
        raise ReaderError(f"file is {size / 2**20:.0f} MiB, above the {limit / 2**20:.0f} MiB limit for one "
                          f"XRD pattern; split or bin the export", path)


#: bytes of plain decimal numbers and the whitespace between them
_NUMBER_BYTES = np.zeros(256, bool)
_NUMBER_BYTES[list(b"0123456789.eE+- \t\r\n\v\f")] = True
_SPACE_BYTES = np.zeros(256, bool)
_SPACE_BYTES[list(b" \t\r\n\v\f")] = True


def numbers(text: str | None, path, what: str) -> np.ndarray:
    """Whitespace-separated numbers through numpy's C parser (no Python list of strings: bounded memory).

    ``np.fromstring`` stops at the first token it cannot parse and (numpy < 2.3) only says so with
    a DeprecationWarning; turning that warning into an error needed ``warnings.catch_warnings``,
    which swaps the process-wide filters while other threads read files (their warnings became
    exceptions, or were lost). Instead the text is checked here: every byte a digit, sign, point,
    exponent or space (a vectorised table look-up), and as many values parsed as there are tokens.
    Anything else (``NaN``, stray text) goes through ``float`` token by token, naming the token.
    """
    s = text or ""
    raw = np.frombuffer(s.encode("latin-1", errors="replace"), np.uint8)
    if raw.size == 0:
        return np.empty(0)
    if _NUMBER_BYTES[raw].all():
        space = _SPACE_BYTES[raw]
        n_tokens = int(np.count_nonzero(space[:-1] & ~space[1:])) + (0 if space[0] else 1)
        try:  # numpy >= 2.3 raises on a malformed token; older versions stop there (and warn)
            out = np.fromstring(s, dtype=float, sep=" ") if n_tokens else np.empty(0)
        except ValueError:
            out = None
        if out is not None and out.size == n_tokens:
            return out
    vals = []
    for tok in s.split():  # the rare text with NaN / inf words or a malformed number
        try:
            vals.append(float(tok))
        except ValueError:
            raise ReaderError(f"non-numeric value {tok[:30]!r} in <{what}>", path) from None
    return np.asarray(vals, dtype=float)


def validate_pattern(two_theta, counts, path, *, signal: str = "intensities") -> None:
    """Physical-range checks of a 2θ pattern (raise :class:`ReaderError` naming the file).

    * at least :data:`MIN_POINTS` points, finite values;
    * 2θ inside 0–180 deg (a negative or huge 2θ is a corrupt or mislabelled axis);
    * 2θ strictly monotonic;
    * intensities not all ≤ 0 and not mostly negative (counts are non-negative; a
      background-subtracted export may dip below zero, but not for most of the pattern).
    """
    tt = np.asarray(two_theta, float)
    y = np.asarray(counts, float)
    if tt.shape != y.shape[-1:]:
        raise ReaderError(f"2θ has {tt.size} positions for {y.shape[-1]} {signal}", path)
    if not np.all(np.isfinite(tt)):
        raise ReaderError("NaN/inf in the 2θ axis", path)
    if not np.all(np.isfinite(y)):
        raise ReaderError(f"{int(np.sum(~np.isfinite(y)))} NaN/inf {signal}", path)
    lo, hi = TWO_THETA_LIMITS_DEG
    if tt.size and (tt.min() < lo or tt.max() > hi):
        raise ReaderError(f"2θ spans {tt.min():g}..{tt.max():g} deg, outside the physical range "
                          f"{lo:g}..{hi:g} deg", path)
    if tt.size > 1:
        d = np.diff(tt)
        if not (np.all(d > 0) or np.all(d < 0)):
            raise ReaderError("2θ positions are not monotonic; not a 2θ axis", path)
    if tt.size < MIN_POINTS:
        raise ReaderError(f"only {tt.size} data point(s); a pattern needs at least {MIN_POINTS}", path)
    if np.max(y) <= 0:
        raise ReaderError(f"all {signal} are <= 0 (counts cannot be negative)", path)
    if np.mean(y < 0) > 0.5:
        raise ReaderError(f"{np.mean(y < 0):.0%} of the {signal} are negative (counts cannot be negative)", path)
