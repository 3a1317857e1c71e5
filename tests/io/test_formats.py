"""``specproc formats``: every registered reader listed, and docs/formats.md is the same table."""
from __future__ import annotations

import json
from pathlib import Path

from specproc import plugins
from specproc.cli import main
from specproc.io.formats import format_markdown, format_rows

DOC = Path(__file__).resolve().parents[2] / "docs" / "formats.md"


def test_every_reader_is_listed_with_its_library():
    rows = format_rows()
    assert sorted(r["reader"] for r in rows) == sorted(plugins.available("readers"))
    by = {r["reader"]: r for r in rows}
    assert by["omnic"]["extensions"] == ".spa, .spg" and by["omnic"]["library"] == "spectrochempy-omnic"
    assert by["omnic"]["extra"] == "omnic" and by["opus"]["library"] == "brukeropusreader"
    assert "ScSm/ScRf" in by["opus"]["notes"]
    assert all(r["library"] and r["library"] != "?" for r in rows), [r["reader"] for r in rows if r["library"] == "?"]


def test_command_prints_the_table(capsys):
    assert main(["formats", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["reader"] for r in rows} == set(plugins.available("readers"))
    assert main(["formats"]) == 0
    text = capsys.readouterr().out
    assert "spectrochempy-omnic" in text and ".jpk-qi-series" in text


def test_docs_formats_md_matches_the_command():
    """Regenerate with ``python -m specproc.io.formats > docs/formats.md`` after adding a reader."""
    assert DOC.read_text(encoding="utf-8") == format_markdown()
