"""New-source-data sensors: one per dataset, polling its source's cheap change signal.

Only ``Source.change_signal(years)`` is used, so every source kind works the same way: Quick
Stats answers with per-year counts and latest ``load_time``, Socrata with its metadata stamps.
A source may revise old years, so the sensor watches the dataset's last ``watch_years`` years
(catalog) and requests a run for each year whose fingerprint changed.

The cursor is JSON: ``{"fingerprints": {"2021": "..."}, "next": 0}``. Each request's ``run_key``
is ``<year>:<fingerprint>``, so Dagster launches a given change once even when a tick is re-run
after a crash with an old cursor. The first tick (no cursor) records a baseline and requests
nothing: loading history is a backfill's job, and turning a sensor on must not launch a run per
watched year. A year that enters the window later (a new year) has no baseline and is requested.

Ticks stay well inside Dagster's 60 s sensor limit: at most ``YEARS_PER_TICK`` years are checked
per tick, checking stops once ``TICK_BUDGET_SECONDS`` have passed, and the source's HTTP client
is bounded per request. Years left over are checked on the next tick (``next`` in the cursor).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import dagster as dg

from ingest_assets.http import HttpClient
from ingest_assets.kinds.base import DatasetConfig, Source
from ingest_assets.kinds.registry import SOURCE_KINDS

YEARS_PER_TICK = 10
TICK_BUDGET_SECONDS = 30.0
REQUEST_BUDGET_SECONDS = 15.0  # one change-signal request, retries included
FINGERPRINT_TAG = "ingest/fingerprint"


@dataclass
class WatchCursor:
    """What the sensor has seen: a fingerprint per year, and where the next tick starts."""

    fingerprints: dict[str, str] = field(default_factory=dict)
    next: int = 0
    baseline: bool = False  # True when there was no cursor: record, request nothing

    @classmethod
    def parse(cls, text: str | None) -> WatchCursor:
        if not text:
            return cls(baseline=True)
        data = json.loads(text)
        return cls(dict(data.get("fingerprints", {})), int(data.get("next", 0)))

    def dumps(self) -> str:
        return json.dumps({"fingerprints": self.fingerprints, "next": self.next}, sort_keys=True)


def watched_years(config: DatasetConfig, today: datetime | None = None) -> list[int]:
    """The dataset's last ``watch_years`` partitions, oldest first."""
    current = (today or datetime.now(UTC)).year
    last = min(current, config.end_year or current)
    first = max(config.start_year, last - config.watch_years + 1)
    return list(range(first, last + 1))


def _bound_requests(source: Source) -> None:
    """Cap each request of this tick (retries included); a slow API must not outlast the tick."""
    client = source.client
    if isinstance(client, HttpClient):
        client.max_total_seconds = min(client.max_total_seconds, REQUEST_BUDGET_SECONDS)
        connect, read = client.timeout
        client.timeout = (min(connect, 5.0), min(read, REQUEST_BUDGET_SECONDS))


@dataclass(frozen=True)
class TickResult:
    """What one sensor tick saw: the years checked, the changed ones and the next cursor."""

    checked: list[int]
    changed: dict[int, str]
    cursor: WatchCursor


def check_years(
    source: Source,
    years: Sequence[int],
    cursor: WatchCursor,
    years_per_tick: int = YEARS_PER_TICK,
    budget_seconds: float = TICK_BUDGET_SECONDS,
) -> TickResult:
    """Ask the source for the fingerprints of the next years in ``years`` (round robin from
    ``cursor.next``) and return the changed ones with the updated cursor.
    """
    started = time.monotonic()
    window = {str(y) for y in years}
    seen = {y: fp for y, fp in cursor.fingerprints.items() if y in window}
    start = cursor.next % len(years) if years else 0
    order = [*years[start:], *years[:start]][:years_per_tick]
    checked: list[int] = []
    changed: dict[int, str] = {}
    for year in order:
        if checked and time.monotonic() - started > budget_seconds:
            break
        fingerprint = source.change_signal([year])[year]
        checked.append(year)
        if not cursor.baseline and seen.get(str(year)) != fingerprint:
            changed[year] = fingerprint
        seen[str(year)] = fingerprint
    following = (start + len(checked)) % len(years) if years else 0
    return TickResult(checked, changed, WatchCursor(seen, following))


def new_data_sensor(
    config: DatasetConfig, job: dg.UnresolvedAssetJobDefinition
) -> dg.SensorDefinition:
    """The sensor of one dataset, requesting runs of ``job`` (the dataset's job) per year.

    Dagster hands it the source kind's resource (e.g. ``nass_api``) through
    ``context.resources``: ``required_resource_keys`` is how a sensor asks for a resource
    whose key is only known when the factory runs.
    """
    resource_key = SOURCE_KINDS[config.source].resource.resource_key

    @dg.sensor(
        name=f"{config.name}_new_data",
        job=job,
        minimum_interval_seconds=config.sensor_interval_seconds,
        required_resource_keys={resource_key},
        default_status=dg.DefaultSensorStatus.STOPPED,
        description=f"Requests a run of {config.name} for each of its last {config.watch_years} "
        "years whose data changed at the source (counts, revision stamps).",
    )
    def sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        source = getattr(context.resources, resource_key).source(config)
        _bound_requests(source)
        cursor = WatchCursor.parse(context.cursor)
        result = check_years(source, watched_years(config), cursor)
        _log_tick(context, config, cursor, result)
        requests = [
            dg.RunRequest(
                partition_key=str(year),
                run_key=f"{year}:{fingerprint}",
                tags={FINGERPRINT_TAG: fingerprint[:255]},
            )
            for year, fingerprint in sorted(result.changed.items())
        ]
        checked = ", ".join(map(str, result.checked)) or "no years"
        skip = None if requests else f"{config.name}: no change in {checked}"
        return dg.SensorResult(
            run_requests=requests, cursor=result.cursor.dumps(), skip_reason=skip
        )

    return sensor


def _log_tick(
    context: dg.SensorEvaluationContext,
    config: DatasetConfig,
    cursor: WatchCursor,
    result: TickResult,
) -> None:
    if cursor.baseline:
        checked = ", ".join(map(str, result.checked))
        context.log.info(f"{config.name}: first tick, baseline recorded for {checked}")
    for year, fingerprint in sorted(result.changed.items()):
        before = cursor.fingerprints.get(str(year), "(new year)")
        context.log.info(f"{config.name} {year} changed: {before} -> {fingerprint}")
