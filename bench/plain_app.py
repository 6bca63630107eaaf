"""The baseline a team would write without cancelflow: one plain Celery task per cancellation.

It makes the same provider call as cancelflow (Bambora's payment cancel, 6DOT50's batch cancel)
with one long-lived httpx client on keep-alive connections and one cached token per process, and
counts itself in Redis; no ledger, no retries, no reconciliation. Its settings are the ones a
careful user would choose: threads x32, late acknowledgement, prefetch 1, task events on, JSON,
no results, on the same broker as cancelflow. Run by ``bench.latency_jobs`` as
``celery -A bench.plain_app worker``; its configuration comes from the stack's environment.
"""

from __future__ import annotations

import os
import threading
from urllib.parse import quote

import httpx
import redis
from celery import Celery

QUEUE = "bench.plain"
CONCURRENCY = 32
BAMBORA_CANCEL = "bench.plain.bambora_cancel"
SIXDOT50_CANCEL = "bench.plain.sixdot50_cancel"

app = Celery("bench-plain", broker=os.environ.get("CANCELFLOW_REDIS_URL", "redis://"))
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    worker_pool="threads",
    worker_concurrency=CONCURRENCY,
    worker_send_task_events=True,
    task_send_sent_event=True,
    task_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    task_default_queue=QUEUE,
    broker_connection_retry_on_startup=True,
)

_lock = threading.Lock()
_client: httpx.Client | None = None
_counter: redis.Redis | None = None
_tokens: dict[str, str] = {}


def _http() -> httpx.Client:
    global _client, _counter
    with _lock:
        if _client is None:
            _client = httpx.Client(timeout=10, limits=httpx.Limits(max_connections=64))
            _counter = redis.Redis.from_url(os.environ["CANCELFLOW_REDIS_URL"])
        return _client


def _token(provider: str) -> str:
    """One token per process, fetched on first use (a careful user caches it)."""
    client = _http()
    with _lock:
        if provider not in _tokens:
            env = os.environ
            if provider == "bambora":
                answer = client.post(f"{env['CANCELFLOW_BAMBORA_AUTH_URL']}/connect/token",
                                     data={"grant_type": "client_credentials"},
                                     auth=(env["CANCELFLOW_BAMBORA_CLIENT_ID"],
                                           env["CANCELFLOW_BAMBORA_CLIENT_SECRET"]))
                _tokens[provider] = answer.raise_for_status().json()["access_token"]
            else:
                answer = client.post(f"{env['CANCELFLOW_SIXDOT50_BASE_URL']}/authentication/"
                                     "getToken", json={"key": env["CANCELFLOW_SIXDOT50_KEY"],
                                                       "secret": env["CANCELFLOW_SIXDOT50_SECRET"]})
                _tokens[provider] = answer.raise_for_status().json()["token"]
        return _tokens[provider]


def _done(counter: str) -> None:
    assert _counter is not None
    _counter.incr(counter)


@app.task(name=BAMBORA_CANCEL)
def bambora_cancel(merchant: str, reference: str, counter: str) -> None:
    """Cancel one Bambora payment; count the success."""
    url = (f"{os.environ['CANCELFLOW_BAMBORA_BASE_URL']}/v1/merchants/{quote(merchant, safe='')}"
           f"/payments/{quote(reference, safe='')}/cancel/")
    answer = _http().post(url, headers={"Authorization": f"Bearer {_token('bambora')}",
                                        "API-Version": "1"})
    if answer.status_code != 201:
        raise RuntimeError(f"Bambora cancel answered {answer.status_code}")
    _done(counter)


@app.task(name=SIXDOT50_CANCEL)
def sixdot50_cancel(batch_id: str, counter: str) -> None:
    """Cancel one 6DOT50 batch; count the success."""
    url = f"{os.environ['CANCELFLOW_SIXDOT50_BASE_URL']}/batches/{batch_id}/cancel"
    answer = _http().post(url, headers={"Authorization": f"Bearer {_token('sixdot50')}"})
    if answer.status_code != 200:
        raise RuntimeError(f"6DOT50 cancel answered {answer.status_code}")
    _done(counter)
