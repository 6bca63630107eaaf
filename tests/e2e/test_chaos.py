"""The fault run, small: workers killed, Redis restarted, the receiver killed, a fault storm,
duplicate messages, two beats; nothing lost, nothing cancelled twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos.scenario import run

pytestmark = pytest.mark.e2e


def test_nothing_lost_nothing_doubled_under_faults(tmp_path: Path) -> None:
    """Every job ends final; effective cancellations equal cancelled legs; every acknowledged
    page is stored."""
    figures = run(size=4, run_dir=tmp_path)
    assert figures.jobs_final == figures.jobs_submitted == 12
    assert figures.effective_cancellations == figures.legs_cancelled
    assert figures.pages_acknowledged == figures.pages_stored
    assert figures.faults_applied > 0 and figures.worker_kills == 3
