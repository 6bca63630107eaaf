"""Bounded concurrency per provider: one thread pool per provider in each worker process.

Provider calls wait on the network, not the CPU, so threads overlap them well; the bound keeps
cancelflow within what each provider tolerates (and what it says with 429s).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from worker.domain.states import Provider

T = TypeVar("T")

DEFAULT_CONCURRENCY = 8


class ProviderPools:
    def __init__(self, limits: Mapping[Provider, int] | None = None) -> None:
        self._limits = dict(limits or {})
        self._pools: dict[Provider, ThreadPoolExecutor] = {}
        self._lock = threading.Lock()

    def limit(self, provider: Provider) -> int:
        return self._limits.get(provider, DEFAULT_CONCURRENCY)

    def submit(self, provider: Provider, fn: Callable[..., T], *args: Any) -> Future[T]:
        with self._lock:
            pool = self._pools.get(provider)
            if pool is None:
                pool = ThreadPoolExecutor(self.limit(provider),
                                          thread_name_prefix=f"cancelflow-{provider.value}")
                self._pools[provider] = pool
        return pool.submit(fn, *args)

    def shutdown(self) -> None:
        with self._lock:
            for pool in self._pools.values():
                pool.shutdown(wait=False, cancel_futures=True)
            self._pools.clear()
