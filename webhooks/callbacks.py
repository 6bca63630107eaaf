"""``POST /callbacks/paywall``: verify, store durably, answer, then enqueue.

The Hash is checked against every configured key before the payment list is decoded (an
unauthenticated request costs one pass over its body) and before anything is stored; the raw
body and its parsed payments are committed in one transaction before the 200. The request never
waits on a provider, and a failure to enqueue never loses the page: the sweep settles from the
ledger.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from flask import Blueprint, abort, current_app, request
from flask.typing import ResponseReturnValue

from webhooks.apidoc import Reply, json_answer, operation
from webhooks.context import settings, store_callback_page
from webhooks.models import CallbackAck, CallbackPage
from worker.providers.paywall.callbacks import (
    MalformedCallback,
    hash_matches,
    read_head,
    read_page,
)

log = logging.getLogger(__name__)

blueprint = Blueprint("callbacks", __name__)

MAX_BODY = 16 * 1024 * 1024


@operation(blueprint, "POST", "/callbacks/paywall", body=CallbackPage,
           summary="A Paywall callback page, verified by its Hash, stored, then acknowledged",
           replies={200: Reply("stored (or a duplicate, which changes nothing)", CallbackAck),
                    400: Reply("not a callback page"),
                    401: Reply("Hash matches no configured key"),
                    413: Reply("body over 16 MiB"),
                    503: Reply("CANCELFLOW_PAYWALL_HASH_KEYS is not set")})
def paywall_callback() -> ResponseReturnValue:
    keys = settings().hash_keys()
    if not keys:
        abort(503, "CANCELFLOW_PAYWALL_HASH_KEYS is not set")
    raw = _body()
    try:
        head = read_head(raw)
    except MalformedCallback as exc:
        _count("malformed")
        abort(400, str(exc))
    if not hash_matches(head, keys):
        _count("bad_hash")
        # The id is at most 64 printable characters (read_head): safe to log.
        log.warning("callback refused: bad hash for bulk %s", head.bulk_payment_id)
        abort(401, "Hash does not match any configured key")
    try:
        page = read_page(head)
    except MalformedCallback as exc:
        _count("malformed")
        abort(400, str(exc))
    stored = store_callback_page(page, raw, datetime.now(UTC))
    _count("stored" if stored.new else "duplicate")
    # Only a page that completes its operation can end a leg; enqueueing the others would cost
    # a broker round trip per page for nothing. (A duplicate of the last page enqueues again, in
    # case the first message was lost.)
    if stored.complete:
        try:
            current_app.extensions["cancelflow"]["dispatcher"].page_arrived(
                page.bulk_payment_id, page.merchant_unique_code)
        except Exception:  # the page is committed; the sweep settles it if this is lost
            log.exception("could not enqueue settlement for bulk %s", page.bulk_payment_id)
    return json_answer(CallbackAck(received=True))


def _body() -> bytes:
    """The body; 413 over ``MAX_BODY``, whether it came with a Content-Length or chunked."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        abort(413)
    # A chunked body is read to one byte past the limit: that byte tells "over" from "at".
    request.max_content_length = MAX_BODY + 1
    raw = request.get_data(cache=False)
    if len(raw) > MAX_BODY:
        abort(413)
    return raw


def _count(outcome: str) -> None:
    metrics = current_app.extensions["cancelflow"].get("metrics")
    if metrics is not None:
        metrics.callbacks.labels(outcome=outcome).inc()
