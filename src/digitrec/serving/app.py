"""`digitrec serve`: the drawing page and the JSON API, over the same Predictor and preprocessing."""

from __future__ import annotations

import asyncio
import base64
import binascii
import concurrent.futures
import contextlib
import functools
import io
import json
import os
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Annotated

import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from PIL import Image
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect
from swagger_ui_bundle import swagger_ui_path

from digitrec.core import settings
from digitrec.core.constants import IMAGE_FORMATS, UNSURE_BELOW
from digitrec.core.errors import BlankImageError, DigitrecError, NoDigitError, TooLargeError
from digitrec.core.version import __version__
from digitrec.data import resolve_data_path
from digitrec.imaging.decode import MAX_IMAGE_PIXELS, open_image
from digitrec.imaging.fit import to_mnist
from digitrec.inference.engine import OnnxPredictor, Predictor, load_predictor
from digitrec.reading.page import open_page, read_page
from digitrec.serving.corrections import Collector
from digitrec.serving.schemas import (
    ApiError,
    CorrectionAnswer,
    CorrectionFields,
    DigitAnswer,
    ErrorAnswer,
    ImageBody,
    NumberAnswer,
    PageAnswer,
    PixelsBody,
    parse_fields,
    parse_json,
    request_body,
    with_request_schemas,
)

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
SMALL_JSON_BYTES = 64 * 1024  # a 28x28 of pixels is 3-20 KB; a larger JSON body is parsed in a thread
DECODE_SLOTS = 4  # small pictures decoded at once in each worker process, each in its own thread
BATCH_WAIT_S = 0.004  # the longest a decoded picture waits for others being decoded to join its batch
BATCH_FULL = 16  # ... and it waits no longer once this many are waiting
MAX_HEADER_BYTES = 16 * 1024  # a browser sends under 2 KB
BODY_SECONDS = settings.body_seconds()  # the longest an upload may take to arrive
HEADER_SECONDS = settings.header_seconds()  # ... and a request's headers
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]", "::1")
WEB_DIR = Path(str(resources.files("digitrec.serving") / "web"))
STATUS_BY_KIND = {DigitrecError.kind: 400, BlankImageError.kind: 422, NoDigitError.kind: 422, TooLargeError.kind: 413}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refused once it passes `limit` bytes (without reading the rest) or takes longer
    than BODY_SECONDS to arrive (a client sending a byte a second holds a connection for nothing)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"upload is {int(declared):,} bytes; the limit is {limit:,} bytes")
    chunks, size = [], 0
    try:
        async with asyncio.timeout(BODY_SECONDS):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise ApiError(413, f"upload is over the limit of {limit:,} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise ApiError(408, f"the upload took over {BODY_SECONDS} s") from None
    except ClientDisconnect:  # the client went away mid-upload: nothing to answer, nothing to log
        raise ApiError(400, "the client closed the connection during the upload") from None
    return b"".join(chunks)


async def _receive_body(scope, receive) -> bytes | None:
    """A request's body straight from the ASGI server, under the same limits as `_read_body`; None when the
    client went away."""
    declared = next((v for k, v in scope["headers"] if k == b"content-length"), b"")
    if declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES:
        raise ApiError(413, f"upload is {int(declared):,} bytes; the limit is {MAX_UPLOAD_BYTES:,} bytes")
    chunks, size = [], 0
    try:
        async with asyncio.timeout(BODY_SECONDS):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return None
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > MAX_UPLOAD_BYTES:
                    raise ApiError(413, f"upload is over the limit of {MAX_UPLOAD_BYTES:,} bytes")
                chunks.append(chunk)
                if not message.get("more_body", False):
                    return b"".join(chunks)
    except TimeoutError:
        raise ApiError(408, f"the upload took over {BODY_SECONDS} s") from None


async def _upload(request: Request, json_field: str) -> tuple[str, bytes]:
    """The request's content type and body, refused unless it is multipart, an image or JSON, and not empty."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in ("multipart/form-data", "application/json") and not content_type.startswith("image/"):
        raise ApiError(415, f"unsupported content type '{content_type or 'none'}': send multipart/form-data "
                            f"with a 'file' field, an image/* body, or application/json with '{json_field}'")
    body = await _read_body(request, MAX_UPLOAD_BYTES)
    if not body:
        raise ApiError(400, "empty request body")
    return content_type, body


async def _multipart(request: Request, body: bytes) -> tuple[bytes, dict[str, str]]:
    """A multipart body's `file` field and its text fields."""
    async def stream():
        yield body

    try:
        form = await MultiPartParser(request.headers, stream(), max_part_size=MAX_UPLOAD_BYTES).parse()
    except MultiPartException as e:
        raise ApiError(400, f"malformed multipart body: {e.message}") from None
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise ApiError(400, "multipart body has no file field 'file'")
    return await upload.read(), {k: v for k, v in form.items() if isinstance(v, str)}


async def _picture_upload(request: Request) -> tuple[str, bytes]:
    """/api/read's and /api/page's body: multipart (its `file` field), raw image bytes or JSON `{"image"}`;
    an empty upload is a 400."""
    content_type, body = await _upload(request, "image")
    if content_type == "multipart/form-data":
        body = await _file_from_multipart(request, body)
    if not body:
        raise ApiError(400, "the uploaded file is empty")
    return content_type, body


async def _file_from_multipart(request: Request, body: bytes) -> bytes:
    return (await _multipart(request, body))[0]


def pixels_from_json(body: bytes) -> np.ndarray:
    """`{"pixels": 28 rows of 28 numbers 0-255}` (PixelsBody), light ink on black, as a uint8 image."""
    pixels = np.asarray(parse_json(PixelsBody, body).pixels, dtype=np.float64)
    if pixels.max() < 32:
        raise ApiError(422, "the image is blank: nothing is drawn")
    return np.round(pixels).astype(np.uint8)


def base64_image_from_json(body: bytes) -> bytes:
    """`{"image": "<base64 PNG or JPEG>"}` (ImageBody; a data: URL prefix allowed) -> the picture's bytes."""
    text = parse_json(ImageBody, body).image
    if text.startswith("data:"):
        text = _data_url_payload(text)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(422, "'image' is not valid base64") from None


def _data_url_payload(url: str) -> str:
    """The base64 text of `data:[<type>][;params];base64,<text>`; anything else is a malformed request."""
    header, comma, text = url.partition(",")
    if not comma:
        raise ApiError(400, "'image' is a data: URL without its ',' and data "
                            "(expected data:image/png;base64,<base64>)")
    if header.lower().split(";")[-1].strip() != "base64":
        raise ApiError(400, "'image' is a data: URL that is not base64 (expected data:image/png;base64,<base64>)")
    return text


def digit_answer(predictor: Predictor | OnnxPredictor, image: np.ndarray | bytes) -> Response:
    """Decode (for picture bytes), preprocess and predict in one worker-thread hop."""
    if isinstance(image, bytes):
        image = image_from_bytes(image)
    return _digit_response(predictor, image, predictor.probabilities(image[None])[0])


class _Batcher:
    """Micro-batching: the pictures that requests arriving together have preprocessed are read by the
    network in one call. A request adds its 28x28 and waits. The read is scheduled for the end of the event
    loop's current turn when no other picture is being decoded (a request alone waits for nothing);
    while some are, for when the last of them is done, at most BATCH_WAIT_S later, or once a batch of
    BATCH_FULL is waiting. Decoded in threads, pictures come back one by one: without the wait the
    network was called once for every 1.3 requests under `hey -c 64` (one worker), with it once for every
    11.6; decoding on the event loop gave 17."""

    def __init__(self):
        self.pending: list[tuple[np.ndarray, asyncio.Future]] = []
        self.batches = self.requests = 0
        self.decoding = 0  # pictures in a decoding thread whose requests will join the next batch
        self.timer: asyncio.TimerHandle | None = None
        self.predictor = None

    @contextlib.contextmanager
    def decoding_one(self) -> Iterator[None]:
        self.decoding += 1
        try:
            yield
        finally:
            self.decoding -= 1
            if self.decoding == 0 and self.timer is not None:  # nothing more to wait for
                self._schedule(asyncio.get_running_loop(), now=True)

    async def probabilities(self, predictor, image: np.ndarray) -> np.ndarray:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.pending.append((image, future))
        self.predictor = predictor
        if len(self.pending) == 1 or len(self.pending) >= BATCH_FULL:
            self._schedule(loop, now=not self.decoding or len(self.pending) >= BATCH_FULL)
        return await future

    def _schedule(self, loop, now: bool) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = loop.call_soon(self._read) if now else loop.call_later(BATCH_WAIT_S, self._read)

    def _read(self) -> None:
        self.timer = None
        batch, self.pending, predictor = self.pending, [], self.predictor
        if not batch:
            return
        self.batches, self.requests = self.batches + 1, self.requests + len(batch)
        try:
            probabilities = predictor.probabilities(np.stack([image for image, _ in batch]))
        except DigitrecError as e:  # a model answering NaN: every request of the batch is told
            for _, future in batch:
                future.set_exception(ApiError(503, str(e)))
            return
        for (_, future), p in zip(batch, probabilities, strict=True):
            if not future.done():  # a client that went away cancelled its own
                future.set_result(p)


def _digit_response(predictor, image: np.ndarray, probs: np.ndarray) -> Response:
    answer = {
        "digit": int(probs.argmax()),
        "confidence": float(probs.max()),
        "unsure": bool(probs.max() < UNSURE_BELOW),
        "probabilities": [float(p) for p in probs],
        "model": predictor.name,
        "input": image.tolist(),
    }
    # Serialised here rather than by FastAPI's encoder: a third of the request time otherwise.
    return Response(json.dumps(answer), media_type="application/json")


LARGE_PIXELS = 2_000_000


def _large(payload: bytes) -> bool:
    """Whether a picture may decode to over LARGE_PIXELS, from its header alone (no pixels decoded): true
    also for one of a format digitrec does not read (an ICO wraps a whole PNG, which Pillow decodes when it
    opens it) or whose size Pillow cannot tell: refused later, one at a time, with its reason."""
    try:
        with Image.open(io.BytesIO(payload), formats=IMAGE_FORMATS) as image:
            width, height = image.size
    except Exception:
        return True
    return width * height > LARGE_PIXELS


_decoders: concurrent.futures.ThreadPoolExecutor | None = None


async def _decoded(work: Callable, payload: bytes):
    """`work(payload)` in one of this process's DECODE_SLOTS decoding threads (the rest wait their turn).
    A pool of its own rather than Starlette's run_in_threadpool: 0.07 ms less CPU a request under load.
    Measured, one worker under `hey -c 64`, on a loaded 2-core host: 1.52-1.62 ms of server CPU a request
    decoding on the event loop, 1.70-1.74 ms in these threads."""
    global _decoders
    if _decoders is None:
        _decoders = concurrent.futures.ThreadPoolExecutor(DECODE_SLOTS, thread_name_prefix="digitrec-decode")
    return await asyncio.get_running_loop().run_in_executor(_decoders, work, payload)


def small_input(payload: bytes) -> np.ndarray | None:
    """The 28x28 of a picture of at most LARGE_PIXELS; None, without decoding it, for any other."""
    return None if _large(payload) else image_from_bytes(payload)


def _refused(e: DigitrecError) -> ApiError:
    """The HTTP error for a picture that could not be read. Raised by the caller outside its `except`
    block: an exception raised inside one keeps the first as its context, and that one's traceback
    keeps every frame's pictures (a 40-megapixel one is 160 MB) alive until the garbage collector runs."""
    return ApiError(STATUS_BY_KIND.get(e.kind, 400), str(e))


def reading_from_upload(predictor, content_type: str, body: bytes, with_inputs: bool = False,
                        digits_only: bool = False) -> dict:
    """/api/read's work, all of it in a worker thread: a JSON body's base64 decoded, then the picture read."""
    return reading_from_bytes(predictor, _picture_bytes(content_type, body), with_inputs, digits_only)


def _picture_bytes(content_type: str, body: bytes) -> bytes:
    """An upload's picture file: a JSON body's base64 decoded, any other body as it is; empty is a 400."""
    payload = base64_image_from_json(body) if content_type == "application/json" else body
    if not payload:
        raise ApiError(400, "the uploaded file is empty")
    return payload


def reading_from_bytes(predictor, payload: bytes, with_inputs: bool = False, digits_only: bool = False) -> dict:
    error = None
    try:
        reading = predictor.read(open_image(payload, MAX_IMAGE_PIXELS), digits_only=digits_only)
    except DigitrecError as e:
        error = _refused(e)
    if error:
        raise error
    answer = reading.as_dict()
    if with_inputs:  # the 28x28 each digit was read from, for the page
        answer["inputs"] = reading.crops.tolist()
    return answer


def _switch(value: str, name: str) -> bool:
    """A query switch: 1/true on, 0/false/empty off (any case); anything else a 422 naming it, so a typo
    is not taken for "off"."""
    word = value.strip().lower()
    if word in ("", "0", "false"):
        return False
    if word in ("1", "true"):
        return True
    raise ApiError(422, f"?{name}={value[:40]!r} is not a switch (expected 1, true, 0 or false)")


def page_from_upload(predictor, content_type: str, body: bytes, digits_only: bool = False) -> dict:
    """/api/page's work, in a worker thread: every field on the page (`reading.page.read_page`); a blank page
    has none. The limits of /api/read: MAX_UPLOAD_BYTES, MAX_IMAGE_PIXELS to decode, the page reader's own."""
    payload = _picture_bytes(content_type, body)
    error = None
    try:
        page = read_page(open_page(payload, MAX_IMAGE_PIXELS), predictor, predictor.line_model, digits_only)
    except DigitrecError as e:
        error = _refused(e)
    if error:
        raise error
    return page.as_dict()


def image_from_bytes(payload: bytes) -> np.ndarray:
    error = None
    try:
        return to_mnist(open_image(payload, MAX_IMAGE_PIXELS))
    except DigitrecError as e:
        error = _refused(e)
    raise error


class _RequestCheck:
    """Checks of every request's headers, as plain ASGI ahead of the framework: Starlette's `@app.middleware`
    runs every request through a task group and memory streams, which cost 0.7 ms of CPU for each
    connection that merely opens an upload; 20,000 of them then kept /api/health waiting for seconds.

    - header size (MAX_HEADER_BYTES);
    - Host: only this server's names (`allowed_hosts`; None answers any, for tests in-process), so a web page
      elsewhere cannot reach a server on loopback by pointing its own domain at 127.0.0.1 (DNS rebinding);
    - the site a browser says a request comes from: a POST to the API from a page of another origin (its
      `Origin`, or `Sec-Fetch-Site: cross-site | same-site`) is refused unless `allowed_origins` names it, so
      no other page can store examples (`/api/correct`) or spend the server's CPU through a visitor's
      browser. A request with neither header (curl, a script) is no browser's and passes."""

    def __init__(self, app, allowed_hosts: tuple[str, ...] | None, allowed_origins: tuple[str, ...] = ()):
        self.app = app
        self.allowed = allowed_hosts
        self.origins = frozenset(allowed_origins)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            refusal = self._refusal(scope)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
            if scope["method"] in UPLOAD_METHODS and scope["path"].startswith("/api/"):
                await self._after_body(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _after_body(self, scope, receive, send) -> None:
        """The framework called only once the whole body is in: an upload that never comes (a connection
        that sends headers, then nothing) costs this loop, not Starlette's middleware, FastAPI's routing and
        its exception handling when the client goes. Measured with `_GatedApp`, one worker, 5,000 such
        connections opened then reset: 340 -> 115 us of CPU each to arrive, 80 -> 25 us to be cut; uvicorn
        alone, with an app that only awaits the body, takes 80 and 20. The same limits as `_read_body`:
        MAX_UPLOAD_BYTES, BODY_SECONDS; a client gone is not answered."""
        try:
            body = await _receive_body(scope, receive)
        except ApiError as e:
            await _error(e.status, e.message)(scope, receive, send)
            return
        if body is None:
            return
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    def _refusal(self, scope) -> JSONResponse | None:
        headers = scope["headers"]
        if sum(len(k) + len(v) for k, v in headers) > MAX_HEADER_BYTES:
            return _error(431, f"request headers are over {MAX_HEADER_BYTES:,} bytes")
        host = next((v for k, v in headers if k == b"host"), b"").decode("latin-1")
        if self.allowed is not None:
            name = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
            if name.lower() not in self.allowed:
                return _error(400, f"host '{host}' is not served here (expected one of {', '.join(self.allowed)}; "
                                   f"serve --allowed-host NAME adds one)")
        if scope["method"] in ("GET", "HEAD") or not scope["path"].startswith("/api/"):
            return None  # reading the page or the model's description costs nothing and changes nothing
        return self._foreign_origin(scope, headers, host)

    def _foreign_origin(self, scope, headers, host: str) -> JSONResponse | None:
        origin = site = None
        for k, v in headers:
            if k == b"origin":
                origin = v.decode("latin-1")
            elif k == b"sec-fetch-site":
                site = v.decode("latin-1").strip().lower()
        if origin is None and site is None:
            return None
        if scope["method"] == "OPTIONS" and origin is not None and normal_origin(origin) in self.origins:
            return None  # a browser's preflight for an allowed origin: answered by the CORS middleware
        own = normal_origin(f"{scope.get('scheme', 'http')}://{host}")
        if origin is None:
            foreign = site in ("cross-site", "same-site")
        else:
            foreign = normal_origin(origin) != own or site == "cross-site"
        if not foreign or (origin is not None and normal_origin(origin) in self.origins):
            return None
        return _error(403, f"requests from another site ({origin or site}) are refused: this API answers only "
                           f"its own page ({own}); serve --allow-origin ORIGIN allows another")


DEFAULT_PORTS = {"http": ":80", "https": ":443"}
UPLOAD_METHODS = ("POST", "PUT", "PATCH")


def normal_origin(origin: str) -> str:
    """An origin as compared: lower case, without the scheme's default port (a Host header may name it)."""
    origin = origin.strip().lower().rstrip("/")
    scheme = origin.split("://", 1)[0]
    port = DEFAULT_PORTS.get(scheme)
    return origin[: -len(port)] if port and origin.endswith(port) else origin


def origin_argument(value: str) -> str:
    """`serve --allow-origin VALUE` checked: scheme, host and port only, as a browser sends `Origin`."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value.strip())
        parts.port  # noqa: B018 (a port out of range raises here)
    except ValueError:
        parts = None
    if (parts is None or parts.scheme not in ("http", "https") or not parts.hostname or parts.username
            or parts.password or parts.path not in ("", "/") or parts.query or parts.fragment):
        raise DigitrecError(f"--allow-origin {value}", expected="an origin as a browser sends it: "
                            "http://HOST[:PORT] or https://HOST[:PORT], no path")
    return normal_origin(f"{parts.scheme}://{parts.netloc}")


ERROR = {"model": ErrorAnswer}
REFUSALS = {400: ERROR, 408: ERROR, 413: ERROR, 415: ERROR, 422: ERROR}


def _openapi(app: FastAPI) -> dict:
    if app.openapi_schema is None:
        app.openapi_schema = with_request_schemas(FastAPI.openapi(app))
    return app.openapi_schema


class _GatedApp(FastAPI):
    """The app behind `_RequestCheck`, which runs before any of Starlette's own middleware: an upload that
    never comes costs the server about 50 us less of CPU than with the check added as middleware."""

    gate = None

    async def __call__(self, scope, receive, send) -> None:
        await self.gate(scope, receive, send)


def _answer_errors_as_json(app: FastAPI) -> None:
    """Every error, ours or the framework's, as `{"error": "..."}` with its status."""

    @app.exception_handler(ApiError)
    async def api_error(_request, exc: ApiError):
        return _error(exc.status, exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request, exc: StarletteHTTPException):
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request, exc: RequestValidationError):
        return _error(422, "; ".join(str(e.get("msg")) for e in exc.errors()) or "invalid request")


class _Served:
    """The model in service: the one given, or the latest run tuned on the collected examples, loaded
    before it is swapped in so that requests never wait for it or see half of it."""

    def __init__(self, predictor: Predictor | OnnxPredictor, collector: Collector | None):
        self.predictor, self.collector, self.tuned = predictor, collector, None

    def get(self) -> Predictor | OnnxPredictor:
        if self.collector is not None:
            tuned = self.collector.current_model()
            if tuned is not None and tuned != self.tuned:
                with contextlib.suppress(DigitrecError):  # a run that does not load leaves the one in service
                    self.predictor = load_predictor(tuned, threads=1)
                self.tuned = tuned
        return self.predictor


async def _correction_form(request: Request) -> tuple[bytes, dict[str, str]]:
    """The picture and the fields of a correction: multipart with `file` and `label` or `text`."""
    content_type, body = await _upload(request, "image")
    if content_type != "multipart/form-data":
        raise ApiError(415, "send multipart/form-data with a 'file' field and 'label' (a digit) or 'text' (digits)")
    return await _multipart(request, body)


def save_correction(predictor, collector: Collector, payload: bytes, fields: dict[str, str]) -> dict:
    """Read the picture as the model does, then keep it under the digit(s) the user says it shows: one
    digit (`label`), or a number (`text`) whose digits are kept one by one, each cut at its box."""
    said = parse_fields(CorrectionFields, fields)
    kind = "confirmed" if said.confirmed in ("1", "true") else "corrected"
    label, text = said.label, said.text
    try:
        picture = open_image(payload, MAX_IMAGE_PIXELS)
        if label:
            seen = to_mnist(picture)
            read_as = str(int(predictor.probabilities(seen[None])[0].argmax()))
            return collector.save(picture, seen, int(label), kind, read_as)
        reading = predictor.read(picture, digits_only=True)  # a correction keeps digits, one by one
    except DigitrecError as e:
        error = _refused(e)
    else:
        error = None
    if error:
        raise error
    if len(reading.digits) != len(text):
        raise ApiError(422, f"the picture was read as {len(reading.digits)} digits ('{reading.text}'), the "
                            f"correction has {len(text)}: draw the digits apart, or correct them one at a time")
    saved = None
    for digit, ch, seen in zip(reading.digits, text, reading.crops, strict=True):
        x0, y0, x1, y1 = digit.box
        pad = max(2, (y1 - y0) // 8)
        crop = picture.crop((max(0, x0 - pad), max(0, y0 - pad), x1 + pad, y1 + pad))
        saved = collector.save(crop, seen, int(ch), kind, str(digit.digit))
    return {**saved, "saved": len(text)}


def create_app(predictor: Predictor | OnnxPredictor, allowed_hosts: tuple[str, ...] | None = None,
               collector: Collector | None = None, allowed_origins: tuple[str, ...] = ()) -> FastAPI:
    """The app; `allowed_hosts`: the Host header names it answers (None: any, for tests in-process);
    `collector`: where corrections from the page are kept (None: the page shows no correction buttons
    and /api/correct is refused); `allowed_origins`: other sites' pages that may post to the API (its
    own page always may).

    Its routes are closures over the one predictor, all here so the API reads top to bottom in one
    place: that is why this function is longer than the rest."""
    app = _GatedApp(title="digitrec", version=__version__, description="Handwritten digit recognition",
                    docs_url=None, redoc_url=None)
    app.openapi = functools.partial(_openapi, app)
    # The packaged Swagger UI (4.x) renders OpenAPI 3.0 documents; this schema uses nothing of 3.1.
    app.openapi_version = "3.0.3"
    if allowed_origins:  # an allowed page may also read the answers (its preflights answered)
        app.add_middleware(CORSMiddleware, allow_origins=list(allowed_origins), allow_methods=["GET", "POST"],
                           allow_headers=["content-type"])
    app.gate = _RequestCheck(functools.partial(FastAPI.__call__, app), allowed_hosts, allowed_origins)
    served = _Served(predictor, collector)
    # Every decode runs in a worker thread, never on the event loop, which keeps answering /api/health and
    # reading other uploads (no false 408s). Work that may hold a large picture in memory (a picture over
    # LARGE_PIXELS or of unknown size, `read`, a correction) runs one request at a time per worker process;
    # small pictures DECODE_SLOTS at a time (`_decoded`). Memory stays bounded: one large picture and a few
    # small ones.
    heavy = asyncio.Semaphore(1)
    batcher = _Batcher()

    _answer_errors_as_json(app)

    @app.get("/api/health")
    async def health():
        return {"status": "ok"}

    @app.get("/api/model")
    async def model_info():
        current = served.get()
        return {"name": current.name, "architecture": current.config.arch, "parameters": current.config.parameters,
                "test_accuracy": current.config.test_accuracy, "version": __version__,
                "collect": collector is not None,
                # this worker's micro-batching so far: requests read by the network, in how many calls
                "batching": {"requests": batcher.requests, "batches": batcher.batches}}

    @app.post("/api/predict", responses={200: {"model": DigitAnswer}, **REFUSALS},
              openapi_extra=request_body(PixelsBody))
    async def predict(request: Request):
        """One digit: multipart with a `file` field (an image), raw image bytes, or JSON `{"pixels": 28x28 of
        0-255}`."""
        # The body is read here, not by the framework: its limits are checked as it arrives (_RequestCheck),
        # and a picture goes to the decoder as bytes.
        content_type, body = await _upload(request, "pixels")
        predictor = served.get()
        if content_type == "application/json":
            if len(body) <= SMALL_JSON_BYTES:  # a 28x28 of numbers parses in microseconds
                image = pixels_from_json(body)
            else:
                image = await _decoded(pixels_from_json, body)
        else:
            payload = await _file_from_multipart(request, body) if content_type == "multipart/form-data" else body
            if not payload:
                raise ApiError(400, "the uploaded file is empty")
            # A thread hop costs about 50 us beside the millisecond of decoding and preprocessing.
            with batcher.decoding_one():
                image = await _decoded(small_input, payload)
            if image is None:
                async with heavy:
                    return await run_in_threadpool(digit_answer, predictor, payload)
        return _digit_response(predictor, image, await batcher.probabilities(predictor, image))

    @app.post("/api/read", responses={200: {"model": NumberAnswer}, **REFUSALS},
              openapi_extra=request_body(ImageBody))
    async def read(request: Request, inputs: Annotated[str, Query(
            description="1 or true: answer each digit's 28x28 as well")] = "", digits_only: Annotated[str, Query(
            description="1 or true: digits alone, the signs written inside the number left out")] = ""):
        """A whole number: multipart with a `file` field, raw image bytes, or JSON `{"image": "<base64>"}`.
        Answers `{"text", "confidence", "digits": [{"digit", "confidence", "box": [x0, y0, x1, y1]}],
        "rejected"}` (with `?inputs=1` also `"inputs"`: each digit's 28x28); no digits is a 422. A sign written
        inside the number (`.` `,` `-` `/` `:`) is one of the "digits", its "digit" the sign; `?digits_only=1`
        leaves signs out."""
        content_type, body = await _picture_upload(request)
        with_inputs, digits_only = _switch(inputs, "inputs"), _switch(digits_only, "digits_only")
        async with heavy:
            answer = await run_in_threadpool(reading_from_upload, served.get(), content_type, body, with_inputs,
                                             digits_only)
        return Response(json.dumps(answer), media_type="application/json")

    @app.post("/api/page", responses={200: {"model": PageAnswer}, **REFUSALS},
              openapi_extra=request_body(ImageBody))
    async def page(request: Request, digits_only: Annotated[str, Query(
            description="1 or true: digits alone, the signs written inside the numbers left out")] = ""):
        """Every written field on a page (a form, a table, a row of digit boxes): multipart with a `file`
        field, raw image bytes, or JSON `{"image": "<base64>"}`. Answers `{"fields": [{"text", "confidence",
        "box": [x0, y0, x1, y1], "characters"}], "width", "height"}`, fields in reading order and boxes in
        the picture's pixels; a blank page has no fields."""
        content_type, body = await _picture_upload(request)
        digits_only = _switch(digits_only, "digits_only")
        async with heavy:
            answer = await run_in_threadpool(page_from_upload, served.get(), content_type, body, digits_only)
        return Response(json.dumps(answer), media_type="application/json")

    @app.post("/api/correct", responses={200: {"model": CorrectionAnswer}, **REFUSALS, 403: ERROR, 507: ERROR},
              openapi_extra=request_body(None, images=False, form_model=CorrectionFields))
    async def correct(request: Request):
        """Keep a picture as an example of what it shows (only with `serve --collect DIR`): multipart with
        a `file` field and `label` (one digit) or `text` (the digits of a number); `confirmed=1` when the
        reading was right. The server reads the picture itself; no client file name is used."""
        if collector is None:
            raise ApiError(403, "this server keeps no examples (start it with: digitrec serve --collect DIR)")
        payload, fields = await _correction_form(request)
        try:
            async with heavy:
                answer = await run_in_threadpool(save_correction, served.get(), collector, payload, fields)
        except OSError as e:
            raise ApiError(507, f"could not keep the example: {e.strerror or e}") from None
        return answer

    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(WEB_DIR / "index.html")

    @app.get("/number", include_in_schema=False)
    async def number_page():
        return FileResponse(WEB_DIR / "number.html")

    @app.get("/page", include_in_schema=False)
    async def page_mode():
        return FileResponse(WEB_DIR / "page.html")

    @app.get("/docs", include_in_schema=False)
    async def docs():
        # Swagger UI from the package (swagger-ui-bundle), not a CDN: the docs work offline.
        return get_swagger_ui_html(openapi_url="/openapi.json", title="digitrec API",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css",
                                   swagger_favicon_url="/docs-assets/favicon-32x32.png")

    app.mount("/docs-assets", StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")
    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")
    return app


# ---------------------------------------------------------------- malformed HTTP, answered in JSON


def _malformed_body(message: str) -> bytes:
    return json.dumps({"error": f"malformed HTTP request: {message.rstrip('.')}"}).encode()


try:  # uvicorn's C parser (a dependency); its own answer to bytes that are not HTTP is plain text
    from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

    class JsonHttpToolsProtocol(HttpToolsProtocol):
        """uvicorn's httptools protocol, whose 400 for a request it cannot parse is `{"error": ...}`, and which
        closes a connection whose request headers are not all in HEADER_SECONDS after it opened or after the
        request began: uvicorn alone holds a connection that sends nothing, or a byte at a time, forever."""

        _header_timer = None

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._header_timer = self.loop.call_later(HEADER_SECONDS, self._headers_too_slow)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self._header_timer is None:
                self._header_timer = self.loop.call_later(HEADER_SECONDS, self._headers_too_slow)

        def on_headers_complete(self) -> None:
            self._stop_header_timer()
            super().on_headers_complete()

        def connection_lost(self, exc) -> None:
            self._stop_header_timer()
            super().connection_lost(exc)

        def _stop_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_too_slow(self) -> None:
            self._header_timer = None
            if not self.transport.is_closing():
                self.transport.close()

        def send_400_response(self, msg: str) -> None:
            body = _malformed_body(msg)
            head = [STATUS_LINE[400]]
            for name, value in self.server_state.default_headers:
                head += [name, b": ", value, b"\r\n"]
            head += [b"content-type: application/json\r\ncontent-length: ", str(len(body)).encode(),
                     b"\r\nconnection: close\r\n\r\n", body]
            self.transport.write(b"".join(head))
            self.transport.close()
except ImportError:  # pragma: no cover (httptools is a dependency; h11 is uvicorn's fallback)
    JsonHttpToolsProtocol = None


try:
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class JsonH11Protocol(H11Protocol):
        """uvicorn's h11 protocol (without httptools), whose 400 for a malformed request is `{"error": ...}`."""

        def send_400_response(self, msg: str) -> None:
            body = _malformed_body(msg)
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                       (b"connection", b"close")]
            for event in (h11.Response(status_code=400, headers=headers), h11.Data(data=body), h11.EndOfMessage()):
                self.transport.write(self.conn.send(event))
            self.transport.close()
except ImportError:  # pragma: no cover
    JsonH11Protocol = None


def http_protocol() -> str:
    """The uvicorn protocol `serve` runs: httptools (twice h11's throughput), else h11; both answer JSON."""
    here = "digitrec.serving.app"
    return f"{here}:JsonHttpToolsProtocol" if JsonHttpToolsProtocol else f"{here}:JsonH11Protocol"


# ---------------------------------------------------------------- the server


SERVE_MODEL_ENV = settings.SERVE_MODEL  # how `serve` tells its worker processes which run to load
SERVE_HOSTS_ENV = settings.SERVE_HOSTS  # ... and which Host header names to answer
SERVE_ORIGINS_ENV = settings.SERVE_ORIGINS  # ... and which other sites' pages may post to the API
SERVE_COLLECT_ENV = settings.SERVE_COLLECT  # ... and where corrections go: "DIR" or "DIR|N" (tune every N)


def app_from_environment() -> FastAPI:
    """The app of one worker process: the run named in DIGITREC_SERVE_MODEL (the bundled one when empty),
    in onnxruntime when the run has a model.onnx, one thread per request (threads cost more than they give
    for one picture; the workers use the cores)."""
    allowed = settings.serve_hosts() or LOCAL_HOSTS
    model = settings.serve_model()
    collect, every = settings.serve_collect()
    collector = Collector(collect, every, model) if collect else None
    origins = settings.serve_origins()
    return create_app(load_predictor(model, threads=1), allowed, collector, origins)


def _check_numbers(port: int, workers: int) -> None:
    if not 1 <= port <= 65535:
        raise DigitrecError(f"--port {port}", expected="a port number 1-65535")
    if workers < 1:
        raise DigitrecError(f"--workers {workers}", expected="at least 1 server process")


def _check_address(host: str, port: int) -> None:
    """That this process may listen on host:port, checked before any worker starts: a refusal is one line,
    not uvicorn's traceback or its log."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            probe.bind(address)
    except (OSError, UnicodeError) as e:
        reason = getattr(e, "strerror", None) or str(e)
        raise DigitrecError(f"cannot listen on {host}:{port} ({reason})",
                            expected="a free port and an address of this machine (--host, --port)") from None


def serve(model: str | None, host: str, port: int, workers: int = 1, allowed_hosts: list[str] | None = None,
          collect: str | None = None, tune_every: int = 0, allow_origins: list[str] | None = None) -> None:
    import uvicorn  # only a real server needs it; tests drive create_app through httpx

    origins = [origin_argument(o) for o in allow_origins or []]
    _check_numbers(port, workers)
    load_predictor(model)  # a bad --model is refused here, in one line, before any worker starts
    if tune_every and not collect:
        raise DigitrecError("--tune-every needs --collect DIR", expected="digitrec serve --collect DIR --tune-every N")
    if tune_every < 0:
        raise DigitrecError(f"--tune-every {tune_every}", expected="a number of new examples, at least 1")
    if collect:
        Collector(collect)  # an unwritable folder is refused before any worker starts
    if tune_every:
        try:  # re-tuning replays MNIST training digits: without them every tune would fail, unseen
            resolve_data_path(None)
        except DigitrecError as e:
            raise DigitrecError(f"--tune-every needs MNIST to replay: {e.what}",
                                expected="DIGITREC_DATA=MNIST_DIR (digitrec data download)") from None
    _check_address(host, port)
    os.environ[SERVE_COLLECT_ENV] = f"{Path(collect).resolve()}|{tune_every}" if collect else ""
    os.environ[SERVE_MODEL_ENV] = str(Path(model).resolve()) if model else ""
    names = {*LOCAL_HOSTS, *(allowed_hosts or [])}
    if host not in ("0.0.0.0", "::"):
        names.add(host.lower())
    os.environ[SERVE_HOSTS_ENV] = ",".join(sorted(n.lower() for n in names))
    os.environ[SERVE_ORIGINS_ENV] = " ".join(origins)
    uvicorn.run("digitrec.serving.app:app_from_environment", factory=True, host=host, port=port, workers=workers,
                log_level="warning", timeout_keep_alive=5, backlog=4096, http=http_protocol())
