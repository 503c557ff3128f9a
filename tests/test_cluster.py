"""A 2-node Ray cluster simulated on this machine (docs/PLATFORM.md §9): trials are placed on both nodes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from sweeps import tracking as T

pytestmark = [pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SADeprecationWarning"), pytest.mark.timeout(300)]


def test_a_sweep_on_a_two_node_cluster_places_trials_on_both_nodes(tmp_path, cache_dir, spaces):
    spec = tmp_path / "cluster.yaml"
    spec.write_text(f"""name: cluster
base: smartwatch-cpu
seeds: [0, 1]
resources: {{workers_per_trial: 1, cpus_per_worker: 1}}
tracking: {{uri: "sqlite:///{tmp_path / 'mlflow.db'}", experiment: tests}}
storage: {tmp_path / 'ray'}
""")
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    script = Path(__file__).with_name("cluster_sweep.py")
    out = subprocess.run([sys.executable, str(script), str(spec), str(cache_dir)], capture_output=True, text=True,
                         timeout=280, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"finished": 2, "failed": []}

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = T.search_trials(client, client.get_experiment_by_name("tests").experiment_id, "cluster")
    assert {r.info.status for r in runs} == {"FINISHED"} and len(runs) == 2
    assert len({r.data.tags["unisweep.node"] for r in runs}) == 2  # one CPU per node: one trial on each
