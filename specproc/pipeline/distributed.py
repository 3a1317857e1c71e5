"""Running pipeline tasks on a Dask distributed cluster (``--scheduler tcp://HOST:PORT``).

Workers must have specproc (and any plugin package the pipeline uses) installed; they read
the input files by absolute path, so the files must be visible to them (shared filesystem).
"""
from __future__ import annotations

from collections.abc import Iterator

from ..core.errors import ParameterError


def run_tasks_dask(tasks: list, scheduler, func) -> Iterator:
    """Yield ``func(task)`` outcomes as they complete on the cluster.

    Parameters
    ----------
    scheduler : str or distributed.Client
        Scheduler address (``tcp://host:8786``) or an existing client (not closed here).
    func : callable
        Module-level (picklable) task function.
    """
    from distributed import Client, as_completed

    own = isinstance(scheduler, str)
    try:
        client = Client(scheduler, timeout="20s") if own else scheduler
    except Exception as exc:  # connection problems become one clear error
        raise ParameterError(f"cannot connect to Dask scheduler: {type(exc).__name__}: {exc}",
                             str(scheduler)) from None
    try:
        futures = client.map(func, tasks, pure=False)
        for fut in as_completed(futures):
            yield fut.result()
    finally:
        if own:
            client.close()
