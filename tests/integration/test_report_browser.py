"""The HTML report in a real browser: headless Chromium loads it offline, with no console error,
and shows its tables and figures. Screenshots are kept under test-artifacts/ for people to look at.

Chromium comes from the system (Debian: ``apt-get install -y chromium``); Playwright drives it
when installed, else Chromium's own headless mode is used. Skipped only when no Chromium exists.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
sys.path.insert(0, str(ROOT / "tests" / "unit"))

from report_fixtures import fixed_run, training  # noqa: E402

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


CHROMIUM = _chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium found (install it: apt-get install -y chromium); the browser check needs a real browser",
)


@pytest.fixture(scope="module")
def report_file() -> Path:
    from devicebench.reports.html import render_html

    run, recs = fixed_run()
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "report.html"
    path.write_text(render_html(run, recs, [training("cpu"), training("cuda:0", epoch_s=2.0, reach=5.0)],
                                tool_version="test"), encoding="utf-8")
    return path


def _playwright_available() -> bool:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(not _playwright_available(), reason="the playwright package is not installed")
def test_report_in_chromium_with_playwright(report_file: Path) -> None:
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    outside: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))

            def guard(route) -> None:  # type: ignore[no-untyped-def]
                if route.request.url.startswith(("file:", "data:", "about:")):
                    route.continue_()
                else:
                    outside.append(route.request.url)
                    route.abort()

            page.route("**/*", guard)
            page.goto(report_file.as_uri(), wait_until="load")
            for table in ("#seed-table", "#detail-table", "#energy-table", "#cost-table", "#memory-table",
                          "#training-table", "#environment-list"):
                assert page.locator(table).is_visible(), f"{table} is not visible"
            assert page.locator("#seed-table tbody tr").count() == 4
            figures = page.locator("svg.fig")
            assert figures.count() == 5
            for i in range(figures.count()):
                box = figures.nth(i).bounding_box()
                assert box is not None and box["width"] > 300 and box["height"] > 100, f"figure {i} is too small: {box}"
            assert "3.7" in page.locator("#seed-table").inner_text()
            page.screenshot(path=str(ARTIFACTS / "report-light.png"), full_page=True)
            light_bg = page.evaluate("getComputedStyle(document.documentElement).backgroundColor")
            page.emulate_media(color_scheme="dark")
            dark_bg = page.evaluate("getComputedStyle(document.documentElement).backgroundColor")
            svg_color = page.evaluate("getComputedStyle(document.querySelector('svg.fig')).color")
            page.screenshot(path=str(ARTIFACTS / "report-dark.png"), full_page=True)
        finally:
            browser.close()
    assert errors == [], f"console errors: {errors}"
    assert outside == [], f"the report tried to load: {outside}"
    assert light_bg != dark_bg, "the page ignores the dark colour scheme"
    assert svg_color == "rgb(230, 237, 243)", "figures do not follow the dark text colour"
    assert (ARTIFACTS / "report-light.png").stat().st_size > 10_000


def test_report_in_chromium_headless_mode(report_file: Path, tmp_path: Path) -> None:
    """Without Playwright: Chromium's own headless screenshot and DOM dump."""
    shot = ARTIFACTS / "report-headless.png"
    env = dict(os.environ, HOME=str(tmp_path))
    base = [CHROMIUM, *CHROMIUM_ARGS, f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0"]
    done = subprocess.run([*base, "--window-size=1200,3000", f"--screenshot={shot}", report_file.as_uri()],
                          capture_output=True, text=True, timeout=120, env=env)
    assert shot.is_file() and shot.stat().st_size > 10_000, done.stderr[-2000:]
    dom = subprocess.run([*base, "--dump-dom", report_file.as_uri()], capture_output=True, text=True, timeout=120, env=env)
    assert 'id="seed-table"' in dom.stdout and dom.stdout.count("<svg") == 5
    console = [line for line in (done.stderr + dom.stderr).splitlines() if "CONSOLE" in line and "rror" in line]
    assert console == [], console
