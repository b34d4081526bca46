"""The bulk-file kind end to end: stand-in listing and file over HTTP → one pass → year loads.

Both stand-ins serve the same ``NassDataset``, so the bulk path and the API path must load the
same table for the same query and year.
"""

from pathlib import Path

import dagster as dg
import psycopg
import pytest

from ingest_assets.dataset import (
    EMPTY_YEAR_CHECK,
    RECONCILE_CHECK,
    dataset_assets,
    dataset_definitions,
)
from ingest_assets.definitions import build_resources
from ingest_assets.kinds.nass.config import NassDatasetConfig
from ingest_assets.kinds.nass_bulk.config import NassBulkDatasetConfig
from ingest_assets.settings import Settings
from ingest_assets.standin.nass_bulk_server import NassBulkStandIn
from ingest_assets.standin.nass_data import NassDataset
from ingest_assets.standin.nass_server import NassStandIn
from ingest_assets_tests.support.pipeline import cli_env, run_dagster

PROJECT = Path(__file__).resolve().parents[3]
QUERY = {
    "agg_level_desc": "COUNTY",
    "state_alpha": ["IA", "IL", "NE"],
    "commodity_desc__NE": "HAY",
    "short_desc__NOT_LIKE": "PRICE",
}
YEARS = {2019: 1_500, 2020: 3_000, 2021: 900}
BULK = NassBulkDatasetConfig(
    name="crops_bulk",
    source="nass_bulk",
    table="facts_bulk",
    file="crops",
    start_year=2019,
    end_year=2021,
    query=QUERY,
)
API = NassDatasetConfig(
    name="crops_api",
    source="nass",
    table="facts_api",
    start_year=2019,
    end_year=2021,
    query=QUERY,
)


BULK_SENSOR = "crops_bulk_bulk_file_sensor"


@pytest.fixture
def dataset():
    return NassDataset(records_per_year=YEARS, default_records=0)


@pytest.fixture
def bulk(dataset):
    with NassBulkStandIn(dataset) as server:
        yield server


@pytest.fixture
def resources(bulk, warehouse_url, tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", warehouse_url)
    monkeypatch.setenv("INGEST_STAGING", str(tmp_path / "staging"))
    monkeypatch.setenv("NASS_BULK_URL", bulk.listing_url)
    monkeypatch.setenv("NASS_API_KEY", "unused-key")
    return build_resources()


def materialize(instance, resources, year, config=BULK, **kwargs):
    return dg.materialize(
        dataset_assets(config),
        partition_key=str(year),
        resources=resources,
        instance=instance,
        **kwargs,
    )


def checksum(url: str, table: str, year: int) -> tuple[int, str]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "
            f"FROM {table} t WHERE year = %s",
            (year,),
        ).fetchone()


def expected_count(dataset: NassDataset, year: int) -> int:
    return dataset.count({**QUERY, "year": year})


def test_bulk_and_api_paths_load_identical_tables(
    instance, resources, dataset, bulk, warehouse_url, monkeypatch
):
    with NassStandIn(dataset) as api:
        monkeypatch.setenv("NASS_API_KEY", api.api_key)
        monkeypatch.setenv("NASS_BASE_URL", api.base_url)
        api_resources = build_resources(Settings())  # the environment as it is now
        assert dg.materialize(
            dataset_assets(API), partition_key="2020", resources=api_resources, instance=instance
        ).success
    result = materialize(instance, resources, 2020)
    assert result.success
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert set(checks) == {RECONCILE_CHECK, EMPTY_YEAR_CHECK}
    assert checks[RECONCILE_CHECK].passed and checks[EMPTY_YEAR_CHECK].passed
    rows, digest = checksum(warehouse_url, "facts_bulk", 2020)
    assert rows == expected_count(dataset, 2020) > 0
    assert (rows, digest) == checksum(warehouse_url, "facts_api", 2020)
    bulk_file = result.asset_materializations_for_node("crops_bulk__bulk_file")[0].metadata
    assert bulk_file["rows_read"].value == sum(YEARS.values())
    assert bulk_file["rows_kept_per_year"].value == {
        str(y): expected_count(dataset, y) for y in YEARS
    }
    assert bulk_file["file"].value == bulk.published.name
    assert bulk_file["bytes"].value == bulk.published.size


def test_several_years_read_the_file_once(instance, resources, dataset, bulk, warehouse_url):
    for year in YEARS:
        result = materialize(instance, resources, year)
        assert result.success
        assert checksum(warehouse_url, "facts_bulk", year)[0] == expected_count(dataset, year)
    assert bulk.stats.downloads == 1
    with psycopg.connect(warehouse_url) as conn:
        ledger = conn.execute(
            "SELECT year, status, source_count, rows_loaded, source_version "
            "FROM ingest_meta.load_ledger ORDER BY year"
        ).fetchall()
    version = f"{bulk.published.name}@{bulk.published.etag}"
    assert ledger == [
        (y, "loaded", expected_count(dataset, y), expected_count(dataset, y), version)
        for y in YEARS
    ]


def test_a_new_file_is_split_again(instance, resources, dataset, bulk):
    assert materialize(instance, resources, 2019).success
    dataset.revise(2021)
    bulk.publish("20261203")
    result = materialize(instance, resources, 2019)
    assert result.success
    meta = result.asset_materializations_for_node("crops_bulk__bulk_file")[0].metadata
    assert meta["file"].value == "qs.crops_20261203.txt.gz" and not meta["reused"].value
    assert bulk.stats.downloads == 2


