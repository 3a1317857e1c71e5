"""XPS processors (under construction)."""
from ...core.processor import Processor


class FitProfile(Processor):
    name = "xps.fit_profile"
    technique = "xps"
    description = "XPS fitting (under construction)"
