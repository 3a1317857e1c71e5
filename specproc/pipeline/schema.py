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
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..core.errors import ParameterError
from ..evidence.claims import ClaimSpec, Compare, QuantityRef
from ..evidence.questions import QuestionSpec
from ..execute import Task

#: longest scalar (a name, a glob, a description) in a pipeline document; names are shorter still
MAX_YAML_SCALAR = 10_000
MAX_NAME = 256


class MeasurementSpec(BaseModel):
    """Files of one sample and technique, and how to process them.

    ``files`` are globs relative to the pipeline's ``root``; ``sample`` may use ``{stem}``,
    ``{name}`` or ``{parent}`` of each matched path to name samples from file names.
    ``metadata`` sets measurement metadata (e.g. ``{temperature_K: 300}``): applied to the
    measurement before processing and to the result's ``meta`` (so claims can select on it).
    ``optional: true`` makes "no file matches" a skip instead of a failure.
    """

    model_config = ConfigDict(extra="forbid")
    sample: str = Field(min_length=1, max_length=MAX_NAME)
    technique: str = Field(max_length=MAX_NAME)
    files: str | list[str]
    processor: str = Field(max_length=MAX_NAME)
    params: dict[str, Any] = Field(default_factory=dict)
    reader: str | None = None
    reader_options: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)
    optional: bool = False

    @field_validator("sample")
    @classmethod
    def _sample_placeholders(cls, v: str) -> str:
        sample_fields(v)
        return v

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
    """Top level of a pipeline YAML file.

    ``questions`` (optional): the study's questions, each with the claim ids it draws on (for or
    against the answer); the report opens with a paragraph per question generated from those
    claims (:mod:`specproc.evidence.questions`).

    References are checked when the model is built: a claim or comparison naming a technique or
    a sample that no measurement entry declares, and a question naming an unknown claim id, are
    validation errors with their YAML line (a typo is not silently "no data").
    """

    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=MAX_NAME)
    description: str = ""
    root: str = "."
    scheduler: str | None = None
    jobs: int | None = Field(default=None, ge=1)
    questions: list[QuestionSpec] = Field(default_factory=list)
    measurements: list[MeasurementSpec] = Field(default_factory=list)
    comparisons: list[ComparisonSpec] = Field(default_factory=list)
    claims: list[ClaimSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references_exist(self):
        import difflib
        import re
        import string

        from pydantic_core import InitErrorDetails, PydanticCustomError

        techniques = list(dict.fromkeys(m.technique for m in self.measurements))
        samples = list(dict.fromkeys(m.sample for m in self.measurements))
        # a sample template ({stem}...) names samples from files: it matches any text in its place
        patterns = [re.compile("".join(re.escape(lit) + (".+" if f is not None else "") for lit, f, _, _ in
                                       string.Formatter().parse(t)) + r"\Z", re.S)
                    for t in samples if sample_fields(t)]
        plain = [t for t in samples if not sample_fields(t)]
        errors = []

        def bad(loc, what, value, known):
            close = difflib.get_close_matches(str(value), known, n=2, cutoff=0.6)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            listed = ", ".join(known[:12]) + ("..." if len(known) > 12 else "") or "none"
            errors.append(InitErrorDetails(
                type=PydanticCustomError("unknown_reference", "{msg}", {
                    "msg": f"{what} {value!r} is not in the pipeline ({what}s of the measurements: {listed}){hint}"}),
                loc=loc, input=value))

        def check_ref(loc, quantity, compare):
            if quantity.technique not in techniques:
                bad(loc + ("quantity", "technique"), "technique", quantity.technique, techniques)
            for key in ("sample", "reference"):
                v = getattr(compare, key)
                if v is not None and v not in plain and not any(p.match(v) for p in patterns):
                    bad(loc + ("compare", key), "sample", v, plain)

        for i, c in enumerate(self.comparisons):
            check_ref(("comparisons", i), c.quantity, c.compare)
        for i, cl in enumerate(self.claims):
            single = cl.quantity is not None  # the one-check form: quantity/compare at the claim level
            for j, ch in enumerate(cl.checks):
                check_ref(("claims", i) if single else ("claims", i, "checks", j), ch.quantity, ch.compare)
        ids = [cl.id for cl in self.claims]
        for i, q in enumerate(self.questions):
            for j, qc in enumerate(q.claims):
                if qc.id not in ids:
                    bad(("questions", i, "claims", j), "claim", qc.id, ids)
            for j, cid in enumerate(q.against):
                if cid not in ids:
                    bad(("questions", i, "against", j), "claim", cid, ids)
        if errors:
            raise ValidationError.from_exception_data("PipelineConfig", errors)
        return self


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
    error: bool = False          # True: counts as a failure (exit code 1), e.g. no file matched


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
    excluded: list = field(default_factory=list)   # matched paths left out (inside output folders)

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


#: Limits on a pipeline document, checked on the composed node graph *before* any Python object
#: is built: an alias bomb (nested anchors, "billion laughs") is refused in milliseconds instead
#: of expanding to gigabytes. A real pipeline of 1,000 measurements is ~30,000 nodes.
MAX_YAML_BYTES = 4 << 20
MAX_YAML_NODES = 500_000        # nodes after expanding every alias
MAX_YAML_ALIASES = 10_000
MAX_YAML_DEPTH = 64


def _check_node_budget(node, where: str) -> None:
    """Raise ParameterError when the document expands beyond the limits (or aliases itself)."""
    sizes: dict[int, int] = {}
    depths: dict[int, int] = {}
    active: set[int] = set()
    aliases = 0
    # iterative post-order walk over the node DAG, memoised by node identity (aliases share nodes)
    stack = [(node, False)]
    while stack:
        n, done = stack.pop()
        nid = id(n)
        if done:
            kids = _children(n)
            sizes[nid] = 1 + sum(sizes[id(c)] for c in kids)
            depths[nid] = 1 + max((depths[id(c)] for c in kids), default=0)
            active.discard(nid)
            if sizes[nid] > MAX_YAML_NODES:
                raise ParameterError(f"pipeline document too large once aliases are expanded (more than "
                                     f"{MAX_YAML_NODES:,} nodes; alias bomb?)", where)
            if depths[nid] > MAX_YAML_DEPTH:
                raise ParameterError(f"pipeline document nested deeper than {MAX_YAML_DEPTH} levels", where)
            continue
        if nid in sizes:
            aliases += 1
            if aliases > MAX_YAML_ALIASES:
                raise ParameterError(f"pipeline document uses more than {MAX_YAML_ALIASES:,} aliases", where)
            continue
        if nid in active:
            raise ParameterError("pipeline document contains a recursive alias", where)
        active.add(nid)
        stack.append((n, True))
        stack.extend((c, False) for c in _children(n))


def _check_document(node, where: str) -> None:
    """Refuse duplicate mapping keys (YAML says "last wins" silently; a pipeline that names a key
    twice is a mistake) and scalars longer than :data:`MAX_YAML_SCALAR` (a 4 MB sample name
    became 6 GB of memory and a 1.4 GB CSV), naming the line."""
    seen: set[int] = set()
    stack = [node]
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        if isinstance(n, yaml.ScalarNode):
            if len(n.value) > MAX_YAML_SCALAR:
                raise ParameterError(f"a value of {len(n.value):,} characters (longest allowed: "
                                     f"{MAX_YAML_SCALAR:,})", f"{where}:{n.start_mark.line + 1}")
            continue
        if isinstance(n, yaml.MappingNode):
            keys: dict = {}
            for k, _ in n.value:
                if isinstance(k, yaml.ScalarNode):
                    if k.value in keys and k.value != "<<":
                        raise ParameterError(f"duplicate key {k.value!r} (also on line {keys[k.value]}); "
                                             "each key may appear once", f"{where}:{k.start_mark.line + 1}")
                    keys[k.value] = k.start_mark.line + 1
        stack.extend(_children(n))


def _children(n) -> list:
    if isinstance(n, yaml.MappingNode):
        return [x for kv in n.value for x in kv]
    if isinstance(n, yaml.SequenceNode):
        return list(n.value)
    return []


def _read_yaml(text: str, where: str) -> tuple[Any, dict]:
    if len(text) > MAX_YAML_BYTES:
        raise ParameterError(f"pipeline file larger than {MAX_YAML_BYTES >> 20} MiB", where)
    # a line longer than any allowed value: refused before the (pure-Python) YAML scanner
    for lineno, line in enumerate(text.splitlines(), 1):
        if len(line) > MAX_YAML_SCALAR + 200:
            raise ParameterError(f"a line of {len(line):,} characters (longest allowed value: {MAX_YAML_SCALAR:,} "
                                 "characters)", f"{where}:{lineno}")
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is not None:
                _check_node_budget(node, where)
                _check_document(node, where)
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"{where}:{mark.line + 1}" if mark else where
        raise ParameterError(f"invalid YAML: {getattr(exc, 'problem', None) or exc}", at) from None
    except RecursionError:
        raise ParameterError(f"invalid YAML: nested deeper than {MAX_YAML_DEPTH} levels", where) from None
    return data, (_line_map(node) if node is not None else {})


# --------------------------------------------------------------------------- loading
def _has_glob(p: str) -> bool:
    return any(c in p for c in "*?[")


#: Marker file in every specproc output folder: globs never match files below such a folder,
#: so a pipeline never reads its own (or another run's) exports as data.
OUTPUT_MARKER = ".specproc-output"


def _in_output_folder(p: Path, root: Path, exclude: tuple[Path, ...], seen: dict) -> bool:
    # markers are looked for from the file up to the data root (an output folder *containing*
    # the data root is harmless); the run's own --out is excluded wherever it is
    if any(e == p or e in p.parents for e in exclude):
        return True
    for anc in (p, *p.parents):
        if anc != root and root not in anc.parents:
            break
        hit = seen.get(anc)
        if hit is None:
            hit = seen[anc] = (anc / OUTPUT_MARKER).is_file()
        if hit:
            return True
    return False


#: directory entries one glob may look at before it is refused (``root: /`` with ``**`` walked the
#: whole machine); ``$SPECPROC_MAX_GLOB_ENTRIES`` raises it
MAX_GLOB_ENTRIES = int(os.environ.get("SPECPROC_MAX_GLOB_ENTRIES", "1000000"))


def _glob(root: str, pattern: str, budget: list[int]) -> list[str]:
    """``glob.glob(pattern, recursive=True)`` that never follows a link to a folder under ``**``.

    The standard library's glob follows links below ``**``: a link to ``..`` made one file count
    41 times, two links to each other never ended. Here ``**`` descends only into real folders
    (links to folders are still matched by name, and followed by a literal or ``*`` part, as a
    user who writes ``data/*/1`` means), and every directory entry looked at counts against
    ``budget`` so no pattern walks a whole file system. Hidden names match only patterns that
    start with a dot, as in ``glob``.
    """
    import fnmatch

    parts = [q for q in pattern.split(os.sep) if q not in ("", ".")]
    out: list[str] = []

    def entries(base: str):
        try:
            with os.scandir(base or ".") as it:
                for e in it:
                    budget[0] -= 1
                    if budget[0] < 0:
                        raise ParameterError(f"the glob {os.sep.join(parts)!r} looked at more than "
                                             f"{MAX_GLOB_ENTRIES:,} files and folders under {root}; narrow the "
                                             "root or the pattern (or set SPECPROC_MAX_GLOB_ENTRIES)", root)
                    yield e
        except OSError:
            return

    def walk(base: str, i: int) -> None:
        if i == len(parts):
            out.append(base)
            return
        part = parts[i]
        if part == "**":
            last = i == len(parts) - 1
            if not last:
                walk(base, i + 1)  # zero folders
            for e in entries(base):
                if e.name.startswith("."):
                    continue
                if last:  # a final ``**`` matches every file and folder below
                    out.append(os.path.join(base, e.name))
                if e.is_dir(follow_symlinks=False):
                    walk(os.path.join(base, e.name), i)
        elif glob.has_magic(part):
            last = i == len(parts) - 1
            for e in entries(base):
                if (e.name.startswith(".") and not part.startswith(".")) or not fnmatch.fnmatchcase(e.name, part):
                    continue
                if last or e.is_dir():
                    walk(os.path.join(base, e.name), i + 1)
        else:
            nxt = os.path.join(base, part)
            if os.path.lexists(nxt):
                walk(nxt, i + 1)

    try:
        walk(root, 0)
    except RecursionError:
        raise ParameterError(f"the glob {pattern!r} reaches folders nested too deeply", root) from None
    return out


def expand_files(root: Path, pattern: str, exclude: tuple[Path, ...] = (), excluded: list | None = None
                 ) -> list[Path]:
    """Paths matching ``pattern`` (relative to ``root`` unless absolute), sorted; ``**`` recurses.

    Paths inside ``exclude`` folders or inside any specproc output folder are left out (and
    appended to ``excluded`` when given). ``**`` never follows links to folders (see
    :func:`_glob`) and a glob looks at most at :data:`MAX_GLOB_ENTRIES` entries.
    """
    pat = os.path.expanduser(pattern)
    full = pat if os.path.isabs(pat) else str(root / pat)
    if not _has_glob(full):
        found = [Path(full)] if os.path.exists(full) else []
    else:
        # the fixed head of the pattern is where the walk starts (no magic there)
        head, tail = [], full.split(os.sep)
        while tail and not glob.has_magic(tail[0]):
            head.append(tail.pop(0))
        base = os.sep.join(head) or os.sep
        found = [Path(p) for p in sorted(set(_glob(base, os.sep.join(tail), [MAX_GLOB_ENTRIES])))]
    seen: dict = {}
    exclude = tuple(Path(e).resolve() for e in exclude)
    root = Path(root).resolve()
    keep = []
    for p in found:
        if _in_output_folder(p.resolve(), root, exclude, seen):
            if excluded is not None:
                excluded.append(p.resolve())
        else:
            keep.append(p)
    return keep


def _non_finite(doc, path: tuple = ()) -> tuple[tuple, float] | None:
    """``(path, value)`` of the first NaN or infinity in a YAML value (JSON would store null)."""
    import math

    if isinstance(doc, float) and not math.isfinite(doc):
        return path, doc
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for k, v in items:
        got = _non_finite(v, path + (k,))
        if got is not None:
            return got
    return None


_SAMPLE_FIELDS = ("stem", "name", "parent")


def sample_fields(template: str) -> list[str]:
    """Placeholders of a ``sample`` template; only ``{stem}``, ``{name}``, ``{parent}`` (no
    attribute access, indexing or format specs), so formatting can never fail or reach objects."""
    import string

    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"bad placeholder in sample {template!r}: {exc}") from None
    out = []
    for _, fname, spec, conv in parsed:
        if fname is None:
            continue
        if fname not in _SAMPLE_FIELDS or spec or conv:
            raise ValueError(f"bad placeholder {{{fname}{'!' + conv if conv else ''}{':' + spec if spec else ''}}} "
                             f"in sample {template!r}; use {{stem}}, {{name}} or {{parent}}")
        out.append(fname)
    return out


