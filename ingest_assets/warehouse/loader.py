"""Loading a year: COPY the cleaned Parquet into a fresh table, reconcile, swap it in.

Everything happens in one transaction under an advisory lock on (table, year):
``CREATE`` a standalone table with ``CHECK (year = Y)``, stream the Parquet into it with COPY
(pyarrow formats CSV blocks in C++; no Python row objects; FREEZE, as the table is new), take the
server's count of the rows COPY inserted and compare it with the source, staged and cleaned
counts. Only if all four agree is the old year's partition detached and dropped and the new one
attached in its place, with a ledger row, and committed.
Readers see the old year or the new one, never a mix; a crash at any point rolls everything back;
two runs of the same year queue on the lock instead of interleaving.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import sql

from ingest_assets.warehouse import ledger
from ingest_assets.warehouse.tables import FactsTable, ensure_table, partition_exists

COPY_BLOCK_ROWS = 65_536
_CSV_OPTIONS = pacsv.WriteOptions(include_header=False, batch_size=COPY_BLOCK_ROWS)


@dataclass(frozen=True)
class Counts:
    """The figures a load must reconcile: what the source promised, what was staged, cleaned."""

    source: int
    staged: int
    cleaned: int


@dataclass
class LoadResult:
    year: int
    counts: Counts
    loaded: int
    committed: bool
    replaced: int
    seconds: float
    copy_seconds: float
    notes: list[str] = field(default_factory=list)

    @property
    def figures(self) -> dict[str, int]:
        return {
            "source_count": self.counts.source,
            "staged_rows": self.counts.staged,
            "cleaned_rows": self.counts.cleaned,
            "loaded_rows": self.loaded,
        }

    @property
    def reconciled(self) -> bool:
        return len(set(self.figures.values())) == 1

    def mismatch(self) -> str:
        names = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in self.figures.items())
        return f"year {self.year} does not reconcile: {names}"


def csv_blocks(batches: Iterable[pa.RecordBatch]) -> Iterator[bytes]:
    """Format record batches as COPY-ready CSV (NULL unquoted, empty strings quoted)."""
    for batch in batches:
        buffer = io.BytesIO()
        pacsv.write_csv(batch, buffer, _CSV_OPTIONS)
        yield buffer.getvalue()


def copy_into(
    conn: psycopg.Connection,
    ident: sql.Composable,
    columns: sql.Composable,
    blocks: Iterable[bytes],
    freeze: bool = False,
) -> int:
    """COPY the blocks into ``ident``; returns the rows the server says it inserted.

    ``freeze`` (only for a table created in this transaction) writes the rows already frozen,
    sparing the first reader or VACUUM a rewrite of every page to set hint bits.
    """
    options = sql.SQL("FORMAT csv, FREEZE" if freeze else "FORMAT csv")
    statement = sql.SQL("COPY {} ({}) FROM STDIN ({})").format(ident, columns, options)
    with conn.cursor() as cur:
        with cur.copy(statement) as copy:
            for block in blocks:
                copy.write(block)
        return cur.rowcount


def lock_year(conn: psycopg.Connection, target: FactsTable, year: int) -> None:
    conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext(%s), %s)",
        (f"{target.schema}.{target.table}", year),
    )


def replace_year(
    conn: psycopg.Connection,
    target: FactsTable,
    year: int,
    batches: Iterable[pa.RecordBatch],
    counts: Counts,
    entry: ledger.LedgerEntry,
    analyze: bool = True,
) -> LoadResult:
    """Atomically replace one year of ``target``; commit only if the counts reconcile."""
    started = time.monotonic()
    with conn.transaction():
        ledger.ensure_ledger(conn)
        ensure_table(conn, target)
    with conn.transaction() as tx:
        lock_year(conn, target, year)
        staging = target.partition_ident(year, "_load")
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(staging))
        conn.execute(
            sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS, CHECK (year = {}))").format(
                staging, target.ident, sql.Literal(year)
            )
        )
        copy_started = time.monotonic()
        loaded = copy_into(conn, staging, target.column_list, csv_blocks(batches), freeze=True)
        copy_seconds = time.monotonic() - copy_started
        result = LoadResult(year, counts, loaded, False, 0, 0.0, copy_seconds)
        if not result.reconciled:
            raise psycopg.Rollback(tx)
        current = target.partition_ident(year)
        if partition_exists(conn, target, year):
            result.replaced = conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(current)
            ).fetchone()[0]
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
        if analyze:
            conn.execute(sql.SQL("ANALYZE {}").format(current))
        ledger.record(conn, entry, "loaded", loaded)
        result.committed = True
    result.seconds = time.monotonic() - started
    return result


def record_failure(
    conn: psycopg.Connection, entry: ledger.LedgerEntry, message: str, loaded: int | None = None
) -> None:
    with conn.transaction():
        ledger.ensure_ledger(conn)
        ledger.record(conn, entry, "failed", loaded, message[:2000])


def now() -> datetime:
    return datetime.now(UTC)
