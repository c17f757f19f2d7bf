"""Batch reading on Ray against plain `digitrec predict`, on the same pictures (scripts/make_archive.py).

Runs, each as the real command in a child process, one after another with nothing else running:
- plain:     `digitrec predict ARCHIVE --json --out answers.json` (one process, onnxruntime on every core)
- local Ray: `digitrec predict ARCHIVE --cluster --out OUT` (Ray started inside the command)
- 1 node / 2 nodes: a cluster on this machine (a head with no CPU and 1 or 2 worker nodes of 1 CPU each,
  `ray.cluster_utils.Cluster`), joined with `--cluster ADDRESS`

and reports pictures per second, the ratio to plain, the peak resident memory of all the run's processes
together (every process in the command's tree and, for the clusters, the nodes' processes: sampled from /proc
every 0.2 s) and the largest single process, and agreement: the same digit as plain for every picture, each
picture exactly once in the Parquet output, and accuracy against the archive's hidden answers.

    DIGITREC_DATA=../shared/data/mnist python scripts/make_archive.py 20000 /tmp/archive
    python benchmarks/cluster.py /tmp/archive                # all four runs
    python benchmarks/cluster.py /tmp/archive --runs ray     # only local Ray (e.g. on a million pictures)
    python benchmarks/cluster.py /tmp/archive --sample 10000 # plain predict on a 10,000-picture sample only

Targets: local Ray throughput >= 70 % of plain predict, peak memory of all Ray processes < 3 GB,
every picture exactly once, answers identical to plain predict.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import machine_line, print_table

RUNS = ("plain", "ray", "1-node", "2-nodes")
MEMORY_TARGET = 3 * 2**30
RATIO_TARGET = 0.70


class MemorySampler:
    """The summed RSS of a set of process trees, sampled until stopped: its peak and the largest process."""

    def __init__(self, roots: list[int]):
        self.roots, self.peak, self.largest, self.largest_name = roots, 0, 0, ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            total = 0
            for _pid, name, rss in _tree(self.roots):
                total += rss
                if rss > self.largest:
                    self.largest, self.largest_name = rss, name
            self.peak = max(self.peak, total)
            self._stop.wait(0.2)


def _tree(roots: list[int]) -> list[tuple[int, str, int]]:
    """(pid, name, RSS bytes) of the roots and all their descendants, from /proc."""
    parents, info = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        rss = int(fields.get("VmRSS", "0 kB").split()[0]) * 1024
        parents[int(entry)] = int(fields.get("PPid", "0"))
        info[int(entry)] = (fields.get("Name", "?").strip(), rss)
    keep = set(roots)
    changed = True
    while changed:
        changed = False
        for pid, parent in parents.items():
            if parent in keep and pid not in keep:
                keep.add(pid)
                changed = True
    return [(pid, *info[pid]) for pid in keep if pid in info]


def run_command(args: list[str], extra_roots: list[int] = ()) -> tuple[float, MemorySampler, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "digitrec", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env)
    with MemorySampler([process.pid, *extra_roots]) as memory:
        out, err = process.communicate()
    seconds = time.perf_counter() - start
    if process.returncode not in (0, 2):
        sys.exit(f"{' '.join(args)} failed ({process.returncode}):\n{err[-3000:]}")
    return seconds, memory, out + err


def sample_folder(archive: Path, count: int, work: Path) -> Path:
    """The first `count` pictures of the archive (in its own order), linked into a folder of their own."""
    folder = work / "sample" / archive.name
    lines = (archive / ".answers.csv").read_text().splitlines()[1 : count + 1]
    for line in lines:
        name = line.split(",")[0]
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        os.symlink((archive / name).resolve(), folder / name)
    shutil.copy(archive / ".answers.csv", folder / ".answers.csv")
    return folder


def parquet_answers(out: Path) -> tuple[dict[str, int | None], int]:
    import pyarrow.parquet as pq

    table = pq.read_table(out, columns=["index", "file", "digit"])
    files = table["file"].to_pylist()
    return dict(zip(files, table["digit"].to_pylist(), strict=True)), table.num_rows - len(set(files))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("archive", type=Path)
    parser.add_argument("--runs", default=",".join(RUNS), help="which runs, comma-separated: " + ", ".join(RUNS))
    parser.add_argument("--sample", type=int, default=0,
                        help="plain predict reads only the first N pictures (its throughput is then per picture of "
                             "the sample); the Ray runs read the whole archive")
    parser.add_argument("--work", type=Path, help="folder for outputs (default: a temporary folder)")
    args = parser.parse_args()
    runs = args.runs.split(",")
    answers_file = args.archive / ".answers.csv"
    truth = {line.split(",")[0]: int(line.split(",")[1]) for line in answers_file.read_text().splitlines()[1:]}
    work = args.work or Path(tempfile.mkdtemp(prefix="digitrec-cluster-"))
    work.mkdir(parents=True, exist_ok=True)
    print(machine_line())
    print(f"archive: {args.archive} ({len(truth):,} pictures); work folder {work}")
    rows, plain_digits, plain_rate = [], None, None
    prefix = args.archive.name + "/"

    if "plain" in runs:
        source = sample_folder(args.archive, args.sample, work) if args.sample else args.archive
        n = args.sample or len(truth)
        out = work / "plain.json"
        out.unlink(missing_ok=True)
        seconds, memory, _ = run_command(["predict", str(source), "--json", "--out", str(out)])
        results = json.loads(out.read_text())
        plain_digits = {r["file"]: r["digit"] for r in results}
        plain_rate = n / seconds
        right = sum(plain_digits.get(prefix + f) == d for f, d in truth.items() if prefix + f in plain_digits)
        rows.append(_row("plain `digitrec predict` (1 process)", n, seconds, memory, plain_rate, plain_rate,
                         len(results) == n, "-", right / n))
        print(f"plain: {n:,} in {seconds:.1f} s", flush=True)

    for run in (r for r in runs if r != "plain"):
        out = work / f"{run}.parquet"
        shutil.rmtree(out, ignore_errors=True)
        command = ["predict", str(args.archive), "--cluster", "--out", str(out), "--quiet"]
        if run == "ray":
            seconds, memory, log = run_command(command)
            label = "`predict --cluster` (local Ray in the command, 2 CPUs)"
        else:
            seconds, memory, log, label = _on_cluster(run, command)
        digits, repeated = parquet_answers(out)
        once = repeated == 0 and len(digits) == len(truth)
        agree = "-"
        if plain_digits is not None:
            shared = [f for f in plain_digits if f in digits]
            same = sum(plain_digits[f] == digits[f] for f in shared)
            agree = "all" if same == len(shared) == len(plain_digits) else f"{same}/{len(plain_digits)}"
        right = sum(digits.get(prefix + f) == d for f, d in truth.items()) / len(truth)
        rate = len(truth) / seconds
        rows.append(_row(label, len(truth), seconds, memory, rate, plain_rate, once, agree, right))
        print(f"{run}: {len(truth):,} in {seconds:.1f} s", flush=True)
    print()
    print_table([{k: v for k, v in r.items() if not k.startswith("_")} for r in rows])
    ok = all(r["each once"] == "yes" for r in rows) and all(r["same digit as plain"] in ("-", "all") for r in rows)
    for r in rows:
        if r["run"].startswith("`predict --cluster` (local"):
            ok &= r["_peak"] < MEMORY_TARGET and (plain_rate is None or r["_rate"] / plain_rate >= RATIO_TARGET)
    print(f"\ntargets (local Ray >= {RATIO_TARGET:.0%} of plain, < 3 GB, each picture once, answers as plain): "
          f"{'met' if ok else 'NOT met'}")
    return 0 if ok else 1


def _on_cluster(run: str, command: list[str]):
    """A head with no CPU and 1 or 2 worker nodes of 1 CPU on this machine; the command joins it by address."""
    import ray
    from ray.cluster_utils import Cluster

    nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "object_store_memory": 300 * 2**20})
    for _ in range(1 if run == "1-node" else 2):
        nodes.add_node(num_cpus=1, object_store_memory=300 * 2**20)
    nodes.wait_for_nodes()
    roots = [os.getpid()]  # the nodes' processes are this script's children
    try:
        command = command[:3] + [nodes.address] + command[3:]
        seconds, memory, log = run_command(command, roots)
    finally:
        nodes.shutdown()
        if ray.is_initialized():
            ray.shutdown()
    return seconds, memory, log, f"`predict --cluster ADDRESS`, {run.replace('-', ' ')} of 1 CPU (head: 0 CPUs)"


def _row(label, n, seconds, memory, rate, plain_rate, once, agree, accuracy) -> dict:
    return {
        "run": label, "pictures": f"{n:,}", "seconds": f"{seconds:.1f}", "pictures/s": f"{rate:,.0f}",
        "ratio to plain": f"{rate / plain_rate:.2f}" if plain_rate else "-",
        "peak memory (all processes)": f"{memory.peak / 2**30:.2f} GB",
        "largest process": f"{memory.largest_name} {memory.largest / 2**20:.0f} MB",
        "each once": "yes" if once else "NO", "same digit as plain": agree, "accuracy": f"{accuracy:.4f}",
        "_peak": memory.peak, "_rate": rate,
    }


if __name__ == "__main__":
    sys.exit(main())
