"""Smoke test of the partition benchmark: it runs end to end at 100,000 rows and reports figures.

No time is asserted (the machine is shared); the figures must exist and be positive, the
reconcile check must have passed, and the references must have run on the stated sample.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest_assets_tests.support.bench import run_benchmark

KEYS = (
    "rows",
    "end_to_end_rows_per_s",
    "load_rows_per_s",
    "copy_rows_per_s",
    "to_sql_rows_per_s",
    "dlt_rows_per_s",
    "peak_rss_mb",
    "load_vs_copy",
    "end_to_end_vs_copy",
    "end_to_end_vs_dlt",
    "process_seconds",
    "sling_seconds",
    "dlt_arrow_seconds",
    "process_vs_sling",
)


@pytest.mark.slow
def test_benchmark_reports_every_figure(
    warehouse_url: str, dagster_pg_url: str, tmp_path: Path
) -> None:
    result, stdout = run_benchmark(
        "partition_bench.py",
        ["--rows", "100000", "--sample", "20000"],
        warehouse_url,
        dagster_pg_url,
        tmp_path / "bench.json",
    )
    for key in KEYS:
        assert isinstance(result[key], int | float) and result[key] > 0, (key, result.get(key))
    assert result["rows"] == 100_000
    assert result["reference_sample_rows"] == 20_000
    assert result["check_passed"] is True
    assert "plain COPY" in stdout and "on 20,000 rows" in stdout
    assert "Sling's time" in stdout
    assert result["standin_prerendered"] is True and result["standin_render_seconds"] > 0
