"""``python _fake_cli.py run PIPELINE --out DIR ...``: the specproc CLI with the fake test plugins.

Fault-injection tests run the pipeline in real subprocesses (to kill them, run two at once or
limit their memory); the fake reader/processor from conftest.py are registered here first.
"""
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import install_fakes  # noqa: E402

install_fakes()

if os.environ.get("FAKE_CLI_NO_WORKER_GUARD"):  # to show the kill test fails without the guard
    import specproc.pipeline.runner as runner

    runner._worker_init = lambda parent: None

from specproc.cli import main  # noqa: E402

sys.exit(main(sys.argv[1:]))
