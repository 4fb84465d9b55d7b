"""Real-browser tests: the real app on a free port (werkzeug, in a thread), driven by
Debian's Chromium through Playwright, every visited page checked.

Each page a journey visits (`Browser.check()`) must have
- no serious or critical axe-core violation,
- no horizontal overflow (the phone width is 390 px),
- no console error (404 favicon, CSP, script errors),
and its HTML is kept; at the end of the session the Nu HTML checker (vnu.jar, one JVM for
all pages, since the JVM start is slow) must report 0 errors.

The tools: the `playwright` package (test extras), `chromium` and `java` on the PATH, and
axe-core plus vnu-jar from the npm registry in PTMATCH_BROWSER_TOOLS (default
~/.cache/ptmatch-browser). `scripts/setup test` installs them. Missing tools skip these tests
with the reason, or fail them under `--require-browser` (CI).

The clock: the server thread reads the same frozen `ptmatch.clock` as the test (the autouse
`clock` fixture), so nothing here depends on today's date. The scheduler's jobs run when a
test calls `live.run_jobs()`, on that clock, exactly as the scheduler process would.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

TOOLS = Path(os.environ.get("PTMATCH_BROWSER_TOOLS") or Path.home() / ".cache" / "ptmatch-browser")
AXE_JS = TOOLS / "node_modules" / "axe-core" / "axe.min.js"
VNU_JAR = TOOLS / "node_modules" / "vnu-jar" / "build" / "dist" / "vnu.jar"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
VIEWPORTS = [pytest.param(PHONE, id="390px"), pytest.param(DESKTOP, id="1280px")]
_HERE = Path(__file__).resolve().parent


def chromium_path() -> str | None:
    return os.environ.get("PTMATCH_CHROMIUM") or shutil.which("chromium")


def real_clock_env() -> dict[str, str]:
    """The environment without faketime's preload: Chromium and the JVM run on the real clock
    even when the suite runs under faketime (CI's run a year ahead), where their timers stall.
    The app's clock is frozen either way, so nothing here depends on the date."""
    return {
        k: v
        for k, v in os.environ.items()
        if k != "LD_PRELOAD" and not k.startswith(("FAKETIME", "DONT_FAKE"))
    }


def missing_tools() -> list[str]:
    missing = []
    if importlib.util.find_spec("playwright") is None:
        missing.append("the playwright package (pip install -e '.[test]')")
    if not chromium_path():
        missing.append("chromium (apt-get install chromium, or set PTMATCH_CHROMIUM)")
    if not AXE_JS.is_file():
        missing.append(f"axe-core in {TOOLS} (npm install --prefix {TOOLS} axe-core)")
    if not VNU_JAR.is_file():
        missing.append(f"vnu-jar in {TOOLS} (npm install --prefix {TOOLS} vnu-jar)")
    if not shutil.which("java"):
        missing.append("java (apt-get install default-jre-headless)")
    return missing


def pytest_collection_modifyitems(config, items):
    for item in items:
        if _HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser_tools(request):
    missing = missing_tools()
    if missing:
        reason = "browser tests need " + "; ".join(missing) + " (scripts/setup test installs them)"
        if request.config.getoption("--require-browser"):
            pytest.fail(reason + " [--require-browser]", pytrace=False)
        pytest.skip(reason)
    return True


@pytest.fixture(scope="session")
def html_pages(browser_tools, tmp_path_factory):
    """Every HTML document the journeys received (deduplicated), checked by the Nu HTML
    checker once at the end of the session."""
    folder = tmp_path_factory.mktemp("pages")
    pages: dict[str, str] = {}  # file name -> URL
    yield folder, pages
    if not pages:
        return
    files = sorted(pages)
    proc = subprocess.run(
        ["java", "-Xss4m", "-jar", str(VNU_JAR), "--errors-only", "--format", "json"]
        + [str(folder / name) for name in files],
        capture_output=True,
        text=True,
        env=real_clock_env(),
    )
    report = json.loads(proc.stderr or proc.stdout or '{"messages": []}')
    errors = [
        f"{pages.get(Path(m.get('url', '')).name, m.get('url'))}:{m.get('lastLine')}: "
        f"{m.get('message')} [{(m.get('extract') or '').strip()[:80]}]"
        for m in report.get("messages", [])
        if m.get("type") == "error" or m.get("subType") == "fatal"
    ]
    assert not errors, f"Nu HTML checker: {len(errors)} errors\n" + "\n".join(errors)


@pytest.fixture(scope="session")
def chromium(browser_tools):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium_path(), args=["--no-sandbox"], env=real_clock_env()
        )
        yield browser
        browser.close()


