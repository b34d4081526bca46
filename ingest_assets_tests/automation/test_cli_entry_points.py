"""The sensor and a dataset's job through Dagster's own CLI, the code-server path the daemon uses.

``dagster sensor preview`` loads the definitions in a code server and evaluates a tick there,
as the daemon does; ``dagster asset materialize`` is the CI command. Both run as subprocesses
against the Quick Stats stand-in; what they record is read back from the instance.
"""

from __future__ import annotations

import dagster as dg
import pytest

from ingest_assets.dataset import RECONCILE_CHECK
from ingest_assets.standin.nass_data import NassDataset
from ingest_assets.standin.nass_server import NassStandIn
from ingest_assets_tests.support.pipeline import PROJECT, cli_env, run_dagster

CATALOG = """datasets:
  nass_cli:
    source: nass
    table: facts_data
    start_year: 2019
    end_year: 2021
    query: {source_desc: SURVEY, sector_desc: CROPS, agg_level_desc: COUNTY}
"""


@pytest.fixture(scope="module")
def standin():
    with NassStandIn(NassDataset(records_per_year={2019: 400, 2020: 250})) as server:
        yield server


@pytest.fixture
def env(standin, warehouse_url, dagster_pg_url, tmp_path):
    """The CLI's environment on the shipped catalog; a test may point it at ``CATALOG``."""
    shipped = (PROJECT / "datasets.yaml").read_text()
    keys = {"NASS_API_KEY": standin.api_key, "NASS_BASE_URL": standin.base_url}
    return cli_env(tmp_path, shipped, dagster_pg_url, warehouse_url, **keys)


def test_sensor_preview_of_a_shipped_dataset_ticks_against_the_standin(env, standin):
    done = run_dagster(env, "sensor", "preview", "nass_crops_county_new_data")
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    # The first tick (no cursor) records a baseline from the stand-in's counts: no run.
    assert "nass_crops_county: no change in" in output, output[-3000:]
    assert standin.stats.total_requests > 0
    assert standin.api_key not in output


def test_the_ci_command_records_the_check_for_its_year_and_the_tables_rows(
    env, tmp_path, monkeypatch
):
    (tmp_path / "datasets.yaml").write_text(CATALOG)
    env["INGEST_DATASETS"] = str(tmp_path / "datasets.yaml")
    for year in ("2019", "2020"):
        args = ("asset", "materialize", "--select", "key:nass_cli/raw_pages+", "--partition")
        done = run_dagster(env, *args, year)
        assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]

    monkeypatch.setenv("DAGSTER_PG_URL", env["DAGSTER_PG_URL"])
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        key = dg.AssetKey(["nass_cli", "facts"])
        checks = instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(key, RECONCILE_CHECK), limit=10
        )
        # A partitioned run also leaves a planned-only record per check; the evaluations count.
        evaluated = [c for c in checks if c.status.value != "PLANNED"]
        evaluations = [c.event.dagster_event.asset_check_evaluation_data for c in evaluated]
        assert sorted((e.metadata["year"].value, e.passed) for e in evaluations) == [
            (2019, True),
            (2020, True),
        ]
        latest = instance.get_latest_materialization_event(key).asset_materialization
    assert latest.partition == "2020"
    metadata = {k: v.value for k, v in latest.metadata.items()}
    assert metadata["rows_in_year"] == 250
    assert metadata["rows_in_table"] == metadata["dagster/row_count"] == 650
