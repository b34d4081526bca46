"""One asset graph per catalog entry: ``<dataset>/raw_pages`` → ``cleaned`` → ``facts``.

All three share the dataset's yearly partitions and group. ``raw_pages`` plans the year and
hands a ``PageStream`` to the staging IO manager; ``cleaned`` types the staged pages chunk by
chunk into Parquet; ``facts`` loads the Parquet into PostgreSQL, replacing the year atomically,
and carries the blocking ``row_counts_reconcile`` check: source count = rows staged = rows
cleaned = rows loaded, verified inside the load transaction before anything commits.

A dataset in ``mode: incremental`` differs in two places only: ``raw_pages`` reads the year's
watermark from the warehouse and plans just the rows changed since it (minus the overlap), and
``facts`` merges them on the key instead of replacing the year, reconciling the year's rows in
the table against the source's count for the year as well. A run tagged
``ingest/full_reload=true`` loads an incremental dataset's year in full instead — the repair
when rows were deleted at the source, which an incremental load cannot see.
"""

import dataclasses
import functools
from collections.abc import Iterator
from datetime import datetime
from urllib.parse import urlparse

import dagster as dg
import pyarrow as pa

from ingest_assets.automation.policies import backfill_policy
from ingest_assets.cleaning.columns import arrow_schema
from ingest_assets.errors import SourceError, SourceUnavailable
from ingest_assets.kinds.base import Cleaner, DatasetConfig, Page, Plan, Slice, Source
from ingest_assets.kinds.registry import SOURCE_KINDS
from ingest_assets.kinds.typed import TypedDatasetConfig, parse_interval
from ingest_assets.partitions import yearly_partitions
from ingest_assets.schema_changes import FieldChanges, evolving, year_cleaner
from ingest_assets.staging.frames import CleanedFrames, FrameStream
from ingest_assets.staging.pages import PageStream, StagedPages
from ingest_assets.warehouse import ledger
from ingest_assets.warehouse.loader import (
    COPY_BLOCK_ROWS,
    Counts,
    now,
    record_failure,
    replace_year,
    upsert_year,
)
from ingest_assets.warehouse.resource import Warehouse
from ingest_assets.warehouse.tables import FactsTable, table_columns
from ingest_assets.warehouse.views import refresh_views

RECONCILE_CHECK = "row_counts_reconcile"
FULL_RELOAD_TAG = "ingest/full_reload"
FETCH_RETRY = dg.RetryPolicy(
    max_retries=2, delay=10, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)


def api_pool(config: DatasetConfig) -> str:
    """One Dagster pool per API host, so concurrent runs share the host's request budget."""
    url = getattr(config, "base_url", None) or getattr(config, "domain", None) or config.source
    host = urlparse(url if "//" in url else f"//{url}").hostname or config.source
    return "api_" + "".join(ch if ch.isalnum() else "_" for ch in host)


def _fail_fast(fetch):
    """Errors a retry cannot fix (bad key, 400, 413, bad shape) end the step without retries."""

    def guarded(part: Slice) -> Iterator[Page]:
        try:
            yield from fetch(part)
        except SourceUnavailable:
            raise
        except SourceError as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from None

    return guarded


def _source(context: dg.AssetExecutionContext, config: DatasetConfig) -> Source:
    kind = SOURCE_KINDS[config.source]
    return getattr(context.resources, kind.resource.resource_key).source(config)


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


def run_mode(context: dg.AssetExecutionContext, config: DatasetConfig) -> str:
    """The catalog's mode, unless the run asks for a full reload."""
    return "full" if context.run.tags.get(FULL_RELOAD_TAG) == "true" else config.mode


def _plan(context: dg.AssetExecutionContext, config: DatasetConfig, source: Source) -> Plan:
    year = int(context.partition_key)
    if run_mode(context, config) != "incremental":
        return source.plan(year)
    assert isinstance(config, TypedDatasetConfig)
    since = incremental_since(context.resources.warehouse, config, year)
    context.log.info(
        f"{config.name} {year}: incremental, "
        + (f"rows with {config.updated_column} >= {since}" if since else "no watermark yet")
    )
    return source.plan_changes(year, since)


