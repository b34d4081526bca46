"""The one interface every source kind implements, and the catalog fields all kinds share.

A source kind (NASS Quick Stats, Socrata, files) knows three things about a year of its data: how
to split it into slices that each stay within the API's limits (``plan``), how to fetch a slice as
raw pages (``fetch``) and how to turn a staged page back into records (``parse_page``). Everything
after that — staging, cleaning, loading, checks — is shared, so adding a kind touches only its own
folder and the registry in ``ingest_assets.kinds``.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import dagster as dg
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ingest_assets.cleaning.columns import Column

if TYPE_CHECKING:
    from ingest_assets.settings import Settings

IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def check_identifier(value: str) -> str:
    """Accept only plain lower-case SQL identifiers; everything else is refused, never escaped."""
    if not IDENTIFIER.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid identifier: use lower-case letters, digits and underscores, "
            "starting with a letter or underscore, at most 63 characters"
        )
    return value


class DatasetConfig(BaseModel):
    """Catalog fields every source kind shares. Kind-specific models extend it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        description="The entry's key in datasets.yaml: the asset key prefix and group name."
    )
    source: str = Field(description="The source kind; selects the kind-specific fields.")
    table: str = Field(description="Target table in the warehouse.")
    db_schema: str = Field("public", alias="schema", description="Warehouse schema of the table.")
    start_year: int = Field(ge=1800, le=2200, description="First yearly partition.")
    end_year: int | None = Field(
        None, ge=1800, le=2200, description="Last partition (default: the current year)."
    )
    mode: Literal["full", "incremental"] = Field(
        "full",
        description="`full`: each load replaces the whole year atomically; `incremental`: fetch "
        "rows changed since the watermark and upsert them by `key` (kinds with declared columns).",
    )
    description: str | None = Field(
        None, description="Shown on each asset in the UI (default `<source> dataset <name>`)."
    )
    owners: list[str] = Field(
        default_factory=list,
        description="Owners shown in the UI and usable in selections: e-mails or `team:<name>`.",
    )
    schedule: str = Field("0 6 * * 1", description="Cron for the refresh schedule (UTC).")
    refresh_years: int = Field(2, ge=1, description="How many recent years the schedule refreshes.")
    watch_years: int = Field(
        5, ge=1, description="How many recent years the new-data sensor watches for revisions."
    )
    sensor_interval_seconds: int = Field(
        3600,
        ge=1,
        description="Seconds between two ticks of the new-data sensor (each asks the source "
        "for its change signal of the watched years).",
    )
    years_per_run: int | Literal["all"] = Field(
        1,
        description="Years one backfill run covers: a number (1 to 100), or `all` for one run "
        "per backfill, which also lets `dagster asset materialize --partition-range` take a "
        "range. A run's process start-up costs seconds, so a backfill of many small years runs "
        "faster with several years per run; each year is still staged, reconciled and swapped "
        "on its own, and a failing year is named in the run's error (a retry takes the run's "
        "years again).",
    )

    analyze: bool = Field(True, description="Run `ANALYZE` on the year's partition after a load.")
    max_shrink: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Largest fraction of a year's rows a full load may remove without an "
        "operator's confirmation (run tag ingest/confirm_shrink=true or INGEST_CONFIRM_SHRINK); "
        "a load to 0 rows always needs one. The first load of a year is never blocked.",
    )
    nul_bytes: Literal["fail", "strip"] = Field(
        "fail",
        description="A NUL byte in a text value (PostgreSQL cannot store one): 'fail' refuses "
        "the year naming column, row and value; 'strip' removes the NUL bytes.",
    )
    refresh_views: list[str] = Field(
        default_factory=list, description="Materialized views to refresh after a load."
    )
    on_schema_change: Literal["fail", "add_columns"] = Field(
        "fail",
        description="What a change in the source's fields does. 'fail': a new or vanished "
        "field fails the year, naming it. 'add_columns': a new field becomes a new nullable "
        "text column (older years read NULL), a vanished one loads as NULL and is reported; a "
        "type conflict still fails, naming the column and both types.",
    )

    @field_validator("name", "table", "db_schema")
    @classmethod
    def _identifier(cls, value: str) -> str:
        return check_identifier(value)

    @field_validator("end_year")
    @classmethod
    def _end_year(cls, value: int | None) -> int | None:
        # The partitions then end at 1970-01-01 UTC, timestamp 0, which Dagster 1.13 drops when
        # a code server sends them on (partitions/snap: `if self.end`): the webserver and the
        # daemon would see every year up to now.
        if value == 1969:
            raise ValueError(
                "end_year 1969 is not supported: Dagster 1.13 loses a partitions end of "
                "1970-01-01 and would schedule every year since; end in 1968 or 1970"
            )
        return value

    @field_validator("years_per_run")
    @classmethod
    def _years_per_run(cls, value: int | str) -> int | str:
        if isinstance(value, int) and not 1 <= value <= 100:
            raise ValueError(f"years_per_run must be between 1 and 100 or 'all', not {value}")
        return value

    @property
    def page_format(self) -> str:
        """What raw pages are staged as: their file suffix and the ``raw_pages`` asset kind."""
        return "json"

    @property
    def filters(self) -> dict[str, Any]:
        """What selects the dataset's rows at the source, as named when a query finds nothing."""
        return {}

    @field_validator("refresh_views")
    @classmethod
    def _view_identifiers(cls, values: list[str]) -> list[str]:
        return [check_identifier(v) for v in values]


