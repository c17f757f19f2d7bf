"""Speed of the picture paths that have targets, on this machine, one picture at a time:
- `imaging.fit.to_mnist` on 280x280 drawings and on photographed digits (target: p50 under 1 ms);
- `model.read` on 4-digit 640x200 photos of numbers (target: p50 at most 20 ms), onnx engine;
- `POST /api/read` with the same photos to a real server on loopback (target: p50 at most 30 ms).

    python benchmarks/read_speed.py [--count 200]
"""

from __future__ import annotations

import argparse
import http.client
import io
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from common import machine_line, print_table
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from server import running_server  # noqa: E402

from digitrec.data import synthetic  # noqa: E402
from digitrec.imaging.decode import open_image  # noqa: E402
from digitrec.imaging.fit import to_mnist  # noqa: E402
from digitrec.inference.engine import load_predictor  # noqa: E402

TARGETS_MS = {"preprocess": 1.0, "read": 20.0, "api": 30.0}


def percentiles(times: list[float]) -> tuple[float, float]:
    return statistics.median(times), float(np.percentile(times, 95))


def timed(fn, items) -> list[float]:
    out = []
    for item in items:
        start = time.perf_counter()
        fn(item)
        out.append(1000 * (time.perf_counter() - start))
    return out


def number_photos(count: int) -> list[bytes]:
    """4-digit numbers from drawn digits, photographed, each picture 640x200."""
    rng = np.random.default_rng(0)
    photos = []
    for _ in range(count):
        pictures, _ = synthetic.drawn_digits(4, seed=int(rng.integers(1 << 30)), size=112)
        ink = synthetic.number_ink([255 - np.asarray(p) for p in pictures], (0.2, 0.6), rng)
        payload, _ = synthetic.number_on_paper(ink, rng, photographed=True)
        image = Image.open(io.BytesIO(payload)).resize((640, 200))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=85)
        photos.append(buffer.getvalue())
    return photos


def api_times(url: str, payloads: list[bytes]) -> list[float]:
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    times = []
    for i, payload in enumerate(payloads[:10] + payloads):
        start = time.perf_counter()
        connection.request("POST", "/api/read", body=payload, headers={"Content-Type": "image/jpeg"})
        response = connection.getresponse()
        response.read()
        if i >= 10:
            times.append(1000 * (time.perf_counter() - start))
    connection.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--model", help="run folder (default: the bundled model)")
    args = parser.parse_args()
    print(machine_line())
    drawings = [open_image(synthetic.png_bytes(im)) for im in synthetic.drawn_digits(args.count, seed=5)[0]]
    rng = np.random.default_rng(1)
    photos = [open_image(synthetic.photo_of(to_mnist(im), rng)) for im in drawings]
    numbers = number_photos(args.count)
    predictor = load_predictor(args.model)
    opened = [open_image(p) for p in numbers]
    predictor.read(opened[0])  # warm-up
    rows = []
    for name, times, target in (
        ("to_mnist, 280x280 drawing", timed(to_mnist, drawings), "preprocess"),
        ("to_mnist, photographed digit (200-400 px)", timed(to_mnist, photos), "preprocess"),
        ("model.read, 4-digit 640x200 photo (decoded)", timed(predictor.read, opened), "read"),
        ("model.read, same photo from JPEG bytes", timed(predictor.read, numbers), "read"),
    ):
        p50, p95 = percentiles(times)
        rows.append({"path": name, "p50 ms": f"{p50:.2f}", "p95 ms": f"{p95:.2f}",
                     "target": f"p50 <= {TARGETS_MS[target]:g} ms: {'ok' if p50 <= TARGETS_MS[target] else 'MISSED'}"})
    with running_server(*(["--model", args.model] if args.model else [])) as url:
        p50, p95 = percentiles(api_times(url, numbers))
    rows.append({"path": "POST /api/read, same JPEG, real server, one at a time", "p50 ms": f"{p50:.2f}",
                 "p95 ms": f"{p95:.2f}", "target": f"p50 <= 30 ms: {'ok' if p50 <= 30 else 'MISSED'}"})
    print_table(rows)


if __name__ == "__main__":
    main()
