"""Smoke test of the backfill benchmark: a few small years backfilled through ``dagster dev``'s
GraphQL ``launchPartitionBackfill`` (two years per run) and loaded by Sling, every year checked
by the benchmark.

No time is asserted (the machine is shared); the benchmark itself fails when a year's rows or
its ledger row are missing, or when Sling cannot run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest_assets_tests.support.bench import run_benchmark


@pytest.mark.slow
def test_a_small_backfill_and_sling_load_every_year(
    warehouse_url: str, dagster_pg_url: str, tmp_path: Path
) -> None:
    result, stdout = run_benchmark(
        "backfill_bench.py",
        ["--years", "3", "--rows", "500", "--years-per-run", "2"],
        warehouse_url,
        dagster_pg_url,
        tmp_path / "backfill.json",
    )
    assert result["years"] == 3 and result["rows_per_year"] == 500
    assert result["runs"] == 2  # years_per_run 2: two years, then one
    for key in ("sling_seconds", "backfill_seconds", "backfill_vs_sling", "dagster_dev_up_seconds"):
        assert result[key] > 0, key
    assert "ingest_assets backfill" in stdout and "x Sling's time" in stdout
