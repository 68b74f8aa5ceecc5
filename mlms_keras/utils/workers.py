"""Worker processes for batch jobs that notice a dead worker instead of waiting for it forever.

`multiprocessing.Pool` waits forever for a task whose worker was killed (the out-of-memory killer, a crash in a C
library): the batch job hangs with no message. `concurrent.futures.ProcessPoolExecutor` notices the death and fails
every unfinished task with `BrokenProcessPool`. `SurvivingWorkers` builds on it: the tasks that were in flight are
retried once, one at a time in a fresh pool, so that a second death names the item that causes it. That item's
outcome is `on_death(argument)` (the job reports it as skipped) and the others go on.

Used by `mlms prepare` (`mlms_keras.data.prepare.shards`), `mlms align` (`mlms_keras.align.corpus`) and the teacher
corpus build (`mlms_keras.data.teacher.build`).

Example:
    >>> workers = SurvivingWorkers(square, 2, on_death=lambda x: None)  # doctest: +SKIP
    >>> list(workers.map(range(5)))                                        # doctest: +SKIP
    [0, 1, 4, 9, 16]
"""

from __future__ import annotations

import collections
import concurrent.futures
import concurrent.futures.process
import itertools
import logging
import multiprocessing
from collections.abc import Callable, Iterable, Iterator

__all__ = ["SurvivingWorkers"]

logger = logging.getLogger(__name__)


class SurvivingWorkers:
    """Spawned worker processes that map a function over items in input order and survive a worker's death.

    Args:
        function: a picklable module-level function of one argument.
        workers: processes (>= 1).
        on_death: argument -> the outcome to yield for an item whose worker died twice.
        initializer, initargs: run once in each new worker process.
        window: at most this many tasks in flight (default `4 * workers`), so finished outcomes cannot pile up in
            memory if the consumer falls behind.
        description: what an item is, for the warning ("utterances").

    The processes are spawned, not forked: the calling process may hold TensorFlow's threads.
    """

    def __init__(
        self,
        function: Callable,
        workers: int,
        *,
        on_death: Callable,
        initializer: Callable | None = None,
        initargs: tuple = (),
        window: int | None = None,
        description: str = "items",
    ):
        self.function, self.workers, self.on_death = function, int(workers), on_death
        self.initializer, self.initargs = initializer, tuple(initargs)
        self.window = int(window) if window is not None else 4 * self.workers
        self.description = description
        self.pool = None

    def _start(self) -> None:
        self.close()
        self.pool = concurrent.futures.ProcessPoolExecutor(
            self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=self.initializer,
            initargs=self.initargs,
        )

    def close(self) -> None:
        """Stops the workers (a dead pool's survivors too)."""
        if self.pool is not None:
            for process in list((getattr(self.pool, "_processes", None) or {}).values()):
                if process.is_alive():
                    process.terminate()
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None

    def __enter__(self) -> SurvivingWorkers:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _alone(self, argument):
        """A suspect's retry, alone in the pool: its outcome, or `on_death` (and a fresh pool) if it dies again."""
        try:
            return self.pool.submit(self.function, argument).result()
        except concurrent.futures.process.BrokenProcessPool:
            self._start()
            return self.on_death(argument)

    def _submit(self, argument) -> concurrent.futures.Future:
        """`argument`'s task in the pool; a pool already broken gives a future that fails as its task would."""
        try:
            return self.pool.submit(self.function, argument)
        except concurrent.futures.process.BrokenProcessPool as error:
            failed = concurrent.futures.Future()
            failed.set_exception(error)
            return failed

    def map(self, arguments: Iterable) -> Iterator:
        """Yields `function(argument)` (or `on_death(argument)`) for each argument, in order."""
        self._start()
        in_flight = collections.deque()
        remaining = iter(arguments)
        in_flight.extend((argument, self._submit(argument)) for argument in itertools.islice(remaining, self.window))
        while in_flight:
            argument, future = in_flight.popleft()
            try:
                outcome = future.result()
            except concurrent.futures.process.BrokenProcessPool:
                suspects = [argument] + [queued for queued, _ in in_flight]
                logger.warning(
                    "a worker process died; retrying the %d %s it may have been working on, one at a time",
                    len(suspects),
                    self.description,
                )
                self._start()
                for suspect in suspects:
                    yield self._alone(suspect)
                in_flight.clear()
                in_flight.extend((queued, self._submit(queued)) for queued in itertools.islice(remaining, self.window))
                continue
            for queued in itertools.islice(remaining, 1):
                in_flight.append((queued, self._submit(queued)))
            yield outcome
