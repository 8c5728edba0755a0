"""Debian's chromium driven by Playwright: a fake camera playing a moving bar, the hub and the
API on real ports with the pages' cross-origin set-up, axe-core and screenshot helpers."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from deploy.embedded import free_port
from pawhub.hub import build_hub_app
from pawhub.settings import Settings
from realtime.limits import SocketLimits
from realtime.server import KEEPALIVE_TIMEOUT_S, HubSite
from tests.conftest import serve_api

ARTIFACTS = Path(__file__).parent / "artifacts"
AXE = Path(__file__).parents[1] / "js" / "node_modules" / "axe-core" / "axe.min.js"
PASSWORD = "correct horse"  # tests/conftest.py's make_user
WIDTHS = {"phone": (360, 740), "desktop": (1280, 860)}


def chromium_path() -> str:
    path = shutil.which("chromium")
    assert path, "Debian's chromium is missing: `make system-deps` installs it"
    return path


def write_moving_bar(path: Path, width: int = 320, height: int = 240, frames: int = 30) -> Path:
    """A Y4M clip of a white bar crossing a grey field, so live video differs from black."""
    chroma = bytes([128]) * (width * height // 2)
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F15:1 Ip A1:1 C420jpeg\n".encode())
        bar = width // 8
        for frame in range(frames):
            left = frame * (width - bar) // (frames - 1)
            row = bytes([90]) * left + bytes([235]) * bar + bytes([90]) * (width - left - bar)
            out.write(b"FRAME\n" + row * height + chroma)
    return path


@dataclass(frozen=True)
class Servers:
    hub_url: str
    api_url: str
    hub: web.Application
    settings: Settings


async def serve_pages(
    settings: Settings, limits: SocketLimits | None = None
) -> AsyncIterator[Servers]:
    """The hub (serving /app/, with `limits` if given) and the API that allows the hub's
    origin, as `pawhub up` sets them: the hub names the API's address, the API answers the
    hub's origin."""
    hub_port = free_port()
    hub_origin = f"http://127.0.0.1:{hub_port}"
    async with serve_api(settings.model_copy(update={"cors_allowed_origins": [hub_origin]})) as api:
        hub_settings = settings.model_copy(update={"public_api_url": api})
        hub = build_hub_app(hub_settings, limits=limits)
        runner = web.AppRunner(hub, keepalive_timeout=KEEPALIVE_TIMEOUT_S)
        await runner.setup()
        await HubSite(runner, "127.0.0.1", hub_port, max_connections_per_ip=0).start()
        try:
            yield Servers(hub_origin, api, hub, hub_settings)
        finally:
            await runner.cleanup()


async def launch(video: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium_path(),
            headless=True,
            args=[
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-video-capture={video}",
                "--autoplay-policy=no-user-gesture-required",
                "--no-sandbox",
            ],
        )
        try:
            yield browser
        finally:
            await browser.close()


async def new_person(browser: Browser, name: str) -> tuple[BrowserContext, Page]:
    """A person's own browser context; `name` ends its user agent, so the hub can tell it."""
    w, h = WIDTHS["desktop"]
    agent = f"Mozilla/5.0 (X11; Linux x86_64) Chrome/{browser.version} pawhub-e2e/{name}"
    context = await browser.new_context(viewport={"width": w, "height": h}, user_agent=agent)
    await context.grant_permissions(["camera", "microphone"])
    page = await context.new_page()
    page.set_default_timeout(20_000)
    return context, page


async def sign_in(page: Page, hub_url: str, path: str, email: str) -> None:
    await page.goto(f"{hub_url}{path}")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("button", name="Sign out").wait_for()


async def serious_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations (evaluated over CDP, so the page's CSP,
    which forbids inline scripts, needs no exception)."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.evaluate(AXE.read_text())
    result = await page.evaluate("axe.run(document).then(r => JSON.stringify(r.violations))")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
        for v in json.loads(result)
        if v["impact"] in ("serious", "critical")
    ]


async def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    # Animations off (a live page never settles) and room for a loaded machine.
    await page.screenshot(path=str(path), full_page=True, animations="disabled", timeout=60_000)
    return path


async def at_each_width(page: Page, name: str) -> list[dict[str, Any]]:
    """Screenshots at 360 px and 1280 px, and at each axe-core's serious findings and any
    sideways scrolling (the page must fit the screen)."""
    found = []
    for width, (w, h) in WIDTHS.items():
        await page.set_viewport_size({"width": w, "height": h})
        await page.wait_for_timeout(200)
        await screenshot(page, f"{name}-{width}")
        found += [{**violation, "width": width} for violation in await serious_violations(page)]
        scroll_width = await page.evaluate("document.documentElement.scrollWidth")
        if scroll_width > w:
            found.append({"id": "sideways-scroll", "scroll_width": scroll_width, "width": width})
    return found
