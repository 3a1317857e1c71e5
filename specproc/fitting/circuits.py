"""Equivalent circuits of impedance spectroscopy: circuit strings, impedance and analytic derivatives.

The circuit language is impedance.py's (``R0-p(R1,CPE1)-CPE2``): ``-`` joins elements in series,
``p(a,b,...)`` in parallel, and the branches of ``p(...)`` may themselves be series
(``R0-p(R1-Wo1,CPE1)``, a Randles cell). An element is named by its type followed by any label:

======  ==========================================  ====================================  ==================
type    impedance                                   parameters                            units
======  ==========================================  ====================================  ==================
``R``   ``R``                                       ``<name>``                            Ohm
``C``   ``1 / (j w C)``                             ``<name>``                            F
``L``   ``j w L``                                   ``<name>``                            H
``CPE`` ``1 / (Q (j w)^n)``                         ``<name>_Q``, ``<name>_n``            F s^(n-1), 1
``W``   ``A (1 - j) / sqrt(w)`` (semi-infinite)     ``<name>``                            Ohm s^-0.5
``Wo``  ``R coth(sqrt(j w tau)) / sqrt(j w tau)``   ``<name>_R``, ``<name>_tau``          Ohm, s
``Ws``  ``R tanh(sqrt(j w tau)) / sqrt(j w tau)``   ``<name>_R``, ``<name>_tau``          Ohm, s
======  ==========================================  ====================================  ==================

(``w = 2 pi f``; ``Wo`` is the finite-length Warburg with a reflective (open) end, ``Ws`` with a
transmissive (short) end; the type is the longest prefix, so ``Ws1`` is a finite Warburg and
``Rct1`` a resistor). Names must be unique: ``R0``, ``Rs``, ``Rct1``, ``CPE1``...

Why not impedance.py or pyimpspec: impedance.py evaluates circuits by building and ``eval``-ing
Python strings, one spectrum at a time, with numerical derivatives (its lin-KK fails under
numpy 2); pyimpspec is GPL. What a batched fit needs is the impedance *and its analytic Jacobian*
for a whole stack of parameter sets at once: series add, and a parallel combination
``Z = 1 / sum(1/Z_i)`` has ``dZ/dp = (Z/Z_i)^2 dZ_i/dp`` for a parameter of branch ``i`` — a few
lines of numpy that no maintained library exposes.

>>> c = parse_circuit("R0-p(R1,CPE1)-CPE2")
>>> c.param_names
['R0', 'R1', 'CPE1_Q', 'CPE1_n', 'CPE2_Q', 'CPE2_n']
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from ..core.errors import ParameterError

__all__ = ["ELEMENT_TYPES", "Element", "Circuit", "parse_circuit", "Arc"]

#: element type -> (parameter suffixes, units, positive (log-scaled) flags, default bounds)
ELEMENT_TYPES = {
    "R": (("",), ("Ohm",), (True,), ((1e-6, 1e13),)),
    "C": (("",), ("F",), (True,), ((1e-18, 1.0),)),
    "L": (("",), ("H",), (True,), ((1e-15, 1.0),)),
    "CPE": (("_Q", "_n"), ("F*s^(n-1)", ""), (True, False), ((1e-18, 1e3), (0.2, 1.0))),
    "W": (("",), ("Ohm*s^-0.5",), (True,), ((1e-9, 1e13),)),
    "Wo": (("_R", "_tau"), ("Ohm", "s"), (True, True), ((1e-6, 1e13), (1e-9, 1e7))),
    "Ws": (("_R", "_tau"), ("Ohm", "s"), (True, True), ((1e-6, 1e13), (1e-9, 1e7))),
}
_TYPES_LONGEST_FIRST = sorted(ELEMENT_TYPES, key=len, reverse=True)
_TOKEN = re.compile(r"\s*(p\(|\(|\)|,|-|[A-Za-z][A-Za-z0-9_]*)")


@dataclass
class Element:
    """One circuit element: its type, its name and the slice of its parameters in the vector."""

    kind: str
    name: str
    start: int = 0

    @property
    def params(self) -> list[str]:
        return [self.name + s for s in ELEMENT_TYPES[self.kind][0]]

    @property
    def nparams(self) -> int:
        return len(ELEMENT_TYPES[self.kind][0])


@dataclass
class _Node:
    op: str                       # "s" (series), "p" (parallel) or "e" (element)
    children: list = field(default_factory=list)
    element: Element | None = None


@dataclass
class Arc:
    """A parallel block ``p(<R...>, <C or CPE>)``: one relaxation (a semicircle in the Nyquist plot).

    ``resistors`` are the R elements of its resistive branch (their sum is the arc's width on the
    real axis), ``capacitor`` its C or CPE element.
    """

    resistors: list[str]
    capacitor: Element
    text: str


# ---------------------------------------------------------------------------------------- parsing
def _tokens(text: str, src: str) -> list[str]:
    out, pos = [], 0
    s = text.replace(" ", "")
    while pos < len(s):
        m = _TOKEN.match(s, pos)
        if not m:
            raise ParameterError(f"circuit {src!r}: cannot read {s[pos:pos + 12]!r} (elements R, C, L, CPE, W, Wo, "
                                 "Ws joined by '-' (series) and 'p(a,b)' (parallel))")
        out.append(m.group(1))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str):
        self.src = text
        self.toks = _tokens(text, text)
        self.i = 0
        self.elements: list[Element] = []

    def peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, want=None):
        t = self.peek()
        if t is None or (want is not None and t != want):
            raise ParameterError(f"circuit {self.src!r}: expected {want or 'an element'!r} at token {self.i + 1} "
                                 f"(got {t!r})")
        self.i += 1
        return t

    def series(self) -> _Node:
        items = [self.term()]
        while self.peek() == "-":
            self.take("-")
            items.append(self.term())
        return items[0] if len(items) == 1 else _Node("s", items)

    def term(self) -> _Node:
        t = self.peek()
        if t == "p(":
            self.take()
            branches = [self.series()]
            while self.peek() == ",":
                self.take(",")
                branches.append(self.series())
            self.take(")")
            if len(branches) < 2:
                raise ParameterError(f"circuit {self.src!r}: p(...) needs at least two branches")
            return _Node("p", branches)
        if t is None or t in (",", ")", "-", "("):
            raise ParameterError(f"circuit {self.src!r}: expected an element at token {self.i + 1} (got {t!r})")
        self.take()
        kind = next((k for k in _TYPES_LONGEST_FIRST if t.startswith(k)), None)
        if kind is None:
            raise ParameterError(f"circuit {self.src!r}: unknown element {t!r} (types: {', '.join(ELEMENT_TYPES)})")
        el = Element(kind, t)
        self.elements.append(el)
        return _Node("e", element=el)

    def parse(self) -> _Node:
        if not self.toks:
            raise ParameterError("empty circuit string")
        root = self.series()
        if self.peek() is not None:
            raise ParameterError(f"circuit {self.src!r}: unexpected {self.peek()!r} at token {self.i + 1}")
        names = [e.name for e in self.elements]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ParameterError(f"circuit {self.src!r}: element names must be unique ({', '.join(dup)} repeated)")
        return root


def parse_circuit(text: str) -> "Circuit":
    """Parse an impedance.py circuit string (``"R0-p(R1,CPE1)-CPE2"``) into a :class:`Circuit`.

    Raises
    ------
    ParameterError
        Naming the circuit and what is wrong (unknown element, unbalanced parenthesis...).
    """
    if not isinstance(text, str):
        raise ParameterError(f"circuit must be a string like 'R0-p(R1,CPE1)-CPE2', got {type(text).__name__}")
    p = _Parser(text.strip())
    return Circuit(text.strip(), p.parse(), p.elements)


# ---------------------------------------------------------------------------------------- elements
def _element(kind: str, w: np.ndarray, P: np.ndarray):
    """Impedance (n, m) and derivatives [(n, m)] wrt the element's parameters ``P`` (n, k)."""
    if kind == "R":
        z = np.broadcast_to(P[:, :1], (P.shape[0], w.size)).astype(complex)
        return z, [np.ones_like(z)]
    if kind == "C":
        z = 1.0 / (1j * w[None, :] * P[:, :1])
        return z, [-z / P[:, :1]]
    if kind == "L":
        z = 1j * w[None, :] * P[:, :1]
        return z, [np.broadcast_to(1j * w[None, :], z.shape).astype(complex)]
    if kind == "CPE":
        q, n = P[:, :1], P[:, 1:2]
        ljw = np.log(w)[None, :] + 0.5j * np.pi          # log(j w)
        z = np.exp(-n * ljw) / q
        return z, [-z / q, -z * ljw]
    if kind == "W":
        g = (1 - 1j) / np.sqrt(w)[None, :]
        return P[:, :1] * g, [np.broadcast_to(g, (P.shape[0], w.size)).astype(complex)]
    # finite-length Warburg: s = sqrt(j w tau); written with exp(-2s) (Re s > 0): no overflow
    r, tau = P[:, :1], P[:, 1:2]
    s = np.sqrt(1j * w[None, :] * tau)
    e = np.exp(-2 * s)
    if kind == "Wo":
        f = (1 + e) / (1 - e) / s                          # coth(s)/s
        df = (-4 * e / (1 - e) ** 2 * s - (1 + e) / (1 - e)) / s ** 2
    else:
        f = (1 - e) / (1 + e) / s                          # tanh(s)/s
        df = (4 * e / (1 + e) ** 2 * s - (1 - e) / (1 + e)) / s ** 2
    return r * f, [f, r * df * s / (2 * tau)]


