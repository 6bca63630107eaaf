"""The composition root: builds the real adapters from settings, or takes fakes in tests."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import Engine

from worker.domain.states import Provider
from worker.ledger import create_ledger_engine, upgrade_ledger
from worker.ledger.audit import SqlAuditLedger
from worker.ledger.uow import SqlUnitOfWorkFactory
from worker.ledger.views import LedgerReads
from worker.providers.bambora.adapter import Bambora
from worker.providers.bambora.driver import BamboraDriver
from worker.providers.calls import OnCall
from worker.providers.deadline import bound_calls
from worker.providers.paywall.adapter import Paywall
from worker.providers.paywall.driver import PaywallDriver
from worker.providers.sixdot50.adapter import SixDot50
from worker.providers.sixdot50.driver import SixDot50Driver
from worker.services.audit import AuditLedger
from worker.services.context import Context, RetryPolicy, utcnow
from worker.services.pools import ProviderPools
from worker.services.ports import Dispatcher, LegDriver
from worker.services.throttle import Throttle
from worker.services.unit_of_work import UnitOfWorkFactory
from worker.services.views import ReadSide
from worker.settings import Settings, load_settings

USER_AGENT = "cancelflow/0.1"

log = logging.getLogger(__name__)

# What each provider needs before its legs can run (build_drivers builds a driver exactly then).
REQUIRED_SETTINGS: dict[Provider, tuple[str, ...]] = {
    Provider.SIXDOT50: ("sixdot50_base_url", "sixdot50_key", "sixdot50_secret"),
    Provider.PAYWALL: ("paywall_base_url", "paywall_api_key_public", "paywall_api_client_public"),
    Provider.BAMBORA: ("bambora_client_id", "bambora_client_secret"),
}
BASE_URLS: dict[Provider, tuple[str, ...]] = {
    Provider.SIXDOT50: ("sixdot50_base_url",),
    Provider.PAYWALL: ("paywall_base_url", "paywall_private_base_url"),
    Provider.BAMBORA: ("bambora_base_url", "bambora_auth_url"),
}


@dataclass(frozen=True, slots=True)
class OpenLedger:
    """The receiver's ledger: its engine, its units of work (for the write use cases) and the
    read side over it."""

    engine: Engine
    units: UnitOfWorkFactory
    reads: ReadSide
    audit: AuditLedger


def open_ledger(settings: Settings) -> OpenLedger:
    """The ledger with its schema brought up to date first."""
    engine = create_ledger_engine(settings.database_url)
    upgrade_ledger(engine)
    return OpenLedger(engine, ledger_units(engine), LedgerReads(engine), SqlAuditLedger(engine))


class _NoCookies(httpx.Cookies):
    """Providers' APIs authenticate with tokens and headers: a cookie one of them sets is
    neither kept nor sent back (and the per-call cookie bookkeeping is skipped)."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None

    def set_cookie_header(self, request: httpx.Request) -> None:
        return None

    def __bool__(self) -> bool:
        return False


class ProviderClient(httpx.Client):
    """An httpx client that keeps no cookies, and whose calls honour a whole-call deadline."""

    _no_cookies = _NoCookies()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Its own transport and those mounted for proxies from the environment.
        for transport in (self._transport, *self._mounts.values()):
            bound_calls(transport)

    @property
    def cookies(self) -> httpx.Cookies:
        return self._no_cookies

    @cookies.setter
    def cookies(self, cookies: object) -> None:
        raise TypeError("a provider client keeps no cookies")


def http_client(
    settings: Settings, transport: httpx.BaseTransport | None = None
) -> httpx.Client:
    """One long-lived client per process: pooled connections, explicit timeouts, no cookies."""
    return ProviderClient(
        transport=transport,
        timeout=httpx.Timeout(settings.http_timeout_seconds),
        limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        headers={"User-Agent": USER_AGENT},
    )


def build_drivers(
    settings: Settings, client: httpx.Client, on_call: OnCall | None = None
) -> dict[Provider, LegDriver]:
    """A driver per configured provider; a provider with missing settings has none."""
    drivers: dict[Provider, LegDriver] = {}
    if settings.bambora_client_id and settings.bambora_client_secret:
        drivers[Provider.BAMBORA] = BamboraDriver(
            Bambora(
                client,
                base_url=settings.bambora_base_url,
                auth_url=settings.bambora_auth_url,
                client_id=settings.bambora_client_id,
                client_secret=settings.bambora_client_secret,
                on_call=on_call,
            )
        )
    if (settings.paywall_base_url and settings.paywall_api_key_public
            and settings.paywall_api_client_public):
        private = None
        if settings.paywall_api_key_private and settings.paywall_api_client_private:
            private = (settings.paywall_api_key_private, settings.paywall_api_client_private)
        drivers[Provider.PAYWALL] = PaywallDriver(
            Paywall(
                client,
                public_url=settings.paywall_base_url,
                private_url=settings.paywall_private_base_url,
                public_headers=(settings.paywall_api_key_public,
                                settings.paywall_api_client_public),
                private_headers=private,
                on_call=on_call,
            ),
            ZoneInfo(settings.paywall_timezone),
            utcnow,
        )
    if settings.sixdot50_base_url and settings.sixdot50_key and settings.sixdot50_secret:
        drivers[Provider.SIXDOT50] = SixDot50Driver(
            SixDot50(
                client,
                settings.sixdot50_base_url,
                settings.sixdot50_key,
                settings.sixdot50_secret,
                on_call,
            )
        )
    return drivers


