"""Shared by the benchmarks: where the data is, what machine this is, how to print a table."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from digitrec.core import hardware
from digitrec.data import DATA_ENV


def data_path() -> str:
    path = os.environ.get(DATA_ENV)
    if not path:
        sys.exit(f"set {DATA_ENV} to the MNIST folder (e.g. ../shared/data/mnist)")
    return path


def machine_line() -> str:
    info = hardware.describe()
    return (f"machine: {info['cpu']}, {info['cores']} cores, {info['threads']} threads, ISA {info['isa']}, "
            f"bf16 autocast {'on' if info['bf16_autocast'] else 'off'}, torch {info['torch']}, "
            f"python {info['python']}")


def print_table(rows: list[dict]) -> None:
    header = list(rows[0])
    cells = [header] + [[str(r[h]) for h in header] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    for n, row in enumerate(cells):
        print(" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
        if n == 0:
            print("-+-".join("-" * w for w in widths))


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed_health(url: str, timeout: float) -> float:
    """Seconds /api/health took to answer 200; infinity when it did not."""
    import httpx

    start = time.perf_counter()
    try:
        ok = httpx.get(f"{url}/api/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        ok = False
    return time.perf_counter() - start if ok else float("inf")


IDLE_UPLOAD_HEAD = (b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
                    b"Content-Length: 1000000\r\n\r\n")


async def open_idle_uploads(port: int, count: int) -> list:
    """`count` connections that each send an upload's headers and then nothing, opened in waves of 500."""
    import asyncio

    async def one():
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(IDLE_UPLOAD_HEAD)
        return writer

    writers = []
    for start in range(0, count, 500):
        writers += await asyncio.gather(*(one() for _ in range(min(500, count - start))))
    return writers
