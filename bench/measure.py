"""Small measuring tools shared by the benchmark parts."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import psutil

T = TypeVar("T")


def run_concurrently(work: Iterable[T], fn: Callable[[T], object], concurrency: int) -> float:
    """Seconds to run ``fn`` over ``work`` with ``concurrency`` threads."""
    items = list(work)
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        for _ in pool.map(fn, items):
            pass
    return time.perf_counter() - started


def cpu_seconds(process: psutil.Process) -> float:
    """User + system CPU of a process and its children so far."""
    total = 0.0
    for p in [process, *process.children(recursive=True)]:
        try:
            times = p.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


class PeakMemory:
    """Samples the resident memory of a process and its children; keeps the peak (bytes)."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self._process = psutil.Process(pid)
        self._interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                processes = [self._process, *self._process.children(recursive=True)]
                total = sum(p.memory_info().rss for p in processes if p.is_running())
                self.peak = max(self.peak, total)
            except psutil.Error:
                pass
            self._stop.wait(self._interval)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


def table(title: str, rows: list[tuple[str, str]]) -> None:
    width = max(len(name) for name, _ in rows)
    print(title)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
