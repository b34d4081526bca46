"""The warehouse asset of a dataset, ``<dataset>/facts``, and its two checks.

``facts`` loads the cleaned Parquet into PostgreSQL, replacing the year atomically (or, in
``mode: incremental``, merging the changed rows on the key), and records the year in the
ledger. The blocking check is computed inside the load: source count = rows staged = rows
cleaned = rows loaded (and, incremental, the year's rows = the source's count for the year),
and a full load's shrink within ``max_shrink`` unless the run confirms it (``warehouse.shrink``),
verified before anything commits; a year that does not commit is not materialized (its
check evaluations are, and the step fails), so the UI and a backfill show it failed while
the table keeps its previous load. The WARN check ``year_not_empty`` flags a year left with 0
rows beside years with data, or a dataset empty in every year (``warehouse.emptiness``).

The checks are not partitioned: Dagster 1.13's partitioned asset checks (a preview) record the
year under the CLI and sensor runs, but a backfill launched from the UI left each year's
evaluation without its partition plus a "Skipped" planned evaluation, so the asset graph showed
"0 / 1 Passed" after a green backfill (docs/operations.md). Each evaluation names its year in
its description and ``year`` metadata instead.
The materialization's ``dagster/row_count`` is the whole table's rows (what the asset is:
one table), ``rows_in_year`` the year's after this load; both are counted in the table.
"""

import dataclasses
import functools
from collections.abc import Iterator
from dataclasses import dataclass

import dagster as dg

from ingest_assets.dataset.spec import DatasetSpec
from ingest_assets.kinds.typed import TypedDatasetConfig
from ingest_assets.schema_changes import FieldChanges
from ingest_assets.staging.frames import CleanedFrames
from ingest_assets.staging.pages import StagedPages
from ingest_assets.warehouse import ledger
from ingest_assets.warehouse.emptiness import empty_year_warning
from ingest_assets.warehouse.loader import (
    COPY_BLOCK_ROWS,
    Counts,
    LoadResult,
    now,
    record_failure,
    replace_year,
    upsert_year,
)
from ingest_assets.warehouse.resource import Warehouse
from ingest_assets.warehouse.shrink import ShrinkGuard, confirmation
from ingest_assets.warehouse.tables import table_columns, table_count, year_count
from ingest_assets.warehouse.views import refresh_views

RECONCILE_CHECK = "row_counts_reconcile"
EMPTY_YEAR_CHECK = "year_not_empty"


@dataclass(frozen=True)
class YearLoad:
    """A load's result and what the table holds after it."""

    result: LoadResult
    mode: str
    rows_in_year: int
    rows_in_table: int
    columns: dict[str, str]  # the table's columns and types after the load
    changes: FieldChanges  # fields the year's pages added or lacked (add_columns)
    warning: str | None = None  # why the year's 0 rows look wrong (the year_not_empty check)


def reconcile_check_spec(spec: DatasetSpec) -> dg.AssetCheckSpec:
    """The blocking ``row_counts_reconcile`` check, described for the dataset's mode."""
    merged = (
        " (the changed rows), and the year's rows in the table = the source's count for the year"
        if spec.incremental
        else ""
    )
    return dg.AssetCheckSpec(
        RECONCILE_CHECK,
        asset=spec.key("facts"),
        blocking=True,
        description="Source count = rows staged = rows cleaned = rows loaded for the year"
        + merged
        + "; verified before the load commits. A full load may not empty a year or remove "
        f"more than {spec.config.max_shrink:.0%} of its rows unless the run confirms it.",
    )


def empty_year_check_spec(spec: DatasetSpec) -> dg.AssetCheckSpec:
    """The non-blocking check that warns of an empty year beside years with data."""
    return dg.AssetCheckSpec(
        EMPTY_YEAR_CHECK,
        asset=spec.key("facts"),
        description="Warns when the year has 0 rows while a neighbouring year has data, or "
        "when every year loaded has 0 rows (likely a query mistake).",
    )


