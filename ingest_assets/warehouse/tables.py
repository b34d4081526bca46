"""Facts tables: year-partitioned, created from the declared columns, checked for drift.

Every facts table is ``PARTITION BY LIST (year)`` with one partition per year, so replacing a
year is a swap of one partition (readers see the old year or the new one, never a mix) and a
year's count is a scan of one partition. Identifiers are validated by the catalog and always
quoted here. A table that may ``evolve`` (``on_schema_change: add_columns``) gains a nullable
column per new source field on the parent, which every partition shares, so older years read
NULL for it; a column whose type would change is refused, never altered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from ingest_assets.cleaning.columns import Column
from ingest_assets.errors import WarehouseError


@dataclass(frozen=True)
class FactsTable:
    """A facts table: where it lives, its columns and its key."""

    schema: str
    table: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    evolve: bool = False

    @property
    def ident(self) -> sql.Composed:
        return sql.SQL("{}.{}").format(sql.Identifier(self.schema), sql.Identifier(self.table))

    def partition_name(self, year: int, suffix: str = "") -> str:
        return f"{self.table[:48]}_y{year}{suffix}"

    def partition_ident(self, year: int, suffix: str = "") -> sql.Composed:
        name = self.partition_name(year, suffix)
        return sql.SQL("{}.{}").format(sql.Identifier(self.schema), sql.Identifier(name))

    @property
    def column_list(self) -> sql.Composed:
        return sql.SQL(", ").join(sql.Identifier(c.name) for c in self.columns)


def _column_defs(columns: Sequence[Column]) -> sql.Composed:
    return sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.pg_type)) for c in columns
    )


def one_row(conn: psycopg.Connection, query: sql.Composed | str, params: Sequence = ()) -> Any:
    """The row of a query that always returns one (``count(*)``, a row locked by key, ...)."""
    row = conn.execute(query, params).fetchone()
    if row is None:
        raise WarehouseError(f"expected one row from {query!r}")
    return row


def scalar(conn: psycopg.Connection, query: sql.Composed | str, params: Sequence = ()) -> Any:
    """The one value of a query that always returns one row (``count(*)``, ``max``, ...)."""
    return one_row(conn, query, params)[0]


def ensure_schema(conn: psycopg.Connection, schema: str) -> None:
    """Create ``schema`` only if it is missing: ``CREATE SCHEMA IF NOT EXISTS`` would demand
    CREATE on the database even when the schema exists, which a least-privilege loader lacks.
    """
    if scalar(conn, "SELECT to_regnamespace(%s)", (schema,)) is None:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))


def ensure_table(conn: psycopg.Connection, target: FactsTable) -> None:
    """Create the schema and partitioned table if missing; refuse a table that has drifted."""
    ensure_schema(conn, target.schema)
    existing = conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
        (target.schema, target.table),
    ).fetchall()
    if not existing:
        conn.execute(
            sql.SQL("CREATE TABLE {} ({}) PARTITION BY LIST (year)").format(
                target.ident, _column_defs(target.columns)
            )
        )
        return
    declared = [c.name for c in target.columns]
    found = [name for name, _ in existing]
    if target.evolve:  # columns are added and type-checked inside the load (evolve_table)
        return
    if declared != found:
        missing = [c for c in declared if c not in found]
        extra = [c for c in found if c not in declared]
        raise WarehouseError(
            f"table {target.schema}.{target.table} has drifted from the catalog: "
            f"missing column(s) {missing or 'none'}, unexpected column(s) {extra or 'none'}"
        )


def year_count(conn: psycopg.Connection, target: FactsTable, year: int) -> int:
    """The rows of one year in the table."""
    row = conn.execute(
        sql.SQL("SELECT count(*) FROM {} WHERE year = %s").format(target.ident), (year,)
    ).fetchone()
    return int(row[0]) if row else 0


def table_count(conn: psycopg.Connection, target: FactsTable) -> int:
    """Rows in the whole table, every year (a scan: read once per load, after it)."""
    row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(target.ident)).fetchone()
    return int(row[0]) if row else 0


def partition_exists(
    conn: psycopg.Connection, target: FactsTable, year: int, suffix: str = ""
) -> bool:
    """Whether the year's partition (or a staging twin, by suffix) exists."""
    row = conn.execute(
        "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s",
        (target.schema, target.partition_name(year, suffix)),
    ).fetchone()
    return row is not None


def table_columns(conn: psycopg.Connection, target: FactsTable) -> dict[str, str]:
    """The table's columns in order, each with its type as PostgreSQL spells it."""
    rows = conn.execute(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        (f'"{target.schema}"."{target.table}"',),
    ).fetchall()
    return dict(rows)


def evolve_table(conn: psycopg.Connection, target: FactsTable) -> list[str]:
    """Add the target's columns the table lacks (nullable); refuse any whose type differs.

    Runs inside the load's transaction, so a load that fails afterwards adds nothing.
    Returns the names of the columns added.
    """
    existing = table_columns(conn, target)
    wanted: dict[str, str] = dict(
        conn.execute(
            "SELECT name, format_type(pg_type::regtype, NULL) FROM unnest(%s::text[], %s::text[])"
            " AS c(name, pg_type)",
            ([c.name for c in target.columns], [c.pg_type for c in target.columns]),
        ).fetchall()
    )
    for name, pg_type in wanted.items():
        if name in existing and existing[name] != pg_type:
            raise WarehouseError(
                f"table {target.schema}.{target.table}: column {name!r} is {existing[name]} in "
                f"the table but {pg_type} at the source; types never change silently"
            )
    added = [c for c in target.columns if c.name not in existing]
    for column in added:
        conn.execute(
            sql.SQL("ALTER TABLE {} ADD COLUMN {} {}").format(
                target.ident, sql.Identifier(column.name), sql.SQL(column.pg_type)
            )
        )
    return [c.name for c in added]
