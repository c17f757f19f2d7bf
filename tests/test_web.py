
"""The drawing page in a real browser: Debian's Chromium driven by Playwright, real server behind it."""

import os
import re
from pathlib import Path

import numpy as np
import pytest
from server import running_server

from digitrec import synthetic

CHROMIUM = os.environ.get("DIGITREC_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("DIGITREC_REQUIRE_BROWSER"):
            pytest.fail(f"{CHROMIUM} not found (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} not found (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def server():
    with running_server() as url:
        yield url


# Timestamps taken inside the page: when the last stroke ended, when #prediction last changed.
TIMING_PROBE = """
window.__strokeEnded = 0; window.__shown = 0;
document.getElementById('pad').addEventListener('pointerup', () => { window.__strokeEnded = performance.now(); });
new MutationObserver(() => { window.__shown = performance.now(); })
  .observe(document.getElementById('prediction'), {childList: true, characterData: true, subtree: true});
"""


def _draw(page, strokes, box) -> None:
    """Draw strokes with the mouse, one press-move-release per stroke."""
    scale = box["width"] / 280
    for stroke in strokes:
        x0, y0 = stroke[0]
        page.mouse.move(box["x"] + x0 * scale, box["y"] + y0 * scale)
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x * scale, box["y"] + y * scale, steps=2)
        page.mouse.up()


def test_draw_each_digit_with_the_mouse(browser, server):
    ARTIFACTS.mkdir(exist_ok=True)
    # Reduced motion: no bar animation, so screenshots and widths show the final answer.
    page = browser.new_page(viewport={"width": 1000, "height": 760}, reduced_motion="reduce")
    page.goto(server)
    page.evaluate(TIMING_PROBE)
    box = page.locator("#pad").bounding_box()
    rng = np.random.default_rng(2024)
    correct, delays = 0, []
    for digit in range(10):
        page.click("#clear")
        assert page.text_content("#prediction") == ""
        strokes, pen = synthetic.digit_strokes(digit, rng)
        page.evaluate(f"document.getElementById('pad').getContext('2d').lineWidth = {pen:.1f}")
        for stroke in strokes:  # each stroke is read when it ends; the last answer counts
            with page.expect_response("**/api/predict") as response_info:
                _draw(page, [stroke], box)
            answer = response_info.value.json()["digit"]
        page.wait_for_function(f"document.querySelector('#prediction').textContent === '{answer}'", timeout=2000)
        delays.append(page.evaluate("window.__shown - window.__strokeEnded") / 1000)
        shown = page.text_content("#prediction")
        assert shown == str(answer)
        correct += shown == str(digit)
        if digit == 3:
            page.screenshot(path=str(ARTIFACTS / "draw-3.png"))
    page.screenshot(path=str(ARTIFACTS / "page.png"))
    assert correct >= 9, f"{correct}/10 read right"
    assert max(delays) < 0.5, delays
    bars = page.locator("#probabilities .bar").count()
    assert bars == 10
    # The top bar is as long as the confidence says, against its track.
    top_share = page.evaluate("""() => { const bar = document.querySelector('#probabilities .bar.top');
        return bar.firstChild.getBoundingClientRect().width / bar.getBoundingClientRect().width; }""")
    shown_pct = float(re.search(r"([0-9.]+)%", page.text_content("#confidence")).group(1))
    assert abs(100 * top_share - shown_pct) < 2, (top_share, shown_pct)


def test_keyboard_clear_upload_and_phone_width(browser, server, tmp_path, digits):
    page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                            reduced_motion="reduce")
    page.goto(server)
    overflow = page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    assert page.locator("#pad").bounding_box()["width"] <= 390

    photo = tmp_path / "photo.jpg"
    photo.write_bytes(synthetic.photo_of(digits["test"].x[1], np.random.default_rng(1)))
    page.set_input_files("#upload", str(photo))
    page.wait_for_function("document.querySelector('#prediction').textContent !== ''", timeout=3000)
    assert page.text_content("#prediction") == str(digits["test"].y[1])
    page.screenshot(path=str(ARTIFACTS / "phone.png"), full_page=True)

    page.focus("#pad")
    page.keyboard.press("Escape")
    assert page.text_content("#prediction") == ""
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "clear"
