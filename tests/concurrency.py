"""Run the same action from several threads at once, for the concurrency tests."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def run_together(count: int, action: Callable[[int, Callable[[], None]], Any], timeout: float = 60) -> list[Any]:
    """Run ``action(index, go)`` in ``count`` threads; returns their results by index.

    Each action does its own setup, then calls ``go()``, which waits until every thread is
    ready, so the part that follows really runs at the same moment. The first exception
    raised in any thread is raised here, after all threads have finished.
    """
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def go() -> None:
        barrier.wait(timeout=timeout / 3)

    def run(index: int) -> None:
        try:
            results[index] = action(index, go)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(t.is_alive() for t in threads), "a racing thread did not finish in time"
    if errors:
        raise errors[0]
    return results
