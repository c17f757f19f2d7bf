"""Property-based fuzzing of every parser and of the server (Hypothesis, seeded: the same cases every run).

The property is the same everywhere: whatever the bytes, a parser either returns what it promises or
raises `DigitrecError` (a clear one-line error); the server answers with a status below 500 and, on the
API, a JSON body. Any other exception, a 5xx or a hang fails the test with the smallest case that does it.
Case counts: at least 1,000 per parser and 6,000 for the server in the full suite; a run that leaves the slow
tier out (the quick loop, `-m "not slow ..."`) runs a twentieth of them (conftest.py), and FUZZ_SCALE=N sets the
share.
"""

import base64
import gzip
import io
import json
import os
import struct
import zipfile

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from digitrec.core.errors import DigitrecError
from digitrec.data.formats import load_npz, read_csv, read_idx
from digitrec.imaging.decode import open_image
from digitrec.imaging.fit import to_mnist
from digitrec.inference.engine import load_predictor
from digitrec.reading.numbers import read_number
from digitrec.serving.app import ApiError, base64_image_from_json, create_app, pixels_from_json

SCALE = float(os.environ.get("FUZZ_SCALE", "1"))
PARSER_CASES = max(10, int(1000 * SCALE))
SERVER_CASES = max(10, int(6_000 * SCALE))  # 6,000: 43 s of the full suite; 10,000 took 72 s


def fuzz(cases: int):
    return settings(max_examples=cases, derandomize=True, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))


# ---------------------------------------------------------------- IDX


def _idx(draw_dims, dtype_code: int, payload: bytes) -> bytes:
    return bytes([0, 0, dtype_code, len(draw_dims)]) + b"".join(struct.pack(">I", d) for d in draw_dims) + payload


idx_bytes = st.one_of(
    st.binary(max_size=200),
    st.builds(_idx, st.lists(st.integers(0, 2**32 - 1), max_size=4), st.sampled_from([8, 9, 0x0D, 0]),
              st.binary(max_size=300)),
    st.builds(_idx, st.lists(st.integers(0, 30), min_size=1, max_size=3), st.just(8), st.binary(max_size=3000)),
)


@fuzz(PARSER_CASES)
@given(payload=idx_bytes, zipped=st.booleans(), cut=st.integers(0, 50))
def test_idx_parser(tmp_path_factory, payload, zipped, cut):
    data = gzip.compress(payload) if zipped else payload
    if zipped and cut:
        data = data[:-cut]
    path = tmp_path_factory.getbasetemp() / "fuzz-idx"
    path.write_bytes(data)
    try:
        array = read_idx(path)
    except DigitrecError:
        return
    assert isinstance(array, np.ndarray) and array.dtype == np.uint8


# ---------------------------------------------------------------- CSV

HEADER = "label," + ",".join(f"pixel{i}" for i in range(784))
cells = st.one_of(st.integers(-300, 600).map(str), st.sampled_from(["", "abc", "1e400", "nan", "-0", "12.5",
                                                                    "99999999999999999999", " 7", '"3"', "0x10"]))


def _row(length: int, label: str, fill: str, edits: list[tuple[int, str]]) -> str:
    row = [label] + [fill] * (length - 1)
    for column, cell in edits:
        row[column % length] = cell
    return ",".join(row)


# A row of one value with up to eight cells changed, 783 to 787 cells long: any value in any column, and rows a
# cell or two too long or too short, in a few draws a row (drawing each of 785 cells took 30 times as long).
rows = st.builds(_row, st.integers(783, 787), st.one_of(st.integers(0, 9).map(str), cells),
                 st.one_of(st.integers(0, 255).map(str), cells), st.lists(st.tuples(st.integers(0, 786), cells),
                                                                          max_size=8))


@fuzz(PARSER_CASES)
@given(header=st.sampled_from([HEADER, HEADER[6:], "", "a,b,c", HEADER + ",extra"]),
       body=st.lists(rows, max_size=3), ending=st.sampled_from(["\n", "\r\n", "\r"]),
       bom=st.booleans(), junk=st.binary(max_size=40))
def test_csv_parser(tmp_path_factory, header, body, ending, bom, junk):
    text = ending.join([header, *body]) + ending
    path = tmp_path_factory.getbasetemp() / "fuzz.csv"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode() + junk)
    try:
        digits = read_csv(path)
    except DigitrecError:
        return
    assert digits.x.dtype == np.uint8 and digits.x.shape[1:] == (28, 28)


# ---------------------------------------------------------------- npz

arrays = st.one_of(
    st.builds(lambda n, fill: np.full((n, 28, 28), fill), st.integers(0, 3),
              st.sampled_from([0, 255, -1, 300, 0.5, np.nan, np.inf, True, 1 + 2j])),
    st.builds(lambda shape: np.zeros(shape, np.uint8), st.lists(st.integers(0, 30), max_size=4).map(tuple)),
    st.builds(lambda n: np.array(["x"] * n), st.integers(0, 3)),
    st.builds(lambda n: np.arange(n) % 12, st.integers(0, 5)),
)


@fuzz(PARSER_CASES)
@given(members=st.dictionaries(st.sampled_from(["x_train", "y_train", "x_test", "y_test", "other"]), arrays,
                               max_size=5),
       garbage=st.one_of(st.none(), st.binary(max_size=50)))
