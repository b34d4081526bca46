"""The new-data sensor against the Quick Stats stand-in: baseline, a revised past year, paging."""

import json

import dagster as dg
import pytest

from ingest_assets.automation.sensors import WatchCursor, check_years, new_data_sensor
from ingest_assets.dataset import dataset_assets
from ingest_assets.dataset.factory import dataset_job
from ingest_assets.dataset.spec import DatasetSpec
from ingest_assets.definitions import build_resources
from ingest_assets.kinds.nass.config import NassDatasetConfig
from ingest_assets.kinds.nass.source import NassApi
from ingest_assets.standin.nass_data import NassDataset
from ingest_assets.standin.nass_server import NassStandIn
from ingest_assets_tests.assets.test_nass_pipeline import QUERY, materialize, table_rows
from ingest_assets_tests.support.pipeline import nass_resources

YEARS = range(2019, 2024)
CONFIG = NassDatasetConfig(
    name="nass_t",
    source="nass",
    table="facts_data",
    start_year=2017,
    end_year=2023,
    watch_years=5,
    query=QUERY,
)


@pytest.fixture
def standin():
    with NassStandIn(NassDataset(records_per_year=dict.fromkeys(YEARS, 300))) as server:
        yield server


@pytest.fixture
def resources(standin, warehouse_url, tmp_path, monkeypatch):
    return nass_resources(monkeypatch, standin, warehouse_url, tmp_path / "staging")


def tick(instance, standin, cursor):
    api = NassApi(api_key=standin.api_key, base_url=standin.base_url)
    job = dataset_job(DatasetSpec.of(CONFIG))
    sensor = new_data_sensor(CONFIG, job)
    repository = dg.Definitions(
        assets=dataset_assets(CONFIG),
        jobs=[job],
        sensors=[sensor],
        resources={**build_resources(), "nass_api": api},
    ).get_repository_def()
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"nass_api": api}, repository_def=repository
    )
    return sensor.evaluate_tick(context)  # what the code server runs for the daemon


def test_a_revised_past_year_is_requested_once_and_the_run_loads_it(
    instance, standin, resources, warehouse_url
):
    assert materialize(instance, resources, 2020, CONFIG).success
    before = table_rows(warehouse_url, 2020)

    first = tick(instance, standin, None)
    assert first.run_requests == []  # baseline: nothing requested on the first tick
    assert sorted(json.loads(first.cursor)["fingerprints"]) == [str(y) for y in YEARS]

    standin.dataset.revise(2020)  # NASS revises a past year in place: same count, new load_time
    second = tick(instance, standin, first.cursor)
    [request] = second.run_requests
    assert request.partition_key == "2020"
    assert request.run_key.startswith("2020:count=300;load_time=")
    assert request.run_key != "2020:" + json.loads(first.cursor)["fingerprints"]["2020"]

    third = tick(instance, standin, second.cursor)
    assert third.run_requests == []

    # A restart that re-runs the tick with the old cursor asks for the same run key, which
    # Dagster launches only once per sensor.
    again = tick(instance, standin, first.cursor)
    assert [r.run_key for r in again.run_requests] == [request.run_key]

    assert materialize(instance, resources, int(request.partition_key), CONFIG).success
    after = table_rows(warehouse_url, 2020)
    assert len(after) == len(before) == 300
    assert after != before  # the revised values landed


def test_a_changed_count_and_a_new_year_are_noticed(instance, standin):
    cursor = tick(instance, standin, None).cursor
    standin.dataset.revise(2021, records=350)
    forgotten = WatchCursor.parse(cursor)
    del forgotten.fingerprints["2023"]  # as if 2023 had just entered the window
    result = tick(instance, standin, forgotten.dumps())
    assert sorted(r.partition_key for r in result.run_requests) == ["2021", "2023"]
    assert "count=350" in next(r.run_key for r in result.run_requests if r.partition_key == "2021")


def test_a_wide_window_is_paged_through_ticks(standin):
    source = NassApi(api_key=standin.api_key, base_url=standin.base_url).source(CONFIG)
    years = list(range(2017, 2024))
    cursor = WatchCursor(baseline=True)
    seen: list[int] = []
    for _ in range(3):
        result = check_years(source, years, cursor, years_per_tick=3)
        seen += result.checked
        cursor = result.cursor
    assert seen == [2017, 2018, 2019, 2020, 2021, 2022, 2023, 2017, 2018]
    standin.reset_stats()
    result = check_years(source, years, cursor, years_per_tick=3, budget_seconds=0)
    assert result.checked == [2019]  # over budget after the first year: the rest waits
    assert standin.stats.total_requests <= 2
