"""`SurvivingWorkers`: a worker killed mid-task is noticed, its task retried, and a task that kills its worker twice
is reported through `on_death` while every other task finishes, in input order."""

import os
import signal

from mlms_keras.utils.workers import SurvivingWorkers

FATAL = 7


def square_or_die(value: int) -> int:
    if value == FATAL:  # the out-of-memory killer's way: SIGKILL, no Python cleanup
        os.kill(os.getpid(), signal.SIGKILL)
    return value * value


def died(value: int) -> str:
    return f"died on {value}"


def test_a_task_that_kills_its_worker_is_reported_and_the_others_finish_in_order():
    with SurvivingWorkers(square_or_die, 2, on_death=died, window=3) as workers:
        outcomes = list(workers.map(range(12)))
    assert outcomes == [value * value if value != FATAL else f"died on {FATAL}" for value in range(12)]


def test_without_deaths_the_outcomes_are_the_function_values_in_order():
    with SurvivingWorkers(square_or_die, 2, on_death=died) as workers:
        assert list(workers.map([3, 1, 2])) == [9, 1, 4]
        assert list(workers.map([])) == []
