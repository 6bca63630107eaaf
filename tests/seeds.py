"""The providers' own pages (`../shared/seeds/` beside the repository), read verbatim.

The seeds are the first fixtures of every adapter test: an adapter and our sandbox can share a
wrong guess, a provider's document cannot. The example bodies are taken out of the pages as they
are: every JSON object that starts a line and parses is an example; the field tables written in
pseudo-JSON (`"paymentsAmount": decimal`) do not parse and are skipped.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]


def seeds_dir() -> Path:
    """Where the seeds are: CANCELFLOW_SEEDS_DIR, else `shared/seeds` beside the repository."""
    configured = os.environ.get("CANCELFLOW_SEEDS_DIR", "").strip()
    return Path(configured) if configured else REPOSITORY.parent / "shared" / "seeds"


def seed_text(prefix: str) -> str:
    """The whole page whose file name starts with `prefix` (e.g. "002")."""
    directory = seeds_dir()
    matches = sorted(directory.glob(f"{prefix}_*.txt")) if directory.is_dir() else []
    if not matches:
        message = f"seed {prefix} not found in {directory}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return matches[0].read_text(encoding="utf-8")


def example_bodies(prefix: str) -> list[Any]:
    """Every example JSON object of a seed page, in the page's order, parsed verbatim."""
    text = seed_text(prefix)
    decoder = json.JSONDecoder()
    bodies: list[Any] = []
    position = 0
    while (start := text.find("{", position)) != -1:
        line_start = text.rfind("\n", 0, start) + 1
        if text[line_start:start].strip():
            position = start + 1
            continue
        try:
            body, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            position = start + 1
            continue
        bodies.append(body)
        position = end
    return bodies


def example_body(prefix: str, *, having: str) -> Any:
    """The seed's first example object with the top-level key `having`."""
    for body in example_bodies(prefix):
        if isinstance(body, dict) and having in body:
            return body
    raise AssertionError(f"seed {prefix} has no example body with {having!r}")
