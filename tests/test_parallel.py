"""Independent fits side by side: results in order, progress from the caller, errors surface, BLAS pinned."""

from __future__ import annotations

import os
import threading

import pytest
from threadpoolctl import threadpool_info

from ser_core.parallel import fold_jobs, run_folds


def test_results_keep_the_tasks_order_and_progress_runs_in_the_calling_thread():
    import time

    caller = threading.get_ident()
    calls: list[tuple[int, int, int]] = []

    def slow_first(i: int) -> int:
        time.sleep(0.2 if i == 0 else 0.0)  # the first task finishes last
        return i * i

    out = run_folds(
        slow_first, range(5), n_jobs=2, progress=lambda d, t: calls.append((d, t, threading.get_ident()))
    )
    assert out == [0, 1, 4, 9, 16]
    assert [(d, t) for d, t, _ in calls] == [(d, 5) for d in range(6)]  # 0: the stage has begun
    assert {who for *_, who in calls} == {caller}


def test_tasks_really_run_side_by_side_and_one_job_runs_them_in_turn():
    barrier = threading.Barrier(2, timeout=10)
    assert run_folds(lambda i: barrier.wait() is not None and i, [0, 1], n_jobs=2) == [0, 1]
    # In turn, the first task would wait for a second that never comes.
    lonely = threading.Barrier(2, timeout=0.2)
    with pytest.raises(threading.BrokenBarrierError):
        run_folds(lambda i: lonely.wait(), [0, 1], n_jobs=1)


def test_an_error_in_a_task_reaches_the_caller():
    def boom(i: int) -> int:
        if i == 2:
            raise ValueError("fold 2 failed")
        return i

    with pytest.raises(ValueError, match="fold 2 failed"):
        run_folds(boom, range(4), n_jobs=2)


def test_blas_is_pinned_to_one_thread_inside_and_restored_after():
    def blas_threads() -> set[int]:
        return {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}

    before = blas_threads()
    inside = run_folds(lambda _: blas_threads(), [0, 1], n_jobs=2)
    assert inside == [{1}, {1}] or not before  # (no BLAS library found: nothing to pin)
    assert blas_threads() == before


def test_job_count(monkeypatch):
    monkeypatch.setenv("SER_FIT_JOBS", "3")
    assert fold_jobs(None, 10) == 3 and fold_jobs(None, 2) == 2 and fold_jobs(1, 10) == 1
    monkeypatch.delenv("SER_FIT_JOBS")
    assert fold_jobs(None, 10) >= 1 and fold_jobs(None, 0) == 1
    from ser_core.errors import ConfigError

    for bad in ("two", "0", "-1", "1.5"):
        monkeypatch.setenv("SER_FIT_JOBS", bad)
        with pytest.raises(ConfigError, match="SER_FIT_JOBS must be a whole number of threads"):
            fold_jobs(None, 4)


def test_nested_folds_run_in_turn_inside_a_worker(monkeypatch):
    monkeypatch.delenv("SER_FIT_JOBS", raising=False)
    inner = run_folds(lambda _: fold_jobs(None, 2), [0, 1], n_jobs=2)
    assert inner == [1, 1]  # two outer threads already hold the cores
    assert fold_jobs(None, 2) == min(2, os.cpu_count() or 1)
