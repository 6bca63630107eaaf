"""The checks the worker's consumer makes before Celery reads a message's body and headers."""

from __future__ import annotations

from typing import Any

import pytest

from tasks.intake import body_problems, header_problems


@pytest.mark.parametrize("body", [
    [[], {"request": {}}, {}],
    [[], {}, None],
    {"args": [], "kwargs": {"request": {}}, "task": "cancellations.submit", "id": "x"},
])
def test_a_body_celery_can_call_has_no_problem(body: Any) -> None:
    """Protocol 2's [args, kwargs, options] and protocol 1's object pass."""
    assert body_problems(body) == []


@pytest.mark.parametrize(("body", "fields"), [
    ([[], ["request"], {}], ["kwargs"]),
    ([5, {}, {}], ["args"]),
    ([None, [], "x"], ["args", "kwargs", "options"]),
    ({"request": {}}, ["body"]),
    ([[], {}], ["body"]),
    ("args", ["body"]),
    ({"args": {}, "kwargs": []}, ["args", "kwargs"]),
])
def test_each_shape_celery_cannot_call_is_named(body: Any, fields: list[str]) -> None:
    """Each wrong part is named by its field, with what it was instead."""
    problems = body_problems(body)
    assert [p["field"] for p in problems] == fields
    assert all(" not " in p["error"] for p in problems)


def test_headers_celery_reads_unchecked() -> None:
    """A missing id, a timelimit that is not a pair, negative retries: each is a problem."""
    assert header_problems({"id": "x", "timelimit": [None, 5], "retries": 0}) == []
    fields = [p["field"] for p in header_problems({"timelimit": 5, "retries": -1})]
    assert fields == ["id", "timelimit", "retries"]
