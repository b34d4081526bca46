"""Smoke test of the files benchmark: every peer and both ingest_assets executors run as whole
processes on a small typed gzip CSV and load every row, and so does the command run from another
environment (`--user-env`).

No time is asserted (the machine is shared). Nothing is skipped: a peer that cannot run (Sling's
binary missing, dlt failing) fails the benchmark, and with it this test, naming the tool.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from benchmarks.peers import TOOLS, USER_INSTALL
from ingest_assets_tests.support.bench import run_benchmark


@pytest.mark.slow
def test_every_peer_loads_the_year_as_a_whole_process(
    warehouse_url: str, dagster_pg_url: str, tmp_path: Path
) -> None:
    results, stdout = run_benchmark(
        "peers.py",
        # the dev environment stands in for a user install: building one takes minutes
        ["--rows", "3000", "--dict-rows", "1000", "--user-env", sys.prefix],
        warehouse_url,
        dagster_pg_url,
        tmp_path / "peers.json",
    )
    size = results["sizes"]["3000"]
    assert set(size["runs"]) == {*TOOLS, USER_INSTALL} and len(TOOLS) == 6
    for tool, runs in size["runs"].items():
        expected = 1_000 if tool.startswith("dlt, defaults") else 3_000
        assert [run["rows"] for run in runs] == [expected], tool
        assert runs[0]["seconds"] > 0, tool
    for row in ("in-process", "multiprocess", "user install"):
        stages = size["runs"][f"ingest_assets ({row})"][0]["stage_seconds"]
        assert set(stages) == {"raw_pages", "cleaned", "facts"} and min(stages.values()) > 0
    assert "Sling" in stdout and f"{USER_INSTALL} = " in stdout
    assert results["user_env_has_pandas"] is True  # the dev extras hold pandas
