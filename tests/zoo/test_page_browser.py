"""report.html in a real browser: Debian's headless chromium driven by Selenium through chromium-driver.

Opens the page from disk (file://) and checks that it loads with no console errors and no network requests,
that clicking (or pressing Enter on) a column header sorts the rows by that column's values, that the variant
filter hides the other variants, that a cell's detail view opens (a failed cell's with its error), that the
tabs follow the arrow keys and that every image decodes. Saves screenshots at 1280 px width for a human to
look at (their paths are printed; run with -s). Skips, saying why, without chromium, its driver or selenium
(CI installs them in .ci/run: apt-get install chromium chromium-driver).
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import time
from pathlib import Path

import pytest

from tests.zoo.test_page import GRID, render_synth

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

if not (Path(CHROMIUM).exists() and Path(DRIVER).exists()):
    pytest.skip(f"no chromium at {CHROMIUM} or no chromedriver at {DRIVER} (Debian: apt-get install chromium "
                f"chromium-driver)", allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install '.[dev]')")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    # the path given, so Selenium never looks for (or downloads) a driver of its own
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=DRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def page(browser, tmp_path_factory):
    """The synthetic grid's page, freshly loaded, with the requests and console messages of its load."""
    path = render_synth(tmp_path_factory.mktemp("browser"))
    browser.get_log("browser"), browser.get_log("performance")  # drop anything from before
    browser.get(path.as_uri())
    return path, _requests(browser), browser.get_log("browser")


def _requests(browser) -> list[str]:
    """The URLs the page asked for while loading (from the DevTools network log)."""
    urls = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def _screenshot(browser, name: str, tmp_path_factory) -> Path:
    height = browser.execute_script("return document.body.scrollHeight")
    browser.set_window_size(1280, min(max(height, 900), 6000))
    path = tmp_path_factory.getbasetemp() / name
    browser.save_screenshot(str(path))
    browser.set_window_size(1280, 900)
    print(f"screenshot: {path}")
    return path


def _column_values(browser, table: str, column: int) -> list[float]:
    return browser.execute_script(
        "return Array.from(document.getElementById(arguments[0]).tBodies[0].rows)"
        ".map(r => r.cells[arguments[1]].getAttribute('data-value'))", table, column)


def _header(browser, table: str, label: str):
    return browser.find_element(By.XPATH, f"//table[@id='{table}']/thead//th[.//button[normalize-space(.)='{label}']]")


def test_loads_with_no_console_errors_and_no_network(page, browser, tmp_path_factory):
    path, requests, console = page
    assert [e for e in console if e["level"] in ("SEVERE", "WARNING")] == []
    assert requests and all(url.startswith(("file:", "data:")) for url in requests), requests
    assert browser.title == "Benchmark synth"
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    assert _screenshot(browser, "report-synth-1280.png", tmp_path_factory).stat().st_size > 10_000


def test_every_image_is_present_and_decoded(page, browser):
    decoded = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "Promise.all(Array.from(document.images).map(i => i.decode().then(() => i.naturalWidth)))"
        ".then(done, e => done(String(e)));")
    assert isinstance(decoded, list) and len(decoded) == 7 and all(width > 100 for width in decoded)


def test_a_column_header_sorts_by_click_and_by_keyboard(page, browser):
    header = _header(browser, "leaderboard-a", "dice (per-image mean)")
    column = int(browser.execute_script("return arguments[0].cellIndex", header))
    header.find_element(By.TAG_NAME, "button").click()
    values = [float(v) for v in _column_values(browser, "leaderboard-a", column)]
    assert values == sorted(values) and header.get_attribute("aria-sort") == "ascending"
    header.find_element(By.TAG_NAME, "button").click()
    assert [float(v) for v in _column_values(browser, "leaderboard-a", column)] == sorted(values, reverse=True)
    assert header.get_attribute("aria-sort") == "descending"
    params = _header(browser, "leaderboard-a", "params (M)")
    params.find_element(By.TAG_NAME, "button").send_keys(Keys.ENTER)
    column = int(browser.execute_script("return arguments[0].cellIndex", params))
    assert [float(v) for v in _column_values(browser, "leaderboard-a", column)] == [1000.0, 2000.0, 3000.0]
    assert header.get_attribute("aria-sort") is None
    floors = browser.find_elements(By.CSS_SELECTOR, "#leaderboard-a tbody.fixed tr")
    assert all(f.get_attribute("class") == "floor" for f in floors)  # the floors stay below the models


