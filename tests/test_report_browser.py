"""report.html in a real browser: headless Chromium driven by selenium.

The report of a real local-engine run (tests/tearsheet_run.py) is opened in
Debian's ``chromium`` through ``chromedriver`` (both installed by .ci/run
when missing; this test fails, never skips, without them).  Checked as a
reader sees the page: every image decodes (``naturalWidth > 0``), every
section and table is there, and nothing is wider than the window, at a
desktop and at a narrow width.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from raybt.plots.report import FIGURES

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: section id -> number of tables under it
TABLES = {"assets": 1, "diversification": 1, "drawdown": 2, "monthly_returns": 1,
          "asset_monthly_returns": 1, "trades": 3, "costs": 2, "exposure": 1, "weights": 1,
          "events": 1}


def browser(user_data_dir: Path, width: int = 1280, height: int = 900):
    """A headless Chromium (Debian's binary and driver; no download of either)."""
    assert CHROMIUM.is_file() and CHROMEDRIVER.is_file(), (
        "Debian's chromium and chromium-driver are needed: apt-get install -y chromium chromium-driver "
        "(.ci/run installs them)")
    os.environ.setdefault("SE_AVOID_STATS", "true")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS + [f"--user-data-dir={user_data_dir}", f"--window-size={width},{height}"]:
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    from tearsheet_run import run_engine

    result, _bars = run_engine()
    folder = result.save(tmp_path_factory.mktemp("browser") / ("a-run-folder-with-a-long-name-" + "x" * 60))
    return folder / "report.html"


@pytest.fixture(scope="module")
def page(report, tmp_path_factory):
    profile = tmp_path_factory.mktemp("chromium-profile")
    driver = browser(profile)
    try:
        driver.get(report.as_uri())
        driver.execute_script("return document.readyState")
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def test_every_image_decodes(page):
    images = page.execute_script(
        "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight])")
    assert len(images) == len(FIGURES)
    assert [alt for alt, *_ in images] == [title for title, _caption in FIGURES.values()]
    for alt, complete, width, height in images:
        assert complete and width > 400 and height > 200, (alt, width, height)


def test_every_section_and_table_is_there(page):
    sections = page.execute_script("return Array.from(document.querySelectorAll('section')).map(s => s.id)")
    assert sections == ["metrics", "assets", "diversification",
                        *[f.removesuffix(".png") for f in FIGURES], "events", "config"]
    counts = page.execute_script(
        "return Object.fromEntries(Array.from(document.querySelectorAll('section')).map("
        "s => [s.id, s.querySelectorAll('table').length]))")
    for section, n in TABLES.items():
        assert counts[section] == n, (section, counts[section])
    rows = page.execute_script(
        "return Object.fromEntries(Array.from(document.querySelectorAll('section')).map("
        "s => [s.id, Array.from(s.querySelectorAll('tbody')).map(b => b.rows.length)]))")
    assert rows["trades"][0] == 6 and rows["trades"][1] == 2  # six exit reasons, long and short
    assert rows["costs"][1] == 5 + 1  # five sleeves and the portfolio
    assert rows["drawdown"][0] >= 3 and rows["drawdown"][1] >= 6  # deepest periods; trips and resumes
    kpis = page.execute_script("return document.querySelectorAll('.kpi').length")
    assert kpis >= 15
    visible = page.execute_script(
        "return Array.from(document.querySelectorAll('section h2')).every(h => h.offsetHeight > 0)")
    assert visible


@pytest.mark.parametrize("width", [1280, 800])
def test_nothing_is_wider_than_the_window(page, width):
    page.set_window_size(width, 900)
    inner = page.execute_script("return window.innerWidth")
    page_width = page.execute_script("return document.documentElement.scrollWidth")
    assert page_width <= inner, (page_width, inner)
    # every element outside a horizontally scrolling box ends inside the window
    wide = page.execute_script("""
        const w = window.innerWidth;
        return Array.from(document.querySelectorAll('body *')).filter(e => {
            if (e.closest('.scroll') && !e.classList.contains('scroll')) return false;
            if (e.closest('pre') && e.tagName !== 'PRE') return false;
            const r = e.getBoundingClientRect();
            return r.width > 0 && r.right > w + 0.5;
        }).map(e => e.tagName + '.' + e.className + ' ' + e.getBoundingClientRect().right);
    """)
    assert wide == []
    images = page.execute_script(
        "return Array.from(document.images).map(i => i.getBoundingClientRect().right)")
    assert max(images) <= inner
