"""Run by tests/test_cluster.py in a fresh process: a 2-node Ray cluster on this machine, one sweep on it.

    python tests/cluster_sweep.py SPEC CACHE_DIR    # prints the sweep's result as JSON on the last line
"""

import json
import sys
from pathlib import Path

from ray.cluster_utils import Cluster

from sweeps.driver import run_sweep
from sweeps.spec import load_spec


def main(spec_path: str, cache_dir: str) -> None:
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "object_store_memory": 200 * 2**20})
    cluster.add_node(num_cpus=1, object_store_memory=200 * 2**20)
    try:
        spec = load_spec(spec_path)
        result = run_sweep(spec, Path(spec_path).read_text(), smoke=True, address=cluster.address,
                           cache_dir=cache_dir)
        print(json.dumps({"finished": result.finished, "failed": result.failed}))
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    main(*sys.argv[1:])
