"""Reader (under construction)."""
from .base import Reader


class JcampIRReader(Reader):
    name = "jcampdx_ir"
    description = "under construction"