def test_the_filter_hides_the_other_variants(page, browser):
    browser.find_element(By.ID, "tab-d-a").click()
    box = browser.find_element(By.CSS_SELECTOR, "#filter input[value='m2']")
    box.click()
    rows = browser.find_elements(By.CSS_SELECTOR, "#leaderboard-a tbody:not(.fixed) tr")
    shown = {r.get_attribute("data-variants") for r in rows if r.is_displayed()}
    assert shown == {"m1", "m3"}
    pairs = browser.find_elements(By.CSS_SELECTOR, "#pairs-a tbody tr")
    assert all(("m2" in r.get_attribute("data-variants").split()) != r.is_displayed() for r in pairs)
    assert "Showing 2 of 3 variants." in browser.find_element(By.ID, "filter-status").text
    box.send_keys(Keys.SPACE)  # keyboard: check it again
    assert all(r.is_displayed() for r in browser.find_elements(By.CSS_SELECTOR, "#leaderboard-a tbody tr"))


def test_a_row_opens_its_cells_detail_view(page, browser):
    browser.find_element(By.ID, "tab-d-a").click()
    link = browser.find_element(By.CSS_SELECTOR, "#leaderboard-a a[href='#cell-a__m2__s1']")
    link.click()
    detail = browser.find_element(By.ID, "cell-a__m2__s1")
    assert detail.get_attribute("open") is not None and detail.is_displayed()
    assert browser.find_element(By.ID, "tab-cells").get_attribute("aria-selected") == "true"
    assert not browser.find_element(By.ID, "d-a").is_displayed()
    assert "whole images: they fit" in detail.text and "Loss" in detail.text
    assert browser.switch_to.active_element.tag_name == "summary"


def test_a_failed_cell_shows_its_error(page, browser, tmp_path_factory):
    browser.find_element(By.ID, "tab-d-b").click()
    browser.find_element(By.CSS_SELECTOR, "#leaderboard-b a[href='#cell-b__m3__s2']").send_keys(Keys.ENTER)
    detail = browser.find_element(By.ID, "cell-b__m3__s2")
    assert detail.is_displayed() and "RuntimeError: boom" in detail.find_element(By.CSS_SELECTOR, "pre.error").text
    _screenshot(browser, "report-synth-cells-1280.png", tmp_path_factory)


def test_tabs_follow_the_arrow_keys(page, browser):
    first = browser.find_element(By.ID, "tab-d-a")
    first.click()
    first.send_keys(Keys.ARROW_RIGHT)
    assert browser.find_element(By.ID, "tab-d-b").get_attribute("aria-selected") == "true"
    assert browser.switch_to.active_element.get_attribute("id") == "tab-d-b"
    assert browser.find_element(By.ID, "d-b").is_displayed() and not browser.find_element(By.ID, "d-a").is_displayed()
    browser.switch_to.active_element.send_keys(Keys.END)
    assert browser.find_element(By.ID, "tab-cells").get_attribute("aria-selected") == "true"
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []  # nothing threw on the way


def test_printing_shows_every_section_and_no_controls(page, browser, tmp_path_factory):
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        panels = browser.find_elements(By.CSS_SELECTOR, "[role=tabpanel]")
        assert len(panels) == 4 and all(p.is_displayed() for p in panels)
        assert not browser.find_element(By.ID, "filter").is_displayed()
        assert not browser.find_element(By.ID, "tabs").is_displayed()
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
    pdf = base64.b64decode(browser.print_page())
    path = tmp_path_factory.getbasetemp() / "report-synth.pdf"
    path.write_bytes(pdf)
    print(f"printed: {path}")
    assert pdf.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page\b(?!s)", pdf)) >= 3  # a page per tab


@pytest.mark.skipif(not (GRID / "report.html").is_file(), reason="results/cpu-grid/report.html is not in this checkout")
def test_the_135_cell_grid_renders_within_2_seconds(browser, tmp_path_factory):
    start = time.perf_counter()
    browser.get((GRID / "report.html").as_uri())
    wall = time.perf_counter() - start
    load = browser.execute_script("return performance.timing.loadEventEnd - performance.timing.navigationStart")
    assert load < 2000 and wall < 4, (load, wall)  # wall includes the driver's round trips
    assert len(browser.find_elements(By.CSS_SELECTOR, "details.cell")) == 135
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
    _screenshot(browser, "report-cpu-grid-1280.png", tmp_path_factory)
