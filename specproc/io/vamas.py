"""Reader (under construction)."""
from .base import Reader


class VamasReader(Reader):
    name = "vamas"
    description = "under construction"
