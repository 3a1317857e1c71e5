"""Reader (under construction)."""
from .base import Reader


class NetCDFReader(Reader):
    name = "netcdf"
    description = "under construction"
