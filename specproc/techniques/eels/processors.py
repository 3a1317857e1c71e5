"""EELS processors (under construction)."""
from ...core.processor import Processor


class FitEdge(Processor):
    name = "eels.fit_edge"
    technique = "eels"
    description = "EELS edge fitting (under construction)"
