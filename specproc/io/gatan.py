"""Reader (under construction)."""
from .base import Reader


class GatanReader(Reader):
    name = "gatan"
    description = "under construction"
