"""The sandbox's control API under `/_sandbox/`: reset, settings, faults, calls and effects.

The path every provider call takes lives in `sandbox.intercept`; this module reads and steers
the state that path uses.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, MutableMapping
from typing import Any

from flask import Blueprint, request

from sandbox.faults import FaultError, parse_fault
from sandbox.state import JSONObject, current_state

blueprint = Blueprint("sandbox_control", __name__, url_prefix="/_sandbox")
ControlAnswer = tuple[JSONObject, int]


class ControlError(ValueError):
    """A control request the sandbox refuses (answered 400, or `status`)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def add_revoke_tokens(control: Blueprint, tokens: Callable[[], MutableMapping[str, Any]]) -> None:
    """`POST <control>/revoke-tokens`: invalidate every token a provider issued, so that its next
    call answers 401. ``tokens`` gives the provider's token table (read under the state lock)."""

    @control.post("/revoke-tokens")
    def revoke_tokens() -> ControlAnswer:
        with current_state().lock:
            issued = tokens()
            revoked = len(issued)
            issued.clear()
        return {"revoked": revoked}, 200


def refuse(error: ControlError) -> ControlAnswer:
    """The answer to a refused control request (registered app-wide by `create_app`)."""
    return {"error": str(error)}, error.status


def json_object(known: Collection[str] | None = None) -> JSONObject:
    """The control request's JSON object body (empty counts as `{}`), with only `known` keys."""
    body = request.get_json(silent=True) if request.get_data() else {}
    if not isinstance(body, dict):
        raise ControlError("the body must be a JSON object")
    if known is not None:
        refuse_unknown(body, known)
    return body


def refuse_unknown(body: Mapping[str, Any], known: Collection[str]) -> None:
    """Refuse keys outside `known`: a typo in a test script must not pass silently."""
    unknown = sorted(set(body) - set(known))
    if unknown:
        raise ControlError(f"unknown fields: {', '.join(unknown)}")


def field_value(
    body: Mapping[str, Any], name: str, kind: type | tuple[type, ...], default: Any = None
) -> Any:
    """`body[name]` (or `default`), which must be of `kind`; a bool is never an int here."""
    value = body.get(name)
    if value is None:
        return default
    wrong_bool = isinstance(value, bool) and bool not in (
        kind if isinstance(kind, tuple) else (kind,)
    )
    if wrong_bool or not isinstance(value, kind):
        raise ControlError(f"{name} must be of type {getattr(kind, '__name__', kind)}")
    if isinstance(value, int) and not isinstance(value, bool) and value < 0:
        raise ControlError(f"{name} must not be negative")
    return value


@blueprint.post("/reset")
def reset() -> ControlAnswer:
    """Forget everything: data, tokens, faults, calls, effects; settings back to defaults."""
    current_state().reset()
    return {"reset": True}, 200


@blueprint.get("/settings")
def get_settings() -> ControlAnswer:
    return current_state().settings(), 200


@blueprint.post("/settings")
def update_settings() -> ControlAnswer:
    """Change `latency_ms` and/or per-provider settings (`{"<provider>": {...}}`)."""
    state = current_state()
    changes = json_object(known={"latency_ms", *state.providers})
    latency = field_value(changes, "latency_ms", int, state.latency_ms)
    per_provider = {name: value for name, value in changes.items() if name != "latency_ms"}
    if not all(isinstance(value, dict) for value in per_provider.values()):
        raise ControlError("provider settings are JSON objects")
    with state.lock:
        for name, provider_changes in per_provider.items():
            try:
                state.stores[name].update_settings(provider_changes)
            except ValueError as error:
                raise ControlError(f"{name}: {error}") from error
        state.latency_ms = latency
    return state.settings(), 200


@blueprint.post("/faults")
def add_fault() -> ControlAnswer:
    state = current_state()
    try:
        spec = parse_fault(json_object(), state.operations())
    except FaultError as error:
        raise ControlError(str(error)) from error
    with state.lock:
        return state.faults.add(spec).to_json(), 201


@blueprint.get("/faults")
def list_faults() -> ControlAnswer:
    state = current_state()
    with state.lock:
        return {"faults": [fault.to_json() for fault in state.faults.active()]}, 200


@blueprint.delete("/faults")
def clear_faults() -> ControlAnswer:
    state = current_state()
    with state.lock:
        return {"deleted": state.faults.clear()}, 200


@blueprint.delete("/faults/<fault_id>")
def delete_fault(fault_id: str) -> ControlAnswer:
    state = current_state()
    with state.lock:
        fault = state.faults.remove(fault_id)
    if fault is None:
        raise ControlError(f"no active fault {fault_id}", 404)
    return fault.to_json(), 200


@blueprint.get("/calls")
def list_calls() -> ControlAnswer:
    """The call log, optionally filtered by `provider`, `operation` and `target`."""
    state = current_state()
    filters = {name: request.args.get(name) for name in ("provider", "operation", "target")}
    with state.lock:
        return {"calls": state.calls.select(**filters)}, 200


@blueprint.delete("/calls")
def clear_calls() -> ControlAnswer:
    state = current_state()
    with state.lock:
        return {"deleted": state.calls.clear()}, 200


@blueprint.get("/effects")
def list_effects() -> ControlAnswer:
    """How often each operation changed state per target, optionally for one `provider`."""
    state = current_state()
    prefix = f"{request.args['provider']}:" if request.args.get("provider") else ""
    with state.lock:
        effects = {key: n for key, n in sorted(state.effects.items()) if key.startswith(prefix)}
    return {"effects": effects}, 200
