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


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    # Playwright's sync API keeps an event loop running in this thread; Django must
    # allow the ORM calls that tests (and their database fixtures) make meanwhile.
    # Test-only: the app never runs with it.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()
    if previous is None:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


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


def point_at_sandbox(settings, sandbox, client, public_url: str) -> dict[str, str]:
    """Point this process at a sandbox with its OAuth client, and the CSP at its consent
    page; answer the same settings as environment variables, for a worker process."""
    settings.LAUNCHDARKLY_BASE_URL = sandbox.base_url
    settings.LAUNCHDARKLY_OAUTH_CLIENT_ID = client.client_id
    settings.LAUNCHDARKLY_OAUTH_CLIENT_SECRET = client.client_secret
    settings.PUBLIC_URL = public_url
    policy = settings.CONTENT_SECURITY_POLICY
    policy["DIRECTIVES"] = {**policy["DIRECTIVES"], "form-action": ["'self'", sandbox.base_url]}
    settings.CONTENT_SECURITY_POLICY = policy
    return {
        "LAUNCHDARKLY_BASE_URL": sandbox.base_url,
        "LAUNCHDARKLY_OAUTH_CLIENT_ID": client.client_id,
        "LAUNCHDARKLY_OAUTH_CLIENT_SECRET": client.client_secret,
        "PUBLIC_URL": public_url,
    }


def sign_in_and_connect(page, live_server, ld, email, *, slug="acme"):
    """Sign in with the factories' password and connect by a pasted writer token."""
    from playwright.sync_api import expect

    from tests.factories import TEST_PASSWORD

    page.goto(f"{live_server.url}/signin/")
    page.fill("#id_username", email)
    page.fill("#id_password", TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{live_server.url}/w/{slug}/settings/")
    page.fill("#id_token", ld.mint_token("writer"))
    page.get_by_role("button", name="Check and save token").click()
    page.check('input[name="project_key"][value="default"]')
    page.get_by_role("button", name="Use this project").click()
    expect(page.locator(".status-active")).to_have_text("Connected")
