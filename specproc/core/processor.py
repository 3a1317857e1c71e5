"""Processor base class: validated parameters in, :class:`Result` out, input untouched."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from .errors import SpecprocError
from .params import ProcessorParams, validate_params


class Processor:
    """Base of every processor plugin.

    Subclasses set ``name`` (``"<technique>.<verb>"``), ``technique``, ``description``,
    ``Params`` (a :class:`ProcessorParams` subclass) and implement :meth:`run` for one
    measurement. :meth:`run_many` handles a stack; the default loops over :meth:`run`, and
    processors with a batched path (the shared batch engine) override it. Calling the
    processor accepts one measurement or a sequence, so callers never change interface.
    """

    name: ClassVar[str] = ""
    technique: ClassVar[str] = ""
    description: ClassVar[str] = ""
    Params: ClassVar[type[ProcessorParams]] = ProcessorParams

    def __call__(self, data: Any, params: ProcessorParams | dict | None = None, **kwargs):
        p = self.validate(params, **kwargs)
        if isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
            return self.run_many(list(data), p)
        return self.run(data, p)

    def validate(self, params: ProcessorParams | dict | None = None, **kwargs) -> ProcessorParams:
        """The one validation of a processor's parameters (Python kwargs, CLI options, YAML).

        An already validated ``Params`` object passes through untouched (no second validation);
        extra keyword arguments are merged into a copy and validated once.
        """
        if isinstance(params, self.Params) and not kwargs:
            return params
        base = params.model_dump(exclude_unset=True) if isinstance(params, ProcessorParams) else dict(params or {})
        return validate_params(self.Params, {**base, **kwargs})

    def run(self, data, params: ProcessorParams):  # pragma: no cover - abstract
        raise NotImplementedError

    def preprocess(self, data, params: ProcessorParams):
        """Per-input work that needs no other input (validation, raw-signal processing, noise estimate).

        The command runner applies it where each input is read (in the worker processes of a large
        batch, so it runs in parallel with the reading); :meth:`run` and :meth:`run_many` accept
        what it returns in place of the measurement and must give the same result for both. It
        raises the :class:`SpecprocError` that ``run`` would raise for that input. The default
        returns the measurement unchanged.
        """
        return data

    def warm_up(self, params: ProcessorParams, n: int) -> None:
        """Load what :meth:`run_many` will need for ``n`` inputs (heavy imports, compiled kernels).

        The command runner calls it in a background thread while a large batch is being read in
        worker processes, so the one-off start-up costs overlap the reading instead of following
        it. It must have no effect on results (only imports and caches); the default does nothing.
        """

    def run_many(self, data: list, params: ProcessorParams) -> list:
        """One :class:`Result` per input, or the :class:`SpecprocError` of that input, in input order.

        Always a list of ``len(data)`` (the contract the CLI runner and the pipeline rely on).
        """
        out = []
        for d in data:
            try:
                out.append(self.run(d, params))
            except SpecprocError as exc:
                out.append(exc)
        return out
