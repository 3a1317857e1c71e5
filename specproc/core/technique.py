"""The technique plugin object: what a technique contributes, declared once and typed.

A technique package declares one :class:`Technique` (``technique = Technique(...)`` in its
``__init__.py``) and registers it by entry point (``nmr = "specproc.techniques.nmr:technique"`` in
the ``specproc.techniques`` group). Every consumer -- the command line, the report, ``sp.<name>``,
``specproc plugins``, the pipeline's validation -- reads this object, never attributes of a module.

The callables (``add_cli``, ``report_section``, ``explain``) are given as ``"module:attr"``
references and imported on first call, so ``import specproc`` and ``specproc --help`` import no
technique's heavy modules. ``Technique.from_module`` adapts an earlier module plugin (``TITLE``,
``add_cli``, ``report_section`` as module attributes) for one release.

No maintained library offers a lazily-resolved plugin record of this shape (xarray's
``BackendEntrypoint`` is a class per backend with eager methods; ``importlib.metadata`` resolves
an entry point to one object only), so the small resolver below is written here.
"""
from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, NamedTuple

from .errors import PluginError

__all__ = ["Technique", "QuantitySpec", "LazyCallable", "as_technique"]


class QuantitySpec(NamedTuple):
    """One kind of comparable quantity a technique's results carry.

    ``pattern`` is the quantity name with placeholders in angle brackets for what varies
    (``<peak>.center_ppm``, ``phase(<name>).present``); ``unit`` a pint-compatible unit ("" for a
    dimensionless number or a yes/no call); ``description`` one line for docs and validation.
    """

    pattern: str
    unit: str
    description: str


class LazyCallable:
    """A callable named by ``"package.module:attr"``, imported on its first call (then cached).

    A plain callable passed instead is wrapped and called as it is. The reference is checked for
    shape when made; a module or attribute that cannot be imported raises
    :class:`~specproc.core.errors.PluginError` naming the reference on first use.
    """

    __slots__ = ("ref", "_fn")

    def __init__(self, ref: str | Callable):
        if callable(ref) and not isinstance(ref, str):
            self._fn = ref
            self.ref = f"{getattr(ref, '__module__', '?')}:{getattr(ref, '__qualname__', type(ref).__qualname__)}"
            return
        if not isinstance(ref, str) or ref.count(":") != 1 or not all(ref.split(":")):
            raise PluginError(f"a technique callable is 'package.module:attr' or a callable, got {ref!r}")
        self.ref, self._fn = ref, None

    def resolve(self) -> Callable:
        """The callable itself (importing its module the first time)."""
        if self._fn is None:
            mod, attr = self.ref.split(":")
            try:
                obj = importlib.import_module(mod)
                for part in attr.split("."):
                    obj = getattr(obj, part)
            except (ImportError, AttributeError) as exc:
                raise PluginError(f"{self.ref} cannot be imported: {exc}") from exc
            if not callable(obj):
                raise PluginError(f"{self.ref} is not callable")
            self._fn = obj
        return self._fn

    def __call__(self, *args, **kwargs):
        return self.resolve()(*args, **kwargs)

    def __eq__(self, other) -> bool:
        return isinstance(other, LazyCallable) and other.ref == self.ref

    def __hash__(self) -> int:
        return hash(self.ref)

    def __repr__(self) -> str:
        return f"LazyCallable({self.ref!r})"


def _lazy(value) -> LazyCallable | None:
    if value is None or isinstance(value, LazyCallable):
        return value
    return LazyCallable(value)


