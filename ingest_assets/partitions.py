"""Yearly partitions, one definition per dataset (its first year comes from the catalog).

Dagster has no yearly class; a time-window definition on ``0 0 1 1 *`` with ``fmt="%Y"`` gives
keys "2000", "2001", ... and ``end_offset=1`` includes the current, unfinished year, which public
statistics APIs already publish.
"""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg

from ingest_assets.errors import YearOutOfRange
from ingest_assets.kinds.base import DatasetConfig


def yearly_partitions(config: DatasetConfig) -> dg.TimeWindowPartitionsDefinition:
    """Yearly partitions from the dataset's first year to its last (or the current one)."""
    return dg.TimeWindowPartitionsDefinition(
        cron_schedule="0 0 1 1 *",
        start=str(config.start_year),
        end=str(config.end_year + 1) if config.end_year else None,
        fmt="%Y",
        timezone="UTC",
        end_offset=0 if config.end_year else 1,
    )


def check_years(config: DatasetConfig, years: Iterable[int]) -> None:
    """Refuse years outside the dataset's partitions, naming the dataset and its years."""
    keys = yearly_partitions(config).get_partition_keys()
    outside = [year for year in years if str(year) not in keys]
    if outside:
        listed = ", ".join(map(str, outside))
        raise YearOutOfRange(
            f"dataset {config.name!r} has the years {keys[0]}-{keys[-1]}; {listed} is not one "
            f"of them: pick a year in that range (or change start_year/end_year in the catalog)"
        )
