"""The server against other web pages, blocking work, malformed requests and a full disk; `tune` against
examples it cannot read. In-process (httpx, TestClient) but for one test in a real Chromium."""

import asyncio
import base64
import contextlib
import errno
import io
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from digitrec.cli import main
from digitrec.data import synthetic
from digitrec.data.formats import iter_image_files
from digitrec.inference.engine import load_predictor
from digitrec.serving import app as server_app
from digitrec.serving import corrections
from digitrec.serving.corrections import INPUTS, LOG, Collector


@pytest.fixture(scope="module")
def predictor():
    return load_predictor(threads=1)


def _png(digit: int = 3) -> bytes:
    buffer = io.BytesIO()
    synthetic.hand_digit("backhand", digit, np.random.default_rng(digit), size=112).save(buffer, format="PNG")
    return buffer.getvalue()


def _kept(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.png")) if folder.exists() else []


# ---------------------------------------------------------------- requests from other web pages


@pytest.fixture
def collecting(predictor, tmp_path):
    def make(origins=()):
        app = server_app.create_app(predictor, ("localhost", "127.0.0.1"), Collector(tmp_path / "kept"), origins)
        return TestClient(app, base_url="http://127.0.0.1:8000"), tmp_path / "kept"
    return make


def _correct(client, headers):
    return client.post("/api/correct", files={"file": ("x.png", _png(7), "image/png")}, data={"label": "1"},
                       headers=headers)


@pytest.mark.parametrize("headers", [
    {"origin": "http://evil.example"},
    {"origin": "http://localhost:8000"},  # the same server under another name is another origin
    {"origin": "http://127.0.0.1:9999", "sec-fetch-site": "same-site"},  # another port of the same host
    {"sec-fetch-site": "cross-site"},
    {"sec-fetch-site": "same-site"},
    {"origin": "null"},  # a sandboxed frame, a file:// page
    {"origin": "http://127.0.0.1:8000", "sec-fetch-site": "cross-site"},
])
def test_a_page_of_another_origin_cannot_store_examples(collecting, headers):
    client, kept = collecting()
    refused = _correct(client, headers)
    assert refused.status_code == 403 and "another site" in refused.json()["error"]
    assert _kept(kept) == []


@pytest.mark.parametrize("headers", [
    {},  # curl, a script: no browser, no page
    {"origin": "http://127.0.0.1:8000", "sec-fetch-site": "same-origin"},  # the server's own page
    {"origin": "http://127.0.0.1:8000"},
    {"sec-fetch-site": "none"},
])
def test_the_own_page_and_scripts_still_store_examples(collecting, headers):
    client, kept = collecting()
    answer = _correct(client, headers)
    assert answer.status_code == 200, answer.text
    assert len(_kept(kept)) == 2  # the picture and the 28x28 the model saw


def test_the_default_port_is_the_same_origin(predictor):
    client = TestClient(server_app.create_app(predictor, ("localhost",)), base_url="http://localhost:80")
    response = client.post("/api/predict", content=_png(), headers={"content-type": "image/png",
                                                                    "origin": "http://localhost"})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("path", ["/api/predict", "/api/read"])
def test_reading_endpoints_refuse_another_origin_and_answer_scripts(predictor, path):
    client = TestClient(server_app.create_app(predictor))
    send = {"content": _png(), "headers": {"content-type": "image/png"}}
    refused = client.post(path, **{**send, "headers": {**send["headers"], "origin": "http://evil.example"}})
    assert refused.status_code == 403 and "error" in refused.json()
    assert client.post(path, **send).status_code == 200
    # what costs nothing stays open to any page
    assert client.get("/api/health", headers={"origin": "http://evil.example"}).status_code == 200


@pytest.mark.parametrize("fields", [{"label": "x", "text": "12"}, {"label": "12"}, {"text": "1a"}, {"label": ""},
                                    {"text": "1" * 33}, {"confirmed": "1"}])
def test_a_correction_that_does_not_say_one_digit_or_digits_is_a_422(collecting, fields):
    client, kept = collecting()
    response = client.post("/api/correct", files={"file": ("x.png", _png(7), "image/png")}, data=fields)
    assert response.status_code == 422, response.text
    assert response.json() == {"error": "say what it shows: 'label', one digit 0-9, or 'text', 1-32 digits"}
    assert _kept(kept) == []


def test_allow_origin_lets_one_page_post_and_read_the_answer(collecting):
    client, kept = collecting(origins=("http://localhost:3000",))
    answer = _correct(client, {"origin": "http://localhost:3000", "sec-fetch-site": "same-site"})
    assert answer.status_code == 200 and answer.headers["access-control-allow-origin"] == "http://localhost:3000"
    preflight = client.options("/api/predict", headers={"origin": "http://localhost:3000",
                                                        "access-control-request-method": "POST",
                                                        "access-control-request-headers": "content-type"})
    assert preflight.status_code == 200 and "POST" in preflight.headers["access-control-allow-methods"]
    other = client.options("/api/predict", headers={"origin": "http://evil.example",
                                                    "access-control-request-method": "POST"})
    assert other.status_code == 403 and "error" in other.json()
    assert _correct(client, {"origin": "http://evil.example"}).status_code == 403
    assert len(_kept(kept)) == 2


@pytest.mark.parametrize("value", ["evil", "http://a.example/path", "ftp://a.example", "http://a.example:99999",
                                   "null", "http://user@a.example"])
def test_serve_refuses_an_origin_that_is_not_one(value, capsys):
    assert main(["serve", "--allow-origin", value, "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert "--allow-origin" in err and len(err.strip().splitlines()) == 1


# ---------------------------------------------------------------- decoding off the event loop


def test_decoding_runs_in_threads_a_few_at_a_time_and_health_answers(predictor, monkeypatch):
    """Decoding a picture blocks; done on the event loop it kept /api/health waiting for every upload."""
    real, running, most = server_app.open_image, [0], [0]
    lock = threading.Lock()

    def slow_open(payload, max_pixels):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.4)
        with lock:
            running[0] -= 1
        return real(payload, max_pixels)

    monkeypatch.setattr(server_app, "open_image", slow_open)
    app = server_app.create_app(predictor)
    big = io.BytesIO()
    Image.new("L", (1500, 1500), 255).save(big, format="PNG")  # over LARGE_PIXELS: the one-at-a-time path

    async def scenario():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=60) as client:
            uploads = [asyncio.create_task(client.post("/api/predict", content=payload,
                                                       headers={"content-type": "image/png"}))
                       for payload in [_png(d) for d in range(8)] + [big.getvalue()]]
            await asyncio.sleep(0.1)
            started = time.perf_counter()
            health = await client.get("/api/health")
            waited = time.perf_counter() - started
            answers = await asyncio.gather(*uploads)
        return health, waited, answers

    health, waited, answers = asyncio.run(scenario())
    assert health.status_code == 200 and waited < 0.3, waited
    assert [a.status_code for a in answers] == [200] * 8 + [422]  # the large one is blank paper
    assert 2 <= most[0] <= server_app.DECODE_SLOTS + 1  # small ones in parallel, bounded; the large one beside


def test_an_upload_that_never_comes_never_reaches_the_framework(predictor, monkeypatch):
    """Idle uploads cost only the check in front of FastAPI: 20,000 of them that reconnect kept /api/health
    waiting for seconds while each went through Starlette's middleware and FastAPI's routing."""
    from fastapi import FastAPI

    entered, real = [], FastAPI.__call__

    async def counting(self, scope, receive, send):
        entered.append(scope["type"])
        await real(self, scope, receive, send)

    monkeypatch.setattr(FastAPI, "__call__", counting)
    monkeypatch.setattr(server_app, "BODY_SECONDS", 0.2)
    app = server_app.create_app(predictor)

    def upload(then: dict):
        messages = iter([{"type": "http.request", "body": b"\x89PNG", "more_body": True}, then])

        async def receive():
            message = next(messages, None)
            if message is None:
                await asyncio.sleep(3600)
            return message

        sent = []

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": "/api/predict", "raw_path": b"/api/predict", "query_string": b"",
                 "root_path": "", "headers": [(b"host", b"test"), (b"content-type", b"image/png")],
                 "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
        asyncio.run(app(scope, receive, send))
        return sent

    silent = upload(None)
    assert silent[0]["status"] == 408 and b"took over" in silent[1]["body"]
    assert upload({"type": "http.disconnect"}) == []  # a client gone is not answered
    assert entered == []


def test_a_picture_whose_size_the_header_does_not_tell_is_read_one_at_a_time():
    ico = io.BytesIO()
    Image.new("RGBA", (64, 64), (0, 0, 0, 255)).save(ico, format="ICO")
    assert server_app._large(ico.getvalue()) and server_app._large(b"not a picture")
    assert not server_app._large(_png())


# ---------------------------------------------------------------- malformed requests


@pytest.mark.parametrize("url, status", [
    ("data:xyz", 400), ("data:", 400), ("data:image/png", 400), ("data:image/png,iVBORw0KGgo", 400),
    ("data:image/png;charset=x,abc", 400), ("data:;base64,", 400), ("data:image/png;base64,", 400),
    ("data:image/png;base64,!!!!", 422), ("data:image/png;base64,é", 422), ("data:image/png;base64,AAAA", 400),
    ("data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 40).decode(), 400),
    ("data:,,,,", 400), ("data:\x00;base64,AA==", 400),
])
def test_malformed_data_urls_are_a_json_4xx(predictor, url, status):
    client = TestClient(server_app.create_app(predictor), raise_server_exceptions=False)
    response = client.post("/api/read", json={"image": url})
    assert response.status_code == status, response.text
    assert set(response.json()) == {"error"}


def test_a_data_url_of_a_picture_is_read(predictor):
    client = TestClient(server_app.create_app(predictor))
    url = "data:image/png;base64," + base64.b64encode(_png(4)).decode()
    assert client.post("/api/read", json={"image": url}).json()["text"] == "4"


def _uvicorn(protocol: str):
    """A uvicorn server with `protocol` and a trivial app, in a thread on a free loopback port."""
    import uvicorn

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, http=protocol, log_level="critical",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    return server, thread, port


def _exchange(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(request)
        answer = b""
        while chunk := s.recv(4096):
            answer += chunk
    return answer


PROTOCOLS = ["digitrec.serving.app:JsonHttpToolsProtocol", "digitrec.serving.app:JsonH11Protocol"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_malformed_http_gets_a_json_400(protocol):
    server, thread, port = _uvicorn(protocol)
    try:
        for request in (b"NOT HTTP AT ALL\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\nbad header\r\n\r\n",
                        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"):
            head, _, body = _exchange(port, request).partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 400") and b"content-type: application/json" in head.lower(), head
            assert "malformed HTTP request" in json.loads(body)["error"]
        assert _exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").startswith(b"HTTP/1.1 200")
    finally:
        server.should_exit = True
        thread.join(10)


def _closed_after(port: int, send: bytes) -> float:
    """Seconds until the server closes a connection that sent `send` and then nothing."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(send)
        started = time.monotonic()
        while s.recv(4096):
            pass
        return time.monotonic() - started


def test_a_connection_whose_headers_never_come_is_closed(monkeypatch):
    """uvicorn alone holds a connection that sends nothing, or its headers a byte at a time, forever."""
    monkeypatch.setattr(server_app, "HEADER_SECONDS", 0.5)
    server, thread, port = _uvicorn("digitrec.serving.app:JsonHttpToolsProtocol")
    try:
        assert _closed_after(port, b"") < 3
        assert _closed_after(port, b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: a") < 3
        # a kept-alive connection whose next request stalls in its headers
        assert _closed_after(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHo") < 3
        assert _exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").startswith(
            b"HTTP/1.1 200")
    finally:
        server.should_exit = True
        thread.join(10)


def test_serve_runs_the_json_protocol(monkeypatch):
    import uvicorn

    for name in ("SERVE_MODEL_ENV", "SERVE_HOSTS_ENV", "SERVE_ORIGINS_ENV", "SERVE_COLLECT_ENV"):
        name = getattr(server_app, name)
        monkeypatch.setenv(name, "")  # restored after the test
    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: seen.update(k))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert main(["serve", "--port", str(port), "--workers", "1", "--allow-origin", "http://localhost:3000/"]) == 0
    assert seen["http"] == "digitrec.serving.app:JsonHttpToolsProtocol"
    assert os.environ[server_app.SERVE_ORIGINS_ENV] == "http://localhost:3000"


@pytest.fixture
def no_server(monkeypatch):
    """uvicorn.run made to fail: a check that lets a bad address through fails the test, never hangs it."""
    import uvicorn

    def refuse(*args, **kwargs):
        raise AssertionError("uvicorn.run was reached")

    monkeypatch.setattr(uvicorn, "run", refuse)


@pytest.mark.parametrize("args, message", [
    (["--port", "99999"], "--port 99999 (expected a port number 1-65535)"),
    (["--port", "-5"], "--port -5"),
    (["--workers", "0"], "--workers 0"),
    (["--host", "host.invalid"], "cannot listen on host.invalid"),
])
def test_serve_refuses_a_bad_address_in_one_line(args, message, capsys, no_server):
    assert main(["serve", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_serve_refuses_a_port_in_use_in_one_line(capsys, no_server):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert main(["serve", "--port", str(taken.getsockname()[1])]) == 2
    err = capsys.readouterr().err
    assert "cannot listen on 127.0.0.1" in err and "in use" in err and len(err.strip().splitlines()) == 1


# ---------------------------------------------------------------- a full disk


def _no_room_for_the_28x28(kept: Path) -> None:
    (kept / INPUTS).mkdir()
    (kept / INPUTS / "5").write_text("a file where the folder would go: the second write fails")


@pytest.mark.parametrize("block", [_no_room_for_the_28x28, lambda kept: (kept / LOG).mkdir()],
                         ids=["second-picture", "log"])
def test_an_example_that_cannot_be_kept_whole_is_not_kept_at_all(predictor, tmp_path, block):
    kept = tmp_path / "kept"
    client = TestClient(server_app.create_app(predictor, collector=Collector(kept)))
    (kept / "5").mkdir()
    (kept / "5" / "mine.png").write_bytes(b"the user's own file")
    block(kept)
    response = client.post("/api/correct", files={"file": ("x.png", _png(5), "image/png")}, data={"label": "5"})
    assert response.status_code == 507 and "could not keep the example" in response.json()["error"]
    assert sorted(p.name for p in (kept / "5").iterdir()) == ["mine.png"]
    assert not (kept / INPUTS / "5").is_dir() or not any((kept / INPUTS / "5").iterdir())
    assert not (kept / LOG).is_file() or (kept / LOG).read_text() == ""


def test_a_log_line_cut_short_by_a_full_disk_is_cut_back_off(tmp_path, monkeypatch):
    log = tmp_path / "log.csv"
    log.write_text("a,1\n")
    real = os.write

    def half(fd, data):
        real(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(corrections.os, "write", half)
    with pytest.raises(OSError):
        corrections._append_line(log, "b/c.png,2,corrected,7\n")
    assert log.read_text() == "a,1\n"
    monkeypatch.setattr(corrections.os, "write", lambda fd, data: real(fd, data[:3]))
    with pytest.raises(OSError):
        corrections._append_line(log, "b/c.png,2,corrected,7\n")
    assert log.read_text() == "a,1\n"


def test_a_failed_tune_is_said_on_the_servers_stderr(tmp_path, capsys):
    collector = Collector(tmp_path / "kept", tune_every=1)
    (tmp_path / "kept" / corrections.TUNED).mkdir()
    fail = [sys.executable, "-c", "import sys; print('warning: skipped 3/x.png: empty file', file=sys.stderr); "
                             "print('digitrec: error: no example left', file=sys.stderr); sys.exit(2)"]
    lock = corrections._try_lock(tmp_path / "kept" / corrections.TUNED / corrections.LOCK)
    collector._tune(fail, tmp_path / "kept" / corrections.TUNED / "run", 1, lock)
    err = capsys.readouterr().err
    assert "skipped 3/x.png" in err and "no example left" in err and "failed (exit 2)" in err
    assert "no example left" in (tmp_path / "kept" / corrections.TUNED / "tune.log").read_text()
    assert collector.current_model() is None


# ---------------------------------------------------------------- tune and examples it cannot read


def _hand(folder: Path, digits=range(10), k=2) -> Path:
    rng = np.random.default_rng(0)
    for d in digits:
        (folder / str(d)).mkdir(parents=True, exist_ok=True)
        for n in range(k):
            synthetic.hand_digit("backhand", d, rng, size=112).save(folder / str(d) / f"{n}.png")
    return folder


def _tune(examples: Path, out: Path, replay_dir: Path) -> int:
    return main(["tune", "--data", str(examples), "--out", str(out), "--replay", str(replay_dir), "--steps", "3",
                 "--quiet"])


def test_tune_skips_examples_it_cannot_read_and_names_each(tmp_path, replay_dir, capsys):
    examples = _hand(tmp_path / "mine")
    (examples / "3" / "broken.png").write_bytes(b"\x89PNG not really")
    (examples / "3" / "empty.png").write_bytes(b"")
    Image.new("L", (80, 80), 255).save(examples / "4" / "blank.png")  # preprocessing finds no digit
    Image.new("L", (80, 80), 0).save(examples / "5" / "blot.png")
    (examples / "6" / "eio.png").symlink_to("/proc/self/mem")  # reading it is an I/O error
    synthetic.hand_digit("quick", 2, np.random.default_rng(1), 60).save(examples / "stray.png")
    before = {p: p.read_bytes() for p in examples.rglob("*") if p.is_file() and not p.is_symlink()}
    assert _tune(examples, tmp_path / "out", replay_dir) == 0
    out, err = capsys.readouterr()
    assert "tuned on 20 examples" in out and "Traceback" not in err
    for name in ("3/broken.png", "3/empty.png", "4/blank.png", "5/blot.png", "6/eio.png", "stray.png"):
        assert f"warning: skipped {examples / name}:" in err, name
    assert "picture outside a digit's folder" in err
    assert {p: p.read_bytes() for p in before} == before


def test_tune_refuses_when_a_digit_is_left_with_no_example(tmp_path, replay_dir, capsys):
    examples = _hand(tmp_path / "mine", digits=[1, 2])
    (examples / "7").mkdir()
    (examples / "7" / "only.png").write_bytes(b"not a picture")
    assert _tune(examples, tmp_path / "out", replay_dir) == 2
    err = capsys.readouterr().err
    assert "only.png: no example of 7 left to tune on" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_tune_reads_a_collect_folder_with_a_stray_picture(tmp_path, replay_dir, predictor, capsys):
    kept = tmp_path / "kept"
    client = TestClient(server_app.create_app(predictor, collector=Collector(kept)))
    for d in (1, 4):
        assert client.post("/api/correct", files={"file": ("x.png", _png(d), "image/png")},
                           data={"label": str(d)}).status_code == 200
    (kept / "notes.jpg").write_bytes(b"a file that is no picture")
    assert [p.name for p in iter_image_files(kept)][-1] == "notes.jpg"
    assert _tune(kept, tmp_path / "out", replay_dir) == 0
    assert f"warning: skipped {kept / 'notes.jpg'}" in capsys.readouterr().err


# ---------------------------------------------------------------- in a real browser

POST_CORRECTION = """async ([target, png]) => {
  const bytes = Uint8Array.from(atob(png), (c) => c.charCodeAt(0));
  const form = new FormData();
  form.append("file", new Blob([bytes], { type: "image/png" }), "x.png");
  form.append("label", "1");
  try { return (await fetch(target, { method: "POST", body: form })).status; }
  catch (e) { return "refused"; }  // no CORS header on the 403: the page may not even read it
}"""


@contextlib.contextmanager
def _another_site():
    """A page on another loopback port: what any web site a visitor opens could serve."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Page(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the standard library's name)
            body = b"<!doctype html><title>another site</title>"
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.browser
def test_chromium_on_another_site_cannot_store_examples_the_own_page_can(tmp_path):
    from server import running_server
    from test_web import CHROMIUM, CHROMIUM_ARGS

    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not found (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    kept, png = tmp_path / "kept", base64.b64encode(_png(7)).decode()
    with running_server("--workers", "1", "--collect", str(kept)) as url, _another_site() as other, \
            sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(other)
            port = url.rsplit(":", 1)[1]
            for target in (f"{url}/api/correct", f"http://localhost:{port}/api/correct"):  # cross-, same-site
                assert page.evaluate(POST_CORRECTION, [target, png]) == "refused"
            assert _kept(kept) == []
            page.goto(url)
            assert page.evaluate(POST_CORRECTION, ["/api/correct", png]) == 200
            assert len(_kept(kept)) == 2
        finally:
            browser.close()
