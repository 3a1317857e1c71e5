"""FTIR processors (under construction)."""
from ...core.processor import Processor


class FitBands(Processor):
    name = "ftir.fit_bands"
    technique = "ftir"
    description = "FTIR band fitting (under construction)"
