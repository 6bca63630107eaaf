"""The readable arguments (argsrepr) every internal task message carries, for Flower."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from celery import Celery

from worker.dispatch import PAGE_ARRIVED, PROCESS_LEG, PROCESS_LEGS, CeleryDispatcher
from worker.domain.states import Provider
from worker.domain.task_label import TaskLabel

JOB = "5b1c0f7e-0000-4000-8000-000000000001"


@dataclass
class SentTasks:
    """Stands in for the Celery app: keeps what ``send_task`` was given."""

    sent: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def send_task(self, name: str, **options: Any) -> None:
        self.sent.append((name, options))


def dispatcher() -> tuple[CeleryDispatcher, SentTasks]:
    app = SentTasks()
    return CeleryDispatcher(cast(Celery, app)), app


def test_a_batch_names_its_job_provider_and_leg_count_not_its_leg_ids() -> None:
    """Given a label, a batch's argsrepr names the job, the provider and how many legs."""
    celery, app = dispatcher()
    celery.process_legs(["leg-a", "leg-b"], label=TaskLabel.of(JOB, Provider.BAMBORA, 2))
    name, options = app.sent[0]
    assert name == PROCESS_LEGS and options["args"] == [["leg-a", "leg-b"]]
    assert options["argsrepr"] == f"job={JOB} provider=bambora legs=2"
    assert options["kwargsrepr"] == "{}"


def test_without_a_label_the_args_say_the_leg_count() -> None:
    """A dispatch whose caller knows no job still reads as a leg count, not a list of ids."""
    celery, app = dispatcher()
    celery.process_legs(["leg-a", "leg-b", "leg-c"])
    celery.process_leg("leg-a", 2.5)
    assert [options["argsrepr"] for _, options in app.sent] == ["legs=3", "legs=1"]
    assert app.sent[1][0] == PROCESS_LEG and app.sent[1][1]["countdown"] == 2.5


def test_a_page_names_its_bulk_payment_and_code() -> None:
    """The receiver's page message reads as the bulk payment and code it settles."""
    celery, app = dispatcher()
    celery.page_arrived("bulk-1", "code-9")
    name, options = app.sent[0]
    assert name == PAGE_ARRIVED and options["argsrepr"] == "bulk_payment=bulk-1 code=code-9"
