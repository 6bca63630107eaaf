"""Paywall emulation: public API under `/paywall`, private API under `/paywall-private`.

One provider (`paywall`: one store, one set of operations, effects and faults) whose blueprint
has no prefix of its own and nests one blueprint per API host. Modules: `settings` (defaults
and validation), `model` (state and rules), `api` (the provider's routes), `callbacks` (the
sender thread), `fixtures` (control routes under `/_sandbox/paywall`). The wire format is
docs/providers-assumed.md, section Paywall.
"""

from __future__ import annotations

from flask import Blueprint

from sandbox.paywall.api import (
    PRIVATE_PREFIX,
    PUBLIC_PREFIX,
    error_body,
    operation,
    private,
    public,
)
from sandbox.paywall.fixtures import control
from sandbox.paywall.model import NAME, PaywallStore
from sandbox.state import ProviderSpec

blueprint = Blueprint(NAME, __name__)
blueprint.register_blueprint(public)
blueprint.register_blueprint(private)

PROVIDER = ProviderSpec(
    name=NAME,
    blueprint=blueprint,
    control=control,
    operations=tuple(operation.names),
    new_store=PaywallStore,
    error_body=error_body,
    url_prefixes=(PUBLIC_PREFIX, PRIVATE_PREFIX),
)

__all__ = ["PROVIDER"]
