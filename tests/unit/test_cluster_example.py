"""`make cluster` (examples/cluster.py) and `make run` in one checkout: each has its own store and
so its own rotation schedule, so each must have its own keys folder (issue 21 item 11)."""
from __future__ import annotations

from pathlib import Path

import pytest

from examples import cluster
from tokensrv.config import load_settings


@pytest.mark.parametrize("store", cluster.STORES)
def test_the_cluster_rotates_a_keys_folder_of_its_own(store: str):
    keys_dir = Path(cluster.tokensrv_env(store, 8081)["TOKENSRV_KEYS_DIR"])
    make_run_keys = (cluster.ROOT / load_settings({}).keys_dir).resolve()  # `make run`: the default, from the checkout
    assert keys_dir.resolve() != make_run_keys
    assert keys_dir.is_relative_to(cluster.STATE)  # with the rest of the cluster's state, ignored by git
    # every instance and every CLI command against the cluster uses the same folder
    keys_dirs = {cluster.tokensrv_env(store, port)["TOKENSRV_KEYS_DIR"] for port in cluster.TOKENSRV_PORTS}
    assert keys_dirs == {str(keys_dir)}
    assert cluster.tokensrv_env(store)["TOKENSRV_KEYS_DIR"] == str(keys_dir)
