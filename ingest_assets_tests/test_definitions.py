"""The code location's process setup: the Arrow memory pool it chooses, and the choice it leaves
to an operator."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROBE = (
    "from ingest_assets.definitions import build_definitions; build_definitions(); "
    "import pyarrow as pa; print(pa.default_memory_pool().backend_name)"
)


def _pool_after_loading_definitions(**env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    completed = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return completed.stdout.strip().splitlines()[-1]


@pytest.mark.integration  # loads the definitions in a child process
def test_loading_the_definitions_switches_arrow_to_a_pool_that_returns_memory():
    assert _pool_after_loading_definitions() == "jemalloc"


@pytest.mark.integration
def test_an_operators_arrow_memory_pool_is_kept():
    assert _pool_after_loading_definitions(ARROW_DEFAULT_MEMORY_POOL="system") == "system"
