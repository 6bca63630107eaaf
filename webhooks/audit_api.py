"""The audit export over the API (issue 17): ``GET /api/v1/jobs/{id}/attempts``, every provider
call of the job as JSON (the default), CSV or NDJSON, chosen by ``?format=`` or else by the
Accept header; bearer-token protected like the status API. Streamed a page of calls at a time."""

from __future__ import annotations

from flask import Blueprint, Response, abort, request, stream_with_context
from flask.typing import ResponseReturnValue

from webhooks.api import require_token
from webhooks.apidoc import Reply, operation
from webhooks.context import audit
from webhooks.models import AttemptsQuery
from worker.services.audit import ExportFormat, open_export
from worker.services.views.models import AttemptExport

blueprint = Blueprint("audit_api", __name__, url_prefix="/api/v1")

NOTE_HEADER = "X-Cancelflow-Note"


def _format() -> ExportFormat:
    """``?format=`` when given (400 when unknown), else the best match of Accept, else JSON."""
    asked = request.args.get("format")
    if asked is not None:
        try:
            return ExportFormat(asked)
        except ValueError:
            abort(400, f"format must be one of {', '.join(f.value for f in ExportFormat)}")
    offered = [f.media_type for f in (ExportFormat.JSON, ExportFormat.CSV, ExportFormat.NDJSON)]
    best = request.accept_mimetypes.best_match(offered, default=offered[0])
    return next(f for f in ExportFormat if f.media_type == best)


@operation(blueprint, "GET", "/jobs/<job_id>/attempts", query=AttemptsQuery,
           summary="Every provider call of every leg of the job, by start time (JSON, CSV with a "
                   "header row, or NDJSON: ?format= or else Accept); streamed",
           replies={200: Reply("the job's calls (X-Cancelflow-Note says when they were pruned)",
                               AttemptExport, ("text/csv", "application/x-ndjson")),
                    400: Reply("an unknown format"), 404: Reply("no such job")})
@require_token
def job_attempts(job_id: str) -> ResponseReturnValue:
    """Every call of every leg of the job, by start time; never the calls' response bodies."""
    form = _format()
    # No job id holds a NUL, and PostgreSQL refuses one in a text parameter (a 500).
    export = None if "\x00" in job_id else open_export(audit(), job_id)
    if export is None:
        abort(404, "no such job")
    headers = {}
    if form is not ExportFormat.JSON:
        headers["Content-Disposition"] = (
            f'attachment; filename="cancelflow-{job_id}-attempts.{form.value}"')
    if export.note:
        headers[NOTE_HEADER] = export.note
    return Response(stream_with_context(export.chunks(form)), headers=headers,
                    mimetype=form.media_type)
