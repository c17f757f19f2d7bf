import base64
import io
import json
import zlib

import httpx
import numpy as np
import pytest
from PIL import Image
from server import running_server
from test_web import FORM, page_picture

from digitrec.data import synthetic


@pytest.fixture(scope="module")
def server():
    with running_server() as url:
        yield url


def _post_file(url, payload: bytes, name="digit.png", mime="image/png"):
    return httpx.post(f"{url}/api/predict", files={"file": (name, payload, mime)}, timeout=30)


def test_health_model_and_docs(server):
    assert httpx.get(f"{server}/api/health").json() == {"status": "ok"}
    info = httpx.get(f"{server}/api/model").json()
    assert info["architecture"] and info["parameters"] > 1000 and info["version"]
    assert info["test_accuracy"] >= 0.995
    assert "/api/predict" in httpx.get(f"{server}/openapi.json").json()["paths"]


def test_openapi_shows_every_request_body_with_its_limits(server):
    """/docs shows what each route accepts: a picture (multipart or raw image/*) and its JSON body's schema."""
    document = httpx.get(f"{server}/openapi.json").json()
    schemas, paths = document["components"]["schemas"], document["paths"]
    for path, model in (("/api/predict", "PixelsBody"), ("/api/read", "ImageBody")):
        content = paths[path]["post"]["requestBody"]["content"]
        assert content["application/json"]["schema"] == {"$ref": f"#/components/schemas/{model}"}
        assert content["image/*"]["schema"]["format"] == "binary"
        assert content["multipart/form-data"]["schema"]["properties"]["file"]["format"] == "binary"
        assert paths[path]["post"]["responses"]["422"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorAnswer"}
    rows = schemas["PixelsBody"]["properties"]["pixels"]
    assert rows["minItems"] == rows["maxItems"] == 28 == rows["items"]["minItems"] == rows["items"]["maxItems"]
    assert rows["items"]["items"] == {"type": "number", "minimum": 0, "maximum": 255}
    assert schemas["ImageBody"]["required"] == ["image"]
    form = paths["/api/correct"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]
    assert set(form) == {"file", "label", "text", "confirmed"} and form["label"]["pattern"] == "^[0-9]?$"
    assert "inputs" in [p["name"] for p in paths["/api/read"]["post"]["parameters"]]
    page = paths["/api/page"]["post"]
    assert page["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ImageBody"}
    assert page["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PageAnswer"}
    assert {"fields", "width", "height"} <= set(schemas["PageAnswer"]["properties"])


def test_api_docs_work_offline(server):
    """/docs loads Swagger UI from the package, never from a CDN."""
    docs = httpx.get(f"{server}/docs")
    assert docs.status_code == 200 and "cdn" not in docs.text and "http" not in docs.text.split("<body>")[1]
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert f"/docs-assets/{asset}" in docs.text
        response = httpx.get(f"{server}/docs-assets/{asset}")
        assert response.status_code == 200 and len(response.content) > 10_000


def test_page_and_static_files_are_served(server):
    page = httpx.get(f"{server}/")
    assert page.status_code == 200
    for element in ['id="pad"', 'id="clear"', 'id="prediction"', 'id="probabilities"', 'id="upload"']:
        assert element in page.text
    assert "http://" not in page.text and "https://" not in page.text  # nothing from a CDN
    assert httpx.get(f"{server}/static/app.js").status_code == 200
    for mode in ("/number", "/page"):
        page = httpx.get(f"{server}{mode}")
        assert page.status_code == 200 and 'id="upload"' in page.text and "http" not in page.text
        assert all(f'href="{other}"' in page.text for other in ("/", "/number", "/page"))  # every mode a link away


def test_drawn_png_is_read(server):
    images, labels = synthetic.drawn_digits(20, seed=11)
    answers = [_post_file(server, synthetic.png_bytes(im)).json() for im in images]
    assert sum(a["digit"] == label for a, label in zip(answers, labels, strict=True)) >= 19
    first = answers[0]
    assert set(first) >= {"digit", "confidence", "probabilities", "model"}
    assert len(first["probabilities"]) == 10 and abs(sum(first["probabilities"]) - 1) < 1e-4
    assert np.array(first["input"]).shape == (28, 28)


@pytest.mark.slow  # 600 pictures drawn and read over HTTP
def test_api_reads_drawn_digits_and_photos(server, digits):
    """Pen strokes rendered to 280x280 PNGs (varied width, size, position, slant): >= 99% right;
    digits photographed on uneven paper (rotated, off-centre, blurred, JPEG): >= 95%."""
    images, labels = synthetic.drawn_digits(300, seed=31)
    with httpx.Client(base_url=server, timeout=30) as client:
        drawn = [client.post("/api/predict", content=synthetic.png_bytes(im),
                             headers={"content-type": "image/png"}).json()["digit"] for im in images]
        rng = np.random.default_rng(31)
        test = digits["test"]
        picks = rng.choice(len(test), 300, replace=False)
        photos = [client.post("/api/predict", files={"file": ("p.jpg", synthetic.photo_of(test.x[i], rng),
                                                              "image/jpeg")}).json()["digit"] for i in picks]
    assert np.mean(np.array(drawn) == labels) >= 0.99
    assert np.mean(np.array(photos) == test.y[picks]) >= 0.95


def test_json_pixels(server, digits):
    x, y = digits["test"].x[:20], digits["test"].y[:20]
    answers = [httpx.post(f"{server}/api/predict", json={"pixels": im.tolist()}).json()["digit"] for im in x]
    assert answers == y.tolist()


def test_raw_image_body_and_jpeg(server, digits):
    rng = np.random.default_rng(0)
    photo = synthetic.photo_of(digits["test"].x[0], rng)
    r = httpx.post(f"{server}/api/predict", content=photo, headers={"content-type": "image/jpeg"})
    assert r.status_code == 200 and r.json()["digit"] == digits["test"].y[0]


def _bomb_png(width: int, height: int) -> bytes:
    """A valid PNG header claiming a huge size, with a tiny compressed body: decoding it whole would need GBs."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    rows = zlib.compress(b"\x00" * (width + 1) * 64, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def _nan_tiff() -> bytes:
    """A float TIFF whose pixels are all NaN but a few infinities: once a 500 (IndexError)."""
    pixels = np.full((64, 64), np.nan, np.float32)
    pixels[:3, :3] = np.inf
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="F").save(buffer, format="TIFF")
    return buffer.getvalue()


def _blank_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (280, 280), 255).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("send", "status", "message"),
    [
        (lambda u: _post_file(u, b"this is not an image at all"), 400, "not a readable image"),
        (lambda u: _post_file(u, b""), 400, "empty"),
        (lambda u: httpx.post(f"{u}/api/predict", content=b"", headers={"content-type": "image/png"}), 400, "empty"),
        (lambda u: _post_file(u, _blank_png()), 422, "blank"),
        (lambda u: _post_file(u, b"\x89PNG" + b"\0" * (11 * 1024 * 1024)), 413, "limit"),
        (lambda u: _post_file(u, _bomb_png(20000, 20000)), 413, "pixel limit"),
        (lambda u: _post_file(u, _bomb_png(8000, 8000)), 413, "8000x8000 pixels, over the pixel limit"),
        (lambda u: httpx.post(f"{u}/api/predict", json={"pixels": [[0] * 28] * 27}), 422, "28 rows"),
        (lambda u: httpx.post(f"{u}/api/predict", json={"pixels": [[300] * 28] * 28}), 422, "0-255"),
        (lambda u: httpx.post(f"{u}/api/predict", json={"pixels": [["a"] * 28] * 28}), 422, "numbers"),
        (lambda u: httpx.post(f"{u}/api/predict", json={"pixels": [[0] * 28] * 28}), 422, "blank"),
        (lambda u: httpx.post(f"{u}/api/predict", json={"image": 1}), 422, "pixels"),
        (lambda u: httpx.post(f"{u}/api/predict", content=b"{not json",
                              headers={"content-type": "application/json"}), 400, "malformed JSON"),
        (lambda u: httpx.post(f"{u}/api/predict", content=b"hello", headers={"content-type": "text/plain"}),
         415, "unsupported content type"),
        (lambda u: httpx.post(f"{u}/api/predict", files={"other": ("a.png", b"x")}), 400, "'file'"),
        (lambda u: httpx.get(f"{u}/api/nothing-here"), 404, "Not Found"),
        (lambda u: httpx.post(f"{u}/api/predict", content=json.dumps({"pixels": [[0] * 28] * 28}).replace(
            "0", "9" * 400, 1).encode(), headers={"content-type": "application/json"}), 422, "0-255"),
        (lambda u: httpx.post(f"{u}/api/predict", content=b'{"pixels": [' + b"[" * 100_000 + b"]" * 100_001 + b"}",
                              headers={"content-type": "application/json"}), 400, "malformed JSON"),
        (lambda u: _post_file(u, _nan_tiff(), "nan.tif", "image/tiff"), 400, "no finite pixel values"),
    ],
    ids=["not-image", "empty-file", "empty-body", "blank-canvas", "too-many-bytes", "decompression-bomb", "too-big",
         "json-shape", "json-range", "json-type", "json-blank", "json-key", "malformed-json", "content-type",
         "no-file-field", "unknown-path", "json-400-digit-integer", "json-100000-deep", "float-tiff-nan"],
)
def test_bad_input_gets_a_json_4xx_and_server_survives(server, send, status, message):
    response = send(server)
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and message in body["error"]
    assert httpx.get(f"{server}/api/health").status_code == 200


def test_wrong_method(server):
    response = httpx.get(f"{server}/api/predict")
    assert response.status_code == 405 and response.json() == {"error": "Method Not Allowed"}


def test_requests_for_another_host_name_are_refused(server):
    # DNS rebinding: a page at evil.example points its name at 127.0.0.1 and calls the API.
    refused = httpx.get(f"{server}/api/health", headers={"host": "evil.example"})
    assert refused.status_code == 400 and "evil.example" in refused.json()["error"]
    assert httpx.get(f"{server}/api/health", headers={"host": "localhost"}).status_code == 200


def test_a_slow_upload_is_cut_off_with_a_408(monkeypatch):
    import socket
    import time

    monkeypatch.setenv("DIGITREC_BODY_SECONDS", "1")
    with running_server() as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as connection:
            connection.sendall(b"POST /api/predict HTTP/1.1\r\nHost: localhost\r\nContent-Type: image/png\r\n"
                               b"Content-Length: 1000\r\n\r\n\x89PNG")  # then nothing more
            start, answer = time.monotonic(), ""
            while "}" not in answer:  # headers and JSON body may come in two packets
                answer += connection.recv(4096).decode()
        assert answer.startswith("HTTP/1.1 408") and "took over" in answer
        assert time.monotonic() - start < 5
        assert httpx.get(f"{url}/api/health").status_code == 200


def test_clients_that_go_away_or_send_huge_headers_leave_no_traceback(tmp_path):
    import socket
    import time

    log = tmp_path / "server.log"
    with running_server("--workers", "1", log_path=log) as url:
        port = int(url.rsplit(":", 1)[1])
        for path, body in (("/api/predict", b"0123456789"), ("/api/read", b"--x")):
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; "
                          f"boundary=x\r\nContent-Length: 1000\r\n\r\n".encode() + body)
                time.sleep(0.3)
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"GET /api/health HTTP/1.1\r\nConnection: close\r\nHost: 127.0.0.1\r\nX-Big: "
                      + b"a" * 100_000 + b"\r\n\r\n")
            answer = b""
            while chunk := s.recv(500):  # until the server closes: headers and body may come apart
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 431") and b'"error"' in answer
        assert httpx.get(f"{url}/api/health").status_code == 200
        time.sleep(0.5)
    assert "Traceback" not in log.read_text()


def test_requests_arriving_together_are_read_in_one_batch_with_the_same_answers():
    import asyncio

    from digitrec.inference.engine import load_predictor
    from digitrec.serving.app import create_app

    app = create_app(load_predictor(threads=1))
    images, _ = synthetic.drawn_digits(16, seed=8)
    payloads = [synthetic.png_bytes(im) for im in images]

    async def together():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            answers = await asyncio.gather(*(client.post("/api/predict", content=p, headers={"content-type":
                                                                                             "image/png"})
                                             for p in payloads))
            alone = [await client.post("/api/predict", content=p, headers={"content-type": "image/png"})
                     for p in payloads]
            batching = (await client.get("/api/model")).json()["batching"]
        return answers, alone, batching

    answers, alone, batching = asyncio.run(together())
    assert [a.json()["digit"] for a in answers] == [a.json()["digit"] for a in alone]
    assert all(abs(a.json()["confidence"] - b.json()["confidence"]) < 1e-5 for a, b in zip(answers, alone, strict=True))
    assert batching["requests"] == 32 and batching["batches"] < 32  # the 16 sent together shared calls


# ---------------------------------------------------------------- pages


def _png_of(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_page_is_read_field_by_field(server):
    """A form of printed labels and handwritten numbers: each number a field, in reading order, boxed in the
    picture's pixels; the labels give nothing. The same as raw bytes, multipart and base64 JSON."""
    png = _png_of(page_picture())
    answers = [httpx.post(f"{server}/api/page", content=png, headers={"content-type": "image/png"}, timeout=30),
               httpx.post(f"{server}/api/page", files={"file": ("form.png", png, "image/png")}, timeout=30),
               httpx.post(f"{server}/api/page", json={"image": base64.b64encode(png).decode()}, timeout=30)]
    assert [a.status_code for a in answers] == [200] * 3
    first = answers[0].json()
    assert all(a.json() == first for a in answers)
    assert (first["width"], first["height"]) == (1200, 1000)
    assert [f["text"] for f in first["fields"]] == [number for _, number in FORM]
    for row, field in enumerate(first["fields"]):
        x0, y0, x1, y1 = field["box"]
        assert 380 <= x0 < x1 <= 1000 and 60 + 200 * row <= y0 < y1 <= 200 + 200 * row, field["box"]
        assert 0 < field["confidence"] <= 1
        assert "".join(c["char"] for c in field["characters"]) == field["text"]


@pytest.mark.parametrize("size", [(800, 600), (2480, 3508)])
def test_a_blank_page_has_no_fields(server, size):
    answer = httpx.post(f"{server}/api/page", files={"file": ("blank.png", _png_of(Image.new("L", size, 255)),
                                                              "image/png")}, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"width": size[0], "height": size[1], "fields": []}


@pytest.mark.parametrize(
    ("send", "status", "message"),
    [
        (lambda u: httpx.post(f"{u}/api/page", content=b"\x89PNG" + b"\0" * (11 * 1024 * 1024),
                              headers={"content-type": "image/png"}), 413, "limit"),
        (lambda u: _post_page(u, _bomb_png(20000, 20000)), 413, "pixel limit"),
        (lambda u: _post_page(u, _png_of(Image.new("L", (4000, 4000), 255))), 413, "page limit"),
        (lambda u: _post_page(u, b"this is not an image at all"), 400, "not a readable image"),
        (lambda u: _post_page(u, b""), 400, "empty"),
        (lambda u: httpx.post(f"{u}/api/page", content=b"hello", headers={"content-type": "text/plain"}),
         415, "unsupported content type"),
        (lambda u: httpx.post(f"{u}/api/page", json={"pixels": 1}), 422, "image"),
        (lambda u: httpx.post(f"{u}/api/page", json={"image": "!!"}), 422, "base64"),
        (lambda u: httpx.post(f"{u}/api/page", content=b"{not json", headers={"content-type": "application/json"}),
         400, "malformed JSON"),
    ],
    ids=["too-many-bytes", "decompression-bomb", "over-the-page-limit", "not-image", "empty", "content-type",
         "json-key", "json-base64", "malformed-json"],
)
def test_bad_pages_get_a_json_4xx(server, send, status, message):
    response = send(server)
    assert response.status_code == status, response.text
    assert set(response.json()) == {"error"} and message in response.json()["error"]


def _post_page(url: str, payload: bytes):
    return httpx.post(f"{url}/api/page", files={"file": ("page.png", payload, "image/png")}, timeout=30)


def test_the_page_route_answers_what_the_page_reader_finds(monkeypatch):
    """The route's contract, whatever the reader finds: the decoded picture and the run's line model go in,
    the page's `as_dict` comes out."""
    from fastapi.testclient import TestClient

    from digitrec.inference.engine import load_predictor
    from digitrec.reading.page import Character, Field, Page
    from digitrec.serving import app as server_app

    seen = {}

    def reader(picture, predictor, line_model, digits_only):
        seen.update(size=picture.size, line_model=line_model, digits_only=digits_only)
        return Page(picture.width, picture.height, [Field("-3", 0.5, [1, 2, 30, 40], [
            Character("-", 0.6, [1, 2, 10, 40]), Character("3", 0.9, [12, 2, 30, 40])])])

    monkeypatch.setattr(server_app, "read_page", reader)
    predictor = load_predictor(threads=1)
    client = TestClient(server_app.create_app(predictor))
    answer = client.post("/api/page?digits_only=1", content=_png_of(Image.new("L", (64, 48), 200)),
                         headers={"content-type": "image/png"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"width": 64, "height": 48, "fields": [
        {"text": "-3", "confidence": 0.5, "box": [1, 2, 30, 40], "characters": [
            {"char": "-", "confidence": 0.6, "box": [1, 2, 10, 40]},
            {"char": "3", "confidence": 0.9, "box": [12, 2, 30, 40]}]}]}
    assert seen == {"size": (64, 48), "line_model": predictor.line_model, "digits_only": True}


@pytest.mark.parametrize("value, on", [("1", True), ("TRUE", True), ("true", True), ("0", False), ("False", False)])
def test_a_query_switch_takes_any_case(value, on):
    from digitrec.serving.app import _switch

    assert _switch(value, "digits_only") is on


@pytest.mark.parametrize("value", ["yes", "\x00", "a b", "2"])
def test_a_query_switch_that_is_no_switch_is_a_422_naming_it(server, value):
    """A typo was taken for "off": ?digits_only=yes answered with the signs left in."""
    with open("docs/number-2026.jpg", "rb") as f:
        picture = f.read()
    for route in ("/api/read", "/api/page"):
        answer = httpx.post(f"{server}{route}", params={"digits_only": value}, content=picture,
                            headers={"content-type": "image/jpeg"}, timeout=30)
        assert answer.status_code == 422, (route, answer.text)
        assert "digits_only" in answer.json()["error"]
