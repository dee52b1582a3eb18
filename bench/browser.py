"""Headless Chromium (Debian's ``chromium`` + ``chromium-driver``, driven by Selenium) for checking the report
as a reader's browser shows it and for the README's screenshots. Install:
``apt-get install chromium chromium-driver`` and ``pip install selenium`` (the ``test`` extra has it)."""

from __future__ import annotations

import shutil
from typing import Any

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
DRIVER_NAMES = ("chromedriver",)


def find_browser() -> tuple[str, str] | None:
    """(browser, driver) executables, or ``None`` when either is absent."""
    browser = next((p for n in CHROMIUM_NAMES if (p := shutil.which(n))), None)
    driver = next((p for n in DRIVER_NAMES if (p := shutil.which(n))), None)
    return (browser, driver) if browser and driver else None


def headless(width: int = 1280, height: int = 900) -> Any:
    """A headless Chromium WebDriver that records console messages and network requests."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    found = find_browser()
    if found is None:
        raise RuntimeError("headless Chromium not found: apt-get install chromium chromium-driver")
    opts = webdriver.ChromeOptions()
    opts.binary_location = found[0]
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}", "--hide-scrollbars"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(service=Service(found[1]), options=opts)


def page_check(driver: Any, url: str) -> dict[str, list]:
    """Open ``url``: the images that did not load, the console errors, and every request not to file:/data:."""
    import json

    driver.get(url)
    images = driver.execute_script(
        "return Array.from(document.images).map(i => [i.alt || i.src.slice(0, 40), i.complete, i.naturalWidth])")
    errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    requests = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            req = msg["params"]["request"]["url"]
            if not req.startswith(("file:", "data:")):
                requests.append(req)
    return {"images": images, "broken_images": [i[0] for i in images if not (i[1] and i[2] > 0)],
            "console_errors": errors, "external_requests": requests}


def full_page_png(driver: Any, path: str, width: int = 1280, max_height: int = 6000) -> None:
    """Screenshot of the whole page (resizing the window to the document's height, up to ``max_height``)."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, min(int(height) + 20, max_height))
    driver.save_screenshot(path)