def canonical_json(obj: Any) -> str:
    """Canonical JSON (sorted keys, no spaces) used in cache keys."""
    from ..core.result import jsonable

    return json.dumps(jsonable(obj), sort_keys=True, separators=(",", ":"), allow_nan=False)


def _processor_params(name: str, params: dict, lines: dict, loc: tuple, where: str):
    """Validated params (JSON-able dict); ``None`` when no processor of that technique exists;
    the :class:`PluginError` when the processor is declared but cannot be imported."""
    from .. import plugins
    from ..core.errors import PluginError

    import difflib

    avail = plugins.available("processors")
    if name not in avail:
        tech = name.split(".", 1)[0]
        same = sorted(n for n in avail if n.split(".", 1)[0] == tech)
        line = _lookup_line(lines, loc + ("processor",))
        at = f"{where}:{line}" if line else where
        close = difflib.get_close_matches(name, list(avail), n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        if same:  # the technique exists, so this is a typo: say so with the line
            raise ParameterError(f"unknown processor {name!r}{hint} ({tech} processors: {', '.join(same)})", at)
        if tech not in plugins.available("techniques"):  # not even a known technique: a typo too
            known = ", ".join(sorted(avail)) or "none"
            raise ParameterError(f"unknown processor {name!r}{hint} (registered processors: {known})", at)
        return None  # a declared technique without this processor installed: skipped, claims say no data
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


def load_pipeline(source: str | Path | dict | PipelineConfig, base_dir: str | Path | None = None,
                  exclude: tuple = ()) -> Pipeline:
    """Load and validate a pipeline.

    Parameters
    ----------
    source : path to a YAML file, YAML text is not accepted; a dict or a PipelineConfig
        The pipeline. Relative ``root`` and file globs are resolved against the YAML's
        folder (or ``base_dir`` / the working directory for dicts).
    exclude : tuple of paths
        Folders whose files globs never match (the run's output folder); folders holding a
        specproc output marker are always excluded.

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
                if path.stat().st_size > MAX_YAML_BYTES:
                    raise ParameterError(f"pipeline file larger than {MAX_YAML_BYTES >> 20} MiB", path)
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

    tasks, skipped, excluded = [], [], []
    done: set[tuple[int, str]] = set()
    for i, m in enumerate(cfg.measurements):
        loc = ("measurements", i)
        params = _processor_params(m.processor, m.params, lines, loc, where)
        if params is None or isinstance(params, Exception):
            reason = f"no processor {m.processor!r} registered" if params is None else str(params)
            skipped.append(Skipped(i, m.sample, m.technique, m.processor, ", ".join(m.patterns), reason,
                                   _lookup_line(lines, loc)))
            continue
        found = [p for pat in m.patterns for p in expand_files(root, pat, exclude, excluded)]
        if not found:
            skipped.append(Skipped(i, m.sample, m.technique, m.processor, ", ".join(m.patterns),
                                   f"no file matches {', '.join(m.patterns)} under {root}",
                                   _lookup_line(lines, loc), error=not m.optional))
            continue
        for what, doc in (("metadata", m.metadata), ("reader_options", m.reader_options), ("params", m.params)):
            bad = _non_finite(doc)
            if bad is not None:
                line = _lookup_line(lines, loc + (what,) + bad[0])
                raise ParameterError(f"{what}: {'.'.join(map(str, bad[0]))} = {bad[1]} is not a finite number",
                                     f"{where}:{line}" if line else where)
        try:
            metadata = json.loads(canonical_json(m.metadata))
        except (TypeError, ValueError) as exc:
            line = _lookup_line(lines, loc + ("metadata",))
            raise ParameterError(f"metadata must be plain values: {exc}", f"{where}:{line}" if line else where) \
                from None
        for p in found:
            # one file is processed once per entry, however many links or patterns reach it
            real = os.path.realpath(p)
            if (i, real) in done:
                continue
            done.add((i, real))
            sample = m.sample.format(stem=p.stem, name=p.name, parent=p.parent.name)  # fields checked
            tasks.append(Task(len(tasks), i, sample, m.technique, str(p.resolve()), m.processor, params,
                              m.reader, dict(m.reader_options), metadata))
    return Pipeline(cfg, path.resolve() if path else None, root, tasks, skipped, text, lines, excluded)
