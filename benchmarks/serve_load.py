"""The HTTP API under load, on loopback only: p50/p95 latency of POST /api/predict with a 280x280 PNG,
then a bounded load test (default 2,000 requests, 32 concurrent). Starts its own server.

    python benchmarks/serve_load.py [--requests 2000] [--concurrency 32]
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
from common import machine_line, print_table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from server import running_server  # noqa: E402

from digitrec import synthetic  # noqa: E402

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


async def load(url: str, payloads: list[bytes], requests: int, concurrency: int, deadline_s: float) -> dict:
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--deadline", type=float, default=300, help="stop the load test after this many seconds")
    args = parser.parse_args()
    images, _ = synthetic.drawn_digits(50, seed=99)
    payloads = [synthetic.png_bytes(im) for im in images]
    with running_server() as url:
        single = sequential_latency(url, payloads, 300)
        result = asyncio.run(load(url, payloads, args.requests, args.concurrency, args.deadline))
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
    print(machine_line())
    print_table(rows)
    return 0 if all("MISSED" not in r["target"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
