"""Reader (under construction)."""
from .base import Reader


class ForceCurveReader(Reader):
    name = "afm_force"
    description = "under construction"
