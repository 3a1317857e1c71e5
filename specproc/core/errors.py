"""One error family for everything specproc raises at its boundaries.

Every error carries the offending file (when there is one) and a short reason, so a
batch can list failures as ``file: reason`` without a traceback from deep inside a
library.
"""
from __future__ import annotations

from pathlib import Path


class SpecprocError(Exception):
    """Base class of all specproc errors.

    Parameters
    ----------
    reason : str
        Human-readable reason, phrased for the user of the instrument file.
    path : str or Path, optional
        The input file or folder the error is about.
    """

    def __init__(self, reason: str, path: str | Path | None = None):
        self.reason = str(reason)
        self.path = None if path is None else str(path)
        super().__init__(self.__str__())

    def __str__(self) -> str:  # noqa: D105
        return f"{self.path}: {self.reason}" if self.path else self.reason

    def to_dict(self) -> dict:
        return {"file": self.path, "error": self.reason, "type": type(self).__name__}

    def __reduce__(self):
        # keeps reason and path apart when an error crosses a process boundary (parallel reading)
        return (type(self), (self.reason, self.path))


class ReaderError(SpecprocError):
    """A file exists but cannot be read: truncated, corrupt, wrong content, NaN..."""


class FormatNotRecognisedError(ReaderError):
    """No registered reader recognises the file."""


class ParameterError(SpecprocError, ValueError):
    """Invalid processor / pipeline parameters."""


class ProcessingError(SpecprocError):
    """A processor cannot produce a result from valid input (e.g. no peaks found)."""


class FitError(ProcessingError):
    """A fit failed or did not converge."""


class PluginError(SpecprocError):
    """A plugin is missing, broken or ambiguous."""
