"""The e2e tier's browser: Debian's headless Chromium, driven through chromedriver."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def _find(path: str) -> str | None:
    return path if os.access(path, os.X_OK) else shutil.which(os.path.basename(path))


def _browser_binaries() -> tuple[str, str]:
    """Debian's chromium and chromedriver; CI must have them, elsewhere the test is skipped."""
    chromium, chromedriver = _find(CHROMIUM), _find(CHROMEDRIVER)
    if chromium is None or chromedriver is None:
        missing = [name for name, found in (("chromium", chromium),
                                            ("chromedriver", chromedriver)) if found is None]
        message = (f"{' and '.join(missing)} not found (looked for {CHROMIUM}, {CHROMEDRIVER} "
                   "and on PATH): install Debian's chromium and chromium-driver; .ci/run does "
                   "so when run as root")
        if os.environ.get("CI"):
            pytest.fail(f"CI needs the browser tests: {message}")
        pytest.skip(message)
    return chromium, chromedriver


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    """A fresh headless Chromium profile that reaches nothing but the receiver."""
    chromium, chromedriver = _browser_binaries()
    options = Options()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--window-size=1600,1000",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    service = Service(executable_path=chromedriver, log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    try:
        yield driver
    finally:
        driver.quit()
