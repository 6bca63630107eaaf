"""Group commit: each thread gets its own answer or error, groups form, every wait is bounded.

Threads are coordinated with events and the primitive's own bounds (a leader gathers until
``max_items`` wait), never by sleeping and hoping.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed

import pytest

from worker.group_commit import GroupCommit, GroupTimeout

BOUND = 10.0  # seconds; a test waiting this long has failed


class Recorder:
    """The function grouped: doubles each item; may hold every call until released."""

    def __init__(self, hold: bool = False) -> None:
        self.calls: list[list[int]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        if not hold:
            self.release.set()

    def __call__(self, items: list[int]) -> list[int]:
        self.calls.append(list(items))
        self.entered.set()
        assert self.release.wait(BOUND)
        return [2 * item for item in items]


def run_in_threads(group: GroupCommit[int, int],
                   batches: list[list[int]]) -> list[Future[list[int]]]:
    pool = ThreadPoolExecutor(len(batches))
    futures = [pool.submit(group.run, batch) for batch in batches]
    pool.shutdown(wait=False)
    return futures


def test_a_thread_alone_writes_its_own_group() -> None:
    fn = Recorder()
    group = GroupCommit(fn, window=0)
    assert group.run([1, 2]) == [2, 4]
    assert group.run([]) == [] and fn.calls == [[1, 2]]
    assert (group.groups, group.items) == (1, 2)


def test_threads_arriving_together_share_one_call_and_get_their_own_answers() -> None:
    """The leader gathers until max_items wait (the window is far longer): one call for all."""
    fn = Recorder()
    group = GroupCommit(fn, window=BOUND, max_items=8)
    futures = run_in_threads(group, [[i] for i in range(8)])
    assert [f.result(BOUND) for f in futures] == [[2 * i] for i in range(8)]
    assert len(fn.calls) == 1 and sorted(fn.calls[0]) == list(range(8))


def test_an_error_reaches_every_thread_of_the_group() -> None:
    def fail(items: list[int]) -> list[int]:
        raise ValueError("ledger says no")

    group: GroupCommit[int, int] = GroupCommit(fail, window=BOUND, max_items=3)
    futures = run_in_threads(group, [[1], [2], [3]])
    for future in futures:
        with pytest.raises(ValueError, match="ledger says no"):
            future.result(BOUND)
    assert group.groups == 0


def test_an_answer_of_the_wrong_length_is_an_error_not_a_mixup() -> None:
    group: GroupCommit[int, int] = GroupCommit(lambda items: items[1:], window=0)
    with pytest.raises(RuntimeError, match="1 answers for 2 items"):
        group.run([1, 2])


def test_threads_arriving_during_a_write_form_the_next_group() -> None:
    fn = Recorder(hold=True)
    group = GroupCommit(fn, window=BOUND, max_items=2)
    first = run_in_threads(group, [[1], [2]])
    assert fn.entered.wait(BOUND)
    fn.entered.clear()
    later = run_in_threads(group, [[3], [4]])
    _wait_for(lambda: group.waiting() == 2)
    fn.release.set()
    assert sorted(f.result(BOUND)[0] for f in first + later) == [2, 4, 6, 8]
    assert [sorted(call) for call in fn.calls] == [[1, 2], [3, 4]]


def test_a_thread_no_leader_takes_in_time_writes_alone() -> None:
    """A group stuck in its write: a thread queued behind it withdraws after its bound."""
    fn = Recorder(hold=True)
    group = GroupCommit(fn, window=0, wait_seconds=0.2)
    stuck = run_in_threads(group, [[1]])
    assert fn.entered.wait(BOUND)
    released = threading.Thread(target=lambda: _wait_for(lambda: len(fn.calls) == 2)
                                and fn.release.set())
    released.start()
    assert group.run([5]) == [10]  # withdrawn, written alone once the hold is lifted
    released.join(BOUND)
    assert stuck[0].result(BOUND) == [2]
    assert fn.calls == [[1], [5]]


def test_a_thread_whose_group_is_taken_but_not_written_in_time_raises() -> None:
    fn = Recorder(hold=True)
    group = GroupCommit(fn, window=BOUND, max_items=2, wait_seconds=0.2)
    futures = run_in_threads(group, [[1], [2]])
    assert fn.entered.wait(BOUND)
    done, errors = [], []
    for future in as_completed(futures, BOUND):  # the follower first: the leader is held
        try:
            done.append(future.result())
        except GroupTimeout as exc:
            errors.append(exc)
            fn.release.set()  # the follower gave up: let the leader finish
    assert len(errors) == 1 and len(done) == 1 and done[0][0] in (2, 4)
    assert "not written within 0.2 s" in str(errors[0])


def _wait_for(condition: Callable[[], bool]) -> bool:
    event = threading.Event()
    for _ in range(int(BOUND / 0.01)):
        if condition():
            return True
        event.wait(0.01)
    raise AssertionError("condition not met in time")
