"""Yearly partitions, one definition per dataset (its first year comes from the catalog).

Dagster has no yearly class; a time-window definition on ``0 0 1 1 *`` with ``fmt="%Y"`` gives
keys "2000", "2001", ... and ``end_offset=1`` includes the current, unfinished year, which public
statistics APIs already publish.
"""

from __future__ import annotations

import dagster as dg

from ingest_assets.kinds.base import DatasetConfig


def yearly_partitions(config: DatasetConfig) -> dg.TimeWindowPartitionsDefinition:
    return dg.TimeWindowPartitionsDefinition(
        cron_schedule="0 0 1 1 *",
        start=str(config.start_year),
        end=str(config.end_year + 1) if config.end_year else None,
        fmt="%Y",
        timezone="UTC",
        end_offset=0 if config.end_year else 1,
    )
