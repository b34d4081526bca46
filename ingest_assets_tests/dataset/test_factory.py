"""The factory's result for every shipped dataset: assets, check, job, sensor, schedule."""

import dagster as dg

from ingest_assets.catalog import load_catalog
from ingest_assets.dataset import EMPTY_YEAR_CHECK, RECONCILE_CHECK, dataset_definitions, job_name
from ingest_assets.definitions import build_definitions, build_resources


def test_each_shipped_dataset_has_its_job_sensor_and_schedule_on_its_years():
    catalog = load_catalog()
    repository = build_definitions().get_repository_def()
    for name, config in catalog.items():
        job = repository.get_job(job_name(name))
        years = job.partitions_def.get_partition_keys()
        assert years[0] == str(config.start_year), name
        if config.end_year:
            assert years[-1] == str(config.end_year), name
        keys = {dg.AssetKey([name, step]) for step in ("raw_pages", "cleaned", "facts")}
        assert job.asset_layer.selected_asset_keys == keys, name
        check = dg.AssetCheckKey(dg.AssetKey([name, "facts"]), RECONCILE_CHECK)
        assert check in job.asset_layer.asset_graph.asset_check_keys, name
        sensor = repository.get_sensor_def(f"{name}_new_data")
        schedule = repository.get_schedule_def(f"{name}_refresh")
        assert sensor.job_name == schedule.job_name == job.name, name
        assert sensor.minimum_interval_seconds == config.sensor_interval_seconds, name
        assert schedule.cron_schedule == config.schedule, name
    shared = {s.name for s in repository.sensor_defs} - {f"{n}_new_data" for n in catalog}
    assert shared == {"notify_run_failure", "notify_run_success"}


def test_the_reconcile_check_is_blocking_and_not_partitioned():
    """Unpartitioned on purpose: UI backfills and preview partitioned checks (dataset/facts.py)."""
    config = next(iter(load_catalog().values()))
    definitions = dg.Definitions.merge(
        dataset_definitions(config), dg.Definitions(resources=build_resources())
    )
    facts = definitions.resolve_assets_def(dg.AssetKey([config.name, "facts"]))
    specs = {spec.name: spec for spec in facts.check_specs}
    spec = specs[RECONCILE_CHECK]
    assert spec.name == RECONCILE_CHECK and spec.blocking
    assert spec.partitions_def is None and facts.partitions_def is not None
    warning = specs[EMPTY_YEAR_CHECK]  # the WARN check of #17: never blocks a load
    assert not warning.blocking and warning.partitions_def is None
    assert set(specs) == {RECONCILE_CHECK, EMPTY_YEAR_CHECK}