@dataclass(frozen=True)
class Slice:
    """One request-sized piece of a year: the filters sent and the rows the source promised."""

    key: str
    params: Mapping[str, tuple[str, ...]]
    expected_rows: int

    def describe(self) -> str:
        return ", ".join(f"{k}={'|'.join(v)}" for k, v in self.params.items()) or "(whole year)"


@dataclass(frozen=True)
class Plan:
    """The slices of one year, with the source's own count for what they cover.

    For an incremental plan ``source_count`` counts the changed rows fetched and ``year_count``
    the whole year at the source (what the year's rows in the table must add up to).
    """

    year: int
    slices: tuple[Slice, ...]
    source_count: int
    notes: tuple[str, ...] = ()
    year_count: int | None = None
    source_version: str | None = None  # the data's version where the source has one (a file)


@dataclass
class Page:
    """A raw response body exactly as received, with the number of records it holds."""

    slice: Slice
    index: int
    body: bytes
    rows: int


@dataclass(frozen=True)
class Upstream:
    """What a kind adds upstream of a dataset's ``raw_pages`` (e.g. a bulk file read once for
    all years): the assets ``raw_pages`` depends on, and their own definitions (jobs, sensors).
    """

    keys: tuple[dg.AssetKey, ...]
    assets: tuple[dg.AssetsDefinition, ...]
    definitions: dg.Definitions


class Cleaner(ABC):
    """The offline half of a source kind: reading staged pages back and typing their records.

    Kept apart from ``Source`` so that cleaning needs no API key and no network. ``added``
    names source fields beyond the expected ones (``on_schema_change: add_columns``); each is
    cleaned as a text column of the same name after the kind's own columns.
    """

    def __init__(self, config: DatasetConfig, added: Sequence[str] = ()) -> None:
        self.config = config
        self.added = tuple(added)

    @property
    def row_key(self) -> tuple[str, ...]:
        """Cleaned columns that name a row in errors (none: its position)."""
        return ()

    @abstractmethod
    def base_columns(self) -> tuple[Column, ...]:
        """The kind's (or the catalog's) own columns, before any added field."""

    def columns(self) -> tuple[Column, ...]:
        """The cleaned frame's columns; also the facts table's columns."""
        return (*self.base_columns(), *(Column(name, "text") for name in self.added))

    @abstractmethod
    def expected_fields(self) -> tuple[str, ...]:
        """The source fields a staged page is expected to hold."""

    @abstractmethod
    def page_fields(self, body: bytes) -> set[str]:
        """The fields a staged page holds (its header, or every record's keys)."""

    @abstractmethod
    def parse_page(self, body: bytes) -> list[dict[str, Any]]:
        """Turn a staged page back into records."""

    @abstractmethod
    def clean(self, records: list[dict[str, Any]], year: int, where: str) -> pa.Table:
        """Type one page of records; ``where`` names dataset, year and slice in errors."""

    def clean_page(self, body: bytes, year: int, where: str) -> pa.Table:
        """Type one staged page; a kind may override this with a path that skips records."""
        return self.clean(self.parse_page(body), year, where)

    def clean_chunks(self, body: bytes, year: int, where: str) -> Iterator[pa.Table]:
        """Type one staged page as a stream of tables; a kind whose pages can be parsed in
        blocks overrides this to bound memory by the block, not the page.
        """
        yield self.clean_page(body, year, where)


class Source(ABC):
    """A source kind bound to one catalog entry and a live client."""

    kind: ClassVar[str]

    def __init__(self, config: DatasetConfig, client: Any) -> None:
        self.config = config
        self.client = client

    @abstractmethod
    def plan(self, year: int) -> Plan:
        """Split a year into slices within the source's limits, each with its promised count."""

    def plan_changes(self, year: int, since: str | None) -> Plan:
        """Plan the rows of a year changed at or after ``since`` (all rows when None).

        Only kinds that support ``mode: incremental`` implement it.
        """
        raise NotImplementedError(f"source kind {self.kind!r} has no incremental mode")

    @abstractmethod
    def fetch(self, part: Slice) -> Iterator[Page]:
        """Fetch one slice as raw pages (one page per request)."""

    @abstractmethod
    def count(self, year: int) -> int:
        """The source's own count of records for a year (what the checks reconcile against)."""

    def change_signal(self, years: Sequence[int]) -> dict[int, str]:
        """A cheap fingerprint per year that changes when the source's data for it changes."""
        return {year: str(self.count(year)) for year in years}

    def describe_query(self, year: int) -> dict[str, Any]:
        """The query for a year as shown in metadata; never contains secrets."""
        return {}


class KindResource(dg.ConfigurableResource):
    """The Dagster resource of a source kind: its connection settings, and its ``Source``.

    Every kind's resource is built from the process settings in one place
    (``ingest_assets.resources``) and found by the assets under ``resource_key``.
    """

    resource_key: ClassVar[str]

    @classmethod
    def from_settings(cls, config: Settings) -> KindResource:
        """The resource as configured by the environment's settings."""
        raise NotImplementedError

    def source(self, config: DatasetConfig) -> Source:
        """The network half of the kind for one dataset."""
        raise NotImplementedError