class Circuit:
    """A parsed equivalent circuit.

    Attributes
    ----------
    text : str
        The circuit string.
    elements : list of Element
        In order of appearance; ``param_names`` follows it.
    param_names, units : list of str
    positive : ndarray of bool
        Parameters fitted on a log scale (all but CPE exponents).
    lo, hi : ndarray
        Default bounds.
    """

    def __init__(self, text: str, root: _Node, elements: list[Element]):
        self.text, self.root, self.elements = text, root, elements
        k = 0
        for e in elements:
            e.start = k
            k += e.nparams
        self.param_names = [p for e in elements for p in e.params]
        self.units = [u for e in elements for u in ELEMENT_TYPES[e.kind][1]]
        self.positive = np.array([f for e in elements for f in ELEMENT_TYPES[e.kind][2]], bool)
        b = [bb for e in elements for bb in ELEMENT_TYPES[e.kind][3]]
        self.lo = np.array([x[0] for x in b], float)
        self.hi = np.array([x[1] for x in b], float)

    def __repr__(self) -> str:
        return f"Circuit({self.text!r})"

    @property
    def nparams(self) -> int:
        return len(self.param_names)

    def unit(self, name: str) -> str:
        return self.units[self.param_names.index(name)]

    # ------------------------------------------------------------------ evaluation
    def _as_matrix(self, values) -> np.ndarray:
        if isinstance(values, dict):
            missing = [n for n in self.param_names if n not in values]
            if missing:
                raise ParameterError(f"circuit {self.text!r}: values missing for {missing}")
            return np.atleast_2d(np.array([[float(values[n]) for n in self.param_names]]))
        P = np.atleast_2d(np.asarray(values, float))
        if P.shape[-1] != self.nparams:
            raise ParameterError(f"circuit {self.text!r} has {self.nparams} parameters, got {P.shape[-1]}")
        return P

    def impedance(self, f, values, jac: bool = False):
        """Impedance (Ohm) at frequencies ``f`` (Hz).

        Parameters
        ----------
        f : array (m,)
        values : dict name -> value, or array (q,) / (n, q) in ``param_names`` order
        jac : bool
            Also return ``dZ/dp`` of shape (n, m, q).

        Returns
        -------
        Z : complex array (m,) for one parameter set, (n, m) for a stack; with ``jac`` ``(Z, J)``.
        """
        single = isinstance(values, dict) or np.ndim(values) == 1
        P = self._as_matrix(values)
        w = 2 * np.pi * np.asarray(f, float)
        J = np.zeros((P.shape[0], w.size, self.nparams), complex) if jac else None
        Z = self._eval(self.root, w, P, J)
        Z = np.broadcast_to(Z, (P.shape[0], w.size))
        if single:
            return (Z[0], J[0]) if jac else Z[0]
        return (Z, J) if jac else Z

    def _eval(self, node: _Node, w, P, J):
        """Impedance of ``node``; its parameters' derivatives written into ``J`` (chain rule)."""
        if node.op == "e":
            e = node.element
            z, ds = _element(e.kind, w, P[:, e.start:e.start + e.nparams])
            if J is not None:
                for k, d in enumerate(ds):
                    J[:, :, e.start + k] = d
            return z
        zs = [self._eval(c, w, P, J) for c in node.children]
        if node.op == "s":
            return sum(zs[1:], zs[0])
        z = 1.0 / sum(1.0 / zc for zc in zs)
        if J is not None:            # d(1/sum 1/Zi) = (Z/Zi)^2 dZi for a parameter of branch i
            for c, zc in zip(node.children, zs):
                idx = self._indices(c)
                J[:, :, idx] *= ((z / zc) ** 2)[:, :, None]
        return z

    def _indices(self, node: _Node) -> list[int]:
        if node.op == "e":
            return list(range(node.element.start, node.element.start + node.element.nparams))
        return [i for c in node.children for i in self._indices(c)]

    # ------------------------------------------------------------------ structure
    def series_resistors(self) -> list[str]:
        """R elements in series at the top level (no capacitive element in parallel)."""
        kids = self.root.children if self.root.op == "s" else [self.root]
        return [k.element.name for k in kids if k.op == "e" and k.element.kind == "R"]

    def arcs(self) -> list[Arc]:
        """Parallel blocks of one capacitive branch (C or CPE) and one branch of resistors (with or
        without other elements), anywhere in the circuit, in order of appearance."""
        out = []

        def walk(node):
            if node.op == "p" and len(node.children) == 2:
                caps = [c for c in node.children if c.op == "e" and c.element.kind in ("C", "CPE")]
                if len(caps) == 1:
                    other = node.children[0] if node.children[1] is caps[0] else node.children[1]
                    rs = [e.name for e in _leaves(other) if e.kind == "R"]
                    if rs:
                        out.append(Arc(rs, caps[0].element, _text(node)))
            for c in node.children:
                walk(c)

        walk(self.root)
        return out

    def lmfit_model(self):
        """An :class:`lmfit.Model` of this circuit: independent variable ``f`` (Hz), complex output
        (lmfit fits the real and imaginary parts), one parameter per ``param_names`` entry with the
        default bounds. For single fits in user code and comparisons; stacks go through
        :func:`specproc.fitting.cnls.fit_circuit`."""
        import lmfit

        names = list(self.param_names)

        import inspect

        def circuit(f, **kw):
            return self.impedance(f, {n: kw[n] for n in names})

        # lmfit reads the parameter names from the signature: give the function an explicit one
        P = inspect.Parameter
        circuit.__signature__ = inspect.Signature([P("f", P.POSITIONAL_OR_KEYWORD)] +
                                                  [P(n, P.KEYWORD_ONLY, default=1.0) for n in names])
        circuit.__name__ = "circuit"
        model = lmfit.Model(circuit, independent_vars=["f"])
        for n, lo, hi in zip(names, self.lo, self.hi):
            model.set_param_hint(n, min=lo, max=hi)
        return model


