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
    import specproc.execute as execute

    execute.worker_init = lambda parent: None

PAUSE = os.environ.get("FAKE_CLI_PAUSE_AT")  # stop at a chosen moment so a test can kill -9 there
if PAUSE:
    import time

    import specproc.pipeline.store as store

    def _pause():
        print(f"PAUSED {PAUSE}", file=sys.stderr, flush=True)
        time.sleep(60)

    if PAUSE == "exports":  # half of the exports written
        orig_exports = store.write_exports

        def write_exports(folder, tables, doc):
            store.atomic_write(Path(folder) / "quantities.csv", lambda tmp: tables["quantities"].to_csv(tmp))
            _pause()
            return orig_exports(folder, tables, doc)

        store.write_exports = write_exports
    elif PAUSE == "store":  # rows inserted, transaction not committed
        orig_ensure = store._ensure_schema

        def ensure_then_insert_and_pause(con):
            orig_ensure(con)
            con.execute("INSERT INTO runs (run_id) VALUES ('half-written')")
            _pause()

        store._ensure_schema = ensure_then_insert_and_pause

from specproc.cli import main  # noqa: E402

sys.exit(main(sys.argv[1:]))
