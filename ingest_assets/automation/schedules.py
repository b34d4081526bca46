"""Refresh schedules: one per dataset, its cron (``schedule``) and depth (``refresh_years``)
from the catalog; by default every Monday 06:00 UTC, the current and the previous year.

``build_schedule_from_partitioned_job`` cannot do this: on yearly partitions it fires only on
1 January and only for the year that just ended. So each tick computes its years from the
scheduled time and yields one ``RunRequest`` per year (one run per year, like a backfill).
"""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg

from ingest_assets.kinds.base import DatasetConfig


def refresh_years(config: DatasetConfig, year: int) -> list[int]:
    """The ``refresh_years`` most recent partitions as of ``year``, oldest first."""
    last = min(year, config.end_year or year)
    return list(range(max(config.start_year, last - config.refresh_years + 1), last + 1))


def refresh_schedule(
    config: DatasetConfig, job: dg.UnresolvedAssetJobDefinition
) -> dg.ScheduleDefinition:
    """The schedule of one dataset: a run of ``job`` (the dataset's job) per refreshed year."""

    @dg.schedule(
        name=f"{config.name}_refresh",
        cron_schedule=config.schedule,
        execution_timezone="UTC",
        job=job,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description=f"Reloads the last {config.refresh_years} year(s) of {config.name} "
        f"({config.schedule}, UTC).",
    )
    def schedule(context: dg.ScheduleEvaluationContext) -> Iterator[dg.RunRequest]:
        tick = context.scheduled_execution_time
        for year in refresh_years(config, tick.year):
            yield dg.RunRequest(partition_key=str(year), run_key=f"{tick.isoformat()}:{year}")

    return schedule
