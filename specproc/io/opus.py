"""Reader (under construction)."""
from .base import Reader


class OpusReader(Reader):
    name = "opus"
    description = "under construction"
