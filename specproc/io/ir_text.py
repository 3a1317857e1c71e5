"""Reader (under construction)."""
from .base import Reader


class IRTextReader(Reader):
    name = "ir_text"
    description = "under construction"
