"""What the JCAMP-DX readers (NMR and IR) share: label normalisation, ``$$`` comments, the sniffing of
the head, the checks of the header numbers and the size guard run before a library decodes the data
(a DUP-compressed "decompression bomb")."""
from __future__ import annotations

import re
from pathlib import Path

from ..core.errors import ReaderError
from .base import first_line, head_bytes, head_text, require_file

#: the most points a JCAMP-DX block may declare or decode to (2^27: 1 GiB of float64 per array; the
#: decoders build Python lists, ~30 bytes a point, so even this is ~4 GB — no spectrum comes close)
MAX_POINTS = 1 << 27
#: decoded points allowed beyond the declared count (Y-check values of DIF lines, sloppy writers)
_MARGIN_FACTOR, _MARGIN_POINTS = 1.25, 1024
#: without a declared count: the most points one byte of data may decode to. A DUP count of N
#: points costs ~log10(N)+1 characters; 64 points a byte allows long flat runs, not a bomb.
_POINTS_PER_BYTE = 64

_LABEL_LINE = re.compile(r"^##\s*([^=]*?)\s*=(.*)$", re.M)
#: ASDF DUP token: the DUP pseudo-digit (S..Z = 1..8, s = 9) and the digits that follow it
_DUP = re.compile(r"([S-Zs])(\d*)")
_DUP_DIGIT = {c: str(i) for i, c in enumerate("STUVWXYZs", start=1)}
_DATA_LABELS = ("XYDATA", "DATATABLE", "XYPOINTS", "PEAKTABLE")


#: a line holding only a ``$$`` comment, and a ``$$`` comment at the end of any line
_COMMENT_LINE = re.compile(r"^[ \t]*\$\$[^\r\n]*(?:\r?\n|$)", re.M)
_INLINE_COMMENT = re.compile(r"[ \t]*\$\$[^\r\n]*")
_LDR_COMMENT = re.compile(r"^(##[^\r\n]*?)[ \t]*\$\$[^\r\n]*", re.M)


def strip_comments(text: str, ldr_only: bool = False) -> str:
    """``text`` without its JCAMP-DX ``$$`` comments.

    ``$$`` starts a comment that runs to the end of the line, legal anywhere (JCAMP-DX 4.24
    §4.3), so ``##YFACTOR= 0.01 $$ scaled by the instrument`` is a YFACTOR of 0.01. Lines that
    hold only a comment are removed, inline comments are cut.

    Parameters
    ----------
    text : str
        The whole file.
    ldr_only : bool
        Cut inline comments only on ``##`` label lines (Bruker parameter files, whose multi-line
        ``<...>`` strings are left as written).
    """
    if "$$" not in text:
        return text
    text = _COMMENT_LINE.sub("", text)
    return _LDR_COMMENT.sub(r"\1", text) if ldr_only else _INLINE_COMMENT.sub("", text)


def ldr_value(value: str) -> str:
    """The value of one labelled data record without its ``$$`` comment, stripped."""
    return value.split("$$", 1)[0].strip()


def norm_label(label: str) -> str:
    """JCAMP label normalisation: case, spaces, '-', '/', '_' are not significant."""
    return re.sub(r"[\s\-/_]", "", label).upper()


def jcamp_head(path: Path, n: int) -> str | None:
    """The first ``n`` bytes of a JCAMP-DX file as text, or None when the file does not start with a
    ``##TITLE=`` line (decided on the first line, without decoding the head)."""
    p = Path(path)
    if not p.is_file():
        return None
    first = first_line(p)
    if not (first.startswith("##") and norm_label(first[2:].split("=", 1)[0]) == "TITLE"):
        return None
    return head_text(p, n)


def read_jcamp_text(path: Path) -> tuple[Path, str]:
    """The input path and its whole text (Latin-1: any byte decodes); refuses folders and empty files."""
    p = require_file(Path(path), "JCAMP-DX file")
    if p.is_dir():
        raise ReaderError("this is a folder; a JCAMP-DX spectrum is a single .jdx/.dx file", p)
    # a JCAMP-DX file begins with its ##TITLE= record (blank and $$ comment lines may precede it):
    # anything else is refused before the whole file is decoded and searched for labels
    for line in _LINE_B.finditer(head_bytes(p, 1 << 14)):
        s = line.group().strip()
        if not s or s.startswith(b"$$"):
            continue
        if not (s.startswith(b"##") and norm_label(s[2:].split(b"=", 1)[0].decode("latin-1")) == "TITLE"):
            raise ReaderError("not a JCAMP-DX file (it does not begin with a ##TITLE= record)", p)
        break
    return p, p.read_bytes().decode("latin-1")


_LINE_B = re.compile(rb"[^\r\n]+")


