"""Reader (under construction)."""
from .base import Reader


class HyperSpyReader(Reader):
    name = "hspy"
    description = "under construction"
