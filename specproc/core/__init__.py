"""Core: data model, result type, parameters, errors, provenance (no heavy imports here)."""
from .errors import (FitError, FormatNotRecognisedError, ParameterError, PluginError, ProcessingError,
                     ReaderError, SpecprocError)

__all__ = ["SpecprocError", "ReaderError", "FormatNotRecognisedError", "ParameterError", "ProcessingError",
           "FitError", "PluginError"]
