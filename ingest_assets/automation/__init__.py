"""The automation layer: what starts runs without a person clicking.

One module per family: ``sensors`` (new source data), ``schedules`` (catalog cadence),
``notifications`` (run status to a webhook), ``policies`` (backfill policy per source kind).
``automation_definitions`` builds all of it from the catalog for ``definitions.py``.
"""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

from ingest_assets.automation.notifications import notify_run_failure, notify_run_success
from ingest_assets.automation.schedules import refresh_schedule
from ingest_assets.automation.sensors import new_data_sensor
from ingest_assets.kinds.base import DatasetConfig


def automation_definitions(catalog: Mapping[str, DatasetConfig]) -> dg.Definitions:
    sensors = [new_data_sensor(config) for config in catalog.values()]
    return dg.Definitions(
        sensors=[*sensors, notify_run_failure, notify_run_success],
        schedules=[refresh_schedule(config) for config in catalog.values()],
    )
