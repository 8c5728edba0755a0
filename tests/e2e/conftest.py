"""The pages' tests: per test module, a hub serving /app/ with its API (tests.e2e.browser.
serve_pages) and a chromium whose fake camera shows a moving bar."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser

from pawhub.settings import Settings
from tests.e2e.browser import Servers, launch, serve_pages, write_moving_bar
from tests.janus_process import janus  # noqa: F401 (a real Janus)


@pytest.fixture(scope="module")
async def servers(settings: Settings, request: pytest.FixtureRequest) -> AsyncIterator[Servers]:
    """On a Redis namespace of the module's own: a scoring worker started for its pages meets
    only its messages, not every message the test run handed off before."""
    module = request.module.__name__.rsplit(".", 1)[-1]
    own = settings.model_copy(update={"redis_namespace": f"{settings.redis_namespace}-{module}"})
    async for running in serve_pages(own):
        yield running


@pytest.fixture(scope="module")
async def browser(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Browser]:
    video = write_moving_bar(tmp_path_factory.mktemp("camera") / "moving-bar.y4m")
    async for running in launch(video):
        yield running


@pytest.fixture(autouse=True)
async def close_pages_after_each_test(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Each person's browser context closes with the test that opened it: pages left open keep
    their calls running (decoding video, reporting stats) through every later test."""
    yield
    if "browser" in request.fixturenames:
        browser: Browser = request.getfixturevalue("browser")
        for context in browser.contexts:
            await context.close()
