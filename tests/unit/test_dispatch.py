"""The Celery dispatcher sends each internal task by name, on the internal queue, through the app
it is given."""

from __future__ import annotations

from typing import Any

from worker.dispatch import CeleryDispatcher
from worker.domain.states import Provider
from worker.domain.task_label import TaskLabel

JOB = "5b1c0f7e-0000-4000-8000-000000000001"


class RecordingApp:
    """Stands in for a Celery app: records each ``send_task``."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def send_task(self, name: str, **options: Any) -> None:
        self.sent.append((name, options))


def test_each_port_call_sends_its_task_on_the_internal_queue() -> None:
    """Given a dispatcher over an app, when each port method is called, then the app sends the
    named task with the arguments, a countdown only when there is one, no retry for pages, and
    readable args (the leg count when no label is given)."""
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
    one, none = {"argsrepr": "legs=1", "kwargsrepr": "{}"}, {"kwargsrepr": "{}"}
    assert app.sent == [
        ("cancelflow.process_leg", {"args": ["leg-1"], **internal, "countdown": None, **one}),
        ("cancelflow.process_leg", {"args": ["leg-2"], **internal, "countdown": 7.5, **one}),
        ("cancelflow.process_legs", {"args": [["leg-3", "leg-4"]], **internal,
                                     "argsrepr": "legs=2", **none}),
        ("cancelflow.read_evidence", {"args": ["leg-5"], **internal, **one}),
        ("cancelflow.settle_callbacks", {"args": ["leg-6"], **internal, **one}),
        ("cancelflow.recover_callbacks", {"args": ["leg-7"], **internal, **one}),
        ("cancelflow.page_arrived", {"args": ["81234", "bulk-1"], **internal, "retry": False,
                                     "argsrepr": "bulk_payment=81234 code=bulk-1", **none}),
    ]


def test_a_label_names_the_job_provider_and_leg_count_not_the_leg_ids() -> None:
    """Given a label, when a batch is dispatched, then its readable args (what Flower shows)
    name the job, the provider and how many legs, never the leg ids or targets."""
    app = RecordingApp()
    dispatcher = CeleryDispatcher(app)  # type: ignore[arg-type]

    dispatcher.process_legs(["leg-a", "leg-b"], label=TaskLabel.of(JOB, Provider.BAMBORA, 2))
    dispatcher.process_leg("leg-a", 2.5, label=TaskLabel.of(JOB, Provider.PAYWALL))

    assert [options["argsrepr"] for _, options in app.sent] == [
        f"job={JOB} provider=bambora legs=2", f"job={JOB} provider=paywall legs=1"]
    assert app.sent[0][1]["args"] == [["leg-a", "leg-b"]]
