"""The Celery dispatcher sends each internal task by name, on the internal queue, through the app
it is given."""

from __future__ import annotations

from typing import Any

from worker.dispatch import CeleryDispatcher


class RecordingApp:
    """Stands in for a Celery app: records each ``send_task``."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def send_task(self, name: str, **options: Any) -> None:
        self.sent.append((name, options))


def test_each_port_call_sends_its_task_on_the_internal_queue() -> None:
    """Given a dispatcher over an app, when each port method is called, then the app sends the
    named task with the arguments, a countdown only when there is one, and no retry for pages."""
    app = RecordingApp()
    dispatcher = CeleryDispatcher(app)  # type: ignore[arg-type]

    dispatcher.process_leg("leg-1")
    dispatcher.process_leg("leg-2", countdown=7.5)
    dispatcher.process_legs(["leg-3", "leg-4"])
    dispatcher.read_evidence("leg-5")
    dispatcher.settle_callbacks("leg-6")
    dispatcher.recover_callbacks("leg-7")
    dispatcher.page_arrived("81234", "bulk-1")

    internal = {"queue": "cancelflow.internal"}
    assert app.sent == [
        ("cancelflow.process_leg", {"args": ["leg-1"], **internal, "countdown": None}),
        ("cancelflow.process_leg", {"args": ["leg-2"], **internal, "countdown": 7.5}),
        ("cancelflow.process_legs", {"args": [["leg-3", "leg-4"]], **internal}),
        ("cancelflow.read_evidence", {"args": ["leg-5"], **internal}),
        ("cancelflow.settle_callbacks", {"args": ["leg-6"], **internal}),
        ("cancelflow.recover_callbacks", {"args": ["leg-7"], **internal}),
        ("cancelflow.page_arrived", {"args": ["81234", "bulk-1"], **internal, "retry": False}),
    ]