def test_npz_parser(tmp_path_factory, members, garbage):
    path = tmp_path_factory.getbasetemp() / "fuzz.npz"
    np.savez(path, **members)
    if garbage is not None:
        with zipfile.ZipFile(path, "a") as archive:
            archive.writestr("x_train.npy" if "x_train" not in members else "junk.npy", garbage)
    try:
        splits = load_npz(path)
    except DigitrecError:
        return
    for digits in splits.values():
        assert digits.x.dtype == np.uint8 and digits.x.shape[1:] == (28, 28)


# ---------------------------------------------------------------- images


def _encoded(array: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    mode = {np.dtype(np.uint8): "L", np.dtype(np.float32): "F", np.dtype(np.int32): "I"}[array.dtype]
    image = Image.fromarray(array, mode=mode)
    if mode != "L":
        fmt = "TIFF"  # float and 32-bit pictures: TIFF holds them as they are (NaN, inf included)
    image.save(buffer, format=fmt)
    return buffer.getvalue()


pictures = st.builds(
    _encoded,
    st.one_of(
        st.builds(lambda h, w, v: np.full((h, w), v, np.uint8), st.integers(1, 60), st.integers(1, 60),
                  st.integers(0, 255)),
        st.builds(lambda h, w, seed: np.random.default_rng(seed).integers(0, 256, (h, w)).astype(np.uint8),
                  st.integers(1, 80), st.integers(1, 80), st.integers(0, 10**6)),
        st.builds(lambda h, w, v: np.full((h, w), v, np.float32), st.integers(1, 20), st.integers(1, 20),
                  st.sampled_from([np.nan, np.inf, -np.inf, 1e30, -5.0, 0.5])),
    ),
    st.sampled_from(["PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF"]),
)


@fuzz(PARSER_CASES)
@given(payload=st.one_of(pictures, st.binary(max_size=300),
                         st.builds(lambda p, cut: p[: max(1, len(p) - cut)], pictures, st.integers(1, 200))))
def test_image_parser_and_preprocessing(payload):
    try:
        image = to_mnist(open_image(payload))
    except DigitrecError:
        return
    assert image.dtype == np.uint8 and image.shape == (28, 28)


@pytest.fixture(scope="module")
def predictor():
    return load_predictor(threads=1)


@fuzz(max(10, PARSER_CASES // 4))
@given(payload=pictures)
def test_number_reader(predictor, payload):
    try:
        reading = read_number(open_image(payload), predictor, predictor.line_model)
    except DigitrecError:
        return
    assert reading.text.isdigit() and len(reading.digits) == len(reading.text)


# ---------------------------------------------------------------- JSON bodies

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=5)),
    lambda children: st.lists(children, max_size=30) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=900,
)
json_bodies = st.one_of(
    json_values.map(json.dumps),
    st.builds(lambda v: json.dumps({"pixels": v}), json_values),
    st.builds(lambda v: json.dumps({"pixels": [[v] * 28] * 28}),
              st.one_of(st.integers(-(10**400), 10**400), st.floats(allow_nan=True), st.text(max_size=3))),
    st.builds(lambda depth: "[" * depth + "]" * depth, st.integers(1, 200_000)),
    st.builds(lambda s: json.dumps({"image": s}), st.one_of(st.text(max_size=40), st.binary(max_size=60).map(
        lambda b: base64.b64encode(b).decode()))),
    st.text(max_size=50),
)


@fuzz(PARSER_CASES)
@given(body=json_bodies)
def test_json_body_parsers(body):
    for parse in (pixels_from_json, base64_image_from_json):
        try:
            parse(body.encode())
        except ApiError as e:
            assert 400 <= e.status < 500


# ---------------------------------------------------------------- the server, from its OpenAPI document

CONTENT_TYPES = ["multipart/form-data; boundary=xyz", "application/json", "image/png", "text/plain", "",
                 "multipart/form-data", "image/jpeg"]


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from digitrec.serving.corrections import Collector

    app = create_app(load_predictor(threads=1), collector=Collector(tmp_path_factory.mktemp("kept")))
    with TestClient(app, raise_server_exceptions=False) as client:  # one event loop for every request
        operations = [(path, method.upper()) for path, item in client.get("/openapi.json").json()["paths"].items()
                      for method in item]
        assert len(operations) >= 5
        yield client, operations


def _multipart(fields: list[tuple[str, bytes]]) -> bytes:
    parts = [b'--xyz\r\nContent-Disposition: form-data; name="' + name.encode() + b'"; filename="f"\r\n\r\n' + value
             for name, value in fields]
    return b"\r\n".join(parts) + b"\r\n--xyz--\r\n"


bodies = st.one_of(
    st.binary(max_size=400),
    pictures,
    json_bodies.map(str.encode),
    st.builds(_multipart, st.lists(st.tuples(st.sampled_from(["file", "label", "text", "confirmed", "x"]),
                                             st.one_of(pictures, st.binary(max_size=40),
                                                       st.sampled_from([b"1", b"7", b"12", b"abc", b""]))),
                                   max_size=4)),
)


@fuzz(SERVER_CASES)
@given(pick=st.integers(0, 1000), method=st.sampled_from(["GET", "POST", "PUT", "DELETE", None]),
       content_type=st.sampled_from(CONTENT_TYPES), body=bodies,
       query=st.sampled_from(["", "?inputs=1", "?inputs=%ff", "?x=" + "a" * 3000]))
def test_server_never_answers_5xx(client, pick, method, content_type, body, query):
    http, operations = client
    path, documented = operations[pick % len(operations)]
    response = http.request(method or documented, path + query, content=body,
                            headers={"content-type": content_type} if content_type else {})
    assert response.status_code < 500, (path, response.status_code, response.text[:200])
    if path.startswith("/api/") and response.status_code >= 400:
        assert "error" in response.json()
