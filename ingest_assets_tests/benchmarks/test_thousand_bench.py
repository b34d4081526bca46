"""Smoke test of the thousand-partition benchmark at 3 datasets x 3 years: one backfill of
every partition of three datasets on three API hosts (each its own pool), launched through
``dagster dev``'s GraphQL as the UI launches it, with the code location reloaded mid-backfill
and, once, its code server (``dagster code-server start`` and its ``dagster api grpc``) killed
with SIGKILL while a run executes, as a crash or a deploy's restart would.

No time is asserted (the machine is shared). What is asserted is what the 1,000-partition run
must show: every run succeeded (the one caught executing by the kill too), the backfill was
never cancelled or failed (before and after the reload and the kill), the code location came
back by itself, no pool ran more ``raw_pages`` steps at once than its limit, every dataset-year
is in the load ledger. Without ``DAGSTER_BACKFILL_RETRY_DEFINITION_CHANGED_ERROR`` (set by the
instance storage) the backfill fails at the kill, and without ``run_queue``'s launch retries
(``dagster.yaml``) the runs being launched then fail.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest_assets_tests.support.bench import run_benchmark


@pytest.mark.slow
def test_a_small_catalog_backfills_through_a_code_reload_and_a_code_server_kill(
    warehouse_url: str, dagster_pg_url: str, tmp_path: Path
) -> None:
    result, stdout = run_benchmark(
        "thousand_bench.py",
        [
            *("--datasets", "3", "--years", "3", "--rows", "200", "--repeat", "1"),
            *("--reload-every", "6", "--kill-code-server-every", "5", "--latency", "2"),
            *("--max-runs", "6", "--launch-threads", "3"),
        ],
        warehouse_url,
        dagster_pg_url,
        tmp_path / "thousand.json",
    )
    backfill = result["backfill"]
    assert result["partitions"] == 9
    assert backfill["finished"] and backfill["backfill_status"] == "COMPLETED_SUCCESS"
    assert backfill["runs_by_status"] == {"SUCCESS": 9}  # one run per dataset-year, none failed
    assert backfill["reloads"], "the code location was never reloaded during the backfill"
    assert all(r["backfill_status_after"] == "REQUESTED" for r in backfill["reloads"])
    assert set(backfill["statuses_seen"]) <= {"REQUESTED", "COMPLETED_SUCCESS"}
    assert len(backfill["code_server_kills"]) == 1, "the code server was not killed once"
    kill = backfill["code_server_kills"][0]
    assert kill["backfill_status_after"] == "REQUESTED"
    assert not kill["reloaded_by_operator"], "the code location did not come back by itself"
    assert kill["new_code_server_pid"] not in kill["killed_pids"]
    executing = kill["runs_in_flight"]["STARTED"]  # the kill waits for a run to execute
    assert kill["runs_in_flight_ended"]["STARTED"] == {"SUCCESS": len(executing)}
    pools = {"api_files", "api_127_0_0_2", "api_127_0_0_3"}
    assert set(backfill["raw_pages_steps_per_pool"]) == pools
    assert all(backfill["raw_pages_steps_per_pool"][p] == 3 for p in pools)
    for pool in pools:
        assert 1 <= backfill["peak_raw_pages_per_pool"][pool] <= backfill["pool_limits"][pool]
    assert backfill["ledger_loads"] == 9 and backfill["rows_loaded"] == 9 * 200
    assert backfill["problems"] == []
    assert result["definitions_load"]["assets"] == 9
    assert "problems: none" in stdout
