"""Open the reports in real headless Chromium (Debian `chromium` + `chromium-driver`, driven by selenium).

Checks what only a browser can: the page renders (non-blank screenshot), every section is there,
every image decodes (naturalWidth > 0), and the page made no network request: every request URL
seen through the DevTools Network events is file: or data:. Skipped without Chromium unless CI=true.
"""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageStat
from shears.report import RunRecords, build_run_report, build_trend_report, load_trend_entries
from shears.report.sections import SECTION_IDS

from tests.report.test_render import make_trend_store, sample_records

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1280,2000", "--hide-scrollbars",
)
LOCAL_SCHEMES = ("file:", "data:")


def _need_browser() -> None:
    """Skip only on a developer machine without Chromium; in CI a missing browser is a failure."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("python package selenium")
    if not missing:
        return
    why = f"{', '.join(missing)} not installed (apt-get install -y chromium chromium-driver; pip install selenium)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {why}")
    pytest.skip(why)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    _need_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        opts.add_argument(flag)
    # Performance log = DevTools Network.* events for every request the page makes.
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    service = Service(str(CHROMEDRIVER), log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def requested_urls(driver: Any) -> list[str]:
    """URLs of every request, WebSocket and EventSource the page started since the last call."""
    urls = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        params = msg.get("params", {})
        if msg.get("method") == "Network.requestWillBeSent":
            urls.append(params["request"]["url"])
        elif msg.get("method") in ("Network.webSocketCreated", "Network.eventSourceMessageReceived"):
            urls.append(params.get("url", "?"))
    return urls


def open_page(driver: Any, path: Path) -> list[str]:
    """Load `path` from disk; return the URLs requested while loading it.

    about:blank first, so the start-up tab's chrome:// loads are drained before the page is opened.
    """
    driver.get("about:blank")
    requested_urls(driver)
    driver.get(path.as_uri())  # returns after the load event
    return requested_urls(driver)


def assert_no_network(urls: list[str], page: Path) -> None:
    assert page.as_uri() in urls, f"the network capture did not even see the page itself: {urls}"
    remote = [u for u in urls if not u.startswith(LOCAL_SCHEMES)]
    assert remote == [], f"the page requested non-local URLs: {remote}"


def full_page_png(driver: Any) -> bytes:
    """Screenshot of the whole page (not just the viewport) through DevTools."""
    import base64

    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
    })
    return base64.b64decode(shot["data"])


def assert_rendered(driver: Any, png: bytes, section_ids: tuple[str, ...], min_images: int) -> None:
    img = Image.open(io.BytesIO(png)).convert("L")
    assert img.width >= 800 and img.height >= 800
    stat = ImageStat.Stat(img)
    assert stat.var[0] > 200, f"screenshot looks blank (pixel variance {stat.var[0]:.1f})"
    for sid in section_ids:
        found = driver.execute_script(
            "const s = document.getElementById(arguments[0]);"
            "return s && s.tagName === 'SECTION' && s.querySelector('h2') && s.getBoundingClientRect().height > 0"
            " ? s.querySelector('h2').innerText : null;", sid)
        assert found, f"section #{sid} missing, empty or without a heading"
    images = driver.execute_script(
        "return Array.from(document.images)"
        ".map(i => [i.complete, i.naturalWidth, i.naturalHeight, i.src.slice(0, 30)]);")
    assert len(images) >= min_images
    for complete, width, height, src in images:
        assert complete and width > 0 and height > 0, f"image did not load: {src}"
        assert src.startswith("data:image/png;base64,")


def test_run_report_renders_offline(browser: Any, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(build_run_report(sample_records(champion="r0")), encoding="utf-8")
    urls = open_page(browser, page)
    assert browser.title.startswith("Shears run r1")
    png = full_page_png(browser)
    (tmp_path / "report.png").write_bytes(png)
    assert_rendered(browser, png, SECTION_IDS, min_images=4)
    verdicts = browser.execute_script(
        "return Array.from(document.querySelectorAll('#gates td.verdict-cell')).map(td => td.innerText.trim());")
    assert verdicts == ["pass", "pass", "pass", "pass"]
    assert_no_network(urls + requested_urls(browser), page)  # incl. anything started after the load event


def test_rejected_run_report_renders_offline(browser: Any, tmp_path: Path) -> None:
    rec = sample_records(passed=False)
    rejected = RunRecords(**{**rec.__dict__, "prune": None, "latency": None})
    page = tmp_path / "rejected.html"
    page.write_text(build_run_report(rejected), encoding="utf-8")
    urls = open_page(browser, page)
    assert_rendered(browser, full_page_png(browser), SECTION_IDS, min_images=3)
    assert "Not available" in browser.find_element("id", "schedule").text
    assert "FAIL" in browser.find_element("id", "gates").text
    assert_no_network(urls + requested_urls(browser), page)


def test_trend_page_renders_offline(browser: Any, tmp_path: Path) -> None:
    store = make_trend_store(tmp_path / "store")
    page = tmp_path / "trend.html"
    page.write_text(build_trend_report(load_trend_entries(store), source=store.uri), encoding="utf-8")
    urls = open_page(browser, page)
    assert_rendered(browser, full_page_png(browser), ("trend", "runs"), min_images=1)
    statuses = browser.execute_script(
        "return Array.from(document.querySelectorAll('#runs tr[data-status]')).map(tr => tr.dataset.status);")
    assert statuses == ["failed", "passed", "passed", "rejected", "passed"]
    assert_no_network(urls + requested_urls(browser), page)


def test_network_capture_would_catch_a_request(browser: Any, tmp_path: Path) -> None:
    """Guards the guard: a page that does fetch something must show up as a non-local URL."""
    page = tmp_path / "leaky.html"
    page.write_text('<!DOCTYPE html><img src="http://127.0.0.1:9/pixel.png">', encoding="utf-8")
    urls = open_page(browser, page)
    with pytest.raises(AssertionError, match=r"127\.0\.0\.1:9/pixel\.png"):
        assert_no_network(urls, page)


def test_missing_browser_skips_locally_but_fails_in_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys.modules[__name__], "CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"no-chromium.* not installed"):
        _need_browser()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true but"):
        _need_browser()
