"""The web console in a real browser: Debian's headless Chromium driven by Playwright (the
system browser, nothing downloaded), against the API on real PostgreSQL.

With ``PRIVNUM_CONSOLE_SCREENSHOTS=<dir>`` the same run saves one screenshot per page
(``scripts/console_screenshots.py`` does that for docs/console/). The test servers take a
port of ``PRIVNUM_CONSOLE_TEST_PORTS`` (``first-last``, default 18100-18249)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from agi.health import HEALTH_SCRIPT, FastAgiProbe, answer_health
from agi.server import FastAgiServer
from api.app import create_app
from binding_store.call_log import CallLogStore
from binding_store.db import Database
from binding_store.extension_models import PoolExtension
from binding_store.models import Binding, PoolNumber
from binding_store.tokens import TokenStore
from routing.api_ports import PrincipalKind
from tests.api.conftest import Env, make_env
from tests.fixtures.ami.scenario import FORBIDDEN, NOW, SHOP, cdr_events, seed

pytestmark = [pytest.mark.browser, pytest.mark.postgres]
EXT_X = "+8617099990001"
CALLER = "+8613800000001"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
_FIRST, _LAST = os.environ.get("PRIVNUM_CONSOLE_TEST_PORTS", "18100-18249").split("-")
PORTS = range(int(_FIRST), int(_LAST) + 1)  # this suite's own port range
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
    raise RuntimeError(f"no free port in {PORTS.start}-{PORTS.stop - 1}")


@pytest.fixture
async def site(pg_database: Database, tmp_path: Path) -> AsyncIterator[tuple[str, Env]]:
    if shutil.which(CHROMIUM) is None:
        pytest.skip("Chromium is not installed (as root, scripts/run-tests installs Debian's "
                    "chromium package; otherwise: apt-get install chromium)")
    env = await make_env(pg_database, tmp_path)
    await seed(env.db)
    await CallLogStore(env.db).write_batch(cdr_events())
    env.clock.now = NOW
    async with env.db.session() as session:  # an extension number: the slots chart
        session.add(PoolNumber(number=EXT_X, region="east", mode="extension",
                               extension_length=1, created_at=NOW))
        await session.flush()
        session.add_all(PoolExtension(number=EXT_X, extension=str(d)) for d in range(10))
        session.add(Binding(id="b-ext", shop_id=SHOP, order_id="O-ext", caller_a=CALLER,
                            virtual_x=EXT_X, extension="1", buyer_cipher=b"x",
                            buyer_bidx="i-ext", buyer_masked="139****0009",
                            created_at=NOW, expires_at=NOW + timedelta(hours=1)))
        await session.commit()
    auditor = await TokenStore(env.db).issue(now=NOW, kind=PrincipalKind.AUDITOR, shops=[SHOP])
    env.tokens["auditor"] = auditor.secret
    agi = FastAgiServer({HEALTH_SCRIPT: answer_health}, port=0)  # for the health probe
    await agi.start()
    env.services.health = (*[p for p in env.services.health if p.name != "fastagi"],
                           FastAgiProbe("127.0.0.1", agi.port))
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
    await agi.shutdown(grace=0)
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


class Served:
    """Every body the browser receives (pages, error pages, downloads' pages), read as it
    arrives, to scan for plaintext buyer numbers."""

    def __init__(self, context: Any) -> None:
        self._reads: list[asyncio.Future[tuple[str, str, str]]] = []
        context.on("response", self._on_response)

    def _on_response(self, response: Any) -> None:
        if not 300 <= response.status < 400:  # a redirect has no body
            self._reads.append(asyncio.ensure_future(self._read(response)))

    @staticmethod
    async def _read(response: Any) -> tuple[str, str, str]:
        kind = (await response.all_headers()).get("content-type", "")
        try:
            return response.url, kind, await response.text()
        except playwright_api.Error:  # a download's body goes to the file, read there
            return response.url, kind, ""

    async def scan(self) -> int:
        """Assert no plaintext in anything served; the number of HTML pages scanned."""
        bodies = await asyncio.gather(*self._reads)
        for url, _, body in bodies:
            for raw in FORBIDDEN:
                assert raw not in body, f"a plaintext buyer number in {url}"
        return sum(kind.startswith("text/html") for _, kind, _ in bodies)


async def fits(page: Any, url: str, width: int) -> None:
    """``url`` is no wider than the screen (no sideways scrolling)."""
    await page.goto(url)
    overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, (width, url)


async def sign_in(page: Any, base: str, token: str) -> None:
    await page.goto(f"{base}/console/sign-in")
    await page.fill("#token", token)
    await page.click("button[type=submit]")


async def sign_out(page: Any) -> None:
    await page.click("form.signout button")
    assert "/console/sign-in" in page.url


async def until_done(page: Any) -> None:
    """Watch the export page until the export has finished (it reloads itself while the
    export runs; the test reloads too, so it does not wait out the refresh)."""
    for _ in range(100):
        if await page.locator("#export-state").inner_text() != "running":
            break
        await asyncio.sleep(0.1)
        await page.reload()
    assert await page.locator("#export-state").inner_text() == "done"


async def test_console_in_chromium(site: tuple[str, Env], tmp_path: Path) -> None:
    base, env = site
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        # No JavaScript at all: every page must work without it.
        context = await browser.new_context(java_script_enabled=False, accept_downloads=True,
                                            viewport={"width": 1000, "height": 800})
        page = await context.new_page()
        served: list[str] = []
        everything = Served(context)

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
        headers = await page.locator("thead th").all_inner_texts()
        outcome_col = headers.index("Outcome") + 1
        for cell in await rejected.locator(f"td:nth-child({outcome_col})").all_inner_texts():
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
        # Calls per day; pool by region and by mode; extension slots.
        assert await page.locator("svg.chart").count() == 4
        assert "extension" in await page.locator("#pool-modes").inner_text()
        assert "fastagi: ok — answered on" in await page.locator("ul.health").inner_text()
        assert await page.locator("svg.chart rect").count() > 4
        await visit()
        await shot(page, "operations")

        await page.click("nav >> text=Exports")
        await shot(page, "exports")
        await page.click("form.filters button[type=submit]")
        await until_done(page)
        assert "Verified" in await page.locator("#chain-result").inner_text()
        await visit()
        await shot(page, "export")
        export_url = page.url
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
        assert await everything.scan() >= 12
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
        call_url = page.url
        for width in (360, 640):  # the call page; then every platform page
            await page.set_viewport_size({"width": width, "height": 740})
            await fits(page, call_url, width)
        await page.click("form.signout button")
        await sign_in(page, base, env.tokens["admin"])
        for width in (360, 640):
            await page.set_viewport_size({"width": width, "height": 740})
            for path in ("/console/shops", "/console/operations", "/console/exports"):
                await fits(page, base + path, width)
            await fits(page, export_url, width)
        await phone.close()
        await browser.close()


async def test_auditor_console_in_chromium(site: tuple[str, Env]) -> None:
    base, env = site
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        context = await browser.new_context(java_script_enabled=False, accept_downloads=True,
                                            viewport={"width": 1000, "height": 800})
        page = await context.new_page()
        served = Served(context)

        # The platform exports every shop's records: not the auditor's to see.
        await sign_in(page, base, env.tokens["admin"])
        await page.goto(f"{base}/console/exports")
        await page.click("form.filters button[type=submit]")
        await until_done(page)
        every_shop = page.url.removeprefix(base)
        await sign_out(page)

        # The auditor: its shop only, in the form and in the list.
        await sign_in(page, base, env.tokens["auditor"])
        await page.click("nav >> text=Exports")
        assert await page.locator("#shop option").all_inner_texts() == [SHOP]
        assert await page.locator(f"a[href='{every_shop}']").count() == 0
        await shot(page, "exports-auditor")
        await page.fill("#since", "2026-11-28T00:00")
        await page.fill("#until", "2026-11-28T13:00")
        await page.click("form.filters button[type=submit]")
        assert await page.locator("#export-state").inner_text() in ("running", "done")
        await until_done(page)
        assert "Verified" in await page.locator("#chain-result").inner_text()
        facts = await page.locator("dl.facts").inner_text()
        assert SHOP in facts and "auditor:" in facts
        await shot(page, "export-auditor")
        async with page.expect_download() as first:
            await page.click("a[href$='/file']")
        data = await read_text(await (await first.value).path())
        async with page.expect_download() as second:
            await page.click("a[href$='/manifest']")
        manifest = json.loads(await read_text(await (await second.value).path()))
        lines = data.splitlines()
        header = lines[0].split(",")
        shops = {line.split(",")[header.index("shop_id")] for line in lines[1:]}
        assert manifest["shop_id"] == SHOP and shops == {SHOP}
        assert manifest["rows"] == len(lines) - 1 > 0
        assert_masked(data)
        own = page.url.removeprefix(base)
        await page.goto(f"{base}/console/exports")
        assert await page.locator(f"a[href='{own}']").count() == 1

        # Not the platform's export, its file or manifest; not the operations page; not
        # another shop's call log.
        for path, status in ((every_shop, 404), (f"{every_shop}/file", 404),
                             (f"{every_shop}/manifest", 404), ("/console/operations", 403),
                             ("/console/shops/shop-2/calls", 403)):
            response = await page.goto(base + path)
            assert response is not None and response.status == status, path
        # Its own shop's call log is readable (the call log's rule).
        response = await page.goto(f"{base}/console/shops/{SHOP}/calls")
        assert response is not None and response.status == 200
        assert await served.scan() >= 8
        await context.close()
        await browser.close()
