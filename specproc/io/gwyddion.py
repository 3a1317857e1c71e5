"""Reader (under construction)."""
from .base import Reader


class GwyddionReader(Reader):
    name = "gwyddion"
    description = "under construction"
