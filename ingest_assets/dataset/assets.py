"""The two staging assets of a dataset: ``<dataset>/raw_pages`` and ``<dataset>/cleaned``.

``raw_pages`` plans the year and hands a ``PageStream`` to the staging IO manager; ``cleaned``
types the staged pages chunk by chunk into Parquet, refusing (or, as the catalog says,
stripping) NUL bytes PostgreSQL cannot store (``cleaning.storable``). A dataset in
``mode: incremental`` plans just the rows changed since the year's watermark (minus the
catalog's overlap); a run tagged
``ingest/full_reload=true`` plans the whole year instead. The warehouse asset is in ``facts``.

A source error a retry cannot fix (bad key, 400, 413, a body of the wrong shape) ends the step
at once; only ``SourceUnavailable`` (the API is down or throttling) is left to the retry policy.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

import dagster as dg
import pyarrow as pa

from ingest_assets.cleaning.columns import arrow_schema
from ingest_assets.cleaning.storable import check_storable, may_hold_nul
from ingest_assets.dataset.spec import DatasetSpec, api_pool, run_years
from ingest_assets.errors import SourceError, SourceUnavailable, WarehouseUnreachable
from ingest_assets.kinds.base import Cleaner, Page, Plan, Slice, Source
from ingest_assets.kinds.typed import TypedDatasetConfig, parse_interval
from ingest_assets.schema_changes import year_cleaner
from ingest_assets.staging.frames import FrameStream
from ingest_assets.staging.pages import PageStream, StagedPages
from ingest_assets.warehouse import ledger
from ingest_assets.warehouse.resource import Warehouse

FETCH_RETRY = dg.RetryPolicy(
    max_retries=2, delay=10, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)


@contextmanager
def failing_without_retries() -> Iterator[None]:
    """Turn a ``SourceError`` other than ``SourceUnavailable`` into a ``dg.Failure`` that
    Dagster does not retry; the error's own one-line message is what the run shows.
    """
    try:
        yield
    except SourceUnavailable:
        raise
    except (SourceError, WarehouseUnreachable) as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None


def _fail_fast(fetch: Callable[[Slice], Iterator[Page]]) -> Callable[[Slice], Iterator[Page]]:
    def guarded(part: Slice) -> Iterator[Page]:
        with failing_without_retries():
            yield from fetch(part)

    return guarded


def incremental_since(warehouse: Warehouse, config: TypedDatasetConfig, year: int) -> str | None:
    """The stored watermark of the year minus the catalog's overlap; None before the first load."""
    with warehouse.connect() as conn:
        with conn.transaction():
            ledger.ensure_ledger(conn)
        mark = ledger.read_watermark(conn, config.name, year)
    if mark is None:
        return None
    start = datetime.fromisoformat(mark) - parse_interval(config.overlap)
    return start.replace(tzinfo=None).isoformat(timespec="milliseconds")


def _plan(context: dg.AssetExecutionContext, spec: DatasetSpec, source: Source, year: int) -> Plan:
    if spec.run_mode(context) != "incremental":
        return source.plan(year)
    config = spec.config
    assert isinstance(config, TypedDatasetConfig)
    since = incremental_since(context.resources.warehouse, config, year)
    context.log.info(
        f"{config.name} {year}: incremental, "
        + (f"rows with {config.updated_column} >= {since}" if since else "no watermark yet")
    )
    return source.plan_changes(year, since)


def raw_pages_asset(spec: DatasetSpec, deps: tuple[dg.AssetKey, ...] = ()) -> dg.AssetsDefinition:
    """The ``<dataset>/raw_pages`` asset: plan the year and stage its pages.

    ``deps``: a kind's upstream assets, depended on without loading them as inputs.
    """
    config = spec.config

    @dg.asset(
        key=spec.key("raw_pages"),
        deps=list(deps),
        io_manager_key="pages_io_manager",
        required_resource_keys={spec.resource_key, "warehouse"},
        kinds={config.source, config.page_format},
        pool=api_pool(config),
        retry_policy=FETCH_RETRY,
        description=f"Raw API responses for one year of {spec.about}, staged as compressed "
        "files with a manifest of slices (filters, promised and received counts).",
        **spec.asset_arguments(),
    )
    def raw_pages(context: dg.AssetExecutionContext) -> dict[str, PageStream]:
        with failing_without_retries():
            # The warehouse first: a wrong DATABASE_URL fails here, before any fetching.
            context.resources.warehouse.require_reachable(f"{spec.name} {run_years(context)}")
            source = spec.source(context)
        years = context.partition_keys
        return {year: _year_stream(context, spec, source, int(year)) for year in years}

    return raw_pages


def _year_stream(
    context: dg.AssetExecutionContext, spec: DatasetSpec, source: Source, year: int
) -> PageStream:
    with failing_without_retries():
        plan = _plan(context, spec, source, year)
    context.log.info(
        f"{spec.name} {year}: {plan.source_count:,} records in {len(plan.slices)} slice(s)"
    )
    return PageStream(
        label=spec.name,
        plan=plan,
        fetch=_fail_fast(source.fetch),
        suffix=f".{spec.config.page_format}",
        query=source.describe_query(year),
    )


def cleaned_asset(spec: DatasetSpec) -> dg.AssetsDefinition:
    """The ``<dataset>/cleaned`` asset: type the staged pages into Parquet."""

    @dg.asset(
        key=spec.key("cleaned"),
        ins={"raw_pages": dg.AssetIn(spec.key("raw_pages"))},
        io_manager_key="frames_io_manager",
        kinds={"parquet", "pyarrow"},
        description=f"Typed, snake_case rows of {spec.about} for one year, as Parquet row groups.",
        **spec.asset_arguments(),
    )
    def cleaned(raw_pages: dict[str, StagedPages]) -> dict[str, FrameStream]:
        return {year: _year_frames(spec, staged, int(year)) for year, staged in raw_pages.items()}

    return cleaned


def _year_frames(spec: DatasetSpec, staged: StagedPages, year: int) -> FrameStream:
    cleaner, changes = year_cleaner(spec.kind.cleaner, spec.config, staged)
    schema = arrow_schema(cleaner.columns()).with_metadata(changes.schema_metadata())
    return FrameStream(schema=schema, chunks=_clean_pages(cleaner, staged, year))


def _clean_pages(cleaner: Cleaner, staged: StagedPages, year: int) -> Iterator[pa.Table]:
    for entry, body in staged.bodies():
        where = f"dataset {cleaner.config.name}, year {year}, slice {entry['key']}"
        chunks = cleaner.clean_chunks(body, year, where)
        if not may_hold_nul(body):
            yield from chunks
            continue
        for chunk in chunks:
            yield check_storable(chunk, where, cleaner.config.nul_bytes, cleaner.row_key)
