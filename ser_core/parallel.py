"""Independent fits side by side: cross-validation folds, held-out corpora, a model's two heads."""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import TypeVar

from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

from .errors import ConfigError

T = TypeVar("T")
R = TypeVar("R")
_worker = threading.local()


def _mark_worker() -> None:
    _worker.inside = True


def fold_jobs(n_jobs: int | None, n_tasks: int) -> int:
    """Threads for ``n_tasks`` independent fits: ``n_jobs``, else one per core (``SER_FIT_JOBS`` overrides), or
    one inside a ``run_folds`` thread (a fold that fits two heads fits them in turn)."""
    if n_jobs is None:
        if getattr(_worker, "inside", False):
            return 1  # already one of run_folds' threads: the cores are taken, more would only cost memory
        raw = os.environ.get("SER_FIT_JOBS", "").strip()
        if raw and not (raw.isdigit() and int(raw) > 0):
            raise ConfigError(f"SER_FIT_JOBS must be a whole number of threads (1, 2, ...), not {raw!r}")
        n_jobs = int(raw) if raw else (os.cpu_count() or 1)
    return max(1, min(n_jobs, n_tasks))


def run_folds(
    fn: Callable[[T], R],
    tasks: Sequence[T],
    *,
    n_jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[R]:
    """``[fn(t) for t in tasks]`` over up to ``fold_jobs`` threads, in order; ``progress(done, total)`` is
    called from the calling thread at the start (done 0) and as tasks finish.

    Threads, not processes: a fit spends its time in NumPy/SciPy calls that release the GIL, and threads share
    the feature matrix instead of copying it. BLAS is pinned to one thread for the whole parallel region, so
    the fits' own pinning (``train.fit``) cannot restore a many-threaded BLAS under a sibling fit; likewise
    the warning filter (``warnings.catch_warnings`` is process-wide, so siblings could undo each other's)."""
    tasks = list(tasks)
    jobs = fold_jobs(n_jobs, len(tasks))
    if progress:
        progress(0, len(tasks))  # the stage has begun (its first task may take a while)
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if jobs == 1:
            out = []
            for i, t in enumerate(tasks):
                out.append(fn(t))
                if progress:
                    progress(i + 1, len(tasks))
            return out
        results: list = [None] * len(tasks)
        with ThreadPoolExecutor(jobs, thread_name_prefix="ser-fit", initializer=_mark_worker) as pool:
            futures = {pool.submit(fn, t): i for i, t in enumerate(tasks)}
            for done, fut in enumerate(as_completed(futures), 1):
                results[futures[fut]] = fut.result()
                if progress:
                    progress(done, len(tasks))
        return results