#: header numbers the decoders compute with: label -> (what must hold, its description)
_HEADER_NUMBERS = {
    "NPOINTS": (lambda v: v >= 1 and v == int(v), "a positive whole number"),
    "FIRSTX": (lambda v: True, "a number"),
    "LASTX": (lambda v: True, "a number"),
    "DELTAX": (lambda v: v != 0, "a non-zero number"),
    "XFACTOR": (lambda v: v != 0, "a non-zero number"),
    "YFACTOR": (lambda v: v != 0, "a non-zero number"),
}


def check_header_numbers(labels: dict[str, str], path: Path) -> None:
    """Refuse header values the decoders would divide by, count with or multiply by when absurd.

    ``labels`` maps normalised labels to their (comment-free) values. Only labels present are
    checked: ``##NPOINTS= 0`` (a division by zero in the decoder), ``-7`` or ``3.5``,
    ``##XFACTOR= 0``, ``##FIRSTX= abc`` or ``nan``, values beyond the float range.

    Raises
    ------
    ReaderError
        ``"##NPOINTS= 0 is not a positive whole number"`` and the like.
    """
    import math

    for key, (ok, what) in _HEADER_NUMBERS.items():
        raw = labels.get(key)
        if raw is None or raw == "":
            continue
        try:
            v = float(raw)
        except ValueError:
            v = math.nan
        if not math.isfinite(v) or not ok(v):
            raise ReaderError(f"##{key}= {raw} is not {what} (corrupt header)", path)


def _ints(value: str) -> list[int]:
    out = []
    for tok in re.split(r"[,\s]+", value.strip()):
        try:
            out.append(int(float(tok)))
        except (ValueError, OverflowError):
            continue
    return out


def check_decoded_size(text: str, path: Path, max_points: int = MAX_POINTS) -> int | None:
    """Refuse a JCAMP-DX text whose data would decode to an insane number of points, before any decoder runs.

    The library decoders (nmrglue, jcamp) expand ASDF DUP counts into Python lists: a 280-byte file
    whose one line says "repeat this value 10^10 times" used 4.8 GB and 40 s before the NPOINTS check
    that follows decoding could fire. Every other ASDF/AFFN form yields at most one value per
    character, so DUP counts are the only way to decode more points than the text has bytes; they
    are summed here (a C-speed regex over the data lines) and compared with what the header declares.

    Parameters
    ----------
    text : str
        The whole file (latin-1 decoded).
    path : Path
        For the error message.
    max_points : int
        Hard cap on declared and decoded points.

    Returns
    -------
    int or None
        The largest declared point count (``##NPOINTS=`` or ``##VAR_DIM=``), None when none is declared.

    Raises
    ------
    ReaderError
        ``##NPOINTS=`` (or ``VAR_DIM``) above ``max_points``, or DUP counts that decode to more points
        than declared (with a margin) or than the cap.
    """
    labels = list(_LABEL_LINE.finditer(text))
    declared: list[int] = []
    n_blocks = 0
    dup_points = 0
    data_bytes = 0
    for i, m in enumerate(labels):
        key = norm_label(m.group(1))
        if key in ("NPOINTS", "VARDIM"):
            vals = _ints(m.group(2))  # VAR_DIM also lists the page count: small, harmless in the max
            for v in vals:
                if v > max_points:
                    raise ReaderError(f"##{m.group(1).strip()}= {v} exceeds the limit of {max_points} points "
                                      "(corrupt header or not a spectrum)", path)
            declared.extend(vals)
        elif key in _DATA_LABELS:
            n_blocks += 1
            start = m.end()
            stop = labels[i + 1].start() if i + 1 < len(labels) else len(text)
            block = text[start:stop]
            if "$$" in block:  # comments may hold any letters
                block = "\n".join(ln.split("$$", 1)[0] for ln in block.splitlines())
            data_bytes += len(block)
            for dm in _DUP.finditer(block):
                # a DUP token of N means N copies of the previous value: N-1 more points
                digits = _DUP_DIGIT[dm.group(1)] + dm.group(2)
                if len(digits) > 12:  # > 10^12 points: no need to convert it to know it is too many
                    raise ReaderError(f"a DUP count of {len(digits)} digits in the data (decompression bomb "
                                      "or corrupt file)", path)
                dup_points += int(digits) - 1
                if dup_points > max_points:
                    raise ReaderError(f"the compressed data decode to more than {max_points} points "
                                      "(DUP counts; decompression bomb or corrupt file)", path)
    if declared:
        limit = int(max(n_blocks, 1) * max(declared) * _MARGIN_FACTOR) + _MARGIN_POINTS
        if dup_points > limit:
            raise ReaderError(f"the compressed data decode to at least {dup_points} points (DUP counts) but "
                              f"the header declares {max(declared)} (decompression bomb or corrupt file)", path)
        return max(declared)
    if dup_points > max(_POINTS_PER_BYTE * data_bytes, 1 << 20):
        raise ReaderError(f"the compressed data decode to at least {dup_points} points (DUP counts) from "
                          f"{data_bytes} bytes and no ##NPOINTS= is declared (decompression bomb or corrupt "
                          "file)", path)
    return None
