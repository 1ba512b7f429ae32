"""End to end in real headless Chromium (Debian's, driven by Playwright): a panel
sends an alarm over DC-09 to a real gateway, an operator sees it arrive without
reloading, takes it and disposes of it, and the auditor finds it in the access
register. Also: who may not see what. Saves a screenshot of every page into
build/screenshots/; with JIFANG_UPDATE_SCREENSHOTS=1 into docs/screenshots/ (the
README's and docs/console.md's), so a test run leaves the tracked ones alone."""
import os
import re
import shutil
from pathlib import Path

import pytest

from tests.console.support import PASSWORD, Console

playwright_api = pytest.importorskip("playwright.async_api", reason="playwright (PyPI) is not installed")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip("Debian's chromium is not installed (tools/install-system-deps.sh installs it)",
                allow_module_level=True)

ROOT = Path(__file__).parents[2]
SCREENSHOTS = ROOT / ("docs" if os.environ.get("JIFANG_UPDATE_SCREENSHOTS") == "1" else "build") / "screenshots"
# Flags for a machine without internet: no background requests, no first-run UI.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--autoplay-policy=no-user-gesture-required"]
LOGIN_PAGE = re.compile(r"/login(#.*)?$")
TIMER = re.compile(r"^\d+:\d\d$")     # a running timer, minutes:seconds since arrival


@pytest.fixture
async def browser(tmp_path):
    """Chromium with a fresh profile. After the test, no page may have thrown a
    script error or logged one (a Content-Security-Policy refusal shows up there);
    refused HTTP answers the test provokes on purpose are not script errors."""
    errors = []

    def watch(page):
        page.on("pageerror", lambda exc: errors.append("script error: %s" % exc))
        page.on("console", lambda msg: msg.type == "error" and "Failed to load resource" not in msg.text
                and errors.append("console error: %s" % msg.text))
    async with playwright_api.async_playwright() as pw:
        context = await pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=FLAGS,
            viewport={"width": 1360, "height": 860}, accept_downloads=True)
        for page in context.pages:
            watch(page)
        context.on("page", watch)
        yield context
        await context.close()
    assert errors == []


async def shot(page, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / (name + ".png")), full_page=True)


async def log_in(page, base, username, live=True):
    await page.goto(base + "login")
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.click("#login-button")
    await page.wait_for_selector("#who:has-text('%s')" % username)
    if live:
        await page.wait_for_selector("#live-status.live")


async def log_out(page):
    await page.click("#logout")
    await page.wait_for_url("**/login")


@pytest.fixture
async def center(tmp_path):
    async def dispatch(event_id, operator, note):
        c.dispatched.append((event_id, operator, note))
        return "110-%06d" % event_id
    c = Console(tmp_path, dispatch=dispatch)
    c.dispatched = []
    await c.start()
    yield c
    await c.stop()