def missing_settings(settings: Settings, provider: Provider) -> list[str]:
    """The variables a provider still needs; empty when its legs can run."""
    return [f"CANCELFLOW_{name.upper()}" for name in REQUIRED_SETTINGS[provider]
            if not getattr(settings, name)]


def _shown(url: str) -> str:
    # A base URL is not a secret, but one could carry user:password@ or a key in its query.
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2], query="",
                                     fragment=""))


def describe_providers(settings: Settings) -> str:
    """Which providers are configured, at which base URLs, and what the others lack."""
    lines = []
    for provider in Provider:
        missing = missing_settings(settings, provider)
        if missing:
            lines.append(f"{provider.value} NOT configured (missing {', '.join(missing)}: "
                         "its legs end rejected / provider_not_configured)")
            continue
        urls = [f"{name.removeprefix(provider.value + '_')}={_shown(getattr(settings, name))}"
                for name in BASE_URLS[provider] if getattr(settings, name)]
        lines.append(f"{provider.value} configured ({', '.join(urls)})")
    return "; ".join(lines)


def log_configuration(settings: Settings, process: str) -> None:
    """One INFO line at a process's start: the providers, and whether the secrets that open
    things are set (never their values)."""
    configured = [p.value for p in Provider if not missing_settings(settings, p)]
    keys = len(settings.hash_keys())
    log.info(
        "%s starting: providers: %s; API token %s; notify secret %s; "
        "Paywall callback hash keys: %s; log format %s",
        process, describe_providers(settings),
        "set" if settings.api_token else "NOT set (the API and dashboard answer 503)",
        "set" if settings.notify_secret else "NOT set (requests with notify_url are invalid)",
        keys or "none (callbacks answer 503)", settings.log_format,
        extra={"providers_configured": configured},
    )


def ledger_units(engine: Engine) -> UnitOfWorkFactory:
    """Units of work over the SQL ledger behind ``engine``."""
    return SqlUnitOfWorkFactory(engine)


def build_context(
    settings: Settings,
    dispatcher: Dispatcher,
    *,
    engine: Engine | None = None,
    drivers: dict[Provider, LegDriver] | None = None,
    throttle: Throttle | None = None,
) -> Context:
    if drivers is None:
        drivers = build_drivers(settings, http_client(settings))
    from worker.services.views import get_job
    from worker.throttle_redis import RedisThrottle

    ledger = engine or create_ledger_engine(settings.database_url)
    reads = LedgerReads(ledger)
    return Context(
        uow_factory=ledger_units(ledger),
        drivers=drivers,
        dispatcher=dispatcher,
        retry=RetryPolicy(
            settings.retry_base_seconds, settings.retry_max_seconds, settings.retry_max_attempts
        ),
        lease_seconds=settings.leg_lease_seconds,
        call_timeout_seconds=settings.http_timeout_seconds,
        callback_timeout_seconds=settings.callback_timeout_seconds,
        throttle=throttle or RedisThrottle(settings.redis_url),
        inline_first_round=True,
        notify_configured=settings.notify_secret is not None,  # outcomes (issue 17)
        # The outcome's payload: the job as the API answers it.
        read_job=lambda job_id: (found.model_dump(mode="json")
                                 if (found := get_job(reads, job_id)) else None),
        pools=ProviderPools({
            Provider.SIXDOT50: settings.concurrency_sixdot50,
            Provider.PAYWALL: settings.concurrency_paywall,
            Provider.BAMBORA: settings.concurrency_bambora,
        }),
    )


_lock = threading.Lock()
_context: tuple[int, Context] | None = None


def process_context() -> Context:
    """This process's context, built on first use (and again in a forked child)."""
    global _context
    with _lock:
        if _context is None or _context[0] != os.getpid():
            from worker.celery_app import app
            from worker.dispatch import CeleryDispatcher

            _context = (os.getpid(), build_context(load_settings(), CeleryDispatcher(app)))
        return _context[1]