def _loader(mode: str, config: DatasetConfig, year_count: int):
    """``replace_year`` for full loads; ``upsert_year`` bound to the key and watermark column."""
    if mode != "incremental":
        return replace_year
    assert isinstance(config, TypedDatasetConfig) and config.updated_column
    return functools.partial(
        upsert_year, year_source=year_count, updated_column=config.updated_column
    )


def dataset_assets(config: DatasetConfig) -> list[dg.AssetsDefinition]:
    """Build the three assets of one catalog entry."""
    kind = SOURCE_KINDS[config.source]
    partitions = yearly_partitions(config)
    name = config.name
    raw_key, cleaned_key, facts_key = (
        dg.AssetKey([name, step]) for step in ("raw_pages", "cleaned", "facts")
    )
    key = tuple(getattr(config, "key", ()))
    target = FactsTable(
        config.db_schema, config.table, kind.cleaner(config).columns(), key, evolving(config)
    )
    incremental = config.mode == "incremental"
    about = config.description or f"{config.source} dataset {name}"
    common = {
        "partitions_def": partitions,
        "group_name": name,
        "owners": config.owners or None,
        "backfill_policy": backfill_policy(config),
        "tags": {"source": config.source, "dataset": name},  # filterable in the asset graph
    }
    columns = dg.TableSchema(columns=[dg.TableColumn(c.name, c.pg_type) for c in target.columns])

    @dg.asset(
        key=raw_key,
        io_manager_key="pages_io_manager",
        required_resource_keys={kind.resource.resource_key}
        | ({"warehouse"} if incremental else set()),
        kinds={config.source, config.page_format},
        pool=api_pool(config),
        retry_policy=FETCH_RETRY,
        description=f"Raw API responses for one year of {about}, staged as compressed files "
        "with a manifest of slices (filters, promised and received counts).",
        **common,
    )
    def raw_pages(context: dg.AssetExecutionContext) -> PageStream:
        source = _source(context, config)
        year = int(context.partition_key)
        try:
            plan = _plan(context, config, source)
        except SourceUnavailable:
            raise
        except SourceError as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from None
        context.log.info(
            f"{name} {year}: {plan.source_count:,} records in {len(plan.slices)} slice(s)"
        )
        return PageStream(
            label=name,
            plan=plan,
            fetch=_fail_fast(source.fetch),
            suffix=f".{config.page_format}",
            query=source.describe_query(year),
        )

    @dg.asset(
        key=cleaned_key,
        ins={"raw_pages": dg.AssetIn(raw_key)},
        io_manager_key="frames_io_manager",
        kinds={"parquet", "pyarrow"},
        description=f"Typed, snake_case rows of {about} for one year, as Parquet row groups.",
        **common,
    )
    def cleaned(context: dg.AssetExecutionContext, raw_pages: StagedPages) -> FrameStream:
        cleaner, changes = year_cleaner(kind.cleaner, config, raw_pages)
        year = int(context.partition_key)
        schema = arrow_schema(cleaner.columns()).with_metadata(changes.schema_metadata())
        return FrameStream(schema=schema, chunks=_clean_pages(cleaner, raw_pages, year))

    @dg.asset(
        key=facts_key,
        ins={"raw_pages": dg.AssetIn(raw_key), "cleaned": dg.AssetIn(cleaned_key)},
        kinds={"postgres", config.source},
        check_specs=[
            dg.AssetCheckSpec(
                RECONCILE_CHECK,
                asset=facts_key,
                blocking=True,
                description="Source count = rows staged = rows cleaned = rows loaded for "
                "the year"
                + (
                    " (the changed rows), and the year's rows in the table = the source's "
                    "count for the year"
                    if incremental
                    else ""
                )
                + "; verified before the load commits.",
            )
        ],
        description=f"{about} in PostgreSQL table {config.db_schema}.{config.table}; "
        + (
            f"changed rows merged on {', '.join(key)} each run."
            if incremental
            else "each year replaced atomically."
        ),
        **common,
    )
    def facts(
        context: dg.AssetExecutionContext,
        warehouse: Warehouse,
        raw_pages: StagedPages,
        cleaned: CleanedFrames,
    ) -> dg.MaterializeResult:
        year = int(context.partition_key)
        mode = run_mode(context, config)
        merging = mode == "incremental"
        counts = Counts(raw_pages.source_count, raw_pages.staged_rows, cleaned.num_rows)
        changes = FieldChanges.of_schema(cleaned.schema)
        year_target = dataclasses.replace(
            target, columns=(*target.columns, *changes.added_columns())
        )
        entry = ledger.LedgerEntry(
            name,
            f"{config.db_schema}.{config.table}",
            year,
            context.run.run_id,
            mode,
            now(),
            counts.source,
            counts.staged,
            counts.cleaned,
        )
        with warehouse.connect() as conn:
            try:
                load = _loader(mode, config, raw_pages.year_count)
                result = load(
                    conn,
                    year_target,
                    year,
                    cleaned.batches(COPY_BLOCK_ROWS),
                    counts,
                    entry,
                    analyze=config.analyze,
                )
            except Exception as exc:
                conn.rollback()
                record_failure(conn, entry, f"{type(exc).__name__}: {exc}")
                raise
            if not result.committed:
                record_failure(conn, entry, result.mismatch(), result.loaded)
            table_schema = columns
            if result.committed and year_target.evolve:
                table_schema = dg.TableSchema(
                    columns=[
                        dg.TableColumn(name, pg_type)
                        for name, pg_type in table_columns(conn, year_target).items()
                    ]
                )
            if result.committed and config.refresh_views:
                views = refresh_views(
                    conn, config.db_schema, config.refresh_views, f"{name} year {year}"
                )
                context.log.info(f"{name} year {year}: refreshed {', '.join(views)}")
        figures = {k: dg.MetadataValue.int(v) for k, v in result.figures.items()}
        message = (
            f"{name} year {year}: {result.loaded:,} rows loaded, matching the source"
            + (f" ({result.year_rows:,} rows in the year)" if merging else "")
            if result.committed
            else f"{name} {result.mismatch()}; load rolled back, table unchanged"
        )
        if not result.committed:
            context.log.error(message)
        check = dg.AssetCheckResult(
            check_name=RECONCILE_CHECK,
            passed=result.committed,
            description=message,
            metadata={"year": dg.MetadataValue.int(year), **figures},
        )
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": dg.MetadataValue.int(result.loaded if result.committed else 0),
                "dagster/table_name": f"{config.db_schema}.{config.table}",
                "dagster/column_schema": table_schema,
                **_schema_change_metadata(
                    changes, result.columns_added if result.committed else ()
                ),
                "rows_replaced": dg.MetadataValue.int(result.replaced),
                **(
                    {
                        "rows_inserted": dg.MetadataValue.int(result.inserted),
                        "rows_updated": dg.MetadataValue.int(result.updated),
                    }
                    if merging
                    else {}
                ),
                "committed": dg.MetadataValue.bool(result.committed),
                "seconds": dg.MetadataValue.float(round(result.seconds, 3)),
                "copy_seconds": dg.MetadataValue.float(round(result.copy_seconds, 3)),
                "analyze_seconds": dg.MetadataValue.float(round(result.analyze_seconds, 3)),
                **figures,
            },
            check_results=[check],
        )

    return [raw_pages, cleaned, facts]


def _clean_pages(cleaner: Cleaner, staged: StagedPages, year: int) -> Iterator[pa.Table]:
    for entry, body in staged.bodies():
        where = f"dataset {cleaner.config.name}, year {year}, slice {entry['key']}"
        yield from cleaner.clean_chunks(body, year, where)


def _schema_change_metadata(changes: FieldChanges, added: tuple[str, ...]) -> dict:
    """What ``add_columns`` did this load: the columns it added, the fields loaded as NULL."""
    if not (changes.added or changes.missing):
        return {}
    return {
        "columns_added": dg.MetadataValue.text(", ".join(added) or "none"),
        "new_fields": dg.MetadataValue.text(", ".join(changes.added) or "none"),
        "fields_missing_at_source": dg.MetadataValue.text(", ".join(changes.missing) or "none"),
    }
