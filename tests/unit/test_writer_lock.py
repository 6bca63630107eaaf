"""The SQLite ledger's writer lock: threads and processes take turns, a fork does not share it."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import threading
from pathlib import Path

from worker.ledger.engine import WriterLock


def _hold(path: str, release: multiprocessing.synchronize.Event,
          ready: multiprocessing.synchronize.Event) -> None:
    lock = WriterLock(Path(path))
    lock.acquire()
    ready.set()
    release.wait(30)
    lock.release()


def _try_lock_file(path: Path) -> bool:
    fd = os.open(path.with_name(path.name + ".writer-lock"), os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def test_another_process_waits_while_one_writes(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    context = multiprocessing.get_context("spawn")
    ready, release = context.Event(), context.Event()
    holder = context.Process(target=_hold, args=(str(ledger), release, ready))
    holder.start()
    try:
        assert ready.wait(30)
        assert not _try_lock_file(ledger)
        release.set()
        holder.join(30)
        assert holder.exitcode == 0
        assert _try_lock_file(ledger)
    finally:
        release.set()
        holder.join(30)


def test_threads_of_one_process_take_turns(tmp_path: Path) -> None:
    lock = WriterLock(tmp_path / "ledger.db")
    inside = 0
    most = 0
    guard = threading.Lock()

    def write() -> None:
        nonlocal inside, most
        for _ in range(200):
            lock.acquire()
            with guard:
                inside += 1
                most = max(most, inside)
            with guard:
                inside -= 1
            lock.release()

    threads = [threading.Thread(target=write) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert most == 1
    assert _try_lock_file(tmp_path / "ledger.db")


def test_an_in_memory_ledger_has_no_lock_file(tmp_path: Path) -> None:
    lock = WriterLock(None)
    lock.acquire()
    lock.release()
    assert list(tmp_path.iterdir()) == []
