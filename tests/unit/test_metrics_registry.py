"""The server's metrics are made at run time on a registry of their own (issue 22 item 6): importing
tokensrv creates no metric, and their storage (memory, or files shared by workers) follows
PROMETHEUS_MULTIPROC_DIR as it is when they are made, whatever was imported before."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# every module of the package (so the test follows modules that move), then the events module
IMPORT_ALL = ("import importlib, pkgutil, tokensrv\n"
              "for found in pkgutil.walk_packages(tokensrv.__path__, 'tokensrv.'):\n"
              "    if not found.name.endswith('__main__'): importlib.import_module(found.name)\n"
              "events = next(m for n, m in __import__('sys').modules.items() if n.endswith('.events') "
              "and hasattr(m, 'login_failed'))\n")


def run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_importing_the_server_creates_no_metric():
    names = json.loads(run(
        IMPORT_ALL + "import json\n"
        "from prometheus_client import REGISTRY\n"
        "print(json.dumps(sorted(m.name for m in REGISTRY.collect())))"))
    assert [name for name in names if name.startswith("tokensrv")] == []


def test_the_metrics_folder_may_be_set_after_every_import(tmp_path: Path):
    """`serve --workers N` sets the folder in cli.main; an import of the server or of
    prometheus-client before that no longer sends the workers' metrics to memory."""
    folder = tmp_path / "metrics"
    folder.mkdir()
    run(IMPORT_ALL + "import os\n"
        f"os.environ['PROMETHEUS_MULTIPROC_DIR'] = {str(folder)!r}\n"
        "events.login_failed('192.0.2.1')\n")
    assert [p.name for p in folder.iterdir() if p.name.startswith("counter_")]
    samples = run(
        "from prometheus_client import CollectorRegistry\n"
        "from prometheus_client.multiprocess import MultiProcessCollector\n"
        "registry = CollectorRegistry()\n"
        f"MultiProcessCollector(registry, path={str(folder)!r})\n"
        "print(registry.get_sample_value('tokensrv_login_failures_total'))")
    assert float(samples) == 1.0
