"""A real two-node Ray cluster on this machine (`ray.cluster_utils.Cluster`: a head and two worker nodes, each its
own raylet), whose worker node is removed in the middle of a job: the job still finishes, every picture answered
exactly once, and an ensemble whose trial lost its node retries it and is built. Slow (a minute): run in CI."""

import json

import numpy as np
import pytest
from test_cluster import _answers, _pictures

from digitrec.cluster import batch, connect, sweeps
from digitrec.inference import runs

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


@pytest.fixture
def two_nodes():
    pytest.importorskip("ray")
    import ray
    from ray.cluster_utils import Cluster

    # The head holds no CPU, so every batch and every trial runs on one of the two worker nodes.
    nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "object_store_memory": 200 * 2**20})
    workers = [nodes.add_node(num_cpus=1, object_store_memory=150 * 2**20) for _ in range(2)]
    nodes.wait_for_nodes()
    ray.init(address=nodes.address, logging_level="ERROR", log_to_driver=False)
    connect._quiet_ray_data()
    yield nodes, workers
    ray.shutdown()
    nodes.shutdown()


def test_a_batch_job_survives_losing_a_worker_node(two_nodes, tmp_path, monkeypatch):
    from digitrec.inference.batch import predict_files
    from digitrec.inference.engine import load_predictor

    nodes, workers = two_nodes
    monkeypatch.setattr(batch, "PART_ROWS", 50)  # many small parts: work is still queued when the node goes
    _pictures(tmp_path / "archive", 1500)
    removed = []

    def on_progress(done: int, total: int) -> None:
        if not removed and done >= 100:
            nodes.remove_node(workers[1])  # its raylet and its actors are killed, mid-job
            removed.append(done)

    result = batch.read_archive(str(tmp_path / "archive"), tmp_path / "out", on_progress=on_progress)
    assert removed and removed[0] < 1500, "the node was not removed mid-job"
    assert result.pictures == 1500 and result.errors == 0
    answers = _answers(tmp_path / "out")  # asserts no index twice
    assert len(answers) == 1500
    plain = {r.file: r.digit for r in predict_files(load_predictor(), tmp_path / "archive")}
    assert {f: row["digit"] for f, row in answers.items()} == plain


def test_an_ensemble_retries_the_trial_whose_node_was_removed(two_nodes, tmp_path, digits_dir):
    nodes, workers = two_nodes
    from digitrec.models.recipes import get_recipe

    removed, lines = [], []

    def say(line: str) -> None:
        lines.append(line)
        if not removed and "epoch 1 " in line:  # a trial is running on each worker node: one loses its node
            nodes.remove_node(workers[0])
            removed.append(line)

    recipe = get_recipe("fast", None).update(epochs=3)
    members = sweeps.train_members(recipe, str(digits_dir), tmp_path / "ens", 2, say=say)
    assert removed, "no node was removed"
    assert any("failed" in line for line in lines), "no trial lost its node"
    config = runs.make_ensemble(members, tmp_path / "ens")
    assert len(config.members) == 2
    for member in members:
        member_config = json.loads((member / "config.json").read_text())
        assert member_config["status"] == "finished" and member_config["epochs_done"] == 3
        assert [m.epoch for m in runs.read_metrics(member)] == [1, 2, 3]  # no finished epoch lost or repeated
    from digitrec.inference.engine import Predictor

    x = np.zeros((1, 28, 28), np.uint8)
    assert Predictor.load(tmp_path / "ens").probabilities(x).shape == (1, 10)


def test_the_command_joins_a_running_cluster_by_address_or_ray_address(two_nodes, tmp_path):
    """`--cluster ADDRESS`, and `--cluster` alone with RAY_ADDRESS set, join the running cluster (not a new
    local Ray): the command says so, and its pictures are read on the cluster's two worker nodes."""
    import os
    import subprocess
    import sys

    nodes, _ = two_nodes
    _pictures(tmp_path / "archive", 60)
    for how, extra, env in (("address", [nodes.address], {}), ("RAY_ADDRESS", [], {"RAY_ADDRESS": nodes.address})):
        out = tmp_path / f"out-{how}"
        result = subprocess.run(
            [sys.executable, "-m", "digitrec", "predict", str(tmp_path / "archive"), "--cluster", *extra,
             "--out", str(out), "--quiet"], capture_output=True, text=True, timeout=300, env={**os.environ, **env})
        assert result.returncode == 0, result.stderr
        assert f"Ray cluster at {nodes.address}: 3 nodes, 2 CPUs" in result.stderr
        assert len(_answers(out)) == 60
