"""Command-line options generated from a processor's pydantic ``Params`` (one source of every option).

A technique's ``cli.py`` calls :func:`add_params_arguments` with its processor's ``Params``: each
field becomes ``--field-name`` with its type, bounds, choices and help taken from the field
(annotation, ``ge``/``gt``/``le``/``lt``, ``Literal``, ``description``, default), so a choice list,
a bound or a default is written once, in the schema. argparse's defaults are ``None``: only the
options given reach the ``Params``, which keep their defaults in one place. The returned mapping
(field -> argparse dest) is also recorded on the parser, so :func:`specproc.runner.run_technique`
builds the parameters from ``args`` without the names being listed again
(:func:`params_from_args`).

argparse is used as it is (no CLI framework): the techniques contribute sub-commands to one
``specproc`` parser (:mod:`specproc.cli`), and the generator only derives ``add_argument`` calls.
No maintained library turns a pydantic v2 model into *argparse* arguments with pydantic's own
constraints as argparse types (pydantic-settings' CLI owns the whole parser and its spelling), so
this small mapping is written here.
"""
from __future__ import annotations

import argparse
import enum
import math
import sys
import types
import typing
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

__all__ = ["add_params_arguments", "params_from_args", "cli_fields", "peaks_arg", "floats_arg", "region_arg",
           "names_arg", "number_arg", "tuple_arg", "PARAMS_DEST", "SCHEMA_DEST"]

#: argparse dest holding {field: dest} of the generated options (set on the parser by add_params_arguments)
PARAMS_DEST = "_params_fields"
#: argparse dest holding the Params class those options come from
SCHEMA_DEST = "_params_schema"


