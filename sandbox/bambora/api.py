"""Bambora's token service under `/bambora-auth` and payments API under `/bambora`.

A reference travels percent-encoded as ONE path segment and may hold an encoded `/`; werkzeug
decodes the path before routing, so the payment route only catches the request and the
reference is read from the raw request target, each segment percent-decoded exactly once.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from urllib.parse import quote, unquote_to_bytes, urlsplit

from flask import Blueprint, Response, current_app, request
from flask.blueprints import BlueprintSetupState
from werkzeug.routing import BaseConverter

from sandbox.bambora.model import (
    API_PREFIX,
    API_VERSION,
    AUTH_PREFIX,
    CANCELLABLE,
    CANNOT_CANCEL,
    MAX_COMMENT_LENGTH,
    MAX_REFERENCE_LENGTH,
    NAME,
    BamboraStore,
    Payment,
    error_body,
    problem,
)
from sandbox.intercept import Answer, Operations
from sandbox.state import current_state


class _AnyText(BaseConverter):
    """Matches any rest of a decoded path, newlines and empty segments included."""

    regex = r"[\s\S]*"
    part_isolating = False


def install_converter(state: BlueprintSetupState) -> None:
    """Make `<bambora_rest:...>` known to the app before a rule uses it."""
    state.app.url_map.converters.setdefault("bambora_rest", _AnyText)


def raw_segments() -> list[str] | None:
    """The raw request path split on `/`, each segment percent-decoded exactly once.

    werkzeug's server keeps the undecoded request target in `RAW_URI` (and `REQUEST_URI`), as
    its test client does. None if a segment is not UTF-8.
    """
    environ = request.environ
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if not raw:  # a server that keeps no raw target: an encoded `/` is lost already
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        raw = quote(path.encode("latin-1"), safe="/")
    raw = str(raw).split("?", 1)[0]
    if not raw.startswith("/"):  # absolute-form request target
        raw = urlsplit(raw).path
    try:
        # WSGI strings carry the request's bytes as latin-1.
        return [unquote_to_bytes(part.encode("latin-1")).decode("utf-8") for part in raw.split("/")]
    except UnicodeError:
        return None


api = Blueprint(f"{NAME}_api", __name__, url_prefix=API_PREFIX)
auth = Blueprint(f"{NAME}_auth", __name__, url_prefix=AUTH_PREFIX)
api.record_once(install_converter)
blueprint = Blueprint(NAME, __name__)  # no prefix of its own: it carries both hosts
operation = Operations(NAME)


@auth.post("/connect/token")
@operation("get_token")
def get_token(store: BamboraStore) -> Answer:
    """OAuth2 client credentials: HTTP Basic client id and secret, form `grant_type`."""
    credentials = request.authorization
    if credentials is None or credentials.type != "basic":
        return Answer({"error": "invalid_client"}, 401)
    token = store.issue_token(credentials.username or "", credentials.password or "")
    if token is None:
        return Answer({"error": "invalid_client"}, 401)
    grant_type = request.form.get("grant_type")
    if grant_type != "client_credentials":
        return Answer({"error": "unsupported_grant_type" if grant_type else "invalid_request"}, 400)
    return Answer(
        {"access_token": token, "token_type": "Bearer", "expires_in": store.token_ttl_seconds}
    )


@api.route("/v1/merchants/<bambora_rest:rest>", methods=["GET", "POST"], merge_slashes=False)
def payments_route(rest: str) -> Response:
    """`{merchant}/payments/{reference}/` and `.../cancel/`, routed on the raw path."""
    match raw_segments():
        case None:
            return _unrouted(400)
        case ["", "bambora", "v1", "merchants", merchant, "payments", reference, ""]:
            view, method = get_payment, "GET"
        case ["", "bambora", "v1", "merchants", merchant, "payments", reference, "cancel", ""]:
            view, method = cancel_payment, "POST"
        case _:
            return _unrouted(404)
    if not (merchant and reference):
        return _unrouted(404)
    if request.method != method:
        return _unrouted(405, {"Allow": method})
    return view(target=f"{merchant}/{reference}", merchant=merchant, reference=reference)


@operation("get_payment", target="target")
def get_payment(store: BamboraStore, target: str, merchant: str, reference: str) -> Answer:
    """200 with the payment."""
    found = _find_payment(store, merchant, reference)
    return found if isinstance(found, Answer) else Answer(found.to_json())


@operation("cancel_payment", target="target")
def cancel_payment(store: BamboraStore, target: str, merchant: str, reference: str) -> Answer:
    """Only an Authorized payment can be cancelled: 201 with the payment, now Canceled."""
    found = _find_payment(store, merchant, reference, invalid_body=_bad_comment())
    if isinstance(found, Answer):
        return found
    # Decided on the payment's true state: one changed in the merchant portal still reads as
    # before through the API, but cannot be cancelled through it (seed 002).
    state = found.true_state
    if state in CANNOT_CANCEL:
        detail = f"A {state} payment cannot be canceled; refund it instead."
        return Answer(problem(402, "payments/cannot_cancel", "Cannot cancel", detail), 402)
    if state != CANCELLABLE:
        title, detail = "Invalid payment state transition", f"Cannot cancel a {state} payment."
        body = problem(422, "payments/invalid_payment_state_transition", title, detail)
        return Answer(body, 422)
    found.cancel(store.clock(), _comment())
    return Answer(found.to_json(), 201, effect=True)


def _find_payment(
    store: BamboraStore, merchant: str, reference: str, invalid_body: Answer | None = None
) -> Payment | Answer:
    """The payment, or the refusal: 401, then 400 (API-Version, reference, body), then 404."""
    if not store.authorized(request.headers.get("Authorization")):
        detail = "A valid bearer token is required."
        return Answer(problem(401, "unauthorized", "Unauthorized", detail), 401)
    version = request.headers.get("API-Version")
    if (version or "").strip() != API_VERSION:
        detail = f"The API-Version header must be {API_VERSION}, not {version!r}."
        return Answer(problem(400, "bad_request", "Bad request", detail), 400)
    if len(reference) > MAX_REFERENCE_LENGTH:
        detail = f"A payment reference has at most {MAX_REFERENCE_LENGTH} characters."
        return Answer(problem(400, "bad_request", "Bad request", detail), 400)
    if invalid_body is not None:
        return invalid_body
    payment = store.payments.get((merchant, reference))
    if payment is None:
        detail = f"No payment with that reference for merchant {merchant}."
        return Answer(problem(404, "payments/payment_not_found", "Payment not found", detail), 404)
    return payment


def _comment() -> str | None:
    """The cancel's comment, once `_bad_comment` has let the body through."""
    body = request.get_json(force=True, silent=True) if request.get_data() else None
    comment = body.get("comment") if isinstance(body, dict) else None
    return comment if isinstance(comment, str) else None


