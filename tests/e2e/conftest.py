"""End to end in a real browser: Debian's chromium driven by Playwright for Python, against a real API
(uvicorn on a port of its own, restartable), worker, Temporal dev server, PostgreSQL and SMTP server.

Never downloads a browser: a missing /usr/bin/chromium fails the tests with what to install.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvicorn
from sse_starlette.sse import AppStatus
from temporalio.client import Client

from notiflow.settings import DEV_JWT_SECRET, Settings
from notiflow.tokens import make_api_token
from programs.api.app import create_app
from programs.api.frontend import STATIC
from programs.dev.ports import free_port
from programs.dev.seed import seed_demo_users
from tests.api.conftest import restore_policies, restore_templates  # noqa: F401  (fixtures of the console tests)
from tests.api.helpers import temporal_address

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def token(user_id: str, *roles: str) -> str:
    return make_api_token(DEV_JWT_SECRET, user_id, list(roles), 3600)


class RestartableApi:
    """The API under uvicorn in a thread, on one port across restarts (a dropped stream, then the same URL)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.port = free_port()
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, timeout: float = 20.0) -> None:
        AppStatus.should_exit = False
        config = uvicorn.Config(
            create_app(self.settings, demo=True),  # /demo and /demo/session, as `notiflow dev` serves them
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=f"e2e-api-{self.port}", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise AssertionError(f"the API did not start on port {self.port} (see the log above)")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self.server is not None and self.thread is not None:
            AppStatus.should_exit = True  # end open event streams at once, as a SIGTERM would (no 1 s wait)
            self.server.should_exit = True
            await asyncio.to_thread(self.thread.join, 10)
            AppStatus.should_exit = False  # process-wide: leave it as found for other tests' streams
            self.server = self.thread = None


@pytest.fixture(scope="session")
def built_pages() -> Path:
    for page in ("demo", "admin"):
        if not (STATIC / page / "index.html").is_file():
            pytest.fail(
                f"{STATIC / page / 'index.html'} is missing: build the pages with `make web` "
                "(`make test` does it before the suite)"
            )
    return STATIC


@pytest.fixture(scope="session")
async def browser():
    if not Path(CHROMIUM).is_file():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's chromium "
            "(apt-get install -y chromium; .ci/run does it). No browser is ever downloaded."
        )
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


@pytest.fixture
async def stack(settings: Settings, db, worker, temporal_client: Client, built_pages) -> AsyncIterator[RestartableApi]:
    """API + worker on this test's task queue, signed with the development secret (so /demo is served),
    the demo users in the directory."""
    api_settings = settings.model_copy(
        update={
            "jwt_secret": DEV_JWT_SECRET,
            "temporal_address": temporal_address(temporal_client),
            "rate_limit_per_minute": 1_000_000,
            "auth_failure_limit_per_minute": 1_000_000,
        }
    )
    await seed_demo_users(db)
    api = RestartableApi(api_settings)
    await api.start()
    yield api
    await api.stop()


@pytest.fixture
async def page(browser):
    """A fresh browser context; console errors are collected in ``page.console_errors``."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    tab = await context.new_page()
    tab.console_errors = []
    tab.on("console", lambda message: message.type == "error" and tab.console_errors.append(message.text))
    tab.on("pageerror", lambda error: tab.console_errors.append(str(error)))
    yield tab
    await context.close()


def screenshot_dir() -> Path:
    folder = Path(__file__).parent / "screenshots"
    folder.mkdir(exist_ok=True)
    return folder
