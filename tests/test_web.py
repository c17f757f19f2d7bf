
"""The drawing page in a real browser: Debian's Chromium driven by Playwright, real server behind it. Marked
`browser` (skipped without Chromium unless DIGITREC_REQUIRE_BROWSER is set, as in CI); the long ones `slow`."""

import csv
import io
import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont, ImageOps
from server import running_server

from digitrec.data import synthetic

CHROMIUM = os.environ.get("DIGITREC_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
pytestmark = pytest.mark.browser
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


def _thinned(stroke, gap: float = 6.0) -> list:
    """The stroke's points at least `gap` pad pixels apart, ends kept: each pointer event is a round trip to the
    browser (a synthetic 9 has 200 points 1.4 px apart), and 6 px on the 280-px pad is 0.6 px of the 28x28."""
    kept = [stroke[0]]
    for point in stroke[1:-1]:
        if np.hypot(point[0] - kept[-1][0], point[1] - kept[-1][1]) >= gap:
            kept.append(point)
    return [*kept, stroke[-1]] if len(stroke) > 1 else kept


def _draw(page, strokes, box) -> None:
    """Draw strokes with the mouse, one press-move-release per stroke."""
    scale = box["width"] / 280
    for stroke in map(_thinned, strokes):
        x0, y0 = stroke[0]
        page.mouse.move(box["x"] + x0 * scale, box["y"] + y0 * scale)
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x * scale, box["y"] + y * scale, steps=2)
        page.mouse.up()


@pytest.mark.slow
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


def _number_strokes(number: str, rng) -> tuple[list, float]:
    """Strokes of a number on the 840x240 pad: each digit drawn by `synthetic` in its own 200-px cell."""
    strokes, pens = [], []
    for i, ch in enumerate(number):
        digit_strokes, pen = synthetic.digit_strokes(int(ch), rng, 200)
        strokes += [[(x + 20 + 200 * i, y + 20) for x, y in s] for s in digit_strokes]
        pens.append(pen)
    return strokes, float(np.mean(pens))


def test_write_a_number_on_the_number_page_with_the_mouse(browser, server):
    # One number: the page's path from strokes to the answer, its boxes and crops. How well numbers are read is
    # measured without a browser (tests/test_read.py, tests/test_lines.py).
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1000, "height": 760}, reduced_motion="reduce")
    page.goto(f"{server}/number")
    box = page.locator("#line").bounding_box()
    scale = box["width"] / 840
    number = "3807"
    page.click("#clear")
    strokes, pen = _number_strokes(number, np.random.default_rng(4))
    page.evaluate(f"document.getElementById('line').getContext('2d').lineWidth = {pen:.1f}")
    for stroke in map(_thinned, strokes):  # read after every stroke; the last answer counts
        with page.expect_response("**/api/read**") as response_info:
            page.mouse.move(box["x"] + stroke[0][0] * scale, box["y"] + stroke[0][1] * scale)
            page.mouse.down()
            for x, y in stroke[1:]:
                page.mouse.move(box["x"] + x * scale, box["y"] + y * scale, steps=2)
            page.mouse.up()
    answer = response_info.value.json()
    page.wait_for_function(f"document.querySelector('#text').textContent === '{answer['text']}'", timeout=2000)
    assert answer["text"] == number
    # Each digit's box is drawn over the pad, and each 28x28 it was read from is shown.
    assert page.locator("#crops canvas").count() == len(answer["digits"]) == len(number)
    inked = page.evaluate("""() => { const c = document.getElementById('boxes');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n; }""")
    assert inked > 200
    page.screenshot(path=str(ARTIFACTS / "number.png"))


def test_number_page_draws_with_touch_on_a_phone_without_scrolling(browser, server):
    page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                            reduced_motion="reduce")
    page.goto(f"{server}/number")
    assert page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth") <= 0
    box = page.locator("#line").bounding_box()
    scale = box["width"] / 840
    cdp = page.context.new_cdp_session(page)
    strokes, _ = _number_strokes("47", np.random.default_rng(7))
    page.evaluate("document.getElementById('line').getContext('2d').lineWidth = 16")
    for stroke in map(_thinned, strokes):
        with page.expect_response("**/api/read**"):
            points = [(box["x"] + x * scale, box["y"] + y * scale) for x, y in stroke]
            cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": points[0][0],
                                                                                       "y": points[0][1]}]})
            for x, y in points[1:]:
                cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
            cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    page.wait_for_function("document.querySelector('#text').textContent !== ''", timeout=3000)
    assert page.evaluate("window.scrollY") == 0 and page.evaluate("window.scrollX") == 0
    assert page.text_content("#text") == "47"
    page.screenshot(path=str(ARTIFACTS / "number-phone.png"), full_page=True)