@dataclass(frozen=True)
class Technique:
    """A technique plugin: name, title, its readers and processors, its CLI, report section and quantities.

    Parameters
    ----------
    name : str
        Command and namespace name (``specproc <name> ...``, ``sp.<name>``); also the ``technique``
        of its readers' measurements and processors' results.
    title : str
        Heading of its report section and line of ``specproc plugins``.
    description : str
        One sentence: what the technique does.
    readers, processors : tuple of str
        Plugin names of its readers and processors (the default processor first).
    api : str or module, optional
        The user namespace module (``"specproc.techniques.<name>"``), imported by :meth:`load_api`.
    add_cli, report_section, explain : "module:attr" or callable, optional
        ``add_cli(subparsers)`` adds the command; ``report_section(results) -> ReportSection``;
        ``explain(result, quantity_name) -> str | None`` says what a presence call rests on.
        Imported on first call (:class:`LazyCallable`).
    quantities : tuple of QuantitySpec or (pattern, unit, description)
        The comparable quantities its results carry (used by docs and validation).
    """

    name: str
    title: str
    description: str = ""
    readers: tuple[str, ...] = ()
    processors: tuple[str, ...] = ()
    api: str | ModuleType | None = None
    add_cli: LazyCallable | None = None
    report_section: LazyCallable | None = None
    explain: LazyCallable | None = None
    quantities: tuple[QuantitySpec, ...] = field(default=())

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.strip():
            raise PluginError(f"a technique needs a non-empty name, got {self.name!r}")
        if not isinstance(self.title, str) or not self.title.strip():
            raise PluginError(f"technique {self.name!r} needs a non-empty title")
        put = object.__setattr__  # frozen: normalised once, here
        put(self, "readers", tuple(self.readers))
        put(self, "processors", tuple(self.processors))
        for attr in ("add_cli", "report_section", "explain"):
            try:
                put(self, attr, _lazy(getattr(self, attr)))
            except PluginError as exc:
                raise PluginError(f"technique {self.name!r}, {attr}: {exc}") from None
        try:
            put(self, "quantities", tuple(q if isinstance(q, QuantitySpec) else QuantitySpec(*q)
                                          for q in self.quantities))
        except TypeError as exc:
            raise PluginError(f"technique {self.name!r}: a quantity is (pattern, unit, description): {exc}") from None

    @property
    def default_processor(self) -> str | None:
        """The processor a command or pipeline step uses when none is named (the first declared)."""
        return self.processors[0] if self.processors else None

    def load_api(self) -> ModuleType | None:
        """The user namespace module (``sp.<name>``), imported now if given by name."""
        if self.api is None or isinstance(self.api, ModuleType):
            return self.api
        try:
            return importlib.import_module(self.api)
        except ImportError as exc:
            raise PluginError(f"technique {self.name!r}: its module {self.api!r} cannot be imported: {exc}") from exc

    @classmethod
    def from_module(cls, mod: Any, name: str | None = None) -> "Technique":
        """A :class:`Technique` from an earlier module plugin (``TITLE``, ``add_cli``, ``report_section``).

        Deprecated (a :class:`DeprecationWarning`): a technique declares ``technique = Technique(...)``
        and its entry point names that object. Accepted for one release so third-party module
        plugins keep working.
        """
        modname = getattr(mod, "__name__", None)
        name = name or (modname.rsplit(".", 1)[-1] if isinstance(modname, str) else None)
        if not name:
            raise PluginError(f"cannot name the technique of {mod!r}: pass name=")
        warnings.warn(f"technique plugin {name!r} is a module ({modname or type(mod).__name__}); declare "
                      "`technique = specproc.core.technique.Technique(...)` and name it in the entry point "
                      "(module plugins are accepted for one more release)", DeprecationWarning, stacklevel=3)
        doc = (getattr(mod, "__doc__", None) or "").strip()
        title = getattr(mod, "TITLE", None) or name.upper()
        return cls(name=name, title=str(title),
                   description=str(getattr(mod, "DESCRIPTION", None) or (doc.split("\n")[0] if doc else "")),
                   api=mod if isinstance(mod, ModuleType) else None,
                   add_cli=getattr(mod, "add_cli", None), report_section=getattr(mod, "report_section", None),
                   explain=getattr(mod, "explain", None))

    def _repr_html_(self) -> str:
        import html  # here: a notebook display, not worth the import at ``specproc --help``

        e = html.escape
        rows = [("name", e(self.name)), ("description", e(self.description)),
                ("readers", e(", ".join(self.readers)) or "—"),
                ("processors", e(", ".join(self.processors)) or "—")]
        out = [f"<div class='specproc-technique'><h4>{e(self.title)}</h4><table>"]
        out += [f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows]
        out.append("</table>")
        if self.quantities:
            out.append("<table><tr><th>quantity</th><th>unit</th><th>meaning</th></tr>")
            out += [f"<tr><td><code>{e(q.pattern)}</code></td><td>{e(q.unit)}</td><td>{e(q.description)}</td></tr>"
                    for q in self.quantities]
            out.append("</table>")
        out.append("</div>")
        return "".join(out)


def as_technique(obj: Any, name: str) -> Technique:
    """``obj`` if it is a :class:`Technique`, else an earlier module plugin adapted (with a warning)."""
    if isinstance(obj, Technique):
        if obj.name != name:
            raise PluginError(f"technique plugin {name!r} declares the name {obj.name!r}: the entry point (or "
                              "register) name and Technique.name must be the same")
        return obj
    if isinstance(obj, (str, int, float, bytes, type(None))):
        raise PluginError(f"technique plugin {name!r} is {type(obj).__name__}, not a Technique")
    return Technique.from_module(obj, name)
