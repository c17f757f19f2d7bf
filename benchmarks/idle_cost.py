"""What an idle upload costs the server: N connections each send the headers of a 1 MB upload and then
nothing, against a one-worker `digitrec serve`; the worker's CPU seconds per connection (from /proc) and
how long the first /api/health takes right after them. The server's cost per connection is what decides
how long a storm of them keeps everyone else waiting.

    python benchmarks/idle_cost.py [--connections 8000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

import httpx
from common import cpu_seconds, machine_line, open_idle_uploads, print_table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from server import running_server  # noqa: E402


async def storm(port: int, count: int, pid: int) -> tuple[float, float]:
    """(server CPU seconds for `count` idle uploads, seconds of the first /api/health after them)."""
    before = cpu_seconds(pid)
    writers = await open_idle_uploads(port, count)
    await asyncio.sleep(0.05)
    started = time.perf_counter()
    await asyncio.to_thread(httpx.get, f"http://127.0.0.1:{port}/api/health", timeout=30)
    health = time.perf_counter() - started
    await asyncio.sleep(2)  # every connection taken in and waiting for its body
    spent = cpu_seconds(pid) - before
    for writer in writers:
        writer.close()
    return spent, health


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=8000)
    args = parser.parse_args()
    with running_server("--workers", "1") as url:
        port = int(url.rsplit(":", 1)[1])
        server_pid = int(Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text().split()[0])
        spent, health = asyncio.run(storm(port, args.connections, server_pid))
    print(machine_line())
    print_table([{"connections": f"{args.connections:,}", "server CPU s": f"{spent:.2f}",
                  "per connection us": f"{spent / args.connections * 1e6:.0f}", "first health s": f"{health:.2f}"}])


if __name__ == "__main__":
    main()