@pytest.mark.slow
def test_correct_a_misread_digit_on_the_page_then_tune_reads_it(browser, tmp_path, digits_dir):
    """Draw a 1 with a long flag (read wrong by the bundled model), press 'It was: 1': the example lands in
    --collect DIR; `digitrec tune` on that folder reads the same drawing as 1 (replaying the synthetic stand-in:
    the replayed digits keep the others, and need not be MNIST's for this)."""
    from digitrec.cli import main
    from digitrec.inference.engine import Predictor

    kept = tmp_path / "kept"
    with running_server("--collect", str(kept), "--workers", "1") as url:
        page = browser.new_page(viewport={"width": 1000, "height": 900}, reduced_motion="reduce")
        page.goto(url)
        page.wait_for_selector("#teach:not([hidden])", timeout=3000)
        box = page.locator("#pad").bounding_box()
        strokes, pen = synthetic.hand_strokes("backhand", 1, np.random.default_rng(5))
        page.evaluate(f"document.getElementById('pad').getContext('2d').lineWidth = {pen:.1f}")
        with page.expect_response("**/api/predict") as response_info:
            _draw(page, strokes, box)
        read_as = response_info.value.json()["digit"]
        assert read_as != 1, "the drawing must be one the base model misreads"
        with page.expect_response("**/api/correct") as saved:
            page.get_by_role("button", name="It was a 1").click()
        assert saved.value.ok
        page.wait_for_function("document.querySelector('.teach-status').textContent.startsWith('Kept as 1')")
        page.screenshot(path=str(ARTIFACTS / "correct.png"))
    examples = list((kept / "1").glob("*.png"))
    assert len(examples) == 1
    assert main(["tune", "--data", str(kept), "--out", str(tmp_path / "mine"), "--replay", str(digits_dir),
                 "--steps", "40", "--quiet"]) == 0
    assert Predictor.load().predict(examples[0])[0] == read_as
    assert Predictor.load(tmp_path / "mine").predict(examples[0])[0] == 1


def test_number_page_keeps_a_corrected_number_digit_by_digit(browser, tmp_path):
    kept = tmp_path / "kept"
    with running_server("--collect", str(kept), "--workers", "1") as url:
        page = browser.new_page(viewport={"width": 1000, "height": 900}, reduced_motion="reduce")
        page.goto(f"{url}/number")
        page.wait_for_selector("#teach:not([hidden])", timeout=3000)
        box = page.locator("#line").bounding_box()
        scale = box["width"] / 840
        strokes, pen = _number_strokes("305", np.random.default_rng(12))
        page.evaluate(f"document.getElementById('line').getContext('2d').lineWidth = {pen:.1f}")
        for stroke in map(_thinned, strokes):
            with page.expect_response("**/api/read**"):
                page.mouse.move(box["x"] + stroke[0][0] * scale, box["y"] + stroke[0][1] * scale)
                page.mouse.down()
                for x, y in stroke[1:]:
                    page.mouse.move(box["x"] + x * scale, box["y"] + y * scale, steps=2)
                page.mouse.up()
        page.fill("#correct-text", "305")
        with page.expect_response("**/api/correct") as saved:
            page.click("#correct-save")
        assert saved.value.ok, saved.value.text()
        page.screenshot(path=str(ARTIFACTS / "number-correct.png"))
    assert sorted(p.parent.name for p in kept.glob("[0-9]/*.png")) == ["0", "3", "5"]


def test_without_collect_the_page_shows_no_correction_buttons(browser, server):
    page = browser.new_page()
    page.goto(server)
    page.wait_for_function("window.fetch !== undefined")
    page.wait_for_timeout(300)
    assert page.locator("#teach").is_hidden()


def test_api_docs_render_without_the_internet(browser, server):
    page = browser.new_page()
    # Any request that leaves loopback is refused: the docs must come from the package.
    page.route(re.compile(r"^https?://(?!127\.0\.0\.1)"), lambda route: route.abort())
    page.goto(f"{server}/docs")
    page.wait_for_selector(".swagger-ui .opblock", timeout=10_000)
    assert page.locator(".opblock-summary-path", has_text="/api/read").count() >= 1


