"""The sandbox's in-memory state: provider stores, settings, faults, call log and effects.

One `SandboxState` per app (in `app.extensions["sandbox"]`), every mutation under its lock
because the server is threaded. Nothing provider-specific lives here: each provider plugs in
through a `ProviderSpec` that says how to build its store.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from flask import Blueprint, current_app

from sandbox.faults import FaultBook

Clock = Callable[[], datetime]
JSONObject = dict[str, Any]


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def iso_utc(moment: datetime) -> str:
    """ISO-8601 in UTC with a `Z` suffix and millisecond precision."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ProviderStore(Protocol):
    """What the generic layer needs from a provider's own state."""

    def settings(self) -> JSONObject:
        """The provider's settings as the control API shows them (secrets masked)."""
        ...

    def update_settings(self, changes: Mapping[str, Any]) -> None:
        """Apply a partial settings change; raise ValueError if it is invalid."""
        ...


def default_error_body(status: int, message: str) -> Any:
    """A provider-neutral error body."""
    return {"message": message}


@dataclass(frozen=True)
class ProviderSpec:
    """Everything `create_app` needs to plug one emulated provider in."""

    name: str
    blueprint: Blueprint
    operations: tuple[str, ...]
    new_store: Callable[[Clock], ProviderStore]
    control: Blueprint | None = None
    error_body: Callable[[int, str], Any] = default_error_body
    # More URL prefixes the provider owns: a blueprint without a prefix of its own can nest one
    # blueprint per API host (e.g. Paywall's public and private APIs).
    url_prefixes: tuple[str, ...] = ()

    def owns_path(self, path: str) -> bool:
        """Whether a request path falls under one of this provider's URL prefixes."""
        prefixes = (self.blueprint.url_prefix or "", *self.url_prefixes)
        return any(p and (path == p or path.startswith(p + "/")) for p in prefixes)


@dataclass
class CallRecord:
    """One provider request as the call log shows it; never holds bodies or headers."""

    seq: int
    at: datetime
    provider: str
    operation: str | None
    method: str
    path: str
    target: str | None
    status: int | str | None = None
    fault: str | None = None
    effect: bool = False

    def to_json(self) -> JSONObject:
        """The record as the control API serves it."""
        return {
            "seq": self.seq,
            "at": iso_utc(self.at),
            "provider": self.provider,
            "operation": self.operation,
            "method": self.method,
            "path": self.path,
            "target": self.target,
            "status": self.status,
            "fault": self.fault,
            "effect": self.effect,
        }


@dataclass
class CallLog:
    """Every provider request in arrival order."""

    records: list[CallRecord] = field(default_factory=list)
    last_seq: int = 0

    def open(self, **fields: Any) -> CallRecord:
        """Append a record for a request that just arrived; the caller fills in its outcome."""
        self.last_seq += 1
        record = CallRecord(seq=self.last_seq, **fields)
        self.records.append(record)
        return record

    def clear(self) -> int:
        """Forget the records (sequence numbers keep counting); how many there were."""
        cleared = len(self.records)
        self.records.clear()
        return cleared

    def select(self, **filters: str | None) -> list[JSONObject]:
        """The records whose fields equal every non-empty filter."""
        wanted = {name: value for name, value in filters.items() if value}
        return [
            record.to_json()
            for record in self.records
            if all(getattr(record, name) == value for name, value in wanted.items())
        ]


def effect_key(provider: str, operation: str, target: str | None) -> str:
    """`provider:operation:target`, the key under which effects are counted."""
    return f"{provider}:{operation}" if target is None else f"{provider}:{operation}:{target}"


class SandboxState:
    """All mutable state of one sandbox app; hold `lock` while touching any of it."""

    def __init__(self, providers: Iterable[ProviderSpec], clock: Clock = utc_now) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        # Set when the server stops, so fault sleeps (timeouts up to 30 s) end at once.
        self.stopping = threading.Event()
        self.providers: dict[str, ProviderSpec] = {spec.name: spec for spec in providers}
        self.reset()

    def reset(self) -> None:
        """Back to a fresh start: default settings, no data, faults, calls or effects."""
        with self.lock:
            self.latency_ms = 0
            self.stores: dict[str, ProviderStore] = {
                name: spec.new_store(self.clock) for name, spec in self.providers.items()
            }
            self.faults = FaultBook()
            self.calls = CallLog()
            self.effects: Counter[str] = Counter()

    def operations(self) -> dict[str, tuple[str, ...]]:
        """The operations of every provider, by provider name."""
        return {name: spec.operations for name, spec in self.providers.items()}

    def provider_for_path(self, path: str) -> ProviderSpec | None:
        """The provider whose URL prefix the path is under, if any."""
        return next((s for s in self.providers.values() if s.owns_path(path)), None)

    def settings(self) -> JSONObject:
        """Generic and per-provider settings."""
        with self.lock:
            shown: JSONObject = {"latency_ms": self.latency_ms}
            shown.update({name: store.settings() for name, store in self.stores.items()})
            return shown

    def pause(self, milliseconds: int) -> None:
        """Sleep, unless the server is stopping."""
        if milliseconds > 0:
            self.stopping.wait(milliseconds / 1000)


def current_state() -> SandboxState:
    """The state of the app handling the current request."""
    state: SandboxState = current_app.extensions["sandbox"]
    return state
