"""Refresh schedules and backfill policies built from the catalog."""

from datetime import UTC, datetime

import dagster as dg

from ingest_assets.automation.notifications import notify_run_failure, notify_run_success
from ingest_assets.automation.schedules import refresh_schedule
from ingest_assets.dataset import dataset_assets, dataset_definitions
from ingest_assets.dataset.factory import dataset_job
from ingest_assets.dataset.spec import DatasetSpec
from ingest_assets.definitions import build_resources
from ingest_assets.kinds.nass.config import NassDatasetConfig

QUERY = {"source_desc": "SURVEY"}


def config(**fields) -> NassDatasetConfig:
    return NassDatasetConfig(
        name="nass_t", source="nass", table="facts_data", start_year=2000, query=QUERY, **fields
    )


def schedule_of(cfg: NassDatasetConfig) -> dg.ScheduleDefinition:
    return refresh_schedule(cfg, dataset_job(DatasetSpec.of(cfg)))


def tick(schedule: dg.ScheduleDefinition, when: datetime, cfg: NassDatasetConfig):
    defs = dg.Definitions(
        assets=dataset_assets(cfg),
        schedules=[schedule],  # brings its job
        resources=build_resources(),
    )
    context = dg.build_schedule_context(
        scheduled_execution_time=when, repository_def=defs.get_repository_def()
    )
    return list(schedule.evaluate_tick(context).run_requests or [])


def test_the_default_schedule_refreshes_the_current_and_previous_year_weekly():
    cfg = config()
    schedule = schedule_of(cfg)
    assert schedule.cron_schedule == "0 6 * * 1" and schedule.execution_timezone == "UTC"
    requests = tick(schedule, datetime(2026, 11, 23, 6, tzinfo=UTC), cfg)
    assert [r.partition_key for r in requests] == ["2025", "2026"]
    assert len({r.run_key for r in requests}) == 2
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED


def test_cadence_and_depth_come_from_the_catalog_and_stay_within_the_partitions():
    cfg = config(schedule="30 2 1 * *", refresh_years=4, end_year=2024)
    schedule = schedule_of(cfg)
    assert schedule.cron_schedule == "30 2 1 * *"
    requests = tick(schedule, datetime(2026, 3, 1, 2, 30, tzinfo=UTC), cfg)
    assert [r.partition_key for r in requests] == ["2021", "2022", "2023", "2024"]
    early = config(refresh_years=5)
    when = datetime(2001, 6, 1, tzinfo=UTC)
    assert [r.partition_key for r in tick(schedule_of(early), when, early)] == [
        "2000",
        "2001",
    ]


def test_definitions_hold_sensors_schedules_and_one_year_per_run_backfills():
    cfg = config()
    defs = dg.Definitions.merge(
        dataset_definitions(cfg),
        dg.Definitions(
            resources=build_resources(), sensors=[notify_run_failure, notify_run_success]
        ),
    )
    repo = defs.get_repository_def()
    assert {s.name for s in repo.sensor_defs} == {
        "nass_t_new_data",
        "notify_run_failure",
        "notify_run_success",
    }
    assert [s.name for s in repo.schedule_defs] == ["nass_t_refresh"]
    for asset in dataset_assets(cfg):
        assert asset.backfill_policy == dg.BackfillPolicy.multi_run(1)
    [raw] = [a for a in dataset_assets(cfg) if a.key.path[-1] == "raw_pages"]
    policy = raw.op.retry_policy
    assert policy.backoff == dg.Backoff.EXPONENTIAL and policy.jitter is not None
    assert raw.op.pool == "api_quickstats_nass_usda_gov"