# Every piece of text, every picture and every bar in a result, as the boxes a reader sees: a text node's line
# boxes (not its element's, which may be wider than its ink), a canvas's or an image's box.
RESULT_BOXES = """(selector) => {
  const root = document.querySelector(selector), found = [];
  const add = (element, what, r) => { if (r.width > 0 && r.height > 0) found.push({ element, what, r }); };
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    if (!node.textContent.trim() || !node.parentElement.checkVisibility()) continue;
    const range = document.createRange(); range.selectNodeContents(node);
    for (const r of range.getClientRects()) add(node.parentElement, node.textContent.trim().slice(0, 40), r);
  }
  root.querySelectorAll("canvas, img, .bar").forEach((e) => {
    if (e.checkVisibility()) add(e, e.id || e.className || e.tagName, e.getBoundingClientRect()); });
  return found.map(({ element, what, r }) => ({ what, x0: r.left, y0: r.top, x1: r.right, y1: r.bottom,
    inside: found.filter((o) => o.element !== element && o.element.contains(element)).map((o) => o.what) }));
}"""


def _overlaps(boxes: list[dict], margin: float = 1.0) -> list[tuple[str, str]]:
    """Pairs of boxes that cover one another by more than `margin` px both ways (text inside its own bar or
    picture excepted)."""
    found = []
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            if a["what"] in b["inside"] or b["what"] in a["inside"]:
                continue
            wide = min(a["x1"], b["x1"]) - max(a["x0"], b["x0"])
            tall = min(a["y1"], b["y1"]) - max(a["y0"], b["y0"])
            if wide > margin and tall > margin:
                found.append((a["what"], b["what"]))
    return found


def _number_picture(number: str, rng) -> Image.Image:
    """A number written on white: each digit drawn by `synthetic` in its own 200-px cell."""
    line = Image.new("L", (40 + 200 * len(number), 260), 255)
    for i, ch in enumerate(number):
        strokes, pen = synthetic.digit_strokes(int(ch), rng, 200)
        line.paste(synthetic.render_strokes(strokes, pen, 200), (20 + 200 * i, 30))
    return line


def _phone(browser):
    return browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                            reduced_motion="reduce")


