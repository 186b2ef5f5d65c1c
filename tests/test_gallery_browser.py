"""The gallery page in headless Chromium against a real gateway (uvicorn on a loopback port,
the embedded backend on the two smoke versions): the sheet loads and decodes, "new designs"
changes it, a seed link reproduces it byte for byte, the picker pins a version, the
interpolation view draws a strip, and a phone-width screen has no sideways scroll. The progress
view on an empty base path is watched in test_first_start, during the fresh deployment's own
training job."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image

from gateway.app import create_app
from tests.browser import MISSING, available, image_bytes, open_page, page_state, wait_for
from tests.servers import embedded_settings, serve

SCALE = 4  # the page's default: 28-pixel designs are too small to see


@pytest.fixture(scope="module")
def gallery(smoke_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    s = embedded_settings(smoke_base, tmp_path_factory.mktemp("gallery"))
    with serve(create_app(s)) as url:
        yield url


# skipped before any fixture runs (the smoke versions take a minute to train)
pytestmark = pytest.mark.skipif(not available(), reason=MISSING)


@pytest.fixture()
def browser(chromium_or_none: Any) -> Iterator[Any]:
    chromium_or_none.set_window_size(1100, 1000)
    yield chromium_or_none


_open = open_page


def _sheet(driver: Any) -> tuple[bytes, str, str]:
    img = driver.find_element("id", "sheet")
    return (
        image_bytes(driver, "sheet"),
        img.get_attribute("data-seed"),
        img.get_attribute("data-version"),
    )


def test_the_form_offers_what_the_gateway_allows(
    browser: Any, smoke_base: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The ranges come from GET /api/limits: with GATEWAY_MAX_GRID=2 the form offers no size
    the gateway would refuse, and its scale of 4 comes down to GATEWAY_MAX_SCALE=3."""
    base = embedded_settings(smoke_base, tmp_path_factory.mktemp("small"))
    small = replace(base, max_grid=2, max_scale=3)
    with serve(create_app(small)) as url:
        _open(browser, url + "/")
        ranges = {
            key: (
                browser.find_element("id", key).get_attribute("min"),
                browser.find_element("id", key).get_attribute("max"),
                browser.find_element("id", key).get_attribute("value"),
            )
            for key in ("rows", "cols", "scale", "walk-steps")
        }
        png, _, _ = _sheet(browser)
    assert ranges == {
        "rows": ("1", "2", "2"),
        "cols": ("1", "2", "2"),
        "scale": ("1", "3", "3"),
        "walk-steps": ("2", "4", "4"),
    }
    assert Image.open(io.BytesIO(png)).size == (2 * 28 * 3, 2 * 28 * 3)


def test_sheet_loads_and_decodes(browser: Any, gallery: str) -> None:
    _open(browser, gallery + "/")
    png, seed, version = _sheet(browser)
    img = Image.open(io.BytesIO(png))
    assert img.format == "PNG" and img.size == (84 * SCALE, 84 * SCALE) and version == "2"
    shown = browser.find_element("id", "sheet")
    assert shown.get_property("naturalWidth") == 84 * SCALE
    assert f"seed {seed}" in shown.get_attribute("alt") and "version 2" in shown.get_attribute(
        "alt"
    )
    # the download link is the same PNG, pinned to the version that drew it
    download = browser.find_element("id", "download").get_attribute("href")
    assert f"version={version}" in download and requests.get(download, timeout=30).content == png
    # the quality panel shows the figures of version 2's model card
    card = requests.get(gallery + "/api/versions", timeout=30).json()["versions"]
    fid = next(v for v in card if v["version"] == 2)["quality"]["fid"]
    shown = f"{fid:.1f}" if fid >= 100 else f"{fid:.3f}"  # as gallery.js's fmt() writes it
    panel = browser.find_element("id", "quality").text
    assert f"FID\n{shown} (real data:" in panel
    # fidelity and diversity apart, beside the real data's (issue 16)
    assert "Precision (designs that look real)" in panel and "Recall (real variety" in panel


def test_new_designs_changes_the_sheet_from_the_keyboard(browser: Any, gallery: str) -> None:
    from selenium.webdriver.common.keys import Keys

    _open(browser, gallery + "/")
    before, seed, _ = _sheet(browser)
    button = browser.find_element("id", "new")
    button.send_keys(Keys.ENTER)  # a native button: keyboard users press it like a click
    wait_for(
        lambda: (
            browser.find_element("id", "sheet").get_attribute("data-seed") != seed
            and page_state(browser) == "ready"
        ),
        what="a new sheet",
    )
    after, new_seed, _ = _sheet(browser)
    assert new_seed != seed and after != before


def test_seed_link_reproduces_the_sheet_byte_for_byte(browser: Any, gallery: str) -> None:
    _open(browser, gallery + "/?rows=2&cols=5&scale=2")
    png, seed, version = _sheet(browser)
    assert Image.open(io.BytesIO(png)).size == (5 * 28 * 2, 2 * 28 * 2)
    link = browser.find_element("id", "share").get_attribute("href")
    assert f"seed={seed}" in link
    browser.get("about:blank")
    _open(browser, link)
    again, seed_again, version_again = _sheet(browser)
    assert (again, seed_again, version_again) == (png, seed, version)


