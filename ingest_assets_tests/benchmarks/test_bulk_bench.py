"""Smoke test of the bulk-file benchmark: a small multi-year file loaded whole, every figure.

No time is asserted (the machine is shared). The figures must exist and be positive, every
process must have a peak, and the file must have been read once: one GET at the stand-in,
serving exactly its bytes (the benchmark itself fails if a year's rows or ledger row differ
from the pass's count).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest_assets_tests.support.bench import run_benchmark

SECONDS = ("a_one_pass_seconds", "b_plain_copy_seconds", "c_whole_history_seconds")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("extra", "year_processes"), [((), {"2024", "2025"}), (("--one-run",), {"2024...2025"})]
)
def test_benchmark_reports_every_figure_and_reads_the_file_once(
    warehouse_url: str,
    dagster_pg_url: str,
    tmp_path: Path,
    extra: tuple[str, ...],
    year_processes: set[str],
) -> None:
    result, stdout = run_benchmark(
        "bulk_bench.py",
        ["--rows", "20000", "--years", "2", *extra],
        warehouse_url,
        dagster_pg_url,
        tmp_path / "bench.json",
    )
    for key in (*SECONDS, "c_over_a_plus_b", "max_peak_rss_mb"):
        assert isinstance(result[key], int | float) and result[key] > 0, (key, result.get(key))
    assert result["rows"] == 20_000 and result["rows_per_year"] == {"2024": 10_000, "2025": 10_000}
    assert set(result["peak_rss_mb"]) == {"reference pass", "bulk_file", *year_processes}
    assert all(mb > 0 for mb in result["peak_rss_mb"].values())
    assert (result["file_gets"], result["file_downloads"]) == (1, 1)
    assert result["file_bytes_served"] == result["file_bytes"]
    assert {"bulk_file", "raw_pages", "cleaned", "facts"} <= set(result["step_seconds"])
    assert "c / (a + b)" in stdout and "read 1 time(s): 1 GET(s)" in stdout
