"""AFM processors (under construction)."""
from ...core.processor import Processor


class AnalyseMap(Processor):
    name = "afm.analyse_map"
    technique = "afm"
    description = "AFM map analysis (under construction)"


class FitForceMap(Processor):
    name = "afm.fit_force_map"
    technique = "afm"
    description = "AFM force maps (under construction)"
