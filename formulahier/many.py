"""Run many independent jobs (fits) here or on a Dask cluster: the execution layer.

:func:`run_jobs` calls ``func(job)`` for every job and returns one :class:`JobResult` per job, in
order. ``client=None`` runs on this machine: in this process when one worker fits the cores
(``chains x workers <= os.cpu_count()``), else in a pool of processes. A
:class:`dask.distributed.Client` (a ``LocalCluster`` or a remote scheduler,
``Client("tcp://host:8786")``) runs the same jobs on its workers. A job that raises is reported
with its index and error; the others still return. One progress bar (stderr) covers the jobs.

This layer sits on top of everything: it uses the public API only, and nothing below imports it.
``func`` must be importable by the workers (a module-level function), and jobs picklable.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any

from .errors import OptionError
from .progress import quiet_logger

__all__ = [
    "JobResult",
    "Progress",
    "check_client",
    "compile_for_data",
    "local_workers",
    "quiet_pymc",
    "run_jobs",
    "sample_with_data",
]

DASK_HINT = (
    "Running on a Dask cluster needs dask.distributed: install it with "
    "`pip install 'formulahier[dask]'` (or `pip install 'dask[distributed]'`)."
)


@dataclass
class JobResult:
    """What one job returned, or why it failed.

    ``index`` is the job's position in the list; ``value`` its return value (``None`` when it
    failed); ``error`` ``"ErrorType: message"`` or ``None``; ``seconds`` its wall time.
    """

    index: int
    value: Any = None
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether the job returned."""
        return self.error is None


def quiet_pymc() -> contextlib.AbstractContextManager[None]:
    """PyMC's info lines ("Sampling: [...]", "NUTS: [...]") once per job: silenced."""
    return quiet_logger("pymc", logging.ERROR)


def _call(func: Callable, job: Any, index: int) -> JobResult:
    """Run one job, catching its error (so one failure does not stop the others)."""
    start = time.perf_counter()
    try:
        value = func(job)
    except Exception as exc:  # noqa: BLE001 - reported with the job's index, not raised
        frames = traceback.extract_tb(exc.__traceback__)
        where = f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
        return JobResult(index, None, f"{type(exc).__name__}: {exc}{where}",
                         time.perf_counter() - start)  # fmt: skip
    return JobResult(index, value, None, time.perf_counter() - start)


class Progress:
    """One progress line on stderr: ``label [#####     ] 5/10, 1 failed, 12 s``."""

    def __init__(self, total: int, label: str, enabled: bool = True):
        self.total, self.label, self.enabled = total, label, enabled
        self.done = self.failed = 0
        self.start = time.perf_counter()
        self._draw()

    def update(self, result: JobResult) -> None:
        """Count one finished job."""
        self.done += 1
        self.failed += not result.ok
        self._draw()

    def _draw(self) -> None:
        if not self.enabled:
            return
        width = 24
        filled = width * self.done // max(self.total, 1)
        failed = f", {self.failed} failed" if self.failed else ""
        seconds = time.perf_counter() - self.start
        line = (f"\r{self.label} [{'#' * filled}{' ' * (width - filled)}] "
                f"{self.done}/{self.total}{failed}, {seconds:.0f} s")  # fmt: skip
        end = "\n" if self.done >= self.total else ""
        sys.stderr.write(line + end)
        sys.stderr.flush()


