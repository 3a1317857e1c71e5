"""Pipeline YAML schema (pydantic), loaded with line numbers for clear errors.

``load_pipeline(path)`` reads the YAML with ``yaml.SafeLoader`` (never the full loader),
validates it against :class:`PipelineConfig`, validates every measurement's ``params`` with
its processor's own ``Params`` schema (the same schema the Python API and the CLI use), and
maps every validation error back to ``file.yaml:LINE``. See ``docs/pipelines.md``.
"""
from __future__ import annotations

import glob
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..core.errors import ParameterError
from ..evidence.claims import ClaimSpec, Compare, QuantityRef


class MeasurementSpec(BaseModel):
    """Files of one sample and technique, and how to process them.

    ``files`` are globs relative to the pipeline's ``root``; ``sample`` may use ``{stem}``,
    ``{name}`` or ``{parent}`` of each matched path to name samples from file names.
    """

    model_config = ConfigDict(extra="forbid")
    sample: str
    technique: str
    files: str | list[str]
    processor: str
    params: dict[str, Any] = Field(default_factory=dict)
    reader: str | None = None
    reader_options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("files")
    @classmethod
    def _files_not_empty(cls, v):
        if (isinstance(v, str) and not v.strip()) or (isinstance(v, list) and not v):
            raise ValueError("files must name at least one path or glob")
        return v

    @property
    def patterns(self) -> list[str]:
        return [self.files] if isinstance(self.files, str) else list(self.files)


class ComparisonSpec(BaseModel):
    """A comparison reported (and stored) without a rule."""

    model_config = ConfigDict(extra="forbid")
    id: str
    quantity: QuantityRef
    compare: Compare
    missing: str = "no data"


class PipelineConfig(BaseModel):
    """Top level of a pipeline YAML file."""

    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    root: str = "."
    scheduler: str | None = None
    jobs: int | None = Field(default=None, ge=1)
    measurements: list[MeasurementSpec] = Field(default_factory=list)
    comparisons: list[ComparisonSpec] = Field(default_factory=list)
    claims: list[ClaimSpec] = Field(default_factory=list)


@dataclass
class Task:
    """One input file to process (picklable: sent to worker processes / Dask workers)."""

    index: int
    measurement: int             # index in PipelineConfig.measurements
    sample: str
    technique: str
    path: str                    # absolute
    processor: str
    params: dict                 # validated, canonical (JSON-able) parameters
    reader: str | None = None
    reader_options: dict = field(default_factory=dict)
    sha256: str = ""
    key: str = ""                # cache key


@dataclass
class Skipped:
    """A measurement entry that produced no task (no file matched, no processor registered)."""

    measurement: int
    sample: str
    technique: str
    processor: str
    files: str
    reason: str
    line: int | None = None


@dataclass
class Pipeline:
    """A loaded, validated pipeline."""

    config: PipelineConfig
    path: Path | None
    root: Path
    tasks: list[Task]
    skipped: list[Skipped]
    text: str = ""
    lines: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.config.name


# --------------------------------------------------------------------------- YAML with lines
def _line_map(node, path=(), out=None) -> dict[tuple, int]:
    """``{path tuple: 1-based line}`` for every mapping key / sequence item of a composed YAML node."""
    out = {} if out is None else out
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = k.value
            out[path + (key,)] = k.start_mark.line + 1
            _line_map(v, path + (key,), out)
            out[path + (key,)] = k.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            out[path + (i,)] = v.start_mark.line + 1
            _line_map(v, path + (i,), out)
    return out


def _lookup_line(lines: dict, loc: tuple) -> int | None:
    loc = tuple(loc)
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return lines.get(())


def _errors_to_message(exc: ValidationError, lines: dict, prefix: tuple = ()) -> tuple[str, int | None]:
    msgs, first = [], None
    for e in exc.errors():
        # pydantic adds union-branch / validator names (e.g. 'str', 'list[str]') to locs; keep
        # only the parts that exist in the YAML so the line lookup finds the right node.
        loc = prefix + tuple(p for p in e["loc"] if isinstance(p, int) or not str(p).startswith(("function-",)))
        line = _lookup_line(lines, loc)
        first = first if first is not None else line
        where = ".".join(str(p) for p in loc) or "(top level)"
        msgs.append(f"line {line}: {where}: {e['msg']}" if line else f"{where}: {e['msg']}")
    return "; ".join(msgs), first


def _read_yaml(text: str, where: str) -> tuple[Any, dict]:
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"{where}:{mark.line + 1}" if mark else where
        raise ParameterError(f"invalid YAML: {getattr(exc, 'problem', None) or exc}", at) from None
    return data, (_line_map(node) if node is not None else {})


# --------------------------------------------------------------------------- loading
def _has_glob(p: str) -> bool:
    return any(c in p for c in "*?[")


