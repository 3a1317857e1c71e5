"""AFM technique (under construction)."""
from __future__ import annotations

TITLE = "AFM"