async def test_alarm_from_a_panel_is_taken_disposed_of_and_registered(center, browser):
    expect = playwright_api.expect
    page = browser.pages[0] if browser.pages else await browser.new_page()
    base = center.url

    await page.goto(base + "login")
    await shot(page, "login")
    await log_in(page, base, "olga")
    await expect(page.locator("main#view .empty")).to_contain_text("No alarms waiting")
    await page.click("#sound")                                   # operators switch the alarm sound on
    await expect(page.locator("#sound")).to_have_text("Sound: on")

    # Alarms arrive over DC-09 while the page is open: pushed, not reloaded.
    trouble = await center.panel_alarm(301, zone=0, account="1002")
    burglary = await center.panel_alarm(130, zone=15)
    panic = await center.panel_alarm(120, zone=3, account="1002")
    rows = page.locator("main#view tbody tr")
    await expect(rows).to_have_count(3)
    assert [int(i) for i in await rows.evaluate_all("rs => rs.map(r => r.dataset.id)")] == [burglary, panic, trouble]
    await expect(page.locator('tr[data-id="%d"] .timer' % burglary)).to_have_text(TIMER)
    await shot(page, "queue")

    await page.click('tr[data-id="%d"] button.take' % burglary)
    await page.wait_for_url("**/#/alarm/%d" % burglary)
    await expect(page.locator("#handling")).to_contain_text("taken by olga")
    await expect(page.locator("main#view")).to_contain_text("015 — Vault")
    await expect(page.locator("main#view")).to_contain_text("88 Zhongyang St, Daoli District")
    await page.fill("#dispatch-note", "Vault zone, branch closed")
    await page.click("#dispatch")
    await expect(page.locator("#handling")).to_contain_text("dispatched to 110 by olga: 110-%06d" % burglary)
    assert center.dispatched == [(burglary, "olga", "Vault zone, branch closed")]
    await page.check("input[name=outcome][value=real]")
    await page.fill("#dispose-note", "110 patrol attended: rear door forced, nobody inside; branch manager on site.")
    await shot(page, "alarm")
    await page.click("#dispose")
    await expect(page.locator("#handling")).to_contain_text("disposed of by olga: real alarm")

    await page.click('#nav a[data-page="queue"]')
    await expect(rows).to_have_count(2)
    await expect(page.locator('tr[data-id="%d"]' % burglary)).to_have_count(0)

    # Vehicles: positions over DC-09 from the escort van, one panic on the way.
    for lat, lon in ((45.7482, 126.6010), (45.7521, 126.6113), (45.7575, 126.6248), (45.7601, 126.6302)):
        await center.panel_alarm(602, account="2001", position=(lat, lon))
    await center.panel_alarm(120, account="2001", position=(45.7612, 126.6341))
    await page.click('#nav a[data-page="vehicles"]')
    await expect(page.locator(".vehicle[data-account='2001']")).to_contain_text("inside Depot")
    await shot(page, "vehicles")

    await page.click('#nav a[data-page="devices"]')
    await expect(page.locator("tr[data-account='1002']")).to_contain_text("trouble")
    await shot(page, "devices")
    await page.click("a[href='#/device/1001']")
    await expect(page.locator("main#view")).to_contain_text("Event history")
    await shot(page, "device")

    await page.click('#nav a[data-page="search"]')
    await page.select_option("#s-class", "alarm")
    await page.fill("#s-purpose", "Police request 2026-118: alarms this week")
    await page.click("#search")
    await expect(page.locator("#results")).to_contain_text("events")
    await shot(page, "search")
    async with page.expect_download() as download_info:
        await page.click("#export")
    download = await download_info.value
    exported = Path(await download.path()).read_text()
    assert exported.startswith("id,received_at") and "Burglary" in exported

    await log_out(page)
    await log_in(page, base, "audrey", live=False)
    register = page.locator("#register")
    await expect(register).to_contain_text("alarm %d (account 1001)" % burglary)
    await expect(register).to_contain_text("Police request 2026-118: alarms this week")
    await expect(page.locator("#register tr[data-action='export']")).to_have_count(1)
    await shot(page, "register")

    await log_out(page)
    await log_in(page, base, "sam")
    await page.click('#nav a[data-page="reports"]')
    await expect(page.locator("main#view tbody tr").first).to_contain_text("real alarm1")
    await shot(page, "reports")

    await log_out(page)
    await log_in(page, base, "ada", live=False)
    await page.fill("#u-name", "wei")
    await page.fill("#u-display", "Zhang Wei")
    await page.select_option("#u-role", "operator")
    await page.fill("#u-password", "another long password")
    await page.click("#new-user button")
    await expect(page.locator("tr[data-username='wei']")).to_contain_text("Zhang Wei")
    await shot(page, "users")


async def test_an_operator_cannot_read_the_register_and_a_logged_out_browser_gets_nothing(center, browser):
    expect = playwright_api.expect
    page = browser.pages[0] if browser.pages else await browser.new_page()
    base = center.url
    await center.panel_alarm(120)

    await page.goto(base)                                        # logged out: the app sends us to log in
    await page.wait_for_url("**/login")
    for path in ("api/queue", "api/register", "api/events?purpose=curious", "api/devices"):
        response = await page.request.get(base + path)
        assert response.status == 401, path

    await log_in(page, base, "olga")
    assert (await page.request.get(base + "api/register")).status == 403
    await page.goto(base + "#/register")
    await expect(page.locator("main#view .error")).to_contain_text("may not do this")
    await expect(page.locator('#nav a[data-page="register"]')).to_have_count(0)

    await log_out(page)
    assert (await page.request.get(base + "api/queue")).status == 401
    await page.goto(base + "#/queue")
    await page.wait_for_url(LOGIN_PAGE)          # the browser keeps the fragment across the redirect


async def test_an_installer_walk_tests_a_panel_and_watches_each_zone_report(center, browser):
    expect = playwright_api.expect
    page = browser.pages[0] if browser.pages else await browser.new_page()
    await log_in(page, center.url, "ian")
    await page.click("a[href='#/device/1001']")
    await page.click("#walk-start")
    await expect(page.locator("#walk-test")).to_contain_text("On test since")
    await expect(page.locator("#walk-test tr.reported")).to_have_count(0)
    await center.panel_alarm(130, zone=1)                        # the installer opens the front door
    await expect(page.locator("#walk-test tr[data-zone='1']")).to_contain_text("✓ Burglary")
    await center.panel_alarm(130, zone=15)                       # ... and walks into the vault
    await expect(page.locator("#walk-test tr.reported")).to_have_count(2)
    await shot(page, "walk-test")
    await page.click("#walk-end")
    await expect(page.locator("#walk-test")).to_contain_text("Not on test")
    olga = await center.client("olga")
    try:
        _, queue = await olga.get("api/queue")
        assert [i["on_test"] for i in queue["items"]] == [True, True]      # both still queued, marked
    finally:
        await olga.close()
