"""Running a benchmark script as CI does: a child process on the test's databases, its JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def run_benchmark(
    script: str, args: list[str], warehouse_url: str, dagster_pg_url: str, out: Path
) -> tuple[dict[str, Any], str]:
    """Run ``benchmarks/<script>`` with ``args``; (the JSON it wrote to ``out``, its stdout)."""
    env = {**os.environ, "DATABASE_URL": warehouse_url, "DAGSTER_PG_URL": dagster_pg_url}
    completed = subprocess.run(
        [sys.executable, f"benchmarks/{script}", *args, "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(out.read_text()), completed.stdout
