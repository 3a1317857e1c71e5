"""The formats specproc reads: one row per registered reader plugin (``specproc formats``).

The table is built from the reader classes themselves (``extensions``, ``technique``, ``name``,
``library``, ``notes``, ``extra``; see :class:`specproc.io.base.Reader`), so a third-party reader
plugin appears as soon as it is installed. ``docs/formats.md`` holds the same table, written by
``python -m specproc.io.formats > docs/formats.md`` and checked against the command's output by
``tests/io/test_formats.py``.
"""
from __future__ import annotations

import importlib.util


COLUMNS = ("extensions", "technique", "reader", "library", "extra", "notes")


def _extensions(r) -> str:
    ext = tuple(getattr(r, "extensions", ()) or ())
    if not ext:
        return "(folder / by content)"
    if len(ext) > 4 and all(e[1:].isdigit() for e in ext):  # OPUS .0 .1 ... .9
        return f"{ext[0]} … {ext[-1]}"
    return ", ".join(ext)


def format_rows() -> list[dict]:
    """One row per registered reader, sorted by technique then reader name.

    Returns
    -------
    list of dict
        Keys :data:`COLUMNS` (plain strings) and ``installed`` (bool: the reader's optional
        library can be imported; always True for readers without an extra).
    """
    from .. import plugins

    rows = []
    for name, r in plugins.loaded("readers").items():
        extra = getattr(r, "extra", "")  # plugin objects need not subclass Reader
        module = getattr(r, "extra_module", "")
        installed = True
        if extra and module:
            installed = importlib.util.find_spec(module) is not None
        rows.append({
            "extensions": _extensions(r),
            "technique": r.technique or "any",
            "reader": name,
            "library": getattr(r, "library", "") or "?",
            "extra": extra,
            "notes": " ".join((getattr(r, "notes", "") or r.description or "").split()),
            "installed": installed,
        })
    rows.sort(key=lambda d: (d["technique"], d["reader"]))
    return rows


def _cell(s: str) -> str:
    return s.replace("|", "\\|")


def format_markdown(rows: list[dict] | None = None) -> str:
    """The table of :func:`format_rows` as the Markdown of ``docs/formats.md`` (no install state:
    the document does not depend on the machine it is generated on)."""
    rows = format_rows() if rows is None else rows
    lines = [
        "# File formats",
        "",
        "Every format specproc reads, one row per reader plugin (`specproc formats` prints the same",
        "table; regenerate this file with `python -m specproc.io.formats > docs/formats.md`).",
        "A reader with an *extra* needs `pip install \"specproc[EXTRA]\"`; without it the reader",
        "still recognises its files and says which extra to install.",
        "",
        "| extensions | technique | reader | library | extra | read / refused |",
        "|---|---|---|---|---|---|",
    ]
    for d in rows:
        lines.append("| " + " | ".join(_cell(d[c]) for c in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def format_text(rows: list[dict] | None = None, width: int = 100) -> str:
    """A plain-text table for the terminal (notes wrapped under each row)."""
    import textwrap

    rows = format_rows() if rows is None else rows
    head = ("extensions", "technique", "reader", "library", "extra")
    w = {c: max([len(c)] + [len(d[c]) + (c == "extra" and not d["installed"]) * 16 for d in rows]) for c in head}
    out = ["  ".join(c.ljust(w[c]) for c in head).rstrip()]
    for d in rows:
        extra = d["extra"] + ("" if d["installed"] else " (not installed)")
        cells = {**d, "extra": extra}
        out.append("  ".join(cells[c].ljust(w[c]) for c in head).rstrip())
        out += textwrap.wrap(d["notes"], width=width, initial_indent="    ", subsequent_indent="    ")
    return "\n".join(out) + "\n"


if __name__ == "__main__":  # pragma: no cover - writes docs/formats.md
    import sys

    sys.stdout.write(format_markdown())
