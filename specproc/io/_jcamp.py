"""What the JCAMP-DX readers (NMR and IR) share: label normalisation and the sniffing of the head."""
from __future__ import annotations

import re
from pathlib import Path

from .base import first_line, head_text


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
