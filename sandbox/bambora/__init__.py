"""Bambora (Worldline) payments API v1 under `/bambora`, its token service under `/bambora-auth`,
and its seeding routes under `/_sandbox/bambora`.

The wire format is docs/providers-assumed.md (section Bambora); where it is silent, the choice
is a constant in `sandbox.bambora.model`. Tokens are session state, not an effect: only a
cancel counts as an effect, keyed `bambora:cancel_payment:<merchant>/<reference>`.
"""

from sandbox.bambora.api import blueprint, operation
from sandbox.bambora.control import control
from sandbox.bambora.model import API_PREFIX, AUTH_PREFIX, NAME, BamboraStore, error_body
from sandbox.state import ProviderSpec

PROVIDER = ProviderSpec(
    name=NAME,
    blueprint=blueprint,
    control=control,
    operations=tuple(operation.names),
    new_store=BamboraStore,
    error_body=error_body,
    url_prefixes=(API_PREFIX, AUTH_PREFIX),
)

__all__ = ["PROVIDER"]