def _laid_out_cleanly(page, name: str) -> None:
    """The result has no text or picture set over another and nothing wider than the phone; a screenshot
    of it is kept in tests/artifacts."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    boxes = page.evaluate(RESULT_BOXES, ".result")
    assert len(boxes) >= 3
    assert _overlaps(boxes) == [], _overlaps(boxes)
    assert page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth") <= 0
    assert max(b["x1"] for b in boxes) <= 390


def test_digit_result_lays_out_cleanly_on_a_phone(browser, server, tmp_path, digits):
    page = _phone(browser)
    page.goto(server)
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(synthetic.photo_of(digits["test"].x[0], np.random.default_rng(3)))
    page.set_input_files("#upload", str(photo))
    page.wait_for_function("document.querySelector('#prediction').textContent !== ''", timeout=5000)
    _laid_out_cleanly(page, "phone-digit-result")


@pytest.mark.parametrize("number", ["172", "30571946"])
def test_number_result_lays_out_cleanly_on_a_phone(browser, server, tmp_path, number):
    page = _phone(browser)
    page.goto(f"{server}/number")
    picture = tmp_path / "number.png"
    _number_picture(number, np.random.default_rng(1)).save(picture)
    page.set_input_files("#upload", str(picture))
    page.wait_for_function("document.querySelector('#text').textContent !== ''", timeout=5000)
    assert page.text_content("#text") == number
    _laid_out_cleanly(page, f"phone-number-result-{len(number)}")


# ---------------------------------------------------------------- page mode

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
FORM = (("Amount:", "1250"), ("Room:", "37"), ("Code:", "90418"), ("Count:", "6"))


def _written(number: str, rng, height: int = 90) -> Image.Image:
    """A number in one hand: each digit drawn by `synthetic`, cut to its ink, `height` px high, 14 px apart."""
    digits = []
    for ch in number:
        strokes, pen = synthetic.digit_strokes(int(ch), rng, 200)
        digit = synthetic.render_strokes(strokes, pen, 200)
        digit = digit.crop(ImageOps.invert(digit).getbbox())
        digits.append(digit.resize((max(8, round(digit.width * height / digit.height)), height)))
    line = Image.new("L", (sum(d.width + 14 for d in digits), height), 255)
    x = 0
    for digit in digits:
        line.paste(digit, (x, 0))
        x += digit.width + 14
    return line


def page_picture(form=FORM, seed: int = 0, size=(1200, 1000)) -> Image.Image:
    """A form: a printed label (DejaVu Sans) on each line, a handwritten number after it."""
    rng = np.random.default_rng(seed)
    page = Image.new("L", size, 255)
    draw = ImageDraw.Draw(page)
    font = ImageFont.truetype(FONT, 34) if Path(FONT).exists() else ImageFont.load_default(34)
    for row, (label, number) in enumerate(form):
        top = 80 + row * 200
        draw.text((60, top + 30), label, font=font, fill=30)
        page.paste(_written(number, rng), (400, top))
    return page


def _read_a_page(page, tmp_path, name: str) -> list[dict]:
    """Upload the form in page mode; its fields as the page shows them, and the CSV it offers."""
    picture = tmp_path / "form.png"
    page_picture().save(picture)
    with page.expect_response("**/api/page") as response_info:
        page.set_input_files("#upload", str(picture))
    answer = response_info.value.json()
    assert [f["text"] for f in answer["fields"]] == [number for _, number in FORM]
    assert (answer["width"], answer["height"]) == (1200, 1000)
    page.wait_for_function(f"document.querySelectorAll('#marks .field-box').length === {len(FORM)}", timeout=5000)
    # each box lies on its field: the same share of the photo as of the page
    photo = page.locator("#photo").bounding_box()
    for mark, field in zip(page.locator("#marks .field-box").all(), answer["fields"], strict=True):
        box, (x0, y0, x1, y1) = mark.bounding_box(), field["box"]
        assert abs(box["x"] - photo["x"] - x0 * photo["width"] / 1200) < 3
        assert abs(box["y"] - photo["y"] - y0 * photo["height"] / 1000) < 3
        assert abs(box["width"] - (x1 - x0) * photo["width"] / 1200) < 3
        assert abs(box["height"] - (y1 - y0) * photo["height"] / 1000) < 3
        assert mark.text_content().startswith(f"{answer['fields'].index(field) + 1}: {field['text']} ")
    assert page.locator("#fields tbody tr").count() == len(FORM)
    assert page.text_content("#count") == str(len(FORM))
    with page.expect_download() as download_info:
        page.click("#csv")
    rows = list(csv.reader(io.StringIO(Path(download_info.value.path()).read_text())))
    assert rows[0] == ["file", "field", "text", "confidence", "x0", "y0", "x1", "y1"]
    assert [r[:3] for r in rows[1:]] == [["form.png", str(i + 1), n] for i, (_, n) in enumerate(FORM)]
    assert [[int(v) for v in r[4:]] for r in rows[1:]] == [f["box"] for f in answer["fields"]]
    assert all(abs(float(r[3]) - f["confidence"]) < 1e-4 for r, f in zip(rows[1:], answer["fields"], strict=True))
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    return answer["fields"]


def test_page_mode_boxes_every_field_and_offers_them_as_csv(browser, server, tmp_path):
    page = browser.new_page(viewport={"width": 1000, "height": 900}, reduced_motion="reduce", accept_downloads=True)
    page.goto(f"{server}/page")
    _read_a_page(page, tmp_path, "page-mode")


def test_page_mode_on_a_phone(browser, server, tmp_path):
    page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                            reduced_motion="reduce", accept_downloads=True)
    page.goto(f"{server}/page")
    _read_a_page(page, tmp_path, "phone-page-mode")
    assert page.locator("#photo").bounding_box()["width"] <= 390
    _laid_out_cleanly(page, "phone-page-result")


def test_page_mode_says_when_a_page_has_no_field(browser, server, tmp_path):
    page = browser.new_page()
    page.goto(f"{server}/page")
    blank = tmp_path / "blank.png"
    Image.new("L", (800, 600), 255).save(blank)
    page.set_input_files("#upload", str(blank))
    page.wait_for_function("document.querySelector('#count').textContent === 'none'", timeout=5000)
    assert "No handwritten field" in page.text_content("#status")
    assert page.locator("#csv").is_hidden() and page.locator("#marks .field-box").count() == 0
