"""Empty years made visible: a year with 0 rows beside years with data, and a dataset whose query
finds nothing in any year it loaded (most often a filter the source never matches, such as
``agg_level_desc: STATE`` where it has only counties).

An empty year can be true (a survey not run that year), so these are warnings for the
non-blocking ``year_not_empty`` check, never refusals; the shrink guard (``shrink``) is what stops
a year holding rows from being emptied. Read from the table and the ledger after the load, so
they describe what readers now see.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg

from ingest_assets.warehouse.tables import FactsTable, year_count


def _years_loaded(conn: psycopg.Connection, dataset: str) -> dict[int, int]:
    """Each year's rows as of its latest committed load."""
    rows = conn.execute(
        "SELECT DISTINCT ON (year) year, rows_loaded FROM ingest_meta.load_ledger "
        "WHERE dataset = %s AND status = 'loaded' ORDER BY year, id DESC",
        (dataset,),
    ).fetchall()
    return {year: int(loaded or 0) for year, loaded in rows}


def describe_filters(filters: Mapping[str, Any]) -> str:
    """A dataset's source filters in one line, for the empty-year messages."""
    return ", ".join(f"{k}: {v}" for k, v in filters.items()) or "(no filters)"


def empty_year_warning(
    conn: psycopg.Connection,
    target: FactsTable,
    dataset: str,
    year: int,
    filters: Mapping[str, Any],
) -> str | None:
    """Why a year's 0 rows look wrong, or None when the year has rows (or nothing suggests so)."""
    if year_count(conn, target, year):
        return None
    loaded = _years_loaded(conn, dataset)
    if loaded and not any(loaded.values()):
        years = ", ".join(map(str, sorted(loaded)))
        return (
            f"dataset {dataset}: 0 rows in every year loaded ({years}); likely a query "
            f"mistake, check the filters: {describe_filters(filters)}"
        )
    neighbours = {y: year_count(conn, target, y) for y in (year - 1, year + 1)}
    with_data = {y: n for y, n in neighbours.items() if n}
    if not with_data:
        return None
    besides = " and ".join(f"{y} has {n:,}" for y, n in sorted(with_data.items()))
    return f"dataset {dataset}, year {year}: 0 rows while {besides}"
