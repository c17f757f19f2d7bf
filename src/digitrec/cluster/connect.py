"""Connecting to Ray: local Ray started in this process and bound to the loopback, or a cluster joined by address.

Imported only by the verbs given `--cluster` (or `ensemble --train`, `sweep`); Ray is an optional extra. Without
an address (and no RAY_ADDRESS) Ray starts inside this process, on this machine; with one it joins a running
cluster, and then every path given (the pictures, the run folders, `--out`) must be one that every node sees.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
from collections.abc import Callable

from digitrec.core.errors import DigitrecError
from digitrec.core.hardware import available_cores

INSTALL = 'pip install "digitrec[cluster]"'
OBJECT_STORE_BYTES = 512 * 2**20  # local Ray: its shared memory, kept small (the default is 30 % of RAM)
CONNECT_TIMEOUT_S = 10
# A Ray GCS must answer its first call (GetClusterId) within this, import of Ray's client included: measured
# 1.0 s on a loaded 2-core host against a live GCS, 5.2 s against an HTTP server (then refused).
GCS_CHECK_TIMEOUT_S = 15
LOOPBACK = "127.0.0.1"


def require_ray():
    """The `ray` module, or one clear line saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401  (both extras are needed; a bare `pip install ray` lacks them)
        import ray.tune  # noqa: F401
    except ImportError:
        raise DigitrecError("this needs Ray, which is not installed", expected=f"{INSTALL} (Ray Data and Ray Tune)") \
            from None
    return ray


def connect(address: str | None) -> str:
    """Start Ray here (no address and no RAY_ADDRESS) or join the cluster at `address`; says which."""
    ray = require_ray()
    address = address or os.environ.get("RAY_ADDRESS") or None
    if ray.is_initialized():
        return _describe(ray, "this process's Ray")
    quiet = {"include_dashboard": False, "logging_level": logging.ERROR, "log_to_driver": False,
             "configure_logging": True}
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")  # workers use this interpreter as it is
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune then honours verbose=0: digitrec prints its own lines
    # Ray's C++ core warns on stderr about its own actors' arguments; its log files keep everything.
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    if address in (None, "", "local"):
        _start_local(ray, quiet)
        where = "local Ray (started in this process)"
    else:
        _check_reachable(address)
        _check_gcs(address)
        try:
            ray.init(address=address, **quiet)
        except (ConnectionError, RuntimeError, ValueError, TimeoutError) as e:
            first = (str(e).splitlines() or [""])[0][:200]
            raise DigitrecError(f"cannot join the Ray cluster ({first})", where=address,
                                expected="the address `ray start --head` printed, e.g. 192.168.1.10:6379") from None
        where = f"Ray cluster at {address}"
    _quiet_ray_data()
    return _describe(ray, where)


JOINED_EXISTING = "When connecting to an existing cluster"  # how Ray 2.60's ValueError begins


def _start_local(ray, options: dict) -> None:
    """Ray on this machine with every socket on the loopback: Ray has no authentication, and left to itself its
    GCS, raylet, workers and runtime-env agent listen on every interface (`ss -ltnp`: *:PORT, and the machine's
    address). Ray binds its gRPC servers to 127.0.0.1 only when the node's address is the loopback, and turns a
    loopback `_node_ip_address` into the machine's address unless ENABLE_RAY_CLUSTER is off (as Ray has it on
    macOS and Windows); it is off only while Ray starts, so a later join of a real cluster is unchanged."""
    from ray._private import ray_constants

    cluster_mode = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        ray.init(num_cpus=available_cores(), object_store_memory=OBJECT_STORE_BYTES, _node_ip_address=LOOPBACK,
                 **options)
    except ValueError as e:
        if not str(e).startswith(JOINED_EXISTING):
            raise
        # Ray joined a cluster already running on this machine (`ray start`) and refuses the cores asked for it
        raise DigitrecError("a Ray cluster already runs on this machine",
                            expected="--cluster auto to use it, or `ray stop` before starting one here") from None
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = cluster_mode
    if ray.util.get_node_ip_address() != LOOPBACK:  # another Ray would have to be told differently
        ray.shutdown()
        raise DigitrecError(f"local Ray took the address {ray.util.get_node_ip_address()}, not {LOOPBACK}",
                            expected=f"Ray {ray.__version__} binding local Ray to the loopback ({INSTALL})")


def _describe(ray, where: str) -> str:
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    cpus = int(ray.cluster_resources().get("CPU", 0))
    return f"{where}: {len(nodes)} node{'s' * (len(nodes) != 1)}, {cpus} CPUs"


def _check_reachable(address: str) -> None:
    """A host:port that answers a TCP connection within CONNECT_TIMEOUT_S (Ray itself would retry for minutes)."""
    if address == "auto":
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise DigitrecError("not a cluster address", where=address, expected="HOST:PORT, e.g. 127.0.0.1:6379")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as e:
        raise DigitrecError(f"no Ray cluster answers there ({e.strerror or e.__class__.__name__})", where=address,
                            expected="a running head node (`ray start --head` prints its address)") from None


# Run in a child: Ray's client prints its retries on stderr from C++ and only gives up after its own timeouts.
_GCS_PROBE = """
import sys
from ray._raylet import InnerGcsClient
InnerGcsClient.standalone(sys.argv[1], None, int(sys.argv[2]))
"""


def _check_gcs(address: str) -> None:
    """A Ray GCS answers at `address` (its GetClusterId call, as `ray.init` makes first), within
    GCS_CHECK_TIMEOUT_S: an open port that is something else (a web server) is refused in seconds, where
    `ray.init` would retry for more than ten minutes, warning all the while."""
    if address == "auto" or "://" in address:  # found by Ray itself, or Ray Client: not a GCS address
        return
    import subprocess

    env = {**os.environ, "RAY_gcs_rpc_server_connect_timeout_s": "2"}  # Ray's own wait is 5 s, twice over
    try:
        answered = subprocess.run([sys.executable, "-c", _GCS_PROBE, address, "4000"], env=env,
                                  timeout=GCS_CHECK_TIMEOUT_S, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL).returncode == 0
    except subprocess.TimeoutExpired:
        answered = False
    if not answered:
        raise DigitrecError("something answers there, but not a Ray cluster (no Ray GCS)", where=address,
                            expected="the address `ray start --head` printed, e.g. 192.168.1.10:6379")


def _quiet_ray_data() -> None:
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # digitrec shows one bar of its own: pictures done, pictures a second
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)


def shutdown() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()


@contextlib.contextmanager
def connected(address: str | None, say: Callable[[str], None] | None = None):
    """Ray connected for a block and shut down after it when this process started it."""
    started_here = not require_ray().is_initialized()
    where = connect(address)
    if say:
        say(where)
    try:
        yield where
    finally:
        if started_here:
            shutdown()
