"""Reader (under construction)."""
from .base import Reader


class NanonisReader(Reader):
    name = "nanonis"
    description = "under construction"