def _loader(mode: str, spec: DatasetSpec, year_count_at_source: int | None, guard: ShrinkGuard):
    """``replace_year`` with the shrink guard for full loads; ``upsert_year`` (which never
    removes rows) bound to the key and watermark column.
    """
    if mode != "incremental":
        return functools.partial(replace_year, guard=guard)
    config = spec.config
    assert isinstance(config, TypedDatasetConfig) and config.updated_column
    assert year_count_at_source is not None  # an incremental plan always counts the year
    return functools.partial(
        upsert_year, year_source=year_count_at_source, updated_column=config.updated_column
    )


def load_year(
    context: dg.AssetExecutionContext,
    spec: DatasetSpec,
    warehouse: Warehouse,
    raw_pages: StagedPages,
    cleaned: CleanedFrames,
) -> YearLoad:
    """Load one year; a load that fails or does not reconcile leaves a ``failed`` ledger row."""
    year = raw_pages.year
    mode = spec.run_mode(context)
    counts = Counts(raw_pages.source_count, raw_pages.staged_rows, cleaned.num_rows)
    entry = ledger.LedgerEntry(
        spec.name,
        f"{spec.config.db_schema}.{spec.config.table}",
        year,
        context.run.run_id,
        mode,
        now(),
        *(counts.source, counts.staged, counts.cleaned),
        source_version=raw_pages.manifest.get("source_version"),
    )
    guard = ShrinkGuard(spec.config.max_shrink, confirmation(context.run.tags, spec.name, year))
    load = _loader(mode, spec, raw_pages.year_count, guard)
    batches = cleaned.batches(COPY_BLOCK_ROWS)
    changes = FieldChanges.of_schema(cleaned.schema)
    target = dataclasses.replace(
        spec.target, columns=(*spec.target.columns, *changes.added_columns())
    )
    with warehouse.connect() as conn:
        try:
            result = load(conn, target, year, batches, counts, entry, analyze=spec.config.analyze)
        except Exception as exc:
            conn.rollback()
            record_failure(conn, entry, f"{type(exc).__name__}: {exc}")
            raise
        if not result.committed:
            record_failure(conn, entry, result.mismatch(), result.loaded)
        elif spec.config.refresh_views:
            where = f"{spec.name} year {year}"
            views = refresh_views(conn, spec.config.db_schema, spec.config.refresh_views, where)
            context.log.info(f"{where}: refreshed {', '.join(views)}")
        in_year, in_table = year_count(conn, target, year), table_count(conn, target)
        warning = empty_year_warning(conn, target, spec.name, year, spec.config.filters)
        columns = (
            table_columns(conn, target)
            if target.evolve  # columns added in earlier years included
            else {c.name: c.pg_type for c in target.columns}
        )
    return YearLoad(result, mode, in_year, in_table, columns, changes, warning)


def _message(spec: DatasetSpec, load: YearLoad) -> str:
    result = load.result
    if result.refusal:
        return result.refusal
    if not result.committed:
        return f"{spec.name} {result.mismatch()}; load rolled back, table unchanged"
    merged = f" ({result.year_rows:,} rows in the year)" if load.mode == "incremental" else ""
    return (
        f"{spec.name} year {result.year}: {result.loaded:,} rows loaded, matching the source"
        + merged
    )


def _metadata(spec: DatasetSpec, load: YearLoad) -> dict[str, dg.MetadataValue]:
    result = load.result
    columns = [dg.TableColumn(name, pg_type) for name, pg_type in load.columns.items()]
    merged = {"rows_inserted": result.inserted, "rows_updated": result.updated}
    return {
        "dagster/row_count": dg.MetadataValue.int(load.rows_in_table),
        "rows_in_table": dg.MetadataValue.int(load.rows_in_table),
        "rows_in_year": dg.MetadataValue.int(load.rows_in_year),
        "dagster/table_name": dg.MetadataValue.text(spec.target.schema + "." + spec.target.table),
        "dagster/column_schema": dg.MetadataValue.table_schema(dg.TableSchema(columns=columns)),
        **_schema_change_metadata(load.changes, result.columns_added),
        "rows_replaced": dg.MetadataValue.int(result.replaced),
        **(
            {k: dg.MetadataValue.int(v) for k, v in merged.items()}
            if load.mode == "incremental"
            else {}
        ),
        "committed": dg.MetadataValue.bool(result.committed),
        "seconds": dg.MetadataValue.float(round(result.seconds, 3)),
        "copy_seconds": dg.MetadataValue.float(round(result.copy_seconds, 3)),
        "analyze_seconds": dg.MetadataValue.float(round(result.analyze_seconds, 3)),
        **{k: dg.MetadataValue.int(v) for k, v in result.figures.items()},
    }