def expand_files(root: Path, pattern: str) -> list[Path]:
    """Paths matching ``pattern`` (relative to ``root`` unless absolute), sorted; ``**`` recurses."""
    pat = os.path.expanduser(pattern)
    full = pat if os.path.isabs(pat) else str(root / pat)
    if not _has_glob(full):
        return [Path(full)] if os.path.exists(full) else []
    return [Path(p) for p in sorted(glob.glob(full, recursive=True))]


def canonical_json(obj: Any) -> str:
    """Canonical JSON (sorted keys, no spaces) used in cache keys."""
    from ..core.result import jsonable

    return json.dumps(jsonable(obj), sort_keys=True, separators=(",", ":"), allow_nan=False)


def _processor_params(name: str, params: dict, lines: dict, loc: tuple, where: str):
    """Validated params (JSON-able dict); ``None`` when no processor of that technique exists;
    the :class:`PluginError` when the processor is declared but cannot be imported."""
    from .. import plugins
    from ..core.errors import PluginError

    avail = plugins.available("processors")
    if name not in avail:
        tech = name.split(".", 1)[0]
        same = sorted(n for n in avail if n.split(".", 1)[0] == tech)
        if same:  # the technique exists, so this is a typo: say so with the line
            line = _lookup_line(lines, loc + ("processor",))
            raise ParameterError(f"unknown processor {name!r}; {tech} processors: {', '.join(same)}",
                                 f"{where}:{line}" if line else where)
        return None
    try:
        proc = plugins.get("processors", name)
    except PluginError as exc:  # declared but broken (e.g. optional dependency missing): skip, say why
        return exc
    try:
        validated = proc.Params.model_validate(dict(params))
    except ValidationError as exc:
        msg, line = _errors_to_message(exc, lines, loc + ("params",))
        raise ParameterError(f"invalid parameters for processor {name!r}: {msg}",
                             f"{where}:{line}" if line else where) from None
    return validated.model_dump(mode="json")


def load_pipeline(source: str | Path | dict | PipelineConfig, base_dir: str | Path | None = None) -> Pipeline:
    """Load and validate a pipeline.

    Parameters
    ----------
    source : path to a YAML file, YAML text is not accepted; a dict or a PipelineConfig
        The pipeline. Relative ``root`` and file globs are resolved against the YAML's
        folder (or ``base_dir`` / the working directory for dicts).

    Returns
    -------
    Pipeline
        Config, tasks (one per matched file) and skipped entries.

    Raises
    ------
    ParameterError
        Naming the YAML file and line of the first problem (all problems are listed).
    """
    path, text, lines = None, "", {}
    if isinstance(source, PipelineConfig):
        cfg, where = source, "pipeline"
    else:
        if isinstance(source, (str, Path)):
            path = Path(source)
            if not path.is_file():
                raise ParameterError("pipeline file not found", path)
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ParameterError(f"cannot read pipeline: {exc}", path) from None
            where = str(path)
            data, lines = _read_yaml(text, where)
        else:
            data, where = dict(source), "pipeline"
        if not isinstance(data, dict):
            raise ParameterError("a pipeline must be a YAML mapping with name, measurements, claims", where)
        try:
            cfg = PipelineConfig.model_validate(data)
        except ValidationError as exc:
            msg, line = _errors_to_message(exc, lines)
            raise ParameterError(f"invalid pipeline: {msg}", f"{where}:{line}" if line else where) from None
    base = path.parent if path is not None else Path(base_dir or os.getcwd())
    root = (base / os.path.expanduser(cfg.root)).resolve()

    tasks, skipped = [], []
    for i, m in enumerate(cfg.measurements):
        loc = ("measurements", i)
        params = _processor_params(m.processor, m.params, lines, loc, where)
        if params is None or isinstance(params, Exception):
            reason = f"no processor {m.processor!r} registered" if params is None else str(params)
            skipped.append(Skipped(i, m.sample, m.technique, m.processor, ", ".join(m.patterns), reason,
                                   _lookup_line(lines, loc)))
            continue
        found = [p for pat in m.patterns for p in expand_files(root, pat)]
        if not found:
            skipped.append(Skipped(i, m.sample, m.technique, m.processor, ", ".join(m.patterns),
                                   f"no file matches {', '.join(m.patterns)} under {root}",
                                   _lookup_line(lines, loc)))
            continue
        for p in dict.fromkeys(found):
            try:
                sample = m.sample.format(stem=p.stem, name=p.name, parent=p.parent.name)
            except (KeyError, IndexError, ValueError) as exc:
                line = _lookup_line(lines, loc + ("sample",))
                raise ParameterError(f"bad placeholder in sample {m.sample!r}: {exc}",
                                     f"{where}:{line}" if line else where) from None
            tasks.append(Task(len(tasks), i, sample, m.technique, str(p.resolve()), m.processor, params,
                              m.reader, dict(m.reader_options)))
    return Pipeline(cfg, path.resolve() if path else None, root, tasks, skipped, text, lines)