def local_workers(chains: int = 1, workers: int | None = None) -> int:
    """Worker processes for this machine: ``chains x workers <= os.cpu_count()``."""
    cores = os.cpu_count() or 1
    most = max(1, cores // max(1, int(chains)))
    if workers is None:
        return most
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise OptionError(f"workers must be a whole number >= 1, got {workers!r}.")
    if workers > most:
        raise OptionError(
            f"workers={workers} with {chains} chains each would run {workers * chains} chains "
            f"on {cores} cores; use workers <= {most} (or fewer chains)."
        )
    return workers


def check_client(client) -> Any:
    """Refuse anything that is not a ``dask.distributed.Client`` (``None`` is fine: local)."""
    if client is None:
        return None
    try:
        from distributed import Client
    except ImportError:
        raise OptionError(DASK_HINT) from None
    if not isinstance(client, Client):
        raise OptionError(
            f"client must be a dask.distributed.Client or None (run here), got "
            f"{type(client).__name__}. Start one with `from dask.distributed import Client; "
            "client = Client()` (a local cluster) or `Client('tcp://scheduler:8786')`."
        )
    return client


def dask_workers(client) -> int:
    """Number of worker threads of a Dask cluster (each runs one job at a time)."""
    return max(1, sum(client.nthreads().values()))


def run_jobs(
    func: Callable[[Any], Any],
    jobs: Sequence[Any],
    *,
    client=None,
    chains: int = 1,
    workers: int | None = None,
    progress: bool = True,
    label: str = "jobs",
) -> list[JobResult]:
    """Run ``func(job)`` for every job; one :class:`JobResult` per job, in the jobs' order.

    Parameters
    ----------
    func : callable
        A module-level function (workers import it by name).
    jobs : sequence
        Picklable arguments, one per call.
    client : dask.distributed.Client, optional
        Run on this Dask cluster; ``None``: on this machine.
    chains : int
        Chains each job samples in parallel: local workers are ``os.cpu_count() // chains``.
    workers : int, optional
        Local worker processes (at most ``os.cpu_count() // chains``); ``1`` runs in this
        process.
    progress : bool
        One progress line on stderr.
    label : str
        What the progress line calls the jobs.

    """
    client = check_client(client)
    jobs = list(jobs)
    bar = Progress(len(jobs), label, enabled=bool(progress) and len(jobs) > 0)
    results: list[JobResult | None] = [None] * len(jobs)

    def record(result: JobResult) -> None:
        results[result.index] = result
        bar.update(result)

    if client is not None:
        from distributed import as_completed as dask_completed

        futures = client.map(_call, [func] * len(jobs), jobs, range(len(jobs)), pure=False)
        for future in dask_completed(futures):
            try:
                record(future.result())
            except Exception as exc:  # noqa: BLE001 - a worker died: report, keep the others
                record(JobResult(futures.index(future), None, f"{type(exc).__name__}: {exc}"))
        return results  # type: ignore[return-value]
    n = min(local_workers(chains, workers), max(1, len(jobs)))
    if n == 1:
        for index, job in enumerate(jobs):
            record(_call(func, job, index))
        return results  # type: ignore[return-value]
    _check_main_guard()
    # forkserver/spawn: the workers do not inherit this process's threads (PyTensor, BLAS)
    with ProcessPoolExecutor(max_workers=n, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(_call, func, job, i): i for i, job in enumerate(jobs)}
        for future in as_completed(futures):
            try:
                record(future.result())
            except Exception as exc:  # noqa: BLE001 - a worker process died
                hint = _GUARD_HINT if isinstance(exc, BrokenProcessPool) else ""
                record(JobResult(futures[future], None, f"{type(exc).__name__}: {exc}{hint}"))
    return results  # type: ignore[return-value]


_GUARD_HINT = (
    " (worker processes re-import the script that started them: in a script, call fit.kfold(), "
    "fh.sbc() or fh.fit_many() under `if __name__ == \"__main__\":`, or pass workers=1)"
)


def _check_main_guard() -> None:
    """Refuse to start worker processes from a spawned child that is re-running a script.

    The workers are spawned: each imports the user's script as ``__mp_main__``; a script that
    calls ``fit.kfold()`` / ``fh.sbc()`` / ``fh.fit_many()`` at its top level, without
    ``if __name__ == "__main__":``, would start its jobs again in every worker, which Python
    stops with a bootstrapping error and a broken pool. Say so instead.
    """
    import multiprocessing

    main = sys.modules.get("__main__")
    if multiprocessing.parent_process() is not None and getattr(main, "__name__", "") == (
        "__mp_main__"
    ):
        raise OptionError(
            "These fits run in worker processes, which re-import your script: put the code "
            "that calls fit.kfold(), fh.sbc() or fh.fit_many() under "
            "`if __name__ == \"__main__\":` (Python's rule for multiprocessing), or pass "
            "workers=1 to run them in this process."
        )


def compile_for_data(pymc_model, sampler: str):
    """The model compiled by nutpie (one numba compilation; new data via ``with_data``), else None.

    ``sampler="pymc"``: None: :func:`sample_with_data` then sets the shared values and calls
    ``pymc.sample``, which compiles per call (from PyTensor's cache once the graph is known).
    """
    if sampler != "nutpie":
        return None
    import nutpie

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return nutpie.compile_pymc_model(pymc_model)


def sample_with_data(bmb_model, pymc_model, compiled, values: dict, *, draws: int, tune: int,
                     chains: int, seed: int, options: dict | None = None):  # fmt: skip
    """Posterior draws of a built model given new values of its shared data; and divergences.

    ``values``: new values by shared-variable name (``HierModel.response_data``, or
    ``fold_data`` of a collapsed plan): the same graph, new data. Returns the raw posterior (a
    Dataset, PyMC's names) and the number of divergent transitions.
    """
    import numpy as np

    options = dict(options or {})
    with warnings.catch_warnings(), quiet_pymc():
        warnings.simplefilter("ignore")
        if compiled is not None:
            import nutpie

            trace = nutpie.sample(compiled.with_data(**values), draws=draws, tune=tune,
                                  chains=chains, cores=chains, seed=seed, progress_bar=False,
                                  **options)  # fmt: skip
        else:
            import pymc as pm

            shared = bmb_model.backend.fh_response
            for name, value in values.items():
                shared[name].set_value(value)
            trace = pm.sample(draws=draws, tune=tune, chains=chains, cores=1, random_seed=seed,
                              progressbar=False, model=pymc_model,
                              compute_convergence_checks=False, **options)  # fmt: skip
    posterior = trace["posterior"]
    posterior = posterior.to_dataset() if hasattr(posterior, "to_dataset") else posterior
    stats = trace["sample_stats"] if "sample_stats" in trace else None  # none: PyMC's test mock
    return posterior, 0 if stats is None else int(np.asarray(stats["diverging"]).sum())