class Live:
    """The running app: its URL, settings, and the scheduler's jobs on demand."""

    def __init__(self, url, app, settings, sessions):
        self.url = url
        self.app = app
        self.settings = settings
        self.sessions = sessions

    def run_jobs(self) -> dict[str, int]:
        """One round of every scheduler job, as the scheduler process runs them."""
        from ptmatch.scheduler.jobs import all_jobs
        from ptmatch.scheduler.runner import run_job

        return {job.name: run_job(self.sessions, job, self.settings) for job in all_jobs()}


@pytest.fixture
def live(browser_tools, settings, engine):
    from werkzeug.serving import make_server

    from ptmatch import create_app
    from ptmatch.db import make_session_factory

    holder = {}
    server = make_server(
        "127.0.0.1", 0, lambda environ, start: holder["app"](environ, start), threaded=True
    )
    url = f"http://127.0.0.1:{server.server_port}"
    live_settings = dataclasses.replace(settings, DEBUG=True, BASE_URL=url)
    app = create_app(live_settings)
    holder["app"] = app
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Live(url, app, live_settings, make_session_factory(engine, live_settings))
    finally:
        server.shutdown()
        thread.join(timeout=10)
        app.extensions["ptmatch_engine"].dispose()


class Browser:
    """One person's browser tab. Call `check()` after every page change: axe, overflow,
    console errors, and the HTML kept for the Nu checker."""

    def __init__(self, page, live, pages, viewport):
        self.page = page
        self.live = live
        self.viewport = viewport
        self._folder, self._pages = pages
        self._console: list[str] = []
        self._documents = []
        self._axe = AXE_JS.read_text()
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self._console.append(f"page error: {exc}"))
        page.on("response", self._on_response)

    def _on_console(self, msg):
        if msg.type == "error":
            self._console.append(f"{msg.text} ({msg.location.get('url', '')})")

    def _on_response(self, response):
        if response.request.resource_type == "document" and response.status < 300:
            self._documents.append(response)

    # -- navigation -------------------------------------------------------------------
    def goto(self, path: str):
        self.page.goto(path if path.startswith("http") else self.live.url + path)
        return self.check()

    def click(self, selector_or_locator):
        """Click something that loads a new page, then check that page."""
        target = (
            self.page.locator(selector_or_locator)
            if isinstance(selector_or_locator, str)
            else selector_or_locator
        )
        with self.page.expect_navigation():
            target.click()
        return self.check()

    def button(self, name: str, exact: bool = False):
        return self.page.get_by_role("button", name=name, exact=exact)

    def link(self, name: str, exact: bool = False):
        return self.page.get_by_role("link", name=name, exact=exact)

    def text(self) -> str:
        return self.page.inner_text("body")

    # -- the checks -------------------------------------------------------------------
    def check(self):
        page = self.page
        page.wait_for_load_state("load")
        where = page.url
        assert not self._console, f"console errors on {where}: {self._console}"
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= self.viewport["width"], (
            f"{where} is {width}px wide at a {self.viewport['width']}px viewport: "
            + str(page.evaluate(_WIDE_ELEMENTS, self.viewport["width"]))
        )
        page.evaluate(self._axe)
        violations = page.evaluate(_AXE_RUN)
        assert not violations, f"axe on {where}:\n" + "\n".join(violations)
        for response in self._documents:
            try:
                body = response.text()
            except Exception:  # a document replaced before its body was read
                continue
            if "<html" not in body[:500].lower():
                continue
            digest = hashlib.sha1(body.encode()).hexdigest()[:16]
            name = f"{digest}.html"
            if name not in self._pages:
                (self._folder / name).write_text(body)
                self._pages[name] = response.url.replace(self.live.url, "")
        self._documents.clear()
        return self


_AXE_RUN = """async () => {
  const r = await axe.run(document, {resultTypes: ['violations']});
  return r.violations
    .filter(v => v.impact === 'serious' || v.impact === 'critical')
    .map(v => `${v.impact} ${v.id}: ${v.help} -- ` +
      v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | '));
}"""

_WIDE_ELEMENTS = """(limit) => Array.from(document.querySelectorAll('body *'))
  .filter(e => e.getBoundingClientRect().right > limit + 1)
  .slice(-5).map(e => e.tagName + '.' + e.className + ' ' + (e.textContent || '').slice(0, 30))"""


@pytest.fixture
def open_browser(chromium, live, html_pages):
    """open_browser(viewport, locale='de-DE') -> Browser: a fresh context (own cookies)."""
    contexts = []

    def _open(viewport, locale="de-DE"):
        context = chromium.new_context(viewport=viewport, locale=locale)
        context.set_default_timeout(15_000)
        contexts.append(context)
        return Browser(context.new_page(), live, html_pages, viewport)

    yield _open
    for context in contexts:
        context.close()
