"""Group commit: threads that each have a ledger transaction to make share one.

The worker runs one task per thread. Under load, many of them reach the same step (store a
producer's job, record a round's result) within a few milliseconds of each other, and a
transaction's cost is mostly per transaction (a connection checkout, ``BEGIN``, the commit and
its sync to disk), not per row. So a thread hands its items to :class:`GroupCommit` and waits:
the first to arrive while no group is being written leads. It gathers for at most ``window``
seconds (less once ``max_items`` wait), runs the function once over every waiting thread's
items, and hands each thread its own share of the answer, or the error, which each thread raises
as its own. Threads that arrive while a group is being written wait for the next one.

Nothing changes for a thread alone: it leads its own group of one, after ``window``.

Every wait is bounded by ``wait_seconds``: a thread whose items no leader has taken by then
withdraws them (no leader can take them after that) and runs them alone; one whose items a
leader has taken and still not written raises :class:`GroupTimeout`, which the task retries like
a ledger error (the functions grouped here are idempotent: a job is stored once, a round's
result applied once, whichever write lands).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class GroupTimeout(Exception):
    """The group holding a thread's items was not written within the thread's bound."""


class _Slot(Generic[T, R]):
    __slots__ = ("answer", "done", "error", "items", "lead", "taken", "wake")

    def __init__(self, items: list[T]) -> None:
        self.items = items
        self.lead = False  # this slot's thread writes the next group
        self.taken = False  # a leader holds the items
        self.done = False
        self.answer: list[R] = []
        self.error: BaseException | None = None
        self.wake = threading.Event()  # set when the thread leads, or when its items are done


class GroupCommit(Generic[T, R]):
    """Run ``fn`` over the items of every thread waiting, once; ``fn`` answers one result per
    item, in order."""

    def __init__(self, fn: Callable[[list[T]], list[R]], *, window: float = 0.002,
                 max_items: int = 64, wait_seconds: float = 120.0) -> None:
        self._fn = fn
        self._window = window
        self._max_items = max_items
        self._wait_seconds = wait_seconds
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)  # what a gathering leader waits on
        self._queue: list[_Slot[T, R]] = []
        self._leading = False
        self._gathering = False
        # What a benchmark reads: how many groups were written, holding how many items.
        self.groups = 0
        self.items = 0

    def run(self, items: Sequence[T]) -> list[R]:
        """``fn`` applied to ``items``, in a group with whatever other threads hand in."""
        slot: _Slot[T, R] = _Slot(list(items))
        if not slot.items:
            return []
        with self._lock:
            self._queue.append(slot)
            if not self._leading:
                self._leading = slot.lead = True
            elif self._gathering:
                self._arrived.notify()
        if not slot.lead and not slot.wake.wait(self._wait_seconds):
            with self._lock:
                withdrawn = not (slot.lead or slot.taken or slot.done)
                if withdrawn:
                    self._queue.remove(slot)
                elif slot.taken and not slot.done:
                    raise GroupTimeout(f"a group holding {len(slot.items)} item(s) was not "
                                       f"written within {self._wait_seconds:g} s")
            if withdrawn:
                return self._fn(slot.items)  # alone, outside any group
        if not slot.done:
            self._lead(slot)
        if slot.error is not None:
            raise slot.error
        return slot.answer

    def _lead(self, own: _Slot[T, R]) -> None:
        group: list[_Slot[T, R]] = []
        try:
            with self._lock:
                self._gathering = True
                until = time.monotonic() + self._window
                while self._waiting() < self._max_items:
                    left = until - time.monotonic()
                    if left <= 0:
                        break
                    self._arrived.wait(left)
                self._gathering = False
                self._queue.remove(own)
                group.append(own)
                count = len(own.items)
                while self._queue and count + len(self._queue[0].items) <= self._max_items:
                    group.append(self._queue.pop(0))
                    count += len(group[-1].items)
                for slot in group:
                    slot.taken = True
            self._write(group)
        finally:
            with self._lock:
                for slot in group:
                    slot.done = True
                    slot.wake.set()
                if self._queue:
                    # The next group's leader is the thread that has waited longest.
                    self._queue[0].lead = True
                    self._queue[0].wake.set()
                else:
                    self._leading = False

    def waiting(self) -> int:
        """How many items wait for a leader to take them."""
        with self._lock:
            return self._waiting()

    def _waiting(self) -> int:
        return sum(len(slot.items) for slot in self._queue)

    def _write(self, group: list[_Slot[T, R]]) -> None:
        items = [item for slot in group for item in slot.items]
        try:
            answers = self._fn(items)
            if len(answers) != len(items):
                raise RuntimeError(f"{len(answers)} answers for {len(items)} items")
        except BaseException as exc:  # each thread raises it as its own
            for slot in group:
                slot.error = exc
            return
        start = 0
        for slot in group:
            slot.answer = answers[start : start + len(slot.items)]
            start += len(slot.items)
        self.groups += 1
        self.items += len(items)
