"""A small thread pool for independent Open API calls, safe against nested waits.

Independent calls of one job (realtime chunks, pages 2..n of a list, the fault query beside the
realtime wave) go out together, so a refresh costs about one round trip instead of one per call.
"""
from __future__ import annotations

import queue
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Generator, Generic, Iterable, List, Optional, Tuple, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_Outcome = Tuple[int, Any, Optional[BaseException]]

# The pool's threads are named <prefix>_<n>: leak checks tell them (a bounded pool) apart by it.
THREAD_NAME_PREFIX = "isolarcloud"


class CallPool:
    """``max_workers`` threads; :meth:`completed` fans a function out over items.

    A caller that is itself one of the pool's threads (a submitted job that pages, say) works
    through the items too, so a pool full of waiting callers still makes progress.
    """

    def __init__(self, max_workers: int) -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        self.max_workers = max_workers
        self._local = threading.local()
        self._executor = ThreadPoolExecutor(max_workers, thread_name_prefix=THREAD_NAME_PREFIX,
                                            initializer=self._mark_worker)

    def _mark_worker(self) -> None:
        self._local.worker = True

    def submit(self, fn: Callable[..., R], *args: Any, **kwargs: Any) -> "Future[R]":
        """Run ``fn(*args, **kwargs)`` on the pool."""
        return self._executor.submit(fn, *args, **kwargs)

    def completed(self, fn: Callable[[T], R], items: Iterable[T]
                  ) -> Generator[Tuple[T, R], None, None]:
        """``(item, fn(item))`` for every item, in the order they complete, up to
        ``max_workers`` at a time.  The first failure is raised, and closing the iterator early
        stops too: no further item is started, and those running are waited for, so that no
        call of the job is still on its way once it has ended."""
        work = _Work(fn, list(items))
        helping = getattr(self._local, "worker", False) or len(work.items) < 2
        try:
            for _ in range(0 if helping else min(self.max_workers, len(work.items))):
                self._executor.submit(work.run)
        except RuntimeError:          # closed: the caller does the work itself
            helping = True
        try:
            for _ in work.items:
                index, result, error = work.next_outcome(helping)
                if error is not None:
                    raise error
                yield work.items[index], result
        finally:
            work.finish()

    def close(self) -> None:
        """Start nothing more; calls already running finish on their own."""
        self._executor.shutdown(wait=False, cancel_futures=True)


class _Work(Generic[T, R]):
    """Items handed out one at a time to whoever asks: pool threads and a helping caller."""

    def __init__(self, fn: Callable[[T], R], items: List[T]) -> None:
        self.fn = fn
        self.items = items
        self._next = 0                  # items handed out so far
        self._reported = 0              # outcomes taken by the caller
        self._stopped = False
        self._lock = threading.Lock()
        self._outcomes: "queue.SimpleQueue[_Outcome]" = queue.SimpleQueue()

    def _claim(self) -> Optional[int]:
        with self._lock:
            if self._stopped or self._next >= len(self.items):
                return None
            self._next += 1
            return self._next - 1

    def _run_one(self, index: int) -> None:
        try:
            self._outcomes.put((index, self.fn(self.items[index]), None))
        except BaseException as exc:  # noqa: B036 - handed to the caller, which raises it
            self._outcomes.put((index, None, exc))

    def run(self) -> None:
        """A pool thread: run items until none is left."""
        index = self._claim()
        while index is not None:
            self._run_one(index)
            index = self._claim()

    def next_outcome(self, helping: bool) -> _Outcome:
        """The next finished item; a helping caller runs unclaimed items while none is ready."""
        while helping:
            try:
                return self._take(block=False)
            except queue.Empty:
                index = self._claim()
                if index is None:
                    break
                self._run_one(index)
        return self._take(block=True)

    def _take(self, block: bool) -> _Outcome:
        outcome = self._outcomes.get(block=block)
        self._reported += 1
        return outcome

    def finish(self) -> None:
        """Hand out no more items and wait for those handed out."""
        with self._lock:
            self._stopped = True
            started = self._next
        while self._reported < started:
            self._take(block=True)
