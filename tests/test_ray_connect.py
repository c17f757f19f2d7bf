"""Ray's own sockets and addresses: local Ray listens on the loopback only (Ray has no authentication), and a
`--cluster ADDRESS` where something other than Ray answers is refused in one line within 30 s."""

import http.server
import ipaddress
import threading
import time

import pytest
from test_cli import assert_refused, run_cli

from digitrec.cluster import connect

pytestmark = pytest.mark.cluster


def _ray():
    try:
        import ray
    except ImportError:
        pytest.skip("Ray is not installed (pip install 'digitrec[cluster]')")
    return ray


def _listening(process) -> list[tuple[str, str, int]]:
    """(process name, address, port) of every TCP or UDP socket `process` and its descendants listen on."""
    import psutil  # Ray carries its own copy, importable once Ray is

    found = []
    for p in [process, *process.children(recursive=True)]:
        try:
            for c in p.net_connections(kind="inet"):
                if c.status == psutil.CONN_LISTEN or (c.status == psutil.CONN_NONE and c.laddr):
                    found.append((p.name(), c.laddr.ip, c.laddr.port))
        except psutil.NoSuchProcess:
            continue
    return found


def _loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip.split("%")[0])
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def test_local_ray_listens_on_the_loopback_only():
    ray = _ray()
    import psutil

    if ray.is_initialized():
        ray.shutdown()
    connect.connect(None)
    try:
        @ray.remote
        def ping() -> int:
            return 1

        assert sum(ray.get([ping.remote() for _ in range(2)])) == 2  # workers started, their servers too
        sockets = _listening(psutil.Process())
        names = {name for name, _, _ in sockets}
        assert "gcs_server" in names and "raylet" in names, sockets
        assert [s for s in sockets if not _loopback(s[1])] == []
        connect._check_gcs(ray.get_runtime_context().gcs_address)  # a live GCS passes the check
    finally:
        connect.shutdown()


class _Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"not Ray")

    def log_message(self, *args):
        pass


def test_a_port_where_something_else_answers_is_one_line_within_30_seconds(tmp_path):
    _ray()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    address = f"127.0.0.1:{server.server_address[1]}"
    try:
        start = time.monotonic()
        result = run_cli("predict", "examples", "--cluster", address, "--out", str(tmp_path / "o"))
        took = time.monotonic() - start
    finally:
        server.shutdown()
        server.server_close()
    assert_refused(result, address, "not a Ray cluster")
    assert took < 30, took
    assert not (tmp_path / "o").exists()


def test_a_ray_already_running_here_is_one_line_not_a_traceback(monkeypatch):
    """With a cluster started by `ray start` on this machine, `ray.init` joins it and refuses the cores digitrec
    asks for with a ValueError: the user gets one line saying what to do."""
    ray = _ray()
    from digitrec.core.errors import DigitrecError

    def joins_and_refuses(**options):
        raise ValueError("When connecting to an existing cluster, num_cpus and num_gpus must not be provided.")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", joins_and_refuses)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    from ray._private import ray_constants

    cluster_mode = ray_constants.ENABLE_RAY_CLUSTER
    with pytest.raises(DigitrecError, match="a Ray cluster already runs on this machine") as raised:
        connect.connect(None)
    assert "--cluster auto" in str(raised.value.expected)
    assert cluster_mode == ray_constants.ENABLE_RAY_CLUSTER  # Ray's own switch put back

    def fails_otherwise(**options):
        raise ValueError("The requested object store memory size is greater than the total available memory.")

    monkeypatch.setattr(ray, "init", fails_otherwise)  # any other refusal is not said to be a running cluster
    with pytest.raises(ValueError, match="object store memory"):
        connect.connect(None)
