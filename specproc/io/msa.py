"""Reader (under construction)."""
from .base import Reader


class MsaReader(Reader):
    name = "msa"
    description = "under construction"
