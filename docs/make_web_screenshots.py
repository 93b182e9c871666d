"""Screenshots of `veille serve` for the README: the story list, a story page with its
timeline, an Arabic story and a search, saved as docs/web-*.png.

Serves the demo database (`veille demo`, run first when DIR has none) from a thread on
127.0.0.1 and drives Debian's headless Chromium with selenium. Not run by the tests;
`make screenshot` calls it.

Usage: .venv/bin/python docs/make_web_screenshots.py [--dir demo] [--out docs]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from veille.pipeline.config import load_config
from veille.search import refresh_index
from veille.storage.db import Database
from veille.web import create_app
from veille.web_query import right_to_left
from veille.web_server import serving_in_thread

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
WIDTH = 1100


def browser(profile: str) -> WebDriver:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--hide-scrollbars", f"--window-size={WIDTH},1000",
                f"--user-data-dir={profile}"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)


def shoot(driver: WebDriver, url: str, ready: str, out: Path, height: int) -> None:
    driver.get(url)
    WebDriverWait(driver, 30).until(ec.presence_of_element_located((By.CSS_SELECTOR, ready)))
    full = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.set_window_size(WIDTH, min(max(full, 600), height))
    driver.save_screenshot(str(out))
    print(f"screenshot: {out}")


def pick(stories: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The story with the longest timeline under a Latin title, and the Arabic-titled one
    with the longest timeline."""
    arabic = [s for s in stories if right_to_left(None, s["title"])]
    latin = [s for s in stories if s not in arabic]

    def longest(some: list[dict[str, Any]]) -> dict[str, Any]:
        return max(some or stories, key=lambda s: (len(s["timeline"]), s["id"]))

    return longest(latin), longest(arabic)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=ROOT / "demo", help="the demo's folder")
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="where the PNGs go")
    args = parser.parse_args()
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        sys.exit(f"make_web_screenshots: {', '.join(missing)} missing (Debian: chromium chromium-driver)")
    config = args.dir / "config.yaml"
    if not (args.dir / "veille.db").exists():
        subprocess.run([str(Path(sys.executable).with_name("veille")), "demo", "--dir", str(args.dir)],
                       cwd=ROOT, check=True)
    cfg = load_config(str(config))
    db = Database(cfg.database.url)
    refresh_index(db)  # as a crawl leaves it; the view itself never writes
    with serving_in_thread(create_app(cfg, db)) as url, tempfile.TemporaryDirectory() as profile:
        stories = httpx.get(f"{url}/api/stories", params={"days": 3650}).json()
        if not stories:
            sys.exit("make_web_screenshots: the demo database has no tracked story")
        latin, arabic = pick(stories)
        driver = browser(profile)
        try:
            out = args.out
            shoot(driver, f"{url}/", "li.story", out / "web-stories.png", 1300)
            shoot(driver, f"{url}/stories/{latin['id']}", "#timeline", out / "web-story.png", 1500)
            shoot(driver, f"{url}/stories/{arabic['id']}", "#timeline", out / "web-arabic.png", 1500)
            shoot(driver, f"{url}/search?q=حموشي", "#count", out / "web-search.png", 1100)
        finally:
            driver.quit()
    db.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