def _bad_comment() -> Answer | None:
    """The optional cancel body `{"comment"}` (at most 256 characters); a 400 if invalid."""
    if not request.get_data():
        return None
    body = request.get_json(force=True, silent=True)
    comment = body.get("comment") if isinstance(body, dict) else None
    if not isinstance(body, dict) or not isinstance(comment, str | None):
        detail = 'The body is a JSON object {"comment": <text>}.'
    elif comment is not None and len(comment) > MAX_COMMENT_LENGTH:
        detail = f"A comment has at most {MAX_COMMENT_LENGTH} characters."
    else:
        return None
    return Answer(problem(400, "bad_request", "Bad request", detail), 400)


def _unrouted(status: int, headers: Mapping[str, str] | None = None) -> Response:
    """A path no operation serves: logged like werkzeug's routing errors, in the error shape."""
    state = current_state()
    with state.lock:
        call = state.calls.open(
            at=state.clock(), provider=NAME, operation=None, method=request.method,
            path=request.path, target=None,
        )  # fmt: skip
        call.status = status
    response = current_app.json.response(error_body(status, HTTPStatus(status).phrase))
    assert isinstance(response, Response)
    response.status_code = status
    response.headers.update(headers or {})
    return response


blueprint.register_blueprint(api)
blueprint.register_blueprint(auth)
