"""Loading a year: COPY the cleaned Parquet into a fresh table, reconcile, swap it in.

Everything happens in one transaction under an advisory lock on (table, year):
``CREATE`` a standalone table with ``CHECK (year IS NOT NULL AND year = Y)`` (what the
partition bound implies, so ATTACH need not scan it), stream the Parquet into it with COPY
(pyarrow formats CSV blocks in C++; no Python row objects; FREEZE, as the table is new), take the
server's count of the rows COPY inserted and compare it with the source, staged and cleaned
counts. Only if all four agree, and the shrink guard (``shrink``) accepts the new year's rows
against the old year's, is the old year's partition detached and dropped and the new one attached
in its place, with a ledger row, and committed.
Readers see the old year or the new one, never a mix; a crash at any point rolls everything back;
two runs of the same year queue on the lock instead of interleaving. Loads of other years of the
same table queue too, on the parent's ``SHARE UPDATE EXCLUSIVE`` lock, taken first: each load
holds a share lock on the parent from creating its year table, so two reloads swapping at once
each waited for the other's to DETACH, a deadlock PostgreSQL ended by aborting one. Readers
are not blocked by that lock, only by the DETACH/ATTACH at the end.

Incremental datasets (``upsert_year``) COPY the changed rows into a temporary table instead and
merge them on ``(year, key)`` with ``INSERT ... ON CONFLICT`` under the same lock, advancing the
watermark and writing the ledger row in the same transaction; they commit only if fetched =
staged = cleaned = merged rows and the year's rows in the table equal the source's count for it.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, date, datetime

import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import sql

from ingest_assets.errors import WarehouseError
from ingest_assets.prefetch import ahead
from ingest_assets.warehouse import ledger
from ingest_assets.warehouse.shrink import ShrinkGuard
from ingest_assets.warehouse.tables import (
    FactsTable,
    ensure_table,
    evolve_table,
    partition_exists,
    scalar,
    year_count,
)

COPY_BLOCK_ROWS = 16_384  # ~7 MB of CSV: small enough to keep two in flight
_CSV_OPTIONS = pacsv.WriteOptions(include_header=False, batch_size=COPY_BLOCK_ROWS)


@dataclass(frozen=True)
class Counts:
    """The figures a load must reconcile: what the source promised, what was staged, cleaned."""

    source: int
    staged: int
    cleaned: int


@dataclass
class LoadResult:
    """The figures of one year's load, for the check, the ledger and the UI."""

    year: int
    counts: Counts
    loaded: int
    committed: bool
    replaced: int
    seconds: float
    copy_seconds: float
    analyze_seconds: float = 0.0
    year_source: int | None = None  # incremental: the source's count for the whole year
    year_rows: int | None = None  # incremental: the year's rows in the table after merging
    inserted: int = 0
    updated: int = 0
    refusal: str | None = None  # why the shrink guard kept the old year
    columns_added: tuple[str, ...] = ()  # add_columns: new nullable columns this load added

    @property
    def figures(self) -> dict[str, int]:
        chain = {
            "source_count": self.counts.source,
            "staged_rows": self.counts.staged,
            "cleaned_rows": self.counts.cleaned,
            "loaded_rows": self.loaded,
        }
        if self.year_source is None:
            return chain
        return chain | {
            "year_source_count": self.year_source,
            "year_table_rows": self.year_rows or 0,
        }

    @property
    def reconciled(self) -> bool:
        chain = (self.counts.source, self.counts.staged, self.counts.cleaned, self.loaded)
        return len(set(chain)) == 1 and (
            self.year_source is None or self.year_source == self.year_rows
        )

    def mismatch(self) -> str:
        if self.refusal:
            return self.refusal
        names = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in self.figures.items())
        return f"year {self.year} does not reconcile: {names}"


def csv_blocks(batches: Iterable[pa.RecordBatch]) -> Iterator[bytes]:
    """Format record batches as COPY-ready CSV (NULL unquoted, empty strings quoted), in blocks
    of ``COPY_BLOCK_ROWS``.
    """
    for batch in batches:
        for offset in range(0, batch.num_rows, COPY_BLOCK_ROWS):
            buffer = io.BytesIO()
            pacsv.write_csv(batch.slice(offset, COPY_BLOCK_ROWS), buffer, _CSV_OPTIONS)
            yield buffer.getvalue()


