"""The audit export over the API (issue 17): ``GET /api/v1/jobs/{id}/attempts``, every provider
call of the job as JSON (the default), CSV or NDJSON, chosen by ``?format=`` or else by the
Accept header; bearer-token protected like the status API. Streamed a page of calls at a time."""

from __future__ import annotations

from flask import Blueprint, Response, abort, request, stream_with_context
from flask.typing import ResponseReturnValue

from webhooks.api import require_token
from webhooks.context import audit
from worker.services.audit import ExportFormat, open_export

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


@blueprint.get("/jobs/<job_id>/attempts")
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
