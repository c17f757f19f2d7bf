"""What CPU this is and what it can do: detected, never assumed.

torch is imported only by the functions that set or report its threads and device, or require it: the onnxruntime
path reads `thread_count()` without it."""

from __future__ import annotations

import os
import platform
from functools import cache

from digitrec.core import settings
from digitrec.core.errors import DigitrecError


@cache
def cpu_flags() -> frozenset[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


@cache
def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def bf16_autocast_supported() -> bool:
    """bf16 pays on CPUs with native bf16 matrix units (AMX or AVX-512 BF16); elsewhere fp32 is faster.

    DIGITREC_BF16=0 or 1 overrides the detection (for benchmarks)."""
    forced = settings.bf16()
    if forced is not None:
        return forced
    return bool({"amx_bf16", "avx512_bf16"} & cpu_flags())


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def thread_count() -> int:
    """DIGITREC_THREADS, or one thread per core this process may use."""
    return settings.threads() or available_cores()


def configure_threads() -> int:
    """Sets torch's intra-op threads to `thread_count()`; returns the count."""
    import torch

    threads = thread_count()
    torch.set_num_threads(threads)
    return threads


def describe() -> dict:
    import torch

    return {
        "cpu": cpu_name(),
        "cores": available_cores(),
        "threads": torch.get_num_threads(),
        "isa": torch.backends.cpu.get_cpu_capability(),
        "bf16_autocast": bf16_autocast_supported(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def training_device():
    """Where training runs: a CUDA GPU when torch sees one (DIGITREC_DEVICE=cpu keeps it on the CPU),
    else the CPU. Inference always runs on the CPU."""
    import torch

    wanted = settings.device()
    if wanted == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device(wanted or "cuda")


# What the core install lacks: `pip install digitrec` reads, serves, checks data and reports without torch (the
# train extra) and without matplotlib (the plots extra, which train includes): 390 MB instead of 1.4 GB.
TRAIN_EXTRA = 'pip install "digitrec[train]"'
PLOTS_EXTRA = 'pip install "digitrec[plots]"'


def has_torch() -> bool:
    """Whether PyTorch is installed, found without importing it (the import alone takes 2.5 s)."""
    import importlib.util

    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):  # blocked (None in sys.modules) or a broken entry
        return False


def require_torch(where: str, what: str = "needs PyTorch") -> None:
    """A one-line refusal, naming the extra that brings PyTorch, when it is not installed or does not import."""
    try:
        import torch  # noqa: F401
    except ImportError:
        raise DigitrecError(what, where=where, expected=TRAIN_EXTRA) from None


def has_matplotlib() -> bool:
    """Whether figures can be drawn (the plots extra), found without importing matplotlib."""
    import importlib.util

    try:
        return importlib.util.find_spec("matplotlib") is not None
    except (ImportError, ValueError):
        return False


def require_matplotlib(where: str) -> None:
    if not has_matplotlib():
        raise DigitrecError("needs matplotlib to draw figures", where=where, expected=PLOTS_EXTRA)