def test_a_cut_connection_resumes_where_it_stopped(instance, resources, bulk, warehouse_url):
    bulk.faults.add("cut", 1, "file")
    result = materialize(instance, resources, 2021)
    assert result.success
    size = bulk.published.size
    assert bulk.stats.downloads == 1
    [(first_start, _), (resumed_at, last)] = bulk.stats.ranges
    assert first_start == 0 and 0 < resumed_at < size and last == size - 1
    assert bulk.stats.bytes_served == size  # nothing that arrived was sent twice
    meta = result.asset_materializations_for_node("crops_bulk__bulk_file")[0].metadata
    assert meta["resumes"].value == 1


def test_a_truncated_file_fails_clearly_and_loads_nothing(
    instance, resources, bulk, warehouse_url, tmp_path
):
    bulk.publish("20261203", truncated=True)
    result = materialize(instance, resources, 2020, raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0]
    message = failure.step_failure_data.error.message
    assert "qs.crops_20261203.txt.gz" in message and "not a whole gzip" in message
    with psycopg.connect(warehouse_url) as conn:
        exists = conn.execute("SELECT to_regclass('public.facts_bulk')").fetchone()[0]
    assert exists is None
    root = tmp_path / "staging" / "bulk" / "crops_bulk"
    assert not list(root.glob("*/year=*"))
    assert not list(root.glob("download-*"))  # a retry or re-run must not trust the copy


def test_a_retried_pass_reads_what_arrived_from_disk(instance, resources, bulk, dataset):
    bulk.faults.add("cut", 6, "file")  # one cut more than an attempt resumes: the step fails
    result = materialize(instance, resources, 2021)
    assert result.success
    retried = [e.step_key for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert retried == ["crops_bulk__bulk_file"]
    size = bulk.published.size
    assert bulk.stats.downloads == 1 and bulk.stats.bytes_served == size  # nothing sent twice
    meta = result.asset_materializations_for_node("crops_bulk__bulk_file")[0].metadata
    assert 0 < meta["bytes_from_disk"].value < size
    assert meta["bytes_from_disk"].value + meta["bytes_downloaded"].value == size
    assert meta["rows_kept_per_year"].value["2021"] == expected_count(dataset, 2021)


def test_a_changed_query_splits_the_copy_again_without_a_download(instance, resources, bulk):
    assert materialize(instance, resources, 2020).success
    wider = {k: v for k, v in QUERY.items() if k != "short_desc__NOT_LIKE"}  # a year may grow
    result = materialize(instance, resources, 2020, config=BULK.model_copy(update={"query": wider}))
    assert result.success
    meta = result.asset_materializations_for_node("crops_bulk__bulk_file")[0].metadata
    assert not meta["reused"].value  # a new split, of the same file
    assert meta["bytes_from_disk"].value == bulk.published.size
    assert meta["bytes_downloaded"].value == 0
    assert bulk.stats.downloads == 1 and bulk.stats.bytes_served == bulk.published.size


def _tick(name, instance, resources, cursor=None):
    defs = dg.Definitions.merge(dataset_definitions(BULK), dg.Definitions(resources=resources))
    repository = defs.get_repository_def()
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources=resources, repository_def=repository
    )
    return repository.get_sensor_def(name).evaluate_tick(context)  # as the code server does


def test_a_new_daily_file_requests_only_the_years_whose_rows_changed(
    instance, resources, dataset, bulk
):
    bulk_file = [a for a in dataset_assets(BULK) if a.key.path[-1] == "bulk_file"]
    assert "no split yet" in _tick(BULK_SENSOR, instance, resources).skip_message
    assert dg.materialize(bulk_file, resources=resources, instance=instance).success
    baseline = _tick("crops_bulk_new_data", instance, resources)
    assert not baseline.run_requests
    assert "already split" in _tick(BULK_SENSOR, instance, resources).skip_message

    dataset.revise(2021)
    new = bulk.publish("20261203")
    [request] = _tick(BULK_SENSOR, instance, resources).run_requests
    assert request.run_key == f"{new.name}@{new.etag}"
    assert dg.materialize(bulk_file, resources=resources, instance=instance).success
    changed = _tick("crops_bulk_new_data", instance, resources, baseline.cursor)
    assert [r.partition_key for r in changed.run_requests] == ["2021"]
    assert bulk.stats.downloads == 2


def test_cli_materialize_backfills_years_from_one_download(
    bulk, dataset, warehouse_url, dagster_pg_url, tmp_path
):
    catalog = (
        "datasets:\n  crops_bulk:\n    source: nass_bulk\n    file: crops\n"
        "    table: facts_bulk\n    start_year: 2019\n    end_year: 2021\n"
        "    query: {agg_level_desc: COUNTY, state_alpha: [IA, IL, NE]}\n"
    )
    env = cli_env(tmp_path, catalog, dagster_pg_url, warehouse_url, NASS_BULK_URL=bulk.listing_url)
    runs = [("--select", "key:crops_bulk/bulk_file")] + [
        ("--select", "key:crops_bulk/raw_pages+", "--partition", str(year)) for year in YEARS
    ]
    for args in runs:
        done = run_dagster(env, "asset", "materialize", *args)
        assert done.returncode == 0, done.stderr[-3000:]  # a failed run exits non-zero
    filters = {"agg_level_desc": "COUNTY", "state_alpha": ["IA", "IL", "NE"]}
    for year in YEARS:
        rows, _ = checksum(warehouse_url, "facts_bulk", year)
        assert rows == dataset.count({**filters, "year": year}) > 0
    assert bulk.stats.downloads == 1

    bulk.publish("20261203")  # the sensor, in a code server as the daemon runs it
    done = run_dagster(env, "sensor", "preview", BULK_SENSOR)
    assert done.returncode == 0, done.stderr[-3000:]
    output = done.stdout + done.stderr
    assert "Sensor returning run requests for 1 run(s)" in output, output[-3000:]
