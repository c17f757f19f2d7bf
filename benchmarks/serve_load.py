"""The HTTP API under load, on loopback only: p50/p95 latency of POST /api/predict with a 280x280 PNG,
then a bounded load test (default 2,000 requests, 32 concurrent), then, with --idle/--slow, a flood of
idle uploads (headers promising 1 MB, then silence) and slow ones (a byte a second) while /api/health
and real requests are timed. Starts its own server. Beside the results: the limit, the CPU time that
decoding, preprocessing and inference of one request take in this process (2 cores / that = the most
requests a second the server could answer).

    python benchmarks/serve_load.py [--requests 2000] [--concurrency 32] [--idle 20000 --slow 2000]

For 64 clients with a real load generator (its own CPU small), Debian's `hey`:
    hey -n 3200 -c 64 -m POST -T image/png -D digit.png http://127.0.0.1:8000/api/predict
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import statistics
import sys
import time
from pathlib import Path

import httpx
from common import machine_line, print_table, timed_health

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from server import running_server  # noqa: E402

from digitrec.data import synthetic  # noqa: E402

MAX_P50_MS = 10.0


def sequential_latency(url: str, payloads: list[bytes], count: int) -> list[float]:
    """One keep-alive connection with the standard library's client, whose own cost is small."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    times = []
    for i in range(count + 20):
        start = time.perf_counter()
        connection.request("POST", "/api/predict", body=payloads[i % len(payloads)],
                           headers={"Content-Type": "image/png"})
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"status {response.status}")
        if i >= 20:  # the first requests warm up the server
            times.append(1000 * (time.perf_counter() - start))
    connection.close()
    return times


async def load(url: str, payloads: list[bytes], requests: int, concurrency: int, deadline_s: float,
               raw: str | None = None) -> dict:
    errors, latencies = 0, []
    queue = iter(range(requests))
    stop = time.monotonic() + deadline_s

    async def worker(client: httpx.AsyncClient):
        nonlocal errors
        for i in queue:
            if time.monotonic() > stop:
                return
            start = time.perf_counter()
            try:
                if raw:  # the picture as the body, as `hey -D` sends it
                    r = await client.post("/api/predict", content=payloads[i % len(payloads)],
                                          headers={"content-type": raw})
                else:
                    r = await client.post("/api/predict", files={"file": ("d.png", payloads[i % len(payloads)],
                                                                            "image/png")})
                errors += r.status_code != 200
            except httpx.HTTPError:
                errors += 1
            latencies.append(1000 * (time.perf_counter() - start))

    limits = httpx.Limits(max_connections=concurrency)
    start = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    return {"done": len(latencies), "errors": errors, "seconds": elapsed, "latencies": latencies}


def cpu_limit(payloads: list[bytes], count: int = 500) -> float:
    """CPU seconds of decode + preprocess + inference for one request, in this process (onnxruntime, one
    thread, as each server worker runs it)."""
    from digitrec.imaging.decode import open_image
    from digitrec.imaging.fit import to_mnist
    from digitrec.inference.engine import load_predictor

    predictor = load_predictor(threads=1)
    for p in payloads[:20]:
        predictor.probabilities(to_mnist(open_image(p))[None])
    start = time.process_time()
    for i in range(count):
        predictor.probabilities(to_mnist(open_image(payloads[i % len(payloads)]))[None])
    return (time.process_time() - start) / count


FLOOD_CHILD = """
import asyncio, sys, time
host, port, idle, slow, hold = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
HEAD = (f"POST /api/predict HTTP/1.1\\r\\nHost: {host}\\r\\nContent-Type: image/png\\r\\n"
        "Content-Length: 1000000\\r\\n\\r\\n").encode()
async def connect():
    for attempt in range(20):
        try:
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(HEAD)
            return reader, writer
        except OSError:
            await asyncio.sleep(0.5)
    return None
async def hold_open(connection, trickle, end):
    # Held until `end`; a connection the server cuts off (408 after its body timeout) is opened again,
    # as an attacker would: the pressure stays.
    while time.monotonic() < end:
        if connection is None:
            connection = await connect()
            continue
        reader, writer = connection
        try:
            while time.monotonic() < end and not reader.at_eof():
                if trickle:
                    writer.write(b"x")
                await asyncio.sleep(1)
            writer.close()
        except OSError:
            pass
        connection = None
async def main():
    opened = []
    for start in range(0, idle + slow, 500):  # in waves: the listening socket's queue is not a flood gate
        opened += await asyncio.gather(*(connect() for _ in range(start, min(idle + slow, start + 500))))
    print(sum(c is not None for c in opened), flush=True)
    end = time.monotonic() + hold
    await asyncio.gather(*(hold_open(c, n >= idle, end) for n, c in enumerate(opened)))
asyncio.run(main())
"""


