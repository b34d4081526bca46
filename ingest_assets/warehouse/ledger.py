"""The load ledger and incremental watermarks, kept in the warehouse's ``ingest_meta`` schema.

A ledger row is written in the same transaction as the rows it describes, so the ledger never
claims a load that did not commit; failed loads get their own row afterwards, with the error.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

from ingest_assets.warehouse.tables import ensure_schema

DDL = """
CREATE TABLE IF NOT EXISTS ingest_meta.load_ledger (
    id bigserial PRIMARY KEY,
    dataset text NOT NULL,
    target_table text NOT NULL,
    year integer NOT NULL,
    run_id text NOT NULL,
    mode text NOT NULL,
    rows_loaded bigint,
    source_count bigint,
    staged_rows bigint,
    cleaned_rows bigint,
    started_at timestamptz NOT NULL,
    finished_at timestamptz NOT NULL DEFAULT now(),
    status text NOT NULL CHECK (status IN ('loaded', 'failed')),
    message text
);
ALTER TABLE ingest_meta.load_ledger ADD COLUMN IF NOT EXISTS source_version text;
ALTER TABLE ingest_meta.load_ledger ADD COLUMN IF NOT EXISTS rows_before bigint;
ALTER TABLE ingest_meta.load_ledger ADD COLUMN IF NOT EXISTS shrink_confirmed_by text;
CREATE TABLE IF NOT EXISTS ingest_meta.watermarks (
    dataset text NOT NULL,
    year integer NOT NULL,
    value text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dataset, year)
);
"""


@dataclass(frozen=True)
class LedgerEntry:
    """The identity of one load attempt as the ledger records it."""

    dataset: str
    target_table: str
    year: int
    run_id: str
    mode: str
    started_at: datetime
    source_count: int
    staged_rows: int
    cleaned_rows: int
    source_version: str | None = None  # e.g. a bulk file's name@ETag the rows came from


def ensure_ledger(conn: psycopg.Connection) -> None:
    """Create the ledger tables if missing, serialized against concurrent loaders."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('ingest_meta.ddl'))")
    ensure_schema(conn, "ingest_meta")
    conn.execute(DDL)


def record(
    conn: psycopg.Connection,
    entry: LedgerEntry,
    status: str,
    rows_loaded: int | None,
    message: str | None = None,
    *,
    rows_before: int | None = None,
    confirmed: str | None = None,
) -> None:
    """One ledger row; ``rows_before`` is the year's rows the load replaced, ``confirmed`` who
    confirmed a shrink beyond the catalog's ``max_shrink`` (see ``warehouse.shrink``).
    """
    conn.execute(
        "INSERT INTO ingest_meta.load_ledger (dataset, target_table, year, run_id, mode, "
        "rows_loaded, source_count, staged_rows, cleaned_rows, started_at, status, message, "
        "source_version, rows_before, shrink_confirmed_by) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            entry.dataset,
            entry.target_table,
            entry.year,
            entry.run_id,
            entry.mode,
            rows_loaded,
            entry.source_count,
            entry.staged_rows,
            entry.cleaned_rows,
            entry.started_at,
            status,
            message,
            entry.source_version,
            rows_before,
            confirmed,
        ),
    )


def read_watermark(conn: psycopg.Connection, dataset: str, year: int) -> str | None:
    """The stored watermark of a dataset's year, if any."""
    row = conn.execute(
        "SELECT value FROM ingest_meta.watermarks WHERE dataset = %s AND year = %s",
        (dataset, year),
    ).fetchone()
    return row[0] if row else None


def write_watermark(conn: psycopg.Connection, dataset: str, year: int, value: str) -> None:
    """Store the watermark of a dataset's year (in the caller's transaction)."""
    conn.execute(
        "INSERT INTO ingest_meta.watermarks (dataset, year, value) VALUES (%s, %s, %s) "
        "ON CONFLICT (dataset, year) DO UPDATE SET value = excluded.value, updated_at = now()",
        (dataset, year, value),
    )


@dataclass(frozen=True)
class LastLoad:
    """The ledger's latest row for one dataset and year."""

    dataset: str
    year: int
    finished_at: datetime
    rows_loaded: int | None
    source_count: int | None
    status: str


def latest_loads(conn: psycopg.Connection, dataset: str | None = None) -> list[LastLoad]:
    """The latest ledger row per dataset and year (of ``dataset`` only, if given)."""
    exists = conn.execute("SELECT to_regclass('ingest_meta.load_ledger')").fetchone()
    if exists is None or exists[0] is None:
        return []
    rows = conn.execute(
        "SELECT DISTINCT ON (dataset, year) dataset, year, finished_at, rows_loaded, "
        "source_count, status FROM ingest_meta.load_ledger "
        "WHERE %(dataset)s::text IS NULL OR dataset = %(dataset)s "
        "ORDER BY dataset, year, id DESC",
        {"dataset": dataset},
    ).fetchall()
    return [LastLoad(*row) for row in rows]