def copy_into(
    conn: psycopg.Connection,
    ident: sql.Composable,
    columns: sql.Composable,
    blocks: Iterable[bytes],
    freeze: bool = False,
) -> int:
    """COPY the blocks into ``ident``; returns the rows the server says it inserted.

    The blocks are produced two ahead on a second thread, so the server parses one while the
    next is read and formatted (in one thread the two took turns: ~20% slower). ``freeze``
    (only for a table created in this transaction) writes the rows already frozen, sparing the
    first reader or VACUUM a rewrite of every page to set hint bits.
    """
    options = sql.SQL("FORMAT csv, FREEZE" if freeze else "FORMAT csv")
    statement = sql.SQL("COPY {} ({}) FROM STDIN ({})").format(ident, columns, options)
    with conn.cursor() as cur:
        with cur.copy(statement) as copy, closing(ahead(blocks, 2, "copy-blocks")) as ready:
            for block in ready:
                copy.write(block)
        return cur.rowcount


def analyze_table(conn: psycopg.Connection, ident: sql.Composable) -> float:
    """Refresh the planner's statistics of one table; returns the seconds it took."""
    started = time.monotonic()
    conn.execute(sql.SQL("ANALYZE {}").format(ident))
    return time.monotonic() - started


def lock_year(conn: psycopg.Connection, target: FactsTable, year: int) -> None:
    """Serialize loads of one table's year, then of the table, for the rest of the transaction
    (always in that order, so no two loads wait for each other).
    """
    conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext(%s), %s)",
        (f"{target.schema}.{target.table}", year),
    )
    conn.execute(sql.SQL("LOCK TABLE ONLY {} IN SHARE UPDATE EXCLUSIVE MODE").format(target.ident))


def replace_year(
    conn: psycopg.Connection,
    target: FactsTable,
    year: int,
    batches: Iterable[pa.RecordBatch],
    counts: Counts,
    entry: ledger.LedgerEntry,
    analyze: bool = True,
    guard: ShrinkGuard | None = None,
) -> LoadResult:
    """Atomically replace one year of ``target``; commit only if the counts reconcile and the
    ``guard`` (default: none) accepts the shrink from the old year's rows to the new.
    """
    started = time.monotonic()
    prepare(conn, target)
    with conn.transaction() as tx:
        lock_year(conn, target, year)
        added = tuple(evolve_table(conn, target)) if target.evolve else ()
        staging = target.partition_ident(year, "_load")
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(staging))
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS, "
                "CHECK (year IS NOT NULL AND year = {}))"
            ).format(staging, target.ident, sql.Literal(year))
        )
        copy_started = time.monotonic()
        loaded = copy_into(conn, staging, target.column_list, csv_blocks(batches), freeze=True)
        copy_seconds = time.monotonic() - copy_started
        result = LoadResult(year, counts, loaded, False, 0, 0.0, copy_seconds)
        if not result.reconciled:
            raise psycopg.Rollback(tx)
        result.columns_added = added  # only a committed load added them
        current = target.partition_ident(year)
        exists = partition_exists(conn, target, year)
        if exists:
            result.replaced = scalar(conn, sql.SQL("SELECT count(*) FROM {}").format(current))
        if guard is not None:
            result.refusal = guard.refusal(entry.dataset, year, result.replaced, loaded)
            if result.refusal:
                raise psycopg.Rollback(tx)
        if analyze:  # before DETACH takes the parent's exclusive lock; statistics survive ATTACH
            result.analyze_seconds = analyze_table(conn, staging)
        if exists:
            conn.execute(
                sql.SQL("ALTER TABLE {} DETACH PARTITION {}").format(target.ident, current)
            )
            conn.execute(sql.SQL("DROP TABLE {}").format(current))
        conn.execute(
            sql.SQL("ALTER TABLE {} RENAME TO {}").format(
                staging, sql.Identifier(target.partition_name(year))
            )
        )
        conn.execute(
            sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES IN ({})").format(
                target.ident, current, sql.Literal(year)
            )
        )
        confirmed = (
            guard.confirmed_by if guard and guard.exceeded(result.replaced, loaded) else None
        )
        ledger.record(
            conn, entry, "loaded", loaded, rows_before=result.replaced, confirmed=confirmed
        )
        result.committed = True
    result.seconds = time.monotonic() - started
    return result


def prepare(conn: psycopg.Connection, target: FactsTable) -> None:
    """Create the ledger and the facts table if missing (and refuse a drifted table)."""
    with conn.transaction():
        ledger.ensure_ledger(conn)
        ensure_table(conn, target)


def _ensure_key_index(conn: psycopg.Connection, target: FactsTable) -> None:
    """The unique index ON CONFLICT needs; on a partitioned table it must include ``year``."""
    if not target.key:
        raise WarehouseError(f"table {target.schema}.{target.table}: an upsert needs a key")
    columns = ["year", *(k for k in target.key if k != "year")]
    conn.execute(
        sql.SQL("CREATE UNIQUE INDEX IF NOT EXISTS {} ON {} ({})").format(
            sql.Identifier(f"{target.table[:50]}_key"),
            target.ident,
            sql.SQL(", ").join(map(sql.Identifier, columns)),
        )
    )


