"""Real headless Chromium (Debian's package, driven by Playwright; no browser download)
on the pages served by the real API process."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Response, sync_playwright

from ctt.config import REPO_ROOT
from tests.support import ApiServer

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps trying to reach outside hosts.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]
# Named in the README: look at these after a run.
SCREENSHOTS = REPO_ROOT / "test-artifacts" / "screenshots"


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "chromium missing: the test set-up installs Debian's chromium"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def contexts(browser: Browser) -> Iterator[list[BrowserContext]]:
    """Append each context a test opens: closed after it, so that their event streams end."""
    opened: list[BrowserContext] = []
    yield opened
    for context in opened:
        context.close()


class PageErrors:
    """Uncaught errors and failed requests of a page: a page that threw is a failed test."""

    def __init__(self, page: Page, absent: tuple[str, ...] = ()) -> None:
        """``absent``: API paths the server under test lacks (ApiOffers): their 404 is expected."""
        self.errors: list[str] = []
        self.absent = absent
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        page.on("response", self._response)
        page.on("console", self._console)

    def _response(self, response: Response) -> None:
        if response.status >= 500:
            self.errors.append(f"{response.status} {response.url}")

    def _console(self, message: ConsoleMessage) -> None:
        url = message.location.get("url", "")
        if message.type == "error" and not any(f"/api/v1{path}" in url for path in self.absent):
            self.errors.append(f"console: {message.text}")


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


class ApiOffers:
    """What the API under test offers, from its OpenAPI document: the pages' issue-13 parts are
    tested where the resources exist and skipped, naming what is missing, where they do not yet."""

    def __init__(self, api_url: str) -> None:
        with urllib.request.urlopen(f"{api_url}/openapi.json", timeout=10) as response:
            self.doc = json.load(response)

    def path(self, path: str) -> bool:
        """Whether the API serves ``path`` (under /api/v1, as the pages write it)."""
        return f"/api/v1{path}" in self.doc["paths"]

    def lacking(self, *paths: str) -> tuple[str, ...]:
        """Those of ``paths`` the API does not serve (for PageErrors: a page asking them gets a 404)."""
        return tuple(p for p in paths if not self.path(p))

    def property(self, schema: str, name: str) -> bool:
        return name in self.doc["components"]["schemas"].get(schema, {}).get("properties", {})

    def enum(self, schema: str, name: str, value: str) -> bool:
        spec = self.doc["components"]["schemas"].get(schema, {}).get("properties", {}).get(name, {})
        return value in json.dumps(spec)

    def require(self, *needs: tuple[bool, str]) -> None:
        """Skip the calling test, naming every resource it needs that the API lacks."""
        missing = [what for ok, what in needs if not ok]
        if missing:
            pytest.skip(f"the API on this branch lacks {', '.join(missing)} (docs/api.md): "
                        "the test runs by itself once the API offers them")


@pytest.fixture(scope="session")
def api_offers(api_server: ApiServer) -> ApiOffers:
    return ApiOffers(api_server.url)
