"""A 20-year backfill launched as the UI launches it, against `dagster dev` and the stand-in.

The webserver's ``launchPartitionBackfill`` mutation (what the Materialize → Launch backfill
dialog sends) creates the backfill; the daemon turns it into one run per year under the
project's own ``dagster.yaml`` (4 runs at most, pool limit 2 per API host). The stand-in answers
slowly enough that overlapping requests would show in its peak concurrency.
"""

import os
import time

import psycopg
import pytest

from ingest_assets.standin.nass_data import NassDataset
from ingest_assets.standin.nass_server import NassStandIn
from ingest_assets_tests.conftest import create_database
from ingest_assets_tests.support.graphql import (
    BACKFILL_DONE,
    BACKFILL_STATUS,
    LAUNCH_BACKFILL,
    graphql,
    wait_for_code,
)
from ingest_assets_tests.ui.dagster_dev import dagster_dev

YEARS = [str(y) for y in range(2000, 2020)]
POOL_LIMIT = 2  # dagster.yaml: concurrency.pools.default_limit
CATALOG = """datasets:
  nass_bf:
    source: nass
    table: facts_data
    start_year: 2000
    end_year: 2019
    query: {source_desc: SURVEY, sector_desc: CROPS, agg_level_desc: COUNTY}
"""


@pytest.mark.slow
def test_a_20_year_backfill_from_the_ui_respects_the_pool(pg_admin_url, warehouse_url, tmp_path):
    dataset = NassDataset(records_per_year=dict.fromkeys(range(2000, 2020), 300))
    with NassStandIn(dataset, latency=3.0) as standin:
        (tmp_path / "datasets.yaml").write_text(CATALOG)
        env = {
            **os.environ,
            "DAGSTER_PG_URL": create_database(pg_admin_url, "dagster_bf"),
            "DATABASE_URL": warehouse_url,
            "INGEST_DATASETS": str(tmp_path / "datasets.yaml"),
            "INGEST_STAGING": str(tmp_path / "staging"),
            "NASS_API_KEY": standin.api_key,
            "NASS_BASE_URL": standin.base_url,
            "NASS_MIN_INTERVAL_SECONDS": "0",
            "INGEST_EXECUTOR": "multiprocess",  # Dagster's default: run config picks in_process
        }
        with dagster_dev(env, tmp_path / "dagster_home") as url:
            wait_for_code(url)
            standin.reset_stats()
            params = {
                "partitionNames": YEARS,
                "assetSelection": [
                    {"path": ["nass_bf", step]} for step in ("raw_pages", "cleaned", "facts")
                ],
                "fromFailure": False,
                "tags": [],
                # Steps of a year run one after the other; in one process they skip three
                # process start-ups per run (the test's time budget), pools apply the same.
                "runConfigData": {"execution": {"config": {"in_process": {}}}},
            }
            launched = graphql(url, LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
            assert launched["__typename"] == "LaunchBackfillSuccess", launched
            backfill = launched["backfillId"]
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                data = graphql(url, BACKFILL_STATUS, {"id": backfill})
                if data["partitionBackfillOrError"]["status"] in BACKFILL_DONE:
                    break
                time.sleep(2)
            status = data["partitionBackfillOrError"]["status"]
            log = (tmp_path / "dagster_home" / "dagster_dev.log").read_text(errors="replace")
            assert status in ("COMPLETED", "COMPLETED_SUCCESS"), (status, log[-3000:])

    with psycopg.connect(warehouse_url) as conn:
        loaded = conn.execute("SELECT year, count(*) FROM facts_data GROUP BY year").fetchall()
        ledger = conn.execute(
            "SELECT year, status, run_id FROM ingest_meta.load_ledger ORDER BY year"
        ).fetchall()
    assert sorted(loaded) == [(int(y), 300) for y in YEARS]
    assert [(str(year), status) for year, status, _ in ledger] == [(y, "loaded") for y in YEARS]
    assert len({run_id for _, _, run_id in ledger}) == len(YEARS)  # one run per year
    assert standin.stats.requests_by_endpoint["api_GET"] == 20
    peak = standin.stats.peak_concurrency
    print(f"20-year backfill: peak concurrent API requests {peak} (pool limit {POOL_LIMIT})")
    assert 1 <= peak <= POOL_LIMIT
