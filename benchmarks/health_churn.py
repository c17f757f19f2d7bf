"""/api/health while idle connections are cut and reconnect, on loopback only: N connections (from child
processes, each under its own open-file limit) open an upload (headers promising 1 MB, then silence) or
stay silent; every --cut-every seconds each child cuts all of its connections at once (a reset) and opens
them all again, as a client whose network dropped would, and a connection the server cuts off (408 after
its body timeout) is opened again at once. Meanwhile /api/health is asked every 0.1 s, each time on a new
connection, and its latency recorded. Starts its own server (`digitrec serve`, default workers).

    ulimit -n 20000; python benchmarks/health_churn.py [--connections 20000] [--seconds 40] [--cut-every 8]
    python benchmarks/health_churn.py --cost 5000    # the server's CPU per connection arriving, per reset

Bounded: at most --seconds of churn, then the children stop and the server is stopped.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import cpu_seconds, machine_line, open_idle_uploads, print_table, timed_health

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from server import running_server  # noqa: E402

CHURN_CHILD = r"""
import asyncio, socket, struct, sys, time
host, port, count, seconds, cut_every, silent = (sys.argv[1], int(sys.argv[2]), int(sys.argv[3]),
                                                 float(sys.argv[4]), float(sys.argv[5]), sys.argv[6] == "1")
HEAD = b"" if silent else (f"POST /api/predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: image/png\r\n"
                           "Content-Length: 1000000\r\n\r\n").encode()
live = set()
opened = cut = failures = 0

async def hold():
    # Open, send the headers, wait until the connection is cut (by the server's 408 or by `cutter`), again.
    global opened, failures
    while True:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 30)
        except (OSError, asyncio.TimeoutError):
            failures += 1
            await asyncio.sleep(0.5)
            continue
        opened += 1
        writer.write(HEAD)
        live.add(writer)
        try:
            await reader.read(4096)
        except OSError:
            pass
        live.discard(writer)
        writer.close()

async def cutter():
    # Every `cut_every` seconds all connections at once: a reset, as a dropped network or a killed client gives.
    global cut
    while True:
        await asyncio.sleep(cut_every)
        for writer in list(live):
            try:
                writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                                           struct.pack("ii", 1, 0))
            except OSError:
                pass
            writer.close()
            cut += 1
        live.clear()

async def main():
    tasks = [asyncio.create_task(hold()) for _ in range(count)]
    if cut_every > 0:
        tasks.append(asyncio.create_task(cutter()))
    await asyncio.sleep(seconds)
    print(opened, cut, failures, flush=True)
    for task in tasks:
        task.cancel()
    for writer in list(live):
        writer.close()

try:
    import uvloop  # the clients' own CPU kept small: the server's is measured
    uvloop.run(main())
except ImportError:
    asyncio.run(main())
"""


def churn(url: str, connections: int, seconds: float, cut_every: float, silent: bool) -> dict:
    host, port = url.removeprefix("http://").split(":")
    per = 9000  # connections a child holds: each process has its own open-file limit
    children = [subprocess.Popen([sys.executable, "-c", CHURN_CHILD, host, port, str(min(per, connections - start)),
                                  str(seconds), str(cut_every), "1" if silent else "0"],
                                 stdout=subprocess.PIPE, text=True)
                for start in range(0, connections, per)]
    health = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        health.append(timed_health(url, timeout=30))
        time.sleep(0.1)
    totals = [0, 0, 0]
    for child in children:
        out, _ = child.communicate(timeout=120)
        for i, value in enumerate((out.split() + ["0", "0", "0"])[:3]):
            totals[i] += int(value)
    ordered = sorted(health)
    # About 1 s or 3 s: the check's SYN was dropped (the listen queue full) and sent again by the kernel.
    print("checks over 0.5 s:", " ".join(f"{h:.2f}" for h in health if h > 0.5) or "none", file=sys.stderr)
    return {"checks": len(health), "max_s": ordered[-1], "p99_s": ordered[int(0.99 * (len(ordered) - 1))],
            "median_s": statistics.median(ordered), "over_1s": sum(h > 1 for h in health),
            "opened": totals[0], "cut": totals[1], "connect_failures": totals[2]}


async def _cycle(port: int, count: int, pid: int) -> tuple[float, float]:
    """Server CPU seconds for `count` idle uploads to arrive, then for all of them to be reset."""
    import asyncio
    import socket
    import struct

    before = cpu_seconds(pid)
    writers = await open_idle_uploads(port, count)
    await asyncio.sleep(3)
    arrived = cpu_seconds(pid)
    for writer in writers:
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.close()
    await asyncio.sleep(3)
    return arrived - before, cpu_seconds(pid) - arrived


def cycle_cost(count: int) -> dict:
    """What one cut-and-reconnect costs the server: one worker's CPU (from /proc) per idle upload arriving
    and per one reset, over `count` connections, the second of two rounds."""
    import asyncio

    with running_server("--workers", "1") as url:
        pid = int(Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text().split()[0])
        for _ in range(2):
            arrive, cut = asyncio.run(_cycle(int(url.rsplit(":", 1)[1]), count, pid))
    return {"connections": count, "arrive us": f"{arrive / count * 1e6:.0f}", "cut us": f"{cut / count * 1e6:.0f}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=20000)
    parser.add_argument("--seconds", type=float, default=40)
    parser.add_argument("--cut-every", type=float, default=8, help="seconds between cuts (0: only the server cuts)")
    parser.add_argument("--silent", action="store_true", help="connections send nothing (no upload headers)")
    parser.add_argument("--workers", type=int, help="server processes (default: serve's, one per core)")
    parser.add_argument("--cost", type=int, metavar="N",
                        help="instead: one worker's CPU per idle upload arriving and per reset, over N connections")
    args = parser.parse_args()
    if args.cost:
        print(machine_line())
        print_table([cycle_cost(args.cost)])
        return
    extra = ["--workers", str(args.workers)] if args.workers else []
    print(machine_line())
    with running_server(*extra) as url:
        result = churn(url, args.connections, args.seconds, args.cut_every, args.silent)
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    print_table([{"connections": args.connections, "cut every s": args.cut_every,
                  "mode": "silent" if args.silent else "idle upload", "health checks": result["checks"],
                  "max s": f"{result['max_s']:.2f}", "p99 s": f"{result['p99_s']:.2f}",
                  "median s": f"{result['median_s']:.3f}", "> 1 s": result["over_1s"],
                  "opened": result["opened"], "cut": result["cut"], "connect failures": result["connect_failures"]}])

if __name__ == "__main__":
    main()