def _watermark_text(value: datetime | date) -> str:
    if isinstance(value, datetime):
        return value.isoformat(timespec="milliseconds")
    return value.isoformat()


def upsert_year(
    conn: psycopg.Connection,
    target: FactsTable,
    year: int,
    batches: Iterable[pa.RecordBatch],
    counts: Counts,
    entry: ledger.LedgerEntry,
    *,
    year_source: int,
    updated_column: str,
    analyze: bool = True,
) -> LoadResult:
    """Merge changed rows into one year of ``target`` on its key; advance the watermark.

    Commits only if every changed row was merged and the year's rows then equal
    ``year_source``, the source's count for the year.
    """
    started = time.monotonic()
    prepare(conn, target)
    with conn.transaction():
        _ensure_key_index(conn, target)
    with conn.transaction() as tx:
        lock_year(conn, target, year)
        added = tuple(evolve_table(conn, target)) if target.evolve else ()
        conn.execute(
            sql.SQL("CREATE TABLE IF NOT EXISTS {} PARTITION OF {} FOR VALUES IN ({})").format(
                target.partition_ident(year), target.ident, sql.Literal(year)
            )
        )
        changes = sql.Identifier("_changes")
        conn.execute(
            sql.SQL("CREATE TEMP TABLE {} (LIKE {}) ON COMMIT DROP").format(changes, target.ident)
        )
        copy_started = time.monotonic()
        copy_into(conn, changes, target.column_list, csv_blocks(batches))
        copy_seconds = time.monotonic() - copy_started
        loaded = scalar(conn, sql.SQL("SELECT count(*) FROM {}").format(changes))
        result = LoadResult(year, counts, loaded, False, 0, 0.0, copy_seconds)
        result.year_source = year_source
        keys = sql.SQL(", ").join(map(sql.Identifier, ["year", *target.key]))
        duplicate = conn.execute(
            sql.SQL("SELECT {}, count(*) FROM {} GROUP BY {} HAVING count(*) > 1 LIMIT 1").format(
                keys, changes, keys
            )
        ).fetchone()
        if duplicate is not None:
            raise WarehouseError(
                f"year {year}: key {dict(zip(['year', *target.key], duplicate, strict=False))} "
                f"arrived {duplicate[-1]} times in one load; the key does not identify a row"
            )
        rows_before = year_count(conn, target, year)
        others = [c.name for c in target.columns if c.name not in ("year", *target.key)]
        merged = conn.execute(
            sql.SQL(
                "INSERT INTO {target} AS t ({columns}) SELECT {columns} FROM {changes} "
                "ON CONFLICT ({keys}) DO UPDATE SET {assign} "
                "WHERE ({old}) IS DISTINCT FROM ({new}) RETURNING 1"
            ).format(
                target=target.ident,
                columns=target.column_list,
                changes=changes,
                keys=keys,
                assign=sql.SQL(", ").join(
                    sql.SQL("{} = excluded.{}").format(sql.Identifier(c), sql.Identifier(c))
                    for c in others
                ),
                old=sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in others),
                new=sql.SQL(", ").join(
                    sql.SQL("excluded.{}").format(sql.Identifier(c)) for c in others
                ),
            )
        ).fetchall()
        result.year_rows = year_count(conn, target, year)
        # (xmax cannot tell inserts from updates on a partitioned table; the count can)
        result.inserted = result.year_rows - rows_before
        result.updated = len(merged) - result.inserted
        if not result.reconciled:
            raise psycopg.Rollback(tx)
        result.columns_added = added  # only a committed load added them
        newest = scalar(
            conn, sql.SQL("SELECT max({}) FROM {}").format(sql.Identifier(updated_column), changes)
        )
        previous = ledger.read_watermark(conn, entry.dataset, year)
        if newest is not None and (previous is None or _watermark_text(newest) > previous):
            ledger.write_watermark(conn, entry.dataset, year, _watermark_text(newest))
        if analyze:
            result.analyze_seconds = analyze_table(conn, target.partition_ident(year))
        ledger.record(conn, entry, "loaded", loaded)
        result.committed = True
    result.seconds = time.monotonic() - started
    return result


def record_failure(
    conn: psycopg.Connection, entry: ledger.LedgerEntry, message: str, loaded: int | None = None
) -> None:
    """Record a failed load in the ledger, in its own transaction."""
    with conn.transaction():
        ledger.ensure_ledger(conn)
        ledger.record(conn, entry, "failed", loaded, message[:2000])


def now() -> datetime:
    """The current time in UTC (the ledger's clock)."""
    return datetime.now(UTC)
