"""The progress bar of the commands and the pipeline: the first file's wait is the libraries loading,
not a rate; the ETA is measured from the steady work (a 41-minute ETA for a 2-minute run was the bug)."""
from __future__ import annotations

import io

import pytest


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def _bar(total, initial=0):
    from specproc.execute import progress_bar

    out = io.StringIO()
    clock = Clock()
    bar = progress_bar(total, "run", initial=initial, file=out)
    bar._time = clock           # a deterministic clock (tqdm reads time through this attribute)
    bar.start_t = bar.last_print_t = clock.t
    bar.mininterval = 0
    return bar, clock, out


def _eta(bar) -> float:
    d = bar.format_dict
    rate = d["rate"] if d["rate"] is not None else (d["n"] - d["initial"]) / d["elapsed"]
    return (d["total"] - d["n"]) / rate


def test_loading_is_said_until_the_first_input():
    from specproc.execute import LOADING

    bar, clock, out = _bar(1000)
    first = out.getvalue().rsplit("\r", 1)[-1]
    assert LOADING in first and "file/s" not in first and "<" not in first     # no rate, no ETA yet
    clock.t += 60.0              # one minute importing and compiling before the first file is done
    bar.update()
    text = out.getvalue().rsplit("\r", 1)[-1]
    assert LOADING not in text and "1/1000" in text and "<?" in text   # no ETA from the loading time
    bar.close()


def test_eta_from_the_steady_rate():
    bar, clock, out = _bar(1000)
    clock.t += 60.0
    bar.update()
    clock.t += 0.1               # then 0.1 s per file
    bar.update()
    # right after the first steady file: 998 left at 10 files/s (a rate over the loading: ~8 hours)
    assert _eta(bar) == pytest.approx(99.8, rel=0.05)
    for _ in range(19):
        clock.t += 0.1
        bar.update()
    # 979 files left at 10 files/s: ~98 s, where a rate over the loading time gives ~ 47 minutes
    assert _eta(bar) == pytest.approx(97.9, rel=0.05)
    assert bar.format_dict["elapsed"] == pytest.approx(62.0)    # elapsed still counts the loading
    assert "<01:3" in out.getvalue().rsplit("\r", 1)[-1]
    bar.close()


def test_cached_inputs_count_but_do_not_set_the_rate():
    bar, clock, out = _bar(100, initial=50)       # the pipeline: 50 results from the cache
    clock.t += 30.0
    bar.update()
    for _ in range(9):
        clock.t += 0.5
        bar.update()
    assert bar.n == 60 and _eta(bar) == pytest.approx(20.0, rel=0.05)
    bar.close()


def test_disabled_bar_is_silent():
    from specproc.execute import progress_bar

    out = io.StringIO()
    bar = progress_bar(10, "run", disable=True, file=out)
    bar.update()
    bar.close()
    assert out.getvalue() == ""


def test_commands_and_pipeline_use_it():
    """One bar for every entry point: the command runner and the pipeline runner build it."""
    import inspect

    import specproc.pipeline.runner as prun
    import specproc.runner as crun

    assert "progress_bar(" in inspect.getsource(crun._progress)
    assert "progress_bar(" in inspect.getsource(prun._run_locked) and "tqdm(" not in inspect.getsource(prun)


def test_nothing_to_do_never_says_loading():
    from specproc.execute import LOADING

    bar, clock, out = _bar(10, initial=10)          # every result from the cache
    bar.close()
    assert LOADING not in out.getvalue()
    bar, clock, out = _bar(10)                      # closed before any input was done (an error)
    bar.close()
    assert LOADING not in out.getvalue().rsplit("\r", 1)[-1]