def test_picker_pins_a_version(browser: Any, gallery: str) -> None:
    from selenium.webdriver.support.ui import Select

    _open(browser, gallery + "/?seed=1234")
    picker = Select(browser.find_element("id", "model"))
    values = [o.get_attribute("value") for o in picker.options]
    assert values == ["", "l:canary", "l:stable", "v:2", "v:1"]  # filled from /api/versions
    picker.select_by_value("v:1")
    wait_for(
        lambda: (
            browser.find_element("id", "sheet").get_attribute("data-version") == "1"
            and page_state(browser) == "ready"
        ),
        what="version 1's sheet",
    )
    png, seed, _ = _sheet(browser)
    assert seed == "1234"
    pinned = requests.get(
        gallery + f"/api/generar-diseno?seed=1234&scale={SCALE}&version=1", timeout=30
    )
    assert pinned.content == png


def test_interpolation_view_draws_a_strip(browser: Any, gallery: str) -> None:
    _open(browser, gallery + "/?seed=5")
    steps = browser.find_element("id", "walk-steps")
    steps.clear()
    steps.send_keys("6")
    to = browser.find_element("id", "walk-to")
    to.clear()
    to.send_keys("9")
    browser.find_element("id", "walk-show").click()
    wait_for(lambda: browser.find_element("id", "strip").get_property("naturalWidth"), what="strip")
    strip = Image.open(io.BytesIO(image_bytes(browser, "strip")))
    assert strip.size == (6 * 28 * SCALE, 28 * SCALE)
    alt = browser.find_element("id", "strip").get_attribute("alt")
    assert "from seed 5 to seed 9" in alt


def test_phone_width_has_no_sideways_scroll(browser: Any, gallery: str) -> None:
    browser.set_window_size(390, 844)
    try:
        _open(browser, gallery + "/?scale=8")  # a 672-pixel sheet on a 390-pixel screen
        wide = browser.execute_script(
            "return document.documentElement.scrollWidth > document.documentElement.clientWidth"
        )
        assert not wide
        assert browser.find_element("id", "sheet").size["width"] <= 390
    finally:
        browser.set_window_size(1100, 1000)


@pytest.fixture(scope="module")
def cond_gallery(
    smoke_base: Path, cond_base: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A gateway serving the class-conditional model beside the first (its smoke versions)."""
    s = replace(
        embedded_settings(smoke_base, tmp_path_factory.mktemp("cond_gallery")),
        cond_model_base_path=cond_base,
    )
    with serve(create_app(s)) as url:
        yield url


def _requested(driver: Any, needle: str) -> list[str]:
    """The sheet requests the page made whose URL contains ``needle``."""
    names = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    return [n for n in names if "/api/generar-diseno" in n and needle in n]


def test_category_picker_draws_that_category(browser: Any, cond_gallery: str) -> None:
    """Picking "dress" sends category=dress and shows the class-conditional model's sheet
    and its card's figures per category; "all" shows ten rows; "any" the first model."""
    from selenium.webdriver.support.ui import Select

    _open(browser, cond_gallery + "/?seed=21")
    picker = Select(browser.find_element("id", "category"))
    assert [o.get_attribute("value") for o in picker.options][:3] == ["", "all", "t-shirt/top"]
    assert not browser.find_element("id", "per-class").is_displayed()
    picker.select_by_value("dress")

    def shown(category: str) -> bool:
        img = browser.find_element("id", "sheet")
        return img.get_attribute("data-category") == category and page_state(browser) == "ready"

    wait_for(lambda: shown("dress"), what="the dress sheet")
    assert _requested(browser, "category=dress")  # the sheet request carried it
    png, seed, version = _sheet(browser)
    assert seed == "21" and version == "2"
    assert Image.open(io.BytesIO(png)).size == (84 * SCALE, 84 * SCALE)
    direct = requests.get(
        cond_gallery + f"/api/generar-diseno?seed=21&rows=3&cols=3&scale={SCALE}&category=dress",
        timeout=30,
    )
    assert direct.content == png
    assert "category dress" in browser.find_element("id", "sheet").get_attribute("alt")
    assert "category=dress" in browser.find_element("id", "share").get_attribute("href")
    # the version picker lists the class-conditional model's versions, the panel its card
    wait_for(lambda: browser.find_element("id", "per-class").is_displayed(), what="per class")
    rows = browser.find_elements("css selector", "#per-class tbody tr")
    assert len(rows) == 10 and rows[3].text.startswith("dress (vestido)")
    assert "Agreement" in browser.find_element("id", "quality").text

    picker.select_by_value("all")
    wait_for(lambda: shown("all"), what="the sheet of every category")
    every, _, _ = _sheet(browser)
    assert Image.open(io.BytesIO(every)).size == (3 * 28 * SCALE, 10 * 28 * SCALE)

    picker.select_by_value("")
    wait_for(lambda: shown(""), what="the first model's sheet")
    assert not browser.find_element("id", "per-class").is_displayed()