def _schema_change_metadata(changes: FieldChanges, added: tuple[str, ...]) -> dict:
    """What ``add_columns`` did this load: the columns it added, the fields loaded as NULL."""
    if not (changes.added or changes.missing):
        return {}
    return {
        "columns_added": dg.MetadataValue.text(", ".join(added) or "none"),
        "new_fields": dg.MetadataValue.text(", ".join(changes.added) or "none"),
        "fields_missing_at_source": dg.MetadataValue.text(", ".join(changes.missing) or "none"),
    }


def _check_results(spec: DatasetSpec, load: YearLoad) -> list[dg.AssetCheckResult]:
    """The year's evaluations of both checks."""
    message = _message(spec, load)
    figures = {k: dg.MetadataValue.int(v) for k, v in load.result.figures.items()}
    year = {"year": dg.MetadataValue.int(load.result.year)}
    return [
        dg.AssetCheckResult(
            check_name=RECONCILE_CHECK,
            passed=load.result.committed,
            description=message,
            metadata={**year, **figures},
        ),
        dg.AssetCheckResult(
            check_name=EMPTY_YEAR_CHECK,
            passed=load.warning is None,
            severity=dg.AssetCheckSeverity.WARN,
            description=load.warning
            or f"{spec.name} year {load.result.year}: not suspiciously empty",
            metadata=year,
        ),
    ]


def _over_years(evaluations: list[dg.AssetCheckResult]) -> dg.AssetCheckResult:
    """One evaluation of a check for a run of several years (Dagster takes one per step): it
    passes when every year's does, and lists each year's outcome.
    """
    first = evaluations[0]
    years = [e.metadata["year"].value for e in evaluations]
    failed = [e.metadata["year"].value for e in evaluations if not e.passed]
    return dg.AssetCheckResult(
        check_name=first.check_name,
        passed=not failed,
        severity=first.severity,
        description="\n".join(e.description or "" for e in evaluations),
        metadata={
            "years": dg.MetadataValue.text(", ".join(map(str, years))),
            "years_failed": dg.MetadataValue.text(", ".join(map(str, failed)) or "none"),
        },
    )


def _raised_result(spec: DatasetSpec, year: str, error: Exception) -> dg.AssetCheckResult:
    """A year whose load raised did not reconcile: it counts among the check's failed years."""
    return dg.AssetCheckResult(
        check_name=RECONCILE_CHECK,
        passed=False,
        description=f"{spec.name} year {year}: {type(error).__name__}: {error}; "
        "load rolled back, table unchanged",
        metadata={"year": dg.MetadataValue.int(int(year))},
    )


def _evaluations(
    spec: DatasetSpec, loads: list[YearLoad], errors: dict[str, Exception]
) -> list[dg.AssetCheckResult]:
    """Each check's one evaluation for the run: the year's, or the run's years' together (a
    year that raised has no emptiness to judge, only a failed reconciliation).
    """
    per_year = {load.result.year: _check_results(spec, load) for load in loads}
    per_year |= {int(year): [_raised_result(spec, year, error)] for year, error in errors.items()}
    if len(loads) == 1 and not errors:
        return per_year[loads[0].result.year]
    by_check: dict[str, list[dg.AssetCheckResult]] = {}
    for year in sorted(per_year):
        for result in per_year[year]:
            by_check.setdefault(str(result.check_name), []).append(result)
    return [_over_years(group) for group in by_check.values()]