def _leaves(node: _Node) -> list[Element]:
    if node.op == "e":
        return [node.element]
    return [e for c in node.children for e in _leaves(c)]


def _text(node: _Node) -> str:
    if node.op == "e":
        return node.element.name
    inner = [_text(c) for c in node.children]
    return "-".join(inner) if node.op == "s" else "p(" + ",".join(inner) + ")"


def arc_capacitance(kind: str, r: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Effective capacitance (F) of an arc: ``C`` for R||C; Brug/Hsu–Mansfeld
    ``C = Q^(1/n) R^((1-n)/n)`` for R||CPE (``p`` = (Q,) or (Q, n) arrays)."""
    if kind == "C":
        return np.asarray(p[0], float)
    q, n = np.asarray(p[0], float), np.asarray(p[1], float)
    with np.errstate(all="ignore"):
        return q ** (1 / n) * np.asarray(r, float) ** ((1 - n) / n)


def arc_frequency(kind: str, r: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Characteristic frequency (Hz) of an arc, ``1 / (2 pi tau)`` with ``tau = R C`` or ``(R Q)^(1/n)``."""
    r = np.asarray(r, float)
    with np.errstate(all="ignore"):
        tau = r * np.asarray(p[0], float) if kind == "C" else (r * np.asarray(p[0], float)) ** (1 / np.asarray(p[1], float))
        return 1.0 / (2 * np.pi * tau)
