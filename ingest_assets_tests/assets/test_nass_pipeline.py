"""A Quick Stats dataset end to end: stand-in API over HTTP → staged pages → Parquet → facts."""

from pathlib import Path

import dagster as dg
import psycopg
import pytest

from ingest_assets.dataset import RECONCILE_CHECK, dataset_assets
from ingest_assets.definitions import build_resources
from ingest_assets.kinds.nass.cleaner import clean_records
from ingest_assets.kinds.nass.config import NassDatasetConfig
from ingest_assets.kinds.nass.source import NassApi
from ingest_assets.standin.nass_data import NassDataset
from ingest_assets.standin.nass_server import NassStandIn
from ingest_assets_tests.support.pipeline import cli_env, run_dagster

PROJECT = Path(__file__).resolve().parents[2]
QUERY = {"source_desc": "SURVEY", "sector_desc": "CROPS", "agg_level_desc": "COUNTY"}
CONFIG = NassDatasetConfig(
    name="nass_t", source="nass", table="facts_data", start_year=2018, query=QUERY
)
BIG_YEAR_RECORDS = 120_000


@pytest.fixture(scope="module")
def standin():
    dataset = NassDataset(records_per_year={2019: 1_500, 2020: BIG_YEAR_RECORDS, 2021: 900})
    with NassStandIn(dataset) as server:
        yield server


@pytest.fixture
def resources(standin, warehouse_url, tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", warehouse_url)
    monkeypatch.setenv("INGEST_STAGING", str(tmp_path / "staging"))
    monkeypatch.setenv("NASS_API_KEY", standin.api_key)
    monkeypatch.setenv("NASS_BASE_URL", standin.base_url)
    standin.reset_stats()
    return build_resources()


def materialize(instance, resources, year, config=CONFIG, **kwargs):
    return dg.materialize(
        dataset_assets(config),
        partition_key=str(year),
        resources=resources,
        instance=instance,
        **kwargs,
    )


def table_rows(url: str, year: int) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT state_alpha, county_code, commodity_desc, short_desc, domaincat_desc, "
            "value, value_code, cv_pct, cv_code, load_time FROM facts_data WHERE year = %s "
            "ORDER BY 1, 2, 3, 4, 5",
            (year,),
        ).fetchall()


def standin_rows(standin: NassStandIn, year: int) -> list[tuple]:
    records = list(standin.dataset.records({**QUERY, "year": year}))
    table = clean_records(records, year, "expected")
    columns = ("state_alpha", "county_code", "commodity_desc", "short_desc", "domaincat_desc")
    columns += ("value", "value_code", "cv_pct", "cv_code", "load_time")
    return sorted(tuple(row[c] for c in columns) for row in table.to_pylist())


def test_a_year_lands_with_checks_passing(instance, resources, standin, warehouse_url):
    result = materialize(instance, resources, 2019)
    assert result.success
    [check] = [c for c in result.get_asset_check_evaluations() if c.check_name == RECONCILE_CHECK]
    assert check.check_name == RECONCILE_CHECK and check.passed
    figures = {k: v.value for k, v in check.metadata.items()}
    assert figures == {
        "year": 2019,
        "source_count": 1_500,
        "staged_rows": 1_500,
        "cleaned_rows": 1_500,
        "loaded_rows": 1_500,
    }
    assert table_rows(warehouse_url, 2019) == standin_rows(standin, 2019)
    facts = result.asset_materializations_for_node("nass_t__facts")[0]
    assert facts.metadata["dagster/row_count"].value == 1_500
    raw = result.asset_materializations_for_node("nass_t__raw_pages")[0]
    query = raw.metadata["source_query"].value
    assert query["params"]["key"] == "***"
    assert standin.api_key not in str(raw.metadata)
    assert "| slice |" in raw.metadata["slice_plan"].value


def test_a_year_over_the_limit_is_split_and_lands_exactly(
    instance, resources, standin, warehouse_url
):
    result = materialize(instance, resources, 2020)
    assert result.success
    assert standin.stats.max_rows_served <= 50_000
    assert standin.stats.requests_by_endpoint["api_GET"] >= 3
    rows = table_rows(warehouse_url, 2020)
    assert len(rows) == BIG_YEAR_RECORDS
    assert rows == standin_rows(standin, 2020)


def test_materializing_again_leaves_the_table_identical(
    instance, resources, standin, warehouse_url
):
    assert materialize(instance, resources, 2021).success
    first = table_rows(warehouse_url, 2021)
    assert materialize(instance, resources, 2021).success
    assert table_rows(warehouse_url, 2021) == first
    with psycopg.connect(warehouse_url) as conn:
        ledger = conn.execute(
            "SELECT status, rows_loaded FROM ingest_meta.load_ledger WHERE year = 2021"
        ).fetchall()
    assert ledger == [("loaded", 900), ("loaded", 900)]


def test_staged_and_loaded_counts_that_disagree_fail_the_check(
    instance, resources, standin, warehouse_url
):
    assert materialize(instance, resources, 2021).success
    before = table_rows(warehouse_url, 2021)
    standin.inject("short:7", endpoint="api_GET")  # the API sends fewer rows than it counted
    result = materialize(instance, resources, 2021, raise_on_error=False)
    assert not result.success
    [check] = [c for c in result.get_asset_check_evaluations() if c.check_name == RECONCILE_CHECK]
    assert not check.passed
    assert "source count 900" in check.description and "staged rows 893" in check.description
    assert "year 2021" in check.description
    assert table_rows(warehouse_url, 2021) == before


def test_a_wrong_key_fails_fast_without_leaking_it(instance, resources, standin):
    secret = "wrong-key-1234-5678-9012-345678901234"
    resources = {**resources, "nass_api": NassApi(api_key=secret, base_url=standin.base_url)}
    result = materialize(instance, resources, 2019, raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert "401" in failure.message and "NASS_API_KEY" in failure.message
    assert secret not in str(failure.to_string())
    assert standin.stats.requests_by_endpoint["get_counts"] == 1  # a 401 is not retried


def test_cli_materialize_as_ci_runs_it(standin, warehouse_url, dagster_pg_url, tmp_path):
    catalog = (
        "datasets:\n  nass_t:\n    source: nass\n    table: facts_data\n    start_year: 2018\n"
        "    query: {source_desc: SURVEY, sector_desc: CROPS, agg_level_desc: COUNTY}\n"
    )
    env = cli_env(
        tmp_path,
        catalog,
        dagster_pg_url,
        warehouse_url,
        NASS_API_KEY=standin.api_key,
        NASS_BASE_URL=standin.base_url,
    )
    done = run_dagster(
        env, "asset", "materialize", "--select", "key:nass_t/raw_pages+", "--partition", "2019"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # Run logs are at INFO (dagster.yaml): the year's outcome line, not Dagster's DEBUG events.
    assert "nass_t year 2019: 1,500 rows loaded, matching the source" in done.stderr + done.stdout
    assert len(table_rows(warehouse_url, 2019)) == 1_500
    assert standin.api_key not in done.stderr + done.stdout
