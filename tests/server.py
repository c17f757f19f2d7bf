"""Start the real server (uvicorn in a child process) on a free loopback port."""

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_server(*args: str, timeout: float = 60, log_path=None):
    port = free_port()
    # The log goes to a file: an unread pipe fills up after a few hundred access-log lines and
    # then blocks the server.
    with (open(log_path, "w+b") if log_path else tempfile.TemporaryFile()) as log:
        yield from _serve(port, log, args, timeout)


def _serve(port: int, log, args, timeout: float):
    process = subprocess.Popen(
        [sys.executable, "-m", "digitrec", "serve", "--port", str(port), *args],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"server exited: {log.read().decode(errors='replace')}")
            try:
                if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("server did not become healthy")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