# ------------------------------------------------------------------ argument types (one of each)
def floats_arg(text: str) -> list[float]:
    """``--peaks=-44.3,-41.2`` -> [-44.3, -41.2]; NaN / inf refused."""
    try:
        vals = [float(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not vals:
        raise argparse.ArgumentTypeError("expected at least one number")
    if not all(math.isfinite(v) for v in vals):
        raise argparse.ArgumentTypeError(f"numbers must be finite, got {text!r}")
    return vals


def region_arg(text: str) -> tuple[float, float]:
    """``--region=LO:HI`` (axis units, either order)."""
    try:
        lo, hi = (float(v) for v in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LO:HI, got {text!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo == hi:
        raise argparse.ArgumentTypeError(f"LO and HI must be finite and differ, got {text!r}")
    return lo, hi


def names_arg(text: str) -> list[str]:
    """``A,B,C`` -> ["A", "B", "C"] (blanks around names dropped)."""
    names = [v.strip() for v in text.split(",") if v.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected comma-separated names")
    return names


def tuple_arg(n: int, what: str = "numbers") -> Callable[[str], tuple[float, ...]]:
    """An argparse ``type`` for exactly ``n`` comma-separated finite numbers."""
    def parse(text: str):
        vals = floats_arg(text)
        if len(vals) != n:
            raise argparse.ArgumentTypeError(f"expected {n} comma-separated {what}, got {text!r}")
        return tuple(vals)

    parse.__name__ = "numbers"
    return parse


def peaks_arg(text: str) -> list[float] | dict[str, float]:
    """``POS,...`` (start positions) or ``NAME=POS,...`` (named starts): the one parser of every
    technique's ``--peaks`` (what :data:`specproc.core.params.PeaksInput` accepts from a command line)."""
    if "=" not in text:
        return floats_arg(text)
    out: dict[str, float] = {}
    for item in text.replace(" ", "").split(","):
        if not item:
            continue
        name, sep, val = item.partition("=")
        try:
            v = float(val)
        except ValueError:
            v = float("nan")
        if not sep or not name or not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"expected NAME=POSITION pairs, got {item!r} in {text!r}")
        if name in out:
            raise argparse.ArgumentTypeError(f"peak {name!r} given twice")
        out[name] = v
    if not out:
        raise argparse.ArgumentTypeError("expected at least one NAME=POSITION")
    return out


def number_arg(what: str | None = None, minimum: float | None = None, strict: bool = False,
               integer: bool = False, maximum: float | None = None,
               strict_max: bool = False) -> Callable[[str], float]:
    """An argparse ``type`` for one finite number (``what`` names it in the message, with its unit).

    ``minimum`` / ``maximum``: the smallest / largest value accepted (``strict`` / ``strict_max``:
    excluded); ``integer``: a whole number. The one validator of numeric options.
    """
    bounds = []
    if minimum is not None:
        bounds.append(f"{'>' if strict else '>='} {minimum:g}")
    if maximum is not None:
        bounds.append(f"{'<' if strict_max else '<='} {maximum:g}")
    bound = (" " + " and ".join(bounds)) if bounds else ""
    what = what or ("a whole number" if integer else "a finite number")

    def parse(text: str):
        try:
            v = int(text) if integer else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        bad = not math.isfinite(v)
        bad = bad or (minimum is not None and (v <= minimum if strict else v < minimum))
        bad = bad or (maximum is not None and (v >= maximum if strict_max else v > maximum))
        if bad:
            raise argparse.ArgumentTypeError(f"expected {what}{bound}, got {text!r}")
        return v

    parse.__name__ = "number"  # argparse names the type in its own messages
    return parse


# ------------------------------------------------------------------ actions
class _KeyValueAppend(argparse.Action):
    """A repeatable ``KEY=VALUE`` option collected into a dict (``--line 'block 3=Si 2p'``)."""

    def __call__(self, parser, namespace, values, option_string=None):
        key, sep, val = str(values).rpartition("=")
        if not sep or not key.strip() or not val.strip():
            parser.error(f"argument {option_string}: expected KEY=VALUE, got {values!r}")
        got = dict(getattr(namespace, self.dest, None) or {})
        got[key.strip()] = val.strip()
        setattr(namespace, self.dest, got)


def _deprecated(parse: Callable[[str], Any], old: str, new: str, prog: str) -> Callable[[str], Any]:
    """``parse`` for an old spelling: a DeprecationWarning (and a note on stderr), then the same value."""
    def warn_then_parse(text: str):
        msg = f"{old} is deprecated and will be removed in the next release: use {new}"
        warnings.warn(msg, DeprecationWarning, stacklevel=2)
        print(f"{prog}: note: {msg}", file=sys.stderr)
        return parse(text)

    warn_then_parse.__name__ = getattr(parse, "__name__", "value")   # argparse names the type in its messages
    return warn_then_parse


# ------------------------------------------------------------------ the generator
def _strip_optional(ann) -> tuple[Any, bool]:
    """(annotation without ``None``, whether None was allowed)."""
    origin = typing.get_origin(ann)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        optional = len(args) < len(typing.get_args(ann))
        return (args[0] if len(args) == 1 else typing.Union[tuple(args)]), optional
    return ann, False


def _unannotate(ann) -> tuple[Any, list]:
    """(base type, metadata) of ``Annotated[...]`` (nested Annotated flattened)."""
    meta: list = []
    while typing.get_origin(ann) is typing.Annotated:
        args = typing.get_args(ann)
        ann, meta = args[0], [*args[1:], *meta]
    return ann, meta


def _validators(meta: list) -> set:
    from .core import params as cp

    out = set()
    for m in meta:
        f = getattr(m, "func", None)
        if f is cp.check_positive:
            out.add("positive")
        elif f is cp.check_finite:
            out.add("finite")
        elif f is cp.check_region:
            out.add("region")
    return out


def _bounds(meta: list) -> dict:
    """number_arg bounds from the field's constraints (``Field(ge=..., lt=...)``: annotated-types
    ``Ge``/``Gt``/``Le``/``Lt``/``Interval`` objects, read by their attributes)."""
    b: dict = {}
    for m in meta:
        for attr, key, strict in (("ge", "minimum", False), ("gt", "minimum", True), ("le", "maximum", False),
                                  ("lt", "maximum", True)):
            v = getattr(m, attr, None)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                b[key] = v
                b["strict" if key == "minimum" else "strict_max"] = strict
    return b


#: unit suffixes of field names -> metavar (``mas_rate_hz`` -> HZ)
_UNIT_METAVARS = {"hz": "HZ", "deg": "DEG", "nm": "NM", "m": "M", "cm": "CM", "cm2": "CM2", "ev": "EV", "s": "S",
                  "pa": "PA", "c": "T", "v": "V", "ohm": "OHM", "pct": "PCT", "px": "PX"}


def _unit_metavar(name: str, fallback: str) -> str:
    tail = name.rsplit("_", 1)[-1].lower() if "_" in name else ""
    return _UNIT_METAVARS.get(tail, fallback)


def _literal_values(ann) -> tuple | None:
    if typing.get_origin(ann) is Literal:
        return typing.get_args(ann)
    if isinstance(ann, type) and issubclass(ann, enum.Enum):
        return tuple(m.value for m in ann)
    return None


def _literal_or(values: tuple, other: Callable[[str], Any], what: str) -> Callable[[str], Any]:
    def parse(text: str):
        if text in values:
            return text
        try:
            return other(text)
        except argparse.ArgumentTypeError as exc:
            raise argparse.ArgumentTypeError(f"expected {' or '.join(map(str, values))} or {what}: {exc}") from None

    parse.__name__ = "value"
    return parse


def _spec(name: str, field) -> dict | None:
    """The ``add_argument`` keywords of one field (``None``: no generic command-line form)."""
    from .core.params import PeaksInput

    ann = field.annotation
    base, _ = _strip_optional(ann)
    base, meta = _unannotate(base)
    meta = [*meta, *field.metadata]
    checks = _validators(meta)
    bounds = _bounds(meta)
    if ann == PeaksInput or base == _strip_optional(PeaksInput)[0]:
        return {"type": peaks_arg, "metavar": "POS,...|NAME=POS,..."}
    if "region" in checks:
        return {"type": region_arg, "metavar": "LO:HI"}
    lits = _literal_values(base)
    if lits is not None:
        kinds = {type(v) for v in lits}
        return {"choices": list(lits), **({"type": kinds.pop()} if len(kinds) == 1 and str not in kinds else {})}
    origin, args = typing.get_origin(base), typing.get_args(base)
    if origin in (typing.Union, types.UnionType):
        parts = [_unannotate(a)[0] for a in args]
        lit = next((_literal_values(a) for a in parts if _literal_values(a) is not None), None)
        rest = [a for a in parts if _literal_values(a) is None]
        if lit is not None and rest == [int]:
            return {"type": _literal_or(lit, number_arg(integer=True, **bounds), "a whole number"),
                    "metavar": f"{'|'.join(lit)}|N"}
        if str in parts:     # e.g. RSFs {line: value} or a table path: the path from a command line
            return {"type": str, "metavar": _unit_metavar(name, "TEXT")}
        return None
    if base is bool:
        return {"action": argparse.BooleanOptionalAction}
    if base is int:
        return {"type": number_arg(integer=True, **bounds), "metavar": "N"}
    if base is float:
        if "positive" in checks:
            bounds = {"minimum": 0, "strict": True, **{k: v for k, v in bounds.items() if "max" in k}}
        return {"type": number_arg(**bounds), "metavar": _unit_metavar(name, "X")}
    if base is str or base is Any:
        return {"type": str, "metavar": _unit_metavar(name, "TEXT")}
    if origin is tuple and args and all(_unannotate(a)[0] is float for a in args):
        if len(args) == 2:
            return {"type": region_arg, "metavar": "LO:HI"}
        return {"type": tuple_arg(len(args)), "metavar": ",".join("ABCDEFGH"[:len(args)])}
    if origin is list and len(args) == 1:
        item = _unannotate(args[0])[0]
        if item is float:
            return {"type": floats_arg, "metavar": "X,..."}
        if item is str:      # comma-separated and/or repeated
            return {"type": names_arg, "action": "extend", "metavar": "NAME,..."}
    if origin is dict and args == (str, str):
        return {"action": _KeyValueAppend, "metavar": "KEY=VALUE"}
    return None


def _default_text(field) -> str | None:
    if field.default_factory is not None:
        try:
            d = field.default_factory()
        except TypeError:
            return None
    else:
        d = field.default
    if d is None or d == [] or d == {} or d is ... or type(d).__name__ == "PydanticUndefinedType":
        return None
    if isinstance(d, bool):
        return "yes" if d else "no"
    if isinstance(d, enum.Enum):
        d = d.value
    if isinstance(d, tuple):
        return ":".join(f"{v:g}" for v in d) if len(d) == 2 else ",".join(f"{v:g}" for v in d)
    if isinstance(d, float):
        return f"{d:g}"
    return str(d)


def _help(field, extra: str | None = None) -> str:
    text = (extra or field.description or "").strip()
    d = _default_text(field)
    if d is not None and "default" not in text.lower():
        text = f"{text} (default: {d})" if text else f"default: {d}"
    return text.replace("%", "%%")   # argparse formats help with %


def cli_fields(params_cls, fields: Iterable[str] | None = None, exclude: Iterable[str] = ()) -> list[str]:
    """The fields of ``params_cls`` that get an option: ``fields`` in their order, or every field,
    minus ``exclude`` (a field left out of the command line is left out by name, never silently)."""
    exclude = set(exclude)
    names = list(fields) if fields is not None else list(params_cls.model_fields)
    unknown = [n for n in [*names, *exclude] if n not in params_cls.model_fields]
    if unknown:
        raise ValueError(f"{params_cls.__name__} has no field(s) {unknown}")
    return [n for n in names if n not in exclude]


def option_name(field: str) -> str:
    """``mas_rate_hz`` -> ``--mas-rate-hz`` (lower case: ``temperature_C`` -> ``--temperature-c``)."""
    return "--" + field.replace("_", "-").lower()


def add_params_arguments(parser: argparse.ArgumentParser, params_cls, fields: Iterable[str] | None = None, *,
                         rename: Mapping[str, str] | None = None, metavar: Mapping[str, str] | None = None,
                         exclude: Iterable[str] = (), types: Mapping[str, Callable] | None = None,
                         help: Mapping[str, str] | None = None,
                         deprecated: Mapping[str, str | Iterable[str]] | None = None,
                         record: bool = True) -> dict[str, str]:
    """Add one option per field of ``params_cls`` to ``parser``; return ``{field: dest}``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The technique's sub-command.
    params_cls : type[ProcessorParams]
        The processor's pydantic ``Params``.
    fields : iterable of str, optional
        The fields to expose, in this order (default: every field not in ``exclude``; a field with
        no command-line form and no ``types`` entry is then an error, so none is dropped silently).
    rename : mapping, optional
        ``{field: "--option"}`` where the option is not ``--field-name`` (``wavelength_nm`` ->
        ``--wavelength``; a vocabulary name that the field has not switched to yet).
    metavar, help : mapping, optional
        ``{field: text}`` overriding the derived metavar / the field's ``description``.
    exclude : iterable of str
        Fields never exposed (dicts of Python objects, internal switches).
    types : mapping, optional
        ``{field: callable}``: an argparse ``type`` where the annotation does not say enough
        (a file to parse, a stricter rule of the command line).
    deprecated : mapping, optional
        ``{field: "--old" or ["--old", ...]}``: old spellings still accepted for one release with a
        ``DeprecationWarning`` (and a note on stderr), not shown in ``--help``.
    record : bool
        Record the mapping on the parser, so :func:`params_from_args` (and ``run_technique``) pass
        these options to the command's processor; ``False`` for options of another schema that the
        technique assembles itself (NMR's ``processing``).

    Types follow the annotation: numbers -> :func:`number_arg` with the field's ``ge``/``gt``/``le``/
    ``lt`` (``PositiveOrNone``: > 0), ``bool`` -> ``--x/--no-x``, ``Literal``/``Enum`` -> choices,
    ``Region`` and ``tuple[float, float]`` -> ``LO:HI``, ``list[float]`` -> ``A,B,...``, ``list[str]`` ->
    names (comma-separated or repeated), ``PeaksInput`` -> :func:`peaks_arg`, ``dict[str, str]`` ->
    repeated ``KEY=VALUE``. argparse defaults are ``None``: the ``Params`` keep theirs; the help
    says "(default: X)" from the field.
    """
    rename, metavar, types, help = dict(rename or {}), dict(metavar or {}), dict(types or {}), dict(help or {})
    deprecated = {k: ([v] if isinstance(v, str) else list(v)) for k, v in (deprecated or {}).items()}
    mapping: dict[str, str] = {}
    for name in cli_fields(params_cls, fields, exclude):
        field = params_cls.model_fields[name]
        spec = _spec(name, field)
        if name in types:    # a list field given one item per use (``--reference A.cif --reference B.cif``)
            repeat = spec is not None and spec.get("action") in ("extend", "append")
            spec = {"type": types[name], **({"action": "append"} if repeat else {})}
        if spec is None:
            raise ValueError(f"{params_cls.__name__}.{name}: no command-line form for {field.annotation!r} "
                             "(exclude it, or give its argparse type in types=)")
        opt = rename.get(name, option_name(name))
        kw = dict(spec)
        if name in metavar:
            kw["metavar"] = metavar[name]
        kw["help"] = _help(field, help.get(name))
        kw["default"] = None
        flags = [opt]
        if kw.get("action") is argparse.BooleanOptionalAction:
            kw.pop("metavar", None)
        dest = opt.lstrip("-").replace("-", "_")
        for spelling in deprecated.get(name, []):
            if kw.get("action") is argparse.BooleanOptionalAction:
                raise ValueError("deprecated spellings of a --x/--no-x option are not supported")
            # the old spelling parses into the same dest, hidden from --help (one name shown)
            parser.add_argument(spelling, dest=dest, help=argparse.SUPPRESS,
                                **{k: v for k, v in kw.items() if k not in ("help", "type")},
                                type=_deprecated(kw.get("type", str), spelling, opt, parser.prog))
        parser.add_argument(*flags, dest=dest, **kw)
        mapping[name] = dest
    if not record:
        return mapping
    recorded = dict(parser.get_default(PARAMS_DEST) or {})
    recorded.update(mapping)
    parser.set_defaults(**{PARAMS_DEST: recorded, SCHEMA_DEST: params_cls})
    return mapping


def params_from_args(args: argparse.Namespace, mapping: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``{field: value}`` of the generated options that were given (``None``: not given)."""
    mapping = mapping if mapping is not None else (getattr(args, PARAMS_DEST, None) or {})
    out = {}
    for field, dest in mapping.items():
        v = getattr(args, dest, None)
        if v is not None:
            out[field] = v
    return out