def flood(url: str, payloads: list[bytes], idle: int, slow: int, hold: float = 20) -> dict:
    """Idle and slow uploads from child processes (at most 9,000 connections each: every process has
    its own open-file limit), then /api/health and real requests timed while they are open."""
    import subprocess

    host, port = url.removeprefix("http://").split(":")
    children, per = [], 9000
    for start in range(0, idle + slow, per):
        n_idle = max(0, min(idle - start, per))
        n_slow = min(per - n_idle, idle + slow - start - n_idle)
        children.append(subprocess.Popen([sys.executable, "-c", FLOOD_CHILD, host, port, str(n_idle),
                                          str(n_slow), str(hold)], stdout=subprocess.PIPE, text=True))
    opened = sum(int(child.stdout.readline() or 0) for child in children)
    time.sleep(1)
    health, answers, errors = [], [], 0
    end = time.monotonic() + hold - 5
    while time.monotonic() < end:
        health.append(timed_health(url, timeout=5))
        start = time.perf_counter()
        try:
            r = httpx.post(f"{url}/api/predict", content=payloads[len(answers) % len(payloads)],
                           headers={"content-type": "image/png"}, timeout=5)
            errors += r.status_code != 200
        except httpx.HTTPError:
            errors += 1
        answers.append(time.perf_counter() - start)
        time.sleep(0.2)
    for child in children:
        child.wait()
    print("health seconds, in order:", " ".join(f"{h:.2f}" for h in health), file=sys.stderr)
    return {"opened": opened, "health_max_s": max(health), "health_n": len(health), "answers": len(answers),
            "errors": errors, "answer_p50_ms": 1000 * statistics.median(answers)}


def server_peak_mb(port: str) -> float:
    """The sum of the peak resident memory (VmHWM) of the server and its worker processes, from /proc."""
    import subprocess

    parents = subprocess.run(["pgrep", "-f", f"serve --port {port}"], capture_output=True, text=True).stdout.split()
    pids = set(parents)
    for pid in parents:
        for task in Path(f"/proc/{pid}/task").glob("*/children"):
            pids.update(task.read_text().split())
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1]) / 1024
    return total


def big_pictures(url: str, count: int, concurrency: int) -> dict:
    """`count` 40-megapixel (6300x6300 RGBA) PNGs of a digit, `concurrency` at a time."""
    import io

    import numpy as np
    from PIL import Image

    pixels = np.full((6300, 6300, 4), 255, np.uint8)
    pixels[1500:4800, 2800:3500, :3] = 0  # a 1
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGBA").save(buffer, format="PNG", optimize=True)
    payload = buffer.getvalue()
    result = asyncio.run(load(url, [payload], count, concurrency, 600, "image/png"))
    return {**result, "bytes": len(payload), "peak_mb": server_peak_mb(url.rsplit(":", 1)[1])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--deadline", type=float, default=300, help="stop the load test after this many seconds")
    parser.add_argument("--idle", type=int, default=0, help="idle uploads held open (e.g. 20000)")
    parser.add_argument("--slow", type=int, default=0, help="uploads sending a byte a second (e.g. 2000)")
    parser.add_argument("--big", type=int, default=0, help="40-megapixel PNGs sent 64 at a time (e.g. 128)")
    args = parser.parse_args()
    images, _ = synthetic.drawn_digits(50, seed=99)
    payloads = [synthetic.png_bytes(im) for im in images]
    per_request = cpu_limit(payloads)
    with running_server() as url:
        single = sequential_latency(url, payloads, 300)
        result = asyncio.run(load(url, payloads, args.requests, args.concurrency, args.deadline))
        flooded = flood(url, payloads, args.idle, args.slow) if args.idle or args.slow else None
    big = None
    if args.big:
        with running_server() as url:  # a fresh server: its peak memory is this test's alone
            big = big_pictures(url, args.big, 64)
    p50 = statistics.median(single)
    lat = sorted(result["latencies"])
    rows = [
        {"test": "one client, 280x280 PNG (image/png body)", "requests": len(single), "errors": 0,
         "p50 ms": f"{p50:.2f}", "p95 ms": f"{sorted(single)[int(0.95 * len(single))]:.2f}",
         "requests/s": f"{1000 / statistics.mean(single):.0f}",
         "target": f"p50 <= {MAX_P50_MS} ms: {'ok' if p50 <= MAX_P50_MS else 'MISSED'}"},
        {"test": f"load, {args.concurrency} concurrent", "requests": result["done"], "errors": result["errors"],
         "p50 ms": f"{statistics.median(lat):.2f}", "p95 ms": f"{lat[int(0.95 * len(lat))]:.2f}",
         "requests/s": f"{result['done'] / result['seconds']:.0f}",
         "target": "0 errors: " + ("ok" if result["errors"] == 0 and result["done"] == args.requests else "MISSED")},
    ]
    if flooded:
        rows.append({"test": f"{args.idle:,} idle + {args.slow:,} slow uploads ({flooded['opened']:,} open)",
                     "requests": flooded["answers"],
                     "errors": flooded["errors"], "p50 ms": f"{flooded['answer_p50_ms']:.2f}", "p95 ms": "",
                     "requests/s": "",
                     "target": f"health within 1 s (worst {flooded['health_max_s']:.2f} s of {flooded['health_n']}): "
                               + ("ok" if flooded["health_max_s"] <= 1 and not flooded["errors"] else "MISSED")})
    if big:
        rows.append({"test": f"64 concurrent 40-megapixel PNGs ({big['bytes'] // 1000} KB each)",
                     "requests": big["done"], "errors": big["errors"],
                     "p50 ms": f"{statistics.median(big['latencies']):.0f}", "p95 ms": "", "requests/s": "",
                     "target": f"peak memory {big['peak_mb']:.0f} MB <= 1024 MB: "
                               + ("ok" if big["peak_mb"] <= 1024 and not big["errors"] else "MISSED")})
    print(machine_line())
    print(f"limit: decode + preprocess + inference take {1000 * per_request:.2f} ms of CPU per request here: "
          f"at most {2 / per_request:,.0f} requests/s on 2 cores")
    print_table(rows)
    return 0 if all("MISSED" not in r["target"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
