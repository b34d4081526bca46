"""Smoke test of the files benchmark: every peer and both ingest_assets executors run as whole
processes on a small typed gzip CSV and load every row; the floor (Dagster's imports alone) is
timed beside them.

No time is asserted (the machine is shared). Nothing is skipped: a peer that cannot run (Sling's
binary missing, dlt failing) fails the benchmark, and with it this test, naming the tool.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.peers import IMPORT_FLOOR, TOOLS
from ingest_assets_tests.support.bench import run_benchmark


@pytest.mark.slow
def test_every_peer_loads_the_year_as_a_whole_process(
    warehouse_url: str, dagster_pg_url: str, tmp_path: Path
) -> None:
    results, stdout = run_benchmark(
        "peers.py",
        ["--rows", "3000", "--dict-rows", "1000"],
        warehouse_url,
        dagster_pg_url,
        tmp_path / "peers.json",
    )
    size = results["sizes"]["3000"]
    assert set(size["runs"]) == {*TOOLS, IMPORT_FLOOR} and len(TOOLS) == 6
    for tool, runs in size["runs"].items():
        expected = {IMPORT_FLOOR: 0, "dlt, defaults (dicts)": 1_000}.get(tool, 3_000)
        assert [run["rows"] for run in runs] == [expected], tool
        assert runs[0]["seconds"] > 0, tool
    for executor in ("in-process", "multiprocess"):
        stages = size["runs"][f"ingest_assets ({executor})"][0]["stage_seconds"]
        assert set(stages) == {"raw_pages", "cleaned", "facts"} and min(stages.values()) > 0
    assert "Sling" in stdout and f"{IMPORT_FLOOR} = " in stdout
