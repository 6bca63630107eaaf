"""Test modules share helpers through tests/support.py, tests/seeds.py and fixtures, never by
importing one another (nor tests.conftest, which pytest imports itself)."""

from __future__ import annotations

from pathlib import Path

from tests.support import imports_in, is_within

TESTS = Path(__file__).resolve().parents[1]
FORBIDDEN = ("tests.unit", "tests.integration", "tests.e2e", "tests.conftest")

def _test_modules_imported(path: Path) -> set[str]:
    """The modules under tests.unit/integration/e2e or tests.conftest that ``path`` imports."""
    found = {site.module for site in imports_in(path)
             if any(is_within(site.module, package) for package in FORBIDDEN)}
    # `from tests.conftest import X` names tests.conftest, not a module tests.conftest.X.
    return {module for module in found
            if not any(module.startswith(f"{other}.") for other in found)}


def test_no_test_module_imports_another() -> None:
    """No file under tests/ imports tests.unit.*, tests.integration.*, tests.e2e.* or
    tests.conftest, beyond the imports listed until the shared fakes move."""
    offending: dict[str, set[str]] = {}
    for path in sorted(TESTS.rglob("*.py")):
        relative = path.relative_to(TESTS).as_posix()
        extra = _test_modules_imported(path)
        if extra:
            offending[relative] = extra
    assert offending == {}
