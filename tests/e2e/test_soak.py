"""The soak script (scripts/soak.py) for one minute: mixed load with a key rotation and a Valkey
restart in the middle; every invariant holds (zero 500s, zero valid tokens rejected, zero revoked
tokens accepted after propagation, no refresh token accepted twice). `make soak` runs 30 minutes."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "soak.py"


def test_soak_one_minute_holds_every_invariant() -> None:
    result = subprocess.run([sys.executable, str(SCRIPT), "--duration", "60"], check=False, capture_output=True,
                            text=True, timeout=300, cwd=SCRIPT.parents[1])
    print(result.stdout)  # the summary, in the test report
    assert result.returncode == 0, result.stdout + result.stderr
    assert "invariant violations: 0" in result.stdout
    assert "key rotations: 1" in result.stdout and "Valkey restarts: 1" in result.stdout
    assert " 500 " not in result.stdout
