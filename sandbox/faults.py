"""Scripted faults: what a test asks a provider to do wrong, and which calls it hits.

Plain code, no Flask: `parse_fault` validates a control-API body into a `FaultSpec`;
`FaultBook.take` picks the fault for one provider call and consumes it. The interceptor in
`sandbox.control` then performs it on the wire.

Matching rules, in one place:
- a fault matches a call with its provider, its operation (or any, for `*`) and, when the fault
  has a `target`, that target;
- every matching fault counts every matching call (`seen`), even one another fault takes, so
  `after: 2` always means "from the third matching call on";
- faults are consulted in creation order; the first applicable one wins: past its `after`,
  then drawing against its `probability` (its own seeded RNG), then spending one of its `times`;
- a fault whose `times` are spent is removed; `times: 0` never expires.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeGuard, cast

Action = Literal["status", "delay", "timeout", "reset", "malformed"]
ACTIONS: tuple[Action, ...] = ("status", "delay", "timeout", "reset", "malformed")
ANY_OPERATION = "*"
DEFAULT_TIMEOUT_MS = 30_000
_FIELDS = frozenset({
    "provider", "operation", "action", "status", "body", "headers", "delay_ms", "effect",
    "times", "after", "probability", "seed", "target",
})  # fmt: skip


class FaultError(ValueError):
    """A fault description the sandbox cannot honour."""


@dataclass(frozen=True)
class FaultSpec:
    """One scripted misbehaviour.

    `effect` says whether the real operation still runs: with `status`/`malformed` the answer
    is replaced, with `timeout`/`reset` it is lost (the ambiguous case), `delay` always runs it.
    `delay_ms` is slept after the operation and before answering (for `timeout`, the time the
    request is held before the connection closes). `body` null means the provider's usual error.
    """

    provider: str
    operation: str
    action: Action
    status: int | None = None
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_ms: int = 0
    effect: bool = False
    times: int = 1
    after: int = 0
    probability: float = 1.0
    seed: int | None = None
    target: str | None = None

    def matches(self, provider: str, operation: str, target: str | None) -> bool:
        """Whether a call to `provider.operation` on `target` is one this fault watches."""
        return (
            self.provider == provider
            and self.operation in (ANY_OPERATION, operation)
            and (self.target is None or self.target == target)
        )


@dataclass
class Fault:
    """A fault in the book: its spec and how often it has seen and hit calls."""

    id: str
    spec: FaultSpec
    rng: random.Random
    seen: int = 0
    applied: int = 0

    def to_json(self) -> dict[str, Any]:
        """The fault as the control API shows it."""
        shown = {"id": self.id, **self.spec.__dict__, "headers": dict(self.spec.headers)}
        return shown | {"seen": self.seen, "applied": self.applied}


class FaultBook:
    """The active faults, in creation order. Not thread-safe: the caller holds the state lock."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._created = 0

    def add(self, spec: FaultSpec) -> Fault:
        """Register a fault; it applies to calls from now on."""
        self._created += 1
        fault = Fault(id=f"f{self._created}", spec=spec, rng=random.Random(spec.seed))
        self._faults.append(fault)
        return fault

    def remove(self, fault_id: str) -> Fault | None:
        """Drop one fault; None if there is no such active fault."""
        fault = next((f for f in self._faults if f.id == fault_id), None)
        if fault is not None:
            self._faults.remove(fault)
        return fault

    def clear(self) -> int:
        """Drop every fault; how many there were."""
        dropped = len(self._faults)
        self._faults.clear()
        return dropped

    def active(self) -> list[Fault]:
        """The faults still able to apply, in creation order."""
        return list(self._faults)

    def take(self, provider: str, operation: str, target: str | None) -> Fault | None:
        """The fault to apply to this call, if any, consuming one of its `times`."""
        chosen: Fault | None = None
        for fault in list(self._faults):
            spec = fault.spec
            if not spec.matches(provider, operation, target):
                continue
            fault.seen += 1
            if chosen is not None or fault.seen <= spec.after:
                continue
            if spec.probability < 1 and fault.rng.random() >= spec.probability:
                continue
            fault.applied += 1
            if spec.times and fault.applied >= spec.times:
                self._faults.remove(fault)
            chosen = fault
        return chosen


def parse_fault(body: object, operations: Mapping[str, Collection[str]]) -> FaultSpec:
    """Validate a control-API fault body against the known providers and operations."""
    if not isinstance(body, dict):
        raise FaultError("a fault is a JSON object")
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise FaultError(f"unknown fault fields: {', '.join(unknown)}")
    provider, operation = body.get("provider"), body.get("operation", ANY_OPERATION)
    if not (isinstance(provider, str) and provider in operations):
        raise FaultError(f"provider must be one of: {', '.join(sorted(operations))}")
    if operation != ANY_OPERATION and operation not in operations[provider]:
        known = ", ".join(sorted(operations[provider]))
        raise FaultError(f"operation for {provider} must be '*' or one of: {known}")
    action = body.get("action")
    if action not in ACTIONS:
        raise FaultError(f"action must be one of: {', '.join(ACTIONS)}")

    status, headers = body.get("status"), body.get("headers", {})
    if action != "status" and ({"status", "body", "headers"} & set(body)):
        raise FaultError("status, body and headers only go with action 'status'")
    if action == "status" and not (_is_int(status) and 100 <= status <= 599):
        raise FaultError("action 'status' needs an HTTP status, 100-599")
    if not (isinstance(headers, dict) and all(isinstance(v, str) for v in headers.values())):
        raise FaultError("headers is an object of strings")
    effect = body.get("effect", action == "delay")
    if not isinstance(effect, bool) or (action == "delay" and not effect):
        raise FaultError("effect is a boolean (and a delay always performs the operation)")
    probability = body.get("probability", 1.0)
    if not (isinstance(probability, int | float) and not isinstance(probability, bool)):
        raise FaultError("probability is a number from 0 to 1")
    if not 0 <= probability <= 1:
        raise FaultError("probability is a number from 0 to 1")
    seed, target = body.get("seed"), body.get("target")
    if not (seed is None or _is_int(seed)) or not (target is None or isinstance(target, str)):
        raise FaultError("seed is an integer and target a string")
    return FaultSpec(
        provider=provider,
        operation=str(operation),
        action=cast(Action, action),
        status=status,
        body=body.get("body"),
        headers=headers,
        delay_ms=_count(body, "delay_ms", DEFAULT_TIMEOUT_MS if action == "timeout" else 0),
        effect=effect,
        times=_count(body, "times", 1),
        after=_count(body, "after", 0),
        probability=float(probability),
        seed=seed,
        target=target,
    )


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _count(body: Mapping[str, Any], name: str, default: int) -> int:
    value = body.get(name, default)
    if not (_is_int(value) and value >= 0):
        raise FaultError(f"{name} is a non-negative integer")
    return value
