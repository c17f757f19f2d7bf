"""Every `DIGITREC_*` environment variable in one place: its name, type, default and check.

Each is read when its function is called, never frozen at import (tests and `digitrec serve`'s parent process set
them later). A bad value is one line naming the variable: `DIGITREC_THREADS: 'abc' is not a whole number
(expected ...)`, which the CLI turns into exit 2."""

from __future__ import annotations

import os
from pathlib import Path

from digitrec.core.errors import DigitrecError

DATA = "DIGITREC_DATA"  # default for --data: MNIST IDX folder, CSV, npz or pictures
CACHE = "DIGITREC_CACHE"  # where training keeps its rendered views (default: the user's cache, digitrec/)
THREADS = "DIGITREC_THREADS"  # torch and onnxruntime threads; with `ensemble --train` and `sweep`, CPUs per trial
DEVICE = "DIGITREC_DEVICE"  # training's device: cpu, cuda or cuda:N (default: a CUDA GPU when torch sees one)
BF16 = "DIGITREC_BF16"  # 1/0 forces bf16 autocast in CPU training on/off (default: where the CPU has bf16 units)
BODY_SECONDS = "DIGITREC_BODY_SECONDS"  # the longest an upload may take to arrive at the server
HEADER_SECONDS = "DIGITREC_HEADER_SECONDS"  # ... and a request's headers
# How `digitrec serve` tells its worker processes what to serve: written by serve, read by each worker.
SERVE_MODEL = "DIGITREC_SERVE_MODEL"  # the run folder ("" = the bundled model)
SERVE_HOSTS = "DIGITREC_SERVE_HOSTS"  # Host header names to answer, comma-separated
SERVE_ORIGINS = "DIGITREC_SERVE_ORIGINS"  # other sites' origins whose pages may post, space-separated
SERVE_COLLECT = "DIGITREC_SERVE_COLLECT"  # where corrections go: "DIR" or "DIR|N" (re-tune every N)

NAMES = (DATA, CACHE, THREADS, DEVICE, BF16, BODY_SECONDS, HEADER_SECONDS, SERVE_MODEL, SERVE_HOSTS, SERVE_ORIGINS,
         SERVE_COLLECT)

DEFAULT_SECONDS = 10.0  # upload and header time limits: a phone on a slow link sends a 10 MB picture in under 10 s


def _raw(name: str) -> str:
    """The variable's value, stripped; "" when unset or empty (both mean: the default)."""
    return os.environ.get(name, "").strip()


def _whole(name: str, expected: str, at_least: int = 0, at_most: int | None = None) -> int | None:
    """A whole number at_least..at_most, or None when unset."""
    raw = _raw(name)
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise DigitrecError(f"'{raw}' is not a whole number", where=name, expected=expected) from None
    if value < at_least:
        raise DigitrecError(f"'{raw}' is too small", where=name, expected=expected)
    if at_most is not None and value > at_most:
        raise DigitrecError(f"'{raw}' is too large", where=name, expected=expected)
    return value


def _seconds(name: str) -> float:
    raw = _raw(name)
    if not raw:
        return DEFAULT_SECONDS
    expected = f"a number of seconds over 0 (default {DEFAULT_SECONDS:g})"
    try:
        value = float(raw)
    except ValueError:
        raise DigitrecError(f"'{raw}' is not a number", where=name, expected=expected) from None
    if not 0 < value < float("inf"):
        raise DigitrecError(f"'{raw}' is not a usable time limit", where=name, expected=expected)
    return value


# ---------------------------------------------------------------- data and cache


def data_path() -> str | None:
    """DIGITREC_DATA, or None when unset."""
    return _raw(DATA) or None


def user_cache() -> Path:
    """digitrec's folder in the user's cache: $XDG_CACHE_HOME/digitrec, else ~/.cache/digitrec."""
    return Path(_raw("XDG_CACHE_HOME") or Path.home() / ".cache") / "digitrec"


def cache_dir() -> Path:
    """Where training keeps its rendered views: DIGITREC_CACHE, else `user_cache()`."""
    return Path(_raw(CACHE)).expanduser() if _raw(CACHE) else user_cache()


# ---------------------------------------------------------------- threads and devices


# More threads than this is a typing slip, not a machine: 100,000 threads took 4.3 GB and hung `read`.
MAX_THREADS = 1024


def threads() -> int | None:
    """DIGITREC_THREADS as a count of threads (at least 1), or None when unset or 0: each user says its default
    (reading and training: one thread per core; a Ray Tune trial: one CPU)."""
    return _whole(THREADS, f"a number of threads, 1-{MAX_THREADS}; 0 or unset: the default", at_least=0,
                  at_most=MAX_THREADS) or None


def bf16() -> bool | None:
    """DIGITREC_BF16: True for 1, False for 0, None when unset (detect from the CPU)."""
    raw = _raw(BF16)
    if raw in ("0", "1"):
        return raw == "1"
    if raw:
        raise DigitrecError(f"'{raw}' is not 0 or 1", where=BF16, expected="1 (bf16 on), 0 (off) or unset (detect)")
    return None


def device() -> str:
    """DIGITREC_DEVICE: "cpu", "cuda", "cuda:N", or "" when unset (a CUDA GPU when torch sees one)."""
    raw = _raw(DEVICE)
    kind, colon, index = raw.partition(":")
    if raw in ("", "cpu", "cuda") or (kind == "cuda" and colon and index.isdigit()):
        return raw
    raise DigitrecError(f"'{raw}' is not a device", where=DEVICE, expected="cpu, cuda or cuda:N")


# ---------------------------------------------------------------- the server


def body_seconds() -> float:
    return _seconds(BODY_SECONDS)


def header_seconds() -> float:
    return _seconds(HEADER_SECONDS)


def serve_model() -> str | None:
    return _raw(SERVE_MODEL) or None


def serve_hosts() -> tuple[str, ...]:
    return tuple(h for h in _raw(SERVE_HOSTS).split(",") if h)


def serve_origins() -> tuple[str, ...]:
    return tuple(o for o in _raw(SERVE_ORIGINS).split(" ") if o)


def serve_collect() -> tuple[str | None, int]:
    """(the corrections folder or None, re-tune after every N new examples; 0: never)."""
    folder, _, every = os.environ.get(SERVE_COLLECT, "").partition("|")
    if not every.strip():
        return folder or None, 0
    try:
        count = int(every)
    except ValueError:
        count = -1
    if count < 0:
        raise DigitrecError(f"'{every}' is not a whole number", where=SERVE_COLLECT,
                            expected="DIR or DIR|N, N a number of new examples")
    return folder or None, count
