"""Headless Chromium for the gallery tests: Debian's ``chromium`` driven by its
``chromium-driver`` through selenium. Nothing is downloaded: both paths are given, so
Selenium Manager never runs, and SE_OFFLINE forbids it anyway. Without them the browser tests
skip with a sentence that says what to install (``.ci/run`` installs them), and the first-start
scenario warns that it did not watch the page."""

from __future__ import annotations

import base64
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
MISSING = "no Chromium: browser tests skipped (install Debian's chromium and chromium-driver)"
# the flags the machine's own probe uses: without the background-networking ones Chromium
# keeps trying Google's hosts, which this closed network refuses
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1100,1000",
)

# the bytes an <img> shows, read back in the page (its src is a blob: URL the page made)
IMAGE_BYTES = """
const [id, done] = arguments;
fetch(document.getElementById(id).src).then(r => r.arrayBuffer()).then(b => {
  const u = new Uint8Array(b); let s = "";
  for (let i = 0; i < u.length; i += 4096) s += String.fromCharCode(...u.subarray(i, i + 4096));
  done(btoa(s));
}).catch(e => done("ERROR " + e));
"""


def available() -> bool:
    return Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()


@contextmanager
def chromium(profile_dir: Path) -> Iterator[Any]:
    """A headless Chromium session, or None when Chromium is not installed."""
    if not available():
        yield None
        return
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile_dir}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(check: Callable[[], Any], timeout_s: float = 30, what: str = "") -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.1)


def open_page(driver: Any, url: str, state: str = "ready", timeout_s: float = 30) -> None:
    driver.get(url)
    wait_for(lambda: page_state(driver) == state, timeout_s, what=f"{state} at {url}")


def page_state(driver: Any) -> str:
    return str(driver.execute_script("return document.body.dataset.state"))


def image_bytes(driver: Any, element_id: str) -> bytes:
    encoded = driver.execute_async_script(IMAGE_BYTES, element_id)
    assert not encoded.startswith("ERROR"), encoded
    return base64.b64decode(encoded)
