"""Take docs/screenshot.png: the chat UI answering the example question, in headless chromium.

    .venv/bin/qa serve --port 7860 &            # on an index of data/articles
    .venv/bin/python docs/screenshot.py [URL] [QUESTION]
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
OUT = Path(__file__).resolve().parent / "screenshot.png"


def main() -> None:
    url = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:7860/"
    question = sys.argv[2] if len(sys.argv) > 2 else "What did Le Cong Thanh recommend on climate diplomacy?"
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 1080}, device_scale_factor=1)
        page.goto(url)
        page.wait_for_selector("#qa-input textarea", timeout=120_000)
        page.get_by_role("button", name=question).click() if page.get_by_role("button", name=question).count() else (
            page.fill("#qa-input textarea", question), page.click("#qa-send"))
        page.wait_for_selector("#qa-chat .qa-msg:not(.qa-streaming)", timeout=300_000)
        page.wait_for_timeout(800)
        # show the question, the answer and its first sources
        page.evaluate("() => { const w = document.querySelector('#qa-chat .bubble-wrap'); if (w) w.scrollTop = 0; }")
        page.mouse.move(0, 0)
        page.wait_for_timeout(400)
        page.screenshot(path=str(OUT), full_page=True)
        browser.close()
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
