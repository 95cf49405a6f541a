"""Browser tests: Debian's chromium driven by playwright, against the live server.

Each test saves a screenshot per step under test-artifacts/e2e/<test name>/; the
folders are listed at the end of the run."""

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
_screenshot_folders: list[Path] = []

# Playwright's sync API runs an event loop in this thread; Django must allow the
# ORM calls our tests make between browser steps.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


class Steps:
    """The browser page, plus a numbered screenshot per step."""

    def __init__(self, page, folder: Path):
        self.page, self.folder, self.count = page, folder, 0

    def shot(self, name: str) -> None:
        self.count += 1
        self.page.screenshot(path=self.folder / f"{self.count:02d}-{name}.png", full_page=True)


@pytest.fixture
def steps(browser, request):
    folder = ARTIFACTS / re.sub(r"[^\w.-]+", "_", request.node.name)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    _screenshot_folders.append(folder)
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield Steps(page, folder)
    context.close()


def pytest_terminal_summary(terminalreporter):
    if _screenshot_folders:
        terminalreporter.write_line("browser screenshots:")
        for folder in _screenshot_folders:
            terminalreporter.write_line(f"  {folder}")
