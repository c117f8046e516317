"""A real browser on the Gradio page: headless Chromium (Debian's package, driven by Playwright) opens an n6
run's page on a real uvicorn server over loopback, types a sentence, clicks Predict, reads the label and
saves a screenshot. Skipped, with the reason, where Chromium or Playwright is missing."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dlpractice.serve.app import build_app, served_from

pytest.importorskip("gradio", reason="the browser test needs gradio (the serve extra)")
sync_api = pytest.importorskip("playwright.sync_api", reason="the browser test needs playwright (dev extra)")

pytestmark = pytest.mark.slow

# Only the page under test: no updates, sync, QUIC or other traffic a test machine should not make.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium (never a browser Playwright downloads); asked for first, so a machine without it
    skips before the run is trained."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("the browser test needs Debian's chromium package (apt-get install chromium)")
    return found


@pytest.fixture(scope="module")
def page_url(n6_run: Path, on_loopback) -> Iterator[str]:
    """The n6 run served with its Gradio page by uvicorn on a free loopback port, for the module."""
    app = build_app(served_from(n6_run), max_batch=4, max_wait_ms=2)
    with on_loopback(app) as url:
        yield url


def test_a_browser_types_a_sentence_and_reads_the_label(chromium: str, page_url: str, tmp_path: Path):
    sentence = "a gripping, beautifully acted film"
    with httpx.Client(trust_env=False) as http:  # loopback: never through a proxy from the environment
        expected = http.post(f"{page_url}/predict", json={"text": sentence}, timeout=30).json()["label"]
    shot = tmp_path / "n6_page.png"
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.set_default_timeout(30_000)
            page.goto(f"{page_url}/")  # / redirects to the page at /ui
            assert page.url.rstrip("/").endswith("/ui")
            page.locator("#text textarea").fill(sentence)
            page.locator("#predict").click()
            shown = page.locator("#prediction [data-testid='label-output-value']")
            sync_api.expect(shown).to_have_text(expected)  # what the JSON endpoint says for the same text
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert shot.is_file() and shot.stat().st_size > 1000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
