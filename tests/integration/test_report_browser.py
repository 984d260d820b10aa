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


#: For each table: how far its right edge runs past its container's (px, > 0: columns hidden
#: or cut at the page edge), and every cell whose content is wider than the cell.
_TABLE_FIT_JS = """() => [...document.querySelectorAll('table')].map(t => {
  const box = t.getBoundingClientRect(), parent = t.parentElement.getBoundingClientRect();
  const cells = [...t.querySelectorAll('th, td')].filter(c => c.scrollWidth > c.clientWidth + 1)
    .map(c => c.textContent.slice(0, 40));
  return {id: t.id, overflow: Math.max(box.right - parent.right, t.scrollWidth - t.clientWidth), cells};
})"""

#: Pairs of text labels inside one figure whose boxes overlap by more than 2 px both ways
#: (tick labels on tick labels, a legend on a title...).
_TEXT_OVERLAP_JS = """() => {
  const out = [];
  document.querySelectorAll('svg.fig').forEach((svg, f) => {
    const boxes = [...svg.querySelectorAll('text')].map(t => [t.textContent, t.getBoundingClientRect()])
      .filter(([s, b]) => s.trim() && b.width > 0);
    for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
      const [a, ba] = boxes[i], [b, bb] = boxes[j];
      const w = Math.min(ba.right, bb.right) - Math.max(ba.left, bb.left);
      const h = Math.min(ba.bottom, bb.bottom) - Math.max(ba.top, bb.top);
      if (w > 2 && h > 2) out.push(`figure ${f}: "${a}" overlaps "${b}"`);
    }
  });
  return out;
}"""

#: Tick labels of each axis in each figure: an axis whose labels are all the same ("14",
#: "14", "14") says nothing.
_TICKS_JS = """() => [...document.querySelectorAll('svg.fig')].map(svg =>
  [...svg.querySelectorAll('g[id^="xtick"], g[id^="ytick"]')].map(g => [g.id.slice(0, 5), g.textContent.trim()]))"""


@pytest.mark.skipif(not _playwright_available(), reason="the playwright package is not installed")
def test_report_layout_at_1280_px(report_file: Path) -> None:
    """At 1280 px: no table runs past its container (no hidden right-hand columns), no cell's
    content spills out of it, no two labels in a figure overlap, and no axis repeats one tick
    label over and over."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(report_file.as_uri(), wait_until="load")
            tables = page.evaluate(_TABLE_FIT_JS)
            overlaps = page.evaluate(_TEXT_OVERLAP_JS)
            ticks = page.evaluate(_TICKS_JS)
            page.screenshot(path=str(ARTIFACTS / "report-1280.png"), full_page=True)
        finally:
            browser.close()
    assert len(tables) >= 6
    wide = [t for t in tables if t["overflow"] > 1]
    assert not wide, f"tables wider than the page: {wide}"
    spilled = [t for t in tables if t["cells"]]
    assert not spilled, f"cells whose content spills out: {spilled}"
    assert not overlaps, "\n".join(overlaps)
    for i, labels in enumerate(ticks):
        for axis in ("xtick", "ytick"):
            texts = [text for a, text in labels if a == axis and text]
            assert len(texts) < 3 or len(set(texts)) > 1, f"figure {i}: every {axis} label reads {texts[0]!r}"


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
