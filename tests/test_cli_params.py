"""#22 item 3: every technique command's options are generated from its processor's pydantic Params.

For every command: each field with a command-line form has an option (none dropped silently), with
the field's choices, bounds and default semantics (argparse default None: the Params keep theirs); a
bad value exits 2 naming the option; old spellings still work for one release with a
DeprecationWarning (options here, parameter names in :mod:`specproc.core.params`).
"""
from __future__ import annotations

import argparse
import warnings

import pytest
from pydantic import ValidationError

from specproc import plugins
from specproc.cli import build_parser
from specproc.cliargs import PARAMS_DEST, SCHEMA_DEST, _bounds, _literal_values, _spec, _strip_optional, \
    _unannotate, _validators, params_from_args, peaks_arg

#: the technique commands (a technique with a CLI that is not here fails test_every_command_is_checked)
COMMANDS = ("nmr", "xrd", "ftir", "eels", "xps", "afm", "echem")


def _sub(name: str) -> argparse.ArgumentParser:
    ap = build_parser(only=name)
    sub = next(a for a in ap._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


@pytest.fixture(scope="module", params=COMMANDS)
def command(request):
    p = _sub(request.param)
    return request.param, p, p.get_default(PARAMS_DEST), p.get_default(SCHEMA_DEST)


def _action(parser, dest):
    return next(a for a in parser._actions if a.dest == dest and a.help is not argparse.SUPPRESS)


def test_every_command_is_checked():
    with_cli = [n for n, mod in plugins.loaded("techniques").items() if getattr(mod, "add_cli", None)]
    assert set(with_cli) <= set(COMMANDS), f"add the new command(s) {set(with_cli) - set(COMMANDS)} to COMMANDS"


def test_every_field_with_a_command_line_form_has_an_option(command):
    name, parser, mapping, schema = command
    assert schema is not None and mapping, name
    missing = [f for f, info in schema.model_fields.items() if f not in mapping and _spec(f, info) is not None]
    assert not missing, f"{name}: Params fields without an option: {missing}"
    # and every option given reaches the Params under its field name (no typing of names again)
    assert set(mapping) <= set(schema.model_fields)


def test_options_carry_the_fields_choices_bounds_and_defaults(command):
    name, parser, mapping, schema = command
    for field, dest in mapping.items():
        info = schema.model_fields[field]
        act = _action(parser, dest)
        assert act.default is None, (name, field)           # only given options reach the Params
        base, _ = _strip_optional(info.annotation)
        base = _unannotate(base)[0]
        lits = _literal_values(base)
        if lits is not None:
            if act.choices is not None:
                assert list(act.choices) == list(lits), (name, field)
            else:                            # a richer parser (nmr --shape): the same choices, the rest refused
                assert [act.type(v) for v in lits] == list(lits), (name, field)
                with pytest.raises(argparse.ArgumentTypeError):
                    act.type("not-a-choice")
            for v in lits:                   # every choice is one the Params accept (cross-field rules aside)
                try:
                    schema.model_validate({field: v})
                except ValidationError as exc:
                    assert all(e["type"] == "value_error" and e["loc"] == () for e in exc.errors()), exc
        if base is bool:
            assert isinstance(act, argparse.BooleanOptionalAction), (name, field)
        d = info.get_default(call_default_factory=True)
        if d not in (None, [], {}) and not isinstance(d, bool):
            shown = f"{d:g}" if isinstance(d, float) else str(d)
            assert shown in act.help or "default" in (info.description or ""), (name, field, act.help)
    # nothing given: the Params' own defaults, from one place
    args = parser.parse_args(["x"])
    assert params_from_args(args) == {}
    assert schema.model_validate(params_from_args(args)) == schema()


def test_numeric_bounds_are_the_params_bounds(command, capsys):
    """At the bound (if included) the command line and the Params both accept; just outside, argparse
    exits 2 naming the option -- the same rule, written once in the field."""
    name, parser, mapping, schema = command
    checked = 0
    for field, dest in mapping.items():
        info = schema.model_fields[field]
        base, _ = _strip_optional(info.annotation)
        base, meta = _unannotate(base)
        if base not in (int, float):
            continue
        b = _bounds([*meta, *info.metadata])
        if "positive" in _validators([*meta, *info.metadata]):      # PositiveOrNone: > 0
            b.update(minimum=0, strict=True)
        opt = next(s for s in _action(parser, dest).option_strings)
        integer = base is int
        step = 1 if integer else 1e-9 * max(1.0, abs(b.get("minimum", 0) or 0))
        for key, strict, sign in (("minimum", "strict", -1), ("maximum", "strict_max", +1)):
            if key not in b:
                continue
            edge = b[key]
            inside = edge if not b[strict] else (edge - sign * step)
            outside = edge + sign * step if not b[strict] else edge
            val = parser.parse_args(["x", opt, repr(int(inside) if integer else inside)])
            got = params_from_args(val)[field]
            assert getattr(schema.model_validate({field: got}), field) == pytest.approx(got), (name, field)
            with pytest.raises(SystemExit) as e:
                parser.parse_args(["x", opt, repr(int(outside) if integer else outside)])
            assert e.value.code == 2
            assert opt in capsys.readouterr().err, (name, field)
            with pytest.raises(Exception):
                schema.model_validate({field: int(outside) if integer else outside})
            checked += 1
    assert checked >= 2, name          # every command has bounded numeric options


@pytest.mark.parametrize("argv", [
    ["ftir", "--n-peaks", "0"], ["ftir", "--n-bands", "0"], ["ftir", "--region", "5:5"],
    ["ftir", "--atmosphere", "foo"], ["ftir", "--snr", "0"], ["nmr", "--n-peaks", "0"], ["nmr", "--mas-rate", "-5"],
    ["nmr", "--peaks", "BH4=x"], ["nmr", "--lineshape", "cauchy"], ["xrd", "--instrument-fwhm", "-0.1"],
    ["xrd", "--caglioti", "1,2"], ["xrd", "--scan-type", "rsm"], ["eels", "--background", "spline"],
    ["eels", "--region", "180"], ["xps", "--background", "smart"], ["xps", "--detection-limit", "0"],
    ["xps", "--line", "Si 2p"], ["afm", "--poisson", "0.7"], ["afm", "--level", "median"],
    ["echem", "--thickness-cm", "-0.1"], ["echem", "--area-cm2", "0"], ["echem", "--region", "1:nan"]])
def test_a_bad_value_exits_2_naming_the_option(argv, capsys):
    from specproc.cli import main

    with pytest.raises(SystemExit) as e, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        main([argv[0], "some_file", *argv[1:]])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {argv[1]}" in err or argv[1] in err, err


def test_values_reach_the_params_under_the_field_names():
    p = _sub("xrd")
    a = p.parse_args(["f", "--wavelength", "0.15406", "--region", "20:60", "--snr", "4", "--no-kalpha2",
                      "--reference", "a.cif", "--reference", "b,c.cif", "--phases", "LiBH4,LiH", "--phases", "Li"])
    got = params_from_args(a)
    assert got == {"wavelength_nm": 0.15406, "region": (20.0, 60.0), "snr": 4.0,
                   "kalpha2": False, "references": ["a.cif", "b,c.cif"], "phases": ["LiBH4", "LiH", "Li"]}
    params = plugins.get("processors", "xrd.analyse").validate(got)
    assert params.region == (20.0, 60.0) and params.kalpha2 is False
    assert params.two_theta_range == params.region       # the old name still reads (code not yet switched)
    x = _sub("xps").parse_args(["f", "--line", "block 3=Si 2p", "--line", "block 5 = C 1s"])
    assert params_from_args(x) == {"lines": {"block 3": "Si 2p", "block 5": "C 1s"}}
    n = _sub("nmr").parse_args(["f", "--sideband-orders", "3", "--no-sidebands"])
    assert params_from_args(n) == {"sideband_orders": 3, "sidebands": False}
    assert params_from_args(_sub("nmr").parse_args(["f", "--sideband-orders", "auto"])) == {"sideband_orders": "auto"}


def test_one_peaks_parser():
    assert peaks_arg("-44.3,-41.2") == [-44.3, -41.2]
    assert peaks_arg("BH4=-41, NBH3=-25") == {"BH4": -41.0, "NBH3": -25.0}
    for bad in ("A=1,A=2", "A=", "=3", "A=nan", "1,x", ","):
        with pytest.raises(argparse.ArgumentTypeError):
            peaks_arg(bad)
    # the same parser for every technique's peaks
    for cmd, opt in (("nmr", "--peaks"), ("ftir", "--peaks")):
        a = _sub(cmd).parse_args(["f", opt, "A=10,B=20"])
        assert next(v for k, v in params_from_args(a).items() if isinstance(v, dict)) == {"A": 10.0, "B": 20.0}


def test_old_option_spellings_warn_and_still_work(capsys):
    p = _sub("ftir")
    with pytest.warns(DeprecationWarning) as got:
        a = p.parse_args(["f", "--bands", "2300,2225", "--n-bands", "2"])
    assert [str(w.message).split(" is ")[0] + " -> " + str(w.message).split("use ")[1] for w in got] == [
        "--bands -> --peaks", "--n-bands -> --n-peaks"]
    assert params_from_args(a) == {"peaks": [2300.0, 2225.0], "n_peaks": 2}      # the new field names
    assert "--bands" not in p.format_help()                    # one name shown
    assert "note: --bands is deprecated" in capsys.readouterr().err
    with pytest.warns(DeprecationWarning, match="--freq-range"):
        a = _sub("echem").parse_args(["f", "--freq-range", "1:1e5"])
    assert params_from_args(a) == {"region": (1.0, 1e5)}


def test_old_parameter_names_one_shared_rule():
    """core.params: a renamed field accepts its old name for one release (DeprecationWarning), refuses
    both at once, and old attribute reads still work -- in every Params, not per technique."""
    from typing import ClassVar

    from specproc.core.errors import ParameterError
    from specproc.core.params import ProcessorParams, validate_params

    class P(ProcessorParams):
        renamed: ClassVar[dict[str, str]] = {"old_width": "width"}
        width: float = 1.0

    with pytest.warns(DeprecationWarning, match="'old_width' is deprecated.*'width'"):
        p = validate_params(P, {"old_width": 2.5})
    assert p.width == 2.5 and p.old_width == 2.5 and p.model_dump() == {"width": 2.5}
    with pytest.raises(ParameterError, match="old name"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        validate_params(P, {"old_width": 1.0, "width": 2.0})
    with pytest.raises(AttributeError):
        p.not_a_field
    with pytest.warns(DeprecationWarning):
        p.old_width = 4.0                                       # old name assigned: the new field changes
    assert p.width == 4.0 and "old_width" not in p.__dict__
    with pytest.warns(DeprecationWarning):
        q = p.model_copy(update={"old_width": 5.0})
    assert q.width == 5.0 and p.width == 4.0 and "old_width" not in q.__dict__
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)   # the new name never warns
        assert validate_params(P, {"width": 3.0}).width == 3.0


def test_help_reads_well(command):
    """Help of every option: the field's description, no unformatted markup or Python reprs."""
    name, parser, mapping, schema = command
    text = parser.format_help()
    for bad in ("``", ":func:", ":class:", "None:", "typing.", "<class", "%("):
        assert bad not in text, (name, bad)
    for field, dest in mapping.items():
        assert _action(parser, dest).help.strip(), (name, field)


def test_nmr_shape_one_name(capsys):
    """``--shape`` (vocabulary) sets every component's shape or per-peak shapes; ``--lineshape`` and the
    ``lineshape`` parameter are its old names (one release)."""
    from specproc.techniques.nmr.cli import peaks_with_shapes

    p = _sub("nmr")
    assert params_from_args(p.parse_args(["f", "--shape", "lorentzian"])) == {"shape": "lorentzian"}
    a = p.parse_args(["f", "--peaks", "A=-41,B=-25", "--shape", "B=czjzek"])
    assert a.shape == {"B": "czjzek"}
    assert peaks_with_shapes(a.peaks, a.shape) == [{"name": "A", "center": -41.0},
                                                   {"name": "B", "center": -25.0, "shape": "czjzek"}]
    with pytest.warns(DeprecationWarning, match="--lineshape"):
        old = p.parse_args(["f", "--lineshape", "gaussian"])
    assert params_from_args(old) == {"shape": "gaussian"}
    capsys.readouterr()
    proc = plugins.get("processors", "nmr.deconvolve")
    with pytest.warns(DeprecationWarning, match="'lineshape' is deprecated"):
        params = proc.validate({"lineshape": "voigt"})
    assert params.shape == "voigt" and params.lineshape == "voigt" and "lineshape" not in params.model_dump()

