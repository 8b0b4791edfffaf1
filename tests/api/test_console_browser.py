"""The web console in a real browser: Debian's headless Chromium driven by Playwright (the
system browser, nothing downloaded), against the API on real PostgreSQL.

With ``PRIVNUM_CONSOLE_SCREENSHOTS=<dir>`` the same run saves one screenshot per page
(``scripts/console_screenshots.py`` does that for docs/console/)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from api.app import create_app
from binding_store.call_log import CallLogStore
from binding_store.db import Database
from tests.api.conftest import Env, make_env
from tests.fixtures.ami.scenario import FORBIDDEN, NOW, SHOP, cdr_events, seed

pytestmark = [pytest.mark.browser, pytest.mark.postgres]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PORTS = range(18100, 18250)  # this suite's own port range
SHOTS = os.environ.get("PRIVNUM_CONSOLE_SCREENSHOTS")

playwright_api = pytest.importorskip("playwright.async_api",
                                     reason="the playwright package is not installed")


def free_port() -> int:
    for port in PORTS:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 18100-18249")


@pytest.fixture
async def site(pg_database: Database, tmp_path: Path) -> AsyncIterator[tuple[str, Env]]:
    if shutil.which(CHROMIUM) is None:
        pytest.skip("Chromium is not installed (as root, scripts/run-tests installs Debian's "
                    "chromium package; otherwise: apt-get install chromium)")
    env = await make_env(pg_database, tmp_path)
    await seed(env.db)
    await CallLogStore(env.db).write_batch(cdr_events())
    env.clock.now = NOW
    app = create_app(env.services)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off",
                                           log_config=None, access_log=False))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn sets a flag, no event
        await asyncio.sleep(0.05)
    yield f"http://127.0.0.1:{port}", env
    server.should_exit = True
    await task
    await app.state.console.jobs.aclose()
    await env.client.aclose()


async def shot(page: Any, name: str) -> None:
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        await page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=True)


async def read_text(path: Path) -> str:
    return await asyncio.to_thread(path.read_text, encoding="utf-8")


def assert_masked(html: str) -> None:
    for raw in FORBIDDEN:
        assert raw not in html, "a plaintext buyer number in a served page"


async def test_console_in_chromium(site: tuple[str, Env], tmp_path: Path) -> None:
    base, env = site
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        # No JavaScript at all: every page must work without it.
        context = await browser.new_context(java_script_enabled=False, accept_downloads=True,
                                            viewport={"width": 1000, "height": 800})
        page = await context.new_page()
        served: list[str] = []

        async def visit() -> None:
            served.append(await page.content())

        # Sign in as the shop's main account.
        await page.goto(f"{base}/console/shops/{SHOP}/calls")
        assert "/console/sign-in" in page.url
        await shot(page, "sign-in")
        await page.fill("#token", env.tokens["main"])
        await page.click("button[type=submit]")
        assert page.url.startswith(f"{base}/console/shops/{SHOP}/calls")
        assert await page.title() == f"Calls of {SHOP} · privnum"
        cookie = next(c for c in await context.cookies() if c["name"] == "privnum_console")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["expires"] > 0
        await visit()
        all_rows = await page.locator("tbody tr").count()
        await shot(page, "calls")

        # Filter: rejected calls only.
        await page.select_option("#outcome", "rejected")
        await page.click("form.filters button[type=submit]")
        assert "outcome=rejected" in page.url
        rejected = page.locator("tbody tr")
        assert 0 < await rejected.count() < all_rows
        for cell in await rejected.locator("td:nth-child(6)").all_inner_texts():
            assert cell == "rejected"
        await visit()

        # Open a call: its timeline.
        await rejected.first.locator("a").first.click()
        assert "/calls/" in page.url
        timeline = await page.locator("ol.timeline").inner_text()
        assert "Started" in timeline and "Rejected" in timeline and "Q.850 cause" in timeline
        await visit()
        await shot(page, "call")

        # Another shop's pages and the platform's pages are refused.
        for path in ("/console/shops/shop-2/calls", "/console/operations", "/console/exports"):
            response = await page.goto(base + path)
            assert response is not None and response.status == 403
            assert await page.locator("h1").inner_text() == "Not allowed"

        # Sign out: the session is gone.
        await page.goto(f"{base}/console/shops/{SHOP}/calls")
        await page.click("form.signout button")
        assert "/console/sign-in" in page.url
        await page.goto(f"{base}/console/shops/{SHOP}/calls")
        assert "/console/sign-in" in page.url

        # The platform: operations (charts) and an export.
        await page.fill("#token", env.tokens["admin"])
        await page.click("button[type=submit]")
        # Back where the sign-in was asked for: the platform may read every shop's log.
        assert page.url == f"{base}/console/shops/{SHOP}/calls"
        await page.click("nav >> text=Shops")
        assert await page.locator(f"a[href='/console/shops/{SHOP}/calls']").count() == 1
        await shot(page, "shops")
        await page.click("nav >> text=Operations")
        assert await page.locator("svg.chart").count() == 2
        assert await page.locator("svg.chart rect").count() > 4
        await visit()
        await shot(page, "operations")

        await page.click("nav >> text=Exports")
        await shot(page, "exports")
        await page.click("form.filters button[type=submit]")
        for _ in range(100):  # the page refreshes itself while the export runs
            if await page.locator("#export-state").inner_text() == "done":
                break
            await asyncio.sleep(0.1)
            await page.reload()
        assert await page.locator("#export-state").inner_text() == "done"
        assert "Verified" in await page.locator("#chain-result").inner_text()
        await visit()
        await shot(page, "export")
        async with page.expect_download() as first:
            await page.click("a[href$='/file']")
        data = await read_text(await (await first.value).path())
        async with page.expect_download() as second:
            await page.click("a[href$='/manifest']")
        manifest = json.loads(await read_text(await (await second.value).path()))
        assert manifest["rows"] == len(data.splitlines()) - 1 > 0  # minus the CSV header
        assert_masked(data)
        for html in served:
            assert_masked(html)
        await context.close()

        # A phone, with JavaScript (to measure): nothing wider than the screen, and the
        # keyboard reaches the skip link first.
        phone = await browser.new_context(viewport={"width": 360, "height": 740})
        page = await phone.new_page()
        await page.goto(f"{base}/console/sign-in")
        await page.fill("#token", env.tokens["main"])
        await page.press("#token", "Enter")
        await page.wait_for_url(f"{base}/console/shops/{SHOP}/calls")
        # 360 px: a phone; 640 px: 80 columns of 8-px characters.
        for width in (360, 640):
            await page.set_viewport_size({"width": width, "height": 740})
            for path in (f"/console/shops/{SHOP}/calls", "/console/sign-in"):
                await page.goto(base + path)
                overflow = await page.evaluate(
                    "document.documentElement.scrollWidth - document.documentElement.clientWidth")
                assert overflow <= 0, (width, path)
        await page.set_viewport_size({"width": 360, "height": 740})
        await page.goto(f"{base}/console/shops/{SHOP}/calls")
        await shot(page, "calls-phone")
        await page.keyboard.press("Tab")
        assert await page.evaluate("document.activeElement.textContent") == "Skip to content"
        await page.keyboard.press("Enter")
        assert await page.evaluate("document.activeElement.id") == "main"
        # Tab on to the first call's link and open it with Enter: no mouse needed.
        for _ in range(30):
            await page.keyboard.press("Tab")
            href = await page.evaluate("document.activeElement.getAttribute('href') || ''")
            if "/calls/" in href:
                break
        await page.keyboard.press("Enter")
        await page.wait_for_url(f"{base}/console/shops/{SHOP}/calls/*")
        assert await page.locator("ol.timeline li").count() >= 2
        await phone.close()
        await browser.close()