def _materialize_committed(
    context: dg.AssetExecutionContext, spec: DatasetSpec, loads: list[YearLoad]
) -> None:
    for load in loads:
        if load.result.committed:
            year, metadata = str(load.result.year), _metadata(spec, load)
            event = dg.AssetMaterialization(spec.key("facts"), partition=year, metadata=metadata)
            context.log_event(event)


def facts_events(
    context: dg.AssetExecutionContext,
    spec: DatasetSpec,
    loads: list[YearLoad],
    errors: dict[str, Exception],
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """The materialization (each year's table figures) and the checks' evaluations.

    A year that did not commit (refused, not reconciled, or raised) is not materialized: the
    table still holds its previous load, and a backfill must count the year as failed. The
    committed years of such a run are materialized one by one, then the step fails naming the
    others.
    """
    for load in loads:
        # At INFO (dagster.yaml) the year's outcome is the line a CLI or CI user reads.
        (context.log.info if load.result.committed else context.log.error)(_message(spec, load))
        if load.warning:
            context.log.warning(load.warning)
    evaluations = _evaluations(spec, loads, errors)
    failed = [_message(spec, load) for load in loads if not load.result.committed]
    failed += [f"{spec.name} year {y}: {type(e).__name__}: {e}" for y, e in errors.items()]
    if failed:
        _materialize_committed(context, spec, loads)
        yield from evaluations
        raise dg.Failure(description="; ".join(failed), allow_retries=False)
    if len(loads) == 1:
        yield dg.MaterializeResult(metadata=_metadata(spec, loads[0]), check_results=evaluations)
        return
    for load in loads:
        context.add_asset_metadata(_metadata(spec, load), partition_key=str(load.result.year))
    yield dg.MaterializeResult(check_results=evaluations)


def load_years(
    context: dg.AssetExecutionContext,
    spec: DatasetSpec,
    warehouse: Warehouse,
    raw_pages: dict[str, StagedPages],
    cleaned: dict[str, CleanedFrames],
) -> tuple[list[YearLoad], dict[str, Exception]]:
    """Load the run's years one by one, each in its own transaction: the loads, and the
    exception of each year that raised. In a run of several years one that raises does not stop
    the others; a run of one year raises it as it is.
    """
    if len(raw_pages) == 1:
        (year,) = raw_pages
        return [load_year(context, spec, warehouse, raw_pages[year], cleaned[year])], {}
    loads, errors = [], {}
    for year in context.partition_keys:
        try:
            loads.append(load_year(context, spec, warehouse, raw_pages[year], cleaned[year]))
        except Exception as exc:
            context.log.error(f"{spec.name} year {year}: {type(exc).__name__}: {exc}")
            errors[year] = exc
    return loads, errors


def facts_asset(spec: DatasetSpec) -> dg.AssetsDefinition:
    """The ``<dataset>/facts`` asset: load the year into PostgreSQL and evaluate its check."""
    config = spec.config
    loaded = (
        f"changed rows merged on {', '.join(spec.target.key)} each run."
        if spec.incremental
        else "each year replaced atomically."
    )

    @dg.asset(
        key=spec.key("facts"),
        ins={
            "raw_pages": dg.AssetIn(spec.key("raw_pages")),
            "cleaned": dg.AssetIn(spec.key("cleaned")),
        },
        kinds={"postgres", config.source},
        check_specs=[reconcile_check_spec(spec), empty_year_check_spec(spec)],
        description=f"{spec.about} in PostgreSQL table {config.db_schema}.{config.table}; {loaded}",
        **spec.asset_arguments(),
    )
    def facts(
        context: dg.AssetExecutionContext,
        warehouse: Warehouse,
        raw_pages: dict[str, StagedPages],
        cleaned: dict[str, CleanedFrames],
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        loads, errors = load_years(context, spec, warehouse, raw_pages, cleaned)
        yield from facts_events(context, spec, loads, errors)

    return facts
